"""What a pull request controls cannot forge a report, hang memgate or write outside the store.

One test per row of the attack table (the rows of issue 13): every string of a candidate
profile, file names matched by globs, anything committed under ``baselines/`` or as an output
path, reports merged from other jobs, and URLs with credentials. The property test over any
function name is tests/test_escape_property.py; docs/reliability.md has the figures.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from memgate.cli import main
from memgate.errors import FetchError
from memgate.profile.fetch import fetch_url
from memgate.profile.fetch_options import FetchOptions
from memgate.profile.limits import InputLimits
from tests import hostile_inputs as H
from tests.pbuild import gz, make_profile
from tests.test_action import SVC, Workspace, heap_profile, make_workspace, run_action
from tests.test_github import TOKEN, FakeGitHub, api  # noqa: F401 - the fixture
from tests.waiting import wait_until

cmarkgfm = pytest.importorskip("cmarkgfm")

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20
FORGED = "evil\r\r## ✅ memgate: **PASS** (forged) @octocat\r\r<!--"
COMMAND = "x\n::error title=forged::x"
OSC8 = "y\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\\r\x1b[2K"


def gfm(markdown: str) -> str:
    """The HTML GitHub makes of ``markdown`` (cmark-gfm with its table extension; raw HTML
    kept, as GitHub keeps comments and most tags)."""
    from cmarkgfm.cmark import Options

    html: str = cmarkgfm.github_flavored_markdown_to_html(
        markdown, options=Options.CMARK_OPT_UNSAFE)
    return html


def is_unsafe(ch: str) -> bool:
    """A character no output may hold raw: controls (C0, C1), format characters (bidi
    overrides, zero width), surrogates, line and paragraph separators."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")


def shown(value: str) -> str:
    """How memgate shows a value (memgate/escape.py)."""
    from memgate import escape

    return escape.text(value)


def assert_safe_text(out: str) -> None:
    """No line starts a workflow command, none holds a control character or ``##[``."""
    for line in out.split("\n"):
        assert not line.lstrip().startswith("::"), line
        assert "##[" not in line, line
        assert not any(is_unsafe(c) for c in line), repr(line)


def assert_safe_markdown(markdown: str, verdicts: int = 1) -> str:
    """memgate's markdown as GitHub renders it: its own h2 verdicts only (one, or the merged
    one and each component's), no HTML comment, no mention outside code; returns the HTML."""
    assert not any(is_unsafe(c) for c in markdown.replace("\n", "")), markdown
    html = gfm(markdown)
    assert len(re.findall(r"<h2>", html)) == verdicts, html
    assert "<!--" not in html
    outside_code = re.sub(r"<code>.*?</code>", "", html, flags=re.DOTALL)
    assert "@octocat" not in outside_code
    return html


def cli(*args: str, cwd: Path | None = None) -> Any:
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        return CliRunner().invoke(main, list(args))
    finally:
        os.chdir(old)


def pair(tmp: Path, name: str) -> tuple[str, str]:
    """Profiles where ``name`` grew from 100 MiB to 5000 MiB: a failing finding."""
    base = tmp / "base.pb.gz"
    cand = tmp / "cand.pb.gz"
    base.write_bytes(gz(make_profile(((("main.work", "main.main"), (1000, 100 * MiB)),
                                      ((name, "main.main"), (1000, 100 * MiB))))
                        .SerializeToString()))
    cand.write_bytes(gz(make_profile(((("main.work", "main.main"), (1000, 100 * MiB)),
                                      ((name, "main.main"), (50000, 5000 * MiB))))
                        .SerializeToString()))
    return str(base), str(cand)


def check(tmp: Path, name: str, *extra: str) -> Any:
    base, cand = pair(tmp, name)
    return cli("check", "--baseline", base, cand, "--duration", "60s", *extra)


# --------------------------------------------------------------------------- 1: markdown


def test_01_markdown_cannot_forge_a_verdict_or_hide_findings(tmp_path: Path) -> None:
    res = check(tmp_path, FORGED, "--format", "markdown")
    assert res.exit_code == 1, res.output
    html = assert_safe_markdown(res.output)
    assert "❌ memgate: <strong>FAIL</strong>" in html
    # The name is in its cell's code span, readable, with the controls shown as escapes.
    assert "<code>evil\\r\\r## ✅ memgate: **PASS** (forged) @octocat\\r\\r&lt;!--</code>" in html
    # Nothing after it is hidden: the totals and the movers are still rendered.
    assert "<h3>Totals</h3>" in html and "top movers" in html


def test_01_every_renderer_shows_control_characters_as_escapes(tmp_path: Path) -> None:
    name = "a\tb\x85c\u2028d\u202ee\x00f\x1bg"
    json_path = tmp_path / "r.json"
    text = check(tmp_path, name, "--json", str(json_path))
    assert text.exit_code == 1
    assert_safe_text(text.output)
    assert shown(name) in text.output
    # The JSON report keeps the exact name: a shown name can be found again.
    report = json.loads(json_path.read_text())
    assert any(f["name"] == name for f in report["functions"])
    merged = cli("report", "merge", str(json_path), "--format", "markdown")
    assert_safe_markdown(merged.output, verdicts=2)
    assert_safe_text(cli("report", "merge", str(json_path)).output)


# --------------------------------------------------------------------------- 2: Action log


def test_02_file_names_cannot_stop_the_runners_commands(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    evil = ws.root / "prof" / "a\n::stop-commands::pwn\n.pb.gz"
    evil.parent.mkdir()
    evil.write_bytes(heap_profile(800, 3))
    run = run_action(ws, {"profiles": "prof/*.pb.gz", **SVC})
    assert run.returncode == 1
    for line in run.stdout.splitlines():
        if line.lstrip().startswith("::"):
            assert line.startswith(("::error title=memgate", "::warning title=memgate")), line
    assert "::stop-commands" not in "\n".join(
        ln.lstrip()[:16] for ln in run.stdout.splitlines())
    assert shown(str(evil.relative_to(ws.root))) in run.stdout
    assert not any(ln.startswith("::stop-commands") for ln in run.step_summary.splitlines())


def test_02_warnings_in_the_summary_are_plain_text() -> None:
    from memgate.report.markdown import render_markdown

    report = json.loads((ROOT / "tests/fixtures/reports/pass.json").read_text())
    report["warnings"] = ["prof/a\n::stop-commands::pwn\n.pb.gz has no duration <!-- @octocat"]
    md = render_markdown(report)
    assert_safe_markdown(md)
    assert not any(ln.startswith("::") for ln in md.splitlines())


# --------------------------------------------------------------------------- 3: text outputs


def test_03_text_outputs_start_no_workflow_command(tmp_path: Path) -> None:
    for name in (COMMAND, OSC8, "##[error]legacy", "  ::warning::indented"):
        res = check(tmp_path, name, "--json", str(tmp_path / "r.json"))
        assert res.exit_code == 1
        assert_safe_text(res.output)
        assert_safe_text(cli("report", "merge", str(tmp_path / "r.json")).output)
        assert_safe_text(cli("top", str(tmp_path / "cand.pb.gz")).output)
        res = cli("baseline", "update", "--baselines", str(tmp_path / "b"), "-c", "api",
                  "--reason", f"r\n::error::{name}", str(tmp_path / "cand.pb.gz"), "--force")
        assert res.exit_code == 0, res.output
        assert_safe_text(cli("baseline", "show", "--baselines", str(tmp_path / "b"),
                             "api").output)


# --------------------------------------------------------------------------- 4: drop_frames


def test_04_drop_frames_match_in_linear_time(tmp_path: Path) -> None:
    args = H.drop_frames_bomb(tmp_path)
    m = H.measure(args, tmp_path, timeout=60)
    assert m.returncode == 0, m.stderr
    assert m.seconds < 20


def test_04_drop_frames_are_re2_as_in_pprof() -> None:
    from memgate.profile.decode import decode
    from memgate.table import aggregate

    # Go's regexp (RE2): no backreference; pprof ignores a pattern it cannot compile.
    for pattern, dropped in (("runtime\\..*", True), ("(a)\\1", False), ("(?=x)", False)):
        data = gz(make_profile(((("runtime.malg", "main.main"), (1, 10)),))
                  .SerializeToString())
        prof = decode(data, "x", InputLimits())
        from dataclasses import replace

        table = aggregate(replace(prof, drop_frames=pattern), "functions")
        assert ("runtime.malg" not in table.names) == dropped, pattern


# --------------------------------------------------------------------------- 5: legacy text


@pytest.mark.parametrize("build", [H.legacy_digits, H.legacy_memory_map])
def test_05_legacy_text_parses_in_linear_time(tmp_path: Path, build: Any) -> None:
    m = H.measure(build(tmp_path), tmp_path, timeout=60)
    assert m.returncode in (0, 3), m.stderr
    assert m.seconds < 10


def test_05_memory_map_substitutions_are_bounded(tmp_path: Path) -> None:
    text = ("heap profile: 1: 2 [3: 4] @ heap/1048576\n1: 2 [3: 4] @ 0x1000\n"
            "--- Memory map: ---\na=" + "x" * 100_000 + "\n" + "$a" * 50_000 + "\n")
    (tmp_path / "m.heap").write_text(text)
    m = H.measure(["top", "m.heap"], tmp_path, timeout=60)
    assert m.returncode == 3 and "through $attribute substitutions" in m.stderr
    assert m.peak_mib < 500


# --------------------------------------------------------------------------- 6: non-regular files


def test_06_dev_zero_is_bounded(tmp_path: Path) -> None:
    m = H.measure(["top", "--max-decompressed", "8MiB", "/dev/zero"], tmp_path, timeout=60)
    assert m.returncode == 3
    assert m.stderr.strip() == ("memgate: /dev/zero: file is larger than the limit of 8388608 "
                                "bytes (raise it with --max-decompressed or "
                                "MEMGATE_MAX_DECOMPRESSED_BYTES)")


def test_06_links_to_devices(tmp_path: Path) -> None:
    base, cand = pair(tmp_path, "main.new")
    (tmp_path / "policy.yml").symlink_to("/dev/zero")
    m = H.measure(["check", "--baseline", base, cand, "--duration", "1m", "--policy",
                   "policy.yml"], tmp_path, timeout=60)
    assert m.returncode == 3 and "policy file is larger than" in m.stderr
    (tmp_path / "prof.pb.gz").symlink_to("/dev/zero")
    m = H.measure(["top", "--max-decompressed", "4MiB", "prof.pb.gz"], tmp_path, timeout=60)
    assert m.returncode == 3 and "larger than the limit" in m.stderr


def test_06_baseline_links_that_leave_the_store_are_refused(tmp_path: Path) -> None:
    base, cand = pair(tmp_path, "main.new")
    res = cli("baseline", "update", "--baselines", str(tmp_path / "baselines"), "-c", "api",
              "--reason", "r", "--duration", "1m", base)
    assert res.exit_code == 0
    (stored,) = (tmp_path / "baselines" / "api").glob("*.pb.gz")
    stored.unlink()
    stored.symlink_to("/dev/zero")
    m = H.measure(["check", "-c", "api", "--baselines", "baselines", cand, "--duration", "1m"],
                  tmp_path, timeout=60)
    assert m.returncode == 3
    assert "is a symbolic link to /dev/zero, outside the baseline store" in m.stderr
    # A link that stays inside the store is fine.
    stored.unlink()
    (tmp_path / "baselines" / "blobs").mkdir()
    (tmp_path / "baselines" / "blobs" / stored.name).write_bytes(Path(base).read_bytes())
    stored.symlink_to(f"../blobs/{stored.name}")
    m = H.measure(["check", "-c", "api", "--baselines", "baselines", cand, "--duration", "1m"],
                  tmp_path, timeout=60)
    assert m.returncode in (0, 1), m.stderr
    # The component directory itself may not lead out of the store.
    (tmp_path / "baselines" / "api").rename(tmp_path / "elsewhere")
    (tmp_path / "baselines" / "api").symlink_to(tmp_path / "elsewhere")
    m = H.measure(["check", "-c", "api", "--baselines", "baselines", cand, "--duration", "1m"],
                  tmp_path, timeout=60)
    assert m.returncode == 3 and "outside the baseline store" in m.stderr


# --------------------------------------------------------------------------- 7: non-UTF-8 names


def test_07_non_utf8_file_name_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    (ws.root / "prof").mkdir()
    with open(os.path.join(os.fsencode(ws.root / "prof"), b"a\xff.pb.gz"), "wb") as fh:
        fh.write(heap_profile(8, 1))
    run = run_action(ws, {"profiles": "prof/*.pb.gz", **SVC})
    assert run.returncode == 3, run.stderr
    assert run.outputs["verdict"] == "error"
    errors = [a for a in run.annotations if a.startswith("::error")]
    assert len(errors) == 1 and "not valid UTF-8" in errors[0] and "a\\xff.pb.gz" in errors[0]
    assert "Traceback" not in run.stderr


def test_07_any_bug_in_the_action_is_exit_3_and_verdict_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from memgate import action

    def boom(*a: Any, **k: Any) -> Any:
        raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(action, "run", boom)
    out = io.StringIO()
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out"))
    monkeypatch.delenv("MEMGATE_DEBUG", raising=False)
    monkeypatch.setattr(sys, "stdout", out)
    assert action.main() == 3
    assert out.getvalue().startswith("::error title=memgate::internal error: UnicodeEncodeError")
    assert "verdict<<" in (tmp_path / "out").read_text()


# --------------------------------------------------------------------------- 8: lock files


def test_08_lock_file_links_are_never_written_through(tmp_path: Path) -> None:
    base, _ = pair(tmp_path, "main.new")
    store = tmp_path / "baselines"
    store.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (store / ".c.lock").symlink_to(victim)
    res = cli("baseline", "update", "--baselines", str(store), "-c", "c", "--reason", "r", base)
    assert res.exit_code == 3
    assert "is a symbolic link, not a lock file" in res.output
    assert victim.read_text() == "precious\n"
    assert (store / ".c.lock").is_symlink()


# --------------------------------------------------------------------------- 9: glob loops


def test_09_glob_does_not_follow_link_loops(tmp_path: Path) -> None:
    prof = tmp_path / "prof"
    prof.mkdir()
    (prof / "a.pb.gz").write_bytes(heap_profile(8, 1))
    (prof / "sub").mkdir()
    (prof / "sub" / "b.pb.gz").write_bytes(heap_profile(8, 1))
    (prof / "l1").symlink_to(".")
    (prof / "l2").symlink_to(".")
    code = ("from memgate.action import expand_profiles; "
            "print(expand_profiles(['prof/**/*.pb.gz']))")
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['prof/a.pb.gz', 'prof/sub/b.pb.gz']"
    assert time.monotonic() - t0 < 20


def test_09_glob_expansion_is_bounded(tmp_path: Path) -> None:
    from memgate.fs import GlobError, glob_files

    for i in range(30):
        (tmp_path / f"d{i}").mkdir()
    with pytest.raises(GlobError, match="more than 20 directory entries"):
        glob_files(str(tmp_path / "**" / "*.pb.gz"), max_entries=20)


# --------------------------------------------------------------------------- 10: memory


@pytest.mark.parametrize(("build", "refused"), [
    (H.many_strings, "more than 4000000 strings in the string table"),
    (H.one_huge_string, "the string table holds more than 268435456 bytes"),
    (H.gzip_bomb, "decompressed size exceeds the limit of 1073741824 bytes"),
], ids=["39M-strings", "1000MiB-string", "2GiB-bomb"])
@pytest.mark.slow
def test_10_memory_stays_within_the_limits(tmp_path: Path, build: Any, refused: str) -> None:
    m = H.measure(build(tmp_path), tmp_path, timeout=300)
    assert m.returncode == 3, m.stderr
    assert len(m.stderr.strip().splitlines()) == 1 and refused in m.stderr, m.stderr
    assert m.peak_mib < 1536, (m.peak_mib, m.stderr)


def test_10_string_table_and_run_limits(tmp_path: Path) -> None:
    data = gz(make_profile(((("main.a", "main.main"), (1, 10)),)).SerializeToString())
    (tmp_path / "p.pb.gz").write_bytes(data)
    res = cli("top", "--max-strings", "3", str(tmp_path / "p.pb.gz"))
    assert res.exit_code == 3 and "--max-strings or MEMGATE_MAX_STRINGS" in res.output
    res = cli("top", "--max-string-bytes", "8", str(tmp_path / "p.pb.gz"))
    assert res.exit_code == 3 and "--max-string-bytes or MEMGATE_MAX_STRING_BYTES" in res.output
    size = len(__import__("gzip").decompress(data))
    res = cli("diff", "--max-total", str(size + size // 2), str(tmp_path / "p.pb.gz"),
              str(tmp_path / "p.pb.gz"))
    assert res.exit_code == 3
    assert "the profiles of this run decompress to more than" in res.output
    assert cli("diff", "--max-total", str(2 * size), str(tmp_path / "p.pb.gz"),
               str(tmp_path / "p.pb.gz")).exit_code == 0


# --------------------------------------------------------------------------- 11: Action outputs


def test_11_action_outputs_that_link_outside_are_refused(tmp_path: Path) -> None:
    ws: Workspace = make_workspace(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    (ws.root / "memgate.html").symlink_to(outside)
    run = run_action(ws, {"profiles": ws.ok, **SVC, "html": "memgate.html"})
    assert run.returncode == 3
    assert run.outputs["verdict"] == "error"
    assert any("outside the workspace" in a for a in run.annotations)
    assert outside.read_text() == "keep me\n"
    # A link that stays in the workspace is written through, as the CLI does.
    (ws.root / "memgate.html").unlink()
    (ws.root / "out").mkdir()
    (ws.root / "memgate.html").symlink_to(ws.root / "out" / "page.html")
    run = run_action(ws, {"profiles": ws.ok, **SVC, "html": "memgate.html"})
    assert run.returncode == 0, run.stdout
    assert (ws.root / "out" / "page.html").read_text().startswith("<!DOCTYPE html>")


# --------------------------------------------------------------------------- 12: HTML


def test_12_html_template_is_filled_in_one_pass(tmp_path: Path) -> None:
    name = "leak%SCRIPT%</script><svg onload=alert(1)>"
    res = check(tmp_path, name, "--html", str(tmp_path / "p.html"))
    assert res.exit_code == 1
    page = (tmp_path / "p.html").read_text()
    from memgate.report.html import _SCRIPT

    assert page.count(_SCRIPT) == 1
    m = re.search(r'id="memgate-data">(.*?)</script>', page, re.DOTALL)
    assert m is not None
    assert name in json.loads(m.group(1))["names"]
    assert "<svg" not in page


# --------------------------------------------------------------------------- 13: PR comment


def test_13_only_comments_of_the_tokens_user_are_updated(tmp_path: Path,
                                                         api: FakeGitHub) -> None:  # noqa: F811
    ws = make_workspace(tmp_path)
    theirs = api.add("<!-- memgate:svc -->\nplease click https://evil.example", user="mallory")
    run = run_action(ws, {"profiles": ws.ok, **SVC, "comment": "true"},
                     env={"GITHUB_API_URL": api.url}, token=TOKEN)
    assert run.returncode == 0, run.stdout
    assert api.comments[theirs]["body"].startswith("<!-- memgate:svc -->\nplease click")
    ours = [c for c in api.comments.values() if c["user"]["login"] == "github-actions[bot]"]
    assert len(ours) == 1 and "memgate: **PASS**" in ours[0]["body"]
    # A personal token: its own login (GET /user) is the author it looks for.
    api.login = "octo-bot"
    run = run_action(ws, {"profiles": ws.ok, **SVC, "comment": "true"},
                     env={"GITHUB_API_URL": api.url}, token=TOKEN)
    assert [c["user"]["login"] for c in api.comments.values()].count("octo-bot") == 1
    run = run_action(ws, {"profiles": ws.ok, **SVC, "comment": "true"},
                     env={"GITHUB_API_URL": api.url}, token=TOKEN)
    assert [c["user"]["login"] for c in api.comments.values()].count("octo-bot") == 1
    assert "updated the pull-request comment" in run.stdout


# --------------------------------------------------------------------------- 14: report merge


def test_14_merged_reports_are_escaped_and_bounded(tmp_path: Path) -> None:
    report = json.loads((ROOT / "tests/fixtures/reports/fail.json").read_text())
    hostile = "x\n\n<img src=x onerror=alert(1)> @octocat <!--\n::error::forged\n::stop-commands::p"
    report["warnings"] = [hostile]
    for f in report["findings"]:
        f["rule"] = "r\n::error::rule"
        f["message"] = hostile
        f["sample_type"] = "inuse_space\n## forged"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    md = cli("report", "merge", str(path), "--format", "markdown")
    assert md.exit_code == 1
    html = assert_safe_markdown(md.output, verdicts=2)
    assert "<img" not in html
    text = cli("report", "merge", str(path))
    assert_safe_text(text.output)
    assert shown(hostile) in text.output
    # The schema bounds these strings.
    report["findings"][0]["message"] = "m" * (1 << 20 | 1)
    path.write_text(json.dumps(report))
    res = cli("report", "merge", str(path))
    assert res.exit_code == 3 and "at findings/0/message" in res.output


# --------------------------------------------------------------------------- 15: fetch errors


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif self.path == "/echo":
            body = f"denied: {self.headers.get('Authorization')}".encode()
            self.send_response(403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/basic":
            ok = self.headers.get("Authorization") == "Basic dXNlcjpwYXNzd29yZDE="
            body = b"nope" if not ok else b"\x1f\x8b"
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True).start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_15a_redirect_loop_is_one_line(server: str) -> None:
    res = cli("top", f"http://{server}/loop")
    assert res.exit_code == 3
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert "HTTP 302" in res.output


def test_15b_header_values_are_redacted(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "ghp_0123456789abcdefSECRET"
    res = cli("top", "--header", f"Authorization: Bearer {secret}", f"http://{server}/echo")
    assert res.exit_code == 3 and "HTTP 403" in res.output
    assert secret not in res.output and "***" in res.output
    monkeypatch.setenv("MEMGATE_HTTP_HEADERS", f"X-Api-Key: {secret}")
    with pytest.raises(FetchError) as info:
        fetch_url(f"http://{server}/echo", InputLimits(),
                  FetchOptions(timeout=5, environ_headers=f"X-Api-Key: {secret}"))
    assert secret not in str(info.value)


def test_15c_url_credentials_are_never_printed(server: str, tmp_path: Path) -> None:
    res = cli("top", f"http://user:password1@{server}/basic")
    # Sent as Basic auth (the server accepts it and sends a truncated gzip), never shown.
    assert res.exit_code == 3, res.output
    assert "password1" not in res.output and "user:" not in res.output
    assert f"http://***@{server}/basic" in res.output
    assert "gzip" in res.output
    res = cli("top", f"http://user:wrong-password@{server}/basic")
    assert "wrong-password" not in res.output and "HTTP 401" in res.output


# --------------------------------------------------------------------------- 16: environment


def test_16_sizes_in_the_environment_take_the_flags_syntax(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setenv("MEMGATE_MAX_DECOMPRESSED_BYTES", "100M")
    assert InputLimits.from_env(os.environ).max_decompressed_bytes == 100 << 20
    monkeypatch.setenv("MEMGATE_MAX_DECOMPRESSED_BYTES", "0.1k")
    (tmp_path / "p.pb.gz").write_bytes(heap_profile(8, 1))
    res = cli("top", str(tmp_path / "p.pb.gz"))
    assert res.exit_code == 3 and "limit of 102 bytes" in res.output
    monkeypatch.setenv("MEMGATE_MAX_DECOMPRESSED_BYTES", "lots")
    res = cli("top", str(tmp_path / "p.pb.gz"))
    assert res.exit_code == 3
    assert "MEMGATE_MAX_DECOMPRESSED_BYTES: invalid size 'lots'" in res.output


# --------------------------------------------------------------------------- the known items


class _Drip(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def handle(self) -> None:
        # The status line, one byte every 0.3 s: no single read ever waits long.
        try:
            self.rfile.readline()
            for b in b"HTTP/1.1 200 OK\r\n" * 20:
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            pass


def test_known_drip_fed_status_line_hits_the_total_timeout() -> None:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Drip)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True).start()
    try:
        t0 = time.monotonic()
        res = cli("top", "--timeout", "2", f"http://127.0.0.1:{srv.server_address[1]}/heap")
        elapsed = time.monotonic() - t0
    finally:
        srv.shutdown()
    assert res.exit_code == 3 and "timed out after 2s" in res.output, res.output
    assert elapsed < 6


def test_known_policy_regexes_run_in_linear_time(tmp_path: Path) -> None:
    m = H.measure(H.policy_regex_bomb(tmp_path), tmp_path, timeout=60)
    assert m.returncode in (0, 1), m.stderr
    assert m.seconds < 20
    (tmp_path / "bad.yml").write_text(
        "version: 1\nrules:\n  - name: x\n    match: 're:(a)\\1'\n    max_increase: 1%\n")
    res = cli("policy", "check", str(tmp_path / "bad.yml"))
    assert res.exit_code == 3 and "RE2 syntax" in res.output


def test_known_policy_files_have_a_size_limit(tmp_path: Path) -> None:
    (tmp_path / "p.yml").write_text("version: 1\n" + "# padding\n" * 200_000)
    t0 = time.monotonic()
    res = cli("policy", "check", str(tmp_path / "p.yml"))
    assert res.exit_code == 3 and "larger than 1024 KiB" in res.output
    assert time.monotonic() - t0 < 5


def test_sockets_are_closed_after_a_timeout() -> None:
    """The watchdog leaves nothing behind: the socket is shut and the timer stopped."""
    before = threading.active_count()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(FetchError, match="timed out"):
            fetch_url(f"http://127.0.0.1:{port}/", InputLimits(), FetchOptions(timeout=0.5))
    wait_until(lambda: threading.active_count() <= before, "the watchdog thread to end", 5)
    assert threading.active_count() <= before
