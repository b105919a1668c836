"""``GET /v1/models/{id}``: one model object, as ``GET /v1/models`` lists it (OpenAI's ``models.retrieve``).

The id is a deployment, an alias or a ``task:<type>`` pseudo-model; it may hold slashes (``openrouter/x``, as
OpenAI-compatible vendors name models), so the route takes the rest of the path. An id the gateway does not serve,
or one the caller's key may not use, is a 404 in OpenAI's shape (``model_not_found``): a restricted key learns
nothing about models outside its list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse

from llm_manager import _json
from llm_manager.server.errors import gateway_error
from llm_manager.server.openai_api import model_objects

if TYPE_CHECKING:
    from llm_manager.server.app import _Gateway

__all__ = ["ModelRoute"]


class ModelRoute:
    """The handler (a method: Starlette calls a plain instance as ASGI), sharing the gateway's authentication."""

    def __init__(self, gateway: _Gateway) -> None:
        self.gw = gateway

    async def get(self, http: HttpRequest) -> HttpResponse:
        from llm_manager.server.app import _error, _new_id, _Reject

        gw = self.gw
        try:
            key = await gw._authenticate(http.headers)
        except _Reject as rej:
            return _error(rej.reply, _new_id())
        model_id: str = http.path_params["model_id"]
        allows = key.allows if key is not None and key.models is not None else None
        found = next((m for m in model_objects(gw.llm.settings, gw.created, allows) if m["id"] == model_id), None)
        if found is None:
            msg = f"The model `{model_id}` does not exist. GET /v1/models lists the ones this gateway serves."
            return _error(gateway_error(404, msg, code="model_not_found", param="model"), _new_id())
        return HttpResponse(_json.dumps(found), media_type="application/json")
