"""Observed latency per deployment, for the ``performance`` and ``balanced`` strategies."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from llm_manager.routing.strategy import Standings

__all__ = ["DeploymentStats", "LatencyStats"]


@dataclass(slots=True)
class DeploymentStats:
    """Running numbers for one deployment (this process)."""

    calls: int = 0
    failures: int = 0
    latency_ms: float | None = None
    """Exponentially weighted mean latency of successful calls."""
    ttfc_ms: float | None = None
    """Exponentially weighted mean time to first chunk of successful streams."""
    last_error: str | None = None
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=200))
    """Recent successful latencies (ms), for percentiles."""

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of recent latencies, or ``None`` with fewer than 20 samples."""
        if len(self.samples) < 20:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class LatencyStats:
    """EWMA of latency: recent calls weigh most, one outlier does not flip the order."""

    def __init__(self, alpha: float = 0.2) -> None:
        self.alpha = alpha
        self.by_name: dict[str, DeploymentStats] = {}
        self.standings = Standings()
        """Which model the strategies last placed above which (what they decided from these numbers)."""

    def get(self, name: str) -> DeploymentStats:
        """Stats of ``name`` (created empty on first use)."""
        st = self.by_name.get(name)
        if st is None:
            st = self.by_name[name] = DeploymentStats()
        return st

    def success(self, name: str, latency_ms: float, ttfc_ms: float | None = None) -> None:
        """Record a successful call."""
        st = self.get(name)
        st.calls += 1
        st.latency_ms = (
            latency_ms if st.latency_ms is None else st.latency_ms + self.alpha * (latency_ms - st.latency_ms)
        )
        st.samples.append(latency_ms)
        if ttfc_ms is not None:
            st.ttfc_ms = ttfc_ms if st.ttfc_ms is None else st.ttfc_ms + self.alpha * (ttfc_ms - st.ttfc_ms)

    def failure(self, name: str, code: str) -> None:
        """Record a failed call."""
        st = self.get(name)
        st.calls += 1
        st.failures += 1
        st.last_error = code
