"""course_utils.data: the synthetic stand-in, both loaders, augmentation, and the offline error."""

from __future__ import annotations

import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision import transforms as T

import course_utils.data as cd
from course_utils.train import accuracy, fit

SIZES = (96, 32, 40)


@pytest.fixture(scope="module")
def data() -> cd.CifarSplits:
    return cd.load_cifar10(sizes=SIZES, synthetic=True)


def test_synthetic_splits_have_cifar_shapes_dtypes_and_labels(data):
    for split, n in zip(("train", "val", "test"), SIZES):
        images, labels = data.arrays(split)
        assert images.shape == (n, 32, 32, 3) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.int64
        assert labels.min() >= 0 and labels.max() <= 9
    assert data.classes == cd.CIFAR10_CLASSES and data.synthetic
    assert "SYNTHETIC" in data.tag and "SYNTHETIC" in data.describe()
    x, y = data.tensors("train")
    assert x.shape == (SIZES[0], 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert torch.equal(x[5], torch.from_numpy(data.train_images[5]).permute(2, 0, 1))


def test_synthetic_data_is_reproducible_and_train_val_disjoint(data):
    again = cd.load_cifar10(sizes=SIZES, synthetic=True)
    assert np.array_equal(again.train_images, data.train_images) and np.array_equal(again.val_labels, data.val_labels)
    train_rows = {img.tobytes() for img in data.train_images}
    assert not any(img.tobytes() in train_rows for img in data.val_images)


def test_classic_dataset_and_dataloader(data):
    image, label = data.dataset("train")[3]
    assert isinstance(image, Image.Image) and image.size == (32, 32) and label == data.train_labels[3]
    tensor, _ = data.dataset("train", T.ToTensor())[3]
    torch.testing.assert_close(tensor, torch.from_numpy(data.train_images[3]).permute(2, 0, 1).float() / 255)
    train, val, test = cd.make_dataloaders(data, 16, device="cpu")
    x, y = next(iter(train))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert not train.pin_memory and isinstance(train.generator, torch.Generator)
    assert sum(len(b[1]) for b in val) == SIZES[1] and len(test.dataset) == SIZES[2]


def test_device_loader_matches_the_transform_pipeline(data):
    """Unaugmented batches equal ToTensor + Normalize applied to PIL images, in the same order, bit for bit."""
    _, val_classic, _ = cd.make_dataloaders(data, 8, device="cpu", eval_batch_size=8)
    _, val_device, _ = cd.make_device_loaders(data, 8, device="cpu", eval_batch_size=8)
    for (xa, ya), (xb, yb) in zip(val_classic, val_device):
        assert torch.equal(xb, xa)
        assert torch.equal(ya, yb)
    assert len(val_device) == len(val_classic) == 4


def test_device_loader_epoch_covers_each_image_once(data):
    images, labels = data.tensors("train")
    loader = cd.DeviceLoader(
        images, torch.arange(len(labels)), batch_size=20, shuffle=True, augment=True, channels_last=True
    )
    seen = []
    for x, idx in loader:
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 32, 32)
        assert x.is_contiguous(memory_format=torch.channels_last)
        seen.append(idx)
    assert len(seen) == len(loader) == 5 and sorted(torch.cat(seen).tolist()) == list(range(SIZES[0]))
    assert not torch.equal(torch.cat(seen), torch.arange(SIZES[0]))  # shuffled


def test_random_crop_is_a_window_of_the_padded_image():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 3, 10, 12), generator=g, dtype=torch.uint8)
    offsets = torch.randint(0, 9, (6, 2), generator=g)
    crops = cd.random_crop(images, offsets, padding=4)
    assert crops.shape == images.shape and crops.dtype == images.dtype
    for i in range(6):
        padded = F.pad(images[i], (4, 4, 4, 4))  # zeros around, (3, 18, 20)
        top, left = offsets[i].tolist()
        assert torch.equal(crops[i], padded[:, top : top + 10, left : left + 12])
    centred = cd.random_crop(images, torch.full((6, 2), 4), padding=4)
    assert torch.equal(centred, images)


def test_flip_mirrors_only_the_masked_images():
    images = torch.arange(2 * 3 * 4 * 5).view(2, 3, 4, 5)
    out = cd.flip_horizontal(images, torch.tensor([True, False]))
    assert torch.equal(out[0], images[0][:, :, [4, 3, 2, 1, 0]])
    assert torch.equal(out[1], images[1])


def test_augmented_batches_are_shifted_and_flipped_windows(data):
    """Every augmented image is one of the 81 padded windows of its source, mirrored or not."""
    images, labels = data.tensors("val")
    loader = cd.DeviceLoader(images, labels, batch_size=16, augment=True, mean=(0, 0, 0), std=(1, 1, 1))
    out = torch.cat([x for x, _ in loader])  # shuffle=False: same order as ``images``
    padded = F.pad(images.float() / 255, (4, 4, 4, 4))
    windows = padded.unfold(2, 32, 1).unfold(3, 32, 1)  # (N, 3, 9, 9, 32, 32)
    flipped_seen = 0
    for i in range(len(images)):
        cands = windows[i].permute(1, 2, 0, 3, 4).reshape(81, 3, 32, 32)
        plain = (cands - out[i]).abs().amax(dim=(1, 2, 3)).min()
        mirrored = (cands.flip(-1) - out[i]).abs().amax(dim=(1, 2, 3)).min()
        assert min(plain, mirrored) < 1e-6, f"image {i} is not a shifted (flipped) window"
        flipped_seen += bool(mirrored < 1e-6 and plain > 1e-6)
    assert 0 < flipped_seen < len(images)


def test_synthetic_data_is_learnable():
    torch.manual_seed(0)
    data = cd.load_cifar10(sizes=(384, 256, 1), synthetic=True)
    train, val, _ = cd.make_device_loaders(data, 32, device="cpu", augment=False)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(4),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )
    history = fit(
        model,
        train,
        nn.CrossEntropyLoss(),
        torch.optim.Adam(model.parameters(), lr=1e-2),
        3,
        val_loader=val,
        metrics={"acc": accuracy},
        show_progress=False,
    )
    assert history["val_acc"][-1] > 0.3  # chance is 0.1; 36 steps of a tiny CNN get well above it


@pytest.fixture
def offline(monkeypatch):
    """Full mode, no override, and every way to the network fails loudly instead of connecting."""
    monkeypatch.setenv("COURSE_FAST", "0")
    monkeypatch.delenv(cd.SYNTHETIC_ENV, raising=False)
    calls = []

    def no_network(*args, **kwargs):
        calls.append(args)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr("torchvision.datasets.utils.download_and_extract_archive", no_network)
    monkeypatch.setattr("torchvision.datasets.utils.download_url", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return calls


@pytest.mark.parametrize("download", [True, False])
def test_full_mode_without_data_names_archive_md5_url_and_folder(tmp_path, offline, download):
    with pytest.raises(cd.CifarUnavailableError) as info:
        cd.load_cifar10(root=tmp_path, download=download)
    message = str(info.value)
    for needle in (
        "cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        str(tmp_path),
    ):
        assert needle in message
    assert len(offline) == int(download)  # one (refused) download attempt, or none
    assert not list(tmp_path.glob("cifar-10-batches-py/*"))


def test_corrupt_archive_is_reported(tmp_path, offline):
    (tmp_path / cd.CIFAR10_ARCHIVE).write_bytes(b"not really a tarball")
    with pytest.raises(cd.CifarUnavailableError, match="MD5 does not match"):
        cd.load_cifar10(root=tmp_path)


def test_fast_mode_asking_for_real_data_also_fails_clearly(tmp_path, offline, monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    with pytest.raises(cd.CifarUnavailableError, match="cifar-10-python.tar.gz"):
        cd.load_cifar10(root=tmp_path, synthetic=False, download=False)
    fast = cd.load_cifar10(root=tmp_path, sizes=(8, 4, 4))  # fast mode, no data: the labelled stand-in
    assert fast.synthetic


@pytest.mark.parametrize("value", ["1", "y", " YES "])
def test_override_variable_forces_the_labelled_stand_in(tmp_path, offline, monkeypatch, capsys, value):
    monkeypatch.setenv(cd.SYNTHETIC_ENV, value)
    data = cd.load_cifar10(root=tmp_path, sizes=(8, 4, 4))
    assert data.synthetic and "SYNTHETIC" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["2", "maybe", "ja"])
def test_override_variable_with_an_unknown_value_is_an_error(tmp_path, offline, monkeypatch, value):
    """Such values used to mean False silently (while COURSE_FAST=2 raised): one strict rule now."""
    monkeypatch.setenv(cd.SYNTHETIC_ENV, value)
    with pytest.raises(ValueError, match=f"{cd.SYNTHETIC_ENV}='{value}' is not understood"):
        cd.load_cifar10(root=tmp_path, sizes=(8, 4, 4))


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"synthetic": "no"}, TypeError, "synthetic .*must be True or False"),  # a string used to mean True
        ({"synthetic": 1}, TypeError, "synthetic .*must be True or False"),
        ({"download": "yes"}, TypeError, "download must be True or False"),
        ({"sizes": (8, 4)}, ValueError, r"\(train, validation, test\)"),
        ({"sizes": (8, 0, 4)}, ValueError, "validation size"),
        ({"sizes": (49_000, 2_000, 4)}, ValueError, "50000 training"),
        ({"seed": 0.5}, TypeError, "seed"),
    ],
)
def test_load_cifar10_refuses_malformed_arguments_before_loading(tmp_path, kwargs, error, words):
    with pytest.raises(error, match=words):
        cd.load_cifar10(root=tmp_path, **{"sizes": (8, 4, 4), **kwargs})
    assert not any(tmp_path.iterdir())


def test_cifar_splits_describe_real_shape_and_given_constants(data):
    assert data.image_shape == (32, 32, 3) and data.mean == cd.CIFAR10_MEAN and data.std == cd.CIFAR10_STD
    assert "32x32 pixels, 3 channels" in data.describe() and "mean/std given" in data.describe()
