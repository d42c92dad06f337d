#!/bin/sh
# profile.sh — `nnc --profile`: the trainer builds warning-free with and
# without OpenMP, `--bench N` and training end with a table on stderr that
# has a row for every kernel forward_backward() and update() call, each
# called once a step, and the timing changes no bit of what is trained.
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
CFLAGS_GEN="-std=c11 -O2 -Wall -Wextra -Werror $SANFLAGS"
out=${BUILD:-build}/profile
mkdir -p "$out"
passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

# build NAME NN [NNC OPTIONS...]: nnc --main and gcc -fopenmp -> $out/NAME
build() {
    name=$1 nn=$2
    shift 2
    if ! "$NNC" --main "$@" "$nn" -o "$out/$name.c" 2> "$out/$name.nnc.log"; then
        fail "nnc $* $nn: $(head -1 "$out/$name.nnc.log")"; return 1
    fi
    if ! gcc $CFLAGS_GEN -fopenmp -o "$out/$name" "$out/$name.c" -lz -lm \
            2> "$out/$name.gcc.log"; then
        fail "$name.c does not compile: $(head -3 "$out/$name.gcc.log")"; return 1
    fi
    ok
}

# kernels_called FILE.c: the kernels forward_backward() and update() call
kernels_called() {
    awk '/^static void (forward_backward|update)\(/ { on = 1; next }
         on && /^}/ { on = 0 }
         on && match($0, /k[0-9]+_[A-Za-z0-9_]*\(/) { print substr($0, RSTART, RLENGTH - 1) }' "$1"
}

# check_table NAME LOG STEPS: LOG's profile has STEPS steps and a row for
# each kernel NAME.c's training programs call, with STEPS calls (STEPS
# empty: any count, the same for every kernel)
check_table() {
    name=$1 log=$2 steps=$3
    if ! grep -q "^profile: ${steps:-[0-9]*} training steps" "$log"; then
        fail "$name: no profile header for ${steps:-some} steps: $(head -3 "$log")"
        return
    fi
    counts=
    for k in $(kernels_called "$out/$name.c"); do
        row=$(grep "^$k " "$log")
        if [ -z "$row" ]; then fail "$name: no row for $k"; return; fi
        counts="$counts $(echo "$row" | awk '{ print $3 }')"
    done
    if [ -z "$counts" ]; then fail "$name: found no kernel calls in $name.c"; return; fi
    want=${steps:-$(echo "$counts" | awk '{ print $1 }')}
    for c in $counts; do
        [ "$c" = "$want" ] || { fail "$name: a kernel with $c calls, not $want:$counts"; return; }
    done
    # the shares are of the kernels' total, so they add up to 100%
    total=$(awk '/^k[0-9]+_/ { sub("%", "", $NF); s += $NF } END { print s }' "$log")
    if awk -v s="$total" 'BEGIN { exit !(s > 99.5 && s < 100.5) }' &&
       grep -q "^all kernels .* 100.0%$" "$log"; then ok
    else fail "$name: shares add up to $total%, or no 'all kernels' row"; fi
}

# mnist_mlp: --bench's table, on 1 and 2 threads
if build mlp dsl-examples/mnist_mlp.nn --profile; then
    for threads in 1 2; do
        if OMP_NUM_THREADS=$threads "$out/mlp" --bench 30 > "$out/mlp.out" 2> "$out/mlp.err" &&
           grep -q '^bench: steps=30 ' "$out/mlp.out"; then
            ok; check_table mlp "$out/mlp.err" 30
        else fail "mlp --bench 30 on $threads threads: $(tail -2 "$out/mlp.err")"; fi
    done
fi

# xor: the table after training, and the same weights as without --profile
if build xor_p dsl-examples/xor.nn --profile && build xor dsl-examples/xor.nn; then
    if "$out/xor_p" --quiet --save "$out/xor_p.st" > "$out/xor_p.out" 2> "$out/xor_p.err" &&
       "$out/xor" --quiet --save "$out/xor.st" > "$out/xor.out" 2> "$out/xor.err"; then
        ok
        check_table xor_p "$out/xor_p.err" ""
        # the final lines without their wall time (seconds=), which the timers change
        if cmp -s "$out/xor_p.st" "$out/xor.st" &&
           [ "$(sed 's/ seconds=[0-9.]*//' "$out/xor_p.out")" = "$(sed 's/ seconds=[0-9.]*//' "$out/xor.out")" ]
        then ok; else fail "xor trains differently with --profile"; fi
        if grep -q profile "$out/xor.err"; then fail "xor without --profile prints a profile"
        else ok; fi
        # --eval trains no step: no table
        if "$out/xor_p" --eval --load "$out/xor_p.st" > /dev/null 2> "$out/xor_eval.err" &&
           ! grep -q profile "$out/xor_eval.err"; then ok
        else fail "xor --eval with --profile: $(tail -2 "$out/xor_eval.err")"; fi
    else fail "xor trainers failed: $(tail -2 "$out/xor_p.err") $(tail -2 "$out/xor.err")"; fi
fi

# without --profile, nothing of it in the model's own code
if grep -q 'nnc_prof' "$out/xor.c" || grep -q 'profile_print' "$out/xor.h"; then
    fail "xor.c has profile code without --profile"
else ok; fi

# the CNN (long kernel names), unfused, and f64 build; without OpenMP too
# (not under the sanitizers, whose job is what runs)
if [ -z "$SANFLAGS" ]; then
    build cnn dsl-examples/mnist_cnn.nn --profile
    build mlp_unfused dsl-examples/mnist_mlp.nn --profile --no-fuse
    build mlp_f64 dsl-examples/mnist_mlp.nn --profile --dtype f64
    if gcc $CFLAGS_GEN -o "$out/mlp.noomp" "$out/mlp.c" -lz -lm 2> "$out/noomp.log"
    then ok; else fail "mlp.c does not compile without OpenMP: $(head -3 "$out/noomp.log")"; fi
    if "$out/mlp_unfused" --bench 5 > /dev/null 2> "$out/mlp_unfused.err"; then
        ok; check_table mlp_unfused "$out/mlp_unfused.err" 5
    else fail "mlp_unfused --bench 5: $(tail -2 "$out/mlp_unfused.err")"; fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
