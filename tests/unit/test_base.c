/* base: the error context, the bounded cursor, hex, atomic files and the
 * configuration parser that every module leans on. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "helpers.h"

static void test_error_records_code_message_and_origin(void **state)
{
    (void)state;
    int rc = SMKI_FAIL(SMKI_E_INPUT, "bad thing in '%s'", "x.der");
    assert_int_equal(rc, SMKI_E_INPUT);
    assert_int_equal(smki_error_code(), SMKI_E_INPUT);
    assert_string_equal(smki_error_msg(), "bad thing in 'x.der'");
    assert_non_null(strstr(smki_error_origin(), "test_base.c:"));
    assert_int_equal(smki_error_wrap("loading %s", "cert.pem"), SMKI_E_INPUT);
    assert_string_equal(smki_error_msg(), "loading cert.pem: bad thing in 'x.der'");
    smki_error_clear();
    assert_int_equal(smki_error_code(), 0);
}

static void test_error_classes_map_to_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(smki_error_exit_code(SMKI_OK), 0);
    assert_int_equal(smki_error_exit_code(SMKI_E_USAGE), 1);
    assert_int_equal(smki_error_exit_code(SMKI_E_REFUSED), 2);
    assert_int_equal(smki_error_exit_code(SMKI_E_VERIFY), 2);
    assert_int_equal(smki_error_exit_code(SMKI_E_INPUT), 2);
    assert_int_equal(smki_error_exit_code(SMKI_E_HSM), 3);
    assert_int_equal(smki_error_exit_code(SMKI_E_STORE), 3);
    assert_int_equal(smki_error_exit_code(-999), 3);
    assert_string_equal(smki_error_name(SMKI_E_HSM), "hsm");
    assert_string_equal(smki_error_name(SMKI_E_NOTFOUND), "not_found");
}

static void test_error_message_is_bounded(void **state)
{
    (void)state;
    char big[4000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    (void)SMKI_FAIL(SMKI_E_INPUT, "%s", big);
    assert_int_equal(strlen(smki_error_msg()), SMKI_ERR_MSG_MAX - 1);
    smki_error_wrap("%s", big);
    assert_int_equal(strlen(smki_error_msg()), SMKI_ERR_MSG_MAX - 1);
}

static void test_cursor_reads_are_bounded(void **state)
{
    (void)state;
    static const uint8_t data[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};
    smki_cursor_t c = smki_cursor(data, sizeof data);
    uint8_t b;
    uint16_t h;
    uint32_t w;
    uint64_t q;
    assert_ok(smki_cur_u8(&c, &b));
    assert_int_equal(b, 1);
    assert_ok(smki_cur_u16be(&c, &h));
    assert_int_equal(h, 0x0203);
    assert_ok(smki_cur_u32be(&c, &w));
    assert_int_equal(w, 0x04050607);
    assert_fails(smki_cur_u64be(&c, &q), SMKI_E_INPUT, "need 8 more");
    assert_int_equal(c.left, 2); /* a failed read leaves the cursor where it was */
    const uint8_t *p;
    assert_ok(smki_cur_take(&c, 2, &p));
    assert_int_equal(p[1], 9);
    assert_fails(smki_cur_u8(&c, &b), SMKI_E_INPUT, "truncated");
    assert_fails(smki_cur_take(&c, (size_t)-1, &p), SMKI_E_INPUT, NULL);
}

static void test_big_endian_writes_and_reads_round_trip(void **state)
{
    (void)state;
    uint8_t b[8];
    smki_put_be16(b, 0x0102);
    assert_memory_equal(b, "\x01\x02", 2);
    assert_int_equal(smki_get_be16(b), 0x0102);
    smki_put_be32(b, 0x8001FEFFu);
    assert_memory_equal(b, "\x80\x01\xFE\xFF", 4);
    assert_int_equal(smki_get_be32(b), 0x8001FEFFu);
    smki_put_be64(b, 0xF102030405060708ull);
    assert_memory_equal(b, "\xF1\x02\x03\x04\x05\x06\x07\x08", 8);
    assert_true(smki_get_be64(b) == 0xF102030405060708ull);
    smki_put_be64(b, UINT64_MAX);
    assert_true(smki_get_be64(b) == UINT64_MAX);
    /* The cursor reads the same order as the writers write. */
    smki_cursor_t c = smki_cursor(b, 8);
    uint64_t q;
    assert_ok(smki_cur_u64be(&c, &q));
    assert_true(q == UINT64_MAX);
}

/* Every width refuses an input one octet short and leaves the cursor where it was; an
 * overlong input is read to the width only, the rest left for the next field. */
static void test_big_endian_reads_refuse_short_input(void **state)
{
    (void)state;
    static const uint8_t data[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    uint16_t h;
    uint32_t w;
    uint64_t q;
    smki_cursor_t c = smki_cursor(data, 1);
    assert_fails(smki_cur_u16be(&c, &h), SMKI_E_INPUT, "need 2 more octet(s), 1 remain");
    assert_int_equal(c.left, 1);
    c = smki_cursor(data, 3);
    assert_fails(smki_cur_u32be(&c, &w), SMKI_E_INPUT, "need 4 more octet(s), 3 remain");
    assert_int_equal(c.left, 3);
    c = smki_cursor(data, 7);
    assert_fails(smki_cur_u64be(&c, &q), SMKI_E_INPUT, "need 8 more octet(s), 7 remain");
    assert_int_equal(c.left, 7);
    c = smki_cursor(NULL, 8); /* no buffer is an empty one */
    assert_fails(smki_cur_u16be(&c, &h), SMKI_E_INPUT, "0 remain");
    c = smki_cursor(data, sizeof data);
    assert_ok(smki_cur_u64be(&c, &q));
    assert_true(q == 0x0102030405060708ull);
    assert_int_equal(c.left, 1);
    c = smki_cursor(data, sizeof data);
    assert_ok(smki_cur_u32be(&c, &w));
    assert_int_equal(w, 0x01020304u);
    assert_ok(smki_cur_u16be(&c, &h));
    assert_int_equal(h, 0x0506);
    assert_int_equal(c.left, 3);
}

static void test_cursor_ber_lengths_are_checked_against_the_input(void **state)
{
    (void)state;
    static const uint8_t short_form[] = {0x03, 'a', 'b', 'c'};
    static const uint8_t long_form[] = {0x82, 0x00, 0x02, 'a', 'b'};
    static const uint8_t lying[] = {0x82, 0x01, 0x00, 'a'};
    static const uint8_t indefinite[] = {0x80, 'a'};
    static const uint8_t too_wide[] = {0x85, 0, 0, 0, 0, 1, 'a'};
    size_t len;
    smki_cursor_t c = smki_cursor(short_form, sizeof short_form);
    assert_ok(smki_cur_ber_len(&c, &len));
    assert_int_equal(len, 3);
    c = smki_cursor(long_form, sizeof long_form);
    assert_ok(smki_cur_ber_len(&c, &len));
    assert_int_equal(len, 2);
    c = smki_cursor(lying, sizeof lying);
    assert_fails(smki_cur_ber_len(&c, &len), SMKI_E_INPUT, "exceeds");
    assert_int_equal(c.left, sizeof lying);
    c = smki_cursor(indefinite, sizeof indefinite);
    assert_fails(smki_cur_ber_len(&c, &len), SMKI_E_INPUT, "indefinite");
    c = smki_cursor(too_wide, sizeof too_wide);
    assert_fails(smki_cur_ber_len(&c, &len), SMKI_E_INPUT, NULL);
    c = smki_cursor(long_form, 2); /* long form cut short */
    assert_fails(smki_cur_ber_len(&c, &len), SMKI_E_INPUT, NULL);
    assert_int_equal(c.left, 2);
}

/* ---- DER reader ---- */

/* Read one TLV of data under flags; on failure the cursor must not have moved. */
static int der_read_bytes(const void *data, size_t len, unsigned flags, smki_der_tlv *t)
{
    smki_cursor_t c = smki_cursor(data, len);
    int rc = smki_der_read(&c, data, flags, t);
    if (rc < 0) assert_int_equal(c.left, len);
    return rc;
}

static void test_der_read_takes_short_and_long_lengths(void **state)
{
    (void)state;
    uint8_t buf[4 + 300] = {0x30, 0x03, 0x02, 0x01, 0x05};
    smki_cursor_t c = smki_cursor(buf, 5);
    smki_der_tlv t, inner;
    assert_ok(smki_der_read(&c, buf, SMKI_DER_STRICT, &t));
    assert_int_equal(t.tag, 0x30);
    assert_int_equal(t.total, 5);
    assert_ptr_equal(t.start, buf);
    assert_int_equal(t.body.left, 3);
    assert_int_equal(c.left, 0);
    assert_ok(smki_der_expect(&t.body, buf, SMKI_DER_STRICT, 0x02, "version", &inner));
    assert_int_equal(inner.offset, 2);
    uint64_t v;
    assert_ok(smki_der_u64(&inner.body, "version", &v));
    assert_int_equal(v, 5);
    assert_int_equal(smki_der_peek(&t.body), -1);
    /* 128 and 300 octets: 81 80 and 82 01 2C, the shortest long forms. */
    memcpy(buf, "\x04\x81\x80", 3);
    assert_ok(der_read_bytes(buf, 3 + 128, SMKI_DER_STRICT, &t));
    assert_int_equal(t.body.left, 128);
    assert_int_equal(t.total, 131);
    memcpy(buf, "\x04\x82\x01\x2c", 4);
    assert_ok(der_read_bytes(buf, 4 + 300, SMKI_DER_STRICT, &t));
    assert_int_equal(t.body.left, 300);
}

static void test_der_read_refuses_each_bad_encoding(void **state)
{
    (void)state;
    static const struct {
        const char *der;
        size_t len;
        const char *why;
    } bad[] = {
        {"", 0, "truncated: TLV missing at offset 0"},
        {"\x1f\x01\x00", 3, "high-tag-number form 0x1f"},
        {"\x04", 1, "truncated: TLV at offset 0 has no length"},
        {"\x30\x80\x00\x00", 4, "indefinite length"},
        {"\x04\x85\x00\x00\x00\x00\x01\x00", 8, "length form 0x85 (more than 4 length octets)"},
        {"\x04\x82\x01", 3, "length octets cut short"},
        {"\x04\x81\x05hello", 8, "length 5 not in its shortest form"},
        {"\x04\x82\x00\x05hello", 9, "length 5 not in its shortest form"},
        {"\x04\x82\x00\x80", 4, "length 128 not in its shortest form"}, /* a leading zero octet */
        {"\x04\x05\xab", 3, "truncated: TLV at offset 0 says 5 octets, 1 remain"},
        {"\x04\x84\x7f\xff\xff\xff\x00", 7, "says 2147483647 octets, 1 remain"},
    };
    smki_der_tlv t;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_fails(der_read_bytes(bad[i].der, bad[i].len, SMKI_DER_STRICT, &t), SMKI_E_INPUT, bad[i].why);
    /* BER_LENGTHS takes the long forms DER refuses, and nothing else. */
    assert_ok(der_read_bytes("\x04\x81\x05hello", 8, SMKI_DER_BER_LENGTHS, &t));
    assert_int_equal(t.body.left, 5);
    assert_ok(der_read_bytes("\x04\x82\x00\x05hello", 9, SMKI_DER_BER_LENGTHS, &t));
    assert_int_equal(t.total, 9);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (!strstr(bad[i].why, "shortest form"))
            assert_fails(der_read_bytes(bad[i].der, bad[i].len, SMKI_DER_BER_LENGTHS, &t), SMKI_E_INPUT, bad[i].why);
}

static void test_der_expect_names_the_field_and_its_offset(void **state)
{
    (void)state;
    static const uint8_t der[] = {0x30, 0x02, 0x05, 0x00};
    smki_cursor_t c = smki_cursor(der, sizeof der);
    smki_der_tlv t, f;
    assert_fails(smki_der_expect(&c, der, SMKI_DER_STRICT, 0x31, "attributes", &t), SMKI_E_INPUT,
                 "expected attributes (tag 0x31) at offset 0, found tag 0x30");
    assert_int_equal(c.left, sizeof der);
    assert_ok(smki_der_expect(&c, der, SMKI_DER_STRICT, 0x30, "outer", &t));
    assert_ok(smki_der_expect(&t.body, der, SMKI_DER_STRICT, 0x05, "parameters", &f));
    assert_fails(smki_der_expect(&t.body, der, SMKI_DER_STRICT, 0x04, "hwSerialNum", &f), SMKI_E_INPUT,
                 "truncated: hwSerialNum missing at offset 4");
    /* Without a base, no offsets. */
    c = smki_cursor(der, sizeof der);
    assert_fails(smki_der_expect(&c, NULL, SMKI_DER_STRICT, 0x02, "r", &t), SMKI_E_INPUT,
                 "expected r (tag 0x02), found tag 0x30");
}

static void test_der_u64_refuses_what_does_not_fit(void **state)
{
    (void)state;
    uint64_t v;
    smki_cursor_t c = smki_cursor((const uint8_t *)"\x00\xff\xff\xff\xff\xff\xff\xff\xff", 9);
    assert_ok(smki_der_u64(&c, "counter", &v));
    assert_true(v == UINT64_MAX);
    c = smki_cursor((const uint8_t *)"\x00\x05", 2); /* not minimal, tolerated (see base.h) */
    assert_ok(smki_der_u64(&c, "counter", &v));
    assert_int_equal(v, 5);
    c = smki_cursor(NULL, 0);
    assert_fails(smki_der_u64(&c, "counter", &v), SMKI_E_INPUT, "counter: INTEGER of 0 octet(s)");
    c = smki_cursor((const uint8_t *)"\x80", 1);
    assert_fails(smki_der_u64(&c, "counter", &v), SMKI_E_INPUT, "counter: negative INTEGER");
    c = smki_cursor((const uint8_t *)"\x01\x00\x00\x00\x00\x00\x00\x00\x00", 9);
    assert_fails(smki_der_u64(&c, "counter", &v), SMKI_E_INPUT, "above 2^64");
    c = smki_cursor((const uint8_t *)"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", 10);
    assert_fails(smki_der_u64(&c, "counter", &v), SMKI_E_INPUT, "INTEGER of 10 octet(s)");
}

static void test_der_check_oid_refuses_malformed_identifiers(void **state)
{
    (void)state;
    smki_der_tlv t;
    assert_ok(der_read_bytes("\x06\x03\x55\x1d\x0f", 5, SMKI_DER_STRICT, &t));
    assert_ok(smki_der_check_oid(&t, "extnID"));
    assert_ok(der_read_bytes("\x06\x00", 2, SMKI_DER_STRICT, &t));
    assert_fails(smki_der_check_oid(&t, "extnID"), SMKI_E_INPUT, "extnID is an empty OBJECT IDENTIFIER");
    assert_ok(der_read_bytes("\x06\x02\x80\x01", 4, SMKI_DER_STRICT, &t));
    assert_fails(smki_der_check_oid(&t, "extnID"), SMKI_E_INPUT, "extnID has a subidentifier not in its shortest form");
    assert_ok(der_read_bytes("\x06\x03\x2a\x80\x01", 5, SMKI_DER_STRICT, &t));
    assert_fails(smki_der_check_oid(&t, "extnID"), SMKI_E_INPUT, "not in its shortest form");
    assert_ok(der_read_bytes("\x06\x02\x2a\x81", 4, SMKI_DER_STRICT, &t));
    assert_fails(smki_der_check_oid(&t, "extnID"), SMKI_E_INPUT, "extnID ends inside a subidentifier");
}

static int strict(const void *der, size_t len)
{
    return smki_der_check_strict(smki_cursor(der, len), der);
}

static void test_der_check_strict_refuses_each_rule(void **state)
{
    (void)state;
    /* Good: every universal type it judges, nested, a context tag with any contents. */
    static const uint8_t good[] = {0x30, 0x16, 0x01, 0x01, 0xff, 0x02, 0x02, 0x00, 0x80, 0x03, 0x02, 0x07,
                                   0x80, 0x05, 0x00, 0x06, 0x01, 0x2a, 0x31, 0x00, 0xa0, 0x02, 0x05, 0x00};
    assert_ok(strict(good, sizeof good));
    static const struct {
        const char *der;
        size_t len;
        const char *why;
    } bad[] = {
        {"\x30\x03\x01\x01\x01", 5, "BOOLEAN at offset 2 is not one octet 00 or FF"},
        {"\x01\x02\x00\x00", 4, "BOOLEAN at offset 0"},
        {"\x02\x00", 2, "empty INTEGER at offset 0"},
        {"\x02\x02\x00\x01", 4, "INTEGER at offset 0 is not minimal"},
        {"\x02\x02\xff\x80", 4, "INTEGER at offset 0 is not minimal"},
        {"\x0a\x02\x00\x01", 4, "INTEGER at offset 0 is not minimal"}, /* ENUMERATED */
        {"\x03\x02\x08\x00", 4, "bad unused-bits octet"},
        {"\x03\x00", 2, "bad unused-bits octet"},
        {"\x03\x01\x01", 3, "empty BIT STRING at offset 0 claims unused bits"},
        {"\x03\x02\x01\x81", 4, "unused bits are not zero"},
        {"\x05\x01\x00", 3, "NULL at offset 0 has contents"},
        {"\x06\x02\x80\x01", 4, "OBJECT IDENTIFIER at offset 0 has a subidentifier not in its shortest form"},
        {"\x00\x00", 2, "end-of-contents octets"},
        {"\x10\x00", 2, "SEQUENCE or SET at offset 0 in primitive form"},
        {"\x24\x03\x04\x01\x00", 5, "constructed encoding of universal type 4 at offset 0"},
        {"\x30\x04\x04\x81\x01\x00", 6, "TLV at offset 2: length 1 not in its shortest form"},
        {"\x30\x03\x04\x02\x00", 5, "truncated: TLV at offset 2 says 2 octets, 1 remain"},
        {"\x30\x80\x05\x00\x00\x00", 6, "indefinite length"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_fails(strict(bad[i].der, bad[i].len), SMKI_E_INPUT, bad[i].why);
}

/* n SEQUENCEs, each inside the last, written by base's writer. */
static size_t nested(uint8_t *buf, size_t cap, int n)
{
    smki_writer_t w;
    smki_der_mark m[40];
    smki_writer_fixed(&w, buf, cap);
    for (int i = 0; i < n; i++) m[i] = smki_wr_der_begin(&w, 0x30);
    for (int i = n - 1; i >= 0; i--) smki_wr_der_end(&w, m[i]);
    assert_ok(smki_wr_check(&w, "nesting"));
    return w.len;
}

static void test_der_check_strict_bounds_its_depth(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len = nested(buf, sizeof buf, SMKI_DER_MAX_DEPTH);
    assert_int_equal(len, 2 * SMKI_DER_MAX_DEPTH);
    assert_ok(strict(buf, len));
    len = nested(buf, sizeof buf, SMKI_DER_MAX_DEPTH + 1);
    assert_fails(strict(buf, len), SMKI_E_INPUT, "DER nested deeper than 32");
}

/* ---- Writer ---- */

static void test_writer_closes_each_length_in_its_shortest_form(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 127, 128, 255, 256, 65535, 65536, 70000};
    static uint8_t content[70000], buf[70010];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        smki_writer_t w;
        smki_writer_fixed(&w, buf, sizeof buf);
        smki_der_mark m = smki_wr_der_begin(&w, 0x30);
        smki_wr_raw(&w, content, n);
        smki_wr_der_end(&w, m);
        assert_ok(smki_wr_check(&w, "test"));
        assert_int_equal(w.open, 0);
        size_t head = n < 0x80 ? 2 : n <= 0xff ? 3 : n <= 0xffff ? 4 : 5;
        assert_int_equal(w.len, head + n);
        /* The same as the one-shot TLV, and read back by the strict reader. */
        uint8_t again[16];
        smki_writer_t w2;
        smki_writer_fixed(&w2, again, sizeof again);
        smki_wr_der(&w2, 0x30, content, 0);
        assert_ok(smki_wr_check(&w2, "short"));
        smki_der_tlv t;
        assert_ok(der_read_bytes(buf, w.len, SMKI_DER_STRICT, &t));
        assert_int_equal(t.body.left, n);
        assert_int_equal(t.total, w.len);
    }
}

/* A head for contents of a known length: the same head as begin/end make, and the
 * 5-octet form past 16 MiB that begin/end never reach. */
static void test_writer_head_of_known_length(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        uint8_t head[6];
        size_t head_len;
    } cases[] = {
        {0, {0x30, 0x00}, 2},
        {127, {0x30, 0x7F}, 2},
        {128, {0x30, 0x81, 0x80}, 3},
        {256, {0x30, 0x82, 0x01, 0x00}, 4},
        {65536, {0x30, 0x83, 0x01, 0x00, 0x00}, 5},
        {0xFFFFFF, {0x30, 0x83, 0xFF, 0xFF, 0xFF}, 5},
        {0x1000000, {0x30, 0x84, 0x01, 0x00, 0x00, 0x00}, 6},
        {0xFFFFFFFF, {0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF}, 6},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[8];
        smki_writer_t w;
        smki_writer_fixed(&w, buf, sizeof buf);
        smki_wr_der_head(&w, 0x30, cases[i].n);
        assert_ok(smki_wr_check(&w, "head"));
        assert_int_equal(w.len, cases[i].head_len);
        assert_int_equal(smki_der_head_len(cases[i].n), cases[i].head_len);
        assert_memory_equal(buf, cases[i].head, cases[i].head_len);
    }
    /* With its contents, the strict reader reads it back. */
    static uint8_t content[300], out[310];
    smki_writer_t w;
    smki_writer_fixed(&w, out, sizeof out);
    smki_wr_der_head(&w, 0x04, sizeof content);
    smki_wr_raw(&w, content, sizeof content);
    assert_ok(smki_wr_check(&w, "octets"));
    smki_der_tlv t;
    assert_ok(der_read_bytes(out, w.len, SMKI_DER_STRICT, &t));
    assert_int_equal(t.body.left, sizeof content);
#if SIZE_MAX > 0xFFFFFFFFu
    /* 4 GiB and more does not fit any DER length smki writes. */
    uint8_t small[8];
    smki_writer_fixed(&w, small, sizeof small);
    smki_wr_der_head(&w, 0x04, (size_t)0x100000000u);
    assert_fails(smki_wr_check(&w, "huge"), SMKI_E_INTERNAL, "huge");
#endif
}

static void test_writer_integers_and_big_endian(void **state)
{
    (void)state;
    uint8_t *out;
    size_t len;
    smki_writer_t w;
    smki_writer_grow(&w);
    smki_wr_der_uint(&w, (const uint8_t *)"\x00\x00\x7f", 3); /* 02 01 7f */
    smki_wr_der_uint(&w, (const uint8_t *)"\x80", 1);         /* 02 02 00 80 */
    smki_wr_der_uint(&w, (const uint8_t *)"\x00", 1);         /* 02 01 00 */
    smki_wr_der_uint(&w, NULL, 0);                            /* 02 01 00 */
    smki_wr_der_u64(&w, 0x83, 0);                             /* 83 01 00 */
    smki_wr_der_u64(&w, 0x02, 0x80);                          /* 02 02 00 80 */
    smki_wr_der_u64(&w, 0x02, UINT64_MAX);                    /* 02 09 00 ff*8 */
    smki_wr_u8(&w, 0x01);
    smki_wr_be16(&w, 0x0203);
    smki_wr_be32(&w, 0x04050607);
    smki_wr_be64(&w, 0x08090a0b0c0d0e0full);
    assert_ok(smki_wr_finish(&w, "integers", &out, &len));
    static const uint8_t want[] = {0x02, 0x01, 0x7f, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00,
                                   0x83, 0x01, 0x00, 0x02, 0x02, 0x00, 0x80, 0x02, 0x09, 0x00, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                   0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(out, want, sizeof want);
    /* What it wrote reads back: the cursor's big-endian reads, the reader's INTEGERs. */
    smki_cursor_t c = smki_cursor(out, len);
    smki_der_tlv t;
    uint64_t v;
    for (int i = 0; i < 6; i++) assert_ok(smki_der_read(&c, out, SMKI_DER_STRICT, &t));
    assert_ok(smki_der_read(&c, out, SMKI_DER_STRICT, &t));
    assert_ok(smki_der_u64(&t.body, "max", &v));
    assert_true(v == UINT64_MAX);
    assert_ok(smki_cur_skip(&c, 1));
    uint16_t h;
    assert_ok(smki_cur_u16be(&c, &h));
    assert_int_equal(h, 0x0203);
    free(out);
}

static void test_writer_refuses_overflow_and_misuse(void **state)
{
    (void)state;
    uint8_t small[8], *out;
    size_t len;
    smki_writer_t w;
    /* A fixed buffer too small: later writes are dropped, the check names what. */
    smki_writer_fixed(&w, small, sizeof small);
    smki_wr_der(&w, 0x04, "1234567", 7);
    smki_wr_u8(&w, 0);
    assert_int_equal(w.len, 0); /* none of the TLV, nothing after it */
    assert_fails(smki_wr_check(&w, "a too-long OCTET STRING"), SMKI_E_INTERNAL,
                 "a too-long OCTET STRING does not fit in 8 octets");
    /* A reserved length needs its 4 octets even for short contents. */
    smki_writer_fixed(&w, small, 4);
    (void)smki_wr_der_begin(&w, 0x30);
    assert_fails(smki_wr_check(&w, "a SEQUENCE"), SMKI_E_INTERNAL, "does not fit in 4 octets");
    /* An end without a begin, or with a mark that is not this writer's. */
    smki_writer_fixed(&w, small, sizeof small);
    smki_wr_der_end(&w, 5);
    assert_fails(smki_wr_check(&w, "x"), SMKI_E_INTERNAL, "a DER end without its begin");
    smki_writer_fixed(&w, small, sizeof small);
    (void)smki_wr_der_begin(&w, 0x30);
    smki_wr_der_end(&w, 2);
    assert_fails(smki_wr_check(&w, "x"), SMKI_E_INTERNAL, "without its begin");
    /* A value its caller could not encode. */
    smki_writer_fixed(&w, small, sizeof small);
    smki_wr_invalid(&w);
    smki_wr_u8(&w, 1);
    assert_int_equal(w.len, 0);
    assert_fails(smki_wr_check(&w, "a time"), SMKI_E_INTERNAL, "a time holds a value that cannot be encoded");
    /* A growing writer hands over only balanced output, and frees on refusal. */
    smki_writer_grow(&w);
    (void)smki_wr_der_begin(&w, 0x30);
    smki_wr_raw(&w, small, sizeof small);
    assert_ok(smki_wr_check(&w, "open")); /* open TLVs are fine mid-way */
    assert_fails(smki_wr_finish(&w, "a message", &out, &len), SMKI_E_INTERNAL, "1 DER TLV(s) begun and never ended");
    assert_null(w.p);
    smki_writer_fixed(&w, small, sizeof small);
    assert_fails(smki_wr_finish(&w, "a record", &out, &len), SMKI_E_INTERNAL, "a fixed buffer is not handed over");
    /* A growing writer grows past its first allocation. */
    smki_writer_grow(&w);
    smki_der_mark m = smki_wr_der_begin(&w, 0x04);
    for (int i = 0; i < 1000; i++) smki_wr_raw(&w, small, sizeof small);
    smki_wr_der_end(&w, m);
    assert_ok(smki_wr_finish(&w, "a big one", &out, &len));
    assert_int_equal(len, 4 + 8000);
    assert_memory_equal(out, "\x04\x82\x1f\x40", 4);
    free(out);
}

static void test_cursor_expect_and_sub(void **state)
{
    (void)state;
    static const uint8_t data[] = {0xdf, 0x09, 0x01, 0x02};
    smki_cursor_t c = smki_cursor(data, sizeof data), sub;
    assert_ok(smki_cur_expect(&c, 0xdf, "general-signing tag"));
    assert_fails(smki_cur_expect(&c, 0x08, "title length"), SMKI_E_INPUT, "title length");
    assert_ok(smki_cur_sub(&c, 2, &sub));
    assert_int_equal(sub.left, 2);
    assert_int_equal(c.left, 1);
    assert_fails(smki_cur_sub(&c, 2, &sub), SMKI_E_INPUT, NULL);
}

static void test_hex_decodes_text_with_line_ends(void **state)
{
    (void)state;
    uint8_t out[8];
    size_t n;
    assert_ok(smki_hex_decode("DF09\r\n0a bC", 11, out, sizeof out, &n));
    assert_int_equal(n, 4);
    assert_int_equal(out[0], 0xdf);
    assert_int_equal(out[3], 0xbc);
    assert_fails(smki_hex_decode("DF0", 3, out, sizeof out, &n), SMKI_E_INPUT, "odd");
    assert_fails(smki_hex_decode("DG", 2, out, sizeof out, &n), SMKI_E_INPUT, "'DG'");
    assert_fails(smki_hex_decode("0011223344556677AA", 18, out, sizeof out, &n), SMKI_E_INPUT, "longer than 8");
    char text[9];
    assert_ok(smki_hex_decode("df090abc", 8, out, sizeof out, &n));
    smki_hex_encode(out, 4, text, 1);
    assert_string_equal(text, "DF090ABC");
}

/* In place: a missing file is made (as the atomic write makes it), an existing one is
 * written from its start and cut to the new length, its inode kept (no rename). */
static void test_overwrite_in_place_makes_writes_and_cuts(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("base-overwrite");
    char path[1200];
    snprintf(path, sizeof path, "%s/slot", dir);
    assert_ok(smki_file_overwrite(path, "a longer first value", 20, 0600));
    struct stat st1, st2;
    assert_int_equal(stat(path, &st1), 0);
    assert_int_equal(st1.st_mode & 0777, 0600);
    assert_ok(smki_file_overwrite(path, "short", 5, 0600));
    assert_int_equal(stat(path, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_ok(smki_file_read(path, 100, &data, &len));
    assert_int_equal(len, 5);
    assert_memory_equal(data, "short", 5);
    free(data);
    char bad[1300];
    snprintf(bad, sizeof bad, "%s/no-such-folder/slot", dir);
    assert_fails(smki_file_overwrite(bad, "x", 1, 0600), SMKI_E_IO, "no-such-folder");
}

static void test_atomic_write_replaces_whole_or_refuses(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("base-files");
    char path[1200];
    snprintf(path, sizeof path, "%s/a/b/file.bin", dir);
    char parent[1200];
    snprintf(parent, sizeof parent, "%s/a/b", dir);
    assert_ok(smki_mkdirs(parent, 0700));
    assert_ok(smki_file_write_atomic(path, "first", 5, 0600, 1));
    assert_fails(smki_file_write_atomic(path, "second", 6, 0600, 1), SMKI_E_EXISTS, path);
    assert_ok(smki_file_write_atomic(path, "second", 6, 0600, 0));
    uint8_t *data = NULL;
    size_t len = 0;
    assert_ok(smki_file_read(path, 100, &data, &len));
    assert_int_equal(len, 6);
    assert_memory_equal(data, "second", 6);
    free(data);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_fails(smki_file_read(path, 5, &data, &len), SMKI_E_INPUT, "over the limit");
    assert_fails(smki_file_read(parent, 5, &data, &len), SMKI_E_INPUT, "not a regular file");
    char missing[1300];
    snprintf(missing, sizeof missing, "%s/none", dir);
    assert_fails(smki_file_read(missing, 5, &data, &len), SMKI_E_NOTFOUND, "none");
    /* no temporary left behind */
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);
}

static void test_secret_file_first_line_only(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("base-secret");
    char path[1200];
    snprintf(path, sizeof path, "%s/pin", dir);
    assert_ok(smki_file_write_atomic(path, "1234\nignored\n", 13, 0600, 0));
    char pin[16];
    assert_ok(smki_secret_read_file(path, pin, sizeof pin));
    assert_string_equal(pin, "1234");
    assert_ok(smki_file_write_atomic(path, "\n", 1, 0600, 0));
    assert_fails(smki_secret_read_file(path, pin, sizeof pin), SMKI_E_INPUT, "empty");
    assert_ok(smki_file_write_atomic(path, "0123456789abcdefXYZ", 19, 0600, 0));
    assert_fails(smki_secret_read_file(path, pin, sizeof pin), SMKI_E_INPUT, "longer");
}

static void test_secret_file_refused_when_others_may_read_or_write_it(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("base-secret-mode");
    char path[1200];
    snprintf(path, sizeof path, "%s/pin", dir);
    char pin[16];
    assert_ok(smki_file_write_atomic(path, "1234\n", 5, 0644, 0));
    assert_fails(smki_secret_read_file(path, pin, sizeof pin), SMKI_E_REFUSED, "readable by every user (mode 0644)");
    assert_ok(chmod(path, 0602));
    assert_fails(smki_secret_read_file(path, pin, sizeof pin), SMKI_E_REFUSED, "writable by every user (mode 0602)");
    assert_ok(chmod(path, 0640)); /* a service's group may read it (systemd credentials, a pin group) */
    assert_ok(smki_secret_read_file(path, pin, sizeof pin));
    assert_string_equal(pin, "1234");
    assert_ok(chmod(path, 0400));
    assert_ok(smki_secret_read_file(path, pin, sizeof pin));
}

static void test_home_missing_is_refused_unless_created(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("base-home");
    char home[1200], file[1300];
    snprintf(home, sizeof home, "%s/typo-home", dir);
    assert_fails(smki_home_require(home, 0), SMKI_E_NOTFOUND, "typo-home does not exist");
    assert_int_not_equal(access(home, F_OK), 0); /* nothing created */
    assert_ok(smki_home_require(home, 1));
    struct stat st;
    assert_ok(stat(home, &st));
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_ok(smki_home_require(home, 0));
    snprintf(file, sizeof file, "%s/plain", home);
    assert_ok(smki_file_write_atomic(file, "x", 1, 0600, 0));
    assert_fails(smki_home_require(file, 0), SMKI_E_USAGE, "is not a folder");
}

static void test_conf_refuses_unknown_sections(void **state)
{
    (void)state;
    const char *const known[] = {"hsm", "store", "env.*", NULL};
    smki_conf *c = NULL;
    const char *good = "[hsm]\ntoken = a\n[env.test]\nx = 1\n[store]\n";
    assert_ok(smki_conf_parse((const uint8_t *)good, strlen(good), "g.conf", &c));
    assert_ok(smki_conf_check_sections(c, known));
    smki_conf_free(c);
    const char *typo = "[hsm]\ntoken = a\n[stroe]\npath = x\n";
    assert_ok(smki_conf_parse((const uint8_t *)typo, strlen(typo), "t.conf", &c));
    assert_fails(smki_conf_check_sections(c, known), SMKI_E_USAGE,
                 "t.conf:3: unknown section [stroe] (did you mean [store]?); known: [hsm] [store] [env.*]");
    smki_conf_free(c);
    const char *empty = "[hsm]\n[hsmm]\n"; /* refused even with nothing under it */
    assert_ok(smki_conf_parse((const uint8_t *)empty, strlen(empty), "e.conf", &c));
    assert_fails(smki_conf_check_sections(c, known), SMKI_E_USAGE, "e.conf:2: unknown section [hsmm] (did you mean [hsm]?)");
    smki_conf_free(c);
    const char *env = "[env]\nx = 1\n"; /* env.* needs a name */
    assert_ok(smki_conf_parse((const uint8_t *)env, strlen(env), "n.conf", &c));
    assert_fails(smki_conf_check_sections(c, known), SMKI_E_USAGE, "unknown section [env]");
    smki_conf_free(c);
    const char *deep = "[env.a.b]\nx = 1\n";
    assert_ok(smki_conf_parse((const uint8_t *)deep, strlen(deep), "d.conf", &c));
    assert_fails(smki_conf_check_sections(c, known), SMKI_E_USAGE, "unknown section [env.a.b]");
    smki_conf_free(c);
    const char *outside = "token = a\n[hsm]\n";
    assert_ok(smki_conf_parse((const uint8_t *)outside, strlen(outside), "o.conf", &c));
    assert_fails(smki_conf_check_sections(c, known), SMKI_E_USAGE, "o.conf:1: setting 'token' outside any [section]");
    smki_conf_free(c);
    assert_ok(smki_conf_check_sections(NULL, known));
}

static void test_conf_reads_sections_and_refuses_typos(void **state)
{
    (void)state;
    static const char text[] = "# comment\n[hsm]\ntoken = smki \nmodule=/x.so\n\n[store]\n path = store\n";
    smki_conf *c = NULL;
    assert_ok(smki_conf_parse((const uint8_t *)text, sizeof text - 1, "t.conf", &c));
    assert_string_equal(smki_conf_get(c, "hsm.token", NULL), "smki");
    assert_string_equal(smki_conf_get(c, "hsm.module", NULL), "/x.so");
    assert_string_equal(smki_conf_get(c, "store.path", NULL), "store");
    assert_string_equal(smki_conf_get(c, "store.missing", "dflt"), "dflt");
    smki_conf_free(c);
    static const char no_eq[] = "[hsm]\ntoken smki\n";
    assert_fails(smki_conf_parse((const uint8_t *)no_eq, sizeof no_eq - 1, "t.conf", &c), SMKI_E_INPUT, "t.conf:2");
    static const char twice[] = "[hsm]\na=1\na=2\n";
    assert_fails(smki_conf_parse((const uint8_t *)twice, sizeof twice - 1, "t.conf", &c), SMKI_E_INPUT, "twice");
    static const char header[] = "[hsm\n";
    assert_fails(smki_conf_parse((const uint8_t *)header, sizeof header - 1, "t.conf", &c), SMKI_E_INPUT, "section");
    static const char nul[] = "a=1\0\n";
    assert_fails(smki_conf_parse((const uint8_t *)nul, sizeof nul - 1, "t.conf", &c), SMKI_E_INPUT, "NUL");
    const char *sect = "[ca.test]\nname = A\nyears = 3\n[ca.other]\nnonsense = 1\n[hsm]\nzzz = 1\n";
    assert_ok(smki_conf_parse((const uint8_t *)sect, strlen(sect), "s.conf", &c));
    const char *const known[] = {"name", "years", NULL};
    assert_ok(smki_conf_check_section(c, "ca.test", known));
    assert_ok(smki_conf_check_section(c, "ca", known)); /* [ca.test] is not [ca] */
    assert_fails(smki_conf_check_section(c, "ca.other", known), SMKI_E_USAGE, "s.conf:5: unknown setting 'nonsense'");
    assert_fails(smki_conf_check_section(c, "hsm", known), SMKI_E_USAGE, "s.conf:7: unknown setting 'zzz' under [hsm]");
    assert_ok(smki_conf_check_section(NULL, "hsm", known)); /* no configuration: nothing to check */
    smki_conf_free(c);
    char missing[1200];
    snprintf(missing, sizeof missing, "%s/none.conf", test_tmpdir("base-conf"));
    assert_ok(smki_conf_load(missing, &c)); /* a missing file is an empty configuration */
    assert_null(smki_conf_get(c, "hsm.token", NULL));
    smki_conf_free(c);
}

/* RFC 5280 4.2.1.2 method 2: 0100b then the low 60 bits of SHA-1 of the key. The
 * FIPS 180 vector SHA-1("abc") = a9993e36...78 50 c2 6c 9c d0 d8 9d gives 4850c26c9cd0d89d. */
static void test_keyid_method2_of_the_sha1_vector(void **state)
{
    (void)state;
    static const uint8_t WANT[SMKI_KEYID_LEN] = {0x48, 0x50, 0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d};
    uint8_t id[SMKI_KEYID_LEN];
    assert_ok(smki_keyid_method2((const uint8_t *)"abc", 3, id));
    assert_memory_equal(id, WANT, SMKI_KEYID_LEN);
}

/* The DCC's own RTDS certificates carry method 2 SKIs: for each, the SKI that
 * 'openssl x509 -noout -ext subjectKeyIdentifier' prints is the one computed here from
 * the certificate's public point. */
static void test_keyid_method2_matches_the_dcc_certificates(void **state)
{
    (void)state;
    static const char *const CERTS[] = {"00db123456789001-ds.pem", "00db123456789001-ka.pem",
                                        "90b3d51f30010000-ds.pem", "90b3d51f30020000-ka.pem"};
    for (size_t i = 0; i < sizeof CERTS / sizeof *CERTS; i++) {
        char rel[128], cmd[1024], line[256], got_hex[2 * SMKI_KEYID_LEN + 1], want_hex[64] = "";
        snprintf(rel, sizeof rel, "vectors/gbcs/keystore/%s", CERTS[i]);
        const char *path = test_shared_path(rel);
        snprintf(cmd, sizeof cmd, "openssl x509 -in '%s' -noout -ext subjectKeyIdentifier", path);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        size_t n = 0;
        while (fgets(line, sizeof line, p)) { /* a header, then "    43:1C:98:CE:3F:70:7B:03" */
            if (line[0] != ' ') continue;
            for (const char *c = line; *c && n + 1 < sizeof want_hex; c++)
                if (isxdigit((unsigned char)*c)) want_hex[n++] = (char)tolower((unsigned char)*c);
        }
        assert_int_equal(pclose(p), 0);
        assert_int_equal(strlen(want_hex), 2 * SMKI_KEYID_LEN);

        FILE *f = fopen(path, "r");
        assert_non_null(f);
        X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        assert_non_null(x);
        uint8_t point[65], id[SMKI_KEYID_LEN];
        size_t plen = 0;
        assert_int_equal(EVP_PKEY_get_octet_string_param(X509_get0_pubkey(x), "encoded-pub-key", point, sizeof point,
                                                         &plen),
                         1);
        assert_int_equal(plen, 65);
        assert_ok(smki_keyid_method2(point, plen, id));
        smki_hex_encode(id, sizeof id, got_hex, 0);
        assert_string_equal(got_hex, want_hex);
        X509_free(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_records_code_message_and_origin),
        cmocka_unit_test(test_error_classes_map_to_exit_codes),
        cmocka_unit_test(test_error_message_is_bounded),
        cmocka_unit_test(test_cursor_reads_are_bounded),
        cmocka_unit_test(test_big_endian_writes_and_reads_round_trip),
        cmocka_unit_test(test_big_endian_reads_refuse_short_input),
        cmocka_unit_test(test_cursor_ber_lengths_are_checked_against_the_input),
        cmocka_unit_test(test_der_read_takes_short_and_long_lengths),
        cmocka_unit_test(test_der_read_refuses_each_bad_encoding),
        cmocka_unit_test(test_der_expect_names_the_field_and_its_offset),
        cmocka_unit_test(test_der_u64_refuses_what_does_not_fit),
        cmocka_unit_test(test_der_check_oid_refuses_malformed_identifiers),
        cmocka_unit_test(test_der_check_strict_refuses_each_rule),
        cmocka_unit_test(test_der_check_strict_bounds_its_depth),
        cmocka_unit_test(test_writer_closes_each_length_in_its_shortest_form),
        cmocka_unit_test(test_writer_head_of_known_length),
        cmocka_unit_test(test_writer_integers_and_big_endian),
        cmocka_unit_test(test_writer_refuses_overflow_and_misuse),
        cmocka_unit_test(test_cursor_expect_and_sub),
        cmocka_unit_test(test_hex_decodes_text_with_line_ends),
        cmocka_unit_test(test_atomic_write_replaces_whole_or_refuses),
        cmocka_unit_test(test_overwrite_in_place_makes_writes_and_cuts),
        cmocka_unit_test(test_secret_file_first_line_only),
        cmocka_unit_test(test_conf_reads_sections_and_refuses_typos),
        cmocka_unit_test(test_keyid_method2_of_the_sha1_vector),
        cmocka_unit_test(test_keyid_method2_matches_the_dcc_certificates),
        cmocka_unit_test(test_conf_refuses_unknown_sections),
        cmocka_unit_test(test_secret_file_refused_when_others_may_read_or_write_it),
        cmocka_unit_test(test_home_missing_is_refused_unless_created),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
