"""The client compatibility suite: real clients drive ``llm-manager serve`` over HTTP.

One gateway process (the real ``llm-manager serve`` command, as users run it) routes to fake upstreams that record
every body they receive (:mod:`compat.upstream`). Each test is one client × one feature, marked
``@pytest.mark.client(name, feature)``; at the end of a full run the outcomes form the table of
``docs/compatibility.md``, and the run fails when that page says something the run did not show
(``COMPAT_WRITE=1`` rewrites it instead).

Runs in its own virtualenv (``make compat``): some clients pin versions the main test environment cannot take.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.processes import start_serve, stop

from compat import matrix
from compat.upstream import Upstreams, running_upstreams

ROOT = Path(__file__).resolve().parents[1]
# No test reaches a real provider; clients that phone home for price tables or telemetry are told not to.
os.environ["LLM_MANAGER_LOOPBACK_ONLY"] = "1"
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "false")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "client(name, feature): the client and the feature a test exercises")


@dataclass
class Gateway:
    """``llm-manager serve`` running as a child process."""

    url: str
    """Base URL without ``/v1``."""
    upstreams: Upstreams
    log: Path

    @property
    def v1(self) -> str:
        return self.url + "/v1"


def gateway_config(up: Upstreams, store: Path) -> dict[str, Any]:
    return {
        "models": {
            "gpt": {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "base_url": up.openai.url + "/v1",
                "api_key": "sk-compat-openai",
                "aliases": ["fast"],
            },
            "claude": {
                "provider": "anthropic",
                "model": "claude-sonnet-4-5",
                "base_url": up.anthropic.url,
                "api_key": "sk-ant-compat",
                "aliases": ["smart"],
            },
            "embed": {
                "provider": "openai",
                "model": "text-embedding-3-small",
                "base_url": up.openai.url + "/v1",
                "api_key": "sk-compat-openai",
                "dimensions": 256,
            },
        },
        "routing": {"tasks": {"general": ["gpt", "claude"], "analysis": ["claude", "gpt"]}, "max_retries": 0},
        "cache": {"enabled": False},
        "store": {"url": f"sqlite:///{store}"},
    }


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gateway")
    with running_upstreams() as up:
        cfg = tmp / "llm-manager.yaml"
        cfg.write_text(json.dumps(gateway_config(up, tmp / "store.db")))  # JSON is YAML
        log = tmp / "serve.log"
        proc, port = start_serve(cfg, log, within_s=30)
        try:
            yield Gateway(f"http://127.0.0.1:{port}", up, log)
        finally:
            stop(proc, 15)


# -- the compatibility table ------------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    marker = item.get_closest_marker("client")
    params = getattr(item, "callspec", None)
    if marker is not None:
        cell: tuple[str, str] | None = (marker.args[0], marker.args[1])
    elif params is not None and {"client", "feature"} <= params.params.keys():
        cell = (params.params["client"], params.params["feature"])
    else:
        cell = None
    if cell is not None and (report.when == "call" or (report.when == "setup" and not report.passed)):
        matrix.record(item.config, *cell, report)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # The README shows the same table as the page: both are checked against (or rewritten from) this run.
    pages = (ROOT / "docs" / "compatibility.md", ROOT / "README.md")
    problem = "\n".join(p for page in pages if (p := matrix.finish(session.config, page, full_run=_full_run(session))))
    if problem:
        session.config.stash[matrix.PROBLEM] = problem
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    problem = config.stash.get(matrix.PROBLEM, None)
    if problem:
        terminalreporter.write_line(problem, red=True)


def _full_run(session: pytest.Session) -> bool:
    """Only a run of every test may judge the page (a ``-k`` or single-file run sees part of the table)."""
    opts = session.config.option
    return not (opts.keyword or opts.markexpr or opts.lf or opts.deselect) and all(
        Path(a).resolve() == Path(__file__).parent for a in session.config.args
    )
