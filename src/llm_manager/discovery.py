"""Settings from the environment alone, and the simulated catalogue used when nothing is configured."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llm_manager.config import Settings, load_settings

__all__ = [
    "SIMULATED_EMBEDDING_MODELS",
    "SIMULATED_MODELS",
    "ConfigSource",
    "discover",
    "resolve_settings",
    "settings_from_env",
    "simulated_settings",
    "warn_if_simulated",
]

log = logging.getLogger("llm_manager")
ConfigSource = str | os.PathLike[str] | Mapping[str, Any] | Settings | None
"""Where settings come from: a YAML path, a dict, :class:`Settings`, or ``None`` (see :func:`resolve_settings`)."""

# Offline stand-ins, one per family of the seeds' table, with distinct prices, speeds and context windows.
SIMULATED_MODELS: dict[str, dict[str, Any]] = {
    "sim-claude": {
        "family": "claude",
        "context_window": 200_000,
        "input_price_per_mtok": "3.00",
        "output_price_per_mtok": "15.00",
        "simulate": {"latency_ms": 60, "first_token_ms": 30, "tokens_per_s": 300},
    },
    "sim-gpt": {
        "family": "gpt",
        "context_window": 128_000,
        "input_price_per_mtok": "2.50",
        "output_price_per_mtok": "10.00",
        "simulate": {"latency_ms": 40, "first_token_ms": 20, "tokens_per_s": 500},
    },
    "sim-gpt-mini": {
        "family": "gpt",
        "context_window": 128_000,
        "input_price_per_mtok": "0.15",
        "output_price_per_mtok": "0.60",
        "simulate": {"latency_ms": 25, "first_token_ms": 12, "tokens_per_s": 800},
    },
    "sim-gemini": {
        "family": "gemini",
        "context_window": 1_000_000,
        "input_price_per_mtok": "0.30",
        "output_price_per_mtok": "2.50",
        "simulate": {"latency_ms": 35, "first_token_ms": 25, "tokens_per_s": 600},
    },
    "sim-llama": {
        "family": "llama",
        "context_window": 8_192,
        "input_price_per_mtok": "0",
        "output_price_per_mtok": "0",
        "simulate": {"latency_ms": 15, "first_token_ms": 8, "tokens_per_s": 1000},
    },
}


# An offline embedding model, so that embed() and /v1/embeddings work out of the box too.
SIMULATED_EMBEDDING_MODELS: dict[str, dict[str, Any]] = {
    "sim-embed": {
        "kind": "embedding",
        "dimensions": 256,
        "input_price_per_mtok": "0.02",
        "simulate": {"latency_ms": 5, "first_token_ms": 5},
    },
}


def simulated_settings(seed: int = 0, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings with only the simulated models (plus ``overrides`` merged at the top level)."""
    catalogue = {**SIMULATED_MODELS, **SIMULATED_EMBEDDING_MODELS}
    models = {name: {"provider": "simulated", **spec} for name, spec in catalogue.items()}
    raw: dict[str, Any] = {"models": models, "simulation": {"seed": seed}}
    raw.update(overrides or {})
    s = load_settings(raw, env={})
    s.source = "simulated"
    return s


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings | None:
    """Discover deployments from the usual variables; ``None`` when no provider is configured."""
    env = os.environ if env is None else env
    models: dict[str, dict[str, Any]] = {}
    portkey: dict[str, Any] | None = None

    def key(*names: str) -> str | None:
        for n in names:
            if env.get(n + "S"):
                return env[n + "S"]
            if env.get(n):
                return env[n]
        return None

    if k := key("OPENAI_API_KEY"):
        models["gpt-4o"] = {"provider": "openai", "model": env.get("OPENAI_MODEL", "gpt-4o"), "api_keys": k}
        models["gpt-4o-mini"] = {"provider": "openai", "model": "gpt-4o-mini", "api_keys": k}
        models["text-embedding-3-small"] = {"provider": "openai", "api_keys": k}
    if k := key("ANTHROPIC_API_KEY"):
        models["claude-sonnet"] = {
            "provider": "anthropic",
            "model": env.get("ANTHROPIC_MODEL", "claude-sonnet-4-5"),
            "api_keys": k,
        }
    if k := key("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        models["gemini-flash"] = {
            "provider": "gemini",
            "model": env.get("GEMINI_MODEL", "gemini-2.5-flash"),
            "api_keys": k,
        }
        models["gemini-embedding"] = {"provider": "gemini", "model": "gemini-embedding-001", "api_keys": k}
    if k := key("GROQ_API_KEY"):
        models["groq-llama"] = {
            "provider": "openai-compatible",
            "preset": "groq",
            "family": "llama",
            "model": env.get("GROQ_MODEL", "llama-3.3-70b-versatile"),
            "api_keys": k,
        }
    if k := key("OPENROUTER_API_KEY"):
        models["openrouter"] = {
            "provider": "openai-compatible",
            "preset": "openrouter",
            "model": env.get("OPENROUTER_MODEL", "openai/gpt-4o-mini"),
            "api_keys": k,
        }
    if url := env.get("LM_STUDIO_URL"):
        models["local-llama"] = {
            "provider": "openai-compatible",
            "preset": "lmstudio",
            "family": "llama",
            "base_url": _v1(url),
            "model": env.get("LM_STUDIO_MODEL", "local-model"),
        }
    if host := env.get("OLLAMA_HOST"):
        models["ollama"] = {
            "provider": "openai-compatible",
            "preset": "ollama",
            "family": "llama",
            "base_url": _v1(_with_port(host, 11434)),
            "model": env.get("OLLAMA_MODEL", "llama3.1"),
        }
    if pk := env.get("PORTKEY_API_KEY"):
        portkey = {"api_key": pk, "base_url": env.get("PORTKEY_BASE_URL", "http://localhost:8787/v1")}
        models.update(_portkey_models(env))
    if not models:
        return None
    raw: dict[str, Any] = {"models": models}
    if portkey:
        raw["portkey"] = portkey
    s = load_settings(raw, env=env)
    s.source = "environment"
    return s


def _v1(url: str) -> str:
    """``…/v1`` exactly once, whether or not the variable already ends with it."""
    base = url.rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


def _with_port(host: str, default_port: int) -> str:
    """``OLLAMA_HOST`` may be ``host``, ``host:port`` or a URL; a bare host gets Ollama's default port."""
    if "://" in host:
        return host
    return f"http://{host}" if ":" in host.rsplit("]", 1)[-1] else f"http://{host}:{default_port}"


# PORTKEY_<NAME>_VIRTUAL_KEY → a deployment through Portkey; the seeds name GPT4, CLAUDE and LLAMA.
_PORTKEY_DEFAULTS = {
    "GPT4": ("gpt", "gpt-4o"),
    "CLAUDE": ("claude", "claude-sonnet-4-5"),
    "LLAMA": ("llama", "llama-3.1-8b"),
    "GEMINI": ("gemini", "gemini-2.5-flash"),
}


def _portkey_models(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for var, value in sorted(env.items()):
        if not (var.startswith("PORTKEY_") and var.endswith("_VIRTUAL_KEY")) or not value:
            continue
        tag = var[len("PORTKEY_") : -len("_VIRTUAL_KEY")]
        family, model = _PORTKEY_DEFAULTS.get(tag, (None, tag.lower() or "gpt-4o"))
        spec: dict[str, Any] = {
            "provider": "portkey",
            # A bare PORTKEY_VIRTUAL_KEY names no model: PORTKEY_MODEL does.
            "model": env.get(f"PORTKEY_{tag}_MODEL" if tag else "PORTKEY_MODEL", model),
            "portkey": {"virtual_key": value},
        }
        if family:
            spec["family"] = family
        out[f"portkey-{tag.lower()}" if tag else "portkey"] = spec
    return out


def discover(env: Mapping[str, str] | None = None) -> Settings:
    """Environment settings, or the simulated catalogue when no provider is configured."""
    return settings_from_env(env) or simulated_settings()


def resolve_settings(source: ConfigSource, *, warn_simulated: bool = True) -> Settings:
    """Settings from an explicit source, else ``$LLM_MANAGER_CONFIG``, ``./llm-manager.yaml``, env, simulated
    (with a warning that answers are SIMULATED, unless ``warn_simulated`` is false: for callers that call no
    model)."""
    if isinstance(source, Settings):
        return source
    if source is not None:
        return load_settings(source)
    path = os.environ.get("LLM_MANAGER_CONFIG")
    if path:
        return load_settings(path)
    if Path("llm-manager.yaml").is_file():
        return load_settings("llm-manager.yaml")
    settings = discover()
    if warn_simulated:
        warn_if_simulated(settings)
    return settings


def warn_if_simulated(settings: Settings) -> None:
    """Say so in the log when the answers will come from the simulated models."""
    if settings.source == "simulated":
        log.warning(
            "no provider configured (no config file, no OPENAI_API_KEY / ANTHROPIC_API_KEY / …): "
            "answers come from SIMULATED offline models"
        )
