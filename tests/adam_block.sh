#!/bin/sh
# adam_block.sh — the Adam step block nnc emits for float models
# (nnc_adamf_block, compiler/emit_c.c) has the bits of the expression it
# replaces, over every significand of the divisor it inverts, every v at
# the first step, and random values of any magnitude, with subnormals
# kept and flushed (tests/adam_block.c). Built with -march=native, so on
# an AVX-512 machine this tests the FMA divisions; the first line says
# which path was built.
# Environment: NNC, BUILD, SANFLAGS; ADAM_BLOCKS random blocks (2000000,
# 200000 under the sanitizers).
set -u
NNC=${NNC:-build/nnc}
SANFLAGS=${SANFLAGS:-}
out=${BUILD:-build}/adam_block
mkdir -p "$out"
cat > "$out/adam.nn" <<'NN'
model adam {
    input x : [40]
    label y : [2]
    output o = dense(relu(dense(x, 40)), 2)
    loss mse(o, y)
}

train adam {
    batch 2
    optimizer adam(lr = 0.001)
}
NN
if ! "$NNC" "$out/adam.nn" -o "$out/adam.c" 2> "$out/nnc.log"; then
    echo "FAIL nnc: $(head -1 "$out/nnc.log")"; echo "0 passed, 1 failed"; exit 1
fi
if ! grep -q 'nnc_adamf_block(quot, sq, num' "$out/adam.c"; then
    echo "FAIL the update does not call nnc_adamf_block"; echo "0 passed, 1 failed"; exit 1
fi
# shellcheck disable=SC2086
if ! gcc -std=c11 -O2 -march=native -fno-math-errno -Wall -Wextra -Werror $SANFLAGS \
        -I"$out" -DGENERATED="\"adam.c\"" -o "$out/adam_block" tests/adam_block.c -lm \
        2> "$out/cc.log"; then
    echo "FAIL tests/adam_block.c does not build: $(head -3 "$out/cc.log")"
    echo "0 passed, 1 failed"; exit 1
fi
if gcc -march=native -dM -E - < /dev/null | grep -q __AVX512F__; then
    echo "built for AVX-512: the FMA divisions"
else
    echo "built without AVX-512: the plain division loop"
fi
# under the sanitizers (10 times slower, and the arithmetic is the same)
# every 16th block of v and a tenth of the random blocks
if [ -n "$SANFLAGS" ]; then
    "$out/adam_block" "${ADAM_BLOCKS:-200000}" 16
else
    "$out/adam_block" "${ADAM_BLOCKS:-2000000}"
fi
