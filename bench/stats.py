"""Percentiles and summaries of timing samples (nanoseconds in, milliseconds out)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

NS_PER_MS = 1_000_000


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least ``p`` % of the samples at or below it.

    No interpolation, so every reported number is a latency that was actually observed. With 2,000 samples p99 is
    the 1,980th smallest, i.e. 20 samples are slower.
    """
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True, slots=True)
class Summary:
    """p50 / p99 / mean of one set of samples, in milliseconds."""

    n: int
    p50: float
    p99: float
    mean: float


def summarize(samples_ns: Sequence[int]) -> Summary:
    ordered = sorted(samples_ns)
    return Summary(
        n=len(ordered),
        p50=percentile(ordered, 50) / NS_PER_MS,
        p99=percentile(ordered, 99) / NS_PER_MS,
        mean=sum(ordered) / len(ordered) / NS_PER_MS,
    )


def median(values: Sequence[float]) -> float:
    """The middle value (mean of the two middle ones for an even count)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
