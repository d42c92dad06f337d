#!/bin/bash
# run_all.sh — every test of the project, one summary line at the end.
#
# Environment: NNC (the compiler), BUILD (build directory), SANFLAGS
# (sanitizer flags for generated code, empty for a normal run).
# Each step prints its own results; the last line is
# "N passed, N failed" over all of them.
set -u
NNC=${NNC:-build/nnc}
BUILD=${BUILD:-build}
export NNC BUILD SANFLAGS="${SANFLAGS:-}"
# Check's 4 s default per test is too tight on a loaded 2-core machine or
# under ASan; a hung test still ends, just later
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120}
passed=0
failed=0
. "$(dirname "$0")/tally.sh"

# The steps are independent (each works in its own directory under
# $BUILD), and most are single-threaded gcc runs, so they run TEST_JOBS at
# a time (default: one per CPU); their outputs are printed in the order
# below, each whole, as they finish. OpenMP threads wait passively: with
# two steps' threads on two cores, spinning threads starve each other.
JOBS=${TEST_JOBS:-$(nproc 2> /dev/null || echo 1)}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
logs=$BUILD/run_all
rm -rf "$logs"
mkdir -p "$logs"
nsteps=0   # steps started
nshown=0   # steps whose output has been printed

# step NAME COMMAND...: starts the command, which prints "N passed,
# N failed" last, as soon as a job slot is free
step() {
    while [ "$(running)" -ge "$JOBS" ]; do wait -n; show_finished; done
    nsteps=$((nsteps + 1))
    echo "$1" > "$logs/$nsteps.name"
    shift
    (t0=$SECONDS; "$@" > "$logs/$nsteps.out" 2>&1; status=$?
     echo $((SECONDS - t0)) > "$logs/$nsteps.seconds"
     echo $status > "$logs/$nsteps.status") &
}

# running: how many started steps have not finished
running() {
    n=0
    for ((i = 1; i <= nsteps; i++)); do [ -e "$logs/$i.status" ] || n=$((n + 1)); done
    echo "$n"
}

# show_finished: prints, in order, the finished steps not yet shown, and
# adds their counts
show_finished() {
    while [ "$nshown" -lt "$nsteps" ] && [ -e "$logs/$((nshown + 1)).status" ]; do
        nshown=$((nshown + 1))
        # the wall time shows which steps keep CI long (it must stay
        # under 30 minutes on 2 cores)
        echo "== $(cat "$logs/$nshown.name") ($(cat "$logs/$nshown.seconds") s)"
        cat "$logs/$nshown.out"
        tally "$(cat "$logs/$nshown.status")" < "$logs/$nshown.out"
    done
}

unit() {
    out=$("$BUILD/unit_tests" 2>&1); status=$?
    printf '%s\n' "$out"
    summary=$(printf '%s\n' "$out" | grep -E 'Checks: [0-9]+' | tail -1)
    n=$(printf '%s' "$summary" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
    f=$(printf '%s' "$summary" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
    e=$(printf '%s' "$summary" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
    if [ -z "$summary" ]; then echo "0 passed, 1 failed"; return 1; fi
    echo "$((n - f - e)) passed, $((f + e)) failed"
    return $status
}

# the A/B timing driver (make ab) still builds and runs: a model against
# itself must train to the same bits, and so must its unfused code
# against the fused (NNC_A_FLAGS=--no-fuse; xor's fused kernels keep the
# unfused arithmetic)
ab_driver() {
    local ok=0 bad=0 flags out status
    for flags in "" --no-fuse; do
        out=$(NNC_A_FLAGS=$flags tests/ab.sh dsl-examples/xor.nn 5 10 2>&1); status=$?
        printf '%s\n' "$out"
        if [ $status -eq 0 ] && printf '%s' "$out" | grep -q 'parameters the same bits$'
        then ok=$((ok + 1)); else bad=$((bad + 1)); fi
    done
    echo "$ok passed, $bad failed"
    [ "$bad" -eq 0 ]
}

# plain_step NAME COMMAND...: a step the sanitizer run skips. valgrind
# cannot run a binary built with ASan; the PyTorch agreement (minutes of
# training steps) and the exact comparison (about 40 models built three
# ways, 10 minutes under ASan) check numbers, and their fused and unfused
# code is the code that fusecheck, gradcheck and threads run under the
# sanitizers
plain_step() {
    if [ -z "$SANFLAGS" ]; then step "$@"; fi
}

# the longest steps first, so that the two job slots end together
step "unit tests (Check)" unit
step "examples end to end" tests/e2e.sh
plain_step "fused and unfused agree exactly (every fusion rule)" tests/exactcheck.sh
step "fused and unfused train alike" tests/fusecheck.sh
plain_step "agreement with PyTorch (seed models)" tests/torch_agree.sh
step "train block: optimizers, schedules, checkpoints, resume" tests/train_features.sh
plain_step "nnc under valgrind: no leaks, no invalid accesses" tests/valgrind.sh
step "1, 2 and 3 threads train to the same bits" tests/threads.sh
step "gradient checks (f64, central differences)" tests/gradcheck.sh
step "gradient checks on random models; ties and relu at 0 against PyTorch" tests/gradcheck_random.sh
step "Adam's vector step: the bits of its expression" tests/adam_block.sh
step "runtime embedded, safetensors in Python" tests/runtime_extra.sh
step "non-finite steps: named, stopped, checkpoint kept" tests/nonfinite.sh
step "CNN ops agree with PyTorch (f64)" tests/cnn_torch_check.sh
step "bce loss: one log for 0/1 labels, the bits of both" tests/bce_loss.sh
step "A/B timing driver (make ab)" ab_driver
step "--profile: every kernel of a step timed, nothing else changed" tests/profile.sh
step "checkpoints on a full disk" tests/full_disk.sh
step "diagnostics (golden files)" tests/golden.sh
step "generated/ is up to date" tests/generated_fresh.sh

wait
show_finished
echo "(all steps: $SECONDS s wall with $JOBS at a time)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
