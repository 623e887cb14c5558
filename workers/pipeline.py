"""run_snapshot: the one function the Celery task calls. No Celery imports here.

Order of work: locate the input -> open it and read its frame table (no decoding) -> plan the
targets (pure) -> check the decode plan against the frame limit *before* decoding -> capture,
encode and upload each image in time order -> the tar archive -> sprites, storyboard and index.
Output keys are deterministic (``spec.output.key_for(job.id, n, requested_ms)``), so a re-run
overwrites rather than duplicates.

Every object written is recorded in the job's ``OutputLog`` right after it is stored (the job
store's written set, shared by all attempts). On cancellation exactly those are deleted, this
attempt's and an earlier crashed attempt's, before ``JobCanceled``: never an object that merely
shares a planned key (another job's, or one that was there before).

Failure messages are recorded on the job and shown to the client: ``public_message`` replaces
the server-side locator (a file path, or a presigned URL) with ``bucket/key`` (a URL input's own
URL with ``redact_url``: the worker logs the message too) and hides any other absolute path.

A URL input (``UrlSource``) is read only through ``workers/urlinput.py`` (the SSRF guard, size
and time limits); never by a decoder that would open the URL itself.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import tarfile
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import av.error
import cv2
import numpy as np

from app.core import outputs, templates
from app.core.errors import FailureCode, JobCanceled, JobFailure
from app.core.jobs import Manifest, OutputImage, SnapshotJob, SpriteSheet
from app.core.specs import FrameType, ImageFormat, SnapshotSpec, UrlSource, redact_url
from app.settings import Settings, usable_cpus
from app.storage.objects import ObjectStore
from workers.frames import compose
from workers.frames.blank import is_blank
from workers.frames.capture import Budget, Captured, FrameDecoder, OpenCVDecoder, PyAVDecoder, Stopped
from workers.frames.cores import CoreShare, HostJobs
from workers.frames.encode import encode_image
from workers.frames.gpu import open_gpu_decoder
from workers.frames.lanes import run_lanes
from workers.frames.plan import Target, choose_seek, decode_plan, frames_to_decode, partition_lanes, plan_targets
from workers.frames.probe import OpenedInput, OpenReader, is_url, open_input, reopen_input
from workers.frames.rangeio import RangeReader
from workers.urlinput import UrlInputs

log = logging.getLogger(__name__)

DECODERS = ("auto", "pyav", "opencv", "gpu")
MAX_IN_FLIGHT = 3  # encoded-but-not-recorded images per decode lane (memory: 3 frames at output size)

# threads -> a new decoder on the job's input for one more decode lane (``_Run.capture_all``)
OpenLane = Callable[[int], FrameDecoder]


class OutputLog(Protocol):
    """The objects a job wrote, across its attempts (``RedisJobRepository.record_written`` ...)."""

    def record(self, bucket: str, key: str) -> None: ...
    def recorded(self) -> list[tuple[str, str]]: ...
    def forget(self, objects: list[tuple[str, str]]) -> None: ...


@dataclass
class MemoryOutputLog:
    """An ``OutputLog`` for one process (tests and callers without a job store)."""

    objects: list[tuple[str, str]] = field(default_factory=list)

    def record(self, bucket: str, key: str) -> None:
        self.objects.append((bucket, key))

    def recorded(self) -> list[tuple[str, str]]:
        return list(dict.fromkeys(self.objects))

    def forget(self, objects: list[tuple[str, str]]) -> None:
        gone = set(objects)
        self.objects = [o for o in self.objects if o not in gone]


_QUOTED_PATH = re.compile(r"""(['"])/[^'"\n]*\1""")
_BARE_PATH = re.compile(r"(?<![\w/:.@-])/(?:[^\s/'\"]+/)+[^\s'\"]*")


def public_message(message: str, locator: str, name: str) -> str:
    """``message`` fit for a client: the locator (a server path or presigned URL) becomes
    ``name`` (``bucket/key``), and any other absolute path becomes ``<server path>``."""
    if locator:
        message = message.replace(locator, name)
        base = locator.split("?", 1)[0]
        if base != locator:
            message = message.replace(base, name)
    message = _QUOTED_PATH.sub(lambda m: f"{m.group(1)}<server path>{m.group(1)}", message)
    return _BARE_PATH.sub("<server path>", message)


@dataclass(frozen=True)
class MediaLimits:
    max_frame_pixels: int
    max_decoded_frames: int
    deadline: float | None  # a time.monotonic() value; None = no deadline


@dataclass
class StageTimes:
    """Seconds one run spent in each stage, summed over its images and sheets (metrics). Several
    decode lanes and their encode threads add to it at once, so additions take ``lock``."""

    decode_s: float = 0.0
    encode_s: float = 0.0
    upload_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, stage: str, started: float) -> None:
        elapsed = time.monotonic() - started
        with self.lock:
            setattr(self, stage, getattr(self, stage) + elapsed)


def core_share(settings: Settings) -> CoreShare:
    """Decode budgets for this host's jobs (``cores.CoreShare``), counted under
    ``DATA_DIR/run/<host name>/jobs``: one directory per host name, so that a data directory
    shared by several hosts (local storage on a network volume) still counts each host apart."""
    return CoreShare(
        HostJobs(settings.data_dir / "run" / socket.gethostname() / "jobs"),
        usable_cpus(),
        fixed=settings.decode_threads,
        fallback=settings.effective_decode_threads,
    )


def run_snapshot(
    job: SnapshotJob,
    store: ObjectStore,
    *,
    limits: MediaLimits,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    should_cancel: Callable[[], bool] = lambda: False,
    decoder: str = "auto",
    written: OutputLog | None = None,
    timings: StageTimes | None = None,
    decode_threads: int = 1,
    url_inputs: UrlInputs | None = None,
) -> Manifest:
    """Produce the job's images (and sprites) and return the manifest; raises ``JobFailure``
    (with a ``FailureCode`` and a message without server paths) or ``JobCanceled``. ``timings``,
    when given, is filled in as it runs. ``url_inputs``: how a URL input is read (the worker's
    settings); without it, a URL input is read with the guard refusing private addresses.

    ``decode_threads`` is the job's share of the host's cores (``core_share``): above 1, a PyAV
    job whose frames lie in several far-apart GOPs decodes them in up to that many parallel
    lanes (``_Run.capture_all``), and one that cannot be split uses them as frame threads; 1
    decodes in one lane on one thread."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    spec = job.spec
    _check_deadline(limits)
    source = spec.input
    open_reader: OpenReader = RangeReader
    if isinstance(source, UrlSource):
        locator, name = source.url, redact_url(source.url)
        if decoder == "opencv":  # OpenCV would open the URL itself, past the guard and the limits
            decoder = "pyav"
        inputs = url_inputs or UrlInputs.from_settings(Settings())
    else:
        locator, name = store.media_locator(source.bucket, source.key), f"{source.bucket}/{source.key}"
        inputs = None
    try:
        if inputs is not None:
            open_reader = inputs.opener(locator, limits.deadline)
        return _run_snapshot(
            job,
            store,
            limits,
            on_progress,
            should_cancel,
            decoder,
            written,
            timings,
            decode_threads,
            locator,
            open_reader,
        )
    except JobFailure as failure:
        message = public_message(failure.message, locator, name)
        if message == failure.message:
            raise
        raise JobFailure(failure.code, message, transient=failure.transient) from failure


def _run_snapshot(
    job: SnapshotJob,
    store: ObjectStore,
    limits: MediaLimits,
    on_progress: Callable[[int, int], None],
    should_cancel: Callable[[], bool],
    decoder: str,
    written: OutputLog | None,
    timings: StageTimes | None,
    decode_threads: int,
    locator: str,
    open_reader: OpenReader,
) -> Manifest:
    spec = job.spec
    keyframes_only = spec.frame_type is FrameType.KEYFRAME
    run = _Run(job, store, on_progress, should_cancel, written or MemoryOutputLog(), timings or StageTimes())
    budget = Budget(limits.max_decoded_frames, limits.deadline, should_cancel, stop=run.stop)
    try:
        opened = open_input(
            locator,
            max_frame_pixels=limits.max_frame_pixels,
            frame_threads=not keyframes_only,
            open_reader=open_reader,
        )
        try:
            dec = _decoder_for(decoder, locator, opened, budget, run.manifest, keyframes_only=keyframes_only)
        except BaseException:
            opened.close()
            raise
        lane_inputs: list[OpenedInput] = []

        def open_lane(threads: int) -> FrameDecoder:
            lane_input = reopen_input(
                locator, opened, threads=1 if keyframes_only else threads, open_reader=open_reader
            )
            lane_inputs.append(lane_input)
            return PyAVDecoder(lane_input, budget, keyframes_only=keyframes_only)

        try:
            run.capture_all(dec, limits, lanes=max(1, decode_threads), open_lane=open_lane)
            run.put_archive()
        finally:
            dec.close()
            readers = [i.reader for i in (opened, *lane_inputs) if i.reader is not None]
            if readers:
                run.manifest.notes.append(
                    f"input read over HTTP: {sum(r.bytes_read for r in readers)} of {readers[0].size} bytes "
                    f"in {sum(r.requests for r in readers)} range requests"
                )
        if spec.sprite is not None:
            run.build_sprites()
    except JobCanceled:
        run.delete_uploaded()
        raise
    except (av.error.FFmpegError, cv2.error) as exc:
        # Anything the decoders did not classify is a property of the input, not of the worker.
        raise JobFailure(FailureCode.INPUT_UNREADABLE, f"the input could not be decoded: {exc}") from exc
    except MemoryError as exc:
        raise JobFailure(FailureCode.MEDIA_LIMIT_EXCEEDED, "the input needs more memory than the worker has") from exc
    return run.manifest


def _done(f: Future[bytes] | None) -> bool:
    return f is None or f.done()


@dataclass
class _Pending:
    """A captured image whose encode and upload may still be running."""

    target: Target
    captured: Captured
    substituted: float | None  # ms the kept frame lies after a blank one; None = not substituted
    encoded: Future[bytes] | None  # None: sprites only, nothing encoded
    note: str | None  # for the manifest, recorded in image order


@dataclass(frozen=True)
class _Shot:
    """An image ready to record: stored (unless sprites or archive only), full-size pixels dropped."""

    target: Target
    actual_ms: float
    width: int
    height: int
    source_width: int
    source_height: int
    data: bytes | None  # the encoded image; None: nothing encoded (sprites only)
    substituted_ms: float | None
    cell: np.ndarray | None  # kept for the sprite sheets
    note: str | None


def _check_deadline(limits: MediaLimits) -> None:
    if limits.deadline is not None and time.monotonic() > limits.deadline:
        raise JobFailure(FailureCode.SNAPSHOT_TIMEOUT, "the job's deadline passed before decoding started")


def _decoder_for(
    kind: str, locator: str, opened: OpenedInput, budget: Budget, manifest: Manifest, *, keyframes_only: bool
) -> FrameDecoder:
    manifest.source_duration_ms = opened.index.table.duration_ms
    if kind == "opencv":
        table = opened.index.table
        opened.close()
        manifest.decoder = "opencv"
        return OpenCVDecoder(locator, table, budget)
    if kind == "gpu":
        source = locator if not is_url(locator) else opened.reader
        gpu, why = open_gpu_decoder(source, opened.index.table, opened.rotation or 0, budget)
        if gpu is not None:
            # NVDEC demuxes by itself. A URL's Range reader stays in use: the GPU decoder now owns
            # it and closes it in its own close() (``opened`` is not closed again on this path).
            opened.container.close()
            manifest.decoder = "gpu"
            return gpu
        manifest.decoder = "pyav (gpu unavailable)"
        manifest.notes.append(f"GPU decode unavailable, decoded on the CPU: {why}")
        return PyAVDecoder(opened, budget, keyframes_only=keyframes_only)
    manifest.decoder = "pyav"
    return PyAVDecoder(opened, budget, keyframes_only=keyframes_only)


class _Run:
    """State of one run: uploads made (for cancel cleanup), cells kept for sprites."""

    def __init__(
        self,
        job: SnapshotJob,
        store: ObjectStore,
        on_progress: Callable[[int, int], None],
        should_cancel: Callable[[], bool],
        written: OutputLog,
        timings: StageTimes,
    ) -> None:
        self.job = job
        self.timings = timings
        self.spec: SnapshotSpec = job.spec
        self.store = store
        self.on_progress = on_progress
        self.should_cancel = should_cancel
        self.manifest = Manifest()
        self.written = written
        self.cells: list[np.ndarray] = []
        self.cell_numbers: list[int] = []
        self.cell_times: list[float] = []
        self.cell_step = self.spec.sprite.cell_sel_step if self.spec.sprite else 1
        sprite, archive = self.spec.sprite, self.spec.archive
        # Images go up one by one unless sprites-only (IsKeepCellPic false) or archive-only (tar).
        self.upload_images = not (sprite is not None and not sprite.keep_cells) and not (
            archive is not None and not archive.keep_images
        )
        self.encode_images = self.upload_images or archive is not None
        self.tar_buffer = io.BytesIO() if archive is not None else None
        self.tar = tarfile.open(fileobj=self.tar_buffer, mode="w") if self.tar_buffer is not None else None
        self.total = 0
        self.stop = threading.Event()  # set when a parallel run is ending early (lanes.run_lanes)

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """Store, then record: a crash between the two leaves an object no cleanup deletes,
        rather than a record that would let cleanup delete an object this job never wrote."""
        started = time.monotonic()
        self.store.put(bucket, key, data, content_type)
        self.timings.add("upload_s", started)
        self.written.record(bucket, key)

    def _encode(self, image: np.ndarray, fmt: ImageFormat) -> bytes:
        started = time.monotonic()
        data = encode_image(image, fmt, self.spec.quality)
        self.timings.add("encode_s", started)
        return data

    def _read(self, dec: FrameDecoder, frame: int, seek: int | None) -> Captured:
        started = time.monotonic()
        captured = dec.read(frame, seek, self.spec.size)
        self.timings.add("decode_s", started)
        return captured

    def _read_next(self, dec: FrameDecoder) -> Captured | None:
        started = time.monotonic()
        captured = dec.read_next(self.spec.size)
        self.timings.add("decode_s", started)
        return captured

    def delete_uploaded(self) -> None:
        """Delete what this job's attempts wrote (the output log), and nothing else."""
        deleted: list[tuple[str, str]] = []
        for bucket, key in self.written.recorded():
            try:
                self.store.delete(bucket, key)
                deleted.append((bucket, key))
            except JobFailure as exc:  # best effort: the cancel itself must still be recorded
                log.warning("could not delete %s/%s after cancel: %s", bucket, key, exc)
        self.written.forget(deleted)

    def capture_all(
        self, dec: FrameDecoder, limits: MediaLimits, *, lanes: int = 1, open_lane: OpenLane | None = None
    ) -> None:
        """Decode, encode and upload every image; record them in image order on this thread.

        With ``open_lane`` and ``lanes`` > 1, a plan whose targets fall into independent runs
        (far-apart GOPs: evenly spread, series, sprites) is split by ``plan.partition_lanes`` and
        the groups are decoded at once, group 0 by ``dec`` and each other one by a decoder of its
        own, with ``threads`` = lanes // groups frame threads each (so a job never uses more
        decode threads than its budget); their results are recorded in image order
        (``lanes.run_lanes``). Otherwise one lane on this thread does it all.

        Within a lane, encoding and uploading run on a helper pool (FIFO), so encoding and
        storage round trips overlap the next decode run (cv2.imencode and socket I/O release the
        GIL). At most ``MAX_IN_FLIGHT`` images per lane wait, bounding memory.
        """
        spec = self.spec
        targets = plan_targets(spec.timing, spec.frame_type, dec.table)
        planned = frames_to_decode(decode_plan(dec.table, targets))
        if planned > limits.max_decoded_frames:
            raise JobFailure(
                FailureCode.MEDIA_LIMIT_EXCEEDED,
                f"the job needs {planned} decoded frames; the limit is {limits.max_decoded_frames}",
            )
        self.total = len(targets)
        groups = partition_lanes(dec.table, targets, lanes) if open_lane is not None else [targets]
        # One lane takes the whole budget as frame threads, so a job never decodes on more
        # threads than its share (a decoder already opened keeps what it has, in one lane).
        if not isinstance(dec, PyAVDecoder) or not dec.limit_threads(max(1, lanes // max(1, len(groups)))):
            groups = [targets]
        if len(groups) > 1:
            self.manifest.notes.append(f"decoded in {len(groups)} parallel lanes")
        with ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="encode") as pool:
            if len(groups) == 1:
                self._lane(dec, targets, pool, self._record)
                return
            assert open_lane is not None
            threads = max(1, lanes // len(groups))

            def work(i: int, group: list[Target], deliver: Callable[[_Shot], None]) -> None:
                if i == 0:
                    self._lane(dec, group, pool, deliver)
                    return
                lane_dec = open_lane(threads)
                try:
                    self._lane(lane_dec, group, pool, deliver)
                finally:
                    lane_dec.close()

            run_lanes(groups, work, self._record, self.stop, name="decode")

    def _lane(
        self, dec: FrameDecoder, targets: list[Target], pool: ThreadPoolExecutor, deliver: Callable[[_Shot], None]
    ) -> None:
        """Capture ``targets`` in order with ``dec``; ``deliver`` each one once it is encoded and
        stored (or, sprites only, captured)."""
        spec = self.spec
        previous: _Pending | None = None
        in_flight: deque[_Pending] = deque()
        try:
            for target in targets:
                if self.stop.is_set():
                    raise Stopped("the run is ending")
                if self.should_cancel():
                    raise JobCanceled("canceled between frames")
                key = spec.output.key_for(self.job.id, target.number, target.requested_ms)
                if previous is not None and previous.target.frame == target.frame:
                    # A duplicate time: same frame, same bytes, its own key.
                    encoded = self._submit(pool, self._put_copy, previous.encoded, key)
                    pending = _Pending(target, previous.captured, previous.substituted, encoded, None)
                else:
                    captured, substituted, note = self._capture(dec, target)
                    encoded = self._submit(pool, self._encode_put, captured.image, key)
                    pending = _Pending(target, captured, substituted, encoded, note)
                previous = pending
                in_flight.append(pending)
                while in_flight and (len(in_flight) > MAX_IN_FLIGHT or _done(in_flight[0].encoded)):
                    deliver(self._shot(in_flight.popleft()))
            while in_flight:
                deliver(self._shot(in_flight.popleft()))
        except BaseException:
            for item in in_flight:  # let uploads settle so a cancel can delete them all
                if item.encoded is not None:
                    item.encoded.cancel()
            raise

    def _shot(self, p: _Pending) -> _Shot:
        """What recording needs once the upload is done; the full-size image is dropped unless it
        becomes a sprite cell (results of later lanes wait here until earlier lanes finish)."""
        data = p.encoded.result() if p.encoded is not None else None
        c = p.captured
        is_cell = self.spec.sprite is not None and (p.target.number - 1) % self.cell_step == 0
        h, w = c.image.shape[:2]
        return _Shot(
            target=p.target,
            actual_ms=c.pts_ms,
            width=w,
            height=h,
            source_width=c.source_width,
            source_height=c.source_height,
            data=data,
            substituted_ms=p.substituted,
            cell=c.image if is_cell else None,
            note=p.note,
        )

    def _submit(self, pool: ThreadPoolExecutor, fn: Callable[..., bytes], *args: object) -> Future[bytes] | None:
        """None when no image file is wanted (sprites only, no archive): nothing is encoded."""
        if not self.encode_images:
            return None
        return pool.submit(fn, *args)

    def _encode_put(self, image: np.ndarray, key: str) -> bytes:
        data = self._encode(image, self.spec.format)
        if self.upload_images:
            self.put(self.spec.output.bucket, key, data, self.spec.format.content_type)
        return data

    def _put_copy(self, original: Future[bytes] | None, key: str) -> bytes:
        assert original is not None  # same settings as the original
        data = original.result()
        if self.upload_images:
            self.put(self.spec.output.bucket, key, data, self.spec.format.content_type)
        return data

    def archive_key(self) -> str:
        assert self.spec.archive is not None
        return templates.render(self.spec.archive.target.key_template, job_id=self.job.id)

    def _add_to_archive(self, key: str, data: bytes) -> None:
        """One tar member per image, named by its key's last segment, dated by the job's creation
        (a re-run writes the same bytes)."""
        if self.tar is None:
            return
        member = tarfile.TarInfo(key.rsplit("/", 1)[-1])
        member.size = len(data)
        member.mtime = int(self.job.created_at.timestamp()) if self.job.created_at else 0
        member.mode = 0o644
        self.tar.addfile(member, io.BytesIO(data))

    def put_archive(self) -> None:
        if self.tar is None or self.tar_buffer is None or self.spec.archive is None:
            return
        if self.should_cancel():
            raise JobCanceled("canceled before uploading the archive")
        self.tar.close()
        key = self.archive_key()
        self.put(self.spec.archive.target.bucket, key, self.tar_buffer.getvalue(), "application/x-tar")
        self.manifest.archive_key = key
        self.tar, self.tar_buffer = None, None

    def _capture(self, dec: FrameDecoder, target: Target) -> tuple[Captured, float | None, str | None]:
        """The frame for ``target``: (captured, substitution offset ms or None, manifest note)."""
        spec = self.spec
        seek = choose_seek(dec.table, dec.position, target.frame)
        captured = self._read(dec, target.frame, seek)
        rule = spec.black_frames
        if rule is None or not is_blank(captured.image, rule):
            return captured, None, None
        limit_ms = captured.pts_ms + rule.search_window_ms
        keyframes_only = spec.frame_type is FrameType.KEYFRAME
        keys = [k for k in dec.table.key_frames if k > captured.frame and dec.table.pts_ms[k] <= limit_ms]
        while True:
            if keyframes_only:
                if not keys:
                    break
                key = keys.pop(0)
                candidate: Captured | None = self._read(dec, key, choose_seek(dec.table, dec.position, key))
            else:
                candidate = self._read_next(dec)
            if candidate is None or candidate.pts_ms > limit_ms:
                break
            if not is_blank(candidate.image, rule):
                return candidate, candidate.pts_ms - captured.pts_ms, None
        note = (
            f"image {target.number}: no acceptable frame within {rule.search_window_ms:.0f} ms of "
            f"{captured.pts_ms:.0f} ms; kept the blank one"
        )
        return captured, None, note

    def _record(self, shot: _Shot) -> None:
        """Record one image (in image order, on the run's thread: tar members stay in order too)
        and report progress."""
        spec = self.spec
        key = spec.output.key_for(self.job.id, shot.target.number, shot.target.requested_ms)
        if self.manifest.source_width is None:
            self.manifest.source_width, self.manifest.source_height = shot.source_width, shot.source_height
        if shot.note is not None:
            self.manifest.notes.append(shot.note)
        if shot.cell is not None:
            self.cells.append(shot.cell)
            self.cell_numbers.append(shot.target.number)
            self.cell_times.append(shot.target.requested_ms)
        self.manifest.images.append(
            OutputImage(
                index=shot.target.number,
                requested_ms=shot.target.requested_ms,
                actual_ms=shot.actual_ms,
                key=key,
                width=shot.width,
                height=shot.height,
                bytes=len(shot.data) if shot.data is not None else 0,
                substituted_ms=shot.substituted_ms,
                uploaded=shot.data is not None and self.upload_images,
            )
        )
        if shot.data is not None:
            self._add_to_archive(key, shot.data)
        self.on_progress(len(self.manifest.images), self.total)

    def build_sprites(self) -> None:
        sprite = self.spec.sprite
        if sprite is None or not self.cells:
            return
        if self.should_cancel():
            raise JobCanceled("canceled before composing sprites")
        snap_h, snap_w = self.cells[0].shape[:2]
        cell_w, cell_h = compose.cell_size(sprite, snap_w, snap_h)
        lay = compose.layout(sprite, len(self.cells), cell_w, cell_h)
        bgr = compose.background_bgr(sprite.color, self.job.id)
        canvases = compose.render_sheets(lay, self.cells, bgr)
        self.cells = []  # free the cells before encoding the sheets
        bucket, template = sprite.target.bucket, sprite.target.key_template
        keys = [outputs.sheet_key(template, self.job.id, g.number, len(lay.sheets)) for g in lay.sheets]
        sizes: list[tuple[str, int]] = []
        for geom, canvas, key in zip(lay.sheets, canvases, keys, strict=True):
            fmt = compose.sheet_format(key, self.spec.format)
            data = self._encode(canvas, fmt)
            self.put(bucket, key, data, fmt.content_type)
            sizes.append((key, len(data)))
            self.manifest.sheets.append(SpriteSheet(geom.number, key, geom.width, geom.height, len(data), geom.cells))
        duration = self.manifest.source_duration_ms or 0.0
        cues = compose.storyboard_cues(lay, self.cell_times, keys, duration)
        vtt_key, json_key = outputs.storyboard_keys(template, self.job.id)
        self.put(bucket, vtt_key, compose.render_vtt(cues, vtt_key).encode(), "text/vtt")
        index = compose.render_index(lay, cues, self.cell_numbers, sizes, duration)
        self.put(bucket, json_key, index.encode(), "application/json")
        self.manifest.storyboard_key, self.manifest.index_key = vtt_key, json_key
