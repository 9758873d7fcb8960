import io

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
