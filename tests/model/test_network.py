import torch

from gliograde.model.network import GradeNet, build_model
from gliograde.model.pretrained import adapt_stem


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
    """A state dict with torchvision resnet18's keys and shapes (3-channel stem, 1000 classes)."""
    from gliograde.model.network import resnet18_backbone

    state = resnet18_backbone(in_channels=3, num_classes=1000).state_dict()
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


def test_plain_network_is_monais_twin():
    import torch

    from gliograde.model.network import GradeNet

    monai_net, plain = GradeNet().eval(), GradeNet(plain=True).eval()
    a, b = monai_net.state_dict(), plain.state_dict()
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    torch.manual_seed(0)
    for p in monai_net.parameters():  # non-trivial weights and statistics
        p.data.normal_(0, 0.05)
    for name, buf in monai_net.named_buffers():
        if "running_var" in name:
            buf.uniform_(0.5, 2.0)
    plain.load_state_dict(monai_net.state_dict())
    x = torch.randn(3, 4, 64, 64)
    with torch.no_grad():
        for got, want in zip(plain.forward_heads(x), monai_net.forward_heads(x)):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
