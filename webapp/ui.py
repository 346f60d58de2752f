"""The page: open a video, annotate frames, propagate, correct, export. Each handler finds
its session by Gradio's per-tab key and calls ``webapp.session`` / ``propagate`` /
``export``; errors meant for the user become a message on the page (or the client's
exception). The API names ``/load_video``, ``/add_mask``, ``/propagate``, ``/cancel`` and
``/export`` are what gradio_client calls."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from inference_backend import Backend
from model.network import GSFM
from util.configuration import InferenceConfig
from util.errors import GSFMError
from util.overlay import overlay
from webapp.export import export
from webapp.propagate import propagate
from webapp.session import PALETTE, Caps, Session, Sessions

TOOLS = ("brush", "eraser", "rectangle")
REFRESH_SECONDS = 0.3  # how often a propagation updates the page
USER_ERRORS = (GSFMError, ValueError, OSError)
# what Gradio's launch adds to the page: drag painting on the viewer, and no native image
# dragging or touch scrolling over it
LAUNCH_OPTIONS = {
    "js": (Path(__file__).parent / "brush.js").read_text(),
    "css": "#viewer img { touch-action: none; user-select: none; cursor: crosshair; }",
}


@dataclass
class App:
    network: GSFM | Backend
    config: InferenceConfig
    sessions: Sessions
    caps: Caps


def _upload_name(upload) -> tuple[Path, str]:
    """The uploaded file's path in Gradio's cache and the name the user gave it."""
    path = Path(upload if isinstance(upload, str) else upload.name)
    return path, getattr(upload, "orig_name", None) or path.name


def _user_errors(fn):
    """Errors meant for the user become gr.Error: a message, not a traceback."""

    @functools.wraps(fn)  # Gradio reads the signature (gr.Request, gr.SelectData) through it
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as e:
            raise gr.Error(str(e)) from None

    return wrapped


def _stroke_points(text: str) -> list[tuple[int, int]]:
    """The pixels of a stroke as brush.js sends them: ``{"points": [[x, y], ...]}``."""
    try:
        return [(int(x), int(y)) for x, y in json.loads(text)["points"]]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"not a stroke: {text[:80]!r}") from None


def _view(session: Session, index: int) -> tuple[np.ndarray, str]:
    labels, what = session.labels(index)
    objects = ", ".join(str(i) for i in np.unique(labels) if i) or "none"
    return overlay(session.preview(index), labels, PALETTE), f"frame {index}: {what} (objects: {objects})"


def build(app: App) -> gr.Blocks:
    def session_of(request: gr.Request) -> Session:
        return app.sessions.get(request.session_hash)

    @_user_errors
    def load_video(video, request: gr.Request):
        """Open a video file (or a zip of frames) in this session."""
        if video is None:
            raise gr.Error("no file: choose a video to upload")
        session = session_of(request)
        path, name = _upload_name(video)
        message = session.load(path, name, app.caps)
        image, _ = _view(session, 0)
        return message, gr.Slider(minimum=0, maximum=max(session.num_frames - 1, 1), value=0), image

    @_user_errors
    def add_mask(frame, mask, request: gr.Request):
        """Make an indexed PNG (one id per object) the annotation of frame ``frame``."""
        if mask is None:
            raise gr.Error("no file: choose an indexed PNG mask")
        session = session_of(request)
        path, name = _upload_name(mask)
        labels = session.add_mask(int(frame), path, name)
        image, _ = _view(session, int(frame))
        return f"{name}: objects {sorted(int(i) for i in np.unique(labels) if i)} on frame {int(frame)}", image

    @_user_errors
    def show(frame, request: gr.Request):
        session = session_of(request)
        if session.frames is None:
            return None, "load a video first"
        return _view(session, int(frame))

    @_user_errors
    def paint(frame, object_id, tool, radius, stroke, request: gr.Request):
        """A stroke painted on the viewer (webapp/brush.js sends its points)."""
        session = session_of(request)
        if not stroke:
            return _view(session, int(frame))
        session.paint(int(frame), _stroke_points(stroke), int(object_id), tool, int(radius))
        image, what = _view(session, int(frame))
        if tool == "rectangle" and session.corner is not None:
            what = f"rectangle from {session.corner}: click the opposite corner"
        return image, what

    @_user_errors
    def clear(frame, request: gr.Request):
        session = session_of(request)
        session.set_annotation(int(frame), np.zeros(session.frame_size, np.uint8))
        return _view(session, int(frame))

    def new_object(choices):
        ids = [int(c) for c in choices] if choices else [1]
        ids.append(max(ids) + 1)
        return gr.Dropdown(choices=ids, value=ids[-1]), ids

    def run(request: gr.Request, progress=gr.Progress()):
        """Propagate the session's annotations through the video (forward, and backward
        from the first annotation); yields the status and the frame masked last."""
        session = session_of(request)
        shown = 0.0
        try:  # a generator: _user_errors cannot wrap it
            for step in propagate(session, app.network, app.config):
                progress((step.done, step.total), desc="propagating", unit="frames")
                if step.state != "running" or time.monotonic() - shown > REFRESH_SECONDS:
                    shown = time.monotonic()
                    image = _view(session, step.last)[0] if step.last is not None else None
                    yield f"{step.state}: {step.done}/{step.total} frames", image
        except USER_ERRORS as e:
            raise gr.Error(str(e)) from None

    def cancel(request: gr.Request):
        """Stop this session's propagation at the next frame."""
        session = session_of(request)
        session.cancel.set()
        return "cancelling" if session.propagating.locked() else "nothing to cancel"

    @_user_errors
    def export_files(request: gr.Request):
        """The masks zip, the overlay mp4 and the areas JSON."""
        return tuple(str(p) for p in export(session_of(request)))

    def end(request: gr.Request):
        """The tab was closed: the session's folder goes."""
        app.sessions.end(request.session_hash)

    with gr.Blocks(title="GSFM: segment a video", delete_cache=(60, int(app.sessions.ttl))) as page:
        gr.Markdown(
            "## GSFM video object segmentation\n"
            "1. Open a video (or a zip of frames). 2. Pick an object and paint it on a frame: drag the brush "
            "or the eraser over it, or the rectangle tool from corner to corner (or click two corners); or "
            "upload an indexed PNG. 3. Propagate. 4. Correct any frame and propagate again. 5. Export."
        )
        with gr.Row():
            video = gr.File(label="video file or zip of frames", elem_id="video-file")
            load = gr.Button("Open video", elem_id="load-video")
        status = gr.Textbox(label="status", interactive=False, elem_id="status")
        viewer = gr.Image(label="frame", interactive=False, type="numpy", format="png", elem_id="viewer")
        frame = gr.Slider(0, 1, value=0, step=1, label="frame", elem_id="frame")
        stroke = gr.Textbox(visible="hidden", elem_id="stroke")  # filled by brush.js
        with gr.Row():
            ids = gr.State([1])
            object_id = gr.Dropdown(choices=[1], value=1, label="object", elem_id="object")
            add_object = gr.Button("New object", elem_id="new-object")
            tool = gr.Radio(list(TOOLS), value="brush", label="tool", elem_id="tool")
            radius = gr.Slider(1, 64, value=8, step=1, label="brush radius (pixels)", elem_id="radius")
            clear_frame = gr.Button("Clear this frame's annotation", elem_id="clear")
        with gr.Row():
            mask = gr.File(label="indexed PNG for this frame", file_types=[".png"], elem_id="mask-file")
            upload_mask = gr.Button("Use as this frame's mask", elem_id="add-mask")
        with gr.Row():
            start = gr.Button("Propagate", variant="primary", elem_id="propagate")
            stop = gr.Button("Cancel", elem_id="cancel")
            save = gr.Button("Export", elem_id="export")
        files = [
            gr.File(label="masks (zip of indexed PNGs)", elem_id="export-zip"),
            gr.File(label="overlay video", elem_id="export-mp4"),
            gr.File(label="object areas (JSON)", elem_id="export-json"),
        ]

        load.click(load_video, [video], [status, frame, viewer], api_name="load_video")
        upload_mask.click(add_mask, [frame, mask], [status, viewer], api_name="add_mask")
        start.click(run, None, [status, viewer], api_name="propagate")
        stop.click(cancel, None, [status], api_name="cancel")
        save.click(export_files, None, files, api_name="export")
        frame.change(show, [frame], [viewer, status], api_visibility="private")
        # every stroke is painted, one at a time and in order: each starts from the mask the
        # one before left (a stroke takes milliseconds)
        stroke.change(
            paint,
            [frame, object_id, tool, radius, stroke],
            [viewer, status],
            api_visibility="private",
            trigger_mode="multiple",
            concurrency_limit=1,
        )
        clear_frame.click(clear, [frame], [viewer, status], api_visibility="private")
        add_object.click(new_object, [ids], [object_id, ids], api_visibility="private")
        page.unload(end)
    return page
