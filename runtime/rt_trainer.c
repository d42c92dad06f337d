/* rt_trainer.c — the generated trainer's main loop.
 *
 * Embedded only with `nnc --main`. The generated file defines, before
 * embedding it, the model it drives:
 *   NNC_T_FN(f)      the model's function f (mnist_cnn_##f)
 *   NNC_T_MODEL      its struct type
 *   NNC_T_REAL       float or double
 *   NNC_T_LABEL      int32_t (class labels) or NNC_T_REAL (targets)
 *   NNC_T_BATCH, NNC_T_INPUT, NNC_T_OUTPUT, NNC_T_LABEL_SIZE, NNC_T_CLASSES
 * and passes an nnc_train_config built from the train block. Keeping the
 * loop here, as ordinary C, keeps the generated file short and the loop
 * testable on its own (tests/check_trainer.c drives it with a toy model).
 *
 * Command line and last lines are a stable contract:
 *   final: loss=... train_accuracy=... test_loss=... test_accuracy=...
 *   bench: steps=N ms_per_step=X samples_per_s=Y
 */
#include "nnc_rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NNC_DATA_NONE, NNC_DATA_TABLE, NNC_DATA_IDX, NNC_DATA_CSV,
       NNC_DATA_CIFAR10 };

enum { NNC_MAX_NORM = 16 };

typedef struct nnc_train_config {
    const char *model;     /* for messages */
    int epochs;
    int shuffle;
    uint64_t seed;
    int metric_accuracy;
    int log_every;         /* epochs between progress lines; 0: every one */
    int data_kind;
    const char *data_path; /* IDX or CIFAR-10 directory, or CSV file */
    const char *test_path; /* CSV test file or NULL */
    float scale, shift;
    int norm_channels;     /* CIFAR-10: (value - mean[c]) / std[c]; 0: none */
    float norm_mean[NNC_MAX_NORM], norm_std[NNC_MAX_NORM];
    int per_class;         /* report every class's accuracy at the end */
    const char *const *class_names; /* NNC_T_CLASSES names, or NULL */
    int csv_header, csv_label_col;
    const float *table_x, *table_y;
    int table_rows;
} nnc_train_config;

typedef struct nnc_train_args {
    int epochs;
    const char *data, *save, *load;
    uint64_t seed;
    int eval_only, quiet;
    long bench;
} nnc_train_args;

NNC_RT void nnc__trainer_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [--epochs N] [--data PATH] [--seed N] [--save FILE]\n"
            "          [--load FILE] [--eval] [--bench STEPS] [--quiet]\n"
            "  --epochs N     train N epochs instead of the train block's\n"
            "  --data PATH    IDX directory or CSV file instead of the train "
            "block's\n"
            "  --seed N       seed for initialisation and shuffling\n"
            "  --save FILE    write a safetensors checkpoint after training\n"
            "  --load FILE    start from a safetensors checkpoint\n"
            "  --eval         only evaluate (with --load, a trained model)\n"
            "  --bench STEPS  time STEPS training steps on synthetic data\n"
            "  --quiet        no progress lines, only the final line\n",
            prog);
}

NNC_RT int nnc__parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Returns 0 to go on, 1 to stop with success (--help), -1 on error. */
NNC_RT int nnc__parse_args(int argc, char **argv, const nnc_train_config *cfg,
                           nnc_train_args *a)
{
    memset(a, 0, sizeof *a);
    a->epochs = cfg->epochs;
    a->seed = cfg->seed;
    a->data = cfg->data_path;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        int has_value = i + 1 < argc;
        long v = 0;
        if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
            nnc__trainer_usage(stdout, argv[0]);
            return 1;
        } else if (!strcmp(opt, "--eval")) {
            a->eval_only = 1;
        } else if (!strcmp(opt, "--quiet")) {
            a->quiet = 1;
        } else if (!has_value) {
            fprintf(stderr, "%s: %s needs a value (see --help)\n", argv[0], opt);
            return -1;
        } else if (!strcmp(opt, "--epochs")) {
            if (nnc__parse_long(argv[++i], 1, 1000000000, &v))
                goto bad_number;
            a->epochs = (int)v;
        } else if (!strcmp(opt, "--seed")) {
            if (nnc__parse_long(argv[++i], 0, 0x7fffffffffffffffL, &v))
                goto bad_number;
            a->seed = (uint64_t)v;
        } else if (!strcmp(opt, "--bench")) {
            if (nnc__parse_long(argv[++i], 1, 100000000, &v))
                goto bad_number;
            a->bench = v;
        } else if (!strcmp(opt, "--data")) {
            a->data = argv[++i];
        } else if (!strcmp(opt, "--save")) {
            a->save = argv[++i];
        } else if (!strcmp(opt, "--load")) {
            a->load = argv[++i];
        } else {
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", argv[0],
                    opt);
            return -1;
        }
        continue;
    bad_number:
        fprintf(stderr, "%s: %s expects a positive integer, got '%s'\n",
                argv[0], opt, argv[i]);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* data                                                              */

NNC_RT int nnc__table_dataset(const nnc_train_config *cfg, nnc_dataset *d,
                              char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->n = (size_t)cfg->table_rows;
    d->x_size = NNC_T_INPUT;
    d->x = malloc(sizeof(float) * d->n * d->x_size);
    if (NNC_T_CLASSES) {
        d->nclasses = NNC_T_CLASSES;
        d->y = malloc(sizeof(int32_t) * d->n);
    } else {
        d->y_size = NNC_T_LABEL_SIZE;
        d->yf = malloc(sizeof(float) * d->n * d->y_size);
    }
    if (!d->x || (!d->y && !d->yf)) {
        snprintf(err, errlen, "out of memory for the table");
        nnc_dataset_free(d);
        return -1;
    }
    memcpy(d->x, cfg->table_x, sizeof(float) * d->n * d->x_size);
    for (size_t i = 0; i < d->n * NNC_T_LABEL_SIZE; i++) {
        if (NNC_T_CLASSES)
            d->y[i] = (int32_t)cfg->table_y[i];
        else
            d->yf[i] = cfg->table_y[i];
    }
    return 0;
}

/* CIFAR-10's binary batches in `dir`: data_batch_1..5.bin to train,
 * test_batch.bin to test. */
NNC_RT int nnc__cifar10_dataset(const nnc_train_config *cfg, const char *dir,
                                nnc_dataset *train, nnc_dataset *test,
                                char *err, size_t errlen)
{
    char names[6][4096];
    const char *paths[6];
    for (int i = 0; i < 6; i++) {
        if (i < 5)
            snprintf(names[i], sizeof names[i], "%s/data_batch_%d.bin", dir,
                     i + 1);
        else
            snprintf(names[i], sizeof names[i], "%s/test_batch.bin", dir);
        paths[i] = names[i];
    }
    const float *mean = cfg->norm_channels ? cfg->norm_mean : NULL;
    const float *std = cfg->norm_channels ? cfg->norm_std : NULL;
    if (nnc_cifar_load(paths, 5, cfg->scale, mean, std, train, err, errlen))
        return -1;
    if (nnc_cifar_load(paths + 5, 1, cfg->scale, mean, std, test, err,
                       errlen)) {
        nnc_dataset_free(train);
        return -1;
    }
    return 0;
}

/* Loads the training set and, where there is one, the test set. */
NNC_RT int nnc__load_data(const nnc_train_config *cfg, const char *path,
                          nnc_dataset *train, nnc_dataset *test, int *has_test,
                          char *err, size_t errlen)
{
    *has_test = 0;
    switch (cfg->data_kind) {
    case NNC_DATA_TABLE:
        return nnc__table_dataset(cfg, train, err, errlen);
    case NNC_DATA_IDX:
        if (nnc_idx_load_split(path, "train", NNC_T_INPUT, NNC_T_CLASSES,
                               cfg->scale, cfg->shift, train, err, errlen))
            return -1;
        if (nnc_idx_load_split(path, "t10k", NNC_T_INPUT, NNC_T_CLASSES,
                               cfg->scale, cfg->shift, test, err, errlen)) {
            nnc_dataset_free(train);
            return -1;
        }
        *has_test = 1;
        return 0;
    case NNC_DATA_CIFAR10:
        if (nnc__cifar10_dataset(cfg, path, train, test, err, errlen))
            return -1;
        *has_test = 1;
        return 0;
    case NNC_DATA_CSV:
        if (nnc_csv_load(path, NNC_T_INPUT, cfg->csv_label_col, NNC_T_CLASSES,
                         NNC_T_CLASSES ? 0 : NNC_T_LABEL_SIZE, cfg->csv_header,
                         cfg->scale, cfg->shift, train, err, errlen))
            return -1;
        if (cfg->test_path) {
            if (nnc_csv_load(cfg->test_path, NNC_T_INPUT, cfg->csv_label_col,
                             NNC_T_CLASSES, NNC_T_CLASSES ? 0 : NNC_T_LABEL_SIZE,
                             cfg->csv_header, cfg->scale, cfg->shift, test, err,
                             errlen)) {
                nnc_dataset_free(train);
                return -1;
            }
            *has_test = 1;
        }
        return 0;
    default:
        snprintf(err, errlen, "the train block of '%s' declares no data",
                 cfg->model);
        return -1;
    }
}

/* Copies samples idx[0..rows) into one batch; rows < batch repeats them
 * cyclically so evaluation of a partial batch averages real samples. */
NNC_RT void nnc__gather(const nnc_dataset *d, const int32_t *idx, int rows,
                        NNC_T_REAL *x, NNC_T_LABEL *y)
{
    for (int b = 0; b < NNC_T_BATCH; b++) {
        size_t s = (size_t)idx[b % rows];
        const float *src = d->x + s * NNC_T_INPUT;
        for (int i = 0; i < NNC_T_INPUT; i++)
            x[(size_t)b * NNC_T_INPUT + i] = (NNC_T_REAL)src[i];
        for (int i = 0; i < NNC_T_LABEL_SIZE; i++)
            y[(size_t)b * NNC_T_LABEL_SIZE + i] =
                d->y ? (NNC_T_LABEL)d->y[s]
                     : (NNC_T_LABEL)d->yf[s * NNC_T_LABEL_SIZE + i];
    }
}

NNC_RT int nnc__argmax(const NNC_T_REAL *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* Per class: samples seen and samples right (class labels only). */
typedef struct nnc_class_tally {
    long total[NNC_T_CLASSES + 1], correct[NNC_T_CLASSES + 1];
} nnc_class_tally;

/* How many of the first `rows` samples the outputs get right: the arg max
 * for classes and one-hot targets, a 0.5 threshold for one output. Class
 * labels are also tallied per class when `tally` is given. */
NNC_RT int nnc__count_correct(const NNC_T_REAL *out, const NNC_T_LABEL *y,
                              int rows, nnc_class_tally *tally)
{
    int correct = 0;
    for (int b = 0; b < rows; b++) {
        const NNC_T_REAL *o = out + (size_t)b * NNC_T_OUTPUT;
        const NNC_T_LABEL *t = y + (size_t)b * NNC_T_LABEL_SIZE;
        if (NNC_T_CLASSES) {
            int label = (int)t[0], right = nnc__argmax(o, NNC_T_OUTPUT) == label;
            correct += right;
            if (tally && label >= 0 && label < NNC_T_CLASSES) {
                tally->total[label]++;
                tally->correct[label] += right;
            }
        } else if (NNC_T_OUTPUT == 1)
            correct += (o[0] >= 0.5) == (t[0] >= 0.5);
        else
            correct += nnc__argmax(o, NNC_T_OUTPUT) ==
                       nnc__argmax((const NNC_T_REAL *)(const void *)t,
                                   NNC_T_OUTPUT);
    }
    return correct;
}

typedef struct nnc_buffers {
    NNC_T_REAL *x, *out;
    NNC_T_LABEL *y;
    int32_t *order;
} nnc_buffers;

NNC_RT int nnc__buffers_new(nnc_buffers *b, size_t n)
{
    b->x = malloc(sizeof(NNC_T_REAL) * NNC_T_BATCH * NNC_T_INPUT);
    b->out = malloc(sizeof(NNC_T_REAL) * NNC_T_BATCH * NNC_T_OUTPUT);
    b->y = malloc(sizeof(NNC_T_LABEL) * NNC_T_BATCH * NNC_T_LABEL_SIZE);
    b->order = malloc(sizeof(int32_t) * (n > NNC_T_BATCH ? n : NNC_T_BATCH));
    return b->x && b->out && b->y && b->order ? 0 : -1;
}

NNC_RT void nnc__buffers_free(nnc_buffers *b)
{
    free(b->x);
    free(b->out);
    free(b->y);
    free(b->order);
}

/* Evaluation-mode mean loss and accuracy over a whole dataset; per
 * class into `tally` unless it is NULL. */
NNC_RT int nnc__evaluate(NNC_T_MODEL *m, const nnc_dataset *d, nnc_buffers *b,
                         double *loss, double *accuracy,
                         nnc_class_tally *tally)
{
    if (tally)
        memset(tally, 0, sizeof *tally);
    double total = 0;
    long correct = 0, batches = 0;
    for (size_t at = 0; at < d->n; at += NNC_T_BATCH) {
        int rows = d->n - at < NNC_T_BATCH ? (int)(d->n - at) : NNC_T_BATCH;
        for (int i = 0; i < rows; i++)
            b->order[i] = (int32_t)(at + (size_t)i);
        nnc__gather(d, b->order, rows, b->x, b->y);
        NNC_T_REAL l = NNC_T_FN(evaluate)(m, b->x, b->y, b->out);
        if (l != l)
            return -1;
        total += (double)l;
        batches++;
        correct += nnc__count_correct(b->out, b->y, rows, tally);
    }
    *loss = batches ? total / (double)batches : 0;
    *accuracy = d->n ? (double)correct / (double)d->n : 0;
    return 0;
}

/* ---------------------------------------------------------------- */
/* the three jobs: bench, evaluate, train                             */

NNC_RT int nnc__bench(NNC_T_MODEL *m, long steps, uint64_t seed)
{
    nnc_buffers b;
    nnc_rng rng;
    nnc_rng_seed(&rng, seed);
    if (nnc__buffers_new(&b, NNC_T_BATCH)) {
        nnc__buffers_free(&b);
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    for (int i = 0; i < NNC_T_BATCH * NNC_T_INPUT; i++)
        b.x[i] = (NNC_T_REAL)nnc_rng_uniform(&rng);
    for (int i = 0; i < NNC_T_BATCH * NNC_T_LABEL_SIZE; i++)
        b.y[i] = NNC_T_CLASSES
                     ? (NNC_T_LABEL)nnc_rng_below(&rng, NNC_T_CLASSES ? NNC_T_CLASSES : 1)
                     : (NNC_T_LABEL)(nnc_rng_uniform(&rng) < 0.5);
    for (int i = 0; i < 3; i++) /* warm-up: caches, page faults, threads */
        NNC_T_FN(train_step)(m, b.x, b.y);
    double t0 = nnc_now();
    for (long i = 0; i < steps; i++)
        NNC_T_FN(train_step)(m, b.x, b.y);
    double ms = (nnc_now() - t0) * 1000.0 / (double)steps;
    printf("bench: steps=%ld ms_per_step=%.4f samples_per_s=%.0f\n", steps, ms,
           NNC_T_BATCH * 1000.0 / ms);
    nnc__buffers_free(&b);
    return 0;
}

NNC_RT void nnc__print_table_predictions(NNC_T_MODEL *m, const nnc_dataset *d)
{
    NNC_T_REAL x[NNC_T_INPUT], out[NNC_T_OUTPUT];
    for (size_t s = 0; s < d->n; s++) {
        for (int i = 0; i < NNC_T_INPUT; i++)
            x[i] = (NNC_T_REAL)d->x[s * NNC_T_INPUT + i];
        NNC_T_FN(predict)(m, x, 1, out);
        printf("predict:");
        for (int i = 0; i < NNC_T_INPUT; i++)
            printf(" %g", (double)x[i]);
        printf(" ->");
        for (int i = 0; i < NNC_T_OUTPUT; i++)
            printf(" %.4f", (double)out[i]);
        if (d->y)
            printf("  (class %d)\n", (int)d->y[s]);
        else
            printf("  (target %g)\n", (double)d->yf[s * NNC_T_LABEL_SIZE]);
    }
}

typedef struct nnc_run {
    const nnc_train_config *cfg;
    const nnc_train_args *args;
    NNC_T_MODEL *m;
    nnc_dataset train, test;
    int has_test;
    nnc_buffers b;
    nnc_progress progress; /* one per run: it keeps the totals for the ETA */
    double last_loss, last_accuracy;
} nnc_run;

NNC_RT int nnc__train_epoch(nnc_run *r, int epoch, nnc_rng *rng)
{
    const nnc_dataset *d = &r->train;
    long steps = (long)(d->n / NNC_T_BATCH);
    int quiet = r->args->quiet;
    nnc_progress *p = &r->progress;
    for (size_t i = 0; i < d->n; i++)
        r->b.order[i] = (int32_t)i;
    if (r->cfg->shuffle)
        nnc_rng_shuffle(rng, r->b.order, d->n);
    nnc_progress_begin(p, stderr, epoch, r->args->epochs, steps, NNC_T_BATCH,
                       quiet);
    long correct = 0;
    for (long s = 0; s < steps; s++) {
        nnc__gather(d, r->b.order + s * NNC_T_BATCH, NNC_T_BATCH, r->b.x, r->b.y);
        NNC_T_REAL loss = NNC_T_FN(train_step)(r->m, r->b.x, r->b.y);
        if (!isfinite((double)loss)) {
            nnc_progress_end(p);
            fprintf(stderr, "error: the loss became %s at epoch %d, step %ld%s%s"
                    "\n", loss != loss ? "NaN" : "infinite", epoch, s + 1,
                    NNC_T_FN(error)(r->m)[0] ? ": " : "",
                    NNC_T_FN(error)(r->m));
            return -1;
        }
        if (r->cfg->metric_accuracy)
            correct += nnc__count_correct(NNC_T_FN(train_output)(r->m), r->b.y,
                                          NNC_T_BATCH, NULL);
        nnc_progress_step(p, s + 1, (double)loss);
    }
    nnc_progress_end(p);
    r->last_loss = p->mean_loss;
    r->last_accuracy = (double)correct / (double)(steps * NNC_T_BATCH);
    int every = r->cfg->log_every > 0 ? r->cfg->log_every : 1;
    if (quiet || (epoch % every != 0 && epoch != 1 && epoch != r->args->epochs))
        return 0;
    printf("epoch %d/%d  loss %.4f", epoch, r->args->epochs, r->last_loss);
    if (r->cfg->metric_accuracy)
        printf("  train_accuracy %.4f", r->last_accuracy);
    if (r->has_test) {
        double tl, ta;
        if (nnc__evaluate(r->m, &r->test, &r->b, &tl, &ta, NULL) == 0) {
            printf("  test_loss %.4f", tl);
            if (r->cfg->metric_accuracy)
                printf("  test_accuracy %.4f", ta);
        }
    }
    printf("  %.1fs  %.0f samples/s\n", p->seconds, p->samples_per_s);
    fflush(stdout);
    return 0;
}

/* Each class's accuracy, as the seed's CIFAR-10 tutorial prints it. */
NNC_RT void nnc__print_per_class(const nnc_train_config *cfg,
                                 const nnc_class_tally *tally, const char *set)
{
    printf("per-class %s accuracy:\n", set);
    for (int c = 0; c < NNC_T_CLASSES; c++) {
        char number[16];
        snprintf(number, sizeof number, "%d", c);
        const char *name = cfg->class_names ? cfg->class_names[c] : number;
        double acc = tally->total[c] ? (double)tally->correct[c] /
                                           (double)tally->total[c]
                                     : 0;
        printf("  %-12s %.4f  (%ld/%ld)\n", name, acc, tally->correct[c],
               tally->total[c]);
    }
}

NNC_RT int nnc__final_report(nnc_run *r, int trained, double seconds)
{
    double train_loss = 0, train_acc = 0, test_loss = 0, test_acc = 0;
    nnc_class_tally tally;
    int per_class = r->cfg->per_class && NNC_T_CLASSES && !r->args->quiet;
    nnc_class_tally *train_tally = per_class && !r->has_test ? &tally : NULL;
    nnc_class_tally *test_tally = per_class && r->has_test ? &tally : NULL;
    if (nnc__evaluate(r->m, &r->train, &r->b, &train_loss, &train_acc,
                      train_tally) ||
        (r->has_test && nnc__evaluate(r->m, &r->test, &r->b, &test_loss,
                                      &test_acc, test_tally))) {
        fprintf(stderr, "error: evaluation produced NaN: %s\n",
                NNC_T_FN(error)(r->m));
        return -1;
    }
    if (r->cfg->data_kind == NNC_DATA_TABLE && r->train.n <= 16 &&
        !r->args->quiet)
        nnc__print_table_predictions(r->m, &r->train);
    if (per_class)
        nnc__print_per_class(r->cfg, &tally, r->has_test ? "test" : "train");
    printf("final: loss=%.4f", trained ? r->last_loss : train_loss);
    if (r->cfg->metric_accuracy)
        printf(" train_accuracy=%.4f", train_acc);
    if (r->has_test) {
        printf(" test_loss=%.4f", test_loss);
        if (r->cfg->metric_accuracy)
            printf(" test_accuracy=%.4f", test_acc);
    }
    printf(" eval_train_loss=%.4f epochs=%d seconds=%.1f\n", train_loss,
           trained ? r->args->epochs : 0, seconds);
    return 0;
}

NNC_RT int nnc__train_and_report(nnc_run *r)
{
    const nnc_train_args *a = r->args;
    char err[1024];
    if (nnc__load_data(r->cfg, a->data, &r->train, &r->test, &r->has_test, err,
                       sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    if (nnc__buffers_new(&r->b, r->train.n)) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    if (!a->eval_only && r->train.n < NNC_T_BATCH) {
        fprintf(stderr, "error: the batch (%d) is larger than the training set "
                "(%zu samples)\n", NNC_T_BATCH, r->train.n);
        return 1;
    }
    if (!a->quiet)
        printf("%s: %zu training samples%s, batch %d, %d epochs\n", r->cfg->model,
               r->train.n, r->has_test ? " and a test set" : "", NNC_T_BATCH,
               a->epochs);
    double t0 = nnc_now();
    nnc_rng rng;
    nnc_rng_seed(&rng, a->seed ^ 0x5348554646u); /* shuffling's own stream */
    for (int e = 1; !a->eval_only && e <= a->epochs; e++)
        if (nnc__train_epoch(r, e, &rng))
            return 1;
    if (nnc__final_report(r, !a->eval_only, nnc_now() - t0))
        return 1;
    if (a->save && NNC_T_FN(save)(r->m, a->save)) {
        fprintf(stderr, "error: %s\n", NNC_T_FN(error)(r->m));
        return 1;
    }
    return 0;
}

NNC_RT int nnc_trainer_main(const nnc_train_config *cfg, int argc, char **argv)
{
    nnc_train_args a;
    int parsed = nnc__parse_args(argc, argv, cfg, &a);
    if (parsed)
        return parsed > 0 ? 0 : 2;
    nnc_run r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    r.args = &a;
    r.m = NNC_T_FN(new)(a.seed);
    if (!r.m) {
        fprintf(stderr, "error: out of memory creating the model\n");
        return 1;
    }
    int status = 0;
    if (a.load && NNC_T_FN(load)(r.m, a.load)) {
        fprintf(stderr, "error: %s\n", NNC_T_FN(error)(r.m));
        status = 1;
    } else if (a.bench) {
        status = nnc__bench(r.m, a.bench, a.seed);
    } else {
        status = nnc__train_and_report(&r);
    }
    nnc__buffers_free(&r.b);
    nnc_dataset_free(&r.train);
    nnc_dataset_free(&r.test);
    NNC_T_FN(free)(r.m);
    return status;
}
