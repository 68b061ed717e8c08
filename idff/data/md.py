"""Alanine-dipeptide backbone dihedrals: simulate (OpenMM), download (mdshare), load, split, pair.

Dataset file layout (one compressed ``.npz``, read with ``allow_pickle=False``):

- ``traj_000``, ``traj_001``, ...: float32 ``[n_frames, 2]``, (phi, psi) in degrees, written in
  [-180, 180) (files from elsewhere may hold +180; loading accepts [-180, 180]);
- ``meta``: a JSON string with at least ``source`` and ``frame_ps`` (plus provenance: seeds,
  ns per trajectory, measured ns/day, force field, licence for downloaded data).

Sources are labelled honestly: ``openmm-vacuum`` and ``openmm-obc-implicit`` are this
project's own simulations (amber99sbildn, vacuum or OBC implicit solvent); ``mdshare-explicit-
water`` is the public 3 x 250 ns TIP3P benchmark. The simulated data are not the explicit-water
distribution (e.g. alpha_L is essentially unvisited without explicit water).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from ..io import atomic_path, write_text_atomic
from ..metrics.angles import wrap_deg
from .download import download, require_file

STRUCTURE_PDB = Path(__file__).with_name("alanine_dipeptide.pdb")
SOURCES = {"vacuum": "openmm-vacuum", "obc": "openmm-obc-implicit"}
FORCEFIELD_FILES = {"vacuum": ("amber99sbildn.xml",), "obc": ("amber99sbildn.xml", "amber99_obc.xml")}
ANGLE_NAMES = ("phi", "psi")

# The public explicit-water set (shared/docs/notes/data-sources-verified.md, section 5a). The
# mdshare catalogue lists the host with http://; https on the same host is used here so that
# the download helper's https-only rule holds (public links to https://ftp.imp.fu-berlin.de/
# exist, but this could not be checked from the build machine, which has no internet). If the
# host does not answer on https, pass url=MDSHARE_URL_HTTP, allow_http=True (the md5 and size
# still protect the content).
MDSHARE_FILE = "alanine-dipeptide-3x250ns-backbone-dihedrals.npz"
MDSHARE_URL = f"https://ftp.imp.fu-berlin.de/pub/cmb-data/{MDSHARE_FILE}"
MDSHARE_URL_HTTP = f"http://ftp.imp.fu-berlin.de/pub/cmb-data/{MDSHARE_FILE}"
MDSHARE_MD5 = "3fa7c72ba512213a3860f9691602cdc7"
MDSHARE_SIZE = 6_000_544
MDSHARE_SOURCE = "mdshare-explicit-water"

_TRAJ_KEY = re.compile(r"^traj_(\d+)$")


class MDDataError(ValueError):
    """An MD data file is missing, corrupt or holds values that are not dihedral angles."""


@dataclass
class MDDataset:
    """Backbone-dihedral trajectories: each ``[n_frames, 2]`` (phi, psi) in degrees."""

    trajectories: list[np.ndarray]
    frame_ps: float
    source: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> list[int]:
        return [int(t.shape[0]) for t in self.trajectories]


# --- dihedrals ---------------------------------------------------------------------------


def backbone_dihedrals_deg(traj: Any) -> np.ndarray:
    """(phi, psi) of a one-residue peptide (alanine dipeptide) with mdtraj, ``[T, 2]`` degrees."""
    import mdtraj as md  # mdtraj: optional, only reading or writing trajectories needs it

    _, phi = md.compute_phi(traj)
    _, psi = md.compute_psi(traj)
    if phi.shape[1] != 1 or psi.shape[1] != 1:
        raise MDDataError(f"expected one phi and one psi (alanine dipeptide), found {phi.shape[1]} "
                          f"phi and {psi.shape[1]} psi dihedrals in the topology")
    return wrap_deg_f32(np.degrees(np.concatenate([phi, psi], axis=1).astype(np.float64)))


def wrap_deg_f32(a: np.ndarray) -> np.ndarray:
    """float32 angles in [-180, 180): wrapping in float64 can round up to 180.0 on the cast."""
    out = wrap_deg(a).astype(np.float32)
    out[out >= 180.0] = -180.0
    return out


# --- writing and loading -------------------------------------------------------------------


def _validate(trajs: Sequence[np.ndarray], where: str) -> list[np.ndarray]:
    if len(trajs) == 0:
        raise MDDataError(f"{where} holds no trajectories; regenerate it (rule data_md)")
    out = []
    for i, t in enumerate(trajs):
        t = np.asarray(t)
        name = f"{where}: trajectory {i}"
        if t.ndim != 2 or t.shape[1] != 2:
            raise MDDataError(f"{name} has shape {t.shape}, expected [n_frames, 2] (phi, psi)")
        if t.shape[0] < 2:
            raise MDDataError(f"{name} has {t.shape[0]} frame(s); at least 2 are needed for pairs")
        if not np.isfinite(t).all():
            raise MDDataError(f"{name} contains NaN or inf values; the file is corrupt, regenerate it")
        if np.abs(t).max() > 180.0 + 1e-3:
            raise MDDataError(f"{name} has angles up to {np.abs(t).max():.4g}, outside [-180, 180] "
                              f"degrees (radians or unwrapped angles?); convert before saving")
        out.append(t.astype(np.float32))
    return out


def save_md_dataset(path: str | os.PathLike, trajectories: Sequence[np.ndarray], frame_ps: float,
                    source: str, meta: dict[str, Any] | None = None) -> Path:
    """Validate and write a dataset file atomically (see the module docstring for the layout)."""
    path = Path(path)
    trajs = _validate(trajectories, str(path))
    if not frame_ps > 0:
        raise MDDataError(f"frame_ps must be > 0, got {frame_ps}")
    info = {**(meta or {}), "source": source, "frame_ps": float(frame_ps),
            "n_trajectories": len(trajs), "n_frames": [int(t.shape[0]) for t in trajs],
            "angles": list(ANGLE_NAMES), "units": "degrees"}
    arrays = {f"traj_{i:03d}": t for i, t in enumerate(trajs)}
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, meta=np.array(json.dumps(info, default=str)), **arrays)
    return path


def load_md_dataset(path: str | os.PathLike) -> MDDataset:
    """Read a dataset file; every defect raises ``MDDataError`` naming the file."""
    path = require_file(path, MDDataError, "MD dataset",
                        "make it with the data_md rule (simulate_alanine_dipeptide or fetch_mdshare)")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = sorted((int(m.group(1)), k) for k in z.files if (m := _TRAJ_KEY.match(k)))
            trajs = [np.array(z[k]) for _, k in keys]
            meta = json.loads(str(z["meta"])) if "meta" in z.files else None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise MDDataError(f"MD dataset {path} could not be read ({type(exc).__name__}: {exc}); it "
                          f"is truncated or not an idff MD .npz file: delete it and regenerate it"
                          ) from exc
    if meta is None or "frame_ps" not in meta or "source" not in meta:
        raise MDDataError(f"MD dataset {path} has no 'meta' entry with source and frame_ps; it was "
                          f"not written by idff.data.md.save_md_dataset: regenerate it")
    trajs = _validate(trajs, str(path))
    if not float(meta["frame_ps"]) > 0:
        raise MDDataError(f"MD dataset {path}: frame_ps {meta['frame_ps']} is not positive")
    return MDDataset(trajs, float(meta["frame_ps"]), str(meta["source"]), meta)


# --- splits ---------------------------------------------------------------------------------


def split_trajectories(ds: MDDataset | int, train: int, val: int, test: int,
                       seed: int | None = None) -> dict[str, list[int]]:
    """Assign whole trajectories to train / val / test (counts); no trajectory is in two splits.

    Trajectories are taken in file order, or in a permutation drawn from ``seed``. Raises
    ``ValueError`` when the counts need more trajectories than there are.
    """
    n = ds if isinstance(ds, int) else len(ds.trajectories)
    if train < 1 or val < 0 or test < 0:
        raise ValueError(f"split counts need train >= 1, val >= 0, test >= 0; got {train}/{val}/{test}")
    if train + val + test > n:
        raise ValueError(f"split {train}/{val}/{test} needs {train + val + test} distinct "
                         f"trajectories but the data set has {n}; simulate more trajectories or "
                         f"cut long ones into segments with chunk_trajectories")
    order = list(range(n)) if seed is None else np.random.default_rng(seed).permutation(n).tolist()
    return {"train": order[:train], "val": order[train:train + val],
            "test": order[train + val:train + val + test]}


def chunk_trajectories(trajs: Sequence[np.ndarray], chunk_len: int, gap: int = 0) -> list[np.ndarray]:
    """Cut each trajectory into non-overlapping segments of ``chunk_len`` frames.

    ``gap`` frames are dropped between segments to weaken their correlation, and the remainder
    at the end is dropped. Use it for data with few long trajectories (mdshare: 3 x 250 ns);
    consecutive segments of one trajectory are not independent, so prefer splitting whole
    trajectories, and split segments so that train and test come from different trajectories
    when there are enough.
    """
    if chunk_len < 2:
        raise ValueError(f"chunk_len must be >= 2 frames, got {chunk_len}")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    out = [t[s:s + chunk_len] for t in trajs
           for s in range(0, t.shape[0] - chunk_len + 1, chunk_len + gap)]
    if not out:
        raise ValueError(f"no trajectory has {chunk_len} frames (longest: "
                         f"{max((t.shape[0] for t in trajs), default=0)}); use a smaller chunk_len")
    return out


# --- simulation ----------------------------------------------------------------------------


def _check_seeds(seeds: Sequence[int], n: int) -> list[int]:
    seeds = [int(s) for s in seeds]
    if len(seeds) != n:
        raise ValueError(f"{n} trajectories need {n} seeds, got {len(seeds)}")
    if len(set(seeds)) != n:
        raise ValueError(f"seeds must be distinct (independent trajectories), got {seeds}")
    if any(not 1 <= s < 2**31 for s in seeds):
        raise ValueError(f"seeds must be in [1, 2**31): OpenMM treats seed 0 as 'pick a random "
                         f"seed', which breaks reproducibility; got {seeds}")
    return seeds


def simulate_alanine_dipeptide(out_dir: str | os.PathLike, n_trajectories: int,
                               ns_per_trajectory: float, seeds: Sequence[int],
                               solvent: Literal["vacuum", "obc"] = "vacuum",
                               frame_ps: float = 1.0, timestep_fs: float = 2.0,
                               temperature_k: float = 300.0, friction_per_ps: float = 1.0,
                               equilibration_ps: float = 10.0, platform: str = "Reference",
                               progress: bool = True, name: str = "dihedrals.npz") -> Path:
    """Simulate independent alanine-dipeptide trajectories and write their dihedrals.

    amber99sbildn (+ amber99_obc for ``solvent="obc"``), NoCutoff, HBonds constraints,
    LangevinMiddleIntegrator; per trajectory: minimise, set velocities from the seed, equilibrate
    ``equilibration_ps``, then record every ``frame_ps``. Writes ``traj_XXX.xtc`` (raw positions,
    mdtraj, 0.001 nm precision) and ``topology.pdb`` into ``out_dir``, and last the dataset
    ``out_dir/name`` (dihedrals by mdtraj from the float32 positions before xtc compression),
    all atomically. With the Reference platform and the shipped structure, equal seeds give
    bit-identical output. ``ns_per_day`` in the metadata times the production part only.
    Returns the dataset path.
    """
    import mdtraj as md  # mdtraj: optional, only reading or writing trajectories needs it
    import openmm as mm  # OpenMM: optional, only the simulation needs it
    import openmm.app as app  # OpenMM: optional, only the simulation needs it
    import openmm.unit as u  # OpenMM: optional, only the simulation needs it

    if solvent not in SOURCES:
        raise ValueError(f"solvent must be one of {sorted(SOURCES)}, got {solvent!r}")
    if n_trajectories < 1 or not ns_per_trajectory > 0:
        raise ValueError(f"need n_trajectories >= 1 and ns_per_trajectory > 0, got "
                         f"{n_trajectories} and {ns_per_trajectory}")
    seeds = _check_seeds(seeds, n_trajectories)
    if not (timestep_fs > 0 and frame_ps > 0):
        raise ValueError(f"timestep_fs and frame_ps must be > 0, got {timestep_fs} and {frame_ps}")
    steps_per_frame = frame_ps * 1000.0 / timestep_fs
    if abs(steps_per_frame - round(steps_per_frame)) > 1e-9 or steps_per_frame < 1:
        raise ValueError(f"frame_ps={frame_ps} must be a positive whole number of {timestep_fs} fs steps")
    steps_per_frame = round(steps_per_frame)
    n_frames = round(ns_per_trajectory * 1000.0 / frame_ps)
    if n_frames < 2:
        raise ValueError(f"{ns_per_trajectory} ns at {frame_ps} ps per frame gives {n_frames} frames; need >= 2")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pdb = app.PDBFile(str(STRUCTURE_PDB))
    ff = app.ForceField(*FORCEFIELD_FILES[solvent])
    system = ff.createSystem(pdb.topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds)
    topology = md.Topology.from_openmm(pdb.topology)
    write_text_atomic(out_dir / "topology.pdb", STRUCTURE_PDB.read_text())
    try:
        plat = mm.Platform.getPlatformByName(platform)
    except mm.OpenMMException as exc:
        have = [mm.Platform.getPlatform(i).getName() for i in range(mm.Platform.getNumPlatforms())]
        raise ValueError(f"OpenMM platform {platform!r} is not available here; available: {have} "
                         f"(Reference is the fastest for 22 atoms)") from exc

    trajs, speeds, raw_files = [], [], []
    bar = tqdm(total=n_trajectories * n_frames, unit="frame", desc=f"ala2 {solvent}",
               disable=not progress, mininterval=1.0)
    try:
        for i, seed in enumerate(seeds):
            integ = mm.LangevinMiddleIntegrator(temperature_k * u.kelvin, friction_per_ps / u.picosecond,
                                                timestep_fs * u.femtoseconds)
            integ.setRandomNumberSeed(seed)
            ctx = mm.Context(system, integ, plat)
            ctx.setPositions(pdb.positions)
            mm.LocalEnergyMinimizer.minimize(ctx)
            ctx.setVelocitiesToTemperature(temperature_k * u.kelvin, seed)
            integ.step(round(equilibration_ps * 1000.0 / timestep_fs))
            t0 = time.perf_counter()
            xyz = _record(ctx, integ, n_frames, steps_per_frame, topology.n_atoms, bar)
            speeds.append(ns_per_trajectory / ((time.perf_counter() - t0) / 86400.0))
            del ctx, integ
            traj = md.Trajectory(xyz, topology)
            trajs.append(backbone_dihedrals_deg(traj))
            raw = out_dir / f"traj_{i:03d}.xtc"
            with atomic_path(raw, suffix=".xtc") as tmp:
                traj.save_xtc(str(tmp))
            raw_files.append(raw.name)
    finally:
        bar.close()

    meta = {
        "solvent": solvent, "forcefield": list(FORCEFIELD_FILES[solvent]), "engine":
        f"openmm {mm.__version__} ({platform})", "integrator": "LangevinMiddleIntegrator",
        "temperature_k": temperature_k, "friction_per_ps": friction_per_ps,
        "timestep_fs": timestep_fs, "constraints": "HBonds", "nonbonded": "NoCutoff",
        "equilibration_ps": equilibration_ps, "seeds": seeds, "ns_per_trajectory": ns_per_trajectory,
        "ns_per_day": [round(s, 1) for s in speeds], "ns_per_day_mean": round(float(np.mean(speeds)), 1),
        "structure": STRUCTURE_PDB.name, "structure_md5": hashlib.md5(STRUCTURE_PDB.read_bytes()).hexdigest(),
        "raw_trajectories": raw_files, "raw_topology": "topology.pdb",
    }
    return save_md_dataset(out_dir / name, trajs, frame_ps, SOURCES[solvent], meta)


def _record(ctx: Any, integ: Any, n_frames: int, steps_per_frame: int, n_atoms: int,
            bar: Any) -> np.ndarray:
    """Positions in nm every ``steps_per_frame`` steps, ``[n_frames, n_atoms, 3]`` float32."""
    import openmm.unit as u  # OpenMM: optional, only the simulation needs it

    xyz = np.empty((n_frames, n_atoms, 3), dtype=np.float32)
    for k in range(n_frames):
        integ.step(steps_per_frame)
        xyz[k] = ctx.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(u.nanometer)
        bar.update(1)
    return xyz


def simulate_parallel(out_dir: str | os.PathLike, n_trajectories: int, ns_per_trajectory: float,
                      seeds: Sequence[int], workers: int = 1, name: str = "dihedrals.npz",
                      **kwargs: Any) -> Path:
    """``simulate_alanine_dipeptide`` with the trajectories spread over ``workers`` processes.

    Each trajectory depends only on its own seed, so the output (dihedrals and raw ``.xtc``
    files) is bit-identical to the serial call; ``workers <= 1`` is the serial call. The
    parts run as fresh ``python -c`` processes (no fork of a process holding torch threads,
    no re-import of the caller's ``__main__``) in ``out_dir/.parts-<name>`` and are merged;
    ``ns_per_day`` lists each trajectory's own speed, ``wall_s`` the whole run. ``kwargs``
    (JSON-serialisable) go to ``simulate_alanine_dipeptide`` (solvent, frame_ps, platform, ...).
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    start = time.perf_counter()
    if workers == 1 or n_trajectories == 1:
        path = simulate_alanine_dipeptide(out_dir, n_trajectories, ns_per_trajectory, seeds,
                                          name=name, **kwargs)
        ds = load_md_dataset(path)
        meta = {**ds.meta, "workers": 1, "wall_s": round(time.perf_counter() - start, 2)}
        return save_md_dataset(path, ds.trajectories, ds.frame_ps, ds.source, meta)
    seeds = _check_seeds(seeds, n_trajectories)
    out_dir = Path(out_dir)
    parts = out_dir / f".parts-{name}"
    shutil.rmtree(parts, ignore_errors=True)
    code = ("import json, sys; from idff.data.md import simulate_alanine_dipeptide as f; "
            "f(**json.loads(sys.argv[1]))")
    root = str(Path(__file__).resolve().parents[2])  # the idff this process runs
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}

    def run(i: int) -> Path:
        args = {**kwargs, "out_dir": str(parts / f"{i:03d}"), "n_trajectories": 1,
                "ns_per_trajectory": ns_per_trajectory, "seeds": [seeds[i]], "name": "part.npz",
                "progress": False}
        proc = subprocess.run([sys.executable, "-c", code, json.dumps(args)], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines() or ["(no error output)"]
            raise MDDataError(f"simulating trajectory {i} (seed {seeds[i]}) failed (exit code "
                              f"{proc.returncode}): {lines[-1]}")
        return parts / f"{i:03d}" / "part.npz"

    with ThreadPoolExecutor(max_workers=min(workers, n_trajectories)) as ex:
        paths = list(ex.map(run, range(n_trajectories)))
    trajs, speeds, raw_files = [], [], []
    for i, p in enumerate(paths):
        part = load_md_dataset(p)
        trajs.append(part.trajectories[0])
        speeds += part.meta["ns_per_day"]
        raw = out_dir / f"traj_{i:03d}.xtc"
        os.replace(p.parent / "traj_000.xtc", raw)
        raw_files.append(raw.name)
    write_text_atomic(out_dir / "topology.pdb", STRUCTURE_PDB.read_text())
    first = load_md_dataset(paths[0])
    meta = {**first.meta, "seeds": seeds, "ns_per_day": speeds,
            "ns_per_day_mean": round(float(np.mean(speeds)), 1), "raw_trajectories": raw_files,
            "workers": workers, "wall_s": round(time.perf_counter() - start, 2)}
    path = save_md_dataset(out_dir / name, trajs, first.frame_ps, first.source, meta)
    shutil.rmtree(parts, ignore_errors=True)
    return path


def dihedral_deg(xyz: np.ndarray, idx: Sequence[int]) -> np.ndarray:
    """IUPAC dihedral of atoms ``idx`` (4 indices) over frames ``xyz [T, n_atoms, 3]``, degrees.

    An independent numpy implementation, used to check mdtraj and the atom selection.
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    p0, p1, p2, p3 = (xyz[:, j] for j in idx)
    b1, b2, b3 = p1 - p0, p2 - p1, p3 - p2
    n1, n2 = np.cross(b1, b2), np.cross(b2, b3)
    y = np.einsum("ij,ij->i", np.cross(n1, n2), b2 / np.linalg.norm(b2, axis=1, keepdims=True))
    return np.degrees(np.arctan2(y, np.einsum("ij,ij->i", n1, n2)))


# --- mdshare (explicit water, needs internet) -----------------------------------------------


def fetch_mdshare(dest_dir: str | os.PathLike, url: str = MDSHARE_URL, md5: str = MDSHARE_MD5,
                  size: int | None = MDSHARE_SIZE, allow_http: bool = False,
                  name: str = "mdshare-ala2-3x250ns.npz", frame_ps: float = 1.0,
                  timeout: float = 60.0) -> Path:
    """Download the 3 x 250 ns explicit-water dihedrals (md5-checked) and convert them.

    The raw file (keys ``arr_0..``, float32 ``[250000, 2]``) is kept in ``dest_dir``; the
    converted dataset ``dest_dir/name`` holds degrees in [-180, 180). Units are detected: if
    every ``|value| <= 2 pi`` the file is in radians (PyEMMA's default), otherwise degrees.
    """
    dest_dir = Path(dest_dir)
    raw = dest_dir / url.rsplit("/", 1)[-1]
    hint = (f"download {MDSHARE_URL} (or {MDSHARE_URL_HTTP}; {MDSHARE_SIZE} bytes, md5 "
            f"{MDSHARE_MD5}) by hand and place it at {raw}, or use the simulated data "
            f"(simulate_alanine_dipeptide), which needs no network")
    download(url, raw, md5=md5, size=size, allow_http=allow_http, manual_hint=hint, timeout=timeout)
    try:
        with np.load(raw, allow_pickle=False) as z:
            keys = sorted((int(m.group(1)), k) for k in z.files if (m := re.match(r"^arr_(\d+)$", k)))
            arrays = [np.asarray(z[k], dtype=np.float64) for _, k in keys]
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise MDDataError(f"{raw} passed its checksum but could not be read as .npz ({exc})") from exc
    if not arrays:
        raise MDDataError(f"{raw} has no arr_0.. entries; expected the mdshare dihedral file")
    if any(not np.isfinite(a).all() for a in arrays):
        raise MDDataError(f"{raw} contains NaN or inf values")
    top = max(float(np.abs(a).max()) for a in arrays)
    radians = top <= 2 * np.pi + 1e-6
    trajs = [wrap_deg_f32(np.degrees(a) if radians else a) for a in arrays]
    meta = {"url": url, "md5": md5, "raw_file": raw.name, "input_units": "radians" if radians else
            "degrees", "licence": "CC BY 4.0", "citation": "Nuske et al., J. Chem. Phys. 146, "
            "094104 (2017); Wehmeyer & Noe, J. Chem. Phys. 148, 241703 (2018)",
            "simulation": "ACEMD, AMBER ff99SB-ILDN, 651 TIP3P waters, PME, 300 K, 2 fs"}
    return save_md_dataset(dest_dir / name, trajs, frame_ps, MDSHARE_SOURCE, meta)


# --- training pairs --------------------------------------------------------------------------


def wrap_unit(x: torch.Tensor) -> torch.Tensor:
    """Wrap model-scale angles (degrees / 180, period 2) into [-1, 1)."""
    return torch.remainder(x + 1.0, 2.0) - 1.0


class MDPairs:
    """Training pairs (x0 = frame k - h, x1 = frame k, cond) for the time-series bridge.

    Representations of the periodic angles (``representation``):

    - ``"wrapped"`` (default, the "unwrapped bridge"): an angle a in degrees becomes a / 180 in
      [-1, 1); x1 is replaced by its periodic image nearest to x0, x0 + wrap(x1 - x0), so the
      bridge follows the shortest arc and never the 358 degree detour across the seam. Model
      outputs are mapped back with ``from_model`` (wrapped to [-180, 180)); before feeding a
      generated frame back as the next x0, wrap it with ``wrap_model``.
    - ``"sincos"``: (cos phi, sin phi, cos psi, sin psi); continuous without images, but the
      network's output is off the unit circle and 4 numbers describe 2 angles.

    Conditioning (``condition``): ``"frame"`` gives cond = min(k, n_cond - 1), the frame index
    of x1 as in the paper (h = 1; for a stationary MD process this label carries no physics,
    it is kept for fidelity); ``"lead"`` draws the lead time h uniformly in 1..n_cond and gives
    cond = h - 1, for k-step-ahead bridges.

    Pairs are drawn uniformly over all valid (trajectory, k), so long trajectories weigh more.
    """

    def __init__(self, trajectories: Sequence[np.ndarray], n_cond: int,
                 representation: Literal["wrapped", "sincos"] = "wrapped",
                 condition: Literal["frame", "lead"] = "frame") -> None:
        if representation not in ("wrapped", "sincos"):
            raise ValueError(f"representation must be 'wrapped' or 'sincos', got {representation!r}")
        if condition not in ("frame", "lead"):
            raise ValueError(f"condition must be 'frame' or 'lead', got {condition!r}")
        if n_cond < 1:
            raise ValueError(f"n_cond must be >= 1, got {n_cond}")
        self.representation, self.condition, self.n_cond = representation, condition, int(n_cond)
        trajs = _validate(trajectories, "MDPairs input")
        self.max_lead = self.n_cond if condition == "lead" else 1
        lengths = np.array([t.shape[0] for t in trajs])
        if (lengths <= self.max_lead).any():
            raise ValueError(f"every trajectory needs more than {self.max_lead} frames for lead "
                             f"times up to {self.max_lead}; shortest has {lengths.min()}")
        self.frames = torch.cat([self.to_model(t) for t in trajs])  # all frames, model space
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self._starts = torch.as_tensor(starts, dtype=torch.long)
        counts = torch.as_tensor(lengths - self.max_lead, dtype=torch.long)  # valid k per traj
        self._cum = torch.cumsum(counts, 0)
        self.n_pairs = int(self._cum[-1])
        self.data_shape: tuple[int, ...] = (2,) if representation == "wrapped" else (4,)

    @classmethod
    def from_dataset(cls, ds: MDDataset, indices: Sequence[int], n_cond: int,
                     **kwargs: Any) -> MDPairs:
        return cls([ds.trajectories[i] for i in indices], n_cond, **kwargs)

    def to_model(self, angles_deg: np.ndarray | torch.Tensor) -> torch.Tensor:
        """[..., 2] degrees -> [..., 2] (degrees / 180) or [..., 4] (cos, sin per angle)."""
        a = torch.as_tensor(np.asarray(angles_deg, dtype=np.float32))
        if a.shape[-1] != 2:
            raise ValueError(f"expected (phi, psi) in the last axis, got shape {tuple(a.shape)}")
        if self.representation == "wrapped":
            return wrap_unit(a / 180.0)
        r = torch.deg2rad(a)
        return torch.stack([r.cos(), r.sin()], dim=-1).flatten(-2)  # cos phi, sin phi, cos psi, sin psi

    def from_model(self, x: torch.Tensor) -> np.ndarray:
        """Model space -> degrees in [-180, 180), ``[..., 2]`` float64."""
        x = x.detach().to("cpu", torch.float64)
        if self.representation == "wrapped":
            return wrap_deg(x.numpy() * 180.0)
        cs = x.reshape(*x.shape[:-1], 2, 2)
        return wrap_deg(np.degrees(torch.atan2(cs[..., 1], cs[..., 0]).numpy()))

    def nearest_image(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """x1 moved to its periodic image nearest to x0 (identity for sin/cos)."""
        if self.representation == "wrapped":
            return x0 + wrap_unit(x1 - x0)
        return x1

    def wrap_model(self, x: torch.Tensor) -> torch.Tensor:
        """Project a generated model-space frame back onto valid states (for autoregression)."""
        if self.representation == "wrapped":
            return wrap_unit(x)
        cs = x.reshape(*x.shape[:-1], 2, 2)
        return (cs / cs.norm(dim=-1, keepdim=True).clamp_min(1e-8)).flatten(-2)

    def sample_batch(self, batch_size: int, generator: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x0 [B, *data_shape], x1 [B, *data_shape], cond LongTensor [B]."""
        j = torch.randint(self.n_pairs, (batch_size,), generator=generator)
        traj = torch.searchsorted(self._cum, j, right=True)
        before = torch.where(traj > 0, self._cum[(traj - 1).clamp_min(0)], torch.zeros_like(j))
        k = j - before + self.max_lead  # frame index of x1 inside its trajectory
        if self.condition == "lead":
            h = torch.randint(1, self.max_lead + 1, (batch_size,), generator=generator)
            cond = h - 1
        else:
            h = torch.ones_like(k)
            cond = k.clamp_max(self.n_cond - 1)
        base = self._starts[traj]
        x0 = self.frames[base + k - h]
        x1 = self.nearest_image(x0, self.frames[base + k])
        return x0, x1, cond.long()
