"""The configured models as :class:`~llm_manager.routing.planner.Deployment` objects: endpoint (presets resolved),
adapter, price and timeout. Built once per manager; routing reads them and never imports an adapter by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_manager.routing.planner import Deployment

if TYPE_CHECKING:
    from collections.abc import Mapping

    from llm_manager._http import HttpClient
    from llm_manager.config import Settings
    from llm_manager.providers.base import ProviderAdapter

__all__ = ["deployments"]


def deployments(settings: Settings, http: HttpClient, given: Mapping[str, ProviderAdapter]) -> dict[str, Deployment]:
    """Every configured model as a deployment, with its endpoint, adapter (``given`` ones replace the configured:
    tests, custom transports), price and timeout."""
    from llm_manager.costs.prices import deployment_price, warn_unknown_price_once
    from llm_manager.providers.presets import resolve_endpoint
    from llm_manager.providers.registry import adapter_class

    out: dict[str, Deployment] = {}
    for name, dep in settings.models.items():
        endpoint = resolve_endpoint(name, dep, settings)
        embedding = dep.resolved_kind == "embedding"
        adapter = given.get(name) or adapter_class(endpoint.provider, embedding=embedding)(endpoint, http)
        price = deployment_price(dep)
        if price is None:
            warn_unknown_price_once(name, dep.model_name)
        out[name] = Deployment(
            name=name,
            config=dep,
            endpoint=endpoint,
            adapter=adapter,
            provider=("portkey" if endpoint.via_portkey else dep.preset or dep.provider),
            price=price,
            timeout_s=dep.timeout_s or settings.routing.timeout_s,
        )
    return out
