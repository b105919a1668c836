"""``llm-manager batch``: many requests from a JSONL file, with bounded concurrency and a progress bar.

Each input line is a JSON object of :class:`~llm_manager.types.Request` fields (``prompt`` or ``messages``, plus
``task``, ``model``, ``max_tokens`` …) and may carry an ``id`` to match answers to questions (default: its line
number). Each output line is ``{"id", "ok", "response"}`` or ``{"id", "ok": false, "error"}``, written and flushed
as soon as that request ends (so in completion order): paid answers are on disk the moment they arrive. Ctrl-C
stops at once (exit 130) and keeps every finished line; ``--resume`` then runs only the ids the output lacks.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import IO, TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager

INTERRUPTED = 130  # the shell's code for a process ended by SIGINT


@click.command()
@click.argument("input_file", type=click.File("r"))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="Where to write results (default stdout); each line is written as its request ends.",
)
@click.option(
    "--concurrency", "-j", type=click.IntRange(1, 256), default=8, show_default=True, help="Requests in flight at once."
)
@click.option("--task", "-t", help="Default task for lines that name none.")
@click.option(
    "--resume",
    is_flag=True,
    help="Keep the results already in --output and run only the ids it lacks (after Ctrl-C or a crash).",
)
@click.pass_obj
def batch(obj: Any, input_file: IO[str], output: str, concurrency: int, task: str | None, resume: bool) -> None:
    """Run every request of a JSONL file (one JSON object per line) and write one JSON result per line."""
    items = _read_items(input_file, task)
    done: set[str] = set()
    if resume:
        if output == "-":
            raise click.UsageError("--resume needs --output FILE (the results to keep and complete)")
        done = _finished_ids(output)
    todo = [(ident, fields) for ident, fields in items if ident not in done]
    llm: LLMManager = obj.manager()
    if task:
        llm.settings.chain(task)  # an unknown --task: one clear error listing the known ones, not one per line
    with _open_output(output, append=resume) as out:
        counts = {"ok": 0, "failed": 0}
        try:
            asyncio.run(_run(llm, todo, concurrency, out, counts, already=len(items) - len(todo)))
        except KeyboardInterrupt:
            written = len(done) + counts["ok"] + counts["failed"]
            click.secho(
                f"— interrupted: {written} of {len(items)} results kept in {_name(output)}; "
                f"run again with --resume to finish",
                err=True,
            )
            sys.exit(INTERRUPTED)
    skipped = f", {len(done)} already done" if resume else ""
    click.secho(f"— {counts['ok']} ok, {counts['failed']} failed{skipped}", err=True, dim=True)
    if counts["failed"]:
        sys.exit(1)


def _read_items(input_file: IO[str], task: str | None) -> list[tuple[str, dict[str, Any]]]:
    from llm_manager import _json

    items: list[tuple[str, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(input_file, 1):
        if not line.strip():
            continue
        try:
            data = _json.loads(line)
        except ValueError as exc:
            raise click.BadParameter(f"line {n} is not JSON: {exc}", param_hint="INPUT_FILE") from None
        if not isinstance(data, dict):
            raise click.BadParameter(f"line {n} must be a JSON object", param_hint="INPUT_FILE")
        ident = str(data.pop("id", n))
        if ident in seen:  # --resume matches results to requests by id: two requests cannot share one
            raise click.BadParameter(
                f"line {n} repeats the id {ident!r} of line {seen[ident]}; give each line its own id",
                param_hint="INPUT_FILE",
            )
        seen[ident] = n
        if task and "task" not in data:
            data["task"] = task
        items.append((ident, data))
    return items


def _finished_ids(path: str) -> set[str]:
    """The ids an earlier run wrote to ``path``; a last line cut short by a crash is removed (it is re-run)."""
    from llm_manager import _json

    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        return set()
    keep = text if text.endswith(b"\n") or not text else text[: text.rfind(b"\n") + 1]
    if len(keep) != len(text):
        with open(path, "r+b") as f:
            f.truncate(len(keep))
    ids: set[str] = set()
    for n, line in enumerate(keep.splitlines(), 1):
        if not line.strip():
            continue
        try:
            ids.add(str(_json.loads(line)["id"]))
        except (ValueError, KeyError, TypeError):
            raise click.BadParameter(
                f"{path} line {n} is not a batch result; --resume needs the output of an earlier batch run",
                param_hint="--output",
            ) from None
    return ids


class _open_output:
    """The output stream: stdout, or the file (appended to with ``--resume``, else replaced)."""

    def __init__(self, path: str, *, append: bool) -> None:
        self.path, self.append = path, append
        self.stream: IO[str] | None = None

    def __enter__(self) -> IO[str]:
        if self.path == "-":
            return sys.stdout
        self.stream = open(self.path, "a" if self.append else "w", encoding="utf-8")
        return self.stream

    def __exit__(self, *exc: object) -> None:
        if self.stream is not None:
            self.stream.close()


def _name(path: str) -> str:
    return "standard output" if path == "-" else os.fspath(path)


async def _run(
    llm: LLMManager,
    items: list[tuple[str, dict[str, Any]]],
    concurrency: int,
    out: IO[str],
    counts: dict[str, int],
    *,
    already: int,
) -> None:
    from rich.progress import Progress

    from llm_manager import _json
    from llm_manager.errors import LLMManagerError

    gate = asyncio.Semaphore(concurrency)

    def write(line: bytes, ok: bool) -> None:
        # One write and a flush per result: a line is whole on disk before the next request's answer is taken.
        out.write(line.decode() + "\n")
        out.flush()
        counts["ok" if ok else "failed"] += 1

    async with llm:
        with Progress(transient=True, console=_stderr_console()) as progress:
            bar = progress.add_task("requests", total=already + len(items), completed=already)

            async def one(ident: str, fields: dict[str, Any]) -> None:
                async with gate:
                    try:
                        resp = await llm.generate(llm.request(**fields))
                        write(_json.dumps({"id": ident, "ok": True, "response": resp.model_dump(mode="json")}), True)
                    except LLMManagerError as exc:
                        write(_json.dumps({"id": ident, "ok": False, "error": exc.to_dict()}), False)
                    progress.advance(bar)

            await asyncio.gather(*(one(ident, f) for ident, f in items))


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)
