/* emit_main.c — the trainer that `nnc --main` adds: the train block as a
 * configuration for runtime/rt_trainer.c, and main().
 *
 * requires: a checked TrainSpec and the model's API already emitted.
 * guarantees: <prefix>_main(argc, argv) carries out the train block and
 * returns non-zero on any failure; main() calls it. */
#include "nnc.h"

#include <string.h>

/* The macros rt_trainer.c is written against; they must precede it. */
void emit_trainer_macros(Emitter *e, const Graph *g, const char *prefix,
                         const char *upper, const char *label_t)
{
    emit(e, "/* the model the embedded trainer drives */");
    emit(e, "#define NNC_T_FN(f) %s_##f", prefix);
    emit(e, "#define NNC_T_MODEL %s", prefix);
    emit(e, "#define NNC_T_REAL %s", e->real);
    emit(e, "#define NNC_T_LABEL %s", label_t);
    emit(e, "#define NNC_T_BATCH %s_BATCH", upper);
    emit(e, "#define NNC_T_INPUT %s_INPUT_SIZE", upper);
    emit(e, "#define NNC_T_OUTPUT %s_OUTPUT_SIZE", upper);
    emit(e, "#define NNC_T_LABEL_SIZE %s_LABEL_SIZE", upper);
    emit(e, "#define NNC_T_CLASSES %d", g->nclasses);
    if (e->o->profile)
        emit(e, "#define NNC_T_PROFILE 1 /* nnc --profile: print where the "
             "time went */");
}

static void emit_float_array(Emitter *e, const char *name, const double *v,
                             int n, int per_row)
{
    Emitter fe = {.out = e->out, .real = "float", .o = e->o};
    char lit[48];
    emit_open(e, "static const float %s[%d] =", name, n);
    for (int i = 0; i < n; i += per_row) {
        char line[1024];
        size_t at = 0;
        for (int j = i; j < i + per_row && j < n && at < sizeof line - 64; j++)
            at += (size_t)snprintf(line + at, sizeof line - at, "%s,%s",
                                   emit_lit(&fe, v[j], lit, sizeof lit),
                                   j + 1 < i + per_row ? " " : "");
        emit(e, "%s", line);
    }
    emit_close(e, ";");
}

static void emit_c_string(Emitter *e, const char *field, const char *s)
{
    if (!s) {
        emit(e, ".%s = NULL,", field);
        return;
    }
    char buf[1024];
    emit(e, ".%s = \"%s\",", field, emit_escape(s, buf, sizeof buf));
}

/* classes [...] of the train block, for per-class reports */
static void emit_class_names(Emitter *e, const TrainSpec *t)
{
    emit_open(e, "static const char *const class_names[%d] =",
              t->nclass_names);
    for (int i = 0; i < t->nclass_names; i++) {
        char buf[256];
        size_t at = 0;
        for (const char *p = t->class_names[i]; *p && at < sizeof buf - 8; p++) {
            if (*p == '"' || *p == '\\')
                buf[at++] = '\\';
            if (*p == '\n') {
                buf[at++] = '\\';
                buf[at++] = 'n';
                continue;
            }
            buf[at++] = *p;
        }
        buf[at] = '\0';
        emit(e, "\"%s\",", buf);
    }
    emit_close(e, ";");
    emit_blank(e);
}

/* .norm_mean = {...}, .norm_std = {...}: per-channel (CIFAR-10) */
static void emit_normalisation(Emitter *e, const TrainSpec *t)
{
    Emitter fe = {.out = e->out, .real = "float", .o = e->o};
    char mean[1024], std[1024], lit[48];
    size_t a = 0, b = 0;
    for (int i = 0; i < t->nnorm; i++) {
        a += (size_t)snprintf(mean + a, sizeof mean - a, "%s%s", i ? ", " : "",
                              emit_lit(&fe, t->norm_mean[i], lit, sizeof lit));
        b += (size_t)snprintf(std + b, sizeof std - b, "%s%s", i ? ", " : "",
                              emit_lit(&fe, t->norm_std[i], lit, sizeof lit));
    }
    emit(e, ".norm_channels = %d,", t->nnorm);
    emit(e, ".norm_mean = {%s},", mean);
    emit(e, ".norm_std = {%s},", std);
}

static void emit_double(Emitter *e, const char *field, double v)
{
    char lit[48];
    emit(e, ".%s = %s,", field,
         emit_lit(&(Emitter){.real = "double", .o = e->o}, v, lit, sizeof lit));
}

/* .schedule = {...}: the learning rate, epoch by epoch */
static void emit_schedule(Emitter *e, const TrainSpec *t)
{
    static const char *const kinds[] = {"NNC_SCHED_NONE", "NNC_SCHED_STEP",
        "NNC_SCHED_MULTI_STEP", "NNC_SCHED_EXPONENTIAL", "NNC_SCHED_COSINE",
        "NNC_SCHED_PLATEAU"};
    const ScheduleSpec *s = &t->sched;
    emit_open(e, ".schedule =");
    emit(e, ".kind = %s,", kinds[s->kind]);
    emit_double(e, "base_lr", t->opt.lr);
    switch (s->kind) {
    case SCHED_STEP:
        emit(e, ".step_size = %d,", s->step_size);
        emit_double(e, "gamma", s->gamma);
        break;
    case SCHED_MULTI_STEP:
        emit(e, ".milestones = milestones,");
        emit(e, ".nmilestones = %d,", s->nmilestones);
        emit_double(e, "gamma", s->gamma);
        break;
    case SCHED_EXPONENTIAL:
        emit_double(e, "gamma", s->gamma);
        break;
    case SCHED_COSINE:
        emit(e, ".t_max = %d,", s->t_max);
        emit_double(e, "eta_min", s->eta_min);
        break;
    case SCHED_PLATEAU:
        emit(e, ".metric = %d, /* %s */", (int)s->metric,
             (const char *[]){"loss", "train_accuracy", "val_loss",
                              "val_accuracy", "test_loss",
                              "test_accuracy"}[s->metric]);
        emit(e, ".mode_max = %d,", s->mode_max);
        emit(e, ".threshold_abs = %d,", s->threshold_abs);
        emit(e, ".patience = %d,", s->patience);
        emit(e, ".cooldown = %d,", s->cooldown);
        emit_double(e, "factor", s->factor);
        emit_double(e, "threshold", s->threshold);
        emit_double(e, "min_lr", s->min_lr);
        emit_double(e, "eps", s->eps);
        break;
    case SCHED_NONE:
        break;
    }
    if (s->warmup_epochs || s->warmup_steps) {
        emit(e, ".warmup_epochs = %d,", s->warmup_epochs);
        emit(e, ".warmup_steps = %d,", s->warmup_steps);
        emit_double(e, "warmup_start", s->warmup_start);
    }
    emit_close(e, ",");
}

/* (offset, count) of every parameter the optimizer updates, adjacent ones
 * merged: what gradient clipping measures and scales. */
static int emit_grad_ranges(Emitter *e, const Graph *g)
{
    long *r = ARENA_ARRAY(g->arena, long, 2 * g->nparams + 2);
    int n = 0;
    for (int i = 0; i < g->nparams; i++) {
        if (!optim_updates(g, i))
            continue;
        const Param *p = &g->params[i];
        if (n && r[2 * n - 2] + r[2 * n - 1] == p->offset) {
            r[2 * n - 1] += p->size;
            continue;
        }
        r[2 * n] = p->offset;
        r[2 * n + 1] = p->size;
        n++;
    }
    if (n == 0)
        return 0;
    emit(e, "/* (offset, count) of the trained parameters' gradients, for "
         "clipping */");
    emit_open(e, "static const long grad_ranges[%d] =", 2 * n);
    for (int i = 0; i < n; i++)
        emit(e, "%ld, %ld,", r[2 * i], r[2 * i + 1]);
    emit_close(e, ";");
    emit_blank(e);
    return n;
}

void emit_main(Emitter *e, const Graph *g, const TrainSpec *t,
               const char *prefix, const char *upper, const char *label_t)
{
    (void)label_t;
    static const char *const kinds[] = {"NNC_DATA_NONE", "NNC_DATA_TABLE",
                                        "NNC_DATA_IDX", "NNC_DATA_CSV",
                                        "NNC_DATA_CIFAR10"};
    char lit[48];
    Emitter fe = {.out = e->out, .real = "float", .o = e->o};
    emit_blank(e);
    emit(e, "/* ---- the trainer: the train block of %s ---- */", e->o->source);
    emit_blank(e);
    if (t->data == DATA_TABLE) {
        long xin = shape_elems(&g->ops[g->input].shape) / g->batch;
        long yin = t->table_ny / t->table_rows;
        emit_float_array(e, "table_x", t->table_x, t->table_nx, (int)xin);
        emit_float_array(e, "table_y", t->table_y, t->table_ny, (int)yin);
        emit_blank(e);
    }
    if (t->nclass_names)
        emit_class_names(e, t);
    if (t->sched.kind == SCHED_MULTI_STEP) {
        char list[512];
        size_t at = 0;
        for (int i = 0; i < t->sched.nmilestones && at < sizeof list; i++)
            at += (size_t)snprintf(list + at, sizeof list - at, "%s%d",
                                   i ? ", " : "", t->sched.milestones[i]);
        emit(e, "static const int milestones[%d] = {%s};", t->sched.nmilestones,
             list);
        emit_blank(e);
    }
    int nranges = t->clip_norm > 0 || t->clip_value > 0
                      ? emit_grad_ranges(e, g) : 0;
    const Shape *in = &g->ops[g->input].shape;
    bool image = in->rank == 4;
    emit_open(e, "int %s_main(int argc, char **argv)", prefix);
    emit_open(e, "static const nnc_train_config config =");
    emit_c_string(e, "model", prefix);
    emit(e, ".epochs = %d,", t->epochs);
    emit(e, ".shuffle = %d,", t->shuffle);
    emit(e, ".seed = %lluu,", (unsigned long long)t->seed);
    emit(e, ".metric_accuracy = %d,", t->metric_accuracy);
    emit(e, ".log_every = %d,", t->log_every);
    emit(e, ".data_kind = %s,", kinds[t->data]);
    emit_c_string(e, "data_path", t->data_path);
    emit_c_string(e, "test_path", t->test_path);
    emit(e, ".scale = %s,", emit_lit(&fe, t->scale, lit, sizeof lit));
    emit(e, ".shift = %s,", emit_lit(&fe, t->shift, lit, sizeof lit));
    emit(e, ".csv_header = %d,", t->csv_header);
    emit(e, ".csv_label_col = %d,", t->csv_label_col);
    if (t->nnorm)
        emit_normalisation(e, t);
    if (t->metric_per_class)
        emit(e, ".per_class = 1,");
    if (t->metric_confusion)
        emit(e, ".confusion = 1,");
    if (t->nclass_names)
        emit(e, ".class_names = class_names,");
    if (t->data == DATA_TABLE) {
        emit(e, ".table_x = table_x,");
        emit(e, ".table_y = table_y,");
        emit(e, ".table_rows = %d,", t->table_rows);
    }
    emit(e, ".img_c = %d, .img_h = %d, .img_w = %d,", image ? in->dim[1] : 1,
         image ? in->dim[2] : 1,
         image ? in->dim[3] : (int)(shape_elems(in) / g->batch));
    emit_schedule(e, t);
    if (t->val_fraction > 0)
        emit_double(e, "val_fraction", t->val_fraction);
    if (t->val_path)
        emit_c_string(e, "val_path", t->val_path);
    if (t->log_csv)
        emit_c_string(e, "log_csv", t->log_csv);
    if (t->early_stop) {
        emit(e, ".early_stop = 1,");
        emit(e, ".es_metric = %d,", (int)t->es_metric);
        emit(e, ".es_patience = %d,", t->es_patience);
        emit_double(e, "es_min_delta", t->es_min_delta);
    }
    if (t->best_path) {
        emit_c_string(e, "best_path", t->best_path);
        emit(e, ".best_metric = %d,", (int)t->best_metric);
    }
    if (t->every_path) {
        emit_c_string(e, "every_path", t->every_path);
        emit(e, ".every_epochs = %d,", t->every_epochs);
    }
    if (t->clip_norm > 0)
        emit_double(e, "clip_norm", t->clip_norm);
    if (t->clip_value > 0)
        emit_double(e, "clip_value", t->clip_value);
    if (nranges) {
        emit(e, ".grad_ranges = grad_ranges,");
        emit(e, ".ngrad_ranges = %d,", nranges);
    }
    if (t->init_from)
        emit_c_string(e, "init_from", t->init_from);
    if (t->aug_crop)
        emit(e, ".aug_crop = 1, .aug_padding = %d,", t->aug_padding);
    if (t->aug_flip > 0)
        emit_double(e, "aug_flip", t->aug_flip);
    emit_close(e, ";");
    emit(e, "return nnc_trainer_main(&config, argc, argv);");
    emit_close(e, NULL);
    emit_blank(e);
    emit(e, "#ifndef %s_NO_MAIN", upper);
    emit_open(e, "int main(int argc, char **argv)");
    emit(e, "return %s_main(argc, argv);", prefix);
    emit_close(e, NULL);
    emit(e, "#endif");
}
