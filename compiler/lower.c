/* lower.c — each kernel becomes a C function with a literal loop nest.
 *
 * requires: kernels formed, memory planned.
 * guarantees: one static function per kernel, named after it, whose
 * loop bounds, strides and shapes are all literals; the reductions run
 * in a fixed order (no atomics), so a given thread count always gives
 * the same bits. OpenMP pragmas only appear where a loop has enough
 * work to pay for waking the threads.
 *
 * A kernel's arguments are its buffers, inputs first, then its result;
 * update kernels also take the learning rate and step-dependent scalars. */
#include "nnc.h"

#include <string.h>

enum { PARALLEL_WORK = 1 << 18 }; /* operations worth waking the threads for: a
                                     * region costs microseconds, more on a
                                     * busy machine */
/* An element of the softmax cross-entropy or its gradient from logits, in
 * those operations: one exp in double (the gradient, when it took two,
 * 15 ns: 10 us on one thread for mnist_mlp's 64 x 10, 6 on two, where a
 * start and join of the threads costs 0.8 us), as long as hundreds of
 * vectorised multiply-adds. */
enum { EXP_WORK = 512 };
/* Rows of a loss whose terms are summed from an array on the stack
 * (lower_xent): 32 KB of double at the most */
enum { TERM_ROWS_MAX = 4096 };

/* Names a kernel uses for its inputs and its result, chosen per op so the
 * generated code reads like the maths: dx = dy * (x > 0). */
typedef struct Roles {
    const char *in[4];
    const char *out;
} Roles;

static Roles op_roles(OpKind op)
{
    switch (op) {
    case OP_MATMUL: return (Roles){{"A", "B"}, "C"};
    case OP_BIAS_ADD: return (Roles){{"x", "bias"}, "y"};
    case OP_RELU_GRAD:
    case OP_LEAKY_RELU_GRAD:
    case OP_SIGMOID_GRAD:
    case OP_TANH_GRAD:
    case OP_SOFTMAX_GRAD: return (Roles){{"dy", "y"}, "dx"};
    case OP_BIAS_GRAD: return (Roles){{"dy"}, "dbias"};
    case OP_MSE:
    case OP_BCE:
    case OP_BCE_LOGITS:
    case OP_SOFTMAX_XENT:
    case OP_XENT_PROBS: return (Roles){{"pred", "target"}, "loss"};
    case OP_MSE_GRAD:
    case OP_BCE_GRAD:
    case OP_BCE_LOGITS_GRAD:
    case OP_SOFTMAX_XENT_GRAD:
    case OP_XENT_PROBS_GRAD: return (Roles){{"pred", "target", "dloss"}, "dpred"};
    case OP_SGD_UPDATE: return (Roles){{"w", "g", "v"}, NULL};
    case OP_ADAM_UPDATE: return (Roles){{"w", "g", "m", "v"}, NULL};
    case OP_RMSPROP_UPDATE: return (Roles){{"w", "g", "v"}, NULL};
    case OP_FILL: return (Roles){{NULL}, "out"};
    case OP_CONV2D: return (Roles){{"x", "w"}, "y"};
    case OP_CONV2D_GRAD_INPUT: return (Roles){{"dy", "w"}, "dx"};
    case OP_CONV2D_GRAD_WEIGHT: return (Roles){{"dy", "x"}, "dw"};
    case OP_MAXPOOL2D:
    case OP_AVGPOOL2D: return (Roles){{"x"}, "y"};
    case OP_MAXPOOL2D_GRAD: return (Roles){{"dy", "x"}, "dx"};
    case OP_MAXPOOL2D_PLACE: return (Roles){{"x"}, "place"};
    case OP_MAXPOOL2D_GRAD_AT: return (Roles){{"dy", "place"}, "dx"};
    case OP_AVGPOOL2D_GRAD: return (Roles){{"dy"}, "dx"};
    case OP_BN_STATS: return (Roles){{"x", "running_mean", "running_var"}, "stats"};
    case OP_BATCHNORM: return (Roles){{"x", "stats", "gamma", "beta"}, "y"};
    case OP_BATCHNORM_GRAD_INPUT: return (Roles){{"dy", "x", "stats", "gamma"}, "dx"};
    case OP_BATCHNORM_GRAD_GAMMA: return (Roles){{"dy", "x", "stats"}, "dgamma"};
    case OP_BN_RUNNING_UPDATE:
        return (Roles){{"running_mean", "running_var", "stats"}, NULL};
    case OP_DROPOUT_MASK: return (Roles){{NULL}, "mask"};
    default: return (Roles){{"x", "y"}, "out"};
    }
}

static const char *idx_type(long n)
{
    return n < (1L << 31) ? "int" : "long";
}

void lower_parallel_for(Emitter *e, long work)
{
    lower_parallel_for_bad(e, work, false);
}

/* Inside a kernel's own parallel region (Emitter.serial) a loop is one
 * thread's: a pragma there would open a nested region. */
bool lower_parallel(Emitter *e, long work, bool bad)
{
    if (work < PARALLEL_WORK || e->serial)
        return false;
    emit(e, bad ? "NNC_PARALLEL_BAD" : "NNC_PARALLEL");
    return true;
}

void lower_parallel_for_bad(Emitter *e, long work, bool bad)
{
    if (work >= PARALLEL_WORK && !e->serial)
        emit(e, bad ? "NNC_PARALLEL_FOR_BAD" : "NNC_PARALLEL_FOR");
}

/* A matrix product whose result is a parameter's gradient: as a kernel of
 * its own it tests what it stores (lower_matmul, kernel_checks_gradient) */
bool matmul_stores_gradient(const IrOp *o)
{
    return o->op == OP_MATMUL && o->storage == SG_GRAD;
}

/* Whether kernel k is compiled as scalar code: a matrix product small
 * enough for dot products (lower_gemm.c), and an optimizer update of at
 * most TINY_PARAMS values. A vector load of values that the kernel before
 * stored one by one cannot take them from those stores and waits until
 * they reach the cache; in a model as small as XOR that toll falls on the
 * step's critical path, which runs through every product and the update.
 * The step measured 1.25x faster with these kernels scalar; making its
 * other small kernels scalar too measured slower. */
static bool kernel_is_scalar(const Graph *g, const Kernel *k)
{
    const IrOp *o = &g->ops[k->ops[0]];
    if (o->op == OP_MATMUL)
        return gemm_op_is_tiny(g, o);
    if (op_class[o->op] != OC_UPDATE)
        return false;
    long values = 0;
    for (int m = 0; m < k->nops; m++)
        values += shape_elems(&g->ops[k->ops[m]].shape);
    return values <= TINY_PARAMS;
}

/* How a kernel's function is declared: NNC_SCALAR (a macro of the
 * generated file) marks the scalar ones. */
const char *kernel_storage(const Graph *g, const Kernel *k)
{
    return kernel_is_scalar(g, k) ? "static NNC_SCALAR void" : "static void";
}

/* ---------------------------------------------------------------- */
/* signatures and calls                                              */

static void kernel_comment(Emitter *e, const Graph *g, const Kernel *k)
{
    const IrOp *o = &g->ops[k->ops[0]];
    char shape[96];
    static const char *const phase[] = {"forward", "backward", "update"};
    const char *mode = !op_depends_on_mode(o->op) ? ""
                     : k->train_mode               ? ", training mode"
                                                   : ", evaluation mode";
    emit(e, "/* %s: %s %s -> %s  (%s:%d, %s%s) */", k->name, op_names[o->op],
         o->label ? o->label : "", shape_str(&o->shape, shape, sizeof shape),
         e->o->source, o->loc.line, phase[o->phase], mode);
}

static void kernel_params(const Graph *g, const IrOp *o, char *buf, size_t len,
                          const char *real, bool in_place)
{
    Roles r = op_roles(o->op);
    /* the plan may give an elementwise kernel's result the memory of an
     * input (same element read, then written): no restrict then */
    const char *restrict_kw = in_place ? "" : "restrict ";
    size_t at = 0;
    bool update = op_class[o->op] == OC_UPDATE;
    for (int i = 0; i < o->nin; i++) {
        const IrOp *in = &g->ops[o->in[i]];
        /* params and state are updated, and so are running statistics */
        bool written = (update && i != 1) ||
                       (o->op == OP_BN_RUNNING_UPDATE && i < 2);
        at += (size_t)snprintf(buf + at, len - at, "%s%s%s *%s%s",
                               i ? ", " : "", written ? "" : "const ",
                               in->dtype == DT_I32 ? "int32_t" : real,
                               restrict_kw, r.in[i]);
    }
    if (r.out)
        at += (size_t)snprintf(buf + at, len - at, "%s%s *%s%s",
                               o->nin ? ", " : "", real, restrict_kw, r.out);
    if (o->op == OP_SGD_UPDATE || o->op == OP_RMSPROP_UPDATE)
        snprintf(buf + at, len - at, ", double lr, int first_step");
    else if (o->op == OP_ADAM_UPDATE)
        snprintf(buf + at, len - at, ", double lr, double bias1, double bias2");
    else if (o->op == OP_MATMUL && gemm_op_scratch_elems(g, o) > 0)
        snprintf(buf + at, len - at, ", %s *restrict packed", real);
    else if (o->op == OP_DROPOUT_MASK)
        snprintf(buf + at, len - at, ", nnc_rng *rng");
    if (matmul_stores_gradient(o)) {
        at = strlen(buf);
        snprintf(buf + at, len - at, ", int *restrict nonfinite");
    }
}

/* Where value v lives, as a C expression in a program function. */
void lower_buffer_expr(const Graph *g, const Plan *p, int v, char *buf,
                       size_t len)
{
    int root = v;
    while (g->ops[root].storage == SG_VIEW)
        root = g->ops[root].in[0];
    const IrOp *o = &g->ops[root];
    switch (o->storage) {
    case SG_ARENA: snprintf(buf, len, "m->arena + %ld", p->offset[root]); break;
    case SG_PARAM: snprintf(buf, len, "m->params + %ld", o->offset); break;
    case SG_GRAD: snprintf(buf, len, "m->grads + %ld", o->offset); break;
    case SG_STATE: snprintf(buf, len, "m->state + %ld", o->offset); break;
    case SG_INPUT: snprintf(buf, len, "x"); break;
    case SG_LABEL: snprintf(buf, len, "y"); break;
    default: snprintf(buf, len, "NULL"); break;
    }
}

void lower_call(Emitter *e, const Graph *g, const Kernel *k, const Plan *p)
{
    if (k->kind != KK_SINGLE) {
        lower_fused_call(e, g, k, p);
        return;
    }
    const IrOp *o = &g->ops[k->ops[0]];
    char args[1024], one[96];
    size_t at = 0;
    args[0] = '\0';
    for (int i = 0; i < o->nin; i++) {
        lower_buffer_expr(g, p, o->in[i], one, sizeof one);
        at += (size_t)snprintf(args + at, sizeof args - at, "%s%s",
                               i ? ", " : "", one);
    }
    if (op_roles(o->op).out) {
        lower_buffer_expr(g, p, k->ops[0], one, sizeof one);
        at += (size_t)snprintf(args + at, sizeof args - at, "%s%s",
                               o->nin ? ", " : "", one);
    }
    char b1[48], b2[48];
    if (k->scratch > 0)
        at += (size_t)snprintf(args + at, sizeof args - at, ", m->arena + %ld",
                               p->scratch[k->index]);
    if (kernel_checks_gradient(g, k))
        at += (size_t)snprintf(args + at, sizeof args - at,
                               ", &m->grads_nonfinite");
    if (o->op == OP_DROPOUT_MASK)
        snprintf(args + at, sizeof args - at, ", &m->rng");
    else if (o->op == OP_SGD_UPDATE || o->op == OP_RMSPROP_UPDATE)
        snprintf(args + at, sizeof args - at, ", m->lr, m->step == 1");
    else if (o->op == OP_ADAM_UPDATE)
        snprintf(args + at, sizeof args - at,
                 ", m->lr, 1.0 - pow(%s, (double)m->step), "
                 "1.0 - pow(%s, (double)m->step)",
                 emit_lit(&(Emitter){.real = "double"}, o->attr.opt.beta1, b1,
                          sizeof b1),
                 emit_lit(&(Emitter){.real = "double"}, o->attr.opt.beta2, b2,
                          sizeof b2));
    emit(e, "%s(%s);", k->name, args);
}

/* ---------------------------------------------------------------- */
/* elementwise                                                       */

/* The value of one element of op o's result, given its operands' element
 * expressions. Kept separate from the loop so fused kernels can nest it. */
void lower_ewise_expr(Emitter *e, const IrOp *o, const char *a, const char *b,
                       char *buf, size_t len)
{
    char l1[48], l2[48];
    const char *zero = e->o->f64 ? "0.0" : "0.0f";
    const char *one = e->o->f64 ? "1.0" : "1.0f";
    const char *fn_exp = e->o->f64 ? "exp" : "expf";
    const char *fn_tanh = e->o->f64 ? "tanh" : "tanhf";
    const char *fn_log = e->o->f64 ? "log" : "logf";
    switch (o->op) {
    case OP_COPY: snprintf(buf, len, "%s", a); break;
    case OP_ADD: snprintf(buf, len, "%s + %s", a, b); break;
    case OP_SUB: snprintf(buf, len, "%s - %s", a, b); break;
    case OP_MUL: snprintf(buf, len, "%s * %s", a, b); break;
    case OP_DIV: snprintf(buf, len, "%s / %s", a, b); break;
    case OP_NEG: snprintf(buf, len, "-%s", a); break;
    case OP_SCALE:
        snprintf(buf, len, "%s * %s", a, emit_lit(e, o->attr.scale, l1, sizeof l1));
        break;
    case OP_RELU: snprintf(buf, len, "%s > %s ? %s : %s", a, zero, a, zero); break;
    case OP_LEAKY_RELU:
        snprintf(buf, len, "%s > %s ? %s : %s * %s", a, zero, a,
                 emit_lit(e, o->attr.alpha, l1, sizeof l1), a);
        break;
    case OP_SIGMOID: snprintf(buf, len, "%s / (%s + %s(-%s))", one, one, fn_exp, a); break;
    case OP_TANH: snprintf(buf, len, "%s(%s)", fn_tanh, a); break;
    case OP_EXP: snprintf(buf, len, "%s(%s)", fn_exp, a); break;
    case OP_LOG: snprintf(buf, len, "%s(%s)", fn_log, a); break;
    case OP_RELU_GRAD: snprintf(buf, len, "%s > %s ? %s : %s", b, zero, a, zero); break;
    case OP_LEAKY_RELU_GRAD:
        snprintf(buf, len, "%s > %s ? %s : %s * %s", b, zero, a,
                 emit_lit(e, o->attr.alpha, l1, sizeof l1), a);
        break;
    case OP_SIGMOID_GRAD:
        snprintf(buf, len, "%s * %s * (%s - %s)", a, b, one, b);
        break;
    case OP_TANH_GRAD:
        snprintf(buf, len, "%s * (%s - %s * %s)", a, one, b, b);
        break;
    case OP_FILL:
        snprintf(buf, len, "%s", emit_lit(e, o->attr.fill, l2, sizeof l2));
        break;
    default:
        snprintf(buf, len, "/* no elementwise form for %s */", op_names[o->op]);
        break;
    }
}

static void lower_ewise(Emitter *e, const IrOp *o, const Roles *r)
{
    long n = shape_elems(&o->shape);
    char a[32], b[32], expr[256];
    snprintf(a, sizeof a, "%s[i]", r->in[0] ? r->in[0] : "");
    snprintf(b, sizeof b, "%s[i]", r->in[1] ? r->in[1] : "");
    lower_ewise_expr(e, o, a, b, expr, sizeof expr);
    lower_parallel_for(e, n * 4);
    emit_open(e, "for (%s i = 0; i < %ld; i++)", idx_type(n), n);
    emit(e, "%s[i] = %s;", r->out, expr);
    emit_close(e, NULL);
}

/* x[n, c, inner] + bias[c] */
static void lower_bias_add(Emitter *e, const IrOp *o)
{
    int rows = o->shape.dim[0], ch = o->shape.dim[1];
    long inner = shape_elems(&o->shape) / rows / ch;
    lower_parallel_for(e, shape_elems(&o->shape) * 4);
    emit_open(e, "for (int n = 0; n < %d; n++)", rows);
    emit_open(e, "for (int c = 0; c < %d; c++)", ch);
    if (inner == 1) {
        emit(e, "y[n * %d + c] = x[n * %d + c] + bias[c];", ch, ch);
    } else {
        emit(e, "const long base = ((long)n * %d + c) * %ld;", ch, inner);
        emit_open(e, "for (int j = 0; j < %ld; j++)", inner);
        emit(e, "y[base + j] = x[base + j] + bias[c];");
        emit_close(e, NULL);
    }
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* The element of a gradient a kernel consumes, from the expressions of dy
 * and of an activation's output y at one position: dy itself, or, when
 * fusion folded that activation's gradient `act` (relu_grad, tanh_grad,
 * ...) into the kernel, act(dy, y): the expression the single act kernel
 * would store, so the masked gradient never goes to memory. */
void lower_dy_elem(Emitter *e, const IrOp *act, const char *dy, const char *y,
                   char *buf, size_t len)
{
    char expr[200];
    if (!act) {
        snprintf(buf, len, "%s", dy);
        return;
    }
    lower_ewise_expr(e, act, dy, y, expr, sizeof expr);
    snprintf(buf, len, "(%s)", expr);
}

/* dbias[c] += row[0..inner) through `act`, into BIAS_LANES partial sums:
 * element j goes to acc[j % BIAS_LANES], so the order is fixed. */
void lower_plane_partial_sums(Emitter *e, const char *acc, long inner,
                              const char *el)
{
    long whole = inner / BIAS_LANES * BIAS_LANES;
    char stmt[320];
    if (whole) {
        emit_open(e, "for (int j0 = 0; j0 < %ld; j0 += %d)", whole, BIAS_LANES);
        emit_open(e, "for (int l = 0; l < %d; l++)", BIAS_LANES);
        emit(e, "const int j = j0 + l;");
        emit(e, "%s[l] += %s;", acc, el);
        emit_close(e, NULL);
        emit_close(e, NULL);
    }
    if (whole < inner) {
        emit_open(e, "for (int j = %ld; j < %ld; j++)", whole, inner);
        snprintf(stmt, sizeof stmt, "%s[j - %ld] += %s;", acc, whole, el);
        emit(e, "%s", stmt);
        emit_close(e, NULL);
    }
}

/* dst = the partial sums in acc added up in lane order */
void lower_partial_sums_total(Emitter *e, const char *acc, const char *dst)
{
    emit(e, "%s total = 0;", e->real);
    emit_open(e, "for (int l = 0; l < %d; l++)", BIAS_LANES);
    emit(e, "total += %s[l];", acc);
    emit_close(e, NULL);
    emit(e, "%s = total;", dst);
}

/* dbias[c] = sum over n and inner of dy[n, c, inner], in a fixed order
 * (lanes of partial sums over planes), dy read through `act` when one
 * was folded in: the body of a loop over channels c. Rule bn_grad sums
 * beta's gradient with it too, so fused and single kernels agree. */
void lower_bias_channel_sum(Emitter *e, const Shape *dys, const IrOp *act)
{
    int rows = dys->dim[0], ch = dys->dim[1];
    long inner = shape_elems(dys) / rows / ch;
    char el[256];
    if (inner >= BIAS_LANES)
        emit(e, "%s acc[%d] = {0}; /* partial sums: lane l takes plane "
             "elements j with j %% %d == l */", e->real, BIAS_LANES, BIAS_LANES);
    else
        emit(e, "%s acc = 0;", e->real);
    emit_open(e, "for (int n = 0; n < %d; n++)", rows);
    if (inner == 1) {
        char at[32], dyv[48], yv[48];
        snprintf(at, sizeof at, "[n * %d + c]", ch);
        snprintf(dyv, sizeof dyv, "dy%s", at);
        snprintf(yv, sizeof yv, "y%s", at);
        lower_dy_elem(e, act, dyv, yv, el, sizeof el);
        emit(e, "acc += %s;", el);
    } else {
        char off[64];
        snprintf(off, sizeof off, "((long)n * %d + c) * %ld", ch, inner);
        if (act && act->op == OP_MAXPOOL2D_GRAD_AT) {
            /* rebuilt on the stack, then summed as if read from memory */
            emit(e, "%s dym[%ld]; /* dy through %s */", e->real, inner,
                 op_names[act->op]);
            lower_dy_spread(e, act, dys, off, "dym");
            snprintf(el, sizeof el, "dym[j]");
        } else {
            emit(e, "const %s *row = dy + %s;", e->real, off);
            if (act)
                emit(e, "const %s *yrow = y + %s;", e->real, off);
            lower_dy_elem(e, act, "row[j]", "yrow[j]", el, sizeof el);
        }
        if (inner >= BIAS_LANES) {
            lower_plane_partial_sums(e, "acc", inner, el);
        } else {
            emit_open(e, "for (int j = 0; j < %ld; j++)", inner);
            emit(e, "acc += %s;", el);
            emit_close(e, NULL);
        }
    }
    emit_close(e, NULL);
    if (inner >= BIAS_LANES) {
        lower_partial_sums_total(e, "acc", "dbias[c]");
    } else {
        emit(e, "dbias[c] = acc;");
    }
}

void lower_bias_grad(Emitter *e, const Graph *g, const IrOp *o,
                     const IrOp *act)
{
    const IrOp *dy = &g->ops[o->in[0]];
    lower_parallel_for(e, shape_elems(&dy->shape));
    /* in a kernel's own region (a grad_tail) gcc no longer sees that dy
     * and dbias are restrict, and left the loop scalar: mnist_mlp's 256
     * channels took 20 us instead of 1.3 */
    if (e->serial)
        emit(e, "NNC_GCC_IVDEP");
    emit_open(e, "for (int c = 0; c < %d; c++)", dy->shape.dim[1]);
    lower_bias_channel_sum(e, &dy->shape, act);
    emit_close(e, NULL);
}

static void lower_sum(Emitter *e, const Graph *g, const IrOp *o)
{
    long n = shape_elems(&g->ops[o->in[0]].shape);
    emit(e, "double acc = 0;");
    emit_open(e, "for (%s i = 0; i < %ld; i++)", idx_type(n), n);
    emit(e, "acc += x[i];");
    emit_close(e, NULL);
    emit(e, "out[0] = (%s)acc;", e->real);
}

/* ---------------------------------------------------------------- */
/* matrix products                                                   */

static void store_c(Emitter *e, const void *ctx)
{
    (void)ctx;
    emit(e, "C[at] = t0;");
}

/* A weight gradient's product tests each element as it stores it
 * (lower_gemm.c, check_finite), so the step's test of every gradient
 * need not read these again: on mnist_mlp that pass over all 872 KB of
 * gradients took 10.5 us of a 0.331 ms step (2 threads), 2 us without
 * them, for 1-4 us more in dW1's product. */
static void lower_matmul(Emitter *e, const Graph *g, const IrOp *o)
{
    Gemm m = {.a = "A", .b = "B", .packed = "packed", .epilogue = store_c,
              .check_finite = matmul_stores_gradient(o)};
    gemm_from_op(g, o, &m);
    lower_gemm(e, &m);
}

bool kernel_checks_gradient(const Graph *g, const Kernel *k)
{
    if (k->kind == KK_GRAD_TAIL)
        return true; /* its largest member is such a product (fuse.c) */
    return k->kind == KK_SINGLE && matmul_stores_gradient(&g->ops[k->ops[0]]);
}

bool kernel_checks_value(const Graph *g, const Kernel *k, int v)
{
    if (k->kind != KK_SINGLE && k->kind != KK_GRAD_TAIL)
        return false;
    for (int m = 0; m < k->nops; m++)
        if (k->ops[m] == v)
            return matmul_stores_gradient(&g->ops[v]);
    return false;
}

/* ---------------------------------------------------------------- */
/* rows: softmax                                                     */

static void row_loop(Emitter *e, const IrOp *o, long *rows, long *width)
{
    *width = o->shape.dim[o->shape.rank - 1];
    *rows = shape_elems(&o->shape) / *width;
    lower_parallel_for(e, *rows * *width * 8);
    emit_open(e, "for (int r = 0; r < %ld; r++)", *rows);
}

static void lower_softmax(Emitter *e, const IrOp *o)
{
    long rows, w;
    const char *fexp = e->o->f64 ? "exp" : "expf";
    row_loop(e, o, &rows, &w);
    emit(e, "const %s *row = x + (long)r * %ld;", e->real, w);
    emit(e, "%s *res = out + (long)r * %ld;", e->real, w);
    emit(e, "%s max = row[0];", e->real);
    emit_open(e, "for (int j = 1; j < %ld; j++)", w);
    emit(e, "max = row[j] > max ? row[j] : max;");
    emit_close(e, NULL);
    emit(e, "%s sum = 0;", e->real);
    emit_open(e, "for (int j = 0; j < %ld; j++)", w);
    emit(e, "res[j] = %s(row[j] - max);", fexp);
    emit(e, "sum += res[j];");
    emit_close(e, NULL);
    emit_open(e, "for (int j = 0; j < %ld; j++)", w);
    emit(e, "res[j] /= sum;");
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* dx = y * (dy - sum(dy * y)) per row */
static void lower_softmax_grad(Emitter *e, const IrOp *o)
{
    long rows, w;
    row_loop(e, o, &rows, &w);
    emit(e, "const long base = (long)r * %ld;", w);
    emit(e, "%s dot = 0;", e->real);
    emit_open(e, "for (int j = 0; j < %ld; j++)", w);
    emit(e, "dot += dy[base + j] * y[base + j];");
    emit_close(e, NULL);
    emit_open(e, "for (int j = 0; j < %ld; j++)", w);
    emit(e, "dx[base + j] = y[base + j] * (dy[base + j] - dot);");
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* ---------------------------------------------------------------- */
/* losses (means, as PyTorch's default reduction)                     */

const char *lower_libm(Emitter *e, const char *name)
{
    /* the float variants of libm, under --dtype f64 the double ones */
    static const char *const f32[][2] = {{"exp", "expf"}, {"log", "logf"},
        {"fmax", "fmaxf"}, {"log1p", "log1pf"}, {"fabs", "fabsf"},
};
    for (size_t i = 0; i < sizeof f32 / sizeof f32[0]; i++)
        if (strcmp(f32[i][0], name) == 0)
            return e->o->f64 ? f32[i][0] : f32[i][1];
    return name;
}

/* Row r of the scores, z, and its largest score, max. */
static void emit_row_max(Emitter *e, long w)
{
    emit(e, "const %s *z = pred + (long)r * %ld;", e->real, w);
    emit(e, "%s max = z[0];", e->real);
    emit_open(e, "for (int j = 1; j < %ld; j++)", w);
    emit(e, "max = z[j] > max ? z[j] : max;");
    emit_close(e, NULL);
}

/* Per-row log-sum-exp of the scores: the stable way to a softmax. */
static void emit_row_lse(Emitter *e, long w)
{
    emit_row_max(e, w);
    emit(e, "double sum = 0;");
    emit_open(e, "for (int j = 0; j < %ld; j++)", w);
    emit(e, "sum += exp((double)(z[j] - max));");
    emit_close(e, NULL);
    emit(e, "const double lse = (double)max + log(sum);");
}

/* A row's softmax for the cross-entropy gradient: each exp(z_j - max) kept
 * in double on the stack, then scaled by 1 / their sum. One exp a class
 * instead of two (exp(z_j - lse) after the log-sum-exp): mnist_mlp's step
 * 0.987 and 0.991 of the two-exp form's (make ab, medians). z_j - max
 * rounds at double's precision, not float's, and p was the correctly
 * rounded softmax for all of 2 million values (rows of 10 random
 * logits), against 98.2% by way of lse, whose log and float differences
 * carry errors. Rows up to this many classes fit the stack. */
enum { XENT_ROW_KEPT_MAX = 256 };

static void emit_row_softmax_kept(Emitter *e, long w)
{
    emit_row_max(e, w);
    emit(e, "double ez[%ld], sum = 0;", w);
    emit_open(e, "for (int j = 0; j < %ld; j++)", w);
    emit(e, "ez[j] = exp((double)z[j] - (double)max);");
    emit(e, "sum += ez[j];");
    emit_close(e, NULL);
    emit(e, "const double inv = 1 / sum;");
}

/* The weight of class j in row r of cross-entropy op o's target, as C
 * over `r`, `j` and the target array t: a probability target's element,
 * or, under label smoothing eps, the target PyTorch trains towards,
 * (1 - eps) t_j + eps / C, with t one-hot for a class label. */
const char *lower_xent_weight(Emitter *e, const Graph *g, const IrOp *o,
                              const char *t, char *buf, size_t len)
{
    const IrOp *p = &g->ops[o->in[0]];
    long w = p->shape.dim[p->shape.rank - 1];
    double eps = o->attr.loss.smoothing;
    char keep[48], spread[48], hit[48];
    emit_lit(e, 1 - eps, keep, sizeof keep);
    emit_lit(e, eps / (double)w, spread, sizeof spread);
    if (o->attr.loss.soft && eps == 0)
        snprintf(buf, len, "%s[(long)r * %ld + j]", t, w);
    else if (o->attr.loss.soft)
        snprintf(buf, len, "(%s * %s[(long)r * %ld + j] + %s)", keep, t, w,
                 spread);
    else
        snprintf(buf, len, "(j == %s[r] ? %s : %s)", t,
                 emit_lit(e, 1 - eps + eps / (double)w, hit, sizeof hit),
                 spread);
    return buf;
}

/* -sum_j weight_j log p_j per row, p the softmax of the scores or the
 * given probabilities (clipped at 1e-7 as Keras does, so log never sees
 * 0); a class label without smoothing reads its one term only. Such a
 * loss, when its rows are worth the threads, computes each row's term on
 * its own (`term`) and sums them in row order after: the order, and so
 * the bits, of the serial sum, and mnist_mlp's loss took 3.5 us instead
 * of 5.1 on 2 threads. Weights over every class add a row's terms to the
 * total one by one, an order that splitting would change. */
static void lower_xent(Emitter *e, const Graph *g, const IrOp *o)
{
    const IrOp *p = &g->ops[o->in[0]];
    long w = p->shape.dim[p->shape.rank - 1], rows = shape_elems(&p->shape) / w;
    bool probs = o->op == OP_XENT_PROBS;
    bool dense = o->attr.loss.soft || o->attr.loss.smoothing != 0;
    bool split = !dense && rows <= TERM_ROWS_MAX &&
                 rows * w * (probs ? 8 : EXP_WORK) >= PARALLEL_WORK;
    Emitter de = {.real = "double", .o = e->o};
    char wt[160];
    lower_xent_weight(&de, g, o, "target", wt, sizeof wt);
    if (split) {
        emit(e, "double term[%ld]; /* each row's, summed in row order below */",
             rows);
        lower_parallel_for(e, PARALLEL_WORK);
    } else {
        emit(e, "double total = 0;");
    }
    emit_open(e, "for (int r = 0; r < %ld; r++)", rows);
    if (probs) {
        emit(e, "const %s *q = pred + (long)r * %ld;", e->real, w);
        if (dense) {
            emit_open(e, "for (int j = 0; j < %ld; j++)", w);
            emit(e, "total -= (double)%s * log(fmax((double)q[j], 1e-7));", wt);
            emit_close(e, NULL);
        } else {
            emit(e, "%s log(fmax((double)q[target[r]], 1e-7));",
                 split ? "term[r] =" : "total -=");
        }
    } else {
        emit_row_lse(e, w);
        if (dense) {
            emit_open(e, "for (int j = 0; j < %ld; j++)", w);
            emit(e, "total += (double)%s * (lse - z[j]);", wt);
            emit_close(e, NULL);
        } else {
            emit(e, "%s lse - (double)z[target[r]];",
                 split ? "term[r] =" : "total +=");
        }
    }
    emit_close(e, NULL);
    if (split) {
        emit(e, "double total = 0;");
        emit_open(e, "for (int r = 0; r < %ld; r++)", rows);
        emit(e, "total %s term[r];", probs ? "-=" : "+=");
        emit_close(e, NULL);
    }
    emit(e, "loss[0] = (%s)(total / %ld);", e->real, rows);
}

/* d/dz_j of -sum(t log softmax(z)) = p_j * sum(t) - t_j, for weights t
 * (lower_xent_weight) that need not sum to one; a smoothed class label's
 * sum to one exactly. Emitted inside a row loop that has `d` (the row's
 * gradient) and `scale` (dloss / rows); `p_decl` declares p, the row's
 * probability of class j. Shared with the fused kernel. */
void lower_xent_logit_grad(Emitter *e, const Graph *g, const IrOp *o,
                           const char *t, const char *p_decl, long w)
{
    char wt[160];
    lower_xent_weight(e, g, o, t, wt, sizeof wt);
    if (o->attr.loss.soft) {
        emit(e, "%s mass = 0;", e->real);
        emit_open(e, "for (int j = 0; j < %ld; j++)", w);
        emit(e, "mass += %s;", wt);
        emit_close(e, NULL);
    }
    emit_open(e, "for (int j = 0; j < %ld; j++)", w);
    emit(e, "%s", p_decl);
    if (o->attr.loss.soft)
        emit(e, "d[j] = scale * (p * mass - %s);", wt);
    else if (o->attr.loss.smoothing != 0)
        emit(e, "d[j] = scale * (p - %s);", wt);
    else
        emit(e, "d[j] = scale * (p - (j == %s[r]));", t);
    emit_close(e, NULL);
}

static void lower_xent_grad(Emitter *e, const Graph *g, const IrOp *o)
{
    const IrOp *p = &g->ops[o->in[0]];
    long w = p->shape.dim[p->shape.rank - 1], rows = shape_elems(&p->shape) / w;
    bool probs = o->op == OP_XENT_PROBS_GRAD;
    bool dense = o->attr.loss.soft || o->attr.loss.smoothing != 0;
    char lit[48], wt[160];
    emit(e, "const %s scale = dloss[0] / %s;", e->real,
         emit_lit(e, (double)rows, lit, sizeof lit));
    lower_parallel_for(e, rows * w * (probs ? 8 : EXP_WORK));
    emit_open(e, "for (int r = 0; r < %ld; r++)", rows);
    emit(e, "%s *d = dpred + (long)r * %ld;", e->real, w);
    if (probs) {
        emit(e, "const %s *q = pred + (long)r * %ld;", e->real, w);
        emit_open(e, "for (int j = 0; j < %ld; j++)", w);
        if (dense)
            emit(e, "d[j] = q[j] > 1e-7 ? -scale * %s / q[j] : 0;",
                 lower_xent_weight(e, g, o, "target", wt, sizeof wt));
        else
            emit(e, "d[j] = j == target[r] && q[j] > 1e-7 ? -scale / q[j] : 0;");
        emit_close(e, NULL);
    } else if (w <= XENT_ROW_KEPT_MAX) {
        char p_decl[96];
        snprintf(p_decl, sizeof p_decl, "const %s p = (%s)(ez[j] * inv);",
                 e->real, e->real);
        emit_row_softmax_kept(e, w);
        lower_xent_logit_grad(e, g, o, "target", p_decl, w);
    } else {
        char p_decl[96];
        snprintf(p_decl, sizeof p_decl, "const %s p = (%s)exp((double)z[j] - "
                 "lse);", e->real, e->real);
        emit_row_lse(e, w);
        lower_xent_logit_grad(e, g, o, "target", p_decl, w);
    }
    emit_close(e, NULL);
}

static void lower_pointwise_loss(Emitter *e, const Graph *g, const IrOp *o)
{
    long n = shape_elems(&g->ops[o->in[0]].shape);
    emit(e, "double total = 0;");
    emit_open(e, "for (%s i = 0; i < %ld; i++)", idx_type(n), n);
    emit(e, "const double %st = target[i];",
         o->op == OP_BCE ? "" : "p = pred[i], ");
    switch (o->op) {
    case OP_MSE:
        emit(e, "total += (p - t) * (p - t);");
        break;
    case OP_BCE:
        /* PyTorch clamps each log at -100 so p = 0 or 1 stays finite, with
         * std::max, which keeps a NaN (fmax would hide it); the logs in
         * the element type, as PyTorch takes them, summed in double.
         * A label of 0 or 1 weighs one log by 0: with p in [0, 1] that
         * log is finite, its product a zero that leaves the other term's
         * bits alone, so only the other log is taken (the logs were most
         * of xor's loss kernel) */
        emit(e, "const %s p = pred[i];", e->real);
        emit_open(e, "if ((t == 0 || t == 1) && p >= 0 && p <= 1)");
        emit(e, "const %s l = %s(t == 1 ? p : 1 - p);", e->real,
             lower_libm(e, "log"));
        emit(e, "total -= l < -100 ? -100.0 : (double)l;");
        emit(e, "continue;");
        emit_close(e, NULL);
        emit(e, "const %s lp = %s(p), lq = %s(1 - p);", e->real,
             lower_libm(e, "log"), lower_libm(e, "log"));
        emit(e, "total -= t * (lp < -100 ? -100.0 : (double)lp) + (1 - t) * "
             "(lq < -100 ? -100.0 : (double)lq);");
        break;
    default: /* BCE_LOGITS, in the form that never overflows */
        emit(e, "total += fmax(p, 0.0) - p * t + log1p(exp(-fabs(p)));");
        break;
    }
    emit_close(e, NULL);
    emit(e, "loss[0] = (%s)(total / %ld);", e->real, n);
}

static void lower_pointwise_loss_grad(Emitter *e, const IrOp *o)
{
    long n = shape_elems(&o->shape);
    char lit[48];
    emit(e, "const %s scale = dloss[0] / %s;", e->real,
         emit_lit(e, (double)n, lit, sizeof lit));
    lower_parallel_for(e, n * 8);
    emit_open(e, "for (%s i = 0; i < %ld; i++)", idx_type(n), n);
    emit(e, "const %s p = pred[i], t = target[i];", e->real);
    switch (o->op) {
    case OP_MSE_GRAD:
        emit(e, "dpred[i] = scale * 2 * (p - t);");
        break;
    case OP_BCE_GRAD:
        /* a compare, not fmaxf, as in lower_fused.c */
        emit(e, "const %s q = (1 - p) * p;", e->real);
        emit(e, "dpred[i] = scale * (p - t) / (q > %s ? q : %s);",
             e->o->f64 ? "1e-12" : "1e-12f", e->o->f64 ? "1e-12" : "1e-12f");
        break;
    default:
        emit(e, "dpred[i] = scale * (1 / (1 + %s(-p)) - t);", lower_libm(e, "exp"));
        break;
    }
    emit_close(e, NULL);
}

/* ---------------------------------------------------------------- */
/* optimizer updates, PyTorch's formulas                             */

/* torch.optim.SGD as PyTorch 1.13 computes it on the CPU, in the element
 * type, one rounding per tensor op of its _single_tensor_sgd and fma
 * where ATen's `add_` with an alpha fuses (as lower_adam): the same bits
 * as PyTorch given the same gradients. */
void lower_sgd(Emitter *e, const IrOp *o, long n)
{
    const OptimSpec *s = &o->attr.opt;
    const char *R = e->real, *fma = strcmp(R, "float") ? "fma" : "fmaf";
    char wd[48], mu[48], c[48];
    emit_lit(e, s->weight_decay, wd, sizeof wd);
    emit_lit(e, s->momentum, mu, sizeof mu);
    emit_lit(e, 1 - s->dampening, c, sizeof c);
    if (s->momentum == 0)
        emit(e, "(void)first_step; /* no momentum buffer to start */");
    /* param.add_(d_p, alpha=-lr): -lr rounded where it meets the tensor */
    emit(e, "const %s neg_lr = (%s)-lr;", R, R);
    lower_parallel_for(e, n * 4);
    emit_open(e, "for (%s i = 0; i < %ld; i++)", idx_type(n), n);
    if (s->weight_decay != 0) /* d_p.add(param, alpha=weight_decay) */
        emit(e, "%s d = %s(w[i], %s, g[i]);", R, fma, wd);
    else
        emit(e, "%s d = g[i];", R);
    if (s->momentum != 0) {
        /* clone(d_p) at the first step, then
         * buf.mul_(momentum).add_(d_p, alpha=1 - dampening) */
        emit(e, "v[i] = first_step ? d : %s(d, %s, v[i] * %s);", fma, c, mu);
        if (s->nesterov) /* d_p.add(buf, alpha=momentum) */
            emit(e, "d = %s(v[i], %s, d);", fma, mu);
        else
            emit(e, "d = v[i];");
    }
    emit(e, "w[i] = %s(d, neg_lr, w[i]);", fma);
    emit_close(e, NULL);
}

/* A loop over n parameters whose middle step goes a block of SQRT_BLOCK
 * elements at a time: `pre` (statements with i, the element, and l, its
 * place in the block) fills the block's inputs, `block` computes its
 * outputs with one call, `post` reads them. gcc keeps a square root a
 * library call (in case it must set errno), and no loop with a call
 * vectorises, so the roots (and Adam's divisions, nnc_adamf_block) come
 * from block functions of vector instructions (emit_c.c) and the rest of
 * each block vectorises; the last n % SQRT_BLOCK elements go one at a
 * time through `block`'s one-element form. `real` is the type the update
 * computes in: Adam's is the element type, as PyTorch's; RMSprop's is
 * double. */
enum { SWEEP_LINE = 200 }; /* characters of one statement of a sweep */
/* blocks a thread claims at a time on all threads: 4096 elements, a few
 * microseconds of Adam, and 54 claims on mnist_mlp's 218058 parameters
 * (0.95-0.98 of the step's time against fixed halves, the same bits) */
enum { SWEEP_CHUNK = 256 };

typedef struct {
    const char *arrays; /* the block's arrays, declared [SQRT_BLOCK] */
    const char *call;   /* the call on a whole block */
    const char *one;    /* the same for element 0 of one-element arrays */
} SweepBlock;

static void emit_block_arrays(Emitter *e, const char *real, const char *arrays,
                              int len)
{
    char line[SWEEP_LINE];
    size_t at = (size_t)snprintf(line, sizeof line, "%s ", real);
    for (const char *a = arrays; *a;) {
        size_t n = strcspn(a, ",");
        at += (size_t)snprintf(line + at, sizeof line - at, "%s%.*s[%d]",
                               a == arrays ? "" : ", ", (int)n, a, len);
        a += n;
        a += strspn(a, ", ");
    }
    emit(e, "%s;", line);
}

static void emit_block_sweep(Emitter *e, long n, const char *real,
                             char (*pre)[SWEEP_LINE], int npre,
                             const SweepBlock *blk,
                             char (*post)[SWEEP_LINE], int npost)
{
    long blocks = n / SQRT_BLOCK;
    bool threaded = blocks && n * 8 >= PARALLEL_WORK;
    if (threaded) {
        /* chunks claimed from both ends (nnc_next_chunk, emit_c.c) */
        long chunks = (blocks + SWEEP_CHUNK - 1) / SWEEP_CHUNK;
        emit(e, "int taken = 0; /* chunks of %d blocks claimed so far */",
             SWEEP_CHUNK);
        emit(e, "NNC_PARALLEL");
        emit_open(e, "for (int cur = 0, ch; (ch = nnc_next_chunk(&taken, "
                  "%ld, &cur)) >= 0;)", chunks);
        emit(e, "const %s b0 = (%s)ch * %d, b1 = b0 + %d < %ld ? b0 + %d : "
             "%ld;", idx_type(n), idx_type(n), SWEEP_CHUNK, SWEEP_CHUNK,
             blocks, SWEEP_CHUNK, blocks);
        emit_open(e, "for (%s b = b0; b < b1; b++)", idx_type(n));
    } else if (blocks) {
        emit_open(e, "for (%s b = 0; b < %ld; b++)", idx_type(n), blocks);
    }
    if (blocks) {
        emit_block_arrays(e, real, blk->arrays, SQRT_BLOCK);
        emit(e, "NNC_IVDEP");
        emit_open(e, "for (int l = 0; l < %d; l++)", SQRT_BLOCK);
        emit(e, "const %s i = b * %d + l;", idx_type(n), SQRT_BLOCK);
        for (int k = 0; k < npre; k++)
            emit(e, "%s", pre[k]);
        emit_close(e, NULL);
        emit(e, "%s", blk->call);
        emit(e, "NNC_IVDEP");
        emit_open(e, "for (int l = 0; l < %d; l++)", SQRT_BLOCK);
        emit(e, "const %s i = b * %d + l;", idx_type(n), SQRT_BLOCK);
        for (int k = 0; k < npost; k++)
            emit(e, "%s", post[k]);
        emit_close(e, NULL);
        emit_close(e, NULL);
        if (threaded)
            emit_close(e, NULL);
    }
    if (blocks * SQRT_BLOCK < n) {
        emit_open(e, "for (%s i = %ld; i < %ld; i++)", idx_type(n),
                  blocks * SQRT_BLOCK, n);
        emit(e, "const int l = 0;");
        emit_block_arrays(e, real, blk->arrays, 1);
        for (int k = 0; k < npre; k++)
            emit(e, "%s", pre[k]);
        emit(e, "%s", blk->one);
        for (int k = 0; k < npost; k++)
            emit(e, "%s", post[k]);
        emit_close(e, NULL);
    }
}

static const SweepBlock SQRT_SWEEP_D = {"sq, root", "nnc_sqrt_block(root, sq);",
                                        "root[0] = sqrt(sq[0]);"};

/* torch.optim.Adam and AdamW as PyTorch 1.13 computes them on the CPU,
 * operation for operation in the element type: each in-place tensor op
 * of its _single_tensor_adam is one rounding here, and the ones ATen's
 * vector kernels compute as a fused multiply-add (`add_` with an alpha,
 * `addcmul_`) are fma here. On a machine where PyTorch's kernels use FMA
 * (its AVX2 and AVX-512 builds) the update has the same bits as
 * PyTorch's, given the same gradient: tests/train/optim_torch.sh checks
 * that in float. Rounding each step rather than computing in double and
 * rounding once is also what lets the update run in float vectors: half
 * the divisions and roots' cost of double (docs/performance.md). */
void lower_adam(Emitter *e, const IrOp *o, long n)
{
    const OptimSpec *s = &o->attr.opt;
    if (o->op == OP_RMSPROP_UPDATE) {
        /* a fused update sweep lowers every non-SGD update through here */
        lower_rmsprop(e, o, n);
        return;
    }
    const char *R = e->real, *fma = strcmp(R, "float") ? "fma" : "fmaf";
    char b1[48], b2[48], c1[48], c2[48], eps[48], wd[48];
    char pre[6][SWEEP_LINE], post[1][SWEEP_LINE];
    int np = 0;
    emit_lit(e, s->beta1, b1, sizeof b1);
    emit_lit(e, s->beta2, b2, sizeof b2);
    emit_lit(e, 1 - s->beta1, c1, sizeof c1);
    emit_lit(e, 1 - s->beta2, c2, sizeof c2);
    emit_lit(e, s->eps, eps, sizeof eps);
    emit_lit(e, s->weight_decay, wd, sizeof wd);
    /* PyTorch's step size and root bias correction are Python floats
     * (double), rounded to the element type where a tensor op meets them */
    emit(e, "const %s step_size = (%s)(lr / bias1), root_bias2 = (%s)sqrt(bias2);",
         R, R, R);
    if (s->weight_decay != 0 && s->decoupled) {
        /* param.mul_(1 - lr * weight_decay): the factor is a Python float */
        char dwd[48];
        snprintf(pre[np++], sizeof pre[0], "w[i] *= (%s)(1 - lr * %s);", R,
                 emit_lit(&(Emitter){.real = "double"}, s->weight_decay, dwd,
                          sizeof dwd));
        snprintf(pre[np++], sizeof pre[0], "const %s d = g[i];", R);
    } else if (s->weight_decay != 0) {
        /* grad.add(param, alpha=weight_decay) */
        snprintf(pre[np++], sizeof pre[0], "const %s d = %s(w[i], %s, g[i]);",
                 R, fma, wd);
    } else {
        snprintf(pre[np++], sizeof pre[0], "const %s d = g[i];", R);
    }
    /* exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1) */
    snprintf(pre[np++], sizeof pre[0], "m[i] = %s(d, %s, m[i] * %s);", fma, c1,
             b1);
    /* exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2) */
    snprintf(pre[np++], sizeof pre[0], "v[i] = %s(%s * d, d, v[i] * %s);", fma,
             c2, b2);
    snprintf(pre[np++], sizeof pre[0], "sq[l] = v[i];");
    /* denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps);
     * param.addcdiv_(exp_avg, denom, value=-step_size) */
    if (strcmp(R, "float")) {
        snprintf(post[0], sizeof post[0],
                 "w[i] += -step_size * m[i] / (root[l] / root_bias2 + %s);", eps);
        emit_block_sweep(e, n, R, pre, np, &SQRT_SWEEP_D, post, 1);
        return;
    }
    /* in float, the block takes the root and both divisions, with the
     * same bits as that line and a third of the divider's time */
    char call[SWEEP_LINE], one[SWEEP_LINE];
    snprintf(pre[np++], sizeof pre[0], "num[l] = -step_size * m[i];");
    snprintf(call, sizeof call,
             "nnc_adamf_block(quot, sq, num, root_bias2, inv_root_bias2, %s);", eps);
    snprintf(one, sizeof one,
             "quot[0] = num[0] / (sqrtf(sq[0]) / root_bias2 + %s);", eps);
    snprintf(post[0], sizeof post[0], "w[i] += quot[l];");
    if (n >= SQRT_BLOCK)
        emit(e, "const float inv_root_bias2 = 1 / root_bias2; /* for nnc_adamf_block */");
    emit_block_sweep(e, n, R, pre, np,
                     &(SweepBlock){"sq, num, quot", call, one}, post, 1);
}

/* torch.optim.RMSprop, computed in double and rounded once per stored
 * value: not PyTorch's bits, as SGD's and Adam's are, because its
 * momentum buffer's mul_ then addcdiv_ rounds a product that the
 * generated file, which lets the compiler contract a multiply and an
 * add everywhere, could fuse. The state pointer v is square_avg; the
 * momentum buffer and grad_avg (centered) follow at state_stride, in
 * that order (optim_state_names), so the same code serves a single
 * update and a fused sweep over several parameters. */
void lower_rmsprop(Emitter *e, const IrOp *o, long n)
{
    const OptimSpec *s = &o->attr.opt;
    Emitter de = {.real = "double", .o = e->o};
    const char *R = e->real;
    char a[48], c[48], eps[48], wd[48], mu[48];
    char pre[6][SWEEP_LINE], post[3][SWEEP_LINE];
    int np = 0, nq = 0;
    emit_lit(&de, s->alpha, a, sizeof a);
    emit_lit(&de, 1 - s->alpha, c, sizeof c);
    emit_lit(&de, s->eps, eps, sizeof eps);
    emit_lit(&de, s->weight_decay, wd, sizeof wd);
    emit_lit(&de, s->momentum, mu, sizeof mu);
    long buf = s->state_stride, avg = s->state_stride * (s->momentum > 0 ? 2 : 1);
    emit(e, "(void)first_step; /* the buffers start at zero */");
    snprintf(pre[np++], sizeof pre[0], "double d = g[i];");
    if (s->weight_decay != 0)
        snprintf(pre[np++], sizeof pre[0], "d += %s * w[i];", wd);
    snprintf(pre[np++], sizeof pre[0], "v[i] = (%s)(%s * v[i] + %s * d * d);",
             R, a, c);
    if (s->centered) {
        snprintf(pre[np++], sizeof pre[0],
                 "v[i + %ld] = (%s)(%s * v[i + %ld] + %s * d);", avg, R, a, avg,
                 c);
        snprintf(pre[np++], sizeof pre[0],
                 "sq[l] = (double)v[i] - (double)v[i + %ld] * v[i + %ld];", avg,
                 avg);
    } else {
        snprintf(pre[np++], sizeof pre[0], "sq[l] = v[i];");
    }
    /* d again: the gradient with its weight decay (w has not moved) */
    snprintf(post[nq++], sizeof post[0], "const double dg = g[i]%s%s%s;",
             s->weight_decay != 0 ? " + " : "", s->weight_decay != 0 ? wd : "",
             s->weight_decay != 0 ? " * w[i]" : "");
    if (s->momentum > 0) {
        snprintf(post[nq++], sizeof post[0],
                 "v[i + %ld] = (%s)(%s * v[i + %ld] + dg / (root[l] + %s));", buf,
                 R, mu, buf, eps);
        snprintf(post[nq++], sizeof post[0], "w[i] -= (%s)(lr * v[i + %ld]);",
                 R, buf);
    } else {
        snprintf(post[nq++], sizeof post[0],
                 "w[i] -= (%s)(lr * dg / (root[l] + %s));", R, eps);
    }
    emit_block_sweep(e, n, "double", pre, np, &SQRT_SWEEP_D, post, nq);
}

/* ---------------------------------------------------------------- */

static void lower_body(Emitter *e, const Graph *g, const IrOp *o)
{
    Roles r = op_roles(o->op);
    switch (o->op) {
    case OP_MATMUL: lower_matmul(e, g, o); break;
    case OP_BIAS_ADD: lower_bias_add(e, o); break;
    case OP_BIAS_GRAD: lower_bias_grad(e, g, o, NULL); break;
    case OP_SUM: lower_sum(e, g, o); break;
    case OP_SOFTMAX: lower_softmax(e, o); break;
    case OP_SOFTMAX_GRAD: lower_softmax_grad(e, o); break;
    case OP_SOFTMAX_XENT:
    case OP_XENT_PROBS: lower_xent(e, g, o); break;
    case OP_SOFTMAX_XENT_GRAD:
    case OP_XENT_PROBS_GRAD: lower_xent_grad(e, g, o); break;
    case OP_MSE:
    case OP_BCE:
    case OP_BCE_LOGITS: lower_pointwise_loss(e, g, o); break;
    case OP_MSE_GRAD:
    case OP_BCE_GRAD:
    case OP_BCE_LOGITS_GRAD: lower_pointwise_loss_grad(e, o); break;
    case OP_SGD_UPDATE: lower_sgd(e, o, shape_elems(&o->shape)); break;
    case OP_ADAM_UPDATE: lower_adam(e, o, shape_elems(&o->shape)); break;
    case OP_RMSPROP_UPDATE: lower_rmsprop(e, o, shape_elems(&o->shape)); break;
    default: lower_ewise(e, o, &r); break;
    }
}

void lower_kernel(Emitter *e, const Graph *g, const Kernel *k)
{
    if (k->kind != KK_SINGLE) {
        lower_fused_kernel(e, g, k);
        return;
    }
    const IrOp *o = &g->ops[k->ops[0]];
    char params[1024];
    kernel_params(g, o, params, sizeof params, e->real,
                  kernel_in_place_ok(g, k));
    kernel_comment(e, g, k);
    emit(e, "%s %s(%s)", kernel_storage(g, k), k->name, params);
    emit_open(e, "%s", "");
    if (!lower_conv_body(e, g, o, k->train_mode))
        lower_body(e, g, o);
    emit_close(e, NULL);
    emit_blank(e);
}
