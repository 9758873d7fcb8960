"""Freeze gliograde's answers as golden files, so that a refactor can show it changed none.

For three SYNTHETIC targets (the grade: two classes; IDH: two classes named otherwise; the WHO
grade: three classes) it trains a tiny run (the tests' ``trained_run``), then saves what a user
reads: ``metrics.json``, ``predictions_patients.csv``, ``calibration.json`` and ``predict
--json`` with and without the segmentation. Into ``OUT/<target>/``:

* ``run/``: the run's files without its weights, after ``gliograde evaluate RUN`` (which
  recomputes every figure from the saved patient evidence), as the committed fixture;
* ``predict.json``: ``predict --json`` on four of the cohort's subjects, with and without the
  segmentation (checked against the full run, kept in ``--keep DIR`` when given).

Usage (from the repository root; the code that is frozen is the one on PYTHONPATH):

    python scripts/make_golden.py tests/golden --keep /tmp/golden-runs

``--check`` instead grades the subjects again with the kept runs and the code of now, and
prints each answer that differs from ``predict.json`` (numbers beyond 1e-6: the JSON's six
decimals, one unit of rounding).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

TARGETS = {"grade": None, "idh": "IDH", "who": "WHO_grade"}
SYNTH_FLAGS = {"grade": {}, "idh": {"idh": True}, "who": {"who": True}}
KEPT = (
    "config.json",
    "splits.json",
    "metrics.json",
    "predictions_patients.csv",
    "predictions_slices.csv",
    "calibration.json",
)
PREDICTED = 4


def make(name: str, work: Path, out: Path) -> None:
    """Train ``name``'s run in ``work`` and write its golden files into ``out``."""
    from gliograde.assess.evaluate import evaluate_run
    from gliograde.io.synth import synth_cohort
    from helpers.data import SMALL_SHAPE
    from helpers.runs import trained_run

    cohort = work / "cohort"
    synth_cohort(cohort, 10, 0.4, 3, SMALL_SHAPE, quiet=True, **SYNTH_FLAGS[name])
    _, run, _ = trained_run(cohort, work, TARGETS[name])
    evaluate_run(run)  # the figures as recomputed from the saved evidence, as the test does
    (out / "run").mkdir(parents=True, exist_ok=True)
    for file in KEPT:
        if (run / file).is_file():
            shutil.copy2(run / file, out / "run" / file)
    answers = predict_answers(run, cohort)
    (out / "predict.json").write_text(json.dumps(answers, indent=1, sort_keys=True) + "\n")


def predict_answers(run: Path, cohort: Path) -> dict:
    """``predict --json``'s objects for the first subjects, with and without the segmentation."""
    from gliograde.predict import PredictOptions, predict_subjects

    subjects = sorted(p for p in cohort.iterdir() if p.is_dir())[:PREDICTED]
    answers = {}
    for ignore_seg in (False, True):
        options = PredictOptions(ignore_seg=ignore_seg, device="cpu")
        found = predict_subjects(subjects, run, options)
        answers["noseg" if ignore_seg else "seg"] = [p.to_dict() for p in found]
    return answers


def differences(new, old, where: str = "") -> list[str]:
    """Where ``new`` differs from ``old`` (numbers beyond 1e-6)."""
    if isinstance(old, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in differences(new.get(k), old.get(k), f"{where}.{k}")]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, ab in enumerate(zip(new, old)) for d in differences(*ab, f"{where}[{i}]")]
    if isinstance(old, float) and isinstance(new, float):
        return [] if abs(new - old) <= 1e-6 else [f"{where}: {new} != {old}"]
    return [] if new == old else [f"{where}: {new!r} != {old!r}"]


def check(golden: Path, keep: Path) -> int:
    """Grade again with the kept runs; print the differences; their count."""
    found = 0
    for name in TARGETS:
        old = json.loads((golden / name / "predict.json").read_text())
        new = predict_answers(keep / name / "run", keep / name / "cohort")
        for line in differences(new, old):
            print(f"{name}: {line}")
            found += 1
        print(f"{name}: checked {sum(len(v) for v in old.values())} answers")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--keep", type=Path, required=True, help="where the full runs go")
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    if args.check:
        sys.exit(1 if check(args.out, args.keep) else 0)
    for name in TARGETS:
        work = args.keep / name
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        make(name, work, args.out / name)
        print(f"{name}: {args.out / name}")


if __name__ == "__main__":
    main()
