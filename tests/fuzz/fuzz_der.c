/* libFuzzer target for base's DER reader and writer. Over any input: a read (strict
 * or with BER lengths) stays inside the input, accounts for every octet it takes, and
 * a refused one leaves the cursor where it was; what the strict reader takes the BER
 * one takes the same. Over an input the strict walk accepts: the writer, fed the
 * tree the reader saw, writes the same octets back (DER lengths have one form). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_der: invariant failed: %s\n", what);
    abort();
}

/* Read every TLV at one level under flags, and below constructed ones, to a depth. */
static void walk(smki_cursor_t c, const uint8_t *base, unsigned flags, int depth)
{
    while (c.left && depth < 40) {
        smki_cursor_t before = c;
        smki_der_tlv t;
        if (smki_der_read(&c, base, flags, &t) < 0) {
            require(c.p == before.p && c.left == before.left, "a refused read leaves the cursor");
            return;
        }
        require(t.start == before.p && t.total == before.left - c.left, "total is what the read took");
        require(t.total >= 2 && t.body.left <= t.total - 2, "the header is at least two octets");
        require(t.body.p + t.body.left == c.p, "the body ends where the next TLV starts");
        require(t.offset == (size_t)(t.start - base), "offset counts from base");
        if (flags == SMKI_DER_STRICT) {
            smki_cursor_t again = before;
            smki_der_tlv b;
            require(smki_der_read(&again, base, SMKI_DER_BER_LENGTHS, &b) == 0 && b.total == t.total &&
                        b.body.p == t.body.p && b.body.left == t.body.left,
                    "BER lengths take what DER lengths take, the same way");
        }
        if (t.tag & 0x20) walk(t.body, base, flags, depth + 1);
    }
}

/* Write back what the strict reader sees: constructed TLVs through begin/end. */
static void rewrite(smki_cursor_t c, const uint8_t *base, smki_writer_t *w)
{
    while (c.left) {
        smki_der_tlv t;
        require(smki_der_read(&c, base, SMKI_DER_STRICT, &t) == 0, "the strict walk's input reads");
        if (t.tag & 0x20) {
            smki_der_mark m = smki_wr_der_begin(w, t.tag);
            rewrite(t.body, base, w);
            smki_wr_der_end(w, m);
        } else {
            smki_wr_der(w, t.tag, t.body.p, t.body.left);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    walk(smki_cursor(data, size), data, SMKI_DER_STRICT, 0);
    walk(smki_cursor(data, size), data, SMKI_DER_BER_LENGTHS, 0);
    if (smki_der_check_strict(smki_cursor(data, size), data) == 0) {
        smki_writer_t w;
        uint8_t *out;
        size_t len;
        smki_writer_grow(&w);
        rewrite(smki_cursor(data, size), data, &w);
        require(smki_wr_finish(&w, "the rewrite", &out, &len) == 0, "the rewrite finishes");
        require(len == size && (size == 0 || memcmp(out, data, size) == 0), "DER rewrites to the same octets");
        free(out);
    }
    /* The scalar readers over the same octets. */
    smki_cursor_t c = smki_cursor(data, size);
    uint64_t v;
    if (smki_der_u64(&c, "value", &v) == 0) require(size >= 1 && size <= 9, "INTEGER width");
    smki_der_tlv t = {.body = smki_cursor(data, size)};
    (void)smki_der_check_oid(&t, "oid");
    smki_error_clear();
    return 0;
}
