"""Culprits: which of the significant crossings are the findings.

Of the significant crossings, the deepest functions (recursion collapsed into one) whose
growth is not explained by a significant function below them are the findings, with the
leaves that carry their growth as evidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memgate.compare import Comparison
from memgate.gate.critical import position
from memgate.gate.crossings import Draft
from memgate.gate.plan import F64, Basis
from memgate.quantities import format_value
from memgate.tree import Overlap

#: Evidence lists leaves that carry at least this share of a culprit's growth.
EVIDENCE_SHARE = 0.05
EVIDENCE_MAX = 5
#: Functions of the language runtime that allocate for their callers (see :func:`culprits`).
RUNTIME_PREFIXES = ("runtime.", "reflect.", "internal/", "sync.")


@dataclass(frozen=True)
class Culprit:
    """A finding-to-be: a significant crossing no significant function below it explains."""

    draft: Draft
    #: The other functions of its recursion, collapsed into it.
    members: tuple[str, ...] = ()
    #: The leaves under it that carry its growth: (name, share of the delta).
    evidence: tuple[tuple[str, float], ...] = ()
    note: str = ""
    #: With culprits below it: the part of its growth they do not explain.
    remainder: float | None = None


@dataclass(frozen=True)
class _Chosen:
    rep: int
    variance: float


class _Tree:
    """The overlap of the followed functions, addressed by function index."""

    def __init__(self, ov: Overlap, names: Sequence[str]) -> None:
        self.ov = ov
        self.names = names

    def pos(self, i: int) -> int:
        p = position(self.ov, i)
        assert p is not None
        return p

    def reaches(self, i: int, j: int) -> bool:
        return bool(self.ov.reach[self.pos(i), self.pos(j)])

    def size(self, i: int) -> float:
        return float(self.ov.shared[self.pos(i), self.pos(i)])

    def group_key(self, group: Sequence[int], head: int) -> tuple[float, int, str]:
        """Smaller subtrees first; of equal ones (a chain of callers with the same cum), the
        one reaching fewer other functions (the callee) first: it is what its callers'
        growth is made of."""
        inside = [self.pos(i) for i in group]
        reach = np.asarray(self.ov.reach[inside].any(axis=0), dtype=bool)
        reach[inside] = False
        return (max(self.ov.shared[p, p] for p in inside), int(reach.sum()), self.names[head])


def culprits(comparison: Comparison, sig: list[Draft], ov: Overlap | None,
             crit: dict[float, float], basis: Basis) -> list[Culprit]:
    """The deepest significant functions whose growth no significant function below them
    explains, recursion collapsed; with the leaves that carry their growth."""
    by_fn: dict[int, Draft] = {}
    for d in sig:
        assert d.i is not None
        if d.i not in by_fn or d.metric == "cum":
            by_fn[d.i] = d
    if ov is None:
        return [Culprit(d) for d in by_fn.values()]
    # Functions the walk did not follow (more crossings than it tracks) stand alone.
    alone = [Culprit(d) for i, d in by_fn.items() if position(ov, i) is None]
    by_fn = {i: d for i, d in by_fn.items() if position(ov, i) is not None}
    tree = _Tree(ov, comparison.names)
    _drop_runtime_helpers(by_fn, tree)
    groups = _recursion_groups(by_fn, tree)
    t = basis.t
    cf_delta = comparison.candidate.flat[:, t] - comparison.baseline.flat[:, t]
    chosen: list[_Chosen] = []
    out = []
    for head in sorted(groups, key=lambda g: tree.group_key(groups[g], g)):
        members = groups[head]
        d = by_fn[max(members, key=lambda i: (by_fn[i].delta, tree.names[i]))]
        rep = d.i
        assert rep is not None
        top = max(members, key=tree.size)
        found = _beyond_below(d, top, chosen, tree, crit, basis)
        if found is None:
            continue
        note, remainder = found
        chosen.append(_Chosen(rep, (d.se or 0.0) ** 2))
        evidence = _evidence(d, members, top, tree, cf_delta)
        others = tuple(tree.names[i] for i in members if i != rep)
        out.append(Culprit(d, others, tuple(evidence[:EVIDENCE_MAX]), note, remainder))
    return out + alone


def _drop_runtime_helpers(by_fn: dict[int, Draft], tree: _Tree) -> None:
    """The language runtime's allocation helpers (a map's buckets in reflect.mapassign, a
    slice's growth in runtime.growslice) allocate on behalf of their callers: when a
    significant caller outside the runtime reaches them, the caller is the culprit and they
    are its evidence."""
    internal = [i for i in by_fn if tree.names[i].startswith(RUNTIME_PREFIXES)]
    for i in internal:
        if any(j != i and not tree.names[j].startswith(RUNTIME_PREFIXES) and tree.reaches(j, i)
               for j in by_fn):
            del by_fn[i]


def _recursion_groups(by_fn: dict[int, Draft], tree: _Tree) -> dict[int, list[int]]:
    """Functions that call each other are one: groups by their first member, smallest
    subtree first."""
    fns = sorted(by_fn, key=lambda i: (tree.size(i), tree.names[i]))
    group_of: dict[int, int] = {}
    for i in fns:
        for j in fns:
            if j != i and group_of.get(j) == j and tree.ov.recursive(tree.pos(i), tree.pos(j)):
                group_of[i] = j
                break
        group_of.setdefault(i, i)
    groups: dict[int, list[int]] = {}
    for i in fns:
        groups.setdefault(group_of[i], []).append(i)
    return groups


def _beyond_below(d: Draft, top: int, chosen: Sequence[_Chosen], tree: _Tree,
                  crit: dict[float, float], basis: Basis) -> tuple[str, float | None] | None:
    """The note and remainder of a function with culprits found deeper whose growth (partly)
    happened inside its cum; None when what they leave unexplained is no finding."""
    ov, pos = tree.ov, tree.pos
    below = [c for c in chosen
             if tree.reaches(top, c.rep) and ov.shared_growth(pos(top), pos(c.rep)) > 0]
    below = [c for c in below if not any(o is not c and tree.reaches(o.rep, c.rep)
                                          and ov.contains(pos(o.rep), pos(c.rep))
                                          for o in below)]
    if not below:
        return "", None
    explained = sum(ov.shared_growth(pos(top), pos(c.rep)) for c in below)
    resid = d.delta - explained
    var = max((d.se or 0.0) ** 2 - sum(c.variance for c in below), 0.0)
    se = math.sqrt(var) if var > 0 else None
    z = resid / se if se else (math.inf if resid > 0 else -math.inf)
    if not d.rule.crosses(d.b, d.b + resid) or not z > crit[1 - d.rule.confidence]:
        return None
    names = ", ".join(tree.names[c.rep] for c in below)
    return (f" ({format_value(resid, basis.dim, basis.per, 's')} beyond what {names} "
            "explains)"), resid


def _evidence(d: Draft, members: Sequence[int], top: int, tree: _Tree,
              cf_delta: F64) -> list[tuple[str, float]]:
    """Leaves whose cum lies under this function, by their flat growth."""
    ov, pos = tree.ov, tree.pos
    assert d.i is not None

    def under(p: int) -> bool:
        return any(ov.contains(pos(mm), p) or ov.reach[pos(mm), p] or pos(mm) == p
                   for mm in members)

    evidence = []
    for p, fi in enumerate(ov.functions):
        inside = float(cf_delta[fi]) if fi in members else min(
            float(cf_delta[fi]), ov.shared_growth(pos(top), p))
        share = inside / d.delta if d.delta > 0 else 0.0
        if share >= EVIDENCE_SHARE and under(p):
            evidence.append((tree.names[fi], share))
    evidence.sort(key=lambda e: (-e[1], e[0]))
    if d.metric == "flat" or (len(evidence) == 1 and evidence[0][0] == tree.names[d.i]):
        return []  # a function's own allocation is carried by nothing below it
    return evidence
