/* fuse.c — groups ops into kernels, program by program.
 *
 * requires: the complete graph (forward, backward, update), verified;
 * activation gradients read the activation's output (autodiff.c), the
 * optimizer state is laid out parallel to the parameters (optim.c).
 * guarantees: for every program, each op it runs that computes something
 * belongs to exactly one kernel of its schedule; a kernel executes where
 * its first op stood, and every member reads only values computed before
 * that point or inside the kernel, so the schedule stays topological.
 * A member's result is stored only if something outside the kernel (in
 * that program) reads it, or it is the program's result.
 *
 * The rules, tried in this order at each op that starts a kernel:
 *   update_sweep      consecutive optimizer updates with the same settings
 *                     over adjacent parameters -> one loop over the block
 *   softmax_xent      softmax + the cross-entropy that reads it -> one
 *                     pass per row (forward)
 *   softmax_xent_grad the cross-entropy gradient + the softmax gradient
 *                     -> (p * sum(t) - t) * dloss / rows, per row
 *   maxpool_relu_grad maxpool's gradient routed straight through relu's
 *                     mask, one plane at a time, so the result can take the
 *                     memory of the relu output it reads (in place)
 *   matmul_epilogue   matmul + bias + elementwise chain applied to each
 *                     result as it is stored (dense + bias + relu forward;
 *                     dx = dy W^T with the activation's gradient mask)
 *   conv_epilogue     conv2d + bias + elementwise chain applied to each
 *                     output plane as it leaves the stack (conv + bias +
 *                     relu forward: no bias or activation pass)
 *   conv_pool         conv_epilogue + the max/avg pooling of its chain's
 *                     end: each plane pooled while it is on the stack
 *   conv_grad_mask    an activation's gradient + the bias, input and
 *                     weight gradients of the conv that read it: they read
 *                     dy through the mask, which is never stored
 *   conv_grad_place   maxpool2d_grad_at + the bias, input and weight
 *                     gradients of the conv that read it: they rebuild
 *                     dy's planes from the pooled gradient and places
 *   bn_forward        batch statistics + normalisation (+ an elementwise
 *                     chain): one loop over channels
 *   bn_grad           batch norm's input, gamma and beta gradients (+ an
 *                     activation's gradient they read): one loop over
 *                     channels, both sums in one pass
 *   ewise_chain       elementwise ops, each feeding the next -> one loop
 *   grad_tail         the weight and bias gradients that end the backward
 *                     pass, which read only finished values and write
 *                     only gradients: one parallel region in which the
 *                     last thread computes the small ones while the others
 *                     start the largest product, whose groups of bands the
 *                     threads then claim (tried first at a gradient)
 * With fusion off (--no-fuse) every op is a kernel of its own and every
 * intermediate is stored: the baseline the fused code is measured by. */
#include "nnc.h"

#include <string.h>

typedef struct Fuser {
    Graph *g;
    Kernels *ks;
    bool *runs;       /* ops of the program being fused */
    int *assigned;    /* op -> kernel index in this program, or -1 */
    int **users;      /* op -> ops of this program that read it */
    int *nusers;
    int result[2];    /* values the program must leave in memory */
} Fuser;

static bool computes(const IrOp *o)
{
    OpClass c = op_class[o->op];
    return (c != OC_SOURCE && c != OC_VIEW) || o->op == OP_FILL;
}

static bool is_pointwise_loss_grad(OpKind op)
{
    return op == OP_MSE_GRAD || op == OP_BCE_GRAD || op == OP_BCE_LOGITS_GRAD;
}

/* Elementwise in the sense fused loops need: out[i] depends on in[i]
 * (bias: on bias[channel]) only. */
static bool is_chainable(const IrOp *o)
{
    return (op_class[o->op] == OC_EWISE && o->op != OP_FILL) ||
           is_pointwise_loss_grad(o->op);
}

static void find_users(Fuser *f)
{
    Graph *g = f->g;
    f->nusers = ARENA_ARRAY(g->arena, int, g->nops);
    f->users = ARENA_ARRAY(g->arena, int *, g->nops);
    for (int i = 0; i < g->nops; i++)
        for (int j = 0; f->runs[i] && j < g->ops[i].nin; j++)
            f->nusers[g->ops[i].in[j]]++;
    for (int i = 0; i < g->nops; i++) {
        f->users[i] = ARENA_ARRAY(g->arena, int, f->nusers[i] + 1);
        f->nusers[i] = 0;
    }
    for (int i = 0; i < g->nops; i++)
        for (int j = 0; f->runs[i] && j < g->ops[i].nin; j++) {
            int v = g->ops[i].in[j];
            f->users[v][f->nusers[v]++] = i;
        }
}

static bool in_group(const int *ops, int n, int v)
{
    for (int i = 0; i < n; i++)
        if (ops[i] == v)
            return true;
    return false;
}

/* Values the program is handed rather than computes: parameters,
 * inputs, labels. */
static bool is_given(const IrOp *o)
{
    return op_class[o->op] == OC_SOURCE && o->op != OP_FILL;
}

/* Member `cand` may join a kernel starting at op `first` if all its
 * inputs exist by then or come from the kernel itself. */
static bool inputs_ready(const Fuser *f, const int *ops, int n, int cand)
{
    const Graph *g = f->g;
    const IrOp *o = &g->ops[cand];
    for (int i = 0; i < o->nin; i++) {
        int root = o->in[i];
        while (g->ops[root].storage == SG_VIEW)
            root = g->ops[root].in[0];
        if (o->in[i] >= ops[0] && !is_given(&g->ops[root]) &&
            !in_group(ops, n, o->in[i]))
            return false;
    }
    return true;
}

/* The one user of `v` that can extend an elementwise chain, or -1. The
 * chain continues through the value as the user's first operand, with the
 * same shape, so element i of one is element i of the other. */
static int chain_successor(const Fuser *f, const int *ops, int n, int v,
                           bool allow_bias)
{
    const Graph *g = f->g;
    int found = -1;
    for (int u = 0; u < f->nusers[v]; u++) {
        int c = f->users[v][u];
        const IrOp *o = &g->ops[c];
        if (f->assigned[c] >= 0 || !is_chainable(o) || o->in[0] != v ||
            o->phase != g->ops[v].phase ||
            is_pointwise_loss_grad(o->op) ||
            !shape_eq(&o->shape, &g->ops[v].shape) ||
            (o->op == OP_BIAS_ADD && !allow_bias) ||
            !inputs_ready(f, ops, n, c))
            continue;
        if (found >= 0)
            return -1; /* two ways to go: keep it simple and stop */
        found = c;
    }
    return found;
}

static int grow_chain(const Fuser *f, int *ops, int n, bool allow_bias)
{
    for (;;) {
        int next = chain_successor(f, ops, n, ops[n - 1], allow_bias);
        if (next < 0)
            return n;
        ops[n++] = next;
        allow_bias = false; /* one bias, right after the product */
    }
}

/* ---------------------------------------------------------------- */
/* the rules                                                         */

static bool same_update(const IrOp *a, const IrOp *b)
{
    return a->op == b->op && a->nin == b->nin &&
           memcmp(&a->attr.opt, &b->attr.opt, sizeof a->attr.opt) == 0;
}

static int rule_update_sweep(const Fuser *f, int first, int *ops)
{
    const Graph *g = f->g;
    const IrOp *o = &g->ops[first];
    int n = 0;
    ops[n++] = first;
    long next_offset = g->params[o->param].offset + g->params[o->param].size;
    for (int i = first + 1; i < g->nops; i++) {
        const IrOp *c = &g->ops[i];
        if (!f->runs[i] || op_class[c->op] != OC_UPDATE)
            continue;
        if (!same_update(o, c) || g->params[c->param].offset != next_offset)
            break;
        ops[n++] = i;
        next_offset += g->params[c->param].size;
    }
    return n;
}

static int rule_softmax_xent(const Fuser *f, int first, int *ops)
{
    for (int u = 0; u < f->nusers[first]; u++) {
        int c = f->users[first][u];
        const IrOp *o = &f->g->ops[c];
        if (o->op == OP_XENT_PROBS && o->in[0] == first &&
            f->assigned[c] < 0 && inputs_ready(f, &first, 1, c)) {
            ops[0] = first;
            ops[1] = c;
            return 2;
        }
    }
    return 1;
}

/* XENT_PROBS_GRAD(p, t, dl) followed by SOFTMAX_GRAD(that, p): the
 * softmax Jacobian cancels the 1/p of the loss gradient. */
static int rule_softmax_xent_grad(const Fuser *f, int first, int *ops)
{
    const IrOp *x = &f->g->ops[first];
    if (f->nusers[first] != 1)
        return 1;
    int c = f->users[first][0];
    const IrOp *o = &f->g->ops[c];
    if (o->op != OP_SOFTMAX_GRAD || o->in[0] != first || o->in[1] != x->in[0] ||
        f->g->ops[x->in[0]].op != OP_SOFTMAX || f->assigned[c] >= 0)
        return 1;
    ops[0] = first;
    ops[1] = c;
    return 2;
}

enum { MAX_POOL_PLANE = 16384 }; /* the plane is copied to the stack */

/* MAXPOOL2D_GRAD(dy, y) followed by RELU_GRAD(that, y) where y is the
 * relu's output that the pool read. */
static int rule_maxpool_relu_grad(const Fuser *f, int first, int *ops)
{
    const Graph *g = f->g;
    const IrOp *pg = &g->ops[first];
    int y = pg->in[1];
    long plane = (long)pg->shape.dim[2] * pg->shape.dim[3];
    if (f->nusers[first] != 1 || g->ops[y].op != OP_RELU ||
        plane > MAX_POOL_PLANE)
        return 1;
    int c = f->users[first][0];
    const IrOp *rg = &g->ops[c];
    if (rg->op != OP_RELU_GRAD || rg->in[0] != first || rg->in[1] != y ||
        f->assigned[c] >= 0)
        return 1;
    ops[0] = first;
    ops[1] = c;
    return 2;
}

/* ------- convolution ------- */

static bool is_activation_grad(OpKind op)
{
    return op == OP_RELU_GRAD || op == OP_LEAKY_RELU_GRAD ||
           op == OP_SIGMOID_GRAD || op == OP_TANH_GRAD;
}

static bool is_pool(OpKind op)
{
    return op == OP_MAXPOOL2D || op == OP_AVGPOOL2D;
}

/* The pooling that may join a chain ending in `last`, or -1. Legal for any
 * pooling that reads the chain's end: a pooling window never leaves its
 * (sample, channel) plane, and the convolution finishes one such plane
 * at a time. The backward pass needs the pooled input (maxpool's argmax
 * is recomputed from it, relu's mask too): it is then still stored, read
 * outside the kernel, and only the re-reading pass is saved; where no
 * backward runs (predict, eval) it is not stored at all. */
static int pool_successor(const Fuser *f, const int *ops, int n)
{
    int last = ops[n - 1];
    for (int u = 0; u < f->nusers[last]; u++) {
        int c = f->users[last][u];
        const IrOp *o = &f->g->ops[c];
        if (is_pool(o->op) && o->in[0] == last && f->assigned[c] < 0 &&
            o->phase == f->g->ops[last].phase && inputs_ready(f, ops, n, c))
            return c;
    }
    return -1;
}

/* The MAXPOOL2D_PLACE of max pooling `pool` (same window, same input:
 * the chain's end), or -1. It is a backward op, computed in the forward
 * kernel beside the pooling it shadows (autodiff.c): the kernel runs
 * before any reader of it, and the chain's end never has to be stored
 * for it. */
static int place_successor(const Fuser *f, const int *ops, int n, int pool)
{
    const Graph *g = f->g;
    int last = ops[n - 1];
    if (g->ops[pool].op != OP_MAXPOOL2D)
        return -1;
    for (int u = 0; u < f->nusers[last]; u++) {
        int c = f->users[last][u];
        const IrOp *o = &g->ops[c];
        if (o->op == OP_MAXPOOL2D_PLACE && o->in[0] == last &&
            f->assigned[c] < 0 && inputs_ready(f, ops, n, c) &&
            !memcmp(&o->attr.win, &g->ops[pool].attr.win, sizeof o->attr.win))
            return c;
    }
    return -1;
}

/* CONV2D, a bias and an elementwise chain, maybe a pooling. Legal when
 * the chain grows as for matmul_epilogue (each member the one chainable
 * reader of the previous, same shape) and an output plane fits on the
 * stack, where the kernel sums it before the epilogue. */
static int rule_conv_epilogue(const Fuser *f, int first, int *ops)
{
    if (!conv_plane_on_stack(f->g, &f->g->ops[first]))
        return 1;
    int n = grow_chain(f, ops, 1, true);
    if (n == 1)
        return 1;
    int pool = pool_successor(f, ops, n);
    if (pool >= 0) {
        int place = place_successor(f, ops, n, pool);
        ops[n++] = pool;
        if (place >= 0)
            ops[n++] = place;
    }
    return n;
}

/* Whether op o reads dy = v as a conv gradient reading a folded mask can:
 * a bias gradient, or the input or weight gradient of a convolution. */
static bool reads_dy_as_conv_grad(const IrOp *o, int v)
{
    return o->in[0] == v &&
           (o->op == OP_BIAS_GRAD || o->op == OP_CONV2D_GRAD_INPUT ||
            o->op == OP_CONV2D_GRAD_WEIGHT);
}

static bool reads_dy_as_bn_grad(const IrOp *o, int v)
{
    return o->in[0] == v &&
           (o->op == OP_BIAS_GRAD || o->op == OP_BATCHNORM_GRAD_INPUT ||
            o->op == OP_BATCHNORM_GRAD_GAMMA);
}

static bool is_conv_grad(OpKind op)
{
    return op == OP_CONV2D_GRAD_INPUT || op == OP_CONV2D_GRAD_WEIGHT;
}

static bool is_bn_grad(OpKind op)
{
    return op == OP_BATCHNORM_GRAD_INPUT || op == OP_BATCHNORM_GRAD_GAMMA;
}

/* Appends every reader of v to ops if all of them pass `reads` and are
 * free to join, and at least one is of kind `key`; else returns n. */
static int take_all_readers(const Fuser *f, int *ops, int n, int v,
                            bool (*reads)(const IrOp *, int),
                            bool (*key)(OpKind))
{
    bool keyed = false;
    int m = n;
    for (int u = 0; u < f->nusers[v]; u++) {
        int c = f->users[v][u];
        const IrOp *o = &f->g->ops[c];
        if (!reads(o, v) || f->assigned[c] >= 0 || !inputs_ready(f, ops, m, c))
            return n;
        keyed = keyed || key(o->op);
        ops[m++] = c;
    }
    return keyed ? m : n;
}

/* An activation's gradient (dy, y) and every reader of it, which must all
 * be bias/input/weight gradients of a convolution: they read dy and y and
 * apply the mask themselves, so the masked gradient is never stored. Not
 * legal if anything else reads it, or if a dy plane does not fit on the
 * stack (the strided and padded loop forms copy it there first). */
static int rule_conv_grad_mask(const Fuser *f, int first, int *ops)
{
    const Shape *s = &f->g->ops[first].shape;
    if (s->rank != 4 || (long)s->dim[2] * s->dim[3] > MAX_POOL_PLANE / 2)
        return 1;
    return take_all_readers(f, ops, 1, first, reads_dy_as_conv_grad,
                            is_conv_grad);
}

/* MAXPOOL2D_GRAD_AT (pooled dy, place) and every reader of its result,
 * which must all be bias, input or weight gradients of a convolution,
 * as for conv_grad_mask: each rebuilds a plane of dy from the pooled
 * gradient and the places where it copies dy anyway (the bias gradient
 * on the stack, to sum it in the order it sums a stored one), so the
 * spread gradient, 4x the pooled one, is never stored. */
static int rule_conv_grad_place(const Fuser *f, int first, int *ops)
{
    const Shape *s = &f->g->ops[first].shape;
    if ((long)s->dim[2] * s->dim[3] > MAX_POOL_PLANE / 2)
        return 1;
    return take_all_readers(f, ops, 1, first, reads_dy_as_conv_grad,
                            is_conv_grad);
}

/* ------- batch normalisation ------- */

/* BN_STATS and the BATCHNORM that normalises the same x with them, then
 * an elementwise chain. Always legal: the statistics of channel c are
 * complete before channel c is normalised, within one iteration; they
 * are stored when the backward pass or the running update reads them. */
static int rule_bn_forward(const Fuser *f, int first, int *ops)
{
    const IrOp *st = &f->g->ops[first];
    for (int u = 0; u < f->nusers[first]; u++) {
        int c = f->users[first][u];
        const IrOp *o = &f->g->ops[c];
        if (o->op == OP_BATCHNORM && o->in[1] == first &&
            o->in[0] == st->in[0] && f->assigned[c] < 0 &&
            inputs_ready(f, &first, 1, c)) {
            ops[0] = first;
            ops[1] = c;
            return grow_chain(f, ops, 2, false);
        }
    }
    return 1;
}

/* The gradients of one batch norm that read dy (input, gamma, and beta's
 * bias gradient), starting either from the activation's gradient that
 * makes dy (folded in as for conv_grad_mask: legal when those gradients
 * are its only readers) or from the first of them (dy in memory). They
 * must all read the same x and statistics. */
static int rule_bn_grad(const Fuser *f, int first, int *ops)
{
    const Graph *g = f->g;
    int n = 1;
    if (is_activation_grad(g->ops[first].op))
        n = take_all_readers(f, ops, 1, first, reads_dy_as_bn_grad, is_bn_grad);
    else
        for (int i = first + 1, dy = g->ops[first].in[0]; i < g->nops; i++)
            if (f->runs[i] && f->assigned[i] < 0 &&
                reads_dy_as_bn_grad(&g->ops[i], dy) &&
                inputs_ready(f, ops, n, i))
                ops[n++] = i;
    const IrOp *bn = NULL;
    for (int m = 0; m < n; m++) {
        const IrOp *o = &g->ops[ops[m]];
        if (!is_bn_grad(o->op))
            continue;
        if (bn && (o->in[1] != bn->in[1] || o->in[2] != bn->in[2]))
            return 1;
        bn = o;
    }
    return n;
}

/* ------- the gradients that end the backward pass ------- */

/* Side members may cost up to 1/TAIL_SIDE_SHARE of the largest product,
 * so the thread that computes them first still takes part in it, and at
 * least 1/TAIL_SIDE_MIN: with less beside it the region gains nothing
 * (rmsprop's 784-128-10, whose side is 1.4% of dW1: 0.996 and 0.997 of
 * the three kernels' step on 2 threads, 1.003 on 1). */
enum { TAIL_SIDE_SHARE = 4, TAIL_SIDE_MIN = 32 };

static bool is_tail_gradient(const Graph *g, const IrOp *o)
{
    return o->storage == SG_GRAD &&
           ((o->op == OP_MATMUL && gemm_op_scratch_elems(g, o) == 0) ||
            o->op == OP_BIAS_GRAD);
}

/* Multiply-adds of a product, additions of a bias gradient. */
static long tail_work(const Graph *g, const IrOp *o)
{
    if (o->op == OP_BIAS_GRAD)
        return shape_elems(&g->ops[o->in[0]].shape);
    Gemm m;
    gemm_from_op(g, o, &m);
    return m.M * m.N * m.K;
}

/* The member whose product the threads share: the largest that hands
 * out its bands, or -1. */
static int tail_lead(const Graph *g, const int *ops, int n)
{
    int lead = -1;
    for (int m = 0; m < n; m++) {
        const IrOp *o = &g->ops[ops[m]];
        if (o->op == OP_MATMUL && gemm_op_claims(g, o) &&
            (lead < 0 || tail_work(g, o) > tail_work(g, &g->ops[ops[lead]])))
            lead = m;
    }
    return lead;
}

int kernel_tail_lead(const Graph *g, const Kernel *k)
{
    return tail_lead(g, k->ops, k->nops);
}

/* Whether value v exists where a kernel starting at ops[0] runs: made
 * before that op, or by a kernel formed already (which runs before it),
 * or given (parameters, inputs, labels). */
static bool exists_before(const Fuser *f, const int *ops, int v)
{
    const Graph *g = f->g;
    while (g->ops[v].storage == SG_VIEW)
        v = g->ops[v].in[0];
    return v < ops[0] || f->assigned[v] >= 0 || is_given(&g->ops[v]);
}

/* Every computing op of the backward pass from `first` on that no
 * earlier kernel took, when all of them are products or bias gradients
 * that store a parameter's gradient (so none reads another: gradients
 * are read by the update alone) and what they read exists by `first`;
 * the largest product must hand out its bands (gemm_op_claims), and
 * the rest must weigh between 1/32 and 1/4 of it. On mnist_mlp the
 * second layer's weight gradient (16 us on 1 thread or 2) and the first
 * layer's bias gradient then run beside dW1: the step 0.97-0.99 of the
 * three kernels' on 2 threads, 1.00 on 1, the same bits. */
static int rule_grad_tail(const Fuser *f, int first, int *ops)
{
    const Graph *g = f->g;
    int n = 0;
    long total = 0;
    for (int i = first; i < g->nops; i++) {
        const IrOp *o = &g->ops[i];
        if (!f->runs[i] || !computes(o) || o->phase != PH_BACKWARD ||
            f->assigned[i] >= 0)
            continue;
        if (!is_tail_gradient(g, o))
            return 1;
        for (int j = 0; j < o->nin; j++)
            if (!exists_before(f, ops, o->in[j]))
                return 1;
        ops[n++] = i;
        total += tail_work(g, o);
    }
    int lead = tail_lead(g, ops, n);
    if (n < 2 || lead < 0)
        return 1;
    long largest = tail_work(g, &g->ops[ops[lead]]), side = total - largest;
    return side * TAIL_SIDE_SHARE > largest || side * TAIL_SIDE_MIN < largest
               ? 1 : n;
}

static KernelKind form_kernel(const Fuser *f, int first, int *ops, int *n,
                              const char **rule)
{
    const IrOp *o = &f->g->ops[first];
    *n = 1;
    ops[0] = first;
    *rule = NULL;
    if (op_class[o->op] == OC_UPDATE) {
        *n = rule_update_sweep(f, first, ops);
        *rule = "update_sweep";
        return KK_UPDATE;
    }
    if (o->phase == PH_BACKWARD && is_tail_gradient(f->g, o) &&
        (*n = rule_grad_tail(f, first, ops)) > 1) {
        *rule = "grad_tail";
        return KK_GRAD_TAIL;
    }
    if (o->op == OP_SOFTMAX && (*n = rule_softmax_xent(f, first, ops)) > 1) {
        *rule = "softmax_xent";
        return KK_SOFTMAX_XENT;
    }
    if (o->op == OP_XENT_PROBS_GRAD &&
        (*n = rule_softmax_xent_grad(f, first, ops)) > 1) {
        *rule = "softmax_xent_grad";
        return KK_SOFTMAX_XENT_GRAD;
    }
    if (o->op == OP_MAXPOOL2D_GRAD &&
        (*n = rule_maxpool_relu_grad(f, first, ops)) > 1) {
        *rule = "maxpool_relu_grad";
        return KK_POOL_RELU_GRAD;
    }
    if (o->op == OP_CONV2D && (*n = rule_conv_epilogue(f, first, ops)) > 1) {
        int last = f->g->ops[ops[*n - 1]].op;
        *rule = is_pool(last) || last == OP_MAXPOOL2D_PLACE ? "conv_pool"
                                                            : "conv_epilogue";
        return KK_CONV_EPILOGUE;
    }
    if (is_activation_grad(o->op) &&
        (*n = rule_conv_grad_mask(f, first, ops)) > 1) {
        *rule = "conv_grad_mask";
        return KK_CONV_GRAD;
    }
    if (o->op == OP_MAXPOOL2D_GRAD_AT &&
        (*n = rule_conv_grad_place(f, first, ops)) > 1) {
        *rule = "conv_grad_place";
        return KK_CONV_GRAD;
    }
    if (o->op == OP_BN_STATS && (*n = rule_bn_forward(f, first, ops)) > 1) {
        *rule = "bn_forward";
        return KK_BN;
    }
    if ((is_activation_grad(o->op) || is_bn_grad(o->op)) &&
        (*n = rule_bn_grad(f, first, ops)) > 1) {
        *rule = "bn_grad";
        return KK_BN_GRAD;
    }
    if (o->op == OP_MATMUL && o->shape.rank == 2 &&
        (*n = grow_chain(f, ops, 1, true)) > 1) {
        *rule = "matmul_epilogue";
        return KK_EPILOGUE;
    }
    if (is_chainable(o) && (*n = grow_chain(f, ops, 1, false)) > 1) {
        *rule = "ewise_chain";
        return KK_EWISE;
    }
    *n = 1;
    return KK_SINGLE;
}

/* ---------------------------------------------------------------- */
/* kernels: storing, naming, sharing between programs                */

static bool must_store(const Fuser *f, const int *ops, int n, int v)
{
    const IrOp *o = &f->g->ops[v];
    if (o->storage != SG_ARENA || v == f->result[0] || v == f->result[1])
        return true;
    for (int u = 0; u < f->nusers[v]; u++)
        if (!in_group(ops, n, f->users[v][u]))
            return true;
    return false;
}

static const char *kernel_name(Graph *g, int index, const Kernel *k)
{
    const IrOp *first = &g->ops[k->ops[0]];
    char buf[256];
    size_t at = (size_t)snprintf(buf, sizeof buf, "k%02d_%s", index,
                                 first->label ? first->label : "t");
    if (k->kind == KK_UPDATE)
        snprintf(buf, sizeof buf, "k%02d_%s_%s", index, k->nops > 1 ? "params"
                 : first->label, op_names[first->op]);
    else
        for (int i = 0; i < k->nops && at < sizeof buf; i++)
            at += (size_t)snprintf(buf + at, sizeof buf - at, "_%s",
                                   op_names[g->ops[k->ops[i]].op]);
    /* labels come from user names and parameter names: keep C identifiers */
    for (char *p = buf; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_'))
            *p = '_';
    return arena_strdup(g->arena, buf);
}

static bool same_kernel(const Kernel *a, const Kernel *b)
{
    return a->nops == b->nops && a->train_mode == b->train_mode &&
           memcmp(a->ops, b->ops, sizeof(int) * (size_t)a->nops) == 0 &&
           memcmp(a->stored, b->stored, sizeof(bool) * (size_t)a->nops) == 0;
}

/* Adds the kernel unless an identical one exists; returns its index. */
static int intern_kernel(Kernels *ks, const Kernel *k)
{
    for (int i = 0; i < ks->n; i++)
        if (same_kernel(&ks->k[i], k))
            return i;
    ks->k[ks->n] = *k;
    return ks->n++;
}

static void fuse_program(Fuser *f, ProgKind kind, bool enabled)
{
    Graph *g = f->g;
    Kernels *ks = f->ks;
    f->result[0] = g->output;
    f->result[1] = kind == PROG_PREDICT ? -1 : g->loss;
    find_users(f);
    for (int i = 0; i < g->nops; i++)
        f->assigned[i] = -1;
    int *sched = ARENA_ARRAY(g->arena, int, g->nops);
    int nsched = 0;
    int *ops = ARENA_ARRAY(g->arena, int, g->nops);
    for (int i = 0; i < g->nops; i++) {
        if (!f->runs[i] || !computes(&g->ops[i]) || f->assigned[i] >= 0)
            continue;
        Kernel k = {.kind = KK_SINGLE};
        int n = 1;
        ops[0] = i;
        if (enabled)
            k.kind = form_kernel(f, i, ops, &n, &k.rule);
        k.nops = n;
        for (int m = 0; m < n; m++)
            k.train_mode = k.train_mode ||
                           (kind == PROG_TRAIN && op_depends_on_mode(g->ops[ops[m]].op));
        k.ops = ARENA_ARRAY(g->arena, int, n);
        k.stored = ARENA_ARRAY(g->arena, bool, n);
        memcpy(k.ops, ops, sizeof(int) * (size_t)n);
        for (int m = 0; m < n; m++)
            k.stored[m] = !enabled || must_store(f, ops, n, ops[m]);
        int index = intern_kernel(ks, &k);
        for (int m = 0; m < n; m++)
            f->assigned[ops[m]] = index;
        sched[nsched++] = index;
    }
    ks->sched[kind] = sched;
    ks->nsched[kind] = nsched;
}

Kernels *fuse(Graph *g, bool enabled)
{
    Kernels *ks = ARENA_NEW(g->arena, Kernels);
    ks->k = ARENA_ARRAY(g->arena, Kernel, g->nops * PROG__COUNT);
    Fuser f = {.g = g, .ks = ks};
    ks->fused = enabled;
    f.runs = ARENA_ARRAY(g->arena, bool, g->nops);
    f.assigned = ARENA_ARRAY(g->arena, int, g->nops);
    /* training first, so kernel numbers follow the training step */
    static const ProgKind order[] = {PROG_TRAIN, PROG_EVAL, PROG_PREDICT};
    for (int p = 0; p < PROG__COUNT; p++) {
        memset(f.runs, 0, sizeof(bool) * (size_t)g->nops);
        program_ops(g, order[p], f.runs);
        fuse_program(&f, order[p], enabled);
        if (order[p] == PROG_TRAIN)
            for (int i = 0; i < g->nops; i++)
                g->ops[i].kernel = f.assigned[i];
    }
    for (int i = 0; i < ks->n; i++) {
        ks->k[i].name = kernel_name(g, i, &ks->k[i]);
        ks->k[i].index = i;
        ks->k[i].scratch = gemm_scratch_elems(g, &ks->k[i]);
    }
    return ks;
}

static const char *const prog_names[PROG__COUNT] = {"predict", "eval", "train"};

void fuse_print(FILE *out, const Graph *g, const Kernels *ks)
{
    for (int p = PROG__COUNT - 1; p >= 0; p--) {
        fprintf(out, "# program %s: %d kernels\n", prog_names[p], ks->nsched[p]);
        for (int t = 0; t < ks->nsched[p]; t++) {
            const Kernel *k = &ks->k[ks->sched[p][t]];
            fprintf(out, "  %-40s %-18s", k->name, k->rule ? k->rule : "-");
            for (int m = 0; m < k->nops; m++)
                fprintf(out, " %%%d%s", k->ops[m], k->stored[m] ? "" : "*");
            fputc('\n', out);
        }
    }
    (void)g;
    fputs("# (* = kept inside the kernel, never stored)\n", out);
}

bool kernel_in_place_ok(const Graph *g, const Kernel *k)
{
    const IrOp *o = &g->ops[k->ops[0]];
    if (k->kind == KK_EWISE || k->kind == KK_POOL_RELU_GRAD)
        return true; /* the pool gradient copies each plane before writing */
    return k->kind == KK_SINGLE && op_class[o->op] == OC_EWISE &&
           o->op != OP_FILL;
}
