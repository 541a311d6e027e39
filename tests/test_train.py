from collections import namedtuple

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.train import History, StepOutput, accuracy, evaluate, fit, train_epoch


def linear_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, generator=g)
    y = 3.0 * x + 1.0 + 0.01 * torch.randn(n, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=False)


def test_fit_learns_a_line_and_records_history():
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    loader = linear_data()
    history = fit(
        model,
        loader,
        nn.MSELoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=30,
        device="cpu",
        val_loader=linear_data(seed=1),
        show_progress=False,
    )
    assert set(history) == {"train_loss", "val_loss"}
    assert len(history["train_loss"]) == 30
    assert history["train_loss"][-1] < 0.01 * history["train_loss"][0]
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[3.0]]), atol=0.02, rtol=0)
    torch.testing.assert_close(model.bias.detach(), torch.tensor([1.0]), atol=0.02, rtol=0)


def test_one_epoch_equals_manual_sgd_loop():
    torch.manual_seed(0)
    a, b = nn.Linear(1, 1), nn.Linear(1, 1)
    b.load_state_dict(a.state_dict())
    loader = linear_data()
    fit(a, loader, nn.MSELoss(), torch.optim.SGD(a.parameters(), lr=0.05), epochs=1, show_progress=False)
    opt = torch.optim.SGD(b.parameters(), lr=0.05)
    for x, y in loader:
        opt.zero_grad()
        nn.functional.mse_loss(b(x), y).backward()
        opt.step()
    torch.testing.assert_close(a.weight, b.weight)
    torch.testing.assert_close(a.bias, b.bias)


def test_metrics_and_evaluate_are_sample_weighted():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    targets = torch.tensor([0, 1, 1])
    assert accuracy(logits, targets).item() == pytest.approx(2 / 3)
    # batches of unequal size: 2 correct of 2, then 0 of 1 -> 2/3, not the batch mean 1/2
    loader = DataLoader(TensorDataset(logits, targets), batch_size=2)
    stats = evaluate(nn.Identity(), loader, nn.CrossEntropyLoss(), device="cpu", metrics={"acc": accuracy})
    assert stats["acc"] == pytest.approx(2 / 3)
    assert stats["loss"] == pytest.approx(nn.functional.cross_entropy(logits, targets).item(), rel=1e-6)


def test_scheduler_and_callback_run_each_epoch():
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    seen = []
    fit(
        model,
        linear_data(),
        nn.MSELoss(),
        opt,
        epochs=3,
        scheduler=sched,
        show_progress=False,
        on_epoch_end=lambda epoch, h: seen.append((epoch, len(h["train_loss"]))),
    )
    assert seen == [(1, 1), (2, 2), (3, 3)]
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)


def test_history_state_dict_round_trip():
    h = History()
    h.log(train_loss=1.0, val_loss=2.0)
    h.log(train_loss=0.5, val_loss=1.5)
    assert h.last() == {"train_loss": 0.5, "val_loss": 1.5}
    restored = History()
    restored.load_state_dict(h.state_dict())
    assert restored == h


@pytest.mark.parametrize("epochs", [0, -2])
def test_non_positive_epochs(epochs):
    model = nn.Linear(1, 1)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        fit(model, linear_data(), nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1), epochs=epochs)


def test_bad_inputs_have_clear_errors():
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        fit(lambda x: x, linear_data(), nn.MSELoss(), opt, epochs=1)
    with pytest.raises(ValueError, match="Unknown device 'gpu'"):
        fit(model, linear_data(), nn.MSELoss(), opt, epochs=1, device="gpu")
    with pytest.raises(ValueError, match=r"\(inputs, targets\) pair"):
        train_epoch(model, [torch.zeros(2, 1)], nn.MSELoss(), opt)
    with pytest.raises(ValueError, match="produced no batches"):
        train_epoch(model, [], nn.MSELoss(), opt)
    with pytest.raises(ValueError, match="must be a scalar"):
        train_epoch(model, linear_data(), nn.MSELoss(reduction="none"), opt)
    with pytest.raises(ValueError, match=r"logits \(N, num_classes\) and targets \(N,\)"):
        accuracy(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="not both"):
        fit(model, linear_data(), nn.MSELoss(), opt, 1, step=lambda m, b: m(b[0]).sum())
    with pytest.raises(TypeError, match="loss_fn=.* or step="):
        fit(model, linear_data(), optimizer=opt, epochs=1)
    with pytest.raises(TypeError, match="needs epochs="):
        fit(model, linear_data(), nn.MSELoss(), opt)
    with pytest.raises(ValueError, match="metrics need outputs and targets"):
        evaluate(
            model, linear_data(), step=lambda m, b: nn.functional.mse_loss(m(b[0]), b[1]), metrics={"acc": accuracy}
        )


@pytest.mark.parametrize("call", ["fit", "train_epoch"])
def test_training_without_an_optimizer_is_an_error_not_an_evaluation(call):
    """Issue 9: fit(model, loader, loss, None, 3) used to evaluate silently."""
    model = nn.Linear(1, 1)
    before = model.weight.detach().clone()
    with pytest.raises(TypeError, match=r"needs optimizer=.*call evaluate"):
        if call == "fit":
            fit(model, linear_data(), nn.MSELoss(), None, 3, show_progress=False)
        else:
            train_epoch(model, linear_data(), nn.MSELoss(), None)
    assert torch.equal(model.weight, before)


def test_divergence_stops_with_epoch_and_step():
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1e6)  # explodes within a few steps
    with pytest.raises(FloatingPointError, match=r"epoch \d+: loss became (nan|inf) at step \d+"):
        fit(model, linear_data(), nn.MSELoss(), opt, epochs=20, show_progress=False)


# ----------------------------------------------------------------------------- the step hook
def dict_batches(n_batches=4, seed=0):
    """Batches that are not (inputs, targets) pairs: dicts with a per-sample weight and a padding mask."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n_batches):
        x = torch.randn(5 + i, 3, generator=g)
        out.append({"x": x, "y": (x.sum(1) > 0).long(), "keep": torch.rand(5 + i, generator=g) > 0.2})
    return out


def masked_step(model, batch):
    """Cross-entropy over the kept rows only; the metric sees the same rows."""
    logits = model(batch["x"])
    keep = batch["keep"]
    return StepOutput(nn.functional.cross_entropy(logits[keep], batch["y"][keep]), logits[keep], batch["y"][keep])


def test_step_hook_trains_any_batch_and_weights_by_the_rows_that_count():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    batches = dict_batches()
    history = fit(
        model,
        batches,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
        epochs=5,
        step=masked_step,
        val_loader=batches,
        metrics={"acc": accuracy},
        show_progress=False,
    )
    assert history["train_loss"][-1] < history["train_loss"][0]
    # evaluate's means are weighted by len(targets) of each StepOutput: the kept rows, not the batch size
    stats = evaluate(model, batches, step=masked_step, metrics={"acc": accuracy})
    logits = torch.cat([model(b["x"])[b["keep"]] for b in batches])
    targets = torch.cat([b["y"][b["keep"]] for b in batches])
    assert stats["acc"] == pytest.approx(accuracy(logits, targets).item())
    assert stats["loss"] == pytest.approx(nn.functional.cross_entropy(logits, targets).item(), rel=1e-5)
    assert history["val_loss"][-1] == pytest.approx(stats["loss"], rel=1e-6)
    # a step returning a bare loss tensor works too, weighted by the batch's first tensor length
    plain = evaluate(model, batches, step=lambda m, b: masked_step(m, b).loss)
    sizes = [len(b["x"]) for b in batches]
    means = [masked_step(model, b).loss.item() for b in batches]
    assert plain["loss"] == pytest.approx(sum(s * m for s, m in zip(sizes, means)) / sum(sizes), rel=1e-6)


def test_step_hook_equals_loss_fn_path():
    """fit(loss_fn=...) is fit(step=SupervisedStep(loss_fn)): the same weights, bit for bit."""
    weights = []
    for use_step in (False, True):
        torch.manual_seed(0)
        model = nn.Linear(1, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        if use_step:
            fit(
                model,
                linear_data(),
                optimizer=opt,
                epochs=2,
                show_progress=False,
                step=lambda m, b: nn.functional.mse_loss(m(b[0]), b[1]),
            )
        else:
            fit(model, linear_data(), nn.MSELoss(), opt, 2, show_progress=False)
        weights.append(model.weight.detach().clone())
    assert torch.equal(*weights)


# ----------------------------------------------------------------------------- issue 10, fault 7
def test_per_step_scheduler_does_not_advance_when_the_grad_scaler_skips_the_step():
    """fp16: an overflowing loss scale makes GradScaler skip every optimizer step; the schedule must wait too."""
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=8)
    batches = [(torch.randn(8, 4), torch.randint(0, 3, (8,))) for _ in range(8)]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)  # 2**40 * grad overflows float16 every time
    before = model.weight.detach().clone()
    train_epoch(
        model, batches, nn.CrossEntropyLoss(), opt, "cpu", scheduler=sched, amp_dtype=torch.float16, scaler=scaler
    )
    assert torch.equal(model.weight, before)  # all 8 steps skipped...
    assert sched.last_epoch == 0 and scaler.get_scale() == 2.0**32  # ...and the schedule did not move
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    train_epoch(
        model, batches[:3], nn.CrossEntropyLoss(), opt, "cpu", scheduler=sched, amp_dtype=torch.float16, scaler=scaler
    )
    assert sched.last_epoch == 3  # steps that ran advance it, one each


def test_batches_of_any_structure_reach_the_step_whole():
    Pair = namedtuple("Pair", "x y")
    seen = []

    def step(model, batch):
        seen.append(type(batch))
        return nn.functional.mse_loss(model(batch.x), batch.y)

    stats = evaluate(nn.Linear(1, 1), [Pair(torch.zeros(3, 1), torch.ones(3, 1))], step=step)
    assert seen == [Pair] and stats["loss"] > 0
