"""Secrets at rest: one small service that encrypts agent tokens and kubeconfigs.

Stored form: ``gpyenc:v1:<key id>:<Fernet token>`` (Fernet = AES-128-CBC + HMAC-SHA256,
from the cryptography package). The key is derived with HKDF-SHA256 from the server
secret (GPUYARD_SECRET_KEY, or the generated ``secret.key`` file, mode 0600), so there is
one secret to back up. The key id (8 hex characters of a digest of the key) says which
key wrote a value: after a rotation, the old secrets listed in
GPUYARD_PREVIOUS_SECRET_KEYS still decrypt what they wrote, and :meth:`SecretBox.rotate`
re-encrypts a value under the current key.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_MAGIC = "gpyenc"
_VERSION = "v1"
_HKDF_INFO = b"gpuyard secret box v1"


class SecretUnreadable(Exception):
    """A stored secret that no configured key can decrypt (wrong key, or tampered)."""


def _derive(secret: str) -> bytes:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret.encode()
    )
    return base64.urlsafe_b64encode(raw)


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"gpuyard key id" + key).hexdigest()[:8]


class SecretBox:
    def __init__(self, secret: str, previous_secrets: Sequence[str] = ()) -> None:
        current = _derive(secret)
        self.key_id = _key_id(current)
        self._fernet = Fernet(current)
        self._by_id: dict[str, Fernet] = {self.key_id: self._fernet}
        for old in previous_secrets:
            key = _derive(old)
            self._by_id.setdefault(_key_id(key), Fernet(key))

    def encrypt(self, plaintext: str) -> str:
        token = self._fernet.encrypt(plaintext.encode()).decode()
        return f"{_MAGIC}:{_VERSION}:{self.key_id}:{token}"

    def decrypt(self, stored: str) -> str:
        magic, version, key_id, token = _split(stored)
        if magic != _MAGIC or version != _VERSION:
            raise SecretUnreadable(f"not a gpuyard {_VERSION} encrypted value")
        fernet = self._by_id.get(key_id)
        if fernet is None:
            raise SecretUnreadable(
                f"encrypted with key {key_id}, which is not configured "
                "(set GPUYARD_PREVIOUS_SECRET_KEYS after rotating GPUYARD_SECRET_KEY)"
            )
        try:
            return fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable(f"value encrypted with key {key_id} fails its check") from exc

    def is_current(self, stored: str) -> bool:
        return _split(stored)[2] == self.key_id

    def rotate(self, stored: str) -> str:
        """The same secret, encrypted under the current key."""
        return stored if self.is_current(stored) else self.encrypt(self.decrypt(stored))


def _split(stored: str) -> tuple[str, str, str, str]:
    parts = stored.split(":", 3)
    if len(parts) != 4:
        raise SecretUnreadable("not a gpuyard encrypted value")
    return parts[0], parts[1], parts[2], parts[3]
