"""The profile model and its decoders. Nothing here knows about reports or gates."""

from __future__ import annotations

from memgate.profile.model import Function, Locations, Mapping, Profile, Samples, ValueType

__all__ = ["Function", "Locations", "Mapping", "Profile", "Samples", "ValueType"]
