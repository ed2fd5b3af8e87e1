"""Progress bars for long loops (replicate refits, replicate quantiles, threshold grids,
streamed batches): tqdm's, as a
widget in Jupyter and as text in a terminal; ``progress=False`` turns them off.

A bar appears only once the loop has run for :data:`DELAY` seconds, so quick work
prints nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

#: Seconds before a bar is drawn.
DELAY = 1.0


def track(items: Iterable[T], total: int, description: str, enabled: bool = True) -> Iterator[T]:
    """Iterate over `items`, showing a progress bar of `total` steps when `enabled`.

    Parameters
    ----------
    items : what the loop runs over.
    total : its number of steps.
    description : what the bar says it is doing ("GLM replicate refits").
    enabled : draw the bar (the estimators' ``progress`` argument).
    """
    if not enabled:
        return iter(items)
    from tqdm.auto import tqdm

    return iter(tqdm(items, total=total, desc=description, delay=DELAY, leave=False))
