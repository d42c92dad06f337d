/* frontend.h — declarations private to the front end: what lexer.l,
 * parser.y and diag.c share beyond the public contract in nnc.h. */
#ifndef NNC_FRONTEND_H
#define NNC_FRONTEND_H

#include "nnc.h"

#include <setjmp.h>

enum {
    /* Deepest nesting of expressions, lists and blocks. Every later pass
     * may walk the AST recursively, so the parser guarantees this bound. */
    NEST_LIMIT = 200,
    DIAG_DEFAULT_MAX_ERRORS = 20,
    /* Source text quoted in a message is cut after this many bytes. */
    QUOTE_MAX = 32,
    /* Buffer size that always holds a diag_quote() result. */
    QUOTE_BUF = 4 * QUOTE_MAX + 8,
};

/* diag.c helpers */
int diag_limit(const Diag *d);       /* effective max_errors */
bool diag_stopped(const Diag *d);    /* more errors than the limit so far */
/* Copies n bytes of s into buf for quoting in a message: bytes < 0x20 or
 * >= 0x7f become \xNN and long text is cut with "...". Returns buf. */
char *diag_quote(char buf[QUOTE_BUF], const char *s, size_t n);

/* One token the scanner returned, kept for error messages. */
typedef struct Token {
    int kind;      /* bison token kind */
    Loc loc;
    size_t offset; /* into Source.text */
    size_t len;
} Token;

typedef struct Bracket {
    char open; /* '(', '[' or '{' */
    Loc loc;
} Bracket;

/* State shared by the scanner (as its extra data) and the parser. */
typedef struct ParseState {
    Arena *arena;
    Diag *diag;
    const Source *src;
    jmp_buf fatal; /* flex's YY_FATAL_ERROR jumps back to parse_program */

    /* scanner position: where the next byte lies */
    int line, col;
    size_t offset;

    Token prev, cur;   /* the last two tokens: cur is the parser's lookahead */
    Loc last_end;      /* just past the last token; where EOF is reported */
    bool cur_unmatched; /* cur is a closing bracket that closes nothing */

    /* Open brackets. depth_before_cur is the depth before cur was
     * scanned; entries above depth stay intact until overwritten, so
     * the parser can see the brackets open just before its lookahead. */
    Bracket brackets[2 * NEST_LIMIT + 2];
    int depth, depth_before_cur;
    int expr_nesting, block_nesting;

    /* `model` or `train` inside a block means blocks were left open: the
     * scanner hands the parser UNCLOSED_BLOCK (an error), then as many
     * '}' as are missing, then the keyword again, so the next block
     * parses normally. */
    int pending_braces;
    int replay_kind;   /* the keyword to hand over again, or 0 */
    Token replay, replay_prev;

    /* After an error, further syntax errors are not reported until a
     * statement, setting or block begins a line: they are most likely
     * the same mistake seen again. */
    bool quiet;

    bool stopped;      /* give up: too many errors or nesting too deep */
    int errors_before; /* diag->nerrors when parsing began */

    Program *program;
    Model **model_tail;
    Train **train_tail;
} ParseState;

#endif /* NNC_FRONTEND_H */
