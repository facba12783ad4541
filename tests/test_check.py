"""`memgate check` and `memgate diff` end to end on real Go profiles of the seed's leak.

The fixtures are made by tests/gen/seedleak (JSON decoded into interface{} values; with
-leak-fraction a share of them is retained). Separate no-leak runs must pass against each other,
leak runs must fail naming encoding/json.(*decodeState).literalStore for the in-use types.

Report goldens live in tests/fixtures/reports/; `pytest --update-goldens` rewrites them (review
the diff) and a mismatch saves the new output beside the golden as `*.failed`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from memgate import __version__
from memgate.errors import EXIT_ERROR, EXIT_FAIL, EXIT_OK
from tests import clirun

ROOT = Path(__file__).resolve().parent.parent
PROFILES = Path("tests/fixtures/profiles")
REPORTS = ROOT / "tests" / "fixtures" / "reports"
SCHEMA = json.loads((ROOT / "memgate" / "schemas" / "report.schema.json").read_text())
LITERAL_STORE = "encoding/json.(*decodeState).literalStore"
# Independent runs of one workload (tests/gen/noise.sh): differences are sampling noise.
NOISE = Path("tests/fixtures/noise")
NOLEAK = [NOISE / f"noleak-{i:02d}.pb.gz" for i in (1, 2, 3, 4)]
LEAK = [NOISE / f"leak-{i:02d}.pb.gz" for i in (1, 2, 3)]


def memgate(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    full_env.update(env or {})
    return clirun.run(args, cwd=cwd, env=full_env)


def base_args(*baselines: Path) -> list[str]:
    out: list[str] = []
    for b in baselines:
        out += ["--baseline", str(b)]
    return out


@pytest.mark.parametrize(("base", "cand"), [(0, 1), (1, 2), (2, 3), (3, 0)])
def test_noleak_runs_pass_against_each_other(base: int, cand: int) -> None:
    r = memgate("check", *base_args(NOLEAK[base]), NOLEAK[cand], "--duration", "30s",
                "--format", "json")
    assert r.returncode == EXIT_OK, r.stdout + r.stderr
    assert json.loads(r.stdout)["verdict"] in ("pass", "warn")


@pytest.mark.parametrize(("base", "cand"), [(0, 0), (1, 1), (2, 2), (0, 2)])
def test_leak_runs_fail_naming_literal_store(base: int, cand: int) -> None:
    r = memgate("check", *base_args(NOLEAK[base]), LEAK[cand], "--duration", "30s",
                "--format", "json")
    assert r.returncode == EXIT_FAIL, r.stdout + r.stderr
    report = json.loads(r.stdout)
    failing = {(f["function"], f["sample_type"]) for f in report["findings"]
               if f["severity"] == "fail"}
    decode_state = {f for f in failing if f[0].startswith("encoding/json.(*decodeState)")}
    assert {st for _, st in decode_state} >= {"inuse_space", "inuse_objects"} or \
        (LITERAL_STORE, "inuse_space") in failing, failing


def test_text_output_names_the_leak() -> None:
    r = memgate("check", *base_args(NOLEAK[0]), LEAK[0], "--duration", "30s")
    assert r.returncode == EXIT_FAIL
    assert r.stdout.startswith("memgate: FAIL")
    assert LITERAL_STORE in r.stdout
    assert "\x1b[" not in r.stdout  # no colour when not a terminal


def _normalize(text: str) -> str:
    text = text.replace(__version__, "<version>")
    return text


def _same_json(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            a == pytest.approx(b, rel=1e-9, abs=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b))
    return a == b


def _check_golden(name: str, text: str, update: bool) -> None:
    path = REPORTS / name
    text = _normalize(text)
    if update or not path.exists():
        path.write_text(text)
        if not update:
            pytest.fail(f"golden {name} did not exist; written, review and commit it")
        return
    expected = path.read_text()
    if name.endswith(".json") and _same_json(json.loads(text), json.loads(expected)):
        return  # equal up to the last bits of float sums (their order differs between paths)
    if text != expected:
        path.with_suffix(path.suffix + ".failed").write_text(text)
        assert text == expected, f"{name} differs (new output saved as {name}.failed)"


SCENARIOS = {
    "pass": (["--policy", "examples/memgate.yml", "--component", "example",
              *base_args(NOLEAK[0], NOLEAK[1]), str(NOLEAK[2])], EXIT_OK, "pass"),
    "warn": (["--policy", "tests/fixtures/reports/warn-policy.yml", "--component", "example",
              *base_args(NOLEAK[0], NOLEAK[1]), str(LEAK[0])], EXIT_OK, "warn"),
    "fail": (["--policy", "examples/memgate.yml", "--component", "example",
              *base_args(NOLEAK[0], NOLEAK[1]), str(LEAK[0])], EXIT_FAIL, "fail"),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_report_goldens(scenario: str, tmp_path: Path, update_goldens: bool) -> None:
    args, code, verdict = SCENARIOS[scenario]
    md = tmp_path / "summary.md"
    js = tmp_path / "report.json"
    r = memgate("check", *args, "--summary", md, "--json", js)
    assert r.returncode == code, r.stdout + r.stderr
    report = json.loads(js.read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(report)
    assert report["verdict"] == verdict
    assert md.read_text().startswith("## ")
    assert {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}[verdict] in md.read_text()
    _check_golden(f"{scenario}.md", md.read_text(), update_goldens)
    _check_golden(f"{scenario}.json", js.read_text(), update_goldens)


def test_markdown_goes_to_step_summary_under_actions(tmp_path: Path) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("previous step\n")
    r = memgate("check", *base_args(NOLEAK[0]), LEAK[0], "--duration", "30s",
                env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert r.returncode == EXIT_FAIL
    text = summary.read_text()
    assert text.startswith("previous step\n## ❌ memgate: **FAIL**")
    assert "<details>" in text


def test_markdown_never_exceeds_one_mib() -> None:
    from memgate.report.markdown import render_markdown

    report = json.loads((REPORTS / "fail.json").read_text())
    fn = next(f for f in report["functions"]
              if any(r["flat"]["candidate"] for r in f["rates"].values()))
    report["functions"] = [dict(fn, name=f"pkg.F{i:06d}" + "x" * 200) for i in range(20000)]
    md = render_markdown(report)
    assert len(md.encode()) <= 1024 * 1024
    assert "Table truncated" in md
    assert md.rstrip().endswith("</details>")


def test_no_duration_is_exit_3_with_a_hint() -> None:
    r = memgate("check", *base_args(NOLEAK[0]), NOLEAK[1])
    assert r.returncode == EXIT_ERROR
    line = r.stderr.strip()
    assert line.count("\n") == 0
    assert "has no duration" in line and "--duration" in line and "--no-normalize" in line


def test_delta_profile_brings_its_own_duration() -> None:
    delta = PROFILES / "seedleak-delta.pb.gz"
    r = memgate("check", *base_args(delta), delta, "--format", "json")
    assert r.returncode == EXIT_OK, r.stderr
    report = json.loads(r.stdout)
    assert report["inputs"]["candidate"][0]["duration_source"] == "profile"
    assert report["inputs"]["candidate"][0]["duration_seconds"] == pytest.approx(2.0, abs=0.1)


def test_duration_flag_serves_both_sides_and_scales_flows_not_levels() -> None:
    def literal(duration: str, sample_type: str) -> float:
        r = memgate("diff", NOLEAK[0], LEAK[0], "--duration", duration, "--format", "json")
        assert r.returncode == 0, r.stderr
        rep = json.loads(r.stdout)
        fn = next(f for f in rep["functions"] if f["name"] == LITERAL_STORE)
        return float(fn["rates"][sample_type]["flat"]["candidate"])

    # Allocation is a flow: per second of the duration given.
    assert literal("10s", "alloc_space") == pytest.approx(6 * literal("1m", "alloc_space"))
    # What is in use is a level: the same whatever the duration (it was divided before).
    assert literal("10s", "inuse_space") == literal("1m", "inuse_space") > 0


def test_baseline_duration_differs_from_candidate() -> None:
    # The same profile as baseline over 33 s and candidate over 30 s: each side is divided by
    # its own duration (close enough not to look like a runner-speed difference).
    r = memgate("diff", NOLEAK[0], NOLEAK[0], "--duration", "30s", "--baseline-duration", "33s",
                "--format", "json")
    rep = json.loads(r.stdout)
    assert not any("fixed-work" in w for w in rep["warnings"])
    assert [t["per"] for t in rep["sample_types"]] == ["s", "s", "", ""]
    tot = {t["sample_type"]: t for t in rep["totals"]}
    assert tot["alloc_space"]["candidate_rate"] == pytest.approx(
        1.1 * tot["alloc_space"]["baseline_rate"])
    assert tot["inuse_space"]["candidate_rate"] == tot["inuse_space"]["baseline_rate"]


def test_same_work_at_different_wall_times_is_compared_per_run() -> None:
    # The same work (the same profile) timed at 60 s and at 30 s: per second it would double,
    # which measures the runner. memgate says the workload looks fixed-work and compares the
    # flows per run; the in-use levels are levels either way.
    r = memgate("diff", NOLEAK[0], NOLEAK[0], "--duration", "30s", "--baseline-duration", "60s",
                "--format", "json")
    rep = json.loads(r.stdout)
    assert any("looks fixed-work" in w and "2.00x" in w for w in rep["warnings"])
    assert [t["per"] for t in rep["sample_types"]] == ["run", "run", "", ""]
    for tot in rep["totals"]:
        assert tot["candidate_rate"] == pytest.approx(tot["baseline_rate"])


def test_no_normalize_compares_raw_values() -> None:
    r = memgate("check", *base_args(NOLEAK[0]), LEAK[0], "--no-normalize", "--format", "json")
    assert r.returncode == EXIT_FAIL
    rep = json.loads(r.stdout)
    assert rep["rate_unit"] == "per_profile"
    assert all(i["duration_source"] == "none" for i in rep["inputs"]["candidate"])
    # Findings speak of amounts per profile for flows and of levels for what is in use, like
    # the tables, never of rates per second.
    everything = rep["findings"] + rep["within_noise"]
    assert rep["findings"] and all("/s " not in f["message"] for f in everything)
    flows = [f for f in everything if f["sample_type"].startswith("alloc_")]
    assert flows and all("/profile" in f["message"] for f in flows)
    assert all("/profile" not in f["message"] for f in rep["findings"]
               if f["sample_type"].startswith("inuse_"))
    # A rate limit is given as the amount per profile it means here, with the policy's text.
    assert any("over the limit of 20% and 17.1 KiB/profile (1MiB/min)" in f["message"]
               for f in flows)


def test_diff_without_durations_falls_back_to_raw_values() -> None:
    r = memgate("diff", PROFILES / "seedleak-noleak-1.pb.gz", PROFILES / "seedleak-leak-1.pb.gz",
                "--format", "json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["verdict"] is None and rep["normalized"] is False
    fn = next(f for f in rep["functions"] if f["name"] == LITERAL_STORE)
    flat = fn["rates"]["inuse_space"]["flat"]
    # pprof -diff_base on the same pair (golden) shows literalStore's flat delta.
    golden = (ROOT / "tests/fixtures/golden/diff/seedleak-noleak-1.pb.gz__seedleak-leak-1.pb.gz"
              / "functions.3.txt").read_text()
    m = re.search(r"^\s*(-?\d+)B .*  encoding/json\.\(\*decodeState\)\.literalStore$", golden,
                  re.M)
    assert m is not None
    assert flat["delta"] == int(m.group(1))


def test_diff_of_a_contention_profile_names_what_it_counts() -> None:
    """A block profile (contentions/count, delay/nanoseconds): the counts read as contentions,
    not objects, raw values read "per profile" throughout, and the time type is said to be
    left out rather than silently dropped."""
    block = PROFILES / "go-kinds-block.pb.gz"
    r = memgate("diff", "--no-normalize", block, block)
    assert r.returncode == 0, r.stderr
    assert "contentions (flat, per profile): total " in r.stdout
    assert " contentions/profile -> " in r.stdout and "objects" not in r.stdout
    assert "warning: not compared: delay (nanoseconds)" in r.stdout
    heap = PROFILES / "seedleak-noleak-1.pb.gz"
    r = memgate("diff", "--no-normalize", heap, heap)
    # Allocations per profile; what is in use is a level, never per anything.
    assert "alloc_objects (flat, per profile): total " in r.stdout
    assert "inuse_objects (flat, in use): total " in r.stdout
    assert " objects/profile" in r.stdout
    assert "not compared" not in r.stdout


def test_the_same_profile_twice_on_one_side_is_refused(tmp_path: Path) -> None:
    """Repeated runs are averaged as independent: one profile given twice (under two names, as
    a glob plus a path may do) would understate the noise and turn a clean run into a FAIL."""
    copy = tmp_path / "copy.pb.gz"
    copy.write_bytes(NOLEAK[1].read_bytes())
    r = memgate("check", *base_args(NOLEAK[0]), NOLEAK[1], copy, "--duration", "15s")
    assert r.returncode == EXIT_ERROR
    assert r.stderr.strip().splitlines() == [
        f"memgate: {copy}: the same candidate profile is given twice ({NOLEAK[1]} and {copy}); "
        "repeated runs must be separate profiles"]
    r = memgate("check", *base_args(NOLEAK[0], NOLEAK[0]), NOLEAK[1], "--duration", "15s")
    assert r.returncode == EXIT_ERROR and "the same baseline profile is given twice" in r.stderr
    # The same profile on both sides is a legitimate (if dull) comparison.
    assert memgate("check", *base_args(NOLEAK[0]), NOLEAK[0], "--duration", "15s").returncode == 0


def test_incompatible_profiles_exit_3_naming_both() -> None:
    r = memgate("check", *base_args(NOLEAK[0]), PROFILES / "nodejs-heap.pb.gz",
                "--duration", "1m")
    assert r.returncode == EXIT_ERROR
    assert "incompatible profiles" in r.stderr
    assert "noleak-01.pb.gz" in r.stderr and "nodejs-heap.pb.gz" in r.stderr


def test_cpu_profile_is_refused_by_memory_rules() -> None:
    cpu = PROFILES / "go-cpu-labels.pb.gz"
    r = memgate("check", *base_args(cpu), cpu)
    assert r.returncode == EXIT_ERROR
    assert "none of the sample types the policy gates" in r.stderr
    assert "memory profile" in r.stderr


def test_missing_baseline(tmp_path: Path) -> None:
    r = memgate("check", "--component", "nope", "--baselines", tmp_path, NOLEAK[0],
                "--duration", "30s")
    assert r.returncode == EXIT_ERROR
    assert "no baseline for component 'nope'" in r.stderr
    assert "memgate baseline update" in r.stderr
    js = tmp_path / "r.json"
    r = memgate("check", "--component", "nope", "--baselines", tmp_path, NOLEAK[0],
                "--duration", "30s", "--allow-missing-baseline", "--json", js)
    assert r.returncode == EXIT_OK
    rep = json.loads(js.read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(rep)
    assert rep["verdict"] == "warn" and "no baseline" in rep["warnings"][0]


def test_invalid_policy_is_exit_3_with_path(tmp_path: Path) -> None:
    pol = tmp_path / "memgate.yml"
    pol.write_text("version: 1\nrules:\n  - name: x\n    match: f\n    max_increase: lots\n")
    r = memgate("check", "--policy", pol, *base_args(NOLEAK[0]), NOLEAK[1], "--duration", "1m")
    assert r.returncode == EXIT_ERROR
    assert "rules[0].max_increase" in r.stderr
    # ./memgate.yml is picked up by default
    r = memgate("check", *base_args(ROOT / NOLEAK[0]), ROOT / NOLEAK[1], "--duration", "1m",
                cwd=tmp_path)
    assert r.returncode == EXIT_ERROR and "rules[0].max_increase" in r.stderr


def test_report_files_are_not_half_written_on_error(tmp_path: Path) -> None:
    js = tmp_path / "report.json"
    r = memgate("check", *base_args(NOLEAK[0]), tmp_path / "missing.pb.gz", "--duration",
                "1m", "--json", js)
    assert r.returncode == EXIT_ERROR
    assert not js.exists()
    assert list(tmp_path.iterdir()) == []


def test_repeated_runs_average() -> None:
    r = memgate("diff", NOLEAK[0], NOLEAK[1], "--duration", "1m", "--format", "json")
    one = json.loads(r.stdout)
    r = memgate("check", *base_args(NOLEAK[0], NOLEAK[1]), NOLEAK[1], "--duration", "1m",
                "--format", "json")
    two = json.loads(r.stdout)
    t1 = {t["sample_type"]: t for t in one["totals"]}
    t2 = {t["sample_type"]: t for t in two["totals"]}
    for st in ("inuse_space", "alloc_space"):
        expected = (t1[st]["baseline_rate"] + t1[st]["candidate_rate"]) / 2
        assert t2[st]["baseline_rate"] == pytest.approx(expected)


def _run_on_tty(args: list[str], env: dict[str, str]) -> str:
    """Run memgate with stdout on a pseudo-terminal; return what it printed."""
    import pty

    master, slave = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "GITHUB_ACTIONS")}
    full_env.update(env)
    proc = subprocess.Popen([sys.executable, "-m", "memgate", *args], cwd=ROOT, stdout=slave,
                            stderr=subprocess.DEVNULL, env=full_env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait()
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    args = ["check", *base_args(NOLEAK[0]), str(LEAK[0]), "--duration", "30s"]
    assert "\x1b[31;1mFAIL" in _run_on_tty(args, {})
    assert "\x1b[" not in _run_on_tty(args, {"NO_COLOR": "1"})


def test_leak_shape_marks_growth_in_the_number_of_objects() -> None:
    from memgate.report.build import _leak_note, _leak_shapes

    def entry(bs: float, bo: float, cs: float, co: float, kind: str,
              okind: str | None = None) -> dict[str, object]:
        def r(b: float, c: float, k: str) -> dict[str, object]:
            return {"baseline": b, "candidate": c, "delta": c - b, "kind": k}
        return {"rates": {"inuse_space": {"flat": r(bs, cs, kind)},
                          "inuse_objects": {"flat": r(bo, co, okind or kind)}}}

    functions = {
        # the seed: 64-byte objects, ten times as many
        "leak": entry(64_000, 1_000, 640_000, 10_000, "changed"),
        # the real-Go fixture: a baseline that kept one sample (64 B), thirty times as many
        # objects of a mix of sizes (45 B on average) with the leak
        "mixed": entry(137 * 64, 137, 4233 * 45, 4233, "changed"),
        # no baseline at all: every in-use object is one more
        "new": entry(0, 0, 4233 * 45, 4233, "new"),
        # bigger objects, not more of them: ten times, or 20% (bigheap -variant)
        "bigger": entry(64_000, 1_000, 640_000, 1_000, "changed", "unchanged"),
        "a bit bigger": entry(568_000, 1_000, 683_000, 1_000, "changed", "~"),
        # 10% more objects that are also 10% bigger: the size explains as much as the count
        "both": entry(64_000, 1_000, 77_440, 1_100, "changed"),
        # more of the same size, but within noise
        "noise": entry(64_000, 1_000, 70_400, 1_100, "~"),
        # objects of no size in the baseline (a hand-made profile): no mean size, no crash
        "sizeless": entry(0, 100_000, 640_000_000, 10_000_000, "changed"),
    }
    _leak_shapes(functions)  # type: ignore[arg-type]
    shaped = {k: (v["leak_shaped"], v.get("leak_shape")) for k, v in functions.items()}
    assert shaped == {
        "leak": (True, "same-size"), "mixed": (True, "more"), "new": (True, "new"),
        "bigger": (False, None), "a bit bigger": (False, None), "both": (False, None),
        "noise": (False, None), "sizeless": (False, None),
    }
    assert functions["leak"]["object_size"] == {"baseline": 64.0, "candidate": 64.0}
    assert _leak_note(functions["leak"]) == ", leak-shaped: 10x the objects, of the same size"
    assert _leak_note(functions["mixed"]) == ", leak-shaped: 30.9x the objects, not bigger ones"
    assert "where the baseline kept none" in _leak_note(functions["new"])


def test_real_go_leak_is_leak_shaped_and_no_leak_is_not() -> None:
    """On the real-Go fixtures: literalStore's growth is leak-shaped; between two runs without
    the leak no function is."""
    r = memgate("check", *base_args(NOLEAK[0]), LEAK[0], "--duration", "1m", "--format", "json")
    rep = json.loads(r.stdout)
    fn = {f["name"]: f for f in rep["functions"]}
    assert fn[LITERAL_STORE]["leak_shaped"] is True
    assert any(f["function"] == LITERAL_STORE and f["leak_shaped"] and "leak-shaped" in
               f["message"] for f in rep["findings"])
    r = memgate("diff", NOLEAK[0], NOLEAK[1], "--duration", "1m", "--format", "json")
    assert not any(f.get("leak_shaped") for f in json.loads(r.stdout)["functions"])


def test_duration_overriding_the_profiles_own_is_a_warning() -> None:
    delta = PROFILES / "seedleak-delta.pb.gz"
    r = memgate("check", *base_args(delta), delta, "--duration", "1m", "--format", "json")
    rep = json.loads(r.stdout)
    assert r.returncode == EXIT_OK
    assert rep["verdict"] == "warn"
    assert any("the duration from --duration (60s) is used instead of the 2" in w
               for w in rep["warnings"])
    # The baseline (the same delta profile) keeps its own duration: say how to override both.
    assert any(w.startswith("--duration applies to the candidate; the baseline keeps")
               for w in rep["warnings"])
    r = memgate("check", *base_args(delta), delta, "--duration", "1m", "--baseline-duration",
                "1m", "--format", "json")
    assert not any(w.startswith("--duration applies") for w in json.loads(r.stdout)["warnings"])
    r = memgate("check", *base_args(delta), delta, "--format", "json")
    assert json.loads(r.stdout)["warnings"] == []


def test_implausible_recorded_duration_is_a_warning() -> None:
    from memgate.checkrun import duration_warnings
    from memgate.compare import RunInput
    from memgate.profile.decode import decode
    from memgate.profile.limits import InputLimits

    path = PROFILES / "java-jfr-alloc-tlab-bytes.pb.gz"
    prof = decode(path.read_bytes(), str(path), InputLimits())
    run = RunInput(str(path), "0" * 64, prof.duration_seconds, "profile", prof)
    (warning,) = duration_warnings([], [run])
    assert "implausible" in warning and "days" in warning
    short = RunInput(str(path), "0" * 64, 1e-7, "--duration", prof)
    (warning,) = [w for w in duration_warnings([], [short]) if "short" in w]
    assert warning == (f"{path}: a duration of 1e-07s (--duration) is implausibly short for a "
                       "profile: rates and absolute limits are per second of it")


def test_report_files_get_ordinary_permissions(tmp_path: Path) -> None:
    js = tmp_path / "r.json"
    r = memgate("check", *base_args(NOLEAK[0]), NOLEAK[1], "--duration", "30s", "--json", js)
    assert r.returncode == EXIT_OK
    mask = os.umask(0)
    os.umask(mask)
    assert js.stat().st_mode & 0o777 == 0o666 & ~mask


def test_check_without_component_or_baseline_is_a_usage_error() -> None:
    r = memgate("check", NOLEAK[1], "--duration", "15s")
    assert r.returncode == 2
    assert "Error: give --component NAME (to read baselines/NAME) or --baseline PROFILE" in r.stderr


def test_a_misspelt_sample_type_in_the_policy_is_a_warning(tmp_path: Path) -> None:
    """`sample_types: [inuse_space, inuse_objcts]` must not quietly stop gating objects."""
    pol = tmp_path / "p.yml"
    pol.write_text("version: 1\ndefaults:\n  sample_types: [inuse_space, inuse_objcts]\n")
    r = memgate("check", "--policy", pol, *base_args(NOLEAK[0]), NOLEAK[1], "--duration", "15s",
                "--format", "json")
    rep = json.loads(r.stdout)
    assert rep["verdict"] == "warn"
    assert rep["warnings"] == [
        f"{pol}: the policy gates sample type inuse_objcts, which the profiles do not have (did "
        "you mean inuse_objects?); they have alloc_objects, alloc_space, inuse_objects, "
        "inuse_space"]
    # Well-known heap types are not reported for profiles that lack them.
    pol.write_text("version: 1\ndefaults:\n  sample_types: [inuse_space, space, objects]\n")
    r = memgate("check", "--policy", pol, *base_args(NOLEAK[0]), NOLEAK[1], "--duration", "15s",
                "--format", "json")
    assert json.loads(r.stdout)["warnings"] == []


def test_a_component_the_policy_does_not_define_is_a_note(tmp_path: Path) -> None:
    """A note, not a warning: the verdict stays PASS (a WARN headline over "0 failing,
    0 warning" reads as a problem), and the note is printed where a typo would be seen."""
    pol = tmp_path / "p.yml"
    pol.write_text("version: 1\ncomponents:\n  decode:\n    duration: 15s\n")
    args = ["check", "--policy", pol, *base_args(NOLEAK[0]), NOLEAK[1]]
    r = memgate(*args, "--format", "json", "--component", "decdoe", "--duration", "15s")
    rep = json.loads(r.stdout)
    note = (f"{pol}: the policy defines no component decdoe (it defines decode); its global "
            "rules apply")
    assert r.returncode == 0 and rep["verdict"] == "pass"
    assert rep["warnings"] == [] and rep["notes"] == [note]
    text = memgate(*args, "--component", "decdoe", "--duration", "15s").stdout
    assert text.splitlines()[:3] == ["memgate: PASS (decdoe)", f"note: {note}",
                                     "0 failing, 0 warning"]
    md = memgate(*args, "--format", "markdown", "--component", "decdoe", "--duration",
                 "15s").stdout
    assert f"> [!NOTE]\n> {note}" in md and "[!WARNING]" not in md
    # The right name: its duration applies, no note.
    rep = json.loads(memgate(*args, "--format", "json", "--component", "decode").stdout)
    assert rep["notes"] == [] and rep["inputs"]["candidate"][0]["duration_source"] == "policy"


def test_explicit_step_summary(tmp_path: Path) -> None:
    """--step-summary appends wherever $GITHUB_STEP_SUMMARY is set, and says so when not."""
    target = tmp_path / "summary.md"
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS",
                                                             "GITHUB_STEP_SUMMARY")}
    r = memgate("diff", "--step-summary", NOLEAK[0], NOLEAK[1],
                env={**env, "GITHUB_STEP_SUMMARY": str(target)})
    assert r.returncode == 0 and target.read_text().startswith("## 📊 memgate: **DIFF**")
    r = memgate("diff", "--step-summary", NOLEAK[0], NOLEAK[1], env=env)
    assert r.stderr == ("memgate: warning: --step-summary: $GITHUB_STEP_SUMMARY is not set; "
                        "nothing appended\n")


def test_an_unsymbolized_profile_is_a_warning() -> None:
    """A legacy Go heap profile has only addresses (pprof shows one `<unknown>` row): rules
    would compare that, not functions."""
    legacy = PROFILES / "seedleak-legacy.heap"
    r = memgate("check", "--no-normalize", *base_args(legacy), legacy, "--format", "json")
    rep = json.loads(r.stdout)
    assert any(w.startswith(f"{legacy}: the profile has no function names (unsymbolized)")
               for w in rep["warnings"])
    r = memgate("check", *base_args(NOLEAK[0]), NOLEAK[1], "--duration", "15s", "--format",
                "json")
    assert not any("unsymbolized" in w for w in json.loads(r.stdout)["warnings"])


# --------------------------------------------------------------------------- verdicts by kind


def _report(*args: str | Path) -> dict[str, Any]:
    r = memgate("check", *args, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def test_the_duration_does_not_move_an_in_use_verdict() -> None:
    """A leak is growth of what is in use: the same pair at --duration 4s and at 24h gives
    the same verdict and the same in-use findings (before, 4s failed 9 findings and 60s
    warned)."""
    runs = [_report(*base_args(NOLEAK[0]), LEAK[0], "--duration", d) for d in ("4s", "24h")]
    assert [r["verdict"] for r in runs] == ["fail", "fail"]
    inuse = [sorted((f["function"], f["sample_type"], f["candidate_rate"])
                    for f in r["findings"] if f["sample_type"].startswith("inuse_"))
             for r in runs]
    assert inuse[0] and inuse[0] == inuse[1]


def test_work_compares_flows_per_unit_of_work() -> None:
    rep = _report(*base_args(NOLEAK[0]), NOLEAK[1], "--work", "400000")
    per = {st["type"]: st["per"] for st in rep["sample_types"]}
    assert per == {"alloc_objects": "op", "alloc_space": "op", "inuse_objects": "",
                   "inuse_space": ""}
    assert [i["duration_source"] for i in rep["inputs"]["candidate"]] == ["none"]
    tot = {t["sample_type"]: t for t in rep["totals"]}
    # One op of this workload decodes one payload: thousands of bytes, not gigabytes.
    assert 1_000 < tot["alloc_space"]["candidate_rate"] < 100_000
    r = memgate("check", *base_args(NOLEAK[0]), NOLEAK[1], "--work", "400000")
    assert "/op" in r.stdout and "B/s" not in r.stdout


def test_no_duration_and_no_work_says_how_to_give_one() -> None:
    r = memgate("check", "--baseline", NOLEAK[0], NOLEAK[1])
    assert r.returncode == 3 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--work N" in lines[0] and "--duration" in lines[0]


def test_a_rule_that_matches_nothing_is_a_warning_with_the_closest_names(tmp_path: Path) -> None:
    policy = tmp_path / "p.yml"
    policy.write_text("version: 1\nrules:\n  - name: json-store\n"
                      "    match: 'encoding/json.(*decodeState).literalStor'\n"
                      "    max_increase: '5%'\n")
    rep = _report("--policy", policy, *base_args(NOLEAK[0]), NOLEAK[1], "--duration", "15s")
    warning = next(w for w in rep["warnings"] if "json-store" in w)
    assert "matches no function" in warning and LITERAL_STORE in warning


def test_a_rate_limit_on_in_use_types_says_what_to_write(tmp_path: Path) -> None:
    policy = tmp_path / "p.yml"
    policy.write_text("version: 1\nrules:\n  - name: json\n    match: 'encoding/json.*'\n"
                      "    sample_types: [inuse_space]\n    max_increase_rate: 256KiB/min\n")
    rep = _report("--policy", policy, *base_args(NOLEAK[0]), NOLEAK[1], "--duration", "15s")
    warning = next(w for w in rep["warnings"] if "'json'" in w)
    assert "levels" in warning and "max_increase_level" in warning and "'256KiB'" in warning


def test_every_check_states_its_detection_floor() -> None:
    rep = _report(*base_args(NOLEAK[0]), NOLEAK[1], "--duration", "15s")
    floors = {f["sample_type"]: f for f in rep["floors"]}
    assert set(floors) == {"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"}
    inuse = floors["inuse_space"]
    # One run a side at Go's 512 KiB sampling: megabytes, not bytes or gigabytes.
    assert 2 * 2**20 < inuse["new_function"] < 64 * 2**20
    assert inuse["total"] >= inuse["new_function"] and inuse["power"] == 0.8
    assert all(t["floor"] > 0 for t in inuse["top"])
    text = memgate("check", *base_args(NOLEAK[0]), NOLEAK[1], "--duration", "15s").stdout
    assert "detection floor (99% confidence, 80% power):" in text
    assert "MemProfileRate" in memgate("check", *base_args(NOLEAK[0]), NOLEAK[1], "--duration",
                                       "15s", "--format", "markdown").stdout
    # More runs lower it.
    more = _report(*base_args(*NOLEAK[:3]), NOLEAK[3], "--duration", "15s")
    more_inuse = next(f for f in more["floors"] if f["sample_type"] == "inuse_space")
    assert more_inuse["total"] < inuse["total"]


@pytest.mark.parametrize("args", [["diff", "-", "-"], ["check", "--baseline", "-", "-"]])
def test_standard_input_twice_is_a_usage_error(args: list[str]) -> None:
    """One stream cannot be two profiles: a usage error before anything is read."""
    data = (PROFILES / "seedleak-noleak-1.pb.gz").read_bytes()
    out = clirun.run(args, input=data, text=False)
    assert out.returncode == 2
    assert b"standard input ('-') can be given only once" in out.stderr


def test_a_profile_name_that_is_not_utf8_is_refused_before_the_work(tmp_path: Path) -> None:
    """The JSON report names every input; a name that is not text would be invalid Unicode
    there. As in the Action: one line, exit 3, nothing written."""
    name = os.fsdecode(b"nu-\xff.pb.gz")
    (tmp_path / name).write_bytes((PROFILES / "seedleak-noleak-1.pb.gz").read_bytes())
    out = clirun.run(["diff", PROFILES.resolve() / "seedleak-noleak-2.pb.gz", tmp_path / name,
                      "--json", tmp_path / "r.json"])
    assert out.returncode == 3
    assert "is not valid UTF-8; rename the profile" in out.stderr
    assert "nu-\\xff.pb.gz" in out.stderr
    assert not (tmp_path / "r.json").exists()
