"""Encryption at rest for destination secrets (Fernet, key derived from the app's key)."""
import base64
import functools
import json

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


class SecretsUnreadable(Exception):
    """Stored secrets cannot be decrypted: the encryption key changed."""


@functools.lru_cache(maxsize=8)  # derived once per key, not once per secret read (every send reads its secrets)
def _fernet(key_material: str) -> Fernet:
    # HKDF with a fixed context: the SECRET_KEY signs cookies, this derived key only encrypts options
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"herald destination secrets").derive(
        key_material.encode()
    )
    return Fernet(base64.urlsafe_b64encode(raw))


def _current_fernet() -> Fernet:
    cfg = current_app.config
    return _fernet(cfg.get("HERALD_ENCRYPTION_KEY") or cfg["SECRET_KEY"])


def encrypt_json(value: dict) -> str:
    return _current_fernet().encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()


def decrypt_json(token: str | None) -> dict:
    if not token:
        return {}
    try:
        return json.loads(_current_fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise SecretsUnreadable("stored secrets cannot be decrypted with the current key") from exc
