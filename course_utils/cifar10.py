"""CIFAR-10 for the course: the real dataset (verified), a synthetic stand-in for fast mode.

``load_cifar10`` returns the train / validation / test splits as an ``ImageSplits`` of uint8 arrays,
normalised with CIFAR-10's published per-channel mean and std. Full mode always uses the real dataset
(downloaded into ``data_dir()`` by ``torchvision.datasets.CIFAR10`` and checked against its MD5 sums) and
raises ``CifarUnavailableError`` when it cannot be had: it never substitutes other data. Fast mode
(``COURSE_FAST=1``) uses the real data when it is already there and otherwise a generated stand-in with
CIFAR-10's shapes, dtype and class names; everything built on it is tagged SYNTHETIC.
``COURSE_CIFAR10_SYNTHETIC=1`` forces the stand-in in any mode (a labelled override for checking that code
runs; its numbers are not CIFAR-10 results).
"""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path

import numpy as np
import torch

from .checks import expect_path, expect_positive_int
from .images import ImageSplits, _as_int, _expect_bool, seeded_split
from .mode import env_flag, fast_mode
from .paths import data_dir

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # per-channel mean of the 50k training images, pixels in [0, 1]
CIFAR10_STD = (0.2470, 0.2435, 0.2616)  # per-channel standard deviation of the same pixels
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
FULL_SIZES = (45_000, 5_000, 10_000)  # train, validation, test
SYNTHETIC_ENV = "COURSE_CIFAR10_SYNTHETIC"
SYNTHETIC_TAG = "SYNTHETIC"
DOWNLOAD_TIMEOUT_S = 60  # seconds without data before a download attempt gives up


class CifarUnavailableError(RuntimeError):
    """CIFAR-10 is not in the data folder and could not be downloaded."""


CifarSplits = ImageSplits  # the former name of the container; load_cifar10 returns an ImageSplits


# ----------------------------------------------------------------------------- real CIFAR-10


def offline_message(root: Path, reason: str) -> str:
    """The instructions shown when CIFAR-10 is missing: archive name, MD5, URL and target folder."""
    root = expect_path(root, "root", "folder path")
    archive = root / CIFAR10_ARCHIVE
    note = (
        f"\n  (a file {archive} exists but its MD5 does not match: it is incomplete or corrupt; replace it)"
        if archive.exists()
        else ""
    )
    return (
        f"CIFAR-10 is not in {root} and could not be obtained ({reason}).\n"
        "Full mode trains on the real dataset and never substitutes other data. To install it by hand:\n"
        f"  1. download {CIFAR10_URL} (about 163 MiB) on a machine with internet access;\n"
        f"  2. check that the MD5 of {CIFAR10_ARCHIVE} is {CIFAR10_MD5} (e.g. `md5sum {CIFAR10_ARCHIVE}`);\n"
        f"  3. put the file, unchanged, into the folder {root} (set COURSE_DATA to use another folder);\n"
        f"  4. run again: it is verified and extracted to {root / CIFAR10_FOLDER}."
        f"{note}\nFor a quick run without it, use fast mode (COURSE_FAST=1): a SYNTHETIC stand-in."
    )


def cifar10_present(root: Path | None = None) -> bool:
    """True when every CIFAR-10 batch file is in ``root`` with the right MD5 sum."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets import utils as tv_utils

    root = expect_path(root, "root", "folder path") if root is not None else data_dir()
    return all(
        tv_utils.check_integrity(str(root / CIFAR10_FOLDER / name), md5)
        for name, md5 in CIFAR10.train_list + CIFAR10.test_list
    )


def _load_real(root: Path, download: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from torchvision.datasets import CIFAR10
    from torchvision.datasets import utils as tv_utils  # looked up at call time so tests can patch it

    if not cifar10_present(root):
        archive = root / CIFAR10_ARCHIVE
        try:
            if tv_utils.check_integrity(str(archive), CIFAR10_MD5):  # placed by hand: extract, no network
                tv_utils.extract_archive(str(archive), str(root))
            elif download:
                root.mkdir(parents=True, exist_ok=True)
                previous = socket.getdefaulttimeout()
                socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a silent firewall fails instead of hanging
                try:
                    tv_utils.download_and_extract_archive(
                        CIFAR10_URL, str(root), filename=CIFAR10_ARCHIVE, md5=CIFAR10_MD5
                    )
                finally:
                    socket.setdefaulttimeout(previous)
            else:
                raise FileNotFoundError("download=False")
        except Exception as err:  # noqa: BLE001 - URLError, OSError, checksum errors: all mean "not here"
            raise CifarUnavailableError(offline_message(root, f"{type(err).__name__}: {err}")) from err
    try:
        train = CIFAR10(str(root), train=True, download=False)  # verifies every file's MD5 again
        test = CIFAR10(str(root), train=False, download=False)
    except RuntimeError as err:
        raise CifarUnavailableError(offline_message(root, f"integrity check failed: {err}")) from err
    return (train.data, np.asarray(train.targets, dtype=np.int64), test.data, np.asarray(test.targets, dtype=np.int64))


# ----------------------------------------------------------------------------- synthetic stand-in

# One colour per class (RGB in [0, 1]); similar classes get similar colours so the task is not trivial.
_PALETTE = torch.tensor(
    [
        [0.55, 0.70, 0.90],
        [0.80, 0.20, 0.20],
        [0.75, 0.60, 0.30],
        [0.85, 0.55, 0.25],
        [0.60, 0.45, 0.30],
        [0.75, 0.55, 0.35],
        [0.35, 0.65, 0.30],
        [0.50, 0.35, 0.25],
        [0.20, 0.30, 0.60],
        [0.55, 0.55, 0.55],
    ]
)


def synthetic_cifar10(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n`` CIFAR-shaped images whose class shows in a colour and a stripe direction.

    Each image is a noisy background tinted towards the class colour with a soft striped disc at a
    random place; the disc's colour (jittered), the direction of its stripes (10 degrees apart between
    classes, randomly mirrored so that a horizontal flip keeps the class) and their spacing depend on the
    class. Similar classes get similar colours, so it is not trivial.

    Args:
        n: number of images.
        seed: the generator seed; the same seed gives the same images.

    Returns:
        images (n, 32, 32, 3) uint8 and labels (n,) int64, like ``torchvision.datasets.CIFAR10``.
    """
    expect_positive_int(n, "n")
    g = torch.Generator().manual_seed(_as_int(seed, "seed"))
    labels = torch.randint(0, 10, (n,), generator=g)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")  # (32, 32)
    images = np.empty((n, 32, 32, 3), dtype=np.uint8)
    for start in range(0, n, 2048):  # in chunks: bounded memory for 50k images
        c = labels[start : start + 2048]
        b = c.numel()

        def rand(*shape: int, b: int = b) -> torch.Tensor:  # b bound now: one chunk's uniform draws
            return torch.rand(b, *shape, generator=g)

        palette = _PALETTE[c].view(b, 3, 1, 1)
        tint = 0.45 * palette + 0.55 * (0.2 + 0.6 * rand(3, 1, 1))  # background leans to the class colour
        background = tint + 0.3 * (yy / 31 - 0.5) * (rand(1, 1, 1) - 0.5)  # (b, 3, 32, 32)
        cy, cx, radius = 8 + 16 * rand(1, 1), 8 + 16 * rand(1, 1), 6 + 5 * rand(1, 1)  # (b, 1, 1)
        disc = torch.sigmoid((radius**2 - (yy - cy) ** 2 - (xx - cx) ** 2) / (2 * radius))  # (b, 32, 32)
        # stripes at 10 * c degrees, mirrored at random so that a horizontal flip keeps the class;
        # even and odd classes also differ in stripe frequency
        angle = (c.float() * math.pi / 18).view(b, 1, 1)
        mirror = torch.where(rand(1, 1) < 0.5, -1.0, 1.0)
        frequency = torch.where(c % 2 == 0, 1.0, 1.5).view(b, 1, 1)
        along = mirror * (xx - 15.5) * torch.cos(angle) + yy * torch.sin(angle)
        wave = torch.cos(frequency * along + 2 * math.pi * rand(1, 1))  # (b, 32, 32)
        colour = palette + 0.12 * torch.randn(b, 3, 1, 1, generator=g)
        obj = colour * (0.65 + 0.35 * wave.unsqueeze(1))  # (b, 3, 32, 32)
        mask = disc.unsqueeze(1)
        pixels = background * (1 - mask) + obj * mask + 0.08 * torch.randn(b, 3, 32, 32, generator=g)
        images[start : start + b] = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return images, labels.numpy().astype(np.int64)


def load_cifar10(
    root: str | os.PathLike | None = None,
    *,
    sizes: tuple[int, int, int] | None = None,
    download: bool = True,
    synthetic: bool | None = None,
    seed: int = 0,
) -> ImageSplits:
    """Load CIFAR-10 (or, in fast mode without it, the synthetic stand-in) split into train/val/test.

    Args:
        root: the data folder (default ``course_utils.paths.data_dir()``).
        sizes: (train, validation, test) image counts; default 45000 / 5000 / 10000. The validation
            images are a seeded random part of the 50k training set, disjoint from the train part.
        download: fetch the archive when it is missing (full mode only ever tries the real data).
        synthetic: True forces the stand-in, False forces the real data; None decides by mode (and
            ``COURSE_CIFAR10_SYNTHETIC``, a boolean flag read by ``course_utils.mode.env_flag``).
        seed: seeds the train/validation split (``seeded_split``).

    Returns:
        An ``ImageSplits`` of (N, 32, 32, 3) uint8 images with CIFAR10_MEAN / CIFAR10_STD as its mean and std.

    Raises:
        CifarUnavailableError: the real data is needed but missing and cannot be downloaded.
        TypeError, ValueError: a malformed argument (e.g. ``synthetic="no"``), before anything is loaded.
    """
    if synthetic is not None:
        synthetic = _expect_bool(synthetic, "synthetic (True, False or None)")
    download = _expect_bool(download, "download")
    seed = _as_int(seed, "seed")
    sizes = FULL_SIZES if sizes is None else sizes
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or len(sizes) != 3:
        raise ValueError(f"sizes must be (train, validation, test) image counts, got {sizes!r}")
    n_train, n_val, n_test = (
        expect_positive_int(value, name) for value, name in zip(sizes, ("train size", "validation size", "test size"))
    )
    if n_train + n_val > 50_000 or n_test > 10_000:
        raise ValueError(f"CIFAR-10 has 50000 training and 10000 test images; asked for {tuple(sizes)}")
    root = expect_path(root, "root", "folder path") if root is not None else data_dir()
    forced = env_flag(SYNTHETIC_ENV) if synthetic is None else synthetic  # env_flag raises on unknown values
    use_real = not forced and (synthetic is False or not fast_mode() or cifar10_present(root))
    if use_real:
        pool_x, pool_y, test_x, test_y = _load_real(root, download)
        source = str(root / CIFAR10_FOLDER)
    else:
        if synthetic is None and forced:
            print(f"{SYNTHETIC_ENV} is set: using the SYNTHETIC stand-in, not CIFAR-10.")
        pool_x, pool_y = synthetic_cifar10(n_train + n_val, seed=1234)
        test_x, test_y = synthetic_cifar10(n_test, seed=4321)
        source = "generated in memory by course_utils.data.synthetic_cifar10"
    val_idx, train_idx = seeded_split(len(pool_y), (n_val, n_train), seed)
    name = "CIFAR-10" if use_real else "SYNTHETIC stand-in for CIFAR-10 (not real images)"
    return ImageSplits(
        (pool_x[train_idx], pool_y[train_idx]),
        (pool_x[val_idx], pool_y[val_idx]),
        (test_x[:n_test], test_y[:n_test]),
        CIFAR10_CLASSES,
        name=name,
        source=source,
        synthetic=not use_real,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
    )


__all__ = [
    "CIFAR10_ARCHIVE",
    "CIFAR10_CLASSES",
    "CIFAR10_FOLDER",
    "CIFAR10_MD5",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR10_URL",
    "CifarSplits",
    "CifarUnavailableError",
    "SYNTHETIC_ENV",
    "cifar10_present",
    "load_cifar10",
    "offline_message",
    "synthetic_cifar10",
]
