"""Tests of the NAS-Bench-201 space: strings, network, HELP op graph, benchmark index."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from search_spaces import InvalidArchError, SearchSpaceError, Workload, get_space
from search_spaces._nb201_graph import HELP_OP_TYPES
from search_spaces.nasbench201 import NASBench201Space, NB201Arch, NB201IndexTable

RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"
ALL_CONV3 = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
HELP_DIR = Path("help/data/nasbench201")


@pytest.fixture(scope="module")
def space() -> NASBench201Space:
    sp = get_space("nasbench201")
    assert isinstance(sp, NASBench201Space)
    return sp


# ----------------------------------------------------------------- strings
def test_parse_gives_edges_in_arch_string_order(space: NASBench201Space) -> None:
    arch = space.from_string(RESNET)
    assert arch.ops == ("nor_conv_3x3", "none", "nor_conv_3x3", "skip_connect", "none", "none")
    assert arch.op_codes == (3, 0, 3, 1, 0, 0)
    assert space.to_string(arch) == RESNET
    assert space.canonicalize(f"  {RESNET}\n") == RESNET


def test_op_codes_round_trip(space: NASBench201Space) -> None:
    assert space.to_string(space.from_op_codes((3, 0, 3, 1, 0, 0))) == RESNET
    assert space.from_op_codes(np.array([3, 0, 3, 1, 0, 0])) == space.from_string(RESNET)
    for codes in [(0, 0, 0, 0, 0, 0), (4, 3, 2, 1, 0, 4)]:
        assert space.from_op_codes(codes).op_codes == codes


@pytest.mark.parametrize(
    ("codes", "token"),
    [
        ((3, 0, 3, 1, 0), "6 integers"),
        ((3, 0, 3, 1, 0, 5), "5"),
        ((3, 0, 3, 1, 0, -1), "-1"),
        ((3, 0, 3, 1, 0, 1.5), "1.5"),
        ((3, 0, 3, 1, 0, True), "True"),
        ("303100", "6 integers"),
    ],
)
def test_op_codes_errors_name_the_code(space: NASBench201Space, codes: object, token: str) -> None:
    with pytest.raises(InvalidArchError, match=token):
        space.from_op_codes(codes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("", "3 '\\+'-separated"),
        ("|nor_conv_3x3~0|", "got 1"),
        (RESNET + "+|none~0|", "got 4"),
        (RESNET.replace("|none~0|nor_conv", "|conv_3x3~0|nor_conv"), "'conv_3x3'"),
        (RESNET.replace("none~1", "none~2"), "'none~2'"),
        (RESNET.replace("none~1", "none-1"), "'none-1'"),
        (RESNET[1:], "'nor_conv_3x3~0\\|'"),
        (RESNET.replace("|skip_connect~0|none~1|", "|skip_connect~0|"), "must list 3"),
        (RESNET + "-zzz", "'\\|skip_connect~0\\|none~1\\|none~2\\|-zzz'"),
        (RESNET.replace("none~2", "NONE~2"), "'NONE'"),
    ],
)
def test_from_string_errors_name_the_token(space: NASBench201Space, text: str, token: str) -> None:
    with pytest.raises(InvalidArchError, match=token):
        space.from_string(text)


def test_canonicalize_rejects_non_strings(space: NASBench201Space) -> None:
    with pytest.raises(InvalidArchError):
        space.canonicalize("   ")
    with pytest.raises(InvalidArchError, match="str"):
        space.from_string(3)  # type: ignore[arg-type]


def test_arch_value_checks_and_dict_round_trip() -> None:
    arch = NB201Arch(
        ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none")
    )
    assert NB201Arch.from_dict(arch.to_dict()) == arch
    assert hash(arch) == hash(NB201Arch.from_dict(arch.to_dict()))
    with pytest.raises(InvalidArchError, match="'max_pool_3x3' on edge_1_2"):
        NB201Arch(("none", "none", "max_pool_3x3", "none", "none", "none"))
    with pytest.raises(InvalidArchError, match="tuple of 6"):
        NB201Arch(("none",) * 5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArchError, match="exactly 'ops'"):
        NB201Arch.from_dict({"ops": list(arch.ops), "extra": 1})
    with pytest.raises(InvalidArchError, match="6 edge operations"):
        NB201Arch.from_dict({"ops": "none"})


def test_from_params_names_missing_and_bad_values(space: NASBench201Space) -> None:
    params = dict.fromkeys(space.search_parameters(), "none")
    assert space.from_params(params) == space.from_op_codes((0,) * 6)
    del params["edge_1_3"]
    with pytest.raises(InvalidArchError, match="edge_1_3"):
        space.from_params(params)
    params["edge_1_3"] = "conv"
    with pytest.raises(InvalidArchError, match="'conv' on edge_1_3"):
        space.from_params(params)
    assert list(space.search_parameters()) == [
        "edge_0_1", "edge_0_2", "edge_1_2", "edge_0_3", "edge_1_3", "edge_2_3",
    ]  # fmt: skip


def test_wrong_arch_type_is_rejected(space: NASBench201Space) -> None:
    with pytest.raises(InvalidArchError, match="NB201Arch"):
        space.to_string(RESNET)  # type: ignore[arg-type]


# ----------------------------------------------------------------- network and costs
def test_constructor_and_workload_checks() -> None:
    with pytest.raises(ValueError, match="`channels`"):
        NASBench201Space(channels=0)
    with pytest.raises(ValueError, match="`num_classes`"):
        NASBench201Space(num_classes=True)
    sp = NASBench201Space()
    with pytest.raises(ValueError, match="multiple of 4"):
        sp.example_inputs(Workload(resolution=30))
    with pytest.raises(ValueError, match="`workload`"):
        sp.profile(sp.random(0), {"resolution": 32})  # type: ignore[arg-type]


def test_published_cost_of_largest_and_smallest_cell() -> None:
    """NAS-Bench-201 API cost info on CIFAR-10 (``get_cost_info``; tabulated e.g. in EvoXBench):
    the all-3x3 cell has 1.531546 M params and 220.11969 M FLOPs (multiply-adds), the
    conv-free minimum 0.073306 M params and 7.78305 M FLOPs; CIFAR-100 max 1.537396 M params.
    NAS-Bench-201's counter also adds the 10 classifier biases to FLOPs, hence ``abs=10``.
    """
    sp = NASBench201Space()
    big = sp.profile(sp.from_string(ALL_CONV3))
    assert big.params == 1_531_546
    assert big.macs == pytest.approx(220.11969e6, abs=10)
    assert big.flops == 2 * big.macs
    small = sp.profile(sp.from_op_codes((1, 0, 4, 1, 0, 0)))
    assert small.params == 73_306
    assert small.macs == pytest.approx(7.78305e6, abs=10)
    assert NASBench201Space(num_classes=100).profile(sp.from_string(ALL_CONV3)).params == 1_537_396


def test_built_model_matches_meta_profile_and_runs(space: NASBench201Space) -> None:
    arch = space.from_string(RESNET)
    model = space.build(arch).eval()
    assert sum(p.numel() for p in model.parameters()) == space.profile(arch).params
    with torch.inference_mode():
        out = model(*space.example_inputs(Workload(batch_size=2, resolution=32)))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    assert space.profile(arch) is space.profile(arch)  # cached


def test_none_edges_cut_the_input_off(space: NASBench201Space) -> None:
    """A cell whose output does not depend on its input gives input-independent logits."""
    arch = space.from_op_codes((3, 3, 3, 0, 0, 0))
    model = space.build(arch).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        out = model(x)
    torch.testing.assert_close(out[0], out[1])


# ----------------------------------------------------------------- HELP op graph
def test_op_graph_structure(space: NASBench201Space) -> None:
    adj, feats = space.op_graph(space.from_string(RESNET))
    assert adj.shape == (9, 9) and feats.shape == (9, 8)
    assert adj.dtype == np.float32 and feats.dtype == np.float32
    assert np.all(np.diag(adj) == 1)
    assert np.all(adj[8] == 1)  # the global node reads every node
    assert np.all(adj[:8, 8] == 0)
    np.testing.assert_array_equal(feats.sum(axis=1), np.ones(9))
    names = [HELP_OP_TYPES[i] for i in feats.argmax(axis=1)]
    assert names == ["input", "nor_conv_3x3", "none", "nor_conv_3x3", "skip_connect", "none",
                     "none", "output", "global"]  # fmt: skip
    # edge (1->2) = node 3 reads edge (0->1) = node 1; output node 7 reads nodes 4, 5, 6
    assert adj[3, 1] == 1 and adj[1, 3] == 0
    assert {int(i) for i in np.flatnonzero(adj[7, :7])} == {4, 5, 6}
    # node 4 (0->3) reads only the input
    assert {int(i) for i in np.flatnonzero(adj[4, :8])} == {0, 4}


def test_encode_layout(space: NASBench201Space) -> None:
    arch = space.from_string(RESNET)
    adj, feats = space.op_graph(arch)
    vec = space.encode(arch)
    assert vec.shape == (81 + 72 + 2 + 3,) == (space.encoding_length,)
    np.testing.assert_array_equal(vec[:81], adj.ravel())
    np.testing.assert_array_equal(vec[81:153], feats.ravel())
    np.testing.assert_allclose(vec[153:155], [0.0, 5.0])
    prof = space.profile(arch)
    np.testing.assert_allclose(vec[155], np.log10(prof.params), rtol=1e-6)
    other = space.encode(arch, Workload(batch_size=4, resolution=64))
    np.testing.assert_allclose(other[153:155], [2.0, 6.0])
    assert other[156] > vec[156]  # more MACs


# ----------------------------------------------------------------- shared data
def test_every_help_arch_string_is_canonical(space: NASBench201Space, shared_data: Path) -> None:
    mapping = torch.load(shared_data / HELP_DIR / "str_arch2idx.pt", weights_only=True)
    assert len(mapping) == 15625
    for text in mapping:
        assert space.canonicalize(text) == text


def test_index_table_matches_nats_csv_and_is_not_a_product_order(
    space: NASBench201Space, shared_data: Path
) -> None:
    table = space.index_table(str(shared_data / HELP_DIR / "str_arch2idx.pt"))
    csv_table = NB201IndexTable.from_file(
        shared_data / "nb201-accuracy" / "nats_bench.csv", space.canonicalize
    )
    rows = list(csv.DictReader((shared_data / "nb201-accuracy" / "nats_bench.csv").open()))
    for i, row in enumerate(rows):
        assert table.arch(i) == csv_table.arch(i) == row["ArchitectureString"]
    arch = space.from_index(6111, table)
    assert space.benchmark_index(arch, table) == 6111
    assert arch == space.reference_archs()["best-cifar10"]
    assert space.to_string(space.from_index(1462, table)) == ALL_CONV3
    help_idx = torch.load(shared_data / HELP_DIR / "hardware_embedding_index.pt", weights_only=True)
    assert [space.benchmark_index(a, table) for a in space.hardware_embedding_archs()] == help_idx
    # The official order is not the (row-major) product order over the 6 edges.
    product = [
        space.to_string(space.from_op_codes(np.unravel_index(i, (5,) * 6))) for i in range(5)
    ]
    assert product != [table.arch(i) for i in range(5)]


def test_latbench_keys_agree_with_arch_strings(space: NASBench201Space, shared_data: Path) -> None:
    path = shared_data / "latbench" / "latbench_nb201_ms.csv"
    with path.open() as fh:
        for row in csv.DictReader(fh):
            # the CSV writes the 6 op codes as one integer, so leading "none" (0) codes vanish
            codes = tuple(int(c) for c in row["arch_vector"].zfill(6))
            assert space.to_string(space.from_op_codes(codes)) == row["arch_str"]


def test_index_table_errors(space: NASBench201Space, tmp_path: Path) -> None:
    with pytest.raises(SearchSpaceError, match="not found"):
        space.index_table(str(tmp_path / "missing.pt"))
    with pytest.raises(SearchSpaceError, match="15625"):
        NB201IndexTable({RESNET: 0}, space.canonicalize)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("a,b\n1,2\n")
    with pytest.raises(SearchSpaceError, match="ArchitectureString"):
        NB201IndexTable.from_file(bad_csv, space.canonicalize)
    with pytest.raises(SearchSpaceError, match="no NAS-Bench-201 index file"):
        NB201IndexTable.from_shared_data(space.canonicalize, tmp_path)


def test_index_lookup_errors(space: NASBench201Space, shared_data: Path) -> None:
    table = NB201IndexTable.from_shared_data(space.canonicalize, shared_data)
    with pytest.raises(ValueError, match="`index`"):
        table.arch(15625)
    with pytest.raises(ValueError, match="`index`"):
        table.arch(-1)
    with pytest.raises(InvalidArchError, match="not a NAS-Bench-201"):
        table.index("|none~0|")


def test_help_gcn_checkpoint_ranks_latency_zero_shot(
    space: NASBench201Space, shared_data: Path
) -> None:
    """HELP's released GCN, fed our op graphs without any adaptation, ranks real latencies.

    An untransposed adjacency or a moved conv column gives a correlation near 0 or negative
    (checked while writing this); ours gives ~0.8-0.9. It does not pin down the order of the
    cheap op columns (see ``search_spaces._nb201_graph``).
    """
    ckpt = torch.load(
        shared_data / HELP_DIR / "checkpoint" / "help_max_corr.pt",
        weights_only=True,
        map_location="cpu",
    )["model"]
    w = {k.removeprefix("meta_learner."): v for k, v in ckpt.items()}
    table = NB201IndexTable.from_shared_data(space.canonicalize, shared_data)
    idx = np.random.default_rng(0).choice(15625, 800, replace=False)
    graphs = [space.op_graph(space.from_index(int(i), table)) for i in idx]
    adj = torch.from_numpy(np.stack([a for a, _ in graphs]))
    out = torch.from_numpy(np.stack([f for _, f in graphs]))
    for layer in range(1, 5):
        out = torch.relu(torch.bmm(adj, out @ w[f"gc{layer}.weight"]) + w[f"gc{layer}.bias"])
    lat = torch.tensor(torch.load(shared_data / HELP_DIR / "latency" / "gold_6226.pt"))
    emb = lat[torch.load(shared_data / HELP_DIR / "hardware_embedding_index.pt")].float()
    emb = ((emb - emb.min()) / (emb.max() - emb.min())).expand(len(idx), -1)
    hw = torch.relu(torch.nn.functional.linear(emb, w["fc_hw1.weight"], w["fc_hw1.bias"]))
    hw = torch.relu(torch.nn.functional.linear(hw, w["fc_hw2.weight"], w["fc_hw2.bias"]))
    h = torch.cat([out[:, -1, :], hw], dim=-1)
    for name in ("fc3", "fc4"):
        h = torch.relu(torch.nn.functional.linear(h, w[f"{name}.weight"], w[f"{name}.bias"]))
    pred = torch.nn.functional.linear(h, w["fc5.weight"], w["fc5.bias"]).squeeze(1)
    ranks_pred = pred.argsort().argsort().double()
    ranks_true = lat[idx].argsort().argsort().double()
    spearman = torch.corrcoef(torch.stack([ranks_pred, ranks_true]))[0, 1].item()
    assert spearman > 0.7


def test_prune_params_drops_dead_edges_and_keeps_the_function() -> None:
    """Edges into a node that feeds nothing become ``none``; the pruned network computes
    exactly what the original does (given the same live weights)."""
    import torch

    from search_spaces import get_space
    from search_spaces._nb201_arch import EDGE_NAMES

    sp = get_space("nasbench201")
    arch = sp.from_string(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    )
    params = dict(zip(EDGE_NAMES, arch.ops, strict=True))
    pruned = sp.prune_params(params)
    assert [pruned[n] for n in EDGE_NAMES] == [
        "nor_conv_3x3", "none", "none", "skip_connect", "nor_conv_3x3", "none",
    ]  # fmt: skip
    live = sp.from_string("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    assert sp.from_params(pruned) == live
    assert sp.prune_params(dict(zip(EDGE_NAMES, live.ops, strict=True))) == pruned
    torch.manual_seed(0)
    full, small = sp.build(arch).eval(), sp.build(live).eval()
    missing = small.load_state_dict(full.state_dict(), strict=False)
    assert not missing.missing_keys  # every weight of the pruned net exists in the original
    x = sp.example_inputs(sp.smoke_workload())
    with torch.inference_mode():
        torch.testing.assert_close(small(*x), full(*x))
