"""Notebook 02b's from-scratch batch normalisation and residual block, checked against torch on new inputs."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.testing import assert_close

from nbcode import load_exports

nb = load_exports("02b_normalisation_residuals")

DTYPES = [torch.float32, torch.float64]


def twins(num_features, torch_class, dtype, momentum=0.1, seed=0):
    """Our BatchNorm and torch's, with the same random gamma and beta."""
    gen = torch.Generator().manual_seed(seed)
    ours = nb.BatchNorm(num_features, momentum=momentum).to(dtype)
    theirs = torch_class(num_features, momentum=momentum).to(dtype)
    gamma = torch.rand(num_features, generator=gen, dtype=torch.float64).to(dtype) + 0.5
    beta = torch.randn(num_features, generator=gen, dtype=torch.float64).to(dtype)
    with torch.no_grad():
        for bn in (ours, theirs):
            bn.weight.copy_(gamma)
            bn.bias.copy_(beta)
    return ours, theirs


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape, torch_class", [((10, 4), nn.BatchNorm1d), ((6, 4, 7), nn.BatchNorm1d),
                                                ((5, 4, 3, 3), nn.BatchNorm2d)], ids=["NC", "NCL", "NCHW"])
@pytest.mark.parametrize("momentum", [0.1, 0.35])
def test_batchnorm_training_steps_then_eval_match_torch(shape, torch_class, momentum, dtype):
    ours, theirs = twins(shape[1], torch_class, dtype, momentum)
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.05)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 2.5 - 1.5).to(dtype)
        upstream = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
        x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
        y_ours, y_theirs = ours(x_ours), theirs(x_theirs)
        assert y_ours.shape == x.shape and y_ours.dtype == dtype
        assert_close(y_ours, y_theirs)
        (y_ours * upstream).sum().backward()
        (y_theirs * upstream).sum().backward()
        assert_close(x_ours.grad, x_theirs.grad)
        assert_close(ours.weight.grad, theirs.weight.grad)
        assert_close(ours.bias.grad, theirs.bias.grad)
        for opt in (opt_ours, opt_theirs):
            opt.step()
            opt.zero_grad()
        assert_close(ours.running_mean, theirs.running_mean)
        assert_close(ours.running_var, theirs.running_var)
        assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item()
    ours.eval()
    theirs.eval()
    x_new = torch.randn((2,) + shape[1:], generator=gen, dtype=torch.float64).to(dtype)
    assert_close(ours(x_new), theirs(x_new))
    before = ours.running_mean.clone()
    ours(x_new)
    assert torch.equal(ours.running_mean, before), "evaluation mode must not update the running estimates"


def test_running_variance_is_unbiased_and_batch_variance_is_not():
    x = torch.tensor([[1.0], [2.0], [4.0], [9.0]], dtype=torch.float64)  # (4, 1)
    running_mean, running_var = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    weight, bias = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    y = nb.batch_norm(x, running_mean, running_var, weight, bias, training=True, momentum=0.5, eps=0.0)
    assert_close(y.var(unbiased=False), torch.tensor(1.0, dtype=torch.float64))  # normalised with the 1/N variance
    assert_close(running_mean, torch.tensor([0.5 * 4.0], dtype=torch.float64))
    assert_close(running_var, torch.tensor([0.5 * 1.0 + 0.5 * x.var(unbiased=True).item()], dtype=torch.float64))


def test_unbiased_correction_counts_every_value_of_a_channel():
    # For (N, C, H, W), a channel's statistics use N*H*W values: the correction is (NHW)/(NHW - 1), not N/(N-1).
    ours, theirs = twins(2, nn.BatchNorm2d, torch.float64)
    x = torch.randn(2, 2, 3, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    ours(x)
    theirs(x)
    assert_close(ours.running_var, theirs.running_var)
    expected = 0.9 + 0.1 * x.transpose(0, 1).reshape(2, -1).var(dim=1, unbiased=True)
    assert_close(ours.running_var, expected)


def test_state_dicts_load_both_ways():
    ours, theirs = twins(3, nn.BatchNorm1d, torch.float32)
    theirs(torch.randn(8, 3))
    ours.load_state_dict(theirs.state_dict())  # strict: same names, same shapes
    for name, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[name], value), name
    ours(torch.randn(8, 3))
    fresh = nn.BatchNorm1d(3)
    fresh.load_state_dict(ours.state_dict())
    assert torch.equal(fresh.running_var, ours.running_var)
    assert set(dict(ours.named_buffers())) == {"running_mean", "running_var", "num_batches_tracked"}
    assert set(dict(ours.named_parameters())) == {"weight", "bias"}


def test_batchnorm_moves_with_to_and_its_buffers_get_no_gradient():
    bn = nb.BatchNorm(4).to(torch.float64)
    assert bn.running_mean.dtype == torch.float64 and bn.weight.dtype == torch.float64
    out = bn(torch.randn(6, 4, dtype=torch.float64, requires_grad=True))
    out.sum().backward()
    assert not bn.running_mean.requires_grad and not bn.running_var.requires_grad


def test_batchnorm_refuses_what_it_cannot_do():
    bn = nb.BatchNorm(3)
    with pytest.raises(ValueError, match="more than one value per channel"):
        bn(torch.randn(1, 3))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3\)"):
        bn(torch.randn(5, 4))
    with pytest.raises(ValueError, match=r"expected input of shape"):
        bn(torch.randn(3))
    with pytest.raises(ValueError, match="momentum"):
        nb.BatchNorm(3, momentum=None)
    with pytest.raises(ValueError, match="momentum"):
        nb.BatchNorm(3, momentum=1.5)
    bn.eval()
    assert bn(torch.randn(1, 3)).shape == (1, 3)  # one example is fine in evaluation mode
    single_pixel = nb.BatchNorm(2)
    assert single_pixel(torch.randn(1, 2, 2, 2)).shape == (1, 2, 2, 2)  # 4 values per channel: fine in training


def test_batchnorm_ignores_shift_and_scale_of_its_input():
    gen = torch.Generator().manual_seed(6)
    z = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    bn = nb.BatchNorm(5).double()
    assert_close(bn(z + torch.randn(5, generator=gen, dtype=torch.float64)), bn(z))
    assert_close(bn(7.0 * z), bn(z), atol=1e-5, rtol=1e-5)


def test_residual_block_jacobian_is_identity_plus_plain_jacobian():
    torch.manual_seed(8)
    for activation in (nn.Sigmoid, nn.Tanh, nn.ReLU):
        residual = nb.Block(5, 5, activation, residual=True).double()
        plain = nb.Block(5, 5, activation).double()
        plain.load_state_dict(residual.state_dict())
        h = torch.randn(5, dtype=torch.float64)
        J_res = torch.autograd.functional.jacobian(residual, h)
        J_plain = torch.autograd.functional.jacobian(plain, h)
        assert_close(J_res, torch.eye(5, dtype=torch.float64) + J_plain)
        W = plain.linear.weight.detach()
        z = W @ h + plain.linear.bias.detach()
        slope = torch.autograd.functional.jacobian(activation(), z).diagonal()
        assert_close(J_plain, slope.unsqueeze(1) * W)  # diag(f'(z)) W


def test_block_with_norm_matches_torch_layers_and_has_no_linear_bias():
    torch.manual_seed(9)
    block = nb.Block(4, 6, nn.ReLU, norm=True)
    assert block.linear.bias is None
    reference = nn.Sequential(nn.Linear(4, 6, bias=False), nn.BatchNorm1d(6), nn.ReLU())
    with torch.no_grad():
        reference[0].weight.copy_(block.linear.weight)
    x = torch.randn(10, 4)
    assert_close(block(x), reference(x))
    block.eval()
    reference.eval()
    assert_close(block(x), reference(x))


def test_residual_needs_matching_widths():
    with pytest.raises(ValueError, match="n_in must equal n_out"):
        nb.Block(3, 4, nn.ReLU, residual=True)


def test_make_net_layout():
    net = nb.make_net(4, 8, nn.Tanh, norm=True, residual=True, n_in=1)
    blocks = list(net)[:-1]
    assert len(blocks) == 4 and isinstance(net[-1], nn.Linear) and net[-1].out_features == 1
    assert [b.residual for b in blocks] == [False, True, True, True]  # 1 -> 8 cannot skip
    assert net(torch.randn(5, 1)).shape == (5, 1)
    square = nb.make_net(3, 8, nn.ReLU, residual=True)
    assert all(b.residual for b in list(square)[:-1])

