"""The parser worker: a separate process that parses one file at a time.

It caps its own address space and CPU time before it reads anything, then
answers requests from its parent, one JSON line in and one JSON line out.
The parse itself goes to ``result.json`` in the request's output folder, so
the pipe carries only a short status. Nothing it prints can reach the
service's logs: its stderr is discarded by the parent.
"""

from __future__ import annotations

import json
import resource
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from strongroom.services.common.errors import StrongroomError
from strongroom.services.ingestion.archive import Budget
from strongroom.services.ingestion.domain import Limits
from strongroom.services.ingestion.errors import CorruptDocument, ParseMemoryExceeded
from strongroom.services.ingestion.extract import (
    ParseContext,
    container_names,
    parse_file,
    telling_names,
)
from strongroom.services.ingestion.model import to_json

RESULT = "result.json"
READY = "ready"


def limits_to_json(limits: Limits) -> dict[str, Any]:
    return {f.name: getattr(limits, f.name) for f in fields(Limits)}


def limits_from_json(data: dict[str, Any]) -> Limits:
    known = {f.name for f in fields(Limits)}
    return Limits(**{k: v for k, v in data.items() if k in known})


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """Answer one request: ``names`` of a container, or ``parse`` a file."""
    if request.get("op") == "names":
        return _names(Path(request["path"]))
    return _parse(request)


def _names(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle_in:
        head = handle_in.read(8)
    try:
        names = telling_names(container_names(path, head))
    except MemoryError:
        return {"ok": True, "names": []}
    return {"ok": True, "names": names}


def _parse(request: dict[str, Any]) -> dict[str, Any]:
    limits = limits_from_json(request["limits"])
    out_dir = Path(request["out_dir"])
    path = Path(request["path"])
    media_type = str(request["media_type"])
    context = ParseContext(limits, out_dir, Budget(limits, path.stat().st_size))
    try:
        document = parse_file(path, media_type, context)
    except StrongroomError as exc:
        return _refusal(exc)
    except MemoryError:
        return _refusal(ParseMemoryExceeded(limits.parse_memory_bytes))
    except Exception:  # the worker is the parsers' edge: any other failure
        return _refusal(CorruptDocument(media_type))
    result = {"text": document.text, "document": to_json(document, with_children=True)}
    with (out_dir / RESULT).open("w", encoding="utf-8") as handle_out:
        json.dump(result, handle_out, ensure_ascii=False)
    return {"ok": True}


def _refusal(error: StrongroomError) -> dict[str, Any]:
    return {
        "ok": False,
        "error": type(error).__name__,
        "code": error.code,
        "message": error.message,
    }


def _cap_resources(memory_bytes: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    # A crashing parser must not leave a core file holding document content.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main() -> None:
    memory_bytes, cpu_seconds = int(sys.argv[1]), int(sys.argv[2])
    _cap_resources(memory_bytes, cpu_seconds)
    # Imports are done: from now on the parent's clock measures parsing only.
    sys.stdout.write(READY + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        reply = handle(json.loads(line))
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
