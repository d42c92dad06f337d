/* check_runtime.c — unit tests for the embedded runtime (runtime/).
 *
 * Built two ways: against the runtime's .c files as separate translation
 * units, and after the whole runtime concatenated the way nnc embeds it
 * (tests/runtime_embed_check.sh --run-tests), so both linkages are tested.
 * Every file the tests write lives in a fresh mkdtemp directory that is
 * removed afterwards. */
#include "nnc_rt.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

/* ==================================================================
 * Scratch directory and file helpers
 * ================================================================== */

static char g_dir[256];

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, ent->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void scratch_setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/nnc_rt_test.XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

static void scratch_teardown(void)
{
    remove_tree(g_dir);
}

/* Path of a file in the scratch directory; buf must hold 512 bytes. */
static char *in_dir(char *buf, const char *name)
{
    snprintf(buf, 512, "%s/%s", g_dir, name);
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_gz(const char *path, const void *data, size_t len)
{
    gzFile gz = gzopen(path, "wb");
    ck_assert_ptr_nonnull(gz);
    ck_assert_int_eq(gzwrite(gz, data, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(gz), Z_OK);
}

/* Whole file into a malloc'd buffer. */
static unsigned char *read_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static int contains(const unsigned char *buf, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(buf + i, needle, n) == 0)
            return 1;
    return 0;
}

static int count_temp_files(void)
{
    DIR *d = opendir(g_dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL)
        n += strstr(ent->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

#define ck_assert_err_has(err, sub) \
    ck_assert_msg(strstr((err), (sub)) != NULL, "error \"%s\" does not contain \"%s\"", (err), (sub))

/* ==================================================================
 * rng
 * ================================================================== */

/* Expected values computed independently with a Python one-off that
 * implements splitmix64 and xoshiro256** with arbitrary-precision ints
 * masked to 64 bits (its splitmix64(0) gives the published
 * 0xe220a8397b1dcdaf):
 *   r = R(42); [r.next() for _ in range(5)]
 *   uniform = (next >> 11) * 2**-53; below(n) rejects next < (2**64 - n) % n
 *   shuffle: for i in range(n, 1, -1): j = below(i); swap(idx[i-1], idx[j]) */
START_TEST(rng_known_outputs)
{
    const uint64_t want[5] = {
        UINT64_C(0x15780b2e0c2ec716), UINT64_C(0x6104d9866d113a7e), UINT64_C(0xae17533239e499a1),
        UINT64_C(0xecb8ad4703b360a1), UINT64_C(0xfde6dc7fe2ec5e64),
    };
    nnc_rng r;
    nnc_rng_seed(&r, 42);
    ck_assert_uint_eq(r.s[0], UINT64_C(0xbdd732262feb6e95));
    ck_assert_uint_eq(r.s[3], UINT64_C(0x581ce1ff0e4ae394));
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(nnc_rng_next(&r), want[i]);

    nnc_rng_seed(&r, 42);
    ck_assert(nnc_rng_uniform(&r) == 0.08386297105988216);
    ck_assert(nnc_rng_uniform(&r) == 0.3789802506626686);
    ck_assert(nnc_rng_uniform(&r) == 0.6800434110281394);

    const uint64_t below10[8] = {2, 2, 9, 3, 6, 4, 4, 7};
    nnc_rng_seed(&r, 42);
    for (int i = 0; i < 8; i++)
        ck_assert_uint_eq(nnc_rng_below(&r, 10), below10[i]);

    const int32_t shuffled[10] = {8, 3, 9, 0, 7, 2, 1, 6, 5, 4};
    int32_t idx[10];
    for (int i = 0; i < 10; i++)
        idx[i] = i;
    nnc_rng_seed(&r, 7);
    nnc_rng_shuffle(&r, idx, 10);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(idx[i], shuffled[i]);
}
END_TEST

START_TEST(rng_uniform_range)
{
    nnc_rng r;
    nnc_rng_seed(&r, 1);
    double sum = 0, lo = 1, hi = 0;
    const int n = 1000000;
    for (int i = 0; i < n; i++) {
        double u = nnc_rng_uniform(&r);
        ck_assert(u >= 0.0 && u < 1.0);
        sum += u;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    ck_assert_double_eq_tol(sum / n, 0.5, 0.002);
    ck_assert(lo < 1e-4 && hi > 1 - 1e-4);
}
END_TEST

START_TEST(rng_normal_moments)
{
    nnc_rng r;
    nnc_rng_seed(&r, 2);
    const int n = 400000;
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) {
        double z = nnc_rng_normal(&r);
        ck_assert(isfinite(z));
        sum += z;
        sq += z * z;
    }
    double mean = sum / n;
    ck_assert_double_eq_tol(mean, 0.0, 0.01);
    ck_assert_double_eq_tol(sq / n - mean * mean, 1.0, 0.02);
}
END_TEST

START_TEST(rng_below_and_shuffle)
{
    nnc_rng r;
    nnc_rng_seed(&r, 3);
    ck_assert_uint_eq(nnc_rng_below(&r, 0), 0);
    ck_assert_uint_eq(nnc_rng_below(&r, 1), 0);
    long counts[3] = {0, 0, 0};
    for (int i = 0; i < 300000; i++)
        counts[nnc_rng_below(&r, 3)]++;
    for (int k = 0; k < 3; k++)
        ck_assert_int_lt(labs(counts[k] - 100000), 1500);

    enum { N = 1000 };
    int32_t idx[N];
    int seen[N] = {0};
    for (int i = 0; i < N; i++)
        idx[i] = i;
    nnc_rng_shuffle(&r, idx, N);
    int moved = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(idx[i] >= 0 && idx[i] < N);
        ck_assert_int_eq(seen[idx[i]]++, 0);
        moved += idx[i] != i;
    }
    ck_assert_int_gt(moved, N / 2);
    nnc_rng_shuffle(&r, idx, 0);
    nnc_rng_shuffle(&r, idx, 1);
}
END_TEST

START_TEST(rng_seeds_differ)
{
    nnc_rng a, b;
    nnc_rng_seed(&a, 0);
    nnc_rng_seed(&b, 1);
    ck_assert(a.s[0] | a.s[1] | a.s[2] | a.s[3]);
    ck_assert_uint_ne(nnc_rng_next(&a), nnc_rng_next(&b));
}
END_TEST

/* ==================================================================
 * safetensors
 * ================================================================== */

/* The model most tests use: 16 parameters in one block. */
static const nnc_st_tensor k_model[2] = {
    {"fc1.weight", 2, {4, 3}, 0},
    {"fc1.bias", 1, {4}, 12},
};

static const char k_good_header[] =
    "{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,48]},"
    "\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[48,64]}}";

/* A safetensors file from a literal header and data. */
static void craft_st(const char *path, const char *header, const void *data, size_t dlen)
{
    size_t hlen = strlen(header);
    unsigned char *buf = malloc(8 + hlen + dlen + 1);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    if (dlen)
        memcpy(buf + 8 + hlen, data, dlen);
    write_bytes(path, buf, 8 + hlen + dlen);
    free(buf);
}

static void fill_model(float *w, float bias)
{
    for (int i = 0; i < 16; i++)
        w[i] = (float)(i - 5) * 0.25f + (i >= 12 ? bias : 0.0f);
}

/* Loads path into a sentinel-filled F32 model, expects failure with a
 * message containing want, and checks the model was left alone. */
static void expect_refused(const char *path, const nnc_st_tensor *t, int n, int flags, const char *want)
{
    float w[16];
    char err[512] = "";
    for (int i = 0; i < 16; i++)
        w[i] = 1234.5f;
    ck_assert_int_ne(nnc_st_load(path, t, n, w, 4, flags, err, sizeof err), 0);
    ck_assert_err_has(err, want);
    for (int i = 0; i < 16; i++)
        ck_assert(w[i] == 1234.5f);
}

START_TEST(st_round_trip_f32)
{
    char p[512], err[256] = "";
    float w[16], back[16] = {0};
    fill_model(w, 0.125f);
    ck_assert_int_eq(nnc_st_save(in_dir(p, "m.safetensors"), k_model, 2, w, 4, NULL, err, sizeof err), 0);
    ck_assert_int_eq(nnc_st_load(p, k_model, 2, back, 4, 0, err, sizeof err), 0);
    ck_assert_mem_eq(w, back, sizeof w);

    size_t len;
    unsigned char *file = read_bytes(p, &len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | file[i];
    ck_assert_uint_eq(hlen % 8, 0);
    ck_assert_uint_eq(len, 8 + hlen + 64);
    ck_assert(contains(file + 8, (size_t)hlen, "\"format\":\"pt\""));
    ck_assert_int_eq(file[8], '{');
    /* Values on disk are IEEE little-endian: w[0] = -1.25f = 0xbfa00000. */
    const unsigned char minus_1_25[4] = {0x00, 0x00, 0xa0, 0xbf};
    ck_assert_mem_eq(file + 8 + hlen, minus_1_25, 4);
    free(file);
    ck_assert_int_eq(count_temp_files(), 0);
}
END_TEST

START_TEST(st_round_trip_f64)
{
    char p[512], err[256] = "";
    double w[16], back[16] = {0};
    for (int i = 0; i < 16; i++)
        w[i] = 1.0 / (i + 3) - 0.1;
    ck_assert_int_eq(nnc_st_save(in_dir(p, "m64.safetensors"), k_model, 2, w, 8, NULL, err, sizeof err), 0);
    ck_assert_int_eq(nnc_st_load(p, k_model, 2, back, 8, 0, err, sizeof err), 0);
    ck_assert_mem_eq(w, back, sizeof w);
    size_t len;
    unsigned char *file = read_bytes(p, &len);
    ck_assert(contains(file, len, "\"dtype\":\"F64\""));
    free(file);
}
END_TEST

START_TEST(st_convert_between_f32_and_f64)
{
    char p32[512], p64[512], err[256] = "";
    float w[16], wf[16];
    double wd[16];
    fill_model(w, 0.0f);
    ck_assert_int_eq(nnc_st_save(in_dir(p32, "f32.safetensors"), k_model, 2, w, 4, NULL, err, sizeof err), 0);
    ck_assert_int_eq(nnc_st_load(p32, k_model, 2, wd, 8, 0, err, sizeof err), 0);
    for (int i = 0; i < 16; i++)
        ck_assert(wd[i] == (double)w[i]);
    ck_assert_int_eq(nnc_st_save(in_dir(p64, "f64.safetensors"), k_model, 2, wd, 8, NULL, err, sizeof err), 0);
    ck_assert_int_eq(nnc_st_load(p64, k_model, 2, wf, 4, 0, err, sizeof err), 0);
    ck_assert_mem_eq(w, wf, sizeof w);
}
END_TEST

START_TEST(st_scalar_empty_and_odd_names)
{
    const nnc_st_tensor t[3] = {
        {"scale", 0, {0}, 0},
        {"empty", 2, {0, 5}, 1},
        {"we\"ird\\name\n\xc3\xa9", 1, {2}, 1},
    };
    float w[3] = {3.0f, -1.0f, 2.0f}, back[3] = {0, 0, 0};
    char p[512], err[256] = "";
    ck_assert_int_eq(nnc_st_save(in_dir(p, "odd.safetensors"), t, 3, w, 4, NULL, err, sizeof err), 0);
    ck_assert_int_eq(nnc_st_load(p, t, 3, back, 4, 0, err, sizeof err), 0);
    ck_assert_mem_eq(w, back, sizeof w);

    /* A model without parameters still has a valid (empty) file. */
    ck_assert_int_eq(nnc_st_save(in_dir(p, "none.safetensors"), NULL, 0, NULL, 4, NULL, err, sizeof err), 0);
    ck_assert_int_eq(nnc_st_load(p, NULL, 0, NULL, 4, 0, err, sizeof err), 0);
    expect_refused(p, k_model, 2, 0, "tensor fc1.weight is missing");
}
END_TEST

START_TEST(st_metadata_read_back)
{
    const char *meta[] = {"epoch", "3", "note", "h\xc3\xa9llo \"q\"\t\\", NULL};
    char p[512], err[256] = "", out[64];
    float w[16];
    fill_model(w, 0.0f);
    ck_assert_int_eq(nnc_st_save(in_dir(p, "meta.safetensors"), k_model, 2, w, 4, meta, err, sizeof err), 0);
    ck_assert_int_eq(nnc_st_get_meta(p, "epoch", out, sizeof out, err, sizeof err), 0);
    ck_assert_str_eq(out, "3");
    ck_assert_int_eq(nnc_st_get_meta(p, "note", out, sizeof out, err, sizeof err), 0);
    ck_assert_str_eq(out, "h\xc3\xa9llo \"q\"\t\\");
    ck_assert_int_eq(nnc_st_get_meta(p, "format", out, sizeof out, err, sizeof err), 0);
    ck_assert_str_eq(out, "pt");
    ck_assert_int_eq(nnc_st_get_meta(p, "nope", out, sizeof out, err, sizeof err), 1);
    ck_assert_int_eq(nnc_st_get_meta(p, "note", out, 4, err, sizeof err), -1);
    ck_assert_err_has(err, "more than the buffer holds");

    /* The checksum is zlib's CRC-32 of the data section. */
    ck_assert_int_eq(nnc_st_get_meta(p, "nnc_checksum", out, sizeof out, err, sizeof err), 0);
    size_t len;
    unsigned char *file = read_bytes(p, &len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | file[i];
    char want[16];
    snprintf(want, sizeof want, "%08lx", crc32(0L, file + 8 + hlen, (uInt)(len - 8 - hlen)));
    ck_assert_str_eq(out, want);
    ck_assert_uint_eq(nnc_crc32(0, file + 8 + hlen, len - 8 - hlen),
                      crc32(0L, file + 8 + hlen, (uInt)(len - 8 - hlen)));
    free(file);

    ck_assert_int_eq(nnc_st_get_meta(in_dir(p, "missing.safetensors"), "epoch", out, sizeof out,
                                     err, sizeof err), -1);
    ck_assert_err_has(err, "missing.safetensors");
}
END_TEST

START_TEST(st_save_refuses_bad_arguments)
{
    char p[512], err[256] = "";
    float w[16] = {0};
    const char *reserved[] = {"format", "np", NULL};
    const char *twice[] = {"a", "1", "a", "2", NULL};
    const nnc_st_tensor dup[2] = {{"x", 1, {2}, 0}, {"x", 1, {2}, 2}};
    const nnc_st_tensor bad_utf8[1] = {{"bad\xff", 1, {2}, 0}};
    in_dir(p, "refused.safetensors");
    ck_assert_int_ne(nnc_st_save(p, k_model, 2, w, 4, reserved, err, sizeof err), 0);
    ck_assert_err_has(err, "\"format\" is reserved");
    ck_assert_int_ne(nnc_st_save(p, k_model, 2, w, 4, twice, err, sizeof err), 0);
    ck_assert_err_has(err, "given twice");
    ck_assert_int_ne(nnc_st_save(p, dup, 2, w, 4, NULL, err, sizeof err), 0);
    ck_assert_err_has(err, "two tensors are named \"x\"");
    ck_assert_int_ne(nnc_st_save(p, bad_utf8, 1, w, 4, NULL, err, sizeof err), 0);
    ck_assert_err_has(err, "not valid UTF-8");
    ck_assert_int_ne(nnc_st_save(p, k_model, 2, w, 2, NULL, err, sizeof err), 0);
    ck_assert_err_has(err, "element size 2");
    ck_assert_int_eq(access(p, F_OK), -1);
}
END_TEST

START_TEST(st_save_into_missing_directory)
{
    char p[512], err[512] = "";
    float w[16] = {0};
    in_dir(p, "no/such/dir/m.safetensors");
    ck_assert_int_ne(nnc_st_save(p, k_model, 2, w, 4, NULL, err, sizeof err), 0);
    ck_assert_err_has(err, p);
    ck_assert_err_has(err, strerror(ENOENT));
}
END_TEST

START_TEST(st_save_over_a_directory_keeps_it)
{
    char p[512], inner[512], err[512] = "";
    float w[16] = {0};
    ck_assert_int_eq(mkdir(in_dir(p, "target"), 0755), 0);
    write_bytes(in_dir(inner, "target/keep"), "x", 1);
    ck_assert_int_ne(nnc_st_save(p, k_model, 2, w, 4, NULL, err, sizeof err), 0);
    ck_assert_err_has(err, p);
    ck_assert_err_has(err, strerror(EISDIR));
    struct stat st;
    ck_assert_int_eq(stat(inner, &st), 0);
    ck_assert_int_eq(count_temp_files(), 0);
}
END_TEST

/* A write that fails half-way (the file size limit, which binds root
 * too) must leave the previous file intact and no temporary behind. */
START_TEST(st_failed_write_keeps_old_file)
{
    char p[512], err[256] = "";
    float old[16], back[16];
    fill_model(old, 7.0f);
    ck_assert_int_eq(nnc_st_save(in_dir(p, "keep.safetensors"), k_model, 2, old, 4, NULL, err, sizeof err), 0);

    enum { BIG = 1 << 18 };
    const nnc_st_tensor big[1] = {{"big", 1, {BIG}, 0}};
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        float *data = calloc(BIG, sizeof *data);
        struct rlimit rl = {.rlim_cur = 4096, .rlim_max = 4096};
        signal(SIGXFSZ, SIG_IGN);
        if (!data || setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(2);
        int rc = nnc_st_save(p, big, 1, data, 4, NULL, err, sizeof err);
        _exit(rc != 0 && strstr(err, "writing") && strstr(err, strerror(EFBIG)) ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_int_eq(count_temp_files(), 0);
    ck_assert_int_eq(nnc_st_load(p, k_model, 2, back, 4, 0, err, sizeof err), 0);
    ck_assert_mem_eq(old, back, sizeof old);
}
END_TEST

START_TEST(st_save_replaces_existing_file)
{
    char p[512], err[256] = "";
    float a[16], b[16], back[16];
    fill_model(a, 1.0f);
    fill_model(b, 2.0f);
    ck_assert_int_eq(nnc_st_save(in_dir(p, "r.safetensors"), k_model, 2, a, 4, NULL, err, sizeof err), 0);
    ck_assert_int_eq(nnc_st_save(p, k_model, 2, b, 4, NULL, err, sizeof err), 0);
    ck_assert_int_eq(nnc_st_load(p, k_model, 2, back, 4, 0, err, sizeof err), 0);
    ck_assert_mem_eq(b, back, sizeof b);
}
END_TEST

START_TEST(st_crafted_good_file_loads)
{
    char p[512], err[256] = "";
    unsigned char data[64] = {0};
    float w[16];
    craft_st(in_dir(p, "good.safetensors"), k_good_header, data, sizeof data);
    ck_assert_int_eq(nnc_st_load(p, k_model, 2, w, 4, 0, err, sizeof err), 0);
    for (int i = 0; i < 16; i++)
        ck_assert(w[i] == 0.0f);
}
END_TEST

START_TEST(st_refuses_short_and_bad_length)
{
    char p[512];
    expect_refused(in_dir(p, "absent.safetensors"), k_model, 2, 0, "cannot open");
    write_bytes(p, "abc", 3);
    expect_refused(p, k_model, 2, 0, "too short");

    unsigned char huge[16] = {0};
    uint64_t len = 200000000;
    for (int i = 0; i < 8; i++)
        huge[i] = (unsigned char)(len >> (8 * i));
    write_bytes(p, huge, sizeof huge);
    expect_refused(p, k_model, 2, 0, "header length 200000000 is impossible");

    unsigned char past[16] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    write_bytes(p, past, 10);
    expect_refused(p, k_model, 2, 0, "header length 100 is impossible (file has 10 bytes)");

    ck_assert_int_eq(mkdir(in_dir(p, "adir"), 0755), 0);
    expect_refused(p, k_model, 2, 0, "not a regular file");
}
END_TEST

START_TEST(st_refuses_malformed_json)
{
    static const struct {
        const char *header;
        const char *want;
    } cases[] = {
        {"{\"a\":1.5}", "header byte 5: only integers"},
        {"{\"a\":1,}", "header byte 7: expected a string key"},
        {"{\"a\" 1}", "expected ':' after object key"},
        {"{\"a\":[1 2]}", "expected ',' or ']' in array"},
        {"{\"a\":\"x", "unterminated string"},
        {"{\"a\":true}", "unexpected 't'"},
        {"{\"a\":\"\\x\"}", "invalid escape \\x"},
        {"{\"a\":\"\\ud800\"}", "unpaired high surrogate"},
        {"{\"a\":\"\\u0000\"}", "\\u0000 is not allowed"},
        {"{\"a\":\"tab\there\"}", "control character 0x09"},
        {"{\"a\":01}", "leading zero"},
        {"{\"a\":99999999999999999999}", "integer too large"},
        {"{\"a\":1,\"a\":2}", "duplicate key \"a\""},
        {"{} x", "header byte 3: unexpected data after the JSON object"},
        {"{\"\xc3\x28\":1}", "header byte 2: invalid UTF-8"},
        {"", "unexpected end of header"},
        {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "nested too deeply"},
        {"[1]", "the header must be a JSON object"},
    };
    char p[512];
    in_dir(p, "bad.safetensors");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        craft_st(p, cases[i].header, NULL, 0);
        expect_refused(p, k_model, 2, 0, cases[i].want);
    }
    craft_st(p, "{\"a\":1.5}", NULL, 0);
    expect_refused(p, k_model, 2, 0, "bad.safetensors: invalid JSON at header byte 5: only integers");
}
END_TEST

START_TEST(st_refuses_bad_entries)
{
    static const struct {
        const char *header;
        size_t dlen;
        const char *want;
    } cases[] = {
        {"{\"fc1.weight\":{\"dtype\":\"F16\",\"shape\":[4,3],\"data_offsets\":[0,24]},"
         "\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[24,40]}}",
         40, "tensor fc1.weight has dtype F16; only F32 and F64 can be loaded"},
        {"{\"fc1.weight\":{\"dtype\":\"Q4\",\"shape\":[4,3],\"data_offsets\":[0,48]}}",
         48, "unknown dtype \"Q4\""},
        {"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,40]},"
         "\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[40,56]}}",
         56, "data_offsets [0, 40] do not match F32 [4, 3] (48 bytes)"},
        {k_good_header, 60, "run past the end of the data section (60 bytes)"},
        {k_good_header, 70, "the data section has 70 bytes but the tensors cover only 64"},
        {"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,48]},"
         "\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[32,48]}}",
         48, "tensors fc1.weight and fc1.bias overlap"},
        {"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[8,56]},"
         "\"fc1.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[56,72]}}",
         72, "bytes 0..8 of the data section belong to no tensor (gap before fc1.weight)"},
        {"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[4,3]}}", 0, "tensor fc1.weight: missing \"data_offsets\""},
        {"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0,48],\"x\":1}}",
         48, "unexpected field \"x\""},
        {"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[4,-3],\"data_offsets\":[0,48]}}",
         48, "shape entries must be non-negative"},
        {"{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[0]}}",
         48, "\"data_offsets\" must be [begin, end]"},
        {"{\"fc1.weight\":5}", 0, "tensor fc1.weight: expected an object"},
        {"{\"__metadata__\":{\"a\":1}}", 0, "metadata \"a\" must be a string"},
        {"{}", 4, "4 bytes of data but no tensors"},
    };
    char p[512];
    unsigned char data[128] = {0};
    in_dir(p, "entries.safetensors");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        craft_st(p, cases[i].header, data, cases[i].dlen);
        expect_refused(p, k_model, 2, 0, cases[i].want);
    }
}
END_TEST

START_TEST(st_refuses_model_mismatch)
{
    char p[512];
    unsigned char data[64] = {0};
    craft_st(in_dir(p, "mm.safetensors"), k_good_header, data, sizeof data);

    const nnc_st_tensor narrower[2] = {{"fc1.weight", 2, {4, 2}, 0}, {"fc1.bias", 1, {4}, 8}};
    expect_refused(p, narrower, 2, 0, "mm.safetensors: fc1.weight: shape [4, 3] in file, model expects [4, 2]");
    expect_refused(p, narrower, 2, NNC_ST_PARTIAL, "shape [4, 3] in file, model expects [4, 2]");

    const nnc_st_tensor more[3] = {k_model[0], k_model[1], {"fc2.bias", 1, {0}, 16}};
    expect_refused(p, more, 3, 0, "tensor fc2.bias is missing from the file");

    expect_refused(p, k_model, 1, 0, "tensor fc1.bias in the file is not part of the model");
}
END_TEST

START_TEST(st_refuses_corrupt_data)
{
    char p[512], err[256] = "";
    float w[16];
    fill_model(w, 0.0f);
    ck_assert_int_eq(nnc_st_save(in_dir(p, "c.safetensors"), k_model, 2, w, 4, NULL, err, sizeof err), 0);
    size_t len;
    unsigned char *file = read_bytes(p, &len);
    file[len - 3] ^= 0x10;
    write_bytes(p, file, len);
    free(file);
    expect_refused(p, k_model, 2, 0, "c.safetensors: checksum mismatch: file is corrupt");
}
END_TEST

START_TEST(st_partial_load)
{
    char p[512], err[256] = "";
    const nnc_st_tensor file_tensors[2] = {{"fc1.weight", 2, {4, 3}, 0}, {"head.weight", 1, {5}, 12}};
    float src[17], w[16];
    for (int i = 0; i < 17; i++)
        src[i] = (float)i + 0.5f;
    ck_assert_int_eq(nnc_st_save(in_dir(p, "pre.safetensors"), file_tensors, 2, src, 4, NULL, err, sizeof err), 0);
    expect_refused(p, k_model, 2, 0, "tensor fc1.bias is missing");
    for (int i = 0; i < 16; i++)
        w[i] = -1.0f;
    ck_assert_int_eq(nnc_st_load(p, k_model, 2, w, 4, NNC_ST_PARTIAL, err, sizeof err), 0);
    for (int i = 0; i < 12; i++)
        ck_assert(w[i] == src[i]);
    for (int i = 12; i < 16; i++)
        ck_assert(w[i] == -1.0f);
}
END_TEST

/* ==================================================================
 * IDX
 * ================================================================== */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An IDX image file: header for count rows x cols images, then
 * pixel_bytes bytes of pixels (i * 10 % 256). */
static void make_images(const char *path, int gz, uint32_t magic, uint32_t count, uint32_t rows,
                        uint32_t cols, size_t pixel_bytes)
{
    unsigned char *buf = malloc(16 + pixel_bytes);
    ck_assert_ptr_nonnull(buf);
    put_be32(buf, magic);
    put_be32(buf + 4, count);
    put_be32(buf + 8, rows);
    put_be32(buf + 12, cols);
    for (size_t i = 0; i < pixel_bytes; i++)
        buf[16 + i] = (unsigned char)(i * 10 % 256);
    if (gz)
        write_gz(path, buf, 16 + pixel_bytes);
    else
        write_bytes(path, buf, 16 + pixel_bytes);
    free(buf);
}

static void make_labels(const char *path, int gz, uint32_t magic, uint32_t count,
                        const unsigned char *labels, size_t nlabels)
{
    unsigned char buf[64];
    put_be32(buf, magic);
    put_be32(buf + 4, count);
    memcpy(buf + 8, labels, nlabels);
    if (gz)
        write_gz(path, buf, 8 + nlabels);
    else
        write_bytes(path, buf, 8 + nlabels);
}

static const unsigned char k_labels[3] = {1, 0, 9};

static void expect_idx_refused(const char *img, const char *lab, size_t x_size, const char *want)
{
    nnc_dataset d;
    char err[512] = "";
    ck_assert_int_ne(nnc_idx_load(img, lab, x_size, 10, 1.0f, 0.0f, &d, err, sizeof err), 0);
    ck_assert_err_has(err, want);
    ck_assert_ptr_null(d.x);
    ck_assert_ptr_null(d.y);
}

START_TEST(idx_good_raw_with_scale)
{
    char img[512], lab[512], err[256] = "";
    make_images(in_dir(img, "img"), 0, 0x803, 3, 2, 2, 12);
    make_labels(in_dir(lab, "lab"), 0, 0x801, 3, k_labels, 3);
    nnc_dataset d;
    ck_assert_int_eq(nnc_idx_load(img, lab, 4, 10, 0.5f, -1.0f, &d, err, sizeof err), 0);
    ck_assert_uint_eq(d.n, 3);
    ck_assert_uint_eq(d.x_size, 4);
    ck_assert_uint_eq(d.y_size, 0);
    ck_assert_int_eq(d.nclasses, 10);
    for (size_t i = 0; i < 12; i++)
        ck_assert(d.x[i] == (float)(i * 10 % 256) * 0.5f - 1.0f);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(d.y[i], k_labels[i]);
    nnc_dataset_free(&d);
    ck_assert_ptr_null(d.x);
}
END_TEST

START_TEST(idx_good_gzip_and_split_names)
{
    char img[512], lab[512], err[256] = "";
    make_images(in_dir(img, "train-images-idx3-ubyte.gz"), 1, 0x803, 3, 2, 2, 12);
    make_labels(in_dir(lab, "train-labels.idx1-ubyte"), 0, 0x801, 3, k_labels, 3);
    nnc_dataset d;
    ck_assert_int_eq(nnc_idx_load_split(g_dir, "train", 4, 10, 1.0f / 255, 0.0f, &d, err, sizeof err), 0);
    ck_assert_uint_eq(d.n, 3);
    ck_assert_float_eq_tol(d.x[1], 10.0f / 255, 1e-7f);
    ck_assert_int_eq(d.y[2], 9);
    nnc_dataset_free(&d);

    ck_assert_int_ne(nnc_idx_load_split(g_dir, "t10k", 4, 10, 1.0f, 0.0f, &d, err, sizeof err), 0);
    ck_assert_err_has(err, "no t10k images in ");
    ck_assert_err_has(err, "t10k-images-idx3-ubyte");
}
END_TEST

START_TEST(idx_refuses_missing_and_bad_headers)
{
    char img[512], lab[512];
    make_labels(in_dir(lab, "lab"), 0, 0x801, 3, k_labels, 3);
    expect_idx_refused(in_dir(img, "nope"), lab, 4, "cannot open ");
    expect_idx_refused(img, lab, 4, strerror(ENOENT));

    write_bytes(img, "\0\0\x08\x03\0\0\0\x03\0\0", 10);
    expect_idx_refused(img, lab, 4, "nope: truncated header: expected 16 bytes, got 10");

    expect_idx_refused(lab, lab, 4, "lab: not an IDX image file: magic 0x00000801, expected 0x00000803 (this is a label file)");
    make_images(img, 0, 0x803, 3, 2, 2, 12);
    expect_idx_refused(img, img, 4, "nope: not an IDX label file: magic 0x00000803, expected 0x00000801");
    make_images(img, 1, 0x0000080d, 3, 2, 2, 12);
    expect_idx_refused(img, lab, 4, "magic 0x0000080d");
    expect_idx_refused(g_dir, lab, 4, "not a regular file");
}
END_TEST

START_TEST(idx_refuses_size_count_and_data)
{
    char img[512], lab[512];
    unsigned char labels[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    in_dir(img, "images.gz");
    make_labels(in_dir(lab, "labels.gz"), 1, 0x801, 1, labels, 1);
    make_images(img, 1, 0x803, 1, 28, 28, 784);
    expect_idx_refused(img, lab, 3072, "images.gz: images are 28x28 = 784 values, model input expects 3072");

    make_images(img, 1, 0x803, 3, 2, 2, 12);
    make_labels(lab, 1, 0x801, 2, labels, 2);
    expect_idx_refused(img, lab, 4, "images.gz has 3 images but ");
    expect_idx_refused(img, lab, 4, "labels.gz has 2 labels");

    make_images(img, 1, 0x803, 3, 2, 2, 10);
    make_labels(lab, 1, 0x801, 3, labels, 3);
    expect_idx_refused(img, lab, 4, "images.gz: truncated: expected 12 bytes of pixel data, got 10");

    make_images(img, 1, 0x803, 3, 2, 2, 17);
    expect_idx_refused(img, lab, 4, "images.gz: trailing garbage: 5 bytes after the pixel data");

    make_images(img, 1, 0x803, 3, 2, 2, 12);
    make_labels(lab, 1, 0x801, 3, labels, 2);
    expect_idx_refused(img, lab, 4, "labels.gz: truncated: expected 3 bytes of label data, got 2");
    make_labels(lab, 1, 0x801, 3, labels, 4);
    expect_idx_refused(img, lab, 4, "labels.gz: trailing garbage: 1 byte after the labels");

    const unsigned char bad[3] = {1, 12, 3};
    make_labels(lab, 0, 0x801, 3, bad, 3);
    expect_idx_refused(img, lab, 4, "label 12 at index 1 is out of range for class(10)");

    make_images(img, 0, 0x803, 0, 2, 2, 0);
    make_labels(lab, 0, 0x801, 0, bad, 0);
    expect_idx_refused(img, lab, 4, "images.gz: empty set (0 images)");
}
END_TEST

START_TEST(idx_refuses_corrupt_gzip)
{
    char img[512], lab[512];
    enum { PIX = 4 * 4000 };
    make_labels(in_dir(lab, "lab"), 0, 0x801, 4000, k_labels, 0);
    make_images(in_dir(img, "img.gz"), 1, 0x803, 4000, 2, 2, PIX);
    size_t len;
    unsigned char *gz = read_bytes(img, &len);

    /* Cut short: zlib delivers what it can, then "unexpected end of file". */
    write_bytes(img, gz, len / 2);
    expect_idx_refused(img, lab, 4, "img.gz: corrupt or truncated gzip data");

    /* A flipped bit in the CRC-32 trailer only shows at the very end. */
    gz[len - 6] ^= 0x01;
    write_bytes(img, gz, len);
    expect_idx_refused(img, lab, 4, "img.gz: corrupt or truncated gzip data");
    free(gz);
}
END_TEST

/* ==================================================================
 * CIFAR-10
 * ================================================================== */

/* nrec records; record r has label labels[r] and pixel i = (r + i) % 256. */
static void make_cifar(const char *path, int gz, const unsigned char *labels, size_t nrec, size_t extra)
{
    size_t len = nrec * 3073 + extra;
    unsigned char *buf = calloc(len + 1, 1);
    ck_assert_ptr_nonnull(buf);
    for (size_t r = 0; r < nrec; r++) {
        buf[r * 3073] = labels[r];
        for (size_t i = 0; i < 3072; i++)
            buf[r * 3073 + 1 + i] = (unsigned char)((r + i) % 256);
    }
    if (gz)
        write_gz(path, buf, len);
    else
        write_bytes(path, buf, len);
    free(buf);
}

START_TEST(cifar_good_two_files)
{
    char a[512], b[512], err[256] = "";
    const unsigned char la[2] = {3, 9}, lb[1] = {0};
    make_cifar(in_dir(a, "data_batch_1.bin"), 0, la, 2, 0);
    make_cifar(in_dir(b, "data_batch_2.bin.gz"), 1, lb, 1, 0);
    const char *paths[2] = {a, b};
    const float mean[3] = {0.5f, 0.25f, 0.0f}, std[3] = {0.5f, 2.0f, 1.0f};
    nnc_dataset d;
    ck_assert_int_eq(nnc_cifar_load(paths, 2, 1.0f / 255, mean, std, &d, err, sizeof err), 0);
    ck_assert_uint_eq(d.n, 3);
    ck_assert_uint_eq(d.x_size, 3072);
    ck_assert_int_eq(d.nclasses, 10);
    ck_assert_int_eq(d.y[0], 3);
    ck_assert_int_eq(d.y[1], 9);
    ck_assert_int_eq(d.y[2], 0);
    /* record 1, channel 1 (green), pixel 0: raw (1 + 1024) % 256 = 1 */
    float want = (1.0f / 255 - 0.25f) / 2.0f;
    ck_assert_float_eq_tol(d.x[3072 + 1024], want, 1e-6f);
    ck_assert_float_eq_tol(d.x[2 * 3072 + 5], (5.0f / 255 - 0.5f) / 0.5f, 1e-6f);
    nnc_dataset_free(&d);

    ck_assert_int_eq(nnc_cifar_load(paths, 1, 1.0f, NULL, NULL, &d, err, sizeof err), 0);
    ck_assert(d.x[3072 + 7] == 8.0f);
    nnc_dataset_free(&d);
}
END_TEST

START_TEST(cifar_refusals)
{
    char p[512], err[512] = "";
    const unsigned char labels[2] = {1, 10};
    const char *paths[1] = {in_dir(p, "batch.bin")};
    nnc_dataset d;

    make_cifar(p, 0, labels, 1, 5);
    ck_assert_int_ne(nnc_cifar_load(paths, 1, 1.0f, NULL, NULL, &d, err, sizeof err), 0);
    ck_assert_err_has(err, "batch.bin: 3078 bytes is not a whole number of CIFAR-10 records (3073 bytes each)");

    make_cifar(p, 0, labels, 2, 0);
    ck_assert_int_ne(nnc_cifar_load(paths, 1, 1.0f, NULL, NULL, &d, err, sizeof err), 0);
    ck_assert_err_has(err, "batch.bin: label 10 at record 1 is out of range for class(10)");

    write_bytes(p, "", 0);
    ck_assert_int_ne(nnc_cifar_load(paths, 1, 1.0f, NULL, NULL, &d, err, sizeof err), 0);
    ck_assert_err_has(err, "batch.bin: empty file");

    paths[0] = in_dir(p, "absent.bin");
    ck_assert_int_ne(nnc_cifar_load(paths, 1, 1.0f, NULL, NULL, &d, err, sizeof err), 0);
    ck_assert_err_has(err, "cannot open ");
    ck_assert_err_has(err, "absent.bin");
    ck_assert_ptr_null(d.x);
}
END_TEST

/* ==================================================================
 * CSV
 * ================================================================== */

static void expect_csv_refused(const char *text, int nclasses, size_t y_size, int header, const char *want)
{
    char p[512], err[512] = "";
    nnc_dataset d;
    write_bytes(in_dir(p, "data.csv"), text, strlen(text));
    ck_assert_int_ne(nnc_csv_load(p, 3, -1, nclasses, y_size, header, 1.0f, 0.0f, &d, err, sizeof err), 0);
    ck_assert_err_has(err, want);
    ck_assert_ptr_null(d.x);
}

START_TEST(csv_good_with_header)
{
    char p[512], err[256] = "";
    const char *text = "\xef\xbb\xbf" "a,b,c,label\n1,2,3,0\r\n\n  4 , 5.5,\"6\",2\n-1e1,0,0,1";
    write_bytes(in_dir(p, "data.csv"), text, strlen(text));
    nnc_dataset d;
    ck_assert_int_eq(nnc_csv_load(p, 3, -1, 3, 0, 1, 2.0f, 1.0f, &d, err, sizeof err), 0);
    ck_assert_uint_eq(d.n, 3);
    ck_assert_uint_eq(d.x_size, 3);
    ck_assert_uint_eq(d.y_size, 0);
    ck_assert_int_eq(d.nclasses, 3);
    const float want[9] = {3, 5, 7, 9, 12, 13, -19, 1, 1};
    for (int i = 0; i < 9; i++)
        ck_assert(d.x[i] == want[i]);
    ck_assert_int_eq(d.y[0], 0);
    ck_assert_int_eq(d.y[1], 2);
    ck_assert_int_eq(d.y[2], 1);
    nnc_dataset_free(&d);

    /* Label in the first column, gzip-compressed, no header. */
    const char *first = "\xef\xbb\xbf" "2,1,2,3\n0.0,4,5,6\n";
    write_gz(in_dir(p, "first.csv.gz"), first, strlen(first));
    ck_assert_int_eq(nnc_csv_load(p, 3, 0, 3, 0, 0, 1.0f, 0.0f, &d, err, sizeof err), 0);
    ck_assert_uint_eq(d.n, 2);
    ck_assert_int_eq(d.y[0], 2);
    ck_assert_int_eq(d.y[1], 0);
    ck_assert(d.x[3] == 4.0f && d.x[5] == 6.0f);
    nnc_dataset_free(&d);
}
END_TEST

START_TEST(csv_float_targets)
{
    char p[512], err[256] = "";
    const char *text = "1,2,3,0.5,-1.5\n4,5,6,7,8\n";
    write_bytes(in_dir(p, "reg.csv"), text, strlen(text));
    nnc_dataset d;
    ck_assert_int_eq(nnc_csv_load(p, 3, 2 /* ignored */, 0, 2, 0, 0.5f, 0.0f, &d, err, sizeof err), 0);
    ck_assert_uint_eq(d.n, 2);
    ck_assert_uint_eq(d.y_size, 2);
    ck_assert_ptr_null(d.y);
    const float x[6] = {0.5f, 1, 1.5f, 2, 2.5f, 3}, y[4] = {0.5f, -1.5f, 7, 8};
    for (int i = 0; i < 6; i++)
        ck_assert(d.x[i] == x[i]);
    for (int i = 0; i < 4; i++)
        ck_assert(d.yf[i] == y[i]);
    nnc_dataset_free(&d);
}
END_TEST

START_TEST(csv_refusals)
{
    expect_csv_refused("a,b,c,y\n1,2,3,0\n1,2,3\n", 3, 0, 1,
                       "data.csv:3: expected 4 fields (3 inputs + 1 label), found 3");
    expect_csv_refused("1,2,3,0.5,1\n1,2,3,4,5,6\n", 0, 2, 0,
                       "data.csv:2: expected 5 fields (3 inputs + 2 targets), found 6");
    expect_csv_refused("1,abc,3,0\n", 3, 0, 0, "data.csv:1: column 2: \"abc\" is not a number");
    expect_csv_refused("1,2,3x,0\n", 3, 0, 0, "data.csv:1: column 3: \"3x\" is not a number");
    expect_csv_refused("1,2,3,0\n1,,3,0\n", 3, 0, 0, "data.csv:2: column 2: empty field");
    expect_csv_refused("1,nan,3,0\n", 3, 0, 0, "column 2: \"nan\" is not a finite number");
    expect_csv_refused("h\n1,2,3,7\n", 3, 0, 1, "data.csv:2: column 4: label 7 is out of range for class(3)");
    expect_csv_refused("1,2,3,1.5\n", 3, 0, 0, "data.csv:1: column 4: label 1.5 is not an integer");
    expect_csv_refused("1,2,3,-1\n", 3, 0, 0, "label -1 is out of range");
    expect_csv_refused("a,b,c,y\n\n", 3, 0, 1, "data.csv: no data rows");

    char err[256] = "";
    nnc_dataset d;
    char p[512];
    ck_assert_int_ne(nnc_csv_load(in_dir(p, "none.csv"), 3, -1, 3, 0, 0, 1.0f, 0.0f, &d, err, sizeof err), 0);
    ck_assert_err_has(err, "none.csv");
    ck_assert_int_ne(nnc_csv_load(p, 3, 7, 3, 0, 0, 1.0f, 0.0f, &d, err, sizeof err), 0);
    ck_assert_err_has(err, "label column 7 is outside the 4 columns");
}
END_TEST

/* ==================================================================
 * progress
 * ================================================================== */

START_TEST(progress_format_duration)
{
    static const struct {
        double s;
        const char *want;
    } cases[] = {
        {0, "0:00"}, {42, "0:42"}, {42.4, "0:42"}, {59.6, "1:00"}, {62, "1:02"},
        {3599, "59:59"}, {3723, "1:02:03"}, {36000, "10:00:00"}, {-1, "--:--"}, {NAN, "--:--"},
        {INFINITY, "--:--"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nnc_format_duration(cases[i].s, buf, sizeof buf);
        ck_assert_str_eq(buf, cases[i].want);
    }
    nnc_format_duration(3723, buf, 4);
    ck_assert_str_eq(buf, "1:0");
}
END_TEST

START_TEST(progress_quiet_on_non_tty)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    nnc_progress p = {0};
    double t0 = nnc_now();
    nnc_progress_begin(&p, f, 1, 2, 3, 32, 0);
    nnc_progress_step(&p, 1, 1.0);
    nnc_progress_step(&p, 2, 0.5);
    nnc_progress_step(&p, 3, 0.0);
    nnc_progress_end(&p);
    ck_assert_double_eq_tol(p.mean_loss, 0.5, 1e-12);
    ck_assert(p.seconds >= 0 && p.seconds <= nnc_now() - t0);
    ck_assert(p.samples_per_s >= 0);
    ck_assert_int_eq(p.run_steps, 3);

    nnc_progress_begin(&p, f, 2, 2, 3, 32, 0);
    nnc_progress_end(&p);
    ck_assert(isnan(p.mean_loss));
    ck_assert_int_eq(p.run_steps, 3);
    nnc_progress_begin(&p, f, 1, 2, 3, 32, 1);
    ck_assert_int_eq(p.run_steps, 0);
    ck_assert_int_eq(ftell(f), 0);
    fclose(f);
}
END_TEST

/* A pseudo-terminal makes isatty() true without a real terminal. Linux
 * only (/dev/ptmx ioctls); elsewhere the test passes without checking. */
START_TEST(progress_live_line_on_tty)
{
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY);
    int unlock = 0, ptn = -1;
    if (master < 0 || ioctl(master, TIOCSPTLCK, &unlock) != 0 || ioctl(master, TIOCGPTN, &ptn) != 0) {
        if (master >= 0)
            close(master);
        return;
    }
    char name[64];
    snprintf(name, sizeof name, "/dev/pts/%d", ptn);
    FILE *tty = fopen(name, "w");
    ck_assert_ptr_nonnull(tty);

    nnc_progress p = {0};
    nnc_progress_begin(&p, tty, 2, 5, 937, 64, 0);
    nnc_progress_step(&p, 1, 0.5);
    nnc_progress_step(&p, 2, 0.25); /* within 0.1 s: not drawn */
    nnc_progress_end(&p);
    fclose(tty);

    char out[512] = "";
    size_t got = 0;
    struct pollfd pfd = {.fd = master, .events = POLLIN};
    while (got < sizeof out - 1 && poll(&pfd, 1, 200) > 0) {
        ssize_t r = read(master, out + got, sizeof out - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(master);
    out[got] = '\0';
    ck_assert_msg(strncmp(out, "\repoch 2/5  step 1/937  loss 0.5000  ", 37) == 0, "got \"%s\"", out);
    ck_assert_ptr_nonnull(strstr(out, " samples/s  ETA "));
    ck_assert_ptr_null(strstr(out, "step 2/937"));
    ck_assert_int_eq(out[got - 1], '\r');
    ck_assert_double_eq_tol(p.mean_loss, 0.375, 1e-12);
}
END_TEST

/* ==================================================================
 * Suite
 * ================================================================== */

Suite *runtime_suite(void);

Suite *runtime_suite(void)
{
    Suite *s = suite_create("runtime");

    TCase *rng = tcase_create("rng");
    tcase_add_test(rng, rng_known_outputs);
    tcase_add_test(rng, rng_uniform_range);
    tcase_add_test(rng, rng_normal_moments);
    tcase_add_test(rng, rng_below_and_shuffle);
    tcase_add_test(rng, rng_seeds_differ);
    suite_add_tcase(s, rng);

    TCase *st = tcase_create("safetensors");
    tcase_add_checked_fixture(st, scratch_setup, scratch_teardown);
    tcase_add_test(st, st_round_trip_f32);
    tcase_add_test(st, st_round_trip_f64);
    tcase_add_test(st, st_convert_between_f32_and_f64);
    tcase_add_test(st, st_scalar_empty_and_odd_names);
    tcase_add_test(st, st_metadata_read_back);
    tcase_add_test(st, st_save_refuses_bad_arguments);
    tcase_add_test(st, st_save_into_missing_directory);
    tcase_add_test(st, st_save_over_a_directory_keeps_it);
    tcase_add_test(st, st_failed_write_keeps_old_file);
    tcase_add_test(st, st_save_replaces_existing_file);
    tcase_add_test(st, st_crafted_good_file_loads);
    tcase_add_test(st, st_refuses_short_and_bad_length);
    tcase_add_test(st, st_refuses_malformed_json);
    tcase_add_test(st, st_refuses_bad_entries);
    tcase_add_test(st, st_refuses_model_mismatch);
    tcase_add_test(st, st_refuses_corrupt_data);
    tcase_add_test(st, st_partial_load);
    suite_add_tcase(s, st);

    TCase *idx = tcase_create("idx");
    tcase_add_checked_fixture(idx, scratch_setup, scratch_teardown);
    tcase_add_test(idx, idx_good_raw_with_scale);
    tcase_add_test(idx, idx_good_gzip_and_split_names);
    tcase_add_test(idx, idx_refuses_missing_and_bad_headers);
    tcase_add_test(idx, idx_refuses_size_count_and_data);
    tcase_add_test(idx, idx_refuses_corrupt_gzip);
    suite_add_tcase(s, idx);

    TCase *cifar = tcase_create("cifar");
    tcase_add_checked_fixture(cifar, scratch_setup, scratch_teardown);
    tcase_add_test(cifar, cifar_good_two_files);
    tcase_add_test(cifar, cifar_refusals);
    suite_add_tcase(s, cifar);

    TCase *csv = tcase_create("csv");
    tcase_add_checked_fixture(csv, scratch_setup, scratch_teardown);
    tcase_add_test(csv, csv_good_with_header);
    tcase_add_test(csv, csv_float_targets);
    tcase_add_test(csv, csv_refusals);
    suite_add_tcase(s, csv);

    TCase *progress = tcase_create("progress");
    tcase_add_test(progress, progress_format_duration);
    tcase_add_test(progress, progress_quiet_on_non_tty);
    tcase_add_test(progress, progress_live_line_on_tty);
    suite_add_tcase(s, progress);

    return s;
}

#ifdef CHECK_RUNTIME_MAIN
int main(void)
{
    SRunner *sr = srunner_create(runtime_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
#endif
