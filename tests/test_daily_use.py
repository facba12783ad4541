"""What a team hits in its first week (issue 16), each from the user's side: a command line,
the files it leaves on disk, and what it prints.

The profiles are real Go heap profiles (tests/fixtures/profiles, from tests/gen/seedleak): three
no-leak runs and three leak runs of the same workload.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests import clirun

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "tests" / "fixtures" / "profiles"
NOLEAK = [PROFILES / f"seedleak-noleak-{i}.pb.gz" for i in (1, 2, 3)]
LEAK = [PROFILES / f"seedleak-leak-{i}.pb.gz" for i in (1, 2, 3)]
DELTA = PROFILES / "seedleak-delta.pb.gz"
# Independent runs of one workload (tests/gen/noise.sh): differences are sampling noise.
NOISE = ROOT / "tests" / "fixtures" / "noise"
RUNS = [NOISE / f"noleak-{i:02d}.pb.gz" for i in (1, 2, 3, 4)]
LEAK_RUNS = [NOISE / f"leak-{i:02d}.pb.gz" for i in (1, 2, 3)]


def memgate(*args: str | Path, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m memgate ARGS`` as a user runs it (no colours), in this process
    (tests/clirun.py)."""
    full_env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    full_env.pop("GITHUB_ACTIONS", None)
    full_env.update(env or {})
    return clirun.run(args, cwd=cwd, env=full_env)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int = 3) -> str:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memgate: "), proc.stderr
    return lines[0]


def manifest(root: Path, component: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (root / "baselines" / component / "manifest.json").read_text())
    return data


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


# --------------------------------------------------------------------------- 4. accept, update


def _copy(paths: Sequence[Path], into: Path) -> list[str]:
    """The profiles under ``into`` (accept reads candidates only inside the working directory)."""
    into.mkdir(parents=True, exist_ok=True)
    out = []
    for p in paths:
        (into / p.name).write_bytes(p.read_bytes())
        out.append(str((into / p.name).relative_to(into.parent)))
    return out


def test_update_refuses_fewer_runs_unless_asked(tmp_path: Path) -> None:
    three = _copy(NOLEAK, tmp_path / "profiles")
    r = memgate("baseline", "update", "-c", "api", *three, "--duration", "60s",
                "--reason", "three runs", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    before = tree(tmp_path / "baselines")
    line = one_line_error(memgate("baseline", "update", "-c", "api", three[0], "--duration",
                                  "60s", "--reason", "one run", cwd=tmp_path))
    assert "has 3 runs" in line and "would have 1" in line and "--runs-may-shrink" in line
    assert tree(tmp_path / "baselines") == before, "a refused update changed the store"
    r = memgate("baseline", "update", "-c", "api", three[0], "--duration", "60s",
                "--reason", "one run on purpose", "--runs-may-shrink", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(manifest(tmp_path, "api")["profiles"]) == 1  # type: ignore[arg-type]
    # More runs (or as many) never need the flag.
    r = memgate("baseline", "update", "-c", "api", *three[:2], "--duration", "60s",
                "--reason", "two runs", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_accept_refuses_fewer_runs_unless_asked(tmp_path: Path) -> None:
    profiles = _copy([*NOLEAK, LEAK[0]], tmp_path / "profiles")
    assert memgate("baseline", "update", "-c", "api", *profiles[:3], "--duration", "60s",
                   "--reason", "three runs", cwd=tmp_path).returncode == 0
    r = memgate("check", "-c", "api", "--duration", "60s", "--json", "report.json",
                profiles[3], cwd=tmp_path)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    before = tree(tmp_path / "baselines")
    line = one_line_error(memgate("baseline", "accept", "--from-report", "report.json",
                                  "--reason", "approved", cwd=tmp_path))
    assert "has 3 runs" in line and "--runs-may-shrink" in line
    assert tree(tmp_path / "baselines") == before
    r = memgate("baseline", "accept", "--from-report", "report.json", "--reason", "approved",
                "--runs-may-shrink", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_update_and_accept_take_durations_from_the_policy(tmp_path: Path) -> None:
    """The first baseline (update) and the accepted one get the same duration for the same
    profile, from the policy's component duration: the manifest keeps its units, so that a
    review diff of the accept shows only what changed."""
    (tmp_path / "memgate.yml").write_text(
        "version: 1\ncomponents:\n  api:\n    duration: 2m\n")
    profiles = _copy(NOLEAK, tmp_path / "profiles")
    r = memgate("baseline", "update", "-c", "api", *profiles, "--reason", "first",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "no duration" not in r.stderr
    first = manifest(tmp_path, "api")
    assert first["summary_unit"] == "per_second"
    assert [p["duration_seconds"] for p in first["profiles"]] == [120.0] * 3  # type: ignore[attr-defined, index]
    # The same profiles checked (no --duration: the policy's) and accepted.
    r = memgate("check", "-c", "api", "--json", "report.json", *profiles, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    r = memgate("baseline", "accept", "--from-report", "report.json", "--reason", "again",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    accepted = manifest(tmp_path, "api")
    for key in ("summary_unit", "summary", "summary_totals", "profiles"):
        assert accepted[key] == first[key], key
    # Without the policy a snapshot has no duration: said, not silent.
    (tmp_path / "memgate.yml").unlink()
    r = memgate("baseline", "update", "-c", "web", *profiles, "--reason", "no duration",
                cwd=tmp_path)
    assert r.returncode == 0
    assert "memgate: note: web: a profile has no duration" in r.stderr
    assert manifest(tmp_path, "web")["summary_unit"] == "per_profile"
    # --duration wins over the policy, as in check.
    (tmp_path / "memgate.yml").write_text(
        "version: 1\ncomponents:\n  api:\n    duration: 2m\n")
    r = memgate("baseline", "update", "-c", "api", *profiles, "--reason", "flag",
                "--duration", "30s", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert {p["duration_seconds"] for p in manifest(tmp_path, "api")["profiles"]} == {30.0}  # type: ignore[attr-defined]


def test_manifest_rows_keep_their_place_when_rates_move(tmp_path: Path) -> None:
    """Rows are written by function name within each sample type: replacing the baseline with
    other runs of the same workload changes rate lines, not the order of the functions, so
    that git pairs each function's old and new line."""
    profiles = _copy([*NOLEAK, *LEAK], tmp_path / "profiles")
    assert memgate("baseline", "update", "-c", "api", *profiles[:3], "--duration", "60s",
                   "--reason", "a", cwd=tmp_path).returncode == 0
    a = manifest(tmp_path, "api")
    for rows in a["summary"].values():  # type: ignore[attr-defined]
        names = [r["function"] for r in rows]
        assert names == sorted(names)
    assert memgate("baseline", "update", "-c", "api", *profiles[3:], "--duration", "60s",
                   "--reason", "b", cwd=tmp_path).returncode == 0
    b = manifest(tmp_path, "api")
    # In every sample type, the functions present in both keep their relative order.
    moved = 0
    for stype, rows_a in a["summary"].items():  # type: ignore[attr-defined]
        fa = [r["function"] for r in rows_a]
        fb = [r["function"] for r in b["summary"][stype]]  # type: ignore[index]
        common = [f for f in fa if f in fb]
        assert common == [f for f in fb if f in fa], stype
        ra = {r["function"]: r["flat_rate"] for r in rows_a}
        rb = {r["function"]: r["flat_rate"] for r in b["summary"][stype]}  # type: ignore[index]
        # ... while their rates (hence their order by rate) did change.
        by_rate = sorted(common, key=lambda f: -ra[f]) != sorted(common, key=lambda f: -rb[f])
        moved += by_rate
    assert moved, "the leak runs should reorder some functions by rate"
    # `baseline show` still lists the largest first.
    shown = memgate("baseline", "show", "api", cwd=tmp_path).stdout
    section = shown.split("inuse_space (bytes)", 1)[1].splitlines()[2:5]
    assert "main.newCacheEntry" in section[0] or "literalStore" in section[0], section


# --------------------------------------------------------------------------- 2. output order


def _check(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return memgate("check", "--policy", ROOT / "examples" / "memgate.yml", "--component",
                   "example", *args)


def _baselines(*paths: Path) -> list[str]:
    return [a for p in paths for a in ("--baseline", str(p))]


def test_unchanged_build_leads_with_the_verdict_and_counts_the_noise() -> None:
    r = _check(*_baselines(*RUNS[:2]), RUNS[2])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "memgate: PASS (example)"
    assert lines[1] == "0 failing, 0 warning"
    m = re.fullmatch(r"(\d+) crossings? within noise \(shown with --verbose\)",
                                   lines[2])
    assert m, lines[:4]
    n = int(m.group(1))
    assert n > 0 and "[~]" not in r.stdout
    # --verbose lists them, right under their count.
    v = _check(*_baselines(*RUNS[:2]), RUNS[2], "--verbose").stdout.splitlines()
    assert v[2] == f"{n} crossing{'s' if n != 1 else ''} within noise (listed below)"
    assert all(ln.startswith("  [~] ") for ln in v[3:3 + n])
    assert not v[3 + n].startswith("  [~]")


def test_failing_findings_come_before_the_noise_line_and_the_details() -> None:
    r = _check(*_baselines(*RUNS[:2]), LEAK_RUNS[0])
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[0] == "memgate: FAIL (example)"
    assert re.fullmatch(r"\d+ failing, \d+ warning", lines[1])
    k = 2
    while lines[k].startswith(("  [FAIL] ", "  [WARN] ")):
        k += 1
    assert k > 2 and lines[2].startswith("  [FAIL] ") and "literalStore" in lines[2]
    assert "within noise (shown with --verbose)" in lines[k]
    assert lines[k + 1] == "", "the details follow the summary after a blank line"
    md = _check(*_baselines(*RUNS[:2]), LEAK_RUNS[0], "--format", "markdown").stdout
    order = [md.index(s) for s in ("memgate: **FAIL**", "### Findings",
                                   "crossings within noise (in the details block below).",
                                   "<details><summary>", "### Totals")]
    assert order == sorted(order)
    assert "within noise (~);" not in md.split("### Findings")[0]


def test_improvements_get_their_own_section() -> None:
    """Gate the fixed build against the leaky one: what shrank is named up front."""
    r = _check(*_baselines(*LEAK_RUNS[:2]), RUNS[2])
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    shrank = [ln for ln in lines if ln.startswith("shrank: ")]
    assert len(shrank) == 1, r.stdout
    assert "inuse_space: encoding/json.(*decodeState).literalStore -" in shrank[0]
    # Before the details (the first blank line).
    assert lines.index(shrank[0]) < lines.index("")
    md = _check(*_baselines(*LEAK_RUNS[:2]), RUNS[2], "--format", "markdown").stdout
    section = md.split("### Shrank\n\n", 1)[1].split("\n\n", 1)[0]
    assert "- **inuse_space**: `encoding/json.(*decodeState).literalStore` -" in section
    assert md.index("### Shrank") < md.index("### Totals")
    # Nothing shrank beyond the noise between two no-leak runs: no section.
    same = _check(*_baselines(*RUNS[:2]), RUNS[2], "--format", "markdown").stdout
    assert "### Shrank" not in same


# --------------------------------------------------------------------------- 1. diff movers


def _diff_sections(text: str) -> dict[str, list[str]]:
    """The text view's sections: sample type -> its lines (header first)."""
    out: dict[str, list[str]] = {}
    for block in text.split("\n\n")[1:]:
        lines = block.splitlines()
        if lines and "(" in lines[0] and not lines[0].startswith("~"):
            out[lines[0].split(" ", 1)[0]] = lines
    return out


def _rows(section: list[str]) -> list[list[str]]:
    return [ln.split() for ln in section[2:] if ln.startswith("  ") and not
            ln.startswith("  ...")]


def test_diff_shows_growers_and_shrinkers_of_every_type_with_their_share() -> None:
    base, new = RUNS[0], RUNS[1]
    r = memgate("diff", base, new)
    assert r.returncode == 0, r.stderr
    sections = _diff_sections(r.stdout)
    assert set(sections) == {"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"}
    report = json.loads(memgate("diff", base, new, "--format", "json").stdout)
    for stype, lines in sections.items():
        assert " grew:" in lines and " shrank:" in lines, (stype, lines)
        # Every mover is there, within the noise or not (~), largest first.
        deltas = {fn["name"]: fn["rates"][stype]["flat"]["delta"]
                  for fn in report["functions"] if stype in fn["rates"]}
        growers = sorted((n for n in deltas if deltas[n] > 0), key=lambda n: -deltas[n])
        shown = [row[-1] for row in _rows(lines)][:min(10, len(growers))]
        assert shown == growers[:10], stype
    # --limit 0: all of them; their shares of the total change add up to 100%.
    full = _diff_sections(memgate("diff", base, new, "--limit", "0", "-i", "inuse_space")
                          .stdout)
    assert list(full) == ["inuse_space"]
    rows = _rows(full["inuse_space"])
    changed = [fn for fn in report["functions"]
               if fn["rates"].get("inuse_space", {}).get("flat", {}).get("delta")]
    assert len(rows) == len(changed)
    # The share is the first percentage of a row (the delta's own number has no '%').
    shares = [float(next(c for c in row if re.fullmatch(r"[+-]\d+\.\d%", c))[:-1])
              for row in rows]
    change = next(t["delta_rate"] for t in report["totals"] if t["sample_type"] == "inuse_space")
    assert sum(shares) == pytest.approx(100.0 if change > 0 else -100.0, abs=0.05 * len(rows))


def test_diff_without_durations_retries_on_the_no_duration_slug(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`memgate diff` of profiles with no duration compares raw values: it retries on the
    error's slug, whatever the error's wording."""
    from click.testing import CliRunner

    from memgate import checkrun
    from memgate.cli import main
    from memgate.config import Config
    from memgate.errors import CompareError, MemgateError
    from memgate.progress import Progress

    with pytest.raises(MemgateError) as e:
        checkrun.run_diff([str(NOLEAK[0])], [str(LEAK[0])], duration=None,
                          baseline_duration=None, normalize=True, config=Config(),
                          progress=Progress(False))
    assert e.value.slug == "no-duration"
    real = checkrun.run_diff

    def reworded(*args: Any, **kwargs: Any) -> Any:
        try:
            return real(*args, **kwargs)
        except CompareError as err:
            raise CompareError("reworded", source=err.source, slug=err.slug) from None

    monkeypatch.setattr(checkrun, "run_diff", reworded)
    r = CliRunner().invoke(main, ["diff", str(NOLEAK[0]), str(LEAK[0]), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["normalized"] is False


def test_diff_sample_index_limit_and_cum() -> None:
    by_name = memgate("diff", RUNS[0], LEAK_RUNS[0], "-i", "inuse_space", "-n", "3").stdout
    by_index = memgate("diff", RUNS[0], LEAK_RUNS[0], "--sample-index", "3", "--limit",
                       "3").stdout
    assert by_name == by_index
    section = _diff_sections(by_name)["inuse_space"]
    assert section[0].startswith("inuse_space (flat, in use): total ")
    grew = section[section.index(" grew:") + 1:]
    assert grew[0].split()[-1] == "encoding/json.(*decodeState).literalStore"
    assert len([ln for ln in grew if not ln.startswith(("  ...", " shrank:"))]) >= 3
    assert any(ln.startswith("  ... ") and "more (--limit 0 shows all)" in ln for ln in grew)
    cum = _diff_sections(memgate("diff", RUNS[0], LEAK_RUNS[0], "-i", "inuse_space",
                                 "--cum").stdout)["inuse_space"]
    assert cum[0].startswith("inuse_space (cum, in use)")
    report = json.loads(memgate("diff", RUNS[0], LEAK_RUNS[0], "--format", "json").stdout)
    top_cum = max((fn for fn in report["functions"] if "inuse_space" in fn["rates"]),
                  key=lambda fn: fn["rates"]["inuse_space"]["cum"]["delta"])["name"]
    assert cum[cum.index(" grew:") + 1].split()[-1] == top_cum != grew[0].split()[-1]
    line = one_line_error(memgate("diff", RUNS[0], LEAK_RUNS[0], "-i", "cpu"))
    assert "cpu" in line


# --------------------------------------------------------------------------- 8. check --output


def test_check_output_is_the_difference_the_gate_judged(tmp_path: Path) -> None:
    """`check --output` writes a pprof profile whose per-function numbers are the report's
    deltas: rates times the candidate's duration, levels (in use) as they are; two baseline
    runs averaged, minus nothing more. `memgate top` reads it as `go tool pprof -top` does."""
    r = memgate("check", "--policy", ROOT / "examples" / "memgate.yml",
                *_baselines(*RUNS[:2]), "--duration", "60s", LEAK_RUNS[0],
                "--output", "judged.pb.gz", "--json", "report.json", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    for stype in ("inuse_space", "alloc_objects"):
        top = memgate("top", "judged.pb.gz", "-i", stype, "--format", "json", cwd=tmp_path)
        assert top.returncode == 0, top.stderr
        data = json.loads(top.stdout)
        assert data["duration_seconds"] == 60
        ours = {f["name"]: f["flat"] for f in data["functions"]}
        per = next(st["per"] for st in report["sample_types"] if st["type"] == stype)
        times = 60 if per == "s" else 1
        want = {fn["name"]: fn["rates"][stype]["flat"]["delta"] * times
                for fn in report["functions"] if stype in fn["rates"]}
        moved = {n for n, v in want.items() if abs(v) > 0}
        assert moved and set(ours) <= set(want)
        for name in moved:
            # Averaging two runs halves their values: rounding moves a number by < 1 per sample.
            assert ours.get(name, 0) == pytest.approx(want[name], rel=1e-6, abs=64), name
    # One run each of one duration: exactly `diff --output`.
    assert memgate("check", *_baselines(RUNS[0]), "--duration", "60s", RUNS[1], "-o",
                   "one.pb.gz", cwd=tmp_path).returncode in (0, 1)
    assert memgate("diff", RUNS[0], RUNS[1], "-o", "diff.pb.gz", cwd=tmp_path).returncode == 0
    tops = [json.loads(memgate("top", f, "-i", "inuse_space", "--format", "json",
                               cwd=tmp_path).stdout)["functions"]
            for f in ("one.pb.gz", "diff.pb.gz")]
    assert tops[0] == tops[1]
    # An output that would overwrite an input is refused before any work.
    (tmp_path / "cand.pb.gz").write_bytes(RUNS[1].read_bytes())
    line = one_line_error(memgate("check", *_baselines(RUNS[0]), "--duration", "60s",
                                  "cand.pb.gz", "-o", "cand.pb.gz", cwd=tmp_path))
    assert "cand.pb.gz" in line


# --------------------------------------------------------------------------- 3. saving a profile


class _PprofHandler(BaseHTTPRequestHandler):
    """A service's /debug/pprof/heap: a snapshot; ``?seconds=N`` a delta profile that, like
    some non-Go servers, records no duration; ``/auth/...`` wants a bearer token."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/auth/") and \
                self.headers.get("Authorization") != "Bearer s3cret":
            self.send_response(401)
            self.end_headers()
            return
        if url.path.endswith("/debug/pprof/heap"):
            body = NOLEAK[0].read_bytes()
            ctype = "application/octet-stream"
        else:
            body, ctype = b"<html>not a profile</html>", "text/html"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def pprof_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PprofHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _top_json(path: Path) -> dict[str, object]:
    r = memgate("top", path, "--format", "json")
    assert r.returncode == 0, r.stderr
    data: dict[str, object] = json.loads(r.stdout)
    return data


def test_fetch_saves_a_url_as_served(pprof_server: str, tmp_path: Path) -> None:
    r = memgate("fetch", f"{pprof_server}/debug/pprof/heap", "-o", "heap.pb.gz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "heap.pb.gz").read_bytes() == NOLEAK[0].read_bytes()
    assert "saved" in r.stderr and "heap.pb.gz" in r.stderr and "no duration" in r.stderr
    assert _top_json(tmp_path / "heap.pb.gz")["functions"] == _top_json(NOLEAK[0])["functions"]
    # The saved file is what baseline update takes.
    assert memgate("baseline", "update", "-c", "svc", "heap.pb.gz", "--duration", "1m",
                   "--reason", "from a URL", cwd=tmp_path).returncode == 0


def test_fetch_keeps_a_delta_urls_duration(pprof_server: str, tmp_path: Path) -> None:
    r = memgate("fetch", f"{pprof_server}/debug/pprof/heap?seconds=1", "-o", "delta.pb.gz",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "duration 1s (from the URL's seconds=)" in r.stderr
    saved = _top_json(tmp_path / "delta.pb.gz")
    assert saved["duration_seconds"] == 1
    # Everything else is the served profile's.
    assert saved["functions"] == _top_json(NOLEAK[0])["functions"]
    # ... so that a check of two delta profiles needs no --duration for them.
    r = memgate("fetch", f"{pprof_server}/debug/pprof/heap?seconds=1", "-o", "delta2.pb.gz",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = memgate("check", "--baseline", "delta.pb.gz", "delta2.pb.gz", "--format", "json",
                cwd=tmp_path)
    assert r.returncode in (0, 1), r.stderr
    rep = json.loads(r.stdout)
    assert rep["inputs"]["candidate"][0]["duration_source"] == "profile"
    assert rep["inputs"]["baseline"][0]["duration_source"] == "profile"
    # Their in-use values are growth over the window, per second; a snapshot's are levels,
    # so the two are not compared with each other.
    assert {st["type"]: st["quantity"] for st in rep["sample_types"]}["inuse_space"] == "growth"
    line = one_line_error(memgate("check", "--baseline", NOLEAK[1], "--baseline-duration", "1s",
                                  "delta.pb.gz", cwd=tmp_path))
    assert "cannot compare a heap snapshot" in line


def test_fetch_with_a_header_and_its_errors(pprof_server: str, tmp_path: Path) -> None:
    url = f"{pprof_server}/auth/debug/pprof/heap"
    line = one_line_error(memgate("fetch", url, "-o", "heap.pb.gz", cwd=tmp_path))
    assert "401" in line
    assert not list(tmp_path.iterdir()), "a failed fetch left a file"
    r = memgate("fetch", url, "-H", "Authorization: Bearer s3cret", "-o", "heap.pb.gz",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = memgate("fetch", url, "-o", "env.pb.gz", cwd=tmp_path,
                env={"MEMGATE_HTTP_HEADERS": "Authorization: Bearer s3cret"})
    assert r.returncode == 0, r.stderr
    one_line_error(memgate("fetch", f"{pprof_server}/index.html", "-o", "page.pb.gz",
                           cwd=tmp_path))
    assert not (tmp_path / "page.pb.gz").exists()
    assert memgate("fetch", url, cwd=tmp_path).returncode == 2  # -o is required


def test_top_saves_what_it_read(pprof_server: str, tmp_path: Path) -> None:
    r = memgate("top", f"{pprof_server}/debug/pprof/heap", "-i", "inuse_space", "-o",
                "heap.pb.gz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("File: seedleak\n") and "Type: inuse_space" in r.stdout
    assert (tmp_path / "heap.pb.gz").read_bytes() == NOLEAK[0].read_bytes()


# --------------------------------------------------------------------------- 6. one $schema story


MODELINE = "# yaml-language-server: $schema=policy.schema.json"


def test_one_schema_story_everywhere(tmp_path: Path) -> None:
    """docs, the example and `policy show` name the schema the same way, a file written by
    `policy schema` next to the policy; no memgate.dev address (nothing serves it)."""
    docs = (ROOT / "docs" / "policy.md").read_text()
    example = (ROOT / "examples" / "memgate.yml").read_text()
    shown = memgate("policy", "show").stdout
    assert f"```yaml\n{MODELINE}\n" in docs and "memgate policy schema > policy.schema.json" \
        in docs
    assert example.splitlines()[0] == MODELINE
    assert shown.splitlines()[0] == MODELINE
    assert "memgate policy schema > policy.schema.json" in shown.splitlines()[1]
    for text in (docs, example, shown, (ROOT / "README.md").read_text()):
        assert not re.search(r"\$schema=\S*memgate\.dev", text)
    # The example's schema is the one memgate prints (so an editor validates what memgate
    # validates), and the example is valid under it.
    assert (ROOT / "examples" / "policy.schema.json").read_text() == \
        memgate("policy", "schema").stdout
    r = memgate("policy", "check", ROOT / "examples" / "memgate.yml")
    assert r.returncode == 0 and r.stderr == ""


def test_policy_check_notes_a_missing_schema_file(tmp_path: Path) -> None:
    (tmp_path / "memgate.yml").write_text(f"{MODELINE}\nversion: 1\n")
    r = memgate("policy", "check", "memgate.yml", cwd=tmp_path)
    assert r.returncode == 0
    assert r.stderr.startswith("memgate: note: memgate.yml: the $schema file "
                               "policy.schema.json does not exist")
    assert "memgate policy schema > policy.schema.json" in r.stderr
    # Doing what it says: the note goes away, and the file is the schema.
    schema = memgate("policy", "schema", cwd=tmp_path).stdout
    (tmp_path / "policy.schema.json").write_text(schema)
    assert json.loads(schema)["$id"].endswith("policy.schema.json")
    assert memgate("policy", "check", "memgate.yml", cwd=tmp_path).stderr == ""
    # An address nothing serves is noted too; a JSON policy's "$schema" key counts.
    (tmp_path / "p.json").write_text(json.dumps(
        {"$schema": "https://memgate.dev/schemas/policy.schema.json", "version": 1}))
    r = memgate("policy", "check", "p.json", cwd=tmp_path)
    assert r.returncode == 0 and "is not served by anything" in r.stderr


# --------------------------------------------------------------------------- 7. annotations on code


def _with_source(profile: bytes, files: dict[str, tuple[str, int]]) -> bytes:
    """``profile`` (gzip) with the named functions' source files and start lines replaced."""
    import gzip

    from memgate.profile import profile_pb2

    msg = profile_pb2.Profile()
    msg.ParseFromString(gzip.decompress(profile))
    table = list(msg.string_table)
    for fn in msg.function:
        name = table[fn.name].decode()
        if name in files:
            path, start = files[name]
            table.append(path.encode())
            fn.filename = len(table) - 1
            fn.start_line = start
    del msg.string_table[:]
    msg.string_table.extend(table)
    return gzip.compress(msg.SerializeToString(), mtime=0)


def _leak_run(ws: Any, files: dict[str, tuple[str, int]]) -> list[str]:
    from tests.test_action import heap_profile, run_action

    (ws.root / "profiles" / "leak-src.pb.gz").write_bytes(
        _with_source(heap_profile(800, 3), files))
    run = run_action(ws, {"profiles": "profiles/leak-src.pb.gz", "component": "svc",
                          "duration": "60s", "fail-on-regression": "false"})
    assert run.returncode == 0, run.stdout + run.stderr
    return [a for a in run.annotations if "memgate defaults%3A main.leaky::" in a]


def test_annotations_point_at_the_functions_file(tmp_path: Path) -> None:
    from tests.test_action import make_workspace

    ws = make_workspace(tmp_path)
    (ws.root / "pkg").mkdir()
    (ws.root / "pkg" / "leak.go").write_text("package pkg\n")
    # A -trimpath build names files by import path: the suffix pkg/leak.go is the repo's file.
    notes = _leak_run(ws, {"main.leaky": ("github.com/org/repo/pkg/leak.go", 42)})
    assert notes and all(a.startswith("::error file=pkg/leak.go,line=42,title=memgate ")
                         for a in notes), notes
    # An absolute build path, and no start line: the first line of the line table.
    notes = _leak_run(ws, {"main.leaky": ("/home/runner/work/repo/repo/pkg/leak.go", 0)})
    assert notes and all(a.startswith("::error file=pkg/leak.go,line=13,") for a in notes), notes
    # A file the repository does not have: no file= (GitHub would show it nowhere).
    notes = _leak_run(ws, {"main.leaky": ("github.com/org/repo/pkg/gone.go", 3)})
    assert notes and all(a.startswith("::error title=memgate ") for a in notes), notes


def test_annotation_paths_from_a_hostile_profile(tmp_path: Path) -> None:
    from tests.test_action import make_workspace

    ws = make_workspace(tmp_path)
    (ws.root / "pkg").mkdir()
    outside = tmp_path / "secret.go"
    outside.write_text("secret\n")
    (ws.root / "pkg" / "link.go").symlink_to(outside)
    (ws.root / "pkg" / "a:b,c%.go").write_text("package pkg\n")
    for hostile in ("../secret.go", "/../../secret.go", str(outside), "pkg/link.go",
                    "x/../../secret.go", "pkg/leak.go\x00", ""):
        notes = _leak_run(ws, {"main.leaky": (hostile, 5)})
        assert notes and all(a.startswith("::error title=") for a in notes), (hostile, notes)
    # Commas, colons and percent signs cannot break the properties.
    notes = _leak_run(ws, {"main.leaky": ("github.com/o/r/pkg/a:b,c%.go", 9)})
    assert notes and all(a.startswith("::error file=pkg/a%3Ab%2Cc%25.go,line=9,title=")
                         for a in notes), notes
    # A newline in a path cannot start another workflow command.
    (ws.root / "pkg" / "n\n::error::x.go").write_text("package pkg\n")
    notes = _leak_run(ws, {"main.leaky": ("pkg/n\n::error::x.go", 1)})
    assert notes and all(a.startswith("::error file=pkg/n%0A%3A%3Aerror%3A%3Ax.go,line=1,")
                         for a in notes), notes
