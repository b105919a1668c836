"""``llm-manager ask``: one request, printed plainly, streamed, or as JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import click

from llm_manager.cli.calls import echo_stream, opened
from llm_manager.errors import LLMManagerError

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager
    from llm_manager.types import Response


async def run_ask(
    make: Callable[[], LLMManager], prompt: str, prefs: dict[str, Any], *, stream: bool, as_json: bool
) -> int:
    """Run the request; return the exit code."""
    async with opened(make, as_json=as_json) as llm:
        if stream and not as_json:
            resp = await echo_stream(llm.stream(prompt, **prefs))
        elif stream:
            s = llm.stream(prompt, **prefs)
            await s.text()
            resp = s.response
        else:
            resp = await llm.generate(prompt, **prefs)
    if resp is None:  # a stream always ends with its response or an error; this is a bug if reached
        click.echo("error: the stream ended without a response", err=True)
        return 1
    if as_json:
        click.echo(resp.model_dump_json(indent=2))
    else:
        if not stream and (resp.content or not resp.tool_calls):
            click.echo(resp.content)
        for call in resp.tool_calls:
            click.echo(f"tool call {call.name}({call.arguments})  id={call.id}")
        _summary(resp)
    return 0


def tool_prefs(path: str | None, choice: str | None) -> dict[str, Any]:
    """``tools`` / ``tool_choice`` request fields from ``--tools FILE`` and ``--tool-choice``."""
    import json

    from llm_manager.codecs.openai_chat.tools import tools_from_wire
    from llm_manager.types import Tool

    if path is None:
        raise click.UsageError("--tool-choice needs --tools")
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="--tools") from None
    if not isinstance(raw, list) or not raw:
        raise click.BadParameter(f"{path} must hold a non-empty JSON array of tools", param_hint="--tools")
    try:
        if all(isinstance(t, dict) and t.get("type") == "function" for t in raw):
            tools = tools_from_wire(raw) or []
        else:
            tools = [Tool.model_validate(t) for t in raw]
    except ValueError as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--tools") from None
    prefs: dict[str, Any] = {"tools": tools}
    if choice is not None:
        names = {t.name for t in tools}
        if choice not in ("auto", "none", "required") and choice not in names:
            raise click.BadParameter(
                f"{choice!r} is not auto, none, required or one of the tools ({', '.join(sorted(names))})",
                param_hint="--tool-choice",
            )
        prefs["tool_choice"] = choice if choice in ("auto", "none", "required") else {"name": choice}
    return prefs


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
    if resp.metadata.cache_similarity is not None:
        parts.append(f"semantic cache hit (similarity {resp.metadata.cache_similarity:.3f})")
    elif resp.metadata.cached:
        parts.append("cache hit")
    prompt = resp.metadata.prompt
    if prompt is not None:
        parts.append(f"prompt {prompt.tokens_before}→{prompt.tokens_after} tokens ({prompt.tokenizer})")
    if resp.logprobs is not None:  # asked for with --confidence
        confidence = resp.confidence
        parts.append(f"confidence {confidence:.3f}" if confidence is not None else "confidence unknown")
    if resp.metadata.simulated:
        parts.append("SIMULATED (offline model; configure a provider for real answers)")
    click.secho("— " + " · ".join(parts), err=True, dim=True)


async def run_schema(
    make: Callable[[], LLMManager], prompt: str, prefs: dict[str, Any], schema_file: str, *, stream: bool
) -> int:
    """``ask --schema``: print the validated JSON (with ``--stream``, partial objects on stderr as they grow)."""
    from llm_manager import _json
    from llm_manager.errors import ExtractionError

    try:
        with open(schema_file, "rb") as f:  # closed at once (a ResourceWarning otherwise)
            schema = _json.loads(f.read())
    except ValueError as exc:
        click.echo(f"error: {schema_file} is not valid JSON: {exc}", err=True)
        return 2
    if not isinstance(schema, dict):
        click.echo(f"error: {schema_file} must hold a JSON Schema object", err=True)
        return 2
    async with opened(make, as_json=False) as llm:
        try:
            if stream:
                value: Any = None
                async for value in llm.stream_with_schema(prompt, schema, **prefs):
                    click.echo(_json.dumps(value).decode(), err=True)
            else:
                result = await llm.query_with_schema(prompt, schema, full=True, **prefs)
                value = result.value
                if result.tries:
                    click.secho(f"— valid after {len(result.tries)} re-ask(s)", err=True, dim=True)
        except ExtractionError as exc:
            click.echo(f"error [{exc.code}]: {exc.message}", err=True)
            for i, t in enumerate(exc.tries, 1):
                click.echo(f"  try {i} ({t['deployment']}): {'; '.join(t['errors'][:3])}", err=True)
            return 1
    click.echo(_json.dumps(value).decode())
    return 0


async def run_compare(
    make: Callable[[], LLMManager],
    prompt: str,
    models: list[str],
    *,
    mode: Literal["all", "first", "confident"],
    timeout_s: float | None,
    as_json: bool,
) -> int:
    """``compare``: every model's answer or error, in the order asked (or the one ``mode`` picks)."""
    from llm_manager import _json

    async with opened(make, as_json=as_json) as llm:
        results = await llm.query_multiple(prompt, models, timeout_s=timeout_s, mode=mode)
    if as_json:
        out = [
            r.model_dump(mode="json") if not isinstance(r, LLMManagerError) else {"error": r.to_dict()} for r in results
        ]
        click.echo(_json.dumps(out).decode())
    else:
        names = models if mode == "all" else [getattr(results[0], "deployment", "")]
        for name, r in zip(names, results, strict=True):
            if isinstance(r, LLMManagerError):
                click.secho(f"== {name}: error [{r.code}] {r.message}", fg="red")
            else:
                sure = f" · confidence {r.confidence:.3f}" if r.confidence is not None else ""
                click.secho(
                    f"== {r.deployment} · {r.metadata.latency_ms:.0f} ms · {r.usage.completion_tokens} tokens{sure}",
                    bold=True,
                )
                click.echo(r.content)
    return 0 if any(not isinstance(r, LLMManagerError) for r in results) else 1
