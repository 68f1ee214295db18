"""InfoNCE and the smoothed InfoNCE of Lin et al. (arXiv 2212.07158), as pure functions of tensors.

For N queries q and their positive keys k (both (N, D), L2-normalised) and K negatives (K, D):

    l_pos[n]    = q[n] . k[n]
    l_neg[n, j] = q[n] . neg[j]
    z[n]        = [l_pos[n], l_neg[n, :]] / T          (N, 1 + K), index 0 is the positive
    loss        = mean_n -sum_c p[n, c] * log_softmax(z[n])[c]

Plain InfoNCE: p is one-hot on index 0. Smoothed ("topk"): p[n, 0] = 1 - alpha and the k_nn negatives most
similar to q[n] share alpha equally; "uniform" spreads alpha over all K negatives (label-smoothing control);
"graded": the negatives ranked by similarity to q[n] get alpha times their rank's share, from groups of ranks
with weights (trainers/fields/smoothing_groups.py: "2:1 6:1 12:1" gives each group alpha/3).
The target is a constant: neighbours are chosen without gradient, afresh at every call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lightrecipe.trainers.fields.smoothing_groups import Groups, rank_shares

SMOOTHING_MODES = ("topk", "uniform", "graded")


# Logit given to excluded negatives: finite, so a zero target times its log-probability stays 0 (not NaN).
EXCLUDED_LOGIT = -1e9


def contrastive_logits(
    q: torch.Tensor,
    k: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """(N, 1 + K) logits in at least float32, positive first. q, k: (N, D); negatives: (K, D).

    `exclude` (N, K) bool marks negatives to leave out of row n, e.g. the query's own positive when the
    negatives are the other keys of the batch (MoCo v3's in-batch negatives).

    The similarities are computed from float32 (or float64) copies of q, k and the negatives with autocast
    off: under bf16/fp16 autocast a low-precision matmul would blur the logits and the top-k neighbour choice.
    """
    dtype = torch.promote_types(q.dtype, torch.float32)
    with torch.autocast(q.device.type, enabled=False):
        q, k, negatives = q.to(dtype), k.to(dtype), negatives.to(dtype)
        l_pos = (q * k).sum(dim=1, keepdim=True)
        l_neg = q @ negatives.t()
        if exclude is not None:
            l_neg = l_neg.masked_fill(exclude, EXCLUDED_LOGIT * temperature)
        return torch.cat([l_pos, l_neg], dim=1) / temperature


def info_nce(
    q: torch.Tensor,
    k: torch.Tensor,
    negatives: torch.Tensor,
    *,
    temperature: float,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean InfoNCE loss (scalar). q, k: (N, D) L2-normalised; negatives: (K, D) L2-normalised."""
    logits = contrastive_logits(q, k, negatives, temperature, exclude)
    # Cross-entropy with target 0 is -log_softmax(z)[0].
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


def smoothing_target(
    logits: torch.Tensor, *, alpha: float, k_nn: int, mode: str = "topk", exclude: torch.Tensor | None = None,
    groups: Groups = (),
) -> torch.Tensor:
    """The (N, 1 + K) target distribution p for given logits (no gradient); excluded negatives get 0. `groups`
    (graded only): (size, share of alpha) per group of neighbour ranks, shares summing to 1."""
    if mode not in SMOOTHING_MODES:
        raise ValueError(f"smoothing mode {mode!r}; valid: {', '.join(SMOOTHING_MODES)}")
    n, width = logits.shape
    valid = torch.ones(n, width - 1, dtype=torch.bool, device=logits.device) if exclude is None else ~exclude
    num_neg = int(valid.sum(dim=1).min())
    target = torch.zeros(n, width, dtype=logits.dtype, device=logits.device)
    target[:, 0] = 1.0 - alpha
    if alpha == 0 or num_neg == 0:
        target[:, 0] = 1.0
        return target
    if mode == "uniform":
        target[:, 1:] = valid.float() * (alpha / valid.sum(dim=1, keepdim=True).clamp(min=1))
        return target
    if mode == "graded":
        return _graded(target, logits, alpha, groups, num_neg)
    if k_nn < 1:
        raise ValueError("top-k smoothing with alpha > 0 needs k_nn >= 1")
    k_eff = min(k_nn, num_neg)
    with torch.no_grad():
        # Ranking by l_neg / T is the same as ranking by similarity (T > 0).
        neighbours = logits[:, 1:].topk(k_eff, dim=1).indices + 1
    target.scatter_(1, neighbours, alpha / k_eff)
    return target


def _graded(target: torch.Tensor, logits: torch.Tensor, alpha: float, groups: Groups, num_neg: int) -> torch.Tensor:
    shares = rank_shares(groups, num_neg)
    if not shares:
        raise ValueError("graded smoothing with alpha > 0 needs at least one group of neighbours")
    with torch.no_grad():
        neighbours = logits[:, 1:].topk(len(shares), dim=1, sorted=True).indices + 1  # rank 1 first
    mass = torch.tensor(shares, dtype=target.dtype, device=target.device) * alpha
    target.scatter_(1, neighbours, mass.expand(len(target), -1))
    return target


def smoothed_info_nce(
    q: torch.Tensor,
    k: torch.Tensor,
    negatives: torch.Tensor,
    *,
    temperature: float,
    alpha: float,
    k_nn: int,
    mode: str = "topk",
    exclude: torch.Tensor | None = None,
    groups: Groups = (),
) -> torch.Tensor:
    """Mean smoothed InfoNCE (scalar); alpha = 0 equals `info_nce`. Shapes as in `info_nce`.

    k_nn larger than K is clamped to K (all negatives share alpha).
    """
    if alpha == 0:
        return info_nce(q, k, negatives, temperature=temperature, exclude=exclude)
    logits = contrastive_logits(q, k, negatives, temperature, exclude)
    target = smoothing_target(logits.detach(), alpha=alpha, k_nn=k_nn, mode=mode, exclude=exclude, groups=groups)
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
