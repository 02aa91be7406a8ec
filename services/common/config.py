"""Configuration: one settings object, read from STRONGROOM_* variables.

Configuration alone picks the adapters behind each port; the code that uses
a port never asks which adapter it holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_NAMES = ("ingestion", "redaction", "tasks", "labeling", "export", "audit")


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "strongroom"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STRONGROOM_", frozen=True)

    data_dir: Path = Field(default_factory=default_data_dir)
    # Empty means one SQLite file per service under the data directory;
    # otherwise a SQLAlchemy URL with "{service}" where the name goes.
    database_url_template: str = ""

    event_bus: Literal["sqlite", "kafka"] = "sqlite"
    kafka_bootstrap_servers: str = ""
    kafka_tls: bool = False
    # SASL sign-in to the brokers (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512);
    # empty means none.
    kafka_sasl_mechanism: Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")

    object_store: Literal["local", "s3"] = "local"
    # The embedded object store refuses writes, and its services report not
    # ready, while the data disk has less than this free (MiB): the databases
    # and the audit trail on that disk keep room to record what happens.
    disk_reserve_mb: int = Field(default=256, ge=0)
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    s3_secure: bool = True
    s3_bucket_prefix: str = "strongroom-"
    # Days each version of an original or archived audit file is kept (WORM).
    s3_retention_days: int = Field(default=6 * 365, ge=1)
    # A file of 32 random bytes (mode 0600 or 0400, outside the data
    # directory) under which the embedded object store encrypts every object
    # it writes; `strongroom keys object-store PATH` makes one. Empty: no
    # encryption.
    object_store_key_file: str = ""

    audit_index: Literal["sqlite", "opensearch"] = "sqlite"
    # The Ed25519 key (PEM, PKCS#8) that signs audit checkpoints; empty means
    # signing-key.pem in the audit service's folder, created on first start.
    audit_signing_key_file: str = ""
    # The Ed25519 key (PEM, PKCS#8) that signs export manifests; empty means
    # signing-key.pem in the export service's folder, created on first start.
    export_signing_key_file: str = ""
    # A build that has not reported for this long is shown as interrupted (its
    # process died); builds report every few seconds.
    export_stall_seconds: float = Field(default=120.0, ge=15)
    # How often the labeling service looks for assisted projects whose model
    # is due; an answer or a manager's request wakes it at once.
    model_assistant_interval_seconds: float = Field(default=5.0, gt=0)
    # How often the audit chain is sealed with a signed checkpoint.
    audit_checkpoint_interval_seconds: float = Field(default=60.0, gt=0)
    # How long audit events are kept: six years by default (45 CFR
    # 164.316(b)(2)), and per category, the action's first word ("auth",
    # "task", ...), e.g. STRONGROOM_AUDIT_RETENTION_DAYS_BY_CATEGORY='{"rpc": 365}'.
    audit_retention_days: float = Field(default=6 * 365, gt=0)
    audit_retention_days_by_category: dict[str, float] = Field(default_factory=dict)
    # How often expired audit events are dropped from the chain and index.
    audit_expiry_interval_seconds: float = Field(default=3600.0, gt=0)
    opensearch_url: str = ""
    opensearch_index_prefix: str = "strongroom-audit"
    # HTTP basic authentication, for a cluster with the security plugin on.
    opensearch_username: str = ""
    opensearch_password: SecretStr = SecretStr("")

    # A PEM bundle of the CAs that sign the backends' certificates (Kafka,
    # S3, OpenSearch); empty trusts the system's. PostgreSQL takes its own in
    # the URL (sslrootcert=...), the OIDC provider through SSL_CERT_FILE.
    tls_ca_file: str = ""
    # This deployment's own certificate and key (PEM). When set, every
    # service's gRPC server and the gateway accept TLS only, and every call
    # between them is TLS, trusting tls_ca_file (a private CA, say).
    tls_cert_file: str = ""
    tls_key_file: str = ""

    # "local": the gateway is the OIDC issuer; "oidc": an external provider
    # such as Keycloak issues tokens and the gateway only verifies them.
    identity: Literal["local", "oidc"] = "local"
    oidc_issuer: str = "http://127.0.0.1:8470/oidc"
    oidc_audience: str = "strongroom"
    # The public client the CLI and the web page sign in through.
    oidc_client_id: str = "strongroom"
    token_lifetime_seconds: int = 3600
    # Built-in accounts: after this many failed sign-ins of one username,
    # each within the window of the one before, its sign-ins are refused
    # for the base delay, doubling with every further failure up to the cap.
    login_lockout_threshold: int = Field(default=5, ge=1)
    login_lockout_window_seconds: float = Field(default=900.0, gt=0)
    login_lockout_base_seconds: float = Field(default=60.0, ge=0)
    login_lockout_max_seconds: float = Field(default=900.0, ge=0)
    # Where people open the web page; the provider sends the browser back to
    # {public_url}/auth/callback after sign-in. Empty: the gateway's own
    # http(s)://{gateway_host}:{gateway_port}.
    public_url: str = ""
    # A browser session ends after this long without a request, and in any
    # case this long after sign-in (fractions allowed, for tests).
    session_idle_minutes: float = Field(default=30.0, gt=0)
    session_absolute_hours: float = Field(default=8.0, gt=0)

    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8470
    ingestion_address: str = "127.0.0.1:8471"
    redaction_address: str = "127.0.0.1:8472"
    tasks_address: str = "127.0.0.1:8473"
    labeling_address: str = "127.0.0.1:8474"
    export_address: str = "127.0.0.1:8475"
    audit_address: str = "127.0.0.1:8476"
    # Where a service's own gRPC server listens, when not on the address its
    # callers use (in Kubernetes: "0.0.0.0:8473" behind "strongroom-tasks:8473").
    grpc_listen_address: str = ""

    # The AES-256 key (hex) that seals the redaction service's project keys
    # and re-identification originals; kept outside the data directory.
    # Empty means ~/.config/strongroom/redaction.key, created on first start.
    redaction_key_file: str = ""
    # Run the named-entity model (names, organisations, places) in redaction.
    redaction_ner: bool = True

    max_upload_bytes: int = 100 * 1024 * 1024
    # Any other request's body (projects, answers, settings) is far smaller.
    max_request_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    lease_seconds: int = 1800
    # How often lapsed leases go back to the pool (leasing also checks).
    lease_expiry_interval_seconds: float = 30.0
    log_level: str = "INFO"
    # How long the outbox relay waits after finding nothing to publish; a
    # longer pause means fewer empty polls of the database and later events.
    outbox_idle_seconds: float = Field(default=0.05, gt=0)
    # How often a service re-checks that its backends answer (readiness).
    readiness_interval_seconds: float = Field(default=5.0, gt=0)

    @property
    def is_tls(self) -> bool:
        return bool(self.tls_cert_file)

    @property
    def gateway_scheme(self) -> str:
        return "https" if self.is_tls else "http"

    def address_of(self, service: str) -> str:
        address: str = getattr(self, f"{service}_address")
        return address

    def listen_address_of(self, service: str) -> str:
        return self.grpc_listen_address or self.address_of(service)

    def database_url(self, service: str) -> str:
        if self.database_url_template:
            return self.database_url_template.format(service=service)
        return f"sqlite:///{self.service_dir(service) / 'state.db'}"

    def web_url(self) -> str:
        """The web page's address, with no trailing slash."""
        own = f"{self.gateway_scheme}://{self.gateway_host}:{self.gateway_port}"
        url = self.public_url or own
        return url.rstrip("/")

    def service_dir(self, service: str) -> Path:
        path = self.data_dir / service
        path.mkdir(parents=True, exist_ok=True)
        return path
