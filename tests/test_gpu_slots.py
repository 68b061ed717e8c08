"""GPU choice: `device: cuda:N`, and one GPU per concurrent job under `--resources gpu=K`.

No GPU is needed: the slot claim (idff/gpu_slots.py) is plain file locking, run here by real
Snakemake jobs with a simulated GPU count, and pick_device/record run against a faked
torch.cuda with two devices.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from workflow_helpers import BIN, env

from idff import gpu_slots
from idff.config import validate_config
from idff.errors import ConfigError
from idff.provenance import pick_device, record

JOB = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from idff.gpu_slots import claim_slot
    name, out, lock_dir, barrier = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    slot, alone = claim_slot(2, lock_dir)
    (out.parent / f"started_{name}").touch()
    if barrier == "both":  # hold the GPU until the other job runs too: proves they overlapped
        deadline = time.monotonic() + 120
        while len(list(out.parent.glob("started_*"))) < 2:
            if time.monotonic() > deadline:
                sys.exit("the other job never ran at the same time")
            time.sleep(0.05)
    out.write_text(f"{slot} {alone}")
""")


def run_two_jobs(tmp_path: Path, gpus: int, barrier: str) -> list[str]:
    (tmp_path / "job.py").write_text(JOB)
    (tmp_path / "Snakefile").write_text(textwrap.dedent(f"""
        rule all:
            input: "out/a.txt", "out/b.txt"
        rule job:
            output: "out/{{name}}.txt"
            resources: gpu=1
            shell: "{sys.executable} job.py {{wildcards.name}} {{output}} locks {barrier}"
    """))
    proc = subprocess.run([str(BIN / "snakemake"), "--cores", "2", "--resources", f"gpu={gpus}",
                           "--snakefile", "Snakefile"], cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return [(tmp_path / "out" / f"{n}.txt").read_text() for n in ("a", "b")]


def test_two_concurrent_jobs_with_gpu_2_get_different_devices(tmp_path):
    results = run_two_jobs(tmp_path, gpus=2, barrier="both")
    assert sorted(results) == ["0 True", "1 True"]


def test_jobs_one_after_the_other_reuse_the_freed_device(tmp_path):
    """gpu=1 runs them in turn; the lock dies with the first job, so the second gets GPU 0."""
    assert run_two_jobs(tmp_path, gpus=1, barrier="none") == ["0 True", "0 True"]


def test_a_job_beyond_the_gpu_count_shares_and_is_told(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from idff.gpu_slots import claim_slot
        print(claim_slot(2, {str(tmp_path)!r}), flush=True)
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env())
    try:
        assert holder.stdout.readline().strip() == "(0, True)"
        assert gpu_slots.claim_slot(2, tmp_path) == (1, True)     # the free one
        gpu_slots.release_all()
        gpu_slots.claim_slot(2, tmp_path)                          # take 1 again, then a third:
        out = subprocess.run([sys.executable, "-c", "from idff.gpu_slots import claim_slot; "
                              f"print(claim_slot(2, {str(tmp_path)!r})[1])"],
                             capture_output=True, text=True, env=env(), check=True).stdout
        assert out.strip() == "False"                              # both held: it shares
    finally:
        gpu_slots.release_all()
        holder.communicate("", timeout=30)


def test_lock_files_are_named_by_physical_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    try:
        assert gpu_slots.claim_slot(2, tmp_path) == (0, True)
        assert (tmp_path / "gpu-2.lock").is_file()
    finally:
        gpu_slots.release_all()


@pytest.fixture
def two_fake_gpus(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "FakeGPU")
    monkeypatch.setenv("IDFF_GPU_LOCK_DIR", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    yield
    gpu_slots.release_all()


def test_auto_claims_a_gpu_and_provenance_records_it(two_fake_gpus, tmp_path):
    dev = pick_device("auto")
    assert dev == torch.device("cuda", 0)
    assert pick_device("cuda") == dev                              # same process: same claim
    rec = record(cfg={}, seed=0, device=dev, wall_s=1.0)
    assert rec["device"] == "cuda:0:FakeGPU"
    assert rec["cuda_visible_devices"] == "0,1"


def test_cuda_n_picks_that_gpu_and_rejects_a_missing_one(two_fake_gpus):
    assert pick_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(RuntimeError, match=r"'cuda:2' does not exist: 2 CUDA GPU\(s\) are visible"):
        pick_device("cuda:2")


def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA GPU is visible"):
        pick_device("cuda:0")
    assert pick_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("value,ok", [("cuda:1", True), ("cuda", True), ("auto", True),
                                      ("cpu", True), ("cuda:x", False), ("gpu", False),
                                      ("cuda:", False)])
def test_config_accepts_cuda_n(value, ok):
    import yaml

    cfg = yaml.safe_load((Path(__file__).parents[1] / "config" / "smoke.yaml").read_text())
    cfg["device"] = value
    if ok:
        validate_config(cfg)
    else:
        with pytest.raises(ConfigError, match="device"):
            validate_config(cfg)
