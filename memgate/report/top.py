"""``memgate top``: the rows of ``go tool pprof -top``, then renderers over them.

Rows are built first (sorted as pprof sorts: |flat| descending, then name, then |cum|);
each output format (text, JSON, markdown) only prints them.
"""

from __future__ import annotations

import datetime as _dt
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from memgate import escape
from memgate.profile.model import Profile, ValueType
from memgate.table import Table
from memgate.units import is_time_unit, percentage, scale, scaled_label, select_output_unit

TOP_FORMAT_VERSION = 1


@dataclass(frozen=True)
class TopRow:
    name: str
    flat: int
    cum: int


@dataclass(frozen=True)
class TopReport:
    profile: str
    sample_type: ValueType
    sample_index: int
    granularity: str
    total: int
    rows: tuple[TopRow, ...]
    #: Rows with a non-zero value before ``--limit`` cut the list.
    row_count: int
    duration_seconds: float | None
    time_nanos: int
    period_type: ValueType
    period: int
    file: str
    build_id: str


def build_top(
    prof: Profile,
    table: Table,
    sample_index: int,
    *,
    limit: int | None = None,
    cum_sort: bool = False,
) -> TopReport:
    """The rows pprof's ``-top`` would show for one sample type (all nodes, no cutoff)."""
    # The table may hold every sample type or only the one shown.
    column = sample_index if len(table.sample_types) == len(prof.sample_types) else \
        table.sample_types.index(prof.sample_types[sample_index])
    flat = table.flat[:, column]
    cum = table.cum[:, column]
    shown = np.flatnonzero((flat != 0) | (cum != 0))
    names = np.array(table.names, dtype=object)[shown] if shown.size else np.array([], object)
    f = flat[shown]
    c = cum[shown]
    # pprof FlatNameOrder: |flat| desc, name asc, |cum| desc (CumNameOrder swaps flat and cum).
    name_rank = (
        np.argsort(np.argsort(names.astype(str), kind="stable"), kind="stable")
        if shown.size
        else np.zeros(0, dtype=np.int64)
    )
    first, third = (c, f) if cum_sort else (f, c)
    order = np.lexsort((-np.abs(third), name_rank, -np.abs(first)))
    rows = tuple(TopRow(str(names[i]), int(f[i]), int(c[i])) for i in order.tolist())
    count = len(rows)
    if limit:  # None or 0: every row, as pprof's -nodecount=0
        rows = rows[:limit]
    main = prof.mappings[0] if prof.mappings else None
    return TopReport(
        profile=prof.source,
        sample_type=prof.sample_types[sample_index],
        sample_index=sample_index,
        granularity=table.granularity,
        total=int(table.total[column]),
        rows=rows,
        row_count=count,
        duration_seconds=prof.duration_seconds,
        time_nanos=prof.time_nanos,
        period_type=prof.period_type,
        period=prof.period,
        file=posixpath.basename(main.file) if main and main.file else "",
        build_id=main.build_id if main else "",
    )


def _iso_time(nanos: int) -> str | None:
    if not nanos:
        return None
    t = _dt.datetime.fromtimestamp(nanos / 1e9, tz=_dt.timezone.utc)
    return t.isoformat().replace("+00:00", "Z")


def _go_duration(seconds: float) -> str:
    """A duration as pprof labels it (``measurement.Label(d, "nanoseconds")``): "1.50s"."""
    return scaled_label(round(seconds * 1e9), "nanoseconds", "auto")


def _duration_line(rep: TopReport, total: str) -> str:
    """pprof's ``Duration: 1.50s, Total samples = 1.49s (99.44%)``: the ratio only when the
    sample type is a time (CPU profiles)."""
    assert rep.duration_seconds
    nanos = round(rep.duration_seconds * 1e9)
    ratio = ""
    if is_time_unit(rep.sample_type.unit):
        total_ns, unit = scale(rep.total, rep.sample_type.unit, "nanoseconds")
        if unit == "ns" and int(total_ns) != 0:
            ratio = f"({percentage(int(total_ns), nanos)})"
    return f"Duration: {_go_duration(rep.duration_seconds)}, Total samples = {total} {ratio}"


def _with_percentages(rep: TopReport) -> Iterator[tuple[TopRow, str, str, str]]:
    """Each row with pprof's flat%, sum% (the running total of flat) and cum% of the total,
    as :func:`memgate.units.percentage` pads them."""
    running = 0
    for r in rep.rows:
        running += r.flat
        yield (r, percentage(r.flat, rep.total), percentage(running, rep.total),
               percentage(r.cum, rep.total))


def render_text(rep: TopReport, unit: str = "minimum") -> str:
    """pprof's -top text: header lines, then ``flat flat% sum% cum cum% name``."""
    st = rep.sample_type
    if unit == "minimum":
        vals = [r.flat if r.flat != 0 else r.cum for r in rep.rows]
        out_unit = select_output_unit(st.unit, vals, rep.total)
    else:
        out_unit = unit

    def fmt(v: int) -> str:
        return scaled_label(v, st.unit, out_unit)

    esc = escape.text
    lines = []
    if rep.file:
        lines.append(f"File: {esc(rep.file)}")
    if rep.build_id:
        lines.append(f"Build ID: {esc(rep.build_id)}")
    lines.append(f"Type: {esc(st.type)}")
    if rep.time_nanos:
        t = _dt.datetime.fromtimestamp(rep.time_nanos / 1e9, tz=_dt.timezone.utc)
        lines.append(f"Time: {t:%Y-%m-%d %H:%M:%S} UTC")
    if rep.duration_seconds:
        lines.append(_duration_line(rep, fmt(rep.total)))
    shown_flat = sum(r.flat for r in rep.rows)
    pct = percentage(shown_flat, rep.total).strip()
    lines.append(f"Showing nodes accounting for {fmt(shown_flat)}, {pct} of {fmt(rep.total)} total")
    if len(rep.rows) < rep.row_count:
        lines.append(f"Showing top {len(rep.rows)} nodes out of {rep.row_count}")
    lines.append(f"{'flat':>10} {'flat':>5}% {'sum':>5}% {'cum':>10} {'cum':>5}%")
    for r, flat_pct, sum_pct, cum_pct in _with_percentages(rep):
        lines.append(
            f"{fmt(r.flat):>10} {flat_pct} {sum_pct} {fmt(r.cum):>10} {cum_pct}  {esc(r.name)}"
        )
    return "\n".join(lines) + "\n"


def to_dict(rep: TopReport) -> dict[str, object]:
    """The JSON contract of ``memgate top --format json``."""
    return {
        "format": TOP_FORMAT_VERSION,
        "profile": rep.profile,
        "sample_type": {"type": rep.sample_type.type, "unit": rep.sample_type.unit},
        "granularity": rep.granularity,
        "total": rep.total,
        "duration_seconds": rep.duration_seconds,
        "time": _iso_time(rep.time_nanos),
        "period": {"type": rep.period_type.type, "unit": rep.period_type.unit, "value": rep.period},
        "functions": [{"name": r.name, "flat": r.flat, "cum": r.cum} for r in rep.rows],
    }


def render_json(rep: TopReport) -> str:
    return escape.json_dumps(to_dict(rep), indent=2) + "\n"


def render_markdown(rep: TopReport) -> str:
    st = rep.sample_type
    vals = [r.flat if r.flat != 0 else r.cum for r in rep.rows]
    out_unit = select_output_unit(st.unit, vals, rep.total)

    def fmt(v: int) -> str:
        return scaled_label(v, st.unit, out_unit)

    lines = [
        f"### {escape.md_code(st.type)} in {escape.md_text(rep.profile)}",
        "",
        f"Total: **{fmt(rep.total)}**"
        + (f" over {_go_duration(rep.duration_seconds)}" if rep.duration_seconds else ""),
        "",
        "| flat | flat% | sum% | cum | cum% | function |",
        "|---:|---:|---:|---:|---:|:---|",
    ]
    for r, flat_pct, sum_pct, cum_pct in _with_percentages(rep):
        lines.append(
            f"| {fmt(r.flat)} | {flat_pct.strip()} | {sum_pct.strip()} | {fmt(r.cum)} | "
            f"{cum_pct.strip()} | {escape.md_code(r.name)} |"
        )
    if len(rep.rows) < rep.row_count:
        lines.append("")
        lines.append(f"_Showing top {len(rep.rows)} of {rep.row_count} rows._")
    return "\n".join(lines) + "\n"
