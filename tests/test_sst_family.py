"""The SST data family end to end on the real offline OSTIA field, and its report targets."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from idff import layout
from idff.cli import main as idff_main
from idff.config import data_spec, eval_spec, train_spec, validate_config
from idff.data.sst import SSTDataError, SSTDataset, SSTLeadPairs, forecast_windows
from idff.families import get_family
from idff.families.sst import (
    SSTConfigError,
    SSTFamily,
    SSTSettings,
    forecast_chunk,
    is_deterministic,
    iter_forecasts,
)
from idff.metrics.probabilistic import LeadScoreAccumulator, per_lead_scores
from idff.plan.core import metric_jobs
from idff.plan.sst import expected_forecast_files
from idff.report.sst import TARGETS, fig_sst, figure_inputs, table_sst
from idff.steps import jobs, network

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "config" / "smoke.yaml"  # the sst experiment of the smoke config
TINY_DATA = {"boxes": [4, 5, 14], "n_members": 3, "n_windows": 4, "n_windows_val": 4,
             "eval_batch": 6}
TINY_MODEL = {"model_channels": 8, "norm_groups": 8}
TINY_TRAIN = {"steps": 25, "batch_size": 16, "ckpt_every": 1000}


def tiny_config() -> dict:
    cfg = yaml.safe_load(SMOKE.read_text())
    e = cfg["experiments"]["sst"]
    e["data"].update(TINY_DATA)
    e["model"].update(TINY_MODEL)
    e["train"].update(TINY_TRAIN)
    e["variants"]["pf"] = {"method": "idff", "sampler": "pf"}
    validate_config(cfg)
    return cfg


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A working directory with the tiny OSTIA data set and a trained IDFF UNet."""
    root = tmp_path_factory.mktemp("sst")
    cfg = tiny_config()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors; see conftest.one_thread
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        family = get_family("sst")
        dspec = data_spec(cfg, "sst", "ostia")
        jobs.run_prepare(dspec, family.data_file(dspec))
        tspec = train_spec(cfg, "sst", "ostia", "idff", 0)
        tspec["device"] = "cpu"
        summary = jobs.run_train(tspec, "ckpt.pt", progress=False)
        yield {"root": root, "cfg": cfg, "ckpt": root / "ckpt.pt", "summary": summary}
    torch.set_num_threads(threads)


def espec(work: dict, variant: str, solver: str, **data) -> dict:
    spec = eval_spec(work["cfg"], "sst", "ostia", variant, solver, 0)
    spec["device"] = "cpu"
    spec["data"].update(data)
    return spec


def test_family_trains_a_unet_and_tunes_sweeps_and_floors(work, monkeypatch):
    monkeypatch.chdir(work["root"])
    assert isinstance(get_family("sst"), SSTFamily) and SSTFamily.default_metric == "crps"
    assert work["summary"]["steps"] == 25 and np.isfinite(work["summary"]["final_loss"])
    meta = torch.load(work["ckpt"], weights_only=True)["meta"]
    assert meta["data_shape"] == [1, 16, 16] and meta["n_cond"] == 7
    assert meta["model"]["arch"] == "unet"
    spec = espec(work, "idff1", "euler_maruyama")
    tuned = jobs.run_tune(spec, work["ckpt"], "tuned.json")
    assert tuned["metric"] == "crps" and set(tuned["per_nfe"]) == {"3", "5"}
    assert len(tuned["per_nfe"]["3"]["grid"]) == 2  # sigma_s 0.2 and 1.0
    res = jobs.run_sweep(spec, work["ckpt"], "sweep.json", tuned="tuned.json")
    assert [r["nfe_budget"] for r in res["rows"]] == [3, 5]
    for row in res["rows"]:
        assert row["nfe"] == row["nfe_budget"] and row["calls"] == 7 * 2  # 7 leads, 2 chunks
        assert row["params"] == tuned["per_nfe"][str(row["nfe_budget"])]["best"]
        keys = {"crps", "mse", "ssr", "spread", "crps_raw", "mse_raw"}
        keys |= {f"{m}_{h}" for m in ("crps", "mse", "ssr", "crps_raw") for h in range(1, 8)}
        assert keys <= set(row) and all(np.isfinite(row[k]) for k in keys)
        assert row["n_members"] == 3 and row["n_windows"] == 4
        assert row["crps"] == pytest.approx(np.mean([row[f"crps_{h}"] for h in range(1, 8)]))
        assert 0 < row["crps"] <= np.sqrt(row["mse"]) * 1.01 + row["spread"]
    assert res["provenance"]["config_hash"] and json.loads(Path("sweep.json").read_text())
    floor = jobs.run_floor(spec, "floor.json")
    for ref in ("persistence", "climatology", "climatology_mean"):
        assert np.isfinite(floor[f"{ref}.crps"]) and np.isfinite(floor[f"{ref}.mse_7"])
    assert "persistence.ssr" not in floor and floor["climatology.n_members"] == 2  # 2 Jan-Mar years


class Oracle:
    """A perfect generator: looks the start field up in the data set and returns the truth."""

    def __init__(self, data: SSTDataset, direct: bool) -> None:
        self.fields, self.direct = data.sst, direct
        self.index = {data.sst[b, t].tobytes(): (b, t) for b in range(data.sst.shape[0])
                      for t in range(data.sst.shape[1])}

    def __call__(self, x0, cond, seed=0, return_trajectory=False):
        out = []
        for x, c in zip(x0.numpy(), cond.tolist(), strict=True):
            b, t = self.index[x[0].astype(np.float32).tobytes()]
            out.append(self.fields[b, t + (c + 1 if self.direct else 1)])
        return torch.from_numpy(np.stack(out))[:, None]


@pytest.mark.parametrize("pairing", ["direct", "step"])
def test_a_perfect_generator_scores_zero(work, monkeypatch, pairing):
    monkeypatch.chdir(work["root"])
    spec = espec(work, "bridge_sde", "euler_maruyama", pairing=pairing)
    family = SSTFamily()
    scores = family.evaluate(spec, Oracle(family.dataset(spec), pairing == "direct"), "test")
    for h in range(1, 8):
        assert scores[f"crps_{h}"] == pytest.approx(0, abs=1e-9)
        assert scores[f"mse_{h}"] == pytest.approx(0, abs=1e-12)
        assert scores[f"crps_raw_{h}"] == pytest.approx(0, abs=1e-6)


def test_persistence_floor_equals_a_hand_computation_on_one_window(work, monkeypatch):
    monkeypatch.chdir(work["root"])
    spec = espec(work, "idff1", "euler_maruyama", n_windows=1)
    floor = SSTFamily().floor(spec)
    data = SSTFamily().dataset(spec)
    w = forecast_windows(data, "test", 7)
    ctx, ocean = w.context[0, 0].astype(np.float64), ~w.land[0, 0]
    for h in range(1, 8):
        err = (ctx - w.truth[0, h - 1, 0])[ocean]
        assert floor[f"persistence.crps_{h}"] == pytest.approx(np.abs(err).mean(), rel=1e-9)
        assert floor[f"persistence.mse_{h}"] == pytest.approx((err ** 2).mean(), rel=1e-9)
        assert floor[f"climatology_mean.mse_{h}"] == pytest.approx(
            (w.truth[0, h - 1, 0].astype(np.float64)[ocean] ** 2).mean(), rel=1e-6)
    assert floor["persistence.crps"] == pytest.approx(
        np.mean([floor[f"persistence.crps_{h}"] for h in range(1, 8)]))
    assert floor["n_windows"] == 1


def _gen(work, variant: str, solver: str, **data):
    spec = espec(work, variant, solver, **data)
    net, sigma = network.load_net(spec, work["ckpt"], torch.device("cpu"))
    return spec, network.make_generator(spec, net, sigma, 5, {}, torch.device("cpu"))


def _members(work, variant: str, solver: str, **data) -> np.ndarray:
    spec, gen = _gen(work, variant, solver, **data)
    s = SSTSettings.from_spec(spec)
    win = SSTFamily().windows(spec, "test")
    (_, ens), *_ = iter_forecasts(gen, win, s, seed=0, split="test",
                                  x0_noise=s.x0_noise_for(variant))
    return ens  # [b, L, M, 1, H, W]


def test_members_differ_for_a_stochastic_sampler_and_not_for_an_ode(work, monkeypatch):
    monkeypatch.chdir(work["root"])
    sde = _members(work, "bridge_sde", "euler_maruyama")
    assert sde.shape[1:4] == (7, 3, 1) and sde.std(axis=2).mean() > 1e-3
    # an ODE run on every member gives identical members, so the family runs it once
    spec, gen = _gen(work, "pf", "euler")
    win = SSTFamily().windows(spec, "test")
    full = forecast_chunk(gen, torch.from_numpy(win.context[:2]), torch.from_numpy(win.cond[:2]),
                          torch.from_numpy(~win.land[:2]), 3, "direct", list(range(8)))
    np.testing.assert_array_equal(full[:, :, 0], full[:, :, 1])
    assert is_deterministic(gen) and not is_deterministic(_gen(work, "idff1", "euler_maruyama")[1])
    np.testing.assert_allclose(_members(work, "pf", "euler")[:2], full, atol=1e-5)
    perturbed = _members(work, "pf", "euler", x0_noise={"pf": 0.2})
    assert perturbed.std(axis=2).mean() > 1e-3
    # land stays 0 in every member
    land = np.zeros(sde.shape, bool)
    land[..., :2, :3] = True  # pretend a corner is land
    win = SSTFamily().windows(espec(work, "pf", "euler"), "test")
    win.land[:] = land[:1, 0, 0].repeat(len(win), 0)
    s = SSTSettings.from_spec(espec(work, "bridge_sde", "euler_maruyama"))
    net, sigma = network.load_net(espec(work, "bridge_sde", "euler_maruyama"), work["ckpt"],
                               torch.device("cpu"))
    gen = network.make_generator(espec(work, "bridge_sde", "euler_maruyama"), net, sigma, 3, {},
                              torch.device("cpu"))
    (_, masked), *_ = iter_forecasts(gen, win, s, seed=0, split="test")
    assert not masked[..., :2, :3].any() and masked[..., 5:, 5:].std() > 0


def test_direct_pairs_are_h_steps_apart_and_labelled_h_minus_1():
    times = pd.date_range("2000-01-01", "2003-12-01", freq="MS")
    split = np.where(times.year <= 2001, "train", np.where(times.year == 2002, "val", "test"))
    t = len(times)
    data = SSTDataset(path=Path("synthetic.nc"),
                      sst=np.broadcast_to(np.arange(t, dtype=np.float32)[None, :, None, None],
                                          (2, t, 2, 2)).copy(),
                      land=np.zeros((2, 2, 2), bool), time=times.values, year=times.year.values,
                      period=times.month.values - 1, split=split, box_ids=np.array([1, 2]),
                      lat=np.zeros((2, 2)), lon=np.zeros((2, 2)),
                      clim_mean=np.zeros((2, 12, 2, 2)), clim_std=np.ones((2, 12, 2, 2)),
                      step="month")
    pairs = SSTLeadPairs(data, "train", horizon=7)
    assert pairs.n_cond == 7 and pairs.n_pairs == 2 * sum(24 - h for h in range(1, 8))
    x0, x1, cond = pairs.sample_batch(5000, torch.Generator().manual_seed(0))
    k0, k1 = x0[:, 0, 0, 0].long(), x1[:, 0, 0, 0].long()
    assert torch.equal(k1 - k0, cond + 1) and int(k1.max()) == 23  # never into 2002
    counts = torch.bincount(cond, minlength=7).float()
    assert counts.min() > 0.8 * counts.mean()  # leads drawn uniformly
    with pytest.raises(SSTDataError, match="no pair 12 steps apart"):
        SSTLeadPairs(data, "val", horizon=13)


def test_accumulated_chunks_equal_per_lead_scores_on_everything():
    rng = np.random.default_rng(0)
    obs, ens = rng.normal(size=(9, 4, 5, 5)), rng.normal(size=(9, 4, 6, 5, 5))
    w = rng.random((9, 1, 5, 5)) > 0.2
    full = per_lead_scores(obs, ens, member_axis=2, lead_axis=1, weights=w)
    acc = LeadScoreAccumulator()
    for sl in (slice(0, 4), slice(4, 5), slice(5, 9)):
        acc.add(obs[sl], ens[sl], member_axis=2, lead_axis=1, weights=w[sl])
    got = acc.result()
    for key in ("crps", "mse", "spread", "ssr"):
        np.testing.assert_allclose(got[key], full[key], rtol=1e-12)
    with pytest.raises(ValueError, match="members"):
        acc.add(obs, ens[:, :, :2], member_axis=2, lead_axis=1)


def test_bad_settings_name_the_key():
    base = {"experiment": "sst", "data": {}}
    with pytest.raises(SSTConfigError, match=r"experiments\.sst\.data.*n_member"):
        SSTSettings.from_spec({**base, "data": {"n_member": 5}})
    with pytest.raises(SSTConfigError, match="cond: lead"):
        SSTSettings.from_spec({**base, "data": {"pairing": "direct", "cond": "season"}})
    with pytest.raises(SSTConfigError, match=r"x0_noise\.otcfm"):
        SSTSettings.from_spec({**base, "data": {"x0_noise": {"otcfm": -1}}})
    with pytest.raises(SSTConfigError, match="n_windows"):
        SSTSettings.from_spec({**base, "data": {"n_windows": 0}})


def test_forecast_entry_writes_its_npz(work, monkeypatch, capsys):
    monkeypatch.chdir(work["root"])
    spec = json.dumps(espec(work, "bridge_sde", "euler_maruyama"))
    out = work["root"] / "fc" / "nfe3_seed0.npz"
    assert idff_main(["--no-progress", "forecast", "--spec", spec, "--ckpt", str(work["ckpt"]), "--nfe", "3",
                 "--window", "1", "--out", str(out)]) == 0
    with np.load(out) as z:
        assert z["truth"].shape == z["mean"].shape == z["spread"].shape == (7, 16, 16)
        assert z["members"].shape == (3, 7, 16, 16) and (z["spread"] >= 0).all()
        np.testing.assert_allclose(z["mean"], z["members"].mean(axis=0), rtol=1e-6)
        info = json.loads(str(z["info"]))
        raw = z["truth_raw"][:, ~z["land"]]
    assert info["nfe"] == 3 and info["window"] == 1 and len(info["target_times"]) == 7
    assert 290 < raw.min() and raw.max() < 310  # Kelvin
    assert idff_main(["--no-progress", "forecast", "--spec", spec, "--ckpt", str(work["ckpt"]), "--nfe", "3",
                 "--window", "99", "--out", str(out)]) == 2
    assert "window 99 does not exist" in capsys.readouterr().err


def _fake_results(cfg: dict, results: Path) -> None:
    """Metric, floor and forecast files as the pipeline writes them (two seeds)."""
    rng = np.random.default_rng(0)

    def scores(prefix: str = "", n: int = 5) -> dict:
        out = {f"{prefix}n_members": float(n)}
        for m in ("crps", "mse", "ssr", "spread", "crps_raw", "mse_raw"):
            lead = np.sort(rng.random(7)) + 0.2
            out[f"{prefix}{m}"] = float(lead.mean())
            out.update({f"{prefix}{m}_{h}": float(v) for h, v in enumerate(lead, 1)})
        return out

    for job in metric_jobs(cfg, "sst"):
        rows = [{"nfe_budget": n, "nfe": n, "vjp": 0, "calls": 7, "wall_s": 0.1, "params": {},
                 **scores()} for n in job["nfes"]]
        obj = {"job": "sweep", "dataset": job["dataset"], "variant": job["variant"],
               "method": "idff", "sampler": "x", "solver": job["solver"], "seed": job["seed"],
               "rows": rows}
        path = results / job["path"].removeprefix("results/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj))
    for seed in cfg["experiments"]["sst"]["seeds"]:
        floor = {"dataset": "ostia", "seed": seed}
        for ref in ("persistence", "climatology", "climatology_mean"):
            floor.update(scores(f"{ref}."))
        path = results / layout.path("floor", exp="sst", dataset="ostia", seed=seed).removeprefix("results/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(floor))
    land = np.zeros((16, 16), bool)
    land[:2, :3] = True
    info = {"box_id": 4, "context_time": "2010-01-01", "step": "month", "n_members": 5,
            "target_times": [f"2010-0{h + 1}-01" for h in range(1, 8)]}
    for rel in expected_forecast_files(cfg, "sst"):
        path = results / rel.removeprefix("results/")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, context=rng.normal(size=(16, 16)), truth=rng.normal(size=(7, 16, 16)),
                 mean=rng.normal(size=(7, 16, 16)), spread=rng.random((7, 16, 16)), land=land,
                 info=np.array(json.dumps(info)))


def test_report_builds_table_sst_and_fig_sst_from_a_results_tree(tmp_path):
    cfg = copy.deepcopy(tiny_config())
    cfg["experiments"]["sst"]["seeds"] = [0, 1]
    cfg["experiments"]["sst"]["figures"]["sst"]["variants"] = ["idff1", "otcfm"]
    validate_config(cfg)
    results = tmp_path / "results"
    _fake_results(cfg, results)
    assert set(TARGETS) == {"table_sst", "fig_sst"} and TARGETS["fig_sst"].experiment == "sst"
    assert len(figure_inputs(cfg, "sst")) == 4 * 2 + 2 + 2  # metric files + floors + forecasts
    files = table_sst("table_sst", cfg, "sst", results, tmp_path / "t" / "table_sst.md")
    assert [f.suffix for f in files] == [".md", ".csv", ".tex"] and all(f.is_file() for f in files)
    md = files[0].read_text()
    for label in ("Perturbation", "Dropout", "DDPM", "MCVD", "DYffusion", "IDFF (paper)"):
        assert f"| {label} (quoted) |" in md
    assert "0.180 ± 0.024" in md and "not comparable" in md and "| lead 7 |" in md
    assert "persistence (last observed field)" in md and " ± " in md.split("## ostia")[1]
    csv = pd.read_csv(files[1])
    assert set(csv["kind"]) == {"quoted", "reference", "ours"}
    assert (csv[csv["kind"] == "quoted"]["source"].str.contains("quoted|paper")).all()
    ours = csv[(csv["kind"] == "ours") & (csv["metric"] == "crps") & (csv["lead"] == "avg")]
    assert set(ours["nfe_budget"]) == {3, 5} and (ours["n_seeds"] == 2).all()
    assert r"\toprule" in files[2].read_text()
    figs = fig_sst("fig_sst", cfg, "sst", results, tmp_path / "f" / "fig_sst.png")
    assert [f.name for f in figs] == ["fig_sst.png", "fig_sst.csv", "fig_sst.caption.md"]
    assert figs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plotted = pd.read_csv(figs[1])
    assert {"map", "lead"} == set(plotted["panel"]) and "persistence" in set(plotted["row"])
    assert "not comparable" in figs[2].read_text()
    (results / "floor" / "sst" / "ostia" / "seed1.json").unlink()
    with pytest.raises(FileNotFoundError, match="seed1.json"):
        table_sst("table_sst", cfg, "sst", results, tmp_path / "t" / "table_sst.md")


def test_oisst_prepare_fetches_the_split_years_and_boxes_daily_fields(tmp_path, monkeypatch):
    """The oisst branch: years and download settings go to fetch_oisst_years, the PSL-layout
    files it returns are boxed by day of year, and the family trains and forecasts on them."""
    import xarray as xr

    import idff.families.sst as fam

    lat, lon = np.linspace(-3.5, 3.5, 8), np.linspace(180.5, 195.5, 16)
    paths = []
    for year in range(2000, 2007):  # two leap years for day 366
        times = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
        rng = np.random.default_rng(year)
        sst = (25 + np.sin(times.dayofyear.values / 58.0)[:, None, None]
               + rng.normal(0, 0.3, (len(times), 8, 16))).astype(np.float32)
        path = tmp_path / f"sst.day.mean.{year}.nc"
        xr.Dataset({"sst": (("time", "lat", "lon"), sst)},
                   coords={"time": times, "lat": lat, "lon": lon}).to_netcdf(path)
        paths.append(path)
    calls = []

    def fake_fetch(years, dest_dir, **kw):
        calls.append((tuple(years), str(dest_dir), kw))
        return paths

    monkeypatch.setattr(fam, "fetch_oisst_years", fake_fetch)
    monkeypatch.chdir(tmp_path)
    data = {"box": 4, "boxes": None, "lat_range": None, "train_years": "2000-2004",
            "val_years": "2005", "test_years": "2006", "std_mode": "box", "raw_dir": "raw",
            "retries": 7, "n_members": 2, "n_windows": 3}
    spec = {"experiment": "sst", "family": "sst", "dataset": "oisst", "seed": 0, "data": data}
    family = SSTFamily()
    family.prepare(spec, family.data_file(spec))
    assert calls == [(tuple(range(2000, 2007)), "raw",
                      {"base_url": fam.OISST_BASE_URL, "retries": 7, "timeout": 600.0})]
    ds = family.dataset(spec)
    assert ds.step == "day" and ds.sst.shape == (8, 7 * 365 + 2, 4, 4) and ds.n_periods == 366
    src = family.train_source(spec)
    assert isinstance(src, SSTLeadPairs) and src.data_shape == (1, 4, 4)
    win = family.windows(spec, "test")
    assert len(win) == 3 and set(np.asarray(ds.year)[win.start]) == {2006}
