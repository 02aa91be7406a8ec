"""Model assistance over REST: a project's settings, training on demand and
the learning curve.

No `from __future__ import annotations`: FastAPI reads these signatures at
run time. The labeling service checks that the caller manages the project.
"""

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, Field

from strongroom.gateway.clients import ServiceClients
from strongroom.services.common.auth import Principal
from strongroom.services.common.grpc_clients import Metadata, call
from strongroom.v1 import labeling_pb2


def _time(stamp: Timestamp) -> str | None:
    if stamp.seconds == 0 and stamp.nanos == 0:
        return None
    return stamp.ToJsonString()


class AssistancePatch(BaseModel):
    """Fields left out keep their value."""

    enabled: bool | None = None
    ordering: Literal["arrival", "uncertainty"] | None = None
    min_answers: int | None = Field(default=None, ge=2, le=100_000)
    retrain_every: int | None = Field(default=None, ge=1, le=100_000)
    diversity: float | None = Field(default=None, ge=0.0, le=1.0)
    review_mode: Literal["edit", "binary"] | None = None


class Assistance(BaseModel):
    enabled: bool
    ordering: str
    min_answers: int
    retrain_every: int
    diversity: float
    review_mode: str
    updated_by: str
    updated_at: str | None

    @classmethod
    def from_proto(cls, s: labeling_pb2.AssistanceSettings) -> "Assistance":
        return cls(
            enabled=s.enabled,
            ordering=s.ordering,
            min_answers=s.min_answers,
            retrain_every=s.retrain_every,
            diversity=round(s.diversity, 4),
            review_mode=s.review_mode,
            updated_by=s.updated_by,
            updated_at=_time(s.updated_at),
        )


class ModelVersion(BaseModel):
    version: int
    state: str
    kind: str
    trigger: str
    train_answers: int
    held_out: int
    scores: dict[str, float]
    baseline: dict[str, float]
    score: float
    baseline_score: float
    seconds: float
    created_at: str | None
    trained_at: str | None
    model_sha256: str
    snapshot_sha256: str
    predicted_tasks: int
    error: str
    settings: dict[str, Any]

    @classmethod
    def from_proto(cls, m: labeling_pb2.ModelVersion) -> "ModelVersion":
        return cls(
            version=m.version,
            state=m.state,
            kind=m.kind,
            trigger=m.trigger,
            train_answers=m.train_answers,
            held_out=m.held_out,
            scores=dict(m.scores),
            baseline=dict(m.baseline),
            score=m.score,
            baseline_score=m.baseline_score,
            seconds=m.seconds,
            created_at=_time(m.created_at),
            trained_at=_time(m.trained_at),
            model_sha256=m.model_sha256,
            snapshot_sha256=m.snapshot_sha256,
            predicted_tasks=m.predicted_tasks,
            error=m.error,
            settings=json.loads(m.settings_json or "{}"),
        )


class ModelList(BaseModel):
    assistance: Assistance
    # Newest first: the learning curve read from the right.
    models: list[ModelVersion]


def models_router(
    clients: ServiceClients,
    authenticate: Callable[[Request], Principal],
    meta: Callable[[Principal], Metadata],
) -> APIRouter:
    """Build the model assistance routes around the gateway's clients."""
    router = APIRouter(prefix="/api/v1", tags=["models"])
    Caller = Annotated[Principal, Depends(authenticate)]

    @router.patch("/projects/{project_id}/assistance", response_model=Assistance)
    def set_assistance(
        project_id: str, body: AssistancePatch, caller: Caller
    ) -> Assistance:
        """Switch model assistance on or off, choose the queue's order and how
        annotators review suggestions."""
        settings = call(
            clients.labeling.SetAssistance,
            labeling_pb2.SetAssistanceRequest(
                project_id=project_id, **body.model_dump(exclude_none=True)
            ),
            meta(caller),
        )
        return Assistance.from_proto(settings)

    @router.post(
        "/projects/{project_id}/models", status_code=202, response_model=ModelVersion
    )
    def train_model(project_id: str, caller: Caller) -> ModelVersion:
        """Queue a training run now; it happens in the background."""
        version = call(
            clients.labeling.TrainModel,
            labeling_pb2.TrainModelRequest(project_id=project_id),
            meta(caller),
        )
        return ModelVersion.from_proto(version)

    @router.get("/projects/{project_id}/models", response_model=ModelList)
    def list_models(project_id: str, caller: Caller) -> ModelList:
        """The settings and every model version: the learning curve."""
        found = call(
            clients.labeling.ListModels,
            labeling_pb2.ListModelsRequest(project_id=project_id),
            meta(caller),
        )
        return ModelList(
            assistance=Assistance.from_proto(found.settings),
            models=[ModelVersion.from_proto(m) for m in found.models],
        )

    return router
