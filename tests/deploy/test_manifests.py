"""deploy/compose, deploy/k8s and deploy/observability, checked without Docker, Kubernetes or network.

* compose.yaml against the compose-spec JSON schema that the check-jsonschema package ships;
* every Kubernetes manifest with kubernetes-validate (schemas inside the package), strict;
* consistency with the code: every engine setting the manifests set is one `config`/`ops` reads,
  the search attributes registered are the workflow's, probes point at the ports and paths the
  processes serve, and every metric the alerts and the dashboard use exists.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import jsonschema
import pytest
import yaml
from kubernetes_validate import utils as kv_utils
from kubernetes_validate import validate as kv_validate

from config import ROOT
from workflows.contracts import SEARCH_ATTRIBUTES

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
K8S = DEPLOY / "k8s" / "engine.yaml"
VALUES = DEPLOY / "k8s" / "temporal-values.yaml"
ALERTS = DEPLOY / "observability" / "alerts.yaml"
DASHBOARD = DEPLOY / "observability" / "grafana-dashboard.json"
K8S_VERSION = "1.31.0"

# SDK runtime metrics (ops.metrics: durations in seconds), as a worker serves them
# (tests/deploy/test_observability.py scrapes a real one).
SDK_METRICS = {
    "temporal_workflow_task_schedule_to_start_latency_bucket", "temporal_activity_execution_latency_bucket",
    "temporal_num_pollers", "temporal_worker_task_slots_available", "temporal_sticky_cache_size",
}


def _settings_read() -> set[str]:
    """Every environment variable the engine's code reads (config.py and ops/)."""
    names: set[str] = set()
    for path in [ROOT / "config.py", *sorted((ROOT / "ops").glob("*.py")), ROOT / "worker.py"]:
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r'_(?:env|bool|int)\("([A-Z0-9_]+)"', text))
        names |= set(re.findall(r'(?:environ|env)\.get\("([A-Z0-9_]+)"', text))
        names |= set(re.findall(r'env\["([A-Z0-9_]+)"\]', text))
        names |= {f"TEMPORAL_TLS_{i}{s}" for i in ("CA", "CERT", "KEY") for s in ("", "_FILE")}
    return names


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _k8s_docs() -> list[dict]:
    return [d for d in yaml.safe_load_all(K8S.read_text(encoding="utf-8")) if d]


# ------------------------------------------------------------------ compose


def test_compose_file_validates_against_the_compose_spec_schema() -> None:
    from check_jsonschema.builtin_schemas import get_builtin_schema

    schema = get_builtin_schema("vendor.compose-spec")
    jsonschema.validate(_compose(), schema)
    # The same check from the command line, as CI or an operator runs it.
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                           str(COMPOSE)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_catches_a_broken_compose_file() -> None:
    from check_jsonschema.builtin_schemas import get_builtin_schema

    broken = _compose()
    broken["services"]["worker"]["healthcheck"]["retries"] = "four"
    broken["services"]["worker"]["restart_policy_typo"] = "always"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, get_builtin_schema("vendor.compose-spec"))


def test_compose_has_every_part_wired_by_environment() -> None:
    doc = _compose()
    services = doc["services"]
    for name in ("temporal-db", "temporal-setup", "temporal", "temporal-ui", "engine-db", "migrate", "worker",
                 "console", "notice-sender", "archiver", "codec-server"):
        assert name in services, f"compose has no {name} service"
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert services["temporal-setup"]["image"].startswith("temporalio/admin-tools:")
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert services["temporal"]["environment"]["TEMPORAL_TLS_REQUIRE_CLIENT_AUTH"] == "true"
    known = _settings_read()
    for name in ("worker", "console", "notice-sender", "archiver", "codec-server"):
        svc = services[name]
        assert svc["image"] == "${ENGINE_IMAGE:-case-engine:latest}"
        env = svc["environment"]
        unknown = {k for k in env if k not in known}
        assert not unknown, f"{name} sets settings nothing reads: {unknown}"
        for k, v in env.items():  # no secret inline: passwords only by ${VAR} or a file
            if any(s in k for s in ("PASSWORD", "TOKEN", "KEY")) and not k.endswith(("_FILE", "_ID")):
                assert str(v).startswith("${"), f"{name}: {k} is set inline"
    for dep in ("migrate", "temporal-setup"):
        assert dep in services["worker"]["depends_on"]
    assert services["worker"]["environment"]["NOTICE_SENDER"] == "false"
    assert services["worker"]["environment"]["ARCHIVE_POLL_SECONDS"] == "0"
    for secret in {s if isinstance(s, str) else s["source"] for svc in services.values()
                   for s in svc.get("secrets", [])}:
        assert secret in doc["secrets"], f"secret {secret} is used but not declared"


def test_temporal_setup_registers_the_workflows_search_attributes() -> None:
    script = (DEPLOY / "compose" / "temporal" / "setup.sh").read_text(encoding="utf-8")
    registered = dict(re.findall(r"(\w+)=(Keyword|KeywordList|Datetime|Int|Text|Double|Bool)\b", script))
    assert registered == SEARCH_ATTRIBUTES
    assert "postgresql/v12" in script and "$SCHEMA/visibility/versioned" in script and "update-schema" in script


# ------------------------------------------------------------------ Kubernetes


def test_kubernetes_manifests_validate_strictly() -> None:
    docs = _k8s_docs()
    assert {d["kind"] for d in docs} >= {"Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Job",
                                         "Service", "ConfigMap"}
    for d in docs:
        kv_validate(d, K8S_VERSION, strict=True)
    # And the command-line checker over the file, as CI or an operator runs it.
    done = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "-k", K8S_VERSION, str(K8S)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_kubernetes_checker_catches_a_broken_manifest() -> None:
    worker = next(d for d in _k8s_docs() if d["kind"] == "Deployment" and d["metadata"]["name"] == "case-worker")
    worker["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/healthz"
    with pytest.raises(kv_utils.ValidationError):
        kv_validate(worker, K8S_VERSION, strict=True)


def test_workers_and_console_have_probes_resources_pdb_and_hpa() -> None:
    docs = _k8s_docs()
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    known = _settings_read()
    assert not {k for k in config if k not in known}, {k for k in config if k not in known}
    health_port = int(config["HEALTH_BIND"].rsplit(":", 1)[1])
    for name, port in (("case-worker", health_port), ("case-console", int(config["CONSOLE_PORT"]))):
        c = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert ports[c["readinessProbe"]["httpGet"]["port"]] == port
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget")
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
    worker_labels = deployments["case-worker"]["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"] == worker_labels
    assert hpa["spec"]["scaleTargetRef"]["name"] == "case-worker"
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_temporal_helm_values_use_postgresql_with_visibility_and_retention() -> None:
    values = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
    persistence = values["server"]["config"]["persistence"]
    assert persistence["datastores"]["default"]["sql"]["pluginName"] == "postgres12"
    assert persistence["datastores"]["visibility"]["sql"]["pluginName"] == "postgres12"
    assert persistence["visibilityStore"] == "visibility"
    [ns] = values["server"]["config"]["namespaces"]["namespace"]
    assert ns["name"] == "inspection" and ns["retention"].endswith("d")
    assert values["server"]["config"]["tls"]["frontend"]["server"]["requireClientAuth"] is True
    assert not values["cassandra"]["enabled"] and not values["elasticsearch"]["enabled"]
    config = next(d for d in _k8s_docs() if d["kind"] == "ConfigMap")["data"]
    assert config["TEMPORAL_NAMESPACE"] == ns["name"]


# ------------------------------------------------------------------ alerts and dashboard


def _engine_metrics() -> set[str]:
    text = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "ops").glob("*.py"))
    return set(re.findall(r'"(case_engine_[a-z_]+)"', text))


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:case_engine|temporal)_[a-z_]+)\b", expr))


def test_alert_rules_are_well_formed_and_use_existing_metrics() -> None:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    known = _engine_metrics() | SDK_METRICS
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert {"CaseEngineOutboxBacklog", "CaseEngineOldestNoticeStuck", "CaseEngineWorkflowTaskBacklog"} <= {
        r["alert"] for r in alerts}
    for r in alerts:
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert r["labels"]["severity"] in ("critical", "warning", "info")
        assert r["annotations"]["summary"] and re.fullmatch(r"\d+[smhd]", r["for"])
        used = _metric_names(r["expr"])
        assert used and used <= known, f"{r['alert']} uses unknown metrics {used - known}"
        assert r["expr"].count("(") == r["expr"].count(")")
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for r in alerts:
        assert r["alert"] in readme, f"deploy/README.md does not say what {r['alert']} means"


def test_dashboard_panels_use_existing_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    known = _engine_metrics() | SDK_METRICS
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert exprs
    for e in exprs:
        used = _metric_names(e)
        assert used and used <= known, f"panel query uses unknown metrics {used - known}: {e}"
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
