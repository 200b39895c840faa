"""Tests for tui_trainer.engine.models: shapes, layer units, sizes, init and predict rules."""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tui_trainer.config import ModelConfig
from tui_trainer.engine.models import LayerUnit, ModelError, build_model, count_parameters

torch.set_num_threads(1)


def tiny_factory(input_shape: tuple[int, ...], num_classes: int, hidden: int = 4) -> nn.Module:
    """A user model without layer_units: Flatten, Linear, ReLU, Linear."""
    d = math.prod(input_shape)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
    )


def conv_factory(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    model = nn.Sequential(
        nn.Conv2d(input_shape[0], 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(3, num_classes),
    )
    model.task = "custom"
    return model


def not_a_module(input_shape: tuple[int, ...], num_classes: int) -> Any:
    return 42


def _build(shape: tuple[int, ...] = (1, 8, 8), classes: int = 10, **kw: Any) -> nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(**kw), shape, classes)


def _names(model: nn.Module) -> list[str]:
    return [u.name for u in model.layer_units()]


def _resnet_params(depth: int, w: int, c_in: int, k: int) -> int:
    """Option-A CIFAR ResNet: 3x3 convs without bias, BN (2 params per channel), linear head."""
    n = (depth - 2) // 6
    total = 9 * c_in * w + 2 * w  # stem
    c_prev = w
    for s in range(3):
        c = w * 2**s
        total += 9 * c_prev * c + 9 * c * c + 4 * c  # first block (maybe downsampling)
        total += (n - 1) * (2 * 9 * c * c + 4 * c)
        c_prev = c
    return total + 4 * w * k + k


ALL_KINDS = [
    ({"kind": "perceptron"}, (1, 8, 8), (1,)),
    ({"kind": "threshold", "weights": (1.0, -1.0, 0.5), "threshold": 0.2}, (3,), (1,)),
    ({"kind": "mlp", "depth": 2, "width": 16}, (1, 8, 8), (10,)),
    ({"kind": "mlp", "depth": 0}, (1, 8, 8), (10,)),
    ({"kind": "lenet1989", "activation": "tanh"}, (1, 16, 16), (10,)),
    ({"kind": "convnet", "depth": 3, "width": 4, "activation": "tanh"}, (1, 16, 16), (10,)),
    ({"kind": "convnet", "depth": 5, "width": 4}, (3, 8, 8), (10,)),
    ({"kind": "cifar_net", "depth": 8, "width": 4}, (3, 32, 32), (10,)),
    ({"kind": "cifar_net", "depth": 8, "width": 4}, (1, 16, 16), (10,)),
    ({"kind": "autoencoder", "hidden": (16, 8), "code_size": 2}, (1, 8, 8), (64,)),
    ({"kind": "factory", "factory": "tests.unit.test_models:tiny_factory"}, (1, 8, 8), (10,)),
]


@pytest.mark.parametrize(("kw", "shape", "out"), ALL_KINDS)
def test_output_shape_task_and_units_cover_every_parameter_once(
    kw: dict[str, Any], shape: tuple[int, ...], out: tuple[int, ...]
) -> None:
    model = _build(shape, **kw)
    y = model(torch.randn(5, *shape))
    assert y.shape == (5, *out)
    expected_task = {"perceptron": "perceptron", "threshold": "perceptron"}.get(kw["kind"])
    expected_task = expected_task or ("reconstruct" if kw["kind"] == "autoencoder" else "classify")
    assert model.task == expected_task
    units = model.layer_units()
    assert all(isinstance(u, LayerUnit) for u in units)
    seen: set[int] = set()
    for u in units:
        ids = {id(p) for p in u.module.parameters()}
        assert ids, u.name
        assert not ids & seen, f"{u.name} overlaps an earlier unit"
        seen |= ids
        if u.act_module is not None:
            assert any(m is u.act_module for m in u.module.modules()), u.name
        assert u.kind in ("linear", "conv", "block", "output", "other")
    assert seen == {id(p) for p in model.parameters()}
    assert len({u.name for u in units}) == len(units)


def test_layer_names_in_depth_order() -> None:
    assert _names(_build(kind="mlp", depth=2, width=8)) == ["blocks.0", "blocks.1", "head"]
    assert _names(_build(kind="mlp", depth=0)) == ["head"]
    assert _names(_build((1, 16, 16), kind="lenet1989")) == ["h1", "h2", "h3", "out"]
    convnet = _build((1, 16, 16), kind="convnet", depth=3, width=4)
    assert _names(convnet) == ["convs.0", "convs.1", "convs.2", "out"]
    assert [m.conv.out_channels for m in convnet.convs] == [4, 4, 8]
    assert convnet.out.in_features == 8 * 2 * 2  # 16 -> 8 -> 4 -> 2
    resnet8 = _build((3, 32, 32), kind="cifar_net", depth=8, width=4)
    assert _names(resnet8) == [
        "stem",
        "stages.0.blocks.0",
        "stages.1.blocks.0",
        "stages.2.blocks.0",
        "head",
    ]
    ae = _build(kind="autoencoder", hidden=(16, 8))
    assert _names(ae) == ["enc.0", "enc.1", "code", "dec.0", "dec.1", "out"]
    assert _names(_build(kind="perceptron")) == ["unit"]


def test_units_follow_forward_order() -> None:
    """The depth order of units matches the order their modules run in forward."""
    for model, shape in [
        (_build((3, 16, 16), kind="cifar_net", depth=14, width=2), (3, 16, 16)),
        (_build(kind="autoencoder", hidden=(8,)), (1, 8, 8)),
        (_build(kind="mlp", depth=3, width=8, residual=True), (1, 8, 8)),
    ]:
        order: list[str] = []
        for u in model.layer_units():
            u.module.register_forward_hook(lambda m, i, o, name=u.name, log=order: log.append(name))
        model(torch.randn(2, *shape))
        assert order == _names(model)


def test_mlp_parameter_names_and_activation_units() -> None:
    model = _build(kind="mlp", depth=2, width=8, norm="layernorm", dropout=0.1, activation="tanh")
    names = {n for n, _ in model.named_parameters()}
    for n in ("blocks.1.linear.weight", "blocks.1.norm.weight", "head.weight", "head.bias"):
        assert n in names
    units = model.layer_units()
    assert isinstance(units[0].act_module, nn.Tanh) and units[0].activation == "tanh"
    assert units[-1].kind == "output" and units[-1].act_module is None
    bn = _build(kind="mlp", depth=1, width=8, norm="batchnorm")
    assert isinstance(bn.blocks[0].norm, nn.BatchNorm1d)


def test_residual_mlp_block_adds_its_input() -> None:
    model = _build((1, 4, 4), kind="mlp", depth=3, width=8, residual=True)
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for i in range(3):
        model.blocks[i].register_forward_hook(
            lambda m, inp, out, i=i: seen.__setitem__(f"b{i}", (inp[0], out))
        )
    model(torch.randn(6, 1, 4, 4))
    # first block: 16 -> 8, no skip
    x, y = seen["b0"]
    torch.testing.assert_close(
        y, F.relu(F.linear(x, model.blocks[0].linear.weight, model.blocks[0].linear.bias))
    )
    for i in (1, 2):
        x, y = seen[f"b{i}"]
        lin = model.blocks[i].linear
        torch.testing.assert_close(y, x + F.relu(F.linear(x, lin.weight, lin.bias)))
    plain = _build((1, 4, 4), kind="mlp", depth=3, width=8)
    assert not any(b.residual for b in plain.blocks)


def test_resnet20_parameter_count() -> None:
    model = _build((3, 32, 32), kind="cifar_net", depth=20, width=16, residual=True)
    n = count_parameters(model)
    assert n == _resnet_params(20, 16, 3, 10) == 269_722
    assert 260_000 < n < 280_000
    small = _build((1, 16, 16), 7, kind="cifar_net", depth=14, width=3)
    assert count_parameters(small) == _resnet_params(14, 3, 1, 7)


def test_plain_and_residual_cifar_nets_share_parameters_but_not_outputs() -> None:
    plain = _build((3, 16, 16), kind="cifar_net", depth=8, width=4, residual=False)
    res = _build((3, 16, 16), kind="cifar_net", depth=8, width=4, residual=True)
    assert count_parameters(plain) == count_parameters(res)
    res.load_state_dict(plain.state_dict())
    plain.eval()
    res.eval()
    x = torch.randn(3, 3, 16, 16)
    assert not torch.allclose(plain(x), res(x))


def test_cifar_block_shortcut_option_a() -> None:
    model = _build((3, 16, 16), kind="cifar_net", depth=8, width=4, residual=True).eval()
    block = model.stages[1]["blocks"][0]  # 4 -> 8 channels, stride 2
    x = torch.randn(2, 4, 16, 16)
    sc = block.shortcut(x)
    assert sc.shape == (2, 8, 8, 8)
    torch.testing.assert_close(sc[:, 2:6], x[:, :, ::2, ::2])
    assert sc[:, :2].abs().sum() == 0 and sc[:, 6:].abs().sum() == 0
    inner = block.bn2(block.conv2(block.relu1(block.bn1(block.conv1(x)))))
    torch.testing.assert_close(block(x), F.relu(inner + sc))


TRUTH = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


@pytest.mark.parametrize(
    ("weights", "threshold", "expected"),
    [((1.0, 1.0), 2.0, [0, 0, 0, 1]), ((1.0, 1.0), 1.0, [0, 1, 1, 1])],
)
def test_threshold_unit_computes_and_or(
    weights: tuple[float, ...], threshold: float, expected: list[int]
) -> None:
    model = _build((2,), 2, kind="threshold", weights=weights, threshold=threshold)
    pred = model.predict(TRUTH)
    assert pred.dtype == torch.int64
    assert pred.tolist() == expected
    assert ((model(TRUTH).squeeze(1) >= 0).long() == pred).all()
    assert all(not p.requires_grad for p in model.parameters())
    assert model.layer_units()[0].activation == "threshold"


def test_threshold_unit_not_and_bad_weights() -> None:
    model = _build((1,), 2, kind="threshold", weights=(-1.0,), threshold=0.0)
    assert model.predict(torch.tensor([[0.0], [1.0]])).tolist() == [1, 0]
    with pytest.raises(ModelError, match="model.weights"):
        _build((3,), 2, kind="threshold", weights=(1.0, 1.0), threshold=1.0)


def test_perceptron_predict_is_strict() -> None:
    model = _build((2,), 2, kind="perceptron")
    assert model.task == "perceptron"
    with torch.no_grad():
        model.unit.weight.copy_(torch.tensor([[1.0, 1.0]]))
        model.unit.bias.fill_(-1.0)
    # scores -1, 0, 0, 1: a score of exactly 0 does not fire (unlike the threshold unit)
    assert model.predict(TRUTH).tolist() == [0, 0, 0, 1]
    assert model.predict(TRUTH).dtype == torch.int64
    assert all(p.requires_grad for p in model.parameters())
    unit = model.layer_units()[0]
    assert (unit.name, unit.kind, unit.activation) == ("unit", "linear", "threshold")


def test_init_schemes_set_weight_std() -> None:
    fan_in, width = 256, 512
    he = _build((fan_in,), kind="mlp", depth=2, width=width, init="he")
    for lin, fi in ((he.blocks[0].linear, fan_in), (he.blocks[1].linear, width)):
        assert lin.weight.std().item() == pytest.approx(math.sqrt(2 / fi), rel=0.1)
        assert lin.bias.abs().sum() == 0
    xav = _build((fan_in,), kind="mlp", depth=1, width=width, init="xavier", activation="tanh")
    expected = 5 / 3 * math.sqrt(2 / (fan_in + width))
    assert xav.blocks[0].linear.weight.std().item() == pytest.approx(expected, rel=0.1)
    assert xav.blocks[0].linear.bias.abs().sum() == 0
    default = _build((fan_in,), kind="mlp", depth=1, width=width)
    std = default.blocks[0].linear.weight.std().item()
    assert std == pytest.approx(1 / math.sqrt(3 * fan_in), rel=0.1)  # PyTorch's uniform init
    assert default.blocks[0].linear.bias.abs().sum() > 0
    lenet = _build((1, 16, 16), kind="lenet1989", init="he")
    assert lenet.h3.linear.weight.std().item() == pytest.approx(math.sqrt(2 / 192), rel=0.1)


def test_cifar_convs_use_kaiming_normal() -> None:
    model = _build((3, 16, 16), kind="cifar_net", depth=8, width=16)
    conv = model.stages[2]["blocks"][0].conv2  # 64 -> 64, fan_in 576
    assert conv.bias is None
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / 576), rel=0.1)


def test_lenet_input_sizes_and_filters() -> None:
    for side, flat in ((8, 48), (16, 192), (28, 588)):
        model = _build((1, side, side), kind="lenet1989", activation="tanh")
        assert model.h3.linear.in_features == flat
        assert model(torch.randn(2, 1, side, side)).shape == (2, 10)
    filters = model.first_layer_filters()
    assert filters.shape == (12, 1, 5, 5)
    assert torch.equal(filters, model.h1.conv.weight)
    assert isinstance(model.layer_units()[0].act_module, nn.Tanh)
    with pytest.raises(ModelError, match="lenet1989"):
        _build((64,), kind="lenet1989")


def test_autoencoder_encode_and_mirrored_layers() -> None:
    model = _build((1, 8, 8), kind="autoencoder", hidden=(32, 16), code_size=3)
    x = torch.randn(4, 1, 8, 8)
    assert model.encode(x).shape == (4, 3)
    assert model(x).shape == (4, 64)
    enc, dec = model.encoder_layers(), model.decoder_layers()
    assert [m.weight.shape for m in enc] == [(32, 64), (16, 32), (3, 16)]
    assert len(enc) == len(dec)
    for e, d in zip(enc, reversed(dec), strict=True):
        assert d.weight.shape == e.weight.t().shape
    assert model.out is dec[-1] and model.code is enc[-1]
    code_unit = model.layer_units()[2]
    assert (code_unit.name, code_unit.activation, code_unit.act_module) == (
        "code",
        "identity",
        None,
    )


def test_factory_gets_fallback_units_and_options() -> None:
    cfg = ModelConfig(
        kind="factory", factory="tests.unit.test_models:tiny_factory", options={"hidden": 5}
    )
    model = build_model(cfg, (1, 4, 4), 3)
    assert model.task == "classify"
    units = model.layer_units()
    assert [(u.name, u.kind, u.activation, u.act_module) for u in units] == [
        ("1", "linear", "identity", None),
        ("3", "linear", "identity", None),
    ]
    assert units[0].module.out_features == 5
    clone = copy.deepcopy(model)
    assert clone.layer_units()[0].module is clone[1]

    conv = build_model(
        ModelConfig(kind="factory", factory="tests.unit.test_models:conv_factory"), (2, 6, 6), 4
    )
    assert conv.task == "custom"
    assert [(u.name, u.kind) for u in conv.layer_units()] == [
        ("0", "conv"),
        ("1", "other"),
        ("5", "linear"),
    ]


@pytest.mark.parametrize(
    "spec",
    [
        "no_such_package_xyz.mod:make",
        "tests.unit.test_models:no_such_function",
        "tests.unit.test_models:not_a_module",
    ],
)
def test_bad_factory_raises_model_error(spec: str) -> None:
    with pytest.raises(ModelError) as info:
        build_model(ModelConfig(kind="factory", factory=spec), (4,), 2)
    message = str(info.value)
    assert "model.factory" in message and spec in message and "\n" not in message


def test_huge_mlp_is_refused_before_allocation() -> None:
    start = time.perf_counter()
    with pytest.raises(ModelError, match=r"too many \(limit 500M\)"):
        build_model(ModelConfig(kind="mlp", depth=1000, width=65536), (1, 28, 28), 10)
    assert time.perf_counter() - start < 10
    with pytest.raises(ModelError, match="^model: ~"):
        build_model(ModelConfig(kind="mlp", depth=1, width=65536), (3, 64, 64), 10)


def test_inplace_relu_forward_backward_matches_out_of_place() -> None:
    for kw, shape in [
        ({"kind": "mlp", "depth": 3, "width": 8, "residual": True, "norm": "batchnorm"}, (1, 4, 4)),
        ({"kind": "mlp", "depth": 2, "width": 8, "activation": "leaky_relu"}, (1, 4, 4)),
        ({"kind": "cifar_net", "depth": 8, "width": 4, "residual": True}, (3, 8, 8)),
        ({"kind": "lenet1989"}, (1, 8, 8)),
        ({"kind": "convnet", "depth": 3, "width": 4}, (1, 8, 8)),
    ]:
        a = _build(shape, inplace=True, **kw)
        b = _build(shape, inplace=False, **kw)
        b.load_state_dict(a.state_dict())
        assert any(getattr(m, "inplace", False) for m in a.modules())
        x = torch.randn(4, *shape)
        ya, yb = a(x), b(x)
        torch.testing.assert_close(ya, yb)
        ya.square().sum().backward()
        yb.square().sum().backward()
        for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
            assert pa.grad is not None and torch.isfinite(pa.grad).all()
            torch.testing.assert_close(pa.grad, pb.grad)
