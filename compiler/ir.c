/* ir.c — the tensor graph: construction, printing and verification.
 *
 * guarantees: ops are appended in topological order (an op's inputs
 * always have smaller ids), every value has a static shape. */
#include "nnc.h"

#include <string.h>

const char *const op_names[OP__COUNT] = {
#define OP(id, name, nin, kind) [OP_##id] = name,
#include "ops.def"
#undef OP
};

const int op_arity[OP__COUNT] = {
#define OP(id, name, nin, kind) [OP_##id] = nin,
#include "ops.def"
#undef OP
};

const OpClass op_class[OP__COUNT] = {
#define OP(id, name, nin, kind) [OP_##id] = OC_##kind,
#include "ops.def"
#undef OP
};

long shape_elems(const Shape *s)
{
    long n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->dim[i];
    return n;
}

bool shape_eq(const Shape *a, const Shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i])
            return false;
    return true;
}

Shape shape_make(int rank, const int *dims)
{
    Shape s = {.rank = rank};
    for (int i = 0; i < rank; i++)
        s.dim[i] = dims[i];
    return s;
}

Shape shape_scalar(void)
{
    return (Shape){.rank = 0};
}

const char *shape_str(const Shape *s, char *buf, size_t len)
{
    size_t at = 0;
    at += (size_t)snprintf(buf + at, len - at, "[");
    for (int i = 0; i < s->rank && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%d", i ? ", " : "",
                               s->dim[i]);
    if (at < len)
        snprintf(buf + at, len - at, "]");
    return buf;
}

Graph *ir_new(Arena *a, int batch)
{
    Graph *g = ARENA_NEW(a, Graph);
    g->arena = a;
    g->batch = batch;
    g->input = g->label = g->loss = g->output = -1;
    return g;
}

IrOp *ir_op(Graph *g, int id)
{
    return &g->ops[id];
}

/* Appends an op. Arrays grow by doubling inside the arena; the old copy
 * is simply abandoned, which costs little next to the clarity of never
 * freeing anything mid-pass. */
int ir_add(Graph *g, OpKind op, Shape shape, const int *in, int nin, Loc loc,
           const char *label)
{
    if (g->nops == g->cap) {
        int cap = g->cap ? g->cap * 2 : 64;
        IrOp *ops = ARENA_ARRAY(g->arena, IrOp, cap);
        if (g->nops)
            memcpy(ops, g->ops, sizeof(IrOp) * (size_t)g->nops);
        g->ops = ops;
        g->cap = cap;
    }
    int id = g->nops++;
    IrOp *o = &g->ops[id];
    memset(o, 0, sizeof *o);
    o->op = op;
    o->shape = shape;
    o->dtype = DT_REAL;
    o->nin = nin;
    for (int i = 0; i < nin; i++)
        o->in[i] = in[i];
    o->loc = loc;
    o->label = label;
    o->param = -1;
    o->kernel = -1;
    o->storage = op_class[op] == OC_VIEW ? SG_VIEW
               : op_class[op] == OC_UPDATE ? SG_NONE
                                           : SG_ARENA;
    return id;
}

static const char *storage_name(Storage s)
{
    switch (s) {
    case SG_ARENA: return "arena";
    case SG_PARAM: return "param";
    case SG_GRAD: return "grad";
    case SG_STATE: return "state";
    case SG_INPUT: return "input";
    case SG_LABEL: return "label";
    case SG_VIEW: return "view";
    case SG_NONE: return "none";
    }
    return "?";
}

static const char *phase_name(Phase p)
{
    return p == PH_FORWARD ? "fwd" : p == PH_BACKWARD ? "bwd" : "upd";
}

static void print_attrs(FILE *out, const IrOp *o)
{
    switch (o->op) {
    case OP_MATMUL:
        fprintf(out, " ta=%d tb=%d", o->attr.mm.ta, o->attr.mm.tb);
        break;
    case OP_LEAKY_RELU:
    case OP_LEAKY_RELU_GRAD:
        fprintf(out, " alpha=%.9g", o->attr.alpha);
        break;
    case OP_SCALE:
        fprintf(out, " scale=%.9g", o->attr.scale);
        break;
    case OP_FILL:
        fprintf(out, " value=%.9g", o->attr.fill);
        break;
    case OP_SGD_UPDATE:
        fprintf(out, " lr=%.9g momentum=%.9g", o->attr.opt.lr,
                o->attr.opt.momentum);
        break;
    case OP_ADAM_UPDATE:
        fprintf(out, " lr=%.9g beta1=%.9g beta2=%.9g eps=%.9g", o->attr.opt.lr,
                o->attr.opt.beta1, o->attr.opt.beta2, o->attr.opt.eps);
        break;
    case OP_BN_STATS:
    case OP_BATCHNORM:
    case OP_BATCHNORM_GRAD_INPUT:
    case OP_BATCHNORM_GRAD_GAMMA:
    case OP_BN_RUNNING_UPDATE:
        fprintf(out, " momentum=%.9g eps=%.9g", o->attr.bn.momentum,
                o->attr.bn.eps);
        break;
    case OP_DROPOUT_MASK:
        fprintf(out, " p=%.9g", o->attr.drop_p);
        break;
    default:
        if (op_class[o->op] == OC_WINDOW)
            fprintf(out, " kernel=%dx%d stride=%dx%d pad=%dx%d", o->attr.win.kh,
                    o->attr.win.kw, o->attr.win.sh, o->attr.win.sw,
                    o->attr.win.ph, o->attr.win.pw);
        if (op_class[o->op] == OC_LOSS && o->attr.loss.soft)
            fprintf(out, " soft");
        if (op_class[o->op] == OC_LOSS && o->attr.loss.smoothing != 0)
            fprintf(out, " label_smoothing=%.9g", o->attr.loss.smoothing);
        break;
    }
}

void ir_print(FILE *out, const Graph *g)
{
    char buf[96];
    int kernel = -2;
    for (int i = 0; i < g->nops; i++) {
        const IrOp *o = &g->ops[i];
        if (o->kernel != kernel && o->kernel >= 0)
            fprintf(out, "  # kernel %d\n", o->kernel);
        kernel = o->kernel;
        fprintf(out, "  %%%-3d = %-17s", i, op_names[o->op]);
        for (int j = 0; j < o->nin; j++)
            fprintf(out, "%s%%%d", j ? ", " : "", o->in[j]);
        print_attrs(out, o);
        fprintf(out, "  : %s%s %s %s", shape_str(&o->shape, buf, sizeof buf),
                o->dtype == DT_I32 ? " i32" : "", phase_name(o->phase),
                storage_name(o->storage));
        if (o->param >= 0)
            fprintf(out, " (%s)", g->params[o->param].name);
        if (o->name)
            fprintf(out, " \"%s\"", o->name);
        if (o->loc.line)
            fprintf(out, "  @%d", o->loc.line);
        fputc('\n', out);
    }
}

bool ir_verify(const Graph *g, FILE *err)
{
    for (int i = 0; i < g->nops; i++) {
        const IrOp *o = &g->ops[i];
        if (op_arity[o->op] >= 0 && o->nin != op_arity[o->op]) {
            fprintf(err, "ir_verify: %%%d %s has %d inputs, wants %d\n", i,
                    op_names[o->op], o->nin, op_arity[o->op]);
            return false;
        }
        for (int j = 0; j < o->nin; j++)
            if (o->in[j] < 0 || o->in[j] >= i) {
                fprintf(err, "ir_verify: %%%d %s input %d (%%%d) breaks "
                        "topological order\n", i, op_names[o->op], j, o->in[j]);
                return false;
            }
        if (o->storage == SG_VIEW &&
            shape_elems(&o->shape) != shape_elems(&g->ops[o->in[0]].shape)) {
            fprintf(err, "ir_verify: %%%d view changes the element count\n", i);
            return false;
        }
        if (op_class[o->op] == OC_EWISE && o->op != OP_BIAS_ADD) {
            for (int j = 0; j < o->nin; j++)
                if (!shape_eq(&o->shape, &g->ops[o->in[j]].shape)) {
                    fprintf(err, "ir_verify: %%%d %s input %d shape differs\n",
                            i, op_names[o->op], j);
                    return false;
                }
        }
    }
    return true;
}

long long op_flops(const Graph *g, int v)
{
    const IrOp *o = &g->ops[v];
    long long n = shape_elems(&o->shape);
    switch (op_class[o->op]) {
    case OC_SOURCE:
    case OC_VIEW:
        return 0;
    case OC_MATMUL: {
        const IrOp *a = &g->ops[o->in[0]];
        long long rows = a->shape.dim[0];
        long long k = o->attr.mm.ta ? rows : shape_elems(&a->shape) / rows;
        return 2 * n * k;
    }
    case OC_REDUCE:
        return shape_elems(&g->ops[o->in[0]].shape);
    case OC_ROWWISE:
        return 4 * n;
    case OC_LOSS:
        return 4 * shape_elems(&g->ops[o->in[0]].shape);
    case OC_UPDATE:
        return (o->op == OP_ADAM_UPDATE ? 12 : 4) * n;
    case OC_EWISE:
        return n;
    case OC_WINDOW: {
        /* a multiply-add per window element, for every output of the
         * forward op; the gradients do the same work as their forward */
        long long window = (long long)o->attr.win.kh * o->attr.win.kw;
        if (o->op == OP_CONV2D)
            return 2 * n * window * g->ops[o->in[0]].shape.dim[1];
        if (o->op == OP_CONV2D_GRAD_INPUT)
            return 2 * shape_elems(&g->ops[o->in[0]].shape) * window *
                   o->shape.dim[1];
        if (o->op == OP_CONV2D_GRAD_WEIGHT)
            return 2 * shape_elems(&g->ops[o->in[0]].shape) * window *
                   o->shape.dim[1];
        if (o->op == OP_MAXPOOL2D || o->op == OP_AVGPOOL2D)
            return n * window;
        /* the pooling's own comparisons, counted there: storing where the
         * maximum was must not make the same network count more work */
        if (o->op == OP_MAXPOOL2D_PLACE)
            return 0;
        return shape_elems(&g->ops[o->in[0]].shape) * window;
    }
    case OC_CHANNEL:
        return 4 * shape_elems(&g->ops[o->in[0]].shape);
    case OC_MODAL:
        return o->op == OP_BN_STATS ? 3 * shape_elems(&g->ops[o->in[0]].shape)
                                    : n;
    }
    return 0;
}

long long ir_flops(const Graph *g, const bool *runs)
{
    long long total = 0;
    for (int i = 0; i < g->nops; i++)
        if (!runs || runs[i])
            total += op_flops(g, i);
    return total;
}

bool op_depends_on_mode(OpKind op)
{
    return op_class[op] == OC_MODAL;
}
