"""The surface the platform offers: every REST route and every gRPC method.

Tests that must cover all of it (the access-event check, the permission
matrix) enumerate it from here, so a new route or method reaches each of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor

from strongroom.gateway.app import create_app
from strongroom.services.common.config import Settings
from strongroom.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    common_pb2,
    export_pb2,
    export_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
    labeling_pb2,
    labeling_pb2_grpc,
    redaction_pb2,
    redaction_pb2_grpc,
    tasks_pb2,
    tasks_pb2_grpc,
)

Ctx = dict[str, Any]


def route_table(scratch: Path) -> set[tuple[str, str]]:
    """Every (method, path template) the gateway serves; mounts as MOUNT."""
    app = create_app(Settings(data_dir=scratch / "routes"))
    found: set[tuple[str, str]] = set()

    def walk(routes: Any) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:
                walk(included.routes)
            elif not hasattr(route, "methods") or route.methods is None:
                found.add(("MOUNT", route.path))
            else:
                found.update((m, route.path) for m in route.methods - {"HEAD"})

    walk(app.routes)
    return found


STUBS = {
    "IngestionService": ("ingestion", ingestion_pb2_grpc.IngestionServiceStub),
    "RedactionService": ("redaction", redaction_pb2_grpc.RedactionServiceStub),
    "TaskService": ("tasks", tasks_pb2_grpc.TaskServiceStub),
    "LabelingService": ("labeling", labeling_pb2_grpc.LabelingServiceStub),
    "ExportService": ("export", export_pb2_grpc.ExportServiceStub),
    "AuditService": ("audit", audit_pb2_grpc.AuditServiceStub),
}


def all_methods() -> set[str]:
    """Every gRPC method of every Strongroom service, as Service/Method."""
    modules = (ingestion_pb2, redaction_pb2, tasks_pb2, labeling_pb2, export_pb2)
    services: list[ServiceDescriptor] = [
        service
        for module in (*modules, audit_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
    ]
    return {f"{s.name}/{m.name}" for s in services for m in s.methods}


def grpc_requests(c: Ctx) -> dict[str, Callable[[], Any]]:
    """A request for every gRPC method, built from the ids in ``c``: project,
    document, task, export and import."""
    page = common_pb2.PageRequest(limit=5)

    def ingest() -> Iterator[ingestion_pb2.IngestDocumentRequest]:
        yield ingestion_pb2.IngestDocumentRequest(
            header=ingestion_pb2.IngestHeader(
                project_id=c["project"], source_name="grpc.txt"
            )
        )
        yield ingestion_pb2.IngestDocumentRequest(data=b"Filed over gRPC.\n")

    return {
        "IngestionService/IngestDocument": ingest,
        "IngestionService/GetDocument": lambda: ingestion_pb2.GetDocumentRequest(
            document_id=c["document"]
        ),
        "IngestionService/ListDocuments": lambda: ingestion_pb2.ListDocumentsRequest(
            project_id=c["project"], page=page
        ),
        "IngestionService/ReadOriginal": lambda: ingestion_pb2.ReadOriginalRequest(
            document_id=c["document"], reason="route table review"
        ),
        "IngestionService/ReadStructure": lambda: ingestion_pb2.ReadStructureRequest(
            document_id=c["document"]
        ),
        "IngestionService/ListQuarantined": (
            lambda: ingestion_pb2.ListQuarantinedRequest(project_id=c["project"])
        ),
        "RedactionService/GetRedactionReport": (
            lambda: redaction_pb2.GetRedactionReportRequest(document_id=c["document"])
        ),
        "RedactionService/GetProjectRedactionReport": (
            lambda: redaction_pb2.GetProjectRedactionReportRequest(
                project_id=c["project"]
            )
        ),
        "RedactionService/GetRedactionPolicy": (
            lambda: redaction_pb2.GetRedactionPolicyRequest(project_id=c["project"])
        ),
        "RedactionService/SetRedactionPolicy": (
            lambda: redaction_pb2.SetRedactionPolicyRequest(
                policy=redaction_pb2.RedactionPolicy(
                    project_id=c["project"], default_action="mask"
                )
            )
        ),
        "RedactionService/CorrectRedaction": (
            lambda: redaction_pb2.CorrectRedactionRequest(
                document_id=c["document"],
                corrections=[
                    redaction_pb2.Correction(
                        action="add",
                        span=common_pb2.Span(start=0, end=3),
                        type="ID_NUMBER",
                    )
                ],
            )
        ),
        "RedactionService/ReadReidentification": (
            lambda: redaction_pb2.ReadReidentificationRequest(
                project_id=c["project"], reason="route table review"
            )
        ),
        "TaskService/CreateProject": lambda: tasks_pb2.CreateProjectRequest(
            name="Over gRPC", labels=[common_pb2.Label(name="PERSON")]
        ),
        "TaskService/GetProject": lambda: tasks_pb2.GetProjectRequest(
            project_id=c["project"]
        ),
        "TaskService/ListProjects": lambda: tasks_pb2.ListProjectsRequest(page=page),
        "TaskService/AddMember": lambda: tasks_pb2.AddMemberRequest(
            project_id=c["project"],
            member=tasks_pb2.Member(subject="someone", role="reviewer"),
        ),
        "TaskService/LeaseNextTask": lambda: tasks_pb2.LeaseNextTaskRequest(
            project_id=c["project"]
        ),
        "TaskService/GetTask": lambda: tasks_pb2.GetTaskRequest(
            task_id=c["task"], include_text=True
        ),
        "TaskService/CompleteTask": lambda: tasks_pb2.CompleteTaskRequest(
            task_id=c["task"], annotation_id="none"
        ),
        "TaskService/ListTasks": lambda: tasks_pb2.ListTasksRequest(
            project_id=c["project"], page=page
        ),
        "TaskService/SkipTask": lambda: tasks_pb2.SkipTaskRequest(
            task_id=c["task"], reason="route table review"
        ),
        "TaskService/ReopenTask": lambda: tasks_pb2.ReopenTaskRequest(
            task_id=c["task"]
        ),
        "TaskService/UpdateTask": lambda: tasks_pb2.UpdateTaskRequest(
            task_id=c["task"], priority=1
        ),
        "TaskService/AssignTasks": lambda: tasks_pb2.AssignTasksRequest(
            project_id=c["project"], annotator="someone", count=1
        ),
        "TaskService/GetTaskPage": lambda: tasks_pb2.GetTaskPageRequest(
            task_id=c["task"], page=1
        ),
        "TaskService/LeaseNextReview": lambda: tasks_pb2.LeaseNextReviewRequest(
            project_id=c["project"]
        ),
        "TaskService/ResolveReview": lambda: tasks_pb2.ResolveReviewRequest(
            task_id=c["task"], decision="accept"
        ),
        "TaskService/GetQueueStats": lambda: tasks_pb2.GetQueueStatsRequest(
            project_id=c["project"]
        ),
        "LabelingService/ListTaskAnnotations": lambda: (
            labeling_pb2.ListTaskAnnotationsRequest(task_id=c["task"])
        ),
        "LabelingService/ReviewTask": lambda: labeling_pb2.ReviewTaskRequest(
            task_id=c["task"], decision="accept"
        ),
        "LabelingService/GetProjectStats": lambda: labeling_pb2.GetProjectStatsRequest(
            project_id=c["project"]
        ),
        "LabelingService/SubmitAnnotation": lambda: (
            labeling_pb2.SubmitAnnotationRequest(task_id=c["task"])
        ),
        "LabelingService/ListAnnotations": lambda: labeling_pb2.ListAnnotationsRequest(
            project_id=c["project"], page=page
        ),
        "ExportService/CreateExport": lambda: export_pb2.CreateExportRequest(
            project_id=c["project"], format="jsonl"
        ),
        "ExportService/GetExport": lambda: export_pb2.GetExportRequest(
            export_id=c["export"]
        ),
        "ExportService/ListExports": lambda: export_pb2.ListExportsRequest(
            project_id=c["project"], page=page
        ),
        "ExportService/ReadExportFile": lambda: export_pb2.ReadExportFileRequest(
            export_id=c["export"], name="manifest.json"
        ),
        "ExportService/GetSigningKey": lambda: export_pb2.GetSigningKeyRequest(),
        "ExportService/StartImport": lambda: iter(
            [
                export_pb2.ImportChunk(
                    header=export_pb2.ImportHeader(
                        project_id=c["project"], format="doccano"
                    )
                ),
                export_pb2.ImportChunk(data=b'{"text": "Over gRPC.", "label": []}\n'),
            ]
        ),
        "ExportService/GetImport": lambda: export_pb2.GetImportRequest(
            import_id=c["import"]
        ),
        "RedactionService/MapSpans": lambda: redaction_pb2.MapSpansRequest(
            document_id=c["document"], spans=[common_pb2.Span(start=0, end=4)]
        ),
        "TaskService/SetSuggestions": lambda: tasks_pb2.SetSuggestionsRequest(
            task_id=c["task"], source="import route-table"
        ),
        "LabelingService/ImportAnnotation": lambda: (
            labeling_pb2.ImportAnnotationRequest(
                task_id=c["task"], annotator="imported-route-table"
            )
        ),
        "LabelingService/Synthesize": lambda: labeling_pb2.SynthesizeRequest(
            project_id=c["project"], method="template", count=1
        ),
        "LabelingService/SetAssistance": lambda: labeling_pb2.SetAssistanceRequest(
            project_id=c["project"], ordering="arrival"
        ),
        "LabelingService/TrainModel": lambda: labeling_pb2.TrainModelRequest(
            project_id=c["project"]
        ),
        "LabelingService/ListModels": lambda: labeling_pb2.ListModelsRequest(
            project_id=c["project"]
        ),
        "LabelingService/GetTaskAssistance": lambda: (
            labeling_pb2.GetTaskAssistanceRequest(task_id=c["task"])
        ),
        "TaskService/AddSyntheticTask": lambda: tasks_pb2.AddSyntheticTaskRequest(
            project_id=c["project"],
            text="A synthetic line.",
            method="template",
            source_task_id=c["task"],
        ),
        "AuditService/SearchEvents": lambda: audit_pb2.SearchEventsRequest(page=page),
        "AuditService/VerifyChain": lambda: audit_pb2.VerifyChainRequest(),
        "AuditService/GetDocumentLineage": lambda: audit_pb2.GetDocumentLineageRequest(
            document_id=c["document"]
        ),
        "AuditService/GetActorActivity": lambda: audit_pb2.GetActorActivityRequest(
            actor_subject="system"
        ),
        "AuditService/ListCheckpoints": lambda: audit_pb2.ListCheckpointsRequest(),
        "AuditService/ProveInclusion": lambda: audit_pb2.ProveInclusionRequest(
            event_id=str(uuid.uuid4())
        ),
        "AuditService/ProveConsistency": lambda: audit_pb2.ProveConsistencyRequest(
            first_checkpoint=1, second_checkpoint=1
        ),
    }
