import math

import pytest

from lightrecipe.trainers.method import schedules as s


@pytest.mark.parametrize(
    "step,total,start,end,expected",
    [(0, 100, 1.0, 0.0, 1.0), (50, 100, 1.0, 0.0, 0.5), (100, 100, 1.0, 0.0, 0.0), (25, 100, 2.0, 0.0, 1.0 + math.sqrt(0.5)),
     (150, 100, 1.0, 0.0, 0.0), (0, 0, 1.0, 0.3, 0.3)],
)
def test_cosine_table(step, total, start, end, expected):
    assert s.cosine(step, total, start, end) == pytest.approx(expected)


@pytest.mark.parametrize(
    "step,expected",
    [(0, 0.0), (1, 0.01), (4, 0.04), (9, 0.09), (10, 0.1), (60, 0.05), (110, 0.0)],
)
def test_warmup_cosine_lr_table(step, expected):
    """moco-v3 main_moco.py adjust_learning_rate: lr * progress / warmup, then a half cosine over the rest."""
    assert s.warmup_cosine_lr(step, 110, peak=0.1, warmup=10) == pytest.approx(expected)


@pytest.mark.parametrize(
    "warmup,step,expected",
    [
        # 0.01 epochs x 16 steps per epoch = 0.16 steps: step 0 warms (lr 0), step 1 is already in the cosine
        (0.16, 0, 0.0),
        (0.16, 1, 0.5 * (1 + math.cos(math.pi * 0.84 / 99.84))),
        (0.5, 0, 0.0),
        (0.5, 1, 0.5 * (1 + math.cos(math.pi * 0.5 / 99.5))),
        (2.5, 1, 0.4),
        (2.5, 2, 0.8),
        (2.5, 3, 0.5 * (1 + math.cos(math.pi * 0.5 / 97.5))),
    ],
)
def test_fractional_warmup_table(warmup, step, expected):
    assert s.warmup_cosine_lr(step, 100, peak=1.0, warmup=warmup) == pytest.approx(expected)


@pytest.mark.parametrize("warmup", [0.01, 0.16, 0.5, 0.99, 1.0, 1.5, 3.7, 16.0])
def test_lr_never_exceeds_the_peak(warmup):
    lrs = [s.warmup_cosine_lr(step, 160, peak=0.3, warmup=warmup) for step in range(160)]
    assert all(0.0 <= lr <= 0.3 for lr in lrs), max(lrs)
    assert lrs[0] == 0.0  # the warm-up starts at 0
    first_cosine = math.ceil(warmup)
    assert lrs[first_cosine] == max(lrs)  # rises until the warm-up ends, then only falls


def test_lr_without_warmup_starts_at_peak():
    assert s.warmup_cosine_lr(0, 100, peak=0.03, warmup=0) == pytest.approx(0.03)


@pytest.mark.parametrize(
    "step,schedule,expected",
    [(0, "constant", 0.99), (50, "constant", 0.99), (0, "cosine", 0.99), (50, "cosine", 0.995), (100, "cosine", 1.0)],
)
def test_key_momentum_table(step, schedule, expected):
    assert s.key_momentum(step, 100, 0.99, schedule) == pytest.approx(expected)


@pytest.mark.parametrize(
    "step,schedule,expected",
    [(0, "constant", 0.2), (99, "constant", 0.2), (0, "warmup", 0.0), (9, "warmup", 0.0), (10, "warmup", 0.2),
     (0, "cosine", 0.0), (50, "cosine", 0.1), (100, "cosine", 0.2)],
)
def test_smoothing_alpha_table(step, schedule, expected):
    assert s.smoothing_alpha(step, 100, 0.2, schedule, warmup=10) == pytest.approx(expected)


def test_a_schedule_read_per_epoch_holds_its_value_through_the_epoch():
    assert [s.schedule_step(step, 10, "epoch") for step in (0, 9, 10, 19, 25)] == [0, 0, 10, 10, 20]
    assert [s.schedule_step(step, 10, "step") for step in (0, 9, 25)] == [0, 9, 25]
    alphas = [s.smoothing_alpha(s.schedule_step(step, 10, "epoch"), 100, 0.2, "cosine") for step in range(20)]
    assert len(set(alphas[:10])) == 1 and len(set(alphas[10:])) == 1 and alphas[10] > alphas[0]


def test_unknown_schedule_is_rejected():
    with pytest.raises(ValueError, match="valid"):
        s.key_momentum(0, 10, 0.9, "linear")
