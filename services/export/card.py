"""The dataset card of a version, written from the platform's own records.

One set of facts gives two files: JSON for tools and Markdown for people.
Each section says which point of EU AI Act Art. 10(2) and which part of
Datasheets for Datasets it answers. Pure: no I/O. Nothing here is document
text or a person's name: sources are counted, annotators pseudonymous.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CARD_VERSION = 1

# Below these a label or an agreement figure is flagged for a closer look.
_FEW_EXAMPLES = 20
_IMBALANCE = 10.0
_LOW_AGREEMENT = 0.6

ART_10_2 = {
    "a": "the relevant design choices",
    "b": "data collection processes and the origin of data",
    "c": "data-preparation processing operations: annotation, labelling, "
    "cleaning, updating, enrichment and aggregation",
    "d": "the assumptions about what the data measure and represent",
    "e": "the availability, quantity and suitability of the data sets",
    "f": "examination in view of possible biases",
    "g": "measures to detect, prevent and mitigate the biases found",
    "h": "data gaps or shortcomings, and how they can be addressed",
}


@dataclass(frozen=True)
class CardFacts:
    """Everything a card says, gathered by the builder from each service."""

    version: str
    export_id: str
    created_at: str
    project: Mapping[str, Any]
    settings: Mapping[str, Any]
    counts: Mapping[str, Any]
    sources: Mapping[str, Any]
    redaction: Mapping[str, Any]
    labeling: Mapping[str, Any]
    queue: Mapping[str, Any]
    review: Mapping[str, Any]
    agreement: Mapping[str, Any]
    annotators: Mapping[str, int]
    intended_use: str = ""
    notes: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


def build_card(facts: CardFacts) -> dict[str, Any]:
    gaps = known_gaps(facts)
    counts = facts.counts
    return {
        "card_version": CARD_VERSION,
        "dataset": {
            "project": facts.project.get("name", ""),
            "project_id": facts.project.get("id", ""),
            "version": facts.version,
            "export_id": facts.export_id,
            "created_at": facts.created_at,
            "formats": list(facts.settings.get("formats", [])),
        },
        "motivation": {
            "art_10_2": ["a"],
            "intended_use": facts.intended_use
            or "Not stated by the project's manager when this version was made.",
            "guidelines": facts.project.get("guidelines", ""),
        },
        "composition": {
            "art_10_2": ["d", "e"],
            "records": counts.get("records", 0),
            "documents": counts.get("documents", 0),
            "tasks": counts.get("tasks", 0),
            "splits": counts.get("splits", {}),
            "synthetic_records": counts.get("synthetic", 0),
            "synthetic_share": _share(
                counts.get("synthetic", 0), counts.get("records", 0)
            ),
            "labels": _label_table(facts),
            "filter": facts.settings.get("filter", {}),
            "split_ratios": facts.settings.get("splits", {}),
        },
        "collection": {
            "art_10_2": ["b"],
            "sources": facts.sources,
        },
        "preprocessing": {
            "art_10_2": ["c"],
            "redaction": facts.redaction,
            "labeling": facts.labeling,
            "queue": facts.queue,
            "review": facts.review,
            "review_coverage": _share(
                counts.get("reviewed_tasks", 0), counts.get("tasks", 0)
            ),
            "format_notes": {k: dict(v) for k, v in sorted(facts.notes.items()) if v},
        },
        "annotators": {
            "art_10_2": ["c", "f"],
            "count": len(facts.annotators),
            "records_by_annotator": dict(sorted(facts.annotators.items())),
            "agreement": facts.agreement,
        },
        "known_gaps_and_biases": {
            "art_10_2": ["f", "g", "h"],
            "findings": gaps,
            "to_check": [
                "Whether the documents represent the people and settings the "
                "model will be used on (age, sex, language, site, period).",
                "Whether redaction removed words the task depends on "
                "(see the counts by identifier type).",
                "Whether labels with low agreement need clearer guidelines "
                "before training.",
            ],
        },
        "distribution": {
            "signature": "manifest.json is signed with Ed25519 (manifest.sig); "
            "`strongroom export verify DIR --public-key KEY` checks every file.",
            "personal_data": "Text is the redacted text; annotators appear "
            "under project-wide pseudonyms.",
        },
        "maintenance": {
            "versioning": "Each version is immutable; a new export makes a new "
            "version with its own manifest and card.",
        },
    }


def known_gaps(facts: CardFacts) -> list[str]:
    """Findings the figures themselves show: what a reviewer should look at."""
    findings = []
    counts = facts.counts
    records = counts.get("records", 0)
    if not records:
        findings.append("The version holds no records.")
    for kind, key in (("span", "spans_by_label"), ("class", "classes_by_label")):
        by_label: Mapping[str, int] = counts.get(key, {})
        defined = facts.labeling.get(f"{kind}_labels", [])
        for name in defined:
            seen = by_label.get(name, 0)
            if seen < _FEW_EXAMPLES:
                findings.append(
                    f"The {kind} label {name} has {seen} example(s) "
                    f"(fewer than {_FEW_EXAMPLES})."
                )
        present = [n for n in by_label.values() if n]
        if len(present) > 1 and max(present) >= _IMBALANCE * min(present):
            findings.append(
                f"The {kind} labels are imbalanced: the most frequent has "
                f"{max(present)} examples, the rarest {min(present)}."
            )
    tasks, reviewed = counts.get("tasks", 0), counts.get("reviewed_tasks", 0)
    if tasks and facts.labeling.get("review") and reviewed < tasks:
        findings.append(f"{tasks - reviewed} of {tasks} task(s) were not reviewed.")
    if tasks and not facts.labeling.get("review"):
        findings.append("The project has no review stage: no answer was checked.")
    if facts.labeling.get("overlap", 1) < 2:
        findings.append(
            "Each task was answered once (overlap 1), so agreement between "
            "annotators cannot be measured."
        )
    for label, value in low_agreement(facts.agreement):
        findings.append(f"Agreement on {label} is low ({value:.2f}).")
    held = facts.redaction.get("held", 0)
    if held:
        findings.append(f"{held} document(s) were held back by redaction.")
    skipped = facts.queue.get("skipped", 0)
    if skipped:
        findings.append(f"Annotators skipped tasks {skipped} time(s).")
    splits = counts.get("splits", {})
    for name in ("dev", "test"):
        if records and not splits.get(name):
            findings.append(f"The {name} split is empty.")
    for writer, notes in sorted(facts.notes.items()):
        for what, number in sorted(notes.items()):
            if number:
                findings.append(f"{writer}: {number} {what.replace('_', ' ')}.")
    return findings


def low_agreement(agreement: Mapping[str, Any]) -> list[tuple[str, float]]:
    """Labels whose agreement (kappa, span F1 or box F1) is below the bar."""
    low: list[tuple[str, float]] = []
    sections: Sequence[tuple[str, str]] = (
        ("classification", "fleiss_kappa"),
        ("spans", "mean_exact_f1"),
        ("boxes", "mean_f1"),
    )
    for section, measure in sections:
        report = agreement.get(section) or {}
        for label, figures in sorted((report.get("per_label") or {}).items()):
            value = (figures or {}).get(measure)
            if isinstance(value, int | float) and value < _LOW_AGREEMENT:
                low.append((f"{section} label {label}", float(value)))
    return low


def pseudonymised(value: Any, rename: Callable[[str], str]) -> Any:
    """The agreement report with every annotator's subject replaced."""
    if isinstance(value, Mapping):
        return {
            k: rename(v)
            if k in ("annotator", "annotator_a", "annotator_b") and isinstance(v, str)
            else pseudonymised(v, rename)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [pseudonymised(v, rename) for v in value]
    return value


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _label_table(facts: CardFacts) -> list[dict[str, Any]]:
    counts = facts.counts
    rows = []
    for kind, key in (
        ("span", "spans_by_label"),
        ("class", "classes_by_label"),
        ("relation", "relations_by_label"),
        ("box", "boxes_by_label"),
    ):
        seen: Mapping[str, int] = counts.get(key, {})
        described: Mapping[str, str] = facts.labeling.get("descriptions", {})
        for name in facts.labeling.get(f"{kind}_labels", []):
            rows.append(
                {
                    "kind": kind,
                    "name": name,
                    "description": described.get(name, ""),
                    "count": seen.get(name, 0),
                }
            )
    return rows


# --- Markdown -----------------------------------------------------------------


def render_markdown(card: Mapping[str, Any]) -> str:
    d, m, c = card["dataset"], card["motivation"], card["composition"]
    p, a, g = card["preprocessing"], card["annotators"], card["known_gaps_and_biases"]
    out = [
        f"# Dataset card: {_md(d['project'])}, version {_md(d['version'])}",
        "",
        f"Export `{d['export_id']}`, made {d['created_at']}; formats: "
        f"{', '.join(d['formats'])}. Generated by Strongroom from the records "
        "of each step; the figures are the platform's own.",
        "",
        "| Section | Datasheets for Datasets | EU AI Act Art. 10(2) |",
        "|---|---|---|",
        "| Motivation and intended use | Motivation, Uses | (a) |",
        "| Composition | Composition | (d), (e) |",
        "| Collection | Collection process | (b) |",
        "| Preparation | Preprocessing / cleaning / labeling | (c) |",
        "| Annotators and agreement | Collection process, labeling | (c), (f) |",
        "| Known gaps and biases | Composition, Uses | (f), (g), (h) |",
        "| Distribution and maintenance | Distribution, Maintenance | - |",
        "",
        "## Motivation and intended use (Art. 10(2)(a))",
        "",
        _md(m["intended_use"]),
        "",
    ]
    if m["guidelines"]:
        out += ["Guidelines given to annotators:", "", _quote(m["guidelines"]), ""]
    out += [
        "## Composition (Art. 10(2)(d), (e))",
        "",
        f"- Records: {c['records']} from {c['documents']} document(s), "
        f"{c['tasks']} task(s)",
        "- Splits: "
        + ", ".join(f"{k} {v}" for k, v in c["splits"].items())
        + " (ratios "
        + ", ".join(f"{k} {v}" for k, v in c["split_ratios"].items())
        + "; grouped by document and near-duplicate cluster)",
        f"- Synthetic records: {c['synthetic_records']} "
        f"({c['synthetic_share']:.1%}), in the train split only",
        f"- Filter: {_filter_text(c['filter'])}",
        "",
        "| Kind | Label | Description | Count |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {row['kind']} | {_md(row['name'])} | {_md(row['description'])} "
        f"| {row['count']} |"
        for row in c["labels"]
    ]
    sources = card["collection"]["sources"]
    out += [
        "",
        "## Collection (Art. 10(2)(b))",
        "",
        f"- Documents ingested: {sources.get('documents', 0)}",
        "- By type: " + _pairs(sources.get("media_types", {})),
        "- Parsers: " + _pairs(sources.get("parsers", {})),
        f"- Read with OCR: {sources.get('ocr_documents', 0)} document(s)",
        f"- Exact duplicates of an earlier upload: {sources.get('duplicates', 0)}",
        "",
        "## Preparation (Art. 10(2)(c))",
        "",
    ]
    r = p["redaction"]
    out += [
        f"- Redaction policy: {_md(str(r.get('policy', '')))}; rules "
        f"{', '.join(r.get('rules_versions', [])) or '-'}; model "
        f"{', '.join(r.get('model_versions', [])) or '-'}",
        "- Identifiers found, by type: " + _pairs(r.get("counts_by_type", {})),
        "- Actions taken: " + _pairs(r.get("counts_by_action", {})),
        f"- Held for review: {r.get('held', 0)}; near-duplicate clusters: "
        f"{r.get('duplicate_clusters', 0)}",
    ]
    lab = p["labeling"]
    out += [
        f"- Labeling: overlap {lab.get('overlap')}, review "
        f"{'on' if lab.get('review') else 'off'}, window "
        f"{_md(str(lab.get('window', '')))}, label schema "
        f"`{str(lab.get('schema_version', ''))[:16]}`",
        "- Queue: " + _pairs(p["queue"]),
        "- Review decisions: " + _pairs(p["review"]),
        f"- Review coverage: {p['review_coverage']:.1%} of exported tasks",
    ]
    if p["format_notes"]:
        out.append(
            "- Format notes: "
            + "; ".join(f"{k}: {_pairs(v)}" for k, v in p["format_notes"].items())
        )
    out += [
        "",
        "## Annotators and agreement (Art. 10(2)(c), (f))",
        "",
        f"{a['count']} annotator(s), under pseudonyms:",
        "",
    ]
    out += [f"- {name}: {n} record(s)" for name, n in a["records_by_annotator"].items()]
    out += ["", *_agreement_lines(a["agreement"]), ""]
    out += ["## Known gaps and biases (Art. 10(2)(f), (g), (h))", ""]
    out += [f"- {_md(f)}" for f in g["findings"]] or ["- None found in the figures."]
    out += ["", "To check before use:", ""]
    out += [f"- {t}" for t in g["to_check"]]
    out += [
        "",
        "## Distribution and maintenance",
        "",
        card["distribution"]["signature"],
        card["distribution"]["personal_data"],
        card["maintenance"]["versioning"],
        "",
    ]
    return "\n".join(out)


def _agreement_lines(agreement: Mapping[str, Any]) -> list[str]:
    lines = []
    spans = (agreement.get("spans") or {}).get("overall") or {}
    if spans:
        lines.append(
            f"- Spans: mean exact F1 {_num(spans.get('mean_exact_f1'))}, "
            f"mean overlap F1 {_num(spans.get('mean_overlap_f1'))}"
        )
    classes = (agreement.get("classification") or {}).get("overall") or {}
    if classes:
        lines.append(
            f"- Classes: Fleiss' kappa {_num(classes.get('fleiss_kappa'))}, "
            f"Krippendorff's alpha {_num(classes.get('krippendorff_alpha'))}"
        )
    boxes = (agreement.get("boxes") or {}).get("overall") or {}
    if boxes:
        lines.append(
            f"- Boxes: mean IoU {_num(boxes.get('mean_iou'))}, "
            f"mean F1 {_num(boxes.get('mean_f1'))}"
        )
    return lines or ["- No task had two answers to compare."]


def _filter_text(f: Mapping[str, Any]) -> str:
    parts = []
    if f.get("gold_only"):
        parts.append("gold answers only")
    if f.get("reviewed_only"):
        parts.append("reviewed tasks only")
    if f.get("labels"):
        parts.append("labels " + ", ".join(f["labels"]))
    if f.get("since") or f.get("until"):
        parts.append(
            f"answered from {f.get('since') or '-'} to {f.get('until') or '-'}"
        )
    if f.get("exclude_synthetic"):
        parts.append("no synthetic records")
    return "; ".join(parts) or "every current answer"


def _pairs(mapping: Mapping[str, Any]) -> str:
    return ", ".join(f"{_md(str(k))} {v}" for k, v in sorted(mapping.items())) or "-"


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell or line."""
    return " ".join(text.split()).replace("|", "\\|")


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" for line in text.strip().splitlines())
