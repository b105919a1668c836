"""``llm-manager chat`` and ``llm-manager conversations``: stored conversations in the terminal."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager

HELP_LINE = "Type a message and press Enter. /new starts a new conversation, /id shows its id, /exit (or Ctrl-D) quits."


async def run_chat(make: Any, cid: str | None, resume: bool, system: str | None, prefs: dict[str, Any]) -> int:
    """The interactive loop; returns the exit code."""
    from llm_manager.errors import LLMManagerError

    async with make() as llm:
        llm.settings.chain(prefs["task"])  # an unknown --task is said now, not after the first message is typed
        conversation = await _pick(llm, cid, resume, system)
        click.secho(f"conversation {conversation} — {HELP_LINE}", err=True, dim=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, _read_line)
            if line is None or line.strip() in ("/exit", "/quit"):
                return 0
            text = line.strip()
            if not text:
                continue
            if text == "/new":
                conversation = await llm.start_conversation(system)
                click.secho(f"new conversation {conversation}", err=True, dim=True)
                continue
            if text == "/id":
                click.echo(conversation)
                continue
            try:
                await _turn(llm, conversation, text, prefs)
            except LLMManagerError as exc:
                click.secho(f"error [{exc.code}]: {exc.message}", err=True, fg="red")


async def _pick(llm: LLMManager, cid: str | None, resume: bool, system: str | None) -> str:
    if cid:
        await llm.get_conversation(cid)  # fails clearly when it does not exist
        return cid
    if resume:
        recent = await llm.list_conversations(limit=1)
        if recent:
            return recent[0].id
    return await llm.start_conversation(system)


async def _turn(llm: LLMManager, conversation: str, text: str, prefs: dict[str, Any]) -> None:
    from llm_manager.cli.calls import echo_stream

    resp = await echo_stream(llm.stream_conversation(conversation, text, **prefs))
    if resp is not None:
        note = f"{resp.deployment} · {resp.usage.prompt_tokens}+{resp.usage.completion_tokens} tokens"
        if resp.metadata.trimmed_messages:
            note += f" · {resp.metadata.trimmed_messages} oldest messages left out to fit the context window"
        if resp.metadata.simulated:
            note += " · SIMULATED"
        click.secho(f"— {note}", err=True, dim=True)


def _read_line() -> str | None:
    try:
        return input("> " if sys.stdin.isatty() else "")
    except EOFError:
        return None


@click.group("conversations")
def conversations_group() -> None:
    """List, show, fork or delete stored conversations."""


@conversations_group.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def list_cmd(obj: Any, limit: int, as_json: bool) -> None:
    """Most recently updated conversations first."""
    from llm_manager.cli.render import print_json

    async def go() -> list[Any]:
        async with _manager(obj) as llm:
            return await llm.list_conversations(limit=limit)

    rows = asyncio.run(go())
    if as_json:
        print_json(rows)  # dataclasses and datetimes serialise natively
        return
    for r in rows:
        preview = (r.last_message_preview or "").replace("\n", " ")[:60]
        click.echo(f"{r.id}  {r.updated_at:%Y-%m-%d %H:%M}  {r.message_count:>3} msgs  {r.title or ''}  {preview}")


@conversations_group.command("show")
@click.argument("conversation_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def show_cmd(obj: Any, conversation_id: str, as_json: bool) -> None:
    """Every message of one conversation, oldest first."""
    from llm_manager.cli.render import print_json

    async def go() -> Any:
        async with _manager(obj) as llm:
            return await llm.get_conversation(conversation_id)

    conv = _or_exit(go)
    if as_json:
        print_json(conv)
        return
    exchange = 0
    for m in conv.messages:
        if m.role == "user":
            exchange += 1
            click.secho(f"── exchange {exchange} (fork --at {exchange} keeps up to here) ──", dim=True)
        click.secho(f"[{m.role}]", bold=True)
        click.echo(m.content)


@conversations_group.command("fork")
@click.argument("conversation_id")
@click.option(
    "--at",
    type=click.IntRange(min=1),
    help="Keep the first N exchanges (a question and its whole answer each, as numbered by `show`); default: all.",
)
@click.pass_obj
def fork_cmd(obj: Any, conversation_id: str, at: int | None) -> None:
    """Start a new conversation from (a prefix of) an existing one; prints the new id.

    A fork always ends after a whole exchange, never on a question still waiting for its answer: the next
    message sent to it is answered in the context of the first N exchanges."""

    async def go() -> str:
        async with _manager(obj) as llm:
            if at is None:
                return await llm.fork_conversation(conversation_id)
            conv = await llm.get_conversation(conversation_id)
            return await llm.fork_conversation(conversation_id, _end_of_exchange(conv.messages, at))

    click.echo(_or_exit(go))


def _end_of_exchange(messages: Any, n: int) -> int:
    """The index of the last message of exchange ``n`` (1-based): the message before the next user question (a
    tool call's results and the final answer belong to the exchange), or the conversation's last message."""
    starts = [i for i, m in enumerate(messages) if m.role == "user"]
    if n > len(starts):
        raise click.BadParameter(f"the conversation has {len(starts)} exchange(s), not {n}", param_hint="--at")
    return starts[n] - 1 if n < len(starts) else len(messages) - 1


@conversations_group.command("delete")
@click.argument("conversation_id")
@click.pass_obj
def delete_cmd(obj: Any, conversation_id: str) -> None:
    """Delete one conversation."""

    async def go() -> bool:
        async with _manager(obj) as llm:
            return await llm.delete_conversation(conversation_id)

    if not asyncio.run(go()):
        click.echo(f"error: no conversation {conversation_id!r}", err=True)
        sys.exit(1)


def _manager(obj: Any) -> LLMManager:
    """The manager for the CLI's --config (typed: click hands commands an untyped context object). These commands
    call no model, so no SIMULATED warning."""
    manager: LLMManager = obj.manager(calls_model=False)
    return manager


def _or_exit(go: Any) -> Any:
    from llm_manager.errors import LLMManagerError

    try:
        return asyncio.run(go())
    except LLMManagerError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
