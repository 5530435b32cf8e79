/* Unit tests of duis/: the DCC's signed vectors verify; what smki signs verifies and
 * keeps the profile; every refusal (signer, profile, wrapping, hostile XML) by name;
 * the 28 RTDS requests correlate with their pre-commands (or commands) as the DCC
 * paired them, and crafted mismatches are refused by field; smki's own CA issues
 * xmlSign and DSP xmlSign certificates that lint clean, sign, verify and revoke. */
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dirent.h>

#include "ca/ca.h"
#include "ca/crl.h"
#include "duis/duis.h"
#include "duis/duis_private.h"
#include "helpers.h"

#define KS "vectors/duis/keystore/"
#define SUPPLIER "90b3d51f30010000-xmlsign"
#define NETOP "90b3d51f30020000-xmlsign"
#define DSP "90b3d51f30000002-dspxmlsign"
#define REQ_ECS01A_FD "vectors/duis/requests/ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS_REQUEST_DUIS.XML"
#define REQ_ECS01A_IMM "vectors/duis/requests/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_REQUEST_DUIS.XML"
#define REQ_NO "vectors/duis/requests/CS02bNOByNO_6.15.1_SUCCESS_REQUEST_DUIS.XML"
#define RESPONSE "vectors/duis/responses/11.2_CS08_RESPONSE_DSP_SIGNED_DUIS.XML"
#define T2020 ((time_t)1577836800) /* 2020-01-01T00:00:00Z: inside every vector's validity */

/* ---- Helpers --------------------------------------------------------------------------- */
static X509 *load_cert(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, KS "%s.pem", name);
    X509 *c = NULL;
    assert_ok(smki_cert_load_file(test_shared_path(rel), &c));
    return c;
}

static smki_key *load_key(const char *name)
{
    char ref[1200];
    snprintf(ref, sizeof ref, "file:%s", test_shared_path(KS));
    size_t n = strlen(ref);
    snprintf(ref + n, sizeof ref - n, "%s.key", name);
    smki_key *k = NULL;
    assert_ok(smki_key_open(ref, NULL, &k));
    return k;
}

static smki_duis_trust *keystore_trust(void)
{
    smki_duis_trust *t = NULL;
    assert_ok(smki_duis_trust_new(&t));
    assert_ok(smki_duis_trust_add_dir(t, test_shared_path("vectors/duis/keystore")));
    return t;
}

/* A NUL-terminated copy of the bytes. */
static char *dupz(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* text with the first `from` replaced by `to` (the test fails if there is none). */
static char *replace(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    if (!at) fail_msg("'%s' not found", from);
    size_t a = (size_t)(at - text), b = strlen(from), c = strlen(to), n = strlen(text);
    char *s = malloc(n - b + c + 1);
    assert_non_null(s);
    memcpy(s, text, a);
    memcpy(s + a, to, c);
    memcpy(s + a + c, at + b, n - a - b + 1);
    return s;
}

/* Sign a vector request with a keystore key and certificate, at 2020. */
static char *sign_vector(const char *rel, const char *signer)
{
    size_t len;
    uint8_t *xml = test_read_shared(rel, &len);
    smki_key *k = load_key(signer);
    X509 *c = load_cert(signer);
    uint8_t *out = NULL;
    size_t out_len = 0;
    assert_ok(smki_duis_sign(k, c, T2020, xml, len, &out, &out_len));
    char *s = dupz(out, out_len);
    free(out);
    free(xml);
    X509_free(c);
    smki_key_free(k);
    return s;
}

static int verify_text(smki_duis_trust *t, const char *xml, time_t at, smki_duis_report *rep)
{
    return smki_duis_verify(t, at, (const uint8_t *)xml, strlen(xml), rep);
}

/* ---- The DCC's vectors ------------------------------------------------------------------- */
static void test_verify_accepts_every_signed_vector_and_the_response(void **state)
{
    (void)state;
    static const char *const files[] = {
        "vectors/duis/signed/CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_REQUEST_DUIS_SIGNED.XML",
        "vectors/duis/signed/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_REQUEST_DUIS_SIGNED.XML",
        "vectors/duis/signed/ECS70Commission_8.1.1_SUCCESS_REQUEST_DUIS_SIGNED.XML",
        RESPONSE,
    };
    smki_duis_trust *t = keystore_trust();
    assert_ok(smki_duis_trust_load_schema(t, test_shared_path("vectors/duis/schema")));
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t len;
        uint8_t *xml = test_read_shared(files[i], &len);
        smki_duis_report rep;
        assert_ok(smki_duis_verify(t, T2020, xml, len, &rep));
        assert_int_equal(rep.schema_checked, 1);
        char eui[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(&rep.signer, SMKI_EUI64_PLAIN, eui);
        if (rep.info.kind == SMKI_DUIS_RESPONSE) {
            assert_string_equal(eui, "90B3D51F30000002");
            assert_int_equal(rep.signer_role, 0x89);
            assert_string_equal(rep.info.variant, "11.2");
        } else {
            assert_string_equal(eui, "90B3D51F30010000");
            assert_int_equal(rep.signer_role, 0x87);
            assert_string_equal(rep.ref.issuer, "CN=Z1,OU=07");
            assert_string_equal(rep.ref.serial, "27572613927499351639968579586655397031");
        }
        free(xml);
    }
    smki_duis_trust_free(t);
}

static void test_read_gives_the_header_facts(void **state)
{
    (void)state;
    size_t len;
    uint8_t *xml = test_read_shared(REQ_ECS01A_FD, &len);
    smki_duis_info i;
    assert_ok(smki_duis_read(xml, len, &i));
    assert_int_equal(i.kind, SMKI_DUIS_REQUEST);
    assert_string_equal(i.variant, "1.1.1");
    assert_string_equal(i.service_reference, "1.1");
    assert_int_equal(i.request_id.counter, 1008);
    assert_int_equal(smki_eui64_to_u64(&i.request_id.originator), 0x90B3D51F30010000ull);
    assert_int_equal(smki_eui64_to_u64(&i.request_id.target), 0x00DB1234567890A0ull);
    assert_int_equal(i.has_execution_time, 1);
    assert_int_equal((long long)i.execution_time, 1894698000LL); /* 2030-01-15T09:00:00Z */
    assert_int_equal(i.has_signature, 1);
    free(xml);
    xml = test_read_shared(RESPONSE, &len);
    assert_ok(smki_duis_read(xml, len, &i));
    assert_int_equal(i.kind, SMKI_DUIS_RESPONSE);
    assert_int_equal(i.has_response_id, 1);
    assert_int_equal(smki_eui64_to_u64(&i.response_id.originator), 0x000781D7000036CEull);
    free(xml);
}

/* ---- Signing ------------------------------------------------------------------------------ */
static void test_sign_replaces_the_placeholder_and_verifies(void **state)
{
    (void)state;
    char *s = sign_vector(REQ_ECS01A_FD, SUPPLIER);
    /* One signature, the profile's algorithms, the placeholder's values gone. */
    assert_null(strstr(s, "ZGVmYXVsdA=="));
    assert_non_null(strstr(s, "<ds:Signature "));
    assert_null(strstr(strstr(s, "<ds:Signature ") + 1, "<ds:Signature "));
    assert_null(strstr(s, "<ds:Signature>"));
    assert_non_null(strstr(s, "Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\""));
    assert_non_null(strstr(s, "Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256\""));
    assert_non_null(strstr(s, "<ds:Reference URI=\"\">"));
    assert_non_null(strstr(s, "<ds:X509IssuerName>CN=Z1,OU=07</ds:X509IssuerName>"));
    assert_non_null(strstr(s, "<ds:X509SerialNumber>27572613927499351639968579586655397031</ds:X509SerialNumber>"));
    /* The signature is the root's last child. */
    const char *end = strstr(s, "</ds:Signature>");
    assert_non_null(end);
    end += strlen("</ds:Signature>");
    while (*end == '\n' || *end == ' ') end++;
    assert_true(strncmp(end, "</sr:Request>", 13) == 0);
    smki_duis_trust *t = keystore_trust();
    smki_duis_report rep;
    assert_ok(verify_text(t, s, T2020, &rep));
    assert_int_equal(rep.signer_role, 0x87);
    smki_duis_trust_free(t);
    free(s);
}

static void test_sign_appends_a_signature_to_an_unsigned_request(void **state)
{
    (void)state;
    size_t len;
    uint8_t *xml = test_read_shared(REQ_ECS01A_IMM, &len);
    char *text = dupz(xml, len);
    const char *a = strstr(text, "<ds:Signature"), *b = strstr(text, "</ds:Signature>");
    assert_non_null(a);
    assert_non_null(b);
    b += strlen("</ds:Signature>");
    memmove((char *)a, b, strlen(b) + 1); /* the placeholder removed */
    smki_key *k = load_key(SUPPLIER);
    X509 *c = load_cert(SUPPLIER);
    uint8_t *out = NULL;
    size_t out_len;
    assert_ok(smki_duis_sign(k, c, T2020, (const uint8_t *)text, strlen(text), &out, &out_len));
    smki_duis_trust *t = keystore_trust();
    assert_ok(smki_duis_verify(t, T2020, out, out_len, NULL));
    smki_duis_trust_free(t);
    free(out);
    X509_free(c);
    smki_key_free(k);
    free(text);
    free(xml);
}

static void test_sign_refuses_wrong_signers_and_writes_nothing(void **state)
{
    (void)state;
    size_t len;
    uint8_t *xml = test_read_shared(REQ_ECS01A_FD, &len);
    smki_key *sk = load_key(SUPPLIER), *nk = load_key(NETOP), *dk = load_key(DSP);
    X509 *sc = load_cert(SUPPLIER), *nc = load_cert(NETOP), *dc = load_cert(DSP);
    X509 *ds = NULL;
    assert_ok(smki_cert_load_file(test_shared_path("vectors/gbcs/keystore/90b3d51f30010000-ds.pem"), &ds));
    uint8_t *out = (uint8_t *)"untouched";
    size_t out_len = 7;
    /* Another User's xmlSign certificate: not the originator. */
    assert_fails(smki_duis_sign(nk, nc, T2020, xml, len, &out, &out_len), SMKI_E_REFUSED, "business originator");
    assert_null(out);
    assert_int_equal(out_len, 0);
    /* The DCC's DSP xmlSign (role 89) does not sign Requests. */
    assert_fails(smki_duis_sign(dk, dc, T2020, xml, len, &out, &out_len), SMKI_E_REFUSED, "role 87");
    /* A supplier's GBCS DS certificate is not an xmlSign certificate. */
    smki_key *dsk = NULL;
    char ref[1200];
    snprintf(ref, sizeof ref, "file:%s", test_shared_path("vectors/gbcs/keystore/90b3d51f30010000-ds.key"));
    assert_ok(smki_key_open(ref, NULL, &dsk));
    assert_fails(smki_duis_sign(dsk, ds, T2020, xml, len, &out, &out_len), SMKI_E_REFUSED, "Remote Party Role 02");
    smki_key_free(dsk);
    /* Outside its validity. */
    assert_fails(smki_duis_sign(sk, sc, (time_t)7258118400LL /* 2200 */, xml, len, &out, &out_len), SMKI_E_REFUSED,
                 "not valid at");
    /* A key that is not the certificate's. */
    assert_fails(smki_duis_sign(nk, sc, T2020, xml, len, &out, &out_len), SMKI_E_REFUSED, "not the certificate's key");
    /* Not DUIS. */
    static const char other[] = "<?xml version=\"1.0\"?><x:Request xmlns:x=\"urn:other\"/>";
    assert_fails(smki_duis_sign(sk, sc, T2020, (const uint8_t *)other, sizeof other - 1, &out, &out_len), SMKI_E_INPUT,
                 "not sr:Request or sr:Response");
    /* A Response is signed with DSP xmlSign only. */
    size_t rlen;
    uint8_t *resp = test_read_shared(RESPONSE, &rlen);
    assert_fails(smki_duis_sign(sk, sc, T2020, resp, rlen, &out, &out_len), SMKI_E_REFUSED, "role 89");
    assert_ok(smki_duis_sign(dk, dc, T2020, resp, rlen, &out, &out_len));
    smki_duis_trust *t = keystore_trust();
    assert_ok(smki_duis_verify(t, T2020, out, out_len, NULL));
    smki_duis_trust_free(t);
    free(out);
    free(resp);
    X509_free(ds);
    X509_free(sc), X509_free(nc), X509_free(dc);
    smki_key_free(sk), smki_key_free(nk), smki_key_free(dk);
    free(xml);
}

static void test_sign_refuses_misplaced_or_doubled_signatures(void **state)
{
    (void)state;
    smki_key *k = load_key(SUPPLIER);
    X509 *c = load_cert(SUPPLIER);
    size_t len;
    uint8_t *xml = test_read_shared(REQ_ECS01A_FD, &len), *out = NULL;
    size_t out_len;
    char *text = dupz(xml, len);
    const char *a = strstr(text, "  <ds:Signature"), *b = strstr(text, "</ds:Signature>") + strlen("</ds:Signature>");
    char *sig = dupz((const uint8_t *)a, (size_t)(b - a));
    /* A second placeholder in the body. */
    size_t n = strlen(sig) + 16;
    char *ins = malloc(n);
    snprintf(ins, n, "<sr:Body>%s", sig);
    char *two = replace(text, "<sr:Body>", ins);
    assert_fails(smki_duis_sign(k, c, T2020, (const uint8_t *)two, strlen(two), &out, &out_len), SMKI_E_INPUT,
                 "2 ds:Signature elements");
    assert_null(out);
    /* One, but inside the body. */
    char *none = replace(text, sig, "");
    char *inside = replace(none, "<sr:Body>", ins);
    assert_fails(smki_duis_sign(k, c, T2020, (const uint8_t *)inside, strlen(inside), &out, &out_len), SMKI_E_INPUT,
                 "not a child of the root");
    /* One, before the body. */
    snprintf(ins, n, "%s<sr:Body>", sig);
    char *before = replace(none, "<sr:Body>", ins);
    assert_fails(smki_duis_sign(k, c, T2020, (const uint8_t *)before, strlen(before), &out, &out_len), SMKI_E_INPUT,
                 "it must be last");
    free(before), free(inside), free(none), free(two), free(ins), free(sig), free(text), free(xml);
    X509_free(c);
    smki_key_free(k);
}

/* Two threads signing and verifying with one signer and one trust set at once. */
typedef struct {
    const smki_duis_signer *signer;
    const smki_duis_trust *trust;
    const uint8_t *xml;
    size_t len;
    int failures;
} thread_job;

static void *sign_verify_loop(void *arg)
{
    thread_job *j = arg;
    for (int i = 0; i < 40; i++) {
        uint8_t *out = NULL;
        size_t n = 0;
        if (smki_duis_sign_with(j->signer, T2020, j->xml, j->len, &out, &n) != 0 ||
            smki_duis_verify(j->trust, T2020, out, n, NULL) != 0)
            j->failures++;
        free(out);
    }
    return NULL;
}

static void test_sign_and_verify_from_two_threads(void **state)
{
    (void)state;
    smki_key *k = load_key(SUPPLIER);
    X509 *c = load_cert(SUPPLIER);
    smki_duis_signer *s = NULL;
    assert_ok(smki_duis_signer_new(k, c, &s));
    smki_duis_trust *t = keystore_trust();
    size_t len;
    uint8_t *xml = test_read_shared(REQ_ECS01A_FD, &len);
    thread_job j[2] = {{s, t, xml, len, 0}, {s, t, xml, len, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, sign_verify_loop, &j[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    assert_int_equal(j[0].failures + j[1].failures, 0);
    free(xml);
    smki_duis_trust_free(t);
    smki_duis_signer_free(s);
    X509_free(c);
    smki_key_free(k);
}

/* ---- Verification refusals ------------------------------------------------------------------ */
static void test_verify_refuses_any_change(void **state)
{
    (void)state;
    char *s = sign_vector(REQ_ECS01A_FD, SUPPLIER);
    smki_duis_trust *t = keystore_trust();
    static const char *const edits[][3] = {
        {"<sr:CurrencyUnits>GBP", "<sr:CurrencyUnits>EUR", "Reference digest"},           /* text */
        {"<sr:TOUPrice index=\"1\">", "<sr:TOUPrice index=\"2\">", "Reference digest"},    /* attribute */
        {"<sr:DayName>1</sr:DayName>", "<sr:DayName>1</sr:DayName><sr:X/>", "Reference digest"}, /* element */
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *m = replace(s, edits[i][0], edits[i][1]);
        assert_fails(verify_text(t, m, T2020, NULL), SMKI_E_VERIFY, edits[i][2]);
        free(m);
    }
    /* SignedInfo (its DigestValue) and the signature value: one base64 character each. */
    static const char *const values[] = {"<ds:DigestValue>", "<ds:SignatureValue>"};
    static const char *const reasons[] = {"Reference digest does not match", "signature value does not verify"};
    for (size_t i = 0; i < 2; i++) {
        char *m = dupz((const uint8_t *)s, strlen(s));
        char *v = strstr(m, values[i]) + strlen(values[i]);
        *v = *v == 'A' ? 'B' : 'A';
        assert_fails(verify_text(t, m, T2020, NULL), SMKI_E_VERIFY, reasons[i]);
        free(m);
    }
    smki_duis_trust_free(t);
    free(s);
}

/* ---- The two verifications agree ----------------------------------------------------------
 * smki_duis_verify computes the digests from libxml2's C14N directly (duis/c14n.c);
 * xmlsec's own DSig processing is the independent check: on every vector, everything
 * smki signs, and every tampered variant of them, both give the same answer (the same
 * status, and on a failed check the same reason). */
static const char *verify_class(int rc)
{
    if (rc == 0) return "accepted";
    const char *m = smki_error_msg();
    if (strstr(m, "Reference digest does not match")) return "digest";
    if (strstr(m, "signature value does not verify")) return "signature";
    if (rc == SMKI_E_VERIFY) return "unprocessable";
    return m; /* before the engines part: the same check ran, the same message */
}

static size_t variants_checked, variants_by_digest, variants_by_signature;

static int engines_agree(smki_duis_trust *t, const char *xml, size_t len, const char *what)
{
    char a[600], b[600];
    int ra = smki_duis_engine_verify(DUIS_ENGINE_C14N, t, T2020, (const uint8_t *)xml, len, NULL);
    snprintf(a, sizeof a, "%d %s", ra, verify_class(ra));
    int rb = smki_duis_engine_verify(DUIS_ENGINE_XMLSEC, t, T2020, (const uint8_t *)xml, len, NULL);
    snprintf(b, sizeof b, "%d %s", rb, verify_class(rb));
    if (strcmp(a, b) != 0) fail_msg("%s: libxml2 C14N path says '%s', xmlsec says '%s'", what, a, b);
    variants_checked++;
    variants_by_digest += strstr(a, " digest") != NULL;
    variants_by_signature += strstr(a, " signature") != NULL;
    return ra;
}

/* Edits that canonicalisation must see through (0: still valid) or must not (1). */
static const struct {
    const char *from, *to;
    int breaks;
} c14n_edits[] = {
    {"<ds:SignedInfo>", "<ds:SignedInfo><!-- comment -->", 0},
    {"<ds:SignedInfo>", "<ds:SignedInfo xmlns:x=\"urn:x\">", 0}, /* exclusive C14N drops it */
    {"<ds:SignedInfo>", "<ds:SignedInfo xmlns:x=\"urn:x\" x:a=\"1\">", 1},
    {"<ds:SignedInfo>", "<ds:SignedInfo> ", 1},
    {"<ds:SignedInfo>", "<ds:SignedInfo xmlns=\"urn:d\">", 0},   /* an unused default namespace */
    {"<ds:SignedInfo>", "<ds:SignedInfo sr:a=\"1\">", 1},        /* a namespace from the root, used */
    {"<ds:CanonicalizationMethod Algorithm=",
     "<CanonicalizationMethod xmlns=\"http://www.w3.org/2000/09/xmldsig#\" Algorithm=", 1},
    {"<ds:SignatureValue>", "<ds:SignatureValue Id=\"v\">", 0}, /* outside SignedInfo and the Reference */
    {"<ds:KeyInfo>", "<ds:KeyInfo><!-- comment -->", 0},
    {"<ds:Signature", "<!-- comment --><ds:Signature", 0},
    {"<ds:Signature", "<?pi x?><ds:Signature", 1},
    {"</ds:Signature>", "</ds:Signature>\n", 1},
    {"<sr:Header>", "<sr:Header xmlns:z=\"urn:z\">", 1}, /* inclusive C14N keeps it */
    {"<sr:Header>", "<sr:Header xml:lang=\"en\">", 1},
    {"<sr:Header>", "<sr:Header><!-- comment -->", 0},
    {"<sr:Header>", "<sr:Header><![CDATA[]]>", 0},
    {"<sr:Header>", "<sr:Header>&#x20;", 1},
    {"Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"", "Algorithm='http://www.w3.org/2001/10/xml-exc-c14n#'", 0},
    {"#sha256\"/>", "#sha256\"></ds:DigestMethod>", 0},
    {"<ds:DigestValue>", "<ds:DigestValue>&#x20;", 1},
    {"<ds:DigestValue>", "<ds:DigestValue>\n", 1},
    {"<ds:DigestValue>", "<ds:DigestValue>AAAA", 1},                  /* 35 octets */
    {"<ds:SignatureValue>", "<ds:SignatureValue>" "4444444444444444444444444444444444444444444444444444444444444444"
     "4444444444444444444444444444444444444444444444444444444444444444" "4444444444444444444444444444444444444444", 1},
    {"<ds:SignatureValue>", "<ds:SignatureValue>*", 1},                /* not base64 */
};

/* Every letter's case and every digit, one at a time, from `start` in steps of `step`. */
static void sweep(smki_duis_trust *t, const char *doc, size_t start, size_t step, const char *name)
{
    size_t n = strlen(doc);
    char *m = dupz((const uint8_t *)doc, n);
    for (size_t i = start; i < n; i += step) {
        char c = doc[i];
        if (c >= 'a' && c <= 'z') m[i] = (char)(c - 32);
        else if (c >= 'A' && c <= 'Z') m[i] = (char)(c + 32);
        else if (c >= '0' && c <= '9') m[i] = c == '9' ? '0' : (char)(c + 1);
        else continue;
        char what[300];
        snprintf(what, sizeof what, "%s with octet %zu changed", name, i);
        (void)engines_agree(t, m, n, what);
        m[i] = c;
    }
    free(m);
}

static void differential(smki_duis_trust *t, const char *doc, const char *name, size_t step)
{
    assert_int_equal(engines_agree(t, doc, strlen(doc), name), 0);
    for (size_t i = 0; i < sizeof c14n_edits / sizeof c14n_edits[0]; i++) {
        if (!strstr(doc, c14n_edits[i].from)) continue;
        char *m = replace(doc, c14n_edits[i].from, c14n_edits[i].to);
        char what[300];
        snprintf(what, sizeof what, "%s edited to '%s'", name, c14n_edits[i].to);
        int rc = engines_agree(t, m, strlen(m), what);
        if ((rc < 0) != c14n_edits[i].breaks) fail_msg("%s: expected %s", what, c14n_edits[i].breaks ? "a refusal" : "valid");
        free(m);
    }
    for (size_t start = 0; start < step; start += step / 3 + 1) sweep(t, doc, start, step, name);
}

static void test_verify_agrees_with_xmlsec_on_vectors_and_tampered_variants(void **state)
{
    (void)state;
    smki_duis_trust *t = keystore_trust();
    static const char *const dcc[] = {
        "vectors/duis/signed/CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_REQUEST_DUIS_SIGNED.XML",
        "vectors/duis/signed/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_REQUEST_DUIS_SIGNED.XML",
        "vectors/duis/signed/ECS70Commission_8.1.1_SUCCESS_REQUEST_DUIS_SIGNED.XML",
        RESPONSE,
    };
    for (size_t i = 0; i < sizeof dcc / sizeof dcc[0]; i++) {
        size_t len;
        uint8_t *xml = test_read_shared(dcc[i], &len);
        char *doc = dupz(xml, len);
        differential(t, doc, dcc[i], i == 0 ? 1 : 41); /* the first: every octet */
        free(doc);
        free(xml);
    }
    /* Every RTDS request smki can sign (as the supplier or the network operator). */
    DIR *d = opendir(test_shared_path("vectors/duis/requests"));
    assert_non_null(d);
    smki_key *keys[2] = {load_key(SUPPLIER), load_key(NETOP)};
    X509 *certs[2] = {load_cert(SUPPLIER), load_cert(NETOP)};
    size_t signed_count = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strstr(e->d_name, ".XML")) continue;
        char rel[400];
        snprintf(rel, sizeof rel, "vectors/duis/requests/%s", e->d_name);
        size_t len;
        uint8_t *xml = test_read_shared(rel, &len);
        for (int k = 0; k < 2; k++) {
            uint8_t *out = NULL;
            size_t out_len = 0;
            if (smki_duis_sign(keys[k], certs[k], T2020, xml, len, &out, &out_len) < 0) continue;
            char *doc = dupz(out, out_len);
            differential(t, doc, rel, signed_count == 0 ? 1 : 97);
            signed_count++;
            free(doc);
            free(out);
        }
        free(xml);
    }
    closedir(d);
    assert_true(signed_count >= 20);
    /* Both checks were reached and told apart, not only the parser's refusals. */
    assert_true(variants_checked > 5000 && variants_by_digest > 500 && variants_by_signature > 100);
    for (int k = 0; k < 2; k++) {
        X509_free(certs[k]);
        smki_key_free(keys[k]);
    }
    smki_duis_trust_free(t);
}

/* The document with its ds:SignatureValue text cut out (ECDSA values are random). */
static char *without_signature_value(const char *doc)
{
    const char *a = strstr(doc, "<ds:SignatureValue>");
    const char *b = a ? strstr(a, "</ds:SignatureValue>") : NULL;
    if (!a || !b) fail_msg("no ds:SignatureValue in the signed document");
    a += strlen("<ds:SignatureValue>");
    size_t head = (size_t)(a - doc);
    char *s = malloc(strlen(doc) + 1);
    assert_non_null(s);
    memcpy(s, doc, head);
    strcpy(s + head, b);
    return s;
}

static void test_sign_writes_what_xmlsec_signing_writes(void **state)
{
    (void)state;
    smki_duis_trust *t = keystore_trust();
    smki_key *keys[2] = {load_key(SUPPLIER), load_key(NETOP)};
    X509 *certs[2] = {load_cert(SUPPLIER), load_cert(NETOP)};
    smki_duis_signer *signers[2];
    for (int k = 0; k < 2; k++) assert_ok(smki_duis_signer_new(keys[k], certs[k], &signers[k]));
    DIR *d = opendir(test_shared_path("vectors/duis/requests"));
    assert_non_null(d);
    size_t compared = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strstr(e->d_name, ".XML")) continue;
        char rel[400];
        snprintf(rel, sizeof rel, "vectors/duis/requests/%s", e->d_name);
        size_t len;
        uint8_t *xml = test_read_shared(rel, &len);
        for (int k = 0; k < 2; k++) {
            uint8_t *fast = NULL, *ref = NULL;
            size_t fast_len = 0, ref_len = 0;
            int rf = smki_duis_engine_sign(DUIS_ENGINE_C14N, signers[k], T2020, xml, len, &fast, &fast_len);
            int rx = smki_duis_engine_sign(DUIS_ENGINE_XMLSEC, signers[k], T2020, xml, len, &ref, &ref_len);
            assert_int_equal(rf, rx);
            if (rf == 0) {
                /* Byte for byte the same but for the signature value; each verifies both ways. */
                char *a = dupz(fast, fast_len), *b = dupz(ref, ref_len);
                char *ca = without_signature_value(a), *cb = without_signature_value(b);
                if (strcmp(ca, cb) != 0) fail_msg("%s: smki's signing and xmlsec's differ beyond SignatureValue", rel);
                assert_int_equal(engines_agree(t, a, fast_len, rel), 0);
                assert_int_equal(engines_agree(t, b, ref_len, rel), 0);
                compared++;
                free(ca), free(cb), free(a), free(b);
            }
            free(fast);
            free(ref);
        }
        free(xml);
    }
    closedir(d);
    assert_true(compared >= 20);
    for (int k = 0; k < 2; k++) {
        smki_duis_signer_free(signers[k]);
        X509_free(certs[k]);
        smki_key_free(keys[k]);
    }
    smki_duis_trust_free(t);
}

static void test_verify_refuses_signer_role_originator_time_and_unknown(void **state)
{
    (void)state;
    smki_duis_trust *t = keystore_trust();
    /* Signed by the network operator, then claimed as the supplier's request. */
    char *no = sign_vector(REQ_NO, NETOP);
    assert_ok(verify_text(t, no, T2020, NULL));
    char *m = replace(no, "<sr:RequestID>90-B3-D5-1F-30-02-00-00", "<sr:RequestID>90-B3-D5-1F-30-01-00-00");
    assert_fails(verify_text(t, m, T2020, NULL), SMKI_E_REFUSED, "is not the request's business originator");
    free(m);
    /* A Response's signature under a Request: role 89 is not xmlSign. */
    size_t rlen;
    uint8_t *resp = test_read_shared(RESPONSE, &rlen);
    char *r = dupz(resp, rlen);
    char *a = replace(r, "<sr:Response ", "<sr:Request ");
    char *b = replace(a, "</sr:Response>", "</sr:Request>");
    char *c = replace(b, "<sr:ResponseMessage><sr:ServiceReference>11.2</sr:ServiceReference>",
                      "<sr:ResponseMessage>");
    char *d = replace(c, "<sr:ResponseCode>", "<sr:ServiceReferenceVariant>11.2</sr:ServiceReferenceVariant><sr:ResponseCode>");
    assert_fails(verify_text(t, d, T2020, NULL), SMKI_E_REFUSED, "role 87");
    free(a), free(b), free(c), free(d), free(r), free(resp);
    /* The supplier's GBCS DS certificate (the same issuer) named as the signer: found,
     * and refused as not an xmlSign certificate before any signature check. */
    X509 *ds = NULL;
    assert_ok(smki_cert_load_file(test_shared_path("vectors/gbcs/keystore/90b3d51f30010000-ds.pem"), &ds));
    assert_ok(smki_duis_trust_add_cert(t, ds));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(ds), NULL);
    char *dec = BN_bn2dec(bn);
    char *sup = sign_vector(REQ_ECS01A_FD, SUPPLIER);
    char *as_ds = replace(sup, "27572613927499351639968579586655397031", dec);
    assert_fails(verify_text(t, as_ds, T2020, NULL), SMKI_E_REFUSED, "Remote Party Role 02 (supplier)");
    free(as_ds), free(sup);
    OPENSSL_free(dec);
    BN_free(bn);
    X509_free(ds);
    /* Expired at the time asked. */
    assert_fails(verify_text(t, no, (time_t)7258118400LL /* 2200 */, NULL), SMKI_E_REFUSED, "not valid at");
    /* A signer that is not trusted. */
    smki_duis_trust *empty = NULL;
    assert_ok(smki_duis_trust_new(&empty));
    assert_fails(verify_text(empty, no, T2020, NULL), SMKI_E_NOTFOUND, "serial 40938316298935008147424226388667426413");
    /* The issuer is matched as a name: spaces after commas are the same name. */
    m = replace(no, "CN=Z1,OU=07", "CN=Z1, OU=07");
    assert_ok(verify_text(t, m, T2020, NULL));
    free(m);
    m = replace(no, "CN=Z1,OU=07", "CN=Z2,OU=07");
    assert_fails(verify_text(t, m, T2020, NULL), SMKI_E_NOTFOUND, "no certificate of issuer 'CN=Z2,OU=07'");
    free(m);
    smki_duis_trust_free(empty);
    smki_duis_trust_free(t);
    free(no);
}

static void test_verify_binds_responses_to_the_dcc_when_given(void **state)
{
    (void)state;
    size_t len;
    uint8_t *xml = test_read_shared(RESPONSE, &len);
    smki_duis_trust *t = keystore_trust();
    smki_eui64_t dcc = smki_eui64_from_u64(0x90B3D51F30000002ull), other = smki_eui64_from_u64(0x90B3D51F30000004ull);
    assert_ok(smki_duis_trust_set_dcc(t, &dcc));
    assert_ok(smki_duis_verify(t, T2020, xml, len, NULL));
    assert_ok(smki_duis_trust_set_dcc(t, &other));
    assert_fails(smki_duis_verify(t, T2020, xml, len, NULL), SMKI_E_REFUSED,
                 "signer 90-B3-D5-1F-30-00-00-02 is not the DCC 90-B3-D5-1F-30-00-00-04");
    /* Requests are bound to their originator, not to the DCC. */
    char *req = sign_vector(REQ_ECS01A_FD, SUPPLIER);
    assert_ok(verify_text(t, req, T2020, NULL));
    free(req);
    smki_duis_trust_free(t);
    free(xml);
}

static void test_verify_refuses_signature_wrapping(void **state)
{
    (void)state;
    char *s = sign_vector(REQ_ECS01A_FD, SUPPLIER);
    smki_duis_trust *t = keystore_trust();
    const char *sig = strstr(s, "<ds:Signature");
    const char *end = strstr(s, "</ds:Signature>") + strlen("</ds:Signature>");
    char *copy = dupz((const uint8_t *)sig, (size_t)(end - sig));
    /* A second Signature, in the body. */
    size_t n = strlen(copy) + 32;
    char *ins = malloc(n);
    snprintf(ins, n, "<sr:Body>%s", copy);
    char *m = replace(s, "<sr:Body>", ins);
    assert_fails(verify_text(t, m, T2020, NULL), SMKI_E_REFUSED, "2 ds:Signature elements");
    free(m);
    free(ins);
    /* Another URI, an extra transform, another algorithm, an Object. */
    static const char *const edits[][3] = {
        {"<ds:Reference URI=\"\">", "<ds:Reference URI=\"#body\">", "only URI=\"\""},
        {"<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>",
         "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>"
         "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>",
         "more than the enveloped-signature transform"},
        {"xmldsig-more#ecdsa-sha256", "xmldsig-more#ecdsa-sha384", "SignatureMethod"},
        {"xmlenc#sha256", "xmldsig#sha1", "DigestMethod"},
        {"</ds:KeyInfo>", "</ds:KeyInfo><ds:Object/>", "extra element 'Object'"},
        {"<ds:X509IssuerSerial>", "<ds:X509IssuerSerial><ds:X509SKI>AA==</ds:X509SKI>", "ds:X509IssuerName"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        m = replace(s, edits[i][0], edits[i][1]);
        assert_fails(verify_text(t, m, T2020, NULL), SMKI_E_REFUSED, edits[i][2]);
        free(m);
    }
    /* The signature moved before the body: not the last child. */
    char *without = replace(s, copy, "");
    size_t k = strlen(copy) + 16;
    char *before = malloc(k);
    snprintf(before, k, "%s<sr:Body>", copy);
    m = replace(without, "<sr:Body>", before);
    assert_fails(verify_text(t, m, T2020, NULL), SMKI_E_REFUSED, "not the last child");
    free(m);
    free(before);
    /* No signature at all. */
    assert_fails(verify_text(t, without, T2020, NULL), SMKI_E_REFUSED, "no ds:Signature");
    free(without);
    free(copy);
    smki_duis_trust_free(t);
    free(s);
}

/* ---- Hostile XML ----------------------------------------------------------------------------- */
static void test_read_refuses_dtd_entities_and_bad_encodings_fast(void **state)
{
    (void)state;
    smki_duis_info i;
    static const char xxe[] = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
                              "<sr:Request xmlns:sr=\"" SMKI_DUIS_NS "\">&x;</sr:Request>";
    assert_fails(smki_duis_read((const uint8_t *)xxe, sizeof xxe - 1, &i), SMKI_E_INPUT, "DOCTYPE");
    /* A billion laughs: refused at the DOCTYPE, before any entity is declared. */
    char laughs[4096];
    size_t n = (size_t)snprintf(laughs, sizeof laughs, "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    for (int e = 1; e < 10; e++) {
        char prev[8] = "";
        if (e > 1) snprintf(prev, sizeof prev, "%d", e - 1);
        n += (size_t)snprintf(laughs + n, sizeof laughs - n, "<!ENTITY lol%d \"", e);
        for (int r = 0; r < 10; r++) n += (size_t)snprintf(laughs + n, sizeof laughs - n, "&lol%s;", prev);
        n += (size_t)snprintf(laughs + n, sizeof laughs - n, "\">");
    }
    n += (size_t)snprintf(laughs + n, sizeof laughs - n, "]><sr:Request xmlns:sr=\"" SMKI_DUIS_NS "\">&lol9;</sr:Request>");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_fails(smki_duis_read((const uint8_t *)laughs, n, &i), SMKI_E_INPUT, "DOCTYPE");
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_true((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 500);
    static const char external[] = "<?xml version=\"1.0\"?><!DOCTYPE r SYSTEM \"http://127.0.0.1:9/x.dtd\"><r/>";
    assert_fails(smki_duis_read((const uint8_t *)external, sizeof external - 1, &i), SMKI_E_INPUT, "DOCTYPE");
    static const char undeclared[] = "<sr:Request xmlns:sr=\"" SMKI_DUIS_NS "\">&x;</sr:Request>";
    assert_fails(smki_duis_read((const uint8_t *)undeclared, sizeof undeclared - 1, &i), SMKI_E_INPUT, "entity");
    static const char latin1[] = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><sr:Request xmlns:sr=\"" SMKI_DUIS_NS
                                 "\"/>";
    assert_fails(smki_duis_read((const uint8_t *)latin1, sizeof latin1 - 1, &i), SMKI_E_INPUT, "UTF-8 only");
    static const char bad_utf8[] = "<sr:Request xmlns:sr=\"" SMKI_DUIS_NS "\">\xC3\x28</sr:Request>";
    assert_fails(smki_duis_read((const uint8_t *)bad_utf8, sizeof bad_utf8 - 1, &i), SMKI_E_INPUT, "not well-formed");
    static const uint8_t utf16[] = {0xFF, 0xFE, '<', 0, 'r', 0, '/', 0, '>', 0};
    assert_fails(smki_duis_read(utf16, sizeof utf16, &i), SMKI_E_INPUT, "UTF-16");
    static const uint8_t nul[] = {'<', 'r', 0, '/', '>'};
    assert_fails(smki_duis_read(nul, sizeof nul, &i), SMKI_E_INPUT, "NUL octet");
    size_t big = SMKI_DUIS_MAX_XML + 1;
    uint8_t *huge = malloc(big);
    memset(huge, ' ', big);
    assert_fails(smki_duis_read(huge, big, &i), SMKI_E_INPUT, "over the limit");
    free(huge);
    /* A relative namespace URI, which canonical XML refuses. */
    static const char relative[] = "<sr:Request xmlns:sr=\"" SMKI_DUIS_NS "\" xmlns:x=\"h,ttp://x\"/>";
    assert_fails(smki_duis_read((const uint8_t *)relative, sizeof relative - 1, &i), SMKI_E_INPUT,
                 "not an absolute URI");
    /* The predefined entities and character references are text, not entities. */
    static const char predefined[] = "<sr:Request xmlns:sr=\"" SMKI_DUIS_NS "\" a=\"&lt;&amp;&#65;\"><sr:Header>"
                                     "<sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1</sr:RequestID>"
                                     "<sr:ServiceReferenceVariant>1.1.1</sr:ServiceReferenceVariant></sr:Header>"
                                     "<sr:Body>&gt;&quot;&apos;&#13;</sr:Body></sr:Request>";
    assert_ok(smki_duis_read((const uint8_t *)predefined, sizeof predefined - 1, &i));
    static const char missing_id[] = "<sr:Request xmlns:sr=\"" SMKI_DUIS_NS "\"><sr:Header/><sr:Body/></sr:Request>";
    assert_fails(smki_duis_read((const uint8_t *)missing_id, sizeof missing_id - 1, &i), SMKI_E_INPUT, "RequestID");
}

/* ---- Correlation ------------------------------------------------------------------------------- */
typedef struct {
    const char *request; /* under vectors/duis/requests, without _REQUEST_DUIS.XML */
    const char *gbcs;    /* under vectors/gbcs/rtds */
    const char *refusal; /* NULL: correlates */
} pair;

/* The DCC's pairs: a pre-command where the RTDS has one, else the command (its General
 * Signing APDU carries the same fields). Commands the DCC itself originates (as ACB or
 * Transitional CoS) answer a User's request but are not the User's to sign: refused by
 * originator. */
static const pair PAIRS[] = {
    {"CCS03_8.12.1_SUCCESS", "8.12.1_CCS03/CCS03_8.12.1_SUCCESS_COMMAND_GBCS.HEX", "originator"},
    {"CS01a_2.2_SUCCESS", "2.2_CS01a/CS01a_2.2_SUCCESS_COMMAND_GBCS.HEX", NULL},
    {"CS02aMAC_6.24.1_SUCCESS", "6.24.1_CS02aMAC/CS02aMAC_6.24.1_SUCCESS_COMMAND_GBCS.HEX", "originator"},
    {"CS02bNOByNO_6.15.1_SUCCESS", "6.15.1_CS02bNOByNO/CS02bNOByNO_6.15.1_SUCCESS_PRECOMMAND_GBCS.HEX", NULL},
    {"CS02bSupplierBySupplier_6.15.1_CANCELLATION_SUCCESS",
     "6.15.1_CS02bSupplierBySupplier/CS02bSupplierBySupplier_6.15.1_CANCELLATION_SUCCESS_PRECOMMAND_GBCS.HEX", NULL},
    {"CS02bSupplierBySupplier_6.15.1_FUTURE_DATED_SUCCESS",
     "6.15.1_CS02bSupplierBySupplier/CS02bSupplierBySupplier_6.15.1_FUTURE_DATED_SUCCESS_PRECOMMAND_GBCS.HEX", NULL},
    {"CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS",
     "6.15.1_CS02bSupplierBySupplier/CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_PRECOMMAND_GBCS.HEX", NULL},
    {"CS02bSupplierByTransCoS_6.23_CANCELLATION_SUCCESS",
     "6.23_CS02bSupplierByTransCoS/CS02bSupplierByTransCoS_6.23_CANCELLATION_SUCCESS_COMMAND_GBCS.HEX", "originator"},
    {"CS02bSupplierByTransCoS_6.23_FUTURE_DATED_SUCCESS",
     "6.23_CS02bSupplierByTransCoS/CS02bSupplierByTransCoS_6.23_FUTURE_DATED_SUCCESS_COMMAND_GBCS.HEX", "originator"},
    {"CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS",
     "6.23_CS02bSupplierByTransCoS/CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX", "originator"},
    {"CS02c_6.17_SUCCESS", "6.17_CS02c/CS02c_6.17_SUCCESS_PRECOMMAND_GBCS.HEX", NULL},
    {"CS03A1_8.7.1_SUCCESS", "8.7.1_CS03A1/CS03A1_8.7.1_SUCCESS_PRECOMMAND_GBCS.HEX", NULL},
    {"CS08_11.2_SUCCESS", "11.2_CS08/CS08_11.2_SUCCESS_COMMAND_GBCS.HEX", "counter"},
    {"ECS01a_1.1.1_CANCELLATION_TOU_BLOCK_SUCCESS",
     "1.1.1_ECS01a/ECS01a_1.1.1_CANCELLATION_TOU_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX", NULL},
    {"ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS",
     "1.1.1_ECS01a/ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX", NULL},
    {"ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS", "1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX",
     NULL},
    {"ECS01a_1.1.1_IMMEDIATE_TOU_SUCCESS", "1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_TOU_SUCCESS_PRECOMMAND_GBCS.HEX", NULL},
    {"ECS10_3.1_SUCCESS", "3.1_ECS10/ECS10_3.1_SUCCESS_COMMAND_GBCS.HEX", NULL},
    {"ECS21b_4.14_KRP_SUCCESS", "4.14_ECS21b/ECS21b_4.14_KRP_SUCCESS_COMMAND_GBCS.HEX", NULL},
    {"ECS21b_4.14_URP_SUCCESS", "4.14_ECS21b/ECS21b_4.14_URP_SUCCESS_COMMAND_GBCS.HEX", "originator"},
    {"ECS22b_4.8.1_SINGLE_SUCCESS", "4.8.1_ECS22b/ECS22b_4.8.1_SINGLE_SUCCESS_COMMAND_GBCS.HEX", NULL},
    {"ECS22b_4.8.1_TWIN_SUCCESS", "4.8.1_ECS22b/ECS22b_4.8.1_TWIN_SUCCESS_COMMAND_GBCS.HEX", NULL},
    {"ECS42_7.1", "7.1_ECS42/ECS42_7.1_SUCCESS_PRECOMMAND_GBCS.HEX", NULL},
    {"ECS42_7.1_SUCCESS", "7.1_ECS42/ECS42_7.1_SUCCESS_PRECOMMAND_GBCS.HEX", NULL},
    {"ECS70Commission_8.1.1_SUCCESS", "8.1.1_ECS70Commission/ECS70Commission_8.1.1_SUCCESS_PRECOMMAND_GBCS.HEX", NULL},
    {"GCS01a_1.1.1_CANCELLATION_BLOCK_SUCCESS",
     "1.1.1_GCS01a/GCS01a_1.1.1_CANCELLATION_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX", NULL},
    {"GCS01a_1.1.1_FUTURE_DATED_BLOCK_SUCCESS",
     "1.1.1_GCS01a/GCS01a_1.1.1_FUTURE_DATED_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX", NULL},
    {"GCS01a_1.1.1_IMMEDIATE_TOU_SUCCESS", "1.1.1_GCS01a/GCS01a_1.1.1_IMMEDIATE_TOU_SUCCESS_PRECOMMAND_GBCS.HEX", NULL},
};

static void read_pair(const pair *p, smki_duis_info *info, uint8_t **msg, size_t *msg_len, smki_gbcs_msg *m)
{
    char rel[512];
    size_t len;
    snprintf(rel, sizeof rel, "vectors/duis/requests/%s_REQUEST_DUIS.XML", p->request);
    uint8_t *xml = test_read_shared(rel, &len);
    assert_ok(smki_duis_read(xml, len, info));
    free(xml);
    snprintf(rel, sizeof rel, "vectors/gbcs/rtds/%s", p->gbcs);
    assert_ok(smki_gbcs_read_file(test_shared_path(rel), msg, msg_len));
    assert_ok(smki_gbcs_parse(*msg, *msg_len, m));
}

static void test_correlate_every_rtds_pair(void **state)
{
    (void)state;
    size_t ok = 0, refused = 0;
    for (size_t i = 0; i < sizeof PAIRS / sizeof PAIRS[0]; i++) {
        smki_duis_info info;
        uint8_t *msg = NULL;
        size_t len = 0;
        smki_gbcs_msg m;
        read_pair(&PAIRS[i], &info, &msg, &len, &m);
        if (PAIRS[i].refusal) {
            assert_fails(smki_duis_correlate(&info, &m.gsa), SMKI_E_REFUSED, PAIRS[i].refusal);
            refused++;
        } else {
            assert_ok(smki_duis_correlate(&info, &m.gsa));
            ok++;
        }
        free(msg);
    }
    assert_int_equal(ok + refused, 28);
    assert_int_equal(ok, 21);
}

static void test_correlate_refuses_crafted_mismatches(void **state)
{
    (void)state;
    const pair *fd = &PAIRS[14]; /* ECS01a future-dated */
    assert_string_equal(fd->request, "ECS01a_1.1.1_FUTURE_DATED_TOU_BLOCK_SUCCESS");
    smki_duis_info info;
    uint8_t *msg = NULL;
    size_t len = 0;
    smki_gbcs_msg m;
    read_pair(fd, &info, &msg, &len, &m);
    assert_ok(smki_duis_correlate(&info, &m.gsa));
    smki_gbcs_signing g = m.gsa;
    uint8_t other[8] = {0x00, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, 0xA9};
    g.recipient = other;
    assert_fails(smki_duis_correlate(&info, &g), SMKI_E_REFUSED, "target device: the request says 00-DB-12-34-56-78-90-A0");
    g = m.gsa;
    g.originator = other;
    assert_fails(smki_duis_correlate(&info, &g), SMKI_E_REFUSED, "originator");
    g = m.gsa;
    g.counter++;
    assert_fails(smki_duis_correlate(&info, &g), SMKI_E_REFUSED, "counter: the request says 1008, the pre-command holds 1009");
    g = m.gsa;
    g.message_code = 0x006B; /* GCS01a: the same variant, a gas meter's code, still fits the variant */
    assert_fails(smki_duis_correlate(&info, &g), SMKI_E_REFUSED, "execution time"); /* but not its ZigBee time */
    g.message_code = 0x0021;
    assert_fails(smki_duis_correlate(&info, &g), SMKI_E_REFUSED, "message code: service reference variant 1.1.1");
    /* Another execution time than the payload's. */
    smki_duis_info later = info;
    later.execution_time += 3600;
    assert_fails(smki_duis_correlate(&later, &m.gsa), SMKI_E_REFUSED, "execution time: the request says 2030-01-15T10:00:00Z");
    /* An immediate pre-command for a future-dated request. */
    free(msg);
    read_pair(&PAIRS[16], &later, &msg, &len, &m); /* ECS01a immediate TOU */
    later = info;
    later.request_id.counter = m.gsa.counter;
    assert_fails(smki_duis_correlate(&later, &m.gsa), SMKI_E_REFUSED, "execution time");
    /* An unknown variant, by name. */
    later = info;
    later.request_id.counter = m.gsa.counter;
    snprintf(later.variant, sizeof later.variant, "99.9");
    assert_fails(smki_duis_correlate(&later, &m.gsa), SMKI_E_REFUSED, "service reference variant '99.9'");
    free(msg);
}

static void test_check_precommand_verifies_the_request_first(void **state)
{
    (void)state;
    smki_duis_trust *t = keystore_trust();
    char *req = sign_vector(REQ_ECS01A_FD, SUPPLIER);
    uint8_t *pre = NULL;
    size_t pre_len;
    char rel[512];
    snprintf(rel, sizeof rel, "vectors/gbcs/rtds/%s", PAIRS[14].gbcs);
    assert_ok(smki_gbcs_read_file(test_shared_path(rel), &pre, &pre_len));
    assert_ok(smki_duis_check_precommand(t, T2020, (const uint8_t *)req, strlen(req), pre, pre_len, NULL));
    /* The request changed after signing. */
    char *m = replace(req, "1008</sr:RequestID>", "1007</sr:RequestID>");
    assert_fails(smki_duis_check_precommand(t, T2020, (const uint8_t *)m, strlen(m), pre, pre_len, NULL), SMKI_E_VERIFY,
                 "Service Request");
    free(m);
    /* A request signed by another User (the network operator's own request): its
     * pre-commands are not the supplier's. */
    char *no = sign_vector(REQ_NO, NETOP);
    assert_fails(smki_duis_check_precommand(t, T2020, (const uint8_t *)no, strlen(no), pre, pre_len, NULL),
                 SMKI_E_REFUSED, "originator");
    free(no);
    free(pre);
    free(req);
    smki_duis_trust_free(t);
}

static void test_srv_table_covers_every_vector_variant(void **state)
{
    (void)state;
    size_t n;
    const smki_duis_srv *t = smki_duis_srvs(&n);
    for (size_t i = 0; i < sizeof PAIRS / sizeof PAIRS[0]; i++) {
        smki_duis_info info;
        uint8_t *msg = NULL;
        size_t len;
        smki_gbcs_msg m;
        read_pair(&PAIRS[i], &info, &msg, &len, &m);
        int found = 0;
        for (size_t k = 0; k < n; k++)
            if (strcmp(t[k].variant, info.variant) == 0 && t[k].code == m.gsa.message_code) found = 1;
        if (!found) fail_msg("%s: variant %s code %04X not in the table", PAIRS[i].request, info.variant, m.gsa.message_code);
        free(msg);
    }
}

/* ---- smki's own CA: xmlSign and DSP xmlSign ---------------------------------------------------- */
static smki_csr *ds_csr(EVP_PKEY *k)
{
    return test_ku_csr(X509_REQ_new(), k, "critical,digitalSignature");
}

static void test_own_ca_issues_xmlsign_certificates_that_lint_sign_verify_and_revoke(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("duis-ca");
    smki_store *store = NULL;
    smki_ca_db db;
    assert_ok(test_software_hierarchy(dir, NULL, &store, &db));
    smki_ca_issuer *oca = NULL;
    assert_ok(smki_ca_issuer_open(&db, "test", SMKI_PROFILE_ORGANISATION, NULL, &oca));
    char keypath[1200];
    snprintf(keypath, sizeof keypath, "%s/xmlsign.key", dir);
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(pk);
    FILE *f = fopen(keypath, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    char ref[1300];
    snprintf(ref, sizeof ref, "file:%s", keypath);
    smki_key *k = NULL;
    assert_ok(smki_key_open(ref, NULL, &k));
    smki_csr *csr = ds_csr(pk);
    EVP_PKEY_free(pk);
    smki_eui64_t supplier = smki_eui64_from_u64(0x90B3D51F30010000ull), dcc = smki_eui64_from_u64(0x90B3D51F30000002ull);
    smki_issue_req r = {csr, SMKI_PROFILE_ORGANISATION, SMKI_ROLE_XML_SIGN, &supplier, NULL, 0, 0};
    smki_cert *xs = malloc(sizeof *xs), *dsp = malloc(sizeof *dsp);
    assert_ok(smki_ca_issue(oca, &db, &r, xs));
    r.role = SMKI_ROLE_DSP_XML_SIGN;
    r.eui = &dcc;
    assert_ok(smki_ca_issue(oca, &db, &r, dsp));
    /* Both lint clean (issue lints too; this says so independently of it). */
    smki_lint_report *lr = malloc(sizeof *lr);
    assert_ok(smki_lint_der(xs->der, xs->der_len, NULL, lr));
    assert_true(smki_lint_is_clean(lr));
    assert_int_equal(lr->role, 0x87);
    assert_ok(smki_lint_der(dsp->der, dsp->der_len, NULL, lr));
    assert_true(smki_lint_is_clean(lr));
    assert_int_equal(lr->role, 0x89);
    free(lr);
    X509 *cert = NULL;
    assert_ok(smki_cert_load(xs->der, xs->der_len, &cert));
    /* Sign now with it; verify with the CA's certificate and the signer's in the trust. */
    size_t len;
    uint8_t *xml = test_read_shared(REQ_ECS01A_FD, &len), *out = NULL;
    size_t out_len;
    time_t now = time(NULL);
    assert_ok(smki_duis_sign(k, cert, now, xml, len, &out, &out_len));
    smki_duis_trust *t = NULL;
    assert_ok(smki_duis_trust_new(&t));
    assert_ok(smki_duis_trust_add_cert(t, cert));
    smki_ca_record *rec = malloc(sizeof *rec);
    assert_ok(smki_ca_get(&db, "test", SMKI_CA_OCA, rec));
    X509 *ca = NULL;
    assert_ok(smki_cert_load(rec->cert.der, rec->cert.der_len, &ca));
    free(rec);
    assert_ok(smki_duis_trust_add_cert(t, ca));
    assert_ok(smki_duis_verify(t, now, out, out_len, NULL));
    /* Revoked, and the CRL given: refused. */
    smki_revoke_req rv = {xs->serial, NULL, "test", SMKI_REASON_KEY_COMPROMISE, 0};
    assert_ok(smki_ca_revoke(&db, &rv, NULL, NULL));
    smki_crl_opts o = {NULL, NULL, 0, 3600, NULL, NULL};
    smki_crl l;
    assert_ok(smki_ca_crl_publish(&db, "test", SMKI_CA_OCA, &o, &l));
    char crlpath[1200];
    snprintf(crlpath, sizeof crlpath, "%s/oca.crl", dir);
    assert_ok(smki_file_write_atomic(crlpath, l.der, l.der_len, 0644, 0));
    smki_crl_clear(&l);
    smki_duis_trust *bare = NULL;
    assert_ok(smki_duis_trust_new(&bare));
    assert_ok(smki_duis_trust_add_cert(bare, cert));
    assert_fails(smki_duis_trust_add_crl_file(bare, crlpath), SMKI_E_REFUSED, "issuing CA's certificate");
    assert_ok(smki_duis_trust_add_crl_file(t, crlpath));
    assert_fails(smki_duis_verify(t, now + 5, out, out_len, NULL), SMKI_E_REFUSED, "revoked");
    /* After the list's nextUpdate it is stale: refused whatever it says. */
    assert_fails(smki_duis_verify(t, now + 7200, out, out_len, NULL), SMKI_E_REFUSED, "out of date");
    smki_duis_trust_free(bare);
    smki_duis_trust_free(t);
    X509_free(ca);
    X509_free(cert);
    free(out);
    free(xml);
    free(xs);
    free(dsp);
    smki_csr_free(csr);
    smki_key_free(k);
    smki_ca_issuer_free(oca);
    smki_store_close(store);
}

/* The signer reference a caller fetches by: the serial in the repository's hex form is
 * the keystore certificate's serial as OpenSSL gives it. */
static void test_signer_ref_gives_the_serial_in_hex_as_openssl_does(void **state)
{
    (void)state;
    char *s = sign_vector(REQ_ECS01A_IMM, SUPPLIER);
    smki_duis_signer_ref ref;
    assert_ok(smki_duis_signer_ref_get((const uint8_t *)s, strlen(s), &ref));
    X509 *c = load_cert(SUPPLIER);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(c), NULL);
    char *hex = BN_bn2hex(bn), *dec = BN_bn2dec(bn);
    assert_string_equal(ref.serial_hex, hex);
    assert_string_equal(ref.serial, dec);
    OPENSSL_free(hex);
    OPENSSL_free(dec);
    BN_free(bn);
    X509_free(c);
    /* A serial that is not decimal is refused by name (the profile check). */
    char *bad = replace(s, ref.serial, "12ab");
    assert_int_equal(smki_duis_signer_ref_get((const uint8_t *)bad, strlen(bad), &ref), SMKI_E_REFUSED);
    assert_non_null(strstr(smki_error_msg(), "'12ab' is not a decimal number"));
    free(bad);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signer_ref_gives_the_serial_in_hex_as_openssl_does),
        cmocka_unit_test(test_verify_accepts_every_signed_vector_and_the_response),
        cmocka_unit_test(test_read_gives_the_header_facts),
        cmocka_unit_test(test_sign_replaces_the_placeholder_and_verifies),
        cmocka_unit_test(test_sign_appends_a_signature_to_an_unsigned_request),
        cmocka_unit_test(test_sign_refuses_wrong_signers_and_writes_nothing),
        cmocka_unit_test(test_sign_refuses_misplaced_or_doubled_signatures),
        cmocka_unit_test(test_sign_and_verify_from_two_threads),
        cmocka_unit_test(test_verify_refuses_any_change),
        cmocka_unit_test(test_verify_agrees_with_xmlsec_on_vectors_and_tampered_variants),
        cmocka_unit_test(test_sign_writes_what_xmlsec_signing_writes),
        cmocka_unit_test(test_verify_refuses_signer_role_originator_time_and_unknown),
        cmocka_unit_test(test_verify_binds_responses_to_the_dcc_when_given),
        cmocka_unit_test(test_verify_refuses_signature_wrapping),
        cmocka_unit_test(test_read_refuses_dtd_entities_and_bad_encodings_fast),
        cmocka_unit_test(test_correlate_every_rtds_pair),
        cmocka_unit_test(test_correlate_refuses_crafted_mismatches),
        cmocka_unit_test(test_check_precommand_verifies_the_request_first),
        cmocka_unit_test(test_srv_table_covers_every_vector_variant),
        cmocka_unit_test(test_own_ca_issues_xmlsign_certificates_that_lint_sign_verify_and_revoke),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
