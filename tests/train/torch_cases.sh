# torch_cases.sh — what the scripts comparing nnc with PyTorch case by
# case share (optim_torch.sh, sched_torch.sh, smooth_torch.sh); sourced.
# They collect one "LABEL|SPEC|FILE" line per case in a manifest, then
# one Python run (one torch import) checks them all.
passed=0
failed=0
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

# need_torch: without torch, say so and end the script with nothing run
need_torch() {
    if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
        echo "skip: $PYTHON cannot import torch"
        echo "0 passed, 0 failed"
        exit 0
    fi
}

# check_manifest SCRIPT MANIFEST: runs the reference over every case
# (it prints a line each and its own summary), adds its counts to ours,
# prints the summary and ends the script with its status
check_manifest() {
    r=$("$PYTHON" "$1" "$2" 2>&1)
    printf '%s\n' "$r" | grep -v '^[0-9]* passed, [0-9]* failed$'
    line=$(printf '%s\n' "$r" | tail -1)
    case $line in
    *" passed, "*" failed") p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*} ;;
    *) p=0; f=1 ;;
    esac
    passed=$((passed + p)); failed=$((failed + f))
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
