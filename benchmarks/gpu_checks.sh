#!/usr/bin/env bash
# The checks that need a CUDA device, in one go (a few minutes on one GPU); results under $OUT
# (default benchmarks/results/gpu): the GPU tests (bf16 path, CUDA peak memory in the record),
# one digits run per family with trainer=gpu, and the preset models' costs on synthetic data.
set -uo pipefail
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1 BENCH_CACHE=${BENCH_CACHE:-/tmp/bench-cache}
nvidia-smi -L | tee "$OUT/device.txt"
python3 -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'lightning', pl.__version__, 'bf16', torch.cuda.is_bf16_supported())" | tee -a "$OUT/device.txt"

timeout 240 python3 -m pytest -q -rs tests/run/test_accelerator.py 2>&1 | tail -15 | tee "$OUT/gpu_tests.log"

(cd benchmarks && timeout 300 python3 gpu_preset_costs.py --steps 10 --draw 1000 --out "$OUT/gpu_preset_costs.json")

for model in gpt rnn cnn_decoder gan; do
  timeout 90 python3 -m bench.cli.train trainer=gpu model=$model budget=samples budget.value=20000 progress=none \
    logger=none results_dir=/tmp/gpu-runs sweep=gpu 2>&1 | tail -2
done
python3 - "$OUT/gpu_runs.json" <<'PY'
import json, sys
from pathlib import Path
rows = {}
for f in sorted(Path("/tmp/gpu-runs/gpu").glob("*/result.json")):
    r = json.loads(f.read_text())
    t = r.get("timing") or {}
    rows[r["model"]] = {"status": r["status"], "precision": (r.get("environment") or {}).get("precision"),
                        "device": (r.get("environment") or {}).get("device"), "fid": (r.get("metrics") or {}).get("fid"),
                        "bits_per_dim": (r.get("metrics") or {}).get("bits_per_dim"),
                        "train_images_per_s": (r.get("training") or {}).get("train_images_per_s"),
                        "sample_images_per_s": t.get("sample_images_per_s"), "peak_memory_mb": t.get("peak_memory_mb"),
                        "peak_memory_kind": t.get("peak_memory_kind"), "phases": t.get("phases"), "message": r.get("message")}
Path(sys.argv[1]).write_text(json.dumps(rows, indent=2))
print(json.dumps(rows, indent=1))
PY

