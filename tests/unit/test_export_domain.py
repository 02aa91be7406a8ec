"""Dataset versions: settings, what goes in, stable grouped splits,
pseudonyms, the manifest, the dataset card, and offline verification."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from strongroom.services.common.errors import InvalidArgument
from strongroom.services.common.signing import key_id
from strongroom.services.export import card, domain
from strongroom.services.export.records import (
    DEV,
    GOLD,
    TEST,
    TRAIN,
    Box,
    Record,
    Relation,
    Span,
)
from strongroom.services.export.verify import verify_directory


def settings(**changes: object) -> domain.ExportSettings:
    base: dict[str, object] = {
        "name": "v1",
        "formats": ["jsonl"],
        "export_filter": domain.Filter(),
        "ratios": None,
        "intended_use": "",
    }
    base.update(changes)
    return domain.check_settings(**base)  # type: ignore[arg-type]


def test_settings_default_to_jsonl_and_scale_the_ratios() -> None:
    chosen = settings(formats=[], ratios=domain.Ratios(8, 1, 1))
    assert chosen.formats == ("jsonl",)
    assert chosen.ratios == domain.Ratios(0.8, 0.1, 0.1)
    assert settings(formats=["SpaCy", "spacy", "csv"]).formats == ("spacy", "csv")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"formats": ["xlsx"]}, "export_format_unknown"),
        ({"ratios": domain.Ratios(0, 0.5, 0.5)}, "export_splits_invalid"),
        ({"ratios": domain.Ratios(0.8, -0.1, 0.3)}, "export_splits_invalid"),
        ({"ratios": domain.Ratios(float("nan"), 0.1, 0.1)}, "export_splits_invalid"),
        ({"name": "../v1"}, "export_name_invalid"),
        ({"name": "x" * 201}, "export_name_invalid"),
        ({"intended_use": "x" * 4001}, "export_intended_use_too_long"),
        (
            {
                "export_filter": domain.Filter(
                    since="2026-05-02T00:00:00", until="2026-05-01T00:00:00"
                )
            },
            "export_range_invalid",
        ),
    ],
)
def test_unusable_settings_are_refused_by_name(
    changes: dict[str, object], code: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        settings(**changes)
    assert refused.value.code == code


def test_settings_survive_their_stored_form() -> None:
    chosen = settings(
        formats=["spacy", "parquet"],
        export_filter=domain.Filter(gold_only=True, labels=frozenset({"DRUG"})),
        intended_use="Train a medicine tagger.",
    )
    assert domain.ExportSettings.from_dict(
        json.loads(json.dumps(chosen.as_dict()))
    ) == (chosen)


def test_the_filter_keeps_by_kind_review_time_and_origin() -> None:
    t = "2026-05-01T10:00:00.000000+00:00"
    keeps = domain.keeps
    assert keeps(domain.Filter(), "answer", t, False, False)
    assert not keeps(domain.Filter(gold_only=True), "answer", t, True, False)
    assert keeps(domain.Filter(gold_only=True), GOLD, t, True, False)
    assert not keeps(domain.Filter(reviewed_only=True), "answer", t, False, False)
    assert not keeps(domain.Filter(exclude_synthetic=True), "answer", t, False, True)
    assert keeps(domain.Filter(since=t), "answer", t, False, False)
    assert not keeps(domain.Filter(until=t), "answer", t, False, False)
    assert not keeps(
        domain.Filter(since="2026-05-02T00:00:00.000000+00:00"),
        "answer",
        t,
        False,
        False,
    )


def record(**changes: object) -> Record:
    base: dict[str, object] = {
        "id": "a1",
        "task_id": "t1",
        "document_id": "d1",
        "text": "Aspirin eased the chronic migraine.",
        "window_start": 0,
        "text_sha256": "0" * 64,
        "annotator": "annotator-1",
    }
    base.update(changes)
    return Record(**base)  # type: ignore[arg-type]


def test_a_label_filter_drops_other_labels_and_renumbers_relations() -> None:
    full = record(
        spans=(Span(0, 7, "DRUG"), Span(8, 13, "EFFECT"), Span(26, 34, "DISEASE")),
        relations=(Relation(0, 2, "TREATS"), Relation(0, 1, "CAUSES")),
        classes=("urgent", "routine"),
        boxes=(Box(1, 0.1, 0.1, 0.2, 0.2, "DRUG"),),
    )
    kept = domain.only_labels(full, frozenset({"DRUG", "DISEASE", "TREATS", "urgent"}))
    assert [s.label for s in kept.spans] == ["DRUG", "DISEASE"]
    assert kept.relations == (Relation(0, 1, "TREATS"),)
    assert kept.classes == ("urgent",)
    assert [b.label for b in kept.boxes] == ["DRUG"]
    assert domain.only_labels(full, frozenset()) is full


def test_duplicates_share_the_group_of_the_document_they_copy() -> None:
    links = {"d3": "d2", "d2": "d1", "x": "y", "y": "x"}
    assert domain.group_of("d3", links) == "d1"
    assert domain.group_of("d1", links) == "d1"
    assert domain.group_of("x", links) in {"x", "y"}, "a cycle ends"


def test_splits_are_stable_proportionate_and_keep_synthetic_in_train() -> None:
    ratios = domain.Ratios(0.8, 0.1, 0.1)
    first = [domain.split_of("p", f"d{n}", ratios, False) for n in range(10_000)]
    again = [domain.split_of("p", f"d{n}", ratios, False) for n in range(10_000)]
    assert first == again
    shares = Counter(first)
    assert 7_700 < shares[TRAIN] < 8_300
    assert 800 < shares[DEV] < 1_200 and 800 < shares[TEST] < 1_200
    assert all(domain.split_of("p", f"d{n}", ratios, True) == TRAIN for n in range(500))
    other = [domain.split_of("q", f"d{n}", ratios, False) for n in range(10_000)]
    assert other != first, "another project splits differently"


def test_pseudonyms_are_stable_per_project_and_reveal_nothing() -> None:
    key = b"k" * 32
    name = domain.pseudonym(key, "p1", "alice-subject")
    assert name == domain.pseudonym(key, "p1", "alice-subject")
    assert name != domain.pseudonym(key, "p2", "alice-subject")
    assert name != domain.pseudonym(b"j" * 32, "p1", "alice-subject")
    assert "alice" not in name and name.startswith("annotator-")


def test_the_tally_counts_what_was_written() -> None:
    tally = domain.Tally()
    tally.add(record(spans=(Span(0, 7, "DRUG"),), split=TRAIN, reviewed=True))
    tally.add(record(id="a2", task_id="t2", synthetic=True, classes=("urgent",)))
    counts = tally.as_dict()
    assert counts["records"] == 2 and counts["synthetic"] == 1
    assert counts["tasks"] == 2 and counts["documents"] == 1
    assert counts["reviewed_tasks"] == 1
    assert counts["splits"] == {TRAIN: 2, DEV: 0, TEST: 0}
    assert counts["spans_by_label"] == {"DRUG": 1}
    assert counts["classes_by_label"] == {"urgent": 1}


def manifest(key: Ed25519PrivateKey, files: list[domain.FileEntry]) -> bytes:
    return domain.render_manifest(
        export_id="e1",
        created_at="2026-05-01T10:00:00.000000+00:00",
        settings=settings(),
        project={"id": "p1", "name": "Letters"},
        files=files,
        counts={"records": 1},
        pipeline={"strongroom": "0.1.0"},
        key_id=key_id(key.public_key()),
    )


def test_the_manifest_is_deterministic_and_lists_files_by_name() -> None:
    key = Ed25519PrivateKey.generate()
    files = [
        domain.FileEntry("b.txt", "2" * 64, 2),
        domain.FileEntry("a.txt", "1" * 64, 1),
    ]
    first = manifest(key, files)
    assert first == manifest(key, list(reversed(files)))
    parsed = json.loads(first)
    assert [f["name"] for f in parsed["files"]] == ["a.txt", "b.txt"]
    assert parsed["signature"] == {
        "algorithm": "Ed25519",
        "key_id": key_id(key.public_key()),
    }


# --- verification -------------------------------------------------------------


def signed_directory(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    directory = tmp_path / "v1"
    (directory / "spacy").mkdir(parents=True)
    contents = {
        "jsonl/records.jsonl": b'{"id": "a1"}\n',
        "spacy/train.spacy": b"\x00\x01",
    }
    entries = []
    for name, data in contents.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        entries.append(
            domain.FileEntry(name, hashlib.sha256(data).hexdigest(), len(data))
        )
    body = manifest(key, entries)
    (directory / domain.MANIFEST_FILE).write_bytes(body)
    (directory / domain.SIGNATURE_FILE).write_bytes(
        domain.render_signature(key.sign(body), key_id(key.public_key()))
    )
    return directory


def test_a_faithful_copy_verifies(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    result = verify_directory(signed_directory(tmp_path, key), key.public_key())
    assert result.ok, result.problems
    assert (result.files_checked, result.export_id, result.name) == (2, "e1", "v1")


def test_every_kind_of_tampering_is_named(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    directory = signed_directory(tmp_path, key)
    (directory / "jsonl" / "records.jsonl").write_bytes(b'{"id": "a2"}\n')
    (directory / "spacy" / "train.spacy").unlink()
    (directory / "extra.csv").write_bytes(b"x")
    problems = verify_directory(directory, key.public_key()).problems
    assert "content differs: jsonl/records.jsonl" in problems
    assert "missing: spacy/train.spacy" in problems
    assert "not in the manifest: extra.csv" in problems


def test_a_rewritten_manifest_or_another_key_fails(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    directory = signed_directory(tmp_path, key)
    other = Ed25519PrivateKey.generate()
    assert not verify_directory(directory, other.public_key()).ok
    body = (directory / domain.MANIFEST_FILE).read_bytes()
    (directory / domain.MANIFEST_FILE).write_bytes(body.replace(b'"v1"', b'"v2"'))
    problems = verify_directory(directory, key.public_key()).problems
    assert "the manifest's signature does not hold for this key" in problems


def test_unsafe_names_in_a_manifest_are_refused(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    directory = tmp_path / "v1"
    directory.mkdir()
    body = manifest(key, [domain.FileEntry("../outside", "0" * 64, 1)])
    (directory / domain.MANIFEST_FILE).write_bytes(body)
    (directory / domain.SIGNATURE_FILE).write_bytes(
        domain.render_signature(key.sign(body), key_id(key.public_key()))
    )
    assert verify_directory(directory, key.public_key()).problems == (
        "unsafe file name in the manifest: '../outside'",
    )


def test_a_missing_manifest_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    result = verify_directory(tmp_path, key.public_key())
    assert not result.ok and "unreadable" in result.problems[0]


# --- the dataset card ---------------------------------------------------------


def facts(**changes: object) -> card.CardFacts:
    base: dict[str, object] = {
        "version": "v1",
        "export_id": "e1",
        "created_at": "2026-05-01T10:00:00Z",
        "project": {"id": "p1", "name": "Letters | 2026", "guidelines": "Mark drugs."},
        "settings": settings().as_dict(),
        "counts": {
            "records": 120,
            "documents": 60,
            "tasks": 60,
            "reviewed_tasks": 30,
            "synthetic": 0,
            "splits": {TRAIN: 100, DEV: 20, TEST: 0},
            "spans_by_label": {"DRUG": 110, "DOSE": 5},
            "classes_by_label": {},
        },
        "sources": {"documents": 60, "media_types": {"text/plain": 60}},
        "redaction": {"policy": "hipaa", "held": 2, "counts_by_type": {"NAME": 40}},
        "labeling": {
            "overlap": 2,
            "review": True,
            "span_labels": ["DRUG", "DOSE"],
            "class_labels": [],
            "descriptions": {"DRUG": "A medicine"},
        },
        "queue": {"skipped": 3},
        "review": {"accepted": 25, "corrected": 5},
        "agreement": {
            "spans": {
                "overall": {"mean_exact_f1": 0.81, "mean_overlap_f1": 0.9},
                "per_label": {
                    "DRUG": {"mean_exact_f1": 0.9},
                    "DOSE": {"mean_exact_f1": 0.4},
                },
            }
        },
        "annotators": {"annotator-aa": 70, "annotator-bb": 50},
        "intended_use": "Train a medicine tagger.",
        "notes": {"conll": {"overlapping_spans_dropped": 2}},
    }
    base.update(changes)
    return card.CardFacts(**base)  # type: ignore[arg-type]


def test_the_card_names_the_gaps_its_figures_show() -> None:
    findings = card.known_gaps(facts())
    joined = "\n".join(findings)
    assert "The span label DOSE has 5 example(s)" in joined
    assert "imbalanced: the most frequent has 110 examples, the rarest 5" in joined
    assert "30 of 60 task(s) were not reviewed." in findings
    assert "Agreement on spans label DOSE is low (0.40)." in findings
    assert "2 document(s) were held back by redaction." in findings
    assert "The test split is empty." in findings
    assert "conll: 2 overlapping spans dropped." in findings
    assert "Agreement on spans label DRUG" not in joined


def test_the_card_maps_every_point_of_article_10_2() -> None:
    made = card.build_card(facts())
    points = {
        p
        for section in made.values()
        if isinstance(section, dict)
        for p in section.get("art_10_2", [])
    }
    assert points == set(card.ART_10_2)
    assert made["composition"]["labels"][0] == {
        "kind": "span",
        "name": "DRUG",
        "description": "A medicine",
        "count": 110,
    }
    assert made["preprocessing"]["review_coverage"] == 0.5


def test_the_markdown_card_reads_well_and_escapes_table_cells() -> None:
    text = card.render_markdown(card.build_card(facts()))
    assert text.startswith("# Dataset card: Letters \\| 2026, version v1")
    for heading in (
        "## Motivation and intended use (Art. 10(2)(a))",
        "## Composition (Art. 10(2)(d), (e))",
        "## Collection (Art. 10(2)(b))",
        "## Preparation (Art. 10(2)(c))",
        "## Annotators and agreement (Art. 10(2)(c), (f))",
        "## Known gaps and biases (Art. 10(2)(f), (g), (h))",
    ):
        assert heading in text
    assert "| span | DRUG | A medicine | 110 |" in text
    assert "- Spans: mean exact F1 0.810, mean overlap F1 0.900" in text
    assert "Train a medicine tagger." in text


def test_agreement_reports_lose_the_annotators_subjects() -> None:
    report = {"pairs": [{"annotator_a": "s-1", "annotator_b": "s-2", "tasks": 3}]}
    renamed = card.pseudonymised(report, lambda s: f"anon({s})")
    assert renamed == {
        "pairs": [{"annotator_a": "anon(s-1)", "annotator_b": "anon(s-2)", "tasks": 3}]
    }
