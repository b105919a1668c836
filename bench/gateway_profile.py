"""Where ``llm-manager serve`` spends its CPU: ``python -m bench.gateway_profile [--stream [--unpaced]] [-c 32]``.

Starts the fake upstream, then the gateway (``llm-manager serve`` with its defaults, or the flags after ``--``) in a
child process under cProfile, drives it with the benchmark's load generator for ``--seconds`` at concurrency
``-c``, stops it with SIGTERM (the gateway drains and exits, and the profile is written), and prints the functions
with the most CPU time of their own and the heaviest call paths. The profiler counts CPU time of the process
(``time.process_time``), not wall time: on a shared machine, wall time would bill other programs' turns on the CPU
to whatever function happened to be running. Every Python call is inflated by the profiler about alike, so read
the ranking and the shares, not the absolute numbers; ``CPU per request`` is measured without the profiler.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.gateway import STREAM_CHUNKS, STREAM_GAP_MS, LoadGen  # noqa: E402
from bench.gateway_systems import BIN, Tree, free_port, ours_config  # noqa: E402
from bench.run import upstream  # noqa: E402
from bench.upstream import MODEL, UNPACED_MODEL  # noqa: E402

FOCUS = r"llm_manager|starlette|uvicorn|granian|aiohttp|asyncio|orjson|pydantic"


def child(profile_path: str, argv: list[str]) -> None:
    """In the gateway's process: run the CLI under a CPU-time profiler and dump the stats when it returns."""
    from llm_manager.cli.main import cli

    prof = cProfile.Profile(time.process_time)
    prof.enable()
    try:
        cli.main(args=argv, prog_name="llm-manager", standalone_mode=False)
    finally:
        prof.disable()
        prof.dump_stats(profile_path)


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    import urllib.request

    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "ready?"}]}).encode()
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"the gateway exited with code {proc.returncode}")
        try:
            req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
            with urllib.request.urlopen(req, timeout=5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the gateway did not come up")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_profile", description=__doc__.splitlines()[0])
    parser.add_argument("--stream", action="store_true", help="profile streamed calls (at concurrency 1 by default)")
    parser.add_argument("--unpaced", action="store_true", help="with --stream: streams with no gaps between chunks")
    parser.add_argument("-c", "--concurrency", type=int, help="calls in flight (default 32; 1 with --stream)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("serve_args", nargs="*", help="extra `llm-manager serve` flags (after --)")
    args = parser.parse_args(argv)
    concurrency = args.concurrency or (1 if args.stream else 32)
    with upstream(chunks=STREAM_CHUNKS, gap_ms=STREAM_GAP_MS) as up, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = ours_config(work, "profile", up)
        port = free_port()
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        stats_path = work / "gateway.prof"
        serve = ["--config", str(config), "serve", "--port", str(port), *args.serve_args]
        code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.gateway_profile import child; " + (
            f"child({str(stats_path)!r}, {serve!r})"
        )
        gw = subprocess.Popen([str(BIN / "python"), "-c", code], cwd=work)
        try:
            wait_up(url, gw)
            gen = LoadGen()
            target = {"name": "gateway", "url": url, "headers": {}}
            tree = Tree(gw.pid)
            if args.stream:
                model = UNPACED_MODEL if args.unpaced else MODEL
                command = {"op": "stream", "n": 10_000, "chunks": STREAM_CHUNKS, "model": model}
                gen.ask({**command, "n": 20, "target": target})
            else:
                command = {"op": "load", "concurrency": concurrency, "seconds": args.seconds}
                gen.ask({**command, "seconds": 1.0, "target": target})
            cpu0, t0 = tree.cpu_s(), time.perf_counter()
            if args.stream:  # n streams of ~STREAM_CHUNKS * STREAM_GAP_MS each (or ~2 ms unpaced), about --seconds
                per_stream_ms = 2 if args.unpaced else STREAM_CHUNKS * STREAM_GAP_MS + 2
                command["n"] = max(20, int(args.seconds * 1000 / per_stream_ms))
            reply = gen.ask({**command, "target": target})
            wall = time.perf_counter() - t0
            calls = len(reply.get("ns") or reply.get("ttfc_ns") or [])
            cpu = tree.cpu_s() - cpu0
            gen.close()
        finally:
            gw.send_signal(signal.SIGTERM)
            gw.wait(60)
        print(f"{calls} calls in {wall:.1f}s ({calls / wall:,.0f}/s, {reply.get('errors', 0)} errors); gateway CPU "
              f"{cpu:.2f}s = {cpu / max(calls, 1) * 1e3:.3f} ms per call (under the profiler)\n")  # fmt: skip
        stats = pstats.Stats(str(stats_path))
        print(f"== own CPU time (tottime), top {args.top}")
        stats.sort_stats("tottime").print_stats(args.top)
        print(f"== cumulative, restricted to {FOCUS}")
        stats.sort_stats("cumulative").print_stats(FOCUS, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
