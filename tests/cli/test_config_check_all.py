"""``config check`` reports every problem of a file in one run, under a header, and exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from llm_manager.cli.main import cli
from llm_manager.config import load_settings
from llm_manager.errors import ConfigError

BAD = """\
models:
  a:
    provider: openaii
    api_key: ${NOPE_ONE}
  b:
    provider: simulated
    base_url: ${NOPE_TWO}/v1 and ${NOPE_THREE}
    rpm: lots
    tmeout: 3
  c:
    provider: openai-compatible
    api_key: k
routing:
  tasks:
    general: [b, zzz]
cache:
  ttl: 5
"""


@pytest.fixture
def bad(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("NOPE_ONE", "NOPE_TWO", "NOPE_THREE", "LLM_MANAGER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, encoding="utf-8")
    return path


def test_config_check_lists_every_problem_of_the_file(bad: Path) -> None:
    result = CliRunner().invoke(cli, ["config", "check", str(bad)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == f"invalid configuration ({bad}), 9 problems:", lines[0]
    text = result.stderr
    for var in ("NOPE_ONE", "NOPE_TWO", "NOPE_THREE"):  # every unset variable, two in one value included
        assert f"environment variable {var} is not set" in text
    assert "models.a.provider: 'openaii' is not allowed" in text  # unknown provider
    assert "models.b.rpm: Input should be a valid integer" in text  # a wrong type
    assert "models.b.tmeout: unknown key. Did you mean 'timeout_s'?" in text  # a typo, with the likely key
    assert "cache.ttl: unknown key. Did you mean 'ttl_s'?" in text
    # The cross-field checks run on what is left once the schema errors are taken out.
    assert "routing.tasks.general[1]: unknown model 'zzz'" in text
    assert "models.c: openai-compatible needs `base_url:`" in text
    assert "models.b.simulate" not in text and "models.a:" not in text, "no noise about what was taken out"
    assert sum(line.startswith("  - ") for line in lines) == 9


def test_load_settings_raises_with_every_problem(bad: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(bad, env={})
    assert info.value.message.count("\n  - ") == 9


def test_unset_variables_alone_are_all_reported(tmp_path: Path) -> None:
    path = tmp_path / "vars.yaml"
    path.write_text("models:\n  m: {provider: simulated, base_url: '${A}', model: '${B:-${C}}'}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = info.value.message
    assert "2 problems" in message and "variable A is not set" in message and "variable C is not set" in message
