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

_NAME = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
_PATTERN = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)((?:\$\{[^}]*\}|[^}])*))?\}")


def interpolate(node: Any, env: Mapping[str, str], path: str = "", problems: list[str] | None = None) -> Any:
    """Return a copy of ``node`` with every string's variables replaced from ``env``.

    An unset variable raises :class:`ConfigError`; with ``problems`` given, it is appended there instead (and
    replaced by an empty string) so that every unset variable of a file is reported in one run."""
    if isinstance(node, str):
        if problems is None:
            return _substitute(node, env, path)
        return _collecting(node, env, path, problems)
    if isinstance(node, dict):
        return {k: interpolate(v, env, f"{path}.{k}" if path else str(k), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    return node


def _collecting(text: str, env: Mapping[str, str], path: str, problems: list[str]) -> str:
    """Substitute, reporting each unset variable of ``text`` (then read as empty) instead of stopping at one."""
    names = set(_NAME.findall(text))  # nested defaults included: ${A:-${B}}
    env = dict(env)
    for _ in range(len(names) + 1):
        try:
            return _substitute(text, env, path)
        except ConfigError as exc:
            problems.append(exc.message)
            env.update({n: "" for n in names if n not in env and n in exc.message.split()})
    return text


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
