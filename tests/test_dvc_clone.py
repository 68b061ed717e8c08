"""DVC as a new user meets it: a fresh clone (only the files git tracks), the committed `.dvc/`
with its default remote beside the clone, the smoke settings through params.yaml, one table
through DVC, metrics and plots, push, and a second clone that pulls and recomputes nothing.

To fit the CI budget the clone's config/smoke.yaml is cut to the toy experiment on one data set
with two methods (about a dozen jobs); everything else is the repository as committed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from workflow_helpers import BIN, REPO, digests, run, smoke_config

from idff.config import validate_config


def dvc(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    return run([str(BIN / "dvc"), *args], cwd, **kw)


def git(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run(["git", *args], cwd)


def small_smoke() -> dict:
    """config/smoke.yaml's toy experiment on moons with idff and otcfm, and table_toy only."""
    cfg = smoke_config()
    t = cfg["experiments"]["toy"]
    t.update(datasets=["moons"], data={"n_train": 2000},
             methods={m: t["methods"][m] for m in ("idff", "otcfm")},
             variants={"idff1": {"method": "idff", "sampler": "idff1",
                                 "tune": {"sigma_s": [0.0, 0.5]}, "label": "IDFF order 1"},
                       "otcfm": {"method": "otcfm", "sampler": "native", "label": "OT-CFM"}},
             sweep={**t["sweep"], "nfe": [2, 5], "n_samples": 200},
             tune={"n_samples": 100, "metric": "mmd"})
    t.pop("figures", None)
    t["train"].update(steps=100, ckpt_every=50, keep_every=0)
    cfg["experiments"] = {"toy": t}
    cfg["paper_targets"] = {"table_toy": cfg["paper_targets"]["table_toy"]}
    validate_config(cfg)
    return cfg


def fresh_repo(dest: Path) -> Path:
    """A git repository holding exactly the files a clone of this checkout would (tracked and
    not-ignored new files, as they are in the working tree), committed."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / "config" / "smoke.yaml").write_text(yaml.safe_dump(small_smoke(), sort_keys=False))
    git(["init", "-q"], dest)
    git(["add", "-A"], dest)
    git(["commit", "-qm", "fresh"], dest)
    return dest


@pytest.fixture(scope="module")
def dvc_clones(tmp_path_factory):
    """Clone 1 reproduces table_toy on the smoke settings through DVC and pushes to the default
    remote; clone 2 pulls. Returns the paths and the outputs of the commands the tests check."""
    base = tmp_path_factory.mktemp("dvc")
    origin = fresh_repo(base / "origin")
    work = base / "work"
    work.mkdir()
    one, two = work / "one", work / "two"
    git(["clone", "-q", str(origin), str(one)], work)
    out = {"stage_list": dvc(["stage", "list"], one).stdout,
           "dry": dvc(["repro", "--dry", "-f", "paper@table_toy"], one).stdout}
    (one / "params.yaml").write_text("configfile: config/smoke.yaml\n")  # the documented switch
    out["repro"] = dvc(["repro", "paper@table_toy"], one).stdout
    out["metrics"] = dvc(["metrics", "show", "--json"], one).stdout
    out["plots"] = dvc(["plots", "show", "--json"], one).stdout
    dvc(["plots", "show"], one)
    out["git_status"] = run(["git", "status", "--porcelain"], one).stdout
    git(["add", "-A"], one)
    git(["commit", "-qm", "table_toy on the smoke settings"], one)
    out["push"] = dvc(["push"], one).stdout
    git(["clone", "-q", str(one), str(two)], work)
    # what was pushed: one table's chain (a full run pulls with a plain `dvc pull`)
    out["pull"] = dvc(["pull", "--with-deps", "paper@table_toy"], two).stdout
    return {"one": one, "two": two, "remote": work / "idff-dvc-remote", **out}


@pytest.mark.slow
def test_fresh_clone_lists_the_stages_and_plans_only_toy_jobs(dvc_clones):
    for stage in ("train@toy", "sweep@toy", "paper@table_toy", "train@md", "paper@fig_training"):
        assert stage in dvc_clones["stage_list"], stage
    dry = dvc_clones["dry"]
    assert "snakemake train_toy" in dry and "snakemake table_toy" in dry
    for other in ("md", "sst", "cifar10", "celeba"):
        assert f"@{other}" not in dry, other


@pytest.mark.slow
def test_repro_one_table_runs_only_toy_jobs(dvc_clones):
    one, repro = dvc_clones["one"], dvc_clones["repro"]
    ran = sorted(line.split("'")[1] for line in repro.splitlines() if line.startswith("Running stage"))
    assert ran == ["paper@table_toy", "sweep@toy", "train@toy"], repro
    assert "--configfile config/smoke.yaml" in repro
    assert (one / "results/tables/table_toy.md").is_file()
    assert sorted(p.name for p in (one / "results/checkpoints").iterdir()) == ["toy"]
    assert not (one / "resources").exists()  # no data job of md, sst or images
    # a dry run now works too, and says nothing is left to do
    again = dvc(["repro", "--dry", "paper@table_toy"], one).stdout
    assert "Running stage" not in again


@pytest.mark.slow
def test_metrics_show_one_row_per_variant_and_nfe(dvc_clones):
    shown = json.loads(dvc_clones["metrics"])
    files = next(iter(shown.values()))["data"]
    # experiments that never ran (md, sst, ...) show as errors: missing folders
    rows = {Path(p).name: v["data"] for p, v in files.items() if "data" in v}
    assert all(p.startswith("results/summary/") for p in files)
    assert set(rows) == {"idff1_nfe2.json", "idff1_nfe5.json", "otcfm_nfe2.json", "otcfm_nfe5.json"}
    for data in rows.values():
        assert set(data) == {"moons"}
        assert {"w2", "mmd"} <= set(data["moons"])


@pytest.mark.slow
def test_plots_show_one_line_per_variant_and_dvc_plots_is_ignored(dvc_clones):
    plots = json.loads(dvc_clones["plots"])["data"]
    nfe = plots["results/plots/toy/nfe/moons.mmd.csv"][0]["content"]
    assert nfe["encoding"]["color"]["field"] == "series"
    values = nfe["data"]["values"]
    assert {v["series"] for v in values} == {"idff1", "otcfm"}
    assert sorted({int(v["nfe"]) for v in values}) == [2, 5]
    curve = plots["results/plots/toy/training/moons.csv"][0]["content"]["data"]["values"]
    assert {v["series"] for v in curve} == {"idff seed0", "otcfm seed0"}
    assert (dvc_clones["one"] / "dvc_plots" / "index.html").is_file()
    assert "dvc_plots" not in dvc_clones["git_status"]
    assert "results/" not in dvc_clones["git_status"]  # DVC's outs never show up in git


@pytest.mark.slow
def test_push_to_the_default_remote_and_pull_recomputes_nothing(dvc_clones):
    one, two, remote = dvc_clones["one"], dvc_clones["two"], dvc_clones["remote"]
    assert remote.is_dir() and any(remote.rglob("*")), "the default remote beside the clone is empty"
    assert digests(two) == digests(one)
    assert "up to date" in dvc(["status", "--with-deps", "paper@table_toy"], two).stdout.lower()
    repro = dvc(["repro", "paper@table_toy"], two).stdout
    assert "Running stage" not in repro, repro
    run([str(BIN / "snakemake"), "--touch", "table_toy", "--configfile", "config/smoke.yaml",
         "--cores", "1"], two)
    plan = run([str(BIN / "snakemake"), "-n", "table_toy", "--configfile", "config/smoke.yaml",
                "--quiet", "rules"], two).stdout
    # Snakemake recomputes no training, tuning or sweep; only the table rule itself, whose
    # benchmark file (benchmarks/rules/, not versioned) a clone lacks, would run again
    for rule in ("train", "tune", "sweep", "floor", "dvc_files"):
        assert not any(line.split()[:1] == [rule] for line in plan.splitlines()), plan
    assert digests(two) == digests(one)


@pytest.mark.slow
def test_exp_run_with_a_changed_toy_setting_and_exp_show(dvc_clones):
    one = dvc_clones["one"]
    key = "config/smoke.yaml:experiments.toy.sweep.n_samples=150"
    ran = dvc(["exp", "run", "-S", key, "paper@table_toy"], one).stdout
    assert "Running stage 'sweep@toy'" in ran and "Running stage 'train@toy'" not in ran
    shown = json.loads(dvc(["exp", "show", "--json"], one).stdout)
    values = [exp["data"]["params"]["config/smoke.yaml"]["data"]["experiments"]["toy"]["sweep"]
              ["n_samples"] for base in shown for exp in (base.get("experiments") or [])
              for exp in exp["revs"]]
    assert 150 in values, shown
    diff = dvc(["metrics", "diff", "--json"], one).stdout
    assert "idff1_nfe2.json" in diff
