"""Notebook 02's from-scratch activations, derivatives and raw-tensor MLP, checked against torch on new inputs."""

import pytest
import torch
import torch.nn.functional as F
from nbcode import load_exports
from references import sequential_twin
from torch import nn
from torch.testing import assert_close

nb = load_exports("02_activations_gradients")

DTYPES = [torch.float32, torch.float64]
EDGES = [0.0, 1e-12, -1e-12, 1e-4, -1e-4, 20.0, -20.0, 88.0, -88.0, 89.0, -89.0, 710.0, -710.0, 1e4, -1e4]


def inputs(dtype, seed=123, n=500):
    """Fresh random inputs (a different seed and range from the notebook) plus awkward edge values."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=gen, dtype=torch.float64) * 8
    return torch.cat([x, torch.tensor(EDGES, dtype=torch.float64)]).to(dtype)


def autograd_derivative(f, x):
    x = x.detach().clone().requires_grad_(True)
    f(x).backward(torch.ones_like(x))
    return x.grad


# name -> (our function, our analytic derivative, torch's function)
CASES = {
    "sigmoid": (nb.sigmoid, nb.sigmoid_grad, torch.sigmoid),
    "tanh": (nb.tanh, nb.tanh_grad, torch.tanh),
    "relu": (nb.relu, nb.relu_grad, torch.relu),
    "leaky_relu_default": (nb.leaky_relu, nb.leaky_relu_grad, F.leaky_relu),
    "leaky_relu_0.2": (
        lambda x: nb.leaky_relu(x, 0.2),
        lambda x: nb.leaky_relu_grad(x, 0.2),
        lambda x: F.leaky_relu(x, 0.2),
    ),
    "prelu_0.3": (
        lambda x: nb.prelu(x, torch.tensor([0.3], dtype=x.dtype)),
        lambda x: nb.prelu_grad_x(x, torch.tensor([0.3], dtype=x.dtype)),
        lambda x: F.prelu(x, torch.tensor([0.3], dtype=x.dtype)),
    ),
    "gelu": (nb.gelu, nb.gelu_grad, F.gelu),
    "gelu_tanh": (nb.gelu_tanh, nb.gelu_tanh_grad, lambda x: F.gelu(x, approximate="tanh")),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(CASES))
def test_activation_values_match_torch(name, dtype):
    ours, _, theirs = CASES[name]
    x = inputs(dtype)
    y = ours(x)
    assert y.dtype == dtype and y.shape == x.shape
    assert torch.isfinite(y).all()
    assert_close(y, theirs(x))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(CASES))
def test_analytic_derivative_matches_torch_autograd(name, dtype):
    _, ours_grad, theirs = CASES[name]
    x = inputs(dtype, seed=7)
    analytic = ours_grad(x)
    assert torch.isfinite(analytic).all()
    assert_close(analytic, autograd_derivative(theirs, x))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", list(CASES))
def test_autograd_through_our_code_matches_analytic(name, dtype):
    ours, ours_grad, _ = CASES[name]
    x = inputs(dtype, seed=11)
    grad = autograd_derivative(ours, x)
    assert torch.isfinite(grad).all(), "no nan/inf gradients, even at large |x|"
    assert_close(grad, ours_grad(x))


def test_derivatives_at_zero_follow_pytorch_conventions():
    zero = torch.zeros(1, dtype=torch.float64)
    assert autograd_derivative(nb.sigmoid, zero).item() == pytest.approx(0.25)
    assert autograd_derivative(nb.tanh, zero).item() == pytest.approx(1.0)
    assert autograd_derivative(nb.relu, zero).item() == 0.0  # ReLU'(0) = 0
    assert nb.relu_grad(zero).item() == 0.0
    assert autograd_derivative(torch.relu, zero).item() == 0.0
    assert autograd_derivative(lambda x: x.clamp(min=0), zero).item() == 0.0
    assert autograd_derivative(lambda x: nb.leaky_relu(x, 0.2), zero).item() == pytest.approx(0.2)
    assert autograd_derivative(lambda x: F.leaky_relu(x, 0.2), zero).item() == pytest.approx(0.2)
    assert autograd_derivative(nb.gelu, zero).item() == pytest.approx(0.5)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_sigmoid_and_tanh_are_stable_far_from_zero(dtype):
    x = torch.tensor([-1e30, -1e4, -1000.0, 1000.0, 1e4, 1e30], dtype=dtype)
    assert_close(nb.sigmoid(x), torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0], dtype=dtype))
    assert_close(nb.tanh(x), torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], dtype=dtype))
    for f in (nb.sigmoid, nb.tanh):
        grad = autograd_derivative(f, x)
        assert torch.isfinite(grad).all()
        assert_close(grad, torch.zeros_like(x))


def test_sigmoid_keeps_tiny_probabilities():
    # In float64, sigma(-700) is about 1e-304: a formula that computes 1 - something would round it to 0.
    x = torch.tensor([-700.0, -100.0, -30.0], dtype=torch.float64)
    assert_close(nb.sigmoid(x), torch.sigmoid(x), rtol=1e-12, atol=0.0)


def test_tanh_is_accurate_near_zero():
    x = torch.tensor([1e-8, -1e-8, 1e-20, 3e-4], dtype=torch.float64)
    assert_close(nb.tanh(x), torch.tanh(x), rtol=1e-12, atol=0.0)


def test_activations_work_elementwise_on_any_shape():
    x = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(3))
    for name, (ours, ours_grad, theirs) in CASES.items():
        assert_close(ours(x), theirs(x), msg=lambda m, name=name: f"{name}: {m}")
        assert ours_grad(x).shape == x.shape


def test_prelu_per_channel_alpha_and_its_gradient():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(16, 4, generator=gen, dtype=torch.float64)  # (N, C)
    alpha_values = torch.tensor([0.1, 0.25, -0.5, 2.0], dtype=torch.float64)  # (C,)
    alpha_ours = alpha_values.clone().requires_grad_(True)
    alpha_torch = alpha_values.clone().requires_grad_(True)
    upstream = torch.randn(16, 4, generator=gen, dtype=torch.float64)
    y_ours = nb.prelu(x, alpha_ours)
    y_torch = F.prelu(x, alpha_torch)
    assert_close(y_ours, y_torch)
    y_ours.backward(upstream)
    y_torch.backward(upstream)
    assert_close(alpha_ours.grad, alpha_torch.grad)
    assert_close((upstream * nb.prelu_grad_alpha(x)).sum(0), alpha_torch.grad)
    assert_close(nb.prelu_grad_x(x, alpha_values), torch.where(x > 0, 1.0, alpha_values.expand_as(x)))


def test_gelu_tanh_is_close_to_but_not_equal_to_exact_gelu():
    x = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    gap = (nb.gelu(x) - nb.gelu_tanh(x)).abs().max().item()
    assert 1e-5 < gap < 1e-3


def test_collapse_linear_reproduces_a_stack():
    torch.manual_seed(21)
    stack = nn.Sequential(nn.Linear(5, 7), nn.Linear(7, 2), nn.Linear(2, 9), nn.Linear(9, 3)).double()
    with torch.no_grad():
        W, b = nb.collapse_linear([m.weight for m in stack], [m.bias for m in stack])
        assert W.shape == (3, 5) and b.shape == (3,)
        x = torch.randn(11, 5, dtype=torch.float64)
        assert_close(F.linear(x, W, b), stack(x))
        # the bottleneck of width 2 limits the rank of the whole map
        assert torch.linalg.matrix_rank(W).item() <= 2


def test_collapse_linear_single_layer_is_identity():
    W, b = torch.randn(3, 4), torch.randn(3)
    W2, b2 = nb.collapse_linear([W], [b])
    assert_close(W2, W)
    assert_close(b2, b)


def test_init_mlp_params_shapes_bounds_and_reproducibility():
    params = nb.init_mlp_params(3, 50, 2, generator=torch.Generator().manual_seed(0))
    assert [tuple(p.shape) for p in params] == [(3, 50), (50,), (50, 2), (2,)]
    assert all(p.requires_grad and p.dtype == torch.float32 for p in params)
    fan_ins = [3, 3, 50, 50]
    for p, fan_in in zip(params, fan_ins):
        assert p.abs().max().item() <= 1 / fan_in**0.5
    again = nb.init_mlp_params(3, 50, 2, generator=torch.Generator().manual_seed(0))
    for p, q in zip(params, again):
        assert_close(p, q)
    as64 = nb.init_mlp_params(3, 50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in as64)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_mlp_forward_and_gradients_match_nn_sequential(dtype):
    gen = torch.Generator().manual_seed(9)
    W1, b1, W2, b2 = nb.init_mlp_params(6, 20, 3, generator=gen, dtype=dtype)
    model = sequential_twin(W1, b1, W2, b2)
    x = torch.randn(32, 6, generator=gen, dtype=dtype)
    target = torch.randn(32, 3, generator=gen, dtype=dtype)
    out = nb.mlp_forward(x, W1, b1, W2, b2)
    assert out.shape == (32, 3)
    assert_close(out, model(x))
    F.mse_loss(out, target).backward()
    F.mse_loss(model(x), target).backward()
    assert_close(W1.grad, model[0].weight.grad.T)
    assert_close(b1.grad, model[0].bias.grad)
    assert_close(W2.grad, model[2].weight.grad.T)
    assert_close(b2.grad, model[2].bias.grad)


def test_mlp_forward_uses_relu_in_the_hidden_layer():
    # With an identity-like setup the output is relu(x) exactly.
    eye = torch.eye(4)
    x = torch.tensor([[-1.0, 0.0, 2.0, -3.0]])
    out = nb.mlp_forward(x, eye, torch.zeros(4), eye, torch.zeros(4))
    assert_close(out, torch.relu(x))


def test_manual_sgd_step_matches_optim_sgd():
    gen = torch.Generator().manual_seed(4)
    params = nb.init_mlp_params(1, 8, 1, generator=gen, dtype=torch.float64)
    model = sequential_twin(*params)
    x = torch.linspace(-2, 2, 40, dtype=torch.float64).unsqueeze(1)
    y = torch.sin(2 * x)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(5):
        loss = F.mse_loss(nb.mlp_forward(x, *params), y)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= 0.1 * p.grad
                p.grad.zero_()
        loss_nn = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss_nn.backward()
        opt.step()
        assert_close(loss, loss_nn)
    assert_close(params[0].detach(), model[0].weight.detach().T)


def explicit_hessian(model, x, y):
    """The full Hessian of F.mse_loss(model(x), y) w.r.t. all parameters, flattened in parameters() order."""
    names = [name for name, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]

    def loss(flat):
        pieces = torch.split(flat, [s.numel() for s in shapes])
        weights = {n: piece.reshape(s) for n, piece, s in zip(names, pieces, shapes)}
        return F.mse_loss(torch.func.functional_call(model, weights, (x,)), y)

    return torch.autograd.functional.hessian(loss, torch.cat([p.detach().reshape(-1) for p in model.parameters()]))


@pytest.mark.parametrize("activation", [nn.Tanh, nn.Sigmoid, nn.ReLU])
def test_sharpness_is_the_dominant_hessian_eigenvalue(activation):
    torch.manual_seed(13)
    model = nn.Sequential(nn.Linear(2, 5), activation(), nn.Linear(5, 5), activation(), nn.Linear(5, 1)).double()
    x = torch.randn(40, 2, dtype=torch.float64)
    y = torch.sin(x[:, :1]) * 2
    eigenvalues = torch.linalg.eigvalsh(explicit_hessian(model, x, y))
    dominant = eigenvalues[eigenvalues.abs().argmax()].item()
    value, v = nb.sharpness(model, x, y, iters=500)
    assert value == pytest.approx(dominant, rel=1e-6)
    assert [t.shape for t in v] == [p.shape for p in model.parameters()]
    # warm start: a few more iterations from the returned vector stay on the same eigenvalue
    again, _ = nb.sharpness(model, x, y, v=v, iters=3)
    assert again == pytest.approx(dominant, rel=1e-6)


def test_sharpness_of_a_quadratic_is_its_curvature():
    # A linear model with MSE: the Hessian is 2 X^T X / N exactly, with no network in the way.
    gen = torch.Generator().manual_seed(14)
    x = torch.randn(50, 3, generator=gen, dtype=torch.float64) * torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64)
    model = nn.Linear(3, 1, bias=False).double()
    y = torch.randn(50, 1, generator=gen, dtype=torch.float64)
    value, _ = nb.sharpness(model, x, y, iters=200)
    assert value == pytest.approx(torch.linalg.eigvalsh(2 * x.T @ x / 50).max().item(), rel=1e-8)
