"""Issue 13: method entries named apart from their class, the authors' toy settings (8-gaussians
law, biased MMD, a 3-stage solver, fresh draws, x1-loss weighting), seed-paired statistics and
the claims ledger computed from result files."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from idff.config import load_config, train_spec, validate_config
from idff.data.toy import FreshToyPairs, sample_toy
from idff.errors import ConfigError
from idff.flows.methods import IDFF, OTCFM, flow_weight
from idff.flows.solvers import integrate, steps_for_budget
from idff.metrics.distribution import distribution_metrics, mmd2_rbf, mmd2_rbf_biased
from idff.metrics.paired import paired_difference
from idff.report.claims import build_claims, table_claims
from idff.steps import jobs, network

SMOKE = "config/smoke.yaml"


def _smoke() -> dict:
    return load_config(SMOKE)


# ------------------------------------------------------------------ methods named apart from class


def _two_couplings() -> dict:
    cfg = _smoke()
    toy = cfg["experiments"]["toy"]
    toy["methods"]["idff_ot"] = {"class": "idff", "sigma": 0.2, "coupling": "exact_ot"}
    toy["variants"]["idff1_ot"] = {"method": "idff_ot", "sampler": "idff1"}
    return cfg


def test_one_class_two_couplings_in_one_experiment():
    cfg = _two_couplings()
    validate_config(cfg)
    built = {}
    for name in ("idff", "idff_ot"):
        spec = train_spec(cfg, "toy", "8gaussians", name, 0)
        cls, params = network.method_params(spec)
        assert cls == "idff" and "class" not in params
        built[name] = jobs.build_method(cls, **params)
    assert isinstance(built["idff"], IDFF) and isinstance(built["idff_ot"], IDFF)
    assert built["idff"].coupling == "independent"
    assert built["idff_ot"].coupling == "exact_ot"


def test_old_style_entries_keep_working():
    cfg = _smoke()  # methods named after their class, no `class:` key
    assert "class" not in cfg["experiments"]["toy"]["methods"]["otcfm"]
    spec = train_spec(cfg, "toy", "8gaussians", "otcfm", 0)
    cls, params = network.method_params(spec)
    assert isinstance(jobs.build_method(cls, **params), OTCFM)


@pytest.mark.parametrize("entry, fragments", [
    ({"coupling": "exact_ot"}, ("experiments.toy.methods.idff_ot", "needs `class:",
                                "idff_ot: {class: idff")),
    ({"class": "otcfm", "coupling": "exact_ot"}, ("experiments.toy.methods.idff_ot",
                                                  "has no setting 'coupling'")),
    ({"class": "idff", "flow_weight": "cubic"}, ("flow_weight",)),
])
def test_bad_method_entries_name_the_key_and_the_fix(entry, fragments):
    cfg = _smoke()
    cfg["experiments"]["toy"]["methods"]["idff_ot"] = entry
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    for frag in fragments:
        assert frag in str(info.value), str(info.value)


def test_sampler_must_fit_the_class_not_the_name():
    cfg = _smoke()
    toy = cfg["experiments"]["toy"]
    toy["methods"]["ot_baseline"] = {"class": "otcfm", "sigma": 0.0}
    toy["variants"]["wrong"] = {"method": "ot_baseline", "sampler": "idff1"}
    with pytest.raises(ConfigError, match="of class 'otcfm'"):
        validate_config(cfg)


# ------------------------------------------------------------------ the authors' toy settings


def _mode_std(x: torch.Tensor) -> float:
    angles = torch.arange(8, dtype=torch.float64) * math.pi / 4
    centres = 5 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    x = x.double()
    nearest = centres[torch.cdist(x, centres).argmin(dim=1)]
    return float((x - nearest).std())


@pytest.mark.parametrize("name, std", [("8gaussians", math.sqrt(0.1)),
                                       ("8gaussians_torchcfm", 0.1 ** 0.25)])
def test_eight_gaussians_laws(name, std):
    x = sample_toy(name, 200_000, torch.Generator().manual_seed(0))
    assert _mode_std(x) == pytest.approx(std, rel=0.01)


def test_fresh_pairs_draw_new_points_reproducibly():
    src = FreshToyPairs("checkerboard")
    g = torch.Generator().manual_seed(3)
    _, a, _ = src.sample_batch(64, g)
    _, b, _ = src.sample_batch(64, g)
    assert not torch.equal(a, b)  # new points every batch
    _, again, _ = src.sample_batch(64, torch.Generator().manual_seed(3))
    assert torch.equal(a, again)  # drawn from the (checkpointed) generator only


def test_fresh_and_n_train_exclude_each_other():
    cfg = _smoke()
    cfg["experiments"]["toy"]["data"] = {"fresh": True, "n_train": 100}
    with pytest.raises(ConfigError, match="exclude each other"):
        validate_config(cfg)


def test_inverse_square_flow_weight_has_mean_one():
    t = torch.linspace(0, 1, 2_000_001, dtype=torch.float64)
    w = flow_weight(t, "inv_sq")
    assert float(torch.trapezoid(w, t)) == pytest.approx(1.0, rel=1e-6)
    assert float(w[-1] / w[0]) == pytest.approx((1.01 / 0.01) ** 2)
    assert torch.equal(flow_weight(t, "uniform"), torch.ones_like(t))


def test_inverse_square_weighting_changes_the_idff_loss_only_by_the_weight():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 4)

    def model(x, t, cond):
        return net(torch.cat([x, t[:, None]], dim=1))

    x0, x1 = torch.randn(32, 2), torch.randn(32, 2)
    out = {}
    for kind in ("uniform", "inv_sq"):
        m = IDFF(sigma=0.2, flow_weight=kind)
        out[kind] = m.loss(model, x0, x1, generator=torch.Generator().manual_seed(1))
    assert out["uniform"].parts["score"] == pytest.approx(out["inv_sq"].parts["score"])
    assert out["uniform"].parts["flow"] != pytest.approx(out["inv_sq"].parts["flow"])


# ------------------------------------------------------------------ 3-stage solver


def test_ssprk3_budget_and_pass_count():
    assert steps_for_budget("ssprk3", 15) == 5
    with pytest.raises(ValueError, match="multiple of 3"):
        steps_for_budget("ssprk3", 10)
    calls = []

    def drift(x, t):
        calls.append(t)
        return torch.full_like(x, 3 * t * t)  # x(1) = x(0) + 1 exactly for a 3rd-order rule

    x = integrate(drift, torch.zeros(4, 1), "ssprk3", 15)
    assert len(calls) == 15
    assert max(calls) < 1.0  # the last step never evaluates t = 1 (IDFF's field is singular)
    assert torch.allclose(x, torch.ones(4, 1), atol=1e-12)


def test_ssprk3_is_third_order():
    def err(nfe: int) -> float:
        x = integrate(lambda x, t: x, torch.ones(1, dtype=torch.float64), "ssprk3", nfe)
        return abs(float(x) - math.e)

    ratio = err(30) / err(60)  # 10 -> 20 steps
    assert 6.5 < ratio < 9.5, ratio


# ------------------------------------------------------------------ MMD estimators


def test_mmd_estimators_closed_forms():
    a = np.array([[0.0], [1.0]])
    e = math.exp(-0.5)
    # identical sets: the biased estimate is exactly 0, the unbiased one e^{-1/2} - 1 < 0
    assert mmd2_rbf_biased(a, a) == pytest.approx(0.0, abs=1e-15)
    assert mmd2_rbf(a, a) == pytest.approx(e - 1.0)
    # two point masses at distance d: both give 2 - 2 exp(-d^2 / 2)
    x, y = np.zeros((3, 1)), np.full((3, 1), 2.0)
    for f in (mmd2_rbf, mmd2_rbf_biased):
        assert f(x, y) == pytest.approx(2 - 2 * math.exp(-2.0))


def test_biased_minus_unbiased_is_the_diagonal_term():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 2, generator=g), torch.randn(60, 2, generator=g) + 0.3
    m = distribution_metrics(x, y)

    def mean_off(z):
        k = torch.exp(-torch.cdist(z.double(), z.double()) ** 2 / 2)
        n = z.shape[0]
        return float((k.sum() - n) / (n * (n - 1)))

    expected = (1 - mean_off(x)) / 50 + (1 - mean_off(y)) / 60
    assert m["mmd_biased"] - m["mmd"] == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------------ paired statistics


def test_paired_difference_hand_computed():
    d = paired_difference([1, 2, 3, 4, 5], [0.5, 1.5, 2.5, 3.5, 4.0], floor=0.1)
    assert d.n == 5 and d.mean == pytest.approx(0.6)
    assert d.std == pytest.approx(math.sqrt(0.05))
    assert d.ci == pytest.approx(2.7764451051977987 * math.sqrt(0.05) / math.sqrt(5))
    assert d.n_agree == 5 and d.outcome == "b better"
    assert paired_difference([1, 2, 3, 4, 5], [0.5, 1.5, 2.5, 3.5, 4.0], floor=1.0).outcome \
        == "no difference"  # inside the metric floor


def test_paired_difference_inside_seed_noise_is_no_difference():
    d = paired_difference([1.0, 2.0, 0.0], [1.5, 1.0, 0.6])  # d = -0.5, 1.0, -0.6
    assert d.outcome == "no difference" and d.n_agree == 2


def test_paired_difference_drops_diverged_seeds():
    d = paired_difference([1.0, float("nan"), 1.0, 1.0], [2.0, 2.0, 2.1, 1.9])
    assert d.n == 3 and d.mean == pytest.approx(-1.0) and d.outcome == "a better"


# ------------------------------------------------------------------ the ledger from result files


def _ledger_cfg() -> dict:
    cfg = _smoke()
    toy = cfg["experiments"]["toy"]
    toy["datasets"], toy["seeds"] = ["8gaussians"], [0, 1, 2, 3, 4]
    toy["methods"] = {"idff": {"sigma": 0.2}, "idff_ot": {"class": "idff", "coupling": "exact_ot"},
                      "otcfm": {"sigma": 0.0}}
    toy["variants"] = {"idff1": {"method": "idff", "sampler": "idff1"},
                       "idff1_ot": {"method": "idff_ot", "sampler": "idff1"},
                       "idff2_ot": {"method": "idff_ot", "sampler": "idff2"},
                       "otcfm": {"method": "otcfm", "sampler": "native"}}
    toy["sweep"]["nfe"] = [2, 10, 100]
    toy.pop("figures", None)
    cfg["experiments"] = {"toy": toy}
    cfg["paper_targets"] = {"table_claims": "results/tables/table_claims.md"}
    validate_config(cfg)
    return cfg


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _fake_results(root, cfg):
    """MMD per (variant, NFE, seed): idff1_ot at NFE 10 equals OT-CFM at NFE 100 up to tiny
    seed noise, idff1 without OT is far worse, idff2 beats idff1 at NFE 2."""
    toy = cfg["experiments"]["toy"]
    base = {("otcfm", 100): 0.010, ("idff1_ot", 10): 0.010, ("idff1", 10): 0.080,
            ("idff2_ot", 2): 0.020, ("idff1_ot", 2): 0.060}
    rng = np.random.default_rng(0)
    for v, var in toy["variants"].items():
        for seed in toy["seeds"]:
            rows = []
            for nfe in toy["sweep"]["nfe"]:
                m = base.get((v, nfe), 0.5) + 1e-4 * rng.standard_normal()
                rows.append({"nfe_budget": nfe, "nfe": nfe, "vjp": 0, "wall_s": 0.1,
                             "w2": 1.0, "mmd": m, "mmd_biased": m + 1e-3, "mmd_multi": m})
            _write(root / f"metrics/toy/8gaussians/{v}/euler/seed{seed}.json",
                   {"dataset": "8gaussians", "variant": v, "method": var["method"],
                    "sampler": var["sampler"], "solver": "euler", "seed": seed, "rows": rows})
    for seed in toy["seeds"]:
        f = 1e-4 * rng.standard_normal()
        _write(root / f"floor/toy/8gaussians/seed{seed}.json",
               {"dataset": "8gaussians", "seed": seed, "w2": 0.8, "mmd": f, "mmd_biased": f + 1e-3,
                "mmd_multi": f})


def test_ledger_verdicts_from_result_files(tmp_path):
    cfg = _ledger_cfg()
    _fake_results(tmp_path / "results", cfg)
    claims = {c.key: c for c in build_claims(cfg, tmp_path / "results", "table_claims")}
    assert claims["C1"].verdict == "holds", claims["C1"].why
    assert claims["C2"].verdict == "does not hold"
    assert claims["C3"].verdict == "holds"
    for key in ("C4", "C5", "C6", "C7", "C8"):
        assert claims[key].verdict == "not testable here" and claims[key].why
    out = tmp_path / "results/tables/table_claims.md"
    written = table_claims("table_claims", cfg, "toy", tmp_path / "results", out)
    assert {p.suffix for p in written} == {".md", ".csv", ".tex"}
    text = out.read_text()
    assert "| C1: " in text and "**holds**" in text and "**does not hold**" in text


def test_ledger_calls_a_win_inside_the_noise_no_difference(tmp_path):
    cfg = _ledger_cfg()
    _fake_results(tmp_path / "results", cfg)
    # IDFF without OT now 0.0005 better than OT-CFM on average: inside the floor's spread
    for seed in cfg["experiments"]["toy"]["seeds"]:
        p = tmp_path / f"results/floor/toy/8gaussians/seed{seed}.json"
        obj = json.loads(p.read_text())
        obj["mmd"] = obj["mmd_biased"] = 0.002 * (-1) ** seed
        p.write_text(json.dumps(obj))
        p = tmp_path / f"results/metrics/toy/8gaussians/idff1/euler/seed{seed}.json"
        obj = json.loads(p.read_text())
        for row in obj["rows"]:
            if row["nfe_budget"] == 10:
                row["mmd"] = row["mmd_biased"] = 0.0095
        p.write_text(json.dumps(obj))
    c2 = {c.key: c for c in build_claims(copy.deepcopy(cfg), tmp_path / "results",
                                         "table_claims")}["C2"]
    outcomes = {r["outcome"] for r in c2.rows if r["metric"] == "mmd" and r["a"].endswith("NFE 10)")}
    assert outcomes == {"no difference"}, c2.rows


def test_claims_config_holds_the_toy_paper_and_md_cpu_experiments():
    import yaml

    claims = yaml.safe_load(open("config/claims_cpu.yaml"))["experiments"]
    toy = yaml.safe_load(open("config/toy_paper.yaml"))["experiments"]
    md = yaml.safe_load(open("config/md_cpu.yaml"))["experiments"]
    assert claims == {**toy, **md}  # so results of either run are reused, never recomputed


def test_ledger_names_the_data_sets_a_claim_holds_on(tmp_path):
    cfg = _ledger_cfg()
    toy = cfg["experiments"]["toy"]
    toy["datasets"] = ["8gaussians", "moons"]
    _fake_results(tmp_path / "results", cfg)  # writes 8gaussians only
    for kind in ("metrics", "floor"):
        for p in (tmp_path / "results" / kind / "toy" / "8gaussians").rglob("*.json"):
            q = Path(str(p).replace("/8gaussians/", "/moons/"))
            q.parent.mkdir(parents=True, exist_ok=True)
            obj = json.loads(p.read_text())
            obj["dataset"] = "moons"
            for row in obj.get("rows", []):
                if obj["variant"] == "idff2_ot":  # order 2 no better than order 1 on moons
                    row["mmd"], row["mmd_biased"] = 0.06, 0.061
            q.write_text(json.dumps(obj))
    c3 = {c.key: c for c in build_claims(cfg, tmp_path / "results", "table_claims")}["C3"]
    assert c3.verdict == "holds only on 8gaussians (not on moons)", c3.verdict
