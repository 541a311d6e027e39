"""CIFAR-10 for the course: the real dataset (verified), a synthetic stand-in for fast mode, two loaders.

``load_cifar10`` returns the train / validation / test splits as uint8 arrays. Full mode always uses
the real dataset (downloaded into ``data/`` by ``torchvision.datasets.CIFAR10`` and checked against its
MD5 sums) and raises ``CifarUnavailableError`` when it cannot be had: it never substitutes other data.
Fast mode (``COURSE_FAST=1``) uses the real data when it is already in ``data/`` and otherwise a
generated stand-in with CIFAR-10's shapes, dtype and class names; everything built on it is tagged
SYNTHETIC. ``COURSE_CIFAR10_SYNTHETIC=1`` forces the stand-in in any mode (a labelled override for
checking that code runs; its numbers are not CIFAR-10 results).

Two ways to feed a model: ``make_dataloaders`` (Dataset of PIL images + transforms + DataLoader, as in
the notes) and ``make_device_loaders`` (the whole uint8 dataset as one tensor on the device, shuffled,
cropped, flipped and normalised there, a batch at a time).
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from .checks import expect_positive_int, expect_shape, expect_tensor
from .device import get_device
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
Batch = tuple[torch.Tensor, torch.Tensor]
Transform = Callable[[Image.Image], Any]


class CifarUnavailableError(RuntimeError):
    """CIFAR-10 is not in the data folder and could not be downloaded."""


@dataclass
class CifarSplits:
    """Train / validation / test images as uint8 (N, 32, 32, 3) arrays with int64 labels."""

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]
    synthetic: bool
    source: str

    @property
    def tag(self) -> str:
        """``" [SYNTHETIC]"`` for the stand-in, ``""`` for real CIFAR-10: append it to titles and labels."""
        return f" [{SYNTHETIC_TAG}]" if self.synthetic else ""

    def describe(self) -> str:
        """One line naming the data and the split sizes."""
        kind = "SYNTHETIC stand-in for CIFAR-10 (not real images)" if self.synthetic else "CIFAR-10"
        return (f"{kind}: train {len(self.train_labels)}, validation {len(self.val_labels)}, "
                f"test {len(self.test_labels)} images of 32x32x3 uint8; source: {self.source}")

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The (images (N, 32, 32, 3) uint8, labels (N,) int64) arrays of ``"train"``, ``"val"`` or ``"test"``."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        return getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")

    def tensors(self, split: str) -> Batch:
        """Images as a uint8 (N, 3, 32, 32) tensor (channels first, like ``ToTensor``) and int64 labels."""
        images, labels = self.arrays(split)
        return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)

    def dataset(self, split: str, transform: Transform | None = None) -> ArrayImageDataset:
        """A torchvision-style Dataset of PIL images for ``split``, passed through ``transform``."""
        images, labels = self.arrays(split)
        return ArrayImageDataset(images, labels, self.classes, transform)


class ArrayImageDataset(Dataset):
    """Serve uint8 (N, H, W, 3) images as PIL images, like ``torchvision.datasets.CIFAR10`` does."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: Sequence[str],
                 transform: Transform | None = None) -> None:
        """Args: images (N, H, W, 3) uint8; labels (N,) ints; classes: names; transform: applied to each PIL image."""
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.data, self.targets = images, [int(t) for t in labels]
        self.classes, self.transform = list(classes), transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = Image.fromarray(self.data[index])  # one Python object per image: the slow part
        return (self.transform(image) if self.transform else image), self.targets[index]


# ----------------------------------------------------------------------------- real CIFAR-10

def offline_message(root: Path, reason: str) -> str:
    """The instructions shown when CIFAR-10 is missing: archive name, MD5, URL and target folder."""
    archive = root / CIFAR10_ARCHIVE
    note = (f"\n  (a file {archive} exists but its MD5 does not match: it is incomplete or corrupt; replace it)"
            if archive.exists() else "")
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

    root = Path(root or data_dir())
    return all(tv_utils.check_integrity(str(root / CIFAR10_FOLDER / name), md5)
               for name, md5 in CIFAR10.train_list + CIFAR10.test_list)


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
                    tv_utils.download_and_extract_archive(CIFAR10_URL, str(root), filename=CIFAR10_ARCHIVE,
                                                          md5=CIFAR10_MD5)
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
    return (train.data, np.asarray(train.targets, dtype=np.int64),
            test.data, np.asarray(test.targets, dtype=np.int64))


# ----------------------------------------------------------------------------- synthetic stand-in

# One colour per class (RGB in [0, 1]); similar classes get similar colours so the task is not trivial.
_PALETTE = torch.tensor([[0.55, 0.70, 0.90], [0.80, 0.20, 0.20], [0.75, 0.60, 0.30], [0.85, 0.55, 0.25],
                         [0.60, 0.45, 0.30], [0.75, 0.55, 0.35], [0.35, 0.65, 0.30], [0.50, 0.35, 0.25],
                         [0.20, 0.30, 0.60], [0.55, 0.55, 0.55]])


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
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")  # (32, 32)
    images = np.empty((n, 32, 32, 3), dtype=np.uint8)
    for start in range(0, n, 2048):  # in chunks: bounded memory for 50k images
        c = labels[start:start + 2048]
        b = c.numel()

        def rand(*shape: int) -> torch.Tensor:
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
        images[start:start + b] = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return images, labels.numpy().astype(np.int64)


def _synthetic_requested(synthetic: bool | None) -> bool:
    return synthetic if synthetic is not None else env_flag(SYNTHETIC_ENV)


def load_cifar10(root: str | os.PathLike | None = None, *, sizes: tuple[int, int, int] | None = None,
                 download: bool = True, synthetic: bool | None = None, seed: int = 0) -> CifarSplits:
    """Load CIFAR-10 (or, in fast mode without it, the synthetic stand-in) split into train/val/test.

    Args:
        root: the data folder (default ``course_utils.paths.data_dir()``).
        sizes: (train, validation, test) image counts; default 45000 / 5000 / 10000. The validation
            images are a seeded random part of the 50k training set, disjoint from the train part.
        download: fetch the archive when it is missing (full mode only ever tries the real data).
        synthetic: True forces the stand-in, False forces the real data; None decides by mode (and
            ``COURSE_CIFAR10_SYNTHETIC``).
        seed: seeds the train/validation split.

    Raises:
        CifarUnavailableError: the real data is needed but missing and cannot be downloaded.
    """
    root = Path(root or data_dir())
    n_train, n_val, n_test = sizes or FULL_SIZES
    for value, name in ((n_train, "train size"), (n_val, "validation size"), (n_test, "test size")):
        expect_positive_int(value, name)
    if n_train + n_val > 50_000 or n_test > 10_000:
        raise ValueError(f"CIFAR-10 has 50000 training and 10000 test images; asked for {sizes}")
    forced = _synthetic_requested(synthetic)
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
    order = torch.randperm(len(pool_y), generator=torch.Generator().manual_seed(seed))
    val_idx = order[:n_val].sort().values.numpy()
    train_idx = order[n_val:n_val + n_train].sort().values.numpy()
    return CifarSplits(pool_x[train_idx], pool_y[train_idx], pool_x[val_idx], pool_y[val_idx],
                       test_x[:n_test], test_y[:n_test], CIFAR10_CLASSES, not use_real, source)


# ----------------------------------------------------------------------------- DataLoader path

def image_transforms(augment: bool, mean: Sequence[float] = CIFAR10_MEAN,
                     std: Sequence[float] = CIFAR10_STD) -> Transform:
    """torchvision transforms for PIL images: [random crop (padding 4) + flip,] ToTensor, Normalize."""
    from torchvision import transforms as T

    steps = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if augment else []
    return T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std)])


def make_dataloaders(data: CifarSplits, batch_size: int, *, device: torch.device | str | None = None,
                     augment: bool = True, num_workers: int = 0, seed: int = 0,
                     eval_batch_size: int | None = None) -> tuple[DataLoader, DataLoader, DataLoader]:
    """The classic input path: Dataset of PIL images + transforms + DataLoader for train, val, test.

    Args:
        data: from ``load_cifar10``.
        batch_size: training batch size (evaluation uses ``eval_batch_size``, default 2x).
        device: on CUDA the batches are put in pinned memory so ``.to(device, non_blocking=True)`` overlaps.
        augment: random crop and flip on the training split.
        num_workers: worker processes preparing batches (0: in the training process).
        seed: seeds the shuffling generator (``loader.generator``; its state goes into checkpoints).
    """
    expect_positive_int(batch_size, "batch_size")
    pin = get_device(device).type == "cuda"
    eval_bs = eval_batch_size or 2 * batch_size
    common = {"num_workers": num_workers, "pin_memory": pin, "persistent_workers": num_workers > 0}
    train = DataLoader(data.dataset("train", image_transforms(augment)), batch_size=batch_size, shuffle=True,
                       generator=torch.Generator().manual_seed(seed), **common)
    val = DataLoader(data.dataset("val", image_transforms(False)), batch_size=eval_bs, **common)
    test = DataLoader(data.dataset("test", image_transforms(False)), batch_size=eval_bs, **common)
    return train, val, test


# ----------------------------------------------------------------------------- device-resident path

def random_crop(images: torch.Tensor, offsets: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Zero-pad each image by ``padding`` and cut the window starting at its (row, column) offset.

    Args:
        images: (B, C, H, W), any dtype.
        offsets: (B, 2) integers in [0, 2 * padding]: top and left of the window in the padded image.
        padding: pixels of zeros added on every side.

    Returns:
        (B, C, H, W): the same size as the input.
    """
    expect_shape(images, ("B", None, None, None), "images")
    expect_shape(offsets, ("B", 2), "offsets")
    b, c, h, w = images.shape
    width = w + 2 * padding
    padded = F.pad(images, (padding, padding, padding, padding)).flatten(2)  # (B, C, (H+2p) * (W+2p))
    offsets = offsets.to(images.device)
    rows = offsets[:, 0, None] + torch.arange(h, device=images.device)  # (B, H)
    cols = offsets[:, 1, None] + torch.arange(w, device=images.device)  # (B, W)
    index = (rows[:, :, None] * width + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)  # flat positions
    return padded.gather(2, index).view(b, c, h, w)  # one gather for the whole batch, no Python loop


def flip_horizontal(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images whose entry in the boolean (B,) ``mask`` is True."""
    expect_shape(images, ("B", None, None, None), "images")
    expect_shape(mask, ("B",), "mask")
    return torch.where(mask.to(images.device).view(-1, 1, 1, 1), images.flip(-1), images)


class DeviceLoader:
    """Batches from a uint8 (N, 3, H, W) tensor kept on the device; shuffle and augment happen there.

    Iterating yields (images float32 (B, 3, H, W) normalised, labels int64 (B,)). Each epoch draws its
    order, crop offsets and flips from ``self.generator`` (CPU, seeded), whose state checkpoints save.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int,
                 device: torch.device | str | None = None, shuffle: bool = False, augment: bool = False,
                 padding: int = 4, mean: Sequence[float] = CIFAR10_MEAN, std: Sequence[float] = CIFAR10_STD,
                 seed: int = 0, drop_last: bool = False, channels_last: bool = False) -> None:
        """Args: images uint8 (N, 3, H, W); labels (N,); the rest as named (device default: the images')."""
        expect_tensor(images, "images")
        if images.dtype != torch.uint8:
            raise TypeError(f"images must be uint8 (N, 3, H, W) as stored on disk, got {images.dtype}")
        expect_shape(images, ("N", 3, None, None), "images")
        expect_shape(labels, (images.shape[0],), "labels")
        self.batch_size = expect_positive_int(batch_size, "batch_size")
        self.device = images.device if device is None else get_device(device)
        self.images = images.to(self.device)  # the one big transfer
        self.labels = labels.to(self.device, torch.int64)
        self.shuffle, self.augment, self.padding = shuffle, augment, padding
        self.drop_last, self.channels_last = drop_last, channels_last
        std_t = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._scale = 1.0 / (255.0 * std_t)  # x/255 then (x - mean)/std in one multiply-add
        self._shift = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1) / std_t
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = self.labels.numel()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> float32 ``(x / 255 - mean) / std``."""
        return images.float().mul_(self._scale).sub_(self._shift)

    def __iter__(self) -> Iterator[Batch]:
        n = self.labels.numel()
        g = self.generator
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        if self.augment:  # the whole epoch's randomness in three small draws, then one copy each
            offsets = torch.randint(0, 2 * self.padding + 1, (n, 2), generator=g).to(self.device)
            flips = (torch.rand(n, generator=g) < 0.5).to(self.device)
        order = order.to(self.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.images[idx]  # (B, 3, H, W) uint8, gathered on the device
            if self.augment:
                x = random_crop(x, offsets[start:start + len(idx)], self.padding)
                x = flip_horizontal(x, flips[start:start + len(idx)])
            x = self.normalize(x)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]


def make_device_loaders(data: CifarSplits, batch_size: int, *, device: torch.device | str | None = None,
                        augment: bool = True, seed: int = 0, channels_last: bool = False,
                        eval_batch_size: int | None = None) -> tuple[DeviceLoader, DeviceLoader, DeviceLoader]:
    """Device-resident loaders for train (shuffled, optionally augmented), val and test."""
    device = get_device(device)
    eval_bs = eval_batch_size or 2 * batch_size
    loaders = []
    for split in ("train", "val", "test"):
        images, labels = data.tensors(split)
        training = split == "train"
        loaders.append(DeviceLoader(images, labels, batch_size=batch_size if training else eval_bs, device=device,
                                    shuffle=training, augment=augment and training, seed=seed,
                                    channels_last=channels_last))
    return loaders[0], loaders[1], loaders[2]


__all__ = ["CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR10_URL", "CIFAR10_ARCHIVE", "CIFAR10_MD5",
           "ArrayImageDataset", "CifarSplits", "CifarUnavailableError", "DeviceLoader", "cifar10_present",
           "flip_horizontal", "image_transforms", "load_cifar10", "make_dataloaders", "make_device_loaders",
           "offline_message", "random_crop", "synthetic_cifar10"]
