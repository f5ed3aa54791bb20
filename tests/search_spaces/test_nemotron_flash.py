"""Nemotron-Flash space: reference counts, model decode, repair, encoding and errors."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import optuna
import pytest
import torch

from search_spaces import InvalidArchError, get_space
from search_spaces._profiling import count_params
from search_spaces._slm_arch import NemotronFlashArch, infer_stages, parse_arch_string
from search_spaces._slm_model import NemotronFlashLM
from search_spaces.nemotron_flash import NemotronFlashSpace

SPACE = NemotronFlashSpace()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small ops on a shared, busy CPU run far faster without intra-op thread barriers."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


ONE_B = "d2048_r3_n128_mt256:d-f-m2-f-a-f-m2-f-d-f-m2-f-a-f-m2-f-d-f-m2-f-d-f-m2-f"


def _params(**overrides: object) -> dict[str, object]:
    params: dict[str, object] = {
        name: choices[0] for name, choices in SPACE.search_parameters().items()
    }
    params.update(overrides)
    return params


@pytest.mark.parametrize(
    ("name", "expected"), [("nemotron-flash-1b", 0.965e9), ("nemotron-flash-3b", 2.750e9)]
)
def test_reference_param_counts_on_meta_device(name: str, expected: float) -> None:
    arch = SPACE.reference_archs()[name]
    with torch.device("meta"):
        model = SPACE.build(arch)
    counted = count_params(model)
    assert abs(counted - expected) / expected < 0.01
    assert SPACE.profile(arch).params == counted


def test_registered_space_and_reference_ids() -> None:
    space = get_space("nemotron_flash")
    assert isinstance(space, NemotronFlashSpace) and space.vocab_size == 131072
    assert space.to_string(space.resolve("Nemotron-Flash-1B")) == ONE_B
    assert len(space.search_parameters()) == 35
    assert len(space.encode(space.resolve(ONE_B))) == 30


@pytest.mark.parametrize("seed", range(4))
def test_analytic_params_match_module(seed: int) -> None:
    small = SPACE.smoke_variant()
    arch = small.random(seed)
    with torch.device("meta"):
        model = small.build(arch)
    assert small.profile(arch).params == count_params(model)


def test_model_cached_decode_equals_full_forward() -> None:
    torch.manual_seed(0)
    arch = parse_arch_string("d128_r2_n16_mt3:d-f-m2-swa6-f-gdn-a-f")
    model = NemotronFlashLM(arch, vocab_size=97, chunk=4).double().eval()
    tokens = torch.randint(0, 97, (2, 12))
    with torch.no_grad():
        logits, cache = model.prefill(tokens[:, :7])
        torch.testing.assert_close(logits, model(tokens[:, :7]))
        for t in range(7, 12):
            logits, cache = model.decode_step(tokens[:, t], cache)
            torch.testing.assert_close(logits, model(tokens[:, : t + 1]), atol=1e-9, rtol=1e-9)
    assert cache.seen == 3 + 12
    out = model.generate(tokens[:, :4], 3)
    assert out.shape == (2, 3) and out.dtype == torch.long
    with pytest.raises(ValueError, match="`n`"):
        model.generate(tokens, 0)
    with pytest.raises(ValueError, match="`tokens`"):
        model.prefill(tokens[0])


def test_smoke_variant_sample_build_forward() -> None:
    small = SPACE.smoke_variant()
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3)).ask()
    arch = small.sample(trial)
    assert set(trial.params) == set(SPACE.search_parameters())
    model = small.build(arch).eval()
    with torch.inference_mode():
        logits = model(*small.example_inputs(small.smoke_workload()))
    assert logits.shape == (1, 512) and torch.isfinite(logits).all()


def test_repair_rules() -> None:
    arch = SPACE.from_params(_params(st1_repeats=0, st2_repeats=0, st3_repeats=0))
    assert arch.ops == ("a",)
    big = {f"st{t}_{k}": v for t in (1, 2, 3) for k, v in (("slots", 4), ("repeats", 8))}
    big.update({f"st{t}_ffn{j}": 2 for t in (1, 2, 3) for j in (1, 2, 3, 4)})
    arch = SPACE.from_params(_params(**big))
    assert len(arch.ops) == 48  # 4 repeats of 12 in stage 1; stages 2 and 3 cut to 0
    arch = SPACE.from_params(_params(st1_op1="swa", swa_window=2048, mamba_d_state=64))
    assert arch.ops == ("swa2048",) and arch.d_state == 128  # no mamba2: d_state normalised
    arch = SPACE.from_params(_params(st1_op1="mamba2", mamba_d_state=64))
    assert arch.d_state == 64


def test_from_params_errors_name_the_parameter() -> None:
    params = _params()
    del params["st2_op3"]
    with pytest.raises(InvalidArchError, match="st2_op3"):
        SPACE.from_params(params)
    with pytest.raises(InvalidArchError, match="hidden"):
        SPACE.from_params(_params(hidden=100))


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("d2048_r3_n128_mt256:d-f-xx", "xx"),
        ("d2048_r3_n128:d-f", "d2048_r3_n128"),
        ("d2048_r3_n128_mt256:f-d", "'f'"),
        ("d2000_r3_n128_mt256:d", "hidden"),
        ("d2048_r3_n128_mt256:swa0", "swa0"),
        ("d2048_r3_n128_mt256:" + "-".join(["d"] * 49), "49"),
    ],
)
def test_invalid_strings(text: str, token: str) -> None:
    with pytest.raises(InvalidArchError, match=token):
        SPACE.from_string(text)


def test_constructor_and_dict_errors() -> None:
    with pytest.raises(ValueError, match="`vocab_size`"):
        NemotronFlashSpace(vocab_size=1)
    with pytest.raises(ValueError, match="`chunk_size`"):
        NemotronFlashSpace(chunk_size=0)
    with pytest.raises(ValueError, match="`hidden_choices`"):
        NemotronFlashSpace(hidden_choices=(100,))
    arch = SPACE.from_string(ONE_B)
    assert NemotronFlashArch.from_dict(arch.to_dict()) == arch
    with pytest.raises(InvalidArchError, match="keys"):
        NemotronFlashArch.from_dict({"hidden": 512})


def test_stage_inference_and_encoding() -> None:
    refs = SPACE.reference_archs()
    stages = infer_stages(refs["nemotron-flash-1b"])
    assert [(s.slots, s.repeats, s.mean_ffn) for s in stages] == [
        (4, 2, 1.0),
        (2, 2, 1.0),
        (0, 0, 0.0),
    ]
    stages = infer_stages(refs["table2-param-searched-d1024"])
    assert [(s.slots, s.repeats) for s in stages] == [(4, 3), (3, 1), (0, 0)]
    vecs = np.stack([SPACE.encode(a) for a in refs.values()])
    assert vecs.shape == (len(refs), 30) and np.isfinite(vecs).all()
    assert len({v.tobytes() for v in vecs}) == len({SPACE.to_string(a) for a in refs.values()})
    # Sampled and flat-written forms of the same model encode identically.
    same = SPACE.from_params(
        _params(
            st1_op1="deltanet",
            st1_ffn1=1,
            st1_repeats=2,
            st2_op1="deltanet",
            st2_ffn1=1,
            st2_repeats=3,
        )
    )
    assert same.ops == ("d", "f") * 5
    flat = SPACE.from_string(SPACE.to_string(same))
    np.testing.assert_array_equal(SPACE.encode(same), SPACE.encode(flat))


def test_profile_scales_with_context() -> None:
    long = NemotronFlashSpace().default_workload()
    short = NemotronFlashSpace().smoke_workload()
    attn, mamba = SPACE.hardware_embedding_archs()[0], SPACE.hardware_embedding_archs()[1]
    for arch, grows in ((attn, True), (mamba, False)):
        p_long, p_short = SPACE.profile(arch, long), SPACE.profile(arch, short)
        grew = p_long.extra["decode_macs_per_token"] > p_short.extra["decode_macs_per_token"]
        assert grew is grows
        assert (p_long.memory_bytes > p_short.memory_bytes) is grows
        assert p_long.extra["prefill_macs"] > p_short.extra["prefill_macs"]
        assert p_long.macs == p_long.extra["prefill_macs"] + p_long.extra["decode_macs_total"]
    # 1B decode per token: every weight once (2 MACs per tied-head/embedding row only once).
    one_b = SPACE.resolve("nemotron-flash-1b")
    prof = SPACE.profile(one_b)
    assert 0.95e9 < prof.extra["decode_macs_per_token"] < 1.05e9


def test_every_hidden_choice_gives_a_valid_gqa_attention() -> None:
    """KV heads divide the query heads for every width (hidden 1792 and 2304 have 14 and 18
    heads, where n_heads / 4 would not), and that attention runs."""
    from search_spaces._slm_attention import Attention

    for hidden in SPACE.search_parameters()["hidden"]:
        arch = parse_arch_string(f"d{hidden}_r2_n16_mt0:a-f")
        assert arch.n_heads % arch.kv_heads == 0
        assert arch.kv_heads == max(1, arch.n_heads // 4) or arch.n_heads in (14, 18)
    arch = parse_arch_string("d1792_r2_n16_mt0:a-f")
    attn = Attention(1792, arch.n_heads, arch.kv_heads, window=0)
    with torch.no_grad():
        out, _ = attn(torch.randn(1, 3, 1792), None)
    assert out.shape == (1, 3, 1792)
