"""The gateway benchmark's load generator, a process of its own: ``python -m bench.loadgen``.

It reads one JSON command per line on stdin and answers each with one JSON line on stdout, so the orchestrator
(``bench.gateway``) decides what runs when while the load itself runs here, on its own event loop and GIL, apart
from the process that samples memory and from every system under test. Commands (each names a ``target``:
``{"name", "url", "headers"}``, the URL being the system's ``…/chat/completions``):

- ``{"op": "latency", "target", "n"}``: ``n`` non-streamed calls, one in flight → ``{"ns": [...]}``;
- ``{"op": "stream", "target", "n", "chunks", "model"?}``: ``n`` streams of ``model`` (default: the paced
  ``bench-model``), one in flight → ``{"ttfc_ns": [...], "total_ns": [...]}`` (time to the first non-empty content
  piece, and to the end of the stream);
- ``{"op": "load", "target", "concurrency", "seconds"}``: a closed loop of ``concurrency`` workers, each sending its
  next call when the last returns, until ``seconds`` have passed → ``{"requests", "wall_s", "ns": [...]}``;
- ``{"op": "idle", "target", "n", "pauses_ms"}``: for each pause, ``n`` non-streamed calls, one in flight, each after
  sleeping that long → ``{"ns": {pause: [...]}}``: what waking a machine's idle processes costs (see bench/README);
- ``{"op": "concurrent", "target", "n", "chunks", "gap_ms", "ramp_s"}``: ``n`` paced streams held open at once
  (started evenly over ``ramp_s``) → per chunk, how late it arrived against its schedule (the stream's start plus
  its index times the upstream's gap): ``{"late_ms": {p50, p99, max}, "streams", "chunks", "wall_s"}``;
- ``{"op": "quit"}``.

Every answer also carries ``errors`` and the first ``error`` seen. Each target keeps one aiohttp session with
keep-alive connections across commands. Every prompt is new (a serial number), so no cache can answer it, and every
answer is checked: whole answers against the upstream's text (in full at concurrency 1, by a prefix under load),
streams by assembling their text.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.clients import _answer, _body, _sse_texts  # noqa: E402
from bench.upstream import ANSWER, MODEL, expected_stream_text  # noqa: E402

# Cheap check under load: the answer's opening words, as JSON, appear in every system's body.
_ANSWER_MARK = orjson.dumps(ANSWER)[:40]


class Target:
    """One system under test: its URL, the headers it needs, and a keep-alive session."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import aiohttp

        self.url: str = spec["url"]
        self.headers = {"content-type": "application/json", **spec.get("headers", {})}
        # No connection cap below the highest concurrency, and no per-host cap either: a pool limit would queue
        # calls in the client and bill the wait to the system under test.
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=0))

    async def complete(self, *, full_check: bool) -> None:
        async with self.session.post(self.url, data=_body(False), headers=self.headers) as resp:
            payload = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {payload[:200]!r}")
        if full_check:
            if _answer(payload) != ANSWER:
                raise RuntimeError(f"unexpected answer: {payload[:200]!r}")
        elif _ANSWER_MARK not in payload:
            raise RuntimeError(f"unexpected answer: {payload[:200]!r}")

    async def stream(self, expected: str, model: str) -> tuple[int, int]:
        """``(ns to the first content piece, ns to the end)`` of one stream of ``model``."""
        t0 = time.perf_counter_ns()
        first = 0
        texts: list[str] = []
        async with self.session.post(self.url, data=_body(True, model), headers=self.headers) as resp:
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {(await resp.read())[:200]!r}")
            buf = b""
            async for data in resp.content.iter_any():
                got, buf, done = _sse_texts(buf + data)
                if got and not first:
                    first = time.perf_counter_ns()
                texts += got
                if done:
                    break
        end = time.perf_counter_ns()
        if "".join(texts) != expected:
            raise RuntimeError(f"stream assembled {''.join(texts)[:80]!r}…, expected {expected[:40]!r}…")
        return first - t0, end - t0


class Errors:
    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None

    def add(self, exc: BaseException) -> None:
        self.count += 1
        if self.first is None:
            self.first = f"{type(exc).__name__}: {exc}"[:300]

    def as_dict(self) -> dict[str, Any]:
        return {"errors": self.count, "error": self.first}


async def _sequential(target: Target, n: int, errors: Errors, *, full_check: bool, pause_s: float = 0.0) -> list[int]:
    """ns of ``n`` non-streamed calls, one in flight, each after sleeping ``pause_s`` (failures go to ``errors``)."""
    samples: list[int] = []
    for _ in range(n):
        if pause_s:
            await asyncio.sleep(pause_s)
        t0 = time.perf_counter_ns()
        try:
            await target.complete(full_check=full_check)
        except Exception as exc:
            errors.add(exc)
            continue
        samples.append(time.perf_counter_ns() - t0)
    return samples


async def latency(target: Target, n: int) -> dict[str, Any]:
    errors = Errors()
    samples = await _sequential(target, n, errors, full_check=True)
    return {"ns": samples, **errors.as_dict()}


async def stream(target: Target, n: int, chunks: int, model: str) -> dict[str, Any]:
    expected = expected_stream_text(chunks)
    ttfc: list[int] = []
    total: list[int] = []
    errors = Errors()
    for _ in range(n):
        try:
            first, end = await target.stream(expected, model)
        except Exception as exc:
            errors.add(exc)
            continue
        ttfc.append(first)
        total.append(end)
    return {"ttfc_ns": ttfc, "total_ns": total, **errors.as_dict()}


async def idle(target: Target, n: int, pauses_ms: list[float]) -> dict[str, Any]:
    """Latency after each pause: on a VM whose idle CPUs sleep deeply, every process woken on the path pays."""
    errors = Errors()
    out = {str(p): await _sequential(target, n, errors, full_check=False, pause_s=p / 1000) for p in pauses_ms}
    return {"ns": out, **errors.as_dict()}


async def load(target: Target, concurrency: int, seconds: float) -> dict[str, Any]:
    samples: list[int] = []
    errors = Errors()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter_ns()
            try:
                await target.complete(full_check=False)
            except Exception as exc:
                errors.add(exc)
                await asyncio.sleep(0.01)  # a refusing system must not turn the loop into a busy spin
                continue
            samples.append(time.perf_counter_ns() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    # Every worker finishes the call it has in flight at the deadline: the wall time runs to the last answer.
    return {"requests": len(samples), "wall_s": time.perf_counter() - t0, "ns": samples, **errors.as_dict()}


async def concurrent(target: Target, n: int, chunks: int, gap_ms: float, ramp_s: float) -> dict[str, Any]:
    """Hold ``n`` streams open at once. A gateway that cannot keep up delivers chunks later and later: lateness
    against the upstream's own schedule is what shows it (the raw upstream's row is the floor)."""
    expected = expected_stream_text(chunks)
    gap_ns = int(gap_ms * 1e6)
    late: list[int] = []
    errors = Errors()
    done = 0

    async def one(i: int) -> None:
        nonlocal done
        await asyncio.sleep(ramp_s * i / max(n, 1))
        t0 = time.perf_counter_ns()
        texts: list[str] = []
        try:
            async with target.session.post(target.url, data=_body(True, MODEL), headers=target.headers) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {(await resp.read())[:200]!r}")
                buf = b""
                async for data in resp.content.iter_any():
                    got, buf, finished = _sse_texts(buf + data)
                    now = time.perf_counter_ns()
                    for _ in got:
                        late.append(now - t0 - len(texts) * gap_ns)
                        texts.append(_)
                    if finished:
                        break
            if "".join(texts) != expected:
                raise RuntimeError(f"stream assembled {''.join(texts)[:80]!r}…")
            done += 1
        except Exception as exc:
            errors.add(exc)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    late.sort()

    def pct(q: float) -> float | None:
        return late[min(len(late) - 1, int(q * len(late)))] / 1e6 if late else None

    summary = {"p50": pct(0.5), "p99": pct(0.99), "max": late[-1] / 1e6 if late else None}
    return {"late_ms": summary, "streams": done, "chunks": len(late), "wall_s": time.perf_counter() - t0,
            **errors.as_dict()}  # fmt: skip


async def serve_commands() -> None:
    targets: dict[str, Target] = {}
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or not line.strip():
                return
            cmd = orjson.loads(line)
            op = cmd["op"]
            if op == "quit":
                return
            spec = cmd["target"]
            target = targets.get(spec["name"])
            if target is None:
                target = targets[spec["name"]] = Target(spec)
            if op == "latency":
                reply = await latency(target, cmd["n"])
            elif op == "stream":
                reply = await stream(target, cmd["n"], cmd["chunks"], cmd.get("model", MODEL))
            elif op == "idle":
                reply = await idle(target, cmd["n"], cmd["pauses_ms"])
            elif op == "concurrent":
                reply = await concurrent(target, cmd["n"], cmd["chunks"], cmd["gap_ms"], cmd["ramp_s"])
            elif op == "load":
                reply = await load(target, cmd["concurrency"], cmd["seconds"])
            else:
                reply = {"errors": 1, "error": f"unknown op {op!r}"}
            sys.stdout.buffer.write(orjson.dumps(reply) + b"\n")
            sys.stdout.buffer.flush()
    finally:
        for target in targets.values():
            await target.session.close()


def main() -> None:
    try:
        import uvloop  # the cheapest client loop leaves the most CPU to the systems under test (2 cores shared)
    except ImportError:
        asyncio.run(serve_commands())
    else:
        uvloop.run(serve_commands())


if __name__ == "__main__":
    main()
