"""What every benchmark script shares: timing, peak memory, formatting, sizes."""

from __future__ import annotations

import gc
import resource
import time
from typing import Callable

import numpy as np


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """Wall time of one call; garbage collected before and disabled during it."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        out = fn()
        return time.perf_counter() - start, out
    finally:
        gc.enable()


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), np.finfo(float).tiny)))


def fmt_s(v: float | None) -> str:
    return "-" if v is None else (f"{v * 1e3:8.1f} ms" if v < 10 else f"{v:8.1f} s ")


def parse_sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def repeat_timed(
    run: Callable[[object], object],
    repeats: int,
    budget: float = float("inf"),
    setup: Callable[[], object] = lambda: None,
) -> tuple[float, int, object]:
    """Median wall time of up to `repeats` calls ``run(setup())``, only `run` timed.

    `setup` runs before every call, so each call can get a fresh object (a design
    nothing was cached on).  Makes no further call once another as long as the last
    would take the timed calls past `budget` seconds; there is always at least one.
    Returns (median, calls, last output).
    """
    times: list[float] = []
    out = None
    while len(times) < max(repeats, 1) and (not times or sum(times) + times[-1] <= budget):
        obj = setup()
        t, out = timed(lambda: run(obj))
        times.append(t)
        del obj
    return float(np.median(times)), len(times), out
