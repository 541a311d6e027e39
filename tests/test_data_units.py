"""Direct tests for the smaller public helpers of course_utils.data (the loaders are in test_data.py)."""

import numpy as np
import pytest
import torch
from PIL import Image

import course_utils.data as cd


def test_synthetic_cifar10_shapes_reproducible_and_checked():
    images, labels = cd.synthetic_cifar10(12, seed=3)
    assert images.shape == (12, 32, 32, 3) and images.dtype == np.uint8
    assert labels.shape == (12,) and labels.dtype == np.int64 and set(labels) <= set(range(10))
    again, _ = cd.synthetic_cifar10(12, seed=3)
    other, _ = cd.synthetic_cifar10(12, seed=4)
    assert np.array_equal(images, again) and not np.array_equal(images, other)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        cd.synthetic_cifar10(0)


def test_array_image_dataset_serves_pil_images_and_rejects_bad_arrays():
    images = np.zeros((3, 32, 32, 3), dtype=np.uint8)
    images[1, 0, 0] = (255, 0, 0)
    ds = cd.ArrayImageDataset(images, np.array([0, 1, 2]), cd.CIFAR10_CLASSES)
    image, label = ds[1]
    assert isinstance(image, Image.Image) and image.size == (32, 32) and label == 1
    assert image.getpixel((0, 0)) == (255, 0, 0) and len(ds) == 3
    with pytest.raises(ValueError, match=r"uint8 \(N, H, W, 3\)"):
        cd.ArrayImageDataset(images.astype(np.float32), np.array([0, 1, 2]), cd.CIFAR10_CLASSES)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        cd.ArrayImageDataset(images, np.array([0, 1]), cd.CIFAR10_CLASSES)


def test_image_transforms_normalise_per_channel():
    image = Image.fromarray(np.full((32, 32, 3), 255, dtype=np.uint8))
    x = cd.image_transforms(augment=False)(image)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    expected = (1.0 - torch.tensor(cd.CIFAR10_MEAN)) / torch.tensor(cd.CIFAR10_STD)
    torch.testing.assert_close(x[:, 0, 0], expected)
    assert cd.image_transforms(augment=True)(image).shape == (3, 32, 32)


def test_cifar10_present_is_false_for_an_empty_folder(tmp_path):
    assert cd.cifar10_present(tmp_path) is False


def test_offline_message_names_everything_needed(tmp_path):
    text = cd.offline_message(tmp_path, "no network")
    for needed in (cd.CIFAR10_ARCHIVE, cd.CIFAR10_MD5, cd.CIFAR10_URL, str(tmp_path), "no network", "SYNTHETIC"):
        assert needed in text
    (tmp_path / cd.CIFAR10_ARCHIVE).write_bytes(b"partial")
    assert "MD5 does not match" in cd.offline_message(tmp_path, "integrity check failed")
