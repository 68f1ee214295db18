"""Losses against a literal NumPy transcription of docs/science.md's formula, analytic values and properties."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lightrecipe.trainers.fields.smoothing_groups import parse_groups
from lightrecipe.trainers.method.losses import info_nce, smoothed_info_nce, smoothing_target


def reference_loss(q, k, neg, T, alpha=0.0, k_nn=0, mode="topk", groups=()):
    """docs/science.md, line by line, with explicit loops; `groups`: graded's [(s_g, w_g), ...] as written."""
    q, k, neg = (np.asarray(a, dtype=np.float64) for a in (q, k, neg))
    total = 0.0
    for n in range(len(q)):
        l_pos = q[n] @ k[n]
        l_neg = np.array([q[n] @ neg[j] for j in range(len(neg))])
        z = np.concatenate([[l_pos], l_neg]) / T
        log_softmax = z - np.log(np.sum(np.exp(z - z.max()))) - z.max()
        p = np.zeros(len(z))
        p[0] = 1.0 - alpha
        if alpha > 0 and mode == "topk":
            for j in np.argsort(-l_neg, kind="stable")[:k_nn]:
                p[1 + j] = alpha / k_nn
        elif alpha > 0 and mode == "uniform":
            p[1:] = alpha / len(neg)
        elif alpha > 0 and mode == "graded":
            W = sum(w for _, w in groups)
            ranked = np.argsort(-l_neg, kind="stable")
            for r in range(1, len(neg) + 1):
                for g in range(len(groups)):
                    if sum(s for s, _ in groups[:g]) < r <= sum(s for s, _ in groups[:g + 1]):
                        s_g, w_g = groups[g]
                        p[1 + ranked[r - 1]] = alpha * w_g / (W * s_g)
        else:
            p[0] = 1.0
        total += -np.sum(p * log_softmax)
    return total / len(q)


def unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


@pytest.mark.parametrize("T", [0.07, 0.2, 1.0])
def test_info_nce_matches_reference(T):
    q, k, neg = unit(8, 16, seed=1), unit(8, 16, seed=2), unit(32, 16, seed=3)
    got = info_nce(q, k, neg, temperature=T).item()
    assert got == pytest.approx(reference_loss(q, k, neg, T), rel=1e-5)


@pytest.mark.parametrize("alpha,k_nn", [(0.1, 1), (0.05, 5), (0.3, 20), (0.2, 32)])
def test_smoothed_topk_matches_reference(alpha, k_nn):
    q, k, neg = unit(8, 16, seed=4), unit(8, 16, seed=5), unit(32, 16, seed=6)
    got = smoothed_info_nce(q, k, neg, temperature=0.1, alpha=alpha, k_nn=k_nn).item()
    assert got == pytest.approx(reference_loss(q, k, neg, 0.1, alpha, k_nn), rel=1e-5)


# the authors' rules as graded groups: 20 in groups of 2, 6, 12 at alpha/3 each; alpha/2, alpha/4, alpha/4; geometric
@pytest.mark.parametrize("spec", ["2:1 6:1 12:1", "5:2 5:1 5:1", " ".join(f"1:{2 ** (9 - i)}" for i in range(10)),
                                  "3:1/3 4:2/3"])
def test_smoothed_graded_matches_the_formula_of_the_science_page(spec):
    q, k, neg = unit(8, 16, seed=10), unit(8, 16, seed=11), unit(32, 16, seed=12)
    written = [(int(s), float(Fraction(w))) for s, w in (g.split(":") for g in spec.split())]
    got = smoothed_info_nce(q, k, neg, temperature=0.1, alpha=0.2, k_nn=0, mode="graded", groups=parse_groups(spec))
    assert got.item() == pytest.approx(reference_loss(q, k, neg, 0.1, 0.2, mode="graded", groups=written), abs=1e-12)


def test_graded_with_one_group_is_topk_and_every_row_moves_all_of_alpha():
    logits = unit(6, 8, seed=13) @ unit(24, 8, seed=14).t()
    logits = torch.cat([torch.ones(6, 1, dtype=logits.dtype), logits], dim=1)
    topk = smoothing_target(logits, alpha=0.3, k_nn=5, mode="topk")
    graded = smoothing_target(logits, alpha=0.3, k_nn=0, mode="graded", groups=parse_groups("5:1"))
    assert torch.allclose(topk, graded, rtol=0, atol=1e-15)
    short = smoothing_target(logits[:, :4], alpha=0.3, k_nn=0, mode="graded", groups=parse_groups("2:1 6:1 12:1"))
    assert torch.allclose(short.sum(dim=1), torch.ones(6, dtype=short.dtype)) and (short[:, 1:] > 0).all()
    assert torch.allclose(short[:, 1:].sort(dim=1, descending=True).values[0],  # 3 negatives: ranks 1-2 weigh 1/6, rank 3 1/18, renormalised
                          torch.tensor([0.3 * 3 / 7, 0.3 * 3 / 7, 0.3 / 7], dtype=short.dtype))


def test_smoothed_uniform_matches_reference():
    q, k, neg = unit(6, 8, seed=7), unit(6, 8, seed=8), unit(12, 8, seed=9)
    got = smoothed_info_nce(q, k, neg, temperature=0.2, alpha=0.1, k_nn=0, mode="uniform").item()
    assert got == pytest.approx(reference_loss(q, k, neg, 0.2, 0.1, 0, "uniform"), rel=1e-5)


@pytest.mark.parametrize("mode", ["topk", "uniform"])
def test_alpha_zero_is_plain_info_nce_of_the_reference(mode):
    q, k, neg = unit(8, 16, seed=10), unit(8, 16, seed=11), unit(32, 16, seed=12)
    got = smoothed_info_nce(q, k, neg, temperature=0.2, alpha=0.0, k_nn=5, mode=mode).item()
    assert got == pytest.approx(reference_loss(q, k, neg, 0.2), rel=1e-9)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_logits_and_neighbours_are_float32_under_autocast(dtype):
    """Under bf16/fp16 autocast the loss still equals the float64 reference to float32 accuracy: logits and the
    top-k choice come from float32 copies (a bf16 matmul is off by ~1e-2 and can swap close neighbours)."""
    q, k, neg = (x.float() for x in (unit(16, 64, seed=21), unit(16, 64, seed=22), unit(256, 64, seed=23)))
    expected = reference_loss(q, k, neg, 0.07, 0.2, 5)
    with torch.autocast("cpu", dtype=dtype):
        got = smoothed_info_nce(q.to(dtype), k.to(dtype), neg, temperature=0.07, alpha=0.2, k_nn=5)
        plain = info_nce(q, k, neg, temperature=0.07)
    assert got.dtype == plain.dtype == torch.float32
    low = [x.to(dtype).double() for x in (q, k)]  # the inputs as the caller handed them over
    assert got.item() == pytest.approx(reference_loss(*low, neg, 0.07, 0.2, 5), rel=1e-5)
    assert plain.item() == pytest.approx(reference_loss(q, k, neg, 0.07), rel=1e-5)
    assert abs(got.item() - expected) < 0.05  # rounding q and k to the low dtype is all that differs


def test_analytic_identical_negatives():
    """q = k and every negative orthogonal: z = [1/T, 0, ..., 0], loss = log(1 + K e^{-1/T})."""
    d, K, T = 8, 5, 0.5
    q = torch.zeros(1, d, dtype=torch.float64)
    q[0, 0] = 1
    neg = torch.zeros(K, d, dtype=torch.float64)
    neg[:, 1] = 1
    got = info_nce(q, q.clone(), neg, temperature=T).item()
    assert got == pytest.approx(math.log(1 + K * math.exp(-1 / T)), rel=1e-9)


def test_analytic_smoothed_all_logits_equal():
    """All logits equal: log_softmax = -log(1 + K) everywhere, so the loss is log(1 + K) for any target."""
    q = torch.zeros(2, 4, dtype=torch.float64)
    neg = torch.zeros(7, 4, dtype=torch.float64)
    got = smoothed_info_nce(q, q, neg, temperature=0.1, alpha=0.3, k_nn=3).item()
    assert got == pytest.approx(math.log(8), rel=1e-9)


def test_topk_neighbours_get_the_mass_and_no_gradient_through_choice():
    q = unit(4, 8, seed=13).requires_grad_(True)
    k, neg = unit(4, 8, seed=14), unit(10, 8, seed=15)
    loss = smoothed_info_nce(q, k, neg, temperature=0.1, alpha=0.2, k_nn=3)
    loss.backward()
    assert torch.isfinite(q.grad).all()
    # The loss is a constant-target cross-entropy: its gradient equals the analytic softmax - p form.
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ neg.t()], 1).detach() / 0.1
    p = torch.zeros_like(logits)
    p[:, 0] = 0.8
    p.scatter_(1, logits[:, 1:].topk(3, dim=1).indices + 1, 0.2 / 3)
    grad_logits = (logits.softmax(1) - p) / len(q) / 0.1
    expected = grad_logits[:, :1] * k + grad_logits[:, 1:] @ neg
    torch.testing.assert_close(q.grad, expected)


def test_in_batch_negatives_exclude_own_positive():
    """Other keys as negatives with the diagonal excluded equals per-row InfoNCE over the other keys."""
    q, k = unit(5, 8, seed=16), unit(5, 8, seed=17)
    exclude = torch.eye(5, dtype=torch.bool)
    got = smoothed_info_nce(q, k, k, temperature=0.2, alpha=0.1, k_nn=2, exclude=exclude).item()
    rows = [reference_loss(q[n:n + 1], k[n:n + 1], torch.cat([k[:n], k[n + 1:]]), 0.2, 0.1, 2) for n in range(5)]
    assert got == pytest.approx(float(np.mean(rows)), rel=1e-5)


def test_k_larger_than_queue_is_clamped():
    q, k, neg = unit(3, 8, seed=18), unit(3, 8, seed=19), unit(4, 8, seed=20)
    a = smoothed_info_nce(q, k, neg, temperature=0.2, alpha=0.1, k_nn=100).item()
    b = smoothed_info_nce(q, k, neg, temperature=0.2, alpha=0.1, k_nn=4).item()
    assert a == pytest.approx(b)
    assert a == pytest.approx(reference_loss(q, k, neg, 0.2, 0.1, 4), rel=1e-5)
