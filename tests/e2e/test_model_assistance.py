"""A manager switches model assistance on; an annotator's answers train a
model that beats the baseline, suggests spans on the remaining tasks, orders
the queue by uncertainty, and shows on the learning curve; all audited. A
class model suggests classes, and a project in binary review tells its
annotators so; answers keep the suggestions accepted and rejected."""

from __future__ import annotations

import random
from typing import Any

import httpx

from tests.e2e.harness import Strongroom, signed_in_user, upload_file, wait_for

DRUGS = ["aspirin", "metformin", "warfarin", "ibuprofen", "lisinopril", "insulin"]
SENTENCES = [
    "The patient was started on {} this morning.",
    "Please stop {} before the operation.",
    "She reports nausea since taking {} daily.",
    "Continue {} at the same dose.",
    "No allergy to {} was recorded.",
    "The dose of {} was raised last week.",
]
ANSWERED = 24
FINDINGS = {
    "CARDIO": ["chest pain on exertion", "palpitations at night", "an irregular pulse"],
    "SKIN": ["a rash on both arms", "itching of the scalp", "a dry patch on the hand"],
}
CLASS_ANSWERED = 16


def _note(count: int) -> str:
    chooser = random.Random(7)
    return "\n\n".join(
        chooser.choice(SENTENCES).format(chooser.choice(DRUGS)) for _ in range(count)
    )


def _answer(client: httpx.Client, task: dict[str, Any]) -> None:
    text = task["text"]
    spans = [
        {
            "start": task["window_start"] + text.index(drug),
            "end": task["window_start"] + text.index(drug) + len(drug),
            "label": "DRUG",
        }
        for drug in DRUGS
        if drug in text
    ]
    accepted = sum(1 for s in task["suggestions"] if s["source"] == "model")
    response = client.post(
        f"/api/v1/tasks/{task['id']}/annotations",
        json={"spans": spans, "seconds": 2, "suggestions_accepted": accepted},
    )
    assert response.status_code == 201, response.text


def _models(admin: httpx.Client, project_id: str) -> dict[str, Any]:
    found = admin.get(f"/api/v1/projects/{project_id}/models")
    assert found.status_code == 200, found.text
    result: dict[str, Any] = found.json()
    return result


def test_a_model_learns_suggests_and_orders_the_queue(
    strongroom: Strongroom, admin: httpx.Client
) -> None:
    mia = signed_in_user(strongroom, admin, "mia", ["annotator"])
    project = admin.post(
        "/api/v1/projects",
        json={"name": "Drugs", "labels": ["DRUG"], "window": {"kind": "paragraph"}},
    )
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    admin.post(
        f"/api/v1/projects/{project_id}/members",
        json={"username": "mia", "role": "annotator"},
    ).raise_for_status()
    assert upload_file(admin, project_id, "drugs.txt", _note(40).encode()).is_success
    wait_for(
        lambda: admin.get(f"/api/v1/projects/{project_id}/tasks").json()["total"] == 40,
        timeout=60,
    )

    assert (
        mia.patch(
            f"/api/v1/projects/{project_id}/assistance", json={"enabled": True}
        ).status_code
        == 403
    )
    assert _models(admin, project_id)["assistance"]["enabled"] is False
    switched = admin.patch(
        f"/api/v1/projects/{project_id}/assistance",
        json={
            "enabled": True,
            "ordering": "uncertainty",
            "min_answers": ANSWERED,
            "retrain_every": 1000,
        },
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["ordering"] == "uncertainty"

    for _ in range(ANSWERED):
        task = mia.post(f"/api/v1/projects/{project_id}/tasks/next").json()
        _answer(mia, task)

    def predicted() -> dict[str, Any] | None:
        models = _models(admin, project_id)["models"]
        return models[0] if models and models[0]["predicted_tasks"] else None

    first = wait_for(predicted, timeout=240, interval=1)
    assert first["version"] == 1 and first["state"] == "ready"
    assert first["trigger"] == "answers"
    assert first["kind"] == "spans"
    assert first["train_answers"] + first["held_out"] == ANSWERED
    assert first["score"] > first["baseline_score"], first
    assert first["predicted_tasks"] == 40 - ANSWERED
    assert len(first["model_sha256"]) == 64 and first["settings"]["answers"] == ANSWERED

    listed = admin.get(f"/api/v1/projects/{project_id}/tasks?limit=100").json()
    open_tasks = [t for t in listed["tasks"] if t["state"] == "queued"]
    priorities = {t["id"]: t["priority"] for t in open_tasks}
    assert len(set(priorities.values())) > 1, priorities
    assert all(
        any(s["source"] == "model" for s in t["suggestions"]) for t in open_tasks
    )

    leased = []
    for _ in range(3):
        task = mia.post(f"/api/v1/projects/{project_id}/tasks/next").json()
        assert any(s["source"] == "model" for s in task["suggestions"]), task
        suggestion = next(s for s in task["suggestions"] if s["source"] == "model")
        word = task["text"][
            suggestion["start"] - task["window_start"] : suggestion["end"]
            - task["window_start"]
        ]
        assert word in DRUGS and suggestion["label"] == "DRUG"
        assert 0 < suggestion["score"] <= 1
        leased.append(priorities[task["id"]])
        _answer(mia, task)
    assert leased == sorted(priorities.values(), reverse=True)[:3]

    asked = admin.post(f"/api/v1/projects/{project_id}/models")
    assert asked.status_code == 202, asked.text
    assert asked.json()["version"] == 2 and asked.json()["trigger"] == "request"
    second = wait_for(
        lambda: next(
            (
                m
                for m in _models(admin, project_id)["models"]
                if m["state"] == "ready" and m["version"] == 2
            ),
            None,
        ),
        timeout=240,
        interval=1,
    )
    assert second["train_answers"] + second["held_out"] == ANSWERED + 3
    curve = _models(admin, project_id)["models"]
    assert [m["version"] for m in curve] == [2, 1]
    assert all(m["seconds"] > 0 and m["trained_at"] for m in curve)

    def actions() -> set[str] | None:
        events = admin.get(
            "/api/v1/audit/events", params={"project_id": project_id, "limit": 500}
        ).json()["events"]
        found = {e["action"] for e in events}
        wanted = {"model.settings", "model.train", "model.predict", "model.list"}
        return found if wanted <= found else None

    found = wait_for(actions, timeout=30)
    assert "model.train.request" in found
    trained = admin.get(
        "/api/v1/audit/events", params={"action": "model.train", "limit": 10}
    ).json()["events"]
    assert {str(e["details"]["version"]) for e in trained} >= {"1", "2"}
    submitted = admin.get(
        "/api/v1/audit/events",
        params={"action": "annotation.submit", "project_id": project_id, "limit": 500},
    ).json()["events"]
    assert any(int(e["details"]["suggestions_accepted"]) > 0 for e in submitted)


def _findings(count: int) -> str:
    chooser = random.Random(11)
    return "\n\n".join(
        f"Seen today with {chooser.choice(FINDINGS[label])}."
        for label in (["CARDIO", "SKIN"] * count)[:count]
    )


def _class_of(text: str) -> str:
    return next(c for c, found in FINDINGS.items() if any(f in text for f in found))


def test_a_class_model_suggests_classes_reviewed_one_by_one(
    strongroom: Strongroom, admin: httpx.Client
) -> None:
    cal = signed_in_user(strongroom, admin, "cal", ["annotator"])
    project = admin.post(
        "/api/v1/projects",
        json={
            "name": "Findings",
            "schema": {"classes": ["CARDIO", "SKIN"]},
            "window": {"kind": "paragraph"},
        },
    )
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    admin.post(
        f"/api/v1/projects/{project_id}/members",
        json={"username": "cal", "role": "annotator"},
    ).raise_for_status()
    assert upload_file(
        admin, project_id, "findings.txt", _findings(24).encode()
    ).is_success
    wait_for(
        lambda: admin.get(f"/api/v1/projects/{project_id}/tasks").json()["total"] == 24,
        timeout=60,
    )
    switched = admin.patch(
        f"/api/v1/projects/{project_id}/assistance",
        json={"enabled": True, "min_answers": CLASS_ANSWERED, "retrain_every": 1000},
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["review_mode"] == "edit"

    for _ in range(CLASS_ANSWERED):
        task = cal.post(f"/api/v1/projects/{project_id}/tasks/next").json()
        assert task["review_mode"] is None, "no suggestions yet, so no review mode"
        cal.post(
            f"/api/v1/tasks/{task['id']}/annotations",
            json={"classes": [_class_of(task["text"])], "seconds": 1},
        ).raise_for_status()
    model = wait_for(
        lambda: next(
            (m for m in _models(admin, project_id)["models"] if m["predicted_tasks"]),
            None,
        ),
        timeout=240,
        interval=1,
    )
    assert model["kind"] == "classes" and model["state"] == "ready"

    listed = admin.get(f"/api/v1/projects/{project_id}/tasks?limit=100").json()
    open_tasks = [t for t in listed["tasks"] if t["state"] == "queued"]
    assert len(open_tasks) == 24 - CLASS_ANSWERED
    for task in open_tasks:
        (suggestion,) = task["suggestions"]
        assert suggestion["kind"] == "class" and suggestion["source"] == "model"
        assert suggestion["start"] is None and suggestion["end"] is None
        assert suggestion["label"] in FINDINGS and 0.5 <= suggestion["score"] <= 1

    refused = admin.patch(
        f"/api/v1/projects/{project_id}/assistance", json={"review_mode": "swipe"}
    )
    assert refused.status_code == 422, refused.text
    binary = admin.patch(
        f"/api/v1/projects/{project_id}/assistance", json={"review_mode": "binary"}
    )
    assert binary.status_code == 200, binary.text
    settings = _models(admin, project_id)["assistance"]
    assert settings["review_mode"] == "binary" and settings["enabled"] is True
    assert cal.get(f"/api/v1/projects/{project_id}/models").status_code == 403

    task = cal.post(f"/api/v1/projects/{project_id}/tasks/next").json()
    assert task["review_mode"] == "binary"
    (suggestion,) = task["suggestions"]
    assert suggestion["kind"] == "class"
    # The annotator rejects the suggestion and chooses the other class.
    other = next(c for c in FINDINGS if c != suggestion["label"])
    answered = cal.post(
        f"/api/v1/tasks/{task['id']}/annotations",
        json={"classes": [other], "suggestions_rejected": 1, "seconds": 1},
    )
    assert answered.status_code == 201, answered.text
    assert answered.json()["suggestions_rejected"] == 1
    stored = admin.get(f"/api/v1/projects/{project_id}/annotations?limit=100").json()
    mine = next(a for a in stored["annotations"] if a["task_id"] == task["id"])
    assert (mine["classes"], mine["suggestions_accepted"]) == ([other], 0)
    assert mine["suggestions_rejected"] == 1

    def events(action: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = admin.get(
            "/api/v1/audit/events",
            params={"action": action, "project_id": project_id, "limit": 100},
        ).json()["events"]
        return found

    submitted = wait_for(
        lambda: [
            e
            for e in events("annotation.submit")
            if e["details"]["task_id"] == task["id"]
        ],
        timeout=30,
    )
    assert str(submitted[0]["details"]["suggestions_rejected"]) == "1"
    changed = wait_for(lambda: events("model.settings"), timeout=30)
    assert {str(e["details"]["review_mode"]) for e in changed} == {"edit", "binary"}
