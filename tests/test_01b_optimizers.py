"""Notebook 01b's from-scratch optimisers and regularisers (its ``# export`` cells) against PyTorch, on new inputs."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from nbcode import load_exports
from torch import nn
from torch.testing import assert_close

nb = load_exports("01b_optimizers_regularization")

DTYPES = [torch.float32, torch.float64]


def make_params(dtype, seed=0):
    """Three parameters of different shapes; the last one never gets a gradient."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(4, 3), (3,), (2, 2)]
    return [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in shapes]


def run_side_by_side(make_ours, make_theirs, dtype, steps=15, seed=0):
    """Step both optimisers on identical parameters with identical fresh gradients; compare after every step."""
    ours_p, theirs_p = make_params(dtype, seed), make_params(dtype, seed)
    ours, theirs = make_ours(ours_p), make_theirs(theirs_p)
    gen = torch.Generator().manual_seed(seed + 1)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == torch.float64 else dict(rtol=1e-6, atol=1e-7)
    for _ in range(steps):
        ours.zero_grad()
        theirs.zero_grad()
        for a, b in zip(ours_p[:2], theirs_p[:2]):  # the third parameter keeps grad None
            g = torch.randn(a.shape, generator=gen, dtype=dtype) * 3
            a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        theirs.step()
        for a, b in zip(ours_p, theirs_p):
            assert_close(a, b, **tol)
    return ours, theirs, ours_p, theirs_p


# ---- SGD -------------------------------------------------------------------------------------------

SGD_SETTINGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.99, dampening=1.0),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.02, weight_decay=0.1),
    dict(lr=0.02, momentum=0.8, weight_decay=0.1),
    dict(lr=0.02, momentum=0.8, weight_decay=0.1, nesterov=True),
    dict(lr=0.02, momentum=0.5, dampening=0.5, weight_decay=0.3),
    dict(lr=0.0, momentum=0.9),
]


@pytest.mark.parametrize("kwargs", SGD_SETTINGS, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_matches_torch_step_by_step(kwargs, dtype):
    ours, theirs, ours_p, theirs_p = run_side_by_side(lambda p: nb.SGD(p, **kwargs),
                                                       lambda p: torch.optim.SGD(p, **kwargs), dtype)
    if kwargs.get("momentum", 0):  # the momentum buffers agree too; the untouched parameter has none
        for a, b in zip(ours_p[:2], theirs_p[:2]):
            assert_close(ours.state[a]["momentum_buffer"], theirs.state[b]["momentum_buffer"], rtol=1e-6, atol=1e-7)
        assert ours_p[2] not in ours.state and len(theirs.state[theirs_p[2]]) == 0


def test_update_rules_alone_match_torch_on_one_tensor():
    """sgd_update and adam_update (the rules the classes call) step a bare tensor exactly as torch.optim does."""
    gen = torch.Generator().manual_seed(2)
    for rule, settings, make_torch in (
            (nb.sgd_update, dict(lr=0.05, momentum=0.9, dampening=0.0, weight_decay=0.1, nesterov=True),
             lambda p: torch.optim.SGD([p], lr=0.05, momentum=0.9, weight_decay=0.1, nesterov=True)),
            (nb.adam_update, dict(lr=0.01, beta1=0.8, beta2=0.95, eps=1e-6, weight_decay=0.3, decoupled=True),
             lambda p: torch.optim.AdamW([p], lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.3))):
        ours = torch.randn(5, generator=gen, dtype=torch.float64)
        theirs = ours.clone().requires_grad_()
        optimizer, state = make_torch(theirs), {}
        for _ in range(8):
            g = torch.randn(5, generator=gen, dtype=torch.float64)
            rule(ours, g, state, **settings)
            theirs.grad = g.clone()
            optimizer.step()
            assert_close(ours, theirs.detach(), rtol=1e-12, atol=1e-14)


def test_optimizer_base_class_steps_only_parameters_with_a_gradient():
    class Halve(nb.Optimizer):
        def update(self, p, g, state):
            state["calls"] = state.get("calls", 0) + 1
            p -= 0.5 * g

    a, b = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = Halve([a, b])
    a.grad = torch.tensor([2.0, 4.0])
    opt.step()
    assert a.tolist() == [0.0, -1.0] and b.tolist() == [1.0, 1.0]
    assert opt.state[a] == {"calls": 1} and b not in opt.state
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_sgd_without_momentum_is_plain_gradient_descent():
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = nb.SGD([p], lr=0.5)
    p.grad = torch.tensor([0.2, 0.4], dtype=torch.float64)
    opt.step()
    assert p.tolist() == [0.9, -2.2] and opt.state.get(p, {}) == {}  # no momentum buffer


def test_sgd_first_momentum_step_ignores_dampening():
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = nb.SGD([p], lr=1.0, momentum=0.9, dampening=0.5)
    p.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    assert p.item() == -1.0  # b_1 = g_1, not (1 - dampening) g_1
    p.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    assert p.item() == pytest.approx(-1.0 - (0.9 + 0.5))  # b_2 = 0.9 * 1 + 0.5 * 1


def test_sgd_defaults_match_torch():
    p = [torch.zeros(1, requires_grad=True)]
    ours, theirs = nb.SGD(p), torch.optim.SGD(p)
    d = theirs.defaults
    assert (ours.lr, ours.momentum, ours.dampening, ours.weight_decay, ours.nesterov) == (
        d["lr"], d["momentum"], d["dampening"], d["weight_decay"], d["nesterov"])


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-0.1), ">= 0"), (dict(lr=0.1, momentum=-0.5), ">= 0"), (dict(lr=0.1, weight_decay=-1.0), ">= 0"),
    (dict(lr=0.1, dampening=1.5), "dampening"), (dict(lr=0.1, nesterov=True), "Nesterov"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
])
def test_sgd_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nb.SGD([torch.zeros(1, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("cls", ["SGD", "Adam", "AdamW"])
def test_optimisers_reject_empty_or_non_tensor_params(cls):
    with pytest.raises(ValueError, match="empty parameter list"):
        getattr(nb, cls)([], lr=0.1)
    with pytest.raises(TypeError, match="expected a torch.Tensor"):
        getattr(nb, cls)([torch.zeros(1), 3.0], lr=0.1)


def test_zero_grad_sets_none():
    p = torch.ones(2, requires_grad=True)
    for opt in (nb.SGD([p], lr=0.1), nb.Adam([p])):
        p.grad = torch.ones(2)
        opt.zero_grad()
        assert p.grad is None


def test_sgd_trains_a_network_like_torch():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)).double()
    twin = copy.deepcopy(net)
    ours = nb.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)
    theirs = torch.optim.SGD(twin.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)
    gen = torch.Generator().manual_seed(4)
    for _ in range(20):
        x = torch.randn(32, 4, generator=gen, dtype=torch.float64)
        y = torch.randint(0, 2, (32,), generator=gen)
        for model, opt in ((net, ours), (twin, theirs)):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    for a, b in zip(net.parameters(), twin.parameters()):
        assert_close(a, b, rtol=1e-12, atol=1e-14)


# ---- Adam / AdamW ----------------------------------------------------------------------------------

ADAM_SETTINGS = [
    dict(),
    dict(lr=0.01),
    dict(lr=0.003, betas=(0.5, 0.9)),
    dict(lr=0.01, betas=(0.0, 0.99)),
    dict(lr=0.01, eps=1e-3),
    dict(lr=0.01, eps=0.0),
    dict(lr=0.01, weight_decay=0.2),
    dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.05),
]


@pytest.mark.parametrize("kwargs", ADAM_SETTINGS, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_matches_torch_step_by_step(kwargs, dtype):
    ours, theirs, ours_p, theirs_p = run_side_by_side(lambda p: nb.Adam(p, **kwargs),
                                                       lambda p: torch.optim.Adam(p, **kwargs), dtype)
    for a, b in zip(ours_p[:2], theirs_p[:2]):
        assert ours.state[a]["step"] == int(theirs.state[b]["step"]) == 15
        assert_close(ours.state[a]["exp_avg"], theirs.state[b]["exp_avg"], rtol=1e-6, atol=1e-7)
        assert_close(ours.state[a]["exp_avg_sq"], theirs.state[b]["exp_avg_sq"], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kwargs", ADAM_SETTINGS + [dict(lr=0.01, weight_decay=2.0)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_adamw_matches_torch_step_by_step(kwargs, dtype):
    run_side_by_side(lambda p: nb.AdamW(p, **kwargs), lambda p: torch.optim.AdamW(p, **kwargs), dtype)


def test_adam_defaults_match_torch_and_amsgrad_is_off():
    p = [torch.zeros(1, requires_grad=True)]
    for ours, theirs in ((nb.Adam(p), torch.optim.Adam(p)), (nb.AdamW(p), torch.optim.AdamW(p))):
        d = theirs.defaults
        assert (ours.lr, ours.betas, ours.eps, ours.weight_decay) == (d["lr"], tuple(d["betas"]), d["eps"], d["weight_decay"])
        assert d["amsgrad"] is False  # ours implements the amsgrad=False rule only
    assert nb.AdamW(p).weight_decay == 1e-2 and nb.Adam(p).weight_decay == 0.0


def test_adam_first_step_is_lr_times_sign():
    g = torch.tensor([1e-4, -5.0, 300.0], dtype=torch.float64)
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = nb.Adam([p], lr=0.1)
    p.grad = g
    opt.step()
    assert_close(p.detach(), -0.1 * g.sign(), rtol=1e-3, atol=0)  # the smallest gradient feels eps a little
    assert_close(opt.state[p]["exp_avg"] / 0.1, g)  # m_1 / (1 - beta1) = g: the bias correction


def test_adam_with_l2_penalty_equals_adam_weight_decay_and_differs_from_adamw():
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    x = torch.randn(20, 3, dtype=torch.float64)
    y = torch.randn(20, 1, dtype=torch.float64)

    def train(make_opt, wd_in_loss):
        model = copy.deepcopy(net)
        opt = make_opt(model.parameters())
        for _ in range(10):
            opt.zero_grad()
            (F.mse_loss(model(x), y) + nb.l2_penalty(model.parameters(), wd_in_loss)).backward()
            opt.step()
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    by_hand = train(lambda p: torch.optim.Adam(p, lr=0.01), 0.5)
    coupled = train(lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.5), 0.0)
    decoupled = train(lambda p: nb.AdamW(p, lr=0.01, weight_decay=0.5), 0.0)
    assert_close(by_hand, coupled, rtol=1e-10, atol=1e-12)
    assert_close(decoupled, train(lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.5), 0.0))
    assert (coupled - decoupled).abs().max() > 1e-3


def test_adam_l2_is_blind_to_the_decay_strength_when_only_the_penalty_acts():
    ends = []
    for wd in (1e-3, 1.0):
        w = torch.tensor([2.0, -0.5], dtype=torch.float64, requires_grad=True)
        opt = nb.Adam([w], lr=0.01, weight_decay=wd, eps=0.0)
        for _ in range(30):
            w.grad = torch.zeros_like(w)
            opt.step()
        ends.append(w.detach())
    assert_close(ends[0], ends[1], rtol=1e-12, atol=0)  # scaling every gradient by c changes nothing


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-1.0), ">= 0"), (dict(eps=-1e-8), ">= 0"), (dict(weight_decay=-0.1), ">= 0"),
    (dict(betas=(0.9, 1.0)), "betas"), (dict(betas=(-0.1, 0.9)), "betas"), (dict(betas=(0.9,)), "betas"),
])
@pytest.mark.parametrize("cls", ["Adam", "AdamW"])
def test_adam_rejects_bad_settings(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        getattr(nb, cls)([torch.zeros(1, requires_grad=True)], **kwargs)


# ---- L2 penalty ------------------------------------------------------------------------------------

def test_l2_penalty_value_and_gradient():
    params = make_params(torch.float64, seed=7)
    value = nb.l2_penalty(params, 0.3)
    assert_close(value, 0.15 * sum((p.detach() ** 2).sum() for p in params))
    value.backward()
    for p in params:
        assert_close(p.grad, 0.3 * p.detach())
    assert nb.l2_penalty(params, 0.0).item() == 0.0


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_on_l2_penalty_equals_weight_decay(momentum, nesterov):
    torch.manual_seed(6)
    net = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 1)).double()
    x, y = torch.randn(10, 2, dtype=torch.float64), torch.randn(10, 1, dtype=torch.float64)
    finals = []
    for wd_loss, wd_opt in ((0.05, 0.0), (0.0, 0.05)):
        model = copy.deepcopy(net)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=wd_opt)
        for _ in range(15):
            opt.zero_grad()
            (F.mse_loss(model(x), y) + nb.l2_penalty(model.parameters(), wd_loss)).backward()
            opt.step()
        finals.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert_close(finals[0], finals[1], rtol=1e-10, atol=1e-12)


def test_l2_penalty_rejects_bad_input():
    with pytest.raises(ValueError, match=">= 0"):
        nb.l2_penalty([torch.ones(2)], -1.0)
    with pytest.raises(ValueError, match="empty"):
        nb.l2_penalty([], 0.1)


# ---- early stopping --------------------------------------------------------------------------------

class Box(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2))


def test_early_stopping_stops_after_patience_and_restores_the_best():
    model, stopper = Box(), nb.EarlyStopping(patience=3)
    losses = [5.0, 4.0, 3.0, 3.5, 3.0, 2.9, 3.1, 3.2, 3.3, 1.0]
    stops = []
    for step, loss in enumerate(losses):
        with torch.no_grad():
            model.w.fill_(step)  # the weights change every check
        stops.append(stopper.step(loss, model, step))
        if stops[-1]:
            break
    # 3.0 at step 4 is not better than 3.0 at step 2: no improvement; 2.9 at step 5 is the best
    assert stops == [False] * 8 + [True]
    assert stopper.best_loss == 2.9 and stopper.best_step == 5
    stopper.restore(model)
    assert model.w.tolist() == [5.0, 5.0]  # a copy: later changes did not leak into best_state


def test_early_stopping_min_delta_and_nan():
    model, stopper = Box(), nb.EarlyStopping(patience=2, min_delta=0.1)
    assert not stopper.step(1.0, model)
    assert not stopper.step(0.95, model)  # better, but by less than min_delta: not an improvement
    assert stopper.step(float("nan"), model)  # a NaN never improves: patience used up
    assert stopper.best_loss == 1.0


def test_early_stopping_rejects_bad_input():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="patience"):
            nb.EarlyStopping(patience=bad)
    with pytest.raises(ValueError, match="min_delta"):
        nb.EarlyStopping(min_delta=-0.1)
    with pytest.raises(RuntimeError, match="no best weights"):
        nb.EarlyStopping().restore(Box())


# ---- dropout ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("shape", [(7,), (3, 50), (2, 4, 5, 6)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_matches_torch_under_the_same_seed(p, shape, dtype):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    torch.manual_seed(42)
    ours = nb.dropout(x, p)
    torch.manual_seed(42)
    theirs = F.dropout(x, p, training=True)
    assert torch.equal(ours, theirs)


def test_dropout_gradient_matches_torch():
    x1 = torch.randn(4, 30, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    w = torch.randn(4, 30, dtype=torch.float64)
    torch.manual_seed(9)
    (nb.dropout(x1, 0.3) * w).sum().backward()
    torch.manual_seed(9)
    (F.dropout(x2, 0.3) * w).sum().backward()
    assert_close(x1.grad, x2.grad)
    assert set((x1.grad / w).round(decimals=8).unique().tolist()) <= {0.0, round(1 / 0.7, 8)}


def test_dropout_with_a_generator_keeps_the_mean():
    gen = torch.Generator().manual_seed(0)
    out = nb.dropout(torch.full((400, 500), 2.0, dtype=torch.float64), 0.3, generator=gen)
    kept = (out != 0).double().mean().item()
    n = out.numel()
    assert abs(kept - 0.7) < 5 * math.sqrt(0.7 * 0.3 / n)
    assert abs(out.mean().item() - 2.0) < 5 * out.std().item() / math.sqrt(n)


def test_dropout_edge_cases_match_torch():
    x = torch.randn(3, 4)
    assert nb.dropout(x, 0.0) is x and nb.dropout(x, 0.7, training=False) is x
    assert torch.equal(nb.dropout(x, 1.0), F.dropout(x, 1.0)) and torch.equal(nb.dropout(x, 1.0), torch.zeros(3, 4))
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="in \\[0, 1\\]"):
            nb.dropout(x, bad)
        with pytest.raises(ValueError, match="in \\[0, 1\\]"):
            nb.Dropout(bad)


def test_dropout_module_train_and_eval_like_nn_dropout():
    x = torch.randn(5, 40)
    ours, theirs = nb.Dropout(0.25), nn.Dropout(0.25)
    torch.manual_seed(1)
    a = ours(x)
    torch.manual_seed(1)
    assert torch.equal(a, theirs(x))
    net = nn.Sequential(nn.Linear(40, 40), ours)
    net.eval()  # eval() reaches our module through nn.Module like any layer
    assert not ours.training and torch.equal(ours(x), x)


# ---- learning-rate range test ------------------------------------------------------------------------

def test_exponential_lrs_match_exponential_lr_scheduler():
    lrs = nb.exponential_lrs(1e-5, 3.0, 120)
    assert len(lrs) == 120 and lrs[0] == 1e-5 and lrs[-1] == pytest.approx(3.0, rel=1e-12)
    gamma = (3.0 / 1e-5) ** (1 / 119)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-5)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
    theirs = []
    for _ in range(120):
        theirs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert_close(torch.tensor(lrs, dtype=torch.float64), torch.tensor(theirs, dtype=torch.float64), rtol=1e-12, atol=0)


@pytest.mark.parametrize("args", [(0.0, 1.0, 10), (1.0, 0.5, 10), (1e-3, 1.0, 1), (1e-3, 1.0, 2.5)])
def test_exponential_lrs_rejects_bad_input(args):
    with pytest.raises(ValueError):
        nb.exponential_lrs(*args)


def make_regression(seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=gen)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(64, 1, generator=gen)

    def batches():
        while True:
            for i in range(0, 64, 16):
                yield x[i : i + 16], y[i : i + 16]

    return batches


def test_lr_range_test_records_raw_losses_with_beta_zero_and_restores_state():
    batches = make_regression()
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    before = copy.deepcopy(model.state_dict())
    lrs, losses = nb.lr_range_test(model, opt, F.mse_loss, batches(), 1e-4, 1e-1, steps=40, beta=0.0,
                                  diverge=1e9)  # raw batch losses are noisy: never stop early here
    assert lrs == nb.exponential_lrs(1e-4, 1e-1, 40)[: len(lrs)] and len(losses) == len(lrs) == 40
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert opt.state_dict()["state"] == {} and opt.param_groups[0]["lr"] == 0.01
    # replay by hand: same rates, same batches, raw losses (beta = 0 means no smoothing)
    replay = nn.Linear(3, 1)
    replay.load_state_dict(before)
    ropt = torch.optim.SGD(replay.parameters(), lr=0.0, momentum=0.9)
    stream = batches()
    for lr, recorded in zip(lrs, losses):
        ropt.param_groups[0]["lr"] = lr
        xb, yb = next(stream)
        ropt.zero_grad()
        loss = F.mse_loss(replay(xb), yb)
        loss.backward()
        ropt.step()
        assert loss.item() == pytest.approx(recorded, rel=1e-6)


def test_lr_range_test_smoothing_is_bias_corrected_and_it_stops_on_divergence():
    batches = make_regression(1)
    torch.manual_seed(1)
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    lrs, smooth = nb.lr_range_test(model, opt, F.mse_loss, batches(), 1e-3, 1e3, steps=100, beta=0.9)
    assert len(lrs) < 100  # the loss blows up well before lr = 1000
    assert not math.isfinite(smooth[-1]) or smooth[-1] > 4 * min(smooth)
    # the first smoothed value equals the first raw loss: (1 - beta) * L / (1 - beta)
    torch.manual_seed(1)
    fresh = nn.Linear(3, 1)
    xb, yb = next(batches())
    assert smooth[0] == pytest.approx(F.mse_loss(fresh(xb), yb).item(), rel=1e-6)


def test_lr_range_test_rejects_bad_settings():
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for kwargs in (dict(beta=1.0), dict(beta=-0.1), dict(diverge=1.0)):
        with pytest.raises(ValueError, match="beta"):
            nb.lr_range_test(model, opt, F.mse_loss, iter([]), **kwargs)
