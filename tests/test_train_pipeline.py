"""The GPU-aware training options of course_utils.train on the CPU, and notebook 07's own code."""

from __future__ import annotations

from copy import deepcopy

import pytest
import torch
import torch.nn.functional as F
from nbcode import load_exports
from PIL import Image
from torch import nn
from torchvision import transforms as T

import course_utils.data as cd
from course_utils.checkpoint import BEST, LAST, load_checkpoint
from course_utils.train import accuracy, autocast_dtype, describe_precision, evaluate, fit, predict, train_epoch

NOTEBOOK = "07_cifar10_pipeline"


@pytest.fixture(scope="module")
def data() -> cd.CifarSplits:
    return cd.load_cifar10(sizes=(96, 32, 32), synthetic=True)


def small_cnn() -> nn.Module:
    """BatchNorm (running statistics) and dropout (global RNG) make resuming exactly a real test."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(4),
        nn.Dropout(0.2),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 10),
    )


def run(
    data, folder, epochs: int, *, loaders: str, stop_after: int | None = None, resume: bool = False, init_seed: int = 0
):
    torch.manual_seed(init_seed)
    model = small_cnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    make = cd.make_device_loaders if loaders == "device" else cd.make_dataloaders
    train, val, _ = make(data, 16, device="cpu", augment=True, seed=3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=epochs * len(train))

    def stop(epoch, history):
        if epoch == stop_after:
            raise KeyboardInterrupt(f"simulated interruption after epoch {epoch}")

    history = fit(
        model,
        train,
        nn.CrossEntropyLoss(label_smoothing=0.1),
        optimizer,
        epochs,
        val_loader=val,
        metrics={"acc": accuracy},
        scheduler=scheduler,
        scheduler_interval="step",
        show_progress=False,
        checkpoint_dir=folder,
        resume=resume,
        on_epoch_end=stop,
        amp=True,
        channels_last=True,
    )
    return model, optimizer, history


@pytest.mark.parametrize("loaders", ["device", "classic"])
def test_resume_after_epoch_k_equals_an_uninterrupted_run(data, tmp_path, loaders):
    model_a, opt_a, hist_a = run(data, tmp_path / "a", 3, loaders=loaders)
    with pytest.raises(KeyboardInterrupt):
        run(data, tmp_path / "b", 3, loaders=loaders, stop_after=2)
    assert load_checkpoint(tmp_path / "b" / LAST)["epoch"] == 2
    torch.manual_seed(123)  # the resumed process starts from some other random state
    model_b, opt_b, hist_b = run(data, tmp_path / "b", 3, loaders=loaders, resume=True, init_seed=7)
    for (name, a), (_, b) in zip(model_a.state_dict().items(), model_b.state_dict().items()):
        assert torch.equal(a, b), f"{name} differs after resuming"
    assert hist_a == hist_b and len(hist_b["val_acc"]) == 3
    assert opt_a.param_groups[0]["lr"] == opt_b.param_groups[0]["lr"]


def test_checkpoints_every_epoch_and_the_best(data, tmp_path):
    _, _, history = run(data, tmp_path, 2, loaders="device")
    last, best = load_checkpoint(tmp_path / LAST), load_checkpoint(tmp_path / BEST)
    assert last["epoch"] == 2 and last["history"] == history
    best_epoch = max(range(2), key=lambda i: (history["val_acc"][i], -i)) + 1
    assert best["epoch"] == best_epoch and best["extra"]["best"] == max(history["val_acc"])
    assert set(last["rng"]) >= {"torch", "numpy", "python", "data"}


def test_resume_from_a_finished_run_trains_nothing(data, tmp_path):
    model_a, _, hist = run(data, tmp_path, 1, loaders="device")
    model_b, _, hist_b = run(data, tmp_path, 1, loaders="device", resume=True, init_seed=9)
    assert hist_b == hist
    assert all(torch.equal(a, b) for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values()))


class NaNAt:
    """Batches of random images with one NaN pixel at ``(epoch, step)``."""

    def __init__(self, epoch: int, step: int, steps: int = 4) -> None:
        self.target, self.steps, self.epoch = (epoch, step), steps, 0

    def __iter__(self):
        self.epoch += 1
        for step in range(self.steps):
            x = torch.randn(8, 3, 32, 32)
            if (self.epoch, step) == self.target:
                x[0, 0, 0, 0] = float("nan")
            yield x, torch.randint(0, 10, (8,))


def test_nan_loss_stops_training_naming_epoch_and_step():
    torch.manual_seed(0)
    model = small_cnn()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(
        FloatingPointError, match=r"epoch 2: loss became nan at step 4 of this pass \(counting from 1\)"
    ):
        fit(
            model,
            NaNAt(epoch=2, step=3),
            nn.CrossEntropyLoss(),
            torch.optim.SGD(model.parameters(), lr=0.01),
            3,
            show_progress=False,
            amp=True,
            channels_last=True,
        )
    assert all(torch.isfinite(p).all() for p in model.parameters())  # stopped before the bad update
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_tensorboard_logging_writes_events(data, tmp_path):
    train, val, _ = cd.make_device_loaders(data, 32, device="cpu", augment=False)
    model = small_cnn()
    fit(
        model,
        train,
        nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=0.01),
        1,
        val_loader=val,
        metrics={"acc": accuracy},
        show_progress=False,
        tensorboard=tmp_path / "tb",
    )
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_cpu_precision_evaluate_and_predict(data):
    assert autocast_dtype("cpu") is None and describe_precision("cpu").startswith("float32")
    _, val, _ = cd.make_device_loaders(data, 32, device="cpu", augment=False)
    model = small_cnn().eval()
    logits, targets = predict(model, val, amp=True, channels_last=True)
    assert logits.shape == (32, 10) and logits.dtype == torch.float32 and torch.equal(targets, val.labels)
    stats = evaluate(model, val, nn.CrossEntropyLoss(), metrics={"acc": accuracy}, amp=True)
    torch.testing.assert_close(torch.tensor(stats["loss"]), F.cross_entropy(logits, targets))
    assert stats["acc"] == pytest.approx(float(accuracy(logits, targets)))


# ----------------------------------------------------------------------------- notebook 07's exported code


@pytest.fixture(scope="module")
def nb():
    return load_exports(NOTEBOOK)


def test_notebook_conv_and_pool_from_scratch_match_torch(nb):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 9, 11, generator=g)
    weight, bias = torch.randn(4, 5, 3, 3, generator=g), torch.randn(4, generator=g)
    for padding in (0, 1, 2):
        torch.testing.assert_close(
            nb.conv2d_from_scratch(x, weight, bias, padding), F.conv2d(x, weight, bias, padding=padding)
        )
    y = torch.randn(3, 2, 8, 6, generator=g)
    torch.testing.assert_close(nb.max_pool_from_scratch(y), F.max_pool2d(y, 2))
    for size, kernel, stride, padding in [(32, 5, 1, 2), (31, 3, 2, 0), (16, 2, 2, 0), (7, 7, 1, 3)]:
        expected = F.conv2d(
            torch.zeros(1, 1, size, size), torch.zeros(1, 1, kernel, kernel), stride=stride, padding=padding
        ).shape[-1]
        assert nb.conv_output_size(size, kernel, stride, padding) == expected


def test_notebook_networks_have_the_expected_shapes(nb):
    notes = nb.NotesNet()
    assert notes(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in notes.parameters()) == 145_578
    assert [type(m).__name__ for m in notes.layers][-2:] == ["Linear", "Linear"]
    strong = nb.SmallResNet()
    assert strong(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert any(isinstance(m, nn.BatchNorm2d) for m in strong.modules())


def test_notebook_normalisation_and_augmentation_loops_match(nb):
    g = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (5, 3, 8, 8), generator=g, dtype=torch.uint8)
    offsets = torch.randint(0, 5, (5, 2), generator=g)
    assert torch.equal(nb.crop_one_by_one(images, offsets, 2), cd.random_crop(images, offsets, 2))
    mask = torch.tensor([True, False, True, True, False])
    assert torch.equal(nb.flip_one_by_one(images, mask), torch.where(mask.view(-1, 1, 1, 1), images.flip(-1), images))
    hwc = images.permute(0, 2, 3, 1).numpy()
    mean, std = nb.channel_stats(hwc)
    pixels = torch.from_numpy(hwc).float().div(255).reshape(-1, 3)
    torch.testing.assert_close(mean, pixels.mean(0))
    torch.testing.assert_close(std, pixels.std(0, correction=0))


def test_notebook_confusion_matrix_and_per_class_accuracy(nb):
    g = torch.Generator().manual_seed(3)
    targets, preds = torch.randint(0, 4, (200,), generator=g), torch.randint(0, 4, (200,), generator=g)
    matrix = nb.confusion_matrix(preds, targets, 4)
    assert torch.equal(matrix, torch.bincount(targets * 4 + preds, minlength=16).view(4, 4))
    expected = torch.stack([(preds[targets == c] == c).float().mean() for c in range(4)])
    torch.testing.assert_close(nb.per_class_accuracy(matrix), expected)


def test_notebook_normalize_image_matches_torchvision(nb):

    g = torch.Generator().manual_seed(4)
    image = torch.randint(0, 256, (7, 9, 3), generator=g, dtype=torch.uint8).numpy()
    mean, std = (0.3, 0.5, 0.7), (0.2, 0.25, 0.3)
    expected = T.Normalize(mean, std)(T.ToTensor()(Image.fromarray(image)))
    torch.testing.assert_close(nb.normalize_image(image, mean, std), expected)


def test_notebook_training_loop_by_hand_matches_train_epoch(nb):

    g = torch.Generator().manual_seed(5)
    batches = [(torch.randn(6, 3, 32, 32, generator=g), torch.randint(0, 10, (6,), generator=g)) for _ in range(3)]
    torch.manual_seed(0)
    model_a = nb.NotesNet()
    model_b = deepcopy(model_a)
    opt_a = torch.optim.SGD(model_a.parameters(), lr=0.05)
    loss_a = nb.train_by_hand(model_a, batches, opt_a, nn.CrossEntropyLoss(), torch.device("cpu"))
    stats = train_epoch(
        model_b, batches, nn.CrossEntropyLoss(), torch.optim.SGD(model_b.parameters(), lr=0.05), torch.device("cpu")
    )
    assert loss_a == pytest.approx(stats["loss"])
    for p, q in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize(
    "capability, dtype, words", [((7, 5), torch.float16, "GradScaler"), ((8, 0), torch.bfloat16, "bfloat16")]
)
def test_autocast_dtype_follows_the_gpu_generation(monkeypatch, capability, dtype, words):
    # T4/V100 (7.x) only emulate bf16, so they must get fp16 + GradScaler; Ampere and newer get bf16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert autocast_dtype("cuda") == dtype
    assert words in describe_precision("cuda")
    assert describe_precision("cuda", amp=False) == "float32"
