#!/bin/sh
# bench.sh — how fast nnc's generated trainers run (`make bench`; not a test).
#
#  1. every dsl-examples/*.nn, fused against --no-fuse: ms per step, arena,
#     kernels, and how long nnc and gcc take to compile it;
#  2. references measured in the same run: OpenBLAS SGEMM (the machine's
#     ceiling), PyTorch on the same models, 1 thread against 2;
#  3. the project's speed targets, each marked met or missed;
#  4. where the step's time goes in the targets' models: `nnc --profile`'s
#     table of each kernel on THREADS threads and on 1.
#
# The machine is shared and noisy: a number from one run means little next
# to a number from another, and its speed drifts by half from one minute
# to the next. So contenders run alternately (A B A B ...), ROUNDS times
# each; every ratio is taken within a round, between runs seconds apart
# (nnc against the SGEMM run right after it, say), and the median of the
# rounds' ratios is reported.
#
# Environment: NNC (build/nnc), BUILD (build), BENCH_ROUNDS (9),
# BENCH_TARGET_MS (500: length of one timed run), BENCH_THREADS (2),
# BENCH_PYTHON (/usr/bin/python3).
# Output: aligned tables on stdout (progress on stderr), the same tables
# in Markdown in $BUILD/bench.md. Exits non-zero only on a real error (a
# build or a run that fails), never because a speed target is missed.
set -u

NNC=${NNC:-build/nnc}
BUILD=${BUILD:-build}
ROUNDS=${BENCH_ROUNDS:-9}
TARGET_MS=${BENCH_TARGET_MS:-500}
THREADS=${BENCH_THREADS:-2}
PY=${BENCH_PYTHON:-/usr/bin/python3} # Debian's has python3-torch; PATH's may not
GEN_CFLAGS="-std=c11 -O2 -march=native -fopenmp -Wall -Wextra -Werror"
REF_MODELS="xor mnist_mlp mnist_cnn cifar_cnn"
XOR_STEPS=10000 # the seed trains XOR for 10000 steps: compare exactly that
SGEMM_N=2048
# mnist_mlp's products (batch 64, 784-256-64-10) as bench_sgemm --products
# lists them: the forward x W^T of each layer, then backwards each layer's
# dW = dy^T x and (but the first's) dx = dy W. OpenBLAS on just these is
# what a tuned BLAS makes of the shapes the 60% target is about.
MLP_PRODUCTS=64x256x784nt,64x64x256nt,64x10x64nt,10x64x64tn,64x64x10nn,64x256x64tn,64x256x64nn,256x784x64tn
out=$BUILD/bench
md=$BUILD/bench.md

# ---- small helpers ---------------------------------------------------------

# err TEXT: a real failure. Kept in a file, not a variable, because many
# callers run in a $(...) subshell whose variables are lost.
err() { echo "bench.sh: error: $*" >&2; echo "$*" >> "$out/errors"; }
say() { echo "$*" >&2; }
# note TEXT: a remark printed under the tables (a skipped column, say)
note() { say "note: $*"; echo "$*" >> "$out/notes"; }

now_ns() { date +%s%N; }
# seconds_since T0: wall seconds since now_ns printed T0
seconds_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.4f\n", (b - a) / 1e9 }'; }
# calc EXPR: floating-point arithmetic (a comparison prints 1 or 0)
# (parenthesised: a bare > in awk's printf would redirect to a file)
calc() { awk "BEGIN { printf \"%.6g\n\", ($1) }"; }
calc_int() { awk "BEGIN { printf \"%d\n\", ($1) }"; }
# add_ratio A B FILE: append A / B to FILE, when both were measured
add_ratio() { [ -n "$1" ] && [ -n "$2" ] && calc "$1 / $2" >> "$3"; true; }
# rounds NAME: the median of the rounds' ratios in $out/NAME.rounds
rounds() { median < "$out/$1.rounds" 2> /dev/null; }
# span NAME FORMATTER: "lo-hi" of those ratios, each through FORMATTER
span() {
    [ -s "$out/$1.rounds" ] || return 1
    echo "$($2 "$(sort -g "$out/$1.rounds" | head -1)")-$($2 "$(sort -g "$out/$1.rounds" | tail -1)")"
}
# median: of the numbers on stdin, one per line
median() {
    sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) exit 1
              if (NR % 2) print v[(NR + 1) / 2]
              else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# fmt X: three significant digits, without exponent for ordinary sizes
fmt() {
    case $1 in '' | -) echo -; return ;; esac
    awk -v x="$1" 'BEGIN { if (x >= 1000) printf "%.0f\n", x; else printf "%.3g\n", x }'
}
# pct RATIO: a fraction as a percentage, with two significant digits
pct() { awk "BEGIN { printf \"%.2g%%\n\", 100 * ($1) }"; }
# statval KEY FILE: a value from a saved `nnc --stats` output
statval() { sed -n "s/^$1=//p" "$2"; }
# row FILE FIELD...: append one tab-separated table row
row() { f=$1; shift; (IFS='	'; echo "$*") >> "$f"; }

# text_table TSV: aligned columns, the header row underlined
text_table() {
    awk -F'\t' '{ for (i = 1; i <= NF; i++) { c[NR, i] = $i
                      if (length($i) > w[i]) w[i] = length($i) }
                  if (NF > nf) nf = NF }
        END { for (r = 1; r <= NR; r++) {
                  s = ""
                  for (i = 1; i <= nf; i++)
                      s = s sprintf(i == 1 ? "%-" w[i] "s" : "  %" w[i] "s", c[r, i])
                  print s
                  if (r == 1) { gsub(/./, "-", s); print s } } }' "$1"
}
# md_table TSV: the same as a Markdown table, numbers right-aligned
md_table() {
    awk -F'\t' '{ s = "|"; for (i = 1; i <= NF; i++) s = s " " $i " |"; print s
                  if (NR == 1) { s = "|"
                      for (i = 1; i <= NF; i++) s = s (i == 1 ? " --- |" : " ---: |")
                      print s } }' "$1"
}

# cpu_busy_s: CPU seconds all processes on the machine have used since boot
cpu_busy_s() {
    awk -v hz="$(getconf CLK_TCK)" '/^cpu / { print ($2 + $3 + $4 + $7 + $8) / hz }' /proc/stat
}
# our_cpu_s: CPU seconds used by this script's finished children (times'
# second line, e.g. "4m54.3s 0m6.1s"). `times` must run in the main shell:
# in a pipe or $(...) it would report a fresh subshell's zeros.
our_cpu_s() {
    times > "$out/times"
    awk 'NR == 2 { t = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60 + p[2] }
        print t }' "$out/times"
}
# other_load OURS: cores that other processes kept busy, on average, while
# this script ran (OURS: our_cpu_s): how far to trust the 2-thread figures
other_load() {
    awk -v b0="$busy_start" -v b1="$(cpu_busy_s)" -v ours="$1" \
        -v wall="$(seconds_since "$t_start")" \
        'BEGIN { x = (b1 - b0 - ours) / wall; printf "%.2f\n", x < 0 ? 0 : x }'
}

# ---- measuring ---------------------------------------------------------------

# nnc_ms BIN STEPS BATCH THREADS: ms per step of one `BIN --bench STEPS`.
# The trainer prints ms_per_step with 4 decimals, too coarse for XOR's
# sub-microsecond steps, so it is recomputed from samples_per_s when that
# figure carries more digits.
nnc_ms() {
    line=$(OMP_NUM_THREADS=$4 "$1" --bench "$2" 2> "$out/last.err" | grep '^bench:') || {
        err "$1 --bench $2 failed: $(tail -2 "$out/last.err")"; return 1; }
    echo "$line" | awk -v batch="$3" '{
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        if (v["samples_per_s"] + 0 >= 10000) printf "%.6g\n", batch * 1000 / v["samples_per_s"]
        else printf "%.6g\n", v["ms_per_step"] }'
}

# torch_ms MODEL THREADS [ARGS]: ms per step of the PyTorch reference
torch_ms() {
    m=$1; t=$2; shift 2
    line=$("$PY" tests/bench_torch.py "$m" --threads "$t" "$@" 2> "$out/last.err" |
           grep '^torch:') || { err "bench_torch.py $m failed: $(tail -2 "$out/last.err")"; return 1; }
    echo "$line" | sed -n 's/.*ms_per_step=\([0-9.eE+-]*\).*/\1/p'
}

# pick_openblas_core: the fastest OpenBLAS kernel set this CPU runs.
# OpenBLAS 0.3.21 (Debian 12) does not recognise every CPU it runs on: on a
# virtual CPU reporting a generic "Intel Xeon" model it falls back to its
# SSE3 "Prescott" kernels, 4-6x below what the AVX-512 units do. Both
# references (SGEMM and PyTorch, which uses the same OpenBLAS) would then
# be slowed alike, flattering nnc. So time a short SGEMM with the detected
# kernels and with each candidate the CPU's flags allow, and export the
# fastest as OPENBLAS_CORETYPE for every reference run.
pick_openblas_core() {
    flags=$(grep -m1 '^flags' /proc/cpuinfo)
    candidates=auto
    case " $flags " in *" avx2 "*) candidates="$candidates Haswell" ;; esac
    case " $flags " in *" avx512f "*) candidates="$candidates SkylakeX" ;; esac
    best=; best_gf=0
    for c in $candidates; do
        if [ "$c" = auto ]; then set -- env -u OPENBLAS_CORETYPE; else set -- env OPENBLAS_CORETYPE="$c"; fi
        line=$("$@" OPENBLAS_NUM_THREADS=1 "$out/bench_sgemm" 1024 3 2> /dev/null) || continue
        gf=$(echo "$line" | sed -n 's/.*gflops=\([0-9.]*\).*/\1/p')
        core=$(echo "$line" | sed -n 's/.*core=\([^ ]*\).*/\1/p')
        say "== OpenBLAS kernels $c ($core): $gf GFLOP/s on 1 thread"
        if [ "$(calc "${gf:-0} > $best_gf")" = 1 ]; then best=$c; best_gf=$gf; best_core=$core; fi
    done
    if [ -n "$best" ] && [ "$best" != auto ]; then
        export OPENBLAS_CORETYPE="$best"
        note "OpenBLAS detected its kernels poorly on this CPU; OPENBLAS_CORETYPE=$best" \
             "($best_core, the fastest of: $candidates) is set for SGEMM and PyTorch alike"
    else
        unset OPENBLAS_CORETYPE
    fi
    unset OPENBLAS_L2_SIZE
}

# sgemm_gflops [THREADS]: one SGEMM measurement, with the kernels
# pick_openblas_core chose
sgemm_gflops() {
    line=$(OPENBLAS_NUM_THREADS="${1:-$THREADS}" \
           "$out/bench_sgemm" "$SGEMM_N" 5 2> "$out/last.err") || {
        err "bench_sgemm failed: $(tail -2 "$out/last.err")"; return 1; }
    echo "$line" > "$out/sgemm.last"
    echo "$line" | sed -n 's/.*gflops=\([0-9.]*\).*/\1/p'
}

# products_gflops: OpenBLAS on mnist_mlp's products alone
products_gflops() {
    line=$(OPENBLAS_NUM_THREADS="$THREADS" \
           "$out/bench_sgemm" --products "$MLP_PRODUCTS" 5 2> "$out/last.err") || {
        err "bench_sgemm --products failed: $(tail -2 "$out/last.err")"; return 1; }
    echo "$line" | sed -n 's/.*gflops=\([0-9.]*\).*/\1/p'
}

# steps_for BIN BATCH: a step count that makes one timed run last about
# TARGET_MS, from short runs grown tenfold until one lasts 50 ms
steps_for() {
    s=1
    while :; do
        ms=$(nnc_ms "$1" "$s" "$2" "$THREADS") || return 1
        [ "$(calc "$ms * $s >= 50")" = 1 ] || [ "$s" -ge 10000000 ] && break
        s=$((s * 10))
    done
    calc_int "$TARGET_MS / $ms < 5 ? 5 : $TARGET_MS / $ms"
}

# build_example NAME: the fused and unfused trainers with their --stats,
# how long gcc took on each and (median of 3) how long nnc --main took
build_example() {
    n=$1
    src=dsl-examples/$n.nn
    for v in fused unfused; do
        flag=
        [ "$v" = unfused ] && flag=--no-fuse
        "$NNC" --stats $flag "$src" > "$out/$n.$v.stats" &&
            "$NNC" --main $flag "$src" -o "$out/$n.$v.c" || {
            err "nnc --main${flag:+ $flag} $src failed"; return 1; }
        t0=$(now_ns)
        gcc $GEN_CFLAGS -o "$out/$n.$v" "$out/$n.$v.c" -lz -lm || {
            err "gcc failed on nnc's output for $src ($v)"; return 1; }
        seconds_since "$t0" > "$out/$n.$v.gcc_s"
    done
    # nnc takes milliseconds: one run is at the mercy of the scheduler
    for _ in 1 2 3; do
        t0=$(now_ns)
        "$NNC" --main "$src" -o "$out/$n.time.c" || return 1
        seconds_since "$t0"
    done | median > "$out/$n.nnc_s"
}

# ---- set-up ----------------------------------------------------------------

mkdir -p "$out" || exit 1
rm -f "$out"/*.ms "$out"/*.steps "$out"/*.rounds "$out"/notes "$out"/errors "$out"/*.tsv "$out"/*.prof[12] "$out"/sgemm.*
[ -x "$NNC" ] || { echo "bench.sh: no compiler at $NNC (make nnc)" >&2; exit 1; }

have_sgemm=1
if ! gcc -std=c11 -O2 -march=native -Wall -Wextra -Werror -o "$out/bench_sgemm" \
        tests/bench_sgemm.c -lopenblas 2> "$out/sgemm.build.err"; then
    have_sgemm=0
    note "no SGEMM reference: tests/bench_sgemm.c does not build against OpenBLAS" \
         "($(head -1 "$out/sgemm.build.err"); make deps-bench installs libopenblas-dev)"
fi
[ "$have_sgemm" = 1 ] && pick_openblas_core
have_torch=1
torch_version=$("$PY" -c 'import torch; print(torch.__version__)' 2> /dev/null) || {
    have_torch=0
    note "no PyTorch columns: $PY cannot import torch (make deps-bench installs python3-torch)"
}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
date_start=$(date -u '+%Y-%m-%d %H:%M UTC')
busy_start=$(cpu_busy_s)
t_start=$(now_ns)

# ---- 1. fused against unfused, every example ---------------------------------

T1=$out/fusion.tsv
row "$T1" example "fused ms/step" "unfused ms/step" "speedup" "fused samples/s" \
    "arena fused" "arena unfused" "arena f/u" "kernels f/u" "steps/run" "nnc ms" "gcc s f/u"
built=""
for nn in dsl-examples/*.nn; do
    n=$(basename "$nn" .nn)
    say "== $n: building"
    build_example "$n" || continue
    batch=$(statval batch "$out/$n.fused.stats")
    steps=$(steps_for "$out/$n.fused" "$batch") || continue
    echo "$steps" > "$out/$n.steps"
    say "== $n: $ROUNDS rounds of $steps steps, fused and unfused alternately"
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
        f=$(nnc_ms "$out/$n.fused" "$steps" "$batch" "$THREADS") && echo "$f" >> "$out/$n.fused.ms"
        u=$(nnc_ms "$out/$n.unfused" "$steps" "$batch" "$THREADS") && echo "$u" >> "$out/$n.unfused.ms"
        add_ratio "$u" "$f" "$out/$n.speedup.rounds"
        r=$((r + 1))
    done
    f=$(median < "$out/$n.fused.ms") && u=$(median < "$out/$n.unfused.ms") &&
        median < "$out/$n.speedup.rounds" > "$out/$n.speedup" || {
        err "$n: no timing"; continue; }
    built="$built $n"
    fa=$(statval arena_bytes "$out/$n.fused.stats")
    ua=$(statval arena_bytes "$out/$n.unfused.stats")
    row "$T1" "$n" "$(fmt "$f")" "$(fmt "$u")" "$(fmt "$(cat "$out/$n.speedup")")x" \
        "$(fmt "$(calc "$batch * 1000 / $f")")" "$fa" "$ua" "$(fmt "$(calc "$fa / $ua")")" \
        "$(statval kernels "$out/$n.fused.stats")/$(statval kernels "$out/$n.unfused.stats")" \
        "$steps" "$(fmt "$(calc "$(cat "$out/$n.nnc_s") * 1000")")" \
        "$(fmt "$(cat "$out/$n.fused.gcc_s")")/$(fmt "$(cat "$out/$n.unfused.gcc_s")")"
done

# ---- 2. references: SGEMM, PyTorch, 1 thread against 2 ------------------------

refs=""
for m in $REF_MODELS; do
    case " $built " in
        *" $m "*) refs="$refs $m" ;;
        *) note "$m: no reference row (dsl-examples/$m.nn missing or not built)" ;;
    esac
done
r=1
while [ "$r" -le "$ROUNDS" ]; do
    say "== references, round $r of $ROUNDS:$refs"
    for m in $refs; do
        batch=$(statval batch "$out/$m.fused.stats")
        flops=$(statval flops_per_step "$out/$m.fused.stats")
        steps=$(cat "$out/$m.steps")
        targs="--target-ms $TARGET_MS"
        if [ "$m" = xor ]; then steps=$XOR_STEPS; targs="--steps $XOR_STEPS"; fi
        # each ratio between neighbours: nnc, the SGEMM right after it,
        # nnc on 1 thread, the SGEMM on 1 thread (the machine's own
        # scaling: on a shared VM the second core is not always a whole
        # core), then PyTorch the same way
        t2=$(nnc_ms "$out/$m.fused" "$steps" "$batch" "$THREADS") && echo "$t2" >> "$out/$m.ref.ms"
        s2=
        [ "$have_sgemm" = 1 ] && s2=$(sgemm_gflops) && echo "$s2" >> "$out/sgemm.gflops"
        [ -n "$t2" ] && add_ratio "$(calc "$flops / ($t2 / 1000) / 1e9")" "$s2" "$out/$m.share.rounds"
        t1=$(nnc_ms "$out/$m.fused" "$steps" "$batch" 1) && echo "$t1" >> "$out/$m.t1.ms"
        add_ratio "$t1" "$t2" "$out/$m.scale.rounds"
        [ "$have_sgemm" = 1 ] && s1=$(sgemm_gflops 1) && add_ratio "$s2" "$s1" "$out/sgemm.scale.rounds"
        if [ "$have_torch" = 1 ]; then
            # $targs is split into its two words on purpose
            tt=$(torch_ms "$m" "$THREADS" $targs) && echo "$tt" >> "$out/$m.torch.ms"
            add_ratio "$tt" "$t2" "$out/$m.vs_torch.rounds"
            # 1 thread each: a comparison that another tenant busy on one
            # of the two cores distorts far less than the 2-thread one
            tt1=$(torch_ms "$m" 1 $targs) && echo "$tt1" >> "$out/$m.torch1.ms"
            add_ratio "$tt1" "$t1" "$out/$m.vs_torch1.rounds"
        fi
    done
    # OpenBLAS on mnist_mlp's products, against an SGEMM run just before
    if [ "$have_sgemm" = 1 ] && sp=$(sgemm_gflops) && p=$(products_gflops); then
        add_ratio "$p" "$sp" "$out/sgemm.products.rounds"
    fi
    r=$((r + 1))
done
sgemm=$( [ "$have_sgemm" = 1 ] && median < "$out/sgemm.gflops") || sgemm=
corename=$(sed -n 's/.*core=\([^ ]*\).*/\1/p' "$out/sgemm.last" 2> /dev/null)

T2=$out/refs.tsv
row "$T2" model batch "nnc ms/step" "PyTorch ms/step" "PyTorch/nnc" "nnc GFLOP/s" \
    "of SGEMM" "nnc 1T ms/step" "2T speedup" "PyTorch 1T ms/step" "PyTorch/nnc 1T"
for m in $refs; do
    batch=$(statval batch "$out/$m.fused.stats")
    flops=$(statval flops_per_step "$out/$m.fused.stats")
    ms=$(median < "$out/$m.ref.ms") || { err "$m: no reference timing"; continue; }
    t1=$(median < "$out/$m.t1.ms") || t1=
    tt=$( [ "$have_torch" = 1 ] && median < "$out/$m.torch.ms") || tt=
    tt1=$( [ "$have_torch" = 1 ] && median < "$out/$m.torch1.ms") || tt1=
    gf=$(calc "$flops / ($ms / 1000) / 1e9")
    ratio=-; x=$(rounds "$m.vs_torch") && ratio="$(fmt "$x")x"
    share=-; x=$(rounds "$m.share") && share=$(pct "$x")
    scale=-; x=$(rounds "$m.scale") && scale="$(fmt "$x")x"
    ratio1=-; x=$(rounds "$m.vs_torch1") && ratio1="$(fmt "$x")x"
    row "$T2" "$m" "$batch" "$(fmt "$ms")" "$(fmt "$tt")" "$ratio" "$(fmt "$gf")" \
        "$share" "$(fmt "$t1")" "$scale" "$(fmt "$tt1")" "$ratio1"
done

# ---- 3. targets ---------------------------------------------------------------

T3=$out/targets.tsv
row "$T3" target measured verdict
# target TEXT MEASURED CONDITION: one row; CONDITION is an awk expression,
# empty when the number could not be measured
target() {
    if [ -z "$3" ]; then v="n/a"
    elif [ "$(calc "$3")" = 1 ]; then v=met
    else v=MISSED; fi
    row "$T3" "$1" "$2" "$v"
}
val() { cat "$out/$1" 2> /dev/null; }
arena_ratio() {
    [ -f "$out/$1.fused.stats" ] || return 0
    calc "$(statval arena_bytes "$out/$1.fused.stats") / $(statval arena_bytes "$out/$1.unfused.stats")"
}

# measured NAME FORMATTER: the median of NAME's rounds and their range
measured() {
    x=$(rounds "$1") || return 0
    echo "$($2 "$x") (rounds $(span "$1" "$2"))"
}
times_x() { echo "$(fmt "$1")x"; }
# cond NAME OP: NAME's median compared by OP (">= 1.5", say), as the awk
# expression target() evaluates; empty when NAME was not measured
cond() { x=$(rounds "$1") && echo "$x $2"; }

target "mnist_cnn: fused >= 1.5x faster than unfused" \
    "$(measured mnist_cnn.speedup times_x)" "$(cond mnist_cnn.speedup ">= 1.5")"
x=$(arena_ratio mnist_cnn)
target "mnist_cnn: fused arena >= 30% smaller" \
    "${x:+$(calc_int "100 - 100 * $x")% smaller}" "${x:+$x <= 0.7}"
target "mnist_cnn: >= 3x faster than PyTorch" \
    "$(measured mnist_cnn.vs_torch times_x)" "$(cond mnist_cnn.vs_torch ">= 3")"
target "mnist_cnn: >= 50% of SGEMM GFLOP/s" \
    "$(measured mnist_cnn.share pct)" "$(cond mnist_cnn.share ">= 0.5")"
blas=$(rounds sgemm.products) || blas=
target "mnist_mlp: >= 60% of SGEMM GFLOP/s" \
    "$(measured mnist_mlp.share pct)${blas:+; OpenBLAS on its products alone: $(pct "$blas")}" \
    "$(cond mnist_mlp.share ">= 0.6")"
xn=$(median < "$out/xor.ref.ms" 2> /dev/null) || xn=
xt=$(median < "$out/xor.torch.ms" 2> /dev/null) || xt=
target "xor: $XOR_STEPS steps >= 1000x faster than PyTorch" \
    "$(measured xor.vs_torch times_x)${xt:+; $(fmt "$(calc "$xn * $XOR_STEPS")") ms vs $(fmt "$(calc "$xt * $XOR_STEPS")") ms}" \
    "$(cond xor.vs_torch ">= 1000")"
sx=$(rounds sgemm.scale) || sx=
target "mnist_cnn: 2 threads >= 1.8x faster than 1" \
    "$(measured mnist_cnn.scale times_x)${sx:+; SGEMM $THREADS threads vs 1: $(fmt "$sx")x}" \
    "$(cond mnist_cnn.scale ">= 1.8")"
x=$(for n in $built; do val "$n.nnc_s"; done | sort -g | tail -1)
target "nnc --main < 0.2 s on every example (slowest)" "${x:+$(fmt "$x") s}" "${x:+$x < 0.2}"
x=$(for n in $built; do val "$n.fused.gcc_s"; val "$n.unfused.gcc_s"; done | sort -g | tail -1)
target "gcc -O2 of nnc's output < 20 s (slowest)" "${x:+$(fmt "$x") s}" "${x:+$x < 20}"

# ---- 4. where the time goes: nnc --profile, THREADS threads and 1 -----------------

# profile_rows BIN STEPS THREADS: "kernel<TAB>line<TAB>us/step" of each row
# of BIN's --profile table after --bench STEPS
profile_rows() {
    OMP_NUM_THREADS=$3 "$1" --bench "$2" 2>&1 > /dev/null |
        awk '/^k[0-9]+_/ { printf "%s\t%s\t%s\n", $1, $2, $4 }'
}

PROFILE_MODELS="mnist_mlp mnist_cnn"
profiled=""
for m in $PROFILE_MODELS; do
    case " $built " in *" $m "*) ;; *) continue ;; esac
    say "== $m: nnc --profile, $THREADS threads and 1"
    if ! "$NNC" --main --profile "dsl-examples/$m.nn" -o "$out/$m.profile.c" ||
       ! gcc $GEN_CFLAGS -o "$out/$m.profile" "$out/$m.profile.c" -lz -lm; then
        err "$m: the --profile build failed"; continue
    fi
    steps=$(cat "$out/$m.steps")
    profile_rows "$out/$m.profile" "$steps" "$THREADS" > "$out/$m.prof2"
    profile_rows "$out/$m.profile" "$steps" 1 > "$out/$m.prof1"
    [ -s "$out/$m.prof2" ] && [ -s "$out/$m.prof1" ] || { err "$m: no profile table"; continue; }
    T4=$out/$m.profile.tsv
    row "$T4" kernel line "us/step" share "1T us/step" "${THREADS}T speedup"
    # one run each: a kernel's share and how it scales, not a ratio to trust
    # to the percent (the bench's medians are above)
    awk -F'\t' 'NR == FNR { one[$1] = $3; next }
        { all += $3; all1 += one[$1]; k[++n] = $1; l[n] = $2; us[n] = $3 }
        END { k[++n] = "all kernels"; l[n] = ""; us[n] = all; one[k[n]] = all1
              for (i = 1; i <= n; i++) {
                  x = us[i] > 0 ? sprintf("%.2fx", one[k[i]] / us[i]) : "-"
                  printf "%s\t%s\t%.1f\t%.1f%%\t%.1f\t%s\n", k[i], l[i], us[i],
                         100 * us[i] / all, one[k[i]], x } }' \
        "$out/$m.prof1" "$out/$m.prof2" >> "$T4"
    profiled="$profiled $m"
done

# ---- output ---------------------------------------------------------------------

cpu=$(lscpu 2> /dev/null | sed -n 's/^Model name: *//p' | head -1)
# A VM's model name can stay "Intel Xeon Processor" while the host under it
# changes; family and model numbers tell such runs apart.
cpu_model=$(awk -F': *' '/^cpu family/ { f = $2 } /^model\t/ { m = $2 }
                         END { if (f != "") printf "family %s, model %s", f, m }' /proc/cpuinfo 2> /dev/null)
cpu="${cpu:-unknown CPU}${cpu_model:+ ($cpu_model)}"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
our_cpu_s > "$out/ours"
other=$(other_load "$(cat "$out/ours")")
# A busy neighbour on one of two cores makes every OpenMP barrier wait for
# a time slice: say so next to the numbers it spoils.
[ "$(calc "$other > 0.25")" = 1 ] &&
    note "other processes kept $other cores busy during this run: the 2-thread" \
         "figures (and the ratios built on them) measure that contention as much" \
         "as the code; the 1-thread columns are the steadier comparison"
header() {
    echo "machine: $cpu, $(nproc) cores, $date_start," \
         "load average at start $load_start, at end $load_end;" \
         "other processes kept $other cores of $(nproc) busy on average during the run"
    echo "command: make bench (NNC=$NNC BUILD=$BUILD tests/bench.sh), $ROUNDS alternating" \
         "rounds, medians (of times, and of each round's ratios), ~$TARGET_MS ms per timed run," \
         "$THREADS threads unless noted;" \
         "$(gcc --version | head -1)${torch_version:+, PyTorch $torch_version}"
    if [ -n "$sgemm" ]; then
        echo "SGEMM ceiling: OpenBLAS cblas_sgemm ${SGEMM_N}x${SGEMM_N}, $THREADS threads," \
             "core $corename: $(fmt "$sgemm") GFLOP/s (median of $(wc -l < "$out/sgemm.gflops") runs," \
             "$(fmt "$(sort -g "$out/sgemm.gflops" | head -1)")-$(fmt "$(sort -g "$out/sgemm.gflops" | tail -1)"))"
    fi
}
report_text() {
    header
    echo
    echo "fused against --no-fuse (ms per training step; speedup = unfused/fused, run by run)"
    text_table "$T1"
    echo
    echo "references (GFLOP/s = nnc --stats flops_per_step / time per step; ratios are medians of"
    echo "each round's: \"of SGEMM\" against the SGEMM run right after nnc's, 2T speedup against"
    echo "the 1-thread run after that, PyTorch/nnc against PyTorch's runs that follow)"
    text_table "$T2"
    echo
    echo "targets"
    text_table "$T3"
    for m in $profiled; do
        echo
        echo "$m: where a step's time goes (nnc --profile, --bench $(cat "$out/$m.steps"), one run on $THREADS threads and one on 1)"
        text_table "$out/$m.profile.tsv"
    done
    [ -f "$out/notes" ] && { echo; sed 's/^/note: /' "$out/notes"; }
    [ -f "$out/errors" ] && { echo; sed 's/^/error: /' "$out/errors"; }
}
report_md() {
    echo "# nnc benchmark"
    echo
    header | sed 's/^/- /'
    echo
    echo "## Fused against --no-fuse"
    echo
    echo "ms per training step, median of $ROUNDS alternating runs; speedup = unfused / fused,"
    echo "the median of each round's ratio."
    echo
    md_table "$T1"
    echo
    echo "## References"
    echo
    echo "Measured in the same rounds. nnc GFLOP/s = flops_per_step (nnc --stats) / time per step;"
    echo "1T = OMP_NUM_THREADS=1. Each ratio is the median of the rounds' ratios, each between"
    echo "runs seconds apart: \"of SGEMM\" against the SGEMM run right after nnc's, the 2T speedup"
    echo "against nnc's 1-thread run after that, PyTorch/nnc against PyTorch's runs that follow."
    echo
    md_table "$T2"
    echo
    echo "## Targets"
    echo
    md_table "$T3"
    for m in $profiled; do
        echo
        echo "## Where $m's step goes"
        echo
        echo "\`nnc --profile\`, \`--bench $(cat "$out/$m.steps")\`: one run on $THREADS threads and one on 1, after"
        echo "the rounds above; each kernel call timed by its caller (its threads' start and"
        echo "barrier included). One run each, so a kernel's share and how it scales, not a"
        echo "figure to compare with the medians above to the percent."
        echo
        md_table "$out/$m.profile.tsv"
    done
    [ -f "$out/notes" ] && { echo; sed 's/^/- note: /' "$out/notes"; }
    true
}

echo
report_text
report_md > "$md"
echo
echo "wrote $md"
[ ! -f "$out/errors" ]
