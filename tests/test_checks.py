import numpy as np
import pytest
import torch

from course_utils.checks import expect_positive_int, expect_shape, expect_tensor


def test_expect_shape_binds_names():
    assert expect_shape(torch.zeros(2, 3, 4), ("B", "T", None), "x") == {"B": 2, "T": 3}
    assert expect_shape(torch.zeros(2, 2), ("N", "N"), "square") == {"N": 2}


def test_expect_shape_errors_name_the_tensor_and_pattern():
    with pytest.raises(ValueError, match=r"x must have 3 dimensions \(B, T, C\), got shape \(2, 3\)"):
        expect_shape(torch.zeros(2, 3), ("B", "T", "C"), "x")
    with pytest.raises(ValueError, match=r"w must have size 4 in dimension 1"):
        expect_shape(torch.zeros(2, 5), (None, 4), "w")
    with pytest.raises(ValueError, match="named 'N' must agree"):
        expect_shape(torch.zeros(2, 3), ("N", "N"), "square")


def test_expect_tensor_and_positive_int():
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        expect_tensor([1, 2], "x")
    assert expect_positive_int(3, "epochs") == 3
    with pytest.raises(ValueError, match=r"epochs must be a positive integer \(>= 1\), got 0"):
        expect_positive_int(0, "epochs")
    with pytest.raises(TypeError, match="epochs must be a positive integer"):
        expect_positive_int(2.0, "epochs")


def test_positive_int_accepts_integer_likes_only():
    assert expect_positive_int(np.int64(4), "size") == 4 and type(expect_positive_int(np.int64(4), "size")) is int
    assert expect_positive_int(torch.tensor(3), "size") == 3
    for bad in (True, torch.tensor(3.0), "3", 3.5):
        with pytest.raises(TypeError, match="size must be a positive integer"):
            expect_positive_int(bad, "size")
