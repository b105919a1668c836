"""Gateway speed, in one run: ``python -m bench.gateway [--quick] [--only NAME …] [--no-servers]``.

Four systems answer OpenAI chat completions from the same fake upstream (``bench/upstream.py``, zero added latency),
each in its own process: the upstream itself ("raw", the floor), our gateway (``llm-manager serve``), the LiteLLM
proxy and the Portkey gateway (installed with npm into ``bench/.node``, reached with its custom-host headers). Then
our gateway again under each candidate ASGI server, which is how ``serve``'s default was chosen. The load comes from
a third process (``bench/loadgen.py``); this one starts and stops everything and samples memory.

Per system: latency of non-streamed calls at concurrency 1 ("added" = minus raw's), time to the first streamed
content chunk at concurrency 1 (for paced streams, chunks 2 ms apart, and for unpaced ones, every chunk written at
once by the upstream's ``bench-model-unpaced``), requests/s at concurrency 32 and 128 over a fixed time, and the peak resident memory
of its whole process tree over the run. Latency and streaming samples are taken in interleaved rounds (a block of
every system in turn), so drift of the shared machine lands on all alike. Every call's answer is checked, and the
upstream's request counter must grow by exactly the calls each block made.

A system that cannot be installed or started is reported as such, with the reason, and the run goes on.
Prints Markdown tables; full runs write ``bench/results/gateway.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.gateway_report import CONCURRENCY, machine, render, summary  # noqa: E402
from bench.gateway_systems import RAW, MemorySampler, System, Tree, plan, start, stop  # noqa: E402
from bench.report import append_history  # noqa: E402
from bench.run import Upstream, upstream  # noqa: E402
from bench.upstream import COUNT_PATH, UNPACED_MODEL  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "gateway.json"
STREAM_CHUNKS = 20
STREAM_GAP_MS = 2.0
REOPEN_S = 0.3


@dataclass(frozen=True, slots=True)
class Sizes:
    calls: int  # non-streamed, concurrency 1, per system
    streams: int  # streamed, concurrency 1, per system
    rounds: int
    warmup_calls: int
    load_s: float  # measured seconds per concurrency level
    load_warmup_s: float
    wake_calls: int  # raw upstream calls after each pause in WAKE_PAUSES_MS


FULL = Sizes(calls=1000, streams=100, rounds=5, warmup_calls=100, load_s=6.0, load_warmup_s=1.5, wake_calls=200)
QUICK = Sizes(calls=200, streams=20, rounds=2, warmup_calls=20, load_s=2.0, load_warmup_s=0.5, wake_calls=40)
WAKE_PAUSES_MS = [0.0, 0.5, 2.0, 20.0]


# --- the load generator ------------------------------------------------------------------------------------------


class LoadGen:
    """``python -m bench.loadgen`` as a child: one JSON command in, one JSON answer out."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.tree = Tree(self.proc.pid)

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench.loadgen exited (code {self.proc.poll()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            self.ask_quit()
        self.proc.wait(10)

    def ask_quit(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b'{"op": "quit"}\n')
        self.proc.stdin.close()


def upstream_count(up: Upstream) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{up.port}{COUNT_PATH}", timeout=5) as resp:
        return int(json.loads(resp.read())["chat_completions"])


def checked(
    system: System, up: Upstream, gen: LoadGen, command: dict[str, Any], calls: Callable[[dict[str, Any]], int]
) -> dict[str, Any]:
    """Run one command; note errors, and any mismatch between the calls made and the upstream requests seen."""
    before = upstream_count(up)
    reply = gen.ask({**command, "target": system.target()})
    made = upstream_count(up) - before
    if reply.get("errors"):
        system.notes.append(f"{command['op']}: {reply['errors']} failed calls (first: {reply['error']})")
    expected = calls(reply) + reply.get("errors", 0)
    if made != expected and not system.name.startswith(RAW):
        system.notes.append(f"{command['op']}: {expected} calls reached the upstream as {made} requests")
    return reply


def blocks(total: int, rounds: int) -> list[int]:
    base, extra = divmod(total, max(1, rounds))
    return [base + (1 if i < extra else 0) for i in range(max(1, rounds))]


def add_load(s: System, c: int, reply: dict[str, Any], cpu: float, gen_cpu: float, up_cpu: float) -> None:
    """Add one round at concurrency ``c`` to the system's totals (CPU seconds of it, the load generator, upstream)."""
    acc = s.load.setdefault(c, {"requests": 0, "wall_s": 0.0, "errors": 0, "ns": [], "rounds_rps": [],
                                "cpu_s": {"system": 0.0, "loadgen": 0.0, "upstream": 0.0}})  # fmt: skip
    acc["requests"] += reply["requests"]
    acc["wall_s"] += reply["wall_s"]
    acc["errors"] += reply["errors"]
    acc["ns"] += reply["ns"]
    acc["rounds_rps"].append(reply["requests"] / reply["wall_s"] if reply["wall_s"] else 0.0)
    for key, value in (("system", cpu), ("loadgen", gen_cpu), ("upstream", up_cpu)):
        acc["cpu_s"][key] += value
    acc["cpu"] = {key: value / acc["wall_s"] for key, value in acc["cpu_s"].items()}


def measure(systems: list[System], up: Upstream, sizes: Sizes) -> None:
    live = [s for s in systems if s.ok]
    gen = LoadGen()
    try:
        print("… warm-up", file=sys.stderr, flush=True)
        for s in live:
            checked(s, up, gen, {"op": "latency", "n": sizes.warmup_calls}, lambda r: len(r["ns"]))
            checked(s, up, gen, {"op": "stream", "n": max(5, sizes.streams // 20), "chunks": STREAM_CHUNKS},
                    lambda r: len(r["ttfc_ns"]))  # fmt: skip
        for s in live:
            if s.group == "main" and s.name.startswith(RAW):
                print("… the machine's wake-up cost (raw upstream after pauses)", file=sys.stderr, flush=True)
                reply = gen.ask(
                    {"op": "idle", "target": s.target(), "n": sizes.wake_calls, "pauses_ms": WAKE_PAUSES_MS}
                )
                s.wake_ns = reply["ns"]
        print("… latency at concurrency 1 (interleaved rounds)", file=sys.stderr, flush=True)
        for block in blocks(sizes.calls, sizes.rounds):
            for s in live:
                reply = checked(s, up, gen, {"op": "latency", "n": block}, lambda r: len(r["ns"]))
                s.latency_ns += reply["ns"]
        print("… streaming at concurrency 1 (interleaved rounds)", file=sys.stderr, flush=True)
        for block in blocks(sizes.streams, sizes.rounds):
            for s in live:
                reply = checked(s, up, gen, {"op": "stream", "n": block, "chunks": STREAM_CHUNKS},
                                lambda r: len(r["ttfc_ns"]))  # fmt: skip
                s.ttfc_ns += reply["ttfc_ns"]
                s.total_ns += reply["total_ns"]
        print("… unpaced streaming at concurrency 1 (interleaved rounds)", file=sys.stderr, flush=True)
        for block in blocks(sizes.streams, sizes.rounds):
            for s in live:
                command = {"op": "stream", "n": block, "chunks": STREAM_CHUNKS, "model": UNPACED_MODEL}
                reply = checked(s, up, gen, command, lambda r: len(r["ttfc_ns"]))
                s.unpaced_ttfc_ns += reply["ttfc_ns"]
                s.unpaced_total_ns += reply["total_ns"]
        print("… throughput (warm-up at each concurrency, then interleaved rounds)", file=sys.stderr, flush=True)
        for s in live:
            for c in CONCURRENCY:
                gen.ask({"op": "load", "target": s.target(), "concurrency": c, "seconds": sizes.load_warmup_s})
        upstream_tree = Tree(up.proc.pid)
        for _ in range(sizes.rounds):
            for s in live:
                for c in CONCURRENCY:
                    assert s.tree is not None
                    # Servers close keep-alive connections idle for a few seconds (uvicorn and node: 5 s), as they
                    # are between rounds: re-open them first, or the reconnect burst (SYN retries) lands in p99.
                    gen.ask({"op": "load", "target": s.target(), "concurrency": c, "seconds": REOPEN_S})
                    cpu0, gen0, up0 = s.tree.cpu_s(), gen.tree.cpu_s(), upstream_tree.cpu_s()
                    reply = checked(s, up, gen, {"op": "load", "concurrency": c, "seconds": sizes.load_s / sizes.rounds},
                                    lambda r: int(r["requests"]))  # fmt: skip
                    add_load(s, c, reply, s.tree.cpu_s() - cpu0, gen.tree.cpu_s() - gen0, upstream_tree.cpu_s() - up0)
    finally:
        gen.close()


# --- main --------------------------------------------------------------------------------------------------------


@contextmanager
def running(systems: list[System], up: Upstream, sampler: MemorySampler) -> Iterator[None]:
    with tempfile.TemporaryDirectory(prefix="llm-manager-gateway-bench-") as tmp, ExitStack() as stack:
        for s in systems:
            stack.callback(stop, s)
            start(s, up, Path(tmp))
            if s.ok:
                sampler.systems.append(s)
        try:
            yield
        finally:
            sampler.systems[:] = [s for s in sampler.systems if s not in systems]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples: a smoke run (does not write the JSON)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only systems whose name contains one of these")
    parser.add_argument("--no-servers", action="store_true", help="skip the ASGI server comparison")
    parser.add_argument("--output", type=Path, help=f"JSON results (default: {RESULTS} for full runs)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    systems = plan(args.only, not args.no_servers)
    meta = machine()
    started = time.perf_counter()
    groups = {s.group: [m for m in systems if m.group == s.group] for s in systems}
    with upstream(chunks=STREAM_CHUNKS, gap_ms=STREAM_GAP_MS) as up, MemorySampler() as sampler:
        for members in groups.values():
            with running(members, up, sampler):
                measure(members, up, sizes)
    meta["loadavg_end"] = list(os.getloadavg())
    results = {}
    for members in groups.values():
        raw = next((s for s in members if s.name.startswith(RAW)), None)
        results.update({s.name: summary(s, raw) for s in members})
    text = render(results, meta)
    print(text)
    output = args.output or (None if args.quick else RESULTS)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        doc = {"machine": meta, "sizes": asdict(sizes), "stream": {"chunks": STREAM_CHUNKS, "gap_ms": STREAM_GAP_MS},
               "concurrency": list(CONCURRENCY), "systems": results}  # fmt: skip
        output.write_text(json.dumps(doc, indent=2) + "\n")
        if args.output is None:
            append_history("gateway (`python -m bench.gateway`)", text.split("\n", 1)[1])
        print(f"written to {output} (whole run: {time.perf_counter() - started:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
