/* lower_fused.c — C for the kernels fusion rules made (fuse.c).
 *
 * requires: a kernel of kind other than KK_SINGLE, its members in
 * schedule order, stored[] telling which results go to memory.
 * guarantees: one static function per kernel computing all its members
 * in one pass over the data; values that stay inside the kernel live in
 * registers (locals t0, t1, ... named after the member's position);
 * arguments are the kernel's external inputs, then its stored results,
 * each named after the value it holds.
 *
 * Arithmetic is the same as the single-op kernels' (same expressions, same
 * order of summation), so fused and unfused programs agree to rounding;
 * the one exception is softmax_xent_grad, which computes p - t directly
 * instead of through 1/p (see that function). */
#include "nnc.h"

#include <string.h>

enum { MAX_ARGS = 64 };

typedef struct Args {
    int value[MAX_ARGS];
    const char *name[MAX_ARGS];
    bool written[MAX_ARGS];
    int n;
} Args;

static int member_index(const Kernel *k, int v)
{
    for (int m = 0; m < k->nops; m++)
        if (k->ops[m] == v)
            return m;
    return -1;
}

/* A C name for the buffer of value v: a parameter's name, the user's
 * name, or the op that made it. */
static const char *value_cname(const Graph *g, int v)
{
    const IrOp *o = &g->ops[v];
    while (o->storage == SG_VIEW)
        o = &g->ops[o->in[0]];
    const char *base;
    switch (o->storage) {
    case SG_PARAM: base = g->params[o->param].name; break;
    case SG_GRAD: base = arena_printf(g->arena, "d%s", g->params[o->param].name); break;
    case SG_INPUT: base = "x"; break;
    case SG_LABEL: base = "y"; break;
    default:
        base = o->name ? o->name
                       : arena_printf(g->arena, "%s_%s", o->label ? o->label : "t",
                                      op_names[o->op]);
    }
    char *s = arena_strdup(g->arena, base);
    for (char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_'))
            *p = '_';
    return s;
}

/* Names the kernel bodies use for their own locals: an argument named
 * like one gets its value id appended. */
static bool is_reserved(const char *name, bool conv)
{
    static const char *const locals[] = {"i", "j", "k", "r", "c", "at", "row",
        "acc", "aik", "b", "brow", "a", "band", "i0", "j0", "packed", "scale", "total", "max", "sum", "zr", "pr", "d",
        "mass", "tr", "lr", "first_step", "bias1", "bias2", "step_size",
        "root_bias2", "w", "g", "m", "v", "yp", "dyp", "dxp", "nc", "oh", "ow",
        "first", "best", "top", "take", "NNC_PARALLEL_FOR", "NNC_SIMD_SUM",
        "k0", "part", "band0", "band1", "bt", "kn", "kb", "bsrc", "l",
        "share0", "share1", "NV", "bad", "taken", "cur", "group", "dy",
        "dbias", "nonfinite"};
    /* and those of the convolution and batch-norm loop nests */
    static const char *const conv_locals[] = {"n", "f", "q", "p", "p0", "s", "t", "fc", "xn", "wf", "xc", "wv", "xs",
        "xp", "xr", "yr", "act", "base", "dyz", "dyw", "dyf", "yf", "dyg",
        "yg", "dym", "dyr", "pg", "gw", "pw", "dr", "bl", "pq", "ymr", "ln", "lane", "lane2", "yrow", "oh_lo",
        "oh_hi", "ow_lo", "ow_hi", "batch_mean", "batch_var", "mean",
        "inv_std", "squares", "sum_dy", "sum_dy_xc", "mean_dy",
        "mean_dy_xhat", "xhat"};
    for (size_t i = 0; i < sizeof locals / sizeof *locals; i++)
        if (!strcmp(locals[i], name))
            return true;
    for (size_t i = 0; conv && i < sizeof conv_locals / sizeof *conv_locals; i++)
        if (!strcmp(conv_locals[i], name))
            return true;
    if (name[0] != 't' || !name[1])
        return false;
    for (const char *p = name + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true; /* t0, t1, ...: the members' locals */
}

/* Kernels built from the loop nests of lower_conv.c */
static bool has_roles(const Kernel *k)
{
    return k->kind == KK_CONV_EPILOGUE || k->kind == KK_CONV_GRAD ||
           k->kind == KK_BN || k->kind == KK_BN_GRAD;
}

/* The name the convolution and batch-norm loop nests (lower_conv.c) give
 * input j of member o (j = -1: its result), or NULL where the value keeps
 * its own name: those kernels are written in these names. */
static const char *role_name(const Kernel *k, const IrOp *o, int j)
{
    static const struct {
        OpKind op;
        const char *in[4], *out;
    } roles[] = {
        {OP_CONV2D, {"x", "w"}, NULL},
        {OP_CONV2D_GRAD_INPUT, {"dy", "w"}, "dx"},
        {OP_CONV2D_GRAD_WEIGHT, {"dy", "x"}, "dw"},
        {OP_BIAS_GRAD, {"dy"}, "dbias"},
        {OP_BN_STATS, {"x", "running_mean", "running_var"}, "stats"},
        {OP_BATCHNORM, {"x", "stats", "gamma", "beta"}, NULL},
        {OP_BATCHNORM_GRAD_INPUT, {"dy", "x", "stats", "gamma"}, "dx"},
        {OP_BATCHNORM_GRAD_GAMMA, {"dy", "x", "stats"}, "dgamma"},
    };
    if (!has_roles(k))
        return NULL;
    for (size_t r = 0; r < sizeof roles / sizeof roles[0]; r++)
        if (roles[r].op == o->op)
            return j < 0 ? roles[r].out : roles[r].in[j];
    /* the folded activation gradient reads (dy, y), the folded
     * maxpool2d_grad_at (dy, place) */
    if (k->kind == KK_CONV_GRAD && o->op == OP_MAXPOOL2D_GRAD_AT)
        return j >= 0 ? (const char *[]){"dy", "place"}[j] : NULL;
    bool act = (k->kind == KK_CONV_GRAD || k->kind == KK_BN_GRAD) &&
               op_class[o->op] == OC_EWISE;
    return act && j >= 0 ? (const char *[]){"dy", "y"}[j] : NULL;
}

static void add_arg(const Graph *g, const Kernel *k, Args *a, int v,
                    bool written, const char *role)
{
    for (int i = 0; i < a->n; i++)
        if (a->value[i] == v)
            return;
    if (a->n == MAX_ARGS)
        return;
    const char *name = role ? role : value_cname(g, v);
    /* a tail's bias gradients use the loop nests' n and c */
    bool taken = !role && is_reserved(name, has_roles(k) ||
                                                k->kind == KK_GRAD_TAIL);
    for (int i = 0; i < a->n; i++)
        taken = taken || !strcmp(a->name[i], name);
    if (taken)
        name = arena_printf(g->arena, "%s_%d", name, v);
    a->value[a->n] = v;
    a->name[a->n] = name;
    a->written[a->n] = written;
    a->n++;
}

/* Inputs from outside the kernel, then the results it stores. */
static void collect_args(const Graph *g, const Kernel *k, Args *a)
{
    a->n = 0;
    for (int m = 0; m < k->nops; m++) {
        const IrOp *o = &g->ops[k->ops[m]];
        for (int j = 0; j < o->nin; j++)
            if (member_index(k, o->in[j]) < 0)
                add_arg(g, k, a, o->in[j], false, role_name(k, o, j));
    }
    for (int m = 0; m < k->nops; m++)
        if (k->stored[m] && g->ops[k->ops[m]].storage != SG_NONE)
            add_arg(g, k, a, k->ops[m], true,
                    role_name(k, &g->ops[k->ops[m]], -1));
}

static const char *arg_name(const Args *a, int v)
{
    for (int i = 0; i < a->n; i++)
        if (a->value[i] == v)
            return a->name[i];
    return "?";
}

static void signature(Emitter *e, const Graph *g, const Kernel *k,
                      const Args *a, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < a->n && at < len; i++) {
        const IrOp *o = &g->ops[a->value[i]];
        bool i32 = o->dtype == DT_I32;
        at += (size_t)snprintf(buf + at, len - at, "%s%s%s *%s%s",
                               i ? ", " : "", a->written[i] ? "" : "const ",
                               i32 ? "int32_t" : e->real,
                               kernel_in_place_ok(g, k) ? "" : "restrict ",
                               a->name[i]);
    }
    if (k->scratch > 0 && at < len)
        at += (size_t)snprintf(buf + at, len - at, ", %s *restrict packed",
                               e->real);
    if (kernel_checks_gradient(g, k) && at < len)
        snprintf(buf + at, len - at, ", int *restrict nonfinite");
    if (k->kind != KK_UPDATE || at >= len)
        return;
    if (g->ops[k->ops[0]].op == OP_SGD_UPDATE)
        snprintf(buf + at, len - at, ", double lr, int first_step");
    else
        snprintf(buf + at, len - at, ", double lr, double bias1, double bias2");
}

static void kernel_comment(Emitter *e, const Graph *g, const Kernel *k)
{
    emit(e, "/* %s: fused by rule %s (%s), %s", k->name, k->rule,
         e->o->source, k->train_mode ? "training mode" : "any mode");
    for (int m = 0; m < k->nops; m++) {
        const IrOp *o = &g->ops[k->ops[m]];
        char shape[96];
        emit(e, " *   %-16s %-12s %s  line %d%s", op_names[o->op],
             o->label ? o->label : "", shape_str(&o->shape, shape, sizeof shape),
             o->loc.line, k->stored[m] ? "" : "  (kept in registers)");
    }
    emit(e, " */");
}

/* ---------------------------------------------------------------- */
/* elementwise members                                               */

/* Whether operand j of member `o` is an argument read element by element
 * (at `idx`): not a local of an earlier member, nor a bias (read by
 * column or filter). */
static bool operand_reads_element(const Kernel *k, const IrOp *o, int j)
{
    return member_index(k, o->in[j]) < 0 && !(o->op == OP_BIAS_ADD && j == 1);
}

/* The expression operand j of member `o` reads: a local of an earlier
 * member, or element `idx` of an argument (bias: element `col`). */
static void operand(const Kernel *k, const Args *a, const IrOp *o, int j,
                    const char *idx, const char *col, char *buf, size_t len)
{
    int v = o->in[j];
    int m = member_index(k, v);
    if (m >= 0)
        snprintf(buf, len, "t%d", m);
    else
        snprintf(buf, len, "%s[%s]", arg_name(a, v),
                 operand_reads_element(k, o, j) ? idx : col);
}

static void pointwise_loss_grad_expr(Emitter *e, const IrOp *o, const char *p,
                                     const char *t, char *buf, size_t len)
{
    switch (o->op) {
    case OP_MSE_GRAD:
        snprintf(buf, len, "scale * 2 * (%s - %s)", p, t);
        break;
    case OP_BCE_GRAD:
        /* a compare, not fmaxf: gcc calls libm for fmaxf, and the two
         * agree on every input (a NaN product gives the floor in both) */
        snprintf(buf, len, "scale * (%s - %s) / ((1 - %s) * %s > %s ? (1 - %s) * %s : %s)",
                 p, t, p, p, e->o->f64 ? "1e-12" : "1e-12f", p, p,
                 e->o->f64 ? "1e-12" : "1e-12f");
        break;
    default:
        snprintf(buf, len, "scale * (1 / (1 + %s(-%s)) - %s)",
                 lower_libm(e, "exp"), p, t);
        break;
    }
}

/* Members [from, to), each into its local t<m>, stored if needed. */
static void emit_member_range(Emitter *e, const Graph *g, const Kernel *k,
                              const Args *a, int from, int to,
                              const char *idx, const char *col)
{
    for (int m = from; m < to; m++) {
        const IrOp *o = &g->ops[k->ops[m]];
        char x[96], y[96], expr[1024];
        operand(k, a, o, 0, idx, col, x, sizeof x);
        if (o->nin > 1)
            operand(k, a, o, 1, idx, col, y, sizeof y);
        else
            y[0] = '\0';
        if (op_class[o->op] == OC_LOSS)
            pointwise_loss_grad_expr(e, o, x, y, expr, sizeof expr);
        else if (o->op == OP_BIAS_ADD)
            snprintf(expr, sizeof expr, "%s + %s", x, y);
        else
            lower_ewise_expr(e, o, x, y, expr, sizeof expr);
        emit(e, "const %s t%d = %s; /* %s %s */", e->real, m, expr,
             o->label ? o->label : "", op_names[o->op]);
        if (k->stored[m])
            emit(e, "%s[%s] = t%d;", arg_name(a, k->ops[m]), idx, m);
    }
}

static void emit_members(Emitter *e, const Graph *g, const Kernel *k,
                         const Args *a, int from, const char *idx,
                         const char *col)
{
    emit_member_range(e, g, k, a, from, k->nops, idx, col);
}

/* The scalar `scale` a pointwise loss gradient at the head needs. */
static void emit_loss_scale(Emitter *e, const Graph *g, const Kernel *k,
                            const Args *a)
{
    const IrOp *head = &g->ops[k->ops[0]];
    if (op_class[head->op] != OC_LOSS)
        return;
    char n[48];
    emit(e, "const %s scale = %s[0] / %s;", e->real, arg_name(a, head->in[2]),
         emit_lit(e, (double)shape_elems(&head->shape), n, sizeof n));
}

static void lower_ewise_chain(Emitter *e, const Graph *g, const Kernel *k,
                              const Args *a)
{
    const IrOp *head = &g->ops[k->ops[0]];
    long n = shape_elems(&head->shape);
    emit_loss_scale(e, g, k, a);
    lower_parallel_for(e, n * k->nops);
    if (head->op != OP_BIAS_ADD) {
        emit_open(e, "for (long i = 0; i < %ld; i++)", n);
        emit_members(e, g, k, a, 0, "i", NULL);
        emit_close(e, NULL);
        return;
    }
    /* a bias: walk [rows, channels, inner] so the channel is a loop index */
    int rows = head->shape.dim[0], ch = head->shape.dim[1];
    long inner = n / rows / ch;
    emit_open(e, "for (int r = 0; r < %d; r++)", rows);
    emit_open(e, "for (int c = 0; c < %d; c++)", ch);
    emit_open(e, "for (long j = 0; j < %ld; j++)", inner);
    emit(e, "const long i = ((long)r * %d + c) * %ld + j;", ch, inner);
    emit_members(e, g, k, a, 0, "i", "c");
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* ---------------------------------------------------------------- */
/* matmul with an epilogue                                           */

typedef struct EpilogueCtx {
    const Graph *g;
    const Kernel *k;
    const Args *a;
} EpilogueCtx;

/* The matmul's value arrives in t0; the chain continues from member 1. */
static void chain_epilogue(Emitter *e, const void *ctx)
{
    const EpilogueCtx *c = ctx;
    if (c->k->stored[0])
        emit(e, "%s[at] = t0;", arg_name(c->a, c->k->ops[0]));
    emit_members(e, c->g, c->k, c->a, 1, "at", "j");
}

static void lower_epilogue(Emitter *e, const Graph *g, const Kernel *k,
                           const Args *a)
{
    const IrOp *o = &g->ops[k->ops[0]];
    EpilogueCtx ctx = {g, k, a};
    Gemm m = {.a = arg_name(a, o->in[0]), .b = arg_name(a, o->in[1]),
              .packed = "packed", .epilogue = chain_epilogue, .ctx = &ctx};
    gemm_from_op(g, o, &m);
    for (int i = 1; i < k->nops; i++)
        m.uses_col = m.uses_col || g->ops[k->ops[i]].op == OP_BIAS_ADD;
    lower_gemm(e, &m);
}

/* ---------------------------------------------------------------- */
/* convolution with an epilogue, and a pooling of each plane          */

static bool is_pool(OpKind op)
{
    return op == OP_MAXPOOL2D || op == OP_AVGPOOL2D;
}

/* The pooling, or the places of its maxima, that ends a conv_pool chain */
static bool is_pool_member(OpKind op)
{
    return is_pool(op) || op == OP_MAXPOOL2D_PLACE;
}

/* The convolution's value arrives in t0; the chain runs from member 1 up
 * to the pooling, whose plane the chain's last value goes to. */
static void conv_epilogue(Emitter *e, const void *ctx)
{
    const EpilogueCtx *c = ctx;
    int chain_end = c->k->nops;
    while (is_pool_member(c->g->ops[c->k->ops[chain_end - 1]].op))
        chain_end--;
    if (c->k->stored[0])
        emit(e, "%s[at] = t0;", arg_name(c->a, c->k->ops[0]));
    emit_member_range(e, c->g, c->k, c->a, 1, chain_end, "at", "f");
    if (chain_end < c->k->nops)
        emit(e, "act[q] = t%d;", chain_end - 1);
}

/* Whether a member of kernel k's chain reads a tensor from outside the
 * kernel element by element (`name[at]`), as a residual add before a
 * pooling does. */
static bool chain_reads_tensor(const Graph *g, const Kernel *k)
{
    for (int m = 1; m < k->nops; m++) {
        const IrOp *o = &g->ops[k->ops[m]];
        if (is_pool_member(o->op))
            continue;
        for (int j = 0; j < o->nin; j++)
            if (operand_reads_element(k, o, j))
                return true;
    }
    return false;
}

static void lower_conv_epilogue(Emitter *e, const Graph *g, const Kernel *k,
                                const Args *a)
{
    EpilogueCtx ctx = {g, k, a};
    ConvEpilogue ep = {.store = conv_epilogue, .ctx = &ctx};
    for (int m = 1; m < k->nops; m++) {
        int v = k->ops[m];
        if (is_pool(g->ops[v].op)) {
            ep.pool = &g->ops[v];
            ep.pooled = arg_name(a, v);
        } else if (g->ops[v].op == OP_MAXPOOL2D_PLACE) {
            ep.place = arg_name(a, v);
        }
    }
    for (int m = 0; m < k->nops; m++)
        ep.stores = ep.stores ||
                    (k->stored[m] && !is_pool_member(g->ops[k->ops[m]].op));
    ep.indexed = chain_reads_tensor(g, k);
    lower_conv2d_fused(e, g, &g->ops[k->ops[0]], &ep);
}

/* The member of kind op, or NULL. */
static const IrOp *member_of_kind(const Graph *g, const Kernel *k, OpKind op)
{
    for (int m = 0; m < k->nops; m++)
        if (g->ops[k->ops[m]].op == op)
            return &g->ops[k->ops[m]];
    return NULL;
}

/* Each member after the folded activation gradient or maxpool2d_grad_at
 * (member 0, act) is a bias, input or weight gradient of the convolution
 * reading dy through act, in a loop nest of its own; with
 * maxpool2d_grad_at, the bias gradient is summed inside the weight
 * gradient's loop when that loop sees each plane once (rule
 * conv_grad_place), so the plane is rebuilt once for both. */
static void lower_conv_grad_kernel(Emitter *e, const Graph *g,
                                   const Kernel *k)
{
    const IrOp *act = &g->ops[k->ops[0]];
    const IrOp *bias = member_of_kind(g, k, OP_BIAS_GRAD);
    const IrOp *weight = member_of_kind(g, k, OP_CONV2D_GRAD_WEIGHT);
    bool shared = act->op == OP_MAXPOOL2D_GRAD_AT && bias && weight &&
                  conv_grad_weight_takes_bias(e, g, weight);
    for (int m = 1; m < k->nops; m++) {
        const IrOp *o = &g->ops[k->ops[m]];
        if (shared && o == bias)
            continue;
        if (shared && o == weight) {
            emit_open(e, "/* %s and bias_grad, dy through %s */",
                      op_names[o->op], op_names[act->op]);
            lower_conv_grad_weight_bias(e, g, o, act);
        } else {
            emit_open(e, "/* %s, dy through %s */", op_names[o->op],
                      op_names[act->op]);
            lower_conv_grad(e, g, o, act);
        }
        emit_close(e, NULL);
    }
}

/* ---------------------------------------------------------------- */
/* batch normalisation                                               */

/* The normalised value arrives in t1; the chain runs from member 2. */
static void bn_epilogue(Emitter *e, const void *ctx)
{
    const EpilogueCtx *c = ctx;
    if (c->k->stored[1])
        emit(e, "%s[at] = t1;", arg_name(c->a, c->k->ops[1]));
    emit_members(e, c->g, c->k, c->a, 2, "at", "c");
}

static void lower_bn_kernel(Emitter *e, const Graph *g, const Kernel *k,
                            const Args *a)
{
    EpilogueCtx ctx = {g, k, a};
    BnEpilogue ep = {.store = bn_epilogue, .ctx = &ctx, .value = "t1",
                     .train_mode = k->train_mode,
                     .stats = k->stored[0] ? arg_name(a, k->ops[0]) : NULL};
    lower_bn_fused(e, g, &g->ops[k->ops[0]], &g->ops[k->ops[1]], &ep);
}

/* The members by kind: maybe a folded activation gradient first. */
static void lower_bn_grad_kernel(Emitter *e, const Graph *g, const Kernel *k)
{
    const IrOp *act = NULL, *gin = NULL, *ggamma = NULL, *gbeta = NULL;
    for (int m = 0; m < k->nops; m++) {
        const IrOp *o = &g->ops[k->ops[m]];
        if (o->op == OP_BATCHNORM_GRAD_INPUT)
            gin = o;
        else if (o->op == OP_BATCHNORM_GRAD_GAMMA)
            ggamma = o;
        else if (o->op == OP_BIAS_GRAD)
            gbeta = o;
        else
            act = o;
    }
    lower_bn_grad_fused(e, g, act, gin, ggamma, gbeta);
}

/* ---------------------------------------------------------------- */
/* softmax and cross-entropy                                         */

static void lower_softmax_xent(Emitter *e, const Graph *g, const Kernel *k,
                               const Args *a)
{
    const IrOp *sm = &g->ops[k->ops[0]], *xe = &g->ops[k->ops[1]];
    long w = sm->shape.dim[sm->shape.rank - 1];
    long rows = shape_elems(&sm->shape) / w;
    const char *z = arg_name(a, sm->in[0]), *t = arg_name(a, xe->in[1]);
    const char *p = arg_name(a, k->ops[0]), *loss = arg_name(a, k->ops[1]);
    bool dense = xe->attr.loss.soft || xe->attr.loss.smoothing != 0;
    Emitter de = {.real = "double", .o = e->o};
    char wt[160];
    lower_xent_weight(&de, g, xe, t, wt, sizeof wt);
    emit(e, "double total = 0;");
    emit_open(e, "for (int r = 0; r < %ld; r++)", rows);
    emit(e, "const %s *zr = %s + (long)r * %ld;", e->real, z, w);
    emit(e, "%s *pr = %s + (long)r * %ld;", e->real, p, w);
    emit(e, "%s max = zr[0];", e->real);
    emit_open(e, "for (int j = 1; j < %ld; j++)", w);
    emit(e, "max = zr[j] > max ? zr[j] : max;");
    emit_close(e, NULL);
    emit(e, "%s sum = 0;", e->real);
    emit_open(e, "for (int j = 0; j < %ld; j++)", w);
    emit(e, "pr[j] = %s(zr[j] - max);", lower_libm(e, "exp"));
    emit(e, "sum += pr[j];");
    emit_close(e, NULL);
    emit_open(e, "for (int j = 0; j < %ld; j++)", w);
    emit(e, "pr[j] /= sum;");
    emit_close(e, NULL);
    /* the probabilities are clipped as Keras does, as the unfused loss */
    if (dense) {
        emit_open(e, "for (int j = 0; j < %ld; j++)", w);
        emit(e, "total -= (double)%s * log(fmax((double)pr[j], 1e-7));", wt);
        emit_close(e, NULL);
    } else {
        emit(e, "total -= log(fmax((double)pr[%s[r]], 1e-7));", t);
    }
    emit_close(e, NULL);
    emit(e, "%s[0] = (%s)(total / %ld);", loss, e->real, rows);
}

/* d/dz of -sum(t log softmax(z)) = p * sum(t) - t: the 1/p of the loss
 * gradient and the p of the softmax Jacobian cancel, so this is exact
 * and stable even where p underflows (the unfused pair clips p at 1e-7
 * and differs from this only there). */
static void lower_softmax_xent_grad(Emitter *e, const Graph *g,
                                    const Kernel *k, const Args *a)
{
    const IrOp *xg = &g->ops[k->ops[0]];
    const IrOp *sg = &g->ops[k->ops[1]];
    long w = sg->shape.dim[sg->shape.rank - 1];
    long rows = shape_elems(&sg->shape) / w;
    const char *p = arg_name(a, xg->in[0]), *t = arg_name(a, xg->in[1]);
    const char *dl = arg_name(a, xg->in[2]), *dz = arg_name(a, k->ops[1]);
    char n[48], p_decl[64];
    emit(e, "const %s scale = %s[0] / %s;", e->real, dl,
         emit_lit(e, (double)rows, n, sizeof n));
    lower_parallel_for(e, rows * w * 4);
    emit_open(e, "for (int r = 0; r < %ld; r++)", rows);
    emit(e, "const %s *pr = %s + (long)r * %ld;", e->real, p, w);
    emit(e, "%s *d = %s + (long)r * %ld;", e->real, dz, w);
    snprintf(p_decl, sizeof p_decl, "const %s p = pr[j];", e->real);
    lower_xent_logit_grad(e, g, xg, t, p_decl, w);
    emit_close(e, NULL);
}

/* ---------------------------------------------------------------- */
/* maxpool's gradient through relu's mask                            */

/* dx = (y > 0) * (dy routed to the first maximum of each window of y).
 * Each plane of y is copied to the stack first, so dx may be written
 * over y (the plan does that: y is read for the last time here). */
static void lower_pool_relu_grad(Emitter *e, const Graph *g, const Kernel *k,
                                 const Args *a)
{
    const IrOp *pg = &g->ops[k->ops[0]];
    const IrOp *dyo = &g->ops[pg->in[0]];
    int H = pg->shape.dim[2], W = pg->shape.dim[3];
    int OH = dyo->shape.dim[2], OW = dyo->shape.dim[3];
    long planes = (long)pg->shape.dim[0] * pg->shape.dim[1], hw = (long)H * W;
    const char *R = e->real, *dy = arg_name(a, pg->in[0]);
    const char *y = arg_name(a, pg->in[1]), *dx = arg_name(a, k->ops[1]);
    if (maxpool_windows_disjoint(pg)) {
        lower_maxpool_grad_disjoint(e, pg, &dyo->shape, dy, y, dx, true);
        return;
    }
    lower_parallel_for(e, planes * hw * 4);
    emit_open(e, "for (long nc = 0; nc < %ld; nc++)", planes);
    emit(e, "%s yp[%ld]; /* this plane of %s, before dx overwrites it */", R,
         hw, y);
    emit(e, "memcpy(yp, %s + nc * %ld, sizeof yp);", y, hw);
    emit(e, "const %s *dyp = %s + nc * %ld;", R, dy, (long)OH * OW);
    emit(e, "%s *dxp = %s + nc * %ld;", R, dx, hw);
    emit(e, "memset(dxp, 0, sizeof yp);");
    emit_open(e, "for (int oh = 0; oh < %d; oh++)", OH);
    emit_open(e, "for (int ow = 0; ow < %d; ow++)", OW);
    emit(e, "const int first = oh * %d + ow * %d;", pg->attr.win.sh * W,
         pg->attr.win.sw);
    emit(e, "int best = first;");
    emit(e, "%s top = yp[first];", R);
    emit_open(e, "for (int i = 0; i < %d; i++)", pg->attr.win.kh);
    emit_open(e, "for (int j = 0; j < %d; j++)", pg->attr.win.kw);
    emit(e, "const int at = first + i * %d + j;", W);
    emit(e, "const int take = (yp[at] > top) | (yp[at] != yp[at]);");
    emit(e, "best = take ? at : best;");
    emit(e, "top = take ? yp[at] : top;");
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit(e, "dxp[best] += dyp[oh * %d + ow];", OW);
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit(e, "/* relu's mask, from its output */");
    emit_open(e, "for (long i = 0; i < %ld; i++)", hw);
    emit(e, "dxp[i] = yp[i] > 0 ? dxp[i] : 0;");
    emit_close(e, NULL);
    emit_close(e, NULL);
}

/* ---------------------------------------------------------------- */
/* the gradients that end the backward pass                          */

static void store_tail_member(Emitter *e, const void *ctx)
{
    emit(e, "%s[at] = t0;", (const char *)ctx);
}

/* Member o of a tail, in its own block: a product (testing what it
 * stores, into the kernel's `bad`) or a bias gradient, whose loop nest
 * reads dy and writes dbias. */
static void lower_tail_member(Emitter *e, const Graph *g, const Args *a,
                              int v)
{
    const IrOp *o = &g->ops[v];
    emit_open(e, "%s", "");
    if (o->op == OP_MATMUL) {
        Gemm m = {.a = arg_name(a, o->in[0]), .b = arg_name(a, o->in[1]),
                  .epilogue = store_tail_member, .ctx = arg_name(a, v),
                  .check_finite = matmul_stores_gradient(o)};
        gemm_from_op(g, o, &m);
        lower_gemm_product(e, &m);
    } else {
        emit(e, "const %s *restrict dy = %s;", e->real, arg_name(a, o->in[0]));
        emit(e, "%s *restrict dbias = %s;", e->real, arg_name(a, v));
        lower_bias_grad(e, g, o, NULL);
    }
    emit_close(e, NULL);
}

/* One parallel region: the last thread computes the small members one
 * after another, then joins the others in the lead product, whose
 * groups of bands each thread claims as it comes free. Each element is
 * still computed by one thread in one order, so the bits are those of
 * the members as kernels of their own, on any number of threads. */
static void lower_grad_tail(Emitter *e, const Graph *g, const Kernel *k,
                            const Args *a)
{
    const int lead = kernel_tail_lead(g, k);
    const char *lead_name = arg_name(a, k->ops[lead]);
    emit(e, "int bad = 0; /* whether an element stored is not finite */");
    emit(e, "int taken = 0; /* groups of %s's bands claimed so far */",
         lead_name);
    emit(e, "/* the last thread computes the other gradients first; the "
         "others start on %s */", lead_name);
    emit(e, "NNC_PARALLEL_BAD");
    emit_open(e, "%s", "");
    Emitter in = *e;
    in.serial = true;
    emit_open(&in, "if (NNC_THREAD == NNC_THREADS - 1)");
    for (int m = 0; m < k->nops; m++)
        if (m != lead)
            lower_tail_member(&in, g, a, k->ops[m]);
    emit_close(&in, NULL);
    in.claim = "taken";
    lower_tail_member(&in, g, a, k->ops[lead]);
    emit_close(e, NULL);
    emit_open(e, "if (bad)");
    emit(e, "*nonfinite = 1;");
    emit_close(e, NULL);
}

/* ---------------------------------------------------------------- */
/* the optimizer over a run of parameters                            */

long update_elems(const Graph *g, const Kernel *k)
{
    long n = 0;
    for (int m = 0; m < k->nops; m++)
        n += g->params[g->ops[k->ops[m]].param].size;
    return n;
}

static void lower_update_sweep(Emitter *e, const Graph *g, const Kernel *k)
{
    const IrOp *o = &g->ops[k->ops[0]];
    emit(e, "/* parameters %s .. %s: contiguous in params, grads and state */",
         g->params[o->param].name,
         g->params[g->ops[k->ops[k->nops - 1]].param].name);
    if (o->op == OP_SGD_UPDATE)
        lower_sgd(e, o, update_elems(g, k));
    else
        lower_adam(e, o, update_elems(g, k));
}

/* ---------------------------------------------------------------- */

void lower_fused_kernel(Emitter *e, const Graph *g, const Kernel *k)
{
    Args a;
    char sig[2048];
    kernel_comment(e, g, k);
    if (k->kind == KK_UPDATE) {
        /* the same names as a single update kernel, over the whole run */
        const IrOp *o = &g->ops[k->ops[0]];
        bool adam = o->op == OP_ADAM_UPDATE, momentum = o->nin > 2;
        const char *R = e->real;
        const char *state =
            adam       ? arena_printf(g->arena, ", %s *restrict m, %s *restrict v", R, R)
            : momentum ? arena_printf(g->arena, ", %s *restrict v", R)
                       : "";
        emit(e, "%s %s(%s *restrict w, const %s *restrict g%s, "
             "double lr, %s)", kernel_storage(g, k), k->name, R, R, state,
             adam ? "double bias1, double bias2" : "int first_step");
        emit_open(e, "%s", "");
        lower_update_sweep(e, g, k);
        emit_close(e, NULL);
        emit_blank(e);
        return;
    }
    collect_args(g, k, &a);
    signature(e, g, k, &a, sig, sizeof sig);
    emit(e, "%s %s(%s)", kernel_storage(g, k), k->name, sig);
    emit_open(e, "%s", "");
    switch (k->kind) {
    case KK_EPILOGUE: lower_epilogue(e, g, k, &a); break;
    case KK_EWISE: lower_ewise_chain(e, g, k, &a); break;
    case KK_SOFTMAX_XENT: lower_softmax_xent(e, g, k, &a); break;
    case KK_POOL_RELU_GRAD: lower_pool_relu_grad(e, g, k, &a); break;
    case KK_CONV_EPILOGUE: lower_conv_epilogue(e, g, k, &a); break;
    case KK_CONV_GRAD: lower_conv_grad_kernel(e, g, k); break;
    case KK_BN: lower_bn_kernel(e, g, k, &a); break;
    case KK_BN_GRAD: lower_bn_grad_kernel(e, g, k); break;
    case KK_GRAD_TAIL: lower_grad_tail(e, g, k, &a); break;
    default: lower_softmax_xent_grad(e, g, k, &a); break;
    }
    emit_close(e, NULL);
    emit_blank(e);
}

static void update_call(Emitter *e, const Graph *g, const Kernel *k,
                        const Plan *p)
{
    const IrOp *o = &g->ops[k->ops[0]];
    const Param *first = &g->params[o->param];
    char w[64], gr[64], lit1[48], lit2[48];
    lower_buffer_expr(g, p, o->in[0], w, sizeof w);
    lower_buffer_expr(g, p, o->in[1], gr, sizeof gr);
    Emitter de = {.real = "double", .o = e->o};
    if (o->op == OP_ADAM_UPDATE)
        emit(e, "%s(%s, %s, m->state + %ld, m->state + %ld, m->lr, "
             "1.0 - pow(%s, (double)m->step), 1.0 - pow(%s, (double)m->step));",
             k->name, w, gr, first->offset, g->param_elems + first->offset,
             emit_lit(&de, o->attr.opt.beta1, lit1, sizeof lit1),
             emit_lit(&de, o->attr.opt.beta2, lit2, sizeof lit2));
    else if (o->nin > 2)
        emit(e, "%s(%s, %s, m->state + %ld, m->lr, m->step == 1);", k->name, w,
             gr, first->offset);
    else
        emit(e, "%s(%s, %s, m->lr, m->step == 1);", k->name, w, gr);
}

void lower_fused_call(Emitter *e, const Graph *g, const Kernel *k,
                      const Plan *p)
{
    if (k->kind == KK_UPDATE) {
        update_call(e, g, k, p);
        return;
    }
    Args a;
    collect_args(g, k, &a);
    char args[2048], one[96];
    size_t at = 0;
    args[0] = '\0';
    for (int i = 0; i < a.n && at < sizeof args; i++) {
        lower_buffer_expr(g, p, a.value[i], one, sizeof one);
        at += (size_t)snprintf(args + at, sizeof args - at, "%s%s",
                               i ? ", " : "", one);
    }
    if (k->scratch > 0 && at < sizeof args)
        at += (size_t)snprintf(args + at, sizeof args - at, ", m->arena + %ld",
                               p->scratch[k->index]);
    if (kernel_checks_gradient(g, k) && at < sizeof args)
        snprintf(args + at, sizeof args - at, ", &m->grads_nonfinite");
    emit(e, "%s(%s);", k->name, args);
}
