"""What a data family is: its settings and the hooks the job layer calls.

A family knows its data sets, which of its ``data`` keys shape the prepared file and which
only evaluation, how to check an experiment of its own, how to feed the trainer and how to
score a generator. The job layer (``idff.steps``) builds networks and generators and writes
files; a family never imports it.
"""

from __future__ import annotations

from typing import Any

from ..flows.generator import Generator


class FamilyBase:
    """Defaults of every family; a family module subclasses it and fills in the hooks."""

    #: lower is better; what ``tune`` minimises unless ``tune.metric`` says otherwise
    default_metric: str = ""
    #: the data sets an experiment of this family may name (empty: any name)
    datasets: tuple[str, ...] = ()
    #: keys of ``experiments.<exp>.data`` that shape the prepared data file (the data job sees
    #: only these, so changing an evaluation setting re-simulates or re-downloads nothing)
    prep_data_keys: tuple[str, ...] = ()
    #: keys that shape only evaluation (tuning, sweeps, floors, figures): training never sees
    #: them, so changing one reruns no training
    eval_only_data_keys: tuple[str, ...] = ()

    def check_experiment(self, name: str, exp: dict) -> None:
        """Config-time checks of experiment ``name`` beyond the schema (ConfigError naming the key)."""

    def data_file(self, spec: dict) -> str | None:
        """The prepared data file a job reads (None: data made on the fly)."""
        return None

    def prepare(self, spec: dict, out: str) -> None:
        raise NotImplementedError

    def train_source(self, spec: dict) -> Any:
        raise NotImplementedError

    def evaluate(self, spec: dict, gen: Generator, split: str) -> dict[str, float]:
        raise NotImplementedError

    def floor(self, spec: dict) -> dict[str, float] | None:
        return None
