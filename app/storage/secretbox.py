"""Secrets at rest: access-key secrets, webhook secrets and the MNS push signing key, encrypted
in Redis with keys derived from ``OPENMPS_SECRET_KEY``.

They are sealed, not hashed, because every vendor signature scheme is an HMAC over the request
keyed with the plaintext secret: the gate must recompute it, so it must be able to read the
secret back. Someone who reads the Redis data (a dump, an AOF file, a replica) without the key
learns nothing about them.

``OPENMPS_SECRET_KEY`` is a comma-separated list: the first key seals, every key opens. Rotation:
put a new key first and keep the old one after it (``NEW,OLD``), restart, run
``openmps secrets rotate`` (re-seals every stored secret under ``NEW``), then drop ``OLD``.
Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) does the sealing; ``MultiFernet`` the
rotation. Each configured key is stretched with HKDF-SHA256 into independent keys per use (the
Fernet key here, the object-URL signing key in ``app.storage.urls``).

A stored value without the ``sealed:v1:`` prefix is a plaintext secret written before sealing
existed: it still opens (so an upgrade keeps every access key working) and ``secrets rotate``
seals it.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.settings import SettingsError

PREFIX = "sealed:v1:"
MIN_KEY_CHARS = 32
FERNET_INFO = b"openmps secrets at rest v1"


class SecretKeyError(RuntimeError):
    """The configured key cannot open a stored secret (a key that was dropped too early)."""


def generate_key() -> str:
    """A new ``OPENMPS_SECRET_KEY``: 32 random bytes, URL-safe base64 (43 characters)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii").rstrip("=")


def derive(key: str, info: bytes) -> bytes:
    """32 bytes for one use (``info``) from one configured key; uses never share key material."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key.encode("utf-8"))


def check_keys(keys: Sequence[str]) -> None:
    if not keys:
        raise SettingsError(
            "OPENMPS_SECRET_KEY is not set: secrets are stored encrypted with it. Generate one with "
            "`openmps secrets generate-key` (make up/demo create one in their data dir)"
        )
    for key in keys:
        if len(key) < MIN_KEY_CHARS:
            raise SettingsError(f"every OPENMPS_SECRET_KEY must be at least {MIN_KEY_CHARS} characters")


class SecretBox:
    """``app.core.ports.Sealer`` over MultiFernet."""

    def __init__(self, keys: Sequence[str]) -> None:
        check_keys(keys)
        self.fernet = MultiFernet([Fernet(base64.urlsafe_b64encode(derive(k, FERNET_INFO))) for k in keys])

    def seal(self, plaintext: str) -> str:
        return PREFIX + self.fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        if not sealed.startswith(PREFIX):
            return sealed  # plaintext from before sealing; `openmps secrets rotate` seals it
        try:
            return self.fernet.decrypt(sealed[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SecretKeyError(
                "a stored secret was sealed with a key that is not in OPENMPS_SECRET_KEY "
                "(keep the old key after the new one until `openmps secrets rotate` has run)"
            ) from None

    def reseal(self, stored: str) -> str:
        """The value sealed under the first key (plaintext from before sealing gets sealed)."""
        if not stored.startswith(PREFIX):
            return self.seal(stored)
        try:
            return PREFIX + self.fernet.rotate(stored[len(PREFIX) :].encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretKeyError("a stored secret was sealed with a key that is not in OPENMPS_SECRET_KEY") from None
