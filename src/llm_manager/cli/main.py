"""``llm-manager``: the command line over the same core as the library.

Every command takes ``--config FILE``, before or after its name; without it: ``$LLM_MANAGER_CONFIG``, then ``./llm-manager.yaml``, then
provider keys in the environment, then the simulated models. Exit codes: 0 ok, 1 the request failed, 2 bad
usage or configuration.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING, Any, Literal

import click

from llm_manager.cli.batch import batch
from llm_manager.cli.chat import conversations_group
from llm_manager.cli.config_cmd import config_group
from llm_manager.cli.config_option import CONFIG_HELP, add_config_option
from llm_manager.cli.costs_cmd import costs, replay
from llm_manager.cli.count_tokens_cmd import count_tokens
from llm_manager.cli.demo import demo
from llm_manager.cli.embed import embed
from llm_manager.cli.keys_cmd import keys_group
from llm_manager.cli.optimize_cmd import optimize
from llm_manager.cli.serve import serve

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager

TASK_HELP = (
    "Task: picks the routing chain. Built in: analysis, ui-generation, config-management, general; any task the "
    "config defines under routing.tasks (`llm-manager models` lists them all)."
)


class _Ctx:
    def __init__(self, config: str | None) -> None:
        self.config = config
        self._secrets: object = None

    def manager(self, *, calls_model: bool = True) -> LLMManager:
        """The manager for ``--config``; ``calls_model=False`` for commands that call no model (conversations,
        keys, costs): they get no warning that answers would be SIMULATED."""
        from llm_manager._redact import SecretSet
        from llm_manager.config_secrets import configured_secrets
        from llm_manager.discovery import resolve_settings
        from llm_manager.manager import LLMManager

        llm = LLMManager(resolve_settings(self.config, warn_simulated=calls_model))
        # Masked in everything this command prints, also after the manager is closed (status is printed then).
        self._secrets = SecretSet(configured_secrets(llm.settings))
        _use_log_format(llm.settings.telemetry.log_format)
        return llm


def _use_log_format(fmt: str) -> None:
    """Send logs (already redacted) through the configured formatter: text, or one JSON object per line."""
    from llm_manager.telemetry import make_handler

    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "llm_manager_cli", False)]:
        if handler.formatter is not None and fmt == "json":
            handler.setFormatter(make_handler("json").formatter)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        # Any command's own error (a missing --config file met inside `chat`, …) becomes a message and an exit code.
        with _guard():
            return super().invoke(ctx)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--config",
    "-c",
    "config",
    type=click.Path(dir_okay=False),
    envvar="LLM_MANAGER_CONFIG",
    help=CONFIG_HELP + " Also accepted after the subcommand.",
)
@click.option("--verbose", "-v", is_flag=True, help="Log routing decisions and retries to stderr.")
@click.version_option(package_name="llm-manager")
@click.pass_context
def cli(ctx: click.Context, config: str | None, verbose: bool) -> None:
    """One API over many LLM providers: task routing, fallback, retries and streaming."""
    from llm_manager.telemetry import make_handler

    root = logging.getLogger()
    if not any(getattr(h, "llm_manager_cli", False) for h in root.handlers):
        handler = make_handler("text")  # redacts keys in every line; JSON once the config asks for it
        handler.llm_manager_cli = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    ctx.obj = _Ctx(config)


@cli.command()
@click.argument("prompt")
@click.option("--task", "-t", default="general", show_default=True, help=TASK_HELP)
@click.option("--model", "-m", help="Preferred model (deployment name or alias); the task chain stays as fallback.")
@click.option("--no-fallback", is_flag=True, help="With --model: fail instead of falling back.")
@click.option("--system", "-s", help="System prompt.")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Most tokens to generate.")
@click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature.")
@click.option(
    "--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), help="Overall deadline in seconds."
)
@click.option(
    "--priority",
    type=click.Choice(["low", "medium", "high"]),
    default="medium",
    show_default=True,
    help="Order among requests waiting for rate-limit room.",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor fill the response cache; no in-flight sharing.")
@click.option(
    "--no-semantic-cache",
    is_flag=True,
    help="Only an exactly matching cached answer will do, not one for a prompt that means the same.",
)
@click.option(
    "--max-prompt-tokens",
    type=click.IntRange(min=1),
    help="Shrink the prompt to this many tokens first (see `llm-manager optimize`); the counts go in the summary.",
)
@click.option(
    "--schema",
    "schema_file",
    type=click.Path(exists=True, dir_okay=False),
    help="A JSON Schema file: answer with JSON valid against it (native structured output, re-asks).",
)
@click.option(
    "--tools",
    "tools_file",
    type=click.Path(exists=True, dir_okay=False),
    help="A JSON file with an array of tools (OpenAI's function-tool shape, or {name, description, parameters}).",
)
@click.option(
    "--tool-choice",
    help="With --tools: auto (default), none, required, or the name of the one tool the model must call.",
)
@click.option(
    "--confidence",
    is_flag=True,
    help="Ask for token log probabilities and show the answer's confidence (0-1) in the summary and --json.",
)
@click.option("--stream", is_flag=True, help="Print text as it arrives.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole response (usage, attempts …) as JSON.")
@click.pass_obj
def ask(
    obj: _Ctx,
    prompt: str,
    task: str,
    model: str | None,
    no_fallback: bool,
    system: str | None,
    max_tokens: int | None,
    temperature: float | None,
    timeout_s: float | None,
    priority: str,
    no_cache: bool,
    no_semantic_cache: bool,
    max_prompt_tokens: int | None,
    schema_file: str | None,
    tools_file: str | None,
    tool_choice: str | None,
    confidence: bool,
    stream: bool,
    as_json: bool,
) -> None:
    """Ask one question. PROMPT may be - to read it from standard input.

    With --tools, the model may answer with function calls instead of text: they are printed as
    `name(arguments)`, and in full with --json."""
    from llm_manager.cli.ask import run_ask

    if prompt == "-":
        prompt = sys.stdin.read()
    prefs: dict[str, Any] = {
        "task": task,
        "model": model,
        "system": system,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "timeout_s": timeout_s,
        "priority": priority,
        "max_prompt_tokens": max_prompt_tokens,
    }
    if no_cache:
        prefs["cache"] = False
    if no_semantic_cache:
        prefs["semantic_cache"] = False
    if no_fallback:
        prefs["fallback"] = False
    if confidence:
        prefs["logprobs"] = True
    if tools_file or tool_choice:
        from llm_manager.cli.ask import tool_prefs

        prefs.update(tool_prefs(tools_file, tool_choice))
    if schema_file:
        from llm_manager.cli.ask import run_schema

        # One call, one JSON document on stdout (| jq): the plain ask below is not run as well.
        _exit(asyncio.run(run_schema(obj.manager, prompt, prefs, schema_file, stream=stream)))
        return
    _exit(asyncio.run(run_ask(obj.manager, prompt, prefs, stream=stream, as_json=as_json)))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def models(obj: _Ctx, as_json: bool) -> None:
    """List configured models with provider, context window, price and task positions."""
    from llm_manager.cli.render import models_table, print_json

    with _guard():
        llm = obj.manager()
        infos = llm.models()
        asyncio.run(llm.aclose())
    if as_json:
        print_json([m.model_dump(mode="json") for m in infos])
    else:
        models_table(infos, llm.settings)


@cli.command()
@click.option("--timeout", "timeout_s", type=float, default=5.0, show_default=True, help="Seconds per probe.")
@click.option(
    "--warmup",
    is_flag=True,
    help="First open a connection to every endpoint (and send the one-token requests of models with "
    "`warmup: request`), and show what each took.",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def health(obj: _Ctx, timeout_s: float, warmup: bool, as_json: bool) -> None:
    """Probe every model's endpoint (no tokens spent); exit 1 if any is down."""
    from llm_manager.cli.render import health_table, print_json

    async def probe() -> tuple[list[Any], dict[str, Any], list[Any]]:
        async with obj.manager() as llm:
            warmed = await llm.warmup(timeout_s=timeout_s) if warmup else []
            return await llm.health(timeout_s), await llm.status(), warmed

    with _guard():
        results, status, warmed = asyncio.run(probe())
    warm = {w.name: w for w in warmed}
    if as_json:
        print_json(
            [
                {
                    **r.model_dump(mode="json"),
                    **_resilience(status, r.name),
                    **({"warmup": warm[r.name].model_dump(mode="json")} if r.name in warm else {}),
                }
                for r in results
            ]
        )
    else:
        if warmed:
            from llm_manager.cli.warmup_view import warmup_table

            warmup_table(warmed)
        health_table(results, status)
    _exit(0 if all(r.ok for r in results) and all(w.ok for w in warmed) else 1)


def _resilience(status: dict[str, Any], name: str) -> dict[str, Any]:
    d = status["deployments"][name]
    return {"breakers": d["breakers"], "keys": d["keys"], "limits": d["limits"]}


@cli.command()
@click.pass_obj
def status(obj: _Ctx) -> None:
    """Print breakers (with cooldown left), rate-limit room, key pools and cache as JSON.

    With `state.redis_url` set this is the shared state every replica sees; otherwise it is this process's
    (fresh) view.
    """
    from llm_manager.cli.render import print_json

    async def read() -> dict[str, Any]:
        async with obj.manager() as llm:
            return await llm.status()

    with _guard():
        print_json(asyncio.run(read()))


@cli.command()
@click.option("--cid", help="Continue this conversation.")
@click.option("--continue", "resume", is_flag=True, help="Continue the most recent conversation.")
@click.option("--system", "-s", help="System prompt of a new conversation.")
@click.option("--task", "-t", default="general", show_default=True, help=TASK_HELP)
@click.option("--model", "-m", help="Preferred model (the task chain stays as fallback).")
@click.pass_obj
def chat(obj: _Ctx, cid: str | None, resume: bool, system: str | None, task: str, model: str | None) -> None:
    """An interactive, streamed conversation, stored so it can be continued later."""
    from llm_manager.cli.chat import run_chat

    _exit(asyncio.run(run_chat(obj.manager, cid, resume, system, {"task": task, "model": model})))


@cli.command()
@click.argument("prompt")
@click.option("--model", "-m", "models", multiple=True, required=True, help="A model to ask (repeat the option).")
@click.option("--first", is_flag=True, help="Return only the first good answer and cancel the rest.")
@click.option(
    "--most-confident", is_flag=True, help="Return only the answer of highest confidence (asks for log probabilities)."
)
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), help="Seconds per model.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def compare(
    obj: _Ctx,
    prompt: str,
    models: tuple[str, ...],
    first: bool,
    most_confident: bool,
    timeout_s: float | None,
    as_json: bool,
) -> None:
    """Ask several models the same question in parallel and show every answer (or error) side by side."""
    from llm_manager.cli.ask import run_compare

    if first and most_confident:
        raise click.UsageError("--first and --most-confident pick differently: give one of them")
    mode: Literal["all", "first", "confident"] = "first" if first else "confident" if most_confident else "all"
    _exit(asyncio.run(run_compare(obj.manager, prompt, list(models), mode=mode, timeout_s=timeout_s, as_json=as_json)))


cli.add_command(batch)
cli.add_command(serve)
cli.add_command(config_group)
cli.add_command(conversations_group)
cli.add_command(keys_group)
cli.add_command(costs)
cli.add_command(replay)
cli.add_command(demo)
cli.add_command(embed)
cli.add_command(count_tokens)
cli.add_command(optimize)
add_config_option(cli)  # after every command is added: `llm-manager ask "hi" --config f.yaml` works too


class _guard:
    """Turn our errors into a clean message and exit code instead of a traceback."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> Literal[False]:
        from llm_manager.errors import ConfigError, LLMManagerError

        if isinstance(exc, LLMManagerError):
            click.echo(f"error: {exc.message}", err=True)
            _exit(2 if isinstance(exc, ConfigError) else 1)
        return False


def _exit(code: int) -> None:
    if code:
        sys.exit(code)


def main() -> None:
    """Console entry point."""
    cli(prog_name="llm-manager")


if __name__ == "__main__":  # pragma: no cover
    main()
