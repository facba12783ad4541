"""The bundled Python example (examples/python/) against its committed baseline, as CI would
run it: a fresh capture of the leaking variant fails naming the retaining function; five fresh
captures of the non-leaking variant all pass."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests import clirun

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
EXAMPLE = "examples/python/json_cache.py"
POLICY = "examples/python/memgate.yml"


def memgate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return clirun.run(args, cwd=REPO, env=ENV)


def capture(out: Path, *args: str) -> None:
    res = memgate("capture", "-o", out, "--duration", "1m", "--", "python", EXAMPLE, *args)
    assert res.returncode == 0, res.stderr


def check(profile: Path | str) -> tuple[int, dict[str, object]]:
    res = memgate("check", "--component", "python-example", "--policy", POLICY,
                  "--format", "json", "--no-step-summary", profile)
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, json.loads(res.stdout)


def failing(report: dict[str, object]) -> set[str]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return {f["function"] for f in findings if f["severity"] == "fail"}


def test_leaking_variant_fails_naming_the_decoder(tmp_path: Path) -> None:
    capture(tmp_path / "leak.pb.gz", "--leak")
    code, report = check(tmp_path / "leak.pb.gz")
    assert code == 1
    assert "json.decoder.JSONDecoder.raw_decode" in failing(report)
    # The bundled candidate says the same.
    code, report = check("examples/python/profiles/candidate-leak.pb.gz")
    assert code == 1 and "json.decoder.JSONDecoder.raw_decode" in failing(report)


# Run 0 in the quick suite; the other four repeat it (`-m slow`).
@pytest.mark.parametrize("run", [0, *(pytest.param(i, marks=pytest.mark.slow)
                                      for i in range(1, 5))])
def test_non_leaking_runs_pass(tmp_path: Path, run: int) -> None:
    capture(tmp_path / f"ok-{run}.pb.gz")
    code, report = check(tmp_path / f"ok-{run}.pb.gz")
    assert code == 0, failing(report)
    assert report["verdict"] in ("pass", "warn")
