"""``${VAR}`` substitution over parsed config trees: defaults, escapes, nesting and error messages."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_manager._interpolate import interpolate
from llm_manager.config import load_settings
from llm_manager.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${KEY}", {"KEY": "sk-1"}, "sk-1"),
        ("Bearer ${KEY}", {"KEY": "sk-1"}, "Bearer sk-1"),
        ("${KEY:-fallback}", {}, "fallback"),
        ("${KEY:-fallback}", {"KEY": ""}, "fallback"),
        ("${KEY:-fallback}", {"KEY": "set"}, "set"),
        ("${KEY:-}", {}, ""),
        ("${KEY-fallback}", {}, "fallback"),
        ("${KEY-fallback}", {"KEY": ""}, ""),
        ("${KEY-fallback}", {"KEY": "set"}, "set"),
        ("${KEY:-http://localhost:1234}/v1", {}, "http://localhost:1234/v1"),
        ("${HOST}:${PORT}/${PATH_PART:-v1}", {"HOST": "h", "PORT": "8080"}, "h:8080/v1"),
        ("$${KEY}", {"KEY": "sk-1"}, "${KEY}"),
        ("$${KEY:-x} and ${KEY}", {"KEY": "sk-1"}, "${KEY:-x} and sk-1"),
        ("costs $5", {}, "costs $5"),
        ("${not a var}", {}, "${not a var}"),
    ],
)
def test_substitution(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


def test_nested_lists_and_dicts_are_walked_and_non_strings_kept() -> None:
    tree = {
        "models": {
            "a": {"api_keys": ["${K1}", "${K2:-k2}"], "headers": {"x-team": "${TEAM}"}, "timeout_s": 3.5},
        },
        "flags": [True, None, 7, ["${K1}"]],
    }
    env = {"K1": "one", "TEAM": "core"}
    out = interpolate(tree, env)
    assert out == {
        "models": {"a": {"api_keys": ["one", "k2"], "headers": {"x-team": "core"}, "timeout_s": 3.5}},
        "flags": [True, None, 7, ["one"]],
    }
    assert tree["models"]["a"]["api_keys"] == ["${K1}", "${K2:-k2}"], "the input tree must not be mutated"


def test_nested_default_uses_the_inner_variable() -> None:
    # `config example` writes `${OPENAI_API_KEYS:-${OPENAI_API_KEY:-}}`: the pool, else the single key, else empty.
    text = "${OPENAI_API_KEYS:-${OPENAI_API_KEY:-}}"
    assert interpolate(text, {"OPENAI_API_KEYS": "a,b"}) == "a,b"
    assert interpolate(text, {"OPENAI_API_KEY": "sk-1"}) == "sk-1"
    assert interpolate(text, {}) == ""
    # The inner variable is only read when the default is needed.
    assert interpolate("${A:-${B}}", {"A": "a"}) == "a"
    with pytest.raises(ConfigError, match="environment variable B is not set"):
        interpolate("${A:-${B}}", {})


def test_missing_variable_names_field_path_variable_and_fix() -> None:
    tree = {"models": {"gpt": {"api_keys": ["ok", "${MISSING_KEY}"]}}}
    with pytest.raises(ConfigError) as info:
        interpolate(tree, {})
    msg = info.value.message
    assert "models.gpt.api_keys[1]" in msg
    assert "MISSING_KEY" in msg
    assert "export MISSING_KEY=" in msg and "${MISSING_KEY:-" in msg


def test_missing_variable_through_load_settings_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"models\.gpt\.api_key: environment variable OPENAI_KEY_X is not set"):
        load_settings({"models": {"gpt": {"provider": "openai", "api_key": "${OPENAI_KEY_X}"}}}, env={})


def test_substitution_happens_after_parsing_so_values_cannot_change_structure(tmp_path: Any) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  gpt:\n    provider: openai\n    api_key: ${KEY}\n", encoding="utf-8")
    nasty = "sk: # {not: yaml}\n  provider: anthropic"
    s = load_settings(path, env={"KEY": nasty})
    assert s.models["gpt"].provider == "openai"
    assert s.models["gpt"].keys == [nasty]


_no_dollar = st.recursive(
    st.text().filter(lambda s: "$" not in s) | st.integers() | st.booleans() | st.none(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@given(_no_dollar)
def test_trees_without_dollar_come_back_unchanged(tree: Any) -> None:
    assert interpolate(tree, {"ANY": "value"}) == tree


@given(st.text(alphabet=st.characters(codec="utf-8")).map(lambda s: s + ": # { ${OTHER} }"))
def test_values_are_substituted_literally(value: str) -> None:
    # A value is never re-scanned: `:`, `#`, `{` and even `${OTHER}` inside it stay as they are.
    env = {"SECRET": value}
    assert interpolate("pre ${SECRET} post", env) == f"pre {value} post"
    assert interpolate({"a": ["${SECRET:-x}"]}, env) == {"a": [value]}
