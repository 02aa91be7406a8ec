"""A team labels a project over REST: overlap, blind answers, skip, undo,
review with a returned answer, gold, agreement, windows and assignment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Strongroom, upload_file, wait_for

NOTES = [
    "The patient reported a persistent cough at the clinic.\n\nFollow-up booked "
    "for the headache.",
    "Referral about chest pain after exercise.\n\nNo change in medication.",
]
LABEL_STUDIO = """
<View>
  <Header value="Read the note"/>
  <Text name="text" value="$text"/>
  <Labels name="ner" toName="text">
    <Label value="PERSON" background="#ff0000" hotkey="p"/>
    <Label value="Hospital name"/>
  </Labels>
  <Choices name="urgency" toName="text" choice="single">
    <Choice value="Urgent"/>
    <Choice value="Routine"/>
  </Choices>
</View>
"""


def _user(admin: httpx.Client, name: str, role: str) -> dict[str, Any]:
    made = admin.post("/api/v1/users", json={"username": name, "roles": [role]})
    made.raise_for_status()
    user: dict[str, Any] = made.json()
    return user


@pytest.fixture(scope="module")
def team(strongroom: Strongroom, admin: httpx.Client) -> dict[str, Any]:
    people = {
        "ann": _user(admin, "ann", "annotator"),
        "ben": _user(admin, "ben", "annotator"),
        "cat": _user(admin, "cat", "annotator"),
        "rev": _user(admin, "rev", "reviewer"),
    }
    clients = {
        name: strongroom.client(strongroom.token(name, person["password"]))
        for name, person in people.items()
    }
    return {"people": people, "clients": clients}


def _project(admin: httpx.Client, team: dict[str, Any], **settings: Any) -> str:
    made = admin.post("/api/v1/projects", json={"name": "Notes", **settings})
    assert made.status_code == 201, made.text
    project_id: str = made.json()["id"]
    for name, role in (
        ("ann", "annotator"),
        ("ben", "annotator"),
        ("cat", "annotator"),
        ("rev", "reviewer"),
    ):
        admin.post(
            f"/api/v1/projects/{project_id}/members",
            json={"username": name, "role": role},
        ).raise_for_status()
    return project_id


def _queued(admin: httpx.Client, project_id: str, count: int) -> list[dict]:
    def listed() -> list[dict] | None:
        found = admin.get(f"/api/v1/projects/{project_id}/tasks").json()
        return found["tasks"] if found["total"] == count else None

    tasks: list[dict] = wait_for(listed)
    return tasks


def _upload(admin: httpx.Client, project_id: str, texts: list[str]) -> None:
    for number, text in enumerate(texts):
        upload_file(admin, project_id, f"note-{number}.txt", text.encode())


def _next(client: httpx.Client, project_id: str) -> httpx.Response:
    return client.post(f"/api/v1/projects/{project_id}/tasks/next")


def _answer(
    client: httpx.Client, task: dict, word: str, classes: list[str], seconds: float
) -> dict:
    start = task["text"].index(word) + task["window_start"]
    response = client.post(
        f"/api/v1/tasks/{task['id']}/annotations",
        json={
            "spans": [{"start": start, "end": start + len(word), "label": "SYMPTOM"}],
            "classes": classes,
            "seconds": seconds,
        },
    )
    assert response.status_code == 201, response.text
    answer: dict = response.json()
    return answer


def test_label_studio_config_becomes_the_schema(admin: httpx.Client) -> None:
    made = admin.post(
        "/api/v1/projects", json={"name": "Imported", "label_config": LABEL_STUDIO}
    )

    assert made.status_code == 201, made.text
    schema = made.json()["schema"]
    assert [label["name"] for label in schema["spans"]] == ["PERSON", "Hospital_name"]
    assert schema["spans"][0]["color"] == "#ff0000"
    assert schema["spans"][0]["hotkey"] == "p"
    assert [label["name"] for label in schema["classes"]] == ["Urgent", "Routine"]
    assert schema["multi_label"] is False


def test_label_studio_tags_strongroom_lacks_are_named(admin: httpx.Client) -> None:
    config = LABEL_STUDIO.replace(
        "</View>", '<Audio name="a" value="$audio"/><Rating name="r"/></View>'
    )

    refused = admin.post(
        "/api/v1/projects", json={"name": "Imported", "label_config": config}
    )

    assert refused.status_code == 400
    problem = refused.json()
    assert problem["code"] == "label_config_unsupported"
    assert "Audio" in problem["detail"] and "Rating" in problem["detail"]


def test_a_team_runs_a_project_with_overlap_review_and_agreement(
    admin: httpx.Client, team: dict[str, Any]
) -> None:
    ann, ben, cat, rev = (team["clients"][n] for n in ("ann", "ben", "cat", "rev"))
    project_id = _project(
        admin,
        team,
        schema={"spans": ["SYMPTOM"], "classes": ["Urgent", "Routine"]},
        guidelines="Mark every person by name.",
        overlap=2,
        review=True,
    )
    _upload(admin, project_id, NOTES)
    _queued(admin, project_id, 2)

    # Ann and Ben both get the first task (overlap 2); Cat gets the second.
    first_ann = _next(ann, project_id).json()
    first_ben = _next(ben, project_id).json()
    second_cat = _next(cat, project_id).json()
    assert first_ann["id"] == first_ben["id"] != second_cat["id"]
    assert _next(ann, project_id).json()["id"] == first_ann["id"], "held lease first"

    # Cat skips with a reason and never sees that task again.
    skipped = cat.post(
        f"/api/v1/tasks/{second_cat['id']}/skip", json={"reason": "Not a note"}
    )
    assert skipped.status_code == 204
    # The first task is full (two leases) and Cat skipped the second.
    assert _next(cat, project_id).json()["code"] == "queue_empty"

    # Ann and Ben answer blind: each sees only their own answer.
    ann_answer = _answer(ann, first_ann, "persistent cough", ["Urgent"], 20)
    _answer(ben, first_ben, "cough", ["Urgent"], 40)
    assert ann.get(f"/api/v1/projects/{project_id}/annotations").status_code == 403
    assert rev.post(f"/api/v1/projects/{project_id}/tasks/next").status_code == 403

    # Undo: Ann takes her answer back and resubmits it as a new version.
    reopened = ann.post(f"/api/v1/tasks/{first_ann['id']}/reopen")
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["annotation"]["id"] == ann_answer["id"]
    again = _answer(ann, reopened.json(), "persistent cough", ["Urgent"], 5)
    assert again["version"] == 2

    # The reviewer sees both answers side by side and returns Ben's.
    review = rev.post(f"/api/v1/projects/{project_id}/reviews/next")
    assert review.status_code == 200, review.text
    answers = {a["annotator_name"]: a for a in review.json()["annotations"]}
    assert set(answers) == {"ann", "ben"}
    assert review.json()["task"]["text"] == first_ann["text"]
    rejected = rev.post(
        f"/api/v1/tasks/{first_ann['id']}/review",
        json={
            "decision": "reject",
            "annotation_id": answers["ben"]["id"],
            "comment": "Mark the whole name.",
        },
    )
    assert rejected.status_code == 200, rejected.text

    # Ben gets the task back first, with the comment and his answer.
    back = _next(ben, project_id).json()
    assert back["id"] == first_ann["id"]
    assert back["review_comment"] == "Mark the whole name."
    assert back["annotation"]["spans"][0]["end"] - back["annotation"]["spans"][0][
        "start"
    ] == len("cough")
    _answer(ben, back, "persistent cough", ["Urgent"], 30)

    # Now the reviewer accepts Ann's answer as gold.
    review = rev.post(f"/api/v1/projects/{project_id}/reviews/next").json()
    answers = {a["annotator_name"]: a for a in review["annotations"]}
    accepted = rev.post(
        f"/api/v1/tasks/{first_ann['id']}/review",
        json={"decision": "accept", "annotation_id": answers["ann"]["id"]},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["gold_annotation_id"]

    stats = admin.get(f"/api/v1/projects/{project_id}/stats")
    assert stats.status_code == 200, stats.text
    figures = stats.json()
    assert figures["tasks"]["completed"] == 1
    assert figures["reviews"] == {
        "accepted": 1,
        "rejected": 1,
        "corrected": 0,
        "gold_tasks": 1,
    }
    people = {a["username"]: a for a in figures["annotators"]}
    assert people["ann"]["submitted"] == 1 and people["ben"]["submitted"] == 1
    assert people["cat"]["skipped"] == 1
    assert people["ann"]["gold_agreement"] == 1.0
    assert people["ben"]["gold"]["span_f1_exact"] == 1.0
    assert people["ann"]["seconds_per_task"] == pytest.approx(25.0)
    # Both now agree exactly, on the span and on the class.
    spans = figures["agreement"]["spans"]
    assert spans["overall"]["mean_exact_f1"] == 1.0
    assert spans["per_label"]["SYMPTOM"]["pairs"][0]["tasks"] == 1
    assert figures["agreement"]["counts"]["annotator_pairs"] == 1

    gold = admin.get(
        f"/api/v1/projects/{project_id}/annotations", params={"kind": "gold"}
    ).json()
    assert gold["total"] == 1
    assert gold["annotations"][0]["source_annotation_id"] == answers["ann"]["id"]

    trail = admin.get(
        "/api/v1/audit/events", params={"project": project_id, "limit": 500}
    ).json()["events"]
    actions = {event["action"] for event in trail}
    assert {
        "task.lease",
        "task.skip",
        "task.reopen",
        "annotation.submit",
        "review.lease",
        "annotation.review",
        "task.return",
        "task.close",
        "project.stats.read",
    } <= actions
    assert not any("Mark the whole name" in str(event) for event in trail)
    assert not any("Not a note" in str(event) for event in trail)


def test_paragraph_windows_and_pre_assignment(
    admin: httpx.Client, team: dict[str, Any]
) -> None:
    ann, ben = team["clients"]["ann"], team["clients"]["ben"]
    project_id = _project(
        admin,
        team,
        labels=["SYMPTOM"],
        window={"kind": "paragraph"},
        assignment="assigned",
    )
    _upload(admin, project_id, NOTES[:1])
    tasks = _queued(admin, project_id, 2)
    assert [(t["window_start"], t["window_end"]) for t in tasks] == [
        (0, NOTES[0].index("\n\n")),
        (NOTES[0].index("Follow"), len(NOTES[0])),
    ]

    assert _next(ann, project_id).json()["code"] == "queue_empty"
    first = tasks[0]["id"]
    admin.patch(f"/api/v1/tasks/{tasks[1]['id']}", json={"priority": 10})
    assigned = admin.post(
        f"/api/v1/projects/{project_id}/assignments",
        json={"username": "ann", "count": 1},
    )
    assert assigned.json() == {"assigned": 1}

    mine = _next(ann, project_id).json()
    assert mine["id"] == tasks[1]["id"] != first, "higher priority assigned first"
    assert mine["text"] == NOTES[0][mine["window_start"] : mine["window_end"]]
    assert _next(ben, project_id).json()["code"] == "queue_empty"

    outside = ann.post(
        f"/api/v1/tasks/{mine['id']}/annotations",
        json={"spans": [{"start": 0, "end": 4, "label": "SYMPTOM"}]},
    )
    assert outside.status_code == 400
    assert outside.json()["code"] == "span_out_of_range"
    _answer(ann, mine, "headache", [], 3)
    done = wait_for(
        lambda: next(
            (
                t
                for t in admin.get(f"/api/v1/projects/{project_id}/tasks").json()[
                    "tasks"
                ]
                if t["id"] == mine["id"] and t["state"] == "completed"
            ),
            None,
        )
    )
    assert done["submitted"] == 1
    # Without review, the answer can still be taken back and corrected.
    reopened = ann.post(f"/api/v1/tasks/{mine['id']}/reopen")
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["annotation"]["spans"][0]["label"] == "SYMPTOM"
    assert _answer(ann, reopened.json(), "headache", [], 2)["version"] == 2


def test_annotators_cannot_read_tasks_they_do_not_hold(
    strongroom: Strongroom, admin: httpx.Client, team: dict[str, Any]
) -> None:
    ann, ben = team["clients"]["ann"], team["clients"]["ben"]
    project_id = _project(admin, team, labels=["SYMPTOM"])
    _upload(admin, project_id, ["Only the referral letter is attached here."])
    (task,) = _queued(admin, project_id, 1)

    held = _next(ann, project_id).json()
    peek = ben.get(f"/api/v1/tasks/{held['id']}", params={"include_text": "true"})
    answer = ben.post(
        f"/api/v1/tasks/{task['id']}/annotations",
        json={"spans": [{"start": 9, "end": 17, "label": "SYMPTOM"}]},
    )

    outsider = _user(admin, "otto", "manager")
    otto = strongroom.client(strongroom.token("otto", outsider["password"]))
    for path in ("annotations", "stats", "tasks"):
        response = otto.get(f"/api/v1/projects/{project_id}/{path}")
        # A manager of no project of this one is told it does not exist.
        assert response.status_code == 404, (path, response.text)

    assert peek.status_code == 403
    assert answer.status_code == 403
    denials = admin.get(
        "/api/v1/audit/events",
        params={"project": project_id, "outcome": "denied", "limit": 50},
    ).json()["events"]
    assert len(denials) >= 5


def test_the_cli_creates_a_project_with_queue_and_review_settings(
    strongroom: Strongroom, admin: httpx.Client, tmp_path: Path
) -> None:
    assert strongroom.admin_password
    strongroom.cli(
        "login", "--username", "admin", "--password", strongroom.admin_password
    )
    guidelines = tmp_path / "guidelines.txt"
    guidelines.write_text("Mark people, not places.")
    config = tmp_path / "config.xml"
    config.write_text(LABEL_STUDIO)

    made = strongroom.cli(
        "project",
        "create",
        "From the CLI",
        "--label",
        "PERSON",
        "--class",
        "Urgent",
        "--class",
        "Routine",
        "--overlap",
        "2",
        "--review",
        "--window",
        "fixed",
        "--window-size",
        "500",
        "--guidelines",
        str(guidelines),
    )
    imported = strongroom.cli(
        "project", "create", "Imported", "--label-config", str(config)
    )
    refused = strongroom.cli(
        "project", "create", "Nothing", "--overlap", "2", check=False
    )

    project = admin.get(f"/api/v1/projects/{made.stdout.strip()}").json()
    assert [label["name"] for label in project["schema"]["classes"]] == [
        "Urgent",
        "Routine",
    ]
    assert (project["overlap"], project["review"]) == (2, True)
    assert project["window"] == {"kind": "fixed", "size": 500}
    assert project["guidelines"] == "Mark people, not places."
    other = admin.get(f"/api/v1/projects/{imported.stdout.strip()}").json()
    assert other["schema"]["spans"][1]["name"] == "Hospital_name"
    assert refused.returncode != 0
    assert "(labels_required, HTTP 400)" in refused.stderr
