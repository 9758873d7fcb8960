import io
import os

from gliograde.core import parallel
from gliograde.core.parallel import map_with_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_is_drawn_on_a_terminal_only(monkeypatch):
    """A log file, a pipe or a notebook gets the results without a bar; a terminal gets it."""
    for stream, drawn in ((io.StringIO(), False), (Terminal(), True)):
        monkeypatch.setattr(parallel.sys, "stderr", stream)
        assert list(map_with_progress(str, [1, 2, 3], workers=0, desc="check")) == ["1", "2", "3"]
        assert ("check: 100%" in stream.getvalue()) == drawn


def test_share_threads_sets_what_is_unset_and_keeps_what_is(monkeypatch):
    from gliograde.core.parallel import THREAD_VARIABLES, share_threads

    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    share_threads(1)
    assert {name: os.environ[name] for name in THREAD_VARIABLES} == {
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "3",
        "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": "1",
    }
