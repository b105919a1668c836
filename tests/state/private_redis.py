"""A private ``redis-server`` on a free port, for tests that stop, hang or restart Redis.

The shared Redis on 6379 is never touched: other suites use it at the same moment. This one is started by the
test, stopped (``stop``), hung (``hang``: SIGSTOP, the process keeps its socket but answers nothing) and brought
back (``resume`` / ``start`` on the same port), and always killed at the end. Where ``redis-server`` is missing
the test skips locally and fails under ``CI=true``, like :func:`tests.state.conftest.require_redis`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.processes import free_port


class PrivateRedis:
    """One ``redis-server`` process of the test's own (no persistence: a restart forgets everything)."""

    def __init__(self, workdir: Path, password: str | None = None) -> None:
        self.port = free_port()
        self.url = f"redis://{f':{password}@' if password else ''}127.0.0.1:{self.port}/0"
        self._dir = workdir
        self._password = password
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self._proc is None, "already running"
        self._proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--dir", str(self._dir), "--logfile", str(self._dir / "redis.log")]
            + (["--requirepass", self._password] if self._password else []),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.answers():
                return
            time.sleep(0.02)
        raise AssertionError(f"private redis-server on port {self.port} did not start")

    def answers(self, timeout_s: float = 0.3) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout_s) as sock:
                if self._password:
                    sock.sendall(f"AUTH {self._password}\r\n".encode())
                    if not sock.recv(64).startswith(b"+OK"):
                        return False
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Kill it (connections are refused from now on)."""
        if self._proc is not None:
            if self._proc.poll() is None:
                os.kill(self._proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGKILL's aftermath
                self._proc.kill()
            self._proc.wait(10)
            self._proc = None

    def restart(self) -> None:
        """Stop, then start empty on the same port (what a Redis without persistence does after a crash)."""
        self.stop()
        self.start()

    def hang(self) -> None:
        """SIGSTOP: connections still open, commands never answered."""
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGCONT)


def require_redis_server() -> str:
    path = shutil.which("redis-server")
    if path:
        return path
    msg = "redis-server is not installed (Debian: apt-get install redis-server)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{msg} (CI=true: these tests must run, not skip)", pytrace=False)
    pytest.skip(msg)


@contextmanager
def private_redis(workdir: Path, password: str | None = None) -> Iterator[PrivateRedis]:
    """A started :class:`PrivateRedis` (asking for ``password`` when given), killed on exit whatever state the test
    left it in."""
    require_redis_server()
    server = PrivateRedis(workdir, password)
    server.start()
    try:
        yield server
    finally:
        server.stop()
