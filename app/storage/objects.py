"""Object storage behind one small interface, with two backends chosen by one setting.

``s3`` speaks to MinIO, AWS S3 or any S3-compatible server through the ``minio`` client;
``local`` keeps objects as files under a directory, one sub-directory per bucket (the embedded
default). Decoders never download whole inputs: ``media_locator`` gives them a path (local) or a
presigned URL (s3) that they read with range requests.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, Protocol

import urllib3
from minio import Minio
from minio.error import S3Error

from app.core.errors import FailureCode, JobFailure, Unavailable

_CHUNK = 1 << 20
_NOT_FOUND_CODES = {"NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound"}


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int


class ObjectStore(Protocol):
    def bucket_exists(self, bucket: str) -> bool: ...
    def make_bucket(self, bucket: str) -> None: ...
    def stat(self, bucket: str, key: str) -> ObjectInfo | None: ...
    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None: ...
    def put_stream(self, bucket: str, key: str, stream: BinaryIO, length: int, content_type: str) -> int: ...
    def get(self, bucket: str, key: str) -> bytes: ...
    def delete(self, bucket: str, key: str) -> None: ...
    def list_keys(self, bucket: str, prefix: str = "") -> list[str]: ...
    def media_locator(self, bucket: str, key: str) -> str:
        """A path or URL a decoder can open and seek (HTTP range requests for URLs)."""
        ...


def _safe_part(part: str, what: str) -> str:
    if not part or part in {".", ".."} or "/" in part or "\\" in part or "\x00" in part:
        raise ValueError(f"invalid {what}: {part!r}")
    return part


class LocalObjectStore:
    """Buckets are directories under ``root``; keys map to relative paths (no escaping root)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _bucket_dir(self, bucket: str) -> Path:
        return self.root / _safe_part(bucket, "bucket")

    def _path(self, bucket: str, key: str) -> Path:
        parts = [_safe_part(p, "key segment") for p in key.split("/") if p != ""]
        if not parts:
            raise ValueError(f"invalid key: {key!r}")
        return self._bucket_dir(bucket).joinpath(*parts)

    def bucket_exists(self, bucket: str) -> bool:
        try:
            return self._bucket_dir(bucket).is_dir()
        except (ValueError, OSError):  # OSError: a name the file system refuses (ENAMETOOLONG)
            return False

    def make_bucket(self, bucket: str) -> None:
        self._bucket_dir(bucket).mkdir(parents=True, exist_ok=True)

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            path = self._path(bucket, key)
            if not path.is_file():
                return None
            return ObjectInfo(bucket, key, path.stat().st_size)
        except (ValueError, OSError):  # a name no file can have is an object that does not exist
            return None

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        if not self.bucket_exists(bucket):
            raise JobFailure(FailureCode.OUTPUT_WRITE_FAILED, f"output bucket {bucket!r} does not exist")
        try:
            path = self._path(bucket, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write-then-rename so a reader never sees half an image and a re-run overwrites cleanly.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except (ValueError, OSError) as exc:  # the message names the object, never a server path
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "invalid name"
            raise JobFailure(FailureCode.OUTPUT_WRITE_FAILED, f"cannot write {bucket}/{key}: {reason}") from exc

    def put_stream(self, bucket: str, key: str, stream: BinaryIO, length: int, content_type: str) -> int:
        """Copy ``length`` bytes in chunks into a temporary file beside the object, then rename."""
        if not self.bucket_exists(bucket):
            raise JobFailure(FailureCode.OUTPUT_WRITE_FAILED, f"output bucket {bucket!r} does not exist")
        try:
            path = self._path(bucket, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        except (ValueError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "invalid name"
            raise JobFailure(FailureCode.OUTPUT_WRITE_FAILED, f"cannot write {bucket}/{key}: {reason}") from exc
        written = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                while written < length:
                    chunk = stream.read(min(_CHUNK, length - written))
                    if not chunk:
                        break
                    fh.write(chunk)
                    written += len(chunk)
            if written != length:
                raise JobFailure(FailureCode.OUTPUT_WRITE_FAILED, f"upload of {bucket}/{key} ended at {written} bytes")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return written

    def get(self, bucket: str, key: str) -> bytes:
        info = self.stat(bucket, key)
        if info is None:
            raise JobFailure(FailureCode.INPUT_NOT_FOUND, f"object {bucket}/{key} does not exist")
        return self._path(bucket, key).read_bytes()

    def delete(self, bucket: str, key: str) -> None:
        try:
            self._path(bucket, key).unlink(missing_ok=True)
        except (ValueError, OSError):  # no such name can exist; a directory is not an object
            return

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        base = self._bucket_dir(bucket)
        if not base.is_dir():
            return []
        keys = [
            p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")
        ]
        return sorted(k for k in keys if k.startswith(prefix))

    def media_locator(self, bucket: str, key: str) -> str:
        if self.stat(bucket, key) is None:
            raise JobFailure(FailureCode.INPUT_NOT_FOUND, f"input object {bucket}/{key} does not exist")
        return str(self._path(bucket, key))


class S3ObjectStore:
    """Any S3-compatible server through the ``minio`` client."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        *,
        region: str | None = None,
        secure: bool = False,
        presign_ttl: timedelta = timedelta(hours=6),
    ) -> None:
        # Short timeouts and a few retries: a transient storage error should surface as
        # StorageTransient (retried by the task) rather than hang a worker.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60),
            retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        self.client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, region=region, secure=secure, http_client=http
        )
        self.presign_ttl = presign_ttl

    def bucket_exists(self, bucket: str) -> bool:
        """False only for a bucket that is not there; any other answer (denied, 5xx, no answer)
        is a storage error, not a verdict on the bucket."""
        try:
            return bool(self.client.bucket_exists(bucket))
        except ValueError:  # not a valid bucket name: it cannot exist
            return False
        except (S3Error, urllib3.exceptions.HTTPError) as exc:
            raise _transient(exc) from exc

    def make_bucket(self, bucket: str) -> None:
        if not self.client.bucket_exists(bucket):
            self.client.make_bucket(bucket)

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            st = self.client.stat_object(bucket, key)
        except S3Error as exc:
            if exc.code in _NOT_FOUND_CODES:
                return None
            raise _transient(exc) from exc
        except ValueError:
            return None
        except urllib3.exceptions.HTTPError as exc:
            raise _transient(exc) from exc
        return ObjectInfo(bucket, key, int(st.size or 0))

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        try:
            self.client.put_object(bucket, key, io.BytesIO(data), len(data), content_type=content_type)
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                raise JobFailure(FailureCode.OUTPUT_WRITE_FAILED, f"output bucket {bucket!r} does not exist") from exc
            raise _transient(exc) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise _transient(exc) from exc

    def put_stream(self, bucket: str, key: str, stream: BinaryIO, length: int, content_type: str) -> int:
        try:
            self.client.put_object(bucket, key, stream, length, content_type=content_type)
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                raise JobFailure(FailureCode.OUTPUT_WRITE_FAILED, f"output bucket {bucket!r} does not exist") from exc
            raise _transient(exc) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise _transient(exc) from exc
        return length

    def get(self, bucket: str, key: str) -> bytes:
        try:
            resp = self.client.get_object(bucket, key)
        except S3Error as exc:
            if exc.code in _NOT_FOUND_CODES:
                raise JobFailure(FailureCode.INPUT_NOT_FOUND, f"object {bucket}/{key} does not exist") from exc
            raise _transient(exc) from exc
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def delete(self, bucket: str, key: str) -> None:
        try:
            self.client.remove_object(bucket, key)
        except S3Error as exc:
            if exc.code not in _NOT_FOUND_CODES:
                raise _transient(exc) from exc

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        return sorted(
            o.object_name for o in self.client.list_objects(bucket, prefix=prefix, recursive=True) if o.object_name
        )

    def media_locator(self, bucket: str, key: str) -> str:
        if self.stat(bucket, key) is None:
            raise JobFailure(FailureCode.INPUT_NOT_FOUND, f"input object {bucket}/{key} does not exist")
        return self.client.presigned_get_object(bucket, key, expires=self.presign_ttl)


def _transient(exc: Exception) -> JobFailure:
    return JobFailure(FailureCode.STORAGE_TRANSIENT, f"object storage error: {exc}", transient=True)


class StoreCatalog:
    """Adapts an ObjectStore to the core's ``ObjectCatalog`` port (submission-time checks)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def bucket_exists(self, bucket: str) -> bool:
        try:
            return self.store.bucket_exists(bucket)
        except JobFailure as exc:
            raise Unavailable(f"object storage did not answer: {exc.message}") from exc

    def object_exists(self, bucket: str, key: str) -> bool:
        try:
            return self.store.stat(bucket, key) is not None
        except JobFailure as exc:
            raise Unavailable(f"object storage did not answer: {exc.message}") from exc

    def delete_object(self, bucket: str, key: str) -> None:
        try:
            self.store.delete(bucket, key)
        except JobFailure as exc:
            raise Unavailable(f"object storage did not answer: {exc.message}") from exc


class StoreUploads:
    """Adapts an ObjectStore to the core's ``ObjectUploads`` port (``PUT /api/v1/objects/...``)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def put_stream(self, bucket: str, key: str, stream: BinaryIO, length: int, content_type: str) -> int:
        try:
            return self.store.put_stream(bucket, key, stream, length, content_type)
        except JobFailure as exc:
            raise Unavailable(f"object storage did not take the upload: {exc.message}") from exc
