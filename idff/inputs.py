"""Every file from outside the repository that a config's jobs read, and how each is had.

``external_inputs(cfg)`` lists them (Inception weights, CIFAR-10, CelebA, OISST, mdshare, the
packaged OSTIA field, OpenMM for simulated MD); ``idff doctor`` checks each before a run. The
Inception weights are fetched by their own rule (``idff fetch inception_weights``) before any
FID/KID/IS job; the data sets are fetched by the data rule of their experiment.
"""

from __future__ import annotations

import importlib.util
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import data_spec
from .data import images as im
from .data import md
from .data.sst import oisst_filename, oisst_url
from .families import get_family
from .families.sst import split_years

# torch-fidelity 0.4.0's URL_INCEPTION_V3 (torch_fidelity/feature_extractor_inceptionv3.py). Its
# file name follows torch hub's convention "name-<first 8+ hex digits of the SHA-256>.ext", so
# the checksum is the "6726825d" in the name (a test reads both from the installed package).
INCEPTION_WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_DEFAULTS: dict[str, Any] = {
    "url": "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
           + INCEPTION_WEIGHTS_NAME,
    "sha256": "6726825d",
    "size": None,
    "allow_http": False,
    "retries": 3,
    "timeout": 60.0,
}
INCEPTION = "inception-v3-compat"


@dataclass
class ExternalInput:
    """One outside file (or folder) some jobs read, where it must be and how it gets there."""

    name: str
    path: str
    experiments: list[str]
    how: str  # "rule": fetched by a rule before its jobs; "manual"; "package"; "simulated"
    made_by: str = ""
    url: str | None = None
    checksum: str = ""
    fix: str = ""
    present: bool = False
    note: str = ""


def inception_settings(cfg: dict) -> dict[str, Any]:
    """``inputs.inception_weights`` of the config over the defaults (URL, checksum, retries)."""
    given = (cfg.get("inputs") or {}).get("inception_weights") or {}
    return {**INCEPTION_DEFAULTS, **given}


def uses_inception(exp: dict) -> bool:
    return exp["family"] == "images" and (
        exp["data"].get("feature_extractor", INCEPTION) == INCEPTION)


def weights_path(exp: dict) -> str | None:
    """The Inception weights file the FID/KID/IS jobs of ``exp`` read (None: torch hub's cache,
    or no Inception features at all)."""
    if not uses_inception(exp):
        return None
    return exp["data"].get("inception_weights")


def weights_paths(cfg: dict) -> list[str]:
    """Distinct configured weights files: each is made by the inception_weights rule."""
    return sorted({p for e in cfg["experiments"].values() if (p := weights_path(e))})


def _hub_weights() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS_NAME


def _data_file(cfg: dict, name: str, dataset: str) -> Path:
    spec = data_spec(cfg, name, dataset)
    return Path(get_family(spec["family"]).data_file(spec) or "")


def external_inputs(cfg: dict, experiments: list[str] | None = None) -> list[ExternalInput]:
    """The outside inputs of the experiments named (all by default), merged by path."""
    out: dict[str, ExternalInput] = {}

    def add(item: ExternalInput) -> None:
        if item.path in out:
            out[item.path].experiments += [e for e in item.experiments
                                           if e not in out[item.path].experiments]
        else:
            out[item.path] = item

    for name in experiments or list(cfg["experiments"]):
        exp = cfg["experiments"][name]
        for ds in exp["datasets"]:
            if not _data_file(cfg, name, ds).is_file():  # a prepared data file needs no source
                for item in _dataset_inputs(exp, name, ds):
                    add(item)
        if uses_inception(exp):
            add(_weights_input(cfg, exp, name))
    return list(out.values())


def _weights_input(cfg: dict, exp: dict, name: str) -> ExternalInput:
    s = inception_settings(cfg)
    path = weights_path(exp)
    if path is None:
        hub = _hub_weights()
        return ExternalInput(
            "Inception-v3 weights (FID/KID/IS)", str(hub), [name], "manual", url=s["url"],
            checksum=f"sha256 {s['sha256']}...", present=hub.is_file(),
            fix=f"set experiments.{name}.data.inception_weights to resources/weights/"
                f"{INCEPTION_WEIGHTS_NAME} so that the pipeline fetches it, or place {s['url']} "
                f"at {hub}")
    return ExternalInput(
        "Inception-v3 weights (FID/KID/IS)", path, [name], "rule", made_by="rule inception_weights",
        url=s["url"], checksum=f"sha256 {s['sha256']}...", present=Path(path).is_file(),
        fix=f"download {s['url']} on a machine with internet and place it at {path}")


def _dataset_inputs(exp: dict, name: str, ds: str) -> list[ExternalInput]:
    data = exp["data"]
    if exp["family"] == "images":
        root = Path(data.get("root", "resources/downloads"))
        if ds == "cifar10":
            tar = root / im.CIFAR10_FILE
            how = "rule" if data.get("download", True) else "manual"
            return [ExternalInput("CIFAR-10 tarball", str(tar), [name], how,
                                  made_by=f"rule data (data_{name})", url=im.CIFAR10_URL,
                                  checksum=f"md5 {im.CIFAR10_MD5}, {im.CIFAR10_SIZE:,} bytes",
                                  present=tar.is_file(),
                                  fix=f"download {im.CIFAR10_URL} and place it at {tar}")]
        if ds == "celeba":
            try:
                im.find_celeba(root)
                present = True
            except im.ImageDataError:
                present = False
            return [ExternalInput(
                "CelebA (img_align_celeba/ + list_eval_partition.txt)",
                f"{root}/{im.CELEBA_IMG_DIR}/", [name],
                "manual", checksum="md5 00d2c5bc6d35e252742224ab0c1e8fcb (the zip)", present=present,
                fix=f"get img_align_celeba.zip and list_eval_partition.txt from "
                    f"https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, unzip so that "
                    f"{root / im.CELEBA_IMG_DIR / '000001.jpg'} exists and put "
                    f"{root / im.CELEBA_PARTITION} beside it")]
        return [_package("scikit-image (offline image stand-ins)", "skimage", name)]
    if exp["family"] == "md":
        if ds == "mdshare":
            block = {**data, **(data.get(ds) or {})}
            url = block.get("url") or md.MDSHARE_URL
            raw = f"resources/data/{name}/{ds}/{url.rsplit('/', 1)[-1]}"
            return [ExternalInput(
                "mdshare alanine-dipeptide dihedrals", raw, [name], "rule",
                made_by=f"rule data (data_{name})", url=url, present=Path(raw).is_file(),
                checksum=f"md5 {md.MDSHARE_MD5}, {md.MDSHARE_SIZE:,} bytes",
                fix=f"download {url} and place it at {raw}; the data rule converts it")]
        return [_package("OpenMM (simulates the MD data)", "openmm", name)]
    if exp["family"] == "sst":
        if ds == "oisst":
            raw = Path(data.get("raw_dir", "resources/raw/oisst"))
            years = split_years({"dataset": ds, "data": data})
            missing = [y for y in years if not (raw / oisst_filename(y)).is_file()]
            base = data.get("base_url")
            first = oisst_url(missing[0], base) if base and missing else (
                oisst_url(missing[0]) if missing else None)
            return [ExternalInput(
                f"NOAA OISST daily files ({len(years)} years)", str(raw), [name], "rule",
                made_by=f"rule data (data_{name})", url=first,
                checksum="sha256 recorded in the manifest on first download",
                present=not missing, note=f"{len(missing)} of {len(years)} yearly files missing",
                fix=f"download the missing sst.day.mean.YYYY.nc files (e.g. {first}) into {raw}")]
        return [_package("iris-sample-data (the offline OSTIA field)", "iris_sample_data", name)]
    return []


def _package(what: str, module: str, name: str) -> ExternalInput:
    present = importlib.util.find_spec(module) is not None
    return ExternalInput(what, f"the python package {module}", [name], "package", present=present,
                         fix=f"pip install {module.replace('_', '-')} into this environment")


def probe(url: str, timeout: float = 5.0) -> str:
    """'' when ``url`` answers (its first byte, redirects followed), else the reason it does not."""
    req = urllib.request.Request(url, headers={"User-Agent": "idff-doctor", "Range": "bytes=0-0"})
    try:
        with urllib.request.urlopen(req, timeout=timeout):
            return ""
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{type(reason).__name__}: {reason}"
