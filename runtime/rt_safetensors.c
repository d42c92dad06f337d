/* rt_safetensors.c — save and load weights in the safetensors format.
 *
 * Layout: u64 little-endian header length N; N bytes of JSON
 *   {"name":{"dtype":"F32","shape":[..],"data_offsets":[begin,end]}, ...,
 *    "__metadata__":{"key":"value", ...}}
 * padded with spaces so the data starts 8-aligned; then the tensor bytes,
 * little-endian, with data_offsets relative to the start of the data.
 *
 * A weights file is the one artifact a long training run leaves behind,
 * so saving is atomic (temporary file, fsync, rename) and loading checks
 * everything, including a CRC-32 of the data, before it overwrites the
 * model. Values are encoded byte by byte, so nothing here depends on the
 * host's byte order. */
#include "nnc_rt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(sizeof(float) == 4 && sizeof(double) == 8,
               "safetensors F32/F64 need 4-byte float and 8-byte double");

#define NNC__ST_NONE ((size_t)-1)
#define NNC__ST_MAX_DEPTH 32
#define NNC__ST_CHUNK 16384 /* bytes encoded or decoded per step */

__attribute__((format(printf, 3, 4)))
NNC_RT int nnc__st_err(char *err, size_t errlen, const char *fmt, ...)
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
 * CRC-32 (IEEE 802.3, reflected, as in zlib and Python's zlib.crc32).
 * A 16-entry table processed a nibble at a time: fast enough next to the
 * disk, and small enough to live on the stack (no static tables allowed).
 * ------------------------------------------------------------------ */

NNC_RT uint32_t nnc_crc32(uint32_t crc, const void *data, size_t len)
{
    const uint32_t table[16] = {
        0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu,
        0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
        0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
        0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu,
    };
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ table[crc & 15];
        crc = (crc >> 4) ^ table[crc & 15];
    }
    return ~crc;
}

/* ------------------------------------------------------------------
 * Small helpers shared by save and load.
 * ------------------------------------------------------------------ */

/* Offset of the first byte that is not part of valid UTF-8, or len.
 * The reference loader (serde_json over &str) refuses invalid UTF-8, so
 * the saver must never produce it and the loader reports it precisely. */
NNC_RT size_t nnc__st_utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t extra;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (len - i <= extra)
            return i;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += extra + 1;
    }
    return len;
}

NNC_RT int nnc__st_cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Returns a name that occurs twice, or NULL. *oom is set when the scratch
 * array cannot be allocated. */
NNC_RT const char *nnc__st_find_duplicate(const char *const *names, size_t n, int *oom)
{
    *oom = 0;
    if (n < 2)
        return NULL;
    const char **sorted = malloc(n * sizeof *sorted);
    if (!sorted) {
        *oom = 1;
        return NULL;
    }
    memcpy(sorted, names, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, nnc__st_cmp_strp);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            dup = sorted[i];
    free(sorted);
    return dup;
}

/* "[4, 3]" into buf, for messages. */
NNC_RT void nnc__st_format_shape(const int64_t *shape, int ndim, char *buf, size_t len)
{
    size_t used = 0;
    int w = snprintf(buf, len, "[");
    for (int i = 0; i < ndim && w >= 0; i++) {
        used += (size_t)w;
        if (used >= len)
            return;
        w = snprintf(buf + used, len - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    if (w >= 0 && used + (size_t)w < len)
        snprintf(buf + used + (size_t)w, len - used - (size_t)w, "]");
}

/* Element count, or -1 when a dimension is negative or the count (times 8
 * bytes) would not fit in memory. */
NNC_RT int64_t nnc__st_numel(const int64_t *shape, int ndim)
{
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return -1;
        if (shape[i] != 0 && count > (int64_t)(SIZE_MAX / 8) / shape[i])
            return -1;
        count *= shape[i];
    }
    return count;
}

NNC_RT void nnc__st_put_le(unsigned char *out, uint64_t v, int nbytes)
{
    for (int i = 0; i < nbytes; i++)
        out[i] = (unsigned char)(v >> (8 * i));
}

NNC_RT uint64_t nnc__st_get_le(const unsigned char *in, int nbytes)
{
    uint64_t v = 0;
    for (int i = nbytes - 1; i >= 0; i--)
        v = (v << 8) | in[i];
    return v;
}

/* ------------------------------------------------------------------
 * Save
 * ------------------------------------------------------------------ */

typedef struct nnc__st_buf {
    char *p;
    size_t len, cap;
    int oom;
} nnc__st_buf;

NNC_RT void nnc__st_buf_put(nnc__st_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

NNC_RT void nnc__st_buf_puts(nnc__st_buf *b, const char *s)
{
    nnc__st_buf_put(b, s, strlen(s));
}

NNC_RT void nnc__st_buf_json_string(nnc__st_buf *b, const char *s)
{
    nnc__st_buf_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            nnc__st_buf_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            nnc__st_buf_put(b, esc, 6);
        } else {
            nnc__st_buf_put(b, s, 1);
        }
    }
    nnc__st_buf_put(b, "\"", 1);
}

NNC_RT void nnc__st_buf_u64(nnc__st_buf *b, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    nnc__st_buf_puts(b, num);
}

NNC_RT int nnc__st_check_name(const char *path, const char *what, const char *s,
                              char *err, size_t errlen)
{
    if (!s)
        return nnc__st_err(err, errlen, "cannot save %s: %s is NULL", path, what);
    size_t len = strlen(s);
    if (nnc__st_utf8_invalid_at((const unsigned char *)s, len) != len)
        return nnc__st_err(err, errlen, "cannot save %s: %s \"%s\" is not valid UTF-8",
                           path, what, s);
    return 0;
}

/* Everything nnc_st_save checks before it creates any file. */
NNC_RT int nnc__st_check_save_args(const char *path, const nnc_st_tensor *t, int n,
                                   const void *base, int elem_size, const char *const *meta,
                                   char *err, size_t errlen)
{
    if (elem_size != 4 && elem_size != 8)
        return nnc__st_err(err, errlen, "cannot save %s: element size %d (must be 4 or 8)",
                           path, elem_size);
    if (n < 0 || (n > 0 && !t))
        return nnc__st_err(err, errlen, "cannot save %s: bad tensor list", path);
    for (int i = 0; i < n; i++) {
        if (nnc__st_check_name(path, "tensor name", t[i].name, err, errlen))
            return -1;
        if (t[i].name[0] == '\0' || strcmp(t[i].name, "__metadata__") == 0)
            return nnc__st_err(err, errlen, "cannot save %s: invalid tensor name \"%s\"",
                               path, t[i].name);
        if (t[i].ndim < 0 || t[i].ndim > NNC_ST_MAX_DIMS)
            return nnc__st_err(err, errlen, "cannot save %s: %s has %d dimensions (0..%d)",
                               path, t[i].name, t[i].ndim, NNC_ST_MAX_DIMS);
        int64_t numel = nnc__st_numel(t[i].shape, t[i].ndim);
        if (numel < 0)
            return nnc__st_err(err, errlen, "cannot save %s: %s has an invalid shape",
                               path, t[i].name);
        if (numel > 0 && !base)
            return nnc__st_err(err, errlen, "cannot save %s: no data", path);
    }
    size_t nmeta = 0;
    for (; meta && meta[nmeta]; nmeta += 2) {
        if (nnc__st_check_name(path, "metadata key", meta[nmeta], err, errlen) ||
            nnc__st_check_name(path, "metadata value", meta[nmeta + 1], err, errlen))
            return -1;
        if (strcmp(meta[nmeta], "format") == 0 || strcmp(meta[nmeta], "nnc_checksum") == 0)
            return nnc__st_err(err, errlen, "cannot save %s: metadata key \"%s\" is reserved",
                               path, meta[nmeta]);
    }
    const char **names = malloc(((size_t)n + nmeta / 2 + 1) * sizeof *names);
    if (!names)
        return nnc__st_err(err, errlen, "cannot save %s: out of memory", path);
    for (int i = 0; i < n; i++)
        names[i] = t[i].name;
    int oom = 0;
    const char *dup = nnc__st_find_duplicate(names, (size_t)n, &oom);
    int rc = 0;
    if (oom)
        rc = nnc__st_err(err, errlen, "cannot save %s: out of memory", path);
    else if (dup)
        rc = nnc__st_err(err, errlen, "cannot save %s: two tensors are named \"%s\"", path, dup);
    if (rc == 0) {
        for (size_t k = 0; k < nmeta / 2; k++)
            names[k] = meta[2 * k];
        dup = nnc__st_find_duplicate(names, nmeta / 2, &oom);
        if (oom)
            rc = nnc__st_err(err, errlen, "cannot save %s: out of memory", path);
        else if (dup)
            rc = nnc__st_err(err, errlen, "cannot save %s: metadata key \"%s\" given twice",
                             path, dup);
    }
    free(names);
    return rc;
}

/* Encodes every tensor's values little-endian, chunk by chunk, into the
 * CRC when crc is not NULL and into the file when f is not NULL.
 * Returns 0 or an errno. */
NNC_RT int nnc__st_emit_data(const nnc_st_tensor *t, int n, const void *base, int elem_size,
                             FILE *f, uint32_t *crc)
{
    unsigned char chunk[NNC__ST_CHUNK];
    size_t per_chunk = NNC__ST_CHUNK / (size_t)elem_size;
    for (int i = 0; i < n; i++) {
        size_t numel = (size_t)nnc__st_numel(t[i].shape, t[i].ndim);
        const unsigned char *src = (const unsigned char *)base + t[i].offset * (size_t)elem_size;
        for (size_t done = 0; done < numel;) {
            size_t k = numel - done < per_chunk ? numel - done : per_chunk;
            for (size_t e = 0; e < k; e++) {
                const unsigned char *v = src + (done + e) * (size_t)elem_size;
                if (elem_size == 4) {
                    uint32_t bits;
                    memcpy(&bits, v, 4);
                    nnc__st_put_le(chunk + e * 4, bits, 4);
                } else {
                    uint64_t bits;
                    memcpy(&bits, v, 8);
                    nnc__st_put_le(chunk + e * 8, bits, 8);
                }
            }
            size_t nbytes = k * (size_t)elem_size;
            if (crc)
                *crc = nnc_crc32(*crc, chunk, nbytes);
            if (f && fwrite(chunk, 1, nbytes, f) != nbytes)
                return errno ? errno : EIO;
            done += k;
        }
    }
    return 0;
}

/* The JSON header, space-padded so that 8 + its length is a multiple of 8. */
NNC_RT char *nnc__st_build_header(const nnc_st_tensor *t, int n, int elem_size,
                                  const char *const *meta, uint32_t crc, size_t *len)
{
    nnc__st_buf b = {0};
    char hex[9];
    snprintf(hex, sizeof hex, "%08x", (unsigned)crc);
    nnc__st_buf_puts(&b, "{\"__metadata__\":{\"format\":\"pt\",\"nnc_checksum\":\"");
    nnc__st_buf_puts(&b, hex);
    nnc__st_buf_puts(&b, "\"");
    for (size_t k = 0; meta && meta[k]; k += 2) {
        nnc__st_buf_puts(&b, ",");
        nnc__st_buf_json_string(&b, meta[k]);
        nnc__st_buf_puts(&b, ":");
        nnc__st_buf_json_string(&b, meta[k + 1]);
    }
    nnc__st_buf_puts(&b, "}");
    uint64_t begin = 0;
    for (int i = 0; i < n; i++) {
        uint64_t nbytes = (uint64_t)nnc__st_numel(t[i].shape, t[i].ndim) * (uint64_t)elem_size;
        nnc__st_buf_puts(&b, ",");
        nnc__st_buf_json_string(&b, t[i].name);
        nnc__st_buf_puts(&b, elem_size == 4 ? ":{\"dtype\":\"F32\",\"shape\":["
                                            : ":{\"dtype\":\"F64\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) {
            if (d)
                nnc__st_buf_puts(&b, ",");
            nnc__st_buf_u64(&b, (uint64_t)t[i].shape[d]);
        }
        nnc__st_buf_puts(&b, "],\"data_offsets\":[");
        nnc__st_buf_u64(&b, begin);
        nnc__st_buf_puts(&b, ",");
        nnc__st_buf_u64(&b, begin + nbytes);
        nnc__st_buf_puts(&b, "]}");
        begin += nbytes;
    }
    nnc__st_buf_puts(&b, "}");
    while (b.len % 8 != 0)
        nnc__st_buf_puts(&b, " ");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* Creates path.tmp.<pid> (or .tmp.<pid>.<k> if a stale one is in the
 * way) with O_EXCL, so two savers never share a temporary file. Unlike
 * mkstemp it keeps the usual 0666 & ~umask permissions. Returns 0 with
 * *fd_out open for writing, or an errno. */
NNC_RT int nnc__st_create_temp(const char *path, char **tmp_out, int *fd_out)
{
    size_t len = strlen(path) + 48;
    char *tmp = malloc(len);
    if (!tmp)
        return ENOMEM;
    int e = EEXIST;
    for (int k = 0; k < 100 && e == EEXIST; k++) {
        if (k == 0)
            snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
        else
            snprintf(tmp, len, "%s.tmp.%ld.%d", path, (long)getpid(), k);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *fd_out = fd;
            *tmp_out = tmp;
            return 0;
        }
        e = errno;
    }
    free(tmp);
    return e;
}

/* fsync the directory that holds path, so the rename itself survives a
 * crash. Filesystems that cannot sync directories (EINVAL) are fine. */
NNC_RT int nnc__st_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = malloc(2);
        if (dir)
            strcpy(dir, ".");
    } else {
        size_t len = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(len + 1);
        if (dir) {
            memcpy(dir, path, len);
            dir[len] = '\0';
        }
    }
    if (!dir)
        return ENOMEM;
    int e = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        if (fsync(fd) != 0 && errno != EINVAL)
            e = errno;
        close(fd);
    }
    free(dir);
    return e;
}

/* Writes header and data through fd (closed here) and makes them durable.
 * Returns 0 or an errno. */
NNC_RT int nnc__st_write_temp(int fd, const char *header, size_t header_len,
                              const nnc_st_tensor *t, int n, const void *base, int elem_size)
{
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        return e;
    }
    unsigned char len8[8];
    nnc__st_put_le(len8, header_len, 8);
    errno = 0;
    int e = 0;
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(header, 1, header_len, f) != header_len)
        e = errno ? errno : EIO;
    if (!e)
        e = nnc__st_emit_data(t, n, base, elem_size, f, NULL);
    if (!e && fflush(f) != 0)
        e = errno ? errno : EIO;
    if (!e && fsync(fileno(f)) != 0)
        e = errno;
    if (fclose(f) != 0 && !e)
        e = errno ? errno : EIO;
    return e;
}

NNC_RT int nnc_st_save(const char *path, const nnc_st_tensor *t, int n, const void *base,
                       int elem_size, const char *const *meta, char *err, size_t errlen)
{
    if (!path)
        return nnc__st_err(err, errlen, "cannot save weights: no path given");
    if (nnc__st_check_save_args(path, t, n, base, elem_size, meta, err, errlen))
        return -1;

    uint32_t crc = 0;
    nnc__st_emit_data(t, n, base, elem_size, NULL, &crc);
    size_t header_len = 0;
    char *header = nnc__st_build_header(t, n, elem_size, meta, crc, &header_len);
    if (!header)
        return nnc__st_err(err, errlen, "cannot save %s: out of memory", path);

    char *tmp = NULL;
    int fd = -1;
    int e = nnc__st_create_temp(path, &tmp, &fd);
    if (e) {
        free(header);
        return nnc__st_err(err, errlen, "cannot save %s: cannot create a temporary file next to it: %s",
                           path, strerror(e));
    }
    e = nnc__st_write_temp(fd, header, header_len, t, n, base, elem_size);
    free(header);
    if (e) {
        unlink(tmp);
        nnc__st_err(err, errlen, "cannot save %s: writing %s failed: %s", path, tmp, strerror(e));
        free(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        free(tmp);
        return nnc__st_err(err, errlen, "cannot save %s: cannot replace it: %s", path, strerror(e));
    }
    free(tmp);
    e = nnc__st_sync_dir(path);
    if (e)
        return nnc__st_err(err, errlen, "saved %s, but syncing its directory failed: %s",
                           path, strerror(e));
    return 0;
}

/* ------------------------------------------------------------------
 * A small strict JSON parser: objects, arrays, strings, integers.
 * Nodes live in one growable array and refer to each other by index;
 * decoded strings live in one NUL-separated text buffer, which never
 * needs more bytes than the header itself (a decoded string is no longer
 * than its escaped form, and its NUL replaces the two quotes).
 * ------------------------------------------------------------------ */

enum { NNC__ST_J_OBJECT, NNC__ST_J_ARRAY, NNC__ST_J_STRING, NNC__ST_J_INT };

typedef struct nnc__st_jnode {
    int type;
    size_t pos;      /* byte offset in the header, for messages */
    int64_t num;     /* J_INT */
    size_t str, len; /* J_STRING: text offset and byte length */
    size_t key;      /* member of an object: text offset of its key */
    size_t first;    /* J_OBJECT / J_ARRAY: first child */
    size_t next;     /* next sibling */
    size_t count;    /* J_OBJECT / J_ARRAY: number of children */
} nnc__st_jnode;

typedef struct nnc__st_json {
    const char *src;
    size_t len, pos;
    nnc__st_jnode *nodes;
    size_t nnodes, cap;
    char *text;
    size_t textlen;
    char msg[200];
    int failed;
} nnc__st_json;

__attribute__((format(printf, 3, 4)))
NNC_RT size_t nnc__st_jfail(nnc__st_json *j, size_t pos, const char *fmt, ...)
{
    if (!j->failed) {
        char what[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        snprintf(j->msg, sizeof j->msg, "invalid JSON at header byte %zu: %s", pos, what);
        j->failed = 1;
    }
    return NNC__ST_NONE;
}

NNC_RT size_t nnc__st_jnew(nnc__st_json *j, int type, size_t pos)
{
    if (j->nnodes == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 64;
        nnc__st_jnode *nodes = realloc(j->nodes, cap * sizeof *nodes);
        if (!nodes)
            return nnc__st_jfail(j, pos, "out of memory");
        j->nodes = nodes;
        j->cap = cap;
    }
    nnc__st_jnode *node = &j->nodes[j->nnodes];
    memset(node, 0, sizeof *node);
    node->type = type;
    node->pos = pos;
    node->first = node->next = NNC__ST_NONE;
    return j->nnodes++;
}

NNC_RT void nnc__st_jskip_ws(nnc__st_json *j)
{
    while (j->pos < j->len) {
        char c = j->src[j->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        j->pos++;
    }
}

NNC_RT int nnc__st_jhex4(nnc__st_json *j, size_t at, uint32_t *out)
{
    uint32_t v = 0;
    if (j->len - at < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        char c = j->src[at + (size_t)i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

NNC_RT void nnc__st_jput_utf8(nnc__st_json *j, uint32_t cp)
{
    char *o = j->text + j->textlen;
    if (cp < 0x80) {
        o[0] = (char)cp;
        j->textlen += 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        j->textlen += 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        j->textlen += 3;
    } else {
        o[0] = (char)(0xf0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[3] = (char)(0x80 | (cp & 0x3f));
        j->textlen += 4;
    }
}

/* \uXXXX, with surrogate pairs; j->pos is at the 'u'. */
NNC_RT int nnc__st_junicode_escape(nnc__st_json *j, size_t esc_pos)
{
    uint32_t cp, lo;
    if (nnc__st_jhex4(j, j->pos + 1, &cp)) {
        nnc__st_jfail(j, esc_pos, "\\u must be followed by 4 hex digits");
        return -1;
    }
    j->pos += 5;
    if (cp >= 0xdc00 && cp <= 0xdfff) {
        nnc__st_jfail(j, esc_pos, "unpaired low surrogate \\u%04x", (unsigned)cp);
        return -1;
    }
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (j->len - j->pos < 6 || j->src[j->pos] != '\\' || j->src[j->pos + 1] != 'u' ||
            nnc__st_jhex4(j, j->pos + 2, &lo) || lo < 0xdc00 || lo > 0xdfff) {
            nnc__st_jfail(j, esc_pos, "unpaired high surrogate \\u%04x", (unsigned)cp);
            return -1;
        }
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        j->pos += 6;
    }
    if (cp == 0) {
        nnc__st_jfail(j, esc_pos, "\\u0000 is not allowed in names");
        return -1;
    }
    nnc__st_jput_utf8(j, cp);
    return 0;
}

/* Decodes the string at j->pos (an opening quote) into the text buffer;
 * returns its text offset, or NNC__ST_NONE. */
NNC_RT size_t nnc__st_jstring(nnc__st_json *j, size_t *len_out)
{
    size_t start = j->textlen;
    j->pos++;
    for (;;) {
        if (j->pos >= j->len)
            return nnc__st_jfail(j, j->pos, "unterminated string");
        unsigned char c = (unsigned char)j->src[j->pos];
        if (c == '"') {
            j->pos++;
            break;
        }
        if (c < 0x20)
            return nnc__st_jfail(j, j->pos, "control character 0x%02x in string", c);
        if (c != '\\') {
            j->text[j->textlen++] = (char)c;
            j->pos++;
            continue;
        }
        size_t esc_pos = j->pos++;
        if (j->pos >= j->len)
            return nnc__st_jfail(j, esc_pos, "unterminated string");
        const char *simple = "\"\"\\\\//b\bf\fn\nr\rt\t";
        char e = j->src[j->pos];
        const char *hit = NULL;
        for (const char *s = simple; *s && !hit; s += 2)
            if (*s == e)
                hit = s;
        if (hit) {
            j->text[j->textlen++] = hit[1];
            j->pos++;
        } else if (e == 'u') {
            if (nnc__st_junicode_escape(j, esc_pos))
                return NNC__ST_NONE;
        } else {
            return nnc__st_jfail(j, esc_pos, "invalid escape \\%c", e);
        }
    }
    *len_out = j->textlen - start;
    j->text[j->textlen++] = '\0';
    return start;
}

NNC_RT size_t nnc__st_jinteger(nnc__st_json *j)
{
    size_t start = j->pos;
    int neg = 0;
    if (j->src[j->pos] == '-') {
        neg = 1;
        j->pos++;
    }
    if (j->pos >= j->len || j->src[j->pos] < '0' || j->src[j->pos] > '9')
        return nnc__st_jfail(j, start, "invalid number");
    if (j->src[j->pos] == '0' && j->pos + 1 < j->len && j->src[j->pos + 1] >= '0' &&
        j->src[j->pos + 1] <= '9')
        return nnc__st_jfail(j, start, "leading zero in number");
    uint64_t v = 0;
    while (j->pos < j->len && j->src[j->pos] >= '0' && j->src[j->pos] <= '9') {
        unsigned d = (unsigned)(j->src[j->pos] - '0');
        if (v > (UINT64_C(9223372036854775807) - d) / 10)
            return nnc__st_jfail(j, start, "integer too large");
        v = v * 10 + d;
        j->pos++;
    }
    if (j->pos < j->len && (j->src[j->pos] == '.' || j->src[j->pos] == 'e' || j->src[j->pos] == 'E'))
        return nnc__st_jfail(j, start, "only integers are allowed here");
    size_t node = nnc__st_jnew(j, NNC__ST_J_INT, start);
    if (node != NNC__ST_NONE)
        j->nodes[node].num = neg ? -(int64_t)v : (int64_t)v;
    return node;
}

NNC_RT size_t nnc__st_jvalue(nnc__st_json *j, int depth);

/* Appends child to parent's list; tail tracks the last child. */
NNC_RT void nnc__st_jlink(nnc__st_json *j, size_t parent, size_t *tail, size_t child)
{
    if (*tail == NNC__ST_NONE)
        j->nodes[parent].first = child;
    else
        j->nodes[*tail].next = child;
    *tail = child;
    j->nodes[parent].count++;
}

NNC_RT size_t nnc__st_jarray(nnc__st_json *j, int depth)
{
    size_t node = nnc__st_jnew(j, NNC__ST_J_ARRAY, j->pos);
    if (node == NNC__ST_NONE)
        return node;
    size_t tail = NNC__ST_NONE;
    j->pos++;
    nnc__st_jskip_ws(j);
    if (j->pos < j->len && j->src[j->pos] == ']') {
        j->pos++;
        return node;
    }
    for (;;) {
        size_t child = nnc__st_jvalue(j, depth + 1);
        if (child == NNC__ST_NONE)
            return child;
        nnc__st_jlink(j, node, &tail, child);
        nnc__st_jskip_ws(j);
        if (j->pos < j->len && j->src[j->pos] == ',') {
            j->pos++;
            continue;
        }
        if (j->pos < j->len && j->src[j->pos] == ']') {
            j->pos++;
            return node;
        }
        return nnc__st_jfail(j, j->pos, "expected ',' or ']' in array");
    }
}

/* Rejects an object that has the same key twice (sorting keeps this
 * O(k log k) for headers with many thousands of tensors). */
NNC_RT size_t nnc__st_jcheck_duplicates(nnc__st_json *j, size_t node)
{
    size_t count = j->nodes[node].count;
    if (count < 2)
        return node;
    const char **keys = malloc(count * sizeof *keys);
    if (!keys)
        return nnc__st_jfail(j, j->nodes[node].pos, "out of memory");
    size_t k = 0;
    for (size_t c = j->nodes[node].first; c != NNC__ST_NONE; c = j->nodes[c].next)
        keys[k++] = j->text + j->nodes[c].key;
    int oom = 0;
    const char *dup = nnc__st_find_duplicate(keys, count, &oom);
    size_t rc = node;
    if (oom)
        rc = nnc__st_jfail(j, j->nodes[node].pos, "out of memory");
    else if (dup)
        rc = nnc__st_jfail(j, j->nodes[node].pos, "duplicate key \"%s\" in object", dup);
    free(keys);
    return rc;
}

NNC_RT size_t nnc__st_jobject(nnc__st_json *j, int depth)
{
    size_t node = nnc__st_jnew(j, NNC__ST_J_OBJECT, j->pos);
    if (node == NNC__ST_NONE)
        return node;
    size_t tail = NNC__ST_NONE;
    j->pos++;
    nnc__st_jskip_ws(j);
    if (j->pos < j->len && j->src[j->pos] == '}') {
        j->pos++;
        return node;
    }
    for (;;) {
        nnc__st_jskip_ws(j);
        if (j->pos >= j->len || j->src[j->pos] != '"')
            return nnc__st_jfail(j, j->pos, "expected a string key in object");
        size_t keylen;
        size_t key = nnc__st_jstring(j, &keylen);
        if (key == NNC__ST_NONE)
            return key;
        nnc__st_jskip_ws(j);
        if (j->pos >= j->len || j->src[j->pos] != ':')
            return nnc__st_jfail(j, j->pos, "expected ':' after object key");
        j->pos++;
        size_t child = nnc__st_jvalue(j, depth + 1);
        if (child == NNC__ST_NONE)
            return child;
        j->nodes[child].key = key;
        nnc__st_jlink(j, node, &tail, child);
        nnc__st_jskip_ws(j);
        if (j->pos < j->len && j->src[j->pos] == ',') {
            j->pos++;
            continue;
        }
        if (j->pos < j->len && j->src[j->pos] == '}') {
            j->pos++;
            return nnc__st_jcheck_duplicates(j, node);
        }
        return nnc__st_jfail(j, j->pos, "expected ',' or '}' in object");
    }
}

NNC_RT size_t nnc__st_jvalue(nnc__st_json *j, int depth)
{
    nnc__st_jskip_ws(j);
    if (j->pos >= j->len)
        return nnc__st_jfail(j, j->pos, "unexpected end of header");
    if (depth > NNC__ST_MAX_DEPTH)
        return nnc__st_jfail(j, j->pos, "nested too deeply");
    char c = j->src[j->pos];
    if (c == '{')
        return nnc__st_jobject(j, depth);
    if (c == '[')
        return nnc__st_jarray(j, depth);
    if (c == '-' || (c >= '0' && c <= '9'))
        return nnc__st_jinteger(j);
    if (c == '"') {
        size_t start = j->pos, len;
        size_t str = nnc__st_jstring(j, &len);
        if (str == NNC__ST_NONE)
            return str;
        size_t node = nnc__st_jnew(j, NNC__ST_J_STRING, start);
        if (node != NNC__ST_NONE) {
            j->nodes[node].str = str;
            j->nodes[node].len = len;
        }
        return node;
    }
    if (c >= 0x20 && c < 0x7f)
        return nnc__st_jfail(j, j->pos, "unexpected '%c' (only objects, arrays, strings and integers are allowed)", c);
    return nnc__st_jfail(j, j->pos, "unexpected byte 0x%02x", (unsigned)(unsigned char)c);
}

/* Parses src[0..len) as one JSON value followed only by whitespace.
 * Returns 0 with j ready, or -1 with j->msg set; free with jfree. */
NNC_RT int nnc__st_jparse(nnc__st_json *j, const char *src, size_t len)
{
    memset(j, 0, sizeof *j);
    j->src = src;
    j->len = len;
    j->text = malloc(len + 1);
    if (!j->text) {
        nnc__st_jfail(j, 0, "out of memory");
        return -1;
    }
    size_t bad = nnc__st_utf8_invalid_at((const unsigned char *)src, len);
    if (bad != len) {
        nnc__st_jfail(j, bad, "invalid UTF-8");
        return -1;
    }
    if (nnc__st_jvalue(j, 0) == NNC__ST_NONE)
        return -1;
    nnc__st_jskip_ws(j);
    if (j->pos != len) {
        nnc__st_jfail(j, j->pos, "unexpected data after the JSON object");
        return -1;
    }
    return 0;
}

NNC_RT void nnc__st_jfree(nnc__st_json *j)
{
    free(j->nodes);
    free(j->text);
    j->nodes = NULL;
    j->text = NULL;
}

/* ------------------------------------------------------------------
 * Reading and validating a file's header.
 * ------------------------------------------------------------------ */

typedef struct nnc__st_entry {
    const char *name;
    const char *dtype;
    int dtype_size;      /* bytes per element */
    int ndim;
    int64_t shape[NNC_ST_MAX_DIMS];
    uint64_t begin, end; /* byte offsets in the data section */
    int used;            /* matched by a model tensor */
} nnc__st_entry;

typedef struct nnc__st_file {
    const char *path;
    FILE *f;             /* positioned at the start of the data section */
    uint64_t data_len;
    char *header;
    nnc__st_json json;
    nnc__st_entry *entries;
    size_t nentries;
    size_t meta;         /* __metadata__ object node, or NNC__ST_NONE */
} nnc__st_file;

NNC_RT int nnc__st_dtype_size(const char *dtype)
{
    const char *const names[] = {"F64", "I64", "U64", "F32", "I32", "U32", "F16", "BF16",
                                 "I16", "U16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2"};
    const int sizes[] = {8, 8, 8, 4, 4, 4, 2, 2, 2, 2, 1, 1, 1, 1, 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (strcmp(dtype, names[i]) == 0)
            return sizes[i];
    return 0;
}

NNC_RT int nnc__st_parse_shape(nnc__st_file *sf, nnc__st_entry *e, size_t node,
                               char *err, size_t errlen)
{
    const nnc__st_json *j = &sf->json;
    if (j->nodes[node].type != NNC__ST_J_ARRAY)
        return nnc__st_err(err, errlen, "%s: tensor %s: \"shape\" must be an array",
                           sf->path, e->name);
    if (j->nodes[node].count > NNC_ST_MAX_DIMS)
        return nnc__st_err(err, errlen, "%s: tensor %s has %zu dimensions, at most %d are supported",
                           sf->path, e->name, j->nodes[node].count, NNC_ST_MAX_DIMS);
    e->ndim = 0;
    for (size_t c = j->nodes[node].first; c != NNC__ST_NONE; c = j->nodes[c].next) {
        if (j->nodes[c].type != NNC__ST_J_INT || j->nodes[c].num < 0)
            return nnc__st_err(err, errlen, "%s: tensor %s: shape entries must be non-negative integers",
                               sf->path, e->name);
        e->shape[e->ndim++] = j->nodes[c].num;
    }
    return 0;
}

NNC_RT int nnc__st_parse_offsets(nnc__st_file *sf, nnc__st_entry *e, size_t node,
                                 char *err, size_t errlen)
{
    const nnc__st_json *j = &sf->json;
    size_t a = j->nodes[node].first;
    if (j->nodes[node].type != NNC__ST_J_ARRAY || j->nodes[node].count != 2 ||
        j->nodes[a].type != NNC__ST_J_INT || j->nodes[j->nodes[a].next].type != NNC__ST_J_INT ||
        j->nodes[a].num < 0 || j->nodes[j->nodes[a].next].num < 0)
        return nnc__st_err(err, errlen,
                           "%s: tensor %s: \"data_offsets\" must be [begin, end] with non-negative integers",
                           sf->path, e->name);
    e->begin = (uint64_t)j->nodes[a].num;
    e->end = (uint64_t)j->nodes[j->nodes[a].next].num;
    return 0;
}

/* Checks one tensor entry's fields and that its byte range fits its
 * dtype and shape and lies inside the data section. */
NNC_RT int nnc__st_parse_entry(nnc__st_file *sf, nnc__st_entry *e, size_t node,
                               char *err, size_t errlen)
{
    const nnc__st_json *j = &sf->json;
    if (j->nodes[node].type != NNC__ST_J_OBJECT)
        return nnc__st_err(err, errlen, "%s: tensor %s: expected an object", sf->path, e->name);
    size_t dtype = NNC__ST_NONE, shape = NNC__ST_NONE, offsets = NNC__ST_NONE;
    for (size_t c = j->nodes[node].first; c != NNC__ST_NONE; c = j->nodes[c].next) {
        const char *key = j->text + j->nodes[c].key;
        if (strcmp(key, "dtype") == 0)
            dtype = c;
        else if (strcmp(key, "shape") == 0)
            shape = c;
        else if (strcmp(key, "data_offsets") == 0)
            offsets = c;
        else
            return nnc__st_err(err, errlen, "%s: tensor %s: unexpected field \"%s\"",
                               sf->path, e->name, key);
    }
    const char *missing = dtype == NNC__ST_NONE ? "dtype"
                          : shape == NNC__ST_NONE ? "shape"
                          : offsets == NNC__ST_NONE ? "data_offsets" : NULL;
    if (missing)
        return nnc__st_err(err, errlen, "%s: tensor %s: missing \"%s\"", sf->path, e->name, missing);
    if (j->nodes[dtype].type != NNC__ST_J_STRING)
        return nnc__st_err(err, errlen, "%s: tensor %s: \"dtype\" must be a string", sf->path, e->name);
    e->dtype = j->text + j->nodes[dtype].str;
    e->dtype_size = nnc__st_dtype_size(e->dtype);
    if (!e->dtype_size)
        return nnc__st_err(err, errlen, "%s: tensor %s: unknown dtype \"%s\"", sf->path, e->name, e->dtype);
    if (nnc__st_parse_shape(sf, e, shape, err, errlen) ||
        nnc__st_parse_offsets(sf, e, offsets, err, errlen))
        return -1;

    char shape_text[200];
    nnc__st_format_shape(e->shape, e->ndim, shape_text, sizeof shape_text);
    int64_t numel = nnc__st_numel(e->shape, e->ndim);
    if (numel < 0)
        return nnc__st_err(err, errlen, "%s: tensor %s: shape %s is too large", sf->path, e->name, shape_text);
    uint64_t need = (uint64_t)numel * (uint64_t)e->dtype_size;
    if (e->end < e->begin || e->end - e->begin != need)
        return nnc__st_err(err, errlen,
                           "%s: tensor %s: data_offsets [%llu, %llu] do not match %s %s (%llu bytes)",
                           sf->path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                           e->dtype, shape_text, (unsigned long long)need);
    if (e->end > sf->data_len)
        return nnc__st_err(err, errlen,
                           "%s: tensor %s: data_offsets [%llu, %llu] run past the end of the "
                           "data section (%llu bytes); the file is truncated or corrupt",
                           sf->path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                           (unsigned long long)sf->data_len);
    return 0;
}

NNC_RT int nnc__st_check_metadata(nnc__st_file *sf, size_t node, char *err, size_t errlen)
{
    const nnc__st_json *j = &sf->json;
    if (j->nodes[node].type != NNC__ST_J_OBJECT)
        return nnc__st_err(err, errlen, "%s: \"__metadata__\" must be an object", sf->path);
    for (size_t c = j->nodes[node].first; c != NNC__ST_NONE; c = j->nodes[c].next)
        if (j->nodes[c].type != NNC__ST_J_STRING)
            return nnc__st_err(err, errlen, "%s: metadata \"%s\" must be a string",
                               sf->path, j->text + j->nodes[c].key);
    sf->meta = node;
    return 0;
}

NNC_RT int nnc__st_cmp_entry_range(const void *a, const void *b)
{
    const nnc__st_entry *x = *(const nnc__st_entry *const *)a;
    const nnc__st_entry *y = *(const nnc__st_entry *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* The tensors must tile the data section exactly: no overlap (two
 * tensors sharing bytes), no gap, nothing left over. */
NNC_RT int nnc__st_check_layout(nnc__st_file *sf, char *err, size_t errlen)
{
    if (sf->nentries == 0) {
        if (sf->data_len != 0)
            return nnc__st_err(err, errlen, "%s: %llu bytes of data but no tensors",
                               sf->path, (unsigned long long)sf->data_len);
        return 0;
    }
    nnc__st_entry **order = malloc(sf->nentries * sizeof *order);
    if (!order)
        return nnc__st_err(err, errlen, "%s: out of memory", sf->path);
    for (size_t i = 0; i < sf->nentries; i++)
        order[i] = &sf->entries[i];
    qsort(order, sf->nentries, sizeof *order, nnc__st_cmp_entry_range);
    uint64_t covered = 0;
    const char *prev = NULL;
    int rc = 0;
    for (size_t i = 0; i < sf->nentries && rc == 0; i++) {
        const nnc__st_entry *e = order[i];
        if (e->begin < covered)
            rc = nnc__st_err(err, errlen, "%s: tensors %s and %s overlap in the data section",
                             sf->path, prev, e->name);
        else if (e->begin > covered)
            rc = nnc__st_err(err, errlen,
                             "%s: bytes %llu..%llu of the data section belong to no tensor (gap before %s)",
                             sf->path, (unsigned long long)covered, (unsigned long long)e->begin, e->name);
        covered = e->end;
        prev = e->name;
    }
    free(order);
    if (rc == 0 && covered != sf->data_len)
        rc = nnc__st_err(err, errlen,
                         "%s: the data section has %llu bytes but the tensors cover only %llu",
                         sf->path, (unsigned long long)sf->data_len, (unsigned long long)covered);
    return rc;
}

/* Walks the top-level object: one entry per tensor, plus __metadata__. */
NNC_RT int nnc__st_read_entries(nnc__st_file *sf, char *err, size_t errlen)
{
    const nnc__st_json *j = &sf->json;
    if (j->nodes[0].type != NNC__ST_J_OBJECT)
        return nnc__st_err(err, errlen, "%s: the header must be a JSON object", sf->path);
    sf->entries = calloc(j->nodes[0].count + 1, sizeof *sf->entries);
    if (!sf->entries)
        return nnc__st_err(err, errlen, "%s: out of memory", sf->path);
    for (size_t c = j->nodes[0].first; c != NNC__ST_NONE; c = j->nodes[c].next) {
        const char *key = j->text + j->nodes[c].key;
        if (strcmp(key, "__metadata__") == 0) {
            if (nnc__st_check_metadata(sf, c, err, errlen))
                return -1;
            continue;
        }
        nnc__st_entry *e = &sf->entries[sf->nentries++];
        e->name = key;
        if (nnc__st_parse_entry(sf, e, c, err, errlen))
            return -1;
    }
    return nnc__st_check_layout(sf, err, errlen);
}

NNC_RT void nnc__st_close(nnc__st_file *sf)
{
    if (sf->f)
        fclose(sf->f);
    free(sf->header);
    free(sf->entries);
    nnc__st_jfree(&sf->json);
    memset(sf, 0, sizeof *sf);
}

/* Opens path, reads and checks the header; on success sf->f is at the
 * first data byte. On failure everything is released. */
NNC_RT int nnc__st_open(nnc__st_file *sf, const char *path, char *err, size_t errlen)
{
    memset(sf, 0, sizeof *sf);
    sf->path = path;
    sf->meta = NNC__ST_NONE;
    sf->f = fopen(path, "rb");
    if (!sf->f)
        return nnc__st_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(sf->f), &st) != 0 || !S_ISREG(st.st_mode)) {
        nnc__st_close(sf);
        return nnc__st_err(err, errlen, "%s: not a regular file", path);
    }
    uint64_t size = (uint64_t)st.st_size;
    unsigned char len8[8];
    if (size < 8 || fread(len8, 1, 8, sf->f) != 8) {
        nnc__st_close(sf);
        return nnc__st_err(err, errlen, "%s: too short for a safetensors file (%llu bytes)",
                           path, (unsigned long long)size);
    }
    uint64_t header_len = nnc__st_get_le(len8, 8);
    if (header_len > NNC_ST_MAX_HEADER || header_len > size - 8) {
        nnc__st_close(sf);
        return nnc__st_err(err, errlen,
                           "%s: header length %llu is impossible (file has %llu bytes); "
                           "not a safetensors file, or corrupt",
                           path, (unsigned long long)header_len, (unsigned long long)size);
    }
    sf->data_len = size - 8 - header_len;
    sf->header = malloc((size_t)header_len + 1);
    if (!sf->header) {
        nnc__st_close(sf);
        return nnc__st_err(err, errlen, "%s: out of memory reading the header", path);
    }
    if (fread(sf->header, 1, (size_t)header_len, sf->f) != header_len) {
        nnc__st_close(sf);
        return nnc__st_err(err, errlen, "%s: cannot read the header", path);
    }
    sf->header[header_len] = '\0';
    if (nnc__st_jparse(&sf->json, sf->header, (size_t)header_len)) {
        nnc__st_err(err, errlen, "%s: %s", path, sf->json.msg);
        nnc__st_close(sf);
        return -1;
    }
    if (nnc__st_read_entries(sf, err, errlen)) {
        nnc__st_close(sf);
        return -1;
    }
    return 0;
}

/* The metadata value for key, or NULL. */
NNC_RT const char *nnc__st_meta(const nnc__st_file *sf, const char *key, size_t *len)
{
    if (sf->meta == NNC__ST_NONE)
        return NULL;
    const nnc__st_json *j = &sf->json;
    for (size_t c = j->nodes[sf->meta].first; c != NNC__ST_NONE; c = j->nodes[c].next) {
        if (strcmp(j->text + j->nodes[c].key, key) == 0) {
            *len = j->nodes[c].len;
            return j->text + j->nodes[c].str;
        }
    }
    return NULL;
}

NNC_RT int nnc_st_get_meta(const char *path, const char *key, char *out, size_t outlen,
                           char *err, size_t errlen)
{
    nnc__st_file sf;
    if (!path || !key)
        return nnc__st_err(err, errlen, "nnc_st_get_meta: no path or key given");
    if (nnc__st_open(&sf, path, err, errlen))
        return -1;
    size_t len = 0;
    const char *value = nnc__st_meta(&sf, key, &len);
    int rc = 1;
    if (value && (!out || len + 1 > outlen)) {
        rc = nnc__st_err(err, errlen, "%s: metadata \"%s\" has %zu bytes, more than the buffer holds",
                         path, key, len);
    } else if (value) {
        memcpy(out, value, len + 1);
        rc = 0;
    }
    nnc__st_close(&sf);
    return rc;
}

/* ------------------------------------------------------------------
 * Load
 * ------------------------------------------------------------------ */

NNC_RT int nnc__st_cmp_entry_name(const void *a, const void *b)
{
    return strcmp((*(const nnc__st_entry *const *)a)->name, (*(const nnc__st_entry *const *)b)->name);
}

NNC_RT int nnc__st_check_model(const char *path, const nnc_st_tensor *t, int n, void *base,
                               int elem_size, char *err, size_t errlen)
{
    if (elem_size != 4 && elem_size != 8)
        return nnc__st_err(err, errlen, "cannot load %s: element size %d (must be 4 or 8)",
                           path, elem_size);
    if (n < 0 || (n > 0 && (!t || !base)))
        return nnc__st_err(err, errlen, "cannot load %s: bad tensor list", path);
    for (int i = 0; i < n; i++) {
        if (!t[i].name)
            return nnc__st_err(err, errlen, "cannot load %s: model tensor %d has no name", path, i);
        if (t[i].ndim < 0 || t[i].ndim > NNC_ST_MAX_DIMS || nnc__st_numel(t[i].shape, t[i].ndim) < 0)
            return nnc__st_err(err, errlen, "cannot load %s: model tensor %s has an invalid shape",
                               path, t[i].name);
    }
    return 0;
}

/* Pairs each model tensor with the file's entry of the same name and
 * checks dtype and shape; match[i] is NULL for a tensor the file lacks
 * (allowed only with NNC_ST_PARTIAL). */
NNC_RT int nnc__st_match(nnc__st_file *sf, const nnc_st_tensor *t, int n, int flags,
                         const nnc__st_entry **match, char *err, size_t errlen)
{
    nnc__st_entry **by_name = malloc((sf->nentries + 1) * sizeof *by_name);
    if (!by_name)
        return nnc__st_err(err, errlen, "%s: out of memory", sf->path);
    for (size_t i = 0; i < sf->nentries; i++)
        by_name[i] = &sf->entries[i];
    qsort(by_name, sf->nentries, sizeof *by_name, nnc__st_cmp_entry_name);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        nnc__st_entry key_entry = {.name = t[i].name};
        const nnc__st_entry *key = &key_entry;
        nnc__st_entry **hit = bsearch(&key, by_name, sf->nentries, sizeof *by_name, nnc__st_cmp_entry_name);
        match[i] = hit ? *hit : NULL;
        if (!hit) {
            if (!(flags & NNC_ST_PARTIAL))
                rc = nnc__st_err(err, errlen, "%s: tensor %s is missing from the file", sf->path, t[i].name);
            continue;
        }
        nnc__st_entry *e = *hit;
        if (e->used)
            rc = nnc__st_err(err, errlen, "cannot load %s: the model has two tensors named %s",
                             sf->path, t[i].name);
        e->used = 1;
        if (rc == 0 && strcmp(e->dtype, "F32") != 0 && strcmp(e->dtype, "F64") != 0)
            rc = nnc__st_err(err, errlen, "%s: tensor %s has dtype %s; only F32 and F64 can be loaded",
                             sf->path, e->name, e->dtype);
        int same = e->ndim == t[i].ndim;
        for (int d = 0; same && d < e->ndim; d++)
            same = e->shape[d] == t[i].shape[d];
        if (rc == 0 && !same) {
            char in_file[200], in_model[200];
            nnc__st_format_shape(e->shape, e->ndim, in_file, sizeof in_file);
            nnc__st_format_shape(t[i].shape, t[i].ndim, in_model, sizeof in_model);
            rc = nnc__st_err(err, errlen, "%s: %s: shape %s in file, model expects %s",
                             sf->path, e->name, in_file, in_model);
        }
    }
    for (size_t i = 0; i < sf->nentries && rc == 0; i++)
        if (!sf->entries[i].used && !(flags & NNC_ST_PARTIAL))
            rc = nnc__st_err(err, errlen, "%s: tensor %s in the file is not part of the model",
                             sf->path, sf->entries[i].name);
    free(by_name);
    return rc;
}

NNC_RT int nnc__st_verify_checksum(nnc__st_file *sf, const unsigned char *data, char *err, size_t errlen)
{
    size_t len = 0;
    const char *want = nnc__st_meta(sf, "nnc_checksum", &len);
    if (!want)
        return 0;
    char have[9];
    snprintf(have, sizeof have, "%08x", (unsigned)nnc_crc32(0, data, (size_t)sf->data_len));
    int same = len == 8;
    for (size_t i = 0; same && i < 8; i++) {
        char c = want[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        same = c == have[i];
    }
    if (!same)
        return nnc__st_err(err, errlen,
                           "%s: checksum mismatch: file is corrupt (header says %.20s, data gives %s)",
                           sf->path, want, have);
    return 0;
}

/* Copies one tensor from the file's bytes into the model, converting
 * between F32 and F64 as needed. */
NNC_RT void nnc__st_decode(const nnc__st_entry *e, const unsigned char *src, void *dst, int elem_size)
{
    size_t numel = (size_t)nnc__st_numel(e->shape, e->ndim);
    for (size_t i = 0; i < numel; i++) {
        double v;
        if (e->dtype_size == 4) {
            uint32_t bits = (uint32_t)nnc__st_get_le(src + 4 * i, 4);
            float fv;
            memcpy(&fv, &bits, 4);
            v = fv;
        } else {
            uint64_t bits = nnc__st_get_le(src + 8 * i, 8);
            memcpy(&v, &bits, 8);
        }
        if (elem_size == 4)
            ((float *)dst)[i] = (float)v;
        else
            ((double *)dst)[i] = v;
    }
}

NNC_RT int nnc_st_load(const char *path, const nnc_st_tensor *t, int n, void *base, int elem_size,
                       int flags, char *err, size_t errlen)
{
    if (!path)
        return nnc__st_err(err, errlen, "cannot load weights: no path given");
    if (nnc__st_check_model(path, t, n, base, elem_size, err, errlen))
        return -1;
    nnc__st_file sf;
    if (nnc__st_open(&sf, path, err, errlen))
        return -1;
    const nnc__st_entry **match = calloc((size_t)n + 1, sizeof *match);
    unsigned char *data = NULL;
    int rc = 0;
    if (!match)
        rc = nnc__st_err(err, errlen, "%s: out of memory", path);
    if (rc == 0)
        rc = nnc__st_match(&sf, t, n, flags, match, err, errlen);
    if (rc == 0 && sf.data_len > SIZE_MAX - 1)
        rc = nnc__st_err(err, errlen, "%s: data section too large for this machine", path);
    if (rc == 0 && !(data = malloc((size_t)sf.data_len + 1)))
        rc = nnc__st_err(err, errlen, "%s: out of memory for %llu bytes of data",
                         path, (unsigned long long)sf.data_len);
    if (rc == 0 && fread(data, 1, (size_t)sf.data_len, sf.f) != sf.data_len)
        rc = nnc__st_err(err, errlen, "%s: cannot read the data section: %s", path,
                         ferror(sf.f) ? strerror(errno) : "file shrank while reading");
    if (rc == 0)
        rc = nnc__st_verify_checksum(&sf, data, err, errlen);
    /* Only now, with everything checked, does the model change. */
    for (int i = 0; i < n && rc == 0; i++)
        if (match[i])
            nnc__st_decode(match[i], data + match[i]->begin,
                           (unsigned char *)base + t[i].offset * (size_t)elem_size, elem_size);
    free(data);
    free(match);
    nnc__st_close(&sf);
    return rc;
}
