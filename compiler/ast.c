/* ast.c — a stable text dump of the AST (nnc --emit=ast, tests).
 *
 * Blocks and statements are indented lines; expressions are written on
 * one line, fully bracketed so the tree is unambiguous:
 *
 *   model mnist
 *     input image : [1, 28, 28]
 *     let h = (pipe relu (call dense x 64 init=xavier))
 *     loss (call cross_entropy (+ a (neg b)) digit)
 *   train mnist
 *     step d_step {
 *       loss d_loss
 *     }
 *
 * `(pipe f a b)` is a call desugared from `a |> f(b)`; lists print as
 * [a, b]; numbers with %.9g. The parser bounds the nesting depth, so the
 * recursion here is bounded too. */
#include "nnc.h"

static void print_expr(FILE *out, const Expr *e);

static void print_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(out, "\\x%02x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

static void print_args(FILE *out, const Arg *a)
{
    for (; a; a = a->next) {
        fputc(' ', out);
        if (a->name)
            fprintf(out, "%s=", a->name);
        print_expr(out, a->value);
    }
}

static void print_list(FILE *out, const Expr *items)
{
    fputc('[', out);
    for (const Expr *i = items; i; i = i->next) {
        print_expr(out, i);
        if (i->next)
            fputs(", ", out);
    }
    fputc(']', out);
}

static void print_expr(FILE *out, const Expr *e)
{
    if (!e) {
        fputs("<null>", out);
        return;
    }
    switch (e->kind) {
    case EX_NUM:
        fprintf(out, "%.9g", e->u.num.value);
        break;
    case EX_STRING:
        print_string(out, e->u.str);
        break;
    case EX_IDENT:
        fputs(e->u.ident, out);
        break;
    case EX_CALL:
        fprintf(out, "(%s %s", e->u.call.piped ? "pipe" : "call", e->u.call.callee);
        print_args(out, e->u.call.args);
        fputc(')', out);
        break;
    case EX_LIST:
        print_list(out, e->u.list.items);
        break;
    case EX_BINARY:
        fprintf(out, "(%c ", e->u.bin.op);
        print_expr(out, e->u.bin.lhs);
        fputc(' ', out);
        print_expr(out, e->u.bin.rhs);
        fputc(')', out);
        break;
    case EX_NEG:
        fputs("(neg ", out);
        print_expr(out, e->u.operand);
        fputc(')', out);
        break;
    }
}

static void print_type(FILE *out, const TypeExpr *t)
{
    if (!t) {
        fputs("<null>", out);
    } else if (t->is_class) {
        fputs("class(", out);
        print_expr(out, t->nclasses);
        fputc(')', out);
    } else {
        print_list(out, t->dims ? t->dims->u.list.items : NULL);
    }
}

static void print_stmt(FILE *out, const Stmt *s)
{
    switch (s->kind) {
    case ST_INPUT:
    case ST_LABEL:
    case ST_PARAM:
        fprintf(out, "  %s %s : ",
                s->kind == ST_INPUT ? "input" : s->kind == ST_LABEL ? "label" : "param",
                s->name);
        print_type(out, s->type);
        for (const Arg *o = s->options; o; o = o->next) {
            fprintf(out, ", %s=", o->name ? o->name : "<positional>");
            print_expr(out, o->value);
        }
        break;
    case ST_LET:
        fprintf(out, "  let %s = ", s->name);
        print_expr(out, s->value);
        break;
    case ST_OUTPUT:
        fprintf(out, "  output %s", s->name);
        if (s->value) {
            fputs(" = ", out);
            print_expr(out, s->value);
        }
        break;
    case ST_LOSS:
        fputs("  loss ", out);
        print_expr(out, s->value);
        break;
    }
    fputc('\n', out);
}

static void print_settings(FILE *out, const Setting *s, int indent)
{
    for (; s; s = s->next) {
        fprintf(out, "%*s%s", indent, "", s->key);
        if (s->value) {
            fputc(' ', out);
            print_expr(out, s->value);
        }
        if (s->has_body) {
            if (!s->body) {
                fputs(" {}\n", out);
                continue;
            }
            fputs(" {\n", out);
            print_settings(out, s->body, indent + 2);
            fprintf(out, "%*s}", indent, "");
        }
        fputc('\n', out);
    }
}

void ast_print(FILE *out, const Program *p)
{
    if (!p)
        return;
    for (const Model *m = p->models; m; m = m->next) {
        fprintf(out, "model %s\n", m->name);
        for (const Stmt *s = m->stmts; s; s = s->next)
            print_stmt(out, s);
    }
    for (const Train *t = p->trains; t; t = t->next) {
        fprintf(out, "train %s\n", t->model);
        print_settings(out, t->settings, 2);
    }
}
