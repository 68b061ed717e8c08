"""Faults injected into real runs: SIGKILL of `idff train` and of Snakemake, writers killed
mid-write or out of disk, two pipelines on one tree, NaN mid-training, DVC round trips.

Every pipeline run happens in a throwaway copy of the repository (workflow_helpers.copy_repo)
with a tiny toy config: 1 data set, 2 methods, 2 variants, NFE [2]. The module fixture
`killed_pipeline` kills Snakemake during training, reruns it, and starts a second Snakemake
while the rerun works; the later tests reuse that finished copy in order (sweep killed, DVC).
Covered elsewhere: resume after an exception and the NaN stop in-process (test_train.py),
a bad config stopping Snakemake before any job (test_workflow.py), DVC pull + touch on the
smoke run (test_workflow.py::test_dvc_round_trip).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from workflow_helpers import (
    BIN,
    copy_repo,
    digests,
    env,
    nothing_to_do,
    run,
    smoke_config,
    snakemake,
)

from idff.config import eval_spec, load_config, train_spec, validate_config
from idff.io import load_checkpoint, stale_temps
from idff.report.outputs import dvc_items
from idff.steps import jobs, network
from idff.train import TrainingDiverged, load_trained, resume_path

ROOT = Path(__file__).resolve().parent.parent
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# --- helpers -------------------------------------------------------------------------------------

def tiny_config(steps: int = 600) -> dict:
    """config/smoke.yaml cut down to 9 jobs: moons, idff + otcfm, variants idff1 + otcfm, NFE 2."""
    cfg = smoke_config()
    t = cfg["experiments"]["toy"]
    t.update(datasets=["moons"], seeds=[0], data={"n_train": 2000},
             model={"arch": "mlp", "hidden": 32, "depth": 2, "activation": "selu"},
             methods={m: t["methods"][m] for m in ("idff", "otcfm")},
             variants={"idff1": {"method": "idff", "sampler": "idff1",
                                 "tune": {"sigma_s": [0.0, 0.5]}},
                       "otcfm": {"method": "otcfm", "sampler": "native", "label": "OT-CFM"}},
             sweep={"solvers": ["euler"], "nfe": [2], "n_samples": 200, "t_eps": 0.001},
             tune={"n_samples": 100, "metric": "mmd"},
             figures={"toy_orders": {"variants": ["idff1"], "nfe": 2, "solver": "euler",
                                     "n_samples": 200}})
    t["train"].update(steps=steps, ckpt_every=50, warmup=10)
    cfg["experiments"] = {"toy": t}
    cfg["paper_targets"] = {k: cfg["paper_targets"][k] for k in ("table_toy", "fig_toy_orders")}
    validate_config(cfg)
    return cfg


def make_repo(dest: Path, cfg: dict) -> Path:
    """A copy of the repository running ``cfg``, with dvc.yaml's paper stage in step with it."""
    repo = copy_repo(dest, cfg)
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())
    dvc["stages"]["paper"]["foreach"] = dvc_items(cfg["paper_targets"], cfg)
    dvc.pop("plots", None)  # fig_nfe is not a target here
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    return repo


def start(cmd: list[str], cwd: Path, log: Path, extra_env: dict | None = None) -> subprocess.Popen:
    """Start ``cmd`` in its own process group (so the whole tree can be killed at once)."""
    return subprocess.Popen(cmd, cwd=cwd, env={**env(), **(extra_env or {})},
                            stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for(cond: Callable[[], bool], proc: subprocess.Popen, what: str,
             timeout: float = 300) -> None:
    """Poll ``cond`` every 10 ms while ``proc`` runs; fail if it ends or time runs out first."""
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (rc {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            kill_group(proc)
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def incomplete(repo: Path, output: str) -> bool:
    """Has Snakemake marked ``output`` as being written (its job started, not finished)?"""
    marker = base64.urlsafe_b64encode(output.encode()).decode()
    return (repo / ".snakemake" / "incomplete" / marker).exists()


def check_outputs(repo: Path, cfg: dict) -> None:
    """Every output of the tiny pipeline is complete and loads."""
    e = cfg["experiments"]["toy"]
    for method in e["methods"]:
        ckpt = repo / f"results/checkpoints/toy/moons/{method}/seed0.pt"
        _, state = load_trained(ckpt, network.build_from_meta, torch.device("cpu"))
        assert state["step"] == e["train"]["steps"]
        assert not resume_path(ckpt).exists() and not stale_temps(ckpt)
    for variant in e["variants"]:
        rows = json.loads((repo / f"results/metrics/toy/moons/{variant}/euler/seed0.json"
                           ).read_text())["rows"]
        assert [r["nfe"] for r in rows] == [2] and all(r["mmd"] == r["mmd"] for r in rows)
    for path in cfg["paper_targets"].values():
        assert (repo / path).stat().st_size > 0


# --- writers killed mid-write or out of disk (fault 2) -------------------------------------------

MID_WRITE = textwrap.dedent("""
    import sys, time
    from idff.io import atomic_path
    with atomic_path(sys.argv[1]) as tmp:
        with open(tmp, "w") as f:
            f.write('{"job": "sweep", "rows": [')   # half a JSON document
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
            f.write("]}")
""")


def test_writer_killed_mid_write_leaves_the_old_file(tmp_path):
    out = tmp_path / "metrics.json"
    out.write_text('{"job": "sweep", "rows": []}\n')
    proc = subprocess.Popen([sys.executable, "-c", MID_WRITE, str(out)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.kill()
    proc.wait()
    assert json.loads(out.read_text()) == {"job": "sweep", "rows": []}
    leftovers = stale_temps(out)
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".metrics.json.")  # hidden


DISK_FULL = textwrap.dedent("""
    import resource, signal, sys, torch
    from idff.io import save_checkpoint
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)          # get EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    try:
        save_checkpoint(sys.argv[1], {"w": torch.zeros(1_000_000)})   # 4 MB > the limit
    except Exception as exc:
        print(type(exc).__name__, exc)
""")


def test_disk_full_during_a_checkpoint_write_keeps_the_old_checkpoint(tmp_path):
    """Writes fail part-way (RLIMIT_FSIZE stands in for a full disk): the old file is intact, no
    temp is left, and the error names the errno that was hit (torch's own is an internal
    assertion)."""
    out = tmp_path / "model.pt"
    torch.save({"w": torch.ones(3)}, out)
    before = out.read_bytes()
    proc = subprocess.run([sys.executable, "-c", DISK_FULL, str(out)], capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.startswith(f"CheckpointError could not write checkpoint {out}"), (
        proc.stdout + proc.stderr)
    assert "EFBIG" in proc.stdout and "file-size limit" in proc.stdout  # what was hit, no guess
    assert out.read_bytes() == before and stale_temps(out) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


# --- training: killed, poisoned, NaN (faults 1 and 7) --------------------------------------------

@pytest.fixture
def tiny_spec() -> Callable[..., dict]:
    cfg = load_config(ROOT / "config" / "smoke.yaml")

    def make(method: str = "idff", **train) -> dict:
        spec = train_spec(copy.deepcopy(cfg), "toy", "moons", method, 0)
        spec["device"] = "cpu"
        spec["model"]["hidden"] = 16
        spec["data"]["n_train"] = 512
        spec["train"].update({"steps": 30, "ckpt_every": 10, "batch_size": 32, **train})
        return spec
    return make


def test_temp_files_of_a_killed_checkpoint_write_are_removed(tiny_spec, tmp_path, capsys,
                                                             one_thread):
    """A SIGKILL during torch.save leaves a hidden temp as large as the checkpoint; the rerun
    deletes it (nothing else ever would)."""
    out = tmp_path / "seed0.pt"
    stale = [tmp_path / ".seed0.pt.resume.k1ll3d.pt.tmp", tmp_path / ".seed0.pt.x9.pt.tmp"]
    for p in stale:
        p.write_bytes(b"PK\x03\x04 half a checkpoint")
    other = tmp_path / ".seed1.pt.resume.abc.pt.tmp"  # another job's: not ours to delete
    other.write_bytes(b"x")
    jobs.run_train(tiny_spec(steps=5), out, progress=False)
    assert not any(p.exists() for p in stale) and other.exists()
    assert "left by a run killed while writing a checkpoint" in capsys.readouterr().out


def _poison_at(step_to_poison: int):
    """A finite loss whose gradient is infinite (d sqrt(x)/dx at 0): the weights turn NaN."""
    def hook(step, loss):
        return loss + (loss - loss.detach()).abs().sqrt() if step == step_to_poison else loss
    return hook


@pytest.mark.parametrize("grad_clip,needle", [(1.0, "gradient norm became"),
                                              (0.0, "weights became non-finite")])
def test_a_step_that_poisons_the_weights_never_reaches_a_checkpoint(grad_clip, needle, tiny_spec,
                                                                    tmp_path, one_thread):
    """Step 19 ends on a checkpoint (ckpt_every 10). Before the fix its NaN weights were saved
    as the 'last good checkpoint', and every rerun resumed into NaN."""
    spec = tiny_spec(grad_clip=grad_clip)
    out = tmp_path / "model.pt"
    with pytest.raises(TrainingDiverged, match=needle) as info:
        jobs.run_train(spec, out, progress=False, on_step=_poison_at(19))
    assert str(resume_path(out)) in str(info.value)
    state = load_checkpoint(resume_path(out))
    assert state["step"] == 10
    assert all(torch.isfinite(v).all() for part in ("model", "ema") for v in state[part].values())
    assert not out.exists()
    jobs.run_train(spec, out, progress=False)  # the kept checkpoint resumes cleanly
    assert load_checkpoint(out)["step"] == 30


def test_nan_stop_leaves_every_other_result_byte_identical(tiny_spec, tmp_path, monkeypatch,
                                                          one_thread):
    """Fault 7 at the level of a results tree: a finished job's checkpoint, metrics and info
    files are untouched when another job diverges beside them."""
    monkeypatch.chdir(tmp_path)
    cfg = load_config(ROOT / "config" / "smoke.yaml")
    spec = tiny_spec("otcfm", steps=10)
    done = Path("results/checkpoints/toy/moons/otcfm/seed0.pt")
    jobs.run_train(spec, done, progress=False)
    espec = eval_spec(cfg, "toy", "moons", "otcfm", "euler", 0)
    espec.update(device="cpu", nfe=[2], model=spec["model"])
    espec["sweep"]["n_samples"] = 64
    jobs.run_sweep(espec, done, "results/metrics/toy/moons/otcfm/euler/seed0.json")
    before = digests(tmp_path)
    assert len(before) == 4  # checkpoint, its info JSON and loss curve, the metrics

    failing = Path("results/checkpoints/toy/moons/idff/seed0.pt")
    with pytest.raises(TrainingDiverged, match="loss became nan at step 25"):
        jobs.run_train(tiny_spec(), failing, progress=False,
                       on_step=lambda s, loss: loss * float("nan") if s == 25 else loss)
    after = digests(tmp_path)
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) == {str(resume_path(failing))}  # only its last good ckpt


def _train_cmd(out: Path, steps: int) -> list[str]:
    return [str(BIN / "idff"), "--no-progress", "train", "--config", "config/smoke.yaml",
            "--dataset", "moons", "--method", "idff", "--seed", "0", "--set", "device=cpu",
            "--set", f"experiments.toy.train.steps={steps}",
            "--set", "experiments.toy.train.ckpt_every=50", "--out", str(out)]


@pytest.mark.slow
def test_sigkilled_idff_train_resumes_to_the_same_weights(tmp_path):
    """SIGKILL a real `idff train` after its first resume checkpoint, rerun the same command:
    it resumes, and model, EMA and optimiser state equal those of an uninterrupted run."""
    repo = copy_repo(tmp_path / "repo")
    steps = 800
    ref, out = tmp_path / "ref" / "seed0.pt", tmp_path / "run" / "seed0.pt"
    reference = start(_train_cmd(ref, steps), repo, tmp_path / "ref.log", ONE_THREAD)
    victim = start(_train_cmd(out, steps), repo, tmp_path / "victim.log", ONE_THREAD)
    wait_for(resume_path(out).exists, victim, "the first resume checkpoint")
    kill_group(victim)
    assert victim.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(resume_path(out))["step"]
    assert 0 < killed_at < steps and not out.exists(), "killed too late: raise steps"

    rerun = subprocess.run(_train_cmd(out, steps), cwd=repo, env={**env(), **ONE_THREAD},
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resuming {out} from step {killed_at}" in rerun.stdout
    assert reference.wait(timeout=600) == 0, (tmp_path / "ref.log").read_text()
    a, b = load_checkpoint(ref), load_checkpoint(out)
    assert a["step"] == b["step"] == steps and a["history"] == b["history"]
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        for name in a[part]:
            assert torch.equal(a[part][name], b[part][name]), (part, name)
    for i, (sa, sb) in enumerate(zip(a["optimizer"]["state"].values(),
                                     b["optimizer"]["state"].values(), strict=True)):
        for key in sa:
            assert torch.equal(sa[key], sb[key]), ("optimizer", i, key)
    assert not resume_path(out).exists() and not stale_temps(out)


# --- Snakemake killed during training; a second Snakemake on the same tree (faults 1 and 3) ------

@pytest.fixture(scope="module")
def killed_pipeline(tmp_path_factory) -> dict:
    """Kill Snakemake's process group (SIGKILL) while it trains, rerun, and while the rerun
    works start a second `snakemake all` on the same tree. Returns what each step printed."""
    cfg = tiny_config()
    root = tmp_path_factory.mktemp("pipeline")
    repo = make_repo(root / "repo", cfg)
    first = start([str(BIN / "snakemake"), "all"], repo, root / "first.log")
    ckpts = repo / "results" / "checkpoints"
    found: list[Path] = []

    def resume_written() -> bool:
        found[:] = list(ckpts.rglob("*.resume")) if ckpts.is_dir() else []
        return bool(found)

    wait_for(resume_written, first, "a training job's first resume checkpoint")
    kill_group(first)
    killed = found[0]
    info = {"repo": repo, "cfg": cfg, "killed": killed,
            "killed_step": load_checkpoint(killed)["step"],
            "final_existed": Path(str(killed)[: -len(".resume")]).exists(),
            "plain_rerun": snakemake(["all"], repo, check=False)}
    snakemake(["--unlock"], repo)
    second = start([str(BIN / "snakemake"), "all"], repo, root / "rerun.log")
    wait_for(lambda: any((repo / ".snakemake" / "locks").glob("*.lock")), second,
             "the rerun's directory lock")
    info["concurrent"] = snakemake(["all"], repo, check=False, timeout=600)
    info["rerun_alive_after_concurrent"] = second.poll() is None
    info["rerun_rc"] = second.wait(timeout=1200)
    info["rerun_log"] = (root / "rerun.log").read_text()
    return info


@pytest.mark.slow
def test_sigkilled_snakemake_resumes_training_after_unlock(killed_pipeline):
    info, repo = killed_pipeline, killed_pipeline["repo"]
    assert not info["final_existed"]  # the killed job never left a checkpoint that looks done
    # A SIGKILL gives Snakemake no chance to release its lock: the plain rerun says how to go on
    plain = info["plain_rerun"]
    assert plain.returncode != 0
    assert "Directory cannot be locked" in plain.stdout + plain.stderr
    assert "--unlock" in plain.stdout + plain.stderr
    assert info["rerun_rc"] == 0, info["rerun_log"][-3000:]
    rel = info["killed"].relative_to(repo)
    parts = rel.parts  # results/checkpoints/toy/moons/<method>/seed0.pt.resume
    log = (repo / "logs" / "train" / Path(*parts[2:-1]) / "seed0.log").read_text()
    assert f"from step {info['killed_step']}" in log and "resuming" in log
    check_outputs(repo, info["cfg"])
    assert nothing_to_do(snakemake(["-n", "all"], repo))


@pytest.mark.slow
def test_second_invocation_is_refused_and_the_first_finishes(killed_pipeline):
    info = killed_pipeline
    assert info["rerun_alive_after_concurrent"], "the first run ended before the second started"
    second = info["concurrent"]
    out = second.stdout + second.stderr
    assert second.returncode != 0 and "Directory cannot be locked" in out
    assert "Select jobs to execute" not in out  # refused before it ran anything
    assert info["rerun_rc"] == 0
    check_outputs(info["repo"], info["cfg"])


# --- a sweep killed in flight; a half-written output is never taken as done (fault 2) ------------

@pytest.mark.slow
def test_killed_sweep_leaves_no_output_and_incomplete_files_are_redone(killed_pipeline, tmp_path):
    repo, cfg = killed_pipeline["repo"], killed_pipeline["cfg"]
    target = "results/metrics/toy/moons/otcfm/euler/seed0.json"
    original = json.loads((repo / target).read_text())
    (repo / target).unlink()
    # named: Snakemake 9 does not rebuild a deleted intermediate file while the tables are there
    proc = start([str(BIN / "snakemake"), "all", target], repo, tmp_path / "sweep.log")
    wait_for(lambda: incomplete(repo, target), proc, "the sweep job")
    kill_group(proc)
    assert not (repo / target).exists()  # atomic writes: nothing, not half a file

    # what a writer without atomic writes would leave: half a JSON under Snakemake's marker
    (repo / target).write_text(json.dumps(original)[:120])
    strict = snakemake(["-n", "all", target, "--workflow-profile", "none"], repo, check=False)
    said = strict.stdout + strict.stderr
    assert strict.returncode != 0 and "seem to be incomplete" in said and target in said
    snakemake(["--unlock"], repo)
    redo = snakemake(["all", target], repo)  # the default profile has rerun-incomplete
    assert "NFE sweep of otcfm" in redo.stdout + redo.stderr  # redone, not taken as done
    rows = json.loads((repo / target).read_text())["rows"]
    for new, old in zip(rows, original["rows"], strict=True):
        for key in ("nfe", "w2", "mmd", "mmd_multi"):
            assert new[key] == pytest.approx(old[key], rel=1e-6), key
    check_outputs(repo, cfg)


# --- DVC: commit, a change, repro, pull; dvc status and snakemake -n agree (fault 8) -------------

def dvc(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    return run([str(BIN / "dvc"), *args], cwd, **kw)


def dvc_clean(cwd: Path) -> bool:
    return "up to date" in dvc(["status"], cwd).stdout.lower()


@pytest.mark.slow
def test_dvc_status_and_snakemake_agree_after_commit_change_repro_and_pull(killed_pipeline,
                                                                           tmp_path):
    repo, cfg = killed_pipeline["repo"], killed_pipeline["cfg"]
    remote = tmp_path / "remote"
    run(["git", "init", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "tiny"], repo)
    dvc(["init", "-q"], repo)
    dvc(["remote", "add", "-d", "local", str(remote)], repo)
    dvc(["commit", "-f", "-q"], repo)
    assert dvc_clean(repo)                                           # commit: both clean
    assert nothing_to_do(snakemake(["-n", "all"], repo))

    changed = copy.deepcopy(cfg)                                     # a change: both dirty,
    changed["experiments"]["toy"]["variants"]["otcfm"]["label"] = "OT-CFM, relabelled"
    (repo / "config" / "config.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
    status = dvc(["status"], repo).stdout
    assert "sweep@toy" in status and "train@toy" not in status       # the same stages
    plan = snakemake(["-n", "all", "--quiet", "rules"], repo).stdout
    assert "sweep" in plan and "train" not in plan and "tune" not in plan
    ckpts = digests(repo, "results/checkpoints")

    repro = dvc(["repro"], repo)                                     # repro: both clean again
    assert "Running stage 'sweep@toy'" in repro.stdout
    assert "Running stage 'train@toy'" not in repro.stdout
    assert dvc_clean(repo)
    plan = snakemake(["-n", "all"], repo)
    assert nothing_to_do(plan), plan.stdout[-3000:]  # the jobs Snakemake would still run
    assert digests(repo, "results/checkpoints") == ckpts             # nothing retrained

    dvc(["push", "-q"], repo)                                        # pull into a fresh clone
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "results"], repo)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    dvc(["pull", "-q"], clone)
    assert dvc_clean(clone)
    assert digests(clone) == digests(repo)
    snakemake(["--touch", "all"], clone)                             # the documented step
    assert nothing_to_do(snakemake(["all"], clone))                  # a real run: no job
    assert digests(clone) == digests(repo)
