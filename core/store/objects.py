"""Object storage: whole objects by name, in a local directory or an S3-compatible bucket. Torch-free.

Everything filterviz keeps besides Redis (pictures, the jobs' lists of them, uploads, cache entries)
goes through the few operations of :class:`ObjectStorage`: put a whole object, get it, head it,
delete it, list by prefix. A name is a relative path of lowercase segments (``pictures/<sha256>``,
``<job id>/pictures``), checked before any path or key is built. A reader sees an object whole or not
at all: locally a write goes to a temporary file that is renamed, on S3 it is one PUT.

When an object was last *used* is not the storage's business (S3 cannot touch an object): it is kept
in Redis (core.store.last_use); an object only says when it was written.
"""

import errno
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.errors import StorageError

if TYPE_CHECKING:
    from core.settings import Settings

_NAME = re.compile(r"^[a-z0-9_]+(\.png|\.webp)?(/[a-z0-9_]+(\.png|\.webp)?)*$")
_TEMPORARY = ".tmp-"
_CLIENTS: dict[tuple[object, ...], Any] = {}  # see s3_client
_REASONS = {  # why a write failed, in words
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


@dataclass(frozen=True)
class StoredObject:
    name: str
    size: int
    written_at: float  # epoch seconds


class ObjectStorage(Protocol):
    location: str  # where the objects are, in words for messages: a directory or s3://bucket/prefix

    def put(self, name: str, data: bytes) -> None:
        """Store ``data`` so that readers see either nothing (or the old object) or all of it;
        StorageError if it cannot."""

    def get(self, name: str) -> bytes | None:
        """The object's bytes, or None."""

    def head(self, name: str) -> StoredObject | None: ...

    def delete(self, name: str) -> None:
        """Remove the object; one that is not there is fine."""

    def list(self, prefix: str = "") -> list[StoredObject]:
        """Every object whose name starts with ``prefix`` (``""`` or ending in ``/``)."""

    def discard_temporaries(self, older_than_seconds: float) -> int:
        """Remove what writers that died mid-write left behind; returns how many."""

    def presigned_url(self, name: str, seconds: int, media_type: str, cache_control: str) -> str:
        """A URL that serves the object for ``seconds`` without credentials; StorageError where there is none."""


class LocalStorage:
    """Objects as files under ``root``; writes go to a temporary file, then ``os.replace``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        for attempt in range(2):  # a concurrent delete may remove the empty folder between mkdir and the write
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_then_rename(path, data)
                return
            except FileNotFoundError:
                if attempt:
                    raise StorageError(f"cannot store files under {self.root}: its folders keep vanishing") from None
            except OSError as exc:
                self._remove_empty(path.parent)  # a failed write leaves no folder behind either
                raise StorageError(_storage_failure(self.root, exc)) from None

    def get(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):  # a file where a folder should be holds no object either
            return None

    def head(self, name: str) -> StoredObject | None:
        try:
            stat = self._path(name).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return StoredObject(name, stat.st_size, stat.st_mtime)

    def delete(self, name: str) -> None:
        path = self._path(name)
        path.unlink(missing_ok=True)
        self._remove_empty(path.parent)  # empty folders go with their last object

    def _remove_empty(self, folder: Path) -> None:
        """Remove ``folder`` and the folders above it (below the root) while they are empty."""
        for empty in (folder, *folder.parents):
            if self.root not in empty.parents:
                return
            try:
                empty.rmdir()
            except OSError:  # not empty, not a folder, or gone: stop here
                return

    def list(self, prefix: str = "") -> list[StoredObject]:
        found = []
        for folder, _, files in os.walk(self.root / prefix if prefix else self.root):
            for file in files:
                name = Path(folder, file).relative_to(self.root).as_posix()
                if _NAME.match(name) and (stored := self.head(name)) is not None:  # temporaries do not match
                    found.append(stored)
        return found

    def discard_temporaries(self, older_than_seconds: float) -> int:
        cutoff, removed = time.time() - older_than_seconds, 0
        for path in self.root.rglob(f"{_TEMPORARY}*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    self._remove_empty(path.parent)
                    removed += 1
            except FileNotFoundError:  # its writer finished (renamed it) meanwhile
                pass
        return removed

    def presigned_url(self, name: str, seconds: int, media_type: str, cache_control: str) -> str:
        raise StorageError(f"files under {self.root} have no URLs of their own: set FILTERVIZ_PICTURE_DELIVERY=stream")

    def _path(self, name: str) -> Path:
        return self.root / checked_name(name)


class S3Storage:
    """Objects in an S3-compatible bucket under ``prefix``; each written by one PUT, so never seen in part."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        """``client``: a boto3 S3 client (thread-safe, shared by the storages of one process)."""
        self._client, self._bucket, self._prefix = client, bucket, prefix
        self.location = f"s3://{bucket}/{prefix}"

    def put(self, name: str, data: bytes) -> None:
        try:
            self._client.put_object(Bucket=self._bucket, Key=self._key(name), Body=data)
        except _client_errors() as exc:
            raise StorageError(f"cannot store files in {self.location}: {exc}") from None

    def get(self, name: str) -> bytes | None:
        try:
            return self._client.get_object(Bucket=self._bucket, Key=self._key(name))["Body"].read()
        except _client_errors() as exc:
            if _not_found(exc):
                return None
            raise StorageError(f"cannot read {name} from {self.location}: {exc}") from None

    def head(self, name: str) -> StoredObject | None:
        try:
            facts = self._client.head_object(Bucket=self._bucket, Key=self._key(name))
        except _client_errors() as exc:
            if _not_found(exc):
                return None
            raise StorageError(f"cannot read {name} from {self.location}: {exc}") from None
        return StoredObject(name, facts["ContentLength"], facts["LastModified"].timestamp())

    def delete(self, name: str) -> None:
        try:
            self._client.delete_object(Bucket=self._bucket, Key=self._key(name))
        except _client_errors() as exc:
            raise StorageError(f"cannot delete {name} from {self.location}: {exc}") from None

    def list(self, prefix: str = "") -> list[StoredObject]:
        found = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=self._prefix + prefix
            )
            for page in pages:
                for facts in page.get("Contents", []):
                    name = facts["Key"][len(self._prefix) :]
                    if _NAME.match(name):
                        found.append(StoredObject(name, facts["Size"], facts["LastModified"].timestamp()))
        except _client_errors() as exc:
            raise StorageError(f"cannot list {self.location}{prefix}: {exc}") from None
        return found

    def discard_temporaries(self, older_than_seconds: float) -> int:
        return 0  # a single PUT leaves nothing behind when its writer dies

    def presigned_url(self, name: str, seconds: int, media_type: str, cache_control: str) -> str:
        params = {
            "Bucket": self._bucket,
            "Key": self._key(name),
            "ResponseContentType": media_type,
            "ResponseCacheControl": cache_control,
        }
        return str(self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds))

    def _key(self, name: str) -> str:
        return self._prefix + checked_name(name)


def checked_name(name: str) -> str:
    """``name`` if it is an object name (lowercase segments, no ``..``, nothing absolute); else ValueError."""
    if not _NAME.match(name):
        raise ValueError(f"object name {name!r} is not allowed")
    return name


def object_storages(settings: "Settings") -> tuple[ObjectStorage, ObjectStorage, ObjectStorage]:
    """Where results (and every picture), uploads and cache entries are kept, by the settings' backend."""
    if settings.storage_backend == "local":
        return LocalStorage(settings.storage_dir), LocalStorage(settings.upload_dir), LocalStorage(settings.cache_dir)
    assert settings.s3_bucket is not None  # the settings refuse s3 without a bucket
    client = s3_client(settings)
    prefix = settings.s3_prefix.strip("/") + "/" if settings.s3_prefix.strip("/") else ""
    return tuple(S3Storage(client, settings.s3_bucket, f"{prefix}{part}/") for part in ("results", "uploads", "cache"))  # type: ignore[return-value]


def s3_client(settings: "Settings") -> Any:
    """A boto3 S3 client from the settings; credentials left unset come from boto3's own chain.

    One per process and configuration: making one costs a good part of a second, and a client is
    thread-safe, but not to be shared across a fork (its connections would be), hence the process id."""
    secret = settings.s3_secret_access_key
    key: tuple[object, ...] = (os.getpid(), settings.s3_endpoint_url, settings.s3_region, settings.s3_addressing_style)
    key += (settings.s3_access_key_id, secret.get_secret_value() if secret is not None else None)
    if key not in _CLIENTS:
        _CLIENTS[key] = _new_s3_client(settings)
    return _CLIENTS[key]


def _new_s3_client(settings: "Settings") -> Any:
    import boto3  # only where S3 is configured
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",  # presigned URLs too (botocore would sign those with the retired V2)
        s3={"addressing_style": settings.s3_addressing_style},
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=30,
    )
    secret = settings.s3_secret_access_key
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret is not None else None,
        config=config,
    )


def _client_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return BotoCoreError, ClientError


def _not_found(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


def _write_then_rename(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one; a failed write leaves no temporary behind."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=_TEMPORARY)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _storage_failure(root: Path, exc: OSError) -> str:
    reason = _REASONS.get(exc.errno or 0, exc.strerror or str(exc))
    return f"cannot store files under {root}: {reason} ({type(exc).__name__})"
