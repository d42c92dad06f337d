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

enum { MR = 4, NR = 32 };

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

/* B^T [N, K] -> packed [K, N], rows of the result contiguous in j. */
static void emit_pack(Emitter *e, const Gemm *m)
{
    emit(e, "/* B is used transposed: lay it out as [%ld, %ld] first, so the "
         "inner loop reads it contiguously */", m->K, m->N);
    lower_parallel_for(e, m->K * m->N);
    emit_open(e, "for (int j = 0; j < %ld; j++)", m->N);
    emit_open(e, "for (int k = 0; k < %ld; k++)", m->K);
    emit(e, "%s[(long)k * %ld + j] = %s[(long)j * %ld + k];", m->packed, m->N,
         m->b, m->K);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* One tile shape: rows [i0, i0 + mr), columns [j0, j0 + nr) where j0
 * runs from j_from in steps of nr while the tile fits. */
static void emit_tile(Emitter *e, const Gemm *m, const char *i0, int mr,
                      long j_from, long j_to, int nr)
{
    const char *b = m->tb ? m->packed : m->b;
    emit_open(e, "for (long j0 = %ld; j0 < %ld; j0 += %d)", j_from, j_to, nr);
    emit(e, "%s acc[%d][%d] = {{0}};", e->real, mr, nr);
    emit_open(e, "for (int k = 0; k < %ld; k++)", m->K);
    emit(e, "const %s *restrict brow = %s + (long)k * %ld + j0;", e->real, b,
         m->N);
    emit_open(e, "for (int r = 0; r < %d; r++)", mr);
    if (m->ta)
        emit(e, "const %s a = %s[(long)k * %ld + %s + r];", e->real, m->a, m->M,
             i0);
    else
        emit(e, "const %s a = %s[(long)(%s + r) * %ld + k];", e->real, m->a, i0,
             m->K);
    emit_open(e, "for (int c = 0; c < %d; c++)", nr);
    emit(e, "acc[r][c] += a * brow[c];");
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_open(e, "for (int r = 0; r < %d; r++)", mr);
    emit_open(e, "for (int c = 0; c < %d; c++)", nr);
    emit(e, "const long at = (long)(%s + r) * %ld + j0 + c;", i0, m->N);
    if (m->uses_col)
        emit(e, "const long j = j0 + c;");
    emit(e, "const %s t0 = acc[r][c];", e->real);
    m->epilogue(e, m->ctx);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* All column tiles of a band of mr rows starting at i0. */
static void emit_band(Emitter *e, const Gemm *m, const char *i0, int mr)
{
    long full = m->N / NR * NR, rest = m->N - full;
    if (full)
        emit_tile(e, m, i0, mr, 0, full, NR);
    if (rest)
        emit_tile(e, m, i0, mr, full, m->N, (int)rest);
}

void lower_gemm(Emitter *e, const Gemm *m)
{
    emit(e, "/* [%ld, %ld] = %s[%ld, %ld] * %s[%ld, %ld], in %dx%d tiles */",
         m->M, m->N, m->ta ? "A^T" : "A", m->M, m->K, m->tb ? "B^T" : "B", m->K,
         m->N, MR, NR);
    if (m->tb)
        emit_pack(e, m);
    long bands = m->M / MR, rest = m->M - bands * MR;
    if (bands) {
        lower_parallel_for(e, bands * MR * m->N * m->K);
        emit_open(e, "for (int band = 0; band < %ld; band++)", bands);
        emit(e, "const int i0 = band * %d;", MR);
        emit_band(e, m, "i0", MR);
        emit_close(e, NULL);
    }
    if (rest) {
        emit_open(e, "%s", "");
        emit(e, "const int i0 = %ld; /* the last %ld rows */", bands * MR, rest);
        emit_band(e, m, "i0", (int)rest);
        emit_close(e, NULL);
    }
}
