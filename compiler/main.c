/* main.c — the nnc command: options, then the pipeline as a list of calls.
 *
 *   parse -> train -> shape -> autodiff -> optim -> fuse -> plan -> emit
 *
 * --dump-after=PASS prints the IR after that pass; the pass's name, its
 * file and its dump flag are the same word. Exit status: 0 on success, 1
 * when the program has errors, 2 for bad usage or I/O failures. */
#include "nnc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NNC_VERSION "0.1.0"

enum { MAX_SOURCE_BYTES = 16 << 20 };

typedef struct Options {
    const char *input;
    const char *output;   /* model.c; the header goes next to it */
    const char *model;    /* --model NAME when a file holds several */
    const char *prefix;   /* --prefix NAME for the generated names */
    const char *emit;     /* c, ir, ast */
    const char *dump_after;
    bool main, fused, f64, stats, check_only, profile;
} Options;

static bool is_c_identifier(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

static void usage(FILE *out)
{
    fputs("usage: nnc [options] FILE.nn\n"
          "  -o FILE.c           write FILE.c and FILE.h (default: MODEL.c)\n"
          "  --main              also emit a trainer main() for the train block\n"
          "  --no-fuse           one kernel per IR op, every intermediate kept\n"
          "  --profile           time every kernel call of training; the\n"
          "                      trainer prints a table of where a step's\n"
          "                      time went (<prefix>_profile_print)\n"
          "  --dtype f32|f64     element type of the generated code (f32)\n"
          "  --model NAME        the model to compile when the file has several\n"
          "  --prefix NAME       name the generated type and functions NAME_*\n"
          "                      instead of after the model\n"
          "  --emit=c|ir|dot|ast what to write (c); the others go to stdout:\n"
          "                      the IR with kernel schedules, the training\n"
          "                      graph for Graphviz, the syntax tree\n"
          "  --dump-after=PASS   print the IR after PASS (shape, autodiff, optim,\n"
          "                      fuse, plan) to stdout\n"
          "  --stats             print kernels=, arena_bytes=, param_bytes=,\n"
          "                      flops_per_step= ... and write nothing\n"
          "  --check             check the program only, write nothing\n"
          "  --version, --help\n",
          out);
}

static int parse_options(int argc, char **argv, Options *o)
{
    *o = (Options){.emit = "c", .fused = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-o") || !strcmp(a, "--model") || !strcmp(a, "--dtype") ||
            !strcmp(a, "--prefix")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "nnc: %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "-o"))
                o->output = v;
            else if (!strcmp(a, "--model"))
                o->model = v;
            else if (!strcmp(a, "--prefix")) {
                if (!is_c_identifier(v)) {
                    fprintf(stderr, "nnc: --prefix needs a C identifier, not "
                            "'%s'\n", v);
                    return 2;
                }
                o->prefix = v;
            }
            else if (!strcmp(v, "f64") || !strcmp(v, "f32"))
                o->f64 = !strcmp(v, "f64");
            else {
                fprintf(stderr, "nnc: --dtype is f32 or f64, not '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--main")) {
            o->main = true;
        } else if (!strcmp(a, "--no-fuse")) {
            o->fused = false;
        } else if (!strcmp(a, "--profile")) {
            o->profile = true;
        } else if (!strcmp(a, "--stats")) {
            o->stats = true;
        } else if (!strcmp(a, "--check")) {
            o->check_only = true;
        } else if (!strncmp(a, "--emit=", 7)) {
            o->emit = a + 7;
            if (strcmp(o->emit, "c") && strcmp(o->emit, "ir") &&
                strcmp(o->emit, "ast") && strcmp(o->emit, "dot")) {
                fprintf(stderr, "nnc: --emit is c, ir, dot or ast, not '%s'\n",
                        o->emit);
                return 2;
            }
        } else if (!strncmp(a, "--dump-after=", 13)) {
            static const char *const passes[] = {"shape", "autodiff", "optim",
                                                 "fuse", "plan"};
            o->dump_after = a + 13;
            bool known = false;
            for (size_t p = 0; p < sizeof passes / sizeof *passes; p++)
                known = known || !strcmp(passes[p], o->dump_after);
            if (!known) {
                fprintf(stderr, "nnc: unknown pass '%s' (shape, autodiff, "
                        "optim, fuse, plan)\n", o->dump_after);
                return 2;
            }
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(a, "--version")) {
            puts("nnc " NNC_VERSION);
            return -1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "nnc: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (o->input) {
            fprintf(stderr, "nnc: one input file at a time ('%s' and '%s')\n",
                    o->input, a);
            return 2;
        } else {
            o->input = a;
        }
    }
    if (!o->input) {
        usage(stderr);
        return 2;
    }
    return 0;
}

/* Reads the whole file; refuses directories, huge files and I/O errors. */
static bool read_source(Arena *a, const char *path, Source *src)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "nnc: cannot open '%s': %s\n", path, strerror(errno));
        return false;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    bool ok = buf != NULL;
    while (ok) {
        if (len + 1 >= cap) {
            if (cap > MAX_SOURCE_BYTES) {
                fprintf(stderr, "nnc: '%s' is larger than %d MiB\n", path,
                        MAX_SOURCE_BYTES >> 20);
                ok = false;
                break;
            }
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                ok = false;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                fprintf(stderr, "nnc: cannot read '%s': %s\n", path,
                        strerror(errno));
                ok = false;
            }
            break;
        }
    }
    fclose(f);
    if (ok) {
        buf[len] = '\0';
        src->path = path;
        src->text = arena_strndup(a, buf, len);
        src->len = len;
    }
    free(buf);
    return ok;
}

static const Model *choose_model(Diag *d, const Program *p, const char *name)
{
    if (!p->models) {
        diag_error(d, (Loc){0, 0}, "no model in this file; start one with "
                   "`model NAME { ... }`");
        return NULL;
    }
    for (const Model *m = p->models; m; m = m->next) {
        for (const Model *o = p->models; o != m; o = o->next)
            if (!strcmp(o->name, m->name)) {
                diag_error(d, m->name_loc, "a second model named '%s'", m->name);
                diag_note(d, o->name_loc, "the first one is here");
                return NULL;
            }
    }
    if (name) {
        for (const Model *m = p->models; m; m = m->next)
            if (!strcmp(m->name, name))
                return m;
        diag_error(d, (Loc){0, 0}, "no model named '%s' in this file", name);
        return NULL;
    }
    if (p->models->next) {
        diag_error(d, p->models->next->name_loc, "this file has several models;"
                   " choose one with --model NAME");
        return NULL;
    }
    return p->models;
}

static void dump_if(const Options *o, const char *pass, const Graph *g)
{
    if (o->dump_after && !strcmp(o->dump_after, pass)) {
        printf("# IR after %s\n", pass);
        ir_print(stdout, g);
    }
}

static bool verify(const Graph *g, const char *pass)
{
    if (ir_verify(g, stderr))
        return true;
    fprintf(stderr, "nnc: internal error: the IR is invalid after %s\n", pass);
    return false;
}

static void print_stats(const Graph *g, const Kernels *ks,
                        Plan *const plans[PROG__COUNT], bool f64)
{
    long arena = 0;
    for (int i = 0; i < PROG__COUNT; i++)
        arena = plans[i]->arena_elems > arena ? plans[i]->arena_elems : arena;
    int elem = f64 ? 8 : 4;
    printf("kernels=%d\n", ks->n);
    printf("arena_bytes=%ld\n", arena * elem);
    printf("param_bytes=%ld\n", g->param_elems * elem);
    printf("grad_bytes=%ld\n", g->param_elems * elem);
    printf("state_bytes=%ld\n", g->state_elems * elem);
    printf("params=%ld\n", g->param_elems);
    printf("batch=%d\n", g->batch);
    printf("flops_per_step=%lld\n", ir_flops(g, plans[PROG_TRAIN]->runs));
}

/* "out/mnist.c" -> "out/mnist.h", and the header's bare name for #include */
static void header_paths(Arena *a, const char *c_path, const char **h_path,
                         const char **h_name)
{
    size_t n = strlen(c_path);
    const char *base = n > 2 && !strcmp(c_path + n - 2, ".c")
                           ? arena_strndup(a, c_path, n - 2)
                           : c_path;
    *h_path = arena_printf(a, "%s.h", base);
    const char *slash = strrchr(*h_path, '/');
    *h_name = slash ? slash + 1 : *h_path;
}

static int write_outputs(Arena *a, const Options *o, const Model *m,
                         const Graph *g, const Kernels *ks,
                         Plan *const plans[PROG__COUNT], const TrainSpec *t)
{
    const char *c_path = o->output ? o->output : arena_printf(a, "%s.c", m->name);
    const char *h_path, *h_name;
    header_paths(a, c_path, &h_path, &h_name);
    const char *c_tmp = arena_printf(a, "%s.tmp", c_path);
    const char *h_tmp = arena_printf(a, "%s.tmp", h_path);
    FILE *c = fopen(c_tmp, "w"), *h = fopen(h_tmp, "w");
    if (!c || !h) {
        fprintf(stderr, "nnc: cannot write '%s': %s\n", !c ? c_path : h_path,
                strerror(errno));
        if (c)
            fclose(c), remove(c_tmp);
        if (h)
            fclose(h), remove(h_tmp);
        return 2;
    }
    EmitOptions eo = {.prefix = o->prefix ? o->prefix : m->name, .source = o->input, .header = h_name,
                      .f64 = o->f64, .main = o->main, .fused = o->fused,
                      .profile = o->profile};
    int bad = emit_c(c, h, g, ks, plans, t, &eo);
    bad |= fclose(c) != 0;
    bad |= fclose(h) != 0;
    /* write then rename, so a failed run never leaves half a file behind */
    if (bad || rename(c_tmp, c_path) || rename(h_tmp, h_path)) {
        fprintf(stderr, "nnc: writing '%s' failed: %s\n", c_path,
                strerror(errno));
        remove(c_tmp);
        remove(h_tmp);
        return 2;
    }
    return 0;
}

static int compile(Arena *a, const Options *o, Diag *d)
{
    Source src;
    if (!read_source(a, o->input, &src))
        return 2;
    diag_init(d, &src, stderr);

    Program *prog = parse_program(a, d, &src);
    if (!prog)
        return 1;
    if (!strcmp(o->emit, "ast")) {
        ast_print(stdout, prog);
        return 0;
    }
    const Model *m = choose_model(d, prog, o->model);
    TrainSpec t;
    if (!m || !train_check(a, d, prog, m, &t))
        return 1;
    if (o->main && !t.ast) {
        diag_error(d, m->name_loc, "--main needs a train block for '%s': "
                   "train %s { optimizer ... data ... }", m->name, m->name);
        return 1;
    }
    Graph *g = shape_check(a, d, prog, m, t.batch);
    if (!g || !train_check_data(d, &t, g))
        return 1;
    if (o->main && t.data == DATA_NONE) {
        diag_error(d, t.ast->loc, "--main needs data in the train block: "
                   "data idx(\"dir\"), csv(\"file\") or table(...)");
        return 1;
    }
    dump_if(o, "shape", g);
    if (!verify(g, "shape"))
        return 2;

    autodiff(g);
    dump_if(o, "autodiff", g);
    optim_lower(g, &t.opt);
    dump_if(o, "optim", g);
    if (!verify(g, "optim"))
        return 2;

    Kernels *ks = fuse(g, o->fused);
    dump_if(o, "fuse", g);
    Plan *plans[PROG__COUNT];
    for (int p = 0; p < PROG__COUNT; p++)
        plans[p] = plan_program(a, g, ks, (ProgKind)p);
    dump_if(o, "plan", g);

    if (!strcmp(o->emit, "ir")) {
        ir_print(stdout, g);
        fuse_print(stdout, g, ks);
        return 0;
    }
    if (!strcmp(o->emit, "dot")) {
        dot_print(stdout, g, ks);
        return 0;
    }
    if (o->stats) {
        print_stats(g, ks, plans, o->f64);
        return 0;
    }
    if (o->check_only || o->dump_after)
        return 0;
    return write_outputs(a, o, m, g, ks, plans, &t);
}

int main(int argc, char **argv)
{
    Options o;
    int status = parse_options(argc, argv, &o);
    if (status)
        return status < 0 ? 0 : status;
    Arena a = {0};
    Diag d = {0};
    status = compile(&a, &o, &d);
    if (status == 0 && d.nerrors)
        status = 1;
    arena_free(&a);
    return status;
}
