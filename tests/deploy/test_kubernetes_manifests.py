"""deploy/kubernetes/: every manifest valid against the Kubernetes OpenAPI schemas (offline, strict: unknown
fields are errors), and the values that must agree with the server and with each other do."""
from __future__ import annotations

import pathlib
import re

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes release still in wide use with autoscaling/v2, and the newest the validator knows.
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
MANIFESTS = sorted(p for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")


def load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid_kubernetes(path, version):
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, version, strict=True)


def test_kustomization_applies_every_manifest():
    assert sorted(load("kustomization.yaml")["resources"]) == [p.name for p in MANIFESTS]


def server_container() -> dict:
    (container,) = load("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    return container


def flag(container: dict, name: str) -> str:
    values = [a.split("=", 1)[1] for a in container["args"] if a.startswith(f"--{name}=")]
    assert len(values) == 1, f"--{name}= should appear once in the container's args"
    return values[0]


def test_termination_grace_covers_the_sigterm_drain():
    pod = load("deployment.yaml")["spec"]["template"]["spec"]
    container = server_container()
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    # `serve` answers every request it has read for up to --request-timeout + 5 s after SIGTERM
    # (docs/ARCHITECTURE.md, Shutdown), and the preStop pause runs inside the same grace period.
    drain = int(flag(container, "request-timeout")) + 5
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain


def test_probes_and_service_reach_the_server():
    container = server_container()
    port = int(flag(container, "port"))
    assert container["ports"][0]["containerPort"] == port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health", probe
        assert container[probe]["httpGet"]["port"] == container["ports"][0]["name"], probe
    annotations = load("deployment.yaml")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port) and annotations["prometheus.io/path"] == "/metrics"
    service = load("service.yaml")
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    labels = load("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_the_autoscaler_scales_the_deployment_on_a_metric_the_server_exports():
    hpa = load("hpa.yaml")
    assert hpa["spec"]["scaleTargetRef"]["name"] == load("deployment.yaml")["metadata"]["name"]
    (metric,) = hpa["spec"]["metrics"]
    name = metric["pods"]["metric"]["name"]
    exported = set(re.findall(r'header\("(embedserve_\w+)"', (ROOT / "src/server/metrics.cc").read_text()))
    assert name in exported, f"{name} is not one of the server's metrics: {sorted(exported)}"
    rules = yaml.safe_load(load("prometheus-adapter-rules.yaml")["data"]["config.yaml"])["rules"]
    assert any(r["name"]["matches"] == name for r in rules), "prometheus-adapter must serve the HPA's metric"


def test_gpu_request_and_model_volume():
    container = server_container()
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert flag(container, "device") == "cuda"
    mount = container["volumeMounts"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["HF_HUB_CACHE"].startswith(mount["mountPath"])
    claim = load("deployment.yaml")["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert claim == load("models-pvc.yaml")["metadata"]["name"]
