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
 * Placement is first-fit in schedule order: simple, deterministic, and
 * close to optimal for the chain-shaped lifetimes of a training step. */
#include "nnc.h"

#include <limits.h>
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

typedef struct Block {
    long offset, size;
    int last_use;
} Block;

static long round_up(long n)
{
    return (n + ALIGN_ELEMS - 1) / ALIGN_ELEMS * ALIGN_ELEMS;
}

/* Lowest offset where `size` elements fit between the live blocks. */
static long first_fit(const Block *live, int nlive, long size)
{
    long at = 0;
    for (;;) {
        bool moved = false;
        for (int i = 0; i < nlive; i++)
            if (live[i].offset < at + size && at < live[i].offset + live[i].size) {
                at = live[i].offset + live[i].size;
                moved = true;
            }
        if (!moved)
            return at;
    }
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

    Block *live = ARENA_ARRAY(a, Block, g->nops);
    int nlive = 0;
    for (int t = 0; t < ks->nsched[kind]; t++) {
        /* memory read for the last time before this kernel is free again;
         * inputs of this kernel stay taken, so no output overwrites them */
        int keep = 0;
        for (int j = 0; j < nlive; j++)
            if (live[j].last_use >= t)
                live[keep++] = live[j];
        nlive = keep;
        const Kernel *k = &ks->k[ks->sched[kind][t]];
        for (int m = 0; m < k->nops; m++) {
            int v = k->ops[m];
            if (!k->stored[m] || g->ops[v].storage != SG_ARENA)
                continue;
            long size = round_up(shape_elems(&g->ops[v].shape));
            long at = first_fit(live, nlive, size);
            live[nlive++] = (Block){at, size, last[v] < t ? t : last[v]};
            p->offset[v] = at;
            if (at + size > p->arena_elems)
                p->arena_elems = at + size;
        }
        if (k->scratch > 0) {
            /* alive only while the kernel runs: free again at t + 1 */
            long size = round_up(k->scratch);
            long at = first_fit(live, nlive, size);
            live[nlive++] = (Block){at, size, t};
            p->scratch[k->index] = at;
            if (at + size > p->arena_elems)
                p->arena_elems = at + size;
        }
    }
    for (int i = 0; i < g->nops; i++)
        if (p->runs[i] && g->ops[i].storage == SG_VIEW)
            p->offset[i] = p->offset[storage_root(g, i)];
    return p;
}
