# Sourced by the gpu_check scripts: the environment on a lent GPU machine, whose image has torch but
# may lack optuna / scikit-optimize (carried as wheels in .whl/), and the project installed editable.
set -uo pipefail
export PYTHONUNBUFFERED=1
export HPOBENCH_STN_CACHE=/tmp/hpobench_cache
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . || exit 1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
