"""``llm-manager config check|show|example``."""

from __future__ import annotations

import sys

import click

EXAMPLE = """\
# llm-manager.yaml — every value may use ${VAR} or ${VAR:-default}
models:
  gpt-4o:
    provider: openai                 # openai | anthropic | gemini | openai-compatible | portkey | simulated
    model: gpt-4o
    # no api_key here: read from OPENAI_API_KEYS (a comma-separated pool) or OPENAI_API_KEY
  claude-sonnet:                     # delete the models you have no key for
    provider: anthropic
    model: claude-sonnet-4-5         # key from ANTHROPIC_API_KEY
  local-llama:
    provider: openai-compatible
    preset: lmstudio                 # groq | openrouter | lmstudio | ollama | vllm | llamacpp
    base_url: ${LM_STUDIO_URL:-http://localhost:1234}/v1
    model: llama-3.1-8b
    family: llama
routing:
  strategy: balanced                 # cost | performance | balanced
  tasks:                             # task → preferred model, then fallbacks
    analysis:          [claude-sonnet, gpt-4o, local-llama]
    ui-generation:     [gpt-4o, claude-sonnet, local-llama]
    config-management: [local-llama, gpt-4o, claude-sonnet]
    general:           [gpt-4o, claude-sonnet, local-llama]
  max_retries: 2                     # per model, on 429 / 5xx
  timeout_s: 30                      # per attempt
  deadline_s: 120                    # whole request
  first_chunk_timeout_s: 15          # streams fail over until the first chunk
"""


@click.group("config")
def config_group() -> None:
    """Validate, show or start a config file."""


@config_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@click.pass_obj
def check(obj: object, file: str | None) -> None:
    """Validate FILE (default: --config, $LLM_MANAGER_CONFIG, ./llm-manager.yaml): every problem of the file in one
    run, each with its field and fix, under a header; exit 2 if invalid."""
    import os

    from llm_manager.config import load_settings
    from llm_manager.errors import ConfigError

    file = file or getattr(obj, "config", None) or os.environ.get("LLM_MANAGER_CONFIG")
    if file is None and os.path.isfile("llm-manager.yaml"):
        file = "llm-manager.yaml"
    if file is None:
        raise click.UsageError("name the file: `llm-manager config check FILE` (or --config FILE)")
    try:
        settings = load_settings(file)
    except ConfigError as exc:
        click.echo(exc.message, err=True)
        sys.exit(2)
    click.echo(f"{file}: valid — {len(settings.models)} model(s), strategy {settings.routing.strategy}")
    for task in settings.task_names():
        chain = settings.chain(task)
        if chain or task != "embedding":
            click.echo(f"  {task:<18} → {' → '.join(chain) or '(no models)'}")


@config_group.command("show")
@click.pass_obj
def show(obj: object) -> None:
    """Print the effective configuration (secrets masked) as YAML."""
    import yaml

    from llm_manager.config_secrets import masked_config
    from llm_manager.discovery import resolve_settings
    from llm_manager.errors import ConfigError

    try:
        settings = resolve_settings(getattr(obj, "config", None))
    except ConfigError as exc:
        click.echo(exc.message, err=True)
        sys.exit(2)
    data = masked_config(settings)  # keys, header values, URL passwords: never printed
    click.echo(f"# source: {settings.source}")
    click.echo(yaml.safe_dump(data, sort_keys=False))


@config_group.command("example")
def example() -> None:
    """Print an annotated example config to start from."""
    click.echo(EXAMPLE, nl=False)
