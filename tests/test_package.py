"""Package-level promises: the public surface, the dependency order between parts, and a cheap import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import llm_manager

SRC = Path(llm_manager.__file__).parent


def test_all_is_exactly_the_public_surface() -> None:
    public = {n for n in dir(llm_manager) if not n.startswith("_")}
    exported = set(llm_manager.__all__) - {"__version__"}
    lazy = {"LLMManager", "ResponseStream", "SyncLLMManager", "Settings"}
    assert exported - lazy <= public
    for name in exported:
        assert getattr(llm_manager, name) is not None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "llm_manager":
            # `from llm_manager import _json` imports a module; `__version__` is metadata; the rest is the facade.
            out.update(f"llm_manager.{a.name}" for a in node.names if (SRC / f"{a.name}.py").exists())
            if any(not (SRC / f"{a.name}.py").exists() and not a.name.startswith("__") for a in node.names):
                out.add("llm_manager")
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("llm_manager")}


LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("interface", ("llm_manager", "cli", "server")),
    (
        "manager",
        (
            "manager",
            "deployments",
            "pipeline",
            "executor",
            "attempts",
            "accounting",
            "response_stream",
            "introspection",
            "conversations",
            "embedder",
            "multi",
            "sync",
            "token_count",
            "warmup",
            "structured.query",  # the re-ask loop drives the manager
        ),
    ),
    ("services", ("routing", "cache", "structured", "costs", "telemetry", "prompts")),
    ("providers", ("providers",)),
    ("storage", ("state", "store")),
    ("codecs", ("codecs",)),
    (
        "foundation",
        (
            "types",
            "confidence",
            "errors",
            "config",
            "config_deployment",
            "config_problems",
            "config_routing",
            "config_secrets",
            "config_sections",
            "content",
            "discovery",
            "embedding",
            "embedding_profiles",
            "profiles",
            "tasks",
            "tokens",
            "vendors",
            "_deadline",
            "_http",
            "_interpolate",
            "_json",
            "_redact",
            "_sse",
            "_tasks",
            "_unclosed",
        ),
    ),
)
"""The package's layers, top to bottom, each by module prefix (relative to ``llm_manager``; the package itself is
the public facade). A module imports from its own layer or the layers below, never above: the CLI and the gateway
over the manager; the manager over routing, cache, structured output, costs and telemetry; those over the
provider adapters; adapters over state and store (which know no business rules), codecs, and the foundation
(types, errors, config). Function-level (lazy) imports count too."""


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _placed(module: str) -> tuple[int, str]:
    """The index in :data:`LAYERS` of ``module`` and the prefix that placed it (the longest that matches)."""
    best, match = -1, ""
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            full = "llm_manager" if prefix == "llm_manager" else f"llm_manager.{prefix}"
            if (module == full or module.startswith(full + ".")) and len(full) > len(match):
                best, match = index, full
    return best, match


def _layer(module: str) -> int:
    return _placed(module)[0]


def test_every_module_imports_only_its_own_layer_or_below() -> None:
    modules = {_module(p): p for p in SRC.rglob("*.py")}
    unplaced = sorted(m for m in modules if m != "llm_manager" and _placed(m)[1] == "llm_manager")
    assert not unplaced, f"place these modules in LAYERS: {unplaced}"
    upward = []
    for module, path in sorted(modules.items()):
        mine = _layer(module)
        for imported in sorted(_imports(path)):
            theirs = _layer(imported)
            if theirs < mine:
                upward.append(f"{module} ({LAYERS[mine][0]}) imports {imported} ({LAYERS[theirs][0]})")
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_dependency_order() -> None:
    """Within the layers: routing never imports a provider module by name (only the adapter interface), and the
    foundation's leaves stay leaves."""
    allowed_provider_modules = {"llm_manager.providers.base"}
    for path in (SRC / "routing").glob("*.py"):
        bad = {m for m in _imports(path) if m.startswith("llm_manager.providers") and m not in allowed_provider_modules}
        assert not bad, f"routing/{path.name} imports {bad}"
    for mod in ("types.py", "errors.py"):
        assert _imports(SRC / mod) <= {"llm_manager.types", "llm_manager._redact", "llm_manager.content"}, mod
    assert not _imports(SRC / "_redact.py"), "_redact.py is a leaf: errors.py imports it"
    assert not _imports(SRC / "content.py"), "content.py is a leaf: types.py imports it"


def test_codecs_know_wire_formats_only_and_the_gateway_no_adapter() -> None:
    """A codec is the one place a wire format is known: it imports no HTTP, routing, adapter, store or gateway
    module. The gateway and the CLI reach every protocol through a codec or the manager, never an adapter module."""
    outside = (
        "llm_manager.providers",
        "llm_manager.routing",
        "llm_manager.manager",
        "llm_manager.executor",
        "llm_manager._http",
        "llm_manager.server",
        "llm_manager.cli",
        "llm_manager.state",
        "llm_manager.store",
        "llm_manager.costs",
    )
    codecs = list((SRC / "codecs").rglob("*.py"))
    assert len(codecs) > 10
    for path in codecs:
        bad = {m for m in _imports(path) if m.startswith(outside)}
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"
    for path in [*(SRC / "server").rglob("*.py"), *(SRC / "cli").rglob("*.py")]:
        bad = {m for m in _imports(path) if m.startswith("llm_manager.providers")}
        assert not bad, f"{path.relative_to(SRC)} imports adapter modules {bad}"


def test_http_library_is_imported_in_one_place_only() -> None:
    for path in SRC.rglob("*.py"):
        if path.name == "_http.py":
            continue
        text = path.read_text()
        assert "import aiohttp" not in text and "import httpx" not in text, path


def test_import_is_cheap_and_loads_no_heavy_modules() -> None:
    code = (
        "import sys, llm_manager; heavy = [m for m in ('aiohttp', 'yaml', 'rich', 'click', 'llm_manager.manager',"
        " 'openai', 'anthropic') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_errors_pickle_with_their_fields() -> None:
    import pickle

    from llm_manager import ContextTooLargeError, RateLimitError

    e = pickle.loads(pickle.dumps(RateLimitError("slow down", retry_after=2.5, status_code=429, deployment="gpt")))
    assert (e.retry_after, e.status_code, e.deployment, e.code) == (2.5, 429, "gpt", "rate_limited")
    c = pickle.loads(pickle.dumps(ContextTooLargeError("big", token_count=9000, max_tokens=8192)))
    assert (c.token_count, c.max_tokens) == (9000, 8192)
