/* Unit tests for the certificate profiles and the linter: every certificate of the
 * RTDS keystore, certificates built here with OpenSSL (a clean one of each profile,
 * then one change each that breaks one rule), DER bytes edited in place, and the
 * Remote Party Roles and environments the linter reads. */
#include "helpers.h"

#include <dirent.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

#define ORG_POLICY "1.2.826.0.1.8641679.1.2.1.4"
#define DEVICE_POLICY "1.2.826.0.1.1800000.1.2.1.4"
#define HW_TYPE "1.2.826.0.1.8641679.1.2.2.1"
#define DCCKI_POLICY "2.999.1.2.826.1" /* the built-in test environment's: DCCKI's is not public */
#define SUPPLIER_ID "90B3D51F30010000"
#define DEVICE_ID "00DB123456789001"

static const smki_env *test_env(void)
{
    return smki_env_builtin("test");
}

/* ---- Reports ------------------------------------------------------------------------ */

static void print_report(const smki_lint_report *r)
{
    char what[160];
    smki_lint_describe(r, what, sizeof what);
    print_message("  report: %s, %zu error(s), %zu warning(s)\n", what, r->errors, r->warnings);
    for (size_t i = 0; i < r->count; i++)
        print_message("    %s %s: %s\n", r->findings[i].level == SMKI_LINT_ERROR ? "E" : "W", r->findings[i].rule,
                      r->findings[i].message);
}

/* The report's errors are exactly the rules listed (NULL-terminated), each once or more. */
static void assert_errors(const smki_lint_report *r, const char *const *rules)
{
    int ok = 1;
    for (const char *const *p = rules; *p; p++) {
        const smki_lint_finding *f = smki_lint_find(r, *p);
        if (!f || f->level != SMKI_LINT_ERROR) {
            print_message("  expected error %s not reported\n", *p);
            ok = 0;
        }
    }
    for (size_t i = 0; i < r->count; i++) {
        if (r->findings[i].level != SMKI_LINT_ERROR) continue;
        int listed = 0;
        for (const char *const *p = rules; *p; p++)
            if (strcmp(*p, r->findings[i].rule) == 0) listed = 1;
        if (!listed) {
            print_message("  unexpected error %s: %s\n", r->findings[i].rule, r->findings[i].message);
            ok = 0;
        }
    }
    if (!ok) {
        print_report(r);
        fail();
    }
}
#define EXPECT(r, ...)                                                                                                 \
    do {                                                                                                               \
        static const char *const want_[] = {__VA_ARGS__, NULL};                                                        \
        assert_errors((r), want_);                                                                                     \
    } while (0)

static void assert_clean(const smki_lint_report *r, smki_profile_id profile)
{
    if (!smki_lint_is_clean(r) || r->profile != profile) {
        print_message("  expected clean %s\n", smki_profile_get(profile)->name);
        print_report(r);
        fail();
    }
}

/* ---- Building certificates -----------------------------------------------------------
 * A spec says what to put in; build() makes and signs the certificate and returns its
 * DER. Defaults (make_org, make_device, ...) lint clean; each test changes one thing. */

typedef struct {
    uint8_t b[512];
    size_t n;
} buf_t;

static void put(buf_t *b, const void *p, size_t n)
{
    assert_true(b->n + n <= sizeof b->b);
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

/* Append tag, short- or long-form length, contents. */
static void tlv(buf_t *b, uint8_t tag, const void *p, size_t n)
{
    uint8_t h[4] = {tag};
    size_t hl = 2;
    if (n < 0x80) {
        h[1] = (uint8_t)n;
    } else {
        assert_true(n <= 0xff);
        h[1] = 0x81;
        h[2] = (uint8_t)n;
        hl = 3;
    }
    put(b, h, hl);
    put(b, p, n);
}

static void oid_der(const char *text, buf_t *out)
{
    ASN1_OBJECT *o = OBJ_txt2obj(text, 1);
    assert_non_null(o);
    tlv(out, 0x06, OBJ_get0_data(o), OBJ_length(o));
    ASN1_OBJECT_free(o);
}

static const uint8_t A_CN[] = {0x55, 0x04, 0x03}, A_OU[] = {0x55, 0x04, 0x0b}, A_O[] = {0x55, 0x04, 0x0a},
                     A_UID[] = {0x55, 0x04, 0x2d}, A_ORGID[] = {0x55, 0x04, 0x61};

/* A Name built attribute by attribute, one per RDN. */
typedef struct {
    buf_t rdns;
} name_b;

static void name_add(name_b *nm, const uint8_t *oid, size_t oid_len, uint8_t tag, const void *val, size_t len)
{
    buf_t atv = {{0}, 0}, seq = {{0}, 0};
    tlv(&atv, 0x06, oid, oid_len);
    tlv(&atv, tag, val, len);
    tlv(&seq, 0x30, atv.b, atv.n);
    tlv(&nm->rdns, 0x31, seq.b, seq.n);
}

static void name_str(name_b *nm, const uint8_t *oid, const char *s)
{
    name_add(nm, oid, 3, 0x0c, s, strlen(s));
}

static void name_uid(name_b *nm, const char *eui_hex, size_t octets)
{
    uint8_t v[16] = {0};
    size_t n = 0;
    assert_ok(smki_hex_decode(eui_hex, strlen(eui_hex), v + 1, sizeof v - 1, &n));
    assert_true(octets <= n + 1);
    if (octets > n) v[1 + n] = 0x5a; /* a ninth octet */
    name_add(nm, A_UID, 3, 0x03, v, octets + 1);
}

static X509_NAME *name_build(const name_b *nm)
{
    buf_t der = {{0}, 0};
    tlv(&der, 0x30, nm->rdns.b, nm->rdns.n);
    const unsigned char *p = der.b;
    X509_NAME *n = d2i_X509_NAME(NULL, &p, (long)der.n);
    assert_non_null(n);
    return n;
}

typedef struct {
    const char *key; /* "P-256", "P-384", "RSA" */
    name_b subject;
    name_b issuer;
    int self_signed;
    const char *not_before, *not_after; /* 13 characters: UTCTime; 15: GeneralizedTime */
    const char *ku;                     /* X509V3 configuration text, e.g. "critical,digitalSignature"; NULL: none */
    int ski_len;                        /* 8: method 2; 20: SHA-1 (OpenSSL's default); 0: none */
    int aki;                            /* keyIdentifier of the issuer, 8 octets */
    const char *policies;               /* "critical,<OID>"; NULL: none */
    const char *basic;                  /* "critical,CA:TRUE,pathlen:0"; NULL: none */
    const char *eku;                    /* "serverAuth"; NULL: none */
    const char *san;                    /* "DNS:host"; NULL: none */
    int hw_san;                         /* hardwareModuleName SAN */
    int hw_san_critical;
    size_t hw_len; /* hwSerialNum octets */
} spec_t;

static EVP_PKEY *ca_key;

static EVP_PKEY *new_key(const char *kind)
{
    EVP_PKEY *k = strcmp(kind, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                           : EVP_PKEY_Q_keygen(NULL, NULL, "EC", kind);
    assert_non_null(k);
    return k;
}

static void method2_of(const uint8_t *p, size_t n, uint8_t out[8])
{
    uint8_t md[SHA_DIGEST_LENGTH];
    SHA1(p, n, md);
    memcpy(out, md + 12, 8);
    out[0] = (uint8_t)(0x40 | (out[0] & 0x0f));
}

static void add_ext(X509 *x, X509_EXTENSION *e)
{
    if (!e) ERR_print_errors_fp(stderr);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

static void add_conf(X509 *x, int nid, const char *text)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, NULL, x, NULL, NULL, 0);
    add_ext(x, X509V3_EXT_conf_nid(NULL, &ctx, nid, text));
}

static void add_raw(X509 *x, int nid, int crit, const buf_t *val)
{
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    assert_int_equal(ASN1_OCTET_STRING_set(os, val->b, (int)val->n), 1);
    add_ext(x, X509_EXTENSION_create_by_NID(NULL, nid, crit, os));
    ASN1_OCTET_STRING_free(os);
}

static void set_time(X509 *x, const char *t, int after)
{
    ASN1_TIME *at = ASN1_TIME_new();
    int ok = strlen(t) == 13 ? ASN1_UTCTIME_set_string(at, t) : ASN1_GENERALIZEDTIME_set_string(at, t);
    assert_int_equal(ok, 1);
    assert_int_equal(after ? X509_set1_notAfter(x, at) : X509_set1_notBefore(x, at), 1);
    ASN1_TIME_free(at);
}

/* Make, sign (with ca_key, or the certificate's own key when self-signed), encode. */
static uint8_t *build(const spec_t *s, size_t *len)
{
    EVP_PKEY *key = new_key(s->key ? s->key : "P-256");
    X509 *x = X509_new();
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    uint8_t sn[16];
    assert_int_equal(RAND_bytes(sn, sizeof sn), 1);
    sn[0] = (uint8_t)(0x10 | (sn[0] & 0x6f));
    BIGNUM *bn = BN_bin2bn(sn, sizeof sn, NULL);
    ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, NULL);
    assert_int_equal(X509_set_serialNumber(x, serial), 1);
    ASN1_INTEGER_free(serial);
    BN_free(bn);

    X509_NAME *subject = name_build(&s->subject);
    X509_NAME *issuer = s->self_signed ? X509_NAME_dup(subject) : name_build(&s->issuer);
    assert_int_equal(X509_set_subject_name(x, subject), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer), 1);
    X509_NAME_free(subject);
    X509_NAME_free(issuer);
    set_time(x, s->not_before, 0);
    set_time(x, s->not_after, 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);

    if (s->ku) add_conf(x, NID_key_usage, s->ku);
    if (s->basic) add_conf(x, NID_basic_constraints, s->basic);
    if (s->ski_len) {
        const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(x);
        uint8_t md[SHA_DIGEST_LENGTH];
        buf_t v = {{0}, 0};
        if (s->ski_len == 8) {
            method2_of(ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits), md);
        } else {
            SHA1(ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits), md);
        }
        tlv(&v, 0x04, md, (size_t)s->ski_len);
        add_raw(x, NID_subject_key_identifier, 0, &v);
    }
    if (s->hw_san) {
        uint8_t serial8[16] = {0};
        size_t n = 0;
        assert_ok(smki_hex_decode(DEVICE_ID, 16, serial8, sizeof serial8, &n));
        buf_t hmn = {{0}, 0}, seq = {{0}, 0}, expl = {{0}, 0}, other = {{0}, 0}, gns = {{0}, 0}, on = {{0}, 0};
        oid_der(HW_TYPE, &hmn);
        tlv(&hmn, 0x04, serial8, s->hw_len);
        tlv(&seq, 0x30, hmn.b, hmn.n);
        tlv(&expl, 0xa0, seq.b, seq.n);
        oid_der("1.3.6.1.5.5.7.8.4", &on);
        put(&on, expl.b, expl.n);
        tlv(&other, 0xa0, on.b, on.n);
        tlv(&gns, 0x30, other.b, other.n);
        add_raw(x, NID_subject_alt_name, s->hw_san_critical, &gns);
    }
    if (s->san) add_conf(x, NID_subject_alt_name, s->san);
    if (s->eku) add_conf(x, NID_ext_key_usage, s->eku);
    if (s->policies) { /* "[critical,]OID": built by hand, as OpenSSL's text form needs a config database */
        int crit = strncmp(s->policies, "critical,", 9) == 0;
        buf_t oid = {{0}, 0}, info = {{0}, 0}, v = {{0}, 0};
        oid_der(s->policies + (crit ? 9 : 0), &oid);
        tlv(&info, 0x30, oid.b, oid.n);
        tlv(&v, 0x30, info.b, info.n);
        add_raw(x, NID_certificate_policies, crit, &v);
    }
    if (s->aki) {
        EVP_PKEY *signer = s->self_signed ? key : ca_key;
        uint8_t pt[65], kid[8];
        size_t n = 0;
        assert_int_equal(EVP_PKEY_get_octet_string_param(signer, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &n), 1);
        method2_of(pt, n, kid);
        buf_t in = {{0}, 0}, v = {{0}, 0};
        tlv(&in, 0x80, kid, 8);
        tlv(&v, 0x30, in.b, in.n);
        add_raw(x, NID_authority_key_identifier, 0, &v);
    }
    assert_true(X509_sign(x, s->self_signed ? key : ca_key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    uint8_t *out = malloc((size_t)n);
    memcpy(out, der, (size_t)n);
    *len = (size_t)n;
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(key);
    return out;
}

static spec_t make_org(void)
{
    spec_t s = {0};
    name_str(&s.subject, A_CN, "GITTESTSUPPLIER");
    name_str(&s.subject, A_OU, "02");
    name_uid(&s.subject, SUPPLIER_ID, 8);
    name_str(&s.issuer, A_OU, "07");
    name_str(&s.issuer, A_CN, "Z1");
    s.not_before = "200101000000Z";
    s.not_after = "291231235959Z";
    s.ku = "critical,digitalSignature";
    s.ski_len = 8;
    s.aki = 1;
    s.policies = "critical," ORG_POLICY;
    return s;
}

static spec_t make_device(void)
{
    spec_t s = {0};
    name_str(&s.issuer, A_CN, "E357");
    s.not_before = "200101000000Z";
    s.not_after = "99991231235959Z";
    s.ku = "critical,keyAgreement";
    s.ski_len = 8;
    s.aki = 1;
    s.policies = "critical," DEVICE_POLICY;
    s.hw_san = 1;
    s.hw_san_critical = 1;
    s.hw_len = 8;
    return s;
}

static spec_t make_smki_ca(const char *ou, const char *cn, const char *policy)
{
    spec_t s = {0};
    name_str(&s.subject, A_OU, ou);
    name_str(&s.subject, A_CN, cn);
    name_str(&s.issuer, A_OU, "00");
    name_str(&s.issuer, A_CN, "ZA");
    s.not_before = "150101000000Z";
    s.not_after = "391231235959Z";
    s.ku = "critical,keyCertSign,cRLSign";
    s.basic = strcmp(ou, "00") == 0 ? "critical,CA:TRUE" : "critical,CA:TRUE,pathlen:0";
    s.ski_len = 8;
    s.aki = strcmp(ou, "00") != 0;
    s.self_signed = strcmp(ou, "00") == 0;
    s.policies = policy;
    return s;
}

static spec_t make_tls(const char *eku)
{
    spec_t s = {0};
    name_str(&s.subject, A_O, "Example Energy Ltd");
    name_str(&s.subject, A_CN, "gw.example.org");
    name_str(&s.subject, A_ORGID, "PS-EXAMPLE-0042");
    name_str(&s.issuer, A_CN, "DCCKI Issuing CA");
    s.not_before = "240101000000Z";
    s.not_after = "260101000000Z";
    s.ku = "critical,digitalSignature";
    s.ski_len = 20;
    s.aki = 1;
    s.policies = DCCKI_POLICY;
    s.eku = eku;
    s.san = strcmp(eku, "serverAuth") == 0 ? "DNS:gw.example.org" : NULL;
    return s;
}

static void lint_spec(const spec_t *s, const smki_env *env, smki_lint_report *r)
{
    size_t len = 0;
    uint8_t *der = build(s, &len);
    assert_ok(smki_lint_der(der, len, env, r));
    free(der);
}

static int setup(void **state)
{
    (void)state;
    ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return ca_key ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(ca_key);
    return 0;
}

/* ---- The keystore ------------------------------------------------------------------------ */

typedef struct {
    const char *file;
    size_t certs, clean, dirty, aki_only;
    int inferred;
    const smki_env *env;
} keystore_run;

static int lint_keystore_cert(void *ctx, size_t index, const uint8_t *der, size_t len)
{
    keystore_run *k = ctx;
    smki_lint_report r;
    (void)index;
    assert_ok(smki_lint_der(der, len, k->env, &r));
    k->certs++;
    if (!k->env && r.env_inferred && strcmp(r.env, "test") == 0) k->inferred++;
    if (strncmp(k->file, "90b3d51f30010008-", 17) == 0) {
        /* The two loadController certificates lack an AKI (reference §4): exactly that. */
        if (r.errors != 1 || !smki_lint_find(&r, "aki.missing")) {
            print_message("%s: expected exactly aki.missing\n", k->file);
            print_report(&r);
            fail();
        }
        k->dirty++;
        k->aki_only++;
        return 0;
    }
    if (!smki_lint_is_clean(&r)) {
        print_message("%s is not clean\n", k->file);
        print_report(&r);
        fail();
    }
    assert_true(r.profile == SMKI_PROFILE_DEVICE || r.profile == SMKI_PROFILE_ORGANISATION);
    assert_true(r.has_id);
    k->clean++;
    return 0;
}

static void lint_keystore(const smki_env *env)
{
    const char *dir = test_shared_path("vectors/gbcs/keystore");
    char path[1200];
    snprintf(path, sizeof path, "%s", dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    keystore_run k = {.env = env};
    size_t pem_files = 0, not_certs = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".pem") != 0) continue;
        char file[sizeof path + 258];
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        uint8_t *data = NULL;
        size_t len = 0, certs = 0, others = 0;
        assert_ok(smki_file_read(file, 1 << 20, &data, &len));
        k.file = e->d_name;
        assert_ok(smki_cert_each(data, len, lint_keystore_cert, &k, &certs, &others));
        free(data);
        pem_files++;
        if (certs == 0) {
            /* fffffffffffffffe-ka.pem is a bare public key */
            assert_string_equal(e->d_name, "fffffffffffffffe-ka.pem");
            assert_int_equal(others, 1);
            not_certs++;
        } else {
            assert_int_equal(certs, 1);
        }
    }
    closedir(d);
    print_message("  keystore: %zu .pem files, %zu certificates, %zu clean, %zu with violations, %zu not "
                  "certificates\n",
                  pem_files, k.certs, k.clean, k.dirty, not_certs);
    assert_int_equal(pem_files, 417);
    assert_int_equal(not_certs, 1);
    assert_int_equal(k.certs, 416);
    assert_int_equal(k.clean, 414);
    assert_int_equal(k.aki_only, 2);
    if (!env) assert_int_equal(k.inferred, 416);
}

static void test_keystore_lints_clean_but_the_two_without_aki(void **state)
{
    (void)state;
    lint_keystore(NULL);
}

static void test_keystore_lints_clean_against_the_test_environment(void **state)
{
    (void)state;
    lint_keystore(test_env());
}

static void test_keystore_supplier_certificate_is_described(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *pem = test_read_shared("vectors/gbcs/keystore/90b3d51f30010000-ds.pem", &len);
    X509 *x = NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    free(pem);
    assert_non_null(x);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    X509_free(x);
    smki_lint_report r;
    assert_ok(smki_lint_der(der, (size_t)n, NULL, &r));
    OPENSSL_free(der);
    assert_clean(&r, SMKI_PROFILE_ORGANISATION);
    assert_int_equal(r.role, SMKI_ROLE_SUPPLIER);
    assert_int_equal(r.key_usage, SMKI_KU_DIGITAL_SIGNATURE);
    assert_string_equal(r.env, "test");
    assert_true(r.env_inferred);
    char what[160];
    smki_lint_describe(&r, what, sizeof what);
    assert_string_equal(what, "organisation 02 supplier DS 90-B3-D5-1F-30-01-00-00");
}

/* ---- Clean certificates of every profile ------------------------------------------------------ */

static void test_built_organisation_certificate_is_clean(void **state)
{
    (void)state;
    spec_t s = make_org();
    smki_lint_report r;
    lint_spec(&s, test_env(), &r);
    assert_clean(&r, SMKI_PROFILE_ORGANISATION);
    assert_int_equal(r.warnings, 0);
    lint_spec(&s, NULL, &r); /* the environment inferred from the policy */
    assert_clean(&r, SMKI_PROFILE_ORGANISATION);
    assert_true(r.env_inferred);
}

static void test_built_device_certificate_is_clean(void **state)
{
    (void)state;
    spec_t s = make_device();
    smki_lint_report r;
    lint_spec(&s, test_env(), &r);
    assert_clean(&r, SMKI_PROFILE_DEVICE);
    assert_int_equal(r.warnings, 0);
    assert_int_equal(r.key_usage, SMKI_KU_KEY_AGREEMENT);
    char id[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(&r.id, SMKI_EUI64_PLAIN, id);
    assert_string_equal(id, DEVICE_ID);
}

static void test_built_smki_cas_are_clean_and_told_apart_by_policy(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t root = make_smki_ca("00", "ZA", "critical," ORG_POLICY);
    lint_spec(&root, test_env(), &r);
    assert_clean(&r, SMKI_PROFILE_SMKI_ROOT);
    spec_t oca = make_smki_ca("07", "Z1", "critical," ORG_POLICY);
    lint_spec(&oca, test_env(), &r);
    assert_clean(&r, SMKI_PROFILE_SMKI_OCA);
    spec_t dca = make_smki_ca("07", "E357", "critical," DEVICE_POLICY);
    lint_spec(&dca, test_env(), &r);
    assert_clean(&r, SMKI_PROFILE_SMKI_DCA);
}

static smki_env dccki_env(void)
{
    smki_env e = *test_env();
    snprintf(e.dccki_policy, sizeof e.dccki_policy, "%s", DCCKI_POLICY);
    return e;
}

static void test_built_dccki_certificates_are_clean(void **state)
{
    (void)state;
    smki_env env = dccki_env();
    smki_lint_report r;
    spec_t server = make_tls("serverAuth");
    lint_spec(&server, &env, &r);
    assert_clean(&r, SMKI_PROFILE_DCCKI_SERVER);
    spec_t client = make_tls("clientAuth");
    lint_spec(&client, &env, &r);
    assert_clean(&r, SMKI_PROFILE_DCCKI_CLIENT);
    /* Told apart by their markers alone when the environment does not know the policy. */
    lint_spec(&client, test_env(), &r);
    assert_clean(&r, SMKI_PROFILE_DCCKI_CLIENT);

    spec_t root = {0};
    name_str(&root.subject, A_O, "DCC");
    name_str(&root.subject, A_CN, "DCCKI Root");
    root.self_signed = 1;
    root.not_before = "240101000000Z";
    root.not_after = "440101000000Z";
    root.ku = "critical,keyCertSign,cRLSign";
    root.basic = "critical,CA:TRUE";
    root.ski_len = 20;
    root.policies = DCCKI_POLICY;
    lint_spec(&root, &env, &r);
    assert_clean(&r, SMKI_PROFILE_DCCKI_ROOT);

    spec_t ica = root;
    memset(&ica.subject, 0, sizeof ica.subject);
    name_str(&ica.subject, A_CN, "DCCKI Issuing CA");
    name_str(&ica.issuer, A_CN, "DCCKI Root");
    ica.self_signed = 0;
    ica.aki = 1;
    ica.basic = "critical,CA:TRUE,pathlen:0";
    lint_spec(&ica, &env, &r);
    assert_clean(&r, SMKI_PROFILE_DCCKI_ICA);
}

/* ---- Crafted violations: one change each ------------------------------------------------------- */

static void test_lint_names_a_20_octet_ski(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_org();
    s.ski_len = 20;
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "ski.length");
    s = make_device();
    s.ski_len = 20;
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "ski.length");
}

static void test_lint_names_a_non_critical_key_usage(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_org();
    s.ku = "digitalSignature";
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "keyusage.critical");
    s = make_device();
    s.ku = "keyAgreement";
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "keyusage.critical");
}

static void test_lint_names_both_ds_and_ka(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_org();
    s.ku = "critical,digitalSignature,keyAgreement";
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "keyusage.ds_and_ka");
    s = make_device();
    s.ku = "critical,digitalSignature,keyAgreement";
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "keyusage.ds_and_ka");
}

static void test_lint_names_a_p384_key(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_org();
    s.key = "P-384";
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "key.curve");
    s = make_device();
    s.key = "P-384";
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "key.curve");
}

static void test_lint_names_an_rsa_key(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_org();
    s.key = "RSA";
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "key.alg");
}

static void test_lint_names_missing_certificate_policies(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_org();
    s.policies = NULL;
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "policies.missing");
    s = make_device();
    s.policies = NULL;
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "policies.missing");
    /* Without an environment, nothing to infer it from: a warning says what was skipped. */
    lint_spec(&s, NULL, &r);
    EXPECT(&r, "policies.missing");
    assert_non_null(smki_lint_find(&r, "env.none"));
}

static void test_lint_names_non_critical_certificate_policies(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_org();
    s.policies = ORG_POLICY;
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "policies.critical");
    s = make_device();
    s.policies = DEVICE_POLICY;
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "policies.critical");
}

static void test_lint_names_another_environments_policy(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_org();
    s.policies = "critical," DEVICE_POLICY; /* the device policy on an organisation certificate */
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "policies.oid");
}

static void test_lint_names_a_non_critical_san(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_device();
    s.hw_san_critical = 0;
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "san.critical");
}

static void test_lint_names_a_subject_on_a_device_certificate(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_device();
    name_str(&s.subject, A_CN, "meter");
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "device.subject");
    assert_int_equal(r.profile, SMKI_PROFILE_DEVICE);
}

static void test_lint_names_a_wrong_length_device_id(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_device();
    s.hw_len = 7;
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "eui64.length");
    s.hw_len = 9;
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "eui64.length");
}

static void test_lint_names_a_wrong_length_organisation_id(void **state)
{
    (void)state;
    smki_lint_report r;
    for (size_t octets = 7; octets <= 9; octets += 2) {
        spec_t s = {0};
        s = make_org();
        memset(&s.subject, 0, sizeof s.subject);
        name_str(&s.subject, A_OU, "02");
        name_uid(&s.subject, SUPPLIER_ID, octets);
        lint_spec(&s, test_env(), &r);
        EXPECT(&r, "eui64.length");
    }
}

static void test_lint_names_an_organisation_certificate_without_role(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_org();
    memset(&s.subject, 0, sizeof s.subject);
    name_str(&s.subject, A_CN, "GITTESTSUPPLIER");
    name_uid(&s.subject, SUPPLIER_ID, 8);
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "org.role");
    assert_int_equal(r.profile, SMKI_PROFILE_ORGANISATION);
    /* An OU that is not a Remote Party Role, and a CA's role on an organisation. */
    memset(&s.subject, 0, sizeof s.subject);
    name_str(&s.subject, A_OU, "42");
    name_uid(&s.subject, SUPPLIER_ID, 8);
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "org.role");
}

static void test_lint_names_an_organisation_certificate_without_unique_id(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_org();
    memset(&s.subject, 0, sizeof s.subject);
    name_str(&s.subject, A_CN, "GITTESTSUPPLIER");
    name_str(&s.subject, A_OU, "02");
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "org.uid");
}

static void test_lint_names_a_missing_aki(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_org();
    s.aki = 0;
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "aki.missing");
}

static void test_lint_names_a_ds_only_role_with_key_agreement(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_org();
    memset(&s.subject, 0, sizeof s.subject);
    name_str(&s.subject, A_OU, "87");
    name_uid(&s.subject, SUPPLIER_ID, 8);
    s.ku = "critical,keyAgreement";
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "keyusage.role");
}

static void test_lint_names_validity_rules(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_device();
    s.not_after = "491231235959Z";
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "device.not_after");
    s = make_org();
    s.not_after = "310101000000Z"; /* 11 years */
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "validity.period");
    s = make_org();
    s.not_after = "20291231235959Z"; /* GeneralizedTime before 2050 */
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "validity.encoding");
    s = make_org();
    s.not_before = "300101000000Z";
    s.not_after = "200101000000Z";
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "validity.order");
}

static void test_lint_names_ca_rules(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_smki_ca("07", "Z1", "critical," ORG_POLICY);
    s.basic = "critical,CA:TRUE";
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "basic.pathlen");
    s = make_smki_ca("07", "Z1", "critical," ORG_POLICY);
    s.basic = "CA:TRUE,pathlen:0";
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "basic.critical");
    s = make_smki_ca("07", "Z1", "critical," ORG_POLICY);
    s.ku = "critical,keyCertSign,cRLSign,digitalSignature";
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "keyusage.value");
    s = make_smki_ca("07", "Z9", "critical," ORG_POLICY);
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "ca.name");
}

static void test_lint_names_extensions_outside_the_profile(void **state)
{
    (void)state;
    smki_lint_report r;
    spec_t s = make_org();
    s.eku = "clientAuth";
    s.policies = "critical," ORG_POLICY;
    lint_spec(&s, test_env(), &r);
    EXPECT(&r, "ext.unexpected");
    assert_int_equal(r.profile, SMKI_PROFILE_ORGANISATION); /* the policy says SMKI */
}

static void test_lint_names_dccki_rules(void **state)
{
    (void)state;
    smki_env env = dccki_env();
    smki_lint_report r;
    spec_t s = make_tls("serverAuth");
    s.san = NULL;
    lint_spec(&s, &env, &r);
    EXPECT(&r, "san.missing");
    s = make_tls("serverAuth,clientAuth");
    s.san = "DNS:gw.example.org";
    lint_spec(&s, &env, &r);
    EXPECT(&r, "dccki.eku");
    s = make_tls("clientAuth");
    memset(&s.subject, 0, sizeof s.subject);
    name_str(&s.subject, A_CN, "gw.example.org");
    lint_spec(&s, &env, &r);
    EXPECT(&r, "dccki.party_signifier");
    s = make_tls("clientAuth");
    s.ku = "critical,digitalSignature,keyAgreement";
    lint_spec(&s, &env, &r);
    EXPECT(&r, "keyusage.value");
}

/* ---- Strict DER: bytes edited in place, nothing else fixed up --------------------------------- */

static size_t find(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0) return i;
    fail_msg("pattern not found");
    return 0;
}

/* keyUsage's critical flag: OID 2.5.29.15 then BOOLEAN TRUE. */
static const uint8_t KU_CRITICAL[] = {0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff};

static void test_lint_names_boolean_false_written_out(void **state)
{
    (void)state;
    spec_t s = make_org();
    size_t len = 0;
    uint8_t *der = build(&s, &len);
    der[find(der, len, KU_CRITICAL, sizeof KU_CRITICAL) + 7] = 0x00; /* critical FALSE: a DEFAULT written out */
    smki_lint_report r;
    assert_ok(smki_lint_der(der, len, test_env(), &r));
    EXPECT(&r, "der.strict", "keyusage.critical");
    free(der);
}

static void test_lint_names_a_ber_boolean_true(void **state)
{
    (void)state;
    spec_t s = make_device();
    size_t len = 0;
    uint8_t *der = build(&s, &len);
    der[find(der, len, KU_CRITICAL, sizeof KU_CRITICAL) + 7] = 0x01; /* TRUE, but BER's, not DER's FF */
    smki_lint_report r;
    assert_ok(smki_lint_der(der, len, test_env(), &r));
    EXPECT(&r, "der.strict");
    free(der);
}

static void test_lint_names_a_long_form_length(void **state)
{
    (void)state;
    spec_t s = make_org();
    size_t len = 0;
    uint8_t *der = build(&s, &len);
    assert_int_equal(der[0], 0x30);
    assert_int_equal(der[1], 0x82);
    /* 30 82 HH LL -> 30 83 00 HH LL: the same length in a longer form. */
    uint8_t *longer = malloc(len + 1);
    longer[0] = 0x30;
    longer[1] = 0x83;
    longer[2] = 0x00;
    memcpy(longer + 3, der + 2, len - 2);
    smki_lint_report r;
    assert_ok(smki_lint_der(longer, len + 1, test_env(), &r));
    EXPECT(&r, "der.strict");
    free(longer);
    free(der);
}

static void test_lint_names_trailing_octets_and_garbage(void **state)
{
    (void)state;
    spec_t s = make_device();
    size_t len = 0;
    uint8_t *der = build(&s, &len);
    uint8_t *more = malloc(len + 2);
    memcpy(more, der, len);
    more[len] = 0x00;
    more[len + 1] = 0x00;
    smki_lint_report r;
    assert_ok(smki_lint_der(more, len + 2, test_env(), &r));
    EXPECT(&r, "der.trailing");
    assert_ok(smki_lint_der(der, len / 2, test_env(), &r));
    EXPECT(&r, "der.parse");
    static const uint8_t junk[] = {0x04, 0x02, 0x41, 0x42};
    assert_ok(smki_lint_der(junk, sizeof junk, NULL, &r));
    EXPECT(&r, "der.parse");
    assert_ok(smki_lint_der(junk, 0, NULL, &r));
    EXPECT(&r, "der.parse");
    free(more);
    free(der);
}

/* ---- Environments ------------------------------------------------------------------------------ */

static void test_production_environment_is_refused_until_configured(void **state)
{
    (void)state;
    spec_t s = make_org();
    size_t len = 0;
    uint8_t *der = build(&s, &len);
    smki_lint_report r;
    const smki_env *prod = smki_env_builtin("production");
    assert_non_null(prod);
    assert_fails(smki_lint_der(der, len, prod, &r), SMKI_E_USAGE, "placeholder");
    assert_non_null(strstr(smki_error_msg(), "org_policy"));

    static const char conf_text[] = "[env.production]\n"
                                    "org_policy = " ORG_POLICY "\n"
                                    "device_policy = " DEVICE_POLICY "\n"
                                    "hw_type = " HW_TYPE "\n"
                                    "oca_name = Z1, Z2\n";
    smki_conf *conf = NULL;
    assert_ok(smki_conf_parse((const uint8_t *)conf_text, sizeof conf_text - 1, "test.conf", &conf));
    smki_env env;
    assert_ok(smki_env_load("production", conf, &env));
    smki_conf_free(conf);
    assert_ok(smki_env_check_configured(&env));
    assert_ok(smki_lint_der(der, len, &env, &r));
    assert_clean(&r, SMKI_PROFILE_ORGANISATION);
    assert_string_equal(r.env, "production");
    free(der);
}

static void test_env_load_applies_and_checks_settings(void **state)
{
    (void)state;
    smki_env env;
    assert_ok(smki_env_load("test", NULL, &env));
    assert_string_equal(env.org_policy, ORG_POLICY);
    assert_string_equal(env.device_policy, DEVICE_POLICY);
    assert_string_equal(env.hw_type, HW_TYPE);
    assert_int_equal(env.years[SMKI_PROFILE_ORGANISATION], 10);

    static const char good[] = "[env.lab]\norg_policy = 1.2.3.4\ndevice_policy = 1.2.3.5\nhw_type = 1.2.3.6\n"
                               "organisation_years = 5\ndccki_server_years = 1\norganisation_long_roles = 87\n";
    smki_conf *conf = NULL;
    assert_ok(smki_conf_parse((const uint8_t *)good, sizeof good - 1, "lab.conf", &conf));
    assert_ok(smki_env_load("lab", conf, &env));
    assert_string_equal(env.name, "lab");
    assert_string_equal(env.org_policy, "1.2.3.4");
    assert_int_equal(env.years[SMKI_PROFILE_ORGANISATION], 5);
    assert_int_equal(env.years[SMKI_PROFILE_DCCKI_SERVER], 1);
    assert_int_equal(env.org_long_roles[0x87 / 8], 1u << (0x87 % 8));
    assert_int_equal(env.org_long_roles[1], 0); /* 08 no longer listed */
    assert_ok(smki_env_check_configured(&env));
    assert_fails(smki_env_load("elsewhere", conf, &env), SMKI_E_USAGE, "unknown environment");
    smki_conf_free(conf);

    static const char bad_oid[] = "[env.test]\norg_policy = 1.2.x\n";
    assert_ok(smki_conf_parse((const uint8_t *)bad_oid, sizeof bad_oid - 1, "bad.conf", &conf));
    assert_fails(smki_env_load("test", conf, &env), SMKI_E_USAGE, "env.test.org_policy");
    smki_conf_free(conf);
    static const char bad_years[] = "[env.test]\norganisation_years = ten\n";
    assert_ok(smki_conf_parse((const uint8_t *)bad_years, sizeof bad_years - 1, "bad.conf", &conf));
    assert_fails(smki_env_load("test", conf, &env), SMKI_E_USAGE, "organisation_years");
    smki_conf_free(conf);
    static const char bad_role[] = "[env.test]\norganisation_long_roles = 08, 99\n";
    assert_ok(smki_conf_parse((const uint8_t *)bad_role, sizeof bad_role - 1, "bad.conf", &conf));
    assert_fails(smki_env_load("test", conf, &env), SMKI_E_USAGE, "not a Remote Party Role");
    smki_conf_free(conf);
    assert_fails(smki_env_load("no such", NULL, &env), SMKI_E_USAGE, "not an environment name");
}

static void test_env_for_policy_knows_only_configured_oids(void **state)
{
    (void)state;
    assert_ptr_equal(smki_env_for_policy(ORG_POLICY), smki_env_builtin("test"));
    assert_ptr_equal(smki_env_for_policy(DEVICE_POLICY), smki_env_builtin("test"));
    assert_ptr_equal(smki_env_for_policy(DCCKI_POLICY), smki_env_builtin("test")); /* a test DCCKI certificate */
    assert_null(smki_env_for_policy(""));
    assert_null(smki_env_for_policy("1.2.3"));
}

/* ---- Roles and profiles ------------------------------------------------------------------------- */

static void test_roles_parse_and_format(void **state)
{
    (void)state;
    uint8_t code = 0;
    assert_ok(smki_role_parse("02", &code));
    assert_int_equal(code, SMKI_ROLE_SUPPLIER);
    assert_ok(smki_role_parse("supplier", &code));
    assert_int_equal(code, SMKI_ROLE_SUPPLIER);
    assert_ok(smki_role_parse("XMLSIGN", &code));
    assert_int_equal(code, SMKI_ROLE_XML_SIGN);
    assert_ok(smki_role_parse("7f", &code));
    assert_int_equal(code, SMKI_ROLE_OTHER);
    char text[SMKI_ROLE_TEXT_MAX];
    smki_role_format(SMKI_ROLE_OTHER, text);
    assert_string_equal(text, "7F");
    smki_role_format(SMKI_ROLE_SUPPLIER, text);
    assert_string_equal(text, "02");
    assert_string_equal(smki_role_name(0x89), "dspXmlSign");
    assert_string_equal(smki_role_name(0x09), "unknown");
    size_t n = 0;
    const smki_role_t *roles = smki_roles(&n);
    assert_int_equal(n, 12);
    for (size_t i = 0; i < n; i++) {
        smki_role_format(roles[i].code, text);
        assert_ok(smki_role_parse(text, &code));
        assert_int_equal(code, roles[i].code);
        assert_ok(smki_role_parse(roles[i].name, &code));
        assert_int_equal(code, roles[i].code);
    }
    assert_fails(smki_role_parse("09", &code), SMKI_E_USAGE, "\"09\"");
    assert_fails(smki_role_parse("2", &code), SMKI_E_USAGE, "not a Remote Party Role");
    assert_fails(smki_role_parse(" 02", &code), SMKI_E_USAGE, NULL);
    assert_fails(smki_role_parse("sup\x01", &code), SMKI_E_USAGE, "\\x01");
    assert_fails(smki_role_parse(NULL, &code), SMKI_E_USAGE, NULL);
}

static void test_profiles_are_a_table_by_id_and_name(void **state)
{
    (void)state;
    size_t n = 0;
    const smki_profile *p = smki_profiles(&n);
    assert_int_equal(n, SMKI_PROFILE_COUNT);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(p[i].id, i);
        assert_ptr_equal(smki_profile_by_name(p[i].name), &p[i]);
        assert_ptr_equal(smki_profile_get(p[i].id), &p[i]);
    }
    assert_null(smki_profile_by_name("nope"));
    assert_int_equal(smki_profile_get(SMKI_PROFILE_DEVICE)->validity, SMKI_VALIDITY_NO_EXPIRY);
    assert_int_equal(smki_profile_get(SMKI_PROFILE_ORGANISATION)->ku_one_of,
                     SMKI_KU_DIGITAL_SIGNATURE | SMKI_KU_KEY_AGREEMENT);
    assert_int_equal(smki_profile_get(SMKI_PROFILE_SMKI_OCA)->path_len, 0);
}

static void test_cert_each_walks_pem_and_der(void **state)
{
    (void)state;
    size_t a_len = 0, b_len = 0;
    uint8_t *a = test_read_shared("vectors/gbcs/keystore/90b3d51f30010000-ds.pem", &a_len);
    uint8_t *b = test_read_shared("vectors/gbcs/keystore/fffffffffffffffe-ka.pem", &b_len);
    uint8_t *both = malloc(2 * a_len + b_len);
    memcpy(both, a, a_len);
    memcpy(both + a_len, b, b_len);
    memcpy(both + a_len + b_len, a, a_len);
    size_t certs = 0, others = 0;
    assert_ok(smki_cert_each(both, 2 * a_len + b_len, NULL, NULL, &certs, &others));
    assert_int_equal(certs, 2);
    assert_int_equal(others, 1);
    /* A PEM block whose base64 is broken is refused. */
    char *mid = strstr((char *)both, "MII");
    assert_non_null(mid);
    mid[5] = '*';
    assert_fails(smki_cert_each(both, 2 * a_len + b_len, NULL, NULL, &certs, &others), SMKI_E_INPUT, NULL);
    free(both);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keystore_lints_clean_but_the_two_without_aki),
        cmocka_unit_test(test_keystore_lints_clean_against_the_test_environment),
        cmocka_unit_test(test_keystore_supplier_certificate_is_described),
        cmocka_unit_test(test_built_organisation_certificate_is_clean),
        cmocka_unit_test(test_built_device_certificate_is_clean),
        cmocka_unit_test(test_built_smki_cas_are_clean_and_told_apart_by_policy),
        cmocka_unit_test(test_built_dccki_certificates_are_clean),
        cmocka_unit_test(test_lint_names_a_20_octet_ski),
        cmocka_unit_test(test_lint_names_a_non_critical_key_usage),
        cmocka_unit_test(test_lint_names_both_ds_and_ka),
        cmocka_unit_test(test_lint_names_a_p384_key),
        cmocka_unit_test(test_lint_names_an_rsa_key),
        cmocka_unit_test(test_lint_names_missing_certificate_policies),
        cmocka_unit_test(test_lint_names_non_critical_certificate_policies),
        cmocka_unit_test(test_lint_names_another_environments_policy),
        cmocka_unit_test(test_lint_names_a_non_critical_san),
        cmocka_unit_test(test_lint_names_a_subject_on_a_device_certificate),
        cmocka_unit_test(test_lint_names_a_wrong_length_device_id),
        cmocka_unit_test(test_lint_names_a_wrong_length_organisation_id),
        cmocka_unit_test(test_lint_names_an_organisation_certificate_without_role),
        cmocka_unit_test(test_lint_names_an_organisation_certificate_without_unique_id),
        cmocka_unit_test(test_lint_names_a_missing_aki),
        cmocka_unit_test(test_lint_names_a_ds_only_role_with_key_agreement),
        cmocka_unit_test(test_lint_names_validity_rules),
        cmocka_unit_test(test_lint_names_ca_rules),
        cmocka_unit_test(test_lint_names_extensions_outside_the_profile),
        cmocka_unit_test(test_lint_names_dccki_rules),
        cmocka_unit_test(test_lint_names_boolean_false_written_out),
        cmocka_unit_test(test_lint_names_a_ber_boolean_true),
        cmocka_unit_test(test_lint_names_a_long_form_length),
        cmocka_unit_test(test_lint_names_trailing_octets_and_garbage),
        cmocka_unit_test(test_production_environment_is_refused_until_configured),
        cmocka_unit_test(test_env_load_applies_and_checks_settings),
        cmocka_unit_test(test_env_for_policy_knows_only_configured_oids),
        cmocka_unit_test(test_roles_parse_and_format),
        cmocka_unit_test(test_profiles_are_a_table_by_id_and_name),
        cmocka_unit_test(test_cert_each_walks_pem_and_der),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
