#!/bin/sh
# sched_torch.sh — the trainer's learning rate, epoch by epoch (from its
# log_csv), is torch.optim.lr_scheduler's for every schedule: step,
# multi_step, exponential, cosine, reduce_on_plateau (min and max, rel and
# abs thresholds, cooldown, min_lr), linear warm-up over epochs
# (SequentialLR) and over steps (LinearLR per step).
# Environment: NNC, BUILD, SANFLAGS, PYTHON (default /usr/bin/python3).
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
PYTHON=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
out=${BUILD:-build}/train/sched
. "$here/torch_cases.sh"
need_torch
mkdir -p "$out"

# name | train-block lines | scheduler over opt
cases='step|schedule step(step_size = 3, gamma = 0.5)|lrs.StepLR(opt, step_size=3, gamma=0.5)
step_positional|schedule step(4)|lrs.StepLR(opt, 4)
multi_step|schedule multi_step(milestones = [2, 5, 6], gamma = 0.3)|lrs.MultiStepLR(opt, milestones=[2, 5, 6], gamma=0.3)
exponential|schedule exponential(gamma = 0.8)|lrs.ExponentialLR(opt, gamma=0.8)
cosine|schedule cosine(T_max = 5, eta_min = 0.001)|lrs.CosineAnnealingLR(opt, T_max=5, eta_min=0.001)
cosine_plain|schedule cosine(T_max = 14)|lrs.CosineAnnealingLR(opt, T_max=14)
plateau_min|schedule reduce_on_plateau(metric = val_loss, factor = 0.5, patience = 1, threshold = 0.05, cooldown = 1, min_lr = 0.004)|plateau:val_loss:lrs.ReduceLROnPlateau(opt, factor=0.5, patience=1, threshold=0.05, cooldown=1, min_lr=0.004)
plateau_max_abs|schedule reduce_on_plateau(metric = val_accuracy, mode = max, threshold_mode = abs, threshold = 0.1, patience = 0, factor = 0.3)|plateau:val_accuracy:lrs.ReduceLROnPlateau(opt, mode="max", threshold_mode="abs", threshold=0.1, patience=0, factor=0.3)
plateau_train_loss|schedule reduce_on_plateau(metric = train_loss, patience = 2, factor = 0.2, threshold = 0.2)|plateau:loss:lrs.ReduceLROnPlateau(opt, patience=2, factor=0.2, threshold=0.2)
warmup_epochs_step|warmup linear(epochs = 3, start_factor = 0.25); schedule step(step_size = 2, gamma = 0.5)|lrs.SequentialLR(opt, [lrs.LinearLR(opt, start_factor=0.25, total_iters=3), lrs.StepLR(opt, step_size=2, gamma=0.5)], milestones=[3])
warmup_cosine|warmup 2; schedule cosine(T_max = 4)|lrs.SequentialLR(opt, [lrs.LinearLR(opt, total_iters=2), lrs.CosineAnnealingLR(opt, T_max=4)], milestones=[2])
warmup_only|warmup 5|lrs.SequentialLR(opt, [lrs.LinearLR(opt, total_iters=5), lrs.ConstantLR(opt, factor=1.0)], milestones=[5])
warmup_steps|warmup linear(steps = 6, start_factor = 0.1)|lrs.LinearLR(opt, start_factor=0.1, total_iters=6)'

printf '%s\n' "$cases" > "$out/cases"
: > "$out/manifest"
while IFS='|' read -r name train spec; do
    d="$out/$name"
    mkdir -p "$d"
    lines=$(printf '%s\n' "$train" | tr ';' '\n' | sed 's/^ */    /')
    awk -v t="$lines" '{ if ($0 == "@TRAIN@") print t; else print }' \
        "$here/sched.nn.in" > "$d/sched.nn"
    if ! "$NNC" --main "$d/sched.nn" -o "$d/sched.c" 2> "$d/nnc.log"; then
        fail "$name: nnc: $(head -1 "$d/nnc.log")"; continue
    fi
    if ! gcc -std=c11 -O2 -Wall -Wextra -Werror $SANFLAGS -o "$d/sched" "$d/sched.c" \
            -lz -lm 2> "$d/cc.log"; then
        fail "$name: the trainer does not compile: $(head -3 "$d/cc.log")"; continue
    fi
    if ! (cd "$d" && ./sched --quiet > run.log 2>&1); then
        fail "$name: the trainer failed: $(tail -2 "$d/run.log")"; continue
    fi
    printf '%s|%s|%s\n' "$name" "$spec" "$d/metrics.csv" >> "$out/manifest"
done < "$out/cases"

check_manifest "$here/sched_torch.py" "$out/manifest"
