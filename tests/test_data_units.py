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
    with pytest.raises(TypeError, match="must be uint8"):
        cd.ArrayImageDataset(images.astype(np.float32), np.array([0, 1, 2]), cd.CIFAR10_CLASSES)
    with pytest.raises(ValueError, match=r"one class index per image, shape \(3,\)"):
        cd.ArrayImageDataset(images, np.array([0, 1]), cd.CIFAR10_CLASSES)
    with pytest.raises(ValueError, match=r"class indices in \[0, 10\)"):
        cd.ArrayImageDataset(images, np.array([0, 1, 10]), cd.CIFAR10_CLASSES)


@pytest.mark.parametrize("shape, mode", [((2, 5, 6), "L"), ((2, 5, 6, 1), "L"), ((2, 5, 6, 4), "RGBA")])
def test_array_image_dataset_serves_greyscale_and_other_channel_counts(shape, mode):
    images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    image, _ = cd.ArrayImageDataset(images, [0, 1])[1]
    assert image.mode == mode and image.size == (6, 5)
    assert np.array_equal(np.asarray(image).reshape(5, 6, -1), images[1].reshape(5, 6, -1))
    two, _ = cd.ArrayImageDataset(np.zeros((2, 5, 6, 2), dtype=np.uint8), [0, 1])[0]  # no PIL mode: an array
    assert isinstance(two, np.ndarray) and two.shape == (5, 6, 2)


def test_image_transforms_normalise_per_channel():
    image = Image.fromarray(np.full((32, 32, 3), 255, dtype=np.uint8))
    x = cd.image_transforms(cd.CIFAR10_MEAN, cd.CIFAR10_STD)(image)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    expected = (1.0 - torch.tensor(cd.CIFAR10_MEAN)) / torch.tensor(cd.CIFAR10_STD)
    torch.testing.assert_close(x[:, 0, 0], expected)
    augmented = cd.image_transforms(cd.CIFAR10_MEAN, cd.CIFAR10_STD, augment=True, image_size=(32, 32))
    assert augmented(image).shape == (3, 32, 32)
    grey = cd.image_transforms((0.5,), (0.25,), augment=cd.Augmentation(crop_padding=2), image_size=(28, 20))
    assert grey(Image.fromarray(np.zeros((28, 20), dtype=np.uint8))).shape == (1, 28, 20)  # the image's size
    with pytest.raises(ValueError, match="image_size"):
        cd.image_transforms((0.5,), (0.25,), augment=True)
    with pytest.raises(ValueError, match="std has 2 values"):
        cd.image_transforms((0.5,), (0.25, 0.25))


def test_cifar10_present_is_false_for_an_empty_folder(tmp_path):
    assert cd.cifar10_present(tmp_path) is False


def test_offline_message_names_everything_needed(tmp_path):
    text = cd.offline_message(tmp_path, "no network")
    for needed in (cd.CIFAR10_ARCHIVE, cd.CIFAR10_MD5, cd.CIFAR10_URL, str(tmp_path), "no network", "SYNTHETIC"):
        assert needed in text
    (tmp_path / cd.CIFAR10_ARCHIVE).write_bytes(b"partial")
    assert "MD5 does not match" in cd.offline_message(tmp_path, "integrity check failed")
