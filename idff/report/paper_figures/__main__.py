"""``python -m idff.report.paper_figures iter-eval``: the job of rule ``iter_eval``.

Evaluates the EMA snapshots a training run kept (``train.keep_every``) at the NFE budgets of
``figures.nfe_vs_iterations`` and writes one JSON per (data set, variant, solver, seed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m idff.report.paper_figures",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("iter-eval", help="evaluate kept training snapshots -> JSON")
    p.add_argument("--spec", required=True,
                   help="JSON job spec (idff.report.paper_figures.iteration_spec)")
    p.add_argument("--ckpt", type=Path, required=True, help="the final checkpoint of the run")
    p.add_argument("--tuned", type=Path, help="tune output of the variant (chosen parameters)")
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        spec = json.loads(args.spec)
        if not isinstance(spec, dict):
            raise ValueError("--spec must be a JSON object")
        for key in ("family", "dataset", "seed", "model", "method", "variant", "solver", "nfe",
                    "sweep", "iterations"):
            if key not in spec:
                raise ValueError(f"--spec lacks the key {key!r}; make it with "
                                 f"idff.report.paper_figures.iteration_spec")
        from .iterations import run_iter_eval

        run_iter_eval(spec, args.ckpt, args.out, tuned=args.tuned)
    except json.JSONDecodeError as exc:
        print(f"iter-eval: error: --spec is not valid JSON: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"iter-eval: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
