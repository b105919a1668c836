"""Run every benchmark in one go and report: ``python -m bench.run [--quick] [--output PATH]``.

1. non-streaming latency of each client, sequential, against the fake upstream;
2. the HTTP client choice: raw aiohttp vs raw httpx vs raw pyreqwest at concurrency 1 and 64;
3. streaming: time to first content chunk and to the end of a 50-chunk stream;
4. start-up: fresh-interpreter wall time of the imports and of ``llm-manager --help``;

then the README's goals checked against those numbers. Markdown goes to stdout and (full runs) ``bench/results/library.md``,
and is appended to the run history ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `bench.upstream` imports `tests.fakes` from the repo root

from bench import imports, measure  # noqa: E402
from bench.clients import (  # noqa: E402
    BenchClient,
    LiteLLM,
    OpenAISDK,
    Ours,
    OursCacheOff,
    RawAiohttp,
    RawHttpx,
    RawPyreqwest,
    litellm_missing,
)
from bench.report import append_history, environment, ms, ratio, seconds, signed_ms, table  # noqa: E402
from bench.stats import Summary, summarize  # noqa: E402
from bench.upstream import ANSWER, expected_stream_text, fetch_count  # noqa: E402

STREAM_CHUNKS = 50
STREAM_GAP_MS = 5.0
RESULTS = ROOT / "bench" / "results" / "library.md"
BASELINE = RawAiohttp.name


@dataclass(frozen=True, slots=True)
class Sizes:
    """How many samples each section takes (the full run stays under ~5 minutes on 2 CPUs)."""

    calls: int
    warmup: int
    rounds: int
    load_calls: int
    streams: int
    stream_warmup: int
    stream_rounds: int
    import_runs: int


FULL = Sizes(calls=2000, warmup=200, rounds=10, load_calls=2000, streams=100, stream_warmup=5, stream_rounds=5,
             import_runs=5)  # fmt: skip
QUICK = Sizes(calls=200, warmup=20, rounds=2, load_calls=200, streams=4, stream_warmup=1, stream_rounds=2,
              import_runs=1)  # fmt: skip


@dataclass
class Results:
    """Everything measured, kept for the goals check; ``sections`` is the Markdown, in order."""

    sequential: dict[str, Summary] = field(default_factory=dict)
    ttfc: dict[str, Summary] = field(default_factory=dict)
    total: dict[str, Summary] = field(default_factory=dict)
    startup: dict[str, float | None] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- the upstream process --------------------------------------------------------------------------------------


class Upstream:
    """``python -m bench.upstream`` as a child process, and its CPU time (to show it is not the bottleneck)."""

    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc = proc
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}/v1"

    async def count(self) -> int:
        """Chat completions the upstream has answered so far."""
        return await fetch_count("127.0.0.1", self.port)

    def cpu_s(self) -> float | None:
        """User + system CPU seconds the upstream has used so far (Linux ``/proc``; ``None`` elsewhere)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def upstream(chunks: int = STREAM_CHUNKS, gap_ms: float = STREAM_GAP_MS) -> Iterator[Upstream]:
    argv = [sys.executable, "-m", "bench.upstream", "--port", "0", "--chunks", str(chunks),
            "--gap-ms", str(gap_ms)]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the port, once it is listening
        if not line.strip().isdigit():
            raise RuntimeError(f"bench.upstream did not start (exit code {proc.poll()}, said {line!r})")
        yield Upstream(proc, int(line))
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- sections ----------------------------------------------------------------------------------------------------


async def section_sequential(up: Upstream, sizes: Sizes, res: Results) -> None:
    async with AsyncExitStack() as stack:
        listed = _library_clients(up.base_url, cache_off=True, res=res)
        clients = [await stack.enter_async_context(c) for c in listed]
        samples = await measure.sequential(clients, n=sizes.calls, warmup=sizes.warmup, rounds=sizes.rounds,
                                           expected=ANSWER, count=up.count)  # fmt: skip
    res.sequential = {name: summarize(s) for name, s in samples.items()}
    base = res.sequential[BASELINE]
    rows = [
        [name, ms(s.p50), ms(s.p99), ms(s.mean), signed_ms(s.p50 - base.p50), signed_ms(s.p99 - base.p99)]
        for name, s in res.sequential.items()
    ]
    res.sections.append(
        f"## 1. Non-streaming latency (sequential, N={sizes.calls} per client after {sizes.warmup} warm-up calls)\n\n"
        + table(["client", "p50 ms", "p99 ms", "mean ms", "added p50 vs raw", "added p99 vs raw"], rows)
    )


def _library_clients(base_url: str, *, cache_off: bool, res: Results) -> list[BenchClient]:
    """The raw floors, ours, then the other libraries (LiteLLM last: it is the slowest to import and to run)."""
    clients: list[BenchClient] = [RawAiohttp(base_url), RawHttpx(base_url), RawPyreqwest(base_url), Ours(base_url)]
    if cache_off:
        clients.append(OursCacheOff(base_url))
    clients.append(OpenAISDK(base_url))
    why_not = litellm_missing()
    if why_not is None:
        clients.append(LiteLLM(base_url))
    elif why_not not in res.notes:
        res.notes.append(f"LiteLLM skipped: {why_not}.")
    return clients


async def section_transport(up: Upstream, sizes: Sizes, res: Results) -> None:
    rows: list[list[str]] = []
    for concurrency in (1, 64):
        for cls in (RawAiohttp, RawHttpx, RawPyreqwest):
            async with cls(up.base_url) as client:
                rows.append(await _load_row(client, up, sizes, concurrency))
    res.sections.append(
        f"## 2. HTTP client choice (raw calls, N={sizes.load_calls} per row after {sizes.warmup} warm-up calls)\n\n"
        + table(["client", "concurrency", "req/s", "p50 ms", "p99 ms", "upstream CPU busy"], rows)
        + "\n\nUpstream CPU busy = the fake upstream's CPU time / wall time during the row: well under 100 % means"
        " the client, not the upstream, set the pace."
    )


async def _load_row(client: BenchClient, up: Upstream, sizes: Sizes, concurrency: int) -> list[str]:
    # Warm-up at the same concurrency opens the whole pool before timing starts.
    await measure.load(client, n=sizes.warmup, concurrency=concurrency, expected=ANSWER)
    before, cpu0 = await up.count(), up.cpu_s()
    result = await measure.load(client, n=sizes.load_calls, concurrency=concurrency, expected=ANSWER)
    cpu1, made = up.cpu_s(), await up.count() - before
    if made != sizes.load_calls:
        raise measure.WrongAnswerError(f"{client.name}: {sizes.load_calls} calls made {made} upstream requests")
    busy = "–" if cpu0 is None or cpu1 is None else f"{(cpu1 - cpu0) / result.wall_s:.0%}"
    s = summarize(result.latencies_ns)
    return [client.name, str(concurrency), f"{result.throughput:,.0f}", ms(s.p50), ms(s.p99), busy]


async def section_streaming(up: Upstream, sizes: Sizes, res: Results) -> None:
    async with AsyncExitStack() as stack:
        listed = _library_clients(up.base_url, cache_off=False, res=res)
        clients = [await stack.enter_async_context(c) for c in listed]
        samples = await measure.streaming(clients, n=sizes.streams, warmup=sizes.stream_warmup,
                                          rounds=sizes.stream_rounds, expected=expected_stream_text(STREAM_CHUNKS),
                                          count=up.count)  # fmt: skip
    res.ttfc = {name: summarize(s.ttfc_ns) for name, s in samples.items()}
    res.total = {name: summarize(s.total_ns) for name, s in samples.items()}
    t0, tot0 = res.ttfc[BASELINE], res.total[BASELINE]
    rows = [
        [
            name,
            ms(t.p50),
            ms(t.p99),
            ms(res.total[name].p50, 2),
            ms(res.total[name].p99, 2),
            signed_ms(t.p50 - t0.p50),
            signed_ms(res.total[name].p50 - tot0.p50),
        ]  # fmt: skip
        for name, t in res.ttfc.items()
    ]
    res.sections.append(
        f"## 3. Streaming ({STREAM_CHUNKS} content chunks {STREAM_GAP_MS:g} ms apart; N={sizes.streams} per client "
        f"after {sizes.stream_warmup} warm-up)\n\n"
        + table(
            [
                "client",
                "TTFC p50 ms",
                "TTFC p99 ms",
                "total p50 ms",
                "total p99 ms",
                "added TTFC p50",
                "added total p50",
            ],
            rows,
        )  # fmt: skip
        + "\n\nTTFC = time from the call to the first non-empty content piece in the caller's hands; total = to the"
        " end of the stream (usage chunk and `[DONE]` read)."
    )


def section_startup(sizes: Sizes, res: Results) -> None:
    cmds = imports.measure(sizes.import_runs, with_litellm=litellm_missing() is None)
    res.startup = {c.label: c.median_s for c in cmds}
    floor = res.startup.get("python -c pass (floor)")
    litellm = res.startup.get("import litellm")
    rows = []
    for c in cmds:
        value = c.median_s
        net = value - floor if value is not None and floor is not None else None
        share = f"{value / litellm:.1%}" if value is not None and litellm else "–"
        rows.append([c.label if c.error is None else f"{c.label} (failed: {c.error})", seconds(value), seconds(net),
                     share])  # fmt: skip
    res.sections.append(
        f"## 4. Start-up (fresh interpreter, wall time, median of {sizes.import_runs} after one untimed run)\n\n"
        + table(["command", "median s", "minus floor s", "share of import litellm"], rows)
    )


# --- goals -------------------------------------------------------------------------------------------------------


def _added(summaries: dict[str, Summary], name: str) -> float | None:
    if name not in summaries or BASELINE not in summaries:
        return None
    return summaries[name].p50 - summaries[BASELINE].p50


def _goal(text: str, target: str, measured: str, ok: bool | None) -> list[str]:
    return [text, target, measured, "–" if ok is None else ("yes" if ok else "**NO**")]


def _at_most(value: float | None, limit: float | None) -> bool | None:
    return None if value is None or limit is None else value <= limit


def goals(res: Results) -> str:
    ours, sdk, lite = (_added(res.sequential, n) for n in ("llm-manager", "openai SDK", "LiteLLM"))
    ttfc, total = _added(res.ttfc, "llm-manager"), _added(res.total, "llm-manager")
    imp, helps = res.startup.get("import llm_manager"), res.startup.get("llm-manager --help")
    imp_lite = res.startup.get("import litellm")
    tenth = imp_lite / 10 if imp_lite is not None else None
    rows = [
        _goal("generate() added p50 vs raw aiohttp", "≤ 0.500 ms", f"{ms(ours)} ms", _at_most(ours, 0.5)),
        _goal("… under a fifth of the openai SDK's added p50", f"≤ {ms(sdk and sdk / 5)} ms",
              f"{ms(ours)} ms (SDK adds {ratio(sdk / ours if sdk and ours and ours > 0 else None)} ours)",
              _at_most(ours, sdk / 5 if sdk is not None else None)),
        _goal("… under a fifteenth of LiteLLM's added p50", f"≤ {ms(lite and lite / 15)} ms",
              f"{ms(ours)} ms (LiteLLM adds {ratio(lite / ours if lite and ours and ours > 0 else None)} ours)",
              _at_most(ours, lite / 15 if lite is not None else None)),
        _goal("stream() added TTFC p50", "≤ 0.500 ms", f"{ms(ttfc)} ms", _at_most(ttfc, 0.5)),
        _goal("stream() added total p50", "≤ 2.000 ms", f"{ms(total)} ms", _at_most(total, 2.0)),
        _goal("`import llm_manager` vs `import litellm`", f"≤ {seconds(tenth)} s", f"{seconds(imp)} s",
              _at_most(imp, tenth)),
        _goal("`llm-manager --help` vs `import litellm`", f"≤ {seconds(tenth)} s", f"{seconds(helps)} s",
              _at_most(helps, tenth)),
    ]  # fmt: skip
    return "## Goals\n\n" + table(["goal", "target", "measured", "met"], rows)


# --- main --------------------------------------------------------------------------------------------------------

METHOD = (
    "Method: a fake OpenAI upstream (`bench/upstream.py`, pre-rendered responses, zero added latency) runs as a"
    " separate process on 127.0.0.1; all clients run in this process on one asyncio loop with their defaults, calls"
    " are sequential (one in flight) except in section 2, each client is warmed up first, clients are interleaved in"
    " blocks so machine drift hits all alike, every prompt is new (no cache can answer) and every answer and upstream"
    ' request count is checked; percentiles are nearest-rank over all samples and "added" = the client\'s'
    " percentile minus raw aiohttp's. Details: bench/README.md."
)


Section = Callable[[Upstream, Sizes, Results], Awaitable[None]]


async def measure_all(sizes: Sizes, res: Results) -> None:
    with upstream() as up:
        steps: list[tuple[str, Section]] = [
            ("non-streaming latency", section_sequential),
            ("HTTP client choice", section_transport),
            ("streaming", section_streaming),
        ]
        for title, step in steps:
            t0 = time.perf_counter()
            print(f"… {title}", file=sys.stderr, flush=True)
            await step(up, sizes, res)
            print(f"  done in {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)


def render(res: Results, quick: bool) -> str:
    title = "# llm-manager benchmark results" + (" (--quick smoke run: too few samples to quote)" if quick else "")
    parts = [title, environment(), METHOD, goals(res), *res.sections]
    parts += [f"Note: {n}" for n in res.notes]
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples: a smoke run (writes no results)")
    parser.add_argument("--output", type=Path, help=f"where to write the Markdown (default: {RESULTS} for full runs)")
    args = parser.parse_args(argv)
    # Before anything can import LiteLLM: use its bundled price table instead of fetching one from GitHub.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    sizes = QUICK if args.quick else FULL
    res = Results()
    started = time.perf_counter()
    asyncio.run(measure_all(sizes, res))
    print("… start-up times", file=sys.stderr, flush=True)
    section_startup(sizes, res)
    text = render(res, args.quick)
    print(text)
    output = args.output or (None if args.quick else RESULTS)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        if args.output is None:
            append_history("library (`python -m bench.run`)", text.split("\n", 1)[1])
        print(f"written to {output} (whole run: {time.perf_counter() - started:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
