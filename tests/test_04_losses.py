"""The from-scratch losses of notebook 04 against torch, on inputs the notebook does not use."""

import math

import pytest
import torch
import torch.nn.functional as F
from nbcode import load_exports
from torch.testing import assert_close

nb = load_exports("04_loss_functions")

REDUCTIONS = ["mean", "sum", "none"]
DTYPES = [torch.float32, torch.float64]


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- worked examples of the notes


def test_worked_example_l1_mse():
    x = torch.tensor([1.0, 2.0, 3.0]).reshape(1, 1, 1, 3)
    y = torch.tensor([1.0, 2.0, 5.0]).reshape(1, 1, 1, 3)
    assert nb.l1_loss(x, y).item() == pytest.approx(2 / 3, abs=1e-7)
    assert nb.l1_loss(x, y, "sum").item() == 2.0
    assert nb.mse_loss(x, y).item() == pytest.approx(4 / 3, abs=1e-7)
    assert nb.mse_loss(x, y, "sum").item() == 4.0
    assert nb.l1_loss(x, y, "none").tolist() == [[[[0.0, 0.0, 2.0]]]]
    assert f"{nb.l1_loss(x, y).item():.4f}" == "0.6667"
    assert f"{nb.mse_loss(x, y).item():.4f}" == "1.3333"


def test_worked_example_cross_entropy():
    z = torch.tensor([[0.1, 0.2, 0.3]], dtype=torch.float64)
    exact = -0.2 + math.log(math.exp(0.1) + math.exp(0.2) + math.exp(0.3))
    value = nb.cross_entropy(z, torch.tensor([1])).item()
    assert value == pytest.approx(exact, abs=1e-12)
    assert f"{value:.4f}" == "1.1019"
    grad = nb.cross_entropy_grad(z, torch.tensor([1]))
    assert [round(v, 4) for v in grad.flatten().tolist()] == [0.3006, -0.6678, 0.3672]


def test_worked_example_gradients():
    x = torch.tensor([1.0, 2.0, 3.0])
    y = torch.tensor([1.0, 2.0, 5.0])
    assert_close(nb.l1_grad(x, y), torch.tensor([0.0, 0.0, -1 / 3]))
    assert_close(nb.mse_grad(x, y), torch.tensor([0.0, 0.0, -4 / 3]))


# ---------------------------------------------------------------- elementwise losses


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_l1_mse_match_torch(reduction, dtype):
    g = gen(100)
    x = torch.randn(3, 2, 5, 7, generator=g, dtype=dtype) * 4
    y = torch.randn(3, 2, 5, 7, generator=g, dtype=dtype)
    assert_close(nb.l1_loss(x, y, reduction), F.l1_loss(x, y, reduction=reduction))
    assert_close(nb.mse_loss(x, y, reduction), F.mse_loss(x, y, reduction=reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("delta", [0.3, 1.0, 2.5])
def test_huber_smooth_l1_match_torch(reduction, dtype, delta):
    g = gen(101)
    x = torch.randn(4, 9, generator=g, dtype=dtype) * 3
    y = torch.randn(4, 9, generator=g, dtype=dtype)
    h = nb.huber(x, y, delta, reduction)
    s = nb.smooth_l1(x, y, delta, reduction)
    assert_close(h, F.huber_loss(x, y, reduction=reduction, delta=delta))
    assert_close(s, F.smooth_l1_loss(x, y, reduction=reduction, beta=delta))
    assert_close(h, delta * s)  # Huber(delta) = delta * SmoothL1(beta=delta)


def test_smooth_l1_beta_zero_is_l1():
    g = gen(102)
    x, y = torch.randn(10, generator=g), torch.randn(10, generator=g)
    assert_close(nb.smooth_l1(x, y, 0.0), F.smooth_l1_loss(x, y, beta=0.0))
    assert_close(nb.smooth_l1(x, y, 0.0), F.l1_loss(x, y))


def test_elementwise_losses_reject_mismatched_shapes():
    x, y = torch.zeros(4, 1), torch.zeros(4)
    for fn in (nb.l1_loss, nb.mse_loss, nb.huber, nb.smooth_l1, nb.bce, nb.bce_with_logits):
        with pytest.raises(ValueError, match="shape"):
            fn(x, y)


def test_bad_reduction():
    with pytest.raises(ValueError, match="reduction"):
        nb.mse_loss(torch.zeros(3), torch.zeros(3), "average")
    with pytest.raises(ValueError, match="reduction"):
        nb.mse_grad(torch.zeros(3), torch.zeros(3), "none")


# ---------------------------------------------------------------- softmax family


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1.0, 50.0, 1e4])
def test_log_softmax_and_logsumexp(dtype, scale):
    z = torch.randn(6, 5, 3, generator=gen(103), dtype=dtype) * scale
    for dim in (0, 1, -1):
        assert_close(nb.log_softmax(z, dim=dim), F.log_softmax(z, dim=dim))
        assert_close(nb.logsumexp(z, dim=dim), torch.logsumexp(z, dim=dim))
        assert_close(nb.logsumexp(z, dim=dim, keepdim=True), torch.logsumexp(z, dim=dim, keepdim=True))
    assert torch.isfinite(nb.log_softmax(z, dim=1)).all()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 4), (3, 4, 5), (2, 4, 3, 3)])
def test_cross_entropy_indices(reduction, dtype, shape):
    g = gen(104)
    z = torch.randn(*shape, generator=g, dtype=dtype) * 3
    y = torch.randint(0, shape[1], (shape[0],) + shape[2:], generator=g)
    assert_close(nb.cross_entropy(z, y, reduction), F.cross_entropy(z, y, reduction=reduction))
    assert_close(
        nb.nll_loss(F.log_softmax(z, dim=1), y, reduction), F.nll_loss(F.log_softmax(z, dim=1), y, reduction=reduction)
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 4), (2, 4, 3, 3)])
def test_cross_entropy_probabilities(reduction, dtype, shape):
    g = gen(105)
    z = torch.randn(*shape, generator=g, dtype=dtype) * 3
    q = torch.softmax(torch.randn(*shape, generator=g, dtype=dtype) * 2, dim=1)
    assert_close(nb.cross_entropy(z, q, reduction), F.cross_entropy(z, q, reduction=reduction))


def test_cross_entropy_unbatched():
    z = torch.randn(5, generator=gen(106))
    y = torch.tensor(3)
    assert_close(nb.cross_entropy(z, y), F.cross_entropy(z, y))
    assert_close(nb.cross_entropy_grad(z, y), torch.softmax(z, 0) - F.one_hot(y, 5).float())


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_extreme_logits(dtype):
    g = gen(107)
    z = torch.randn(8, 6, generator=g, dtype=dtype) * 1e4  # exp would overflow in both dtypes
    y = torch.randint(0, 6, (8,), generator=g)
    q = torch.softmax(torch.randn(8, 6, generator=g, dtype=dtype), dim=1)
    for reduction in REDUCTIONS:
        ours = nb.cross_entropy(z, y, reduction)
        assert torch.isfinite(ours).all()
        assert_close(ours, F.cross_entropy(z, y, reduction=reduction))
        assert_close(nb.cross_entropy(z, q, reduction), F.cross_entropy(z, q, reduction=reduction))


def test_cross_entropy_one_hot_equals_indices():
    g = gen(108)
    z = torch.randn(9, 4, generator=g)
    y = torch.randint(0, 4, (9,), generator=g)
    assert_close(nb.cross_entropy(z, F.one_hot(y, 4).float()), nb.cross_entropy(z, y))


def test_cross_entropy_target_errors():
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="shape"):
        nb.cross_entropy(z, torch.tensor([0.0, 1.0, 2.0, 1.0]))  # float indices
    with pytest.raises(IndexError, match=r"\[0, 2\]"):
        nb.cross_entropy(z, torch.tensor([0, 1, 3, 2]))  # class 3 of 3
    with pytest.raises(IndexError):
        nb.cross_entropy(z, torch.tensor([0, -1, 2, 2]))
    with pytest.raises(ValueError, match="shape"):
        nb.cross_entropy(z, torch.zeros(4, 3, dtype=torch.long))  # one-hot as integers
    with pytest.raises(TypeError):
        nb.nll_loss(F.log_softmax(z, dim=1), torch.tensor([0.0, 1.0, 2.0, 1.0]))
    # an int32 index target is accepted and means the same as int64
    y = torch.tensor([0, 1, 2, 1])
    assert_close(nb.cross_entropy(z, y.int()), F.cross_entropy(z, y))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.35])
@pytest.mark.parametrize("shape", [(6, 5), (2, 5, 3, 4)])
def test_label_smoothing(reduction, smoothing, shape):
    g = gen(109)
    z = torch.randn(*shape, generator=g) * 2
    y = torch.randint(0, shape[1], (shape[0],) + shape[2:], generator=g)
    expected = F.cross_entropy(z, y, reduction=reduction, label_smoothing=smoothing)
    assert_close(nb.label_smoothed_cross_entropy(z, y, smoothing, reduction), expected)


def test_label_smoothing_float64_and_targets_sum_to_one():
    z = torch.randn(5, 4, generator=gen(110), dtype=torch.float64)
    y = torch.tensor([0, 3, 1, 1, 2])
    q = nb.smoothed_targets(y, 4, 0.2)
    assert_close(q.sum(dim=1), torch.ones(5))
    assert_close(nb.label_smoothed_cross_entropy(z, y, 0.2), F.cross_entropy(z, y, label_smoothing=0.2))


# ---------------------------------------------------------------- binary cross-entropy


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_matches_torch(reduction, dtype):
    g = gen(111)
    p = torch.rand(5, 6, generator=g, dtype=dtype)
    y = torch.rand(5, 6, generator=g, dtype=dtype)  # soft targets are allowed
    assert_close(nb.bce(p, y, reduction), F.binary_cross_entropy(p, y, reduction=reduction))


def test_bce_clamps_log_at_minus_100():
    p = torch.tensor([0.0, 1.0, 1e-30, 0.5])
    y = torch.tensor([1.0, 0.0, 1.0, 1.0])
    ours = nb.bce(p, y, "none")
    assert_close(ours, F.binary_cross_entropy(p, y, reduction="none"))
    assert ours[0].item() == 100.0 and ours[1].item() == 100.0


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
def test_bce_with_logits_matches_torch(reduction, dtype, scale):
    g = gen(112)
    z = torch.randn(5, 6, generator=g, dtype=dtype) * scale
    y = (torch.rand(5, 6, generator=g) < 0.5).to(dtype)
    ours = nb.bce_with_logits(z, y, reduction)
    assert torch.isfinite(ours).all()
    assert_close(ours, F.binary_cross_entropy_with_logits(z, y, reduction=reduction))


# ---------------------------------------------------------------- hand-derived gradients


def autograd_of(loss_fn, inp):
    v = inp.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn(v), v)
    return grad


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_elementwise_gradients(reduction):
    g = gen(113)
    x = torch.randn(3, 4, 5, generator=g, dtype=torch.float64) * 3
    y = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    r = reduction
    assert_close(nb.l1_grad(x, y, r), autograd_of(lambda v: F.l1_loss(v, y, reduction=r), x))
    assert_close(nb.mse_grad(x, y, r), autograd_of(lambda v: F.mse_loss(v, y, reduction=r), x))
    for d in (0.5, 1.0, 2.0):
        assert_close(nb.huber_grad(x, y, d, r), autograd_of(lambda v, d=d: F.huber_loss(v, y, reduction=r, delta=d), x))
        assert_close(
            nb.smooth_l1_grad(x, y, d, r), autograd_of(lambda v, d=d: F.smooth_l1_loss(v, y, reduction=r, beta=d), x)
        )
    yb = torch.rand(3, 4, 5, generator=g, dtype=torch.float64)
    assert_close(
        nb.bce_with_logits_grad(x, yb, r),
        autograd_of(lambda v: F.binary_cross_entropy_with_logits(v, yb, reduction=r), x),
    )


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3, 5)])
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_cross_entropy_gradient(reduction, shape, scale):
    g = gen(114)
    z = torch.randn(*shape, generator=g, dtype=torch.float64) * scale
    y = torch.randint(0, shape[1], (shape[0],) + shape[2:], generator=g)
    q = torch.softmax(torch.randn(*shape, generator=g, dtype=torch.float64), dim=1)
    assert_close(
        nb.cross_entropy_grad(z, y, reduction), autograd_of(lambda v: F.cross_entropy(v, y, reduction=reduction), z)
    )
    assert_close(
        nb.cross_entropy_grad(z, q, reduction), autograd_of(lambda v: F.cross_entropy(v, q, reduction=reduction), z)
    )


def test_exported_losses_backpropagate_like_torch():
    """Autograd through the from-scratch losses gives torch's gradients (the losses are differentiable code)."""
    g = gen(115)
    z = torch.randn(5, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (5,), generator=g)
    assert_close(autograd_of(lambda v: nb.cross_entropy(v, y), z), autograd_of(lambda v: F.cross_entropy(v, y), z))
    assert_close(
        autograd_of(lambda v: nb.label_smoothed_cross_entropy(v, y, 0.1), z),
        autograd_of(lambda v: F.cross_entropy(v, y, label_smoothing=0.1), z),
    )
    yb = torch.rand(5, 3, generator=g, dtype=torch.float64)
    assert_close(
        autograd_of(lambda v: nb.bce_with_logits(v, yb), z),
        autograd_of(lambda v: F.binary_cross_entropy_with_logits(v, yb), z),
    )


# ---------------------------------------------------------------- losses as negative log-likelihoods


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sigma", [0.3, 1.0, 4.0])
def test_gaussian_nll_matches_torch_distributions(reduction, dtype, sigma):
    g = gen(116)
    mean = torch.randn(5, 2, 3, generator=g, dtype=dtype) * 2
    y = torch.randn(5, 2, 3, generator=g, dtype=dtype)
    ours = nb.gaussian_nll(mean, y, sigma, reduction)
    per_element = -torch.distributions.Normal(mean, torch.tensor(sigma, dtype=dtype)).log_prob(y)
    expected = {"mean": per_element.mean(), "sum": per_element.sum(), "none": per_element}[reduction]
    assert_close(ours, expected)
    torch_loss = torch.nn.GaussianNLLLoss(full=True, reduction=reduction)
    assert_close(ours, torch_loss(mean, y, torch.full_like(mean, sigma**2)))


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_gaussian_nll_is_scaled_mse_plus_constant(sigma):
    g = gen(117)
    mean = torch.randn(40, generator=g, dtype=torch.float64)
    y = torch.randn(40, generator=g, dtype=torch.float64)
    expected = F.mse_loss(mean, y) / (2 * sigma**2) + math.log(sigma) + 0.5 * math.log(2 * math.pi)
    assert_close(nb.gaussian_nll(mean, y, sigma), expected)
    v = mean.clone().requires_grad_(True)
    (g_nll,) = torch.autograd.grad(nb.gaussian_nll(v, y, sigma), v)
    assert_close(g_nll, nb.mse_grad(mean, y) / (2 * sigma**2))  # same direction as MSE's gradient


def test_gaussian_nll_per_element_sigma():
    g = gen(118)
    mean = torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.randn(6, 4, generator=g, dtype=torch.float64)
    sigma = torch.rand(6, 4, generator=g, dtype=torch.float64) + 0.1  # one noise level per element
    assert_close(nb.gaussian_nll(mean, y, sigma, "none"), -torch.distributions.Normal(mean, sigma).log_prob(y))
    column = torch.rand(1, 4, generator=g, dtype=torch.float64) + 0.1  # broadcasts over rows
    assert_close(
        nb.gaussian_nll(mean, y, column), torch.nn.GaussianNLLLoss(full=True)(mean, y, (column**2).expand(6, 4))
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("scale", [0.2, 1.0, 3.0])
def test_laplace_nll_matches_torch_distributions(reduction, scale):
    g = gen(119)
    loc = torch.randn(4, 7, generator=g, dtype=torch.float64) * 2
    y = torch.randn(4, 7, generator=g, dtype=torch.float64)
    per_element = -torch.distributions.Laplace(loc, scale).log_prob(y)
    expected = {"mean": per_element.mean(), "sum": per_element.sum(), "none": per_element}[reduction]
    assert_close(nb.laplace_nll(loc, y, scale, reduction), expected)
    assert_close(nb.laplace_nll(loc, y, scale), F.l1_loss(loc, y) / scale + math.log(2 * scale))


@pytest.mark.parametrize("fn", ["gaussian_nll", "laplace_nll"])
def test_nll_rejects_bad_noise_scale(fn):
    x, y = torch.zeros(3, 2), torch.ones(3, 2)
    loss = getattr(nb, fn)
    for bad in (0.0, -1.0, torch.tensor([[1.0, 0.0]])):
        with pytest.raises(ValueError, match="> 0"):
            loss(x, y, bad)
    with pytest.raises(ValueError, match="broadcast"):
        loss(x, y, torch.ones(3))  # (3,) does not broadcast to (3, 2)
    with pytest.raises(ValueError, match="broadcast"):
        loss(x, y, torch.ones(2, 3, 2))  # would grow the loss's shape
    with pytest.raises(ValueError, match="shape"):
        loss(torch.zeros(3, 1), torch.zeros(3))


@pytest.mark.parametrize("shape", [(9, 5), (3, 5, 4)])
def test_cross_entropy_is_categorical_nll(shape):
    g = gen(120)
    z = torch.randn(*shape, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, shape[1], (shape[0],) + shape[2:], generator=g)
    categorical = torch.distributions.Categorical(logits=z.movedim(1, -1))  # classes in the last dim
    assert_close(nb.cross_entropy(z, y, "none"), -categorical.log_prob(y))


def test_bce_with_logits_is_bernoulli_nll():
    g = gen(121)
    z = torch.randn(6, 5, generator=g, dtype=torch.float64) * 4
    y = torch.randint(0, 2, (6, 5), generator=g).double()
    assert_close(nb.bce_with_logits(z, y, "none"), -torch.distributions.Bernoulli(logits=z).log_prob(y))
