"""Paperwell's job queue: PostgreSQL-backed jobs (`worker.Queue`) and an asyncio worker
(`worker.Worker`) running the handlers in `handlers.py`."""
