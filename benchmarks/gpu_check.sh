#!/usr/bin/env bash
# The CUDA checks and timings of BENCHMARKS.md's GPU section, on a machine with an NVIDIA GPU
# whose python3 already has torch, torchvision, OpenCV and scikit-image:
#
#   bash benchmarks/gpu_check.sh OUT [WHEELS [PART...]]
#
# WHEELS: a folder of wheels of what that python3 lacks (basicsr 1.4.2 built with
# `pip wheel --no-build-isolation basicsr==1.4.2`, mmengine, lmdb, addict, ...), installed first
# on machines without a package registry; the plugin is built and installed (`basicsr` command).
# PARTS (default: all, in this order), one after another so that no timing shares the machine:
#   checks    the demo recipe on the GPU (train with validation, test, derain), the full
#             Rain200H recipe on the demo pairs (batch 4), a one-process torchrun (NCCL)
#   speed     training step and 481x321 forward of MH2F-Net, PReNet and RESCAN (bench_speed.py)
#   numerics  channels-last and bf16 per network family (bench_numerics.py)
#   compile   MH2F-Net compiled (bench_speed.py), last: it compiles for minutes (COMPILE_SECONDS,
#             default 300, bounds it; COMPILE_PHASES=forward: the forward pass only)
# Logs go to OUT: checks.log, speed.log, speed.json, numerics.log, compile.log, compile.json.
set -uo pipefail
mkdir -p "${1:?usage: gpu_check.sh OUT [WHEELS [PART...]]}" && out=$(cd "$1" && pwd)
wheels=${2:+$(cd "$2" && pwd)}
shift $(($# < 2 ? $# : 2))
parts=${*:-checks speed numerics compile}
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
{
    [ -z "$wheels" ] || python3 -m pip install -q --no-index --no-deps --no-compile "$wheels"/*.whl
    python3 -m pip wheel -q --no-index --no-deps --no-build-isolation . -w /tmp/mh2f_wheel &&
        python3 -m pip install -q --no-index --no-deps --force-reinstall /tmp/mh2f_wheel/*.whl
} >"$out/install.log" 2>&1 || { tail "$out/install.log"; exit 1; }
bin=$(dirname "$(python3 -c 'import sys; print(sys.executable)')")
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'

check() {  # check SECONDS COMMAND...: runs COMMAND, appends its output to OUT/checks.log, prints the outcome
    local seconds=$1
    shift
    echo "=== $*" >>"$out/checks.log"
    if timeout "$seconds" "$@" >>"$out/checks.log" 2>&1; then echo "ok      $(basename "$1") $2"; else echo "FAILED  $* (exit $?)"; fi
}

speed=(benchmarks/bench_speed.py --device cuda --warmup 5 --repeats 20)
demo=(-opt options/train_mh2f_demo.yml --force_yml num_gpu=1 name=gpu_demo logger:print_freq=100)
weights=experiments/gpu_demo/models/net_g_latest.pth
for part in $parts; do
    case $part in
    checks)
        check 120 "$bin/basicsr" train "${demo[@]}" train:total_iter=200 val:val_freq=200
        check 60 "$bin/basicsr" test -opt options/test_mh2f_demo.yml --force_yml num_gpu=1 name=gpu_demo_test \
            path:pretrain_network_g=$weights
        check 60 "$bin/basicsr" derain datasets/demo/val/input /tmp/derained --device cuda --weights $weights \
            -opt options/train_mh2f_demo.yml
        check 120 "$bin/basicsr" train -opt options/train_mh2f_rain200h.yml --force_yml name=gpu_full \
            datasets:train:dataroot=datasets/demo/train datasets:val:dataroot=datasets/demo/val \
            datasets:train:batch_size_per_gpu=4 train:total_iter=50 val:val_freq=50 logger:print_freq=25 \
            logger:save_checkpoint_freq=50 logger:use_tb_logger=false
        check 120 "$bin/torchrun" --nproc_per_node=1 "$bin/basicsr" train --launcher pytorch "${demo[@]}" \
            name=gpu_ddp train:total_iter=50 val:val_freq=50
        grep -h "numerics:\|iter: *[0-9]*00,\|# psnr\|derained\|Error\|error:" "$out/checks.log" | cut -c1-180
        ;;
    speed)
        timeout 200 python3 "${speed[@]}" --networks MH2FNet PReNet RESCAN \
            --variants fp32 channels_last bf16 bf16_channels_last --json "$out/speed.json" >"$out/speed.log" 2>&1
        grep -v Warning "$out/speed.log"
        ;;
    numerics)
        timeout 120 python3 benchmarks/bench_numerics.py --device cuda --repeats 3 >"$out/numerics.log" 2>&1
        grep "|\|amp" "$out/numerics.log"
        ;;
    compile)
        timeout ${COMPILE_SECONDS:-300} python3 "${speed[@]}" --networks MH2FNet --variants compile bf16_channels_last_compile \
            --phases ${COMPILE_PHASES:-train forward} --json "$out/compile.json" >"$out/compile.log" 2>&1
        grep -v Warning "$out/compile.log" | tail -20
        ;;
    esac
done
