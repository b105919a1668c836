"""``llm-manager serve`` under a real SIGTERM / SIGINT: it drains in-flight streams, refuses new connections, exits 0
and only then closes the manager (the ledger row of the drained stream is in the store)."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx

from tests.processes import start_serve

WORDS = 40  # at 20 words a second: a two-second stream


def _config(tmp_path: Path) -> Path:
    db = tmp_path / "store.db"
    cfg = tmp_path / "llm-manager.yaml"
    # The ledger is written every 60 s: its row can only be in the store if the manager was closed (and flushed).
    cfg.write_text(
        f"""
models:
  slow:
    provider: simulated
    family: gpt
    simulate: {{latency_ms: 0, first_token_ms: 0, tokens_per_s: 20, reply: "{" ".join(["word"] * WORDS)}"}}
store:
  url: sqlite:///{db}
ledger:
  flush_interval_s: 60
"""
    )
    return cfg


def _serve(tmp_path: Path, drain_timeout: float) -> tuple[subprocess.Popen[bytes], int]:
    return start_serve(_config(tmp_path), tmp_path / "serve.log", "--drain-timeout", str(drain_timeout))


class _Stream(threading.Thread):
    """A streamed chat completion read to its end in the background."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.events: list[str] = []
        self.request_id = ""
        self.started = threading.Event()

    def run(self) -> None:
        body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        with httpx.stream("POST", f"http://127.0.0.1:{self.port}/v1/chat/completions", json=body, timeout=30) as r:
            self.request_id = r.headers["x-request-id"]
            for line in r.iter_lines():
                if line.startswith("data: "):
                    self.events.append(line[6:])
                    self.started.set()


def _refused(port: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except ConnectionRefusedError:
            return True
        time.sleep(0.02)
    return False


def _ledger(tmp_path: Path, request_id: str) -> list[str]:
    with sqlite3.connect(tmp_path / "store.db") as db:
        rows = db.execute("SELECT status FROM llm_manager_ledger WHERE request_id = ?", (request_id,)).fetchall()
    return [r[0] for r in rows]


def test_sigterm_drains_a_stream_to_done_refuses_new_connections_and_exits_0(tmp_path: Path) -> None:
    proc, port = _serve(tmp_path, drain_timeout=20)
    try:
        stream = _Stream(port)
        stream.start()
        assert stream.started.wait(10)
        proc.send_signal(signal.SIGTERM)
        assert _refused(port, within_s=2), "the listener still accepts connections while draining"
        assert stream.is_alive(), "the stream should still be running when the listener closes"
        stream.join(10)
        assert stream.events[-1] == "[DONE]" and len(stream.events) > WORDS // 2
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _ledger(tmp_path, stream.request_id) == ["ok"]


def test_a_drain_timeout_shorter_than_the_stream_ends_it_with_an_error_event(tmp_path: Path) -> None:
    proc, port = _serve(tmp_path, drain_timeout=0.5)
    try:
        stream = _Stream(port)
        stream.start()
        assert stream.started.wait(10)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)  # Ctrl+C drains the same way
        stream.join(10)
        assert not stream.is_alive() and time.monotonic() - t0 < 2.5
        assert "[DONE]" not in stream.events and '"code":"shutting_down"' in stream.events[-1]
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(_ledger(tmp_path, stream.request_id)) == 1  # the cut stream is accounted for too


def test_an_idle_gateway_stops_at_once(tmp_path: Path) -> None:
    proc, _ = _serve(tmp_path, drain_timeout=30)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0 and time.monotonic() - t0 < 3  # nothing in flight: no waiting for the drain timeout
