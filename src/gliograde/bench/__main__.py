"""``python -m gliograde.bench MEASURE JSON``: one measurement in a fresh process."""

import json
import sys
from collections.abc import Callable

from gliograde.bench.limits import measure_flops, measure_peak
from gliograde.bench.loaders import measure_loader
from gliograde.bench.pipeline import measure_forward, measure_prepare
from gliograde.bench.training import (
    measure_end_to_end,
    measure_epoch_with_validation,
    measure_model_alone,
    measure_train_memory,
)

MEASURES: dict[str, Callable[..., dict]] = {
    "measure_loader": measure_loader,
    "measure_model_alone": measure_model_alone,
    "measure_end_to_end": measure_end_to_end,
    "measure_train_memory": measure_train_memory,
    "measure_epoch_with_validation": measure_epoch_with_validation,
    "measure_flops": measure_flops,
    "measure_peak": measure_peak,
    "measure_forward": measure_forward,
    "measure_prepare": measure_prepare,
}

if __name__ == "__main__":  # prepare's workers (forkserver) import this module again
    measure, kwargs = sys.argv[1], json.loads(sys.argv[2])
    if measure not in MEASURES:
        raise SystemExit(f"unknown measurement {measure}")
    print(json.dumps(MEASURES[measure](**kwargs)))
