"""Bytes read for one frame near the end of a large object on a moto S3 server (loopback).

The object is uploaded with the minio client, read through a presigned URL by the worker's own
path (``open_input`` -> bounded Range reader -> PyAV), and the reader's byte counter is divided
by the object size.
"""

from __future__ import annotations

from pathlib import Path

from minio import Minio

from app.core.specs import OutputSize
from app.storage.objects import S3ObjectStore
from tests.servers import S3Server
from workers.frames.capture import Budget, PyAVDecoder
from workers.frames.plan import choose_seek, frame_at
from workers.frames.probe import open_input


def range_read_fraction(path: Path, at: float = 0.95) -> tuple[float, int, int]:
    """(fraction, bytes read, object size) for one exact frame at ``at`` of the duration."""
    server = S3Server()
    server.start()
    try:
        client = Minio(server.endpoint, server.access_key, server.secret_key, secure=False, region=server.region)
        client.make_bucket("bench-range")
        client.fput_object("bench-range", "big.mp4", str(path), content_type="video/mp4", part_size=64 << 20)
        store = S3ObjectStore(server.endpoint, server.access_key, server.secret_key, region=server.region)
        url = store.media_locator("bench-range", "big.mp4")
        opened = open_input(url, max_frame_pixels=1 << 30)
        reader = opened.reader
        assert reader is not None
        dec = PyAVDecoder(opened, Budget(100_000))
        try:
            table = dec.table
            frame = frame_at(table, at * table.duration_ms)
            dec.read(frame, choose_seek(table, None, frame), OutputSize(width=320))
        finally:
            dec.close()
        return reader.bytes_read / reader.size, reader.bytes_read, reader.size
    finally:
        server.stop()
