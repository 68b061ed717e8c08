"""Image data: CIFAR-10 and CelebA-64 (real), offline stand-ins, the npz store and training pairs.

Real data: CIFAR-10 comes from the official tarball (md5 checked) and is read with numpy alone
(no torchvision); CelebA is read from files placed by hand (its Google Drive download is often
refused) and resized + centre-cropped like torchvision's ``Resize(64), CenterCrop(64)``.
Offline stand-ins (smoke runs and tests only, never mixed into results): random crops of the
photos shipped in scikit-image for CIFAR-10, the 100 LFW faces of ``skimage.data.lfw_subset``
for CelebA. Every prepared set is a uint8 npz ``images`` [N, H, W, 3] with its provenance.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..io import atomic_path
from .download import DownloadError, download, require_file

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_SIZE = 170_498_071
CIFAR10_FILE = "cifar-10-python.tar.gz"
CIFAR10_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}

CELEBA_SPLITS = {"train": 0, "valid": 1, "test": 2}
CELEBA_COUNTS = {"all": 202_599, "train": 162_770, "valid": 19_867, "test": 19_962}
CELEBA_IMG_DIR = "img_align_celeba"
CELEBA_PARTITION = "list_eval_partition.txt"

STANDIN_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                  "immunohistochemistry", "retina")
DATASETS = ("cifar10", "celeba", "offline_cifar", "offline_faces")


class ImageDataError(RuntimeError):
    """An image data file is missing, truncated, corrupt or of the wrong kind; the message says
    what to do."""


# ----------------------------------------------------------------------------- CIFAR-10

def fetch_cifar10(root: str | os.PathLike, *, url: str = CIFAR10_URL, md5: str = CIFAR10_MD5,
                  size: int | None = CIFAR10_SIZE, retries: int = 3, timeout: float = 60.0,
                  allow_http: bool = False) -> Path:
    """Download (or reuse, after its checksum matched) ``root/cifar-10-python.tar.gz``."""
    dest = Path(root) / CIFAR10_FILE
    hint = (f"download {CIFAR10_URL} ({CIFAR10_SIZE:,} bytes, md5 {CIFAR10_MD5}) on a machine "
            f"with internet and place it at {dest}")
    return download(url, dest, md5=md5, size=size, retries=retries, timeout=timeout,
                    allow_http=allow_http, manual_hint=hint)


def read_cifar10(tar_path: str | os.PathLike, split: str = "train") -> np.ndarray:
    """Images of a CIFAR-10 split as uint8 [N, 32, 32, 3], read from the python tarball."""
    if split not in CIFAR10_BATCHES:
        raise ValueError(f"unknown CIFAR-10 split {split!r}; valid: {', '.join(CIFAR10_BATCHES)}")
    tar_path = require_file(tar_path, ImageDataError, "CIFAR-10 tarball",
                            f"run fetch_cifar10 (or the data_cifar10 rule) or place {CIFAR10_FILE} "
                            f"there by hand")
    wanted = CIFAR10_BATCHES[split]
    found: dict[str, np.ndarray] = {}
    try:
        with tarfile.open(tar_path, "r:gz") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in wanted:
                    f = tar.extractfile(member)
                    assert f is not None
                    found[name] = _batch_images(_safe_unpickle(f.read(), name, tar_path), name,
                                                tar_path)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ImageDataError(f"CIFAR-10 tarball {tar_path} is truncated or corrupt ({exc}); delete "
                             f"it and fetch it again (expected {CIFAR10_SIZE:,} bytes, md5 "
                             f"{CIFAR10_MD5})") from exc
    missing = [b for b in wanted if b not in found]
    if missing:
        raise ImageDataError(f"{tar_path} has no batch file(s) {', '.join(missing)}: it is not the "
                             f"CIFAR-10 python tarball; delete it and fetch {CIFAR10_URL}")
    return np.concatenate([found[b] for b in wanted])


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that builds numpy arrays and nothing else (the batches are plain pickles)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): np.zeros(1).__reduce__()[0],
        ("numpy._core.multiarray", "_reconstruct"): np.zeros(1).__reduce__()[0],
        ("numpy.core.multiarray", "scalar"): np.int64(0).__reduce__()[0],
        ("numpy._core.multiarray", "scalar"): np.int64(0).__reduce__()[0],
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): __import__("codecs").encode,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def _safe_unpickle(blob: bytes, name: str, tar_path: Path) -> dict:
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as exc:
        raise ImageDataError(f"{tar_path}: batch {name} could not be unpickled ({exc}); the tarball is "
                             f"corrupt or not CIFAR-10: delete it and fetch it again") from exc
    if not isinstance(obj, dict):
        raise ImageDataError(f"{tar_path}: batch {name} holds a {type(obj).__name__}, not a dict")
    return obj


def _batch_images(batch: dict, name: str, tar_path: Path) -> np.ndarray:
    data = batch.get(b"data", batch.get("data"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ImageDataError(f"{tar_path}: batch {name} has data {desc}, expected uint8 [N, 3072]; "
                             f"not the CIFAR-10 python tarball")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()


# ----------------------------------------------------------------------------- CelebA

def celeba_instructions(root: str | os.PathLike) -> str:
    root = Path(root)
    return (
        f"CelebA was not found (or is incomplete) under {root}. Its automatic download (Google Drive "
        f"through torchvision + gdown) is often refused, so place the files by hand:\n"
        f"  1. get img_align_celeba.zip (202,599 aligned 178x218 JPEGs, md5 "
        f"00d2c5bc6d35e252742224ab0c1e8fcb) and list_eval_partition.txt from the official page "
        f"https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html ('Align&Cropped Images' and 'Eval'), or "
        f"a mirror you trust (e.g. Kaggle jessicali9530/celeba-dataset);\n"
        f"  2. unzip it so that {root / CELEBA_IMG_DIR / '000001.jpg'} exists, and put "
        f"{root / CELEBA_PARTITION} beside it (torchvision's layout {root / 'celeba'}/... works too);\n"
        f"  3. rerun. CelebA is licensed for non-commercial research only: never commit the images.")


def find_celeba(root: str | os.PathLike) -> Path:
    """The folder holding ``img_align_celeba/`` and ``list_eval_partition.txt`` (root or root/celeba)."""
    root = Path(root)
    for cand in (root, root / "celeba"):
        if (cand / CELEBA_IMG_DIR).is_dir() and (cand / CELEBA_PARTITION).is_file():
            return cand
    raise ImageDataError(celeba_instructions(root))


def check_celeba(root: str | os.PathLike, split: str = "train", strict: bool = True) -> list[Path]:
    """Check the hand-placed files and return the image paths of ``split``.

    ``strict`` also requires the official counts (202,599 listed, 162,770 in train), which catches
    a half-finished unzip; tests and deliberate subsets pass ``strict=False``.
    """
    if split not in CELEBA_SPLITS:
        raise ValueError(f"unknown CelebA split {split!r}; valid: {', '.join(CELEBA_SPLITS)}")
    base = find_celeba(root)
    part = base / CELEBA_PARTITION
    names: list[str] = []
    total = 0
    for lineno, line in enumerate(part.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or fields[1] not in ("0", "1", "2") or not fields[0].endswith(".jpg"):
            raise ImageDataError(f"{part}:{lineno}: expected '<name>.jpg <0|1|2>', got {line!r}; the "
                                 f"partition file is damaged. {celeba_instructions(root)}")
        total += 1
        if int(fields[1]) == CELEBA_SPLITS[split]:
            names.append(fields[0])
    if not names:
        raise ImageDataError(f"{part} lists no images of split {split!r}. {celeba_instructions(root)}")
    if strict and (total != CELEBA_COUNTS["all"] or len(names) != CELEBA_COUNTS[split]):
        raise ImageDataError(f"{part} lists {total:,} images ({len(names):,} in {split}); the official "
                             f"file lists {CELEBA_COUNTS['all']:,} ({CELEBA_COUNTS[split]:,}). "
                             f"{celeba_instructions(root)}")
    paths = [base / CELEBA_IMG_DIR / n for n in names]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ImageDataError(f"{len(missing):,} of the {len(paths):,} {split} images are missing, e.g. "
                             f"{missing[0]}; the unzip is incomplete. {celeba_instructions(root)}")
    return paths


def try_celeba_torchvision(root: str | os.PathLike) -> Path:
    """Try torchvision's CelebA download into ``root/celeba``; on failure raise the instructions."""
    try:
        # torchvision: only the CelebA download path needs it
        from torchvision.datasets import CelebA
        CelebA(str(root), split="train", target_type="attr", download=True)
    except Exception as exc:  # gdown missing, Drive quota, BadZipFile, no network ...
        raise ImageDataError(f"the torchvision CelebA download failed ({type(exc).__name__}: {exc}).\n"
                             f"{celeba_instructions(root)}") from exc
    return find_celeba(root)


def celeba_image(path: str | os.PathLike, size: int = 64) -> np.ndarray:
    """One image as torchvision's Resize(size) + CenterCrop(size) would give it: uint8 [size, size, 3]."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            if w <= h:
                nw, nh = size, int(size * h / w)
            else:
                nw, nh = int(size * w / h), size
            im = im.resize((nw, nh), Image.BILINEAR)
            top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
            return np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8)
    except OSError as exc:
        raise ImageDataError(f"CelebA image {path} cannot be read ({exc}); re-extract it") from exc


def load_celeba(root: str | os.PathLike, split: str = "train", size: int = 64,
                n: int | None = None, seed: int = 0, strict: bool = True, download: bool = False,
                workers: int = 1) -> np.ndarray:
    """CelebA ``split`` resized + centre-cropped to ``size``: uint8 [N, size, size, 3].

    ``n`` takes a seeded random subset (in file order). ``download`` first tries torchvision's Google Drive download (usually refused; the error then
    explains how to place the files by hand). ``workers`` > 1 decodes in a process pool.
    """
    if download:
        try:
            find_celeba(root)
        except ImageDataError:
            try_celeba_torchvision(root)
    paths = check_celeba(root, split, strict=strict)
    if n is not None and n < len(paths):
        keep = np.sort(np.random.default_rng(seed).choice(len(paths), n, replace=False))
        paths = [paths[i] for i in keep]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            imgs = list(pool.map(partial(celeba_image, size=size), paths, chunksize=256))
    else:
        imgs = [celeba_image(p, size) for p in paths]
    return np.stack(imgs)


# ----------------------------------------------------------------------------- offline stand-ins

@lru_cache(maxsize=1)
def _standin_photos() -> tuple[np.ndarray, ...]:
    import skimage.data  # scikit-image: only the offline stand-in images need it
    return tuple(getattr(skimage.data, name)()[..., :3] for name in STANDIN_PHOTOS)


def offline_cifar_like(n: int = 2000, seed: int = 0, size: int = 32, min_crop: int = 32,
                       max_crop: int = 128) -> np.ndarray:
    """STAND-IN for CIFAR-10, not CIFAR-10: uint8 [n, size, size, 3] real-photo crops.

    Square crops with a side drawn from [min_crop, max_crop] at random places of the RGB photos
    shipped in scikit-image (``STANDIN_PHOTOS``), resized to ``size``. For smoke runs and tests.
    """
    if n < 1 or size < 1 or not 1 <= min_crop <= max_crop:
        raise ValueError(f"need n >= 1, size >= 1 and 1 <= min_crop <= max_crop, got n={n}, "
                         f"size={size}, min_crop={min_crop}, max_crop={max_crop}")
    rng = np.random.default_rng(seed)
    photos = _standin_photos()
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        img = photos[rng.integers(len(photos))]
        h, w = img.shape[:2]
        side = int(rng.integers(min_crop, min(max_crop, h, w) + 1))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = img[y:y + side, x:x + side]
        if side != size:
            crop = np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR))
        out[i] = crop
    return out


def offline_faces(size: int = 64, n: int = 100) -> np.ndarray:
    """STAND-IN for CelebA, not CelebA: the 100 real LFW face crops of ``skimage.data.lfw_subset``
    (25 x 25 grey), upsampled to ``size`` and repeated to RGB: uint8 [n, size, size, 3].

    LFW has no formal licence: use for smoke runs and tests only, never redistribute.
    """
    import skimage.data  # scikit-image: only the offline stand-in images need it
    if not 1 <= n <= 100:
        raise ValueError(f"lfw_subset has 100 faces; n must lie in [1, 100], got {n}")
    faces = np.clip(np.rint(skimage.data.lfw_subset()[:n] * 255.0), 0, 255).astype(np.uint8)
    up = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BICUBIC)) for f in faces])
    return np.repeat(up[..., None], 3, axis=-1)


# ----------------------------------------------------------------------------- npz store

SOURCES = {
    "cifar10": f"CIFAR-10 ({CIFAR10_URL}, md5 {CIFAR10_MD5})",
    "celeba": "CelebA aligned (img_align_celeba), Resize + CenterCrop like torchvision",
    "offline_cifar": "STAND-IN for CIFAR-10: random crops of scikit-image's sample photos "
                     f"({', '.join(STANDIN_PHOTOS)}); not comparable to CIFAR-10 results",
    "offline_faces": "STAND-IN for CelebA: skimage.data.lfw_subset() faces (LFW, 25x25 grey, "
                     "upsampled); tests and smoke only, not redistributed",
}


def prepare_image_dataset(name: str, out_path: str | os.PathLike, *,
                          root: str | os.PathLike = "resources/data", split: str = "train",
                          n: int | None = None, seed: int = 0, image_size: int | None = None,
                          download: bool = True, celeba_torchvision: bool = False,
                          celeba_strict: bool = True, workers: int = 1) -> Path:
    """Make data set ``name`` (one of ``DATASETS``) and write it atomically as a uint8 npz.

    ``n`` limits real sets to a seeded random subset and sets the size of ``offline_cifar``.
    ``image_size`` defaults to 32 (CIFAR-like) or 64 (faces).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown image data set {name!r}; valid: {', '.join(DATASETS)}")
    if name == "cifar10":
        tar = (fetch_cifar10(root) if download else Path(root) / CIFAR10_FILE)
        images = read_cifar10(tar, split)
    elif name == "celeba":
        images = load_celeba(root, split, size=image_size or 64, n=n, seed=seed,
                             strict=celeba_strict, download=celeba_torchvision, workers=workers)
    elif name == "offline_cifar":
        images = offline_cifar_like(n or 2000, seed=seed, size=image_size or 32)
    else:
        images = offline_faces(size=image_size or 64, n=n or 100)
    if n is not None and name == "cifar10" and n < len(images):
        idx = np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False))
        images = images[idx]
    out_path = Path(out_path)
    with atomic_path(out_path, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, images=images, name=np.str_(name), split=np.str_(split),
                 source=np.str_(SOURCES[name]), stand_in=np.bool_(name.startswith("offline")))
    return out_path


HELDOUT_SPLITS = {"cifar10": "test", "celeba": "test", "offline_cifar": "other crops",
                  "offline_faces": "last faces"}


def prepare_image_splits(name: str, out_path: str | os.PathLike, *,
                         root: str | os.PathLike = "resources/data", n: int | None = None,
                         n_heldout: int | None = None, seed: int = 0,
                         image_size: int | None = None, download: bool = True,
                         celeba_torchvision: bool = False, celeba_strict: bool = True,
                         workers: int = 1) -> Path:
    """Training images plus a held-out real set in one uint8 npz (``images``, ``heldout``).

    The held-out set scores the metric's floor (real vs real): CIFAR-10 and CelebA use their
    test split; ``offline_cifar`` other random crops (seed + 1) of the same photos;
    ``offline_faces`` keeps the last ``n_heldout`` (default 20) of its 100 faces out of training.
    ``n`` / ``n_heldout`` take seeded random subsets of the real splits.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown image data set {name!r}; valid: {', '.join(DATASETS)}")
    for key, val in (("n", n), ("n_heldout", n_heldout)):
        if val is not None and (not isinstance(val, int) or val < 2):
            raise ValueError(f"data.{key} must be an integer >= 2 (or absent), got {val!r}")
    if name == "cifar10":
        if image_size not in (None, 32):
            raise ValueError(f"CIFAR-10 images are 32 x 32; data.image_size={image_size} is not "
                             f"supported (leave it out or set 32)")
        tar = fetch_cifar10(root) if download else Path(root) / CIFAR10_FILE
        train = _subset(read_cifar10(tar, "train"), n, seed)
        held = _subset(read_cifar10(tar, "test"), n_heldout, seed + 1)
    elif name == "celeba":
        kw = dict(size=image_size or 64, strict=celeba_strict, workers=workers)
        train = load_celeba(root, "train", n=n, seed=seed, download=celeba_torchvision, **kw)
        held = load_celeba(root, "test", n=n_heldout, seed=seed + 1, **kw)
    elif name == "offline_cifar":
        train = offline_cifar_like(n or 2000, seed=seed, size=image_size or 32)
        held = offline_cifar_like(n_heldout or n or 2000, seed=seed + 1, size=image_size or 32)
    else:
        k = n_heldout or 20
        if k >= 100 or (n is not None and n + k > 100):
            raise ValueError(f"offline_faces has 100 faces: data.n ({n}) + data.n_heldout ({k}) "
                             f"must not exceed 100")
        faces = offline_faces(size=image_size or 64, n=100)
        train, held = faces[: n or 100 - k], faces[100 - k:]
    out_path = Path(out_path)
    with atomic_path(out_path, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, images=train, heldout=held, name=np.str_(name), split=np.str_("train"),
                 heldout_split=np.str_(HELDOUT_SPLITS[name]), source=np.str_(SOURCES[name]),
                 stand_in=np.bool_(name.startswith("offline")))
    return out_path


def _subset(images: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    if n is None or n >= len(images):
        return images
    return images[np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False))]


def load_heldout(path: str | os.PathLike) -> np.ndarray:
    """The held-out real images (uint8 [N, H, W, 3]) of an npz from ``prepare_image_splits``."""
    load_image_dataset(path)  # existence, readability, the training images' checks
    with np.load(Path(path), allow_pickle=False) as z:
        if "heldout" not in z.files:
            raise ImageDataError(f"{path} has no 'heldout' array; it was written by "
                                 f"prepare_image_dataset, not prepare_image_splits: delete it "
                                 f"and rerun the data step")
        held = z["heldout"]
    _check_images(held, f"{path} (heldout)")
    return held


def load_image_dataset(path: str | os.PathLike) -> np.ndarray:
    """The uint8 [N, H, W, 3] images of an npz written by ``prepare_image_dataset``."""
    path = require_file(path, ImageDataError, "image data set",
                        "prepare it first (prepare_image_dataset or the data_* rule)")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z.files:
                raise ImageDataError(f"{path} has no 'images' array (keys: {z.files}); it was not "
                                     f"written by prepare_image_dataset: delete it and rerun")
            images = z["images"]
    except ImageDataError:
        raise
    except Exception as exc:  # BadZipFile, EOFError, ValueError for object arrays ...
        raise ImageDataError(f"{path} cannot be read ({type(exc).__name__}: {exc}); it is truncated "
                             f"or corrupt: delete it and rerun the data step") from exc
    _check_images(images, str(path))
    return images


def read_image_meta(path: str | os.PathLike) -> dict:
    """Provenance stored beside the images: name, split, source, stand_in."""
    load_image_dataset(path)  # the same checks and messages
    with np.load(Path(path), allow_pickle=False) as z:
        return {k: z[k].item() for k in ("name", "split", "source", "stand_in") if k in z.files}


def _check_images(images: np.ndarray, what: str) -> None:
    if images.dtype != np.uint8:
        raise ImageDataError(f"{what}: images are {images.dtype}, expected uint8 in [0, 255]")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ImageDataError(f"{what}: images have shape {images.shape}, expected [N, H, W, 3]")
    if images.shape[0] == 0:
        raise ImageDataError(f"{what}: the data set is empty; rerun the data step")


# ----------------------------------------------------------------------------- training pairs

class ImagePairs:
    """Training pairs for images: (None, x1 in [-1, 1] of shape (B, 3, H, W), None).

    x0 is None: the trainer draws N(0, I). Batches are drawn with replacement from a preloaded
    uint8 tensor (put it on the GPU with ``device``: CIFAR-10 takes 150 MB); ``hflip`` mirrors
    each image with probability 1/2 (CIFAR-10). All randomness comes from ``generator``.
    """

    n_cond = 0

    def __init__(self, images: np.ndarray | torch.Tensor, hflip: bool = False,
                 device: str | torch.device = "cpu") -> None:
        arr = images.cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        _check_images(arr, "ImagePairs")
        self.data = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).contiguous()
        self.data = self.data.to(device)
        self.hflip = hflip
        self.data_shape = tuple(self.data.shape[1:])

    @classmethod
    def from_npz(cls, path: str | os.PathLike, hflip: bool = False,
                 device: str | torch.device = "cpu") -> ImagePairs:
        return cls(load_image_dataset(path), hflip=hflip, device=device)

    def __len__(self) -> int:
        return self.data.shape[0]

    @property
    def device(self) -> torch.device:
        return self.data.device

    def to(self, device: str | torch.device) -> ImagePairs:
        """Move the uint8 images to ``device`` (the trainer does: indices, flips and the
        conversion to floats then run there, with no host-to-device copy per batch)."""
        self.data = self.data.to(device)
        return self

    def sample_batch(self, batch_size: int, generator: torch.Generator):
        gdev = generator.device
        idx = torch.randint(0, self.data.shape[0], (batch_size,), generator=generator, device=gdev)
        x = self.data[idx.to(self.data.device)]
        if self.hflip:
            flip = torch.rand(batch_size, generator=generator, device=gdev) < 0.5
            x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
        return None, x.float().div_(127.5).sub_(1.0), None


__all__ = ["DownloadError", "ImageDataError", "ImagePairs", "check_celeba", "fetch_cifar10",
           "load_celeba", "load_heldout", "load_image_dataset", "offline_cifar_like", "offline_faces",
           "prepare_image_dataset", "prepare_image_splits", "read_cifar10", "read_image_meta"]
