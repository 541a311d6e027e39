"""Two input paths over ``ImageSplits`` that deliver the same batches for the same seed.

- ``make_dataloaders``: the classic path of the notes, a ``Dataset`` of PIL images + torchvision transforms
  (``ToTensor``, crop, flip, ``Normalize``) + a ``DataLoader``. Python work per image, optional workers.
- ``make_device_loaders``: ``DeviceLoader`` keeps the whole uint8 dataset as one tensor on the device and
  shuffles, crops, flips and normalises a whole batch at a time there.

Both draw each epoch's randomness from one seeded CPU generator, ``loader.generator``, in the same order
(``draw_epoch``): the shuffled order, then the crop offsets, then the flips. The classic path draws them in
its sampler (``EpochSampler``), in the main process, and hands each worker the crop and flip to apply, so
worker processes hold no randomness of their own. Hence (i) for the same data and seed both paths deliver
the same batches, and (ii) restoring ``loader.generator``'s state (which checkpoints save) resumes exactly,
with or without ``num_workers``: workers are started afresh each epoch (not persistent), because a
persistent worker pool skips the per-epoch seed draw that a resumed run's fresh pool makes.

Under ``torch.distributed`` (a process group of several processes, e.g. started by torchrun) both paths
hand each process its own shard of every epoch, with no change to the calling code: every process draws
the same epoch plan from the same seeded generator and keeps every ``world_size``-th position starting at
its rank (``course_utils.distributed.epoch_shard``, the positions ``DistributedSampler`` takes). So the
shards are disjoint and cover the epoch, crops and flips stay attached to their images, and resuming
the generator's state resumes every shard. Training loaders (``shuffle=True``) first cut the epoch to a
multiple of the world size, so every process takes the same number of steps, as DDP needs; evaluation
loaders keep every image (processes may differ by one). ``batch_size`` is per process: the global batch
is ``world_size * batch_size``.

Augmentation is switched per kind with ``Augmentation(crop_padding=..., flip=...)`` (``course_utils.augment``);
``augment=True`` is CIFAR-10's recipe, a random crop with 4 pixels of zero padding plus a horizontal flip. A
flip is wrong for digits or text: use ``Augmentation(crop_padding=2)`` there.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .augment import Augmentation, _crop, as_augmentation, draw_epoch, draw_worker_seed
from .checks import expect_positive_int, expect_shape, expect_tensor
from .device import get_device
from .distributed import epoch_shard
from .images import ImageSplits, _as_int, _expect_bool, channel_mean_std, check_mean_std

Batch = tuple[torch.Tensor, torch.Tensor]
SampleKey = tuple[int, int, int, bool]  # (index, crop top, crop left, flip)


# ----------------------------------------------------------------------------- device-resident path


class DeviceLoader:
    """Batches from a uint8 (N, C, H, W) tensor kept on the device; shuffle and augmentation happen there.

    Iterating yields (images float32 (B, C, H, W) holding ``(x / 255 - mean) / std``, labels int64 (B,)),
    the same values ``ToTensor`` + ``Normalize`` give. Each epoch draws its order, crop offsets and flips
    from ``self.generator`` (CPU, seeded), whose state checkpoints save.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        device: torch.device | str | None = None,
        shuffle: bool = False,
        augment: bool | Augmentation = False,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        seed: int = 0,
        drop_last: bool = False,
        channels_last: bool = False,
        even_shards: bool | None = None,
    ) -> None:
        """Args:
        images: uint8 (N, C, H, W) (channels first, like ``ToTensor``), or (N, H, W) for greyscale.
        labels: (N,) integer class indices >= 0.
        batch_size: images per batch.
        device: where the data lives and batches are made (default: where ``images`` are).
        shuffle: a new random order every epoch.
        augment: ``True`` (crop, padding 4, + flip), ``False`` or an ``Augmentation``.
        mean, std: one value per channel; default: measured on ``images`` (pass the training
            split's values to a validation or test loader; ``make_device_loaders`` does).
        seed: seeds ``self.generator``.
        drop_last: skip the last batch when it is smaller than ``batch_size``.
        channels_last: hand out batches in channels_last memory format.
        even_shards: under torch.distributed, cut each epoch to a multiple of the world size so every
            process gets as many batches (default: ``shuffle``, i.e. for training loaders; see the module docstring).
        """
        expect_tensor(images, "images")
        if images.dtype != torch.uint8:
            raise TypeError(f"images must be uint8 (N, C, H, W) as stored on disk, got {images.dtype}")
        if images.dim() == 3:
            images = images.unsqueeze(1)  # (N, H, W) greyscale -> (N, 1, H, W)
        expect_shape(images, ("N", None, None, None), "images")
        if images.shape[0] == 0:
            raise ValueError("images is empty: a loader needs at least one image")
        n, c, h, w = images.shape
        expect_tensor(labels, "labels")
        expect_shape(labels, (n,), "labels")
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
        if int(labels.min()) < 0:
            raise ValueError(f"labels must be class indices >= 0, got a minimum of {int(labels.min())}")
        self.batch_size = expect_positive_int(batch_size, "batch_size")
        self.shuffle = _expect_bool(shuffle, "shuffle")
        self.drop_last = _expect_bool(drop_last, "drop_last")
        self.channels_last = _expect_bool(channels_last, "channels_last")
        self.even_shards = self.shuffle if even_shards is None else _expect_bool(even_shards, "even_shards")
        self.augmentation = as_augmentation(augment)
        self.augmentation.check(h, w)
        if mean is None and std is None:
            mean, std = channel_mean_std(images.permute(0, 2, 3, 1).cpu().numpy())
        elif mean is None or std is None:
            raise ValueError("give both mean and std, or neither (then both are measured on images)")
        self.mean, self.std = check_mean_std(mean, std, c)
        self.device = images.device if device is None else get_device(device)
        self.images = images.to(self.device)  # the one big transfer
        self.labels = labels.to(self.device, torch.int64)
        self._mean = torch.tensor(self.mean, dtype=torch.float32, device=self.device).view(1, c, 1, 1)
        self._std = torch.tensor(self.std, dtype=torch.float32, device=self.device).view(1, c, 1, 1)
        self.generator = torch.Generator().manual_seed(_as_int(seed, "seed"))

    def _shard(self) -> slice:
        """The positions of each epoch this process gets (all of them outside a distributed run)."""
        return epoch_shard(self.labels.numel(), even=self.even_shards) or slice(None)

    def __len__(self) -> int:
        n = len(range(self.labels.numel())[self._shard()])  # this process's images per epoch
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> float32 ``(x / 255 - mean) / std``, in the order ToTensor + Normalize use.

        Raises:
            ValueError: ``images`` not (B, C, H, W) with this loader's channel count C.
            TypeError: ``images`` not uint8 (a float batch is already scaled).
        """
        expect_shape(images, (None, self._mean.shape[1], None, None), "images")
        if images.dtype != torch.uint8:
            raise TypeError(
                f"images must be uint8 (B, C, H, W) as the loader stores them, got {images.dtype}: "
                "a float batch is already normalised or scaled"
            )
        return images.float().div_(255).sub_(self._mean).div_(self._std)

    def __iter__(self) -> Iterator[Batch]:
        n = self.labels.numel()
        draw_worker_seed(self.generator)  # keeps step with DataLoader, which draws it as each epoch starts
        plan = draw_epoch(n, self.generator, shuffle=self.shuffle, augmentation=self.augmentation)
        shard = self._shard()  # every process drew the same plan; each keeps its own positions
        order = plan.order[shard].to(self.device)
        offsets = plan.offsets[shard].to(self.device) if plan.offsets is not None else None
        flips = plan.flips[shard].to(self.device) if plan.flips is not None else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            stop = start + self.batch_size
            idx = order[start:stop]
            x = self.images[idx]  # (B, C, H, W) uint8, gathered on the device
            if offsets is not None:
                x = _crop(x, offsets[start:stop], self.augmentation.crop_padding)
            if flips is not None:
                x = torch.where(flips[start:stop].view(-1, 1, 1, 1), x.flip(-1), x)
            x = self.normalize(x)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]


# ----------------------------------------------------------------------------- classic DataLoader path


class EpochSampler(Sampler):
    """A DataLoader sampler whose keys carry each image's crop and flip: (index, top, left, flip).

    Every epoch it calls ``draw_epoch`` on ``generator``, exactly like ``DeviceLoader``; the Dataset
    (``AugmentedImages``) applies what the key says, so workers need no random numbers of their own.
    Under torch.distributed it yields this process's shard of the epoch, as ``DeviceLoader`` does
    (``even_shards``: default ``shuffle``; see the module docstring).
    """

    def __init__(
        self,
        n: int,
        *,
        shuffle: bool,
        augmentation: Augmentation,
        generator: torch.Generator,
        even_shards: bool | None = None,
    ) -> None:
        self.n = _as_int(n, "n", 1)
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        self.shuffle, self.generator = _expect_bool(shuffle, "shuffle"), generator
        self.even_shards = self.shuffle if even_shards is None else _expect_bool(even_shards, "even_shards")
        self.augmentation = as_augmentation(augmentation)

    def _shard(self) -> slice:
        return epoch_shard(self.n, even=self.even_shards) or slice(None)

    def __len__(self) -> int:
        return len(range(self.n)[self._shard()])

    def __iter__(self) -> Iterator[SampleKey]:
        plan = draw_epoch(self.n, self.generator, shuffle=self.shuffle, augmentation=self.augmentation)
        shard = self._shard()
        p = self.augmentation.crop_padding
        order = plan.order[shard].tolist()
        offsets = plan.offsets[shard].tolist() if plan.offsets is not None else [(p, p)] * len(order)
        flips = plan.flips[shard].tolist() if plan.flips is not None else [False] * len(order)
        for index, (top, left), flip in zip(order, offsets, flips):
            yield index, top, left, flip


class AugmentedImages(Dataset):
    """The classic path's Dataset: PIL image -> ``ToTensor`` -> crop -> flip -> ``Normalize``, one image at a time.

    Indexed by an ``EpochSampler`` key (index, top, left, flip): the crop is torchvision's ``pad`` + ``crop``
    at that offset (what ``RandomCrop(size, padding)`` does after drawing it), the flip ``hflip``. A plain
    integer index gives the un-augmented image.
    """

    def __init__(
        self, images: Dataset, mean: Sequence[float], std: Sequence[float], augmentation: Augmentation
    ) -> None:
        """Args: images: a Dataset of (PIL image or (H, W, C) uint8 array, label); mean, std: per channel."""
        from torchvision import transforms as T

        if not (hasattr(images, "__len__") and hasattr(images, "__getitem__")) or isinstance(images, (str, bytes)):
            raise TypeError(
                f"images must be a Dataset of (image, label) pairs, e.g. data.dataset('train'), "
                f"got {type(images).__name__}"
            )
        mean, std = check_mean_std(mean, std)
        augmentation = as_augmentation(augmentation)
        self.images, self.augmentation = images, augmentation
        self.to_tensor, self.normalize = T.ToTensor(), T.Normalize(mean, std)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: int | SampleKey) -> tuple[torch.Tensor, int]:
        from torchvision.transforms import functional as TF

        p = self.augmentation.crop_padding
        index, top, left, flip = key if isinstance(key, tuple) else (key, p, p, False)
        image, label = self.images[index]
        x = self.to_tensor(image)  # (C, H, W) float32 in [0, 1]
        if p:
            x = TF.crop(TF.pad(x, [p]), top, left, x.shape[-2], x.shape[-1])  # window of the zero-padded image
        if flip:
            x = TF.hflip(x)
        return self.normalize(x), label

    def __repr__(self) -> str:
        steps = ["ToTensor()"]
        if self.augmentation.crop_padding:
            steps.append(f"crop(pad {self.augmentation.crop_padding}, offset from the sampler)")
        if self.augmentation.flip:
            steps.append("hflip(if the sampler says so)")
        return f"AugmentedImages({' -> '.join([*steps, repr(self.normalize)])})"


def image_transforms(
    mean: Sequence[float],
    std: Sequence[float],
    *,
    augment: bool | Augmentation = False,
    image_size: tuple[int, int] | None = None,
) -> Any:
    """The notes' torchvision pipeline for one PIL image: [RandomCrop, RandomHorizontalFlip,] ToTensor, Normalize.

    For predicting on single images, or for a DataLoader of your own. Its random transforms draw from the
    global (or worker) random state; ``make_dataloaders`` applies the same crop and flip with offsets from
    ``loader.generator`` instead, which matches ``DeviceLoader`` and resumes exactly.

    Args:
        mean, std: one value per channel.
        augment: as for the loaders.
        image_size: (H, W) of the images; needed by a random crop (its window keeps the image's size).

    Raises:
        ValueError: ``mean`` and ``std`` of different lengths, a ``std`` that is not positive, or a crop
            without ``image_size``.
        TypeError: arguments of the wrong type.
    """
    from torchvision import transforms as T

    mean, std = check_mean_std(mean, std)
    augmentation = as_augmentation(augment)
    steps: list[Any] = []
    if image_size is not None and (not isinstance(image_size, (tuple, list)) or len(image_size) != 2):
        raise TypeError(f"image_size must be an (H, W) pair, got {image_size!r}")
    if augmentation.crop_padding:
        if image_size is None:
            raise ValueError("a random crop needs image_size=(H, W): the window keeps the images' size")
        augmentation.check(*image_size)
        steps.append(T.RandomCrop(tuple(image_size), padding=augmentation.crop_padding))
    if augmentation.flip:
        steps.append(T.RandomHorizontalFlip())
    return T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std)])


def _prepare(
    data: ImageSplits,
    batch_size: int,
    eval_batch_size: int | None,
    augment: bool | Augmentation,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    seed: int,
) -> tuple[int, int, Augmentation, tuple[float, ...], tuple[float, ...], int]:
    """Check the arguments both loader factories share, before any work is done."""
    if not isinstance(data, ImageSplits):
        raise TypeError(
            f"data must be an ImageSplits (from load_cifar10 or ImageSplits.from_arrays), got {type(data).__name__}"
        )
    batch_size = expect_positive_int(batch_size, "batch_size")
    eval_bs = 2 * batch_size if eval_batch_size is None else expect_positive_int(eval_batch_size, "eval_batch_size")
    augmentation = as_augmentation(augment)
    h, w, c = data.image_shape
    augmentation.check(h, w)
    if mean is None and std is None:
        mean, std = data.mean, data.std
    elif mean is None or std is None:
        raise ValueError("give both mean and std, or neither (then the data's own are used)")
    mean, std = check_mean_std(mean, std, c)
    return batch_size, eval_bs, augmentation, mean, std, _as_int(seed, "seed")


def make_dataloaders(
    data: ImageSplits,
    batch_size: int,
    *,
    device: torch.device | str | None = None,
    augment: bool | Augmentation = False,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    num_workers: int = 0,
    seed: int = 0,
    eval_batch_size: int | None = None,
) -> tuple[DataLoader, DataLoader, DataLoader]:
    """The classic input path: Dataset of PIL images + transforms + DataLoader for train, val and test.

    Args:
        data: an ``ImageSplits`` (``load_cifar10``, ``ImageSplits.from_arrays``).
        batch_size: training batch size (evaluation uses ``eval_batch_size``, default 2x).
        device: on CUDA the batches are put in pinned memory so ``.to(device, non_blocking=True)`` overlaps.
        augment: training-split augmentation: ``True`` (crop, padding 4, + flip), ``False`` or an ``Augmentation``.
        mean, std: per-channel normalisation; default ``data.mean`` / ``data.std``.
        num_workers: worker processes preparing batches (0: in the training process). They restart every
            epoch (a fraction of a second) so that a resumed run is exact.
        seed: seeds ``loader.generator``, which orders and augments the training split (saved by checkpoints).

    Returns:
        (train, val, test) DataLoaders; for the same data and seed, ``make_device_loaders`` yields the same batches.
    """
    batch_size, eval_bs, augmentation, mean, std, seed = _prepare(
        data, batch_size, eval_batch_size, augment, mean, std, seed
    )
    num_workers = _as_int(num_workers, "num_workers")
    common = {
        "num_workers": num_workers,
        "pin_memory": get_device(device).type == "cuda",
        "persistent_workers": False,
    }  # persistent workers would break exact resume (see module docstring)
    generator = torch.Generator().manual_seed(seed)
    train_set = AugmentedImages(data.dataset("train"), mean, std, augmentation)
    sampler = EpochSampler(len(train_set), shuffle=True, augmentation=augmentation, generator=generator)
    train = DataLoader(train_set, batch_size=batch_size, sampler=sampler, generator=generator, **common)
    evaluation = []
    for split in ("val", "test"):  # own generators: evaluating never touches the global random state
        images = AugmentedImages(data.dataset(split), mean, std, Augmentation())
        in_order = torch.Generator().manual_seed(seed)  # an EpochSampler, so that evaluation shards too
        evaluation.append(
            DataLoader(
                images,
                batch_size=eval_bs,
                generator=in_order,
                sampler=EpochSampler(len(images), shuffle=False, augmentation=Augmentation(), generator=in_order),
                **common,
            )
        )
    return train, evaluation[0], evaluation[1]


def make_device_loaders(
    data: ImageSplits,
    batch_size: int,
    *,
    device: torch.device | str | None = None,
    augment: bool | Augmentation = False,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    seed: int = 0,
    channels_last: bool = False,
    eval_batch_size: int | None = None,
) -> tuple[DeviceLoader, DeviceLoader, DeviceLoader]:
    """Device-resident loaders for train (shuffled, optionally augmented), val and test.

    Arguments as for ``make_dataloaders``; ``channels_last`` hands out channels_last batches.
    """
    batch_size, eval_bs, augmentation, mean, std, seed = _prepare(
        data, batch_size, eval_batch_size, augment, mean, std, seed
    )
    device = get_device(device)
    loaders = []
    for split in ("train", "val", "test"):
        images, labels = data.tensors(split)
        training = split == "train"
        loaders.append(
            DeviceLoader(
                images,
                labels,
                batch_size=batch_size if training else eval_bs,
                device=device,
                shuffle=training,
                augment=augmentation if training else False,
                mean=mean,
                std=std,
                seed=seed,
                channels_last=channels_last,
            )
        )
    return loaders[0], loaders[1], loaders[2]


__all__ = [
    "AugmentedImages",
    "DeviceLoader",
    "EpochSampler",
    "image_transforms",
    "make_dataloaders",
    "make_device_loaders",
]
