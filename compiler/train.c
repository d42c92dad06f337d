/* train.c — the train block: how a model is trained.
 *
 * requires: a parsed Program and the model to train.
 * guarantees: a TrainSpec with every setting checked and defaulted;
 * train_check_data() then checks the data against the model's shapes.
 * Unknown, duplicate and ill-typed settings are reported one by one. */
#include "nnc.h"

#include <math.h>
#include <string.h>

typedef struct TrainChecker {
    Arena *a;
    Diag *d;
    TrainSpec *t;
    const Setting *seen[16]; /* first occurrence of each known key */
} TrainChecker;

static const char *const known_keys[] = {
    "optimizer", "batch", "epochs", "shuffle", "seed", "metric", "data",
    "log_every", "classes",
};
enum { NKEYS = sizeof known_keys / sizeof known_keys[0] };

static bool num_value(TrainChecker *c, const Expr *e, double *out)
{
    double l, r;
    switch (e->kind) {
    case EX_NUM:
        *out = e->u.num.value;
        return true;
    case EX_NEG:
        if (!num_value(c, e->u.operand, &l))
            return false;
        *out = -l;
        return true;
    case EX_BINARY:
        if (!num_value(c, e->u.bin.lhs, &l) || !num_value(c, e->u.bin.rhs, &r))
            return false;
        if (e->u.bin.op == '/' && r == 0) {
            diag_error(c->d, e->loc, "division by zero in a constant");
            return false;
        }
        *out = e->u.bin.op == '+' ? l + r : e->u.bin.op == '-' ? l - r
             : e->u.bin.op == '*' ? l * r : l / r;
        return true;
    default:
        diag_error(c->d, e->loc, "expected a number");
        return false;
    }
}

static bool int_value(TrainChecker *c, const Expr *e, const char *what,
                      double min, double max, long *out)
{
    double v;
    if (!num_value(c, e, &v))
        return false;
    if (v != floor(v) || v < min || v > max) {
        diag_error(c->d, e->loc, "%s must be an integer from %.0f to %.0f, "
                   "got %.9g", what, min, max, v);
        return false;
    }
    *out = (long)v;
    return true;
}

static bool bool_value(TrainChecker *c, const Expr *e, bool *out)
{
    if (e->kind == EX_IDENT && strcmp(e->u.ident, "true") == 0)
        return *out = true, true;
    if (e->kind == EX_IDENT && strcmp(e->u.ident, "false") == 0)
        return *out = false, true;
    diag_error(c->d, e->loc, "expected true or false");
    return false;
}

static bool string_value(TrainChecker *c, const Expr *e, const char **out)
{
    if (e->kind != EX_STRING) {
        diag_error(c->d, e->loc, "expected a string such as \"data/train.csv\"");
        return false;
    }
    *out = e->u.str;
    return true;
}

/* Calls the train block may hold: name(positional..., key = value...). */
typedef struct CallArgs {
    const Expr *pos[4];
    int npos;
} CallArgs;

static bool split_args(TrainChecker *c, const Expr *call, int max_pos,
                       const char *const *keys, int nkeys, const Expr **kw,
                       CallArgs *out)
{
    out->npos = 0;
    for (int i = 0; i < nkeys; i++)
        kw[i] = NULL;
    for (const Arg *a = call->u.call.args; a; a = a->next) {
        if (!a->name) {
            if (out->npos >= max_pos) {
                diag_error(c->d, a->loc, "too many arguments to '%s'",
                           call->u.call.callee);
                return false;
            }
            out->pos[out->npos++] = a->value;
            continue;
        }
        int k = -1;
        for (int i = 0; i < nkeys; i++)
            if (strcmp(keys[i], a->name) == 0)
                k = i;
        if (k < 0) {
            diag_error(c->d, a->loc, "'%s' has no argument named '%s'",
                       call->u.call.callee, a->name);
            return false;
        }
        if (kw[k]) {
            diag_error(c->d, a->loc, "argument '%s' given twice", a->name);
            return false;
        }
        kw[k] = a->value;
    }
    return true;
}

static bool set_optimizer(TrainChecker *c, const Expr *e)
{
    static const char *const keys[] = {"lr", "momentum", "dampening",
        "weight_decay", "nesterov", "betas", "eps"};
    enum { LR, MOMENTUM, DAMPENING, WD, NESTEROV, BETAS, EPS, NK };
    const char *name = e->kind == EX_CALL ? e->u.call.callee
                     : e->kind == EX_IDENT ? e->u.ident : NULL;
    OptimSpec *o = &c->t->opt;
    if (!name) {
        diag_error(c->d, e->loc, "expected an optimizer: sgd(lr = 0.1) or "
                   "adam(lr = 0.001)");
        return false;
    }
    bool sgd = strcmp(name, "sgd") == 0;
    bool adam = strcmp(name, "adam") == 0, adamw = strcmp(name, "adamw") == 0;
    if (!sgd && !adam && !adamw) {
        diag_error(c->d, e->loc, "unknown optimizer '%s' (known: sgd, adam, "
                   "adamw)", name);
        return false;
    }
    *o = (OptimSpec){.kind = sgd ? OPT_SGD : OPT_ADAM, .lr = sgd ? 0.01 : 0.001,
                     .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                     .weight_decay = adamw ? 0.01 : 0, .decoupled = adamw};
    if (e->kind != EX_CALL)
        return true;
    const Expr *kw[NK];
    CallArgs pos;
    if (!split_args(c, e, 0, keys, NK, kw, &pos))
        return false;
    bool ok = true;
    if (kw[LR])
        ok = num_value(c, kw[LR], &o->lr) && ok;
    if (kw[WD])
        ok = num_value(c, kw[WD], &o->weight_decay) && ok;
    if (sgd) {
        if (kw[MOMENTUM])
            ok = num_value(c, kw[MOMENTUM], &o->momentum) && ok;
        if (kw[DAMPENING])
            ok = num_value(c, kw[DAMPENING], &o->dampening) && ok;
        if (kw[NESTEROV])
            ok = bool_value(c, kw[NESTEROV], &o->nesterov) && ok;
    }
    if (!sgd) {
        if (kw[EPS])
            ok = num_value(c, kw[EPS], &o->eps) && ok;
        if (kw[BETAS]) {
            const Expr *b = kw[BETAS];
            if (b->kind != EX_LIST || b->u.list.count != 2) {
                diag_error(c->d, b->loc, "betas is a list of two numbers: "
                           "betas = [0.9, 0.999]");
                ok = false;
            } else {
                ok = num_value(c, b->u.list.items, &o->beta1) &&
                     num_value(c, b->u.list.items->next, &o->beta2) && ok;
            }
        }
    }
    for (int i = 0; i < NK; i++) {
        bool sgd_only = i == MOMENTUM || i == DAMPENING || i == NESTEROV;
        bool adam_only = i == BETAS || i == EPS;
        if (kw[i] && ((sgd && adam_only) || (!sgd && sgd_only))) {
            diag_error(c->d, kw[i]->loc, "%s has no setting '%s'", name,
                       keys[i]);
            ok = false;
        }
    }
    if (ok && !(o->lr > 0)) {
        diag_error(c->d, kw[LR] ? kw[LR]->loc : e->loc,
                   "the learning rate must be positive");
        ok = false;
    }
    if (ok && o->nesterov && (o->momentum <= 0 || o->dampening != 0)) {
        diag_error(c->d, kw[NESTEROV]->loc, "nesterov needs momentum > 0 and "
                   "dampening 0 (as in PyTorch)");
        ok = false;
    }
    return ok;
}

/* table(x = [[0, 0], ...], y = [[0], ...]): kept as flat numbers; the
 * shapes are checked against the model in train_check_data(). */
static int flatten_numbers(TrainChecker *c, const Expr *e, double *out, int at)
{
    if (e->kind == EX_LIST) {
        for (const Expr *i = e->u.list.items; i && at >= 0; i = i->next)
            at = flatten_numbers(c, i, out, at);
        return at;
    }
    double v;
    if (!num_value(c, e, &v))
        return -1;
    if (out)
        out[at] = v;
    return at + 1;
}

static bool set_table(TrainChecker *c, const Expr *e)
{
    static const char *const keys[] = {"x", "y"};
    const Expr *kw[2];
    CallArgs pos;
    if (!split_args(c, e, 0, keys, 2, kw, &pos))
        return false;
    for (int i = 0; i < 2; i++)
        if (!kw[i] || kw[i]->kind != EX_LIST || kw[i]->u.list.count == 0) {
            diag_error(c->d, kw[i] ? kw[i]->loc : e->loc, "table needs %s = a "
                       "non-empty list of rows", keys[i]);
            return false;
        }
    TrainSpec *t = c->t;
    t->table_rows = kw[0]->u.list.count;
    if (kw[1]->u.list.count != t->table_rows) {
        diag_error(c->d, kw[1]->loc, "table has %d rows of x but %d of y",
                   t->table_rows, kw[1]->u.list.count);
        return false;
    }
    int nx = flatten_numbers(c, kw[0], NULL, 0);
    int ny = flatten_numbers(c, kw[1], NULL, 0);
    if (nx < 0 || ny < 0)
        return false;
    t->table_x = ARENA_ARRAY(c->a, double, nx);
    t->table_y = ARENA_ARRAY(c->a, double, ny);
    flatten_numbers(c, kw[0], t->table_x, 0);
    flatten_numbers(c, kw[1], t->table_y, 0);
    t->table_loc_x = kw[0]->loc;
    t->table_loc_y = kw[1]->loc;
    t->table_nx = nx;
    t->table_ny = ny;
    t->data = DATA_TABLE;
    return true;
}

/* mean = [..], std = [..]: per-channel normalisation after scaling, as
 * torchvision's Normalize(mean, std); both lists the same length, the
 * number of channels (checked against the input in train_check_data). */
static bool set_normalize(TrainChecker *c, const Expr *call, const Expr *mean,
                          const Expr *std)
{
    if (!mean && !std)
        return true;
    if (!mean || !std) {
        diag_error(c->d, (mean ? mean : std)->loc, "normalisation needs both "
                   "mean = [...] and std = [...], one number per channel");
        return false;
    }
    const Expr *lists[2] = {mean, std};
    double *out[2] = {c->t->norm_mean, c->t->norm_std};
    for (int l = 0; l < 2; l++) {
        const Expr *e = lists[l];
        if (e->kind != EX_LIST || e->u.list.count < 1 ||
            e->u.list.count > NNC_MAX_NORM_CHANNELS) {
            diag_error(c->d, e->loc, "%s is a list of 1 to %d numbers, one per "
                       "channel: %s = [0.5, 0.5, 0.5]", l ? "std" : "mean",
                       NNC_MAX_NORM_CHANNELS, l ? "std" : "mean");
            return false;
        }
        int i = 0;
        for (const Expr *v = e->u.list.items; v; v = v->next, i++)
            if (!num_value(c, v, &out[l][i]))
                return false;
        if (l == 1)
            for (int j = 0; j < i; j++)
                if (!(out[l][j] > 0)) {
                    diag_error(c->d, e->loc, "std must be positive, got %.9g "
                               "for channel %d", out[l][j], j);
                    return false;
                }
    }
    if (mean->u.list.count != std->u.list.count) {
        diag_error(c->d, std->loc, "mean has %d numbers but std has %d",
                   mean->u.list.count, std->u.list.count);
        return false;
    }
    c->t->nnorm = mean->u.list.count;
    c->t->norm_loc = call->loc;
    return true;
}

static bool set_idx(TrainChecker *c, const Expr *e)
{
    static const char *const keys[] = {"scale", "shift", "mean", "std"};
    const Expr *kw[4];
    CallArgs pos;
    if (!split_args(c, e, 1, keys, 4, kw, &pos))
        return false;
    if (pos.npos != 1) {
        diag_error(c->d, e->loc, "idx needs the directory of the IDX files: "
                   "idx(\"/usr/share/datasets/fashion-mnist\")");
        return false;
    }
    c->t->data = DATA_IDX;
    return string_value(c, pos.pos[0], &c->t->data_path) &&
           (!kw[0] || num_value(c, kw[0], &c->t->scale)) &&
           (!kw[1] || num_value(c, kw[1], &c->t->shift)) &&
           set_normalize(c, e, kw[2], kw[3]);
}

/* cifar10("dir", scale = 1/255, mean = [...], std = [...]): the binary
 * batches data_batch_1.bin .. data_batch_5.bin and test_batch.bin. */
static bool set_cifar10(TrainChecker *c, const Expr *e)
{
    static const char *const keys[] = {"scale", "mean", "std"};
    const Expr *kw[3];
    CallArgs pos;
    if (!split_args(c, e, 1, keys, 3, kw, &pos))
        return false;
    if (pos.npos != 1) {
        diag_error(c->d, e->loc, "cifar10 needs the directory of the binary "
                   "batches: cifar10(\"data/cifar-10-batches-bin\")");
        return false;
    }
    c->t->data = DATA_CIFAR10;
    return string_value(c, pos.pos[0], &c->t->data_path) &&
           (!kw[0] || num_value(c, kw[0], &c->t->scale)) &&
           set_normalize(c, e, kw[1], kw[2]);
}

/* classes ["plane", "car", ...]: names for per-class reports */
static bool set_classes(TrainChecker *c, const Expr *e)
{
    if (e->kind != EX_LIST || e->u.list.count == 0) {
        diag_error(c->d, e->loc, "classes is a list of names: "
                   "classes [\"plane\", \"car\", ...]");
        return false;
    }
    TrainSpec *t = c->t;
    t->class_names = ARENA_ARRAY(c->a, const char *, e->u.list.count);
    for (const Expr *v = e->u.list.items; v; v = v->next) {
        if (v->kind != EX_STRING) {
            diag_error(c->d, v->loc, "a class name is a string, as in "
                       "\"plane\"");
            return false;
        }
        t->class_names[t->nclass_names++] = v->u.str;
    }
    t->classes_loc = e->loc;
    return true;
}

static bool set_csv(TrainChecker *c, const Expr *e)
{
    static const char *const keys[] = {"test", "scale", "shift", "header",
                                       "label"};
    const Expr *kw[5];
    CallArgs pos;
    if (!split_args(c, e, 1, keys, 5, kw, &pos))
        return false;
    if (pos.npos != 1) {
        diag_error(c->d, e->loc, "csv needs the training file: "
                   "csv(\"train.csv\", test = \"test.csv\")");
        return false;
    }
    TrainSpec *t = c->t;
    long col = -1;
    t->data = DATA_CSV;
    return string_value(c, pos.pos[0], &t->data_path) &&
           (!kw[0] || string_value(c, kw[0], &t->test_path)) &&
           (!kw[1] || num_value(c, kw[1], &t->scale)) &&
           (!kw[2] || num_value(c, kw[2], &t->shift)) &&
           (!kw[3] || bool_value(c, kw[3], &t->csv_header)) &&
           (!kw[4] || int_value(c, kw[4], "label column", -1, 1e6, &col)) &&
           (t->csv_label_col = (int)col, true);
}

static bool set_data(TrainChecker *c, const Expr *e)
{
    const char *name = e->kind == EX_CALL ? e->u.call.callee : NULL;
    if (name && strcmp(name, "table") == 0)
        return set_table(c, e);
    if (name && strcmp(name, "idx") == 0)
        return set_idx(c, e);
    if (name && strcmp(name, "csv") == 0)
        return set_csv(c, e);
    if (name && strcmp(name, "cifar10") == 0)
        return set_cifar10(c, e);
    diag_error(c->d, e->loc, "expected data: idx(\"dir\"), cifar10(\"dir\"), "
               "csv(\"file\") or table(x = [...], y = [...])");
    return false;
}

static bool apply_setting(TrainChecker *c, const Setting *s, int key)
{
    TrainSpec *t = c->t;
    long v;
    if (!s->value) {
        diag_error(c->d, s->loc, "'%s' needs a value", s->key);
        return false;
    }
    switch (key) {
    case 0:
        return set_optimizer(c, s->value);
    case 1:
        if (!int_value(c, s->value, "batch", 1, 65536, &v))
            return false;
        t->batch = (int)v;
        return true;
    case 2:
        if (!int_value(c, s->value, "epochs", 1, 1e9, &v))
            return false;
        t->epochs = (int)v;
        return true;
    case 3:
        return bool_value(c, s->value, &t->shuffle);
    case 4:
        if (!int_value(c, s->value, "seed", 0, 9007199254740992.0, &v))
            return false;
        t->seed = (uint64_t)v;
        return true;
    case 5:
        /* per_class_accuracy reports the overall accuracy too */
        if (s->value->kind == EX_IDENT &&
            strcmp(s->value->u.ident, "per_class_accuracy") == 0)
            t->metric_per_class = true;
        else if (s->value->kind != EX_IDENT ||
                 strcmp(s->value->u.ident, "accuracy")) {
            diag_error(c->d, s->value->loc, "unknown metric (known: accuracy, "
                       "per_class_accuracy)");
            return false;
        }
        t->metric_accuracy = true;
        return true;
    case 6:
        t->data_loc = s->value->loc;
        return set_data(c, s->value);
    case 8:
        return set_classes(c, s->value);
    default:
        if (!int_value(c, s->value, "log_every", 1, 1e9, &v))
            return false;
        t->log_every = (int)v;
        return true;
    }
}

static const Train *find_train(Diag *d, const Program *prog, const Model *m)
{
    const Train *found = NULL;
    for (const Train *t = prog->trains; t; t = t->next) {
        if (strcmp(t->model, m->name) != 0)
            continue;
        if (found) {
            diag_error(d, t->loc, "a second train block for model '%s'",
                       m->name);
            diag_note(d, found->loc, "the first one is here");
            return NULL;
        }
        found = t;
    }
    return found;
}

bool train_check(Arena *a, Diag *d, const Program *prog, const Model *m,
                 TrainSpec *out)
{
    int errors = d->nerrors;
    memset(out, 0, sizeof *out);
    *out = (TrainSpec){.batch = 0, .epochs = 1, .shuffle = true, .scale = 1,
                       .csv_label_col = 0,
                       .opt = {.kind = OPT_SGD, .lr = 0.01}};
    for (const Train *t = prog->trains; t; t = t->next) {
        bool known = false;
        for (const Model *mm = prog->models; mm; mm = mm->next)
            known = known || strcmp(mm->name, t->model) == 0;
        if (!known)
            diag_error(d, t->model_loc, "train block for unknown model '%s'",
                       t->model);
    }
    out->ast = find_train(d, prog, m);
    TrainChecker c = {.a = a, .d = d, .t = out};
    const Train *tr = out->ast;
    for (const Setting *s = tr ? tr->settings : NULL; s; s = s->next) {
        int key = -1;
        for (int k = 0; k < NKEYS; k++)
            if (strcmp(known_keys[k], s->key) == 0)
                key = k;
        if (key < 0) {
            diag_error(d, s->loc, "unknown train setting '%s' (known: optimizer, "
                       "data, batch, epochs, shuffle, seed, metric, classes, "
                       "log_every)", s->key);
            continue;
        }
        if (c.seen[key]) {
            diag_error(d, s->loc, "'%s' is set twice", s->key);
            diag_note(d, c.seen[key]->loc, "first set here");
            continue;
        }
        c.seen[key] = s;
        if (s->has_body) {
            diag_error(d, s->loc, "'%s' takes a value, not a block", s->key);
            continue;
        }
        apply_setting(&c, s, key);
    }
    if (tr && !c.seen[0])
        diag_error(d, tr->loc, "train block for '%s' has no optimizer; add one: "
                   "optimizer adam(lr = 0.001)", m->name);
    if (out->batch == 0)
        out->batch = out->data == DATA_TABLE ? out->table_rows : 32;
    return d->nerrors == errors;
}

/* The table's rows must fit the model's input and label. */
static bool check_table(Diag *d, TrainSpec *t, const Graph *g)
{
    long xin = shape_elems(&g->ops[g->input].shape) / g->batch;
    if (t->table_nx != t->table_rows * xin) {
        diag_error(d, t->table_loc_x, "table x has %d numbers in %d rows; the "
                   "model's input needs %ld per row", t->table_nx,
                   t->table_rows, xin);
        return false;
    }
    if (g->label < 0) {
        diag_error(d, t->table_loc_y, "table has targets but the model has no "
                   "label");
        return false;
    }
    const IrOp *l = &g->ops[g->label];
    long yin = l->dtype == DT_I32 ? 1 : shape_elems(&l->shape) / g->batch;
    if (t->table_ny != t->table_rows * yin) {
        diag_error(d, t->table_loc_y, "table y has %d numbers in %d rows; the "
                   "model's label needs %ld per row", t->table_ny,
                   t->table_rows, yin);
        return false;
    }
    for (int i = 0; l->dtype == DT_I32 && i < t->table_ny; i++) {
        double v = t->table_y[i];
        if (v != floor(v) || v < 0 || v >= g->nclasses) {
            diag_error(d, t->table_loc_y, "table y row %d: %.9g is not a class "
                       "in class(%d)", i + 1, v, g->nclasses);
            return false;
        }
    }
    return true;
}

static const char *input_shape(const Graph *g, char *buf, size_t len)
{
    Shape s = g->ops[g->input].shape;
    s.rank--;
    memmove(s.dim, s.dim + 1, sizeof(int) * (size_t)s.rank);
    return shape_str(&s, buf, len);
}

/* CIFAR-10 records are 3x32x32 images of 10 classes. */
static bool check_cifar10(Diag *d, const TrainSpec *t, const Graph *g)
{
    const Shape *s = &g->ops[g->input].shape;
    char buf[96];
    if (s->rank != 4 || s->dim[1] != 3 || s->dim[2] != 32 || s->dim[3] != 32) {
        diag_error(d, t->data_loc, "cifar10 images are [3, 32, 32] but the "
                   "model's input is %s", input_shape(g, buf, sizeof buf));
        return false;
    }
    if (g->nclasses != 10) {
        diag_error(d, t->data_loc, "cifar10 has 10 classes; the model's label "
                   "must be class(10)");
        return false;
    }
    return true;
}

/* One mean and std per input channel (dim 0 of a sample). IDX images
 * have one channel, so their normalisation folds into scale and shift:
 * (raw * scale + shift - mean) / std. */
static bool check_normalize(Diag *d, TrainSpec *t, const Graph *g)
{
    if (t->nnorm == 0)
        return true;
    int channels = g->ops[g->input].shape.dim[1];
    char buf[96];
    if (t->nnorm != channels) {
        diag_error(d, t->norm_loc, "mean and std have %d numbers but the "
                   "model's input %s has %d channels", t->nnorm,
                   input_shape(g, buf, sizeof buf), channels);
        return false;
    }
    if (t->data == DATA_IDX) {
        if (channels != 1) {
            diag_error(d, t->norm_loc, "IDX images have one channel, but the "
                       "model's input is %s", input_shape(g, buf, sizeof buf));
            return false;
        }
        t->scale /= t->norm_std[0];
        t->shift = (t->shift - t->norm_mean[0]) / t->norm_std[0];
        t->nnorm = 0;
    }
    return true;
}

static bool check_classes(Diag *d, const TrainSpec *t, const Graph *g)
{
    if (t->metric_per_class && !g->nclasses) {
        diag_error(d, t->ast->loc, "per_class_accuracy needs a class label, "
                   "such as label y : class(10)");
        return false;
    }
    if (t->nclass_names && t->nclass_names != g->nclasses) {
        diag_error(d, t->classes_loc, "classes names %d classes but the "
                   "model's label is class(%d)", t->nclass_names, g->nclasses);
        return false;
    }
    return true;
}

/* The data must fit the model's input and label. */
bool train_check_data(Diag *d, TrainSpec *t, const Graph *g)
{
    if (!check_classes(d, t, g))
        return false;
    switch (t->data) {
    case DATA_TABLE:
        return check_table(d, t, g);
    case DATA_CIFAR10:
        return check_cifar10(d, t, g) && check_normalize(d, t, g);
    case DATA_IDX:
        return check_normalize(d, t, g);
    default:
        return true;
    }
}
