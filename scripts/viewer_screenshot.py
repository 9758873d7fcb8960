"""Screenshot a patient's viewer page as a reader sees it, in headless Debian Chromium.

The docs' picture (docs/img/viewer.png) is made from the demo's run:

    make demo
    .venv/bin/python scripts/viewer_screenshot.py \\
        demo-output/run/explain/Synth_0001/viewer.html docs/img/viewer.png

Exit 1 if the page logs a console error or does not start.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers.browser import chromium, open_viewer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="a viewer.html that explain wrote")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--view", default="multiplanar", help="multiplanar, axial, coronal...")
    args = parser.parse_args()
    with chromium(width=1280, height=900) as page:
        opened = open_viewer(page, args.page)
        failed = opened.run("ggViewer.error")
        if failed or opened.errors:
            print(f"{args.page}: {failed or opened.errors[0]}", file=sys.stderr)
            return 1
        page.get_by_role("button", name=args.view, exact=True).click()
        page.wait_for_timeout(500)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out), full_page=True)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
