"""Plan an embedding request: which embedding deployments may answer, in which order, with vectors of which size.

model (tried first) → the task's chain (``embedding``: every embedding model, in config order) → only those that
return vectors of the same size as the first (or the size asked for) → for token-id input, only deployments of the
first one's model (token ids belong to one tokenizer). Vectors of two models of the same size still live in two
spaces: the response names the model, and a fallback across models is the configuration's choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llm_manager.errors import ConfigError
from llm_manager.routing.planner import Plan
from llm_manager.tasks import task_kind
from llm_manager.tokens import estimate_tokens

if TYPE_CHECKING:
    from llm_manager.config import Settings
    from llm_manager.embedding import EmbeddingInput
    from llm_manager.embedding_profiles import EmbeddingSpec
    from llm_manager.routing.planner import Deployment
    from llm_manager.types import Request

__all__ = ["EmbeddingPlan", "plan_embedding"]


@dataclass(slots=True)
class EmbeddingPlan:
    """The candidates (as a :class:`Plan`, for the executor and the budgets) and the vector size they share."""

    plan: Plan
    size: int
    """Vector size every candidate returns."""


def plan_embedding(
    inp: EmbeddingInput,
    route: Request,
    settings: Settings,
    deployments: Mapping[str, Deployment],
    specs: Mapping[str, EmbeddingSpec],
) -> EmbeddingPlan:
    """Order the candidates for an embedding request; raise :class:`ConfigError` when none can take it."""
    names = _chain(route, settings, specs)
    first = specs[names[0]]
    size = inp.dimensions or first.dimensions
    prompt_tokens = estimate_tokens(inp.chars, inp.count)
    fits: list[Deployment] = []
    unfit: list[str] = []
    first_model = deployments[names[0]].endpoint.model
    for name in names:
        dep = deployments[name]
        why = _unfit(inp, specs[name], size, dep.endpoint.model, first_model)
        if why is None:
            fits.append(dep)
        else:
            unfit.append(f"{name}: {why}")
    if not fits:
        raise ConfigError(f"no embedding model can take this request ({'; '.join(unfit)})")
    # A model of another size is not a candidate passed over but not a candidate at all: no attempt is recorded
    # for it (the ledger would get a "skipped" row per request and per such model).
    return EmbeddingPlan(Plan(fits, [], prompt_tokens, prompt_tokens), size)


def _chain(route: Request, settings: Settings, specs: Mapping[str, EmbeddingSpec]) -> list[str]:
    """Deployment names, the requested model first; every one an embedding model."""
    full = settings.chain(route.task)  # an unknown task: a ConfigError listing the known ones
    if task_kind(settings, route.task) == "chat":
        raise ConfigError(
            f"task {route.task!r} routes chat models; embed() takes task='embedding' (or a task listing embedding "
            "models)"
        )
    chain = [n for n in full if n in specs]
    if not route.model:
        if not chain:
            raise ConfigError(
                "no embedding models configured. Fix: add one under `models:` (e.g. `provider: openai, model: "
                "text-embedding-3-small`), or set `kind: embedding` and `dimensions:` on a model of yours."
            )
        return chain
    name = settings.resolve_name(route.model)
    if name is None or name not in specs:
        what = "unknown model" if name is None else "not an embedding model:"
        raise ConfigError(f"{what} {route.model!r}. Embedding models: {', '.join(specs) or '(none configured)'}.")
    if not route.fallback:
        return [name]
    return [name, *(n for n in chain if n != name)]


def _unfit(inp: EmbeddingInput, spec: EmbeddingSpec, size: int, model: str, first_model: str) -> str | None:
    """Why a deployment cannot take the request, or ``None`` when it can."""
    if not spec.can_produce(size):
        return f"returns {spec.dimensions}-dimension vectors, not {size}"
    if inp.tokens is not None:
        if spec.profile is None or not spec.profile.token_input:
            return "takes text, not token ids"
        if model != first_model:
            return f"token ids are {first_model}'s, and this is {model}"
    return None
