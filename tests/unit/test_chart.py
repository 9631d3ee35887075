"""Offline checks of the Helm chart k8s/supportserve (no cluster, no helm binary).

Design: each ci/ scenario is rendered once with Helm's Go SDK (helm-python-sdk), merged over
values.yaml as `helm install -f` does, and held to what the API server, KubeRay and our code
demand: core objects against the Kubernetes 1.30 schemas (strict), the RayService against
KubeRay's CRD (unknown fields are errors), and serveConfigV2 through ServingConfig and Ray's
LLMConfig, so chart and code cannot drift. Then the invariants a reviewer would check by eye
(secrets by reference, locked-down containers, probes, GPUs, autoscaling bounds, metric names),
The agreement of values.yaml with values.schema.json, and bad values, are in test_chart_values.py.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from tests.unit.chart_render import CHART, FULLNAME, NAMESPACE, RELEASE, ROOT, Doc, render

CRD = Path(os.environ.get("KUBERAY_CRD", ROOT.parent / "shared/schemas/kuberay"))
KUBE_VERSION = "1.30"
CRD_KINDS = {"RayService", "ServiceMonitor", "PrometheusRule"}
SCENARIOS = ["default-gpu", "cpu-dev", "autoscaling-off", "ingress-on", "monitoring-on"]
SCENARIOS += ["finetune-on"]
SECRETISH = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


@pytest.fixture(scope="module")
def scenarios(chart: helm.Chart) -> dict[str, Doc]:
    rendered = {}
    for name in SCENARIOS:
        values = yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text())
        rendered[name] = {"values": chart.merge_values(values), **render(chart, values)}
    return rendered


def one(docs: list[Doc], kind: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    for d in docs:
        if d["kind"] == "RayService":
            cluster = d["spec"]["rayClusterConfig"]
            yield "head", cluster["headGroupSpec"]["template"]["spec"]
            for group in cluster["workerGroupSpecs"]:
                yield "worker", group["template"]["spec"]
        elif d["kind"] in ("Job", "Pod"):
            yield d["kind"].lower(), d["spec"].get("template", {}).get("spec", d["spec"])


def containers(spec: Doc) -> list[Doc]:
    return spec.get("initContainers", []) + spec["containers"]


def ray_groups(docs: list[Doc]) -> tuple[Doc, Doc]:
    cluster = one(docs, "RayService")["spec"]["rayClusterConfig"]
    return cluster["headGroupSpec"], cluster["workerGroupSpecs"][0]


def ray_container(group: Doc) -> Doc:
    return group["template"]["spec"]["containers"][0]


# --- the chart as files ------------------------------------------------------------------------


def test_ci_scenarios_lint_and_yamllint() -> None:
    found = sorted(p.name for p in (CHART / "ci").glob("*.yaml"))
    assert found == sorted(f"{s}-values.yaml" for s in SCENARIOS)
    report = helm.lint(CHART, kube_version=f"v{KUBE_VERSION}.0")
    assert not report["errors"] and all(m["severity"] < 2 for m in report["messages"]), report
    conf = YamlLintConfig(file=str(CHART / ".yamllint"))
    files = [CHART / "values.yaml", *sorted((CHART / "ci").glob("*.yaml"))]
    problems = [(f.name, p.line, p.desc) for f in files for p in linter.run(f.read_text(), conf)]
    assert problems == []


# --- schemas: Kubernetes core, KubeRay CRD, Serve and our ServingConfig -----------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_core_objects_validate_against_kubernetes(scenarios: dict, scenario: str) -> None:
    docs = scenarios[scenario]["docs"]
    for doc in docs:
        if doc["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    for role, spec in pod_specs([one(docs, "RayService")]):  # the Ray pod templates too
        template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": role}}
        kubernetes_validate.validate({**template, "template": {"spec": spec}}, KUBE_VERSION, True)


def _strict(node: Any) -> Any:
    """The CRD schema with unknown fields as errors (the API server would prune them silently)."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _strict(v) for k, v in node.items()}
    if node.get("x-kubernetes-int-or-string"):
        node.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in node:
        node["type"] = [node["type"], "null"]
    open_object = node.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in node
    if node.get("type") == "object" and "properties" in node and not open_object:
        node["additionalProperties"] = False
    return node


@pytest.fixture(scope="module")
def rayservice_schema() -> Doc:
    path = CRD / "ray.io_rayservices.yaml" if CRD.is_dir() else CRD
    if not path.exists():
        pytest.skip(f"KubeRay CRD schema not found at {path} (set KUBERAY_CRD)")
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    served = [v for v in crd["spec"]["versions"] if v["name"] == "v1" and v["served"]]
    return _strict(served[0]["schema"]["openAPIV3Schema"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rayservice_matches_kuberay_crd(scenarios: dict, scenario: str, rayservice_schema) -> None:
    rayservice = one(scenarios[scenario]["docs"], "RayService")
    assert rayservice["apiVersion"] == "ray.io/v1"
    errors = sorted(jsonschema.Draft7Validator(rayservice_schema).iter_errors(rayservice), key=str)
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_serve_config_is_what_build_app_accepts(scenarios: dict, scenario: str, tmp_path) -> None:
    from ray.serve.llm import LLMConfig
    from ray.serve.schema import ServeDeploySchema

    from serving.config import ServingConfig

    rendered = scenarios[scenario]
    serve = yaml.safe_load(one(rendered["docs"], "RayService")["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(serve)
    (app,) = serve["applications"]
    assert (app["import_path"], app["route_prefix"]) == ("serving.app:build_app", "/")
    assert app["args"] == rendered["values"]["serving"], "args must be values.serving verbatim"
    cfg = ServingConfig.model_validate(app["args"])
    if cfg.model.source.startswith(("/", "./", "~")):  # a mounted folder (cpu-dev): not here
        model = cfg.model.model_copy(update={"source": str(tmp_path)})
        cfg = cfg.model_copy(update={"model": model})
    llm = LLMConfig.model_validate(cfg.to_llm_config(tmp_path))
    scaling = llm.deployment_config["autoscaling_config"]
    wanted = rendered["values"]["serving"]["deployment"]["autoscaling"]
    assert all(scaling[k] == wanted[k] for k in ("min_replicas", "max_replicas"))
    for key, value in cfg.model.engine_kwargs.items():  # Helm's JSON numbers must stay ints
        assert type(value) is type(app["args"]["model"]["engine_kwargs"][key])
    for group in ray_groups(rendered["docs"]):
        env = {e["name"]: e.get("value") for e in ray_container(group)["env"]}
        assert cfg.store_env().items() <= env.items(), "store env must follow values.serving"


# --- invariants --------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_secrets_arrive_only_by_reference(scenarios: dict, scenario: str) -> None:
    rendered, values = scenarios[scenario], scenarios[scenario]["values"]
    assert not [d for d in rendered["docs"] if d["kind"] == "Secret"]
    assert not re.search(r"AKIA[0-9A-Z]{16}|sk-[A-Za-z0-9]{20,}", rendered["text"])
    refs = {}
    for _, spec in pod_specs(rendered["docs"]):
        for env in (e for c in containers(spec) for e in c.get("env", [])):
            if SECRETISH.search(env["name"]):
                assert "value" not in env, f"{env['name']} has a literal value"
                refs[env["name"]] = env["valueFrom"]["secretKeyRef"]
    assert refs["API_KEYS"] == {"name": "supportserve-api-keys", "key": "api-keys"}
    if values["store"]["existingSecret"]:
        assert refs["AWS_SECRET_ACCESS_KEY"]["name"] == values["store"]["existingSecret"]
    else:
        assert "AWS_ACCESS_KEY_ID" not in refs
        account = one(rendered["docs"], "ServiceAccount")
        assert "eks.amazonaws.com/role-arn" in account["metadata"]["annotations"]


def _assert_locked_down(sc: Doc, where: str) -> None:
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0, where
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], where
    assert sc["readOnlyRootFilesystem"] is True, where
    assert sc["seccompProfile"]["type"] == "RuntimeDefault", where


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_container_runs_locked_down(scenarios: dict, scenario: str, scorecard) -> None:
    rendered = scenarios[scenario]
    specs = list(pod_specs(rendered["docs"]))
    assert {role for role, _ in specs} >= {"head", "worker", "pod"}
    for role, spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0
        assert pod["seccompProfile"]["type"] == "RuntimeDefault"
        token = role == "head" and rendered["values"]["autoscaling"]["enabled"]
        assert spec["automountServiceAccountToken"] is token, role  # only the autoscaler's
        for c in containers(spec):
            _assert_locked_down(c["securityContext"], f"{role}/{c['name']}")
    cluster = one(rendered["docs"], "RayService")["spec"]["rayClusterConfig"]
    if "autoscalerOptions" in cluster:
        _assert_locked_down(cluster["autoscalerOptions"]["securityContext"], "autoscaler")
    n = sum(len(containers(spec)) for _, spec in specs)
    scorecard(f"security_chart_{scenario}", non_root_locked_down_containers=n)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_probes_and_graceful_termination(scenarios: dict, scenario: str) -> None:
    rendered = scenarios[scenario]
    head, worker = ray_groups(rendered["docs"])
    graceful = rendered["values"]["serving"]["deployment"]["graceful_shutdown_timeout_s"]
    for group in (head, worker):
        assert group["template"]["spec"]["terminationGracePeriodSeconds"] > graceful
        ray = ray_container(group)
        assert ray["livenessProbe"] and ray["readinessProbe"]
        mounts = {m["mountPath"] for m in ray["volumeMounts"]}
        assert {"/tmp", "/home/ray/.cache"} <= mounts  # writable scratch on a read-only root
    head_ready = json.dumps(ray_container(head)["readinessProbe"])
    assert "gcs_healthz" in head_ready and ":8000" not in head_ready  # KubeRay waits on it
    assert "localhost:8000/-/healthz" in json.dumps(ray_container(worker)["readinessProbe"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_gpus_and_autoscaling_follow_values(scenarios: dict, scenario: str) -> None:
    from ray.autoscaler._private.kuberay.autoscaling_config import (
        _get_ray_resources_from_group_spec as autoscaler_view,
    )

    rendered, cluster = scenarios[scenario], one(scenarios[scenario]["docs"], "RayService")
    values, cluster = rendered["values"], cluster["spec"]["rayClusterConfig"]
    (head, worker), serve = ray_groups(rendered["docs"]), values["serving"]["deployment"]
    assert head["rayStartParams"]["num-gpus"] == "0" and "nvidia.com/gpu" not in json.dumps(head)
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    if serve["accelerator"] == "gpu":
        gpus = values["worker"]["gpus"]
        assert gpus >= 1 and ray_container(worker)["resources"]["limits"]["nvidia.com/gpu"] == gpus
        assert GPU_TOLERATION in worker["template"]["spec"]["tolerations"]
        seen = autoscaler_view(worker, False)  # what Ray's KubeRay autoscaler reads from the group
        assert seen["GPU"] == gpus and seen["CPU"] >= gpus * serve["cpus_per_replica"]
        assert seen[f"accelerator_type:{serve['accelerator_type']}"] == 1
    else:
        assert "nvidia" not in rendered["text"] and "resources" not in worker["rayStartParams"]
    enabled = values["autoscaling"]["enabled"]
    assert cluster["enableInTreeAutoscaling"] is enabled
    assert ("autoscalerOptions" in cluster) is enabled
    pods = worker["maxReplicas"] if enabled else worker["replicas"]
    if serve["accelerator"] == "gpu":
        needed = serve["autoscaling"]["max_replicas"] * serve["gpus_per_replica"]
        assert pods * values["worker"]["gpus"] >= needed
    if not enabled:
        assert worker["minReplicas"] == worker["replicas"] == worker["maxReplicas"]
    if scenario == "autoscaling-off":
        assert serve["autoscaling"]["min_replicas"] == serve["autoscaling"]["max_replicas"] == 2


def test_ingress_and_networkpolicy(scenarios: dict) -> None:
    docs = scenarios["ingress-on"]["docs"]
    spec = one(docs, "Ingress")["spec"]
    (rule,) = spec["rules"]
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": f"{FULLNAME}-serve-svc", "port": {"number": 8000}}
    assert path["path"] == "/v1"  # /metrics and /ready stay inside the cluster
    assert spec["ingressClassName"] == "nginx" and spec["tls"][0]["hosts"] == [rule["host"]]
    rules = one(docs, "NetworkPolicy")["spec"]["ingress"]
    api = [r for r in rules if r.get("ports") == [{"protocol": "TCP", "port": 8000}]]
    assert api and "ingress-nginx" in json.dumps(api[0]["from"])
    default = one(scenarios["default-gpu"]["docs"], "NetworkPolicy")["spec"]
    assert default["policyTypes"] == ["Ingress"]
    ports = {frozenset(p["port"] for p in r.get("ports", [])) for r in default["ingress"]}
    assert ports == {frozenset(), frozenset({8265, 8000}), frozenset({8080, 8000})}


def test_monitoring_objects_use_metrics_that_exist(scenarios: dict) -> None:
    docs = scenarios["monitoring-on"]["docs"]
    monitor, service = one(docs, "ServiceMonitor")["spec"], one(docs, "Service")
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["endpoints"]] == ["metrics", "serve"]
    groups = one(docs, "PrometheusRule")["spec"]["groups"]
    alerts = {r["alert"]: r["expr"].strip() for g in groups for r in g["rules"]}
    ttft, errors, at_max = (
        alerts[f"Supportserve{a}"] for a in ("TTFTP99High", "High5xxRatio", "EngineReplicasAtMax")
    )
    assert "histogram_quantile(0.99" in ttft and ttft.endswith("> 1.5")
    assert "supportserve_time_to_first_token_seconds_bucket" in ttft
    assert 'supportserve_requests_total{namespace="llm"' in errors and 'status=~"5.."' in errors
    assert "ray_serve_deployment_replica_healthy" in at_max and at_max.endswith(">= 4")
    dashboard = next(d for d in docs if d["kind"] == "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    panels = json.loads(next(iter(dashboard["data"].values())))["panels"]
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for needle in ("supportserve_completion_tokens_total", "ray_vllm:num_requests_running"):
        assert needle in exprs
    for needle in ("supportserve_engine_kv_cache_usage_ratio", "by (adapter)", "by (variant)"):
        assert needle in exprs
    used = set(re.findall(r"supportserve_[a-z_]+", exprs + " ".join(alerts.values())))
    stems = {re.sub(r"_(total|bucket|sum|count)$", "", m) for m in used}
    declared = re.findall(r'"(supportserve_[a-z_]+)"', (ROOT / "serving/metrics.py").read_text())
    assert stems <= set(declared), "dashboard/alerts use metrics that serving/metrics.py lacks"


def test_finetune_job_runs_data_train_publish(scenarios: dict) -> None:
    values, docs = scenarios["finetune-on"]["values"], scenarios["finetune-on"]["docs"]
    job = one(docs, "Job")
    assert job["metadata"]["name"] == f"{FULLNAME}-finetune-2025-01-15"
    spec = job["spec"]["template"]["spec"]
    steps = {c["name"]: c["command"][3:] + c["args"] for c in containers(spec)}
    assert list(steps) == ["data", "train", "publish"] and steps["data"][0] == "data"
    train, publish = steps["train"], " ".join(steps["publish"])
    assert "--bf16" in train
    assert train[train.index("--model_name_or_path") + 1] == values["serving"]["model"]["source"]
    assert "--family support" in publish and "--alias support --canary 10" in publish
    assert "--serving-config /etc/supportserve/serving.yaml" in publish
    for c in spec["containers"] + spec["initContainers"][1:]:
        assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert yaml.safe_load(config["data"]["serving.yaml"]) == values["serving"]
    assert not [d for d in scenarios["default-gpu"]["docs"] if d["kind"] == "Job"]


def test_notes_and_helm_test_pod(scenarios: dict) -> None:
    rendered = scenarios["default-gpu"]
    notes = rendered["notes"]
    assert f"kubectl -n {NAMESPACE} port-forward svc/{FULLNAME}-serve-svc 8000:8000" in notes
    assert "/v1/models" in notes and "Bearer" in notes and f"helm test {RELEASE}" in notes
    pod = one(rendered["docs"], "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    assert re.fullmatch(r"[\w./-]+:\d+(\.\d+)+", container["image"]), "pin the test image by tag"
    script = container["command"][-1]
    assert f"http://{FULLNAME}-serve-svc.{NAMESPACE}.svc:8000/v1/models" in script
    assert '"data"' in script and "Authorization: Bearer" in script


def test_every_name_comes_from_the_fullname(chart: helm.Chart, scenarios: dict) -> None:
    for rendered in scenarios.values():
        assert all(d["metadata"]["name"].startswith(FULLNAME) for d in rendered["docs"])
    values = yaml.safe_load((CHART / "ci" / "monitoring-on-values.yaml").read_text())
    renamed = render(chart, {**values, "fullnameOverride": "acme-llm"})
    assert all(d["metadata"]["name"].startswith("acme-llm") for d in renamed["docs"])
    assert "svc/acme-llm-serve-svc" in renamed["notes"]
