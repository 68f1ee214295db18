"""words.py: a count and its noun agree, in every message that prints one."""

from lightrecipe.words import counted, noun


def test_one_is_singular_and_every_other_count_plural():
    assert [counted(n, "trial") for n in (0, 1, 2)] == ["0 trials", "1 trial", "2 trials"]
    assert counted(1, "pass", "passes") == "1 pass" and counted(3, "study", "studies") == "3 studies"
    assert noun(1, "epoch") == "epoch" and noun(24, "epoch") == "epoch" + "s"
