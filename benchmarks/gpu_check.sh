#!/usr/bin/env bash
# The CUDA checks, as one short script for a lent GPU machine (see README "Measured").
# Usage on the device: bash benchmarks/gpu_check.sh   (wheels for optuna / scikit-optimize in .whl/ if absent)
source "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py
for m in grid random skopt_gp optuna_tpe; do
  python3 -m hpobench_stn run --task digits_mlp --method "$m" --preset cpu --budget 15 --seed 0 --out /tmp/gpu_runs --device cuda
done
python3 -m hpobench_stn report /tmp/gpu_runs --csv /tmp/gpu_runs.csv
python3 benchmarks/sync_cost.py
python3 benchmarks/harness_overhead.py --device cuda --budget 60
