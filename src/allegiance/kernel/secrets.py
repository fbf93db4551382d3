"""API keys and passwords. Keys are random 32-byte secrets, so SHA-256 is enough to store them;
passwords are human-chosen, so they get scrypt with a per-user salt."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

KEY_PREFIX = "alg"


def new_api_key() -> tuple[str, str, str]:
    """Return (full key shown once, lookup prefix, hash to store)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"{KEY_PREFIX}_{prefix}_{secret}", prefix, hash_secret(secret)


def split_api_key(key: str) -> tuple[str, str] | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def hash_password(password: str, *, n: int = 2**14) -> str:
    salt = secrets.token_bytes(16)
    derived = hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, dklen=32)
    return f"scrypt${n}${base64.b64encode(salt).decode()}${base64.b64encode(derived).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, salt, derived = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=8, p=1, dklen=32)
    return hmac.compare_digest(candidate, base64.b64decode(derived))
