"""Tasks, answers, review and project figures over REST.

No `from __future__ import annotations`: FastAPI reads these signatures at
run time. Every rule is enforced by the tasks and labeling services from the
caller's own token; the gateway only composes their answers.
"""

import json
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from strongroom.gateway import schemas
from strongroom.gateway.clients import ServiceClients
from strongroom.services.common.auth import Principal
from strongroom.services.common.grpc_clients import Metadata, call
from strongroom.v1 import common_pb2, labeling_pb2, tasks_pb2

# The main gold measure for a project's dashboard, in order of preference.
_GOLD_MEASURES = ("span_f1_exact", "class_accuracy", "box_f1")


def labeling_router(
    clients: ServiceClients,
    authenticate: Callable[[Request], Principal],
    meta: Callable[[Principal], Metadata],
    subject_of: Callable[[str], str],
    usernames: Callable[[], dict[str, str]],
) -> APIRouter:
    """Build the task, review and figures routes around the gateway's clients.

    ``subject_of`` turns a username into a subject; ``usernames`` maps the
    subjects the gateway knows to their usernames.
    """
    router = APIRouter(prefix="/api/v1")
    Caller = Annotated[Principal, Depends(authenticate)]

    def own_answer(
        task: tasks_pb2.Task, caller: Principal
    ) -> common_pb2.Annotation | None:
        """The caller's current answer to a task that came back to them."""
        response = call(
            clients.labeling.ListTaskAnnotations,
            labeling_pb2.ListTaskAnnotationsRequest(task_id=task.id),
            meta(caller),
        )
        mine = [
            a
            for a in response.annotations
            if a.kind == "answer" and a.annotator == caller.subject
        ]
        return mine[0] if mine else None

    def review_mode(task: tasks_pb2.Task, caller: Principal) -> str:
        """How the caller reviews the task's suggestions: the project's
        review mode, which the labeling service tells whoever may read the
        task."""
        assistance = call(
            clients.labeling.GetTaskAssistance,
            labeling_pb2.GetTaskAssistanceRequest(task_id=task.id),
            meta(caller),
        )
        mode: str = assistance.review_mode
        return mode

    # --- the annotator's queue ----------------------------------------------

    @router.get(
        "/projects/{project_id}/tasks", tags=["tasks"], response_model=schemas.TaskList
    )
    def list_tasks(
        project_id: str,
        caller: Caller,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=schemas.MAX_INDEX)] = 0,
    ) -> schemas.TaskList:
        response = call(
            clients.tasks.ListTasks,
            tasks_pb2.ListTasksRequest(
                project_id=project_id,
                page=common_pb2.PageRequest(limit=limit, offset=offset),
            ),
            meta(caller),
        )
        return schemas.TaskList(
            tasks=[schemas.Task.from_proto(t, with_text=False) for t in response.tasks],
            total=response.page.total,
        )

    @router.post(
        "/projects/{project_id}/tasks/next", tags=["tasks"], response_model=schemas.Task
    )
    def next_task(project_id: str, caller: Caller) -> schemas.Task:
        """Lease the caller's next task. A task a reviewer returned comes first,
        with the comment and the caller's earlier answer."""
        task = call(
            clients.tasks.LeaseNextTask,
            tasks_pb2.LeaseNextTaskRequest(project_id=project_id),
            meta(caller),
        )
        answer = own_answer(task, caller) if task.review_comment else None
        return schemas.Task.from_proto(
            task,
            with_text=True,
            annotation=answer,
            review_mode=review_mode(task, caller) if task.suggestions else None,
        )

    @router.get("/tasks/{task_id}", tags=["tasks"], response_model=schemas.Task)
    def get_task(
        task_id: str, caller: Caller, include_text: bool = False
    ) -> schemas.Task:
        task = call(
            clients.tasks.GetTask,
            tasks_pb2.GetTaskRequest(task_id=task_id, include_text=include_text),
            meta(caller),
        )
        return schemas.Task.from_proto(task, with_text=include_text and bool(task.text))

    @router.patch("/tasks/{task_id}", tags=["tasks"], response_model=schemas.Task)
    def update_task(
        task_id: str, body: schemas.TaskPatch, caller: Caller
    ) -> schemas.Task:
        task = call(
            clients.tasks.UpdateTask,
            tasks_pb2.UpdateTaskRequest(task_id=task_id, priority=body.priority),
            meta(caller),
        )
        return schemas.Task.from_proto(task, with_text=False)

    @router.post("/tasks/{task_id}/skip", tags=["tasks"], status_code=204)
    def skip_task(task_id: str, body: schemas.SkipIn, caller: Caller) -> Response:
        call(
            clients.tasks.SkipTask,
            tasks_pb2.SkipTaskRequest(task_id=task_id, reason=body.reason),
            meta(caller),
        )
        return Response(status_code=204)

    @router.post("/tasks/{task_id}/reopen", tags=["tasks"], response_model=schemas.Task)
    def reopen_task(task_id: str, caller: Caller) -> schemas.Task:
        """Take back the caller's answer to change it, while it is not reviewed."""
        task = call(
            clients.tasks.ReopenTask,
            tasks_pb2.ReopenTaskRequest(task_id=task_id),
            meta(caller),
        )
        return schemas.Task.from_proto(
            task, with_text=True, annotation=own_answer(task, caller)
        )

    @router.get(
        "/tasks/{task_id}/pages/{page}",
        tags=["tasks"],
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    def task_page(
        task_id: str,
        page: Annotated[int, Path(ge=1, le=schemas.MAX_INDEX)],
        caller: Caller,
    ) -> Response:
        """The redacted image of one page of the task's document."""
        chunk = call(
            clients.tasks.GetTaskPage,
            tasks_pb2.GetTaskPageRequest(task_id=task_id, page=page),
            meta(caller),
        )
        return Response(
            chunk.data,
            media_type="image/png",
            headers={"cache-control": "private, no-store"},
        )

    @router.post(
        "/tasks/{task_id}/annotations",
        tags=["tasks"],
        status_code=201,
        response_model=schemas.Annotation,
    )
    def submit_annotation(
        task_id: str, body: schemas.AnnotationIn, caller: Caller
    ) -> schemas.Annotation:
        annotation = call(
            clients.labeling.SubmitAnnotation,
            labeling_pb2.SubmitAnnotationRequest(
                task_id=task_id, content=body.to_proto()
            ),
            meta(caller),
        )
        return schemas.Annotation.from_proto(annotation)

    @router.get(
        "/projects/{project_id}/annotations",
        tags=["tasks"],
        response_model=schemas.AnnotationList,
    )
    def list_annotations(
        project_id: str,
        caller: Caller,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        offset: Annotated[int, Query(ge=0, le=schemas.MAX_INDEX)] = 0,
        kind: Annotated[str, Query(pattern="^(answer|gold)$")] = "answer",
    ) -> schemas.AnnotationList:
        response = call(
            clients.labeling.ListAnnotations,
            labeling_pb2.ListAnnotationsRequest(
                project_id=project_id,
                page=common_pb2.PageRequest(limit=limit, offset=offset),
                kind=kind,
            ),
            meta(caller),
        )
        return schemas.AnnotationList(
            annotations=[
                schemas.Annotation.from_proto(a) for a in response.annotations
            ],
            total=response.page.total,
        )

    # --- managers -----------------------------------------------------------

    @router.post(
        "/projects/{project_id}/assignments",
        tags=["tasks"],
        response_model=schemas.Assigned,
    )
    def assign_tasks(
        project_id: str, body: schemas.AssignIn, caller: Caller
    ) -> schemas.Assigned:
        annotator = body.annotator or subject_of(body.username)
        response = call(
            clients.tasks.AssignTasks,
            tasks_pb2.AssignTasksRequest(
                project_id=project_id, annotator=annotator, count=body.count
            ),
            meta(caller),
        )
        return schemas.Assigned(assigned=response.assigned)

    @router.get(
        "/projects/{project_id}/stats",
        tags=["projects"],
        response_model=schemas.ProjectStats,
    )
    def project_stats(project_id: str, caller: Caller) -> schemas.ProjectStats:
        """Progress, throughput, agreement and review figures; no text."""
        queue = call(
            clients.tasks.GetQueueStats,
            tasks_pb2.GetQueueStatsRequest(project_id=project_id),
            meta(caller),
        )
        labels = call(
            clients.labeling.GetProjectStats,
            labeling_pb2.GetProjectStatsRequest(project_id=project_id),
            meta(caller),
        )
        names = usernames()
        gold = {a.subject: a for a in labels.annotators}
        figures = []
        for entry in queue.annotators:
            measures = dict(gold[entry.subject].gold) if entry.subject in gold else {}
            main = next((measures[m] for m in _GOLD_MEASURES if m in measures), None)
            figures.append(
                schemas.AnnotatorFigures(
                    subject=entry.subject,
                    username=names.get(entry.subject, ""),
                    submitted=entry.submitted,
                    skipped=entry.skipped,
                    leased=entry.leased,
                    seconds_per_task=entry.seconds_per_task,
                    per_hour=entry.per_hour,
                    gold=measures,
                    gold_tasks=gold[entry.subject].gold_tasks
                    if entry.subject in gold
                    else 0,
                    gold_agreement=main,
                )
            )
        return schemas.ProjectStats(
            tasks=schemas.TaskCounts(
                total=queue.total,
                open=queue.open,
                in_progress=queue.in_progress,
                in_review=queue.in_review,
                completed=queue.completed,
            ),
            queue_depth=queue.queue_depth,
            annotators=figures,
            agreement=json.loads(labels.agreement_json or "{}"),
            reviews=schemas.ReviewCounts(
                accepted=labels.accepted,
                rejected=labels.rejected,
                corrected=labels.corrected,
                gold_tasks=labels.gold_tasks,
            ),
        )

    # --- review -------------------------------------------------------------

    @router.post(
        "/projects/{project_id}/reviews/next",
        tags=["review"],
        response_model=schemas.ReviewTask,
    )
    def next_review(project_id: str, caller: Caller) -> schemas.ReviewTask:
        """Lease the next fully answered task with all its answers."""
        task = call(
            clients.tasks.LeaseNextReview,
            tasks_pb2.LeaseNextReviewRequest(project_id=project_id),
            meta(caller),
        )
        answers = call(
            clients.labeling.ListTaskAnnotations,
            labeling_pb2.ListTaskAnnotationsRequest(task_id=task.id),
            meta(caller),
        )
        names = usernames()
        return schemas.ReviewTask(
            task=schemas.Task.from_proto(task, with_text=True),
            annotations=[
                schemas.Annotation.from_proto(a, names.get(a.annotator, ""))
                for a in answers.annotations
                if a.kind == "answer"
            ],
        )

    @router.post(
        "/tasks/{task_id}/review", tags=["review"], response_model=schemas.Review
    )
    def review_task(
        task_id: str, body: schemas.ReviewIn, caller: Caller
    ) -> schemas.Review:
        """Accept an answer as gold, correct it, or return one with a comment."""
        request = labeling_pb2.ReviewTaskRequest(
            task_id=task_id,
            decision=body.decision,
            annotation_id=body.annotation_id,
            comment=body.comment,
        )
        if body.annotation is not None:
            request.content.CopyFrom(body.annotation.to_proto())
        review = call(clients.labeling.ReviewTask, request, meta(caller))
        return schemas.Review.from_proto(review)

    @router.post(
        "/projects/{project_id}/synthetic",
        status_code=201,
        tags=["synthetic"],
        response_model=schemas.Synthesized,
    )
    def synthesize(
        project_id: str, body: schemas.SynthesizeIn, caller: Caller
    ) -> schemas.Synthesized:
        """Make synthetic examples from the project's reviewed examples; each
        is a task marked synthetic, never queued, and only ever in train."""
        made = call(
            clients.labeling.Synthesize,
            labeling_pb2.SynthesizeRequest(
                project_id=project_id,
                method=body.method,
                count=body.count,
                seed=body.seed,
            ),
            meta(caller),
            timeout=600.0,
        )
        return schemas.Synthesized(task_ids=list(made.task_ids), sources=made.sources)

    return router
