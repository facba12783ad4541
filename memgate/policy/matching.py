"""Which functions and sample types a policy's words designate.

A rule's ``match`` selects functions by name (:class:`Matcher`) and its ``sample_types`` select
sample types of the profiles (:func:`sample_type_matches`): both are decided here, so that the
policy, the gate and the reports agree on what a rule is about.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from memgate import regex
from memgate.quantities import Dimension

MatchKind = Literal["exact", "glob", "regex"]


# ---------------------------------------------------------------------------------------------
# Sample types
# ---------------------------------------------------------------------------------------------


def sample_type_matches(policy_name: str, profile_type: str) -> bool:
    """Whether a sample-type name in a policy designates a sample type of a profile.

    Exact names match; as a fallback, as in pprof's ``-sample_index``, a name ``inuse_X``
    also matches a profile type ``X``, so that a policy written for Go's four-column heap
    profiles (``inuse_space``) also works on two-column profiles (``space``/``objects``).
    """
    if policy_name == profile_type:
        return True
    return policy_name.startswith("inuse_") and policy_name[len("inuse_") :] == profile_type


def sample_type_index(policy_name: str, profile_types: Sequence[str]) -> int | None:
    """Index of the profile sample type a policy name designates, pprof's way, or None.

    An exact name wins over the ``inuse_`` fallback, so that a profile that has both
    ``inuse_space`` and ``space`` resolves ``inuse_space`` to itself.
    """
    for i, name in enumerate(profile_types):
        if name == policy_name:
            return i
    for i, name in enumerate(profile_types):
        if sample_type_matches(policy_name, name):
            return i
    return None


def sample_type_dimension(name: str) -> Dimension | None:
    """Dimension a sample type has by naming convention; None when the name does not say.

    Only used to reject policies whose rate limits could never apply (a count rate on a rule
    for ``inuse_space`` only); the gate uses the profile's real units.
    """
    lower = name.lower()
    if lower.endswith(("space", "bytes")):
        return "bytes"
    if lower.endswith(("objects", "count")):
        return "count"
    return None


# ---------------------------------------------------------------------------------------------
# Matching function names
# ---------------------------------------------------------------------------------------------

#: A Go pointer receiver, ``(*T``: the star is part of the name, not a wildcard.
_GO_RECEIVER: Final = re.compile(r"\(\*(?=[A-Za-z_])")
#: Go's placeholder for type parameters in symbol names (``pkg.Map[...].Get``).
_GO_TYPE_PARAMS: Final = "[...]"


@dataclass(frozen=True)
class Matcher:
    """How a rule's ``match`` selects functions: exact name, glob, or ``re:`` regex.

    Globs use ``*``, ``?`` and ``[...]`` (``*`` also crosses ``/`` and ``.``). Because Go
    function names are full of glob characters, two Go spellings are taken literally: the
    star of a pointer receiver ``(*T)`` and the type-parameter placeholder ``[...]``. So
    ``encoding/json.(*decodeState).literalStore`` is an exact name, and
    ``encoding/json.(*decodeState).*`` a glob over that type's methods. Write ``[*]`` for a
    literal star elsewhere. Regexes (``re:`` prefix) must match the whole name, like globs,
    so that ``re:runtime\\.malg`` does not match ``runtime.malgX``; they are RE2 (Go's
    syntax, as pprof's own options), matched in linear time (memgate/regex.py), so no pattern
    can hang the gate whatever name it meets.
    """

    #: The ``match`` text as written, including any ``re:`` prefix.
    pattern: str
    kind: MatchKind
    _regex: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Build a matcher from a ``match`` string; :class:`ValueError` for a bad regex."""
        if text.startswith("re:"):
            try:
                compiled = regex.compile(text[3:])
            except regex.RegexError as exc:
                raise ValueError(f"invalid regular expression {text[3:]!r}: {exc} (RE2 "
                                 "syntax, as Go's regexp)") from None
            return cls(text, "regex", compiled)
        literal = _GO_RECEIVER.sub("(", text).replace(_GO_TYPE_PARAMS, "")
        if not any(c in literal for c in "*?["):
            return cls(text, "exact", None)
        protected = _GO_RECEIVER.sub("([*]", text).replace(_GO_TYPE_PARAMS, "[[]...[]]")
        return cls(text, "glob", re.compile(fnmatch.translate(protected)))

    def matches(self, function: str) -> bool:
        """Whether ``function`` (a pprof function name) is selected by this matcher."""
        if function == self.pattern and self.kind != "regex":
            return True
        if self._regex is None:
            return False
        if self.kind == "regex":
            return regex.fullmatch(self._regex, function)
        return self._regex.fullmatch(function) is not None
