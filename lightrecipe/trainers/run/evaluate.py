"""Evaluation of a frozen backbone: feature extraction, the weighted kNN monitor and the linear probe.

All three are functions of tensors: they run on whatever device their inputs live on and know nothing of
the trainer, the search or who reads the numbers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lightrecipe.trainers.data.pixels import normalize
from lightrecipe.trainers.data.splits import Split, stratified_holdout
from lightrecipe.trainers.method.model import backbone_dim
from lightrecipe.trainers.method.precision import PRECISIONS, autocast

# L2 strengths of the lbfgs probe, on the mean cross-entropy of standardised features (so they do not scale
# with the number of images). Without any, separable features (few images, many dimensions) have no finite
# optimum and L-BFGS only stops at its iteration limit. The probe picks the best of the grid on a part of the
# *training* features held out for that (as SimCLR's linear evaluation picks its L2 on held-out data), then
# refits on all of them, so the val and test figures it reports never chose anything.
LBFGS_L2_GRID = (1e-2, 1e-3, 1e-4)
LBFGS_L2_DEFAULT = 1e-3  # the grid's middle, for a training set too small to hold anything out
PROBE_SELECT_SHARE = 0.2  # share of the training features held out (stratified, fixed) to choose the L2 strength
PROBE_SELECT_MIN = 2  # images per class needed before any are held out
LBFGS_MAX_ITER = 500  # full-batch iterations per fit; a warm-started fit converges well before this
LBFGS_HISTORY = 20  # curvature pairs kept (torch's default 100 costs memory for no gain at this size)
SGD_BATCH = 256  # MoCo v2 linear probe batch size
SGD_MOMENTUM = 0.9  # MoCo v2 linear probe
SGD_INIT_STD = 0.01  # MoCo's main_lincls: fc.weight ~ N(0, 0.01), bias 0


def extract_features(backbone: torch.nn.Module, split: Split, *, device, batch_size: int = 256,
                     precision: str = "fp32", channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, D) float32 and labels (N,) int64 of every readable image of `split`, both on `device`.

    No augmentation; `normalize` is applied. The backbone runs in eval mode and every submodule gets its
    previous train/eval mode back afterwards. bf16/fp16 run under `torch.autocast(device.type)`.
    """
    feats, labels, readable = extract_all_features(backbone, split, device=device, batch_size=batch_size,
                                                   precision=precision, channels_last=channels_last)
    return (feats, labels) if bool(readable.all()) else (feats[readable], labels[readable])


@torch.no_grad()
def extract_all_features(backbone: torch.nn.Module, split: Split, *, device, batch_size: int = 256,
                         precision: str = "fp32", channels_last: bool = False
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """As `extract_features`, with a row for every image in order, unreadable ones included, and the (N,) bool
    mask of the readable rows: rows that other processes' rows interleave with must keep their places."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be fp32, bf16 or fp16, got {precision!r}")
    device = torch.device(device)
    modes = [(m, m.training) for m in backbone.modules()]
    backbone.eval()
    feats, labels, readable = [], [], []
    try:
        for images, y, ok in split.evaluation_batches(batch_size, device=device):
            x = normalize(images)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device.type, precision):
                out = backbone(x)
            feats.append(out.float().flatten(1))
            labels.append(y)
            readable.append(ok)
    finally:
        for module, training in modes:
            module.training = training
    if not feats:
        return (torch.zeros(0, backbone_dim(backbone), device=device), torch.zeros(0, dtype=torch.int64, device=device),
                torch.zeros(0, dtype=torch.bool, device=device))
    return torch.cat(feats), torch.cat(labels), torch.cat(readable)


@torch.no_grad()
def knn_top1(memory_feats: torch.Tensor, memory_labels: torch.Tensor, query_feats: torch.Tensor,
             query_labels: torch.Tensor, *, k: int, temperature: float, num_classes: int,
             chunk_size: int = 1024) -> float:
    """Weighted kNN top-1 accuracy in [0, 1] (InstDisc; MoCo's CIFAR demo).

    memory (M, D) with labels (M,), queries (Q, D) with labels (Q,). Both are L2-normalised; each query's
    k most cosine-similar memory items vote for their class with weight exp(sim / temperature); the class
    with the largest sum wins (ties: the lowest class index). k is clamped to M. Queries go in chunks of
    `chunk_size`, so the similarity matrix held at once is chunk_size x M.
    """
    if len(memory_feats) == 0 or len(query_feats) == 0:
        raise ValueError("knn_top1 needs at least one memory item and one query")
    memory = F.normalize(memory_feats.float(), dim=1)
    queries = F.normalize(query_feats.float(), dim=1).to(memory.device)
    memory_labels = memory_labels.to(memory.device, torch.int64)
    query_labels = query_labels.to(memory.device, torch.int64)
    k = min(k, len(memory))
    correct = torch.zeros((), dtype=torch.int64, device=memory.device)
    for start in range(0, len(queries), chunk_size):
        sim, idx = (queries[start:start + chunk_size] @ memory.T).topk(k, dim=1)  # (c, k), sorted
        # exp((sim - max) / t): the same ranking as exp(sim / t) (one positive factor per query), no overflow
        weights = ((sim - sim[:, :1]) / temperature).exp()
        scores = torch.zeros(len(sim), num_classes, device=memory.device).scatter_add_(1, memory_labels[idx], weights)
        correct += (scores.argmax(dim=1) == query_labels[start:start + chunk_size]).sum()
    return correct.item() / len(queries)


def linear_probe(train_feats: torch.Tensor, train_labels: torch.Tensor,
                 eval_sets: dict[str, tuple[torch.Tensor, torch.Tensor]], *, num_classes: int,
                 method: str = "lbfgs", epochs: int = 100, lr: float = 30.0, weight_decay: float = 0.0,
                 seed: int = 0) -> dict[str, float]:
    """A linear classifier on frozen features; top-1 accuracy in [0, 1] per eval set name.

    lbfgs: full-batch multinomial logistic regression on features standardised with the train mean/std,
    deterministic. Its L2 strength is `weight_decay` when positive; otherwise the best of `LBFGS_L2_GRID` on a
    stratified `PROBE_SELECT_SHARE` of the training features held out for that, after which it refits on all
    of them. No eval set influences the fit. `epochs`, `lr` and `seed` are unused.
    sgd: the MoCo v2 protocol on the raw features: SGD momentum 0.9 from `lr` on a per-epoch cosine,
    `epochs` epochs of batch 256 in an order drawn from `seed`, `weight_decay`. A diverged fit scores NaN.
    """
    device = train_feats.device
    x = train_feats.float()
    y = train_labels.to(device, torch.int64)
    evals = {name: (f.to(device).float(), lab.to(device, torch.int64)) for name, (f, lab) in eval_sets.items()}
    if method == "lbfgs":
        return _lbfgs_probe(x, y, evals, num_classes, weight_decay)
    if method == "sgd":
        weight, bias = _sgd_fit(x, y, num_classes, epochs, lr, weight_decay, seed)
        return {name: _top1(f, lab, weight, bias) for name, (f, lab) in evals.items()}
    raise ValueError(f"linear_probe method must be 'lbfgs' or 'sgd', got {method!r}")


def _lbfgs_probe(x, y, evals, num_classes, weight_decay):
    mean, std = x.mean(0), x.std(0, unbiased=False)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))  # a constant feature carries no information
    x = (x - mean) / std
    evals = {name: ((f - mean) / std, lab) for name, (f, lab) in evals.items()}
    # (classes, features), as nn.Linear keeps it: the gradient is then grad_logits^T @ x, a matmul over x's rows,
    # about 4x faster on a CPU than x^T @ grad_logits (which reads x by columns) for every L-BFGS evaluation.
    weight = torch.zeros(num_classes, x.shape[1], device=x.device, requires_grad=True)
    bias = torch.zeros(num_classes, device=x.device, requires_grad=True)
    l2 = weight_decay if weight_decay > 0 else _choose_l2(x, y, weight, bias)
    _lbfgs_fit(x, y, weight, bias, l2)  # on every training feature, from the chosen fit when there was a choice
    w, b = weight.detach(), bias.detach()
    return {name: _top1(f, lab, w, b) for name, (f, lab) in evals.items()}


def _choose_l2(x, y, weight, bias) -> float:
    """The grid's L2 that scores best on a held-out part of the training features (ties: the stronger).

    Leaves `weight` and `bias` at the chosen fit, a warm start for the refit on all features.
    """
    counts = torch.bincount(y)
    if int(counts[counts > 0].min()) < PROBE_SELECT_MIN:
        return LBFGS_L2_DEFAULT
    labels = y.cpu().numpy()
    held = torch.as_tensor(stratified_holdout(labels, round(PROBE_SELECT_SHARE * len(labels))), device=x.device)
    fit = torch.ones(len(labels), dtype=torch.bool, device=x.device)
    fit[held] = False
    best = None
    for l2 in LBFGS_L2_GRID:  # strongest first: each fit starts from the previous solution
        _lbfgs_fit(x[fit], y[fit], weight, bias, l2)
        score = _top1(x[held], y[held], weight.detach(), bias.detach())
        if best is None or score > best[0]:
            best = (score, l2, weight.detach().clone(), bias.detach().clone())
    _, l2, w, b = best
    with torch.no_grad():
        weight.copy_(w)
        bias.copy_(b)
    return l2


def _lbfgs_fit(x, y, weight, bias, l2):
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=LBFGS_MAX_ITER, history_size=LBFGS_HISTORY,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(F.linear(x, weight, bias), y) + 0.5 * l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)


def _sgd_fit(x, y, num_classes, epochs, lr, weight_decay, seed):
    generator = torch.Generator().manual_seed(seed)
    weight = (torch.randn(num_classes, x.shape[1], generator=generator) * SGD_INIT_STD).to(x.device)
    weight.requires_grad_(True)
    bias = torch.zeros(num_classes, device=x.device, requires_grad=True)
    optimizer = torch.optim.SGD([weight, bias], lr=lr, momentum=SGD_MOMENTUM, weight_decay=weight_decay)
    with torch.enable_grad():
        for epoch in range(epochs):
            for group in optimizer.param_groups:  # MoCo main_lincls --cos: set once per epoch
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
            order = torch.randperm(len(x), generator=generator).to(x.device)
            for start in range(0, len(x), SGD_BATCH):
                idx = order[start:start + SGD_BATCH]
                loss = F.cross_entropy(F.linear(x[idx], weight, bias), y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    return weight.detach(), bias.detach()


@torch.no_grad()
def _top1(feats, labels, weight, bias) -> float:
    if len(feats) == 0:
        return float("nan")
    if not (torch.isfinite(weight).all() and torch.isfinite(bias).all()):
        return float("nan")
    return F.linear(feats, weight, bias).argmax(dim=1).eq(labels).float().mean().item()
