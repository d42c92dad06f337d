/* lower_gemm.c — the loop nest of every matrix product.
 *
 * requires: C[M, N] = op(A)[M, K] op(B)[K, N] with literal sizes.
 * guarantees: register-blocked code. Rows of C go in bands of MR (8);
 * in a band, each tile of two vector registers' worth of columns is
 * summed in 16 vector accumulators (a GNU C vector type whose width the
 * C compiler picks: AVX-512, AVX or SSE), over k in order, so every
 * element is summed in the same order whatever the thread count; then
 * the tile goes to an epilogue that stores it (and, in fused kernels,
 * applies bias and activation on the way). Columns left over after the
 * vectors use a scalar tile; a product narrower than one AVX-512 vector
 * of float sums in vectors padded with zeros (emit_narrow). When B is
 * used transposed it is laid out as [K, N], so B's rows are contiguous
 * in every case: by each thread, tile by tile, for the tiles it reads
 * (packs_tiles, emit_shares), or else once into `packed` (scratch memory
 * the plan provides); when A is the smaller of the two, the kernel
 * computes C^T = B A^T instead and lays out A (gemm_swaps). Products of
 * many bands are cache-blocked: the bands go in groups that do each
 * column tile in turn, over k in chunks when K is long, so a tile of B
 * is read from L1 after the first band (emit_groups); a chunk goes on
 * from the sums the one before left, so each element is still summed
 * over k in order. Bands (groups, or shares) are split between threads:
 * no two threads write the same element and none sums another's, so
 * results are bit-identical for any thread count.
 *
 * Every loop bound is a literal or a constant expression of NNC_LANES;
 * the tile bodies are written out statement by statement. */
#include "nnc.h"

#include <string.h>

/* MR rows by NVEC vector registers of columns per tile: 8 x 2 uses 16
 * accumulators and 2 B loads for 16 multiply-adds per step, which keeps
 * both FMA units busy on AVX-512 (a 4 x 2 tile measured half as fast;
 * see docs/generated-code.md). MAX_VEC_BYTES is the widest register the
 * generated code uses (AVX-512); it picks its width when compiled. */
enum { MR = 8, NVEC = 2, MAX_VEC_BYTES = 64, PACK_K = 16, PACK_J = 64,
       TINY_MACS = 512, SWAP_MIN_ROWS = 32, GROUPS = 4, GROUP_MAX = 16,
       CHUNK_MAX = 128, TILE_PACK_BANDS = 8, NARROW_N = MAX_VEC_BYTES / 4,
       NARROW_K_MAX = 512, CLAIMED_GROUPS = 16 };

static long gemm_n(const Graph *g, const IrOp *o)
{
    const IrOp *B = &g->ops[o->in[1]];
    long brows = B->shape.dim[0], bcols = shape_elems(&B->shape) / brows;
    return o->attr.mm.tb ? brows : bcols;
}

static long gemm_k(const Graph *g, const IrOp *o)
{
    const IrOp *A = &g->ops[o->in[0]];
    long arows = A->shape.dim[0], acols = shape_elems(&A->shape) / arows;
    return o->attr.mm.ta ? arows : acols;
}

void gemm_from_op(const Graph *g, const IrOp *o, Gemm *m)
{
    const IrOp *A = &g->ops[o->in[0]];
    long arows = A->shape.dim[0], acols = shape_elems(&A->shape) / arows;
    m->ta = o->attr.mm.ta;
    m->tb = o->attr.mm.tb;
    m->M = m->ta ? acols : arows;
    m->K = gemm_k(g, o);
    m->N = gemm_n(g, o);
}

/* A product narrower than 8 columns with at most TINY_MACS multiply-adds
 * (XOR's layers) is written as one dot product an element: tiles,
 * packing and the `sum` array cost more than its arithmetic (XOR's
 * 4x4x2 layer took 25% of a training step as a tile, the array kept on
 * the stack). */
static bool gemm_is_tiny(const Gemm *m)
{
    return m->N < MAX_VEC_BYTES / 8 && m->M * m->N * m->K <= TINY_MACS;
}

bool gemm_op_is_tiny(const Graph *g, const IrOp *o)
{
    Gemm m;
    gemm_from_op(g, o, &m);
    return gemm_is_tiny(&m);
}

/* Whether A B^T is computed as its transpose B A^T, packing A [M, K]
 * instead of B [N, K]: when A is the smaller, the pack costs less (a
 * dense layer of 256 outputs on a batch of 64 packed its 784 x 256
 * weights every step, 12% of mnist_mlp's step), and the bands of C^T are
 * bands of B's rows, so each thread reads only its own share of the
 * weights, the rows whose gradient and update it computes too. A must
 * fill a tile of vectors (SWAP_MIN_ROWS, two AVX-512 registers of
 * float) to be worth it. Every element is still summed over k in order,
 * a[i][k] * b[j][k] either way, so the bits do not change. */
static bool gemm_swaps(const Gemm *m)
{
    return !m->ta && m->tb && m->M < m->N && m->M >= SWAP_MIN_ROWS &&
           !gemm_is_tiny(m);
}

/* The product as the tiles compute it: C, or C^T when gemm_swaps. */
static void orient(const Gemm *product, Gemm *m)
{
    *m = *product;
    if (!gemm_swaps(product))
        return;
    m->M = product->N;
    m->N = product->M;
    m->a = product->b;
    m->b = product->a;
    m->swapped = true;
}

/* Whether each thread lays out the tiles of B it uses itself
 * (emit_tile_pack), instead of the kernel packing all of B into shared
 * scratch first: B used transposed, whole bands, at least
 * TILE_PACK_BANDS of them, and columns that are whole tiles of two
 * vectors for any target's width (so no narrower tile reads a shared
 * copy). A shared copy is written part by each thread and then read
 * whole by all: on mnist_mlp's first layer (2 threads), reading the
 * other core's half cost 14 us and the copy 9, of a kernel of 117 us;
 * with each thread transposing the tiles it uses (nnc_transpose), 97.
 * Its second layer, 8 bands: 25 -> 16 us. But each thread transposes
 * all of B, which pays only over several bands a thread. `m` is
 * oriented. */
static bool packs_tiles(const Gemm *m)
{
    return m->tb && !gemm_is_tiny(m) && m->M % MR == 0 &&
           m->M >= TILE_PACK_BANDS * MR &&
           m->N % (NVEC * MAX_VEC_BYTES / 4) == 0;
}

/* Whether a product narrower than one AVX-512 vector of float (a layer
 * of 10 classes) is summed in vectors padded with zeros (emit_narrow):
 * its scalar tile kept the sums in memory, each multiply-add a load and
 * a store on the stack, and mnist_mlp's [64, 64] x [64, 10] took 5.1 us
 * where the padded vectors take 2.8. B is copied padded onto the stack,
 * hence the bound on K (64 KB of double at the most). `m` is oriented. */
static bool gemm_narrow(const Gemm *m)
{
    return m->N < NARROW_N && m->K <= NARROW_K_MAX && !gemm_is_tiny(m);
}

bool gemm_op_packs_tiles(const Graph *g, const IrOp *o)
{
    Gemm product, m;
    gemm_from_op(g, o, &product);
    orient(&product, &m);
    return packs_tiles(&m);
}

long gemm_op_scratch_elems(const Graph *g, const IrOp *o)
{
    Gemm m;
    gemm_from_op(g, o, &m);
    Gemm oriented;
    orient(&m, &oriented);
    if (!m.tb || gemm_is_tiny(&m) || packs_tiles(&oriented) ||
        gemm_narrow(&oriented))
        return 0;
    return m.K * (gemm_swaps(&m) ? m.M : m.N);
}

long gemm_scratch_elems(const Graph *g, const Kernel *k)
{
    const IrOp *o = &g->ops[k->ops[0]];
    return o->op == OP_MATMUL ? gemm_op_scratch_elems(g, o) : 0;
}

/* The bound of a blocked loop: "start + step", or the smaller of that
 * and n when n is not a multiple of step. */
static void block_end(char *buf, size_t len, const char *start, int step,
                      long n)
{
    if (n % step)
        snprintf(buf, len, "(%s + %d < %ld ? %s + %d : %ld)", start, step, n,
                 start, step, n);
    else
        snprintf(buf, len, "%s + %d", start, step);
}

/* B^T [N, K] -> packed [K, N], rows of the result contiguous in j.
 * Blocks of PACK_K values of k (one cache line of each row of B^T) by
 * PACK_J values of j: for each k, PACK_J elements go to contiguous lines
 * of `packed`, and the PACK_J lines read from stay in L1 while k crosses
 * them. The threads split k, so each writes whole rows of `packed`.
 * The copy this replaces split 16-column blocks between the threads and
 * took twice as long on mnist_mlp's input (784 x 64: 28 -> 10 us on 2
 * threads); the column-by-column copy before that, 10 times as long.
 * The copy costs more than its arithmetic suggests (a strided load an
 * element), hence its lower threshold for threads. */
static void emit_pack(Emitter *e, const Gemm *m)
{
    emit(e, "/* B is used transposed: lay it out as [%ld, %ld] first, so "
         "the inner loop reads it contiguously; %d values of k by %d of j "
         "at a time, whose lines stay in cache */", m->K, m->N, PACK_K,
         m->N < PACK_J ? (int)m->N : PACK_J);
    char kend[128], jend[128];
    block_end(kend, sizeof kend, "k0", PACK_K, m->K);
    lower_parallel_for(e, m->K * m->N * 16);
    emit_open(e, "for (int k0 = 0; k0 < %ld; k0 += %d)", m->K, PACK_K);
    if (m->N > PACK_J) {
        block_end(jend, sizeof jend, "j0", PACK_J, m->N);
        emit_open(e, "for (int j0 = 0; j0 < %ld; j0 += %d)", m->N, PACK_J);
    } else {
        snprintf(jend, sizeof jend, "%ld", m->N);
    }
    emit_open(e, "for (int k = k0; k < %s; k++)", kend);
    emit_open(e, "for (int j = %s; j < %s; j++)", m->N > PACK_J ? "j0" : "0",
              jend);
    emit(e, "%s[(long)k * %ld + j] = %s[(long)j * %ld + k];", m->packed, m->N,
         m->b, m->K);
    emit_close(e, NULL);
    emit_close(e, NULL);
    if (m->N > PACK_J)
        emit_close(e, NULL);
    emit_close(e, NULL);
}

/* Elements of e's real type in the widest vector register (AVX-512). */
static int gemm_max_lanes(const Emitter *e)
{
    return MAX_VEC_BYTES / (strcmp(e->real, "double") ? 4 : 8);
}

void gemm_tiling(const Gemm *m, int max_lanes, GemmTiling *t)
{
    t->mr = MR;
    t->bands = m->M / MR;
    t->rest_rows = (int)(m->M - t->bands * MR);
    t->vec = m->N >= max_lanes;
    /* lanes is max_lanes or a power-of-two fraction of it, so when N is
     * a multiple of the widest tile (or vector) it is one of every
     * narrower tile (or vector) too */
    t->mid = t->vec && m->N % (NVEC * max_lanes) != 0;
    t->tail = !t->vec || m->N % max_lanes != 0;
}

/* The vector type, chosen by the machine the C is compiled for: a GNU C
 * vector wider than the machine's registers is lowered element by
 * element, which measured 20 times slower than scalar code. Vectors are
 * loaded and stored through `nnc_vec *` casts, which may_alias and the
 * alignment of one element make valid at any address of the array. They
 * were memcpy'd before: gcc tuned for AVX2 (-march=haswell) copies an
 * unaligned 32-byte vector as two 16-byte halves through the stack, and
 * the 32-byte load after them waits for the halves to reach the cache
 * (store forwarding): mnist_mlp's step took 3.4 ms on 1 thread built for
 * AVX2, 1.2 with the casts (0.65 for AVX-512 either way). */
void lower_vec_type(Emitter *e)
{
    emit(e, "/* nnc_vec: one vector register of %s (GNU C vector extension); "
         "NNC_LANES elements */", e->real);
    emit(e, "#if defined(__AVX512F__)");
    emit(e, "#define NNC_VEC_BYTES 64");
    emit(e, "#elif defined(__AVX__)");
    emit(e, "#define NNC_VEC_BYTES 32");
    emit(e, "#else");
    emit(e, "#define NNC_VEC_BYTES 16");
    emit(e, "#endif");
    emit(e, "#define NNC_LANES (NNC_VEC_BYTES / %d)",
         strcmp(e->real, "double") ? 4 : 8);
    emit(e, "typedef %s nnc_vec __attribute__((vector_size(NNC_VEC_BYTES), "
         "aligned(%d), may_alias));", e->real,
         strcmp(e->real, "double") ? 4 : 8);
}

/* The element of A in tile row r (a literal) at step k. */
static void a_elem(const Gemm *m, const char *i0, int r, char *buf, size_t len)
{
    if (m->ta)
        snprintf(buf, len, "%s[(long)k * %ld + %s + %d]", m->a, m->M, i0, r);
    else
        snprintf(buf, len, "%s[(long)(%s + %d) * %ld + k]", m->a, i0, r, m->K);
}

/* check_finite, for the element t0 just stored: an infinity or a NaN
 * minus itself is a NaN, which is not 0. On mnist_mlp's dW1 this costs
 * 1-4 us of 96; a max of the magnitudes' bits cost 10-13, and a
 * multiply-add by 0 of the tile's registers with a test of each lane
 * 7. */
static void emit_test_stored(Emitter *e)
{
    emit(e, "bad |= t0 - t0 != 0; /* an infinity or a NaN */");
}

/* The epilogue over a finished tile held in `sum`, nc columns wide. A
 * tile of C^T is stored column by column of C, so the stores of the
 * inner loop stay contiguous. For a gradient (check_finite) each
 * element stored is tested (emit_test_stored). */
static void emit_tile_epilogue(Emitter *e, const Gemm *m, const char *i0,
                               int mr, const char *nc)
{
    if (m->swapped) {
        emit_open(e, "for (int c = 0; c < %s; c++)", nc);
        emit_open(e, "for (int r = 0; r < %d; r++)", mr);
        emit(e, "const long at = (long)(j0 + c) * %ld + %s + r;", m->M, i0);
        if (m->uses_col)
            emit(e, "const long j = %s + r;", i0);
    } else {
        emit_open(e, "for (int r = 0; r < %d; r++)", mr);
        emit_open(e, "for (int c = 0; c < %s; c++)", nc);
        emit(e, "const long at = (long)(%s + r) * %ld + j0 + c;", i0, m->N);
        if (m->uses_col)
            emit(e, "const long j = j0 + c;");
    }
    emit(e, "const %s t0 = sum[r][c];", e->real);
    m->epilogue(e, m->ctx);
    if (m->check_finite)
        emit_test_stored(e);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* The rows a tile covers: one band of mr rows at i0, or, when `group`,
 * each band of the group band0..band1 in turn (cache blocking: the
 * group's bands share each tile of B while it is in L1). A group's
 * tiles of two vectors go over k in chunks of `chunk` values when that
 * is less than K, so that the chunk of B stays in L1 across the bands
 * too; their sums wait in `part` between chunks. */
typedef struct Rows {
    int mr;
    bool group;
    long bands; /* in the group */
    long chunk;
    bool tile_pack; /* B's tiles laid out in `bt` by the thread (packs_tiles) */
} Rows;

/* Opens the loop over the group's bands, when there is one. */
static void open_bands(Emitter *e, const Rows *rows)
{
    if (!rows->group)
        return;
    emit_open(e, "for (int band = band0; band < band1; band++)");
    emit(e, "const int i0 = band * %d;", MR);
}

static void close_bands(Emitter *e, const Rows *rows)
{
    if (rows->group)
        emit_close(e, NULL);
}

/* The tile of B that the bands at j0 use, for kn values of k from k0
 * (at most `len`): laid out as bt[k - k0][j - j0] by the thread that
 * uses it, NNC_LANES by NNC_LANES with nnc_transpose and the rows of k
 * left over one by one. bt stays in L1 while the group's bands read it. */
static void emit_tile_pack(Emitter *e, const Gemm *m, const char *k0,
                           const char *kn, long len)
{
    emit(e, "/* this tile of B, laid out [k][j] by the thread that uses it */");
    emit(e, "_Alignas(NNC_VEC_BYTES) %s bt[%ld][2 * NNC_LANES];", e->real, len);
    emit(e, "const int kn = %s;", kn);
    emit_open(e, "for (int c = 0; c < 2 * NNC_LANES; c += NNC_LANES)");
    emit(e, "const %s *restrict bsrc = %s + (j0 + c) * %ld + %s;", e->real,
         m->b, m->K, k0);
    emit(e, "int kb = 0;");
    emit_open(e, "for (; kb + NNC_LANES <= kn; kb += NNC_LANES)");
    emit(e, "nnc_transpose(&bt[kb][c], 2 * NNC_LANES, bsrc + kb, %ld);", m->K);
    emit_close(e, NULL);
    emit_open(e, "for (; kb < kn; kb++)");
    emit_open(e, "for (int l = 0; l < NNC_LANES; l++)");
    emit(e, "bt[kb][c + l] = bsrc[(long)l * %ld + kb];", m->K);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* The body of a tile of mr rows by nv vectors of columns at j0, summed
 * in mr * nv vector registers: per step k, nv loads of B and one
 * broadcast of A per row feed mr * nv multiply-adds. Every statement is
 * written out with literal indices, so the compiler keeps `acc` in
 * registers (a loop over rows would leave it in memory). In chunks,
 * each element is still summed over k in order: a chunk goes on from
 * the sums the one before left in `part`. */
static void emit_vec_tile(Emitter *e, const Gemm *m, const Rows *rows, int nv)
{
    const char *bsrc = m->tb ? m->packed : m->b;
    const int mr = rows->mr;
    const bool chunked = rows->group && nv == NVEC && rows->chunk < m->K;
    char a[128], kend[128];
    if (chunked) {
        emit(e, "nnc_vec part[%ld][%d][%d]; /* sums of the group's tiles "
             "between chunks of k */", rows->bands, mr, nv);
        emit_open(e, "for (int k0 = 0; k0 < %ld; k0 += %ld)", m->K,
                  rows->chunk);
        block_end(kend, sizeof kend, "k0", (int)rows->chunk, m->K);
    }
    if (rows->tile_pack) {
        char kn[160];
        if (!chunked || m->K % rows->chunk == 0)
            snprintf(kn, sizeof kn, "%ld", chunked ? rows->chunk : m->K);
        else
            snprintf(kn, sizeof kn, "%s - k0", kend);
        emit_tile_pack(e, m, chunked ? "k0" : "0", kn,
                       chunked ? rows->chunk : m->K);
    }
    open_bands(e, rows);
    emit(e, "nnc_vec acc[%d][%d] = {{{0}}};", mr, nv);
    if (chunked) {
        emit(e, "if (k0 > 0)");
        emit(e, "    memcpy(acc, part[band - band0], sizeof acc);");
        emit_open(e, "for (int k = k0; k < %s; k++)", kend);
    } else {
        emit_open(e, "for (int k = 0; k < %ld; k++)", m->K);
    }
    if (rows->tile_pack)
        emit(e, "const %s *restrict brow = bt[k%s];", e->real,
             chunked ? " - k0" : "");
    else
        emit(e, "const %s *restrict brow = %s + (long)k * %ld + j0;", e->real,
             bsrc, m->N);
    emit(e, "nnc_vec b[%d];", nv);
    for (int v = 0; v < nv; v++)
        emit(e, "b[%d] = *(const nnc_vec *)(brow + %d * NNC_LANES);", v, v);
    for (int r = 0; r < mr; r++) {
        a_elem(m, "i0", r, a, sizeof a);
        emit_open(e, "%s", "");
        emit(e, "const %s a = %s;", e->real, a);
        for (int v = 0; v < nv; v++)
            emit(e, "acc[%d][%d] += a * b[%d];", r, v, v);
        emit_close(e, NULL);
    }
    emit_close(e, NULL);
    if (chunked) {
        emit_open(e, "if (k0 + %ld < %ld)", rows->chunk, m->K);
        emit(e, "memcpy(part[band - band0], acc, sizeof acc);");
        emit(e, "continue; /* the sums are not finished */");
        emit_close(e, NULL);
    }
    emit(e, "%s sum[%d][%d * NNC_LANES];", e->real, mr, nv);
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++)
            emit(e, "*(nnc_vec *)(sum[%d] + %d * NNC_LANES) = acc[%d][%d];", r,
                 v, r, v);
    emit_tile_epilogue(e, m, "i0", mr, nv == 1 ? "NNC_LANES" : "2 * NNC_LANES");
    close_bands(e, rows);
    if (chunked)
        emit_close(e, NULL);
}

/* The body of a scalar tile of mr rows by nc columns at j0 (nc at most
 * `width`), for the columns left over after the vectors: the compiler
 * vectorises it as it likes. */
static void emit_scalar_tile(Emitter *e, const Gemm *m, const Rows *rows,
                             const char *nc, long width)
{
    const char *bsrc = m->tb ? m->packed : m->b;
    const int mr = rows->mr;
    open_bands(e, rows);
    emit(e, "%s sum[%d][%ld] = {{0}};", e->real, mr, width);
    emit_open(e, "for (int k = 0; k < %ld; k++)", m->K);
    emit(e, "const %s *restrict brow = %s + (long)k * %ld + j0;", e->real, bsrc,
         m->N);
    emit_open(e, "for (int r = 0; r < %d; r++)", mr);
    if (m->ta)
        emit(e, "const %s a = %s[(long)k * %ld + i0 + r];", e->real, m->a,
             m->M);
    else
        emit(e, "const %s a = %s[(long)(i0 + r) * %ld + k];", e->real, m->a,
             m->K);
    emit_open(e, "for (int c = 0; c < %s; c++)", nc);
    emit(e, "sum[r][c] += a * brow[c];");
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_tile_epilogue(e, m, "i0", mr, nc);
    close_bands(e, rows);
}

/* All column tiles of a band of rows (or of a group's bands, each
 * tile in turn): tiles of two vectors, then one of a single vector, then
 * the scalar rest. The bounds are constant expressions of NNC_LANES,
 * which the C compiler folds, so no trip count is a run-time variable. */
static void emit_band(Emitter *e, const Gemm *m, const GemmTiling *t,
                      const Rows *rows, int max_lanes)
{
    char nc[32];
    if (!t->vec) {
        emit_open(e, "%s", "");
        emit(e, "const long j0 = 0;");
        snprintf(nc, sizeof nc, "%ld", m->N);
        emit_scalar_tile(e, m, rows, nc, m->N);
        emit_close(e, NULL);
        return;
    }
    emit(e, "long j0 = 0;");
    emit_open(e, "for (; j0 + 2 * NNC_LANES <= %ld; j0 += 2 * NNC_LANES)",
              m->N);
    emit_vec_tile(e, m, rows, NVEC);
    emit_close(e, NULL);
    if (t->mid) {
        /* j0 + NNC_LANES <= N, but constant: gcc -O2 -march=native
         * (AVX-512) analysed the loops of this tile, dead for 301
         * columns (301 % 32 < 16), and -Werror stopped the build on
         * "iteration 13 invokes undefined behavior" */
        emit_open(e, "if (%ld %% (2 * NNC_LANES) >= NNC_LANES)", m->N);
        emit_vec_tile(e, m, rows, 1);
        emit(e, "j0 += NNC_LANES;");
        emit_close(e, NULL);
    }
    if (t->tail) {
        emit_open(e, "if (j0 < %ld)", m->N);
        emit(e, "const int nc = (int)(%ld - j0); /* fewer than NNC_LANES */",
             m->N);
        emit_scalar_tile(e, m, rows, "nc", max_lanes);
        emit_close(e, NULL);
    }
}

/* Each element of C summed over k in order, as a tile sums it, so the
 * bits are those of the tiled form; B is read where it is, unpacked.
 * The loops are unrolled whole: every index becomes a constant and every
 * element a chain of multiply-adds on its own. */
static void emit_dot_products(Emitter *e, const Gemm *m)
{
    emit(e, "/* [%ld, %ld] = %s[%ld, %ld] * %s[%ld, %ld], %ld multiply-adds: "
         "one dot product an element */", m->M, m->N, m->ta ? "A^T" : "A",
         m->M, m->K, m->tb ? "B^T" : "B", m->K, m->N, m->M * m->N * m->K);
    emit(e, "#pragma GCC unroll %d", TINY_MACS);
    emit_open(e, "for (int i = 0; i < %ld; i++)", m->M);
    emit(e, "#pragma GCC unroll %d", TINY_MACS);
    emit_open(e, "for (int j = 0; j < %ld; j++)", m->N);
    emit(e, "const long at = (long)i * %ld + j;", m->N);
    emit(e, "%s t0 = 0;", e->real);
    emit(e, "#pragma GCC unroll %d", TINY_MACS);
    emit_open(e, "for (int k = 0; k < %ld; k++)", m->K);
    char a[96], b[96];
    if (m->ta)
        snprintf(a, sizeof a, "%s[(long)k * %ld + i]", m->a, m->M);
    else
        snprintf(a, sizeof a, "%s[(long)i * %ld + k]", m->a, m->K);
    if (m->tb)
        snprintf(b, sizeof b, "%s[(long)j * %ld + k]", m->b, m->K);
    else
        snprintf(b, sizeof b, "%s[(long)k * %ld + j]", m->b, m->N);
    emit(e, "t0 += %s * %s;", a, b);
    emit_close(e, NULL);
    m->epilogue(e, m->ctx);
    if (m->check_finite)
        emit_test_stored(e);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* Bands per group: a quarter of them, so the groups divide evenly
 * between 2 or 4 threads, and at most GROUP_MAX, which keeps `part` to
 * 16 KB. */
static long group_bands(long bands)
{
    long g = bands / GROUPS;
    return g < 1 ? 1 : g > GROUP_MAX ? GROUP_MAX : g;
}

/* Values of k per chunk: K in equal chunks of at most CHUNK_MAX, so the
 * last chunk is not a sliver. */
static long k_chunk(long K)
{
    long chunks = (K + CHUNK_MAX - 1) / CHUNK_MAX;
    return (K + chunks - 1) / chunks;
}

/* Bands per group when several threads claim the groups (Emitter.claim):
 * CLAIMED_GROUPS of them, small enough that a thread that starts late
 * (fuse.c, rule_grad_tail) still gets its share (on mnist_mlp's dW1, 8
 * groups gained nothing on 2 threads where 16 gained 2%), and at most
 * `most`, the bands `part` holds. */
static long claimed_bands(long bands, long most)
{
    long g = bands >= 2 * CLAIMED_GROUPS ? bands / CLAIMED_GROUPS
             : bands >= 4               ? 2 /* B's tile read by two bands */
                                        : 1;
    return g < most ? g : most;
}

/* The loop over claimed groups: `per` bands a group, chosen at run time.
 * One thread keeps emit_groups' larger groups, which read each tile of B
 * fewer times: mnist_mlp's 1-thread step took 0.99 of its time with
 * groups of 2 bands on one thread too (2 threads: 1.00, the same
 * groups). */
static void open_claimed_groups(Emitter *e, long bands, long one_thread)
{
    const long several = claimed_bands(bands, one_thread);
    if (several == one_thread)
        emit(e, "const int per = %ld; /* bands a group */", several);
    else
        emit(e, "const int per = NNC_THREADS > 1 ? %ld : %ld; /* bands a "
             "group: a thread that starts late still gets its share */",
             several, one_thread);
    emit_open(e, "for (int cur = 0, group; (group = nnc_next_chunk(&%s, "
              "(%ld + per - 1) / per, &cur)) >= 0;)", e->claim, bands);
    emit(e, "const int band0 = group * per;");
    emit(e, "const int band1 = band0 + per < %ld ? band0 + per : %ld;", bands,
         bands);
}

/* The bands in groups of g, a group a thread's, each of the group's
 * column tiles done for all its bands in turn, B's tile (or its chunk of
 * k) read from L1 after the first band. On mnist_mlp, 2 threads: the
 * first layer's weight gradient ([256, 784], K = 64) 0.101 -> 0.092 ms,
 * its forward product (K = 784, chunks of 112) 0.115 -> 0.110 ms, the
 * step 0.388-0.394 -> 0.373-0.380 ms. Under Emitter.claim the groups go
 * to the threads of the caller's region as each asks (nnc_next_chunk);
 * each group is still one thread's, so the bits do not change. */
static void emit_groups(Emitter *e, const Gemm *m, const GemmTiling *t,
                        long g, long work, int max_lanes)
{
    const Rows rows = {.mr = MR, .group = true, .bands = g,
                       .chunk = k_chunk(m->K)};
    const long groups = (t->bands + g - 1) / g;
    char of[48] = "groups (of per bands, below)";
    if (!e->claim)
        snprintf(of, sizeof of, "groups of %ld", g);
    const char *claimed = e->claim ? "; each thread claims the next group" : "";
    if (rows.chunk < m->K)
        emit(e, "/* bands in %s, which share each tile of B, %ld values of "
             "k at a time%s */", of, rows.chunk, claimed);
    else
        emit(e, "/* bands in %s, which share each tile of B%s */", of,
             claimed);
    if (e->claim) {
        open_claimed_groups(e, t->bands, g);
        emit_band(e, m, t, &rows, max_lanes);
        emit_close(e, NULL);
        return;
    }
    lower_parallel_for_bad(e, work, m->check_finite);
    emit_open(e, "for (int group = 0; group < %ld; group++)", groups);
    emit(e, "const int band0 = group * %ld;", g);
    if (t->bands % g)
        emit(e, "const int band1 = band0 + %ld < %ld ? band0 + %ld : %ld;", g,
             t->bands, g, t->bands);
    else
        emit(e, "const int band1 = band0 + %ld;", g);
    emit_band(e, m, t, &rows, max_lanes);
    emit_close(e, NULL);
}

/* One tile of mr rows at i0 by all N columns, in NV vectors of
 * accumulators (NV * NNC_LANES >= N) over the padded rows of bt. */
static void emit_narrow_tile(Emitter *e, const Gemm *m, int mr)
{
    char a[128];
    emit(e, "nnc_vec acc[%d][NV] = {{{0}}};", mr);
    emit_open(e, "for (int k = 0; k < %ld; k++)", m->K);
    emit(e, "nnc_vec b[NV];");
    emit_open(e, "for (int v = 0; v < NV; v++)");
    emit(e, "b[v] = *(const nnc_vec *)(bt[k] + v * NNC_LANES);");
    emit_close(e, NULL);
    for (int r = 0; r < mr; r++) {
        a_elem(m, "i0", r, a, sizeof a);
        emit_open(e, "%s", "");
        emit(e, "const %s a = %s;", e->real, a);
        emit_open(e, "for (int v = 0; v < NV; v++)");
        emit(e, "acc[%d][v] += a * b[v];", r);
        emit_close(e, NULL);
        emit_close(e, NULL);
    }
    emit_close(e, NULL);
    emit(e, "%s sum[%d][NV * NNC_LANES];", e->real, mr);
    emit_open(e, "for (int v = 0; v < NV; v++)");
    for (int r = 0; r < mr; r++)
        emit(e, "*(nnc_vec *)(sum[%d] + v * NNC_LANES) = acc[%d][v];", r, r);
    emit_close(e, NULL);
    char nc[32];
    snprintf(nc, sizeof nc, "%ld", m->N);
    emit(e, "const long j0 = 0;");
    emit_tile_epilogue(e, m, "i0", mr, nc);
}

/* A narrow product (gemm_narrow): B copied as bt[k][j], its N columns
 * padded with zeros to NV whole vectors, then bands of 8 rows and the
 * rest, each a tile of NV vectors. Each element is the same sum over k
 * in order as the scalar tile's, so the bits are the same. */
static void emit_narrow(Emitter *e, const Gemm *m, const GemmTiling *t)
{
    emit(e, "enum { NV = (%ld + NNC_LANES - 1) / NNC_LANES }; /* vectors "
         "that hold a row of C */", m->N);
    emit(e, "/* B laid out [k][j], each row padded with zeros to NV whole "
         "vectors */");
    emit(e, "_Alignas(NNC_VEC_BYTES) %s bt[%ld][NV * NNC_LANES];", e->real,
         m->K);
    emit_open(e, "for (int k = 0; k < %ld; k++)", m->K);
    emit_open(e, "for (int j = 0; j < NV * NNC_LANES; j++)");
    if (m->tb)
        emit(e, "bt[k][j] = j < %ld ? %s[(long)j * %ld + k] : 0;", m->N, m->b,
             m->K);
    else
        emit(e, "bt[k][j] = j < %ld ? %s[(long)k * %ld + j] : 0;", m->N, m->b,
             m->N);
    emit_close(e, NULL);
    emit_close(e, NULL);
    if (t->bands) {
        lower_parallel_for_bad(e, t->bands * MR * NARROW_N * m->K,
                               m->check_finite);
        emit_open(e, "for (int band = 0; band < %ld; band++)", t->bands);
        emit(e, "const int i0 = band * %d;", MR);
        emit_narrow_tile(e, m, MR);
        emit_close(e, NULL);
    }
    if (t->rest_rows) {
        emit_open(e, "%s", "");
        if (t->bands)
            emit(e, "const int i0 = %ld; /* the last %d rows */", t->bands * MR,
                 t->rest_rows);
        else
            emit(e, "const int i0 = 0; /* all %d rows, fewer than a band */",
                 t->rest_rows);
        emit_narrow_tile(e, m, t->rest_rows);
        emit_close(e, NULL);
    }
}

/* The bands in equal shares, one per thread, each share in groups of
 * at most GROUP_MAX bands that do each column tile in turn (as
 * emit_groups), the thread laying out each tile of B it reads itself
 * (packs_tiles). The shares follow the thread count at run time, so a
 * thread lays out B once per group: with emit_groups' four fixed groups,
 * each of two threads would transpose B twice. A share's rows of C^T (a
 * layer's outputs) are those whose weights, gradients and update the
 * same thread computes. Without enough work for the threads, one share:
 * so also when the caller's own parallel region calls the kernel. */
static void emit_shares(Emitter *e, const Gemm *m, const GemmTiling *t,
                        long work, int max_lanes)
{
    const long g = t->bands < GROUP_MAX ? t->bands : GROUP_MAX;
    const Rows rows = {.mr = MR, .group = true, .bands = g,
                       .chunk = k_chunk(m->K), .tile_pack = true};
    emit(e, "/* bands in a share per thread, in groups of up to %ld that "
         "share each tile of B%s */", g, rows.chunk < m->K ? ", a chunk "
         "of k at a time" : "");
    bool threads = lower_parallel(e, work, m->check_finite);
    emit_open(e, "%s", "");
    if (threads) {
        emit(e, "const int share0 = (int)(%ldL * NNC_THREAD / NNC_THREADS);",
             t->bands);
        emit(e, "const int share1 = (int)(%ldL * (NNC_THREAD + 1) / "
             "NNC_THREADS);", t->bands);
    } else {
        emit(e, "const int share0 = 0, share1 = %ld;", t->bands);
    }
    emit_open(e, "for (int band0 = share0; band0 < share1; band0 += %ld)", g);
    emit(e, "const int band1 = band0 + %ld < share1 ? band0 + %ld : share1;",
         g, g);
    emit_band(e, m, t, &rows, max_lanes);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

void lower_gemm_product(Emitter *e, const Gemm *product)
{
    if (gemm_is_tiny(product)) {
        emit_dot_products(e, product);
        return;
    }
    Gemm oriented;
    const Gemm *m = &oriented;
    orient(product, &oriented);
    if (m->swapped)
        emit(e, "/* [%ld, %ld] = A[%ld, %ld] * B^T[%ld, %ld], computed as its "
             "transpose [%ld, %ld] = B[%ld, %ld] * A^T[%ld, %ld]: A is the "
             "smaller to lay out, and each band of B's rows is one "
             "thread's */", product->M, product->N, product->M, product->K,
             product->K, product->N, product->N, product->M, product->N,
             product->K, product->K, product->M);
    GemmTiling t;
    int max_lanes = gemm_max_lanes(e);
    gemm_tiling(m, max_lanes, &t);
    if (gemm_narrow(m)) {
        emit(e, "/* [%ld, %ld] = %s[%ld, %ld] * %s[%ld, %ld], in tiles of %d "
             "rows by all the columns, in vectors padded with zeros */", m->M,
             m->N, m->ta ? "A^T" : "A", m->M, m->K, m->tb ? "B^T" : "B", m->K,
             m->N, MR);
        lower_vec_type(e);
        emit_narrow(e, m, &t);
        return;
    }
    emit(e, "/* [%ld, %ld] = %s[%ld, %ld] * %s[%ld, %ld], in tiles of %d "
         "rows by %s */", m->M, m->N, m->ta ? "A^T" : "A", m->M, m->K,
         m->tb ? "B^T" : "B", m->K, m->N, MR,
         t.vec ? "2 vector registers of columns" : "all the columns");
    if (t.vec)
        lower_vec_type(e);
    const bool tile_pack = packs_tiles(m);
    if (m->tb && !tile_pack)
        emit_pack(e, m);
    if (tile_pack) {
        emit_shares(e, m, &t, t.bands * MR * m->N * m->K, max_lanes);
    } else if (t.bands) {
        const long work = t.bands * MR * m->N * m->K;
        /* a scalar tile spans all of N: B is in L1 for every band */
        const long g = t.vec ? group_bands(t.bands) : 1;
        if (g > 1 || e->claim)
            emit_groups(e, m, &t, g, work, max_lanes);
        else {
            const Rows rows = {.mr = MR};
            lower_parallel_for_bad(e, work, m->check_finite);
            emit_open(e, "for (int band = 0; band < %ld; band++)", t.bands);
            emit(e, "const int i0 = band * %d;", MR);
            emit_band(e, m, &t, &rows, max_lanes);
            emit_close(e, NULL);
        }
    }
    if (t.rest_rows) {
        emit_open(e, "%s", "");
        if (t.bands)
            emit(e, "const int i0 = %ld; /* the last %d rows */",
                 t.bands * MR, t.rest_rows);
        else
            emit(e, "const int i0 = 0; /* all %d rows, fewer than a band */",
                 t.rest_rows);
        const Rows rows = {.mr = t.rest_rows};
        emit_band(e, m, &t, &rows, max_lanes);
        emit_close(e, NULL);
    }
}

bool gemm_op_claims(const Graph *g, const IrOp *o)
{
    Gemm product = {0}, m;
    gemm_from_op(g, o, &product);
    if (gemm_is_tiny(&product))
        return false;
    orient(&product, &m);
    GemmTiling t;
    gemm_tiling(&m, MAX_VEC_BYTES / 4, &t); /* vectors of float, the widest */
    return !m.tb && !gemm_narrow(&m) && t.vec && t.rest_rows == 0 &&
           t.bands >= 2;
}

/* The product, and for a gradient (check_finite) `bad` around it: set
 * where an element stored is not finite, reported through *nonfinite. */
void lower_gemm(Emitter *e, const Gemm *product)
{
    if (product->check_finite)
        emit(e, "int bad = 0; /* whether an element stored is not finite */");
    lower_gemm_product(e, product);
    if (product->check_finite) {
        emit_open(e, "if (bad)");
        emit(e, "*nonfinite = 1;");
        emit_close(e, NULL);
    }
}

/* One stage of the transpose of an L x L block held in L registers
 * (`from`, results in `to`): rows i and i + s (i's bit s clear) swap the
 * off-diagonal blocks of s lanes, one two-register shuffle a row. After
 * the stages s = L/2, ..., 1 the block is transposed. */
static void emit_transpose_stage(Emitter *e, int L, int s, const char *from,
                                 const char *to)
{
    for (int i = 0; i < L; i++) {
        if (i & s)
            continue;
        for (int half = 0; half < 2; half++) {
            char mask[160];
            size_t at = 0;
            for (int p = 0; p < L; p++) {
                int idx = !half ? (p & s ? L + p - s : p)
                                : (p & s ? L + p : p + s);
                at += (size_t)snprintf(mask + at, sizeof mask - at, "%s%d",
                                       p ? ", " : "", idx);
            }
            emit(e, "%s[%d] = NNC_SHUFFLE(%s[%d], %s[%d], %s);", to,
                 i + half * s, from, i, from, i + s, mask);
        }
    }
}

/* The stages for L lanes under `#if NNC_T_LANES == L`, and the stores. */
static void emit_transpose_lanes(Emitter *e, int L, bool first)
{
    emit(e, "#%s NNC_T_LANES == %d", first ? "if" : "elif", L);
    const char *from = "r", *to = "t";
    for (int s = L / 2; s >= 1; s /= 2) {
        emit_transpose_stage(e, L, s, from, to);
        const char *x = from;
        from = to;
        to = x;
    }
    emit_open(e, "for (int i = 0; i < NNC_T_LANES; i++)");
    emit(e, "*(nnc_tvec *)(dst + i * dst_stride) = %s[i];", from);
    emit_close(e, NULL);
}

/* nnc_transpose(dst, dst_stride, src, src_stride): dst[i][j] = src[j][i]
 * for a block of NNC_LANES x NNC_LANES, rows the strides apart: how a
 * thread lays out its tiles of B (emit_tile_pack). One register a row
 * and log2(NNC_LANES) stages of shuffles; gcc compiled the element-by-
 * element copy into a load and an insert an element, and on mnist_mlp's
 * first layer the transposes measured 4 times as fast. */
void lower_transpose_helper(Emitter *e, const Graph *g, const Kernels *ks)
{
    bool used = false;
    for (int i = 0; i < ks->n && !used; i++) {
        const IrOp *o = &g->ops[ks->k[i].ops[0]];
        used = o->op == OP_MATMUL && gemm_op_packs_tiles(g, o);
    }
    if (!used)
        return;
    const char *R = e->real;
    int size = strcmp(R, "double") ? 4 : 8;
    emit(e, "/* nnc_transpose: dst[i][j] = src[j][i] for a block of one "
         "vector register's lanes");
    emit(e, " * square, rows dst_stride and src_stride elements apart: "
         "each stage swaps the");
    emit(e, " * off-diagonal blocks of half the size before, a shuffle of "
         "two registers a row */");
    emit(e, "#if defined(__AVX512F__)");
    emit(e, "#define NNC_T_BYTES 64");
    emit(e, "#elif defined(__AVX__)");
    emit(e, "#define NNC_T_BYTES 32");
    emit(e, "#else");
    emit(e, "#define NNC_T_BYTES 16");
    emit(e, "#endif");
    emit(e, "#define NNC_T_LANES (NNC_T_BYTES / %d)", size);
    emit(e, "typedef %s nnc_tvec __attribute__((vector_size(NNC_T_BYTES), "
         "aligned(%d), may_alias));", R, size);
    emit(e, "#if defined(__clang__) || __GNUC__ >= 12");
    emit(e, "#define NNC_SHUFFLE(a, b, ...) __builtin_shufflevector(a, b, "
         "__VA_ARGS__)");
    emit(e, "#else");
    emit(e, "typedef int%d_t nnc_tmask __attribute__((vector_size("
         "NNC_T_BYTES)));", size * 8);
    emit(e, "#define NNC_SHUFFLE(a, b, ...) __builtin_shuffle(a, b, "
         "(nnc_tmask){__VA_ARGS__})");
    emit(e, "#endif");
    emit(e, "static inline void nnc_transpose(%s *restrict dst, long "
         "dst_stride, const %s *restrict src, long src_stride)", R, R);
    emit_open(e, "%s", "");
    emit(e, "nnc_tvec r[NNC_T_LANES], t[NNC_T_LANES];");
    emit_open(e, "for (int i = 0; i < NNC_T_LANES; i++)");
    emit(e, "r[i] = *(const nnc_tvec *)(src + i * src_stride);");
    emit_close(e, NULL);
    for (int L = 64 / size; L >= 16 / size; L /= 2)
        emit_transpose_lanes(e, L, L == 64 / size);
    emit(e, "#endif");
    emit_close(e, NULL);
    emit_blank(e);
}
