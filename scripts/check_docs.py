"""Checks of the built docs (``make docs`` runs it after ``mkdocs build``); exit 1 on a failure.

- The CLI reference names every command and every option that ``gliograde --help`` lists.
- Each tutorial page shows what it printed and at least one plot, and was timed.
- The README is at most 120 lines, and every relative link in it resolves.
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
TUTORIALS = sorted(p.stem for p in (ROOT / "docs" / "tutorials").glob("*.py"))
README_LINES = 120


def cli_problems() -> list[str]:
    from gliograde.cli.reference import cli

    page = html.unescape((SITE / "reference" / "cli" / "index.html").read_text())
    problems, flags = [], 0
    for name, command in cli.commands.items():
        if command.hidden:
            continue
        if f"gliograde {name}" not in page:
            problems.append(f"reference/cli: command {name} missing")
        for param in command.params:  # Typer's own click: compare by kind, not by class
            if param.param_type_name == "option" and not param.hidden:
                for flag in param.opts + param.secondary_opts:
                    flags += 1
                    if flag not in page:
                        problems.append(f"reference/cli: {name} {flag} missing")
    if flags < 50:
        problems.append(f"reference/cli: only {flags} options found in the commands themselves")
    return problems


def tutorial_problems() -> list[str]:
    problems = []
    times = json.loads((SITE / "tutorial-times.json").read_text())
    for name in TUTORIALS:
        page = (SITE / "tutorials" / name / "index.html").read_text()
        if page.count("data:image/png;base64") < 1:
            problems.append(f"tutorials/{name}: no plot on the page")
        if "jp-OutputArea-output" not in page:
            problems.append(f"tutorials/{name}: no output on the page")
        if name == "mri_for_deep_learning" and "(real BraTS 2020)" not in page:
            problems.append(f"tutorials/{name}: did not run on the real sample")
        if f"tutorials/{name}.py" not in times:
            problems.append(f"tutorials/{name}: not executed by the build")
    return problems


def readme_problems() -> list[str]:
    text = (ROOT / "README.md").read_text()
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
    problems = cli_problems() + tutorial_problems() + readme_problems()
    for line in problems:
        print(f"check_docs: {line}", file=sys.stderr)
    if not problems:
        print(f"check_docs: CLI reference complete; {len(TUTORIALS)} tutorials with outputs "
              "and plots; README short, its links resolve")  # fmt: skip
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
