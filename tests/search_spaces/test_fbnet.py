"""Tests of the FBNet space (HW-NAS-Bench CIFAR-100 setting) and HELP's FBNet encoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from search_spaces import InvalidArchError, Workload, get_space
from search_spaces.fbnet import BLOCKS, FBNetArch, FBNetSpace, help_encoding

HELP_DIR = Path("help/data/fbnet")


@pytest.fixture(scope="module")
def space() -> FBNetSpace:
    sp = get_space("fbnet")
    assert isinstance(sp, FBNetSpace)
    return sp


def _arch(*blocks: str) -> FBNetArch:
    return FBNetArch(tuple(blocks) + ("k3_e1",) * (22 - len(blocks)))


# ----------------------------------------------------------------- strings
def test_string_is_blocks_joined_by_dash(space: FBNetSpace) -> None:
    arch = _arch("k5_e1_g2", "skip", "k3_e6")
    text = space.to_string(arch)
    assert text.split("-")[:3] == ["k5_e1_g2", "skip", "k3_e6"]
    assert len(text.split("-")) == 22
    assert space.from_string(text) == arch
    assert space.canonicalize(f" {text} ") == text
    assert list(space.search_parameters()) == [f"layer_{i:02d}" for i in range(22)]


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("", "'' at position 0"),
        ("-".join(["k3_e1"] * 21), "got 21"),
        ("-".join(["k3_e1"] * 23), "got 23"),
        ("-".join(["k3_e1"] * 5 + ["k7_e6"] + ["k3_e1"] * 16), "'k7_e6' at position 5"),
        ("-".join(["k3_e1"] * 21 + ["k5_e1_g2-zzz"]), "'zzz' at position 22"),
        ("_".join(["k3_e1"] * 22), "position 0"),
    ],
)
def test_from_string_errors_name_the_token(space: FBNetSpace, text: str, token: str) -> None:
    with pytest.raises(InvalidArchError, match=token):
        space.from_string(text)


def test_arch_value_checks() -> None:
    arch = _arch("skip", "k5_e6")
    assert FBNetArch.from_dict(arch.to_dict()) == arch
    assert FBNetArch.from_op_indices(arch.op_indices) == arch
    assert arch.op_indices[:3] == (8, 7, 0)
    with pytest.raises(InvalidArchError, match="'k3_e2' on layer_21"):
        FBNetArch(("k3_e1",) * 21 + ("k3_e2",))
    with pytest.raises(InvalidArchError, match="tuple of 22"):
        FBNetArch(("k3_e1",) * 21)
    with pytest.raises(InvalidArchError, match="9 on layer_03"):
        FBNetArch.from_op_indices([0, 0, 0, 9] + [0] * 18)
    with pytest.raises(InvalidArchError, match="1.5 on layer_00"):
        FBNetArch.from_op_indices([1.5] + [0] * 21)  # type: ignore[list-item]
    with pytest.raises(InvalidArchError, match="22 op indices"):
        FBNetArch.from_op_indices([0] * 3)
    with pytest.raises(InvalidArchError, match="'blocks'"):
        FBNetArch.from_dict({"layers": []})


def test_from_params_names_missing_and_bad_values(space: FBNetSpace) -> None:
    params = dict.fromkeys(space.search_parameters(), "k3_e3")
    assert space.from_params(params) == FBNetArch(("k3_e3",) * 22)
    params["layer_07"] = "k9"
    with pytest.raises(InvalidArchError, match="'k9' on layer_07"):
        space.from_params(params)
    del params["layer_07"]
    with pytest.raises(InvalidArchError, match="layer_07"):
        space.from_params(params)
    with pytest.raises(ValueError, match="`num_classes`"):
        FBNetSpace(num_classes=0)


# ----------------------------------------------------------------- network
def test_network_follows_hw_nas_bench_cifar_layout(space: FBNetSpace) -> None:
    arch = FBNetArch(("k3_e6",) * 22)
    model = space.build(arch).eval()
    shapes: list[tuple[int, ...]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: shapes.append(tuple(o.shape)))
             for m in model.layers]  # fmt: skip
    with torch.inference_mode():
        out = model(*space.example_inputs())
    for h in hooks:
        h.remove()
    assert out.shape == (1, 100)
    channels = [s[1] for s in shapes]
    sides = [s[2] for s in shapes]
    assert channels == [16] + [24] * 4 + [32] * 4 + [64] * 4 + [112] * 4 + [184] * 4 + [352]
    assert sides == [32] * 5 + [16] * 4 + [8] * 8 + [4] * 5
    assert model.fc.in_features == 1504
    assert sum(p.numel() for p in model.parameters()) == space.profile(arch).params


def test_costs_order_the_reference_archs(space: FBNetSpace) -> None:
    refs = space.reference_archs()
    macs = {name: space.profile(arch).macs for name, arch in refs.items()}
    assert macs["all-k5_e6"] > macs["all-k3_e6"] > macs["all-k3_e1"] > macs["all-skip"]
    # all-skip: stem, 1x1 projections at channel changes, head, classifier only
    skip_params = space.profile(refs["all-skip"]).params
    expected = (
        3 * 9 * 16
        + 2 * 16  # stem conv + BN
        + sum(
            a * b + 2 * b
            for a, b in [(16, 24), (24, 32), (32, 64), (64, 112), (112, 184), (184, 352)]
        )  # fmt: skip
        + 352 * 1504
        + 2 * 1504  # head conv + BN
        + 1504 * 100
        + 100  # classifier
    )
    assert skip_params == expected


def test_grouped_blocks_shuffle_channels(space: FBNetSpace) -> None:
    plain = space.profile(FBNetArch(("k3_e1",) * 22)).params
    grouped = space.profile(FBNetArch(("k3_e1_g2",) * 22)).params
    assert grouped < plain
    model = space.build(FBNetArch(("k5_e1_g2",) * 22)).eval()
    with torch.inference_mode():
        out = model(*space.example_inputs(Workload(batch_size=2, resolution=32)))
    assert out.shape == (2, 100) and torch.isfinite(out).all()


# ----------------------------------------------------------------- encodings
def test_help_encoding_per_layer_layout(space: FBNetSpace) -> None:
    arch = _arch("skip", "k5_e1_g2", "k3_e6", "k5_e3")
    enc = space.help_encoding(arch).reshape(22, 6)
    np.testing.assert_array_equal(enc[0], np.zeros(6))
    np.testing.assert_array_equal(enc[1], [0, 1, 0, 1, 0, 0])
    np.testing.assert_array_equal(enc[2], [1, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(enc[3], [0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(enc[4], [1, 0, 1, 0, 0, 0])


def test_encode_layout(space: FBNetSpace) -> None:
    arch = _arch("skip", "k5_e6")
    vec = space.encode(arch)
    assert vec.shape == (22 * 9 + 5,) == (space.encoding_length,)
    one_hot = vec[:198].reshape(22, 9)
    assert one_hot[0, 8] == 1 and one_hot[1, 7] == 1 and one_hot.sum() == 22
    np.testing.assert_allclose(vec[198:200], [0.0, 5.0])
    np.testing.assert_allclose(vec[200], np.log10(space.profile(arch).params), rtol=1e-6)


# ----------------------------------------------------------------- shared data
def test_every_help_arch_round_trips(space: FBNetSpace, shared_data: Path) -> None:
    meta = torch.load(shared_data / HELP_DIR / "metainfo.pt", weights_only=True)
    rows = torch.load(shared_data / HELP_DIR / "arch.pt", weights_only=True)
    assert meta["num_classes"] == space.num_classes == 100
    for entry, row in zip(meta["arch"], rows, strict=True):
        text = "-".join(entry["arch_str"])
        arch = space.from_string(text)
        assert space.to_string(arch) == text
        assert list(arch.op_indices) == entry["op_idx_list"] == list(row)
    help_idx = torch.load(shared_data / HELP_DIR / "hardware_embedding_index.pt")
    expected = ["-".join(meta["arch"][i]["arch_str"]) for i in help_idx]
    assert [space.to_string(a) for a in space.hardware_embedding_archs()] == expected


def test_help_mlp_checkpoint_ranks_latency_zero_shot(space: FBNetSpace, shared_data: Path) -> None:
    """HELP's released FBNet MLP (fc1 132->100), fed our 132-dim encoding, ranks latencies."""
    w = torch.load(
        shared_data / HELP_DIR / "checkpoint" / "help_max_corr.pt",
        weights_only=True,
        map_location="cpu",
    )["model"]
    w = {k.removeprefix("meta_learner."): v for k, v in w.items()}
    meta = torch.load(shared_data / HELP_DIR / "metainfo.pt", weights_only=True)["arch"]
    idx = np.random.default_rng(0).choice(len(meta), 800, replace=False)
    x = torch.from_numpy(
        np.stack([help_encoding(FBNetArch(tuple(meta[i]["arch_str"]))) for i in idx])
    )
    lat = torch.tensor(torch.load(shared_data / HELP_DIR / "latency" / "gold_6226.pt"))
    emb = lat[torch.load(shared_data / HELP_DIR / "hardware_embedding_index.pt")].float()
    emb = ((emb - emb.min()) / (emb.max() - emb.min())).expand(len(idx), -1)

    def lin(v: torch.Tensor, name: str) -> torch.Tensor:
        return torch.nn.functional.linear(v, w[f"{name}.weight"], w[f"{name}.bias"])

    h = torch.relu(lin(torch.relu(lin(x, "fc1")), "fc2"))
    hw = torch.relu(lin(torch.relu(lin(emb, "fc_hw1")), "fc_hw2"))
    h = torch.relu(lin(torch.relu(lin(torch.cat([h, hw], -1), "fc3")), "fc4"))
    pred = lin(h, "fc5").squeeze(1)
    ranks = torch.stack([pred.argsort().argsort(), lat[idx].argsort().argsort()]).double()
    assert torch.corrcoef(ranks)[0, 1].item() > 0.5
    assert len(BLOCKS) == 9
