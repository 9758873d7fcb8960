"""Checks of the built docs (``make docs`` runs it after ``mkdocs build``); exit 1 on a failure.

- The CLI reference names, in each command's own section, every option that
  ``gliograde COMMAND --help`` lists.
- Each tutorial was executed by this build (not read from a cache) within its budget, and
  its page shows a plot and what it printed; where the real sample is beside the repository,
  tutorial 1 ran on it.
- The README is at most 120 lines, and every relative link in it resolves.
"""

from __future__ import annotations

import json
import re
import sys
from html import unescape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
SAMPLE = ROOT.parent / "shared" / "data" / "brats2020-sample"
TUTORIALS = sorted(p.stem for p in (ROOT / "docs" / "tutorials").glob("*.py"))
README_LINES = 120
EXECUTED_S = 5.0  # a page read from mkdocs-jupyter's cache, or not executed, takes < 1 s
PLOT = re.compile(r'<img[^>]+src="data:image/png;base64,')
REAL_DATA = re.compile(r"data: /\S+ \(real BraTS 2020\)")  # what tutorial 1 prints, not its source


class Missing(Exception):
    """A file the build should have written is not there."""


def read(path: Path) -> str:
    if not path.is_file():
        raise Missing(f"{path.relative_to(ROOT)}: missing; run `make docs` (mkdocs build) first")
    return path.read_text()


def command_sections(page: str, names: list[str]) -> dict[str, str]:
    """Each command's part of the CLI reference: from its heading to the next one."""
    starts = {n: page.find(f'id="gliograde-{n}"') for n in names}
    order = sorted((i, n) for n, i in starts.items() if i >= 0)
    ends = [i for i, _ in order[1:]] + [len(page)]
    return {n: unescape(page[i:end]) for (i, n), end in zip(order, ends)}


def cli_problems() -> list[str]:
    """Commands or options of the command line that its reference page does not show."""
    from gliograde.cli.reference import cli

    names = [n for n, c in cli.commands.items() if not c.hidden]
    sections = command_sections(read(SITE / "reference" / "cli" / "index.html"), names)
    problems, flags = [], 0
    for name in names:
        if name not in sections:
            problems.append(f"reference/cli: no section for command {name}")
            continue
        for param in cli.commands[name].params:  # Typer's own click: compare by kind
            if param.param_type_name == "option" and not param.hidden:
                for flag in param.opts + param.secondary_opts:
                    flags += 1
                    if flag not in sections[name]:
                        problems.append(f"reference/cli: {name} {flag} missing")
    if flags < 50:
        problems.append(f"reference/cli: only {flags} options found in the commands themselves")
    return problems


def tutorial_problems() -> list[str]:
    """Tutorials not executed by this build, or whose page lacks a plot or an output."""
    problems = []
    times = json.loads(read(SITE / "tutorial-times.json"))
    for name in TUTORIALS:
        page = read(SITE / "tutorials" / name / "index.html")
        seconds = times.get(f"tutorials/{name}.py", 0.0)
        if seconds < EXECUTED_S:
            problems.append(f"tutorials/{name}: took {seconds} s, so it was not executed")
        if not PLOT.search(page):
            problems.append(f"tutorials/{name}: no plot among its outputs")
        if 'class="jp-RenderedText' not in page:
            problems.append(f"tutorials/{name}: no printed output on the page")
    page = read(SITE / "tutorials" / "mri_for_deep_learning" / "index.html")
    if SAMPLE.is_dir() and not REAL_DATA.search(page):
        problems.append("tutorials/mri_for_deep_learning: the real sample is here, not used")
    return problems


def readme_problems() -> list[str]:
    """The README too long, or a relative link in it that does not resolve."""
    text = read(ROOT / "README.md")
    problems = []
    lines = text.count("\n")
    if lines > README_LINES:
        problems.append(f"README.md: {lines} lines, more than {README_LINES}")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address (not reachable from CI) or an anchor on the page
        if not (ROOT / target.split("#")[0]).exists():
            problems.append(f"README.md: link to {target}, which does not exist")
    return problems


def main() -> int:
    try:
        problems = cli_problems() + tutorial_problems() + readme_problems()
    except Missing as err:
        problems = [str(err)]
    for line in problems:
        print(f"check_docs: {line}", file=sys.stderr)
    if not problems:
        print(f"check_docs: CLI reference complete; {len(TUTORIALS)} tutorials executed with "
              "outputs and plots; README short, its links resolve")  # fmt: skip
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
