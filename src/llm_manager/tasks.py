"""Task names: the built-in ones and those a config defines, what kind of request each routes, and the error for a
task nobody defined.

The seeds' four chat tasks (``analysis``, ``ui-generation``, ``config-management``, ``general``) and ``embedding``
always exist. ``routing.tasks`` may name any other task (``summarization: [gpt-4o-mini, claude-haiku]``): it routes
chat requests, or embedding requests when its models are embedding models (a task routes one kind, never both).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from llm_manager.errors import ConfigError
from llm_manager.types import TASK_TYPES

if TYPE_CHECKING:
    from llm_manager.config import Settings

__all__ = ["TaskKind", "check_tasks", "known_tasks", "task_kind", "unknown_task"]

TaskKind = Literal["chat", "embedding"]
EMBEDDING = "embedding"


def task_kind(settings: Settings, task: str) -> TaskKind:
    """What ``task`` routes: the built-in ones by definition, one of the config's by the kind of its models."""
    if task == EMBEDDING:
        return "embedding"
    if task in TASK_TYPES:
        return "chat"
    for ref in settings.routing.tasks.get(task, ()):
        name = settings.resolve_name(ref)
        if name is not None:
            return settings.models[name].resolved_kind
    return "chat"


def known_tasks(settings: Settings, kind: TaskKind | None = None) -> list[str]:
    """Every task name the config knows (the built-in ones first, then its own in file order), of ``kind`` if given."""
    names = [*TASK_TYPES, *(t for t in settings.routing.tasks if t not in TASK_TYPES and t != EMBEDDING), EMBEDDING]
    names = list(dict.fromkeys(names))
    return names if kind is None else [t for t in names if task_kind(settings, t) == kind]


def unknown_task(settings: Settings, task: str, kind: TaskKind | None = None) -> ConfigError:
    """The error for a task the config does not define, listing the ones it does."""
    import difflib

    known = known_tasks(settings, kind)
    near = difflib.get_close_matches(task, known, n=1)
    hint = f" Did you mean {near[0]!r}?" if near else ""
    return ConfigError(
        f"unknown task {task!r}.{hint} Known tasks: {', '.join(known)}. Fix: use one of them, or define it under "
        f"`routing.tasks` in the config (`{task}: [model, fallback …]`)."
    )


def check_tasks(settings: Settings) -> list[str]:
    """Config problems of the task table: a name one typo away from a built-in task, a task of one's own without
    models, hedging of an unknown task."""
    import difflib

    problems = []
    for task in settings.routing.tasks:
        near = difflib.get_close_matches(task, TASK_TYPES, n=1, cutoff=0.9) if task not in TASK_TYPES else []
        if near:  # `analyss:` would silently define a new task and leave `analysis` on the seeds' table
            problems.append(
                f"routing.tasks.{task}: {task!r} is not allowed: it is a typo of the built-in task {near[0]!r}. Fix: "
                f"write {near[0]!r}, or give a task of your own a name not so close to it."
            )
    problems += [
        f"routing.tasks.{task}: a task of your own needs at least one model (the built-in tasks fall back to the "
        "seeds' table; this one has none). Fix: list its models, preferred first."
        for task, chain in settings.routing.tasks.items()
        if task not in TASK_TYPES and task != EMBEDDING and not chain
    ]
    known = known_tasks(settings, "chat")
    problems += [
        f"routing.hedge.tasks[{i}]: unknown task {task!r}. Fix: use one of {', '.join(known)}."
        for i, task in enumerate(settings.routing.hedge.tasks)
        if task not in known
    ]
    return problems
