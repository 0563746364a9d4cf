#!/usr/bin/env bash
# The recipe of the paper's networks as shipped ('paper', 'paper-light'), step by step. Run from the repository root with the venv built
# (`make install`). Every step is deterministic (seeded) and resumable: rerunning it continues where the
# last run stopped (`enhance train` resumes from OUT_DIR/checkpoint.pt).
#
#   training/recipe.sh data            # ~8 min per kind on 2 cores: the pair files (not in git, ~0.9 GB)
#   training/recipe.sh paper-light|paper KIND # train (KIND: intensity or blos); resumes from training/checkpoints
#   training/recipe.sh average paper-light|paper KIND FROM_STEP   # SWA: mean of the snapshots from FROM_STEP on
#   training/recipe.sh validate KIND   # validation report of the best weights (WEIGHTS=swa: the averaged ones)
#   .venv/bin/python training/ship.py KIND VARIANT [--weights swa.safetensors]   # only if the floors pass
set -euo pipefail
SIM=${SIM:-../shared/data/muram_qs_0.0662arcsec.fits}   # the MURaM quiet-Sun field (never committed)
PY=${PY:-.venv/bin}
RUNS=${RUNS:-runs}
mkdir -p "$RUNS"

case "${1:-}" in
data)
    [ -f "$RUNS/pairs_intensity.h5" ] || "$PY/enhance" dataset build "$RUNS/pairs_intensity.h5" --kind intensity \
        --simulation "$SIM" --frames 128 --noise 0
    [ -f "$RUNS/pairs_blos.h5" ] || "$PY/enhance" dataset build "$RUNS/pairs_blos.h5" --kind blos --frames 128 --noise 0
    ;;
paper-light|paper)
    variant=$1 kind=${2:?kind: intensity or blos}
    out="$RUNS/${variant}_${kind}"
    # Resume from the checkpoint kept in training/checkpoints, if the run folder is new.
    if [ ! -f "$out/checkpoint.pt" ] && [ -f "training/checkpoints/${variant}_${kind}.pt" ]; then
        mkdir -p "$out" && cp "training/checkpoints/${variant}_${kind}.pt" "$out/checkpoint.pt"
        best="training/checkpoints/${variant}_${kind}_best.safetensors"
        [ -f "$best" ] && cp "$best" "$out/best.safetensors"
    fi
    steps=10000; [ "$variant" = paper ] && steps=8000
    steps=${STEPS:-$steps}
    extra=(); [ "$kind" = intensity ] && extra=(--simulation "$SIM")
    "$PY/enhance" train --data "$RUNS/pairs_${kind}.h5" --kind "$kind" --model "$variant" --steps "$steps" \
        --lr 5e-4 --threads "${THREADS:-1}" --precision "${PRECISION:-auto}" --snapshot-every "${SNAPSHOT:-50}" \
        --out-dir "$out" "${extra[@]}"
    ;;
average)
    variant=${2:?variant: paper-light or paper} kind=${3:?kind: intensity or blos} from=${4:?first step to average}
    run="$RUNS/${variant}_${kind}"
    snapshots=()
    for snap in "$run"/snapshots/step_*.pt; do
        step=$(basename "$snap" .pt); step=$((10#${step#step_}))
        [ "$step" -ge "$from" ] && snapshots+=("$snap")
    done
    extra=(); [ "$kind" = intensity ] && extra=(--simulation "$SIM")
    "$PY/enhance" average "$run/swa.safetensors" "${snapshots[@]:?no snapshots from step $from on}" \
        --data "$RUNS/pairs_${kind}.h5" --overwrite "${extra[@]}"
    ;;
save)
    # Keep the resume checkpoints in training/checkpoints (not tracked by git; 0.5 MB light, 5 MB full).
    mkdir -p training/checkpoints
    for run in "$RUNS"/*_intensity "$RUNS"/*_blos; do
        [ -f "$run/checkpoint.pt" ] && cp "$run/checkpoint.pt" "training/checkpoints/$(basename "$run").pt"
        [ -f "$run/best.safetensors" ] && cp "$run/best.safetensors" "training/checkpoints/$(basename "$run")_best.safetensors"
    done
    ls -la training/checkpoints
    ;;
validate)
    kind=${2:?kind: intensity or blos}
    args=()
    for pair in paper:full paper-light:light; do  # the report's floors name them full and light
        variant=${pair%%:*} label=${pair##*:}
        weights="$RUNS/${variant}_${kind}/${WEIGHTS:-best}.safetensors"
        [ -f "$weights" ] || weights="$RUNS/${variant}_${kind}/best.safetensors"
        [ -f "$weights" ] && args+=(--weights "$label=$weights")
    done
    extra=(); [ "$kind" = intensity ] && extra=(--simulation "$SIM")
    "$PY/enhance" validate --kind "$kind" "${args[@]}" "${extra[@]}" -o "$RUNS/validation"
    ;;
*)
    sed -n '2,10p' "$0"; exit 2 ;;
esac
