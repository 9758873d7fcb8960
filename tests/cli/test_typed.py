import pytest

from gliograde.cli.typed import gliograde
from gliograde.core.errors import GliogradeError


def test_a_command_as_typed_shows_its_output_and_returns_stdout(capsys):
    out = gliograde("check --help")
    assert "--no-labels" in out
    shown = capsys.readouterr().out
    assert shown.startswith("$ gliograde check --help\n") and "--no-labels" in shown


def test_a_failing_command_raises_one_line(tmp_path):
    with pytest.raises(GliogradeError, match=r"gliograde check .*missing: exit 2"):
        gliograde(f"check {tmp_path / 'missing'}")
