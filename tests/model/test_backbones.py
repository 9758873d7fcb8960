"""The backbones a run can be trained with: what each takes and answers, that the DenseNets and
the 3D ResNet are MONAI's, and that a weights file says which backbone it holds."""

from __future__ import annotations

import pytest
import torch

from gliograde.core.errors import GliogradeError, UsageError
from gliograde.model.backbones import BACKBONES, Backbone, backbone_of
from gliograde.model.network import GradeNet, build_model

SPECS = [Backbone("resnet18"), Backbone("densenet121"), Backbone("resnet18-2.5d", 1),
         Backbone("resnet18-2.5d", 2), Backbone("resnet10-3d", grid=32),
         Backbone("densenet121-3d", grid=32)]  # fmt: skip


def net(spec: Backbone, num_classes: int = 2) -> GradeNet:
    return GradeNet(
        num_classes=num_classes, backbone=spec.name, context=spec.context, grid=spec.grid
    )


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label)
def test_each_backbone_answers_k_classes_and_a_tumour_logit(spec):
    torch.manual_seed(0)
    model = net(spec, num_classes=3).eval()
    x = torch.randn(2, *spec.input_shape(64))
    logits, tumour = model.forward_heads(x)
    assert logits.shape == (2, 3) and tumour.shape == (2,)
    assert torch.equal(model(x), logits)
    assert spec.in_channels == 4 * (2 * spec.context + 1)
    assert x.dim() == (5 if spec.is_3d else 4)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label)
def test_a_weights_file_says_its_backbone(spec):
    assert backbone_of(net(spec).state_dict(), grid=spec.grid or None) == spec


def test_3d_weights_without_their_grid_are_refused():
    state = net(Backbone("resnet10-3d", grid=32)).state_dict()
    with pytest.raises(GliogradeError, match=r"^w\.safetensors: a 3D network's weights without"):
        backbone_of(state, "w.safetensors")


def test_weights_of_an_even_number_of_slices_are_refused():
    state = {"backbone.conv1.weight": torch.zeros(64, 8, 7, 7)}
    with pytest.raises(
        GliogradeError, match=r"^w\.safetensors: the network's first convolution takes 8"
    ):
        backbone_of(state, "w.safetensors")


def test_the_densenet_is_monais_densenet121():
    """Given MONAI's weights, gliograde's DenseNet answers as MONAI's own network."""
    from monai.networks.nets import DenseNet121

    from gliograde.model.volumetric import DenseNet

    torch.manual_seed(1)
    monai_net = DenseNet121(spatial_dims=2, in_channels=4, out_channels=2).eval()
    ours = DenseNet(4, 2).eval()
    renamed = {k.replace("features.", "body.", 1).replace("class_layers.out.", "fc."): v
               for k, v in monai_net.state_dict().items()}  # fmt: skip
    ours.load_state_dict(renamed)
    x = torch.randn(3, 4, 64, 64)
    torch.testing.assert_close(ours(x), monai_net(x), rtol=0, atol=1e-6)


def test_the_3d_resnet_is_monais_resnet10_in_medicalnets_layout():
    """Given MONAI's weights, gliograde's 3D ResNet answers as MONAI's ``resnet10`` built as for
    MedicalNet (a stride-2 stem, shortcut B, no bias in the projections)."""
    from monai.networks.nets import resnet10

    from gliograde.model.volumetric import ResNet3D

    torch.manual_seed(2)
    options = {"conv1_t_stride": 2, "shortcut_type": "B", "bias_downsample": False}
    monai_net = resnet10(spatial_dims=3, n_input_channels=4, num_classes=2, **options).eval()
    ours = ResNet3D(4, 2).eval()
    state = monai_net.state_dict()
    renamed = {("" if k.startswith("fc.") else "body.") + k: v for k, v in state.items()}
    ours.load_state_dict(renamed)
    x = torch.randn(2, 4, 32, 32, 32)
    torch.testing.assert_close(ours(x), monai_net(x), rtol=0, atol=1e-5)
    assert ours.body.conv1.stride == (2, 2, 2) and ours.body.conv1.weight.shape[2:] == (7, 7, 7)


def test_unknown_backbones_and_contexts_are_refused_in_one_line():
    with pytest.raises(UsageError, match="--backbone vgg: choose one of resnet18, densenet121"):
        Backbone("vgg")
    with pytest.raises(UsageError, match=r"--context goes with a 2\.5D backbone"):
        Backbone("resnet18", 1)
    with pytest.raises(UsageError, match="needs 1 or more"):
        Backbone("resnet18-2.5d", 0)
    with pytest.raises(UsageError, match="--grid 16: a 3D backbone needs 32 to 256"):
        Backbone("resnet10-3d", grid=16)
    with pytest.raises(UsageError, match="--grid goes with a 3D backbone, not resnet18"):
        Backbone("resnet18", grid=64)
    assert set(BACKBONES) == {
        "resnet18", "densenet121", "resnet18-2.5d", "resnet10-3d", "densenet121-3d"
    }  # fmt: skip


def test_no_pretrained_weights_for_the_3d_densenet(tmp_path):
    with pytest.raises(UsageError, match=r"resnet10-3d .MedicalNet's resnet_10., not densenet121"):
        build_model(tmp_path / "weights.pth", spec=Backbone("densenet121-3d", grid=32))


def test_torchvision_densenet_weights_load_under_monais_names(tmp_path):
    """A densenet121 state dict in torchvision's names (``features.denseblockB.denselayerL.norm1``,
    with the old ``norm.1`` form for one layer, no step counters, a 1000-class classifier)
    loads into the densenet121 backbone: every body weight as saved, the RGB stem spread over
    the four sequences, the class head new."""
    import re

    from monai.networks.nets import DenseNet121

    torch.manual_seed(4)
    imagenet = DenseNet121(spatial_dims=2, in_channels=3, out_channels=1000)
    saved = {}
    for key, value in imagenet.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        key = key.replace(".layers.", ".").replace("class_layers.out.", "classifier.")
        saved[re.sub(r"denselayer1\.norm1\.", "denselayer1.norm.1.", key)] = value
    torch.save(saved, tmp_path / "densenet121.pth")
    model = build_model(tmp_path / "densenet121.pth", spec=Backbone("densenet121"))
    body = model.backbone.body.state_dict()
    for key, value in imagenet.features.state_dict().items():
        if key != "conv0.weight" and not key.endswith("num_batches_tracked"):
            torch.testing.assert_close(body[key], value, rtol=0, atol=0)
    stem = imagenet.features.conv0.weight
    torch.testing.assert_close(
        body["conv0.weight"], stem.mean(1, keepdim=True).repeat(1, 4, 1, 1) * 0.75
    )


def test_medicalnet_weights_load_into_the_3d_resnet_with_a_four_channel_stem(tmp_path):
    """A checkpoint in MedicalNet's form (``{"state_dict": {"module.…"}}``, one input channel,
    a segmentation head) loads into resnet10-3d: every body weight as saved, the stem's one
    channel spread over the four sequences (a quarter each), the class head left new."""
    from monai.networks.nets import resnet10

    torch.manual_seed(3)
    options = {"conv1_t_stride": 2, "shortcut_type": "B", "bias_downsample": False}
    medicalnet = resnet10(spatial_dims=3, n_input_channels=1, feed_forward=False, **options)
    state = {f"module.{k}": v for k, v in medicalnet.state_dict().items()}
    state["module.conv_seg.0.weight"] = torch.zeros(2, 512, 1, 1, 1)  # its segmentation head
    torch.save({"state_dict": state}, tmp_path / "resnet_10.pth")
    spec = Backbone("resnet10-3d", grid=32)
    model = build_model(tmp_path / "resnet_10.pth", spec=spec)
    body = model.backbone.body.state_dict()
    for key, value in medicalnet.state_dict().items():
        if key != "conv1.weight":
            torch.testing.assert_close(body[key], value, rtol=0, atol=0)
    stem = medicalnet.conv1.weight
    torch.testing.assert_close(body["conv1.weight"], stem.repeat(1, 4, 1, 1, 1) / 4)
    with pytest.raises(GliogradeError, match="not a MedicalNet 3D ResNet"):
        torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / "r18.pth")
        build_model(tmp_path / "r18.pth", spec=spec)


def test_channel_names_say_which_slice():
    names = Backbone("resnet18-2.5d", 1).channel_names(("flair", "t1ce", "t1", "t2"))
    assert names[:5] == ["flair@-1", "t1ce@-1", "t1@-1", "t2@-1", "flair"]
    assert names[-1] == "t2@+1" and len(names) == 12


def test_grad_cam_stages_by_backbone():
    assert Backbone("resnet18-2.5d", 1).stage("layer4") == "layer4"
    assert Backbone("densenet121").stage("layer3") == "body.denseblock3"
    assert Backbone("densenet121").stage("layer4") == "body.norm5"  # what the heads pool
    assert Backbone("resnet10-3d", grid=32).stage("layer2") == "body.layer2"
    assert Backbone("densenet121-3d", grid=32).stage("layer4") == "body.norm5"
    with pytest.raises(UsageError, match="layer1 to layer4"):
        Backbone().stage("layer5")


def test_the_training_config_resolves_the_context_and_refuses_what_cannot_train():
    from gliograde.cli.common import Backbone as Choice
    from gliograde.run.config import TrainConfig

    assert TrainConfig("s", "o", backbone="resnet18-2.5d").spec == Backbone("resnet18-2.5d", 1)
    assert TrainConfig("s", "o").spec == Backbone("resnet18")
    assert TrainConfig("s", "o", backbone="resnet10-3d").spec == Backbone("resnet10-3d", grid=96)
    with pytest.raises(UsageError, match=r"--resident goes with 2D and 2\.5D backbones"):
        TrainConfig("s", "o", backbone="densenet121-3d", resident=True)
    assert [c.value for c in Choice] == list(BACKBONES)  # the command offers each, no other
    with pytest.raises(
        UsageError, match=r"resnet10-3d .MedicalNet's resnet_10., not densenet121-3d"
    ):
        TrainConfig("s", "o", backbone="densenet121-3d", pretrained="r.pth")
    with pytest.raises(UsageError, match="--backbone vgg"):
        TrainConfig("s", "o", backbone="vgg")
    with pytest.raises(UsageError, match=r"--context goes with a 2\.5D backbone"):
        TrainConfig("s", "o", backbone="densenet121", context=2)
