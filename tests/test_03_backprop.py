"""Notebook 03 (backpropagation): the hand-written gradients and the scalar engine against PyTorch.

The notebook checks its code on the examples it shows; these tests use other shapes, other
activations and freshly generated random expression graphs.
"""

import math
import random

import pytest
import torch
import torch.nn.functional as F
from nbcode import load_exports
from references import sequential_twin
from torch import nn

nb = load_exports("03_backpropagation")

PARAM_KEYS = ("W1", "b1", "W2", "b2")


def random_batch(n, d, k, seed, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    X = 2 * torch.randn(n, d, generator=gen, dtype=dtype)
    y = torch.randint(0, k, (n,), generator=gen)
    return X, y, gen


# ---------------------------------------------------------------------------------------------
# two-layer classifier, backpropagated by hand


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("n, d, h, k", [(1, 1, 1, 2), (13, 6, 9, 5), (64, 2, 32, 3)])
def test_two_layer_gradients_match_autograd(activation, n, d, h, k):
    X, y, gen = random_batch(n, d, k, seed=n * 100 + h)
    params = nb.init_two_layer(d, h, k, generator=gen, dtype=torch.float64)
    params["b1"] = 0.3 * torch.randn(h, generator=gen, dtype=torch.float64)  # non-zero biases too
    params["b2"] = 0.3 * torch.randn(k, generator=gen, dtype=torch.float64)

    logits, cache = nb.two_layer_forward(X, params, activation)
    loss, probs = nb.softmax_cross_entropy(logits, y)
    manual = nb.two_layer_backward(cache, probs, y, params)

    leaves = {key: v.clone().requires_grad_() for key, v in params.items()}
    act = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[activation]
    reference = F.cross_entropy(act(X @ leaves["W1"] + leaves["b1"]) @ leaves["W2"] + leaves["b2"], y)
    reference.backward()

    torch.testing.assert_close(loss, reference.detach())
    torch.testing.assert_close(probs, torch.softmax(logits, dim=1))
    for key in PARAM_KEYS:
        assert manual[key].shape == params[key].shape, key
        torch.testing.assert_close(manual[key], leaves[key].grad)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_two_layer_gradcheck_float64(activation):
    X, y, gen = random_batch(6, 4, 3, seed=5)
    params = nb.init_two_layer(4, 7, 3, generator=gen, dtype=torch.float64)
    params["b1"] = 0.2 * torch.randn(7, generator=gen, dtype=torch.float64)
    inputs = tuple(params[key].clone().requires_grad_() for key in PARAM_KEYS)
    assert torch.autograd.gradcheck(
        lambda W1, b1, W2, b2: nb.ManualTwoLayerLoss.apply(X, y, W1, b1, W2, b2, activation), inputs
    )


def test_gradcheck_catches_a_wrong_backward():
    """The check must be able to fail: scaling one gradient breaks it."""

    class Broken(nb.ManualTwoLayerLoss):
        @staticmethod
        def backward(ctx, grad_loss):
            grads = list(nb.ManualTwoLayerLoss.backward(ctx, grad_loss))
            grads[4] = grads[4] * 1.5  # dW2 wrong
            return tuple(grads)

    X, y, gen = random_batch(5, 3, 4, seed=9)
    params = nb.init_two_layer(3, 6, 4, generator=gen, dtype=torch.float64)
    inputs = tuple(params[key].clone().requires_grad_() for key in PARAM_KEYS)
    assert not torch.autograd.gradcheck(
        lambda W1, b1, W2, b2: Broken.apply(X, y, W1, b1, W2, b2, "relu"), inputs, raise_exception=False
    )


def test_softmax_cross_entropy_is_stable_for_large_logits():
    logits = torch.tensor([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0], [-800.0, 800.0, 0.0]])
    y = torch.tensor([0, 2, 0])
    loss, probs = nb.softmax_cross_entropy(logits, y)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, F.cross_entropy(logits, y))
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(3))


def test_two_layer_float32_training_step_matches_sgd():
    X, y, gen = random_batch(40, 2, 3, seed=1, dtype=torch.float32)
    params = nb.init_two_layer(2, 16, 3, generator=gen)
    model = sequential_twin(params["W1"], params["b1"], params["W2"], params["b2"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    for _ in range(3):
        logits, cache = nb.two_layer_forward(X, params, "relu")
        _, probs = nb.softmax_cross_entropy(logits, y)
        grads = nb.two_layer_backward(cache, probs, y, params)
        for key in params:
            params[key] = params[key] - 0.3 * grads[key]
        optimizer.zero_grad()
        F.cross_entropy(model(X), y).backward()
        optimizer.step()
    torch.testing.assert_close(params["W1"], model[0].weight.detach().T)
    torch.testing.assert_close(params["b2"], model[2].bias.detach())


def test_two_layer_forward_rejects_bad_shapes():
    params = nb.init_two_layer(3, 4, 2)
    with pytest.raises(ValueError, match="X"):
        nb.two_layer_forward(torch.randn(3), params)  # 1-D input
    with pytest.raises(ValueError, match="W1"):
        nb.two_layer_forward(torch.randn(5, 2), params)  # 2 features, W1 expects 3


# ---------------------------------------------------------------------------------------------
# forward pass / reverse network for one example


@pytest.mark.parametrize(
    "sizes, act, act_grad",
    [
        ([5, 7, 3], torch.tanh, lambda z: 1 - torch.tanh(z) ** 2),
        ([2, 6, 6, 6, 4], torch.sigmoid, lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z))),
        ([4, 8, 1], torch.relu, lambda z: (z > 0).to(z.dtype)),
    ],
)
def test_reverse_network_matches_autograd(sizes, act, act_grad):
    gen = torch.Generator().manual_seed(len(sizes))
    weights = [
        torch.randn(o, i, generator=gen, dtype=torch.float64).requires_grad_() for i, o in zip(sizes[:-1], sizes[1:])
    ]
    biases = [torch.randn(o, generator=gen, dtype=torch.float64).requires_grad_() for o in sizes[1:]]
    x = torch.randn(sizes[0], generator=gen, dtype=torch.float64)
    target = torch.randn(sizes[-1], generator=gen, dtype=torch.float64)

    zs, acts = nb.mlp_forward(x, weights, biases, act=act)
    for z in zs:
        z.retain_grad()
    cost = 0.5 * ((acts[-1] - target) ** 2).sum()  # squared error this time: dC/dz_out = output - target
    cost.backward()
    with torch.no_grad():
        deltas = nb.reverse_network(zs, weights, acts[-1] - target, act_grad)
        grads_W, grads_b = nb.layer_grads(acts, deltas)
    assert len(deltas) == len(weights)
    for delta, z in zip(deltas, zs):
        torch.testing.assert_close(delta, z.grad)
    for gw, gb, W, b in zip(grads_W, grads_b, weights, biases):
        torch.testing.assert_close(gw, W.grad)
        torch.testing.assert_close(gb, b.grad)


def test_sigmoid_grad_and_softmax_delta_match_autograd():
    z = torch.linspace(-6, 6, 25, dtype=torch.float64, requires_grad=True)
    torch.sigmoid(z).sum().backward()
    torch.testing.assert_close(nb.sigmoid_grad(z.detach()), z.grad)
    assert nb.sigmoid_grad(torch.zeros(1)).item() == 0.25

    logits = torch.tensor([0.3, -1.2, 2.0, 0.1], dtype=torch.float64, requires_grad=True)
    for target in range(4):
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, torch.tensor(target)), logits)
        torch.testing.assert_close(nb.softmax_delta(logits.detach(), target), grad)


def random_net(sizes, seed):
    gen = torch.Generator().manual_seed(seed)
    weights = [
        torch.randn(o, i, generator=gen, dtype=torch.float64) / math.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])
    ]
    biases = [0.5 * torch.randn(o, generator=gen, dtype=torch.float64) for o in sizes[1:]]
    return weights, biases, gen


@pytest.mark.parametrize(
    "sizes, act, act_grad",
    [
        ([3, 4, 4, 2], torch.sigmoid, None),
        ([5, 7, 3], torch.tanh, lambda z: 1 - torch.tanh(z) ** 2),
        ([2, 6, 6, 4], torch.relu, lambda z: (z > 0).to(z.dtype)),
    ],
)
def test_per_example_grads_sum_to_the_total_loss_gradient(sizes, act, act_grad):
    weights, biases, gen = random_net(sizes, seed=len(sizes) + sizes[-1])
    n = 9
    X = torch.randn(n, sizes[0], generator=gen, dtype=torch.float64)
    y = torch.randint(0, sizes[-1], (n,), generator=gen)
    kwargs = {"act": act} if act_grad is None else {"act": act, "act_grad": act_grad}
    per_W, per_b = nb.per_example_grads(X, y, weights, biases, **kwargs)
    assert [g.shape for g in per_W] == [(n, *W.shape) for W in weights]
    assert [g.shape for g in per_b] == [(n, *b.shape) for b in biases]

    leaves = [p.clone().requires_grad_() for p in weights + biases]
    Ws, bs = leaves[: len(weights)], leaves[len(weights) :]

    def logits_of(x):  # (D,) -> (K,), written independently of mlp_forward
        h = x
        for i, (W, b) in enumerate(zip(Ws, bs)):
            h = W @ h + b
            h = h if i == len(Ws) - 1 else act(h)
        return h

    # each example's gradient against autograd, one example at a time
    for i in range(n):
        grads = torch.autograd.grad(F.cross_entropy(logits_of(X[i]), y[i]), leaves)
        for got, expected in zip([g[i] for g in per_W + per_b], grads):
            torch.testing.assert_close(got, expected)
    # the sum against autograd of the summed loss, the mean against the mean loss
    logits = torch.stack([logits_of(x) for x in X])
    grads_sum = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), leaves, retain_graph=True)
    grads_mean = torch.autograd.grad(F.cross_entropy(logits, y), leaves)
    for per, g_sum, g_mean in zip(per_W + per_b, grads_sum, grads_mean):
        torch.testing.assert_close(per.sum(dim=0), g_sum)
        torch.testing.assert_close(per.mean(dim=0), g_mean)


def test_per_example_grads_leave_autograd_alone_and_reject_bad_shapes():
    weights, biases, gen = random_net([3, 4, 2], seed=0)
    weights = [W.requires_grad_() for W in weights]
    X, y = torch.randn(5, 3, generator=gen, dtype=torch.float64), torch.tensor([0, 1, 1, 0, 1])
    per_W, _ = nb.per_example_grads(X, y, weights, biases)
    assert not per_W[0].requires_grad and weights[0].grad is None  # hand-made backward: no graph, no .grad
    with pytest.raises(ValueError, match="X must have shape"):
        nb.per_example_grads(X[0], y, weights, biases)  # one example without the batch axis
    with pytest.raises(ValueError, match="X must have shape"):
        nb.per_example_grads(torch.randn(5, 4, dtype=torch.float64), y, weights, biases)  # 4 features, net takes 3
    with pytest.raises(ValueError, match="targets must have shape"):
        nb.per_example_grads(X, y[:3], weights, biases)


# ---------------------------------------------------------------------------------------------
# the scalar autograd engine

BINARY = {
    "add": lambda p, q: p + q,
    "sub": lambda p, q: p - q,
    "mul": lambda p, q: p * q,
    "div": lambda p, q: p / q,
}
UNARY = {
    "sq": lambda p: p**2,
    "cube": lambda p: p**3,
    "inv": lambda p: p**-1,
    "sqrt": lambda p: p**0.5,
    "pow1.5": lambda p: p**1.5,
    "tanh": lambda p: p.tanh(),
    "exp": lambda p: p.exp(),
    "relu": lambda p: p.relu(),
    "neg": lambda p: -p,
    "radd": lambda p: 0.5 + p,
    "rsub": lambda p: 2 - p,
    "rmul": lambda p: 3 * p,
    "rdiv": lambda p: 1.5 / p,
}


def allowed(name, p, q=None):
    """Stay where every operation is smooth and finite."""
    if name == "div":
        return abs(q) > 0.25
    if name in ("inv", "rdiv"):
        return abs(p) > 0.25
    if name in ("sqrt", "pow1.5"):
        return p > 0.05
    if name == "relu":
        return abs(p) > 1e-6  # relu has no derivative at exactly 0
    if name in ("exp", "cube", "mul", "sq"):
        return abs(p) < 4 and (q is None or abs(q) < 4)
    return True


def build_pair(seed, n_leaves=4, n_ops=20):
    """The same random DAG from Values and from float64 tensors; operands reuse earlier nodes."""
    rng = random.Random(seed)
    start = [rng.uniform(-2, 2) for _ in range(n_leaves)]
    vals = [nb.Value(v) for v in start]
    tens = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in start]
    for _ in range(n_ops):
        i = rng.randrange(len(vals))
        j = i if rng.random() < 0.25 else rng.randrange(len(vals))  # force plenty of p op p
        if rng.random() < 0.5:
            name = rng.choice(sorted(BINARY))
            if not allowed(name, vals[i].data, vals[j].data):
                name = "add"
            vals.append(BINARY[name](vals[i], vals[j]))
            tens.append(BINARY[name](tens[i], tens[j]))
        else:
            name = rng.choice(sorted(UNARY))
            if not allowed(name, vals[i].data):
                name = "tanh"
            vals.append(UNARY[name](vals[i]))
            tens.append(UNARY[name](tens[i]))
    # output: a weighted sum of every computed node, so each one matters
    out_v = sum((0.1 * (m + 1)) * v for m, v in enumerate(vals[n_leaves:]))
    out_t = sum((0.1 * (m + 1)) * t for m, t in enumerate(tens[n_leaves:]))
    return vals[:n_leaves], out_v, tens[:n_leaves], out_t


@pytest.mark.parametrize("seed", range(40))
def test_value_matches_torch_on_random_expressions(seed):
    leaves_v, out_v, leaves_t, out_t = build_pair(seed)
    out_v.backward()
    out_t.backward()
    assert math.isclose(out_v.data, out_t.item(), rel_tol=1e-10, abs_tol=1e-10)
    for v, t in zip(leaves_v, leaves_t):
        expected = 0.0 if t.grad is None else t.grad.item()
        assert math.isclose(v.grad, expected, rel_tol=1e-9, abs_tol=1e-9), (seed, v.grad, expected)


@pytest.mark.parametrize(
    "build, grad_a, grad_b",
    [
        (lambda a, b: a * a, lambda a, b: 2 * a, lambda a, b: 0.0),
        (lambda a, b: a + a, lambda a, b: 2.0, lambda a, b: 0.0),
        (lambda a, b: a - a + b, lambda a, b: 0.0, lambda a, b: 1.0),
        (lambda a, b: a / a * b, lambda a, b: 0.0, lambda a, b: 1.0),
        (lambda a, b: (a * b + a) * a, lambda a, b: 2 * a * b + 2 * a, lambda a, b: a * a),
        (
            lambda a, b: (a * a).tanh() * (a * a),
            lambda a, b: 2 * a * math.tanh(a * a) + a * a * (1 - math.tanh(a * a) ** 2) * 2 * a,
            lambda a, b: 0.0,
        ),
        (lambda a, b: b**3 / b, lambda a, b: 0.0, lambda a, b: 2 * b),
    ],
)
def test_value_reused_nodes_accumulate(build, grad_a, grad_b):
    a0, b0 = 0.7, -1.3
    a, b = nb.Value(a0), nb.Value(b0)
    build(a, b).backward()
    assert math.isclose(a.grad, grad_a(a0, b0), rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(b.grad, grad_b(a0, b0), rel_tol=1e-12, abs_tol=1e-12)


def test_value_shared_subexpression_used_by_many_nodes():
    a = nb.Value(0.4)
    h = a.exp()  # one node feeding three later ones
    out = h * h + h.tanh() + 2 / h
    out.backward()
    at = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    ht = at.exp()
    (ht * ht + ht.tanh() + 2 / ht).backward()
    assert math.isclose(a.grad, at.grad.item(), rel_tol=1e-12)


def test_value_backward_twice_accumulates_like_torch():
    a, b = nb.Value(1.2), nb.Value(-0.5)
    out = (a * b).tanh() + a
    out.backward()
    out.backward()  # leaves accumulate, interior nodes are recomputed, not doubled again
    at = torch.tensor(1.2, dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(-0.5, dtype=torch.float64, requires_grad=True)
    out_t = (at * bt).tanh() + at
    out_t.backward(retain_graph=True)
    out_t.backward()
    assert math.isclose(a.grad, at.grad.item(), rel_tol=1e-12)
    assert math.isclose(b.grad, bt.grad.item(), rel_tol=1e-12)


def test_value_deep_chain_has_no_recursion_limit():
    x = nb.Value(0.5)
    y = x
    for _ in range(5000):
        y = y * 1.0001 + 0.0
    y.backward()
    assert math.isclose(x.grad, 1.0001**5000, rel_tol=1e-9)


def test_value_topological_order_puts_inputs_first():
    a, b = nb.Value(1.0), nb.Value(2.0)
    c = a * b
    d = c + a
    e = d * c
    order = e.topological_order()
    position = {id(v): i for i, v in enumerate(order)}
    assert len(order) == len({id(v) for v in order}) == 5
    for node in order:
        for parent, _ in node.parents:
            assert position[id(parent)] < position[id(node)]
    assert order[-1] is e


def test_value_rejects_undefined_operations():
    with pytest.raises(ValueError):
        nb.Value(-4.0) ** 0.5
    with pytest.raises(ZeroDivisionError):
        nb.Value(1.0) / nb.Value(0.0)
    with pytest.raises(TypeError):
        nb.Value(2.0) ** nb.Value(3.0)


def test_value_mlp_matches_torch():
    mlp = nb.ValueMLP([3, 5, 4, 2], seed=4)
    layers = []
    for i, (W, b) in enumerate(mlp.layers):
        lin = nn.Linear(len(W[0]), len(W)).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor([[w.data for w in row] for row in W], dtype=torch.float64))
            lin.bias.copy_(torch.tensor([v.data for v in b], dtype=torch.float64))
        layers += [lin, nn.Tanh()] if i < len(mlp.layers) - 1 else [lin]
    net = nn.Sequential(*layers)
    x = [0.5, -1.0, 2.0]
    out = mlp(x)
    assert len(out) == 2
    loss = out[0] * out[1] + out[0] ** 2
    loss.backward()
    out_t = net(torch.tensor(x, dtype=torch.float64))
    (out_t[0] * out_t[1] + out_t[0] ** 2).backward()
    assert math.isclose(loss.data, (out_t[0] * out_t[1] + out_t[0] ** 2).item(), rel_tol=1e-12)
    grads = torch.tensor([p.grad for p in mlp.parameters()], dtype=torch.float64)
    ref = torch.cat(
        [torch.cat([lin.weight.grad.flatten(), lin.bias.grad]) for lin in net if isinstance(lin, nn.Linear)]
    )
    torch.testing.assert_close(grads, ref)
    assert len(mlp.parameters()) == sum(p.numel() for p in net.parameters())
    mlp.zero_grad()
    assert all(p.grad == 0.0 for p in mlp.parameters())
