#!/bin/sh
# runtime_embed_check.sh — proves the runtime embeds cleanly.
#
# Concatenates runtime/ the way nnc does (`#define NNC_RT static
# __attribute__((unused))`, then nnc_rt.h, then the .c files with their
# quoted #include lines removed) and compiles the result with -Werror:
#   model   — nnc_rt.h rt_rng.c rt_safetensors.c, and linked with only
#             libc and libm, as a generated model must be;
#   trainer — all four runtime files.
# With --run-tests it also builds tests/check_runtime.c on top of the
# trainer embedding (one translation unit, static linkage) and runs it.
#
# Usage: tests/runtime_embed_check.sh [--run-tests] [OUTDIR]   (default /tmp/rt)
# Environment: CC (default gcc), EXTRA_CFLAGS (e.g. sanitizer flags).
set -eu

run_tests=0
if [ "${1:-}" = "--run-tests" ]; then
    run_tests=1
    shift
fi
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/rt}
CC=${CC:-gcc}
EXTRA_CFLAGS=${EXTRA_CFLAGS:-}
flags="-std=c11 -Wall -Wextra -Werror -Wshadow $EXTRA_CFLAGS"
mkdir -p "$out"

# embed OUTFILE FILE...: one translation unit as nnc emits it.
embed() {
    target=$1
    shift
    {
        echo '#define _POSIX_C_SOURCE 200809L'
        echo '#define NNC_RT static __attribute__((unused))'
        for f in "$@"; do
            grep -v '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root/runtime/$f"
        done
    } >"$target"
}

embed "$out/embed_model.c" nnc_rt.h rt_rng.c rt_safetensors.c
embed "$out/embed_trainer.c" nnc_rt.h rt_rng.c rt_safetensors.c rt_data.c rt_progress.c
$CC $flags -c "$out/embed_model.c" -o "$out/embed_model.o"
$CC $flags -c "$out/embed_trainer.c" -o "$out/embed_trainer.o"

# A model program that uses every model-side function links without zlib.
{
    cat "$out/embed_model.c"
    cat <<'EOF'
int main(void)
{
    nnc_rng r;
    nnc_rng_seed(&r, 1);
    int32_t idx[2] = {0, 1};
    nnc_rng_shuffle(&r, idx, 2);
    float w[1] = {(float)nnc_rng_normal(&r) + (float)nnc_rng_uniform(&r)};
    nnc_st_tensor t[1] = {{"w", 1, {1}, 0}};
    char err[256], v[16];
    int rc = nnc_st_save("/nonexistent-dir/w.safetensors", t, 1, w, 4, NULL, err, sizeof err);
    rc += nnc_st_load("/nonexistent-dir/w.safetensors", t, 1, w, 4, 0, err, sizeof err);
    rc += nnc_st_get_meta("/nonexistent-dir/w.safetensors", "k", v, sizeof v, err, sizeof err);
    return rc + (int)nnc_rng_below(&r, 3) == 0;
}
EOF
} >"$out/embed_model_main.c"
$CC $flags "$out/embed_model_main.c" -o "$out/embed_model_main" -lm

if [ "$run_tests" = 1 ]; then
    # shellcheck disable=SC2046
    $CC $flags -g -DCHECK_RUNTIME_MAIN -include "$out/embed_trainer.c" -I"$root/runtime" \
        "$root/tests/check_runtime.c" -o "$out/check_runtime_embedded" \
        $(pkg-config --cflags --libs check) -lz -lm
    "$out/check_runtime_embedded"
fi
echo "runtime embeds cleanly (model and trainer)"
