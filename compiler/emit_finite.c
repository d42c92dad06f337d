/* emit_finite.c — what the generated code does about NaN and infinity.
 *
 * requires: kernels formed and the training program planned (emit_c.c
 * calls these while writing model.c and model.h).
 * guarantees: the normal path stays cheap: after backward, one pass over
 * the gradient block and a look at the loss (the optimizer update runs
 * after backward, in update(), so a step that is not finite simply skips
 * it). Only when a step is not finite does the model compute the same
 * batch again in checked mode, testing each kernel's stored results as
 * they are produced, to name the first tensor that went non-finite. The
 * schedule is deterministic and dropout's masks depend on the step only,
 * so the re-run reproduces the failure.
 *
 * Granularity: a fused kernel is tested on the results it stores; a value
 * it keeps in registers shows up in the first stored result that reads it,
 * and the message names the kernel. --no-fuse names every op. */
#include "nnc.h"

#include <string.h>

/* ---------------------------------------------------------------- */
/* helpers in the generated file                                     */

void emit_finite_helper(Emitter *e, bool scalar)
{
    const char *R = e->real;
    bool f32 = strcmp(R, "float") == 0;
    const char *U = f32 ? "uint32_t" : "uint64_t";
    const char *E = f32 ? "0x7f800000u" : "0x7ff0000000000000u";
    /* An integer test ORed over the values has no order to keep, so gcc
     * vectorises it without OpenMP's simd pragma and combines the lanes in
     * a tree; a float sum of x - x needed the pragma and, for the few
     * values of a small model, summed its lanes one after another. */
    emit(e, "/* Whether n values are all finite: an infinity or a NaN is the "
         "one value whose");
    emit(e, " * exponent bits are all ones. The test is ORed over the values, "
         "so the loop has");
    emit(e, " * no branch and no order to keep, and vectorises as it is. */");
    emit_open(e, "static %sint all_finite(const %s *v, long n)",
              scalar ? "NNC_SCALAR " : "", R);
    emit(e, "%s bad = 0;", U);
    /* on one thread, the test of mnist_mlp's 218058 gradients took 6% of
     * a 2-thread step; on both, the step measured 5% faster */
    if (!scalar)
        emit(e, "NNC_PARALLEL_OR");
    emit_open(e, "for (long i = 0; i < n; i++)");
    emit(e, "%s bits;", U);
    emit(e, "memcpy(&bits, &v[i], sizeof bits);");
    emit(e, "bad |= (bits & %s) == %s;", E, E);
    emit_close(e, NULL);
    emit(e, "return !bad;");
    emit_close(e, NULL);
    emit_blank(e);
}

/* ---------------------------------------------------------------- */
/* the checked training program                                      */

/* "h = relu [64, 128] at model.nn:9 (forward, kernel k00_...)", escaped
 * for a C string literal. */
static void describe_value(const Emitter *e, const Graph *g, const Kernel *k,
                           int v, char *buf, size_t len)
{
    static const char *const phase[] = {"forward", "backward", "update"};
    const IrOp *o = &g->ops[v];
    char shape[96], what[160], src[512];
    shape_str(&o->shape, shape, sizeof shape);
    if (o->storage == SG_GRAD)
        snprintf(what, sizeof what, "%s.grad", g->params[o->param].name);
    else
        snprintf(what, sizeof what, "%s = %s", o->name    ? o->name
                                               : o->label ? o->label
                                                          : "(unnamed)",
                 op_names[o->op]);
    emit_escape(e->o->source, src, sizeof src);
    snprintf(buf, len, "%s %s at %s:%d (%s, kernel %s)", what, shape, src,
             o->loc.line, phase[o->phase], k->name);
}

/* Whether the checked program tests member m of kernel k after the call:
 * every real-valued result the kernel writes to memory. */
static bool checked_result(const Graph *g, const Kernel *k, int m)
{
    const IrOp *o = &g->ops[k->ops[m]];
    if (o->dtype == DT_I32 || (o->storage != SG_ARENA && o->storage != SG_GRAD))
        return false;
    return k->kind == KK_SINGLE || k->stored[m];
}

void emit_kernel_checks(Emitter *e, const Graph *g, const Kernel *k,
                        const Plan *p)
{
    for (int m = 0; m < k->nops; m++) {
        if (!checked_result(g, k, m))
            continue;
        char where[96], what[1024];
        lower_buffer_expr(g, p, k->ops[m], where, sizeof where);
        describe_value(e, g, k, k->ops[m], what, sizeof what);
        emit_open(e, "if (!all_finite(%s, %ld))", where,
                  shape_elems(&g->ops[k->ops[m]].shape));
        emit(e, "return \"%s\";", what);
        emit_close(e, NULL);
    }
}

/* What the step starts from: the trained parameters and the batch. The
 * buffers (running statistics) are not read in training mode. */
void emit_input_checks(Emitter *e, const Graph *g)
{
    for (int i = 0; i < g->nparams; i++) {
        const Param *p = &g->params[i];
        if (p->buffer)
            continue;
        emit_open(e, "if (!all_finite(m->params + %ld, %ld))", p->offset,
                  p->size);
        emit(e, "return \"%s (a parameter, as the last update left it)\";",
             p->name);
        emit_close(e, NULL);
    }
    emit_open(e, "if (!all_finite(x, %ld))",
              shape_elems(&g->ops[g->input].shape));
    emit(e, "return \"the input batch\";");
    emit_close(e, NULL);
    if (g->label >= 0 && g->ops[g->label].dtype != DT_I32) {
        emit_open(e, "if (!all_finite(y, %ld))",
                  shape_elems(&g->ops[g->label].shape));
        emit(e, "return \"the label batch\";");
        emit_close(e, NULL);
    }
}

/* ---------------------------------------------------------------- */
/* the API                                                           */

void emit_finite_decls(Emitter *e, const char *p, const char *L)
{
    const char *R = e->real;
    emit(e, "/* Non-finite values. _train_step checks them itself; a caller of");
    emit(e, " * _compute_gradients asks _gradients_finite (1: the loss and "
         "every gradient of");
    emit(e, " * the last _compute_gradients are finite; the weight gradients "
         "were tested as they");
    emit(e, " * were computed, the others take one pass)");
    emit(e, " * before _apply_update. _find_nonfinite computes the gradients "
         "of the batch");
    emit(e, " * again, testing each kernel's results as they are produced, "
         "and returns -1");
    emit(e, " * with the first tensor holding a NaN or an infinity named in "
         "%s_error(),", p);
    emit(e, " * or 0 if all is finite this time. Neither changes the "
         "parameters. */");
    emit(e, "int %s_gradients_finite(const %s *m);", p, p);
    emit(e, "int %s_find_nonfinite(%s *m, const %s *x, const %s *y);", p, p, R,
         L);
}

/* A checkpoint never holds a NaN or an infinity: it is meant to be the
 * last good state. The test, once, for _save and _save_training. */
static void emit_save_refusal(Emitter *e, const char *p)
{
    emit(e, "/* Checkpoints hold the last good state: never a NaN or an "
         "infinity. */");
    emit_open(e, "static int refuse_nonfinite(%s *m, const char *path)", p);
    emit_open(e, "for (int t = 0; t < NTENSORS; t++)");
    emit(e, "const nnc_st_tensor *s = &%s_tensors[t];", p);
    emit(e, "long n = 1;");
    emit_open(e, "for (int d = 0; d < s->ndim; d++)");
    emit(e, "n *= (long)s->shape[d];");
    emit_close(e, NULL);
    emit_open(e, "if (!all_finite(m->params + s->offset, n))");
    emit(e, "snprintf(m->error, sizeof m->error, \"%%s: not saved: %%s holds "
         "a NaN or an infinity\", path, s->name);");
    emit(e, "return 1;");
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit(e, "return 0;");
    emit_close(e, NULL);
    emit_blank(e);
}

/* Whether parameter i's gradient is stored by a product that tests it
 * as it stores it (kernel_checks_value). */
static bool gradient_checked(const Graph *g, const Kernels *ks, int i)
{
    for (int k = 0; k < ks->n; k++)
        if (kernel_checks_value(g, &ks->k[k], g->params[i].grad))
            return true;
    return false;
}

/* The next run of adjacent parameters, from index *i on, whose gradients
 * no product tested: its first element and length; false when none is
 * left. */
static bool next_unchecked_run(const Graph *g, const Kernels *ks, int *i,
                               long *start, long *n)
{
    while (*i < g->nparams && gradient_checked(g, ks, *i))
        (*i)++;
    if (*i == g->nparams)
        return false;
    *start = g->params[*i].offset;
    *n = 0;
    while (*i < g->nparams && !gradient_checked(g, ks, *i) &&
           g->params[*i].offset == *start + *n)
        *n += g->params[(*i)++].size;
    return true;
}

/* _gradients_finite: the loss, the flag that the products of the weight
 * gradients set as they store them, and one pass over every other
 * gradient, in runs of adjacent parameters. */
static void emit_gradients_finite(Emitter *e, const Graph *g,
                                  const Kernels *ks, const Plan *train,
                                  const char *p)
{
    int i = 0;
    long start, n;
    bool more = next_unchecked_run(g, ks, &i, &start, &n);
    emit_open(e, "int %s_gradients_finite(const %s *m)", p, p);
    emit(e, "return all_finite(m->arena + %ld, 1) && !m->grads_nonfinite%s",
         train->offset[g->loss], more ? "" : ";");
    while (more) {
        long s0 = start, n0 = n;
        more = next_unchecked_run(g, ks, &i, &start, &n);
        emit(e, "    && all_finite(m->grads + %ld, %ld)%s", s0, n0,
             more ? "" : ";");
    }
    emit_close(e, NULL);
}

void emit_finite_api(Emitter *e, const Graph *g, const Kernels *ks,
                     const Plan *train, const char *p, const char *L)
{
    const char *R = e->real;
    emit_gradients_finite(e, g, ks, train, p);
    emit_blank(e);
    emit_open(e, "int %s_find_nonfinite(%s *m, const %s *x, const %s *y)", p, p,
              R, L);
    if (g->nclasses) {
        emit_open(e, "if (labels_invalid(m, y))");
        emit(e, "return -1;");
        emit_close(e, NULL);
    }
    emit(e, "const char *culprit = forward_backward_checked(m, x, y);");
    emit_open(e, "if (!culprit)");
    emit(e, "m->error[0] = '\\0';");
    emit(e, "return 0;");
    emit_close(e, NULL);
    emit(e, "snprintf(m->error, sizeof m->error, \"the first non-finite "
         "tensor is %%s\", culprit);");
    emit(e, "return -1;");
    emit_close(e, NULL);
    emit_blank(e);
    emit_save_refusal(e, p);
}

void emit_save_guard(Emitter *e)
{
    emit_open(e, "if (refuse_nonfinite(m, path))");
    emit(e, "return -1;");
    emit_close(e, NULL);
}
