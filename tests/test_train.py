"""The trainer end to end: learning on 8gaussians, bit-exact resume, NaN stop, checkpoint safety."""

from __future__ import annotations

import pytest
import torch

from idff.config import eval_spec
from idff.families import get_family
from idff.flows.nfe import CountingNet
from idff.flows.sampling import generate
from idff.io import CheckpointError, load_checkpoint
from idff.metrics.distribution import wasserstein2
from idff.steps import jobs, network
from idff.train import TrainConfig, TrainingDiverged, load_trained, resume_path

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")


class Killed(RuntimeError):
    pass


def _tiny(toy_train_spec, method="idff", steps=30, ckpt_every=10, **train):
    return toy_train_spec(method, train={"steps": steps, "ckpt_every": ckpt_every, "batch_size": 64,
                                         "warmup": 5, **train},
                          model={"hidden": 32}, data={"n_train": 2000})


def _kill_at(step_to_kill: int):
    def hook(step, loss):
        if step == step_to_kill:
            raise Killed(f"killed at step {step}")
        return loss
    return hook


def _nan_at(step_to_fail: int):
    def hook(step, loss):
        return loss * float("nan") if step == step_to_fail else loss
    return hook


# --- end to end: a tiny model learns 8gaussians -------------------------------------------------

E2E = [("idff", "pf"), ("otcfm", "otcfm")]


@pytest.mark.parametrize("method,variant", E2E)
def test_tiny_model_learns_8gaussians(method, variant, toy_train_spec, smoke_cfg, tmp_path):
    """Trained W2 (euler, NFE 20, 1000 test samples) < 0.5 x the untrained model's and < 1.5.

    The W2 floor (two target draws of 1000) is about 0.86; the untrained model sits at 3.8-5.
    """
    n, nfe = 1000, 20
    spec = toy_train_spec(method, train={"steps": 800, "batch_size": 256, "lr": 0.002,
                                         "warmup": 50, "ema_decay": 0.99, "ckpt_every": 10_000},
                          data={"n_train": 20_000})
    espec = eval_spec(smoke_cfg, "toy", "8gaussians", variant, "euler", 0)
    espec.update(device="cpu", nfe=[nfe])
    espec["sweep"]["n_samples"] = n
    assert espec["model"] == spec["model"] and espec["method"] == spec["method"]

    family = get_family("toy")
    x0, target, _ = family.eval_batch(espec, "test", n, 0)
    torch.manual_seed(spec["seed"])  # the same initial weights run_train starts from
    untrained = network.build_from_meta(network.model_meta(spec, (2,), 0)).eval()
    sampler = espec["variant"]["sampler"]
    samples, _ = generate(CountingNet(untrained), sampler, x0, sigma=spec["method"].get("sigma", 0.0),
                          solver="euler", nfe=nfe)
    w2_untrained = wasserstein2(samples, target)

    ckpt = tmp_path / f"{method}.pt"
    summary = jobs.run_train(spec, ckpt, progress=False)
    result = jobs.run_sweep(espec, ckpt, tmp_path / "sweep.json")
    w2 = result["rows"][0]["w2"]
    print(f"{method}: untrained W2 {w2_untrained:.3f}, trained W2 {w2:.3f} "
          f"({summary['steps']} steps in {summary['wall_s']:.1f} s)")
    assert result["rows"][0]["nfe"] == nfe
    assert w2 < 0.5 * w2_untrained and w2 < 1.5


# --- resume ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["idff", "otcfm"])
def test_killed_run_resumes_to_the_same_weights(method, toy_train_spec, tmp_path, capsys):
    spec = _tiny(toy_train_spec, method, steps=30, ckpt_every=10, ema_decay=0.9)
    ref = tmp_path / "ref" / "model.pt"
    ref_summary = jobs.run_train(spec, ref, progress=False)

    out = tmp_path / "run" / "model.pt"
    with pytest.raises(Killed):
        jobs.run_train(spec, out, progress=False, on_step=_kill_at(25))
    assert not out.exists()
    assert load_checkpoint(resume_path(out))["step"] == 20
    capsys.readouterr()
    summary = jobs.run_train(spec, out, progress=False)
    assert "resuming" in capsys.readouterr().out
    assert not resume_path(out).exists()

    a, b = load_checkpoint(ref), load_checkpoint(out)
    assert a["step"] == b["step"] == 30
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    assert not torch.equal(a["model"]["net.0.weight"], a["ema"]["net.0.weight"])
    assert a["history"] == b["history"]
    assert summary["final_loss"] == ref_summary["final_loss"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_killed_run_resumes_on_cuda(toy_train_spec, tmp_path):
    """map_location='cuda' moves the saved RNG states to the GPU; resume must still work."""
    spec = _tiny(toy_train_spec, steps=30, ckpt_every=10)
    spec["device"] = "cuda"
    out = tmp_path / "model.pt"
    with pytest.raises(Killed):
        jobs.run_train(spec, out, progress=False, on_step=_kill_at(25))
    summary = jobs.run_train(spec, out, progress=False)
    assert summary["steps"] == 30 and load_checkpoint(out)["step"] == 30


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(toy_train_spec, tmp_path):
    spec = _tiny(toy_train_spec, steps=30, ckpt_every=10)
    out = tmp_path / "model.pt"
    with pytest.raises(TrainingDiverged) as info:
        jobs.run_train(spec, out, progress=False, on_step=_nan_at(25))
    msg = str(info.value)
    assert str(out) in msg and str(resume_path(out)) in msg and "step 25" in msg
    assert load_checkpoint(resume_path(out))["step"] == 20
    assert not out.exists() and not out.with_suffix(".json").exists()
    # the kept checkpoint resumes cleanly
    jobs.run_train(spec, out, progress=False)
    assert load_checkpoint(out)["step"] == 30


def test_nan_before_the_first_checkpoint(toy_train_spec, tmp_path):
    out = tmp_path / "model.pt"
    with pytest.raises(TrainingDiverged, match=r"\(none yet\)"):
        jobs.run_train(_tiny(toy_train_spec), out, progress=False, on_step=_nan_at(3))
    assert not out.exists() and not resume_path(out).exists()


# --- checkpoint safety -------------------------------------------------------------------------------

class Payload:
    """A custom class: pickling it into a checkpoint must make the load fail (weights_only)."""

    def __init__(self) -> None:
        self.x = 1


def _killed_run(spec, out):
    with pytest.raises(Killed):
        jobs.run_train(spec, out, progress=False, on_step=_kill_at(15))
    assert resume_path(out).exists()


def test_resume_with_other_meta_is_refused(toy_train_spec, tmp_path):
    out = tmp_path / "model.pt"
    spec = _tiny(toy_train_spec)
    _killed_run(spec, out)
    other = _tiny(toy_train_spec)
    other["method"]["w_flow"] = 1.0
    with pytest.raises(CheckpointError, match="another model/method/data") as info:
        jobs.run_train(other, out, progress=False)
    assert str(resume_path(out)) in str(info.value) and "w_flow" in str(info.value)


def test_truncated_checkpoints_are_refused(toy_train_spec, tmp_path):
    out = tmp_path / "model.pt"
    spec = _tiny(toy_train_spec)
    _killed_run(spec, out)
    rp = resume_path(out)
    rp.write_bytes(rp.read_bytes()[: rp.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        jobs.run_train(spec, out, progress=False)

    final = tmp_path / "final.pt"
    jobs.run_train(spec, final, progress=False)
    final.write_bytes(final.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_trained(final, network.build_from_meta, CPU)


def test_pickled_objects_are_refused(toy_train_spec, tmp_path):
    spec = _tiny(toy_train_spec)
    meta = network.model_meta(spec, (2,), 0)
    bad = tmp_path / "bad.pt"
    torch.save({"format": 1, "meta": meta, "payload": Payload()}, bad)
    with pytest.raises(CheckpointError, match="refused"):
        load_trained(bad, network.build_from_meta, CPU)
    out = tmp_path / "model.pt"
    torch.save({"format": 1, "meta": meta, "payload": Payload()}, resume_path(out))
    with pytest.raises(CheckpointError, match="refused"):
        jobs.run_train(spec, out, progress=False)


def test_load_trained_checks_expectations_and_architecture(toy_train_spec, tmp_path):
    spec = _tiny(toy_train_spec, steps=5)
    ckpt = tmp_path / "model.pt"
    jobs.run_train(spec, ckpt, progress=False)
    model, state = load_trained(ckpt, network.build_from_meta, CPU, expect={"dataset": "8gaussians"})
    assert not model.training and state["step"] == 5
    torch.testing.assert_close(dict(model.named_parameters())["net.0.weight"],
                               state["ema"]["net.0.weight"])
    with pytest.raises(CheckpointError, match="dataset='8gaussians' but this job expects 'moons'"):
        load_trained(ckpt, network.build_from_meta, CPU, expect={"dataset": "moons"})

    def wider(meta):
        return network.build_from_meta({**meta, "model": {**meta["model"], "hidden": 48}})
    with pytest.raises(CheckpointError, match="does not fit the model architecture"):
        load_trained(ckpt, wider, CPU)
    not_ours = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, not_ours)
    with pytest.raises(CheckpointError, match="not a checkpoint written by `idff train`"):
        load_trained(not_ours, network.build_from_meta, CPU)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_trained(tmp_path / "missing.pt", network.build_from_meta, CPU)


def test_train_json_and_seeded_determinism(toy_train_spec, tmp_path):
    import json

    spec = _tiny(toy_train_spec, steps=10)
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    jobs.run_train(spec, a, progress=False)
    jobs.run_train(spec, b, progress=False)
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    assert all(torch.equal(sa["ema"][k], sb["ema"][k]) for k in sa["ema"])
    info = json.loads(a.with_suffix(".json").read_text())
    assert info["job"] == "train" and info["steps"] == 10
    for key in ("git_commit", "config_hash", "seed", "device", "wall_s"):
        assert key in info["provenance"]
    assert info["provenance"]["device"].startswith("cpu")
    other = _tiny(toy_train_spec, steps=10)
    other["seed"] = 1
    jobs.run_train(other, c := tmp_path / "c.pt", progress=False)
    assert not torch.equal(load_checkpoint(c)["ema"]["net.0.weight"], sa["ema"]["net.0.weight"])


@pytest.mark.parametrize("key,value", [("steps", 0), ("batch_size", 0), ("ckpt_every", 0),
                                       ("ema_decay", 1.0), ("lr", 0.0)])
def test_train_config_rejects_bad_values(key, value):
    with pytest.raises(ValueError, match=f"train.{key}"):
        TrainConfig(**{key: value})
