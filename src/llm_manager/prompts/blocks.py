"""A prompt's text split into blocks: prose, which may be tidied and cut, and code or JSON, which never is.

Code is a fenced block (```` ``` ```` or ``~~~``, closed by the same fence or the end of the text) or an indented
one (lines starting with four spaces or a tab: Markdown's indented code, and most pasted source). JSON is a value
that starts a line with ``{`` or ``[``, parses as JSON, and ends its line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Block", "BlockKind", "compact_json", "split_blocks", "tidy_prose"]

BlockKind = Literal["text", "code", "json"]

_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_INDENTED = re.compile(r"^(?: {4}|\t)\S")
_DECODER = json.JSONDecoder()
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


@dataclass(frozen=True, slots=True)
class Block:
    """A run of lines of one kind; joining every block's ``text`` gives the original back."""

    kind: BlockKind
    text: str


def split_blocks(text: str) -> list[Block]:
    """Split ``text`` into prose, code and JSON blocks, in order."""
    lines = text.splitlines(keepends=True)
    blocks: list[Block] = []
    prose: list[str] = []
    i, offset = 0, 0

    def flush() -> None:
        if prose:
            blocks.append(Block("text", "".join(prose)))
            prose.clear()

    while i < len(lines):
        line = lines[i]
        end = _code_end(lines, i)
        kind: BlockKind = "code"
        if end is None:
            end, kind = _json_end(text, lines, i, offset), "json"
        if end is None:
            prose.append(line)
            i, offset = i + 1, offset + len(line)
            continue
        flush()
        chunk = "".join(lines[i:end])
        blocks.append(Block(kind, chunk))
        i, offset = end, offset + len(chunk)
    flush()
    return blocks


def _code_end(lines: list[str], i: int) -> int | None:
    """The line index after the code block starting at ``i``, or ``None`` when none starts there."""
    fence = _FENCE.match(lines[i])
    if fence:
        mark = fence.group(1)
        for j in range(i + 1, len(lines)):
            closing = _FENCE.match(lines[j])
            if closing and closing.group(1)[0] == mark[0] and len(closing.group(1)) >= len(mark):
                return j + 1
        return len(lines)  # an unclosed fence runs to the end, as Markdown renders it
    if _INDENTED.match(lines[i]):
        j = i + 1
        while j < len(lines) and (_INDENTED.match(lines[j]) or not lines[j].strip()):
            j += 1
        while j > i + 1 and not lines[j - 1].strip():
            j -= 1  # trailing blank lines belong to the prose after
        return j
    return None


def _json_end(text: str, lines: list[str], i: int, offset: int) -> int | None:
    """The line index after a JSON value starting line ``i`` (at character ``offset`` of ``text``)."""
    stripped = lines[i].lstrip()
    if not stripped.startswith(("{", "[")):
        return None
    start = offset + len(lines[i]) - len(stripped)
    try:
        _, stop = _DECODER.raw_decode(text, start)
    except ValueError:
        return None
    j, reached = i, offset
    while j < len(lines) and reached + len(lines[j]) < stop:
        reached += len(lines[j])
        j += 1
    if j >= len(lines) or lines[j][stop - reached :].strip():
        return None  # text follows the value on its last line: prose that happens to start with a bracket
    return j + 1


def tidy_prose(text: str) -> str:
    """Collapse runs of spaces inside lines, drop trailing spaces and keep at most one blank line in a row;
    leading indentation (list structure) stays."""
    out = []
    for line in text.split("\n"):
        body = line.lstrip(" \t")
        indent = line[: len(line) - len(body)]
        out.append(indent + _SPACES.sub(" ", body).rstrip())
    return _BLANK_RUNS.sub("\n\n", "\n".join(out))


def compact_json(text: str) -> str:
    """``text`` (a JSON block) without the whitespace outside its strings; values and key order are untouched.
    The block's final newline stays."""
    out: list[str] = []
    in_string = escaped = False
    body = text.rstrip("\n")
    for ch in body:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch not in " \t\r\n":
            out.append(ch)
    return "".join(out) + text[len(body) :][:1]
