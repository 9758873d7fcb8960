"""A run's ensemble as a MONAI Bundle, and the function the bundle's ``inference.json`` runs.

The bundle holds the run itself (config, calibration, checksums, fold weights in safetensors) and
grades with :func:`gliograde.predict.predict_subjects`, so it answers exactly as ``gliograde
predict`` does. It runs offline with MONAI's own runner, with gliograde installed::

    python -m monai.bundle run --config_file DIR/configs/inference.json --bundle_root DIR \\
        --dataset_dir DATA --output_dir OUT

and writes ``OUT/predictions.csv`` with the columns of ``gliograde predict --csv``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gliograde import MODALITIES, __version__
from gliograde.core.errors import UsageError
from gliograde.core.files import write_json, write_text

RUN_FILES = ("config.json", "calibration.json", "checksums.json", "splits.json", "MODEL_CARD.md")
CHANNELS = {"flair": "FLAIR", "t1ce": "T1ce", "t1": "T1", "t2": "T2"}


def write_bundle(run_path: Path, out: Path) -> Path:
    """Write the MONAI Bundle of the run at ``run_path`` into ``out`` (a new or empty folder)."""
    from gliograde.run import Run

    run = Run.open(run_path)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"--out {out}: not empty; give a new folder for the bundle")
    models = out / "models" / "run"
    for folder in (models, out / "configs", out / "docs"):
        folder.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        if (run.path / name).is_file():
            shutil.copyfile(run.path / name, models / name)
    for weights in run.weights():
        target = models / weights.relative_to(run.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(weights, target)
    write_json(out / "configs" / "metadata.json", metadata(run))
    write_json(out / "configs" / "inference.json", inference_config())
    write_text(out / "docs" / "README.md", bundle_readme(run))
    write_licences(run, out)
    return out


def metadata(run) -> dict:
    """``configs/metadata.json`` in MONAI's bundle format (the schema is named, never fetched)."""
    size = run.manifest["slice_shape"][-1]
    channels = {str(i): CHANNELS.get(m, m) for i, m in enumerate(MODALITIES)}
    return {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/"
        "0.8.1/meta_schema_20220324.json",
        "version": "0.1.0",
        "changelog": {"0.1.0": f"exported from gliograde run {run.path.name}"},
        "monai_version": _version("monai"),
        "pytorch_version": _version("torch"),
        "numpy_version": _version("numpy"),
        "optional_packages_version": {"gliograde": __version__, "nibabel": _version("nibabel")},
        "name": "gliograde glioma grading (LGG vs HGG)",
        "task": "Glioma grade classification from multi-modal brain MRI (BraTS form)",
        "description": "An ensemble of ResNet18 fold models on axial slices; per patient, "
        "slice probabilities are aggregated, calibrated and flagged when uncertain.",
        "authors": "gliograde",
        "copyright": "gliograde contributors, Apache-2.0",
        "intended_use": "Research only; not for diagnosis. See docs/README.md and MODEL_CARD.md.",
        "data_source": str(run.manifest.get("source")),
        "data_type": "nibabel",
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "modality": "MR",
                    "num_channels": len(MODALITIES),
                    "spatial_shape": [size, size],
                    "dtype": "float32",
                    "value_range": [],
                    "is_patch_data": False,
                    "channel_def": channels,
                }
            },
            "outputs": {
                "pred": {
                    "type": "probabilities",
                    "format": "classes",
                    "num_channels": 2,
                    "spatial_shape": [1],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": False,
                    "channel_def": {"0": "LGG", "1": "HGG"},
                }
            },
        },
    }


def inference_config() -> dict:
    """``configs/inference.json``: MONAI's runner calls :func:`run_bundle` with its paths."""
    return {
        "imports": ["$from gliograde.bundle import run_bundle"],
        "bundle_root": ".",
        "dataset_dir": "",
        "output_dir": "$@bundle_root + '/eval'",
        "model_dir": "$@bundle_root + '/models/run'",
        "device": "cpu",
        "ignore_seg": False,
        "network_def": {"_target_": "gliograde.model.network.GradeNet", "plain": True},
        "run": ["$run_bundle(@dataset_dir, @model_dir, @output_dir, @device, @ignore_seg)"],
    }


def run_bundle(
    dataset_dir: str, model_dir: str, output_dir: str, device: str = "cpu", ignore_seg=False
) -> Path:
    """Grade every subject under ``dataset_dir`` with the bundle's run; write
    ``output_dir/predictions.csv`` (``gliograde predict --csv``'s columns)."""
    from gliograde.predict import predict_subjects, predictions_csv

    if not dataset_dir:
        raise UsageError("the bundle needs --dataset_dir: a subject folder or a cohort")
    predictions = predict_subjects([Path(dataset_dir)], Path(model_dir), bool(ignore_seg), device)
    out = Path(output_dir) / "predictions.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, predictions_csv(predictions))
    return out


def bundle_readme(run) -> str:
    synthetic = run.manifest.get("synthetic", False)
    note = "\n**Trained on SYNTHETIC data: for trying the bundle, not for patients.**\n"
    return f"""# gliograde glioma grading bundle
{note if synthetic else ""}
Grades gliomas (LGG vs HGG) from BraTS-preprocessed MRI: FLAIR, T1ce, T1 and T2 (and a tumour
segmentation when there is one), with the {len(run.weights())} models of gliograde run
`{run.path.name}`. Research only, not for diagnosis: read `models/run/MODEL_CARD.md`.

## Run

Needs gliograde {__version__} installed (`pip install gliograde`); nothing is downloaded.

```bash
python -m monai.bundle run --config_file configs/inference.json --bundle_root . \\
    --dataset_dir DATA --output_dir OUT
```

`DATA` is a subject folder or a cohort in any layout `gliograde check` reads. `OUT/predictions.csv`
has one row per subject: `subject, grade, p_hgg, p_hgg_uncalibrated, uncertainty, flag,
n_slices, used_seg, error`, the figures `gliograde predict --csv` gives. `--ignore_seg true`
grades without the segmentations.

## Licences

The code is Apache-2.0 (`LICENSE`). The weights were trained on `{run.manifest.get("source")}`:
their use is bound by that data's terms (`docs/data_license.txt`).
"""


def write_licences(run, out: Path) -> None:
    """``LICENSE`` (gliograde's, Apache-2.0) and ``docs/data_license.txt`` (the training data)."""
    write_text(out / "LICENSE", licence_text())
    if run.manifest.get("synthetic", False):
        data = "The training data is SYNTHETIC (written by `gliograde synth`): no terms apply.\n"
    else:
        data = (
            f"The models were trained on {run.manifest.get('source')}. Check and follow that "
            "dataset's terms of use (BraTS data: see the challenge's data usage agreement) "
            "before sharing or using these weights.\n"
        )
    write_text(out / "docs" / "data_license.txt", data)


def licence_text() -> str:
    """gliograde's licence as installed with it (its SPDX name and URL if the file is absent)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        text = distribution("gliograde").read_text("licenses/LICENSE")
    except PackageNotFoundError:
        text = None
    return text or "Apache-2.0: https://www.apache.org/licenses/LICENSE-2.0\n"


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"
