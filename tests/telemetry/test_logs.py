"""Request logs: one structured record per request, JSON lines, no text unless asked, keys always masked."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_manager.errors import ProviderError
from llm_manager.telemetry import (
    JsonFormatter,
    Telemetry,
    TelemetryConfig,
    TextFormatter,
    log_request,
    make_handler,
    redact,
)
from tests.telemetry import (
    COMPLETION,
    KEY,
    PROMPT,
    SYSTEM,
    all_failed_error,
    cached_response,
    fallback_response,
    make_request,
)


@pytest.fixture(autouse=True, scope="module")
def _no_secrets_of_other_tests() -> Iterator[None]:
    """These cases assert redact()'s vendor shapes; a secret another test's manager still keeps registered (e.g. a
    short fake key like "sk-ant") would mask inside them. Run them with no live secret sets."""
    from llm_manager import _redact

    saved = _redact._live
    _redact._live = {}
    yield
    _redact._live = saved


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    log = logging.getLogger("tests.telemetry.requests")
    handler = make_handler("json", out)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log, out
    log.removeHandler(handler)


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_response_is_one_json_line_with_the_facts(logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = logger
    log_request(log, fallback_response(), make_request(), False)
    (line,) = _lines(out)
    assert line["level"] == "INFO" and line["logger"] == "tests.telemetry.requests"
    assert str(line["ts"]).endswith("+00:00")
    assert {k: line[k] for k in ("request_id", "deployment", "model", "provider", "task", "status")} == {
        "request_id": "req-1",
        "deployment": "backup",
        "model": "gemini-2.0-flash-001",
        "provider": "gemini",
        "task": "analysis",
        "status": "ok",
    }
    assert line["latency_ms"] == 200.0
    assert line["tokens"] == {"input": 120, "output": 30, "cached": 40}
    assert line["cost"] == "0.0042"
    assert (line["retries"], line["cached"], line["fallback_used"]) == (2, False, True)
    assert "request req-1 ok: backup" in str(line["message"])


def test_no_prompt_or_completion_unless_enabled(logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = logger
    log_request(log, fallback_response(), make_request(), False)
    log_request(log, all_failed_error(), make_request(), False, request_id="req-4", latency_ms=12.5)
    text = out.getvalue()
    for secret in (PROMPT, SYSTEM, COMPLETION):
        assert secret not in text
    assert all("prompt" not in line and "completion" not in line for line in _lines(out))


def test_prompts_logged_when_enabled(logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = logger
    log_request(log, fallback_response(), make_request(), True)
    (line,) = _lines(out)
    assert line["prompt"] == {"system": SYSTEM, "messages": [{"role": "user", "content": PROMPT}]}
    assert line["completion"] == COMPLETION


def test_error_record_has_code_and_masked_message(logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = logger
    log_request(log, all_failed_error(), make_request(), False, request_id="req-4", latency_ms=12.5)
    (line,) = _lines(out)
    assert line["status"] == "all_candidates_failed"
    assert line["error_type"] == "AllCandidatesFailedError"
    assert line["retries"] == 1 and line["latency_ms"] == 12.5 and line["request_id"] == "req-4"
    assert line["provider"] == "ollama"
    assert KEY not in out.getvalue()
    assert "Bearer ***" in str(line["error"]) and "Bearer ***" in str(line["message"])


def test_a_key_inside_an_error_message_is_masked_in_both_formats() -> None:
    err = ProviderError(f"upstream said: Incorrect API key provided: {KEY}", status_code=401, deployment="primary")
    for formatter in (JsonFormatter(), TextFormatter()):
        out = io.StringIO()
        log = logging.getLogger(f"tests.telemetry.mask.{type(formatter).__name__}")
        handler = logging.StreamHandler(out)
        handler.setFormatter(formatter)
        log.addHandler(handler)
        log.propagate = False
        try:
            log.warning("call failed: %s", err)  # any module's message, not only log_request's
            try:
                raise err
            except ProviderError:
                log.exception("with traceback")
        finally:
            log.removeHandler(handler)
        text = out.getvalue()
        assert KEY not in text and KEY[8:20] not in text
        assert text.count("sk-proj-***") == 2  # in the first message and in the traceback


def test_json_formatter_keeps_extras_and_stringifies_the_rest() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.cost = Decimal("0.10")
    record.header = f"Authorization: Bearer {KEY}"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello world"
    assert line["cost"] == "0.10"
    assert line["header"] == "Authorization: Bearer ***"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key sk-proj-abcdefghijklmnop1234 bad", "key sk-proj-*** bad"),
        ("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv-_x", "sk-ant-***"),
        ("sk-abcdefghijklmnopqrstuvwxyz012345", "sk-***"),
        ("sk-or-v1-0123456789abcdef0123456789abcdef", "sk-or-v1-***"),
        ("AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "AIza***"),
        ("gsk_0123456789ABCDEFGHIJabcdefghij", "gsk_***"),
        ("xai-0123456789ABCDEFGHIJabcdefghij", "xai-***"),
        ("Authorization: Bearer eyJhbGciOi.JIUzI1NiJ9.abc-def_123=", "Authorization: Bearer ***"),
        ("headers={'x-api-key': 'abcdef0123456789'}", "headers={'x-api-key': '***'}"),
        ("GET /v1beta/models?key=abcdefghijklmnop&alt=sse", "GET /v1beta/models?key=***&alt=sse"),
        ("x-goog-api-key: AbCdEfGh12345678", "x-goog-api-key: ***"),
        # Not keys: left alone.
        ("task-ant-like words and sk-short", "task-ant-like words and sk-short"),
        ("mask-abcdefghijklmnopqrstuvwxyz", "mask-abcdefghijklmnopqrstuvwxyz"),
        ("the bearer of bad news", "the bearer of bad news"),
        ("deployment gpt-4o-mini failed", "deployment gpt-4o-mini failed"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


# A secret always has an upper-case letter and a digit, and the surrounding text has neither, so it can only be
# found in the output if it was left unmasked.
_SECRET = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=24, max_size=64
).filter(lambda s: any(c.isupper() for c in s) and any(c.isdigit() for c in s))


@given(
    prefix=st.sampled_from(["sk-", "sk-ant-api03-", "sk-proj-", "AIza", "gsk_", "Bearer "]),
    secret=_SECRET,
    before=st.text(alphabet="abcxyz .,:;!?()[]{}<>/=-_'\"\n\t", max_size=40),
    after=st.text(alphabet=" .,;:)]}'\"\n", max_size=5),
)
def test_redact_masks_any_key_in_any_text(prefix: str, secret: str, before: str, after: str) -> None:
    text = f"{before} {prefix}{secret}{after}"
    assert secret not in redact(text)


def test_telemetry_emits_one_record_per_request() -> None:
    out = io.StringIO()
    log = logging.getLogger("tests.telemetry.per_request")
    log.addHandler(make_handler("json", out))
    log.setLevel(logging.INFO)
    log.propagate = False
    tel = Telemetry(TelemetryConfig(metrics=False), request_logger=log)
    t0 = time.perf_counter_ns()
    tel.request(make_request(), "req-1", stream=False).finish(fallback_response(), None, started_at_ns=t0)
    tel.request(make_request(), "req-2", stream=False).finish(cached_response(), None, started_at_ns=t0)
    tel.request(make_request(), "req-9", stream=False).finish(None, all_failed_error(), started_at_ns=t0)
    lines = _lines(out)
    assert [line["status"] for line in lines] == ["ok", "cached", "all_candidates_failed"]
    assert [line["request_id"] for line in lines] == ["req-1", "req-2", "req-9"]  # the id the manager assigned
    assert PROMPT not in out.getvalue()


def test_nothing_is_built_when_the_logger_is_off() -> None:
    log = logging.getLogger("tests.telemetry.off")
    log.setLevel(logging.WARNING)
    broken = object()  # would fail to format: proves the record is never built
    log_request(log, broken, make_request(), True)  # type: ignore[arg-type]


def test_text_handler_is_the_default() -> None:
    handler = make_handler()
    assert isinstance(handler.formatter, TextFormatter)
