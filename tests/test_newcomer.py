"""Tried as a new user: the README's quick-start snippets, exactly as printed, on simulated models.

The code blocks are read from README.md itself, so the README cannot drift from the code: the library and sync
facade snippets run as written (the library one has a top-level ``async with``, as in a notebook or
``python -m asyncio``: compiled with top-level await allowed), each in a fresh interpreter that must exit on its
own within the time limit; every line of the CLI block runs in a shell. The working directory holds what a
newcomer would have made by then: an ``llm-manager.yaml`` (the example config's models, on the simulated
provider, since a newcomer has no key yet) and the files the lines name (prompt.txt, schema.json …).

The CLI block uses a little notation, applied here as a reader would: ``[...]`` is optional (left out), and
``a|b|c`` is a choice (its ``list`` form is run, else its first). Lines that serve or chat forever are named in
``LONG_RUNNING`` (tested elsewhere); that they are still in the README is checked too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent
TIMEOUT_S = 90  # a snippet still running after this hangs (each takes a few seconds on a loaded 2-core machine)

CONFIG = """\
# the example config's models, on the simulated provider (a newcomer has no key yet)
models:
  gpt-4o: {provider: simulated, family: gpt}
  claude-sonnet: {provider: simulated, family: claude}
  local-llama: {provider: simulated, family: llama}
store: {url: "sqlite:///STORE"}
"""
FILES = {
    "prompt.txt": "What changed after the deploy?\n",
    "schema.json": json.dumps({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
    "tools.json": json.dumps(
        [{"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {}}}]
    ),
    "requests.jsonl": '{"id": "a", "prompt": "Summarise this", "task": "general"}\n{"prompt": "hello"}\n',
}
LONG_RUNNING = {
    "llm-manager chat": "interactive: tests/cli (chat) and tests/conversations",
    "llm-manager serve": "runs until stopped: tests/cli/test_serve_*.py and tests/server",
}

RUNNER = """\
import ast, asyncio, sys
source = open(sys.argv[1], encoding="utf-8").read()
code = compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
result = eval(code, {"__name__": "__main__"})
if asyncio.iscoroutine(result):
    asyncio.run(result)
"""


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _python_snippets() -> list[str]:
    snippets = _blocks(_section("Library quick start"), "python")
    assert len(snippets) >= 2, "the README's library and sync facade snippets"
    return snippets


def _cli_lines() -> list[str]:
    (block,) = _blocks(_section("CLI"), "bash")
    return [line for line in block.splitlines() if line.strip()]


def _as_run(line: str) -> str:
    """A printed CLI line as a reader runs it: comment, optional parts and choices resolved."""
    command = re.sub(r"\s+#\s.*$", "", line)
    command = re.sub(r"\s*\[[^\]]*\]", "", command)
    return re.sub(
        r"\b(\w+(?:\|\w+)+)\b", lambda m: "list" if "list" in m[1].split("|") else m[1].split("|")[0], command
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "llm-manager.yaml").write_text(CONFIG.replace("STORE", str(tmp_path / "store.db")), encoding="utf-8")
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def _env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_MANAGER_CONFIG", "OPENAI", "ANTHROPIC"))}
    keep = {k: v for k, v in keep.items() if not k.startswith(("GEMINI", "GOOGLE", "GROQ", "OPENROUTER", "PORTKEY"))}
    return {**keep, "PATH": f"{BIN}{os.pathsep}{keep.get('PATH', '')}", "COLUMNS": "120"}


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{argv[-1]!r} hangs: still running after {TIMEOUT_S} s; output so far: {exc.stdout!r}")


@pytest.mark.timeout(2 * TIMEOUT_S)
@pytest.mark.parametrize("which", [0, 1], ids=["library", "sync-facade"])
def test_library_snippets_run_as_printed(workdir: Path, which: int) -> None:
    snippet = _python_snippets()[which]
    (workdir / "snippet.py").write_text(snippet, encoding="utf-8")
    (workdir / "runner.py").write_text(RUNNER, encoding="utf-8")
    done = _run([sys.executable, "runner.py", "snippet.py"], workdir)
    assert done.returncode == 0, f"the README's snippet failed:\n{snippet}\n--- stderr:\n{done.stderr}"
    assert "Traceback" not in done.stderr and "[simulated " in done.stdout, done.stdout


def test_cli_notation_is_read_as_a_reader_would() -> None:
    assert _as_run('llm-manager ask "hi" --task analysis [--model NAME] [--stream]  # a note') == (
        'llm-manager ask "hi" --task analysis'
    )
    assert _as_run("llm-manager keys create|list|revoke        # gateway keys") == "llm-manager keys list"
    assert _as_run("llm-manager config check llm-manager.yaml") == "llm-manager config check llm-manager.yaml"


@pytest.mark.timeout(6 * TIMEOUT_S)
def test_cli_lines_run_as_printed(workdir: Path) -> None:
    lines = _cli_lines()
    for prefix in LONG_RUNNING:
        assert any(_as_run(line).startswith(prefix) for line in lines), f"{prefix!r} left the README: update the test"
    runnable = [line for line in lines if not any(_as_run(line).startswith(p) for p in LONG_RUNNING)]
    assert len(runnable) >= 10

    # Each line runs in its own copy (`> llm-manager.yaml` included) with its own store, all copied before any line
    # runs: copying a directory while another line's SQLite opens or closes its -wal/-shm files there races.
    copies = []
    for i, line in enumerate(runnable):
        cwd = workdir.parent / f"{workdir.name}-line{i}"
        shutil.copytree(workdir, cwd, ignore=shutil.ignore_patterns("store.db*"))
        config = cwd / "llm-manager.yaml"
        config.write_text(config.read_text(encoding="utf-8").replace(str(workdir), str(cwd)), encoding="utf-8")
        copies.append((line, cwd))

    def one(line_cwd: tuple[str, Path]) -> tuple[str, subprocess.CompletedProcess[str]]:
        line, cwd = line_cwd
        return line, _run(["bash", "-c", _as_run(line)], cwd)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(one, copies))
    failed = [
        f"{line}\n  ran: {_as_run(line)}\n  exit {done.returncode}: {done.stderr.strip()[-400:]}"
        for line, done in results
        if done.returncode != 0 or "Traceback" in done.stderr
    ]
    assert not failed, "README CLI lines that fail:\n" + "\n".join(failed)
    for line, done in results:
        if "--json" in _as_run(line) or "--schema" in _as_run(line):
            json.loads(done.stdout)  # one JSON document on stdout, as the README promises (`| jq` works)
