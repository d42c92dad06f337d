#!/bin/sh
# optim_torch.sh — every optimizer nnc generates takes the same steps as
# torch.optim on the same gradients (f64, relative 1e-6), fused and
# unfused; SGD, Adam and AdamW also in f32, where their steps must have the
# bits of torch.optim's: SGD (momentum, dampening, Nesterov, weight
# decay), Adam, AdamW, RMSprop (alpha, eps, momentum, centered, weight
# decay), and parameter groups (freeze, no_decay).
# tests/train/optim_driver.c runs the generated update;
# tests/train/optim_torch.py replays it in PyTorch.
# Environment: NNC, BUILD, SANFLAGS, PYTHON (default /usr/bin/python3).
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
PYTHON=${PYTHON:-/usr/bin/python3}
here=$(dirname "$0")
out=${BUILD:-build}/train/optim
. "$here/torch_cases.sh"
need_torch
mkdir -p "$out"

# name | train-block lines | torch optimizer over params / named(...)
cases='sgd|optimizer sgd(lr = 0.1)|torch.optim.SGD(list(params.values()), lr=0.1)
sgd_momentum|optimizer sgd(lr = 0.1, momentum = 0.9)|torch.optim.SGD(list(params.values()), lr=0.1, momentum=0.9)
sgd_dampening_wd|optimizer sgd(lr = 0.1, momentum = 0.9, dampening = 0.1, weight_decay = 0.01)|torch.optim.SGD(list(params.values()), lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)
sgd_nesterov|optimizer sgd(lr = 0.05, momentum = 0.8, nesterov = true, weight_decay = 0.001)|torch.optim.SGD(list(params.values()), lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.001)
adam|optimizer adam(lr = 0.01)|torch.optim.Adam(list(params.values()), lr=0.01)
adam_options|optimizer adam(lr = 0.01, betas = [0.8, 0.99], eps = 1e-6, weight_decay = 0.1)|torch.optim.Adam(list(params.values()), lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
adamw|optimizer adamw(lr = 0.01)|torch.optim.AdamW(list(params.values()), lr=0.01)
adamw_wd|optimizer adamw(lr = 0.02, weight_decay = 0.05, betas = [0.85, 0.995])|torch.optim.AdamW(list(params.values()), lr=0.02, weight_decay=0.05, betas=(0.85, 0.995))
rmsprop|optimizer rmsprop(lr = 0.01)|torch.optim.RMSprop(list(params.values()), lr=0.01)
rmsprop_options|optimizer rmsprop(lr = 0.01, alpha = 0.9, eps = 1e-6, weight_decay = 0.01)|torch.optim.RMSprop(list(params.values()), lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01)
rmsprop_momentum|optimizer rmsprop(lr = 0.01, momentum = 0.9)|torch.optim.RMSprop(list(params.values()), lr=0.01, momentum=0.9)
rmsprop_centered|optimizer rmsprop(lr = 0.01, centered = true)|torch.optim.RMSprop(list(params.values()), lr=0.01, centered=True)
rmsprop_all|optimizer rmsprop(lr = 0.01, alpha = 0.95, momentum = 0.5, centered = true, weight_decay = 0.1)|torch.optim.RMSprop(list(params.values()), lr=0.01, alpha=0.95, momentum=0.5, centered=True, weight_decay=0.1)
groups_sgd|optimizer sgd(lr = 0.1, momentum = 0.9, weight_decay = 0.01); no_decay bias; freeze fc1|torch.optim.SGD([{"params": named("fc2.weight")}, {"params": named("fc2.bias"), "weight_decay": 0}], lr=0.1, momentum=0.9, weight_decay=0.01)
groups_adamw|optimizer adamw(lr = 0.01, weight_decay = 0.1); no_decay [bias, "fc1.weight"]|torch.optim.AdamW([{"params": named("fc2.weight")}, {"params": named("fc1.weight", "fc1.bias", "fc2.bias"), "weight_decay": 0}], lr=0.01, weight_decay=0.1)
groups_rmsprop|optimizer rmsprop(lr = 0.01, momentum = 0.9, centered = true, weight_decay = 0.01); freeze ["fc2.weight"]; no_decay bias|torch.optim.RMSprop([{"params": named("fc1.weight")}, {"params": named("fc1.bias", "fc2.bias"), "weight_decay": 0}], lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)'

printf '%s\n' "$cases" > "$out/cases"
: > "$out/manifest"
while IFS='|' read -r name train spec; do
    # SGD, Adam and AdamW are also built in f32, where they must have the
    # bits of torch.optim in float32 (lower_sgd, lower_adam in
    # compiler/lower.c); RMSprop computes in double and rounds once
    dtypes=f64
    case $name in rmsprop* | groups_rmsprop) ;; *) dtypes="f64 f32" ;; esac
    for dtype in $dtypes; do
    for mode in fused no-fuse; do
        d="$out/$name/$mode-$dtype"
        label="$name ($mode)" prefix=
        [ "$dtype" = f32 ] && label="$name ($mode, f32)" prefix=f32:
        mkdir -p "$d"
        lines=$(printf '%s\n' "$train" | tr ';' '\n' | sed 's/^ */    /')
        awk -v t="$lines" '{ if ($0 == "@TRAIN@") print t; else print }' \
            "$here/opt.nn.in" > "$d/opt.nn"
        flag=
        [ "$mode" = no-fuse ] && flag=--no-fuse
        if ! "$NNC" $flag --dtype "$dtype" --prefix opt "$d/opt.nn" -o "$d/opt.c" 2> "$d/nnc.log"; then
            fail "$label: nnc: $(head -1 "$d/nnc.log")"; continue
        fi
        # f32 for this machine's vectors too: with AVX-512, Adam's step
        # divides through nnc_adamf_block's FMAs (tests/adam_block.sh)
        real=double arch=
        [ "$dtype" = f32 ] && real=float arch=-march=native
        if ! gcc -std=c11 -O2 $arch -Wall -Wextra -Werror $SANFLAGS -DREAL=$real -I"$d" -o "$d/driver" \
                "$here/optim_driver.c" "$d/opt.c" -lm 2> "$d/cc.log"; then
            fail "$label: the generated code does not compile: $(head -3 "$d/cc.log")"; continue
        fi
        if ! "$d/driver" > "$d/steps.txt"; then
            fail "$label: the driver failed"; continue
        fi
        printf '%s|%s%s|%s\n' "$label" "$prefix" "$spec" "$d/steps.txt" >> "$out/manifest"
    done
    done
done < "$out/cases"

check_manifest "$here/optim_torch.py" "$out/manifest"
