/* check_compiler.c — unit tests of the middle of the pipeline: shape
 * checking, IR, autodiff, optimizer lowering, fusion and memory plans.
 * Programs are compiled from strings; diagnostics go to a memstream. */
#include "nnc.h"

#include <check.h>
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
    Kernels *ks;
    Plan *plans[PROG__COUNT];
} Compiled;

/* Runs the pipeline up to `upto` ("shape", "autodiff", "plan") on text;
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
    if (c->g && strcmp(upto, "shape") != 0) {
        autodiff(c->g);
        optim_lower(c->g, &c->train.opt);
        if (strcmp(upto, "autodiff") != 0) {
            c->ks = fuse(c->g, false);
            for (int p = 0; p < PROG__COUNT; p++)
                c->plans[p] = plan_program(&c->arena, c->g, c->ks, (ProgKind)p);
        }
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

#define MLP_HEAD                                                             \
    "model m {\n"                                                            \
    "    input x : [6]\n"                                                    \
    "    label y : class(3)\n"

static const char *const mlp =
    MLP_HEAD
    "    h = dense(x, 5) |> relu\n"
    "    logits = dense(h, 3)\n"
    "    output p = softmax(logits)\n"
    "    loss cross_entropy(logits, y)\n"
    "}\n"
    "train m { optimizer adam(lr = 0.01) batch 4 }\n";

/* ---------------------------------------------------------------- */
/* ops.def tables                                                    */

START_TEST(op_tables_are_complete)
{
    for (int i = 0; i < OP__COUNT; i++) {
        ck_assert_ptr_nonnull(op_names[i]);
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(op_names[i], op_names[j]);
    }
    ck_assert_int_eq(op_arity[OP_MATMUL], 2);
    ck_assert_int_eq(op_class[OP_RELU], OC_EWISE);
    ck_assert_int_eq(op_class[OP_ADAM_UPDATE], OC_UPDATE);
}
END_TEST

/* ---------------------------------------------------------------- */
/* shape                                                             */

START_TEST(shape_dense_stack)
{
    Compiled c;
    ck_assert_int_eq(compile_to(&c, mlp, "shape"), 0);
    Graph *g = c.g;
    ck_assert_int_eq(g->nparams, 4);
    ck_assert_str_eq(g->params[0].name, "fc1.weight");
    ck_assert_str_eq(g->params[1].name, "fc1.bias");
    ck_assert_str_eq(g->params[2].name, "logits.weight");
    /* PyTorch's layout: dense weight is [out, in] */
    ck_assert_int_eq(g->params[0].shape.dim[0], 5);
    ck_assert_int_eq(g->params[0].shape.dim[1], 6);
    ck_assert_int_eq(g->param_elems, 5 * 6 + 5 + 3 * 5 + 3);
    ck_assert_int_eq(g->ops[g->output].shape.rank, 2);
    ck_assert_int_eq(g->ops[g->output].shape.dim[0], 4);
    ck_assert_int_eq(g->ops[g->output].shape.dim[1], 3);
    ck_assert_int_eq(g->ops[g->loss].shape.rank, 0);
    ck_assert(ir_verify(g, stderr));
    compiled_free(&c);
}
END_TEST

static void expect_error(const char *text, const char *message)
{
    Compiled c;
    ck_assert_int_gt(compile_to(&c, text, "shape"), 0);
    if (!strstr(c.messages, message))
        ck_abort_msg("expected \"%s\" in:\n%s", message, c.messages);
    compiled_free(&c);
}

START_TEST(shape_dense_needs_rank_one)
{
    expect_error("model m { input x : [3, 5, 5] label y : class(2)\n"
                 "  z = dense(x, 2)\n output z\n loss cross_entropy(z, y) }\n",
                 "t.nn:2:13: error: dense expects a rank-1 input, got [3, 5, 5]; "
                 "insert flatten");
}
END_TEST

START_TEST(shape_unknown_name)
{
    expect_error(MLP_HEAD "  z = dense(q, 3)\n output z\n"
                 " loss cross_entropy(z, y) }\n",
                 "t.nn:4:13: error: unknown name 'q'");
}
END_TEST

START_TEST(shape_unknown_operation)
{
    expect_error(MLP_HEAD "  z = densse(x, 3)\n output z\n"
                 " loss cross_entropy(z, y) }\n",
                 "t.nn:4:7: error: unknown operation 'densse'");
}
END_TEST

START_TEST(shape_class_count_mismatch)
{
    expect_error(MLP_HEAD "  z = dense(x, 4)\n output z\n"
                 " loss cross_entropy(z, y) }\n",
                 "cross_entropy: the scores have 4 classes but the label is "
                 "class(3)");
}
END_TEST

START_TEST(shape_operand_shapes_named)
{
    expect_error(MLP_HEAD "  a = dense(x, 4)\n b = dense(x, 3)\n c = a + b\n"
                 " output c\n loss cross_entropy(b, y) }\n",
                 "'+' needs operands of the same shape, got [4] and [3]");
}
END_TEST

START_TEST(shape_duplicate_parameter)
{
    expect_error(MLP_HEAD "  a = dense(x, 3, name = \"fc\")\n"
                 " b = dense(a, 3, name = \"fc\")\n output b\n"
                 " loss cross_entropy(b, y) }\n",
                 "duplicate parameter name 'fc.weight'");
}
END_TEST

START_TEST(shape_duplicate_input)
{
    expect_error("model m { input x : [2]\n input x : [3]\n}\n",
                 "t.nn:2:2: error: a model has one input; 'x' is a second one");
}
END_TEST

START_TEST(shape_missing_loss)
{
    expect_error(MLP_HEAD "  z = dense(x, 3)\n output z\n}\n",
                 "model 'm' has no loss");
}
END_TEST

START_TEST(shape_loss_must_be_scalar)
{
    expect_error(MLP_HEAD "  z = dense(x, 3)\n output z\n loss z }\n",
                 "the loss must be a scalar, got a tensor of shape [3]");
}
END_TEST

START_TEST(shape_bad_dimension)
{
    expect_error("model m { input x : [0] }\n",
                 "a dimension must be a positive integer, got 0");
    expect_error("model m { input x : [2.5] }\n",
                 "a dimension must be an integer, got 2.5");
}
END_TEST

START_TEST(shape_wrong_argument_count)
{
    expect_error(MLP_HEAD "  z = dense(x, 3, 4, 5, 6, 7, 8)\n output z\n"
                 " loss cross_entropy(z, y) }\n",
                 "too many arguments to 'dense'");
    expect_error(MLP_HEAD "  z = dense(x)\n output z\n"
                 " loss cross_entropy(z, y) }\n",
                 "'dense' needs its argument 'units'");
}
END_TEST

START_TEST(shape_several_errors_in_one_run)
{
    Compiled c;
    ck_assert_int_eq(compile_to(&c, MLP_HEAD "  a = dense(q, 3)\n"
                                "  b = dense(r, 3)\n output b\n"
                                " loss cross_entropy(b, y) }\n", "shape"), 2);
    ck_assert_ptr_nonnull(strstr(c.messages, "unknown name 'q'"));
    ck_assert_ptr_nonnull(strstr(c.messages, "unknown name 'r'"));
    compiled_free(&c);
}
END_TEST

/* ---------------------------------------------------------------- */
/* train block                                                       */

START_TEST(train_missing_optimizer)
{
    expect_error("model m { input x : [2] label y : [1]\n z = dense(x, 1)\n"
                 " output z\n loss mse(z, y) }\ntrain m { batch 2 }\n",
                 "train block for 'm' has no optimizer");
}
END_TEST

START_TEST(train_unknown_setting_and_duplicate)
{
    Compiled c;
    compile_to(&c, "model m { input x : [2] label y : [1]\n z = dense(x, 1)\n"
               " output z\n loss mse(z, y) }\n"
               "train m { optimizer sgd(lr = 0.1)\n epochz 3\n batch 2\n"
               " batch 3 }\n", "shape");
    ck_assert_ptr_nonnull(strstr(c.messages, "unknown train setting 'epochz'"));
    ck_assert_ptr_nonnull(strstr(c.messages, "'batch' is set twice"));
    compiled_free(&c);
}
END_TEST

START_TEST(train_optimizer_settings)
{
    Compiled c;
    ck_assert_int_eq(compile_to(&c, "model m { input x : [2] label y : [1]\n"
                                " z = dense(x, 1)\n output z\n loss mse(z, y) }\n"
                                "train m { optimizer adam(lr = 0.002, betas = "
                                "[0.8, 0.99], eps = 1e-7) batch 2 epochs 3 }\n",
                                "shape"), 0);
    ck_assert_int_eq(c.train.opt.kind, OPT_ADAM);
    ck_assert_double_eq_tol(c.train.opt.lr, 0.002, 1e-15);
    ck_assert_double_eq_tol(c.train.opt.beta1, 0.8, 1e-15);
    ck_assert_double_eq_tol(c.train.opt.beta2, 0.99, 1e-15);
    ck_assert_double_eq_tol(c.train.opt.eps, 1e-7, 1e-20);
    ck_assert_int_eq(c.train.batch, 2);
    ck_assert_int_eq(c.train.epochs, 3);
    compiled_free(&c);
}
END_TEST

/* ---------------------------------------------------------------- */
/* autodiff and optimizer                                            */

START_TEST(autodiff_every_param_gets_its_gradient)
{
    Compiled c;
    ck_assert_int_eq(compile_to(&c, mlp, "autodiff"), 0);
    Graph *g = c.g;
    ck_assert(ir_verify(g, stderr));
    for (int i = 0; i < g->nparams; i++) {
        const Param *p = &g->params[i];
        ck_assert_int_ge(p->grad, 0);
        const IrOp *o = &g->ops[p->grad];
        ck_assert_int_eq(o->storage, SG_GRAD);
        ck_assert_int_eq(o->phase, PH_BACKWARD);
        ck_assert(shape_eq(&o->shape, &p->shape));
        ck_assert_int_eq(o->offset, p->offset);
    }
    /* dense weight gradient: dW = dy^T x, a matmul with A transposed */
    const IrOp *dw = &g->ops[g->params[0].grad];
    ck_assert_int_eq(dw->op, OP_MATMUL);
    ck_assert(dw->attr.mm.ta);
    ck_assert(!dw->attr.mm.tb);
    ck_assert_int_eq(g->ops[g->params[1].grad].op, OP_BIAS_GRAD);
    compiled_free(&c);
}
END_TEST

START_TEST(autodiff_sums_contributions)
{
    /* h feeds two branches: its gradient is the sum of both */
    Compiled c;
    ck_assert_int_eq(compile_to(&c, MLP_HEAD "  h = dense(x, 3)\n"
                                " z = relu(h) + sigmoid(h)\n output z\n"
                                " loss cross_entropy(z, y) }\n"
                                "train m { optimizer sgd(lr = 0.1) batch 2 }\n",
                                "autodiff"), 0);
    int adds = 0;
    for (int i = 0; i < c.g->nops; i++)
        adds += c.g->ops[i].phase == PH_BACKWARD && c.g->ops[i].op == OP_ADD;
    ck_assert_int_eq(adds, 1);
    compiled_free(&c);
}
END_TEST

START_TEST(optim_adam_state)
{
    Compiled c;
    ck_assert_int_eq(compile_to(&c, mlp, "autodiff"), 0);
    ck_assert_int_eq(c.g->state_elems, 2 * c.g->param_elems);
    int updates = 0;
    for (int i = 0; i < c.g->nops; i++)
        updates += c.g->ops[i].op == OP_ADAM_UPDATE;
    ck_assert_int_eq(updates, c.g->nparams);
    compiled_free(&c);
}
END_TEST

START_TEST(optim_sgd_without_momentum_has_no_state)
{
    Compiled c;
    ck_assert_int_eq(compile_to(&c, "model m { input x : [2] label y : [1]\n"
                                " z = dense(x, 1)\n output z\n loss mse(z, y) }\n"
                                "train m { optimizer sgd(lr = 0.1) batch 2 }\n",
                                "autodiff"), 0);
    ck_assert_int_eq(c.g->state_elems, 0);
    compiled_free(&c);
}
END_TEST

/* ---------------------------------------------------------------- */
/* fuse and plan                                                     */

START_TEST(fuse_every_computing_op_in_one_kernel)
{
    Compiled c;
    ck_assert_int_eq(compile_to(&c, mlp, "plan"), 0);
    for (int i = 0; i < c.g->nops; i++) {
        const IrOp *o = &c.g->ops[i];
        bool computes = op_class[o->op] != OC_SOURCE || o->op == OP_FILL;
        bool viewish = op_class[o->op] == OC_VIEW;
        if (computes && !viewish) {
            ck_assert_int_ge(o->kernel, 0);
            ck_assert_int_lt(o->kernel, c.ks->n);
        } else {
            ck_assert_int_eq(o->kernel, -1);
        }
    }
    ck_assert_ptr_nonnull(strstr(c.ks->k[0].name, "k00_"));
    compiled_free(&c);
}
END_TEST

/* No two arena values that are alive at the same time overlap. */
static void check_plan_sound(const Graph *g, const Plan *p)
{
    int n = g->nops;
    int *last = calloc((size_t)n, sizeof *last);
    for (int i = 0; i < n; i++)
        last[i] = i;
    for (int i = 0; i < n; i++)
        for (int j = 0; p->runs[i] && j < g->ops[i].nin; j++) {
            int r = g->ops[i].in[j];
            while (g->ops[r].storage == SG_VIEW)
                r = g->ops[r].in[0];
            if (last[r] < i)
                last[r] = i;
        }
    for (int a = 0; a < n; a++) {
        if (!p->runs[a] || g->ops[a].storage != SG_ARENA)
            continue;
        long as = p->offset[a], ae = as + shape_elems(&g->ops[a].shape);
        ck_assert_int_le(ae, p->arena_elems);
        for (int b = a + 1; b < n; b++) {
            if (!p->runs[b] || g->ops[b].storage != SG_ARENA || b > last[a])
                continue;
            long bs = p->offset[b], be = bs + shape_elems(&g->ops[b].shape);
            if (as < be && bs < ae)
                ck_abort_msg("%%%d and %%%d overlap while both alive", a, b);
        }
    }
    free(last);
}

START_TEST(plan_lifetimes_do_not_overlap)
{
    Compiled c;
    ck_assert_int_eq(compile_to(&c, mlp, "plan"), 0);
    long total = 0;
    for (int i = 0; i < c.g->nops; i++)
        if (c.plans[PROG_TRAIN]->runs[i] && c.g->ops[i].storage == SG_ARENA)
            total += shape_elems(&c.g->ops[i].shape);
    for (int p = 0; p < PROG__COUNT; p++)
        check_plan_sound(c.g, c.plans[p]);
    /* reuse makes the arena smaller than all values side by side */
    ck_assert_int_lt(c.plans[PROG_TRAIN]->arena_elems, total + 16 * c.g->nops);
    /* predict runs no backward op */
    for (int i = 0; i < c.g->nops; i++)
        if (c.plans[PROG_PREDICT]->runs[i])
            ck_assert_int_eq(c.g->ops[i].phase, PH_FORWARD);
    compiled_free(&c);
}
END_TEST


/* ---------------------------------------------------------------- */
/* fusion rules: each forms its kernel where legal, and only there    */

static const Kernel *train_kernel_of(const Compiled *c, OpKind first_op)
{
    for (int t = 0; t < c->ks->nsched[PROG_TRAIN]; t++) {
        const Kernel *k = &c->ks->k[c->ks->sched[PROG_TRAIN][t]];
        if (c->g->ops[k->ops[0]].op == first_op)
            return k;
    }
    return NULL;
}

static int compile_fused(Compiled *c, const char *text)
{
    int errors = compile_to(c, text, "autodiff");
    if (errors == 0) {
        c->ks = fuse(c->g, true);
        for (int p = 0; p < PROG__COUNT; p++)
            c->plans[p] = plan_program(&c->arena, c->g, c->ks, (ProgKind)p);
    }
    return errors;
}

START_TEST(rule_matmul_epilogue)
{
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, mlp), 0);
    const Kernel *k = train_kernel_of(&c, OP_MATMUL);
    ck_assert_int_eq(k->kind, KK_EPILOGUE);
    ck_assert_str_eq(k->rule, "matmul_epilogue");
    /* matmul, bias_add, relu: the first two never reach memory */
    ck_assert_int_eq(k->nops, 3);
    ck_assert(!k->stored[0] && !k->stored[1] && k->stored[2]);
    ck_assert_int_eq(c.g->ops[k->ops[2]].op, OP_RELU);
    compiled_free(&c);
}
END_TEST

START_TEST(rule_matmul_epilogue_stores_what_others_read)
{
    /* h's pre-activation is also an output: it must be stored */
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, MLP_HEAD "  z = dense(x, 3)\n"
                                   " output z\n h = relu(z)\n"
                                   " loss cross_entropy(h, y) }\n"
                                   "train m { optimizer sgd(lr = 0.1) batch 2 }\n"),
                     0);
    const Kernel *k = train_kernel_of(&c, OP_MATMUL);
    ck_assert_int_eq(k->kind, KK_EPILOGUE);
    ck_assert(k->stored[1]); /* bias_add = z, the output */
    compiled_free(&c);
}
END_TEST

START_TEST(rule_update_sweep)
{
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, mlp), 0);
    const Kernel *k = train_kernel_of(&c, OP_ADAM_UPDATE);
    ck_assert_int_eq(k->kind, KK_UPDATE);
    ck_assert_int_eq(k->nops, c.g->nparams); /* all four in one sweep */
    compiled_free(&c);
}
END_TEST

/* The generated train_step skips the update of a step whose loss or
 * gradients are not finite (emit_finite.c): that needs every optimizer
 * update in kernels of their own, scheduled after every kernel of the
 * forward and backward passes. */
static void check_updates_last(const Compiled *c)
{
    const Kernels *ks = c->ks;
    bool seen_update = false;
    for (int t = 0; t < ks->nsched[PROG_TRAIN]; t++) {
        const Kernel *k = &ks->k[ks->sched[PROG_TRAIN][t]];
        int updates = 0;
        for (int m = 0; m < k->nops; m++)
            updates += op_class[c->g->ops[k->ops[m]].op] == OC_UPDATE;
        ck_assert(updates == 0 || updates == k->nops);
        ck_assert_msg(updates || !seen_update, "%s runs after an update",
                      k->name);
        seen_update = seen_update || updates;
    }
    ck_assert(seen_update);
}

START_TEST(update_kernels_come_last)
{
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, mlp), 0);
    check_updates_last(&c);
    compiled_free(&c);
    ck_assert_int_eq(compile_to(&c, mlp, "plan"), 0); /* fuse(g, false) */
    check_updates_last(&c);
    compiled_free(&c);
}
END_TEST

START_TEST(rule_softmax_xent_pair)
{
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, MLP_HEAD "  z = dense(x, 3)\n"
                                   " output p = softmax(z)\n"
                                   " loss cross_entropy(p, y, from_logits = false) }\n"
                                   "train m { optimizer sgd(lr = 0.1) batch 2 }\n"),
                     0);
    const Kernel *fwd = train_kernel_of(&c, OP_SOFTMAX);
    ck_assert_int_eq(fwd->kind, KK_SOFTMAX_XENT);
    ck_assert(fwd->stored[0] && fwd->stored[1]); /* probs and loss */
    const Kernel *bwd = train_kernel_of(&c, OP_XENT_PROBS_GRAD);
    ck_assert_int_eq(bwd->kind, KK_SOFTMAX_XENT_GRAD);
    ck_assert(!bwd->stored[0]); /* d(loss)/d(probs) never stored */
    /* predict runs the softmax alone: it never computes the loss */
    for (int t = 0; t < c.ks->nsched[PROG_PREDICT]; t++)
        ck_assert_int_ne(c.ks->k[c.ks->sched[PROG_PREDICT][t]].kind,
                         KK_SOFTMAX_XENT);
    compiled_free(&c);
}
END_TEST

START_TEST(rule_softmax_xent_keeps_label_smoothing)
{
    /* the smoothing reaches the loss, its gradient (autodiff copies the
     * attribute) and both fused kernels, which read it from those ops */
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, MLP_HEAD "  z = dense(x, 3)\n"
                                   " output p = softmax(z)\n"
                                   " loss cross_entropy(p, y, from_logits = false,"
                                   " label_smoothing = 0.2) }\n"
                                   "train m { optimizer sgd(lr = 0.1) batch 2 }\n"),
                     0);
    const Kernel *fwd = train_kernel_of(&c, OP_SOFTMAX);
    const Kernel *bwd = train_kernel_of(&c, OP_XENT_PROBS_GRAD);
    ck_assert_int_eq(fwd->kind, KK_SOFTMAX_XENT);
    ck_assert_int_eq(bwd->kind, KK_SOFTMAX_XENT_GRAD);
    ck_assert_double_eq(c.g->ops[fwd->ops[1]].attr.loss.smoothing, 0.2);
    ck_assert_double_eq(c.g->ops[bwd->ops[0]].attr.loss.smoothing, 0.2);
    compiled_free(&c);
}
END_TEST

START_TEST(rule_ewise_chain)
{
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, "model m { input x : [2] label y : [1]\n"
                                   " z = dense(x, 1)\n output p = sigmoid(z)\n"
                                   " loss bce(p, y) }\n"
                                   "train m { optimizer sgd(lr = 0.1) batch 2 }\n"),
                     0);
    /* bce_grad then sigmoid_grad: one loop, the first result in a register */
    const Kernel *k = train_kernel_of(&c, OP_BCE_GRAD);
    ck_assert_int_eq(k->kind, KK_EWISE);
    ck_assert_int_eq(k->nops, 2);
    ck_assert(!k->stored[0] && k->stored[1]);
    compiled_free(&c);
}
END_TEST

/* overlapping windows: windows that tile the plane send the gradient to
 * places the forward recorded (rule_conv_pool) */
START_TEST(rule_maxpool_relu_grad_and_in_place)
{
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, "model n { input x : [1, 6, 6] label y : class(2)\n"
                                   " a = conv2d(x, 2, kernel = 3, padding = same) |> relu\n"
                                   " b = maxpool2d(a, 3, stride = 2)\n z = dense(flatten(b), 2)\n"
                                   " output p = softmax(z)\n loss cross_entropy(z, y) }\n"
                                   "train n { optimizer sgd(lr = 0.1) batch 2 }\n"),
                     0);
    const Kernel *k = train_kernel_of(&c, OP_MAXPOOL2D_GRAD);
    ck_assert_int_eq(k->kind, KK_POOL_RELU_GRAD);
    ck_assert(kernel_in_place_ok(c.g, k));
    /* the result is written over the relu output it read last */
    int relu_out = c.g->ops[k->ops[0]].in[1];
    ck_assert_int_eq(c.plans[PROG_TRAIN]->offset[k->ops[1]],
                     c.plans[PROG_TRAIN]->offset[relu_out]);
    compiled_free(&c);
}
END_TEST

/* The kernel of program `prog` that holds op v. */
static const Kernel *kernel_holding(const Compiled *c, ProgKind prog, int v)
{
    for (int t = 0; t < c->ks->nsched[prog]; t++) {
        const Kernel *k = &c->ks->k[c->ks->sched[prog][t]];
        for (int m = 0; m < k->nops; m++)
            if (k->ops[m] == v)
                return k;
    }
    return NULL;
}

/* The first op of kind `op` in the graph. */
static int first_op(const Compiled *c, OpKind op)
{
    for (int i = 0; i < c->g->nops; i++)
        if (c->g->ops[i].op == op)
            return i;
    return -1;
}

static bool kernel_has(const Compiled *c, const Kernel *k, OpKind op)
{
    for (int m = 0; m < k->nops; m++)
        if (c->g->ops[k->ops[m]].op == op)
            return true;
    return false;
}

#define CNN_HEAD                                                             \
    "model n { input x : [1, 6, 6] label y : class(2)\n"
#define CNN_TAIL                                                             \
    " output p = softmax(z)\n loss cross_entropy(z, y) }\n"                  \
    "train n { optimizer sgd(lr = 0.1) batch 2 }\n"

START_TEST(rule_conv_epilogue)
{
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, CNN_HEAD
                                   " a = conv2d(x, 2, kernel = 3) |> relu\n"
                                   " z = dense(flatten(a), 2)\n" CNN_TAIL), 0);
    const Kernel *k = train_kernel_of(&c, OP_CONV2D);
    ck_assert_int_eq(k->kind, KK_CONV_EPILOGUE);
    ck_assert_str_eq(k->rule, "conv_epilogue");
    /* conv2d, bias_add, relu: only the activation reaches memory */
    ck_assert_int_eq(k->nops, 3);
    ck_assert(!k->stored[0] && !k->stored[1] && k->stored[2]);
    ck_assert_int_eq(c.g->ops[k->ops[2]].op, OP_RELU);
    compiled_free(&c);
}
END_TEST

START_TEST(rule_conv_epilogue_stores_what_others_read)
{
    /* the pre-activation is the output too: kept in memory */
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, CNN_HEAD
                                   " a = conv2d(x, 2, kernel = 3)\n"
                                   " z = dense(flatten(relu(a)), 2)\n"
                                   " output a\n loss cross_entropy(z, y) }\n"
                                   "train n { optimizer sgd(lr = 0.1) batch 2 }\n"),
                     0);
    const Kernel *k = train_kernel_of(&c, OP_CONV2D);
    ck_assert_int_eq(k->kind, KK_CONV_EPILOGUE);
    ck_assert(!k->stored[0] && k->stored[1]); /* bias_add = a, the output */
    compiled_free(&c);
}
END_TEST

START_TEST(rule_conv_epilogue_not_with_two_readers)
{
    /* two activations of one convolution: no single chain to follow */
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, CNN_HEAD
                                   " a = conv2d(x, 2, kernel = 3, bias = false)\n"
                                   " h = relu(a) + tanh(a)\n"
                                   " z = dense(flatten(h), 2)\n" CNN_TAIL), 0);
    const Kernel *k = train_kernel_of(&c, OP_CONV2D);
    ck_assert_int_eq(k->kind, KK_SINGLE);
    ck_assert_int_eq(k->nops, 1);
    compiled_free(&c);
}
END_TEST

START_TEST(rule_conv_pool)
{
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, CNN_HEAD
                                   " a = conv2d(x, 2, kernel = 3, padding = same) |> relu\n"
                                   " b = maxpool2d(a, 2)\n"
                                   " z = dense(flatten(b), 2)\n" CNN_TAIL), 0);
    int relu = first_op(&c, OP_RELU), pool = first_op(&c, OP_MAXPOOL2D);
    const Kernel *train = kernel_holding(&c, PROG_TRAIN, pool);
    ck_assert_int_eq(train->kind, KK_CONV_EPILOGUE);
    ck_assert_str_eq(train->rule, "conv_pool");
    ck_assert_int_eq(train->ops[3], pool);
    /* training: the windows tile the plane, so the kernel also records
     * where each maximum is, and the backward pass reads those places
     * and the pooled values, never the relu output: no program stores it */
    ck_assert_int_eq(train->nops, 5);
    ck_assert_int_eq(c.g->ops[train->ops[4]].op, OP_MAXPOOL2D_PLACE);
    ck_assert(!train->stored[2] && train->stored[3] && train->stored[4]);
    ck_assert_int_lt(c.plans[PROG_TRAIN]->offset[relu], 0);
    const Kernel *pred = kernel_holding(&c, PROG_PREDICT, pool);
    ck_assert_ptr_eq(kernel_holding(&c, PROG_PREDICT, relu), pred);
    ck_assert(!pred->stored[2] && pred->stored[3]);
    ck_assert_int_lt(c.plans[PROG_PREDICT]->offset[relu], 0);
    compiled_free(&c);
}
END_TEST

START_TEST(rule_conv_pool_only_at_the_chain_end)
{
    /* the pooling reads the pre-activation, which relu reads too */
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, CNN_HEAD
                                   " a = conv2d(x, 2, kernel = 3, padding = same)\n"
                                   " b = maxpool2d(a, 2)\n"
                                   " z = dense(flatten(b), 2) + dense(flatten(relu(a)), 2)\n"
                                   CNN_TAIL), 0);
    const Kernel *k = train_kernel_of(&c, OP_CONV2D);
    ck_assert_int_eq(k->kind, KK_CONV_EPILOGUE);
    ck_assert(!kernel_has(&c, k, OP_MAXPOOL2D));
    ck_assert(k->stored[1]); /* a: the pooling reads it from memory */
    compiled_free(&c);
}
END_TEST

START_TEST(rule_conv_grad_mask)
{
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, CNN_HEAD
                                   " a = conv2d(x, 2, kernel = 3) |> relu\n"
                                   " b = conv2d(a, 2, kernel = 3) |> relu\n"
                                   " z = dense(flatten(b), 2)\n" CNN_TAIL), 0);
    /* the first relu_grad is the second conv's (autodiff runs backwards) */
    const Kernel *k = train_kernel_of(&c, OP_RELU_GRAD);
    ck_assert_int_eq(k->kind, KK_CONV_GRAD);
    ck_assert_str_eq(k->rule, "conv_grad_mask");
    ck_assert(!k->stored[0]); /* the masked gradient never reaches memory */
    ck_assert(kernel_has(&c, k, OP_BIAS_GRAD));
    ck_assert(kernel_has(&c, k, OP_CONV2D_GRAD_INPUT));
    ck_assert(kernel_has(&c, k, OP_CONV2D_GRAD_WEIGHT));
    for (int m = 1; m < k->nops; m++)
        ck_assert(k->stored[m]);
    compiled_free(&c);
}
END_TEST

START_TEST(rule_conv_grad_mask_not_when_read_elsewhere)
{
    /* a feeds relu and the sum: d(loss)/d(a) adds relu's gradient to the
     * other path, so the masked gradient is read by an add, not a conv */
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, CNN_HEAD
                                   " a = conv2d(x, 2, kernel = 3, bias = false)\n"
                                   " h = relu(a) + a\n"
                                   " z = dense(flatten(h), 2)\n" CNN_TAIL), 0);
    const Kernel *k = kernel_holding(&c, PROG_TRAIN, first_op(&c, OP_RELU_GRAD));
    ck_assert_int_ne(k->kind, KK_CONV_GRAD);
    ck_assert(!kernel_has(&c, k, OP_CONV2D_GRAD_WEIGHT));
    compiled_free(&c);
}
END_TEST

/* How many bias gradients read value v. */
static int bias_grads_reading(const Compiled *c, int v)
{
    int n = 0;
    for (int i = 0; i < c->g->nops; i++)
        n += c->g->ops[i].op == OP_BIAS_GRAD && c->g->ops[i].in[0] == v;
    return n;
}

START_TEST(rule_conv_grad_place)
{
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, CNN_HEAD
                                   " a = conv2d(x, 2, kernel = 3, padding = same) |> relu\n"
                                   " b = conv2d(a, 2, kernel = 3, padding = same) |> relu\n"
                                   " m = maxpool2d(b, 2)\n"
                                   " z = dense(flatten(m), 2)\n" CNN_TAIL), 0);
    int at = first_op(&c, OP_MAXPOOL2D_GRAD_AT);
    const Kernel *k = kernel_holding(&c, PROG_TRAIN, at);
    ck_assert_int_eq(k->kind, KK_CONV_GRAD);
    ck_assert_str_eq(k->rule, "conv_grad_place");
    ck_assert_int_eq(k->ops[0], at);
    ck_assert(!k->stored[0]); /* the spread gradient never reaches memory */
    ck_assert_int_eq(k->nops, 4);
    ck_assert(kernel_has(&c, k, OP_BIAS_GRAD));
    ck_assert(kernel_has(&c, k, OP_CONV2D_GRAD_INPUT));
    ck_assert(kernel_has(&c, k, OP_CONV2D_GRAD_WEIGHT));
    for (int m = 1; m < k->nops; m++)
        ck_assert(k->stored[m]);
    /* the bias gradient sums the spread gradient, as unfused: same bits */
    ck_assert_int_eq(bias_grads_reading(&c, at), 1);
    compiled_free(&c);
}
END_TEST

START_TEST(rule_conv_grad_place_not_when_read_elsewhere)
{
    /* b feeds the pooling and, through relu, a dense layer: d(loss)/d(b)
     * adds the spread gradient to the other path's, so an add reads it */
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, CNN_HEAD
                                   " b = conv2d(x, 2, kernel = 3, padding = same)\n"
                                   " m = maxpool2d(b, 2)\n"
                                   " z = dense(flatten(m), 2) + dense(flatten(relu(b)), 2)\n"
                                   CNN_TAIL), 0);
    int at = first_op(&c, OP_MAXPOOL2D_GRAD_AT);
    ck_assert_int_ge(at, 0);
    const Kernel *k = kernel_holding(&c, PROG_TRAIN, at);
    ck_assert_int_ne(k->kind, KK_CONV_GRAD);
    ck_assert_int_eq(k->nops, 1);
    ck_assert(k->stored[0]);
    /* and the bias gradient reads the sum, not the pooled gradient */
    ck_assert_int_eq(bias_grads_reading(&c, c.g->ops[at].in[0]), 0);
    compiled_free(&c);
}
END_TEST

START_TEST(rule_bn_forward)
{
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, CNN_HEAD
                                   " a = conv2d(x, 2, kernel = 3, bias = false)"
                                   " |> batchnorm |> relu\n"
                                   " z = dense(flatten(a), 2)\n" CNN_TAIL), 0);
    int stats = first_op(&c, OP_BN_STATS);
    const Kernel *k = kernel_holding(&c, PROG_TRAIN, stats);
    ck_assert_int_eq(k->kind, KK_BN);
    ck_assert_str_eq(k->rule, "bn_forward");
    ck_assert_int_eq(k->nops, 3); /* bn_stats, batchnorm, relu */
    /* training: the statistics go on to the backward pass and the
     * running update; prediction only normalises with them */
    ck_assert(k->stored[0] && !k->stored[1] && k->stored[2]);
    const Kernel *pred = kernel_holding(&c, PROG_PREDICT, stats);
    ck_assert_int_eq(pred->kind, KK_BN);
    ck_assert(!pred->train_mode && !pred->stored[0]);
    compiled_free(&c);
}
END_TEST

START_TEST(rule_bn_grad)
{
    /* relu's gradient is read by batch norm's three gradients only: folded
     * in; the dense batch norm's gradients read dy from memory */
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, CNN_HEAD
                                   " a = conv2d(x, 2, kernel = 3, bias = false)"
                                   " |> batchnorm |> relu\n"
                                   " z = dense(batchnorm(flatten(a)), 2)\n"
                                   CNN_TAIL), 0);
    const Kernel *masked = train_kernel_of(&c, OP_RELU_GRAD);
    ck_assert_int_eq(masked->kind, KK_BN_GRAD);
    ck_assert_int_eq(masked->nops, 4);
    ck_assert(!masked->stored[0]);
    const Kernel *plain = train_kernel_of(&c, OP_BATCHNORM_GRAD_INPUT);
    ck_assert_int_eq(plain->kind, KK_BN_GRAD);
    ck_assert_str_eq(plain->rule, "bn_grad");
    ck_assert(kernel_has(&c, plain, OP_BATCHNORM_GRAD_GAMMA));
    ck_assert(kernel_has(&c, plain, OP_BIAS_GRAD));
    compiled_free(&c);
}
END_TEST

START_TEST(rule_bn_grad_mask_not_when_read_elsewhere)
{
    /* the batch norm's output also skips past relu: relu's gradient is
     * added to the other path before batch norm's gradients read it */
    Compiled c;
    ck_assert_int_eq(compile_fused(&c, CNN_HEAD
                                   " a = conv2d(x, 2, kernel = 3, bias = false)"
                                   " |> batchnorm\n h = relu(a) + a\n"
                                   " z = dense(flatten(h), 2)\n" CNN_TAIL), 0);
    const Kernel *k = kernel_holding(&c, PROG_TRAIN, first_op(&c, OP_RELU_GRAD));
    ck_assert_int_ne(k->kind, KK_BN_GRAD);
    /* the gradients still share one kernel, from dy in memory */
    const Kernel *g = train_kernel_of(&c, OP_BATCHNORM_GRAD_INPUT);
    ck_assert_int_eq(g->kind, KK_BN_GRAD);
    ck_assert(!kernel_has(&c, g, OP_RELU_GRAD));
    compiled_free(&c);
}
END_TEST

START_TEST(rules_off_with_no_fuse)
{
    Compiled c;
    ck_assert_int_eq(compile_to(&c, mlp, "plan"), 0); /* fuse(g, false) */
    for (int i = 0; i < c.ks->n; i++) {
        ck_assert_int_eq(c.ks->k[i].kind, KK_SINGLE);
        ck_assert_int_eq(c.ks->k[i].nops, 1);
        ck_assert(c.ks->k[i].stored[0]);
    }
    compiled_free(&c);
}
END_TEST

/* ---- the matrix-product kernels' layout decisions ---- */

static GemmTiling tiling(long M, long N, int max_lanes)
{
    Gemm m = {.M = M, .N = N, .K = 64};
    GemmTiling t;
    gemm_tiling(&m, max_lanes, &t);
    return t;
}

/* mnist_mlp's shapes in float (up to 16 lanes): 8-row bands; 256 columns
 * are whole 2-vector tiles at every width; 784's last 16 may need a
 * 1-vector tile but never a scalar one; 10 columns, fewer than one
 * AVX-512 vector, are a scalar tile; 10 rows leave a band of 2. */
START_TEST(gemm_tiles_for_mlp_shapes)
{
    GemmTiling t = tiling(64, 256, 16);
    ck_assert_int_eq(t.mr, 8);
    ck_assert_int_eq(t.bands, 8);
    ck_assert_int_eq(t.rest_rows, 0);
    ck_assert(t.vec && !t.mid && !t.tail);
    t = tiling(256, 784, 16);
    ck_assert_int_eq(t.bands, 32);
    ck_assert(t.vec && t.mid && !t.tail);
    t = tiling(10, 10, 16);
    ck_assert_int_eq(t.bands, 1);
    ck_assert_int_eq(t.rest_rows, 2);
    ck_assert(!t.vec && !t.mid && t.tail);
    t = tiling(4, 40, 16);
    ck_assert_int_eq(t.bands, 0);
    ck_assert_int_eq(t.rest_rows, 4);
    ck_assert(t.vec && t.mid && t.tail);
}
END_TEST

/* In double the widest vector holds 8 lanes, so 784 = 49 x 16 columns
 * are whole tiles and 10 columns are wide enough for vectors. */
START_TEST(gemm_tiles_for_double)
{
    GemmTiling t = tiling(64, 784, 8);
    ck_assert(t.vec && !t.mid && !t.tail);
    t = tiling(64, 10, 8);
    ck_assert(t.vec && t.mid && t.tail);
}
END_TEST

static void store_t0(Emitter *e, const void *ctx)
{
    (void)ctx;
    emit(e, "C[at] = t0;");
}

/* lower_gemm's text for one product, in a malloc'd string */
static char *gemm_text(long M, long N, long K, bool tb, const char *real)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    Emitter e = {.out = f, .real = real};
    Gemm m = {.M = M, .N = N, .K = K, .tb = tb, .a = "A", .b = "B",
              .packed = "packed", .epilogue = store_t0};
    lower_gemm(&e, &m);
    fclose(f);
    return text;
}

/* The wide tiles sum in registers written out statement by statement;
 * a product narrower than a vector needs no vector type at all. */
START_TEST(gemm_emits_register_tiles)
{
    char *wide = gemm_text(64, 256, 784, true, "float");
    ck_assert_ptr_nonnull(strstr(wide, "#define NNC_LANES (NNC_VEC_BYTES / 4)"));
    ck_assert_ptr_nonnull(strstr(wide, "nnc_vec acc[8][2]"));
    ck_assert_ptr_nonnull(strstr(wide, "acc[7][1] += a * b[1];"));
    ck_assert_ptr_nonnull(strstr(wide, "b[1] = *(const nnc_vec *)(brow + 1 * NNC_LANES);"));
    ck_assert_ptr_nonnull(strstr(wide, "*(nnc_vec *)(sum[7] + 1 * NNC_LANES) = acc[7][1];"));
    ck_assert_ptr_null(strstr(wide, "memcpy(&b["));
    /* computed transposed: each thread lays out the tiles of A^T it
     * uses, a chunk of k by two vectors of columns at a time */
    ck_assert_ptr_nonnull(strstr(wide, "_Alignas(NNC_VEC_BYTES) float bt[112][2 * NNC_LANES];"));
    ck_assert_ptr_nonnull(strstr(wide, "const float *restrict bsrc = A + (j0 + c) * 784 + k0;"));
    ck_assert_ptr_nonnull(strstr(wide, "nnc_transpose(&bt[kb][c], 2 * NNC_LANES, bsrc + kb, 784);"));
    ck_assert_ptr_nonnull(strstr(wide, "const float *restrict brow = bt[k - k0];"));
    ck_assert_ptr_null(strstr(wide, "packed"));
    ck_assert_ptr_null(strstr(wide, "nnc_vec acc[8][1]"));
    ck_assert_ptr_null(strstr(wide, "if (j0 < 256)"));
    free(wide);
    /* narrower than a vector: B copied with its rows padded with zeros
     * to whole vectors, the sums in registers */
    char *narrow = gemm_text(64, 10, 64, false, "float");
    ck_assert_ptr_nonnull(strstr(narrow, "enum { NV = (10 + NNC_LANES - 1) / NNC_LANES };"));
    ck_assert_ptr_nonnull(strstr(narrow, "_Alignas(NNC_VEC_BYTES) float bt[64][NV * NNC_LANES];"));
    ck_assert_ptr_nonnull(strstr(narrow, "bt[k][j] = j < 10 ? B[(long)k * 10 + j] : 0;"));
    ck_assert_ptr_nonnull(strstr(narrow, "nnc_vec acc[8][NV] = {{{0}}};"));
    ck_assert_ptr_nonnull(strstr(narrow, "acc[7][v] += a * b[v];"));
    ck_assert_ptr_nonnull(strstr(narrow, "for (int c = 0; c < 10; c++)"));
    ck_assert_ptr_null(strstr(narrow, "float sum[8][10] = {{0}};"));
    ck_assert_ptr_null(strstr(narrow, "group")); /* B is in L1 anyway */
    free(narrow);
    /* B used transposed, and a rest of rows */
    char *narrow_t = gemm_text(12, 10, 64, true, "double");
    ck_assert_ptr_nonnull(strstr(narrow_t, "bt[k][j] = j < 10 ? B[(long)j * 64 + k] : 0;"));
    ck_assert_ptr_nonnull(strstr(narrow_t, "nnc_vec acc[4][NV] = {{{0}}};"));
    ck_assert_ptr_null(strstr(narrow_t, "packed"));
    free(narrow_t);
    /* K too long to copy onto the stack: the scalar tile */
    char *long_k = gemm_text(64, 10, 600, false, "float");
    ck_assert_ptr_nonnull(strstr(long_k, "float sum[8][10] = {{0}};"));
    ck_assert_ptr_null(strstr(long_k, "nnc_vec"));
    free(long_k);
    /* a layout whose blocks do not divide K or N ends at both */
    /* one band: B is laid out whole, as the threads share it */
    char *ragged = gemm_text(8, 84, 120, true, "float");
    ck_assert_ptr_nonnull(strstr(ragged, "for (int k = k0; k < (k0 + 16 < 120 ? k0 + 16 : 120); k++)"));
    ck_assert_ptr_nonnull(strstr(ragged, "for (int j = j0; j < (j0 + 64 < 84 ? j0 + 64 : 84); j++)"));
    free(ragged);
    char *edges = gemm_text(12, 42, 3, false, "double");
    ck_assert_ptr_nonnull(strstr(edges, "typedef double nnc_vec"));
    ck_assert_ptr_nonnull(strstr(edges, "nnc_vec acc[8][2]"));
    ck_assert_ptr_nonnull(strstr(edges, "nnc_vec acc[4][1]"));
    ck_assert_ptr_nonnull(strstr(edges, "double sum[4][8] = {{0}};"));
    free(edges);
}
END_TEST

/* Cache blocking: a product of many bands puts them in groups that
 * share each tile of B, and one with a long k goes over it in chunks,
 * each going on from the sums the last left; a product of few bands
 * keeps one band a step. */
START_TEST(gemm_groups_bands_and_chunks_k)
{
    char *fwd = gemm_text(256, 64, 784, false, "float"); /* 32 bands */
    ck_assert_ptr_nonnull(strstr(fwd, "for (int group = 0; group < 4; group++)"));
    ck_assert_ptr_nonnull(strstr(fwd, "const int band1 = band0 + 8;"));
    ck_assert_ptr_nonnull(strstr(fwd, "for (int band = band0; band < band1; band++)"));
    ck_assert_ptr_nonnull(strstr(fwd, "nnc_vec part[8][8][2];"));
    ck_assert_ptr_nonnull(strstr(fwd, "for (int k0 = 0; k0 < 784; k0 += 112)"));
    ck_assert_ptr_nonnull(strstr(fwd, "memcpy(acc, part[band - band0], sizeof acc);"));
    ck_assert_ptr_nonnull(strstr(fwd, "for (int k = k0; k < k0 + 112; k++)"));
    ck_assert_ptr_nonnull(strstr(fwd, "if (k0 + 112 < 784)"));
    free(fwd);
    char *grad = gemm_text(104, 300, 64, false, "float"); /* 13 bands, short k */
    ck_assert_ptr_nonnull(strstr(grad, "const int band1 = band0 + 3 < 13 ? band0 + 3 : 13;"));
    ck_assert_ptr_null(strstr(grad, "part["));
    ck_assert_ptr_nonnull(strstr(grad, "for (int k = 0; k < 64; k++)"));
    free(grad);
    char *few = gemm_text(24, 64, 300, false, "float"); /* 3 bands */
    ck_assert_ptr_null(strstr(few, "group"));
    ck_assert_ptr_nonnull(strstr(few, "for (int band = 0; band < 3; band++)"));
    ck_assert_ptr_nonnull(strstr(few, "for (int k = 0; k < 300; k++)"));
    free(few);
}
END_TEST

/* B used transposed, whole bands and columns that are whole tiles of
 * two vectors on every target: the bands go in a share per thread, and
 * each thread lays out the tiles of B it reads itself, with the rows of
 * k that do not fill a transpose copied one by one; otherwise B is
 * packed whole into scratch, once, for all the threads. */
START_TEST(gemm_packs_tiles_per_thread)
{
    /* 13 bands of C^T, k in chunks of 101, 101 and 99 */
    char *t = gemm_text(32, 104, 301, true, "float");
    ck_assert_ptr_nonnull(strstr(t, "NNC_PARALLEL\n"));
    ck_assert_ptr_nonnull(strstr(t, "const int share0 = (int)(13L * NNC_THREAD / NNC_THREADS);"));
    ck_assert_ptr_nonnull(strstr(t, "const int share1 = (int)(13L * (NNC_THREAD + 1) / NNC_THREADS);"));
    ck_assert_ptr_nonnull(strstr(t, "for (int band0 = share0; band0 < share1; band0 += 13)"));
    ck_assert_ptr_nonnull(strstr(t, "nnc_vec part[13][8][2];"));
    ck_assert_ptr_nonnull(strstr(t, "const int kn = (k0 + 101 < 301 ? k0 + 101 : 301) - k0;"));
    ck_assert_ptr_nonnull(strstr(t, "float bt[101][2 * NNC_LANES];"));
    ck_assert_ptr_nonnull(strstr(t, "for (; kb < kn; kb++)"));
    ck_assert_ptr_nonnull(strstr(t, "bt[kb][c + l] = bsrc[(long)l * 301 + kb];"));
    ck_assert_ptr_null(strstr(t, "NNC_PARALLEL_FOR"));
    ck_assert_ptr_null(strstr(t, "packed"));
    free(t);
    /* too little work for the threads: one share */
    char *small = gemm_text(64, 64, 16, true, "double");
    ck_assert_ptr_nonnull(strstr(small, "const int share0 = 0, share1 = 8;"));
    ck_assert_ptr_nonnull(strstr(small, "double bt[16][2 * NNC_LANES];"));
    ck_assert_ptr_nonnull(strstr(small, "const double *restrict brow = bt[k];"));
    ck_assert_ptr_null(strstr(small, "NNC_PARALLEL"));
    ck_assert_ptr_null(strstr(small, "NNC_THREAD"));
    free(small);
    /* 48 columns are not whole tiles of two AVX-512 vectors */
    char *ragged = gemm_text(64, 48, 784, true, "float");
    ck_assert_ptr_nonnull(strstr(ragged, "packed[(long)k * 48 + j] = B[(long)j * 784 + k];"));
    ck_assert_ptr_null(strstr(ragged, "nnc_transpose"));
    free(ragged);
    /* 100 rows leave a rest that reads the shared layout */
    char *rest = gemm_text(100, 64, 784, true, "float");
    ck_assert_ptr_nonnull(strstr(rest, "packed[(long)k * 64 + j] = B[(long)j * 784 + k];"));
    ck_assert_ptr_null(strstr(rest, "nnc_transpose"));
    free(rest);
}
END_TEST

Suite *compiler_suite(void)
{
    Suite *s = suite_create("compiler");
    TCase *t = tcase_create("ir");
    tcase_add_test(t, op_tables_are_complete);
    suite_add_tcase(s, t);
    t = tcase_create("shape");
    tcase_add_test(t, shape_dense_stack);
    tcase_add_test(t, shape_dense_needs_rank_one);
    tcase_add_test(t, shape_unknown_name);
    tcase_add_test(t, shape_unknown_operation);
    tcase_add_test(t, shape_class_count_mismatch);
    tcase_add_test(t, shape_operand_shapes_named);
    tcase_add_test(t, shape_duplicate_parameter);
    tcase_add_test(t, shape_duplicate_input);
    tcase_add_test(t, shape_missing_loss);
    tcase_add_test(t, shape_loss_must_be_scalar);
    tcase_add_test(t, shape_bad_dimension);
    tcase_add_test(t, shape_wrong_argument_count);
    tcase_add_test(t, shape_several_errors_in_one_run);
    suite_add_tcase(s, t);
    t = tcase_create("train");
    tcase_add_test(t, train_missing_optimizer);
    tcase_add_test(t, train_unknown_setting_and_duplicate);
    tcase_add_test(t, train_optimizer_settings);
    suite_add_tcase(s, t);
    t = tcase_create("autodiff");
    tcase_add_test(t, autodiff_every_param_gets_its_gradient);
    tcase_add_test(t, autodiff_sums_contributions);
    tcase_add_test(t, optim_adam_state);
    tcase_add_test(t, optim_sgd_without_momentum_has_no_state);
    suite_add_tcase(s, t);
    t = tcase_create("plan");
    tcase_add_test(t, fuse_every_computing_op_in_one_kernel);
    tcase_add_test(t, plan_lifetimes_do_not_overlap);
    suite_add_tcase(s, t);
    t = tcase_create("gemm");
    tcase_add_test(t, gemm_tiles_for_mlp_shapes);
    tcase_add_test(t, gemm_tiles_for_double);
    tcase_add_test(t, gemm_emits_register_tiles);
    tcase_add_test(t, gemm_groups_bands_and_chunks_k);
    tcase_add_test(t, gemm_packs_tiles_per_thread);
    suite_add_tcase(s, t);
    t = tcase_create("fusion rules");
    tcase_add_test(t, rule_matmul_epilogue);
    tcase_add_test(t, rule_matmul_epilogue_stores_what_others_read);
    tcase_add_test(t, rule_update_sweep);
    tcase_add_test(t, update_kernels_come_last);
    tcase_add_test(t, rule_softmax_xent_pair);
    tcase_add_test(t, rule_softmax_xent_keeps_label_smoothing);
    tcase_add_test(t, rule_ewise_chain);
    tcase_add_test(t, rule_maxpool_relu_grad_and_in_place);
    tcase_add_test(t, rule_conv_epilogue);
    tcase_add_test(t, rule_conv_epilogue_stores_what_others_read);
    tcase_add_test(t, rule_conv_epilogue_not_with_two_readers);
    tcase_add_test(t, rule_conv_pool);
    tcase_add_test(t, rule_conv_pool_only_at_the_chain_end);
    tcase_add_test(t, rule_conv_grad_mask);
    tcase_add_test(t, rule_conv_grad_mask_not_when_read_elsewhere);
    tcase_add_test(t, rule_conv_grad_place);
    tcase_add_test(t, rule_conv_grad_place_not_when_read_elsewhere);
    tcase_add_test(t, rule_bn_forward);
    tcase_add_test(t, rule_bn_grad);
    tcase_add_test(t, rule_bn_grad_mask_not_when_read_elsewhere);
    tcase_add_test(t, rules_off_with_no_fuse);
    suite_add_tcase(s, t);
    return s;
}
