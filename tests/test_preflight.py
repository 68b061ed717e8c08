"""Preflight (issue 18): the Inception weights fetch, `idff doctor` and the run-time estimate.

Downloads go to tests/loopback.py's server only; no test touches the network.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
from pathlib import Path

import pytest
import torch
from loopback import serve

from idff import cli
from idff.config import load_config
from idff.data.download import DownloadError
from idff.data.weights import fetch_weights
from idff.doctor import run_doctor
from idff.estimate import doc_table, estimate, step_seconds, unit_costs
from idff.inputs import INCEPTION_DEFAULTS, INCEPTION_WEIGHTS_NAME, external_inputs

ROOT = Path(__file__).resolve().parents[1]
FAKE = b"not really Inception weights, but bytes with a known digest\n" * 100
FAKE_SHA = hashlib.sha256(FAKE).hexdigest()


def test_inception_url_and_checksum_are_torch_fidelitys():
    """The URL is torch-fidelity's own, and the checksum is the SHA-256 start in its file name
    (torch hub's naming), so a torch-fidelity upgrade that moves the file fails here."""
    from torch.hub import HASH_REGEX
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    assert INCEPTION_DEFAULTS["url"] == URL_INCEPTION_V3
    assert URL_INCEPTION_V3.rsplit("/", 1)[-1] == INCEPTION_WEIGHTS_NAME
    assert HASH_REGEX.search(INCEPTION_WEIGHTS_NAME).group(1) == INCEPTION_DEFAULTS["sha256"]
    paper = load_config(ROOT / "config" / "config.yaml")
    assert paper["inputs"]["inception_weights"]["url"] == URL_INCEPTION_V3
    for name in ("cifar10", "celeba"):
        assert paper["experiments"][name]["data"]["inception_weights"].endswith(INCEPTION_WEIGHTS_NAME)


@pytest.mark.parametrize("sha", [FAKE_SHA[:8], FAKE_SHA])
def test_fetch_weights_checks_the_sha256(tmp_path, sha):
    out = tmp_path / "w" / "weights.pth"
    with serve({"/w.pth": FAKE}) as (base, log):
        fetch_weights(out, url=f"{base}/w.pth", sha256=sha, allow_http=True, retries=1)
        assert out.read_bytes() == FAKE
        fetch_weights(out, url=f"{base}/w.pth", sha256=sha, allow_http=True, retries=1)
    assert len(log) == 1  # the second call reused the verified file
    assert sorted(p.name for p in out.parent.iterdir()) == ["weights.pth"]


def test_fetch_weights_refuses_a_bad_checksum_and_leaves_nothing(tmp_path):
    out = tmp_path / "weights.pth"
    with serve({"/w.pth": FAKE}) as (base, _):
        with pytest.raises(DownloadError, match="does not start with the expected 0badc0de") as exc:
            fetch_weights(out, url=f"{base}/w.pth", sha256="0badc0de", allow_http=True, retries=1)
    assert str(out) in str(exc.value)  # where to put a good copy
    assert list(tmp_path.iterdir()) == []


def test_fetch_weights_offline_names_the_file_and_where_to_put_it(tmp_path):
    out = tmp_path / "weights.pth"
    with serve({}) as (base, _):
        with pytest.raises(DownloadError) as exc:
            fetch_weights(out, url=f"{base}/gone.pth", sha256=FAKE_SHA[:8], allow_http=True,
                          retries=1)
    msg = str(exc.value)
    assert f"{base}/gone.pth" in msg and f"place it at {out}" in msg
    assert not out.exists()
    with pytest.raises(DownloadError, match="only https"):
        fetch_weights(out, url="http://127.0.0.1:9/w.pth", sha256=FAKE_SHA[:8], retries=1)


def test_fetch_cli_exit_codes(tmp_path, capsys):
    out = tmp_path / "weights.pth"
    with serve({"/w.pth": FAKE}) as (base, _):
        good = json.dumps({"url": f"{base}/w.pth", "sha256": FAKE_SHA[:12], "allow_http": True})
        assert cli.main(["fetch", "inception_weights", "--spec", good, "--out", str(out)]) == 0
        out.unlink()
        bad = json.dumps({"url": f"{base}/w.pth", "sha256": "12345678", "allow_http": True,
                          "retries": 1})
        assert cli.main(["fetch", "inception_weights", "--spec", bad, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("idff fetch: error:") and "sha256" in err and len(err.splitlines()) == 1
    assert not out.exists()


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if re.match(r"^(OK|WARN|FAIL) ", ln)]


def test_doctor_on_the_smoke_config_prints_every_check(capsys, tmp_path):
    rc = cli.main(["doctor", "--config", str(ROOT / "config" / "smoke.yaml"), "--offline",
                   "--out", str(tmp_path / "doctor.json")])
    out = capsys.readouterr().out
    lines = _lines(out)
    kinds = {ln.split()[1] for ln in lines}
    assert {"gpu", "disk", "input", "jobs", "estimate"} <= kinds, out
    assert rc == 0 and not [ln for ln in lines if ln.startswith("FAIL")], out
    assert "GPU-hours" in out and "idff/estimates.yaml" in out
    rec = json.loads((tmp_path / "doctor.json").read_text())
    assert rec["counts"]["FAIL"] == 0 and "git_commit" in rec["provenance"]


def test_doctor_needs_no_out_file_and_prints_its_cost_table(capsys, tmp_path, monkeypatch):
    """`--out` is optional (it once crashed with a TypeError when left out); `--costs` prints
    the unit-cost table that docs/performance.md shows."""
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["doctor", "--config", str(ROOT / "config" / "smoke.yaml"), "--offline",
                   "--experiments", "toy"])
    out = capsys.readouterr().out
    assert rc == 0 and "GPU-hours" in out and not list(tmp_path.iterdir())
    assert cli.main(["doctor", "--costs"]) == 0
    assert capsys.readouterr().out.strip() == doc_table().strip()


def test_doctor_paper_config_without_gpu_or_inputs_fails_naming_them(monkeypatch, tmp_path):
    """On a machine without CUDA and with nothing downloaded: FAIL for the GPU and each outside
    input, each with its fix, and the GPU-hour estimate, without touching the network."""
    cfg = load_config(ROOT / "config" / "config.yaml")
    monkeypatch.chdir(tmp_path)  # no resources/ here
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    stream = io.StringIO()
    assert run_doctor(cfg, network=False, stream=stream) == 1
    lines = _lines(stream.getvalue())
    fails = [ln for ln in lines if ln.startswith("FAIL")]
    weights = f"resources/weights/{INCEPTION_WEIGHTS_NAME}"
    assert any(ln.split()[1] == "gpu" and "GPU-hours" in ln for ln in fails)
    for needle in (weights, "cifar-10-python.tar.gz", "img_align_celeba", "oisst", "mdshare"):
        hit = [ln for ln in fails if needle in ln]
        assert hit and all("-> fix:" in ln for ln in hit), needle
    assert any(ln.startswith("WARN  estimate") and "GPU-hours on one GPU" in ln for ln in lines)


def test_doctor_gpu_line_without_cuda(monkeypatch):
    cfg = load_config(ROOT / "config" / "smoke.yaml")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    from idff.doctor import check_gpu

    est = estimate(cfg, "cuda")
    assert check_gpu(cfg, est)[0][0].status == "WARN"  # a small config runs on the CPU
    assert check_gpu({**cfg, "device": "cuda"}, est)[0][0].status == "FAIL"
    assert check_gpu({**cfg, "device": "cpu"}, est)[0][0].status == "OK"
    remote = check_gpu(cfg, est, remote=True)[0][0]
    assert remote.status == "WARN" and "cluster" in remote.message


def test_doctor_rejects_present_weights_with_a_wrong_checksum(monkeypatch, tmp_path):
    cfg = load_config(ROOT / "config" / "config.yaml")
    cfg["experiments"] = {"cifar10": cfg["experiments"]["cifar10"]}
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "resources" / "weights" / INCEPTION_WEIGHTS_NAME
    path.parent.mkdir(parents=True)
    path.write_bytes(FAKE)
    stream = io.StringIO()
    run_doctor(cfg, network=False, stream=stream)
    hit = [ln for ln in _lines(stream.getvalue()) if INCEPTION_WEIGHTS_NAME in ln]
    assert hit and hit[0].startswith("FAIL") and "does not start with" in hit[0] and "delete" in hit[0]
    cfg["inputs"]["inception_weights"]["sha256"] = FAKE_SHA[:8]  # now the file is the right one
    stream = io.StringIO()
    run_doctor(cfg, network=False, stream=stream)
    hit = [ln for ln in _lines(stream.getvalue()) if INCEPTION_WEIGHTS_NAME in ln]
    assert hit[0].startswith("OK") and "present" in hit[0]


def test_doctor_downloadable_input_is_ok_when_its_url_answers(monkeypatch, tmp_path):
    cfg = load_config(ROOT / "config" / "config.yaml")
    cfg["experiments"] = {"cifar10": cfg["experiments"]["cifar10"]}
    cfg["experiments"]["cifar10"]["datasets"] = ["offline_cifar"]  # no CIFAR-10 URL to probe
    monkeypatch.chdir(tmp_path)
    with serve({"/w.pth": FAKE}) as (base, log):
        cfg["inputs"]["inception_weights"].update(url=f"{base}/w.pth", allow_http=True)
        items = [i for i in external_inputs(cfg) if i.made_by == "rule inception_weights"]
        assert len(items) == 1 and not items[0].present
        from idff.doctor import check_inputs

        checks = {c.message.split(":")[0]: c for c in check_inputs(cfg, None, network=True)
                  if "Inception" in c.message}
    (check,) = checks.values()
    assert check.status == "OK" and "downloads it" in check.message, check
    assert any(path == "/w.pth" for path, _ in log)


def test_estimate_is_the_measured_step_for_the_reference_network():
    """The paper's toy MLP is the CPU reference network: its step costs exactly the measured
    time; twice the batch costs twice as much."""
    cfg = load_config(ROOT / "config" / "config.yaml")
    toy = copy.deepcopy(cfg["experiments"]["toy"])
    ref = unit_costs()["reference"]["mlp"]["cpu"]
    assert toy["train"]["batch_size"] == ref["batch"]
    from idff.estimate import count_params

    params = count_params(toy, "moons")
    assert params == ref["params"]
    assert step_seconds(toy, "moons", params, "cpu") == pytest.approx(ref["step_ms"] / 1e3)
    toy["train"]["batch_size"] *= 2
    assert step_seconds(toy, "moons", params, "cpu") == pytest.approx(2 * ref["step_ms"] / 1e3)
    one = {"experiments": {"toy": cfg["experiments"]["toy"]}, "paper_targets": {}}
    est = estimate(one, "cpu")
    n_train = len(toy["datasets"]) * len(toy["methods"]) * len(toy["seeds"])
    assert est.jobs["train"] == n_train
    start = unit_costs()["job_overhead_s"]["value"]
    assert est.hours["train"] == pytest.approx(
        n_train * (toy["train"]["steps"] * ref["step_ms"] / 1e3 + start) / 3600)


def test_performance_doc_shows_the_numbers_the_doctor_uses():
    doc = (ROOT / "docs" / "performance.md").read_text()
    assert doc_table() in doc, "docs/performance.md's run-time estimate table is stale: paste " \
                               "the output of `idff doctor --costs`"
