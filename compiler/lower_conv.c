/* lower_conv.c — kernels of the convolutional ops: convolution and its
 * two gradients, max and average pooling, batch normalisation, dropout.
 *
 * requires: one op per kernel; tensors in NCHW order (per sample
 * [C, H, W]), convolution weights [F, C, KH, KW] as PyTorch lays them out.
 * guarantees: loop nests with literal bounds; the outer loop runs over
 * independent planes or channels under OpenMP; every sum runs in a fixed
 * order (weight gradients and batch statistics over the batch in sample
 * order, each result owned by one thread), so a given thread count
 * always gives the same bits. No atomics and no allocation: scratch
 * lives on the stack, bounded per buffer: rows by WIDE_MAX elements, a
 * sample's padded dy planes by DYZ_MAX, a transposed dy block by
 * DYT_MAX, transposed weights by WT_MAX (shapes beyond them take the
 * untiled nests).
 *
 * Convolutions come in two loop shapes:
 *   - "wide rows" (stride 1, no padding): an output plane is computed as
 *     if it were W wide like the input instead of OW, so that output p
 *     and input p + i*W + j line up for every window offset (i, j) and
 *     the innermost loop is one long contiguous, vectorisable run; the
 *     KW-1 surplus columns per row are computed and dropped.
 *   - "rows" (any stride and padding): one output row at a time over the
 *     rows and columns whose window lies inside the input, ranges worked
 *     out at compile time (padding adds zeros, so those terms are simply
 *     not summed).
 * In the wide-rows forms, windows up to 5x5 have their taps unrolled
 * into one pass over the plane (emit_tap_loop, emit_weight_rows): a sum
 * stays in a register across the taps instead of going to memory and
 * back once per tap, with the same order of summation. The passes are
 * blocked so that one load feeds several sums: the forward sums 4
 * filters' planes per iteration, the input gradient 4 channels' planes,
 * the weight gradient 2 filters' taps over rows of lanes, for a group of
 * channels that share one copy of dy. Blocking changes which iteration
 * computes an output, never the order of its sum.
 * Where the shapes allow, the three convolution products are register-
 * tiled instead (emit_tap_tiles, emit_small_plane_tiles,
 * lower_conv2d_grad_weight_tiled): 8 planes by 2 vectors of sums stay in
 * registers over the whole reduction.
 * Long sums (weight gradients, batch statistics) are kept in LANES
 * partial sums added up in lane order at the end: vectorisable without
 * -ffast-math, and still one fixed order.
 *
 * Fused kernels (lower_fused.c) reuse these loop nests: the forward
 * convolution with an epilogue and a pooling per plane, the gradients
 * reading dy through a folded activation gradient, batch norm's
 * statistics with its normalisation and its gradients in one channel
 * loop. */
#include "nnc.h"

#include <stdlib.h>
#include <string.h>

enum {
    WIDE_MAX = 8192, /* elements of a stack row buffer (64 KiB in f64) */
};

typedef struct Dims {
    int n, c, h, w;
} Dims;

static Dims nchw(const Shape *s)
{
    return (Dims){s->dim[0], s->dim[1], s->dim[2], s->dim[3]};
}

/* partial sums per reduction: one 512-bit vector of the element type */
static int lanes(const Emitter *e)
{
    return e->o->f64 ? 8 : 16;
}

/* tmpl with every '#' replaced by idx */
static void subst(char *buf, size_t len, const char *tmpl, const char *idx)
{
    size_t at = 0;
    for (const char *t = tmpl; *t && at + 1 < len; t++) {
        if (*t == '#')
            at += (size_t)snprintf(buf + at, len - at, "%s", idx);
        else
            buf[at++] = *t;
        if (at >= len)
            at = len - 1;
    }
    buf[at] = '\0';
}

/* ---------------------------------------------------------------- */
/* shared pieces                                                     */

/* `stmt` for p in [0, count) as loops whose trip counts are multiples of
 * 16, 8 and 4, then the rest: gcc -O2 vectorises a loop only when its
 * trip count is a multiple of the vector length (its cheap cost model
 * allows no remainder loop), so each piece gets the widest vectors that
 * divide it. */
static void emit_vector_lines(Emitter *e, long count, const char *const *lines,
                              int nlines)
{
    static const int runs[] = {16, 8, 4, 1};
    long at = 0;
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        long end = at + (count - at) / runs[r] * runs[r];
        if (end == at)
            continue;
        emit_open(e, "for (int p = %ld; p < %ld; p++)", at, end);
        for (int l = 0; l < nlines; l++)
            emit(e, "%s", lines[l]);
        emit_close(e, NULL);
        at = end;
    }
}

static void emit_vector_loop(Emitter *e, long count, const char *stmt)
{
    emit_vector_lines(e, count, &stmt, 1);
}

enum {
    MAX_TAPS = 25, /* windows up to 5x5 get their taps unrolled */
    MAX_BLOCK = 4, /* planes summed together in one tap loop */
};

/* How many planes (of `count`, each `width` elements on the stack) one
 * tap loop sums together: each input element it loads then feeds that
 * many sums instead of one. Four measured best on mnist_cnn (64 ms a
 * step against 80 with two and 67 with eight, 1 thread, AVX-512). */
static int plane_block(int count, long width)
{
    for (int b = MAX_BLOCK; b > 1; b /= 2)
        if (count % b == 0 && b * width <= WIDE_MAX)
            return b;
    return 1;
}

/* acc[k][p] += wt[k * wstride + t] * src[p + shift(t)] for every plane k
 * of the block of B and every tap t = i * KW + j of the window, in order,
 * for p in [0, count): one pass in which each acc element stays in a
 * register across all taps (instead of a load and a store per multiply-
 * add) and each src element, loaded once per tap, feeds all B sums. Each
 * element's sum runs in the same order as tap by tap, plane by plane, so
 * the bits are the same. shift(t) = base + sign * (i * row + j). */
static void emit_tap_loop(Emitter *e, long count, int KH, int KW,
                          const char *src, long base, int sign, int row,
                          int B, long wstride)
{
    enum { LINE = 48 + MAX_BLOCK * 40 };
    char *lines[MAX_TAPS + 2];
    char buf[MAX_TAPS + 2][LINE];
    int n = 0;
    size_t at = (size_t)snprintf(buf[n], LINE, "%s", e->real);
    for (int k = 0; k < B; k++)
        at += (size_t)snprintf(buf[n] + at, LINE - at, "%s a%d = acc[%d][p]",
                               k ? "," : "", k, k);
    snprintf(buf[n] + at, LINE - at, ";");
    lines[n] = buf[n];
    n++;
    for (int i = 0; i < KH; i++)
        for (int j = 0; j < KW; j++, n++) {
            int t = i * KW + j;
            at = (size_t)snprintf(buf[n], LINE, "{ const %s v = %s[p + %ld];",
                                  e->real, src,
                                  base + sign * (long)(i * row + j));
            for (int k = 0; k < B; k++)
                at += (size_t)snprintf(buf[n] + at, LINE - at,
                                       " a%d += wt[%ld] * v;", k,
                                       k * wstride + t);
            snprintf(buf[n] + at, LINE - at, " }");
            lines[n] = buf[n];
        }
    at = 0;
    for (int k = 0; k < B; k++)
        at += (size_t)snprintf(buf[n] + at, LINE - at, "%sacc[%d][p] = a%d;",
                               k ? " " : "", k, k);
    lines[n] = buf[n];
    n++;
    emit_vector_lines(e, count, (const char *const *)lines, n);
}

/* ---------------------------------------------------------------- */
/* register tiles over planes                                        */

/* The same sums as emit_tap_loop, with the sums of a tile of TILE_ROWS
 * planes by TILE_VECS vector registers of positions held in registers
 * across the whole outer loop (channels or filters) instead of going
 * through memory once per channel: 16 independent accumulators, enough
 * multiply-adds in flight to hide their latency, where emit_tap_loop's
 * four sums per position waited on each other. Each tap loads
 * TILE_VECS vectors of the source, and each weight, broadcast, feeds
 * TILE_VECS sums. The order of every sum is the same (outer loop, then
 * taps in order), so the bits are too. */
enum { TILE_ROWS = 8, TILE_VECS = 2, MAX_LANES = 16 };

typedef struct TapTile {
    int rows;           /* planes summed together (acc[rows][...]) */
    int KH, KW;
    const char *outer;  /* the outer loop's variable ... */
    int outer_count;    /* ... and trip count */
    const char *src;    /* the source plane at the outer loop's step: a
                         * C expression of `outer` */
    const char *wt;     /* the weights of plane 0 at that step, ditto */
    long wstride;       /* weights of plane k at wt[k * wstride + tap] */
    long base;          /* tap (i, j) reads src[p + base + sign * (i * row + j)] */
    int sign, row;
} TapTile;

/* One row k of a tile's step: the scalar `a_expr`, broadcast, times each
 * of the nv vectors b[v], into the sums s[k][v]. */
static void emit_tile_row(Emitter *e, int k, const char *a_expr, int nv)
{
    char line[192];
    size_t at = (size_t)snprintf(line, sizeof line, "{ const %s a = %s;",
                                 e->real, a_expr);
    for (int v = 0; v < nv; v++)
        at += (size_t)snprintf(line + at, sizeof line - at,
                               " s[%d][%d] += a * b[%d];", k, v, v);
    snprintf(line + at, sizeof line - at, " }");
    emit(e, "%s", line);
}

/* One tile of t->rows planes by nv vectors at position p0, summed in
 * registers and stored to acc[k][p0 ...]. */
static void emit_tap_tile(Emitter *e, const TapTile *t, int nv)
{
    const char *R = e->real;
    emit(e, "nnc_vec s[%d][%d] = {{{0}}};", t->rows, nv);
    emit_open(e, "for (int %s = 0; %s < %d; %s++)", t->outer, t->outer,
              t->outer_count, t->outer);
    emit(e, "const %s *src = %s + p0;", R, t->src);
    emit(e, "const %s *wt = %s;", R, t->wt);
    for (int i = 0; i < t->KH; i++)
        for (int j = 0; j < t->KW; j++) {
            long off = t->base + t->sign * (long)(i * t->row + j);
            emit_open(e, "%s", "");
            emit(e, "nnc_vec b[%d];", nv);
            for (int v = 0; v < nv; v++)
                emit(e, "b[%d] = *(const nnc_vec *)(src + %ld + %d * "
                     "NNC_LANES);", v, off, v);
            for (int k = 0; k < t->rows; k++) {
                char a[48];
                snprintf(a, sizeof a, "wt[%ld]", k * t->wstride + i * t->KW + j);
                emit_tile_row(e, k, a, nv);
            }
            emit_close(e, NULL);
        }
    emit_close(e, NULL);
    emit_open(e, "for (int k = 0; k < %d; k++)", t->rows);
    for (int v = 0; v < nv; v++)
        emit(e, "*(nnc_vec *)(acc[k] + p0 + %d * NNC_LANES) = s[k][%d];", v,
             v);
    emit_close(e, NULL);
}

/* Vector registers of positions per tile: TILE_VECS, or one for planes
 * narrower than that on the widest vectors (8 sums then, still as many
 * as two FMA units with four cycles of latency keep busy). */
static int tile_vecs(long width)
{
    return width >= TILE_VECS * MAX_LANES ? TILE_VECS : 1;
}

/* acc[k][p] for p in [0, width): tiles of nv vectors, then one more
 * ending at width, overlapping the one before (it recomputes some
 * positions, with the same bits): no scalar remainder. When what is
 * left fits one vector, the last tile is one vector wide, so it
 * recomputes less (conv2 of mnist_cnn: 16 positions for its last 13,
 * not 32); which case applies depends on the vector width, so the
 * choice is a constant expression the C compiler folds. */
static void emit_tap_tiles(Emitter *e, const TapTile *t, long width)
{
    int nv = tile_vecs(width);
    lower_vec_type(e);
    emit_open(e, "for (int p0 = 0; p0 + %d * NNC_LANES <= %ld; p0 += %d * "
              "NNC_LANES)", nv, width, nv);
    emit_tap_tile(e, t, nv);
    emit_close(e, NULL);
    if (nv > 1) {
        emit_open(e, "if (%ld %% (%d * NNC_LANES) != 0 && %ld %% (%d * "
                  "NNC_LANES) <= NNC_LANES)", width, nv, width, nv);
        emit(e, "const int p0 = %ld - NNC_LANES; /* the last positions, one "
             "vector */", width);
        emit_tap_tile(e, t, 1);
        emit_close(e, NULL);
        emit_open(e, "else if (%ld %% (%d * NNC_LANES) != 0)", width, nv);
    } else {
        emit_open(e, "if (%ld %% NNC_LANES != 0)", width);
    }
    emit(e, "const int p0 = %ld - %d * NNC_LANES; /* the last positions */",
         width, nv);
    emit_tap_tile(e, t, nv);
    emit_close(e, NULL);
}

/* Whether a plane of `width` positions takes register tiles of `rows`
 * planes: at least one vector wide on the widest vectors. */
static bool tiles_fit(int count, int rows, long width)
{
    return count % rows == 0 && width >= MAX_LANES && rows * width <= WIDE_MAX;
}

enum { MAX_SUMS = 32 }; /* sums one lane loop may carry */

/* lines[s] = "NAMES[s][at] += EXPR_s(idx);" for each of n sums */
static void lane_stmts(char (*lines)[320], int n, const char *const *names,
                       const char *const *tmpls, const char *at,
                       const char *idx)
{
    for (int s = 0; s < n; s++) {
        char expr[256];
        subst(expr, sizeof expr, tmpls[s], idx);
        snprintf(lines[s], sizeof lines[s], "%s[%s] += %s;", names[s], at,
                 expr);
    }
}

/* The remainder of emit_lane_loops_n: lanes[p - from] += EXPR(p) for p
 * in [from, count), fewer than LANES, in vectorisable pieces. */
static void emit_lane_rest(Emitter *e, int n, const char *const *names,
                           long from, long count, const char *const *tmpls)
{
    char lines[MAX_SUMS][320];
    const char *ptrs[MAX_SUMS];
    char idx[48];
    if (from >= count)
        return;
    for (int s = 0; s < n; s++)
        ptrs[s] = lines[s];
    snprintf(idx, sizeof idx, "%ld + p", from);
    lane_stmts(lines, n, names, tmpls, "p", idx);
    emit_vector_lines(e, count - from, ptrs, n);
}

/* lanes[p % LANES] += EXPR(p) for p in [0, count), for n sums in one
 * loop (each sum's lanes still add up in the same order, so the bits are
 * those of one loop per sum): whole rows of LANES first, then the
 * remainder in vectorisable pieces. */
static void emit_lane_loops_n(Emitter *e, int n, const char *const *names,
                              long count, const char *const *tmpls)
{
    int L = lanes(e);
    long full = count / L * L;
    char lines[MAX_SUMS][320];
    if (full > 0) {
        lane_stmts(lines, n, names, tmpls, "q", "p0 + q");
        emit_open(e, "for (int p0 = 0; p0 < %ld; p0 += %d)", full, L);
        emit_open(e, "for (int q = 0; q < %d; q++)", L);
        for (int s = 0; s < n; s++)
            emit(e, "%s", lines[s]);
        emit_close(e, NULL);
        emit_close(e, NULL);
    }
    emit_lane_rest(e, n, names, full, count, tmpls);
}

static void emit_lane_loops(Emitter *e, const char *lanes_name, long count,
                            const char *expr_tmpl)
{
    emit_lane_loops_n(e, 1, &lanes_name, count, &expr_tmpl);
}

/* Output positions o in [lo, hi) whose window offset k lands inside an
 * input of size `in`: 0 <= o * stride + k - pad < in. */
static void valid_range(int k, int pad, int stride, int in, int out, int *lo,
                        int *hi)
{
    *lo = k >= pad ? 0 : (pad - k + stride - 1) / stride;
    int last = in - 1 + pad - k; /* o * stride <= last */
    *hi = last < 0 ? 0 : last / stride + 1;
    if (*hi > out)
        *hi = out;
    if (*hi < *lo)
        *hi = *lo;
}

/* static const int NAME[n] = {...}; the lower (hi = false) or upper ends
 * of valid_range for every offset, 16 to a line */
static void emit_range_table(Emitter *e, const char *name, bool hi, int n,
                             int pad, int stride, int in, int out)
{
    emit_open(e, "static const int %s[%d] =", name, n);
    for (int k0 = 0; k0 < n; k0 += 16) {
        char line[256];
        size_t at = 0;
        for (int k = k0; k < n && k < k0 + 16; k++) {
            int l, h;
            valid_range(k, pad, stride, in, out, &l, &h);
            at += (size_t)snprintf(line + at, sizeof line - at, "%d,%s",
                                   hi ? h : l,
                                   k + 1 < n && k + 1 < k0 + 16 ? " " : "");
        }
        emit(e, "%s", line);
    }
    emit_close(e, ";");
}

/* The ranges of output rows and columns each window offset reaches. */
static void emit_window_tables(Emitter *e, const IrOp *o, Dims in, Dims out)
{
    emit(e, "/* output rows (columns) whose window row i (column j) falls "
         "inside the input, not in its padding */");
    static const char *const names[2][2] = {{"oh_lo", "oh_hi"},
                                            {"ow_lo", "ow_hi"}};
    int k[2] = {o->attr.win.kh, o->attr.win.kw};
    int pad[2] = {o->attr.win.ph, o->attr.win.pw};
    int stride[2] = {o->attr.win.sh, o->attr.win.sw};
    int size_in[2] = {in.h, in.w}, size_out[2] = {out.h, out.w};
    for (int d = 0; d < 2; d++)
        for (int hi = 0; hi < 2; hi++)
            emit_range_table(e, names[d][hi], hi, k[d], pad[d], stride[d],
                             size_in[d], size_out[d]);
}

/* Elements of a wide plane: OH rows W apart, the last one OW long. */
static long wide_size(Dims in, Dims out)
{
    return (long)(out.h - 1) * in.w + out.w;
}

static bool use_wide_rows(const IrOp *o, Dims in, Dims out)
{
    /* no padding on any side: 'same' padding of an even kernel puts its
     * one row (column) at the bottom (right) only, with ph (pw) 0, and
     * shows only in the output being as large as the input */
    return o->attr.win.sh == 1 && o->attr.win.sw == 1 && o->attr.win.ph == 0 &&
           o->attr.win.pw == 0 && out.h == in.h - o->attr.win.kh + 1 &&
           out.w == in.w - o->attr.win.kw + 1 && wide_size(in, out) <= WIDE_MAX;
}

/* dst[oh * dst_row + ow] = src[oh * src_row + ow] over an [OH, OW] plane */
static void emit_plane_copy(Emitter *e, const char *dst, int dst_row,
                            const char *src, int src_row, Dims out)
{
    emit_open(e, "for (int oh = 0; oh < %d; oh++)", out.h);
    emit_open(e, "for (int ow = 0; ow < %d; ow++)", out.w);
    emit(e, "%s[oh * %d + ow] = %s[oh * %d + ow];", dst, dst_row, src,
         src_row);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

static void emit_zero(Emitter *e, const char *name, long n)
{
    char stmt[64];
    snprintf(stmt, sizeof stmt, "%s[p] = 0;", name);
    emit_vector_loop(e, n, stmt);
}

/* ---------------------------------------------------------------- */
/* reading dy through a folded activation gradient                   */

static void emit_grad_at_plane(Emitter *e, const IrOp *o, Dims d, Dims x,
                               const char *dyp, const char *pp,
                               const char *dst, int dst_row);

/* Rule conv_grad_place: the plane of dy at dy + off rebuilt from the
 * pooled gradient and the places (planes d.h * d.w apart, where dy's
 * are out.h * out.w) as maxpool2d_grad_at would store it. */
static void emit_dy_spread(Emitter *e, const IrOp *at, const char *src,
                           const char *dst, int dst_row, const char *off,
                           Dims out)
{
    Dims d = {.h = out.h / at->attr.win.kh, .w = out.w / at->attr.win.kw};
    long plane = (long)out.h * out.w, pooled = (long)d.h * d.w;
    /* every caller writes off as "PLANE * plane": the pooled plane's
     * offset is PLANE * pooled */
    char tail[32];
    int n = snprintf(tail, sizeof tail, " * %ld", plane);
    size_t len = strlen(off);
    if (len <= (size_t)n || strcmp(off + len - (size_t)n, tail)) {
        fprintf(stderr, "nnc: internal error: plane offset '%s' is not "
                "'PLANE%s'\n", off, tail);
        abort();
    }
    emit(e, "const long pq = %.*s * %ld; /* the pooled plane */",
         (int)(len - (size_t)n), off, pooled);
    emit(e, "const %s *%s = dy + pq, *pg = place + pq;", e->real, src);
    emit_grad_at_plane(e, at, d, out, src, "pg", dst, dst_row);
}

void lower_dy_spread(Emitter *e, const IrOp *at, const Shape *dys,
                     const char *off, const char *dst)
{
    Dims out = nchw(dys);
    emit_dy_spread(e, at, "dyg", dst, out.w, off, out);
}

/* dst[oh * dst_row + ow] = the consumed gradient of the [OH, OW] plane at
 * dy + off, read through the pointers `src` (and `ysrc` into y): a copy
 * the gradient loops make anyway, so a folded mask costs no pass. */
static void emit_dy_copy(Emitter *e, const IrOp *act, const char *src,
                         const char *ysrc, const char *dst, int dst_row,
                         const char *off, Dims out)
{
    char at[32], dyv[64], yv[64], el[256];
    if (act && act->op == OP_MAXPOOL2D_GRAD_AT) {
        emit_dy_spread(e, act, src, dst, dst_row, off, out);
        return;
    }
    emit(e, "const %s *%s = dy + %s;", e->real, src, off);
    if (act)
        emit(e, "const %s *%s = y + %s;", e->real, ysrc, off);
    snprintf(at, sizeof at, "[oh * %d + ow]", out.w);
    snprintf(dyv, sizeof dyv, "%s%s", src, at);
    snprintf(yv, sizeof yv, "%s%s", ysrc, at);
    lower_dy_elem(e, act, dyv, yv, el, sizeof el);
    emit_open(e, "for (int oh = 0; oh < %d; oh++)", out.h);
    emit_open(e, "for (int ow = 0; ow < %d; ow++)", out.w);
    emit(e, "%s[oh * %d + ow] = %s;", dst, dst_row, el);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* `dyf`: the plane of the consumed gradient at dy + off, read in place,
 * or, through `act`, masked into a copy on the stack first. */
static void emit_dy_plane(Emitter *e, const IrOp *act, const char *off,
                          Dims out)
{
    if (!act) {
        emit(e, "const %s *dyf = dy + %s;", e->real, off);
        return;
    }
    emit(e, "%s dym[%ld]; /* dy through %s */", e->real, (long)out.h * out.w,
         op_names[act->op]);
    emit_dy_copy(e, act, "dyg", "yg", "dym", out.w, off, out);
    emit(e, "const %s *dyf = dym;", e->real);
}

/* ---------------------------------------------------------------- */
/* convolution                                                       */

bool conv_plane_on_stack(const Graph *g, const IrOp *o)
{
    Dims x = nchw(&g->ops[o->in[0]].shape), y = nchw(&o->shape);
    return (long)y.h * (x.w > y.w ? x.w : y.w) <= WIDE_MAX;
}

static void lower_pool_places(Emitter *e, const IrOp *o, Dims x, Dims p,
                              const char *place);

/* The rows of a [y.h, y.w] output plane that the epilogue must compute:
 * all of them, but where the plane goes only to a pooling without
 * padding, whose windows leave its last rows out (floor): conv2 of
 * mnist_cnn, 11x11 pooled 2x2 to 5x5, needs rows 0..9, 128 wide-row
 * positions instead of 141 (144 computed). The columns stay, so every
 * row the pooling copies is whole. */
static Dims conv_rows_used(const ConvEpilogue *ep, Dims y)
{
    if (!ep || !ep->pool || ep->stores || ep->pool->attr.win.ph != 0)
        return y;
    const IrOp *p = ep->pool;
    Dims py = nchw(&p->shape), used = y;
    used.h = (py.h - 1) * p->attr.win.sh + p->attr.win.kh;
    return used.h < y.h ? used : y;
}

/* Whether the pooling of an epilogue's plane is a max-pooling whose
 * windows tile it from the corner (stride = window, no padding) and
 * nothing else reads the plane: then act can hold it window element by
 * window element (emit_window_elements), and the pooling is a few
 * contiguous vector passes instead of strided reads of each band. */
static bool pool_by_window_element(const ConvEpilogue *ep)
{
    const IrOp *p = ep->pool;
    return p && !ep->stores && p->op == OP_MAXPOOL2D &&
           maxpool_windows_disjoint(p) && p->attr.win.ph == 0 &&
           p->attr.win.pw == 0;
}

/* The epilogue of every element some window reads, left in act as
 * KH * KW planes of the pooled size: element (i, j) of window (ph, pw)
 * at act[(i * KW + j) * windows + ph * PW + pw]. The innermost loop
 * reads acc with stride KW, which gcc vectorises with shuffles; the
 * pooling's passes then read act contiguously. On mnist_cnn's conv1
 * (26 x 26 pooled 2 x 2) the band-by-band pooling was most of its
 * forward kernel (docs/performance.md). */
static void emit_window_elements(Emitter *e, const ConvEpilogue *ep, Dims y,
                                 const char *acc, int row)
{
    const IrOp *p = ep->pool;
    Dims py = nchw(&p->shape);
    long oplane = (long)y.h * y.w;
    int KH = p->attr.win.kh, KW = p->attr.win.kw;
    emit(e, "/* act: element (i, j) of every window in a plane of its own */");
    emit_open(e, "for (int ph = 0; ph < %d; ph++)", py.h);
    emit_open(e, "for (int i = 0; i < %d; i++)", KH);
    emit_open(e, "for (int j = 0; j < %d; j++)", KW);
    emit_open(e, "for (int pw = 0; pw < %d; pw++)", py.w);
    emit(e, "const int q = (i * %d + j) * %d + ph * %d + pw;", KW,
         py.h * py.w, py.w);
    if (ep->indexed)
        emit(e, "const long at = (long)nf * %ld + (ph * %d + i) * %d + pw * "
             "%d + j;", oplane, KH, y.w, KW);
    emit(e, "const %s t0 = %s[(ph * %d + i) * %d + pw * %d + j];", e->real,
         acc, KH, row, KW);
    ep->store(e, ep->ctx);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* The max-pooling of act as emit_window_elements left it: one pass over
 * all windows per window element, in scan order, keeping the first
 * maximum (NaN winning) as emit_band_argmax does, and with `place` its
 * index in the window. */
static void emit_pool_window_elements(Emitter *e, const ConvEpilogue *ep)
{
    const IrOp *p = ep->pool;
    Dims py = nchw(&p->shape);
    int windows = py.h * py.w, elems = p->attr.win.kh * p->attr.win.kw;
    const char *R = e->real;
    emit(e, "%s top[%d];", R, windows);
    if (ep->place)
        emit(e, "int best[%d];", windows);
    emit_open(e, "for (int q = 0; q < %d; q++)", windows);
    emit(e, "top[q] = act[q];");
    if (ep->place)
        emit(e, "best[q] = 0;");
    emit_close(e, NULL);
    emit_open(e, "for (int t = 1; t < %d; t++)", elems);
    emit_open(e, "for (int q = 0; q < %d; q++)", windows);
    emit(e, "const %s v = act[t * %d + q];", R, windows);
    emit(e, "const int take = (v > top[q]) | (v != v);");
    if (ep->place)
        emit(e, "best[q] = take ? t : best[q];");
    emit(e, "top[q] = take ? v : top[q];");
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit(e, "memcpy(yp, top, sizeof top);");
    if (!ep->place)
        return;
    emit(e, "%s *pp = %s + (long)nf * %d;", R, ep->place, windows);
    emit(e, "%s at[%d];", R, windows);
    emit_open(e, "for (int q = 0; q < %d; q++)", windows);
    emit(e, "at[q] = (%s)best[q];", R);
    emit_close(e, NULL);
    emit(e, "memcpy(pp, at, sizeof at);");
}

/* The fused form's last step for one finished plane in `acc` (rows
 * `row` apart): each element in t0, with its flat index `at`, its place
 * in the plane `q` and the filter `f`, goes to the epilogue; then the
 * pooling of the plane the epilogue left in `act`. Only the part the
 * pooling reads is handed on (conv_rows_used, pool_by_window_element). */
static void emit_conv_epilogue(Emitter *e, const Graph *g,
                               const ConvEpilogue *ep, Dims y,
                               const char *acc, int row)
{
    long oplane = (long)y.h * y.w;
    bool by_element = pool_by_window_element(ep);
    Dims used = conv_rows_used(ep, y);
    if (used.h < y.h)
        emit(e, "/* rows %d.. are in no pooling window: not computed */",
             used.h);
    if (by_element) {
        emit_window_elements(e, ep, y, acc, row);
    } else {
        emit_open(e, "for (int oh = 0; oh < %d; oh++)", used.h);
        emit_open(e, "for (int ow = 0; ow < %d; ow++)", y.w);
        if (ep->pool)
            emit(e, "const int q = oh * %d + ow;", y.w);
        if (ep->stores || ep->indexed)
            emit(e, "const long at = (long)nf * %ld + oh * %d + ow;", oplane,
                 y.w);
        emit(e, "const %s t0 = %s[oh * %d + ow];", e->real, acc, row);
        ep->store(e, ep->ctx);
        emit_close(e, NULL);
        emit_close(e, NULL);
    }
    if (!ep->pool)
        return;
    Dims py = nchw(&ep->pool->shape);
    emit_open(e, "%s", "");
    emit(e, "/* %s of this plane, from the copy in act */",
         op_names[ep->pool->op]);
    emit(e, "%s *yp = %s + (long)nf * %ld;", e->real, ep->pooled,
         (long)py.h * py.w);
    if (by_element) {
        emit_pool_window_elements(e, ep);
    } else {
        emit(e, "const %s *xp = act;", e->real);
        if (ep->place)
            lower_pool_places(e, ep->pool, y, py, ep->place);
        else
            lower_pool_plane(e, g, ep->pool);
    }
    emit_close(e, NULL);
}

/* The forward sums one window tap at a time: i, j, then the plane. */
static void emit_conv2d_taps(Emitter *e, const IrOp *o, Dims x, Dims y,
                             bool wide, bool on_stack)
{
    int KH = o->attr.win.kh, KW = o->attr.win.kw;
    const char *R = e->real;
    emit_open(e, "for (int i = 0; i < %d; i++)", KH);
    emit_open(e, "for (int j = 0; j < %d; j++)", KW);
    emit(e, "const %s wv = wf[(c * %d + i) * %d + j];", R, KH, KW);
    if (wide) {
        emit(e, "const %s *xs = xc + i * %d + j;", R, x.w);
        emit_vector_loop(e, wide_size(x, y), "acc[p] += wv * xs[p];");
    } else {
        emit_open(e, "for (int oh = oh_lo[i]; oh < oh_hi[i]; oh++)");
        emit(e, "const int base = (oh * %d + i - %d) * %d + j - %d;",
             o->attr.win.sh, o->attr.win.ph, x.w, o->attr.win.pw);
        emit(e, "%s *yr = %s + oh * %d;", R, on_stack ? "acc" : "yp", y.w);
        emit_open(e, "for (int ow = ow_lo[j]; ow < ow_hi[j]; ow++)");
        emit(e, "yr[ow] += wv * xc[base + ow * %d];", o->attr.win.sw);
        emit_close(e, NULL);
        emit_close(e, NULL);
    }
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* float NAME[B][width], zeroed: a block of B planes on the stack */
static void emit_planes(Emitter *e, const char *name, int B, long width)
{
    char row[32];
    emit(e, "%s %s[%d][%ld];", e->real, name, B, width);
    emit_open(e, "for (int k = 0; k < %d; k++)", B);
    snprintf(row, sizeof row, "%s[k]", name);
    emit_zero(e, row, width);
    emit_close(e, NULL);
}

/* Planes narrower than a vector (conv3 of mnist_cnn: 3x3 outputs, 13
 * wide) turn the tile around: rows are the plane's SMALL_MAX or fewer
 * positions, columns two vectors of filters, so the weights are first
 * laid out as wT[(c, i, j)][f] (once per call, before the parallel
 * loop). Each tap is two vector loads of wT and a broadcast of x per
 * position; every output is still summed over channels, then taps, in
 * order: the same bits as the untiled nest. */
enum { SMALL_MAX = 12, SMALL_COLS = 32, WT_MAX = 40960 };

static bool small_tiles_fit(Dims x, Dims y, int taps, long width)
{
    return width < MAX_LANES && (long)y.h * y.w <= SMALL_MAX &&
           y.c % SMALL_COLS == 0 && (long)x.c * taps * y.c <= WT_MAX &&
           (long)y.c * width <= WIDE_MAX;
}

static void emit_weights_transposed(Emitter *e, int F, long K)
{
    emit(e, "/* the weights as wT[(c, i, j)][f], so a tile's filters are "
         "contiguous */");
    emit(e, "%s wT[%ld][%d];", e->real, K, F);
    emit_open(e, "for (int r = 0; r < %ld; r++)", K);
    emit_open(e, "for (int f = 0; f < %d; f++)", F);
    emit(e, "wT[r][f] = w[(long)f * %ld + r];", K);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* Opens a tap's block of a small tile: its two vectors of wT, at wr +
 * at, in b[0] and b[1] (the caller closes the block). */
static void emit_wt_pair(Emitter *e, long at)
{
    emit_open(e, "%s", "");
    emit(e, "nnc_vec b[2];");
    emit(e, "b[0] = *(const nnc_vec *)(wr + %ld);", at);
    emit(e, "b[1] = *(const nnc_vec *)(wr + %ld + NNC_LANES);", at);
}

/* acc[f][position] for every filter of sample n (xn), from wT */
static void emit_small_plane_tiles(Emitter *e, const IrOp *o, Dims x, Dims y)
{
    int KH = o->attr.win.kh, KW = o->attr.win.kw, taps = KH * KW;
    int P = y.h * y.w;
    long plane = (long)x.h * x.w;
    const char *R = e->real;
    lower_vec_type(e);
    emit(e, "/* %d positions by 2 vectors of filters at a time, summed over "
         "channels and taps in registers */", P);
    emit_open(e, "for (int j0 = 0; j0 < %d; j0 += 2 * NNC_LANES)", y.c);
    emit(e, "nnc_vec s[%d][2] = {{{0}}};", P);
    emit_open(e, "for (int c = 0; c < %d; c++)", x.c);
    emit(e, "const %s *xc = xn + (long)c * %ld;", R, plane);
    emit(e, "const %s *wr = wT[c * %d] + j0;", R, taps);
    for (int i = 0; i < KH; i++)
        for (int j = 0; j < KW; j++) {
            int t = i * KW + j;
            emit_wt_pair(e, (long)t * y.c);
            for (int q = 0; q < P; q++) {
                char a[48];
                snprintf(a, sizeof a, "xc[%ld]",
                         (long)(q / y.w) * x.w + q % y.w + i * x.w + j);
                emit_tile_row(e, q, a, 2);
            }
            emit_close(e, NULL);
        }
    emit_close(e, NULL);
    emit_open(e, "for (int q = 0; q < %d; q++)", P);
    emit(e, "%s out[2 * NNC_LANES];", R);
    emit(e, "*(nnc_vec *)out = s[q][0];");
    emit(e, "*(nnc_vec *)(out + NNC_LANES) = s[q][1];");
    emit_open(e, "for (int l = 0; l < 2 * NNC_LANES; l++)");
    emit(e, "acc[j0 + l][q / %d * %d + q %% %d] = out[l];", y.w, x.w, y.w);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* The wide-rows forward with its taps unrolled, B filters at a time: one
 * iteration of the parallel loop sums the planes of filters f0 .. f0+B-1
 * of one sample together, so each input element loaded serves B filters;
 * each plane then goes through the epilogue (or is copied out) alone. */
static void lower_conv2d_wide(Emitter *e, const Graph *g, const IrOp *o,
                              const ConvEpilogue *ep)
{
    Dims x = nchw(&g->ops[o->in[0]].shape), y = nchw(&o->shape);
    int taps = o->attr.win.kh * o->attr.win.kw;
    long plane = (long)x.h * x.w, oplane = (long)y.h * y.w;
    Dims used = conv_rows_used(ep, y); /* the rows the epilogue reads */
    long width = wide_size(x, used);
    bool tiled = tiles_fit(y.c, TILE_ROWS, width);
    bool small = !tiled && small_tiles_fit(x, used, taps, width);
    int B = tiled ? TILE_ROWS : small ? y.c : plane_block(y.c, width);
    const char *R = e->real;
    if (small)
        emit_weights_transposed(e, y.c, (long)x.c * taps);
    lower_parallel_for(e, 2L * y.n * y.c * oplane * x.c * taps);
    emit_open(e, "for (int nb = 0; nb < %d; nb++)", y.n * y.c / B);
    emit(e, "const int n = nb / %d, f0 = nb %% %d * %d;", y.c / B, y.c / B, B);
    emit(e, "const %s *xn = x + (long)n * %ld;", R, x.c * plane);
    emit(e, "/* filters f0 + k, each plane %d wide like the input: output p "
         "reads input p + i * %d + j */", x.w, x.w);
    if (tiled) {
        char src[64], wt[64];
        snprintf(src, sizeof src, "xn + (long)c * %ld", plane);
        snprintf(wt, sizeof wt, "w + ((long)f0 * %d + c) * %d", x.c, taps);
        TapTile t = {B, o->attr.win.kh, o->attr.win.kw, "c", x.c, src, wt,
                     (long)x.c * taps, 0, 1, x.w};
        emit(e, "%s acc[%d][%ld];", R, B, width);
        emit(e, "/* %d filters by %d vectors of positions at a time, summed "
             "over channels and taps in registers */", B, tile_vecs(width));
        emit_tap_tiles(e, &t, width);
    } else if (small) {
        emit(e, "%s acc[%d][%ld];", R, B, width);
        emit_small_plane_tiles(e, o, x, used);
    } else {
        emit_planes(e, "acc", B, width);
        emit_open(e, "for (int c = 0; c < %d; c++)", x.c);
        emit(e, "const %s *xc = xn + (long)c * %ld;", R, plane);
        emit(e, "const %s *wt = w + ((long)f0 * %d + c) * %d; /* filter f0 + "
             "k's taps at wt[k * %ld] */", R, x.c, taps, (long)x.c * taps);
        emit_tap_loop(e, width, o->attr.win.kh, o->attr.win.kw, "xc", 0, 1,
                      x.w, B, (long)x.c * taps);
        emit_close(e, NULL);
    }
    emit_open(e, "for (int k = 0; k < %d; k++)", B);
    if (ep) {
        emit(e, "const int f = f0 + k, nf = n * %d + f;", y.c);
        emit(e, "(void)f, (void)nf; /* not every epilogue reads both */");
        if (ep->pool)
            emit(e, "%s act[%ld]; /* the plane the pooling reads */", R,
                 oplane);
        emit_conv_epilogue(e, g, ep, y, "acc[k]", x.w);
    } else {
        emit(e, "%s *yp = y + ((long)n * %d + f0 + k) * %ld;", R, y.c, oplane);
        emit_plane_copy(e, "yp", y.w, "acc[k]", x.w, y);
    }
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* y[n, f] = sum over c, i, j of w[f, c, i, j] * x[n, c, oh*SH+i-PH, ow*SW+j-PW];
 * one (sample, filter) plane per iteration of the parallel loop, or a
 * block of them (lower_conv2d_wide). With an epilogue (rule
 * conv_epilogue) the plane is summed on the stack and each element
 * handed to it: bias and activation applied as it is stored. */
void lower_conv2d_fused(Emitter *e, const Graph *g, const IrOp *o,
                        const ConvEpilogue *ep)
{
    Dims x = nchw(&g->ops[o->in[0]].shape), y = nchw(&o->shape);
    int KH = o->attr.win.kh, KW = o->attr.win.kw;
    long plane = (long)x.h * x.w, oplane = (long)y.h * y.w;
    bool wide = use_wide_rows(o, x, y);
    const char *R = e->real;
    if (wide && KH * KW <= MAX_TAPS) {
        lower_conv2d_wide(e, g, o, ep);
        return;
    }
    if (!wide)
        emit_window_tables(e, o, x, y);
    lower_parallel_for(e, 2L * y.n * y.c * oplane * x.c * KH * KW);
    emit_open(e, "for (int nf = 0; nf < %d; nf++)", y.n * y.c);
    emit(e, "const int n = nf / %d, f = nf %% %d;", y.c, y.c);
    emit(e, "const %s *xn = x + (long)n * %ld;", R, x.c * plane);
    emit(e, "const %s *wf = w + (long)f * %d;", R, x.c * KH * KW);
    if (!ep)
        emit(e, "%s *yp = y + (long)nf * %ld;", R, oplane);
    if (ep && ep->pool)
        emit(e, "%s act[%ld]; /* the plane the pooling reads */", R, oplane);
    if (wide) {
        emit(e, "/* the plane %d wide like the input: output p reads input "
             "p + i * %d + j */", x.w, x.w);
        emit(e, "%s acc[%ld];", R, wide_size(x, y));
        emit_zero(e, "acc", wide_size(x, y));
    } else if (ep) {
        emit(e, "%s acc[%ld];", R, oplane);
        emit_zero(e, "acc", oplane);
    } else {
        emit_zero(e, "yp", oplane);
    }
    emit_open(e, "for (int c = 0; c < %d; c++)", x.c);
    emit(e, "const %s *xc = xn + (long)c * %ld;", R, plane);
    emit_conv2d_taps(e, o, x, y, wide, ep != NULL);
    emit_close(e, NULL);
    if (ep)
        emit_conv_epilogue(e, g, ep, y, "acc", wide ? x.w : y.w);
    else if (wide)
        emit_plane_copy(e, "yp", y.w, "acc", x.w, y);
    emit_close(e, NULL);
}

enum {
    DYZ_MAX = 16384,      /* elements of the padded dy planes of a sample */
    SAMPLE_TASKS_MIN = 16 /* samples enough to share out one per task */
};

/* The rows and columns of dy, from 0, that can hold a non-zero value:
 * all of them, but when dy comes through maxpool2d_grad_at, only those
 * some pooling window covers (conv2 of mnist_cnn: 10 of 11). */
static Dims dy_live(const IrOp *act, Dims dy)
{
    if (!act || act->op != OP_MAXPOOL2D_GRAD_AT)
        return dy;
    Dims live = dy;
    live.h = dy.h / act->attr.win.kh * act->attr.win.kh;
    live.w = dy.w / act->attr.win.kw * act->attr.win.kw;
    return live;
}

/* Positions of the input gradient's [x.h, x.w] plane that can be
 * non-zero, from row 0: the rows some live row of dy (dy_live) reaches
 * (a 13x13 plane from 11x11 pooled 2x2, as conv2 of mnist_cnn: dx rows
 * 0..11, 156 positions of 169; that plane now takes the small form). */
static long grad_input_live(const IrOp *o, const IrOp *act, Dims dy, Dims x)
{
    int rows = dy_live(act, dy).h + o->attr.win.kh - 1;
    return (long)(rows < x.h ? rows : x.h) * x.w;
}

/* The gathering input gradient in register tiles (emit_tap_tiles) of
 * TILE_ROWS channels: every dy plane of the sample is first copied (and
 * masked) into dyz, padded with zeros, because a tile sums over all of
 * them; with a batch of SAMPLE_TASKS_MIN or more, a task is a sample,
 * so the copy is made once for all its channels (before, once per block
 * of 8: 4 times for conv2, 8 for conv3). The sums run over f, then taps,
 * as in the untiled form; only the first `live` positions
 * (grad_input_live) are summed, the rest are zeros. */
static void lower_conv2d_grad_input_tiled(Emitter *e, const IrOp *o, Dims dy,
                                          Dims x, const IrOp *act)
{
    int KH = o->attr.win.kh, KW = o->attr.win.kw, taps = KH * KW;
    long plane = (long)x.h * x.w, oplane = (long)dy.h * dy.w;
    long live = grad_input_live(o, act, dy, x);
    long lead = (long)(KH - 1) * x.w + (KW - 1); /* zeros before row 0 */
    int B = TILE_ROWS;
    const char *R = e->real;
    char off[64], dst[48], wt[64];
    bool per_sample = x.n >= SAMPLE_TASKS_MIN;
    lower_parallel_for(e, 2L * dy.n * dy.c * oplane * x.c * taps);
    if (per_sample) {
        emit_open(e, "for (int n = 0; n < %d; n++)", x.n);
    } else {
        emit_open(e, "for (int nb = 0; nb < %d; nb++)", x.n * x.c / B);
        emit(e, "const int n = nb / %d, c0 = nb %% %d * %d;", x.c / B,
             x.c / B, B);
    }
    emit(e, "/* dy[n, f] at dyz[f][%ld + oh * %d + ow], zeros elsewhere */",
         lead, x.w);
    emit(e, "%s dyz[%d][%ld];", R, dy.c, lead + plane);
    emit(e, "memset(dyz, 0, sizeof dyz);");
    emit_open(e, "for (int f = 0; f < %d; f++)", dy.c);
    snprintf(off, sizeof off, "((long)n * %d + f) * %ld", dy.c, oplane);
    snprintf(dst, sizeof dst, "(dyz[f] + %ld)", lead);
    emit_dy_copy(e, act, "dyf", "yf", dst, x.w, off, dy);
    emit_close(e, NULL);
    if (per_sample)
        emit_open(e, "for (int c0 = 0; c0 < %d; c0 += %d)", x.c, B);
    emit(e, "/* the dx planes of channels c0 + k; tap (i, j) reads dy at "
         "p - i * %d - j */", x.w);
    emit(e, "%s acc[%d][%ld];", R, B, live);
    snprintf(wt, sizeof wt, "w + ((long)f * %d + c0) * %d", x.c, taps);
    TapTile t = {B, KH, KW, "f", dy.c, "dyz[f]", wt, taps, lead, -1, x.w};
    emit_tap_tiles(e, &t, live);
    emit_open(e, "for (int k = 0; k < %d; k++)", B);
    emit(e, "%s *dxp = dx + ((long)n * %d + c0 + k) * %ld;", R, x.c, plane);
    emit_vector_loop(e, live, "dxp[p] = acc[k][p];");
    if (live < plane)
        emit(e, "memset(dxp + %ld, 0, %ld * sizeof *dxp); /* rows only dy's "
             "unpooled rows reach */", live, plane - live);
    emit_close(e, NULL);
    if (per_sample)
        emit_close(e, NULL);
    emit_close(e, NULL);
}

/* Small input gradients spend most of the wide form's multiply-adds on
 * padding: a position of conv3's 5x5 dx planes in mnist_cnn (from 3x3
 * dy) is reached by 81 of the 225 (position, tap) pairs that form sums,
 * and 25 positions fill 32 lanes; conv2's 13x13 planes take 900 of
 * 1404 (dy's rows and columns 10 are in no pooling window). Turned
 * around as the forward's small tiles are: rows are up to SMALL_MAX
 * positions of dx, columns two vectors of channels, the weights laid
 * out as wT[f][(i, j)][c] once per call; each pair that reaches dy's
 * live part (dy_live) is a broadcast of dy and two multiply-adds, the
 * other pairs are not emitted. Sums still run over f, then taps in
 * order, and a pair left out added exactly 0 in the wide form (the sums
 * start at +0 and never reach -0), so the bits are the same. Up to
 * SMALL_DX_MAX positions: beyond, a plane's edges are a small part of
 * it and the unrolled tiles would be long code. */
enum { SMALL_DX_MAX = 256 };

static bool small_grad_input_fits(const IrOp *o, Dims dy, Dims x)
{
    int taps = o->attr.win.kh * o->attr.win.kw;
    return use_wide_rows(o, x, dy) && (long)x.h * x.w <= SMALL_DX_MAX &&
           x.c % SMALL_COLS == 0 && (long)dy.c * taps * x.c <= WT_MAX;
}

/* Whether dx position p takes a term through tap t: the dy position it
 * reads, p shifted back by the tap, is inside dy's live part (dy_live). */
static bool small_dx_reaches(const IrOp *o, Dims x, Dims live, int p, int t)
{
    int KW = o->attr.win.kw;
    int oh = p / x.w - t / KW, ow = p % x.w - t % KW;
    return oh >= 0 && oh < live.h && ow >= 0 && ow < live.w;
}

/* How many of a tile's rows (positions p0 ..) tap t reaches. */
static int small_dx_tap_rows(const IrOp *o, Dims x, Dims live, int p0,
                             int rows, int t)
{
    int n = 0;
    for (int r = 0; r < rows; r++)
        n += small_dx_reaches(o, x, live, p0 + r, t);
    return n;
}

/* The sums of one tile over f: per tap, two vector loads of wT, then a
 * broadcast of dy and two multiply-adds for each row the tap reaches. */
static void emit_small_dx_sums(Emitter *e, const IrOp *o, Dims dy, Dims x,
                               Dims live, int p0, int rows)
{
    int taps = o->attr.win.kh * o->attr.win.kw, KW = o->attr.win.kw;
    const char *R = e->real;
    emit_open(e, "for (int f = 0; f < %d; f++)", dy.c);
    emit(e, "const %s *dr = dyT[f];", R);
    emit(e, "const %s *wr = wT[f][0] + c0;", R);
    for (int t = 0; t < taps; t++) {
        if (!small_dx_tap_rows(o, x, live, p0, rows, t))
            continue;
        emit_wt_pair(e, (long)t * x.c);
        for (int r = 0; r < rows; r++) {
            if (!small_dx_reaches(o, x, live, p0 + r, t))
                continue;
            int p = p0 + r, oh = p / x.w - t / KW, ow = p % x.w - t % KW;
            char a[32];
            snprintf(a, sizeof a, "dr[%d]", oh * dy.w + ow);
            emit_tile_row(e, r, a, 2);
        }
        emit_close(e, NULL);
    }
    emit_close(e, NULL);
}

/* One tile: dx positions p0 .. p0 + rows - 1 of sample n, channels c0 ..
 * c0 + 2 * NNC_LANES - 1, from dyT (dy[n, f] planes) and wT. */
static void emit_small_dx_tile(Emitter *e, const IrOp *o, Dims dy, Dims x,
                               Dims live, int p0, int rows)
{
    int taps = o->attr.win.kh * o->attr.win.kw, pairs = 0;
    long P = (long)x.h * x.w;
    for (int t = 0; t < taps; t++)
        pairs += small_dx_tap_rows(o, x, live, p0, rows, t);
    emit_open(e, "%s", "");
    emit(e, "/* dx positions %d .. %d */", p0, p0 + rows - 1);
    emit(e, "nnc_vec s[%d][2] = {{{0}}};", rows);
    if (pairs)
        emit_small_dx_sums(e, o, dy, x, live, p0, rows);
    else
        emit(e, "/* no tap reaches dy's live part from here: zeros */");
    emit_open(e, "for (int r = 0; r < %d; r++)", rows);
    emit(e, "%s out[2 * NNC_LANES];", e->real);
    emit(e, "*(nnc_vec *)out = s[r][0];");
    emit(e, "*(nnc_vec *)(out + NNC_LANES) = s[r][1];");
    emit_open(e, "for (int l = 0; l < 2 * NNC_LANES; l++)");
    emit(e, "dx[((long)n * %d + c0 + l) * %ld + %d + r] = out[l];", x.c, P,
         p0);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

static void lower_conv2d_grad_input_small(Emitter *e, const IrOp *o, Dims dy,
                                          Dims x, const IrOp *act)
{
    int taps = o->attr.win.kh * o->attr.win.kw;
    int P = x.h * x.w, tiles = (P + SMALL_MAX - 1) / SMALL_MAX;
    long oplane = (long)dy.h * dy.w;
    const char *R = e->real;
    char off[64];
    emit(e, "/* the weights as wT[f][(i, j)][c], so a tile's channels are "
         "contiguous */");
    emit(e, "%s wT[%d][%d][%d];", R, dy.c, taps, x.c);
    emit_open(e, "for (int f = 0; f < %d; f++)", dy.c);
    emit_open(e, "for (int c = 0; c < %d; c++)", x.c);
    emit_open(e, "for (int t = 0; t < %d; t++)", taps);
    emit(e, "wT[f][t][c] = w[((long)f * %d + c) * %d + t];", x.c, taps);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    lower_vec_type(e);
    emit(e, "/* %d positions in %d tiles by 2 vectors of channels at a time, "
         "summed over f, then taps, in registers */", P, tiles);
    lower_parallel_for(e, 2L * dy.n * dy.c * oplane * x.c * taps);
    emit_open(e, "for (int n = 0; n < %d; n++)", x.n);
    emit(e, "%s dyT[%d][%ld]; /* the dy planes of sample n */", R, dy.c,
         oplane);
    emit_open(e, "for (int f = 0; f < %d; f++)", dy.c);
    snprintf(off, sizeof off, "((long)n * %d + f) * %ld", dy.c, oplane);
    emit_dy_copy(e, act, "dyf", "yf", "dyT[f]", dy.w, off, dy);
    emit_close(e, NULL);
    emit_open(e, "for (int c0 = 0; c0 < %d; c0 += 2 * NNC_LANES)", x.c);
    Dims live = dy_live(act, dy);
    for (int k = 0; k < tiles; k++) {
        int p0 = (int)((long)P * k / tiles);
        int p1 = (int)((long)P * (k + 1) / tiles);
        emit_small_dx_tile(e, o, dy, x, live, p0, p1 - p0);
    }
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* The gathering input gradient with its taps unrolled, B channels at a
 * time: one iteration of the parallel loop sums the dx planes of channels
 * c0 .. c0+B-1 of one sample together, so each dy element loaded serves
 * B channels, and dy[n, f] is copied (and masked) once per block. */
static void lower_conv2d_grad_input_wide(Emitter *e, const Graph *g,
                                         const IrOp *o, const IrOp *act)
{
    Dims dy = nchw(&g->ops[o->in[0]].shape), x = nchw(&o->shape);
    int KH = o->attr.win.kh, KW = o->attr.win.kw, taps = KH * KW;
    long plane = (long)x.h * x.w, oplane = (long)dy.h * dy.w;
    long lead = (long)(KH - 1) * x.w + (KW - 1); /* zeros before row 0 */
    const char *R = e->real;
    char off[64], dst[48];
    if (tiles_fit(x.c, TILE_ROWS, grad_input_live(o, act, dy, x)) &&
        dy.c * (lead + plane) <= DYZ_MAX) {
        lower_conv2d_grad_input_tiled(e, o, dy, x, act);
        return;
    }
    int B = plane_block(x.c, plane);
    lower_parallel_for(e, 2L * dy.n * dy.c * oplane * x.c * taps);
    emit_open(e, "for (int nb = 0; nb < %d; nb++)", x.n * x.c / B);
    emit(e, "const int n = nb / %d, c0 = nb %% %d * %d;", x.c / B, x.c / B, B);
    emit(e, "/* the dx planes of channels c0 + k */");
    emit_planes(e, "acc", B, plane);
    emit(e, "/* dy[n, f] at %ld + oh * %d + ow, zeros elsewhere */", lead, x.w);
    emit(e, "%s dyz[%ld];", R, lead + plane);
    emit_zero(e, "dyz", lead + plane);
    emit_open(e, "for (int f = 0; f < %d; f++)", dy.c);
    snprintf(off, sizeof off, "((long)n * %d + f) * %ld", dy.c, oplane);
    snprintf(dst, sizeof dst, "(dyz + %ld)", lead);
    emit_dy_copy(e, act, "dyf", "yf", dst, x.w, off, dy);
    emit(e, "const %s *wt = w + ((long)f * %d + c0) * %d; /* channel c0 + k's "
         "taps at wt[k * %d] */", R, x.c, taps, taps);
    emit(e, "/* tap (i, j) reads dy at p - i * %d - j */", x.w);
    emit_tap_loop(e, plane, KH, KW, "dyz", lead, -1, x.w, B, taps);
    emit_close(e, NULL);
    emit_open(e, "for (int k = 0; k < %d; k++)", B);
    emit(e, "%s *dxp = dx + ((long)n * %d + c0 + k) * %ld;", R, x.c, plane);
    emit_vector_loop(e, plane, "dxp[p] = acc[k][p];");
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* dx[n, c] = sum over f, i, j of w[f, c, i, j] times dy[n, f] shifted
 * by (i, j): the transpose of the forward convolution, one (sample,
 * channel) plane of dx per iteration, so every element has one writer.
 * Stride 1 without padding gathers: dx[q] reads dy at q - i*W - j from a
 * copy with rows W apart and zeros before, between and after the rows,
 * so every read is in bounds and the writes stay aligned. */
static void lower_conv2d_grad_input(Emitter *e, const Graph *g, const IrOp *o,
                                    const IrOp *act)
{
    Dims dy = nchw(&g->ops[o->in[0]].shape), x = nchw(&o->shape);
    int KH = o->attr.win.kh, KW = o->attr.win.kw;
    long plane = (long)x.h * x.w, oplane = (long)dy.h * dy.w;
    long lead = (long)(KH - 1) * x.w + (KW - 1); /* zeros before row 0 */
    bool gather = use_wide_rows(o, x, dy) && lead + plane <= WIDE_MAX;
    const char *R = e->real;
    if (gather && KH * KW <= MAX_TAPS && small_grad_input_fits(o, dy, x)) {
        lower_conv2d_grad_input_small(e, o, dy, x, act);
        return;
    }
    if (gather && KH * KW <= MAX_TAPS) {
        lower_conv2d_grad_input_wide(e, g, o, act);
        return;
    }
    if (!gather)
        emit_window_tables(e, o, x, dy);
    lower_parallel_for(e, 2L * dy.n * dy.c * oplane * x.c * KH * KW);
    emit_open(e, "for (int nc = 0; nc < %d; nc++)", x.n * x.c);
    emit(e, "const int n = nc / %d, c = nc %% %d;", x.c, x.c);
    emit(e, "%s *dxp = dx + (long)nc * %ld;", R, plane);
    if (gather) {
        emit(e, "%s acc[%ld];", R, plane);
        emit_zero(e, "acc", plane);
        emit(e, "/* dy[n, f] at %ld + oh * %d + ow, zeros elsewhere */", lead,
             x.w);
        emit(e, "%s dyz[%ld];", R, lead + plane);
        emit_zero(e, "dyz", lead + plane);
    } else {
        emit_zero(e, "dxp", plane);
    }
    emit_open(e, "for (int f = 0; f < %d; f++)", dy.c);
    char off[64];
    snprintf(off, sizeof off, "((long)n * %d + f) * %ld", dy.c, oplane);
    if (gather) {
        char dst[48];
        snprintf(dst, sizeof dst, "(dyz + %ld)", lead);
        emit_dy_copy(e, act, "dyf", "yf", dst, x.w, off, dy);
    } else {
        emit_dy_plane(e, act, off, dy);
    }
    emit_open(e, "for (int i = 0; i < %d; i++)", KH);
    emit_open(e, "for (int j = 0; j < %d; j++)", KW);
    emit(e, "const %s wv = w[((f * %d + c) * %d + i) * %d + j];", R, x.c, KH,
         KW);
    if (gather) {
        emit(e, "const %s *d = dyz + %ld - i * %d - j;", R, lead, x.w);
        emit_vector_loop(e, plane, "acc[p] += wv * d[p];");
    } else {
        emit_open(e, "for (int oh = oh_lo[i]; oh < oh_hi[i]; oh++)");
        emit(e, "const int base = (oh * %d + i - %d) * %d + j - %d;",
             o->attr.win.sh, o->attr.win.ph, x.w, o->attr.win.pw);
        emit(e, "const %s *dyr = dyf + oh * %d;", R, dy.w);
        emit_open(e, "for (int ow = ow_lo[j]; ow < ow_hi[j]; ow++)");
        emit(e, "dxp[base + ow * %d] += wv * dyr[ow];", o->attr.win.sw);
        emit_close(e, NULL);
        emit_close(e, NULL);
    }
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    if (gather)
        emit_vector_loop(e, plane, "dxp[p] = acc[p];");
    emit_close(e, NULL);
}

enum {
    ROWS_UNROLLED = 4, /* rows of LANES a weight-gradient pass holds its sums over */
    WEIGHT_SUMS = 24,  /* sums (vector registers) it may keep: B * taps */
    LANE_SUMS_MAX = 16384, /* elements of partial sums on the stack */
};
/* emit_weight_rest carries B * taps sums in one lane loop */
_Static_assert((int)WEIGHT_SUMS <= (int)MAX_SUMS && (int)MAX_TAPS <= (int)MAX_SUMS,
               "a weight-gradient block has more sums than a lane loop");

/* Filters whose weight gradients one pass sums together: two when their
 * sums fit the register budget, so each x element loaded feeds both. */
static int weight_block(int F, int taps)
{
    return F % 2 == 0 && 2 * taps <= WEIGHT_SUMS ? 2 : 1;
}

/* Channels whose weight-gradient sums one iteration keeps (`sums` each):
 * the largest divisor of C whose sums fit LANE_SUMS_MAX, so that a copy
 * of dy serves many channels. */
static int channel_group(int C, int sums)
{
    for (int cb = C; cb > 1; cb--)
        if (C % cb == 0 && (long)cb * sums <= LANE_SUMS_MAX)
            return cb;
    return 1;
}

/* lane[k][t][q] += dyw[k][p] * xc[p + shift(t)], p = p0 + r * LANES + q,
 * for `nrows` whole rows r of LANES from `p0`: lane q of every sum is
 * loaded into a local once, summed over the rows in order, and stored
 * once, so the sums stay in registers instead of one load and one store
 * per multiply-add. The order of each sum is the row order of
 * emit_lane_loops_n, so the bits are the same. */
static void emit_weight_rows(Emitter *e, int B, int KH, int KW, int row,
                             const char *p0, int nrows)
{
    int L = lanes(e), taps = KH * KW;
    char line[64 * MAX_TAPS];
    size_t at;
    emit_open(e, "for (int q = 0; q < %d; q++)", L);
    for (int k = 0; k < B; k++) {
        at = (size_t)snprintf(line, sizeof line, "%s", e->real);
        for (int t = 0; t < taps; t++)
            at += (size_t)snprintf(line + at, sizeof line - at,
                                   "%s s%d_%d = lane[%d][%d][q]",
                                   t ? "," : "", k, t, k, t);
        snprintf(line + at, sizeof line - at, ";");
        emit(e, "%s", line);
    }
    for (int r = 0; r < nrows; r++) {
        emit_open(e, "%s", "");
        emit(e, "const int p = %s + %d + q;", p0, r * L);
        at = (size_t)snprintf(line, sizeof line, "const %s", e->real);
        for (int k = 0; k < B; k++)
            at += (size_t)snprintf(line + at, sizeof line - at,
                                   "%s d%d = dyw[%d][p]", k ? "," : "", k, k);
        snprintf(line + at, sizeof line - at, ";");
        emit(e, "%s", line);
        for (int i = 0; i < KH; i++)
            for (int j = 0; j < KW; j++) {
                at = 0;
                for (int k = 0; k < B; k++)
                    at += (size_t)snprintf(line + at, sizeof line - at,
                                           "%ss%d_%d += d%d * xc[p + %d];",
                                           k ? " " : "", k, i * KW + j, k,
                                           i * row + j);
                emit(e, "%s", line);
            }
        emit_close(e, NULL);
    }
    for (int k = 0; k < B; k++) {
        at = 0;
        for (int t = 0; t < taps; t++)
            at += (size_t)snprintf(line + at, sizeof line - at,
                                   "%slane[%d][%d][q] = s%d_%d;", t ? " " : "",
                                   k, t, k, t);
        emit(e, "%s", line);
    }
    emit_close(e, NULL);
}

/* The last partial row of emit_weight_rows' sums, p in [from, width),
 * added to lanes 0 .. width - from - 1 (in memory: it runs once per
 * sample). */
static void emit_weight_rest(Emitter *e, int B, int KH, int KW, int row,
                             long from, long width)
{
    char names[MAX_SUMS][24], tmpls[MAX_SUMS][48];
    const char *np[MAX_SUMS], *tp[MAX_SUMS];
    int n = 0;
    for (int k = 0; k < B; k++)
        for (int i = 0; i < KH; i++)
            for (int j = 0; j < KW; j++, n++) {
                snprintf(names[n], sizeof names[n], "lane[%d][%d]", k,
                         i * KW + j);
                snprintf(tmpls[n], sizeof tmpls[n], "dyw[%d][#] * xc[# + %d]",
                         k, i * row + j);
                np[n] = names[n];
                tp[n] = tmpls[n];
            }
    emit_lane_rest(e, n, np, from, width, tp);
}

/* The sums of emit_weight_rows over p in [0, width): whole rows of
 * LANES, ROWS_UNROLLED at a time, then the last partial row. */
static void emit_weight_pass(Emitter *e, int B, int KH, int KW, int row,
                             long width)
{
    int L = lanes(e), U = ROWS_UNROLLED;
    long rows = width / L;
    if (rows >= U) {
        emit(e, "/* rows of %d, %d at a time: lane q of every sum in a "
             "register */", L, U);
        emit_open(e, "for (int p0 = 0; p0 < %ld; p0 += %d)", rows / U * U * L,
                  U * L);
        emit_weight_rows(e, B, KH, KW, row, "p0", U);
        emit_close(e, NULL);
    }
    if (rows % U) {
        char p0[32];
        snprintf(p0, sizeof p0, "%ld", rows / U * U * L);
        emit_weight_rows(e, B, KH, KW, row, p0, (int)(rows % U));
    }
    emit_weight_rest(e, B, KH, KW, row, rows * L, width);
}

/* The wide-rows weight gradient with its taps unrolled, for a block of B
 * filters and one channel: LANES partial sums per (filter, tap) over the
 * whole batch, kept in registers over ROWS_UNROLLED rows at a time
 * (emit_weight_rows), the last partial row in memory as before, then
 * added up in lane order.
 * With `bias` (rule conv_grad_place, act its maxpool2d_grad_at, every
 * channel in one group): each plane of dy is rebuilt on the stack once,
 * its bias sums taken there in the bias gradient's own order (lanes of
 * j % BIAS_LANES over the plane, samples in turn, one filter a task's),
 * and then copied into dyw: the bias gradient rebuilds nothing. */
static void lower_conv2d_grad_weight_wide(Emitter *e, const Graph *g,
                                          const IrOp *o, const IrOp *act,
                                          bool bias)
{
    Dims dy = nchw(&g->ops[o->in[0]].shape), x = nchw(&g->ops[o->in[1]].shape);
    int KH = o->attr.win.kh, KW = o->attr.win.kw, taps = KH * KW;
    int F = o->shape.dim[0], L = lanes(e);
    int B = weight_block(F, taps), CB = channel_group(x.c, B * taps * L);
    int groups = x.c / CB;
    long plane = (long)x.h * x.w, oplane = (long)dy.h * dy.w;
    long width = wide_size(x, dy);
    const char *R = e->real;
    char off[64];
    lower_parallel_for(e, 2L * dy.n * dy.c * oplane * x.c * taps);
    emit_open(e, "for (int fc = 0; fc < %d; fc++)", F / B * groups);
    emit(e, "const int f0 = fc / %d * %d, c0 = fc %% %d * %d;", groups, B,
         groups, CB);
    emit(e, "/* channel c0 + cc, filter f0 + k, tap t: %d partial sums */", L);
    emit(e, "%s lanes[%d][%d][%d][%d];", R, CB, B, taps, L);
    emit_open(e, "for (int cc = 0; cc < %d; cc++)", CB);
    emit_open(e, "for (int k = 0; k < %d; k++)", B);
    emit_open(e, "for (int t = 0; t < %d; t++)", taps);
    emit_zero(e, "lanes[cc][k][t]", L);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit(e, "/* dy[n, f0 + k] with rows %d apart, like the input; the gaps "
         "stay 0 */", x.w);
    emit_planes(e, "dyw", B, width);
    if (bias)
        emit(e, "%s bl[%d][%d] = {{0}}; /* dbias[f0 + k]: lane l takes plane "
             "elements j with j %% %d == l */", R, B, BIAS_LANES, BIAS_LANES);
    emit_open(e, "for (int n = 0; n < %d; n++)", x.n);
    emit_open(e, "for (int k = 0; k < %d; k++)", B);
    snprintf(off, sizeof off, "((long)n * %d + f0 + k) * %ld", dy.c, oplane);
    if (bias) {
        emit(e, "%s dym[%ld]; /* dy through %s */", R, oplane,
             op_names[act->op]);
        emit_dy_spread(e, act, "dyg", "dym", dy.w, off, dy);
        lower_plane_partial_sums(e, "bl[k]", oplane, "dym[j]");
        emit_plane_copy(e, "dyw[k]", x.w, "dym", dy.w, dy);
    } else {
        emit_dy_copy(e, act, "dyf", "yf", "dyw[k]", x.w, off, dy);
    }
    emit_close(e, NULL);
    emit(e, "/* the copy serves %d channels: its reads wait for its stores "
         "once */", CB);
    emit_open(e, "for (int cc = 0; cc < %d; cc++)", CB);
    emit(e, "const %s *xc = x + ((long)n * %d + c0 + cc) * %ld;", R, x.c,
         plane);
    emit(e, "%s (*lane)[%d][%d] = lanes[cc];", R, taps, L);
    emit_weight_pass(e, B, KH, KW, x.w, width);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_open(e, "for (int cc = 0; cc < %d; cc++)", CB);
    emit_open(e, "for (int k = 0; k < %d; k++)", B);
    emit_open(e, "for (int t = 0; t < %d; t++)", taps);
    emit(e, "%s s = 0;", R);
    emit_open(e, "for (int q = 0; q < %d; q++)", L);
    emit(e, "s += lanes[cc][k][t][q];");
    emit_close(e, NULL);
    emit(e, "dw[((long)(f0 + k) * %d + c0 + cc) * %d + t] = s;", x.c, taps);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    if (bias) {
        emit_open(e, "for (int k = 0; k < %d; k++)", B);
        lower_partial_sums_total(e, "bl[k]", "dbias[f0 + k]");
        emit_close(e, NULL);
    }
    emit_close(e, NULL);
}

/* The weight gradient as a matrix product in register tiles:
 *   dwT[(c, t)][f] = sum over n, then positions p of x[n, c, p + off(t)] * dy[n, f, p]
 * rows (c, t) (the flat index of w[f] after f), columns f. Per sample,
 * a block of WG_COLS filters of dy (read through `act`) is transposed
 * to dyT[p][f], so each step p of a tile is TILE_VECS vector loads of
 * dyT and one broadcast of x per row: TILE_ROWS x TILE_VECS sums in
 * registers, as in lower_gemm. The rows are split in groups of
 * WG_TILES tiles, so (filter block, group) pairs give the threads
 * several tasks. Each element is summed over the batch in sample order
 * and over the positions in order, in one accumulator; the task holding
 * it is fixed, so any thread count gives the same bits. The transpose
 * costs one move per element of dy and feeds `rows` multiply-adds per
 * element; under WG_MIN_ROWS rows (conv1 on one channel: 9) it costs
 * more than it saves (measured 6x slower), and lanes of partial sums
 * (lower_conv2d_grad_weight_wide) do better. */
enum { WG_COLS = 32, WG_TILES = 9, DYT_MAX = 24576, WG_MIN_ROWS = 64 };

static bool weight_tiles_fit(const IrOp *o, Dims dy, Dims x)
{
    return use_wide_rows(o, x, dy) && dy.c % WG_COLS == 0 &&
           (long)dy.h * dy.w * WG_COLS <= DYT_MAX &&
           x.c * o->attr.win.kh * o->attr.win.kw >= WG_MIN_ROWS;
}

/* One tile of mr rows starting at row r0 of the group (r in the whole
 * gradient: rbase + r0): its sums start from dwT, run over the positions
 * of sample n in the first live.h rows and live.w columns of dy (all of
 * them, or those some pooling window covers), and go back to dwT. */
static void emit_weight_tile(Emitter *e, int mr, const char *r0, Dims dy,
                             Dims live, Dims x)
{
    const char *R = e->real;
    for (int r = 0; r < mr; r++)
        emit(e, "const %s *x%d = xn + xoff[rbase + %s + %d];", R, r, r0, r);
    emit_open(e, "for (int j0 = 0; j0 < %d; j0 += %d * NNC_LANES)", WG_COLS,
              TILE_VECS);
    emit(e, "nnc_vec s[%d][%d];", mr, TILE_VECS);
    emit_open(e, "for (int r = 0; r < %d; r++)", mr);
    for (int v = 0; v < TILE_VECS; v++)
        emit(e, "s[r][%d] = *(const nnc_vec *)(dwT[%s + r] + j0 + %d * "
             "NNC_LANES);", v, r0, v);
    emit_close(e, NULL);
    emit_open(e, "for (int oh = 0; oh < %d; oh++)", live.h);
    emit_open(e, "for (int ow = 0; ow < %d; ow++)", live.w);
    emit(e, "const %s *brow = dyT[oh * %d + ow] + j0;", R, dy.w);
    emit(e, "nnc_vec b[%d];", TILE_VECS);
    for (int v = 0; v < TILE_VECS; v++)
        emit(e, "b[%d] = *(const nnc_vec *)(brow + %d * NNC_LANES);", v, v);
    for (int r = 0; r < mr; r++) {
        char a[48];
        snprintf(a, sizeof a, "x%d[oh * %d + ow]", r, x.w);
        emit_tile_row(e, r, a, TILE_VECS);
    }
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_open(e, "for (int r = 0; r < %d; r++)", mr);
    for (int v = 0; v < TILE_VECS; v++)
        emit(e, "*(nnc_vec *)(dwT[%s + r] + j0 + %d * NNC_LANES) = s[r][%d];",
             r0, v, v);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* static const int xoff[rows]: where row (c, i, j) starts in a sample */
static void emit_row_offsets(Emitter *e, Dims x, int KH, int KW)
{
    int rows = x.c * KH * KW;
    emit(e, "/* row (c, i, j) of the gradient reads the sample's x from "
         "c * %ld + i * %d + j */", (long)x.h * x.w, x.w);
    emit_open(e, "static const int xoff[%d] =", rows);
    char line[256];
    size_t at = 0;
    for (int r = 0; r < rows; r++) {
        int c = r / (KH * KW), i = r / KW % KH, j = r % KW;
        at += (size_t)snprintf(line + at, sizeof line - at, "%ld,%s",
                               c * (long)x.h * x.w + i * x.w + j,
                               r + 1 < rows && (r + 1) % 12 ? " " : "");
        if ((r + 1) % 12 == 0 || r + 1 == rows) {
            emit(e, "%s", line);
            at = 0;
        }
    }
    emit_close(e, ";");
}

/* dyT[p][f] for the WG_COLS filters f0 + f of sample n, from the pooled
 * gradient and places as maxpool2d_grad_at spreads them: both are
 * transposed first (gT[q][f], pT[q][f], a quarter of dyT for 2x2
 * windows), then each window element's row of dyT is one vector select
 * over f. Positions no window covers are not written, nor read: the
 * tiles run over the covered rows and columns only. */
static void emit_dyT_spread(Emitter *e, const IrOp *at, Dims dy)
{
    int KH = at->attr.win.kh, KW = at->attr.win.kw;
    Dims d = {.h = dy.h / KH, .w = dy.w / KW};
    long pooled = (long)d.h * d.w;
    const char *R = e->real;
    emit(e, "/* dy through %s: the pooled gradient and places of filters "
         "f0 + f, in gT[q][f] and pT[q][f] */", op_names[at->op]);
    emit(e, "%s gT[%ld][%d], pT[%ld][%d];", R, pooled, WG_COLS, pooled,
         WG_COLS);
    emit_open(e, "for (int f = 0; f < %d; f++)", WG_COLS);
    emit(e, "const long pq = ((long)n * %d + f0 + f) * %ld;", dy.c, pooled);
    emit_open(e, "for (int q = 0; q < %ld; q++)", pooled);
    emit(e, "gT[q][f] = dy[pq + q];");
    emit(e, "pT[q][f] = place[pq + q];");
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_open(e, "for (int oh = 0; oh < %d; oh++)", d.h);
    emit_open(e, "for (int ow = 0; ow < %d; ow++)", d.w);
    emit(e, "const int q = oh * %d + ow;", d.w);
    emit_open(e, "for (int i = 0; i < %d; i++)", KH);
    emit_open(e, "for (int j = 0; j < %d; j++)", KW);
    emit(e, "%s *dr = dyT[(oh * %d + i) * %d + ow * %d + j];", R, KH, dy.w, KW);
    char stmt[128];
    snprintf(stmt, sizeof stmt, "dr[p] = pT[q][p] == i * %d + j ? gT[q][p] : 0;",
             KW);
    emit_vector_loop(e, WG_COLS, stmt);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

static void lower_conv2d_grad_weight_tiled(Emitter *e, const IrOp *o,
                                           Dims dy, Dims x, const IrOp *act)
{
    int KH = o->attr.win.kh, KW = o->attr.win.kw, taps = KH * KW;
    int rows = x.c * taps, rest = rows % TILE_ROWS;
    int group_rows = WG_TILES * TILE_ROWS;
    int groups = (rows + group_rows - 1) / group_rows;
    int fblocks = dy.c / WG_COLS;
    long plane = (long)x.h * x.w, oplane = (long)dy.h * dy.w;
    const char *R = e->real;
    char at[48], dyv[64], yv[64], el[256];
    emit_row_offsets(e, x, KH, KW);
    lower_vec_type(e);
    lower_parallel_for(e, 2L * dy.n * dy.c * oplane * rows);
    emit_open(e, "for (int task = 0; task < %d; task++)", fblocks * groups);
    emit(e, "const int f0 = task / %d * %d, rbase = task %% %d * %d;", groups,
         WG_COLS, groups, group_rows);
    emit(e, "const int nrows = %d - rbase < %d ? %d - rbase : %d;", rows,
         group_rows, rows, group_rows);
    emit(e, "/* dwT[r][f]: the gradient of row rbase + r, filter f0 + f */");
    emit(e, "%s dwT[%d][%d];", R, group_rows, WG_COLS);
    emit(e, "memset(dwT, 0, sizeof dwT);");
    emit(e, "%s dyT[%ld][%d]; /* dy[n, f0 + f] at position p, in dyT[p][f] */",
         R, oplane, WG_COLS);
    bool spread = act && act->op == OP_MAXPOOL2D_GRAD_AT;
    Dims live = dy_live(act, dy);
    if (live.h < dy.h || live.w < dy.w)
        emit(e, "/* rows %d.. and columns %d.. of dy are in no pooling "
             "window: not read */", live.h, live.w);
    emit_open(e, "for (int n = 0; n < %d; n++)", x.n);
    emit(e, "const %s *xn = x + (long)n * %ld;", R, x.c * plane);
    if (spread) {
        emit_dyT_spread(e, act, dy);
    } else {
        emit_open(e, "for (int f = 0; f < %d; f++)", WG_COLS);
        emit(e, "const long off = ((long)n * %d + f0 + f) * %ld;", dy.c,
             oplane);
        snprintf(at, sizeof at, "[off + p]");
        snprintf(dyv, sizeof dyv, "dy%s", at);
        snprintf(yv, sizeof yv, "y%s", at);
        lower_dy_elem(e, act, dyv, yv, el, sizeof el);
        emit_open(e, "for (int p = 0; p < %ld; p++)", oplane);
        emit(e, "dyT[p][f] = %s;", el);
        emit_close(e, NULL);
        emit_close(e, NULL);
    }
    emit_open(e, "for (int r0 = 0; r0 + %d <= nrows; r0 += %d)", TILE_ROWS,
              TILE_ROWS);
    emit_weight_tile(e, TILE_ROWS, "r0", dy, live, x);
    emit_close(e, NULL);
    if (rest) {
        emit_open(e, "if (rbase + nrows == %d) /* the last %d rows */", rows,
                  rest);
        emit(e, "const int r1 = nrows - %d;", rest);
        emit_weight_tile(e, rest, "r1", dy, live, x);
        emit_close(e, NULL);
    }
    emit_close(e, NULL);
    emit_open(e, "for (int r = 0; r < nrows; r++)");
    emit_open(e, "for (int f = 0; f < %d; f++)", WG_COLS);
    emit(e, "dw[(long)(f0 + f) * %d + rbase + r] = dwT[r][f];", rows);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* dw of the (f, c) pair from its partial sums; closes the pair's loop */
static void emit_weight_sums(Emitter *e, int taps, bool wide)
{
    emit_open(e, "for (int t = 0; t < %d; t++)", taps);
    if (wide) {
        emit(e, "%s s = 0;", e->real);
        emit_open(e, "for (int q = 0; q < %d; q++)", lanes(e));
        emit(e, "s += lane[t][q];");
        emit_close(e, NULL);
        emit(e, "dw[(long)fc * %d + t] = s;", taps);
    } else {
        emit(e, "dw[(long)fc * %d + t] = acc[t];", taps);
    }
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* dw[f, c, i, j] = sum over n, oh, ow of dy[n, f, oh, ow] * x[n, c, ...]:
 * one (filter, channel) pair per iteration, the batch summed in sample
 * order. In the wide-rows form each of the KH*KW sums keeps LANES
 * partial sums over the whole batch, added up in lane order at the end. */
static void lower_conv2d_grad_weight(Emitter *e, const Graph *g,
                                     const IrOp *o, const IrOp *act)
{
    Dims dy = nchw(&g->ops[o->in[0]].shape), x = nchw(&g->ops[o->in[1]].shape);
    int KH = o->attr.win.kh, KW = o->attr.win.kw, F = o->shape.dim[0];
    long plane = (long)x.h * x.w, oplane = (long)dy.h * dy.w;
    bool wide = use_wide_rows(o, x, dy);
    long width = wide_size(x, dy);
    int L = lanes(e);
    const char *R = e->real;
    if (weight_tiles_fit(o, dy, x)) {
        lower_conv2d_grad_weight_tiled(e, o, dy, x, act);
        return;
    }
    if (wide && KH * KW <= MAX_TAPS) {
        lower_conv2d_grad_weight_wide(e, g, o, act, false);
        return;
    }
    if (!wide)
        emit_window_tables(e, o, x, dy);
    lower_parallel_for(e, 2L * dy.n * dy.c * oplane * x.c * KH * KW);
    emit_open(e, "for (int fc = 0; fc < %d; fc++)", F * x.c);
    emit(e, "const int f = fc / %d, c = fc %% %d;", x.c, x.c);
    if (wide) {
        emit(e, "%s lane[%d][%d];", R, KH * KW, L);
        emit_open(e, "for (int t = 0; t < %d; t++)", KH * KW);
        emit_open(e, "for (int q = 0; q < %d; q++)", L);
        emit(e, "lane[t][q] = 0;");
        emit_close(e, NULL);
        emit_close(e, NULL);
        emit(e, "/* dy[n, f] with rows %d apart, like the input; the gaps "
             "stay 0 */", x.w);
        emit(e, "%s dyw[%ld];", R, width);
        emit_zero(e, "dyw", width);
    } else {
        emit(e, "%s acc[%d];", R, KH * KW);
        emit_zero(e, "acc", KH * KW);
    }
    emit_open(e, "for (int n = 0; n < %d; n++)", x.n);
    char off[64];
    snprintf(off, sizeof off, "((long)n * %d + f) * %ld", dy.c, oplane);
    emit(e, "const %s *xc = x + ((long)n * %d + c) * %ld;", R, x.c, plane);
    if (wide)
        emit_dy_copy(e, act, "dyf", "yf", "dyw", x.w, off, dy);
    else
        emit_dy_plane(e, act, off, dy);
    emit_open(e, "for (int i = 0; i < %d; i++)", KH);
    emit_open(e, "for (int j = 0; j < %d; j++)", KW);
    if (wide) {
        emit(e, "const %s *xs = xc + i * %d + j;", R, x.w);
        emit(e, "%s *ln = lane[i * %d + j];", R, KW);
        emit_lane_loops(e, "ln", width, "dyw[#] * xs[#]");
    } else {
        emit(e, "%s s = 0;", R);
        emit_open(e, "for (int oh = oh_lo[i]; oh < oh_hi[i]; oh++)");
        emit(e, "const int base = (oh * %d + i - %d) * %d + j - %d;",
             o->attr.win.sh, o->attr.win.ph, x.w, o->attr.win.pw);
        emit(e, "const %s *dyr = dyf + oh * %d;", R, dy.w);
        emit_open(e, "for (int ow = ow_lo[j]; ow < ow_hi[j]; ow++)");
        emit(e, "s += dyr[ow] * xc[base + ow * %d];", o->attr.win.sw);
        emit_close(e, NULL);
        emit_close(e, NULL);
        emit(e, "acc[i * %d + j] += s;", KW);
    }
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_weight_sums(e, KH * KW, wide);
}

/* The form lower_conv2d_grad_weight picks is the wide one, and its
 * tasks each take whole filters (one channel group): then a task sees
 * every plane of its filters once, as the bias gradient needs. */
bool conv_grad_weight_takes_bias(const Emitter *e, const Graph *g,
                                 const IrOp *o)
{
    Dims dy = nchw(&g->ops[o->in[0]].shape), x = nchw(&g->ops[o->in[1]].shape);
    int taps = o->attr.win.kh * o->attr.win.kw;
    int B = weight_block(o->shape.dim[0], taps);
    return !weight_tiles_fit(o, dy, x) && use_wide_rows(o, x, dy) &&
           taps <= MAX_TAPS && (long)dy.h * dy.w >= BIAS_LANES &&
           channel_group(x.c, B * taps * lanes(e)) == x.c;
}

void lower_conv_grad_weight_bias(Emitter *e, const Graph *g, const IrOp *o,
                                 const IrOp *at)
{
    lower_conv2d_grad_weight_wide(e, g, o, at, true);
}

/* Rule conv_grad_mask: one gradient of a convolution (its bias's, its
 * input's, its weight's) reading dy through the folded `act`. */
void lower_conv_grad(Emitter *e, const Graph *g, const IrOp *o,
                     const IrOp *act)
{
    if (o->op == OP_CONV2D_GRAD_INPUT)
        lower_conv2d_grad_input(e, g, o, act);
    else if (o->op == OP_CONV2D_GRAD_WEIGHT)
        lower_conv2d_grad_weight(e, g, o, act);
    else
        lower_bias_grad(e, g, o, act);
}

/* ---------------------------------------------------------------- */
/* pooling: windows inside the input (no padding), one plane per task */

static void pool_plane_loop(Emitter *e, const char *in_name, Dims in,
                            const char *out_name, Dims out, long work)
{
    const char *R = e->real;
    lower_parallel_for(e, work);
    emit_open(e, "for (int nc = 0; nc < %d; nc++)", in.n * in.c);
    emit(e, "const %s *%sp = %s + (long)nc * %ld;", R, in_name, in_name,
         (long)in.h * in.w);
    emit(e, "%s *%sp = %s + (long)nc * %ld;", R, out_name, out_name,
         (long)out.h * out.w);
}

/* The first maximum of the window at (oh, ow), scanning rows then
 * columns: `best` its index in the plane. A NaN wins, as in PyTorch.
 * Selects, not branches: which element wins is data, and branches on it
 * mispredict; `|`, not `||`, whose short circuit is itself a branch. */
static void emit_window_argmax(Emitter *e, const IrOp *o, Dims in)
{
    emit(e, "const int first = oh * %d + ow * %d;", o->attr.win.sh * in.w,
         o->attr.win.sw);
    emit(e, "int best = first;");
    emit(e, "%s top = xp[first];", e->real);
    emit_open(e, "for (int i = 0; i < %d; i++)", o->attr.win.kh);
    emit_open(e, "for (int j = 0; j < %d; j++)", o->attr.win.kw);
    emit(e, "const int at = first + i * %d + j;", in.w);
    emit(e, "const %s v = xp[at];", e->real);
    emit(e, "const int take = (v > top) | (v != v);");
    emit(e, "best = take ? at : best;");
    emit(e, "top = take ? v : top;");
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* One output row at a time, the window's elements in scan order, each
 * a vectorisable pass over the row: the first maximum, NaN winning. */
static void emit_maxpool_plane(Emitter *e, const IrOp *o, Dims x, Dims y)
{
    char stmt[256];
    emit_open(e, "for (int oh = 0; oh < %d; oh++)", y.h);
    emit(e, "%s *yr = yp + oh * %d;", e->real, y.w);
    emit(e, "const %s *xr = xp + oh * %d;", e->real, o->attr.win.sh * x.w);
    snprintf(stmt, sizeof stmt, "yr[p] = xr[p * %d];", o->attr.win.sw);
    emit_vector_loop(e, y.w, stmt);
    emit_open(e, "for (int i = 0; i < %d; i++)", o->attr.win.kh);
    emit_open(e, "for (int j = 0; j < %d; j++)", o->attr.win.kw);
    emit(e, "const %s *xs = xr + i * %d + j;", e->real, x.w);
    snprintf(stmt, sizeof stmt, "yr[p] = ((xs[p * %d] > yr[p]) | (xs[p * %d] != "
             "xs[p * %d])) ? xs[p * %d] : yr[p];", o->attr.win.sw,
             o->attr.win.sw, o->attr.win.sw, o->attr.win.sw);
    emit_vector_loop(e, y.w, stmt);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

static void lower_maxpool2d(Emitter *e, const Graph *g, const IrOp *o)
{
    Dims x = nchw(&g->ops[o->in[0]].shape), y = nchw(&o->shape);
    long window = (long)o->attr.win.kh * o->attr.win.kw;
    pool_plane_loop(e, "x", x, "y", y, (long)y.n * y.c * y.h * y.w * window);
    emit_maxpool_plane(e, o, x, y);
    emit_close(e, NULL);
}

bool maxpool_windows_disjoint(const IrOp *o)
{
    return o->attr.win.sh == o->attr.win.kh && o->attr.win.sw == o->attr.win.kw;
}

/* Windows that tile the plane leave its last x.h % KH rows (d.h bands
 * of KH rows) out of every window: their gradient is 0. `dst` holds the
 * plane's rows dst_row apart. */
static void emit_uncovered_rows(Emitter *e, Dims d, Dims x, int KH,
                                const char *dst, int dst_row)
{
    if (d.h * KH >= x.h)
        return;
    emit(e, "/* the rows no window covers */");
    if (dst_row == x.w) {
        emit(e, "memset(%s + %d, 0, %d * sizeof *%s);", dst, d.h * KH * x.w,
             (x.h - d.h * KH) * x.w, dst);
        return;
    }
    emit_open(e, "for (int r = %d; r < %d; r++)", d.h * KH, x.h);
    emit(e, "memset(%s + r * %d, 0, %d * sizeof *%s);", dst, dst_row, x.w, dst);
    emit_close(e, NULL);
}

/* The argmax of every window of band oh, as vector passes over the
 * band's windows: for window element (i, j), in scan order, one pass
 * over ow updates top[ow] and best[ow] (i * KW + j of the first
 * maximum, NaN winning, as emit_window_argmax). */
static void emit_band_argmax(Emitter *e, const IrOp *o, int OW)
{
    int KH = o->attr.win.kh, KW = o->attr.win.kw;
    emit(e, "%s top[%d];", e->real, OW);
    emit(e, "int best[%d];", OW);
    emit_open(e, "for (int ow = 0; ow < %d; ow++)", OW);
    emit(e, "top[ow] = band[0][ow * %d];", KW);
    emit(e, "best[ow] = 0;");
    emit_close(e, NULL);
    emit_open(e, "for (int i = 0; i < %d; i++)", KH);
    emit_open(e, "for (int j = 0; j < %d; j++)", KW);
    emit_open(e, "for (int ow = 0; ow < %d; ow++)", OW);
    emit(e, "const %s v = band[i][ow * %d + j];", e->real, KW);
    emit(e, "const int take = (v > top[ow]) | (v != v);");
    emit(e, "best[ow] = take ? i * %d + j : best[ow];", KW);
    emit(e, "top[ow] = take ? v : top[ow];");
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* maxpool's gradient when windows tile the plane without overlap (stride
 * = window): each element of dx gets dy of its window if it is the
 * window's first maximum, else 0, and (relu_mask) 0 where y <= 0: relu's
 * mask read from its output y, the pool's input. One band of KH rows at
 * a time, copied first so dx may be written over y; no element is
 * summed, so the result is the same bits as the scatter of
 * lower_maxpool2d_grad, without its data-dependent stores. */
void lower_maxpool_grad_disjoint(Emitter *e, const IrOp *o, const Shape *dys,
                                 const char *dy, const char *y, const char *dx,
                                 bool relu_mask)
{
    Dims d = nchw(dys), x = nchw(&o->shape);
    int KH = o->attr.win.kh, KW = o->attr.win.kw;
    const char *R = e->real;
    lower_parallel_for(e, (long)x.n * x.c * x.h * x.w * 4);
    emit_open(e, "for (long nc = 0; nc < %d; nc++)", x.n * x.c);
    emit(e, "const %s *yp = %s + nc * %ld;", R, y, (long)x.h * x.w);
    emit(e, "const %s *dyp = %s + nc * %ld;", R, dy, (long)d.h * d.w);
    emit(e, "%s *dxp = %s + nc * %ld;", R, dx, (long)x.h * x.w);
    emit_open(e, "for (int oh = 0; oh < %d; oh++)", d.h);
    emit(e, "%s band[%d][%d]; /* the band's rows of %s, before dx overwrites "
         "them */", R, KH, x.w, y);
    emit(e, "memcpy(band, yp + oh * %d, sizeof band);", KH * x.w);
    emit_band_argmax(e, o, d.w);
    emit(e, "%s g[%d];", R, d.w);
    emit(e, "memcpy(g, dyp + oh * %d, sizeof g);", d.w);
    /* built in a local band, then copied: stores through dx, which may
     * alias y and dy, would keep the passes from being vectorised */
    emit(e, "%s out[%d][%d] = {{0}}; /* columns no window covers stay 0 */",
         R, KH, x.w);
    emit_open(e, "for (int i = 0; i < %d; i++)", KH);
    emit_open(e, "for (int j = 0; j < %d; j++)", KW);
    emit_open(e, "for (int ow = 0; ow < %d; ow++)", d.w);
    emit(e, "const %s gsel = best[ow] == i * %d + j ? g[ow] : 0;", R, KW);
    if (relu_mask)
        emit(e, "out[i][ow * %d + j] = band[i][ow * %d + j] > 0 ? gsel : 0; "
             "/* relu's mask */", KW, KW);
    else
        emit(e, "out[i][ow * %d + j] = gsel;", KW);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit(e, "memcpy(dxp + oh * %d, out, sizeof out);", KH * x.w);
    emit_close(e, NULL);
    emit_uncovered_rows(e, d, x, KH, "dxp", x.w);
    emit_close(e, NULL);
}

/* The place in their windows of the first maxima of band oh of plane xp
 * (windows tiling the plane, KH rows a band): its windows' argmax found
 * as emit_band_argmax finds it, and best[] stored as real numbers to
 * prow; with `yrow`, the maxima too (top[]), which are the pooling's
 * values: the same scan as emit_maxpool_plane. The band is read where
 * it is: the passes store only to locals, and a copy made first had
 * the passes' wide loads wait on the copy's narrower stores (store
 * forwarding), which made conv1's forward kernel in mnist_cnn a fifth
 * slower. */
static void emit_band_places(Emitter *e, const IrOp *o, Dims x, int PW,
                             const char *prow, const char *yrow)
{
    const char *R = e->real;
    int KH = o->attr.win.kh;
    emit(e, "const %s (*band)[%d] = (const %s (*)[%d])(xp + oh * %d);", R,
         x.w, R, x.w, KH * x.w);
    emit_band_argmax(e, o, PW);
    emit(e, "%s at[%d];", R, PW);
    emit_open(e, "for (int ow = 0; ow < %d; ow++)", PW);
    emit(e, "at[ow] = (%s)best[ow];", R);
    emit_close(e, NULL);
    emit(e, "memcpy(%s, at, sizeof at);", prow);
    if (yrow)
        emit(e, "memcpy(%s, top, sizeof top);", yrow);
}

/* Rule-free form of MAXPOOL2D_PLACE: one plane per task. */
static void lower_maxpool2d_place(Emitter *e, const Graph *g, const IrOp *o)
{
    Dims x = nchw(&g->ops[o->in[0]].shape), p = nchw(&o->shape);
    pool_plane_loop(e, "x", x, "place", p,
                    (long)p.n * p.c * p.h * p.w * o->attr.win.kh * o->attr.win.kw);
    emit_open(e, "for (int oh = 0; oh < %d; oh++)", p.h);
    char prow[48];
    snprintf(prow, sizeof prow, "placep + oh * %d", p.w);
    emit_band_places(e, o, x, p.w, prow, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* Rule conv_pool with MAXPOOL2D_PLACE: the pooling of plane nf (in
 * xp, the stack copy; results at yp) and the places of its maxima, in
 * one scan. */
static void lower_pool_places(Emitter *e, const IrOp *o, Dims x, Dims p,
                              const char *place)
{
    emit(e, "%s *pp = %s + (long)nf * %ld;", e->real, place, (long)p.h * p.w);
    emit_open(e, "for (int oh = 0; oh < %d; oh++)", p.h);
    char prow[48], yrow[48];
    snprintf(prow, sizeof prow, "pp + oh * %d", p.w);
    snprintf(yrow, sizeof yrow, "yp + oh * %d", p.w);
    emit_band_places(e, o, x, p.w, prow, yrow);
    emit_close(e, NULL);
}

/* The [x.h, x.w] plane of maxpool2d_grad_at(dy, place) from the pooled
 * [d.h, d.w] planes at `dyp` and `pp`, into `dst` with rows dst_row
 * apart: dy at each window's place, 0 elsewhere (rows and columns no
 * window covers too). Each window's KH * KW elements are stored straight
 * from its gradient and place: spreading them over a band's width into
 * arrays first, then reading those as vectors, made each vector load
 * wait for the scalar stores it spans (store forwarding); that spread
 * was 44% of mnist_cnn's conv1 weight gradient (docs/performance.md). */
static void emit_grad_at_plane(Emitter *e, const IrOp *o, Dims d, Dims x,
                               const char *dyp, const char *pp,
                               const char *dst, int dst_row)
{
    int KH = o->attr.win.kh, KW = o->attr.win.kw;
    const char *R = e->real;
    emit_open(e, "for (int oh = 0; oh < %d; oh++)", d.h);
    emit_open(e, "for (int ow = 0; ow < %d; ow++)", d.w);
    emit(e, "const %s gv = %s[oh * %d + ow], pv = %s[oh * %d + ow]; /* the "
         "window's gradient and place */", R, dyp, d.w, pp, d.w);
    emit_open(e, "for (int i = 0; i < %d; i++)", KH);
    emit_open(e, "for (int j = 0; j < %d; j++)", KW);
    emit(e, "%s[(oh * %d + i) * %d + ow * %d + j] = pv == i * %d + j ? gv : 0;",
         dst, KH, dst_row, KW, KW);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    if (d.w * KW < x.w) {
        emit_open(e, "for (int i = 0; i < %d; i++) /* no window covers the "
                  "last columns */", KH);
        emit_open(e, "for (int q = %d; q < %d; q++)", d.w * KW, x.w);
        emit(e, "%s[(oh * %d + i) * %d + q] = 0;", dst, KH, dst_row);
        emit_close(e, NULL);
        emit_close(e, NULL);
    }
    emit_close(e, NULL);
    emit_uncovered_rows(e, d, x, KH, dst, dst_row);
}

/* dx = maxpool2d_grad_at(dy, place), one plane per task. */
static void lower_maxpool2d_grad_at(Emitter *e, const Graph *g, const IrOp *o)
{
    Dims d = nchw(&g->ops[o->in[0]].shape), x = nchw(&o->shape);
    const char *R = e->real;
    lower_parallel_for(e, (long)x.n * x.c * x.h * x.w * 2);
    emit_open(e, "for (long nc = 0; nc < %d; nc++)", x.n * x.c);
    emit(e, "const %s *dyp = dy + nc * %ld;", R, (long)d.h * d.w);
    emit(e, "const %s *pp = place + nc * %ld;", R, (long)d.h * d.w);
    emit(e, "%s *dxp = dx + nc * %ld;", R, (long)x.h * x.w);
    emit_grad_at_plane(e, o, d, x, "dyp", "pp", "dxp", x.w);
    emit_close(e, NULL);
}

/* The gradient goes to the first maximum of each window, recomputed
 * from x; overlapping windows add up in window order. */
static void lower_maxpool2d_grad(Emitter *e, const Graph *g, const IrOp *o)
{
    Dims dy = nchw(&g->ops[o->in[0]].shape), x = nchw(&o->shape);
    long window = (long)o->attr.win.kh * o->attr.win.kw;
    if (maxpool_windows_disjoint(o)) {
        lower_maxpool_grad_disjoint(e, o, &g->ops[o->in[0]].shape, "dy", "x",
                                    "dx", false);
        return;
    }
    lower_parallel_for(e, (long)dy.n * dy.c * dy.h * dy.w * window);
    emit_open(e, "for (int nc = 0; nc < %d; nc++)", x.n * x.c);
    emit(e, "const %s *xp = x + (long)nc * %ld;", e->real, (long)x.h * x.w);
    emit(e, "const %s *dyp = dy + (long)nc * %ld;", e->real, (long)dy.h * dy.w);
    emit(e, "%s *dxp = dx + (long)nc * %ld;", e->real, (long)x.h * x.w);
    emit_zero(e, "dxp", (long)x.h * x.w);
    emit_open(e, "for (int oh = 0; oh < %d; oh++)", dy.h);
    emit_open(e, "for (int ow = 0; ow < %d; ow++)", dy.w);
    emit_window_argmax(e, o, x);
    emit(e, "dxp[best] += dyp[oh * %d + ow];", dy.w);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* The mean of each window (PyTorch divides by the whole window). */
static void emit_avgpool_plane(Emitter *e, const IrOp *o, Dims x, Dims y)
{
    long window = (long)o->attr.win.kh * o->attr.win.kw;
    char lit[48];
    emit_open(e, "for (int oh = 0; oh < %d; oh++)", y.h);
    emit_open(e, "for (int ow = 0; ow < %d; ow++)", y.w);
    emit(e, "%s s = 0;", e->real);
    emit_open(e, "for (int i = 0; i < %d; i++)", o->attr.win.kh);
    emit_open(e, "for (int j = 0; j < %d; j++)", o->attr.win.kw);
    emit(e, "s += xp[(oh * %d + i) * %d + ow * %d + j];", o->attr.win.sh, x.w,
         o->attr.win.sw);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit(e, "yp[oh * %d + ow] = s / %s;", y.w,
         emit_lit(e, (double)window, lit, sizeof lit));
    emit_close(e, NULL);
    emit_close(e, NULL);
}

static void lower_avgpool2d(Emitter *e, const Graph *g, const IrOp *o)
{
    Dims x = nchw(&g->ops[o->in[0]].shape), y = nchw(&o->shape);
    long window = (long)o->attr.win.kh * o->attr.win.kw;
    pool_plane_loop(e, "x", x, "y", y, (long)y.n * y.c * y.h * y.w * window);
    emit_avgpool_plane(e, o, x, y);
    emit_close(e, NULL);
}

/* One plane of a pooling, from `xp` to `yp`, for fused kernels. */
void lower_pool_plane(Emitter *e, const Graph *g, const IrOp *o)
{
    Dims x = nchw(&g->ops[o->in[0]].shape), y = nchw(&o->shape);
    if (o->op == OP_MAXPOOL2D)
        emit_maxpool_plane(e, o, x, y);
    else
        emit_avgpool_plane(e, o, x, y);
}

static void lower_avgpool2d_grad(Emitter *e, const Graph *g, const IrOp *o)
{
    Dims dy = nchw(&g->ops[o->in[0]].shape), x = nchw(&o->shape);
    long window = (long)o->attr.win.kh * o->attr.win.kw;
    char lit[48];
    pool_plane_loop(e, "dy", dy, "dx", x, (long)dy.n * dy.c * dy.h * dy.w *
                                              window);
    emit_zero(e, "dxp", (long)x.h * x.w);
    emit_open(e, "for (int oh = 0; oh < %d; oh++)", dy.h);
    emit_open(e, "for (int ow = 0; ow < %d; ow++)", dy.w);
    emit(e, "const %s d = dyp[oh * %d + ow] / %s;", e->real, dy.w,
         emit_lit(e, (double)window, lit, sizeof lit));
    emit_open(e, "for (int i = 0; i < %d; i++)", o->attr.win.kh);
    emit_open(e, "for (int j = 0; j < %d; j++)", o->attr.win.kw);
    emit(e, "dxp[(oh * %d + i) * %d + ow * %d + j] += d;", o->attr.win.sh, x.w,
         o->attr.win.sw);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* ---------------------------------------------------------------- */
/* batch normalisation: channel c is dim 1; its values are the batch    */
/* times `inner` positions, rows of x[n, c, ...] `inner` long          */

typedef struct Channels {
    int n, c;
    long inner;
} Channels;

static Channels channels_of(const Shape *s)
{
    long inner = shape_elems(s) / s->dim[0] / s->dim[1];
    return (Channels){s->dim[0], s->dim[1], inner};
}

/* One loop over channels; each body sees `row(n)` of the channel. */
static void channel_loop(Emitter *e, Channels ch, long work)
{
    lower_parallel_for(e, work);
    emit_open(e, "for (int c = 0; c < %d; c++)", ch.c);
}

/* accs[s] += sum over channel c of EXPRS[s], for n sums in one pass over
 * the channel, in which `xr`, `dyr` and `ymr` are the rows x[n, c, ...],
 * dy[n, c, ...] and y[n, c, ...] and '#' the position in them; lane
 * partial sums in double over the whole batch. */
static void emit_channel_sums(Emitter *e, Channels ch, int n,
                              const char *const *accs,
                              const char *const *tmpls)
{
    static const char *const names[] = {"lane", "lane2"};
    static const char *const rows[][2] = {{"xr", "x"}, {"dyr", "dy"},
                                          {"ymr", "y"}};
    emit_open(e, "%s", "");
    for (int s = 0; s < n; s++)
        emit(e, "double %s[%d] = {0};", names[s], lanes(e));
    emit_open(e, "for (int n = 0; n < %d; n++)", ch.n);
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        char use[8];
        snprintf(use, sizeof use, "%s[", rows[r][0]);
        bool used = false;
        for (int s = 0; s < n; s++)
            used = used || strstr(tmpls[s], use);
        if (used)
            emit(e, "const %s *%s = %s + ((long)n * %d + c) * %ld;", e->real,
                 rows[r][0], rows[r][1], ch.c, ch.inner);
    }
    emit_lane_loops_n(e, n, names, ch.inner, tmpls);
    emit_close(e, NULL);
    for (int s = 0; s < n; s++) {
        emit_open(e, "for (int q = 0; q < %d; q++)", lanes(e));
        emit(e, "%s += %s[q];", accs[s], names[s]);
        emit_close(e, NULL);
    }
    emit_close(e, NULL);
}

static void emit_channel_sum(Emitter *e, Channels ch, const char *acc,
                             const char *expr_tmpl)
{
    emit_channel_sums(e, ch, 1, &acc, &expr_tmpl);
}

/* Training: the batch's mean and biased variance (two passes, in double);
 * evaluation: the running statistics. */
static void lower_bn_stats(Emitter *e, const Graph *g, const IrOp *o,
                           bool train_mode)
{
    Channels ch = channels_of(&g->ops[o->in[0]].shape);
    long count = (long)ch.n * ch.inner;
    if (!train_mode) {
        emit(e, "(void)x; /* evaluation mode: the running statistics */");
        emit_open(e, "for (int c = 0; c < %d; c++)", ch.c);
        emit(e, "stats[c] = running_mean[c];");
        emit(e, "stats[%d + c] = running_var[c];", ch.c);
        emit_close(e, NULL);
        return;
    }
    emit(e, "(void)running_mean; /* training mode: the batch's statistics */");
    emit(e, "(void)running_var;");
    channel_loop(e, ch, 3 * count * ch.c);
    emit(e, "double sum = 0, squares = 0;");
    emit_channel_sum(e, ch, "sum", "xr[#]");
    emit(e, "const double mean = sum / %ld;", count);
    emit_channel_sum(e, ch, "squares",
                     "((double)xr[#] - mean) * ((double)xr[#] - mean)");
    emit(e, "stats[c] = (%s)mean;", e->real);
    emit(e, "stats[%d + c] = (%s)(squares / %ld);", ch.c, e->real, count);
    emit_close(e, NULL);
}

/* 1 / sqrt(var + eps) of channel c, from stats */
static void emit_inv_std(Emitter *e, const IrOp *o, Channels ch)
{
    char eps[48];
    emit(e, "const %s mean = stats[c];", e->real);
    emit(e, "const %s inv_std = (%s)(1.0 / sqrt((double)stats[%d + c] + %s));",
         e->real, e->real, ch.c,
         emit_lit(&(Emitter){.real = "double", .o = e->o}, o->attr.bn.eps, eps,
                  sizeof eps));
}

/* Rule bn_forward: channel c's statistics (the batch's in training, the
 * running ones in evaluation) and its normalisation in one iteration,
 * each normalised element, in local `value`, with its flat index `at`
 * and channel `c`, handed to `store` for the chain that follows. The
 * channel is read three times in a row, while it is still in cache. */
void lower_bn_fused(Emitter *e, const Graph *g, const IrOp *stats,
                    const IrOp *bn, const BnEpilogue *ep)
{
    Channels ch = channels_of(&bn->shape);
    long count = (long)ch.n * ch.inner;
    const char *R = e->real;
    char eps[48];
    emit_lit(&(Emitter){.real = "double", .o = e->o}, bn->attr.bn.eps, eps,
             sizeof eps);
    if (ep->train_mode)
        emit(e, "(void)running_mean; (void)running_var; /* training mode */");
    channel_loop(e, ch, 5 * count * ch.c);
    if (!ep->train_mode)
        emit(e, "const %s batch_mean = running_mean[c], batch_var = "
             "running_var[c];", R);
    if (ep->train_mode) {
        emit(e, "%s batch_mean, batch_var;", R);
        emit_open(e, "%s", "");
        emit(e, "double sum = 0, squares = 0;");
        emit_channel_sum(e, ch, "sum", "xr[#]");
        emit(e, "const double mean = sum / %ld;", count);
        emit_channel_sum(e, ch, "squares",
                         "((double)xr[#] - mean) * ((double)xr[#] - mean)");
        emit(e, "batch_mean = (%s)mean;", R);
        emit(e, "batch_var = (%s)(squares / %ld);", R, count);
        emit_close(e, NULL);
    }
    if (ep->stats)
        emit(e, "%s[c] = batch_mean, %s[%d + c] = batch_var;", ep->stats,
             ep->stats, ch.c);
    emit(e, "const %s mean = batch_mean;", R);
    emit(e, "const %s inv_std = (%s)(1.0 / sqrt((double)batch_var + %s));", R,
         R, eps);
    emit(e, "const %s scale = inv_std * gamma[c];", R);
    emit_open(e, "for (int n = 0; n < %d; n++)", ch.n);
    emit(e, "const long base = ((long)n * %d + c) * %ld;", ch.c, ch.inner);
    emit_open(e, "for (int j = 0; j < %ld; j++)", ch.inner);
    emit(e, "const long at = base + j;");
    emit(e, "const %s %s = (x[at] - mean) * scale + beta[c];", R, ep->value);
    ep->store(e, ep->ctx);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    (void)g;
    (void)stats;
}

/* y = (x - mean) * inv_std * gamma + beta, one row per iteration */
static void lower_batchnorm(Emitter *e, const IrOp *o)
{
    Channels ch = channels_of(&o->shape);
    lower_parallel_for(e, 2L * ch.n * ch.c * ch.inner);
    emit_open(e, "for (int nc = 0; nc < %d; nc++)", ch.n * ch.c);
    emit(e, "const int c = nc %% %d;", ch.c);
    emit_inv_std(e, o, ch);
    emit(e, "const %s scale = inv_std * gamma[c];", e->real);
    emit(e, "const %s *xr = x + (long)nc * %ld;", e->real, ch.inner);
    emit(e, "%s *yr = y + (long)nc * %ld;", e->real, ch.inner);
    emit_open(e, "for (int j = 0; j < %ld; j++)", ch.inner);
    emit(e, "yr[j] = (xr[j] - mean) * scale + beta[c];");
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* Sums over channel c of dy and of dy * (x - mean), in double: one pass
 * each, or both in one pass when fused (`one_pass`; the same sums, in the
 * same order). dy is read through `act` when one was folded in. */
static void emit_dy_sums(Emitter *e, Channels ch, const IrOp *act,
                         bool with_plain_sum, bool one_pass)
{
    char dyv[256], plain[300], centred[320];
    lower_dy_elem(e, act, "dyr[#]", "ymr[#]", dyv, sizeof dyv);
    snprintf(plain, sizeof plain, "%s", dyv);
    snprintf(centred, sizeof centred, "(double)%s * ((double)xr[#] - mean)",
             dyv);
    const char *accs[] = {"sum_dy_xc", "sum_dy"};
    const char *tmpls[] = {centred, plain};
    if (with_plain_sum)
        emit(e, "double sum_dy = 0;");
    emit(e, "double sum_dy_xc = 0;");
    if (with_plain_sum && one_pass) {
        emit_channel_sums(e, ch, 2, accs, tmpls);
        return;
    }
    if (with_plain_sum)
        emit_channel_sum(e, ch, "sum_dy", plain);
    emit_channel_sum(e, ch, "sum_dy_xc", centred);
}

/* dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)), after
 * emit_dy_sums inside the loop over channels */
static void emit_bn_dx(Emitter *e, Channels ch, const IrOp *act)
{
    long count = (long)ch.n * ch.inner;
    char dyv[256];
    lower_dy_elem(e, act, "dy[base + j]", "y[base + j]", dyv, sizeof dyv);
    emit(e, "const %s mean_dy = (%s)(sum_dy / %ld);", e->real, e->real, count);
    emit(e, "const %s mean_dy_xhat = (%s)(sum_dy_xc * inv_std / %ld);", e->real,
         e->real, count);
    emit(e, "const %s k = gamma[c] * inv_std;", e->real);
    emit_open(e, "for (int n = 0; n < %d; n++)", ch.n);
    emit(e, "const long base = ((long)n * %d + c) * %ld;", ch.c, ch.inner);
    emit_open(e, "for (int j = 0; j < %ld; j++)", ch.inner);
    emit(e, "const %s xhat = (x[base + j] - mean) * inv_std;", e->real);
    emit(e, "dx[base + j] = k * (%s - mean_dy - xhat * mean_dy_xhat);", dyv);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* Training-mode gradient, through the batch statistics:
 *   dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)) */
static void lower_batchnorm_grad_input(Emitter *e, const IrOp *o)
{
    Channels ch = channels_of(&o->shape);
    long count = (long)ch.n * ch.inner;
    channel_loop(e, ch, 6 * count * ch.c);
    emit_inv_std(e, o, ch);
    emit_dy_sums(e, ch, NULL, true, false);
    emit_bn_dx(e, ch, NULL);
    emit_close(e, NULL);
}

/* dgamma[c] = sum of dy * xhat over channel c */
static void lower_batchnorm_grad_gamma(Emitter *e, const IrOp *o,
                                       const Graph *g)
{
    Channels ch = channels_of(&g->ops[o->in[0]].shape);
    channel_loop(e, ch, 3L * ch.n * ch.inner * ch.c);
    emit_inv_std(e, o, ch);
    emit_dy_sums(e, ch, NULL, false, false);
    emit(e, "dgamma[c] = (%s)(sum_dy_xc * inv_std);", e->real);
    emit_close(e, NULL);
}

/* Rule bn_grad: the gradients of one batch norm (input, gamma, beta) in
 * one loop over channels, dy read through `act` when an activation's
 * gradient was folded in. Each channel's dy and x are summed in one pass
 * (sum_dy and sum_dy_xc together), dgamma and dbeta come from those sums'
 * passes, then dx; the single kernels read the channel five times. The
 * sums run in the single kernels' order, so the results are the same. */
void lower_bn_grad_fused(Emitter *e, const Graph *g, const IrOp *act,
                         const IrOp *gin, const IrOp *ggamma,
                         const IrOp *gbeta)
{
    const IrOp *o = gin ? gin : ggamma;
    Channels ch = channels_of(&g->ops[o->in[1]].shape);
    long count = (long)ch.n * ch.inner;
    channel_loop(e, ch, 6 * count * ch.c);
    emit_inv_std(e, o, ch);
    emit_dy_sums(e, ch, act, gin != NULL, true);
    if (ggamma)
        emit(e, "dgamma[c] = (%s)(sum_dy_xc * inv_std);", e->real);
    if (gbeta) {
        /* beta's gradient in the bias gradient's order and precision */
        emit_open(e, "%s", "");
        lower_bias_channel_sum(e, &g->ops[gbeta->in[0]].shape, act);
        emit_close(e, NULL);
    }
    if (gin)
        emit_bn_dx(e, ch, act);
    emit_close(e, NULL);
}

/* running = (1 - momentum) * running + momentum * batch, the variance
 * unbiased (count / (count - 1)) as PyTorch keeps it. */
static void lower_bn_running_update(Emitter *e, const Graph *g, const IrOp *o)
{
    const IrOp *stats = &g->ops[o->in[2]];
    Channels ch = channels_of(&g->ops[stats->in[0]].shape);
    long count = (long)ch.n * ch.inner;
    Emitter de = {.real = "double", .o = e->o};
    char m[48], keep[48], unbias[48];
    emit_lit(&de, o->attr.bn.momentum, m, sizeof m);
    emit_lit(&de, 1 - o->attr.bn.momentum, keep, sizeof keep);
    emit_lit(&de, (double)count / (double)(count - 1), unbias, sizeof unbias);
    emit_open(e, "for (int c = 0; c < %d; c++)", ch.c);
    emit(e, "running_mean[c] = (%s)(%s * running_mean[c] + %s * stats[c]);",
         e->real, keep, m);
    emit(e, "running_var[c] = (%s)(%s * running_var[c] + %s * stats[%d + c] "
         "* %s);", e->real, keep, m, ch.c, unbias);
    emit_close(e, NULL);
}

/* ---------------------------------------------------------------- */
/* dropout                                                           */

/* Training: 0 with probability p, else 1 / (1 - p) (inverted dropout, so
 * evaluation needs no rescaling), drawn in order from the model's RNG.
 * Evaluation: 1, so x * mask is x. */
static void lower_dropout_mask(Emitter *e, const IrOp *o, bool train_mode)
{
    long n = shape_elems(&o->shape);
    char p[48], keep[48];
    if (!train_mode) {
        emit(e, "(void)rng; /* evaluation mode: dropout keeps everything */");
        emit_open(e, "for (long i = 0; i < %ld; i++)", n);
        emit(e, "mask[i] = 1;");
        emit_close(e, NULL);
        return;
    }
    emit_lit(&(Emitter){.real = "double", .o = e->o}, o->attr.drop_p, p,
             sizeof p);
    emit_lit(e, 1 / (1 - o->attr.drop_p), keep, sizeof keep);
    emit_open(e, "for (long i = 0; i < %ld; i++)", n);
    emit(e, "mask[i] = nnc_rng_uniform(rng) < %s ? 0 : %s;", p, keep);
    emit_close(e, NULL);
}

/* ---------------------------------------------------------------- */

bool lower_conv_body(Emitter *e, const Graph *g, const IrOp *o,
                     bool train_mode)
{
    switch (o->op) {
    case OP_CONV2D: lower_conv2d_fused(e, g, o, NULL); break;
    case OP_CONV2D_GRAD_INPUT:
    case OP_CONV2D_GRAD_WEIGHT: lower_conv_grad(e, g, o, NULL); break;
    case OP_MAXPOOL2D: lower_maxpool2d(e, g, o); break;
    case OP_MAXPOOL2D_GRAD: lower_maxpool2d_grad(e, g, o); break;
    case OP_MAXPOOL2D_PLACE: lower_maxpool2d_place(e, g, o); break;
    case OP_MAXPOOL2D_GRAD_AT: lower_maxpool2d_grad_at(e, g, o); break;
    case OP_AVGPOOL2D: lower_avgpool2d(e, g, o); break;
    case OP_AVGPOOL2D_GRAD: lower_avgpool2d_grad(e, g, o); break;
    case OP_BN_STATS: lower_bn_stats(e, g, o, train_mode); break;
    case OP_BATCHNORM: lower_batchnorm(e, o); break;
    case OP_BATCHNORM_GRAD_INPUT: lower_batchnorm_grad_input(e, o); break;
    case OP_BATCHNORM_GRAD_GAMMA: lower_batchnorm_grad_gamma(e, o, g); break;
    case OP_BN_RUNNING_UPDATE: lower_bn_running_update(e, g, o); break;
    case OP_DROPOUT_MASK: lower_dropout_mask(e, o, train_mode); break;
    default: return false;
    }
    return true;
}
