/* DER (X.690) through the bounded cursor, and the one writer every module encodes
 * with. The reader takes one TLV at a time with DER's length rules (definite,
 * shortest form; BER's long forms only when a caller names SMKI_DER_BER_LENGTHS) and
 * walks a whole encoding with DER's rules to a bounded depth. The writer appends into
 * a fixed buffer or a growing one, reserves the longest length form for a nested TLV
 * and closes it to the shortest, so one pass writes any nesting. */
#include "base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Reader ------------------------------------------------------------------------- */

/* " at offset N" when the caller gave where offsets count from, else "". */
static const char *where(char buf[40], const uint8_t *p, const uint8_t *base)
{
    if (!base || p < base) return "";
    snprintf(buf, 40, " at offset %zu", (size_t)(p - base));
    return buf;
}

static int read_len(smki_cursor_t *c, unsigned flags, const char *what, const char *at, size_t *len)
{
    uint8_t first;
    ENSURE(smki_cur_u8(c, &first) == 0, SMKI_E_INPUT, "truncated: %s%s has no length", what, at);
    if (first < 0x80) {
        *len = first;
        return 0;
    }
    size_t n = first & 0x7f;
    ENSURE(n != 0, SMKI_E_INPUT, "%s%s: indefinite length (DER lengths are definite, X.690 10.1)", what, at);
    ENSURE(n <= 4, SMKI_E_INPUT, "%s%s: length form 0x%02x (more than 4 length octets)", what, at, first);
    const uint8_t *o;
    ENSURE(smki_cur_take(c, n, &o) == 0, SMKI_E_INPUT, "truncated: %s%s: length octets cut short", what, at);
    size_t v = 0;
    for (size_t i = 0; i < n; i++) v = v << 8 | o[i];
    ENSURE((flags & SMKI_DER_BER_LENGTHS) || (o[0] != 0 && v >= 0x80), SMKI_E_INPUT,
           "%s%s: length %zu not in its shortest form (X.690 10.1)", what, at, v);
    *len = v;
    return 0;
}

static int read_tlv(smki_cursor_t *c, const uint8_t *base, unsigned flags, const char *what, smki_der_tlv *t)
{
    smki_cursor_t save = *c;
    char buf[40];
    const char *at = where(buf, c->p, base);
    size_t len;
    memset(t, 0, sizeof *t); /* set on every path: a refused read leaves an empty TLV */
    ENSURE(c->left > 0, SMKI_E_INPUT, "truncated: %s missing%s", what, at);
    t->start = c->p;
    t->offset = base && c->p >= base ? (size_t)(c->p - base) : 0;
    t->tag = c->p[0];
    ENSURE((t->tag & 0x1f) != 0x1f, SMKI_E_INPUT, "%s%s: high-tag-number form 0x%02x (no field read here uses it)",
           what, at, t->tag);
    c->p++;
    c->left--;
    int rc = read_len(c, flags, what, at, &len);
    if (rc == 0 && len > c->left)
        rc = SMKI_FAIL(SMKI_E_INPUT, "truncated: %s%s says %zu octets, %zu remain", what, at, len, c->left);
    if (rc < 0) {
        *c = save;
        return rc;
    }
    t->body = smki_cursor(c->p, len);
    c->p += len;
    c->left -= len;
    t->total = save.left - c->left;
    return 0;
}

int smki_der_read(smki_cursor_t *c, const uint8_t *base, unsigned flags, smki_der_tlv *t)
{
    return read_tlv(c, base, flags, "TLV", t);
}

int smki_der_expect(smki_cursor_t *c, const uint8_t *base, unsigned flags, uint8_t tag, const char *what,
                    smki_der_tlv *t)
{
    char buf[40];
    const char *at = where(buf, c->p, base);
    ENSURE(c->left > 0, SMKI_E_INPUT, "truncated: %s missing%s", what, at);
    ENSURE(c->p[0] == tag, SMKI_E_INPUT, "expected %s (tag 0x%02x)%s, found tag 0x%02x", what, tag, at, c->p[0]);
    return read_tlv(c, base, flags, what, t);
}

int smki_der_peek(const smki_cursor_t *c)
{
    return c->left ? c->p[0] : -1;
}

int smki_der_u64(const smki_cursor_t *body, const char *what, uint64_t *out)
{
    smki_cursor_t v = *body;
    *out = 0;
    ENSURE(v.left >= 1 && v.left <= 9, SMKI_E_INPUT, "%s: INTEGER of %zu octet(s)", what, v.left);
    ENSURE((v.p[0] & 0x80) == 0, SMKI_E_INPUT, "%s: negative INTEGER", what);
    ENSURE(v.left < 9 || v.p[0] == 0, SMKI_E_INPUT, "%s: INTEGER above 2^64", what);
    uint64_t x = 0;
    for (size_t i = 0; i < v.left; i++) x = x << 8 | v.p[i];
    *out = x;
    return 0;
}

int smki_der_check_oid(const smki_der_tlv *t, const char *what)
{
    const uint8_t *v = t->body.p;
    size_t len = t->body.left;
    ENSURE(len > 0, SMKI_E_INPUT, "%s is an empty OBJECT IDENTIFIER", what);
    for (size_t i = 0; i < len; i++)
        ENSURE(!(v[i] == 0x80 && (i == 0 || !(v[i - 1] & 0x80))), SMKI_E_INPUT,
               "%s has a subidentifier not in its shortest form (X.690 8.19.2)", what);
    ENSURE(!(v[len - 1] & 0x80), SMKI_E_INPUT, "%s ends inside a subidentifier", what);
    return 0;
}

/* The rules of DER for a primitive universal type (X.690 10, 11). */
static int check_primitive(const smki_der_tlv *t)
{
    const uint8_t *v = t->body.p;
    size_t len = t->body.left, at = t->offset;
    char what[48];
    if ((t->tag & 0xc0) != 0) return 0; /* context, application, private: no universal rules */
    switch (t->tag) {
    case 0x00:
        return SMKI_FAIL(SMKI_E_INPUT, "end-of-contents octets at offset %zu (DER has no indefinite lengths)", at);
    case 0x01:
        ENSURE(len == 1 && (v[0] == 0x00 || v[0] == 0xff), SMKI_E_INPUT,
               "BOOLEAN at offset %zu is not one octet 00 or FF (X.690 11.1)", at);
        return 0;
    case 0x02:
    case 0x0a:
        ENSURE(len >= 1, SMKI_E_INPUT, "empty INTEGER at offset %zu", at);
        ENSURE(len == 1 || !((v[0] == 0x00 && !(v[1] & 0x80)) || (v[0] == 0xff && (v[1] & 0x80))), SMKI_E_INPUT,
               "INTEGER at offset %zu is not minimal (X.690 8.3.2)", at);
        return 0;
    case 0x03:
        ENSURE(len >= 1 && v[0] <= 7, SMKI_E_INPUT, "BIT STRING at offset %zu: bad unused-bits octet", at);
        ENSURE(len > 1 || v[0] == 0, SMKI_E_INPUT, "empty BIT STRING at offset %zu claims unused bits", at);
        ENSURE(len == 1 || (v[len - 1] & ((1u << v[0]) - 1)) == 0, SMKI_E_INPUT,
               "BIT STRING at offset %zu: unused bits are not zero (X.690 11.2.1)", at);
        return 0;
    case 0x05:
        ENSURE(len == 0, SMKI_E_INPUT, "NULL at offset %zu has contents", at);
        return 0;
    case 0x06:
        snprintf(what, sizeof what, "OBJECT IDENTIFIER at offset %zu", at);
        return smki_der_check_oid(t, what);
    case 0x10:
    case 0x11:
        return SMKI_FAIL(SMKI_E_INPUT, "SEQUENCE or SET at offset %zu in primitive form", at);
    default:
        return 0;
    }
}

static int walk(smki_cursor_t c, const uint8_t *base, int depth)
{
    ENSURE(depth <= SMKI_DER_MAX_DEPTH, SMKI_E_INPUT, "DER nested deeper than %d", SMKI_DER_MAX_DEPTH);
    while (c.left) {
        smki_der_tlv t;
        GUARD(smki_der_read(&c, base, SMKI_DER_STRICT, &t));
        if (t.tag & 0x20) {
            ENSURE((t.tag & 0xc0) != 0 || t.tag == 0x30 || t.tag == 0x31, SMKI_E_INPUT,
                   "constructed encoding of universal type %u at offset %zu (DER uses the primitive form)",
                   (unsigned)(t.tag & 0x1f), t.offset);
            GUARD(walk(t.body, base, depth + 1));
        } else {
            GUARD(check_primitive(&t));
        }
    }
    return 0;
}

int smki_der_check_strict(smki_cursor_t c, const uint8_t *base)
{
    return walk(c, base, 0);
}

/* ---- Writer ------------------------------------------------------------------------- */

/* A reserved length is 4 octets (0x83 and three): no TLV smki writes comes near 16 MiB. */
#define WR_RESERVE 4
#define WR_MAX_LEN 0xFFFFFFu

enum { WR_NO_ROOM = 1, WR_NOMEM, WR_MISUSE, WR_INVALID };

static void wr_fail(smki_writer_t *w, int why)
{
    if (!w->err) w->err = why;
}

void smki_wr_invalid(smki_writer_t *w)
{
    wr_fail(w, WR_INVALID);
}

void smki_writer_fixed(smki_writer_t *w, uint8_t *buf, size_t cap)
{
    memset(w, 0, sizeof *w);
    w->p = buf;
    w->cap = buf ? cap : 0;
}

void smki_writer_grow(smki_writer_t *w)
{
    memset(w, 0, sizeof *w);
    w->grows = 1;
}

void smki_wr_free(smki_writer_t *w)
{
    if (w->grows) free(w->p);
    memset(w, 0, sizeof *w);
}

/* Room for n more octets, growing a growing buffer; 0 if there is. */
static int room(smki_writer_t *w, size_t n)
{
    if (w->err) return -1;
    if (n <= w->cap - w->len) return 0;
    if (!w->grows || n > SIZE_MAX / 2 - w->len) {
        wr_fail(w, w->grows ? WR_MISUSE : WR_NO_ROOM);
        return -1;
    }
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + n) cap *= 2;
    uint8_t *p = realloc(w->p, cap);
    if (!p) {
        wr_fail(w, WR_NOMEM);
        return -1;
    }
    w->p = p;
    w->cap = cap;
    return 0;
}

void smki_wr_raw(smki_writer_t *w, const void *p, size_t n)
{
    if (room(w, n) < 0) return;
    if (n) memcpy(w->p + w->len, p, n);
    w->len += n;
}

void smki_wr_u8(smki_writer_t *w, uint8_t b)
{
    smki_wr_raw(w, &b, 1);
}

void smki_wr_be16(smki_writer_t *w, uint16_t v)
{
    uint8_t b[2];
    smki_put_be16(b, v);
    smki_wr_raw(w, b, sizeof b);
}

void smki_wr_be32(smki_writer_t *w, uint32_t v)
{
    uint8_t b[4];
    smki_put_be32(b, v);
    smki_wr_raw(w, b, sizeof b);
}

void smki_wr_be64(smki_writer_t *w, uint64_t v)
{
    uint8_t b[8];
    smki_put_be64(b, v);
    smki_wr_raw(w, b, sizeof b);
}

static size_t len_octets(size_t n)
{
    return n < 0x80 ? 1 : n <= 0xFF ? 2 : n <= 0xFFFF ? 3 : n <= 0xFFFFFF ? 4 : 5;
}

static void put_len(uint8_t *at, size_t n)
{
    size_t k = len_octets(n);
    if (k == 1) {
        at[0] = (uint8_t)n;
        return;
    }
    at[0] = (uint8_t)(0x80 | (k - 1));
    for (size_t i = 1; i < k; i++) at[i] = (uint8_t)(n >> (8 * (k - 1 - i)));
}

void smki_wr_der(smki_writer_t *w, uint8_t tag, const void *content, size_t n)
{
    uint8_t head[1 + WR_RESERVE];
    if (n > WR_MAX_LEN) {
        wr_fail(w, w->grows ? WR_MISUSE : WR_NO_ROOM);
        return;
    }
    head[0] = tag;
    put_len(head + 1, n);
    if (room(w, 1 + len_octets(n) + n) < 0) return; /* all of it or none */
    smki_wr_raw(w, head, 1 + len_octets(n));
    smki_wr_raw(w, content, n);
}

size_t smki_der_head_len(size_t n)
{
    return 1 + len_octets(n);
}

void smki_wr_der_len(smki_writer_t *w, size_t n)
{
    uint8_t len[5];
    if (n > (size_t)0xFFFFFFFFu) {
        wr_fail(w, w->grows ? WR_MISUSE : WR_NO_ROOM);
        return;
    }
    put_len(len, n);
    smki_wr_raw(w, len, len_octets(n));
}

void smki_wr_der_head(smki_writer_t *w, uint8_t tag, size_t n)
{
    smki_wr_u8(w, tag);
    smki_wr_der_len(w, n);
}

smki_der_mark smki_wr_der_begin(smki_writer_t *w, uint8_t tag)
{
    uint8_t head[1 + WR_RESERVE] = {tag};
    smki_wr_raw(w, head, sizeof head);
    w->open++;
    return w->len;
}

void smki_wr_der_end(smki_writer_t *w, smki_der_mark m)
{
    if (w->err) return;
    if (w->open == 0 || m < WR_RESERVE || m > w->len) { /* not an open mark of this writer: a bug */
        wr_fail(w, WR_MISUSE);
        return;
    }
    size_t n = w->len - m;
    if (n > WR_MAX_LEN) {
        wr_fail(w, w->grows ? WR_MISUSE : WR_NO_ROOM);
        return;
    }
    size_t k = len_octets(n);
    uint8_t *len_at = w->p + m - WR_RESERVE;
    put_len(len_at, n);
    if (k < WR_RESERVE) memmove(len_at + k, w->p + m, n);
    w->len -= WR_RESERVE - k;
    w->open--;
}

void smki_wr_der_uint(smki_writer_t *w, const uint8_t *be, size_t n)
{
    while (n > 1 && be[0] == 0) {
        be++;
        n--;
    }
    if (n == 0) {
        smki_wr_der(w, 0x02, "\0", 1);
        return;
    }
    smki_der_mark m = smki_wr_der_begin(w, 0x02);
    if (be[0] & 0x80) smki_wr_u8(w, 0x00);
    smki_wr_raw(w, be, n);
    smki_wr_der_end(w, m);
}

void smki_wr_der_u64(smki_writer_t *w, uint8_t tag, uint64_t v)
{
    uint8_t b[9];
    size_t n = 0;
    int started = 0;
    for (int i = 7; i >= 0; i--) {
        uint8_t o = (uint8_t)(v >> (8 * i));
        if (!started && o == 0 && i > 0) continue;
        if (!started && (o & 0x80)) b[n++] = 0;
        started = 1;
        b[n++] = o;
    }
    smki_wr_der(w, tag, b, n);
}

int smki_wr_check(const smki_writer_t *w, const char *what)
{
    switch (w->err) {
    case 0: return 0;
    case WR_NO_ROOM: return SMKI_FAIL(SMKI_E_INTERNAL, "%s does not fit in %zu octets", what, w->cap);
    case WR_NOMEM: return SMKI_FAIL(SMKI_E_NOMEM, "out of memory writing %s", what);
    case WR_INVALID: return SMKI_FAIL(SMKI_E_INTERNAL, "%s holds a value that cannot be encoded", what);
    default:
        return SMKI_FAIL(SMKI_E_INTERNAL, "writing %s: a length over the limit (16 MiB for a nested TLV, 4 GiB for a known one), or a DER end "
                                              "without its begin", what);
    }
}

int smki_wr_finish(smki_writer_t *w, const char *what, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int rc = smki_wr_check(w, what);
    if (rc == 0 && w->open)
        rc = SMKI_FAIL(SMKI_E_INTERNAL, "writing %s: %u DER TLV(s) begun and never ended", what, w->open);
    if (rc == 0 && !w->grows) rc = SMKI_FAIL(SMKI_E_INTERNAL, "writing %s: a fixed buffer is not handed over", what);
    if (rc < 0) {
        smki_wr_free(w);
        return rc;
    }
    *out = w->p;
    *len = w->len;
    w->p = NULL;
    w->len = w->cap = 0;
    return 0;
}
