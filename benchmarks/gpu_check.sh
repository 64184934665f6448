#!/usr/bin/env bash
# One GPU check of ferbench, under 8 minutes on one GPU, from a checkout of this repository:
#   1. three models (DAN, DDAMFN, POSTER++ when vendor/ holds them, else the built-in baseline) train one epoch
#      on synthetic data with --device cuda, in float32 and with --amp: img/s of each and the --amp speed-up;
#   2. packing: K runs with --jobs K against the same runs one after another (benchmarks/packing.py; also --amp);
#   3. the step benchmark (benchmarks/step_throughput.py): ferbench's loop against a bare loop, per model;
#   4. `ferbench report --cost`: parameters, GFLOPs, inference img/s and latency of every model that ran.
# Prints every ratio; with $OUT set, writes the raw figures there (gpu_check.log, runs.json, step.json,
# packing.txt, cost.md). Without a CUDA device it prints "skipped: no CUDA device" and exits 0.
#
# Python: $PYTHON if set, else .venv/bin/python when it works, else python3. Packages the harness needs but the
# interpreter lacks are installed from wheels in .whl/ (see docs/benchmarks.md for carrying them) or, failing
# that, with `pip install -e .` (needs the network).
# Usage: bash benchmarks/gpu_check.sh [--quick]   (--quick: fewer images and steps, for a smoke test)
# Smoke test of the script itself without a GPU: GPU_CHECK_DEVICE=cpu GPU_CHECK_MODELS=baseline ... --quick
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
STARTED=$(date +%s)
BUDGET_S=${GPU_CHECK_BUDGET_S:-450}   # stop starting new stages after this; the whole check must stay under 8 minutes

if [[ -n "${PYTHON:-}" ]]; then PY="$PYTHON"
elif [[ -x .venv/bin/python ]] && .venv/bin/python -c "import torch" 2>/dev/null; then PY=.venv/bin/python
else PY=python3
fi

DEVICE=${GPU_CHECK_DEVICE:-cuda}
if [[ $DEVICE == cuda ]] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: skipped: no CUDA device"
    exit 0
fi

LOGDIR="${OUT:-$(mktemp -d)}"
mkdir -p "$LOGDIR"
LOG="$LOGDIR/gpu_check.log"
: >"$LOG"
say() { echo "$*" | tee -a "$LOG"; }
left() { echo $((BUDGET_S - ($(date +%s) - STARTED))); }

# --- packages ----------------------------------------------------------------------------------------------
NEEDED="pydantic typer rich jinja2 pandas sklearn scipy torchvision PIL timm einops matplotlib cv2"
missing() { "$PY" - "$@" <<'EOF'
import importlib.util, sys
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))
EOF
}
MISSING=$(missing $NEEDED)
if [[ -n "$MISSING" ]]; then
    say "gpu_check: $PY lacks: $MISSING"
    if compgen -G ".whl/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/ferbench-site .whl/*.whl \
            && export PYTHONPATH="/tmp/ferbench-site${PYTHONPATH:+:$PYTHONPATH}"
    else
        "$PY" -m pip install -q -e . || true
    fi
    MISSING=$(missing $NEEDED)
    if [[ -n "$MISSING" ]]; then
        say "gpu_check: still missing: $MISSING; carry their wheels in .whl/ (docs/benchmarks.md) and run again"
        exit 1
    fi
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PY" -c "import torch; print(f'gpu_check: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"cpu\"} ($DEVICE), torch {torch.__version__}, python at $PY')" | tee -a "$LOG"

# --- 1. three models, float32 and --amp ----------------------------------------------------------------------
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
IMAGES=$([[ $QUICK == 1 ]] && echo 40 || echo 300)
MODELS=()
for m in ${GPU_CHECK_MODELS:-dan ddamfn posterpp}; do
    [[ $m == baseline || -d "vendor/$m" ]] && MODELS+=("$m")
done
if [[ ${#MODELS[@]} -lt 3 && -z "${GPU_CHECK_MODELS:-}" ]]; then
    say "gpu_check: vendor/ lacks some of dan, ddamfn, posterpp (run \`ferbench fetch\`, or carry vendor/); adding the built-in baseline"
    MODELS+=(baseline)
fi
export FERBENCH_CONFIG="$REPO/benchmark.toml" FERBENCH_DATA_ROOT="$WORK/data" FERBENCH_VENDOR_DIR="$REPO/vendor"
say "gpu_check: drawing $((IMAGES * 7)) synthetic images at 224 px"
"$PY" -m harness synth --images-per-class "$IMAGES" --size 224 >>"$LOG" 2>&1 || { say "gpu_check: synth failed (see $LOG)"; exit 1; }

DESCRIBE='import json, sys
r = json.load(sys.stdin)
epoch = ", epoch %s s, %s img/s (train + eval)" % (r["epoch_s"], r["img_s"]) if "epoch_s" in r else ""
print("exit %s, %s s wall%s" % (r["rc"], r["wall_s"], epoch))'
RUNS="$WORK/runs.jsonl"
: >"$RUNS"
for m in "${MODELS[@]}"; do
    for mode in fp32 amp; do
        if (( $(left) < 60 )); then say "gpu_check: time budget spent; skipping $m $mode"; continue; fi
        flags=(); [[ $mode == amp ]] && flags=(--amp)
        results="$WORK/results"   # one store: the image cache is built once; amp is part of the run id
        t0=$(date +%s.%N)
        FERBENCH_RESULTS_DIR="$results" timeout 150 "$PY" -m harness run --model "$m" --dataset synthetic --repeats 1 \
            --epochs 1 --device "$DEVICE" --no-pretrained "${flags[@]}" >>"$LOG" 2>&1
        rc=$?
        t1=$(date +%s.%N)
        "$PY" - "$m" "$mode" "$rc" "$t0" "$t1" "$results" >>"$RUNS" <<'EOF'
import json, sys
from pathlib import Path
m, mode, rc, t0, t1, results = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), Path(sys.argv[6])
found = [p for p in sorted(results.glob("**/result.json"))
         if (c := json.loads((p.parent / "config.json").read_text()))["model"] == m and c["recipe"]["amp"] == (mode == "amp")]
row = dict(model=m, mode=mode, rc=rc, wall_s=round(t1 - t0, 2))
if found:
    r = json.loads(found[0].read_text())
    epoch = r["history"][0]
    row.update(epoch_s=round(epoch["seconds"], 3), train_images=r["samples"]["train"],
               img_s=round(r["samples"]["train"] / epoch["seconds"], 1), cost=r.get("cost"))
print(json.dumps(row))
EOF
        say "gpu_check: $m $mode: $(tail -n 1 "$RUNS" | "$PY" -c "$DESCRIBE")"
    done
done
"$PY" - "$RUNS" <<'EOF' | tee -a "$LOG"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
by = {(r["model"], r["mode"]): r for r in rows}
for (model, mode), r in by.items():
    if mode == "amp" and "epoch_s" in r and "epoch_s" in by.get((model, "fp32"), {}):
        print(f"ratio --amp/fp32 epoch speed, {model}: {by[(model, 'fp32')]['epoch_s'] / r['epoch_s']:.2f}x")
EOF
[[ -n "${OUT:-}" ]] && "$PY" -c "import json,sys; json.dump([json.loads(l) for l in open(sys.argv[1]) if l.strip()], open(sys.argv[2], 'w'), indent=1)" "$RUNS" "$OUT/runs.json"

# --- 2. packing --------------------------------------------------------------------------------------------
if (( $(left) > 120 )); then
    say "gpu_check: packing (benchmarks/packing.py)"
    args=(--jobs 4 --epochs 2 --size 112 --images-per-class $([[ $QUICK == 1 ]] && echo 40 || echo 200))
    timeout $(( $(left) - 60 )) "$PY" benchmarks/packing.py "${args[@]}" 2>&1 | tee -a "$LOG" | tee "$WORK/packing.txt"
    [[ -n "${OUT:-}" ]] && cp "$WORK/packing.txt" "$OUT/packing.txt"
else
    say "gpu_check: time budget spent; packing skipped"
fi

# --- 3. step benchmark -------------------------------------------------------------------------------------
if (( $(left) > 45 )); then
    say "gpu_check: step benchmark (benchmarks/step_throughput.py)"
    step_models=$(IFS=,; echo "${MODELS[*]}")
    timeout $(( $(left) )) "$PY" benchmarks/step_throughput.py --models "$step_models" --device "$DEVICE" \
        --steps $([[ $QUICK == 1 ]] && echo 5 || echo 20) --json "$WORK/step.json" 2>&1 | tee -a "$LOG"
    [[ -n "${OUT:-}" && -f "$WORK/step.json" ]] && cp "$WORK/step.json" "$OUT/step.json"
else
    say "gpu_check: time budget spent; step benchmark skipped"
fi

# --- 4. model cost -----------------------------------------------------------------------------------------
if [[ -d "$WORK/results" ]]; then
    FERBENCH_RESULTS_DIR="$WORK/results" "$PY" -m harness report --cost 2>>"$LOG" | sed -n '/## Model cost/,$p' | tee -a "$LOG" >"$WORK/cost.md"
    [[ -n "${OUT:-}" ]] && cp "$WORK/cost.md" "$OUT/cost.md"
fi
say "gpu_check: done in $(( $(date +%s) - STARTED )) s"
