"""One conformance suite run over every registered search space."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch

from search_spaces import InvalidArchError, SearchSpace, get_space, list_spaces

SPACES = list_spaces()


def _small_forward(space: SearchSpace, arch: object) -> None:
    model = space.build(arch).eval()
    with torch.inference_mode():
        out = model(*space.example_inputs(space.smoke_workload()))
    tensors = out if isinstance(out, tuple) else (out,)
    for t in tensors:
        if isinstance(t, torch.Tensor):
            assert torch.isfinite(t).all()


def test_all_expected_spaces_registered() -> None:
    for name in ("mnasnet", "mobilevig", "nemotron_flash", "nasbench201", "fbnet"):
        assert name in SPACES


@pytest.mark.parametrize("name", SPACES)
def test_sample_build_forward(name: str) -> None:
    space = get_space(name)
    study = optuna.create_study()
    trial = study.ask()
    arch = space.sample(trial)
    assert set(trial.params) == set(space.search_parameters())
    # Spaces whose full-size samples are too large for a CPU smoke test (nemotron_flash) offer a
    # variant with the same parameter names and smaller widths.
    small = getattr(space, "smoke_variant", None)
    if callable(small):
        space = small()
        trial = optuna.create_study().ask()
        arch = space.sample(trial)
    _small_forward(space, arch)


@pytest.mark.parametrize("name", SPACES)
def test_string_round_trip(name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(0)
    archs = [space.random(rng) for _ in range(20)]
    archs += list(space.reference_archs().values()) + space.hardware_embedding_archs()
    for arch in archs:
        text = space.to_string(arch)
        assert space.from_string(text) == arch
        assert space.to_string(space.from_string(text)) == text


@pytest.mark.parametrize("name", SPACES)
def test_invalid_strings_name_the_token(name: str) -> None:
    space = get_space(name)
    for bad in ("", "garbage-token", space.to_string(space.random(1)) + "-zzz"):
        with pytest.raises(InvalidArchError):
            space.from_string(bad)


@pytest.mark.parametrize("name", SPACES)
def test_wrong_argument_types_are_one_error_in_every_space(name: str) -> None:
    """An arch *string* where an arch object is expected (the commonest slip in a notebook),
    a workload that is no Workload, or a non-string to parse: the same error in every space,
    not an AttributeError from inside some of them."""
    space = get_space(name)
    text = space.to_string(space.random(0))
    assert type(space).arch_type is not None and isinstance(space.random(0), type(space).arch_type)
    for method in (space.to_string, space.encode, space.profile, space.build):
        with pytest.raises(InvalidArchError, match=rf"^{name}\.\w+: expected a \w+, got str"):
            method(text)  # type: ignore[operator]
    for method in (space.encode, space.profile):
        with pytest.raises(ValueError, match="`workload` must be a search_spaces.Workload"):
            method(space.random(0), workload="x")  # type: ignore[operator]
    for bad in (123, None, b"x"):
        for parse in (space.from_string, space.resolve):  # resolve raised AttributeError
            with pytest.raises(InvalidArchError, match="expected an architecture string"):
                parse(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", SPACES)
def test_encoding_fixed_length_and_finite(name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(1)
    lengths = set()
    for arch in [space.random(rng) for _ in range(10)] + space.hardware_embedding_archs():
        vec = space.encode(arch)
        assert vec.ndim == 1
        assert np.isfinite(vec).all()
        lengths.add(vec.shape[0])
    assert lengths == {space.encoding_length}


@pytest.mark.parametrize("name", SPACES)
def test_hardware_embedding_set_has_ten_distinct(name: str) -> None:
    space = get_space(name)
    archs = space.hardware_embedding_archs()
    assert len(archs) == 10
    assert len({space.to_string(a) for a in archs}) == 10


@pytest.mark.parametrize("name", SPACES)
def test_random_is_seeded(name: str) -> None:
    space = get_space(name)
    assert space.to_string(space.random(7)) == space.to_string(space.random(7))


@pytest.mark.parametrize("name", SPACES)
def test_nsga2_recombines_every_parameter(name: str) -> None:
    """All parameters stay in NSGA-II's intersection search space (spec 0.2)."""
    space = get_space(name)
    sampler = optuna.samplers.NSGAIISampler(population_size=8, seed=0)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    rng = np.random.default_rng(0)
    for _ in range(24):
        trial = study.ask()
        space.sample(trial)
        study.tell(trial, [float(rng.random()), float(rng.random())])
    from optuna.search_space import intersection_search_space

    inter = intersection_search_space(study.get_trials(deepcopy=False))
    assert set(inter) == set(space.search_parameters())


@pytest.mark.parametrize("name", SPACES)
def test_prune_params_is_a_valid_idempotent_assignment(name: str) -> None:
    space = get_space(name)
    grid = space.search_parameters()
    rng = np.random.default_rng(0)
    for _ in range(20):
        params = {k: v[int(rng.integers(len(v)))] for k, v in grid.items()}
        pruned = space.prune_params(params)
        assert set(pruned) == set(params) and all(pruned[k] in grid[k] for k in grid)
        assert space.prune_params(pruned) == pruned
        space.from_params(pruned)  # a buildable architecture


@pytest.mark.parametrize("name", SPACES)
def test_workload_fields_left_out_do_not_change_the_inputs(name: str) -> None:
    """``workload_fields`` are what users are shown; the others must not reach the model."""
    from dataclasses import fields, replace

    from search_spaces import Workload

    space = get_space(name)
    base = space.smoke_workload()
    shapes = [tuple(t.shape) for t in space.example_inputs(base)]
    names = {f.name for f in fields(Workload)}
    assert set(space.workload_fields) <= names and "batch_size" in space.workload_fields
    for field in sorted(names - set(space.workload_fields)):
        other = replace(base, **{field: getattr(base, field) + 7})
        assert [tuple(t.shape) for t in space.example_inputs(other)] == shapes, field
    assert set(space.workload_dict(base)) == set(space.workload_fields)
