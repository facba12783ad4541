"""Run independent pieces of work on the machine's cores.

zlib and most numpy operations release the GIL, so decoding or aggregating two profiles in two
threads takes about the time of one on a two-core CI runner, without the cost of processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 4


def parallel_map(func: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[func(x) for x in items]`` on up to one thread per core; results in order.

    The first failure, in the order of ``items``, is raised.
    """
    workers = min(len(items), os.cpu_count() or 1, MAX_WORKERS)
    if workers <= 1:
        return [func(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(func, x) for x in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
