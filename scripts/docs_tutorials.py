"""The tutorials executed ahead of their pages, as many at a time as there are cores.

mkdocs renders pages one after the other, and mkdocs-jupyter executes a tutorial while its page
renders, so the tutorials would run one at a time, each in a kernel that cannot keep the cores
busy (a tutorial waits on files, plots and one-thread steps). ``docs_hooks`` starts them all
when the build starts, in processes of this module, with mkdocs-jupyter's own converter and the
options it will ask for; when a page asks, the HTML is ready or on its way. Each kernel uses its
share of the cores (PyTorch's and SimpleITK's threads).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

PLUGIN_OPTIONS = (
    "kernel_name",
    "theme",
    "allow_errors",
    "show_input",
    "no_input",
    "no_prompt",
    "remove_tag_config",
    "highlight_extra_classes",
    "include_requirejs",
    "custom_mathjax_url",
)
"""What mkdocs-jupyter passes to its converter besides ``execute`` (its ``on_pre_page``)."""


def converter_options(plugin_config) -> dict:
    """The keyword arguments mkdocs-jupyter's page will give ``convert.nb2html``."""
    return {"execute": True} | {name: plugin_config[name] for name in PLUGIN_OPTIONS}


def execute(nb_path: str, options: dict) -> tuple[str, float]:
    """The tutorial's page as mkdocs-jupyter makes it, and the seconds its execution took."""
    from mkdocs_jupyter import convert

    started = time.perf_counter()
    html = convert.nb2html(nb_path, **options)
    return html, round(time.perf_counter() - started, 1)


def start(tutorials: list[Path], options: dict) -> dict[str, Future]:
    """Every tutorial started, at most one per core at a time: absolute path → its future
    ``(html, seconds)``."""
    from gliograde.core.parallel import default_workers, share_threads

    cores = default_workers()
    workers = max(1, min(len(tutorials), cores))
    pool = ProcessPoolExecutor(
        workers,
        mp_context=get_context("spawn"),
        initializer=share_threads,  # for the kernels each worker starts
        initargs=(max(1, cores // workers),),
    )
    futures = {str(p.resolve()): pool.submit(execute, str(p), options) for p in tutorials}
    pool.shutdown(wait=False)  # the workers end once the last tutorial is done
    return futures
