"""`idff <step>`: every step of the pipeline, runnable by hand.

A job is described either by the config file plus names (what a user types) or by ``--spec``,
the JSON config slice that the Snakemake rules pass (so a rule reruns when, and only when,
its slice changes). Both routes go through the same validation and the same library call.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__, guard
from .config import (
    apply_override,
    data_spec,
    eval_spec,
    floor_spec,
    load_config,
    train_spec,
    validate_config,
)
from .errors import ConfigError
from .plan.figures import iteration_spec
from .spec_check import validate_spec
from .steps import jobs
from .steps.iterations import run_iter_eval
from .steps.products import run_product
from .steps.tuned import tuned_params

_BASE_KEYS = ("experiment", "family", "dataset", "data")
_EVAL_KEYS = (*_BASE_KEYS, "seed", "model", "method", "variant", "solver", "nfe", "sweep")
SPEC_KEYS = {
    "prepare": _BASE_KEYS,
    "train": (*_BASE_KEYS, "seed", "model", "train", "method"),
    "eval": _EVAL_KEYS,
    "floor": (*_BASE_KEYS, "seed", "sweep"),
    "iter-eval": (*_EVAL_KEYS, "iterations"),
}

#: steps that draw from a checkpoint at one NFE budget (``--ckpt --nfe [--tuned] [--param]``)
SAMPLING_STEPS = {
    "sample": "draw toy samples and their trajectories from a checkpoint -> .npz",
    "rollout": "MD free generation from the test split's first frames -> .npz (fig_md)",
    "forecast": "SST ensemble forecast of one test window -> .npz (fig_sst)",
    "samples": "a grid of generated images -> .npz (fig_samples)",
}
LONG_RUNNING = ("prepare", "train", "tune", "sweep", "floor", "iter-eval", *SAMPLING_STEPS)


def _add_job_args(p: argparse.ArgumentParser, kind: str) -> None:
    p.add_argument("--config", type=Path, help="config YAML (e.g. config/smoke.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. experiments.toy.train.steps=500")
    p.add_argument("--spec", help="JSON job spec (what Snakemake passes) instead of --config")
    p.add_argument("--experiment", default="toy")
    p.add_argument("--dataset")
    p.add_argument("--seed", type=int, default=0)
    if kind == "train":
        p.add_argument("--method", help="idff, icfm, otcfm or sbcfm")
    else:
        p.add_argument("--variant", help="a variant of the config (idff1, pf, otcfm, ...)")
        p.add_argument("--solver", default="euler")
    p.add_argument("--out", type=Path, required=True, help="output file")
    if kind in ("tune", "eval", "iter-eval"):
        p.add_argument("--ckpt", type=Path, required=True, help="the trained checkpoint")
    if kind in ("eval", "iter-eval"):
        p.add_argument("--tuned", type=Path,
                       help="tune output: the sampler parameters chosen on validation")


def _add_sampling_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nfe", type=int, required=True, help="NFE budget (network forward passes)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="sampler parameter, e.g. sigma_s=0.4 (overrides --tuned)")


def _params(items: list[str]) -> dict:
    """``--param NAME=VALUE`` items as a mapping (values read as YAML: 0.4, true, ...)."""
    params: dict = {}
    for item in items:
        apply_override(params, item)
    return params


def _spec(args: argparse.Namespace, kind: str) -> dict:
    if args.spec:
        try:
            spec = json.loads(args.spec)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--spec is not valid JSON: {exc}") from exc
        return validate_spec(spec, SPEC_KEYS[kind])
    if not args.config:
        raise ConfigError("give --config FILE (with --dataset and --method/--variant) or --spec JSON")
    cfg = load_config(args.config, args.overrides)
    args.config_progress = bool(cfg.get("progress", True))  # the config's switch, unless --no-progress
    exp = cfg["experiments"].get(args.experiment)
    dataset = args.dataset or (exp["datasets"][0] if exp else None)
    if kind == "prepare":
        return data_spec(cfg, args.experiment, dataset)
    if kind == "train":
        return train_spec(cfg, args.experiment, dataset, args.method or "idff", args.seed)
    if kind == "floor":
        return floor_spec(cfg, args.experiment, dataset, args.seed)
    if kind == "iter-eval":
        return iteration_spec(cfg, args.experiment, dataset, args.variant or "idff1", args.solver,
                              args.seed)
    return eval_spec(cfg, args.experiment, dataset, args.variant or "idff1", args.solver, args.seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idff", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"idff {__version__}")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars or tune/sweep lines (default: the config's `progress` key, else on; training always prints its periodic lines)")
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("prepare", help="make or download a data family's data set -> file")
    _add_job_args(p, "prepare")
    p = sub.add_parser("train", help="train one method on one data set and seed -> checkpoint")
    _add_job_args(p, "train")
    p = sub.add_parser("tune", help="grid-search sampler parameters on the validation split")
    _add_job_args(p, "tune")
    p = sub.add_parser("sweep", help="sample the test split at every NFE budget -> metrics JSON")
    _add_job_args(p, "eval")
    p = sub.add_parser("floor", help="metric floor: target draw vs another target draw")
    _add_job_args(p, "floor")
    for step, text in SAMPLING_STEPS.items():
        p = sub.add_parser(step, help=text)
        _add_job_args(p, "eval")
        _add_sampling_args(p)
        if step in ("sample", "samples"):
            p.add_argument("--n", type=int, default=2000 if step == "sample" else 64,
                           help="number of samples")
        if step == "forecast":
            p.add_argument("--window", type=int, default=0, help="index among the test windows")
    p = sub.add_parser("iter-eval", help="evaluate the kept training snapshots -> JSON (Fig. 3A)")
    _add_job_args(p, "iter-eval")
    p = sub.add_parser("report", help="make a named table or figure from metric files")
    p.add_argument("target", help="table_toy, fig_nfe, fig_toy_orders, ...")
    p.add_argument("--config", type=Path, help="config YAML")
    p.add_argument("--config-json", help="the whole config as JSON (what Snakemake passes)")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("dvc-files", help="the metrics and plot tables `dvc metrics/plots` read")
    p.add_argument("--config", type=Path, help="config YAML")
    p.add_argument("--config-json", help="the whole config as JSON (what Snakemake passes)")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--exp", required=True, help="the experiment")
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--summary", type=Path, required=True, help="metrics folder to write")
    p.add_argument("--out", "--plots", dest="out", type=Path, required=True,
                   help="plots folder to write")
    p = sub.add_parser("doctor", help="can this machine run this config? GPU, disk, inputs, hours")
    p.add_argument("--config", type=Path, help="config YAML (e.g. config/config.yaml)")
    p.add_argument("--config-json", help="the whole config as JSON (what Snakemake passes)")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--experiments", help="comma-separated experiments to check (default: all)")
    p.add_argument("--offline", action="store_true", help="no network: probe no download URL")
    p.add_argument("--remote", action="store_true",
                   help="jobs run on other (cluster) nodes: do not check this machine's GPU")
    p.add_argument("--out", type=Path, help="also write the checks as JSON here")
    p.add_argument("--costs", action="store_true",
                   help="print the unit costs of the run-time estimate (idff/estimates.yaml, the "
                        "table in docs/performance.md) and exit")
    p = sub.add_parser("fetch", help="download an outside input (checksum, resume) -> file")
    p.add_argument("input", choices=["inception_weights"])
    p.add_argument("--config", type=Path, help="config YAML (its inputs section)")
    p.add_argument("--spec", help="JSON settings {url, sha256, size, ...} (what Snakemake passes)")
    p.add_argument("--out", type=Path, required=True)

    args = parser.parse_args(argv)
    progress = not args.no_progress

    try:
        if args.out is not None:  # before any compute, naming the real output (a folder's files)
            guard.check_writable(args.out / "any" if args.cmd == "dvc-files" else args.out)
        if args.cmd in LONG_RUNNING and argv is None:  # a process of its own, not a test call
            guard.watch_parent()
        return _run(args, progress)
    except KeyboardInterrupt:
        if guard.orphaned is None:
            raise
        print(f"idff {args.cmd}: error: stopped: the process that started it "
              f"({guard.orphaned}) died; rerun the job", file=sys.stderr)
        return 3
    except (ConfigError, ValueError, KeyError, OSError, RuntimeError) as exc:  # OSError: FileNotFoundError too
        print(f"idff {args.cmd}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _config(args: argparse.Namespace) -> dict:
    """The whole config (doctor, report, dvc-files): --config-json (what Snakemake passes) or
    --config FILE."""
    if getattr(args, "config_json", None):
        try:
            cfg = json.loads(args.config_json)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--config-json is not valid JSON: {exc}") from exc
        validate_config(cfg)
        return cfg
    if args.config:
        return load_config(args.config, args.overrides)
    raise ConfigError("give --config FILE or --config-json JSON")


def _one_line(exc: BaseException) -> str:
    """The error as one line; an OSError without a file name gets its type (e.g. EACCES)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is None and exc.strerror:
        text = f"{type(exc).__name__}: {text}"
    return text


def _progress(args: argparse.Namespace, flag: bool) -> bool:
    """Progress lines: off with --no-progress, else the config's ``progress`` key: read from
    --config, or from IDFF_PROGRESS (0/1) that the Snakefile sets for its jobs; else on."""
    if not flag:
        return False
    if hasattr(args, "config_progress"):
        return args.config_progress
    return os.environ.get("IDFF_PROGRESS", "1") != "0"


def _run(args: argparse.Namespace, progress: bool) -> int:
    if args.cmd == "doctor" and args.costs:
        from .estimate import doc_table  # the preflight tools (~0.3 s): only for `idff doctor`

        print(doc_table())
        return 0
    if args.cmd == "doctor":
        from .doctor import run_doctor  # the preflight tools (~0.3 s): only for `idff doctor`

        cfg = _config(args)
        names = [x for x in (args.experiments or "").split(",") if x]
        unknown = [x for x in names if x not in cfg["experiments"]]
        if unknown:
            raise ConfigError(f"--experiments: unknown experiment(s) {unknown}; valid: "
                              f"{', '.join(cfg['experiments'])}")
        return run_doctor(cfg, experiments=names or None, network=False if args.offline else None,
                          out=args.out, source=str(args.config or "the Snakemake config"),
                          remote=args.remote)
    if args.cmd == "fetch":
        from .data.download import DownloadError  # the download code (~0.3 s): only for fetch
        from .data.weights import fetch_weights  # (the same)
        from .inputs import INCEPTION_DEFAULTS, inception_settings  # (the same)

        if args.spec:
            try:
                settings = {**INCEPTION_DEFAULTS, **json.loads(args.spec)}
            except json.JSONDecodeError as exc:
                raise ConfigError(f"--spec is not valid JSON: {exc}") from exc
        else:
            settings = inception_settings(load_config(args.config) if args.config else {})
        try:
            path = fetch_weights(args.out, url=settings["url"], sha256=str(settings["sha256"]),
                                 size=settings["size"], allow_http=bool(settings["allow_http"]),
                                 retries=int(settings["retries"]),
                                 timeout=float(settings["timeout"]))
        except DownloadError as exc:
            raise RuntimeError(str(exc).replace("\n", " ")) from None
        print(f"{path}: sha256 starts with {settings['sha256']}")
        return 0

    if args.cmd == "prepare":
        jobs.run_prepare(_spec(args, "prepare"), args.out)
    elif args.cmd == "train":
        spec = _spec(args, "train")
        summary = jobs.run_train(spec, args.out, progress=_progress(args, progress))
        print(json.dumps(summary))
    elif args.cmd == "tune":
        spec = _spec(args, "eval")
        jobs.run_tune(spec, args.ckpt, args.out, progress=_progress(args, progress))
    elif args.cmd == "sweep":
        spec = _spec(args, "eval")
        res = jobs.run_sweep(spec, args.ckpt, args.out, tuned=args.tuned,
                             progress=_progress(args, progress))
        for row in res["rows"]:
            print(json.dumps({k: row[k] for k in ("nfe_budget", "nfe", "vjp", "w2", "mmd")
                              if k in row}))
    elif args.cmd == "floor":
        jobs.run_floor(_spec(args, "floor"), args.out)
    elif args.cmd == "sample":
        spec = _spec(args, "eval")
        params = _params(args.param)
        if args.tuned:
            params = {**tuned_params(args.tuned, spec, args.nfe), **params}
        jobs.run_sample(spec, args.ckpt, args.out, nfe=args.nfe, n=args.n, params=params)
    elif args.cmd in SAMPLING_STEPS:
        options = {"n": args.n} if args.cmd == "samples" else (
            {"window": args.window} if args.cmd == "forecast" else {})
        run_product(args.cmd, _spec(args, "eval"), args.ckpt, args.out, nfe=args.nfe,
                    params=_params(args.param), tuned=args.tuned, **options)
    elif args.cmd == "iter-eval":
        run_iter_eval(_spec(args, "iter-eval"), args.ckpt, args.out, tuned=args.tuned)
    elif args.cmd == "report":
        from .report import make_target  # matplotlib, pandas, scipy (~1.2 s): only for reports

        make_target(args.target, _config(args), args.results, args.out)
    elif args.cmd == "dvc-files":
        from .report.dvc_files import write_dvc_files  # the report code (~1.2 s), as above

        write_dvc_files(_config(args), args.exp, args.results, args.summary, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
