"""The chart's values: values.yaml and values.schema.json describe the same tree (every value
documented with a `## @param` line), and deliberately bad value files fail to render with a
message that says what to change."""

from __future__ import annotations

import json
import re

import helm_python as helm
import pytest
import yaml

from tests.unit.chart_render import CHART, Doc, render


def _schema_paths(schema: Doc, prefix: str = "") -> set[str]:
    out = set()
    for key, sub in schema.get("properties", {}).items():
        out |= {prefix + key} | _schema_paths(sub, f"{prefix}{key}.")
    return out


def _value_paths(values: Doc, schema: Doc, prefix: str = "", all_: bool = False) -> set[str]:
    """Every path (all_=True), or the documented leaves: free-form objects (no `properties` in the
    schema) count as one value, except `serving`, whose fields are documented one by one."""
    out = set()
    for key, value in values.items():
        path, sub = prefix + key, schema.get("properties", {}).get(key, {})
        deeper = isinstance(value, dict) and value
        if deeper and (all_ or "properties" in sub or path.startswith("serving")):
            out |= _value_paths(value, sub, f"{path}.", all_) | ({path} if all_ else set())
        else:
            out.add(path)
    return out


def test_values_and_schema_cover_each_other(chart: helm.Chart) -> None:
    text = (CHART / "values.yaml").read_text()
    values, schema = yaml.safe_load(text), json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False and schema["properties"]["serving"]["type"]
    leaves, described = _value_paths(values, schema), _schema_paths(schema)
    assert {p for p in leaves if not p.startswith("serving.")} - described == set()
    assert described - _value_paths(values, schema, all_=True) == set(), "not in values.yaml"
    documented = set(re.findall(r"## @param (\S+)", text))
    bare = {p for p in leaves if not any(p == d or p.startswith(f"{d}.") for d in documented)}
    assert bare == set(), "every value needs a `## @param` line"
    chart.validate_schema(values)


# --- deliberately bad value files: each must fail with a message that says what to change -----

BAD_VALUES = yaml.safe_load("""
both-credentials:
  message: store.existingSecret and workload identity are both set
  values:
    store: {existingSecret: s3}
    serviceAccount: {annotations: {eks.amazonaws.com/role-arn: "arn:aws:iam::1:role/r"}}
gpu-accelerator-without-gpus:
  message: 'accelerator is "gpu" but worker.gpus is 0'
  values: {worker: {gpus: 0}}
serve-outgrows-workers:
  message: max_replicas x gpus_per_replica = 8 GPUs, but worker.maxReplicas x worker.gpus = 4
  values: {serving: {deployment: {autoscaling: {max_replicas: 8}}}}
serve-outgrows-fixed-workers:
  message: but worker.replicas x worker.gpus = 2
  values: {autoscaling: {enabled: false}, worker: {replicas: 2}}
ingress-without-host:
  message: ingress.enabled needs ingress.host
  values: {ingress: {enabled: true}, networkPolicy: {allowedFrom: [{namespaceSelector: {}}]}}
ingress-behind-closed-networkpolicy:
  message: empty networkPolicy.allowedFrom
  values: {ingress: {enabled: true, host: llm.example.com}}
servicemonitor-without-port:
  message: metrics.port is empty
  values: {metrics: {port: null, serviceMonitor: {enabled: true}}}
finetune-without-store-access:
  message: finetune.enabled needs write access to the adapter store
  values: {finetune: {enabled: true}}
grace-shorter-than-drain:
  message: (20) must be longer than serving.deployment.graceful_shutdown_timeout_s (30)
  values: {terminationGracePeriodSeconds: 20}
old-cluster-deleted-mid-request:
  message: after an upgrade the old cluster would be deleted with requests still in flight
  values: {rayService: {rayClusterDeletionDelaySeconds: 10}}
open-api-by-accident:
  message: auth.existingSecret is empty
  values: {auth: {existingSecret: ""}}
worker-cpus-below-engine:
  message: worker.resources.limits.cpu (4) is below
  values: {worker: {resources: {limits: {cpu: "4"}}}}
unknown-top-level-key:
  message: additional properties 'replicaCount' not allowed
  values: {replicaCount: 3}
gpus-not-a-number:
  message: "at '/worker/gpus': got string, want integer"
  values: {worker: {gpus: one}}
test-image-latest:
  message: at '/tests/image/tag'
  values: {tests: {image: {tag: latest}}}
root-containers:
  message: at '/containerSecurityContext/runAsNonRoot'
  values: {containerSecurityContext: {runAsNonRoot: false}}
""")


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_bad_values_fail_with_a_clear_message(chart: helm.Chart, case: str) -> None:
    with pytest.raises((helm.HelmRenderError, helm.HelmValuesError)) as failure:
        render(chart, BAD_VALUES[case]["values"])
    assert BAD_VALUES[case]["message"] in str(failure.value)
