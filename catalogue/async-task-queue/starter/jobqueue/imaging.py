"""Thumbnail rendering. In production this is Pillow; the exercise has no third-party packages, so
this stand-in returns deterministic bytes of the right shape instead of a real JPEG. It is not
part of the task."""

from __future__ import annotations

import hashlib


def render_thumbnail(original: bytes, width: int) -> tuple[bytes, int]:
    """Returns (JPEG bytes, width in pixels) of a thumbnail of `original`. Raises ValueError if the
    data is not an image (empty, in this stand-in)."""
    if not original:
        raise ValueError("cannot identify image file")
    return b"\xff\xd8\xff\xe0JFIF-thumb:" + hashlib.sha256(original).digest() + b"\xff\xd9", width
