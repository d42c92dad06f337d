#!/bin/sh
# nonfinite.sh — a run that goes non-finite stops with a message naming
# the step and the first non-finite tensor, exits 1, and leaves the last
# good checkpoint in place and loadable; fused and --no-fuse, and with
# SANFLAGS (the ASan run) like every generated-code test.
#   tests/nonfinite/diverge.nn  lr far too large: the loss overflows after
#                               a few epochs; checkpoint every(...) epoch
#   tests/nonfinite/neglog.nn   log of the input: NaN for a negative value
#                               in the second batch of the data
#   tests/nonfinite.c           the library API (train_step, the checks,
#                               save refusing NaN weights)
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
CFLAGS_GEN="-std=c11 -O2 -Wall -Wextra -Werror $SANFLAGS"
out=${BUILD:-build}/nonfinite
passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

# build NAME FLAGS DIR: the trainer of tests/nonfinite/NAME.nn in DIR
build() {
    "$NNC" $2 --main "tests/nonfinite/$1.nn" -o "$3/$1.c" &&
        gcc $CFLAGS_GEN -fopenmp -o "$3/$1" "$3/$1.c" -lz -lm
}

# expect_stop LOG STATUS: exit status 1 and the two error lines
expect_stop() {
    if [ "$2" -ne 1 ]; then fail "$1: exit status $2, expected 1"; return 1; fi
    if ! grep -q '^error: epoch [0-9]*, step [0-9]* (optimizer step [0-9]*): .*; the first non-finite tensor is ' "$1" ||
       ! grep -q '^error: stopped before the update' "$1"; then
        fail "$1: no message naming the step and the tensor:"; cat "$1"; return 1
    fi
    ok
}

for flags in "" --no-fuse; do
    d="$out/run${flags}"; rm -rf "$d"; mkdir -p "$d"

    # diverge: stops in some epoch E > 1; checkpoint every(...) then holds
    # epoch E - 1, loads, and its weights are finite
    if build diverge "$flags" "$d"; then ok; else fail "diverge$flags: build"; continue; fi
    (cd "$d" && ./diverge --quiet) > "$d/diverge.log" 2>&1
    if expect_stop "$d/diverge.log" $?; then
        e=$(sed -n 's/^error: epoch \([0-9]*\), step.*/\1/p' "$d/diverge.log")
        if grep -q 'first non-finite tensor is loss = mse \[\] at tests/nonfinite/diverge.nn:7 (forward' "$d/diverge.log"
        then ok; else fail "diverge$flags: the overflowing loss is not named:"; cat "$d/diverge.log"; fi
        # saving refuses non-finite weights, so a save after loading shows
        # that the checkpoint's are finite
        if [ "$e" -gt 1 ] &&
           grep -q "\"nnc_epoch\":\"$((e - 1))\"" "$d/last.safetensors" &&
           "$d/diverge" --load "$d/last.safetensors" --eval --save "$d/again.safetensors" > "$d/load.log" 2>&1
        then ok; else fail "diverge$flags: last.safetensors is not epoch $((e - 1))'s loadable, finite state"; cat "$d/load.log"; fi
    fi

    # neglog: a good run saves ck; a run on bad data that would save over
    # it stops at epoch 1, step 2, naming the log, and ck is untouched
    if build neglog "$flags" "$d"; then ok; else fail "neglog$flags: build"; continue; fi
    printf '1,2,3\n2,1,1\n4,4,2\n0.5,3,1\n' > "$d/good.csv"
    printf '1,2,3\n2,1,1\n4,-4,2\n0.5,3,1\n' > "$d/bad.csv"
    if (cd "$d" && ./neglog --quiet --save ck.safetensors) > "$d/good.log" 2>&1
    then ok; else fail "neglog$flags: the good run failed"; cat "$d/good.log"; continue; fi
    cp "$d/ck.safetensors" "$d/ck.before"
    (cd "$d" && ./neglog --quiet --data bad.csv --load ck.safetensors --save ck.safetensors) > "$d/bad.log" 2>&1
    if expect_stop "$d/bad.log" $?; then
        if grep -q '^error: epoch 1, step 2 (optimizer step 2): a gradient is not finite; the first non-finite tensor is l = log \[2, 2\] at tests/nonfinite/neglog.nn:6 (forward' "$d/bad.log"
        then ok; else fail "neglog$flags: not epoch 1, step 2, l = log:"; cat "$d/bad.log"; fi
    fi
    if cmp -s "$d/ck.before" "$d/ck.safetensors" &&
       (cd "$d" && ./neglog --load ck.safetensors --eval --quiet) > "$d/load.log" 2>&1
    then ok; else fail "neglog$flags: the earlier checkpoint changed or does not load"; fi

    # the library API
    if "$NNC" $flags --prefix nf tests/nonfinite/diverge.nn -o "$d/nf.c" &&
       gcc $CFLAGS_GEN -I"$d" -o "$d/api" tests/nonfinite.c "$d/nf.c" -lm &&
       "$d/api" "$d"
    then ok; else fail "nonfinite API$flags"; fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
