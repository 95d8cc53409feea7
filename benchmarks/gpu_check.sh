#!/usr/bin/env bash
# The CUDA checks and timings of BENCHMARKS.md's GPU section, in one run, on a machine with an
# NVIDIA GPU whose python3 already has torch, torchvision, OpenCV and scikit-image:
#
#   bash benchmarks/gpu_check.sh OUT [WHEELS]
#
# WHEELS: a folder of wheels of what that python3 lacks (basicsr 1.4.2 built with
# `pip wheel --no-build-isolation basicsr==1.4.2`, mmengine, lmdb, addict, ...), installed first
# for machines without a package registry. The plugin is installed editable (`basicsr` command).
# Functional checks run first, side by side (their times are not reported): the demo recipe on
# the GPU (training with validation, resume, test, derain), the full Rain200H recipe on the demo
# pairs, a one-process torchrun (--launcher pytorch, NCCL) and the test suite. Then, alone on the
# GPU, the timings: channels-last per family (bench_numerics.py) and the training step and
# 481x321 forward of MH2F-Net, PReNet and RESCAN (bench_speed.py). Every log is in OUT.
set -uo pipefail
mkdir -p "${1:?usage: gpu_check.sh OUT [WHEELS]}" && out=$(cd "$1" && pwd)
wheels=${2:+$(cd "$2" && pwd)}
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
if [ -n "$wheels" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile "$wheels"/*.whl || exit 1
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >"$out/install.log" 2>&1 || exit 1
bin=$(dirname "$(python3 -c 'import sys; print(sys.executable)')")
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
python3 -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)' \
    | tee -a "$out/gpu.txt"

check() {  # check SECONDS NAME COMMAND...: runs COMMAND, logs to OUT/NAME.log, prints the outcome
    local seconds=$1 name=$2
    shift 2
    if timeout "$seconds" "$@" >"$out/$name.log" 2>&1; then echo "ok      $name"; else echo "FAILED  $name (exit $?)"; fi
}

speed=(bench_speed.py --device cuda --networks MH2FNet PReNet RESCAN --warmup 5 --repeats 20)
compiled=(--variants bf16_channels_last_compile)
demo=(-opt options/train_mh2f_demo.yml --force_yml num_gpu=1 name=gpu_demo logger:print_freq=100
      logger:save_checkpoint_freq=200 val:val_freq=200)
full=(-opt options/train_mh2f_rain200h.yml --force_yml name=gpu_full datasets:train:dataroot=datasets/demo/train
      datasets:val:dataroot=datasets/demo/val train:total_iter=100 val:val_freq=100 logger:print_freq=50
      logger:save_checkpoint_freq=100 logger:use_tb_logger=false)
weights=experiments/gpu_demo/models/net_g_latest.pth
{
    check 70 demo_train "$bin/basicsr" train "${demo[@]}" train:total_iter=400 &&
        check 50 demo_resume "$bin/basicsr" train "${demo[@]}" train:total_iter=600 --auto_resume &&
        check 25 demo_test "$bin/basicsr" test -opt options/test_mh2f_demo.yml --force_yml num_gpu=1 \
            name=gpu_demo_test path:pretrain_network_g=$weights &&
        check 25 derain "$bin/basicsr" derain datasets/demo/val/input "$out/derained" --device cuda \
            --weights $weights -opt options/train_mh2f_demo.yml
} &
check 170 full_recipe "$bin/basicsr" train "${full[@]}" &
check 120 torchrun "$bin/torchrun" --nproc_per_node=1 "$bin/basicsr" train -opt options/train_mh2f_demo.yml \
    --launcher pytorch --force_yml num_gpu=1 name=gpu_ddp train:total_iter=100 val:val_freq=100 &
check 170 tests python3 -m pytest -q -p no:cacheprovider -n 6 tests &
# compiles once (untimed, beside the checks) so that the timed compiled runs load inductor's caches
for net in MH2FNet PReNet RESCAN; do
    (cd benchmarks && check 170 "compile_$net" python3 "${speed[@]}" --networks $net "${compiled[@]}" --repeats 1) &
done
wait
grep -h "numerics:\|Validation\|# psnr\|Resuming\|\[ok\]" "$out"/demo_*.log "$out"/full_recipe.log \
    "$out"/torchrun.log | cut -c1-200 | head -30
tail -3 "$out/tests.log"
ls "$out/derained" | head -3

cd benchmarks
timeout 90 python3 bench_numerics.py --device cuda --repeats 5 2>&1 | tee "$out/numerics.log" | grep "|"
timeout 200 python3 "${speed[@]}" --variants fp32 bf16_channels_last bf16_channels_last_compile \
    --json "$out/speed.json" 2>&1 | tee "$out/speed.log" | grep -v Warning
