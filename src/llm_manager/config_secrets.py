"""The secrets a configuration holds, and the configuration as it may be printed (every one of them masked).

:func:`configured_secrets` lists each secret by value — provider keys and key pools, Portkey keys and virtual keys,
credential-bearing headers, and the passwords inside ``base_url``, ``portkey.base_url``, ``state.redis_url``,
``store.url`` (or ``$LLM_MANAGER_STORE_URL``) and ``telemetry.otlp_endpoint`` — for
:class:`~llm_manager._redact.SecretSet`, which masks them in every error, log line and status output.
:func:`masked_config` is what ``llm-manager config show`` prints.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from llm_manager._redact import SecretSet, redact, url_password, url_with_password_masked

if TYPE_CHECKING:
    from llm_manager.config import DeploymentConfig, Settings

__all__ = ["configured_secrets", "masked_config"]

# Header names whose values are credentials (Authorization, x-api-key, x-portkey-*-key, cookies, signatures …).
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|passw|signature|credential", re.IGNORECASE)
_HIDDEN = "**********"  # what pydantic prints for a SecretStr, so every masked field looks alike


def configured_secrets(settings: Settings, env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret in ``settings`` (and the store URL or OTLP headers taken from ``env``), by value."""
    env = os.environ if env is None else env
    out: list[str | None] = []
    for dep in settings.models.values():
        out += _deployment_secrets(dep)
    if settings.portkey is not None:
        if settings.portkey.api_key is not None:
            out.append(settings.portkey.api_key.get_secret_value())
        out += _url_secrets(settings.portkey.base_url)
    out += _url_secrets(settings.state.redis_url)
    out += _url_secrets(settings.store.url or env.get("LLM_MANAGER_STORE_URL"))
    out += _url_secrets(settings.telemetry.otlp_endpoint)
    # The exporter reads its auth headers from the standard variable ("k1=v1,k2=v2"): those values are ours too.
    for pair in env.get("OTEL_EXPORTER_OTLP_HEADERS", "").split(","):
        out += _header_value_secrets(pair.partition("=")[2].strip())
    return list(dict.fromkeys(s for s in out if s))


def _deployment_secrets(dep: DeploymentConfig) -> list[str | None]:
    out: list[str | None] = [*dep.keys, *_url_secrets(dep.base_url)]
    if dep.portkey is not None:
        out += [s.get_secret_value() for s in (dep.portkey.api_key, dep.portkey.virtual_key) if s is not None]
    for name, value in dep.headers.items():
        if _SECRET_HEADER.search(name):
            out += _header_value_secrets(value)
    return out


def _url_secrets(url: str | None) -> list[str]:
    """A URL's password, and the ``Authorization: Basic`` credentials an HTTP client builds from its user part."""
    password = url_password(url)
    if not password or url is None:
        return []
    user = unquote(urlsplit(url).username or "")
    basic = base64.b64encode(f"{user}:{unquote(password)}".encode()).decode()
    return [password, basic]


def _header_value_secrets(value: str) -> list[str]:
    # "Bearer abc…": the token leaks on its own as often as the whole value does.
    parts = value.split()
    return [value, parts[-1]] if len(parts) > 1 else [value]


def masked_config(settings: Settings) -> dict[str, Any]:
    """``settings`` as JSON-ready data with every secret masked: keys (as pydantic prints a ``SecretStr``), every
    header value, URL passwords, and — in case one sits anywhere else — each configured secret by value."""
    data = settings.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
    for model in data.get("models", {}).values():
        # Header values often carry credentials (authorization, x-api-key, x-portkey-*): never print them.
        model["headers"] = {k: _HIDDEN for k in model.get("headers", {})}
        _mask_url(model, "base_url")
    for section, field in (
        ("portkey", "base_url"),
        ("state", "redis_url"),
        ("store", "url"),
        ("telemetry", "otlp_endpoint"),
    ):
        if isinstance(data.get(section), dict):
            _mask_url(data[section], field)
    held = SecretSet(configured_secrets(settings))  # alive while the walk below masks by value
    masked = _redact_strings(data)
    del held
    return masked  # type: ignore[no-any-return]


def _mask_url(section: dict[str, Any], field: str) -> None:
    value = section.get(field)
    if isinstance(value, str):
        section[field] = url_with_password_masked(value)


def _redact_strings(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value) if value != _HIDDEN else value
    if isinstance(value, dict):
        return {k: _redact_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_strings(v) for v in value]
    return value
