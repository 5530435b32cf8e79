/* The bounded cursor: every read checks the bytes that remain first, so a parser
 * built on it cannot run past the end of its input whatever a length field says. */
#include "base.h"

#include <string.h>

smki_cursor_t smki_cursor(const uint8_t *p, size_t len)
{
    smki_cursor_t c = {p, p ? len : 0};
    return c;
}

static int need(const smki_cursor_t *c, size_t n)
{
    ENSURE(c->left >= n, SMKI_E_INPUT, "truncated input: need %zu more octet(s), %zu remain", n, c->left);
    return 0;
}

int smki_cur_take(smki_cursor_t *c, size_t n, const uint8_t **out)
{
    *out = NULL;
    GUARD(need(c, n));
    *out = c->p;
    c->p += n;
    c->left -= n;
    return 0;
}

int smki_cur_copy(smki_cursor_t *c, void *out, size_t n)
{
    const uint8_t *p;
    GUARD(smki_cur_take(c, n, &p));
    if (n) memcpy(out, p, n);
    return 0;
}

int smki_cur_skip(smki_cursor_t *c, size_t n)
{
    const uint8_t *p;
    return smki_cur_take(c, n, &p);
}

int smki_cur_sub(smki_cursor_t *c, size_t n, smki_cursor_t *sub)
{
    const uint8_t *p;
    GUARD(smki_cur_take(c, n, &p));
    *sub = smki_cursor(p, n);
    return 0;
}

int smki_cur_u8(smki_cursor_t *c, uint8_t *out)
{
    return smki_cur_copy(c, out, 1);
}

static int read_be(smki_cursor_t *c, size_t n, uint64_t *out)
{
    const uint8_t *p;
    GUARD(smki_cur_take(c, n, &p));
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
    *out = v;
    return 0;
}

int smki_cur_u16be(smki_cursor_t *c, uint16_t *out)
{
    uint64_t v;
    GUARD(read_be(c, 2, &v));
    *out = (uint16_t)v;
    return 0;
}

int smki_cur_u32be(smki_cursor_t *c, uint32_t *out)
{
    uint64_t v;
    GUARD(read_be(c, 4, &v));
    *out = (uint32_t)v;
    return 0;
}

int smki_cur_u64be(smki_cursor_t *c, uint64_t *out)
{
    return read_be(c, 8, out);
}

int smki_cur_ber_len(smki_cursor_t *c, size_t *len)
{
    smki_cursor_t save = *c;
    uint8_t first;
    GUARD(smki_cur_u8(c, &first));
    size_t value;
    if (first < 0x80) {
        value = first;
    } else {
        size_t octets = first & 0x7f;
        uint64_t v;
        if (octets == 0 || octets > 4) {
            *c = save;
            return SMKI_FAIL(SMKI_E_INPUT, "unsupported BER length form 0x%02x (indefinite or over 4 octets)", first);
        }
        if (read_be(c, octets, &v) < 0) {
            *c = save;
            return smki_error_wrap("BER length");
        }
        value = (size_t)v;
    }
    if (value > c->left) {
        size_t left = c->left;
        *c = save;
        return SMKI_FAIL(SMKI_E_INPUT, "BER length %zu exceeds the %zu octet(s) that follow", value, left);
    }
    *len = value;
    return 0;
}

int smki_cur_expect(smki_cursor_t *c, uint8_t want, const char *what)
{
    ENSURE(c->left >= 1, SMKI_E_INPUT, "truncated input: expected %s (0x%02x) but input ended", what, want);
    ENSURE(c->p[0] == want, SMKI_E_INPUT, "expected %s (0x%02x), found 0x%02x", what, want, c->p[0]);
    c->p++;
    c->left--;
    return 0;
}
