/* libFuzzer target for two base primitives every parser of outside bytes rests on:
 * the hex decoder (exact against the rule in base.h, bounded by its capacity, and
 * inverse to the encoder) and the bounded cursor, walked as BER length + value over
 * the raw input: it never moves past the end, never moves back, and a failed read
 * leaves it where it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_hex_cursor: invariant failed: %s\n", what);
    abort();
}

static int is_space(uint8_t ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' || ch == '\v';
}

static int digit(uint8_t ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* The rule as written: digit pairs, ASCII whitespace between pairs ignored. Returns
 * the octet count, or -1 where the text is not hex; fills out if given. */
static long reference_decode(const uint8_t *t, size_t len, uint8_t *out)
{
    long n = 0;
    for (size_t i = 0; i < len;) {
        if (is_space(t[i])) {
            i++;
            continue;
        }
        if (i + 1 >= len || digit(t[i]) < 0 || digit(t[i + 1]) < 0) return -1;
        if (out) out[n] = (uint8_t)(digit(t[i]) << 4 | digit(t[i + 1]));
        n++;
        i += 2;
    }
    return n;
}

static void check_hex(const uint8_t *data, size_t size)
{
    size_t non_space = 0;
    for (size_t i = 0; i < size; i++) non_space += !is_space(data[i]);
    uint8_t *want = malloc(size / 2 + 1);
    require(want != NULL, "malloc");
    long want_len = reference_decode(data, size, want);

    /* Room for everything: the outcome is the rule's. */
    size_t cap = size / 2 + 1;
    uint8_t *out = malloc(cap);
    require(out != NULL, "malloc");
    size_t out_len = 0;
    smki_error_clear();
    int rc = smki_hex_decode((const char *)data, size, out, cap, &out_len);
    if (rc == 0) {
        require(want_len >= 0, "decoder accepts only what the rule accepts");
        require(out_len * 2 <= non_space, "two digits per octet");
        require(out_len * 2 == non_space, "every non-space character is a digit of some octet");
        require((long)out_len == want_len && memcmp(out, want, out_len) == 0, "decoded octets are the rule's");
        /* Encoding gives back the digits, case aside. */
        char *hex = malloc(2 * out_len + 1);
        require(hex != NULL, "malloc");
        smki_hex_encode(out, out_len, hex, size ? data[0] & 1 : 0);
        size_t j = 0;
        for (size_t i = 0; i < size; i++) {
            if (is_space(data[i])) continue;
            require(digit(data[i]) == digit((uint8_t)hex[j]), "encode(decode(text)) is text without blanks");
            j++;
        }
        require(j == 2 * out_len && hex[j] == '\0', "encoded length is two digits per octet");
        free(hex);
    } else {
        require(rc == SMKI_E_INPUT, "a refusal is SMKI_E_INPUT");
        require(want_len < 0, "decoder refuses only what the rule refuses");
    }

    /* A tighter capacity, picked by the last octet, in a buffer of exactly that size:
     * accepted iff everything fits, and then the same octets. */
    if (size) {
        size_t tight = data[size - 1] % (size / 2 + 2);
        uint8_t *small = malloc(tight ? tight : 1);
        require(small != NULL, "malloc");
        size_t small_len = 0;
        int trc = smki_hex_decode((const char *)data, size, small, tight, &small_len);
        if (rc == 0 && out_len <= tight) {
            require(trc == 0 && small_len == out_len && memcmp(small, out, out_len) == 0,
                    "a capacity that fits gives the same octets");
        } else {
            require(trc == SMKI_E_INPUT, "too small a capacity or bad text is SMKI_E_INPUT");
        }
        free(small);
    }
    free(out);
    free(want);
}

/* Snapshot of a cursor: equality is where it points and what it has left. */
static int same_cursor(smki_cursor_t a, smki_cursor_t b)
{
    return a.p == b.p && a.left == b.left;
}

static void check_in_bounds(smki_cursor_t c, const uint8_t *base, size_t size)
{
    require(c.p >= base && c.p <= base + size, "cursor points within the input");
    require(c.left <= size && c.p + c.left == base + size, "cursor's end is the input's end");
}

/* The BER definite length the cursor should read at c: -1 where it must refuse. */
static long long expected_ber(smki_cursor_t c, size_t *header)
{
    if (c.left < 1) return -1;
    uint8_t first = c.p[0];
    if (first < 0x80) {
        *header = 1;
        return first <= c.left - 1 ? first : -1;
    }
    size_t octets = first & 0x7f;
    if (octets == 0 || octets > 4 || c.left - 1 < octets) return -1;
    unsigned long long v = 0;
    for (size_t i = 0; i < octets; i++) v = v << 8 | c.p[1 + i];
    *header = 1 + octets;
    return v <= c.left - 1 - octets ? (long long)v : -1;
}

static void check_cursor(const uint8_t *data, size_t size)
{
    /* An exact copy, so a read past the end is an ASan report, not a silent one. */
    uint8_t *copy = malloc(size ? size : 1);
    require(copy != NULL, "malloc");
    if (size) memcpy(copy, data, size);
    smki_cursor_t c = smki_cursor(copy, size);
    check_in_bounds(c, copy, size);

    size_t steps = 0;
    while (c.left > 0) {
        require(++steps <= size, "every step consumes at least one octet");
        smki_cursor_t before = c;
        size_t header = 0, len = 0;
        long long want = expected_ber(c, &header);
        int rc = smki_cur_ber_len(&c, &len);
        if (rc < 0) {
            require(rc == SMKI_E_INPUT, "a bad length is SMKI_E_INPUT");
            require(want < 0, "refuses only a length that is malformed or too long");
            require(same_cursor(c, before), "a refused length leaves the cursor");
            uint8_t skip;
            require(smki_cur_u8(&c, &skip) == 0 && skip == before.p[0], "one octet can be read while any remain");
        } else {
            require(want >= 0 && (size_t)want == len, "the length is the one encoded");
            require(c.p == before.p + header && c.left == before.left - header, "the length's octets are consumed");
            require(len <= c.left, "the length fits what remains");

            smki_cursor_t mid = c;
            const uint8_t *v = NULL;
            require(smki_cur_take(&c, c.left + 1, &v) == SMKI_E_INPUT && same_cursor(c, mid) && v == NULL,
                    "taking one more than remains fails and leaves the cursor");
            require(smki_cur_take(&c, SIZE_MAX, &v) == SMKI_E_INPUT && same_cursor(c, mid),
                    "taking SIZE_MAX fails and leaves the cursor");
            require(smki_cur_take(&c, len, &v) == 0, "taking a checked length succeeds");
            require(v == mid.p && c.p == mid.p + len && c.left == mid.left - len, "take steps over exactly len");
            if (len) require(memcmp(v, data + (size_t)(v - copy), len) == 0, "take points at the input's octets");
        }
        require(c.left < before.left, "left only decreases");
        check_in_bounds(c, copy, size);
    }

    /* At the end, every read fails and leaves the cursor at the end. */
    smki_cursor_t end = c;
    uint8_t b;
    uint16_t w;
    uint32_t d;
    uint64_t q;
    size_t len;
    smki_cursor_t sub;
    require(smki_cur_u8(&c, &b) == SMKI_E_INPUT && same_cursor(c, end), "u8 at the end");
    require(smki_cur_u16be(&c, &w) == SMKI_E_INPUT && same_cursor(c, end), "u16 at the end");
    require(smki_cur_u32be(&c, &d) == SMKI_E_INPUT && same_cursor(c, end), "u32 at the end");
    require(smki_cur_u64be(&c, &q) == SMKI_E_INPUT && same_cursor(c, end), "u64 at the end");
    require(smki_cur_ber_len(&c, &len) == SMKI_E_INPUT && same_cursor(c, end), "length at the end");
    require(smki_cur_sub(&c, 1, &sub) == SMKI_E_INPUT && same_cursor(c, end), "sub at the end");
    require(smki_cur_expect(&c, 0, "anything") == SMKI_E_INPUT && same_cursor(c, end), "expect at the end");
    require(c.p == copy + size && c.left == 0, "the walk ends at the end");

    /* Fixed-width reads near the end: each succeeds iff its octets remain. */
    static const size_t widths[] = {1, 2, 4, 8};
    for (size_t w_i = 0; w_i < 4; w_i++) {
        size_t n = widths[w_i];
        smki_cursor_t t = smki_cursor(copy, size), t0 = t;
        int r = n == 1 ? smki_cur_u8(&t, &b) : n == 2 ? smki_cur_u16be(&t, &w) : n == 4 ? smki_cur_u32be(&t, &d)
                                                                                          : smki_cur_u64be(&t, &q);
        if (size >= n) {
            require(r == 0 && t.p == copy + n && t.left == size - n, "a fixed-width read steps over its octets");
            uint64_t v = 0;
            for (size_t i = 0; i < n; i++) v = v << 8 | data[i];
            uint64_t got = n == 1 ? b : n == 2 ? w : n == 4 ? d : q;
            require(got == v, "a fixed-width read is big-endian");
        } else {
            require(r == SMKI_E_INPUT && same_cursor(t, t0), "a short fixed-width read fails and leaves the cursor");
        }
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_hex(data, size);
    check_cursor(data, size);
    return 0;
}
