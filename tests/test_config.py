"""Config loading, overrides, validation errors that name the key, and job specs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from idff.config import (
    apply_override,
    data_spec,
    eval_spec,
    load_config,
    sweep_nfes,
    train_spec,
    validate_config,
)
from idff.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "config" / "smoke.yaml"


@pytest.mark.parametrize("name", ["smoke.yaml", "toy_cpu.yaml", "config.yaml"])
def test_shipped_configs_validate(name):
    cfg = load_config(ROOT / "config" / name)
    assert "toy" in cfg["experiments"]


def _raw() -> dict:
    return yaml.safe_load(SMOKE.read_text())


def _toy(cfg: dict) -> dict:
    return cfg["experiments"]["toy"]


def _bad(edit, key: str, *fragments: str) -> None:
    cfg = _raw()
    edit(cfg)
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    msg = str(info.value)
    assert key in msg, msg
    for frag in fragments:
        assert frag in msg, msg


def test_wrong_type():
    _bad(lambda c: _toy(c)["train"].__setitem__("steps", "ten"),
         "experiments.toy.train.steps", "'ten'", "integer")


def test_unknown_dataset():
    _bad(lambda c: _toy(c).__setitem__("datasets", ["8gaussians", "swissroll"]),
         "experiments.toy.datasets.1", "swissroll", "8gaussians, moons, checkerboard, pinwheel")


def test_negative_and_zero_nfe():
    _bad(lambda c: _toy(c)["sweep"].__setitem__("nfe", [2, -5]), "experiments.toy.sweep.nfe.1", "-5")
    _bad(lambda c: _toy(c)["sweep"].__setitem__("nfe", [0]), "experiments.toy.sweep.nfe.0")


def test_missing_key():
    _bad(lambda c: _toy(c).pop("sweep"), "experiments.toy", "'sweep' is a required property")
    _bad(lambda c: _toy(c)["train"].pop("lr"), "experiments.toy.train", "'lr'")


def test_unknown_keys():
    _bad(lambda c: _toy(c)["train"].__setitem__("stpes", 10), "experiments.toy.train", "stpes")
    _bad(lambda c: _toy(c)["methods"]["idff"].__setitem__("sigm", 0.2),
         "experiments.toy.methods.idff", "sigm")


def test_unknown_variant_method_and_sampler():
    _bad(lambda c: _toy(c)["variants"]["idff1"].__setitem__("method", "ddpm"),
         "experiments.toy.variants.idff1.method", "ddpm")
    _bad(lambda c: _toy(c)["variants"]["idff1"].__setitem__("sampler", "idff4"),
         "experiments.toy.variants.idff1.sampler", "idff4")


def test_variant_of_an_untrained_method():
    def edit(c):
        _toy(c)["methods"].pop("sbcfm")
    _bad(edit, "experiments.toy.variants.sbcfm.method", "not trained")


def test_sampler_method_mismatch():
    _bad(lambda c: _toy(c)["variants"]["icfm"].__setitem__("sampler", "idff1"),
         "experiments.toy.variants.icfm.sampler", "does not fit method 'icfm'")
    _bad(lambda c: _toy(c)["variants"]["pf"].__setitem__("sampler", "native"),
         "experiments.toy.variants.pf.sampler", "does not fit method 'idff'")


def test_sampler_parameter_not_known():
    _bad(lambda c: _toy(c)["variants"]["idff1"]["tune"].__setitem__("gamma1", [0.1]),
         "experiments.toy.variants.idff1", "gamma1", "sigma_s")


def test_stochastic_sampler_with_a_deterministic_solver():
    _bad(lambda c: _toy(c)["variants"]["bridge_sde"].__setitem__("solvers", ["heun"]),
         "experiments.toy.variants.bridge_sde.solvers", "euler_maruyama", "'heun'")
    _bad(lambda c: _toy(c)["variants"]["idff1"].__setitem__("params", {"noise": True}),
         "experiments.toy.variants.idff1.solvers", "euler_maruyama")


@pytest.mark.parametrize("name", ["a..b", "a;rm", "a b", "$(x)", "../up", "a/b"])
def test_unsafe_names(name):
    _bad(lambda c: _toy(c).__setitem__("datasets", [name]), "experiments.toy.datasets.0", name)

    def rename(c):
        c["experiments"][name] = c["experiments"].pop("toy")
    _bad(rename, "experiments", name)

    def variant(c):
        _toy(c)["variants"][name] = _toy(c)["variants"].pop("pf")
    _bad(variant, "experiments.toy.variants", name)


def test_paper_target_outside_results():
    _bad(lambda c: c["paper_targets"].__setitem__("table_toy", "results/../x.md"),
         "paper_targets.table_toy")
    _bad(lambda c: c["paper_targets"].__setitem__("table_toy", "/tmp/x.md"),
         "paper_targets.table_toy")


def test_nfe_budget_no_solver_can_meet():
    def edit(c):
        _toy(c)["sweep"].update(solvers=["rk4"], nfe=[2, 5, 10])
    _bad(edit, "experiments.toy.sweep.nfe", "rk4")

    def midpoint(c):
        _toy(c)["sweep"].update(solvers=["euler", "midpoint"], nfe=[3, 5])
    _bad(midpoint, "experiments.toy.sweep.nfe", "midpoint")


def test_overrides():
    cfg = load_config(SMOKE, ["experiments.toy.train.steps=20", "experiments.toy.sweep.nfe=[4, 8]",
                              "device=cpu"])
    assert _toy(cfg)["train"]["steps"] == 20 and _toy(cfg)["sweep"]["nfe"] == [4, 8]
    assert cfg["device"] == "cpu"
    with pytest.raises(ConfigError, match="experiments.toy.train.steps"):
        load_config(SMOKE, ["experiments.toy.train.steps=-3"])
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(SMOKE, ["experiments.toy.train.steps"])
    d = {"a": 1}
    with pytest.raises(ConfigError, match="a is not a section"):
        apply_override(d, "a.b=2")


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("experiments: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_specs(smoke_cfg):
    cfg = copy.deepcopy(smoke_cfg)
    spec = train_spec(cfg, "toy", "moons", "idff", 2)
    assert spec["method"] == {"name": "idff", **_toy(cfg)["methods"]["idff"]}
    assert spec["seed"] == 2 and spec["dataset"] == "moons" and spec["family"] == "toy"
    ev = eval_spec(cfg, "toy", "moons", "idff2", "euler", 2)
    assert "train" not in ev and ev["variant"]["name"] == "idff2" and ev["nfe"] == [2, 5, 10]
    assert sweep_nfes({"sweep": {"nfe": [2, 5, 10, 12]}}, "rk4") == [12]
    with pytest.raises(ConfigError, match="valid: 8gaussians, moons, checkerboard"):
        train_spec(cfg, "toy", "spirals", "idff", 0)
    with pytest.raises(ConfigError, match="valid: idff, icfm, otcfm, sbcfm"):
        train_spec(cfg, "toy", "moons", "ddpm", 0)
    with pytest.raises(ConfigError, match="unknown experiment 'nosuch'; valid: toy, md"):
        train_spec(cfg, "nosuch", "moons", "idff", 0)
    with pytest.raises(ConfigError, match="valid: euler_maruyama"):
        eval_spec(cfg, "toy", "moons", "bridge_sde", "euler", 0)


def _md_jobs(cfg: dict) -> tuple[dict, dict, dict]:
    return (data_spec(cfg, "md", "openmm_vacuum"), train_spec(cfg, "md", "openmm_vacuum", "idff", 1),
            eval_spec(cfg, "md", "openmm_vacuum", "otcfm", "euler", 1))


def test_each_job_sees_only_the_data_keys_it_depends_on(smoke_cfg):
    """Evaluation-only keys (MD data.eval, SST ensemble size, FID sample counts) never reach the
    training or data job's spec, so changing them reruns sweeps, not training or simulation; the
    split reaches training, not the simulation; other data sets' blocks reach neither."""
    cfg = copy.deepcopy(smoke_cfg)
    prep, train, ev = _md_jobs(cfg)
    assert "eval" not in train["data"] and "eval" not in prep["data"] and "eval" in ev["data"]
    assert "split" in train["data"] and "split" not in prep["data"]
    assert prep["data"]["ns_per_trajectory"] == cfg["experiments"]["md"]["data"]["ns_per_trajectory"]
    edited = copy.deepcopy(cfg)
    md = edited["experiments"]["md"]["data"]
    md["eval"] = {**md.get("eval", {}), "free_frames": 77}
    md["mdshare"] = {"url": "https://example.org/x.npz", "eval": {"bins": 9}}  # another data set
    prep2, train2, ev2 = _md_jobs(edited)
    assert (prep2, train2) == (prep, train) and ev2 != ev
    md["openmm_vacuum"] = {"eval": {"bins": 12}, "split": {"train": 2, "val": 1, "test": 1}}
    prep3, train3, ev3 = _md_jobs(edited)
    assert prep3 == prep and train3["data"]["openmm_vacuum"] == {"split": md["openmm_vacuum"]["split"]}
    assert ev3["data"]["openmm_vacuum"]["eval"] == {"bins": 12}
    sst = copy.deepcopy(cfg)
    sst["experiments"]["sst"]["data"]["n_members"] = 3
    assert train_spec(sst, "sst", "ostia", "idff", 0) == train_spec(cfg, "sst", "ostia", "idff", 0)
    assert eval_spec(sst, "sst", "ostia", "idff1", "euler_maruyama", 0)["data"]["n_members"] == 3


def test_data_key_lists_match_the_families():
    """Each family's preparation and evaluation-only key lists name keys it really reads."""
    from idff.families import get_family, images, md, sst

    fam = {name: get_family(name) for name in ("md", "sst", "images")}
    assert set(fam["md"].prep_data_keys) | set(fam["md"].eval_only_data_keys) <= md.DATA_KEYS
    assert (set(fam["images"].prep_data_keys) | set(fam["images"].eval_only_data_keys)
            <= set(images.DATA_KEYS))
    sst_keys = set(sst.SSTSettings.__dataclass_fields__) - {"where"}
    assert set(fam["sst"].eval_only_data_keys) <= sst_keys
    assert fam["sst"].prep_data_keys == sst.PREP_KEYS
    for family in fam.values():
        assert not set(family.prep_data_keys) & set(family.eval_only_data_keys)
