"""Tests of the dispatch trace and the roofline estimator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hwdb.catalog import get_entry, load_catalog
from predictors.zeroshot import (
    DeviceModel,
    OpTable,
    device_model,
    estimate_latency_ms,
    op_table,
    op_tables,
    roofline_latency_ms,
    trace_module,
)

UNIT = DeviceModel("unit", 1e9, 1e9, 1.0, 4.0, 1.0, 1e9, 1.0, 0.0, 0.0)


class _Small(nn.Module):
    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn(self.conv(x)))
        return self.fc(torch.flatten(y, 1))  # type: ignore[no-any-return]


def test_trace_matches_hand_counts() -> None:
    recs = trace_module(_Small(), (torch.randn(1, 3, 4, 4),))
    assert [r.op for r in recs] == ["convolution", "addmm"]  # BN folded, ReLU fused
    conv, fc = recs
    assert conv.flops == 2 * 8 * 3 * 9 * 16 + 8 * 16  # MACs x 2 + fused ReLU
    assert conv.act_elems == 3 * 16 + 8 * 16
    assert conv.weight_elems == 8 * 3 * 9
    assert fc.flops == 2 * 128 * 10
    assert fc.act_elems == 128 + 10
    assert fc.weight_elems == 128 * 10 + 10
    raw = trace_module(_Small(), (torch.randn(1, 3, 4, 4),), mode="eager")
    assert [r.op for r in raw] == ["convolution", "native_batch_norm", "relu", "addmm"]
    pruned = trace_module(_Small(), (torch.randn(1, 3, 4, 4),), mode="pruned")
    assert [r.op for r in pruned] == [r.op for r in raw]  # nothing dead, nothing fused
    with pytest.raises(ValueError, match="`mode`: unknown mode 'fused'"):
        trace_module(_Small(), (torch.randn(1, 3, 4, 4),), mode="fused")


def test_pruned_mode_drops_dead_ops_and_fuses_nothing() -> None:
    """NAS-Bench-201: ``none`` edges (``x * 0``) and ops that reach the output only through
    them are gone from the pruned list as from the fused one, but BatchNorm and ReLU stay."""
    arch = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|"
    counts = {m: OpTable.counts(op_table("nasbench201", arch, mode=m)) for m in
              ("graph", "pruned", "eager")}  # fmt: skip
    ops = {m: op_table("nasbench201", arch, mode=m).ops for m in ("graph", "pruned", "eager")}
    assert "mul" in ops["eager"] and "mul" not in ops["pruned"]
    assert counts["pruned"]["conv"] == counts["graph"]["conv"] < counts["eager"]["conv"]
    assert "relu" in ops["pruned"] and "relu" not in ops["graph"]
    assert len(ops["graph"]) < len(ops["pruned"]) < len(ops["eager"])
    with pytest.raises(ValueError, match="`mode`: unknown mode 'fused'"):
        op_table("nasbench201", arch, mode="fused")
    with pytest.raises(ValueError, match="`modes`: unknown mode 'fused'"):
        op_tables("nasbench201", arch, modes=("graph", "fused"))


def test_estimate_is_the_roofline_sum() -> None:
    table = OpTable.from_records(trace_module(_Small(), (torch.randn(1, 3, 4, 4),)))
    conv_t = max((6912 + 128) / 1e9, 4 * (176 + 216) / 1e9)
    fc_t = max(2560 / 1e9, 4 * (138 + 1290) / 1e9)
    assert estimate_latency_ms(table, UNIT) == pytest.approx((conv_t + fc_t) * 1e3)
    slow = DeviceModel("o", 1e9, 1e9, 1.0, 4.0, 1.0, 1e9, 1.0, 1e-3, 2e-3)
    assert estimate_latency_ms(table, slow) == pytest.approx((conv_t + fc_t) * 1e3 + 2 + 2)


def test_bigger_model_is_not_faster() -> None:
    x = (torch.randn(1, 3, 4, 4),)
    small = OpTable.from_records(trace_module(_Small(4), x))
    big = OpTable.from_records(trace_module(_Small(32), x))
    for entry in load_catalog():
        dm = device_model(entry)
        assert estimate_latency_ms(big, dm) >= estimate_latency_ms(small, dm)


def test_nasbench201_zero_ops_are_folded_and_convs_cost_more() -> None:
    pruned = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
    full = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"  # noqa: E501
    a, b = op_table("nasbench201", pruned), op_table("nasbench201", full)
    # stem + 15 cell convs + 3 convs per reduction block; 1 add per reduction block
    assert a.counts()["conv"] == 22 and a.counts()["eltwise"] == 2
    assert b.counts()["conv"] == 97
    dm = device_model(get_entry("jetson-nano"))
    lat = roofline_latency_ms("nasbench201", [pruned, full], dm)
    assert np.all(np.isfinite(lat)) and lat[1] > lat[0] > 0


def test_device_model_checks() -> None:
    with pytest.raises(ValueError, match="peak_flops"):
        DeviceModel("x", 0.0, 1e9, 1.0, 4.0, 0.5, 1e9, 0.5, 0.0, 0.0)
    with pytest.raises(ValueError, match="compute_eff"):
        DeviceModel("x", 1e9, 1e9, 1.0, 4.0, 1.5, 1e9, 0.5, 0.0, 0.0)
    with pytest.raises(ValueError, match="precision"):
        device_model(get_entry("h100"), precision="fp8")
    with pytest.raises(ValueError, match="device_class"):
        device_model(get_entry("h100"), device_class="quantum")
    fp16 = device_model(get_entry("h100"), precision="fp16")
    assert (
        fp16.bytes_per_element == 2.0
        and fp16.peak_flops > device_model(get_entry("h100")).peak_flops
    )


def test_large_model_that_fails_on_meta_is_not_built_for_real(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CPU fallback of a failed meta-device trace would allocate every weight: beyond
    500M parameters it raises a clear error instead (one random language model of 1.7B
    parameters once took the machine's 24 GB)."""
    from types import SimpleNamespace

    from predictors import PredictorError
    from predictors.zeroshot._roofline import _trace
    from search_spaces import get_space

    space = get_space("nasbench201")
    arch = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|nor_conv_1x1~2|"
    built: list[str] = []

    def build(parsed: object) -> object:
        if torch.empty(0).device.type == "meta":
            raise NotImplementedError("no meta kernel")
        built.append("cpu")
        raise AssertionError("must not build on the CPU")

    monkeypatch.setattr(space, "build", build)
    monkeypatch.setattr(space, "profile", lambda parsed: SimpleNamespace(params=1_700_000_000))
    with pytest.raises(PredictorError, match="1.7B parameters"):
        _trace(space, arch, space.default_workload())
    assert built == []


def test_runtime_picks_the_traced_graph() -> None:
    """Eager PyTorch runs every traced op (NAS-Bench-201's ``none`` edges multiply by zero,
    dead edges run); a fusing graph runtime runs the fused graph, TensorFlow the pruned one;
    an unknown runtime gets the mean of the eager and pruned estimates."""
    from predictors.zeroshot import runtime_mode

    names = ("torch", "unknown", None, "tflite", "onnxruntime", "TensorFlow", "tensorrt")
    assert [runtime_mode(r) for r in names] == [
        "eager", "unknown", "unknown", "graph", "graph", "pruned", "graph",
    ]  # fmt: skip
    entry = get_entry("gtx-1080-ti")
    arch = "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"
    eager_ops = len(op_table("nasbench201", arch, mode="eager"))
    graph_ops = len(op_table("nasbench201", arch))
    assert eager_ops > graph_ops
    est = {
        r: roofline_latency_ms("nasbench201", [arch], device_model(entry, runtime=r))[0]
        for r in ("torch", "tensorrt", "tensorflow", "unknown")
    }
    assert est["torch"] > est["tensorflow"] > est["tensorrt"]
    assert est["unknown"] == pytest.approx((est["torch"] + est["tensorflow"]) / 2)
    with pytest.raises(ValueError, match="runtime"):
        DeviceModel("x", 1e9, 1e9, 1.0, 4.0, 0.5, 1e9, 0.5, 0.0, 0.0, runtime="jit")


def test_unknown_runtime_traces_each_arch_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables of an unknown-runtime estimate come from one forward pass."""
    from collections import OrderedDict

    from predictors.zeroshot import _roofline

    calls: list[tuple[str, ...]] = []
    real = _roofline.trace_module_modes

    def counting(module: object, inputs: object, modes: tuple[str, ...]) -> object:
        calls.append(tuple(modes))
        return real(module, inputs, modes)  # type: ignore[arg-type]

    monkeypatch.setattr(_roofline, "_TABLES", OrderedDict())
    monkeypatch.setattr(_roofline, "trace_module_modes", counting)
    arch = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|nor_conv_3x3~1|none~2|"
    dm = device_model(get_entry("jetson-nano"), runtime="unknown")
    first = roofline_latency_ms("nasbench201", [arch], dm)
    again = roofline_latency_ms("nasbench201", [arch], dm)
    assert calls == [("eager", "pruned")] and first[0] == again[0]


@pytest.mark.parametrize("space", ["mnasnet", "nasbench201", "mobilevig"])
def test_memoised_meta_calls_give_the_plain_trace(
    space: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Meta kernels are memoised by input metadata and the module is built without weight
    initialisation: the records of every mode must equal a plain trace's, including a second
    trace that hits the memo."""
    from predictors.zeroshot import _trace
    from search_spaces import get_space

    sp = get_space(space)
    rng = np.random.default_rng(3)
    archs = [sp.random(rng) for _ in range(2)]
    inputs = [t.to("meta") for t in sp.example_inputs(sp.default_workload())]

    def trace(arch: object, meta: object) -> list[list[object]]:
        with torch.no_grad(), meta:  # type: ignore[attr-defined]
            module = sp.build(arch)
        return _trace.trace_module_modes(module, inputs, _trace.TRACE_MODES)  # type: ignore[return-value]

    fast = [trace(a, _trace.meta_device()) for a in archs + archs]
    monkeypatch.setattr(_trace, "_meta_call", lambda f, a, k: f(*a, **k))
    plain = [trace(a, torch.device("meta")) for a in archs]
    assert fast == plain + plain


def test_meta_device_skips_initialisation_of_meta_tensors_only() -> None:
    from predictors.zeroshot._trace import meta_device

    with meta_device():
        conv = nn.Conv2d(3, 4, 3)
        nn.init.normal_(conv.weight, 0.0, 1.0)
        real = torch.zeros(3, device="cpu")
        real.add_(1.0)
        nn.init.normal_(tensor=torch.zeros(4, device="cpu"))
    assert conv.weight.is_meta and conv.weight.shape == (4, 3, 3, 3)
    assert real.tolist() == [1.0, 1.0, 1.0]  # in-place ops on real tensors still run
