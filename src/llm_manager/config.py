"""Typed configuration: one YAML file (or dict, or the environment) → validated :class:`Settings`.

Every problem is reported with the field's path and the fix, all at once, before anything runs.

This module holds ``Settings``, ``load_settings`` and its checks; the sections it is made of live in
``config_deployment`` (``models:``), ``config_routing`` (``routing:``) and ``config_sections`` (the rest), and every
one of them is importable from here.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError

from llm_manager.config_deployment import (
    DeploymentConfig,
    PortkeyRoute,
    PresetName,
    ProviderName,
    SimulatedBehaviour,
)
from llm_manager.config_routing import (
    BackoffConfig,
    BackoffStrategy,
    CircuitBreakerConfig,
    HedgeConfig,
    OvertakeConfig,
    RoutingConfig,
    Strategy,
)
from llm_manager.config_sections import (
    BudgetConfig,
    CacheConfig,
    GatewayConfig,
    LedgerConfig,
    PortkeyConfig,
    SemanticCacheConfig,
    SimulationConfig,
    StateConfig,
    StoreConfig,
    TelemetryConfig,
    _Strict,
)
from llm_manager.embedding_profiles import check_embedding_config, check_task_kinds
from llm_manager.errors import ConfigError
from llm_manager.profiles import Family
from llm_manager.tasks import check_tasks
from llm_manager.types import TaskType

__all__ = [
    "DEFAULT_FAMILY_CHAINS",
    "BackoffConfig",
    "BackoffStrategy",
    "BudgetConfig",
    "CacheConfig",
    "CircuitBreakerConfig",
    "DeploymentConfig",
    "GatewayConfig",
    "HedgeConfig",
    "LedgerConfig",
    "OvertakeConfig",
    "PortkeyConfig",
    "PortkeyRoute",
    "PresetName",
    "ProviderName",
    "RoutingConfig",
    "SemanticCacheConfig",
    "Settings",
    "SimulatedBehaviour",
    "SimulationConfig",
    "StateConfig",
    "StoreConfig",
    "Strategy",
    "TelemetryConfig",
    "load_settings",
]

# The seeds' routing table, by model family: the first family present answers, the rest are its fallbacks.
DEFAULT_FAMILY_CHAINS: dict[TaskType, tuple[Family, ...]] = {
    "analysis": ("claude", "gpt", "gemini", "llama"),
    "ui-generation": ("gpt", "claude", "gemini", "llama"),
    "config-management": ("llama", "gpt", "claude", "gemini"),
    "general": ("gpt", "claude", "gemini", "llama"),
}


class Settings(_Strict):
    """The whole configuration."""

    models: dict[str, DeploymentConfig] = Field(default_factory=dict)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    portkey: PortkeyConfig | None = None
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    budgets: list[BudgetConfig] = Field(default_factory=list)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    source: str = Field(default="defaults", exclude=True)
    """Where the settings came from (a path, ``dict``, ``environment`` or ``simulated``)."""

    def chain(self, task: str) -> list[str]:
        """The configured or default deployment order for ``task`` (for ``embedding``: the embedding models); a task
        the config does not define is a :class:`ConfigError` listing the known ones."""
        chain = self._chains.get(task)
        if chain is None:
            from llm_manager.tasks import unknown_task

            raise unknown_task(self, task)
        return list(chain)

    def task_names(self) -> list[str]:
        """Every task this config routes: the built-in ones, then its own, then ``embedding``."""
        from llm_manager.tasks import known_tasks

        return known_tasks(self)

    @cached_property
    def _chains(self) -> dict[str, tuple[str, ...]]:
        # Computed once: it is on every request's path, and settings do not change after loading. A cached
        # property lives in the instance's __dict__, so reading it skips pydantic's private-attribute lookup
        # (a few microseconds per request).
        return {task: tuple(self._compute_chain(task)) for task in self.task_names()}

    def _compute_chain(self, task: str) -> list[str]:
        configured = self.routing.tasks.get(task)
        if configured:
            return list(dict.fromkeys(self.resolve_name(n) or n for n in configured))  # aliases may repeat a model
        if task == "embedding":
            return [name for name, dep in self.models.items() if dep.resolved_kind == "embedding"]
        by_family: dict[str, list[str]] = {}
        others: list[str] = []
        for name, dep in self.models.items():
            if dep.resolved_kind == "embedding":
                continue  # vectors, not answers: only embed() routes to it
            fam = dep.resolved_family
            (by_family.setdefault(fam, []) if fam else others).append(name)
        chain = [n for fam in DEFAULT_FAMILY_CHAINS.get(task, ()) for n in by_family.get(fam, [])]
        return chain + others

    def aliases(self) -> dict[str, str]:
        """Every alias → deployment name."""
        out = dict(self.routing.aliases)
        for name, dep in self.models.items():
            for alias in dep.aliases:
                out[alias] = name
        return out

    def resolve_name(self, ref: str) -> str | None:
        """The one place a model reference is resolved: a deployment name, an alias, or a wire model id."""
        if ref in self.models:
            return ref
        alias = self.aliases().get(ref)
        if alias:
            return alias
        for name, dep in self.models.items():
            if dep.model_name == ref:
                return name
        return None


def load_settings(source: str | os.PathLike[str] | Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Load, interpolate and validate settings from a YAML path or a dict; raise :class:`ConfigError` on problems."""
    from llm_manager._interpolate import interpolate

    env = os.environ if env is None else env
    if isinstance(source, Mapping):
        raw: Any = dict(source)
        origin = "dict"
    else:
        raw, origin = _read_yaml(Path(source)), str(source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping (models:, routing:, …), got {type(raw).__name__}")
    problems: list[str] = []  # every problem of the file, reported in one run
    raw = interpolate(raw, env, problems=problems)
    try:
        settings = _validated(raw)
    except ValidationError as exc:
        from llm_manager.config_problems import problems_after_schema_errors

        problems += [_explain(err) for err in exc.errors()]
        problems += problems_after_schema_errors(raw, exc, _validated, lambda s: _cross_check(s, env))
        raise ConfigError(_bullet(origin, problems)) from None
    settings.source = origin
    problems += _cross_check(settings, env)
    if problems:
        raise ConfigError(_bullet(origin, problems))
    return settings


def _validated(raw: dict[str, Any]) -> Settings:
    settings = Settings.model_validate(raw)
    for name, dep in settings.models.items():
        if not dep.model:
            dep.model = name
    return settings


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file not found: {path}. Fix: check the path, or run without --config "
            "to use the environment / the simulated models."
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None


def _bullet(origin: str, problems: list[str]) -> str:
    head = f"invalid configuration ({origin}), {len(problems)} problem{'s' if len(problems) > 1 else ''}:"
    return head + "".join(f"\n  - {p}" for p in problems)


def _explain(err: Any) -> str:
    loc = [str(x) for x in err["loc"] if not str(x).startswith("function-") and str(x) != "[key]"]
    path = ".".join(loc) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = sorted(k for k, f in parent.model_fields.items() if not f.exclude) if parent else []
        near = difflib.get_close_matches(loc[-1], allowed, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        return f"{path}: unknown key.{hint} Allowed here: {', '.join(allowed)}."
    if kind in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        return f"{path}: {err['input']!r} is not allowed. Fix: use one of {expected}."
    if kind == "missing":
        return f"{path}: required. Fix: add `{loc[-1]}:` here."
    return f"{path}: {err['msg']} (got {err.get('input')!r})."


def _model_at(loc: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] = Settings
    i = 0
    while i < len(loc):
        field = model.model_fields.get(loc[i])
        if field is None:
            return None
        ann = field.annotation
        if loc[i] == "models":
            model, i = DeploymentConfig, i + 2
            continue
        sub = next(
            (a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
        if sub is None:
            return None
        model, i = sub, i + 1
    return model


def _cross_check(s: Settings, env: Mapping[str, str]) -> list[str]:

    problems: list[str] = []
    names = list(s.models)
    for task, chain in s.routing.tasks.items():
        for i, ref in enumerate(chain):
            if s.resolve_name(ref) is None:
                near = difflib.get_close_matches(ref, names + list(s.aliases()), n=1)
                hint = f" Did you mean {near[0]!r}?" if near else ""
                problems.append(
                    f"routing.tasks.{task}[{i}]: unknown model {ref!r}.{hint} "
                    f"Defined models: {', '.join(names) or '(none)'}."
                )
        problems += check_task_kinds(s, task, chain)
    problems += check_tasks(s)
    overtake = s.routing.overtake
    if overtake.hold_margin > overtake.margin:
        problems.append(
            f"routing.overtake.hold_margin: {overtake.hold_margin:g} is above margin {overtake.margin:g}. Fix: at most "
            "margin (a model that moved up must not need more to stay there than it needed to get there)."
        )
    for alias, target in s.routing.aliases.items():
        if target not in s.models:
            problems.append(
                f"routing.aliases.{alias}: points at unknown model {target!r}. Fix: use one of {', '.join(names) or '(none)'}."
            )
    for name, dep in s.models.items():
        problems += _check_model(s, name, dep, env)
        problems += check_embedding_config(f"models.{name}", dep)
    return problems


def _check_model(s: Settings, name: str, dep: DeploymentConfig, env: Mapping[str, str]) -> list[str]:
    from llm_manager.vendors import PRESETS, portkey_key_problems

    problems: list[str] = []
    path = f"models.{name}"
    if dep.provider == "openai-compatible" and not (dep.base_url or dep.preset):
        problems.append(
            f"{path}: openai-compatible needs `base_url:` (e.g. http://localhost:1234/v1) "
            f"or `preset:` (groq, openrouter, lmstudio, ollama, vllm, llamacpp)."
        )
    if dep.preset and dep.provider != "openai-compatible":
        problems.append(f"{path}.preset: only valid with provider: openai-compatible.")
    if dep.key_weights and len(dep.key_weights) != len(dep.keys):
        problems.append(
            f"{path}.key_weights: {len(dep.key_weights)} weights for {len(dep.keys)} keys. "
            "Fix: give one weight per key, in the order of api_key then api_keys."
        )
    if any(w <= 0 for w in dep.key_weights):
        problems.append(f"{path}.key_weights: weights must be positive integers.")
    if dep.api is not None and dep.provider not in ("openai", "openai-compatible"):
        problems.append(
            f"{path}.api: only OpenAI and openai-compatible deployments choose their API "
            f"(provider {dep.provider} has one). Fix: remove `api:`."
        )
    elif dep.api == "responses" and s.portkey is not None and s.portkey.route_all:
        problems.append(
            f"{path}.api: responses cannot go through Portkey (portkey.route_all sends the Chat Completions "
            "format). Fix: remove `api: responses`, or route this deployment directly."
        )
    if dep.simulate and dep.provider != "simulated":
        problems.append(f"{path}.simulate: only valid with provider: simulated.")
    preset = PRESETS[dep.preset or dep.provider]
    if not dep.keys and dep.provider != "portkey" and preset.needs_key:
        # A pool variable (OPENAI_API_KEYS) wins over the single key (OPENAI_API_KEY).
        found = next((env[n] for v in preset.key_env for n in (v + "S", v) if env.get(n)), None)
        if found:
            dep.api_keys = [SecretStr(k.strip()) for k in found.split(",") if k.strip()]
        elif not (s.portkey and s.portkey.route_all and dep.provider in ("openai", "anthropic", "gemini")):
            var = preset.key_env[0] if preset.key_env else "the provider's key"
            problems.append(
                f"{path}: no API key. Fix: export {var}=..., or set `api_key: ${{{var}}}` "
                f"(several keys: `api_keys: a,b`)."
            )
    problems += portkey_key_problems(s, name, dep)
    return problems
