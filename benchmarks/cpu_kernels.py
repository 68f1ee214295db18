"""Why one CPU run of a recipe does not reproduce on another CPU: the instruction set the kernels use.

torch picks its own CPU kernels (ATen) and oneDNN's convolutions by the instruction set of the machine it runs
on (AVX-512 on one, AVX2 on another). Both can be capped with an environment variable, so one machine can run
the code paths of another. This trains the `digits-small` preset for 2 epochs at 1 thread per seed, once per
setting, each in a fresh process, and prints the val kNN top-1 of each (the untrained floor beside it). The
setting "as installed" runs twice, to show that a repeat on the same code paths is bit-identical.

    .venv/bin/python benchmarks/cpu_kernels.py [--seeds 0 1] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

SETTINGS = [  # (label, environment)
    ("as installed", {}),
    ("as installed, again", {}),
    ("ATen AVX2", {"ATEN_CPU_CAPABILITY": "avx2"}),
    ("oneDNN AVX2", {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
    ("ATen + oneDNN AVX2", {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}),
    ("ATen no SIMD", {"ATEN_CPU_CAPABILITY": "default"}),
]

ONE_RUN = """
import json, sys, tempfile, torch
torch.set_num_threads(1)
from lightrecipe.trainers.recipe import preset
from lightrecipe.trainers.run.train import train
from lightrecipe.search.floor import random_init_scores
recipe = preset("digits-small", epochs=int(sys.argv[1]), seed=int(sys.argv[2]))
with tempfile.TemporaryDirectory() as workdir:
    metrics = train(recipe, workdir=workdir, device="cpu")
    floor = random_init_scores(recipe)
print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "val": metrics["knn_top1"],
                  "floor": floor["knn_top1"]}))
"""


def run(code: str, args: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code, *args], env={**os.environ, **env},
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    print(f"digits-small, {args.epochs} epochs, 1 thread, val kNN top-1 in % per seed, trained and untrained (floor)")
    print(f"{'setting':<22}{'kernels':>9}" + "".join(f"{f'seed {s}':>9}{'floor':>7}" for s in args.seeds))
    for label, env in SETTINGS:
        rows = [run(ONE_RUN, [str(args.epochs), str(seed)], env) for seed in args.seeds]
        print(f"{label:<22}{rows[0]['capability']:>9}"
              + "".join(f"{100 * r['val']:>9.1f}{100 * r['floor']:>7.1f}" for r in rows), flush=True)


if __name__ == "__main__":
    main()
