/* plan.c — which ops each program runs, and the memory plan of each.
 *
 * requires: kernels formed (fuse), with a schedule per program.
 * guarantees: Plan.runs marks the ops the program executes; every value
 * a kernel of the program stores in the arena gets an offset such that
 * no two values alive at the same time overlap. Time is the position in
 * the program's kernel schedule: a value is alive from the kernel that
 * writes it to the last kernel that reads it (through views too); the
 * program's results (loss, output) stay alive to the end. Values kept
 * inside a fused kernel take no memory at all. Offsets are multiples of
 * 16 elements, so rows start 64-byte aligned.
 *
 * An elementwise kernel's result may take the memory of an input it is
 * the last reader of (in place). Placement is greedy by size: largest
 * blocks first, each at the lowest offset that is free for its whole
 * lifetime; deterministic (ties broken by schedule position). */
#include "nnc.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum { ALIGN_ELEMS = 16 };

/* The value whose memory a view (or chain of views) shares. */
static int storage_root(const Graph *g, int v)
{
    while (g->ops[v].storage == SG_VIEW)
        v = g->ops[v].in[0];
    return v;
}

static void mark_needed(const Graph *g, bool *runs, int v)
{
    /* iterative: graphs can be long chains */
    int *stack = ARENA_ARRAY(g->arena, int, g->nops + 1);
    int top = 0;
    stack[top++] = v;
    while (top) {
        int u = stack[--top];
        if (runs[u])
            continue;
        runs[u] = true;
        for (int i = 0; i < g->ops[u].nin; i++)
            if (!runs[g->ops[u].in[i]])
                stack[top++] = g->ops[u].in[i];
    }
}

void program_ops(const Graph *g, ProgKind kind, bool *runs)
{
    mark_needed(g, runs, g->output);
    if (kind == PROG_PREDICT)
        return;
    mark_needed(g, runs, g->loss);
    if (kind == PROG_EVAL)
        return;
    for (int i = 0; i < g->nops; i++)
        if (g->ops[i].phase != PH_FORWARD)
            mark_needed(g, runs, i);
}

static long round_up(long n)
{
    return (n + ALIGN_ELEMS - 1) / ALIGN_ELEMS * ALIGN_ELEMS;
}

/* last_use[v]: the last schedule position whose kernel reads v. */
static int *last_uses(Arena *a, const Graph *g, const Kernels *ks,
                      ProgKind kind)
{
    int *last = ARENA_ARRAY(a, int, g->nops);
    for (int i = 0; i < g->nops; i++)
        last[i] = -1;
    for (int t = 0; t < ks->nsched[kind]; t++) {
        const Kernel *k = &ks->k[ks->sched[kind][t]];
        for (int m = 0; m < k->nops; m++) {
            const IrOp *o = &g->ops[k->ops[m]];
            for (int j = 0; j < o->nin; j++)
                last[storage_root(g, o->in[j])] = t;
        }
    }
    last[storage_root(g, g->output)] = INT_MAX;
    if (kind != PROG_PREDICT)
        last[storage_root(g, g->loss)] = INT_MAX;
    return last;
}

/* A piece of arena memory: one stored value, or several when results
 * were put over inputs (in place), or a kernel's scratch. */
typedef struct Block {
    long size;
    int first, last; /* schedule positions: written at first, last read */
    long offset;
    long kept; /* the offset of the best placement tried so far */
} Block;

static bool lifetimes_overlap(const Block *a, const Block *b)
{
    return a->first <= b->last && b->first <= a->last;
}

static int by_size(const void *pa, const void *pb)
{
    const Block *a = *(const Block *const *)pa, *b = *(const Block *const *)pb;
    if (a->size != b->size)
        return a->size < b->size ? 1 : -1;
    return (a->first > b->first) - (a->first < b->first);
}

static int by_offset(const void *pa, const void *pb)
{
    const Block *a = *(const Block *const *)pa, *b = *(const Block *const *)pb;
    return (a->offset > b->offset) - (a->offset < b->offset);
}

/* Blocks in the given order, each at the lowest offset clear of every
 * block placed before it that is alive at the same time. Largest first
 * is TensorFlow Lite's greedy-by-size: near-optimal for these lifetimes. */
static int by_start(const void *pa, const void *pb)
{
    const Block *a = *(const Block *const *)pa, *b = *(const Block *const *)pb;
    if (a->first != b->first)
        return (a->first > b->first) - (a->first < b->first);
    return (a->size < b->size) - (a->size > b->size);
}

static long place_in_order(Arena *a, Block **blocks, int n,
                           int (*order)(const void *, const void *))
{
    qsort(blocks, (size_t)n, sizeof *blocks, order);
    Block **clash = ARENA_ARRAY(a, Block *, n + 1);
    long high = 0;
    for (int i = 0; i < n; i++) {
        int nc = 0;
        for (int j = 0; j < i; j++)
            if (lifetimes_overlap(blocks[i], blocks[j]))
                clash[nc++] = blocks[j];
        qsort(clash, (size_t)nc, sizeof *clash, by_offset);
        long at = 0;
        for (int j = 0; j < nc; j++) {
            if (clash[j]->offset >= at + blocks[i]->size)
                break;
            long end = clash[j]->offset + clash[j]->size;
            at = end > at ? end : at;
        }
        blocks[i]->offset = at;
        if (at + blocks[i]->size > high)
            high = at + blocks[i]->size;
    }
    return high;
}

/* Longest-lived first, then largest: the values kept from the forward
 * pass for the backward pass are laid down first, and the short-lived
 * ones fill the gaps between them. */
static int by_lifetime(const void *pa, const void *pb)
{
    const Block *a = *(const Block *const *)pa, *b = *(const Block *const *)pb;
    int la = a->last - a->first, lb = b->last - b->first;
    if (la != lb)
        return la < lb ? 1 : -1;
    return by_size(pa, pb);
}

/* The program's results (alive to the end) first, then largest first:
 * the results sit at the bottom, out of the way of everything else. */
static int by_size_results_first(const void *pa, const void *pb)
{
    const Block *a = *(const Block *const *)pa, *b = *(const Block *const *)pb;
    bool ra = a->last == INT_MAX, rb = b->last == INT_MAX;
    if (ra != rb)
        return ra ? -1 : 1;
    return by_size(pa, pb);
}

/* Greedy orders, keep the smallest arena (the first of equals): largest
 * first is usually best, schedule order sometimes wins on small graphs,
 * longest-lived first on mnist_cnn_bn --no-fuse (1.5% smaller), and
 * results first where a large scratch block alive for one kernel makes
 * the others leave a result-sized gap unused (regularised.nn). */
static long place_blocks(Arena *a, Block **blocks, int n)
{
    int (*const orders[])(const void *, const void *) = {
        by_size, by_start, by_lifetime, by_size_results_first};
    long best_high = -1;
    for (size_t o = 0; o < sizeof orders / sizeof orders[0]; o++) {
        long high = place_in_order(a, blocks, n, orders[o]);
        if (best_high < 0 || high < best_high) {
            best_high = high;
            for (int i = 0; i < n; i++)
                blocks[i]->kept = blocks[i]->offset;
        }
    }
    for (int i = 0; i < n; i++)
        blocks[i]->offset = blocks[i]->kept;
    return best_high;
}

/* The input whose memory kernel k's result may take: read last by this
 * kernel, in the arena, the same size, not already given away. */
static int donor_input(const Graph *g, const Kernel *k, int result,
                       const int *last, Block *const *block_of, int t)
{
    long n = shape_elems(&g->ops[result].shape);
    for (int m = 0; m < k->nops; m++) {
        const IrOp *o = &g->ops[k->ops[m]];
        for (int j = 0; j < o->nin; j++) {
            int in = storage_root(g, o->in[j]);
            bool inside = false;
            for (int q = 0; q < k->nops; q++)
                inside = inside || k->ops[q] == in;
            if (!inside && g->ops[in].storage == SG_ARENA && block_of[in] &&
                last[in] == t && block_of[in]->last == t &&
                shape_elems(&g->ops[in].shape) == n)
                return in;
        }
    }
    return -1;
}

Plan *plan_program(Arena *a, const Graph *g, const Kernels *ks, ProgKind kind)
{
    Plan *p = ARENA_NEW(a, Plan);
    p->kind = kind;
    p->runs = ARENA_ARRAY(a, bool, g->nops);
    p->offset = ARENA_ARRAY(a, long, g->nops);
    p->scratch = ARENA_ARRAY(a, long, ks->n);
    for (int i = 0; i < g->nops; i++)
        p->offset[i] = -1;
    for (int i = 0; i < ks->n; i++)
        p->scratch[i] = -1;
    program_ops(g, kind, p->runs);
    int *last = last_uses(a, g, ks, kind);

    int cap = g->nops + ks->nsched[kind] + 1, nblocks = 0;
    Block **blocks = ARENA_ARRAY(a, Block *, cap);
    Block **block_of = ARENA_ARRAY(a, Block *, g->nops);
    Block **scratch_of = ARENA_ARRAY(a, Block *, ks->n);
    for (int t = 0; t < ks->nsched[kind]; t++) {
        const Kernel *k = &ks->k[ks->sched[kind][t]];
        int final = -1;
        for (int m = 0; m < k->nops; m++)
            if (k->stored[m] && g->ops[k->ops[m]].storage == SG_ARENA)
                final = k->ops[m];
        for (int m = 0; m < k->nops; m++) {
            int v = k->ops[m];
            if (!k->stored[m] || g->ops[v].storage != SG_ARENA)
                continue;
            int lastv = last[v] < t ? t : last[v];
            /* --no-fuse keeps every intermediate in memory of its own */
            int donor = ks->fused && v == final && kernel_in_place_ok(g, k)
                            ? donor_input(g, k, v, last, block_of, t)
                            : -1;
            if (donor >= 0) {
                /* in place: the result takes over the input's memory */
                block_of[v] = block_of[donor];
                block_of[v]->last = lastv;
                continue;
            }
            Block *b = ARENA_NEW(a, Block);
            *b = (Block){.size = round_up(shape_elems(&g->ops[v].shape)), .first = t, .last = lastv};
            block_of[v] = blocks[nblocks++] = b;
        }
        if (k->scratch > 0) {
            Block *b = ARENA_NEW(a, Block);
            *b = (Block){.size = round_up(k->scratch), .first = t, .last = t};
            scratch_of[k->index] = blocks[nblocks++] = b;
        }
    }
    p->arena_elems = place_blocks(a, blocks, nblocks);
    for (int i = 0; i < g->nops; i++)
        if (block_of[i])
            p->offset[i] = block_of[i]->offset;
    for (int i = 0; i < ks->n; i++)
        if (scratch_of[i])
            p->scratch[i] = scratch_of[i]->offset;
    for (int i = 0; i < g->nops; i++)
        if (p->runs[i] && g->ops[i].storage == SG_VIEW)
            p->offset[i] = p->offset[storage_root(g, i)];
    return p;
}
