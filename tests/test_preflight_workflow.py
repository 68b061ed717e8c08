"""Preflight in the pipeline (issue 18): the Inception weights rule, the start-up doctor, and a
walk over the paper DAG's inputs. Downloads only from tests/loopback.py's server."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from dag_walk import dag_jobs
from loopback import serve
from workflow_helpers import REPO, copy_repo, smoke_config, snakemake

from idff.config import validate_config
from idff.data import images as im
from idff.estimate import estimate
from idff.families.images import data_settings
from idff.inputs import external_inputs

FAKE = b"stand-in weights: only the checksum matters to the fetch rule\n" * 50
WEIGHTS = "resources/weights/fake-inception.pth"
EVAL_RULES = ("tune", "sweep", "floor")


def fid_config(url: str, sha256: str) -> dict:
    """The smoke config with Inception features (and a fake weights file) for CIFAR-10."""
    cfg = smoke_config()
    cfg["experiments"]["cifar10"]["data"].update(feature_extractor="inception-v3-compat",
                                                 inception_weights=WEIGHTS)
    cfg["inputs"] = {"inception_weights": {"url": url, "sha256": sha256, "allow_http": True,
                                           "retries": 1, "timeout": 5}}
    validate_config(cfg)
    return cfg


def outside_reads(job: dict) -> list[str]:
    """Files from outside the DAG that the code of ``job`` opens, read off its --spec."""
    spec = json.loads(job["params"].get("spec", "{}") or "{}")
    family, ds, data = spec.get("family"), spec.get("dataset"), spec.get("data", {})
    reads = []
    if job["rule"] == "data" and family == "images":
        root = data.get("root", "resources/downloads")
        reads += {"cifar10": [f"{root}/{im.CIFAR10_FILE}"],
                  "celeba": [f"{root}/{im.CELEBA_IMG_DIR}/"]}.get(ds, [])
    if job["rule"] == "data" and family == "sst" and ds == "oisst":
        reads.append(data.get("raw_dir", "resources/raw/oisst"))
    if job["rule"] == "data" and family == "md" and ds == "mdshare":
        from idff.data.md import MDSHARE_URL

        reads.append(str(Path(job["output"][0]).parent / MDSHARE_URL.rsplit("/", 1)[-1]))
    if job["rule"] in EVAL_RULES and family == "images":
        d = data_settings(spec)
        if d["feature_extractor"] == "inception-v3-compat":
            reads.append(d["inception_weights"] or "torch hub cache")
    return reads


@pytest.mark.slow
def test_paper_dag_reads_no_file_that_no_rule_makes_or_preflight_checks(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    jobs = dag_jobs(repo)
    made = {f for j in jobs for f in j["output"]}
    checked = {i.path for i in external_inputs(cfg)}  # what `idff doctor` checks at start-up
    for job in jobs:
        for f in job["input"]:
            assert f in made, f"{job['rule']} reads {f}, which no rule of the DAG makes"
        for f in outside_reads(job):
            assert f in job["input"] or f in checked, \
                f"{job['rule']} ({job['output'][0]}) reads {f}: no rule makes it, no preflight check"
    fid_jobs = [j for j in jobs if j["rule"] in EVAL_RULES and "resources/data/c" in str(j["input"])]
    assert fid_jobs and all(cfg["experiments"]["cifar10"]["data"]["inception_weights"] in j["input"]
                            for j in fid_jobs)
    counts = Counter(j["rule"] for j in jobs)
    assert counts["inception_weights"] == 1
    est = estimate(cfg, "cuda")  # the doctor's job counts are the DAG's
    assert {k: counts[k] for k in est.jobs} == est.jobs


@pytest.mark.slow
def test_weights_rule_fetches_refuses_a_bad_checksum_and_fid_jobs_wait_for_it(tmp_path):
    with serve({"/w.pth": FAKE}) as (base, log):
        good = fid_config(f"{base}/w.pth", hashlib.sha256(FAKE).hexdigest()[:8])
        repo = copy_repo(tmp_path / "repo", good)
        jobs = dag_jobs(repo)
        fid = [j for j in jobs if j["rule"] in EVAL_RULES and "/cifar10/" in j["output"][0]]
        assert fid and all(WEIGHTS in j["input"] for j in fid)
        assert [j["output"] for j in jobs if j["rule"] == "inception_weights"] == [[WEIGHTS]]
        pre = snakemake(["preflight", "--cores", "1"], repo)  # fetch first, then the doctor
        assert (repo / WEIGHTS).read_bytes() == FAKE and log
        lines = (pre.stdout + pre.stderr).splitlines()
        assert any(ln.startswith("OK") and WEIGHTS in ln and "present" in ln for ln in lines)
        assert "summary: 0 FAIL" in pre.stdout + pre.stderr

        (repo / WEIGHTS).unlink()
        bad = fid_config(f"{base}/w.pth", "0badc0de")
        (repo / "config" / "config.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
        floor = "results/floor/cifar10/offline_cifar/seed0.json"
        proc = snakemake([floor, "--cores", "1", "--no-hooks"], repo, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "does not start with the expected 0badc0de" in out, out[-3000:]
    assert not (repo / WEIGHTS).exists() and not (repo / floor).exists()
    assert not (repo / "logs" / "floor").exists()  # the FID job never started


@pytest.mark.slow
def test_paper_preflight_fails_offline_before_any_job(tmp_path, monkeypatch):
    """Weights missing, no network: `snakemake all` on the paper config stops at start-up with
    the doctor's FAIL lines naming the file; no job ran (the dry run shows what would have)."""
    repo = copy_repo(tmp_path / "repo")
    dry = snakemake(["-n", "all"], repo)
    assert "train " in dry.stdout and "inception_weights" in dry.stdout
    monkeypatch.setenv("IDFF_OFFLINE", "1")
    proc = snakemake(["all", "--cores", "1"], repo, check=False)
    out = proc.stdout + proc.stderr
    weights = "resources/weights/weights-inception-2015-12-05-6726825d.pth"
    assert proc.returncode != 0
    assert any(ln.startswith("FAIL") and weights in ln and "-> fix:" in ln
               for ln in out.splitlines()), out[-4000:]
    assert "no job was started" in out
    assert sorted(p.name for p in (repo / "logs").iterdir()) == ["preflight"]
    assert not (repo / "results").exists() and not (repo / "resources").exists()


@pytest.mark.slow
def test_smoke_run_passes_the_start_up_doctor(tmp_path):
    repo = copy_repo(tmp_path / "repo", smoke_config())
    proc = snakemake(["results/floor/toy/moons/seed0.json", "--cores", "1"], repo)
    out = proc.stdout + proc.stderr
    assert "idff doctor:" in out and "summary: 0 FAIL" in out
    assert (repo / "results/floor/toy/moons/seed0.json").is_file()
    rec = json.loads((repo / "logs/preflight/doctor.json").read_text())
    assert rec["experiments"] == ["toy"] and rec["counts"]["FAIL"] == 0
    again = snakemake(["results/floor/toy/moons/seed0.json", "--cores", "1"], repo)
    assert "idff doctor:" not in again.stdout + again.stderr  # nothing to do: no check
