"""From a crossing to the finding a report shows: its numbers, limit and message."""

from __future__ import annotations

from collections.abc import Sequence

from memgate.gate.crossings import Draft
from memgate.gate.plan import Basis
from memgate.gate.results import TOTAL_FUNCTION, Finding, Kind
from memgate.quantities import count_noun, format_percent, format_value
from memgate.stats import normal_quantile


def _name_with_members(name: str, members: Sequence[str]) -> str:
    if not members:
        return name
    short = [m.rsplit(".", 1)[-1] if m.rsplit(".", 1)[0] == name.rsplit(".", 1)[0] else m
             for m in members]
    return f"{name} (with {', '.join(short)}: recursion)"


def make_finding(names: Sequence[str], d: Draft, basis: Basis, time_unit: str,
                 significant: bool, kind: Kind | None = None, members: Sequence[str] = (),
                 evidence: Sequence[tuple[str, float]] = (), note: str = "") -> Finding:
    """The finding of crossing ``d`` (``kind`` overrides the crossing's: "moved");
    ``names`` are the comparison's function names."""
    noun = count_noun(basis.sample_type)
    kind = kind or d.kind
    name = TOTAL_FUNCTION if d.i is None else names[d.i]
    b_txt = format_value(d.b, basis.dim, basis.per, time_unit, noun)
    c_txt = format_value(d.c, basis.dim, basis.per, time_unit, noun)
    pct = None if d.b <= 0 else d.delta / d.b * 100.0
    limit = d.rule.limit_text(d.kind)
    msg = _message(name, d, basis, kind, members,
                   (b_txt, c_txt, pct, limit))
    if note:
        msg += note
    if evidence:
        msg += "; carried by " + ", ".join(f"{n} {share:.0%}" for n, share in evidence)
    severity = d.rule.severity
    assert severity in ("fail", "warn")
    half = None if d.se is None else normal_quantile(0.5 + d.rule.confidence / 2) * d.se
    return Finding(
        rule=d.rule.name, function=name, sample_type=basis.sample_type, dimension=basis.dim,
        metric=d.metric, severity=severity, kind=kind, baseline_rate=d.b, candidate_rate=d.c,
        delta_rate=d.delta, delta_pct=pct, limit=limit, significant=significant,
        p_value=None, interval=half, confidence=d.rule.confidence, message=msg,
        quantity=basis.quantity, per=basis.per, members=tuple(members),
        evidence=tuple(evidence))


def _message(name: str, d: Draft, basis: Basis, kind: Kind, members: Sequence[str],
             numbers: tuple[str, str, float | None, str]) -> str:
    b_txt, c_txt, pct, limit = numbers
    st = basis.sample_type
    subject = "total" if d.i is None else _name_with_members(name, members)
    what = f"{st} ({d.metric}{', in use' if basis.level else ''}"
    what += ", freed" if basis.freed else ""
    what += ", growth)" if basis.growth else ")"
    # "new" is said only of a function the baseline never saw (kind "new"); growth from
    # nothing of a function it knows is growth from zero.
    change = format_percent(pct) if pct is not None else "from none"
    if kind == "moved":
        return (f"{subject} {st}: allocation moved into it (flat {b_txt} -> {c_txt}, "
                f"{change}) while its cum did not grow: not a regression")
    if kind == "increase":
        return (f"{subject} {what} grew from {b_txt} to {c_txt} ({change}), "
                f"over the limit of {limit}")
    if kind == "new":
        return (f"new function {subject} {'holds' if basis.level else 'allocates'} {c_txt} "
                f"of {st}, above {limit}")
    return f"{subject} {what} is {c_txt}, above its {limit}"


def rank_note(d: Draft, rank: dict[int, bool] | None, kb: int, kc: int) -> str:
    """What a finding says when the rank test decided it."""
    if rank is None or d.rank_p is None:
        return ""
    return f" — significant by a rank test of {kb} vs {kc} runs (p = {d.rank_p:.2g})"
