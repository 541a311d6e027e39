"""course_utils.memory.peak_memory on the CPU: exact on allocations whose sizes we know."""

import pytest
import torch
import torch.nn.functional as F

from course_utils.memory import MIB, peak_memory


def test_counts_the_result_and_the_live_temporaries():
    a = torch.ones(MIB // 4)  # 1 MiB of float32

    def two_temporaries():
        b = a + 1  # 1 MiB
        c = b * 2  # 1 MiB more while b is alive
        return c.sum()  # b and c are freed when the function returns

    assert abs(peak_memory(two_temporaries, "cpu") - 2 * MIB) < 1024


def test_a_temporary_freed_early_does_not_add_up():
    def one_at_a_time():
        for _ in range(5):
            torch.ones(MIB // 4).sum()  # each 1 MiB block is freed before the next

    assert abs(peak_memory(one_at_a_time, "cpu") - MIB) < 1024


def test_nothing_allocated_is_zero():
    assert peak_memory(lambda: None, "cpu") == 0


def test_sees_quadratic_attention_and_a_fused_kernel():
    """The notebook's claim in miniature: an explicit (n, n) softmax holds two n² float32 matrices at its peak."""
    n, d = 512, 16
    q, k, v = (torch.randn(1, n, d) for _ in range(3))
    explicit = peak_memory(lambda: torch.softmax(q @ k.transpose(1, 2) / d**0.5, dim=-1) @ v, "cpu")
    assert 2 * 4 * n * n <= explicit < 2.2 * 4 * n * n
    assert peak_memory(lambda: F.scaled_dot_product_attention(q, k, v), "cpu") < explicit / 4


def test_refuses_a_device_without_a_peak_counter():
    with pytest.raises(ValueError, match="cpu"):
        peak_memory(lambda: None, "mps")
