"""Out-of-fold figures of one cross-validated run, graded in float32 and in bfloat16.

Usage: python scripts/compare_precision.py RUN WORK

Copies RUN twice into WORK, re-grades every fold's held-out patients in fp32 and in bf16
(``--precision``), and prints each patient AUC (with and without
segmentation) and the largest change of a patient's P(HGG). The training is not repeated.
"""

import csv
import shutil
import sys
from pathlib import Path

from gliograde.assess.crossval import evaluate_cross_validation
from gliograde.run.calibration import Mode


def regrade(run: Path, work: Path, precision: str) -> Path:
    copy = work / f"run-{precision}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run, copy)
    m = evaluate_cross_validation(copy, precision=precision)
    seg, noseg = (m.modes[mode].figure("auc") for mode in (Mode.SEG, Mode.NOSEG))
    print(f"{precision}: patient AUC {seg:.4f}, without seg {noseg:.4f}")
    return copy / "predictions_patients.csv"


def read(path: Path) -> dict[str, dict]:
    with open(path) as f:
        return {row["subject"]: row for row in csv.DictReader(f)}


def main(run: Path, work: Path) -> None:
    exact, fast = (read(regrade(run, work, p)) for p in ("fp32", "bf16"))
    for column in ("p_hgg_uncalibrated", "p_hgg_noseg_uncalibrated"):
        diffs = [abs(float(exact[s][column]) - float(fast[s][column])) for s in exact]
        print(f"{column}: max |fp32 - bf16| {max(diffs):.4f}, mean {sum(diffs) / len(diffs):.4f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
