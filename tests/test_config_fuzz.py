"""Config fuzzing: random invalid configs are refused naming the key, random valid ones pass.

Every invalid example changes exactly one thing in config/smoke.yaml and states the dotted key
that the ConfigError must name. Hand-picked cases of the same kinds live in tests/test_config.py;
these cover the space around them (types, unknown names, sizes, NFE budgets, unsafe names,
non-finite numbers, missing keys).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from idff.config import SCHEMA_PATH, apply_override, validate_config
from idff.data.toy import TOY_DATASETS
from idff.errors import ConfigError
from idff.flows.fields import SAMPLER_PARAMS
from idff.flows.solvers import budget_is_valid

SMOKE = Path(__file__).resolve().parent.parent / "config" / "smoke.yaml"
BASE: dict = yaml.safe_load(SMOKE.read_text())
TOY = "experiments.toy"
FUZZ = settings(max_examples=80, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

Edit = Callable[[dict], None]

# key (below experiments.toy) -> (kind, low, high): the valid range of every numeric setting
NUMBERS: dict[str, tuple[str, float, float | None]] = {
    "train.steps": ("int", 1, None), "train.batch_size": ("int", 1, None),
    "train.ckpt_every": ("int", 1, None), "train.warmup": ("int", 0, None),
    "train.lr": ("pos", 0, None), "train.weight_decay": ("num", 0, None),
    "train.grad_clip": ("num", 0, None), "train.ema_decay": ("unit", 0, 1),
    "sweep.n_samples": ("int", 1, None), "sweep.t_eps": ("pos", 0, 0.5),
    "tune.n_samples": ("int", 1, None), "model.hidden": ("int", 1, None),
    "model.depth": ("int", 1, None), "data.n_train": ("int", 1, None),
    "methods.idff.sigma": ("num", 0, None), "methods.idff.w_flow": ("num", 0, None),
    "methods.sbcfm.sigma": ("num", 0, None), "seeds.0": ("int", 0, None),
    "sweep.nfe.0": ("int", 1, None),
}
# every word the schema knows (keys, enum values) and every sampler parameter: never "unknown"
KNOWN = (set(re.findall(r"[a-z0-9_]+", SCHEMA_PATH.read_text())) | set(TOY_DATASETS)
         | {p for params in SAMPLER_PARAMS.values() for p in params} | {"n_train"})
SAFE_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
UNSAFE = ["..", "/", ";", "$(", "`", "|", "&", " ", "\n", "'", '"', "*", "<", ">", "\\", "~", "!"]


def _cfg() -> dict:
    return copy.deepcopy(BASE)


def _get(cfg: dict, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _set(cfg: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = _get(cfg, ".".join(parents)) if parents else cfg
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def _rejected(cfg: dict, *needles: str) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    msg = str(info.value)
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    return msg


# --- invalid configs ----------------------------------------------------------------------------

WRONG_TYPES = st.one_of(
    st.text(alphabet=SAFE_CHARS, max_size=6), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=1), st.none(), st.booleans())


@FUZZ
@given(key=st.sampled_from(sorted(NUMBERS)), value=WRONG_TYPES)
def test_wrong_types_are_refused(key, value):
    cfg = _cfg()
    _set(cfg, f"{TOY}.{key}", value)
    _rejected(cfg, f"{TOY}.{key}")


@FUZZ
@given(key=st.sampled_from([k for k, (kind, _, _) in NUMBERS.items() if kind == "int"]),
       value=st.integers(-3, 10**6).map(lambda n: n + 0.5) | st.integers(1, 500).map(float))
def test_floats_for_integers_are_refused(key, value):
    """2.0 is an integer to JSON Schema but crashes torch.randint(size=(2.0,)) hours later."""
    cfg = _cfg()
    _set(cfg, f"{TOY}.{key}", value)
    _rejected(cfg, f"{TOY}.{key}")


def _out_of_range(kind: str, low: float, high: float | None) -> st.SearchStrategy:
    # "num" and "unit" include their low end, "pos" excludes it; only "unit" excludes its high end
    below = (st.integers(-10**9, int(low) - 1) if kind == "int" else
             st.floats(-1e9, low, exclude_max=kind != "pos", allow_nan=False))
    if high is None:
        return below
    above = st.floats(high, 1e9, exclude_min=kind == "pos", allow_nan=False)
    return below | above


@st.composite
def bad_numbers(draw) -> tuple[str, float]:
    key = draw(st.sampled_from(sorted(NUMBERS)))
    return key, draw(_out_of_range(*NUMBERS[key]))


@FUZZ
@given(case=bad_numbers())
def test_negative_zero_and_out_of_range_sizes_are_refused(case):
    key, value = case
    cfg = _cfg()
    _set(cfg, f"{TOY}.{key}", value)
    _rejected(cfg, f"{TOY}.{key}")


@FUZZ
@given(key=st.sampled_from(sorted(NUMBERS) + ["sweep.nfe", "variants.bridge_sde.params.g_scale"]),
       value=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_non_finite_numbers_are_refused(key, value):
    """NaN passes every bound of a JSON schema (nan <= 0 is False), so it needs its own check."""
    cfg = _cfg()
    if key == "sweep.nfe":
        key = "sweep.nfe.1"
    _set(cfg, f"{TOY}.{key}", value)
    _rejected(cfg, f"{TOY}.{key}", "finite")


@st.composite
def unreachable_budgets(draw) -> tuple[str, list[int]]:
    solver = draw(st.sampled_from(["midpoint", "rk4"]))
    ok = lambda n: budget_is_valid(solver, n)  # noqa: E731
    nfe = draw(st.lists(st.integers(1, 400).filter(lambda n: not ok(n)), min_size=1, max_size=5,
                        unique=True))
    return solver, nfe


@FUZZ
@given(case=unreachable_budgets(), extra=st.sampled_from([[], ["euler"]]))
def test_nfe_budgets_no_solver_can_meet_are_refused(case, extra):
    solver, nfe = case
    cfg = _cfg()
    _get(cfg, TOY)["sweep"].update(solvers=[*extra, solver], nfe=nfe)
    _rejected(cfg, f"{TOY}.sweep.nfe", solver)


NAMES = st.from_regex(r"[a-z][a-z0-9_]{2,9}", fullmatch=True)


@st.composite
def unknown_names(draw) -> tuple[Edit, str, str]:
    """An unknown key or enum value somewhere: the edit, the key to name, the unknown name."""
    name = draw(NAMES)
    while name in KNOWN:
        name += "x"
    where = draw(st.sampled_from(["top", "experiment", "train", "sweep", "tune", "method_key",
                                  "method", "variant_key", "sampler", "variant_method", "solver",
                                  "dataset", "family", "activation", "arch", "data", "device",
                                  "sampler_param"]))
    toy = TOY

    def edit(cfg: dict) -> None:
        e = cfg["experiments"]["toy"]
        if where == "top":
            cfg[name] = 1
        elif where == "experiment":
            e[name] = {}
        elif where in ("train", "sweep", "tune"):
            e[where][name] = 1
        elif where == "method_key":
            e["methods"]["idff"][name] = 1
        elif where == "method":
            e["methods"][name] = {}
        elif where == "variant_key":
            e["variants"]["pf"][name] = 1
        elif where == "sampler":
            e["variants"]["pf"]["sampler"] = name
        elif where == "variant_method":
            e["variants"]["pf"]["method"] = name
        elif where == "solver":
            e["sweep"]["solvers"] = ["euler", name]
        elif where == "dataset":
            e["datasets"] = ["moons", name]
        elif where == "family":
            e["family"] = name
        elif where == "activation":
            e["model"]["activation"] = name
        elif where == "arch":
            e["model"]["arch"] = name
        elif where == "data":
            e["data"][name] = 1
        elif where == "device":
            cfg["device"] = name
        elif where == "sampler_param":
            e["variants"]["idff1"]["tune"][name] = [0.1]

    key = {"top": "(top level)", "experiment": toy, "train": f"{toy}.train",
           "sweep": f"{toy}.sweep", "tune": f"{toy}.tune", "method_key": f"{toy}.methods.idff",
           "method": f"{toy}.methods", "variant_key": f"{toy}.variants.pf",
           "sampler": f"{toy}.variants.pf.sampler", "variant_method": f"{toy}.variants.pf.method",
           "solver": f"{toy}.sweep.solvers.1", "dataset": f"{toy}.datasets.1",
           "family": f"{toy}.family", "activation": f"{toy}.model.activation",
           "arch": f"{toy}.model.arch", "data": f"{toy}.data", "device": "device",
           "sampler_param": f"{toy}.variants.idff1"}[where]
    return edit, key, name


@FUZZ
@given(case=unknown_names())
def test_unknown_names_are_refused(case):
    edit, key, name = case
    cfg = _cfg()
    edit(cfg)
    _rejected(cfg, key, name)


UNSAFE_NAMES = st.builds(
    lambda head, bad, tail: head + bad + tail,
    st.text(alphabet=SAFE_CHARS, max_size=4), st.sampled_from(UNSAFE),
    st.text(alphabet=SAFE_CHARS, max_size=4)) | st.sampled_from(["-rf", ".hidden", "_x", "toy\n",
                                                                 "moons\n", "a\tb", "ça"])


@FUZZ
@given(name=UNSAFE_NAMES, where=st.sampled_from(["dataset", "experiment", "variant", "target",
                                                 "target_path"]))
def test_names_that_reach_paths_and_shells_are_refused(name, where):
    cfg = _cfg()
    e = cfg["experiments"]["toy"]
    if where == "dataset":
        e["datasets"] = [name]
        key = f"{TOY}.datasets.0"
    elif where == "experiment":
        cfg["experiments"] = {name: e}
        key = "experiments"
    elif where == "variant":
        e["variants"][name] = e["variants"].pop("pf")
        key = f"{TOY}.variants"
    elif where == "target":
        assume(not re.fullmatch(r"[a-z0-9_]+", name))  # e.g. table__x is a fine target name
        cfg["paper_targets"][f"table_{name}"] = "results/tables/x.md"
        key = "paper_targets"
    else:
        # '/', '.', '-' and '_' are fine inside a path under results/ ('..' is not)
        assume(".." in name or not re.fullmatch(r"[A-Za-z0-9_./-]+", name))
        cfg["paper_targets"]["table_toy"] = f"results/tables/{name}.md"
        key = "paper_targets.table_toy"
    _rejected(cfg, key)


@FUZZ
@given(key=st.sampled_from(["experiments", "paper_targets", f"{TOY}.family", f"{TOY}.datasets",
                            f"{TOY}.seeds", f"{TOY}.model", f"{TOY}.train", f"{TOY}.methods",
                            f"{TOY}.variants", f"{TOY}.sweep", f"{TOY}.train.lr",
                            f"{TOY}.train.steps", f"{TOY}.sweep.nfe", f"{TOY}.model.arch",
                            f"{TOY}.variants.pf.sampler", f"{TOY}.data.n_train"]))
def test_missing_keys_are_refused(key):
    cfg = _cfg()
    *parents, last = key.split(".")
    del (_get(cfg, ".".join(parents)) if parents else cfg)[last]
    _rejected(cfg, ".".join(parents) or "(top level)", last)


def test_top_level_that_is_not_a_mapping_is_refused():
    for bad in (None, [], "experiments", 3):
        _rejected(bad, "(top level)")


# --- valid configs ------------------------------------------------------------------------------

def _in_range(kind: str, low: float, high: float | None) -> st.SearchStrategy:
    if kind == "int":
        return st.integers(int(low), 10**7)
    return st.floats(low, high if high is not None else 1e6, exclude_min=kind == "pos",
                     exclude_max=kind == "unit" or False, allow_nan=False, allow_infinity=False)


@st.composite
def valid_configs(draw) -> dict:
    cfg = _cfg()
    e = cfg["experiments"]["toy"]
    for key in draw(st.lists(st.sampled_from(sorted(NUMBERS)), unique=True, max_size=8)):
        if key in ("seeds.0", "sweep.nfe.0"):
            continue  # lists below
        _set(cfg, f"{TOY}.{key}", draw(_in_range(*NUMBERS[key])))
    e["seeds"] = draw(st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=4, unique=True))
    e["datasets"] = draw(st.lists(st.sampled_from(TOY_DATASETS), min_size=1, unique=True))
    solvers = draw(st.lists(st.sampled_from(["euler", "midpoint", "heun", "rk4"]), min_size=1,
                            max_size=4, unique=True))
    nfe = draw(st.lists(st.integers(1, 500), max_size=5))
    for s in solvers:  # every solver gets at least one budget it can meet
        if not any(budget_is_valid(s, n) for n in nfe):
            nfe.append(draw(st.integers(1, 125)) * 4)
    e["sweep"].update(solvers=solvers, nfe=sorted(set(nfe)))
    if draw(st.booleans()):  # rename an experiment / variant to another safe name
        new = draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,12}", fullmatch=True))
        e["variants"][new] = e["variants"].pop("pf")
        cfg["experiments"] = {new: e}
    e["variants"]["idff1"]["tune"]["sigma_s"] = draw(
        st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=4))
    cfg["device"] = draw(st.sampled_from(["auto", "cpu", "cuda"]))
    return cfg


@FUZZ
@given(cfg=valid_configs())
def test_valid_configs_pass(cfg):
    validate_config(cfg)


@FUZZ
@given(value=st.floats(1e-9, 1e3, allow_nan=False), fmt=st.sampled_from(["{:e}", "{:E}", "{:g}"]))
def test_overrides_in_scientific_notation_are_numbers(value, fmt):
    """`--set ...lr=1e-4`: YAML 1.1 reads 1e-4 as text; the override must still be a number."""
    cfg = _cfg()
    text = fmt.format(value)
    apply_override(cfg, f"{TOY}.train.lr={text}")
    assert cfg["experiments"]["toy"]["train"]["lr"] == float(text)
    validate_config(cfg)


def test_number_written_as_text_in_a_file_gets_a_hint():
    text = yaml.safe_load("lr: 2e-3")["lr"]
    assert text == "2e-3"  # what PyYAML does with a YAML 1.1 float without a dot
    cfg = _cfg()
    cfg["experiments"]["toy"]["train"]["lr"] = text
    _rejected(cfg, f"{TOY}.train.lr", "1.0e-4")
