"""Propagation for a session: the engine's ``segment_video`` (as ``eval_generic.py`` runs it
on a video with several annotations: later objects, corrections, and backwards from a
mid-video annotation) in a worker thread, its masks written into the session's folder as
they come, and its progress handed to the caller as it goes. A cancel request stops the
worker at the next frame; the session stays usable."""

from __future__ import annotations

import queue
import shutil
import threading
from dataclasses import dataclass
from typing import Iterator

from evaluation.video import FrameOutput, segment_video
from inference_backend import Backend
from model.network import GSFM
from util.configuration import InferenceConfig
from util.errors import ConfigError
from util.palette import write_indexed_png
from webapp.session import PALETTE, Session

_DONE = object()


class Cancelled(Exception):
    """Raised inside the engine's callbacks to stop a propagation."""


@dataclass
class Progress:
    done: int  # frames with a new mask
    total: int
    last: int | None  # the index of the frame masked last
    state: str = "running"  # running, finished or cancelled


def propagate(session: Session, network: GSFM | Backend, config: InferenceConfig) -> Iterator[Progress]:
    """Segment the session's video from its annotations into ``results/``, yielding after
    each frame. The worker owns the session's propagation lock, so a caller that stops
    iterating (a closed browser tab) never leaves the session locked."""
    video = session.video()
    if not session.propagating.acquire(blocking=False):
        raise ConfigError("a propagation is already running in this session")
    session.cancel.clear()
    session.complete = False
    results = session.folder / "results"
    shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True)
    events: queue.Queue = queue.Queue()
    failure: list[BaseException] = []

    def check_cancel() -> None:
        if session.cancel.is_set():
            raise Cancelled

    def on_output(frame: FrameOutput) -> None:
        check_cancel()
        write_indexed_png(frame.labels, PALETTE, results / f"{frame.name}.png")
        events.put(frame.index)

    def work() -> None:
        try:
            segment_video(network, video, config, on_output, scratch=session.folder, on_frame=check_cancel)
            session.complete = True
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread below
            failure.append(e)
        finally:
            session.propagating.release()
            events.put(_DONE)

    threading.Thread(target=work, name=f"propagate-{session.folder.name}", daemon=True).start()
    done, last = 0, None
    while (item := events.get()) is not _DONE:
        done, last = done + 1, item
        yield Progress(done, video.num_frames, last)
    if failure and not isinstance(failure[0], Cancelled):
        raise failure[0]
    yield Progress(done, video.num_frames, last, "cancelled" if failure else "finished")
