"""Policy files: which functions may grow how much, and how a function finds its rule.

A policy is a YAML or JSON file validated against ``memgate/schemas/policy.schema.json``
(reference: docs/policy.md). Loading turns it into frozen values; nothing downstream sees raw
dictionaries. :meth:`Policy.resolve` gives, for a (function, sample type) pair, an
:class:`Effective` with every setting filled in, so that inheritance (rule -> component
defaults -> policy defaults -> built-in defaults) is decided in one place.

The package's modules: :mod:`~memgate.policy.model` (the values and resolution),
:mod:`~memgate.policy.matching` (which functions and sample types a rule designates),
:mod:`~memgate.policy.load` (reading, validating, messages) and
:mod:`~memgate.policy.parse` (from validated data to values). This module is the package's
interface: what the rest of memgate uses.

Semantics of the limits (also documented in docs/policy.md; :class:`Limits` implements them so
that the gate and the docs cannot drift apart):

* ``max_increase`` (percent) and ``max_increase_rate`` (absolute rate) bound the growth of the
  candidate over the baseline. When both are set, a finding needs BOTH crossed: a change must
  be large in relative *and* absolute terms, so that tiny functions (+300% of nothing) and
  noise in big ones (+0.5 MiB/min on 1 GiB/min) do not fail builds. When only one is set it
  alone decides.
* ``max_rate`` is an absolute ceiling on the candidate's rate; the baseline plays no part.
* Rates have a dimension. A bytes rate applies only to byte sample types, a count rate only to
  count sample types; for a sample type whose dimension has no rate in the list, that limit is
  simply not set.
* ``noise_floor``: a function below the floor on BOTH sides is ignored.
* Rates are per second of profile duration; with ``--no-normalize`` each profile counts as
  one second, so the same rate strings then bound raw per-profile values ("1MiB/s" = 1 MiB).

A policy file starts from the built-in default policy (``memgate/data/default-policy.yml``):
keys left out of ``defaults`` keep the built-in values, and a left-out ``total`` or
``new_functions`` section is the built-in one (``null`` switches it off). ``null`` on a limit
key removes an inherited limit.
"""

from __future__ import annotations

from memgate.policy.load import (
    default_policy,
    load_policy,
    load_policy_data,
    policy_schema,
    read_policy_bytes,
)
from memgate.policy.matching import Matcher, sample_type_index, sample_type_matches
from memgate.policy.model import (
    INHERIT,
    NEW_FUNCTIONS_RULE,
    Effective,
    Inherit,
    Limits,
    Metric,
    Policy,
    Rule,
    Severity,
    increase_crossed,
    limit_for,
)
from memgate.policy.parse import format_path

__all__ = [
    "Effective",
    "INHERIT",
    "Inherit",
    "Limits",
    "Matcher",
    "Metric",
    "NEW_FUNCTIONS_RULE",
    "Policy",
    "Rule",
    "Severity",
    "default_policy",
    "format_path",
    "increase_crossed",
    "limit_for",
    "load_policy",
    "load_policy_data",
    "policy_schema",
    "read_policy_bytes",
    "sample_type_index",
    "sample_type_matches",
]
