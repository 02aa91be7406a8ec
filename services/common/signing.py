"""Ed25519 keys for what Strongroom signs: audit checkpoints, export manifests.

A key is a PEM file made on first start (mode 0600) with its public half
beside it, unless the deployment mounts one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from strongroom.services.common.errors import InternalError


def load_signing_key(path: Path, purpose: str = "audit") -> Ed25519PrivateKey:
    """Read a signing key, creating one (and its public half) if absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        created = Ed25519PrivateKey.generate()
        pem = created.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
    loaded = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise InternalError(
            f"The {purpose} signing key is not an Ed25519 key.",
            code=f"{purpose}_key_invalid",
        )
    public = public_key_path(path)
    if not public.exists():
        # A key mounted read-only (a Kubernetes Secret) has no room for its
        # public half: the services hand that out themselves.
        with contextlib.suppress(OSError):
            public.write_bytes(public_pem(loaded.public_key()))
    return loaded


def public_key_path(private_key_path: Path) -> Path:
    return private_key_path.with_name(private_key_path.stem + ".pub.pem")


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def load_public_key(data: bytes, purpose: str = "audit") -> Ed25519PublicKey:
    key = load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise InternalError(
            f"The {purpose} public key is not an Ed25519 key.",
            code=f"{purpose}_key_invalid",
        )
    return key


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short name for a key: the start of its raw bytes' SHA-256."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]
