#!/bin/sh
# torch_agree.sh — nnc's generated code agrees with PyTorch on the seed models.
#
# For every hand-written reference tests/torch_ref/MODEL.py whose
# dsl-examples/MODEL.nn exists: nnc compiles the model (fused, then
# --no-fuse) with --prefix agree, tests/torch_agree.c drives the generated
# code (initial weights, fixed batches, outputs, loss, gradients, 20
# training steps) and the reference replays the same in PyTorch from the
# same weights and compares (tolerances in tests/torch_ref/agree.py).
#
# PyTorch is Debian's python3-torch, so the interpreter is /usr/bin/python3
# (PYTHON overrides it). Without torch or numpy the test is skipped.
# Environment: NNC, BUILD, SANFLAGS as in tests/run_all.sh; TORCH_AGREE_MODELS
# (e.g. "xor mnist_mlp") limits the run to those models.
# Last line: "N passed, N failed"; exit status 0 when nothing failed.
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
PYTHON=${PYTHON:-/usr/bin/python3}
out=${BUILD:-build}/torch_agree
passed=0
failed=0
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

if ! why=$("$PYTHON" -c 'import numpy, torch' 2>&1); then
    echo "skip: $PYTHON cannot import torch and numpy (Debian: apt-get install python3-torch):"
    printf '%s\n' "$why" | tail -1
    echo "0 passed, 0 failed"
    exit 0
fi
mkdir -p "$out"

# agree NAME NN REF [VARIANT]: compiles NN fused and unfused, runs the
# driver and the reference REF on each; adds the reference's counts.
agree() {
    name=$1 nn=$2 ref=$3 variant=${4:-}
    for mode in fused no-fuse; do
        d="$out/$name${variant:+-$variant}/$mode"
        label="$name${variant:+ ($variant)} ($mode)"
        rm -rf "$d"
        mkdir -p "$d/data"
        if [ "$mode" = fused ]; then flags=; else flags=--no-fuse; fi
        if ! "$NNC" $flags --prefix agree "$nn" -o "$d/agree.c"; then
            fail "$label: nnc failed"; continue
        fi
        if ! gcc -std=c11 -O2 -Wall -Wextra -Werror $SANFLAGS -fopenmp -I"$d" \
                -o "$d/driver" tests/torch_agree.c "$d/agree.c" -lm; then
            fail "$label: tests/torch_agree.c does not compile against it"; continue
        fi
        if ! "$d/driver" "$d/data"; then
            fail "$label: the driver failed"; continue
        fi
        log=$("$PYTHON" "$ref" "$d/data" "$label" $variant 2>&1)
        printf '%s\n' "$log"
        line=$(printf '%s\n' "$log" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
        if [ -z "$line" ]; then
            fail "$label: $ref printed no result"; continue
        fi
        p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
        passed=$((passed + p)); failed=$((failed + f))
        # the per-step gradients are large (96 MB for torch_mnist_cnn): kept only after a failure
        if [ "$f" -eq 0 ]; then rm -f "$d/data/stepgrads.f32"; fi
    done
}

for ref in tests/torch_ref/*.py; do
    name=$(basename "$ref" .py)
    [ "$name" = agree ] && continue          # the shared machinery
    case " ${TORCH_AGREE_MODELS:-$name} " in *" $name "*) ;; *) continue ;; esac
    nn=dsl-examples/$name.nn
    if [ ! -f "$nn" ]; then
        echo "skip $name: $nn does not exist"
        continue
    fi
    agree "$name" "$nn" "$ref"
done

# Variants: a model whose dropout masks cannot be recovered (too many
# units; see its reference) is also compared without its dropout line, so
# that training mode (batch statistics, gradients, 20 steps) is checked.
# Each line: MODEL VARIANT SED-SCRIPT, applied to dsl-examples/MODEL.nn.
while read -r name variant script; do
    nn=dsl-examples/$name.nn
    [ -f "$nn" ] || continue
    case " ${TORCH_AGREE_MODELS:-$name} " in *" $name "*) ;; *) continue ;; esac
    mkdir -p "$out/variants"
    v="$out/variants/$name-$variant.nn"
    sed "$script" "$nn" > "$v"
    if cmp -s "$nn" "$v"; then
        fail "$name ($variant): sed '$script' changed nothing in $nn"; continue
    fi
    agree "$name" "$v" "tests/torch_ref/$name.py" "$variant"
done <<'VARIANTS'
mnist_cnn_bn nodropout /dropout(/d
VARIANTS

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
