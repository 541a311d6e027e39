"""Data augmentation (数据增强) as data: what to apply (``Augmentation``), one epoch's random draws
(``draw_epoch``), and the batched crop and flip that apply them on any device.

Both input paths of ``course_utils.loaders`` call ``draw_epoch`` on their loader's generator, so that for
the same seed they shuffle, crop and flip alike; ``random_crop`` and ``flip_horizontal`` are the batched
operations ``DeviceLoader`` uses (the classic path applies the same draws per image with torchvision).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .checks import expect_positive_int, expect_shape
from .images import _as_int, _expect_bool


@dataclass(frozen=True)
class Augmentation:
    """Which random augmentations (数据增强) a training loader applies; each one on or off by itself.

    Attributes:
        crop_padding: random crop: pad the image with this many zero pixels on every side and cut a window
            of the original size at a random (top, left) offset in [0, 2 * crop_padding]; 0 switches it off.
        flip: mirror each image left-right with probability 1/2.
    """

    crop_padding: int = 0
    flip: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop_padding", _as_int(self.crop_padding, "crop_padding"))
        object.__setattr__(self, "flip", _expect_bool(self.flip, "flip"))

    @property
    def active(self) -> bool:
        return bool(self.crop_padding or self.flip)

    def check(self, height: int, width: int) -> None:
        """Refuse a crop whose window could miss the image entirely (padding >= the image's side)."""
        height, width = expect_positive_int(height, "height"), expect_positive_int(width, "width")
        if self.crop_padding >= min(height, width):
            raise ValueError(
                f"crop_padding={self.crop_padding} is too large for {height}x{width} images: it must be "
                f"smaller than the shorter side ({min(height, width)}); a few pixels is usual"
            )

    def __str__(self) -> str:
        parts = ([f"random crop (zero padding {self.crop_padding})"] if self.crop_padding else []) + (
            ["horizontal flip"] if self.flip else []
        )
        return " + ".join(parts) or "no augmentation"


CIFAR_AUGMENTATION = Augmentation(crop_padding=4, flip=True)  # what augment=True means


def as_augmentation(augment: bool | Augmentation) -> Augmentation:
    """``True`` -> CIFAR-10's crop (padding 4) + flip; ``False`` -> none; an ``Augmentation`` as it is."""
    if isinstance(augment, Augmentation):
        return augment
    if isinstance(augment, (bool, np.bool_)):
        return CIFAR_AUGMENTATION if augment else Augmentation()
    raise TypeError(f"augment must be True, False or an Augmentation(crop_padding=..., flip=...), got {augment!r}")


@dataclass
class EpochPlan:
    """One epoch's randomness: order (N,) int64, crop offsets (N, 2) int64 or None, flips (N,) bool or None.

    Entry k of ``offsets`` and ``flips`` belongs to the k-th image of the epoch, ``order[k]``.
    """

    order: torch.Tensor
    offsets: torch.Tensor | None
    flips: torch.Tensor | None


def draw_epoch(n: int, generator: torch.Generator, *, shuffle: bool, augmentation: Augmentation) -> EpochPlan:
    """Draw an epoch's order, crop offsets and flips from ``generator``, in that order (both paths call this).

    Returns an ``EpochPlan``: ``order`` (n,) int64, ``offsets`` (n, 2) int64 in ``0 .. 2 * crop_padding`` or None,
    ``flips`` (n,) bool or None.

    Raises:
        TypeError: ``generator`` is not a ``torch.Generator``, or ``shuffle`` is not a bool.
        ValueError: ``n`` below 1, or an invalid ``augmentation``.
    """
    n = _as_int(n, "n", 1)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    shuffle = _expect_bool(shuffle, "shuffle")
    augmentation = as_augmentation(augmentation)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    p = augmentation.crop_padding
    offsets = torch.randint(0, 2 * p + 1, (n, 2), generator=generator) if p else None
    flips = torch.rand(n, generator=generator) < 0.5 if augmentation.flip else None
    return EpochPlan(order, offsets, flips)


def draw_worker_seed(generator: torch.Generator) -> int:
    """The draw a ``DataLoader`` makes from its generator as an epoch starts (its workers' base seed).

    ``DeviceLoader`` makes it too, so that both paths walk the generator's stream in step.
    """
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())


# ----------------------------------------------------------------------------- batched augmentation


def _crop(images: torch.Tensor, offsets: torch.Tensor, padding: int) -> torch.Tensor:
    b, c, h, w = images.shape
    width = w + 2 * padding
    padded = F.pad(images, (padding, padding, padding, padding)).flatten(2)  # (B, C, (H+2p) * (W+2p))
    rows = offsets[:, 0, None] + torch.arange(h, device=images.device)  # (B, H)
    cols = offsets[:, 1, None] + torch.arange(w, device=images.device)  # (B, W)
    index = (rows[:, :, None] * width + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)  # flat positions
    return padded.gather(2, index).view(b, c, h, w)  # one gather for the whole batch, no Python loop


def random_crop(images: torch.Tensor, offsets: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Zero-pad each image by ``padding`` and cut the window starting at its (row, column) offset.

    Args:
        images: (B, C, H, W), any dtype.
        offsets: (B, 2) integers in [0, 2 * padding]: top and left of the window in the padded image.
        padding: pixels of zeros added on every side, >= 0.

    Returns:
        (B, C, H, W): the same size as the input.

    Raises:
        ValueError: an offset outside [0, 2 * padding] (the window would leave the padded image).
    """
    expect_shape(images, ("B", None, None, None), "images")
    expect_shape(offsets, (images.shape[0], 2), "offsets")
    padding = _as_int(padding, "padding")
    if offsets.dtype.is_floating_point or offsets.dtype.is_complex or offsets.dtype == torch.bool:
        raise TypeError(f"offsets must be integers (top, left), got dtype {offsets.dtype}")
    # checked where they are (usually the CPU, where reading them costs nothing), then moved to the images
    if offsets.numel() and (int(offsets.min()) < 0 or int(offsets.max()) > 2 * padding):
        raise ValueError(
            f"offsets must lie in [0, 2 * padding] = [0, {2 * padding}] so that the window stays "
            f"inside the padded image; got values from {int(offsets.min())} to {int(offsets.max())}"
        )
    return _crop(images, offsets.to(images.device, torch.int64), padding)


def flip_horizontal(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the (B, C, H, W) images whose entry in the boolean (B,) ``mask`` is True.

    Raises:
        ValueError: ``images`` not 4-D, ``mask`` not of shape (B,), or ``mask`` on another accelerator.
        TypeError: ``mask`` is not a bool tensor.
    """
    expect_shape(images, ("B", None, None, None), "images")
    expect_shape(mask, (images.shape[0],), "mask")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True: flip this image), got dtype {mask.dtype}")
    if mask.device != images.device and mask.device.type != "cpu":
        raise ValueError(
            f"mask is on {mask.device} but images are on {images.device}: put mask on the images' device (or the CPU)"
        )
    return torch.where(mask.to(images.device).view(-1, 1, 1, 1), images.flip(-1), images)


__all__ = [
    "CIFAR_AUGMENTATION",
    "Augmentation",
    "EpochPlan",
    "as_augmentation",
    "draw_epoch",
    "draw_worker_seed",
    "flip_horizontal",
    "random_crop",
]
