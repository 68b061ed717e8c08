"""MD data layer: structure, dihedrals, dataset files, splits, training pairs, simulation, mdshare."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import mdtraj as md
import numpy as np
import pytest
import torch

from idff.data.download import DownloadError
from idff.data.md import (
    MDSHARE_SOURCE,
    STRUCTURE_PDB,
    MDDataError,
    MDDataset,
    MDPairs,
    backbone_dihedrals_deg,
    chunk_trajectories,
    dihedral_deg,
    fetch_mdshare,
    load_md_dataset,
    save_md_dataset,
    simulate_alanine_dipeptide,
    split_trajectories,
)

# --- structure and dihedrals -------------------------------------------------------------------


def _atom(top: md.Topology, res: str, name: str) -> int:
    return next(a.index for a in top.atoms if a.residue.name == res and a.name == name)


def test_shipped_structure_loads_and_parameterises():
    import openmm.app as app

    pdb = app.PDBFile(str(STRUCTURE_PDB))
    assert pdb.topology.getNumAtoms() == 22
    assert [r.name for r in pdb.topology.residues()] == ["ACE", "ALA", "NME"]
    for files in (("amber99sbildn.xml",), ("amber99sbildn.xml", "amber99_obc.xml")):
        system = app.ForceField(*files).createSystem(pdb.topology, nonbondedMethod=app.NoCutoff,
                                                     constraints=app.HBonds)
        assert system.getNumParticles() == 22
    t = md.load(str(STRUCTURE_PDB))
    top = t.topology
    # L-alanine: improper C-N-CA-CB about -120 degrees (as in natural proteins)
    chir = dihedral_deg(t.xyz, [_atom(top, "ALA", n) for n in ("C", "N", "CA", "CB")])[0]
    assert -140 < chir < -100


def test_hand_geometry_dihedral_60_degrees():
    c, s = np.cos(np.radians(60)), np.sin(np.radians(60))
    xyz = np.array([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [c, s, 1.0]]])
    ours = dihedral_deg(xyz, [0, 1, 2, 3])
    ref = np.degrees(md.compute_dihedrals(md.Trajectory(xyz, None), [[0, 1, 2, 3]]))
    np.testing.assert_allclose(ours, [60.0], atol=1e-9)
    np.testing.assert_allclose(ref[:, 0], [60.0], atol=1e-4)
    mirrored = xyz * np.array([1.0, -1.0, 1.0])
    np.testing.assert_allclose(dihedral_deg(mirrored, [0, 1, 2, 3]), [-60.0], atol=1e-9)


def test_backbone_dihedrals_match_named_atoms_on_shipped_structure():
    t = md.load(str(STRUCTURE_PDB))
    top = t.topology
    phi_atoms = [_atom(top, "ACE", "C"), _atom(top, "ALA", "N"), _atom(top, "ALA", "CA"),
                 _atom(top, "ALA", "C")]
    psi_atoms = [_atom(top, "ALA", "N"), _atom(top, "ALA", "CA"), _atom(top, "ALA", "C"),
                 _atom(top, "NME", "N")]
    got = backbone_dihedrals_deg(t)
    assert got.shape == (1, 2) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], [dihedral_deg(t.xyz, phi_atoms)[0],
                                        dihedral_deg(t.xyz, psi_atoms)[0]], atol=1e-3)
    # the minimised structure sits in the extended C5 / beta basin (values recorded when built)
    np.testing.assert_allclose(got[0], [-147.03, 159.08], atol=0.05)


# --- dataset files ---------------------------------------------------------------------------


def _toy(n_traj: int = 3, n: int = 50, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-180, 180, size=(n, 2)).astype(np.float32) for _ in range(n_traj)]


def test_save_load_roundtrip(tmp_path):
    trajs = _toy()
    p = save_md_dataset(tmp_path / "d.npz", trajs, frame_ps=2.0, source="openmm-vacuum",
                        meta={"seeds": [1, 2, 3]})
    ds = load_md_dataset(p)
    assert ds.source == "openmm-vacuum" and ds.frame_ps == 2.0 and ds.meta["seeds"] == [1, 2, 3]
    assert ds.n_frames == [50, 50, 50]
    for a, b in zip(trajs, ds.trajectories, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def _write_raw(path: Path, meta: str | None = '{"source": "x", "frame_ps": 1.0}', **arrays):
    with open(path, "wb") as f:
        extra = {"meta": np.array(meta)} if meta is not None else {}
        np.savez_compressed(f, **extra, **arrays)
    return path


@pytest.mark.parametrize("case, match", [
    ("missing", "does not exist"),
    ("truncated", "truncated"),
    ("garbage", "truncated"),
    ("nan", "NaN"),
    ("shape", "shape"),
    ("empty", "no trajectories"),
    ("one_frame", "at least 2"),
    ("range", "outside"),
    ("no_meta", "meta"),
])
def test_bad_dataset_files_raise_naming_the_file(tmp_path, case, match):
    p = tmp_path / f"{case}.npz"
    good = np.zeros((10, 2), np.float32)
    if case == "truncated":
        save_md_dataset(p, _toy(2, 2000), 1.0, "openmm-vacuum")
        blob = p.read_bytes()
        p.write_bytes(blob[: len(blob) // 2])
    elif case == "garbage":
        p.write_bytes(b"this is not an npz file at all")
    elif case == "nan":
        bad = good.copy()
        bad[3, 1] = np.nan
        _write_raw(p, traj_000=good, traj_001=bad)
    elif case == "shape":
        _write_raw(p, traj_000=np.zeros((10, 3), np.float32))
    elif case == "empty":
        _write_raw(p)
    elif case == "one_frame":
        _write_raw(p, traj_000=np.zeros((1, 2), np.float32))
    elif case == "range":
        _write_raw(p, traj_000=good + 200.0)
    elif case == "no_meta":
        _write_raw(p, meta=None, traj_000=good)
    with pytest.raises(MDDataError, match=match) as exc:
        load_md_dataset(p)
    assert str(p) in str(exc.value)


# --- splits ---------------------------------------------------------------------------------


def test_split_gives_disjoint_trajectories():
    ds = MDDataset(_toy(7), 1.0, "openmm-vacuum")
    for seed in (None, 3):
        s = split_trajectories(ds, 4, 1, 2, seed=seed)
        assert [len(s[k]) for k in ("train", "val", "test")] == [4, 1, 2]
        allidx = s["train"] + s["val"] + s["test"]
        assert len(set(allidx)) == 7 and set(allidx) == set(range(7))
    assert split_trajectories(5, 2, 1, 1) == {"train": [0, 1], "val": [2], "test": [3]}
    with pytest.raises(ValueError, match="needs 4 distinct trajectories but the data set has 3"):
        split_trajectories(3, 2, 1, 1)
    with pytest.raises(ValueError, match="train >= 1"):
        split_trajectories(3, 0, 1, 1)


def test_chunk_trajectories():
    t = np.arange(23 * 2, dtype=np.float32).reshape(23, 2)
    chunks = chunk_trajectories([t, t[:9]], chunk_len=5, gap=1)
    # long: starts 0, 6, 12, 18 ; short: starts 0
    assert len(chunks) == 5 and all(c.shape == (5, 2) for c in chunks)
    np.testing.assert_array_equal(chunks[1], t[6:11])
    starts = [c[0, 0] for c in chunks[:4]]
    assert starts == [0, 12, 24, 36]  # non-overlapping with one dropped frame between
    with pytest.raises(ValueError, match="no trajectory has 50 frames"):
        chunk_trajectories([t], 50)


# --- training pairs -----------------------------------------------------------------------------


def test_pairs_nearest_image_across_seam():
    traj = np.array([[179.0, 0.0], [-179.0, 10.0], [-170.0, 20.0]], np.float32)
    p = MDPairs([traj, traj], n_cond=3)
    assert p.data_shape == (2,) and p.n_pairs == 4
    x0, x1, cond = p.sample_batch(64, torch.Generator().manual_seed(0))
    assert x0.shape == (64, 2) and x1.shape == (64, 2) and cond.dtype == torch.long
    step = (x1 - x0) * 180.0  # shortest arcs: phi moves +2 or +9, psi +10
    is_k1 = (step[:, 0] - 2.0).abs() < 1e-3
    assert torch.all(is_k1 | ((step[:, 0] - 9.0).abs() < 1e-3)) and 0 < int(is_k1.sum()) < 64
    torch.testing.assert_close(step[:, 1], torch.full((64,), 10.0), atol=1e-3, rtol=0)
    torch.testing.assert_close(cond, torch.where(is_k1, 1, 2))  # cond = frame index k of x1
    p1 = MDPairs([traj], n_cond=2)
    assert p1.sample_batch(16, torch.Generator().manual_seed(0))[2].max() == 1  # clipped
    back = p.from_model(x1)
    assert back.min() >= -180 and back.max() < 180
    np.testing.assert_allclose(p.from_model(p.nearest_image(p.to_model([[179.0, 0.0]]),
                                                           p.to_model([[-179.0, 0.0]]))),
                               [[-179.0, 0.0]], atol=1e-4)


def test_pairs_are_reproducible_and_cover_all_frames():
    trajs = [np.stack([np.arange(n, dtype=np.float32), np.zeros(n, np.float32)], 1) for n in (4, 7)]
    p = MDPairs(trajs, n_cond=100)
    a = p.sample_batch(500, torch.Generator().manual_seed(1))
    b = p.sample_batch(500, torch.Generator().manual_seed(1))
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v)
    x0, x1, cond = a
    k = torch.round(x1[:, 0] * 180).long()  # phi encodes the frame index here
    torch.testing.assert_close(torch.round(x0[:, 0] * 180).long(), k - 1)
    torch.testing.assert_close(cond, k)
    assert set(k.tolist()) == set(range(1, 7))


def test_pairs_lead_time_condition():
    n = 30
    traj = np.stack([np.arange(n, dtype=np.float32), np.zeros(n, np.float32)], 1)
    p = MDPairs([traj], n_cond=3, condition="lead")
    x0, x1, cond = p.sample_batch(300, torch.Generator().manual_seed(2))
    h = torch.round((x1[:, 0] - x0[:, 0]) * 180).long()
    torch.testing.assert_close(cond, h - 1)
    assert set(h.tolist()) == {1, 2, 3}


def test_pairs_sincos_roundtrip_and_errors():
    a = np.array([[-179.5, 179.5], [0.0, 90.0], [-90.0, 45.0]], np.float32)
    p = MDPairs([a], n_cond=1, representation="sincos")
    x = p.to_model(a)
    assert p.data_shape == (4,) and x.shape == (3, 4)
    np.testing.assert_allclose(p.from_model(x), a, atol=1e-4)
    np.testing.assert_allclose(p.from_model(p.wrap_model(3.0 * x)), a, atol=1e-4)
    with pytest.raises(ValueError, match="representation"):
        MDPairs([a], 1, representation="degrees")
    with pytest.raises(ValueError, match="more than 3 frames"):
        MDPairs([a], 3, condition="lead")


# --- simulation ---------------------------------------------------------------------------------


def test_tiny_simulation_is_bit_identical_and_sane(tmp_path):
    kw = dict(n_trajectories=2, ns_per_trajectory=0.02, seeds=[11, 12], progress=False)
    p1 = simulate_alanine_dipeptide(tmp_path / "a", **kw)
    p2 = simulate_alanine_dipeptide(tmp_path / "b", **kw)
    d1, d2 = load_md_dataset(p1), load_md_dataset(p2)
    assert d1.source == "openmm-vacuum" and d1.frame_ps == 1.0 and d1.n_frames == [20, 20]
    assert d1.meta["seeds"] == [11, 12] and d1.meta["ns_per_day_mean"] > 0
    for a, b in zip(d1.trajectories, d2.trajectories, strict=True):
        np.testing.assert_array_equal(a, b)  # bit-identical
        assert a.min() >= -180.0 and a.max() < 180.0
    assert not np.array_equal(d1.trajectories[0], d1.trajectories[1])  # seeds differ
    for i in range(2):
        assert (tmp_path / "a" / f"traj_{i:03d}.xtc").read_bytes() == \
            (tmp_path / "b" / f"traj_{i:03d}.xtc").read_bytes()
    # the raw trajectory reproduces the stored angles up to xtc's 0.001 nm precision
    raw = md.load(str(tmp_path / "a" / "traj_000.xtc"), top=str(tmp_path / "a" / "topology.pdb"))
    diff = (backbone_dihedrals_deg(raw) - d1.trajectories[0] + 180.0) % 360.0 - 180.0
    assert raw.n_frames == 20 and np.abs(diff).max() < 1.0
    # 1 ps apart at 300 K: consecutive frames move, but by far less than a full turn
    step = (np.diff(d1.trajectories[0], axis=0) + 180.0) % 360.0 - 180.0
    assert 0.5 < np.abs(step).mean() < 60.0


def test_simulation_rejects_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="seed 0"):
        simulate_alanine_dipeptide(tmp_path, 1, 0.01, [0], progress=False)
    with pytest.raises(ValueError, match="2 trajectories need 2 seeds"):
        simulate_alanine_dipeptide(tmp_path, 2, 0.01, [1], progress=False)
    with pytest.raises(ValueError, match="solvent"):
        simulate_alanine_dipeptide(tmp_path, 1, 0.01, [1], solvent="tip3p", progress=False)
    with pytest.raises(ValueError, match="platform 'NoSuchGPU' is not available"):
        simulate_alanine_dipeptide(tmp_path, 1, 0.01, [1], platform="NoSuchGPU", progress=False)
    with pytest.raises(ValueError, match="whole number"):
        simulate_alanine_dipeptide(tmp_path, 1, 0.01, [1], frame_ps=0.003, progress=False)


# --- mdshare download (loopback server) -----------------------------------------------------------


@pytest.fixture()
def loopback(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_mdshare_converts_radians(tmp_path, loopback):
    root, base = loopback
    rng = np.random.default_rng(0)
    arrs = [rng.uniform(-np.pi, np.pi, size=(40, 2)).astype(np.float32) for _ in range(3)]
    arrs[0][0] = [np.pi, -np.pi]
    src = root / "ala2.npz"
    np.savez(src, **{f"arr_{i}": a for i, a in enumerate(arrs)})
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    out = fetch_mdshare(tmp_path / "data", url=f"{base}/ala2.npz", md5=md5,
                        size=src.stat().st_size, allow_http=True, timeout=5)
    ds = load_md_dataset(out)
    assert ds.source == MDSHARE_SOURCE and ds.meta["input_units"] == "radians"
    assert len(ds.trajectories) == 3 and ds.frame_ps == 1.0
    np.testing.assert_allclose(ds.trajectories[1], np.degrees(arrs[1]), atol=1e-3)
    np.testing.assert_allclose(ds.trajectories[0][0], [-180.0, -180.0], atol=1e-3)  # +-pi -> -180
    assert all(t.min() >= -180.0 and t.max() < 180.0 for t in ds.trajectories)
    assert (tmp_path / "data" / "ala2.npz").is_file()  # raw file kept


def test_fetch_mdshare_rejects_wrong_md5_and_plain_http(tmp_path, loopback):
    root, base = loopback
    np.savez(root / "ala2.npz", arr_0=np.zeros((5, 2), np.float32))
    with pytest.raises(DownloadError, match="md5"):
        fetch_mdshare(tmp_path / "d", url=f"{base}/ala2.npz", md5="0" * 32, size=None,
                      allow_http=True, timeout=5)
    assert not list((tmp_path / "d").glob("*.npz"))
    with pytest.raises(DownloadError, match="only https"):
        fetch_mdshare(tmp_path / "d", url=f"{base}/ala2.npz", md5="0" * 32)


def test_fetch_mdshare_keeps_degrees(tmp_path, loopback):
    root, base = loopback
    deg = np.array([[-150.0, 160.0], [-60.0, -45.0], [60.0, 45.0]], np.float32)
    np.savez(root / "deg.npz", arr_0=deg)
    md5 = hashlib.md5((root / "deg.npz").read_bytes()).hexdigest()
    ds = load_md_dataset(fetch_mdshare(tmp_path, url=f"{base}/deg.npz", md5=md5, size=None,
                                       allow_http=True, timeout=5))
    assert ds.meta["input_units"] == "degrees"
    np.testing.assert_allclose(ds.trajectories[0], deg)
