"""Bad inputs and downloads: each fails at once, naming the file and the cause, before any work.

Covered elsewhere (not repeated here): the loaders' own checks of MD, SST and image files
(test_md_data.py, test_sst_data.py, test_images_data.py), a truncated or foreign resume
checkpoint and a harmless pickled class (test_train.py), download retry, resume, checksum,
https-only and DNS failure (test_download.py, test_sst_data.py, test_images_data.py).
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from loopback import serve

from idff.cli import main as idff_main
from idff.config import eval_spec, load_config, train_spec
from idff.data.download import DownloadError, download
from idff.data.toy import ToyPairs
from idff.errors import ConfigError
from idff.families import get_family
from idff.io import CheckpointError, load_checkpoint, save_checkpoint
from idff.steps import jobs, network
from idff.train import load_trained

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
TINY = {"steps": 4, "batch_size": 32, "ckpt_every": 100, "warmup": 0}


def _no_steps(step, loss):  # on_step hook: training must never get this far
    raise AssertionError(f"training started (step {step}) although its input is bad")


@pytest.fixture(scope="module")
def smoke() -> dict:
    return load_config(ROOT / "config" / "smoke.yaml")


def _train_spec(cfg: dict, method: str = "idff", hidden: int = 16) -> dict:
    spec = train_spec(copy.deepcopy(cfg), "toy", "moons", method, 0)
    spec.update(device="cpu")
    spec["train"].update(TINY)
    spec["model"]["hidden"] = hidden
    spec["data"]["n_train"] = 256
    return spec


def _eval_spec(cfg: dict, variant: str = "idff1", hidden: int = 16, dataset: str = "moons") -> dict:
    spec = eval_spec(copy.deepcopy(cfg), "toy", dataset, variant, "euler", 0)
    spec.update(device="cpu", nfe=[2])
    spec["model"]["hidden"] = hidden
    spec["sweep"]["n_samples"] = 64
    return spec


@pytest.fixture(scope="module")
def ckpt(smoke, tmp_path_factory) -> Path:
    """A tiny trained IDFF checkpoint (toy/moons, hidden 16, 4 steps)."""
    out = tmp_path_factory.mktemp("ckpt") / "idff.pt"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        jobs.run_train(_train_spec(smoke), out, progress=False)
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture
def no_evaluation(monkeypatch):
    """Fail the test if a sweep gets as far as sampling (the input should have stopped it)."""
    def evaluate(*args, **kwargs):
        raise AssertionError("evaluation started although an input is bad")
    monkeypatch.setattr(type(get_family("toy")), "evaluate", evaluate)


def _sweep(capsys, spec: dict, ckpt: Path, out: Path, *extra: str) -> str:
    rc = idff_main(["--no-progress", "sweep", "--spec", json.dumps(spec), "--ckpt", str(ckpt),
                    "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert not out.exists()
    return err


# --- checkpoints given to `idff sweep` -----------------------------------------------------------

@pytest.mark.parametrize("damage", ["half", "empty", "garbage", "zip_without_data"])
def test_truncated_checkpoint_given_to_sweep(damage, smoke, ckpt, tmp_path, capsys, no_evaluation):
    bad = tmp_path / "bad.pt"
    blob = ckpt.read_bytes()
    bad.write_bytes({"half": blob[: len(blob) // 2], "empty": b"", "garbage": os.urandom(4096),
                     "zip_without_data": blob[:200]}[damage])
    err = _sweep(capsys, _eval_spec(smoke), bad, tmp_path / "m.json")
    assert f"idff sweep: error: checkpoint {bad}" in err
    assert "truncated" in err and "rerun training" in err


@pytest.mark.parametrize("case,needle", [
    ("otcfm_variant", "has method={'name': 'idff'"),     # an IDFF network for an OT-CFM row
    ("wider_model", "has model="),                       # config says hidden 32, file has 16
    ("other_dataset", "has dataset='moons' but this job expects '8gaussians'"),
    ("tampered_shapes", "does not fit the model architecture"),
    ("no_meta", "not a checkpoint written by `idff train`"),
])
def test_checkpoint_of_another_method_or_architecture(case, needle, smoke, ckpt, tmp_path, capsys,
                                                      no_evaluation):
    spec, path = _eval_spec(smoke), ckpt
    if case == "otcfm_variant":
        spec = _eval_spec(smoke, "otcfm")
    elif case == "wider_model":
        spec = _eval_spec(smoke, hidden=32)
    elif case == "other_dataset":
        spec = _eval_spec(smoke, dataset="8gaussians")
    else:
        state = load_checkpoint(ckpt)
        if case == "tampered_shapes":
            state["ema"]["net.0.weight"] = torch.zeros(3, 3)
        else:
            state = {"weights": state["ema"]}
        path = save_checkpoint(tmp_path / f"{case}.pt", state)
    err = _sweep(capsys, spec, path, tmp_path / "m.json")
    assert str(path) in err and needle in err, err


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_checkpoint_with_non_finite_weights_is_refused(value, smoke, ckpt, tmp_path, capsys,
                                                       no_evaluation):
    """Bit rot or a diverged run from an older version: every sample would be NaN."""
    state = load_checkpoint(ckpt)
    state["ema"]["net.0.weight"][0, 0] = value
    bad = save_checkpoint(tmp_path / "nan.pt", state)
    err = _sweep(capsys, _eval_spec(smoke), bad, tmp_path / "m.json")
    assert str(bad) in err and "non-finite" in err and "net.0.weight" in err
    with pytest.raises(CheckpointError, match="non-finite"):
        load_trained(bad, network.build_from_meta, CPU)


@pytest.mark.parametrize("case,needle", [
    ("truncated", "is not valid JSON"),
    ("foreign", "has no 'per_nfe'"),
    ("other_variant", "was made for variant='idff2' but this job has variant='idff1'"),
    ("other_seed", "was made for seed=3 but this job has seed=0"),
])
def test_corrupt_tuned_file_is_refused(case, needle, smoke, ckpt, tmp_path, capsys, no_evaluation):
    good = {"job": "tune", "experiment": "toy", "dataset": "moons", "variant": "idff1",
            "solver": "euler", "seed": 0, "per_nfe": {"2": {"best": {"sigma_s": 0.2}}}}
    tuned = tmp_path / "tuned.json"
    text = {"truncated": json.dumps(good)[:40], "foreign": json.dumps({"rows": []}),
            "other_variant": json.dumps({**good, "variant": "idff2"}),
            "other_seed": json.dumps({**good, "seed": 3})}[case]
    tuned.write_text(text)
    err = _sweep(capsys, _eval_spec(smoke), ckpt, tmp_path / "m.json", "--tuned", str(tuned))
    assert f"tuned file {tuned}" in err and needle in err, err


# --- data ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("data,needle", [
    (torch.tensor([[0.0, 1.0], [float("inf"), 0.0]]), "NaN or inf"),
    (torch.tensor([[0.0, 1.0], [0.0, -float("inf")]]), "NaN or inf"),
    (torch.zeros(0, 2), "non-empty"),
    (torch.zeros(4, 2, 2), "(N, D)"),
])
def test_toy_pairs_refuse_bad_arrays(data, needle):
    with pytest.raises(ValueError) as info:
        ToyPairs(data)
    assert needle in str(info.value)


@pytest.mark.parametrize("data,needle", [({}, "n_train"), ({"n_train": 0}, "n_train"),
                                         ({"n_train": 100, "ntrain": 5}, "ntrain")])
def test_bad_toy_data_settings_stop_a_job_before_training(data, needle, smoke, tmp_path):
    """A spec that skipped validation (hand-written --spec) still fails with the key named."""
    spec = _train_spec(smoke)
    spec["data"] = data
    with pytest.raises(ConfigError, match=rf"experiments\.toy\.data.*{needle}"):
        jobs.run_train(spec, tmp_path / "m.pt", progress=False, on_step=_no_steps)
    assert list(tmp_path.iterdir()) == []


def _experiment_of(cfg: dict, family: str) -> str:
    return next(n for n, e in cfg["experiments"].items() if e["family"] == family)


def _write_md(path: Path, case: str) -> None:
    good = np.zeros((80, 2), np.float32)
    if case == "nan":
        bad = good.copy()
        bad[40, 0] = np.nan
        arrays = {"traj_000": good, "traj_001": bad}
    else:
        arrays = {"traj_000": good[:, :1]}
    meta = {"source": "openmm-vacuum", "frame_ps": 1.0}
    with open(path, "wb") as f:
        np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)
    if case == "truncated":
        path.write_bytes(path.read_bytes()[:100])


def _write_images(path: Path, case: str) -> None:
    images = {"nan": np.full((8, 16, 16, 3), np.nan, np.float32),
              "empty": np.zeros((0, 16, 16, 3), np.uint8),
              "shape": np.zeros((8, 16, 16), np.uint8)}[case]
    np.savez(path, images=images, heldout=np.zeros((4, 16, 16, 3), np.uint8))


@pytest.mark.parametrize("family,case,needle", [
    ("md", "nan", "NaN or inf"), ("md", "truncated", "truncated"), ("md", "shape", "shape"),
    ("images", "nan", "float32, expected uint8"), ("images", "empty", "empty"),
    ("images", "shape", "shape"), ("sst", "truncated", "could not be read"),
])
def test_bad_data_file_stops_training_before_the_first_step(family, case, needle, tmp_path,
                                                             monkeypatch):
    """The prepared data file is read and checked before the trainer takes a single step."""
    monkeypatch.chdir(tmp_path)  # data files live under resources/ of the working directory
    cfg = load_config(ROOT / "config" / "smoke.yaml")
    exp = _experiment_of(cfg, family)
    e = cfg["experiments"][exp]
    spec = train_spec(cfg, exp, e["datasets"][0], "idff", e["seeds"][0])
    spec["device"] = "cpu"
    data = Path(get_family(family).data_file(spec))
    data.parent.mkdir(parents=True)
    if family == "md":
        _write_md(data, case)
    elif family == "images":
        _write_images(data, case)
    else:
        data.write_bytes(b"CDF\x01" + os.urandom(300))
    with pytest.raises((ValueError, RuntimeError)) as info:
        jobs.run_train(spec, tmp_path / "out" / "m.pt", progress=False, on_step=_no_steps)
    assert str(data) in str(info.value) and needle in str(info.value), str(info.value)
    assert not (tmp_path / "out").exists()


# --- downloads -----------------------------------------------------------------------------------

BODY = bytes(range(256)) * 400  # 102,400 bytes
BIG = bytes(range(256)) * 2048  # 512 KiB: a download that takes about 2 s


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


@contextmanager
def slow_server(body: bytes, chunk: int = 4096, delay: float = 0.0
                ) -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """Serve ``body`` at /f.bin in ``chunk``-byte pieces, ``delay`` s apart; yields the URL and
    the log of (path, Range header)."""
    with serve({"/f.bin": body}, chunk=chunk, delay=delay) as (base, log):
        yield f"{base}/f.bin", log


def test_killed_download_resumes_where_it_stopped(tmp_path):
    """SIGKILL a real download half-way; the rerun asks only for the missing bytes."""
    dest = tmp_path / "f.bin"
    part = tmp_path / "f.bin.part"
    code = ("import sys; from idff.data.download import download; "
            "download(sys.argv[1], sys.argv[2], allow_http=True, retries=1)")
    with slow_server(BIG, chunk=16384, delay=0.05) as (url, ranges):
        proc = subprocess.Popen([sys.executable, "-c", code, url, str(dest)])
        deadline = time.monotonic() + 60
        while not (part.is_file() and part.stat().st_size > 0):
            assert proc.poll() is None and time.monotonic() < deadline, "download never started"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        have = part.stat().st_size
        assert 0 < have < len(BIG) and not dest.exists()
        out = download(url, dest, sha256=_sha256(BIG), allow_http=True, backoff=0.01)
    assert out.read_bytes() == BIG and not part.exists()
    assert [r for _, r in ranges] == [None, f"bytes={have}-"]


def test_stale_partial_file_is_fetched_again_from_the_start(tmp_path):
    """A .part left by an older run holds other bytes: resuming fails the checksum, so the
    whole file is fetched again instead of failing (or worse, keeping a spliced file)."""
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"\xff" * 5000)
    with slow_server(BODY) as (url, ranges):
        out = download(url, dest, sha256=_sha256(BODY), allow_http=True, backoff=0.01)
    assert out.read_bytes() == BODY
    assert [r for _, r in ranges] == ["bytes=5000-", None]


def test_wrong_checksum_never_leaves_a_file_at_the_destination(tmp_path):
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"an old, wrong copy")
    with slow_server(BODY) as (url, ranges):
        with pytest.raises(DownloadError) as info:
            download(url, dest, sha256="0" * 64, allow_http=True, backoff=0.01)
    assert "f.bin" in str(info.value) and "sha256" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # the stale copy is gone too: it failed the check
    assert len(ranges) == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_network_fails_within_seconds_with_what_to_place_where(tmp_path):
    """Nothing listens (connection refused): three attempts with back-off, then the hint."""
    dest = tmp_path / "raw" / "f.bin"
    url = f"http://127.0.0.1:{_closed_port()}/f.bin"
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as info:
        download(url, dest, sha256=_sha256(BODY), allow_http=True, retries=3)
    elapsed = time.monotonic() - t0
    assert elapsed < 10, f"took {elapsed:.1f} s"
    msg = str(info.value)
    assert "after 3 attempt(s)" in msg and "Without network" in msg and str(dest) in msg
    assert not dest.exists() and not dest.with_name("f.bin.part").exists()


def test_server_that_never_answers_times_out(tmp_path):
    """The connection opens but no byte comes back: each attempt ends after `timeout` s."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # never accepted: the kernel completes the handshake, nobody answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/f.bin"
        t0 = time.monotonic()
        with pytest.raises(DownloadError, match="Without network"):
            download(url, tmp_path / "f.bin", allow_http=True, retries=2, timeout=1.0,
                     backoff=0.01)
        assert time.monotonic() - t0 < 10


# --- security ------------------------------------------------------------------------------------

SOURCE_DIRS = ("idff", "benchmarks", "workflow")


def _calls(tree: ast.AST) -> Iterator[tuple[str, ast.Call]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = node.func.value
            name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
            yield f"{name}.{node.func.attr}", node


def _kw(call: ast.Call, name: str) -> object:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else kw.value
    return None


def test_every_load_in_the_source_tree_refuses_code():
    """torch.load always with weights_only=True, np.load never with allow_pickle=True, no bare
    pickle / yaml.load (the CIFAR batches go through a numpy-only Unpickler subclass)."""
    files = [p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py")]
    smk = [p for p in (ROOT / "workflow").rglob("*") if p.suffix == ".smk" or p.name == "Snakefile"]
    assert len(files) > 20 and smk
    problems, torch_loads = [], 0
    for path in files:
        for name, call in _calls(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            if name == "torch.load":
                torch_loads += 1
                if _kw(call, "weights_only") is not True:
                    problems.append(f"{where}: torch.load without weights_only=True")
            elif name in ("np.load", "numpy.load") and _kw(call, "allow_pickle") not in (None, False):
                problems.append(f"{where}: np.load with allow_pickle")
            elif name in ("pickle.load", "pickle.loads", "yaml.load", "yaml.unsafe_load",
                          "marshal.loads"):
                problems.append(f"{where}: {name}")
    for path in smk:  # Snakemake files are not plain Python; a text check is enough there
        for m in re.finditer(r"torch\.load\(([^)]*)\)|pickle\.loads?\(|yaml\.load\(", path.read_text()):
            if not (m.group(1) and "weights_only=True" in m.group(1)):
                problems.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    assert torch_loads >= 2  # io.load_checkpoint and the Inception weights pre-check
    assert not problems, "\n".join(problems)


class Armed:
    """Unpickling this runs code: it creates ``marker`` (harmless, but proves execution)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_payload_is_refused_and_never_runs(smoke, ckpt, tmp_path, capsys, no_evaluation):
    marker = tmp_path / "payload-ran"
    armed = tmp_path / "armed.pt"
    torch.save({**load_checkpoint(ckpt), "extra": Armed(marker)}, armed)
    torch.load(armed, weights_only=False)  # the control: a plain unpickler runs the payload
    assert marker.exists()
    marker.unlink()

    err = _sweep(capsys, _eval_spec(smoke), armed, tmp_path / "m.json")
    assert str(armed) in err and "refused" in err
    from idff.metrics.images import ImageMetricsError, resolve_inception_weights

    with pytest.raises(ImageMetricsError, match="not a plain Inception weights file"):
        resolve_inception_weights(armed)  # checked before torch-fidelity unpickles it
    assert not marker.exists()
