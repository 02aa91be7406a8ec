"""The FastAPI application: REST API under /api/v1, the OIDC issuer under /oidc,
the web page's sign-in under /auth.

No `from __future__ import annotations` here: FastAPI reads the route
signatures at run time, and the `Caller` alias is local to create_app.
"""

import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from strongroom.gateway import schemas
from strongroom.gateway.accounts_api import accounts_router, user_out
from strongroom.gateway.audit_api import audit_router
from strongroom.gateway.clients import ServiceClients
from strongroom.gateway.export_api import export_router
from strongroom.gateway.identity import open_identity
from strongroom.gateway.labeling_api import labeling_router
from strongroom.gateway.limits import BodyLimit
from strongroom.gateway.login_page import login_page_router
from strongroom.gateway.models_api import models_router
from strongroom.gateway.oidc_client import IssuerTransport
from strongroom.gateway.problems import install_problem_handlers
from strongroom.gateway.sessions import SessionStore
from strongroom.gateway.sign_in import BrowserSignIn
from strongroom.services.common.adapters.local_oidc import (
    SERVICE_ACCOUNT_PREFIX,
    LocalOidcIssuer,
    User,
)
from strongroom.services.common.adapters.service_accounts import ServiceAccounts
from strongroom.services.common.audit_trail import ERROR, stage_audit
from strongroom.services.common.auth import (
    ADMIN,
    MANAGER,
    ORIGINAL_READER,
    Principal,
    require_role,
)
from strongroom.services.common.config import Settings
from strongroom.services.common.errors import (
    DependencyUnavailable,
    FailedPrecondition,
    InvalidArgument,
    QuotaExceeded,
    StrongroomError,
)
from strongroom.services.common.events import OutboxRelay
from strongroom.services.common.grpc_clients import (
    Metadata,
    call,
    call_streaming,
    caller_metadata,
)
from strongroom.services.common.logs import request_id_var, user_agent_var
from strongroom.services.common.readiness import failing_backends
from strongroom.services.common.runtime import backend_checks, open_backends
from strongroom.v1 import (
    common_pb2,
    ingestion_pb2,
    redaction_pb2,
    tasks_pb2,
)

STATIC = Path(__file__).parent / "static"
# The web UI loads only what the gateway serves: no CDN, no inline script.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_UPLOAD_CHUNK = 256 * 1024
# Answers under these paths carry tokens, personal data or both: no cache
# (the browser's included) keeps a copy.
_UNCACHED_PREFIXES = ("/api/", "/auth/", "/oidc/")


def label_protos(labels: list[schemas.LabelIn | str]) -> list[common_pb2.Label]:
    return [
        common_pb2.Label(name=label)
        if isinstance(label, str)
        else common_pb2.Label(
            name=label.name,
            color=label.color,
            hotkey=label.hotkey,
            description=label.description,
        )
        for label in labels
    ]


def download(chunks: Iterator[common_pb2.DataChunk]) -> StreamingResponse:
    """Stream chunks from a service as a file download.

    The first chunk is pulled before answering, so a refusal becomes a problem
    response rather than a broken stream.
    """
    first = next(chunks, None)

    def body() -> Iterator[bytes]:
        if first is not None:
            yield first.data
        for chunk in chunks:
            yield chunk.data

    return StreamingResponse(
        body(),
        media_type="application/octet-stream",
        headers={"content-disposition": "attachment"},
    )


def create_app(settings: Settings) -> FastAPI:
    issuer = open_identity(settings)
    # Automation's identities, kept by the built-in issuer (Keycloak has its
    # own service-account clients).
    service_accounts = (
        ServiceAccounts(issuer.engine) if isinstance(issuer, LocalOidcIssuer) else None
    )

    def find_user(username: str) -> User:
        if service_accounts is not None and username.startswith(SERVICE_ACCOUNT_PREFIX):
            return service_accounts.find(username)
        return issuer.find_user(username)

    clients = ServiceClients.connect(settings)
    backends = open_backends(settings, client_id="strongroom-gateway")
    relay = OutboxRelay(
        issuer.engine, backends.bus, idle_seconds=settings.outbox_idle_seconds
    )
    sessions = SessionStore(
        issuer.engine,
        idle_seconds=settings.session_idle_minutes * 60,
        absolute_seconds=settings.session_absolute_hours * 3600,
    )
    browser = BrowserSignIn(
        settings,
        issuer,
        sessions,
        IssuerTransport(issuer, settings.tls_ca_file)
        if isinstance(issuer, LocalOidcIssuer)
        else None,
    )
    registry = CollectorRegistry()
    requests_total = Counter(
        "strongroom_http_requests_total",
        "HTTP requests served",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "strongroom_http_request_seconds",
        "HTTP request latency",
        ["method", "route"],
        registry=registry,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        relay.start()
        yield
        relay.stop()
        clients.close()
        backends.bus.close()

    app = FastAPI(
        title="Strongroom",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
        request_id_var.set(request_id[:64])
        user_agent_var.set(request.headers.get("user-agent", "")[:256])
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        requests_total.labels(request.method, route, str(response.status_code)).inc()
        latency.labels(request.method, route).observe(time.perf_counter() - started)
        response.headers["x-request-id"] = request_id_var.get()
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["referrer-policy"] = "no-referrer"
        response.headers["content-security-policy"] = CONTENT_SECURITY_POLICY
        response.headers["x-frame-options"] = "DENY"
        if request.url.path.startswith(_UNCACHED_PREFIXES):
            response.headers["cache-control"] = "no-store"
        return response

    def audit_too_large(request: Request, error: QuotaExceeded) -> None:
        # Refused before the body is read, so an oversized request never fills
        # the gateway's memory or disk; audited like the services' refusals.
        try:
            actor = principal(request)
        except StrongroomError:
            address = request.client.host if request.client else ""
            actor = Principal("", "", frozenset(), client_address=address)
        path = request.url.path
        action = (
            "rpc.StartImport"
            if path.endswith("/imports")
            else "rpc.IngestDocument"
            if path.endswith("/documents")
            else "http.request"
        )
        with issuer.engine.begin() as conn:
            stage_audit(
                conn,
                service="gateway",
                action=action,
                actor=actor,
                resource_type="rpc",
                outcome=ERROR,
                reason=error.code,
                details={"code": error.code, "method": request.method},
            )

    app.add_middleware(
        BodyLimit,
        upload_bytes=settings.max_upload_bytes,
        request_bytes=settings.max_request_bytes,
        on_refused=audit_too_large,
    )

    def principal(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        address = request.client.host if request.client else ""
        # A bearer token (CLI, API clients) wins; only the page uses the
        # cookie, and only cookie requests need the CSRF token.
        if not token and browser.has_session_cookie(request):
            return browser.principal(request, address)
        verified = issuer.verify(token)
        return Principal(
            verified.subject, verified.username, verified.roles, verified.token, address
        )

    Caller = Annotated[Principal, Depends(principal)]

    def meta(caller: Principal) -> Metadata:
        return caller_metadata(caller.token, caller.client_address)

    # --- health, metrics, UI -------------------------------------------------

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> dict[str, str]:
        failing = clients.unhealthy()
        if failing:
            raise DependencyUnavailable(
                f"Not ready: {', '.join(failing)} not serving.", code="not_ready"
            )
        return {"status": "ready"}

    gateway_checks = backend_checks(issuer.engine, backends)

    @app.get("/readyz/gateway", include_in_schema=False)
    def gateway_readyz() -> dict[str, str]:
        """Ready while the gateway's own backends answer, whatever the services'.

        Kubernetes asks this one: each service leaves rotation by its own
        probe, so one service's outage does not take every gateway with it.
        """
        failing = failing_backends(gateway_checks)
        if failing:
            raise DependencyUnavailable(
                f"Not ready: {', '.join(failing)} not reachable.", code="not_ready"
            )
        return {"status": "ready"}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    # --- OIDC issuer ---------------------------------------------------------

    # The services fetch these to verify every caller's token while the
    # gateway's worker threads wait on those same services. Served on the
    # event loop (both are in memory), they never queue behind them; as
    # thread-pool routes, under 100 annotators the fetch waited out its
    # timeout and every call stalled until the load stopped.
    @app.get("/oidc/.well-known/openid-configuration", tags=["identity"])
    async def discovery() -> dict[str, object]:
        return issuer.discovery_document()

    @app.get("/oidc/jwks", tags=["identity"])
    async def jwks() -> dict[str, object]:
        return issuer.jwks()

    @app.post(
        "/oidc/token",
        tags=["identity"],
        response_model=schemas.TokenResponse,
        response_model_exclude_none=True,
    )
    def token(
        request: Request,
        grant_type: Annotated[str, Form(max_length=64)] = "password",
        username: Annotated[str, Form(max_length=256)] = "",
        password: Annotated[str, Form(max_length=1024)] = "",
        code: Annotated[str, Form(max_length=2048)] = "",
        redirect_uri: Annotated[str, Form(max_length=2048)] = "",
        client_id: Annotated[str, Form(max_length=256)] = "",
        client_secret: Annotated[str, Form(max_length=256)] = "",
        code_verifier: Annotated[str, Form(max_length=256)] = "",
        refresh_token: Annotated[str, Form(max_length=8192)] = "",
        totp: Annotated[str, Form(max_length=16)] = "",
    ) -> schemas.TokenResponse:
        """The password grant (CLI, API clients), the client credentials grant
        (service accounts); the authorization code grant with PKCE and the
        refresh token grant, for the web page's sign-in."""
        if grant_type == "password":
            address = request.client.host if request.client else ""
            access_token = issuer.login(username, password, address, totp=totp)
            return schemas.TokenResponse(
                access_token=access_token, expires_in=settings.token_lifetime_seconds
            )
        if grant_type == "client_credentials" and isinstance(issuer, LocalOidcIssuer):
            assert service_accounts is not None
            address = request.client.host if request.client else ""
            account = service_accounts.authenticate(client_id, client_secret, address)
            return schemas.TokenResponse(
                access_token=issuer.issue_token(account),
                expires_in=settings.token_lifetime_seconds,
            )
        if not isinstance(issuer, LocalOidcIssuer):
            raise InvalidArgument(
                "The grant type is not supported here.", code="unsupported_grant_type"
            )
        tokens = issuer.grant(
            {
                "grant_type": grant_type,
                "code": code,
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
                "refresh_token": refresh_token,
            }
        )
        return schemas.TokenResponse(
            access_token=tokens.access_token,
            expires_in=tokens.expires_in,
            id_token=tokens.id_token or None,
            refresh_token=tokens.refresh_token or None,
        )

    if isinstance(issuer, LocalOidcIssuer):
        app.include_router(login_page_router(issuer))
    app.include_router(browser.router())

    # --- users ---------------------------------------------------------------

    @app.get("/api/v1/me", tags=["users"], response_model=schemas.Me)
    def me(request: Request, caller: Caller) -> schemas.Me:
        """Who is calling; for the web page, also the session's CSRF token."""
        is_bearer = (
            request.headers.get("authorization", "").lower().startswith("bearer ")
        )
        return schemas.Me(
            subject=caller.subject,
            username=caller.username,
            roles=sorted(caller.roles),
            csrf_token=None if is_bearer else browser.csrf_token(request),
        )

    @app.post(
        "/api/v1/users", tags=["users"], status_code=201, response_model=schemas.UserOut
    )
    def create_user(body: schemas.UserIn, caller: Caller) -> schemas.UserOut:
        require_role(caller, ADMIN)
        password = body.password or secrets.token_urlsafe(18)
        user = issuer.create_user(
            body.username, password, set(body.roles), actor=caller
        )
        return schemas.UserOut(
            subject=user.subject,
            username=user.username,
            roles=sorted(user.roles),
            password=None if body.password else password,
        )

    @app.post(
        "/api/v1/service-accounts",
        tags=["users"],
        status_code=201,
        response_model=schemas.ServiceAccountOut,
    )
    def create_service_account(
        body: schemas.ServiceAccountIn, caller: Caller
    ) -> schemas.ServiceAccountOut:
        """An identity for automation; its secret is shown in this answer only."""
        require_role(caller, ADMIN)
        if service_accounts is None:
            raise FailedPrecondition(
                "Service accounts are clients of the identity provider here.",
                code="users_managed_externally",
            )
        account, secret = service_accounts.create(body.name, set(body.roles), caller)
        return schemas.ServiceAccountOut.of(account, secret)

    @app.get(
        "/api/v1/service-accounts",
        tags=["users"],
        response_model=list[schemas.ServiceAccountOut],
    )
    def list_service_accounts(caller: Caller) -> list[schemas.ServiceAccountOut]:
        require_role(caller, ADMIN)
        accounts = service_accounts.list() if service_accounts is not None else []
        with issuer.engine.begin() as conn:
            stage_audit(
                conn,
                service="gateway",
                action="service_account.list",
                actor=caller,
                resource_type="user",
                details={"count": len(accounts)},
            )
        return [schemas.ServiceAccountOut.of(a) for a in accounts]

    @app.get("/api/v1/users", tags=["users"], response_model=list[schemas.UserOut])
    def list_users(caller: Caller) -> list[schemas.UserOut]:
        require_role(caller, ADMIN)
        users = issuer.list_users()
        with issuer.engine.begin() as conn:
            stage_audit(
                conn,
                service="gateway",
                action="user.list",
                actor=caller,
                resource_type="user",
                details={"count": len(users)},
            )
        return [user_out(u) for u in users]

    app.include_router(
        accounts_router(issuer, principal, settings.token_lifetime_seconds)
    )

    # --- projects ------------------------------------------------------------

    @app.post(
        "/api/v1/projects",
        tags=["projects"],
        status_code=201,
        response_model=schemas.Project,
    )
    def create_project(body: schemas.ProjectIn, caller: Caller) -> schemas.Project:
        schema = body.schema_ or schemas.LabelSchemaIn()
        request = tasks_pb2.CreateProjectRequest(
            name=body.name,
            labels=label_protos(body.labels),
            schema=tasks_pb2.LabelSchema(
                spans=label_protos(schema.spans),
                classes=label_protos(schema.classes),
                multi_label=schema.multi_label,
                relations=label_protos(schema.relations),
                boxes=label_protos(schema.boxes),
                fields=[
                    tasks_pb2.FieldSpec(name=f.name, description=f.description)
                    for f in schema.fields
                ],
            ),
            label_config=body.label_config,
            guidelines=body.guidelines,
            overlap=body.overlap,
            assignment=body.assignment,
            window=tasks_pb2.Window(kind=body.window.kind, size=body.window.size),
            review=body.review,
        )
        project = call(clients.tasks.CreateProject, request, meta(caller))
        return schemas.Project.from_proto(project)

    @app.get("/api/v1/projects", tags=["projects"], response_model=schemas.ProjectList)
    def list_projects(
        caller: Caller,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=schemas.MAX_INDEX)] = 0,
    ) -> schemas.ProjectList:
        response = call(
            clients.tasks.ListProjects,
            tasks_pb2.ListProjectsRequest(
                page=common_pb2.PageRequest(limit=limit, offset=offset)
            ),
            meta(caller),
        )
        return schemas.ProjectList(
            projects=[schemas.Project.from_proto(p) for p in response.projects],
            total=response.page.total,
        )

    @app.get(
        "/api/v1/projects/{project_id}",
        tags=["projects"],
        response_model=schemas.Project,
    )
    def get_project(project_id: str, caller: Caller) -> schemas.Project:
        project = call(
            clients.tasks.GetProject,
            tasks_pb2.GetProjectRequest(project_id=project_id),
            meta(caller),
        )
        return schemas.Project.from_proto(project)

    @app.post(
        "/api/v1/projects/{project_id}/members",
        tags=["projects"],
        response_model=schemas.Project,
    )
    def add_member(
        project_id: str, body: schemas.MemberIn, caller: Caller
    ) -> schemas.Project:
        require_role(caller, ADMIN, MANAGER)
        subject = body.subject or find_user(body.username).subject
        project = call(
            clients.tasks.AddMember,
            tasks_pb2.AddMemberRequest(
                project_id=project_id,
                member=tasks_pb2.Member(subject=subject, role=body.role),
            ),
            meta(caller),
        )
        return schemas.Project.from_proto(project)

    # --- documents -----------------------------------------------------------

    @app.post(
        "/api/v1/projects/{project_id}/documents",
        tags=["documents"],
        status_code=201,
        response_model=schemas.Document,
    )
    def upload_document(
        project_id: str, file: Annotated[UploadFile, File()], caller: Caller
    ) -> schemas.Document:
        # The role first, as the ingestion service does, so a caller who may
        # never upload is refused alike for every project, theirs or not.
        require_role(caller, ADMIN, MANAGER)
        call(
            clients.tasks.GetProject,
            tasks_pb2.GetProjectRequest(project_id=project_id),
            meta(caller),
        )

        def upload() -> Iterator[ingestion_pb2.IngestDocumentRequest]:
            yield ingestion_pb2.IngestDocumentRequest(
                header=ingestion_pb2.IngestHeader(
                    project_id=project_id,
                    source_name=file.filename or "",
                    declared_media_type=file.content_type or "",
                )
            )
            while data := file.file.read(_UPLOAD_CHUNK):
                yield ingestion_pb2.IngestDocumentRequest(data=data)

        document = call(
            clients.ingestion.IngestDocument, upload(), meta(caller), timeout=600.0
        )
        return schemas.Document.from_proto(document)

    @app.get(
        "/api/v1/projects/{project_id}/documents",
        tags=["documents"],
        response_model=schemas.DocumentList,
    )
    def list_documents(
        project_id: str,
        caller: Caller,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=schemas.MAX_INDEX)] = 0,
    ) -> schemas.DocumentList:
        response = call(
            clients.ingestion.ListDocuments,
            ingestion_pb2.ListDocumentsRequest(
                project_id=project_id,
                page=common_pb2.PageRequest(limit=limit, offset=offset),
            ),
            meta(caller),
        )
        return schemas.DocumentList(
            documents=[schemas.Document.from_proto(d) for d in response.documents],
            total=response.page.total,
        )

    @app.get(
        "/api/v1/documents/{document_id}",
        tags=["documents"],
        response_model=schemas.Document,
    )
    def get_document(document_id: str, caller: Caller) -> schemas.Document:
        document = call(
            clients.ingestion.GetDocument,
            ingestion_pb2.GetDocumentRequest(document_id=document_id),
            meta(caller),
        )
        return schemas.Document.from_proto(document)

    @app.get(
        "/api/v1/documents/{document_id}/original",
        tags=["documents"],
        response_class=StreamingResponse,
    )
    def read_original(
        document_id: str,
        caller: Caller,
        reason: Annotated[str, Query(max_length=500)] = "",
    ) -> StreamingResponse:
        """Download an original file: the original_reader role only, with a
        stated reason, audited."""
        require_role(caller, ORIGINAL_READER)
        request = ingestion_pb2.ReadOriginalRequest(
            document_id=document_id, reason=reason
        )
        chunks = call_streaming(clients.ingestion.ReadOriginal, request, meta(caller))
        return download(chunks)

    @app.get("/api/v1/documents/{document_id}/structure", tags=["documents"])
    def read_structure(document_id: str, caller: Caller) -> Response:
        """The document's pages, blocks, tables and boxes, as ingestion found them."""
        request = ingestion_pb2.ReadStructureRequest(document_id=document_id)
        chunks = call_streaming(clients.ingestion.ReadStructure, request, meta(caller))
        body = b"".join(chunk.data for chunk in chunks)
        return Response(body, media_type="application/json")

    @app.get(
        "/api/v1/projects/{project_id}/quarantine",
        tags=["documents"],
        response_model=schemas.QuarantineList,
    )
    def list_quarantined(project_id: str, caller: Caller) -> schemas.QuarantineList:
        """Refused uploads of the project, each with the code of its refusal."""
        response = call(
            clients.ingestion.ListQuarantined,
            ingestion_pb2.ListQuarantinedRequest(project_id=project_id),
            meta(caller),
        )
        return schemas.QuarantineList.from_proto(response)

    @app.get(
        "/api/v1/documents/{document_id}/redaction",
        tags=["documents"],
        response_model=schemas.RedactionReport,
    )
    def get_redaction(document_id: str, caller: Caller) -> schemas.RedactionReport:
        report = call(
            clients.redaction.GetRedactionReport,
            redaction_pb2.GetRedactionReportRequest(document_id=document_id),
            meta(caller),
        )
        return schemas.RedactionReport.from_proto(report)

    # --- redaction policy, project report and corrections ---------------------

    @app.get(
        "/api/v1/projects/{project_id}/redaction-policy",
        tags=["redaction"],
        response_model=schemas.RedactionPolicy,
    )
    def get_redaction_policy(
        project_id: str, caller: Caller
    ) -> schemas.RedactionPolicy:
        """The project's redaction policy: admins and managers only."""
        require_role(caller, ADMIN, MANAGER)
        policy = call(
            clients.redaction.GetRedactionPolicy,
            redaction_pb2.GetRedactionPolicyRequest(project_id=project_id),
            meta(caller),
        )
        return schemas.RedactionPolicy.from_proto(policy)

    @app.put(
        "/api/v1/projects/{project_id}/redaction-policy",
        tags=["redaction"],
        response_model=schemas.RedactionPolicy,
    )
    def put_redaction_policy(
        project_id: str, body: schemas.RedactionPolicyIn, caller: Caller
    ) -> schemas.RedactionPolicy:
        """Replace the policy; documents redacted from now on follow it."""
        require_role(caller, ADMIN, MANAGER)
        policy = call(
            clients.redaction.SetRedactionPolicy,
            redaction_pb2.SetRedactionPolicyRequest(policy=body.to_proto(project_id)),
            meta(caller),
        )
        return schemas.RedactionPolicy.from_proto(policy)

    @app.get(
        "/api/v1/projects/{project_id}/redaction",
        tags=["redaction"],
        response_model=schemas.ProjectRedactionReport,
    )
    def get_project_redaction(
        project_id: str, caller: Caller
    ) -> schemas.ProjectRedactionReport:
        """What was found across the project, by type, detector and action."""
        report = call(
            clients.redaction.GetProjectRedactionReport,
            redaction_pb2.GetProjectRedactionReportRequest(project_id=project_id),
            meta(caller),
        )
        return schemas.ProjectRedactionReport.from_proto(report)

    @app.post(
        "/api/v1/documents/{document_id}/redaction/corrections",
        tags=["redaction"],
        response_model=schemas.RedactionReport,
    )
    def correct_redaction(
        document_id: str, body: schemas.RedactionCorrectionsIn, caller: Caller
    ) -> schemas.RedactionReport:
        """A reviewer adds a missed identifier or undoes a false one."""
        report = call(
            clients.redaction.CorrectRedaction,
            body.to_proto(document_id),
            meta(caller),
        )
        return schemas.RedactionReport.from_proto(report)

    @app.post(
        "/api/v1/projects/{project_id}/reidentification",
        tags=["redaction"],
        response_model=schemas.ReidentificationMapping,
    )
    def read_reidentification(
        project_id: str, body: schemas.ReidentificationIn, caller: Caller
    ) -> schemas.ReidentificationMapping:
        """Surrogates and their originals: the reidentifier role only, audited."""
        mapping = call(
            clients.redaction.ReadReidentification,
            redaction_pb2.ReadReidentificationRequest(
                project_id=project_id, reason=body.reason
            ),
            meta(caller),
        )
        return schemas.ReidentificationMapping.from_proto(mapping)

    app.include_router(export_router(clients, principal, meta, download))

    # --- tasks, review, figures and the audit trail ---------------------------

    app.include_router(
        labeling_router(
            clients,
            principal,
            meta,
            lambda username: find_user(username).subject,
            lambda: {user.subject: user.username for user in issuer.list_users()},
        )
    )

    app.include_router(models_router(clients, principal, meta))

    app.include_router(
        audit_router(
            clients,
            principal,
            meta,
            lambda username: find_user(username).subject,
        )
    )

    return app
