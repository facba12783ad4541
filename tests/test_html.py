"""The HTML diff flame graph: the page's contract without a browser, then in headless Chromium.

Without a browser: the page is self-contained (no URL anywhere in ``src``/``href``, no
``<script src``), hostile function names cannot end the data ``<script>``, the tree's rates are
the report's, and big trees are folded and capped.

With Chromium (Debian ``chromium``; ``.ci/run`` installs it): the real-Go leak scenario is
rendered, and a probe script appended to a copy of the page checks after the page's own script
ran that the leaking frame exists, is red, and that its title and hover tooltip show both rates
and the delta; search, zoom and the sample-type selector are exercised; a screenshot is saved.
Those tests skip, saying why, where no Chromium is installed.
"""

from __future__ import annotations

import html as htmllib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from memgate.cli import main
from memgate.compare import RunInput
from memgate.profile.decode import decode
from memgate.profile.limits import InputLimits
from memgate.profile.model import Function, Locations, Profile, Samples, ValueType
from memgate.report.flame import OTHER, build_tree
from memgate.report.html import render_html, script_json
from tests.pbuild import gz, make_profile

ROOT = Path(__file__).parent.parent
NOISE = ROOT / "tests" / "fixtures" / "noise"
LEAK_FRAME = "encoding/json.(*decodeState).literalStore"
XSS_SCRIPT = "</script><script>document.body.setAttribute('data-pwned','1')</script>"
XSS_IMG = "<img src=x onerror=\"document.body.setAttribute('data-pwned','2')\">"


def _check_html(tmp_path: Path, *extra: str) -> tuple[str, Path]:
    out = tmp_path / "out.html"
    res = CliRunner().invoke(main, [
        "check", "--baseline", str(NOISE / "noleak-01.pb.gz"), str(NOISE / "leak-01.pb.gz"),
        "--duration", "15s", "--html", str(out), *extra])
    assert res.exit_code == 1, res.output  # the leak fails the gate
    return out.read_text("utf-8"), out


def _data(page: str) -> Any:
    m = re.search(r'<script type="application/json" id="memgate-data">(.*?)</script>', page,
                  re.DOTALL)
    assert m
    return json.loads(m.group(1))


def _run(profile: Profile, seconds: float = 10.0) -> RunInput:
    return RunInput(path=profile.source, sha256="", duration_seconds=seconds,
                    duration_source="test", profile=profile)


def _xss_profiles() -> tuple[Profile, Profile]:
    stacks_b = (((XSS_SCRIPT, "main"), (1, 100)), ((XSS_IMG, "main"), (1, 100)))
    stacks_c = (((XSS_SCRIPT, "main"), (5, 500)), ((XSS_IMG, "main"), (1, 50)))
    b = decode(gz(make_profile(stacks=stacks_b).SerializeToString()), "base", InputLimits())
    c = decode(gz(make_profile(stacks=stacks_c).SerializeToString()), "cand", InputLimits())
    return b, c


def _xss_page() -> str:
    b, c = _xss_profiles()
    tree = build_tree([_run(b)], [_run(c)])
    report = {"verdict": "fail", "component": "<b>x</b>", "time_unit": "s",
              "rate_unit": "per_second", "sample_types": [],
              "findings": [{"function": XSS_SCRIPT, "sample_type": "inuse_space",
                            "metric": "flat", "severity": "fail", "baseline_rate": 10.0,
                            "candidate_rate": 50.0, "delta_rate": 40.0, "delta_pct": 400.0,
                            "interval": None}],
              "warnings": [XSS_IMG], "inputs": {"baseline": [{"path": XSS_IMG}],
                                                 "candidate": [{"path": "c"}]}}
    return render_html(report, tree, 1)


# ------------------------------------------------------------------ without a browser


def test_page_is_self_contained(tmp_path: Path) -> None:
    page, _ = _check_html(tmp_path)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)
    assert "<script src" not in page.lower()
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page.lower()
    data = _data(page)
    assert LEAK_FRAME in data["names"]
    assert data["rows"][0]["function"] == LEAK_FRAME
    assert [t["type"] for t in data["types"]] == ["alloc_objects", "alloc_space",
                                                   "inuse_objects", "inuse_space"]


def test_findings_table_marks_leak_shaped_functions(tmp_path: Path) -> None:
    page, _ = _check_html(tmp_path)
    rows = _data(page)["rows"]
    leak = [r for r in rows if r["function"] == LEAK_FRAME]
    assert leak and all(r["leak"] for r in leak)
    assert "(leak-shaped)" in page  # the script that renders the mark


def test_names_are_escaped() -> None:
    page = _xss_page()
    body = page.split('id="memgate-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in body and ">" not in body
    assert page.count("</script>") == 2  # the data and the page's script: nothing else
    assert "<img" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    data = json.loads(body)
    assert XSS_SCRIPT in data["names"] and XSS_IMG in data["names"]
    assert data["rows"][0]["function"] == XSS_SCRIPT
    assert script_json("\u2028</script>&") == '"\\u2028\\u003c/script\\u003e\\u0026"'


def test_tree_rates_match_report(tmp_path: Path) -> None:
    page, _ = _check_html(tmp_path, "--json", str(tmp_path / "r.json"))
    data = _data(page)
    report = json.loads((tmp_path / "r.json").read_text())
    names = [t["type"] for t in data["types"]]
    for tot in report["totals"]:
        t = names.index(tot["sample_type"])
        assert data["cand"][t][0] == pytest.approx(tot["candidate_rate"], rel=1e-4)
        assert data["base"][t][0] == pytest.approx(tot["baseline_rate"], rel=1e-4)
    # The leaking frame's widest path carries most of the function's flat rate.
    t = names.index("inuse_space")
    fn = next(f for f in report["functions"] if f["name"] == LEAK_FRAME)
    widths = [data["cand"][t][i] for i, nm in enumerate(data["name"])
              if nm >= 0 and data["names"][nm] == LEAK_FRAME]
    assert max(widths) <= fn["rates"]["inuse_space"]["cum"]["candidate"] * (1 + 1e-4)
    assert sum(widths) >= fn["rates"]["inuse_space"]["flat"]["candidate"] * 0.5


def test_diff_html(tmp_path: Path) -> None:
    out = tmp_path / "d.html"
    res = CliRunner().invoke(main, ["diff", str(NOISE / "noleak-01.pb.gz"),
                                    str(NOISE / "leak-01.pb.gz"), "--html", str(out)])
    assert res.exit_code == 0, res.output
    data = _data(out.read_text())
    assert data["verdict"] == "DIFF" and data["perProfile"] is True
    assert data["tableTitle"].startswith("Top movers") and data["rows"]


def _synthetic(n_samples: int, n_funcs: int, depth: int, seed: int) -> Profile:
    """A profile of random stacks (leaf first) built directly in the columnar model."""
    rng = np.random.default_rng(seed)
    funcs = tuple(Function(f"pkg.f{i:04d}", f"pkg.f{i:04d}", "f.go", 1) for i in range(n_funcs))
    locs = Locations(
        ids=np.arange(1, n_funcs + 1, dtype=np.uint64),
        address=np.zeros(n_funcs, dtype=np.uint64),
        mapping=np.full(n_funcs, -1, dtype=np.int32),
        line_offsets=np.arange(n_funcs + 1, dtype=np.int64),
        line_function=np.arange(n_funcs, dtype=np.int32),
        line_number=np.ones(n_funcs, dtype=np.int64),
        line_column=np.zeros(n_funcs, dtype=np.int64),
    )
    stacks = rng.integers(0, n_funcs, size=(n_samples, depth)).astype(np.int32)
    samples = Samples(
        values=rng.integers(1, 1000, size=(n_samples, 2)).astype(np.int64),
        offsets=np.arange(0, n_samples * depth + 1, depth, dtype=np.int64),
        locations=stacks.reshape(-1),
    )
    return Profile(source=f"synthetic-{seed}", sample_types=(
        ValueType("inuse_objects", "count"), ValueType("inuse_space", "bytes")),
        samples=samples, locations=locs, functions=funcs, mappings=())


def test_big_profile_is_folded_and_fast() -> None:
    b, c = _synthetic(300_000, 300, 20, 1), _synthetic(300_000, 300, 20, 2)
    t0 = time.perf_counter()
    tree = build_tree([_run(b)], [_run(c)])
    elapsed = time.perf_counter() - t0
    assert elapsed < 15, elapsed
    assert len(tree) < 5000
    assert (tree.name == OTHER).sum() > 0
    # Folding loses no width: every parent's children (with "other") add up to it.
    kids = np.zeros_like(tree.candidate)
    np.add.at(kids, tree.parent[1:], tree.candidate[1:])
    has_kids = np.zeros(len(tree), dtype=bool)
    has_kids[tree.parent[1:]] = True
    assert np.allclose(kids[has_kids], tree.candidate[has_kids])
    # In-use values of a snapshot are levels: never divided by the run's 10 s (bug #15.1).
    assert np.allclose(tree.candidate[0], c.samples.values.sum(axis=0))


def test_node_cap() -> None:
    b, c = _synthetic(20_000, 8, 6, 3), _synthetic(20_000, 8, 6, 4)
    tree = build_tree([_run(b)], [_run(c)], max_nodes=100)
    assert len(tree) <= 100
    assert np.all(tree.parent[1:] < np.arange(1, len(tree)))  # preorder
    others = tree.parent[tree.name == OTHER]
    assert len(np.unique(others)) == len(others)  # at most one "other" per parent
    assert np.allclose(tree.candidate[0], c.samples.values.sum(axis=0))


# ------------------------------------------------------------------ in headless Chromium


def _chromium() -> str | None:
    env = os.environ.get("MEMGATE_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = _chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (apt-get install chromium chromium-driver, or set "
           "MEMGATE_CHROMIUM=/path/to/chrome); .ci/run installs it",
)

#: Appended to a copy of the page: runs after the page's script, records what it sees.
PROBE = """<script>
(function () {
  function widest(name) {
    var best = null;
    document.querySelectorAll("#flame .frame").forEach(function (f) {
      if (f.getAttribute("data-name") === name &&
          (!best || f.offsetWidth > best.offsetWidth)) best = f;
    });
    return best;
  }
  var out = {ready: document.body.getAttribute("data-ready"),
             frames: document.querySelectorAll("#flame .frame").length};
  var sel = document.getElementById("type");
  sel.value = String(%TYPE%);
  sel.dispatchEvent(new Event("change"));
  var el = widest(%NAME%);
  out.found = !!el;
  if (el) {
    out.bg = getComputedStyle(el).backgroundColor;
    out.title = el.title;
    out.delta = el.getAttribute("data-delta");
    el.dispatchEvent(new MouseEvent("mouseover", {bubbles: true}));
    var tip = document.getElementById("tip");
    out.tip = tip.textContent;
    out.tipVisible = !tip.hidden && tip.offsetWidth > 0;
  }
  var search = document.getElementById("search");
  search.value = "literalStore";
  search.dispatchEvent(new Event("input"));
  out.matches = document.querySelectorAll("#flame .frame.match").length;
  search.value = "";
  search.dispatchEvent(new Event("input"));
  if (%ZOOM%) {
    var before = document.querySelectorAll("#flame .frame").length;
    var zel = widest(%NAME%);
    zel.click();
    var z = widest(%NAME%);
    out.zoomWidth = z ? z.offsetWidth : 0;
    out.flameWidth = document.getElementById("flame").clientWidth;
    document.getElementById("reset").click();
    out.reset = document.querySelectorAll("#flame .frame").length === before;
    el = widest(%NAME%);
    el.dispatchEvent(new MouseEvent("mouseover", {bubbles: true}));
  }
  document.body.setAttribute("data-probe", JSON.stringify(out));
})();
</script>
</body>"""


def _browse(page: str, tmp_path: Path, name: str, type_index: int, zoom: bool,
            screenshot: Path | None = None) -> dict[str, Any]:
    probe = (PROBE.replace("%TYPE%", str(type_index)).replace("%NAME%", script_json(name))
             .replace("%ZOOM%", "true" if zoom else "false"))
    target = tmp_path / "probe.html"
    target.write_text(page.replace("</body>", probe, 1), "utf-8")
    assert CHROMIUM is not None
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1400,1000",
            "--virtual-time-budget=3000"]
    res = subprocess.run([*base, "--dump-dom", target.as_uri()], capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert 'data-pwned="' not in dom  # the hostile names' payloads never ran
    m = re.search(r'data-probe="([^"]*)"', dom)
    assert m, "the probe did not run: " + dom[:500]
    if screenshot is not None:
        shot = subprocess.run([*base, f"--screenshot={screenshot}", target.as_uri()],
                              check=False, capture_output=True, text=True, timeout=60)
        assert shot.returncode == 0, shot.stderr[-2000:]
    result: dict[str, Any] = json.loads(htmllib.unescape(m.group(1)))
    return result


def _rgb(css: str) -> tuple[int, int, int]:
    nums = [int(float(x)) for x in re.findall(r"[\d.]+", css)[:3]]
    return nums[0], nums[1], nums[2]


@pytest.mark.slow
@needs_chromium
def test_leak_flame_graph_in_chromium(tmp_path: Path) -> None:
    page, _ = _check_html(tmp_path)
    data = _data(page)
    t = [st["type"] for st in data["types"]].index("inuse_space")
    shot = tmp_path / "flame.png"
    got = _browse(page, tmp_path, LEAK_FRAME, t, zoom=True, screenshot=shot)
    assert got["ready"] == "1" and got["frames"] > 10
    assert got["found"], "the leaking frame is not drawn"
    r, g, b = _rgb(got["bg"])
    assert r > 180 and g < 140 and b < 140, f"not red: {got['bg']}"
    assert float(got["delta"]) > 0
    for text in (got["title"], got["tip"]):
        assert text.startswith(LEAK_FRAME)
        # In-use memory is a level: bytes, not bytes per second.
        assert "inuse_space (in use)" in text, text
        assert re.search(r"baseline: +0 B$", text, re.M), text
        assert re.search(r"candidate: +[\d.]+ (KiB|MiB)$", text, re.M), text
        assert re.search(r"delta: +\+[\d.]+ (KiB|MiB) \(new\)", text), text
    assert got["tipVisible"]
    assert got["matches"] >= 1
    assert got["zoomWidth"] >= got["flameWidth"] - 2  # zoomed: the frame spans the graph
    assert got["reset"]
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


@pytest.mark.slow
@needs_chromium
def test_hostile_names_do_not_execute(tmp_path: Path) -> None:
    page = _xss_page()
    got = _browse(page, tmp_path, XSS_SCRIPT, 1, zoom=False)
    assert got["ready"] == "1"
    assert got["found"]  # drawn as text, under its own name
    assert got["title"].startswith(XSS_SCRIPT)
