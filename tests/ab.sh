#!/bin/sh
# ab.sh — time a change of the generated code: MODEL compiled by NNC_A
# (the compiler before the change) and by NNC (after), both built into
# one program (tests/ab_steps.c) that alternates chunks of training steps.
# Usage: tests/ab.sh MODEL.nn [CHUNKS [STEPS_PER_CHUNK]]
# Environment: NNC_A (an nnc built from the commit to compare against;
# default NNC, which compares the code with itself), NNC_A_FLAGS (more
# flags for NNC_A: --no-fuse times what fusion buys), NNC, BUILD,
# AB_CFLAGS (-O2 -march=native -fopenmp).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 MODEL.nn [CHUNKS [STEPS_PER_CHUNK]]" >&2; exit 2; }
NNC=${NNC:-build/nnc}
NNC_A=${NNC_A:-$NNC}
out=${BUILD:-build}/ab
mkdir -p "$out"
# model files are f32 (ab_steps.c compares float parameters)
# shellcheck disable=SC2086
"$NNC_A" ${NNC_A_FLAGS:-} --prefix ma "$1" -o "$out/ma.c"
"$NNC" --prefix mb "$1" -o "$out/mb.c"
# shellcheck disable=SC2086
gcc -std=c11 ${AB_CFLAGS:--O2 -march=native -fopenmp} -Wall -Wextra -Werror \
    -I"$out" -Itests -o "$out/ab_steps" tests/ab_steps.c "$out/ma.c" "$out/mb.c" -lm
shift
"$out/ab_steps" "$@"
