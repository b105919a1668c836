"""The dashboard at ``GET /ui``: one HTML page, its script and its stylesheet, shipped inside the package.

No build step and nothing from another host: the files under ``static/`` are served as they are, and the
Content-Security-Policy lets the page load scripts, styles and data from this gateway only. The page itself is
open; the data it shows comes from the ``/admin/*`` routes, which ask for an admin key once keys exist (the page
lets the user paste one, kept in the tab's sessionStorage).
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse
from starlette.routing import Route

from llm_manager import _json
from llm_manager.server.errors import gateway_error

__all__ = ["CONTENT_SECURITY_POLICY", "routes"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_MEDIA_TYPES = {
    "dashboard.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",  # revalidate: an upgraded gateway must not run yesterday's script
}


def _file(name: str) -> HttpResponse:
    # Read per request from the installed package: a few KB, fetched once per page load.
    data = resources.files("llm_manager.server").joinpath("static", name).read_bytes()
    return HttpResponse(data, headers={**_HEADERS, "content-type": _MEDIA_TYPES[name]})


async def page(_: HttpRequest) -> HttpResponse:
    return _file("dashboard.html")


async def asset(http: HttpRequest) -> HttpResponse:
    name = http.path_params["name"]
    if name not in _MEDIA_TYPES or name == "dashboard.html":  # only the known files: no path is built from input
        reply = gateway_error(404, f"no dashboard file {name!r}", code="not_found")
        return HttpResponse(_json.dumps(reply.body), status_code=404, media_type="application/json")
    return _file(name)


def routes() -> list[Route]:
    """``/ui`` and its two assets."""
    return [Route("/ui", page, methods=["GET"]), Route("/ui/{name}", asset, methods=["GET"])]
