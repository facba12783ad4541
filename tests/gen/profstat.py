#!/usr/bin/env python3
"""Print basic facts about pprof profiles (stdlib only, no pprof needed).

Usage: python3 profstat.py FILE...
Prints per file: size in bytes, number of Sample messages, sample types,
period, duration_nanos, default_sample_type. For legacy text profiles it
prints the number of "... @ addr" records and the first line.
Only top-level proto fields are decoded, so it is fast even for 1M samples.
Also used by regenerate.sh (header()) to put exact time/duration into meta.json.
"""
import gzip
import sys


def varint(b, i):
    x = s = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7F) << s
        if c < 0x80:
            return x, i
        s += 7


def fields(b):
    i, n = 0, len(b)
    while i < n:
        key, i = varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            ln, i = varint(b, i)
            v = b[i:i + ln]
            i += ln
        elif wt == 1:
            v = b[i:i + 8]
            i += 8
        elif wt == 5:
            v = b[i:i + 4]
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
        if i > n:
            raise ValueError("truncated")
        yield f, v


def header(path):
    """Top-level facts of a proto profile; {"format": "text", ...} for legacy text."""
    raw = open(path, "rb").read()
    data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    try:
        h = {"format": "proto", "gzip": raw[:2] == b"\x1f\x8b", "size": len(raw), "samples": 0}
        strings, stypes, ints = [], [], {}
        for f, v in fields(data):
            if f == 2:
                h["samples"] += 1
            elif f == 1:
                stypes.append(dict(fields(v)))
            elif f == 6:
                strings.append(bytes(v).decode("utf-8", "backslashreplace"))
            elif f in (9, 10, 12, 14):
                ints[f] = v - (1 << 64) if v >= 1 << 63 else v
        h["sample_types"] = [[strings[t.get(1, 0)], strings[t.get(2, 0)]] for t in stypes]
        h["time_nanos"] = ints.get(9, 0)
        h["duration_nanos"] = ints.get(10, 0)
        h["period"] = ints.get(12, 0)
        h["default_sample_type"] = strings[ints[14]] if ints.get(14) else ""
        return h
    except Exception:  # legacy text formats: count "... @ addr..." records
        lines = data.decode("latin-1").splitlines()
        n = sum(1 for l in lines[1:] if " @ " in l and not l.startswith("#"))
        return {"format": "text", "size": len(raw), "records": n, "first_line": lines[0] if lines else ""}


def stat(path):
    h = header(path)
    if h["format"] == "text":
        return "%s\t%d bytes\t%d records\tlegacy text: %s" % (path, h["size"], h["records"], h["first_line"][:60])
    return "%s\t%d bytes\t%d samples\t%s\tperiod=%d\tduration_nanos=%d\tdefault=%r" % (
        path, h["size"], h["samples"], ",".join("/".join(t) for t in h["sample_types"]),
        h["period"], h["duration_nanos"], h["default_sample_type"])


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(stat(p))
