"""``llm-manager ask``: one request, printed plainly, streamed, or as JSON."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from llm_manager.errors import AllCandidatesFailedError, ConfigError, LLMManagerError

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager
    from llm_manager.types import Response


async def run_ask(
    make: Callable[[], LLMManager], prompt: str, prefs: dict[str, Any], *, stream: bool, as_json: bool
) -> int:
    """Run the request; return the exit code."""
    try:
        llm = make()
    except ConfigError as exc:
        click.echo(f"error: {exc.message}", err=True)
        return 2
    async with llm:
        try:
            if stream and not as_json:
                resp = await _stream(llm, prompt, prefs)
            elif stream:
                s = llm.stream(prompt, **prefs)
                await s.text()
                resp = s.response
            else:
                resp = await llm.generate(prompt, **prefs)
        except LLMManagerError as exc:
            _report_error(exc, as_json)
            return 2 if isinstance(exc, ConfigError) else 1
    assert resp is not None
    if as_json:
        click.echo(resp.model_dump_json(indent=2))
    else:
        if not stream:
            click.echo(resp.content)
        _summary(resp)
    return 0


async def _stream(llm: LLMManager, prompt: str, prefs: dict[str, Any]) -> Response | None:
    s = llm.stream(prompt, **prefs)
    async with s:
        async for event in s:
            if event.delta:
                sys.stdout.write(event.delta)
                sys.stdout.flush()
    sys.stdout.write("\n")
    return s.response


def _summary(resp: Response) -> None:
    u = resp.usage
    cost = f"${u.cost:.6f}" if u.cost is not None else "cost unknown"
    parts = [
        f"{resp.deployment} ({resp.provider}/{resp.model})",
        f"{u.prompt_tokens}+{u.completion_tokens} tokens",
        cost,
        f"{resp.metadata.latency_ms:.0f} ms",
    ]
    if resp.metadata.retries:
        tried = ", ".join(f"{a.deployment}:{a.error_code or 'ok'}" for a in resp.metadata.attempts if not a.skipped)
        parts.append(f"{resp.metadata.retries} retr{'y' if resp.metadata.retries == 1 else 'ies'} [{tried}]")
    if resp.metadata.simulated:
        parts.append("SIMULATED (offline model; configure a provider for real answers)")
    click.secho("— " + " · ".join(parts), err=True, dim=True)


def _report_error(exc: LLMManagerError, as_json: bool) -> None:
    if as_json:
        from llm_manager import _json

        click.echo(_json.dumps({"error": exc.to_dict()}).decode())
        return
    click.echo(f"error [{exc.code}]: {exc.message}", err=True)
    attempts = exc.attempts if not isinstance(exc, AllCandidatesFailedError) else exc.attempts
    for a in attempts:
        what = "skipped" if a.skipped else (a.error_code or "ok")
        click.echo(f"  - {a.deployment}: {what}{' — ' + a.error if a.error else ''}", err=True)
