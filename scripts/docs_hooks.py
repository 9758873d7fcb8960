"""mkdocs hooks: the generated command-line reference, and the tutorials' execution timed.

The reference is Typer's own Markdown of the commands (what ``typer MODULE utils docs``
writes), put where ``reference/cli.md`` holds the marker ``<!-- gliograde-cli -->``.

The tutorials are executed ahead of their pages, as many at a time as there are cores
(``docs_tutorials``), by mkdocs-jupyter's own converter, which its pages then find done. A
tutorial's time is its execution's (kernel start included). The build fails when a tutorial runs
over its budget (200 s on its share of the cores, ``GLIOGRADE_TUTORIAL_BUDGET_S``) or the whole
build over its own (360 s, ``GLIOGRADE_DOCS_BUDGET_S``). The times go to
``site/tutorial-times.json``.
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
    """When the build started, and each tutorial's start and duration (a tutorial executed
    ahead: the seconds its execution took, by the absolute path of its source)."""

    build_started = time.perf_counter()
    started: dict[str, float] = {}  # noqa: RUF012 (one build per process)
    seconds: dict[str, float] = {}  # noqa: RUF012
    ahead: dict[str, float] = {}  # noqa: RUF012


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
    """Start the build's clock; start executing the tutorials."""
    Clock.build_started = time.perf_counter()
    Clock.ahead.clear()
    plugin = config["plugins"]["mkdocs-jupyter"].config
    if plugin["execute"] and not plugin["cache"]:  # a cached build executes only what changed
        execute_tutorials_ahead(config, plugin)


def execute_tutorials_ahead(config, plugin) -> None:
    """Start every tutorial now (``docs_tutorials``) and wrap mkdocs-jupyter's converter: asked
    for a tutorial started here, it waits for that result instead of executing it again.

    Args:
        config: mkdocs' configuration (where the tutorials are).
        plugin: mkdocs-jupyter's configuration (the options its pages convert with).
    """
    import sys

    from mkdocs_jupyter import convert

    here = str(Path(__file__).parent)
    if here not in sys.path:
        sys.path.insert(0, here)  # where the worker processes import docs_tutorials from
    import docs_tutorials

    options = docs_tutorials.converter_options(plugin)
    tutorials = sorted((Path(config["docs_dir"]) / "tutorials").glob("*.py"))
    futures = docs_tutorials.start(tutorials, options)
    # a build after another in one process (mkdocs serve) wraps the converter, not the wrapper
    render = getattr(convert.nb2html, "__wrapped__", convert.nb2html)
    wait = budget("GLIOGRADE_DOCS_BUDGET_S", 360)

    def executed_ahead(nb_path, **kwargs):
        key = str(Path(nb_path).resolve())
        future = futures.pop(key, None)
        if future is None:
            return render(nb_path, **kwargs)
        if kwargs != options:
            raise PluginError(
                f"{nb_path}: mkdocs-jupyter asked for options {sorted(kwargs)} other than "
                "scripts/docs_tutorials.py executed it with: update its PLUGIN_OPTIONS"
            )
        html, Clock.ahead[key] = future.result(timeout=wait)
        return html

    executed_ahead.__wrapped__ = render  # type: ignore[attr-defined]
    convert.nb2html = executed_ahead


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
    name, allowed = page.file.src_uri, budget("GLIOGRADE_TUTORIAL_BUDGET_S", 200)
    measured = round(time.perf_counter() - Clock.started[name], 1)
    source = str(Path(page.file.abs_src_path).resolve())
    took = Clock.seconds[name] = Clock.ahead.get(source, measured)
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
