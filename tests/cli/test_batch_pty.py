"""``llm-manager batch`` on a pseudo-terminal: Ctrl-C at mid-run exits 130 and keeps every finished result on disk;
``--resume`` runs only what is missing. The progress bar is drawn on the terminal while it runs."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pexpect
import yaml

N = 24
CONFIG = {
    # Each answer takes 0.6 s and two run at once: 24 take ~7 s, so Ctrl-C (sent after the fourth result) lands
    # mid-run even when a loaded machine wakes the test seconds late.
    "models": {"steady": {"provider": "simulated", "family": "gpt", "simulate": {"latency_ms": 600}}},
    "cache": {"enabled": False},
}


def _spawn(tmp_path: Path, *args: str) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if k not in ("LLM_MANAGER_CONFIG",)}
    env.update({"COLUMNS": "100", "TERM": "xterm"})
    return pexpect.spawn(
        sys.executable,
        ["-m", "llm_manager.cli.main", "--config", str(tmp_path / "c.yaml"), "batch", *args],
        cwd=str(tmp_path),
        env=env,
        timeout=60,
        dimensions=(24, 100),
        # A shell's background job (CI runners start commands that way) ignores SIGINT, and the child would inherit
        # that: give it the default a terminal user has, so Ctrl-C interrupts it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_ctrl_c_keeps_finished_results_and_resume_completes(tmp_path: Path) -> None:
    config = {**CONFIG, "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"question {i}"}) + "\n" for i in range(N)))
    out = tmp_path / "out.jsonl"

    child = _spawn(tmp_path, str(src), "-o", str(out), "-j", "2")
    child.expect("requests")  # the progress bar is on the terminal
    deadline = time.monotonic() + 30
    while not (out.exists() and len(out.read_text().splitlines()) >= 4):
        assert time.monotonic() < deadline, "no results written while the batch runs"
        time.sleep(0.05)
    child.sendintr()  # Ctrl-C
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130, (child.exitstatus, child.signalstatus, child.before)
    assert b"run again with --resume" in (child.before or b"")
    kept = _lines(out)  # every line whole and parseable
    assert 4 <= len(kept) < N, len(kept)
    assert all(r["ok"] for r in kept)
    first_ids = [str(r["id"]) for r in kept]

    child = _spawn(tmp_path, str(src), "-o", str(out), "-j", "4", "--resume")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert b"already done" in (child.before or b"")
    final = _lines(out)
    ids = [str(r["id"]) for r in final]
    assert ids[: len(first_ids)] == first_ids, "the first run's results are kept as they were"
    assert sorted(ids) == sorted(f"q{i}" for i in range(N)), "each id once: none lost, none run twice"
