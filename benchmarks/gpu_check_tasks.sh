#!/usr/bin/env bash
# CUDA checks of the paper's tasks, as one short script for a lent GPU machine.
# Needs the data in $HPOBENCH_STN_DATA (ptb/ and cifar10/cifar10_jpeg_q75.npz) and, if absent there,
# wheels for optuna / scikit-optimize in .whl/. Usage on the device: bash benchmarks/gpu_check_tasks.sh
source "$(dirname "$0")/gpu_env.sh"
python3 benchmarks/augment_speed.py --device cuda --n 8192
python3 benchmarks/cifar_throughput.py --device cuda --no-trial
for task in cifar_alexnet ptb_lstm; do
  python3 -m hpobench_stn run --task "$task" --method random --preset smoke --budget 20 --seed 0 --out /tmp/gpu_runs --device cuda
done
# One paper-preset CIFAR trial start: how long an AlexNet epoch takes at the published settings.
timeout 120 python3 -m hpobench_stn run --task cifar_alexnet --method random --preset paper --budget 60 --seed 0 --out /tmp/gpu_runs --device cuda
python3 -m hpobench_stn report /tmp/gpu_runs
# STN on the GPU: smoke runs of the three tasks, step ratios at the cpu and paper sizes, hyper-LSTM speed.
for task in digits_mlp cifar_alexnet ptb_lstm; do
  python3 -m hpobench_stn run --task "$task" --method stn --preset smoke --budget 20 --seed 0 --out /tmp/gpu_runs --device cuda
done
python3 benchmarks/stn_step_ratio.py --device cuda --reps 10
python3 benchmarks/hyper_lstm_speed.py --device cuda --reps 10
