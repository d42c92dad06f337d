/* autodiff.c — reverse-mode differentiation inside the IR.
 *
 * requires: a forward graph with g->loss a scalar, ops in topological
 * order.
 * guarantees: appends PH_BACKWARD ops computing d(loss)/d(param) for
 * every parameter the loss depends on; each such gradient is a value of
 * its own with storage SG_GRAD at the parameter's offset (a COPY is
 * inserted where the gradient would otherwise share memory), recorded
 * in Param.grad. Parameters the loss does not reach, and buffers (batch
 * norm's running statistics), keep grad = -1. Then come the training
 * mode's running-statistics updates (BN_RUNNING_UPDATE), last.
 *
 * Every op's backward rule is one case of grad_rule(); a rule receives
 * the gradient of the op's output and contributes gradients to those
 * inputs that need one. Contributions to one value are summed with ADD
 * in the order they arrive, so results do not depend on scheduling. */
#include "nnc.h"

#include <stdlib.h>
#include <string.h>

typedef struct Tape {
    Graph *g;
    int *grad;        /* per forward value: its gradient's id, or -1 */
    bool *needs_grad; /* per forward value: depends on a parameter */
    int nforward;
} Tape;

/* A short tag for the kernels that compute the gradient of value v:
 * "dfc1_weight", "dh". */
static const char *grad_label(Tape *t, int v)
{
    const IrOp *o = &t->g->ops[v];
    const char *base = o->param >= 0 ? t->g->params[o->param].name
                     : o->name       ? o->name
                     : o->label      ? o->label
                                     : op_names[o->op];
    char *s = arena_printf(t->g->arena, "d%s", base);
    for (char *p = s; *p; p++)
        if (*p == '.')
            *p = '_';
    return s;
}

static int emit_op(Tape *t, OpKind op, Shape s, const int *in, int nin,
                   int of_value)
{
    Graph *g = t->g;
    const IrOp *src = &g->ops[of_value];
    int id = ir_add(g, op, s, in, nin, src->loc, grad_label(t, of_value));
    g->ops[id].phase = PH_BACKWARD;
    g->ops[id].batched = g->ops[of_value].batched;
    return id;
}

static void accumulate(Tape *t, int v, int contribution)
{
    if (!t->needs_grad[v])
        return;
    if (t->grad[v] < 0) {
        t->grad[v] = contribution;
        return;
    }
    int in[2] = {t->grad[v], contribution};
    t->grad[v] = emit_op(t, OP_ADD, t->g->ops[v].shape, in, 2, v);
}

static int unary(Tape *t, OpKind op, int a, int of_value)
{
    return emit_op(t, op, t->g->ops[of_value].shape, &a, 1, of_value);
}

static int binary(Tape *t, OpKind op, int a, int b, int of_value)
{
    int in[2] = {a, b};
    return emit_op(t, op, t->g->ops[of_value].shape, in, 2, of_value);
}

static int matmul(Tape *t, int a, bool ta, int b, bool tb, int of_value)
{
    int in[2] = {a, b};
    int id = emit_op(t, OP_MATMUL, t->g->ops[of_value].shape, in, 2, of_value);
    t->g->ops[id].attr.mm.ta = ta;
    t->g->ops[id].attr.mm.tb = tb;
    return id;
}

/* C = op(A) op(B):  dA = dC op(B)^T  (or its transpose when ta),
 *                   dB = op(A)^T dC  (or its transpose when tb). */
static void grad_matmul(Tape *t, const IrOp *o, int dy)
{
    int a = o->in[0], b = o->in[1];
    bool ta = o->attr.mm.ta, tb = o->attr.mm.tb;
    if (t->needs_grad[a])
        accumulate(t, a, ta ? matmul(t, b, tb, dy, true, a)
                            : matmul(t, dy, false, b, !tb, a));
    if (t->needs_grad[b])
        accumulate(t, b, tb ? matmul(t, dy, true, a, ta, b)
                            : matmul(t, a, !ta, dy, false, b));
}

/* A gradient op that keeps the forward op's window (conv, pooling). */
static int window_grad(Tape *t, OpKind op, const IrOp *o, int a, int b,
                       int of_value)
{
    int in[2] = {a, b};
    int id = emit_op(t, op, t->g->ops[of_value].shape, in, b < 0 ? 1 : 2,
                     of_value);
    t->g->ops[id].attr.win = o->attr.win;
    return id;
}

/* How many forward ops read value v. */
static int forward_readers(const Tape *t, int v)
{
    int n = 0;
    for (int i = v + 1; i < t->nforward; i++)
        for (int j = 0; j < t->g->ops[i].nin; j++)
            n += t->g->ops[i].in[j] == v;
    return n;
}

/* A max pooling o (value v) whose windows tile the plane: the place of
 * each window's first maximum is found once, by MAXPOOL2D_PLACE, which
 * rule conv_pool computes beside the pooling in the forward kernel, and
 * the gradient goes to that place (MAXPOOL2D_GRAD_AT), with no search.
 * When the pooled values are a relu's output that nothing else reads,
 * relu's mask is applied to the pooled gradient instead: a window's
 * maximum is the relu output at its place, so it is > 0 exactly where
 * relu passes the gradient. The gradient then goes to the relu's input
 * directly (the relu gets none of its own), no backward op reads the
 * relu output, and the forward kernel need not store it: 5.5 MB a step
 * for mnist_cnn's first layer. The values are MAXPOOL2D_GRAD's and
 * RELU_GRAD's: the same place (the same scan, NaN winning) and the same
 * mask. False when the windows overlap or pad. */
static bool grad_maxpool_at_place(Tape *t, const IrOp *o, int v, int dy)
{
    if (!maxpool_windows_disjoint(o) || o->attr.win.ph || o->attr.win.pw)
        return false;
    int x = o->in[0], to = x;
    const IrOp *r = &t->g->ops[x];
    if (r->op == OP_RELU && forward_readers(t, x) == 1 && x != t->g->output) {
        to = r->in[0];
        if (!t->needs_grad[to])
            return true;
        dy = binary(t, OP_RELU_GRAD, dy, v, v);
    }
    int place = window_grad(t, OP_MAXPOOL2D_PLACE, o, x, -1, v);
    /* named after the pooled value (x_maxpool2d_place), not as a gradient */
    t->g->ops[place].label = grad_label(t, v) + 1;
    accumulate(t, to, window_grad(t, OP_MAXPOOL2D_GRAD_AT, o, dy, place, to));
    return true;
}

/* y = conv(x, w):  dx = CONV2D_GRAD_INPUT(dy, w),  dw = CONV2D_GRAD_WEIGHT(dy, x) */
static void grad_conv2d(Tape *t, const IrOp *o, int dy)
{
    int x = o->in[0], w = o->in[1];
    if (t->needs_grad[x])
        accumulate(t, x, window_grad(t, OP_CONV2D_GRAD_INPUT, o, dy, w, x));
    if (t->needs_grad[w])
        accumulate(t, w, window_grad(t, OP_CONV2D_GRAD_WEIGHT, o, dy, x, w));
}

/* y = gamma * (x - mean) / sqrt(var + eps) + beta with the batch's mean
 * and variance: dx also flows through the statistics, which is why the
 * statistics op itself has no rule of its own. */
static void grad_batchnorm(Tape *t, const IrOp *o, int dy)
{
    int x = o->in[0], stats = o->in[1], gamma = o->in[2], beta = o->in[3];
    if (t->needs_grad[x]) {
        int in[4] = {dy, x, stats, gamma};
        int dx = emit_op(t, OP_BATCHNORM_GRAD_INPUT, t->g->ops[x].shape, in, 4,
                         x);
        t->g->ops[dx].attr.bn = o->attr.bn;
        accumulate(t, x, dx);
    }
    if (t->needs_grad[gamma]) {
        int in[3] = {dy, x, stats};
        int dg = emit_op(t, OP_BATCHNORM_GRAD_GAMMA, t->g->ops[gamma].shape,
                         in, 3, gamma);
        t->g->ops[dg].attr.bn = o->attr.bn;
        accumulate(t, gamma, dg);
    }
    if (t->needs_grad[beta])
        accumulate(t, beta, emit_op(t, OP_BIAS_GRAD, t->g->ops[beta].shape,
                                    &dy, 1, beta));
}

static int loss_grad(Tape *t, OpKind op, const IrOp *o, int dl)
{
    int in[3] = {o->in[0], o->in[1], dl};
    int id = emit_op(t, op, t->g->ops[o->in[0]].shape, in, 3, o->in[0]);
    t->g->ops[id].attr.loss = o->attr.loss;
    return id;
}

static void grad_rule(Tape *t, int v, int dy)
{
    /* a copy: the rules append ops, which may move the ops array */
    const IrOp op = t->g->ops[v], *o = &op;
    int x = o->nin > 0 ? o->in[0] : -1;
    int y = o->nin > 1 ? o->in[1] : -1;
    switch (o->op) {
    case OP_INPUT:
    case OP_LABEL:
    case OP_PARAM:
    case OP_STATE:
    case OP_FILL:
        break;
    case OP_RESHAPE:
    case OP_COPY:
        accumulate(t, x, o->op == OP_COPY ? dy : unary(t, OP_RESHAPE, dy, x));
        break;
    case OP_ADD:
        accumulate(t, x, dy);
        accumulate(t, y, dy);
        break;
    case OP_SUB:
        accumulate(t, x, dy);
        if (t->needs_grad[y])
            accumulate(t, y, unary(t, OP_NEG, dy, y));
        break;
    case OP_MUL:
        if (t->needs_grad[x])
            accumulate(t, x, binary(t, OP_MUL, dy, y, x));
        if (t->needs_grad[y])
            accumulate(t, y, binary(t, OP_MUL, dy, x, y));
        break;
    case OP_DIV:
        /* d(x/y)/dx = 1/y;  d(x/y)/dy = -(x/y)/y */
        if (t->needs_grad[x])
            accumulate(t, x, binary(t, OP_DIV, dy, y, x));
        if (t->needs_grad[y]) {
            int q = binary(t, OP_DIV, binary(t, OP_MUL, dy, v, y), y, y);
            accumulate(t, y, unary(t, OP_NEG, q, y));
        }
        break;
    case OP_NEG:
        accumulate(t, x, unary(t, OP_NEG, dy, x));
        break;
    case OP_SCALE: {
        int s = unary(t, OP_SCALE, dy, x);
        t->g->ops[s].attr.scale = o->attr.scale;
        accumulate(t, x, s);
        break;
    }
    case OP_BIAS_ADD:
        accumulate(t, x, dy);
        if (t->needs_grad[y])
            accumulate(t, y, emit_op(t, OP_BIAS_GRAD, t->g->ops[y].shape, &dy,
                                     1, y));
        break;
    case OP_RELU:
        /* from the output: y > 0 exactly when x > 0, and reading y lets
         * fusion keep x inside the forward kernel */
        accumulate(t, x, binary(t, OP_RELU_GRAD, dy, v, x));
        break;
    case OP_LEAKY_RELU: {
        int g = binary(t, OP_LEAKY_RELU_GRAD, dy, v, x); /* alpha >= 0 */
        t->g->ops[g].attr.alpha = o->attr.alpha;
        accumulate(t, x, g);
        break;
    }
    case OP_SIGMOID:
        accumulate(t, x, binary(t, OP_SIGMOID_GRAD, dy, v, x));
        break;
    case OP_TANH:
        accumulate(t, x, binary(t, OP_TANH_GRAD, dy, v, x));
        break;
    case OP_EXP:
        accumulate(t, x, binary(t, OP_MUL, dy, v, x));
        break;
    case OP_LOG:
        accumulate(t, x, binary(t, OP_DIV, dy, x, x));
        break;
    case OP_MATMUL:
        grad_matmul(t, o, dy);
        break;
    case OP_SOFTMAX:
        accumulate(t, x, binary(t, OP_SOFTMAX_GRAD, dy, v, x));
        break;
    case OP_MSE:
        accumulate(t, x, loss_grad(t, OP_MSE_GRAD, o, dy));
        break;
    case OP_BCE:
        accumulate(t, x, loss_grad(t, OP_BCE_GRAD, o, dy));
        break;
    case OP_BCE_LOGITS:
        accumulate(t, x, loss_grad(t, OP_BCE_LOGITS_GRAD, o, dy));
        break;
    case OP_SOFTMAX_XENT:
        accumulate(t, x, loss_grad(t, OP_SOFTMAX_XENT_GRAD, o, dy));
        break;
    case OP_XENT_PROBS:
        accumulate(t, x, loss_grad(t, OP_XENT_PROBS_GRAD, o, dy));
        break;
    case OP_CONV2D:
        grad_conv2d(t, o, dy);
        break;
    case OP_MAXPOOL2D:
        if (!grad_maxpool_at_place(t, o, v, dy))
            /* recomputes each window's first maximum from x */
            accumulate(t, x, window_grad(t, OP_MAXPOOL2D_GRAD, o, dy, x, x));
        break;
    case OP_AVGPOOL2D:
        accumulate(t, x, window_grad(t, OP_AVGPOOL2D_GRAD, o, dy, -1, x));
        break;
    case OP_BATCHNORM:
        grad_batchnorm(t, o, dy);
        break;
    case OP_BN_STATS:     /* folded into BATCHNORM_GRAD_INPUT */
    case OP_DROPOUT_MASK: /* random, not a function of anything */
        break;
    default:
        /* Backward-only ops never appear in a forward graph. */
        fprintf(stderr, "nnc: internal error: no gradient rule for %s\n",
                op_names[o->op]);
        abort();
    }
}

static void mark_needs_grad(Tape *t)
{
    Graph *g = t->g;
    for (int v = 0; v < t->nforward; v++) {
        const IrOp *o = &g->ops[v];
        bool need = o->op == OP_PARAM && !g->params[o->param].buffer;
        for (int i = 0; i < o->nin; i++)
            need = need || t->needs_grad[o->in[i]];
        t->needs_grad[v] = need;
    }
}

static int count_uses(const Graph *g, int v)
{
    int n = 0;
    for (int i = v + 1; i < g->nops; i++)
        for (int j = 0; j < g->ops[i].nin; j++)
            n += g->ops[i].in[j] == v;
    return n;
}

/* Puts each parameter's final gradient into the gradient block. A value
 * that other ops also read, or that is a view, gets a COPY, because the
 * gradient block must hold exactly d(loss)/d(param) and nothing else. */
static void bind_param_grads(Tape *t)
{
    Graph *g = t->g;
    for (int i = 0; i < g->nparams; i++) {
        Param *p = &g->params[i];
        int gv = t->grad[p->value];
        if (gv < 0)
            continue;
        IrOp *o = &g->ops[gv];
        if (o->storage != SG_ARENA || o->phase != PH_BACKWARD ||
            count_uses(g, gv) > 0) {
            gv = unary(t, OP_COPY, gv, p->value);
            o = &g->ops[gv];
        }
        o->storage = SG_GRAD;
        o->param = i;
        o->offset = p->offset;
        p->grad = gv;
    }
}

/* The backward graph of g->loss: gradients of every trainable
 * parameter the loss depends on. */
static void differentiate(Graph *g)
{
    Tape t = {.g = g, .nforward = g->nops};
    t.grad = ARENA_ARRAY(g->arena, int, g->nops);
    t.needs_grad = ARENA_ARRAY(g->arena, bool, g->nops);
    for (int i = 0; i < g->nops; i++)
        t.grad[i] = -1;
    mark_needs_grad(&t);
    if (!t.needs_grad[g->loss])
        return;
    int one = ir_add(g, OP_FILL, shape_scalar(), NULL, 0, g->ops[g->loss].loc,
                     "dloss");
    g->ops[one].attr.fill = 1.0;
    g->ops[one].phase = PH_BACKWARD;
    t.grad[g->loss] = one;
    for (int v = g->loss; v >= 0; v--)
        if (t.grad[v] >= 0 && t.needs_grad[v])
            grad_rule(&t, v, t.grad[v]);
    bind_param_grads(&t);
}

/* Training mode also moves batch norm's running statistics towards the
 * batch's, as PyTorch does in a training-mode forward pass. The updates
 * come last in the backward phase: only the training program runs them,
 * and the batch statistics they read stay alive until then. */
static void append_running_updates(Graph *g, int nforward)
{
    for (int v = 0; v < nforward; v++) {
        if (g->ops[v].op != OP_BN_STATS)
            continue;
        const IrOp *s = &g->ops[v];
        int in[3] = {s->in[1], s->in[2], v};
        int u = ir_add(g, OP_BN_RUNNING_UPDATE, g->ops[s->in[1]].shape, in, 3,
                       s->loc, s->label);
        g->ops[u].phase = PH_BACKWARD;
        g->ops[u].storage = SG_NONE;
        g->ops[u].attr.bn = g->ops[v].attr.bn;
    }
}

void autodiff(Graph *g)
{
    int nforward = g->nops;
    differentiate(g);
    append_running_updates(g, nforward);
}
