"""Redaction by value: every secret of a live configuration is masked in any text, whatever its format."""

from __future__ import annotations

import gc
import io
import json
import logging
import pickle
import string

from hypothesis import given
from hypothesis import strategies as st

from llm_manager._redact import MIN_SECRET_LENGTH, SecretSet, redact, url_password, url_with_password_masked
from llm_manager.config import load_settings
from llm_manager.config_secrets import configured_secrets
from llm_manager.errors import AuthenticationError, ModelUnavailableError
from llm_manager.telemetry import make_handler

PLAIN = "q8Wn3vRt0plainkey"  # no vendor prefix: only its value identifies it


def test_a_configured_secret_is_masked_by_value_while_its_set_lives() -> None:
    secrets = SecretSet([PLAIN])
    assert redact(f"401: invalid key {PLAIN}!") == "401: invalid key ***!"
    del secrets
    gc.collect()
    assert PLAIN in redact(f"key {PLAIN}")  # a configuration that is gone masks nothing any more


def test_every_written_form_of_a_secret_is_masked() -> None:
    raw = 'p@ss"word/with+signs'
    _held = SecretSet([raw])
    for form in (raw, json.dumps(raw)[1:-1], "p%40ss%22word%2Fwith%2Bsigns"):
        assert redact(f"<{form}>") == "<***>", form
    encoded = SecretSet(["pw%40encoded-9"])  # a URL's password as written: the server saw it decoded
    assert redact("pw@encoded-9 and pw%40encoded-9") == "*** and ***"
    del encoded, _held


def test_a_longer_secret_is_masked_whole_and_short_values_are_left_alone() -> None:
    _held = SecretSet(["abcdefgh", "abcdefgh-and-more", "x" * (MIN_SECRET_LENGTH - 1)])
    assert redact("abcdefgh-and-more") == "***"
    assert redact("xxxxx stays") == "xxxxx stays"  # too short to mask without garbling every message


alphabet = string.ascii_letters + string.digits + "-_.~/+=%@:"


@given(
    secret=st.text(alphabet, min_size=MIN_SECRET_LENGTH, max_size=40),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_no_registered_secret_survives_in_any_text(secret: str, before: str, after: str) -> None:
    held = SecretSet([secret])
    assert secret not in redact(before + secret + after + secret)
    del held


def test_errors_mask_their_message_and_body_when_built() -> None:
    _held = SecretSet([PLAIN])
    err = AuthenticationError(f"bad key {PLAIN}", status_code=401, body=json.dumps({"error": f"key={PLAIN}"}))
    assert PLAIN not in err.message and PLAIN not in str(err) and PLAIN not in (err.body or "")
    assert PLAIN not in str(pickle.loads(pickle.dumps(err)))
    assert PLAIN not in str(ModelUnavailableError(f"cannot connect to http://u:{PLAIN}@host"))


def test_log_lines_are_masked_in_nested_fields_too() -> None:
    _held = SecretSet([PLAIN])
    out = io.StringIO()
    log = logging.getLogger("tests.redact")
    log.addHandler(make_handler("json", out))
    log.propagate = False
    try:
        log.warning("upstream said %s", PLAIN, extra={"detail": {"body": [PLAIN]}})
    finally:
        log.handlers.clear()
    line = json.loads(out.getvalue())
    assert line["message"] == "upstream said ***" and line["detail"] == {"body": ["***"]}


def test_shapes_still_masked_without_any_configuration() -> None:
    assert redact("postgresql://app:hunter2hunter2@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert redact("Authorization: Bearer llmm-abcdefghijklmnopqrstuvwxyz") == "Authorization: Bearer ***"
    assert redact("gateway key llmm-abcdefghijklmnopqrstuvwx") == "gateway key llmm-***"


def test_url_passwords() -> None:
    assert url_password("redis://:pw-1@h:6379/0") == "pw-1"
    assert url_password("http://h/v1") is None and url_password(None) is None
    assert url_with_password_masked("http://u:pw@h:1/v1?x=@") == "http://u:***@h:1/v1?x=@"
    assert url_with_password_masked("http://h/v1") == "http://h/v1"


def test_configured_secrets_lists_every_kind() -> None:
    settings = load_settings(
        {
            "models": {
                "a": {"provider": "openai", "api_key": "key-single-1", "api_keys": "key-pool-2,key-pool-3"},
                "b": {
                    "provider": "openai-compatible",
                    "base_url": "http://svc:pw-base-4@127.0.0.1:9/v1",
                    "headers": {"Authorization": "Bearer hdr-token-5", "x-title": "not-a-secret"},
                },
                "c": {"provider": "portkey", "portkey": {"api_key": "pk-key-6", "virtual_key": "vk-key-7"}},
            },
            "portkey": {"api_key": "pk-global-8", "base_url": "http://localhost:8787/v1"},
            "state": {"redis_url": "redis://:pw-redis-9@127.0.0.1:6379/0"},
            "telemetry": {"otlp_endpoint": "http://o:pw-otlp-10@127.0.0.1:4318"},
        },
        env={},
    )
    env = {"LLM_MANAGER_STORE_URL": "postgresql://u:pw-store-11@h/db", "OTEL_EXPORTER_OTLP_HEADERS": "x-token=otlp-12"}
    found = set(configured_secrets(settings, env))
    expected = {"key-single-1", "key-pool-2", "key-pool-3", "pw-base-4", "Bearer hdr-token-5", "hdr-token-5"}
    expected |= {"pk-key-6", "vk-key-7", "pk-global-8", "pw-redis-9", "pw-otlp-10", "pw-store-11", "otlp-12"}
    assert expected <= found
    assert "not-a-secret" not in found
