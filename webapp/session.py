"""One browser session's data, in its own folder: the uploaded video, the annotations the
user made, the propagated masks and the exports. ``Sessions`` hands each session key
(Gradio's per-tab id) its own ``Session``, and deletes the folder when the session ends,
expires or the app stops.

Nothing a client sends becomes a path unchecked: an upload is stored under a fixed name
(only its suffix, from a fixed list, is kept), and the members of a zip of frames keep
only their base names, which must be plain image file names.
"""

from __future__ import annotations

import re
import secrets
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from PIL import Image

from datasets.eval_datasets import EvalVideo, FrameSource, fit_to_frame, load_annotation
from util.errors import DatasetError
from util.palette import davis_palette, read_image, read_mask, write_indexed_png

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
PALETTE = davis_palette()  # every session's masks and exports use the DAVIS palette
MAX_STROKE_POINTS = 10000  # a long drag sends a few hundred


@dataclass(frozen=True)
class Caps:
    """What an uploaded video may be: longer or larger ones are refused with a message."""

    max_frames: int = 3000
    max_side: int = 4096  # pixels, the frame's longer side


class Session:
    """A session's video, annotations (``annotations/<index>.png``) and masks
    (``results/<frame name>.png``), all under ``folder``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.frames: FrameSource | None = None
        self.name = ""
        self.propagating = threading.Lock()  # one propagation at a time
        self.cancel = threading.Event()
        self.complete = False  # every frame has a mask from the current annotations
        self.corner: tuple[int, int] | None = None  # the rectangle tool's first click
        self.last_used = time.monotonic()

    # ---- the video --------------------------------------------------------------------

    def load(self, upload: Path, original_name: str, caps: Caps) -> str:
        """Store ``upload`` (a video file, or a zip of frames) and decode a preview of every
        frame; replaces the session's earlier video, annotations and masks."""
        for sub in ("input", "previews", "annotations", "results", "export"):
            shutil.rmtree(self.folder / sub, ignore_errors=True)
        self.frames, self.complete, self.corner = None, False, None
        source = self._store(upload, original_name)
        try:
            frames = FrameSource(source)
        except DatasetError:
            raise DatasetError(f"{original_name}: not a readable video file or zip of frames") from None
        if len(frames) > caps.max_frames:
            raise DatasetError(f"{original_name}: {len(frames)} frames; this app takes at most {caps.max_frames}")
        for frame in EvalVideo("upload", frames, {}).read():  # one decode, sizes checked
            height, width = frame.rgb.shape[:2]
            if max(height, width) > caps.max_side:
                raise DatasetError(
                    f"{original_name}: frames of {width}x{height}; this app takes at most {caps.max_side} pixels a side"
                )
            preview = self.folder / "previews" / f"{frame.index:05d}.jpg"
            preview.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame.rgb).save(preview, quality=90)
        # the exports' file names: the upload's name, reduced to safe characters
        self.name = re.sub(r"[^A-Za-z0-9_-]", "_", Path(original_name).stem)[:64] or "video"
        self.frames = frames
        return f"{original_name}: {len(frames)} frames of {width}x{height}"

    def _store(self, upload: Path, original_name: str) -> Path:
        suffix = Path(original_name).suffix.lower()
        folder = self.folder / "input"
        folder.mkdir(parents=True)
        if suffix in VIDEO_SUFFIXES:
            target = folder / f"video{suffix}"
            shutil.copyfile(upload, target)
            return target
        if suffix == ".zip":
            return self._extract_frames(upload, original_name, folder / "frames")
        raise DatasetError(
            f"{original_name}: not a video ({', '.join(VIDEO_SUFFIXES)}) "
            f"or a zip of frames ({', '.join(FRAME_SUFFIXES)})"
        )

    @staticmethod
    def _extract_frames(upload: Path, original_name: str, folder: Path) -> Path:
        folder.mkdir()
        try:
            with zipfile.ZipFile(upload) as archive:
                for member in archive.infolist():
                    name = PurePosixPath(member.filename.replace("\\", "/")).name  # the base name only
                    if member.is_dir() or name.startswith(".") or Path(name).suffix.lower() not in FRAME_SUFFIXES:
                        continue
                    with archive.open(member) as src, open(folder / name, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        except zipfile.BadZipFile:
            raise DatasetError(f"{original_name}: not a readable zip file") from None
        return folder

    @property
    def num_frames(self) -> int:
        return len(self.frames) if self.frames is not None else 0

    def require_video(self) -> FrameSource:
        if self.frames is None:
            raise DatasetError("no video loaded in this session: load one first")
        return self.frames

    def check_index(self, index: int) -> int:
        frames = self.require_video()
        if not 0 <= index < len(frames):
            raise DatasetError(f"frame {index}: the video has frames 0 to {len(frames) - 1}")
        return index

    def preview(self, index: int) -> np.ndarray:
        return read_image(self.folder / "previews" / f"{self.check_index(index):05d}.jpg")

    @property
    def frame_size(self) -> tuple[int, int]:
        with Image.open(self.folder / "previews" / "00000.jpg") as img:
            return img.height, img.width

    # ---- annotations and masks ----------------------------------------------------------

    def annotation_path(self, index: int) -> Path:
        return self.folder / "annotations" / f"{self.check_index(index):05d}.png"

    def result_path(self, index: int) -> Path:
        return self.folder / "results" / f"{self.require_video().names[self.check_index(index)]}.png"

    def annotations(self) -> dict[int, Path]:
        folder = self.folder / "annotations"
        return {int(p.stem): p for p in sorted(folder.glob("*.png"))} if folder.is_dir() else {}

    def labels(self, index: int) -> tuple[np.ndarray, str]:
        """What frame ``index`` shows: its annotation, else its propagated mask, else nothing."""
        for path, what in ((self.annotation_path(index), "annotation"), (self.result_path(index), "propagated")):
            if path.is_file():
                return read_mask(path), what
        return np.zeros(self.frame_size, np.uint8), "no mask"

    def set_annotation(self, index: int, labels: np.ndarray) -> None:
        """Make ``labels`` the annotation of frame ``index``; an empty one removes it."""
        path = self.annotation_path(index)
        if labels.any():
            write_indexed_png(labels, PALETTE, path)
        else:
            path.unlink(missing_ok=True)
        self.complete = False

    def add_mask(self, index: int, png: Path, original_name: str) -> np.ndarray:
        """An uploaded indexed PNG as the annotation of frame ``index``."""
        self.check_index(index)
        try:
            labels = load_annotation(png)
        except DatasetError as e:
            raise DatasetError(str(e).replace(str(png), original_name)) from None
        if not labels.any():
            raise DatasetError(f"{original_name}: the mask contains no object (every pixel is background)")
        labels = fit_to_frame(labels, Path(original_name), self.frame_size, f"frame {index}")
        self.set_annotation(index, labels)
        return labels

    def paint(self, index: int, points: list[tuple[int, int]], object_id: int, tool: str, radius: int) -> np.ndarray:
        """One stroke of a tool on frame ``index`` through the pixels ``points`` (x, y; a click
        is one point): a band of ``object_id`` ``radius`` pixels either side of the path
        (brush) or of background where it was ``object_id`` (eraser); the rectangle tool fills
        the rectangle between a drag's ends, or between two clicks. The frame's shown mask
        (its propagated one when it has no annotation yet) is the starting point, so a
        correction keeps the rest of the frame as it was."""
        labels, _ = self.labels(index)
        labels = labels.copy()
        height, width = labels.shape
        if not points or len(points) > MAX_STROKE_POINTS:
            raise ValueError(f"a stroke has 1 to {MAX_STROKE_POINTS} points, not {len(points)}")
        # points come from the page: kept inside the frame, so a slice never wraps around
        points = [(min(max(int(x), 0), width - 1), min(max(int(y), 0), height - 1)) for x, y in points]
        if tool == "rectangle":
            (x0, y0), (x, y) = points[0], points[-1]
            if (x0, y0) == (x, y):  # a click: the first corner, or the opposite one
                if self.corner is None:
                    self.corner = (x, y)
                    return labels
                x0, y0 = self.corner
            self.corner = None
            labels[min(y0, y) : max(y0, y) + 1, min(x0, x) : max(x0, x) + 1] = object_id
        else:
            band = np.zeros(labels.shape, np.uint8)
            for (xa, ya), (xb, yb) in zip(points, points[1:]):
                cv2.line(band, (xa, ya), (xb, yb), 1, thickness=max(2 * radius, 1))  # as wide as the discs
            for x, y in points:  # round ends and joints
                cv2.circle(band, (x, y), radius, 1, thickness=-1)
            if tool == "eraser":
                labels[(band > 0) & (labels == object_id)] = 0
            else:
                labels[band > 0] = object_id
        self.set_annotation(index, labels)
        return labels

    def video(self) -> EvalVideo:
        """The session's video and annotations as the engine takes them (``eval_generic.py``'s
        video with an annotation folder)."""
        frames = self.require_video()
        annotations = self.annotations()
        if not annotations:
            raise DatasetError("no annotation yet: paint a mask or upload one for a frame first")
        return EvalVideo(self.name, frames, annotations)

    def fps(self) -> float:
        """The video file's frame rate (10 for frames from a zip, as the project's overlays)."""
        frames = self.require_video()
        if frames.files is not None:
            return 10.0
        capture = cv2.VideoCapture(str(frames.path))
        fps = capture.get(cv2.CAP_PROP_FPS)
        capture.release()
        return fps if fps > 0 else 10.0


class Sessions:
    """Session key -> ``Session``; each in its own folder under ``root`` (a random name, not
    the key). Idle sessions older than ``ttl`` seconds are deleted by ``expire``."""

    def __init__(self, root: Path, ttl: float):
        self.root, self.ttl = root, ttl
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Session:
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                folder = self.root / secrets.token_hex(8)
                folder.mkdir(parents=True)
                session = self._sessions[key] = Session(folder)
            session.last_used = time.monotonic()
            return session

    def end(self, key: str) -> None:
        with self._lock:
            session = self._sessions.pop(key, None)
        if session is not None:
            session.cancel.set()
            with session.propagating:  # a running propagation writes into the folder: let it stop first
                shutil.rmtree(session.folder, ignore_errors=True)

    def expire(self) -> list[str]:
        """End the sessions idle for longer than ``ttl`` (none while propagating)."""
        now = time.monotonic()
        with self._lock:
            idle = [k for k, s in self._sessions.items() if now - s.last_used > self.ttl and not s.propagating.locked()]
        for key in idle:
            self.end(key)
        return idle

    def __len__(self) -> int:
        return len(self._sessions)

    def close(self) -> None:
        for key in list(self._sessions):
            self.end(key)
