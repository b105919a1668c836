"""Plan: which deployments may answer a request, in which order. Every ordering decision is made here.

task chain (config or the seeds' table) → explicit model first → strategy order (:mod:`.strategy`) → content filter
(a request with an image skips text-only models) → context-window filter; then, once the budgets have been asked
(:meth:`~llm_manager.accounting.Accounting.reserve`), :meth:`Plan.without` the candidates whose model budget is
spent and, past a soft limit, :meth:`Plan.cheapest_first`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from llm_manager.errors import BudgetExceededError, ConfigError, ContextTooLargeError, UnsupportedContentError
from llm_manager.routing.strategy import order
from llm_manager.tasks import task_kind
from llm_manager.tokens import DEFAULT_OUTPUT_ESTIMATE, estimate_prompt_tokens
from llm_manager.types import Attempt

if TYPE_CHECKING:
    from llm_manager.config import DeploymentConfig, Settings
    from llm_manager.costs.prices import ModelPrice
    from llm_manager.providers.base import Endpoint, ProviderAdapter
    from llm_manager.routing.stats import LatencyStats
    from llm_manager.types import Request

__all__ = ["Deployment", "Plan", "plan"]


@dataclass(slots=True)
class Deployment:
    """A configured model, ready to call."""

    name: str
    config: DeploymentConfig
    endpoint: Endpoint
    adapter: ProviderAdapter
    provider: str
    """Label for reports: the provider, or the preset for OpenAI-compatible servers."""
    price: ModelPrice | None
    """What a call costs (config overrides over the price table); ``None`` when unknown."""
    timeout_s: float

    @property
    def simulated(self) -> bool:
        """Whether answers come from the offline simulator."""
        return self.adapter.simulated

    def estimate_cost(
        self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0, cache_write_tokens: int = 0
    ) -> Decimal | None:
        """USD for the given token counts (exact ``Decimal``), or ``None`` when the price is unknown."""
        if self.price is None:
            return None
        from llm_manager.costs.prices import cost_of

        return cost_of(self.price, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens)

    def passed_over(self, code: str, why: str) -> Attempt:
        """The attempt record of this candidate left out without a call (``code`` says why, as an error code)."""
        return Attempt(
            deployment=self.name,
            provider=self.provider,
            model=self.endpoint.model,
            ok=False,
            skipped=True,
            error_code=code,
            error=why,
        )

    @property
    def latency_prior_ms(self) -> float | None:
        """What the ``performance`` strategy assumes of this deployment's latency until it has been measured:
        ``expected_latency_ms`` from config, else a simulated model's own ``simulate.latency_ms``."""
        if self.config.expected_latency_ms is not None:
            return self.config.expected_latency_ms
        if self.config.provider == "simulated":
            from llm_manager.config import SimulatedBehaviour

            return (self.config.simulate or SimulatedBehaviour()).latency_ms
        return None

    @property
    def price_in(self) -> Decimal | None:
        """USD per million input tokens, when known."""
        return self.price.input_per_mtok if self.price else None

    @property
    def price_out(self) -> Decimal | None:
        """USD per million output tokens, when known."""
        return self.price.output_per_mtok if self.price else None


@dataclass(slots=True)
class Plan:
    """Ordered candidates plus the deployments skipped (and why), for the response's attempt list."""

    candidates: list[Deployment]
    skipped: list[Attempt]
    needed_tokens: int
    prompt_tokens: int = 0
    """The prompt's token estimate (computed once here; budgets and limiters reuse it)."""

    def without(self, spent: set[str]) -> Plan:
        """The plan less the candidates whose own model budget is spent (recorded as skipped); raises
        :class:`BudgetExceededError` when none is left."""
        if not spent:
            return self
        kept = [d for d in self.candidates if d.name not in spent]
        if not kept:
            raise BudgetExceededError(f"every candidate's model budget is spent: {', '.join(sorted(spent))}")
        why = "this model's budget is spent"
        skipped = [*self.skipped, *(d.passed_over("budget_exceeded", why) for d in self.candidates if d.name in spent)]
        return Plan(kept, skipped, self.needed_tokens, self.prompt_tokens)

    def cheapest_first(self, request: Request) -> Plan:
        """Graduated downgrade, past a soft budget limit: the cheapest capable candidate answers first (an
        explicitly requested model keeps its place; unpriced ones go last)."""
        deps = self.candidates
        head, rest = (deps[:1], deps[1:]) if request.model else ([], deps)
        prompt = self.prompt_tokens or estimate_prompt_tokens(request)
        out = request.max_tokens or DEFAULT_OUTPUT_ESTIMATE

        def price(d: Deployment) -> tuple[bool, Decimal]:
            c = d.estimate_cost(prompt, out)
            return c is None, c if c is not None else Decimal(0)

        return Plan([*head, *sorted(rest, key=price)], self.skipped, self.needed_tokens, self.prompt_tokens)


def plan(request: Request, settings: Settings, deployments: dict[str, Deployment], stats: LatencyStats) -> Plan:
    """Order the candidates for ``request``; raise if none can take it."""
    names = _chain(request, settings)
    explicit = names[0] if request.model else None
    prompt_tokens = estimate_prompt_tokens(request)
    rest = [deployments[n] for n in names if n != explicit]
    ordered = order(rest, request, prompt_tokens, stats, settings.routing.strategy, settings.routing.overtake)
    if explicit:
        ordered.insert(0, deployments[explicit])
    skipped: list[Attempt] = []
    modalities = request.modalities
    if modalities:
        ordered = _taking(ordered, modalities, skipped)
    needed = prompt_tokens + (request.max_tokens or DEFAULT_OUTPUT_ESTIMATE)
    fits = []
    for dep in ordered:
        if dep.endpoint.context_window >= needed:
            fits.append(dep)
        else:
            why = f"needs ~{needed} tokens, window is {dep.endpoint.context_window}"
            skipped.append(dep.passed_over(ContextTooLargeError.code, why))
    if not fits:
        largest = max((d.endpoint.context_window for d in ordered), default=0)
        err = ContextTooLargeError(
            f"request needs ~{needed} tokens; the largest window among {', '.join(names)} is {largest}",
            token_count=needed,
            max_tokens=largest,
        )
        err.attempts = skipped  # each candidate passed over, for the ledger and the caller
        raise err
    return Plan(fits, skipped, needed, prompt_tokens)


def _taking(ordered: list[Deployment], needed: frozenset[str], skipped: list[Attempt]) -> list[Deployment]:
    """The candidates whose model accepts every input modality ``needed``; the others are recorded as skipped.
    Raises :class:`UnsupportedContentError` when none does."""
    taking: list[Deployment] = []
    for dep in ordered:
        missing = needed - dep.endpoint.profile.input_modalities
        if not missing:
            taking.append(dep)
            continue
        why = f"takes no {' or '.join(sorted(missing))} input"
        skipped.append(dep.passed_over(UnsupportedContentError.code, why))
    if not taking:
        wanted = " and ".join(sorted(needed))
        takes = "; ".join(f"{d.name}: {', '.join(sorted(d.endpoint.profile.input_modalities))}" for d in ordered)
        err = UnsupportedContentError(
            f"the request carries {wanted} input, which no candidate accepts ({takes}). Fix: ask a model that takes "
            f"it, or declare what a deployment accepts with `modalities: [text, {', '.join(sorted(needed))}]` in "
            "its config",
            modalities=sorted(needed),
        )
        err.attempts = skipped
        raise err
    return taking


def _chain(request: Request, settings: Settings) -> list[str]:
    chain = settings.chain(request.task)  # an unknown task: a ConfigError listing the known ones
    if task_kind(settings, request.task) == "embedding":
        raise ConfigError(f"task {request.task!r} routes embedding models, which return vectors: call embed() instead")
    if not request.model:
        if not chain:
            raise ConfigError(
                "no models configured. Fix: add `models:` to the config, or set a provider key "
                "(OPENAI_API_KEY, ANTHROPIC_API_KEY, …)."
            )
        return chain
    name = settings.resolve_name(request.model)
    if name is None:
        available = ", ".join([*settings.models, *settings.aliases()])
        raise ConfigError(f"unknown model {request.model!r}. Available: {available}.")
    if settings.models[name].resolved_kind == "embedding":
        raise ConfigError(f"{name!r} is an embedding model: it returns vectors (call embed()), not answers")
    if not request.fallback:
        return [name]
    return [name, *(n for n in chain if n != name)]
