/* lower_gemm.c — the loop nest of every matrix product.
 *
 * requires: C[M, N] = op(A)[M, K] op(B)[K, N] with literal sizes.
 * guarantees: register-blocked code: each tile of MR rows by NR columns
 * of C is summed in a local array the compiler keeps in vector
 * registers, over k in order (so every element is summed in the same
 * order whatever the thread count), then handed to an epilogue that
 * stores it (and, in fused kernels, applies bias and activation on the
 * way). The innermost loop runs over NR contiguous columns of B, which
 * the compiler vectorises; when B is used transposed its panel is first
 * copied into `packed` (scratch memory the plan provides), so that loop
 * is contiguous in every case. Rows of C are split between threads.
 *
 * Tiles at the right and bottom edges get their own copy of the loop
 * with their own literal sizes, so nothing inside runs on a variable
 * trip count. */
#include "nnc.h"

#include <string.h>

/* MR rows by NVEC vector registers of columns per tile: 8 x 2 uses 16
 * accumulators and 2 B loads for 16 multiply-adds per step, which keeps
 * both FMA units busy on AVX-512 (a 4 x 2 tile measured half as fast;
 * see docs/generated-code.md). VEC_BYTES is one AVX-512 register; on
 * narrower machines the compiler splits each vector operation. */
enum { MR = 8, NVEC = 2, VEC_BYTES = 64, PACK_BLOCK = 16 };

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

long gemm_scratch_elems(const Graph *g, const Kernel *k)
{
    const IrOp *o = &g->ops[k->ops[0]];
    if (o->op != OP_MATMUL || !o->attr.mm.tb)
        return 0;
    return gemm_k(g, o) * gemm_n(g, o);
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

/* B^T [N, K] -> packed [K, N], rows of the result contiguous in j.
 * Copied in square blocks so that the rows read and the rows written
 * both stay in L1: a plain column-by-column copy writes every element
 * to a different cache line and costs more than the product. */
static void emit_pack(Emitter *e, const Gemm *m)
{
    emit(e, "/* B is used transposed: lay it out as [%ld, %ld] first, so the "
         "inner loop reads it contiguously; in %dx%d blocks, which stay in "
         "cache */", m->K, m->N, PACK_BLOCK, PACK_BLOCK);
    lower_parallel_for(e, m->K * m->N * 8);
    emit_open(e, "for (int j0 = 0; j0 < %ld; j0 += %d)", m->N, PACK_BLOCK);
    emit_open(e, "for (int i0 = 0; i0 < %ld; i0 += %d)", m->K, PACK_BLOCK);
    if (m->N % PACK_BLOCK)
        emit_open(e, "for (int j = j0; j < (j0 + %d < %ld ? j0 + %d : %ld); j++)",
                  PACK_BLOCK, m->N, PACK_BLOCK, m->N);
    else
        emit_open(e, "for (int j = j0; j < j0 + %d; j++)", PACK_BLOCK);
    if (m->K % PACK_BLOCK)
        emit_open(e, "for (int k = i0; k < (i0 + %d < %ld ? i0 + %d : %ld); k++)",
                  PACK_BLOCK, m->K, PACK_BLOCK, m->K);
    else
        emit_open(e, "for (int k = i0; k < i0 + %d; k++)", PACK_BLOCK);
    emit(e, "%s[(long)k * %ld + j] = %s[(long)j * %ld + k];", m->packed, m->N,
         m->b, m->K);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* Elements of e's real type in one vector register. */
static int gemm_lanes(const Emitter *e)
{
    return VEC_BYTES / (strcmp(e->real, "double") ? 4 : 8);
}

void gemm_tiling(const Gemm *m, int lanes, GemmTiling *t)
{
    long nr = (long)NVEC * lanes;
    t->lanes = lanes;
    t->mr = MR;
    t->bands = m->M / MR;
    t->rest_rows = (int)(m->M - t->bands * MR);
    t->wide_cols = m->N / nr * nr;
    t->mid_vecs = (int)((m->N - t->wide_cols) / lanes);
    t->tail_cols = (int)(m->N - t->wide_cols - (long)t->mid_vecs * lanes);
}

/* The element of A in tile row r (a literal) at step k. */
static void a_elem(const Gemm *m, const char *i0, int r, char *buf, size_t len)
{
    if (m->ta)
        snprintf(buf, len, "%s[(long)k * %ld + %s + %d]", m->a, m->M, i0, r);
    else
        snprintf(buf, len, "%s[(long)(%s + %d) * %ld + k]", m->a, i0, r, m->K);
}

/* The epilogue over a finished tile held in `sum[mr][nr]`. */
static void emit_tile_epilogue(Emitter *e, const Gemm *m, const char *i0,
                               int mr, int nr)
{
    emit_open(e, "for (int r = 0; r < %d; r++)", mr);
    emit_open(e, "for (int c = 0; c < %d; c++)", nr);
    emit(e, "const long at = (long)(%s + r) * %ld + j0 + c;", i0, m->N);
    if (m->uses_col)
        emit(e, "const long j = j0 + c;");
    emit(e, "const %s t0 = sum[r][c];", e->real);
    m->epilogue(e, m->ctx);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* A tile of mr rows by nv vectors of columns, summed in mr * nv vector
 * registers: per step k, nv loads of B and one broadcast of A per row
 * feed mr * nv multiply-adds. Every statement is written out with
 * literal indices, so the compiler keeps `acc` in registers (a loop over
 * rows would leave it in memory). Columns [j_from, j_to). */
static void emit_vec_tile(Emitter *e, const Gemm *m, const char *i0, int mr,
                          long j_from, long j_to, int nv)
{
    const char *bsrc = m->tb ? m->packed : m->b;
    int lanes = gemm_lanes(e), nr = nv * lanes;
    char a[128];
    emit_open(e, "for (long j0 = %ld; j0 < %ld; j0 += %d)", j_from, j_to, nr);
    emit(e, "nnc_vec acc[%d][%d] = {{{0}}};", mr, nv);
    emit_open(e, "for (int k = 0; k < %ld; k++)", m->K);
    emit(e, "const %s *restrict brow = %s + (long)k * %ld + j0;", e->real, bsrc,
         m->N);
    emit(e, "nnc_vec b[%d];", nv);
    for (int v = 0; v < nv; v++)
        emit(e, "memcpy(&b[%d], brow + %d, sizeof b[%d]);", v, v * lanes, v);
    for (int r = 0; r < mr; r++) {
        a_elem(m, i0, r, a, sizeof a);
        emit_open(e, "%s", "");
        emit(e, "const %s a = %s;", e->real, a);
        for (int v = 0; v < nv; v++)
            emit(e, "acc[%d][%d] += a * b[%d];", r, v, v);
        emit_close(e, NULL);
    }
    emit_close(e, NULL);
    emit(e, "%s sum[%d][%d];", e->real, mr, nr);
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++)
            emit(e, "memcpy(sum[%d] + %d, &acc[%d][%d], sizeof acc[%d][%d]);", r,
                 v * lanes, r, v, r, v);
    emit_tile_epilogue(e, m, i0, mr, nr);
    emit_close(e, NULL);
}

/* The last columns, fewer than a vector: a scalar tile the compiler may
 * vectorise as it likes. Columns [j_from, j_from + nr). */
static void emit_scalar_tile(Emitter *e, const Gemm *m, const char *i0,
                             int mr, long j_from, int nr)
{
    const char *bsrc = m->tb ? m->packed : m->b;
    char a[128];
    a_elem(m, i0, 0, a, sizeof a);
    emit_open(e, "%s", "");
    emit(e, "const long j0 = %ld;", j_from);
    emit(e, "%s sum[%d][%d] = {{0}};", e->real, mr, nr);
    emit_open(e, "for (int k = 0; k < %ld; k++)", m->K);
    emit(e, "const %s *restrict brow = %s + (long)k * %ld + j0;", e->real, bsrc,
         m->N);
    emit_open(e, "for (int r = 0; r < %d; r++)", mr);
    if (m->ta)
        emit(e, "const %s a = %s[(long)k * %ld + %s + r];", e->real, m->a, m->M,
             i0);
    else
        emit(e, "const %s a = %s[(long)(%s + r) * %ld + k];", e->real, m->a, i0,
             m->K);
    emit_open(e, "for (int c = 0; c < %d; c++)", nr);
    emit(e, "sum[r][c] += a * brow[c];");
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_tile_epilogue(e, m, i0, mr, nr);
    emit_close(e, NULL);
}

/* All column tiles of a band of mr rows starting at i0. */
static void emit_band(Emitter *e, const Gemm *m, const GemmTiling *t,
                      const char *i0, int mr)
{
    long mid_end = t->wide_cols + (long)t->mid_vecs * t->lanes;
    if (t->wide_cols)
        emit_vec_tile(e, m, i0, mr, 0, t->wide_cols, NVEC);
    if (t->mid_vecs)
        emit_vec_tile(e, m, i0, mr, t->wide_cols, mid_end, t->mid_vecs);
    if (t->tail_cols)
        emit_scalar_tile(e, m, i0, mr, mid_end, t->tail_cols);
}

void lower_gemm(Emitter *e, const Gemm *m)
{
    GemmTiling t;
    gemm_tiling(m, gemm_lanes(e), &t);
    emit(e, "/* [%ld, %ld] = %s[%ld, %ld] * %s[%ld, %ld], in %dx%d tiles */",
         m->M, m->N, m->ta ? "A^T" : "A", m->M, m->K, m->tb ? "B^T" : "B", m->K,
         m->N, MR, NVEC * t.lanes);
    if (t.wide_cols || t.mid_vecs)
        emit(e, "typedef %s nnc_vec __attribute__((vector_size(%d), "
             "aligned(%d))); /* one vector register */",
             e->real, VEC_BYTES, VEC_BYTES / t.lanes);
    if (m->tb)
        emit_pack(e, m);
    if (t.bands) {
        lower_parallel_for(e, t.bands * MR * m->N * m->K);
        emit_open(e, "for (int band = 0; band < %ld; band++)", t.bands);
        emit(e, "const int i0 = band * %d;", MR);
        emit_band(e, m, &t, "i0", MR);
        emit_close(e, NULL);
    }
    if (t.rest_rows) {
        emit_open(e, "%s", "");
        emit(e, "const int i0 = %ld; /* the last %d rows */", t.bands * MR,
             t.rest_rows);
        emit_band(e, m, &t, "i0", t.rest_rows);
        emit_close(e, NULL);
    }
}
