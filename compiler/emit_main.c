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
    size_t at = 0;
    for (const char *p = s; *p && at < sizeof buf - 8; p++) {
        if (*p == '"' || *p == '\\')
            buf[at++] = '\\';
        buf[at++] = *p;
    }
    buf[at] = '\0';
    emit(e, ".%s = \"%s\",", field, buf);
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
    if (t->nclass_names)
        emit(e, ".class_names = class_names,");
    if (t->data == DATA_TABLE) {
        emit(e, ".table_x = table_x,");
        emit(e, ".table_y = table_y,");
        emit(e, ".table_rows = %d,", t->table_rows);
    }
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
