"""benchmarks/gpu_check.py, the prepared GPU check, in its tiny CPU mode: every section runs
(compile and graphs excepted, which a CPU cannot measure here) and the JSON says what it got."""

from __future__ import annotations

import importlib.util
import json

import pytest
from workflow_helpers import REPO


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_gpu_check_tiny_cpu_mode(tmp_path, one_thread):
    out = tmp_path / "gpu_check.json"
    rc = _load().main([str(out), "--tiny", "--device", "cpu", "--no-compile", "--warmup", "1",
                       "--steps", "2", "--jobs", "2", "--window-s", "0.5",
                       "--sample-batches", "4", "--sample-repeats", "1", "--nfe", "2"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["complete"] and res["tiny"] and res["device"].startswith("cpu")
    sec = res["sections"]
    row = sec["trainer_vs_bare"]["rows"][0]
    assert row["bare"]["images_per_s"] > 0 and row["trainer"]["images_per_s"] > 0
    assert row["trainer_over_bare"] > 0
    assert sec["compile_graphs"]["compile"] == {"skipped": "--no-compile"}
    assert sec["compile_graphs"]["cuda_graphs"] == {"skipped": "needs a CUDA device"}
    jobs = sec["jobs_per_gpu"]["rows"]
    assert [r["jobs"] for r in jobs] == [2]  # two processes at once (one startup, in parallel)
    assert all(r["finished"] == r["jobs"] and r["aggregate_images_per_s"] > 0 for r in jobs), jobs
    samp = sec["sampling"]["rows"][0]
    assert samp["batch"] == 4 and samp["sweep_generator_images_per_s"] > 0
    assert samp["bare_forward_images_per_s"] > 0
    assert "skipped" in sec["sampling"]["fid_features"]
    assert all("wall_s" in s for s in sec.values())


def test_gpu_check_skips_sections_beyond_the_budget(tmp_path, monkeypatch):
    """A zero budget on the full (non-tiny) settings skips every section, with the reason."""
    mod = _load()
    out = tmp_path / "g.json"
    assert mod.main([str(out), "--device", "cpu", "--budget-s", "0"]) == 0
    res = json.loads(out.read_text())
    assert set(res["sections"]) == {"trainer_vs_bare", "compile_graphs", "jobs_per_gpu", "sampling"}
    assert all(s["skipped"].startswith("budget") for s in res["sections"].values())
