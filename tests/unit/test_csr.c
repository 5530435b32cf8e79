/* The CSR intake (ca/csr.c): the real device CSR from a CS02c response, from DER and
 * PEM; CSRs made here with OpenSSL's X509_REQ API; and hand-assembled CSRs for what
 * no well-behaved encoder writes (compressed or off-curve points, odd key usages,
 * hardwareModuleNames of the wrong size), each refused with its code and message. */
#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "ca/ca_private.h"
#include "helpers.h"

#define REAL_CSR "vectors/gbcs/csr/00db1234567890a0-ds.csr.der"
#define REAL_HW_TYPE "1.2.826.0.1.8641679.1.2.2.1"

static const uint8_t REAL_EUI[8] = {0x00, 0xdb, 0x12, 0x34, 0x56, 0x78, 0x90, 0xa0};
static const uint8_t DS_BITS[] = {0x80}; /* digitalSignature */
static const uint8_t BOTH_BITS[] = {0x88}; /* digitalSignature and keyAgreement */

/* ---- A small DER writer for hand-made requests --------------------------------------- */

typedef struct {
    uint8_t b[8192];
    size_t n;
} der_t;

static void put(der_t *d, const void *p, size_t n)
{
    assert_true(d->n + n <= sizeof d->b);
    if (n) memcpy(d->b + d->n, p, n);
    d->n += n;
}

static void put_byte(der_t *d, uint8_t v)
{
    put(d, &v, 1);
}

static void tlv(der_t *out, uint8_t tag, const void *content, size_t n)
{
    put_byte(out, tag);
    if (n < 0x80) {
        put_byte(out, (uint8_t)n);
    } else if (n < 0x100) {
        put_byte(out, 0x81);
        put_byte(out, (uint8_t)n);
    } else {
        assert_true(n < 0x10000);
        put_byte(out, 0x82);
        put_byte(out, (uint8_t)(n >> 8));
        put_byte(out, (uint8_t)n);
    }
    put(out, content, n);
}

static const uint8_t OID_KU[] = {0x55, 0x1d, 0x0f};
static const uint8_t OID_SAN[] = {0x55, 0x1d, 0x11};
static const uint8_t OID_BASIC_CONSTRAINTS[] = {0x55, 0x1d, 0x13};
static const uint8_t OID_UNKNOWN[] = {0x2a, 0x03, 0x04}; /* 1.2.3.4 */
static const uint8_t OID_HW_NAME[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x04};
static const uint8_t OID_PERMANENT_ID[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x03};
static const uint8_t OID_HW_TYPE[] = {0x2a, 0x86, 0x3a, 0x00, 0x01, 0x84, 0x8f, 0xb9, 0x0f, 0x01, 0x02, 0x02, 0x01};
static const uint8_t OID_EXT_REQ[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e};
static const uint8_t OID_CHALLENGE_PW[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07};
static const uint8_t ALG_ECDSA_SHA384[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
static const uint8_t ALG_ECDSA_SHA256_NULL[] = {0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                                0xce, 0x3d, 0x04, 0x03, 0x02, 0x05, 0x00};
static const uint8_t ALG_ECDSA_SHA256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};

/* Extension { extnID, critical, extnValue } appended to exts. */
static void ext(der_t *exts, const uint8_t *oid, size_t oid_len, int critical, const der_t *value)
{
    der_t body = {0};
    tlv(&body, 0x06, oid, oid_len);
    if (critical) put(&body, "\x01\x01\xff", 3);
    tlv(&body, 0x04, value->b, value->n);
    tlv(exts, 0x30, body.b, body.n);
}

static void ext_ku(der_t *exts, const uint8_t *bits, size_t n, uint8_t unused)
{
    der_t content = {0}, value = {0};
    put_byte(&content, unused);
    put(&content, bits, n);
    tlv(&value, 0x03, content.b, content.n);
    ext(exts, OID_KU, sizeof OID_KU, 1, &value);
}

/* GeneralNames holding one otherName of type oid whose [0] value is `inner`. */
static void general_names_other(der_t *names, const uint8_t *oid, size_t oid_len, const der_t *inner)
{
    der_t other = {0};
    tlv(&other, 0x06, oid, oid_len);
    tlv(&other, 0xa0, inner->b, inner->n);
    tlv(names, 0xa0, other.b, other.n);
}

static void hw_module_name(der_t *out, const uint8_t *serial, size_t n)
{
    der_t body = {0};
    tlv(&body, 0x06, OID_HW_TYPE, sizeof OID_HW_TYPE);
    tlv(&body, 0x04, serial, n);
    tlv(out, 0x30, body.b, body.n);
}

static void san_value_hw(der_t *value, const uint8_t *serial, size_t n)
{
    der_t hw = {0}, names = {0};
    hw_module_name(&hw, serial, n);
    general_names_other(&names, OID_HW_NAME, sizeof OID_HW_NAME, &hw);
    tlv(value, 0x30, names.b, names.n);
}

static void ext_san_hw(der_t *exts, const uint8_t *serial, size_t n)
{
    der_t value = {0};
    san_value_hw(&value, serial, n);
    ext(exts, OID_SAN, sizeof OID_SAN, 1, &value);
}

static void ext_san_dns(der_t *exts, const char *dns)
{
    der_t names = {0}, value = {0};
    tlv(&names, 0x82, dns, strlen(dns));
    tlv(&value, 0x30, names.b, names.n);
    ext(exts, OID_SAN, sizeof OID_SAN, 1, &value);
}

/* The extensions of a good device CSR: DS and the real Device ID. */
static void device_exts(der_t *exts)
{
    ext_ku(exts, DS_BITS, sizeof DS_BITS, 7);
    ext_san_hw(exts, REAL_EUI, sizeof REAL_EUI);
}

typedef struct {
    EVP_PKEY *key;         /* signs; the request carries its SPKI unless spki is set */
    const der_t *spki;     /* a hand-made SubjectPublicKeyInfo */
    const der_t *subject;  /* a Name; NULL: the empty Name */
    const der_t *exts;     /* Extension TLVs; NULL: no extensionRequest */
    const der_t *attrs;    /* further Attribute TLVs */
    const uint8_t *alg;    /* signatureAlgorithm; NULL: ecdsa-with-SHA256 */
    size_t alg_len;
    uint8_t version;
    uint8_t sig_unused_bits;
} csr_spec;

static void sign_sha256(EVP_PKEY *key, const uint8_t *tbs, size_t len, uint8_t *sig, size_t *sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_non_null(md);
    assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL), 1);
    assert_int_equal(EVP_DigestSign(md, sig, sig_len, tbs, len), 1);
    EVP_MD_CTX_free(md);
}

static void build_csr(const csr_spec *s, der_t *out)
{
    der_t info = {0}, attrs = {0}, req = {0};
    tlv(&info, 0x02, &s->version, 1);
    if (s->subject)
        put(&info, s->subject->b, s->subject->n);
    else
        put(&info, "\x30\x00", 2);
    if (s->spki) {
        put(&info, s->spki->b, s->spki->n);
    } else {
        unsigned char *p = NULL;
        int n = i2d_PUBKEY(s->key, &p);
        assert_true(n > 0);
        put(&info, p, (size_t)n);
        OPENSSL_free(p);
    }
    if (s->exts) {
        der_t ext_seq = {0}, set = {0}, attr = {0};
        tlv(&ext_seq, 0x30, s->exts->b, s->exts->n);
        tlv(&set, 0x31, ext_seq.b, ext_seq.n);
        tlv(&attr, 0x06, OID_EXT_REQ, sizeof OID_EXT_REQ);
        put(&attr, set.b, set.n);
        tlv(&attrs, 0x30, attr.b, attr.n);
    }
    if (s->attrs) put(&attrs, s->attrs->b, s->attrs->n);
    tlv(&info, 0xa0, attrs.b, attrs.n);

    der_t tbs = {0};
    tlv(&tbs, 0x30, info.b, info.n);
    uint8_t sig[600];
    size_t sig_len = sizeof sig - 1;
    sign_sha256(s->key, tbs.b, tbs.n, sig + 1, &sig_len);
    sig[0] = s->sig_unused_bits;

    put(&req, tbs.b, tbs.n);
    if (s->alg)
        put(&req, s->alg, s->alg_len);
    else
        put(&req, ALG_ECDSA_SHA256, sizeof ALG_ECDSA_SHA256);
    tlv(&req, 0x03, sig, sig_len + 1);
    out->n = 0;
    tlv(out, 0x30, req.b, req.n);
}

static void name_cn(der_t *out, const char *cn)
{
    der_t atv = {0}, rdn = {0}, rdns = {0};
    tlv(&atv, 0x06, "\x55\x04\x03", 3);
    tlv(&atv, 0x0c, cn, strlen(cn));
    tlv(&rdn, 0x30, atv.b, atv.n);
    tlv(&rdns, 0x31, rdn.b, rdn.n);
    tlv(out, 0x30, rdns.b, rdns.n);
}

/* ---- Keys and OpenSSL-made requests ------------------------------------------------- */

static EVP_PKEY *p256;

static int setup(void **state)
{
    (void)state;
    p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return p256 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(p256);
    return 0;
}

static void p256_point(EVP_PKEY *key, uint8_t point[65])
{
    size_t len = 0;
    assert_int_equal(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, 65, &len), 1);
    assert_int_equal(len, 65);
    assert_int_equal(point[0], 0x04);
}

/* A P-256 SubjectPublicKeyInfo around any point encoding. */
static void spki_with_point(der_t *out, const uint8_t *point, size_t n)
{
    static const uint8_t alg[] = {0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                                  0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    der_t body = {0}, bits = {0};
    put(&body, alg, sizeof alg);
    put_byte(&bits, 0);
    put(&bits, point, n);
    tlv(&body, 0x03, bits.b, bits.n);
    tlv(out, 0x30, body.b, body.n);
}

/* A request made the ordinary way, with OpenSSL's X509_REQ API. ku is an X509v3
 * KU_* mask (0: no keyUsage); serial NULL: no subjectAltName. */
static void openssl_csr(EVP_PKEY *key, const char *cn, int ku, const uint8_t *serial, der_t *out)
{
    X509_REQ *r = X509_REQ_new();
    assert_non_null(r);
    assert_int_equal(X509_REQ_set_version(r, X509_REQ_VERSION_1), 1);
    if (cn)
        assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(r), "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
    assert_int_equal(X509_REQ_set_pubkey(r, key), 1);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    if (ku) {
        ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
        for (int bit = 0; bit < 9; bit++)
            if (ku & (bit < 8 ? 0x80 >> bit : 0x8000)) ASN1_BIT_STRING_set_bit(bits, bit, 1);
        sk_X509_EXTENSION_push(exts, X509V3_EXT_i2d(NID_key_usage, 1, bits));
        ASN1_BIT_STRING_free(bits);
    }
    if (serial) {
        der_t value = {0};
        san_value_hw(&value, serial, 8);
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(os, value.b, (int)value.n);
        sk_X509_EXTENSION_push(exts, X509_EXTENSION_create_by_NID(NULL, NID_subject_alt_name, 1, os));
        ASN1_OCTET_STRING_free(os);
    }
    if (sk_X509_EXTENSION_num(exts) > 0) assert_int_equal(X509_REQ_add_extensions(r, exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    assert_true(X509_REQ_sign(r, key, EVP_sha256()) > 0);
    unsigned char *p = NULL;
    int n = i2d_X509_REQ(r, &p);
    assert_true(n > 0);
    out->n = 0;
    put(out, p, (size_t)n);
    OPENSSL_free(p);
    X509_REQ_free(r);
}

static uint8_t *real_csr(size_t *len)
{
    return test_read_shared(REAL_CSR, len);
}

static char *pem_of(const uint8_t *der, size_t len, const char *label, const char *before, const char *after)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    BIO_puts(bio, before);
    assert_true(PEM_write_bio(bio, label, "", der, (long)len) > 0);
    BIO_puts(bio, after);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *copy = malloc((size_t)n + 1);
    assert_non_null(copy);
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    BIO_free(bio);
    return copy;
}

static int parse(const der_t *d, smki_csr **out)
{
    return smki_csr_parse(d->b, d->n, out);
}

static void assert_parse_fails(const der_t *d, int code, const char *needle)
{
    smki_csr *c = NULL;
    assert_fails(parse(d, &c), code, needle);
    assert_null(c);
}

/* A hand-made device request from p256 with these extensions. */
static void device_csr_with(const der_t *exts, der_t *out)
{
    csr_spec s = {.key = p256, .exts = exts};
    build_csr(&s, out);
}

/* ---- The real device CSR ------------------------------------------------------------- */

static void check_real(const smki_csr *c, const uint8_t *der, size_t len)
{
    assert_int_equal(c->der_len, len);
    assert_memory_equal(c->der, der, len);
    assert_int_equal(c->usage, SMKI_USAGE_DS);
    assert_true(c->has_hw_module_name);
    assert_memory_equal(c->hw_serial.b, REAL_EUI, 8);
    char text[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(&c->hw_serial, SMKI_EUI64_HYPHEN, text);
    assert_string_equal(text, "00-DB-12-34-56-78-90-A0");
    assert_string_equal(c->hw_type, REAL_HW_TYPE);
    assert_true(c->is_subject_empty);
    assert_int_equal(X509_NAME_entry_count(c->subject), 0);
    /* the SubjectPublicKeyInfo is the CSR's own octets: offset 12, 91 octets */
    assert_int_equal(c->spki_len, 91);
    assert_ptr_equal(c->spki, c->der + 12);
    assert_memory_equal(c->spki, der + 12, 91);
    assert_memory_equal(c->point, der + 38, 65);
    assert_int_equal(c->point[0], 0x04);
    EVP_PKEY *again = NULL;
    assert_ok(smki_pub_load(c->spki, c->spki_len, &again));
    assert_int_equal(EVP_PKEY_eq(c->key, again), 1);
    EVP_PKEY_free(again);
}

static void test_parse_reads_the_real_device_csr_from_der(void **state)
{
    (void)state;
    size_t len;
    uint8_t *der = real_csr(&len);
    smki_csr *c = NULL;
    assert_ok(smki_csr_parse(der, len, &c));
    check_real(c, der, len);
    smki_csr_free(c);
    free(der);
}

static void test_parse_reads_the_real_device_csr_from_pem_under_both_labels(void **state)
{
    (void)state;
    size_t len;
    uint8_t *der = real_csr(&len);
    const char *labels[] = {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"};
    for (size_t i = 0; i < 2; i++) {
        /* explanatory text before the block is allowed (RFC 7468 5.2), white space after */
        char *pem = pem_of(der, len, labels[i], i ? "Certificate Request for 00-DB-12-34-56-78-90-A0\n" : "",
                           "\n\n");
        smki_csr *c = NULL;
        assert_ok(smki_csr_parse((const uint8_t *)pem, strlen(pem), &c));
        check_real(c, der, len);
        smki_csr_free(c);
        free(pem);
    }
    free(der);
}

static void test_parse_refuses_every_truncation_of_the_real_csr(void **state)
{
    (void)state;
    size_t len;
    uint8_t *der = real_csr(&len);
    smki_csr *c = NULL;
    assert_fails(smki_csr_parse(der, 0, &c), SMKI_E_INPUT, "empty");
    for (size_t cut = 1; cut < len; cut++) {
        uint8_t *copy = malloc(cut); /* exactly cut octets: ASan sees any read beyond */
        assert_non_null(copy);
        memcpy(copy, der, cut);
        assert_fails(smki_csr_parse(copy, cut, &c), SMKI_E_INPUT, "truncated");
        assert_null(c);
        free(copy);
    }
    free(der);
}

static void test_parse_refuses_a_trailing_byte(void **state)
{
    (void)state;
    size_t len;
    uint8_t *der = real_csr(&len);
    uint8_t *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, der, len);
    longer[len] = 0x00;
    smki_csr *c = NULL;
    assert_fails(smki_csr_parse(longer, len + 1, &c), SMKI_E_INPUT, "1 octet(s) of trailing data after the CSR");
    free(longer);
    free(der);
}

static void test_parse_refuses_pem_garbage(void **state)
{
    (void)state;
    size_t len;
    uint8_t *der = real_csr(&len);
    smki_csr *c = NULL;
    const char *text = "this is not a certificate request\n";
    assert_fails(smki_csr_parse((const uint8_t *)text, strlen(text), &c), SMKI_E_INPUT, "neither DER");
    const char *bad64 = "-----BEGIN CERTIFICATE REQUEST-----\n!!!!not base64!!!!\n-----END CERTIFICATE REQUEST-----\n";
    assert_fails(smki_csr_parse((const uint8_t *)bad64, strlen(bad64), &c), SMKI_E_INPUT, "PEM does not decode");
    const char *no_end = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBEzCBugIBADAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n";
    assert_fails(smki_csr_parse((const uint8_t *)no_end, strlen(no_end), &c), SMKI_E_INPUT, "PEM does not decode");

    char *cert_label = pem_of(der, len, "CERTIFICATE", "", "");
    assert_fails(smki_csr_parse((const uint8_t *)cert_label, strlen(cert_label), &c), SMKI_E_INPUT,
                 "\"CERTIFICATE\" is not a CERTIFICATE REQUEST");
    free(cert_label);

    char *trailing = pem_of(der, len, "CERTIFICATE REQUEST", "", "and some more\n");
    assert_fails(smki_csr_parse((const uint8_t *)trailing, strlen(trailing), &c), SMKI_E_INPUT,
                 "trailing data after the PEM block");
    free(trailing);

    char *two = pem_of(der, len, "CERTIFICATE REQUEST", "", "");
    char *second = pem_of(der, len, "CERTIFICATE REQUEST", two, "");
    assert_fails(smki_csr_parse((const uint8_t *)second, strlen(second), &c), SMKI_E_INPUT, "trailing data");
    free(two);
    free(second);

    /* base64 of garbage: decodes, then the DER inside is refused */
    uint8_t junk[40];
    memset(junk, 0x41, sizeof junk);
    char *junk_pem = pem_of(junk, sizeof junk, "CERTIFICATE REQUEST", "", "");
    assert_fails(smki_csr_parse((const uint8_t *)junk_pem, strlen(junk_pem), &c), SMKI_E_INPUT,
                 "expected CertificationRequest");
    free(junk_pem);

    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio(bio, "CERTIFICATE REQUEST", "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n", der, (long)len);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    assert_fails(smki_csr_parse((const uint8_t *)data, (size_t)n, &c), SMKI_E_INPUT, "PEM headers refused");
    BIO_free(bio);
    assert_null(c);
    free(der);
}

static void test_parse_refuses_input_over_the_size_limit(void **state)
{
    (void)state;
    uint8_t *big = calloc(1, SMKI_CSR_MAX + 1);
    assert_non_null(big);
    big[0] = 0x30;
    smki_csr *c = NULL;
    assert_fails(smki_csr_parse(big, SMKI_CSR_MAX + 1, &c), SMKI_E_INPUT, "over the 16384-octet limit");
    assert_fails(smki_csr_parse(NULL, 10, &c), SMKI_E_INPUT, "empty CSR");
    free(big);
}

static void test_parse_refuses_a_bad_signature(void **state)
{
    (void)state;
    size_t len;
    uint8_t *der = real_csr(&len);
    smki_csr *c = NULL;
    der[len - 1] ^= 0x01; /* the last octet of s */
    assert_fails(smki_csr_parse(der, len, &c), SMKI_E_VERIFY, "proof of possession");
    der[len - 1] ^= 0x01;
    der[len - 40] ^= 0x80; /* inside r */
    assert_fails(smki_csr_parse(der, len, &c), SMKI_E_VERIFY, "proof of possession");
    der[len - 40] ^= 0x80;
    assert_ok(smki_csr_parse(der, len, &c));
    smki_csr_free(c);
    free(der);
}

/* The real CSR with its ECDSA-Sig-Value replaced by sig (any octets). */
static size_t with_signature(const uint8_t *sig, size_t sig_len, uint8_t *out, size_t cap)
{
    size_t len, n;
    uint8_t *der = real_csr(&len);
    smki_cursor_t c = smki_cursor(der, len);
    uint8_t tag;
    assert_ok(smki_cur_u8(&c, &tag));
    assert_ok(smki_cur_ber_len(&c, &n));
    const uint8_t *body = c.p;
    for (int i = 0; i < 2; i++) { /* certificationRequestInfo, signatureAlgorithm */
        assert_ok(smki_cur_u8(&c, &tag));
        assert_ok(smki_cur_ber_len(&c, &n));
        assert_ok(smki_cur_skip(&c, n));
    }
    der_t req = {0}, bits = {0}, whole = {0};
    put(&req, body, (size_t)(c.p - body));
    put(&bits, "\x00", 1);
    put(&bits, sig, sig_len);
    tlv(&req, 0x03, bits.b, bits.n);
    tlv(&whole, 0x30, req.b, req.n);
    assert_true(whole.n <= cap);
    memcpy(out, whole.b, whole.n);
    free(der);
    return whole.n;
}

/* r and s of the real CSR's signature, as INTEGER contents. */
static void real_r_s(der_t *r, der_t *s)
{
    size_t len;
    uint8_t *der = real_csr(&len);
    smki_csr *c = NULL;
    assert_ok(smki_csr_parse(der, len, &c));
    /* the BIT STRING is last: 03 L 00 30 L 02 rl r 02 sl s */
    size_t at = len;
    for (size_t i = 0; i + 4 < len; i++)
        if (der[i] == 0x03 && der[i + 2] == 0x00 && der[i + 3] == 0x30 && i + 2 + der[i + 1] == len) at = i;
    assert_true(at < len);
    const uint8_t *p = der + at + 5;
    assert_int_equal(p[0], 0x02);
    put(r, p + 2, p[1]);
    p += 2 + p[1];
    assert_int_equal(p[0], 0x02);
    put(s, p + 2, p[1]);
    smki_csr_free(c);
    free(der);
}

static size_t sig_value(const der_t *r, const der_t *s, uint8_t *out)
{
    der_t ints = {0}, seq = {0};
    tlv(&ints, 0x02, r->b, r->n);
    tlv(&ints, 0x02, s->b, s->n);
    tlv(&seq, 0x30, ints.b, ints.n);
    memcpy(out, seq.b, seq.n);
    return seq.n;
}

static void test_parse_refuses_a_signature_value_that_is_not_strict_der(void **state)
{
    (void)state;
    der_t r = {0}, s = {0};
    real_r_s(&r, &s);
    uint8_t sig[200], csr[1024];
    size_t n;
    smki_csr *c = NULL;
    /* unchanged: accepted */
    n = with_signature(sig, sig_value(&r, &s, sig), csr, sizeof csr);
    assert_ok(smki_csr_parse(csr, n, &c));
    smki_csr_free(c);
    c = NULL;
    /* a 00 in front of r that DER does not need */
    der_t padded = {0};
    const uint8_t *mag = r.b[0] == 0x00 ? r.b + 1 : r.b; /* r's magnitude */
    put(&padded, "\x00\x00", mag[0] & 0x80 ? 2 : 1);
    put(&padded, mag, (size_t)(r.b + r.n - mag));
    n = with_signature(sig, sig_value(&padded, &s, sig), csr, sizeof csr);
    assert_fails(smki_csr_parse(csr, n, &c), SMKI_E_INPUT, "r is not in its shortest form");
    /* negative s */
    der_t neg = {0};
    put(&neg, "\x80", 1);
    put(&neg, s.b + (s.b[0] == 0 ? 2 : 1), s.b[0] == 0 ? s.n - 2 : s.n - 1);
    n = with_signature(sig, sig_value(&r, &neg, sig), csr, sizeof csr);
    assert_fails(smki_csr_parse(csr, n, &c), SMKI_E_INPUT, "s is negative");
    /* 33 octets of magnitude */
    der_t big = {0};
    put(&big, "\x01", 1);
    put(&big, r.b + (r.b[0] == 0), 32);
    n = with_signature(sig, sig_value(&big, &s, sig), csr, sizeof csr);
    assert_fails(smki_csr_parse(csr, n, &c), SMKI_E_INPUT, "too large for P-256");
    /* an empty INTEGER */
    der_t empty = {0};
    n = with_signature(sig, sig_value(&empty, &s, sig), csr, sizeof csr);
    assert_fails(smki_csr_parse(csr, n, &c), SMKI_E_INPUT, "empty INTEGER");
    /* octets after the ECDSA-Sig-Value, and inside it after s */
    size_t k = sig_value(&r, &s, sig);
    sig[k] = 0x00;
    n = with_signature(sig, k + 1, csr, sizeof csr);
    assert_fails(smki_csr_parse(csr, n, &c), SMKI_E_INPUT, "signature BIT STRING");
    der_t ints = {0}, seq = {0};
    tlv(&ints, 0x02, r.b, r.n);
    tlv(&ints, 0x02, s.b, s.n);
    put(&ints, "\x05\x00", 2);
    tlv(&seq, 0x30, ints.b, ints.n);
    n = with_signature(seq.b, seq.n, csr, sizeof csr);
    assert_fails(smki_csr_parse(csr, n, &c), SMKI_E_INPUT, "end of ECDSA-Sig-Value");
    /* a length in the long form where the short one fits (BER) */
    k = sig_value(&r, &s, sig);
    memmove(sig + 3, sig + 2, k - 2);
    sig[2] = sig[1];
    sig[1] = 0x81;
    n = with_signature(sig, k + 1, csr, sizeof csr);
    assert_fails(smki_csr_parse(csr, n, &c), SMKI_E_INPUT, "shortest form");
    /* not a SEQUENCE */
    n = with_signature((const uint8_t *)"\x02\x01\x01", 3, csr, sizeof csr);
    assert_fails(smki_csr_parse(csr, n, &c), SMKI_E_INPUT, "ECDSA-Sig-Value");
    /* well-formed but r = 0: does not verify */
    der_t zero = {0};
    put(&zero, "\x00", 1);
    n = with_signature(sig, sig_value(&zero, &s, sig), csr, sizeof csr);
    assert_fails(smki_csr_parse(csr, n, &c), SMKI_E_VERIFY, "proof of possession");
    assert_null(c);
}

/* smki_ca_oid_text writes what OBJ_obj2txt writes, over random well-formed OIDs; refuses
 * a cut subidentifier and a buffer too small; leaves arcs past 64 bits to OpenSSL. */
static void test_oid_text_matches_openssl(void **state)
{
    (void)state;
    uint8_t content[96], der[100];
    char mine[256], theirs[256];
    size_t past64 = 0;
    for (int round = 0; round < 3000; round++) {
        size_t len = 0;
        uint8_t r[2];
        assert_int_equal(RAND_bytes(r, 2), 1);
        size_t subids = 1 + r[0] % 8;
        for (size_t i = 0; i < subids; i++) {
            uint8_t b[10];
            assert_int_equal(RAND_bytes(b, sizeof b), 1);
            size_t octets = 1 + b[0] % 10;
            if (b[1] & 1) octets = 1;
            for (size_t k = 0; k < octets; k++) {
                uint8_t v = b[k] & 0x7f;
                if (k == 0 && octets > 1 && v == 0) v = 1; /* shortest form */
                content[len++] = (uint8_t)(v | (k + 1 < octets ? 0x80 : 0));
            }
        }
        der[0] = 0x06;
        der[1] = (uint8_t)len;
        memcpy(der + 2, content, len);
        const unsigned char *p = der;
        ASN1_OBJECT *obj = d2i_ASN1_OBJECT(NULL, &p, (long)len + 2);
        assert_non_null(obj);
        int n = OBJ_obj2txt(theirs, sizeof theirs, obj, 1);
        ASN1_OBJECT_free(obj);
        int m = smki_ca_oid_text(content, len, mine, sizeof mine);
        if (m == -2) {
            past64++;
            continue;
        }
        if (m != n || strcmp(mine, theirs) != 0) print_error("mine %s, OpenSSL %s\n", mine, theirs);
        assert_int_equal(m, n);
        assert_string_equal(mine, theirs);
    }
    assert_true(past64 > 0);
    static const uint8_t HW_TYPE[] = {0x2a, 0x86, 0x3a, 0x00, 0x01, 0x84, 0x8f, 0xb9, 0x0f, 0x01, 0x02, 0x02, 0x01};
    assert_int_equal(smki_ca_oid_text(HW_TYPE, sizeof HW_TYPE, mine, sizeof mine), 27);
    assert_string_equal(mine, "1.2.826.0.1.8641679.1.2.2.1");
    static const uint8_t CUT[] = {0x2a, 0x86};
    assert_int_equal(smki_ca_oid_text(CUT, sizeof CUT, mine, sizeof mine), -1);
    assert_int_equal(smki_ca_oid_text(HW_TYPE, sizeof HW_TYPE, mine, 27), -1); /* no room for the NUL */
    assert_int_equal(smki_ca_oid_text(HW_TYPE, sizeof HW_TYPE, mine, 28), 27);
    assert_int_equal(smki_ca_oid_text(HW_TYPE, 0, mine, sizeof mine), -1);
    static const uint8_t DOUBLE_TWO[] = {0x88, 0x37, 0x03}; /* 2.999.3 */
    assert_int_equal(smki_ca_oid_text(DOUBLE_TWO, sizeof DOUBLE_TWO, mine, sizeof mine), 7);
    assert_string_equal(mine, "2.999.3");
}

/* smki_csr_parse_ex: the ECDSA verification is skipped only for octets that hash to the
 * SHA-256 recorded when they were verified before; any other octets are verified in
 * full, and every other check still applies to the skipped ones. */
static void test_parse_ex_skips_verification_only_for_octets_matching_the_recorded_hash(void **state)
{
    (void)state;
    size_t len;
    uint8_t *der = real_csr(&len);
    uint8_t h[32];
    unsigned hl = 32;
    assert_int_equal(EVP_Digest(der, len, h, &hl, EVP_sha256(), NULL), 1);
    smki_csr *c = NULL;
    int skipped = -1;
    smki_csr_parse_opts o = {h, &skipped};
    assert_ok(smki_csr_parse_ex(der, len, &o, &c));
    assert_int_equal(skipped, 1);
    check_real(c, der, len);
    smki_csr_free(c);
    /* the octets changed (a bad signature) after the hash was recorded: verified, refused */
    der[len - 1] ^= 0x01;
    skipped = -1;
    assert_fails(smki_csr_parse_ex(der, len, &o, &c), SMKI_E_VERIFY, "proof of possession");
    assert_int_equal(skipped, 0);
    /* the recorded hash is of these bad octets: skipped, so the hash is what vouches for them */
    uint8_t bad_h[32];
    assert_int_equal(EVP_Digest(der, len, bad_h, &hl, EVP_sha256(), NULL), 1);
    smki_csr_parse_opts ob = {bad_h, &skipped};
    assert_ok(smki_csr_parse_ex(der, len, &ob, &c));
    assert_int_equal(skipped, 1);
    smki_csr_free(c);
    der[len - 1] ^= 0x01;
    /* a hash that matches nothing: verified in full, and these octets verify */
    h[0] ^= 0xff;
    assert_ok(smki_csr_parse_ex(der, len, &o, &c));
    assert_int_equal(skipped, 0);
    smki_csr_free(c);
    /* no options: smki_csr_parse */
    assert_ok(smki_csr_parse_ex(der, len, NULL, &c));
    smki_csr_free(c);
    /* strictness still applies to octets whose hash matches: a trailing octet is refused */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, der, len);
    longer[len] = 0;
    uint8_t long_h[32];
    assert_int_equal(EVP_Digest(longer, len + 1, long_h, &hl, EVP_sha256(), NULL), 1);
    smki_csr_parse_opts ol = {long_h, NULL};
    assert_fails(smki_csr_parse_ex(longer, len + 1, &ol, &c), SMKI_E_INPUT, "trailing");
    free(longer);
    free(der);
}

static void test_parse_refuses_a_change_to_the_signed_part(void **state)
{
    (void)state;
    size_t len;
    uint8_t *der = real_csr(&len);
    smki_csr *c = NULL;
    der[0xc0] ^= 0x01; /* the Device ID's last octet: 00-DB-12-34-56-78-90-A1 */
    assert_fails(smki_csr_parse(der, len, &c), SMKI_E_VERIFY, "proof of possession");
    free(der);
}

static void test_parse_refuses_every_single_bit_flip_of_the_real_csr(void **state)
{
    (void)state;
    size_t len;
    uint8_t *der = real_csr(&len);
    smki_csr *c = NULL;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            der[i] ^= (uint8_t)(1u << bit);
            int rc = smki_csr_parse(der, len, &c);
            if (rc == 0) fail_msg("a flip of bit %d of octet %zu was accepted", bit, i);
            assert_true(rc == SMKI_E_INPUT || rc == SMKI_E_REFUSED || rc == SMKI_E_VERIFY);
            assert_true(smki_error_msg()[0] != '\0');
            der[i] ^= (uint8_t)(1u << bit);
        }
    }
    free(der);
}

/* ---- Keys ------------------------------------------------------------------------------ */

static void test_parse_refuses_a_p384_key(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    assert_non_null(k);
    der_t d;
    openssl_csr(k, NULL, KU_DIGITAL_SIGNATURE, REAL_EUI, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "curve secp384r1 refused");
    EVP_PKEY_free(k);
}

static void test_parse_refuses_an_rsa_key(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(k);
    der_t d;
    openssl_csr(k, "GITTESTSUPPLIER", KU_DIGITAL_SIGNATURE, NULL, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "not an EC key");
    EVP_PKEY_free(k);
}

static void test_parse_refuses_a_compressed_point(void **state)
{
    (void)state;
    uint8_t point[65], compressed[33];
    p256_point(p256, point);
    compressed[0] = (uint8_t)(0x02 | (point[64] & 1));
    memcpy(compressed + 1, point + 1, 32);
    der_t spki = {0}, exts = {0}, d;
    spki_with_point(&spki, compressed, sizeof compressed);
    device_exts(&exts);
    csr_spec s = {.key = p256, .spki = &spki, .exts = &exts};
    build_csr(&s, &d); /* signed by the key whose point this is: the PoP would verify */
    assert_parse_fails(&d, SMKI_E_REFUSED, "compressed point refused");
}

static void test_parse_refuses_a_point_off_the_curve(void **state)
{
    (void)state;
    uint8_t point[65];
    p256_point(p256, point);
    point[64] ^= 0x01;
    der_t spki = {0}, exts = {0}, d;
    spki_with_point(&spki, point, sizeof point);
    device_exts(&exts);
    csr_spec s = {.key = p256, .spki = &spki, .exts = &exts};
    build_csr(&s, &d);
    /* the key check comes before the proof of possession, which could not verify */
    assert_parse_fails(&d, SMKI_E_INPUT, "point not on P-256");
}

static void test_parse_refuses_explicit_curve_parameters(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_PKEY_dup(p256);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_ENCODING, OSSL_PKEY_EC_ENCODING_EXPLICIT),
                     1);
    der_t exts = {0}, d;
    device_exts(&exts);
    csr_spec s = {.key = k, .exts = &exts};
    build_csr(&s, &d);
    assert_true(d.n > 300); /* the curve is spelt out */
    /* hsm's loader takes such a key (it is P-256); the CA must not copy it into a
     * certificate, which may carry only the named-curve form */
    assert_parse_fails(&d, SMKI_E_REFUSED, "SubjectPublicKeyInfo is not the named-curve P-256 form");
    EVP_PKEY_free(k);
}

/* ---- Key usage ---------------------------------------------------------------------------- */

static void test_parse_reads_a_ka_request_made_by_openssl(void **state)
{
    (void)state;
    der_t d;
    openssl_csr(p256, NULL, KU_KEY_AGREEMENT, REAL_EUI, &d);
    smki_csr *c = NULL;
    assert_ok(parse(&d, &c));
    assert_int_equal(c->usage, SMKI_USAGE_KA);
    assert_memory_equal(c->hw_serial.b, REAL_EUI, 8);
    assert_true(c->is_subject_empty);
    uint8_t point[65];
    p256_point(p256, point);
    assert_memory_equal(c->point, point, 65);
    assert_ok(smki_csr_check_request(c, 1, NULL, SMKI_USAGE_KA));
    smki_csr_free(c);
}

static void test_parse_refuses_both_ds_and_ka(void **state)
{
    (void)state;
    der_t d;
    openssl_csr(p256, NULL, KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT, REAL_EUI, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "both DS and KA");
    der_t exts = {0};
    ext_ku(&exts, BOTH_BITS, sizeof BOTH_BITS, 3);
    ext_san_hw(&exts, REAL_EUI, 8);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "both DS and KA");
}

static void test_parse_refuses_a_csr_without_key_usage(void **state)
{
    (void)state;
    der_t none, san_only = {0}, d;
    openssl_csr(p256, NULL, 0, NULL, &none); /* no extensionRequest at all */
    assert_parse_fails(&none, SMKI_E_REFUSED, "no keyUsage");
    ext_san_hw(&san_only, REAL_EUI, 8);
    device_csr_with(&san_only, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "no keyUsage");
}

static void test_parse_refuses_key_usage_bits_beyond_ds_and_ka(void **state)
{
    (void)state;
    der_t d;
    openssl_csr(p256, NULL, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT, REAL_EUI, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "requests keyEncipherment: only exactly one of digitalSignature");
    openssl_csr(p256, NULL, KU_KEY_AGREEMENT | KU_KEY_CERT_SIGN | KU_CRL_SIGN, REAL_EUI, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "keyCertSign, cRLSign");
    openssl_csr(p256, NULL, KU_NON_REPUDIATION, REAL_EUI, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "nonRepudiation");

    der_t exts = {0};
    static const uint8_t decipher_only[] = {0x08, 0x80}; /* keyAgreement, decipherOnly */
    ext_ku(&exts, decipher_only, sizeof decipher_only, 7);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "decipherOnly");

    static const uint8_t bit12[] = {0x80, 0x08}; /* digitalSignature, a bit keyUsage does not name */
    exts.n = 0;
    ext_ku(&exts, bit12, sizeof bit12, 0);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "bit 12");
}

static void test_parse_refuses_key_usage_with_neither_ds_nor_ka(void **state)
{
    (void)state;
    der_t exts = {0}, d;
    ext_ku(&exts, NULL, 0, 0);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "neither digitalSignature (DS) nor keyAgreement (KA)");
}

static void test_parse_refuses_a_malformed_key_usage(void **state)
{
    (void)state;
    der_t exts = {0}, d;
    static const uint8_t padded[] = {0x81}; /* digitalSignature and a bit among the 7 unused */
    ext_ku(&exts, padded, sizeof padded, 7);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_INPUT, "unused bits");

    exts.n = 0;
    ext_ku(&exts, DS_BITS, sizeof DS_BITS, 8);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_INPUT, "8 unused bits is malformed");

    exts.n = 0;
    ext_ku(&exts, DS_BITS, sizeof DS_BITS, 7);
    ext_ku(&exts, DS_BITS, sizeof DS_BITS, 7);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_INPUT, "keyUsage twice");
}

/* ---- subjectAltName --------------------------------------------------------------------- */

static void test_parse_refuses_a_hw_serial_of_7_or_9_octets(void **state)
{
    (void)state;
    static const uint8_t nine[9] = {0x00, 0xdb, 0x12, 0x34, 0x56, 0x78, 0x90, 0xa0, 0x01};
    der_t exts = {0}, d;
    ext_ku(&exts, DS_BITS, sizeof DS_BITS, 7);
    ext_san_hw(&exts, REAL_EUI, 7);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "hwSerialNum of 7 octets refused");

    exts.n = 0;
    ext_ku(&exts, DS_BITS, sizeof DS_BITS, 7);
    ext_san_hw(&exts, nine, sizeof nine);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "hwSerialNum of 9 octets refused");
}

static void test_parse_refuses_a_dns_name_san(void **state)
{
    (void)state;
    der_t exts = {0}, d;
    ext_ku(&exts, DS_BITS, sizeof DS_BITS, 7);
    ext_san_dns(&exts, "meter.example");
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "subjectAltName dNSName refused");
}

static void test_parse_refuses_a_san_of_two_names(void **state)
{
    (void)state;
    der_t hw = {0}, names = {0}, value = {0}, exts = {0}, d;
    hw_module_name(&hw, REAL_EUI, 8);
    general_names_other(&names, OID_HW_NAME, sizeof OID_HW_NAME, &hw);
    general_names_other(&names, OID_HW_NAME, sizeof OID_HW_NAME, &hw);
    tlv(&value, 0x30, names.b, names.n);
    ext_ku(&exts, DS_BITS, sizeof DS_BITS, 7);
    ext(&exts, OID_SAN, sizeof OID_SAN, 1, &value);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "holds 2 names");
}

static void test_parse_refuses_an_other_name_of_another_type(void **state)
{
    (void)state;
    der_t hw = {0}, names = {0}, value = {0}, exts = {0}, d;
    hw_module_name(&hw, REAL_EUI, 8);
    general_names_other(&names, OID_PERMANENT_ID, sizeof OID_PERMANENT_ID, &hw);
    tlv(&value, 0x30, names.b, names.n);
    ext_ku(&exts, DS_BITS, sizeof DS_BITS, 7);
    ext(&exts, OID_SAN, sizeof OID_SAN, 1, &value);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "otherName id-on-permanentIdentifier (1.3.6.1.5.5.7.8.3) refused");
}

static void test_parse_refuses_a_malformed_hw_module_name(void **state)
{
    (void)state;
    /* the otherName value is a UTF8String, not the SEQUENCE */
    der_t inner = {0}, names = {0}, value = {0}, exts = {0}, d;
    tlv(&inner, 0x0c, "00DB1234567890A0", 16);
    general_names_other(&names, OID_HW_NAME, sizeof OID_HW_NAME, &inner);
    tlv(&value, 0x30, names.b, names.n);
    ext_ku(&exts, DS_BITS, sizeof DS_BITS, 7);
    ext(&exts, OID_SAN, sizeof OID_SAN, 1, &value);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_INPUT, "hardwareModuleName is not a SEQUENCE");

    /* the SEQUENCE without its hwSerialNum */
    der_t body = {0};
    inner.n = names.n = value.n = exts.n = 0;
    tlv(&body, 0x06, OID_HW_TYPE, sizeof OID_HW_TYPE);
    tlv(&inner, 0x30, body.b, body.n);
    general_names_other(&names, OID_HW_NAME, sizeof OID_HW_NAME, &inner);
    tlv(&value, 0x30, names.b, names.n);
    ext_ku(&exts, DS_BITS, sizeof DS_BITS, 7);
    ext(&exts, OID_SAN, sizeof OID_SAN, 1, &value);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_INPUT, "hwSerialNum missing");

    /* a SAN value that is not GeneralNames */
    value.n = exts.n = 0;
    tlv(&value, 0x04, "xx", 2);
    ext_ku(&exts, DS_BITS, sizeof DS_BITS, 7);
    ext(&exts, OID_SAN, sizeof OID_SAN, 1, &value);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_INPUT, "does not decode as GeneralNames");
}

/* ---- Other extensions, attributes, structure -------------------------------------------- */

static void test_parse_refuses_an_unknown_critical_extension(void **state)
{
    (void)state;
    der_t exts = {0}, value = {0}, d;
    tlv(&value, 0x05, NULL, 0);
    device_exts(&exts);
    ext(&exts, OID_UNKNOWN, sizeof OID_UNKNOWN, 1, &value);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "critical extension 1.2.3.4");

    der_t bc = {0};
    value.n = exts.n = 0;
    tlv(&bc, 0x30, NULL, 0); /* basicConstraints: CA:FALSE */
    device_exts(&exts);
    ext(&exts, OID_BASIC_CONSTRAINTS, sizeof OID_BASIC_CONSTRAINTS, 1, &bc);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "critical extension basicConstraints (2.5.29.19)");
}

static void test_parse_ignores_unknown_non_critical_extensions_and_attributes(void **state)
{
    (void)state;
    der_t exts = {0}, value = {0}, attrs = {0}, attr = {0}, pw = {0}, pw_set = {0}, d;
    tlv(&value, 0x05, NULL, 0);
    device_exts(&exts);
    ext(&exts, OID_UNKNOWN, sizeof OID_UNKNOWN, 0, &value);
    tlv(&pw, 0x0c, "secret", 6);
    tlv(&pw_set, 0x31, pw.b, pw.n);
    tlv(&attr, 0x06, OID_CHALLENGE_PW, sizeof OID_CHALLENGE_PW);
    put(&attr, pw_set.b, pw_set.n);
    tlv(&attrs, 0x30, attr.b, attr.n);
    csr_spec s = {.key = p256, .exts = &exts, .attrs = &attrs};
    build_csr(&s, &d);
    smki_csr *c = NULL;
    assert_ok(parse(&d, &c));
    assert_int_equal(c->usage, SMKI_USAGE_DS);
    assert_ok(smki_csr_check_request(c, 1, NULL, 0));
    smki_csr_free(c);
}

static void test_parse_refuses_two_extension_requests(void **state)
{
    (void)state;
    der_t exts = {0}, ext_seq = {0}, set = {0}, attr = {0}, attrs = {0}, d;
    device_exts(&exts);
    tlv(&ext_seq, 0x30, exts.b, exts.n);
    tlv(&set, 0x31, ext_seq.b, ext_seq.n);
    tlv(&attr, 0x06, OID_EXT_REQ, sizeof OID_EXT_REQ);
    put(&attr, set.b, set.n);
    tlv(&attrs, 0x30, attr.b, attr.n);
    csr_spec s = {.key = p256, .exts = &exts, .attrs = &attrs};
    build_csr(&s, &d);
    assert_parse_fails(&d, SMKI_E_INPUT, "two extensionRequest attributes");
}

static void test_parse_refuses_other_signature_algorithms(void **state)
{
    (void)state;
    der_t exts = {0}, d;
    device_exts(&exts);
    csr_spec s = {.key = p256, .exts = &exts, .alg = ALG_ECDSA_SHA384, .alg_len = sizeof ALG_ECDSA_SHA384};
    build_csr(&s, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "signature algorithm ecdsa-with-SHA384 (1.2.840.10045.4.3.3) refused");
    s.alg = ALG_ECDSA_SHA256_NULL;
    s.alg_len = sizeof ALG_ECDSA_SHA256_NULL;
    build_csr(&s, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "parameters must be absent");
}

static void test_parse_refuses_a_version_other_than_0(void **state)
{
    (void)state;
    der_t exts = {0}, d;
    device_exts(&exts);
    csr_spec s = {.key = p256, .exts = &exts, .version = 1};
    build_csr(&s, &d);
    assert_parse_fails(&d, SMKI_E_INPUT, "version");
}

static void test_parse_refuses_lengths_not_in_their_shortest_form(void **state)
{
    (void)state;
    der_t exts = {0}, subject = {0}, d;
    put(&subject, "\x30\x81\x00", 3); /* the empty Name, its length in long form */
    device_exts(&exts);
    csr_spec s = {.key = p256, .exts = &exts, .subject = &subject};
    build_csr(&s, &d);
    assert_parse_fails(&d, SMKI_E_INPUT, "shortest form");

    /* indefinite length on the outside */
    size_t len;
    uint8_t *der = real_csr(&len);
    der_t indefinite = {0};
    put(&indefinite, "\x30\x80", 2);
    put(&indefinite, der + 4, len - 4);
    put(&indefinite, "\x00\x00", 2);
    assert_parse_fails(&indefinite, SMKI_E_INPUT, "indefinite");
    free(der);
}

static void test_parse_refuses_malformed_structure(void **state)
{
    (void)state;
    der_t exts, value, d;
    static const struct {
        const char *raw; /* one Extension TLV, after a good keyUsage and SAN */
        size_t len;
        const char *needle;
    } bad[] = {
        {"\x30\x07\x06\x02\x80\x01\x04\x01\x00", 9, "extnID has a subidentifier not in its shortest form"},
        {"\x30\x06\x06\x01\x81\x04\x01\x00", 8, "extnID ends inside a subidentifier"},
        {"\x30\x05\x06\x00\x04\x01\x00", 7, "extnID is an empty OBJECT IDENTIFIER"},
        {"\x30\x0a\x06\x03\x2a\x03\x04\x01\x01\x01\x04\x00", 12, "critical flag 0x01 is not a DER BOOLEAN"},
        {"\x30\x0b\x06\x03\x2a\x03\x04\x01\x02\xff\xff\x04\x00", 13, "critical flag is not one octet"},
        {"\x30\x08\x06\x03\x2a\x03\x04\x04\x00\x00", 10, "1 unexpected octet(s) at the end of Extension"},
        {"\x30\x05\x06\x03\x2a\x03\x04", 7, "extnValue missing"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        exts.n = 0;
        device_exts(&exts);
        put(&exts, bad[i].raw, bad[i].len);
        device_csr_with(&exts, &d);
        assert_parse_fails(&d, SMKI_E_INPUT, bad[i].needle);
    }

    /* subjectAltName twice */
    exts.n = 0;
    device_exts(&exts);
    ext_san_hw(&exts, REAL_EUI, 8);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_INPUT, "subjectAltName twice");

    /* a hwType whose dotted text would not fit */
    uint8_t long_oid[80];
    long_oid[0] = 0x2a;
    memset(long_oid + 1, 0x7f, sizeof long_oid - 1); /* 1.2.127.127... */
    der_t hw = {0}, body = {0}, names = {0};
    tlv(&body, 0x06, long_oid, sizeof long_oid);
    tlv(&body, 0x04, REAL_EUI, 8);
    tlv(&hw, 0x30, body.b, body.n);
    general_names_other(&names, OID_HW_NAME, sizeof OID_HW_NAME, &hw);
    value.n = exts.n = 0;
    tlv(&value, 0x30, names.b, names.n);
    ext_ku(&exts, DS_BITS, sizeof DS_BITS, 7);
    ext(&exts, OID_SAN, sizeof OID_SAN, 1, &value);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "hwType OID is malformed or longer than 127 characters");
    /* the same past 127 content octets, where the OID's length takes the long form */
    uint8_t longer[130];
    longer[0] = 0x2a;
    memset(longer + 1, 0x01, sizeof longer - 1); /* 1.2.1.1... */
    hw.n = body.n = names.n = value.n = exts.n = 0;
    tlv(&body, 0x06, longer, sizeof longer);
    tlv(&body, 0x04, REAL_EUI, 8);
    tlv(&hw, 0x30, body.b, body.n);
    general_names_other(&names, OID_HW_NAME, sizeof OID_HW_NAME, &hw);
    tlv(&value, 0x30, names.b, names.n);
    ext_ku(&exts, DS_BITS, sizeof DS_BITS, 7);
    ext(&exts, OID_SAN, sizeof OID_SAN, 1, &value);
    device_csr_with(&exts, &d);
    assert_parse_fails(&d, SMKI_E_REFUSED, "hwType OID is malformed or longer than 127 characters");

    /* extensionRequest with two values */
    der_t ext_seq = {0}, set = {0}, attr = {0}, attrs = {0};
    exts.n = 0;
    device_exts(&exts);
    tlv(&ext_seq, 0x30, exts.b, exts.n);
    put(&set, ext_seq.b, ext_seq.n);
    put(&set, ext_seq.b, ext_seq.n);
    tlv(&attr, 0x06, OID_EXT_REQ, sizeof OID_EXT_REQ);
    tlv(&attr, 0x31, set.b, set.n);
    tlv(&attrs, 0x30, attr.b, attr.n);
    csr_spec s = {.key = p256, .attrs = &attrs};
    build_csr(&s, &d);
    assert_parse_fails(&d, SMKI_E_INPUT, "extensionRequest holds more than one value");

    /* the signature BIT STRING with unused bits; a signatureAlgorithm that is not one */
    exts.n = 0;
    device_exts(&exts);
    csr_spec unused = {.key = p256, .exts = &exts, .sig_unused_bits = 1};
    build_csr(&unused, &d);
    assert_parse_fails(&d, SMKI_E_INPUT, "signature: BIT STRING with 1 unused bits");
    csr_spec not_alg = {.key = p256, .exts = &exts, .alg = (const uint8_t *)"\x30\x03\x02\x01\x00", .alg_len = 5};
    build_csr(&not_alg, &d);
    assert_parse_fails(&d, SMKI_E_INPUT, "signatureAlgorithm is not an AlgorithmIdentifier");

    /* a subject of one empty RDN */
    der_t subject = {0};
    put(&subject, "\x30\x02\x31\x00", 4);
    csr_spec empty_rdn = {.key = p256, .exts = &exts, .subject = &subject};
    build_csr(&empty_rdn, &d);
    smki_csr *c = NULL;
    assert_int_equal(parse(&d, &c), SMKI_E_INPUT);
    assert_null(c);
}

/* ---- Tying a CSR to a request ------------------------------------------------------------- */

static smki_csr *parsed_real(void)
{
    size_t len;
    uint8_t *der = real_csr(&len);
    smki_csr *c = NULL;
    assert_ok(smki_csr_parse(der, len, &c));
    free(der);
    return c;
}

static void test_check_request_accepts_the_real_csr_for_its_device(void **state)
{
    (void)state;
    smki_csr *c = parsed_real();
    smki_eui64_t eui;
    assert_ok(smki_eui64_parse("00-DB-12-34-56-78-90-A0", &eui));
    assert_ok(smki_csr_check_request(c, 1, &eui, SMKI_USAGE_DS));
    assert_ok(smki_csr_check_request(c, 1, NULL, 0));
    smki_csr_free(c);
}

static void test_check_request_refuses_an_eui_mismatch(void **state)
{
    (void)state;
    smki_csr *c = parsed_real();
    smki_eui64_t eui;
    assert_ok(smki_eui64_parse("00DB1234567890A1", &eui));
    assert_fails(smki_csr_check_request(c, 1, &eui, SMKI_USAGE_DS), SMKI_E_REFUSED,
                 "EUI-64 mismatch: the request is for device 00-DB-12-34-56-78-90-A1, the CSR's hardwareModuleName "
                 "says 00-DB-12-34-56-78-90-A0");
    smki_csr_free(c);
}

static void test_check_request_refuses_a_usage_mismatch(void **state)
{
    (void)state;
    smki_csr *c = parsed_real();
    assert_fails(smki_csr_check_request(c, 1, NULL, SMKI_USAGE_KA), SMKI_E_REFUSED,
                 "the request is for KA (keyAgreement), the CSR requests DS (digitalSignature)");
    smki_csr_free(c);
}

static void test_check_request_refuses_an_organisation_request_with_a_hw_module_name(void **state)
{
    (void)state;
    smki_csr *c = parsed_real();
    assert_fails(smki_csr_check_request(c, 0, NULL, SMKI_USAGE_DS), SMKI_E_REFUSED,
                 "organisation request refused: the CSR carries a hardwareModuleName (Device ID "
                 "00-DB-12-34-56-78-90-A0)");
    smki_csr_free(c);
}

static void test_check_request_refuses_a_device_csr_with_a_subject(void **state)
{
    (void)state;
    der_t exts = {0}, subject = {0}, d;
    name_cn(&subject, "meter 7");
    device_exts(&exts);
    csr_spec s = {.key = p256, .exts = &exts, .subject = &subject};
    build_csr(&s, &d);
    smki_csr *c = NULL;
    assert_ok(parse(&d, &c));
    assert_false(c->is_subject_empty);
    assert_fails(smki_csr_check_request(c, 1, NULL, 0), SMKI_E_REFUSED,
                 "the CSR's subject must be empty, not \"/CN=meter 7\"");
    smki_csr_free(c);
}

static void test_check_request_refuses_a_device_request_without_a_hw_module_name(void **state)
{
    (void)state;
    der_t d;
    openssl_csr(p256, NULL, KU_DIGITAL_SIGNATURE, NULL, &d);
    smki_csr *c = NULL;
    assert_ok(parse(&d, &c));
    assert_false(c->has_hw_module_name);
    assert_fails(smki_csr_check_request(c, 1, NULL, 0), SMKI_E_REFUSED, "no hardwareModuleName");
    smki_csr_free(c);
}

static void test_check_request_accepts_an_organisation_csr_and_records_its_subject(void **state)
{
    (void)state;
    der_t d;
    openssl_csr(p256, "GITTESTSUPPLIER", KU_KEY_AGREEMENT, NULL, &d);
    smki_csr *c = NULL;
    assert_ok(parse(&d, &c));
    assert_false(c->is_subject_empty);
    char cn[64];
    assert_int_equal(X509_NAME_get_text_by_NID(c->subject, NID_commonName, cn, sizeof cn), 15);
    assert_string_equal(cn, "GITTESTSUPPLIER");
    assert_ok(smki_csr_check_request(c, 0, NULL, SMKI_USAGE_KA));
    smki_csr_free(c);
}

/* ---- Threads --------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *der;
    size_t len;
    int failures;
} thread_job;

static void *parse_many(void *arg)
{
    thread_job *job = arg;
    for (int i = 0; i < 50; i++) {
        smki_csr *c = NULL;
        if (smki_csr_parse(job->der, job->len, &c) != 0 || c->usage != SMKI_USAGE_DS) job->failures++;
        smki_csr_free(c);
    }
    return NULL;
}

static void test_parse_is_safe_from_several_threads(void **state)
{
    (void)state;
    size_t len;
    uint8_t *der = real_csr(&len);
    pthread_t t[4];
    thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){der, len, 0};
        assert_int_equal(pthread_create(&t[i], NULL, parse_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(jobs[i].failures, 0);
    }
    free(der);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_reads_the_real_device_csr_from_der),
        cmocka_unit_test(test_parse_reads_the_real_device_csr_from_pem_under_both_labels),
        cmocka_unit_test(test_parse_refuses_every_truncation_of_the_real_csr),
        cmocka_unit_test(test_parse_refuses_a_trailing_byte),
        cmocka_unit_test(test_parse_refuses_pem_garbage),
        cmocka_unit_test(test_parse_refuses_input_over_the_size_limit),
        cmocka_unit_test(test_parse_refuses_a_bad_signature),
        cmocka_unit_test(test_parse_ex_skips_verification_only_for_octets_matching_the_recorded_hash),
        cmocka_unit_test(test_parse_refuses_a_signature_value_that_is_not_strict_der),
        cmocka_unit_test(test_oid_text_matches_openssl),
        cmocka_unit_test(test_parse_refuses_a_change_to_the_signed_part),
        cmocka_unit_test(test_parse_refuses_every_single_bit_flip_of_the_real_csr),
        cmocka_unit_test(test_parse_refuses_a_p384_key),
        cmocka_unit_test(test_parse_refuses_an_rsa_key),
        cmocka_unit_test(test_parse_refuses_a_compressed_point),
        cmocka_unit_test(test_parse_refuses_a_point_off_the_curve),
        cmocka_unit_test(test_parse_refuses_explicit_curve_parameters),
        cmocka_unit_test(test_parse_reads_a_ka_request_made_by_openssl),
        cmocka_unit_test(test_parse_refuses_both_ds_and_ka),
        cmocka_unit_test(test_parse_refuses_a_csr_without_key_usage),
        cmocka_unit_test(test_parse_refuses_key_usage_bits_beyond_ds_and_ka),
        cmocka_unit_test(test_parse_refuses_key_usage_with_neither_ds_nor_ka),
        cmocka_unit_test(test_parse_refuses_a_malformed_key_usage),
        cmocka_unit_test(test_parse_refuses_a_hw_serial_of_7_or_9_octets),
        cmocka_unit_test(test_parse_refuses_a_dns_name_san),
        cmocka_unit_test(test_parse_refuses_a_san_of_two_names),
        cmocka_unit_test(test_parse_refuses_an_other_name_of_another_type),
        cmocka_unit_test(test_parse_refuses_a_malformed_hw_module_name),
        cmocka_unit_test(test_parse_refuses_an_unknown_critical_extension),
        cmocka_unit_test(test_parse_ignores_unknown_non_critical_extensions_and_attributes),
        cmocka_unit_test(test_parse_refuses_two_extension_requests),
        cmocka_unit_test(test_parse_refuses_other_signature_algorithms),
        cmocka_unit_test(test_parse_refuses_a_version_other_than_0),
        cmocka_unit_test(test_parse_refuses_lengths_not_in_their_shortest_form),
        cmocka_unit_test(test_parse_refuses_malformed_structure),
        cmocka_unit_test(test_check_request_accepts_the_real_csr_for_its_device),
        cmocka_unit_test(test_check_request_refuses_an_eui_mismatch),
        cmocka_unit_test(test_check_request_refuses_a_usage_mismatch),
        cmocka_unit_test(test_check_request_refuses_an_organisation_request_with_a_hw_module_name),
        cmocka_unit_test(test_check_request_refuses_a_device_csr_with_a_subject),
        cmocka_unit_test(test_check_request_refuses_a_device_request_without_a_hw_module_name),
        cmocka_unit_test(test_check_request_accepts_an_organisation_csr_and_records_its_subject),
        cmocka_unit_test(test_parse_is_safe_from_several_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
