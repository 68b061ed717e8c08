"""The images family end to end on tiny offline images, resume, sample grids, the image report
and the GPU benchmark script's CPU path."""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import math
import pickle
import statistics
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from idff.cli import main as idff_main
from idff.config import data_spec, eval_spec, sweep_nfes, train_spec, validate_config
from idff.data import images as im
from idff.families import get_family
from idff.families import images as fam
from idff.io import DIGEST_KEY, load_checkpoint
from idff.metrics import images as mi
from idff.plan import images as plan_images
from idff.report import images as rep
from idff.report.collect import ReportInputError
from idff.steps import jobs
from idff.train import resume_path

ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY_MODEL = {"arch": "unet", "model_channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1,
              "attention_resolutions": [], "num_heads": 2, "num_head_channels": -1,
              "dropout": 0.1, "norm_groups": 4}


def tiny_cfg(dataset: str = "offline_cifar", extractor: str = mi.TINY) -> dict:
    cfg = {"paper_targets": {}, "experiments": {"cifar10": {
        "family": "images", "datasets": [dataset], "seeds": [0],
        "data": {"image_size": 8, "n": 64, "n_heldout": 16, "hflip": True, "n_fid_samples": 16,
                 "fid_batch": 32, "feature_extractor": extractor, "kid_subsets": 4},
        "model": dict(TINY_MODEL),
        "train": {"steps": 10, "batch_size": 8, "lr": 2e-3, "warmup": 2, "ema_decay": 0.9,
                  "ckpt_every": 5},
        "methods": {"idff": {"sigma": 0.2}, "otcfm": {"sigma": 0.0}},
        "variants": {"idff1": {"method": "idff", "sampler": "idff1",
                               "tune": {"sigma_s": [0.2, 0.6]}},
                     "cfm": {"method": "idff", "sampler": "cfm"},
                     "otcfm": {"method": "otcfm", "sampler": "native"}},
        "sweep": {"solvers": ["euler"], "nfe": [2, 3], "n_samples": 16, "batch_size": 10},
        "tune": {"n_samples": 12},
        "figures": {"samples": {"nfe": 3, "n": 6, "nrow": 3}}}}}
    validate_config(cfg)
    return cfg


def cpu(spec: dict) -> dict:
    return {**spec, "device": "cpu"}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the family's data files live under resources/ (relative)
    return tmp_path


# ---------------------------------------------------------------------- data and metrics


def test_prepare_splits_offline_sets_are_disjoint(tmp_path):
    out = im.prepare_image_splits("offline_faces", tmp_path / "f.npz", n_heldout=30, image_size=16)
    train, held = im.load_image_dataset(out), im.load_heldout(out)
    assert train.shape == (70, 16, 16, 3) and held.shape == (30, 16, 16, 3)
    faces = im.offline_faces(16, n=100)
    assert np.array_equal(train, faces[:70]) and np.array_equal(held, faces[70:])
    crops = im.prepare_image_splits("offline_cifar", tmp_path / "c.npz", n=20, n_heldout=10,
                                    seed=3, image_size=8)
    assert np.array_equal(im.load_image_dataset(crops), im.offline_cifar_like(20, seed=3, size=8))
    assert np.array_equal(im.load_heldout(crops), im.offline_cifar_like(10, seed=4, size=8))
    with pytest.raises(ValueError, match="must not exceed 100"):
        im.prepare_image_splits("offline_faces", tmp_path / "x.npz", n=90, n_heldout=20)
    with pytest.raises(ValueError, match="data.n must be an integer >= 2"):
        im.prepare_image_splits("offline_cifar", tmp_path / "x.npz", n=1)
    old = im.prepare_image_dataset("offline_cifar", tmp_path / "old.npz", n=4)
    with pytest.raises(im.ImageDataError, match="no 'heldout'"):
        im.load_heldout(old)


def _fake_cifar(path: Path, n: int = 4) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for k, name in enumerate([*im.CIFAR10_BATCHES["train"], *im.CIFAR10_BATCHES["test"]]):
            data = np.full((n, 3072), 10 * k, np.uint8)
            blob = pickle.dumps({b"data": data, b"labels": [0] * n}, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def test_prepare_cifar10_uses_train_and_test_split(tmp_path):
    _fake_cifar(tmp_path / im.CIFAR10_FILE)
    out = im.prepare_image_splits("cifar10", tmp_path / "c.npz", root=tmp_path, download=False)
    train, held = im.load_image_dataset(out), im.load_heldout(out)
    assert train.shape == (20, 32, 32, 3) and held.shape == (4, 32, 32, 3)
    assert set(np.unique(train)) == {0, 10, 20, 30, 40} and set(np.unique(held)) == {50}
    assert im.read_image_meta(out)["stand_in"] is False
    with pytest.raises(ValueError, match="32 x 32"):
        im.prepare_image_splits("cifar10", tmp_path / "c.npz", root=tmp_path, download=False,
                                image_size=64)


def test_reference_metrics_equal_torch_fidelity_call():
    real = im.offline_cifar_like(60, seed=0, size=16)
    fake = im.offline_faces(16, n=40)
    ref = mi.ReferenceMetrics(real, feature_extractor=mi.TINY, kid_subsets=5)
    ours = ref(fake)
    theirs = mi.compute_image_metrics(fake, real, feature_extractor=mi.TINY, kid_subsets=5)
    for key in ("fid", "kid_mean", "kid_std", "isc_mean", "isc_std"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-9, abs=1e-12)
    assert ours["comparable"] is False and ours["kid_subset_size"] == 40
    assert abs(ref(real)["fid"]) < 1e-6  # a set against itself


def test_to_uint8_copies_agree():
    x = torch.linspace(-1.2, 1.2, 97).reshape(1, 1, 97, 1)
    assert torch.equal(fam.to_uint8(x), mi.to_uint8(x))
    assert fam.to_uint8(torch.tensor([-1.0, 0.0, 1.0])).tolist() == [0, 128, 255]


def test_data_settings_reject_typos():
    spec = {"experiment": "cifar10", "dataset": "offline_cifar", "data": {"hflp": True}}
    with pytest.raises(ValueError, match=r"unknown image setting\(s\) \['hflp'\]"):
        fam.data_settings(spec)


# ---------------------------------------------------------------------- the family end to end


def test_family_end_to_end(workdir):
    cfg = tiny_cfg()
    family = get_family("images")
    dspec = data_spec(cfg, "cifar10", "offline_cifar")
    path = family.data_file(dspec)
    assert path == "resources/data/cifar10/offline_cifar/images.npz"
    jobs.run_prepare(dspec, path)
    for method in ("idff", "otcfm"):
        summary = jobs.run_train(cpu(train_spec(cfg, "cifar10", "offline_cifar", method, 0)),
                                 workdir / f"{method}.pt", progress=False)
        assert summary["steps"] == 10 and math.isfinite(summary["final_loss"])
    spec = cpu(eval_spec(cfg, "cifar10", "offline_cifar", "idff1", "euler", 0))
    tuned = jobs.run_tune(spec, workdir / "idff.pt", workdir / "tuned.json")
    assert tuned["metric"] == "fid" and set(tuned["per_nfe"]) == {"2", "3"}
    for per in tuned["per_nfe"].values():
        assert per["best"]["sigma_s"] in (0.2, 0.6)
        assert per["best_value"] == min(r["value"] for r in per["grid"])
    res = jobs.run_sweep(spec, workdir / "idff.pt", workdir / "m.json", tuned=workdir / "tuned.json")
    for row in res["rows"]:
        assert row["nfe"] == row["nfe_budget"] and row["calls"] == 2  # 16 samples, batches of 10
        assert row["params"] == tuned["per_nfe"][str(row["nfe_budget"])]["best"]
        assert row["comparable"] == 0.0 and row["n_samples"] == 16 and row["nonfinite"] == 0
        assert all(math.isfinite(row[k]) for k in ("fid", "kid", "kid_std", "isc", "isc_std"))
        assert row["fid"] > 0 and row["isc"] >= 1.0
    assert res["provenance"]["config_hash"] and res["provenance"]["nfe"] == [2, 3]
    ot = jobs.run_sweep(cpu(eval_spec(cfg, "cifar10", "offline_cifar", "otcfm", "euler", 0)),
                        workdir / "otcfm.pt", workdir / "o.json")
    assert [r["nfe"] for r in ot["rows"]] == [2, 3]
    floor = jobs.run_floor(spec, workdir / "floor.json")
    assert floor["n_samples"] == 16 and floor["n_heldout"] == 16 and floor["comparable"] == 0
    # the floor (real vs real) lies well below the tiny network's samples
    assert 0 <= floor["fid"] < min(r["fid"] for r in res["rows"])
    saved = json.loads((workdir / "m.json").read_text())
    assert saved["rows"][0]["fid"] == res["rows"][0]["fid"]


def test_trainer_runs_the_unet_under_bf16_autocast(workdir):
    cfg = tiny_cfg()
    cfg["experiments"]["cifar10"]["train"].update(steps=3, bf16=True)
    family = get_family("images")
    dspec = data_spec(cfg, "cifar10", "offline_cifar")
    jobs.run_prepare(dspec, family.data_file(dspec))
    summary = jobs.run_train(cpu(train_spec(cfg, "cifar10", "offline_cifar", "idff", 0)),
                             workdir / "bf16.pt", progress=False)
    assert summary["steps"] == 3 and math.isfinite(summary["final_loss"])
    state = load_checkpoint(workdir / "bf16.pt")
    assert all(v.dtype == torch.float32 for v in state["model"].values() if v.is_floating_point())


class ReplayGenerator:
    """Stands in for a Generator: returns given images (in [-1, 1]) batch by batch, or NaN."""

    def __init__(self, images: np.ndarray, nan_batch: int | None = None):
        self.x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
        self.device, self.pos, self.calls, self.nan_batch = torch.device("cpu"), 0, 0, nan_batch

    def __call__(self, x0, cond=None, seed=0):
        out = self.x[self.pos:self.pos + len(x0)].clone()
        self.pos += len(x0)
        if self.calls == self.nan_batch:
            out[0, 0, 0, 0] = float("nan")
        self.calls += 1
        return out


def test_evaluate_scores_against_the_training_split(workdir):
    """Samples equal to the reference images give FID 0; a NaN sample gives NaN metrics."""
    cfg = tiny_cfg()
    cfg["experiments"]["cifar10"]["data"].update(n=16, n_fid_samples=16)
    family = get_family("images")
    dspec = data_spec(cfg, "cifar10", "offline_cifar")
    jobs.run_prepare(dspec, family.data_file(dspec))
    spec = cpu(eval_spec(cfg, "cifar10", "offline_cifar", "idff1", "euler", 0))
    train = im.load_image_dataset(family.data_file(dspec))
    res = family.evaluate(spec, ReplayGenerator(train), "test")
    assert abs(res["fid"]) < 1e-6 and res["comparable"] == 0.0 and res["n_samples"] == 16
    bad = family.evaluate(spec, ReplayGenerator(train, nan_batch=1), "test")
    assert math.isnan(bad["fid"]) and math.isnan(bad["kid"]) and bad["nonfinite"] == 1
    # noise: seeded per (seed, split, batch); val and test differ, reruns agree
    a = list(family.prior_noise(spec, "val", 12, (3, 8, 8), 10))
    b = list(family.prior_noise(spec, "val", 12, (3, 8, 8), 10))
    c = list(family.prior_noise(spec, "test", 12, (3, 8, 8), 10))
    assert [x.shape[0] for x, _ in a] == [10, 2]
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(a, b, strict=True))
    assert not torch.equal(a[0][0], c[0][0])


def test_resume_after_interruption_is_bit_equal(workdir):
    cfg = tiny_cfg()
    family = get_family("images")
    dspec = data_spec(cfg, "cifar10", "offline_cifar")
    jobs.run_prepare(dspec, family.data_file(dspec))
    spec = cpu(train_spec(cfg, "cifar10", "offline_cifar", "idff", 0))
    assert spec["model"]["dropout"] > 0 and spec["data"]["hflip"]
    jobs.run_train(spec, workdir / "full.pt", progress=False)

    class Killed(RuntimeError):
        pass

    def kill_at_7(step, loss):
        if step == 7:
            raise Killed
        return loss

    out = workdir / "resumed.pt"
    with pytest.raises(Killed):
        jobs.run_train(spec, out, progress=False, on_step=kill_at_7)
    assert not out.exists()
    saved = load_checkpoint(resume_path(out))
    assert saved["step"] == 5  # ckpt_every 5
    seen = []
    jobs.run_train(spec, out, progress=False, on_step=lambda s, loss: seen.append(s) or loss)
    assert seen[0] == 5 and seen[-1] == 9  # continued from the saved step
    assert not resume_path(out).exists()
    a, b = load_checkpoint(workdir / "full.pt"), load_checkpoint(out)
    assert a["step"] == b["step"] == 10
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(),
                      strict=True):
        assert all(torch.equal(pa[k], pb[k]) for k in ("step", "exp_avg", "exp_avg_sq"))
    assert a["scheduler"] == b["scheduler"] and a["history"] == b["history"]


def test_samples_entry_writes_npz(workdir, capsys):
    cfg = tiny_cfg()
    cfg["experiments"]["cifar10"]["train"]["steps"] = 3
    family = get_family("images")
    dspec = data_spec(cfg, "cifar10", "offline_cifar")
    jobs.run_prepare(dspec, family.data_file(dspec))
    jobs.run_train(cpu(train_spec(cfg, "cifar10", "offline_cifar", "idff", 0)), workdir / "i.pt",
                   progress=False)
    spec = cpu(eval_spec(cfg, "cifar10", "offline_cifar", "idff1", "euler", 0))
    (workdir / "tuned.json").write_text(json.dumps(  # the identity keys `idff tune` records
        {"experiment": "cifar10", "dataset": "offline_cifar", "variant": "idff1",
         "solver": "euler", "seed": 0, "per_nfe": {"3": {"best": {"sigma_s": 0.6}}},
         "checkpoint_sha256": load_checkpoint(workdir / "i.pt")[DIGEST_KEY]}))
    out = workdir / "results/image_samples/x.npz"
    rc = idff_main(["--no-progress", "samples", "--spec", json.dumps(spec), "--ckpt", str(workdir / "i.pt"),
                   "--out", str(out), "--nfe", "3", "--n", "5",
                   "--tuned", str(workdir / "tuned.json")])
    assert rc == 0
    images, info = rep.load_sample_grid(out)
    assert images.shape == (5, 8, 8, 3) and images.dtype == np.uint8
    assert info["nfe"] == 3 and info["params"] == {"sigma_s": 0.6} and info["variant"] == "idff1"
    assert info["provenance"]["seed"] == 0
    rc = idff_main(["--no-progress", "samples", "--spec", json.dumps(spec), "--ckpt", str(workdir / "i.pt"),
                   "--out", str(out), "--nfe", "2", "--tuned", str(workdir / "tuned.json")])
    assert rc == 2 and "no tuned parameters for NFE 2" in capsys.readouterr().err


# ---------------------------------------------------------------------- report


def report_cfg(comparable: bool) -> dict:
    cfg = tiny_cfg("cifar10" if comparable else "offline_cifar",
                   mi.INCEPTION if comparable else mi.TINY)
    e = cfg["experiments"]["cifar10"]
    e["seeds"] = [0, 1]
    e["sweep"]["nfe"] = [2, 10, 100]
    e["figures"]["samples"]["nfe"] = 10
    cfg["paper_targets"] = {"table_cifar10": "results/tables/table_cifar10.md",
                            "fig_samples": "results/figures/fig_samples.png",
                            "fig_nfe_images": "results/figures/fig_nfe_images.png"}
    validate_config(cfg)
    return cfg


FID_BASE = {"idff1": 10.0, "cfm": 20.0, "otcfm": 15.0}


def fid_value(variant: str, nfe: int, seed: int) -> float:
    return FID_BASE[variant] * 10 / nfe + seed


def write_results(cfg: dict, root: Path, comparable: float = 1.0, odd: str | None = None) -> None:
    e = cfg["experiments"]["cifar10"]
    for job in rep.metric_jobs(cfg, "cifar10"):
        var = e["variants"][job["variant"]]
        rows = [{"nfe_budget": n, "nfe": n, "vjp": 0, "calls": 2, "wall_s": 0.1 * n,
                 "params": {"sigma_s": 0.4} if job["variant"] == "idff1" else {},
                 "fid": fid_value(job["variant"], n, job["seed"]), "kid": 0.001 * n,
                 "kid_std": 0.0, "isc": {"idff1": 3.0, "cfm": 5.0, "otcfm": 4.0}[job["variant"]],
                 "isc_std": 0.1, "n_samples": 16.0, "nonfinite": 0.0,
                 "comparable": 0.0 if job["variant"] == odd else comparable}
                for n in job["nfes"]]
        _write(root / job["path"][len("results/"):], {
            "job": "sweep", "dataset": job["dataset"], "variant": job["variant"],
            "method": var["method"], "sampler": var["sampler"], "solver": job["solver"],
            "seed": job["seed"], "rows": rows})
    for ds in e["datasets"]:
        for seed in e["seeds"]:
            _write(root / f"floor/cifar10/{ds}/seed{seed}.json", {
                "dataset": ds, "seed": seed, "fid": 1.0 + seed, "kid": 0.0, "kid_std": 0.0,
                "isc": 6.0, "isc_std": 0.1, "comparable": comparable, "n_samples": 16.0})
    for job in plan_images.sample_jobs(cfg):
        path = root / job["path"][len("results/"):]
        path.parent.mkdir(parents=True, exist_ok=True)
        level = {"idff1": 50, "cfm": 100, "otcfm": 200}[job["variant"]]
        info = {"nfe": job["nfe"], "params": {"sigma_s": 0.4}, "nonfinite": 0}
        np.savez(path, images=np.full((6, 8, 8, 3), level, np.uint8),
                 info=np.str_(json.dumps(info)))


def _write(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_report_inputs_and_settings():
    cfg = report_cfg(False)
    files = rep.table_inputs(cfg, "cifar10")
    assert "results/metrics/cifar10/offline_cifar/idff1/euler/seed1.json" in files
    assert "results/floor/cifar10/offline_cifar/seed0.json" in files and len(files) == 3 * 2 + 2
    assert plan_images.sample_inputs(cfg, "cifar10") == [
        f"results/samples/cifar10/images/offline_cifar/{v}/euler/nfe10_seed0.npz"
        for v in ("idff1", "cfm", "otcfm")]
    cfg["experiments"]["cifar10"]["figures"]["samples"]["nfe"] = 7
    with pytest.raises(ValueError, match="not an NFE the sweep runs"):
        plan_images.sample_settings(cfg, "cifar10")
    cfg["experiments"]["cifar10"]["figures"]["samples"] = {"variants": ["nope"]}
    with pytest.raises(ValueError, match="'nope' is not a variant"):
        plan_images.sample_settings(cfg, "cifar10")
    cfg["experiments"]["cifar10"]["figures"]["samples"] = {}
    assert plan_images.sample_settings(cfg, "cifar10")["nfe"] == 10  # the default: 10 when swept


def test_table_not_comparable_keeps_quoted_numbers_out(tmp_path):
    cfg = report_cfg(False)
    results = tmp_path / "results"
    write_results(cfg, results, comparable=0.0)
    out = tmp_path / "t" / "table_cifar10.md"
    written = rep.TARGETS["table_cifar10"].build("table_cifar10", cfg, "cifar10", results, out)
    assert sorted(p.suffix for p in written) == [".csv", ".md", ".tex"]
    md = out.read_text()
    assert "NOT COMPARABLE: test feature extractor" in md
    body, quoted = md.split("## Published numbers (quoted)")
    assert "(quoted)" not in body and "5.87" not in body  # no published number in the tables
    assert "5.87" in quoted and "NOT comparable" in quoted and "100 forward passes" in md
    csv = pd.read_csv(out.with_suffix(".csv"))
    assert set(csv["source"]) == {"measured", "floor"} and set(csv["comparable"]) == {0}
    tex = out.with_suffix(".tex").read_text()
    assert "quoted" not in tex and "Not comparable" in tex
    # numbers: idff1 at NFE 10 over seeds 0, 1 -> FID 10 and 11
    row = csv[(csv.variant == "idff1") & (csv.nfe_budget == 10) & (csv.metric == "fid")].iloc[0]
    assert row["mean"] == pytest.approx(10.5) and row["std"] == pytest.approx(
        statistics.stdev([10, 11]))
    # IS: higher is better -> cfm (5.0) bold; FID: lower is better -> idff1 bold
    is_block = md.split("IS — NOT COMPARABLE")[1].split("###")[0]
    assert next(x for x in is_block.splitlines() if x.startswith("| cfm")).count("**") == 6
    fid_block = md.split("FID — NOT COMPARABLE")[1].split("###")[0]
    assert next(x for x in fid_block.splitlines() if x.startswith("| idff1")).count("**") == 6
    assert "| floor (held-out real) | 1.50 ± 0.707 |" in fid_block


def test_table_comparable_quotes_published_numbers(tmp_path):
    cfg = report_cfg(True)
    results = tmp_path / "results"
    write_results(cfg, results, comparable=1.0)
    out = tmp_path / "table_cifar10.md"
    rep.write_image_table("table_cifar10", cfg, "cifar10", results, out)
    md = out.read_text()
    assert "NOT COMPARABLE" not in md
    fid_block = md.split("### cifar10: FID")[1].split("###")[0]
    readme = next(x for x in fid_block.splitlines() if "README" in x)
    assert "(quoted)" in readme and readme.rstrip(" |").endswith("5.87")  # at 100 passes
    assert any("DPM-Solver-v3" in x and "2.51" in x for x in fid_block.splitlines())
    csv = pd.read_csv(out.with_suffix(".csv"))
    quoted = csv[csv.source == "quoted"]
    assert set(quoted["mean"]) == {5.87, 2.78, 2.51, 3.87, 4.70, 1.97, 3.5}
    assert "| OT-CFM (adaptive dopri5) (quoted) | about 3.5 |" in md
    assert "(quoted)" in out.with_suffix(".tex").read_text()
    # one result file from the test extractor makes the whole table not comparable
    write_results(cfg, results, comparable=1.0, odd="cfm")
    rep.write_image_table("table_cifar10", cfg, "cifar10", results, out)
    assert "NOT COMPARABLE: some result files" in out.read_text()
    assert set(pd.read_csv(out.with_suffix(".csv"))["source"]) == {"measured", "floor"}


def test_figures_write_png_csv_and_caption(tmp_path):
    cfg = report_cfg(False)
    results = tmp_path / "results"
    write_results(cfg, results, comparable=0.0)
    written = rep.fig_nfe_images("fig_nfe_images", cfg, "cifar10", results,
                                 tmp_path / "f" / "fig_nfe_images.png")
    png, csv, cap = written
    assert png.read_bytes()[:8] == PNG_MAGIC and cap.name == "fig_nfe_images.caption.md"
    data = pd.read_csv(csv)
    assert "quoted" not in set(data["source"])  # not comparable: no published points drawn
    cur = data[(data.series == "otcfm (euler)") & (data.nfe == 2)].iloc[0]
    assert cur["fid_mean"] == pytest.approx(statistics.mean([75.0, 76.0]))
    assert "NOT COMPARABLE" in cap.read_text()
    png, csv, cap = rep.fig_samples("fig_samples", cfg, "cifar10", results,
                                    tmp_path / "f" / "fig_samples.png")
    assert png.read_bytes()[:8] == PNG_MAGIC
    grids = pd.read_csv(csv)
    assert list(grids["variant"]) == ["idff1", "cfm", "otcfm"]
    assert list(grids["pixel_mean"]) == [50.0, 100.0, 200.0] and set(grids["n_images"]) == {6}
    assert "Stand-in" in cap.read_text()
    bad = results / plan_images.sample_jobs(cfg)[0]["path"][len("results/"):]
    np.savez(bad, images=np.zeros((2, 8, 8, 3), np.float32), info=np.str_("{}"))
    with pytest.raises(ReportInputError, match="need uint8"):
        rep.fig_samples("fig_samples", cfg, "cifar10", results, tmp_path / "f" / "s.png")
    bad.unlink()
    with pytest.raises(FileNotFoundError, match="is missing"):
        rep.fig_samples("fig_samples", cfg, "cifar10", results, tmp_path / "f" / "s.png")


def test_tile_places_images_in_rows():
    imgs = np.stack([np.full((2, 2, 3), i, np.uint8) for i in range(5)])
    grid = rep.tile(imgs, nrow=3, pad=1)
    assert grid.shape == (2 * 3 + 1, 3 * 3 + 1, 3)
    assert grid[1, 1, 0] == 0 and grid[1, 4, 0] == 1 and grid[4, 4, 0] == 4
    assert grid[4, 7, 0] == 255  # the empty sixth cell stays white


# ---------------------------------------------------------------------- configs and benchmark


@pytest.mark.parametrize("name", ["smoke", "paper"])
def test_image_experiments_of_the_configs_are_valid(name):
    import yaml

    frag = yaml.safe_load((ROOT / f"config/{'smoke' if name == 'smoke' else 'config'}.yaml").read_text())
    validate_config(copy.deepcopy(frag))
    assert {"table_cifar10", "table_celeba", "fig_samples", "fig_nfe_images"} <= set(frag["paper_targets"])
    for exp in ("cifar10", "celeba"):
        e = frag["experiments"][exp]
        fam.data_settings({"experiment": exp, "dataset": e["datasets"][0], "data": e["data"]})
        plan_images.sample_settings(frag, exp)
        assert e["data"]["feature_extractor"] == (mi.TINY if name == "smoke" else mi.INCEPTION)
    if name == "paper":
        c = frag["experiments"]["cifar10"]
        assert c["train"]["lr"] == 2e-4 and frag["experiments"]["celeba"]["train"]["lr"] == 1e-5
        assert sweep_nfes(c, "midpoint") == [2, 10, 20, 50, 100]
        assert c["data"]["n_fid_samples"] == 50000


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("gpu_images", ROOT / "benchmarks/gpu_images.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_loss_matches_library_idff():
    from idff.flows.methods import IDFF
    from idff.models.unet import UNet

    bench = _load_benchmark()
    model = UNet(3, 6, 8, **{k: v for k, v in TINY_MODEL.items() if k != "arch"}).eval()
    x1 = torch.rand(4, 3, 8, 8) * 2 - 1
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x0 = torch.randn(x1.shape, generator=g1)
    lib = IDFF(sigma=0.2, w_flow=2.0).loss(model, x0, x1, generator=g1).loss
    assert bench.idff_loss(model, x1, g2, sigma=0.2, w_flow=2.0).item() == pytest.approx(
        lib.item(), rel=1e-6)


def test_benchmark_runs_tiny_on_cpu(tmp_path, capsys):
    bench = _load_benchmark()
    out = tmp_path / "bench" / "gpu_images.json"
    assert bench.main([str(out), "--tiny", "--device", "cpu", "--steps", "2", "--no-compile",
                       "--sample-repeats", "1", "--train-steps", "4", "--nfe", "4"]) == 0
    res = json.loads(out.read_text())
    assert res["tiny"] and res["complete"] and res["unet"]["parameters"] > 0
    assert [(r["channels_last"], r["compile"]) for r in res["train_throughput"]] == [
        (False, False), (True, False)]
    assert all(r["images_per_s"] > 0 and math.isfinite(r["loss"]) for r in res["train_throughput"])
    assert [s["nfe"] for s in res["sampling"]] == [4, 4]  # counted forward passes
    run = res["training_run"]
    assert run["steps"] == 4 and len(run["curve"]) == 4 and math.isfinite(run["loss_last"])
    assert "wrote" in capsys.readouterr().out


def test_image_figures_read_every_image_experiment(smoke_cfg):
    """fig_samples and fig_nfe_images span all image experiments: the report rule must hand
    them every image experiment's config slice, not only the one they are filed under (a
    slice of cifar10 alone silently dropped CelebA from both figures)."""
    from idff.report import TARGETS

    images = [n for n, e in smoke_cfg["experiments"].items() if e["family"] == "images"]
    assert len(images) == 2
    for target in ("fig_samples", "fig_nfe_images"):
        assert TARGETS[target].experiments(smoke_cfg) == images
    assert TARGETS["table_celeba"].experiments(smoke_cfg) == ["celeba"]
    assert TARGETS["table_toy"].experiments(smoke_cfg) == ["toy"]
