"""Profiles from continuous profilers, end to end through the CLI against local fakes.

The fake Pyroscope speaks the Connect protocol of ``querier.v1.QuerierService/
SelectMergeProfile`` (grafana/pyroscope api/querier/v1/querier.proto): POST, binary protobuf
(``application/proto``) or JSON (``application/json``), errors as Connect JSON
(``{"code", "message"}``), 415 for a codec it does not take. It decodes requests with the
protobuf runtime from a descriptor with querier.proto's field names and numbers, not with
memgate's encoder, so a wrong field number or JSON name fails here. The fake Parca serves the
REST gateway of ``parca.query.v1alpha1.QueryService/Query`` (``GET /api/profiles/query``,
query parameters, JSON with base64 ``pprof``; errors as grpc-gateway JSON).

Each fake serves, per label selector, a merged profile of a service: ``leaky`` is a run of
the seed's leak, ``healthy`` an independent no-leak run (tests/fixtures/noise). The gate must
decide the same with the profile from the server as with the same profile as a file.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

from memgate.errors import EXIT_ERROR, EXIT_FAIL, EXIT_OK, EXIT_USAGE
from memgate.profile import profile_pb2
from tests import clirun

ROOT = Path(__file__).resolve().parent.parent
NOISE = ROOT / "tests" / "fixtures" / "noise"
BASE = NOISE / "noleak-01.pb.gz"
#: Last week's production profile of the service ("prod"), and two candidates.
SERVICES = {"prod": BASE, "leaky": NOISE / "leak-01.pb.gz", "healthy": NOISE / "noleak-02.pb.gz"}
#: Against a profiler's single-type profile a function the baseline never had in use is a
#: *new* function; a production gate makes those fail (docs/production-baselines.md).
POLICY = ("version: 1\nnew_functions:\n  max_rate: [\"1MiB/min\", \"10k/min\"]\n"
          "  severity: fail\n")
TYPE = "memory:inuse_space:bytes:space:bytes"
# A fixed 30-second range (the fixtures' workload ran 30 s): 2023-11-14T22:13:20Z + 30 s.
START, END = 1700000000, 1700000030
TENANT = "tenant-a"
LITERAL_STORE = "encoding/json.(*decodeState).literalStore"


def _request_class() -> Any:
    """``querier.v1.SelectMergeProfileRequest`` as querier.proto declares it."""
    f = descriptor_pb2.FileDescriptorProto(name="fake_querier.proto", package="querier.v1",
                                           syntax="proto3")
    m = f.message_type.add(name="SelectMergeProfileRequest")
    fd = descriptor_pb2.FieldDescriptorProto
    for name, number, typ, json_name in (
            ("profile_typeID", 1, fd.TYPE_STRING, "profileTypeID"),
            ("label_selector", 2, fd.TYPE_STRING, "labelSelector"),
            ("start", 3, fd.TYPE_INT64, "start"),
            ("end", 4, fd.TYPE_INT64, "end")):
        m.field.add(name=name, number=number, type=typ, label=fd.LABEL_OPTIONAL,
                    json_name=json_name)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("querier.v1.SelectMergeProfileRequest"))


REQUEST = _request_class()


def one_type(raw: bytes, profile_type: str) -> bytes:
    """The profile with only the sample type a profile type ID names (as Pyroscope and Parca
    answer: ``memory:inuse_space:bytes:space:bytes`` -> inuse_space alone)."""
    msg = profile_pb2.Profile()
    msg.ParseFromString(raw)
    name = profile_type.split(":")[1]
    idx = [msg.string_table[st.type].decode() for st in msg.sample_type].index(name)
    kept = (msg.sample_type[idx].type, msg.sample_type[idx].unit)
    del msg.sample_type[:]
    msg.sample_type.add(type=kept[0], unit=kept[1])
    for sample in msg.sample:
        value = sample.value[idx]
        del sample.value[:]
        sample.value.append(value)
    msg.default_sample_type = 0
    return msg.SerializeToString()


def profile_json(raw: bytes) -> dict[str, Any]:
    """A pprof profile in proto3 JSON as Pyroscope's google.v1.Profile has it: camelCase
    names, int64 as strings, and ``stringTable`` as strings (memgate's own profile_pb2 keeps
    the string table as bytes, which JSON would write as base64)."""
    msg = profile_pb2.Profile()
    msg.ParseFromString(raw)
    doc = json_format.MessageToDict(msg)
    doc["stringTable"] = [s.decode("utf-8") for s in msg.string_table]
    return doc


def _service(selector: str) -> Path | None:
    m = re.fullmatch(r'\{service_name="([^"]*)"\}', selector)
    return SERVICES.get(m.group(1)) if m else None


class Fake(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _connect_error(self, status: int, code: str, message: str) -> None:
        self._send(status, json.dumps({"code": code, "message": message}).encode(),
                   "application/json")

    def do_POST(self) -> None:  # noqa: N802
        prefix, _, rpc = self.path.rpartition("/querier.v1.QuerierService/")
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if rpc != "SelectMergeProfile" or \
                prefix not in ("", "/json-only", "/tenants", "/slow", "/huge"):
            self._connect_error(404, "unimplemented", f"no such procedure {self.path}")
            return
        ctype = self.headers.get("Content-Type", "")
        if self.headers.get("Connect-Protocol-Version") != "1":
            self._connect_error(400, "invalid_argument", "missing Connect-Protocol-Version")
            return
        if prefix == "/json-only" and ctype != "application/json":
            self.send_response(415)
            self.send_header("Accept-Post", "application/json")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        req = REQUEST()
        try:
            if ctype == "application/proto":
                req.ParseFromString(body)
            elif ctype == "application/json":
                json_format.Parse(body.decode(), req)
            else:
                self.send_response(415)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        except Exception as e:  # noqa: BLE001
            self._connect_error(400, "invalid_argument", f"cannot decode: {e}")
            return
        Fake.requests.append({"ctype": ctype, "type": req.profile_typeID,
                              "labels": req.label_selector, "start": req.start,
                              "end": req.end, "auth": self.headers.get("Authorization"),
                              "org": self.headers.get("X-Scope-OrgID")})
        if prefix == "/tenants" and self.headers.get("X-Scope-OrgID") != TENANT:
            self._connect_error(401, "unauthenticated", "no org id")
            return
        if prefix == "/slow":
            time.sleep(3)
        if prefix == "/huge":
            self._send(200, b"\x0a" * (2 << 20), "application/proto")
            return
        if req.profile_typeID != TYPE or (req.start, req.end) != (START * 1000, END * 1000):
            self._connect_error(400, "invalid_argument",
                                f"unexpected {req.profile_typeID} {req.start}..{req.end}")
            return
        path = _service(req.label_selector)
        if path is None:
            # Pyroscope answers an empty Profile when nothing matches.
            raw = b""
        else:
            raw = one_type(gzip.decompress(path.read_bytes()), req.profile_typeID)
        if ctype == "application/json":
            self._send(200, json.dumps(profile_json(raw)).encode(), "application/json")
        else:
            self._send(200, raw, "application/proto")

    def do_GET(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        prefix, _, rest = url.path.rpartition("/api/")
        if rest != "profiles/query":
            self._send(404, b'{"code": 5, "message": "Not Found", "details": []}',
                       "application/json")
            return
        q = dict(urllib.parse.parse_qsl(url.query))
        Fake.requests.append({"parca": q, "org": self.headers.get("X-Scope-OrgID")})
        expected = {"mode": "MODE_MERGE", "report_type": "REPORT_TYPE_PPROF"}
        try:
            start = datetime.fromisoformat(q["merge.start"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(q["merge.end"].replace("Z", "+00:00"))
            query = q["merge.query"]
        except (KeyError, ValueError) as e:
            self._send(400, json.dumps({"code": 3, "message": f"bad request: {e}",
                                        "details": []}).encode(), "application/json")
            return
        if any(q.get(k) != v for k, v in expected.items()) or \
                (start.timestamp(), end.timestamp()) != (START, END) or \
                not query.startswith(TYPE + "{"):
            self._send(400, json.dumps({"code": 3, "message": f"unexpected query {q}",
                                        "details": []}).encode(), "application/json")
            return
        if prefix == "/broken":
            self._send(200, b'{"flamegraph": {}}', "application/json")
            return
        path = _service(query[len(TYPE):])
        if path is None:
            self._send(404, json.dumps({"code": 5, "message": "no profiles found",
                                        "details": []}).encode(), "application/json")
            return
        pprof = gzip.compress(one_type(gzip.decompress(path.read_bytes()), TYPE))
        body = {"pprof": base64.b64encode(pprof).decode(), "total": "1",
                "filtered": "0"}
        self._send(200, json.dumps(body).encode(), "application/json")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Fake)
    srv.daemon_threads = True
    srv.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True).start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def url(kind: str, host: str, service: str, prefix: str = "", *, start: object = START,
        end: object = END) -> str:
    query = urllib.parse.quote(f'{TYPE}{{service_name="{service}"}}', safe=":{}=\"")
    return f"{kind}+http://{host}{prefix}/?query={query}&from={start}&until={end}"


def memgate(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "MEMGATE_"))}
    full.update(env or {})
    return clirun.run(args, cwd=cwd, env=full)


def findings(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((f["function"], f["sample_type"], f["severity"]) for f in report["findings"])


def check_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    r = memgate("check", "--format", "json", *args)
    assert r.returncode in (EXIT_OK, EXIT_FAIL), r.stderr
    return r.returncode, json.loads(r.stdout)


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policy") / "production.yml"
    path.write_text(POLICY)
    return path


def served(service: str) -> bytes:
    """The profile the fakes serve for a service: its run with the queried type alone."""
    return one_type(gzip.decompress(SERVICES[service].read_bytes()), TYPE)


@pytest.mark.parametrize("kind,prefix", [("pyroscope", ""), ("pyroscope", "/json-only"),
                                         ("parca", "")])
def test_check_decides_as_with_the_same_profiles_as_files(server: str, kind: str, prefix: str,
                                                          policy: Path, tmp_path: Path) -> None:
    """Against last week's production profile of the service, the leaking service fails and
    the healthy one passes, with the same findings as the same profiles saved as files."""
    Fake.requests.clear()
    base_file = tmp_path / "prod.pb"
    base_file.write_bytes(served("prod"))
    for service, expected in (("leaky", EXIT_FAIL), ("healthy", EXIT_OK)):
        code, remote = check_json("--policy", policy, "--baseline",
                                  url(kind, server, "prod", prefix),
                                  url(kind, server, service, prefix))
        cand_file = tmp_path / f"{service}.pb"
        cand_file.write_bytes(served(service))
        fcode, local = check_json("--policy", policy, "--baseline", base_file,
                                  "--duration", "30s", cand_file)
        assert code == fcode == expected, (service, remote["findings"])
        assert remote["verdict"] == local["verdict"]
        assert findings(remote) == findings(local)
        if expected == EXIT_FAIL:
            # Named as the culprit, or as the leaf that carries its caller's growth.
            named = {f["function"] for f in remote["findings"]} | {
                e["function"] for f in remote["findings"] for e in f.get("evidence", [])}
            assert LITERAL_STORE in named
        cand = remote["inputs"]["candidate"][0]
        # The range is the profile's duration; the report names the absolute range.
        assert cand["duration_seconds"] == 30
        assert f"from={START}&until={END}" in cand["path"]
    if kind == "pyroscope":
        # Binary protobuf first; JSON after the json-only server's 415 (which it answers
        # before it records a request).
        sent = {r["ctype"] for r in Fake.requests}
        assert sent == ({"application/json"} if prefix else {"application/proto"})


def test_ci_profile_against_production_compares_the_shared_type(server: str,
                                                                policy: Path) -> None:
    """A CI heap profile has four sample types, the profiler's one: the gate compares that
    one, says so, and decides as with the single-type profiles."""
    for service, expected in (("leaky", EXIT_FAIL), ("healthy", EXIT_OK)):
        code, rep = check_json("--policy", policy, "--baseline",
                               url("pyroscope", server, "prod"), "--duration", "30s",
                               SERVICES[service])
        assert code == expected, rep["findings"]
        assert {st["type"] for st in rep["sample_types"]} == {"inuse_space"}
        assert any("comes from a continuous profiler" in w for w in rep["warnings"])


def test_profiler_profile_in_diff_and_top(server: str) -> None:
    r = memgate("diff", url("parca", server, "healthy"), url("pyroscope", server, "leaky"),
                "--format", "json")
    assert r.returncode == 0, r.stderr
    top = memgate("top", "--format", "json", url("parca", server, "leaky"))
    assert top.returncode == 0, top.stderr
    top_file = memgate("top", "--format", "json", "--sample-index", "inuse_space",
                       SERVICES["leaky"])
    a, b = json.loads(top.stdout), json.loads(top_file.stdout)
    assert a["functions"] == b["functions"]
    assert a["duration_seconds"] == 30


def test_baseline_update_records_the_source(server: str, tmp_path: Path,
                                           policy: Path) -> None:
    """The store keeps where a production baseline came from, with the absolute range."""
    spec = url("pyroscope", server, "prod", start="2023-11-14T22:13:20Z",
               end="2023-11-14T23:13:50%2B01:00")
    r = memgate("baseline", "update", "--component", "api", "--baselines", tmp_path / "b",
                "--reason", "production, last week", spec)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "b" / "api" / "manifest.json").read_text())
    entry = manifest["profiles"][0]
    assert entry["duration_seconds"] == 30
    assert entry["source"] == {
        "kind": "pyroscope", "server": f"http://{server}",
        "query": f'{TYPE}{{service_name="prod"}}',
        "from": "2023-11-14T22:13:20Z", "until": "2023-11-14T22:13:50Z",
        "url": url("pyroscope", server, "prod").replace("%22", '"')}
    assert memgate("baseline", "verify", "--baselines", tmp_path / "b").returncode == 0
    show = memgate("baseline", "show", "api", "--baselines", tmp_path / "b")
    assert "pyroscope query memory:inuse_space" in show.stdout
    # The gate against that stored baseline decides as with the files.
    r = memgate("check", "--component", "api", "--baselines", tmp_path / "b", "--policy",
                policy, "--duration", "30s", SERVICES["leaky"])
    assert r.returncode == EXIT_FAIL, r.stdout + r.stderr


def test_tenant_header_and_basic_auth_never_shown(server: str) -> None:
    spec = url("pyroscope", server, "healthy", "/tenants")
    r = memgate("top", spec)
    assert r.returncode == EXIT_ERROR
    assert "HTTP 401" in r.stderr and "unauthenticated: no org id" in r.stderr
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    r = memgate("top", spec, env={"MEMGATE_HTTP_HEADERS": f"X-Scope-OrgID: {TENANT}"})
    assert r.returncode == EXIT_OK, r.stderr
    Fake.requests.clear()
    secret = url("pyroscope", server.replace("127.", "tenant:t0ps3cret@127."), "nobody")
    r = memgate("top", secret)
    assert r.returncode == EXIT_ERROR
    assert "t0ps3cret" not in r.stderr + r.stdout
    assert "no profile of type memory:inuse_space:bytes:space:bytes matches" in r.stderr
    assert Fake.requests[-1]["auth"] == "Basic " + base64.b64encode(
        b"tenant:t0ps3cret").decode()


@pytest.mark.parametrize("kind,prefix,args,message", [
    ("pyroscope", "/slow", ["--timeout", "1"], "timed out after 1s"),
    ("pyroscope", "/huge", ["--max-decompressed", "1MiB"], "--max-decompressed"),
    ("parca", "/broken", [], "the response has no pprof report"),
    ("pyroscope", "/nothing-here/x", [], "no such procedure"),
])
def test_errors_timeouts_and_huge_bodies(server: str, kind: str, prefix: str,
                                         args: list[str], message: str) -> None:
    r = memgate("top", *args, url(kind, server, "healthy", prefix))
    assert r.returncode == EXIT_ERROR, r.stdout
    assert message in r.stderr
    assert r.stderr.startswith(f"memgate: {kind}+http://")
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr


def test_parca_no_match_and_huge_body(server: str) -> None:
    r = memgate("top", url("parca", server, "nobody"))
    assert r.returncode == EXIT_ERROR
    assert "HTTP 404" in r.stderr and "5: no profiles found" in r.stderr
    r = memgate("top", "--max-decompressed", "4KiB", url("parca", server, "healthy"))
    assert r.returncode == EXIT_ERROR and "larger than the limit" in r.stderr


@pytest.mark.parametrize("spec,problem", [
    ("pyroscope+https://pyro.example/?query=memory:inuse_space:bytes:space:bytes&from=now-1h",
     "until= is missing"),
    ("parca+https://parca.example/?from=now-1h&until=now", "query= is missing"),
    ("pyroscope+https://pyro.example/?query=memory{a=\"b\"}&from=now-1h&until=now",
     "is not NAME:SAMPLE_TYPE"),
    ("pyroscope+https://pyro.example/?query=a:b:c:d:e&from=yesterday&until=now",
     "is not a time"),
    ("pyroscope+https://pyro.example/?query=a:b:c:d:e&from=now&until=now-1h",
     "must be before until"),
    ("pyroscope+https://pyro.example/?query=a:b:c:d:e&from=1700000000000&until=now",
     "milliseconds"),
    ("pyroscope+https://pyro.example/?query=a:b:c:d:e&from=now-1h&until=now&step=10",
     "unknown parameter 'step'"),
    ("pyroscope+https://u:hunter2@/?query=a:b:c:d:e&from=now-1h&until=now", "no HOST"),
])
def test_bad_profiler_urls_are_usage_errors_with_the_syntax(spec: str, problem: str) -> None:
    from click.testing import CliRunner

    from memgate.cli import main

    commands = [["top", spec]]
    if problem == "until= is missing":
        commands += [["check", "--baseline", spec, str(BASE)], ["diff", str(BASE), spec],
                     ["baseline", "update", "-c", "x", "--reason", "r", spec]]
    for args in commands:
        r = CliRunner().invoke(main, args)
        assert r.exit_code == EXIT_USAGE, (args, r.output)
        flat = " ".join(r.output.split())
        assert problem in flat
        assert "the syntax is pyroscope+http(s)://HOST[:PORT][/PREFIX]/?query=" in flat
        assert "hunter2" not in r.output
