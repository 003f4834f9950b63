#!/usr/bin/env bash
# The CUDA checks, as one short script for a lent GPU machine (see README "Measured").
# Usage on the device: bash benchmarks/gpu_check.sh   (wheels for optuna / scikit-optimize in .whl/ if absent)
set -uo pipefail
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py
for m in grid random skopt_gp optuna_tpe; do
  python3 -m hpobench_stn run --task digits_mlp --method "$m" --preset cpu --budget 15 --seed 0 --out /tmp/gpu_runs --device cuda
done
python3 -m hpobench_stn report /tmp/gpu_runs --csv /tmp/gpu_runs.csv
python3 benchmarks/sync_cost.py
python3 benchmarks/harness_overhead.py --device cuda --budget 60
