"""Notebook 01's from-scratch code (its ``# export`` cells) checked against PyTorch on new random inputs."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from nbcode import load_exports
from torch import nn
from torch.utils.data import DataLoader

nb = load_exports("01_regression_least_squares")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


# ---- mse_half ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1,), (7,), (5, 3), (2, 3, 4)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mse_half_is_half_of_torch_mse(gen, shape, dtype):
    pred = torch.randn(shape, generator=gen, dtype=dtype)
    target = torch.randn(shape, generator=gen, dtype=dtype)
    torch.testing.assert_close(nb.mse_half(pred, target), nn.MSELoss()(pred, target) / 2)


def test_mse_half_gradient_matches_torch(gen):
    target = torch.randn(11, generator=gen, dtype=torch.float64)
    p1 = torch.randn(11, generator=gen, dtype=torch.float64, requires_grad=True)
    p2 = p1.detach().clone().requires_grad_()
    nb.mse_half(p1, target).backward()
    (nn.MSELoss()(p2, target) / 2).backward()
    torch.testing.assert_close(p1.grad, p2.grad)


def test_mse_half_rejects_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        nb.mse_half(torch.zeros(4, 1), torch.zeros(4))  # would broadcast to (4, 4)
    with pytest.raises(TypeError, match="tensors"):
        nb.mse_half([1.0, 2.0], torch.zeros(2))
    with pytest.raises(ValueError, match="empty"):
        nb.mse_half(torch.zeros(0), torch.zeros(0))


# ---- polynomial_features and normal_equation -------------------------------------------------------


@pytest.mark.parametrize("degree", [0, 1, 2, 5, 9])
def test_polynomial_features_match_vander(gen, degree):
    x = torch.rand(13, generator=gen, dtype=torch.float64) * 4 - 2
    torch.testing.assert_close(nb.polynomial_features(x, degree), torch.vander(x, N=degree + 1, increasing=True))


def test_polynomial_features_rejects_bad_input():
    with pytest.raises(ValueError, match="dimensions"):
        nb.polynomial_features(torch.zeros(5, 1), 2)
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match="degree"):
            nb.polynomial_features(torch.zeros(5), bad)
    with pytest.raises(TypeError):
        nb.polynomial_features([0.0, 1.0], 1)


@pytest.mark.parametrize("n, d", [(40, 1), (50, 4), (9, 9)])
def test_normal_equation_matches_lstsq(gen, n, d):
    X = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = torch.randn(n, generator=gen, dtype=torch.float64)
    expected = torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1)
    torch.testing.assert_close(nb.normal_equation(X, y), expected)


def test_normal_equation_on_polynomial_data_recovers_coefficients(gen):
    x = torch.rand(200, generator=gen, dtype=torch.float64) * 2 - 1
    coef = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64)
    X = torch.vander(x, N=4, increasing=True)  # torch's own design matrix, not the notebook's
    torch.testing.assert_close(nb.normal_equation(X, X @ coef), coef)


def test_normal_equation_rejects_bad_shapes():
    with pytest.raises(ValueError, match="y"):
        nb.normal_equation(torch.zeros(5, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="at least as many rows"):
        nb.normal_equation(torch.zeros(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="dimensions"):
        nb.normal_equation(torch.zeros(5), torch.zeros(5))


# ---- half_mse_grad -------------------------------------------------------------------------------


@pytest.mark.parametrize("n, d", [(1, 1), (30, 2), (64, 7)])
def test_half_mse_grad_matches_autograd(gen, n, d):
    X = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = torch.randn(n, generator=gen, dtype=torch.float64)
    theta = torch.randn(d, generator=gen, dtype=torch.float64, requires_grad=True)
    (nn.MSELoss()(X @ theta, y) / 2).backward()
    torch.testing.assert_close(nb.half_mse_grad(X, theta.detach(), y), theta.grad)


def test_half_mse_grad_is_zero_at_the_least_squares_solution(gen):
    X = torch.randn(25, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(25, generator=gen, dtype=torch.float64)
    theta = torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1)
    torch.testing.assert_close(nb.half_mse_grad(X, theta, y), torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)


def test_half_mse_grad_rejects_bad_shapes():
    with pytest.raises(ValueError, match="theta"):
        nb.half_mse_grad(torch.zeros(5, 2), torch.zeros(3), torch.zeros(5))
    with pytest.raises(ValueError, match="y"):
        nb.half_mse_grad(torch.zeros(5, 2), torch.zeros(2), torch.zeros(4))


# ---- PointsDataset ------------------------------------------------------------------------------


def test_points_dataset_with_dataloader(gen):
    features = torch.randn(23, 2, generator=gen)
    targets = torch.randn(23, generator=gen)
    ds = nb.PointsDataset(features, targets)
    assert len(ds) == 23
    f5, t5 = ds[5]
    assert torch.equal(f5, features[5]) and torch.equal(t5, targets[5])
    batches = list(DataLoader(ds, batch_size=5))
    assert [len(b[1]) for b in batches] == [5, 5, 5, 5, 3]
    assert torch.equal(torch.cat([b[0] for b in batches]), features)
    assert torch.equal(torch.cat([b[1] for b in batches]), targets)
    shuffled = torch.cat([b[1] for b in DataLoader(ds, batch_size=4, shuffle=True, generator=gen)])
    assert torch.equal(shuffled.sort().values, targets.sort().values)  # every example exactly once


def test_points_dataset_rejects_mismatched_data():
    with pytest.raises(ValueError, match="targets"):
        nb.PointsDataset(torch.zeros(5, 1), torch.zeros(4))
    with pytest.raises(ValueError, match="features"):
        nb.PointsDataset(torch.zeros(5), torch.zeros(5))


# ---- hard sigmoids, ReLUs and sums of units -------------------------------------------------------


def test_units_match_torch(gen):
    z = torch.randn(100, generator=gen, dtype=torch.float64) * 3
    torch.testing.assert_close(nb.hard_sigmoid(z), F.hardtanh(z, 0.0, 1.0))
    torch.testing.assert_close(nb.relu(z), F.relu(z))


def _random_knots(gen, k):
    knots_x = torch.sort(torch.rand(k + 1, generator=gen, dtype=torch.float64) * 10 - 5).values
    knots_y = torch.randn(k + 1, generator=gen, dtype=torch.float64)
    return knots_x, knots_y


@pytest.mark.parametrize("k", [1, 3, 12])
def test_hard_sigmoid_sum_is_the_piecewise_linear_curve(gen, k):
    knots_x, knots_y = _random_knots(gen, k)
    xs = torch.linspace(-7, 7, 1001, dtype=torch.float64)  # beyond the knots, where the curve is flat
    expected = torch.from_numpy(np.interp(xs.numpy(), knots_x.numpy(), knots_y.numpy()))
    b, c, w, bias = nb.hard_sigmoid_params(knots_x, knots_y)
    torch.testing.assert_close(nb.sum_of_units(xs, b, c, w, bias, nb.hard_sigmoid), expected, atol=1e-10, rtol=0)
    c2, w2, bias2 = nb.relu_params_from_hard(c, w, bias)
    assert c2.shape == w2.shape == bias2.shape == (2 * k,)
    torch.testing.assert_close(nb.sum_of_units(xs, b, c2, w2, bias2, nb.relu), expected, atol=1e-10, rtol=0)


@pytest.mark.parametrize("unit_fn, module", [(torch.sigmoid, nn.Sigmoid()), (F.relu, nn.ReLU())])
def test_sum_of_units_is_a_one_hidden_layer_network(gen, unit_fn, module):
    k = 6
    net = nn.Sequential(nn.Linear(1, k), module, nn.Linear(k, 1)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    xs = torch.randn(40, generator=gen, dtype=torch.float64)
    got = nb.sum_of_units(xs, net[2].bias[0], net[2].weight[0], net[0].weight[:, 0], net[0].bias, unit_fn)
    torch.testing.assert_close(got, net(xs.unsqueeze(1)).squeeze(1).detach())


def test_knot_checks():
    with pytest.raises(ValueError, match="strictly increasing"):
        nb.ramp_units(torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="at least 2"):
        nb.ramp_units(torch.tensor([0.0]))
    with pytest.raises(ValueError, match="dimensions"):
        nb.ramp_units(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="knots_y"):
        nb.hard_sigmoid_params(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.0, 1.0]))


def test_relu_params_from_knots_is_the_piecewise_linear_curve_with_k_plus_1_units(gen):
    for k in (1, 3, 12):
        knots_x, knots_y = _random_knots(gen, k)
        xs = torch.linspace(-7, 7, 1001, dtype=torch.float64)
        expected = torch.from_numpy(np.interp(xs.numpy(), knots_x.numpy(), knots_y.numpy()))
        b, c, w, bias = nb.relu_params_from_knots(knots_x, knots_y)
        assert c.shape == w.shape == bias.shape == (k + 1,)
        torch.testing.assert_close(nb.sum_of_units(xs, b, c, w, bias, nb.relu), expected, atol=1e-10, rtol=0)
        # the same parameters in an nn.Sequential with k + 1 ReLU units
        net = nn.Sequential(nn.Linear(1, k + 1), nn.ReLU(), nn.Linear(k + 1, 1)).double()
        with torch.no_grad():
            net[0].weight.copy_(w.unsqueeze(1))
            net[0].bias.copy_(bias)
            net[2].weight.copy_(c.unsqueeze(0))
            net[2].bias.fill_(b)
            torch.testing.assert_close(net(xs.unsqueeze(1)).squeeze(1), expected, atol=1e-10, rtol=0)


def test_relu_params_from_knots_checks_its_input():
    with pytest.raises(ValueError, match="strictly increasing"):
        nb.relu_params_from_knots(torch.tensor([0.0, 2.0, 1.0]), torch.zeros(3))
    with pytest.raises(ValueError, match="knots_y"):
        nb.relu_params_from_knots(torch.tensor([0.0, 1.0, 2.0]), torch.zeros(2))


# ---- gradient descent with a stopping rule -----------------------------------------------------


def _quadratic(gen, d=3):
    A = torch.randn(d, d, generator=gen, dtype=torch.float64)
    H = A @ A.T + 0.5 * torch.eye(d, dtype=torch.float64)  # symmetric positive definite
    opt = torch.randn(d, generator=gen, dtype=torch.float64)
    return H, opt


def test_gradient_descent_matches_torch_sgd_step_for_step(gen):
    H, opt = _quadratic(gen)
    lr = 1.0 / torch.linalg.eigvalsh(H).max().item()
    theta0 = torch.randn(3, generator=gen, dtype=torch.float64)
    theta, steps, converged = nb.gradient_descent(lambda th: H @ (th - opt), theta0, lr, 1e-8, 100_000)
    assert converged and steps > 0
    p = theta0.clone().requires_grad_()
    sgd = torch.optim.SGD([p], lr=lr)
    for _ in range(steps):  # the same number of plain SGD steps on L = 1/2 (p - opt)^T H (p - opt)
        sgd.zero_grad()
        (0.5 * (p - opt) @ H @ (p - opt)).backward()
        sgd.step()
    torch.testing.assert_close(theta, p.detach())
    # the rule: the next update is below tol, the previous one was not
    assert (lr * H @ (theta - opt)).norm() < 1e-8
    torch.testing.assert_close(theta, opt, atol=1e-8 / (lr * torch.linalg.eigvalsh(H).min().item()), rtol=0)


def test_gradient_descent_stops_after_the_predicted_number_of_steps():
    # 1-D quadratic L = lam/2 (theta - a)^2: the update at step t is lr lam |1 - lr lam|^t |theta0 - a|.
    lam, a, lr, tol, theta0 = 2.0, 1.0, 0.1, 1e-6, 4.0
    first_small = math.ceil(math.log(tol / (lr * lam * abs(theta0 - a))) / math.log(1 - lr * lam))
    _, steps, converged = nb.gradient_descent(
        lambda th: lam * (th - a), torch.tensor([theta0], dtype=torch.float64), lr, tol, 10_000
    )
    assert converged and steps == first_small


def test_gradient_descent_reports_when_the_cap_ends_it():
    theta, steps, converged = nb.gradient_descent(lambda th: 2 * th, torch.tensor([1.0]), 0.1, 1e-30, 5)
    assert (steps, converged) == (5, False)
    torch.testing.assert_close(theta, torch.tensor([0.8**5]))


def test_gradient_descent_rejects_bad_settings():
    g = lambda th: th  # noqa: E731
    with pytest.raises(ValueError, match="positive"):
        nb.gradient_descent(g, torch.zeros(2), 0.0, 1e-3, 10)
    with pytest.raises(ValueError, match="positive"):
        nb.gradient_descent(g, torch.zeros(2), 0.1, -1.0, 10)
    with pytest.raises(ValueError, match="max_steps"):
        nb.gradient_descent(g, torch.zeros(2), 0.1, 1e-3, 0)
    with pytest.raises(TypeError, match="theta0"):
        nb.gradient_descent(g, [0.0, 0.0], 0.1, 1e-3, 10)


# ---- the matrix form and one flat parameter vector -------------------------------------------------


@pytest.mark.parametrize("d, k", [(1, 1), (3, 4), (7, 5)])
def test_sigmoid_network_matches_nn_sequential(gen, d, k):
    torch.manual_seed(d * 10 + k)
    net = nn.Sequential(nn.Linear(d, k), nn.Sigmoid(), nn.Linear(k, 1)).double()
    X = torch.randn(9, d, generator=gen, dtype=torch.float64)
    got = nb.sigmoid_network(X, net[0].weight, net[0].bias, net[2].weight[0], net[2].bias[0])
    torch.testing.assert_close(got, net(X).squeeze(1))


def test_sigmoid_network_rejects_mismatched_shapes():
    X, W, b, c = torch.zeros(5, 3), torch.zeros(4, 3), torch.zeros(4), torch.zeros(4)
    with pytest.raises(ValueError, match="W"):
        nb.sigmoid_network(X, torch.zeros(4, 2), b, c, torch.tensor(0.0))
    with pytest.raises(ValueError, match="c"):
        nb.sigmoid_network(X, W, b, torch.zeros(3), torch.tensor(0.0))
    with pytest.raises(ValueError, match="b_out"):
        nb.sigmoid_network(X, W, b, c, torch.zeros(1))


def test_flatten_and_unflatten_match_torch_parameters_to_vector(gen):
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    params = list(net.parameters())
    theta = nb.flatten_params(params)
    torch.testing.assert_close(theta, nn.utils.parameters_to_vector(params), rtol=0, atol=0)
    pieces = nb.unflatten_params(theta, [p.shape for p in params])
    assert all(torch.equal(a, b) for a, b in zip(pieces, params))
    # torch's inverse writes a new vector into the parameters; ours cuts the same vector into the same pieces
    new = torch.randn(theta.shape, generator=gen, dtype=torch.float64)
    nn.utils.vector_to_parameters(new, params)
    assert all(torch.equal(a, b) for a, b in zip(nb.unflatten_params(new, [p.shape for p in params]), params))


def test_unflatten_params_handles_scalars_and_rejects_wrong_sizes():
    theta = torch.arange(7.0)
    W, s = nb.unflatten_params(theta, [(2, 3), ()])
    assert W.shape == (2, 3) and s.shape == () and s.item() == 6.0
    with pytest.raises(ValueError, match="hold 6 numbers but theta has 7"):
        nb.unflatten_params(theta, [(2, 3)])
    with pytest.raises(TypeError):
        nb.flatten_params([])
