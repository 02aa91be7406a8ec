"""Checking a copied export offline: the manifest's signature, then every
file against it. Needs nothing but the directory and the public key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from strongroom.services.common.signing import key_id
from strongroom.services.export.domain import MANIFEST_FILE, SIGNATURE_FILE

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Verification:
    files_checked: int
    problems: tuple[str, ...]
    export_id: str = ""
    name: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_directory(directory: Path, public_key: Ed25519PublicKey) -> Verification:
    """Every way the directory differs from what was signed, as problems."""
    try:
        manifest_bytes = (directory / MANIFEST_FILE).read_bytes()
        signature = json.loads((directory / SIGNATURE_FILE).read_bytes())
        manifest = json.loads(manifest_bytes)
    except (OSError, ValueError) as exc:
        return Verification(
            0, (f"manifest or signature unreadable: {type(exc).__name__}",)
        )
    problems = []
    try:
        public_key.verify(bytes.fromhex(signature["signature"]), manifest_bytes)
    except (InvalidSignature, ValueError, KeyError, TypeError):
        problems.append("the manifest's signature does not hold for this key")
    if signature.get("key_id") != key_id(public_key):
        problems.append("the manifest was signed with another key")
    listed = set()
    checked = 0
    for entry in manifest.get("files", []):
        name = str(entry.get("name", ""))
        if not _safe(name):
            problems.append(f"unsafe file name in the manifest: {name!r}")
            continue
        listed.add(name)
        path = directory / name
        if not path.is_file():
            problems.append(f"missing: {name}")
            continue
        size, digest = _digest(path)
        checked += 1
        if size != entry.get("size_bytes"):
            problems.append(f"size differs: {name}")
        elif digest != entry.get("sha256"):
            problems.append(f"content differs: {name}")
    for path in sorted(directory.rglob("*")):
        name = path.relative_to(directory).as_posix()
        if path.is_file() and name not in listed | {MANIFEST_FILE, SIGNATURE_FILE}:
            problems.append(f"not in the manifest: {name}")
    return Verification(
        checked,
        tuple(problems),
        export_id=str(manifest.get("export_id", "")),
        name=str(manifest.get("name", "")),
    )


def _safe(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts


def _digest(path: Path) -> tuple[int, str]:
    sha, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest()
