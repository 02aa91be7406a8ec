"""Readable audit reports: a document's lineage or a person's activity, as
HTML or PDF, from the events the audit service returned.

Events carry ids, codes and counts only, so a report holds no document text
or personal data beyond who acted. Every value is escaped; the HTML loads
nothing from anywhere.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from strongroom.gateway import schemas

COLUMNS = ("#", "Time (UTC)", "Who", "Action", "Resource", "Outcome", "Service")


@dataclass(frozen=True)
class Report:
    title: str
    subtitle: str
    generated_at: str
    generated_by: str
    events: Sequence[schemas.AuditEvent]
    is_truncated: bool = False

    def rows(self) -> list[tuple[str, ...]]:
        return [_row(event) for event in self.events]

    def summary(self) -> list[tuple[str, str]]:
        people = sorted({_who(e) for e in self.events})
        denied = sum(1 for e in self.events if e.outcome != "success")
        return [
            ("Events", str(len(self.events))),
            ("People and services involved", ", ".join(people) or "none"),
            ("Denied or failed", str(denied)),
            (
                "Sequence range",
                f"{self.events[0].sequence} to {self.events[-1].sequence}"
                if self.events
                else "none",
            ),
            ("Generated", f"{self.generated_at} by {self.generated_by}"),
        ]


def _who(event: schemas.AuditEvent) -> str:
    return event.actor.username or event.actor.subject or "anonymous"


def _row(event: schemas.AuditEvent) -> tuple[str, ...]:
    resource = event.resource.type + (
        f" {event.resource.id}" if event.resource.id else ""
    )
    outcome = event.outcome + (f" ({event.reason})" if event.reason else "")
    return (
        str(event.sequence),
        (event.time or "").replace("T", " ").removesuffix("Z"),
        _who(event),
        event.action,
        resource,
        outcome,
        event.service,
    )


def render_html(report: Report) -> str:
    escape = html.escape
    summary = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
        for k, v in report.summary()
    )
    header = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
        for row in report.rows()
    )
    note = (
        "<p class='note'>Only the newest events are shown; narrow the period "
        "for the rest.</p>"
        if report.is_truncated
        else ""
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(report.title)}</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:2em;color:#111}"
        "table{border-collapse:collapse;margin:1em 0}"
        "th,td{border:1px solid #bbb;padding:4px 8px;text-align:left;"
        "vertical-align:top}thead th{background:#eee}.note{color:#a00}</style>"
        f"</head><body><h1>{escape(report.title)}</h1>"
        f"<p>{escape(report.subtitle)}</p>"
        f"<table class='summary'>{summary}</table>{note}"
        f"<table class='events'><thead><tr>{header}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
        "<p>Each event's hash and position in the signed audit chain can be "
        "checked with <code>strongroom audit verify</code> and "
        "<code>strongroom audit prove</code>.</p></body></html>"
    )


def render_pdf(report: Report) -> bytes:
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=report.title,
        author="Strongroom",
    )
    styles = getSampleStyleSheet()
    cell = styles["BodyText"].clone("cell", fontSize=7.5, leading=9)

    def paragraph(text: str, style: object = cell) -> Paragraph:
        return Paragraph(html.escape(text), style)

    summary = Table(
        [[paragraph(k), paragraph(v)] for k, v in report.summary()],
        colWidths=[60 * mm, 200 * mm],
    )
    summary.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey)]))
    events = Table(
        [[paragraph(c) for c in COLUMNS]]
        + [[paragraph(value) for value in row] for row in report.rows()],
        colWidths=[14 * mm, 38 * mm, 34 * mm, 44 * mm, 70 * mm, 36 * mm, 24 * mm],
        repeatRows=1,
    )
    events.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story = [
        paragraph(report.title, styles["Title"]),
        paragraph(report.subtitle, styles["Normal"]),
        Spacer(1, 4 * mm),
        summary,
        Spacer(1, 4 * mm),
    ]
    if report.is_truncated:
        story.append(paragraph("Only the newest events are shown.", styles["Normal"]))
    story.append(events)
    document.build(story)
    return buffer.getvalue()
