"""Start-up cost: wall time of fresh interpreters that import one library (or run the CLI's ``--help``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.stats import median


@dataclass
class Command:
    """One start-up to time."""

    label: str
    argv: list[str]
    times_s: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median_s(self) -> float | None:
        return median(self.times_s) if self.times_s and self.error is None else None


def commands(python: str, *, with_litellm: bool) -> list[Command]:
    """What to time. ``python -c pass`` is the floor every other row includes."""
    cli = Path(python).parent / "llm-manager"
    out = [
        Command("python -c pass (floor)", [python, "-c", "pass"]),
        Command("import llm_manager", [python, "-c", "import llm_manager"]),
        # What a program that actually uses the library pays (the package root imports the manager lazily).
        Command("from llm_manager import LLMManager", [python, "-c", "from llm_manager import LLMManager"]),
        Command("llm-manager --help", [str(cli), "--help"]),
        Command("import openai", [python, "-c", "import openai"]),
    ]
    if with_litellm:
        out.append(Command("import litellm", [python, "-c", "import litellm"]))
    if not cli.exists():
        out[3].error = f"{cli} not found (pip install -e .)"
    return out


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # LiteLLM otherwise fetches its price table from GitHub during import: that would time the network, not LiteLLM
    # (and this machine has none). The bundled copy is what it falls back to anyway.
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    for var in ("PYTHONPROFILEIMPORTTIME", "PYTHONDEVMODE", "PYTHONTRACEMALLOC"):
        env.pop(var, None)  # any of these would slow every start-up
    return env


def _run_once(cmd: Command, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd.argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["(no stderr)"]
        raise RuntimeError(f"exit {proc.returncode}: {tail[0]}")
    return elapsed


def measure(runs: int, *, with_litellm: bool) -> list[Command]:
    """Median wall time of ``runs`` fresh processes per command, interleaved, after one untimed run each.

    The untimed run fills the OS page cache and writes any missing ``.pyc`` files, so "cold" means a fresh
    interpreter (nothing imported yet), not a cold disk: that is the start-up a user sees on every run.
    """
    env = _env()
    cmds = commands(sys.executable, with_litellm=with_litellm)
    for round_no in range(runs + 1):
        for cmd in cmds:
            if cmd.error is not None:
                continue
            try:
                elapsed = _run_once(cmd, env)
            except RuntimeError as exc:
                cmd.error = str(exc)
                continue
            if round_no:
                cmd.times_s.append(elapsed)
    return cmds
