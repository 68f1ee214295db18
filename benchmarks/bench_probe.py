"""The linear probe's cost: one L-BFGS fit with the weight kept as (classes, features), as the probe now keeps
it, against the same fit with (features, classes), the layout it had before, measured in the same run; then
the whole `linear_probe` (its L2 chosen on a held-out fifth of the training features, then a refit).

Features are an untrained mobilenetv3_small_050's on the bundled digits (1024 dimensions; the train split of
the digits folder), so the fit sees the conditioning a trial's probe sees. One torch thread, as a sweep trial.
    .venv/bin/python benchmarks/bench_probe.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lightrecipe.trainers.run import evaluate


def digits_features() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train features, labels, test features, labels) of an untrained MobileNet on the digits, 32 px."""
    import timm
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    images = F.interpolate(images, size=32, mode="bilinear").expand(-1, 3, -1, -1)
    torch.manual_seed(0)
    model = timm.create_model("mobilenetv3_small_050", pretrained=False, num_classes=0).eval()
    with torch.no_grad():
        feats = torch.cat([model(chunk) for chunk in images.split(256)])
    labels = torch.as_tensor(digits.target)
    return feats[:1438], labels[:1438], feats[1438:], labels[1438:]


def fit_seconds(y, weight, logits) -> float:
    """One L-BFGS fit of the probe's settings (L2 1e-3, from zero), the logits computed by `logits(weight)`."""
    bias = torch.zeros(10, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=evaluate.LBFGS_MAX_ITER,
                                  history_size=evaluate.LBFGS_HISTORY, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(logits(weight) + bias, y) + 0.5 * 1e-3 * weight.pow(2).sum()
        loss.backward()
        return loss

    start = time.perf_counter()
    optimizer.step(closure)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    x, y, tx, ty = digits_features()
    z = (x - x.mean(0)) / x.std(0).clamp_min(1e-6)  # standardised, as the probe fits them
    layouts = [("(features, classes), x @ W: before", lambda: torch.zeros(x.shape[1], 10, requires_grad=True),
                lambda w: z @ w),
               ("(classes, features), F.linear: now", lambda: torch.zeros(10, x.shape[1], requires_grad=True),
                lambda w: F.linear(z, w))]
    rows = []
    for name, weight, logits in layouts:
        rows.append((name, statistics.median(fit_seconds(y, weight(), logits) for _ in range(args.runs))))
    base = rows[0][1]
    print(f"one L-BFGS probe fit on {len(x)} x {x.shape[1]} features, 1 thread, median of {args.runs} runs")
    print(f"{'weight layout':38} {'seconds':>8} {'speed-up':>9}")
    for name, median in rows:
        print(f"{name:38} {median:8.2f} {base / median:8.1f}x")
    seconds = []
    for _ in range(args.runs):
        start = time.perf_counter()
        top1 = evaluate.linear_probe(x, y, {"test": (tx, ty)}, num_classes=10)["test"]
        seconds.append(time.perf_counter() - start)
    print(f"linear_probe (3 grid fits and the refit): {statistics.median(seconds):.2f} s, test top-1 {top1:.4f}")

if __name__ == "__main__":
    main()
