"""Where ``generate()`` (or ``stream()``) spends its time: ``python -m bench.hotspots [--stream] [--calls N]``.

Runs the calls against the same separate-process upstream as ``bench.run`` under cProfile and prints the functions
with the most time of their own, then the heaviest call paths, restricted to the library and its HTTP client. The
profiler inflates every Python call about equally, so read the ranking and the shares, not the absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys

from bench.clients import Ours
from bench.run import upstream

# Only these appear in the listings: our code, the HTTP client under it, and what they lean on.
FOCUS = r"llm_manager|aiohttp|pydantic|asyncio/(timeouts|threads)|run_in_executor|concurrent/futures|uuid"


def thread_handoffs(stats: pstats.Stats) -> int:
    """How many times work was handed to the thread pool (``run_in_executor``, which ``to_thread`` also uses).

    Worth its own line: while the loop waits for the worker thread it sits in ``epoll.poll``, so cProfile books
    that wall time to the event loop, not to the call that caused it; the count is the tell.
    """
    entries = stats.stats  # type: ignore[attr-defined]  # the table itself: undocumented, but stable since Python 2
    return sum(calls for (_, _, name), (_, calls, *_rest) in entries.items() if name == "run_in_executor")


async def _calls(base_url: str, *, stream: bool, calls: int, warmup: int) -> cProfile.Profile:
    async with Ours(base_url) as client:

        async def once() -> None:
            if stream:
                async for _ in client.stream():
                    pass
            else:
                await client.complete()

        for _ in range(warmup):
            await once()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            await once()
        profiler.disable()
        return profiler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotspots", description=__doc__.splitlines()[0])
    parser.add_argument("--stream", action="store_true", help="profile stream() instead of generate()")
    parser.add_argument("--calls", type=int, default=None, help="profiled calls (default 3000, or 40 streams)")
    parser.add_argument("--top", type=int, default=30, help="rows per listing")
    args = parser.parse_args(argv)
    calls = args.calls or (40 if args.stream else 3000)
    with upstream() as up:
        profiler = asyncio.run(_calls(up.base_url, stream=args.stream, calls=calls, warmup=max(5, calls // 10)))
    stats = pstats.Stats(profiler, stream=sys.stdout)
    print(f"# {'stream()' if args.stream else 'generate()'} x {calls}: own time (tottime), then call paths (cumtime)")
    stats.sort_stats("tottime").print_stats(FOCUS, args.top)
    stats.sort_stats("cumtime").print_stats(FOCUS, args.top)
    print(f"thread-pool hand-offs per call: {thread_handoffs(stats) / calls:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
