/* Strict DER over the bounded cursor (X.690 section 10): what OpenSSL's parser
 * tolerates (long-form lengths that fit the short form, BOOLEAN 01, constructed
 * strings) is named here, with where it sits. */
#include "der.h"

#include <stddef.h>

#define DER_MAX_DEPTH 32

static size_t offset_of(const uint8_t *p, const uint8_t *base)
{
    return base && p >= base ? (size_t)(p - base) : 0;
}

static int read_tlv(smki_cursor_t *c, const uint8_t *base, der_tlv *t, int strict)
{
    t->start = c->p;
    t->offset = offset_of(c->p, base);
    size_t at = t->offset;
    uint8_t first;
    GUARD(smki_cur_u8(c, &t->tag));
    ENSURE((t->tag & 0x1f) != 0x1f, SMKI_E_INPUT, "high-tag-number form at offset %zu (no X.509 field uses it)", at);
    GUARD(smki_cur_u8(c, &first));
    size_t len = first;
    if (first & 0x80) {
        size_t n = first & 0x7f;
        ENSURE(n != 0, SMKI_E_INPUT, "indefinite length at offset %zu (DER lengths are definite)", at);
        ENSURE(n <= 4, SMKI_E_INPUT, "%zu-octet length at offset %zu", n, at);
        const uint8_t *o;
        GUARD(smki_cur_take(c, n, &o));
        ENSURE(o[0] != 0 || !strict, SMKI_E_INPUT, "length at offset %zu has a leading zero octet (not minimal)", at);
        len = 0;
        for (size_t i = 0; i < n; i++) len = len << 8 | o[i];
        ENSURE(len >= 0x80 || !strict, SMKI_E_INPUT, "long-form length %zu at offset %zu where the short form fits",
               len, at);
    }
    ENSURE(len <= c->left, SMKI_E_INPUT, "length %zu at offset %zu runs past the %zu octet(s) there", len, at, c->left);
    GUARD(smki_cur_sub(c, len, &t->body));
    t->total = offset_of(c->p, t->start);
    return 0;
}

int der_read(smki_cursor_t *c, const uint8_t *base, der_tlv *t)
{
    return read_tlv(c, base, t, 1);
}

int ber_read(smki_cursor_t *c, const uint8_t *base, der_tlv *t)
{
    return read_tlv(c, base, t, 0);
}

int der_expect(smki_cursor_t *c, const uint8_t *base, uint8_t tag, const char *what, der_tlv *t)
{
    size_t at = offset_of(c->p, base);
    ENSURE(c->left > 0, SMKI_E_INPUT, "%s missing at offset %zu", what, at);
    ENSURE(c->p[0] == tag, SMKI_E_INPUT, "%s at offset %zu: tag %02X, expected %02X", what, at, c->p[0], tag);
    return der_read(c, base, t);
}

static int check_primitive(const der_tlv *t)
{
    smki_cursor_t b = t->body;
    size_t len = b.left;
    const uint8_t *v = b.p;
    size_t at = t->offset;
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
        ENSURE(len >= 1 && !(v[len - 1] & 0x80), SMKI_E_INPUT, "OBJECT IDENTIFIER at offset %zu is truncated", at);
        for (size_t i = 0; i < len; i++)
            ENSURE(!(v[i] == 0x80 && (i == 0 || !(v[i - 1] & 0x80))), SMKI_E_INPUT,
                   "OBJECT IDENTIFIER at offset %zu has a padded subidentifier (X.690 8.19.2)", at);
        return 0;
    case 0x10:
    case 0x11:
        return SMKI_FAIL(SMKI_E_INPUT, "SEQUENCE or SET at offset %zu in primitive form", at);
    default:
        return 0;
    }
}

static int walk(smki_cursor_t c, const uint8_t *base, int depth)
{
    ENSURE(depth <= DER_MAX_DEPTH, SMKI_E_INPUT, "nested deeper than %d", DER_MAX_DEPTH);
    while (c.left) {
        der_tlv t;
        GUARD(der_read(&c, base, &t));
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

int der_check_strict(smki_cursor_t c, const uint8_t *base)
{
    return walk(c, base, 0);
}
