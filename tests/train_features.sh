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
. "$(dirname "$0")/tally.sh"
for t in optim_torch sched_torch smooth_torch features; do
    echo "-- $t"
    out=$("$here/$t.sh" 2>&1); status=$?
    printf '%s\n' "$out"
    tally "$status" <<EOF
$out
EOF
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
