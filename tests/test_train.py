import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.train import History, accuracy, evaluate, fit, run_epoch


def linear_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, generator=g)
    y = 3.0 * x + 1.0 + 0.01 * torch.randn(n, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=False)


def test_fit_learns_a_line_and_records_history():
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    loader = linear_data()
    history = fit(model, loader, nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1), epochs=30,
                  device="cpu", val_loader=linear_data(seed=1), show_progress=False)
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
    fit(model, linear_data(), nn.MSELoss(), opt, epochs=3, scheduler=sched, show_progress=False,
        on_epoch_end=lambda epoch, h: seen.append((epoch, len(h["train_loss"]))))
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
        run_epoch(model, [torch.zeros(2, 1)], nn.MSELoss(), torch.device("cpu"), opt)
    with pytest.raises(ValueError, match="produced no batches"):
        run_epoch(model, [], nn.MSELoss(), torch.device("cpu"), opt)
    with pytest.raises(ValueError, match="must return a scalar"):
        run_epoch(model, linear_data(), nn.MSELoss(reduction="none"), torch.device("cpu"), opt)
    with pytest.raises(ValueError, match=r"logits \(N, num_classes\) and targets \(N,\)"):
        accuracy(torch.zeros(3), torch.zeros(3))


def test_divergence_stops_with_epoch_and_step():
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1e6)  # explodes within a few steps
    with pytest.raises(FloatingPointError, match=r"epoch \d+: loss became (nan|inf) at step \d+"):
        fit(model, linear_data(), nn.MSELoss(), opt, epochs=20, show_progress=False)
