"""A service that decodes JSON payloads and caches the decoded values: memgate's Python example.

The Python twin of the Go example (tests/gen/seedleak), where values decoded by
``encoding/json.(*decodeState).literalStore`` stayed reachable and the kubelet grew to 7.4 GB.
Here the cache keeps the dicts and lists ``json.loads`` builds; it is bounded (least recently
used entries are evicted), until a change removes the bound: ``--leak`` is that change. The
memory then shows up under ``json.decoder.JSONDecoder.raw_decode``, where the decoded values are
allocated, and ``memgate check`` names it.

The workload is fixed (seeded), so that two runs of the same code retain the same memory:

    memgate capture -o run.pb.gz --duration 1m -- python examples/python/json_cache.py
"""

from __future__ import annotations

import argparse
import json
import random
from collections import OrderedDict
from typing import Any


def make_payloads(count: int, seed: int = 1) -> list[str]:
    """Deterministic JSON documents of a few hundred bytes to a few KiB."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        doc = {
            "id": i,
            "kind": rng.choice(["pod", "node", "service", "endpoint"]),
            "labels": {f"k{j}": f"v{rng.randrange(1000)}" for j in range(rng.randrange(2, 9))},
            "containers": [
                {"name": f"c{j}", "image": f"registry.example/app:{rng.randrange(100)}",
                 "ports": [rng.randrange(1, 65535) for _ in range(rng.randrange(1, 4))]}
                for j in range(rng.randrange(1, 5))
            ],
        }
        out.append(json.dumps(doc))
    return out


class DecodedCache:
    """Decoded payloads by key, least recently used first out (no bound with ``capacity=None``)."""

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self.entries: OrderedDict[int, Any] = OrderedDict()
        self.misses = 0

    def get(self, key: int, raw: str) -> Any:
        value = self.entries.get(key)
        if value is None:
            self.misses += 1
            value = json.loads(raw)
            self.entries[key] = value
            if self.capacity is not None and len(self.entries) > self.capacity:
                self.entries.popitem(last=False)
        else:
            self.entries.move_to_end(key)
        return value


def serve(cache: DecodedCache, payloads: list[str], requests: int, seed: int = 2) -> int:
    """Answer ``requests`` lookups, mostly of a hot set of keys; the number of containers."""
    rng = random.Random(seed)
    total = 0
    for _ in range(requests):
        key = rng.randrange(len(payloads)) if rng.random() < 0.5 else rng.randrange(50)
        total += len(cache.get(key, payloads[key])["containers"])
    return total


#: The service's cache lives as long as the service (a module global), as caches do.
CACHE = DecodedCache(capacity=64)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leak", action="store_true",
                        help="the change under review: the cache loses its bound")
    parser.add_argument("--payloads", type=int, default=600)
    parser.add_argument("--requests", type=int, default=2400)
    args = parser.parse_args(argv)
    if args.leak:
        CACHE.capacity = None
    payloads = make_payloads(args.payloads)
    containers = serve(CACHE, payloads, args.requests)
    print(f"{args.requests} requests, {CACHE.misses} decodes, {len(CACHE.entries)} cached, "
          f"{containers} containers")


if __name__ == "__main__":
    main()
