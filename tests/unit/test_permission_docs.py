"""docs/permissions.md shows the matrix the end-to-end test enforces."""

from __future__ import annotations

from tests.e2e.permission_matrix import (
    DOCUMENT,
    GRPC,
    REST,
    embedded_markdown,
    render_markdown,
)


def test_the_document_embeds_the_matrix_as_generated() -> None:
    assert embedded_markdown(DOCUMENT.read_text()) == render_markdown(), (
        "docs/permissions.md is stale: run python -m tests.e2e.permission_matrix"
    )


def test_every_entry_has_a_row_in_the_document() -> None:
    text = DOCUMENT.read_text()

    missing = [name for name in (*REST, *GRPC) if f"| `{name}` |" not in text]

    assert not missing
