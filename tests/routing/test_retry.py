"""Retry policy tables: what is retryable, what happens next, how long to wait, and Retry-After parsing."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_manager.codecs._errors import error_from_status, parse_retry_after
from llm_manager.config import BackoffConfig
from llm_manager.errors import (
    AuthenticationError,
    ConfigError,
    ContentFilterError,
    ContextTooLargeError,
    InvalidRequestError,
    ModelUnavailableError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    StreamInterruptedError,
)
from llm_manager.routing.retry import Decision, backoff_delay, decide, is_retryable

# -- is_retryable -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (RateLimitError("429", status_code=429), True),
        (ModelUnavailableError("503", status_code=503), True),
        (ModelUnavailableError("connection refused"), True),
        (StreamInterruptedError("cut"), True),
        (ProviderTimeoutError("slow", timeout_s=1.0), True),
        (TimeoutError(), True),
        (AuthenticationError("bad key", status_code=401), False),
        (InvalidRequestError("bad", status_code=400), False),
        (ContextTooLargeError("long", status_code=400), False),
        (ContentFilterError("no", status_code=400), False),
        (ConfigError("bad config"), False),
        (ProviderError("generic"), False),
        (ValueError("not ours"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_is_retryable_table(exc: BaseException, retryable: bool) -> None:
    assert is_retryable(exc) is retryable


@pytest.mark.parametrize(
    ("exc", "hint", "retryable"),
    [
        (InvalidRequestError("bad", status_code=400), "true", True),
        (AuthenticationError("bad key", status_code=401), "true", True),
        (ModelUnavailableError("503", status_code=503), "false", False),
        (RateLimitError("429", status_code=429), "false", False),
        (ModelUnavailableError("503", status_code=503), "maybe", True),
    ],
)
def test_x_should_retry_header_overrides_the_table(exc: ProviderError, hint: str, retryable: bool) -> None:
    exc.headers["x-should-retry"] = hint
    assert is_retryable(exc) is retryable


# -- decide -------------------------------------------------------------------------------------------------------

CAP = 20.0


@pytest.mark.parametrize(
    ("exc", "retries_left", "expected"),
    [
        (RateLimitError("429", status_code=429), 2, Decision.RETRY_SAME),
        (RateLimitError("429", status_code=429, retry_after=3.0), 1, Decision.RETRY_SAME),
        (RateLimitError("429", status_code=429, retry_after=CAP), 1, Decision.RETRY_SAME),
        (RateLimitError("429", status_code=429, retry_after=CAP + 0.5), 2, Decision.NEXT),
        (RateLimitError("429", status_code=429), 0, Decision.NEXT),
        (ModelUnavailableError("503", status_code=503), 1, Decision.RETRY_SAME),
        (ModelUnavailableError("500", status_code=500), 0, Decision.NEXT),
        (ModelUnavailableError("502", status_code=502, retry_after=60.0), 2, Decision.NEXT),
        (ProviderTimeoutError("slow", timeout_s=1.0), 2, Decision.NEXT),
        (TimeoutError(), 2, Decision.NEXT),
        (ModelUnavailableError("connection refused"), 2, Decision.NEXT),
        (StreamInterruptedError("reset mid-stream"), 2, Decision.NEXT),
        (ContextTooLargeError("long", status_code=400), 2, Decision.NEXT_LARGER),
        (ContentFilterError("no", status_code=400), 2, Decision.NEXT),
        (AuthenticationError("bad key", status_code=401), 2, Decision.RAISE),
        (InvalidRequestError("bad", status_code=400), 2, Decision.RAISE),
        (ConfigError("bad config"), 2, Decision.RAISE),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_decide_table(exc: BaseException, retries_left: int, expected: Decision) -> None:
    assert decide(exc, retries_left=retries_left, retry_after_cap_s=CAP) is expected


def test_decide_follows_x_should_retry_true_on_a_400() -> None:
    exc = InvalidRequestError("try again", status_code=400, headers={"x-should-retry": "true"})
    assert decide(exc, retries_left=1, retry_after_cap_s=CAP) is Decision.RETRY_SAME
    assert decide(exc, retries_left=0, retry_after_cap_s=CAP) is Decision.NEXT


@pytest.mark.parametrize(
    ("status", "headers", "cls", "decision"),
    [
        (429, {"retry-after": "2"}, RateLimitError, Decision.RETRY_SAME),
        (429, {"retry-after": "120"}, RateLimitError, Decision.NEXT),
        (503, {}, ModelUnavailableError, Decision.RETRY_SAME),
        (504, {}, ProviderTimeoutError, Decision.NEXT),
        (401, {}, AuthenticationError, Decision.RAISE),
        (404, {}, InvalidRequestError, Decision.RAISE),
    ],
)
def test_status_to_error_to_decision(
    status: int, headers: dict[str, str], cls: type[ProviderError], decision: Decision
) -> None:
    exc = error_from_status(status, "", headers=headers, body="{}")
    assert type(exc) is cls and exc.status_code == status
    assert decide(exc, retries_left=2, retry_after_cap_s=CAP) is decision


def test_error_from_status_context_and_filter_by_message() -> None:
    ctx = error_from_status(400, "This model's maximum context length is 8192 tokens", headers={}, body="")
    assert isinstance(ctx, ContextTooLargeError)
    assert decide(ctx, retries_left=2, retry_after_cap_s=CAP) is Decision.NEXT_LARGER
    flt = error_from_status(400, "blocked", headers={}, body="", error_code="content_filter")
    assert isinstance(flt, ContentFilterError)


def test_error_from_status_keeps_only_actionable_headers() -> None:
    exc = error_from_status(
        429, "slow down", headers={"retry-after": "1", "set-cookie": "s=1", "x-request-id": "r1"}, body=""
    )
    assert exc.headers == {"retry-after": "1", "x-request-id": "r1"}
    assert exc.retry_after == 1.0


# -- backoff_delay ------------------------------------------------------------------------------------------------

NO_JITTER = BackoffConfig(base_s=0.5, max_s=8.0, multiplier=2.0, jitter=False)


def never() -> float:
    raise AssertionError("rand must not be called")


@pytest.mark.parametrize(("retry_after", "cap", "expected"), [(3.0, 20.0, 3.0), (50.0, 20.0, 20.0), (-2.0, 20.0, 0.0)])
def test_retry_after_wins_and_is_capped(retry_after: float, cap: float, expected: float) -> None:
    exc = RateLimitError("429", status_code=429, retry_after=retry_after)
    jittery = BackoffConfig(base_s=0.5, max_s=8.0, jitter=True)
    assert backoff_delay(0, exc, jittery, never, cap) == expected
    assert backoff_delay(5, exc, jittery, never, cap) == expected


def test_exponential_growth_with_multiplier_and_max() -> None:
    exc = ModelUnavailableError("503", status_code=503)
    assert [backoff_delay(i, exc, NO_JITTER, never, 20.0) for i in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    triple = BackoffConfig(base_s=0.1, max_s=100.0, multiplier=3.0, jitter=False)
    assert [round(backoff_delay(i, exc, triple, never, 20.0), 9) for i in range(4)] == [0.1, 0.3, 0.9, 2.7]


def test_builtin_timeout_uses_exponential_backoff() -> None:
    assert backoff_delay(2, TimeoutError(), NO_JITTER, never, 20.0) == 2.0


@pytest.mark.parametrize(("index", "full"), [(0, 0.5), (2, 2.0), (10, 8.0)])
def test_equal_jitter_bounds(index: int, full: float) -> None:
    exc = ModelUnavailableError("503", status_code=503)
    policy = BackoffConfig(base_s=0.5, max_s=8.0, multiplier=2.0, jitter=True)
    assert backoff_delay(index, exc, policy, lambda: 0.0, 20.0) == full / 2
    assert backoff_delay(index, exc, policy, lambda: 1.0, 20.0) == full
    assert backoff_delay(index, exc, policy, lambda: 0.5, 20.0) == full * 0.75


@given(
    index=st.integers(min_value=0, max_value=60),
    retry_after=st.none() | st.floats(min_value=-10, max_value=1e6, allow_nan=False),
    base=st.floats(min_value=0, max_value=100, allow_nan=False),
    max_s=st.floats(min_value=0, max_value=100, allow_nan=False),
    multiplier=st.floats(min_value=1, max_value=10, allow_nan=False),
    jitter=st.booleans(),
    r=st.floats(min_value=0, max_value=1),
    cap=st.floats(min_value=0, max_value=100, allow_nan=False),
)
def test_backoff_never_exceeds_the_larger_bound(
    index: int,
    retry_after: float | None,
    base: float,
    max_s: float,
    multiplier: float,
    jitter: bool,
    r: float,
    cap: float,
) -> None:
    policy = BackoffConfig(base_s=base, max_s=max_s, multiplier=multiplier, jitter=jitter)
    exc = RateLimitError("429", status_code=429, retry_after=retry_after)
    delay = backoff_delay(index, exc, policy, lambda: r, cap)
    assert 0.0 <= delay <= max(cap, max_s)


# -- parse_retry_after --------------------------------------------------------------------------------------------

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": " 7 "}, 7.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "10"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "10"}, 10.0),
        ({"retry-after-ms": "-5", "retry-after": "10"}, 10.0),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


def test_parse_retry_after_http_date_relative_to_now() -> None:
    future = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after({"retry-after": future}, now=NOW) == 30.0
    past = email.utils.formatdate(NOW - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=NOW) == 0.0


@given(st.floats(min_value=0, allow_nan=False, allow_infinity=False))
def test_any_non_negative_seconds_string_parses_to_itself(seconds: float) -> None:
    assert parse_retry_after({"retry-after": repr(seconds)}, now=NOW) == seconds
    assert parse_retry_after({"retry-after": str(seconds)}, now=NOW) == seconds
