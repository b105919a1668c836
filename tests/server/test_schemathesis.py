"""Fuzz the live gateway with schemathesis against the document it serves at /openapi.json: for every operation,
with inputs valid and invalid, no 5xx and every answer as documented (status code, content type, body, headers).

One test per operation (listed from the document in the package, so the ids are known before a gateway runs); each
loads the schema from the running gateway and drives schemathesis's cases through Hypothesis itself. Bounded: a few
dozen cases per operation against instant simulated models, a few seconds in all.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import CheckContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from llm_manager.server.openapi import DOCUMENT
from tests.helpers import sim_settings
from tests.server.conftest import MODELS, Gateway, start_gateway


def no_server_error(ctx: CheckContext, response: Response, case: schemathesis.Case) -> bool | None:
    """No 5xx, except the 504 a client gets when it set itself a deadline too short for any answer (the models
    here are instant: a 504 under a deadline of half a second or more would be a bug)."""
    deadline = (case.headers or {}).get("x-llm-timeout")
    if response.status_code == 504 and deadline is not None and _seconds(deadline) < 0.5:
        error = response.json()["error"]  # OpenAI's shape says code timeout, Anthropic's type timeout_error
        assert error.get("code", error["type"]) in ("timeout", "timeout_error"), error
        return None
    return not_a_server_error(ctx, response, case)


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("inf")


def _serving(case: schemathesis.Case, model: str) -> schemathesis.Case:
    if isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = model
    return case


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
MAX_EXAMPLES = 30
SERVED = ["claude", "gpt", "smart", "fast", "task:analysis", "task:ui-generation"]
SERVED_EMBEDDINGS = ["emb", "vectors", "task:embedding"]
OPERATIONS = [(method.upper(), path) for path, ops in DOCUMENT["paths"].items() for method in ops]


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[Gateway]:
    settings_ = sim_settings({k: dict(v) for k, v in MODELS.items()}, max_retries=0, queue_timeout_s=0)
    yield from start_gateway(settings_)


@pytest.fixture(scope="module")
def api(fuzzed: Gateway) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    schema.config.update(base_url=fuzzed.url)
    return schema


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_as_documented(api: schemathesis.BaseSchema, method: str, path: str) -> None:
    operation = api[path][method]
    # Valid inputs name a model the gateway serves (a random name only reaches the 404); invalid ones stay as made.
    names = SERVED_EMBEDDINGS if path == "/v1/embeddings" else SERVED
    served = st.builds(_serving, operation.as_strategy(schemathesis.GenerationMode.POSITIVE), st.sampled_from(names))
    cases = st.one_of(served, operation.as_strategy(schemathesis.GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases on every run; a deeper search is a local, one-off affair
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS, timeout=10)

    fuzz()


# -- what the fuzzer found, pinned -------------------------------------------------------------------------------


def test_a_page_offset_past_64_bits_is_clamped_not_a_500(fuzzed: Gateway) -> None:
    resp = httpx.get(f"{fuzzed.url}/admin/requests", params={"offset": str(2**70)})
    assert resp.status_code == 200 and resp.json()["offset"] == 2**31 - 1


@pytest.mark.parametrize("route", ["/admin/costs", "/admin/requests"])
def test_a_since_further_back_than_a_date_is_a_400_not_a_500(fuzzed: Gateway, route: str) -> None:
    resp = httpx.get(f"{fuzzed.url}{route}", params={"since": "7116275w"})
    assert resp.status_code == 400 and "back further" in resp.json()["error"]["message"]
