"""Errors and correlations of periodic angles in degrees.

Every difference is taken on the circle: ``angular_diff_deg(179, -179) == -2``, not 358. Arrays
are ``[T, n_angles]`` (time first); reductions run over ``axis=0`` and return one value per angle.
"""

from __future__ import annotations

import numpy as np

ArrayLike = np.ndarray | float | list


def wrap_deg(a: ArrayLike) -> np.ndarray:
    """Map angles to [-180, 180). 180 maps to -180."""
    a = np.asarray(a, dtype=np.float64)
    out = np.mod(a + 180.0, 360.0) - 180.0
    # np.mod can round up to exactly 360 for tiny negative inputs: keep the half-open interval
    return np.where(out >= 180.0, out - 360.0, out)


def angular_diff_deg(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Signed shortest-arc difference ``a - b`` in [-180, 180)."""
    return wrap_deg(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))


def unwrap_to_nearest_deg(pred: ArrayLike, ref: ArrayLike) -> np.ndarray:
    """The periodic image of ``pred`` nearest to ``ref`` (``ref + wrapped difference``)."""
    ref = np.asarray(ref, dtype=np.float64)
    return ref + angular_diff_deg(pred, ref)


def _pair(pred: ArrayLike, true: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from truth shape {true.shape}")
    if pred.size == 0:
        raise ValueError("angle metrics need at least one value; got empty arrays")
    if not (np.isfinite(pred).all() and np.isfinite(true).all()):
        raise ValueError("angle metrics got NaN or inf values; check the generated trajectory")
    return pred, true


def mae_deg(pred: ArrayLike, true: ArrayLike, axis: int | None = 0) -> np.ndarray:
    """Mean absolute wrapped error in degrees."""
    pred, true = _pair(pred, true)
    return np.mean(np.abs(angular_diff_deg(pred, true)), axis=axis)


def rmse_deg(pred: ArrayLike, true: ArrayLike, axis: int | None = 0) -> np.ndarray:
    """Root mean squared wrapped error in degrees."""
    pred, true = _pair(pred, true)
    return np.sqrt(np.mean(angular_diff_deg(pred, true) ** 2, axis=axis))


def cut_at_largest_gap_deg(a: ArrayLike, axis: int = 0) -> np.ndarray:
    """Express each angle series on the 360 degree window that starts in its largest empty arc.

    The periodic seam is moved to where the series has no values at all (the middle of the
    widest gap between neighbouring values on the circle), so a series that lives around
    +-180 (e.g. psi in the beta basin) becomes continuous instead of jumping by 360.
    """
    a = np.moveaxis(wrap_deg(a), axis, 0)
    flat = a.reshape(a.shape[0], -1)
    out = np.empty_like(flat)
    for j in range(flat.shape[1]):
        s = np.sort(flat[:, j])
        gaps = np.diff(np.concatenate([s, s[:1] + 360.0]))
        i = int(np.argmax(gaps))
        cut = s[i] + gaps[i] / 2.0  # middle of the widest empty arc
        out[:, j] = cut + np.mod(flat[:, j] - cut, 360.0)
    return np.moveaxis(out.reshape(a.shape), 0, axis)


def _pearson(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    xc = x - x.mean(axis=axis, keepdims=True)
    yc = y - y.mean(axis=axis, keepdims=True)
    num = (xc * yc).sum(axis=axis)
    den = np.sqrt((xc**2).sum(axis=axis) * (yc**2).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def pearson_cc_deg(pred: ArrayLike, true: ArrayLike, axis: int = 0) -> np.ndarray:
    """Pearson correlation per angle, made periodic-aware.

    The truth is cut at its largest empty arc (``cut_at_largest_gap_deg``) and the prediction
    is moved to its periodic image nearest to the truth, then ordinary Pearson r is taken.
    For series away from the seam this equals plain Pearson r on the raw values. A constant
    series gives NaN (the coefficient is undefined).
    """
    pred, true = _pair(pred, true)
    t = cut_at_largest_gap_deg(true, axis=axis)
    p = unwrap_to_nearest_deg(pred, t)
    return _pearson(p, t, axis)


def circular_mean_deg(a: ArrayLike, axis: int = 0) -> np.ndarray:
    a = np.radians(np.asarray(a, dtype=np.float64))
    return np.degrees(np.arctan2(np.sin(a).mean(axis=axis), np.cos(a).mean(axis=axis)))


def circular_cc_deg(a: ArrayLike, b: ArrayLike, axis: int = 0) -> np.ndarray:
    """Jammalamadaka-SenGupta circular correlation coefficient per angle.

    r = sum sin(a - mean_a) sin(b - mean_b) / sqrt(sum sin^2(a - mean_a) sum sin^2(b - mean_b)),
    with circular means (Jammalamadaka & SenGupta, Topics in Circular Statistics, 2001, sec. 8.2).
    """
    a, b = _pair(a, b)
    sa = np.sin(np.radians(a - np.expand_dims(circular_mean_deg(a, axis), axis)))
    sb = np.sin(np.radians(b - np.expand_dims(circular_mean_deg(b, axis), axis)))
    num = (sa * sb).sum(axis=axis)
    den = np.sqrt((sa**2).sum(axis=axis) * (sb**2).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
