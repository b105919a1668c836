"""The admin API: status, costs and recent requests, behind admin keys."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from llm_manager.server.keys import create_key
from tests.server.conftest import Gateway


def _keys(gateway: Gateway, **kw: Any) -> tuple[str, str]:
    async def make(llm: Any) -> tuple[str, str]:
        return await create_key(await llm.database(), "k", **kw)

    return gateway.run(make)  # type: ignore[no-any-return]


def test_admin_routes_report_status_costs_and_requests(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0)
    gateway.script("gpt", "503")
    client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hello"}])
    client.chat.completions.create(model="task:analysis", messages=[{"role": "user", "content": "why"}])
    status = httpx.get(f"{gateway.url}/admin/status").json()
    assert "deployments" in status and "budgets" in status
    costs = httpx.get(f"{gateway.url}/admin/costs", params={"by": "task", "since": "1d"}).json()
    assert costs["summary"]["requests"] == 2 and {t["key"] for t in costs["totals"]} >= {"general", "analysis"}
    page = httpx.get(f"{gateway.url}/admin/requests", params={"limit": 1}).json()
    assert page["total"] == 2 and len(page["requests"]) == 1
    first = httpx.get(f"{gateway.url}/admin/requests", params={"limit": 1, "offset": 1}).json()["requests"][0]
    assert [a["status"] for a in first["attempts"]] == ["error", "ok"] and first["status"] == "ok"
    bad = httpx.get(f"{gateway.url}/admin/costs", params={"by": "colour"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "by"


def test_admin_routes_need_an_admin_key_once_keys_exist(gateway: Gateway) -> None:
    _, user_secret = _keys(gateway)
    _, admin_secret = _keys(gateway, admin=True)
    assert httpx.get(f"{gateway.url}/admin/status").status_code == 401
    plain = httpx.get(f"{gateway.url}/admin/status", headers={"authorization": f"Bearer {user_secret}"})
    assert plain.status_code == 403 and plain.json()["error"]["code"] == "admin_key_required"
    ok = httpx.get(f"{gateway.url}/admin/requests", headers={"authorization": f"Bearer {admin_secret}"})
    assert ok.status_code == 200 and ok.json()["requests"] == []
