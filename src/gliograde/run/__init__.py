"""A run folder and the records it holds: :class:`~gliograde.run.folder.Run` (the folder),
:mod:`~gliograde.run.config` (``config.json``), :mod:`~gliograde.run.calibration`
(``calibration.json``)."""

from gliograde.run.folder import Run

__all__ = ["Run"]
