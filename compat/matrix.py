"""The client × feature table of ``docs/compatibility.md``, made from what a run of the suite showed.

A cell is "yes" when every test of that client and feature passed, "no" when one is a known gap (a strict
``xfail`` whose reason says why; the reasons become the page's notes), and the run fails when the page disagrees
with the run — so the page can never claim more, or less, than the clients do.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pytest

__all__ = ["CLIENTS", "FEATURES", "PROBLEM", "finish", "record", "render"]

CLIENTS: dict[str, str] = {
    "openai-python": "`openai` (Python)",
    "anthropic-python": "`anthropic` (Python)",
    "langchain": "LangChain `ChatOpenAI`",
    "instructor": "instructor",
    "agents": "OpenAI Agents SDK",
    "llm-cli": "`llm` CLI",
    "litellm": "LiteLLM (as a client)",
    "openai-js": "`openai` (npm)",
    "ai-sdk": "Vercel AI SDK",
    "anthropic-js": "`@anthropic-ai/sdk` (npm)",
}
FEATURES: dict[str, str] = {
    "plain": "plain",
    "stream": "stream",
    "tools": "tools",
    "structured": "structured output",
    "json-mode": "JSON mode",
    "image": "image part",
    "responses": "`/v1/responses`",
    "embeddings": "embeddings",
    "completions": "`/v1/completions`",
}
START = "<!-- compat-table:start -->"
END = "<!-- compat-table:end -->"
PROBLEM = pytest.StashKey[str]()
_OUTCOMES = pytest.StashKey[dict[tuple[str, str], list[tuple[str, str]]]]()


def record(config: pytest.Config, client: str, feature: str, report: pytest.TestReport) -> None:
    if client not in CLIENTS or feature not in FEATURES:
        raise ValueError(f"unknown client or feature in marker: {client!r}, {feature!r}")
    outcomes = config.stash.setdefault(_OUTCOMES, defaultdict(list))
    if hasattr(report, "wasxfail"):
        outcomes[(client, feature)].append(("no", str(report.wasxfail).removeprefix("reason: ")))
    elif report.passed:
        outcomes[(client, feature)].append(("yes", ""))
    elif report.skipped:
        outcomes[(client, feature)].append(("skipped", ""))
    else:
        outcomes[(client, feature)].append(("failed", ""))


def render(outcomes: dict[tuple[str, str], list[tuple[str, str]]]) -> str:
    notes: list[str] = []
    header = "| client | " + " | ".join(FEATURES.values()) + " |"
    lines = [header, "| --- |" + " :---: |" * len(FEATURES)]
    for client, label in CLIENTS.items():
        cells = []
        for feature in FEATURES:
            results = outcomes.get((client, feature), [])
            if not results:
                cells.append("–")
            elif all(r == "yes" for r, _ in results):
                cells.append("yes")
            else:
                reasons = sorted({why for r, why in results if r == "no" and why})
                for why in reasons:
                    if why not in notes:
                        notes.append(why)
                marks = "".join(f"[^{notes.index(w) + 1}]" for w in reasons)
                cells.append("no" + marks)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    footnotes = "\n".join(f"[^{i}]: {why}" for i, why in enumerate(notes, 1))
    return table + ("\n\n" + footnotes if footnotes else "")


def finish(config: pytest.Config, page: Path, *, full_run: bool) -> str | None:
    """Compare (or with ``COMPAT_WRITE=1`` rewrite) the page's table; a message when they disagree."""
    outcomes: dict[tuple[str, str], list[tuple[str, str]]] = config.stash.get(_OUTCOMES, {})
    if not full_run or not outcomes:
        return None
    if any(r in ("failed", "skipped") for results in outcomes.values() for r, _ in results):
        return None  # the failures speak for themselves; a partial table proves nothing
    text = page.read_text(encoding="utf-8")
    start, end = text.index(START) + len(START), text.index(END)
    table = "\n" + render(outcomes) + "\n"
    if text[start:end] == table:
        return None
    if os.environ.get("COMPAT_WRITE") == "1":
        page.write_text(text[:start] + table + text[end:], encoding="utf-8")
        return None
    return (
        f"{page} does not match what this run showed; re-run with COMPAT_WRITE=1 to rewrite its table "
        f"(and check the diff). Expected:\n{table}"
    )
