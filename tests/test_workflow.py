"""The pipeline as a user meets it: lint, dry runs, the smoke run, reruns, DVC round trips."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml
from workflow_helpers import REPO, copy_repo, nothing_to_do, run, smoke_config, snakemake

from idff.report.outputs import dvc_items

PROFILE = ["--workflow-profile", "workflow/profiles/ci"]


def planned_jobs(proc) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run into {rule: count}."""
    out = proc.stdout
    stats = out[out.find("Job stats:"):]
    jobs = {}
    for line in stats.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m:
            break
        jobs[m.group(1)] = int(m.group(2))
    return jobs


def test_lint_passes_on_paper_and_smoke_config(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    for extra in ([], ["--configfile", "config/smoke.yaml"]):
        proc = snakemake(["--lint", *extra], repo, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_paper_config_plans_the_full_grid(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    proc = snakemake(["-n", "all"], repo)
    jobs = planned_jobs(proc)
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    toy = cfg["experiments"]["toy"]
    n_train = sum(len(e["datasets"]) * len(e["methods"]) * len(e["seeds"])
                  for e in cfg["experiments"].values())
    assert jobs["train"] == n_train
    assert jobs["sweep"] >= len(toy["datasets"]) * len(toy["variants"]) * len(toy["seeds"])
    for target in cfg["paper_targets"]:
        assert jobs.get(target) == 1, f"{target} missing from the plan"


@pytest.mark.parametrize("key,value,needle", [
    ("experiments.toy.train.steps", "'ten'", "experiments.toy.train.steps"),
    ("experiments.toy.datasets", "[nosuchdata]", "datasets"),
    ("experiments.toy.sweep.nfe", "[-2]", "experiments.toy.sweep.nfe"),
])
def test_bad_config_stops_before_any_job(tmp_path, key, value, needle):
    repo = copy_repo(tmp_path / "repo", smoke_config())
    cfg = smoke_config()
    node = cfg
    parts = key.split(".")
    for p in parts[:-1]:
        node = node[p]
    node[parts[-1]] = yaml.safe_load(value)
    (repo / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(["-n", "all"], repo, check=False)
    assert proc.returncode != 0
    assert needle in proc.stdout + proc.stderr
    assert not (repo / "results").exists()


def test_missing_key_is_named(tmp_path):
    cfg = smoke_config()
    del cfg["experiments"]["toy"]["sweep"]
    repo = copy_repo(tmp_path / "repo", cfg)
    proc = snakemake(["-n", "all"], repo, check=False)
    assert proc.returncode != 0
    assert "sweep" in proc.stdout + proc.stderr


def test_dvc_yaml_matches_config():
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    for name in ("config.yaml", "smoke.yaml"):
        cfg = yaml.safe_load((REPO / "config" / name).read_text())
        assert dvc["stages"]["paper"]["foreach"] == dvc_items(cfg["paper_targets"], cfg), name


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One full smoke run (config/smoke.yaml as the config) in a temp copy, shared by the tests."""
    repo = copy_repo(tmp_path_factory.mktemp("smoke") / "repo", smoke_config())
    run(["git", "init", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "snapshot"], repo)
    snakemake(["all", "--cores", "2", "--resources", "gpu=1"], repo)
    return repo


@pytest.mark.slow
def test_smoke_run_makes_every_table_and_figure(smoke_run):
    cfg = smoke_config()
    for target, path in cfg["paper_targets"].items():
        assert (smoke_run / path).is_file(), target
        assert (smoke_run / path).stat().st_size > 0
    for suffix in (".md", ".csv", ".tex"):
        assert (smoke_run / "results/tables" / f"table_toy{suffix}").is_file()
    # figures over several experiments show all of them (the rule passes each one's config)
    for fig in ("fig_samples", "fig_nfe_images"):
        data = (smoke_run / "results/figures" / f"{fig}.csv").read_text()
        assert "offline_cifar" in data and "offline_faces" in data, fig
    assert nothing_to_do(snakemake(["-n", "all"], smoke_run))


@pytest.mark.slow
def test_html_report_gathers_every_target(smoke_run):
    """`snakemake --report` (README) makes one self-contained page naming every paper target."""
    snakemake(["--report", "report.html"], smoke_run)
    html = (smoke_run / "report.html").read_text(errors="replace")
    missing = [t for t in smoke_config()["paper_targets"] if t not in html]
    assert not missing, f"targets not in the HTML report: {missing}"


@pytest.mark.slow
def test_evaluation_only_setting_reruns_no_training(smoke_run):
    """A larger SST ensemble (data.n_members, evaluation only) re-scores the SST sweeps but
    retrains nothing and prepares no data again."""
    cfg = smoke_config()
    cfg["experiments"]["sst"]["data"]["n_members"] = 7
    (smoke_run / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        jobs = planned_jobs(snakemake(["-n", "all", "--quiet", "rules"], smoke_run))
        assert "train" not in jobs and "data" not in jobs, jobs
        assert jobs.get("sweep", 0) > 0 and "table_sst" in jobs and "table_toy" not in jobs
    finally:
        (smoke_run / "config" / "config.yaml").write_text(
            yaml.safe_dump(smoke_config(), sort_keys=False))


@pytest.mark.slow
def test_changing_one_method_reruns_only_its_jobs(smoke_run):
    cfg = smoke_config()
    cfg["experiments"]["toy"]["methods"]["icfm"]["sigma"] = 0.05
    (smoke_run / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        proc = snakemake(["-n", "all", "--quiet", "rules"], smoke_run)
        jobs = planned_jobs(proc)
        n_ds = len(cfg["experiments"]["toy"]["datasets"]) * len(cfg["experiments"]["toy"]["seeds"])
        assert jobs.get("train") == n_ds  # icfm only
        assert jobs.get("sweep") == n_ds  # the icfm variant only
        assert "tune" not in jobs and "sample" not in jobs and "floor" not in jobs
        assert "table_toy" in jobs and "fig_nfe" in jobs
        for other in ("table_md", "table_sst", "table_cifar10", "table_celeba", "fig_md", "fig_sst"):
            assert other not in jobs  # reports read only their own experiment's config slice
    finally:
        (smoke_run / "config" / "config.yaml").write_text(
            yaml.safe_dump(smoke_config(), sort_keys=False))


@pytest.mark.slow
def test_dvc_round_trip(smoke_run, tmp_path):
    """Main path (snakemake all, dvc commit, push), then a fresh clone that pulls and recomputes nothing."""
    repo, remote = smoke_run, tmp_path / "remote"
    run(["dvc", "init", "-q"], repo)
    run(["dvc", "remote", "add", "-d", "local", str(remote)], repo)
    run(["dvc", "commit", "-f", "-q"], repo)
    status = run(["dvc", "status"], repo)
    assert "up to date" in status.stdout.lower() or "changed" not in status.stdout
    run(["dvc", "push", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "dvc"], repo)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    run(["dvc", "pull", "-q"], clone)
    assert (clone / "results/tables/table_toy.md").is_file()
    assert run(["dvc", "status", "-q"], clone, check=False).returncode == 0
    snakemake(["--touch", "all", "--cores", "1"], clone)
    assert nothing_to_do(snakemake(["-n", "all"], clone))
    # dvc repro of one table: up to date, nothing recomputed, and Snakemake agrees
    repro = run(["dvc", "repro", "paper@table_toy"], clone)
    assert "didn't change" in repro.stdout or "up to date" in repro.stdout.lower()
    assert nothing_to_do(snakemake(["-n", "all"], clone))
    shutil.rmtree(clone / ".dvc" / "cache", ignore_errors=True)
