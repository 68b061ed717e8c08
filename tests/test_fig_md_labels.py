"""fig_md's JS labels and caption: generated chains are scored without their shared true start
frame, and the caption names the time span the axis really shows."""

from __future__ import annotations

import json

import numpy as np
from test_md_family import fake_results, md_cfg

from idff.plan.md import expected_rollout_files
from idff.report.md import fig_md


def test_js_leaves_out_the_start_frame_and_caption_names_the_shown_span(tmp_path):
    cfg = md_cfg()
    cfg["experiments"]["md"]["figures"]["md"]["window_ps"] = 400
    fake_results(cfg, tmp_path / "results")
    rng = np.random.default_rng(1)
    pool = rng.normal(0.0, 15.0, (400, 2))                         # truth around (0, 0)
    corners = [(150.0, 150.0), (-150.0, 150.0)]                    # each variant elsewhere
    for rel, corner in zip(expected_rollout_files(cfg, "md"), corners, strict=True):
        gen = np.empty((2, 100, 2))
        gen[:, 0] = 0.0                                            # the true start frame
        gen[:, 1:] = np.array(corner) + rng.normal(0.0, 3.0, (2, 99, 2))
        meta = {"variant": rel.split("/")[5], "nfe_budget": 5, "params": {}}
        np.savez(tmp_path / "results" / rel[len("results/"):], generated=gen.astype(np.float32),
                 truth=pool[None, :100].astype(np.float32), truth_pool=pool.astype(np.float32),
                 frame_ps=np.float64(1.0), info=np.array(json.dumps(meta)))
    files = fig_md("fig_md", cfg, "md", tmp_path / "results", tmp_path / "fig_md.png")
    caption = files[2].read_text()
    # without the start frame both chains share no bin with the truth: JS = ln 2, 0 % overlap;
    # with it (the old labels) both got the same smaller value, set by the start frame alone
    assert caption.count("JS 0.693, 0% of frames in bins the truth visits") == 2, caption
    assert "first 99 ps (of the 400 ps asked for" in caption
    assert "first 400 ps" not in caption
