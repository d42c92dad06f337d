#!/bin/sh
# train_features.sh — the train block's features: optimizers against
# torch.optim (tests/train/optim_torch.sh), learning-rate schedules against
# torch.optim.lr_scheduler (tests/train/sched_torch.sh), label smoothing
# against torch's cross_entropy (tests/train/smooth_torch.sh), and validation,
# logging, checkpoints, resume, early stopping, clipping, freezing,
# init_from, augmentation, the trainer's command line and diagnostics
# (tests/train/features.sh).
# Environment: NNC, BUILD, SANFLAGS, PYTHON. Last line: "N passed, N failed".
set -u
here=$(dirname "$0")/train
passed=0
failed=0
for t in optim_torch sched_torch smooth_torch features; do
    echo "-- $t"
    out=$("$here/$t.sh" 2>&1); status=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
    if [ -n "$line" ]; then
        p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    else
        p=0; f=1
    fi
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
