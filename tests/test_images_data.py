"""Image data: CIFAR-10 tarball reader and fetch, CelebA placed by hand, stand-ins, npz, pairs."""

import hashlib
import http.server
import io
import pickle
import tarfile
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from idff.data import images as im
from idff.data.download import DownloadError

# ----------------------------------------------------------------------------- CIFAR-10 fixtures

def _batch(n: int, offset: int) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(offset)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    batch = {b"batch_label": b"fake", b"labels": list(range(n)), b"data": data,
             b"filenames": [f"img{offset}_{i}.png".encode() for i in range(n)]}
    return batch, data


def make_fake_cifar(path: Path, n: int = 3, skip: tuple[str, ...] = (),
                    extra: dict[str, bytes] | None = None) -> dict[str, np.ndarray]:
    """A tarball in the CIFAR-10 python layout; returns the raw [n, 3072] data per batch."""
    raw = {}
    with tarfile.open(path, "w:gz") as tar:
        names = [*im.CIFAR10_BATCHES["train"], *im.CIFAR10_BATCHES["test"]]
        for k, name in enumerate(names):
            if name in skip:
                continue
            batch, raw[name] = _batch(n, k)
            blob = (extra or {}).get(name) or pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return raw


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def serve(tmp_path):
    """Serve a folder on 127.0.0.1; yields the base URL."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_reuses_verified_tarball_and_reads_layout(tmp_path, no_network):
    tar = tmp_path / im.CIFAR10_FILE
    raw = make_fake_cifar(tar, n=3)
    got = im.fetch_cifar10(tmp_path, md5=_md5(tar), size=tar.stat().st_size)
    assert got == tar
    train = im.read_cifar10(got, "train")
    assert train.shape == (15, 32, 32, 3) and train.dtype == np.uint8
    # CIFAR rows are 1024 red, 1024 green, 1024 blue values, each row-major 32 x 32
    d = raw["data_batch_2"][1]
    img = train[3 + 1]
    assert img[0, 0, 0] == d[0] and img[0, 0, 1] == d[1024] and img[0, 0, 2] == d[2048]
    assert img[5, 7, 2] == d[2048 + 5 * 32 + 7]
    test = im.read_cifar10(got, "test")
    assert np.array_equal(test, raw["test_batch"].reshape(3, 3, 32, 32).transpose(0, 2, 3, 1))


def test_checksum_failure_is_rejected(tmp_path, serve):
    www, url = serve
    make_fake_cifar(www / im.CIFAR10_FILE)
    with pytest.raises(DownloadError, match="does not match"):
        im.fetch_cifar10(tmp_path / "data", url=f"{url}/{im.CIFAR10_FILE}", md5="0" * 32,
                         size=None, allow_http=True, retries=1)
    assert not (tmp_path / "data" / im.CIFAR10_FILE).exists()


def test_truncated_download_is_rejected(tmp_path, serve):
    www, url = serve
    full = tmp_path / "full.tar.gz"
    make_fake_cifar(full)
    (www / im.CIFAR10_FILE).write_bytes(full.read_bytes()[:-100])
    with pytest.raises(DownloadError, match="truncated"):
        im.fetch_cifar10(tmp_path / "data", url=f"{url}/{im.CIFAR10_FILE}", md5=_md5(full),
                         size=full.stat().st_size, allow_http=True, retries=1)
    assert not (tmp_path / "data" / im.CIFAR10_FILE).exists()


def test_truncated_tarball_gives_clear_error(tmp_path):
    tar = tmp_path / im.CIFAR10_FILE
    make_fake_cifar(tar, n=50)
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 2])
    with pytest.raises(im.ImageDataError, match="truncated or corrupt"):
        im.read_cifar10(tar)


def test_missing_batch_and_missing_file(tmp_path):
    tar = tmp_path / im.CIFAR10_FILE
    make_fake_cifar(tar, skip=("data_batch_3",))
    with pytest.raises(im.ImageDataError, match="data_batch_3"):
        im.read_cifar10(tar, "train")
    assert im.read_cifar10(tar, "test").shape == (3, 32, 32, 3)
    with pytest.raises(im.ImageDataError, match="fetch_cifar10"):
        im.read_cifar10(tmp_path / "nope.tar.gz")


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/idff-test-evil-pickle"),))


def test_pickles_with_code_are_refused(tmp_path):
    marker = Path("/tmp/idff-test-evil-pickle")
    marker.unlink(missing_ok=True)
    tar = tmp_path / im.CIFAR10_FILE
    make_fake_cifar(tar, extra={"test_batch": pickle.dumps({b"data": _Evil()}, protocol=2)})
    with pytest.raises(im.ImageDataError, match="refusing"):
        im.read_cifar10(tar, "test")
    assert not marker.exists()


# ----------------------------------------------------------------------------- CelebA

def _fake_celeba(root: Path, parts=(0, 0, 0, 0, 1, 2), missing=()) -> None:
    (root / im.CELEBA_IMG_DIR).mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i, p in enumerate(parts, 1):
        name = f"{i:06d}.jpg"
        lines.append(f"{name} {p}")
        if i not in missing:
            arr = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / im.CELEBA_IMG_DIR / name, quality=95)
    (root / im.CELEBA_PARTITION).write_text("\n".join(lines) + "\n")


def test_celeba_missing_gives_instructions(tmp_path):
    with pytest.raises(im.ImageDataError) as exc:
        im.check_celeba(tmp_path)
    msg = str(exc.value)
    assert "img_align_celeba" in msg and "list_eval_partition.txt" in msg
    assert "mmlab.ie.cuhk.edu.hk" in msg and str(tmp_path) in msg


def test_celeba_placed_by_hand_matches_torchvision_transforms(tmp_path):
    from torchvision import transforms
    _fake_celeba(tmp_path / "celeba")  # torchvision's layout root/celeba/...
    paths = im.check_celeba(tmp_path, "train", strict=False)
    assert [p.name for p in paths] == ["000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg"]
    with pytest.raises(im.ImageDataError, match="162,770"):
        im.check_celeba(tmp_path, "train", strict=True)
    imgs = im.load_celeba(tmp_path, "train", size=64, strict=False)
    assert imgs.shape == (4, 64, 64, 3) and imgs.dtype == np.uint8
    tv = transforms.Compose([transforms.Resize(64), transforms.CenterCrop(64)])
    with Image.open(paths[2]) as ref:
        expected = np.asarray(tv(ref.convert("RGB")))
    assert np.array_equal(imgs[2], expected)
    assert im.load_celeba(tmp_path, "train", size=64, n=2, strict=False).shape == (2, 64, 64, 3)


def test_celeba_incomplete_files(tmp_path):
    _fake_celeba(tmp_path, missing=(3,))
    with pytest.raises(im.ImageDataError, match="1 of the 4 train images are missing"):
        im.check_celeba(tmp_path, strict=False)
    (tmp_path / im.CELEBA_PARTITION).write_text("000001.jpg 0\nbroken line here\n")
    with pytest.raises(im.ImageDataError, match=":2:"):
        im.check_celeba(tmp_path, strict=False)


def test_celeba_torchvision_failure_falls_back_to_instructions(tmp_path, monkeypatch):
    import torchvision.datasets

    def refused(*a, **k):
        raise RuntimeError("Too many users have viewed or downloaded this file recently")
    monkeypatch.setattr(torchvision.datasets, "CelebA", refused)
    with pytest.raises(im.ImageDataError, match="(?s)Too many users.*place the files by hand"):
        im.load_celeba(tmp_path, download=True)


# ----------------------------------------------------------------------------- stand-ins

def test_offline_cifar_like():
    a = im.offline_cifar_like(64, seed=1)
    assert a.shape == (64, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, im.offline_cifar_like(64, seed=1))
    assert not np.array_equal(a, im.offline_cifar_like(64, seed=2))
    assert a.reshape(64, -1).std(axis=1).mean() > 10  # real textures, not flat patches
    assert len({x.tobytes() for x in a}) == 64
    # colour: the channels differ (RGB photos, not grey)
    assert np.abs(a[..., 0].astype(int) - a[..., 2]).mean() > 5


def test_offline_faces():
    import skimage.data
    f = im.offline_faces(64)
    assert f.shape == (100, 64, 64, 3) and f.dtype == np.uint8
    assert np.array_equal(f[..., 0], f[..., 2])
    lfw = skimage.data.lfw_subset()[:100]
    assert abs(f.mean() / 255 - lfw.mean()) < 0.01
    assert im.offline_faces(32, n=10).shape == (10, 32, 32, 3)
    with pytest.raises(ValueError, match="100 faces"):
        im.offline_faces(32, n=101)


# ----------------------------------------------------------------------------- npz store

def test_prepare_and_load_round_trip(tmp_path):
    out = im.prepare_image_dataset("offline_cifar", tmp_path / "d.npz", n=20, seed=3)
    assert np.array_equal(im.load_image_dataset(out), im.offline_cifar_like(20, seed=3))
    meta = im.read_image_meta(out)
    assert meta["stand_in"] is True and "STAND-IN" in meta["source"]
    faces = im.prepare_image_dataset("offline_faces", tmp_path / "f.npz", image_size=32)
    assert im.load_image_dataset(faces).shape == (100, 32, 32, 3)
    assert list(tmp_path.glob(".*")) == []  # no temporary files left behind


def test_prepare_cifar10_from_placed_tarball(tmp_path, no_network):
    make_fake_cifar(tmp_path / im.CIFAR10_FILE)
    out = im.prepare_image_dataset("cifar10", tmp_path / "c.npz", root=tmp_path, download=False,
                                   n=7, seed=0)
    imgs = im.load_image_dataset(out)
    assert imgs.shape == (7, 32, 32, 3)
    assert im.read_image_meta(out)["stand_in"] is False


def test_load_errors(tmp_path):
    with pytest.raises(im.ImageDataError, match="does not exist"):
        im.load_image_dataset(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(im.ImageDataError, match="truncated or corrupt"):
        im.load_image_dataset(bad)
    np.savez(tmp_path / "f.npz", images=np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(im.ImageDataError, match="float32"):
        im.load_image_dataset(tmp_path / "f.npz")
    np.savez(tmp_path / "e.npz", images=np.zeros((0, 4, 4, 3), np.uint8))
    with pytest.raises(im.ImageDataError, match="empty"):
        im.load_image_dataset(tmp_path / "e.npz")
    np.savez(tmp_path / "k.npz", x=np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(im.ImageDataError, match="no 'images'"):
        im.load_image_dataset(tmp_path / "k.npz")
    with pytest.raises(ValueError, match="unknown image data set"):
        im.prepare_image_dataset("mnist", tmp_path / "m.npz")


# ----------------------------------------------------------------------------- pairs

def _asymmetric(n: int) -> np.ndarray:
    x = np.zeros((n, 8, 8, 3), np.uint8)
    for i in range(n):
        x[i, :, : i + 1] = 255  # a bright bar on the left, of width i + 1
        x[i, 0, 0, 1] = 10 * i
    return x


def test_image_pairs_protocol_and_values():
    data = _asymmetric(5)
    pairs = im.ImagePairs(data)
    assert pairs.data_shape == (3, 8, 8) and pairs.n_cond == 0 and len(pairs) == 5
    x0, x1, cond = pairs.sample_batch(16, torch.Generator().manual_seed(0))
    assert x0 is None and cond is None
    assert x1.shape == (16, 3, 8, 8) and x1.dtype == torch.float32
    assert x1.min() == -1.0 and x1.max() == 1.0
    ref = torch.from_numpy(data).permute(0, 3, 1, 2).float() / 127.5 - 1
    for x in x1:  # each sample is one of the images, never flipped without hflip
        assert any(torch.equal(x, r) for r in ref)
    _, again, _ = pairs.sample_batch(16, torch.Generator().manual_seed(0))
    assert torch.equal(x1, again)


def test_image_pairs_flips():
    data = _asymmetric(3)
    ref = torch.from_numpy(data).permute(0, 3, 1, 2).float() / 127.5 - 1
    pairs = im.ImagePairs(data, hflip=True)
    _, x1, _ = pairs.sample_batch(400, torch.Generator().manual_seed(1))
    flipped = sum(any(torch.equal(x, r.flip(-1)) for r in ref) for x in x1)
    plain = sum(any(torch.equal(x, r) for r in ref) for x in x1)
    assert flipped + plain == 400
    assert 150 < flipped < 250  # p = 1/2
    with pytest.raises(im.ImageDataError, match="uint8"):
        im.ImagePairs(data.astype(np.float32))
