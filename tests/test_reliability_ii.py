"""Reliability II (issue 16): each test injects one fault for real and checks the refusal or the
correct result. Items: 1 resume vs changed train settings, 2 content hashes of checkpoints and
data files, 3 impossible values in result files, 4 closed config schema, 5 CLI errors, 6 tuned
file identity, 7 downloads, 8 the errno of a failed write, 9 read-only outputs, 10 orphaned jobs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from loopback import serve

from idff.cli import main as idff_main
from idff.config import eval_spec, load_config, train_spec, validate_config
from idff.data.download import DownloadError, download
from idff.errors import ConfigError
from idff.io import CheckpointError, load_checkpoint
from idff.report.collect import ReportInputError, read_result
from idff.steps import jobs

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TINY = {"steps": 30, "batch_size": 32, "ckpt_every": 10, "warmup": 0}


@pytest.fixture(scope="module")
def smoke() -> dict:
    return load_config(ROOT / "config" / "smoke.yaml")


def tiny_train(cfg: dict, dataset: str = "moons", seed: int = 0, **train) -> dict:
    spec = train_spec(copy.deepcopy(cfg), "toy", dataset, "idff", seed)
    spec["device"] = "cpu"
    spec["model"]["hidden"] = 16
    spec["data"]["n_train"] = 256
    spec["train"].update({**TINY, **train})
    return spec


def tiny_eval(cfg: dict, dataset: str = "moons") -> dict:
    spec = eval_spec(copy.deepcopy(cfg), "toy", dataset, "idff1", "euler", 0)
    spec.update(device="cpu", nfe=[2])
    spec["model"]["hidden"] = 16
    spec["data"]["n_train"] = 256
    spec["sweep"]["n_samples"] = 64
    spec["tune"]["n_samples"] = 64
    spec["variant"]["tune"] = {"sigma_s": [0.0, 0.5]}
    return spec


def killed_at(step_to_die: int):
    """on_step hook: the job dies (an exception, as a kill would) at ``step_to_die``."""
    def hook(step, loss):
        if step == step_to_die:
            raise KeyboardInterrupt("killed")
        return loss
    return hook


def run_killed(spec: dict, out: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        jobs.run_train(spec, out, progress=False, on_step=killed_at(15))
    assert Path(f"{out}.resume").is_file() and not out.exists()


def weights(path: Path) -> dict:
    return load_checkpoint(path)["model"]


# --- 1: a resume never continues with other train settings ---------------------------------------

def test_resume_with_a_changed_learning_rate_starts_fresh(smoke, tmp_path, capsys):
    spec = tiny_train(smoke)
    out = tmp_path / "seed0.pt"
    run_killed(spec, out)
    changed = copy.deepcopy(spec)
    changed["train"]["lr"] = spec["train"]["lr"] / 4
    jobs.run_train(changed, out, progress=False)
    said = capsys.readouterr().out
    assert f"not resuming {out}.resume: it was trained with train.lr=" in said
    state = load_checkpoint(out)
    assert state["optimizer"]["param_groups"][0]["lr"] == changed["train"]["lr"]
    assert state["train"]["lr"] == changed["train"]["lr"] and state["step"] == 30
    fresh = tmp_path / "fresh.pt"
    jobs.run_train(changed, fresh, progress=False)  # never interrupted
    for k, v in weights(fresh).items():
        assert torch.equal(v, state["model"][k]), k


@pytest.mark.parametrize("key,value", [("batch_size", 16), ("ema_decay", 0.5), ("bf16", True),
                                       ("grad_clip", 0.1), ("warmup", 5)])
def test_resume_with_any_other_changed_setting_starts_fresh(smoke, tmp_path, capsys, key, value):
    spec = tiny_train(smoke)
    out = tmp_path / "seed0.pt"
    run_killed(spec, out)
    changed = copy.deepcopy(spec)
    changed["train"][key] = value
    jobs.run_train(changed, out, progress=False)
    assert f"train.{key}=" in capsys.readouterr().out
    assert load_checkpoint(out)["train"][key] == value


def test_raised_steps_continue_and_lowered_steps_retrain(smoke, tmp_path, capsys):
    spec = tiny_train(smoke)
    out = tmp_path / "seed0.pt"
    run_killed(spec, out)  # resume file at step 10
    more = copy.deepcopy(spec)
    more["train"]["steps"] = 40
    jobs.run_train(more, out, progress=False)
    assert f"resuming {out} from step 10" in capsys.readouterr().out
    state = load_checkpoint(out)
    assert state["step"] == 40 and state["train"]["steps"] == 40
    straight = tmp_path / "straight.pt"
    jobs.run_train(more, straight, progress=False)
    for k, v in weights(straight).items():
        assert torch.equal(v, state["model"][k]), k

    out2 = tmp_path / "seed1.pt"
    run_killed(spec, out2)
    fewer = copy.deepcopy(spec)
    fewer["train"]["steps"] = 5  # below the saved step 10: a 10-step model must not say 5
    jobs.run_train(fewer, out2, progress=False)
    assert "10 steps done already (train.steps is now 5)" in capsys.readouterr().out
    state = load_checkpoint(out2)
    assert state["step"] == 5 and state["train"]["steps"] == 5


# --- 2: checkpoints and data files prove their bytes ---------------------------------------------

def flip_tensor_byte(path: Path) -> None:
    """Flip one byte inside the largest tensor record of a torch zip checkpoint."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(path, "r+b") as f:
        f.seek(info.header_offset)
        head = f.read(30)
        start = info.header_offset + 30 + int.from_bytes(head[26:28], "little") \
            + int.from_bytes(head[28:30], "little")
        f.seek(start + info.file_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x10]))


def test_a_checkpoint_with_a_flipped_byte_is_refused(smoke, tmp_path, capsys):
    out = tmp_path / "seed0.pt"
    jobs.run_train(tiny_train(smoke), out, progress=False)
    flip_tensor_byte(out)
    torch.load(out, weights_only=True)  # torch itself does not notice
    with pytest.raises(CheckpointError, match="is corrupt: its content does not match"):
        load_checkpoint(out)
    metrics = tmp_path / "m.json"
    rc = idff_main(["sweep", "--spec", json.dumps(tiny_eval(smoke)), "--ckpt", str(out),
                    "--out", str(metrics)])
    err = capsys.readouterr().err
    assert rc == 2 and f"checkpoint {out} is corrupt" in err and "rerun the job" in err
    assert not metrics.exists()


def test_a_data_file_with_a_flipped_byte_is_refused(tmp_path, monkeypatch):
    from test_images_family import cpu, tiny_cfg

    from idff.config import data_spec
    from idff.families import get_family
    from idff.integrity import DataIntegrityError, record_path

    monkeypatch.chdir(tmp_path)  # the family's data files live under resources/ (relative)
    cfg = tiny_cfg()
    family = get_family("images")
    dspec = data_spec(cfg, "cifar10", "offline_cifar")
    data = Path(family.data_file(dspec))
    jobs.run_prepare(dspec, data)
    assert json.loads(record_path(data).read_text())["sha256"] == hashlib.sha256(
        data.read_bytes()).hexdigest()
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    data.write_bytes(bytes(blob))
    tspec = cpu(train_spec(cfg, "cifar10", "offline_cifar", "idff", 0))
    with pytest.raises(DataIntegrityError, match=f"data file {data} is corrupt"):
        jobs.run_train(tspec, tmp_path / "i.pt", progress=False)
    assert not (tmp_path / "i.pt").exists()


# --- 3: impossible values in result files --------------------------------------------------------

def metrics_file(tmp_path: Path, **row) -> Path:
    path = tmp_path / "seed0.json"
    base = {"nfe_budget": 2, "nfe": 2, "vjp": 0, "wall_s": 0.1, "w2": 0.2, "mmd": 0.01}
    path.write_text(json.dumps({"job": "sweep", "dataset": "moons", "rows": [{**base, **row}]}))
    return path


@pytest.mark.parametrize("row,needle", [
    ({"w2": -5.0}, "rows.0.w2 = -5.0 is outside [0.0, inf]"),
    ({"w2": "0.01"}, "rows.0.w2 = '0.01' is not a number"),
    ({"mmd": 3.0}, "rows.0.mmd = 3.0 is outside [-2.0, 2.0]"),
    ({"comparable": 1.5}, "rows.0.comparable = 1.5 is outside [0.0, 1.0]"),
    ({"nfe": 2.5}, "rows.0.nfe = 2.5 is not a count"),
    ({"fid": True}, "rows.0.fid = True is not a number"),
])
def test_result_files_with_impossible_values_are_refused(tmp_path, row, needle):
    path = metrics_file(tmp_path, **row)
    with pytest.raises(ReportInputError) as err:
        read_result(path)
    assert str(err.value).startswith(f"result file {path}: {needle}")


def test_valid_values_and_diverged_nulls_pass(tmp_path):
    read_result(metrics_file(tmp_path, w2=None, mmd=-0.001, fid=0.0, comparable=1.0))


def test_a_negative_distance_never_reaches_a_table(tmp_path, capsys):
    from test_report import make_cfg, write_tree

    cfg = make_cfg()
    write_tree(cfg, tmp_path / "results")
    victim = next((tmp_path / "results" / "metrics").rglob("*.json"))
    obj = json.loads(victim.read_text())
    obj["rows"][0]["w2"] = -5.0
    victim.write_text(json.dumps(obj))
    out = tmp_path / "table.md"
    rc = idff_main(["report", "table_toy", "--config-json", json.dumps(cfg), "--results",
                    str(tmp_path / "results"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and f"result file {victim}: rows.0.w2 = -5.0 is outside" in err
    assert not out.exists()


# --- 4: the config schema is closed --------------------------------------------------------------

@pytest.mark.parametrize("edit,needle", [
    (lambda t: t["model"].update(hiddn=128), "experiments.toy.model: Additional properties"),
    (lambda t: t["model"].update(model_channels=8), "experiments.toy.model: 'model_channels'"),
    (lambda t: t["variants"]["idff1"].setdefault("params", {}).update(sigma_s=-0.5),
     "experiments.toy.variants.idff1.params.sigma_s: -0.5 is less than the minimum of 0"),
    (lambda t: t["variants"]["bridge"].update(params={"g_scale": -1.0}),
     "experiments.toy.variants.bridge.params.g_scale"),
    (lambda t: t["variants"]["idff1"]["tune"].update(sigma_s=[0.2, -0.4]),
     "experiments.toy.variants.idff1.tune.sigma_s.1"),
    (lambda t: t["variants"]["idff1"]["tune"].update(sigma_z=[0.2]),
     "experiments.toy.variants.idff1.tune: Additional properties"),
    (lambda t: t["variants"]["idff2"]["tune"].update(gamma1=[1e9]),
     "experiments.toy.variants.idff2.tune.gamma1.0"),
])
def test_schema_holes_are_closed(smoke, edit, needle):
    cfg = copy.deepcopy(smoke)
    toy = cfg["experiments"]["toy"]
    if "bridge" not in toy["variants"]:
        toy["variants"]["bridge"] = {"method": "idff", "sampler": "bridge_sde",
                                     "solvers": ["euler_maruyama"]}
    edit(toy)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert needle in str(err.value)


def test_integer_keys_hint_at_whole_numbers(tmp_path, smoke):
    cfg = copy.deepcopy(smoke)
    cfg["experiments"]["toy"]["train"]["steps"] = "1e3"  # what YAML makes of `steps: 1e3`
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    msg = str(err.value)
    assert "experiments.toy.train.steps" in msg and "whole number" in msg and "1.0e-4" not in msg


# --- 5: CLI errors are one line, exit 2 ----------------------------------------------------------

def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_cli_errors_are_one_line_with_exit_2(smoke, tmp_path, capsys):
    out = tmp_path / "x.json"
    assert idff_main(["sweep", "--spec", "5", "--ckpt", "c.pt", "--out", str(out)]) == 2
    assert "--spec must be a JSON object, got int" in one_line_error(capsys)

    bad = tiny_train(smoke)
    bad["model"]["hiddn"] = 8
    assert idff_main(["train", "--spec", json.dumps(bad), "--out", str(tmp_path / "m.pt")]) == 2
    assert "--spec key model: Additional properties are not allowed ('hiddn'" in \
        one_line_error(capsys)

    from test_report import make_cfg, write_tree
    cfg = make_cfg()
    write_tree(cfg, tmp_path / "results")
    victim = next((tmp_path / "results" / "metrics").rglob("*.json"))
    victim.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe garbage")
    assert idff_main(["report", "table_toy", "--config-json", json.dumps(cfg), "--results",
                      str(tmp_path / "results"), "--out", str(tmp_path / "t.md")]) == 2
    err = one_line_error(capsys)
    assert f"result file {victim} is not valid JSON" in err and "utf-8" in err

    ckpt = tmp_path / "seed0.pt"
    jobs.run_train(tiny_train(smoke), ckpt, progress=False)
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"per_nfe": {"2": {"best": {"sigma_s": 0.5}}}}))
    assert idff_main(["sample", "--spec", json.dumps(tiny_eval(smoke)), "--ckpt", str(ckpt),
                      "--nfe", "2", "--tuned", str(foreign), "--out", str(tmp_path / "s.npz")]) == 2
    assert f"tuned file {foreign} does not record experiment" in one_line_error(capsys)


# --- 6: tune files carry and check their job's identity ------------------------------------------

def test_a_tune_file_of_another_data_set_or_checkpoint_is_refused(smoke, tmp_path):
    ckpts = {}
    for ds in ("moons", "8gaussians"):
        ckpts[ds] = tmp_path / f"{ds}.pt"
        jobs.run_train(tiny_train(smoke, ds), ckpts[ds], progress=False)
    tuned = tmp_path / "tuned_8g.json"
    jobs.run_tune(tiny_eval(smoke, "8gaussians"), ckpts["8gaussians"], tuned)
    with pytest.raises(ValueError, match="was made for dataset='8gaussians' but this job has "
                                         "dataset='moons'"):
        jobs.run_sweep(tiny_eval(smoke, "moons"), ckpts["moons"], tmp_path / "m.json", tuned=tuned)
    # the same job, but tuned on another checkpoint (retrained with another lr)
    tuned_m = tmp_path / "tuned_m.json"
    jobs.run_tune(tiny_eval(smoke, "moons"), ckpts["moons"], tuned_m)
    jobs.run_train(tiny_train(smoke, "moons", lr=1e-4), ckpts["moons"], progress=False)
    with pytest.raises(ValueError, match="was made with another checkpoint"):
        jobs.run_sweep(tiny_eval(smoke, "moons"), ckpts["moons"], tmp_path / "m.json",
                       tuned=tuned_m)
    assert not (tmp_path / "m.json").exists()


# --- 7: downloads --------------------------------------------------------------------------------

BODY = bytes(range(256)) * 1200  # 307,200 bytes


def test_a_cut_transfer_without_length_or_checksum_is_refused(tmp_path):
    with serve({"/f.bin": BODY}, no_length=True, drop_first=True) as (url, _):
        with pytest.raises(DownloadError, match="sent no Content-Length and no size or checksum"):
            download(f"{url}/f.bin", tmp_path / "f.bin", allow_http=True, backoff=0.01)
    assert list(tmp_path.iterdir()) == []


def test_a_cut_transfer_with_a_checksum_is_retried(tmp_path):
    with serve({"/f.bin": BODY}, no_length=True, drop_first=True) as (url, log):
        out = download(f"{url}/f.bin", tmp_path / "f.bin", allow_http=True, backoff=0.01,
                       sha256=hashlib.sha256(BODY).hexdigest())
    assert out.read_bytes() == BODY and len(log) == 2


def test_a_cut_transfer_with_a_known_size_is_resumed(tmp_path):
    with serve({"/f.bin": BODY}, no_length=True, drop_first=True) as (url, log):
        out = download(f"{url}/f.bin", tmp_path / "f.bin", allow_http=True, backoff=0.01,
                       size=len(BODY))
    assert out.read_bytes() == BODY
    assert log == [("/f.bin", None), ("/f.bin", f"bytes={len(BODY) // 2}-")]


def test_a_redirect_from_https_to_http_is_refused(tmp_path, monkeypatch):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a loopback certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the loopback certificate
    dest = tmp_path / "out" / "f.bin"
    with serve({"/f.bin": BODY}) as (plain, plain_log):
        with serve({"/ok.bin": BODY}, redirects={"/f.bin": f"{plain}/f.bin"},
                   tls=(str(cert), str(key))) as (secure, _):
            assert download(f"{secure}/ok.bin", tmp_path / "ok.bin", size=len(BODY)).is_file()
            with pytest.raises(DownloadError, match="refusing the redirect of https://.*to "
                                                    "http://.*never leaves https"):
                download(f"{secure}/f.bin", dest, size=len(BODY), backoff=0.01)
    assert plain_log == [] and not dest.exists()


# --- 8: a failed write names the limit that was hit ----------------------------------------------

FILE_SIZE_LIMIT = textwrap.dedent("""
    import resource, signal, sys, torch
    from idff.io import save_checkpoint
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    try:
        save_checkpoint(sys.argv[1], {"w": torch.zeros(1_000_000)})
    except Exception as exc:
        print(type(exc).__name__, exc)
""")


def test_a_file_size_limit_is_reported_as_such(tmp_path):
    out = tmp_path / "model.pt"
    proc = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMIT, str(out)], capture_output=True,
                          text=True, timeout=120)
    msg = proc.stdout
    assert msg.startswith(f"CheckpointError could not write checkpoint {out} (EFBIG: File too "
                          f"large; a file-size limit was hit (ulimit -f"), msg + proc.stderr
    assert "GB free" not in msg and "disk" not in msg
    assert list(tmp_path.iterdir()) == []


# --- 9: outputs are checked to be writable before compute ----------------------------------------

@contextmanager
def read_only_folder(path: Path) -> Iterator[Path]:
    """``path`` made unwritable: mode 0555, or for root (whom modes do not stop) the immutable
    attribute (chattr +i); skipped where neither works."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        undo = ["chmod", "755", str(path)]
    elif shutil.which("chattr") and subprocess.run(["chattr", "+i", str(path)],
                                                   capture_output=True).returncode == 0:
        undo = ["chattr", "-i", str(path)]
    else:
        pytest.skip("cannot make a folder read-only for root here (no chattr +i)")
    try:
        yield path
    finally:
        subprocess.run(undo, check=True)


def test_a_read_only_output_folder_fails_before_training(smoke, tmp_path):
    with read_only_folder(tmp_path / "checkpoints") as ro:
        out = ro / "seed0.pt"
        spec = tiny_train(smoke, steps=100_000)
        proc = subprocess.run([str(BIN / "idff"), "--no-progress", "train", "--spec",
                               json.dumps(spec), "--out", str(out)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        err = proc.stderr.strip()
        assert err.startswith(f"idff train: error: output {out} cannot be written: its folder "
                              f"{ro} is not writable ("), err
        assert err.endswith("make the folder writable or choose another --out (nothing was "
                            "computed)") and "\n" not in err
        assert "training" not in proc.stdout and list(ro.iterdir()) == []


# --- 10: a job whose parent died stops ----------------------------------------------------------

# the parent: its command line names snakemake (as Snakemake's does); it starts the job through a
# shell that outlives it and with SIGINT ignored, as Snakemake's shell commands are started
FAKE_SNAKEMAKE = textwrap.dedent("""
    import signal, subprocess, sys, time
    def no_sigint():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    proc = subprocess.Popen(["/bin/bash", "-c", "set -euo pipefail; " + sys.argv[1]],
                            preexec_fn=no_sigint)
    time.sleep(3600)
""")


def _pids_of(out: Path) -> list[int]:
    """Processes whose command line holds ``out`` (the job, not the shell)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if len(cmd) > 1 and cmd[1].endswith(b"/idff") and str(out).encode() in cmd:
                found.append(int(d.name))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("via_shell", [True, False])
def test_a_job_stops_when_its_parent_is_sigkilled(smoke, tmp_path, via_shell):
    out = tmp_path / "seed0.pt"
    log = tmp_path / "job.log"
    spec = tiny_train(smoke, steps=10_000_000, ckpt_every=1_000_000)
    job = f"{BIN / 'idff'} --no-progress train --spec '{json.dumps(spec)}' --out {out} > {log} 2>&1"
    if via_shell:
        parent = subprocess.Popen([sys.executable, "-c", FAKE_SNAKEMAKE, job, "snakemake"])
    else:  # the job is the parent's direct child
        parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                                   "subprocess.Popen(['/bin/sh', '-c', 'exec ' + sys.argv[1]]); "
                                   "time.sleep(3600)", job])
    try:
        deadline = time.monotonic() + 120
        while "training idff" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
            assert parent.poll() is None
            time.sleep(0.5)
        pids = _pids_of(out)
        assert pids, "the job's process was not found"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 60
        while any(Path(f"/proc/{p}").exists() and "Z" not in _state(p) for p in pids):
            assert time.monotonic() < deadline, "the orphaned job kept running"
            time.sleep(0.5)
        text = log.read_text()
        assert "is gone; stopping, so no rerun races an orphaned writer" in text
        assert "idff train: error: stopped: the process that started it" in text
        assert not out.exists()
    finally:
        for p in _pids_of(out):
            os.kill(p, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()


def _state(pid: int) -> str:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "X"
    return text[text.rindex(")") + 2:].split()[0]
