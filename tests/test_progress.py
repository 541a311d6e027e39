from course_utils.progress import progress


def test_progress_yields_everything_and_reports_total():
    bar = progress(range(5), desc="steps")
    assert list(bar) == [0, 1, 2, 3, 4]
    assert bar.total == 5


def test_progress_can_be_disabled():
    assert list(progress(iter("abc"), total=3, disable=True)) == ["a", "b", "c"]
