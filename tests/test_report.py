"""Report targets from a synthetic results tree: CSV numbers, Markdown, LaTeX, figures, errors."""

from __future__ import annotations

import copy
import json
import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from idff.config import sweep_nfes, validate_config
from idff.data.toy import toy_split
from idff.metrics.distribution import mmd2_rbf
from idff.plan.core import (
    expected_floor_files,
    expected_metric_files,
    expected_sample_files,
    toy_orders_settings,
)
from idff.report import TARGETS, make_target, target_inputs
from idff.report.collect import ReportInputError, load_samples
from idff.report.render import fmt_sig

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATASETS = ["8gaussians", "moons"]
SEEDS = [0, 1]
BASE = {"otcfm": 2.0, "idff1": 1.0, "idff2": 0.5, "idff3": 0.8}


def make_cfg() -> dict:
    cfg = {
        "paper_targets": {"table_toy": "results/tables/table_toy.md",
                          "fig_nfe": "results/figures/fig_nfe.png",
                          "fig_toy_orders": "results/figures/fig_toy_orders.png"},
        "experiments": {"toy": {
            "family": "toy", "datasets": DATASETS, "seeds": SEEDS,
            "data": {"n_train": 1000}, "model": {"arch": "mlp", "hidden": 16, "depth": 2},
            "train": {"steps": 10, "batch_size": 32, "lr": 1e-3},
            "methods": {"otcfm": {"sigma": 0.0}, "idff": {"sigma": 0.2}},
            "variants": {
                "otcfm": {"method": "otcfm", "sampler": "native", "label": "OT-CFM"},
                "idff1": {"method": "idff", "sampler": "idff1", "solvers": ["euler", "heun"]},
                "idff2": {"method": "idff", "sampler": "idff2", "tune": {"gamma1": [0.0, 0.2]}},
                "idff3": {"method": "idff", "sampler": "idff3"},
            },
            "sweep": {"solvers": ["euler"], "nfe": [1, 2, 4], "n_samples": 64},
        }},
    }
    validate_config(cfg)  # the fixture must be a config the pipeline accepts
    return cfg


def metric_value(metric: str, variant: str, solver: str, nfe: int, seed: int) -> float:
    scale = {"w2": 1.0, "mmd": 1e-3, "mmd_biased": 1.5e-3, "mmd_multi": 2e-3}[metric]
    bump = 0.3 if solver == "heun" else 0.0
    return scale * (BASE[variant] / nfe + bump + 0.1 * seed + 0.01 * nfe * seed)


def floor_value(metric: str, dataset: str, seed: int) -> float:
    return {"w2": 0.05, "mmd": 1e-5, "mmd_biased": 1.5e-5, "mmd_multi": 2e-5}[metric] * (1 + seed) * (
        1 + DATASETS.index(dataset))


def measured_nfe(solver: str, budget: int) -> int:
    return 2 * ((budget + 1) // 2) - 1 if solver == "heun" else budget


def write_tree(cfg: dict, root: Path) -> None:
    exp = cfg["experiments"]["toy"]
    for rel in expected_metric_files(cfg, "toy"):
        _, _, _, ds, variant, solver, seed_file = rel.split("/")
        seed = int(seed_file[4:-5])
        var = exp["variants"][variant]
        nfes = sweep_nfes(exp, solver)
        order = {"idff2": 2, "idff3": 3}.get(variant, 0)
        rows = [{"nfe_budget": n, "nfe": measured_nfe(solver, n), "vjp": order * n, "steps": n,
                 "wall_s": 0.01 * n, "params": {"gamma1": 0.2} if variant == "idff2" else {},
                 **{m: metric_value(m, variant, solver, n, seed)
                    for m in ("w2", "mmd", "mmd_biased", "mmd_multi")}} for n in nfes]
        obj = {"job": "sweep", "split": "test", "experiment": "toy", "dataset": ds,
               "variant": variant, "method": var["method"], "sampler": var["sampler"],
               "solver": solver, "seed": seed, "rows": rows, "provenance": {}}
        _write(root / rel[len("results/"):], obj)
    for rel in expected_floor_files(cfg, "toy"):
        _, _, _, ds, seed_file = rel.split("/")
        seed = int(seed_file[4:-5])
        _write(root / rel[len("results/"):],
               {"job": "floor", "experiment": "toy", "dataset": ds, "seed": seed,
                **{m: floor_value(m, ds, seed) for m in ("w2", "mmd", "mmd_biased", "mmd_multi")},
                "provenance": {}})


def write_samples(cfg: dict, root: Path, n: int = 200) -> None:
    for rel in expected_sample_files(cfg, "toy"):
        ds = rel.split("/")[3]
        truth = toy_split(ds, "test", n, 0).numpy()
        noise = 0.1 * BASE[rel.split("/")[4]]  # each variant its own (known) blur
        x0 = np.random.default_rng(0).standard_normal((n, 2))
        samples = truth + noise * np.random.default_rng(1).standard_normal((n, 2))
        traj = np.stack([x0, (x0 + samples) / 2, samples]).astype(np.float32)
        path = root / rel[len("results/"):]
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, samples=samples.astype(np.float32), trajectory=traj)


def _write(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


@pytest.fixture
def tree(tmp_path: Path) -> tuple[dict, Path]:
    cfg = make_cfg()
    results = tmp_path / "results"
    write_tree(cfg, results)
    return cfg, results


def test_expected_files_follow_the_config() -> None:
    cfg = make_cfg()
    files = expected_metric_files(cfg, "toy")
    # 2 data sets x (3 variants x euler + idff1 x heun) x 2 seeds
    assert len(files) == 2 * 5 * 2
    assert "results/metrics/toy/moons/idff1/heun/seed1.json" in files
    assert "results/metrics/toy/moons/idff2/heun/seed1.json" not in files
    assert expected_floor_files(cfg, "toy") == [
        f"results/floor/toy/{ds}/seed{s}.json" for ds in DATASETS for s in SEEDS]
    samples = expected_sample_files(cfg, "toy")
    assert samples[0] == "results/samples/toy/8gaussians/otcfm/euler/nfe2_seed0.npz"
    assert len(samples) == 2 * 4
    assert target_inputs("table_toy", cfg) == files + expected_floor_files(cfg, "toy")


def test_orders_settings_are_checked() -> None:
    cfg = make_cfg()
    cfg["experiments"]["toy"]["figures"] = {"toy_orders": {"variants": ["otcfm", "nope"]}}
    with pytest.raises(ValueError, match="toy_orders.variants.*'nope'"):
        toy_orders_settings(cfg, "toy")
    cfg["experiments"]["toy"]["figures"] = {"toy_orders": {"solver": "rk4"}}
    with pytest.raises(ValueError, match="not run with solver 'rk4'"):
        toy_orders_settings(cfg, "toy")
    cfg["experiments"]["toy"]["figures"] = {
        "toy_orders": {"variants": ["idff1"], "solver": {"idff1": "heun"}, "nfe": 3}}
    assert expected_sample_files(cfg, "toy")[0].endswith("idff1/heun/nfe3_seed0.npz")


def test_table_numbers_markdown_and_latex(tree: tuple[dict, Path], tmp_path: Path) -> None:
    cfg, results = tree
    out = tmp_path / "out" / "tables" / "table_toy.md"
    written = make_target("table_toy", cfg, results, out)
    assert sorted(p.suffix for p in written) == [".csv", ".md", ".tex"]
    assert all(p.is_file() and p.stem == "table_toy" for p in written)

    csv = pd.read_csv(out.with_suffix(".csv"))
    assert list(csv.columns) == ["dataset", "variant", "method", "sampler", "solver", "nfe_budget",
                                 "nfe", "vjp", "metric", "mean", "std", "n_seeds", "wall_s"]
    # idff2 at NFE 4 on moons: w2 = 0.5/4 + 0.1*seed + 0.04*seed for seeds 0, 1
    vals = [0.125, 0.125 + 0.1 + 0.04]
    row = csv[(csv.dataset == "moons") & (csv.variant == "idff2") & (csv.nfe_budget == 4)
              & (csv.metric == "w2")].iloc[0]
    assert row["mean"] == pytest.approx(statistics.mean(vals), rel=1e-7)
    assert row["std"] == pytest.approx(statistics.stdev(vals), rel=1e-7)
    assert row["n_seeds"] == 2 and row["vjp"] == 8 and row["nfe"] == 4
    assert (row["method"], row["sampler"], row["solver"]) == ("idff", "idff2", "euler")
    # heun with an even budget spends one pass less: the measured NFE is kept
    heun = csv[(csv.variant == "idff1") & (csv.solver == "heun") & (csv.nfe_budget == 2)]
    assert set(heun["nfe"]) == {1}
    floor = csv[(csv.variant == "floor") & (csv.dataset == "moons") & (csv.metric == "mmd")]
    assert floor["mean"].iloc[0] == pytest.approx(statistics.mean([2e-5, 4e-5]))
    assert floor["std"].iloc[0] == pytest.approx(statistics.stdev([2e-5, 4e-5]))
    # rows: 2 data sets x 4 metrics x (4 euler curves + heun) x 3 NFE, plus 2 x 4 floor rows
    assert len(csv) == 2 * 4 * 5 * 3 + 2 * 4

    md = out.read_text()
    assert "| target floor |" in md
    # best W2 at NFE 1 on 8gaussians is idff2: mean(0.5, 0.5 + 0.11) = 0.555
    w2_block = md.split("### 8gaussians: W2")[1].split("###")[0]
    best_row = next(line for line in w2_block.splitlines() if line.startswith("| idff2 (euler)"))
    assert best_row.split("|")[2].strip() == f"**0.555 ± {fmt_sig(statistics.stdev([0.5, 0.61]))}**"
    assert "**" not in next(line for line in w2_block.splitlines()
                            if line.startswith("| target floor"))
    assert md.count("**") == 2 * (2 * 4 * 3)  # one bold cell per column of every pivot
    assert "×10⁻³" in md and "seeds" in md.lower() and "vjp" in md
    assert "4 + 8 vjp" in md  # the cost table lists autograd passes beside forward passes

    tex = out.with_suffix(".tex").read_text()
    assert tex.count(r"\begin{tabular}") == 2 * 4 == tex.count(r"\end{tabular}")
    assert r"\toprule" in tex and r"\textbf{" in tex and r"$\pm$" in tex
    assert "idff1 (heun)" in tex and "Target floor" in tex


def test_fmt_sig() -> None:
    assert fmt_sig(0.0123456) == "0.0123"
    assert fmt_sig(12.345) == "12.3"
    assert fmt_sig(1.5e-7) == "1.50e-07"
    assert fmt_sig(-0.5) == "-0.500"
    assert fmt_sig(float("nan")) == "–"


def test_single_seed_and_diverged_seed(tree: tuple[dict, Path], tmp_path: Path) -> None:
    cfg, results = tree
    path = results / "metrics/toy/moons/otcfm/euler/seed1.json"
    obj = json.loads(path.read_text())
    obj["rows"][0]["w2"] = None  # a diverged run stored as null
    path.write_text(json.dumps(obj))
    out = tmp_path / "t.csv"
    make_target("table_toy", cfg, results, out)
    csv = pd.read_csv(out)
    row = csv[(csv.dataset == "moons") & (csv.variant == "otcfm") & (csv.nfe_budget == 1)
              & (csv.metric == "w2")].iloc[0]
    assert row["n_seeds"] == 1 and row["mean"] == pytest.approx(2.0) and math.isnan(row["std"])
    assert "(n=1)" in out.with_suffix(".md").read_text()


def test_missing_and_bad_files_are_named(tree: tuple[dict, Path], tmp_path: Path) -> None:
    cfg, results = tree
    gone = results / "metrics/toy/moons/idff3/euler/seed1.json"
    gone.unlink()
    with pytest.raises(FileNotFoundError, match=r"idff3/euler/seed1\.json.*snakemake table_toy"):
        make_target("table_toy", cfg, results, tmp_path / "t.md")
    gone.write_text("{not json")
    with pytest.raises(ReportInputError, match="seed1.json is not valid JSON"):
        make_target("table_toy", cfg, results, tmp_path / "t.md")
    _write(gone, {"dataset": "moons"})
    with pytest.raises(ReportInputError, match=r"lacks key\(s\)"):
        make_target("table_toy", cfg, results, tmp_path / "t.md")
    cfg2 = copy.deepcopy(cfg)
    cfg2["experiments"]["toy"]["sweep"]["nfe"] = [1, 2, 4, 8]
    write_tree(cfg, results)
    with pytest.raises(ReportInputError, match=r"NFE budget\(s\) \[8\].*stale"):
        make_target("table_toy", cfg2, results, tmp_path / "t.md")
    (results / "floor/toy/moons/seed0.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"floor/toy/moons/seed0\.json"):
        make_target("fig_nfe", cfg, results, tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists() and not (tmp_path / "t.md").exists()


def test_unknown_target_and_bad_output(tree: tuple[dict, Path], tmp_path: Path) -> None:
    cfg, results = tree
    with pytest.raises(ValueError, match="unknown report target 'table_nope'.*table_toy.*fig_nfe"):
        make_target("table_nope", cfg, results, tmp_path / "x.md")
    with pytest.raises(ValueError, match="must end in one of"):
        make_target("table_toy", cfg, results, tmp_path / "x.txt")
    with pytest.raises(ValueError, match="must be a .png"):
        make_target("fig_nfe", cfg, results, tmp_path / "x.pdf")
    assert set(TARGETS) >= {"table_toy", "fig_nfe", "fig_toy_orders"}


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_MAGIC
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_fig_nfe_is_a_png(tree: tuple[dict, Path], tmp_path: Path) -> None:
    cfg, results = tree
    out = tmp_path / "figs" / "fig_nfe.png"
    written = make_target("fig_nfe", cfg, results, out)
    # the companions named by idff.report.outputs.paper_outputs
    assert [p.name for p in written] == ["fig_nfe.png", "fig_nfe.csv", "fig_nfe.caption.md"]
    w, h = _png_size(out)
    assert w > 400 and h > 200 and 0 < out.stat().st_size < 300_000
    data = pd.read_csv(written[1])
    assert set(data["metric"]) == {"w2", "mmd"}  # the plotted metrics only
    row = data[(data.dataset == "moons") & (data.variant == "idff2") & (data.nfe_budget == 4)
               & (data.metric == "w2")].iloc[0]
    assert row["mean"] == pytest.approx(statistics.mean([0.125, 0.265]))
    assert "NFE" in written[2].read_text() and "floor" in written[2].read_text()


def test_fig_toy_orders(tree: tuple[dict, Path], tmp_path: Path) -> None:
    cfg, results = tree
    with pytest.raises(FileNotFoundError, match=r"samples/toy/8gaussians/otcfm/euler/nfe2_seed0"):
        make_target("fig_toy_orders", cfg, results, tmp_path / "o.png")
    write_samples(cfg, results)
    out = tmp_path / "o.png"
    written = make_target("fig_toy_orders", cfg, results, out)
    assert [p.name for p in written] == ["o.png", "o.csv", "o.caption.md"]
    w, h = _png_size(out)
    assert w > h > 200 and 0 < out.stat().st_size < 300_000
    data = pd.read_csv(written[1])
    assert len(data) == len(DATASETS) * 4 and set(data["steps"]) == {2}
    # MMD per panel = mmd2_rbf(samples, same-size test draw); a blurrier variant scores worse
    row = data[(data.dataset == "moons") & (data.variant == "idff2")].iloc[0]
    samples, _ = load_samples(results / "samples/toy/moons/idff2/euler/nfe2_seed0.npz")
    assert row["mmd"] == pytest.approx(mmd2_rbf(samples, toy_split("moons", "test", 200, 0)))
    by_variant = data[data.dataset == "moons"].set_index("variant")["mmd"]
    assert by_variant["otcfm"] > by_variant["idff2"]  # blur 0.2 vs 0.05


def test_load_samples_checks_shapes(tmp_path: Path) -> None:
    path = tmp_path / "s.npz"
    np.savez(path, samples=np.zeros((5, 2)), trajectory=np.zeros((3, 4, 2)))
    with pytest.raises(ReportInputError, match=r"trajectory has shape \(3, 4, 2\)"):
        load_samples(path)
    np.savez(path, samples=np.zeros((5, 2)))
    with pytest.raises(ReportInputError, match=r"lacks array\(s\) \['trajectory'\]"):
        load_samples(path)


def test_mmd_title() -> None:
    from idff.report.figures import mmd_of, mmd_text

    truth = toy_split("moons", "test", 100, 0).numpy()
    samples = truth + 0.5
    assert mmd_of(samples, truth) == mmd2_rbf(samples, truth)
    assert mmd_text(1.234e-3) == "MMD² 1.23 ×10⁻³"
    assert math.isnan(mmd_of(np.full((4, 2), np.nan), truth)) and "n/a" in mmd_text(float("nan"))


def test_family_without_floor(tree: tuple[dict, Path], tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    from idff.families import FamilyBase
    from idff.families.toy import ToyFamily

    cfg, results = tree
    monkeypatch.setattr(ToyFamily, "floor", FamilyBase.floor)  # a family without the floor hook
    assert expected_floor_files(cfg, "toy") == []
    make_target("table_toy", cfg, results, tmp_path / "t.md")
    assert "target floor" not in (tmp_path / "t.md").read_text()
    assert "floor" not in set(pd.read_csv(tmp_path / "t.csv")["variant"])
    assert "Target floor" not in (tmp_path / "t.tex").read_text()


def test_cli_report(tree: tuple[dict, Path], tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from idff.cli import main

    cfg, results = tree
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "tables" / "table_toy.md"
    assert main(["report", "table_toy", "--config", str(cfg_file), "--results", str(results),
                 "--out", str(out)]) == 0
    assert out.with_suffix(".tex").is_file()
    assert main(["report", "table_x", "--config", str(cfg_file), "--results", str(results),
                 "--out", str(out)]) == 2
    assert "valid: table_toy, fig_nfe, fig_toy_orders" in capsys.readouterr().err


def test_written_files_match_the_rule_outputs(tree: tuple[dict, Path], tmp_path: Path) -> None:
    """make_target writes exactly what the Snakemake rule declares (idff.report.outputs)."""
    outputs = pytest.importorskip("idff.report.outputs")
    cfg, results = tree
    write_samples(cfg, results, n=64)
    for target, path in cfg["paper_targets"].items():
        written = make_target(target, cfg, results, tmp_path / path)
        assert [p.relative_to(tmp_path).as_posix() for p in written] == \
            outputs.paper_outputs(target, path)


def test_files_whose_ids_disagree_with_their_path_are_refused(tree: tuple[dict, Path],
                                                              tmp_path: Path) -> None:
    """A metric or floor file copied to the wrong place (another variant, seed or data set) must
    not be averaged in silently: the shared loaders (collect.sweep_results / floor_results, used by
    every family's report) name the file and what its path says."""
    cfg, results = tree
    path = results / "metrics/toy/moons/otcfm/euler/seed1.json"
    obj = json.loads(path.read_text())
    _write(path, {**obj, "variant": "icfm"})
    with pytest.raises(ReportInputError, match=r"seed1\.json holds variant 'icfm', but its path "
                                               r"says 'otcfm'"):
        make_target("table_toy", cfg, results, tmp_path / "t.md")
    _write(path, obj)
    floor = results / "floor/toy/moons/seed0.json"
    _write(floor, {**json.loads(floor.read_text()), "seed": 7})
    with pytest.raises(ReportInputError, match=r"holds data set 'moons' seed 7, but its path "
                                               r"says 'moons' seed 0"):
        make_target("table_toy", cfg, results, tmp_path / "t.md")
    assert not (tmp_path / "t.md").exists()
