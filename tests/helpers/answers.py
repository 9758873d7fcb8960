"""Answers for tests of what writes them (the DICOM SR, the predictions page, the node's log):
a :class:`~gliograde.predict.Prediction` made without a run or a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def graded(
    subject: str,
    p,
    p_uncalibrated=None,
    target=None,
    answer: str | None = None,
    uncertainty: float = 0.1,
    flag: bool = False,
    extra: dict | None = None,
    dicom: tuple[Path, set[str]] | None = None,
):
    """A graded subject's answer: ``p`` is P(class 1) for two classes (the grade's P(HGG) by
    default), a vector for more, as a test writes it (made ``[K]`` here); ``answer`` defaults
    to the class the rule would give."""
    from gliograde.infer.patient import Evidence, PatientResult
    from gliograde.io.target import GRADE
    from gliograde.model.probability import answer_index
    from gliograde.predict import Prediction

    target = target or GRADE
    p = vector(p)
    p_uncalibrated = p if p_uncalibrated is None else vector(p_uncalibrated)
    if answer is None:
        answer = target.classes[int(answer_index(p))]
    empty = np.zeros((0, len(p)))
    evidence = Evidence(p_uncalibrated, 0.05, 0.02, 0.0, 40, False, empty, np.zeros(0))
    result = PatientResult(p_uncalibrated, p, answer, uncertainty, flag, evidence)
    return Prediction(subject, target, result, extra=dict(extra or {}), dicom=dicom)


def vector(p) -> np.ndarray:
    """``[1 − p, p]`` of a number, a vector as it is."""
    return np.array([1.0 - p, p]) if np.ndim(p) == 0 else np.asarray(p, dtype=np.float64)


def failed(subject: str, error: str, target=None):
    """A subject that could not be graded, with its one-line reason."""
    from gliograde.io.target import GRADE
    from gliograde.predict import Prediction

    return Prediction(subject, target or GRADE, error=error)
