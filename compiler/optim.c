/* optim.c — the optimizer, lowered into the IR.
 *
 * requires: autodiff has run (Param.grad set).
 * guarantees: one PH_UPDATE op per parameter that has a gradient and is
 * not frozen, reading the parameter, its gradient and its optimizer state
 * (STATE values in one contiguous state block, zero at start), writing
 * the parameter and state in place. The learning rate and the step count
 * are read at run time from the model, so schedules can change them.
 * Parameter groups: a frozen parameter gets no update op (its gradient
 * may still be computed); a `no_decay` parameter's update has weight
 * decay 0, so it forms an update kernel of its own.
 *
 * State layout: slot k of every parameter forms one block the size of
 * the parameter block (Adam: all first moments, then all second moments),
 * so a fused update can sweep params, grads and state in one loop, and a
 * checkpoint can name each slot as PyTorch's optimizer state does. */
#include "nnc.h"

#include <string.h>

int optim_state_names(const OptimSpec *opt, const char *names[3])
{
    int n = 0;
    switch (opt->kind) {
    case OPT_SGD:
        if (opt->momentum != 0)
            names[n++] = "momentum_buffer";
        break;
    case OPT_ADAM:
        names[n++] = "exp_avg";
        names[n++] = "exp_avg_sq";
        break;
    case OPT_RMSPROP:
        names[n++] = "square_avg";
        if (opt->momentum > 0)
            names[n++] = "momentum_buffer";
        if (opt->centered)
            names[n++] = "grad_avg";
        break;
    }
    return n;
}

/* A normalisation layer's scale or shift: batch norm's gamma and beta. */
static bool is_norm_param(const Graph *g, int param)
{
    int v = g->params[param].value;
    for (int i = 0; i < g->nops; i++) {
        const IrOp *o = &g->ops[i];
        if (o->op == OP_BATCHNORM && (o->in[2] == v || o->in[3] == v))
            return true;
    }
    return false;
}

bool optim_selects(const Graph *g, const ParamSel *s, int param)
{
    const char *name = g->params[param].name;
    size_t n = strlen(name);
    switch (s->kind) {
    case PSEL_BIAS:
        return n >= 5 && strcmp(name + n - 5, ".bias") == 0;
    case PSEL_NORM:
        return is_norm_param(g, param);
    case PSEL_NAME: {
        size_t k = strlen(s->name);
        return strcmp(name, s->name) == 0 ||
               (k < n && strncmp(name, s->name, k) == 0 && name[k] == '.');
    }
    }
    return false;
}

static bool selected(const Graph *g, const ParamSel *s, int ns, int param)
{
    for (int i = 0; i < ns; i++)
        if (optim_selects(g, &s[i], param))
            return true;
    return false;
}

bool optim_updates(const Graph *g, int param)
{
    for (int i = 0; i < g->nops; i++)
        if (op_class[g->ops[i].op] == OC_UPDATE && g->ops[i].param == param)
            return true;
    return false;
}

static int add_state(Graph *g, int param, int which)
{
    Param *p = &g->params[param];
    int v = ir_add(g, OP_STATE, p->shape, NULL, 0, g->ops[p->value].loc,
                   g->ops[p->value].label);
    IrOp *o = &g->ops[v];
    o->phase = PH_UPDATE;
    o->storage = SG_STATE;
    o->param = param;
    o->offset = which * g->param_elems + p->offset;
    if (g->state_elems < (which + 1) * g->param_elems)
        g->state_elems = (which + 1) * g->param_elems;
    p->state[which] = v;
    return v;
}

void optim_lower(Graph *g, const OptimSpec *opt)
{
    const char *slots[3];
    int nslots = optim_state_names(opt, slots);
    for (int i = 0; i < g->nparams; i++) {
        Param *p = &g->params[i];
        if (p->grad < 0 || selected(g, opt->freeze, opt->nfreeze, i))
            continue;
        int in[4] = {p->value, p->grad, -1, -1};
        int nin = 2;
        OpKind op = OP_SGD_UPDATE;
        if (opt->kind == OPT_ADAM) {
            op = OP_ADAM_UPDATE;
            in[nin++] = add_state(g, i, 0);
            in[nin++] = add_state(g, i, 1);
        } else if (opt->kind == OPT_RMSPROP) {
            /* (w, g, square_avg); its other slots follow at state_stride */
            op = OP_RMSPROP_UPDATE;
            in[nin++] = add_state(g, i, 0);
            if (g->state_elems < nslots * g->param_elems)
                g->state_elems = nslots * g->param_elems;
        } else if (opt->momentum != 0) {
            in[nin++] = add_state(g, i, 0);
        }
        int u = ir_add(g, op, p->shape, in, nin, g->ops[p->value].loc,
                       g->ops[p->value].label);
        IrOp *o = &g->ops[u];
        o->phase = PH_UPDATE;
        o->param = i;
        o->attr.opt = *opt;
        o->attr.opt.state_stride = g->param_elems;
        o->attr.opt.freeze = o->attr.opt.no_decay = NULL;
        o->attr.opt.nfreeze = o->attr.opt.nno_decay = 0;
        if (selected(g, opt->no_decay, opt->nno_decay, i))
            o->attr.opt.weight_decay = 0;
    }
}
