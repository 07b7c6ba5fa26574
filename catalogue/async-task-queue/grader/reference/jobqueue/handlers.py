"""Job handlers. The queue delivers every job at least once: a handler may run again after a
crash, a lease expiry or a retry, possibly after having partly succeeded the first time."""

from __future__ import annotations

from typing import Protocol

from . import pg
from .imaging import render_thumbnail
from .worker import Handler, Job, PermanentError, TransientError

THUMBNAIL_WIDTH = 320


class StorageUnavailable(Exception):
    pass


class Storage(Protocol):
    """S3-compatible object storage."""

    async def get(self, key: str) -> bytes:
        """Raises KeyError if the object does not exist, StorageUnavailable on 5xx or timeout."""
        ...

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Creates or overwrites the object."""
        ...


class S3Storage:
    """The production client (not included in this exercise)."""

    @classmethod
    def from_env(cls) -> Storage:
        raise NotImplementedError


class MemoryStorage:
    """An in-memory Storage for tests: `objects` maps keys to (data, content_type)."""

    def __init__(self):
        self.objects: dict[str, tuple[bytes, str]] = {}

    async def get(self, key: str) -> bytes:
        return self.objects[key][0]

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self.objects[key] = (data, content_type)


def registry(pool: pg.Pool, storage: Storage) -> dict[str, Handler]:
    async def make_thumbnail(job: Job) -> None:
        document_id = job.payload["document_id"]
        doc = await pool.fetchrow(
            "SELECT storage_key, content_type FROM documents WHERE id = $1", document_id
        )
        if doc is None:
            raise PermanentError(f"document {document_id} no longer exists")
        if not doc["content_type"].startswith("image/"):
            raise PermanentError(f"cannot make a thumbnail of {doc['content_type']}")
        try:
            original = await storage.get(doc["storage_key"])
        except StorageUnavailable as exc:
            raise TransientError(str(exc)) from exc

        try:
            thumbnail, width = render_thumbnail(original, THUMBNAIL_WIDTH)
        except ValueError as exc:  # a malformed file will not get better on retry
            raise PermanentError(f"document {document_id}: {exc}") from exc

        # Idempotent under redelivery: a deterministic object key (a rerun overwrites the same
        # object) and an upsert (a rerun updates the same row).
        key = f"thumbnails/{document_id}/w{THUMBNAIL_WIDTH}.jpg"
        await storage.put(key, thumbnail, content_type="image/jpeg")
        await pool.execute(
            "INSERT INTO document_thumbnails (document_id, storage_key, width)"
            " VALUES ($1, $2, $3)"
            " ON CONFLICT (document_id) DO UPDATE"
            " SET storage_key = EXCLUDED.storage_key, width = EXCLUDED.width, created_at = now()",
            document_id,
            key,
            width,
        )

    return {"make_thumbnail": make_thumbnail}
