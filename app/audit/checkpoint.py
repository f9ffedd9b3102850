"""Signed checkpoints of the chain head, to be kept away from the database.

A checkpoint says "entry N had hash H", signed with an Ed25519 key (as CloudTrail signs its
digest files and transparency logs sign their tree heads). Whoever can rewrite the database
can recompute a whole chain, or cut off its newest entries, and the chain alone will not show
it; a checkpoint stored elsewhere will, as long as the signing key is not on the same machine
the attacker controls. `verify --checkpoint FILE` checks the signature with a public key the
operator trusts, then that the chain still passes through (N, H).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.audit.verify import Anchor

FORMAT = "roledesk-audit-checkpoint/1"


class CheckpointError(Exception):
    """A checkpoint file or key that cannot be trusted or read."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    created_at: str
    public_key: str  # base64 of the raw 32-byte Ed25519 public key
    signature: str  # base64

    @property
    def anchor(self) -> Anchor:
        return Anchor(self.seq, self.hash)

    @property
    def key_fingerprint(self) -> str:
        return fingerprint(base64.b64decode(self.public_key))


def fingerprint(raw_public_key: bytes) -> str:
    return "SHA256:" + hashlib.sha256(raw_public_key).hexdigest()[:32]


def _signed_bytes(seq: int, head_hash: str, created_at: str) -> bytes:
    body = {"format": FORMAT, "seq": seq, "hash": head_hash, "created_at": created_at}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def generate_key(path: Path) -> Path:
    """Write a new private key (PEM, mode 0600) to `path` and its public key to `path.pub`."""
    if path.exists():
        raise CheckpointError(f"{path} exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public = path.with_name(path.name + ".pub")
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"cannot read the private key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key PEM, or the public half of a private key PEM."""
    try:
        data = path.read_bytes()
        if b"PRIVATE KEY" in data:
            return load_private_key(path).public_key()
        key = serialization.load_pem_public_key(data)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read the public key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{path} is not an Ed25519 public key")
    return key


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sign(head: Anchor, key: Ed25519PrivateKey, now: datetime | None = None) -> Checkpoint:
    created_at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = key.sign(_signed_bytes(head.seq, head.hash, created_at))
    return Checkpoint(
        seq=head.seq,
        hash=head.hash,
        created_at=created_at,
        public_key=base64.b64encode(_raw(key.public_key())).decode(),
        signature=base64.b64encode(signature).decode(),
    )


def dumps(checkpoint: Checkpoint) -> str:
    body: dict[str, Any] = {"format": FORMAT, **checkpoint.__dict__}
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


def read(path: Path, trusted: Ed25519PublicKey | None = None) -> Checkpoint:
    """Read and check a checkpoint file's signature.

    With `trusted`, the signature must be by that key. Without it, by the key named in the
    file: that proves only that the file is intact, so callers should show the fingerprint.
    """
    try:
        raw = json.loads(path.read_text())
        checkpoint = Checkpoint(
            seq=int(raw["seq"]),
            hash=str(raw["hash"]),
            created_at=str(raw["created_at"]),
            public_key=str(raw["public_key"]),
            signature=str(raw["signature"]),
        )
        if raw.get("format") != FORMAT:
            raise CheckpointError(f"{path} is not a RoleDesk audit checkpoint")
        embedded = Ed25519PublicKey.from_public_bytes(base64.b64decode(checkpoint.public_key))
        signature = base64.b64decode(checkpoint.signature)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"cannot read the checkpoint {path}: {exc}") from exc
    key = trusted or embedded
    if trusted is not None and _raw(trusted) != _raw(embedded):
        raise CheckpointError(f"{path} was signed by another key ({checkpoint.key_fingerprint})")
    try:
        key.verify(signature, _signed_bytes(checkpoint.seq, checkpoint.hash, checkpoint.created_at))
    except InvalidSignature as exc:
        raise CheckpointError(f"{path}: the signature does not match its contents") from exc
    return checkpoint
