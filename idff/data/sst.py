"""Sea-surface temperature (SST) forecasting data, prepared as in DYffusion (Cachay et al. 2023).

Two sources run through one code path (:func:`prepare_sst_dataset`):

* ``oisst`` (users with internet): NOAA OISST v2 high-resolution daily SST, 0.25 deg, one netCDF
  file a year from NOAA PSL (``sst.day.mean.YYYY.nc``, ``sst`` in degC, land NaN). Daily steps,
  statistics per day of year. DYffusion's setting: 60 x 60 grid-point boxes with latitude in
  [-60, 60] that are at least 95% ocean at t = 0, train 1982-2018, validate 2019, test 2020, the
  11 eastern tropical Pacific boxes :data:`DYFFUSION_PACIFIC_BOXES`.
* ``ostia`` (offline): ``ostia_monthly.nc`` from the ``iris-sample-data`` wheel (UK Open
  Government Licence): 54 real monthly OSTIA SST fields, 2006-04 to 2010-09, an 18 x 432
  equatorial band (-5 to 4.4 deg N, 0.83 deg), land masked, Kelvin. **Monthly steps instead of
  daily**, statistics per calendar month, 16 x 16 boxes, train 2006-2008 / val 2009 / test 2010.
  With only 2-3 training years per calendar month a per-grid-point standard deviation is
  degenerate (1.5e-5 K at some points, so that standardised test values reach 2e4), so this
  source defaults to ``std_mode="box"``: the mean is per grid point and month, the standard
  deviation per month pooled over the box.

Preprocessing (both sources): split into boxes, keep boxes that are ocean at >= ``min_ocean`` of
their points at the first time step, standardise every value by the mean and standard deviation
(ddof 0) of its period (day of year or calendar month) computed on the TRAINING years only, set
land (and any other missing value) to 0, and label every time step train / val / test by its year.

The prepared file is one netCDF holding ``sst[box, time, y, x]`` (standardised),
``land[box, y, x]``, the training statistics ``clim_mean``/``clim_std[box, period, y, x]`` and the
``split`` label of each time step. :func:`load_sst_dataset` reads it back; :class:`SSTPairs`
samples training pairs and :func:`forecast_windows` cuts test windows for autoregressive
forecasts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import xarray as xr

from ..io import atomic_path, write_json_atomic
from .download import DownloadError, download, file_digest, require_file

OISST_BASE_URL = "https://downloads.psl.noaa.gov/Datasets/noaa.oisst.v2.highres"
OISST_MANIFEST = "oisst_manifest.json"
#: DYffusion's 11 eastern tropical Pacific boxes (60 x 60, ids as in its preprocessing script:
#: latitude band * 24 + longitude band, bands counted from -59.875 N and 0.125 E).
DYFFUSION_PACIFIC_BOXES: tuple[int, ...] = (84, 85, 86, 87, 88, 89, 108, 109, 110, 111, 112)
SPLITS: tuple[str, ...] = ("train", "val", "test")
FORMAT_VERSION = 1

Step = Literal["day", "month"]
StdMode = Literal["pixel", "box"]
CondMode = Literal["lead", "season"]


class SSTDataError(RuntimeError):
    """SST data are missing, corrupt or inconsistent; the message names the file and the fix."""


# --------------------------------------------------------------------------------------------
# OISST: download, verification, lazy reading
# --------------------------------------------------------------------------------------------

def oisst_filename(year: int) -> str:
    return f"sst.day.mean.{int(year)}.nc"


def oisst_url(year: int, base_url: str = OISST_BASE_URL) -> str:
    """HTTPS address of the NOAA PSL yearly OISST v2 high-res file of ``year``."""
    return f"{base_url.rstrip('/')}/{oisst_filename(year)}"


def oisst_expected_days(year: int) -> int:
    """Days in a complete yearly OISST file (the record starts on 1981-09-01)."""
    year = int(year)
    if year < 1981:
        raise ValueError(f"OISST v2 starts in September 1981; there is no file for {year}")
    if year == 1981:
        return 122
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 366 if leap else 365


def _open_netcdf(path: Path, what: str, fix: str, **kwargs: Any) -> xr.Dataset:
    require_file(path, SSTDataError, what, fix)
    try:
        return xr.open_dataset(path, **kwargs)
    except Exception as exc:  # netCDF4/h5py/xarray raise OSError, ValueError, RuntimeError...
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SSTDataError(f"{what} {path} could not be read as netCDF ({msg}): it is truncated "
                           f"or not a netCDF file; delete it and {fix}") from exc


def _check_psl_layout(ds: xr.Dataset, path: Path) -> None:
    if "sst" not in ds.data_vars:
        raise SSTDataError(f"{path} has no `sst` variable (found {sorted(ds.data_vars)}): "
                           f"not an OISST file in the NOAA PSL layout")
    dims = tuple(ds["sst"].dims)
    if dims != ("time", "lat", "lon"):
        raise SSTDataError(f"{path}: `sst` has dims {dims}, expected ('time', 'lat', 'lon') "
                           f"(NOAA PSL layout)")
    if not np.issubdtype(ds["time"].dtype, np.datetime64):
        raise SSTDataError(f"{path}: the time coordinate could not be decoded as dates "
                           f"(units {ds['time'].attrs.get('units')!r})")
    for name in ("lat", "lon"):
        c = ds[name].values
        if c.size > 1 and not np.all(np.diff(c) > 0):
            raise SSTDataError(f"{path}: coordinate {name} is not increasing (PSL files are)")


def verify_oisst_file(path: str | os.PathLike, year: int) -> int:
    """Check that ``path`` is the complete OISST file of ``year``; return its number of days."""
    path = Path(path)
    fix = f"download {oisst_url(year)} again"
    with _open_netcdf(path, "OISST file", fix) as ds:
        _check_psl_layout(ds, path)
        n = int(ds.sizes["time"])
        years = np.unique(ds["time"].dt.year.values)
    want = oisst_expected_days(year)
    if n != want:
        raise SSTDataError(f"{path} holds {n} days, expected {want} for {year}: the file is "
                           f"truncated or the year is incomplete (only complete years are used)")
    if years.tolist() != [int(year)]:
        raise SSTDataError(f"{path} holds the years {years.tolist()}, expected only {year}")
    return n


def fetch_oisst_years(years: Sequence[int], dest_dir: str | os.PathLike, *,
                      base_url: str = OISST_BASE_URL, retries: int = 3, timeout: float = 60.0,
                      backoff: float = 1.0, allow_http: bool = False) -> list[Path]:
    """Download (or reuse) the yearly OISST files into ``dest_dir``; return their paths.

    NOAA publishes no checksums, so a new file is accepted when it opens as netCDF with an
    ``sst`` variable and the full number of days of its year; its sha256 and size then go into
    ``dest_dir/oisst_manifest.json``. Later runs verify files against that manifest and reuse
    them without network. A file that fails the check is deleted and an :class:`SSTDataError`
    is raised. A file placed by hand is checked and recorded the same way. If a recorded file
    changes (locally or upstream), the download is refused: delete its manifest entry to accept
    the new version.
    """
    dest_dir = Path(dest_dir)
    manifest_path = dest_dir / OISST_MANIFEST
    manifest = _read_manifest(manifest_path)
    out = []
    for year in years:
        year = int(year)
        name, url = oisst_filename(year), oisst_url(year, base_url)
        dest = dest_dir / name
        entry = manifest.get(name)
        hint = (f"download {url} (or from ftp2.psl.noaa.gov, Datasets/noaa.oisst.v2.highres) "
                f"and place it at {dest}; it is checked and recorded on the next run")
        try:
            path = download(url, dest, sha256=entry["sha256"] if entry else None,
                            size=entry["size"] if entry else None, retries=retries,
                            timeout=timeout, backoff=backoff, allow_http=allow_http,
                            manual_hint=hint, unsized_ok=True)  # checked below: all days there
        except DownloadError as exc:
            if entry is None:
                raise
            raise DownloadError(f"{exc}. Note: {name} is pinned to sha256 {entry['sha256']} in "
                                f"{manifest_path}; if NOAA changed the file, delete that entry to "
                                f"accept the new version") from exc
        if entry is None:
            try:
                n_days = verify_oisst_file(path, year)
            except SSTDataError as exc:
                path.unlink(missing_ok=True)
                raise SSTDataError(f"{exc}. The file was deleted; {hint}") from exc
            manifest[name] = {"url": url, "sha256": file_digest(path, "sha256"),
                              "size": path.stat().st_size, "days": n_days}
            write_json_atomic(manifest_path, manifest)
        out.append(path)
    return out


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SSTDataError(f"manifest {path} is not valid JSON ({exc}); delete it (the files "
                           f"are then checked again)") from exc
    if not isinstance(data, dict):
        raise SSTDataError(f"manifest {path} is not a JSON object; delete it")
    return data


def has_dask() -> bool:
    return importlib.util.find_spec("dask") is not None


def open_oisst(paths: Sequence[str | os.PathLike], *, lat: slice | None = None,
               lon: slice | None = None, time_chunk: int = 31) -> xr.Dataset:
    """Open yearly OISST files as one dataset ``sst(time, lat, lon)`` in degC.

    ``lat``/``lon`` are index slices applied to every file before the files are joined. With
    dask installed the result is lazy (``open_mfdataset``, chunks of ``time_chunk`` days).
    Without dask each file is opened lazily, cut to ``lat``/``lon`` and only that region is
    read when the files are concatenated: pass a region, a whole 0.25 deg year is ~1.5 GB.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise SSTDataError("no OISST files given; fetch them with fetch_oisst_years()")
    fix = "fetch it again with idff.data.sst.fetch_oisst_years (or download it by hand)"
    region = {k: v for k, v in (("lat", lat), ("lon", lon)) if v is not None}
    grid = None
    for p in paths:  # open every file first so that a bad one is named
        with _open_netcdf(p, "OISST file", fix) as ds:
            _check_psl_layout(ds, p)
            g = (ds["lat"].values, ds["lon"].values)
        if grid is not None and not (np.array_equal(g[0], grid[0])
                                     and np.array_equal(g[1], grid[1])):
            raise SSTDataError(f"{p} has another lat/lon grid than {paths[0]}; all OISST files "
                               f"must come from the same product (v2 high-res, 0.25 deg)")
        grid = g
    if has_dask():
        ds = xr.open_mfdataset([str(p) for p in paths], combine="by_coords",
                               chunks={"time": time_chunk}, data_vars="minimal",
                               coords="minimal", compat="override")
        ds = ds[["sst"]].isel(region)
    else:
        parts = []
        for p in paths:
            with xr.open_dataset(p) as one:
                parts.append(one[["sst"]].isel(region).load())
        ds = xr.concat(parts, dim="time", data_vars="minimal", coords="minimal",
                       compat="override", join="override")
    times = ds["time"].values
    if times.size > 1 and not np.all(np.diff(times) > np.timedelta64(0, "ns")):
        ds = ds.sortby("time")
        if np.any(np.diff(ds["time"].values) == np.timedelta64(0, "ns")):
            raise SSTDataError(f"the OISST files {[p.name for p in paths]} hold duplicate days; "
                               f"give each year once")
    return ds


# --------------------------------------------------------------------------------------------
# OSTIA (offline, iris-sample-data)
# --------------------------------------------------------------------------------------------

def ostia_path() -> Path:
    """Path of ``ostia_monthly.nc`` inside the installed ``iris-sample-data`` package."""
    try:
        import iris_sample_data  # optional sample data, only for the offline SST stand-in
    except ImportError as exc:
        raise SSTDataError("the offline SST field needs the iris-sample-data package: "
                           "pip install iris-sample-data") from exc
    path = Path(iris_sample_data.path) / "ostia_monthly.nc"
    if not path.is_file():
        raise SSTDataError(f"{path} is missing from the iris-sample-data install; reinstall it "
                           f"(pip install --force-reinstall iris-sample-data)")
    return path


def open_ostia(path: str | os.PathLike | None = None) -> xr.DataArray:
    """The OSTIA monthly field as ``sst(time, lat, lon)`` in Kelvin, land NaN (loaded)."""
    path = Path(path) if path is not None else ostia_path()
    with _open_netcdf(path, "OSTIA file", "reinstall iris-sample-data") as ds:
        if "surface_temperature" not in ds.data_vars:
            raise SSTDataError(f"{path} has no `surface_temperature` variable; it is not the "
                               f"iris-sample-data ostia_monthly.nc")
        da = ds["surface_temperature"].load()
    da = da.rename({"latitude": "lat", "longitude": "lon"}).rename("sst")
    return da.reset_coords(drop=True)


# --------------------------------------------------------------------------------------------
# Boxes
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Box:
    """A square box of grid points: index ranges [start, stop) and the centre coordinates."""

    id: int
    lat_start: int
    lat_stop: int
    lon_start: int
    lon_stop: int
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float
    ocean_fraction: float = float("nan")

    @property
    def isel(self) -> dict[str, slice]:
        return {"lat": slice(self.lat_start, self.lat_stop),
                "lon": slice(self.lon_start, self.lon_stop)}


def box_grid(lat: np.ndarray, lon: np.ndarray, box: int,
             lat_range: tuple[float, float] | None = (-60.0, 60.0)) -> list[Box]:
    """All candidate boxes, numbered as DYffusion numbers them.

    Box origins lie every ``box`` grid points from index 0 in both directions; a latitude band
    is kept when all its rows lie in ``lat_range``. ``id = band * (n_lon // box) + column``,
    bands counted over the kept bands only (for OISST: 8 bands x 24 columns).
    """
    if box < 1:
        raise ValueError(f"box must be >= 1 grid point, got {box}")
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    lo, hi = lat_range if lat_range is not None else (-np.inf, np.inf)
    n_cols = lon.size // box
    out, band = [], 0
    for r in range(0, lat.size - box + 1, box):
        if not (lat[r] >= lo and lat[r + box - 1] <= hi):
            continue
        for c in range(n_cols):
            c0 = c * box
            out.append(Box(band * n_cols + c, r, r + box, c0, c0 + box, float(lat[r]),
                           float(lat[r + box - 1]), float(lon[c0]), float(lon[c0 + box - 1])))
        band += 1
    return out


def extract_boxes(da: xr.DataArray, box: int = 60,
                  lat_range: tuple[float, float] | None = (-60, 60), min_ocean: float = 0.95,
                  select: Sequence[int | tuple[float, float]] | None = None) -> list[Box]:
    """Boxes of ``da`` (dims ``lat``, ``lon``, optionally ``time``) that are ocean enough.

    The ocean fraction is the share of finite values in the box at the first time step. With
    ``select`` (box ids, or (lat, lon) points inside the wanted boxes) exactly those boxes are
    returned, and one that fails ``min_ocean`` or does not exist is an error. Sorted by id.
    """
    field0 = da.isel(time=0) if "time" in da.dims else da
    lat, lon = field0["lat"].values, field0["lon"].values
    candidates = box_grid(lat, lon, box, lat_range)
    if not candidates:
        raise SSTDataError(f"no {box} x {box} box fits the grid ({lat.size} x {lon.size}) within "
                           f"latitudes {lat_range}; use a smaller box or a wider lat_range")
    ocean = np.isfinite(field0.transpose("lat", "lon").values)

    def with_fraction(b: Box) -> Box:
        frac = float(ocean[b.lat_start:b.lat_stop, b.lon_start:b.lon_stop].mean())
        return replace(b, ocean_fraction=frac)

    if select is None:
        boxes = [with_fraction(b) for b in candidates]
        kept = [b for b in boxes if b.ocean_fraction >= min_ocean]
        if not kept:
            raise SSTDataError(f"no {box} x {box} box is at least {min_ocean:.0%} ocean; lower "
                               f"min_ocean or use a smaller box")
        return kept
    by_id = {b.id: b for b in candidates}
    chosen: dict[int, Box] = {}
    for item in select:
        b = by_id.get(int(item)) if np.isscalar(item) else _box_at(candidates, lat, lon, item)
        if b is None:
            raise SSTDataError(f"box {item!r} does not exist on this grid (ids 0.."
                               f"{max(by_id)} with box={box}, lat_range={lat_range})")
        b = with_fraction(b)
        if b.ocean_fraction < min_ocean:
            raise SSTDataError(f"box {item!r} (id {b.id}) is only {b.ocean_fraction:.1%} ocean "
                               f"at the first time step, below min_ocean={min_ocean:.0%}")
        chosen[b.id] = b
    return [chosen[k] for k in sorted(chosen)]


def _box_at(candidates: list[Box], lat: np.ndarray, lon: np.ndarray,
            point: Sequence[float]) -> Box | None:
    plat, plon = float(point[0]), float(point[1])
    if lon.max() > 180 and plon < 0:  # 0..360 grid, point given in -180..180
        plon += 360.0
    i, j = int(np.argmin(np.abs(lat - plat))), int(np.argmin(np.abs(lon - plon)))
    for b in candidates:
        if b.lat_start <= i < b.lat_stop and b.lon_start <= j < b.lon_stop:
            return b
    return None


# --------------------------------------------------------------------------------------------
# Year split and standardisation
# --------------------------------------------------------------------------------------------

def parse_years(years: int | str | Sequence[int]) -> tuple[int, ...]:
    """``2019``, ``"1982-2018"`` (inclusive) or a list of years -> sorted tuple of years."""
    if isinstance(years, str):
        parts = [p.strip() for p in years.split("-")]
        if len(parts) not in (1, 2) or not all(p.isdigit() for p in parts):
            raise ValueError(f"years {years!r}: write one year or an inclusive range "
                             f"'START-END', e.g. '1982-2018'")
        a, b = int(parts[0]), int(parts[-1])
        if b < a:
            raise ValueError(f"years {years!r}: the range ends before it starts")
        return tuple(range(a, b + 1))
    if isinstance(years, int | np.integer):
        return (int(years),)
    return tuple(sorted({int(y) for y in years}))


@dataclass(frozen=True)
class YearSplit:
    """Train / validation / test years; the statistics come from the training years only."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in SPLITS:
            object.__setattr__(self, name, parse_years(getattr(self, name)))
            if not getattr(self, name):
                raise ValueError(f"the {name} years are empty; every split needs a year")
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            both = set(getattr(self, a)) & set(getattr(self, b))
            if both:
                raise ValueError(f"years {sorted(both)} are in both the {a} and the {b} split")

    @property
    def all_years(self) -> tuple[int, ...]:
        return tuple(sorted(self.train + self.val + self.test))

    def labels(self, years: np.ndarray) -> np.ndarray:
        """Split name of every entry of ``years`` ('' for a year in no split)."""
        out = np.full(np.shape(years), "", dtype="<U5")
        for name in SPLITS:
            out[np.isin(years, getattr(self, name))] = name
        return out

    def check_available(self, years: np.ndarray, source: str) -> None:
        have = set(np.unique(years).tolist())
        missing = {n: sorted(set(getattr(self, n)) - have) for n in SPLITS}
        missing = {n: m for n, m in missing.items() if m}
        if missing:
            span = f"{min(have)}-{max(have)}" if have else "none"
            raise SSTDataError(f"{source} has no data for the years {missing} (it covers "
                               f"{span}); fix the years in the config or add the data")


def period_index(times: np.ndarray, step: Step) -> tuple[np.ndarray, int]:
    """0-based day of year (366 periods) or calendar month (12 periods) of every time."""
    t = xr.DataArray(np.asarray(times), dims="time").dt
    if step == "day":
        return t.dayofyear.values.astype(np.int64) - 1, 366
    if step == "month":
        return t.month.values.astype(np.int64) - 1, 12
    raise ValueError(f"step must be 'day' or 'month', got {step!r}")


def consecutive_steps(times: np.ndarray, step: Step) -> np.ndarray:
    """``out[k]`` is True when ``times[k + 1]`` is the step right after ``times[k]``."""
    times = np.asarray(times)
    if step == "day":
        days = times.astype("datetime64[D]").astype(np.int64)
        return np.diff(days) == 1
    t = xr.DataArray(times, dims="time").dt
    months = t.year.values.astype(np.int64) * 12 + t.month.values
    return np.diff(months) == 1


def training_stats(values: np.ndarray, periods: np.ndarray, train_mask: np.ndarray,
                   n_periods: int, std_mode: StdMode = "pixel") -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (ddof 0) per period from the training time steps only.

    ``values[T, H, W]`` (NaN = land/missing). ``std_mode="pixel"``: both per grid point
    (DYffusion); ``"box"``: the mean per grid point, the std pooled over the box's points.
    Returns float64 ``mean, std[n_periods, H, W]``; NaN where a period has no training value.
    """
    values = np.asarray(values, dtype=np.float64)
    train_mask = np.asarray(train_mask, dtype=bool)
    if std_mode not in ("pixel", "box"):
        raise ValueError(f"std_mode must be 'pixel' or 'box', got {std_mode!r}")
    shape = (n_periods, *values.shape[1:])
    mean, std = np.full(shape, np.nan), np.full(shape, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN land points
        for p in np.unique(periods[train_mask]):
            sel = values[train_mask & (periods == p)]
            mean[p] = np.nanmean(sel, axis=0)
            if std_mode == "pixel":
                std[p] = np.nanstd(sel, axis=0)
            else:
                pooled = np.sqrt(np.nanmean((sel - mean[p]) ** 2))
                std[p] = np.where(np.isfinite(mean[p]), pooled, np.nan)
    return mean, std


def standardise(values: np.ndarray, periods: np.ndarray, mean: np.ndarray,
                std: np.ndarray) -> np.ndarray:
    """``(x - mean[period]) / std[period]`` with every non-finite result set to 0 (land)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.empty(values.shape, dtype=np.float32)
    for p in np.unique(periods):
        sel = periods == p
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (values[sel] - mean[p]) / std[p]
        out[sel] = np.where(np.isfinite(z), z, 0.0)
    return out


def _standardise_box(values: np.ndarray, periods: np.ndarray, train_mask: np.ndarray,
                     n_periods: int, std_mode: StdMode, box: Box, step: Step, min_std: float):
    land = ~np.isfinite(values[0])
    mean, std = training_stats(values, periods, train_mask, n_periods, std_mode)
    ocean = ~land
    unit = "day of year" if step == "day" else "month"
    used = np.unique(periods)
    for p in used:
        no_stats = ocean & ~np.isfinite(mean[p])
        if no_stats.any():
            leap = " (31 December of leap years)" if step == "day" and p == 365 else ""
            raise SSTDataError(f"box {box.id}: {unit} {p + 1}{leap} has no training-year value "
                               f"at {int(no_stats.sum())} ocean grid points; choose training "
                               f"years that cover it")
    for p in used:
        zero = ocean & np.isfinite(std[p]) & (std[p] <= min_std)
        if zero.any():
            raise SSTDataError(f"box {box.id}: the training-year standard deviation of {unit} "
                               f"{p + 1} is {np.nanmin(std[p][zero]):.2g} <= min_std={min_std} "
                               f"at {int(zero.sum())} ocean grid points; use std_mode='box' or "
                               f"more training years")
    z = standardise(values, periods, mean, std)
    z[:, land] = 0.0
    return z, land, mean.astype(np.float32), std.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Building and writing the prepared dataset
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceDefaults:
    box: int
    lat_range: tuple[float, float] | None
    min_ocean: float
    boxes: tuple[int, ...] | None
    train_years: str
    val_years: str
    test_years: str
    std_mode: StdMode
    step: Step


#: Defaults per source; the experiment config should state the values it uses.
SOURCE_DEFAULTS: dict[str, SourceDefaults] = {
    "oisst": SourceDefaults(60, (-60.0, 60.0), 0.95, DYFFUSION_PACIFIC_BOXES, "1982-2018",
                            "2019", "2020", "pixel", "day"),
    "ostia": SourceDefaults(16, (-60.0, 60.0), 0.95, None, "2006-2008", "2009", "2010",
                            "box", "month"),
}


def build_boxed_dataset(read_box: Callable[[Box], np.ndarray], times: np.ndarray,
                        lat: np.ndarray, lon: np.ndarray, boxes: Sequence[Box],
                        split: YearSplit, *, step: Step, std_mode: StdMode,
                        min_std: float = 1e-3, attrs: dict[str, Any] | None = None) -> xr.Dataset:
    """Standardise every box and assemble the prepared dataset (in memory).

    ``read_box(box)`` returns the raw values ``[T, box, box]`` for ``times`` (NaN = land). A
    training standard deviation <= ``min_std`` (raw units, K or degC) at an ocean point is an
    error: dividing by it would blow up the validation and test values.
    """
    times = np.asarray(times)
    years = xr.DataArray(times, dims="time").dt.year.values.astype(np.int64)
    labels = split.labels(years)
    periods, n_periods = period_index(times, step)
    train_mask = labels == "train"
    zs, lands, means, stds = [], [], [], []
    for b in boxes:
        values = np.asarray(read_box(b), dtype=np.float32)
        if values.shape[0] != times.size:
            raise SSTDataError(f"box {b.id}: read {values.shape[0]} time steps, expected "
                               f"{times.size}")
        z, land, mean, std = _standardise_box(values, periods, train_mask, n_periods, std_mode,
                                              b, step, min_std)
        zs.append(z)
        lands.append(land)
        means.append(mean)
        stds.append(std)
    ds = xr.Dataset(
        {"sst": (("box", "time", "y", "x"), np.stack(zs)),
         "land": (("box", "y", "x"), np.stack(lands).astype(np.int8)),
         "clim_mean": (("box", "period", "y", "x"), np.stack(means)),
         "clim_std": (("box", "period", "y", "x"), np.stack(stds))},
        coords={"box": np.array([b.id for b in boxes], dtype=np.int64), "time": times,
                "year": ("time", years), "period_index": ("time", periods),
                "split": ("time", labels.astype(str)), "period": np.arange(n_periods),
                "lat": (("box", "y"), np.stack([lat[b.lat_start:b.lat_stop] for b in boxes])),
                "lon": (("box", "x"), np.stack([lon[b.lon_start:b.lon_stop] for b in boxes])),
                "ocean_fraction": ("box", np.array([b.ocean_fraction for b in boxes]))},
    )
    ds["sst"].attrs.update(long_name="standardised sea surface temperature anomaly",
                           units="1", comment="(x - clim_mean[period]) / clim_std[period]; land 0")
    ds["land"].attrs.update(comment="1 where the raw field is missing at the first time step")
    ds.attrs.update({
        "format": "idff-sst", "format_version": FORMAT_VERSION, "step": step,
        "period_kind": "dayofyear" if step == "day" else "month", "std_mode": std_mode,
        "std_ddof": 0, "min_std": min_std, "train_years": np.array(split.train),
        "val_years": np.array(split.val),
        "test_years": np.array(split.test), **(attrs or {})})
    return ds


def prepare_sst_dataset(source: Literal["ostia", "oisst"], out_path: str | os.PathLike, *,
                        inputs: Sequence[str | os.PathLike] | str | os.PathLike | None = None,
                        box: int | None = None,
                        lat_range: tuple[float, float] | None | Literal["default"] = "default",
                        min_ocean: float | None = None,
                        boxes: Sequence[int | tuple[float, float]] | None | Literal["default"]
                        = "default",
                        train_years: Any = None, val_years: Any = None, test_years: Any = None,
                        std_mode: StdMode | None = None, min_std: float = 1e-3) -> Path:
    """Box, standardise and split one SST source and write it atomically to ``out_path``.

    ``inputs``: for ``oisst`` the yearly ``sst.day.mean.YYYY.nc`` files (see
    :func:`fetch_oisst_years`), for ``ostia`` optionally another path to ``ostia_monthly.nc``.
    Any setting left ``None`` / ``"default"`` takes the value in :data:`SOURCE_DEFAULTS`
    (``boxes=None`` keeps every box that is ocean enough). Returns ``out_path``.
    """
    if source not in SOURCE_DEFAULTS:
        raise ValueError(f"source must be one of {sorted(SOURCE_DEFAULTS)}, got {source!r}")
    d = SOURCE_DEFAULTS[source]
    box = d.box if box is None else int(box)
    lat_range = d.lat_range if lat_range == "default" else lat_range
    min_ocean = d.min_ocean if min_ocean is None else float(min_ocean)
    select = d.boxes if boxes == "default" else boxes
    std_mode = std_mode or d.std_mode
    split = YearSplit(train_years if train_years is not None else d.train_years,
                      val_years if val_years is not None else d.val_years,
                      test_years if test_years is not None else d.test_years)
    settings = {"source": source, "box_size": box, "min_ocean": min_ocean,
                "lat_range": "none" if lat_range is None else np.array(lat_range, dtype=float)}

    if source == "ostia":
        if inputs is not None and not isinstance(inputs, str | os.PathLike):
            if len(inputs) != 1:
                raise SSTDataError(f"source 'ostia' takes one input file, got {len(inputs)}")
            inputs = inputs[0]
        path = Path(inputs) if inputs is not None else ostia_path()
        da = open_ostia(path)
        split.check_available(da["time"].dt.year.values, str(path))
        da = da.isel(time=np.isin(da["time"].dt.year.values, split.all_years))
        chosen = extract_boxes(da, box, lat_range, min_ocean, select)
        values = da.transpose("time", "lat", "lon").values
        ds = build_boxed_dataset(
            lambda b: values[:, b.lat_start:b.lat_stop, b.lon_start:b.lon_stop],
            da["time"].values, da["lat"].values, da["lon"].values, chosen, split, step=d.step,
            std_mode=std_mode, min_std=min_std,
            attrs={**settings, "source_files": path.name, "raw_units": "K",
                   "source_description": "OSTIA monthly SST from iris-sample-data "
                                         "(UK Open Government Licence); monthly steps"})
    else:
        if inputs is None or isinstance(inputs, str | os.PathLike):
            raise SSTDataError("source 'oisst' needs inputs=[the yearly sst.day.mean.YYYY.nc "
                               "files]; fetch them with idff.data.sst.fetch_oisst_years")
        ds = _prepare_oisst([Path(p) for p in inputs], split, box, lat_range, min_ocean, select,
                            std_mode, min_std, settings)
    out_path = Path(out_path)
    encoding = {v: {"zlib": True, "complevel": 1} for v in ("sst", "clim_mean", "clim_std")}
    with atomic_path(out_path, suffix=".nc.tmp") as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
    return out_path


def _prepare_oisst(paths: list[Path], split: YearSplit, box: int,
                   lat_range: tuple[float, float] | None, min_ocean: float,
                   select: Sequence[int | tuple[float, float]] | None, std_mode: StdMode,
                   min_std: float, settings: dict[str, Any]) -> xr.Dataset:
    fix = "fetch it again with idff.data.sst.fetch_oisst_years"
    file_years: dict[Path, np.ndarray] = {}
    file_times: dict[Path, np.ndarray] = {}
    for p in paths:
        with _open_netcdf(p, "OISST file", fix) as ds:
            _check_psl_layout(ds, p)
            file_times[p] = ds["time"].values
            file_years[p] = np.unique(ds["time"].dt.year.values)
    split.check_available(np.concatenate(list(file_years.values())),
                          f"the OISST files {[p.name for p in paths]}")
    used = [p for p in paths if np.isin(file_years[p], split.all_years).any()]
    with xr.open_dataset(min(used, key=lambda p: file_years[p].min())) as first:
        field0 = first["sst"].isel(time=0).load()
        lat, lon = first["lat"].values, first["lon"].values
    chosen = extract_boxes(field0, box, lat_range, min_ocean, select)
    # read one latitude band at a time, covering only the columns of its chosen boxes
    bands: dict[int, list[Box]] = {}
    for b in chosen:
        bands.setdefault(b.lat_start, []).append(b)
    cache: dict[str, Any] = {"band": None}
    times_ref: list[np.ndarray] = []

    def read_box(b: Box) -> np.ndarray:
        if cache["band"] != b.lat_start:
            members = bands[b.lat_start]
            c0, c1 = min(m.lon_start for m in members), max(m.lon_stop for m in members)
            block = open_oisst(used, lat=slice(b.lat_start, b.lat_stop), lon=slice(c0, c1))
            keep = np.isin(block["time"].dt.year.values, split.all_years)
            cache.update(band=b.lat_start, c0=c0,
                         values=block["sst"].isel(time=keep).values.astype(np.float32))
            times_ref.append(block["time"].values[keep])
        return cache["values"][:, :, b.lon_start - cache["c0"]:b.lon_stop - cache["c0"]]

    times = np.sort(np.concatenate([file_times[p] for p in used]))
    times = times[np.isin(xr.DataArray(times, dims="t").dt.year.values, split.all_years)]
    ds = build_boxed_dataset(read_box, times, lat, lon, chosen, split, step="day",
                             std_mode=std_mode, min_std=min_std,
                             attrs={**settings, "source_files": " ".join(p.name for p in used),
                                    "raw_units": "degC",
                                    "source_description": "NOAA OISST v2 high-res daily SST "
                                                          "(NOAA PSL); daily steps"})
    for t in times_ref:
        if not np.array_equal(t, times):
            raise SSTDataError("the OISST files changed while they were read; rerun")
    return ds


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

_REQUIRED = ("sst", "land", "clim_mean", "clim_std", "split", "year", "period_index", "time",
             "box")


@dataclass
class SSTDataset:
    """A prepared SST dataset held in memory (arrays in numpy, standardised units)."""

    path: Path
    sst: np.ndarray            # [B, T, H, W] float32, standardised, land 0
    land: np.ndarray           # [B, H, W] bool
    time: np.ndarray           # [T] datetime64
    year: np.ndarray           # [T] int
    period: np.ndarray         # [T] 0-based day of year or month
    split: np.ndarray          # [T] 'train' | 'val' | 'test'
    box_ids: np.ndarray        # [B]
    lat: np.ndarray            # [B, H]
    lon: np.ndarray            # [B, W]
    clim_mean: np.ndarray      # [B, P, H, W] raw units
    clim_std: np.ndarray       # [B, P, H, W] raw units
    step: Step
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_periods(self) -> int:
        return int(self.clim_mean.shape[1])

    @property
    def field_shape(self) -> tuple[int, int]:
        return int(self.sst.shape[2]), int(self.sst.shape[3])

    def split_index(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return np.flatnonzero(self.split == name)

    def next_is_consecutive(self) -> np.ndarray:
        """``[T - 1]``: True where time step k + 1 directly follows step k in the same split."""
        same = self.split[1:] == self.split[:-1]
        return same & consecutive_steps(self.time, self.step)

    def destandardise(self, z: np.ndarray, box: np.ndarray, period: np.ndarray) -> np.ndarray:
        """Back to raw units (K or degC): ``z * std + mean`` for fields ``z[..., H, W]`` whose
        leading dims match ``box`` and ``period`` (broadcast)."""
        box, period = np.asarray(box), np.asarray(period)
        return z * self.clim_std[box, period] + self.clim_mean[box, period]

    def summary(self) -> dict[str, Any]:
        counts = {s: int((self.split == s).sum()) for s in SPLITS}
        return {"path": str(self.path), "source": self.attrs.get("source"), "step": self.step,
                "n_boxes": int(self.sst.shape[0]), "box_ids": self.box_ids.tolist(),
                "field_shape": list(self.field_shape), "steps_per_split": counts,
                "std_mode": self.attrs.get("std_mode"),
                "years": {s: sorted(set(self.year[self.split == s].tolist())) for s in SPLITS}}


def load_sst_dataset(path: str | os.PathLike) -> SSTDataset:
    """Read a file written by :func:`prepare_sst_dataset`; every problem is an SSTDataError."""
    path = Path(path)
    fix = "rerun the data step (snakemake data_sst, or idff.data.sst.prepare_sst_dataset)"
    with _open_netcdf(path, "SST dataset", fix) as ds:
        missing = [v for v in _REQUIRED if v not in ds.variables]
        if missing or ds.attrs.get("format") != "idff-sst":
            raise SSTDataError(f"SST dataset {path} lacks {missing or 'the idff-sst format tag'}"
                               f": it was not written by prepare_sst_dataset; delete it and {fix}")
        try:
            data = SSTDataset(
                path=path, sst=ds["sst"].values.astype(np.float32, copy=False),
                land=ds["land"].values.astype(bool), time=ds["time"].values,
                year=ds["year"].values.astype(np.int64),
                period=ds["period_index"].values.astype(np.int64),
                split=ds["split"].values.astype(str), box_ids=ds["box"].values.astype(np.int64),
                lat=ds["lat"].values, lon=ds["lon"].values,
                clim_mean=ds["clim_mean"].values, clim_std=ds["clim_std"].values,
                step=str(ds.attrs.get("step")), attrs=_plain_attrs(ds.attrs))
        except Exception as exc:  # a truncated variable fails only when it is read
            raise SSTDataError(f"SST dataset {path} could not be read ({exc}); it is truncated: "
                               f"delete it and {fix}") from exc
    bad = ~np.isfinite(data.sst)
    if bad.any():
        where = data.box_ids[bad.any(axis=(1, 2, 3))].tolist()
        raise SSTDataError(f"SST dataset {path} holds {int(bad.sum())} NaN/inf values (boxes "
                           f"{where}) after preprocessing; the file is damaged or was written "
                           f"by a faulty step: delete it and {fix}")
    if data.step not in ("day", "month"):
        raise SSTDataError(f"SST dataset {path} has step={data.step!r}; delete it and {fix}")
    for s in SPLITS:
        if not (data.split == s).any():
            raise SSTDataError(f"SST dataset {path} has no time steps in the {s} split (years "
                               f"{data.attrs.get(f'{s}_years')}); set years that the data "
                               f"cover in the config and {fix}")
    return data


def _plain_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in attrs.items()}
    for s in SPLITS:  # a one-year array comes back from netCDF as a scalar
        if isinstance(out.get(f"{s}_years"), int):
            out[f"{s}_years"] = [out[f"{s}_years"]]
    return out


# --------------------------------------------------------------------------------------------
# Training pairs and forecast windows
# --------------------------------------------------------------------------------------------

def _n_cond(data: SSTDataset, cond: CondMode, horizon: int) -> int:
    if cond == "lead":
        return int(horizon)
    if cond == "season":
        return data.n_periods
    raise ValueError(f"cond must be 'lead' or 'season', got {cond!r}")


class _BoxFieldPairs:
    """What the SST pair samplers share: every box's fields as one tensor ``[B, T, H, W]``, the
    data shape ``[C=1, H, W]``, and the batch-size check of ``sample_batch``."""

    def __init__(self, data: SSTDataset) -> None:
        self._fields = torch.from_numpy(np.ascontiguousarray(data.sst))
        self.n_boxes = int(data.sst.shape[0])
        self.data_shape: tuple[int, ...] = (1, *data.field_shape)

    @staticmethod
    def _check_batch_size(batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")


class SSTPairs(_BoxFieldPairs):
    """Training pairs ``(x0, x1) = (field at step k - 1, field at step k)`` of one split.

    ``cond`` chooses the class label given to the network:

    * ``"lead"`` (default): the lead-time index ``l - 1`` (0 .. horizon - 1) of the target in an
      autoregressive roll-out of ``horizon`` steps; ``n_cond = horizon``. With one-step pairs
      every lead sees the same data, so the label is drawn uniformly and independently of the
      pair; at forecast time step ``l`` of a roll-out passes ``l - 1``. This is the IDFF code's
      "frame index" (position of the target in the forecast sequence), which for one-step
      roll-outs equals DYffusion's lead time.
    * ``"season"``: the day of year (0..365, daily data) or month (0..11, monthly data) of the
      target step ``k``; ``n_cond`` = 366 or 12. It carries the seasonal cycle.

    Pairs never cross a split border or a gap in time. Fields are ``[C=1, H, W]`` float32.
    """

    def __init__(self, data: SSTDataset, split: str = "train", cond: CondMode = "lead",
                 horizon: int = 7) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.cond_mode = cond
        self.horizon = int(horizon)
        self.n_cond = _n_cond(data, cond, horizon)
        idx = data.split_index(split)
        nxt = data.next_is_consecutive()
        self._k = torch.as_tensor(np.array([k for k in idx if k > 0 and nxt[k - 1]],
                                           dtype=np.int64))
        if self._k.numel() == 0:
            raise SSTDataError(f"{data.path}: the {split} split has no two consecutive time "
                               f"steps, so there is no training pair; give it more years")
        super().__init__(data)
        self._period = torch.as_tensor(data.period)

    @property
    def n_pairs(self) -> int:
        return self.n_boxes * int(self._k.numel())

    def sample_batch(self, batch_size: int, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw ``batch_size`` pairs uniformly (with replacement): ``x0, x1 [B, 1, H, W]`` and
        ``cond [B]`` (int64)."""
        self._check_batch_size(batch_size)
        i = torch.randint(0, self.n_pairs, (batch_size,), generator=generator)
        b, k = i // self._k.numel(), self._k[i % self._k.numel()]
        x0 = self._fields[b, k - 1].unsqueeze(1)
        x1 = self._fields[b, k].unsqueeze(1)
        if self.cond_mode == "lead":
            cond = torch.randint(0, self.horizon, (batch_size,), generator=generator)
        else:
            cond = self._period[k]
        return x0, x1, cond.long()


class SSTLeadPairs(_BoxFieldPairs):
    """Direct multi-lead pairs ``(x0, x1) = (field at step k, field at step k + h)``, ``cond = h - 1``.

    DYffusion's setting: one network forecasts every lead time ``h = 1 .. horizon`` straight from
    the last observed field, told the lead by its class label, so the label carries information
    (with one-step pairs every lead sees the same data, see :class:`SSTPairs`). ``h`` is drawn
    uniformly, then ``(box, k)`` uniformly among the pairs of that lead whose steps
    ``k .. k + h`` all lie consecutively in ``split`` (no split border, no gap in time).
    ``n_cond = horizon``; fields are ``[C=1, H, W]`` float32.
    """

    def __init__(self, data: SSTDataset, split: str = "train", horizon: int = 7) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.horizon = self.n_cond = int(horizon)
        idx = data.split_index(split)
        nxt = np.append(data.next_is_consecutive(), False)
        starts = [np.array([k for k in idx if k + h < data.time.size and nxt[k:k + h].all()],
                           dtype=np.int64) for h in range(1, horizon + 1)]
        empty = [h + 1 for h, s in enumerate(starts) if s.size == 0]
        if empty:
            raise SSTDataError(f"{data.path}: the {split} split ({idx.size} steps) has no pair "
                               f"{empty[0]} steps apart; lower the horizon or give it more years")
        self._count = torch.as_tensor([s.size for s in starts], dtype=torch.int64)
        pad = np.zeros((horizon, max(s.size for s in starts)), dtype=np.int64)
        for h, s in enumerate(starts):
            pad[h, :s.size] = s
        self._starts = torch.from_numpy(pad)
        super().__init__(data)

    @property
    def n_pairs(self) -> int:
        return self.n_boxes * int(self._count.sum())

    def sample_batch(self, batch_size: int, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x0, x1 [B, 1, H, W]`` and ``cond [B]`` (int64, the lead index h - 1)."""
        self._check_batch_size(batch_size)
        lead = torch.randint(0, self.horizon, (batch_size,), generator=generator)
        u = torch.rand(batch_size, generator=generator, dtype=torch.float64)
        j = torch.clamp((u * self._count[lead]).long(), max=self._count[lead] - 1)
        k = self._starts[lead, j]
        b = torch.randint(0, self.n_boxes, (batch_size,), generator=generator)
        x0 = self._fields[b, k].unsqueeze(1)
        x1 = self._fields[b, k + lead + 1].unsqueeze(1)
        return x0, x1, lead


class WindowBatch(NamedTuple):
    context: torch.Tensor   # [B, 1, H, W]  field at step k
    truth: torch.Tensor     # [B, L, 1, H, W]  fields at k + 1 .. k + L
    cond: torch.Tensor      # [B, L] int64: label for producing lead l + 1
    index: torch.Tensor     # [B] window numbers


@dataclass
class ForecastWindows:
    """Forecast windows of one split: context at step k and the truth at k + 1 .. k + L."""

    context: np.ndarray        # [N, 1, H, W]
    truth: np.ndarray          # [N, L, 1, H, W]
    cond: np.ndarray           # [N, L] int64
    box: np.ndarray            # [N] box index (position in the dataset, not the box id)
    start: np.ndarray          # [N] time index of the context step
    target_period: np.ndarray  # [N, L] period of each target step
    land: np.ndarray           # [N, 1, H, W] bool

    def __len__(self) -> int:
        return int(self.context.shape[0])

    @property
    def horizon(self) -> int:
        return int(self.truth.shape[1])

    def batches(self, batch_size: int) -> Iterator[WindowBatch]:
        """The windows in order, as torch tensors, ``batch_size`` at a time."""
        for a in range(0, len(self), batch_size):
            s = slice(a, min(a + batch_size, len(self)))
            yield WindowBatch(torch.from_numpy(self.context[s]), torch.from_numpy(self.truth[s]),
                              torch.from_numpy(self.cond[s]), torch.arange(s.start, s.stop))


def forecast_windows(data: SSTDataset, split: str = "test", horizon: int = 7, stride: int = 1,
                     cond: CondMode = "lead") -> ForecastWindows:
    """All windows whose context step and ``horizon`` targets lie consecutively in ``split``.

    Windows start every ``stride`` steps, in every box (box-major order). ``cond`` gives the
    same labels as :class:`SSTPairs` (lead index 0..L-1, or the target's period).
    """
    if horizon < 1 or stride < 1:
        raise ValueError(f"horizon and stride must be >= 1, got {horizon}, {stride}")
    _n_cond(data, cond, horizon)
    idx = data.split_index(split)
    nxt = np.append(data.next_is_consecutive(), False)
    starts = [k for k in idx if k + horizon < data.time.size and nxt[k:k + horizon].all()]
    starts = np.array(starts[::stride], dtype=np.int64)
    if starts.size == 0:
        raise SSTDataError(f"{data.path}: the {split} split ({idx.size} steps) is too short for "
                           f"a {horizon}-step forecast window; lower the horizon or add years")
    n_b = data.sst.shape[0]
    box = np.repeat(np.arange(n_b), starts.size)
    start = np.tile(starts, n_b)
    tgt = start[:, None] + np.arange(1, horizon + 1)[None, :]
    truth = data.sst[box[:, None], tgt][:, :, None]
    periods = data.period[tgt]
    labels = periods if cond == "season" else np.broadcast_to(np.arange(horizon), tgt.shape)
    return ForecastWindows(context=data.sst[box, start][:, None], truth=truth,
                           cond=np.ascontiguousarray(labels, dtype=np.int64), box=box,
                           start=start, target_period=periods, land=data.land[box][:, None])


def select_windows(windows: ForecastWindows, n: int | None) -> ForecastWindows:
    """``n`` windows spread evenly over ``windows`` (all of them for ``None`` or ``n >= len``).

    Deterministic (no seed): every method, sampler and seed is scored on the same windows.
    """
    if n is None or n >= len(windows):
        return windows
    if n < 1:
        raise ValueError(f"the number of forecast windows must be >= 1, got {n}")
    keep = np.unique(np.round(np.linspace(0, len(windows) - 1, int(n))).astype(np.int64))
    return ForecastWindows(**{f: getattr(windows, f)[keep] for f in (
        "context", "truth", "cond", "box", "start", "target_period", "land")})
