"""A run folder as it is read: every way it can be wrong is one clear line naming the file."""

from __future__ import annotations

import json
import shutil

import pytest

from gliograde.core.errors import GliogradeError
from helpers.cli import invoke
from helpers.runs import fake_run, read_run


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    return fake_run(tmp_path_factory.mktemp("run") / "run")


@pytest.fixture
def run(clean_run, tmp_path):
    return shutil.copytree(clean_run, tmp_path / "run")


def rehash(run, key):
    from gliograde.model.weights import sha256_of

    checksums = json.loads((run / "checksums.json").read_text())
    checksums[key] = sha256_of(run / key)
    (run / "checksums.json").write_text(json.dumps(checksums))


def test_a_sound_run_reads(run):
    read_run(run)


def test_a_bundles_copy_of_a_run_without_local_paths_reads(run):
    """A MONAI bundle keeps the run's config without ``store`` and ``out`` (no local path),
    and with class counts instead of the store's subjects: it reads, its store named by the
    manifest's source."""
    from gliograde.run import Run

    config = json.loads((run / "config.json").read_text())
    for key in ("store", "out"):
        del config[key]
    manifest = config["store_manifest"]
    for key in ("subjects", "labels", "grades"):
        manifest.pop(key, None)
    manifest |= {"class_counts": {"LGG": 1, "HGG": 1}, "source": "cohort"}
    (run / "config.json").write_text(json.dumps(config))
    opened = Run.open(run)
    assert opened.store_path.name == "cohort" and opened.manifest.counts() == {"LGG": 1, "HGG": 1}
    read_run(run)


def save_state(path, state, size="32"):
    from safetensors.torch import save_file

    metadata = None if size is None else {"slice_size": size}
    save_file({k: v.contiguous() for k, v in state.items()}, path, metadata=metadata)


def corrupt(run):
    (run / "fold_0/model.safetensors").write_bytes(b"not weights at all" * 100)
    return "corrupt or truncated weights"


def truncate(run):
    path = run / "fold_0/model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    return "corrupt or truncated weights"


def empty(run):
    (run / "fold_0/model.safetensors").write_bytes(b"")
    return "empty model file"


def modified(run):
    from safetensors.torch import load_file

    path = run / "fold_0/model.safetensors"
    state = load_file(path)
    state["tumor_head.bias"] = state["tumor_head.bias"] + 1.0
    save_state(path, state)
    return "modified since training"


def other_network(run):
    from gliograde.model.resnet import ResNet18

    save_state(run / "fold_0/model.safetensors", ResNet18(in_channels=3).state_dict())
    rehash(run, "fold_0/model.safetensors")
    return "weights of another network"


def other_channels(run):
    from gliograde.model.network import GradeNet

    state = GradeNet().state_dict()
    state["backbone.conv1.weight"] = state["backbone.conv1.weight"][:, :3].contiguous()
    save_state(run / "fold_0/model.safetensors", state)
    rehash(run, "fold_0/model.safetensors")
    return "first convolution takes 3 channels"


def mixed_networks(run):
    from gliograde.model.network import GradeNet

    save_state(run / "fold_1/model.safetensors", GradeNet(backbone="densenet121").state_dict())
    rehash(run, "fold_1/model.safetensors")
    return "its models are of different networks (densenet121, resnet18)"


def other_input_size(run):
    from safetensors.torch import load_file

    path = run / "fold_0/model.safetensors"
    save_state(path, load_file(path), size="240")
    rehash(run, "fold_0/model.safetensors")
    return "trained on 240×240 slices"


def no_input_size(run):
    """Weights whose checksum matches but that record no slice size: not written by train."""
    from safetensors.torch import load_file

    path = run / "fold_0/model.safetensors"
    save_state(path, load_file(path), size=None)
    rehash(run, "fold_0/model.safetensors")
    return "records no slice size in its metadata"


def missing_fold(run):
    (run / "fold_1/model.safetensors").unlink()
    return "the run is incomplete"


def other_version(run):
    config = json.loads((run / "config.json").read_text())
    config["run_format"] = 1
    (run / "config.json").write_text(json.dumps(config))
    return "written by another version of gliograde"


def damaged_config(run):
    (run / "config.json").write_text('{"run_format": 2, "store_ma')
    return "damaged, not JSON"


def missing_calibration(run):
    (run / "calibration.json").unlink()
    return "calibration.json: missing"


def damaged_calibration(run):
    (run / "calibration.json").write_text('{"seg": {"temperature": -1, "bias": 0}}')
    return "damaged ('seg' is not a calibration)"


CASES_OF_RUNS = [
    corrupt,
    truncate,
    empty,
    modified,
    other_network,
    other_channels,
    mixed_networks,
    other_input_size,
    no_input_size,
    missing_fold,
    other_version,
    damaged_config,
    missing_calibration,
    damaged_calibration,
]


@pytest.mark.parametrize("break_it", CASES_OF_RUNS, ids=lambda f: f.__name__)
def test_each_way_a_run_folder_can_be_wrong_is_one_clear_line(run, break_it):
    expected = break_it(run)
    with pytest.raises(GliogradeError) as caught:
        read_run(run)
    message = str(caught.value)
    assert expected in message and "\n" not in message
    assert str(run) in message  # it names the file


def test_predict_with_a_corrupt_model_is_one_line_and_exit_1(run, synth_small):
    corrupt(run)
    subject = sorted(p for p in synth_small.iterdir() if p.is_dir())[0]
    result = invoke("predict", run, subject, "--device", "cpu")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [line for line in lines if line.startswith("gliograde: error:")] and lines
    assert "model.safetensors: corrupt or truncated weights" in lines[-1]


def test_a_run_built_fold_by_fold_uses_every_fold(run):
    from gliograde.run import Run

    config = json.loads((run / "config.json").read_text())
    config["folds"] = [1]  # the last `train --fold 1` call; fold 0 came from an earlier one
    (run / "config.json").write_text(json.dumps(config))
    assert [p.parent.name for p in Run.open(run).weights()] == ["fold_0", "fold_1"]


@pytest.mark.parametrize("change", [{"folds": 2}, {"store_manifest": {"options": {}}}])
def test_a_config_of_the_wrong_shape_is_another_version(run, change):
    config = json.loads((run / "config.json").read_text()) | change
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(GliogradeError, match="written by another version"):
        read_run(run)
