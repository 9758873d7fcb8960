"""mkdocs hooks: the generated command-line reference, and the tutorials' execution timed.

The reference is Typer's own Markdown of the commands (what ``typer MODULE utils docs``
writes), put where ``reference/cli.md`` holds the marker ``<!-- gliograde-cli -->``.

mkdocs-jupyter executes a tutorial while its page renders, between the ``page_markdown`` and
``page_content`` events, so the time between them is the tutorial's execution (kernel start
included). The build fails when a tutorial runs over its budget (120 s,
``GLIOGRADE_TUTORIAL_BUDGET_S``) or the whole build over its own (360 s,
``GLIOGRADE_DOCS_BUDGET_S``). The times go to ``site/tutorial-times.json``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mkdocs.exceptions import PluginError

CLI_MARKER = "<!-- gliograde-cli -->"


def budget(name: str, default: float) -> float:
    """Seconds allowed, from the environment variable ``name``."""
    text = os.environ.get(name, str(default))
    try:
        return float(text)
    except ValueError:
        raise PluginError(f"{name}={text!r}: not a number of seconds") from None


class Clock:
    """When the build started, and each tutorial's start and duration."""

    build_started = time.perf_counter()
    started: dict[str, float] = {}  # noqa: RUF012 (one build per process)
    seconds: dict[str, float] = {}  # noqa: RUF012


def cli_reference() -> str:
    """Every command with its arguments and options, as Typer documents them."""
    import typer
    from typer.cli import get_docs_for_click

    from gliograde.cli.reference import cli

    ctx = typer.Context(cli, info_name="gliograde")
    return get_docs_for_click(obj=cli, ctx=ctx, indent=1, name="gliograde")


def is_tutorial(page) -> bool:
    """Whether ``page`` is an executed tutorial (a ``tutorials/*.py`` script)."""
    return page.file.src_uri.startswith("tutorials/") and page.file.src_uri.endswith(".py")


def on_pre_build(config):
    """Start the build's clock."""
    Clock.build_started = time.perf_counter()


def on_page_markdown(markdown, page, config, files):
    """Put the CLI reference in place; start a tutorial's clock."""
    if CLI_MARKER in markdown:
        return markdown.replace(CLI_MARKER, cli_reference())
    if is_tutorial(page):
        Clock.started[page.file.src_uri] = time.perf_counter()
    return markdown


def on_page_content(html, page, config, files):
    """Stop a tutorial's clock: fail over its budget."""
    if not is_tutorial(page):
        return html
    name, allowed = page.file.src_uri, budget("GLIOGRADE_TUTORIAL_BUDGET_S", 120)
    took = Clock.seconds[name] = round(time.perf_counter() - Clock.started[name], 1)
    print(f"tutorial {name}: executed in {took:.1f} s (budget {allowed:.0f} s)")
    if took > allowed:
        raise PluginError(f"{name}: ran {took:.0f} s, over its {allowed:.0f} s budget")
    return html


def on_post_build(config):
    """Write the tutorials' times; fail when the whole build ran over its budget."""
    out = Path(config["site_dir"]) / "tutorial-times.json"
    out.write_text(json.dumps(Clock.seconds, indent=2) + "\n")
    took, allowed = (
        time.perf_counter() - Clock.build_started,
        budget("GLIOGRADE_DOCS_BUDGET_S", 360),
    )
    print(f"docs build: {took:.0f} s, tutorials included (budget {allowed:.0f} s)")
    if took > allowed:
        raise PluginError(f"the docs build took {took:.0f} s, over its {allowed:.0f} s budget")
