"""Tests of the `nas spaces` command group."""

from __future__ import annotations

import json

import pytest

from nas._cli.main import main
from search_spaces import get_space, list_spaces

A1_STRING = (
    "ds_r1_k3_s1_c16_noskip-ir_r2_k3_s2_e6_c24-ir_r3_k5_s2_e3_c40_se0.25-ir_r4_k3_s2_e6_c80-"
    "ir_r2_k3_s1_e6_c112_se0.25-ir_r3_k5_s2_e6_c160_se0.25-ir_r1_k3_s1_e6_c320"
)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_show_arch_prints_params_and_macs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "spaces", "show", "mnasnet", "--arch", "mnasnet-a1")
    assert code == 0, err
    assert "3.89M" in out
    assert "312M" in out
    assert "ir_r1_k3_s1_e6_c320" in out
    assert "(peak activations)" in out


def test_show_says_a_language_models_memory_is_its_decode_cache(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A 965M-parameter model's "memory 23 MiB" read as the model's size (QA, session 31)."""
    code, out, err = _run(capsys, "spaces", "show", "nemotron_flash", "--arch", "nemotron-flash-1b")
    assert code == 0, err
    assert "(decode cache)" in out


def test_show_arch_json_has_exact_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "spaces", "show", "mnasnet", "--arch", "mnasnet-a1", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {
        "space",
        "arch",
        "params",
        "macs",
        "flops",
        "memory_bytes",
        "encoding_length",
    }
    assert data["space"] == "mnasnet"
    assert data["arch"] == A1_STRING
    assert data["params"] == pytest.approx(3.887e6, rel=0.01)
    assert data["macs"] == pytest.approx(311.6e6, rel=0.01)
    assert data["flops"] == 2 * data["macs"]
    assert data["memory_bytes"] > 0
    assert data["encoding_length"] == 82


def test_show_accepts_an_architecture_string(capsys: pytest.CaptureFixture[str]) -> None:
    b1 = get_space("mnasnet").to_string(get_space("mnasnet").reference_archs()["mnasnet-b1"])
    code, out, _ = _run(capsys, "spaces", "show", "mnasnet", "--arch", b1, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["arch"] == b1
    assert data["params"] == 4_383_312


def test_show_space_lists_parameters_and_references(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "spaces", "show", "mnasnet")
    assert code == 0
    assert "b7_dlayers" in out
    assert "mnasnet-b1" in out
    code, out, _ = _run(capsys, "spaces", "show", "mnasnet", "--json")
    assert code == 0
    data = json.loads(out)
    assert len(data["parameters"]) == 42
    assert data["reference_archs"]["mnasnet-a1"] == A1_STRING


def test_list_shows_every_registered_space(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "spaces", "list")
    assert code == 0
    for name in list_spaces():
        assert name in out
    assert "42" in out and "82" in out


def test_list_json_for_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "spaces", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["name"] for r in rows] == list_spaces()
    mnasnet = next(r for r in rows if r["name"] == "mnasnet")
    assert mnasnet["n_parameters"] == 42 and mnasnet["encoding_length"] == 82
    assert set(mnasnet) == {"name", "description", "n_parameters", "encoding_length"}


@pytest.mark.parametrize(
    ("argv", "code", "fragment"),
    [
        (("spaces", "show", "no-such-space"), 2, "unknown search space 'no-such-space'"),
        (("spaces", "show", "mnasnet", "--arch", "ds_r1"), 2, "missing token(s)"),
        (("spaces", "show", "mnasnet", "--arch", "mnasnet-z9"), 2, "did you mean 'mnasnet-"),
        (("spaces", "show"), 2, "SPACE"),
    ],
)
def test_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], code: int, fragment: str
) -> None:
    got, out, err = _run(capsys, *argv)
    assert got == code
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert fragment in err
    assert "Traceback" not in err
