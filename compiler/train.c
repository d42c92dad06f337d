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
    const Setting *seen[32]; /* first occurrence of each known key */
} TrainChecker;

/* The settings, in the order apply_setting() switches on them. */
enum {
    K_OPTIMIZER, K_BATCH, K_EPOCHS, K_SHUFFLE, K_SEED, K_METRIC, K_DATA,
    K_LOG_EVERY, K_CLASSES, K_SCHEDULE, K_WARMUP, K_VALIDATION, K_LOG_CSV,
    K_EARLY_STOPPING, K_CHECKPOINT, K_CLIP_NORM, K_CLIP_VALUE, K_NO_DECAY,
    K_FREEZE, K_INIT_FROM, K_AUGMENT,
};
static const char *const known_keys[] = {
    "optimizer", "batch", "epochs", "shuffle", "seed", "metric", "data",
    "log_every", "classes", "schedule", "warmup", "validation", "log_csv",
    "early_stopping", "checkpoint", "clip_norm", "clip_value", "no_decay",
    "freeze", "init_from", "augment",
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

/* The optimizers and their options, with PyTorch's defaults. */
static bool set_optimizer(TrainChecker *c, const Expr *e)
{
    static const char *const keys[] = {"lr", "momentum", "dampening",
        "weight_decay", "nesterov", "betas", "eps", "alpha", "centered"};
    enum { LR, MOMENTUM, DAMPENING, WD, NESTEROV, BETAS, EPS, ALPHA, CENTERED,
           NK };
    /* which options each optimizer has: bit i for keys[i] */
    enum { SGD_KEYS = 1 << LR | 1 << MOMENTUM | 1 << DAMPENING | 1 << WD |
                      1 << NESTEROV,
           ADAM_KEYS = 1 << LR | 1 << WD | 1 << BETAS | 1 << EPS,
           RMSPROP_KEYS = 1 << LR | 1 << WD | 1 << MOMENTUM | 1 << EPS |
                          1 << ALPHA | 1 << CENTERED };
    const char *name = e->kind == EX_CALL ? e->u.call.callee
                     : e->kind == EX_IDENT ? e->u.ident : NULL;
    OptimSpec *o = &c->t->opt;
    if (!name) {
        diag_error(c->d, e->loc, "expected an optimizer: sgd(lr = 0.1) or "
                   "adam(lr = 0.001)");
        return false;
    }
    bool sgd = strcmp(name, "sgd") == 0, rmsprop = strcmp(name, "rmsprop") == 0;
    bool adam = strcmp(name, "adam") == 0, adamw = strcmp(name, "adamw") == 0;
    if (!sgd && !adam && !adamw && !rmsprop) {
        diag_error(c->d, e->loc, "unknown optimizer '%s' (known: sgd, adam, "
                   "adamw, rmsprop)", name);
        return false;
    }
    /* keep the parameter groups other settings may have filled in */
    OptimSpec groups = *o;
    *o = (OptimSpec){.kind = sgd ? OPT_SGD : rmsprop ? OPT_RMSPROP : OPT_ADAM,
                     .lr = sgd || rmsprop ? 0.01 : 0.001,
                     .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .alpha = 0.99,
                     .weight_decay = adamw ? 0.01 : 0, .decoupled = adamw,
                     .freeze = groups.freeze, .nfreeze = groups.nfreeze,
                     .no_decay = groups.no_decay,
                     .nno_decay = groups.nno_decay};
    if (e->kind != EX_CALL)
        return true;
    const Expr *kw[NK];
    CallArgs pos;
    if (!split_args(c, e, 0, keys, NK, kw, &pos))
        return false;
    int allowed = sgd ? SGD_KEYS : rmsprop ? RMSPROP_KEYS : ADAM_KEYS;
    bool ok = true;
    for (int i = 0; i < NK; i++)
        if (kw[i] && !(allowed & 1 << i)) {
            diag_error(c->d, kw[i]->loc, "%s has no setting '%s'", name,
                       keys[i]);
            kw[i] = NULL;
            ok = false;
        }
    if (kw[LR])
        ok = num_value(c, kw[LR], &o->lr) && ok;
    if (kw[WD])
        ok = num_value(c, kw[WD], &o->weight_decay) && ok;
    if (kw[MOMENTUM])
        ok = num_value(c, kw[MOMENTUM], &o->momentum) && ok;
    if (kw[DAMPENING])
        ok = num_value(c, kw[DAMPENING], &o->dampening) && ok;
    if (kw[NESTEROV])
        ok = bool_value(c, kw[NESTEROV], &o->nesterov) && ok;
    if (kw[EPS])
        ok = num_value(c, kw[EPS], &o->eps) && ok;
    if (kw[ALPHA])
        ok = num_value(c, kw[ALPHA], &o->alpha) && ok;
    if (kw[CENTERED])
        ok = bool_value(c, kw[CENTERED], &o->centered) && ok;
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
    if (!ok)
        return false;
    /* the ranges torch.optim accepts */
    const struct { int key; bool bad; const char *msg; } checks[] = {
        {LR, !(o->lr > 0), "the learning rate must be positive"},
        {WD, !(o->weight_decay >= 0), "weight_decay must be 0 or more"},
        {MOMENTUM, !(o->momentum >= 0), "momentum must be 0 or more"},
        {EPS, !(o->eps >= 0), "eps must be 0 or more"},
        {ALPHA, !(o->alpha >= 0), "alpha must be 0 or more"},
        {BETAS, !(o->beta1 >= 0 && o->beta1 < 1 && o->beta2 >= 0 &&
                  o->beta2 < 1), "betas must be in [0, 1)"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        if (checks[i].bad) {
            diag_error(c->d, kw[checks[i].key] ? kw[checks[i].key]->loc
                                                : e->loc, "%s", checks[i].msg);
            return false;
        }
    if (o->nesterov && (o->momentum <= 0 || o->dampening != 0)) {
        diag_error(c->d, kw[NESTEROV]->loc, "nesterov needs momentum > 0 and "
                   "dampening 0 (as in PyTorch)");
        return false;
    }
    return true;
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
                                       "label", "mean", "std"};
    const Expr *kw[7];
    CallArgs pos;
    if (!split_args(c, e, 1, keys, 7, kw, &pos))
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
           (t->csv_label_col = (int)col, true) &&
           set_normalize(c, e, kw[5], kw[6]);
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

/* ---------------------------------------------------------------- */
/* schedules, evaluation, checkpoints, regularisation                */

static const char *const watch_names[] = {
    "loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
    "test_accuracy",
};

/* val_loss, val_accuracy, ...: what a setting watches */
static bool watch_value(TrainChecker *c, const Expr *e, Watch *out)
{
    const char *name = e->kind == EX_IDENT ? e->u.ident
                     : e->kind == EX_STRING ? e->u.str : NULL;
    /* `loss` is a keyword: the training loss is train_loss here */
    if (name && strcmp(name, "train_loss") == 0)
        name = "loss";
    for (int i = 0; name && i < 6; i++)
        if (strcmp(name, watch_names[i]) == 0) {
            *out = (Watch)i;
            return true;
        }
    diag_error(c->d, e->loc, "expected a metric to watch: train_loss, "
               "train_accuracy, val_loss, val_accuracy, test_loss or "
               "test_accuracy");
    return false;
}

static bool watch_is_accuracy(Watch w)
{
    return w == W_TRAIN_ACCURACY || w == W_VAL_ACCURACY || w == W_TEST_ACCURACY;
}

/* a word such as min or max, written bare or as a string */
static const char *word_value(const Expr *e)
{
    return e->kind == EX_IDENT ? e->u.ident : e->kind == EX_STRING ? e->u.str
                                                                   : NULL;
}

static bool positive_value(TrainChecker *c, const Expr *e, const char *what,
                           double *out)
{
    if (!num_value(c, e, out))
        return false;
    if (!(*out > 0) || isinf(*out)) {
        diag_error(c->d, e->loc, "%s must be a positive number, got %.9g", what,
                   *out);
        return false;
    }
    return true;
}

static bool nonneg_value(TrainChecker *c, const Expr *e, const char *what,
                         double *out)
{
    if (!num_value(c, e, out))
        return false;
    if (!(*out >= 0) || isinf(*out)) {
        diag_error(c->d, e->loc, "%s must be 0 or more, got %.9g", what, *out);
        return false;
    }
    return true;
}

static bool int_arg(TrainChecker *c, const Expr *e, const char *what, int min,
                    int *out)
{
    long v;
    if (!int_value(c, e, what, min, 1e9, &v))
        return false;
    *out = (int)v;
    return true;
}

/* step(step_size = 30, gamma = 0.1) and the others: torch.optim.lr_scheduler
 * names and defaults. A required argument may also be given first without
 * its name: step(30), exponential(0.9), cosine(50). */
static bool set_schedule(TrainChecker *c, const Expr *e)
{
    static const char *const keys[] = {"step_size", "gamma", "milestones",
        "T_max", "eta_min", "metric", "mode", "factor", "patience",
        "threshold", "threshold_mode", "cooldown", "min_lr", "eps"};
    enum { STEP_SIZE, GAMMA, MILESTONES, T_MAX, ETA_MIN, METRIC, MODE, FACTOR,
           PATIENCE, THRESHOLD, THRESHOLD_MODE, COOLDOWN, MIN_LR, EPS, NK };
    static const struct { const char *name; SchedKind kind; int keys, first; }
    kinds[] = {
        {"step", SCHED_STEP, 1 << STEP_SIZE | 1 << GAMMA, STEP_SIZE},
        {"multi_step", SCHED_MULTI_STEP, 1 << MILESTONES | 1 << GAMMA,
         MILESTONES},
        {"exponential", SCHED_EXPONENTIAL, 1 << GAMMA, GAMMA},
        {"cosine", SCHED_COSINE, 1 << T_MAX | 1 << ETA_MIN, T_MAX},
        {"reduce_on_plateau", SCHED_PLATEAU, 1 << METRIC | 1 << MODE |
         1 << FACTOR | 1 << PATIENCE | 1 << THRESHOLD | 1 << THRESHOLD_MODE |
         1 << COOLDOWN | 1 << MIN_LR | 1 << EPS, METRIC},
    };
    const char *name = e->kind == EX_CALL ? e->u.call.callee
                     : e->kind == EX_IDENT ? e->u.ident : NULL;
    int k = -1;
    for (int i = 0; name && i < 5; i++)
        if (strcmp(kinds[i].name, name) == 0)
            k = i;
    if (k < 0) {
        diag_error(c->d, e->loc, "expected a schedule: step(step_size = 30), "
                   "multi_step(milestones = [30, 80]), exponential(gamma = "
                   "0.9), cosine(T_max = 50) or reduce_on_plateau(...)");
        return false;
    }
    ScheduleSpec *sc = &c->t->sched;
    *sc = (ScheduleSpec){.kind = kinds[k].kind, .loc = e->loc, .gamma = 0.1,
                         .metric = W_VAL_LOSS, .factor = 0.1, .patience = 10,
                         .threshold = 1e-4, .eps = 1e-8,
                         .warmup_epochs = sc->warmup_epochs,
                         .warmup_steps = sc->warmup_steps,
                         .warmup_start = sc->warmup_start,
                         .warmup_loc = sc->warmup_loc};
    const Expr *kw[NK] = {NULL};
    CallArgs pos = {.npos = 0};
    if (e->kind == EX_CALL && !split_args(c, e, 1, keys, NK, kw, &pos))
        return false;
    if (pos.npos == 1) {
        if (kw[kinds[k].first]) {
            diag_error(c->d, kw[kinds[k].first]->loc, "argument '%s' given "
                       "twice", keys[kinds[k].first]);
            return false;
        }
        kw[kinds[k].first] = pos.pos[0];
    }
    for (int i = 0; i < NK; i++)
        if (kw[i] && !(kinds[k].keys & 1 << i)) {
            diag_error(c->d, kw[i]->loc, "%s has no setting '%s'", name,
                       keys[i]);
            return false;
        }
    static const int required[] = {STEP_SIZE, MILESTONES, GAMMA, T_MAX};
    for (int i = 0; i < 4; i++)
        if (kinds[k].keys & 1 << required[i] && !kw[required[i]] &&
            !(required[i] == GAMMA && sc->kind != SCHED_EXPONENTIAL)) {
            diag_error(c->d, e->loc, "%s needs %s = ...", name,
                       keys[required[i]]);
            return false;
        }
    if (kw[STEP_SIZE] && !int_arg(c, kw[STEP_SIZE], "step_size", 1,
                                  &sc->step_size))
        return false;
    if (kw[GAMMA] && !positive_value(c, kw[GAMMA], "gamma", &sc->gamma))
        return false;
    if (kw[T_MAX] && !int_arg(c, kw[T_MAX], "T_max", 1, &sc->t_max))
        return false;
    if (kw[ETA_MIN] && !nonneg_value(c, kw[ETA_MIN], "eta_min", &sc->eta_min))
        return false;
    if (kw[MILESTONES]) {
        const Expr *l = kw[MILESTONES];
        if (l->kind != EX_LIST || l->u.list.count < 1 ||
            l->u.list.count > NNC_MAX_MILESTONES) {
            diag_error(c->d, l->loc, "milestones is a list of 1 to %d epochs: "
                       "milestones = [30, 80]", NNC_MAX_MILESTONES);
            return false;
        }
        for (const Expr *v = l->u.list.items; v; v = v->next) {
            int m;
            if (!int_arg(c, v, "a milestone", 1, &m))
                return false;
            if (sc->nmilestones && m <= sc->milestones[sc->nmilestones - 1]) {
                diag_error(c->d, v->loc, "milestones must increase");
                return false;
            }
            sc->milestones[sc->nmilestones++] = m;
        }
    }
    if (kw[METRIC] && !watch_value(c, kw[METRIC], &sc->metric))
        return false;
    sc->mode_max = watch_is_accuracy(sc->metric);
    if (kw[MODE]) {
        const char *m = word_value(kw[MODE]);
        if (!m || (strcmp(m, "min") && strcmp(m, "max"))) {
            diag_error(c->d, kw[MODE]->loc, "mode is min or max");
            return false;
        }
        sc->mode_max = strcmp(m, "max") == 0;
    }
    if (kw[THRESHOLD_MODE]) {
        const char *m = word_value(kw[THRESHOLD_MODE]);
        if (!m || (strcmp(m, "rel") && strcmp(m, "abs"))) {
            diag_error(c->d, kw[THRESHOLD_MODE]->loc, "threshold_mode is rel "
                       "or abs");
            return false;
        }
        sc->threshold_abs = strcmp(m, "abs") == 0;
    }
    if (kw[FACTOR]) {
        if (!positive_value(c, kw[FACTOR], "factor", &sc->factor))
            return false;
        if (sc->factor >= 1) {
            diag_error(c->d, kw[FACTOR]->loc, "factor must be below 1, got "
                       "%.9g", sc->factor);
            return false;
        }
    }
    return (!kw[PATIENCE] || int_arg(c, kw[PATIENCE], "patience", 0,
                                     &sc->patience)) &&
           (!kw[COOLDOWN] || int_arg(c, kw[COOLDOWN], "cooldown", 0,
                                     &sc->cooldown)) &&
           (!kw[THRESHOLD] || nonneg_value(c, kw[THRESHOLD], "threshold",
                                           &sc->threshold)) &&
           (!kw[MIN_LR] || nonneg_value(c, kw[MIN_LR], "min_lr",
                                        &sc->min_lr)) &&
           (!kw[EPS] || nonneg_value(c, kw[EPS], "eps", &sc->eps));
}

/* warmup 5  |  warmup linear(epochs = 5, start_factor = 0.1)
 *           |  warmup linear(steps = 500) */
static bool set_warmup(TrainChecker *c, const Expr *e)
{
    static const char *const keys[] = {"epochs", "steps", "start_factor"};
    ScheduleSpec *sc = &c->t->sched;
    sc->warmup_start = 1.0 / 3; /* LinearLR's default */
    sc->warmup_loc = e->loc;
    if (e->kind != EX_CALL)
        return int_arg(c, e, "warm-up epochs", 1, &sc->warmup_epochs);
    if (strcmp(e->u.call.callee, "linear") != 0) {
        diag_error(c->d, e->loc, "expected a warm-up: warmup 5 or "
                   "warmup linear(epochs = 5, start_factor = 0.1)");
        return false;
    }
    const Expr *kw[3];
    CallArgs pos;
    if (!split_args(c, e, 0, keys, 3, kw, &pos))
        return false;
    if (!kw[0] == !kw[1]) {
        diag_error(c->d, e->loc, "warm-up lasts epochs = N or steps = N "
                   "(one of them)");
        return false;
    }
    if (kw[0] && !int_arg(c, kw[0], "warm-up epochs", 1, &sc->warmup_epochs))
        return false;
    if (kw[1] && !int_arg(c, kw[1], "warm-up steps", 1, &sc->warmup_steps))
        return false;
    if (kw[2]) {
        if (!num_value(c, kw[2], &sc->warmup_start))
            return false;
        if (!(sc->warmup_start > 0 && sc->warmup_start <= 1)) {
            diag_error(c->d, kw[2]->loc, "start_factor must be in (0, 1], got "
                       "%.9g", sc->warmup_start);
            return false;
        }
    }
    return true;
}

/* validation 0.1  |  validation csv("val.csv") */
static bool set_validation(TrainChecker *c, const Expr *e)
{
    TrainSpec *t = c->t;
    t->val_loc = e->loc;
    if (e->kind == EX_CALL && strcmp(e->u.call.callee, "csv") == 0) {
        CallArgs pos;
        const Expr *kw[1];
        if (!split_args(c, e, 1, NULL, 0, kw, &pos))
            return false;
        if (pos.npos != 1) {
            diag_error(c->d, e->loc, "csv needs the validation file: "
                       "csv(\"val.csv\")");
            return false;
        }
        return string_value(c, pos.pos[0], &t->val_path);
    }
    if (e->kind == EX_CALL || e->kind == EX_STRING || e->kind == EX_IDENT ||
        e->kind == EX_LIST) {
        diag_error(c->d, e->loc, "expected the fraction of the training set "
                   "to hold out, validation 0.1, or a file, validation "
                   "csv(\"val.csv\")");
        return false;
    }
    if (!num_value(c, e, &t->val_fraction))
        return false;
    if (!(t->val_fraction > 0 && t->val_fraction < 1)) {
        diag_error(c->d, e->loc, "the validation fraction must be between 0 "
                   "and 1, got %.9g", t->val_fraction);
        return false;
    }
    return true;
}

/* early_stopping val_loss  |  early_stopping val_loss(patience = 5,
 * min_delta = 0.001): the seed's EarlyStopping class */
static bool set_early_stopping(TrainChecker *c, const Expr *e)
{
    static const char *const keys[] = {"patience", "min_delta"};
    TrainSpec *t = c->t;
    t->early_stop = true;
    t->es_patience = 5;
    t->es_loc = e->loc;
    Expr name = {.kind = EX_IDENT, .loc = e->loc};
    if (e->kind == EX_CALL)
        name.u.ident = e->u.call.callee;
    if (!watch_value(c, e->kind == EX_CALL ? &name : e, &t->es_metric))
        return false;
    if (e->kind != EX_CALL)
        return true;
    const Expr *kw[2];
    CallArgs pos;
    return split_args(c, e, 0, keys, 2, kw, &pos) &&
           (!kw[0] || int_arg(c, kw[0], "patience", 1, &t->es_patience)) &&
           (!kw[1] || nonneg_value(c, kw[1], "min_delta", &t->es_min_delta));
}

/* checkpoint best("best.safetensors", metric = val_accuracy)
 * checkpoint every("last.safetensors", epochs = 1) */
static bool set_checkpoint(TrainChecker *c, const Expr *e)
{
    static const char *const keys[] = {"metric", "epochs"};
    TrainSpec *t = c->t;
    const char *name = e->kind == EX_CALL ? e->u.call.callee : NULL;
    bool best = name && strcmp(name, "best") == 0;
    if (!name || (!best && strcmp(name, "every") != 0)) {
        diag_error(c->d, e->loc, "expected checkpoint best(\"best.safetensors\""
                   ", metric = val_accuracy) or checkpoint every(\"last."
                   "safetensors\", epochs = 1)");
        return false;
    }
    const Expr *kw[2];
    CallArgs pos;
    if (!split_args(c, e, 1, keys, 2, kw, &pos))
        return false;
    if (pos.npos != 1) {
        diag_error(c->d, e->loc, "%s needs the checkpoint's file name", name);
        return false;
    }
    if (kw[best]) {
        diag_error(c->d, kw[best]->loc, "%s has no setting '%s'", name,
                   keys[best]);
        return false;
    }
    if ((best && t->best_path) || (!best && t->every_path)) {
        diag_error(c->d, e->loc, "a second checkpoint %s(...); a train block "
                   "has at most one best(...) and one every(...)", name);
        return false;
    }
    if (best) {
        t->best_metric = W_VAL_LOSS;
        t->best_loc = e->loc;
        return string_value(c, pos.pos[0], &t->best_path) &&
               (!kw[0] || watch_value(c, kw[0], &t->best_metric));
    }
    t->every_epochs = 1;
    return string_value(c, pos.pos[0], &t->every_path) &&
           (!kw[1] || int_arg(c, kw[1], "epochs", 1, &t->every_epochs));
}

/* [bias, norm, conv1, "fc2.weight"] or one of them */
static bool set_selectors(TrainChecker *c, const Expr *e, const ParamSel **out,
                          int *n)
{
    int count = e->kind == EX_LIST ? e->u.list.count : 1;
    const Expr *first = e->kind == EX_LIST ? e->u.list.items : e;
    if (count == 0) {
        diag_error(c->d, e->loc, "expected parameters: a name such as "
                   "\"conv1.weight\", a layer such as conv1, bias or norm");
        return false;
    }
    ParamSel *sel = ARENA_ARRAY(c->a, ParamSel, count);
    int k = 0;
    for (const Expr *v = first; v && k < count; v = v->next, k++) {
        sel[k].loc = v->loc;
        if (v->kind == EX_STRING) {
            sel[k].name = v->u.str;
        } else if (v->kind == EX_IDENT) {
            sel[k].kind = strcmp(v->u.ident, "bias") == 0 ? PSEL_BIAS
                        : strcmp(v->u.ident, "norm") == 0 ? PSEL_NORM
                                                          : PSEL_NAME;
            sel[k].name = v->u.ident;
        } else {
            diag_error(c->d, v->loc, "expected a parameter such as "
                       "\"conv1.weight\", a layer such as conv1, bias or norm");
            return false;
        }
    }
    *out = sel;
    *n = count;
    return true;
}

/* augment [random_crop(padding = 4), horizontal_flip(p = 0.5)] */
static bool set_augment(TrainChecker *c, const Expr *e)
{
    TrainSpec *t = c->t;
    t->aug_loc = e->loc;
    const Expr *first = e->kind == EX_LIST ? e->u.list.items : e;
    int count = e->kind == EX_LIST ? e->u.list.count : 1;
    for (const Expr *v = first; v && count-- > 0; v = v->next) {
        const char *name = v->kind == EX_CALL ? v->u.call.callee
                         : v->kind == EX_IDENT ? v->u.ident : "";
        bool crop = strcmp(name, "random_crop") == 0;
        bool flip = strcmp(name, "horizontal_flip") == 0;
        if (!crop && !flip) {
            diag_error(c->d, v->loc, "unknown augmentation (known: "
                       "random_crop(padding = 4), horizontal_flip(p = 0.5))");
            return false;
        }
        if ((crop && t->aug_crop) || (flip && t->aug_flip > 0)) {
            diag_error(c->d, v->loc, "%s is given twice", name);
            return false;
        }
        static const char *const keys[] = {"padding", "p"};
        const Expr *kw[2] = {NULL, NULL};
        CallArgs pos;
        if (v->kind == EX_CALL && !split_args(c, v, 0, keys, 2, kw, &pos))
            return false;
        if (kw[crop ? 1 : 0]) {
            diag_error(c->d, kw[crop ? 1 : 0]->loc, "%s has no setting '%s'",
                       name, keys[crop ? 1 : 0]);
            return false;
        }
        if (crop) {
            t->aug_crop = true;
            if (kw[0] && !int_arg(c, kw[0], "padding", 0, &t->aug_padding))
                return false;
            continue;
        }
        t->aug_flip = 0.5;
        if (kw[1] && !num_value(c, kw[1], &t->aug_flip))
            return false;
        if (!(t->aug_flip > 0 && t->aug_flip <= 1)) {
            diag_error(c->d, kw[1]->loc, "p must be in (0, 1], got %.9g",
                       t->aug_flip);
            return false;
        }
    }
    return true;
}

/* metric accuracy  |  metric [accuracy, confusion_matrix] */
static bool set_metric(TrainChecker *c, const Expr *e)
{
    TrainSpec *t = c->t;
    const Expr *first = e->kind == EX_LIST ? e->u.list.items : e;
    int count = e->kind == EX_LIST ? e->u.list.count : 1;
    for (const Expr *v = first; v && count-- > 0; v = v->next) {
        const char *name = v->kind == EX_IDENT ? v->u.ident : "";
        /* per_class_accuracy and confusion_matrix report the overall
         * accuracy too */
        if (strcmp(name, "per_class_accuracy") == 0)
            t->metric_per_class = true;
        else if (strcmp(name, "confusion_matrix") == 0)
            t->metric_confusion = true;
        else if (strcmp(name, "accuracy") != 0) {
            diag_error(c->d, v->loc, "unknown metric (known: accuracy, "
                       "per_class_accuracy, confusion_matrix)");
            return false;
        }
        t->metric_accuracy = true;
    }
    return true;
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
    case K_OPTIMIZER:
        return set_optimizer(c, s->value);
    case K_BATCH:
        if (!int_value(c, s->value, "batch", 1, 65536, &v))
            return false;
        t->batch = (int)v;
        return true;
    case K_EPOCHS:
        if (!int_value(c, s->value, "epochs", 1, 1e9, &v))
            return false;
        t->epochs = (int)v;
        return true;
    case K_SHUFFLE:
        return bool_value(c, s->value, &t->shuffle);
    case K_SEED:
        if (!int_value(c, s->value, "seed", 0, 9007199254740992.0, &v))
            return false;
        t->seed = (uint64_t)v;
        return true;
    case K_METRIC:
        return set_metric(c, s->value);
    case K_DATA:
        t->data_loc = s->value->loc;
        return set_data(c, s->value);
    case K_CLASSES:
        return set_classes(c, s->value);
    case K_LOG_EVERY:
        if (!int_value(c, s->value, "log_every", 1, 1e9, &v))
            return false;
        t->log_every = (int)v;
        return true;
    case K_SCHEDULE:
        return set_schedule(c, s->value);
    case K_WARMUP:
        return set_warmup(c, s->value);
    case K_VALIDATION:
        return set_validation(c, s->value);
    case K_LOG_CSV:
        return string_value(c, s->value, &t->log_csv);
    case K_EARLY_STOPPING:
        return set_early_stopping(c, s->value);
    case K_CHECKPOINT:
        return set_checkpoint(c, s->value);
    case K_CLIP_NORM:
        return positive_value(c, s->value, "clip_norm", &t->clip_norm);
    case K_CLIP_VALUE:
        return positive_value(c, s->value, "clip_value", &t->clip_value);
    case K_NO_DECAY:
        return set_selectors(c, s->value, &t->opt.no_decay, &t->opt.nno_decay);
    case K_FREEZE:
        return set_selectors(c, s->value, &t->opt.freeze, &t->opt.nfreeze);
    case K_INIT_FROM:
        return string_value(c, s->value, &t->init_from);
    default:
        return set_augment(c, s->value);
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

/* What a setting watches must be measured: val_* needs a validation set,
 * test_* a test set; watching an accuracy turns the accuracy metric on. */
static bool check_watch(Diag *d, TrainSpec *t, Watch w, Loc loc,
                        const char *what)
{
    bool has_val = t->val_fraction > 0 || t->val_path;
    bool has_test = t->data == DATA_IDX || t->data == DATA_CIFAR10 ||
                    (t->data == DATA_CSV && t->test_path);
    if ((w == W_VAL_LOSS || w == W_VAL_ACCURACY) && !has_val) {
        diag_error(d, loc, "%s watches %s, but there is no validation set; "
                   "add one (validation 0.1) or watch train_loss", what,
                   watch_names[w]);
        return false;
    }
    if ((w == W_TEST_LOSS || w == W_TEST_ACCURACY) && !has_test) {
        diag_error(d, loc, "%s watches %s, but the data has no test set",
                   what, watch_names[w]);
        return false;
    }
    if (watch_is_accuracy(w))
        t->metric_accuracy = true;
    return true;
}

static void check_watches(Diag *d, TrainSpec *t)
{
    if (t->sched.kind == SCHED_PLATEAU)
        check_watch(d, t, t->sched.metric, t->sched.loc, "reduce_on_plateau");
    if (t->early_stop)
        check_watch(d, t, t->es_metric, t->es_loc, "early_stopping");
    if (t->best_path)
        check_watch(d, t, t->best_metric, t->best_loc, "checkpoint best");
    if (t->val_path && t->data != DATA_CSV && t->data != DATA_NONE)
        diag_error(d, t->val_loc, "a validation csv needs csv training data "
                   "(same columns and scaling); hold out a fraction instead: "
                   "validation 0.1");
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
            char list[512];
            size_t at = 0;
            for (int k = 0; k < NKEYS && at < sizeof list; k++)
                at += (size_t)snprintf(list + at, sizeof list - at, "%s%s",
                                       k ? ", " : "", known_keys[k]);
            diag_error(d, s->loc, "unknown train setting '%s' (known: %s)",
                       s->key, list);
            continue;
        }
        /* checkpoint may be given twice: best(...) and every(...) */
        if (c.seen[key] && key != K_CHECKPOINT) {
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
    if (d->nerrors == errors)
        check_watches(d, out);
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

/* the shape of one sample of per-sample value v */
static const char *sample_shape(const Graph *g, int v, char *buf, size_t len)
{
    Shape s = g->ops[v].shape;
    s.rank--;
    memmove(s.dim, s.dim + 1, sizeof(int) * (size_t)s.rank);
    return shape_str(&s, buf, len);
}

static const char *input_shape(const Graph *g, char *buf, size_t len)
{
    return sample_shape(g, g->input, buf, len);
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

/* One mean and std per input channel (dim 0 of a [C, H, W] sample). With
 * one channel (IDX images, or any CSV input) the normalisation folds into
 * scale and shift: (raw * scale + shift - mean) / std. CIFAR-10 batches
 * are normalised as they load, CSV images of several channels by the
 * trainer after loading. */
static bool check_normalize(Diag *d, TrainSpec *t, const Graph *g)
{
    if (t->nnorm == 0)
        return true;
    const Shape *s = &g->ops[g->input].shape;
    int channels = s->rank == 4 ? s->dim[1] : 1;
    char buf[96];
    if (t->nnorm != channels) {
        diag_error(d, t->norm_loc, "mean and std have %d numbers but the "
                   "model's input %s has %d channel%s", t->nnorm,
                   input_shape(g, buf, sizeof buf), channels,
                   channels == 1 ? "" : "s");
        return false;
    }
    if (t->data == DATA_IDX && channels != 1) {
        diag_error(d, t->norm_loc, "IDX images have one channel, but the "
                   "model's input is %s", input_shape(g, buf, sizeof buf));
        return false;
    }
    if (channels == 1 && t->data != DATA_CIFAR10) {
        t->scale /= t->norm_std[0];
        t->shift = (t->shift - t->norm_mean[0]) / t->norm_std[0];
        t->nnorm = 0;
    }
    return true;
}

/* IDX and CIFAR-10 files hold class labels. */
static bool check_class_label(Diag *d, const TrainSpec *t, const Graph *g,
                              const char *what)
{
    if (g->nclasses)
        return true;
    char buf[96];
    if (g->label < 0)
        diag_error(d, t->data_loc, "%s data has class labels but the model "
                   "has no label; declare one: label y : class(10)", what);
    else
        diag_error(d, t->data_loc, "%s data has class labels, but the "
                   "model's label is %s of real values; declare it as "
                   "class(N)", what, sample_shape(g, g->label, buf,
                                                  sizeof buf));
    return false;
}

/* freeze and no_decay name parameters the model has. */
static bool check_selectors(Diag *d, const Graph *g, const ParamSel *sel,
                            int n, const char *setting)
{
    for (int i = 0; i < n; i++) {
        bool any = false;
        for (int p = 0; p < g->nparams && !any; p++)
            any = !g->params[p].buffer && optim_selects(g, &sel[i], p);
        if (any)
            continue;
        if (sel[i].kind == PSEL_NAME)
            diag_error(d, sel[i].loc, "%s: the model has no parameter or "
                       "layer named '%s'", setting, sel[i].name);
        else
            diag_error(d, sel[i].loc, "%s: the model has no %s parameters",
                       setting, sel[i].kind == PSEL_BIAS ? "bias"
                                                         : "normalisation");
        return false;
    }
    return true;
}

/* Crops and flips work on the planes of [C, H, W] inputs. */
static bool check_augment(Diag *d, const TrainSpec *t, const Graph *g)
{
    char buf[96];
    if (!t->aug_crop && t->aug_flip == 0)
        return true;
    if (g->ops[g->input].shape.rank != 4) {
        diag_error(d, t->aug_loc, "augmentation needs image inputs [C, H, W], "
                   "but the model's input is %s",
                   input_shape(g, buf, sizeof buf));
        return false;
    }
    return true;
}

static bool check_classes(Diag *d, const TrainSpec *t, const Graph *g)
{
    if ((t->metric_per_class || t->metric_confusion) && !g->nclasses) {
        diag_error(d, t->ast->loc, "%s needs a class label, such as "
                   "label y : class(10)", t->metric_per_class
                   ? "per_class_accuracy" : "confusion_matrix");
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
    if (!check_classes(d, t, g) || !check_augment(d, t, g) ||
        !check_selectors(d, g, t->opt.freeze, t->opt.nfreeze, "freeze") ||
        !check_selectors(d, g, t->opt.no_decay, t->opt.nno_decay, "no_decay"))
        return false;
    switch (t->data) {
    case DATA_TABLE:
        return check_table(d, t, g);
    case DATA_CIFAR10:
        return check_cifar10(d, t, g) && check_normalize(d, t, g);
    case DATA_IDX:
        return check_class_label(d, t, g, "idx") && check_normalize(d, t, g);
    case DATA_CSV:
        return check_normalize(d, t, g);
    default:
        return true;
    }
}
