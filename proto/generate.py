"""Generate strongroom.v1 (messages, gRPC stubs, type stubs) from the protos."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generate() -> None:
    from grpc_tools import protoc

    sources = sorted(str(p) for p in (ROOT / "proto").rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{ROOT / 'proto'}",
        f"-I{include}",
        f"--python_out={ROOT}",
        f"--grpc_python_out={ROOT}",
        f"--pyi_out={ROOT}",
        *sources,
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed to compile proto/strongroom/v1")
    (ROOT / "strongroom" / "v1" / "__init__.py").touch()


if __name__ == "__main__":
    generate()
