import torch

from course_utils.exercises import check_answer


def test_not_attempted(capsys):
    assert check_answer("Ex 1", None, 3.0) is False
    assert check_answer("Ex 1", ..., 3.0) is False
    assert "not attempted" in capsys.readouterr().out


def test_correct_numbers_and_tensors(capsys):
    assert check_answer("Ex", 0.1 + 0.2, 0.3)
    assert check_answer("Ex", torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-8]))
    assert check_answer("Ex", [1.0, 2.0], torch.tensor([1.0, 2.0]))
    assert check_answer("Ex", "relu", "relu")
    assert capsys.readouterr().out.count("correct.") == 4


def test_wrong_answers_fail_with_a_reason(capsys):
    assert not check_answer("Ex", 0.31, 0.3, hint="add them")
    out = capsys.readouterr().out
    assert "not yet right" in out and "largest difference" in out and "Hint: add them" in out
    assert not check_answer("Ex", torch.zeros(3), torch.zeros(2))
    assert "expected shape (2,)" in capsys.readouterr().out
    assert not check_answer("Ex", "sigmoid", "relu")
    assert not check_answer("Ex", "abc", 1.0)
    assert not check_answer("Ex", torch.tensor([float("nan")]), torch.tensor([0.0]))


def test_tolerances_are_respected():
    assert check_answer("Ex", 1.001, 1.0, atol=1e-2)
    assert not check_answer("Ex", 1.001, 1.0, atol=1e-6, rtol=0.0)
