"""The timing loops. Every client goes through the same code, so harness overhead cancels out of the differences.

Clients are measured *interleaved*: the samples of each client are split into ``rounds`` blocks, and one round runs
a block of every client in turn. Any slow drift of the machine (other processes, thermal state) then lands on all
clients alike instead of on whichever happened to run last.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from bench.clients import BenchClient

# A pause after each block: lets a library's background work (LiteLLM hands logging to threads and tasks) finish
# before the next client's block starts, so it is not billed to whoever runs next.
SETTLE_S = 0.05

Count = Callable[[], Awaitable[int]]
"""Asks the upstream how many chat completions it has answered so far."""


class WrongAnswerError(AssertionError):
    """A client returned something other than the upstream's answer: its timings would be meaningless."""


async def reached(count: Count, client: BenchClient, calls: int, block: Callable[[], Awaitable[None]]) -> None:
    """Run ``block`` and check that it made exactly ``calls`` requests to the upstream (the counting is untimed).

    Catches any client that answers some calls without the upstream (a cache, de-duplication) or sends extra ones
    (a hidden retry): either would make its latency incomparable.
    """
    before = await count()
    await block()
    made = await count() - before
    if made != calls:
        raise WrongAnswerError(f"{client.name}: {calls} calls made {made} upstream requests")


def _blocks(total: int, rounds: int) -> list[int]:
    """Split ``total`` samples into ``rounds`` near-equal blocks."""
    rounds = max(1, min(rounds, total))
    base, extra = divmod(total, rounds)
    return [base + (1 if i < extra else 0) for i in range(rounds)]


async def _complete_block(client: BenchClient, count: int, expected: str, out: list[int]) -> None:
    for _ in range(count):
        t0 = time.perf_counter_ns()
        answer = await client.complete()
        out.append(time.perf_counter_ns() - t0)
        if answer != expected:
            raise WrongAnswerError(f"{client.name}: unexpected answer {answer[:80]!r}")


async def sequential(
    clients: Sequence[BenchClient], *, n: int, warmup: int, rounds: int, expected: str, count: Count
) -> dict[str, list[int]]:
    """Non-streaming latency, one call at a time: ``{client name: [ns per call]}``."""
    for client in clients:
        await _complete_block(client, warmup, expected, [])
    samples: dict[str, list[int]] = {c.name: [] for c in clients}
    for block in _blocks(n, rounds):
        for client in clients:
            out = samples[client.name]
            await reached(count, client, block, partial(_complete_block, client, block, expected, out))
            await asyncio.sleep(SETTLE_S)
    return samples


@dataclass
class LoadResult:
    """One closed-loop load run: ``concurrency`` workers each sending the next call as soon as the last returns."""

    concurrency: int
    latencies_ns: list[int] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies_ns) / self.wall_s if self.wall_s else 0.0


async def load(client: BenchClient, *, n: int, concurrency: int, expected: str) -> LoadResult:
    """``n`` calls shared by ``concurrency`` workers; wall time from the first send to the last answer."""
    result = LoadResult(concurrency)
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1  # no await between test and decrement: single-threaded loop, so no lock needed
            await _complete_block(client, 1, expected, result.latencies_ns)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.wall_s = time.perf_counter() - t0
    return result


@dataclass
class StreamSamples:
    """Per-stream time to the first content piece and to the end of the stream, in ns."""

    ttfc_ns: list[int] = field(default_factory=list)
    total_ns: list[int] = field(default_factory=list)


async def _stream_once(client: BenchClient, expected: str, out: StreamSamples) -> None:
    parts: list[str] = []
    t0 = time.perf_counter_ns()
    first = 0
    async for piece in client.stream():
        if not parts:
            first = time.perf_counter_ns()
        parts.append(piece)
    end = time.perf_counter_ns()
    if "".join(parts) != expected:
        raise WrongAnswerError(f"{client.name}: stream assembled {''.join(parts)[:80]!r}…, expected {expected[:40]!r}…")
    out.ttfc_ns.append(first - t0)
    out.total_ns.append(end - t0)


async def _stream_block(client: BenchClient, count: int, expected: str, out: StreamSamples) -> None:
    for _ in range(count):
        await _stream_once(client, expected, out)


async def streaming(
    clients: Sequence[BenchClient], *, n: int, warmup: int, rounds: int, expected: str, count: Count
) -> dict[str, StreamSamples]:
    """Streaming latency, one stream at a time, interleaved like :func:`sequential`."""
    for client in clients:
        await _stream_block(client, warmup, expected, StreamSamples())
    samples = {c.name: StreamSamples() for c in clients}
    for block in _blocks(n, rounds):
        for client in clients:
            out = samples[client.name]
            await reached(count, client, block, partial(_stream_block, client, block, expected, out))
            await asyncio.sleep(SETTLE_S)
    return samples
