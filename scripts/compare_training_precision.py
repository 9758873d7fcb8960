"""The demo trained in float32 and in bfloat16, with two seeds: out-of-fold patient AUCs.

Usage: python scripts/compare_training_precision.py WORK [--seeds 0 1]

For each seed, the demo's SYNTHETIC cohort and store (CPU settings, 64×64) are made once in
WORK/seedS, then the demo's 5-fold training runs three times: ``--precision fp32`` and
``bf16`` with the demo's seed, and, as a control for how much the figures move with the
training's random draws alone, fp32 again with another training seed (same data and folds).
Grading uses ``predict``'s precision in all three, so only the training differs. A run already
in WORK (its ``metrics.json`` written) is read, not trained again.

Prints each run's patient AUC with and without the segmentation, and the slice AUC of the
tumour slices (thousands of slices: a finer view than 40 patients).
"""

import argparse
from dataclasses import replace
from pathlib import Path

from gliograde.assess.record import Metrics, read_metrics
from gliograde.demo import DemoConfig, demo_training, make_store
from gliograde.experiment import train_and_evaluate
from gliograde.run.calibration import Mode

CONTROL_SEED = 1000  # added to the demo's seed for the control run


def trained(config: DemoConfig, name: str, precision: str, seed_offset: int = 0) -> Metrics:
    run = Path(config.out) / f"run-{name}"
    if (run / "metrics.json").is_file():
        return read_metrics(run / "metrics.json")
    options = demo_training(config, run, precision)
    metrics = train_and_evaluate(replace(options, seed=options.seed + seed_offset))
    if metrics is None:
        raise SystemExit(f"{run}: no held-out figures")
    return metrics


def slice_auc(run: Path) -> float:
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    rows = pd.read_csv(run / "predictions_slices.csv")
    tumour = rows[rows.tumor_pixels > 0]
    return float(roc_auc_score(tumour.y, tumour.p_hgg))


def main(work: Path, seeds: list[int]) -> None:
    print("seed  run                     patient AUC  without seg  slice AUC")
    for seed in seeds:
        config = DemoConfig(out=work / f"seed{seed}", device="cpu", seed=seed)
        make_store(config)
        for name, precision, offset in (
            ("fp32", "fp32", 0),
            ("bf16", "bf16", 0),
            ("fp32-control", "fp32", CONTROL_SEED),
        ):
            m = trained(config, name, precision, offset)
            auc, noseg = (m.modes[mode].figure("auc") for mode in (Mode.SEG, Mode.NOSEG))
            s = slice_auc(Path(config.out) / f"run-{name}")
            print(f"{seed:>4}  {name:<22}{auc:>12.4f}{noseg:>13.4f}{s:>11.4f}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    main(args.work, args.seeds)
