import pytest
import torch

from course_utils.device import describe_device, get_device, model_device, synchronize


def test_default_picks_best_available(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert get_device().type == expected


def test_default_falls_back_to_cpu(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")


def test_default_prefers_cuda(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")


def test_explicit_argument_and_env_override(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    assert get_device(" CPU ") == torch.device("cpu")
    assert get_device(torch.device("cpu")) == torch.device("cpu")


def test_unknown_name_says_what_is_expected():
    with pytest.raises(ValueError, match="Unknown device 'tpu'.*'cpu', 'cuda'"):
        get_device("tpu")


def test_malformed_cuda_index():
    with pytest.raises(ValueError, match="Malformed device"):
        get_device("cuda:x")


def test_wrong_type():
    with pytest.raises(TypeError, match="str, torch.device or None"):
        get_device(3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda(monkeypatch):
    with pytest.raises(RuntimeError, match="CUDA is not available.*Use 'cpu'"):
        get_device("cuda")
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        get_device()


def test_cuda_index_out_of_range(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RuntimeError, match="only 1 CUDA device"):
        get_device("cuda:3")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_requested_without_mps():
    with pytest.raises(RuntimeError, match="MPS is not available"):
        get_device("mps")


def test_describe_cpu():
    text = describe_device("cpu")
    assert text.startswith("cpu (") and torch.__version__ in text


def test_model_device_and_synchronize_on_the_cpu():
    assert model_device(torch.nn.Linear(2, 3)) == torch.device("cpu")
    assert model_device(torch.nn.Sequential()) == torch.device("cpu")  # no parameters: the CPU
    assert synchronize("cpu") is None  # nothing queued on the CPU: returns at once
