"""``memgate report merge``: one verdict and one summary from a CI matrix's JSON reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from memgate.cli import main
from memgate.cli.report import LoadedReport, render_merged_markdown
from memgate.report.markdown import MARKDOWN_LIMIT
from tests.test_action import heap_profile


def memgate(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Reports of ``memgate check``: ``api`` passes, ``ingest`` fails, ``worker`` warns (its
    baseline is missing and allowed to be), ``diff`` is a ``memgate diff`` report."""
    d = tmp_path_factory.mktemp("reports")
    (d / "base.pb.gz").write_bytes(heap_profile(8, 1))
    (d / "ok.pb.gz").write_bytes(heap_profile(8, 1))
    (d / "leak.pb.gz").write_bytes(heap_profile(800, 3))
    out = {}
    for name, cand in (("api", "ok"), ("ingest", "leak")):
        out[name] = d / f"{name}.json"
        res = memgate("check", "--baseline", str(d / "base.pb.gz"), str(d / f"{cand}.pb.gz"),
                      "--duration", "60s", "--json", str(out[name]), "--no-step-summary")
        assert res.exit_code == (0 if cand == "ok" else 1), res.output
        data = json.loads(out[name].read_text())
        data["component"] = name  # as `--component NAME` would record it
        out[name].write_text(json.dumps(data))
    out["worker"] = d / "worker.json"
    res = memgate("check", "--component", "worker", "--baselines", str(d / "empty"),
                  "--allow-missing-baseline", "--duration", "60s", str(d / "ok.pb.gz"),
                  "--json", str(out["worker"]), "--no-step-summary")
    assert res.exit_code == 0, res.output
    out["diff"] = d / "diff.json"
    res = memgate("diff", str(d / "base.pb.gz"), str(d / "ok.pb.gz"), "--json", str(out["diff"]),
                  "--no-step-summary")
    assert res.exit_code == 0, res.output
    return out


def test_worst_verdict_wins_and_fails_the_job(reports: dict[str, Path], tmp_path: Path) -> None:
    summary, merged = tmp_path / "summary.md", tmp_path / "merged.json"
    res = memgate("report", "merge", str(reports["api"]), str(reports["ingest"]),
                  str(reports["worker"]), "--summary", str(summary), "--json", str(merged))
    assert res.exit_code == 1
    assert res.output.splitlines()[0] == "memgate: FAIL (3 reports)"
    data = json.loads(merged.read_text())
    assert data["format"] == 1 and data["verdict"] == "fail"
    assert [(r["component"], r["verdict"]) for r in data["reports"]] == [
        ("api", "pass"), ("ingest", "fail"), ("worker", "warn")]
    assert data["reports"][1]["path"] == str(reports["ingest"])
    ingest = json.loads(reports["ingest"].read_text())
    s = ingest["summary"]
    assert data["reports"][1]["summary"]["fail"] == s["fail"] > 0
    assert data["findings"] == [{"component": "ingest", **f} for f in ingest["findings"]]
    md = summary.read_text()
    assert md.startswith("## ❌ memgate: **FAIL** — 3 components\n")
    assert f"| ❌ | `ingest` | FAIL | {s['fail']} | {s['warn']} | {s['within_noise']} |" in md
    assert "| ✅ | `api` | PASS | 0 | 0 | 0 |" in md
    assert "| ⚠️ | `worker` | WARN | 0 | 0 | 0 |" in md
    # Each component's own report, collapsed; the failing one open.
    assert "<details open><summary>❌ `ingest`: FAIL</summary>" in md
    assert "<details><summary>✅ `api`: PASS</summary>" in md
    assert "`main.leaky`" in md
    assert "no baseline for component 'worker'" in md


@pytest.mark.parametrize("names, verdict, code", [
    (["api"], "pass", 0),
    (["api", "worker"], "warn", 0),
    (["worker", "ingest", "api"], "fail", 1),
])
def test_verdicts(reports: dict[str, Path], names: list[str], verdict: str, code: int) -> None:
    res = memgate("report", "merge", *(str(reports[n]) for n in names), "--format", "json")
    assert res.exit_code == code
    assert json.loads(res.output)["verdict"] == verdict


def test_markdown_and_text_formats(reports: dict[str, Path]) -> None:
    res = memgate("report", "merge", str(reports["api"]), str(reports["ingest"]),
                  "--format", "markdown")
    assert res.output.startswith("## ❌ memgate: **FAIL** — 2 components")
    res = memgate("report", "merge", str(reports["api"]), str(reports["ingest"]))
    lines = res.output.splitlines()
    assert lines[1].split() == ["PASS", "api", "0", "failing,", "0", "warning,", "0", "within",
                                "noise", "(~)"]
    assert any(ln.startswith("  [FAIL] ingest: defaults: main.leaky") for ln in lines)


def test_step_summary_under_github_actions(reports: dict[str, Path], tmp_path: Path) -> None:
    step = tmp_path / "step.md"
    step.write_text("earlier step\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step)}
    memgate("report", "merge", str(reports["api"]), env=env)
    text = step.read_text()
    assert text.startswith("earlier step\n## ✅ memgate: **PASS** — 1 component\n")
    memgate("report", "merge", str(reports["api"]), "--no-step-summary", env=env)
    assert step.read_text() == text
    step2 = tmp_path / "step2.md"
    memgate("report", "merge", str(reports["api"]),
            env={"GITHUB_ACTIONS": "", "GITHUB_STEP_SUMMARY": str(step2)})
    assert not step2.exists()


def test_same_component_twice_is_told_apart(reports: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "api-arm64.json"
    copy.write_text(reports["api"].read_text())
    res = memgate("report", "merge", str(reports["api"]), str(copy), "--format", "markdown")
    assert f"`api ({copy})`" in res.output and f"`api ({reports['api']})`" in res.output


def test_the_same_report_file_twice_is_refused(reports: dict[str, Path]) -> None:
    res = memgate("report", "merge", str(reports["api"]), str(reports["api"]))
    assert res.exit_code == 3
    assert f"is given twice ({reports['api']} and {reports['api']})" in res.output


def _bad(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    return p


def _mutated(reports: dict[str, Path], change: Any) -> str:
    data = json.loads(reports["api"].read_text())
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize("name, content, message", [
    ("empty.json", "", "not a memgate JSON report: invalid JSON"),
    ("text.json", "hello", "not a memgate JSON report: invalid JSON"),
    ("binary.json", b"\x1f\x8b\x08\x00\xff", "not a memgate JSON report: not UTF-8 text"),
    ("list.json", "[]", "not a valid memgate report: at (top level): [] is not of type 'object'"),
    ("format.json", '{"format": 2}', "report format 2 is not supported"),
])
def test_invalid_reports_exit_3_naming_the_file(tmp_path: Path, name: str,
                                                content: str | bytes, message: str) -> None:
    p = _bad(tmp_path, name, content)
    res = CliRunner().invoke(main, ["report", "merge", str(p)])
    assert res.exit_code == 3
    assert res.output.startswith(f"memgate: {p}: {message}")
    assert len(res.output.splitlines()) == 1


def test_schema_violations_name_the_place(reports: dict[str, Path], tmp_path: Path) -> None:
    def drop_verdict(d: dict[str, Any]) -> None:
        d["findings"] = [{"rule": "x"}]

    p = _bad(tmp_path, "bad.json", _mutated(reports, drop_verdict))
    res = CliRunner().invoke(main, ["report", "merge", str(reports["api"]), str(p)])
    assert res.exit_code == 3
    assert res.output.startswith(f"memgate: {p}: not a valid memgate report: at findings/0: ")
    assert len(res.output.splitlines()) == 1


def test_diff_reports_and_missing_files_are_refused(reports: dict[str, Path],
                                                    tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["report", "merge", str(reports["diff"])])
    assert res.exit_code == 3
    assert "is a `memgate diff` report (no verdict)" in res.output
    res = CliRunner().invoke(main, ["report", "merge", str(tmp_path / "nope.json")])
    assert res.exit_code == 3
    assert res.output == f"memgate: {tmp_path / 'nope.json'}: no such file\n"
    res = CliRunner().invoke(main, ["report", "merge"])
    assert res.exit_code == 2


def test_unwritable_output_is_an_error(reports: dict[str, Path], tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["report", "merge", str(reports["api"]), "--json",
                                    str(tmp_path / "no" / "such" / "dir.json")])
    assert res.exit_code == 3
    assert "directory does not exist" in res.output


@pytest.mark.slow
def test_merged_markdown_stays_under_the_summary_limit(reports: dict[str, Path]) -> None:
    """Several components with big reports: details are cut per component (failing ones first)
    and the whole stays under GitHub's 1 MiB step-summary limit."""
    data = json.loads(reports["ingest"].read_text())
    fn = data["functions"][0]
    data["functions"] = [{**fn, "name": f"pkg.Func{i:05d}_{'x' * 40}"} for i in range(9000)]
    # Rendering only: schema validation of reports this size would dominate the test.
    loaded = [LoadedReport(path=f"c{k}.json", label=f"c{k}", report={**data, "component": f"c{k}"})
              for k in range(6)]
    md = render_merged_markdown(loaded)
    assert len(md.encode()) <= MARKDOWN_LIMIT
    assert all(f"| ❌ | `c{k}` | FAIL |" in md for k in range(6))
    assert md.count("<details open>") == 6
    assert "_Table truncated" in md
    tiny = render_merged_markdown(loaded, limit=10_000)
    assert len(tiny.encode()) <= 10_000
    assert "Details of" in tiny and "omitted" in tiny
