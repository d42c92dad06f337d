/* shape.c — names, constants and shapes: from one model's AST to its
 * forward graph.
 *
 * requires: a parsed Program, the batch size from the train block.
 * guarantees: on success every value has a static shape, parameters are
 * named and ordered as declared, g->loss is a scalar and g->output set;
 * on failure every problem found was reported and NULL is returned.
 *
 * Each layer is one function (layer_dense, layer_softmax, ...) holding
 * its argument list, its shape rule and the IR ops it expands into. The
 * shapes in messages are per sample, as the user wrote them: the batch
 * dimension is the train block's business. */
#include "nnc.h"

#include <math.h>
#include <string.h>

/* A name bound in the model: an input, label, param or let. */
typedef struct Binding {
    const char *name;
    Loc loc;
    StmtKind kind;
    int value;
} Binding;

typedef struct Checker {
    Arena *a;
    Diag *d;
    Graph *g;
    const Model *model;
    Binding *binds;
    int nbinds, bind_cap;
    const char *let_name;   /* name of the let being checked, for layer names */
    const Expr *let_root;   /* its right-hand side */
    int auto_count[8];      /* per layer family, for fc1, fc2, ... */
    int nerrors_at_start;
} Checker;

typedef struct LayerDef LayerDef;
typedef int (*LayerFn)(Checker *c, const Expr *call, Expr **args);

enum { MAX_LAYER_ARGS = 12 };

/* What a layer accepts: positional names first, in order, then keyword
 * only ones. A name with a leading '?' is optional. */
struct LayerDef {
    const char *name;
    LayerFn fn;
    const char *params[MAX_LAYER_ARGS];
};

/* ---------------------------------------------------------------- */
/* small helpers                                                     */

static bool failed(const Checker *c)
{
    return c->d->nerrors > c->nerrors_at_start;
}

static const char *sample_shape(const Checker *c, int v, char *buf, size_t len)
{
    const IrOp *o = &c->g->ops[v];
    Shape s = o->shape;
    if (o->batched) {
        s.rank--;
        memmove(s.dim, s.dim + 1, sizeof(int) * (size_t)s.rank);
    }
    return shape_str(&s, buf, len);
}

static int sample_rank(const Checker *c, int v)
{
    const IrOp *o = &c->g->ops[v];
    return o->shape.rank - (o->batched ? 1 : 0);
}

static int add_op(Checker *c, OpKind op, Shape s, const int *in, int nin,
                  Loc loc, const char *label)
{
    int id = ir_add(c->g, op, s, in, nin, loc, label);
    bool batched = false;
    for (int i = 0; i < nin; i++)
        batched = batched || c->g->ops[in[i]].batched;
    c->g->ops[id].batched = batched;
    return id;
}

static Binding *find_binding(Checker *c, const char *name)
{
    for (int i = c->nbinds - 1; i >= 0; i--)
        if (strcmp(c->binds[i].name, name) == 0)
            return &c->binds[i];
    return NULL;
}

static void bind(Checker *c, const char *name, Loc loc, StmtKind kind, int v)
{
    if (c->nbinds == c->bind_cap) {
        int cap = c->bind_cap ? c->bind_cap * 2 : 32;
        Binding *b = ARENA_ARRAY(c->a, Binding, cap);
        if (c->nbinds)
            memcpy(b, c->binds, sizeof(Binding) * (size_t)c->nbinds);
        c->binds = b;
        c->bind_cap = cap;
    }
    c->binds[c->nbinds++] = (Binding){name, loc, kind, v};
}

static const char *stmt_word(StmtKind k)
{
    switch (k) {
    case ST_INPUT: return "input";
    case ST_LABEL: return "label";
    case ST_PARAM: return "param";
    case ST_LET: return "value";
    case ST_OUTPUT: return "output";
    case ST_LOSS: return "loss";
    }
    return "name";
}

/* ---------------------------------------------------------------- */
/* constants                                                         */

/* Folds a constant expression. Reports and returns false if `e` is not
 * a number or a constant arithmetic expression. */
static bool const_eval(Checker *c, const Expr *e, double *out)
{
    double l, r;
    switch (e->kind) {
    case EX_NUM:
        *out = e->u.num.value;
        return true;
    case EX_NEG:
        if (!const_eval(c, e->u.operand, &l))
            return false;
        *out = -l;
        return true;
    case EX_BINARY:
        if (!const_eval(c, e->u.bin.lhs, &l) || !const_eval(c, e->u.bin.rhs, &r))
            return false;
        switch (e->u.bin.op) {
        case '+': *out = l + r; break;
        case '-': *out = l - r; break;
        case '*': *out = l * r; break;
        default:
            if (r == 0) {
                diag_error(c->d, e->loc, "division by zero in a constant");
                return false;
            }
            *out = l / r;
        }
        if (!isfinite(*out)) {
            diag_error(c->d, e->loc, "constant overflows");
            return false;
        }
        return true;
    case EX_IDENT:
        diag_error(c->d, e->loc, "expected a number, got the name '%s'",
                   e->u.ident);
        return false;
    case EX_STRING:
        diag_error(c->d, e->loc, "expected a number, got a string");
        return false;
    case EX_LIST:
        diag_error(c->d, e->loc, "expected a number, got a list");
        return false;
    case EX_CALL:
        diag_error(c->d, e->loc, "expected a number, got a call to '%s'",
                   e->u.call.callee);
        return false;
    }
    return false;
}

static bool const_int(Checker *c, const Expr *e, const char *what, long min,
                      long max, long *out)
{
    double v;
    if (!const_eval(c, e, &v))
        return false;
    if (v != floor(v)) {
        diag_error(c->d, e->loc, "%s must be an integer, got %.9g", what, v);
        return false;
    }
    if (v < (double)min || v > (double)max) {
        if (min == 1 && v < 1)
            diag_error(c->d, e->loc, "%s must be a positive integer, got %.9g",
                       what, v);
        else
            diag_error(c->d, e->loc, "%s must be between %ld and %ld, got %.9g",
                       what, min, max, v);
        return false;
    }
    *out = (long)v;
    return true;
}

/* ---------------------------------------------------------------- */
/* argument binding                                                  */

static int spec_count(const LayerDef *def)
{
    int n = 0;
    while (n < MAX_LAYER_ARGS && def->params[n])
        n++;
    return n;
}

static const char *spec_name(const char *p)
{
    return p[0] == '?' ? p + 1 : p;
}

/* Matches the call's arguments to the layer's parameter list: args[i]
 * receives the expression for params[i], or NULL if it was omitted. */
static bool bind_args(Checker *c, const LayerDef *def, const Expr *call,
                      Expr **args)
{
    int n = spec_count(def), pos = 0;
    bool ok = true;
    for (int i = 0; i < n; i++)
        args[i] = NULL;
    for (const Arg *a = call->u.call.args; a; a = a->next) {
        int slot = -1;
        if (!a->name) {
            slot = pos++;
            if (slot >= n) {
                diag_error(c->d, a->loc, "too many arguments to '%s' (it takes "
                           "at most %d)", def->name, n);
                return false;
            }
        } else {
            for (int i = 0; i < n; i++)
                if (strcmp(spec_name(def->params[i]), a->name) == 0)
                    slot = i;
            if (slot < 0) {
                diag_error(c->d, a->loc, "'%s' has no argument named '%s'",
                           def->name, a->name);
                ok = false;
                continue;
            }
        }
        if (args[slot]) {
            diag_error(c->d, a->loc, "argument '%s' of '%s' given twice",
                       spec_name(def->params[slot]), def->name);
            ok = false;
            continue;
        }
        args[slot] = a->value;
    }
    for (int i = 0; ok && i < n; i++)
        if (!args[i] && def->params[i][0] != '?') {
            diag_error(c->d, call->u.call.callee_loc,
                       "'%s' needs its argument '%s'", def->name,
                       def->params[i]);
            ok = false;
        }
    return ok;
}

static int eval_tensor(Checker *c, const Expr *e);

/* The layer's name, used for its parameters: name = "..." if given,
 * else the let's name when the layer is the whole right-hand side, else
 * an automatic one in PyTorch's style (fc1, fc2, ...). */
static const char *layer_name(Checker *c, const Expr *call, const Expr *name_arg,
                              const char *family, int family_id)
{
    if (name_arg) {
        if (name_arg->kind != EX_STRING) {
            diag_error(c->d, name_arg->loc, "name must be a string");
            return NULL;
        }
        return name_arg->u.str;
    }
    if (c->let_name && c->let_root == call)
        return c->let_name;
    return arena_printf(c->a, "%s%d", family, ++c->auto_count[family_id]);
}

static bool param_name_taken(Checker *c, const char *name, Loc loc)
{
    for (int i = 0; i < c->g->nparams; i++)
        if (strcmp(c->g->params[i].name, name) == 0) {
            diag_error(c->d, loc, "duplicate parameter name '%s'", name);
            const IrOp *o = &c->g->ops[c->g->params[i].value];
            diag_note(c->d, o->loc, "'%s' was defined here", name);
            return true;
        }
    return false;
}

static int add_param(Checker *c, const char *name, Shape s, Init init, Loc loc,
                     const char *label)
{
    Graph *g = c->g;
    if (g->nparams == g->param_cap) {
        int cap = g->param_cap ? g->param_cap * 2 : 16;
        Param *p = ARENA_ARRAY(c->a, Param, cap);
        if (g->nparams)
            memcpy(p, g->params, sizeof(Param) * (size_t)g->nparams);
        g->params = p;
        g->param_cap = cap;
    }
    int v = add_op(c, OP_PARAM, s, NULL, 0, loc, label);
    Param *p = &g->params[g->nparams];
    memset(p, 0, sizeof *p);
    p->name = name;
    p->value = v;
    p->shape = s;
    p->init = init;
    p->size = shape_elems(&s);
    p->grad = -1;
    p->state[0] = p->state[1] = -1;
    g->ops[v].storage = SG_PARAM;
    g->ops[v].param = g->nparams;
    g->ops[v].name = name;
    g->nparams++;
    return v;
}

/* init = zeros | ones | xavier_uniform | ... | uniform(a) | normal(std)
 * | constant(v). Returns false after reporting. */
static bool eval_init(Checker *c, const Expr *e, Init *out)
{
    static const struct { const char *name; InitKind kind; } plain[] = {
        {"zeros", INIT_ZEROS},
        {"ones", INIT_ONES},
        {"xavier_uniform", INIT_XAVIER_UNIFORM},
        {"glorot_uniform", INIT_XAVIER_UNIFORM},
        {"xavier_normal", INIT_XAVIER_NORMAL},
        {"glorot_normal", INIT_XAVIER_NORMAL},
        {"kaiming_uniform", INIT_KAIMING_UNIFORM},
        {"he_uniform", INIT_KAIMING_UNIFORM},
        {"kaiming_normal", INIT_KAIMING_NORMAL},
        {"he_normal", INIT_KAIMING_NORMAL},
        {"torch_default", INIT_TORCH_DEFAULT},
    };
    const char *name = e->kind == EX_IDENT ? e->u.ident
                     : e->kind == EX_CALL  ? e->u.call.callee
                                           : NULL;
    if (!name) {
        diag_error(c->d, e->loc, "expected an initializer such as "
                   "xavier_uniform or normal(std = 0.01)");
        return false;
    }
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (strcmp(name, plain[i].name) == 0) {
            if (e->kind == EX_CALL) {
                diag_error(c->d, e->loc, "initializer '%s' takes no arguments",
                           name);
                return false;
            }
            out->kind = plain[i].kind;
            return true;
        }
    static const LayerDef uniform = {"uniform", NULL, {"?a"}};
    static const LayerDef normal = {"normal", NULL, {"?std", "?mean"}};
    static const LayerDef constant = {"constant", NULL, {"value"}};
    const LayerDef *def = strcmp(name, "uniform") == 0    ? &uniform
                        : strcmp(name, "normal") == 0     ? &normal
                        : strcmp(name, "constant") == 0   ? &constant
                                                          : NULL;
    if (!def) {
        diag_error(c->d, e->loc, "unknown initializer '%s'", name);
        return false;
    }
    Expr *args[MAX_LAYER_ARGS] = {0};
    if (e->kind == EX_CALL && !bind_args(c, def, e, args))
        return false;
    if (e->kind == EX_IDENT && def == &constant) {
        diag_error(c->d, e->loc, "constant needs a value: constant(0.1)");
        return false;
    }
    double x = def == &uniform ? 0.05 : def == &normal ? 0.01 : 0;
    if (args[0] && !const_eval(c, args[0], &x))
        return false;
    if (def == &uniform) {
        *out = (Init){.kind = INIT_UNIFORM, .a = x};
    } else if (def == &normal) {
        double mean = 0;
        if (args[1] && !const_eval(c, args[1], &mean))
            return false;
        *out = (Init){.kind = INIT_NORMAL, .std = x, .a = mean};
    } else {
        *out = (Init){.kind = INIT_CONSTANT, .a = x};
    }
    return true;
}

static bool eval_bool(Checker *c, const Expr *e, bool *out)
{
    if (e->kind == EX_IDENT && strcmp(e->u.ident, "true") == 0)
        return *out = true, true;
    if (e->kind == EX_IDENT && strcmp(e->u.ident, "false") == 0)
        return *out = false, true;
    diag_error(c->d, e->loc, "expected true or false");
    return false;
}

/* ---------------------------------------------------------------- */
/* layers                                                            */

enum { FAM_FC, FAM_CONV, FAM_BN, FAM_DROP };

static int layer_dense(Checker *c, const Expr *call, Expr **args)
{
    /* args: x, units, init, bias_init, bias, name */
    int x = eval_tensor(c, args[0]);
    long units = 0;
    bool ok = const_int(c, args[1], "dense units", 1, 1 << 24, &units);
    Init winit = {.kind = INIT_TORCH_DEFAULT};
    Init binit = {.kind = INIT_TORCH_DEFAULT};
    bool use_bias = true;
    if (args[2] && !eval_init(c, args[2], &winit))
        ok = false;
    if (args[3] && !eval_init(c, args[3], &binit))
        ok = false;
    if (args[4] && !eval_bool(c, args[4], &use_bias))
        ok = false;
    if (x < 0 || !ok)
        return -1;
    char buf[96];
    if (sample_rank(c, x) != 1 || !c->g->ops[x].batched) {
        diag_error(c->d, args[0]->loc,
                   "dense expects a rank-1 input, got %s%s",
                   sample_shape(c, x, buf, sizeof buf),
                   sample_rank(c, x) > 1 ? "; insert flatten" : "");
        return -1;
    }
    const char *name = layer_name(c, call, args[5], "fc", FAM_FC);
    if (!name)
        return -1;
    Loc loc = call->u.call.callee_loc;
    const char *wname = arena_printf(c->a, "%s.weight", name);
    const char *bname = arena_printf(c->a, "%s.bias", name);
    if (param_name_taken(c, wname, loc) ||
        (use_bias && param_name_taken(c, bname, loc)))
        return -1;
    int in = c->g->ops[x].shape.dim[1];
    if ((long)in * units > (1L << 30)) {
        diag_error(c->d, loc, "dense weight [%ld, %d] is too large", units, in);
        return -1;
    }
    int wd[2] = {(int)units, in};
    winit.fan_in = binit.fan_in = in;
    winit.fan_out = binit.fan_out = (int)units;
    int w = add_param(c, wname, shape_make(2, wd), winit, loc, name);
    int mm_in[2] = {x, w};
    int od[2] = {c->g->batch, (int)units};
    int y = add_op(c, OP_MATMUL, shape_make(2, od), mm_in, 2, loc, name);
    c->g->ops[y].attr.mm.tb = true;
    if (!use_bias)
        return y;
    int bd[1] = {(int)units};
    int b = add_param(c, bname, shape_make(1, bd), binit, loc, name);
    int ba_in[2] = {y, b};
    return add_op(c, OP_BIAS_ADD, c->g->ops[y].shape, ba_in, 2, loc, name);
}

static int unary_layer(Checker *c, const Expr *call, Expr **args, OpKind op)
{
    int x = eval_tensor(c, args[0]);
    if (x < 0)
        return -1;
    if (c->g->ops[x].dtype != DT_REAL) {
        diag_error(c->d, args[0]->loc, "%s needs a real-valued tensor, not "
                   "class labels", call->u.call.callee);
        return -1;
    }
    return add_op(c, op, c->g->ops[x].shape, &x, 1, call->u.call.callee_loc,
                  c->let_name);
}

static int layer_relu(Checker *c, const Expr *call, Expr **args)
{
    return unary_layer(c, call, args, OP_RELU);
}

static int layer_sigmoid(Checker *c, const Expr *call, Expr **args)
{
    return unary_layer(c, call, args, OP_SIGMOID);
}

static int layer_tanh(Checker *c, const Expr *call, Expr **args)
{
    return unary_layer(c, call, args, OP_TANH);
}

static int layer_exp(Checker *c, const Expr *call, Expr **args)
{
    return unary_layer(c, call, args, OP_EXP);
}

static int layer_log(Checker *c, const Expr *call, Expr **args)
{
    return unary_layer(c, call, args, OP_LOG);
}

static int layer_leaky_relu(Checker *c, const Expr *call, Expr **args)
{
    double alpha = 0.01;
    if (args[1] && !const_eval(c, args[1], &alpha))
        return -1;
    if (alpha < 0 || alpha >= 1) {
        /* the gradient is taken from the output, which needs y > 0 <=> x > 0 */
        diag_error(c->d, args[1]->loc, "leaky_relu alpha must be in [0, 1), "
                   "got %.9g", alpha);
        return -1;
    }
    int y = unary_layer(c, call, args, OP_LEAKY_RELU);
    if (y >= 0)
        c->g->ops[y].attr.alpha = alpha;
    return y;
}

static int layer_softmax(Checker *c, const Expr *call, Expr **args)
{
    int x = eval_tensor(c, args[0]);
    if (x < 0)
        return -1;
    if (sample_rank(c, x) < 1) {
        char buf[96];
        diag_error(c->d, args[0]->loc, "softmax needs at least one dimension "
                   "per sample, got %s", sample_shape(c, x, buf, sizeof buf));
        return -1;
    }
    return add_op(c, OP_SOFTMAX, c->g->ops[x].shape, &x, 1,
                  call->u.call.callee_loc, c->let_name);
}

static int layer_flatten(Checker *c, const Expr *call, Expr **args)
{
    int x = eval_tensor(c, args[0]);
    if (x < 0)
        return -1;
    if (!c->g->ops[x].batched) {
        diag_error(c->d, args[0]->loc, "flatten works on per-sample values, "
                   "not on parameters");
        return -1;
    }
    const Shape *s = &c->g->ops[x].shape;
    int d[2] = {s->dim[0], (int)(shape_elems(s) / s->dim[0])};
    return add_op(c, OP_RESHAPE, shape_make(2, d), &x, 1,
                  call->u.call.callee_loc, c->let_name);
}

static int binary_op(Checker *c, Loc loc, const char *what, OpKind op, int x,
                     int y, const Expr *ex, const Expr *ey)
{
    char b1[96], b2[96];
    (void)ex;
    if (!shape_eq(&c->g->ops[x].shape, &c->g->ops[y].shape) ||
        c->g->ops[x].batched != c->g->ops[y].batched) {
        diag_error(c->d, loc, "%s needs operands of the same shape, got %s "
                   "and %s", what, sample_shape(c, x, b1, sizeof b1),
                   sample_shape(c, y, b2, sizeof b2));
        diag_note(c->d, ey->loc, "the second operand is here");
        return -1;
    }
    int in[2] = {x, y};
    return add_op(c, op, c->g->ops[x].shape, in, 2, loc, c->let_name);
}

static int layer_binary(Checker *c, const Expr *call, Expr **args, OpKind op)
{
    int x = eval_tensor(c, args[0]);
    int y = eval_tensor(c, args[1]);
    if (x < 0 || y < 0)
        return -1;
    return binary_op(c, call->u.call.callee_loc, call->u.call.callee, op, x, y,
                     args[0], args[1]);
}

static int layer_add(Checker *c, const Expr *call, Expr **args)
{
    return layer_binary(c, call, args, OP_ADD);
}

static int layer_mul(Checker *c, const Expr *call, Expr **args)
{
    return layer_binary(c, call, args, OP_MUL);
}

/* ---------------------------------------------------------------- */
/* convolutional layers: per sample [C, H, W], NCHW as PyTorch        */

/* A per-sample [C, H, W] input; reports (naming the shape) otherwise. */
static bool image_input(Checker *c, int x, const Expr *arg, const char *layer,
                        int chw[3])
{
    char buf[96];
    if (!c->g->ops[x].batched || sample_rank(c, x) != 3 ||
        c->g->ops[x].dtype != DT_REAL) {
        diag_error(c->d, arg->loc, "%s expects [channels, height, width] per "
                   "sample, got %s%s", layer,
                   c->g->ops[x].batched ? sample_shape(c, x, buf, sizeof buf)
                                        : "a parameter",
                   c->g->ops[x].batched && sample_rank(c, x) == 2
                       ? "; add a channel dimension, as in [1, 28, 28]" : "");
        return false;
    }
    for (int i = 0; i < 3; i++)
        chw[i] = c->g->ops[x].shape.dim[i + 1];
    return true;
}

/* `3` or `[3, 5]`: a (height, width) pair of integers in [min, max]. */
static bool eval_pair(Checker *c, const Expr *e, const char *what, long min,
                      long max, int out[2])
{
    long v[2];
    if (e->kind != EX_LIST) {
        if (!const_int(c, e, what, min, max, &v[0]))
            return false;
        out[0] = out[1] = (int)v[0];
        return true;
    }
    if (e->u.list.count != 2) {
        diag_error(c->d, e->loc, "%s is a number or a pair [height, width], "
                   "got a list of %d", what, e->u.list.count);
        return false;
    }
    if (!const_int(c, e->u.list.items, what, min, max, &v[0]) ||
        !const_int(c, e->u.list.items->next, what, min, max, &v[1]))
        return false;
    out[0] = (int)v[0];
    out[1] = (int)v[1];
    return true;
}

/* Zero padding of one spatial dimension: before and after. */
typedef struct Pad {
    int before[2], after[2];
} Pad;

/* padding = valid | same | N | [N, M]. `same` keeps ceil(size / stride)
 * outputs, the odd pixel of padding going after, as PyTorch (stride 1)
 * and TensorFlow do. */
static bool eval_padding(Checker *c, const Expr *e, const int in[2],
                         const int k[2], const int s[2], Pad *pad)
{
    *pad = (Pad){{0, 0}, {0, 0}};
    if (!e || (e->kind == EX_IDENT && strcmp(e->u.ident, "valid") == 0))
        return true;
    if (e->kind == EX_IDENT && strcmp(e->u.ident, "same") == 0) {
        for (int i = 0; i < 2; i++) {
            int out = (in[i] + s[i] - 1) / s[i];
            int total = (out - 1) * s[i] + k[i] - in[i];
            total = total > 0 ? total : 0;
            pad->before[i] = total / 2;
            pad->after[i] = total - total / 2;
        }
        return true;
    }
    if (e->kind == EX_IDENT || e->kind == EX_STRING) {
        diag_error(c->d, e->loc, "padding is valid, same, or a number of "
                   "pixels such as 1 or [1, 2]");
        return false;
    }
    int n[2];
    if (!eval_pair(c, e, "padding", 0, 1 << 12, n))
        return false;
    for (int i = 0; i < 2; i++)
        pad->before[i] = pad->after[i] = n[i];
    return true;
}

/* Output size of a window sliding over [H, W]; reports when the window
 * does not fit even once (the output would be empty). PyTorch's floor
 * rule: positions past the last whole window are dropped, silently. */
static bool window_output(Checker *c, Loc loc, const char *layer,
                          const char *what, int x, const int chw[3],
                          const int k[2], const int s[2], const Pad *pad,
                          int out[2])
{
    char buf[96], padded[64] = "";
    for (int i = 0; i < 2; i++) {
        int span = chw[i + 1] + pad->before[i] + pad->after[i];
        if (span < k[i]) {
            if (pad->before[0] || pad->before[1] || pad->after[0] ||
                pad->after[1])
                snprintf(padded, sizeof padded, " padded to %dx%d",
                         chw[1] + pad->before[0] + pad->after[0],
                         chw[2] + pad->before[1] + pad->after[1]);
            diag_error(c->d, loc, "%s %s %dx%d does not fit the input %s%s",
                       layer, what, k[0], k[1],
                       sample_shape(c, x, buf, sizeof buf), padded);
            return false;
        }
        out[i] = (span - k[i]) / s[i] + 1;
    }
    return true;
}

static void set_window(IrOp *o, const int k[2], const int s[2], const Pad *pad)
{
    o->attr.win.kh = k[0];
    o->attr.win.kw = k[1];
    o->attr.win.sh = s[0];
    o->attr.win.sw = s[1];
    o->attr.win.ph = pad->before[0];
    o->attr.win.pw = pad->before[1];
}

static bool too_large(Checker *c, Loc loc, const char *what, const int *dims,
                      int rank)
{
    long total = 1;
    for (int i = 0; i < rank; i++)
        total *= dims[i];
    if (total <= (1L << 26))
        return false;
    Shape s = shape_make(rank, dims);
    char buf[96];
    diag_error(c->d, loc, "%s %s is too large", what,
               shape_str(&s, buf, sizeof buf));
    return true;
}

static int layer_conv2d(Checker *c, const Expr *call, Expr **args)
{
    /* args: x, filters, kernel, stride, padding, bias, init, bias_init, name */
    int x = eval_tensor(c, args[0]);
    long filters = 0;
    int k[2] = {3, 3}, s[2] = {1, 1}, chw[3], out[2];
    Init winit = {.kind = INIT_TORCH_DEFAULT};
    Init binit = {.kind = INIT_TORCH_DEFAULT};
    bool use_bias = true;
    bool ok = const_int(c, args[1], "conv2d filters", 1, 1 << 16, &filters);
    if (args[2] && !eval_pair(c, args[2], "conv2d kernel", 1, 1 << 12, k))
        ok = false;
    if (args[3] && !eval_pair(c, args[3], "conv2d stride", 1, 1 << 12, s))
        ok = false;
    if (args[5] && !eval_bool(c, args[5], &use_bias))
        ok = false;
    if (args[6] && !eval_init(c, args[6], &winit))
        ok = false;
    if (args[7] && !eval_init(c, args[7], &binit))
        ok = false;
    if (x < 0 || !ok || !image_input(c, x, args[0], "conv2d", chw))
        return -1;
    Pad pad;
    Loc loc = call->u.call.callee_loc;
    if (!eval_padding(c, args[4], chw + 1, k, s, &pad) ||
        !window_output(c, loc, "conv2d", "kernel", x, chw, k, s, &pad, out))
        return -1;
    int wd[4] = {(int)filters, chw[0], k[0], k[1]};
    int yd[4] = {c->g->batch, (int)filters, out[0], out[1]};
    if (too_large(c, loc, "conv2d weight", wd, 4) ||
        too_large(c, loc, "conv2d output", yd + 1, 3))
        return -1;
    const char *name = layer_name(c, call, args[8], "conv", FAM_CONV);
    if (!name)
        return -1;
    const char *wname = arena_printf(c->a, "%s.weight", name);
    const char *bname = arena_printf(c->a, "%s.bias", name);
    if (param_name_taken(c, wname, loc) ||
        (use_bias && param_name_taken(c, bname, loc)))
        return -1;
    /* fans as PyTorch and Keras count them: the receptive field times the
     * channels in, or times the filters out */
    winit.fan_in = binit.fan_in = chw[0] * k[0] * k[1];
    winit.fan_out = binit.fan_out = (int)filters * k[0] * k[1];
    int w = add_param(c, wname, shape_make(4, wd), winit, loc, name);
    int in[2] = {x, w};
    int y = add_op(c, OP_CONV2D, shape_make(4, yd), in, 2, loc, name);
    set_window(&c->g->ops[y], k, s, &pad);
    if (!use_bias)
        return y;
    int b = add_param(c, bname, shape_make(1, wd), binit, loc, name);
    int ba[2] = {y, b};
    return add_op(c, OP_BIAS_ADD, c->g->ops[y].shape, ba, 2, loc, name);
}

/* maxpool2d / avgpool2d (x, size, stride = size), no padding. */
static int pool_layer(Checker *c, const Expr *call, Expr **args, OpKind op)
{
    const char *layer = call->u.call.callee;
    int x = eval_tensor(c, args[0]);
    int k[2], s[2], chw[3], out[2];
    bool ok = eval_pair(c, args[1], "pool size", 1, 1 << 12, k);
    s[0] = k[0];
    s[1] = k[1];
    if (args[2] && !eval_pair(c, args[2], "pool stride", 1, 1 << 12, s))
        ok = false;
    if (x < 0 || !ok || !image_input(c, x, args[0], layer, chw))
        return -1;
    Pad none = {{0, 0}, {0, 0}};
    Loc loc = call->u.call.callee_loc;
    if (!window_output(c, loc, layer, "window", x, chw, k, s, &none, out))
        return -1;
    int yd[4] = {c->g->batch, chw[0], out[0], out[1]};
    int y = add_op(c, op, shape_make(4, yd), &x, 1, loc, c->let_name);
    set_window(&c->g->ops[y], k, s, &none);
    return y;
}

static int layer_maxpool2d(Checker *c, const Expr *call, Expr **args)
{
    return pool_layer(c, call, args, OP_MAXPOOL2D);
}

static int layer_avgpool2d(Checker *c, const Expr *call, Expr **args)
{
    return pool_layer(c, call, args, OP_AVGPOOL2D);
}

/* [C, H, W] -> [C]: an average pool whose window is the whole plane,
 * seen as [N, C]. */
static int layer_global_avgpool(Checker *c, const Expr *call, Expr **args)
{
    int x = eval_tensor(c, args[0]);
    int chw[3];
    if (x < 0 || !image_input(c, x, args[0], "global_avgpool", chw))
        return -1;
    Loc loc = call->u.call.callee_loc;
    int k[2] = {chw[1], chw[2]};
    Pad none = {{0, 0}, {0, 0}};
    int pd[4] = {c->g->batch, chw[0], 1, 1};
    int p = add_op(c, OP_AVGPOOL2D, shape_make(4, pd), &x, 1, loc, c->let_name);
    set_window(&c->g->ops[p], k, k, &none);
    int yd[2] = {c->g->batch, chw[0]};
    return add_op(c, OP_RESHAPE, shape_make(2, yd), &p, 1, loc, c->let_name);
}

/* batchnorm(x, momentum = 0.1, eps = 1e-5): PyTorch's BatchNorm1d on [C]
 * or [C, L], BatchNorm2d on [C, H, W]. Statistics are per channel (dim
 * 1 of the batch) over the batch and every position. */
static int layer_batchnorm(Checker *c, const Expr *call, Expr **args)
{
    int x = eval_tensor(c, args[0]);
    double momentum = 0.1, eps = 1e-5;
    bool ok = true;
    if (args[1] && !const_eval(c, args[1], &momentum)) {
        ok = false;
    } else if (!(momentum >= 0 && momentum <= 1)) {
        diag_error(c->d, args[1]->loc, "batchnorm momentum must be in [0, 1], "
                   "got %.9g", momentum);
        ok = false;
    }
    if (args[2] && !const_eval(c, args[2], &eps)) {
        ok = false;
    } else if (!(eps > 0)) {
        diag_error(c->d, args[2]->loc, "batchnorm eps must be positive, got "
                   "%.9g", eps);
        ok = false;
    }
    if (x < 0 || !ok)
        return -1;
    char buf[96];
    const IrOp *xo = &c->g->ops[x];
    int rank = sample_rank(c, x);
    if (!xo->batched || rank < 1 || rank > 3 || xo->dtype != DT_REAL) {
        diag_error(c->d, args[0]->loc, "batchnorm expects [C], [C, L] or "
                   "[C, H, W] per sample, got %s",
                   xo->batched ? sample_shape(c, x, buf, sizeof buf)
                               : "a parameter");
        return -1;
    }
    int channels = xo->shape.dim[1];
    long count = shape_elems(&xo->shape) / channels;
    Loc loc = call->u.call.callee_loc;
    if (count < 2) {
        diag_error(c->d, loc, "batchnorm needs more than one value per channel "
                   "in a batch to estimate a variance; batch %d with input %s "
                   "has one", c->g->batch, sample_shape(c, x, buf, sizeof buf));
        return -1;
    }
    const char *name = layer_name(c, call, args[3], "bn", FAM_BN);
    if (!name)
        return -1;
    static const char *const suffix[4] = {"weight", "bias", "running_mean",
                                          "running_var"};
    static const InitKind init[4] = {INIT_ONES, INIT_ZEROS, INIT_ZEROS,
                                     INIT_ONES};
    int v[4];
    Shape cs = shape_make(1, &channels);
    for (int i = 0; i < 4; i++) {
        const char *pname = arena_printf(c->a, "%s.%s", name, suffix[i]);
        if (param_name_taken(c, pname, loc))
            return -1;
        v[i] = add_param(c, pname, cs, (Init){.kind = init[i]}, loc, name);
        c->g->params[c->g->ops[v[i]].param].buffer = i >= 2;
    }
    int sd[2] = {2, channels};
    int sin[3] = {x, v[2], v[3]};
    int stats = add_op(c, OP_BN_STATS, shape_make(2, sd), sin, 3, loc, name);
    c->g->ops[stats].batched = false;
    c->g->ops[stats].attr.bn.momentum = momentum;
    c->g->ops[stats].attr.bn.eps = eps;
    int in[4] = {x, stats, v[0], v[1]};
    int y = add_op(c, OP_BATCHNORM, c->g->ops[x].shape, in, 4, loc, name);
    c->g->ops[y].attr.bn = c->g->ops[stats].attr.bn;
    return y;
}

/* dropout(x, p = 0.5): x times a mask that is 0 with probability p and
 * 1/(1-p) otherwise in training (inverted dropout), and 1 in evaluation. */
static int layer_dropout(Checker *c, const Expr *call, Expr **args)
{
    int x = eval_tensor(c, args[0]);
    double p = 0.5;
    if (args[1] && !const_eval(c, args[1], &p))
        return -1;
    if (args[1] && !(p >= 0 && p < 1)) {
        diag_error(c->d, args[1]->loc, "dropout probability must be in [0, 1), "
                   "got %.9g", p);
        return -1;
    }
    if (x < 0)
        return -1;
    if (!c->g->ops[x].batched || c->g->ops[x].dtype != DT_REAL) {
        diag_error(c->d, args[0]->loc, "dropout works on per-sample values, "
                   "not on parameters or labels");
        return -1;
    }
    Loc loc = call->u.call.callee_loc;
    const char *label = layer_name(c, call, NULL, "drop", FAM_DROP);
    int mask = add_op(c, OP_DROPOUT_MASK, c->g->ops[x].shape, NULL, 0, loc,
                      label);
    c->g->ops[mask].batched = true;
    c->g->ops[mask].attr.drop_p = p;
    int in[2] = {x, mask};
    return add_op(c, OP_MUL, c->g->ops[x].shape, in, 2, loc, label);
}

/* ---------------------------------------------------------------- */
/* losses                                                            */

static int scalar_loss(Checker *c, const Expr *call, OpKind op, int x, int t)
{
    int in[2] = {x, t};
    return add_op(c, op, shape_scalar(), in, 2, call->u.call.callee_loc,
                  "loss");
}

/* mse, bce, bce_with_logits: prediction and target of the same shape. */
static int elementwise_loss(Checker *c, const Expr *call, Expr **args,
                            OpKind op)
{
    int x = eval_tensor(c, args[0]);
    int t = eval_tensor(c, args[1]);
    if (x < 0 || t < 0)
        return -1;
    char b1[96], b2[96];
    if (c->g->ops[t].dtype == DT_I32) {
        diag_error(c->d, args[1]->loc, "%s needs real-valued targets, but '%s' "
                   "holds class labels; declare it as a shape such as [1]",
                   call->u.call.callee,
                   args[1]->kind == EX_IDENT ? args[1]->u.ident : "it");
        return -1;
    }
    if (!shape_eq(&c->g->ops[x].shape, &c->g->ops[t].shape)) {
        diag_error(c->d, call->u.call.callee_loc, "%s: prediction %s and target "
                   "%s differ in shape", call->u.call.callee,
                   sample_shape(c, x, b1, sizeof b1),
                   sample_shape(c, t, b2, sizeof b2));
        return -1;
    }
    return scalar_loss(c, call, op, x, t);
}

static int layer_mse(Checker *c, const Expr *call, Expr **args)
{
    return elementwise_loss(c, call, args, OP_MSE);
}

static int layer_bce(Checker *c, const Expr *call, Expr **args)
{
    return elementwise_loss(c, call, args, OP_BCE);
}

static int layer_bce_logits(Checker *c, const Expr *call, Expr **args)
{
    return elementwise_loss(c, call, args, OP_BCE_LOGITS);
}

/* label_smoothing = eps of cross_entropy: torch's CrossEntropyLoss
 * takes [0, 1]; eps = 1 would train towards the uniform distribution
 * whatever the label, so it is refused with the negatives. */
static bool eval_smoothing(Checker *c, const Expr *arg, double *eps)
{
    *eps = 0;
    if (!arg)
        return true;
    if (!const_eval(c, arg, eps))
        return false;
    if (!(*eps >= 0 && *eps < 1)) {
        diag_error(c->d, arg->loc, "label_smoothing must be in [0, 1), got "
                   "%.9g", *eps);
        return false;
    }
    return true;
}

/* cross_entropy(scores, target, from_logits = true, label_smoothing = 0):
 * scores [C] per sample; target class(C) or a one-hot / probability
 * vector [C]. */
static int layer_cross_entropy(Checker *c, const Expr *call, Expr **args)
{
    int x = eval_tensor(c, args[0]);
    int t = eval_tensor(c, args[1]);
    bool from_logits = true;
    double eps;
    if (args[2] && !eval_bool(c, args[2], &from_logits))
        return -1;
    if (!eval_smoothing(c, args[3], &eps))
        return -1;
    if (x < 0 || t < 0)
        return -1;
    char b1[96], b2[96];
    if (sample_rank(c, x) != 1 || !c->g->ops[x].batched) {
        diag_error(c->d, args[0]->loc, "cross_entropy expects class scores of "
                   "rank 1 per sample, got %s",
                   sample_shape(c, x, b1, sizeof b1));
        return -1;
    }
    int classes = c->g->ops[x].shape.dim[1];
    const IrOp *to = &c->g->ops[t];
    bool soft = to->dtype != DT_I32;
    if (!soft && c->g->nclasses != classes) {
        diag_error(c->d, call->u.call.callee_loc, "cross_entropy: the scores "
                   "have %d classes but the label is class(%d)", classes,
                   c->g->nclasses);
        return -1;
    }
    if (soft && !shape_eq(&to->shape, &c->g->ops[x].shape)) {
        diag_error(c->d, call->u.call.callee_loc, "cross_entropy: scores %s and "
                   "one-hot target %s differ in shape",
                   sample_shape(c, x, b1, sizeof b1),
                   sample_shape(c, t, b2, sizeof b2));
        return -1;
    }
    int y = scalar_loss(c, call, from_logits ? OP_SOFTMAX_XENT : OP_XENT_PROBS,
                        x, t);
    c->g->ops[y].attr.loss.soft = soft;
    c->g->ops[y].attr.loss.smoothing = eps;
    return y;
}

static const LayerDef layers[] = {
    {"dense", layer_dense, {"x", "units", "?init", "?bias_init", "?bias", "?name"}},
    {"relu", layer_relu, {"x"}},
    {"sigmoid", layer_sigmoid, {"x"}},
    {"tanh", layer_tanh, {"x"}},
    {"exp", layer_exp, {"x"}},
    {"log", layer_log, {"x"}},
    {"leaky_relu", layer_leaky_relu, {"x", "?alpha"}},
    {"softmax", layer_softmax, {"x"}},
    {"flatten", layer_flatten, {"x"}},
    {"add", layer_add, {"x", "y"}},
    {"mul", layer_mul, {"x", "y"}},
    {"mse", layer_mse, {"prediction", "target"}},
    {"bce", layer_bce, {"prediction", "target"}},
    {"binary_cross_entropy", layer_bce, {"prediction", "target"}},
    {"bce_with_logits", layer_bce_logits, {"logits", "target"}},
    {"cross_entropy", layer_cross_entropy, {"scores", "target", "?from_logits",
                                            "?label_smoothing"}},
    {"conv2d", layer_conv2d, {"x", "filters", "?kernel", "?stride", "?padding",
                              "?bias", "?init", "?bias_init", "?name"}},
    {"maxpool2d", layer_maxpool2d, {"x", "size", "?stride"}},
    {"avgpool2d", layer_avgpool2d, {"x", "size", "?stride"}},
    {"global_avgpool", layer_global_avgpool, {"x"}},
    {"batchnorm", layer_batchnorm, {"x", "?momentum", "?eps", "?name"}},
    {"dropout", layer_dropout, {"x", "?p"}},
};

/* ---------------------------------------------------------------- */
/* expressions                                                       */

static const LayerDef *find_layer(const char *name)
{
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        if (strcmp(layers[i].name, name) == 0)
            return &layers[i];
    return NULL;
}

static int eval_call(Checker *c, const Expr *e)
{
    const LayerDef *def = find_layer(e->u.call.callee);
    if (!def) {
        diag_error(c->d, e->u.call.callee_loc, "unknown operation '%s'",
                   e->u.call.callee);
        return -1;
    }
    Expr *args[MAX_LAYER_ARGS];
    if (!bind_args(c, def, e, args))
        return -1;
    return def->fn(c, e, args);
}

static int eval_ident(Checker *c, const Expr *e)
{
    Binding *b = find_binding(c, e->u.ident);
    if (b)
        return b->value; /* -1 for a value that failed: already reported */
    if (find_layer(e->u.ident))
        diag_error(c->d, e->loc, "'%s' is an operation; call it, as in %s(x), "
                   "or pipe into it: x |> %s", e->u.ident, e->u.ident,
                   e->u.ident);
    else
        diag_error(c->d, e->loc, "unknown name '%s'", e->u.ident);
    return -1;
}

static bool is_constant(const Expr *e)
{
    switch (e->kind) {
    case EX_NUM: return true;
    case EX_NEG: return is_constant(e->u.operand);
    case EX_BINARY: return is_constant(e->u.bin.lhs) && is_constant(e->u.bin.rhs);
    default: return false;
    }
}

/* tensor * number, number * tensor, tensor / number */
static int eval_scaled(Checker *c, const Expr *e)
{
    const Expr *num = is_constant(e->u.bin.lhs) ? e->u.bin.lhs : e->u.bin.rhs;
    const Expr *ten = num == e->u.bin.lhs ? e->u.bin.rhs : e->u.bin.lhs;
    double k;
    if (e->u.bin.op == '/' && num == e->u.bin.lhs) {
        diag_error(c->d, e->loc, "dividing a number by a tensor is not "
                   "supported");
        return -1;
    }
    if (!const_eval(c, num, &k))
        return -1;
    int x = eval_tensor(c, ten);
    if (x < 0)
        return -1;
    if (e->u.bin.op == '/') {
        if (k == 0) {
            diag_error(c->d, e->loc, "division by zero");
            return -1;
        }
        k = 1 / k;
    }
    int y = add_op(c, OP_SCALE, c->g->ops[x].shape, &x, 1, e->loc, c->let_name);
    c->g->ops[y].attr.scale = k;
    return y;
}

static int eval_binary(Checker *c, const Expr *e)
{
    char op = e->u.bin.op;
    bool lc = is_constant(e->u.bin.lhs), rc = is_constant(e->u.bin.rhs);
    if ((op == '*' || op == '/') && (lc || rc) && !(lc && rc))
        return eval_scaled(c, e);
    if (lc || rc) {
        diag_error(c->d, e->loc, "'%c' between a tensor and a number is not "
                   "supported; only scaling (x * 0.5, x / 2) is", op);
        return -1;
    }
    int x = eval_tensor(c, e->u.bin.lhs);
    int y = eval_tensor(c, e->u.bin.rhs);
    if (x < 0 || y < 0)
        return -1;
    OpKind k = op == '+' ? OP_ADD : op == '-' ? OP_SUB : op == '*' ? OP_MUL
                                                                   : OP_DIV;
    const char *what = op == '+' ? "'+'" : op == '-' ? "'-'" : op == '*' ? "'*'"
                                                                         : "'/'";
    return binary_op(c, e->loc, what, k, x, y, e->u.bin.lhs, e->u.bin.rhs);
}

/* Evaluates `e` as a tensor; returns its value id, or -1 after
 * reporting. Recursion depth is bounded by the parser's nesting limit. */
static int eval_tensor(Checker *c, const Expr *e)
{
    switch (e->kind) {
    case EX_IDENT:
        return eval_ident(c, e);
    case EX_CALL:
        return eval_call(c, e);
    case EX_BINARY:
        return eval_binary(c, e);
    case EX_NEG: {
        if (is_constant(e))
            break;
        int x = eval_tensor(c, e->u.operand);
        if (x < 0)
            return -1;
        return add_op(c, OP_NEG, c->g->ops[x].shape, &x, 1, e->loc,
                      c->let_name);
    }
    case EX_NUM:
    case EX_STRING:
    case EX_LIST:
        break;
    }
    diag_error(c->d, e->loc, "expected a tensor, got %s",
               e->kind == EX_STRING ? "a string"
               : e->kind == EX_LIST ? "a list"
                                    : "a number");
    return -1;
}

/* ---------------------------------------------------------------- */
/* statements                                                        */

/* [d0, d1, ...] -> shape, every dimension a positive integer. */
static bool eval_dims(Checker *c, const TypeExpr *t, Shape *out)
{
    const Expr *list = t->dims;
    if (list->u.list.count == 0) {
        diag_error(c->d, t->loc, "a shape needs at least one dimension");
        return false;
    }
    if (list->u.list.count > NNC_MAX_RANK - 1) {
        diag_error(c->d, t->loc, "a shape has at most %d dimensions, got %d",
                   NNC_MAX_RANK - 1, list->u.list.count);
        return false;
    }
    out->rank = 0;
    long total = 1;
    for (const Expr *d = list->u.list.items; d; d = d->next) {
        long v;
        if (!const_int(c, d, "a dimension", 1, 1 << 24, &v))
            return false;
        total *= v;
        if (total > (1L << 26)) {
            diag_error(c->d, t->loc, "shape has more than %ld elements", 1L << 26);
            return false;
        }
        out->dim[out->rank++] = (int)v;
    }
    return true;
}

static bool check_new_name(Checker *c, const Stmt *s)
{
    Binding *b = find_binding(c, s->name);
    if (!b)
        return true;
    if (s->kind == ST_LET && b->kind == ST_LET)
        return true; /* rebinding a let is allowed: x = f(x) chains */
    diag_error(c->d, s->name_loc, "'%s' is already defined as %s %s",
               s->name, b->kind == ST_INPUT ? "an" : "a", stmt_word(b->kind));
    diag_note(c->d, b->loc, "previous definition of '%s' was here", s->name);
    return false;
}

static void stmt_input(Checker *c, const Stmt *s)
{
    Graph *g = c->g;
    if (g->input >= 0) {
        diag_error(c->d, s->loc, "a model has one input; '%s' is a second one",
                   s->name);
        diag_note(c->d, g->ops[g->input].loc, "the first input is here");
        return;
    }
    if (s->type->is_class) {
        diag_error(c->d, s->type->loc, "an input must be a tensor shape such as "
                   "[784], not class(N)");
        return;
    }
    Shape sample;
    if (!check_new_name(c, s))
        return;
    if (!eval_dims(c, s->type, &sample)) {
        bind(c, s->name, s->name_loc, ST_INPUT, -1); /* quiet later uses */
        return;
    }
    Shape full = {.rank = sample.rank + 1, .dim = {g->batch}};
    memcpy(full.dim + 1, sample.dim, sizeof(int) * (size_t)sample.rank);
    int v = add_op(c, OP_INPUT, full, NULL, 0, s->loc, s->name);
    g->ops[v].storage = SG_INPUT;
    g->ops[v].batched = true;
    g->ops[v].name = s->name;
    g->input = v;
    bind(c, s->name, s->name_loc, ST_INPUT, v);
}

static void stmt_label(Checker *c, const Stmt *s)
{
    Graph *g = c->g;
    if (g->label >= 0) {
        diag_error(c->d, s->loc, "a model has one label; '%s' is a second one",
                   s->name);
        diag_note(c->d, g->ops[g->label].loc, "the first label is here");
        return;
    }
    if (!check_new_name(c, s))
        return;
    Shape full = {.rank = 1, .dim = {g->batch}};
    long classes = 0;
    if (s->type->is_class) {
        if (!const_int(c, s->type->nclasses, "the number of classes", 2,
                       1 << 20, &classes))
            return;
    } else {
        Shape sample;
        if (!eval_dims(c, s->type, &sample))
            return;
        full.rank = sample.rank + 1;
        memcpy(full.dim + 1, sample.dim, sizeof(int) * (size_t)sample.rank);
    }
    int v = add_op(c, OP_LABEL, full, NULL, 0, s->loc, s->name);
    g->ops[v].storage = SG_LABEL;
    g->ops[v].batched = true;
    g->ops[v].name = s->name;
    if (classes) {
        g->ops[v].dtype = DT_I32;
        g->nclasses = (int)classes;
    }
    g->label = v;
    bind(c, s->name, s->name_loc, ST_LABEL, v);
}

static void stmt_param(Checker *c, const Stmt *s)
{
    if (s->type->is_class) {
        diag_error(c->d, s->type->loc, "a param must have a shape, not class(N)");
        return;
    }
    Shape shape;
    if (!check_new_name(c, s) || !eval_dims(c, s->type, &shape))
        return;
    Init init = {.kind = INIT_XAVIER_UNIFORM};
    for (const Arg *a = s->options; a; a = a->next) {
        if (!a->name || strcmp(a->name, "init") != 0) {
            diag_error(c->d, a->loc, "a param takes one option, init = ...");
            return;
        }
        if (!eval_init(c, a->value, &init))
            return;
    }
    /* fans as PyTorch computes them: dim 1 (times the receptive field) in,
     * dim 0 out */
    long field = 1;
    for (int i = 2; i < shape.rank; i++)
        field *= shape.dim[i];
    init.fan_out = (int)(shape.dim[0] * field);
    init.fan_in = (int)((shape.rank > 1 ? shape.dim[1] : shape.dim[0]) * field);
    if (param_name_taken(c, s->name, s->name_loc))
        return;
    int v = add_param(c, s->name, shape, init, s->loc, s->name);
    bind(c, s->name, s->name_loc, ST_PARAM, v);
}

static int eval_rhs(Checker *c, const Stmt *s)
{
    c->let_name = s->name;
    c->let_root = s->value;
    int v = eval_tensor(c, s->value);
    c->let_name = NULL;
    c->let_root = NULL;
    return v;
}

static void stmt_let(Checker *c, const Stmt *s)
{
    if (!check_new_name(c, s))
        return;
    int v = eval_rhs(c, s);
    if (v < 0) {
        /* bound anyway, to a failed value, so later uses stay quiet
         * instead of repeating "unknown name" for one mistake */
        bind(c, s->name, s->name_loc, ST_LET, -1);
        return;
    }
    if (!c->g->ops[v].name && c->g->ops[v].storage == SG_ARENA)
        c->g->ops[v].name = s->name;
    bind(c, s->name, s->name_loc, ST_LET, v);
}

static void stmt_output(Checker *c, const Stmt *s)
{
    Graph *g = c->g;
    if (g->output >= 0) {
        diag_error(c->d, s->loc, "a model has one output; '%s' is a second one",
                   s->name);
        return;
    }
    int v;
    if (s->value) {
        if (!check_new_name(c, s))
            return;
        v = eval_rhs(c, s);
        bind(c, s->name, s->name_loc, ST_OUTPUT, v); /* -1 quiets later uses */
    } else {
        Binding *b = find_binding(c, s->name);
        if (!b) {
            diag_error(c->d, s->name_loc, "unknown name '%s'", s->name);
            return;
        }
        v = b->value;
    }
    if (v < 0)
        return;
    if (!g->ops[v].batched || g->ops[v].dtype != DT_REAL) {
        diag_error(c->d, s->name_loc, "the output must be a per-sample tensor "
                   "computed from the input");
        return;
    }
    g->output = v;
    g->output_name = s->name;
    if (!g->ops[v].name && g->ops[v].storage == SG_ARENA)
        g->ops[v].name = s->name;
}

static void stmt_loss(Checker *c, const Stmt *s)
{
    Graph *g = c->g;
    if (g->loss >= 0) {
        diag_error(c->d, s->loc, "a model has one loss; add the terms into one "
                   "expression: loss a + b");
        return;
    }
    c->let_name = "loss";
    int v = eval_tensor(c, s->value);
    c->let_name = NULL;
    if (v < 0)
        return;
    char buf[96];
    if (g->ops[v].shape.rank != 0) {
        diag_error(c->d, s->value->loc, "the loss must be a scalar, got a tensor "
                   "of shape %s; use a loss such as mse(p, y)",
                   sample_shape(c, v, buf, sizeof buf));
        return;
    }
    g->loss = v;
}

static void check_complete(Checker *c)
{
    const Model *m = c->model;
    Graph *g = c->g;
    if (g->input < 0)
        diag_error(c->d, m->name_loc, "model '%s' has no input; declare one: "
                   "input x : [784]", m->name);
    if (g->loss < 0)
        diag_error(c->d, m->name_loc, "model '%s' has no loss; add one: "
                   "loss cross_entropy(logits, y)", m->name);
    if (g->output < 0)
        diag_error(c->d, m->name_loc, "model '%s' has no output; add one: "
                   "output probs = softmax(logits)", m->name);
    if (g->nparams == 0 && g->input >= 0)
        diag_error(c->d, m->name_loc, "model '%s' has no parameters to train",
                   m->name);
}

Graph *shape_check(Arena *a, Diag *d, const Program *prog, const Model *m,
                   int batch)
{
    (void)prog;
    Checker c = {.a = a, .d = d, .model = m, .nerrors_at_start = d->nerrors};
    c.g = ir_new(a, batch);
    for (const Stmt *s = m->stmts; s; s = s->next) {
        switch (s->kind) {
        case ST_INPUT: stmt_input(&c, s); break;
        case ST_LABEL: stmt_label(&c, s); break;
        case ST_PARAM: stmt_param(&c, s); break;
        case ST_LET: stmt_let(&c, s); break;
        case ST_OUTPUT: stmt_output(&c, s); break;
        case ST_LOSS: stmt_loss(&c, s); break;
        }
    }
    if (!failed(&c))
        check_complete(&c);
    if (failed(&c))
        return NULL;
    long off = 0;
    for (int i = 0; i < c.g->nparams; i++) {
        c.g->params[i].offset = off;
        c.g->ops[c.g->params[i].value].offset = off;
        off += c.g->params[i].size;
    }
    c.g->param_elems = off;
    return c.g;
}
