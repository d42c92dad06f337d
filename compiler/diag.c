/* diag.c — gcc-style diagnostics.
 *
 *   path:LINE:COL: error: message
 *   the source line
 *          ^
 *
 * Output never contains raw control bytes or invalid UTF-8 from the
 * input (a binary file must not garble the terminal): such bytes are
 * shown as \xNN, and the caret line is widened to match. */
#include "frontend.h"

#include <stdlib.h>
#include <string.h>

/* Lines wider than WIDE_LINE columns are shown as a window around the
 * caret: quoting a megabyte line would bury the message. */
enum { WIDE_LINE = 240, HALF_WINDOW = 100 };

void diag_init(Diag *d, const Source *src, FILE *out)
{
    d->src = src;
    d->out = out;
    d->nerrors = 0;
    d->max_errors = DIAG_DEFAULT_MAX_ERRORS;
}

int diag_limit(const Diag *d)
{
    return d->max_errors > 0 ? d->max_errors : DIAG_DEFAULT_MAX_ERRORS;
}

bool diag_stopped(const Diag *d)
{
    return d->nerrors > diag_limit(d);
}

static bool needs_escape(unsigned char c)
{
    return c < 0x20 || c >= 0x7f;
}

char *diag_quote(char buf[QUOTE_BUF], const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t shown = n > QUOTE_MAX ? QUOTE_MAX : n;
    char *p = buf;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        if (needs_escape(c)) {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        } else {
            *p++ = (char)c;
        }
    }
    if (shown < n) {
        memcpy(p, "...", 3);
        p += 3;
    }
    *p = '\0';
    return buf;
}

static const char *diag_path(const Diag *d)
{
    return d->src && d->src->path ? d->src->path : "nnc";
}

/* Writes the formatted message, escaping what a terminal must not see. */
static void put_message(FILE *out, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return;
    char *msg = malloc((size_t)n + 1);
    if (!msg) {
        fputs(fmt, out);
        return;
    }
    vsnprintf(msg, (size_t)n + 1, fmt, ap);
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (needs_escape(c))
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    free(msg);
}

/* Length of the well-formed UTF-8 sequence starting at s, or 0. */
static size_t utf8_length(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        if (c == 0xf4)
            hi = 0x8f; /* beyond U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/* How one character of a source line is shown: `bytes` bytes of input,
 * printed raw or as \xNN escapes, taking `width` caret columns. */
typedef struct Glyph {
    size_t bytes;
    bool escaped;
    int width;
} Glyph;

static Glyph glyph_at(const unsigned char *s, size_t avail)
{
    if (s[0] == '\t' || (s[0] >= 0x20 && s[0] < 0x7f))
        return (Glyph){1, false, 1};
    size_t n = utf8_length(s, avail);
    if (n > 0)
        return (Glyph){n, false, 1};
    return (Glyph){1, true, 4};
}

static void put_glyph(FILE *out, const unsigned char *s, Glyph g)
{
    if (g.escaped)
        fprintf(out, "\\x%02x", s[0]);
    else
        fwrite(s, 1, g.bytes, out);
}

/* Spaces for the caret line; tabs stay tabs so the caret lines up
 * whatever the reader's tab width. */
static void put_caret_space(FILE *out, const unsigned char *s, Glyph g)
{
    if (s[0] == '\t')
        fputc('\t', out);
    else
        fprintf(out, "%*s", g.width, "");
}

/* Chooses which bytes [*start, *end) of the line to show: all of it, or
 * for a very wide line (minified, binary) about HALF_WINDOW columns on
 * either side of the caret. Both ends fall on character boundaries. */
static void choose_window(const unsigned char *line, size_t len, size_t caret,
                          size_t *start, size_t *end)
{
    size_t width = 0;
    for (size_t i = 0; i < len && width <= WIDE_LINE;) {
        Glyph g = glyph_at(line + i, len - i);
        width += (size_t)g.width;
        i += g.bytes;
    }
    if (width <= WIDE_LINE) {
        *start = 0;
        *end = len;
        return;
    }
    /* Walk to the caret, dragging the start along behind it. */
    size_t s = 0, i = 0;
    width = 0;
    while (i < caret) {
        Glyph g = glyph_at(line + i, len - i);
        if (i + g.bytes > caret)
            break;
        width += (size_t)g.width;
        i += g.bytes;
        while (width > HALF_WINDOW) {
            Glyph h = glyph_at(line + s, len - s);
            width -= (size_t)h.width;
            s += h.bytes;
        }
    }
    *start = s;
    width = 0;
    while (i < len) {
        Glyph g = glyph_at(line + i, len - i);
        if (width + (size_t)g.width > HALF_WINDOW)
            break;
        width += (size_t)g.width;
        i += g.bytes;
    }
    *end = i;
}

static void put_source_line(FILE *out, const unsigned char *line, size_t len,
                            int col)
{
    size_t caret = col > 0 ? (size_t)col - 1 : 0;
    if (caret > len)
        caret = len;
    size_t start, end;
    choose_window(line, len, caret, &start, &end);

    if (start > 0)
        fputs("...", out);
    for (size_t i = start; i < end;) {
        Glyph g = glyph_at(line + i, len - i);
        put_glyph(out, line + i, g);
        i += g.bytes;
    }
    if (end < len)
        fputs("...", out);
    fputc('\n', out);

    if (start > 0)
        fputs("   ", out);
    for (size_t i = start; i < caret;) {
        Glyph g = glyph_at(line + i, len - i);
        if (i + g.bytes > caret)
            break; /* the column points inside this character */
        put_caret_space(out, line + i, g);
        i += g.bytes;
    }
    fputs("^\n", out);
}

/* Finds line `lineno` (1-based) of the source; false if there is none. */
static bool find_line(const Source *src, int lineno, const unsigned char **line,
                      size_t *len)
{
    if (!src || !src->text || lineno < 1)
        return false;
    const char *p = src->text, *end = src->text + src->len;
    for (int n = 1; n < lineno; n++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return false;
        p = nl + 1;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *stop = nl ? nl : end;
    if (stop > p && stop[-1] == '\r')
        stop--; /* CRLF files: the '\r' is part of the line break */
    *line = (const unsigned char *)p;
    *len = (size_t)(stop - p);
    return true;
}

static void report(Diag *d, const char *kind, Loc loc, const char *fmt,
                   va_list ap)
{
    FILE *out = d->out ? d->out : stderr;
    const unsigned char *line = NULL;
    size_t len = 0;
    bool has_line = loc.line > 0 && find_line(d->src, loc.line, &line, &len);

    if (loc.line > 0)
        fprintf(out, "%s:%d:%d: %s: ", diag_path(d), loc.line, loc.col, kind);
    else
        fprintf(out, "%s: %s: ", diag_path(d), kind);
    put_message(out, fmt, ap);
    fputc('\n', out);
    if (has_line)
        put_source_line(out, line, len, loc.col);
}

void diag_error(Diag *d, Loc loc, const char *fmt, ...)
{
    d->nerrors++;
    int limit = diag_limit(d);
    if (d->nerrors > limit) {
        if (d->nerrors == limit + 1)
            fprintf(d->out ? d->out : stderr,
                    "%s: error: too many errors, stopping\n", diag_path(d));
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    report(d, "error", loc, fmt, ap);
    va_end(ap);
}

void diag_note(Diag *d, Loc loc, const char *fmt, ...)
{
    /* A note explains the error before it; it goes when that one did. */
    if (diag_stopped(d))
        return;
    va_list ap;
    va_start(ap, fmt);
    report(d, "note", loc, fmt, ap);
    va_end(ap);
}
