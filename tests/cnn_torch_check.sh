#!/bin/sh
# cnn_torch_check.sh — convolution, pooling, batch norm and dropout agree
# with PyTorch (Debian's python3-torch) in double precision: one model
# (tests/cnn_torch/xc.nn) from the same weights and batch gives the same
# loss, gradients, running statistics and evaluation-mode outputs.
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
PY=/usr/bin/python3
out=${BUILD:-build}/cnn_torch
mkdir -p "$out"
if ! "$PY" -c "import torch, numpy" 2>/dev/null; then
    echo "skip: python3-torch or python3-numpy not installed"
    echo "0 passed, 0 failed"
    exit 0
fi
if "$NNC" --dtype f64 tests/cnn_torch/xc.nn -o "$out/xc.c" &&
   gcc -std=c11 -O1 -Wall -Wextra -Werror $SANFLAGS -I"$out" -o "$out/harness" \
       tests/cnn_torch/harness.c "$out/xc.c" -lm &&
   (cd "$out" && ./harness) && "$PY" tests/cnn_torch/xc.py "$out"; then
    echo "1 passed, 0 failed"
else
    echo "FAIL tests/cnn_torch/xc.nn differs from PyTorch"
    echo "0 passed, 1 failed"
    exit 1
fi
