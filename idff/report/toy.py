"""The 2D toy targets: the metric table, quality against NFE and the orders figure (Fig. 2)."""

from __future__ import annotations

from ..plan.core import expected_floor_files, expected_metric_files, expected_sample_files
from .figures import fig_nfe, fig_toy_orders
from .tables import write_metric_table
from .target import Target


def _metrics_and_floor(cfg: dict, exp: str) -> list[str]:
    return expected_metric_files(cfg, exp) + expected_floor_files(cfg, exp)


TARGETS: dict[str, Target] = {
    "table_toy": Target("toy", write_metric_table, _metrics_and_floor,
                        "2D toys: W2 and MMD² per NFE budget, mean ± std over seeds, with the "
                        "target-vs-target floor (CSV, Markdown, LaTeX)."),
    "fig_nfe": Target("toy", fig_nfe, _metrics_and_floor,
                      "2D toys: sample quality vs NFE per data set, one curve per variant and "
                      "solver, ±1 std band over seeds, dashed floor."),
    "fig_toy_orders": Target("toy", fig_toy_orders,
                             lambda cfg, exp: expected_sample_files(cfg, exp),
                             "OT-CFM and IDFF orders 1-3 at NFE 2 (paper Fig. 2): final samples, "
                             "KDE contours of the truth, a dozen trajectories, MMD² per panel."),
    "table_toy_ablation": Target("toy_ablation", write_metric_table, _metrics_and_floor,
                                 "2D toy ablation (experiment toy_ablation): the x1-loss time "
                                 "weighting of IDFF, W2 and MMD² per NFE budget over seeds."),
}
