"""One document through the redaction service's handler and its tables."""

from __future__ import annotations

import io
import json
from pathlib import Path

import sqlalchemy as sa
from PIL import Image

from strongroom.services.common.adapters.local_object_store import LocalObjectStore
from strongroom.services.common.database import create_database_engine, migrate
from strongroom.services.common.runtime import DERIVED
from strongroom.services.ingestion.model import Box, PageText, ParsedDocument, Segment
from strongroom.services.ingestion.model import to_json as structure_json
from strongroom.services.redaction import store
from strongroom.services.redaction.handlers import Redactor, Source
from strongroom.services.redaction.policy import Policy
from strongroom.services.redaction.vault import Vault

TEXT = "Patient Maria Lopez, SSN 219-09-9999, phone (217) 555-0143."


def _setup(tmp_path: Path) -> tuple[sa.Engine, LocalObjectStore, Redactor]:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine, store.MIGRATIONS)
    objects = LocalObjectStore(tmp_path / "objects")
    vault = Vault.from_file(tmp_path / "keys" / "redaction.key")
    return engine, objects, Redactor(objects, vault)


def _events(engine: sa.Engine) -> list[tuple[str, dict]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT topic, payload FROM outbox ORDER BY position")
        )
        return [(r[0], json.loads(r[1])) for r in rows if r[0].startswith("document.")]


def _source(objects: LocalObjectStore, text: str, doc: str = "d1") -> Source:
    image = Image.new("L", (612, 792), 255)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    png = objects.put(DERIVED, [buffer.getvalue()])
    parsed = ParsedDocument(
        text=text,
        pages=(PageText(1, 0, len(text), 612, 792, "ocr", png.sha256),),
        parser="test",
        parser_version="1",
        segments=(Segment(8, 19, 1, Box(100, 50, 200, 70), 95.0),),
    )
    stored = objects.put(DERIVED, [text.encode()])
    structure = objects.put(DERIVED, [json.dumps(structure_json(parsed)).encode()])
    return Source(doc, "p1", stored.sha256, structure.sha256)


def test_cleaned_event_lists_page_images_and_findings_without_values(
    tmp_path: Path,
) -> None:
    engine, objects, redactor = _setup(tmp_path)
    with engine.begin() as conn:
        redactor.process(conn, _source(objects, TEXT))

    ((topic, payload),) = _events(engine)
    assert topic == "document.cleaned"
    text = objects.read(DERIVED, payload["text_sha256"]).decode()
    assert "Maria" not in text and "219-09-9999" not in text
    assert [text[f["start"] : f["end"]] for f in payload["findings"]] == [
        "[NAME]",
        "[US_SSN]",
        "[PHONE]",
    ]
    (page,) = payload["page_images"]
    assert (page["page"], page["width"], page["height"]) == (1, 612, 792)
    burned = Image.open(io.BytesIO(objects.read(DERIVED, page["sha256"])))
    assert burned.getpixel((150, 60)) == 0
    assert "Maria" not in json.dumps(payload)


def test_duplicate_and_review_are_held_not_cleaned(tmp_path: Path) -> None:
    engine, objects, redactor = _setup(tmp_path)
    with engine.begin() as conn:
        store.put_policy(conn, "p1", Policy(hold_duplicates=True).to_json(), "t", "now")
        redactor.process(conn, _source(objects, TEXT, "d1"))
        redactor.process(conn, _source(objects, TEXT + " ", "d2"))
        store.put_policy(
            conn, "p1", Policy(actions={"US_SSN": "review"}).to_json(), "t", "now"
        )
        redactor.process(conn, _source(objects, "Other note, SSN 219-09-9999.", "d3"))

    topics = [(t, p["document_id"], p.get("reasons")) for t, p in _events(engine)]
    assert topics == [
        ("document.cleaned", "d1", None),
        ("document.held", "d2", ["duplicate"]),
        ("document.held", "d3", ["review"]),
    ]


def test_surrogate_policy_keeps_sealed_originals(tmp_path: Path) -> None:
    engine, objects, redactor = _setup(tmp_path)
    with engine.begin() as conn:
        store.put_policy(
            conn,
            "p1",
            Policy(default_action="surrogate", reidentification=True).to_json(),
            "t",
            "now",
        )
        redactor.process(conn, _source(objects, TEXT))
        sealed = store.sealed_originals(conn, "p1")
        raw = conn.execute(sa.text("SELECT * FROM surrogates")).fetchall()
    originals = {
        redactor.vault.open(s, f"original:p1:{t}").decode() for t, _, s in sealed
    }
    assert {"Maria Lopez", "219-09-9999", "(217) 555-0143"} <= originals
    assert "Maria Lopez" not in repr(raw)
