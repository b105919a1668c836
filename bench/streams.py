"""Long streams held at once: ``python -m bench.streams [--quick] [--only NAME …] [--ladder N …]``.

A gateway's capacity for LLM streams is not requests per second: a stream lasts tens of seconds, so what matters is
how many it can hold at once, and what each relayed chunk costs. Here the fake upstream (``bench/upstream.py``)
paces every stream at 20 chunks per second (50 content chunks, 50 ms apart), and the load generator
(``bench/loadgen.py``, op ``concurrent``) opens N of them at once through each system, spread over one second, and
records how late every chunk arrives against the upstream's schedule. N climbs a ladder; a system *sustains* N
when no stream fails and the 99th percentile of lateness stays under ``--max-late-ms`` (100 ms: two chunk gaps).
The largest N sustained is the system's capacity on this machine.

CPU per relayed chunk is the system's process-tree CPU time over the rung it sustained at its largest N, divided
by the chunks it relayed (the raw upstream's own CPU is the floor: it writes every chunk).

The systems are the gateway benchmark's (``bench/gateway_systems.py``): the raw upstream, the pass-through floor (a
uvicorn + aiohttp relay doing nothing else: what any Python gateway pays per chunk), ``llm-manager serve``, the
Portkey gateway and the LiteLLM proxy, each in its own process, in one run. Prints a Markdown table, writes
``bench/results/streams.json`` and appends the run to ``bench/RESULTS.md`` on full runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.gateway import LoadGen  # noqa: E402
from bench.gateway_report import machine  # noqa: E402
from bench.gateway_systems import LITELLM, OURS, PASS_THROUGH, PORTKEY, RAW, System, Tree, start, stop  # noqa: E402
from bench.report import append_history, ms, table  # noqa: E402
from bench.run import upstream  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "streams.json"
CHUNKS = 50
GAP_MS = 50.0
LADDER = [250, 500, 1000, 2000, 4000]
QUICK_LADDER = [50, 200]
RAMP_S = 1.0


def rung(gen: LoadGen, system: System, n: int) -> dict[str, Any]:
    """One rung of the ladder: ``n`` streams at once through ``system``, with the CPU its tree spent on them."""
    tree = system.tree
    cpu0 = tree.cpu_s() if tree is not None else 0.0
    reply = gen.ask({"op": "concurrent", "target": system.target(), "n": n, "chunks": CHUNKS, "gap_ms": GAP_MS,
                     "ramp_s": RAMP_S})  # fmt: skip
    cpu = (tree.cpu_s() if tree is not None else 0.0) - cpu0
    reply["cpu_s"] = cpu
    reply["cpu_us_per_chunk"] = cpu / reply["chunks"] * 1e6 if reply["chunks"] else None
    return reply


def climb(gen: LoadGen, system: System, ladder: list[int], max_late_ms: float) -> dict[str, Any]:
    """Every rung until the first the system cannot sustain (it is recorded too)."""
    rungs: dict[int, dict[str, Any]] = {}
    best: int | None = None
    for n in ladder:
        print(f"  {system.name}: {n} streams at once …", file=sys.stderr, flush=True)
        reply = rung(gen, system, n)
        rungs[n] = reply
        p99 = reply["late_ms"]["p99"]
        ok = not reply["errors"] and reply["streams"] == n and p99 is not None and p99 <= max_late_ms
        reply["sustained"] = ok
        if not ok:
            break
        best = n
        time.sleep(1.0)  # let sockets in TIME_WAIT and the systems' buffers settle between rungs
    return {"capacity": best, "rungs": {str(n): r for n, r in rungs.items()}}


def render(results: dict[str, dict[str, Any]], meta: dict[str, Any], max_late_ms: float) -> str:
    rows = []
    for name, res in results.items():
        if "error" in res:
            rows.append([name, "–", "–", "–", "–", res["error"][:60]])
            continue
        cap = res["capacity"]
        at = res["rungs"].get(str(cap)) if cap is not None else None
        failed = next((r for r in res["rungs"].values() if not r["sustained"]), None)
        why = ""
        if failed is not None:
            why = f"{failed['errors']} failed" if failed["errors"] else f"p99 late {ms(failed['late_ms']['p99'], 1)} ms"
            why = f"at {failed['streams'] + failed['errors']}: {why}"
        rows.append([
            name,
            str(cap) if cap is not None else "< first rung",
            ms(at["late_ms"]["p50"], 1) if at else "–",
            ms(at["late_ms"]["p99"], 1) if at else "–",
            f"{at['cpu_us_per_chunk']:.1f}" if at and at["cpu_us_per_chunk"] is not None else "–",
            why or "held every rung",
        ])  # fmt: skip
    head = ["system", "streams held at once", "lateness p50 ms", "lateness p99 ms", "CPU µs per chunk", "first miss"]
    return "\n\n".join(
        [
            "# Concurrent streams (`python -m bench.streams`)",
            f"{meta['date']}; {meta['cpu']}, {meta['cpus']} CPUs shared by the load generator, the upstream and the "
            f"system under test; Python {meta['python']}. Each stream: {CHUNKS} chunks {GAP_MS:g} ms apart "
            f"(20 chunks/s); N streams opened over {RAMP_S:g} s; sustained = no failure and p99 lateness ≤ "
            f"{max_late_ms:g} ms. Lateness and CPU are those of the largest N sustained.",
            table(head, rows),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.streams", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small rungs: a smoke run (writes no results)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only systems whose name contains one of these")
    parser.add_argument("--ladder", nargs="+", type=int, help=f"stream counts to try (default {LADDER})")
    parser.add_argument("--max-late-ms", type=float, default=100.0, help="p99 lateness a system may show")
    args = parser.parse_args(argv)
    ladder = args.ladder or (QUICK_LADDER if args.quick else LADDER)
    systems = [System(RAW, "main"), System(PASS_THROUGH, "main"), System(OURS, "main"), System(PORTKEY, "main")]
    systems.append(System(LITELLM, "main"))
    if args.only:
        systems = [s for s in systems if s.name == RAW or any(o.lower() in s.name.lower() for o in args.only)]
    meta = machine()
    results: dict[str, dict[str, Any]] = {}
    with upstream(chunks=CHUNKS, gap_ms=GAP_MS) as up, tempfile.TemporaryDirectory() as tmp:
        gen = LoadGen()
        try:
            for system in systems:
                start(system, up, Path(tmp))
                if not system.ok:
                    results[system.name] = {"error": system.error or "did not start"}
                    continue
                if system.tree is None and system.proc is not None:
                    system.tree = Tree(system.proc.pid)
                try:
                    results[system.name] = climb(gen, system, ladder, args.max_late_ms)
                finally:
                    if not system.name.startswith(RAW):
                        stop(system)
        finally:
            gen.close()
    meta["loadavg_end"] = list(os.getloadavg())
    text = render(results, meta, args.max_late_ms)
    print(text)
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        doc = {"machine": meta, "chunks": CHUNKS, "gap_ms": GAP_MS, "ramp_s": RAMP_S, "ladder": ladder,
               "max_late_ms": args.max_late_ms, "systems": results}  # fmt: skip
        RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
        append_history("concurrent streams (`python -m bench.streams`)", text.split("\n", 1)[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
