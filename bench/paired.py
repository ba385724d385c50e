"""Paired, interleaved measurement rounds shared by the benchmark scripts."""

from __future__ import annotations

import statistics
from collections.abc import Callable


def paired_ratio(ours: Callable[[], float], theirs: Callable[[], float], rounds: int) -> float:
    """Median of ``ours() / theirs()`` over ``rounds`` paired rounds, run in alternating
    order so that load drifts on the machine hit both sides alike."""
    ratios = []
    for i in range(rounds):
        if i % 2:
            t, o = theirs(), ours()
        else:
            o, t = ours(), theirs()
        ratios.append(o / t)
    return statistics.median(ratios)
