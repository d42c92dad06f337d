/* dot.c — the training graph as Graphviz (--emit=dot): one node per op
 * of the training program, one cluster per kernel, so what fusion merged
 * is visible at a glance. Render with `dot -Tsvg`. */
#include "nnc.h"

static const char *node_color(const IrOp *o)
{
    if (o->storage == SG_PARAM)
        return "lightgoldenrod1";
    if (o->storage == SG_INPUT || o->storage == SG_LABEL)
        return "lightblue";
    if (o->phase == PH_BACKWARD)
        return "mistyrose";
    if (o->phase == PH_UPDATE)
        return "palegreen";
    return "white";
}

static void print_node(FILE *out, const Graph *g, int v)
{
    const IrOp *o = &g->ops[v];
    char shape[96];
    const char *name = o->param >= 0 && o->storage == SG_PARAM
                           ? g->params[o->param].name
                           : o->name;
    fprintf(out, "    n%d [label=\"%s%s%s\\n%s\", style=filled, fillcolor=%s];\n",
            v, op_names[o->op], name ? " " : "", name ? name : "",
            shape_str(&o->shape, shape, sizeof shape), node_color(o));
}

void dot_print(FILE *out, const Graph *g, const Kernels *ks)
{
    bool *runs = ARENA_ARRAY(g->arena, bool, g->nops);
    bool *done = ARENA_ARRAY(g->arena, bool, g->nops);
    program_ops(g, PROG_TRAIN, runs);
    fprintf(out, "digraph training_step {\n");
    fprintf(out, "  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\", "
            "fontsize=10];\n");
    for (int t = 0; t < ks->nsched[PROG_TRAIN]; t++) {
        const Kernel *k = &ks->k[ks->sched[PROG_TRAIN][t]];
        fprintf(out, "  subgraph cluster_%d {\n    label=\"%s\"; "
                "fontsize=9; style=rounded; color=%s;\n", t, k->name,
                k->nops > 1 ? "red" : "gray");
        for (int m = 0; m < k->nops; m++) {
            print_node(out, g, k->ops[m]);
            done[k->ops[m]] = true;
        }
        fprintf(out, "  }\n");
    }
    for (int v = 0; v < g->nops; v++)
        if (runs[v] && !done[v] && g->ops[v].op != OP_STATE)
            print_node(out, g, v);
    for (int v = 0; v < g->nops; v++)
        for (int i = 0; runs[v] && i < g->ops[v].nin; i++)
            if (g->ops[g->ops[v].in[i]].op != OP_STATE)
                fprintf(out, "  n%d -> n%d;\n", g->ops[v].in[i], v);
    fprintf(out, "}\n");
}
