#!/bin/sh
# smooth_torch.sh — cross_entropy with label_smoothing against PyTorch's
# torch.nn.functional.cross_entropy(..., label_smoothing=eps) in f64,
# fused and unfused: loss (training and evaluation mode) and every
# gradient, for class labels and probability targets, from the logits
# and from an explicit softmax (from_logits = false, fused into one
# softmax_xent kernel; equal to torch's loss on the logits while no
# probability falls under the 1e-7 clip), and with logits in the hundreds
# (log-sum-exp must keep them finite and exact). tests/train/smooth_driver.c
# runs the generated code; tests/train/smooth_torch.py recomputes it.
# Environment: NNC, BUILD, SANFLAGS, PYTHON (default /usr/bin/python3).
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
PYTHON=${PYTHON:-/usr/bin/python3}
here=$(dirname "$0")
out=${BUILD:-build}/train/smooth
. "$here/torch_cases.sh"
need_torch
mkdir -p "$out"

# name | label type | loss | weight scale | eps for torch
cases='class_logits|class(5)|cross_entropy(z, y, label_smoothing = 0.1)|1|0.1
class_probs|class(5)|cross_entropy(p, y, from_logits = false, label_smoothing = 0.3)|1|0.3
soft_logits|[5]|cross_entropy(z, y, label_smoothing = 0.2)|1|0.2
soft_probs|[5]|cross_entropy(p, y, from_logits = false, label_smoothing = 0.05)|1|0.05
class_large|class(5)|cross_entropy(z, y, label_smoothing = 0.1)|400|0.1
soft_large|[5]|cross_entropy(z, y, label_smoothing = 0.4)|400|0.4
class_unsmoothed|class(5)|cross_entropy(z, y)|1|0'

: > "$out/manifest"
printf '%s\n' "$cases" > "$out/cases"
while IFS='|' read -r name label loss scale eps; do
    for mode in fused no-fuse; do
        d="$out/$name/$mode"
        mkdir -p "$d"
        cat > "$d/xs.nn" <<NN
model xs {
    input  x : [4]
    label  y : $label
    z = dense(x, 5)
    p = softmax(z)
    output probs = p
    loss   $loss
}
train xs { optimizer sgd(lr = 0.1) batch 6 }
NN
        flag=
        [ "$mode" = no-fuse ] && flag=--no-fuse
        if ! "$NNC" $flag --dtype f64 --prefix xs "$d/xs.nn" -o "$d/xs.c" 2> "$d/nnc.log"; then
            fail "$name ($mode): nnc: $(head -1 "$d/nnc.log")"; continue
        fi
        if ! gcc -std=c11 -O2 -Wall -Wextra -Werror $SANFLAGS -I"$d" -o "$d/driver" \
                "$here/smooth_driver.c" "$d/xs.c" -lm 2> "$d/cc.log"; then
            fail "$name ($mode): does not compile: $(head -3 "$d/cc.log")"; continue
        fi
        if ! "$d/driver" "$scale" > "$d/out.txt"; then
            fail "$name ($mode): the driver failed"; continue
        fi
        printf '%s|%s|%s\n' "$name ($mode)" "$eps" "$d/out.txt" >> "$out/manifest"
    done
done < "$out/cases"

check_manifest "$here/smooth_torch.py" "$out/manifest"
