"""``llm-manager demo``: a scripted, offline tour on the simulated models (no key, no network).

Shows task routing, a fallback after an injected outage, a retry that honours Retry-After, a stream, a stream
that fails over before its first chunk, and one that breaks after it (an error, never a truncated success).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import click

from llm_manager.cli.render import snug

if TYPE_CHECKING:
    from rich.console import Console

    from llm_manager.manager import LLMManager
    from llm_manager.types import Response, TaskType

_PROMPTS: dict[TaskType, str] = {
    "analysis": "Analyze this anomaly pattern: p99 latency of checkout tripled after the 14:05 deploy",
    "ui-generation": "Generate a React component for a latency heat-map panel",
    "config-management": "Write an OpenTelemetry collector config that samples 10% of traces",
    "general": "Summarise what an SLO burn-rate alert means",
}


@click.command()
@click.option("--seed", type=int, default=7, show_default=True, help="Simulation seed (same seed, same run).")
def demo(seed: int) -> None:
    """A scripted offline showcase on SIMULATED models: routing, fallback, Retry-After, streaming."""
    asyncio.run(_run(seed))


def _manager(seed: int) -> LLMManager:
    from llm_manager.discovery import simulated_settings
    from llm_manager.manager import LLMManager

    overrides: dict[str, Any] = {
        "routing": {
            "max_retries": 1,
            "retry_after_cap_s": 5,
            "first_chunk_timeout_s": 0.5,
            "backoff": {"base_s": 0.05},
            "circuit_breaker": {"failure_threshold": 3, "cooldown_s": 30},
        }
    }
    return LLMManager(simulated_settings(seed, overrides))


async def _run(seed: int) -> None:
    from rich.console import Console
    from rich.panel import Panel

    c = Console(highlight=False)
    c.print(
        Panel.fit(
            "[bold]llm-manager demo[/bold] — everything below runs offline on [bold yellow]SIMULATED"
            "[/bold yellow] models\n(no API key, no network; answers are labelled \\[simulated …])"
        )
    )
    async with _manager(seed) as llm:
        await _routing(c, llm)
        await _fallback(c, llm)
        await _retry_after(c, llm)
        await _streams(c, llm)
        await _cache(c, llm)
        await _breaker(c, llm)
    c.print("\n[green]done.[/green] Configure a provider (see `llm-manager config example`) for real answers.")


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


async def _calls(llm: LLMManager, name: str) -> int:
    """Provider calls made to ``name`` so far (answers and failures; skipped candidates are not calls)."""
    calls: int = (await llm.status())["deployments"][name]["calls"]
    return calls


async def _routing(c: Console, llm: LLMManager) -> None:
    from llm_manager.cli.render import table

    t = table(
        "1 · task routing (the seeds' table: analysis → claude-class, config → local llama …)",
        *("task", "chain", "answered by", "latency", "tokens in/out", "cost"),
    )
    for task, prompt in _PROMPTS.items():
        r = await llm.generate(prompt, task=task, max_tokens=200)
        t.add_row(
            task,
            " → ".join(llm.settings.chain(task)[:3]),
            r.deployment,
            f"{r.metadata.latency_ms:.0f} ms",
            f"{r.usage.prompt_tokens}/{r.usage.completion_tokens}",
            f"${r.usage.cost:.6f}" if r.usage.cost is not None else "?",
        )
    c.print(snug(t, c.width))


def _attempts_table(title: str, r: Response, width: int) -> Any:
    from llm_manager.cli.render import table

    t = table(title, "#", "model", "outcome", "status", "retry-after", "waited before", "latency")
    for i, a in enumerate(r.metadata.attempts, 1):
        outcome = "[green]ok[/green]" if a.ok else f"[red]{a.error_code}[/red]"
        t.add_row(
            str(i),
            a.deployment,
            outcome,
            str(a.status_code or "-"),
            f"{a.retry_after:g}s" if a.retry_after is not None else "-",
            f"{a.waited_ms:.0f} ms",
            f"{a.latency_ms:.0f} ms",
        )
    return snug(t, width)


async def _fallback(c: Console, llm: LLMManager) -> None:
    llm.simulate("sim-claude", "503", "503")  # the primary for analysis is down
    r = await llm.generate(_PROMPTS["analysis"], task="analysis", cache=False)
    c.print(
        _attempts_table(
            "2 · fallback: sim-claude answers 503 twice (a retry, then give up) → next candidate", r, c.width
        )
    )
    c.print(f"   answer from [bold]{r.deployment}[/bold]: {_esc(r.content[:70])}…")


async def _retry_after(c: Console, llm: LLMManager) -> None:
    llm.simulate("sim-gpt", "429:0.8")
    t0 = time.perf_counter()
    r = await llm.generate(_PROMPTS["general"], task="general", cache=False)
    took = (time.perf_counter() - t0) * 1000
    c.print(_attempts_table("3 · retry honouring Retry-After: sim-gpt answers 429 with retry-after 0.8 s", r, c.width))
    c.print(f"   same model retried after the server's 800 ms (not the 50 ms backoff); total {took:.0f} ms")


async def _streams(c: Console, llm: LLMManager) -> None:
    from llm_manager.errors import StreamInterruptedError

    c.print("\n[bold]4 · streaming[/bold] a haiku (task general):  ", end="")
    s = llm.stream("Write a haiku about on-call", task="general", max_tokens=20, cache=False)
    async for ev in s:
        c.print(_esc(ev.delta), end="")
    if s.response is None:
        return
    c.print(
        f"\n   first chunk after {s.response.metadata.time_to_first_chunk_ms:.0f} ms, "
        f"{s.response.usage.completion_tokens} tokens from {s.response.deployment}"
    )

    llm.simulate("sim-gpt", "slow:2")  # no first chunk within first_chunk_timeout_s (0.5 s)
    s = llm.stream("Write a haiku about fallbacks", task="general", max_tokens=20, cache=False)
    text = await s.text()
    if s.response is None:
        return
    c.print(
        _attempts_table("5 · stream fails over BEFORE its first chunk (sim-gpt silent past 0.5 s)", s.response, c.width)
    )
    c.print(f"   streamed by {s.response.deployment}: {_esc(text[:60])}…")

    llm.simulate("sim-gpt", "cut:3")
    c.print("\n[bold]6 · stream breaks AFTER its first chunk[/bold] (no fallback: text was already shown):  ", end="")
    try:
        async for ev in llm.stream("Write a haiku about resets", task="general", max_tokens=20, cache=False):
            c.print(_esc(ev.delta), end="")
    except StreamInterruptedError as exc:
        c.print(f"\n   [red]error[/red] {_esc(f'[{exc.code}] {exc.message}')}")


async def _cache(c: Console, llm: LLMManager) -> None:
    question = "What does a p99 latency spike after a deploy usually mean?"
    first = await llm.generate(question, task="general")
    t0 = time.perf_counter()
    again = await llm.generate(question, task="general")
    hit_us = (time.perf_counter() - t0) * 1e6
    c.print(
        f"\n[bold]7 · cache[/bold]: first answer {first.metadata.latency_ms:.0f} ms from {first.deployment}; "
        f"the same question again: cached={again.metadata.cached} in {hit_us:.0f} µs"
    )
    before = await _calls(llm, "sim-gpt")
    burst = await asyncio.gather(
        *(llm.generate("Explain error budgets in one line", task="general") for _ in range(20))
    )
    shared = sum(r.metadata.deduplicated for r in burst)
    made = await _calls(llm, "sim-gpt") - before
    c.print(f"   20 identical requests at once → {made} provider call; {shared} shared it in flight")


async def _breaker(c: Console, llm: LLMManager) -> None:
    await llm.state.breaker_reset("sim-claude")  # forget section 2's failures: start from a closed breaker
    llm.simulate("sim-claude", *["503"] * 40)  # a long outage of the analysis primary
    before = await _calls(llm, "sim-claude")
    served: dict[str, int] = {}
    for i in range(12):
        r = await llm.generate(f"Analyze anomaly #{i}", task="analysis", cache=False)
        served[r.deployment] = served.get(r.deployment, 0) + 1
    claude = (await llm.status())["deployments"]["sim-claude"]
    status = claude["breakers"]["-"]
    c.print(
        f"\n[bold]8 · circuit breaker[/bold]: sim-claude down for 12 requests → it was called "
        f"{claude['calls'] - before} times (failure threshold 3), then skipped without a call; breaker [red]{status['state']}[/red], "
        f"{status['cooldown_left_s']:.0f}s of cooldown left; answers from {served}"
    )
