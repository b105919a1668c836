"""``${VAR}`` / ``${VAR:-default}`` / ``${VAR-default}`` substitution over a parsed YAML tree.

Substitution happens on parsed values (never on raw YAML text), so a secret containing ``:`` or ``#`` cannot
change the document's structure. ``$${`` escapes a literal ``${``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llm_manager.errors import ConfigError

__all__ = ["interpolate"]

_PATTERN = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)((?:\$\{[^}]*\}|[^}])*))?\}")


def interpolate(node: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Return a copy of ``node`` with every string's variables replaced from ``env``."""
    if isinstance(node, str):
        return _substitute(node, env, path)
    if isinstance(node, dict):
        return {k: interpolate(v, env, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env, f"{path}[{i}]") for i, v in enumerate(node)]
    return node


def _substitute(text: str, env: Mapping[str, str], path: str) -> str:
    if "${" not in text:
        return text

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        name, op, default = m.group(1), m.group(2), m.group(3)
        value = env.get(name)
        if (op == ":-" and not value) or (op == "-" and value is None):
            return _substitute(default, env, path) if default else ""  # one level of nesting: ${A:-${B:-}}
        if value is None:
            raise ConfigError(
                f"{path or 'config'}: environment variable {name} is not set. "
                f"Fix: export {name}=..., or give a default with ${{{name}:-default}} "
                f"(an empty default ${{{name}:-}} makes it optional)."
            )
        return value

    return _PATTERN.sub(repl, text)
