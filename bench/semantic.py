"""The semantic cache: precision and recall on the labelled set, and the time it adds to a miss and takes for a hit.

    .venv/bin/python -m bench.semantic            # full run: prints, writes bench/results/semantic.md, appends RESULTS.md
    .venv/bin/python -m bench.semantic --quick    # few samples, prints only

Quality: every pair of ``tests/data/semantic_pairs.tsv`` through ``SemanticCache.compare`` (the real built-in model
and lexical guard) at the default threshold and at others. Latency: ``generate()`` on an instant simulated model
(no network, so the numbers are the cache's own), one call in flight, interleaved in blocks: a miss with the
semantic cache off and on, a semantic hit, an exact hit; in one process, and shared through the local Redis (a
unique prefix, deleted afterwards) with ``--entries`` cached prompts of the same scope already in the index.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.report import append_history, environment, table
from llm_manager import LLMManager
from llm_manager.config import load_settings

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "tests" / "data" / "semantic_pairs.tsv"
RESULT = ROOT / "bench" / "results" / "semantic.md"
REDIS = "redis://127.0.0.1:6379/0"
THRESHOLDS = (0.7, 0.75, 0.8, 0.85, 0.9, 0.95)

_VERBS = ("Explain", "Summarise", "Describe", "List the main facts about", "Give three examples of", "Compare")
_TOPICS = (
    "volcanoes glaciers tides deserts rainforests coral reefs earthquakes hurricanes comets asteroids nebulae "
    "magnets batteries transistors lasers vaccines antibiotics enzymes proteins chromosomes bridges tunnels dams "
    "canals railways airports lighthouses castles pyramids cathedrals sonnets operas ballets symphonies frescoes "
    "mosaics tapestries sculptures novels fables myths sagas ledgers invoices mortgages pensions tariffs auctions"
).split()


def fill_prompts() -> list[str]:
    """Distinct prompts of one template (close to each other: a hard case for the index and the guard)."""
    return [f"{verb} {topic}." for verb, topic in itertools.product(_VERBS, _TOPICS)]


def labelled() -> list[tuple[int, str, str, str]]:
    lines = [line for line in PAIRS.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return [(int(r[0]), r[1], r[2], r[3]) for r in (line.split("\t") for line in lines[1:])]


def settings(semantic: bool, redis_prefix: str | None = None) -> Any:
    raw: dict[str, Any] = {
        "models": {
            "gpt": {"provider": "simulated", "family": "gpt", "simulate": {"latency_ms": 0, "tokens_per_s": 1e9}}
        },
        "cache": {"max_entries": 100_000, "semantic": {"enabled": semantic, "max_entries": 100_000}},
    }
    if redis_prefix is not None:
        raw["state"] = {"redis_url": REDIS, "prefix": redis_prefix}
    return load_settings(raw, env={})


async def quality() -> tuple[str, dict[str, Any]]:
    async with LLMManager(settings(True)) as llm:
        assert llm.semantic is not None
        request = llm.request("x")
        rows = labelled()
        scored = [(label, kind, await llm.semantic.compare(a, b, request)) for label, kind, a, b in rows]
    default = llm.settings.cache.semantic.threshold
    lines = []
    at_default: dict[str, Any] = {}
    for th in THRESHOLDS:
        hits = [(label, sim >= th and why is None) for label, _, (sim, why, _) in scored]
        tp = sum(1 for label, hit in hits if label == 1 and hit)
        fp = sum(1 for label, hit in hits if label == 0 and hit)
        pos = sum(1 for label, _ in hits if label == 1)
        precision = tp / (tp + fp) if tp + fp else 1.0
        bare_fp = sum(1 for label, _, (sim, _, _) in scored if label == 0 and sim >= th)
        mark = " (default)" if th == default else ""
        lines.append([f"{th:.2f}{mark}", f"{precision:.3f}", f"{tp / pos:.3f}", f"{tp}/{pos}", str(fp), str(bare_fp)])
        if th == default:
            at_default = {"precision": precision, "recall": tp / pos, "false_hits": fp}
    near = sum(1 for label, *_ in scored if label == 0)
    kinds = sorted({kind for label, kind, _ in scored if label == 0})
    head = (
        f"{len(scored)} labelled pairs: {len(scored) - near} paraphrases, {near} near-misses ({', '.join(kinds)}).\n"
        "A pair hits when its similarity reaches the threshold and the lexical guard finds no difference; "
        "'false hits without the guard' counts the near-misses that similarity alone would have let through.\n\n"
    )
    text = head + table(
        ["threshold", "precision", "recall", "paraphrases hit", "false hits", "false hits without the guard"], lines
    )
    return text, at_default


async def _timed(llm: LLMManager, prompt: str, expect_cached: bool, similar: bool) -> float:
    t0 = time.perf_counter()
    resp = await llm.generate(prompt)
    took = (time.perf_counter() - t0) * 1000
    assert resp.metadata.cached == expect_cached, (prompt, resp.metadata)
    assert (resp.metadata.cache_similarity is not None) == similar, (prompt, resp.metadata)
    return took


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


async def latency(samples: int, entries: int, redis_prefix: str | None) -> list[list[str]]:
    where = "Redis (shared)" if redis_prefix else "in process"
    fill = fill_prompts()[:entries]
    # The baseline keeps its state where the measured manager does (Redis rows: Redis too, another prefix).
    plain_prefix = None if redis_prefix is None else redis_prefix + "-off"
    async with LLMManager(settings(False, plain_prefix)) as plain, LLMManager(settings(True, redis_prefix)) as sem:
        assert sem.semantic is not None
        await sem.semantic.embedder.embed("warm up", sem.request("x"))  # load the model before timing
        for prompt in fill:
            await sem.generate(prompt)
        await sem.generate("How do I reset my password?")
        got: dict[str, list[float]] = {"off": [], "miss": [], "semantic": [], "exact": []}
        for i in range(samples):
            unique = f"Tell me about the history of the item with serial number {uuid.uuid4().hex}."
            got["off"].append(await _timed(plain, unique, False, False))
            got["miss"].append(await _timed(sem, unique, False, False))
            variant = ("how can I reset my password", "How can I reset my password?", "how do i reset my password")
            got["semantic"].append(await _timed(sem, variant[i % 3] + " " * (i // 3 + 1), True, True))
            got["exact"].append(await _timed(sem, fill[i % len(fill)], True, False))
        if sem.semantic is not None:
            await sem.semantic.clear()
    off50, off95 = _pct(got["off"], 50), _pct(got["off"], 95)
    rows = []
    for key, label in (
        ("off", "miss, semantic cache off (baseline)"),
        ("miss", "miss, semantic cache on"),
        ("semantic", "semantic hit"),
        ("exact", "exact hit"),
    ):
        p50, p95 = _pct(got[key], 50), _pct(got[key], 95)
        added = "" if key != "miss" else f"+{p50 - off50:.3f} / +{p95 - off95:.3f}"
        rows.append([where, str(len(fill)), label, f"{p50:.3f}", f"{p95:.3f}", added])
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few samples; print only")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--entries", type=int, default=300, help="prompts cached before timing (<= 300)")
    parser.add_argument("--no-redis", action="store_true", help="skip the shared (Redis) rows")
    args = parser.parse_args()
    logging.getLogger("llm_manager").setLevel(logging.WARNING)  # one log line per request would be timed too
    samples = 20 if args.quick else args.samples
    print("quality …", file=sys.stderr)
    quality_text, _ = await quality()
    rows: list[list[str]] = []
    print("latency, in process …", file=sys.stderr)
    rows += await latency(samples, args.entries, None)
    if not args.no_redis:
        print("latency, shared through Redis …", file=sys.stderr)
        prefix = f"llmm-bench-sem-{uuid.uuid4().hex[:10]}"
        try:
            rows += await latency(samples, args.entries, prefix)
        finally:
            import redis

            client = redis.Redis.from_url(REDIS)
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))  # and the baseline's "-off" prefix
            if keys:
                client.delete(*keys)
            client.close()
    latency_text = (
        f"`generate()` on an instant simulated model, one call in flight, {samples} samples per row, interleaved; "
        "ms. 'added' = p50 / p95 of the miss minus the baseline's.\n\n"
        + table(["cache", "entries", "request", "p50 ms", "p95 ms", "added p50 / p95 ms"], rows)
    )
    report = (
        "# Semantic cache\n\n"
        + environment()
        + "\n\n## Precision and recall (tests/data/semantic_pairs.tsv)\n\n"
        + quality_text
        + "\n\n## Latency\n\n"
        + latency_text
        + "\n"
    )
    print(report)
    if not args.quick:
        RESULT.write_text(report, encoding="utf-8")
        append_history("semantic cache (`python -m bench.semantic`)", report.split("\n", 1)[1])


if __name__ == "__main__":
    asyncio.run(main())
