"""Profiles from continuous profilers: Grafana Pyroscope and Parca.

A fleet's profiler already holds last week's production profile of every service; gating a
pull request against it needs no copying of files. A profiler URL names a server, a query and
a time range::

    pyroscope+https://HOST[:PORT][/PREFIX]/?query=PROFILE_TYPE{LABELS}&from=T&until=T
    parca+https://HOST[:PORT][/PREFIX]/?query=PROFILE_TYPE{LABELS}&from=T&until=T

where T is ``now``, ``now-1h`` (``s``, ``m``, ``h``, ``d``), Unix seconds or RFC 3339. memgate
asks the server for the profiles of the range merged into one pprof profile:

* Pyroscope: ``POST PREFIX/querier.v1.QuerierService/SelectMergeProfile`` (Connect protocol,
  binary protobuf; JSON when the server answers 415 to protobuf), request
  ``{profileTypeID, labelSelector, start, end}`` in milliseconds, response a pprof Profile.
* Parca: ``GET PREFIX/api/profiles/query?mode=MODE_MERGE&merge.query=...&merge.start=...&
  merge.end=...&report_type=REPORT_TYPE_PPROF`` (the REST gateway), response JSON whose
  ``pprof`` field is the gzip profile, base64-encoded.

Both go through :func:`memgate.profile.fetch.request`: the same timeouts, redirect rules,
headers (``X-Scope-OrgID`` for a multi-tenant Pyroscope is a ``--header`` like any other) and
size limits as any URL. Credentials in the URL (``https://USER:TOKEN@host``, as Grafana Cloud
hands them out) become a basic ``Authorization`` header and never appear in a message.

The range becomes the profile's duration when the server records none (a merged profile
covers the range), so rates are per second of production time; the source string memgate
reports carries the absolute range, so a baseline made from ``now-7d`` says which week.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
import urllib.parse
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from memgate.errors import FetchError, MemgateError
from memgate.profile.fetch_options import FetchOptions
from memgate.profile.gunzip import gunzip_if_gzip
from memgate.profile.limits import InputLimits
from memgate.profile.wire import encode_varint
from memgate.progress import Progress

KINDS = ("pyroscope", "parca")
SYNTAX = ("pyroscope+http(s)://HOST[:PORT][/PREFIX]/?query=PROFILE_TYPE{LABELS}&from=T&until=T "
          "(or parca+http(s)://...), T: now, now-1h, now-30m, now-7d, Unix seconds or RFC 3339; "
          "e.g. pyroscope+https://pyro.example/?query=memory:inuse_space:bytes:space:bytes"
          "{service_name=\"api\"}&from=now-1h&until=now")

_CONNECT_PATH = "/querier.v1.QuerierService/SelectMergeProfile"
_PARCA_PATH = "/api/profiles/query"
#: Unix seconds beyond this are milliseconds typed as seconds (the year 5138).
_MAX_UNIX_SECONDS = 1e11
_PROFILE_TYPE = re.compile(r"[^:{}\s]+(:[^:{}\s]+){4,5}")


class ProfilerURLError(MemgateError, slug="usage"):
    """A profiler URL that does not follow the syntax: a usage error (the CLI exits 2)."""


def is_profiler_url(spec: str) -> bool:
    """Whether ``spec`` is a ``pyroscope+`` or ``parca+`` URL (an existing file named like one
    is still a file)."""
    head = spec.split("://", 1)[0].lower()
    return "://" in spec and head in {f"{k}+{s}" for k in KINDS for s in ("http", "https")} \
        and not Path(spec).exists()


def redact(url: str) -> str:
    """``url`` without the password of its userinfo (``user:***@host``): safe to print."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url.split("@", 1)[-1] if "@" in url else url
    if "@" not in parts.netloc:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    netloc = f"{name}:***@{host}" if ":" in user else f"***@{host}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class ProfilerQuery:
    """A parsed profiler URL with its time range resolved to Unix seconds."""

    kind: str
    #: ``http(s)://HOST[:PORT][/PREFIX]`` without userinfo or a trailing slash.
    server: str
    profile_type: str
    #: The label selector, ``{...}`` (``{}``: every series of the type).
    labels: str
    start: float
    end: float
    #: ``(user, password)`` from the URL's userinfo, sent as basic authentication.
    auth: tuple[str, str] | None = None

    @property
    def query(self) -> str:
        return f"{self.profile_type}{self.labels}"

    @property
    def duration_seconds(self) -> float:
        return self.end - self.start

    def url(self) -> str:
        """The profiler URL with the absolute range: fetching it again gives the same
        profile. Never holds credentials."""
        q = urllib.parse.urlencode([("query", self.query), ("from", _unix(self.start)),
                                    ("until", _unix(self.end))], safe=":{}=\",!~")
        return f"{self.kind}+{self.server}/?{q}"

    def describe(self) -> dict[str, object]:
        """What the baseline manifest records about where the profile came from."""
        return {"kind": self.kind, "server": self.server, "query": self.query,
                "from": _rfc3339(self.start), "until": _rfc3339(self.end), "url": self.url()}


def parse(spec: str, now: float | None = None) -> ProfilerQuery:
    """Parse a profiler URL; :class:`ProfilerURLError` (with the syntax) for any bad part.

    Messages name the URL without its password."""
    shown = redact(spec)

    def bad(problem: str) -> ProfilerURLError:
        return ProfilerURLError(f"{problem}; the syntax is {SYNTAX}", source=shown)

    # Whole seconds: the URL that names the profile in reports stays short and exact.
    now = float(int(time.time())) if now is None else now
    try:
        parts = urllib.parse.urlsplit(spec)
        port = parts.port
    except ValueError as e:
        raise bad(f"invalid URL ({e})") from None
    kind, _, scheme = parts.scheme.lower().partition("+")
    if kind not in KINDS or scheme not in ("http", "https"):
        raise bad("the scheme must be pyroscope+http(s) or parca+http(s)")
    host = parts.hostname
    if not host:
        raise bad("no HOST")
    if parts.fragment:
        raise bad("a #fragment is not part of the syntax")
    auth = None
    if parts.username is not None or parts.password is not None:
        auth = (urllib.parse.unquote(parts.username or ""),
                urllib.parse.unquote(parts.password or ""))
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    prefix = parts.path.rstrip("/")
    try:
        fields = urllib.parse.parse_qsl(parts.query, keep_blank_values=True,
                                        strict_parsing=bool(parts.query))
    except ValueError:
        raise bad("the query string is malformed (URL-encode '&' and '=' inside values)") \
            from None
    values: dict[str, str] = {}
    for name, value in fields:
        if name not in ("query", "from", "until"):
            raise bad(f"unknown parameter {name!r} (only query, from and until)")
        if name in values:
            raise bad(f"{name} is given twice")
        values[name] = value
    for name in ("query", "from", "until"):
        if not values.get(name, "").strip():
            raise bad(f"{name}= is missing")
    query = values["query"].strip()
    brace = query.find("{")
    profile_type, labels = (query, "{}") if brace < 0 else (query[:brace], query[brace:])
    profile_type = profile_type.strip()
    if not _PROFILE_TYPE.fullmatch(profile_type):
        raise bad(f"the profile type {profile_type[:80]!r} is not "
                  "NAME:SAMPLE_TYPE:SAMPLE_UNIT:PERIOD_TYPE:PERIOD_UNIT (e.g. "
                  "memory:inuse_space:bytes:space:bytes)")
    if not (labels.startswith("{") and labels.endswith("}")) or labels.count("{") != 1:
        raise bad(f"the label selector {labels[:80]!r} is not {{name=\"value\", ...}}")
    try:
        start = parse_time(values["from"], now)
        end = parse_time(values["until"], now)
    except ValueError as e:
        raise bad(str(e)) from None
    if not start < end:
        raise bad(f"from ({_rfc3339(start)}) must be before until ({_rfc3339(end)})")
    return ProfilerQuery(kind=kind, server=f"{scheme}://{netloc}{prefix}",
                         profile_type=profile_type, labels=labels, start=start, end=end,
                         auth=auth)


def parse_time(text: str, now: float) -> float:
    """``now``, ``now-1h`` (any duration memgate reads: ``30m``, ``7d``, ``1h30m``), Unix
    seconds, or RFC 3339 with a time zone -> Unix seconds."""
    from memgate.quantities import parse_duration

    t = text.strip()
    if t == "now":
        return now
    if t.startswith("now-"):
        try:
            return now - parse_duration(t[4:])
        except ValueError:
            raise ValueError(f"{t!r} is not now-DURATION (e.g. now-1h, now-30m, now-7d)") \
                from None
    if re.fullmatch(r"\d+(\.\d+)?", t):
        value = float(t)
        if value >= _MAX_UNIX_SECONDS:
            raise ValueError(f"{t!r} is too large for Unix seconds (milliseconds?)")
        return value
    try:
        when = datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{t[:60]!r} is not a time: use now, now-1h, Unix seconds or RFC 3339 "
                         "(2024-05-01T12:00:00Z)") from None
    if when.tzinfo is None:
        raise ValueError(f"{t[:60]!r} has no time zone (add Z or +02:00)")
    value = when.timestamp()
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{t[:60]!r} is before 1970")
    return value


def _unix(t: float) -> str:
    return f"{t:.3f}".rstrip("0").rstrip(".")


def _rfc3339(t: float) -> str:
    when = datetime.fromtimestamp(t, tz=timezone.utc)
    text = when.isoformat(timespec="milliseconds" if t % 1 else "seconds")
    return text.replace("+00:00", "Z")


def fetch(spec: str, limits: InputLimits, options: FetchOptions,
          progress: Progress | None = None) -> tuple[bytes, str]:
    """The merged profile (raw protobuf or gzip pprof) and the URL with the absolute range,
    which names it in messages, reports and the baseline manifest."""
    q = parse(spec)
    if q.auth is not None:
        token = base64.b64encode(f"{q.auth[0]}:{q.auth[1]}".encode("latin-1", "replace"))
        # First: a --header Authorization given explicitly still wins (sent later).
        options = replace(options, headers=(("Authorization", f"Basic {token.decode()}"),
                                            *options.headers))
    shown = q.url()
    if q.kind == "pyroscope":
        data = _pyroscope(q, limits, options, progress, shown)
    else:
        data = _parca(q, limits, options, progress, shown)
    raw = gunzip_if_gzip(data, shown, limits.max_decompressed_bytes)
    if not raw:
        # Fail closed: an empty profile would gate against nothing and pass.
        raise FetchError(f"no profile of type {q.profile_type} matches {q.labels} between "
                         f"{_rfc3339(q.start)} and {_rfc3339(q.end)} (the server returned an "
                         "empty profile)", source=shown, slug="profiler-empty")
    return _with_duration(raw, q), shown


def _with_duration(raw: bytes, q: ProfilerQuery) -> bytes:
    """The profile with ``duration_nanos`` = the range, unless the server set its own.

    The field is put *first*: protobuf keeps the last value of a repeated scalar field, so a
    duration the server wrote (anywhere after it) wins, and memgate need not parse the
    profile to find out whether there is one.
    """
    nanos = int(round(q.duration_seconds * 1e9))
    return _tag(10, 0) + encode_varint(nanos) + raw




def _tag(field: int, wire: int) -> bytes:
    return encode_varint(field << 3 | wire)


def select_merge_profile_request(q: ProfilerQuery) -> bytes:
    """``querier.v1.SelectMergeProfileRequest`` in binary protobuf: profile_typeID = 1,
    label_selector = 2, start = 3 and end = 4 (int64 milliseconds)."""
    out = bytearray()
    for field, text in ((1, q.profile_type), (2, q.labels)):
        b = text.encode("utf-8")
        out += _tag(field, 2) + encode_varint(len(b)) + b
    for field, t in ((3, q.start), (4, q.end)):
        out += _tag(field, 0) + encode_varint(int(round(t * 1000)))
    return bytes(out)


def select_merge_profile_json(q: ProfilerQuery) -> bytes:
    """The same request in the Connect JSON encoding (proto3 JSON: int64 as strings)."""
    return json.dumps({"profileTypeID": q.profile_type, "labelSelector": q.labels,
                       "start": str(int(round(q.start * 1000))),
                       "end": str(int(round(q.end * 1000)))}).encode("utf-8")


def _pyroscope(q: ProfilerQuery, limits: InputLimits, options: FetchOptions,
               progress: Progress | None, shown: str) -> bytes:
    from memgate.profile.fetch import HTTPStatusError, request

    url = q.server + _CONNECT_PATH
    base = (("Connect-Protocol-Version", "1"),)
    try:
        resp = request(url, limits, options, progress, data=select_merge_profile_request(q),
                       headers=(*base, ("Content-Type", "application/proto"),
                                ("Accept", "application/proto")), shown=shown)
    except HTTPStatusError as e:
        if e.status != 415:
            raise
        # Connect: 415 means the server does not take this codec; JSON every server takes.
        resp = request(url, limits, options, progress, data=select_merge_profile_json(q),
                       headers=(*base, ("Content-Type", "application/json"),
                                ("Accept", "application/json")), shown=shown)
    ctype = resp.content_type.split(";", 1)[0].strip().lower()
    if ctype in ("application/proto", "application/protobuf", "application/x-protobuf"):
        return resp.body
    if ctype == "application/json":
        return _json_profile(resp.body, shown)
    raise FetchError(f"the server answered with Content-Type {ctype[:60]!r}, not a Connect "
                     "response (application/proto or application/json); is this the "
                     "Pyroscope API address?", source=shown, slug="profiler-protocol")


def _json_profile(body: bytes, shown: str) -> bytes:
    """A ``google.v1.Profile`` in proto3 JSON -> binary pprof (the same field numbers).

    memgate's own message keeps ``string_table`` as bytes (pprof accepts invalid UTF-8), and
    proto3 JSON writes bytes as base64 but strings as text: the table is taken over by hand.
    """
    from google.protobuf import json_format

    from memgate.profile import profile_pb2

    msg = profile_pb2.Profile()
    try:
        doc = json.loads(body.decode("utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        table = doc.pop("stringTable", doc.pop("string_table", []))
        if not isinstance(table, list) or not all(isinstance(t, str) for t in table):
            raise ValueError("stringTable is not a list of strings")
        json_format.ParseDict(doc, msg, ignore_unknown_fields=True)
    except (UnicodeDecodeError, json_format.ParseError, RecursionError, ValueError) as e:
        first = " ".join(str(e).split())[:160]
        raise FetchError(f"the JSON response is not a pprof Profile: {first}", source=shown,
                         slug="profiler-protocol") from None
    msg.string_table.extend(t.encode("utf-8") for t in table)
    return msg.SerializeToString()


def _parca(q: ProfilerQuery, limits: InputLimits, options: FetchOptions,
           progress: Progress | None, shown: str) -> bytes:
    from memgate.profile.fetch import request

    params = urllib.parse.urlencode([
        ("mode", "MODE_MERGE"), ("merge.query", q.query),
        ("merge.start", _rfc3339(q.start)), ("merge.end", _rfc3339(q.end)),
        ("report_type", "REPORT_TYPE_PPROF")])
    resp = request(f"{q.server}{_PARCA_PATH}?{params}", limits, options, progress,
                   headers=(("Accept", "application/json"),), shown=shown)
    try:
        doc = json.loads(resp.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise FetchError("the response is not JSON (is this Parca's address, with its /api "
                         "gateway?)", source=shown, slug="profiler-protocol") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("pprof"), str):
        keys = ", ".join(sorted(doc)[:5]) if isinstance(doc, dict) else type(doc).__name__
        raise FetchError(f"the response has no pprof report (it has {keys or 'nothing'})",
                         source=shown, slug="profiler-protocol")
    try:
        # proto3 JSON writes standard base64 and accepts the URL-safe alphabet too.
        text = doc["pprof"].replace("-", "+").replace("_", "/")
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise FetchError("the response's pprof field is not base64", source=shown,
                         slug="profiler-protocol") from None


def check_args(ctx: object, param: object, value: object) -> object:
    """A click callback for profile arguments: a malformed profiler URL is a usage error
    (exit 2, with the syntax), found before anything is fetched."""
    import click

    specs = value if isinstance(value, (tuple, list)) else (value,)
    for spec in specs:
        if isinstance(spec, str) and is_profiler_url(spec):
            try:
                parse(spec)
            except ProfilerURLError as e:
                raise click.BadParameter(str(e)) from None
    return value
