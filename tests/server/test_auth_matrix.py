"""The auth matrix: every route the app exposes, against every kind of caller, once gateway keys exist.

Routes are read from ``create_app(...).routes`` when the test runs, so a route added later is covered (or, when
its prefix is unknown, makes :func:`test_every_route_is_classified` fail until it is classified here):

* ``/v1/*`` needs a gateway key: none, a wrong one or a revoked one gets 401, and nothing is called;
* ``/admin/*`` needs an admin key: the above gets 401, a plain key 403;
* ``/health``, ``/health/ready``, ``/metrics``, ``/openapi.json`` and the dashboard (``/ui``, ``/ui/*``) are open
  (the dashboard's data comes from ``/admin/*``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest
from starlette.routing import BaseRoute, Mount, Route

from llm_manager.manager import LLMManager
from llm_manager.providers.simulated import SimulatedAdapter
from llm_manager.server import create_app
from llm_manager.server.keys import create_key, revoke_key
from tests.server.conftest import Gateway

Kind = Literal["v1", "admin", "open"]
OPEN_PATHS = ("/health", "/health/ready", "/metrics", "/openapi.json")
OPEN_PREFIXES = ("/ui",)
# A body both POST wires accept (Anthropic's Messages requires max_tokens).
BODY = {"model": "gpt", "max_tokens": 16, "messages": [{"role": "user", "content": "hello there"}]}
EMBEDDINGS_BODY = {"model": "emb", "input": "hello there"}
RESPONSES_BODY = {"model": "gpt", "input": "hello there"}
COMPLETIONS_BODY = {"model": "gpt", "prompt": "hello there"}
COUNTS_ONLY = {"/v1/messages/count_tokens"}
"""POST routes that call no model here (simulated deployments have no counting endpoint: the gateway estimates)."""
BODIES = {"/v1/embeddings": EMBEDDINGS_BODY, "/v1/responses": RESPONSES_BODY, "/v1/completions": COMPLETIONS_BODY}


def classify(path: str) -> Kind | None:
    if path.startswith("/v1/"):
        return "v1"
    if path.startswith("/admin/"):
        return "admin"
    if path in OPEN_PATHS or any(path == p or path.startswith(p + "/") for p in OPEN_PREFIXES):
        return "open"
    return None


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    """The route's path with its parameters filled in."""
    kind: Kind | None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def endpoints(gateway: Gateway) -> list[Endpoint]:
    """Every (method, path) the app serves, from the same factory the gateway was built with."""
    out: list[Endpoint] = []

    def walk(routes: list[BaseRoute], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                walk(list(route.routes), prefix + route.path)
            elif isinstance(route, Route):
                path = prefix + re.sub(r"\{[^}]+\}", "x", route.path)  # a parameter: any value will do
                for method in sorted(route.methods or {"GET"}):
                    out.append(Endpoint(method, path, classify(prefix + route.path)))
            else:
                raise AssertionError(f"unexpected route type {type(route).__name__}: teach this test about it")

    walk(list(create_app(gateway.llm).routes), "")
    return out


@dataclass
class Keys:
    user: str
    admin: str
    revoked: str


@pytest.fixture
def keys(gateway: Gateway) -> Keys:
    async def make(llm: LLMManager) -> Keys:
        db = await llm.database()
        _, user = await create_key(db, "user")
        _, admin = await create_key(db, "admin", admin=True)
        revoked_id, revoked = await create_key(db, "gone")
        assert await revoke_key(db, revoked_id)
        return Keys(user, admin, revoked)

    made: Keys = gateway.run(make)
    return made


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        yield client


def calls(gateway: Gateway) -> int:
    total = 0
    for name in gateway.llm.settings.models:
        adapter = gateway.llm.adapter(name)
        assert isinstance(adapter, SimulatedAdapter)
        total += adapter.calls
    return total


def send(http: httpx.Client, ep: Endpoint, headers: dict[str, str]) -> httpx.Response:
    if ep.method in ("POST", "PUT", "PATCH"):
        body = BODIES.get(ep.path, BODY)
        return http.request(ep.method, ep.path, json=body, headers=headers)
    return http.request(ep.method, ep.path, headers=headers)


def check_error_body(ep: Endpoint, resp: httpx.Response, status: int) -> str | None:
    """``None`` when ``resp`` is the wire's error for ``status``, else what is wrong with it."""
    if ep.method == "HEAD":
        return None  # no body to look at
    try:
        body: Any = resp.json()
    except ValueError:
        return f"not JSON: {resp.text[:80]!r}"
    if ep.path.startswith("/v1/messages"):  # Anthropic's wire: the Anthropic SDK parses this shape
        want = {401: "authentication_error", 403: "permission_error"}[status]
        ok = body.get("type") == "error" and body.get("error", {}).get("type") == want and body["error"]["message"]
        return None if ok else f"not an Anthropic {want}: {body}"
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or set(err) != {"message", "type", "param", "code"} or not err["message"]:
        return f"not an OpenAI error body: {body}"
    want_code = {401: "invalid_api_key", 403: "admin_key_required"}[status]
    return None if err["code"] == want_code else f"code {err['code']!r}, expected {want_code!r}"


def test_every_route_is_classified(gateway: Gateway) -> None:
    eps = endpoints(gateway)
    assert [str(e) for e in eps if e.kind is None] == [], "new route prefix: decide here whether it needs a key"
    paths = {e.path for e in eps}
    # What this file was written against; more may come, none of these may silently disappear.
    assert {"/v1/chat/completions", "/v1/models", "/admin/status", "/health", "/metrics"} <= paths
    assert {"/v1/responses", "/v1/responses/x", "/v1/responses/x/input_items"} <= paths


REFUSED: dict[str, dict[str, str] | None] = {  # None: the revoked key, made by the fixture
    "no key": {},
    "bearer without a token": {"authorization": "Bearer"},
    "wrong bearer": {"authorization": "Bearer llmm-" + "x" * 32},
    "wrong x-api-key": {"x-api-key": "llmm-" + "y" * 32},
    "not a gateway key": {"authorization": "Bearer sk-proj-abc"},
    "basic auth": {"authorization": "Basic dXNlcjpwYXNz"},
    "revoked key": None,
}


@pytest.mark.parametrize("who", list(REFUSED))
def test_strangers_get_401_and_nothing_is_called(gateway: Gateway, keys: Keys, http: httpx.Client, who: str) -> None:
    presented = REFUSED[who]
    headers = {"authorization": f"Bearer {keys.revoked}"} if presented is None else presented
    problems: list[str] = []
    for ep in endpoints(gateway):
        if ep.kind == "open":
            continue
        resp = send(http, ep, headers)
        if resp.status_code != 401:
            problems.append(f"{ep}: {resp.status_code}, expected 401")
        elif (why := check_error_body(ep, resp, 401)) is not None:
            problems.append(f"{ep}: {why}")
    assert problems == []
    assert calls(gateway) == 0


def test_a_plain_key_is_forbidden_on_admin_routes(gateway: Gateway, keys: Keys, http: httpx.Client) -> None:
    admin_eps = [ep for ep in endpoints(gateway) if ep.kind == "admin"]
    assert admin_eps
    problems: list[str] = []
    for presented in ({"authorization": f"Bearer {keys.user}"}, {"x-api-key": keys.user}):
        for ep in admin_eps:
            resp = send(http, ep, presented)
            if resp.status_code != 403:
                problems.append(f"{ep}: {resp.status_code}, expected 403")
            elif (why := check_error_body(ep, resp, 403)) is not None:
                problems.append(f"{ep}: {why}")
    assert problems == []
    assert calls(gateway) == 0


def test_the_right_key_is_let_through(gateway: Gateway, keys: Keys, http: httpx.Client) -> None:
    problems: list[str] = []
    answered = 0
    for ep in endpoints(gateway):
        who = [keys.admin] if ep.kind == "admin" else [keys.user, keys.admin]
        for secret in who:
            for presented in ({"authorization": f"Bearer {secret}"}, {"x-api-key": secret}):
                resp = send(http, ep, presented)
                if resp.status_code in (401, 403) or resp.status_code >= 500:
                    problems.append(f"{ep} ({'admin' if secret == keys.admin else 'user'}): {resp.status_code}")
                elif ep.method == "POST" and ep.path not in COUNTS_ONLY:
                    answered += 1
    assert problems == []
    assert answered and calls(gateway) == answered  # each accepted POST reached a model exactly once


def test_open_routes_need_no_key(gateway: Gateway, keys: Keys, http: httpx.Client) -> None:
    open_eps = [ep for ep in endpoints(gateway) if ep.kind == "open"]
    assert {"/health", "/health/ready", "/metrics"} <= {ep.path for ep in open_eps}
    problems = [
        f"{ep}: {resp.status_code}"
        for ep in open_eps
        if (resp := send(http, ep, {})).status_code in (401, 403) or resp.status_code >= 500
    ]
    assert problems == []
    assert calls(gateway) == 0
