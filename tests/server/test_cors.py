"""Browser access (``gateway.cors_origins``) over real HTTP: preflights, answers and event streams from allowed
pages carry the CORS headers, other pages get none, and with no origins configured nothing changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from llm_manager.config import load_settings
from llm_manager.errors import ConfigError
from tests.fakes.server import FakeUpstream, Recorded, Reply, serve_in_thread
from tests.helpers import sim_settings
from tests.server.conftest import MODELS, Gateway, start_gateway

APP = "https://app.example.com"
CHAT = {"model": "gpt", "messages": [{"role": "user", "content": "hello"}]}
# What the official SDKs send from a browser, besides our own steering headers.
SDK_HEADERS = "authorization, content-type, x-api-key, anthropic-version, x-stainless-os, x-llm-task, x-llm-user"


def _gateway(origins: Any) -> Iterator[Gateway]:
    settings = sim_settings({k: dict(v) for k, v in MODELS.items()})
    settings.gateway = settings.gateway.model_copy(update={"cors_origins": origins})
    yield from start_gateway(settings)


@pytest.fixture
def listed() -> Iterator[Gateway]:
    yield from _gateway([APP, "http://localhost:5173"])


@pytest.fixture
def anyone() -> Iterator[Gateway]:
    yield from _gateway(["*"])


def _preflight(gw: Gateway, path: str, origin: str, method: str = "POST") -> httpx.Response:
    headers = {"origin": origin, "access-control-request-method": method, "access-control-request-headers": SDK_HEADERS}
    return httpx.options(f"{gw.url}{path}", headers=headers)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/embeddings", "/v1/models"])
def test_a_preflight_from_an_allowed_page_is_answered(listed: Gateway, path: str) -> None:
    r = _preflight(listed, path, APP)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == APP
    assert {"GET", "POST", "DELETE", "OPTIONS"} <= set(r.headers["access-control-allow-methods"].split(", "))
    allowed = {h.strip() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {h.strip() for h in SDK_HEADERS.split(",")} <= allowed
    assert r.headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in r.headers  # keys travel in headers, never cookies


def test_a_listed_public_page_may_reach_a_private_gateway(listed: Gateway) -> None:
    headers = {
        "origin": APP,
        "access-control-request-method": "POST",
        "access-control-request-private-network": "true",
    }
    r = httpx.options(f"{listed.url}/v1/chat/completions", headers=headers)
    assert r.status_code == 200 and r.headers["access-control-allow-private-network"] == "true"
    other = httpx.options(
        f"{listed.url}/v1/chat/completions", headers={**headers, "origin": "https://evil.example.net"}
    )
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers


def test_a_preflight_from_another_page_is_refused(listed: Gateway) -> None:
    r = _preflight(listed, "/v1/chat/completions", "https://evil.example.net")
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers


def test_answers_to_an_allowed_page_carry_the_origin_and_expose_the_gateway_headers(listed: Gateway) -> None:
    r = httpx.post(f"{listed.url}/v1/chat/completions", json=CHAT, headers={"origin": "http://localhost:5173"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "Origin" in r.headers["vary"]  # a shared cache must not hand this answer to another page
    exposed = set(r.headers["access-control-expose-headers"].split(", "))
    sent = {h for h in r.headers if h.startswith("x-llm-") or h == "x-request-id"}
    assert sent and sent <= exposed, f"answered with headers a page cannot read: {sent - exposed}"
    assert {"x-llm-dropped-params", "retry-after", "x-should-retry"} <= exposed


def test_errors_and_other_routes_carry_the_origin_too(listed: Gateway) -> None:
    bad = httpx.post(f"{listed.url}/v1/chat/completions", json={"model": "nope"}, headers={"origin": APP})
    assert bad.status_code in (400, 404) and bad.headers["access-control-allow-origin"] == APP
    models = httpx.get(f"{listed.url}/v1/models", headers={"origin": APP})
    assert models.status_code == 200 and models.headers["access-control-allow-origin"] == APP


def test_another_page_gets_no_allow_origin(listed: Gateway) -> None:
    r = httpx.post(f"{listed.url}/v1/chat/completions", json=CHAT, headers={"origin": "https://evil.example.net"})
    assert r.status_code == 200  # the browser, not the gateway, withholds the answer from the page
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {**CHAT, "stream": True}),
        ("/v1/messages", {**CHAT, "max_tokens": 20, "stream": True}),
    ],
)
def test_event_streams_carry_the_cors_headers(anyone: Gateway, path: str, body: dict[str, Any]) -> None:
    with httpx.stream("POST", f"{anyone.url}{path}", json=body, headers={"origin": APP}, timeout=10) as r:
        text = r.read().decode()
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["access-control-allow-origin"] == "*"
    assert "x-llm-model" in r.headers["access-control-expose-headers"]
    assert text.endswith("data: [DONE]\n\n") or "message_stop" in text


def test_any_page_with_a_star(anyone: Gateway) -> None:
    r = _preflight(anyone, "/v1/chat/completions", "https://whoever.example.org")
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"


def test_off_by_default(gateway: Gateway) -> None:
    r = _preflight(gateway, "/v1/chat/completions", APP)
    assert r.status_code == 405 and "access-control-allow-origin" not in r.headers
    answer = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers={"origin": APP})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize(
    ("value", "expected"),
    [("*", ["*"]), (APP, [APP]), ([APP, "http://127.0.0.1:8080"], [APP, "http://127.0.0.1:8080"]), (None, None)],
)
def test_config_takes_a_star_one_origin_or_a_list(value: Any, expected: Any) -> None:
    settings = load_settings({"gateway": {"cors_origins": value}}, env={})
    assert settings.gateway.cors_origins == expected


@pytest.mark.parametrize("bad", ["https://app.example.com/", "app.example.com", "https://app.example.com/path"])
def test_config_refuses_what_is_not_an_origin(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"gateway": {"cors_origins": ["*", bad]}}, env={})
    text = str(info.value)
    assert "gateway.cors_origins" in text and repr(bad) in text and "scheme://host[:port]" in text


# -- in a browser ------------------------------------------------------------------------------------------------

PAGE = """<!doctype html><title>app</title><script>
window.chat = async (gateway) => {
  const r = await fetch(gateway + "/v1/chat/completions", {
    method: "POST",
    headers: {"content-type": "application/json", "authorization": "Bearer unused", "x-llm-task": "general"},
    body: JSON.stringify({model: "gpt", stream: true, messages: [{role: "user", content: "hello"}]}),
  });
  const reader = r.body.getReader(), decoder = new TextDecoder();
  let text = "";
  for (;;) { const {done, value} = await reader.read(); if (done) break; text += decoder.decode(value); }
  return {status: r.status, model: r.headers.get("x-llm-model"), text};
};
</script>"""


@pytest.fixture(scope="module")
def pages() -> Iterator[tuple[str, str]]:
    """Two web apps serving :data:`PAGE` on loopback, as a developer's would (another port is another origin): the
    first one listed in the gateway's ``cors_origins``, the second not."""

    def page(_: Recorded) -> Reply:
        return Reply(headers={"content-type": "text/html; charset=utf-8"}, body=PAGE.encode())

    with serve_in_thread(FakeUpstream(page)) as listed, serve_in_thread(FakeUpstream(page)) as other:
        yield listed.url, other.url


@pytest.fixture
def browser_gateway(pages: tuple[str, str]) -> Iterator[Gateway]:
    yield from _gateway([APP, pages[0]])


def _chat_from(browser: Any, page_url: str, gateway: Gateway, console: list[str] | None = None) -> Any:
    context = browser.new_context()
    try:
        page = context.new_page()
        if console is not None:
            page.on("console", lambda m: console.append(m.text))
        page.goto(f"{page_url}/")
        return page.evaluate("gateway => chat(gateway)", gateway.url)
    finally:
        context.close()


def test_a_listed_page_streams_a_chat_from_the_browser(
    browser_gateway: Gateway, pages: tuple[str, str], chromium: Any
) -> None:
    got = _chat_from(chromium, pages[0], browser_gateway)
    assert got["status"] == 200 and got["model"] == "gpt"  # an exposed header, readable by the page's script
    assert got["text"].endswith("data: [DONE]\n\n")


def test_another_page_is_stopped_by_the_browser(
    browser_gateway: Gateway, pages: tuple[str, str], chromium: Any
) -> None:
    console: list[str] = []
    with pytest.raises(Exception, match="Failed to fetch"):
        _chat_from(chromium, pages[1], browser_gateway, console)
    assert any("blocked by CORS policy" in m and "preflight" in m for m in console), console
