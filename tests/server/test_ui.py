"""The dashboard: ``/admin/timeseries`` from the ledger, ``/ui`` served from the package, and the page itself driven
in headless Chromium (Debian's, launched through the ``playwright`` package; no browser is downloaded)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from llm_manager.config import Settings
from llm_manager.server.keys import create_key
from llm_manager.server.ui import CONTENT_SECURITY_POLICY
from tests.helpers import sim_settings
from tests.server.conftest import MODELS, Gateway, start_gateway


def _settings(**extra: Any) -> Settings:
    """The conftest's two models with prices (so cost is charted), a quick breaker and a daily budget."""
    models = {k: {**v, "input_price_per_mtok": "3", "output_price_per_mtok": "15"} for k, v in MODELS.items()}
    settings = sim_settings(
        models, max_retries=0, retry_after_cap_s=0.01, queue_timeout_s=0, circuit_breaker={"failure_threshold": 2}
    )
    settings.budgets = Settings.model_validate({"budgets": [{"name": "daily", "limit_usd": "1"}]}).budgets
    for name, value in extra.items():
        setattr(settings, name, value)
    return settings


@pytest.fixture
def gw() -> Iterator[Gateway]:
    yield from start_gateway(_settings())


def _chat(gateway: Gateway, model: str = "gpt", **headers: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=10)


def _series(gateway: Gateway, **params: str) -> dict[str, Any]:
    resp = httpx.get(f"{gateway.url}/admin/timeseries", params=params, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def _requests(gateway: Gateway) -> int:
    return sum(b["requests"] for b in _series(gateway, window="5m", bucket="1m")["buckets"])


def _admin_key(gateway: Gateway, admin: bool = True) -> str:
    async def make(llm: Any) -> tuple[str, str]:
        return await create_key(await llm.database(), "dash", admin=admin)

    return gateway.run(make)[1]  # type: ignore[no-any-return]


# -- /admin/timeseries ---------------------------------------------------------------------------------------------


def test_timeseries_counts_requests_errors_latency_and_cost_per_model(gw: Gateway) -> None:
    gw.script("gpt", "500")
    assert _chat(gw).status_code == 200  # gpt fails, claude answers
    assert _chat(gw).status_code == 200
    assert _chat(gw, "claude").status_code == 200
    gw.script("gpt", "500")
    gw.script("claude", "500")
    assert _chat(gw).status_code == 503  # both fail: a failed request

    data = _series(gw, window="2m", bucket="10s")
    buckets = data["buckets"]
    assert data["bucket_s"] == 10 and data["window_s"] == 120 and len(buckets) == 12
    assert [b["t"] for b in buckets] == list(range(buckets[0]["t"], buckets[0]["t"] + 120, 10))
    assert buckets[0]["t"] % 10 == 0 and data["keys"] == ["claude", "gpt"] and data["truncated"] is False
    assert sum(b["requests"] for b in buckets) == 4
    assert sum(b["errors"] for b in buckets) == 1
    assert sum(b["calls"] for b in buckets) == 6 and sum(b["call_errors"] for b in buckets) == 3
    busy = [b for b in buckets if b["calls"]]
    assert busy and all(b["latency_p50_ms"] <= b["latency_p95_ms"] for b in busy if b["latency_p50_ms"] is not None)

    # Cost per model agrees with the attempts /admin/requests lists.
    listed = httpx.get(f"{gw.url}/admin/requests", params={"since": "1h"}).json()["requests"]
    expected: dict[str, Decimal] = {}
    for req in listed:
        for a in req["attempts"]:
            expected[a["deployment"]] = expected.get(a["deployment"], Decimal(0)) + Decimal(a["cost"] or 0)
    charted = {k: sum((Decimal(b["models"].get(k, {}).get("cost", 0)) for b in buckets), Decimal(0)) for k in expected}
    assert charted == expected and expected["claude"] > 0
    failed_calls = {k: sum(b["models"].get(k, {}).get("call_errors", 0) for b in buckets) for k in expected}
    assert failed_calls == {"gpt": 2, "claude": 1}

    by_deployment = _series(gw, window="1m", bucket="1m", by="deployment")
    assert len(by_deployment["buckets"]) == 1 and set(by_deployment["buckets"][0]["deployments"]) == {"claude", "gpt"}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"window": "0s"}, "window"),
        ({"window": "25h"}, "window"),
        ({"window": "fortnight"}, "window"),
        ({"window": "1h", "bucket": "1s"}, "bucket"),  # 3600 buckets
        ({"window": "1m", "bucket": "2m"}, "bucket"),
        ({"bucket": "-5s"}, "bucket"),
        ({"by": "user"}, "by"),
    ],
)
def test_timeseries_rejects_bad_parameters_in_openai_shape(gw: Gateway, params: dict[str, str], param: str) -> None:
    resp = httpx.get(f"{gw.url}/admin/timeseries", params=params)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"]


def test_timeseries_needs_an_admin_key_once_keys_exist(gw: Gateway) -> None:
    user = _admin_key(gw, admin=False)
    admin = _admin_key(gw)
    assert httpx.get(f"{gw.url}/admin/timeseries").status_code == 401
    assert httpx.get(f"{gw.url}/admin/timeseries", headers={"authorization": f"Bearer {user}"}).status_code == 403
    ok = httpx.get(f"{gw.url}/admin/timeseries", headers={"authorization": f"Bearer {admin}"})
    assert ok.status_code == 200 and len(ok.json()["buckets"]) == 60  # 15m in 15s buckets by default


def test_timeseries_survives_a_restart_and_sums_replicas_sharing_a_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"

    def replica() -> Iterator[Gateway]:
        settings = _settings()
        settings.store.url = url
        settings.ledger.flush_interval_s = 0.05  # the other replica's rows are in the store this soon
        return start_gateway(settings)

    first = replica()
    gateway = next(first)
    for _ in range(2):
        assert _chat(gateway, "claude").status_code == 200
    first.close()  # a restart: the stopped gateway's ledger rows are flushed to the store

    a, b = replica(), replica()
    try:
        reader, writer = next(a), next(b)
        assert _chat(writer, "claude").status_code == 200
        deadline = time.monotonic() + 5  # the writer's flusher commits within its interval (0.05 s)
        while _requests(reader) != 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _requests(reader) == 3
    finally:
        a.close()
        b.close()


# -- /ui ------------------------------------------------------------------------------------------------------------


def test_ui_serves_the_packaged_files_with_a_strict_content_security_policy(gw: Gateway) -> None:
    static = resources.files("llm_manager.server").joinpath("static")
    page = httpx.get(f"{gw.url}/ui")  # open even when keys exist: the data calls are what need the key
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.content == static.joinpath("dashboard.html").read_bytes()
    for name, ctype in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        asset = httpx.get(f"{gw.url}/ui/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(ctype)
        assert asset.content == static.joinpath(name).read_bytes()
        # The only absolute URL anywhere is the SVG namespace, an identifier that is never fetched.
        assert set(re.findall(rb"[a-z]+://[^\s\"']+", asset.content)) <= {b"http://www.w3.org/2000/svg"}
    assert re.findall(rb"[a-z]+://", page.content) == []
    csp = page.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY and "default-src 'none'" in csp and "http" not in csp
    assert httpx.get(f"{gw.url}/ui/../app.py").status_code == 404
    missing = httpx.get(f"{gw.url}/ui/app.py")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


# -- the page in a browser -----------------------------------------------------------------------------------------


class _Tab:
    """A page in a fresh browser context that records every request it makes and every console error."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.urls: list[str] = []
        self.sent: list[dict[str, str]] = []
        self.errors: list[str] = []
        self.page.on("request", self._request)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def _request(self, request: Any) -> None:
        self.urls.append(request.url)  # requests the CSP then blocks are reported here too
        self.sent.append(request.headers)

    def foreign(self) -> list[str]:
        """Requests for anything but this machine's loopback."""
        return [u for u in self.urls if urlsplit(u).scheme != "data" and urlsplit(u).hostname != "127.0.0.1"]


@pytest.fixture
def tab(chromium: Any) -> Iterator[_Tab]:
    t = _Tab(chromium)
    yield t
    t.context.close()


def test_dashboard_renders_live_data_and_refreshes(gw: Gateway, tab: _Tab) -> None:
    gw.script("gpt", "500", "500")  # two failures open gpt's breaker (threshold 2); claude answers both
    fallback = _chat(gw).headers["x-request-id"]
    assert _chat(gw).status_code == 200 and _chat(gw, "claude").status_code == 200

    page = tab.page
    page.goto(f"{gw.url}/ui?refresh=1")
    page.wait_for_selector('#chart-rate[data-requests="3"]')
    assert page.locator("#requests tr.request").count() == 3
    assert page.locator("#chart-rate rect").count() >= 1
    assert page.locator("#chart-latency path.line").count() == 2
    assert float(page.get_attribute("#chart-cost", "data-total") or 0) > 0
    assert "claude" in page.inner_text("#legend-cost")
    assert page.locator('#breakers tr[data-deployment="gpt"][data-state="open"]').count() == 1
    assert page.locator('#breakers tr[data-deployment="claude"][data-state="closed"]').count() == 1
    assert "of $1.00" in page.inner_text('.gauge[data-budget="daily"]')

    # A request's attempts unfold on click: gpt's failure, then claude's answer.
    detail = page.locator(f'tr.attempts[data-request-id="{fallback}"]')
    assert detail.is_hidden()
    page.click(f'tr.request[data-request-id="{fallback}"]')
    assert detail.is_visible()
    assert [a.get_attribute("data-status") for a in detail.locator("tr.attempt").all()] == ["error", "ok"]

    # Auto-refresh brings a new request in, and keeps the unfolded row open.
    newest = _chat(gw, "claude").headers["x-request-id"]
    page.wait_for_selector(f'tr.request[data-request-id="{newest}"]', timeout=5_000)
    page.wait_for_selector('#chart-rate[data-requests="4"]', timeout=5_000)
    assert page.locator(f'tr.attempts[data-request-id="{fallback}"]').is_visible()

    assert sum(u.endswith("/admin/timeseries?window=15m&bucket=15s") for u in tab.urls) >= 2
    assert tab.foreign() == []
    assert tab.errors == []


def test_dashboard_asks_for_an_admin_key_and_sends_it_as_bearer(gw: Gateway, tab: _Tab) -> None:
    secret = _admin_key(gw)
    assert _chat(gw, "claude", authorization=f"Bearer {secret}").status_code == 200
    page = tab.page
    page.goto(f"{gw.url}/ui?refresh=0")
    page.wait_for_selector("#auth:not([hidden])")
    assert "admin key" in page.inner_text("#auth-message")
    assert page.get_attribute("body", "data-loaded") is None

    page.fill("#key-input", secret)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector('body[data-loaded="1"]')
    assert page.locator("#auth").is_hidden()
    assert page.locator("#requests tr.request").count() == 1
    assert page.evaluate("sessionStorage.getItem('llm-manager.admin-key')") == secret
    assert any(h.get("authorization") == f"Bearer {secret}" for h in tab.sent)
    assert tab.foreign() == []
    # The only console errors are the browser's own lines for the refused (401) data calls before the key.
    assert tab.errors and all("401" in e for e in tab.errors)
