"""The MD family end to end (tiny OpenMM data, tiny training, tune / sweep / floor), its metrics
on known trajectories (perfect prediction, the +-180 seam, persistence in closed form), the
roll-out entry, and the MD report targets from a fake results tree."""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from idff.cli import main as idff_main
from idff.config import data_spec, eval_spec, train_spec, validate_config
from idff.data.md import MDDataError, load_md_dataset, save_md_dataset, simulate_parallel
from idff.errors import ConfigError
from idff.families import get_family
from idff.families.md import MDFamily, data_settings
from idff.plan.md import expected_rollout_files
from idff.report.collect import ReportInputError
from idff.report.md import TARGETS, fig_md, table_inputs, table_md
from idff.steps import jobs

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "config" / "smoke.yaml"  # the md experiment of the smoke config
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DS = "openmm_vacuum"
STEP = np.array([7.0, -11.0])  # synthetic trajectories: phi += 7, psi -= 11 degrees per frame


def md_cfg(seeds: list[int] | None = None, **data: object) -> dict:
    """The smoke fragment made tinier (and checked by the config schema)."""
    frag = yaml.safe_load(SMOKE.read_text())
    cfg = {"experiments": copy.deepcopy(frag["experiments"]), "paper_targets": frag["paper_targets"],
           "device": "cpu"}
    e = cfg["experiments"]["md"]
    e["data"].update({"ns_per_trajectory": 0.04, "n_cond": 20, "eval": {"k_steps": 5, "free_frames": 50,
                                                          "n_free": 2, "bins": 36}}, **data)
    e["train"].update({"steps": 40, "ckpt_every": 20})
    e["sweep"]["n_samples"] = 60
    e["tune"]["n_samples"] = 30
    if seeds is not None:
        e["seeds"] = seeds
    validate_config(cfg)
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Tiny vacuum data (4 x 40 frames) and tiny idff / otcfm checkpoints, in a temp cwd."""
    root = tmp_path_factory.mktemp("md_pipeline")
    old = os.getcwd()
    os.chdir(root)
    try:
        cfg = md_cfg()
        spec = data_spec(cfg, "md", DS)
        data = get_family("md").data_file(spec)
        jobs.run_prepare(spec, data)
        ckpts = {}
        for method in ("idff", "otcfm"):
            ckpts[method] = root / "ckpt" / f"{method}.pt"
            jobs.run_train(train_spec(cfg, "md", DS, method, 1), ckpts[method], progress=False)
        yield cfg, root, ckpts
    finally:
        os.chdir(old)


def _finite(d: dict) -> None:
    bad = {k: v for k, v in d.items() if isinstance(v, float) and not math.isfinite(v)}
    assert not bad, bad


ONE_STEP_KEYS = {"mae", "rmse", "cc", "mae_phi", "mae_psi", "rmse_phi", "rmse_psi", "cc_phi",
                 "cc_psi", "circ_cc"}


def test_prepared_data_and_training_source(trained):
    cfg, root, _ = trained
    ds = load_md_dataset(root / "resources/data/md/openmm_vacuum/dihedrals.npz")
    assert ds.source == "openmm-vacuum" and ds.n_frames == [40] * 4
    assert ds.meta["seeds"] == [11, 12, 13, 14] and ds.meta["ns_per_day_mean"] > 0
    assert (root / "resources/data/md/openmm_vacuum/traj_003.xtc").is_file()
    spec = train_spec(cfg, "md", DS, "idff", 1)
    fam = MDFamily()
    split, frame_ps, _ = fam.trajectories(spec)
    assert [len(split[k]) for k in ("train", "val", "test")] == [2, 1, 1] and frame_ps == 1.0
    everything = [t.tobytes() for k in ("train", "val", "test") for t in split[k]]
    assert len(set(everything)) == 4  # four different trajectories, none in two splits
    src = fam.train_source(spec)
    assert src.n_pairs == 2 * 39 and src.data_shape == (2,) and src.n_cond == 20
    too_many = copy.deepcopy(spec)
    too_many["data"]["n_cond"] = 41
    with pytest.raises(ConfigError, match="would never be trained: set n_cond <= 40"):
        fam.train_source(too_many)


def test_tune_sweep_floor_end_to_end(trained, tmp_path):
    cfg, _, ckpts = trained
    spec = eval_spec(cfg, "md", DS, "idff1", "euler_maruyama", 1)
    tuned = jobs.run_tune(spec, ckpts["idff"], tmp_path / "tuned.json")
    assert tuned["metric"] == "mae" and set(tuned["per_nfe"]) == {"3", "5"}
    for entry in tuned["per_nfe"].values():
        assert entry["best"]["sigma_s"] in (0.2, 0.5) and math.isfinite(entry["best_value"])
    res = jobs.run_sweep(spec, ckpts["idff"], tmp_path / "idff1.json", tuned=tmp_path / "tuned.json")
    other = jobs.run_sweep(eval_spec(cfg, "md", DS, "otcfm", "euler", 1), ckpts["otcfm"],
                           tmp_path / "otcfm.json")
    want = ONE_STEP_KEYS | {"mae_k5", "rmse_k5", "cc_k5", "mae_k5_phi", "js", "pop_err",
                            "wait_ratio", "pop_alpha_R", "pop_beta_PII"}
    for result in (res, other):
        assert [r["nfe_budget"] for r in result["rows"]] == [3, 5]
        for row in result["rows"]:
            assert want <= set(row) and row["nfe"] == row["nfe_budget"]
            _finite(row)
            assert 0 < row["mae"] < 180 and 0 <= row["js"] <= math.log(2) + 1e-9
            assert 0 <= row["pop_err"] <= 1 and row["wait_ratio"] > 0
        assert result["provenance"]["config_hash"] and "git_commit" in result["provenance"]
    assert res["rows"][0]["params"] == tuned["per_nfe"]["3"]["best"]
    floor = jobs.run_floor(spec, tmp_path / "floor.json")
    assert want <= set(floor) and floor["provenance"]["seed"] == 1
    _finite({k: v for k, v in floor.items() if k != "provenance"})
    assert json.loads((tmp_path / "floor.json").read_text())["mae"] == floor["mae"]


def test_rollout_entry_writes_npz(trained, tmp_path, capsys):
    cfg, _, ckpts = trained
    spec = eval_spec(cfg, "md", DS, "otcfm", "euler", 1)
    out = tmp_path / "r" / "nfe3_seed1.npz"
    rc = idff_main(["--no-progress", "rollout", "--spec", json.dumps(spec), "--ckpt", str(ckpts["otcfm"]),
                  "--out", str(out), "--nfe", "3"])
    assert rc == 0 and out.is_file()
    with np.load(out, allow_pickle=False) as z:
        assert z["generated"].shape == (2, 50, 2) and z["truth"].shape == (2, 40, 2)
        assert z["truth_pool"].shape == (40, 2) and float(z["frame_ps"]) == 1.0
        meta = json.loads(str(z["info"]))
        np.testing.assert_allclose(z["generated"][:, 0], z["truth"][:, 0], atol=1e-4)
    assert meta["variant"] == "otcfm" and meta["nfe"] == 3 and "js" in meta["metrics"]
    rc = idff_main(["--no-progress", "rollout", "--spec", json.dumps(spec), "--ckpt", str(tmp_path / "none.pt"),
                  "--out", str(out), "--nfe", "3"])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    bad = tmp_path / "tuned.json"
    bad.write_text("{not json")
    rc = idff_main(["--no-progress", "rollout", "--spec", json.dumps(spec), "--ckpt", str(ckpts["otcfm"]),
                  "--out", str(out), "--nfe", "3", "--tuned", str(bad)])
    assert rc == 2 and "is not valid JSON" in capsys.readouterr().err


# --- metrics on known trajectories -------------------------------------------------------------


def rotation_trajs(n_traj: int = 4, n: int = 120) -> list[np.ndarray]:
    """phi_k = phi_0 + 7 k, psi_k = psi_0 - 11 k (wrapped): crosses +-180 again and again."""
    k = np.arange(n)[:, None]
    out = []
    for i in range(n_traj):
        a = np.array([170.5 - 13 * i, -175.25 + 29 * i]) + k * STEP  # off the bin edges
        out.append(((a + 180.0) % 360.0 - 180.0).astype(np.float32))
    return out


@pytest.fixture
def synthetic(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = md_cfg()
    cfg["experiments"]["md"]["data"]["eval"] = {"k_steps": 10, "free_frames": 120, "n_free": 1}
    cfg["experiments"]["md"]["sweep"]["n_samples"] = 100_000  # every frame
    fam = MDFamily()
    path = Path(fam.data_file(data_spec(cfg, "md", DS)))
    path.parent.mkdir(parents=True)
    save_md_dataset(path, rotation_trajs(), 1.0, "openmm-vacuum")
    return cfg, fam


class StubGen:
    """A 'generator' that knows the dynamics: next = current + STEP (+ offset), in degrees."""

    def __init__(self, conv, offset: float = 0.0) -> None:
        self.conv, self.offset, self.calls = conv, offset, 0

    def __call__(self, x0, cond=None, seed=0, return_trajectory=False):
        self.calls += 1
        nxt = self.conv.from_model(x0) + STEP + self.offset  # not wrapped: may exceed 180
        return torch.as_tensor(nxt / 180.0, dtype=torch.float32) if self.conv.representation \
            == "wrapped" else self.conv.to_model(((nxt + 180) % 360) - 180)


@pytest.mark.parametrize("representation", ["wrapped", "sincos"])
def test_perfect_generator_scores_zero(synthetic, representation):
    cfg, fam = synthetic
    cfg["experiments"]["md"]["data"]["representation"] = representation
    spec = eval_spec(cfg, "md", DS, "otcfm", "euler", 1)
    m = fam.evaluate(spec, StubGen(fam.converter(spec)), "test")
    for key in ("mae", "rmse", "mae_phi", "rmse_psi", "mae_k10", "rmse_k10"):
        assert m[key] == pytest.approx(0.0, abs=2e-3), key
    assert m["cc"] == pytest.approx(1.0, abs=1e-6) and m["cc_k10"] == pytest.approx(1.0, abs=1e-6)
    # the free run from the first test frame is the test trajectory itself
    assert m["js"] == pytest.approx(0.0, abs=1e-12) and m["pop_err"] == pytest.approx(0.0)
    assert m["wait_ratio"] == pytest.approx(1.0)


def test_errors_across_the_seam_are_wrapped(synthetic):
    cfg, fam = synthetic
    spec = eval_spec(cfg, "md", DS, "otcfm", "euler", 1)
    test = fam.trajectories(spec)[0]["test"][0]
    assert np.abs(np.diff(test, axis=0)).max() > 300  # the truth jumps across +-180
    m = fam.evaluate(spec, StubGen(fam.converter(spec), offset=3.0), "test")
    for key in ("mae", "mae_phi", "mae_psi", "rmse", "rmse_phi", "rmse_psi"):
        assert m[key] == pytest.approx(3.0, abs=2e-3), key
    assert m["mae_k10"] == pytest.approx(30.0, abs=1e-2)  # 10 steps, +3 degrees each


def test_persistence_floor_in_closed_form(synthetic):
    cfg, fam = synthetic
    f = fam.floor(eval_spec(cfg, "md", DS, "otcfm", "euler", 1))
    assert f["mae_phi"] == pytest.approx(7.0, abs=1e-4)
    assert f["mae_psi"] == pytest.approx(11.0, abs=1e-4)
    assert f["mae"] == pytest.approx(9.0, abs=1e-4)
    assert f["rmse"] == pytest.approx(9.0, abs=1e-4)
    assert f["mae_k10_phi"] == pytest.approx(70.0, abs=1e-3)
    assert f["mae_k10_psi"] == pytest.approx(110.0, abs=1e-3)
    assert 0 <= f["js"] < math.log(2) and math.isfinite(f["wait_ratio"])


def test_chunked_segments_split_without_overlap(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = md_cfg(chunk_ns=0.03, chunk_gap_ns=0.005, split={"train": 6, "val": 1, "test": 2})
    fam = MDFamily()
    path = Path(fam.data_file(data_spec(cfg, "md", DS)))
    path.parent.mkdir(parents=True)
    trajs = []
    for i in range(3):  # phi encodes the frame index, psi the trajectory
        t = np.full((100, 2), 10.0 * i, np.float32)
        t[:, 0] = np.linspace(-170, 170, 100)
        trajs.append(t)
    save_md_dataset(path, trajs, 1.0, "openmm-vacuum")
    split, _, _ = fam.trajectories(train_spec(cfg, "md", DS, "idff", 1))
    segs = [s for k in ("train", "val", "test") for s in split[k]]
    # starts 0, 35, 70 in each trajectory (30 frames + a gap of 5)
    assert len(segs) == 9 and all(s.shape == (30, 2) for s in segs)
    assert {float(s[0, 1]) for s in split["test"]} == {20.0}  # file order: test = last trajectory
    assert len({s.tobytes() for s in split["test"] + split["val"]} &
               {s.tobytes() for s in split["train"]}) == 0


def test_bad_data_settings_name_the_key():
    cfg = md_cfg()
    spec = data_spec(cfg, "md", DS)
    for change, match in [({"n_trajectorys": 3}, "unknown MD setting"),
                          ({"seeds": [1, 2]}, r"data\.seeds: 4 trajectories need 4"),
                          ({"representation": "degrees"}, r"data\.representation"),
                          ({"split": {"train": 0, "val": 1, "test": 1}}, r"data\.split"),
                          ({"eval": {"k_step": 3}}, r"data\.eval: unknown")]:
        bad = copy.deepcopy(spec)
        bad["data"].update(change)
        with pytest.raises(ConfigError, match=match):
            data_settings(bad)
    over = copy.deepcopy(spec)
    over["data"]["openmm_vacuum"] = {"n_cond": 7}  # per-data-set override
    assert data_settings(over).n_cond == 7
    exp = copy.deepcopy(cfg["experiments"]["md"])
    MDFamily().check_experiment("md", exp)
    exp["data"]["eval"]["bins"] = 0
    with pytest.raises(ConfigError, match=r"experiments\.md\.data\.eval\.bins"):
        MDFamily().check_experiment("md", exp)
    bad_cfg = copy.deepcopy(cfg)  # the config check runs it (before any job)
    bad_cfg["experiments"]["md"] = exp
    with pytest.raises(ConfigError, match=r"experiments\.md\.data\.eval\.bins"):
        validate_config(bad_cfg)


def test_parallel_simulation_is_bit_identical_to_serial(tmp_path):
    kw = dict(n_trajectories=2, ns_per_trajectory=0.01, seeds=[5, 6], progress=False)
    a = load_md_dataset(simulate_parallel(tmp_path / "a", workers=1, **kw))
    b = load_md_dataset(simulate_parallel(tmp_path / "b", workers=2, **kw))
    for x, y in zip(a.trajectories, b.trajectories, strict=True):
        np.testing.assert_array_equal(x, y)
    assert b.meta["workers"] == 2 and len(b.meta["ns_per_day"]) == 2
    assert (tmp_path / "a/traj_001.xtc").read_bytes() == (tmp_path / "b/traj_001.xtc").read_bytes()
    assert not list((tmp_path / "b").glob(".parts*"))
    with pytest.raises(MDDataError, match=r"trajectory 0 \(seed 5\) failed .*: ValueError: "
                                          r"OpenMM platform 'NoSuchGPU' is not available"):
        simulate_parallel(tmp_path / "c", workers=2, platform="NoSuchGPU", **kw)


# --- report ------------------------------------------------------------------------------------


def fake_results(cfg: dict, root: Path) -> None:
    """Metric, floor and roll-out files for every job the MD targets read."""
    e = cfg["experiments"]["md"]
    for rel in table_inputs(cfg, "md"):
        p = root / rel[len("results/"):]
        p.parent.mkdir(parents=True, exist_ok=True)
        parts = rel.split("/")
        if parts[1] == "floor":
            seed = int(parts[-1][4:-5])
            p.write_text(json.dumps({"dataset": DS, "seed": seed, "mae": 21.0, "rmse": 29.0,
                                     "cc": 0.7, "mae_k10": 45.0, "rmse_k10": 57.0, "cc_k10": 0.03,
                                     "js": 0.01, "pop_err": 0.02, "wait_ratio": 1.1}))
            continue
        variant, solver, seed = parts[4], parts[5], int(parts[6][4:-5])
        rows = [{"nfe_budget": n, "nfe": n, "vjp": 0, "calls": 3, "wall_s": 0.1, "params": {},
                 "mae": 10.0 + 2 * (seed - 1) + n, "rmse": 15.0, "cc": 0.9, "mae_phi": 9.0,
                 "mae_k10": 30.0, "rmse_k10": 40.0, "cc_k10": 0.5, "js": 0.2, "pop_err": 0.1,
                 "wait_ratio": 2.0}
                for n in e["sweep"]["nfe"]]
        p.write_text(json.dumps({"dataset": DS, "variant": variant, "solver": solver,
                                 "seed": seed, "method": e["variants"][variant]["method"],
                                 "sampler": e["variants"][variant]["sampler"], "rows": rows}))
    rng = np.random.default_rng(0)
    for rel in expected_rollout_files(cfg, "md"):
        p = root / rel[len("results/"):]
        p.parent.mkdir(parents=True, exist_ok=True)
        gen = rng.uniform(-180, 180, (2, 500, 2)).astype(np.float32)
        meta = {"variant": rel.split("/")[5], "nfe_budget": 5, "params": {"sigma_s": 0.3}}
        np.savez(p, generated=gen, truth=gen[:, :300] * 0.5, truth_pool=gen[0] * 0.9,
                 frame_ps=np.float64(1.0), info=np.array(json.dumps(meta)))


def test_report_table_and_figure_from_fake_results(tmp_path):
    cfg = md_cfg(seeds=[1, 2])
    cfg["experiments"]["md"]["data"]["eval"] = {"k_steps": 10}
    fake_results(cfg, tmp_path / "results")
    assert set(TARGETS) == {"table_md", "fig_md"}
    assert all(TARGETS[t].experiment == "md" for t in TARGETS)
    assert TARGETS["fig_md"].inputs(cfg, "md") == [
        "results/samples/md/rollouts/openmm_vacuum/idff1/euler_maruyama/nfe5_seed1.npz",
        "results/samples/md/rollouts/openmm_vacuum/otcfm/euler/nfe5_seed1.npz"]
    out = tmp_path / "tables" / "table_md.md"
    files = table_md("table_md", cfg, "md", tmp_path / "results", out)
    assert [f.suffix for f in files] == [".md", ".csv", ".tex"] and all(f.is_file() for f in files)
    text = out.read_text()
    for row in ("| SRNN (quoted) | – | – | 82.6 ± 28 | 91.9 ± 25 | 0.10 ± 0.27 |",
                "| IDFF (quoted) | 5 steps | – | 10.3 ± 1.3 | 14.9 ± 2.7 | 0.93 ± 0.05 |"):
        assert row in text
    assert "NOT the explicit-water benchmark" in text
    # seeds 1 and 2 give MAE 13 and 15 at NFE 3: mean 14, sample std sqrt(2)
    assert "| OT-CFM [otcfm, euler] | 3 | 3 | 14.0 ± 1.41 | 15.0 ± 0 | 0.900 ± 0 |" in text
    assert "persistence" in text and "(quoted)" in files[2].read_text()
    csv_text = files[1].read_text()
    assert "quoted,SRNN (quoted)" in csv_text and ",mae_phi," in csv_text
    png = tmp_path / "figures" / "fig_md.png"
    figs = fig_md("fig_md", cfg, "md", tmp_path / "results", png)
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 20_000
    assert figs[1].read_text().startswith("panel,series") and "JS" in figs[2].read_text()
    stale = tmp_path / "results" / expected_rollout_files(cfg, "md")[1][len("results/"):]
    with np.load(stale) as z:
        arrays = dict(z)
    arrays["info"] = np.array(json.dumps({"variant": "idff1", "nfe_budget": 5}))
    np.savez(stale, **arrays)
    with pytest.raises(ReportInputError, match="its path says 'otcfm'"):
        fig_md("fig_md", cfg, "md", tmp_path / "results", png)
    with pytest.raises(FileNotFoundError, match="snakemake fig_md"):
        fig_md("fig_md", cfg, "md", tmp_path / "nothing", png)


def test_report_std_of_equal_values_is_zero():
    """A deterministic reference row (persistence, same on every seed) must print ± 0, not the
    ± 4e-15 of float rounding; NaN seeds are left out of the count."""
    import numpy as np

    from idff.report.md import _stat

    v = 25.499999999999993
    assert np.array([v] * 3).std(ddof=1) > 0  # the rounding this guards against
    mean, std, n = _stat([v, v, v])
    assert (std, n) == (0.0, 3) and mean == pytest.approx(v, rel=1e-15)
    mean, std, n = _stat([1.0, 3.0, float("nan")])
    assert (mean, n) == (2.0, 2) and std == pytest.approx(2 ** 0.5)
    assert _stat([5.0])[2] == 1 and math.isnan(_stat([5.0])[1])
