"""Real processes for tests: a free port, ``llm-manager`` commands and ``serve`` as child processes, stopping a
child, and a worker killed with ``kill -9`` under load. A private ``redis-server`` is in tests/state/private_redis.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

__all__ = ["cli_process", "free_port", "kill_when_loaded", "serve_process", "start_serve", "stop"]

_CLI = [sys.executable, "-m", "llm_manager.cli.main"]
_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    # The child reads its config from --config only, and its store from that config.
    env = {k: v for k, v in os.environ.items() if k not in ("LLM_MANAGER_CONFIG", "LLM_MANAGER_STORE_URL")}
    return {**env, **(extra or {})}


def stop(proc: subprocess.Popen[Any], timeout_s: float) -> None:
    """SIGTERM, and SIGKILL if it has not exited within ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def cli_process(config: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``llm-manager --config CONFIG ARGS…`` started in the background, stdout and stderr piped."""
    cmd = [*_CLI, "--config", str(config), *args]
    return subprocess.Popen(cmd, env=_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def start_serve(
    config: Path | None,
    log: Path,
    *flags: str,
    verbose: bool = False,
    env: Mapping[str, str] | None = None,
    within_s: float = 20.0,
) -> tuple[subprocess.Popen[bytes], int]:
    """``llm-manager serve`` on a free port, its stderr in ``log``; returns the process and its port once it handles
    signals and ``/health`` answers (killed if it does not come up ``within_s``)."""
    port = free_port()
    cmd = [*_CLI, *(["--config", str(config)] if config else []), *(["-v"] if verbose else [])]
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [*cmd, "serve", "--port", str(port), *flags], env=_env(env), stdout=subprocess.DEVNULL, stderr=out
        )
    try:
        deadline = time.monotonic() + within_s
        while True:
            said = log.read_text()
            assert proc.poll() is None, f"serve exited early: {said}"
            assert time.monotonic() < deadline, f"serve did not come up within {within_s:g} s: {said}"
            # The banner is printed once the signal handlers are installed: without it, a /health answer could come
            # from another process that grabbed the same free port meanwhile (other suites run on this machine at
            # once), and a SIGTERM would reach this one before it handles signals.
            if f"gateway on http://127.0.0.1:{port}/" in said:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        return proc, port
                except httpx.TransportError:
                    pass
            time.sleep(0.05)
    except BaseException:
        proc.kill()
        proc.wait(5)
        raise


@contextmanager
def serve_process(
    config: Path, log: Path, *flags: str, verbose: bool = False, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """:func:`start_serve` as a context: yields the base URL, and stops the gateway with SIGTERM afterwards (killed if
    it has not exited within 15 s)."""
    proc, port = start_serve(config, log, *flags, verbose=verbose, env=env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc, 15)


def kill_when_loaded(command: Sequence[str], run_s: float) -> tuple[str, str, float]:
    """Start ``command`` in the repository root, wait for its ``ready`` line, let it work ``run_s`` seconds, then
    ``kill -9`` it; returns its standard output, its standard error and the time of the kill."""
    with tempfile.TemporaryFile("w+") as err:  # not a pipe: a worker that logs much never blocks on a full one

        def said() -> str:
            err.seek(0)
            return err.read()

        proc = subprocess.Popen(command, cwd=_ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first == "ready\n", first + said()
            time.sleep(run_s)
            assert proc.poll() is None, said()
            killed_at = time.time()
            os.kill(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL
        return out, said(), killed_at
