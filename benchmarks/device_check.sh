#!/usr/bin/env bash
# Everything one lent GPU machine measures, in one go (a lease is minutes): the machine, the MoCo step beside timm's
# supervised step (bench_gpu.py), batch-1 and serving latency on the GPU, GPU JPEG decoding against CPU workers
# (bench_gpu_decode.py), training from JPEGs with either decoder (bench_gpu_train.py) and the CPU loader at 224 px
# (bench_loader.py). Each part has its own time limit, so one that fails or hangs still leaves the others' results.
# Logs go to $OUT (the device tool's folder), else ./device-out.
#
# It runs under whatever python3 the machine has (torch, timm, pillow, numpy, pyyaml, scikit-learn), not this
# project's virtual environment: lightrecipe is put on the path from this checkout, with just enough metadata for
# `lightrecipe.__version__`, and nothing is installed.
#
#     bash benchmarks/device_check.sh              # every part
#     ONLY="gpu_step latency" bash benchmarks/device_check.sh   # just these parts
#     GPU_STEP_ARGS="--archs resnet50 --profile" GPU_STEP_SECONDS=120 ONLY=gpu_step bash benchmarks/device_check.sh
set -u
cd "$(dirname "$0")/.."
out=${OUT:-device-out}
mkdir -p "$out"
site=$(mktemp -d)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
mkdir -p "$site/lightrecipe-$version.dist-info"
printf 'Metadata-Version: 2.1\nName: lightrecipe\nVersion: %s\n' "$version" >"$site/lightrecipe-$version.dist-info/METADATA"
export PYTHONPATH="$PWD:$site" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
py=${PYTHON:-python3}

part() {  # part NAME SECONDS COMMAND...: run one measurement into $out/NAME.txt, whatever became of the last
    local name=$1 seconds=$2
    shift 2
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
    echo "== $name (at most $seconds s)"
    timeout "$seconds" "$@" >"$out/$name.txt" 2>&1
    echo "   exit $? after $SECONDS s in all"
    tail -n 30 "$out/$name.txt"
}

part machine 30 bash -c "nvidia-smi; nproc; grep -m1 'model name' /proc/cpuinfo; $py -c 'import torch, timm, torchvision, PIL; print(\"torch\", torch.__version__, \"torchvision\", torchvision.__version__, \"timm\", timm.__version__, \"pillow\", PIL.__version__)'"
part gpu_step ${GPU_STEP_SECONDS:-240} "$py" benchmarks/bench_gpu.py ${GPU_STEP_ARGS:---variants bn_splits=1 channels_last=false} --json "$out/gpu_step.json"
part latency 60 "$py" -c "
import json
from lightrecipe.trainers.latency import measure
rows = [measure(a, device='cuda') for a in ('mobilenetv3_large_100', 'efficientnet_b0', 'resnet50')]
for r in rows:
    print(json.dumps(r))
"
part gpu_decode 60 "$py" benchmarks/bench_gpu_decode.py --images 512 --batch 128 --repeats 5
part gpu_train ${GPU_TRAIN_SECONDS:-300} "$py" benchmarks/bench_gpu_train.py ${GPU_TRAIN_ARGS:-} --json "$out/gpu_train.json"
part loader 80 "$py" benchmarks/bench_loader.py --sizes 224 --images 600 --limit 384 --repeats 3
echo "done in $SECONDS s"
