"""The fast paths of issue 8 against the plain paths: fused sampling loop, model.compile switch."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from idff.config import eval_spec, validate_config
from idff.fastpaths import (
    architecture,
    compile_model,
    generator_class,
    wants_fused,
)
from idff.flows.fused import can_fuse, fused_generate
from idff.flows.generator import FusedGenerator, Generator
from idff.flows.nfe import CountingNet
from idff.flows.sampling import generate
from idff.models.mlp import MLP
from idff.steps import jobs, network

pytestmark = pytest.mark.usefixtures("one_thread")

CASES = [  # (sampler, solver, params, heads)
    ("idff1", "euler", {"sigma_s": 0.3}, 2),
    ("idff1", "euler_maruyama", {"sigma_s": 0.5, "noise": True}, 2),
    ("cfm", "euler", {}, 2),
    ("pf", "euler", {}, 2),
    ("bridge_sde", "euler_maruyama", {"g_scale": 0.7}, 2),
    ("native", "euler", {}, 1),
]


def _net(heads: int, dim: int = 3, seed: int = 0) -> CountingNet:
    torch.manual_seed(seed)
    return CountingNet(MLP(dim, n_heads=heads, hidden=32).eval())


@pytest.mark.parametrize("sampler,solver,params,heads", CASES)
@pytest.mark.parametrize("nfe", [1, 3, 20])
def test_fused_equals_plain(sampler, solver, params, heads, nfe):
    """Same samples, trajectory, NFE count and noise draws as the plain loop, to float rounding."""
    net = _net(heads)
    x0 = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    kw = dict(sigma=0.2, solver=solver, nfe=nfe, params=params, t_eps=1e-3,
              return_trajectory=True)
    a, ta, sa = generate(net, sampler, x0, generator=torch.Generator().manual_seed(5), **kw)
    keep = x0.clone()
    b, tb, sb = fused_generate(net, sampler, x0, generator=torch.Generator().manual_seed(5), **kw)
    assert torch.equal(x0, keep), "the fused loop must not write into x0"
    assert (sb.nfe, sb.vjp, sb.steps) == (sa.nfe, sa.vjp, sa.steps) == (nfe, 0, nfe)
    assert tb.shape == ta.shape == (nfe + 1, 64, 3)
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(tb, ta, rtol=1e-5, atol=1e-5)
    assert not torch.equal(b, x0)


class ConstantX1(nn.Module):
    """x1_hat = c for every input, s_hat = 0: the CFM field (c - x) / (1 - t)."""

    def __init__(self, c: torch.Tensor) -> None:
        super().__init__()
        self.c = c

    def forward(self, x, t, cond=None):
        return torch.cat([self.c.expand_as(x), torch.zeros_like(x)], dim=1)


@pytest.mark.parametrize("nfe", [1, 4, 10])
def test_fused_cfm_closed_form(nfe):
    """With x1_hat = c the exact flow is x_t = (1 - t) x0 + t c; Euler is exact on it (the field
    is constant along the straight line) and the last step lands on c exactly."""
    c = torch.tensor([[1.5, -2.0]])
    net = CountingNet(ConstantX1(c))
    x0 = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    out, traj, stats = fused_generate(net, "cfm", x0, sigma=0.2, solver="euler", nfe=nfe,
                                      return_trajectory=True)
    assert torch.equal(out, c.expand(8, 2))
    for i in range(nfe):
        t = i / nfe
        torch.testing.assert_close(traj[i], (1 - t) * x0 + t * c, rtol=1e-6, atol=1e-6)
    assert stats.nfe == nfe


def test_fused_falls_back_for_higher_orders():
    """idff2 and heun are not fused: fused_generate returns exactly the plain result."""
    net = _net(2)
    x0 = torch.randn(16, 3, generator=torch.Generator().manual_seed(2))
    for sampler, solver, nfe, params in [("idff2", "euler", 4, {"gamma1": 0.5, "gamma2": 0.5}),
                                         ("cfm", "heun", 5, {})]:
        assert not can_fuse(sampler, solver)
        a, sa = generate(net, sampler, x0, sigma=0.2, solver=solver, nfe=nfe, params=params)
        b, sb = fused_generate(net, sampler, x0, sigma=0.2, solver=solver, nfe=nfe, params=params)
        assert torch.equal(a, b) and (sa.nfe, sa.vjp) == (sb.nfe, sb.vjp)
    assert sb.nfe == 5 and sa.vjp == 0


def test_fused_rejects_what_plain_rejects():
    net = _net(2)
    x0 = torch.randn(4, 3)
    with pytest.raises(ValueError, match="euler_maruyama"):
        fused_generate(net, "bridge_sde", x0, sigma=0.2, solver="euler", nfe=3)
    with pytest.raises(ValueError, match="gamma1"):
        fused_generate(net, "idff1", x0, sigma=0.2, solver="euler", nfe=3, params={"gamma1": 1})
    with pytest.raises(ValueError, match="sigma > 0"):
        fused_generate(net, "pf", x0, sigma=0.0, solver="euler", nfe=3)
    with pytest.raises(ValueError, match="NFE budget"):
        fused_generate(net, "pf", x0, sigma=0.2, solver="euler", nfe=0)


def test_fused_generator_matches_generator():
    """FusedGenerator seeds the SDE noise as Generator does: same samples for the same seed."""
    net = _net(2)
    x0 = torch.randn(32, 3, generator=torch.Generator().manual_seed(3))
    kw = dict(net=net, sampler="bridge_sde", solver="euler_maruyama", nfe=6, sigma=0.2,
              params={"g_scale": 1.0})
    plain, fused = Generator(**kw), FusedGenerator(**kw)
    a, b = plain(x0, seed=4), fused(x0, seed=4)
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(fused(x0, seed=5), b)  # the seed reaches the noise
    assert (fused.calls, fused.nfe_per_call) == (2, 6)


def test_fused_generator_goes_through_the_fused_loop(monkeypatch):
    """Equal samples alone would not show the fused loop ran: spy on it."""
    import idff.flows.generator as fp

    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs["nfe"])
        return fused_generate(*args, **kwargs)

    monkeypatch.setattr(fp, "fused_generate", spy)
    kw = dict(net=_net(2), sampler="pf", solver="euler", nfe=4, sigma=0.2)
    FusedGenerator(**kw)(torch.zeros(5, 3))
    Generator(**kw)(torch.zeros(5, 3))
    assert seen == [4]


def test_config_switches(smoke_cfg):
    """sweep.fused picks the generator class; model.compile never reaches the network's
    constructor; both must be booleans."""
    spec = eval_spec(copy.deepcopy(smoke_cfg), "toy", "moons", "idff1", "euler", 0)
    net = _net(2, dim=2)
    assert type(network.make_generator(spec, net, 0.2, 5, {}, torch.device("cpu"))) is Generator
    spec["sweep"]["fused"] = True
    assert type(network.make_generator(spec, net, 0.2, 5, {}, torch.device("cpu"))) is FusedGenerator
    assert generator_class({}) is Generator
    with pytest.raises(ValueError, match="sweep.fused"):
        wants_fused({"fused": "yes"})
    cfg = copy.deepcopy(smoke_cfg)
    cfg["experiments"]["toy"]["model"]["compile"] = True
    validate_config(cfg)  # the schema lets model take extra keys
    model_cfg = {"arch": "mlp", "hidden": 8, "compile": False}
    assert architecture(model_cfg) == {"hidden": 8}
    meta = {"model": model_cfg, "data_shape": [2], "n_heads": 2, "n_cond": 0}
    assert isinstance(network.build_from_meta(meta), MLP)
    with pytest.raises(ValueError, match="model.compile"):
        compile_model(MLP(2), {"compile": 1})


def test_compile_switch_equal_forward_and_sampling():
    """A compiled network (aot_eager: the same graph capture as inductor, without C++ codegen)
    gives the plain forward and samples; state-dict keys (checkpoints) are unchanged; idff2/idff3
    are never compiled (nested autograd through a compiled graph is not supported)."""
    plain = _net(2).net
    model = copy.deepcopy(plain)
    assert not compile_model(model, {"compile": False})
    assert not compile_model(model, {"compile": True}, sampler="idff3")
    assert compile_model(model, {"compile": True}, sampler="idff1", backend="aot_eager")
    assert list(model.state_dict()) == list(plain.state_dict())
    x0 = torch.randn(16, 3, generator=torch.Generator().manual_seed(6))
    a, _ = generate(CountingNet(plain), "idff1", x0, sigma=0.2, solver="euler", nfe=4)
    b, _ = generate(CountingNet(model), "idff1", x0, sigma=0.2, solver="euler", nfe=4)
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_compiled_training_matches_plain(toy_train_spec, tmp_path):
    """model.compile: true (inductor) trains to the plain run's weights within tolerance."""
    weights = []
    for flag in (False, True):
        spec = toy_train_spec("idff", train={"steps": 20, "batch_size": 64, "ckpt_every": 100,
                                             "warmup": 0},
                              model={"hidden": 16, "compile": flag}, data={"n_train": 500})
        out = tmp_path / f"c{int(flag)}.pt"
        jobs.run_train(spec, out, progress=False)
        weights.append(torch.load(out, weights_only=True)["model"])
    for k in weights[0]:
        torch.testing.assert_close(weights[1][k], weights[0][k], rtol=1e-4, atol=1e-5)


def test_ema_update_is_bitwise_the_loop_of_lerp():
    """idff.train.ema_update (one torch._foreach_lerp_) equals the former per-tensor lerp_ loop
    bit for bit, buffers are copied, and a structure mismatch is refused."""
    from idff.models.unet import UNet
    from idff.train import ema_update

    torch.manual_seed(0)
    model = nn.Sequential(UNet(3, 6, 8, model_channels=8, channel_mult=(1,), num_res_blocks=1,
                               attention_resolutions=(), num_heads=2, num_head_channels=-1,
                               norm_groups=4),
                          nn.BatchNorm1d(3))  # a module with buffers
    fast, loop = copy.deepcopy(model), copy.deepcopy(model)
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model[1].running_mean.add_(1.0)
        ema_update(fast, model, 0.9)
        with torch.no_grad():
            for pe, pm in zip(loop.parameters(), model.parameters(), strict=True):
                pe.lerp_(pm, 1 - 0.9)
    for a, b in zip(fast.parameters(), loop.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(next(fast.parameters()), next(model.parameters()))
    assert torch.equal(fast[1].running_mean, model[1].running_mean)
    with pytest.raises(ValueError, match="parameter tensors"):
        ema_update(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), 0.9)


# --- benchmark helper: the quality-per-cost table (benchmarks/bench_quality_per_cost.py) -------


def _sweep(root, variant, method, sampler, values, budgets=(2, 5, 10, 100), seed=0, vjp=0):
    import json

    rows = [{"nfe_budget": b, "nfe": b, "vjp": vjp * b, "calls": 1, "wall_s": 0.01 * b,
             "params": {}, "w2": v} for b, v in zip(budgets, values, strict=True)]
    path = root / "metrics" / "toy" / "moons" / variant / "euler" / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"job": "sweep", "experiment": "toy", "dataset": "moons",
                                "variant": variant, "method": method, "sampler": sampler,
                                "solver": "euler", "seed": seed, "rows": rows}))


def _qpc():
    import sys

    bench = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    import bench_quality_per_cost

    return bench_quality_per_cost


def test_quality_per_cost_table(tmp_path):
    """OT-CFM reaches w2 0.5 at NFE 100 (mean of two seeds); idff2 first gets there at budget 10
    (10x fewer forward passes, wall 10x); idff1 never does; without NFE 100 the largest budget
    is the reference."""
    qpc = _qpc()
    _sweep(tmp_path, "otcfm", "otcfm", "native", [2.0, 1.0, 0.7, 0.4], seed=0)
    _sweep(tmp_path, "otcfm", "otcfm", "native", [2.0, 1.0, 0.7, 0.6], seed=1)
    _sweep(tmp_path, "idff2", "idff", "idff2", [0.9, 0.6, 0.5, 0.45], vjp=2)
    _sweep(tmp_path, "idff1", "idff", "idff1", [0.9, 0.8, 0.7, 0.6])
    rows = qpc.quality_per_cost(qpc.average(qpc.read_sweeps(tmp_path)), ["w2"])
    by = {r["variant"]: r for r in rows}
    assert by["otcfm"]["ref_value"] == pytest.approx(0.5) and by["otcfm"]["seeds"] == 2
    assert by["idff2"]["reached"] and by["idff2"]["budget"] == 10
    assert by["idff2"]["nfe_saving"] == pytest.approx(10.0)
    assert by["idff2"]["wall_saving"] == pytest.approx(10.0) and by["idff2"]["vjp"] == 20
    assert not by["idff1"]["reached"] and by["idff1"]["best_value"] == pytest.approx(0.6)
    assert by["otcfm"]["budget"] == 100
    rows10 = qpc.quality_per_cost(qpc.average(qpc.read_sweeps(tmp_path)), ["w2"], ref_nfe=50)
    assert {r["ref_budget"] for r in rows10} == {100}  # 50 not swept: the largest budget
    md = qpc.markdown(rows, tmp_path)
    assert "| idff2 (euler) | 1 | 10 | 10 + 20 |" in md and "not reached" in md


def test_quality_per_cost_rejects_bad_folders(tmp_path):
    qpc = _qpc()
    with pytest.raises(FileNotFoundError, match="metrics"):
        qpc.read_sweeps(tmp_path)
    bad = tmp_path / "metrics" / "toy" / "moons" / "x" / "euler" / "seed0.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{truncated")
    with pytest.raises(ValueError, match="not valid JSON"):
        qpc.read_sweeps(tmp_path)
    bad.write_text('{"job": "tune"}')
    with pytest.raises(ValueError, match="not a sweep metric file"):
        qpc.read_sweeps(tmp_path)


def test_quality_per_cost_compares_only_lower_is_better_metrics(tmp_path):
    """A correlation (higher is better) must never be read as "reached at most the reference":
    the default metric list leaves cc/ssr/populations out, and asking for one is refused."""
    qpc = _qpc()
    assert all(qpc.lower_is_better(m) for m in ["w2", "mmd_multi", "mae_k10_psi", "crps_3",
                                                "rmse", "js", "pop_err", "fid", "kid"])
    assert not any(qpc.lower_is_better(m) for m in ["cc", "cc_phi", "circ_cc_k10", "ssr",
                                                    "spread_2", "isc", "kid_std", "wait_ratio",
                                                    "pop_alpha_R", "maestro"])
    _sweep(tmp_path, "otcfm", "otcfm", "native", [2.0, 1.0, 0.7, 0.4])
    table = qpc.average(qpc.read_sweeps(tmp_path))
    for rows in table.values():
        for vals in rows.values():
            vals["cc"] = 0.9
    assert qpc.metrics_of(table) == ["w2"]
    with pytest.raises(SystemExit, match="cc: not a lower-is-better metric"):
        qpc.main([str(tmp_path), "--metrics", "w2,cc", "--out", str(tmp_path / "out")])


# --- benchmark helper: rule times and OpenMM speed of a finished run (bench_run_times.py) --------


def test_run_times_sums_rule_benchmarks_and_reads_md_speed(tmp_path):
    import sys

    import numpy as np

    from idff.data.md import save_md_dataset

    bench = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    import bench_run_times as brt

    with pytest.raises(FileNotFoundError, match="benchmarks/rules"):
        brt.rule_jobs(tmp_path)
    head = "s\th:m:s\tmax_rss\n"
    for rule, name, secs in [("train", "a", 10.0), ("train", "b", 30.0), ("data", "x", 5.0)]:
        f = tmp_path / "benchmarks" / "rules" / rule / "deep" / f"{name}.tsv"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(head + f"{secs}\t0:00:10\t100\n")
    assert brt.rule_jobs(tmp_path) == {"data": [5.0], "train": [10.0, 30.0]}
    trajs = [np.zeros((500, 2), np.float32), np.zeros((500, 2), np.float32)]
    save_md_dataset(tmp_path / "resources/data/md/sim/dihedrals.npz", trajs, 2.0, "openmm-vacuum",
                    {"ns_per_day": [1000.0, 3000.0], "workers": 2, "wall_s": 9.0})
    save_md_dataset(tmp_path / "resources/data/md/dl/dihedrals.npz", trajs, 1.0, "mdshare")
    (s,) = brt.md_speeds(tmp_path)  # the downloaded set has no speed and is not listed
    assert s["ns_per_day_mean"] == 2000.0 and s["ns_per_trajectory"] == pytest.approx(1.0)
    res = brt.main([str(tmp_path), "--out", str(tmp_path / "out"), "--wall", "25"])
    assert res["rules"]["train"] == {"jobs": 2, "total_s": 40.0, "mean_s": 20.0, "max_s": 30.0}
    md = (tmp_path / "out" / "run_times.md").read_text()
    assert "| train | 2 | 40 | 20.0 | 30.0 |" in md and "job time / wall = 1.80" in md
    assert "2,000 (1,000-3,000)" in md
    (tmp_path / "benchmarks/rules/data/deep/x.tsv").write_text("garbage\n1\n")
    with pytest.raises(ValueError, match="not a Snakemake benchmark file"):
        brt.rule_jobs(tmp_path)
