"""fit's GPU-aware branches (float16 + GradScaler, bfloat16, channels_last, compile, pinned memory).

CI has no GPU, yet these branches must not go untested until someone trains on one. CPU autocast supports
float16 and bfloat16 and ``GradScaler("cpu")`` exists, so the tests force ``autocast_dtype`` and drive the
very code that CUDA runs, on the CPU. On a machine with CUDA every test also runs on the GPU.
"""

from __future__ import annotations

import shutil

import pytest
import torch
from torch import nn

import course_utils.data as cd
import course_utils.epoch as epoch
from course_utils.checkpoint import LAST, load_checkpoint, save_checkpoint
from course_utils.number_words import PAD_ID, NumberBatches, Seq2SeqTransformer
from course_utils.train import accuracy, evaluate, fit, train_epoch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
LOW_PRECISION = [torch.float16, torch.bfloat16]


@pytest.fixture(scope="module")
def data() -> cd.CifarSplits:
    return cd.load_cifar10(sizes=(96, 32, 32), synthetic=True)


@pytest.fixture
def force_dtype(monkeypatch):
    """Make ``fit(amp=True)`` pick ``dtype`` on any device, as it would on a CUDA GPU."""

    def force(dtype: torch.dtype | None) -> None:
        monkeypatch.setattr(epoch, "autocast_dtype", lambda device: dtype)

    return force


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(4),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 10),
    )


def small_mlp() -> nn.Module:
    """No convolutions: cuDNN's non-deterministic kernels would make exact comparisons flaky on a GPU."""
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 32), nn.ReLU(), nn.Linear(32, 10))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
def test_fit_computes_in_the_autocast_dtype_and_keeps_float32_weights(data, tmp_path, force_dtype, device, dtype):
    force_dtype(dtype)
    torch.manual_seed(0)
    model = small_cnn().to(device)
    seen: list[torch.dtype] = []
    model[0].register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    train_loader, val_loader, _ = cd.make_device_loaders(data, 16, device=device, augment=True)
    history = fit(
        model,
        train_loader,
        nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        4,
        val_loader=val_loader,
        metrics={"acc": accuracy},
        show_progress=False,
        amp=True,
        channels_last=True,
        checkpoint_dir=tmp_path,
    )
    assert set(seen) == {dtype}  # the convolution ran in low precision, in training and in validation
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float32
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert history["train_loss"][-1] < history["train_loss"][0]  # it learns, with or without loss scaling
    scaler = load_checkpoint(tmp_path / LAST)["scaler"]
    # float16 needs the GradScaler (its state goes into the checkpoint); bfloat16 has float32's range
    assert bool(scaler) == (dtype == torch.float16)


@pytest.mark.parametrize("device", DEVICES)
def test_grad_scaler_skips_the_step_whose_gradients_overflow(device):
    torch.manual_seed(0)
    model = small_mlp().to(device)
    before = [p.detach().clone() for p in model.parameters()]
    batch = [(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)))]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    dev = torch.device(device)
    # a loss multiplied by 2**40 overflows float16 (max 65504) in the backward pass
    huge = torch.amp.GradScaler(dev.type, init_scale=2.0**40)
    train_epoch(model, batch, nn.CrossEntropyLoss(), optimizer, dev, amp_dtype=torch.float16, scaler=huge)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "an inf gradient was applied"
    assert huge.get_scale() == 2.0**39  # skipped, and the scale halved for the next step
    sane = torch.amp.GradScaler(dev.type, init_scale=2.0**8)
    train_epoch(model, batch, nn.CrossEntropyLoss(), optimizer, dev, amp_dtype=torch.float16, scaler=sane)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert sane.get_scale() == 2.0**8


def run_fp16(data, folder, epochs: int, device: str, *, stop_after: int | None = None, resume: bool = False):
    torch.manual_seed(0)
    model = small_mlp().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader, _, _ = cd.make_device_loaders(data, 16, device=device, augment=True, seed=1)

    def stop(epoch, history):
        if epoch == stop_after:
            raise KeyboardInterrupt(f"simulated interruption after epoch {epoch}")

    fit(
        model,
        loader,
        nn.CrossEntropyLoss(),
        optimizer,
        epochs,
        show_progress=False,
        amp=True,
        checkpoint_dir=folder,
        resume=resume,
        best_key=None,
        on_epoch_end=stop,
    )
    return model


@pytest.mark.parametrize("device", DEVICES)
def test_float16_resume_restores_the_grad_scaler(data, tmp_path, force_dtype, device):
    force_dtype(torch.float16)
    whole = run_fp16(data, tmp_path / "a", 3, device)
    with pytest.raises(KeyboardInterrupt):
        run_fp16(data, tmp_path / "b", 3, device, stop_after=2)
    scale = load_checkpoint(tmp_path / "b" / LAST)["scaler"]["scale"]
    # the early steps overflowed at the default scale 65536, so a resume that forgot the scaler would differ
    assert scale < 65536.0
    resumed = run_fp16(data, tmp_path / "b", 3, device, resume=True)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs after resuming a float16 run"
    assert load_checkpoint(tmp_path / "b" / LAST)["scaler"] == load_checkpoint(tmp_path / "a" / LAST)["scaler"]


def _has_compiler(device: str) -> bool:
    # torch.compile's CPU backend writes C++; on CUDA it writes Triton kernels
    return device != "cpu" or any(shutil.which(cc) for cc in ("g++", "c++", "clang++"))


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_training_matches_eager_and_saves_plain_weights(data, tmp_path, device):
    if not _has_compiler(device):
        pytest.skip("torch.compile on the CPU needs a C++ compiler (g++ or clang++)")
    models = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = small_mlp().to(device)
        loader, _, _ = cd.make_device_loaders(data, 32, device=device, augment=False)
        fit(
            model,
            loader,
            nn.CrossEntropyLoss(),
            torch.optim.SGD(model.parameters(), lr=0.05),
            1,
            show_progress=False,
            compile_model=compiled,
            checkpoint_dir=tmp_path / str(compiled),
            best_key=None,
        )
        models.append(model)
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # fused kernels may round differently
    saved = load_checkpoint(tmp_path / "True" / LAST)["model"]
    assert list(saved) == list(models[1].state_dict())  # no "_orig_mod." prefixes: loads into a plain model


@pytest.mark.parametrize("device", DEVICES)
def test_classic_loader_pins_memory_only_for_cuda(data, device):
    train_loader, val_loader, _ = cd.make_dataloaders(data, 16, device=device)
    assert train_loader.pin_memory == val_loader.pin_memory == (device == "cuda")
    images, labels = next(iter(train_loader))
    if device == "cuda":  # pinned host memory is what lets .to(device, non_blocking=True) overlap
        assert images.is_pinned() and labels.is_pinned()
    moved = evaluate(small_cnn().to(device), [(images, labels)], nn.CrossEntropyLoss(), torch.device(device))
    assert moved["loss"] > 0


@pytest.mark.parametrize("device", DEVICES)
def test_device_loader_batches_live_on_the_device(data, device):
    loader = cd.DeviceLoader(
        *data.tensors("train"), batch_size=32, device=device, shuffle=True, augment=True, channels_last=True
    )
    images, labels = next(iter(loader))
    assert images.device.type == labels.device.type == device
    assert images.dtype == torch.float32 and labels.dtype == torch.int64 and images.shape == (32, 3, 32, 32)
    assert images.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("device", DEVICES)
def test_checkpoint_loaded_onto_the_device_restores_the_random_state(tmp_path, device):
    model = small_mlp().to(device)
    generator = torch.Generator().manual_seed(5)
    torch.manual_seed(11)
    save_checkpoint(tmp_path / "c.pt", model, epoch=1, data_generator=generator)
    expected, expected_data = torch.rand(3), torch.rand(3, generator=generator)
    torch.manual_seed(99)
    generator.manual_seed(98)
    # map_location=device puts every saved tensor on the GPU, RNG states included; they must still load
    state = load_checkpoint(tmp_path / "c.pt", model, data_generator=generator, restore_rng=True, map_location=device)
    assert state["epoch"] == 1
    assert torch.equal(torch.rand(3), expected) and torch.equal(torch.rand(3, generator=generator), expected_data)


@pytest.mark.parametrize("device", DEVICES)
def test_a_step_hook_trains_where_the_model_is(device):
    """fit(step=...) moves every tensor of a non-(inputs, targets) batch to the model's device."""
    torch.manual_seed(0)
    model = Seq2SeqTransformer(d_model=16, num_heads=2, num_layers=1, dim_feedforward=32).to(device)

    def step(model, batch):
        src, tgt_in, tgt_out = batch
        assert src.device.type == tgt_out.device.type == device
        return nn.functional.cross_entropy(model(src, tgt_in).flatten(0, 1), tgt_out.flatten(), ignore_index=PAD_ID)

    history = fit(
        model,
        NumberBatches(list(range(20)), batch_size=10),
        optimizer=torch.optim.AdamW(model.parameters()),
        epochs=1,
        step=step,
        show_progress=False,
    )  # no device=
    assert {p.device.type for p in model.parameters()} == {device} and history["train_loss"][0] > 0
