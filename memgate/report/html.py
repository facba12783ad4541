"""``--html FILE``: one self-contained page with a diff flame graph (icicle) and the findings.

A reviewer deciding whether a regression is real wants to *see* where in the call tree the new
allocations come from. The page works offline and from a CI artifact: styles, script and data
are inline, and nothing is fetched (no ``src``/``href`` to any URL).

Frame width is the candidate's rate, colour the change against the baseline (red growth, blue
shrink, grey about unchanged); hover shows both rates and the delta, click zooms, a search box
highlights, a selector switches sample type, and the findings table links to the frames.

Function names come from the profiles, which an attacker may write: the data goes into a
``<script type="application/json">`` with ``<``, ``>``, ``&`` escaped as JSON ``\\u`` escapes
(so no ``</script>`` can end it), and the script only ever puts names into the page with
``textContent`` and ``setAttribute``, never as markup.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from memgate import escape
from memgate.quantities import TIME_UNITS, dimension_of_unit
from memgate.report.flame import OTHER, FlameTree
from memgate.report.format import (
    VERDICT_WORD,
    _delta,
    _pct_with_interval,
    _per_of,
    _rate,
    movers,
)

if TYPE_CHECKING:
    from memgate.checkrun import RunResult

#: Rates are written with this many significant digits: enough for a tooltip, half the bytes.
DIGITS = 5


def _round(values: Any) -> list[float]:
    return [float(f"{v:.{DIGITS}g}") for v in values.tolist()]


def _default_type(report: dict[str, Any], tree: FlameTree, default: int) -> int:
    """The finding's sample type if there is one, else the profile's default."""
    names = [st.type for st in tree.sample_types]
    for f in report.get("findings", []):
        if f["sample_type"] in names:
            return names.index(f["sample_type"])
    return default


def _rows(report: dict[str, Any], tree: FlameTree, default: int) -> tuple[str, list[Any]]:
    """The table on top: the findings, else (``memgate diff``) the top movers."""
    if report.get("findings"):
        rows = []
        for f in report["findings"]:
            st = f["sample_type"]
            rows.append({
                "mark": f["severity"], "function": f["function"], "type": st,
                "metric": f["metric"], "baseline": _rate(report, f["baseline_rate"], st),
                "candidate": _rate(report, f["candidate_rate"], st),
                "delta": _delta(report, f, st),
                "pct": _pct_with_interval(f["delta_pct"], f["interval"], f["baseline_rate"]),
                "grow": f["delta_rate"] > 0,
                "leak": bool(f.get("leak_shaped")),
            })
        return "Findings", rows
    rows = []
    known = {st["type"] for st in report.get("sample_types", [])}
    st_name = tree.sample_types[default].type if tree.sample_types else ""
    if st_name in known:
        growers, shrinkers = movers(report, st_name, "flat")
        for mark, group in (("grows", growers), ("shrinks", shrinkers)):
            for r in group:
                rows.append({
                    "mark": mark, "function": r["name"], "type": st_name, "metric": "flat",
                    "baseline": _rate(report, r["baseline"], st_name),
                    "candidate": _rate(report, r["candidate"], st_name),
                    "delta": _delta(report, r, st_name),
                    "pct": _pct_with_interval(r["delta_pct"], r["interval"], r["baseline"]),
                    "grow": r["delta"] > 0,
                })
    return "Top movers (flat)", rows


def page_data(report: dict[str, Any], tree: FlameTree, default_type: int) -> dict[str, Any]:
    """Everything the page's script needs, as one JSON-ready dict."""
    default = _default_type(report, tree, default_type)
    title, rows = _rows(report, tree, default)
    time_unit = report.get("time_unit", "s") if tree.normalized else "s"
    return {
        "verdict": VERDICT_WORD.get(report.get("verdict")),
        "component": report.get("component"),
        "perProfile": not tree.normalized,
        "timeUnit": time_unit,
        "timeSeconds": TIME_UNITS.get(time_unit, 1.0),
        "types": [
            {"type": st.type, "unit": st.unit, "dimension": dimension_of_unit(st.unit) or "count",
             "per": _per_of(report, st.type)}
            for st in tree.sample_types
        ],
        "defaultType": default,
        "names": list(tree.names),
        "parent": tree.parent.tolist(),
        "name": tree.name.tolist(),
        "other": OTHER,
        "base": [_round(tree.baseline[:, t]) for t in range(len(tree.sample_types))],
        "cand": [_round(tree.candidate[:, t]) for t in range(len(tree.sample_types))],
        "tableTitle": title,
        "rows": rows,
        "warnings": list(report.get("warnings", [])),
        "inputs": {
            side: [r["path"] for r in report.get("inputs", {}).get(side, [])]
            for side in ("baseline", "candidate")
        },
    }


def script_json(data: Any) -> str:
    """JSON that cannot end its ``<script>`` element or open a comment, whatever it holds."""
    # json_text: no control character, bidi override or lone surrogate (a file name that is
    # not UTF-8) is written raw; the page's data is the same.
    text = escape.json_dumps(data, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def render_html(report: dict[str, Any], tree: FlameTree, default_type: int) -> str:
    """The whole page. ``default_type`` is the sample type shown first when no finding names
    one (the candidate profile's default, as pprof chooses it)."""
    data = page_data(report, tree, default_type)
    verdict = data["verdict"] or "DIFF"
    comp = f" — {report['component']}" if report.get("component") else ""
    title = html.escape(f"memgate {verdict}{comp}")
    # One pass: the data may hold "%SCRIPT%" (a function name), which must stay text.
    return escape.fill_template(_PAGE, {"TITLE": title, "DATA": script_json(data),
                                        "STYLE": _STYLE, "SCRIPT": _SCRIPT})


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; \
style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>%TITLE%</title>
<style>%STYLE%</style>
</head>
<body>
<header>
<h1 id="heading">%TITLE%</h1>
<p id="inputs"></p>
<ul id="warnings"></ul>
</header>
<section id="table-section">
<h2 id="table-title"></h2>
<table id="findings"><thead><tr><th></th><th>function</th><th>type</th><th>metric</th>
<th>baseline</th><th>candidate</th><th>delta</th><th>%</th></tr></thead><tbody></tbody></table>
</section>
<section id="flame-section">
<div id="controls">
<label>sample type <select id="type"></select></label>
<label>width <select id="width"><option value="cand">candidate</option>\
<option value="base">baseline</option></select></label>
<input id="search" type="search" placeholder="search functions (regex)" size="32">
<button id="reset" type="button">reset zoom</button>
<span id="status"></span>
</div>
<div id="legend"><span class="sw grow"></span> grew <span class="sw shrink"></span> shrank
<span class="sw same"></span> about unchanged &nbsp; width: candidate rate; click a frame to \
zoom. Colour shows the size of a change, not whether it is beyond sampling noise: the table \
above says that (<em>~</em>: within noise).</div>
<div id="flame"></div>
</section>
<div id="tip" role="tooltip" hidden></div>
<script type="application/json" id="memgate-data">%DATA%</script>
<script>%SCRIPT%</script>
</body>
</html>
"""

_STYLE = """
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 4px}h2{font-size:15px;margin:16px 0 6px}
#inputs{color:#555;margin:0}#warnings{color:#a60}
table{border-collapse:collapse}th,td{padding:2px 8px;border-bottom:1px solid #ddd;
text-align:right;white-space:nowrap}th:nth-child(2),td:nth-child(2){text-align:left}
td a{color:#0645ad;cursor:pointer;text-decoration:underline}
td.fail{color:#c00;font-weight:bold}td.warn{color:#b60;font-weight:bold}
#controls{margin:12px 0 6px;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
#legend{color:#555;margin-bottom:6px}.sw{display:inline-block;width:12px;height:12px;
vertical-align:middle;border:1px solid #999}.sw.grow{background:hsl(0,85%,55%)}
.sw.shrink{background:hsl(220,85%,55%)}.sw.same{background:hsl(0,0%,85%)}
#flame{position:relative;width:100%;overflow:hidden;border:1px solid #ccc}
.frame{position:absolute;height:17px;box-sizing:border-box;border:1px solid #fff;
overflow:hidden;white-space:nowrap;font:11px/15px ui-monospace,Menlo,Consolas,monospace;
padding:0 3px;cursor:pointer;color:#000}
.frame.other{font-style:italic}.frame.dim{opacity:.3}
.frame.match{outline:2px solid #c0c;outline-offset:-2px;z-index:1}
.frame.focus{outline:3px solid #000;outline-offset:-3px;z-index:2}
#tip{position:fixed;pointer-events:none;background:#fffff0;border:1px solid #888;
padding:6px 8px;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;white-space:pre;
box-shadow:2px 2px 6px rgba(0,0,0,.25);z-index:10;max-width:80vw;overflow:hidden}
"""

_SCRIPT = r"""
"use strict";
(function () {
  var D = JSON.parse(document.getElementById("memgate-data").textContent);
  var n = D.parent.length, ROW = 18, MINPX = 0.5;
  var cur = D.defaultType, zoom = 0, widthBy = "cand", query = null, focusName = null;
  var depth = new Int32Array(n), end = new Int32Array(n);
  for (var i = 1; i < n; i++) depth[i] = depth[D.parent[i]] + 1;
  // Preorder: a node's subtree ends where the next node of its depth or less begins.
  for (i = n - 1; i >= 0; i--) {
    var j = i + 1;
    while (j < n && depth[j] > depth[i]) j = end[j];
    end[i] = j;
  }
  function nameOf(i) {
    if (i === 0) return "root";
    return D.name[i] === D.other ? "other (small frames)" : D.names[D.name[i]];
  }
  var BYTES = [[1, "B"], [1024, "KiB"], [1048576, "MiB"], [1073741824, "GiB"],
               [1099511627776, "TiB"]];
  var COUNTS = [[1, ""], [1e3, "k"], [1e6, "M"], [1e9, "G"]];
  function amount(v, dim) {
    var steps = dim === "bytes" ? BYTES : COUNTS, sep = dim === "bytes" ? " " : "";
    var m = Math.abs(v), sign = v < 0 ? "-" : "";
    if (m === 0) return "0" + sep + steps[0][1];
    var k = 0;
    for (var s = 0; s < steps.length; s++) if (m >= steps[s][0]) k = s;
    var x = m / steps[k][0];
    var t = k === 0 && m === Math.round(m) ? String(m) :
      x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) :
      x.toPrecision(3);
    return sign + t + sep + steps[k][1];
  }
  function rate(v) {
    var dim = D.types[cur].dimension, per = D.types[cur].per;
    if (per === "") return amount(v, dim);
    if (per === "op" || per === "run" || per === "profile") return amount(v, dim) + "/" + per;
    return amount(v * D.timeSeconds, dim) + "/" + D.timeUnit;
  }
  function perText() {
    var per = D.types[cur].per;
    if (per === "") return "in use";
    if (per === "op" || per === "run" || per === "profile") return "per " + per;
    return "rate per " + D.timeUnit;
  }
  function pct(b, c) {
    if (b === 0) return c === 0 ? "+0.0%" : "new";
    var p = (c - b) / b * 100;
    return (p >= 0 ? "+" : "") + p.toFixed(1) + "%";
  }
  function colour(b, c) {
    var big = Math.max(Math.abs(b), Math.abs(c));
    if (big === 0 || Math.abs(c - b) <= 0.02 * big) return "hsl(0,0%,85%)";
    var t = Math.min(1, Math.abs(c - b) / big);
    var hue = c > b ? 0 : 220;
    return "hsl(" + hue + "," + Math.round(45 + 45 * t) + "%," + Math.round(80 - 28 * t) + "%)";
  }
  function tipText(i) {
    var b = D.base[cur][i], c = D.cand[cur][i], d = c - b;
    return nameOf(i) + "\n" + D.types[cur].type + " (" + perText() + ")\nbaseline:  " +
      rate(b) + "\ncandidate: " + rate(c) +
      "\ndelta:     " + (d >= 0 ? "+" : "") + rate(d) + " (" + pct(b, c) + ")";
  }
  function matches(i) {
    if (!query || i === 0) return false;
    return query.test(nameOf(i));
  }
  var flame = document.getElementById("flame"), tip = document.getElementById("tip");
  function draw() {
    var W = flame.clientWidth || 1000;
    var val = widthBy === "cand" ? D.cand[cur] : D.base[cur];
    var x = new Float64Array(n), w = new Float64Array(n);
    var frag = document.createDocumentFragment(), maxDepth = 0, matched = 0;
    // Ancestors of the zoomed frame span the whole width.
    for (var a = zoom; a >= 0; a = D.parent[a]) { x[a] = 0; w[a] = W; }
    var zv = Math.abs(val[zoom]) || 1;
    var stack = [zoom], shown = 0;
    // Lay out the zoomed subtree: children left to right in preorder.
    var cursor = {};
    cursor[zoom] = 0;
    for (var i = zoom; i < end[zoom]; i++) {
      if (i !== zoom) {
        var p = D.parent[i];
        if (!(p in cursor)) { i = end[i] - 1; continue; }
        w[i] = Math.abs(val[i]) / zv * W;
        x[i] = x[p] + cursor[p];
        cursor[p] += w[i];
        if (w[i] < MINPX) { i = end[i] - 1; continue; }
        cursor[i] = 0;
      }
    }
    function add(i) {
      var el = document.createElement("div");
      var b = D.base[cur][i], c = D.cand[cur][i], nm = nameOf(i);
      el.className = "frame" + (D.name[i] === D.other && i !== 0 ? " other" : "");
      el.style.left = x[i] + "px";
      el.style.width = Math.max(w[i], 1) + "px";
      el.style.top = depth[i] * ROW + "px";
      el.style.background = colour(b, c);
      el.textContent = w[i] > 30 ? nm : "";
      el.setAttribute("data-node", String(i));
      el.setAttribute("data-name", nm);
      el.setAttribute("data-baseline", String(b));
      el.setAttribute("data-candidate", String(c));
      el.setAttribute("data-delta", String(c - b));
      el.title = tipText(i);
      if (query) { if (matches(i)) { el.classList.add("match"); matched += Math.abs(val[i]); }
                   else el.classList.add("dim"); }
      if (focusName !== null && nm === focusName) el.classList.add("focus");
      frag.appendChild(el);
      if (depth[i] > maxDepth) maxDepth = depth[i];
      shown++;
    }
    for (a = D.parent[zoom]; a >= 0; a = D.parent[a]) add(a);
    for (i in cursor) add(+i);
    flame.textContent = "";
    flame.appendChild(frag);
    flame.style.height = (maxDepth + 1) * ROW + 4 + "px";
    var st = document.getElementById("status");
    var total = Math.abs(val[0]) || 1;
    st.textContent = shown + " frames" + (query ? "; search matches " +
      (matched / total * 100).toFixed(1) + "% of the root (nested matches counted once " +
      "per frame)" : "");
  }
  flame.addEventListener("mousemove", function (ev) {
    var el = ev.target.closest ? ev.target.closest(".frame") : null;
    if (!el) { tip.hidden = true; return; }
    tip.textContent = tipText(+el.getAttribute("data-node"));
    tip.hidden = false;
    var tx = ev.clientX + 14, ty = ev.clientY + 14;
    if (tx + tip.offsetWidth > window.innerWidth) {
      tx = Math.max(0, ev.clientX - tip.offsetWidth - 8);
    }
    tip.style.left = tx + "px"; tip.style.top = ty + "px";
  });
  flame.addEventListener("mouseover", function (ev) {
    var el = ev.target.closest ? ev.target.closest(".frame") : null;
    if (!el) return;
    tip.textContent = tipText(+el.getAttribute("data-node"));
    tip.hidden = false;
    var r = el.getBoundingClientRect();
    tip.style.left = Math.min(r.left + 10, window.innerWidth - tip.offsetWidth - 4) + "px";
    tip.style.top = (r.bottom + 6) + "px";
  });
  flame.addEventListener("mouseleave", function () { tip.hidden = true; });
  flame.addEventListener("click", function (ev) {
    var el = ev.target.closest ? ev.target.closest(".frame") : null;
    if (!el) return;
    zoom = +el.getAttribute("data-node");
    draw();
  });
  document.getElementById("reset").addEventListener("click", function () {
    zoom = 0; focusName = null; draw();
  });
  var sel = document.getElementById("type");
  D.types.forEach(function (t, k) {
    var o = document.createElement("option");
    o.value = String(k); o.textContent = t.type + " (" + t.unit + ")";
    sel.appendChild(o);
  });
  sel.value = String(cur);
  sel.addEventListener("change", function () { cur = +sel.value; draw(); });
  document.getElementById("width").addEventListener("change", function (ev) {
    widthBy = ev.target.value; draw();
  });
  var search = document.getElementById("search");
  search.addEventListener("input", function () {
    var q = search.value;
    if (!q) query = null;
    else {
      try { query = new RegExp(q, "i"); }
      catch (e) { query = new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "i"); }
    }
    draw();
  });
  // Show a function: its sample type, zoomed to the parent of its widest frame.
  function reveal(fn, type) {
    var k = -1;
    D.types.forEach(function (t, i) { if (t.type === type) k = i; });
    if (k >= 0) { cur = k; sel.value = String(k); }
    var best = -1, val = D.cand[cur], bv = D.base[cur];
    for (var i = 1; i < n; i++) {
      if (D.name[i] !== D.other && D.names[D.name[i]] === fn &&
          (best < 0 || Math.max(Math.abs(val[i]), Math.abs(bv[i])) >
                       Math.max(Math.abs(val[best]), Math.abs(bv[best])))) best = i;
    }
    focusName = fn;
    zoom = best > 0 ? D.parent[best] : 0;
    draw();
    flame.scrollIntoView({block: "start"});
  }
  document.getElementById("table-title").textContent = D.tableTitle +
    (D.rows.length ? "" : ": none");
  var tbody = document.querySelector("#findings tbody");
  D.rows.forEach(function (r) {
    var tr = document.createElement("tr");
    var cells = [r.mark, null, r.type, r.metric, r.baseline, r.candidate, r.delta, r.pct];
    cells.forEach(function (c, k) {
      var td = document.createElement("td");
      if (k === 1) {
        var a = document.createElement("a");
        a.textContent = r.function;
        a.setAttribute("role", "button");
        a.setAttribute("data-function", r.function);
        a.addEventListener("click", function () { reveal(r.function, r.type); });
        td.appendChild(a);
        if (r.leak) {
          var em = document.createElement("em");
          em.textContent = " (leak-shaped)";
          em.title = "more objects, not bigger ones: the signature of a leak";
          td.appendChild(em);
        }
      } else td.textContent = c;
      if (k === 0) td.className = r.mark;
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  });
  if (!D.rows.length) document.getElementById("findings").hidden = true;
  document.getElementById("inputs").textContent = "baseline: " +
    (D.inputs.baseline.join(", ") || "none") + " \u2014 candidate: " +
    D.inputs.candidate.join(", ");
  var wl = document.getElementById("warnings");
  D.warnings.forEach(function (w) {
    var li = document.createElement("li"); li.textContent = w; wl.appendChild(li);
  });
  window.addEventListener("resize", draw);
  draw();
  document.body.setAttribute("data-ready", "1");
})();
"""


def html_page(report: dict[str, Any], result: RunResult) -> str | None:
    """The page for a :class:`~memgate.checkrun.RunResult` (None without any profile)."""
    from memgate.report.flame import build_tree

    runs = result.candidate or result.baseline
    if not runs:
        return None
    comp = getattr(result, "comparison", None)
    tree = build_tree(result.baseline, result.candidate, normalized=result.normalized,
                      divisors=(None, None) if comp is None else
                      (comp.baseline.divisors, comp.candidate.divisors))
    try:
        default = runs[0].profile.sample_index(None)
    except ValueError:
        default = 0
    return render_html(report, tree, default)
