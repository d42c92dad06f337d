/* parser.y — the grammar of .nn files; builds the AST of nnc.h.
 *
 * Statements have no terminator: the grammar is LALR(1) without
 * conflicts because no expression can be followed directly by a token
 * that starts a statement or setting. Syntax errors are reported by
 * yyreport_syntax_error() in terms of the source ("expected ')' to close
 * '(' at 3:14"), and the parser resynchronises at the next statement,
 * setting or top-level block so one run reports several errors. */

%code requires {
#include "frontend.h"

#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

/* Lists under construction keep their tail for appending in source
 * order; `depth` is the deepest nesting among their expressions. */
typedef struct ExprList { Expr *head, *tail; int count, depth; } ExprList;
typedef struct ArgList { Arg *head, *tail; int depth; } ArgList;
typedef struct StmtList { Stmt *head, *tail; } StmtList;
typedef struct SettingList { Setting *head, *tail; } SettingList;
typedef struct NumberValue { double value; bool is_int; } NumberValue;
}

%code top {
#include <limits.h>
#include <string.h>
}

%code {
int yylex(YYSTYPE *lvalp, YYLTYPE *llocp, yyscan_t scanner);
static void yyerror(const YYLTYPE *lloc, yyscan_t scanner, ParseState *ps,
                    const char *msg);

/* Bison's stack grows in the arena: nothing to free when flex's fatal
 * error handler longjmps out of yyparse. (With YYSTACK_ALLOC defined,
 * bison makes YYSTACK_FREE a no-op, as it does for alloca.) */
#define YYSTACK_ALLOC(size) arena_alloc(ps->arena, (size))
#define YYSTACK_ALLOC_MAXIMUM ((size_t)1 << 30)

static Loc loc_of(YYLTYPE lloc);
static Expr *new_number(ParseState *ps, Loc loc, NumberValue num);
static Expr *new_string(ParseState *ps, Loc loc, const char *str);
static Expr *new_ident(ParseState *ps, Loc loc, const char *name);
static Expr *new_call(ParseState *ps, const char *callee, Loc callee_loc,
                      ArgList args, bool piped);
static Expr *new_pipe(ParseState *ps, Expr *lhs, const char *callee,
                      Loc callee_loc, ArgList rest);
static Expr *new_list(ParseState *ps, Loc loc, ExprList items);
static Expr *new_binary(ParseState *ps, Loc loc, char op, Expr *lhs, Expr *rhs);
static Expr *new_neg(ParseState *ps, Loc loc, Expr *operand);
static bool nesting_ok(ParseState *ps, const Expr *e);
static bool begins_line(const ParseState *ps);
static ExprList expr_list_add(ExprList list, Expr *e);
static ArgList arg_list_add(ParseState *ps, ArgList list, const char *name,
                            Loc loc, Expr *value);
static Stmt *new_stmt(ParseState *ps, StmtKind kind, Loc loc, const char *name,
                      Loc name_loc);
static StmtList stmt_list_add(StmtList list, Stmt *s);
static TypeExpr *new_shape_type(ParseState *ps, Loc loc, ExprList dims);
static TypeExpr *new_class_type(ParseState *ps, Loc loc, Expr *nclasses);
static Setting *new_setting(ParseState *ps, const char *key, Loc loc,
                            Expr *value);
static SettingList setting_list_add(SettingList list, Setting *s);
static void add_model(ParseState *ps, Loc loc, const char *name, Loc name_loc,
                      StmtList body);
static void add_train(ParseState *ps, Loc loc, const char *model,
                      Loc model_loc, SettingList body);

/* Every new expression is checked against NEST_LIMIT as it is built. */
#define CHECKED(e) do { if (!nesting_ok(ps, (e))) YYABORT; } while (0)
}

%define api.pure full
%define parse.error custom
%locations
%expect 0
%param {yyscan_t scanner}
%parse-param {ParseState *ps}

%union {
    const char *str;
    NumberValue num;
    Expr *expr;
    ExprList exprs;
    ArgList args;
    Stmt *stmt;
    StmtList stmts;
    TypeExpr *type;
    Setting *setting;
    SettingList settings;
}

%token <str> IDENT "identifier"
%token <num> NUMBER "number"
%token <str> STRING "string"
%token KW_MODEL "model" KW_TRAIN "train" KW_INPUT "input" KW_LABEL "label"
       KW_PARAM "param" KW_OUTPUT "output" KW_LOSS "loss" KW_CLASS "class"
%token LBRACE "{" RBRACE "}" LPAREN "(" RPAREN ")" LBRACKET "[" RBRACKET "]"
       COMMA "," COLON ":" SEMI ";" ASSIGN "=" PLUS "+" MINUS "-" STAR "*"
       SLASH "/" PIPE "|>"
/* from the scanner: `model` or `train` inside a block (see ParseState) */
%token UNCLOSED_BLOCK "block keyword inside a block"

%precedence "|>"
%left "+" "-"
%left "*" "/"
%precedence UMINUS

%type <expr> expr primary
%type <exprs> dims items
%type <args> arguments args param_options
%type <stmt> stmt
%type <stmts> model_body
%type <type> type
%type <setting> setting
%type <settings> settings
%type <str> key key_token

%%

program
    : %empty
    | program model
    | program train
    | program error
    ;

model
    : "model" resync IDENT "{" model_body "}" {
        add_model(ps, loc_of(@1), $3, loc_of(@3), $5);
    }
    ;

model_body
    : %empty                { $$ = (StmtList){NULL, NULL}; }
    | model_body stmt       { $$ = stmt_list_add($1, $2); }
    | model_body ";"        { $$ = $1; }
    | model_body error      { $$ = $1; }
    ;

stmt
    : "input" resync IDENT ":" type {
        $$ = new_stmt(ps, ST_INPUT, loc_of(@1), $3, loc_of(@3));
        $$->type = $5;
    }
    | "label" resync IDENT ":" type {
        $$ = new_stmt(ps, ST_LABEL, loc_of(@1), $3, loc_of(@3));
        $$->type = $5;
    }
    | "param" resync IDENT ":" type param_options {
        $$ = new_stmt(ps, ST_PARAM, loc_of(@1), $3, loc_of(@3));
        $$->type = $5;
        $$->options = $6.head;
    }
    | IDENT resync "=" expr {
        $$ = new_stmt(ps, ST_LET, loc_of(@1), $1, loc_of(@1));
        $$->value = $4;
    }
    | "output" resync IDENT {
        $$ = new_stmt(ps, ST_OUTPUT, loc_of(@1), $3, loc_of(@3));
    }
    | "output" resync IDENT "=" expr {
        $$ = new_stmt(ps, ST_OUTPUT, loc_of(@1), $3, loc_of(@3));
        $$->value = $5;
    }
    | "loss" resync expr {
        $$ = new_stmt(ps, ST_LOSS, loc_of(@1), NULL, (Loc){0, 0});
        $$->value = $3;
    }
    ;

/* After a syntax error Bison reports nothing more until three tokens
 * have been shifted, so that one mistake does not cascade; but that
 * also hides a real error on the very next line. A statement or block
 * whose first token begins a line is a trustworthy fresh start, so
 * errors are reported again from there. `resync` follows that first
 * token, where its reduction needs no lookahead. */
resync
    : %empty                { if (begins_line(ps)) { yyerrok; ps->quiet = false; } }
    ;

param_options
    : %empty                { $$ = (ArgList){NULL, NULL, 0}; }
    | param_options "," IDENT "=" expr { $$ = arg_list_add(ps, $1, $3, loc_of(@3), $5); }
    ;

type
    : "[" dims "]"          { $$ = new_shape_type(ps, loc_of(@1), $2); CHECKED($$->dims); }
    | "class" "(" expr ")"  { $$ = new_class_type(ps, loc_of(@1), $3); }
    ;

dims
    : expr                  { $$ = expr_list_add((ExprList){0}, $1); }
    | dims "," expr         { $$ = expr_list_add($1, $3); }
    ;

train
    : "train" resync IDENT "{" settings "}" {
        add_train(ps, loc_of(@1), $3, loc_of(@3), $5);
    }
    ;

settings
    : %empty                { $$ = (SettingList){NULL, NULL}; }
    | settings setting      { $$ = setting_list_add($1, $2); }
    | settings ";"          { $$ = $1; }
    | settings error        { $$ = $1; }
    ;

setting
    : key expr              { $$ = new_setting(ps, $1, loc_of(@1), $2); }
    | key "{" settings "}"  {
        $$ = new_setting(ps, $1, loc_of(@1), NULL);
        $$->body = $3.head;
        $$->has_body = true;
    }
    | key expr "{" settings "}" {
        $$ = new_setting(ps, $1, loc_of(@1), $2);
        $$->body = $4.head;
        $$->has_body = true;
    }
    ;

/* Keywords other than model/train may name a setting, so that
 * `loss d_loss` and `output probs` read naturally in a train block. */
key
    : key_token resync      { $$ = $1; }
    ;

key_token
    : IDENT                 { $$ = $1; }
    | "input"               { $$ = "input"; }
    | "label"               { $$ = "label"; }
    | "param"               { $$ = "param"; }
    | "output"              { $$ = "output"; }
    | "loss"                { $$ = "loss"; }
    | "class"               { $$ = "class"; }
    ;

expr
    : expr "|>" IDENT       { $$ = new_pipe(ps, $1, $3, loc_of(@3), (ArgList){0}); CHECKED($$); }
    | expr "|>" IDENT arguments { $$ = new_pipe(ps, $1, $3, loc_of(@3), $4); CHECKED($$); }
    | expr "+" expr         { $$ = new_binary(ps, loc_of(@2), '+', $1, $3); CHECKED($$); }
    | expr "-" expr         { $$ = new_binary(ps, loc_of(@2), '-', $1, $3); CHECKED($$); }
    | expr "*" expr         { $$ = new_binary(ps, loc_of(@2), '*', $1, $3); CHECKED($$); }
    | expr "/" expr         { $$ = new_binary(ps, loc_of(@2), '/', $1, $3); CHECKED($$); }
    | "-" expr %prec UMINUS { $$ = new_neg(ps, loc_of(@1), $2); CHECKED($$); }
    | primary               { $$ = $1; }
    ;

primary
    : NUMBER                { $$ = new_number(ps, loc_of(@1), $1); }
    | STRING                { $$ = new_string(ps, loc_of(@1), $1); }
    | IDENT                 { $$ = new_ident(ps, loc_of(@1), $1); }
    | IDENT arguments       { $$ = new_call(ps, $1, loc_of(@1), $2, false); CHECKED($$); }
    | "[" "]"               { $$ = new_list(ps, loc_of(@1), (ExprList){0}); }
    | "[" items "]"         { $$ = new_list(ps, loc_of(@1), $2); CHECKED($$); }
    | "[" items "," "]"     { $$ = new_list(ps, loc_of(@1), $2); CHECKED($$); }
    | "(" expr ")"          { $$ = $2; }
    ;

/* The optional trailing comma is spelt out in each rule rather than
 * reduced away early, so that after a ',' the parser still knows that
 * both another item and the closing bracket may follow, and says so. */
arguments
    : "(" ")"               { $$ = (ArgList){NULL, NULL, 0}; }
    | "(" args ")"          { $$ = $2; }
    | "(" args "," ")"      { $$ = $2; }
    ;

args
    : expr                  { $$ = arg_list_add(ps, (ArgList){0}, NULL, loc_of(@1), $1); }
    | IDENT "=" expr        { $$ = arg_list_add(ps, (ArgList){0}, $1, loc_of(@1), $3); }
    | args "," expr         { $$ = arg_list_add(ps, $1, NULL, loc_of(@3), $3); }
    | args "," IDENT "=" expr { $$ = arg_list_add(ps, $1, $3, loc_of(@3), $5); }
    ;

items
    : expr                  { $$ = expr_list_add((ExprList){0}, $1); }
    | items "," expr        { $$ = expr_list_add($1, $3); }
    ;

%%

#include "lexer.h"

/* ---- building the AST ------------------------------------------------ */

/* Each Expr the parser allocates sits in an ExprNode that remembers how
 * deeply nested it is, so the limit is checked in O(1) per node. */
typedef struct ExprNode {
    Expr expr; /* first: an Expr * is also an ExprNode * */
    int depth; /* 0 for a leaf */
} ExprNode;

static int depth_of(const Expr *e)
{
    return ((const ExprNode *)(const void *)e)->depth;
}

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

static Loc loc_of(YYLTYPE lloc)
{
    return (Loc){lloc.first_line, lloc.first_column};
}

static Expr *new_expr(ParseState *ps, ExprKind kind, Loc loc, int depth)
{
    ExprNode *node = ARENA_NEW(ps->arena, ExprNode);
    node->expr.kind = kind;
    node->expr.loc = loc;
    node->depth = depth;
    return &node->expr;
}

static bool nesting_ok(ParseState *ps, const Expr *e)
{
    if (depth_of(e) <= NEST_LIMIT)
        return true;
    diag_error(ps->diag, e->loc, "expression nested too deeply (limit %d)",
               NEST_LIMIT);
    ps->stopped = true;
    return false;
}

/* Whether the token just shifted is the first on its line. */
static bool begins_line(const ParseState *ps)
{
    return ps->cur.loc.line > ps->prev.loc.line;
}

static Expr *new_number(ParseState *ps, Loc loc, NumberValue num)
{
    Expr *e = new_expr(ps, EX_NUM, loc, 0);
    e->u.num.value = num.value;
    e->u.num.is_int = num.is_int;
    return e;
}

static Expr *new_string(ParseState *ps, Loc loc, const char *str)
{
    Expr *e = new_expr(ps, EX_STRING, loc, 0);
    e->u.str = str;
    return e;
}

static Expr *new_ident(ParseState *ps, Loc loc, const char *name)
{
    Expr *e = new_expr(ps, EX_IDENT, loc, 0);
    e->u.ident = name;
    return e;
}

static Expr *new_call(ParseState *ps, const char *callee, Loc callee_loc,
                      ArgList args, bool piped)
{
    Expr *e = new_expr(ps, EX_CALL, callee_loc, args.depth + 1);
    e->u.call.callee = callee;
    e->u.call.callee_loc = callee_loc;
    e->u.call.args = args.head;
    e->u.call.piped = piped;
    return e;
}

/* `lhs |> f(rest)` is the call f(lhs, rest). It is located at `f`, as a
 * binary expression is at its operator: that is the step that failed
 * when a later pass reports an error in a long chain of pipes. */
static Expr *new_pipe(ParseState *ps, Expr *lhs, const char *callee,
                      Loc callee_loc, ArgList rest)
{
    ArgList args = arg_list_add(ps, (ArgList){0}, NULL, lhs->loc, lhs);
    args.head->next = rest.head;
    args.depth = max_int(args.depth, rest.depth);
    return new_call(ps, callee, callee_loc, args, true);
}

static Expr *new_list(ParseState *ps, Loc loc, ExprList items)
{
    Expr *e = new_expr(ps, EX_LIST, loc, items.depth + 1);
    e->u.list.items = items.head;
    e->u.list.count = items.count;
    return e;
}

static Expr *new_binary(ParseState *ps, Loc loc, char op, Expr *lhs, Expr *rhs)
{
    Expr *e = new_expr(ps, EX_BINARY, loc,
                       max_int(depth_of(lhs), depth_of(rhs)) + 1);
    e->u.bin.op = op;
    e->u.bin.lhs = lhs;
    e->u.bin.rhs = rhs;
    return e;
}

static Expr *new_neg(ParseState *ps, Loc loc, Expr *operand)
{
    Expr *e = new_expr(ps, EX_NEG, loc, depth_of(operand) + 1);
    e->u.operand = operand;
    return e;
}

static ExprList expr_list_add(ExprList list, Expr *e)
{
    if (list.tail)
        list.tail->next = e;
    else
        list.head = e;
    list.tail = e;
    list.count++;
    list.depth = max_int(list.depth, depth_of(e));
    return list;
}

static ArgList arg_list_add(ParseState *ps, ArgList list, const char *name,
                            Loc loc, Expr *value)
{
    Arg *arg = ARENA_NEW(ps->arena, Arg);
    arg->name = name;
    arg->loc = loc;
    arg->value = value;
    if (list.tail)
        list.tail->next = arg;
    else
        list.head = arg;
    list.tail = arg;
    list.depth = max_int(list.depth, depth_of(value));
    return list;
}

static Stmt *new_stmt(ParseState *ps, StmtKind kind, Loc loc, const char *name,
                      Loc name_loc)
{
    Stmt *s = ARENA_NEW(ps->arena, Stmt);
    s->kind = kind;
    s->loc = loc;
    s->name = name;
    s->name_loc = name_loc;
    return s;
}

static StmtList stmt_list_add(StmtList list, Stmt *s)
{
    if (list.tail)
        list.tail->next = s;
    else
        list.head = s;
    list.tail = s;
    return list;
}

static TypeExpr *new_shape_type(ParseState *ps, Loc loc, ExprList dims)
{
    TypeExpr *t = ARENA_NEW(ps->arena, TypeExpr);
    t->loc = loc;
    t->dims = new_list(ps, loc, dims);
    return t;
}

static TypeExpr *new_class_type(ParseState *ps, Loc loc, Expr *nclasses)
{
    TypeExpr *t = ARENA_NEW(ps->arena, TypeExpr);
    t->loc = loc;
    t->is_class = true;
    t->nclasses = nclasses;
    return t;
}

static Setting *new_setting(ParseState *ps, const char *key, Loc loc,
                            Expr *value)
{
    Setting *s = ARENA_NEW(ps->arena, Setting);
    s->key = key;
    s->loc = loc;
    s->value = value;
    return s;
}

static SettingList setting_list_add(SettingList list, Setting *s)
{
    if (list.tail)
        list.tail->next = s;
    else
        list.head = s;
    list.tail = s;
    return list;
}

static void add_model(ParseState *ps, Loc loc, const char *name, Loc name_loc,
                      StmtList body)
{
    Model *m = ARENA_NEW(ps->arena, Model);
    m->name = name;
    m->loc = loc;
    m->name_loc = name_loc;
    m->stmts = body.head;
    *ps->model_tail = m;
    ps->model_tail = &m->next;
}

static void add_train(ParseState *ps, Loc loc, const char *model,
                      Loc model_loc, SettingList body)
{
    Train *t = ARENA_NEW(ps->arena, Train);
    t->model = model;
    t->loc = loc;
    t->model_loc = model_loc;
    t->settings = body.head;
    *ps->train_tail = t;
    ps->train_tail = &t->next;
}

/* ---- syntax error messages ------------------------------------------- */

_Static_assert(YYNTOKENS <= 64, "token sets are 64-bit masks");
typedef uint64_t TokenSet;

#define BIT(sym) ((TokenSet)1 << (sym))
#define EXPR_START \
    (BIT(YYSYMBOL_IDENT) | BIT(YYSYMBOL_NUMBER) | BIT(YYSYMBOL_STRING) | \
     BIT(YYSYMBOL_LPAREN) | BIT(YYSYMBOL_LBRACKET) | BIT(YYSYMBOL_MINUS))
#define STMT_START \
    (BIT(YYSYMBOL_IDENT) | BIT(YYSYMBOL_KW_INPUT) | BIT(YYSYMBOL_KW_LABEL) | \
     BIT(YYSYMBOL_KW_PARAM) | BIT(YYSYMBOL_KW_OUTPUT) | BIT(YYSYMBOL_KW_LOSS))
#define SETTING_START (STMT_START | BIT(YYSYMBOL_KW_CLASS))
#define TYPE_START (BIT(YYSYMBOL_LBRACKET) | BIT(YYSYMBOL_KW_CLASS))
/* Tokens that merely continue what came before: never worth listing
 * when something more telling is expected too. */
#define CONTINUATIONS \
    (BIT(YYSYMBOL_PLUS) | BIT(YYSYMBOL_MINUS) | BIT(YYSYMBOL_STAR) | \
     BIT(YYSYMBOL_SLASH) | BIT(YYSYMBOL_PIPE) | BIT(YYSYMBOL_SEMI))

static bool has_all(TokenSet set, TokenSet group)
{
    return (set & group) == group;
}

/* The symbol `k` places below the top of the parser's stack, or
 * YYSYMBOL_YYEMPTY when the stack is not that deep. */
static yysymbol_kind_t stack_symbol(const yypcontext_t *ctx, int k)
{
    /* state 0 is the bottom of the stack; `resync` carries no meaning */
    for (const yy_state_t *s = ctx->yyssp; *s != 0; s--) {
        yysymbol_kind_t sym = YY_ACCESSING_SYMBOL(*s);
        if (sym == YYSYMBOL_resync)
            continue;
        if (k-- == 0)
            return sym;
    }
    return YYSYMBOL_YYEMPTY;
}

static const char *token_text(const ParseState *ps, const Token *t,
                              char buf[QUOTE_BUF])
{
    return diag_quote(buf, ps->src->text + t->offset, t->len);
}

static const char *punctuation(yysymbol_kind_t sym)
{
    switch (sym) {
    case YYSYMBOL_LBRACE: return "'{'";
    case YYSYMBOL_RBRACE: return "'}'";
    case YYSYMBOL_LPAREN: return "'('";
    case YYSYMBOL_RPAREN: return "')'";
    case YYSYMBOL_LBRACKET: return "'['";
    case YYSYMBOL_RBRACKET: return "']'";
    case YYSYMBOL_COMMA: return "','";
    case YYSYMBOL_COLON: return "':'";
    case YYSYMBOL_SEMI: return "';'";
    case YYSYMBOL_ASSIGN: return "'='";
    case YYSYMBOL_PLUS: return "'+'";
    case YYSYMBOL_MINUS: return "'-'";
    case YYSYMBOL_STAR: return "'*'";
    case YYSYMBOL_SLASH: return "'/'";
    case YYSYMBOL_PIPE: return "'|>'";
    case YYSYMBOL_KW_MODEL: return "'model'";
    case YYSYMBOL_KW_TRAIN: return "'train'";
    case YYSYMBOL_KW_INPUT: return "'input'";
    case YYSYMBOL_KW_LABEL: return "'label'";
    case YYSYMBOL_KW_PARAM: return "'param'";
    case YYSYMBOL_KW_OUTPUT: return "'output'";
    case YYSYMBOL_KW_LOSS: return "'loss'";
    case YYSYMBOL_KW_CLASS: return "'class'";
    default: return NULL;
    }
}

static bool is_keyword(yysymbol_kind_t sym)
{
    return sym >= YYSYMBOL_KW_MODEL && sym <= YYSYMBOL_KW_CLASS;
}

/* "identifier 'relu'", "number '3'", "keyword 'loss'", "')'" ... */
static void describe_lookahead(const ParseState *ps, yysymbol_kind_t sym,
                               char *buf, size_t size)
{
    char text[QUOTE_BUF];
    switch (sym) {
    case YYSYMBOL_YYEOF:
        snprintf(buf, size, "end of file");
        return;
    case YYSYMBOL_IDENT:
        snprintf(buf, size, "identifier '%s'", token_text(ps, &ps->cur, text));
        return;
    case YYSYMBOL_NUMBER:
        snprintf(buf, size, "number '%s'", token_text(ps, &ps->cur, text));
        return;
    case YYSYMBOL_STRING:
        snprintf(buf, size, "string %s", token_text(ps, &ps->cur, text));
        return;
    case YYSYMBOL_UNCLOSED_BLOCK:
        snprintf(buf, size, "keyword '%s'", token_text(ps, &ps->cur, text));
        return;
    default:
        break;
    }
    const char *p = punctuation(sym);
    if (p)
        snprintf(buf, size, "%s%s", is_keyword(sym) ? "keyword " : "", p);
    else
        snprintf(buf, size, "%s", yysymbol_name(sym));
}

/* What an expected identifier is, judging by the token before it. */
static const char *name_role(yysymbol_kind_t top)
{
    switch (top) {
    case YYSYMBOL_KW_MODEL:
    case YYSYMBOL_KW_TRAIN: return "a model name";
    case YYSYMBOL_KW_INPUT: return "an input name";
    case YYSYMBOL_KW_LABEL: return "a label name";
    case YYSYMBOL_KW_PARAM: return "a parameter name";
    case YYSYMBOL_KW_OUTPUT: return "an output name";
    case YYSYMBOL_PIPE: return "a function name";
    case YYSYMBOL_COMMA: return "an option name";
    default: return "a name";
    }
}

static const char *token_name(yysymbol_kind_t sym, yysymbol_kind_t top)
{
    switch (sym) {
    case YYSYMBOL_YYEOF: return "end of file";
    case YYSYMBOL_IDENT: return name_role(top);
    case YYSYMBOL_NUMBER: return "a number";
    case YYSYMBOL_STRING: return "a string";
    default: break;
    }
    const char *p = punctuation(sym);
    return p ? p : yysymbol_name(sym);
}

/* Joins phrases as "A", "A or B", "A, B or C". */
static void join_phrases(const char **phrases, int n, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < size; i++) {
        const char *sep = i == 0 ? "" : i == n - 1 ? " or " : ", ";
        int w = snprintf(buf + used, size - used, "%s%s", sep, phrases[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* Turns the expected token set into words: whole groups become "an
 * expression", "a statement" or "a setting"; separators and operators
 * are dropped when something more telling is expected. */
static void describe_expected(TokenSet set, yysymbol_kind_t top, char *buf,
                              size_t size)
{
    const char *phrases[YYNTOKENS + 3];
    int n = 0;
    if (has_all(set, EXPR_START)) {
        phrases[n++] = "an expression";
        set &= ~EXPR_START;
    }
    if (has_all(set, SETTING_START)) {
        phrases[n++] = "a setting";
        set &= ~SETTING_START;
    } else if (has_all(set, STMT_START)) {
        phrases[n++] = "a statement";
        set &= ~STMT_START;
    }
    if (set == TYPE_START && n == 0) {
        phrases[n++] = "a type ('[...]' or 'class(N)')";
        set = 0;
    }
    if (n > 0 || (set & ~CONTINUATIONS) != 0)
        set &= ~CONTINUATIONS;
    if (n > 0 || (set & ~BIT(YYSYMBOL_YYEOF)) != 0)
        set &= ~BIT(YYSYMBOL_YYEOF);
    /* "',' or ')'" reads as "more, or the end" */
    if (set & BIT(YYSYMBOL_COMMA)) {
        phrases[n++] = "','";
        set &= ~BIT(YYSYMBOL_COMMA);
    }
    for (int sym = 0; sym < YYNTOKENS; sym++)
        if (set & BIT(sym))
            phrases[n++] = token_name((yysymbol_kind_t)sym, top);
    join_phrases(phrases, n, buf, size);
}

/* " after ..." naming what was just read, when the top of the stack is
 * that token (after a reduction the token is no longer telling). */
static void describe_context(const yypcontext_t *ctx, const ParseState *ps,
                             char *buf, size_t size)
{
    yysymbol_kind_t top = stack_symbol(ctx, 0);
    yysymbol_kind_t below = stack_symbol(ctx, 1);
    buf[0] = '\0';
    if (top == YYSYMBOL_IDENT) {
        const char *what = NULL;
        switch (below) {
        case YYSYMBOL_KW_MODEL:
        case YYSYMBOL_KW_TRAIN: what = "the model name"; break;
        case YYSYMBOL_KW_INPUT: what = "the input name"; break;
        case YYSYMBOL_KW_LABEL: what = "the label name"; break;
        case YYSYMBOL_KW_PARAM: what = "the parameter name"; break;
        case YYSYMBOL_KW_OUTPUT: what = "the output name"; break;
        case YYSYMBOL_COMMA: what = "the option name"; break;
        case YYSYMBOL_model_body: what = "the name in a let statement"; break;
        default: break;
        }
        if (what) {
            snprintf(buf, size, " after %s", what);
            return;
        }
    }
    if ((top < YYNTOKENS && top != YYSYMBOL_YYerror && top != YYSYMBOL_YYEMPTY) ||
        top == YYSYMBOL_key) {
        char text[QUOTE_BUF];
        snprintf(buf, size, " after '%s'", token_text(ps, &ps->prev, text));
    }
}

static yysymbol_kind_t closer_of(char open)
{
    return open == '(' ? YYSYMBOL_RPAREN
         : open == '[' ? YYSYMBOL_RBRACKET
                       : YYSYMBOL_RBRACE;
}

static char closer_char(char open)
{
    return open == '(' ? ')' : open == '[' ? ']' : '}';
}

/* The innermost bracket open before the lookahead was scanned. */
static const Bracket *open_bracket_before_lookahead(const ParseState *ps)
{
    int depth = ps->depth_before_cur;
    return depth > 0 ? &ps->brackets[depth - 1] : NULL;
}

/* When the innermost bracket may be closed here and nothing but its
 * closer is telling, say which bracket: "expected ')' to close '(' at
 * 3:14". */
static bool report_unclosed(ParseState *ps, yysymbol_kind_t got, Loc loc,
                            const char *unexpected, TokenSet set)
{
    const Bracket *open = open_bracket_before_lookahead(ps);
    if (!open || !(set & BIT(closer_of(open->open))))
        return false;
    /* End of file, or a block that starts only at top level, means the
     * bracket was never closed, whatever else might have come here. */
    bool cannot_be_inside = got == YYSYMBOL_YYEOF || got == YYSYMBOL_UNCLOSED_BLOCK;
    TokenSet rest = set & ~BIT(closer_of(open->open));
    if (!cannot_be_inside && (rest & ~(CONTINUATIONS | BIT(YYSYMBOL_COMMA))))
        return false;
    /* On the same line a list goes on: more likely a ',' is missing. */
    if (!cannot_be_inside && (rest & BIT(YYSYMBOL_COMMA)) &&
        ps->cur.loc.line == ps->prev.loc.line)
        return false;
    diag_error(ps->diag, loc, "unexpected %s, expected '%c' to close '%c' at %d:%d",
               unexpected, closer_char(open->open), open->open, open->loc.line,
               open->loc.col);
    return true;
}

static int yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner,
                                 ParseState *ps)
{
    (void)scanner;
    if (ps->stopped || ps->quiet)
        return 0;
    ps->quiet = true;
    yysymbol_kind_t got = yypcontext_token(ctx);
    Loc loc = loc_of(*yypcontext_location(ctx));
    char unexpected[QUOTE_BUF + 32];
    describe_lookahead(ps, got, unexpected, sizeof unexpected);

    if (ps->cur_unmatched) {
        char close = ps->src->text[ps->cur.offset];
        diag_error(ps->diag, loc, "unexpected '%c' with no matching '%c'", close,
                   close == ')' ? '(' : close == ']' ? '[' : '{');
        return 0;
    }

    yysymbol_kind_t expected[YYNTOKENS];
    int n = yypcontext_expected_tokens(ctx, expected, YYNTOKENS);
    TokenSet set = 0;
    for (int i = 0; i < n; i++)
        set |= BIT(expected[i]);

    if (report_unclosed(ps, got, loc, unexpected, set))
        return 0;

    char wanted[256], context[QUOTE_BUF + 32];
    describe_expected(set, stack_symbol(ctx, 0), wanted, sizeof wanted);
    describe_context(ctx, ps, context, sizeof context);
    if (wanted[0])
        diag_error(ps->diag, loc, "unexpected %s, expected %s%s", unexpected,
                   wanted, context);
    else
        diag_error(ps->diag, loc, "unexpected %s%s", unexpected, context);
    return 0;
}

/* Bison calls this only when its stack is full, which with brackets
 * already limited by the scanner means a long run of unary minuses. */
static void yyerror(const YYLTYPE *lloc, yyscan_t scanner, ParseState *ps,
                    const char *msg)
{
    (void)scanner;
    if (ps->stopped)
        return;
    if (strcmp(msg, "memory exhausted") == 0)
        diag_error(ps->diag, loc_of(*lloc), "expression nested too deeply (limit %d)",
                   NEST_LIMIT);
    else
        diag_error(ps->diag, loc_of(*lloc), "%s", msg);
    ps->stopped = true;
}

/* ---- entry point ------------------------------------------------------ */

Program *parse_program(Arena *a, Diag *d, const Source *src)
{
    /* The state lives in the arena, not in this frame: flex's fatal error
     * handler longjmps back here and automatic variables changed since
     * setjmp would be indeterminate. */
    ParseState *ps = ARENA_NEW(a, ParseState);
    ps->arena = a;
    ps->diag = d;
    ps->src = src;
    ps->line = ps->col = 1;
    ps->last_end = (Loc){1, 1};
    ps->errors_before = d->nerrors;
    ps->program = ARENA_NEW(a, Program);
    ps->program->src = src;
    ps->model_tail = &ps->program->models;
    ps->train_tail = &ps->program->trains;

    if (src->len > (size_t)INT_MAX - 2) {
        diag_error(d, (Loc){0, 0}, "file too large to parse");
        return NULL;
    }
    yyscan_t scanner;
    if (yylex_init_extra(ps, &scanner) != 0) {
        diag_error(d, (Loc){0, 0}, "out of memory starting the scanner");
        return NULL;
    }
    if (setjmp(ps->fatal) == 0) {
        yy_scan_bytes(src->text ? src->text : "", (int)src->len, scanner);
        yyparse(scanner, ps);
    }
    yylex_destroy(scanner);
    return d->nerrors == ps->errors_before ? ps->program : NULL;
}
