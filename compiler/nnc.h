/* nnc.h — the one internal header of the nnc compiler.
 *
 * One banner section per pipeline stage, in pipeline order:
 *   arena -> diag -> ast (lexer.l, parser.y) -> shape -> ir -> autodiff
 *   -> optim -> fuse -> plan -> emit_c -> main
 * Data structures first, then the functions each stage exports.
 */
#ifndef NNC_H
#define NNC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ===================================================================
 * arena.c — bump allocation; everything in a compilation lives in one
 * arena that is freed at exit, so LeakSanitizer stays meaningful.
 * =================================================================== */

typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
    ArenaBlock *head; /* newest block first */
} Arena;

void *arena_alloc(Arena *a, size_t size);           /* zeroed, 16-aligned */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);
#define ARENA_NEW(a, T) ((T *)arena_alloc((a), sizeof(T)))
#define ARENA_ARRAY(a, T, n) ((T *)arena_alloc((a), sizeof(T) * (size_t)(n)))

/* ===================================================================
 * diag.c — gcc-style diagnostics: "file:line:col: error: msg", then the
 * source line and a caret under the column.
 * =================================================================== */

typedef struct Loc {
    int line; /* 1-based; 0 means "no position" */
    int col;  /* 1-based byte column */
} Loc;

typedef struct Source {
    const char *path; /* as given on the command line */
    const char *text; /* whole file, NUL-terminated */
    size_t len;
} Source;

typedef struct Diag {
    const Source *src;
    FILE *out;      /* where messages go (stderr in nnc, a memstream in tests) */
    int nerrors;
    int max_errors; /* stop reporting (not counting) after this many; 0 = 20 */
} Diag;

void diag_init(Diag *d, const Source *src, FILE *out);
void diag_error(Diag *d, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ===================================================================
 * ast — what lexer.l and parser.y build. Pipes are desugared by the
 * parser: `a |> f(b, k = 1)` becomes the call f(a, b, k = 1) and
 * `a |> relu` becomes relu(a). All lists are singly linked through
 * `next`, in source order.
 * =================================================================== */

typedef enum ExprKind {
    EX_NUM,    /* 3, 0.001, 1e-3 */
    EX_STRING, /* "path" (escapes \" \\ \n \t resolved) */
    EX_IDENT,  /* x, relu, true */
    EX_CALL,   /* f(args) */
    EX_LIST,   /* [a, b, c] — shapes and inline data tables */
    EX_BINARY, /* a + b, a - b, a * b, a / b */
    EX_NEG,    /* -a */
} ExprKind;

typedef struct Expr Expr;
typedef struct Arg Arg;

struct Arg {
    const char *name; /* keyword name, or NULL for a positional argument */
    Loc loc;          /* of the name if keyword, else of the value */
    Expr *value;
    Arg *next;
};

struct Expr {
    ExprKind kind;
    Loc loc; /* first character of the expression (operator for EX_BINARY) */
    Expr *next; /* sibling in an EX_LIST */
    union {
        struct {
            double value;
            bool is_int; /* written without '.', 'e' */
        } num;
        const char *str;   /* EX_STRING */
        const char *ident; /* EX_IDENT */
        struct {
            const char *callee;
            Loc callee_loc;
            Arg *args;  /* positional and keyword, in source order */
            bool piped; /* first argument came from the left of |> */
        } call;
        struct {
            Expr *items;
            int count;
        } list;
        struct {
            char op; /* '+', '-', '*', '/' */
            Expr *lhs, *rhs;
        } bin;
        Expr *operand; /* EX_NEG */
    } u;
};

typedef enum StmtKind {
    ST_INPUT,  /* input NAME : TYPE */
    ST_LABEL,  /* label NAME : TYPE */
    ST_PARAM,  /* param NAME : [shape] (, init = ...)?  a free trainable tensor */
    ST_LET,    /* NAME = EXPR */
    ST_OUTPUT, /* output NAME = EXPR   |   output NAME */
    ST_LOSS,   /* loss EXPR */
} StmtKind;

/* The type after ':' in input/label/param: a shape `[1, 28, 28]` or
 * `class(10)` (an integer label in [0, 10)). */
typedef struct TypeExpr {
    Loc loc;
    bool is_class;
    Expr *dims;     /* EX_LIST of the shape, when !is_class */
    Expr *nclasses; /* when is_class */
} TypeExpr;

typedef struct Stmt Stmt;
struct Stmt {
    StmtKind kind;
    Loc loc;          /* of the statement's first token */
    const char *name; /* NULL for ST_LOSS */
    Loc name_loc;
    TypeExpr *type;   /* ST_INPUT, ST_LABEL, ST_PARAM */
    Arg *options;     /* ST_PARAM: keyword options after the type */
    Expr *value;      /* ST_LET, ST_OUTPUT (may be NULL), ST_LOSS */
    Stmt *next;
};

typedef struct Model Model;
struct Model {
    const char *name;
    Loc loc; /* of the keyword `model` */
    Loc name_loc;
    Stmt *stmts;
    Model *next;
};

/* One line of a train block: `KEY VALUE`, e.g. `epochs 5`,
 * `optimizer adam(lr = 0.001)`, `data idx("/dir", scale = 1/255)`.
 * A setting may carry a nested block instead of or after its value,
 * e.g. `step d_step { loss d_loss  update discriminator }` (for
 * multi-step training such as GANs). */
typedef struct Setting Setting;
struct Setting {
    const char *key;
    Loc loc;
    Expr *value;    /* may be NULL when a body is given */
    Setting *body;  /* nested settings of `KEY [VALUE] { ... }`, or NULL */
    bool has_body;  /* distinguishes `k {}` (empty body) from `k v` */
    Setting *next;
};

typedef struct Train Train;
struct Train {
    const char *model; /* the model it trains */
    Loc loc;
    Loc model_loc;
    Setting *settings;
    Train *next;
};

typedef struct Program {
    const Source *src;
    Model *models;
    Train *trains;
} Program;

/* parser.y: parse a whole source. Reports every syntax error it can
 * recover from through `d`; returns NULL if any error was reported.
 * Never exits, never crashes on any input (huge, deep, binary). */
Program *parse_program(Arena *a, Diag *d, const Source *src);

/* ast.c: print the AST in a stable, indented text form (--emit=ast). */
void ast_print(FILE *out, const Program *p);


/* ===================================================================
 * ir.c — the tensor graph. One op produces one value; values are
 * referred to by integer id (the op's index in Graph.ops). Ops are
 * appended in topological order, so the array order is a valid
 * schedule. Forward, backward and update ops share the one graph.
 * =================================================================== */

#define NNC_MAX_RANK 6

typedef enum OpKind {
#define OP(id, name, nin, kind) OP_##id,
#include "ops.def"
#undef OP
    OP__COUNT
} OpKind;

typedef enum OpClass {
    OC_SOURCE, OC_VIEW, OC_EWISE, OC_MATMUL, OC_REDUCE, OC_ROWWISE,
    OC_LOSS, OC_UPDATE,
    OC_WINDOW,  /* sliding windows over [N, C, H, W]: convolution, pooling */
    OC_CHANNEL, /* per-channel statistics and normalisation (batch norm) */
    OC_MODAL,   /* differs between training and evaluation mode */
} OpClass;

extern const char *const op_names[OP__COUNT];
extern const int op_arity[OP__COUNT];
extern const OpClass op_class[OP__COUNT];

typedef struct Shape {
    int rank;
    int dim[NNC_MAX_RANK];
} Shape;

typedef enum DType {
    DT_REAL, /* float, or double under --dtype f64 */
    DT_I32,  /* class labels */
} DType;

typedef enum Phase {
    PH_FORWARD,  /* computes the loss and the outputs */
    PH_BACKWARD, /* gradients */
    PH_UPDATE,   /* optimizer */
} Phase;

/* Where a value lives at run time. */
typedef enum Storage {
    SG_ARENA, /* activations and temporaries: offset chosen by plan */
    SG_PARAM, /* the parameter block */
    SG_GRAD,  /* the gradient block, parallel to the parameter block */
    SG_STATE, /* optimizer state block */
    SG_INPUT, /* the caller's input batch */
    SG_LABEL, /* the caller's label batch */
    SG_VIEW,  /* same memory as its input */
    SG_NONE,  /* update ops: no value of their own */
} Storage;

typedef enum InitKind {
    INIT_ZEROS, INIT_ONES, INIT_CONSTANT, INIT_UNIFORM, INIT_NORMAL,
    INIT_XAVIER_UNIFORM, INIT_XAVIER_NORMAL,
    INIT_KAIMING_UNIFORM, INIT_KAIMING_NORMAL,
    INIT_TORCH_DEFAULT, /* PyTorch's nn.Linear default: U(+-1/sqrt(fan_in)) */
} InitKind;

typedef struct Init {
    InitKind kind;
    double a;      /* uniform: bound; constant: value; normal: mean */
    double std;    /* normal: standard deviation */
    int fan_in, fan_out;
} Init;

typedef enum OptimKind { OPT_SGD, OPT_ADAM, OPT_RMSPROP } OptimKind;

/* Picks parameters by name for freezing and weight-decay groups (train.c):
 * a parameter ("conv1.weight"), a layer ("conv1": all its parameters), or
 * a class of them. */
typedef enum ParamSelKind {
    PSEL_NAME,  /* a parameter or a layer */
    PSEL_BIAS,  /* every parameter whose name ends in ".bias" */
    PSEL_NORM,  /* every normalisation scale and shift (batch norm) */
} ParamSelKind;

typedef struct ParamSel {
    ParamSelKind kind;
    const char *name; /* PSEL_NAME */
    Loc loc;
} ParamSel;

typedef struct OptimSpec {
    OptimKind kind;
    double lr;
    double momentum, dampening, weight_decay;
    bool nesterov;
    double beta1, beta2, eps;
    bool decoupled; /* AdamW */
    double alpha;   /* RMSprop's smoothing constant */
    bool centered;  /* RMSprop: divide by the centred second moment */
    /* On update ops (optim.c): elements between two state slots of one
     * parameter (the parameter block's size); RMSprop's extra buffers
     * live at state + k * state_stride. */
    long state_stride;
    /* Parameter groups of the train block (NULL on update ops): no update
     * at all for `freeze`, weight_decay 0 for `no_decay`. */
    const ParamSel *freeze, *no_decay;
    int nfreeze, nno_decay;
} OptimSpec;

typedef struct IrOp {
    OpKind op;
    Shape shape;      /* of the value it produces (rank 0: a scalar) */
    DType dtype;
    int in[4];        /* input value ids */
    int nin;
    Phase phase;
    bool batched;     /* dim 0 is the batch (per-sample values) */
    Storage storage;
    int param;        /* SG_PARAM/SG_GRAD/SG_STATE: index into Graph.params */
    const char *name; /* the user's name for the value, or NULL */
    const char *label;/* short tag for kernel names ("fc1", "h", "loss") */
    Loc loc;          /* the .nn line it came from */
    union {
        struct { bool ta, tb; } mm;  /* MATMUL: transpose A / B */
        double alpha;                /* LEAKY_RELU(_GRAD) */
        double scale;                /* SCALE */
        double fill;                 /* FILL */
        /* losses: one-hot / probability targets, not classes; the
         * cross-entropies' label smoothing eps (target (1-eps) t + eps/C) */
        struct { bool soft; double smoothing; } loss;
        OptimSpec opt;               /* *_UPDATE */
        /* CONV2D*, *POOL2D*: window, stride, and the zero padding before
         * the first row and column (after the last: what the output
         * shape leaves over) */
        struct { int kh, kw, sh, sw, ph, pw; } win;
        struct { double momentum, eps; } bn; /* BN_*, BATCHNORM* */
        double drop_p;               /* DROPOUT_MASK: probability of a zero */
    } attr;
    int kernel;       /* fuse: the kernel this op belongs to, -1 if none */
    long offset;      /* plan: element offset in its storage block */
} IrOp;

/* A named tensor of the parameter block, in declaration order: the
 * checkpoint's tensors, in the order PyTorch's state_dict would list
 * them. Trainable unless it is a buffer. */
typedef struct Param {
    const char *name; /* "fc1.weight" */
    int value;        /* its PARAM op */
    Shape shape;
    Init init;
    long offset;      /* element offset in the parameter block */
    long size;
    bool buffer;      /* state such as batch norm's running statistics:
                       * saved and loaded, never differentiated or updated
                       * by the optimizer */
    int grad;         /* value holding its gradient after backward, or -1 */
    int state[2];     /* optimizer state values, or -1 */
} Param;

typedef struct Graph {
    Arena *arena;
    IrOp *ops;
    int nops, cap;
    Param *params;
    int nparams, param_cap;
    long param_elems; /* size of the parameter (and of the gradient) block */
    long state_elems; /* size of the optimizer-state block */
    int batch;        /* the batch size every per-sample value carries */
    int input;        /* INPUT op */
    int label;        /* LABEL op, or -1 */
    int loss;         /* scalar loss value */
    int output;       /* the model's output value */
    const char *output_name;
    int nclasses;     /* class(N) label: N; else 0 */
    bool loss_from_probs_output; /* metric helpers */
} Graph;

Graph *ir_new(Arena *a, int batch);
int ir_add(Graph *g, OpKind op, Shape shape, const int *in, int nin, Loc loc,
           const char *label);
IrOp *ir_op(Graph *g, int id);
long shape_elems(const Shape *s);
bool shape_eq(const Shape *a, const Shape *b);
Shape shape_make(int rank, const int *dims);
Shape shape_scalar(void);
/* "[64, 5, 5]" into buf; returns buf */
const char *shape_str(const Shape *s, char *buf, size_t len);
void ir_print(FILE *out, const Graph *g);
/* Floating-point operations of op v (a multiply-add counts 2), and of
 * the ops marked in `runs` (all when NULL). */
long long op_flops(const Graph *g, int v);
/* Whether an op computes differently in training and in evaluation
 * (dropout, batch statistics): its kernels then exist in two modes. */
bool op_depends_on_mode(OpKind op);
long long ir_flops(const Graph *g, const bool *runs);
/* Checks the graph's invariants (topological order, arity, shapes of
 * every op agree with its rule). Returns false and prints why. */
bool ir_verify(const Graph *g, FILE *err);

/* ===================================================================
 * shape.c — names, constants and shapes: turns the AST of one model
 * into the forward graph. Every layer's shape rule lives here, with
 * the diagnostics that name both shapes. Nothing is emitted unless the
 * whole model checks.
 * =================================================================== */

Graph *shape_check(Arena *a, Diag *d, const Program *prog, const Model *m,
                   int batch);

/* ===================================================================
 * train.c — the train block: optimizer, batch, epochs, data, ...
 * =================================================================== */

typedef enum DataKind {
    DATA_NONE, DATA_TABLE, DATA_IDX, DATA_CSV, DATA_CIFAR10,
} DataKind;

enum { NNC_MAX_NORM_CHANNELS = 16, NNC_MAX_MILESTONES = 32 };

/* What early stopping, the best checkpoint and reduce_on_plateau watch:
 * the epoch's figures, by their names on the epoch line. */
typedef enum Watch {
    W_LOSS, W_TRAIN_ACCURACY, W_VAL_LOSS, W_VAL_ACCURACY, W_TEST_LOSS,
    W_TEST_ACCURACY,
} Watch;

typedef enum SchedKind {
    SCHED_NONE, SCHED_STEP, SCHED_MULTI_STEP, SCHED_EXPONENTIAL, SCHED_COSINE,
    SCHED_PLATEAU,
} SchedKind;

/* A learning-rate schedule, as torch.optim.lr_scheduler computes it. */
typedef struct ScheduleSpec {
    SchedKind kind;
    Loc loc;
    int step_size;                  /* step */
    double gamma;                   /* step, multi_step, exponential */
    int milestones[NNC_MAX_MILESTONES], nmilestones; /* multi_step */
    int t_max;                      /* cosine */
    double eta_min;                 /* cosine */
    Watch metric;                   /* reduce_on_plateau */
    bool mode_max, threshold_abs;
    double factor, threshold, min_lr, eps;
    int patience, cooldown;
    /* linear warm-up before the schedule: over epochs (SequentialLR of a
     * LinearLR and the schedule) or over the first optimizer steps */
    int warmup_epochs, warmup_steps;
    double warmup_start;            /* LinearLR's start_factor */
    Loc warmup_loc;
} ScheduleSpec;

typedef struct TrainSpec {
    const Train *ast;        /* NULL if the program has no train block */
    OptimSpec opt;
    int batch;
    int epochs;
    bool shuffle;
    uint64_t seed;
    bool metric_accuracy;
    bool metric_per_class;   /* accuracy of every class after training */
    const char **class_names; /* `classes [...]`, nclass_names of them */
    int nclass_names;
    Loc classes_loc;
    int log_every;           /* epochs between loss lines (tables); 0 = every */
    DataKind data;
    Loc data_loc;
    const char *data_path;   /* IDX dir, CSV file or CIFAR-10 batches dir */
    const char *test_path;   /* CSV test file, or NULL */
    double scale, shift;     /* value = raw * scale + shift */
    /* per-channel normalisation after scaling: (value - mean[c]) / std[c];
     * nnorm == 0 when not asked for */
    int nnorm;
    double norm_mean[NNC_MAX_NORM_CHANNELS], norm_std[NNC_MAX_NORM_CHANNELS];
    Loc norm_loc;
    bool csv_header;
    int csv_label_col;
    /* DATA_TABLE */
    int table_rows;
    int table_nx, table_ny;  /* numbers in x and in y */
    double *table_x;         /* rows * input elems */
    double *table_y;         /* rows * label elems (class index for class labels) */
    Loc table_loc_x, table_loc_y;
    /* schedules, evaluation, checkpoints, regularisation (docs/language.md) */
    ScheduleSpec sched;
    double val_fraction;     /* validation held out of the training set */
    const char *val_path;    /* or a CSV file of its own */
    Loc val_loc;
    bool metric_confusion;   /* confusion matrix after training */
    const char *log_csv;     /* per-epoch figures, or NULL */
    bool early_stop;
    Watch es_metric;
    int es_patience;
    double es_min_delta;
    Loc es_loc;
    const char *best_path;   /* checkpoint best(...): weights at the best epoch */
    Watch best_metric;
    Loc best_loc;
    const char *every_path;  /* checkpoint every(...): resumable state */
    int every_epochs;
    double clip_norm, clip_value; /* 0: off */
    const char *init_from;   /* weights loaded by name before training */
    bool aug_crop;           /* random crop of the input size after padding */
    int aug_padding;
    double aug_flip;         /* probability of a horizontal flip; 0: off */
    Loc aug_loc;
} TrainSpec;

/* Reads the train block for model `m` (or defaults when there is none;
 * a model needs a train block only for --main). Returns false on error. */
bool train_check(Arena *a, Diag *d, const Program *prog, const Model *m,
                 TrainSpec *out);
bool train_check_data(Diag *d, TrainSpec *t, const Graph *g);

/* ===================================================================
 * autodiff.c — reverse mode: appends the backward graph of g->loss.
 * optim.c — appends the optimizer's update ops.
 * =================================================================== */

void autodiff(Graph *g);
void optim_lower(Graph *g, const OptimSpec *opt);
/* Names of the optimizer's state slots, in state-block order, as PyTorch's
 * optimizer state_dict calls them ("exp_avg"); returns how many. */
int optim_state_names(const OptimSpec *opt, const char *names[3]);
/* Whether parameter i of g has an update op (trainable, not frozen). */
bool optim_updates(const Graph *g, int param);
/* Whether selector s picks parameter i of g. */
bool optim_selects(const Graph *g, const ParamSel *s, int param);

/* ===================================================================
 * fuse.c — groups ops into kernels.
 * =================================================================== */

typedef enum ProgKind {
    PROG_PREDICT, /* outputs from inputs, evaluation mode */
    PROG_EVAL,    /* outputs and loss, evaluation mode */
    PROG_TRAIN,   /* loss, outputs, gradients, update */
    PROG__COUNT
} ProgKind;

/* How a kernel is lowered: one op, or the shape a fusion rule made. */
typedef enum KernelKind {
    KK_SINGLE,          /* one op, every input and output in memory */
    KK_EPILOGUE,        /* matmul, then bias/activation/... on each result */
    KK_EWISE,           /* a chain of elementwise ops in one loop */
    KK_SOFTMAX_XENT,    /* softmax rows and the cross-entropy on them */
    KK_SOFTMAX_XENT_GRAD, /* d(cross-entropy(softmax(z)))/dz in one pass */
    KK_POOL_RELU_GRAD,  /* maxpool's gradient, then relu's, plane by plane */
    KK_CONV_EPILOGUE,   /* conv2d, then bias/activation/... on each result,
                         * then maybe a pooling of each finished plane */
    KK_CONV_GRAD,       /* an activation's gradient read as a mask by the
                         * bias, input and weight gradients of a conv */
    KK_BN,              /* batch statistics, normalisation, elementwise chain */
    KK_BN_GRAD,         /* batch norm's gradients, dy maybe through a mask */
    KK_UPDATE,          /* the optimizer over a contiguous run of params */
    KK_GRAD_TAIL,       /* the gradients that end the backward pass: the
                         * small ones on one thread beside the largest
                         * product, whose groups of bands the threads claim */
} KernelKind;

typedef struct Kernel {
    KernelKind kind;
    const char *rule; /* the fusion rule that formed it, NULL for KK_SINGLE */
    int *ops;         /* member ops, in schedule order */
    int nops;
    bool *stored;     /* per member: its result is written to memory
                       * (read outside the kernel, or a program result) */
    bool train_mode;  /* runs in the training program (mode-dependent ops) */
    const char *name; /* k07_conv1_bias_relu */
    int index;        /* in Kernels.k */
    long scratch;     /* elements of scratch memory it needs while it runs */
} Kernel;

/* Every program is fused on its own (a value internal to a kernel in
 * one program may be needed in memory by another); identical kernels
 * are shared, so a kernel function is emitted once. */
typedef struct Kernels {
    Kernel *k;
    int n;
    bool fused;               /* fusion rules and in-place results on */
    int *sched[PROG__COUNT];  /* per program: kernel indices, in order */
    int nsched[PROG__COUNT];
} Kernels;

/* fuse.c: whether kernel k reads element i of each input only to write
 * element i of its result, so the plan may put the result over an input
 * whose last reader it is. */
bool kernel_in_place_ok(const Graph *g, const Kernel *k);
/* fuse.c: the member of a KK_GRAD_TAIL kernel whose product the threads
 * share (the others run on one thread beside it). */
int kernel_tail_lead(const Graph *g, const Kernel *k);
/* fuse.c: each program's kernel schedule, for --emit=ir. */
void fuse_print(FILE *out, const Graph *g, const Kernels *ks);
/* dot.c: the training program as Graphviz, kernels as clusters. */
void dot_print(FILE *out, const Graph *g, const Kernels *ks);

/* plan.c: marks in runs[] the ops program `kind` executes. */
void program_ops(const Graph *g, ProgKind kind, bool *runs);

Kernels *fuse(Graph *g, bool enabled);

/* ===================================================================
 * plan.c — the memory plan of one program: which ops run, and the
 * arena offset of every SG_ARENA value, reusing memory by liveness.
 * =================================================================== */

typedef struct Plan {
    ProgKind kind;
    bool *runs;       /* per op: part of this program */
    long *offset;     /* per op: element offset in the arena (SG_ARENA) */
    long *scratch;    /* per kernel: offset of its scratch memory, or -1 */
    long arena_elems; /* this program's arena high-water mark */
} Plan;

Plan *plan_program(Arena *a, const Graph *g, const Kernels *ks, ProgKind kind);

/* ===================================================================
 * emit_c.c / lower.c — C emission.
 * =================================================================== */

typedef struct EmitOptions {
    const char *prefix;     /* "mnist_cnn" */
    const char *source;     /* the .nn path, for comments */
    const char *header;     /* the header's file name, for #include */
    bool f64;               /* double instead of float */
    bool main;              /* also a trainer main() */
    bool fused;
    bool profile;           /* time every kernel call of training */
} EmitOptions;

/* The writer every emitting function goes through: it owns indentation,
 * so no code counts spaces by hand. */
typedef struct Emitter {
    FILE *out;
    int indent;
    const EmitOptions *o;
    const char *real;   /* "float" or "double" */
    /* Set while a kernel writes code for its own parallel region: */
    bool serial;        /* no OpenMP pragmas (lower_parallel* emit none) */
    const char *claim;  /* a product's groups of bands go to the threads as
                         * they ask, counted in this variable */
} Emitter;

void emit(Emitter *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void emit_open(Emitter *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void emit_close(Emitter *e, const char *after);
void emit_blank(Emitter *e);
/* A real literal that round-trips: "0.100000001f" / "0.10000000000000001" */
const char *emit_lit(Emitter *e, double v, char *buf, size_t len);
/* s with '"' and '\\' escaped, for a C string literal; returns buf */
const char *emit_escape(const char *s, char *buf, size_t len);

/* emit_finite.c: NaN and infinity in the generated code (all_finite, the
 * checked training program's tests, the API, the save guard). */
void emit_finite_helper(Emitter *e, bool scalar);
void emit_kernel_checks(Emitter *e, const Graph *g, const Kernel *k,
                        const Plan *p);
void emit_input_checks(Emitter *e, const Graph *g);
void emit_finite_decls(Emitter *e, const char *p, const char *L);
void emit_finite_api(Emitter *e, const Graph *g, const Kernels *ks,
                     const Plan *train, const char *p, const char *L);

/* emit_profile.c: nnc --profile, each kernel call of training timed and
 * <prefix>_profile_print's table of where the time went. */
void emit_profile_decls(Emitter *e, const char *p);
void emit_profile_state(Emitter *e, const Graph *g, const Kernels *ks);
void emit_profile_start(Emitter *e);
void emit_profile_after_call(Emitter *e, const Kernel *k);
void emit_profile_end(Emitter *e, bool step);
void emit_profile_api(Emitter *e, const char *p);
void emit_save_guard(Emitter *e);

/* lower_conv.c: kernels of convolution, pooling, batch norm and dropout
 * (OC_WINDOW, OC_CHANNEL, OC_MODAL ops); false for any other op. */
bool lower_conv_body(Emitter *e, const Graph *g, const IrOp *o,
                     bool train_mode);
/* The pieces lower_fused.c assembles fused kernels from. Buffers keep the
 * single kernels' names (x, w, y, dy, dx, dw, dbias, stats, gamma, beta,
 * running_mean, running_var); `act`, where taken, is an activation's
 * gradient folded into the reading of dy (NULL: dy as it is), and y is
 * then that activation's output. */
typedef struct ConvEpilogue {
    /* statements consuming one finished element: its value in local t0,
     * its flat index in `at` (when `stores`), the filter in `f`, its
     * place in the plane in `q` (with a pooling: they leave it in act[q]) */
    void (*store)(Emitter *e, const void *ctx);
    const void *ctx;
    const IrOp *pool;   /* a pooling of each finished plane, or NULL */
    const char *pooled; /* the pooling's result buffer */
    const char *place;  /* MAXPOOL2D_PLACE's result buffer, or NULL */
    bool stores;        /* the epilogue stores elements (uses `at`) */
    bool indexed;       /* it reads another tensor's elements at `at` */
} ConvEpilogue;
typedef struct BnEpilogue {
    void (*store)(Emitter *e, const void *ctx); /* element in `value`, `at`, `c` */
    const void *ctx;
    const char *value;  /* the local the normalised element is put in */
    const char *stats;  /* where the statistics are stored, or NULL */
    bool train_mode;    /* batch statistics (else the running ones) */
} BnEpilogue;
/* whether conv-like op o's output plane fits a stack buffer */
bool conv_plane_on_stack(const Graph *g, const IrOp *o);
void lower_conv2d_fused(Emitter *e, const Graph *g, const IrOp *o,
                        const ConvEpilogue *ep);
void lower_pool_plane(Emitter *e, const Graph *g, const IrOp *pool);
/* whether maxpool (or its gradient) o's windows tile without overlap */
bool maxpool_windows_disjoint(const IrOp *o);
void lower_maxpool_grad_disjoint(Emitter *e, const IrOp *o, const Shape *dys,
                                 const char *dy, const char *y, const char *dx,
                                 bool relu_mask);
void lower_conv_grad(Emitter *e, const Graph *g, const IrOp *o,
                     const IrOp *act);
void lower_bn_fused(Emitter *e, const Graph *g, const IrOp *stats,
                    const IrOp *bn, const BnEpilogue *ep);
void lower_bn_grad_fused(Emitter *e, const Graph *g, const IrOp *act,
                         const IrOp *gin, const IrOp *ggamma,
                         const IrOp *gbeta);

/* lower.c: the static C function of one kernel, and the call to it. */
void lower_kernel(Emitter *e, const Graph *g, const Kernel *k);
void lower_call(Emitter *e, const Graph *g, const Kernel *k, const Plan *p);
/* pieces lower_fused.c shares with lower.c */
const char *kernel_storage(const Graph *g, const Kernel *k);
void lower_parallel_for(Emitter *e, long work);
/* NNC_PARALLEL (a parallel region) when `work` is worth the threads;
 * whether it was emitted. `bad`: the region ORs the threads' `bad`
 * (NNC_PARALLEL_BAD), as lower_parallel_for_bad's loop does */
bool lower_parallel(Emitter *e, long work, bool bad);
void lower_parallel_for_bad(Emitter *e, long work, bool bad);
void lower_ewise_expr(Emitter *e, const IrOp *o, const char *a, const char *b,
                      char *buf, size_t len);
const char *lower_libm(Emitter *e, const char *name); /* "exp" -> "expf" */
/* the weight cross-entropy op o gives class j of row r: its target,
 * label-smoothed; as a C expression over `j`, `r` and target array t,
 * with literals of e's type */
const char *lower_xent_weight(Emitter *e, const Graph *g, const IrOp *o,
                              const char *t, char *buf, size_t len);
/* the loop over a row's classes of a from-logits cross-entropy gradient */
void lower_xent_logit_grad(Emitter *e, const Graph *g, const IrOp *o,
                           const char *t, const char *p_decl, long w);
/* an element of dy as a kernel consumes it: dy, or act(dy, y) */
void lower_dy_elem(Emitter *e, const IrOp *act, const char *dy, const char *y,
                   char *buf, size_t len);
void lower_bias_channel_sum(Emitter *e, const Shape *dys, const IrOp *act);
/* Partial sums of a bias gradient over planes: one per lane of an
 * AVX-512 register, so the sum over a plane is a vector add per 16
 * elements instead of a chain of dependent scalar adds. Element j of a
 * plane (the expression `el` of j) goes to acc[j % BIAS_LANES]; the
 * total adds the lanes in order: the order of every bias gradient. */
enum { BIAS_LANES = 16 };
void lower_plane_partial_sums(Emitter *e, const char *acc, long inner,
                              const char *el);
void lower_partial_sums_total(Emitter *e, const char *acc, const char *dst);
/* Whether lower_conv_grad_weight_bias can lower weight gradient o with
 * the bias gradient of the same dy (through maxpool2d_grad_at `at`). */
bool conv_grad_weight_takes_bias(const Emitter *e, const Graph *g,
                                 const IrOp *o);
void lower_conv_grad_weight_bias(Emitter *e, const Graph *g, const IrOp *o,
                                 const IrOp *at);
/* The plane of maxpool2d_grad_at(dy, place) (shape dys) at offset `off`
 * of the result, into `dst` (rows dys.w apart), from the pooled dy and
 * place the kernel reads under those names (lower_conv.c). */
void lower_dy_spread(Emitter *e, const IrOp *at, const Shape *dys,
                     const char *off, const char *dst);
void lower_bias_grad(Emitter *e, const Graph *g, const IrOp *o,
                     const IrOp *act);
void lower_sgd(Emitter *e, const IrOp *o, long n);
/* elements of nnc_sqrt_block, the generated code's vector square root */
enum { SQRT_BLOCK = 16 };
void lower_adam(Emitter *e, const IrOp *o, long n);
void lower_rmsprop(Emitter *e, const IrOp *o, long n);
/* where value v lives in program p, as a C expression */
void lower_buffer_expr(const Graph *g, const Plan *p, int v, char *buf,
                       size_t len);
/* lower_gemm.c: every matrix product's loop nest. The epilogue emits the
 * statements that consume one finished element: its value is in local
 * `t0`, its flat index in `at`, its column in `j` (when uses_col). */
typedef struct Gemm {
    long M, N, K;
    bool ta, tb;
    const char *a, *b;   /* argument names of A and B */
    const char *packed;  /* scratch for B laid out [K, N], when tb */
    bool uses_col;
    /* set by lower_gemm: the tiles are of C^T (see gemm_swaps), so tile
     * row i0 + r is column i0 + r of C */
    bool swapped;
    /* C is a parameter's gradient: the kernel tests each element it
     * stores for an infinity or a NaN and sets *nonfinite if it finds
     * one (kernel_checks_gradient) */
    bool check_finite;
    void (*epilogue)(Emitter *e, const void *ctx);
    const void *ctx;
} Gemm;
void gemm_from_op(const Graph *g, const IrOp *o, Gemm *m);
/* whether matmul o is small enough to be written as dot products */
bool gemm_op_is_tiny(const Graph *g, const IrOp *o);
/* whether matmul o lays out its tiles of B per thread (nnc_transpose) */
bool gemm_op_packs_tiles(const Graph *g, const IrOp *o);
/* scratch elements matmul o needs for a packed B, or 0 */
long gemm_op_scratch_elems(const Graph *g, const IrOp *o);
/* nnc_transpose, when a kernel of ks packs tiles */
void lower_transpose_helper(Emitter *e, const Graph *g, const Kernels *ks);
/* parameter blocks (and optimizer updates) this small get scalar code:
 * see kernel_is_scalar in lower.c */
enum { TINY_PARAMS = 256 };
void lower_gemm(Emitter *e, const Gemm *m);
/* the product alone, for a kernel that declares `bad` and reports it */
void lower_gemm_product(Emitter *e, const Gemm *m);
/* whether matmul o goes in groups of whole bands of vector tiles, none
 * left over and nothing packed beforehand, so that a kernel calling it
 * inside its own parallel region can hand the groups out (Emitter.claim) */
bool gemm_op_claims(const Graph *g, const IrOp *o);
/* typedef nnc_vec, the vector register type of e's real type, with
 * NNC_LANES its length: chosen when the C is compiled */
void lower_vec_type(Emitter *e);
/* How lower_gemm covers C: bands of mr rows (and rest_rows more); in
 * each, when vec, tiles of 2 vector registers, then (mid) one of a
 * single vector, then (tail) a scalar tile of the last columns; without
 * vec, one scalar tile of all N columns. max_lanes: elements in the
 * widest vector register the generated code may be compiled for. */
typedef struct GemmTiling {
    int mr, rest_rows;
    long bands;
    bool vec, mid, tail;
} GemmTiling;
void gemm_tiling(const Gemm *m, int max_lanes, GemmTiling *t);
/* whether kernel k is, or holds, a product that stores a parameter's
 * gradient and tests it for non-finite values as it stores it, and so
 * takes `nonfinite` (lower.c) */
bool kernel_checks_gradient(const Graph *g, const Kernel *k);
/* whether kernel k stores value v, a parameter's gradient, from a product
 * that tests it as it stores it (a KK_SINGLE or KK_GRAD_TAIL member) */
bool kernel_checks_value(const Graph *g, const Kernel *k, int v);
/* whether op o is a product whose result is a parameter's gradient */
bool matmul_stores_gradient(const IrOp *o);
/* scratch elements kernel k needs while it runs (a packed B), or 0 */
long gemm_scratch_elems(const Graph *g, const Kernel *k);
/* lower_fused.c: kernels made by fusion rules */
void lower_fused_kernel(Emitter *e, const Graph *g, const Kernel *k);
/* elements an optimizer-update kernel (one update or a sweep) covers */
long update_elems(const Graph *g, const Kernel *k);
void lower_fused_call(Emitter *e, const Graph *g, const Kernel *k,
                      const Plan *p);

int emit_c(FILE *c, FILE *h, const Graph *g, const Kernels *ks,
           Plan *const plans[PROG__COUNT], const TrainSpec *t,
           const EmitOptions *o);

/* emit_main.c: the trainer, main() of the train block. */
void emit_trainer_macros(Emitter *e, const Graph *g, const char *prefix,
                         const char *upper, const char *label_t);
void emit_main(Emitter *e, const Graph *g, const TrainSpec *t,
               const char *prefix, const char *upper, const char *label_t);

/* runtime_blob.c (generated from runtime/ by the Makefile) */
extern const char nnc_runtime_core[];  /* header + model-side runtime */
extern const char nnc_runtime_train[]; /* trainer-side runtime */

#endif /* NNC_H */
