"""Accuracy against latency for the README's hold-up study ("Does the search find recipes that hold up?").

The accuracies are that section's confirmed numbers (val kNN, mean over seeds 1-3 at 18 epochs); the study's
trial database is not kept in the repository, so they are copied here from its printed tables. The latencies
are `lightrecipe bench latency` lines measured on this machine, read from a JSON-lines file. Draws the report's
own latency figure (reports/figures/latency.py) and prints the README's table.

    for a in mobilenetv3_small_050 resnet10t; do for t in 1 2; do
      lightrecipe bench latency --arch $a --image-size 32 --threads $t; done; done > latency.jsonl
    python benchmarks/holdup_latency.py latency.jsonl docs/holdup-latency.png
"""

from __future__ import annotations

import json
import sys

import pandas as pd

from lightrecipe.reports.figures.latency import latency_title, pareto, plot_latency
from lightrecipe.reports.selections import latency_caption

# README, "Does the search find recipes that hold up?": val kNN (%) of the confirmed winner, the ResNet-50
# settings and the untrained floor, and the backbone parameters (timm, num_classes=0).
HOLDUP = {
    "mobilenetv3_small_050": dict(best=86.4, basis="confirmed #15, 3 seeds", baseline=54.5, floor=86.7,
                                  params_m=0.57),
    "resnet10t": dict(best=99.5, basis="confirmed #8, 3 seeds", baseline=96.3, floor=93.8, params_m=4.9),
}


def main(jsonl: str, png: str) -> None:
    rows = [json.loads(line) for line in open(jsonl) if line.strip()]
    one = {r["arch"]: r for r in rows if r["device"] == "cpu" and r["threads"] == 1}
    frame = pd.DataFrame([dict(arch=a, latency_ms=one[a]["batch1_ms_median"], latency_p90_ms=one[a]["batch1_ms_p90"],
                               **v) for a, v in HOLDUP.items()])
    frame["pareto"] = pareto(frame["latency_ms"], frame["best"])
    frame.attrs.update(order=list(HOLDUP), metric="knn_top1", title=latency_title(frame),
                       caption=latency_caption(pd.Series(one[next(iter(HOLDUP))])))
    plot_latency(frame).savefig(png, dpi=110)
    print("| arch | params (M) | threads | batch-1 latency, median / p90 (ms) | images/s at batch 32 | format |")
    print("|---|---:|---:|---:|---:|---|")
    for r in sorted(rows, key=lambda r: (r["arch"], r["threads"] or 0)):
        print(f"| {r['arch']} | {HOLDUP[r['arch']]['params_m']:.2f} | {r['threads']} | {r['batch1_ms_median']:.1f} / "
              f"{r['batch1_ms_p90']:.1f} | {r['serving_images_per_s']:.0f} | {r['memory_format']} |")
    print(frame.attrs["title"])
    print(frame.attrs["caption"])


if __name__ == "__main__":
    main(*sys.argv[1:3])
