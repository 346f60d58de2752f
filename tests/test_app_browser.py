"""The web app in a real browser (headless Debian chromium through Selenium), as a user
works: upload a generated video, draw a rectangle on frame 0 (two clicks), propagate,
export; correct frame k by dragging the brush and the eraser over it, propagate again,
export. Each export must be eval_generic.py's masks for the same annotations. A screenshot
is kept in output/test_artefacts/. Without chromium and chromedriver the test is skipped,
except in CI (CI set), where `make browser` installs them."""

import math
import os
import shutil
import signal
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO, app_export_and_engine, start_app
from tests.test_app import make_clip
from util.palette import read_mask

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTEFACTS = REPO / "output" / "test_artefacts"
FRAMES, K = 8, 4  # the clip's length and the corrected frame

pytestmark = pytest.mark.slow


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        reason = f"no {' or '.join(missing)} (make browser installs Debian's chromium and chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def browser(tmp_path):
    _require_browser()
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium: pip install -r requirements-app.txt")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="chromium_", dir=tmp_path)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1200,1500",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    yield driver
    driver.quit()


class Page:
    """The app's page, through the element ids webapp/ui.py gives its components."""

    def __init__(self, driver, url: str):
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.wait = driver, WebDriverWait(driver, 300)
        driver.get(url)
        self.wait.until(lambda _: self.find("#video-file input[type=file]"))

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def status(self) -> str:
        return self.driver.execute_script("return document.querySelector('#status textarea').value")

    def until_status(self, text: str) -> str:
        self.wait.until(lambda _: text in self.status())
        return self.status()

    def click(self, css: str) -> None:
        self.find(css)[0].click()

    def open_video(self, path: Path) -> str:
        self.find("#video-file input[type=file]")[0].send_keys(str(path))
        self.wait.until(lambda _: self.find("#video-file a"))  # its download link: uploaded
        self.click("#load-video")
        return self.until_status("frames of")

    def go_to_frame(self, index: int) -> None:
        from selenium.webdriver.common.keys import Keys

        box = self.find("#frame input[type=number]")[0]
        box.clear()
        box.send_keys(str(index), Keys.ENTER)
        self.until_status(f"frame {index}:")

    def choose(self, tool: str, radius: int | None = None) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        self.driver.find_element(By.XPATH, f"//*[@id='tool']//label[contains(., '{tool}')]").click()
        if radius is not None:
            box = self.find("#radius input[type=number]")[0]
            box.clear()
            box.send_keys(str(radius), Keys.ENTER)

    def _at(self, x: int, y: int) -> tuple[int, int]:
        """The viewport point, in whole CSS pixels as pointer events have them, that lands on
        frame pixel (x, y): the first at or right of (below) the pixel's left (top) edge."""
        left, top, scale_x, scale_y = self.driver.execute_script(
            "const i = document.querySelector('#viewer img'), r = i.getBoundingClientRect();"
            "return [r.left, r.top, r.width / i.naturalWidth, r.height / i.naturalHeight];"
        )
        return math.ceil(left + x * scale_x), math.ceil(top + y * scale_y)

    def _pointer(self, path: list[tuple[int, int]]) -> None:
        """Press the mouse button at the path's first pixel, move through the others and
        release it (a click when the path is one pixel)."""
        from selenium.webdriver.common.actions.action_builder import ActionBuilder

        actions = ActionBuilder(self.driver)
        actions.pointer_action.move_to_location(*self._at(*path[0])).pointer_down()
        for point in path[1:]:
            actions.pointer_action.move_to_location(*self._at(*point))
        actions.pointer_action.pointer_up()
        actions.perform()

    def rectangle(self, corner: tuple[int, int], opposite: tuple[int, int]) -> None:
        """Two clicks of the rectangle tool at these frame pixels (x, y)."""
        self.choose("rectangle")
        for point, expect in ((corner, "click the opposite corner"), (opposite, "annotation")):
            self._pointer([point])
            self.until_status(expect)

    def _frame_src(self) -> str | None:
        # read in one step: Gradio may replace the <img> between a lookup and a read
        return self.driver.execute_script("return document.querySelector('#viewer img')?.src")

    def drag(self, path: list[tuple[int, int]], steps: int = 4) -> None:
        """A drag through the frame pixels ``path``, each segment in ``steps`` moves."""
        old = self._frame_src()
        moves = [path[0]]
        for (xa, ya), (xb, yb) in zip(path, path[1:]):
            moves += [
                (round(xa + (xb - xa) * i / steps), round(ya + (yb - ya) * i / steps)) for i in range(1, steps + 1)
            ]
        self._pointer(moves)
        self.wait.until(lambda _: self._frame_src() != old)  # the new mask
        self.until_status("annotation")

    def propagate(self) -> str:
        self.click("#propagate")
        return self.until_status("finished")

    def export(self, folder: Path) -> Path:
        """Click Export and download the masks zip the page links to."""
        links = "return [...document.querySelectorAll('#export-zip a')].map(a => a.href)"  # one step, as _frame_src
        old = set(self.driver.execute_script(links))
        self.click("#export")
        self.wait.until(lambda _: set(self.driver.execute_script(links)) - old)
        (href,) = set(self.driver.execute_script(links)) - old
        folder.mkdir(parents=True)
        target = folder / "masks.zip"
        with urllib.request.urlopen(href, timeout=60) as response, open(target, "wb") as out:
            shutil.copyfileobj(response, out)
        return target


def _is_filled_rectangle(labels: np.ndarray, object_id: int) -> bool:
    ys, xs = np.nonzero(labels == object_id)
    return len(ys) > 0 and len(ys) == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)


def _distance_to(path: list[tuple[int, int]], shape: tuple[int, int]) -> np.ndarray:
    """Each pixel's distance to the polyline ``path`` of (x, y) points."""
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    distance = np.full(shape, np.inf)
    for (xa, ya), (xb, yb) in zip(path, path[1:]):
        t = ((xs - xa) * (xb - xa) + (ys - ya) * (yb - ya)) / ((xb - xa) ** 2 + (yb - ya) ** 2)
        t = np.clip(t, 0, 1)
        distance = np.minimum(distance, np.hypot(xs - (xa + t * (xb - xa)), ys - (ya + t * (yb - ya))))
    return distance


def test_paint_propagate_correct_export_in_a_browser(browser, golden_weights_file, tmp_path):
    video, _ = make_clip(tmp_path, frames=FRAMES)
    process, url = start_app(golden_weights_file, tmp_path / "app")
    try:
        page = Page(browser, url)
        assert f"{FRAMES} frames of 96x64" in page.open_video(video)

        page.rectangle((20, 10), (50, 40))
        assert page.propagate() == f"finished: {FRAMES}/{FRAMES} frames"
        first = page.export(tmp_path / "first")
        app, engine = app_export_and_engine(golden_weights_file, video, first, tmp_path / "first")
        drawn = read_mask(tmp_path / "first" / "export" / "annotations" / "00000.png")
        assert _is_filled_rectangle(drawn, 1) and drawn[10:41, 20:51].all() and (drawn == 1).sum() == 31 * 31
        assert len(app) == FRAMES and all(np.array_equal(app[n], engine[n]) for n in app)

        page.go_to_frame(K)
        # the correction, painted by dragging: object 1 also along this path on frame K, then
        # the eraser dragged over the path's start
        brush, eraser, radius = [(66, 48), (84, 48), (84, 58)], [(62, 48), (70, 48)], 3
        page.choose("brush", radius)
        page.drag(brush)
        page.choose("eraser")
        page.drag(eraser)
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTEFACTS / "app_browser.png"))
        assert page.propagate() == f"finished: {FRAMES}/{FRAMES} frames"
        second = page.export(tmp_path / "second")
        with zipfile.ZipFile(second) as archive:
            assert sorted(archive.namelist()) == sorted(
                [f"masks/{i:05d}.png" for i in range(FRAMES)] + ["annotations/00000.png", f"annotations/{K:05d}.png"]
            )
        app2, engine2 = app_export_and_engine(golden_weights_file, video, second, tmp_path / "second")
        # the correction is the frame's propagated mask with the brush's band added and the
        # eraser's removed (one pixel of slack at their edges, where pixels are rounded)
        corrected = read_mask(tmp_path / "second" / "export" / "annotations" / f"{K:05d}.png")
        near_brush, near_eraser = (_distance_to(path, corrected.shape) for path in (brush, eraser))
        assert (app[f"{K:05d}"][near_brush <= radius - 1] != 1).any()  # the brush adds something
        assert (corrected[(near_brush <= radius - 1) & (near_eraser > radius + 1)] == 1).all()
        assert (corrected[near_eraser <= radius - 1] != 1).all()
        untouched = (near_brush > radius + 1) & (near_eraser > radius + 1)
        np.testing.assert_array_equal(corrected[untouched], app[f"{K:05d}"][untouched])
        for name in sorted(app2)[K:]:
            np.testing.assert_array_equal(app2[name], engine2[name], err_msg=name)
        assert not np.array_equal(app2[f"{K:05d}"], app[f"{K:05d}"])
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
