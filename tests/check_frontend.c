/* check_frontend.c — unit tests of the front end: scanner, parser, AST
 * dump and diagnostics. Every test parses a source held in memory and
 * compares the AST dump or the exact diagnostics with what is expected.
 *
 * Build alone with -DCHECK_FRONTEND_MAIN to get a runner. */
#define _POSIX_C_SOURCE 200809L

#include "nnc.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ----------------------------------------------------------- */

/* One parse of an in-memory source, with its diagnostics captured. */
typedef struct Run {
    Arena arena;
    Source src;
    Diag diag;
    char *errs; /* everything the front end printed */
    size_t errs_len;
    Program *prog;
} Run;

static void parse_bytes(Run *r, const char *text, size_t len, int max_errors)
{
    memset(r, 0, sizeof *r);
    r->src = (Source){"t.nn", text, len};
    FILE *out = open_memstream(&r->errs, &r->errs_len);
    ck_assert_ptr_nonnull(out);
    diag_init(&r->diag, &r->src, out);
    if (max_errors > 0)
        r->diag.max_errors = max_errors;
    r->prog = parse_program(&r->arena, &r->diag, &r->src);
    fclose(out);
}

static void parse(Run *r, const char *text)
{
    parse_bytes(r, text, strlen(text), 0);
}

static void run_free(Run *r)
{
    arena_free(&r->arena);
    free(r->errs);
}

static char *dump(const Program *p)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    ast_print(out, p);
    fclose(out);
    return buf;
}

/* Parses `text`, which must be correct, and compares its AST dump. */
static void check_ast(const char *text, const char *expected)
{
    Run r;
    parse(&r, text);
    ck_assert_str_eq(r.errs, "");
    ck_assert_ptr_nonnull(r.prog);
    char *got = dump(r.prog);
    ck_assert_str_eq(got, expected);
    free(got);
    run_free(&r);
}

/* Parses `text`, which must be wrong, and compares the diagnostics. */
static void check_errors(const char *text, const char *expected)
{
    Run r;
    parse(&r, text);
    ck_assert_ptr_null(r.prog);
    ck_assert_str_eq(r.errs, expected);
    run_free(&r);
}

static char *repeat(const char *s, int n)
{
    size_t len = strlen(s);
    char *out = malloc(len * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        memcpy(out + len * (size_t)i, s, len);
    out[len * (size_t)n] = '\0';
    return out;
}

/* "model m { x = " + open^n + "1" + close^n + " }" */
static char *nested(const char *open, const char *close, int n)
{
    char *o = repeat(open, n), *c = repeat(close, n);
    size_t len = strlen(o) + strlen(c) + 32;
    char *text = malloc(len);
    snprintf(text, len, "model m { x = %s1%s }", o, c);
    free(o);
    free(c);
    return text;
}

static int count_lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* ---- scanner ------------------------------------------------------------ */

typedef struct NumberCase {
    const char *text;
    double value;
    bool is_int;
} NumberCase;

static const NumberCase number_cases[] = {
    {"12", 12, true},
    {"0", 0, true},
    {"007", 7, true},
    {"0.5", 0.5, false},
    {".5", 0.5, false},
    {"5.", 5, false},
    {"1e-3", 0.001, false},
    {"2.5E+4", 25000, false},
    {"1e5", 100000, false},
    {"9007199254740992", 9007199254740992.0, true},
    {"00000000000000000000009", 9, true},
    {"1e-400", 0, false}, /* underflow is not an error */
};

START_TEST(number_literals)
{
    const NumberCase *c = &number_cases[_i];
    Run r;
    char text[128];
    snprintf(text, sizeof text, "model m { x = %s }", c->text);
    parse(&r, text);
    ck_assert_msg(r.prog != NULL, "%s: %s", c->text, r.errs);
    const Expr *e = r.prog->models->stmts->value;
    ck_assert_int_eq(e->kind, EX_NUM);
    ck_assert_double_eq(e->u.num.value, c->value);
    ck_assert_int_eq(e->u.num.is_int, c->is_int);
    run_free(&r);
}
END_TEST

typedef struct BadNumberCase {
    const char *text;
    const char *message;
} BadNumberCase;

static const BadNumberCase bad_number_cases[] = {
    {"1.2.3", "malformed number literal '1.2.3'"},
    {"1e", "malformed number literal '1e'"},
    {"1e+", "malformed number literal '1e+'"},
    {"3abc", "malformed number literal '3abc'"},
    {"0x1f", "malformed number literal '0x1f'"},
    {"1..2", "malformed number literal '1..2'"},
    {"9007199254740993", "number literal '9007199254740993' is out of range"},
    {"99999999999999999999", "number literal '99999999999999999999' is out of range"},
    {"1e999", "number literal '1e999' is out of range"},
    {"2.5E+400", "number literal '2.5E+400' is out of range"},
};

START_TEST(bad_number_literals)
{
    const BadNumberCase *c = &bad_number_cases[_i];
    char text[128], expected[512];
    snprintf(text, sizeof text, "model m { x = %s }", c->text);
    snprintf(expected, sizeof expected, "t.nn:1:15: error: %s\n%s\n%14s^\n",
             c->message, text, "");
    check_errors(text, expected);
}
END_TEST

START_TEST(number_then_operator)
{
    /* `1-2` is three tokens, `1e-3-2` four: the exponent sign binds */
    check_ast("model m { a = 1-2 b = 1e-3-2 c = 2*.5 }",
              "model m\n"
              "  let a = (- 1 2)\n"
              "  let b = (- 0.001 2)\n"
              "  let c = (* 2 0.5)\n");
}
END_TEST

START_TEST(string_escapes)
{
    Run r;
    parse(&r, "model m { x = \"a\\\"b\\\\c\\nd\\te#f//g\" }");
    ck_assert_ptr_nonnull(r.prog);
    const Expr *e = r.prog->models->stmts->value;
    ck_assert_int_eq(e->kind, EX_STRING);
    ck_assert_str_eq(e->u.str, "a\"b\\c\nd\te#f//g");
    run_free(&r);
}
END_TEST

START_TEST(string_bad_escape)
{
    check_errors("model m { x = \"a\\qb\" }\n",
                 "t.nn:1:17: error: unknown escape sequence '\\q' in string literal\n"
                 "model m { x = \"a\\qb\" }\n"
                 "                ^\n");
}
END_TEST

START_TEST(string_unterminated_at_newline)
{
    check_errors("model m {\n  x = \"abc\n  y = 2\n}\n",
                 "t.nn:2:7: error: unterminated string literal\n"
                 "  x = \"abc\n"
                 "      ^\n");
}
END_TEST

START_TEST(string_unterminated_at_eof)
{
    check_errors("model m { x = \"abc\\",
                 "t.nn:1:15: error: unterminated string literal\n"
                 "model m { x = \"abc\\\n"
                 "              ^\n"
                 "t.nn:1:20: error: unexpected end of file, expected '}' to close '{' at 1:9\n"
                 "model m { x = \"abc\\\n"
                 "                   ^\n");
}
END_TEST

START_TEST(comments)
{
    check_ast("# leading comment\n"
              "model m { // a C++ comment\n"
              "  x = a / b # division, then a comment\n"
              "  y = \"# not a comment\"\n"
              "}\n"
              "# comment at end of file without newline",
              "model m\n"
              "  let x = (/ a b)\n"
              "  let y = \"# not a comment\"\n");
    check_ast("model m { x = 1 } //", "model m\n  let x = 1\n");
}
END_TEST

START_TEST(keywords_and_identifiers)
{
    check_ast("model model_1 { _x = modelx + train2 + Loss + class_ }",
              "model model_1\n  let _x = (+ (+ (+ modelx train2) Loss) class_)\n");
}
END_TEST

START_TEST(locations_are_bytes)
{
    Run r;
    parse(&r, "model m {\n\tx =  f(a, k = 1)\n  loss -x |> g\n}\n");
    ck_assert_ptr_nonnull(r.prog);
    const Model *m = r.prog->models;
    ck_assert_int_eq(m->loc.line, 1);
    ck_assert_int_eq(m->loc.col, 1);
    ck_assert_int_eq(m->name_loc.col, 7);
    const Stmt *let = m->stmts;
    ck_assert_int_eq(let->loc.line, 2);
    ck_assert_int_eq(let->loc.col, 2); /* a tab is one byte */
    const Expr *call = let->value;
    ck_assert_int_eq(call->loc.col, 7);
    ck_assert_int_eq(call->u.call.callee_loc.col, 7);
    ck_assert_int_eq(call->u.call.args->loc.col, 9);
    ck_assert_int_eq(call->u.call.args->next->loc.col, 12); /* keyword: its name */
    const Stmt *loss = let->next;
    ck_assert_int_eq(loss->loc.line, 3);
    ck_assert_int_eq(loss->loc.col, 3);
    const Expr *pipe = loss->value;
    ck_assert_int_eq(pipe->kind, EX_CALL);
    ck_assert_int_eq(pipe->loc.col, 14); /* a piped call is at its callee */
    ck_assert_int_eq(pipe->u.call.args->loc.col, 8);
    ck_assert_int_eq(pipe->u.call.args->value->kind, EX_NEG);
    run_free(&r);
}
END_TEST

START_TEST(binary_location_is_operator)
{
    Run r;
    parse(&r, "model m { x = a  * b }");
    ck_assert_ptr_nonnull(r.prog);
    ck_assert_int_eq(r.prog->models->stmts->value->loc.col, 18);
    run_free(&r);
}
END_TEST

START_TEST(crlf_line_endings)
{
    Run r;
    parse(&r, "model m {\r\n  x = 1\r\n  y = @\r\n}\r\n");
    ck_assert_ptr_null(r.prog);
    ck_assert_str_eq(r.errs, "t.nn:3:7: error: unexpected character '@'\n"
                             "  y = @\n"
                             "      ^\n");
    run_free(&r);
}
END_TEST

START_TEST(stray_characters)
{
    check_errors("model m { x = a @ b }",
                 "t.nn:1:17: error: unexpected character '@'\n"
                 "model m { x = a @ b }\n"
                 "                ^\n");
    check_errors("model m { x = a | b }",
                 "t.nn:1:17: error: unexpected character '|'\n"
                 "model m { x = a | b }\n"
                 "                ^\n");
    /* a UTF-8 character is one error, its bytes escaped in the message */
    check_errors("model m { é = 1 }",
                 "t.nn:1:11: error: unexpected character '\\xc3\\xa9'\n"
                 "model m { é = 1 }\n"
                 "          ^\n");
    /* control bytes are escaped in the message and in the quoted line */
    check_errors("model m {\n\tx = \x01 + 1\n}",
                 "t.nn:2:6: error: unexpected character '\\x01'\n"
                 "\tx = \\x01 + 1\n"
                 "\t    ^\n");
}
END_TEST

/* ---- parser ------------------------------------------------------------- */

static const char mnist_source[] =
    "# the Keras MNIST CNN\n"
    "model mnist_cnn {\n"
    "    input  image : [1, 28, 28]\n"
    "    label  digit : class(10)\n"
    "    x      = conv2d(image, 32, kernel = 3) |> relu\n"
    "    x2     = x |> maxpool2d(2)\n"
    "    h      = dense(flatten(x2), 64, init = xavier_uniform) |> relu\n"
    "    logits = dense(h, 10, name = \"fc2\")\n"
    "    output probs = softmax(logits)\n"
    "    loss   cross_entropy(logits, digit)\n"
    "}\n"
    "train mnist_cnn {\n"
    "    data      idx(\"/usr/share/datasets/fashion-mnist\", scale = 1/255)\n"
    "    optimizer adam(lr = 0.001, betas = [0.9, 0.999])\n"
    "    batch 64; epochs 5\n"
    "    shuffle true\n"
    "    seed 42\n"
    "    metric accuracy\n"
    "    step d_step { loss d_loss; update disc }\n"
    "    data table(x = [[0, 0], [0, 1], [1, 0], [1, 1]], y = [[0], [1], [1], [0]])\n"
    "}\n";

START_TEST(mnist_example)
{
    check_ast(mnist_source,
              "model mnist_cnn\n"
              "  input image : [1, 28, 28]\n"
              "  label digit : class(10)\n"
              "  let x = (pipe relu (call conv2d image 32 kernel=3))\n"
              "  let x2 = (pipe maxpool2d x 2)\n"
              "  let h = (pipe relu (call dense (call flatten x2) 64 init=xavier_uniform))\n"
              "  let logits = (call dense h 10 name=\"fc2\")\n"
              "  output probs = (call softmax logits)\n"
              "  loss (call cross_entropy logits digit)\n"
              "train mnist_cnn\n"
              "  data (call idx \"/usr/share/datasets/fashion-mnist\" scale=(/ 1 255))\n"
              "  optimizer (call adam lr=0.001 betas=[0.9, 0.999])\n"
              "  batch 64\n"
              "  epochs 5\n"
              "  shuffle true\n"
              "  seed 42\n"
              "  metric accuracy\n"
              "  step d_step {\n"
              "    loss d_loss\n"
              "    update disc\n"
              "  }\n"
              "  data (call table x=[[0, 0], [0, 1], [1, 0], [1, 1]] y=[[0], [1], [1], [0]])\n");
}
END_TEST

START_TEST(pipe_desugaring)
{
    Run r;
    parse(&r, "model m { y = a |> f(b, k = 1) }");
    ck_assert_ptr_nonnull(r.prog);
    const Expr *call = r.prog->models->stmts->value;
    ck_assert_int_eq(call->kind, EX_CALL);
    ck_assert_str_eq(call->u.call.callee, "f");
    ck_assert(call->u.call.piped);
    const Arg *a = call->u.call.args;
    ck_assert_ptr_null(a->name);
    ck_assert_str_eq(a->value->u.ident, "a");
    ck_assert_ptr_null(a->next->name);
    ck_assert_str_eq(a->next->value->u.ident, "b");
    ck_assert_str_eq(a->next->next->name, "k");
    ck_assert_double_eq(a->next->next->value->u.num.value, 1);
    ck_assert_ptr_null(a->next->next->next);
    run_free(&r);

    parse(&r, "model m { y = a |> relu }");
    call = r.prog->models->stmts->value;
    ck_assert_str_eq(call->u.call.callee, "relu");
    ck_assert(call->u.call.piped);
    ck_assert_str_eq(call->u.call.args->value->u.ident, "a");
    ck_assert_ptr_null(call->u.call.args->next);
    run_free(&r);

    parse(&r, "model m { y = relu(a) }");
    ck_assert(!r.prog->models->stmts->value->u.call.piped);
    run_free(&r);
}
END_TEST

START_TEST(pipe_chains_and_precedence)
{
    check_ast("model m {\n"
              "  a = x |> f |> g(2) |> h()\n"
              "  b = x + y |> f\n"
              "  c = x |> f + y\n"
              "  d = -x * y - z / 2 |> f\n"
              "  e = a - b - c\n"
              "  f = a / b / c * d\n"
              "  g = -(a + b) * -c\n"
              "  h = - - a\n"
              "}",
              "model m\n"
              "  let a = (pipe h (pipe g (pipe f x) 2))\n"
              "  let b = (pipe f (+ x y))\n"
              "  let c = (+ (pipe f x) y)\n"
              "  let d = (pipe f (- (* (neg x) y) (/ z 2)))\n"
              "  let e = (- (- a b) c)\n"
              "  let f = (* (/ (/ a b) c) d)\n"
              "  let g = (* (neg (+ a b)) (neg c))\n"
              "  let h = (neg (neg a))\n");
}
END_TEST

START_TEST(arguments_and_lists_dump)
{
    check_ast("model m {\n"
              "  a = f()\n"
              "  b = f(1,)\n"
              "  c = f(k = 1, x, j = [], y,)\n"
              "  d = []\n"
              "  e = [1, [2, 3],]\n"
              "  f = g(h(i(1)), \"s\")\n"
              "}",
              "model m\n"
              "  let a = (call f)\n"
              "  let b = (call f 1)\n"
              "  let c = (call f k=1 x j=[] y)\n"
              "  let d = []\n"
              "  let e = [1, [2, 3]]\n"
              "  let f = (call g (call h (call i 1)) \"s\")\n");
}
END_TEST

START_TEST(list_counts)
{
    Run r;
    parse(&r, "model m { x = [1, [2, 3], []] }");
    ck_assert_ptr_nonnull(r.prog);
    const Expr *l = r.prog->models->stmts->value;
    ck_assert_int_eq(l->kind, EX_LIST);
    ck_assert_int_eq(l->u.list.count, 3);
    ck_assert_int_eq(l->u.list.items->next->u.list.count, 2);
    ck_assert_int_eq(l->u.list.items->next->next->u.list.count, 0);
    ck_assert_ptr_null(l->u.list.items->next->next->u.list.items);
    run_free(&r);
}
END_TEST

START_TEST(every_statement_kind)
{
    check_ast("model m {\n"
              "  input  x : [batch, 3 * 4]\n"
              "  label  y : class(10)\n"
              "  param  w : [12, 10], init = xavier_uniform, scale = 0.5\n"
              "  param  b : [10]\n"
              "  h = x |> dense(10)\n"
              "  output probs = softmax(h)\n"
              "  output h\n"
              "  loss cross_entropy(h, y)\n"
              "}",
              "model m\n"
              "  input x : [batch, (* 3 4)]\n"
              "  label y : class(10)\n"
              "  param w : [12, 10], init=xavier_uniform, scale=0.5\n"
              "  param b : [10]\n"
              "  let h = (pipe dense x 10)\n"
              "  output probs = (call softmax h)\n"
              "  output h\n"
              "  loss (call cross_entropy h y)\n");
}
END_TEST

START_TEST(statement_fields)
{
    Run r;
    parse(&r, "model m { input x : [1, 2]\n label y : class(3)\n param w : [2], init = z\n"
              " output o\n loss o }");
    ck_assert_ptr_nonnull(r.prog);
    const Stmt *s = r.prog->models->stmts;
    ck_assert_int_eq(s->kind, ST_INPUT);
    ck_assert_str_eq(s->name, "x");
    ck_assert(!s->type->is_class);
    ck_assert_int_eq(s->type->dims->kind, EX_LIST);
    ck_assert_int_eq(s->type->dims->u.list.count, 2);
    ck_assert_int_eq(s->type->loc.col, 21);
    s = s->next;
    ck_assert_int_eq(s->kind, ST_LABEL);
    ck_assert(s->type->is_class);
    ck_assert_double_eq(s->type->nclasses->u.num.value, 3);
    s = s->next;
    ck_assert_int_eq(s->kind, ST_PARAM);
    ck_assert_str_eq(s->options->name, "init");
    ck_assert_str_eq(s->options->value->u.ident, "z");
    s = s->next;
    ck_assert_int_eq(s->kind, ST_OUTPUT);
    ck_assert_ptr_null(s->value);
    s = s->next;
    ck_assert_int_eq(s->kind, ST_LOSS);
    ck_assert_ptr_null(s->name);
    ck_assert_ptr_null(s->next);
    run_free(&r);
}
END_TEST

START_TEST(optional_semicolons)
{
    const char *expected = "model m\n"
                           "  input x : [1]\n"
                           "  let y = x\n"
                           "  loss y\n"
                           "train m\n"
                           "  epochs 5\n"
                           "  batch 2\n";
    check_ast("model m { input x : [1] y = x loss y } train m { epochs 5 batch 2 }",
              expected);
    check_ast("model m { ; input x : [1];; y = x; loss y; }\n"
              "train m { ;epochs 5; batch 2; }", expected);
    check_ast("model\nm\n{\ninput\nx\n:\n[\n1\n]\ny\n=\nx\nloss\ny\n}\n"
              "train\nm\n{\nepochs\n5\nbatch\n2\n}\n", expected);
}
END_TEST

START_TEST(train_settings)
{
    check_ast("train gan {\n"
              "  loss d_loss; output probs; input x; label y; param p; class c\n"
              "  step d_step { loss d_loss; update disc }\n"
              "  step g_step {\n"
              "    loss g_loss\n"
              "    schedule { warmup 10; decay cosine(steps = 100) }\n"
              "  }\n"
              "  empty {}\n"
              "  hooks {\n"
              "  }\n"
              "  lr -0.5 * 2\n"
              "}",
              "train gan\n"
              "  loss d_loss\n"
              "  output probs\n"
              "  input x\n"
              "  label y\n"
              "  param p\n"
              "  class c\n"
              "  step d_step {\n"
              "    loss d_loss\n"
              "    update disc\n"
              "  }\n"
              "  step g_step {\n"
              "    loss g_loss\n"
              "    schedule {\n"
              "      warmup 10\n"
              "      decay (call cosine steps=100)\n"
              "    }\n"
              "  }\n"
              "  empty {}\n"
              "  hooks {}\n"
              "  lr (* (neg 0.5) 2)\n");
}
END_TEST

START_TEST(setting_fields)
{
    Run r;
    parse(&r, "train t { a {} b 1 c 2 { d 3 } e { } }");
    ck_assert_ptr_nonnull(r.prog);
    const Setting *s = r.prog->trains->settings;
    ck_assert_str_eq(s->key, "a");
    ck_assert(s->has_body);
    ck_assert_ptr_null(s->body);
    ck_assert_ptr_null(s->value);
    s = s->next;
    ck_assert_str_eq(s->key, "b");
    ck_assert(!s->has_body);
    ck_assert_double_eq(s->value->u.num.value, 1);
    s = s->next;
    ck_assert_str_eq(s->key, "c");
    ck_assert(s->has_body);
    ck_assert_double_eq(s->value->u.num.value, 2);
    ck_assert_str_eq(s->body->key, "d");
    ck_assert_int_eq(s->body->loc.col, 26);
    s = s->next;
    ck_assert(s->has_body);
    ck_assert_ptr_null(s->value);
    ck_assert_ptr_null(s->next);
    run_free(&r);
}
END_TEST

START_TEST(empty_program)
{
    const char *sources[] = {"", "   \n\n", "# only a comment", "// x\n# y\n"};
    for (size_t i = 0; i < sizeof sources / sizeof *sources; i++) {
        Run r;
        parse(&r, sources[i]);
        ck_assert_ptr_nonnull(r.prog);
        ck_assert_ptr_null(r.prog->models);
        ck_assert_ptr_null(r.prog->trains);
        ck_assert_str_eq(r.errs, "");
        run_free(&r);
    }
}
END_TEST

START_TEST(several_blocks_in_order)
{
    Run r;
    parse(&r, "model a {} train a {} model b { x = 1 } train b {} model c {}");
    ck_assert_ptr_nonnull(r.prog);
    ck_assert_str_eq(r.prog->models->name, "a");
    ck_assert_str_eq(r.prog->models->next->name, "b");
    ck_assert_str_eq(r.prog->models->next->next->name, "c");
    ck_assert_ptr_null(r.prog->models->next->next->next);
    ck_assert_str_eq(r.prog->trains->model, "a");
    ck_assert_str_eq(r.prog->trains->next->model, "b");
    ck_assert_int_eq(r.prog->trains->next->loc.col, 41);
    ck_assert_int_eq(r.prog->trains->next->model_loc.col, 47);
    ck_assert_ptr_null(r.prog->trains->next->next);
    run_free(&r);
}
END_TEST

/* Nesting up to the limit parses; one more level is one clean error. */
typedef struct NestCase {
    const char *open, *close;
    int col_of_error; /* at depth 201 */
} NestCase;

static const NestCase nest_cases[] = {
    {"(", ")", 215},   /* the 201st '(' */
    {"[", "]", 215},   /* the 201st '[' */
    {"f(", ")", 416},  /* the 201st '(' */
    {"-", "", 15},     /* the outermost '-' is the 201st level */
};

START_TEST(nesting_limit)
{
    const NestCase *c = &nest_cases[_i];
    Run r;
    char *ok = nested(c->open, c->close, 200);
    parse(&r, ok);
    ck_assert_msg(r.prog != NULL, "%s", r.errs);
    run_free(&r);
    free(ok);

    char *deep = nested(c->open, c->close, 201);
    parse(&r, deep);
    ck_assert_ptr_null(r.prog);
    char header[128];
    snprintf(header, sizeof header,
             "t.nn:1:%d: error: expression nested too deeply (limit 200)\n",
             c->col_of_error);
    ck_assert_int_eq(strncmp(r.errs, header, strlen(header)), 0);
    ck_assert_int_eq(count_lines_with(r.errs, "error:"), 1);
    ck_assert_int_eq(r.diag.nerrors, 1);
    run_free(&r);
    free(deep);
}
END_TEST

START_TEST(nesting_far_too_deep)
{
    /* Far past any limit: no crash, no stack overflow, one error. */
    const char *parts[][2] = {{"(", ")"}, {"[", "]"}, {"-", ""}, {"f(", ")"}, {"- (", ")"}};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        Run r;
        char *text = nested(parts[i][0], parts[i][1], 100000);
        parse(&r, text);
        ck_assert_ptr_null(r.prog);
        ck_assert_msg(strstr(r.errs, "error: expression nested too deeply (limit 200)\n"),
                      "%s", r.errs);
        ck_assert_int_eq(r.diag.nerrors, 1);
        run_free(&r);
        free(text);
    }
}
END_TEST

START_TEST(long_operator_chain)
{
    /* A flat chain is nested too: (((1 + 1) + 1) + ...) */
    Run r;
    char *terms = repeat(" + 1", 200);
    char *text = malloc(strlen(terms) + 32);
    sprintf(text, "model m { x = 1%s }", terms);
    parse(&r, text);
    ck_assert_ptr_nonnull(r.prog);
    run_free(&r);
    free(terms);
    free(text);

    terms = repeat(" + 1", 201);
    text = malloc(strlen(terms) + 32);
    sprintf(text, "model m { x = 1%s }", terms);
    parse(&r, text);
    ck_assert_ptr_null(r.prog);
    ck_assert(strstr(r.errs, "t.nn:1:817: error: expression nested too deeply (limit 200)\n"));
    run_free(&r);
    free(terms);
    free(text);
}
END_TEST

START_TEST(block_nesting_limit)
{
    /* the train block is level 1, so 199 nested settings are fine */
    char *open = repeat("s {", 199), *close = repeat("}", 199);
    char *text = malloc(strlen(open) + strlen(close) + 32);
    sprintf(text, "train t {%s%s}", open, close);
    Run r;
    parse(&r, text);
    ck_assert_msg(r.prog != NULL, "%s", r.errs);
    run_free(&r);
    free(open);
    free(close);
    free(text);

    open = repeat("s {", 100000);
    text = malloc(strlen(open) + 32);
    sprintf(text, "train t {%s", open);
    parse(&r, text);
    ck_assert_ptr_null(r.prog);
    const char *header = "t.nn:1:609: error: blocks nested too deeply (limit 200)\n";
    ck_assert_int_eq(strncmp(r.errs, header, strlen(header)), 0);
    ck_assert_int_eq(r.diag.nerrors, 1);
    run_free(&r);
    free(open);
    free(text);
}
END_TEST

/* ---- diagnostics -------------------------------------------------------- */

static char *diag_output(void (*emit)(Diag *), const Source *src, int max_errors,
                         int *nerrors)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    Diag d;
    diag_init(&d, src, out);
    d.max_errors = max_errors;
    emit(&d);
    fclose(out);
    *nerrors = d.nerrors;
    return buf;
}

static void emit_error_and_note(Diag *d)
{
    diag_error(d, (Loc){2, 9}, "unknown function '%s'", "rleu");
    diag_note(d, (Loc){1, 1}, "did you mean '%s'?", "relu");
    diag_error(d, (Loc){0, 0}, "no model to compile");
    diag_note(d, (Loc){9, 1}, "past the end: no source line");
}

START_TEST(diag_format)
{
    const char *text = "model m {\n\tx = rleu(a)\n}\n";
    Source src = {"dir/x.nn", text, strlen(text)};
    int n;
    char *out = diag_output(emit_error_and_note, &src, 0, &n);
    ck_assert_str_eq(out, "dir/x.nn:2:9: error: unknown function 'rleu'\n"
                          "\tx = rleu(a)\n"
                          "\t       ^\n"
                          "dir/x.nn:1:1: note: did you mean 'relu'?\n"
                          "model m {\n"
                          "^\n"
                          "dir/x.nn: error: no model to compile\n"
                          "dir/x.nn:9:1: note: past the end: no source line\n");
    ck_assert_int_eq(n, 2);
    free(out);
}
END_TEST

static void emit_escaped(Diag *d)
{
    diag_error(d, (Loc){1, 3}, "bad %s", "\x01\x7f\xff\ttab");
}

START_TEST(diag_escapes_messages)
{
    Source src = {"x.nn", "ab\x02" "cd", 5};
    int n;
    char *out = diag_output(emit_escaped, &src, 0, &n);
    ck_assert_str_eq(out, "x.nn:1:3: error: bad \\x01\\x7f\\xff\\x09tab\n"
                          "ab\\x02cd\n"
                          "  ^\n");
    free(out);
}
END_TEST

static void emit_five_errors(Diag *d)
{
    for (int i = 1; i <= 5; i++) {
        diag_error(d, (Loc){1, i}, "error %d", i);
        diag_note(d, (Loc){0, 0}, "note %d", i);
    }
}

START_TEST(diag_max_errors)
{
    Source src = {"x.nn", "abcde", 5};
    int n;
    char *out = diag_output(emit_five_errors, &src, 2, &n);
    ck_assert_str_eq(out, "x.nn:1:1: error: error 1\n"
                          "abcde\n"
                          "^\n"
                          "x.nn: note: note 1\n"
                          "x.nn:1:2: error: error 2\n"
                          "abcde\n"
                          " ^\n"
                          "x.nn: note: note 2\n"
                          "x.nn: error: too many errors, stopping\n");
    ck_assert_int_eq(n, 5); /* still counted */
    free(out);
}
END_TEST

static void emit_at_line_ends(Diag *d)
{
    diag_error(d, (Loc){1, 4}, "end of a CRLF line");
    diag_error(d, (Loc){2, 1}, "empty last line");
}

START_TEST(diag_line_ends)
{
    Source src = {"x.nn", "abc\r\n", 5};
    int n;
    char *out = diag_output(emit_at_line_ends, &src, 0, &n);
    ck_assert_str_eq(out, "x.nn:1:4: error: end of a CRLF line\n"
                          "abc\n"
                          "   ^\n"
                          "x.nn:2:1: error: empty last line\n"
                          "\n"
                          "^\n");
    free(out);
}
END_TEST

START_TEST(default_max_errors)
{
    Run r;
    char *text = repeat("@ ", 30);
    parse(&r, text);
    ck_assert_ptr_null(r.prog);
    ck_assert_int_eq(count_lines_with(r.errs, ": error: unexpected character '@'\n"), 20);
    ck_assert(strstr(r.errs, "t.nn:1:39: error: unexpected character '@'\n"));
    ck_assert(strstr(r.errs, "\nt.nn: error: too many errors, stopping\n"));
    ck_assert_int_eq(count_lines_with(r.errs, "too many errors"), 1);
    ck_assert_int_eq(r.diag.nerrors, 21); /* the scanner stops at the 21st */
    run_free(&r);
    free(text);
}
END_TEST

START_TEST(max_errors_from_caller)
{
    Run r;
    parse_bytes(&r, "model m { a = 1.2.3 b = 1e c = 3x d = 4y }", 42, 2);
    ck_assert_ptr_null(r.prog);
    ck_assert_str_eq(r.errs,
                     "t.nn:1:15: error: malformed number literal '1.2.3'\n"
                     "model m { a = 1.2.3 b = 1e c = 3x d = 4y }\n"
                     "              ^\n"
                     "t.nn:1:25: error: malformed number literal '1e'\n"
                     "model m { a = 1.2.3 b = 1e c = 3x d = 4y }\n"
                     "                        ^\n"
                     "t.nn: error: too many errors, stopping\n");
    run_free(&r);
}
END_TEST

START_TEST(several_syntax_errors)
{
    check_errors("model m {\n"
                 "  x = conv2d(image, 32\n"
                 "  y relu\n"
                 "  z = 3\n"
                 "  loss\n"
                 "}\n"
                 "train m {\n"
                 "  epochs 5 )\n"
                 "}\n",
                 "t.nn:3:3: error: unexpected identifier 'y', expected ')' to close '(' at 2:13\n"
                 "  y relu\n"
                 "  ^\n"
                 "t.nn:3:5: error: unexpected identifier 'relu', expected '=' after the name in a let statement\n"
                 "  y relu\n"
                 "    ^\n"
                 "t.nn:6:1: error: unexpected '}', expected an expression after 'loss'\n"
                 "}\n"
                 "^\n"
                 "t.nn:8:12: error: unexpected ')' with no matching '('\n"
                 "  epochs 5 )\n"
                 "           ^\n");
}
END_TEST

/* One syntax error each: the message alone, to keep the table readable. */
typedef struct SyntaxCase {
    const char *text;
    const char *message;
} SyntaxCase;

static const SyntaxCase syntax_cases[] = {
    {"foo", "1:1: error: unexpected identifier 'foo', expected 'model' or 'train'"},
    {"model {}", "1:7: error: unexpected '{', expected a model name after 'model'"},
    {"model m x = 1 }", "1:9: error: unexpected identifier 'x', expected '{' after the model name"},
    {"train {}", "1:7: error: unexpected '{', expected a model name after 'train'"},
    {"model m { x relu }",
     "1:13: error: unexpected identifier 'relu', expected '=' after the name in a let statement"},
    {"model m { input : [1] }", "1:17: error: unexpected ':', expected an input name after 'input'"},
    {"model m { label y [1] }", "1:19: error: unexpected '[', expected ':' after the label name"},
    {"model m { param w : 3 }",
     "1:21: error: unexpected number '3', expected a type ('[...]' or 'class(N)') after ':'"},
    {"model m { label y : class 10 }", "1:27: error: unexpected number '10', expected '(' after 'class'"},
    {"model m { input x : [] }", "1:22: error: unexpected ']', expected an expression after '['"},
    {"model m { param w : [1], init xavier }",
     "1:31: error: unexpected identifier 'xavier', expected '=' after the option name"},
    {"model m { param w : [1], = 3 }", "1:26: error: unexpected '=', expected an option name after ','"},
    {"model m { output = 1 }", "1:18: error: unexpected '=', expected an output name after 'output'"},
    {"model m { x = }", "1:15: error: unexpected '}', expected an expression after '='"},
    {"model m { x = 1 + * 2 }", "1:19: error: unexpected '*', expected an expression after '+'"},
    {"model m { x = a |> 3 }", "1:20: error: unexpected number '3', expected a function name after '|>'"},
    {"model m { x = f(a b) }", "1:19: error: unexpected identifier 'b', expected ',' or ')'"},
    {"model m { x = f(a,, b) }", "1:19: error: unexpected ',', expected an expression or ')' after ','"},
    {"model m { x = [1 2] }", "1:18: error: unexpected number '2', expected ',' or ']'"},
    {"model m { x = [1,\n 2\n y = 3 }", "3:2: error: unexpected identifier 'y', expected ']' to close '[' at 1:15"},
    {"model m { x = [1,, 2] }", "1:18: error: unexpected ',', expected an expression or ']' after ','"},
    {"model m { x = (1 }", "1:18: error: unexpected '}', expected ')' to close '(' at 1:15"},
    {"model m { x = f(a] }", "1:18: error: unexpected ']' with no matching '['"},
    {"model m { x = 1 \"s\" }", "1:17: error: unexpected string \"s\", expected a statement or '}'"},
    {"model m { x = 1 ) }", "1:17: error: unexpected ')' with no matching '('"},
    {"model m { x = model }", "1:15: error: unexpected keyword 'model', expected an expression after '='"},
    {"model m { x = 1\nmodel n {}", "2:1: error: unexpected keyword 'model', expected '}' to close '{' at 1:9"},
    {"model m { x = 1", "1:16: error: unexpected end of file, expected '}' to close '{' at 1:9"},
    {"model m { x = f(1,\n\n", "1:19: error: unexpected end of file, expected ')' to close '(' at 1:16"},
    {"model", "1:6: error: unexpected end of file, expected a model name after 'model'"},
    {"train t { 3 }", "1:11: error: unexpected number '3', expected a setting or '}'"},
    {"train t { model 3 }", "1:11: error: unexpected keyword 'model', expected '}' to close '{' at 1:9"},
    {"train t { epochs }", "1:18: error: unexpected '}', expected an expression or '{' after 'epochs'"},
    {"train t { step s { loss x }", "1:28: error: unexpected end of file, expected '}' to close '{' at 1:9"},
    {"model m { } }", "1:13: error: unexpected '}' with no matching '{'"},
    {"model m { x = 1 y aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa }",
     "1:19: error: unexpected identifier 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...', "
     "expected '=' after the name in a let statement"},
    {"model m { x = 1 bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 2 }",
     "1:78: error: unexpected number '2', expected '=' after the name in a let statement"},
    {"model m { x = 1 y \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" }",
     "1:19: error: unexpected string \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..., expected '=' after the name in a let statement"},
};

START_TEST(syntax_error_messages)
{
    const SyntaxCase *c = &syntax_cases[_i];
    Run r;
    parse(&r, c->text);
    ck_assert_ptr_null(r.prog);
    char expected[512];
    snprintf(expected, sizeof expected, "t.nn:%s\n", c->message);
    char *first_line_end = strchr(r.errs, '\n');
    ck_assert_ptr_nonnull(first_line_end);
    first_line_end[1] = '\0';
    ck_assert_str_eq(r.errs, expected);
    ck_assert_int_eq(r.diag.nerrors, 1);
    run_free(&r);
}
END_TEST

START_TEST(recovery_resumes_at_next_statement)
{
    /* errors on consecutive lines, in three statements and in two more
     * blocks are all reported, without cascades */
    Run r;
    parse(&r, "model m {\n"
              "  a = (1 +\n"
              "  b = 2\n"
              "  c = ]\n"
              "  d = 4\n"
              "  input e [1]\n"
              "  f = 6\n"
              "}\n"
              "model {\n"
              "}\n"
              "train m { epochs 5 ; batch ) ; seed 1 }\n");
    ck_assert_ptr_null(r.prog);
    ck_assert_int_eq(r.diag.nerrors, 5);
    ck_assert_int_eq(count_lines_with(r.errs, "error:"), 5);
    ck_assert(strstr(r.errs, "t.nn:3:5: error: unexpected '=', expected ')' to close '(' at 2:7\n"));
    ck_assert(strstr(r.errs, "t.nn:4:7: error: unexpected ']' with no matching '['\n"));
    ck_assert(strstr(r.errs, "t.nn:6:11: error: unexpected '[', expected ':' after the input name\n"));
    ck_assert(strstr(r.errs, "t.nn:9:7: error: unexpected '{', expected a model name after 'model'\n"));
    ck_assert(strstr(r.errs, "t.nn:11:28: error: unexpected ')' with no matching '('\n"));
    run_free(&r);
}
END_TEST

START_TEST(unclosed_block_before_next_block)
{
    /* the blocks left open are closed where the next one starts, so the
     * errors inside the following blocks are found too */
    check_errors("model m {\n"
                 "  x = f(1,\n"
                 "model n { y = }\n"
                 "train t {\n"
                 "  step s { loss x\n"
                 "train n { epochs 5 ) }\n",
                 "t.nn:3:1: error: unexpected keyword 'model', expected ')' to close '(' at 2:8\n"
                 "model n { y = }\n"
                 "^\n"
                 "t.nn:3:15: error: unexpected '}', expected an expression after '='\n"
                 "model n { y = }\n"
                 "              ^\n"
                 "t.nn:6:1: error: unexpected keyword 'train', expected '}' to close '{' at 5:10\n"
                 "train n { epochs 5 ) }\n"
                 "^\n"
                 "t.nn:6:20: error: unexpected ')' with no matching '('\n"
                 "train n { epochs 5 ) }\n"
                 "                   ^\n");
}
END_TEST

START_TEST(no_cascades)
{
    /* one mistake, one message: the rest of the line is not re-parsed
     * into errors of its own */
    check_errors("model m {\n"
                 "  x conv2d(image, 32, kernel = 3) |> relu\n"
                 "  y = x @ 2 + (3 4) ) ]\n"
                 "}\n",
                 "t.nn:2:5: error: unexpected identifier 'conv2d', expected '=' after the name in a let statement\n"
                 "  x conv2d(image, 32, kernel = 3) |> relu\n"
                 "    ^\n"
                 "t.nn:3:9: error: unexpected character '@'\n"
                 "  y = x @ 2 + (3 4) ) ]\n"
                 "        ^\n");
}
END_TEST

START_TEST(binary_garbage)
{
    /* Every byte value, twice: the output must stay short and clean. */
    char bytes[512];
    for (int i = 0; i < 512; i++)
        bytes[i] = (char)(i % 256 ? i % 256 : 1);
    Run r;
    parse_bytes(&r, bytes, sizeof bytes, 0);
    ck_assert_ptr_null(r.prog);
    ck_assert_int_le(count_lines_with(r.errs, "error:"), 21);
    for (size_t i = 0; i < r.errs_len; i++) {
        unsigned char c = (unsigned char)r.errs[i];
        ck_assert_msg(c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f),
                      "raw byte 0x%02x in diagnostics", c);
    }
    ck_assert_uint_lt(r.errs_len, 20000);
    run_free(&r);
}
END_TEST

START_TEST(nul_bytes)
{
    static const char code[] = "model m {\n  x = \0\n  y = @\n}";
    Run r;
    parse_bytes(&r, code, sizeof code - 1, 0);
    ck_assert_ptr_null(r.prog);
    /* one error, then stop: the file is most likely not text */
    ck_assert_str_eq(r.errs, "t.nn:2:7: error: unexpected character '\\x00' (is this a binary file?)\n"
                             "  x = \\x00\n"
                             "      ^\n");
    run_free(&r);

    static const char comment[] = "model m { # a\0b\n}";
    parse_bytes(&r, comment, sizeof comment - 1, 0);
    ck_assert_ptr_null(r.prog);
    ck_assert(strstr(r.errs, "t.nn:1:14: error: unexpected character '\\x00' (is this a binary file?)\n"));
    run_free(&r);

    static const char string[] = "model m { x = \"a\0b\" }";
    parse_bytes(&r, string, sizeof string - 1, 0);
    ck_assert_ptr_null(r.prog);
    ck_assert(strstr(r.errs, "t.nn:1:17: error: unexpected character '\\x00' (is this a binary file?)\n"));
    ck_assert_int_eq(r.diag.nerrors, 1);
    run_free(&r);
}
END_TEST

START_TEST(huge_single_line)
{
    /* 4 MB on one line with an error at its very end: the quoted line is
     * cut to a window around the caret. */
    size_t n = 4u << 20;
    char *text = malloc(n + 64);
    strcpy(text, "model m { x = [");
    size_t len = strlen(text);
    while (len < n) {
        memcpy(text + len, "1, ", 3);
        len += 3;
    }
    strcpy(text + len, "1 @ ]}");
    len += 6;
    Run r;
    parse_bytes(&r, text, len, 0);
    ck_assert_ptr_null(r.prog);
    char header[128];
    snprintf(header, sizeof header, "t.nn:1:%zu: error: unexpected character '@'\n", len - 3);
    ck_assert_int_eq(strncmp(r.errs, header, strlen(header)), 0);
    ck_assert_int_eq(r.diag.nerrors, 1);
    /* "...", 100 columns, the '@' and what follows; the caret lines up */
    const char *line = r.errs + strlen(header);
    ck_assert_int_eq(strncmp(line, "...", 3), 0);
    ck_assert_int_eq(strncmp(strchr(line, '\n') - 6, "1 @ ]}\n", 7), 0);
    const char *caret = strchr(line, '\n') + 1;
    ck_assert_int_eq((int)(strchr(caret, '^') - caret), 103);
    ck_assert_int_eq(line[103], '@');
    ck_assert_uint_lt(r.errs_len, 400);
    run_free(&r);
    free(text);
}
END_TEST

START_TEST(huge_tokens)
{
    /* a 1 MB identifier and a 1 MB string parse, and are quoted short */
    size_t n = 1u << 20;
    char *text = malloc(2 * n + 64);
    strcpy(text, "model m { x = \"");
    size_t len = strlen(text);
    memset(text + len, 's', n);
    len += n;
    strcpy(text + len, "\" ");
    len += 2;
    memset(text + len, 'i', n);
    len += n;
    strcpy(text + len, " 1 }");
    len += 4;
    Run r;
    parse_bytes(&r, text, len, 0);
    ck_assert_ptr_null(r.prog);
    ck_assert(strstr(r.errs, "error: unexpected number '1', expected '=' after the name in a let statement\n"));
    ck_assert_uint_lt(r.errs_len, 400);
    run_free(&r);

    text[len - 4] = '\0'; /* drop " 1 }": x = "sss..." iii... */
    strcpy(text + len - 4, " = 2 }");
    parse_bytes(&r, text, len + 2, 0);
    ck_assert_msg(r.prog != NULL, "%s", r.errs);
    ck_assert_uint_eq(strlen(r.prog->models->stmts->value->u.str), n);
    ck_assert_uint_eq(strlen(r.prog->models->stmts->next->name), n);
    run_free(&r);
    free(text);
}
END_TEST

START_TEST(comment_edge_cases)
{
    check_ast("model m { x = 1 # } unclosed? no: comment\n}", "model m\n  let x = 1\n");
    check_errors("model m { x = 1 # }",
                 "t.nn:1:16: error: unexpected end of file, expected '}' to close '{' at 1:9\n"
                 "model m { x = 1 # }\n"
                 "               ^\n");
    check_errors("model m { x = 1 / / 2 }",
                 "t.nn:1:19: error: unexpected '/', expected an expression after '/'\n"
                 "model m { x = 1 / / 2 }\n"
                 "                  ^\n");
    check_errors("model m { x = \"unterminated # not a comment }\n",
                 "t.nn:1:15: error: unterminated string literal\n"
                 "model m { x = \"unterminated # not a comment }\n"
                 "              ^\n"
                 "t.nn:1:46: error: unexpected end of file, expected '}' to close '{' at 1:9\n"
                 "model m { x = \"unterminated # not a comment }\n"
                 "                                             ^\n");
}
END_TEST

START_TEST(stray_closing_brace)
{
    check_errors("}\nmodel m {}\n",
                 "t.nn:1:1: error: unexpected '}' with no matching '{'\n"
                 "}\n"
                 "^\n");
    /* after the stray brace the next block is parsed normally */
    check_errors("model a {} }\nmodel b { x = }",
                 "t.nn:1:12: error: unexpected '}' with no matching '{'\n"
                 "model a {} }\n"
                 "           ^\n"
                 "t.nn:2:15: error: unexpected '}', expected an expression after '='\n"
                 "model b { x = }\n"
                 "              ^\n");
}
END_TEST

START_TEST(diagnostics_go_to_the_given_stream_only)
{
    Run r;
    parse(&r, "model m { x = 1 }");
    ck_assert_ptr_nonnull(r.prog);
    ck_assert_uint_eq(r.errs_len, 0);
    ck_assert_int_eq(r.diag.nerrors, 0);
    run_free(&r);
}
END_TEST

/* ---- suite -------------------------------------------------------------- */

#define N(a) ((int)(sizeof(a) / sizeof *(a)))

Suite *frontend_suite(void)
{
    Suite *s = suite_create("frontend");

    TCase *lexer = tcase_create("lexer");
    tcase_add_loop_test(lexer, number_literals, 0, N(number_cases));
    tcase_add_loop_test(lexer, bad_number_literals, 0, N(bad_number_cases));
    tcase_add_test(lexer, number_then_operator);
    tcase_add_test(lexer, string_escapes);
    tcase_add_test(lexer, string_bad_escape);
    tcase_add_test(lexer, string_unterminated_at_newline);
    tcase_add_test(lexer, string_unterminated_at_eof);
    tcase_add_test(lexer, comments);
    tcase_add_test(lexer, keywords_and_identifiers);
    tcase_add_test(lexer, locations_are_bytes);
    tcase_add_test(lexer, binary_location_is_operator);
    tcase_add_test(lexer, crlf_line_endings);
    tcase_add_test(lexer, stray_characters);
    suite_add_tcase(s, lexer);

    TCase *parser = tcase_create("parser");
    tcase_add_test(parser, mnist_example);
    tcase_add_test(parser, pipe_desugaring);
    tcase_add_test(parser, pipe_chains_and_precedence);
    tcase_add_test(parser, arguments_and_lists_dump);
    tcase_add_test(parser, list_counts);
    tcase_add_test(parser, every_statement_kind);
    tcase_add_test(parser, statement_fields);
    tcase_add_test(parser, optional_semicolons);
    tcase_add_test(parser, train_settings);
    tcase_add_test(parser, setting_fields);
    tcase_add_test(parser, empty_program);
    tcase_add_test(parser, several_blocks_in_order);
    tcase_add_loop_test(parser, nesting_limit, 0, N(nest_cases));
    tcase_add_test(parser, nesting_far_too_deep);
    tcase_add_test(parser, long_operator_chain);
    tcase_add_test(parser, block_nesting_limit);
    suite_add_tcase(s, parser);

    TCase *diag = tcase_create("diagnostics");
    tcase_add_test(diag, diag_format);
    tcase_add_test(diag, diag_escapes_messages);
    tcase_add_test(diag, diag_max_errors);
    tcase_add_test(diag, diag_line_ends);
    tcase_add_test(diag, default_max_errors);
    tcase_add_test(diag, max_errors_from_caller);
    tcase_add_test(diag, several_syntax_errors);
    tcase_add_loop_test(diag, syntax_error_messages, 0, N(syntax_cases));
    tcase_add_test(diag, recovery_resumes_at_next_statement);
    tcase_add_test(diag, unclosed_block_before_next_block);
    tcase_add_test(diag, no_cascades);
    tcase_add_test(diag, binary_garbage);
    tcase_add_test(diag, nul_bytes);
    tcase_add_test(diag, huge_single_line);
    tcase_add_test(diag, huge_tokens);
    tcase_add_test(diag, comment_edge_cases);
    tcase_add_test(diag, stray_closing_brace);
    tcase_add_test(diag, diagnostics_go_to_the_given_stream_only);
    suite_add_tcase(s, diag);
    return s;
}

#ifdef CHECK_FRONTEND_MAIN
int main(void)
{
    SRunner *sr = srunner_create(frontend_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
#endif
