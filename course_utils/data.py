"""Image data for the course: one import for the four data modules.

``import course_utils.data as cd`` gives:

- ``course_utils.images``: uint8 image arrays of any size and channel count (``as_image_array``), their
  per-channel statistics (``channel_mean_std``), seeded splits (``seeded_split``), the split container
  ``ImageSplits`` (``ImageSplits.from_arrays`` for your own arrays), ``ArrayImageDataset`` and
  ``dataset_to_arrays`` (e.g. for ``torchvision.datasets.ImageFolder`` on a folder of your own pictures);
- ``course_utils.augment``: ``Augmentation`` switches the random crop and the flip separately;
  ``draw_epoch`` draws an epoch's order, crops and flips; ``random_crop`` and ``flip_horizontal`` apply
  them to whole batches;
- ``course_utils.loaders``: the two input paths, ``make_dataloaders`` (Dataset + transforms + DataLoader,
  as in the notes) and ``make_device_loaders`` / ``DeviceLoader`` (the dataset on the device, batches
  augmented there), which deliver the same batches for the same seed;
- ``course_utils.cifar10``: CIFAR-10 (``load_cifar10``, verified download, offline instructions, the
  labelled SYNTHETIC stand-in for fast mode), one user of the above.
"""

from .augment import (
    CIFAR_AUGMENTATION,
    Augmentation,
    EpochPlan,
    as_augmentation,
    draw_epoch,
    draw_worker_seed,
    flip_horizontal,
    random_crop,
)
from .cifar10 import (
    CIFAR10_ARCHIVE,
    CIFAR10_CLASSES,
    CIFAR10_FOLDER,
    CIFAR10_MD5,
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR10_URL,
    SYNTHETIC_ENV,
    CifarSplits,
    CifarUnavailableError,
    cifar10_present,
    load_cifar10,
    offline_message,
    synthetic_cifar10,
)
from .images import (
    ArrayImageDataset,
    ImageSplits,
    as_image_array,
    as_label_array,
    channel_mean_std,
    check_mean_std,
    dataset_to_arrays,
    seeded_split,
)
from .loaders import (
    AugmentedImages,
    DeviceLoader,
    EpochSampler,
    image_transforms,
    make_dataloaders,
    make_device_loaders,
)

__all__ = [
    "CIFAR10_ARCHIVE",
    "CIFAR10_CLASSES",
    "CIFAR10_FOLDER",
    "CIFAR10_MD5",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR10_URL",
    "CIFAR_AUGMENTATION",
    "SYNTHETIC_ENV",
    "ArrayImageDataset",
    "Augmentation",
    "AugmentedImages",
    "CifarSplits",
    "CifarUnavailableError",
    "DeviceLoader",
    "EpochPlan",
    "EpochSampler",
    "ImageSplits",
    "as_augmentation",
    "as_image_array",
    "as_label_array",
    "channel_mean_std",
    "check_mean_std",
    "cifar10_present",
    "dataset_to_arrays",
    "draw_epoch",
    "draw_worker_seed",
    "flip_horizontal",
    "image_transforms",
    "load_cifar10",
    "make_dataloaders",
    "make_device_loaders",
    "offline_message",
    "random_crop",
    "seeded_split",
    "synthetic_cifar10",
]
