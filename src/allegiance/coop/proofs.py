"""Checks on an uploaded proof file, pure: decoded size, declared type on the allow-list, and the
bytes really being that type (a file's first bytes, not its name or the client's word, decide), so
an HTML page or a script cannot be stored as a "PDF" and served back later."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from allegiance.coop.errors import ProofRefused
from allegiance.coop.model import CoopSettings, ProofUpload

SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}


@dataclass(frozen=True)
class CheckedProof:
    filename: str
    content_type: str
    content: bytes
    sha256: str


def _looks_like(content_type: str, content: bytes) -> bool:
    if content_type == "image/webp":
        return content[:4] == b"RIFF" and content[8:12] == b"WEBP"
    signatures = SIGNATURES.get(content_type)
    return signatures is None or content.startswith(signatures)


def check(upload: ProofUpload, settings: CoopSettings) -> CheckedProof:
    content_type = upload.content_type.split(";")[0].strip().lower()
    if content_type not in settings.proof_types:
        raise ProofRefused(f"{content_type!r} is not accepted; send one of {settings.proof_types}",
                           field="content_type")
    try:
        content = base64.b64decode(upload.content_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProofRefused("is not valid base64", field="content_base64") from exc
    if not content:
        raise ProofRefused("the file is empty", field="content_base64")
    if len(content) > settings.proof_max_bytes:
        raise ProofRefused(f"the file has {len(content)} bytes; at most {settings.proof_max_bytes} are accepted",
                           field="content_base64", size=len(content), limit=settings.proof_max_bytes)
    if not _looks_like(content_type, content):
        raise ProofRefused(f"the file's content is not {content_type}", field="content_type")
    return CheckedProof(upload.filename, content_type, content, hashlib.sha256(content).hexdigest())
