import pytest

from course_utils.mode import by_mode, describe_mode, env_flag, fast_mode


@pytest.mark.parametrize("raw", ["1", "true", "YES", " on ", "y"])
def test_fast_values(monkeypatch, raw):
    monkeypatch.setenv("COURSE_FAST", raw)
    assert fast_mode() is True
    assert by_mode(full=100, fast=2) == 2
    assert describe_mode().startswith("FAST")


@pytest.mark.parametrize("raw", ["", "0", "false", "off"])
def test_full_values(monkeypatch, raw):
    monkeypatch.setenv("COURSE_FAST", raw)
    assert fast_mode() is False
    assert by_mode(full=100, fast=2) == 100
    assert describe_mode().startswith("FULL")


def test_unset_is_full(monkeypatch):
    monkeypatch.delenv("COURSE_FAST", raising=False)
    assert fast_mode() is False


def test_garbage_is_an_error(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "maybe")
    with pytest.raises(ValueError, match="COURSE_FAST='maybe'"):
        fast_mode()


@pytest.mark.parametrize(
    "raw, expected",
    [("1", True), (" YES ", True), ("on", True), ("y", True), ("0", False), ("", False), ("N", False), ("off", False)],
)
def test_env_flag(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env_flag("SOME_FLAG") is expected


def test_env_flag_unset_is_false(monkeypatch):
    monkeypatch.delenv("SOME_FLAG", raising=False)
    assert env_flag("SOME_FLAG") is False


@pytest.mark.parametrize("name", ["COURSE_FAST", "COURSE_CIFAR10_SYNTHETIC", "SOME_FLAG"])
@pytest.mark.parametrize("raw", ["2", "maybe", "yess", "-1"])
def test_one_strict_rule_for_every_flag(monkeypatch, name, raw):
    """Unknown values used to be silently False for every flag but COURSE_FAST."""
    monkeypatch.setenv(name, raw)
    with pytest.raises(ValueError, match=f"{name}='{raw}' is not understood: expected 1/true/yes/y/on"):
        env_flag(name)
