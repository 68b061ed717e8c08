"""Molecular-dynamics metrics on backbone dihedrals (phi, psi) in degrees.

Two kinds: prediction errors of a predicted against the true trajectory (the paper's Table 3:
MAE, RMSE, Pearson CC per angle, all on wrapped differences), and distributional / kinetic
checks of freely generated trajectories (Ramachandran histogram JS divergence, basin
populations, mean waiting time between basin changes), which is how MD people judge a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .angles import circular_cc_deg, mae_deg, pearson_cc_deg, rmse_deg

ANGLE_NAMES = ("phi", "psi")


def _as_angles(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"{what} must be a [T, 2] array of (phi, psi) in degrees, got {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{what} is empty (0 frames)")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contains NaN or inf")
    return a


def prediction_metrics(pred: np.ndarray, true: np.ndarray,
                       names: Sequence[str] = ANGLE_NAMES) -> dict[str, dict[str, float]]:
    """MAE, RMSE and CC (degrees; wrapped differences) per angle and their mean over angles.

    ``cc`` is the periodic-aware Pearson r of ``idff.metrics.angles.pearson_cc_deg`` (what the
    paper reports); ``circ_cc`` is the Jammalamadaka-SenGupta circular correlation.
    """
    pred = _as_angles(pred, "prediction")
    true = _as_angles(true, "truth")
    if pred.shape != true.shape:
        raise ValueError(f"prediction {pred.shape} and truth {true.shape} differ in shape")
    if len(names) != pred.shape[1]:
        raise ValueError(f"{len(names)} angle names for {pred.shape[1]} angles")
    cols = {"mae": mae_deg(pred, true), "rmse": rmse_deg(pred, true),
            "cc": pearson_cc_deg(pred, true), "circ_cc": circular_cc_deg(pred, true)}
    out = {n: {k: float(v[j]) for k, v in cols.items()} for j, n in enumerate(names)}
    out["mean"] = {k: float(np.mean(v)) for k, v in cols.items()}
    return out


def ramachandran_histogram(angles: np.ndarray | Sequence[np.ndarray], bins: int = 36) -> np.ndarray:
    """Normalised 2D histogram over [-180, 180]^2 (rows phi, columns psi); sums to 1.

    ``angles`` is one ``[T, 2]`` array or a list of them (pooled).
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if isinstance(angles, np.ndarray):
        a = _as_angles(angles, "angles")
    else:
        a = np.concatenate([_as_angles(x, f"angles[{i}]") for i, x in enumerate(angles)])
    a = np.clip(a, -180.0, 180.0)
    h, _, _ = np.histogram2d(a[:, 0], a[:, 1], bins=bins, range=[[-180, 180], [-180, 180]])
    return h / h.sum()


def js_divergence(p_angles: np.ndarray | Sequence[np.ndarray],
                  q_angles: np.ndarray | Sequence[np.ndarray],
                  bins: int = 36, base: float = np.e) -> float:
    """Jensen-Shannon divergence between the Ramachandran histograms of two sets.

    JS = KL(p||m)/2 + KL(q||m)/2 with m = (p + q)/2. In nats (``base=e``, the default) it lies in
    [0, ln 2]: 0 for identical histograms, ln 2 for sets in disjoint bins; ``base=2`` gives bits
    (maximum 1).
    """
    p = ramachandran_histogram(p_angles, bins).ravel()
    q = ramachandran_histogram(q_angles, bins).ravel()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log(a[nz] / m[nz])))

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q)) / float(np.log(base))


# --- basins -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Basin:
    """A box on the torus: phi and psi each a circular interval ``(start, end)`` in degrees.

    The interval runs counter-clockwise from ``start`` to ``end`` and may cross the seam:
    ``(50, -120)`` is psi >= 50 or psi < -120.
    """

    name: str
    phi: tuple[float, float]
    psi: tuple[float, float]


#: Coarse partition of the alanine-dipeptide Ramachandran plane (degrees). The usual division
#: into a right-handed helical region (alpha_R), the extended region (beta and polyproline II,
#: together: phi < 0 outside alpha_R) and the left-handed region (alpha_L, phi > 0), in the
#: spirit of the coarse state definitions of alanine-dipeptide kinetics studies (e.g. the
#: core-set Markov models of Buchete & Hummer, J. Phys. Chem. B 112, 6057 (2008); Chodera et
#: al., J. Chem. Phys. 126, 155101 (2007)). The exact bounds are this project's choice, not
#: copied from one paper (pass your own ``basins`` to change them):
#:   alpha_R : -180 <= phi < 0,  -120 <= psi < 50
#:   beta_PII: -180 <= phi < 0,  psi >= 50 or psi < -120
#:   alpha_L :    0 <= phi < 180, -90 <= psi < 90   (includes C7ax near (75, -65))
#:   other   : everything else (phi >= 0 with |psi| >= 90)
DEFAULT_BASINS: tuple[Basin, ...] = (
    Basin("alpha_R", (-180.0, 0.0), (-120.0, 50.0)),
    Basin("beta_PII", (-180.0, 0.0), (50.0, -120.0)),
    Basin("alpha_L", (0.0, 180.0), (-90.0, 90.0)),
)
OTHER = "other"


def _in_arc(x: np.ndarray, start: float, end: float, margin: float) -> np.ndarray:
    width = np.mod(end - start, 360.0) or 360.0
    width -= 2.0 * margin
    if width <= 0:
        return np.zeros_like(x, dtype=bool)
    return np.mod(x - (start + margin), 360.0) < width


def basin_labels(angles: np.ndarray, basins: Sequence[Basin] = DEFAULT_BASINS,
                 margin: float = 0.0) -> np.ndarray:
    """Index of the basin of every frame (first match wins), -1 for none.

    ``margin`` > 0 shrinks every box by that many degrees on each side (the basin's core).
    """
    a = _as_angles(angles, "angles")
    labels = np.full(a.shape[0], -1, dtype=np.int64)
    for i, b in enumerate(basins):
        inside = _in_arc(a[:, 0], *b.phi, margin) & _in_arc(a[:, 1], *b.psi, margin)
        labels[(labels < 0) & inside] = i
    return labels


def basin_populations(angles: np.ndarray | Sequence[np.ndarray],
                      basins: Sequence[Basin] = DEFAULT_BASINS) -> dict[str, float]:
    """Fraction of frames in each basin (full boxes) and in ``other``; sums to 1."""
    trajs = [angles] if isinstance(angles, np.ndarray) else list(angles)
    labels = np.concatenate([basin_labels(t, basins) for t in trajs])
    out = {b.name: float(np.mean(labels == i)) for i, b in enumerate(basins)}
    out[OTHER] = float(np.mean(labels < 0))
    return out


def core_set_labels(angles: np.ndarray, basins: Sequence[Basin] = DEFAULT_BASINS,
                    margin: float = 20.0) -> np.ndarray:
    """Core-set (hysteresis) assignment: a frame keeps the last core it visited.

    A frame inside a basin's core (the box shrunk by ``margin`` degrees on every side) gets
    that basin; a frame outside every core keeps the label of the last core visited, so
    recrossings of a box boundary that do not reach the other core do not count as
    transitions (the transition-based assignment of core-set Markov models, Buchete & Hummer
    2008). Frames before the first core visit are -1.
    """
    raw = basin_labels(angles, basins, margin=margin)
    idx = np.where(raw >= 0, np.arange(raw.size), -1)
    last = np.maximum.accumulate(idx)  # index of the last core frame so far
    return np.where(last >= 0, raw[np.maximum(last, 0)], -1)


def basin_kinetics(angles: np.ndarray | Sequence[np.ndarray], frame_ps: float,
                   basins: Sequence[Basin] = DEFAULT_BASINS,
                   margin: float = 20.0) -> dict[str, float | int]:
    """Basin changes under the core-set rule, pooled over trajectories.

    Returns ``n_transitions``, ``assigned_ps`` (time after each trajectory's first core visit),
    ``mean_waiting_ps`` = assigned_ps / n_transitions (the maximum-likelihood mean waiting time
    for exponential waiting times, which also uses the censored first and last dwell; NaN
    without transitions) and ``mean_complete_dwell_ps`` (mean of dwells that start and end
    with a transition; NaN when there is none).
    """
    if not frame_ps > 0:
        raise ValueError(f"frame_ps must be > 0, got {frame_ps}")
    trajs = [angles] if isinstance(angles, np.ndarray) else list(angles)
    n_trans, assigned_frames, dwells = 0, 0, []
    for t in trajs:
        lab = core_set_labels(t, basins, margin)
        valid = np.flatnonzero(lab >= 0)
        if valid.size == 0:
            continue
        lab = lab[valid[0]:]
        assigned_frames += lab.size - 1
        changes = np.flatnonzero(lab[1:] != lab[:-1]) + 1
        n_trans += changes.size
        dwells.extend(np.diff(changes).tolist())
    nan = float("nan")
    return {
        "n_transitions": int(n_trans),
        "assigned_ps": assigned_frames * frame_ps,
        "mean_waiting_ps": assigned_frames * frame_ps / n_trans if n_trans else nan,
        "mean_complete_dwell_ps": float(np.mean(dwells)) * frame_ps if dwells else nan,
    }
