import pytest
import torch

from gliograde.model.network import GradeNet, build_model
from gliograde.model.pretrained import adapt_stem
from gliograde.model.resnet import ResNet18
from helpers.reference import MonaiGradeNet, monai_resnet18, randomise


def test_shape_contract_4_channels_in_2_logits_out():
    model = build_model().eval()
    with torch.no_grad():
        out = model(torch.randn(2, 4, 240, 240))
        grade, tumor = model.forward_heads(torch.randn(3, 4, 240, 240))
    assert out.shape == (2, 2) and grade.shape == (3, 2) and tumor.shape == (3,)


def test_layout_is_torchvision_resnet18():
    b = build_model().backbone
    assert (b.conv1.in_channels, b.conv1.out_channels) == (4, 64)
    assert b.conv1.kernel_size == (7, 7) and b.conv1.stride == (2, 2)
    assert b.conv1.padding == (3, 3) and b.conv1.bias is None
    assert (b.fc.in_features, b.fc.out_features) == (512, 2)
    assert [len(getattr(b, f"layer{i}")) for i in range(1, 5)] == [2, 2, 2, 2]
    # torchvision resnet18 has 11,689,512 parameters with a 3-channel stem and 1000 classes.
    expected = 11_689_512 + 64 * 7 * 7 - (512 * 1000 + 1000) + (512 * 2 + 2)
    assert sum(p.numel() for p in b.parameters()) == expected


def torchvision_like_state_dict() -> dict[str, torch.Tensor]:
    """A state dict with torchvision resnet18's keys and shapes (3-channel stem, 1000 classes),
    taken from MONAI's ResNet in its layout (torchvision is not installed)."""
    state = monai_resnet18(in_channels=3, num_classes=1000).state_dict()
    gen = torch.Generator().manual_seed(0)
    return {
        k: torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
        for k, v in state.items()
    }


def test_pretrained_weights_load_and_stem_is_adapted(tmp_path):
    state = torchvision_like_state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    model = build_model(pretrained=path)
    stem = model.backbone.conv1.weight.detach()
    expected = state["conv1.weight"].mean(dim=1, keepdim=True) * 3 / 4
    for c in range(4):
        torch.testing.assert_close(stem[:, c : c + 1], expected)
    torch.testing.assert_close(
        model.backbone.layer3[1].conv2.weight, state["layer3.1.conv2.weight"]
    )
    assert model.backbone.fc.weight.shape == (2, 512)


def test_adapted_stem_keeps_the_response_to_equal_channels():
    # float64: in float32 the two sums (147 and 196 terms) differ by rounding alone.
    w = torch.randn(64, 3, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x3 = torch.ones(1, 3, 7, 7, dtype=torch.float64)
    x4 = torch.ones(1, 4, 7, 7, dtype=torch.float64)
    out3 = torch.nn.functional.conv2d(x3, w)
    out4 = torch.nn.functional.conv2d(x4, adapt_stem(w))
    torch.testing.assert_close(out3, out4)


@pytest.mark.slow  # trains: 8 AdamW steps of the full network
def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = GradeNet()
    x = torch.randn(8, 4, 64, 64)
    y = torch.tensor([0, 1] * 4)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_resnet18_has_monais_parameters_in_monais_order():
    for in_channels, k in ((4, 2), (3, 1000)):
        ours = ResNet18(in_channels, k).state_dict()
        monai = monai_resnet18(in_channels, k).state_dict()
        assert list(ours) == list(monai)
        for name, t in ours.items():
            assert (t.shape, t.dtype) == (monai[name].shape, monai[name].dtype), name


def test_a_seed_gives_monais_starting_weights():
    """So that a seed trains the same network as before MONAI's ResNet gave way to ResNet18."""
    for seed in (0, 7):
        torch.manual_seed(seed)
        monai = MonaiGradeNet(num_classes=3).state_dict()
        torch.manual_seed(seed)
        ours = GradeNet(num_classes=3).state_dict()
        assert all(torch.equal(ours[k], monai[k]) for k in monai)
    assert not torch.equal(ours["backbone.fc.weight"], GradeNet(num_classes=3).backbone.fc.weight)


@pytest.mark.parametrize("training", [False, True])
def test_resnet18_gives_monais_outputs_and_gradients_on_the_same_weights(training):
    monai = randomise(MonaiGradeNet()).train(training)
    ours = GradeNet().train(training)
    ours.load_state_dict(monai.state_dict())
    x = torch.randn(3, 4, 64, 64, generator=torch.Generator().manual_seed(1))
    got, want = ours.forward_heads(x), monai.forward_heads(x)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert want[0].abs().max() > 1e-3  # outputs that a wrong layer would change
    torch.testing.assert_close(ours.backbone(x), monai.backbone(x), rtol=0, atol=1e-6)
    (got[0].sum() + got[1].sum()).backward()
    (want[0].sum() + want[1].sum()).backward()
    monai_grads = dict(monai.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, monai_grads[name].grad, rtol=1e-5, atol=1e-6)
    if training:  # the batch's statistics, kept as MONAI keeps them
        ours_bn, monai_bn = ours.state_dict(), monai.state_dict()
        for name in (k for k in monai_bn if "running" in k):
            torch.testing.assert_close(ours_bn[name], monai_bn[name], rtol=0, atol=1e-6)
