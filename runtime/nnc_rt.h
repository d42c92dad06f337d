/* nnc_rt.h — the runtime that nnc embeds into every generated C file.
 *
 * Two ways this header is used:
 *   - Unit tests and ordinary builds include it with NNC_RT undefined:
 *     every runtime function then has extern linkage and is prototyped here.
 *   - nnc embeds it: it emits `#define NNC_RT static __attribute__((unused))`,
 *     then this header, then the runtime .c files, with their quoted
 *     #include lines removed. The generated file may leave out files it
 *     does not need (a model has no use for rt_data.c, which needs zlib).
 *     gcc warns about a static function that is declared but never defined,
 *     even when it is marked unused, so in that mode only the types are
 *     declared here and each definition serves as its own declaration.
 *
 * Files: rt_rng.c, rt_safetensors.c (model code: libc only);
 *        rt_data.c, rt_progress.c (trainer only: zlib and POSIX).
 * Failures never exit: they return nonzero and describe the problem,
 * naming the file involved, in the caller's `err` buffer of `errlen` bytes. */
#ifndef NNC_RT_H
#define NNC_RT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifndef NNC_RT
#define NNC_RT
#define NNC_RT_PROTOTYPES 1
#endif

/* ===================================================================
 * rt_rng.c — xoshiro256** seeded through splitmix64. Integer-exact, so a
 * seed gives the same stream on every platform; nnc_rng_normal also
 * depends on libm's log, sqrt and cos.
 * =================================================================== */

typedef struct nnc_rng {
    uint64_t s[4];
} nnc_rng;

/* ===================================================================
 * rt_safetensors.c — weights in the safetensors format: a little-endian
 * u64 header length N, N bytes of JSON (padded with spaces to a multiple
 * of 8), then the raw little-endian tensor data.
 * =================================================================== */

typedef struct nnc_st_tensor {
    const char *name; /* "fc1.weight" */
    int ndim;         /* 0..8 */
    int64_t shape[8];
    size_t offset;    /* element offset of this tensor inside the caller's block */
} nnc_st_tensor;

#define NNC_ST_MAX_DIMS 8
/* Header lengths above this are refused as corrupt (the same bound as the
 * reference implementation). */
#define NNC_ST_MAX_HEADER 100000000u
/* Load the tensors the file has by name and ignore missing or extra ones
 * (transfer learning). Without it the file must hold exactly the model's
 * tensors. */
#define NNC_ST_PARTIAL 1

/* ===================================================================
 * rt_data.c — datasets for the generated trainer (IDX, CIFAR-10 binary,
 * CSV). Read through zlib's gzopen/gzread, so gzip and raw files work
 * alike.
 * =================================================================== */

typedef struct nnc_dataset {
    size_t n;       /* samples */
    size_t x_size;  /* floats per sample */
    float *x;       /* n * x_size, already scaled: value = raw * scale + shift */
    size_t y_size;  /* 0: integer class labels in y; >0: float targets per sample in yf */
    int32_t *y;
    float *yf;
    int nclasses;   /* when y_size == 0 */
} nnc_dataset;

/* ===================================================================
 * rt_progress.c — monotonic timer and the trainer's progress line.
 * Zero-initialize an nnc_progress once per run (`nnc_progress p = {0};`);
 * it keeps run totals across epochs for the ETA, and a begin() with
 * epoch 1 starts a new run.
 * =================================================================== */

typedef struct nnc_progress {
    /* settings from nnc_progress_begin */
    FILE *out;
    int epoch, epochs;
    long steps_per_epoch;
    int batch;
    int live;            /* drawing a live line: out is a terminal and not quiet */
    /* this epoch */
    double epoch_start;
    double last_draw;
    int drawn_len;       /* length of the live line on screen, 0 if none */
    long steps;          /* step calls so far */
    double loss_sum;
    /* whole run, for the ETA */
    double run_seconds;  /* time spent in finished epochs */
    long run_steps;      /* steps in finished epochs */
    /* results of nnc_progress_end */
    double mean_loss;    /* NAN when no step was reported */
    double seconds;
    double samples_per_s;
} nnc_progress;

#ifdef NNC_RT_PROTOTYPES

/* rt_rng.c */
NNC_RT void nnc_rng_seed(nnc_rng *r, uint64_t seed);
NNC_RT uint64_t nnc_rng_next(nnc_rng *r);
NNC_RT double nnc_rng_uniform(nnc_rng *r);           /* [0, 1), 53 bits */
NNC_RT double nnc_rng_normal(nnc_rng *r);            /* N(0, 1), Box-Muller */
NNC_RT uint64_t nnc_rng_below(nnc_rng *r, uint64_t n); /* unbiased [0, n); 0 when n == 0 */
NNC_RT void nnc_rng_shuffle(nnc_rng *r, int32_t *idx, size_t n); /* Fisher-Yates */

/* rt_safetensors.c
 * elem_size is 4 (float, F32) or 8 (double, F64). meta is NULL or a
 * NULL-terminated list key, value, key, value, ...; the saver adds
 * "format":"pt" and "nnc_checksum" (CRC-32 of the data section). */
NNC_RT int nnc_st_save(const char *path, const nnc_st_tensor *t, int n, const void *base,
                       int elem_size, const char *const *meta, char *err, size_t errlen);
/* Validates the whole file before it writes to base, so a refused load
 * leaves the model unchanged. Converts between F32 and F64. */
NNC_RT int nnc_st_load(const char *path, const nnc_st_tensor *t, int n, void *base,
                       int elem_size, int flags, char *err, size_t errlen);
/* 0: found and copied to out; 1: the file has no such key; -1: error. */
NNC_RT int nnc_st_get_meta(const char *path, const char *key, char *out, size_t outlen,
                           char *err, size_t errlen);
NNC_RT uint32_t nnc_crc32(uint32_t crc, const void *data, size_t len); /* zlib-compatible */

/* rt_data.c */
NNC_RT int nnc_idx_load(const char *images_path, const char *labels_path, size_t x_size,
                        int nclasses, float scale, float shift, nnc_dataset *out,
                        char *err, size_t errlen);
/* Finds DIR/SPLIT-images-idx3-ubyte, DIR/SPLIT-images.idx3-ubyte or either
 * with .gz, and the same for the labels (idx1). split: "train" or "t10k". */
NNC_RT int nnc_idx_load_split(const char *dir, const char *split, size_t x_size, int nclasses,
                              float scale, float shift, nnc_dataset *out,
                              char *err, size_t errlen);
/* CIFAR-10 binary batches: records of 1 label byte and 3072 pixel bytes
 * (3x32x32, channel-major). value = (raw * scale - mean[c]) / std[c];
 * mean and std may be NULL. */
NNC_RT int nnc_cifar_load(const char *const *paths, int npaths, float scale, const float *mean,
                          const float *std, nnc_dataset *out, char *err, size_t errlen);
/* nclasses > 0: integer class label in column label_col (-1 = last).
 * nclasses == 0: the last y_size columns are float targets. Inputs are
 * scaled, labels and targets are not. */
NNC_RT int nnc_csv_load(const char *path, size_t x_size, int label_col, int nclasses,
                        size_t y_size, int header, float scale, float shift, nnc_dataset *out,
                        char *err, size_t errlen);
NNC_RT void nnc_dataset_free(nnc_dataset *d);

/* rt_progress.c */
NNC_RT double nnc_now(void); /* monotonic seconds */
NNC_RT void nnc_progress_begin(nnc_progress *p, FILE *out, int epoch, int epochs,
                               long steps_per_epoch, int batch, int quiet);
/* On a terminal, rewrites one live line at most 10 times a second:
 * "epoch 2/5  step 312/937  loss 0.4123  6512 samples/s  ETA 0:42"
 * (loss: mean of the epoch so far; ETA: whole run at the average rate so
 * far). Prints nothing when out is not a terminal or quiet is set. */
NNC_RT void nnc_progress_step(nnc_progress *p, long step, double loss);
/* Clears the live line; sets mean_loss, seconds and samples_per_s. */
NNC_RT void nnc_progress_end(nnc_progress *p);
NNC_RT void nnc_format_duration(double seconds, char *buf, size_t len); /* "0:42", "1:02:03" */

#endif /* NNC_RT_PROTOTYPES */

#endif /* NNC_RT_H */
