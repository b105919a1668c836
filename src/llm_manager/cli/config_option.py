"""``--config FILE`` on every command, before or after the subcommand.

The group's own ``--config`` (``llm-manager --config f.yaml ask …``) reads ``$LLM_MANAGER_CONFIG`` too. The same
option is added to every subcommand (and sub-subcommand), so ``llm-manager ask "hi" --config f.yaml`` works and
each ``--help`` shows it; given there, it wins over the group's value. The group's callback has already run
when a subcommand's options are parsed, so the callback can set the path on the shared context object.
"""

from __future__ import annotations

from typing import Any

import click

__all__ = ["CONFIG_HELP", "add_config_option"]

CONFIG_HELP = "Config file (YAML). Default: $LLM_MANAGER_CONFIG, ./llm-manager.yaml, then the environment."
# Commands that never read a config: they accept the option (a script may pass it everywhere) and say so.
_UNUSED_BY = {"demo", "example", "optimize"}


def _set_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    obj: Any = ctx.find_root().obj
    if obj is not None and hasattr(obj, "config"):
        obj.config = value


def _option(name: str) -> click.Option:
    help_text = CONFIG_HELP
    if name in _UNUSED_BY:
        help_text = "Accepted for uniformity; this command reads no config."
    return click.Option(
        ["--config", "-c"],
        type=click.Path(dir_okay=False),
        expose_value=False,
        callback=_set_config,
        help=help_text,
    )


def add_config_option(group: click.Group) -> None:
    """Give every command under ``group`` (recursively) the ``--config`` option, unless it has one."""
    for name, cmd in group.commands.items():
        if not any("--config" in getattr(p, "opts", ()) for p in cmd.params):
            cmd.params.insert(0, _option(name))
        if isinstance(cmd, click.Group):
            add_config_option(cmd)
