"""OHIF over a real PACS, as a hospital team runs it, for the browser tests: the built viewer of
npm's ``@ohif/app`` (``make ohif`` caches it), served at ``/`` by a small same-origin proxy
that forwards ``/dicom-web/`` to Orthanc's DICOMweb plugin (Orthanc 1.10 sends no CORS
headers, so the viewer and the PACS must share an origin), with an ``app-config.js`` naming
that one data source."""

from __future__ import annotations

import http.server
import os
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

OHIF_VERSION = "3.13.2"
OHIF_DIST = Path(
    os.environ.get(
        "GLIOGRADE_OHIF",
        Path.home() / ".cache" / "gliograde" / f"ohif-{OHIF_VERSION}" / "dist",
    )
)
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")

APP_CONFIG = """window.config = {
  routerBasename: '/',
  extensions: [],
  modes: [],
  showStudyList: true,
  maxNumberOfWebWorkers: 2,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  defaultDataSourceName: 'orthanc',
  dataSources: [{
    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
    sourceName: 'orthanc',
    configuration: {
      friendlyName: 'Orthanc', name: 'orthanc',
      wadoUriRoot: '/dicom-web', qidoRoot: '/dicom-web', wadoRoot: '/dicom-web',
      qidoSupportsIncludeField: false, imageRendering: 'wadors', thumbnailRendering: 'wadors',
      enableStudyLazyLoad: true, supportsFuzzyMatching: true, supportsWildcard: true,
      omitQuotationForMultipartRequest: true, bulkDataURI: { enabled: true },
    },
  }],
};
"""
"""OHIF's configuration: one DICOMweb data source, on the proxy's own origin."""

DICOMWEB_CONFIG = {
    "Enable": True,
    "Root": "/dicom-web/",
    "EnableWado": True,
    "WadoRoot": "/wado",
    "Ssl": False,
    "StudiesMetadata": "Full",
    "SeriesMetadata": "Full",
}
"""Orthanc's DICOMweb plugin, as OHIF reads it (full metadata, no TLS on loopback)."""


def missing() -> str | None:
    """What is missing to run OHIF over Orthanc here, as a one-line install hint (None: all)."""
    if not (OHIF_DIST / "index.html").is_file():
        return f"no OHIF viewer in {OHIF_DIST}: make ohif (npm pack @ohif/app@{OHIF_VERSION})"
    if not DICOMWEB_PLUGIN.is_file():
        return "no Orthanc DICOMweb plugin: apt-get install orthanc-dicomweb"
    return None


def handler(dist: Path, orthanc_http: int):
    """The proxy's request handler: the viewer's files, its configuration, and DICOMweb."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(dist), **kwargs)

        def log_message(self, *args):  # the tests read pixels, not the access log
            pass

        def do_GET(self):
            path = self.path.split("?")[0]
            if path.startswith("/dicom-web/"):
                return self.forward()
            if path == "/app-config.js":
                return self.reply(200, APP_CONFIG.encode(), "application/javascript")
            if path == "/" or not (dist / path.lstrip("/")).is_file():
                self.path = "/index.html"  # OHIF's router: every page is index.html
            return super().do_GET()

        def forward(self):
            url = f"http://127.0.0.1:{orthanc_http}{self.path}"
            accept = {"Accept": self.headers.get("Accept", "*/*")}
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=accept)) as r:
                    self.reply(r.status, r.read(), r.headers.get("Content-Type"))
            except urllib.error.HTTPError as err:
                self.reply(err.code, err.read(), err.headers.get("Content-Type"))

        def reply(self, status: int, body: bytes, kind: str | None):
            self.send_response(status)
            if kind:
                self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def ohif_over(orthanc_http: int, dist: Path = OHIF_DIST):
    """OHIF served on a free loopback port over the Orthanc whose REST port is
    ``orthanc_http``; yields the viewer's base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler(dist, orthanc_http))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Viewer:
    """OHIF's study viewer in a Playwright page, read as a user reads it: its study browser,
    what a selected series shows as text, and the colour in its viewport."""

    def __init__(self, page, base: str):
        self.page, self.base = page, base
        self.dismissed = False  # OHIF remembers its start-up dialogs closed, once they were
        self.messages: list[str] = []
        page.on("console", lambda m: self.messages.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.messages.append(f"pageerror: {e}"))

    def open_study(self, study_uid: str, ready_text: str) -> None:
        """Open one study; wait until its study browser shows ``ready_text`` (a series'
        description), then close the guided tour and the banner that OHIF opens with."""
        self.page.goto(f"{self.base}/viewer?StudyInstanceUIDs={study_uid}")
        self.page.wait_for_selector(f"text={ready_text}", timeout=180_000)
        self.dismissed = self.dismiss(4 if self.dismissed else 15) or self.dismissed

    def dismiss(self, seconds: float) -> bool:
        """The tour ("Skip all") and the banner ("Confirm and hide") come a few seconds after
        the study, in either order: each is clicked once it shows (Playwright's locator
        handlers hang on the banner), within ``seconds``; True when both were closed. Once
        closed, they stay closed (OHIF keeps that in the browser's storage): a later open waits
        a few seconds only, in case they come back. (The tests wait minutes for what they look
        at: the images of a series queue behind those OHIF loads first.)"""
        import time

        from playwright.sync_api import TimeoutError as NotClickable

        # the tour first: while it shows, its overlay takes the clicks meant for the banner
        left = ["button.shepherd-button:has-text('Skip all')", "[data-cy=confirm-and-hide-button]"]
        deadline = time.monotonic() + seconds
        while left and time.monotonic() < deadline:
            for css in list(left):
                found = self.page.locator(css)
                if found.count() and found.first.is_visible():
                    try:
                        found.first.click(timeout=2_000)
                        left.remove(css)
                    except NotClickable:  # covered (by the tour, still fading): next round
                        continue
            self.page.wait_for_timeout(300)
        stuck = [css for css in left if self.page.locator(css).first.is_visible()]
        assert not stuck, f"OHIF's start-up dialogs did not close: {stuck}"
        return not left

    def series_texts(self) -> list[str]:
        """Each row and thumbnail of the study browser, as text."""
        return self.page.eval_on_selector_all(
            "[data-series]", "els => els.map(e => e.innerText.replace(/\\s+/g, ' '))"
        )

    def select(self, series_number: int) -> None:
        """Double-click the series in the study browser (what loads it in the viewport)."""
        self.page.locator(f'[data-series="{series_number}"]').first.dblclick()

    def annotation_texts(self) -> list[str]:
        """The text drawn over the image (OHIF's annotations are SVG)."""
        return self.page.eval_on_selector_all(
            "svg text", "els => els.map(e => e.textContent).filter(Boolean)"
        )

    def coloured_pixels(self, path: Path | None = None) -> int:
        """Strongly coloured pixels in the viewport's canvas, its border left out: a heat map
        over a grey MR (a first try counted about 23,000 on a map's slice and about 100
        elsewhere, on the real sample)."""
        import io

        import numpy as np
        from PIL import Image

        png = self.page.locator("[data-cy=viewport-pane] canvas").first.screenshot()
        if path is not None:
            Path(path).write_bytes(png)
        rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)[40:-40, 40:-40]
        return int(((rgb.max(axis=2) - rgb.min(axis=2)) > 60).sum())

    def slice_number(self) -> int | None:
        """The viewport's slice read-out (``I:n``), or None when it shows none."""
        import re

        text = self.page.locator("[data-cy=viewport-overlay-bottom-right]").first.inner_text()
        found = re.search(r"I:\s*(\d+)", text)
        return int(found.group(1)) if found else None

    def go_to_slice(self, target: int, steps: int = 400) -> None:
        """Step with the arrow keys until the read-out says ``target`` (which key goes which
        way is found by trying)."""
        box = self.page.locator("[data-cy=viewport-pane]").first.bounding_box()
        self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        key = "ArrowDown"
        for _ in range(steps):
            now = self.slice_number()
            if now == target:
                self.page.wait_for_timeout(1_500)
                return
            self.page.keyboard.press(key)
            after = self.changed_from(now)
            if now is not None and after is not None and (after - now) * (target - now) < 0:
                key = "ArrowUp" if key == "ArrowDown" else "ArrowDown"
        raise AssertionError(f"slice {target} not reached (at {self.slice_number()})")

    def changed_from(self, before: int | None, seconds: float = 2.0) -> int | None:
        """The slice read-out once it differs from ``before`` (or as it is after ``seconds``)."""
        waited = 0.0
        while (now := self.slice_number()) == before and waited < seconds:
            self.page.wait_for_timeout(50)
            waited += 0.05
        return now
