"""`idff` command line, called in-process: train, tune, sweep, sample, floor and error exits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from idff.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

SMOKE = str(Path(__file__).resolve().parent.parent / "config" / "smoke.yaml")
BASE = ["--config", SMOKE, "--set", "experiments.toy.train.steps=20", "--set", "device=cpu",
        "--dataset", "moons"]
PROVENANCE = ("git_commit", "config_hash", "seed", "device", "wall_s")


def _idff(*args: str) -> int:
    return main(["--no-progress", *args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """20-step icfm and idff checkpoints on moons, made through `idff train`."""
    root = tmp_path_factory.mktemp("cli")
    out = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see conftest.one_thread
    try:
        for method in ("icfm", "idff"):
            ckpt = root / "tmp" / f"{method}.pt"
            assert _idff("train", *BASE, "--method", method, "--out", str(ckpt)) == 0
            out[method] = ckpt
    finally:
        torch.set_num_threads(threads)
    return out


def test_train_writes_checkpoint_and_json(trained):
    ckpt = trained["icfm"]
    assert ckpt.is_file() and not ckpt.with_name(ckpt.name + ".resume").exists()
    info = json.loads(ckpt.with_suffix(".json").read_text())
    assert info["job"] == "train" and info["steps"] == 20
    for key in PROVENANCE:
        assert key in info["provenance"]


def test_sweep_writes_rows_with_provenance(trained, tmp_path, capsys):
    out = tmp_path / "sweep.json"
    code = _idff("sweep", *BASE, "--variant", "icfm", "--solver", "euler",
                 "--ckpt", str(trained["icfm"]), "--out", str(out))
    assert code == 0
    res = json.loads(out.read_text())
    assert res["split"] == "test" and res["method"] == "icfm" and res["dataset"] == "moons"
    for key in PROVENANCE:
        assert key in res["provenance"]
    assert [r["nfe_budget"] for r in res["rows"]] == [2, 5, 10]
    for row in res["rows"]:
        assert row["nfe"] == row["nfe_budget"] and row["vjp"] == 0
        assert {"w2", "mmd", "mmd_multi", "wall_s"} <= set(row)
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if line.startswith("{")]
    assert [p["nfe"] for p in printed] == [2, 5, 10]


def test_tune_then_sweep_uses_the_chosen_parameters(trained, tmp_path):
    tuned = tmp_path / "tune.json"
    assert _idff("tune", *BASE, "--variant", "idff2", "--ckpt", str(trained["idff"]),
                 "--out", str(tuned)) == 0
    chosen = json.loads(tuned.read_text())
    assert chosen["split"] == "val" and set(chosen["per_nfe"]) == {"2", "5", "10"}
    for entry in chosen["per_nfe"].values():
        assert len(entry["grid"]) == 4 and set(entry["best"]) == {"gamma1", "gamma2"}
    out = tmp_path / "sweep.json"
    assert _idff("sweep", *BASE, "--variant", "idff2", "--ckpt", str(trained["idff"]),
                 "--tuned", str(tuned), "--out", str(out)) == 0
    rows = json.loads(out.read_text())["rows"]
    for row in rows:
        assert row["params"] == chosen["per_nfe"][str(row["nfe_budget"])]["best"]
        assert row["nfe"] == row["nfe_budget"] and row["vjp"] == 2 * row["nfe"]


def test_sample_writes_an_npz(trained, tmp_path):
    out = tmp_path / "samples.npz"
    code = _idff("sample", *BASE, "--variant", "idff1", "--ckpt", str(trained["idff"]),
                 "--nfe", "5", "--n", "64", "--param", "sigma_s=0.4", "--out", str(out))
    assert code == 0
    with np.load(out) as z:
        assert z["samples"].shape == (64, 2) and z["trajectory"].shape == (6, 64, 2)
        assert np.isfinite(z["samples"]).all()
        np.testing.assert_array_equal(z["trajectory"][-1], z["samples"])


def test_floor_writes_metrics(tmp_path):
    out = tmp_path / "floor.json"
    assert _idff("floor", *BASE, "--out", str(out)) == 0
    res = json.loads(out.read_text())
    assert res["dataset"] == "moons" and res["w2"] > 0 and "mmd" in res
    assert res["provenance"]["nfe"] == 0


@pytest.mark.parametrize("args,valid", [
    (["train", "--method", "ddpm"], "valid: idff, icfm, otcfm, sbcfm"),
    (["train", "--method", "icfm", "--dataset", "swissroll"], "valid: 8gaussians, moons, checkerboard"),
    (["sweep", "--variant", "icfm", "--solver", "rk45", "--ckpt", "x.pt"], "valid: euler"),
    (["sweep", "--variant", "idff9", "--ckpt", "x.pt"], "valid: idff1, idff2, idff3, pf"),
    (["train", "--set", "experiments.toy.sweep.nfe=[-1]"], "experiments.toy.sweep.nfe.0"),
])
def test_unknown_names_exit_2_listing_valid_ones(args, valid, tmp_path, capsys):
    cmd, *rest = args
    code = _idff(cmd, "--config", SMOKE, "--dataset", "moons", *rest, "--out", str(tmp_path / "o"))
    assert code == 2
    err = capsys.readouterr().err
    assert f"idff {cmd}: error:" in err and valid in err, err


def test_missing_checkpoint_exits_2(tmp_path, capsys):
    code = _idff("sweep", *BASE, "--variant", "icfm", "--ckpt", str(tmp_path / "none.pt"),
                 "--out", str(tmp_path / "o.json"))
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_no_config_exits_2(tmp_path, capsys):
    assert _idff("train", "--out", str(tmp_path / "o.pt")) == 2
    assert "--config" in capsys.readouterr().err
