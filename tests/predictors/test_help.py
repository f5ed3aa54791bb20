"""HELP internals: the vmapped inner loop, featurization, parity of shapes with the release."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from predictors import HELPPredictor, load_predictor, make_tasks
from predictors._features import encode, graph_features, parse_nb201, parse_ofa
from predictors._help import _stack, _take, target_range


def _tiny(table: pd.DataFrame, space: str = "nasbench201") -> HELPPredictor:
    tasks = make_tasks(table, space, list(table.columns[:3]))
    return HELPPredictor(episodes=2, tasks_per_episode=3, n_query=12, seed=0).fit(tasks)


def test_vmap_inner_loop_equals_per_task_loop(nb201_table: pd.DataFrame) -> None:
    model = _tiny(nb201_table)
    pool = [
        model._prepare(t) for t in make_tasks(nb201_table, "nasbench201", ["1080ti_1", "pixel3"])
    ]
    batch = model._sample_episode(pool, np.random.default_rng(0))
    mse, kl = model.episode_losses(batch)
    for i in range(mse.shape[0]):
        idx = torch.tensor(i)
        one_mse, one_kl = model._task_loss(
            model.meta_params_,
            model._lrs(),
            model.inference_params_,
            batch["hw"][i],
            _take(batch["xs"], idx),
            batch["ys"][i],
            _take(batch["xq"], idx),
            batch["yq"][i],
            batch["eps"][i],
        )
        torch.testing.assert_close(mse[i], one_mse, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(kl[i], one_kl, rtol=1e-4, atol=1e-4)
    assert _stack([torch.zeros(2)]).shape == (1, 2)


def test_meta_training_changes_parameters_and_inner_lrs(nb201_table: pd.DataFrame) -> None:
    model = _tiny(nb201_table)
    fresh = HELPPredictor(episodes=1, seed=0)
    fresh.space_ = "nasbench201"
    fresh.kind_ = "gcn"
    fresh._init_state(8)
    assert not torch.equal(model.meta_params_["fc5.weight"], fresh.meta_params_["fc5.weight"])
    assert not torch.allclose(model.task_lr_["fc5.weight"], torch.full((1, 200), 1e-3))
    # released checkpoint shapes: gc1 8x100, fc3 200x200, inference 10 -> 1206
    assert model.meta_params_["gc1.weight"].shape == (8, 100)
    assert model.meta_params_["fc3.weight"].shape == (200, 200)
    assert model.inference_params_["z2.weight"].shape == (1206, 10)


def test_help_mlp_branch_on_fbnet(fbnet_table: pd.DataFrame) -> None:
    model = _tiny(fbnet_table, "fbnet")
    assert model.kind_ == "mlp"
    assert (
        model.meta_params_["fc1.weight"].shape[1] == encode("fbnet", fbnet_table.index[:1]).shape[1]
    )


def test_version_mismatch_warns(nb201_table: pd.DataFrame) -> None:
    import pickle

    payload = pickle.loads(_tiny(nb201_table).to_bytes())
    payload["format"] = "predictors-0"
    with pytest.warns(UserWarning, match="format"):
        load_predictor(pickle.dumps(payload))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_predictor(_tiny(nb201_table).to_bytes())


def test_help_requires_hardware_embedding(nb201_table: pd.DataFrame) -> None:
    from predictors import NotEnoughDataError

    model = _tiny(nb201_table)
    with pytest.raises(NotEnoughDataError, match="hw_embedding_ms"):
        model.adapt(list(nb201_table.index[:5]), np.ones(5))


def test_featurizers(shared_data: Path) -> None:
    arch = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"
    assert parse_nb201(arch) == (3, 0, 4, 1, 2, 1)
    feat, adj = graph_features([arch])
    assert feat.shape == (1, 9, 8) and adj.shape == (1, 9, 9)
    assert adj[0, 8].sum() == 9 and adj[0, 1, 0] == 1  # global node sees all; edge 1<-0
    cfg = parse_ofa("r216-d34323-k357.7753.555.53.577-e644.3434.464.64.364")
    assert cfg["d"] == [3, 4, 3, 2, 3] and cfg["r"] == [216] and len(cfg["ks"]) == 20
    from predictors import PredictorError

    with pytest.raises(PredictorError):
        parse_nb201("|conv~0|")


def test_target_range_sets_the_reference_latencies_aside() -> None:
    """HELP scales targets by the training pool's range; the reference archs (often extreme)
    must not set it. One support latency per reference latency is set aside."""
    support = np.array([5.0, 6.0, 7.0, 1.0, 20.0, 6.0])
    assert target_range(support, np.array([1.0, 20.0, 6.0])) == (5.0, 7.0)
    assert target_range(support, None) == (1.0, 20.0)
    assert target_range(support[:3], np.array([1.0, 20.0])) == (5.0, 7.0)  # refs not among them
    # fewer than two left: every latency counts
    assert target_range(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0])) == (1.0, 3.0)
