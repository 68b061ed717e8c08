"""idff.data.sst: OISST files in the PSL layout (written here), boxes, standardisation, splits,
errors, the offline OSTIA field, and the OISST download through a loopback HTTP server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from loopback import serve

from idff.data import sst
from idff.data.download import DownloadError
from idff.data.sst import (
    DYFFUSION_PACIFIC_BOXES,
    SSTDataError,
    SSTDataset,
    SSTPairs,
    YearSplit,
    box_grid,
    build_boxed_dataset,
    extract_boxes,
    fetch_oisst_years,
    forecast_windows,
    load_sst_dataset,
    open_oisst,
    open_ostia,
    prepare_sst_dataset,
    training_stats,
)

# a coarse grid in the PSL layout: 24 x 48 points, boxes of 6 -> 4 bands x 8 columns
LAT = (-28.75 + 2.5 * np.arange(24)).astype(np.float32)
LON = (1.25 + 2.5 * np.arange(48)).astype(np.float32)


def land_mask(n_lat: int = 24, n_lon: int = 48) -> np.ndarray:
    land = np.zeros((n_lat, n_lon), dtype=bool)
    land[0:6, 0:6] = True     # box 0: all land
    land[6, 6] = True         # box 9: 1 of 36 points land -> 97.2% ocean, kept
    land[6, 12:15] = True     # box 10: 3 of 36 land -> 91.7% ocean, dropped
    return land


def write_psl_year(path: Path, year: int, lat=LAT, lon=LON, n_days: int | None = None,
                   seed: int = 0) -> Path:
    """A yearly file as NOAA PSL writes them: sst(time, lat, lon) float32 degC, NaN land."""
    times = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    times = times[:n_days] if n_days is not None else times
    rng = np.random.default_rng(seed + year)
    doy = times.dayofyear.values[:, None, None]
    field = (20.0 + 5.0 * np.sin(2 * np.pi * doy / 365.0) + 0.1 * lat[None, :, None]
             + 0.02 * lon[None, None, :] + rng.normal(0, 0.5, (len(times), lat.size, lon.size)))
    field = field.astype(np.float32)
    if lat.size >= 24:
        field[:, land_mask(lat.size, lon.size)] = np.nan
    else:
        field[:, 0, 0] = np.nan
    ds = xr.Dataset({"sst": (("time", "lat", "lon"), field, {"units": "degC"})},
                    coords={"time": times, "lat": ("lat", lat, {"units": "degrees_north"}),
                            "lon": ("lon", lon, {"units": "degrees_east"})})
    ds.to_netcdf(path, encoding={"sst": {"_FillValue": np.float32(-9.96921e36)},
                                 "time": {"units": "days since 1800-01-01 00:00:00"}})
    return path


@pytest.fixture(scope="module")
def psl_files(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("oisst")
    return [write_psl_year(d / f"sst.day.mean.{y}.nc", y) for y in (2001, 2002, 2003, 2005)]


@pytest.fixture(scope="module")
def ostia_ds(tmp_path_factory) -> SSTDataset:
    out = tmp_path_factory.mktemp("ostia") / "sst_ostia.nc"
    return load_sst_dataset(prepare_sst_dataset("ostia", out))


# ------------------------------------------------------------------------------------------
# boxes
# ------------------------------------------------------------------------------------------

def test_box_ids_follow_dyffusion_numbering_on_the_oisst_grid():
    lat = -89.875 + 0.25 * np.arange(720)
    lon = 0.125 + 0.25 * np.arange(1440)
    boxes = {b.id: b for b in box_grid(lat, lon, 60, (-60, 60))}
    assert len(boxes) == 8 * 24
    assert (boxes[0].lat_min, boxes[0].lon_min) == (-59.875, 0.125)
    assert (boxes[84].lat_min, boxes[84].lon_min) == (-14.875, 180.125)
    assert (boxes[112].lat_min, boxes[112].lat_max, boxes[112].lon_max) == (0.125, 14.875, 254.875)
    for i in DYFFUSION_PACIFIC_BOXES:  # eastern tropical Pacific: 15 S - 15 N, 180 - 90 W
        b = boxes[i]
        assert -15 < b.lat_min and b.lat_max < 15 and 180 < b.lon_min and b.lon_max < 270
        assert b.lat_stop - b.lat_start == 60 and b.lon_stop - b.lon_start == 60


def test_extract_boxes_drops_land_and_keeps_mostly_ocean():
    field = np.where(land_mask(), np.nan, 1.0)
    da = xr.DataArray(field, dims=("lat", "lon"), coords={"lat": LAT, "lon": LON})
    boxes = extract_boxes(da, box=6, lat_range=(-60, 60), min_ocean=0.95)
    ids = [b.id for b in boxes]
    assert ids == [i for i in range(32) if i not in (0, 10)]
    frac = {b.id: b.ocean_fraction for b in boxes}
    assert frac[9] == pytest.approx(35 / 36) and frac[1] == 1.0
    # an explicit selection, by id and by a point inside box 17 (band 2, column 1)
    sel = extract_boxes(da, box=6, select=[9, (LAT[13], LON[8])])
    assert [b.id for b in sel] == [9, 17]
    with pytest.raises(SSTDataError, match=r"box 10 .*91\.7% ocean"):
        extract_boxes(da, box=6, select=[10])
    with pytest.raises(SSTDataError, match="does not exist"):
        extract_boxes(da, box=6, select=[32])
    # the latitude range removes whole bands (rows 6-17 lie within [-15, 15]); ids count the
    # kept bands only, as DYffusion numbers them
    inner = extract_boxes(da, box=6, lat_range=(-15, 15))
    assert {(b.lat_start, b.id // 8) for b in inner} == {(6, 0), (12, 1)}


# ------------------------------------------------------------------------------------------
# splits and standardisation
# ------------------------------------------------------------------------------------------

def test_year_split_parsing_and_labels():
    s = YearSplit("1982-2018", 2019, [2020])
    assert s.train == tuple(range(1982, 2019)) and s.val == (2019,) and s.test == (2020,)
    assert s.labels(np.array([1981, 1982, 2019, 2020])).tolist() == ["", "train", "val", "test"]
    with pytest.raises(ValueError, match="both the train and the test"):
        YearSplit("2000-2005", "2006", "2005")
    with pytest.raises(ValueError, match="empty"):
        YearSplit([], "2006", "2007")
    with pytest.raises(ValueError, match="START-END"):
        YearSplit("2000..2005", "2006", "2007")
    with pytest.raises(SSTDataError, match=r"no data for the years \{'test': \[2011\]\}"):
        YearSplit("2006-2008", 2009, 2011).check_available(np.array([2006, 2007, 2008, 2009]),
                                                           "ostia")


def _synthetic(years, seed=0):
    times = pd.date_range(f"{years[0]}-01-01", f"{years[-1]}-12-31", freq="D")
    times = times[np.isin(times.year, years)]
    rng = np.random.default_rng(seed)
    values = rng.normal(10, 2, (len(times), 6, 6)).astype(np.float32)
    values[:, 0, 0] = np.nan  # a land point
    return times.values, values


def test_standardisation_uses_training_years_only():
    times, values = _synthetic([2001, 2002, 2003, 2005])
    split = YearSplit("2001-2002", 2003, 2005)
    box = box_grid(np.arange(6.0), np.arange(6.0), 6, None)[0]

    def build(v):
        return build_boxed_dataset(lambda b: v, times, np.arange(6.0), np.arange(6.0), [box],
                                   split, step="day", std_mode="pixel", min_std=1e-9)

    ref = build(values)
    years = pd.DatetimeIndex(times).year
    test_changed = values.copy()
    test_changed[years == 2005] += 100.0
    out = build(test_changed)
    for v in ("clim_mean", "clim_std"):
        np.testing.assert_array_equal(out[v].values, ref[v].values)
    train = (ref["split"] == "train").values
    np.testing.assert_array_equal(out["sst"].values[:, train], ref["sst"].values[:, train])
    assert not np.allclose(out["sst"].values[:, years == 2005], ref["sst"].values[:, years == 2005])
    # ... while a change in a training year does move the statistics
    train_changed = values.copy()
    train_changed[years == 2001] += 1.0
    assert not np.allclose(build(train_changed)["clim_mean"].values[0, :365, 1:, 1:],
                           ref["clim_mean"].values[0, :365, 1:, 1:])
    # pixel mode, ddof 0: 2 training values per day -> train z is exactly +-1 at ocean points
    z = ref["sst"].values[0][train][:, 1:, 1:]
    np.testing.assert_allclose(np.abs(z), 1.0, rtol=1e-5)
    assert (ref["sst"].values[0, :, 0, 0] == 0).all() and ref["land"].values[0, 0, 0] == 1


def test_training_stats_box_mode_pools_the_std():
    rng = np.random.default_rng(1)
    values = rng.normal(0, 1, (40, 5, 5)) * np.linspace(1, 3, 5)[None, None, :]
    periods = np.repeat(np.arange(4), 10)
    train = np.arange(40) < 32
    mean, std = training_stats(values, periods, train, 4, "box")
    for p in range(4):
        sel = values[train & (periods == p)]
        np.testing.assert_allclose(mean[p], sel.mean(0))
        np.testing.assert_allclose(std[p], np.sqrt(((sel - sel.mean(0)) ** 2).mean()))


# ------------------------------------------------------------------------------------------
# OISST files: reading and preparing
# ------------------------------------------------------------------------------------------

def test_open_oisst_reads_the_psl_layout(psl_files):
    ds = open_oisst(psl_files[:2])
    assert ds["sst"].dims == ("time", "lat", "lon")
    assert ds["sst"].shape == (365 * 2, 24, 48) and ds["sst"].dtype == np.float32
    assert np.isnan(ds["sst"].values[:, land_mask()]).all()
    assert np.isfinite(ds["sst"].values[:, ~land_mask()]).all()
    with xr.open_dataset(psl_files[1]) as raw:
        np.testing.assert_array_equal(ds["sst"].values[365:], raw["sst"].values)
    part = open_oisst(psl_files[:2], lat=slice(6, 12), lon=slice(12, 18))
    np.testing.assert_array_equal(part["sst"].values, ds["sst"].values[:, 6:12, 12:18])
    # the files may come in any order; the result is in time order
    rev = open_oisst(psl_files[1::-1])
    np.testing.assert_array_equal(rev["time"].values, ds["time"].values)


def test_open_oisst_dask_branch_uses_open_mfdataset(psl_files, monkeypatch):
    calls = {}

    def fake_mfdataset(paths, **kw):
        calls.update(kw, paths=paths)
        return xr.concat([xr.open_dataset(p).load() for p in paths], dim="time")

    monkeypatch.setattr(sst, "has_dask", lambda: True)
    monkeypatch.setattr(xr, "open_mfdataset", fake_mfdataset)
    ds = open_oisst(psl_files[:2], lat=slice(0, 3), time_chunk=10)
    assert calls["chunks"] == {"time": 10} and calls["combine"] == "by_coords"
    assert ds["sst"].shape == (730, 3, 48)


def test_missing_and_corrupt_oisst_files_name_the_file(psl_files, tmp_path):
    missing = tmp_path / "sst.day.mean.1999.nc"
    with pytest.raises(SSTDataError, match=r"sst\.day\.mean\.1999\.nc does not exist.*fetch"):
        open_oisst([psl_files[0], missing])
    bad = tmp_path / "sst.day.mean.2000.nc"
    bad.write_bytes(b"CDF\x01 not really netCDF" * 10)
    with pytest.raises(SSTDataError, match=r"sst\.day\.mean\.2000\.nc could not be read as "
                                           r"netCDF.*delete it"):
        open_oisst([bad])
    wrong = tmp_path / "other.nc"
    xr.Dataset({"temp": ("x", np.arange(3.0))}).to_netcdf(wrong)
    with pytest.raises(SSTDataError, match="no `sst` variable"):
        open_oisst([wrong])


def test_prepare_oisst_end_to_end(psl_files, tmp_path):
    # two training years: |x1 - x2| / 2 is below the default min_std at a few random points
    out = prepare_sst_dataset("oisst", tmp_path / "sst.nc", inputs=psl_files, box=6, boxes=None,
                              train_years="2001-2002", val_years=2003, test_years=2005,
                              min_std=1e-6)
    data = load_sst_dataset(out)
    kept = [i for i in range(32) if i not in (0, 10)]
    assert data.box_ids.tolist() == kept and data.step == "day"
    assert data.sst.shape == (30, 365 * 4, 6, 6)
    assert {s: int((data.split == s).sum()) for s in ("train", "val", "test")} == \
        {"train": 730, "val": 365, "test": 365}
    assert np.isfinite(data.sst).all()
    b9 = kept.index(9)
    assert data.land[b9].sum() == 1 and (data.sst[b9][:, data.land[b9]] == 0).all()
    # de-standardising gives back the raw degC values at ocean points
    raw = open_oisst(psl_files)["sst"].values[:, 6:12, 6:12]
    back = data.destandardise(data.sst[b9], b9, data.period)
    ocean = ~data.land[b9]
    np.testing.assert_allclose(back[:, ocean], raw[:, ocean], atol=1e-4)
    # one training year gives std 0 at every point in pixel mode: a clear error, not NaN
    with pytest.raises(SSTDataError, match=r"deviation .* is 0 <= min_std.*std_mode='box'"):
        prepare_sst_dataset("oisst", tmp_path / "bad.nc", inputs=psl_files, box=6, boxes=[1],
                            train_years=2001, val_years=2002, test_years=2003)
    assert not (tmp_path / "bad.nc").exists() and list(tmp_path.glob(".bad.nc*")) == []
    with pytest.raises(SSTDataError, match=r"\{'test': \[2004\]\}"):
        prepare_sst_dataset("oisst", tmp_path / "x.nc", inputs=psl_files, box=6,
                            train_years="2001-2002", val_years=2003, test_years=2004)
    # a leap test year needs a leap year among the training years (day of year 366)
    leap = write_psl_year(tmp_path / "sst.day.mean.2004.nc", 2004)
    with pytest.raises(SSTDataError, match="day of year 366 .31 December of leap years"):
        prepare_sst_dataset("oisst", tmp_path / "x.nc", inputs=[*psl_files[:3], leap], box=6,
                            boxes=[1], train_years="2001-2002", val_years=2003, test_years=2004)


# ------------------------------------------------------------------------------------------
# prepared file: errors
# ------------------------------------------------------------------------------------------

def test_load_errors_name_the_file_and_the_fix(ostia_ds, tmp_path):
    with pytest.raises(SSTDataError, match=r"nope\.nc does not exist.*data_sst"):
        load_sst_dataset(tmp_path / "nope.nc")
    corrupt = tmp_path / "corrupt.nc"
    corrupt.write_bytes(ostia_ds.path.read_bytes()[:5000])
    with pytest.raises(SSTDataError, match=r"corrupt\.nc .*(could not be read|truncated)"):
        load_sst_dataset(corrupt)
    with xr.open_dataset(ostia_ds.path) as ds:
        good = ds.load()
    nan = good.copy(deep=True)
    nan["sst"].values[2, 5, 3, 3] = np.nan
    nan.to_netcdf(tmp_path / "nan.nc")
    box = int(good["box"].values[2])
    with pytest.raises(SSTDataError, match=rf"nan\.nc holds 1 NaN.*\[{box}\].*delete it"):
        load_sst_dataset(tmp_path / "nan.nc")
    empty = good.copy(deep=True)
    empty["split"].values[empty["split"].values == "val"] = "train"
    empty.to_netcdf(tmp_path / "empty.nc")
    with pytest.raises(SSTDataError, match=r"empty\.nc has no time steps in the val split"):
        load_sst_dataset(tmp_path / "empty.nc")
    foreign = tmp_path / "foreign.nc"
    xr.Dataset({"sst": ("t", np.zeros(3))}).to_netcdf(foreign)
    with pytest.raises(SSTDataError, match="not written by prepare_sst_dataset"):
        load_sst_dataset(foreign)


# ------------------------------------------------------------------------------------------
# offline OSTIA field
# ------------------------------------------------------------------------------------------

def test_ostia_offline_boxes_have_no_nan(ostia_ds):
    d = ostia_ds
    assert d.step == "month" and d.attrs["std_mode"] == "box"
    assert d.sst.shape == (13, 54, 16, 16) and np.isfinite(d.sst).all()
    assert d.summary()["steps_per_split"] == {"train": 33, "val": 12, "test": 9}
    assert (d.sst[:, :, d.land[0]][0] == 0).all()
    # back to Kelvin at ocean points
    raw = open_ostia()
    b = 3
    i0 = int(np.flatnonzero(raw["lon"].values == d.lon[b, 0])[0])
    k = raw.isel(lat=slice(0, 16), lon=slice(i0, i0 + 16)).values
    back = d.destandardise(d.sst[b], b, d.period)
    ocean = ~d.land[b]
    np.testing.assert_allclose(back[:, ocean], k[:, ocean], atol=1e-3)
    assert 285 < back[:, ocean].min() and back[:, ocean].max() < 310


def test_ostia_pixel_std_is_refused_with_a_hint(tmp_path):
    with pytest.raises(SSTDataError, match="std_mode='box'"):
        prepare_sst_dataset("ostia", tmp_path / "o.nc", std_mode="pixel")


# ------------------------------------------------------------------------------------------
# training pairs and forecast windows
# ------------------------------------------------------------------------------------------

def _index_dataset(split_years: dict[str, list[int]], step="month") -> SSTDataset:
    """Monthly fields whose value is their time index, for checking pairs and windows."""
    times = pd.date_range("2000-01-01", "2004-12-01", freq="MS")
    keep = np.isin(times.year, sum(split_years.values(), []))
    times = times[keep]
    label = np.array(["train" if y in split_years["train"] else "val" if y in split_years["val"]
                      else "test" for y in times.year])
    T = len(times)
    field = np.broadcast_to(np.arange(T, dtype=np.float32)[None, :, None, None], (2, T, 3, 3))
    return SSTDataset(path=Path("synthetic.nc"), sst=field.copy(),
                      land=np.zeros((2, 3, 3), bool), time=times.values,
                      year=times.year.values, period=times.month.values - 1, split=label,
                      box_ids=np.array([5, 7]), lat=np.zeros((2, 3)), lon=np.zeros((2, 3)),
                      clim_mean=np.zeros((2, 12, 3, 3)), clim_std=np.ones((2, 12, 3, 3)),
                      step=step)


def test_pairs_stay_inside_the_training_split_and_never_cross_gaps():
    # train 2000 and 2002 around a validation year: Dec 2000 -> Jan 2002 is no pair
    data = _index_dataset({"train": [2000, 2002], "val": [2001], "test": [2003, 2004]})
    pairs = SSTPairs(data, cond="season")
    assert pairs.data_shape == (1, 3, 3) and pairs.n_cond == 12 and pairs.n_pairs == 2 * 22
    g = torch.Generator().manual_seed(0)
    x0, x1, cond = pairs.sample_batch(4000, g)
    assert x0.shape == x1.shape == (4000, 1, 3, 3) and cond.dtype == torch.long
    k0, k1 = x0[:, 0, 0, 0].long(), x1[:, 0, 0, 0].long()
    assert (k1 - k0 == 1).all()
    assert set(data.split[k0.numpy()]) == set(data.split[k1.numpy()]) == {"train"}
    assert len(set(k1.tolist())) == 22 and 12 not in set(k1.tolist())  # Jan 2002 never a target
    assert (cond == torch.as_tensor(data.period)[k1]).all()  # season label = month of x1
    # same generator seed, same batch; lead labels cover 0..horizon-1
    lead = SSTPairs(data, cond="lead", horizon=7)
    a = lead.sample_batch(64, torch.Generator().manual_seed(3))
    b = lead.sample_batch(64, torch.Generator().manual_seed(3))
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert lead.n_cond == 7 and set(lead.sample_batch(2000, g)[2].tolist()) == set(range(7))


def test_forecast_windows_hold_context_and_the_next_h_steps():
    data = _index_dataset({"train": [2000, 2001], "val": [2002], "test": [2003, 2004]})
    w = forecast_windows(data, "test", horizon=7)
    test_idx = data.split_index("test")
    assert len(w) == 2 * (24 - 7) and w.truth.shape == (len(w), 7, 1, 3, 3)
    np.testing.assert_array_equal(w.truth[:, :, 0, 0, 0] - w.context[:, None, 0, 0, 0],
                                  np.tile(np.arange(1, 8), (len(w), 1)))
    assert w.context[:, 0, 0, 0].min() == test_idx[0]
    assert w.truth.max() == test_idx[-1]
    np.testing.assert_array_equal(w.cond, np.tile(np.arange(7), (len(w), 1)))
    seasonal = forecast_windows(data, "test", horizon=3, cond="season", stride=5)
    np.testing.assert_array_equal(seasonal.cond, data.period[seasonal.start[:, None]
                                                             + np.arange(1, 4)])
    batches = list(w.batches(10))
    assert sum(len(b.context) for b in batches) == len(w)
    assert torch.equal(batches[1].truth, torch.from_numpy(w.truth[10:20]))
    with pytest.raises(SSTDataError, match="too short for a 30-step"):
        forecast_windows(data, "test", horizon=30)


def test_ostia_pairs_and_windows(ostia_ds):
    pairs = SSTPairs(ostia_ds, horizon=7)
    assert pairs.data_shape == (1, 16, 16) and pairs.n_pairs == 13 * 32
    x0, x1, cond = pairs.sample_batch(8, torch.Generator().manual_seed(0))
    assert x0.dtype == torch.float32 and cond.shape == (8,)
    w = forecast_windows(ostia_ds, "test", horizon=7)
    assert len(w) == 13 * 2 and np.isfinite(w.truth).all()


# ------------------------------------------------------------------------------------------
# OISST download through a loopback server
# ------------------------------------------------------------------------------------------

SMALL_LAT = np.array([-1.0, 0.0, 1.0, 2.0], dtype=np.float32)
SMALL_LON = np.arange(8, dtype=np.float32) + 0.5


def test_fetch_oisst_retries_resumes_and_records_a_manifest(tmp_path):
    src = write_psl_year(tmp_path / "src.nc", 2001, SMALL_LAT, SMALL_LON)
    body = src.read_bytes()
    dest = tmp_path / "data"
    with serve({"/Datasets/oisst/sst.day.mean.2001.nc": body}, drop_first=True) as (url, log):
        paths = fetch_oisst_years([2001], dest, base_url=f"{url}/Datasets/oisst", allow_http=True, backoff=0.01)
    assert paths == [dest / "sst.day.mean.2001.nc"] and paths[0].read_bytes() == body
    assert log[0][1] is None and log[1][1] == f"bytes={len(body) // 2}-" and len(log) == 2
    manifest = json.loads((dest / "oisst_manifest.json").read_text())
    entry = manifest["sst.day.mean.2001.nc"]
    assert entry["sha256"] == hashlib.sha256(body).hexdigest() and entry["days"] == 365
    # verified file reused with no network at all
    again = fetch_oisst_years([2001], dest, base_url="https://nonexistent.invalid/x")
    assert again == paths
    # a file that later changes on disk no longer matches its pinned sha256
    paths[0].write_bytes(body[:-10] + b"0123456789")
    with serve({"/Datasets/oisst/sst.day.mean.2001.nc": b"changed upstream"}) as (url, _):
        with pytest.raises(DownloadError, match=r"expected \d+.*pinned to sha256.*delete that"):
            fetch_oisst_years([2001], dest, base_url=f"{url}/Datasets/oisst", allow_http=True, backoff=0.01)


@pytest.mark.parametrize("kind", ["short", "not_netcdf"])
def test_fetch_oisst_deletes_a_bad_file_with_a_clear_error(tmp_path, kind):
    if kind == "short":
        body = write_psl_year(tmp_path / "src.nc", 2001, SMALL_LAT, SMALL_LON,
                              n_days=300).read_bytes()
        expect = r"holds 300 days, expected 365"
    else:
        body = b"<html>maintenance</html>"
        expect = r"could not be read as netCDF"
    dest = tmp_path / "data"
    with serve({"/Datasets/oisst/sst.day.mean.2001.nc": body}) as (url, _):
        with pytest.raises(SSTDataError, match=expect) as err:
            fetch_oisst_years([2001], dest, base_url=f"{url}/Datasets/oisst", allow_http=True)
    assert "sst.day.mean.2001.nc" in str(err.value) and "was deleted" in str(err.value)
    assert not (dest / "sst.day.mean.2001.nc").exists()
    assert not (dest / "oisst_manifest.json").exists()


def test_oisst_url_and_days():
    assert sst.oisst_url(2020) == ("https://downloads.psl.noaa.gov/Datasets/"
                                   "noaa.oisst.v2.highres/sst.day.mean.2020.nc")
    assert [sst.oisst_expected_days(y) for y in (1981, 2019, 2020, 2100)] == [122, 365, 366, 365]
