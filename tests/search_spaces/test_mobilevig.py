"""Tests of the MobileViG-style search space (spec section 2)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from search_spaces import InvalidArchError, Workload, get_space
from search_spaces._mobilevig_blocks import (
    _BLOCK_TYPES,
    CostTally,
    InvertedResidual,
    MRConv,
    get_block,
    graph_shifts,
    list_blocks,
)
from search_spaces._profiling import count_params, peak_activation_bytes
from search_spaces.mobilevig import (
    MobileViG,
    MobileViGArch,
    MobileViGBlockCfg,
    MobileViGModelCfg,
    MobileViGSpace,
    analytic_profile,
    build_mobilevig,
    register_block,
)

SPACE = get_space("mobilevig")
REFS = SPACE.reference_archs()

# Spec 2.3 "checked" numbers: params and MACs with the distillation head, params without it.
PUBLISHED = {
    "mobilevig-ti": (5.27e6, 0.66e9, 4.76e6),
    "mobilevig-s": (7.28e6, 0.98e9, 6.76e6),
    "mobilevig-m": (14.08e6, 1.49e9, 13.31e6),
    "mobilevig-b": (26.87e6, 2.79e9, 26.10e6),
}

TI_STRING = "vig_c42-84-168-256_d2-2-6+0-0+2_e4444_k02_f4_E512"


def _real_costs(model: nn.Module, x: torch.Tensor) -> tuple[int, int, int]:
    """Params, FLOPs (torch's flop counter) and peak leaf bytes of a real module."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return count_params(model), int(counter.get_total_flops()), peak_activation_bytes(model, (x,))


# ---------------------------------------------------------------------------- reference counts
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_reference_counts_within_one_percent(name: str) -> None:
    params, macs, params_no_dist = PUBLISHED[name]
    prof = SPACE.profile(REFS[name])
    assert prof.params == pytest.approx(params, rel=0.01)
    assert prof.macs == pytest.approx(macs, rel=0.01)
    with torch.device("meta"):
        model = build_mobilevig(REFS[name])
        no_dist = build_mobilevig(REFS[name].model_cfg(distillation=False))
    assert count_params(model) == prof.params
    assert count_params(no_dist) == pytest.approx(params_no_dist, rel=0.01)


def test_analytic_profile_equals_real_module_at_224() -> None:
    arch = REFS["mobilevig-ti"]
    with torch.device("meta"):
        model = build_mobilevig(arch).eval()
        x = torch.empty(1, 3, 224, 224)
        params, flops, peak = _real_costs(model, x)
    prof = SPACE.profile(arch)
    assert (params, flops, peak) == (prof.params, prof.flops, prof.memory_bytes)
    assert prof.flops == 2 * prof.macs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_analytic_profile_equals_real_module_on_small_inputs(seed: int) -> None:
    arch = SPACE.random(seed)
    workload = Workload(batch_size=2, resolution=64)
    with torch.device("meta"):
        model = SPACE.build(arch).eval()
        x = torch.empty(2, 3, 64, 64)
        costs = _real_costs(model, x)
    prof = SPACE.profile(arch, workload)
    assert costs == (prof.params, prof.flops, prof.memory_bytes)


def test_profile_scales_with_batch_and_counts_graph_passes() -> None:
    arch = REFS["mobilevig-ti"]
    one = SPACE.profile(arch, Workload(batch_size=1))
    four = SPACE.profile(arch, Workload(batch_size=4))
    assert four.params == one.params
    assert four.macs == 4 * one.macs
    assert four.memory_bytes == 4 * one.memory_bytes
    # Two SVGA blocks on a 7x7 map with K = 2: shifts 2, 4, 6 along each axis.
    assert one.extra["graph_shift_passes"] == 2 * 6
    with_svga3 = SPACE.profile(replace(arch, n3_svga=1, k3=4))
    assert with_svga3.extra["graph_shift_passes"] == 12 + 6  # 14x14, K = 4: 4, 8, 12


# ---------------------------------------------------------------------------- graph convolution
def _gather_max_relative(u: torch.Tensor, k: int) -> tuple[torch.Tensor, list[int]]:
    """Direct per-node gather: node (i, j) sees (i - s, j) and (i, j - s), s = K, 2K, ..."""
    _, _, h, w = u.shape
    out = torch.zeros_like(u)
    counts = []
    for i in range(h):
        for j in range(w):
            nbrs = [((i - s) % h, j) for s in range(k, h, k)]
            nbrs += [(i, (j - s) % w) for s in range(k, w, k)]
            counts.append(len(set(nbrs)))
            for a, b in nbrs:
                out[:, :, i, j] = torch.maximum(out[:, :, i, j], u[:, :, i, j] - u[:, :, a, b])
    return out, counts


@pytest.mark.parametrize(("h", "w", "k", "expected"), [(7, 7, 2, 6), (7, 7, 3, 4), (7, 7, 1, 12)])
def test_mrconv_matches_direct_gather(h: int, w: int, k: int, expected: int) -> None:
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(2, 3, h, w, generator=gen)
    conv = MRConv(3, k).eval()
    direct, counts = _gather_max_relative(u, k)
    assert set(counts) == {expected}
    assert expected == (math.ceil(h / k) - 1) + (math.ceil(w / k) - 1)
    assert torch.allclose(conv.max_relative(u), direct)
    with torch.no_grad():
        assert torch.allclose(conv(u), conv.nn(torch.cat([u, direct], dim=1)))


def test_roll_equals_official_slice_concatenation() -> None:
    x = torch.arange(2 * 7 * 5, dtype=torch.float32).reshape(1, 2, 7, 5)
    for s in graph_shifts(2, 7):
        official = torch.cat([x[:, :, -s:, :], x[:, :, :-s, :]], dim=2)
        assert torch.equal(torch.roll(x, s, dims=-2), official)


def test_hop_is_repaired_for_small_feature_maps() -> None:
    u = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(MRConv(4, 3).max_relative(u), MRConv(4, 1).max_relative(u))
    big = torch.randn(1, 4, 7, 7, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(MRConv(4, 3).max_relative(big), MRConv(4, 1).max_relative(big))
    small = MobileViGSpace(resolution=64)  # stage 3 is 4x4, stage 4 is 2x2
    params = {name: choices[-1] for name, choices in small.search_parameters().items()}
    arch = small.from_params(params)
    assert (arch.k3, arch.k4) == (3, 1)
    assert SPACE.from_params(params).k3 == 4


# ---------------------------------------------------------------------------- blocks and head
def test_inverted_residual_layer_scale() -> None:
    block = InvertedResidual(8, 4).eval()
    assert torch.equal(block.layer_scale, torch.full((8, 1, 1), 1e-5))
    x = torch.randn(1, 8, 5, 5, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(block(x), x + 1e-5 * block.mlp(x))


def test_distillation_head_is_averaged_in_eval_mode() -> None:
    arch = SPACE.hardware_embedding_archs()[4]  # the all-minimum architecture
    model = SPACE.build(arch)
    assert isinstance(model, MobileViG) and model.dist_head is not None
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    train_out = model(x)
    assert isinstance(train_out, tuple) and len(train_out) == 2
    assert train_out[0].shape == train_out[1].shape == (2, 1000)
    model.eval()
    with torch.no_grad():
        out = model(x)
        z = model.prediction(model.forward_features(x))
        head, dist = model.head(z).flatten(1), model.dist_head(z).flatten(1)
    assert not torch.allclose(head, dist)
    assert isinstance(out, torch.Tensor)
    assert torch.allclose(out, (head + dist) / 2)


def test_without_distillation_head_returns_logits() -> None:
    cfg = SPACE.hardware_embedding_archs()[4].model_cfg(num_classes=10, distillation=False)
    model = build_mobilevig(cfg)
    assert model.dist_head is None
    out = model(torch.randn(2, 3, 64, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)


def test_new_block_type_needs_no_builder_edits() -> None:
    def cost(cfg: MobileViGBlockCfg, hw: tuple[int, int], tally: CostTally) -> None:
        tally.conv_bn(cfg.c, cfg.c, hw, k=3, act=True)

    register_block("test_conv", lambda cfg: _ConvBlock(cfg.c), cost)
    try:
        assert "test_conv" in list_blocks()
        stages = ((MobileViGBlockCfg("test_conv", d=2, c=16),), (MobileViGBlockCfg("ir", 1, 32),))
        cfg = MobileViGModelCfg(channels=(16, 32), stages=stages, emb=64, num_classes=5)
        model = build_mobilevig(cfg).eval()
        x = torch.randn(1, 3, 32, 32)
        assert _real_costs(model, x)[0] == analytic_profile(cfg, 1, 32).params
        assert model(x).shape == (1, 5)
    finally:
        del _BLOCK_TYPES["test_conv"]


class _ConvBlock(nn.Sequential):
    def __init__(self, c: int) -> None:
        super().__init__(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.GELU())


# ---------------------------------------------------------------------------- grid and identity
def test_search_parameters_are_the_spec_grid() -> None:
    params = SPACE.search_parameters()
    assert len(params) == 18
    assert list(params["n3_ir"]) == list(range(2, 17))
    assert list(params["n3_svga"]) == [0, 1, 2, 3, 4]
    assert list(params["n4_ir"]) == [0, 1, 2]
    assert list(params["c1"]) == [32, 42, 48, 64]
    assert list(params["c2"]) == [64, 84, 96, 128]
    assert list(params["c3"]) == list(range(128, 321, 8))
    assert list(params["c4"]) == list(range(192, 513, 16))
    assert all(list(params[f"e{s}"]) == [2, 3, 4, 6] for s in range(1, 5))
    assert (list(params["k3"]), list(params["k4"])) == ([2, 3, 4], [1, 2, 3])
    assert (list(params["ffn_ratio"]), list(params["emb"])) == ([2, 3, 4], [512, 768, 1024])
    assert list(params["n1"]) == list(params["n2"]) == list(params["n4_svga"]) == [1, 2, 3, 4, 5, 6]


def test_reference_id_strings_round_trip() -> None:
    assert SPACE.to_string(REFS["mobilevig-ti"]) == TI_STRING
    assert (
        SPACE.to_string(REFS["mobilevig-b"]) == "vig_c42-84-240-464_d5-5-15+0-0+5_e4444_k02_f4_E768"
    )
    for arch in REFS.values():
        text = SPACE.to_string(arch)
        assert SPACE.from_string(text) == arch
        assert MobileViGArch.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch
        cfg = arch.model_cfg()
        assert MobileViGModelCfg.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert SPACE.resolve("MobileViG-Ti") == REFS["mobilevig-ti"]


def test_unused_hop_is_canonicalised() -> None:
    params = {name: choices[0] for name, choices in SPACE.search_parameters().items()}
    a = SPACE.from_params({**params, "k3": 2})
    b = SPACE.from_params({**params, "k3": 4})
    assert a == b and a.k3 == 0
    assert SPACE.canonicalize(TI_STRING.replace("k02", "k32")) == TI_STRING
    assert SPACE.from_params({**params, "n3_svga": 1, "k3": 4}).k3 == 4


def test_stage_block_configs() -> None:
    arch = replace(REFS["mobilevig-s"], n3_svga=2, k3=3, n4_ir=1, e4=6)
    stages = arch.stages()
    assert stages[0] == (MobileViGBlockCfg("ir", d=3, c=42, expansion=4),)
    assert stages[2] == (
        MobileViGBlockCfg("ir", d=9, c=176, expansion=4),
        MobileViGBlockCfg("svga", d=2, c=176, k=3, ffn_ratio=4),
    )
    assert stages[3][0] == MobileViGBlockCfg("ir", d=1, c=256, expansion=6)


def test_hardware_embedding_archs() -> None:
    archs = SPACE.hardware_embedding_archs()
    assert archs[:4] == [
        REFS[n] for n in ("mobilevig-ti", "mobilevig-s", "mobilevig-m", "mobilevig-b")
    ]
    assert SPACE.to_string(archs[4]) == "vig_c32-64-128-192_d1-1-2+0-0+1_e2222_k01_f2_E512"
    assert SPACE.to_string(archs[5]) == "vig_c64-128-320-512_d6-6-16+4-2+6_e6666_k43_f4_E1024"
    assert (archs[6].k4, archs[7].k4) == (1, 3)
    assert (archs[8].n3_svga, archs[8].k3) == (2, 2)
    assert (archs[9].e1, archs[9].e2, archs[9].e3, archs[9].e4) == (2, 2, 2, 2)


# ---------------------------------------------------------------------------- encoding
def test_encoding_of_ti() -> None:
    ti = REFS["mobilevig-ti"]
    vec = SPACE.encode(ti)
    assert vec.shape == (27,)
    stages = [
        [2 / 16, 0, 42 / 512, 4 / 6, 0],
        [2 / 16, 0, 84 / 512, 4 / 6, 0],
        [6 / 16, 0, 168 / 512, 4 / 6, 0],
        [0, 2 / 6, 256 / 512, 4 / 6, 2 / 4],
    ]
    expected = [v for s in stages for v in s] + [1.0, 0.5, 1.0, 0.0]
    np.testing.assert_allclose(vec[:24], expected)
    prof = SPACE.profile(ti)
    np.testing.assert_allclose(
        vec[24:], [math.log10(prof.params), math.log10(prof.macs), math.log10(prof.memory_bytes)]
    )


def test_encoding_uses_the_repaired_hop_and_workload() -> None:
    ti = REFS["mobilevig-ti"]
    vec = SPACE.encode(ti, Workload(batch_size=4, resolution=64))
    assert vec[19] == pytest.approx(1 / 4)  # K = 2 on a 2x2 map is repaired to 1
    assert vec[22:24] == pytest.approx([64 / 224, 2 / 8])


# ---------------------------------------------------------------------------- error paths
@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("", "empty"),
        ("vit_c42-84-168-256", "'vit'"),
        ("vig_c42-84-168_d2-2-6+0-0+2", "'c42-84-168'"),
        (TI_STRING.replace("d2-2-6+0-0+2", "d2-2-6-0+2"), "'d2-2-6-0+2'"),
        (TI_STRING.replace("e4444", "e444"), "'e444'"),
        (TI_STRING.replace("k02", "k2"), "'k2'"),
        (TI_STRING.replace("f4", "fx"), "'fx'"),
        (TI_STRING + "-zzz", "'E512-zzz'"),
        (TI_STRING + "_x1", "'x1'"),
        ("vig_c42-84-168-256_d2-2-6+0-0+2", "'e{e1}{e2}{e3}{e4}'"),
        (TI_STRING.replace("c42-", "c1000-"), "`c1`"),
        (TI_STRING.replace("+0-0+2", "+1-0+2").replace("k02", "k52"), "'k52'"),
        (TI_STRING.replace("E512", "E4096"), "`emb`"),
    ],
)
def test_from_string_names_the_bad_token(text: str, token: str) -> None:
    with pytest.raises(InvalidArchError, match=token.replace("+", r"\+").replace("{", r"\{")):
        SPACE.from_string(text)


def test_from_params_errors() -> None:
    params = {name: choices[0] for name, choices in SPACE.search_parameters().items()}
    with pytest.raises(InvalidArchError, match="`n1`"):
        SPACE.from_params({k: v for k, v in params.items() if k != "n1"})
    with pytest.raises(InvalidArchError, match="foo"):
        SPACE.from_params({**params, "foo": 1})
    with pytest.raises(InvalidArchError, match="`c3`"):
        SPACE.from_params({**params, "c3": 130})
    with pytest.raises(InvalidArchError, match="`n1`"):
        SPACE.from_params({**params, "n1": True})


def test_arch_and_config_errors() -> None:
    fields = REFS["mobilevig-ti"].to_dict()
    with pytest.raises(InvalidArchError, match="`c1`"):
        MobileViGArch.from_dict({**fields, "c1": 42.0})
    with pytest.raises(InvalidArchError, match="`n4_svga`"):
        MobileViGArch.from_dict({**fields, "n4_svga": 0})
    with pytest.raises(InvalidArchError, match="bogus"):
        MobileViGArch.from_dict({**fields, "bogus": 1})
    with pytest.raises(InvalidArchError, match="emb"):
        MobileViGArch.from_dict({k: v for k, v in fields.items() if k != "emb"})
    with pytest.raises(InvalidArchError, match="`type`"):
        MobileViGBlockCfg("", d=1, c=8)
    with pytest.raises(InvalidArchError, match="`d`"):
        MobileViGBlockCfg("ir", d=-1, c=8)
    with pytest.raises(InvalidArchError, match="width"):
        MobileViGBlockCfg.from_dict({"type": "ir", "d": 1, "c": 8, "width": 2})
    ir = MobileViGBlockCfg("ir", d=1, c=8)
    with pytest.raises(InvalidArchError, match="equal length"):
        MobileViGModelCfg(channels=(8, 16), stages=((ir,),), emb=32)
    with pytest.raises(InvalidArchError, match="stage 2"):
        MobileViGModelCfg(channels=(8, 16), stages=((ir,), (ir,)), emb=32)
    with pytest.raises(InvalidArchError, match="stages"):
        MobileViGModelCfg.from_dict({"channels": [8], "emb": 32})
    with pytest.raises(InvalidArchError, match="extra"):
        MobileViGModelCfg.from_dict({"channels": [8], "stages": [[]], "emb": 32, "extra": 1})
    with pytest.raises(InvalidArchError, match="`distillation`"):
        MobileViGModelCfg(channels=(8,), stages=((ir,),), emb=32, distillation=1)  # type: ignore[arg-type]


def test_registry_and_builder_errors() -> None:
    with pytest.raises(InvalidArchError, match="'nope'"):
        get_block("nope")
    bad = MobileViGModelCfg(channels=(8,), stages=((MobileViGBlockCfg("nope", 1, 8),),), emb=16)
    with pytest.raises(InvalidArchError, match="'nope'"):
        build_mobilevig(bad)
    with pytest.raises(ValueError, match="already registered"):
        register_block("ir", lambda cfg: nn.Identity(), lambda cfg, hw, tally: None)
    with pytest.raises(ValueError, match="`name`"):
        register_block("", lambda cfg: nn.Identity(), lambda cfg, hw, tally: None)
    with pytest.raises(ValueError, match="`dropout`"):
        MobileViG(REFS["mobilevig-ti"].model_cfg(), dropout=1.5)
    with pytest.raises(ValueError, match="`resolution`"):
        MobileViGSpace(resolution=16)
