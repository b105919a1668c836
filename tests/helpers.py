"""Test helpers: an injected clock whose sleep advances time instantly, and quick simulated settings."""

from __future__ import annotations

from typing import Any

from llm_manager.config import Settings, load_settings


class FakeClock:
    """``clock()`` reads the time; ``await sleep(s)`` advances it without waiting and records ``s``."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ManualClock(FakeClock):
    """Like :class:`FakeClock`, but ``sleep`` waits until the test moves time forward with :meth:`advance`."""

    def __init__(self) -> None:
        super().__init__()
        import asyncio

        self._moved = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        target = self.now + seconds
        while self.now < target:
            await self._moved.wait()

    async def advance(self, seconds: float) -> None:
        import asyncio

        self.now += seconds
        self._moved.set()
        self._moved = asyncio.Event()
        for _ in range(50):  # let every woken task run until it blocks again
            await asyncio.sleep(0)


def instant(**extra: Any) -> dict[str, Any]:
    """A simulated model that answers at once (behaviour overrides in ``extra``)."""
    return {"latency_ms": 0, "first_token_ms": 0, "tokens_per_s": 1e9, **extra}


def priced_model(simulate: dict[str, Any], input_usd: str = "1000", output_usd: str = "2000") -> dict[str, Any]:
    """A simulated gpt-family model with prices per million tokens (dear by default: cents add up fast)."""
    return {
        "provider": "simulated",
        "family": "gpt",
        "input_price_per_mtok": input_usd,
        "output_price_per_mtok": output_usd,
        "simulate": simulate,
    }


def sim_settings(
    models: dict[str, dict[str, Any]],
    *,
    cache: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
    **routing: Any,
) -> Settings:
    """Settings with simulated models ``{name: {family, simulate, ...}}`` and routing overrides.

    The response cache is off unless ``cache`` is given: most tests repeat one prompt to exercise retries."""
    spec = {
        name: {"provider": "simulated", "simulate": instant(**m.pop("simulate", {})), **m}
        for name, m in ((n, dict(v)) for n, v in models.items())
    }
    raw: dict[str, Any] = {
        "models": spec,
        "routing": {"backoff": {"jitter": False}, **routing},
        "cache": cache if cache is not None else {"enabled": False},
    }
    if state is not None:
        raw["state"] = state
    return load_settings(raw, env={})


TRIO = {
    "claude": {"family": "claude", "context_window": 200_000},
    "gpt": {"family": "gpt", "context_window": 128_000},
    "llama": {"family": "llama", "context_window": 8_192},
}


def trio(**routing: Any) -> Settings:
    return sim_settings({k: dict(v) for k, v in TRIO.items()}, **routing)
