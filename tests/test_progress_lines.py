"""Tune and sweep speak while they run: one plain line per grid point / NFE budget, also with
no terminal (captured output), switched by --no-progress and by the config's `progress` key."""

from __future__ import annotations

from pathlib import Path

import pytest

from idff import cli
from idff.config import eval_spec, load_config, train_spec
from idff.progress import Progress
from idff.steps import jobs

SMOKE = Path(__file__).resolve().parents[1] / "config" / "smoke.yaml"
SETS = ["experiments.toy.train.steps=30", "experiments.toy.sweep.n_samples=100",
        "experiments.toy.tune.n_samples=100"]


def test_progress_line_counts_and_eta():
    bar = Progress("tune x:", 4, enabled=False)
    line = bar.step(nfe=2, mmd=0.012345)
    assert line.startswith("tune x: 1/4 nfe=2 mmd=0.01235 elapsed 0m00s ETA ")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    cfg = load_config(SMOKE, SETS)
    out = tmp_path_factory.mktemp("progress") / "idff.pt"
    jobs.run_train(train_spec(cfg, "toy", "moons", "idff", 0), out, progress=False)
    return cfg, out


@pytest.mark.slow
def test_tune_prints_one_line_per_grid_point_and_budget(ckpt, tmp_path, capsys):
    cfg, path = ckpt
    spec = eval_spec(cfg, "toy", "moons", "idff1", "euler", 0)
    jobs.run_tune(spec, path, tmp_path / "tuned.json")
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("tune ")]
    n_grid = len(cfg["experiments"]["toy"]["variants"]["idff1"]["tune"]["sigma_s"])
    assert len(lines) == n_grid * len(spec["nfe"])
    assert lines[-1].startswith(f"tune toy/moons idff1 (euler) seed 0 on cpu: {len(lines)}/{len(lines)} ")
    assert "sigma_s=" in lines[0] and "mmd=" in lines[0] and "ETA" in lines[0]


@pytest.mark.slow
def test_sweep_prints_one_line_per_budget_unless_switched_off(ckpt, tmp_path, capsys):
    cfg, path = ckpt
    spec = eval_spec(cfg, "toy", "moons", "cfm", "euler", 0)  # the CFM field of the idff net
    jobs.run_sweep(spec, path, tmp_path / "m.json")
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("sweep ")]
    assert [x.split(": ", 1)[1].split()[0] for x in lines] == [f"{i}/3" for i in (1, 2, 3)]
    jobs.run_sweep(spec, path, tmp_path / "m2.json", progress=False)
    assert "sweep " not in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("flags,sets,env,expect", [
    ([], [], None, True),
    (["--no-progress"], [], None, False),
    ([], ["progress=false"], None, False),          # the config's key drives the default
    ([], [], "0", True),                            # with --config, the config wins over the env
])
def test_cli_progress_switch(ckpt, tmp_path, capsys, monkeypatch, flags, sets, env, expect):
    cfg, path = ckpt
    if env is not None:
        monkeypatch.setenv("IDFF_PROGRESS", env)
    sets = [f"--set={s}" for s in SETS + sets]
    rc = cli.main([*flags, "sweep", "--config", str(SMOKE), *sets, "--dataset", "moons",
                   "--variant", "cfm", "--ckpt", str(path), "--out", str(tmp_path / "m.json")])
    assert rc == 0
    assert ("sweep toy/moons cfm" in capsys.readouterr().out) is expect


def test_cli_progress_from_the_environment_for_spec_jobs(monkeypatch):
    import argparse

    monkeypatch.setenv("IDFF_PROGRESS", "0")
    assert cli._progress(argparse.Namespace(), True) is False   # what Snakemake jobs get
    monkeypatch.setenv("IDFF_PROGRESS", "1")
    assert cli._progress(argparse.Namespace(), True) is True
    assert cli._progress(argparse.Namespace(), False) is False  # --no-progress always wins
