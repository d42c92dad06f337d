/* rt_data.c — datasets for the generated trainer: IDX (MNIST and its
 * relatives), CIFAR-10 binary batches and numeric CSV.
 *
 * Everything is read through zlib's gzopen/gzread, which pass raw files
 * through unchanged, so "train-images-idx3-ubyte" and its .gz both work.
 * A dataset is the user's input, not ours: every refusal says which file
 * is wrong and how, because "bad input" after an hour of downloading is
 * useless. */
#include "nnc_rt.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define NNC__DATA_CHUNK (1u << 20)

__attribute__((format(printf, 3, 4)))
NNC_RT int nnc__data_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ------------------------------------------------------------------
 * Checked reading through zlib
 * ------------------------------------------------------------------ */

NNC_RT int nnc__data_open(const char *path, gzFile *gz, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return nnc__data_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return nnc__data_err(err, errlen, "cannot open %s: not a regular file", path);
    errno = 0;
    *gz = gzopen(path, "rb");
    if (!*gz)
        return nnc__data_err(err, errlen, "cannot open %s: %s", path,
                             errno ? strerror(errno) : "out of memory");
    gzbuffer(*gz, 1u << 17);
    return 0;
}

/* Fails with a message when the stream is in an error state. A gzip
 * stream cut short leaves Z_BUF_ERROR ("unexpected end of file") behind
 * without failing the read, so this runs after every short read. */
NNC_RT int nnc__data_gz_check(gzFile gz, const char *path, char *err, size_t errlen)
{
    int code = Z_OK;
    const char *msg = gzerror(gz, &code);
    if (code == Z_OK)
        return 0;
    if (code == Z_ERRNO)
        return nnc__data_err(err, errlen, "%s: read failed: %s", path, strerror(errno));
    /* zlib prefixes its messages with the path; ours does that already. */
    size_t plen = strlen(path);
    if (msg && strncmp(msg, path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0)
        msg += plen + 2;
    return nnc__data_err(err, errlen, "%s: corrupt or truncated gzip data: %s", path,
                         msg ? msg : "unknown zlib error");
}

/* Reads up to want bytes, stopping early only at end of file; *got says
 * how many arrived. Fails on read errors and corrupt gzip data. */
NNC_RT int nnc__data_read(gzFile gz, const char *path, void *buf, size_t want, size_t *got,
                          char *err, size_t errlen)
{
    *got = 0;
    while (*got < want) {
        size_t step = want - *got < NNC__DATA_CHUNK ? want - *got : NNC__DATA_CHUNK;
        int r = gzread(gz, (unsigned char *)buf + *got, (unsigned)step);
        if ((r < 0 || (size_t)r < step) && nnc__data_gz_check(gz, path, err, errlen))
            return -1;
        if (r <= 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

/* Counts the bytes left in the stream (which also makes zlib check the
 * gzip trailer's CRC). */
NNC_RT int nnc__data_count_rest(gzFile gz, const char *path, unsigned long long *rest,
                                char *err, size_t errlen)
{
    unsigned char buf[4096];
    *rest = 0;
    for (;;) {
        size_t got;
        if (nnc__data_read(gz, path, buf, sizeof buf, &got, err, errlen))
            return -1;
        *rest += got;
        if (got < sizeof buf)
            return 0;
    }
}

/* The whole (decompressed) file, NUL-terminated for text parsing. */
NNC_RT int nnc__data_read_all(const char *path, unsigned char **data, size_t *len,
                              char *err, size_t errlen)
{
    gzFile gz;
    *data = NULL;
    *len = 0;
    if (nnc__data_open(path, &gz, err, errlen))
        return -1;
    size_t cap = 0;
    unsigned char *buf = NULL;
    for (;;) {
        if (cap - *len < NNC__DATA_CHUNK + 1) {
            size_t ncap = cap ? cap * 2 : 4 * (size_t)NNC__DATA_CHUNK;
            unsigned char *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                free(buf);
                gzclose(gz);
                return nnc__data_err(err, errlen, "%s: out of memory", path);
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t got;
        if (nnc__data_read(gz, path, buf + *len, NNC__DATA_CHUNK, &got, err, errlen)) {
            free(buf);
            gzclose(gz);
            return -1;
        }
        *len += got;
        if (got < NNC__DATA_CHUNK)
            break;
    }
    gzclose(gz);
    buf[*len] = '\0';
    *data = buf;
    return 0;
}

NNC_RT uint32_t nnc__data_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

NNC_RT void nnc_dataset_free(nnc_dataset *d)
{
    if (!d)
        return;
    free(d->x);
    free(d->y);
    free(d->yf);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------------
 * IDX
 * ------------------------------------------------------------------ */

typedef struct nnc__data_idx {
    const char *path;
    gzFile gz;
    uint32_t count, rows, cols;
} nnc__data_idx;

/* Opens an IDX file and reads its header: magic 0x00000803 with three
 * dimensions for images, 0x00000801 with one for labels. */
NNC_RT int nnc__data_idx_open(nnc__data_idx *f, const char *path, int images, char *err, size_t errlen)
{
    const uint32_t want = images ? 0x803 : 0x801;
    const size_t header = images ? 16 : 8;
    unsigned char h[16];
    size_t got;
    memset(f, 0, sizeof *f);
    f->path = path;
    if (nnc__data_open(path, &f->gz, err, errlen))
        return -1;
    if (nnc__data_read(f->gz, path, h, header, &got, err, errlen))
        goto fail;
    uint32_t magic = got >= 4 ? nnc__data_be32(h) : 0;
    if (got >= 4 && magic != want) {
        const char *hint = magic == 0x801 ? " (this is a label file)"
                           : magic == 0x803 ? " (this is an image file)" : "";
        nnc__data_err(err, errlen, "%s: not an IDX %s file: magic 0x%08x, expected 0x%08x%s",
                      path, images ? "image" : "label", (unsigned)magic, (unsigned)want, hint);
        goto fail;
    }
    if (got < header) {
        nnc__data_err(err, errlen, "%s: truncated header: expected %zu bytes, got %zu",
                      path, header, got);
        goto fail;
    }
    f->count = nnc__data_be32(h + 4);
    if (images) {
        f->rows = nnc__data_be32(h + 8);
        f->cols = nnc__data_be32(h + 12);
    }
    return 0;
fail:
    gzclose(f->gz);
    f->gz = NULL;
    return -1;
}

NNC_RT int nnc__data_check_end(gzFile gz, const char *path, const char *what, char *err, size_t errlen)
{
    unsigned long long rest;
    if (nnc__data_count_rest(gz, path, &rest, err, errlen))
        return -1;
    if (rest)
        return nnc__data_err(err, errlen, "%s: trailing garbage: %llu byte%s after the %s",
                             path, rest, rest == 1 ? "" : "s", what);
    return 0;
}

/* Reads count * x_size pixel bytes chunk by chunk into x, scaled. */
NNC_RT int nnc__data_idx_pixels(nnc__data_idx *f, size_t x_size, float scale, float shift,
                                float *x, char *err, size_t errlen)
{
    size_t total = (size_t)f->count * x_size;
    unsigned char *buf = malloc(NNC__DATA_CHUNK);
    if (!buf)
        return nnc__data_err(err, errlen, "%s: out of memory", f->path);
    size_t done = 0;
    int rc = 0;
    while (done < total && rc == 0) {
        size_t want = total - done < NNC__DATA_CHUNK ? total - done : NNC__DATA_CHUNK;
        size_t got;
        rc = nnc__data_read(f->gz, f->path, buf, want, &got, err, errlen);
        for (size_t i = 0; rc == 0 && i < got; i++)
            x[done + i] = (float)buf[i] * scale + shift;
        done += got;
        if (rc == 0 && got < want)
            rc = nnc__data_err(err, errlen, "%s: truncated: expected %zu bytes of pixel data, got %zu",
                               f->path, total, done);
    }
    free(buf);
    if (rc == 0)
        rc = nnc__data_check_end(f->gz, f->path, "pixel data", err, errlen);
    return rc;
}

NNC_RT int nnc__data_idx_labels(nnc__data_idx *f, int nclasses, int32_t *y, char *err, size_t errlen)
{
    size_t n = f->count, got;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf)
        return nnc__data_err(err, errlen, "%s: out of memory", f->path);
    int rc = nnc__data_read(f->gz, f->path, buf, n, &got, err, errlen);
    if (rc == 0 && got < n)
        rc = nnc__data_err(err, errlen, "%s: truncated: expected %zu bytes of label data, got %zu",
                           f->path, n, got);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (buf[i] >= nclasses)
            rc = nnc__data_err(err, errlen, "%s: label %d at index %zu is out of range for class(%d)",
                               f->path, buf[i], i, nclasses);
        y[i] = buf[i];
    }
    free(buf);
    if (rc == 0)
        rc = nnc__data_check_end(f->gz, f->path, "labels", err, errlen);
    return rc;
}

/* Header-level agreement between the two files and the model. */
NNC_RT int nnc__data_idx_check(const nnc__data_idx *img, const nnc__data_idx *lab, size_t x_size,
                               char *err, size_t errlen)
{
    uint64_t pixels = (uint64_t)img->rows * img->cols;
    if (pixels != x_size)
        return nnc__data_err(err, errlen, "%s: images are %ux%u = %llu values, model input expects %zu",
                             img->path, (unsigned)img->rows, (unsigned)img->cols,
                             (unsigned long long)pixels, x_size);
    if (img->count != lab->count)
        return nnc__data_err(err, errlen, "%s has %u images but %s has %u labels",
                             img->path, (unsigned)img->count, lab->path, (unsigned)lab->count);
    if (img->count == 0)
        return nnc__data_err(err, errlen, "%s: empty set (0 images)", img->path);
    if ((uint64_t)img->count > SIZE_MAX / sizeof(float) / x_size)
        return nnc__data_err(err, errlen, "%s: %u images of %zu values do not fit in memory",
                             img->path, (unsigned)img->count, x_size);
    return 0;
}

NNC_RT int nnc_idx_load(const char *images_path, const char *labels_path, size_t x_size,
                        int nclasses, float scale, float shift, nnc_dataset *out,
                        char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!images_path || !labels_path || x_size == 0 || nclasses <= 0)
        return nnc__data_err(err, errlen, "nnc_idx_load: bad arguments");
    nnc__data_idx img, lab;
    if (nnc__data_idx_open(&img, images_path, 1, err, errlen))
        return -1;
    if (nnc__data_idx_open(&lab, labels_path, 0, err, errlen)) {
        gzclose(img.gz);
        return -1;
    }
    nnc_dataset d = {.n = img.count, .x_size = x_size, .nclasses = nclasses};
    int rc = nnc__data_idx_check(&img, &lab, x_size, err, errlen);
    if (rc == 0) {
        d.x = malloc(d.n * x_size * sizeof *d.x);
        d.y = malloc(d.n * sizeof *d.y);
        if (!d.x || !d.y)
            rc = nnc__data_err(err, errlen, "%s: out of memory for %zu images", images_path, d.n);
    }
    if (rc == 0)
        rc = nnc__data_idx_pixels(&img, x_size, scale, shift, d.x, err, errlen);
    if (rc == 0)
        rc = nnc__data_idx_labels(&lab, nclasses, d.y, err, errlen);
    gzclose(img.gz);
    gzclose(lab.gz);
    if (rc)
        nnc_dataset_free(&d);
    else
        *out = d;
    return rc;
}

/* The first of DIR/SPLIT-KIND-idxD-ubyte, DIR/SPLIT-KIND.idxD-ubyte and
 * their .gz that is a regular file, in a new string; NULL if none is. */
NNC_RT char *nnc__data_find_idx(const char *dir, const char *split, const char *kind, int dims)
{
    const char *const forms[] = {"%s/%s-%s-idx%d-ubyte", "%s/%s-%s-idx%d-ubyte.gz",
                                 "%s/%s-%s.idx%d-ubyte", "%s/%s-%s.idx%d-ubyte.gz"};
    size_t len = strlen(dir) + strlen(split) + strlen(kind) + 32;
    char *path = malloc(len);
    for (size_t i = 0; path && i < sizeof forms / sizeof forms[0]; i++) {
        struct stat st;
        snprintf(path, len, forms[i], dir, split, kind, dims);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            return path;
    }
    free(path);
    return NULL;
}

NNC_RT int nnc_idx_load_split(const char *dir, const char *split, size_t x_size, int nclasses,
                              float scale, float shift, nnc_dataset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!dir || !split)
        return nnc__data_err(err, errlen, "nnc_idx_load_split: bad arguments");
    char *images = nnc__data_find_idx(dir, split, "images", 3);
    char *labels = nnc__data_find_idx(dir, split, "labels", 1);
    int rc;
    if (!images || !labels) {
        const char *kind = images ? "labels" : "images";
        int dims = images ? 1 : 3;
        rc = nnc__data_err(err, errlen,
                           "no %s %s in %s: looked for %s-%s-idx%d-ubyte and %s-%s.idx%d-ubyte, "
                           "with or without .gz",
                           split, kind, dir, split, kind, dims, split, kind, dims);
    } else {
        rc = nnc_idx_load(images, labels, x_size, nclasses, scale, shift, out, err, errlen);
    }
    free(images);
    free(labels);
    return rc;
}

/* ------------------------------------------------------------------
 * CIFAR-10 binary
 * ------------------------------------------------------------------ */

#define NNC__CIFAR_PIXELS 3072
#define NNC__CIFAR_RECORD (1 + NNC__CIFAR_PIXELS)

/* Appends one batch file's records to d, normalizing as it goes. */
NNC_RT int nnc__data_cifar_file(const char *path, float scale, const float *mean, const float *std,
                                nnc_dataset *d, char *err, size_t errlen)
{
    unsigned char *data;
    size_t len;
    if (nnc__data_read_all(path, &data, &len, err, errlen))
        return -1;
    int rc = 0;
    if (len == 0)
        rc = nnc__data_err(err, errlen, "%s: empty file", path);
    else if (len % NNC__CIFAR_RECORD != 0)
        rc = nnc__data_err(err, errlen,
                           "%s: %zu bytes is not a whole number of CIFAR-10 records (%d bytes each)",
                           path, len, NNC__CIFAR_RECORD);
    size_t records = len / NNC__CIFAR_RECORD;
    for (size_t r = 0; rc == 0 && r < records; r++)
        if (data[r * NNC__CIFAR_RECORD] >= 10)
            rc = nnc__data_err(err, errlen, "%s: label %d at record %zu is out of range for class(10)",
                               path, data[r * NNC__CIFAR_RECORD], r);
    float *x = NULL;
    int32_t *y = NULL;
    if (rc == 0) {
        size_t n = d->n + records;
        x = realloc(d->x, n * NNC__CIFAR_PIXELS * sizeof *x);
        if (x)
            d->x = x;
        y = realloc(d->y, n * sizeof *y);
        if (y)
            d->y = y;
        if (!x || !y)
            rc = nnc__data_err(err, errlen, "%s: out of memory", path);
    }
    for (size_t r = 0; rc == 0 && r < records; r++) {
        const unsigned char *rec = data + r * NNC__CIFAR_RECORD;
        float *dst = d->x + (d->n + r) * NNC__CIFAR_PIXELS;
        d->y[d->n + r] = rec[0];
        for (int i = 0; i < NNC__CIFAR_PIXELS; i++) {
            int c = i / 1024;
            dst[i] = ((float)rec[1 + i] * scale - (mean ? mean[c] : 0.0f)) / (std ? std[c] : 1.0f);
        }
    }
    if (rc == 0)
        d->n += records;
    free(data);
    return rc;
}

NNC_RT int nnc_cifar_load(const char *const *paths, int npaths, float scale, const float *mean,
                          const float *std, nnc_dataset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!paths || npaths <= 0)
        return nnc__data_err(err, errlen, "nnc_cifar_load: no files given");
    for (int c = 0; std && c < 3; c++)
        if (!(std[c] > 0.0f))
            return nnc__data_err(err, errlen, "nnc_cifar_load: std[%d] must be positive", c);
    nnc_dataset d = {.x_size = NNC__CIFAR_PIXELS, .nclasses = 10};
    for (int i = 0; i < npaths; i++) {
        if (nnc__data_cifar_file(paths[i], scale, mean, std, &d, err, errlen)) {
            nnc_dataset_free(&d);
            return -1;
        }
    }
    *out = d;
    return 0;
}

/* ------------------------------------------------------------------
 * CSV
 * ------------------------------------------------------------------ */

typedef struct nnc__data_csv {
    const char *path;
    size_t x_size, y_size;
    int nclasses;
    size_t fields;    /* per row */
    size_t label;     /* column index of the class label (nclasses > 0) */
    float scale, shift;
} nnc__data_csv;

NNC_RT int nnc__data_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses one field (without its comma or line end) as a finite number. */
NNC_RT int nnc__data_csv_number(const nnc__data_csv *c, size_t line, size_t col, const char *s,
                                size_t len, double *v, char *err, size_t errlen)
{
    while (len && nnc__data_is_blank(*s))
        s++, len--;
    while (len && nnc__data_is_blank(s[len - 1]))
        len--;
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"')
        s++, len -= 2;
    if (len == 0)
        return nnc__data_err(err, errlen, "%s:%zu: column %zu: empty field", c->path, line, col);
    char buf[128];
    if (len >= sizeof buf)
        return nnc__data_err(err, errlen, "%s:%zu: column %zu: \"%.40s...\" is not a number",
                             c->path, line, col, s);
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    *v = strtod(buf, &end);
    if (end != buf + len || isspace((unsigned char)buf[0]))
        return nnc__data_err(err, errlen, "%s:%zu: column %zu: \"%s\" is not a number",
                             c->path, line, col, buf);
    if (!isfinite(*v))
        return nnc__data_err(err, errlen, "%s:%zu: column %zu: \"%s\" is not a finite number",
                             c->path, line, col, buf);
    return 0;
}

NNC_RT size_t nnc__data_csv_count_fields(const char *s, size_t len)
{
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += s[i] == ',';
    return n;
}

/* Fills sample `row` of d from one line. */
NNC_RT int nnc__data_csv_row(const nnc__data_csv *c, size_t line, const char *s, size_t len,
                             nnc_dataset *d, size_t row, char *err, size_t errlen)
{
    size_t found = nnc__data_csv_count_fields(s, len);
    if (found != c->fields)
        return nnc__data_err(err, errlen, "%s:%zu: expected %zu fields (%zu inputs + %zu %s), found %zu",
                             c->path, line, c->fields, c->x_size, c->fields - c->x_size,
                             c->nclasses ? "label" : "targets", found);
    float *x = d->x + row * c->x_size;
    size_t xi = 0;
    for (size_t k = 0; k < found; k++) {
        size_t flen = 0;
        while (flen < len && s[flen] != ',')
            flen++;
        double v = 0; /* set by the parse below; gcc cannot always see that */
        if (nnc__data_csv_number(c, line, k + 1, s, flen, &v, err, errlen))
            return -1;
        if (c->nclasses && k == c->label) {
            if (v != floor(v))
                return nnc__data_err(err, errlen, "%s:%zu: column %zu: label %g is not an integer",
                                     c->path, line, k + 1, v);
            if (v < 0 || v >= c->nclasses)
                return nnc__data_err(err, errlen,
                                     "%s:%zu: column %zu: label %g is out of range for class(%d)",
                                     c->path, line, k + 1, v, c->nclasses);
            d->y[row] = (int32_t)v;
        } else if (!c->nclasses && k >= c->x_size) {
            d->yf[row * c->y_size + (k - c->x_size)] = (float)v;
        } else {
            x[xi++] = (float)v * c->scale + c->shift;
        }
        s += flen < len ? flen + 1 : flen;
        len -= flen < len ? flen + 1 : flen;
    }
    return 0;
}

/* Calls back for each data line: skips the header line if asked and
 * lines that are empty or blank; strips a trailing '\r'. Counts rows
 * when d is NULL, parses them otherwise. */
NNC_RT int nnc__data_csv_lines(const nnc__data_csv *c, const char *text, size_t len, int header,
                               nnc_dataset *d, size_t *rows, char *err, size_t errlen)
{
    size_t line = 0, pos = 0;
    *rows = 0;
    /* Spreadsheets often start their CSV with a UTF-8 byte order mark. */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        pos = 3;
    while (pos < len) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - s) : len - pos;
        pos += llen + (nl ? 1 : 0);
        line++;
        if (memchr(s, '\0', llen))
            return nnc__data_err(err, errlen, "%s:%zu: NUL byte; this is not a text file", c->path, line);
        if (llen && s[llen - 1] == '\r')
            llen--;
        size_t blank = 0;
        while (blank < llen && nnc__data_is_blank(s[blank]))
            blank++;
        if ((header && line == 1) || blank == llen)
            continue;
        if (d && nnc__data_csv_row(c, line, s, llen, d, *rows, err, errlen))
            return -1;
        (*rows)++;
    }
    return 0;
}

NNC_RT int nnc_csv_load(const char *path, size_t x_size, int label_col, int nclasses, size_t y_size,
                        int header, float scale, float shift, nnc_dataset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!path || nclasses < 0 || (nclasses == 0 && y_size == 0))
        return nnc__data_err(err, errlen, "nnc_csv_load: bad arguments");
    nnc__data_csv c = {.path = path, .x_size = x_size, .nclasses = nclasses, .scale = scale, .shift = shift};
    c.y_size = nclasses ? 0 : y_size;
    c.fields = x_size + (nclasses ? 1 : y_size);
    if (nclasses) {
        if (label_col >= (long long)c.fields || label_col < -1)
            return nnc__data_err(err, errlen, "%s: label column %d is outside the %zu columns",
                                 path, label_col, c.fields);
        c.label = label_col < 0 ? c.fields - 1 : (size_t)label_col;
    }
    unsigned char *text;
    size_t len, rows;
    if (nnc__data_read_all(path, &text, &len, err, errlen))
        return -1;
    nnc_dataset d = {.x_size = x_size, .y_size = c.y_size, .nclasses = nclasses};
    int rc = nnc__data_csv_lines(&c, (const char *)text, len, header, NULL, &rows, err, errlen);
    if (rc == 0 && rows == 0)
        rc = nnc__data_err(err, errlen, "%s: no data rows", path);
    if (rc == 0) {
        d.n = rows;
        d.x = malloc(rows * (x_size ? x_size : 1) * sizeof *d.x);
        if (nclasses)
            d.y = malloc(rows * sizeof *d.y);
        else
            d.yf = malloc(rows * c.y_size * sizeof *d.yf);
        if (!d.x || (nclasses ? !d.y : !d.yf))
            rc = nnc__data_err(err, errlen, "%s: out of memory for %zu rows", path, rows);
    }
    if (rc == 0)
        rc = nnc__data_csv_lines(&c, (const char *)text, len, header, &d, &rows, err, errlen);
    free(text);
    if (rc)
        nnc_dataset_free(&d);
    else
        *out = d;
    return rc;
}
