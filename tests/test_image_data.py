"""Any image dataset through course_utils.data: shapes, statistics, splits, both input paths, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import course_utils.data as cd
from course_utils.train import accuracy, fit


def templated_images(n: int, shape: tuple[int, ...], classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, *shape) whose class is one of ``classes`` fixed random blob patterns plus noise."""
    g = np.random.default_rng(seed)
    h, w = shape[:2]
    coarse = g.random((classes, 4, 4, *shape[2:]))  # a 4x4 pattern per class, upsampled to the image size
    templates = coarse.repeat(-(-h // 4), axis=1).repeat(-(-w // 4), axis=2)[:, :h, :w]  # (classes, H, W[, C])
    labels = g.integers(0, classes, n)
    pixels = 0.7 * templates[labels] + 0.3 * g.random((n, *shape))
    return (pixels * 255).round().astype(np.uint8), labels


def small_cnn(channels: int, classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Dropout(0.1),
        nn.Linear(8 * 16, classes),
    )


@pytest.fixture(scope="module")
def grey() -> cd.ImageSplits:
    images, labels = templated_images(160, (28, 28))  # (N, H, W): greyscale without a channel axis
    return cd.ImageSplits.from_arrays(
        images, labels, ["a", "b", "c"], val_size=32, test_size=0.2, seed=1, name="grey blobs"
    )


# ----------------------------------------------------------------------------- arrays, statistics, splits


@pytest.mark.parametrize(
    "shape, channels",
    [((5, 28, 28), 1), ((5, 28, 28, 1), 1), ((5, 64, 64, 3), 3), ((5, 9, 7, 2), 2), ((5, 16, 16, 13), 13)],
)
def test_as_image_array_gives_channels_last_for_any_channel_count(shape, channels):
    out = cd.as_image_array(np.zeros(shape, dtype=np.uint8))
    assert out.shape == (*shape[:3], channels)


@pytest.mark.parametrize(
    "bad, error, words",
    [
        (np.zeros((2, 8, 8, 3), dtype=np.float32), TypeError, "uint8"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), TypeError, "NumPy"),
        ([[0, 1]], TypeError, "NumPy"),
        (np.zeros((8, 8), dtype=np.uint8), ValueError, r"\(N, H, W\)"),
        (np.zeros((1, 2, 8, 8, 3), dtype=np.uint8), ValueError, r"\(N, H, W\)"),
        (np.zeros((0, 8, 8, 3), dtype=np.uint8), ValueError, "at least one image"),
        (np.zeros((2, 3, 32, 32), dtype=np.uint8), ValueError, "channels-first"),
    ],
)
def test_as_image_array_says_what_was_expected(bad, error, words):
    with pytest.raises(error, match=words):
        cd.as_image_array(bad)


@pytest.mark.parametrize("shape", [(6, 5, 7), (6, 5, 7, 3)])
def test_channel_mean_std_matches_torch(shape):
    images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    mean, std = cd.channel_mean_std(images, chunk=17)  # several chunks, one partial
    x = torch.from_numpy(images).double().div(255).reshape(-1, 1 if len(shape) == 3 else shape[-1])
    ref_std, ref_mean = torch.std_mean(x, dim=0, correction=0)
    np.testing.assert_allclose(mean, ref_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(std, ref_std.numpy(), rtol=1e-10)


def test_seeded_split_is_disjoint_sorted_and_reproducible():
    a = cd.seeded_split(50, (10, 5, 20), seed=3)
    assert [len(part) for part in a] == [10, 5, 20]
    assert len(np.unique(np.concatenate(a))) == 35 and all((np.diff(part) > 0).all() for part in a)
    assert all(np.array_equal(p, q) for p, q in zip(a, cd.seeded_split(50, (10, 5, 20), seed=3)))
    assert not np.array_equal(a[0], cd.seeded_split(50, (10, 5, 20), seed=4)[0])
    with pytest.raises(ValueError, match="more than the 50 items"):
        cd.seeded_split(50, (30, 30))
    with pytest.raises(TypeError, match="seed must be an integer"):
        cd.seeded_split(50, (10,), seed=1.5)


def test_splits_describe_the_data_they_hold(grey):
    assert grey.image_shape == (28, 28, 1) and grey.channels == 1
    assert (len(grey.train_labels), len(grey.val_labels), len(grey.test_labels)) == (96, 32, 32)
    text = grey.describe()
    assert "grey blobs" in text and "28x28 pixels, 1 channel," in text and "measured" in text
    assert "CIFAR" not in text and "32x32" not in text and grey.tag == ""
    assert grey.mean == cd.channel_mean_std(grey.train_images)[0] and len(grey.std) == 1
    x, y = grey.tensors("val")
    assert x.shape == (32, 1, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.int64
    again = cd.ImageSplits.from_arrays(
        *templated_images(160, (28, 28)), ["a", "b", "c"], val_size=32, test_size=0.2, seed=1
    )
    assert np.array_equal(again.val_images, grey.val_images)  # the split is seeded


def test_splits_refuse_inconsistent_data():
    images, labels = templated_images(20, (8, 8, 3))
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\)"):
        cd.ImageSplits.from_arrays(images, labels, ["a", "b"])
    with pytest.raises(ValueError, match="same image size"):
        cd.ImageSplits((images, labels), (images[:, :4], labels), (images, labels), ["a", "b", "c"])
    with pytest.raises(ValueError, match="3 channel"):
        cd.ImageSplits.from_arrays(images, labels, ["a", "b", "c"], mean=(0.5,), std=(0.2,))
    with pytest.raises(ValueError, match="std must be positive"):
        cd.ImageSplits.from_arrays(images, labels, ["a", "b", "c"], mean=(0.5,) * 3, std=(0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match="leave some for training"):
        cd.ImageSplits.from_arrays(images, labels, ["a", "b", "c"], val_size=10, test_size=10)
    with pytest.raises(TypeError, match="synthetic must be True or False"):
        cd.ImageSplits.from_arrays(images, labels, ["a", "b", "c"], synthetic="no")


def test_dataset_to_arrays_reads_an_image_folder(tmp_path):
    from PIL import Image
    from torchvision import transforms as T
    from torchvision.datasets import ImageFolder

    for name, level in (("dark", 30), ("light", 220)):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.new("RGB", (10 + i, 8), (level, level, level)).save(tmp_path / name / f"{i}.png")
    Image.new("L", (9, 9), 40).save(tmp_path / "dark" / "grey.png")  # a greyscale file among RGB ones
    folder = ImageFolder(tmp_path)
    with pytest.raises(ValueError, match=r"item 1 \(.*1\.png\) is 11x8 pixels .* pass size=\(H, W\)"):
        cd.dataset_to_arrays(folder)
    images, labels = cd.dataset_to_arrays(folder, size=(8, 12))
    assert images.shape == (7, 8, 12, 3) and images.dtype == np.uint8 and labels.tolist() == [0] * 4 + [1] * 3
    assert images[0].min() == images[0].max() == 30 and images[-1].min() == 220
    grey, _ = cd.dataset_to_arrays(folder, size=8, channels=1)
    assert grey.shape == (7, 8, 8, 1)
    splits = cd.ImageSplits.from_arrays(images, labels, folder.classes, val_size=2, test_size=2)
    assert splits.classes == ("dark", "light") and splits.image_shape == (8, 12, 3)
    with pytest.raises(TypeError, match="transform=None"):
        cd.dataset_to_arrays(ImageFolder(tmp_path, transform=T.ToTensor()))
    with pytest.raises(ValueError, match="channels must be 1"):
        cd.dataset_to_arrays(folder, channels=2)
    with pytest.raises(ValueError, match="empty"):
        cd.dataset_to_arrays([])
    with pytest.raises(TypeError, match="map-style dataset"):
        cd.dataset_to_arrays(5)


# ----------------------------------------------------------------------------- both input paths

AUGMENTATIONS = [cd.Augmentation(), cd.Augmentation(crop_padding=2), cd.Augmentation(flip=True), True]


@pytest.mark.parametrize("augment", AUGMENTATIONS, ids=str)
@pytest.mark.parametrize("shape", [(28, 28), (9, 11, 2), (64, 64, 3)], ids=lambda s: "x".join(map(str, s)))
def test_classic_and_device_paths_deliver_identical_batches(shape, augment):
    """Same data and seed: the same order, crops, flips and normalised values, two epochs running."""
    images, labels = templated_images(40, shape)
    data = cd.ImageSplits.from_arrays(images, labels, ["a", "b", "c"], val_size=4, test_size=4)
    classic, classic_val, _ = cd.make_dataloaders(data, 8, device="cpu", augment=augment, seed=5)
    device, device_val, _ = cd.make_device_loaders(data, 8, device="cpu", augment=augment, seed=5)
    channels = 1 if len(shape) == 2 else shape[-1]
    for _ in range(2):
        pairs = list(zip(classic, device, strict=True))
        for (xa, ya), (xb, yb) in pairs:
            assert xa.shape == (len(ya), channels, *shape[:2]) and xa.dtype == torch.float32
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(pairs[0][0][1], torch.from_numpy(labels[:8]))  # shuffled
    for (xa, _), (xb, _) in zip(classic_val, device_val, strict=True):
        assert torch.equal(xa, xb)


def test_augmentation_switches_work_separately():
    images = np.arange(2 * 6 * 6, dtype=np.uint8).reshape(2, 6, 6)
    data = cd.ImageSplits.from_arrays(
        np.concatenate([images] * 3), [0, 1] * 3, ["a", "b"], val_size=1, test_size=1, mean=(0.0,), std=(1 / 255,)
    )  # batches hold raw pixel values
    raw = {tuple(x.flatten().tolist()) for x in torch.from_numpy(images).float()}
    flipped = {tuple(x.flip(-1).flatten().tolist()) for x in torch.from_numpy(images).float()}

    def epoch(augment):
        loader = cd.make_device_loaders(data, 4, device="cpu", augment=augment, seed=2)[0]
        return [tuple(x[0].round().flatten().tolist()) for xb, _ in loader for x in xb]

    flips_only = epoch(cd.Augmentation(flip=True))
    assert set(flips_only) <= raw | flipped and set(flips_only) & flipped  # mirrored, never shifted
    crops_only = epoch(cd.Augmentation(crop_padding=1))
    assert not set(crops_only) & flipped - raw and not set(crops_only) <= raw  # shifted, never mirrored


@pytest.mark.parametrize(
    "shape, augment",
    [((28, 28), cd.Augmentation(crop_padding=2)), ((64, 64, 3), cd.Augmentation(crop_padding=4, flip=True))],
)
@pytest.mark.parametrize("path", ["classic", "device"])
def test_pipeline_trains_on_1_channel_28x28_and_3_channel_64x64(shape, augment, path):
    """The public API end to end, with no tensor surgery: arrays -> ImageSplits -> loaders -> fit."""
    torch.manual_seed(0)
    images, labels = templated_images(120, shape)
    data = cd.ImageSplits.from_arrays(images, labels, ["a", "b", "c"], val_size=48, test_size=8, seed=0)
    make = cd.make_dataloaders if path == "classic" else cd.make_device_loaders
    train, val, _ = make(data, 32, device="cpu", augment=augment)
    model = small_cnn(data.channels, 3)
    history = fit(
        model,
        train,
        nn.CrossEntropyLoss(),
        torch.optim.Adam(model.parameters(), lr=1e-2),
        3,
        device="cpu",
        val_loader=val,
        metrics={"acc": accuracy},
        show_progress=False,
    )
    assert history["val_acc"][-1] > 0.7  # chance is 1/3: the templates are easy to tell apart


# ----------------------------------------------------------------------------- exact resume (fault 6)


def test_restoring_the_generator_resumes_the_classic_path_exactly_with_workers():
    """A fresh loader given the generator state after epoch 1 delivers epoch 2 (crops, flips, order)."""
    data = cd.load_cifar10(sizes=(48, 8, 8), synthetic=True)
    loader = cd.make_dataloaders(data, 16, device="cpu", augment=True, num_workers=1)[0]
    list(loader)
    state = loader.generator.get_state()
    second = list(loader)
    fresh = cd.make_dataloaders(data, 16, device="cpu", augment=True, num_workers=1, seed=7)[0]
    fresh.generator.set_state(state)
    for (xa, ya), (xb, yb) in zip(second, fresh, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_fit_resumes_bit_exact_with_dataloader_workers(tmp_path):
    """Stopped after epoch 1 and resumed from last.pt = uninterrupted, with 2 workers and dropout."""
    data = cd.load_cifar10(sizes=(48, 16, 8), synthetic=True)

    def run(folder, stop_after=None, resume=False, init_seed=0):
        torch.manual_seed(init_seed)
        model = small_cnn(3, 10)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        train = cd.make_dataloaders(data, 16, device="cpu", augment=True, num_workers=2)[0]
        val = cd.make_device_loaders(data, 16, device="cpu")[1]  # no workers needed to evaluate

        def crash(epoch, history):
            if epoch == stop_after:
                raise KeyboardInterrupt

        fit(
            model,
            train,
            nn.CrossEntropyLoss(),
            opt,
            2,
            device="cpu",
            val_loader=val,
            metrics={"acc": accuracy},
            checkpoint_dir=folder,
            resume=resume,
            on_epoch_end=crash,
            show_progress=False,
        )
        return model

    uninterrupted = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_after=1)
    torch.manual_seed(1234)
    resumed = run(tmp_path / "b", resume=True, init_seed=99)
    for (name, a), b in zip(uninterrupted.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs after resuming"


# ----------------------------------------------------------------------------- bad inputs fail early


@pytest.fixture(scope="module")
def rgb() -> cd.ImageSplits:
    return cd.ImageSplits.from_arrays(*templated_images(24, (8, 8, 3)), ["a", "b", "c"], val_size=4, test_size=4)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"mean": (0.5,), "std": (0.2,)}, ValueError, "3 channel"),
        ({"mean": (0.5,) * 3}, ValueError, "both mean and std"),
        ({"std": (0.2, 0.2, float("nan"))}, ValueError, "both mean and std"),
        ({"mean": (0.5,) * 3, "std": (0.2, 0.2, float("nan"))}, ValueError, "finite"),
        ({"augment": cd.Augmentation(crop_padding=8)}, ValueError, "too large for 8x8"),
        ({"augment": "yes"}, TypeError, "augment must be True, False or an Augmentation"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"eval_batch_size": 2.5}, TypeError, "eval_batch_size"),
        ({"seed": "1"}, TypeError, "seed"),
    ],
)
@pytest.mark.parametrize("make", [cd.make_dataloaders, cd.make_device_loaders], ids=["classic", "device"])
def test_loader_factories_refuse_bad_arguments_up_front(rgb, make, kwargs, error, words):
    args = {"batch_size": 4, **kwargs}
    with pytest.raises(error, match=words):
        make(rgb, args.pop("batch_size"), device="cpu", **args)


def test_loader_factories_refuse_other_data_and_bad_worker_counts(rgb):
    with pytest.raises(TypeError, match="ImageSplits"):
        cd.make_device_loaders((rgb.train_images, rgb.train_labels), 4)
    with pytest.raises(ValueError, match="num_workers must be an integer >= 0"):
        cd.make_dataloaders(rgb, 4, num_workers=-1)
    with pytest.raises(TypeError, match="flip must be True or False"):
        cd.Augmentation(flip="no")
    with pytest.raises(ValueError, match="crop_padding must be an integer >= 0"):
        cd.Augmentation(crop_padding=-1)


@pytest.mark.parametrize(
    "images, labels, kwargs, error, words",
    [
        (torch.zeros(4, 3, 8, 8), torch.zeros(4, dtype=torch.long), {}, TypeError, "uint8"),
        (np.zeros((4, 3, 8, 8), dtype=np.uint8), torch.zeros(4, dtype=torch.long), {}, TypeError, "torch.Tensor"),
        (torch.zeros(0, 3, 8, 8, dtype=torch.uint8), torch.zeros(0, dtype=torch.long), {}, ValueError, "empty"),
        (torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(3, dtype=torch.long), {}, ValueError, "labels"),
        (torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(4), {}, TypeError, "integer class indices"),
        (torch.zeros(4, 3, 8, 8, dtype=torch.uint8), -torch.ones(4, dtype=torch.long), {}, ValueError, ">= 0"),
        (
            torch.zeros(4, 2, 8, 8, dtype=torch.uint8),
            torch.zeros(4, dtype=torch.long),
            {"mean": cd.CIFAR10_MEAN, "std": cd.CIFAR10_STD},
            ValueError,
            "2 channel",
        ),
        (
            torch.zeros(4, 3, 8, 8, dtype=torch.uint8),
            torch.zeros(4, dtype=torch.long),
            {"shuffle": "no"},
            TypeError,
            "shuffle must be True or False",
        ),
    ],
)
def test_device_loader_says_what_was_expected(images, labels, kwargs, error, words):
    with pytest.raises(error, match=words):
        cd.DeviceLoader(images, labels, batch_size=2, **kwargs)


def test_device_loader_takes_greyscale_without_a_channel_axis_and_measures_its_statistics():
    images = torch.randint(0, 256, (10, 6, 6), dtype=torch.uint8)
    loader = cd.DeviceLoader(images, torch.zeros(10, dtype=torch.long), batch_size=10)
    x, _ = next(iter(loader))
    assert x.shape == (10, 1, 6, 6)
    torch.testing.assert_close(x.mean(), torch.tensor(0.0), atol=1e-5, rtol=0)  # own mean/std: standardised
    torch.testing.assert_close(x.std(correction=0), torch.tensor(1.0), atol=1e-5, rtol=0)


def test_random_crop_refuses_offsets_outside_the_padded_image():
    """An offset beyond 2 * padding used to wrap pixels in from the next row; now it is an error."""
    images = torch.arange(2 * 16, dtype=torch.float32).view(2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        cd.random_crop(images, torch.tensor([[0, 0], [0, 3]]), padding=1)
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        cd.random_crop(images, torch.tensor([[-1, 0], [0, 0]]), padding=1)
    with pytest.raises(TypeError, match="integers"):
        cd.random_crop(images, torch.zeros(2, 2), padding=1)
    with pytest.raises(TypeError, match="bool"):
        cd.flip_horizontal(images, torch.tensor([1, 0]))
