/* EUI-64 identifiers and the IEEE blocks they are allocated from (reference §2):
 * strict text forms in, uppercase out, and block arithmetic that refuses to step
 * outside a block rather than wrap. Pure: no I/O, no allocation. */
#include "policy.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* No accepted text is longer than this (a hyphenated ID, '/', two digits), so
 * scanning stops here: anything that reaches it is refused unread. */
#define TEXT_SCAN_MAX 64
/* How much of a refused input a message quotes before it writes "...". */
#define QUOTE_MAX 40

#define EUI64_FORMS "need 16 hex digits, or 8 groups of 2 joined by '-' or ':'"
#define RANGE_FORMS "need <EUI-64>/<bits> or <prefix hex digits>/<bits>, bits 24, 28 or 36"

/* ---- Quoting refused input ----------------------------------------------------
 * A message quotes what it refused, but the input may be long or hold control
 * bytes that would garble a terminal or a log line: cut it short and escape it. */
typedef struct {
    char s[QUOTE_MAX * 4 + 8]; /* every byte as \xNN, two quotes, "...", NUL */
} quoted_t;

static quoted_t quote(const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    quoted_t q;
    size_t n = 0;
    if (!text) {
        memcpy(q.s, "(null)", sizeof "(null)");
        return q;
    }
    q.s[n++] = '"';
    size_t i = 0;
    for (; i < QUOTE_MAX && text[i]; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '"' || ch == '\\') {
            q.s[n++] = '\\';
            q.s[n++] = (char)ch;
        } else if (ch >= 0x20 && ch < 0x7f) {
            q.s[n++] = (char)ch;
        } else {
            q.s[n++] = '\\';
            q.s[n++] = 'x';
            q.s[n++] = hex[ch >> 4];
            q.s[n++] = hex[ch & 0xf];
        }
    }
    q.s[n++] = '"';
    if (text[i]) {
        memcpy(q.s + n, "...", 3);
        n += 3;
    }
    q.s[n] = '\0';
    return q;
}

/* ---- Text ------------------------------------------------------------------- */
static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int is_hex_run(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (hex_value(s[i]) < 0) return 0;
    return 1;
}

/* Set digit i (0 = most significant) of the 16-digit ID from a hex character
 * already known to be one. */
static void put_nibble(smki_eui64_t *id, size_t i, char ch)
{
    uint8_t v = (uint8_t)hex_value(ch);
    id->b[i / 2] |= (uint8_t)(i % 2 ? v : v << 4);
}

/* The EUI-64 written in s[0..len). Returns NULL on success, else why not, so that
 * each caller can quote its own whole input. The text is indexed only below len,
 * and len is 16 or 23 before any digit is read. */
static const char *read_eui64(const char *s, size_t len, smki_eui64_t *out)
{
    smki_eui64_t id = {{0}};
    if (len == 0) return "empty; " EUI64_FORMS;
    if (len == 16) {
        if (!is_hex_run(s, 16)) return EUI64_FORMS;
        for (size_t i = 0; i < 16; i++) put_nibble(&id, i, s[i]);
        *out = id;
        return NULL;
    }
    if (len != 23) return EUI64_FORMS;
    /* Groups at 0, 3, ... 21; separators at 2, 5, ... 20, all the same one. */
    int mixed = 0;
    for (size_t g = 0; g < 8; g++) {
        size_t at = 3 * g;
        if (hex_value(s[at]) < 0 || hex_value(s[at + 1]) < 0) return EUI64_FORMS;
        put_nibble(&id, 2 * g, s[at]);
        put_nibble(&id, 2 * g + 1, s[at + 1]);
        if (g == 7) break;
        if (s[at + 2] != '-' && s[at + 2] != ':') return EUI64_FORMS;
        if (s[at + 2] != s[2]) mixed = 1;
    }
    if (mixed) return "mixes '-' and ':'; " EUI64_FORMS;
    *out = id;
    return NULL;
}

int smki_eui64_parse(const char *text, smki_eui64_t *out)
{
    ENSURE(text, SMKI_E_USAGE, "not an EUI-64: (null) (" EUI64_FORMS ")");
    const char *why = read_eui64(text, strnlen(text, TEXT_SCAN_MAX), out);
    ENSURE(!why, SMKI_E_USAGE, "not an EUI-64: %s (%s)", quote(text).s, why);
    return 0;
}

void smki_eui64_format(const smki_eui64_t *id, smki_eui64_style style, char out[SMKI_EUI64_TEXT_MAX])
{
    static const char hex[] = "0123456789ABCDEF";
    char sep = style == SMKI_EUI64_HYPHEN ? '-' : style == SMKI_EUI64_COLON ? ':' : '\0';
    size_t n = 0;
    for (size_t i = 0; i < 8; i++) {
        if (i && sep) out[n++] = sep;
        out[n++] = hex[id->b[i] >> 4];
        out[n++] = hex[id->b[i] & 0xf];
    }
    out[n] = '\0';
}

int smki_eui64_cmp(const smki_eui64_t *a, const smki_eui64_t *b)
{
    int c = memcmp(a->b, b->b, sizeof a->b);
    return (c > 0) - (c < 0);
}

uint64_t smki_eui64_to_u64(const smki_eui64_t *id)
{
    return smki_get_be64(id->b);
}

smki_eui64_t smki_eui64_from_u64(uint64_t v)
{
    smki_eui64_t id;
    smki_put_be64(id.b, v);
    return id;
}

/* ---- Blocks -------------------------------------------------------------------
 * Arithmetic is on the ID as a big-endian u64. A block's extension is
 * 64 - prefix_bits bits (40 for MA-L), so sizes fit a uint64_t; additions are
 * checked against the room left before they are made, never after a wrap. */
static int is_ieee_prefix(unsigned bits)
{
    return bits == 24 || bits == 28 || bits == 36;
}

/* The extension bits of a block: size - 1. Only for IEEE prefix lengths. */
static uint64_t extension_mask(unsigned bits)
{
    return (UINT64_C(1) << (64 - bits)) - 1;
}

static smki_eui64_range_t block(uint64_t first, unsigned bits)
{
    smki_eui64_range_t r = {smki_eui64_from_u64(first), smki_eui64_from_u64(first | extension_mask(bits)), bits};
    return r;
}

static int ensure_ieee_prefix(unsigned bits)
{
    ENSURE(is_ieee_prefix(bits), SMKI_E_USAGE,
           "prefix length %u is not an IEEE block (MA-L 24, MA-M 28 or MA-S 36 bits)", bits);
    return 0;
}

/* Ranges built by hand (or read back from a store) are checked before arithmetic
 * trusts their first and last. */
static int ensure_block(const smki_eui64_range_t *r)
{
    GUARD(ensure_ieee_prefix(r->prefix_bits));
    uint64_t first = smki_eui64_to_u64(&r->first);
    uint64_t last = smki_eui64_to_u64(&r->last);
    uint64_t mask = extension_mask(r->prefix_bits);
    ENSURE((first & mask) == 0 && last == (first | mask), SMKI_E_USAGE,
           "not an IEEE block: first %016" PRIX64 ", last %016" PRIX64 ", /%u", first, last, r->prefix_bits);
    return 0;
}

int smki_eui64_range_from_prefix(const smki_eui64_t *id, unsigned prefix_bits, smki_eui64_range_t *out)
{
    GUARD(ensure_ieee_prefix(prefix_bits));
    uint64_t v = smki_eui64_to_u64(id);
    uint64_t mask = extension_mask(prefix_bits);
    ENSURE((v & mask) == 0, SMKI_E_USAGE,
           "%016" PRIX64 " does not start a /%u block: the bits below the prefix must be zero"
           " (its block is %016" PRIX64 "/%u)",
           v, prefix_bits, v & ~mask, prefix_bits);
    *out = block(v, prefix_bits);
    return 0;
}

/* "24", "28", "36": plain decimal, no sign, no leading zero, at most 3 digits
 * (enough to name any wrong length a person would type). */
static int read_bits(const char *s, size_t len, unsigned *out)
{
    if (len == 0 || len > 3 || (len > 1 && s[0] == '0')) return -1;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return 0;
}

int smki_eui64_range_parse(const char *text, smki_eui64_range_t *out)
{
    ENSURE(text, SMKI_E_USAGE, "not an EUI-64 range: (null) (" RANGE_FORMS ")");
    size_t len = strnlen(text, TEXT_SCAN_MAX);
    size_t head_len = 0;
    while (head_len < len && text[head_len] != '/') head_len++;
    ENSURE(head_len < len && len < TEXT_SCAN_MAX, SMKI_E_USAGE, "not an EUI-64 range: %s (%s)", quote(text).s,
           RANGE_FORMS);

    unsigned bits;
    ENSURE(read_bits(text + head_len + 1, len - head_len - 1, &bits) == 0, SMKI_E_USAGE, "not an EUI-64 range: %s (%s)", quote(text).s,
           RANGE_FORMS);
    ENSURE(is_ieee_prefix(bits), SMKI_E_USAGE,
           "not an EUI-64 range: %s (prefix length %u is not an IEEE block: MA-L 24, MA-M 28 or MA-S 36 bits)",
           quote(text).s, bits);

    /* A prefix alone is bits/4 digits rounded up: for /28 and /36 the last digit is
     * the top nibble of the next octet (90B3D51F3/36 is 90B3D51F30000000). */
    size_t digits = (bits + 3) / 4;
    smki_eui64_t id = {{0}};
    if ((head_len == 6 || head_len == 7 || head_len == 9) && is_hex_run(text, head_len)) {
        ENSURE(head_len == digits, SMKI_E_USAGE,
               "not an EUI-64 range: %s (a /%u prefix is written with %zu hex digits, not %zu)", quote(text).s,
               bits, digits, head_len);
        for (size_t i = 0; i < digits; i++) put_nibble(&id, i, text[i]);
    } else {
        const char *why = read_eui64(text, head_len, &id);
        ENSURE(!why, SMKI_E_USAGE, "not an EUI-64 range: %s (%s)", quote(text).s, RANGE_FORMS);
    }

    uint64_t v = smki_eui64_to_u64(&id);
    uint64_t mask = extension_mask(bits);
    ENSURE((v & mask) == 0, SMKI_E_USAGE,
           "not an EUI-64 range: %s (the bits below the /%u prefix must be zero; did you mean %016" PRIX64
           "/%u?)",
           quote(text).s, bits, v & ~mask, bits);
    *out = block(v, bits);
    return 0;
}

void smki_eui64_range_format(const smki_eui64_range_t *r, char out[48])
{
    char first[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(&r->first, SMKI_EUI64_PLAIN, first);
    snprintf(out, 48, "%s/%u", first, r->prefix_bits);
}

int smki_eui64_range_contains(const smki_eui64_range_t *r, const smki_eui64_t *id)
{
    return smki_eui64_cmp(&r->first, id) <= 0 && smki_eui64_cmp(id, &r->last) <= 0;
}

/* 0 for a range whose prefix is not an IEEE length: 2^64 (a /0) does not fit. */
uint64_t smki_eui64_range_size(const smki_eui64_range_t *r)
{
    return is_ieee_prefix(r->prefix_bits) ? extension_mask(r->prefix_bits) + 1 : 0;
}

int smki_eui64_range_nth(const smki_eui64_range_t *r, uint64_t n, smki_eui64_t *out)
{
    GUARD(ensure_block(r));
    uint64_t first = smki_eui64_to_u64(&r->first);
    uint64_t mask = extension_mask(r->prefix_bits);
    ENSURE(n <= mask, SMKI_E_REFUSED,
           "ID number %" PRIu64 " is beyond the block %016" PRIX64 "/%u, which holds %" PRIu64 " IDs", n, first,
           r->prefix_bits, mask + 1);
    *out = smki_eui64_from_u64(first + n);
    return 0;
}

int smki_eui64_range_add(const smki_eui64_range_t *r, const smki_eui64_t *id, uint64_t delta, smki_eui64_t *out)
{
    GUARD(ensure_block(r));
    uint64_t first = smki_eui64_to_u64(&r->first);
    uint64_t last = smki_eui64_to_u64(&r->last);
    uint64_t v = smki_eui64_to_u64(id);
    ENSURE(v >= first && v <= last, SMKI_E_REFUSED, "%016" PRIX64 " is not in the block %016" PRIX64 "/%u", v,
           first, r->prefix_bits);
    /* Compare with the room left, so that a huge delta cannot wrap back in. */
    ENSURE(delta <= last - v, SMKI_E_REFUSED,
           "%016" PRIX64 " + %" PRIu64 " leaves the block %016" PRIX64 "/%u (its last ID is %016" PRIX64 ")", v,
           delta, first, r->prefix_bits, last);
    *out = smki_eui64_from_u64(v + delta);
    return 0;
}

int smki_eui64_range_within(const smki_eui64_range_t *inner, const smki_eui64_range_t *outer)
{
    return smki_eui64_cmp(&outer->first, &inner->first) <= 0 && smki_eui64_cmp(&inner->last, &outer->last) <= 0;
}

int smki_eui64_range_overlaps(const smki_eui64_range_t *a, const smki_eui64_range_t *b)
{
    return smki_eui64_cmp(&a->first, &b->last) <= 0 && smki_eui64_cmp(&b->first, &a->last) <= 0;
}
