"""Image data of any size and channel count: checked uint8 arrays, seeded splits and a container for them.

Images are kept as they are stored on disk: uint8 arrays of shape (N, H, W, C), channels last, pixel
values 0..255. Greyscale (N, H, W) and (N, H, W, 1) arrays are the same thing with C = 1. Everything
here runs on the CPU, once, before training; the loaders in ``course_utils.loaders`` turn the arrays
into normalised float batches.

- ``as_image_array`` checks an array and gives it the (N, H, W, C) shape, or says what is wrong;
- ``channel_mean_std`` measures the per-channel mean and standard deviation used to normalise;
- ``seeded_split`` draws disjoint index sets (train / validation / test) from one seeded permutation;
- ``ImageSplits`` holds the three splits, the class names and the normalisation, and describes them;
- ``ArrayImageDataset`` serves an array as a torchvision-style ``Dataset`` of PIL images;
- ``dataset_to_arrays`` reads a dataset of PIL images (``torchvision.datasets.ImageFolder`` on your own
  folder of pictures, MNIST, ...) into such arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .checks import expect_bool as _expect_bool
from .checks import expect_int as _as_int

Transform = Callable[[Any], Any]
SPLITS = ("train", "val", "test")
_PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}  # channel count -> PIL mode; other counts are served as arrays


def as_image_array(images: object, name: str = "images") -> np.ndarray:
    """Check a batch of images and return it as a uint8 (N, H, W, C) array (a view when possible).

    Args:
        images: a NumPy uint8 array of shape (N, H, W) (greyscale), (N, H, W, 1) or (N, H, W, C),
            channels last, as image files and ``torchvision.datasets`` store them.
        name: how the array is called in error messages.

    Raises:
        TypeError: not a NumPy array, or not uint8.
        ValueError: wrong number of dimensions, an empty axis, or a channels-first (N, C, H, W) layout.
    """
    if isinstance(images, torch.Tensor):
        raise TypeError(
            f"{name} must be a NumPy array (N, H, W, C), channels last; got a torch.Tensor. "
            "For a channels-first tensor (N, C, H, W) pass tensor.permute(0, 2, 3, 1).numpy()."
        )
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{name} must be a NumPy uint8 array (N, H, W, C), got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise TypeError(
            f"{name} must be uint8 (pixel values 0..255, as stored on disk), got {images.dtype}; "
            "for floats in [0, 1] use (x * 255).round().astype(np.uint8)"
        )
    if images.ndim == 3:
        images = images[..., None]  # (N, H, W) greyscale -> (N, H, W, 1)
    if images.ndim != 4:
        raise ValueError(f"{name} must have shape (N, H, W) or (N, H, W, C), got {images.shape}")
    n, h, w, c = images.shape
    if min(n, h, w, c) == 0:
        raise ValueError(
            f"{name} must hold at least one image of at least 1x1 pixel and 1 channel, got shape {images.shape}"
        )
    if c > 4 and images.shape[1] <= 4:
        raise ValueError(
            f"{name} of shape {images.shape} looks channels-first (N, C, H, W); images are "
            "expected channels last (N, H, W, C): pass images.transpose(0, 2, 3, 1)"
        )
    return images


def as_label_array(labels: object, n: int, num_classes: int | None = None, name: str = "labels") -> np.ndarray:
    """Check class labels and return them as an int64 (N,) array.

    Args:
        labels: N integer class indices (a list, a NumPy array or a tensor).
        n: the number of images they belong to.
        num_classes: when given, every label must be in [0, num_classes).
    """
    n = _as_int(n, "n")
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    array = np.asarray(labels)
    if array.ndim != 1 or len(array) != n:
        raise ValueError(f"{name} must be one class index per image, shape ({n},); got shape {array.shape}")
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer class indices, got dtype {array.dtype}")
    if n and (array.min() < 0 or (num_classes is not None and array.max() >= num_classes)):
        bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        raise ValueError(f"{name} must be class indices in {bound}; got values from {array.min()} to {array.max()}")
    return array.astype(np.int64, copy=False)


def check_mean_std(
    mean: Sequence[float], std: Sequence[float], channels: int | None = None
) -> tuple[tuple[float, ...], ...]:
    """Check per-channel normalisation constants; return them as two tuples of floats.

    Args:
        mean, std: one value per channel.
        channels: the images' channel count; None: whatever ``mean`` has (``std`` must match it).

    Raises:
        TypeError: not a sequence of numbers.
        ValueError: not one finite value per channel, or a standard deviation that is not positive.
    """
    out = []
    if channels is not None:
        channels = _as_int(channels, "channels", 1)
    against = "the images have" if channels is not None else "mean has"
    for values, what in ((mean, "mean"), (std, "std")):
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray, torch.Tensor)):
            raise TypeError(f"{what} must be a sequence of floats (one per channel), got {values!r}")
        try:
            values = tuple(float(v) for v in values)
        except (TypeError, ValueError):
            raise TypeError(f"{what} must be a sequence of floats (one per channel), got {values!r}") from None
        channels = len(values) if channels is None else channels
        if not values:
            raise ValueError(f"{what} must hold one value per channel, at least one channel; got an empty sequence")
        if len(values) != channels:
            raise ValueError(
                f"{what} has {len(values)} values but {against} {channels} channel(s): "
                f"give one per channel, e.g. {what}={(0.5,) * channels}"
            )
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{what} must be finite numbers, got {values}")
        out.append(values)
    if min(out[1]) <= 0:
        raise ValueError(f"std must be positive in every channel, got {out[1]}")
    return out[0], out[1]


def channel_mean_std(images: np.ndarray, chunk: int = 1 << 22) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) standard deviation of uint8 images, pixels scaled to [0, 1].

    The sums of x and x**2 are exact integers (int64), so the result does not depend on the order or
    the chunking; only the final division is rounded. This is what ``transforms.Normalize`` expects.

    Args:
        images: uint8 (N, H, W) or (N, H, W, C).
        chunk: pixels per step, to bound the memory of the int64 copies.

    Returns:
        (mean, std): one float per channel each.
    """
    images = as_image_array(images)
    chunk = _as_int(chunk, "chunk", 1)
    pixels = images.reshape(-1, images.shape[-1])  # (N*H*W, C)
    total = np.zeros(pixels.shape[1], dtype=np.int64)
    squares = np.zeros(pixels.shape[1], dtype=np.int64)
    for start in range(0, len(pixels), chunk):
        block = pixels[start : start + chunk].astype(np.int64)
        total += block.sum(axis=0)
        squares += (block * block).sum(axis=0)
    count = len(pixels)
    mean = total / count  # in 0..255
    var = np.maximum(squares / count - mean**2, 0.0)
    return tuple((mean / 255).tolist()), tuple((np.sqrt(var) / 255).tolist())


def seeded_split(n: int, sizes: Sequence[int], seed: int = 0) -> tuple[np.ndarray, ...]:
    """Disjoint sets of indices into ``range(n)``: consecutive slices of one seeded random permutation.

    Args:
        n: how many items there are.
        sizes: the size of each set; their sum may be at most ``n`` (the rest is left out).
        seed: the permutation's seed; the same seed gives the same sets.

    Returns:
        One sorted int64 index array per entry of ``sizes``.
    """
    n = _as_int(n, "n", 1)
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (Sequence, np.ndarray)):
        raise TypeError(f"sizes must be a sequence of split sizes, e.g. (100, 20), got {sizes!r}")
    sizes = [_as_int(s, "each split size") for s in sizes]
    if sum(sizes) > n:
        raise ValueError(f"split sizes {sizes} add up to {sum(sizes)}, more than the {n} items available")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(_as_int(seed, "seed"))).numpy()
    bounds = np.cumsum([0, *sizes])
    return tuple(np.sort(order[a:b]).astype(np.int64) for a, b in zip(bounds[:-1], bounds[1:]))


def _split_count(size: int | float, n: int, name: str) -> int:
    """An absolute count (int) or a fraction of ``n`` (float in (0, 1)), rounded, at least 1."""
    if isinstance(size, float):
        if not 0 < size < 1:
            raise ValueError(f"{name} as a fraction must be in (0, 1), got {size}")
        return max(1, round(size * n))
    return _as_int(size, name, 1)


class ImageSplits:
    """Train / validation / test images (uint8, (N, H, W, C)) with labels, class names and normalisation.

    ``mean`` and ``std`` are the per-channel constants of ``transforms.Normalize``: the ones given, or
    else measured from the training images (``channel_mean_std``) on first use. Attributes
    ``train_images``, ``train_labels``, ``val_images``, ... hold the arrays.
    """

    def __init__(
        self,
        train: tuple[np.ndarray, Any],
        val: tuple[np.ndarray, Any],
        test: tuple[np.ndarray, Any],
        classes: Sequence[str],
        *,
        name: str = "images",
        source: str = "",
        synthetic: bool = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        """Args: train, val, test: (images, labels) pairs; classes: one name per label; name, source: for
        ``describe``; synthetic: generated stand-in data (tagged); mean, std: both or neither."""
        if isinstance(classes, str) or not isinstance(classes, Sequence) or not classes:
            raise TypeError(f"classes must be a non-empty sequence of class names, got {classes!r}")
        self.classes = tuple(str(c) for c in classes)
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"class names must be distinct, got {self.classes}")
        shape = None
        for split, pair in zip(SPLITS, (train, val, test)):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"{split} must be an (images, labels) pair, got {type(pair).__name__}")
            images = as_image_array(pair[0], f"{split} images")
            labels = as_label_array(pair[1], len(images), len(self.classes), f"{split} labels")
            if shape is not None and images.shape[1:] != shape:
                raise ValueError(
                    f"{split} images are {images.shape[1:]} (H, W, C) but train images are {shape}: "
                    "every split needs the same image size and channel count"
                )
            shape = images.shape[1:]
            setattr(self, f"{split}_images", images)
            setattr(self, f"{split}_labels", labels)
        self.name, self.source, self.synthetic = str(name), str(source), _expect_bool(synthetic, "synthetic")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither (then both are measured on the training images)")
        self._stats = None if mean is None else check_mean_std(mean, std, self.channels)
        self.stats_given = mean is not None

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray,
        labels: Any,
        classes: Sequence[str],
        *,
        val_size: int | float = 0.1,
        test_size: int | float = 0.1,
        seed: int = 0,
        **kwargs: Any,
    ) -> ImageSplits:
        """Split one labelled set of images into train / validation / test with a seeded permutation.

        Args:
            images: uint8 (N, H, W) or (N, H, W, C).
            labels: (N,) class indices into ``classes``.
            val_size, test_size: an image count (int) or a fraction of N (float in (0, 1)); at least 1 each,
                and at least one image must remain for training.
            seed: seeds the permutation (``seeded_split``).
            kwargs: ``name``, ``source``, ``synthetic``, ``mean``, ``std`` as in the constructor.
        """
        images = as_image_array(images)
        labels = as_label_array(labels, len(images))
        n = len(images)
        n_val, n_test = _split_count(val_size, n, "val_size"), _split_count(test_size, n, "test_size")
        if n_val + n_test >= n:
            raise ValueError(
                f"{n} images cannot give {n_val} validation and {n_test} test images and still "
                "leave some for training: use more images or smaller val_size / test_size"
            )
        val_idx, test_idx, train_idx = seeded_split(n, (n_val, n_test, n - n_val - n_test), seed)
        return cls(
            (images[train_idx], labels[train_idx]),
            (images[val_idx], labels[val_idx]),
            (images[test_idx], labels[test_idx]),
            classes,
            **kwargs,
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(self.train_images.shape[1:])

    @property
    def channels(self) -> int:
        return self.train_images.shape[-1]

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean of the pixels in [0, 1]: given, or measured on the training images."""
        if self._stats is None:
            self._stats = channel_mean_std(self.train_images)
        return self._stats[0]

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel standard deviation of the pixels in [0, 1]: given, or measured on the training images."""
        self.mean  # noqa: B018 - measures both on first use
        return self._stats[1]

    @property
    def tag(self) -> str:
        """``" [SYNTHETIC]"`` for generated stand-in data, ``""`` otherwise: append it to titles and labels."""
        return " [SYNTHETIC]" if self.synthetic else ""

    def describe(self) -> str:
        """One line naming the data, the split sizes, the image format, the normalisation and the source."""
        h, w, c = self.image_shape
        stats = "given" if self.stats_given else "measured on the training split"
        return (
            f"{self.name}: train {len(self.train_labels)}, validation {len(self.val_labels)}, "
            f"test {len(self.test_labels)} images of {h}x{w} pixels, {c} channel{'s' * (c != 1)}, uint8; "
            f"{len(self.classes)} classes; mean/std {stats}; source: {self.source or 'arrays in memory'}"
        )

    def __repr__(self) -> str:
        return f"ImageSplits({self.describe()})"

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The (images uint8 (N, H, W, C), labels int64 (N,)) arrays of ``"train"``, ``"val"`` or ``"test"``."""
        if split not in SPLITS:
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        return getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Images as a uint8 (N, C, H, W) tensor (channels first, like ``ToTensor``) and int64 (N,) labels."""
        images, labels = self.arrays(split)
        return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)

    def dataset(self, split: str, transform: Transform | None = None) -> ArrayImageDataset:
        """A torchvision-style Dataset of PIL images for ``split``, passed through ``transform``."""
        images, labels = self.arrays(split)
        return ArrayImageDataset(images, labels, self.classes, transform)


class ArrayImageDataset(Dataset):
    """Serve uint8 images as PIL images with their labels, like ``torchvision.datasets.CIFAR10`` does.

    One-, three- and four-channel images become PIL images of mode L, RGB and RGBA; other channel counts
    have no PIL mode and are served as (H, W, C) uint8 arrays, which ``transforms.ToTensor`` accepts too.
    """

    def __init__(
        self, images: np.ndarray, labels: Any, classes: Sequence[str] | None = None, transform: Transform | None = None
    ) -> None:
        """Args: images uint8 (N, H, W) or (N, H, W, C); labels (N,) class indices; classes: their names
        (labels must then be below ``len(classes)``); transform: applied to each PIL image."""
        self.data = as_image_array(images)
        classes = list(classes) if classes is not None else None
        self.targets = as_label_array(labels, len(self.data), len(classes) if classes else None).tolist()
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable (e.g. transforms.ToTensor()), got {transform!r}")
        self.classes, self.transform = classes, transform

    def __len__(self) -> int:
        return len(self.targets)

    def image(self, index: int) -> Image.Image | np.ndarray:
        """Image ``index`` as a PIL image (or an (H, W, C) array when PIL has no mode for C channels).

        Raises:
            TypeError: ``index`` is not an integer.
            IndexError: ``index`` is out of range (negative indices count from the end).
        """
        index = _as_int(index, "index", None)
        if not -len(self.data) <= index < len(self.data):
            raise IndexError(f"index {index} is out of range for {len(self.data)} images")
        pixels = self.data[index]  # (H, W, C)
        mode = _PIL_MODES.get(pixels.shape[-1])
        if mode is None:
            return pixels
        return Image.fromarray(pixels[..., 0] if mode == "L" else pixels)  # mode from the shape; the slow part

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.image(index)
        return (self.transform(image) if self.transform else image), self.targets[index]


def dataset_to_arrays(
    dataset: Any, *, size: int | tuple[int, int] | None = None, channels: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Read every (PIL image, label) item of a dataset into a uint8 (N, H, W, C) array and int64 labels.

    Made for ``torchvision.datasets.ImageFolder(root)`` (one sub-folder per class) and other datasets
    created without a transform, so that they yield PIL images. The whole set is held in memory:
    about N * H * W * C bytes (10,000 images of 64x64x3 take 123 MB).

    Args:
        dataset: a map-style dataset (``len`` and ``[i]``) of (PIL image or uint8 (H, W[, C]) array, label).
        size: resize every image to this (H, W) (or (size, size)) with bilinear filtering; None keeps the
            files' size, which must then be the same for every image.
        channels: 1 (greyscale, PIL mode L) or 3 (RGB); every image is converted.

    Raises:
        ValueError: an empty dataset, images of different sizes without ``size``, or a bad argument.
        TypeError: the items are not (image, label) pairs of PIL images or uint8 arrays (e.g. tensors from
            a ``transform``: create the dataset with ``transform=None``).
    """
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ValueError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels!r}")
    if size is not None:
        size = (size, size) if not isinstance(size, (tuple, list)) else tuple(size)
        if len(size) != 2:
            raise ValueError(f"size must be an int or an (H, W) pair, got {size!r}")
        size = (_as_int(size[0], "size (H)", 1), _as_int(size[1], "size (W)", 1))
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise TypeError(
            f"dataset must be a map-style dataset (len and [i]) such as ImageFolder(root), got {type(dataset).__name__}"
        )
    n = len(dataset)
    if n == 0:
        raise ValueError("the dataset is empty: for ImageFolder, put each class's images in its own sub-folder")
    files = getattr(dataset, "samples", None)  # ImageFolder: [(path, label), ...] for clearer messages

    def where(i: int) -> str:
        return f"item {i}" + (f" ({files[i][0]})" if files is not None and i < len(files) else "")

    images: np.ndarray | None = None
    labels = np.empty(n, dtype=np.int64)
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"{where(i)} must be an (image, label) pair, got {type(item).__name__}")
        image, label = item
        if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim in (2, 3):
            image = Image.fromarray(image if image.ndim == 2 or image.shape[-1] != 1 else image[..., 0])
        if not isinstance(image, Image.Image):
            raise TypeError(
                f"{where(i)} holds a {type(image).__name__}, not a PIL image: create the dataset "
                "without a transform (transform=None) so that it yields PIL images"
            )
        image = image.convert("L" if channels == 1 else "RGB")
        if size is not None and image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.BILINEAR)
        pixels = np.asarray(image, dtype=np.uint8).reshape(image.size[1], image.size[0], channels)  # (H, W, C)
        if images is None:
            images = np.empty((n, *pixels.shape), dtype=np.uint8)
        elif pixels.shape != images.shape[1:]:
            raise ValueError(
                f"{where(i)} is {pixels.shape[1]}x{pixels.shape[0]} pixels but the first image is "
                f"{images.shape[2]}x{images.shape[1]}: pass size=(H, W) to resize them all"
            )
        images[i] = pixels
        labels[i] = _as_int(label, f"the label of {where(i)}")
    return images, labels


__all__ = [
    "ArrayImageDataset",
    "ImageSplits",
    "as_image_array",
    "as_label_array",
    "channel_mean_std",
    "check_mean_std",
    "dataset_to_arrays",
    "seeded_split",
]
