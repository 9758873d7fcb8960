"""mkdocs hooks: the generated command-line reference, and each executed tutorial timed (the
build fails when one runs over its budget).

The reference is Typer's own Markdown of the commands (what ``typer MODULE utils docs``
writes), put where ``reference/cli.md`` holds the marker ``<!-- gliograde-cli -->``.

mkdocs-jupyter executes a tutorial while its page renders, between the ``page_markdown`` and
``page_content`` events, so the time between them is the tutorial's execution (kernel start
included). The budget is 120 s a tutorial (``GLIOGRADE_TUTORIAL_BUDGET_S`` changes it); the
times go to ``site/tutorial-times.json``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mkdocs.exceptions import PluginError

BUDGET_S = float(os.environ.get("GLIOGRADE_TUTORIAL_BUDGET_S", "120"))
started: dict[str, float] = {}
seconds: dict[str, float] = {}


CLI_MARKER = "<!-- gliograde-cli -->"


def cli_reference() -> str:
    """Every command with its arguments and options, as Typer documents them."""
    import typer
    from typer.cli import get_docs_for_click

    from gliograde.cli.reference import cli

    ctx = typer.Context(cli, info_name="gliograde")
    return get_docs_for_click(obj=cli, ctx=ctx, indent=1, name="gliograde")


def is_tutorial(page) -> bool:
    return page.file.src_uri.startswith("tutorials/") and page.file.src_uri.endswith(".py")


def on_page_markdown(markdown, page, config, files):
    if CLI_MARKER in markdown:
        return markdown.replace(CLI_MARKER, cli_reference())
    if is_tutorial(page):
        started[page.file.src_uri] = time.perf_counter()
    return markdown


def on_page_content(html, page, config, files):
    if not is_tutorial(page):
        return html
    name = page.file.src_uri
    seconds[name] = round(time.perf_counter() - started[name], 1)
    print(f"tutorial {name}: executed in {seconds[name]:.1f} s (budget {BUDGET_S:.0f} s)")
    if seconds[name] > BUDGET_S:
        raise PluginError(f"{name}: ran {seconds[name]:.0f} s, over its {BUDGET_S:.0f} s budget")
    return html


def on_post_build(config):
    out = Path(config["site_dir"]) / "tutorial-times.json"
    out.write_text(json.dumps(seconds, indent=2) + "\n")
