"""Object URLs that work in an ``<img>`` tag: no credentials, a limited lifetime.

* local storage: ``{OPENMPS_OBJECT_URL_BASE}/{bucket}/{key}?expires={epoch s}&signature={sig}``,
  where ``sig`` is HMAC-SHA256 (URL-safe base64) over ``"{bucket}/{key}\\n{expires}"`` with a key
  derived from the first ``OPENMPS_SECRET_KEY`` (every configured key verifies, so a rotation
  does not break URLs already handed out). ``GET /objects/...`` (``app.web.objects``) checks it.
* S3: presigned GET URLs (SigV4 query signing by the minio client). With
  ``OPENMPS_OBJECT_URL_BASE`` set they are signed for that host (what consumers reach, e.g. a
  public MinIO name), else for ``OPENMPS_S3_ENDPOINT``.

Lifetime: ``OPENMPS_URL_TTL_S`` (S3 allows at most 7 days).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from urllib.parse import quote, urlsplit

import urllib3
from minio import Minio
from minio.error import S3Error

from app.core.errors import Unavailable
from app.core.ports import ObjectUrls
from app.settings import Settings
from app.storage.objects import ObjectStore, S3ObjectStore
from app.storage.secretbox import check_keys, derive

URL_INFO = b"openmps object urls v1"
MAX_TTL_S = 7 * 24 * 3600  # S3's limit for presigned URLs; the same for local ones


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


class LocalSignedUrls:
    def __init__(
        self, base: str, secret_keys: Sequence[str], ttl_s: int, *, clock: Callable[[], float] = time.time
    ) -> None:
        check_keys(secret_keys)
        self.base = base.rstrip("/")
        self.keys = [derive(k, URL_INFO) for k in secret_keys]
        self.ttl_s = ttl_s
        self.clock = clock

    @staticmethod
    def _sign(key: bytes, bucket: str, object_key: str, expires: int) -> str:
        text = f"{bucket}/{object_key}\n{expires}".encode()
        return _b64(hmac.new(key, text, hashlib.sha256).digest())

    def url(self, bucket: str, key: str) -> str:
        expires = int(self.clock()) + self.ttl_s
        signature = self._sign(self.keys[0], bucket, key, expires)
        return f"{self.base}/{quote(bucket)}/{quote(key, safe='/')}?expires={expires}&signature={signature}"

    def refusal(self, bucket: str, key: str, expires: str, signature: str) -> str | None:
        """Why a signed read is refused (None: it is valid)."""
        if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
            return "the URL's expires parameter is not valid"
        if int(expires) < self.clock():
            return "the URL has expired"
        for k in self.keys:
            if hmac.compare_digest(self._sign(k, bucket, key, int(expires)), signature):
                return None
        return "the URL's signature does not match"


class S3PresignedUrls:
    def __init__(self, client: Minio, ttl_s: int) -> None:
        self.client = client
        self.ttl = timedelta(seconds=ttl_s)

    def url(self, bucket: str, key: str) -> str:
        """Signing is local, except that without ``OPENMPS_S3_REGION`` the client asks the server
        for the bucket's region once (then caches it): that call can fail."""
        try:
            return str(self.client.presigned_get_object(bucket, key, expires=self.ttl))
        except (S3Error, urllib3.exceptions.HTTPError, ValueError) as exc:
            raise Unavailable(f"object storage did not answer while signing a URL: {exc}") from exc


def object_urls(settings: Settings, store: ObjectStore) -> ObjectUrls:
    """The URL builder ``OPENMPS_STORAGE`` calls for (see the module docstring)."""
    if not 1 <= settings.url_ttl_s <= MAX_TTL_S:
        raise ValueError(f"OPENMPS_URL_TTL_S must be in [1, {MAX_TTL_S}], got {settings.url_ttl_s}")
    if settings.storage == "s3":
        if not isinstance(store, S3ObjectStore):
            raise TypeError("s3 storage needs an S3ObjectStore")
        client = store.client
        if settings.object_url_base:
            public = urlsplit(settings.object_url_base)
            client = Minio(
                public.netloc,
                access_key=settings.s3_access_key,
                secret_key=settings.s3_secret_key,
                region=settings.s3_region or "us-east-1",  # signing for another host must not ask it
                secure=public.scheme == "https",
            )
        return S3PresignedUrls(client, settings.url_ttl_s)
    return LocalSignedUrls(settings.effective_object_url_base, settings.secret_keys, settings.url_ttl_s)
