"""The systems the gateway benchmark compares, each in a process of its own: how to install, start, reach and
stop them, and how much memory and CPU their process trees use.

- the fake upstream itself ("raw": the floor every other system is measured against);
- our gateway, ``llm-manager serve`` (with a gateway key, as the proxies check one too), with its defaults or under
  another ASGI server (``SERVERS``);
- the LiteLLM proxy (``litellm --config``, a master key, one model pointing at the upstream);
- the Portkey gateway, ``npm install``-ed (pinned) into the git-ignored ``bench/.node`` and run with node; requests
  name the upstream in Portkey's custom-host headers.

Anything that cannot be installed or started raises :class:`Unavailable` with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.run import Upstream
from bench.upstream import MODEL, UNPACED_MODEL

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "bench" / ".node"
PORTKEY_VERSION = "1.15.2"
# Portkey's own lockfile and patches are made for @hono/node-server 1.13.x; newer 1.x releases hand fetch()'s
# immutable headers to the streamed response, and every streamed call then fails ("TypeError: immutable").
HONO_NODE_SERVER = "1.13.5"
BIN = Path(sys.executable).parent
RAW = "raw upstream"
OURS = "llm-manager"
LITELLM = "LiteLLM proxy"
PORTKEY = "Portkey gateway"
PASS_THROUGH = "pass-through floor (uvicorn + aiohttp, no features)"
START_TIMEOUT_S = 120.0


class Unavailable(Exception):
    """A system could not be installed or started; the message says why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Tree:
    """A process and its descendants: resident memory and CPU time of the whole tree (psutil)."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.procs = [self.root]
        self.refreshed = 0.0

    def _members(self) -> list[Any]:
        import psutil

        now = time.monotonic()
        if now - self.refreshed > 2.0:  # listing descendants scans /proc (~3 ms): not on every sample
            try:
                self.procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                self.procs = []
            self.refreshed = now
        return self.procs

    def rss(self) -> int:
        import psutil

        total = 0
        for p in self._members():
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                self.refreshed = 0.0
        return total

    def cpu_s(self) -> float:
        import psutil

        self.refreshed = 0.0
        total = 0.0
        for p in self._members():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total


@dataclass
class System:
    """One system under test: how to reach it, and what was measured."""

    name: str
    group: str  # "main" (the comparison) or "server" (our gateway under one ASGI server)
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    tree: Tree | None = None
    error: str | None = None
    peak_rss: int = 0
    idle_rss: int = 0
    notes: list[str] = field(default_factory=list)
    latency_ns: list[int] = field(default_factory=list)
    ttfc_ns: list[int] = field(default_factory=list)
    total_ns: list[int] = field(default_factory=list)
    unpaced_ttfc_ns: list[int] = field(default_factory=list)  # streams with no gaps: a zero-latency upstream
    unpaced_total_ns: list[int] = field(default_factory=list)
    load: dict[int, dict[str, Any]] = field(default_factory=dict)
    wake_ns: dict[str, list[int]] = field(default_factory=dict)
    """Raw upstream only: latency after each pause (ms, as a string) — what waking idle processes costs here."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def target(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "headers": self.headers}


class MemorySampler:
    """Peak RSS of every running system's process tree, sampled every 50 ms on a thread."""

    def __init__(self) -> None:
        self.systems: list[System] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for s in list(self.systems):
                if s.tree is not None:
                    s.peak_rss = max(s.peak_rss, s.tree.rss())


def post_json(url: str, body: dict[str, Any], headers: dict[str, str], timeout: float = 10.0) -> tuple[int, bytes]:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError as exc:
        return 0, str(exc).encode()


def wait_ready(system: System, log: Path) -> None:
    """Until one real chat completion comes back 200 (the process is up *and* configured), or it gives up."""
    assert system.proc is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    body = {"model": MODEL, "messages": [{"role": "user", "content": "ready?"}]}
    last = ""
    while time.monotonic() < deadline:
        if system.proc.poll() is not None:
            raise Unavailable(f"exited with code {system.proc.returncode}: {tail(log)}")
        status, payload = post_json(system.url, body, system.headers, timeout=5)
        if status == 200:
            return
        last = f"HTTP {status}: {payload[:200]!r}" if status else payload.decode(errors="replace")[:200]
        time.sleep(0.25)
    raise Unavailable(f"not ready after {START_TIMEOUT_S:.0f}s (last: {last}); log: {tail(log)}")


def tail(path: Path, lines: int = 4) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(line.strip()[:200] for line in text[-lines:]) or "(empty log)"


def stop(system: System) -> None:
    proc = system.proc
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        # Kill the whole group (the proxies' workers too): each system runs in a session of its own.
        os.killpg(proc.pid, 9)
        proc.wait()


def launch(system: System, argv: Sequence[str], workdir: Path, env: dict[str, str] | None = None) -> None:
    log = workdir / f"{system.name.replace(' ', '_').replace('/', '_')}.log"
    with log.open("wb") as out:
        system.proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    system.tree = Tree(system.proc.pid)
    wait_ready(system, log)
    system.idle_rss = system.tree.rss()


# --- the systems -------------------------------------------------------------------------------------------------


def ours_config(workdir: Path, name: str, up: Upstream) -> Path:
    """The fake upstream's two models (paced and unpaced streams), with a price (so the cost path runs) and its
    own store."""
    path = workdir / f"{name}.yaml"
    store = workdir / f"{name}.db"
    models = "".join(
        f"""  {model}:
    provider: openai
    model: {model}
    base_url: {up.base_url}
    api_key: sk-bench
    input_price_per_mtok: 0.15
    output_price_per_mtok: 0.6
"""
        for model in (MODEL, UNPACED_MODEL)
    )
    path.write_text(f"""models:\n{models}store: {{url: "sqlite:///{store}"}}\n""")
    return path


def start_ours(system: System, up: Upstream, workdir: Path, serve_args: Sequence[str]) -> None:
    """``llm-manager serve`` with a gateway key (the proxies below check a key too)."""
    exe = BIN / "llm-manager"
    if not exe.exists():
        raise Unavailable(f"{exe} not found")
    slug = system.name.replace(" ", "_").replace("/", "_")
    config = ours_config(workdir, slug, up)
    made = subprocess.run(
        [str(exe), "--config", str(config), "keys", "create", "bench"], capture_output=True, text=True, timeout=60
    )
    if made.returncode != 0:
        raise Unavailable(f"keys create failed: {made.stderr.strip()[-300:]}")
    port = free_port()
    system.url = f"http://127.0.0.1:{port}/v1/chat/completions"
    system.headers = {"authorization": f"Bearer {made.stdout.strip()}"}
    if serve_args and serve_args[0] in FACTORY_SERVERS:
        # The server imports the app itself (bench/gateway_app.py builds one manager per worker).
        argv = [str(BIN / serve_args[0]), *serve_args[1:], "--port", str(port), "--factory", "bench.gateway_app:app"]
        env = {"LLM_MANAGER_CONFIG": str(config), "PYTHONPATH": str(ROOT)}
        launch(system, argv, workdir, env)
        return
    launch(system, [str(exe), "--config", str(config), "serve", "--port", str(port), *serve_args], workdir)


def start_litellm(system: System, up: Upstream, workdir: Path) -> None:
    exe = BIN / "litellm"
    if not exe.exists():
        raise Unavailable("litellm[proxy] is not installed in this venv (pip install 'litellm[proxy]')")
    master = "sk-bench-" + os.urandom(16).hex()
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        + "".join(
            f"""  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {up.base_url}
      api_key: sk-bench
"""
            for model in (MODEL, UNPACED_MODEL)
        )
        + f"""general_settings:
  master_key: {master}
"""
    )
    port = free_port()
    system.url = f"http://127.0.0.1:{port}/v1/chat/completions"
    system.headers = {"authorization": f"Bearer {master}"}
    # Its bundled price table instead of a download (this machine has no internet), defaults otherwise.
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    launch(system, [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)], workdir, env)


def portkey_script() -> Path:
    return NODE_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"


def install_portkey() -> Path:
    """``npm install`` the pinned Portkey gateway into bench/.node (git-ignored), once."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise Unavailable("node / npm not found (Debian: apt-get install nodejs npm)")
    script = portkey_script()
    manifest = {
        "private": True,
        "dependencies": {"@portkey-ai/gateway": PORTKEY_VERSION},
        "overrides": {"@hono/node-server": HONO_NODE_SERVER},
    }
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    package = NODE_DIR / "package.json"
    wanted = json.dumps(manifest, indent=2) + "\n"
    if script.exists() and package.exists() and package.read_text() == wanted:
        return script
    package.write_text(wanted)
    print(f"… npm install @portkey-ai/gateway@{PORTKEY_VERSION} into {NODE_DIR}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(
            # --prefer-offline: from npm's package cache when it has the packages (tests install it this way too).
            ["npm", "install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        raise Unavailable("npm install timed out after 600 s") from None
    if done.returncode != 0 or not script.exists():
        raise Unavailable(f"npm install failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return script


def start_portkey(system: System, up: Upstream, workdir: Path) -> None:
    script = install_portkey()
    port = free_port()
    system.url = f"http://127.0.0.1:{port}/v1/chat/completions"
    system.headers = {
        "authorization": "Bearer sk-bench",
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": up.base_url,
    }
    launch(system, ["node", str(script), f"--port={port}", "--headless"], workdir)


def start_pass_through(system: System, up: Upstream, workdir: Path) -> None:
    """bench/passthrough.py: the Python server and HTTP client alone, as the floor for our gateway's numbers."""
    port = free_port()
    system.url = f"http://127.0.0.1:{port}/v1/chat/completions"
    system.headers = {"authorization": "Bearer sk-bench"}
    argv = [
        sys.executable,
        "-m",
        "bench.passthrough",
        "--port",
        str(port),
        "--upstream",
        f"{up.base_url}/chat/completions",
    ]
    launch(system, argv, workdir, {"PYTHONPATH": str(ROOT)})


def start_raw(system: System, up: Upstream) -> None:
    system.url = f"{up.base_url}/chat/completions"
    system.headers = {"authorization": "Bearer sk-bench"}
    system.tree = Tree(up.proc.pid)
    system.idle_rss = system.tree.rss()


# Our gateway under each ASGI server candidate: `llm-manager serve` flags, or a server's own command line over
# bench/gateway_app.py (for servers and worker counts `serve` does not offer). The main comparison runs `serve`
# with its defaults.
FACTORY_SERVERS = ("granian", "uvicorn")
_GRANIAN = ["granian", "--interface", "asgi", "--host", "127.0.0.1", "--no-ws", "--log-level", "warning"]
_UVICORN = ["uvicorn", "--host", "127.0.0.1", "--lifespan", "on", "--log-level", "warning", "--no-access-log"]
SERVERS: dict[str, list[str]] = {
    "uvicorn, asyncio + h11": ["--loop", "asyncio", "--http", "h11"],
    "uvicorn, asyncio + httptools": ["--loop", "asyncio", "--http", "httptools"],
    "uvicorn, uvloop + httptools": ["--loop", "uvloop", "--http", "httptools"],
    "granian (ASGI), asyncio": [*_GRANIAN, "--loop", "asyncio"],
    "granian (ASGI), uvloop": [*_GRANIAN, "--loop", "uvloop"],
    "granian (ASGI), uvloop, 2 workers": [*_GRANIAN, "--loop", "uvloop", "--workers", "2"],
    "uvicorn, uvloop + httptools, 2 workers": [*_UVICORN, "--loop", "uvloop", "--http", "httptools", "--workers", "2"],
}


RAW_AGAIN = f"{RAW} (server group)"


def plan(only: Sequence[str] | None, servers: bool) -> list[System]:
    """The systems, in two groups measured one after the other (each with the raw upstream as its floor): the
    comparison, then our gateway under each server. Only one group runs at a time, so the idle processes of the
    other (granian's runtime threads, LiteLLM's background tasks) take no CPU from it."""
    systems = [System(RAW, "main"), System(OURS, "main"), System(PORTKEY, "main"), System(LITELLM, "main")]
    if servers:
        systems += [
            System(RAW_AGAIN, "server"),
            System(PASS_THROUGH, "server"),
            *(System(f"{OURS} @ {name}", "server") for name in SERVERS),
        ]
    if only:
        systems = [s for s in systems if s.name.startswith(RAW) or any(o.lower() in s.name.lower() for o in only)]
    return systems


def start(system: System, up: Upstream, workdir: Path) -> None:
    print(f"… starting {system.name}", file=sys.stderr, flush=True)
    try:
        if system.name.startswith(RAW):
            start_raw(system, up)
        elif system.name == OURS:
            start_ours(system, up, workdir, [])
        elif system.name == LITELLM:
            start_litellm(system, up, workdir)
        elif system.name == PORTKEY:
            start_portkey(system, up, workdir)
        elif system.name == PASS_THROUGH:
            start_pass_through(system, up, workdir)
        else:
            start_ours(system, up, workdir, SERVERS[system.name.split(" @ ", 1)[1]])
    except (Unavailable, OSError, subprocess.SubprocessError) as exc:
        system.error = str(exc) or type(exc).__name__
        stop(system)
        print(f"  {system.name}: unavailable: {system.error}", file=sys.stderr, flush=True)
