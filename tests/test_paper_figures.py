"""The paper's remaining figures (issue 9): settings, the snapshot trainer, the iter-eval job on
a tiny trained model, and every figure builder on a small synthetic results tree."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from idff.cli import main as idff_main
from idff.config import eval_spec, load_config, train_spec, validate_config
from idff.io import load_checkpoint, save_checkpoint
from idff.layout import kept_steps, snapshot_path
from idff.plan.core import expected_sample_files
from idff.plan.figures import (
    gamma_jobs,
    iteration_jobs,
    iteration_spec,
    iterations_settings,
    toy_sample_inputs,
    trajectory_jobs,
)
from idff.report import TARGETS, make_target, target_inputs
from idff.report.collect import ReportInputError
from idff.report.paper_figures.iterations import nfe_to_threshold
from idff.steps import jobs
from idff.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"
NEW = ("fig_nfe_vs_iterations", "fig_gamma", "fig_trajectories", "fig_samples_toy",
       "fig_samples_md", "fig_samples_sst")
BUDGETS = [1, 2, 4]
STEPS = [10, 20, 30]
#: Fig. 3A fake quality: value = A / (nfe * step / 10) + 0.05 seed (lower is better).
SCALE = {"idff1": 1.0, "otcfm": 2.0, "icfm": 8.0}



def cli_main(args: list[str]) -> int:
    """``idff <args>`` as the iter_eval rule runs it."""
    return idff_main(["--no-progress", *args])

def make_cfg() -> dict:
    cfg = {
        "paper_targets": {t: f"results/figures/{t}.png" for t in NEW[:4]},
        "experiments": {"toy": {
            "family": "toy", "datasets": ["moons", "8gaussians"], "seeds": [0, 1],
            "data": {"n_train": 2000},
            "model": {"arch": "mlp", "hidden": 16, "depth": 2, "activation": "selu"},
            "train": {"steps": 30, "batch_size": 64, "lr": 2e-3, "warmup": 2, "ema_decay": 0.9,
                      "ckpt_every": 10, "keep_every": 10},
            "methods": {"idff": {"sigma": 0.2}, "otcfm": {"sigma": 0.0},
                        "icfm": {"sigma": 0.0}},
            "variants": {
                "idff1": {"method": "idff", "sampler": "idff1",
                          "tune": {"sigma_s": [0.0, 0.5]}, "label": "IDFF order 1"},
                "idff2": {"method": "idff", "sampler": "idff2",
                          "tune": {"gamma1": [0.0, 0.5], "gamma2": [0.0, 0.5, 1.0]}},
                "pf": {"method": "idff", "sampler": "pf"},
                "otcfm": {"method": "otcfm", "sampler": "native", "label": "OT-CFM"},
                "icfm": {"method": "icfm", "sampler": "native", "label": "I-CFM"},
            },
            "sweep": {"solvers": ["euler"], "nfe": BUDGETS, "n_samples": 64},
            "tune": {"n_samples": 64, "metric": "mmd"},
            "figures": {
                "toy_orders": {"variants": ["otcfm", "idff1"], "nfe": 2},
                "nfe_vs_iterations": {"threshold_metric": "w2",
                                      "threshold": {"moons": 0.5, "8gaussians": 1.0}},
                "gamma": {"nfe": 2},
                "trajectories": {"panels": [{"variant": "otcfm", "nfe": 4},
                                            {"variant": "idff1", "nfe": 2}],
                                 "n_trajectories": 5},
            },
        }},
    }
    validate_config(cfg)
    return cfg


def _write(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _res(root: Path, rel: str) -> Path:
    return root / rel[len("results/"):]


def quality(variant: str, step: int, nfe: int, seed: int) -> float:
    return SCALE[variant] / (nfe * step / 10) + 0.05 * seed


def write_iterations(cfg: dict, root: Path) -> None:
    for j in iteration_jobs(cfg, "toy"):
        rows = [{"step": st, "nfe_budget": n, "nfe": n, "vjp": 0, "wall_s": 0.0, "params": {},
                 "w2": quality(j["variant"], st, n, j["seed"]), "mmd": 0.0, "mmd_multi": 0.0}
                for st in STEPS for n in BUDGETS]
        _write(_res(root, j["path"]), {"job": "iter_eval", "split": "test", "experiment": "toy",
                                       "dataset": j["dataset"], "variant": j["variant"],
                                       "solver": j["solver"], "seed": j["seed"], "steps": STEPS,
                                       "nfe_budgets": BUDGETS, "rows": rows})


def grid_value(params: dict, seed: int) -> float:
    return sum((v - 0.5) ** 2 for v in params.values()) + 0.01 * seed + 1e-3


def write_gamma(cfg: dict, root: Path, test_params: dict | None = None) -> None:
    from idff.tune import grid_points

    e = cfg["experiments"]["toy"]
    for j in gamma_jobs(cfg, "toy"):
        grid = [{"params": p, "value": grid_value(p, j["seed"])}
                for p in grid_points(e["variants"][j["variant"]]["tune"])]
        best = min(grid, key=lambda r: r["value"])
        _write(_res(root, j["tuned"]), {
            "job": "tune", "metric": "mmd", "dataset": j["dataset"], "variant": j["variant"],
            "solver": j["solver"], "seed": j["seed"],
            "per_nfe": {"2": {"best": best["params"], "best_value": best["value"],
                              "grid": grid}}})
        row = {"nfe_budget": 2, "nfe": 2, "params": test_params or best["params"],
               "mmd": 0.002 + 0.001 * j["seed"], "w2": 0.3}
        _write(_res(root, j["metrics"]), {"job": "sweep", "dataset": j["dataset"],
                                          "variant": j["variant"], "solver": j["solver"],
                                          "seed": j["seed"], "rows": [row]})


def write_toy_samples(paths: list[str], root: Path, n: int = 60) -> None:
    """Straight paths from x0 to x1 in 3 steps: every path is as long as its chord."""
    rng = np.random.default_rng(0)
    for rel in paths:
        x0, x1 = rng.standard_normal((n, 2)), rng.standard_normal((n, 2))
        traj = np.stack([x0 + (x1 - x0) * t for t in np.linspace(0, 1, 4)]).astype(np.float32)
        path = _res(root, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, samples=x1.astype(np.float32), trajectory=traj)


@pytest.fixture
def cfg() -> dict:
    return make_cfg()


# ------------------------------------------------------------------- settings and registry


def test_targets_are_registered_with_inputs(cfg):
    smoke = load_config(ROOT / "config" / "smoke.yaml")
    for t in NEW:
        assert t in TARGETS and TARGETS[t].caption
        assert t in smoke["paper_targets"]
        assert target_inputs(t, smoke), t
    assert len(target_inputs("fig_nfe_vs_iterations", cfg)) == 2 * 3 * 2  # ds x variants x seeds


def test_fig_samples_toy_reuses_the_orders_files_without_its_own_block(cfg):
    assert toy_sample_inputs(cfg, "toy") == expected_sample_files(cfg, "toy")
    cfg["experiments"]["toy"]["figures"]["samples"] = {"variants": ["pf"], "nfe": 4}
    assert toy_sample_inputs(cfg, "toy") == [
        f"results/samples/toy/{ds}/pf/euler/nfe4_seed0.npz" for ds in ("moons", "8gaussians")]


@pytest.mark.parametrize("edit,needle", [
    (lambda e: e["train"].pop("keep_every"), "experiments.toy.train.keep_every"),
    (lambda e: e["figures"]["nfe_vs_iterations"].pop("threshold"),
     "figures.nfe_vs_iterations.threshold"),
    (lambda e: e["figures"]["nfe_vs_iterations"].update(nfe=[3]), "nfe_vs_iterations.nfe"),
    (lambda e: e["figures"]["nfe_vs_iterations"].update(threshold_metric="fid"),
     "threshold_metric"),
    (lambda e: e["figures"]["nfe_vs_iterations"].update(typo=1), "unknown settings ['typo']"),
    (lambda e: e["figures"]["gamma"].update(nfe=3), "figures.gamma.nfe"),
    (lambda e: e["figures"]["gamma"].update(heatmap={"variant": "idff2", "x": "gamma3",
                                                     "y": "gamma1"}), "heatmap.x"),
    (lambda e: e["figures"]["trajectories"]["panels"].append({"variant": "idff1", "nfe": 3}),
     "trajectories.panels.2.nfe"),
])
def test_bad_figure_settings_name_the_key(cfg, edit, needle):
    edit(cfg["experiments"]["toy"])
    with pytest.raises(ValueError) as err:
        for t in ("fig_nfe_vs_iterations", "fig_gamma", "fig_trajectories"):
            target_inputs(t, cfg)
    assert needle in str(err.value)


def test_iteration_spec_carries_budgets_size_and_steps(cfg):
    cfg["experiments"]["toy"]["figures"]["nfe_vs_iterations"].update(nfe=[1, 4], n_samples=32)
    spec = iteration_spec(cfg, "toy", "moons", "idff1", "euler", 1)
    assert spec["nfe"] == [1, 4] and spec["sweep"]["n_samples"] == 32
    assert spec["iterations"] == {"steps": [10, 20, 30], "split": "test"}
    assert spec["seed"] == 1 and spec["variant"]["name"] == "idff1"
    with pytest.raises(ValueError, match="does not evaluate variant 'pf'"):
        iteration_spec(cfg, "toy", "moons", "pf", "euler", 1)


# -------------------------------------------------------------------------- the trainer


def test_kept_steps_and_snapshot_names():
    assert kept_steps(30, 10) == [10, 20, 30]
    assert kept_steps(25, 10) == [10, 20, 25]
    assert kept_steps(30, 0) == [30] and kept_steps(5, 10) == [5]
    assert snapshot_path("r/seed0.pt", 200) == Path("r/seed0.step200.pt")
    with pytest.raises(ValueError, match="train.keep_every"):
        TrainConfig(keep_every=-1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 20-step IDFF run keeping step 10, a separate 10-step run, and idff1's tuning."""
    torch.set_num_threads(1)
    cfg = make_cfg()
    e = cfg["experiments"]["toy"]
    e["train"]["steps"] = 20
    root = tmp_path_factory.mktemp("iter")
    spec = train_spec(cfg, "toy", "moons", "idff", 0)
    spec["device"] = "cpu"
    cfg["device"] = "cpu"
    ckpt, short = root / "seed0.pt", root / "short" / "seed0.pt"
    jobs.run_train(spec, ckpt, progress=False)
    jobs.run_train({**spec, "train": {**spec["train"], "steps": 10}}, short, progress=False)
    tuned = root / "tuned.json"
    jobs.run_tune(eval_spec(cfg, "toy", "moons", "idff1", "euler", 0), ckpt, tuned)
    return cfg, ckpt, short, tuned


def test_trainer_keeps_the_ema_weights_of_a_shorter_run(trained):
    _, ckpt, short, _ = trained
    assert snapshot_path(ckpt, 10).is_file()
    assert not snapshot_path(ckpt, 20).exists()  # the final step is the checkpoint itself
    snap, ref = load_checkpoint(snapshot_path(ckpt, 10)), load_checkpoint(short)
    assert snap["step"] == 10 and set(snap) == {"format", "meta", "train", "step", "ema",
                                                 "sha256"}  # the content hash of every checkpoint
    # warm-up and data order do not depend on train.steps: step 10 of a 20-step run is the
    # final state of a 10-step run, bit for bit on the CPU
    for k, v in ref["ema"].items():
        assert torch.equal(snap["ema"][k], v), k


def test_iter_eval_final_step_matches_the_sweep(trained, tmp_path):
    cfg, ckpt, _, tuned = trained
    spec = iteration_spec(cfg, "toy", "moons", "idff1", "euler", 0)
    out = tmp_path / "iter.json"
    rc = cli_main(["iter-eval", "--spec", json.dumps(spec), "--ckpt", str(ckpt), "--tuned",
                   str(tuned), "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["steps"] == [10, 20]
    assert [(r["step"], r["nfe_budget"]) for r in res["rows"]] == [
        (s, n) for s in (10, 20) for n in BUDGETS]
    assert all(r["nfe"] == r["nfe_budget"] for r in res["rows"])  # euler: one pass per step
    sweep = jobs.run_sweep(eval_spec(cfg, "toy", "moons", "idff1", "euler", 0), ckpt,
                           tmp_path / "sweep.json", tuned=tuned)
    final = [r for r in res["rows"] if r["step"] == 20]
    for a, b in zip(final, sweep["rows"], strict=True):
        assert a["params"] == b["params"]
        assert a["w2"] == pytest.approx(b["w2"], rel=1e-12)
        assert a["mmd"] == pytest.approx(b["mmd"], rel=1e-12)
    early = {r["nfe_budget"]: r["w2"] for r in res["rows"] if r["step"] == 10}
    assert early != {r["nfe_budget"]: r["w2"] for r in final}  # other weights, other samples


def test_iter_eval_by_hand_equals_the_rule_job(trained, tmp_path):
    """`idff iter-eval --config ...` (what a user types) makes the spec the rule passes."""
    cfg, ckpt, _, tuned = trained
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    by_rule, by_hand = tmp_path / "rule.json", tmp_path / "hand.json"
    spec = iteration_spec(cfg, "toy", "moons", "idff1", "euler", 0)
    common = ["--ckpt", str(ckpt), "--tuned", str(tuned)]
    assert cli_main(["iter-eval", "--spec", json.dumps(spec), *common, "--out", str(by_rule)]) == 0
    assert cli_main(["iter-eval", "--config", str(cfg_file), "--dataset", "moons", "--variant",
                     "idff1", *common, "--out", str(by_hand)]) == 0
    rule, hand = json.loads(by_rule.read_text()), json.loads(by_hand.read_text())
    assert hand["rows"] and [r["w2"] for r in hand["rows"]] == [r["w2"] for r in rule["rows"]]
    assert hand["provenance"]["config_hash"] == rule["provenance"]["config_hash"]


def test_iter_eval_refuses_stale_or_missing_snapshots(trained, tmp_path, capsys):
    cfg, ckpt, _, tuned = trained
    spec = iteration_spec(cfg, "toy", "moons", "idff1", "euler", 0)
    args = ["iter-eval", "--spec", json.dumps(spec), "--ckpt", str(ckpt), "--tuned", str(tuned),
            "--out", str(tmp_path / "x.json")]
    snap = snapshot_path(ckpt, 10)
    original = load_checkpoint(snap)
    try:
        stale = copy.deepcopy(original)
        stale["train"]["lr"] = 0.5
        save_checkpoint(snap, stale)
        assert cli_main(args) == 2
        assert "stale" in capsys.readouterr().err
        snap.unlink()
        assert cli_main(args) == 2
        assert f"snapshot {snap} of step 10 is missing" in capsys.readouterr().err
    finally:
        save_checkpoint(snap, original)
    other = {**spec, "iterations": {"steps": [5, 20], "split": "test"}}
    assert cli_main([*args[:2], json.dumps(other), *args[3:]]) == 2
    assert "asks for steps [5, 20]" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


# ------------------------------------------------------------------------ Fig. 3A builder


def test_nfe_to_threshold_picks_the_smallest_reaching_budget():
    runs = pd.DataFrame({"dataset": "d", "variant": "v", "solver": "euler", "seed": 0,
                         "step": [1, 1, 1, 2, 2, 2], "nfe_budget": [1, 2, 4] * 2,
                         "nfe": [1.0, 2.0, 4.0] * 2, "value": [3.0, 0.4, 0.2, 9.0, 8.0, np.nan]})
    got = nfe_to_threshold(runs, 0.5)
    assert got["nfe_to_threshold"].iloc[0] == 2.0
    assert np.isnan(got["nfe_to_threshold"].iloc[1])


def test_fig_nfe_vs_iterations_numbers(cfg, tmp_path):
    results = tmp_path / "results"
    write_iterations(cfg, results)
    out = tmp_path / "figs" / "fig_nfe_vs_iterations.png"
    written = make_target("fig_nfe_vs_iterations", cfg, results, out)
    assert written[0].read_bytes()[:8] == PNG
    data = pd.read_csv(written[1])
    s = iterations_settings(cfg, "toy")
    reach = data[data["panel"] == "nfe_to_threshold"]
    for row in reach.itertuples():
        thr = s["thresholds"][row.dataset]
        per_seed = [min([n for n in BUDGETS if quality(row.variant, row.step, n, seed) <= thr],
                        default=None) for seed in (0, 1)]
        ok = [n for n in per_seed if n is not None]
        assert row.n_reached == len(ok), row
        assert (row.min, row.max) == ((min(ok), max(ok)) if ok else (row.min, row.max))
        if len(ok) == 2:  # the upper median of two seeds: the slower one
            assert row.median == max(ok)
        else:  # a seed that never reaches the threshold is the upper median: none
            assert np.isnan(row.median)
        if not ok:
            assert np.isnan(row.min)
    # closed form: moons, threshold 0.5, OT-CFM (A = 2) at step 10 needs NFE 4 for seed 0
    moons10 = reach[(reach["dataset"] == "moons") & (reach["step"] == 10)]
    row = moons10[moons10["variant"] == "otcfm"]
    assert row["min"].iloc[0] == 4 and row["n_reached"].iloc[0] == 1  # seed 1: 0.55 > 0.5
    # I-CFM (A = 8) never reaches 0.5 on moons within NFE 4 at step 10
    row = moons10[moons10["variant"] == "icfm"]
    assert row["n_reached"].iloc[0] == 0
    metric = data[(data["panel"] == "metric") & (data["dataset"] == "moons")
                  & (data["variant"] == "idff1") & (data["nfe_budget"] == 1)]
    expected = [np.mean([quality("idff1", st, 1, sd) for sd in (0, 1)]) for st in STEPS]
    assert metric.sort_values("step")["mean"].tolist() == pytest.approx(expected)
    caption = written[2].read_text()
    assert "forward passes" in caption and "seeds 0, 1" in caption and "every 10 steps" in caption


def test_fig_nfe_vs_iterations_rejects_stale_files(cfg, tmp_path):
    results = tmp_path / "results"
    write_iterations(cfg, results)
    cfg["experiments"]["toy"]["train"]["keep_every"] = 15
    with pytest.raises(ReportInputError, match="stale"):
        make_target("fig_nfe_vs_iterations", cfg, results, tmp_path / "f.png")


# ------------------------------------------------------------------------ Fig. 3B builder


def test_fig_gamma_grid_and_chosen_values(cfg, tmp_path):
    results = tmp_path / "results"
    write_gamma(cfg, results)
    written = make_target("fig_gamma", cfg, results, tmp_path / "fig_gamma.png")
    assert written[0].read_bytes()[:8] == PNG
    data = pd.read_csv(written[1])
    heat = data[(data["panel"] == "heatmap") & (data["split"] == "val")]
    assert len(heat) == 2 * 2 * 3  # data sets x gamma1 x gamma2
    for row in heat.itertuples():
        p = {"gamma1": row.gamma1, "gamma2": row.gamma2}
        assert row.mean == pytest.approx(np.mean([grid_value(p, s) for s in (0, 1)]))
    line = data[(data["panel"] == "line") & (data["split"] == "val")]
    assert sorted(line["sigma_s"].unique()) == [0.0, 0.5]
    test = data[data["split"] == "test (at chosen)"]
    assert len(test) == 2 * 2 * 2  # panels x data sets x seeds
    assert sorted(test["mean"].unique()) == pytest.approx([0.002, 0.003])
    chosen = {json.dumps({"gamma1": 0.5, "gamma2": 0.5}, sort_keys=True),
              json.dumps({"sigma_s": 0.5}, sort_keys=True)}
    assert set(test["chosen"]) == chosen


def test_fig_gamma_rejects_a_sweep_run_with_other_parameters(cfg, tmp_path):
    results = tmp_path / "results"
    write_gamma(cfg, results, test_params={"sigma_s": 0.0})
    with pytest.raises(ReportInputError, match="stale"):
        make_target("fig_gamma", cfg, results, tmp_path / "fig_gamma.png")


# ------------------------------------------------------------- Fig. 5 and the sample grids


def test_fig_trajectories_straight_paths(cfg, tmp_path):
    results = tmp_path / "results"
    write_toy_samples([j["path"] for j in trajectory_jobs(cfg, "toy")], results)
    written = make_target("fig_trajectories", cfg, results, tmp_path / "fig_traj.png")
    assert written[0].read_bytes()[:8] == PNG
    data = pd.read_csv(written[1])
    per_path = data[data["path"] != "all"]
    assert len(per_path) == 2 * 2 * 5  # data sets x panels x paths
    assert per_path["length"].to_numpy() == pytest.approx(per_path["straight"].to_numpy(),
                                                          rel=1e-5)
    # 3 solver steps: euler spends 3 passes whatever the budget the file name says
    assert set(data["nfe"]) == {3}


def test_fig_samples_toy(cfg, tmp_path):
    results = tmp_path / "results"
    write_toy_samples(toy_sample_inputs(cfg, "toy"), results)
    written = make_target("fig_samples_toy", cfg, results, tmp_path / "fig_st.png")
    assert written[0].read_bytes()[:8] == PNG
    data = pd.read_csv(written[1])
    assert len(data) == len(toy_sample_inputs(cfg, "toy"))
    assert (data["n_samples"] == 60).all() and (data["mmd"] > 0).all()


def _smoke_cfg() -> dict:
    return load_config(ROOT / "config" / "smoke.yaml")


def test_fig_samples_md(tmp_path):
    from idff.metrics.md import js_divergence

    cfg = _smoke_cfg()
    results = tmp_path / "results"
    rng = np.random.default_rng(1)
    pool = rng.uniform(-180, 180, (300, 2)).astype(np.float32)
    gens = {}
    for rel in target_inputs("fig_samples_md", cfg):
        variant = rel.split("/")[5]
        gen = rng.normal(-60, 20, (2, 50, 2)).astype(np.float32)
        gens[variant] = gen
        path = _res(results, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, generated=gen, truth=pool[None, :40], truth_pool=pool,
                            frame_ps=np.float64(1.0),
                            info=np.array(json.dumps({"variant": variant, "nfe_budget": 5,
                                                      "nfe": 5})))
    written = make_target("fig_samples_md", cfg, results, tmp_path / "fig_md.png")
    assert written[0].read_bytes()[:8] == PNG
    data = pd.read_csv(written[1])
    bins = cfg["experiments"]["md"]["figures"]["md"]["bins"]
    for row in data.itertuples():
        assert row.js_nats == pytest.approx(js_divergence(gens[row.variant].reshape(-1, 2), pool,
                                                          bins=bins))


def test_fig_samples_sst(tmp_path):
    cfg = _smoke_cfg()
    results = tmp_path / "results"
    rng = np.random.default_rng(2)
    land = np.zeros((6, 6), bool)
    land[0, :2] = True
    truth = rng.standard_normal((3, 6, 6)).astype(np.float32)
    members = rng.standard_normal((4, 3, 6, 6)).astype(np.float32)
    info = {"context_time": "2010-01-01", "target_times": ["2010-02", "2010-03", "2010-04"],
            "step": "month", "box_id": 7, "nfe": 5, "pairing": "direct"}
    for rel in target_inputs("fig_samples_sst", cfg):
        path = _res(results, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, context=truth[0], truth=truth, members=members,
                            mean=members.mean(0), spread=members.std(0), land=land,
                            lat=np.linspace(-5, 5, 6), lon=np.linspace(50, 60, 6),
                            info=np.array(json.dumps(info)))
    written = make_target("fig_samples_sst", cfg, results, tmp_path / "fig_sst.png")
    assert written[0].read_bytes()[:8] == PNG
    data = pd.read_csv(written[1])
    truth_rows = data[(data["variant"] == "truth") & (data["lead"] >= 1)].sort_values("lead")
    masked = np.where(land, np.nan, truth)
    assert truth_rows["field_mean"].tolist() == pytest.approx(
        [float(np.nanmean(masked[k])) for k in range(3)])
    assert len(data[data["variant"] != "truth"]) == 3 * 3  # 3 members x 3 leads
    assert "one month" in written[2].read_text()
