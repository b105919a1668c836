"""How config becomes an :class:`~llm_manager.providers.base.Endpoint`, from the deployment's settings and its
vendor's row in :data:`llm_manager.vendors.PRESETS` (where each provider lives, which variable holds its key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_manager.profiles import ModelProfile
from llm_manager.providers.base import Endpoint
from llm_manager.vendors import PRESETS, Preset

if TYPE_CHECKING:
    from llm_manager.config import DeploymentConfig, Settings
    from llm_manager.profiles import Modality

__all__ = ["PRESETS", "Preset", "resolve_endpoint"]


# Portkey's provider slugs for our protocol names (used for x-portkey-provider when routing through it).
_PORTKEY_SLUG = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}


def preset_for(dep: DeploymentConfig) -> Preset:
    """The preset a deployment builds on (its ``preset`` if given, else its provider's)."""
    return PRESETS[dep.preset or dep.provider]


def resolve_endpoint(name: str, dep: DeploymentConfig, settings: Settings) -> Endpoint:
    """Turn a deployment's config into the endpoint its adapter calls, applying presets and Portkey routing."""
    preset = preset_for(dep)
    headers = dict(preset.headers)
    headers.update(dep.headers)
    adapter = preset.adapter
    base_url = dep.base_url or preset.base_url
    portkey = settings.portkey
    via_portkey = dep.provider == "portkey" or (
        portkey is not None and portkey.route_all and dep.provider in _PORTKEY_SLUG
    )
    if via_portkey:
        adapter = "openai"  # Portkey speaks the OpenAI wire format for every upstream.
        base_url = (dep.base_url if dep.provider == "portkey" else None) or (
            portkey.base_url if portkey else PRESETS["portkey"].base_url
        )
        headers.update(_portkey_headers(dep, settings))
    elif dep.api == "responses":
        adapter = "openai-responses"  # the same server, spoken to through its Responses API
    return Endpoint(
        name=name,
        provider=adapter,
        model=dep.model_name,
        base_url=base_url.rstrip("/"),
        headers=headers,
        extra_body=dict(dep.extra_body),
        max_output_tokens=dep.max_output_tokens,
        default_max_tokens=dep.default_max_tokens,
        profile=model_profile(dep, preset, via_portkey),
        via_portkey=via_portkey,
        simulate=dep.simulate,
        seed=settings.simulation.seed,
    )


def model_profile(dep: DeploymentConfig, preset: Preset, via_portkey: bool) -> ModelProfile:
    """A deployment's capabilities: its config, else the built-in facts about its model, else the preset's."""
    from llm_manager.profiles import ALL_MODALITIES, max_tokens_field, profile_for

    known = profile_for(dep.model_name)
    modalities: frozenset[Modality]
    if dep.modalities is not None:
        modalities = frozenset([*dep.modalities, "text"])
    elif dep.provider == "simulated":
        modalities = ALL_MODALITIES  # a test double: takes whatever the request carries unless config says otherwise
    else:
        modalities = known.modalities if known else frozenset({"text"})
    reasoning = dep.reasoning if dep.reasoning is not None else (known.reasoning if known else False)
    structured = dep.structured_output or ("json_schema" if via_portkey else preset.structured)
    return ModelProfile(
        family=dep.resolved_family,
        context_window=dep.context_window or (known.context_window if known else 8192),
        input_modalities=modalities,
        structured=structured,
        json_object=structured != "prompt",
        reasoning=reasoning,
        # Only OpenAI itself enforces the new field; compatible servers still expect max_tokens.
        max_tokens_field=max_tokens_field(dep.model_name) if dep.provider == "openai" else "max_tokens",
        stream_usage=dep.stream_usage if dep.stream_usage is not None else preset.stream_usage,
        sampling=frozenset(preset.sampling),
    )


def _portkey_headers(dep: DeploymentConfig, settings: Settings) -> dict[str, str]:
    pk = settings.portkey
    route = dep.portkey
    out: dict[str, str] = {}
    api_key = (route.api_key if route and route.api_key else None) or (pk.api_key if pk else None)
    if api_key is not None:
        out["x-portkey-api-key"] = api_key.get_secret_value()
    if route and route.virtual_key:
        out["x-portkey-virtual-key"] = route.virtual_key.get_secret_value()
    else:
        slug = (route.provider if route and route.provider else None) or _PORTKEY_SLUG.get(dep.provider)
        if slug:
            out["x-portkey-provider"] = slug
    cfg = (route.config if route and route.config else None) or (pk.config if pk else None)
    if cfg:
        out["x-portkey-config"] = cfg
    return out
