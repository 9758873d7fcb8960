"""Debian's Chromium, headless, driven by Playwright (no browser download): opens a viewer page
from ``file://`` and reads back what it drew. Used by the viewer's tests and by
``scripts/viewer_screenshot.py``.

WebGL runs on SwiftShader (Chromium's CPU renderer), so the pages render on a machine without
a GPU, as in CI.
"""

from __future__ import annotations

import io
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CHROMIUM = Path(os.environ.get("GLIOGRADE_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--headless=new",
    "--no-sandbox",  # we run as root here, in CI too
    "--no-first-run",
    "--disable-background-networking",  # the machine has no network: no calls home
    "--disable-component-update",
    "--disable-sync",
    "--use-angle=swiftshader",  # WebGL 2 on the CPU
    "--enable-unsafe-swiftshader",
]
READY_MS = 90_000


@dataclass
class Opened:
    """A viewer page loaded in the browser, and what its console said."""

    page: object
    messages: list[tuple[str, str]] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [text for kind, text in self.messages if kind in ("error", "pageerror")]

    def canvas(self) -> np.ndarray:
        """The viewer's canvas as RGB pixels ``[h, w, 3]`` (uint8)."""
        from PIL import Image

        png = self.page.locator("#gg-gl").screenshot()
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))

    def run(self, script: str):
        """Evaluate ``script`` in the page (``ggViewer`` is the viewer's handle), let it draw."""
        value = self.page.evaluate(script)
        self.page.wait_for_timeout(300)
        return value


@contextmanager
def chromium(width: int = 1280, height: int = 960):
    """A new page in headless Chromium, closed on exit."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        raise FileNotFoundError(
            f"{CHROMIUM}: no Chromium; apt-get install chromium (or set GLIOGRADE_CHROMIUM)"
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def open_viewer(page, path: Path) -> Opened:
    """Load a viewer page from ``file://`` and wait until its volumes are shown (or it failed)."""
    opened = Opened(page)
    page.on("console", lambda m: opened.messages.append((m.type, m.text)))
    page.on("pageerror", lambda e: opened.messages.append(("pageerror", str(e))))
    page.goto(Path(path).resolve().as_uri())
    page.wait_for_function(
        "window.ggViewer && (window.ggViewer.ready || window.ggViewer.error)", timeout=READY_MS
    )
    page.wait_for_timeout(300)
    return opened
