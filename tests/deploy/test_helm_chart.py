"""The Helm chart: lint, render, validate offline, and hold the hardening rules.

There is no Kubernetes cluster here. The chart is checked the way a platform
team's CI would check it: ``helm lint --strict``, ``helm template`` with the
default values and each documented example, every rendered manifest
validated against the Kubernetes 1.36 schemas (kubernetes-validate, strict),
and the policies below asserted on what was rendered.
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "strongroom"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
KUBERNETES_VERSION = "1.36.0"
RELEASE = "sr"
SERVICES = ("ingestion", "redaction", "tasks", "labeling", "export", "audit")
COMPONENTS = ("gateway", *SERVICES)
# Who may call each service (docs/architecture.md): nobody else may.
CALLERS = {
    "ingestion": {"gateway", "export"},
    "redaction": {"gateway", "export"},
    "tasks": {"gateway", "ingestion", "redaction", "labeling", "export"},
    "labeling": {"gateway", "export"},
    "export": {"gateway"},
    "audit": {"gateway"},
}
POD_KINDS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}
# Environment variables that carry credentials and must come from Secrets.
SECRET_SETTINGS = {"STRONGROOM_S3_SECRET_KEY", "STRONGROOM_S3_ACCESS_KEY"}
SECRET_SETTINGS |= {"STRONGROOM_DATABASE_URL_TEMPLATE"}

Manifest = dict[str, Any]


def helm_template(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(helm),
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            "strongroom",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def render(helm: Path, *args: str) -> list[Manifest]:
    result = helm_template(helm, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


VALUE_SETS = [pytest.param((), id="defaults")] + [
    pytest.param(("-f", str(path)), id=path.stem) for path in EXAMPLES
]


@pytest.fixture(params=VALUE_SETS, scope="module")
def manifests(request: pytest.FixtureRequest, helm: Path) -> list[Manifest]:
    return render(helm, *request.param)


def is_trial(manifest: Manifest) -> bool:
    """Whether the manifest belongs to trial mode's own backends."""
    labels = manifest["metadata"].get("labels", {})
    return bool(labels.get("app.kubernetes.io/name") == "strongroom-trial")


def pod_specs(
    manifests: list[Manifest], *, with_trial: bool = False
) -> Iterator[tuple[Manifest, Manifest]]:
    for manifest in manifests:
        if manifest["kind"] in POD_KINDS and (with_trial or not is_trial(manifest)):
            yield manifest, manifest["spec"]["template"]["spec"]


def containers(
    manifests: list[Manifest], *, with_trial: bool = False
) -> Iterator[tuple[str, Manifest, Manifest]]:
    for owner, spec in pod_specs(manifests, with_trial=with_trial):
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield owner["metadata"]["name"], spec, container


def by_kind(
    manifests: list[Manifest], kind: str, *, with_trial: bool = False
) -> dict[str, Manifest]:
    return {
        m["metadata"]["name"]: m
        for m in manifests
        if m["kind"] == kind and (with_trial or not is_trial(m))
    }


def is_trial_mode(manifests: list[Manifest]) -> bool:
    return any(is_trial(m) for m in manifests)


def named(component: str) -> str:
    return f"{RELEASE}-strongroom-{component}"


def test_chart_lints_strictly(helm: Path) -> None:
    for values in [[], *(["-f", str(path)] for path in EXAMPLES)]:
        result = subprocess.run(
            [str(helm), "lint", "--strict", str(CHART), *values],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_there_are_production_and_trial_examples() -> None:
    assert {"production", "trial"} <= {path.stem for path in EXAMPLES}


def test_every_manifest_is_valid_kubernetes(manifests: list[Manifest]) -> None:
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_one_deployment_and_service_per_component(manifests: list[Manifest]) -> None:
    assert set(by_kind(manifests, "Deployment")) == {named(c) for c in COMPONENTS}
    assert set(by_kind(manifests, "Service")) == {named(c) for c in COMPONENTS}
    if is_trial_mode(manifests):
        # The trial example reaches the UI by port-forward (see its NOTES).
        assert by_kind(manifests, "Ingress") == {}
        return
    ingress = by_kind(manifests, "Ingress")[named("gateway")]
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"]["name"] == named("gateway")


def test_the_gateway_knows_the_address_people_sign_in_at(helm: Path) -> None:
    production = render(helm, "-f", str(CHART / "examples" / "production.yaml"))
    env = {
        entry["name"]: entry.get("value")
        for entry in by_kind(production, "Deployment")[named("gateway")]["spec"][
            "template"
        ]["spec"]["containers"][0]["env"]
    }

    # The sign-in callback is {public_url}/auth/callback behind the ingress.
    assert env["STRONGROOM_PUBLIC_URL"] == "https://strongroom.example.org"


def test_every_container_is_hardened(manifests: list[Manifest]) -> None:
    for owner, spec, container in containers(manifests, with_trial=True):
        pod = spec.get("securityContext", {})
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True, owner
        if not owner.startswith(f"{RELEASE}-strongroom-trial-"):
            # Some trial images write into their own installation folders.
            assert context["readOnlyRootFilesystem"] is True, owner
        assert context["allowPrivilegeEscalation"] is False, owner
        assert context["capabilities"]["drop"] == ["ALL"], owner
        assert "add" not in context["capabilities"], owner
        seccomp = context.get("seccompProfile") or pod.get("seccompProfile")
        assert seccomp == {"type": "RuntimeDefault"}, owner
        assert spec["automountServiceAccountToken"] is False, owner
        assert container["resources"]["requests"], owner
        assert container["resources"]["limits"], owner


def test_every_long_running_container_has_probes(manifests: list[Manifest]) -> None:
    for deployment in by_kind(manifests, "Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            name = deployment["metadata"]["name"]
            assert "readinessProbe" in container, name
            assert "livenessProbe" in container, name
            if container["name"] != "gateway":
                # Readiness asks whether the backends answer; liveness only
                # whether the process does (services/common/readiness.py).
                assert "service" not in container["readinessProbe"]["grpc"]
                assert container["livenessProbe"]["grpc"]["service"] == "liveness"


def test_every_pod_has_its_own_service_account(manifests: list[Manifest]) -> None:
    accounts = by_kind(manifests, "ServiceAccount")
    for owner, spec in pod_specs(manifests):
        account = accounts[spec["serviceAccountName"]]
        assert account["automountServiceAccountToken"] is False
        assert spec["serviceAccountName"] == owner["metadata"]["name"]


def _selects(selector: Manifest, labels: Manifest) -> bool:
    wanted = selector.get("matchLabels", {})
    return all(labels.get(key) == value for key, value in wanted.items())


def _policies_for(manifests: list[Manifest], labels: Manifest) -> list[Manifest]:
    return [
        policy
        for policy in by_kind(manifests, "NetworkPolicy").values()
        if _selects(policy["spec"]["podSelector"], labels)
    ]


def test_every_pod_is_covered_by_a_network_policy(manifests: list[Manifest]) -> None:
    for owner, _spec in pod_specs(manifests, with_trial=True):
        labels = owner["spec"]["template"]["metadata"]["labels"]
        policies = [
            p
            for p in by_kind(manifests, "NetworkPolicy", with_trial=True).values()
            if _selects(p["spec"]["podSelector"], labels)
        ]
        kinds = {kind for p in policies for kind in p["spec"]["policyTypes"]}
        assert kinds == {"Ingress", "Egress"}, owner["metadata"]["name"]
        if not is_trial(owner):
            # One of them denies all by selecting every pod of the release.
            assert any(
                "component" not in str(p["spec"]["podSelector"]) for p in policies
            )


def test_each_service_is_reachable_from_its_callers_only(
    manifests: list[Manifest],
) -> None:
    policies = by_kind(manifests, "NetworkPolicy")
    for service, callers in CALLERS.items():
        (rule,) = policies[named(service)]["spec"]["ingress"]
        sources = {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
            for peer in rule["from"]
        }
        assert sources == callers, service
    (gateway_rule,) = policies[named("gateway")]["spec"]["ingress"]
    assert [set(peer) for peer in gateway_rule["from"]] == [{"namespaceSelector"}]
    assert gateway_rule["ports"] == [{"port": 8470, "protocol": "TCP"}]


def test_egress_names_only_dns_callees_and_configured_backends(helm: Path) -> None:
    manifests = render(helm, "-f", str(CHART / "examples" / "production.yaml"))
    policy = by_kind(manifests, "NetworkPolicy")[named("export")]
    egress = policy["spec"]["egress"]
    callees = {
        peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
        for rule in egress
        for peer in rule["to"]
        if "podSelector" in peer and "namespaceSelector" not in peer
    }
    ports = {port["port"] for rule in egress for port in rule["ports"]}
    assert callees == {"ingestion", "redaction", "tasks", "labeling"}
    # DNS, the four callees, then PostgreSQL, Kafka, S3 and Keycloak.
    assert ports == {53, 8471, 8472, 8473, 8474, 5432, 9092, 9000, 443}
    assert 9200 not in ports  # only audit writes to OpenSearch


def test_credentials_come_from_secrets_only(manifests: list[Manifest]) -> None:
    for owner, _spec, container in containers(manifests, with_trial=True):
        env = {entry["name"]: entry for entry in container.get("env", [])}
        for name, entry in env.items():
            if "PASSWORD" in name or "SECRET" in name:
                assert "secretKeyRef" in entry["valueFrom"], (owner, name)
        if owner.startswith(f"{RELEASE}-strongroom-trial-"):
            continue
        for name in SECRET_SETTINGS:
            assert "value" not in env[name], (owner, name)
            assert "secretKeyRef" in env[name]["valueFrom"], (owner, name)
    for config_map in by_kind(manifests, "ConfigMap").values():
        for key, value in (config_map.get("data") or {}).items():
            lowered = f"{key} {value}".lower()
            assert not any(w in lowered for w in ("password", "secret", "token"))


def test_audit_keeps_one_writer_on_a_kept_volume(manifests: list[Manifest]) -> None:
    deployment = by_kind(manifests, "Deployment")[named("audit")]
    claim = by_kind(manifests, "PersistentVolumeClaim")[named("audit")]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert named("audit") not in by_kind(manifests, "HorizontalPodAutoscaler")


@pytest.mark.parametrize(
    ("component", "variable", "file_name", "keys"),
    [
        (
            "redaction",
            "STRONGROOM_REDACTION_KEY_FILE",
            "redaction.key",
            ("redaction.key", "redaction-key"),
        ),
        (
            "export",
            "STRONGROOM_EXPORT_SIGNING_KEY_FILE",
            "export-signing-key.pem",
            ("export-signing-key.pem", "export-signing-key"),
        ),
    ],
)
def test_only_the_service_a_key_is_for_reads_it_from_a_secret(
    manifests: list[Manifest],
    component: str,
    variable: str,
    file_name: str,
    keys: tuple[str, ...],
) -> None:
    deployments = by_kind(manifests, "Deployment")
    spec = deployments[named(component)]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = {entry["name"]: entry for entry in container["env"]}
    (volume,) = [v for v in spec["volumes"] if v["name"] == "keys"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "keys"]

    assert env[variable]["value"] == mount["mountPath"] + "/" + file_name
    assert mount["readOnly"] is True
    (item,) = volume["secret"]["items"]
    assert item["path"] == file_name
    assert item["key"] in keys  # the operator's Secret or the trial's own
    assert volume["secret"]["defaultMode"] == 0o440
    for name, deployment in deployments.items():
        if name in (named("redaction"), named("export")):
            continue
        other = deployment["spec"]["template"]["spec"]
        assert all(v["name"] != "keys" for v in other.get("volumes", [])), name
        (other_container,) = other["containers"]
        assert variable not in {e["name"] for e in other_container["env"]}, name


def test_trial_mode_generates_both_keys(helm: Path) -> None:
    trial = render(helm, "-f", str(CHART / "examples" / "trial.yaml"))
    secret = by_kind(trial, "Secret", with_trial=True)[f"{RELEASE}-strongroom-trial"]
    key = base64.b64decode(secret["data"]["redaction-key"]).decode()
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    pem = base64.b64decode(secret["data"]["export-signing-key"])
    assert isinstance(load_pem_private_key(pem, password=None), Ed25519PrivateKey)


def test_scaled_components_have_disruption_budgets(manifests: list[Manifest]) -> None:
    autoscalers = by_kind(manifests, "HorizontalPodAutoscaler")
    budgets = by_kind(manifests, "PodDisruptionBudget")
    assert autoscalers or is_trial_mode(manifests)
    for name, autoscaler in autoscalers.items():
        assert autoscaler["spec"]["scaleTargetRef"]["name"] == name
        assert name in budgets


def test_migrations_run_as_a_hook_before_install_and_upgrade(
    manifests: list[Manifest],
) -> None:
    if is_trial_mode(manifests):
        # The trial's PostgreSQL starts with the release, after any hook;
        # the services migrate their databases as they start.
        assert by_kind(manifests, "Job") == {}
        return
    job = by_kind(manifests, "Job")[named("migrate")]
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["strongroom", "migrate"]


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ("components.audit.replicas=2", "maximum"),
        ("backends.s3.endpoint=https://minio.example:9000", "does not match"),
        ("backends.kafka.bootstrapServers=kafka", "does not match"),
        ("backends.s3.secretKey=in-clear", "additional properties"),
        ("settings.logLevel=LOUD", "value must be one of"),
        ("podSecurityContext.runAsNonRoot=false", "value must be"),
    ],
)
def test_a_wrong_value_fails_at_install_time(
    helm: Path, override: str, complaint: str
) -> None:
    result = helm_template(helm, "--set", override)

    assert result.returncode != 0
    assert complaint in result.stderr.lower(), result.stderr
    assert override.split("=")[0].split(".")[-1] in result.stderr


def test_notes_tell_how_to_reach_the_ui_and_create_the_first_admin(
    helm: Path,
) -> None:
    result = subprocess.run(
        [str(helm), "install", RELEASE, str(CHART), "--dry-run=client"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "http://strongroom.example.com/" in notes
    assert "first admin" in notes and "realm role" in notes


def test_trial_mode_brings_every_backend_and_says_it_is_not_for_production(
    helm: Path,
) -> None:
    manifests = render(helm, "-f", str(CHART / "examples" / "trial.yaml"))
    trial = {
        m["metadata"]["name"]
        for m in manifests
        if m["kind"] == "Deployment" and is_trial(m)
    }
    env = {
        entry["name"]: entry
        for entry in by_kind(manifests, "Deployment")[named("tasks")]["spec"][
            "template"
        ]["spec"]["containers"][0]["env"]
    }
    realm = by_kind(manifests, "ConfigMap", with_trial=True)[
        f"{RELEASE}-strongroom-trial-keycloak-realm"
    ]

    assert trial == {
        f"{RELEASE}-strongroom-trial-{b}"
        for b in ("kafka", "minio", "keycloak", "opensearch", "postgresql")
    }
    assert env["STRONGROOM_KAFKA_BOOTSTRAP_SERVERS"]["value"] == (
        f"{RELEASE}-strongroom-trial-kafka:9092"
    )
    assert env["STRONGROOM_OIDC_ISSUER"]["value"].endswith("/realms/strongroom")
    secret = env["STRONGROOM_DATABASE_URL_TEMPLATE"]["valueFrom"]["secretKeyRef"]
    assert secret["name"] == f"{RELEASE}-strongroom-trial"
    assert '"realm": "strongroom"' in realm["data"]["strongroom-realm.json"]
    notes = subprocess.run(
        [
            str(helm),
            "install",
            RELEASE,
            str(CHART),
            "--dry-run=client",
            "-f",
            str(CHART / "examples" / "trial.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.split("NOTES:", 1)[1]
    assert "NOT FOR PRODUCTION" in notes


def test_backend_sign_ins_come_from_secrets(helm: Path) -> None:
    manifests = render(helm, "-f", str(CHART / "examples" / "production.yaml"))
    deployment = by_kind(manifests, "Deployment")[named("audit")]
    env = {
        e["name"]: e
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }

    assert env["STRONGROOM_KAFKA_SASL_MECHANISM"]["value"] == "SCRAM-SHA-512"
    for name, secret in [
        ("STRONGROOM_KAFKA_SASL_USERNAME", "strongroom-kafka"),
        ("STRONGROOM_KAFKA_SASL_PASSWORD", "strongroom-kafka"),
        ("STRONGROOM_OPENSEARCH_USERNAME", "strongroom-opensearch"),
        ("STRONGROOM_OPENSEARCH_PASSWORD", "strongroom-opensearch"),
    ]:
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == secret
    defaults = by_kind(render(helm), "Deployment")[named("audit")]
    names = {
        e["name"] for e in defaults["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert "STRONGROOM_KAFKA_SASL_MECHANISM" not in names
    assert "STRONGROOM_OPENSEARCH_PASSWORD" not in names
