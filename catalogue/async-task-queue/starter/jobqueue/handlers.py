"""Job handlers. The queue delivers every job at least once: a handler may run again after a
crash, a lease expiry or a retry, possibly after having partly succeeded the first time."""

from __future__ import annotations

import io
import uuid
from typing import Protocol

import asyncpg
from PIL import Image

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


def registry(pool: asyncpg.Pool, storage: Storage) -> dict[str, Handler]:
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

        image = Image.open(io.BytesIO(original))
        image.thumbnail((THUMBNAIL_WIDTH, THUMBNAIL_WIDTH * 4))
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=82)

        key = f"thumbnails/{document_id}/{uuid.uuid4()}.jpg"
        await storage.put(key, out.getvalue(), content_type="image/jpeg")
        await pool.execute(
            "INSERT INTO document_thumbnails (document_id, storage_key, width)"
            " VALUES ($1, $2, $3)",
            document_id,
            key,
            image.width,
        )

    return {"make_thumbnail": make_thumbnail}
