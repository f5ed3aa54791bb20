"""Tests of the MnasNet search space (spec section 1)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from search_spaces import InvalidArchError, SearchSpaceError, Workload, get_space
from search_spaces._blocks import PoolProjection, Residual, SqueezeExcite, make_divisible
from search_spaces._mnasnet_model import build_layer
from search_spaces._profiling import count_macs_flops, count_params, peak_activation_bytes
from search_spaces.mnasnet import MnasNetArch, MnasNetBlock, MnasNetSpace, mnasnet_reward

A1_STRING = (
    "ds_r1_k3_s1_c16_noskip-ir_r2_k3_s2_e6_c24-ir_r3_k5_s2_e3_c40_se0.25-ir_r4_k3_s2_e6_c80-"
    "ir_r2_k3_s1_e6_c112_se0.25-ir_r3_k5_s2_e6_c160_se0.25-ir_r1_k3_s1_e6_c320"
)
# The seeded member of the hardware-embedding set must never change (spec 1.8).
RANDOM0_STRING = (
    "ir_r1_k5_s1_e6_c16_se0.25_noskip-cn_r3_k3_s2_c24_poolskip-ir_r3_k5_s2_e3_c32_se0.25_poolskip-"
    "ir_r3_k5_s2_e3_c80_poolskip-ds_r4_k5_s1_c120_se0.25_noskip-ir_r3_k3_s2_e6_c120_poolskip-"
    "cn_r1_k3_s1_c320"
)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """Tiny CPU forwards are much faster single-threaded on a shared, loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def space() -> MnasNetSpace:
    sp = get_space("mnasnet")
    assert isinstance(sp, MnasNetSpace)
    return sp


def _params(**overrides: Any) -> dict[str, Any]:
    base = {"op": "mbconv6", "k": 3, "se": 0.0, "skip": "identity", "width": 1.0, "dlayers": 0}
    out = {f"b{i}_{key}": value for i in range(1, 8) for key, value in base.items()}
    out.update(overrides)
    return out


# ------------------------------------------------------------------ reference counts
@pytest.mark.parametrize(
    ("name", "params", "macs"),
    [
        ("mnasnet-a1", 3.887e6, 311.6e6),
        ("mnasnet-b1", 4.383e6, 314.4e6),
        ("mobilenetv2", 3.505e6, 300.8e6),
    ],
)
def test_reference_counts_within_one_percent(
    space: MnasNetSpace, name: str, params: float, macs: float
) -> None:
    arch = space.reference_archs()[name]
    prof = space.profile(arch)
    assert prof.params == pytest.approx(params, rel=0.01)
    assert prof.macs == pytest.approx(macs, rel=0.01)
    model = space.build(arch)
    assert count_params(model) == prof.params


def test_b1_matches_torchvision_parameter_count(space: MnasNetSpace) -> None:
    assert space.profile(space.reference_archs()["mnasnet-b1"]).params == 4_383_312


def test_a1_macs_measured_on_real_model(space: MnasNetSpace) -> None:
    arch = space.reference_archs()["mnasnet-a1"]
    macs, flops = count_macs_flops(space.build(arch).eval(), space.example_inputs())
    assert macs == pytest.approx(311.6e6, rel=0.01)
    assert space.profile(arch).macs == macs
    assert space.profile(arch).flops == flops


@pytest.mark.parametrize("which", ["random0", "all-max", "random3"])
def test_analytic_profile_equals_measured(space: MnasNetSpace, which: str) -> None:
    """The analytic counts equal the hook/FlopCounter measurements (odd size: ceil-mode pools)."""
    arch = {
        "random0": space.random(0),
        "all-max": space.hardware_embedding_archs()[8],
        "random3": space.random(3),
    }[which]
    workload = Workload(batch_size=2, resolution=33)
    model = space.build(arch).eval()
    inputs = space.example_inputs(workload)
    prof = space.profile(arch, workload)
    macs, flops = count_macs_flops(model, inputs)
    assert (prof.params, prof.macs, prof.flops) == (count_params(model), macs, flops)
    assert prof.memory_bytes == peak_activation_bytes(model, inputs)


def test_profile_scales_with_batch(space: MnasNetSpace) -> None:
    arch = space.reference_archs()["mnasnet-a1"]
    one, four = (
        space.profile(arch, Workload(batch_size=1)),
        space.profile(arch, Workload(batch_size=4)),
    )
    assert four.params == one.params
    assert four.macs == 4 * one.macs
    assert four.memory_bytes == 4 * one.memory_bytes


# ------------------------------------------------------------------ strings
def test_a1_block_string_round_trip_is_exact(space: MnasNetSpace) -> None:
    a1 = space.reference_archs()["mnasnet-a1"]
    assert space.to_string(a1) == A1_STRING
    assert space.from_string(A1_STRING) == a1
    assert space.resolve("MnasNet-A1") == a1
    assert space.canonicalize(f"  {A1_STRING} ") == A1_STRING


def test_block_string_suffixes(space: MnasNetSpace) -> None:
    text = space.to_string(space.hardware_embedding_archs()[8])
    assert text.startswith("ir_r2_k5_s1_e6_c24_se0.25_poolskip-")
    arch = space.from_string(text.replace("ir_r2_k5_s1_e6_c24_se0.25_poolskip", "cn_r1_k3_s1_c16"))
    assert arch.blocks[0] == MnasNetBlock("conv", 3, 0.0, "identity", 16, 1)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("xx_r1_k3_s1_c16", "'xx'"),
        (A1_STRING.replace("c16_noskip", "c16_z9"), "'z9'"),
        (A1_STRING.replace("c16_noskip", "c16_noskip_noskip"), "duplicate token 'noskip'"),
        (A1_STRING.replace("r1_k3_s1_c16", "r1_k3_s1"), "missing token(s) c"),
        (A1_STRING.replace("ir_r2_k3_s2_e6", "ir_r2_k3_s1_e6"), "'s1' must be s2"),
        (A1_STRING.replace("ds_r1_k3_s1_c16", "ds_r1_k3_s1_e6_c16"), "'e6'"),
        (A1_STRING.replace("ir_r2_k3_s2_e6", "ir_r2_k3_s2"), "e3 or e6"),
        (A1_STRING.replace("ir_r2_k3_s2_e6", "ir_r2_k3_s2_e4"), "e3 or e6"),
        (A1_STRING.replace("ir_r2_k3_s2_e6", "ir_r2_k7_s2_e6"), "`kernel`"),
        (A1_STRING.replace("c112", "c128"), "block 5"),
        (A1_STRING.replace("ir_r4_k3", "ir_r6_k3"), "`layers` must be between 3 and 5"),
        (A1_STRING.replace("_se0.25", "_se0.5", 1), "'se0.5'"),
        (A1_STRING + "-zzz", "'zzz'"),
        (A1_STRING + "-ir_r1_k3_s1_e6_c320", "7 blocks"),
        ("-".join(A1_STRING.split("-")[:6]), "got 6"),
    ],
)
def test_invalid_strings(space: MnasNetSpace, text: str, fragment: str) -> None:
    with pytest.raises(InvalidArchError) as info:
        space.from_string(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, SearchSpaceError)


# ------------------------------------------------------------------ grid and repair
def test_channel_grid_table(space: MnasNetSpace) -> None:
    expected = {
        0.75: (16, 24, 24, 48, 72, 120, 240),
        1.0: (16, 24, 32, 64, 96, 160, 320),
        1.25: (24, 32, 40, 80, 120, 200, 400),
    }
    for width, channels in expected.items():
        arch = space.from_params(_params(**{f"b{i}_width": width for i in range(1, 8)}))
        assert tuple(b.out_ch for b in arch.blocks) == channels


def test_make_divisible_rounding() -> None:
    assert make_divisible(18.0) == 24  # 16 < 0.9 * 18, so one more step
    assert make_divisible(12.0) == 16
    assert make_divisible(3.0) == 8
    with pytest.raises(ValueError, match="`value`"):
        make_divisible(0.0)
    with pytest.raises(ValueError, match="`divisor`"):
        make_divisible(10.0, 0)


def test_search_parameters_grid(space: MnasNetSpace) -> None:
    grid = space.search_parameters()
    assert len(grid) == 42
    assert list(grid)[:6] == ["b1_op", "b1_k", "b1_se", "b1_skip", "b1_width", "b1_dlayers"]
    assert list(grid["b3_op"]) == ["conv", "dwconv", "mbconv3", "mbconv6"]
    assert list(grid["b3_skip"]) == ["none", "identity", "pool"]
    assert list(grid["b7_dlayers"]) == [-1, 0, 1]
    assert math.prod(len(c) for c in grid.values()) == 432**7


def test_repair_keeps_every_block(space: MnasNetSpace) -> None:
    minus = space.from_params(_params(**{f"b{i}_dlayers": -1 for i in range(1, 8)}))
    plus = space.from_params(_params(**{f"b{i}_dlayers": 1 for i in range(1, 8)}))
    assert [b.layers for b in minus.blocks] == [1, 1, 2, 3, 2, 2, 1]
    assert [b.layers for b in plus.blocks] == [2, 3, 4, 5, 4, 4, 2]


def test_from_params_ignores_foreign_keys(space: MnasNetSpace) -> None:
    arch = space.from_params({**_params(), "lr": 0.1})
    assert arch == space.from_params(_params())
    assert arch.blocks[1:] == space.reference_archs()["mobilenetv2"].blocks[1:]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({k: v for k, v in _params().items() if k != "b4_k"}, "missing parameter(s): b4_k"),
        (_params(b2_op="mbconv4"), "`b2_op`"),
        (_params(b3_width=0.5), "`b3_width`"),
        (_params(b5_dlayers=2), "`b5_dlayers`"),
        (_params(b6_se=True), "`b6_se`"),
    ],
)
def test_from_params_errors(space: MnasNetSpace, params: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidArchError) as info:
        space.from_params(params)
    assert fragment in str(info.value)


# ------------------------------------------------------------------ dataclasses
def test_arch_dict_round_trip_and_hash(space: MnasNetSpace) -> None:
    for arch in space.hardware_embedding_archs():
        data = json.loads(json.dumps(arch.to_dict()))
        assert MnasNetArch.from_dict(data) == arch
        assert hash(MnasNetArch.from_dict(data)) == hash(arch)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"op": "mbconv4"}, "`op`"),
        ({"kernel": 7}, "`kernel`"),
        ({"kernel": True}, "`kernel`"),
        ({"se": 0.5}, "`se`"),
        ({"se": "0.25"}, "`se`"),
        ({"skip": "residual"}, "`skip`"),
        ({"out_ch": 0}, "`out_ch`"),
        ({"layers": 1.5}, "`layers`"),
    ],
)
def test_block_validation(kwargs: dict[str, Any], field: str) -> None:
    base = {"op": "mbconv6", "kernel": 3, "se": 0.0, "skip": "identity", "out_ch": 24, "layers": 2}
    with pytest.raises(InvalidArchError, match=field):
        MnasNetBlock(**{**base, **kwargs})


def test_arch_validation(space: MnasNetSpace) -> None:
    a1 = space.reference_archs()["mnasnet-a1"]
    with pytest.raises(InvalidArchError, match="exactly 7 blocks"):
        MnasNetArch(a1.blocks[:6])
    with pytest.raises(InvalidArchError, match="block 7: `out_ch` must be between 240 and 400"):
        MnasNetArch((*a1.blocks[:6], replace(a1.blocks[6], out_ch=480)))
    with pytest.raises(InvalidArchError, match="block 1: `layers` must be between 1 and 2"):
        MnasNetArch((replace(a1.blocks[0], layers=3), *a1.blocks[1:]))
    with pytest.raises(InvalidArchError, match="'blocks'"):
        MnasNetArch.from_dict({"blocks": [], "extra": 1})
    with pytest.raises(InvalidArchError, match="unknown \\['width'\\]"):
        MnasNetArch.from_dict({"blocks": [{**a1.blocks[0].to_dict(), "width": 1.0}]})
    with pytest.raises(InvalidArchError, match="MnasNetArch"):
        space.build("not an arch")  # type: ignore[arg-type]


# ------------------------------------------------------------------ builder details
def test_batchnorm_and_se_follow_the_reference_block(space: MnasNetSpace) -> None:
    model = space.build(space.reference_archs()["mnasnet-a1"])
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(bn.eps == 1e-3 and bn.momentum == 0.01 for bn in bns)
    ses = [m for m in model.modules() if isinstance(m, SqueezeExcite)]
    se_convs = {id(c) for se in ses for c in (se.reduce, se.expand)}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and id(m) not in se_convs]
    assert convs and all(c.bias is None and c.padding[0] == c.kernel_size[0] // 2 for c in convs)
    # Block 3, first layer: in 24, mbconv3 -> 72 channels, squeeze floor(24 * 0.25) = 6.
    assert (ses[0].reduce.in_channels, ses[0].reduce.out_channels) == (72, 6)
    assert ses[0].reduce.bias is not None
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.2


def test_conv_op_puts_se_on_output_channels() -> None:
    layer = build_layer(MnasNetBlock("conv", 5, 0.25, "none", 40, 2), 24, 2)
    se = [m for m in layer.modules() if isinstance(m, SqueezeExcite)][0]
    assert (se.reduce.in_channels, se.reduce.out_channels) == (40, 6)
    out = layer(torch.randn(1, 24, 9, 9))
    assert out.shape == (1, 40, 5, 5)


@pytest.mark.parametrize(
    ("skip", "in_ch", "stride", "expected"),
    [
        ("identity", 24, 1, "identity"),
        ("identity", 16, 1, None),
        ("identity", 24, 2, None),
        ("none", 24, 1, None),
        ("pool", 24, 1, "identity"),
        ("pool", 24, 2, "pool"),
        ("pool", 16, 1, "proj"),
        ("pool", 16, 2, "pool+proj"),
    ],
)
def test_skip_semantics(skip: str, in_ch: int, stride: int, expected: str | None) -> None:
    layer = build_layer(MnasNetBlock("mbconv3", 3, 0.0, skip, 24, 2), in_ch, stride).eval()
    assert isinstance(layer, Residual)
    x = torch.randn(1, in_ch, 7, 7)
    with torch.no_grad():
        delta = layer(x) - layer.body(x)
    if expected is None:
        assert layer.shortcut is None and not layer.add_input
        assert torch.count_nonzero(delta) == 0
    elif expected == "identity":
        assert layer.add_input and layer.shortcut is None
        torch.testing.assert_close(delta, x)
    else:
        assert isinstance(layer.shortcut, PoolProjection)
        assert (layer.shortcut.pool is not None) == ("pool" in expected)
        assert (layer.shortcut.proj is not None) == ("proj" in expected)
        assert delta.shape == (1, 24, 4 if stride == 2 else 7, 4 if stride == 2 else 7)
        if expected == "pool":
            torch.testing.assert_close(delta, nn.functional.avg_pool2d(x, 2, 2, ceil_mode=True))


def test_residual_rejects_unknown_shortcut() -> None:
    with pytest.raises(ValueError, match="`shortcut`"):
        Residual(nn.Identity(), "pool")


def test_forward_output_shape(space: MnasNetSpace) -> None:
    model = space.build(space.reference_archs()["mnasnet-b1"]).eval()
    with torch.inference_mode():
        out = model(*space.example_inputs(Workload(batch_size=2, resolution=32)))
    assert out.shape == (2, 1000)
    assert torch.isfinite(out).all()


# ------------------------------------------------------------------ encoding
def test_encoding_layout(space: MnasNetSpace) -> None:
    a1 = space.reference_archs()["mnasnet-a1"]
    wl = Workload(batch_size=4, resolution=192)
    vec = space.encode(a1, wl)
    assert vec.shape == (82,) and space.encoding_length == 82
    # Block 1: dwconv, k3, no SE, skip none, 16 channels, 1 layer.
    np.testing.assert_allclose(vec[:11], [0, 1, 0, 0, 0, 0, 1, 0, 0, 16 / 400, 1 / 5])
    # Block 3: mbconv3, k5, SE, identity, 40 channels, 3 layers.
    np.testing.assert_allclose(vec[22:33], [0, 0, 1, 0, 1, 1, 0, 1, 0, 40 / 400, 3 / 5])
    np.testing.assert_allclose(vec[77:79], [192 / 224, 2 / 8])
    prof = space.profile(a1, wl)
    np.testing.assert_allclose(
        vec[79:], np.log10([prof.params, prof.macs, prof.memory_bytes]), rtol=1e-12
    )


def test_encode_returns_independent_arrays(space: MnasNetSpace) -> None:
    a1 = space.reference_archs()["mnasnet-a1"]
    first = space.encode(a1)
    first[:] = -1
    assert space.encode(a1)[0] == 0.0


# ------------------------------------------------------------------ reference sets
def test_reference_archs_names_and_table6_variants(space: MnasNetSpace) -> None:
    refs = space.reference_archs()
    assert {"mnasnet-a1", "mnasnet-b1", "mobilenetv2"} <= set(refs)
    variants = [name for name in refs if name.startswith("mnasnet-a1-all-")]
    assert len(variants) == 4
    a1 = refs["mnasnet-a1"]
    for name in variants:
        arch = refs[name]
        assert len({(b.op, b.kernel) for b in arch.blocks}) == 1
        assert [(b.out_ch, b.layers) for b in arch.blocks] == [
            (b.out_ch, b.layers) for b in a1.blocks
        ]


def test_hardware_embedding_set(space: MnasNetSpace) -> None:
    archs = space.hardware_embedding_archs()
    refs = space.reference_archs()
    assert archs[:3] == [refs["mobilenetv2"], refs["mnasnet-a1"], refs["mnasnet-b1"]]
    smallest, largest = archs[7], archs[8]
    assert all(b == replace(b, op="dwconv", kernel=3, se=0.0, skip="none") for b in smallest.blocks)
    assert [b.out_ch for b in largest.blocks] == [24, 32, 40, 80, 120, 200, 400]
    assert space.profile(smallest).macs < min(space.profile(a).macs for a in archs if a != smallest)
    assert space.profile(largest).macs > max(space.profile(a).macs for a in archs if a != largest)
    assert space.to_string(archs[9]) == RANDOM0_STRING


# ------------------------------------------------------------------ reward
def test_reward_soft_and_hard_constraints() -> None:
    assert mnasnet_reward(0.75, 75.0, 75.0) == pytest.approx(0.75)
    assert mnasnet_reward(0.75, 150.0, 75.0) == pytest.approx(0.75 * 2**-0.07)
    assert mnasnet_reward(0.75, 37.5, 75.0) == pytest.approx(0.75 * 0.5**-0.07)
    assert mnasnet_reward(0.75, 50.0, 75.0, alpha=0.0, beta=-1.0) == pytest.approx(0.75)
    assert mnasnet_reward(0.75, 150.0, 75.0, alpha=0.0, beta=-1.0) == pytest.approx(0.375)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"acc": -0.1}, "`acc`"),
        ({"acc": math.nan}, "`acc`"),
        ({"lat_ms": 0.0}, "`lat_ms`"),
        ({"target_ms": -1.0}, "`target_ms`"),
        ({"target_ms": math.inf}, "`target_ms`"),
        ({"alpha": math.nan}, "`alpha`"),
        ({"beta": math.inf}, "`beta`"),
    ],
)
def test_reward_errors(kwargs: dict[str, float], name: str) -> None:
    args = {"acc": 0.7, "lat_ms": 80.0, "target_ms": 75.0, **kwargs}
    with pytest.raises(ValueError, match=name):
        mnasnet_reward(**args)
