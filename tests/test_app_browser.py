"""The app end to end in a real headless browser (Debian's chromium driven by selenium).

Starts ``inpaintzoo-app`` on 127.0.0.1, then as a person would: a bad upload and an early click
(messages in the page, the server keeps serving), upload a sample photo, paint a hole, predict
the edges, draw an edge stroke, inpaint, check the downloaded full-resolution PNG differs from
the upload only inside the hole; then object replacement from a second photo. One screenshot per
step goes to ``docs/app/`` (``INPAINTZOO_APP_SCREENSHOTS`` to change it). The model is a tiny
EdgeConnect saved through Lightning by the test itself, or ``INPAINTZOO_APP_CKPT`` when set (the
screenshots in docs/app/ were taken with the demo's trained checkpoint).

Run with ``make test-app`` (installs chromium with apt when absent); marker ``app``.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.app

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(os.environ.get("INPAINTZOO_APP_SCREENSHOTS") or REPO / "docs" / "app")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
TIMEOUT = 180.0  # seconds for one model step on a loaded 2-core CPU


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tiny_checkpoint(path: Path) -> Path:
    import pytorch_lightning as pl
    import torch

    from inpaintzoo import zoo

    torch.manual_seed(0)
    model = zoo.create_model("edgeconnect", variant="tiny")
    with torch.no_grad():  # untrained nets give near-constant maps: perturb them
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """``inpaintzoo-app`` started as a user would (its console script), on a free port."""
    tmp = tmp_path_factory.mktemp("app")
    ckpt = os.environ.get("INPAINTZOO_APP_CKPT") or str(_tiny_checkpoint(tmp / "tiny.ckpt"))
    script = Path(sys.executable).with_name("inpaintzoo-app")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "inpaintzoo.cli.app"]
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.Popen(
        [*command, f"ckpt={ckpt}", f"port={port}", f"output_dir={tmp / 'out'}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO,
    )
    lines: list[str] = []
    found = threading.Event()

    def pump():
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "serving on http://127.0.0.1:" in line:
                found.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 240
    while not found.is_set() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if not found.is_set():
        proc.kill()
        pytest.fail("inpaintzoo-app did not start:\n" + "".join(lines[-40:]))
    url = re.search(r"serving on (http://127\.0\.0\.1:\d+/?)", "".join(lines)).group(1)
    assert f":{port}" in url  # bound to loopback, on the port asked for
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    assert "Traceback" not in "".join(lines), "".join(lines[-60:])


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.fail(
            f"{CHROMIUM} / {CHROMEDRIVER} not found: apt-get install -y chromium "
            "chromium-driver (`make test-app` does it)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download drivers
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="inpaintzoo-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1400,1000")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


# --------------------------------------------------------------------------- page helpers
class Page:
    def __init__(self, driver, url: str) -> None:
        from selenium.webdriver.common.by import By

        self.d = driver
        self.url = url
        self.By = By

    def el(self, css: str):
        return self.d.find_element(self.By.CSS_SELECTOR, css)

    def status(self) -> str:
        return self.el("#status").text.strip()

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except Exception:  # noqa: BLE001 - elements re-render while gradio updates
                pass
            time.sleep(0.25)
        shot = self.shot("failure", Path(tempfile.gettempdir()) / "inpaintzoo-app-failure")
        raise AssertionError(
            f"timed out waiting for {what}; status: {self.status()!r}; screenshot: {shot}"
        )

    def idle(self) -> bool:
        """No component shows gradio's "processing" / queue indicator."""
        return self.d.execute_script(
            "return [...document.querySelectorAll('[data-testid=\"status-tracker\"]')]"
            ".filter(e => !e.classList.contains('hide') && /processing|queue/.test(e.textContent))"
            ".length === 0"
        )

    def wait_status(self, pattern: str, timeout: float = TIMEOUT) -> str:
        """Wait for the status box to match ``pattern`` and every component to finish updating."""
        self.wait(lambda: re.search(pattern, self.status()) is not None, pattern, timeout)
        calm = [0]

        def settled() -> bool:  # idle on 4 checks in a row: follow-up events have shown up
            calm[0] = calm[0] + 1 if self.idle() else 0
            return calm[0] >= 4

        self.wait(settled, "the page to finish updating", timeout)
        return self.status()

    def click(self, css: str) -> None:
        element = self.el(css)
        self.d.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()

    def upload(self, css: str, path: Path) -> None:
        self.el(f"{css} input[type=file]").send_keys(str(path))

    def stroke(self, css: str, points: list[tuple[int, int]]) -> None:
        """Drag the mouse through ``points`` (CSS px from the canvas centre) on an editor."""
        from selenium.webdriver.common.action_chains import ActionChains

        canvas = self.el(css).find_elements(self.By.TAG_NAME, "canvas")[0]
        self.d.execute_script("arguments[0].scrollIntoView({block: 'center'});", canvas)
        chain = ActionChains(self.d).move_to_element_with_offset(canvas, *points[0])
        chain.click_and_hold()
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            for t in np.linspace(0, 1, 6)[1:]:  # small moves: the brush follows every one
                chain.move_to_element_with_offset(
                    canvas, int(x0 + t * (x1 - x0)), int(y0 + t * (y1 - y0))
                )
        chain.release().perform()
        time.sleep(0.5)

    def shot(self, name: str, folder: Path = SCREENSHOTS) -> Path:
        """A screenshot of the whole page (the window grown to the page's height)."""
        height = self.d.execute_script(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
        )
        self.d.set_window_size(1400, min(max(int(height) + 40, 1000), 4000))
        self.d.execute_script("window.scrollTo(0, 0);")
        time.sleep(0.5)
        from PIL import Image

        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page = Image.open(io.BytesIO(self.d.get_screenshot_as_png())).convert("RGB")
        # 256 colours: a quarter of the bytes of a true-colour screenshot, for the repository
        page.quantize(256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)
        return path

    def download_links(self) -> dict[str, str]:
        links = self.d.find_elements(self.By.CSS_SELECTOR, "#downloads a[href]")
        return {Path(a.get_attribute("href")).name: a.get_attribute("href") for a in links}

    def no_traceback(self) -> None:
        text = self.d.find_element(self.By.TAG_NAME, "body").text
        assert "Traceback" not in text and 'File "' not in text


def _fetch_png(url: str) -> np.ndarray:
    from PIL import Image

    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - 127.0.0.1 only
        assert response.status == 200
        return np.asarray(Image.open(io.BytesIO(response.read())))


def _sample(name: str) -> Path:
    from inpaintzoo.data import embedded_data_dir

    return embedded_data_dir() / name


def _check_result(page: Page, original: np.ndarray, stem: str) -> tuple[np.ndarray, np.ndarray]:
    links = page.download_links()
    assert {f"{stem}_inpainted.png", f"{stem}_mask.png", f"{stem}_edges.png"} <= set(links)
    result = _fetch_png(links[f"{stem}_inpainted.png"])
    hole = _fetch_png(links[f"{stem}_mask.png"]) > 127
    assert result.shape == original.shape  # full resolution
    assert 0.001 < hole.mean() < 0.5
    changed = (result != original).any(axis=2)
    assert not changed[~hole].any(), "a known pixel changed"
    assert changed[hole].mean() > 0.2, "the hole was not filled"
    return result, hole


# --------------------------------------------------------------------------- the test
def test_inpaint_in_a_real_browser(app_url, browser, tmp_path):
    from inpaintzoo.data import read_image

    page = Page(browser, app_url)
    browser.get(app_url)
    page.wait_status(r"^Model .*edge-guided", timeout=60)

    # bad inputs first: visible messages, no stack trace, and the page keeps working
    page.click("#inpaint")
    page.wait_status(r"^Error: no image yet")
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not an image")
    page.upload("#image_file", notes)
    page.wait_status(r"^Error: notes\.txt is not an image")
    page.no_traceback()
    page.shot("01_bad_upload")

    # 1. the image
    photo = _sample("astronaut.png")
    original = read_image(photo)
    page.upload("#image_file", photo)
    page.wait_status(r"^Loaded astronaut\.png \(512x512\)")
    page.click("#inpaint")  # no hole yet
    page.wait_status(r"^Error: no hole")
    page.shot("02_image")

    # 2. the hole: a few brush strokes over the suit, around the page centre
    page.stroke("#mask_editor", [(-70, -30), (60, -30)])
    page.stroke("#mask_editor", [(-70, -10), (60, -10)])
    page.stroke("#mask_editor", [(-70, 10), (60, 10)])
    page.shot("03_mask")

    # 3. predicted edges, then one drawn edge stroke across the hole
    page.click("#predict_edges")
    page.wait_status(r"^Edges predicted at 512x512")
    page.shot("04_edges")
    page.stroke("#edge_editor", [(-60, -5), (50, 0)])
    page.shot("05_edge_stroke")

    # 4. inpaint: the result appears, the downloaded PNG differs from the upload only in the hole
    page.click("#inpaint")
    text = page.wait_status(r"^Inpainted 512x512")
    drawn = int(re.search(r"(\d+) px drawn", text).group(1))
    assert drawn > 0, text  # the edge stroke reached the pipeline
    page.wait(
        lambda: (
            browser.execute_script(
                "return [...document.querySelectorAll('#before_after img')]"
                ".filter(i => i.complete && i.naturalWidth > 0).length"
            )
            >= 2
        ),
        "the before/after images",
    )
    result, hole = _check_result(page, original, "astronaut")
    ys, xs = np.nonzero(hole)
    assert abs(xs.mean() - 256) < 100 and abs(ys.mean() - 256) < 100  # where we painted
    page.no_traceback()
    page.shot("06_result")

    # 5. object replacement: a second photo's edges placed in the hole, then inpaint again
    page.upload("#object_file", _sample("coffee.png"))
    page.wait_status(r"^Object coffee\.png placed in the hole")
    page.shot("07_object_edges")
    before = page.download_links()
    page.click("#inpaint")
    page.wait_status(r"^Inpainted 512x512")
    page.wait(lambda: page.download_links() not in ({}, before), "the new downloads")
    with_object, hole2 = _check_result(page, original, "astronaut")
    np.testing.assert_array_equal(hole2, hole)  # same hole
    assert (with_object != result).any()  # the object's edges changed the fill
    page.no_traceback()
    page.shot("08_object_result")
