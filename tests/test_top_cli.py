"""`memgate top` options and formats, checked against pprof's own output where it has one."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest

from tests import clirun
from tests.goldens import read_golden_text

FIX = Path(__file__).parent / "fixtures"
LOKI = FIX / "profiles" / "go-heap-loki.pb.gz"
NODE2 = FIX / "profiles" / "nodejs-heap-uncompressed.pprof"


def top(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return clirun.run(["top", *args])


ROW = (r"\s*(-?\d+)B?\s+\S+%\s+\S+%\s+(-?\d+)B?\s+\S+%\s\s(.*?)"
       r"(?: \((?:partial-)?inline\))?$")


def golden_rows(name: str, gran: str, index: int) -> list[tuple[int, int, str]]:
    text = read_golden_text(FIX / "golden" / name / f"{gran}.{index}.txt")
    rows = []
    for line in text.split("   cum%\n", 1)[1].splitlines():
        m = re.match(ROW, line)
        assert m, line
        rows.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return rows


JSON_SCHEMA = {
    "type": "object",
    "required": ["profile", "sample_type", "total", "duration_seconds", "time", "period",
                 "functions"],
    "properties": {
        "profile": {"type": "string"},
        "sample_type": {"type": "object", "required": ["type", "unit"]},
        "total": {"type": "integer"},
        "duration_seconds": {"type": ["number", "null"]},
        "time": {"type": ["string", "null"]},
        "period": {"type": "object", "required": ["type", "unit", "value"]},
        "functions": {"type": "array", "items": {
            "type": "object", "required": ["name", "flat", "cum"],
            "properties": {"name": {"type": "string"}, "flat": {"type": "integer"},
                           "cum": {"type": "integer"}}}},
    },
}


def test_json_contract_equals_pprof_rows() -> None:
    r = top("--format", "json", "--sample-index", "inuse_space", LOKI)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, JSON_SCHEMA)
    assert doc["sample_type"] == {"type": "inuse_space", "unit": "bytes"}
    assert doc["time"] == "2022-07-28T12:10:42.910169Z"
    assert doc["period"] == {"type": "space", "unit": "bytes", "value": 524288}
    assert doc["duration_seconds"] is None
    ours = [(f["flat"], f["cum"], f["name"]) for f in doc["functions"]]
    assert ours == golden_rows("go-heap-loki.pb.gz", "functions", 3)
    assert all(" (inline)" not in f["name"] for f in doc["functions"])


@pytest.mark.parametrize("gran", ["filefunctions", "lines"])
def test_granularity_option(gran: str) -> None:
    r = top("--format", "json", "-i", "0", "--granularity", gran, LOKI)
    doc = json.loads(r.stdout)
    assert [(f["flat"], f["cum"], f["name"]) for f in doc["functions"]] == \
        golden_rows("go-heap-loki.pb.gz", gran, 0)


def test_limit_and_cum_sort() -> None:
    r = top("--format", "json", "--limit", "5", "--cum", "-i", "alloc_space", LOKI)
    doc = json.loads(r.stdout)
    cums = [f["cum"] for f in doc["functions"]]
    assert len(cums) == 5 and cums == sorted(cums, reverse=True)
    text = top("--limit", "3", LOKI).stdout
    assert "Showing top 3 nodes out of" in text
    assert len(text.split("   cum%\n", 1)[1].splitlines()) == 3
    # --limit 0 is pprof's -nodecount=0: every row, not none.
    assert top("--limit", "0", LOKI).stdout == top(LOKI).stdout


def test_sample_index_rules() -> None:
    # default: the last type (Go heap profiles have no default_sample_type) ...
    assert "Type: inuse_space" in top("-n", "1", FIX / "profiles" / "seedleak-noleak-1.pb.gz"
                                      ).stdout
    # ... or default_sample_type when set (allocs profiles say alloc_space).
    assert "Type: alloc_space" in top("-n", "1", FIX / "profiles" / "seedleak-allocs.pb.gz"
                                      ).stdout
    # inuse_ falls back to two-column profiles' names, as in pprof.
    assert "Type: space" in top("-n", "1", "-i", "inuse_space", NODE2).stdout
    r = top("-i", "7", LOKI)
    assert r.returncode == 3 and "outside the range [0..3]" in r.stderr
    r = top("-i", "cpu", LOKI)
    assert r.returncode == 3 and "must be one of" in r.stderr


def test_markdown_format() -> None:
    r = top("--format", "markdown", "-n", "2", LOKI)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("### `alloc_space`")
    assert "| flat | flat% | sum% | cum | cum% | function |" in lines
    assert "| `google.golang.org/grpc.(*parser).recvMsg` |" in r.stdout


def test_cpu_profiles_work_as_in_pprof() -> None:
    r = top("--unit", "ns", FIX / "profiles" / "go-cpu-labels.pb.gz")
    assert r.returncode == 0
    assert "Duration: 10.12s" in r.stdout
    rows = r.stdout.split("   cum%\n", 1)[1]
    golden = (FIX / "golden" / "go-cpu-labels.pb.gz" / "functions.1.txt").read_text()
    assert rows == re.sub(r" \((?:partial-)?inline\)$", "", golden.split("   cum%\n", 1)[1],
                          flags=re.M)
