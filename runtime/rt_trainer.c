/* rt_trainer.c — the generated trainer's main loop.
 *
 * Embedded only with `nnc --main`. The generated file defines, before
 * embedding it, the model it drives:
 *   NNC_T_FN(f)      the model's function f (mnist_cnn_##f)
 *   NNC_T_MODEL      its struct type
 *   NNC_T_REAL       float or double
 *   NNC_T_LABEL      int32_t (class labels) or NNC_T_REAL (targets)
 *   NNC_T_BATCH, NNC_T_INPUT, NNC_T_OUTPUT, NNC_T_LABEL_SIZE, NNC_T_CLASSES
 *   NNC_T_PROFILE    (nnc --profile only) the model times its kernels, and
 *                    training and --bench end with its table, on stderr
 * and passes an nnc_train_config built from the train block. Keeping the
 * loop here, as ordinary C, keeps the generated file short and the loop
 * readable on its own.
 *
 * One epoch: the learning rate for the epoch (schedule, warm-up), shuffled
 * batches (augmented: random crop, horizontal flip), each step
 * compute_gradients -> clipping -> apply_update; then validation and test
 * evaluation, the epoch line and the CSV log, the best checkpoint, the
 * schedule's step, early stopping, the periodic (resumable) checkpoint.
 * Every random choice comes from a stream seeded by the seed, and the
 * streams' states are saved in the resumable checkpoint with the optimizer
 * state, so `--resume` continues bit for bit (same thread count).
 *
 * Command line and last lines are a stable contract:
 *   final: loss=... train_accuracy=... test_loss=... test_accuracy=...
 *   bench: steps=N ms_per_step=X samples_per_s=Y
 */
#include "nnc_rt.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

enum { NNC_DATA_NONE, NNC_DATA_TABLE, NNC_DATA_IDX, NNC_DATA_CSV,
       NNC_DATA_CIFAR10 };

enum { NNC_MAX_NORM = 16 };

/* learning-rate schedules (torch.optim.lr_scheduler) */
enum { NNC_SCHED_NONE, NNC_SCHED_STEP, NNC_SCHED_MULTI_STEP,
       NNC_SCHED_EXPONENTIAL, NNC_SCHED_COSINE, NNC_SCHED_PLATEAU };

/* the epoch's figures, which settings may watch (names as on the line) */
enum { NNC_W_LOSS, NNC_W_TRAIN_ACCURACY, NNC_W_VAL_LOSS, NNC_W_VAL_ACCURACY,
       NNC_W_TEST_LOSS, NNC_W_TEST_ACCURACY, NNC_W__COUNT };

static const char *const nnc__watch_names[NNC_W__COUNT] = {
    "loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
    "test_accuracy",
};

typedef struct nnc_schedule {
    int kind;              /* NNC_SCHED_* */
    double base_lr;        /* the optimizer's lr */
    int step_size;         /* step */
    double gamma;          /* step, multi_step, exponential */
    const int *milestones; /* multi_step, increasing */
    int nmilestones;
    int t_max;             /* cosine */
    double eta_min;
    int metric;            /* reduce_on_plateau: NNC_W_* */
    int mode_max, threshold_abs, patience, cooldown;
    double factor, threshold, min_lr, eps;
    int warmup_epochs;     /* LinearLR over epochs, then the schedule */
    int warmup_steps;      /* or over the first optimizer steps */
    double warmup_start;   /* LinearLR's start_factor */
} nnc_schedule;

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
    int norm_channels;     /* (value - mean[c]) / std[c]; 0: none */
    float norm_mean[NNC_MAX_NORM], norm_std[NNC_MAX_NORM];
    int per_class;         /* report every class's accuracy at the end */
    const char *const *class_names; /* NNC_T_CLASSES names, or NULL */
    int csv_header, csv_label_col;
    const float *table_x, *table_y;
    int table_rows;
    /* the sample's image shape [C, H, W] (1, 1, input size when flat) */
    int img_c, img_h, img_w;
    nnc_schedule schedule;
    double val_fraction;   /* held out of the training set, or */
    const char *val_path;  /* a CSV file of its own */
    int confusion;         /* confusion matrix at the end */
    const char *log_csv;   /* per-epoch figures */
    int early_stop, es_metric, es_patience;
    double es_min_delta;
    const char *best_path; /* weights of the best epoch by best_metric */
    int best_metric;
    const char *every_path; /* training state every every_epochs epochs */
    int every_epochs;
    double clip_norm, clip_value; /* 0: off */
    const long *grad_ranges; /* (offset, count) pairs of the trained params */
    int ngrad_ranges;
    const char *init_from; /* weights loaded by name before training */
    int aug_crop, aug_padding;
    double aug_flip;       /* probability; 0: off */
} nnc_train_config;

typedef struct nnc_train_args {
    int epochs;
    const char *data, *save, *load, *resume, *log_csv;
    uint64_t seed;
    int eval_only, quiet, keep_subnormals;
    long bench;
} nnc_train_args;

NNC_RT void nnc__trainer_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [--epochs N] [--data PATH] [--seed N] [--save FILE]\n"
            "          [--load FILE] [--resume FILE] [--log-csv FILE] [--eval]\n"
            "          [--bench STEPS] [--quiet] [--keep-subnormals]\n"
            "  --epochs N      train until epoch N instead of the train block's\n"
            "  --data PATH     IDX or CIFAR-10 directory or CSV file instead of "
            "the\n"
            "                  train block's\n"
            "  --seed N        seed for initialisation, shuffling, the "
            "validation\n"
            "                  split and augmentation\n"
            "  --save FILE     write the weights (safetensors) after training\n"
            "  --load FILE     start from the weights of a checkpoint\n"
            "  --resume FILE   continue a run from a checkpoint every(...) "
            "state\n"
            "  --log-csv FILE  write each epoch's figures to FILE\n"
            "  --eval          only evaluate (with --load, a trained model)\n"
            "  --bench STEPS   time STEPS training steps on synthetic data\n"
            "  --quiet         no progress lines, only the final line\n"
            "  --keep-subnormals\n"
            "                  compute with subnormal numbers (below 1.2e-38)\n"
            "                  instead of flushing them to zero: slower when\n"
            "                  values underflow, bit for bit as PyTorch by default\n",
            prog);
}

NNC_RT int nnc__parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Returns 0 to go on, 1 to stop with success (--help), -1 on error. */
NNC_RT int nnc__parse_args(int argc, char **argv, const nnc_train_config *cfg,
                           nnc_train_args *a)
{
    static const char *const with_value[] = {"--epochs", "--seed", "--bench",
        "--data", "--save", "--load", "--resume", "--log-csv"};
    memset(a, 0, sizeof *a);
    a->epochs = cfg->epochs;
    a->seed = cfg->seed;
    a->data = cfg->data_path;
    a->log_csv = cfg->log_csv;
    int data_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        long v = 0;
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            known = known || !strcmp(opt, with_value[k]);
        if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
            nnc__trainer_usage(stdout, argv[0]);
            return 1;
        } else if (!strcmp(opt, "--eval")) {
            a->eval_only = 1;
            continue;
        } else if (!strcmp(opt, "--quiet")) {
            a->quiet = 1;
            continue;
        } else if (!strcmp(opt, "--keep-subnormals")) {
            a->keep_subnormals = 1;
            continue;
        } else if (!known) {
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", argv[0],
                    opt);
            return -1;
        } else if (i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value (see --help)\n", argv[0], opt);
            return -1;
        }
        const char *value = argv[++i];
        if (!strcmp(opt, "--epochs")) {
            if (nnc__parse_long(value, 1, 1000000000, &v))
                goto bad_positive;
            a->epochs = (int)v;
        } else if (!strcmp(opt, "--seed")) {
            if (nnc__parse_long(value, 0, 0x7fffffffffffffffL, &v)) {
                fprintf(stderr, "%s: --seed expects an integer from 0 to "
                        "9223372036854775807, got '%s'\n", argv[0], value);
                return -1;
            }
            a->seed = (uint64_t)v;
        } else if (!strcmp(opt, "--bench")) {
            if (nnc__parse_long(value, 1, 100000000, &v))
                goto bad_positive;
            a->bench = v;
        } else if (!strcmp(opt, "--data")) {
            a->data = value;
            data_given = 1;
        } else if (!strcmp(opt, "--save")) {
            a->save = value;
        } else if (!strcmp(opt, "--load")) {
            a->load = value;
        } else if (!strcmp(opt, "--resume")) {
            a->resume = value;
        } else {
            a->log_csv = value;
        }
        continue;
    bad_positive:
        fprintf(stderr, "%s: %s expects a positive integer, got '%s'\n",
                argv[0], opt, value);
        return -1;
    }
    if (data_given && cfg->data_kind == NNC_DATA_TABLE) {
        fprintf(stderr, "%s: --data does not apply: the data of '%s' is a "
                "table in its .nn file\n", argv[0], cfg->model);
        return -1;
    }
    if (a->load && a->resume) {
        fprintf(stderr, "%s: --load and --resume both say where to start; "
                "give one\n", argv[0]);
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

NNC_RT int nnc__csv_dataset(const nnc_train_config *cfg, const char *path,
                            nnc_dataset *d, char *err, size_t errlen)
{
    if (nnc_csv_load(path, NNC_T_INPUT, cfg->csv_label_col, NNC_T_CLASSES,
                     NNC_T_CLASSES ? 0 : NNC_T_LABEL_SIZE, cfg->csv_header,
                     cfg->scale, cfg->shift, d, err, errlen))
        return -1;
    /* per-channel normalisation of [C, H, W] samples (CIFAR-10 batches
     * are normalised as they load; one channel folds into scale, shift) */
    size_t plane = (size_t)cfg->img_h * (size_t)cfg->img_w;
    for (size_t s = 0; cfg->norm_channels && s < d->n; s++)
        for (int c = 0; c < cfg->norm_channels; c++) {
            float *x = d->x + s * NNC_T_INPUT + (size_t)c * plane;
            for (size_t i = 0; i < plane; i++)
                x[i] = (x[i] - cfg->norm_mean[c]) / cfg->norm_std[c];
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
        if (nnc__csv_dataset(cfg, path, train, err, errlen))
            return -1;
        if (cfg->test_path) {
            if (nnc__csv_dataset(cfg, cfg->test_path, test, err, errlen)) {
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

/* Holds round(n * fraction) samples, at least one, out of the training
 * set: a permutation from the seed picks them; both parts keep the
 * samples' original order. The training rows move down in place, the
 * validation rows are copied out. */
NNC_RT int nnc__split_validation(nnc_dataset *train, double fraction,
                                 uint64_t seed, nnc_dataset *val, char *err,
                                 size_t errlen)
{
    size_t n = train->n, nval = (size_t)((double)n * fraction + 0.5);
    if (nval < 1)
        nval = 1;
    if (nval >= n) {
        snprintf(err, errlen, "validation %g of %zu samples leaves none to "
                 "train on", fraction, n);
        return -1;
    }
    int32_t *perm = malloc(sizeof(int32_t) * n);
    unsigned char *held = calloc(n, 1);
    memset(val, 0, sizeof *val);
    val->n = nval;
    val->x_size = train->x_size;
    val->y_size = train->y_size;
    val->nclasses = train->nclasses;
    val->x = malloc(sizeof(float) * nval * train->x_size);
    if (train->y)
        val->y = malloc(sizeof(int32_t) * nval);
    else
        val->yf = malloc(sizeof(float) * nval * train->y_size);
    if (!perm || !held || !val->x || (!val->y && !val->yf)) {
        free(perm);
        free(held);
        nnc_dataset_free(val);
        snprintf(err, errlen, "out of memory for the validation set");
        return -1;
    }
    nnc_rng rng;
    nnc_rng_seed(&rng, seed ^ 0x56414c4944415445u); /* the split's stream */
    for (size_t i = 0; i < n; i++)
        perm[i] = (int32_t)i;
    nnc_rng_shuffle(&rng, perm, n);
    for (size_t i = 0; i < nval; i++)
        held[perm[i]] = 1;
    size_t at_train = 0, at_val = 0, xs = train->x_size, ys = train->y_size;
    for (size_t s = 0; s < n; s++) {
        size_t to = held[s] ? at_val++ : at_train++;
        float *x = held[s] ? val->x : train->x;
        memmove(x + to * xs, train->x + s * xs, sizeof(float) * xs);
        if (train->y)
            (held[s] ? val->y : train->y)[to] = train->y[s];
        else
            memmove((held[s] ? val->yf : train->yf) + to * ys,
                    train->yf + s * ys, sizeof(float) * ys);
    }
    train->n = at_train;
    free(perm);
    free(held);
    return 0;
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

/* Training batches only, as torchvision's RandomCrop(size, padding) then
 * RandomHorizontalFlip(p): per sample, a crop offset in [0, 2 * padding]
 * down and across the zero-padded image, then a flip with probability p.
 * Padding is what a raw 0 becomes after scaling and normalisation. */
NNC_RT void nnc__augment(const nnc_train_config *cfg, nnc_rng *rng,
                         NNC_T_REAL *x, NNC_T_REAL *scratch)
{
    const int C = cfg->img_c, H = cfg->img_h, W = cfg->img_w;
    const int pad = cfg->aug_crop ? cfg->aug_padding : 0;
    for (int b = 0; b < NNC_T_BATCH; b++) {
        NNC_T_REAL *img = x + (size_t)b * NNC_T_INPUT;
        int dy = 0, dx = 0, flip = 0;
        if (cfg->aug_crop) {
            dy = (int)nnc_rng_below(rng, (uint64_t)(2 * pad + 1));
            dx = (int)nnc_rng_below(rng, (uint64_t)(2 * pad + 1));
        }
        if (cfg->aug_flip > 0)
            flip = nnc_rng_uniform(rng) < cfg->aug_flip;
        if (dy == pad && dx == pad && !flip)
            continue;
        memcpy(scratch, img, sizeof(NNC_T_REAL) * NNC_T_INPUT);
        for (int c = 0; c < C; c++) {
            double fill = cfg->shift;
            if (c < cfg->norm_channels)
                fill = (fill - cfg->norm_mean[c]) / cfg->norm_std[c];
            const NNC_T_REAL *src = scratch + (size_t)c * H * W;
            NNC_T_REAL *dst = img + (size_t)c * H * W;
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) {
                    int si = i + dy - pad, sj = (flip ? W - 1 - j : j) + dx - pad;
                    dst[i * W + j] = si >= 0 && si < H && sj >= 0 && sj < W
                                         ? src[si * W + sj]
                                         : (NNC_T_REAL)fill;
                }
        }
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

/* Per class: samples seen, samples right, and (when confusion is not NULL)
 * the confusion matrix, true class by row (class labels only). */
typedef struct nnc_class_tally {
    long total[NNC_T_CLASSES + 1], correct[NNC_T_CLASSES + 1];
    long *confusion; /* NNC_T_CLASSES * NNC_T_CLASSES, or NULL */
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
            int label = (int)t[0], guess = nnc__argmax(o, NNC_T_OUTPUT);
            int right = guess == label;
            correct += right;
            if (tally && label >= 0 && label < NNC_T_CLASSES) {
                tally->total[label]++;
                tally->correct[label] += right;
                if (tally->confusion && guess < NNC_T_CLASSES)
                    tally->confusion[label * NNC_T_CLASSES + guess]++;
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
    NNC_T_REAL *x, *out, *scratch;
    NNC_T_LABEL *y;
    int32_t *order;
} nnc_buffers;

NNC_RT int nnc__buffers_new(nnc_buffers *b, size_t n)
{
    b->x = malloc(sizeof(NNC_T_REAL) * NNC_T_BATCH * NNC_T_INPUT);
    b->out = malloc(sizeof(NNC_T_REAL) * NNC_T_BATCH * NNC_T_OUTPUT);
    b->scratch = malloc(sizeof(NNC_T_REAL) * NNC_T_INPUT);
    b->y = malloc(sizeof(NNC_T_LABEL) * NNC_T_BATCH * NNC_T_LABEL_SIZE);
    b->order = malloc(sizeof(int32_t) * (n > NNC_T_BATCH ? n : NNC_T_BATCH));
    return b->x && b->out && b->scratch && b->y && b->order ? 0 : -1;
}

NNC_RT void nnc__buffers_free(nnc_buffers *b)
{
    free(b->x);
    free(b->out);
    free(b->scratch);
    free(b->y);
    free(b->order);
}

/* Evaluation-mode mean loss and accuracy over a whole dataset; per
 * class into `tally` unless it is NULL. */
NNC_RT int nnc__evaluate(NNC_T_MODEL *m, const nnc_dataset *d, nnc_buffers *b,
                         double *loss, double *accuracy,
                         nnc_class_tally *tally)
{
    if (tally) {
        memset(tally->total, 0, sizeof tally->total);
        memset(tally->correct, 0, sizeof tally->correct);
        if (tally->confusion)
            memset(tally->confusion, 0,
                   sizeof(long) * NNC_T_CLASSES * NNC_T_CLASSES);
    }
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
/* the learning rate: torch.optim.lr_scheduler's recurrences          */

/* The schedule's state; a SequentialLR of a LinearLR warm-up and the
 * schedule when warmup_epochs > 0. */
typedef struct nnc_sched_state {
    long epoch;            /* epochs finished */
    long last_epoch;       /* the running scheduler's last_epoch */
    double lr;             /* its param_group['lr'] */
    double best;           /* reduce_on_plateau */
    long num_bad, cooldown_counter;
} nnc_sched_state;

NNC_RT void nnc__sched_init(const nnc_schedule *s, nnc_sched_state *st)
{
    memset(st, 0, sizeof *st);
    st->lr = s->warmup_epochs ? s->base_lr * s->warmup_start : s->base_lr;
    st->best = s->mode_max ? -INFINITY : INFINITY;
}

NNC_RT int nnc__plateau_better(const nnc_schedule *s, double a, double best)
{
    if (!s->mode_max && !s->threshold_abs)
        return a < best * (1. - s->threshold);
    if (!s->mode_max)
        return a < best - s->threshold;
    if (!s->threshold_abs)
        return a > best * (s->threshold + 1.);
    return a > best + s->threshold;
}

/* scheduler.step() at the end of an epoch (reduce_on_plateau:
 * scheduler.step(metric)); the learning rate of the next epoch. */
NNC_RT void nnc__sched_step(const nnc_schedule *s, nnc_sched_state *st,
                            double metric)
{
    const double pi = 3.141592653589793;
    st->epoch++;
    if (s->warmup_epochs && st->epoch < s->warmup_epochs) {
        /* LinearLR(start_factor, 1.0, total_iters = warmup_epochs) */
        long t = ++st->last_epoch;
        double f = s->warmup_start;
        st->lr = st->lr * (1. + (1.0 - f) / ((double)s->warmup_epochs * f +
                                             (double)(t - 1) * (1.0 - f)));
        return;
    }
    if (s->warmup_epochs && st->epoch == s->warmup_epochs) {
        /* SequentialLR's milestone: the schedule's step(0) */
        st->last_epoch = 0;
        st->lr = s->base_lr;
        return;
    }
    long e = ++st->last_epoch;
    switch (s->kind) {
    case NNC_SCHED_STEP:
        if (e % s->step_size == 0)
            st->lr = st->lr * s->gamma;
        break;
    case NNC_SCHED_MULTI_STEP:
        for (int i = 0; i < s->nmilestones; i++)
            if (s->milestones[i] == e)
                st->lr = st->lr * s->gamma;
        break;
    case NNC_SCHED_EXPONENTIAL:
        st->lr = st->lr * s->gamma;
        break;
    case NNC_SCHED_COSINE: {
        double T = s->t_max;
        if ((e - 1 - s->t_max) % (2 * (long)s->t_max) == 0)
            st->lr = st->lr + (s->base_lr - s->eta_min) *
                                  (1 - cos(pi / T)) / 2;
        else
            st->lr = (1 + cos(pi * (double)e / T)) /
                         (1 + cos(pi * (double)(e - 1) / T)) *
                         (st->lr - s->eta_min) +
                     s->eta_min;
        break;
    }
    case NNC_SCHED_PLATEAU:
        if (nnc__plateau_better(s, metric, st->best)) {
            st->best = metric;
            st->num_bad = 0;
        } else {
            st->num_bad++;
        }
        if (st->cooldown_counter > 0) {
            st->cooldown_counter--;
            st->num_bad = 0;
        }
        if (st->num_bad > s->patience) {
            double lr = st->lr * s->factor;
            if (lr < s->min_lr)
                lr = s->min_lr;
            if (st->lr - lr > s->eps)
                st->lr = lr;
            st->cooldown_counter = s->cooldown;
            st->num_bad = 0;
        }
        break;
    default:
        break;
    }
}

/* The learning rate of optimizer step `step` (counted from 0): the
 * epoch's, times LinearLR's factor during a warm-up over steps. */
NNC_RT double nnc__step_lr(const nnc_schedule *s, const nnc_sched_state *st,
                           long step)
{
    if (step >= s->warmup_steps)
        return st->lr;
    double f = s->warmup_start;
    return st->lr * (f + (1.0 - f) * (double)step / (double)s->warmup_steps);
}

/* ---------------------------------------------------------------- */
/* gradient clipping, between compute_gradients and apply_update      */

/* torch.nn.utils.clip_grad_value_, then clip_grad_norm_ (norm 2 over
 * every trained parameter's gradient, summed in a fixed order). */
NNC_RT void nnc__clip(const nnc_train_config *cfg, NNC_T_REAL *g)
{
    if (cfg->clip_value > 0) {
        NNC_T_REAL v = (NNC_T_REAL)cfg->clip_value;
        for (int r = 0; r < cfg->ngrad_ranges; r++) {
            NNC_T_REAL *p = g + cfg->grad_ranges[2 * r];
            for (long i = 0; i < cfg->grad_ranges[2 * r + 1]; i++)
                p[i] = p[i] > v ? v : p[i] < -v ? -v : p[i];
        }
    }
    if (cfg->clip_norm > 0) {
        double sum = 0;
        for (int r = 0; r < cfg->ngrad_ranges; r++) {
            const NNC_T_REAL *p = g + cfg->grad_ranges[2 * r];
            for (long i = 0; i < cfg->grad_ranges[2 * r + 1]; i++)
                sum += (double)p[i] * (double)p[i];
        }
        double coef = cfg->clip_norm / (sqrt(sum) + 1e-6);
        if (coef >= 1)
            return;
        for (int r = 0; r < cfg->ngrad_ranges; r++) {
            NNC_T_REAL *p = g + cfg->grad_ranges[2 * r];
            for (long i = 0; i < cfg->grad_ranges[2 * r + 1]; i++)
                p[i] = (NNC_T_REAL)(p[i] * coef);
        }
    }
}

/* ---------------------------------------------------------------- */
/* the three jobs: bench, evaluate, train                             */

#ifdef NNC_T_PROFILE
/* nnc --profile's table, on stderr after what stdout has printed */
NNC_RT void nnc__profile_report(void)
{
    fflush(stdout);
    NNC_T_FN(profile_print)(stderr);
}
#endif

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
#ifdef NNC_T_PROFILE
    NNC_T_FN(profile_reset)(); /* the timed steps only */
#endif
    double t0 = nnc_now();
    for (long i = 0; i < steps; i++)
        NNC_T_FN(train_step)(m, b.x, b.y);
    double ms = (nnc_now() - t0) * 1000.0 / (double)steps;
    printf("bench: steps=%ld ms_per_step=%.4f samples_per_s=%.0f\n", steps, ms,
           NNC_T_BATCH * 1000.0 / ms);
#ifdef NNC_T_PROFILE
    nnc__profile_report();
#endif
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

/* What a run carries from epoch to epoch; everything in it that shapes
 * the next epoch is saved in the resumable checkpoint. */
typedef struct nnc_run {
    const nnc_train_config *cfg;
    nnc_train_args *args;
    NNC_T_MODEL *m;
    nnc_dataset train, val, test;
    int has_val, has_test;
    nnc_buffers b;
    nnc_progress progress; /* one per run: it keeps the totals for the ETA */
    FILE *csv;
    int epoch;             /* epochs finished */
    double last_loss, last_accuracy;
    double fig[NNC_W__COUNT]; /* the last epoch's figures */
    int have[NNC_W__COUNT];
    nnc_rng shuffle_rng, augment_rng;
    nnc_sched_state sched;
    double es_best;        /* early stopping */
    long es_bad;
    int stopped;
    double ck_best;        /* checkpoint best(...) */
    int best_epoch;
} nnc_run;

/* A step whose loss or gradients are not finite stops the run before its
 * update, so the weights and every checkpoint written so far stay as the
 * last good step left them. The same batch is computed again in checked
 * mode to name the first tensor that went non-finite. */
NNC_RT void nnc__report_nonfinite(nnc_run *r, int epoch, long step,
                                  NNC_T_REAL loss)
{
    const char *what = loss != loss       ? "the loss is NaN"
                       : isinf((double)loss) ? "the loss is infinite"
                                             : "a gradient is not finite";
    int found = NNC_T_FN(find_nonfinite)(r->m, r->b.x, r->b.y) != 0;
    fprintf(stderr, "error: epoch %d, step %ld (optimizer step %ld): %s; %s\n",
            epoch, step, NNC_T_FN(steps)(r->m) + 1, what,
            found ? NNC_T_FN(error)(r->m)
                  : "a checked re-run of the batch was finite");
    fprintf(stderr, "error: stopped before the update; the weights and "
            "checkpoints are those of the last finite step\n");
}

NNC_RT int nnc__train_epoch(nnc_run *r, int epoch)
{
    const nnc_train_config *cfg = r->cfg;
    const nnc_dataset *d = &r->train;
    long steps = (long)(d->n / NNC_T_BATCH);
    nnc_progress *p = &r->progress;
    int clip = cfg->clip_norm > 0 || cfg->clip_value > 0;
    int augment = cfg->aug_crop || cfg->aug_flip > 0;
    for (size_t i = 0; i < d->n; i++)
        r->b.order[i] = (int32_t)i;
    if (cfg->shuffle)
        nnc_rng_shuffle(&r->shuffle_rng, r->b.order, d->n);
    nnc_progress_begin(p, stderr, epoch, r->args->epochs, steps, NNC_T_BATCH,
                       r->args->quiet);
    long correct = 0;
    for (long s = 0; s < steps; s++) {
        nnc__gather(d, r->b.order + s * NNC_T_BATCH, NNC_T_BATCH, r->b.x, r->b.y);
        if (augment)
            nnc__augment(cfg, &r->augment_rng, r->b.x, r->b.scratch);
        NNC_T_FN(set_lr)(r->m, nnc__step_lr(&cfg->schedule, &r->sched,
                                            NNC_T_FN(steps)(r->m)));
        NNC_T_REAL loss = NNC_T_FN(compute_gradients)(r->m, r->b.x, r->b.y);
        if (!isfinite((double)loss) || !NNC_T_FN(gradients_finite)(r->m)) {
            nnc_progress_end(p);
            nnc__report_nonfinite(r, epoch, s + 1, loss);
            return -1;
        }
        if (clip)
            nnc__clip(cfg, NNC_T_FN(grads)(r->m));
        NNC_T_FN(apply_update)(r->m);
        if (cfg->metric_accuracy)
            correct += nnc__count_correct(NNC_T_FN(train_output)(r->m), r->b.y,
                                          NNC_T_BATCH, NULL);
        nnc_progress_step(p, s + 1, (double)loss);
    }
    nnc_progress_end(p);
    r->last_loss = p->mean_loss;
    r->last_accuracy = (double)correct / (double)(steps * NNC_T_BATCH);
    return 0;
}

/* The epoch's figures: training loss and accuracy from its steps, the
 * validation set always (when there is one), the test set when the line,
 * the log or a watched metric needs it. */
NNC_RT int nnc__epoch_figures(nnc_run *r, int need_test)
{
    const nnc_train_config *cfg = r->cfg;
    memset(r->have, 0, sizeof r->have);
    r->fig[NNC_W_LOSS] = r->last_loss;
    r->fig[NNC_W_TRAIN_ACCURACY] = r->last_accuracy;
    r->have[NNC_W_LOSS] = 1;
    r->have[NNC_W_TRAIN_ACCURACY] = cfg->metric_accuracy;
    if (r->has_val) {
        if (nnc__evaluate(r->m, &r->val, &r->b, &r->fig[NNC_W_VAL_LOSS],
                          &r->fig[NNC_W_VAL_ACCURACY], NULL))
            return -1;
        r->have[NNC_W_VAL_LOSS] = 1;
        r->have[NNC_W_VAL_ACCURACY] = cfg->metric_accuracy;
    }
    if (r->has_test && need_test) {
        if (nnc__evaluate(r->m, &r->test, &r->b, &r->fig[NNC_W_TEST_LOSS],
                          &r->fig[NNC_W_TEST_ACCURACY], NULL))
            return -1;
        r->have[NNC_W_TEST_LOSS] = 1;
        r->have[NNC_W_TEST_ACCURACY] = cfg->metric_accuracy;
    }
    return 0;
}

NNC_RT void nnc__print_epoch(nnc_run *r, int epoch, double lr)
{
    const nnc_progress *p = &r->progress;
    printf("epoch %d/%d  loss %.4f", epoch, r->args->epochs, r->last_loss);
    for (int w = 1; w < NNC_W__COUNT; w++)
        if (r->have[w])
            printf("  %s %.4f", nnc__watch_names[w], r->fig[w]);
    if (r->cfg->schedule.kind != NNC_SCHED_NONE ||
        r->cfg->schedule.warmup_epochs || r->cfg->schedule.warmup_steps)
        printf("  lr %.6g", lr);
    printf("  %.1fs  %.0f samples/s\n", p->seconds, p->samples_per_s);
    fflush(stdout);
}

/* The columns a run can fill, in a fixed order. */
NNC_RT void nnc__csv_header(const nnc_run *r, FILE *f)
{
    fprintf(f, "epoch,lr,loss");
    if (r->cfg->metric_accuracy)
        fprintf(f, ",train_accuracy");
    for (int w = NNC_W_VAL_LOSS; w < NNC_W__COUNT; w++)
        if ((w < NNC_W_TEST_LOSS ? r->has_val : r->has_test) &&
            (w % 2 == 0 || r->cfg->metric_accuracy))
            fprintf(f, ",%s", nnc__watch_names[w]);
    fprintf(f, ",seconds\n");
}

NNC_RT void nnc__csv_row(const nnc_run *r, int epoch, double lr)
{
    FILE *f = r->csv;
    fprintf(f, "%d,%.17g,%.17g", epoch, lr, r->last_loss);
    if (r->cfg->metric_accuracy)
        fprintf(f, ",%.17g", r->last_accuracy);
    for (int w = NNC_W_VAL_LOSS; w < NNC_W__COUNT; w++)
        if ((w < NNC_W_TEST_LOSS ? r->has_val : r->has_test) &&
            (w % 2 == 0 || r->cfg->metric_accuracy))
            fprintf(f, ",%.17g", r->fig[w]);
    fprintf(f, ",%.3f\n", r->progress.seconds);
    fflush(f);
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

/* class c's name cut to `width` characters, or its number */
NNC_RT void nnc__class_label(const nnc_train_config *cfg, int c, int width,
                             char name[16])
{
    if (cfg->class_names)
        snprintf(name, 16, "%.*s", width, cfg->class_names[c]);
    else
        snprintf(name, 16, "%d", c);
}

/* Rows: the true class; columns: the predicted one. */
NNC_RT void nnc__print_confusion(const nnc_train_config *cfg,
                                 const nnc_class_tally *tally, const char *set)
{
    printf("confusion matrix (%s set; rows: true class, columns: predicted):\n",
           set);
    printf("  %-10s", "");
    for (int c = 0; c < NNC_T_CLASSES; c++) {
        char name[16];
        nnc__class_label(cfg, c, 7, name);
        printf(" %7s", name);
    }
    printf("\n");
    for (int t = 0; t < NNC_T_CLASSES; t++) {
        char name[16];
        nnc__class_label(cfg, t, 10, name);
        printf("  %-10s", name);
        for (int c = 0; c < NNC_T_CLASSES; c++)
            printf(" %7ld", tally->confusion[t * NNC_T_CLASSES + c]);
        printf("\n");
    }
}

NNC_RT int nnc__final_report(nnc_run *r, int trained, double seconds)
{
    const nnc_train_config *cfg = r->cfg;
    double train_loss = 0, train_acc = 0, val_loss = 0, val_acc = 0;
    double test_loss = 0, test_acc = 0;
    nnc_class_tally tally;
    memset(&tally, 0, sizeof tally);
    int per_class = cfg->per_class && NNC_T_CLASSES > 0 && !r->args->quiet;
    int confusion = cfg->confusion && NNC_T_CLASSES > 0 && !r->args->quiet;
    if (confusion &&
        !(tally.confusion = calloc((size_t)NNC_T_CLASSES * (NNC_T_CLASSES + 1),
                                   sizeof(long)))) {
        fprintf(stderr, "error: out of memory\n");
        return -1;
    }
    /* the classes are reported on the test set, else validation, else train */
    int on = r->has_test ? 2 : r->has_val ? 1 : 0;
    nnc_class_tally *t = per_class || confusion ? &tally : NULL;
    int bad = nnc__evaluate(r->m, &r->train, &r->b, &train_loss, &train_acc,
                            on == 0 ? t : NULL) ||
              (r->has_val && nnc__evaluate(r->m, &r->val, &r->b, &val_loss,
                                           &val_acc, on == 1 ? t : NULL)) ||
              (r->has_test && nnc__evaluate(r->m, &r->test, &r->b, &test_loss,
                                            &test_acc, on == 2 ? t : NULL));
    if (bad) {
        fprintf(stderr, "error: evaluation produced NaN: %s\n",
                NNC_T_FN(error)(r->m));
        free(tally.confusion);
        return -1;
    }
    static const char *const set_names[] = {"train", "validation", "test"};
    if (cfg->data_kind == NNC_DATA_TABLE && r->train.n <= 16 && !r->args->quiet)
        nnc__print_table_predictions(r->m, &r->train);
    if (per_class)
        nnc__print_per_class(cfg, &tally, set_names[on]);
    if (confusion)
        nnc__print_confusion(cfg, &tally, set_names[on]);
    free(tally.confusion);
    printf("final: loss=%.4f", trained ? r->last_loss : train_loss);
    if (cfg->metric_accuracy)
        printf(" train_accuracy=%.4f", train_acc);
    if (r->has_test) {
        printf(" test_loss=%.4f", test_loss);
        if (cfg->metric_accuracy)
            printf(" test_accuracy=%.4f", test_acc);
    }
    if (r->has_val) {
        printf(" val_loss=%.4f", val_loss);
        if (cfg->metric_accuracy)
            printf(" val_accuracy=%.4f", val_acc);
    }
    printf(" eval_train_loss=%.4f epochs=%d", train_loss, trained ? r->epoch : 0);
    if (r->best_epoch)
        printf(" best_epoch=%d", r->best_epoch);
    printf(" seconds=%.1f\n", seconds);
    return 0;
}

/* ---------------------------------------------------------------- */
/* checkpoints: the weights of the best epoch, and the training state  */

NNC_RT void nnc__rng_str(const nnc_rng *g, char *buf, size_t len)
{
    snprintf(buf, len, "%016llx %016llx %016llx %016llx",
             (unsigned long long)g->s[0], (unsigned long long)g->s[1],
             (unsigned long long)g->s[2], (unsigned long long)g->s[3]);
}

NNC_RT int nnc__rng_parse(const char *s, nnc_rng *g)
{
    unsigned long long v[4];
    if (sscanf(s, "%llx %llx %llx %llx", &v[0], &v[1], &v[2], &v[3]) != 4)
        return -1;
    for (int i = 0; i < 4; i++)
        g->s[i] = v[i];
    return 0;
}

/* The trainer's part of a training state, as metadata next to the
 * model's (weights, optimizer state, step, learning rate). Doubles are
 * written with 17 digits, so they read back exactly. */
NNC_RT int nnc__save_state(nnc_run *r, const char *path)
{
    char epoch[24], seed[24], shuffle[80], augment[80], sched[192], early[96],
        best[64], loss[64];
    const nnc_sched_state *s = &r->sched;
    snprintf(epoch, sizeof epoch, "%d", r->epoch);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->args->seed);
    nnc__rng_str(&r->shuffle_rng, shuffle, sizeof shuffle);
    nnc__rng_str(&r->augment_rng, augment, sizeof augment);
    snprintf(sched, sizeof sched, "%ld %ld %.17g %.17g %ld %ld", s->epoch,
             s->last_epoch, s->lr, s->best, s->num_bad, s->cooldown_counter);
    snprintf(early, sizeof early, "%.17g %ld %d", r->es_best, r->es_bad,
             r->stopped);
    snprintf(best, sizeof best, "%.17g %d", r->ck_best, r->best_epoch);
    snprintf(loss, sizeof loss, "%.17g %.17g", r->last_loss, r->last_accuracy);
    const char *meta[] = {"nnc_epoch", epoch, "nnc_seed", seed,
                          "nnc_rng_shuffle", shuffle, "nnc_rng_augment", augment,
                          "nnc_schedule", sched, "nnc_early_stopping", early,
                          "nnc_best", best, "nnc_last_epoch_loss", loss, NULL};
    if (NNC_T_FN(save_training)(r->m, path, meta)) {
        fprintf(stderr, "error: %s\n", NNC_T_FN(error)(r->m));
        return -1;
    }
    return 0;
}

NNC_RT int nnc__get_meta(const char *path, const char *key, char *out,
                         size_t len)
{
    char err[512];
    int rc = nnc_st_get_meta(path, key, out, len, err, sizeof err);
    if (rc > 0)
        fprintf(stderr, "error: %s: no \"%s\" in its metadata: not a "
                "checkpoint every(...) state\n", path, key);
    else if (rc < 0)
        fprintf(stderr, "error: %s\n", err);
    return rc ? -1 : 0;
}

/* The seed the run started with: everything else is derived from it. */
NNC_RT int nnc__resume_seed(const char *path, uint64_t *seed)
{
    char v[32];
    if (nnc__get_meta(path, "nnc_seed", v, sizeof v))
        return -1;
    *seed = strtoull(v, NULL, 10);
    return 0;
}

NNC_RT int nnc__resume(nnc_run *r, const char *path)
{
    char epoch[24], shuffle[80], augment[80], sched[192], early[96], best[64],
        loss[64];
    if (NNC_T_FN(load_training)(r->m, path)) {
        fprintf(stderr, "error: %s\n", NNC_T_FN(error)(r->m));
        return -1;
    }
    nnc_sched_state *s = &r->sched;
    if (nnc__get_meta(path, "nnc_epoch", epoch, sizeof epoch) ||
        nnc__get_meta(path, "nnc_rng_shuffle", shuffle, sizeof shuffle) ||
        nnc__get_meta(path, "nnc_rng_augment", augment, sizeof augment) ||
        nnc__get_meta(path, "nnc_schedule", sched, sizeof sched) ||
        nnc__get_meta(path, "nnc_early_stopping", early, sizeof early) ||
        nnc__get_meta(path, "nnc_best", best, sizeof best) ||
        nnc__get_meta(path, "nnc_last_epoch_loss", loss, sizeof loss))
        return -1;
    if (nnc__rng_parse(shuffle, &r->shuffle_rng) ||
        nnc__rng_parse(augment, &r->augment_rng) ||
        sscanf(sched, "%ld %ld %lf %lf %ld %ld", &s->epoch, &s->last_epoch,
               &s->lr, &s->best, &s->num_bad, &s->cooldown_counter) != 6 ||
        sscanf(early, "%lf %ld %d", &r->es_best, &r->es_bad, &r->stopped) != 3 ||
        sscanf(best, "%lf %d", &r->ck_best, &r->best_epoch) != 2 ||
        sscanf(loss, "%lf %lf", &r->last_loss, &r->last_accuracy) != 2) {
        fprintf(stderr, "error: %s: malformed trainer state in its metadata\n",
                path);
        return -1;
    }
    r->epoch = atoi(epoch);
    return 0;
}

/* ---------------------------------------------------------------- */
/* after each epoch                                                    */

/* `value` improves on `best` by more than min_delta (the first epoch
 * always does: best starts at +-inf). */
NNC_RT int nnc__improves(int metric, double value, double best,
                         double min_delta)
{
    int max = metric == NNC_W_TRAIN_ACCURACY || metric == NNC_W_VAL_ACCURACY ||
              metric == NNC_W_TEST_ACCURACY;
    return max ? value > best + min_delta : value < best - min_delta;
}

NNC_RT double nnc__worst(int metric)
{
    int max = metric == NNC_W_TRAIN_ACCURACY || metric == NNC_W_VAL_ACCURACY ||
              metric == NNC_W_TEST_ACCURACY;
    return max ? -INFINITY : INFINITY;
}

NNC_RT int nnc__after_epoch(nnc_run *r, int epoch, double lr)
{
    const nnc_train_config *cfg = r->cfg;
    const nnc_train_args *a = r->args;
    int every = cfg->log_every > 0 ? cfg->log_every : 1;
    int print = !a->quiet && (epoch % every == 0 || epoch == 1 ||
                              epoch == a->epochs);
    int watch_test = (cfg->early_stop && cfg->es_metric >= NNC_W_TEST_LOSS) ||
                     (cfg->best_path && cfg->best_metric >= NNC_W_TEST_LOSS) ||
                     (cfg->schedule.kind == NNC_SCHED_PLATEAU &&
                      cfg->schedule.metric >= NNC_W_TEST_LOSS);
    if (nnc__epoch_figures(r, print || r->csv || watch_test)) {
        fprintf(stderr, "error: evaluation produced NaN after epoch %d: %s\n",
                epoch, NNC_T_FN(error)(r->m));
        return -1;
    }
    r->epoch = epoch;
    if (print)
        nnc__print_epoch(r, epoch, lr);
    if (r->csv)
        nnc__csv_row(r, epoch, lr);
    if (cfg->best_path &&
        nnc__improves(cfg->best_metric, r->fig[cfg->best_metric], r->ck_best, 0)) {
        r->ck_best = r->fig[cfg->best_metric];
        r->best_epoch = epoch;
        if (NNC_T_FN(save)(r->m, cfg->best_path)) {
            fprintf(stderr, "error: %s\n", NNC_T_FN(error)(r->m));
            return -1;
        }
        if (!a->quiet)
            printf("best: epoch %d %s %.4f, saved %s\n", epoch,
                   nnc__watch_names[cfg->best_metric], r->ck_best,
                   cfg->best_path);
    }
    nnc__sched_step(&cfg->schedule, &r->sched, r->fig[cfg->schedule.metric]);
    if (cfg->early_stop) {
        double v = r->fig[cfg->es_metric];
        if (nnc__improves(cfg->es_metric, v, r->es_best, cfg->es_min_delta)) {
            r->es_best = v;
            r->es_bad = 0;
            if (!cfg->best_path)
                r->best_epoch = epoch;
        } else if (++r->es_bad >= cfg->es_patience) {
            r->stopped = 1;
            if (!a->quiet)
                printf("early stopping: %s has not improved on %.4f for %ld "
                       "epochs\n", nnc__watch_names[cfg->es_metric], r->es_best,
                       r->es_bad);
        }
    }
    if (cfg->every_path && (epoch % cfg->every_epochs == 0 ||
                            epoch == a->epochs || r->stopped))
        return nnc__save_state(r, cfg->every_path);
    return 0;
}

NNC_RT int nnc__train_and_report(nnc_run *r)
{
    const nnc_train_config *cfg = r->cfg;
    nnc_train_args *a = r->args;
    char err[1024];
    if (nnc__load_data(cfg, a->data, &r->train, &r->test, &r->has_test, err,
                       sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    if (cfg->val_fraction > 0 || cfg->val_path) {
        int rc = cfg->val_path
                     ? nnc__csv_dataset(cfg, cfg->val_path, &r->val, err,
                                        sizeof err)
                     : nnc__split_validation(&r->train, cfg->val_fraction,
                                             a->seed, &r->val, err, sizeof err);
        if (rc) {
            fprintf(stderr, "error: %s\n", err);
            return 1;
        }
        r->has_val = 1;
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
    if (!a->quiet) {
        printf("%s: %zu training samples", cfg->model, r->train.n);
        if (r->has_val)
            printf(", %zu validation", r->val.n);
        if (r->has_test)
            printf(" and a test set");
        if (a->eval_only)
            printf(", evaluation only\n");
        else if (r->epoch)
            printf(", batch %d, epochs %d to %d (resumed)\n", NNC_T_BATCH,
                   r->epoch + 1, a->epochs);
        else
            printf(", batch %d, %d epochs\n", NNC_T_BATCH, a->epochs);
    }
    if (a->log_csv && !a->eval_only) {
        FILE *probe = r->epoch ? fopen(a->log_csv, "r") : NULL;
        r->csv = fopen(a->log_csv, probe ? "a" : "w");
        if (probe)
            fclose(probe);
        if (!r->csv) {
            fprintf(stderr, "error: cannot write %s: %s\n", a->log_csv,
                    strerror(errno));
            return 1;
        }
        if (!probe)
            nnc__csv_header(r, r->csv);
    }
    double t0 = nnc_now();
    int first = r->epoch + 1;
    for (int e = first; !a->eval_only && !r->stopped && e <= a->epochs; e++) {
        double lr = nnc__step_lr(&cfg->schedule, &r->sched,
                                 NNC_T_FN(steps)(r->m));
        if (nnc__train_epoch(r, e) || nnc__after_epoch(r, e, lr))
            return 1;
    }
    if (nnc__final_report(r, !a->eval_only, nnc_now() - t0))
        return 1;
    if (a->save && NNC_T_FN(save)(r->m, a->save)) {
        fprintf(stderr, "error: %s\n", NNC_T_FN(error)(r->m));
        return 1;
    }
    return 0;
}

/* Subnormal numbers take a slow path through microcode on x86 CPUs.
 * Adam's first moment of a weight whose gradient stays zero (a dead ReLU
 * unit, a pixel that is always blank) shrinks by 0.9 a step and spends
 * about 150 steps among them; mnist_mlp trained 20% slower for it (3
 * epochs of Fashion-MNIST, 2.4 s against 1.9 s). The trainer therefore
 * sets the two MXCSR bits that flush subnormal results to zero (FTZ) and
 * read subnormal inputs as zero (DAZ), as torch.set_flush_denormal(True)
 * does.
 * Only values below 1.2e-38 change. MXCSR is per thread: it is set in
 * the OpenMP team that exists now, and threads created later inherit it
 * from the thread that creates them. Elsewhere than x86, nothing. */
NNC_RT void nnc__flush_subnormals(void)
{
#if defined(__SSE__)
#ifdef _OPENMP
#pragma omp parallel
#endif
    _mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ (bit 15) and DAZ (bit 6) */
#endif
}

NNC_RT int nnc_trainer_main(const nnc_train_config *cfg, int argc, char **argv)
{
    nnc_train_args a;
    int parsed = nnc__parse_args(argc, argv, cfg, &a);
    if (parsed)
        return parsed > 0 ? 0 : 2;
    if (!a.keep_subnormals)
        nnc__flush_subnormals();
    if (a.resume && nnc__resume_seed(a.resume, &a.seed))
        return 1;
    nnc_run r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    r.args = &a;
    r.m = NNC_T_FN(new)(a.seed);
    if (!r.m) {
        fprintf(stderr, "error: out of memory creating the model\n");
        return 1;
    }
    nnc_rng_seed(&r.shuffle_rng, a.seed ^ 0x5348554646u);
    nnc_rng_seed(&r.augment_rng, a.seed ^ 0x4155474d454e54u);
    nnc__sched_init(&cfg->schedule, &r.sched);
    r.es_best = nnc__worst(cfg->es_metric);
    r.ck_best = nnc__worst(cfg->best_metric);
    int status = 0;
    /* --bench times steps on synthetic data: the weights it starts from
     * change nothing it measures, so it needs no init_from file */
    if (cfg->init_from && !a.load && !a.resume && !a.bench &&
        NNC_T_FN(load_matching)(r.m, cfg->init_from)) {
        fprintf(stderr, "error: %s\n", NNC_T_FN(error)(r.m));
        status = 1;
    } else if (a.load && NNC_T_FN(load)(r.m, a.load)) {
        fprintf(stderr, "error: %s\n", NNC_T_FN(error)(r.m));
        status = 1;
    } else if (a.resume && nnc__resume(&r, a.resume)) {
        status = 1;
    } else if (a.bench) {
        status = nnc__bench(r.m, a.bench, a.seed);
    } else {
        status = nnc__train_and_report(&r);
#ifdef NNC_T_PROFILE
        if (!a.eval_only) /* --eval trains no step */
            nnc__profile_report();
#endif
    }
    /* a failed fflush (a full disk) leaves nothing for fclose to fail on:
     * the stream's error flag remembers it */
    int csv_bad = r.csv && ferror(r.csv);
    if (r.csv && (fclose(r.csv) || csv_bad) && !status) {
        fprintf(stderr, "error: cannot write %s\n", a.log_csv);
        status = 1;
    }
    nnc__buffers_free(&r.b);
    nnc_dataset_free(&r.train);
    nnc_dataset_free(&r.val);
    nnc_dataset_free(&r.test);
    NNC_T_FN(free)(r.m);
    return status;
}
