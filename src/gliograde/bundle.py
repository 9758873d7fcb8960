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

from gliograde import MODALITIES, SEQUENCE_NAMES, __version__
from gliograde.assess.modelcard import source_name
from gliograde.core.errors import GliogradeError, UsageError
from gliograde.core.files import package_versions, write_json, write_text
from gliograde.model.backbones import Backbone

CHANNELS = SEQUENCE_NAMES


def write_bundle(run_path: Path, out: Path) -> Path:
    """Write the MONAI Bundle of the run at ``run_path`` into ``out`` (a new or empty folder).

    The run goes in as ``predict`` needs it and no more: weights, checksums, calibration, a
    fresh model card, and its config without patient names, grades or local paths.
    """
    from gliograde.assess.modelcard import write_model_card
    from gliograde.run import Run

    run = Run.open(run_path)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"--out {out}: not empty; give a new folder for the bundle")
    models = out / "models" / "run"
    for folder in (models, out / "configs", out / "docs"):
        folder.mkdir(parents=True, exist_ok=True)
    write_model_card(run)
    for name in ("calibration.json", "checksums.json", "MODEL_CARD.md"):
        shutil.copyfile(run.path / name, models / name)
    write_json(models / "config.json", shareable_config(run))
    for weights in run.weights():
        target = models / weights.relative_to(run.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(weights, target)
    write_json(out / "configs" / "metadata.json", metadata(run))
    config = inference_config(len(run.target.classes), run.train_config.spec)
    write_json(out / "configs" / "inference.json", config)
    write_text(out / "docs" / "README.md", bundle_readme(run))
    write_licences(run, out)
    return out


def shareable_config(run) -> dict:
    """The run's config as ``predict`` reads it, with no subject, label or local path: the
    store's subjects and labels become counts per class, paths become folder names."""
    from dataclasses import replace

    train = run.config.train
    train = replace(train, store=Path(train.store).name, out=run.path.name, folds=run.folds())
    manifest = run.manifest.without_subjects()
    return replace(run.config, train=train, manifest=manifest).to_dict()


def metadata(run) -> dict:
    """``configs/metadata.json`` in MONAI's bundle format (the schema is named, never fetched)."""
    versions = package_versions(("monai", "torch", "numpy", "fire"))
    target = run.target
    vs = " vs ".join(target.classes)
    task = f"grading ({vs})" if target.is_grade else f"{target.name} ({vs})"
    return {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/"
        "0.8.1/meta_schema_20220324.json",
        "version": "0.1.0",
        "changelog": {"0.1.0": f"exported from gliograde run {run.path.name}"},
        "monai_version": versions["monai"],
        "pytorch_version": versions["torch"],
        "numpy_version": versions["numpy"],
        "required_packages_version": {"gliograde": __version__, "fire": versions["fire"]},
        "optional_packages_version": {"gliograde": __version__, "fire": versions["fire"]},
        "name": f"gliograde glioma {task}",
        "task": f"Glioma {task} classification from multi-modal brain MRI (BraTS form)",
        "description": f"gliograde's patient rule with the run's {run.train_config.spec.label} "
        "models (see models/run/MODEL_CARD.md for how they were trained and measured).",
        "authors": "gliograde",
        "copyright": "gliograde contributors, Apache-2.0",
        "intended_use": "Research only; not for diagnosis. See docs/README.md and MODEL_CARD.md.",
        "data_source": source_name(run),
        "data_type": "nibabel",
        "network_data_format": network_data_format(run),
    }


def network_data_format(run) -> dict:
    """The slices the models take (4 channels: FLAIR, T1ce, T1, T2; a 2.5D run's, each of the
    slice and its neighbours; a 3D run's, the brain's volume) and the classes out."""
    spec = run.train_config.spec
    classes = run.target.classes
    names = spec.channel_names(MODALITIES)
    image: dict = {"type": "image", "format": "magnitude", "modality": "MR"}
    shape = list(spec.input_shape(run.manifest.slice_size)[1:])
    image |= {"num_channels": len(names), "spatial_shape": shape}
    image |= {"dtype": "float32", "value_range": [], "is_patch_data": False}
    image["channel_def"] = {str(i): channel_label(n) for i, n in enumerate(names)}
    pred: dict = {"type": "probabilities", "format": "classes", "num_channels": len(classes)}
    pred |= {"spatial_shape": [1], "dtype": "float32", "value_range": [0, 1]}
    pred |= {"is_patch_data": False, "channel_def": {str(i): c for i, c in enumerate(classes)}}
    return {"inputs": {"image": image}, "outputs": {"pred": pred}}


def channel_label(name: str) -> str:
    """A channel's name in the bundle: ``FLAIR``, or ``FLAIR (slice -1)`` for a neighbour's."""
    sequence, _, offset = name.partition("@")
    label = CHANNELS.get(sequence, sequence)
    return f"{label} (slice {offset})" if offset else label


def inference_config(n_classes: int = 2, spec: Backbone | None = None) -> dict:
    """``configs/inference.json``: MONAI's runner calls :func:`run_bundle` with its paths;
    ``network_def`` is the network of each fold's weights (its backbone, one output per
    class)."""
    spec = spec or Backbone()
    network = {"_target_": "gliograde.model.network.GradeNet", "num_classes": n_classes}
    network |= {"backbone": spec.name, "context": spec.context, "grid": spec.grid}
    return {
        "imports": ["$from gliograde.bundle import run_bundle"],
        "bundle_root": ".",
        "dataset_dir": "",
        "output_dir": "$@bundle_root + '/eval'",
        "model_dir": "$@bundle_root + '/models/run'",
        "device": "auto",
        "ignore_seg": False,
        "force": False,
        "network_def": network,
        "run": ["$run_bundle(@dataset_dir, @model_dir, @output_dir, @device, @ignore_seg, @force)"],
    }


def run_bundle(
    dataset_dir: str,
    model_dir: str,
    output_dir: str,
    device: str = "auto",
    ignore_seg=False,
    force=False,
) -> Path:
    """Grade every subject under ``dataset_dir`` with the bundle's run; write
    ``output_dir/predictions.csv`` (``gliograde predict --csv``'s columns). Like the command
    line, it reads ``GLIOGRADE_PRECISION`` and ``GLIOGRADE_CACHE`` once, here
    (:mod:`gliograde.core.environment`).

    Args:
        device: ``auto``, ``cpu`` or ``cuda`` (``gpu``, and MONAI's ``cuda:N``, are ``cuda``).
        ignore_seg: True/False (MONAI's runner hands command-line values over as strings).
        force: grade subjects out of the run's distribution too, flagged uncertain with their
            reasons, as ``predict --force``; without it each gets a row whose error says why.

    Raises:
        GliogradeError: a subject could not be graded (after the CSV is written, with its
            error), so that a pipeline sees the failure as ``predict`` shows it: exit 1.
    """
    from gliograde.core.environment import cache_setting, precision_setting
    from gliograde.predict import PredictOptions, predict_subjects
    from gliograde.predict.formats import predictions_csv
    from gliograde.run import Run

    if not dataset_dir:
        raise UsageError("the bundle needs --dataset_dir: a subject folder or a cohort")
    device = "cuda" if str(device).startswith("cuda") else str(device)
    options = PredictOptions(
        ignore_seg=flag(ignore_seg, "ignore_seg"),
        force=flag(force, "force"),
        device=device,
        precision=precision_setting(),
        cache=cache_setting(),
    )
    predictions = predict_subjects([Path(dataset_dir)], Path(model_dir), options)
    out = Path(output_dir) / "predictions.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, predictions_csv(predictions, Run.open(Path(model_dir)).target))
    failed = [p.subject for p in predictions if p.error]
    if failed:
        raise GliogradeError(f"{out}: {len(failed)} subject(s) not graded: {', '.join(failed)}")
    return out


def flag(v, name: str) -> bool:
    """A yes/no option as MONAI's runner may give it: a bool, or a string (``"false"``...)."""
    if isinstance(v, bool):
        return v
    text = str(v).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise UsageError(f"--{name} {v}: give true or false")


def bundle_readme(run) -> str:
    from gliograde.predict.formats import csv_columns

    synthetic = run.manifest.synthetic
    note = "\n**Trained on SYNTHETIC data: for trying the bundle, not for patients.**\n"
    seg = (
        "and, where there is one, a tumour segmentation"
        if run.can_grade_without_seg
        else "and a tumour segmentation (required: this run was trained on tumour slices)"
    )
    source = source_name(run)
    target = run.target
    what = (
        "Grades gliomas (LGG vs HGG)"
        if target.is_grade
        else f"Predicts the glioma's {target.name} ({' or '.join(target.classes)})"
    )
    columns = ", ".join(csv_columns(target))
    return f"""# gliograde glioma {"grading" if target.is_grade else target.name} bundle
{note if synthetic else ""}
{what} from BraTS-preprocessed MRI: FLAIR, T1ce, T1 and T2 {seg}, with
the {len(run.weights())} model(s) of gliograde run `{run.path.name}` and gliograde's patient rule.
Research only, not for diagnosis: read `models/run/MODEL_CARD.md`.

## Run

Needs gliograde {__version__} and `fire` installed (from gliograde's source folder:
`pip install -e ".[export]"`); nothing is downloaded.

```bash
python -m monai.bundle run --config_file configs/inference.json --bundle_root . \\
    --dataset_dir DATA --output_dir OUT
```

`DATA` is a subject folder or a cohort in any layout `gliograde check` reads. `OUT/predictions.csv`
has one row per subject: `{columns}`, the figures `gliograde predict --csv`
gives; the run fails (exit 1) when a subject could not be graded, its error in the CSV.
`--ignore_seg true` grades without the segmentations; `--device auto|cpu|cuda` (default auto).
A subject out of the run's distribution (another grid, spacing or intensity profile than the
training data's) gets a row whose error says why, as `gliograde predict` does; `--force true`
grades it anyway, flagged uncertain, its reasons in `out_of_distribution`.

This bundle is for `monai.bundle run` and MONAI's config API. It is not a MONAI Deploy or MONAI
Label model: it holds no TorchScript `model.ts` and no `inferer` section, since one network's
slice outputs are not the patient's answer.

## Licences

The code is Apache-2.0 (`LICENSE`). The weights were trained on `{source}`: their use is
bound by that data's terms (`docs/data_license.txt`).
"""


def write_licences(run, out: Path) -> None:
    """``LICENSE`` (gliograde's, Apache-2.0) and ``docs/data_license.txt`` (the training data)."""
    write_text(out / "LICENSE", licence_text())
    if run.manifest.synthetic:
        data = "The training data is SYNTHETIC (written by `gliograde synth`): no terms apply.\n"
    else:
        data = (
            f"The models were trained on {source_name(run)}. Check "
            "and follow that dataset's terms of use (BraTS data: see the challenge's data "
            "usage agreement) before sharing or using these weights.\n"
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
