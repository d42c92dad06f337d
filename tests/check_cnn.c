/* check_cnn.c — unit tests of the convolutional layers: shape rules and
 * their diagnostics (conv2d, pooling, batchnorm, dropout), the IR they
 * expand into, their backward ops, and the train block's image data
 * settings (cifar10, mean/std, classes, per_class_accuracy).
 * Programs are compiled from strings; diagnostics go to a memstream. */
#include "nnc.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Compiled {
    Arena arena;
    Source src;
    Diag diag;
    char *messages;
    size_t messages_len;
    FILE *mem;
    Program *prog;
    TrainSpec train;
    Graph *g;
} Compiled;

/* Runs the pipeline as main.c does, through the train block's data
 * check and, unless upto is "shape", autodiff and the optimizer;
 * returns the number of errors. */
static int compile_to(Compiled *c, const char *text, const char *upto)
{
    memset(c, 0, sizeof *c);
    c->src = (Source){"t.nn", text, strlen(text)};
    c->mem = open_memstream(&c->messages, &c->messages_len);
    diag_init(&c->diag, &c->src, c->mem);
    c->prog = parse_program(&c->arena, &c->diag, &c->src);
    if (c->prog && c->prog->models &&
        train_check(&c->arena, &c->diag, c->prog, c->prog->models, &c->train))
        c->g = shape_check(&c->arena, &c->diag, c->prog, c->prog->models,
                           c->train.batch);
    if (c->g && !train_check_data(&c->diag, &c->train, c->g))
        c->g = NULL;
    if (c->g && strcmp(upto, "shape") != 0) {
        autodiff(c->g);
        optim_lower(c->g, &c->train.opt);
    }
    fflush(c->mem);
    return c->diag.nerrors;
}

static void compiled_free(Compiled *c)
{
    fclose(c->mem);
    free(c->messages);
    arena_free(&c->arena);
}

/* A model whose body is `body` on an input of per-sample shape `input`,
 * with a dense head so it is complete, and a train block with `train`
 * settings (batch 2 unless they say otherwise; sgd(lr = 0.1) unless they
 * name an optimizer). */
static char *model_text(const char *input, const char *body, const char *train)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fprintf(f,
            "model m {\n"
            "    input x : %s\n"
            "    label y : class(3)\n"
            "%s\n"
            "    z = dense(flatten(h), 3)\n"
            "    output p = softmax(z)\n"
            "    loss cross_entropy(z, y)\n"
            "}\n"
            "train m { %s%s }\n",
            input, body,
            train && strstr(train, "optimizer") ? "" : "optimizer sgd(lr = 0.1) ",
            train ? train : "batch 2");
    fclose(f);
    return text;
}

static void expect_ok(Compiled *c, const char *input, const char *body,
                      const char *upto)
{
    char *text = model_text(input, body, NULL);
    int errors = compile_to(c, text, upto);
    if (errors)
        ck_abort_msg("unexpected errors for:\n%s\n%s", text, c->messages);
    free(text);
}

static void expect_error(const char *input, const char *body,
                         const char *train, const char *message)
{
    Compiled c;
    char *text = model_text(input, body, train);
    ck_assert_int_gt(compile_to(&c, text, "shape"), 0);
    if (!strstr(c.messages, message))
        ck_abort_msg("expected \"%s\" in:\n%s", message, c.messages);
    free(text);
    compiled_free(&c);
}

/* The last op of kind `op`, or -1. */
static int find_op(const Graph *g, OpKind op)
{
    int found = -1;
    for (int i = 0; i < g->nops; i++)
        if (g->ops[i].op == op)
            found = i;
    return found;
}

static int count_ops(const Graph *g, OpKind op)
{
    int n = 0;
    for (int i = 0; i < g->nops; i++)
        n += g->ops[i].op == op;
    return n;
}

static const Param *find_param(const Graph *g, const char *name)
{
    for (int i = 0; i < g->nparams; i++)
        if (strcmp(g->params[i].name, name) == 0)
            return &g->params[i];
    return NULL;
}

static void assert_shape(const Shape *s, int rank, const int *dims)
{
    char buf[96];
    ck_assert_msg(s->rank == rank, "rank of %s is not %d",
                  shape_str(s, buf, sizeof buf), rank);
    for (int i = 0; i < rank; i++)
        ck_assert_msg(s->dim[i] == dims[i], "shape %s differs at dim %d",
                      shape_str(s, buf, sizeof buf), i);
}

/* ---------------------------------------------------------------- */
/* conv2d                                                            */

START_TEST(conv_shapes_names_and_init)
{
    Compiled c;
    expect_ok(&c, "[1, 28, 28]",
              "    a = conv2d(x, 32, kernel = 3) |> relu\n"
              "    h = conv2d(a, 8, kernel = [3, 5], bias = false) |> relu\n",
              "shape");
    const Graph *g = c.g;
    const Param *w1 = find_param(g, "conv1.weight");
    const Param *b1 = find_param(g, "conv1.bias");
    const Param *w2 = find_param(g, "conv2.weight");
    ck_assert_ptr_nonnull(w1);
    ck_assert_ptr_nonnull(b1);
    ck_assert_ptr_nonnull(w2);
    ck_assert_ptr_null(find_param(g, "conv2.bias"));
    assert_shape(&w1->shape, 4, (int[]){32, 1, 3, 3});
    assert_shape(&b1->shape, 1, (int[]){32});
    assert_shape(&w2->shape, 4, (int[]){8, 32, 3, 5});
    /* PyTorch's default: U(+-1/sqrt(fan_in)), fan_in = C * KH * KW */
    ck_assert_int_eq(w1->init.kind, INIT_TORCH_DEFAULT);
    ck_assert_int_eq(w1->init.fan_in, 9);
    ck_assert_int_eq(b1->init.fan_in, 9);
    ck_assert_int_eq(w2->init.fan_in, 32 * 15);
    ck_assert_int_eq(w2->init.fan_out, 8 * 15);
    int conv = find_op(g, OP_CONV2D);
    assert_shape(&g->ops[conv].shape, 4, (int[]){2, 8, 24, 22});
    ck_assert_int_eq(count_ops(g, OP_CONV2D), 2);
    ck_assert_int_eq(count_ops(g, OP_BIAS_ADD), 2); /* conv1 and the dense */
    ck_assert(ir_verify(g, stderr));
    compiled_free(&c);
}
END_TEST

START_TEST(conv_same_padding_and_stride)
{
    Compiled c;
    expect_ok(&c, "[3, 7, 6]",
              "    h = conv2d(x, 4, kernel = 3, stride = 2, padding = same)\n",
              "shape");
    const IrOp *o = &c.g->ops[find_op(c.g, OP_CONV2D)];
    /* ceil(7 / 2) = 4 rows: 2 rows of padding, 1 before; ceil(6 / 2) = 3
     * columns: 1 column of padding, after */
    assert_shape(&o->shape, 4, (int[]){2, 4, 4, 3});
    ck_assert_int_eq(o->attr.win.sh, 2);
    ck_assert_int_eq(o->attr.win.ph, 1);
    ck_assert_int_eq(o->attr.win.pw, 0);
    compiled_free(&c);
    expect_ok(&c, "[3, 7, 6]",
              "    h = conv2d(x, 4, kernel = 5, padding = [2, 1])\n", "shape");
    o = &c.g->ops[find_op(c.g, OP_CONV2D)];
    assert_shape(&o->shape, 4, (int[]){2, 4, 7, 4});
    ck_assert_int_eq(o->attr.win.ph, 2);
    ck_assert_int_eq(o->attr.win.pw, 1);
    compiled_free(&c);
}
END_TEST

START_TEST(conv_named_layers)
{
    Compiled c;
    expect_ok(&c, "[1, 8, 8]",
              "    first = conv2d(x, 2)\n"
              "    h = conv2d(first, 2, name = \"features\")\n", "shape");
    ck_assert_ptr_nonnull(find_param(c.g, "first.weight"));
    ck_assert_ptr_nonnull(find_param(c.g, "features.weight"));
    ck_assert_ptr_nonnull(find_param(c.g, "features.bias"));
    compiled_free(&c);
}
END_TEST

START_TEST(conv_kernel_does_not_fit)
{
    expect_error("[1, 3, 3]", "    h = conv2d(x, 4, kernel = 5)\n", NULL,
                 "t.nn:4:9: error: conv2d kernel 5x5 does not fit the input "
                 "[1, 3, 3]");
    expect_error("[1, 3, 3]", "    h = conv2d(x, 4, kernel = 7, padding = 1)\n",
                 NULL, "conv2d kernel 7x7 does not fit the input [1, 3, 3] "
                 "padded to 5x5");
}
END_TEST

START_TEST(conv_input_rank)
{
    expect_error("[784]", "    h = conv2d(x, 4)\n", NULL,
                 "conv2d expects [channels, height, width] per sample, got "
                 "[784]");
    expect_error("[28, 28]", "    h = conv2d(x, 4)\n", NULL,
                 "got [28, 28]; add a channel dimension, as in [1, 28, 28]");
}
END_TEST

START_TEST(conv_bad_arguments)
{
    expect_error("[1, 8, 8]", "    h = conv2d(x, 4, stride = 0)\n", NULL,
                 "conv2d stride must be a positive integer, got 0");
    expect_error("[1, 8, 8]", "    h = conv2d(x, 4, padding = full)\n", NULL,
                 "padding is valid, same, or a number of pixels");
    expect_error("[1, 8, 8]", "    h = conv2d(x, 4, padding = -1)\n", NULL,
                 "padding must be between 0 and");
    expect_error("[1, 8, 8]", "    h = conv2d(x, 4, kernel = [3, 3, 3])\n",
                 NULL, "conv2d kernel is a number or a pair [height, width], "
                 "got a list of 3");
    expect_error("[1, 8, 8]", "    h = conv2d(x, 2.5)\n", NULL,
                 "conv2d filters must be an integer, got 2.5");
}
END_TEST

/* ---------------------------------------------------------------- */
/* pooling                                                           */

START_TEST(pool_floor_rule)
{
    Compiled c;
    expect_ok(&c, "[8, 7, 7]",
              "    a = maxpool2d(x, 2)\n"
              "    h = avgpool2d(a, 2, stride = 1)\n", "shape");
    const IrOp *mp = &c.g->ops[find_op(c.g, OP_MAXPOOL2D)];
    const IrOp *ap = &c.g->ops[find_op(c.g, OP_AVGPOOL2D)];
    assert_shape(&mp->shape, 4, (int[]){2, 8, 3, 3}); /* 7 / 2, floored */
    ck_assert_int_eq(mp->attr.win.sh, 2);             /* stride = size */
    assert_shape(&ap->shape, 4, (int[]){2, 8, 2, 2});
    compiled_free(&c);
}
END_TEST

START_TEST(pool_empty_output)
{
    expect_error("[8, 2, 2]", "    h = maxpool2d(x, 3)\n", NULL,
                 "maxpool2d window 3x3 does not fit the input [8, 2, 2]");
    expect_error("[8, 4, 4]", "    h = avgpool2d(x, [2, 5])\n", NULL,
                 "avgpool2d window 2x5 does not fit the input [8, 4, 4]");
    expect_error("[16]", "    h = maxpool2d(x, 2)\n", NULL,
                 "maxpool2d expects [channels, height, width] per sample, "
                 "got [16]");
}
END_TEST

START_TEST(global_avgpool_gives_channels)
{
    Compiled c;
    expect_ok(&c, "[5, 6, 4]", "    h = global_avgpool(x)\n", "shape");
    const IrOp *ap = &c.g->ops[find_op(c.g, OP_AVGPOOL2D)];
    ck_assert_int_eq(ap->attr.win.kh, 6);
    ck_assert_int_eq(ap->attr.win.kw, 4);
    int r = find_op(c.g, OP_RESHAPE); /* global_avgpool's view, then flatten */
    ck_assert_int_ge(r, 0);
    const IrOp *mm = &c.g->ops[find_op(c.g, OP_MATMUL)];
    assert_shape(&c.g->ops[mm->in[0]].shape, 2, (int[]){2, 5});
    compiled_free(&c);
}
END_TEST

/* ---------------------------------------------------------------- */
/* batch norm and dropout                                            */

START_TEST(batchnorm_params_and_buffers)
{
    Compiled c;
    expect_ok(&c, "[3, 4, 4]",
              "    a = conv2d(x, 6, bias = false) |> batchnorm |> relu\n"
              "    h = batchnorm(flatten(a), momentum = 0.2, eps = 0.001)\n",
              "autodiff");
    const Graph *g = c.g;
    static const char *const names[] = {"bn1.weight", "bn1.bias",
                                        "bn1.running_mean", "bn1.running_var"};
    for (int i = 0; i < 4; i++) {
        const Param *p = find_param(g, names[i]);
        ck_assert_ptr_nonnull(p);
        assert_shape(&p->shape, 1, (int[]){6});
        ck_assert_int_eq(p->buffer, i >= 2);
        /* buffers get no gradient, hence no optimizer update */
        ck_assert_int_eq(p->grad < 0, i >= 2);
    }
    ck_assert_int_eq(find_param(g, "bn1.running_var")->init.kind, INIT_ONES);
    ck_assert_int_eq(find_param(g, "bn1.weight")->init.kind, INIT_ONES);
    ck_assert_ptr_nonnull(find_param(g, "h.running_mean")); /* named by its let */
    ck_assert_int_eq(count_ops(g, OP_BN_STATS), 2);
    ck_assert_int_eq(count_ops(g, OP_BATCHNORM_GRAD_INPUT), 2);
    ck_assert_int_eq(count_ops(g, OP_BATCHNORM_GRAD_GAMMA), 2);
    /* conv, two (gamma, beta), the dense head: never the running stats */
    ck_assert_int_eq(count_ops(g, OP_SGD_UPDATE), 7);
    /* running statistics: updated after everything else of the backward
     * pass, reading the batch's statistics */
    int u = find_op(g, OP_BN_RUNNING_UPDATE);
    ck_assert_int_eq(count_ops(g, OP_BN_RUNNING_UPDATE), 2);
    ck_assert_int_eq(g->ops[u].phase, PH_BACKWARD);
    ck_assert_int_eq(g->ops[g->ops[u].in[2]].op, OP_BN_STATS);
    ck_assert(fabs(g->ops[u].attr.bn.momentum - 0.2) < 1e-12);
    for (int i = u + 1; i < g->nops; i++)
        ck_assert_int_ne(g->ops[i].phase, PH_BACKWARD);
    ck_assert(op_depends_on_mode(OP_BN_STATS));
    ck_assert(!op_depends_on_mode(OP_BATCHNORM));
    ck_assert(ir_verify(g, stderr));
    compiled_free(&c);
}
END_TEST

START_TEST(batchnorm_of_the_input)
{
    Compiled c;
    expect_ok(&c, "[4]", "    h = batchnorm(x) |> dense(3)\n", "autodiff");
    /* the input needs no gradient: gamma's and beta's only */
    ck_assert_int_eq(count_ops(c.g, OP_BATCHNORM_GRAD_INPUT), 0);
    ck_assert_int_eq(count_ops(c.g, OP_BATCHNORM_GRAD_GAMMA), 1);
    ck_assert_int_ge(find_param(c.g, "bn1.bias")->grad, 0);
    compiled_free(&c);
}
END_TEST

START_TEST(batchnorm_diagnostics)
{
    expect_error("[2, 3, 4, 5]", "    h = batchnorm(x)\n", NULL,
                 "batchnorm expects [C], [C, L] or [C, H, W] per sample, got "
                 "[2, 3, 4, 5]");
    expect_error("[4]", "    h = batchnorm(x)\n", "batch 1",
                 "batchnorm needs more than one value per channel in a batch "
                 "to estimate a variance; batch 1 with input [4] has one");
    expect_error("[4]", "    h = batchnorm(x, momentum = 2)\n", NULL,
                 "batchnorm momentum must be in [0, 1], got 2");
    expect_error("[4]", "    h = batchnorm(x, eps = 0)\n", NULL,
                 "batchnorm eps must be positive, got 0");
}
END_TEST

START_TEST(dropout_is_a_mask)
{
    Compiled c;
    expect_ok(&c, "[6]", "    h = dense(x, 4) |> dropout(0.25)\n", "autodiff");
    const Graph *g = c.g;
    int m = find_op(g, OP_DROPOUT_MASK);
    ck_assert_int_ge(m, 0);
    ck_assert(fabs(g->ops[m].attr.drop_p - 0.25) < 1e-12);
    ck_assert(op_depends_on_mode(OP_DROPOUT_MASK));
    /* x * mask forward, dy * mask backward */
    int uses = 0;
    for (int i = 0; i < g->nops; i++)
        for (int j = 0; j < g->ops[i].nin; j++)
            if (g->ops[i].in[j] == m) {
                ck_assert_int_eq(g->ops[i].op, OP_MUL);
                uses++;
            }
    ck_assert_int_eq(uses, 2);
    compiled_free(&c);
    expect_error("[6]", "    h = dropout(x, 1)\n", NULL,
                 "dropout probability must be in [0, 1), got 1");
}
END_TEST

/* ---------------------------------------------------------------- */
/* backward                                                          */

START_TEST(conv_pool_backward_ops)
{
    Compiled c;
    expect_ok(&c, "[2, 9, 9]",
              "    a = conv2d(x, 3, stride = 2, padding = same) |> relu\n"
              "    b = maxpool2d(a, 2)\n"
              "    h = avgpool2d(conv2d(b, 2, kernel = 1), 2, stride = 1)\n",
              "autodiff");
    const Graph *g = c.g;
    /* the first conv reads the input: no input gradient for it */
    ck_assert_int_eq(count_ops(g, OP_CONV2D_GRAD_INPUT), 1);
    ck_assert_int_eq(count_ops(g, OP_CONV2D_GRAD_WEIGHT), 2);
    /* 2x2 windows tile the plane: the gradient goes to the places the
     * forward recorded, relu's mask applied to the pooled gradient */
    ck_assert_int_eq(count_ops(g, OP_MAXPOOL2D_GRAD), 0);
    ck_assert_int_eq(count_ops(g, OP_MAXPOOL2D_PLACE), 1);
    ck_assert_int_eq(count_ops(g, OP_MAXPOOL2D_GRAD_AT), 1);
    ck_assert_int_eq(count_ops(g, OP_AVGPOOL2D_GRAD), 1);
    int pool = find_op(g, OP_MAXPOOL2D), relu = g->ops[pool].in[0];
    ck_assert_int_eq(g->ops[relu].op, OP_RELU);
    for (int i = 0; i < g->nops; i++) {
        if (g->ops[i].phase == PH_FORWARD)
            continue;
        for (int j = 0; j < g->ops[i].nin; j++)
            if (g->ops[i].in[j] == relu) /* only the place reads it */
                ck_assert_int_eq(g->ops[i].op, OP_MAXPOOL2D_PLACE);
        if (g->ops[i].op == OP_RELU_GRAD && g->ops[i].in[1] == pool)
            pool = -1; /* the mask reads the pooled values */
    }
    ck_assert_int_eq(pool, -1);
    const Param *w1 = find_param(g, "conv1.weight");
    const IrOp *dw = &g->ops[w1->grad];
    ck_assert_int_eq(dw->op, OP_CONV2D_GRAD_WEIGHT);
    ck_assert_int_eq(dw->storage, SG_GRAD);
    ck_assert_int_eq(dw->attr.win.sh, 2); /* the forward op's window */
    ck_assert(shape_eq(&dw->shape, &w1->shape));
    int conv = find_op(g, OP_CONV2D);
    ck_assert_int_gt(op_flops(g, conv), 0);
    ck_assert(ir_verify(g, stderr));
    compiled_free(&c);
}
END_TEST

/* Overlapping windows keep the gradient that finds each maximum again;
 * a relu output that something else reads keeps relu's own gradient. */
START_TEST(maxpool_grad_forms)
{
    Compiled c;
    expect_ok(&c, "[2, 9, 9]",
              "    a = conv2d(x, 3) |> relu\n"
              "    b = maxpool2d(a, 3, stride = 2)\n"
              "    h = b\n",
              "autodiff");
    ck_assert_int_eq(count_ops(c.g, OP_MAXPOOL2D_GRAD), 1);
    ck_assert_int_eq(count_ops(c.g, OP_MAXPOOL2D_PLACE), 0);
    compiled_free(&c);
    expect_ok(&c, "[2, 8, 8]",
              "    a = conv2d(x, 3, padding = same) |> relu\n"
              "    h = maxpool2d(a, 2) + maxpool2d(a, 2, stride = 2)\n",
              "autodiff");
    ck_assert_int_eq(count_ops(c.g, OP_MAXPOOL2D_GRAD), 0);
    ck_assert_int_eq(count_ops(c.g, OP_MAXPOOL2D_PLACE), 2);
    /* two readers of the relu output: each pool's gradient goes to it, and
     * relu's gradient reads it as before */
    ck_assert_int_eq(count_ops(c.g, OP_MAXPOOL2D_GRAD_AT), 2);
    int relu = find_op(c.g, OP_RELU), masks = 0;
    for (int i = 0; i < c.g->nops; i++)
        masks += c.g->ops[i].op == OP_RELU_GRAD && c.g->ops[i].in[1] == relu;
    ck_assert_int_eq(masks, 1);
    ck_assert(ir_verify(c.g, stderr));
    compiled_free(&c);
}
END_TEST

/* ---------------------------------------------------------------- */
/* which loop nest each convolution gets                              */

/* The C that nnc emits for model source src (freed here), fused, no
 * main, in double when f64, with --profile's timers when profile, as one
 * string; the header too when `header` is not NULL (the caller frees it). */
static char *generated_c_and_h(char *src, bool f64, bool profile,
                               char **header)
{
    Compiled c;
    if (compile_to(&c, src, "autodiff"))
        ck_abort_msg("unexpected errors for:\n%s\n%s", src, c.messages);
    Kernels *ks = fuse(c.g, true);
    Plan *plans[PROG__COUNT];
    for (int p = 0; p < PROG__COUNT; p++)
        plans[p] = plan_program(&c.arena, c.g, ks, (ProgKind)p);
    char *text = NULL, *htext = NULL;
    size_t len = 0, hlen = 0;
    FILE *f = open_memstream(&text, &len), *h = open_memstream(&htext, &hlen);
    EmitOptions eo = {.prefix = "m", .source = "t.nn", .header = "m.h",
                      .fused = true, .f64 = f64, .profile = profile};
    ck_assert_int_eq(emit_c(f, h, c.g, ks, plans, &c.train, &eo), 0);
    fclose(f);
    fclose(h);
    if (header)
        *header = htext;
    else
        free(htext);
    compiled_free(&c);
    free(src);
    return text;
}

/* The C file alone, without --profile. */
static char *generated_c_of(char *src, bool f64)
{
    return generated_c_and_h(src, f64, false, NULL);
}

/* The same for the model of model_text, with train settings `train`. */
static char *generated_c_with(const char *input, const char *body,
                              const char *train, bool f64)
{
    return generated_c_of(model_text(input, body, train), f64);
}

/* The same, f32, batch 16, sgd. */
static char *generated_c(const char *input, const char *body)
{
    return generated_c_with(input, body, "batch 16", false);
}

/* The softmax cross-entropy gradient from logits and its loss take an
 * exp a value: on the threads for a batch whose rows are worth it, not
 * for a small one (lower.c, EXP_WORK). */
START_TEST(xent_grad_threads_by_batch)
{
    const char *body = "    h = dense(x, 8) |> relu\n";
    char *big = generated_c_with("[4]", body, "batch 256", false);
    char *small = generated_c_with("[4]", body, "batch 16", false);
    const char *kb = strstr(big, "softmax_xent_grad(const float");
    const char *ks = strstr(small, "softmax_xent_grad(const float");
    ck_assert_ptr_nonnull(kb);
    ck_assert_ptr_nonnull(ks);
    ck_assert_ptr_nonnull(strstr(kb, "NNC_PARALLEL_FOR\n    for (int r = 0; r < 256; r++)"));
    ck_assert_ptr_nonnull(strstr(ks, "    for (int r = 0; r < 16; r++)"));
    ck_assert_ptr_null(strstr(ks, "NNC_PARALLEL_FOR\n    for (int r = 0; r < 16; r++)"));
    /* the loss too: each row's term on the threads, then summed in row
     * order, the serial sum's bits */
    const char *lb = strstr(big, "_loss_softmax_xent(const float");
    const char *ls = strstr(small, "_loss_softmax_xent(const float");
    ck_assert_ptr_nonnull(lb);
    ck_assert_ptr_nonnull(ls);
    ck_assert_ptr_nonnull(strstr(lb, "double term[256]; /* each row's, summed in row order below */\n    NNC_PARALLEL_FOR\n    for (int r = 0; r < 256; r++)"));
    ck_assert_ptr_nonnull(strstr(lb, "term[r] = lse - (double)z[target[r]];"));
    ck_assert_ptr_nonnull(strstr(lb, "total += term[r];"));
    ck_assert_ptr_nonnull(strstr(ls, "double total = 0;\n    for (int r = 0; r < 16; r++)"));
    ck_assert_ptr_nonnull(strstr(ls, "total += lse - (double)z[target[r]];"));
    free(big);
    free(small);
}
END_TEST

/* The gradient of the cross-entropy on logits keeps each row's
 * exp(z_j - max) and scales them by 1 / sum, one exp a class; a row too
 * wide for the stack takes exp(z_j - lse) again (lower.c,
 * XENT_ROW_KEPT_MAX). */
START_TEST(xent_grad_keeps_row_exps)
{
    static const char *const fmt =
        "model m {\n    input x : [4]\n    label y : class(%d)\n"
        "    z = dense(x, %d)\n    output p = softmax(z)\n"
        "    loss cross_entropy(z, y)\n}\n"
        "train m { optimizer sgd(lr = 0.1) batch 8 }\n";
    char *src[2];
    const int classes[2] = {256, 257};
    for (int i = 0; i < 2; i++) {
        size_t n = (size_t)snprintf(NULL, 0, fmt, classes[i], classes[i]) + 1;
        src[i] = malloc(n);
        snprintf(src[i], n, fmt, classes[i], classes[i]);
    }
    char *kept = generated_c_of(src[0], false);
    char *wide = generated_c_of(src[1], false);
    const char *kk = strstr(kept, "softmax_xent_grad(const float");
    const char *kw = strstr(wide, "softmax_xent_grad(const float");
    ck_assert_ptr_nonnull(kk);
    ck_assert_ptr_nonnull(kw);
    ck_assert_ptr_nonnull(strstr(kk, "double ez[256], sum = 0;"));
    ck_assert_ptr_nonnull(strstr(kk, "ez[j] = exp((double)z[j] - (double)max);"));
    ck_assert_ptr_nonnull(strstr(kk, "const float p = (float)(ez[j] * inv);"));
    ck_assert_ptr_null(strstr(kw, "double ez["));
    ck_assert_ptr_nonnull(strstr(kw, "const float p = (float)exp((double)z[j] - lse);"));
    free(kept);
    free(wide);
}
END_TEST

/* Adam's sweep over enough parameters goes on the threads in chunks of
 * 256 blocks that each thread claims (nnc_next_chunk: from both ends on
 * 2 threads, fixed shares otherwise); a small one stays one loop on one
 * thread. tests/threads.sh checks the bits on 1, 2 and 3 threads. */
START_TEST(update_sweep_claims_chunks)
{
    const char *body = "    h = dense(x, 64) |> relu\n";
    /* 784 * 64 + 64 + 64 * 3 + 3 = 50435 parameters: 3152 blocks and 3 over */
    char *big = generated_c_with("[784]", body, "batch 16 optimizer adam(lr = 0.001)", false);
    char *small = generated_c_with("[4]", "    h = dense(x, 8) |> relu\n",
                                   "batch 16 optimizer adam(lr = 0.001)", false);
    ck_assert_ptr_nonnull(strstr(big, "static inline __attribute__((unused)) int nnc_next_chunk(int *taken, int n, int *cursor) {"));
    const char *kb = strstr(big, "_adam_update(float *restrict w");
    const char *ks = strstr(small, "_adam_update(float *restrict w");
    ck_assert_ptr_nonnull(kb);
    ck_assert_ptr_nonnull(ks);
    ck_assert_ptr_nonnull(strstr(kb, "int taken = 0; /* chunks of 256 blocks claimed so far */\n"
                                     "    NNC_PARALLEL\n"
                                     "    for (int cur = 0, ch; (ch = nnc_next_chunk(&taken, 13, &cur)) >= 0;) {\n"
                                     "        const int b0 = (int)ch * 256, b1 = b0 + 256 < 3152 ? b0 + 256 : 3152;\n"
                                     "        for (int b = b0; b < b1; b++) {"));
    ck_assert_ptr_nonnull(strstr(kb, "for (int i = 50432; i < 50435; i++)"));
    ck_assert_ptr_null(strstr(ks, "NNC_PARALLEL"));
    ck_assert_ptr_null(strstr(ks, "nnc_next_chunk(&taken"));
    ck_assert_ptr_nonnull(strstr(ks, "for (int b = 0; b < "));
    free(big);
    free(small);
}
END_TEST

/* mnist_cnn's shapes at batch 16: conv2 (13x13 input, 32 -> 64) takes
 * 8-filter register tiles forward and backward and the transposed-dy
 * weight gradient; conv3 (5x5 input, 3x3 output) the tile turned
 * around; conv1 (one channel: 9 rows) keeps lane sums for its weight
 * gradient; the 2x2 pooling routes its gradient band by band. */
START_TEST(conv_kernels_tiled_by_shape)
{
    char *c = generated_c(
        "[1, 28, 28]",
        "    a = conv2d(x, 32) |> relu |> maxpool2d(2)\n"
        "    b = conv2d(a, 64) |> relu |> maxpool2d(2)\n"
        "    h = conv2d(b, 64) |> relu\n");
    ck_assert_ptr_nonnull(strstr(c, "/* 8 filters by 2 vectors of positions at a time"));
    /* conv2's 11x11 plane pooled 2x2 to 5x5: row 10 is in no window, so
     * the forward sums 9 rows of 13 and one of 11, not 10 rows of 13 and
     * one of 11 (141) */
    ck_assert_ptr_nonnull(strstr(c, "float acc[8][128];"));
    ck_assert_ptr_nonnull(strstr(c, "/* rows 10.. are in no pooling window: not computed */"));
    ck_assert_ptr_null(strstr(c, "float acc[8][141];"));
    /* and its gradients skip what only that row (and column) of dy
     * reaches: the input gradient's pairs that read them (dx's last
     * positions, 157 .. 168 of row 12, read nothing else: zeros), dy's
     * positions in row or column 10 in the weight gradient */
    ck_assert_ptr_nonnull(strstr(c, "float wT[64][9][32];"));
    ck_assert_ptr_nonnull(strstr(c, "/* 169 positions in 15 tiles by 2 vectors of channels"));
    ck_assert_ptr_nonnull(strstr(c, "/* dx positions 157 .. 168 */\n"
                                    "                    nnc_vec s[12][2] = {{{0}}};\n"
                                    "                    /* no tap reaches dy's live part from here: zeros */"));
    ck_assert_ptr_null(strstr(c, "float dyz[64][197];"));
    ck_assert_ptr_nonnull(strstr(c, "/* rows 10.. and columns 10.. of dy are in no pooling window: not read */"));
    ck_assert_ptr_nonnull(strstr(c, "float dyT[121][32];"));
    ck_assert_ptr_nonnull(strstr(c, "float wT[576][64];"));
    ck_assert_ptr_nonnull(strstr(c, "/* 9 positions by 2 vectors of filters"));
    ck_assert_ptr_nonnull(strstr(c, "float lanes[1][2][9][16];"));
    /* conv3's input gradient, 5x5 planes from 3x3, the same way
     * (position 5, (1, 0), reads dy (1, 0) through tap (0, 0)) */
    ck_assert_ptr_nonnull(strstr(c, "float wT[64][9][64];"));
    ck_assert_ptr_nonnull(strstr(c, "/* 25 positions in 3 tiles by 2 vectors of channels"));
    ck_assert_ptr_nonnull(strstr(c, "/* dx positions 0 .. 7 */"));
    ck_assert_ptr_nonnull(strstr(c, "{ const float a = dr[3]; s[5][0] += a * b[0]; s[5][1] += a * b[1]; }"));
    ck_assert_ptr_null(strstr(c, "float dyz[64][37];"));
    /* vectors are loaded through nnc_vec pointers: a memcpy of one went
     * through the stack in AVX2 builds (lower_vec_type) */
    ck_assert_ptr_nonnull(strstr(c, "aligned(4), may_alias));"));
    ck_assert_ptr_nonnull(strstr(c, "b[1] = *(const nnc_vec *)(src + "));
    ck_assert_ptr_null(strstr(c, "memcpy(&b["));
    ck_assert_ptr_null(strstr(c, "memcpy(&s["));
    /* the epilogue leaves each window element in a plane of its own
     * (conv1: 4 planes of 13x13, conv2: of 5x5, row 10 and column 10
     * left out), so the pooling and its places are contiguous passes */
    ck_assert_ptr_nonnull(strstr(c, "const float t0 = acc[k][(ph * 2 + i) * 28 + pw * 2 + j];"));
    ck_assert_ptr_nonnull(strstr(c, "const int q = (i * 2 + j) * 169 + ph * 13 + pw;"));
    ck_assert_ptr_nonnull(strstr(c, "const int q = (i * 2 + j) * 25 + ph * 5 + pw;"));
    ck_assert_ptr_nonnull(strstr(c, "const float v = act[t * 169 + q];"));
    ck_assert_ptr_nonnull(strstr(c, "best[q] = take ? t : best[q];"));
    ck_assert_ptr_null(strstr(c, "const float (*band)[26]"));
    /* the pooled gradients are spread where the convolutions' gradients
     * read them (rule conv_grad_place), never by a kernel of their own:
     * conv2's transposed dy from its pooled form, conv1's bias summed
     * inside its weight gradient, conv2's bias from a plane on the stack */
    ck_assert_ptr_nonnull(strstr(c, "float gT[25][32], pT[25][32];"));
    ck_assert_ptr_nonnull(strstr(c, "/* conv2d_grad_weight and bias_grad, dy through maxpool2d_grad_at */"));
    ck_assert_ptr_nonnull(strstr(c, "float bl[2][16] = {{0}};"));
    ck_assert_ptr_nonnull(strstr(c, "/* bias_grad, dy through maxpool2d_grad_at */"));
    ck_assert_ptr_nonnull(strstr(c, "float dym[121]; /* dy through maxpool2d_grad_at */"));
    ck_assert_ptr_null(strstr(c, "_maxpool2d_grad_at("));
    ck_assert_ptr_null(strstr(c, "nnc_sqrt")); /* sgd: no square roots */
    free(c);
}
END_TEST

/* The window-element layout of a pooled plane (lower_conv.c,
 * pool_by_window_element) is for max-poolings whose windows tile the
 * plane; overlapping windows and average pooling read the plane as it
 * is, and so does a pooling whose input is also kept for another reader. */
START_TEST(conv_pool_window_elements_only_where_windows_tile)
{
    const char *layout = "/* act: element (i, j) of every window in a plane of its own */";
    char *c = generated_c("[1, 12, 12]",
                          "    h = conv2d(x, 4) |> relu |> maxpool2d(2)\n");
    ck_assert_ptr_nonnull(strstr(c, layout));
    free(c);
    c = generated_c("[1, 12, 12]",
                    "    h = conv2d(x, 4) |> relu |> maxpool2d(3, stride = 2)\n");
    ck_assert_ptr_null(strstr(c, layout));
    ck_assert_ptr_nonnull(strstr(c, "conv_pool"));
    free(c);
    c = generated_c("[1, 12, 12]",
                    "    h = conv2d(x, 4) |> relu |> avgpool2d(2)\n");
    ck_assert_ptr_null(strstr(c, layout));
    ck_assert_ptr_nonnull(strstr(c, "conv_pool"));
    free(c);
}
END_TEST

/* SGD and Adam compute in the element type, one rounding per tensor op
 * of torch.optim and fma where ATen fuses (so the same bits as PyTorch,
 * checked against it by tests/train/optim_torch.sh); Adam's roots come
 * from the block of the element type. RMSprop computes in double. */
START_TEST(optimizer_precision)
{
    const char *in = "[4]", *body = "    h = dense(x, 40) |> relu\n";
    char *c = generated_c_with(in, body, "optimizer adam(lr = 0.01) batch 2", false);
    ck_assert_ptr_nonnull(strstr(c, "const float step_size = (float)(lr / bias1), "
                                    "root_bias2 = (float)sqrt(bias2);"));
    ck_assert_ptr_nonnull(strstr(c, "m[i] = fmaf(d, 0.1f, m[i] * 0.9f);"));
    ck_assert_ptr_nonnull(strstr(c, "v[i] = fmaf(0.001f * d, d, v[i] * 0.999f);"));
    /* in float the step's two divisions are nnc_adamf_block's, the last
     * elements' the expression it stands for (tests/adam_block.sh) */
    ck_assert_ptr_nonnull(strstr(c, "num[l] = -step_size * m[i];"));
    ck_assert_ptr_nonnull(strstr(c, "nnc_adamf_block(quot, sq, num, root_bias2, "
                                    "inv_root_bias2, 1e-08f);"));
    ck_assert_ptr_nonnull(strstr(c, "quot[0] = num[0] / (sqrtf(sq[0]) / root_bias2 + 1e-08f);"));
    ck_assert_ptr_nonnull(strstr(c, "w[i] += quot[l];"));
    ck_assert_ptr_nonnull(strstr(c, "nnc_sqrtf_block(root, sq);")); /* in the block */
    ck_assert_ptr_null(strstr(c, "nnc_sqrt_block")); /* no unused double block */
    free(c);
    /* 6 parameters: no whole block, so no block function (unused, clang
     * -Werror would refuse it) */
    c = generated_c_with("[1]", "    h = relu(x)\n", "optimizer adam(lr = 0.01) batch 2", false);
    ck_assert_ptr_nonnull(strstr(c, "quot[0] = num[0] / (sqrtf(sq[0]) / root_bias2 + 1e-08f);"));
    ck_assert_ptr_null(strstr(c, "nnc_adamf_block"));
    ck_assert_ptr_null(strstr(c, "nnc_sqrtf_block"));
    free(c);
    c = generated_c_with("[1]", "    h = relu(x)\n", "optimizer rmsprop(lr = 0.01) batch 2", false);
    ck_assert_ptr_null(strstr(c, "nnc_sqrt_block"));
    free(c);
    c = generated_c_with(in, body, "optimizer adam(lr = 0.01, weight_decay = 0.1) batch 2", false);
    ck_assert_ptr_nonnull(strstr(c, "const float d = fmaf(w[i], 0.1f, g[i]);"));
    free(c);
    c = generated_c_with(in, body, "optimizer adamw(lr = 0.01) batch 2", false);
    ck_assert_ptr_nonnull(strstr(c, "w[i] *= (float)(1 - lr * 0.01);"));
    free(c);
    c = generated_c_with(in, body, "optimizer adam(lr = 0.01) batch 2", true);
    ck_assert_ptr_nonnull(strstr(c, "m[i] = fma(d, 0.099999999999999978, m[i] * 0.90000000000000002);"));
    ck_assert_ptr_nonnull(strstr(c, "w[i] += -step_size * m[i] / (root[l] / root_bias2 + 1e-08);"));
    ck_assert_ptr_null(strstr(c, "nnc_adamf_block"));
    ck_assert_ptr_nonnull(strstr(c, "nnc_sqrt_block(root, sq);"));
    ck_assert_ptr_null(strstr(c, "nnc_sqrtf_block"));
    free(c);
    c = generated_c_with(in, body, "optimizer sgd(lr = 0.1, momentum = 0.9, dampening = 0.5, "
                                   "nesterov = false, weight_decay = 0.01) batch 2", false);
    ck_assert_ptr_nonnull(strstr(c, "const float neg_lr = (float)-lr;"));
    ck_assert_ptr_nonnull(strstr(c, "float d = fmaf(w[i], 0.01f, g[i]);"));
    ck_assert_ptr_nonnull(strstr(c, "v[i] = first_step ? d : fmaf(d, 0.5f, v[i] * 0.9f);"));
    ck_assert_ptr_nonnull(strstr(c, "w[i] = fmaf(d, neg_lr, w[i]);"));
    free(c);
    c = generated_c_with(in, body, "optimizer sgd(lr = 0.1, momentum = 0.9, nesterov = true) batch 2", true);
    ck_assert_ptr_nonnull(strstr(c, "d = fma(v[i], 0.90000000000000002, d);"));
    free(c);
    c = generated_c_with(in, body, "optimizer rmsprop(lr = 0.01) batch 2", false);
    ck_assert_ptr_nonnull(strstr(c, "double sq[16], root[16];"));
    ck_assert_ptr_nonnull(strstr(c, "nnc_sqrt_block(root, sq);"));
    ck_assert_ptr_null(strstr(c, "nnc_sqrtf_block"));
    free(c);
}
END_TEST

/* XOR-sized products (at most 512 multiply-adds, under 8 columns) are dot
 * products without a packed copy of B, and they, the optimizer update and
 * the gradient check of a block of at most 256 parameters are scalar
 * (NNC_SCALAR); an MNIST-sized layer keeps the vector tiles. */
START_TEST(small_products_scalar)
{
    char *c = generated_c("[2]", "    h = dense(x, 4) |> relu\n");
    ck_assert_ptr_nonnull(strstr(c, "[16, 4] = A[16, 2] * B^T[2, 4], 128 multiply-adds: one dot product an element"));
    ck_assert_ptr_nonnull(strstr(c, "#pragma GCC unroll 512"));
    ck_assert_ptr_nonnull(strstr(c, "static NNC_SCALAR void k00_fc1_matmul_bias_add_relu("));
    ck_assert_ptr_nonnull(strstr(c, "static NNC_SCALAR int all_finite("));
    /* the update of all 27 parameters, declared scalar */
    const char *update = strstr(c, "_params_sgd_update(float *restrict w");
    ck_assert_ptr_nonnull(update);
    ck_assert_int_eq(strncmp(update - 26, "static NNC_SCALAR void k", 24), 0);
    ck_assert_ptr_null(strstr(c, "packed"));
    ck_assert_ptr_null(strstr(c, "in tiles of"));
    free(c);
    c = generated_c("[784]", "    h = dense(x, 32) |> relu\n");
    ck_assert_ptr_nonnull(strstr(c, "in tiles of 8 rows"));
    ck_assert_ptr_null(strstr(c, "static NNC_SCALAR"));
    ck_assert_ptr_null(strstr(c, "one dot product an element"));
    free(c);
}
END_TEST

/* A weight gradient's product tests each element it stores and reports
 * through *nonfinite; forward_backward clears the flag, and
 * _gradients_finite reads it and scans only the other gradients (the
 * biases, here). */
START_TEST(weight_gradients_test_what_they_store)
{
    char *c = generated_c_with("[784]", "    h = dense(x, 256) |> relu\n",
                               "batch 64", false);
    const char *k = strstr(c, "_weight_matmul(const float *restrict A, const float *restrict B, float *restrict C, int *restrict nonfinite)\n{");
    ck_assert_ptr_nonnull(k);
    ck_assert_ptr_nonnull(strstr(k, "int bad = 0;"));
    ck_assert_ptr_nonnull(strstr(k, "NNC_PARALLEL_FOR_BAD"));
    ck_assert_ptr_nonnull(strstr(k, "bad |= t0 - t0 != 0;"));
    ck_assert_ptr_nonnull(strstr(k, "if (bad) {\n        *nonfinite = 1;"));
    ck_assert_ptr_nonnull(strstr(c, "_weight_matmul(m->arena + "));
    ck_assert_ptr_nonnull(strstr(c, ", &m->grads_nonfinite);"));
    ck_assert_ptr_nonnull(strstr(c, "m->grads_nonfinite = 0;"));
    const char *f = strstr(c, "int m_gradients_finite(const m *m) {");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(strstr(f, "&& !m->grads_nonfinite\n        && all_finite(m->grads + 200704, 256)\n        && all_finite(m->grads + 201728, 3);"));
    /* the bias gradients are not products: they keep no flag */
    ck_assert_ptr_null(strstr(c, "bias_grad(const float *restrict dy, float *restrict dbias, int"));
    free(c);
}
END_TEST

/* The kernels of the training program of model_text(input, body), fused
 * or not: how many of kind KK_GRAD_TAIL, and the ops of the last one. */
static int grad_tails(const char *input, const char *body, bool fused,
                      OpKind *ops, int *nops)
{
    Compiled c;
    char *src = model_text(input, body, "batch 64");
    if (compile_to(&c, src, "autodiff"))
        ck_abort_msg("unexpected errors for:\n%s\n%s", src, c.messages);
    Kernels *ks = fuse(c.g, fused);
    int tails = 0;
    *nops = 0;
    for (int t = 0; t < ks->nsched[PROG_TRAIN]; t++) {
        const Kernel *k = &ks->k[ks->sched[PROG_TRAIN][t]];
        if (k->kind != KK_GRAD_TAIL)
            continue;
        tails++;
        *nops = k->nops;
        for (int m = 0; m < k->nops && m < 8; m++)
            ops[m] = c.g->ops[k->ops[m]].op;
    }
    compiled_free(&c);
    free(src);
    return tails;
}

/* Asserts that `needle` occurs in `hay` before `limit`. */
static void assert_before(const char *hay, const char *needle, const char *limit)
{
    const char *at = strstr(hay, needle);
    ck_assert_msg(at != NULL, "missing: %s", needle);
    ck_assert_msg(at < limit, "too late: %s", needle);
}

/* Rule grad_tail: the gradients left when the last input gradient is
 * done (mnist_mlp's: the second layer's weights, the first layer's bias
 * and weights) form one kernel, one parallel region in which the last
 * thread computes the small ones, with no pragma of their own, while the
 * others start on the largest, whose groups of bands every thread
 * claims. Not with fusion off, and not where the rest is too much or
 * too little beside the largest product. */
START_TEST(grad_tail_beside_the_largest_product)
{
    const char *mlp = "    h = dense(x, 256) |> relu |> dense(64) |> relu\n";
    OpKind ops[8];
    int n;
    ck_assert_int_eq(grad_tails("[784]", mlp, true, ops, &n), 1);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(ops[0], OP_MATMUL);
    ck_assert_int_eq(ops[1], OP_BIAS_GRAD);
    ck_assert_int_eq(ops[2], OP_MATMUL);
    ck_assert_int_eq(grad_tails("[784]", mlp, false, ops, &n), 0);
    /* two products of the same size: the first would have the second
     * beside it, too much; the second only its bias gradient, too
     * little to gain (under 1/32 of its work) */
    ck_assert_int_eq(grad_tails("[256]", "    h = dense(x, 256) |> relu |> dense(256) |> relu\n", true, ops, &n), 0);
    /* rmsprop's 784-128-10: the output layer's gradients are 1.4% of dW1 */
    ck_assert_int_eq(grad_tails("[784]", "    h = dense(x, 128) |> relu\n", true, ops, &n), 0);
    /* products small enough for dot products hand out no bands */
    ck_assert_int_eq(grad_tails("[2]", "    h = dense(x, 4) |> relu\n", true, ops, &n), 0);

    char *c = generated_c_with("[784]", mlp, "batch 64", false);
    const char *k = strstr(c, "fused by rule grad_tail");
    ck_assert_ptr_nonnull(k);
    const char *region = strstr(k, "    NNC_PARALLEL_BAD\n    {\n        if (NNC_THREAD == NNC_THREADS - 1) {\n");
    ck_assert_ptr_nonnull(region);
    const char *end = strstr(region, "\n}\n");
    ck_assert_ptr_nonnull(end);
    /* inside the region no loop opens a region of its own */
    const char *pragma = strstr(region + 20, "NNC_PARALLEL");
    ck_assert(pragma == NULL || pragma > end);
    /* groups of 2 bands on several threads, of 8 on one */
    ck_assert_ptr_nonnull(strstr(region, "const int per = NNC_THREADS > 1 ? 2 : 8;"));
    const char *claim = strstr(region, "for (int cur = 0, group; (group = nnc_next_chunk(&taken, (32 + per - 1) / per, &cur)) >= 0;) {");
    ck_assert_ptr_nonnull(claim);
    ck_assert(claim < end);
    /* the side members come first, inside the last thread's block; the
     * claimed product writes the first layer's weight gradient */
    assert_before(region, "dfc2_weight[at] = t0;", claim);
    assert_before(region, "dbias[c] = acc;", claim);
    /* gcc no longer sees restrict in the region: the channel loop says it */
    assert_before(region, "float *restrict dbias = dfc1_bias;\n                NNC_GCC_IVDEP\n                for (int c = 0; c < 256; c++) {", claim);
    ck_assert_ptr_nonnull(strstr(c, "#define NNC_GCC_IVDEP _Pragma(\"GCC ivdep\")"));
    ck_assert_ptr_nonnull(strstr(claim, "dfc1_weight[at] = t0;"));
    /* both products test what they store, into the region's `bad`, which
     * the kernel reports once; the bias gradient is left to the scan of
     * _gradients_finite */
    ck_assert_ptr_nonnull(strstr(k, "int *restrict nonfinite)\n{\n    int bad = 0;"));
    ck_assert_ptr_nonnull(strstr(region, "dfc2_weight[at] = t0;\n                                    bad |= t0 - t0 != 0;"));
    ck_assert_ptr_nonnull(strstr(claim, "dfc1_weight[at] = t0;\n                                bad |= t0 - t0 != 0;"));
    assert_before(claim, "\n    }\n    if (bad) {\n        *nonfinite = 1;\n    }\n}\n", end + 3);
    ck_assert_ptr_nonnull(strstr(c, "_dfc2_weight_matmul_bias_grad_matmul(m->arena + "));
    const char *f = strstr(c, "int m_gradients_finite(const m *m) {");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(strstr(f, "&& !m->grads_nonfinite\n        && all_finite(m->grads + 200704, 256)\n"));
    ck_assert_ptr_null(strstr(f, "all_finite(m->grads + 200960"));
    free(c);
}
END_TEST

/* Lines from `from` up to the line "}" that closes its function: how
 * many call a kernel (kNN_...), and how many read --profile's clock
 * after one. */
static void count_timed_calls(const char *from, int *calls, int *timed)
{
    *calls = *timed = 0;
    const char *end = strstr(from, "\n}\n");
    ck_assert_ptr_nonnull(end);
    for (const char *l = strchr(from, '\n'); l && l < end; l = strchr(l + 1, '\n')) {
        if (l[1] == ' ' && l[5] == 'k' && l[6] >= '0' && l[6] <= '9' &&
            strchr(l + 1, '(') < strchr(l + 1, '\n'))
            (*calls)++;
        *timed += !strncmp(l + 1, "    nnc_t = nnc_prof_add(", 25);
    }
}

/* --profile: every kernel call of forward_backward and update is timed,
 * neither the checked re-run's nor prediction's; the header declares the
 * report; without the option, no trace of it. */
START_TEST(profile_times_the_training_calls)
{
    const char *body = "    h = dense(x, 8) |> relu\n";
    char *plain = generated_c_with("[4]", body, "batch 16", false);
    ck_assert_ptr_null(strstr(plain, "nnc_prof"));
    ck_assert_ptr_null(strstr(plain, "<time.h>"));
    free(plain);
    char *h = NULL;
    char *c = generated_c_and_h(model_text("[4]", body, "batch 16"), false,
                                true, &h);
    ck_assert_ptr_nonnull(strstr(h, "#include <stdio.h>"));
    ck_assert_ptr_nonnull(strstr(h, "void m_profile_reset(void);"));
    ck_assert_ptr_nonnull(strstr(h, "void m_profile_print(FILE *out);"));
    ck_assert_ptr_nonnull(strstr(c, "void m_profile_print(FILE *out) {"));
    int calls, timed;
    const char *fb = strstr(c, "static void forward_backward(");
    ck_assert_ptr_nonnull(fb);
    count_timed_calls(fb, &calls, &timed);
    ck_assert_int_gt(calls, 3);
    ck_assert_int_eq(timed, calls);
    ck_assert_ptr_nonnull(strstr(fb, "nnc_prof_steps++;\n}"));
    const char *up = strstr(c, "static void update(");
    ck_assert_ptr_nonnull(up);
    count_timed_calls(up, &calls, &timed);
    ck_assert_int_eq(calls, 1);
    ck_assert_int_eq(timed, 1);
    const char *names[] = {"static const char *forward_backward_checked(",
                           "static void forward_predict(",
                           "static void forward_eval("};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *f = strstr(c, names[i]);
        ck_assert_ptr_nonnull(f);
        count_timed_calls(f, &calls, &timed);
        ck_assert_int_gt(calls, 0);
        ck_assert_int_eq(timed, 0);
    }
    free(c);
    free(h);
}
END_TEST

/* x W^T is computed as W x^T when the batch is the smaller side (and
 * fills a tile): x [batch, in] is laid out, not W, and the tiles are
 * stored column by column; otherwise W is laid out as before. */
START_TEST(dense_product_orientation)
{
    char *c = generated_c_with("[784]", "    h = dense(x, 256) |> relu\n",
                               "batch 64", false);
    ck_assert_ptr_nonnull(strstr(c, "[64, 256] = A[64, 784] * B^T[784, 256], computed as its transpose [256, 64] = B[256, 784] * A^T[784, 64]"));
    ck_assert_ptr_nonnull(strstr(c, "const float *restrict bsrc = x + (j0 + c) * 784 + k0;"));
    ck_assert_ptr_null(strstr(c, "= x[(long)j * 784 + k];"));
    ck_assert_ptr_nonnull(strstr(c, "const long at = (long)(j0 + c) * 256 + i0 + r;"));
    ck_assert_ptr_nonnull(strstr(c, "const long j = i0 + r;"));
    free(c);
    /* a batch of 16 is too narrow for a tile of vectors: W is laid out */
    c = generated_c_with("[784]", "    h = dense(x, 256) |> relu\n", "batch 16", false);
    ck_assert_ptr_null(strstr(c, "computed as its transpose"));
    ck_assert_ptr_nonnull(strstr(c, "packed[(long)k * 256 + j] = fc1_weight[(long)j * 784 + k];"));
    free(c);
    /* as many outputs as the batch: nothing to gain */
    c = generated_c_with("[784]", "    h = dense(x, 64) |> relu\n", "batch 64", false);
    ck_assert_ptr_null(strstr(c, "computed as its transpose"));
    free(c);
}
END_TEST

/* ---------------------------------------------------------------- */
/* the train block: image data                                        */

static const char *const cifar_model =
    "model m {\n"
    "    input x : [3, 32, 32]\n"
    "    label y : class(10)\n"
    "    h = conv2d(x, 4) |> relu |> maxpool2d(2)\n"
    "    z = dense(flatten(h), 10)\n"
    "    output p = softmax(z)\n"
    "    loss cross_entropy(z, y)\n"
    "}\n";

static int compile_train(Compiled *c, const char *model, const char *train)
{
    char text[4096];
    snprintf(text, sizeof text, "%strain m { optimizer sgd(lr = 0.1) %s }\n",
             model, train);
    return compile_to(c, text, "shape");
}

START_TEST(train_cifar10)
{
    Compiled c;
    ck_assert_int_eq(compile_train(&c, cifar_model,
        "data cifar10(\"d\", scale = 1/255, mean = [0.5, 0.5, 0.5],"
        " std = [0.25, 0.5, 0.5])\n"
        "metric per_class_accuracy\n"
        "classes [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\","
        " \"i\", \"j\"]"), 0);
    ck_assert_int_eq(c.train.data, DATA_CIFAR10);
    ck_assert_str_eq(c.train.data_path, "d");
    ck_assert_int_eq(c.train.nnorm, 3);
    ck_assert(fabs(c.train.norm_std[0] - 0.25) < 1e-12);
    ck_assert(c.train.metric_per_class && c.train.metric_accuracy);
    ck_assert_int_eq(c.train.nclass_names, 10);
    ck_assert_str_eq(c.train.class_names[9], "j");
    compiled_free(&c);
}
END_TEST

START_TEST(train_image_diagnostics)
{
    Compiled c;
    ck_assert_int_gt(compile_train(&c, cifar_model,
        "data cifar10(\"d\", mean = [0.5], std = [0.5])"), 0);
    ck_assert_ptr_nonnull(strstr(c.messages, "mean and std have 1 numbers but "
                                 "the model's input [3, 32, 32] has 3 channels"));
    compiled_free(&c);
    ck_assert_int_gt(compile_train(&c, cifar_model,
        "data cifar10(\"d\")\nclasses [\"plane\", \"car\"]"), 0);
    ck_assert_ptr_nonnull(strstr(c.messages, "classes names 2 classes but the "
                                 "model's label is class(10)"));
    compiled_free(&c);
    ck_assert_int_gt(compile_train(&c, cifar_model,
        "data cifar10(\"d\", mean = [0.5, 0.5, 0.5])"), 0);
    ck_assert_ptr_nonnull(strstr(c.messages, "normalisation needs both"));
    compiled_free(&c);
    char *gray = model_text("[1, 28, 28]", "    h = conv2d(x, 2)\n",
                            "data cifar10(\"d\")");
    ck_assert_int_gt(compile_to(&c, gray, "shape"), 0);
    ck_assert_ptr_nonnull(strstr(c.messages, "cifar10 images are [3, 32, 32] "
                                 "but the model's input is [1, 28, 28]"));
    free(gray);
    compiled_free(&c);
    char *mlp = model_text("[4]", "    h = dense(x, 3)\n",
                           "metric per_class_accuracy");
    ck_assert_int_eq(compile_to(&c, mlp, "shape"), 0); /* class(3) label */
    free(mlp);
    compiled_free(&c);
}
END_TEST

/* IDX images have one channel: (raw * scale - mean) / std folds into the
 * scale and shift the loader already applies. */
START_TEST(train_idx_normalisation_folds)
{
    Compiled c;
    char *text = model_text("[1, 4, 4]", "    h = conv2d(x, 2)\n",
                            "data idx(\"d\", scale = 0.5, mean = [0.25], "
                            "std = [2])");
    ck_assert_int_eq(compile_to(&c, text, "shape"), 0);
    ck_assert_int_eq(c.train.nnorm, 0);
    ck_assert(fabs(c.train.scale - 0.25) < 1e-12);
    ck_assert(fabs(c.train.shift + 0.125) < 1e-12);
    free(text);
    compiled_free(&c);
}
END_TEST

Suite *cnn_suite(void)
{
    Suite *s = suite_create("cnn");
    TCase *t = tcase_create("conv2d");
    tcase_add_test(t, conv_shapes_names_and_init);
    tcase_add_test(t, conv_same_padding_and_stride);
    tcase_add_test(t, conv_named_layers);
    tcase_add_test(t, conv_kernel_does_not_fit);
    tcase_add_test(t, conv_input_rank);
    tcase_add_test(t, conv_bad_arguments);
    suite_add_tcase(s, t);
    t = tcase_create("pooling");
    tcase_add_test(t, pool_floor_rule);
    tcase_add_test(t, pool_empty_output);
    tcase_add_test(t, global_avgpool_gives_channels);
    suite_add_tcase(s, t);
    t = tcase_create("batchnorm_dropout");
    tcase_add_test(t, batchnorm_params_and_buffers);
    tcase_add_test(t, batchnorm_of_the_input);
    tcase_add_test(t, batchnorm_diagnostics);
    tcase_add_test(t, dropout_is_a_mask);
    suite_add_tcase(s, t);
    t = tcase_create("backward");
    tcase_add_test(t, conv_pool_backward_ops);
    tcase_add_test(t, maxpool_grad_forms);
    tcase_add_test(t, conv_kernels_tiled_by_shape);
    tcase_add_test(t, conv_pool_window_elements_only_where_windows_tile);
    tcase_add_test(t, xent_grad_threads_by_batch);
    tcase_add_test(t, xent_grad_keeps_row_exps);
    tcase_add_test(t, update_sweep_claims_chunks);
    tcase_add_test(t, optimizer_precision);
    tcase_add_test(t, small_products_scalar);
    tcase_add_test(t, dense_product_orientation);
    tcase_add_test(t, weight_gradients_test_what_they_store);
    tcase_add_test(t, grad_tail_beside_the_largest_product);
    tcase_add_test(t, profile_times_the_training_calls);
    suite_add_tcase(s, t);
    t = tcase_create("train_data");
    tcase_add_test(t, train_cifar10);
    tcase_add_test(t, train_image_diagnostics);
    tcase_add_test(t, train_idx_normalisation_folds);
    suite_add_tcase(s, t);
    return s;
}
