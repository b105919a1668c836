"""What ``ledger.durability: strict`` costs a caller: ``python -m bench.durability [--quick] [--store URL]``.

The time until :meth:`LLMManager.answer` hands the answer over — what a gateway client waits for — with the
default ``batched`` ledger (the bookkeeping runs after the answer is released) and with ``strict`` (the budget
settlement and the ledger row, appended to the spool and ``fsync``'d, come first). An instant simulated model and
two budgets, so the difference is the bookkeeping and the ``fsync``. Measured sequentially (each answer pays one
``fsync``) and 32 at a time (concurrent answers share one). The spool lives in a temporary directory on the disk
that holds ``$TMPDIR``. Full runs append themselves to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.helpers import instant, priced_model  # noqa: E402

from bench.report import append_history  # noqa: E402
from llm_manager import LLMManager  # noqa: E402
from llm_manager.config import load_settings  # noqa: E402

CONCURRENCY = 32


def settings(durability: str, store_url: str, spool: Path) -> Any:
    return load_settings(
        {
            "models": {"gpt": priced_model(instant(), "2.5", "10")},
            "budgets": [
                {"name": "day", "limit_usd": "1000000", "period": "daily"},
                {"name": "per-user", "scope": "user", "limit_usd": "1000000", "period": "monthly"},
            ],
            "cache": {"enabled": False},
            "store": {"url": store_url},
            "ledger": {"durability": durability, "spool_dir": str(spool), "flush_interval_s": 1.0},
        },
        env={},
    )


async def handed_over_ms(llm: LLMManager, n: int, concurrency: int) -> list[float]:
    """Per answer: ms until ``answer()`` returned (its bookkeeping then runs, as the gateway does)."""
    gate = asyncio.Semaphore(concurrency)
    out: list[float] = []

    async def one(i: int) -> None:
        async with gate:
            t0 = time.perf_counter()
            resp, settle = await llm.answer(llm.request(f"q{i}", user="alice"))
            out.append((time.perf_counter() - t0) * 1000)
            await settle()
            assert resp.content

    await asyncio.gather(*(one(i) for i in range(n)))
    return out


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


async def measure(durability: str, store_url: str, spool: Path, n: int) -> dict[str, float]:
    async with LLMManager(settings(durability, store_url, spool)) as llm:
        await handed_over_ms(llm, 200, 1)  # warm-up: the store, the ledger, the spool slot
        seq = await handed_over_ms(llm, n, 1)
        t0 = time.perf_counter()
        con = await handed_over_ms(llm, n * 4, CONCURRENCY)
        elapsed = time.perf_counter() - t0
        fsyncs = llm.ledger.stats()["spool_fsyncs"] if llm.ledger is not None else 0
    return {
        "seq_p50": statistics.median(seq),
        "seq_p99": pct(seq, 99),
        "con_p50": statistics.median(con),
        "con_p99": pct(con, 99),
        "con_rps": n * 4 / elapsed,
        "fsyncs": fsyncs,
        "rows": n * 5 + 200,
    }


def render(batched: dict[str, float], strict: dict[str, float]) -> str:
    lines = [
        "### ledger durability: time until the answer is handed over",
        "",
        "| | batched (default) | strict | added by strict |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, label in (
        ("seq_p50", "sequential, p50"),
        ("seq_p99", "sequential, p99"),
        ("con_p50", f"{CONCURRENCY} at a time, p50"),
        ("con_p99", f"{CONCURRENCY} at a time, p99"),
    ):
        b, s = batched[key], strict[key]
        lines.append(f"| {label} | {b:.3f} ms | {s:.3f} ms | +{s - b:.3f} ms |")
    lines.append(
        f"| {CONCURRENCY} at a time, answers/s | {batched['con_rps']:.0f} | {strict['con_rps']:.0f} | "
        f"{(strict['con_rps'] / batched['con_rps'] - 1) * 100:+.0f} % |"
    )
    lines.append(
        f"| rows per `fsync` (strict, whole run) | — | {strict['rows'] / max(strict['fsyncs'], 1):.1f} "
        f"({int(strict['fsyncs'])} fsyncs) | |"
    )
    return "\n".join(lines)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="fewer requests, nothing appended to RESULTS.md")
    ap.add_argument("--store", help="store URL (default: a SQLite file in a temporary directory)")
    args = ap.parse_args()
    n = 300 if args.quick else 2000
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or f"sqlite:///{tmp}/bench.db"
        batched = await measure("batched", store, Path(tmp) / "spool", n)
        strict = await measure("strict", store, Path(tmp) / "spool", n)
    text = render(batched, strict)
    print(text)
    if not args.quick:
        append_history("ledger durability (`python -m bench.durability`)", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
