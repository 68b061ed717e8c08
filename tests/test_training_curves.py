"""fig_training and the DVC metrics/plots files, from small result files written here (the
curve CSV in the trainer's format: step,loss,lr,steps_per_s,wall_s)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from idff.config import validate_config
from idff.io import save_checkpoint
from idff.plan.core import metric_jobs, training_jobs
from idff.report import make_target, target_inputs
from idff.report.collect import ReportInputError
from idff.report.dvc_files import write_dvc_files
from idff.report.outputs import dvc_items
from idff.report.training import curve_path, read_curve

REPO = Path(__file__).resolve().parents[1]


def toy_cfg() -> dict:
    cfg = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    t = cfg["experiments"]["toy"]
    t.update(datasets=["moons", "checkerboard"], seeds=[0, 1],
             methods={m: t["methods"][m] for m in ("idff", "otcfm")},
             variants={"idff1": t["variants"]["idff1"], "otcfm": t["variants"]["otcfm"]})
    t["sweep"]["nfe"] = [2, 5]
    t.pop("figures", None)
    cfg["experiments"] = {"toy": t}
    cfg["paper_targets"] = {"table_toy": "results/tables/table_toy.md",
                            "fig_training": "results/figures/fig_training.png"}
    validate_config(cfg)
    return cfg


def write_curve(ckpt: Path, losses: list[float]) -> None:
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"step": 50 * (i + 1), "loss": v, "lr": 1e-3, "steps_per_s": 100.0, "wall_s": 0.5 * i}
            for i, v in enumerate(losses)]
    pd.DataFrame(rows).to_csv(curve_path(ckpt), index=False)


def write_results(cfg: dict, root: Path) -> None:
    """Curves for every checkpoint and a sweep file per job: mmd = nfe / 10 + seed / 100."""
    for job in training_jobs(cfg, ["toy"]):
        write_curve(root / job["path"], [1.0, 0.5, 0.25 + job["seed"] / 10])
    for job in metric_jobs(cfg, "toy"):
        rows = [{"nfe_budget": n, "nfe": n, "vjp": 0, "wall_s": 0.1, "calls": 1, "params": {},
                 "w2": 1.0, "mmd": n / 10 + job["seed"] / 100, "mmd_multi": 0.5,
                 "per_dim": [1.0, 2.0]} for n in job["nfes"]]
        obj = {"dataset": job["dataset"], "variant": job["variant"], "solver": job["solver"],
               "seed": job["seed"], "method": "m", "sampler": "s", "rows": rows}
        p = root / job["path"]
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(obj))


def test_read_curve_uses_the_csv_else_the_checkpoint_history(tmp_path):
    ckpt = tmp_path / "seed0.pt"
    save_checkpoint(ckpt, {"history": [[50, 2.0], [100, 1.5]]})  # a run without a curve file
    df, source = read_curve(ckpt)
    assert source == "checkpoint" and df["loss"].tolist() == [2.0, 1.5]
    write_curve(ckpt, [0.9, 0.8, 0.7])
    df, source = read_curve(ckpt)
    assert source == "curve.csv" and df["step"].tolist() == [50, 100, 150]


def test_a_curve_without_loss_is_a_clear_error(tmp_path):
    ckpt = tmp_path / "seed0.pt"
    curve_path(ckpt).write_text("step,lr\n1,0.1\n")
    with pytest.raises(ReportInputError, match=r"seed0.curve.csv lacks the column\(s\) \['loss'\]"):
        read_curve(ckpt)
    curve_path(ckpt).unlink()
    with pytest.raises(FileNotFoundError, match="snakemake fig_training"):
        read_curve(ckpt)


def test_fig_training_is_a_named_target_over_every_checkpoint(tmp_path):
    cfg = toy_cfg()
    root = tmp_path
    write_results(cfg, root)
    assert len(target_inputs("fig_training", cfg)) == 2 * 2 * 2  # data sets x methods x seeds
    files = make_target("fig_training", cfg, root / "results", root / "fig_training.png")
    png, csv, caption = files
    assert png.read_bytes()[:4] == b"\x89PNG"
    data = pd.read_csv(csv)
    assert len(data) == 8 * 3 and set(data["source"]) == {"curve.csv"}
    assert "fig_training" in caption.read_text()


def test_dvc_files_one_metrics_file_per_variant_and_nfe_and_one_series_per_variant(tmp_path):
    cfg = toy_cfg()
    write_results(cfg, tmp_path)
    summary, plots = tmp_path / "summary", tmp_path / "plots"
    write_dvc_files(cfg, "toy", tmp_path / "results", summary, plots)
    names = sorted(p.name for p in summary.iterdir())
    assert names == ["idff1_nfe2.json", "idff1_nfe5.json", "otcfm_nfe2.json", "otcfm_nfe5.json"]
    m = json.loads((summary / "idff1_nfe5.json").read_text())
    assert set(m) == {"moons", "checkerboard"}
    assert m["moons"]["mmd"] == pytest.approx(0.5 + 0.005)  # mean over seeds 0 and 1
    assert "per_dim" not in m["moons"] and "wall_s" not in m["moons"]
    table = pd.read_csv(plots / "nfe" / "moons.mmd.csv")
    assert list(table.columns) == ["nfe", "series", "value"]
    assert sorted(set(table["series"])) == ["idff1", "otcfm"] and sorted(set(table["nfe"])) == [2, 5]
    curves = pd.read_csv(plots / "training" / "moons.csv")
    assert list(curves.columns) == ["step", "series", "loss"]
    assert sorted(set(curves["series"])) == ["idff seed0", "idff seed1", "otcfm seed0", "otcfm seed1"]
    assert not (tmp_path / "plots.tmp").exists() and not (tmp_path / "summary.tmp").exists()


def test_dvc_paper_items_name_only_the_folders_a_target_reads():
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    items = dvc_items(cfg["paper_targets"], cfg)
    deps = lambda t: {items[t][k] for k in ("in1", "in2", "in3", "in4")}  # noqa: E731
    assert deps("table_toy") == {"results/metrics/toy", "results/floor/toy"}
    assert deps("fig_samples") == {"results/samples/cifar10", "results/samples/celeba"}
    assert deps("fig_training") == {"results/checkpoints"}   # all experiments: the whole folder
    assert all("md" not in d for t in items if t.endswith("toy") for d in deps(t))
