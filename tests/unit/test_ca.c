/* The CA (ca/issue.c, ca/ca_store.c, ca/ceremony.c, ca/der.c): hierarchies made by
 * the ceremony (software keys, and keys generated in a SoftHSM token), the real
 * device CSR issued into a certificate shaped like the RTDS ones, organisation
 * certificates shaped like the keystore's, serials, the store's records and indices,
 * and every refusal with nothing written. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ca/ca.h"
#include "ca/ca_test.h"
#include "ca/ca_private.h"
#include "ca/der.h"
#include "helpers.h"

#define REAL_CSR "vectors/gbcs/csr/00db1234567890a0-ds.csr.der"
#define RTDS_DEVICE "vectors/gbcs/keystore/00db1234567890a0-ds.pem"
#define RTDS_ORG "vectors/gbcs/keystore/90b3d51f30010000-ds.pem"
#define RTDS_NO_AKI "vectors/gbcs/keystore/90b3d51f30010008-ds.pem"

static const uint8_t REAL_EUI[8] = {0x00, 0xdb, 0x12, 0x34, 0x56, 0x78, 0x90, 0xa0};
static const uint8_t ORG_EUI[8] = {0x90, 0xb3, 0xd5, 0x1f, 0x30, 0x01, 0x00, 0x00};
/* The RTDS device certificate's SKI: the real CSR holds the same key. */
static const uint8_t RTDS_DEVICE_SKI[8] = {0x41, 0x97, 0x8b, 0xa9, 0x0c, 0x06, 0x6f, 0xfa};

/* ---- Fixture: a test hierarchy of software keys in a fresh store ------------------------- */

typedef struct {
    char dir[1024];
    smki_store *store;
    smki_ca_db db;
    smki_conf *conf;
    smki_ca_issuer *oca, *dca;
} fixture;

static void open_store(fixture *f)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/store", f->dir);
    assert_ok(smki_store_open(path, NULL, &f->store));
    assert_ok(smki_ca_db_open(f->store, &f->db));
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", test_tmpdir("ca"));
    open_store(f);
    f->conf = test_software_ca_conf(f->dir, "test", NULL);
    smki_ca_init_opts o = {NULL, f->dir, 0, NULL, NULL};
    smki_ca_init_report rep;
    if (smki_ca_init(&f->db, "test", f->conf, &o, &rep) != 0) {
        print_error("ceremony: %s\n", smki_error_msg());
        return -1;
    }
    if (smki_ca_issuer_open(&f->db, "test", SMKI_PROFILE_ORGANISATION, NULL, &f->oca) != 0 ||
        smki_ca_issuer_open(&f->db, "test", SMKI_PROFILE_DEVICE, NULL, &f->dca) != 0) {
        print_error("issuer: %s\n", smki_error_msg());
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    smki_ca_issuer_free(f->oca);
    smki_ca_issuer_free(f->dca);
    smki_conf_free(f->conf);
    smki_store_close(f->store);
    smki_ca_test_fix_serial(NULL);
    free(f);
    return 0;
}

static size_t cert_count(fixture *f)
{
    size_t n = 0;
    assert_ok(smki_ca_count(&f->db, &n));
    return n;
}

/* ---- CSRs made here ---------------------------------------------------------------------- */

static EVP_PKEY *new_key(const char *curve)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    assert_non_null(k);
    return k;
}

/* A PKCS#10 request: keyUsage (critical) with these bits, optionally a critical
 * hardwareModuleName SAN, subject CN=cn or empty. DER into out. */
static size_t csr_der(EVP_PKEY *key, unsigned ku, const uint8_t *hw_eui, const char *cn, uint8_t *out, size_t cap)
{
    X509_REQ *req = X509_REQ_new();
    assert_non_null(req);
    assert_int_equal(X509_REQ_set_version(req, 0), 1);
    if (cn)
        assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    for (int b = 0; b < 9; b++)
        if (ku & (b < 8 ? 0x80u >> b : 0x8000u)) ASN1_BIT_STRING_set_bit(bits, b, 1);
    X509_EXTENSION *e = X509V3_EXT_i2d(NID_key_usage, 1, bits);
    assert_non_null(e);
    sk_X509_EXTENSION_push(exts, e);
    ASN1_BIT_STRING_free(bits);
    if (hw_eui) sk_X509_EXTENSION_push(exts, test_device_san(hw_eui));
    assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    assert_true(n > 0 && (size_t)n <= cap);
    memcpy(out, der, (size_t)n);
    OPENSSL_free(der);
    X509_REQ_free(req);
    return (size_t)n;
}

static smki_csr *make_csr(unsigned ku, const uint8_t *hw_eui, const char *cn)
{
    uint8_t der[2048];
    EVP_PKEY *k = new_key("P-256");
    size_t n = csr_der(k, ku, hw_eui, cn, der, sizeof der);
    EVP_PKEY_free(k);
    smki_csr *c = NULL;
    assert_ok(smki_csr_parse(der, n, &c));
    return c;
}

static smki_csr *real_csr(void)
{
    size_t len;
    uint8_t *der = test_read_shared(REAL_CSR, &len);
    smki_csr *c = NULL;
    assert_ok(smki_csr_parse(der, len, &c));
    free(der);
    return c;
}

static X509 *load_cert(const char *rel)
{
    X509 *x = NULL;
    assert_ok(smki_cert_load_file(test_shared_path(rel), &x));
    return x;
}

static X509 *decode(const smki_cert *c)
{
    const unsigned char *p = c->der;
    X509 *x = d2i_X509(NULL, &p, (long)c->der_len);
    assert_non_null(x);
    assert_ptr_equal(p, c->der + c->der_len);
    return x;
}

static void assert_lints_clean(const uint8_t *der, size_t len, const char *env_name, smki_profile_id want)
{
    smki_env env;
    assert_ok(smki_env_load(env_name, NULL, &env));
    smki_lint_report *rep = malloc(sizeof *rep);
    assert_ok(smki_lint_der(der, len, &env, rep));
    for (size_t i = 0; i < rep->count; i++) print_message("  lint %s: %s\n", rep->findings[i].rule, rep->findings[i].message);
    assert_true(smki_lint_is_clean(rep));
    assert_int_equal(rep->profile, want);
    free(rep);
}

/* ---- The DER writer ------------------------------------------------------------------------ */

static void test_der_lengths_are_minimal_at_every_boundary(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 127, 128, 255, 256, 1000, 65535, 65536};
    static uint8_t buf[70000], content[66000];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        smki_writer_t w;
        smki_writer_fixed(&w, buf, sizeof buf);
        smki_der_mark m = smki_wr_der_begin(&w, 0x30);
        smki_wr_raw(&w, content, n);
        smki_wr_der_end(&w, m);
        assert_ok(smki_wr_check(&w, "test"));
        size_t head = n < 0x80 ? 2 : n <= 0xff ? 3 : n <= 0xffff ? 4 : 5;
        assert_int_equal(w.len, head + n);
        smki_cursor_t c = smki_cursor(buf + 1, w.len - 1);
        size_t got;
        assert_ok(smki_cur_ber_len(&c, &got));
        assert_int_equal(got, n);
    }
    smki_writer_t w;
    uint8_t small[8];
    smki_writer_fixed(&w, small, sizeof small);
    smki_wr_der(&w, 0x04, content, 7);
    assert_fails(smki_wr_check(&w, "a too-long OCTET STRING"), SMKI_E_INTERNAL, "does not fit");
}

static void test_der_integers_and_times(void **state)
{
    (void)state;
    uint8_t buf[64];
    smki_writer_t w;
    smki_writer_fixed(&w, buf, sizeof buf);
    smki_wr_der_uint(&w, (const uint8_t *)"\x00\x00\x7f", 3);
    smki_wr_der_uint(&w, (const uint8_t *)"\x80", 1);
    smki_wr_der_uint(&w, (const uint8_t *)"\x00", 1);
    assert_memory_equal(buf, "\x02\x01\x7f\x02\x02\x00\x80\x02\x01\x00", 10);

    /* RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
    smki_writer_fixed(&w, buf, sizeof buf);
    smki_ca_derw_time(&w, 2524607999); /* 2049-12-31 23:59:59 */
    smki_ca_derw_time(&w, 2524608000); /* 2050-01-01 00:00:00 */
    assert_memory_equal(buf, "\x17\x0d" "491231235959Z" "\x18\x0f" "20500101000000Z", 32);
    /* The period ends on the last second before the anniversary, like the RTDS ones
     * (151030000000Z .. 251029235959Z); a 29 February start ends on 28 February. */
    der_civil c = {2015, 10, 30, 0, 0, 0};
    der_civil e = smki_ca_der_civil_from_time(smki_ca_der_time_add_years_end(smki_ca_der_time_from_civil(&c), 10));
    assert_true(e.y == 2025 && e.mo == 10 && e.d == 29 && e.h == 23 && e.mi == 59 && e.s == 59);
    der_civil leap = {2024, 2, 29, 12, 0, 0};
    e = smki_ca_der_civil_from_time(smki_ca_der_time_add_years_end(smki_ca_der_time_from_civil(&leap), 1));
    assert_true(e.y == 2025 && e.mo == 2 && e.d == 28 && e.h == 11 && e.mi == 59 && e.s == 59);
}

static void test_der_oids_match_openssl(void **state)
{
    (void)state;
    static const char *const OIDS[] = {"1.2.826.0.1.8641679.1.2.1.4", "1.2.826.0.1.1800000.1.2.1.4",
                                       "1.3.6.1.5.5.7.8.4", "2.999.1.2.826.1", "2.5.4.45", "0.9.2342.19200300.100.1.1"};
    for (size_t i = 0; i < sizeof OIDS / sizeof OIDS[0]; i++) {
        uint8_t mine[64];
        size_t n;
        assert_ok(smki_ca_der_oid_from_text(OIDS[i], mine, sizeof mine, &n));
        ASN1_OBJECT *o = OBJ_txt2obj(OIDS[i], 1);
        assert_non_null(o);
        assert_int_equal((size_t)OBJ_length(o), n);
        assert_memory_equal(OBJ_get0_data(o), mine, n);
        ASN1_OBJECT_free(o);
    }
    uint8_t out[8];
    size_t n;
    assert_fails(smki_ca_der_oid_from_text("1.2.", out, sizeof out, &n), SMKI_E_USAGE, "ends with");
    assert_fails(smki_ca_der_oid_from_text("3.1", out, sizeof out, &n), SMKI_E_USAGE, "first 0..2");
    assert_fails(smki_ca_der_oid_from_text("1.02", out, sizeof out, &n), SMKI_E_USAGE, "leading zero");
    assert_fails(smki_ca_der_oid_from_text("1.2.3.4.5.6.7.8.9", out, 4, &n), SMKI_E_USAGE, "too long");
}

/* ---- The ceremony --------------------------------------------------------------------------- */

static void test_ca_init_builds_a_hierarchy_that_lints_clean(void **state)
{
    fixture *f = *state;
    for (int k = 0; k < SMKI_CA_KIND_COUNT; k++) {
        smki_ca_record r;
        assert_ok(smki_ca_get(&f->db, "test", (smki_ca_kind)k, &r));
        assert_lints_clean(r.cert.der, r.cert.der_len, "test", smki_ca_kind_profile((smki_ca_kind)k));
        /* The PEM file holds the same certificate. */
        char path[1200];
        snprintf(path, sizeof path, "%s/ca/test/%s.pem", f->dir, smki_ca_kind_name((smki_ca_kind)k));
        X509 *x = NULL;
        assert_ok(smki_cert_load_file(path, &x));
        unsigned char *der = NULL;
        int n = i2d_X509(x, &der);
        assert_int_equal((size_t)n, r.cert.der_len);
        assert_memory_equal(der, r.cert.der, r.cert.der_len);
        OPENSSL_free(der);
        X509_free(x);
    }
    /* Roots also in the environment's trust store. */
    char path[1200];
    snprintf(path, sizeof path, "%s/trust/test/smki-root.pem", f->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* Names: the environment's (ZAZ1 and E357 in test); OU before CN as in the RTDS. */
    smki_ca_record r;
    assert_ok(smki_ca_get(&f->db, "test", SMKI_CA_DCA, &r));
    X509 *x = decode(&r.cert);
    char name[128];
    X509_NAME_oneline(X509_get_subject_name(x), name, sizeof name);
    assert_string_equal(name, "/OU=07/CN=E357");
    X509_NAME_oneline(X509_get_issuer_name(x), name, sizeof name);
    assert_string_equal(name, "/OU=00/CN=ZA");
    X509_free(x);
}

static void test_ca_init_twice_reports_exists_and_changes_nothing(void **state)
{
    fixture *f = *state;
    smki_ca_record before[SMKI_CA_KIND_COUNT];
    for (int k = 0; k < SMKI_CA_KIND_COUNT; k++) assert_ok(smki_ca_get(&f->db, "test", (smki_ca_kind)k, &before[k]));
    size_t count = cert_count(f);
    smki_ca_init_opts o = {NULL, f->dir, 0, NULL, NULL};
    smki_ca_init_report rep;
    assert_ok(smki_ca_init(&f->db, "test", f->conf, &o, &rep));
    assert_int_equal(rep.n, SMKI_CA_KIND_COUNT);
    assert_int_equal(rep.created, 0);
    for (int k = 0; k < SMKI_CA_KIND_COUNT; k++) {
        smki_ca_record after;
        assert_int_equal(rep.items[k].created, 0);
        assert_ok(smki_ca_get(&f->db, "test", (smki_ca_kind)k, &after));
        assert_int_equal(after.cert.der_len, before[k].cert.der_len);
        assert_memory_equal(after.cert.der, before[k].cert.der, after.cert.der_len);
        assert_memory_equal(rep.items[k].serial, before[k].cert.serial, SMKI_SERIAL_LEN);
    }
    assert_int_equal(cert_count(f), count);
    /* Other names in the configuration do not replace anything either. */
    smki_conf *c2 = NULL;
    const char *t = "[ca.test]\nsmki_root_name = ZA\nsmki_oca_key = other-label\n";
    assert_ok(smki_conf_parse((const uint8_t *)t, strlen(t), "t", &c2));
    assert_ok(smki_ca_init(&f->db, "test", c2, &o, &rep));
    assert_int_equal(rep.created, 0);
    smki_conf_free(c2);
}

static void test_ca_init_refuses_unknown_and_unconfigured_environments(void **state)
{
    fixture *f = *state;
    size_t count = cert_count(f);
    smki_ca_init_opts o = {NULL, f->dir, 0, NULL, NULL};
    smki_ca_init_report rep;
    assert_fails(smki_ca_init(&f->db, "staging", f->conf, &o, &rep), SMKI_E_USAGE, "unknown environment 'staging'");
    smki_conf *pc = test_software_ca_conf(f->dir, "production", NULL);
    assert_fails(smki_ca_init(&f->db, "production", pc, &o, &rep), SMKI_E_USAGE, "org_policy");
    smki_conf_free(pc);
    /* Configured OIDs but no DCCKI policy: refused too, naming the way out. */
    pc = test_software_ca_conf(f->dir, "production",
                       "[env.production]\norg_policy = 2.999.2.1\ndevice_policy = 2.999.2.2\nhw_type = 2.999.2.3\n"
                       "root_name = PR\noca_name = P1\ndca_name = PD\n");
    assert_fails(smki_ca_init(&f->db, "production", pc, &o, &rep), SMKI_E_USAGE, "dccki_policy");
    smki_conf_free(pc);
    /* A name the environment does not list. */
    const char *t = "[ca.test]\nsmki_root_name = ZB\n";
    smki_conf *c2 = NULL;
    smki_store_close(f->store);
    char path[1200];
    snprintf(path, sizeof path, "%s/other", f->dir);
    smki_store *s2 = NULL;
    smki_ca_db db2;
    assert_ok(smki_store_open(path, NULL, &s2));
    assert_ok(smki_ca_db_open(s2, &db2));
    assert_ok(smki_conf_parse((const uint8_t *)t, strlen(t), "t", &c2));
    assert_fails(smki_ca_init(&db2, "test", c2, &o, &rep), SMKI_E_USAGE, "is not one of environment test's names");
    smki_conf_free(c2);
    /* Misspelt keys, in the ceremony's section and in the environment's: refused
     * naming the line and the key meant, before anything is made. */
    t = "[ca.test]\nsmki_root_name = ZA\nsmki_oca_yaers = 5\n";
    assert_ok(smki_conf_parse((const uint8_t *)t, strlen(t), "typo.conf", &c2));
    assert_fails(smki_ca_init(&db2, "test", c2, &o, &rep), SMKI_E_USAGE,
                 "typo.conf:3: unknown setting 'smki_oca_yaers' under [ca.test] (did you mean 'smki_oca_years'?)");
    smki_conf_free(c2);
    t = "[env.test]\ndevice_polcy = 1.2.3\n";
    assert_ok(smki_conf_parse((const uint8_t *)t, strlen(t), "typo.conf", &c2));
    assert_fails(smki_ca_init(&db2, "test", c2, &o, &rep), SMKI_E_USAGE,
                 "typo.conf:2: unknown setting 'device_polcy' under [env.test] (did you mean 'device_policy'?)");
    size_t n2 = 9;
    assert_ok(smki_ca_count(&db2, &n2));
    assert_int_equal(n2, 0);
    smki_conf_free(c2);
    smki_store_close(s2);
    open_store(f);
    assert_int_equal(cert_count(f), count);
}

static void test_ca_init_production_once_configured_is_a_separate_hierarchy(void **state)
{
    fixture *f = *state;
    smki_conf *pc = test_software_ca_conf(
        f->dir, "production",
        "[env.production]\norg_policy = 2.999.2.1\ndevice_policy = 2.999.2.2\nhw_type = 2.999.2.3\n"
        "dccki_policy = 2.999.2.4\nroot_name = PROD ROOT\noca_name = PROD OCA\ndca_name = PROD DCA\n");
    smki_ca_init_opts o = {NULL, f->dir, 0, NULL, NULL};
    smki_ca_init_report rep;
    assert_ok(smki_ca_init(&f->db, "production", pc, &o, &rep));
    assert_int_equal(rep.created, SMKI_CA_KIND_COUNT);
    smki_conf_free(pc);
    /* Its environment is recorded: issuing needs no configuration any more. */
    smki_env env;
    assert_ok(smki_ca_env_get(&f->db, "production", &env));
    assert_string_equal(env.org_policy, "2.999.2.1");
    assert_string_equal(env.dccki_policy, "2.999.2.4");
    smki_ca_issuer *is = NULL;
    assert_ok(smki_ca_issuer_open(&f->db, "production", SMKI_PROFILE_DEVICE, NULL, &is));
    smki_csr *csr = real_csr();
    smki_issue_req r = {csr, SMKI_PROFILE_UNKNOWN, -1, NULL, NULL, 0, 0};
    smki_cert *c = malloc(sizeof *c);
    assert_ok(smki_ca_build(is, &r, c));
    /* The two never cross: a production certificate fails the test profile and back. */
    smki_env test_env;
    assert_ok(smki_env_load("test", NULL, &test_env));
    smki_lint_report *rep2 = malloc(sizeof *rep2);
    assert_ok(smki_lint_der(c->der, c->der_len, &test_env, rep2));
    assert_false(smki_lint_is_clean(rep2));
    assert_non_null(smki_lint_find(rep2, "policies.oid"));
    assert_ok(smki_ca_build(f->dca, &r, c));
    assert_ok(smki_lint_der(c->der, c->der_len, &env, rep2));
    assert_false(smki_lint_is_clean(rep2));
    /* Different roots: the production root did not sign the test device CA. */
    smki_ca_record pr, td;
    assert_ok(smki_ca_get(&f->db, "production", SMKI_CA_ROOT, &pr));
    assert_ok(smki_ca_get(&f->db, "test", SMKI_CA_DCA, &td));
    X509 *proot = decode(&pr.cert), *tdca = decode(&td.cert);
    assert_int_not_equal(X509_verify(tdca, X509_get0_pubkey(proot)), 1);
    X509_free(proot);
    X509_free(tdca);
    free(rep2);
    free(c);
    smki_csr_free(csr);
    smki_ca_issuer_free(is);
}

static void test_env_text_round_trips(void **state)
{
    (void)state;
    smki_env e, back;
    assert_ok(smki_env_load("test", NULL, &e));
    snprintf(e.dccki_policy, sizeof e.dccki_policy, "2.999.7");
    snprintf(e.dccki_root_name, sizeof e.dccki_root_name, "A root name");
    e.years[SMKI_PROFILE_DCCKI_ICA] = 7;
    char text[2048];
    assert_ok(smki_env_to_conf(&e, text, sizeof text));
    smki_conf *c = NULL;
    assert_ok(smki_conf_parse((const uint8_t *)text, strlen(text), "t", &c));
    assert_ok(smki_env_load("test", c, &back));
    assert_memory_equal(&e, &back, sizeof e);
    smki_conf_free(c);
    char small[16];
    assert_fails(smki_env_to_conf(&e, small, sizeof small), SMKI_E_INTERNAL, NULL);
}

/* ---- Device certificates --------------------------------------------------------------------- */

static void test_issue_device_from_the_real_csr_matches_the_rtds_certificate(void **state)
{
    fixture *f = *state;
    smki_csr *csr = real_csr();
    smki_eui64_t eui;
    memcpy(eui.b, REAL_EUI, 8);
    smki_issue_req r = {csr, SMKI_PROFILE_UNKNOWN, -1, &eui, NULL, 0, 0};
    smki_cert *c = malloc(sizeof *c);
    assert_ok(smki_ca_issue(f->dca, &f->db, &r, c));
    assert_int_equal(c->profile, SMKI_PROFILE_DEVICE);
    assert_int_equal(c->usage, SMKI_USAGE_DS);
    assert_memory_equal(c->eui.b, REAL_EUI, 8);
    assert_memory_equal(c->ski, RTDS_DEVICE_SKI, 8);
    assert_lints_clean(c->der, c->der_len, "test", SMKI_PROFILE_DEVICE);

    /* The same extensions as the RTDS certificate, in the same order, of the same
     * criticality; the SAN (hwType and Device ID) and SKI octet for octet. */
    X509 *mine = decode(c), *rtds = load_cert(RTDS_DEVICE);
    assert_int_equal(X509_get_ext_count(mine), X509_get_ext_count(rtds));
    for (int i = 0; i < X509_get_ext_count(rtds); i++) {
        X509_EXTENSION *a = X509_get_ext(mine, i), *b = X509_get_ext(rtds, i);
        assert_int_equal(OBJ_cmp(X509_EXTENSION_get_object(a), X509_EXTENSION_get_object(b)), 0);
        assert_int_equal(X509_EXTENSION_get_critical(a), X509_EXTENSION_get_critical(b));
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(b));
        if (nid == NID_authority_key_identifier) continue; /* another CA */
        assert_int_equal(ASN1_STRING_cmp(X509_EXTENSION_get_data(a), X509_EXTENSION_get_data(b)), 0);
    }
    /* Empty subject, the key copied, the no-expiry notAfter, version 3. */
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(mine)), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(mine), X509_get0_pubkey(rtds)), 1);
    assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(mine)), V_ASN1_GENERALIZEDTIME);
    assert_memory_equal(ASN1_STRING_get0_data(X509_get0_notAfter(mine)), "99991231235959Z", 15);
    assert_int_equal(X509_get_version(mine), X509_VERSION_3);
    /* Signed by the device CA. */
    size_t ca_len;
    const uint8_t *ca_der = smki_ca_issuer_cert(f->dca, &ca_len);
    X509 *ca = NULL;
    assert_ok(smki_cert_load(ca_der, ca_len, &ca));
    assert_int_equal(X509_verify(mine, X509_get0_pubkey(ca)), 1);
    assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(mine), X509_get0_subject_key_id(ca)), 0);
    X509_free(ca);
    X509_free(mine);
    X509_free(rtds);
    free(c);
    smki_csr_free(csr);
}

static void test_issue_device_ka_and_a_made_csr(void **state)
{
    fixture *f = *state;
    static const uint8_t id[8] = {0x00, 0xdb, 0x12, 0x34, 0x56, 0x78, 0x90, 0x01};
    smki_csr *csr = make_csr(SMKI_KU_KEY_AGREEMENT, id, NULL);
    smki_issue_req r = {csr, SMKI_PROFILE_DEVICE, -1, NULL, NULL, 0, 0};
    smki_cert *c = malloc(sizeof *c);
    assert_ok(smki_ca_build(f->dca, &r, c));
    assert_int_equal(c->usage, SMKI_USAGE_KA);
    assert_lints_clean(c->der, c->der_len, "test", SMKI_PROFILE_DEVICE);
    X509 *x = decode(c);
    assert_int_equal(X509_get_key_usage(x), KU_KEY_AGREEMENT);
    X509_free(x);
    free(c);
    smki_csr_free(csr);
}

/* ---- Organisation certificates ------------------------------------------------------------- */

static void test_issue_organisation_ds_and_ka_shaped_like_the_keystore(void **state)
{
    fixture *f = *state;
    smki_eui64_t eui;
    assert_ok(smki_eui64_parse("90-B3-D5-1F-30-01-00-00", &eui));
    X509 *rtds = load_cert(RTDS_ORG);
    const unsigned char *want = NULL;
    size_t want_len = 0;
    assert_int_equal(X509_NAME_get0_der(X509_get_subject_name(rtds), &want, &want_len), 1);
    unsigned kus[2] = {SMKI_KU_DIGITAL_SIGNATURE, SMKI_KU_KEY_AGREEMENT};
    for (int i = 0; i < 2; i++) {
        /* The CSR's own subject is not copied. */
        smki_csr *csr = make_csr(kus[i], NULL, "Not Copied Ltd");
        smki_issue_req r = {csr, SMKI_PROFILE_UNKNOWN, SMKI_ROLE_SUPPLIER, &eui, "GITTESTSUPPLIER", 0, 0};
        smki_cert *c = malloc(sizeof *c);
        assert_ok(smki_ca_issue(f->oca, &f->db, &r, c));
        assert_int_equal(c->profile, SMKI_PROFILE_ORGANISATION);
        assert_int_equal(c->role, SMKI_ROLE_SUPPLIER);
        assert_lints_clean(c->der, c->der_len, "test", SMKI_PROFILE_ORGANISATION);
        X509 *mine = decode(c);
        /* Subject byte for byte: CN, OU (UTF8String), x500UniqueIdentifier 03 09 00 <EUI>. */
        const unsigned char *got = NULL;
        size_t got_len = 0;
        assert_int_equal(X509_NAME_get0_der(X509_get_subject_name(mine), &got, &got_len), 1);
        assert_int_equal(got_len, want_len);
        assert_memory_equal(got, want, want_len);
        /* Extensions: the keystore's order and criticality. */
        assert_int_equal(X509_get_ext_count(mine), X509_get_ext_count(rtds));
        for (int k = 0; k < X509_get_ext_count(rtds); k++) {
            X509_EXTENSION *a = X509_get_ext(mine, k), *b = X509_get_ext(rtds, k);
            assert_int_equal(OBJ_cmp(X509_EXTENSION_get_object(a), X509_EXTENSION_get_object(b)), 0);
            assert_int_equal(X509_EXTENSION_get_critical(a), X509_EXTENSION_get_critical(b));
        }
        /* Ten years, less a second, from notBefore; the key copied. */
        assert_int_equal(c->not_after, smki_ca_der_time_add_years_end(c->not_before, 10));
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(mine), csr->key), 1);
        X509_free(mine);
        free(c);
        smki_csr_free(csr);
    }
    X509_free(rtds);
}

static void test_issue_organisation_validity_spans_2050_in_generalized_time(void **state)
{
    fixture *f = *state;
    smki_eui64_t eui;
    assert_ok(smki_eui64_parse("90B3D51F30000007", &eui));
    smki_csr *csr = make_csr(SMKI_KU_DIGITAL_SIGNATURE, NULL, NULL);
    der_civil start = {2045, 6, 1, 12, 0, 0};
    smki_issue_req r = {csr, SMKI_PROFILE_ORGANISATION, SMKI_ROLE_XML_SIGN, &eui, NULL,
                        smki_ca_der_time_from_civil(&start), 0};
    smki_cert *c = malloc(sizeof *c);
    assert_ok(smki_ca_build(f->oca, &r, c));
    assert_lints_clean(c->der, c->der_len, "test", SMKI_PROFILE_ORGANISATION);
    X509 *x = decode(c);
    assert_int_equal(ASN1_STRING_type(X509_get0_notBefore(x)), V_ASN1_UTCTIME);
    assert_int_equal(ASN1_STRING_type(X509_get0_notAfter(x)), V_ASN1_GENERALIZEDTIME);
    /* xmlSign: the environment's long period (100 years), no CN. */
    assert_memory_equal(ASN1_STRING_get0_data(X509_get0_notAfter(x)), "21450601115959Z", 15);
    X509_free(x);
    free(c);
    smki_csr_free(csr);
}

/* ---- Serials ---------------------------------------------------------------------------------- */

static void test_serials_are_16_octets_positive_and_distinct(void **state)
{
    fixture *f = *state;
    enum { N = 1000 };
    smki_csr *csr = real_csr();
    smki_issue_req r = {csr, SMKI_PROFILE_DEVICE, -1, NULL, NULL, 0, 0};
    smki_cert *c = malloc(sizeof *c);
    uint8_t (*serials)[SMKI_SERIAL_LEN] = malloc(N * SMKI_SERIAL_LEN);
    for (int i = 0; i < N; i++) {
        assert_ok(smki_ca_build(f->dca, &r, c));
        memcpy(serials[i], c->serial, SMKI_SERIAL_LEN);
        /* In the DER: INTEGER of exactly 16 contents octets, positive, no 00 pad. */
        X509 *x = decode(c);
        const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
        assert_int_equal(ASN1_STRING_type(sn), V_ASN1_INTEGER);
        assert_int_equal(ASN1_STRING_length(sn), SMKI_SERIAL_LEN);
        assert_memory_equal(ASN1_STRING_get0_data(sn), c->serial, SMKI_SERIAL_LEN);
        assert_true(c->serial[0] >= 0x40 && c->serial[0] <= 0x7f);
        X509_free(x);
        for (int k = 0; k < i; k++) assert_memory_not_equal(serials[k], serials[i], SMKI_SERIAL_LEN);
    }
    free(serials);
    free(c);
    smki_csr_free(csr);
}

static void test_issue_refuses_a_duplicate_serial(void **state)
{
    fixture *f = *state;
    static const uint8_t fixed[SMKI_SERIAL_LEN] = {0x55, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    smki_ca_test_fix_serial(fixed);
    smki_csr *csr = real_csr();
    smki_issue_req r = {csr, SMKI_PROFILE_DEVICE, -1, NULL, NULL, 0, 0};
    smki_cert *c = malloc(sizeof *c);
    assert_ok(smki_ca_issue(f->dca, &f->db, &r, c));
    size_t count = cert_count(f);
    assert_fails(smki_ca_issue(f->dca, &f->db, &r, c), SMKI_E_EXISTS, "already used by this issuer");
    assert_int_equal(cert_count(f), count);
    /* The same serial from another issuer is another certificate. */
    smki_csr *org = make_csr(SMKI_KU_DIGITAL_SIGNATURE, NULL, NULL);
    smki_eui64_t eui;
    memcpy(eui.b, ORG_EUI, 8);
    smki_issue_req r2 = {org, SMKI_PROFILE_ORGANISATION, SMKI_ROLE_SUPPLIER, &eui, NULL, 0, 0};
    assert_ok(smki_ca_issue(f->oca, &f->db, &r2, c));
    assert_int_equal(cert_count(f), count + 1);
    /* And in a batch, the group holding the duplicate is not written. */
    smki_batch *b = NULL;
    assert_ok(smki_batch_begin(f->store, 0, NULL, NULL, &b));
    assert_ok(smki_ca_issue_batch(f->dca, &f->db, b, &r, c));
    assert_fails(smki_batch_end(b), SMKI_E_EXISTS, NULL);
    assert_int_equal(cert_count(f), count + 1);
    smki_ca_test_fix_serial(NULL);
    free(c);
    smki_csr_free(org);
    smki_csr_free(csr);
}

/* ---- Refusals ---------------------------------------------------------------------------------- */

static void test_issue_refusals_write_nothing(void **state)
{
    fixture *f = *state;
    size_t count = cert_count(f);
    smki_cert *c = malloc(sizeof *c);
    smki_eui64_t eui, other;
    memcpy(eui.b, ORG_EUI, 8);
    assert_ok(smki_eui64_parse("00DB1234567890A1", &other));
    smki_csr *dev = real_csr();
    smki_csr *org = make_csr(SMKI_KU_DIGITAL_SIGNATURE, NULL, NULL);
    smki_csr *org_ka = make_csr(SMKI_KU_KEY_AGREEMENT, NULL, NULL);

    /* Device: --eui that disagrees with the hardwareModuleName; a role; a CN. */
    smki_issue_req r = {dev, SMKI_PROFILE_UNKNOWN, -1, &other, NULL, 0, 0};
    assert_fails(smki_ca_issue(f->dca, &f->db, &r, c), SMKI_E_REFUSED, "EUI-64 mismatch");
    r = (smki_issue_req){dev, SMKI_PROFILE_UNKNOWN, SMKI_ROLE_SUPPLIER, NULL, NULL, 0, 0};
    assert_fails(smki_ca_issue(f->dca, &f->db, &r, c), SMKI_E_USAGE, "no Remote Party Role");
    r = (smki_issue_req){dev, SMKI_PROFILE_UNKNOWN, -1, NULL, "meter", 0, 0};
    assert_fails(smki_ca_issue(f->dca, &f->db, &r, c), SMKI_E_USAGE, "takes no CN");
    /* A device CSR at the organisation CA and back. */
    assert_fails(smki_ca_issue(f->oca, &f->db, &r, c), SMKI_E_USAGE, "does not issue device certificates");
    r = (smki_issue_req){org, SMKI_PROFILE_ORGANISATION, SMKI_ROLE_SUPPLIER, &eui, NULL, 0, 0};
    assert_fails(smki_ca_issue(f->dca, &f->db, &r, c), SMKI_E_USAGE, "does not issue organisation");
    /* Organisation: no role, no EUI-64; a role of CA certificates; KA for xmlSign;
     * a device CSR; a CN that is not text. */
    r = (smki_issue_req){org, SMKI_PROFILE_UNKNOWN, -1, &eui, NULL, 0, 0};
    assert_fails(smki_ca_issue(f->oca, &f->db, &r, c), SMKI_E_USAGE, "--role, --eui");
    r = (smki_issue_req){org, SMKI_PROFILE_UNKNOWN, SMKI_ROLE_SUPPLIER, NULL, NULL, 0, 0};
    assert_fails(smki_ca_issue(f->oca, &f->db, &r, c), SMKI_E_USAGE, "--role, --eui");
    r = (smki_issue_req){org, SMKI_PROFILE_UNKNOWN, SMKI_ROLE_ISSUING_AUTHORITY, &eui, NULL, 0, 0};
    assert_fails(smki_ca_issue(f->oca, &f->db, &r, c), SMKI_E_REFUSED, "not a Remote Party Role of organisation");
    r = (smki_issue_req){org_ka, SMKI_PROFILE_UNKNOWN, SMKI_ROLE_XML_SIGN, &eui, NULL, 0, 0};
    assert_fails(smki_ca_issue(f->oca, &f->db, &r, c), SMKI_E_REFUSED, "digitalSignature only");
    r = (smki_issue_req){dev, SMKI_PROFILE_ORGANISATION, SMKI_ROLE_SUPPLIER, &eui, NULL, 0, 0};
    assert_fails(smki_ca_issue(f->oca, &f->db, &r, c), SMKI_E_REFUSED, "hardwareModuleName");
    r = (smki_issue_req){org, SMKI_PROFILE_UNKNOWN, SMKI_ROLE_SUPPLIER, &eui, "bad\nname", 0, 0};
    assert_fails(smki_ca_issue(f->oca, &f->db, &r, c), SMKI_E_USAGE, "without control characters");
    r = (smki_issue_req){org, SMKI_PROFILE_UNKNOWN, SMKI_ROLE_SUPPLIER, &eui,
                         "0123456789012345678901234567890123456789012345678901234567890123456789", 0, 0};
    assert_fails(smki_ca_issue(f->oca, &f->db, &r, c), SMKI_E_USAGE, "1 to 64 characters");
    /* After its CA has expired. */
    der_civil late = {2099, 1, 1, 0, 0, 0};
    r = (smki_issue_req){org, SMKI_PROFILE_UNKNOWN, SMKI_ROLE_SUPPLIER, &eui, NULL, smki_ca_der_time_from_civil(&late), 0};
    assert_fails(smki_ca_issue(f->oca, &f->db, &r, c), SMKI_E_REFUSED, "has expired");
    assert_int_equal(cert_count(f), count);

    /* What the intake refuses never reaches the CA: P-384, both usages, bad PoP. */
    uint8_t der[2048];
    smki_csr *bad = NULL;
    EVP_PKEY *k384 = new_key("P-384");
    size_t n = csr_der(k384, SMKI_KU_DIGITAL_SIGNATURE, NULL, NULL, der, sizeof der);
    assert_fails(smki_csr_parse(der, n, &bad), SMKI_E_REFUSED, NULL);
    EVP_PKEY_free(k384);
    EVP_PKEY *k = new_key("P-256");
    n = csr_der(k, SMKI_KU_DIGITAL_SIGNATURE | SMKI_KU_KEY_AGREEMENT, NULL, NULL, der, sizeof der);
    assert_fails(smki_csr_parse(der, n, &bad), SMKI_E_REFUSED, NULL);
    n = csr_der(k, SMKI_KU_DIGITAL_SIGNATURE, NULL, NULL, der, sizeof der);
    der[n - 5] ^= 0x01; /* inside s */
    assert_fails(smki_csr_parse(der, n, &bad), SMKI_E_VERIFY, "proof of possession");
    EVP_PKEY_free(k);

    smki_csr_free(dev);
    smki_csr_free(org);
    smki_csr_free(org_ka);
    free(c);
}

static void test_issue_before_init_is_refused(void **state)
{
    fixture *f = *state;
    smki_ca_issuer *is = NULL;
    assert_fails(smki_ca_issuer_open(&f->db, "production", SMKI_PROFILE_DEVICE, NULL, &is), SMKI_E_NOTFOUND,
                 "run 'smki ca init --env production' first");
    assert_null(is);
    /* CA certificates come only from the ceremony (DCCKI TLS ones now issue: test_dccki.c). */
    assert_fails(smki_ca_issuer_open(&f->db, "test", SMKI_PROFILE_SMKI_OCA, NULL, &is), SMKI_E_USAGE,
                 "through a ceremony");
    assert_null(is);
}

static void test_lint_gate_names_the_rules_and_releases_nothing(void **state)
{
    (void)state;
    /* The keystore's loadController certificate has no AKI: the gate refuses it. */
    X509 *x = load_cert(RTDS_NO_AKI);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    smki_env env;
    assert_ok(smki_env_load("test", NULL, &env));
    smki_lint_report *rep = malloc(sizeof *rep);
    assert_fails(smki_ca_lint_release(der, (size_t)n, &env, SMKI_PROFILE_ORGANISATION, rep), SMKI_E_INTERNAL,
                 "aki.missing");
    /* Clean, but not of the profile asked for. */
    OPENSSL_free(der);
    X509_free(x);
    x = load_cert(RTDS_ORG);
    der = NULL;
    n = i2d_X509(x, &der);
    assert_fails(smki_ca_lint_release(der, (size_t)n, &env, SMKI_PROFILE_DEVICE, rep), SMKI_E_INTERNAL,
                 "another profile");
    OPENSSL_free(der);
    X509_free(x);
    free(rep);
}

static void test_issuer_refuses_a_key_that_is_not_its_certificates(void **state)
{
    fixture *f = *state;
    smki_ca_record r;
    assert_ok(smki_ca_get(&f->db, "test", SMKI_CA_OCA, &r));
    char ref[1200];
    snprintf(ref, sizeof ref, "file:%s/test-smki_dca.pem", f->dir);
    smki_key *k = NULL;
    assert_ok(smki_key_open(ref, NULL, &k));
    smki_env env;
    assert_ok(smki_ca_env_get(&f->db, "test", &env));
    smki_ca_issuer *is = NULL;
    assert_fails(smki_ca_issuer_new(&env, r.cert.der, r.cert.der_len, k, &is), SMKI_E_REFUSED,
                 "is not the key of its certificate");
    assert_null(is);
}

/* ---- The store ---------------------------------------------------------------------------------- */

typedef struct {
    size_t n;
    smki_cert last;
} collect;

static int collect_fn(const smki_cert *c, void *arg)
{
    collect *k = arg;
    k->n++;
    k->last = *c;
    return 0;
}

static size_t find_n(fixture *f, const smki_ca_query *q, smki_cert *last)
{
    collect *k = calloc(1, sizeof *k);
    assert_ok(smki_ca_find(&f->db, q, collect_fn, k));
    size_t n = k->n;
    if (last && n) *last = k->last;
    free(k);
    return n;
}

/* A device certificate (the real CSR), and an organisation's DS and KA certificates
 * (a Network Operator, EUI-64 ORG_EUI, in *eui). */
static void issue_three(fixture *f, smki_cert *dev, smki_cert *ds, smki_cert *ka, smki_eui64_t *eui)
{
    smki_csr *csr = real_csr();
    smki_issue_req r = {csr, SMKI_PROFILE_UNKNOWN, -1, NULL, NULL, 0, 0};
    assert_ok(smki_ca_issue(f->dca, &f->db, &r, dev));
    smki_csr_free(csr);
    memcpy(eui->b, ORG_EUI, 8);
    csr = make_csr(SMKI_KU_DIGITAL_SIGNATURE, NULL, NULL);
    r = (smki_issue_req){csr, SMKI_PROFILE_UNKNOWN, SMKI_ROLE_NETWORK_OPERATOR, eui, NULL, 0, 0};
    assert_ok(smki_ca_issue(f->oca, &f->db, &r, ds));
    smki_csr_free(csr);
    csr = make_csr(SMKI_KU_KEY_AGREEMENT, NULL, NULL);
    r.csr = csr;
    assert_ok(smki_ca_issue(f->oca, &f->db, &r, ka));
    smki_csr_free(csr);
}

static void test_store_finds_records_by_every_index(void **state)
{
    fixture *f = *state;
    smki_cert *dev = malloc(sizeof *dev), *ds = malloc(sizeof *ds), *ka = malloc(sizeof *ka),
              *got = malloc(sizeof *got);
    smki_eui64_t eui;
    issue_three(f, dev, ds, ka, &eui);

    /* Issuer and serial. */
    assert_ok(smki_ca_cert_get(&f->db, ds->issuer_ski, ds->serial, got));
    assert_int_equal(got->der_len, ds->der_len);
    assert_memory_equal(got->der, ds->der, ds->der_len);
    assert_int_equal(got->role, SMKI_ROLE_NETWORK_OPERATOR);
    assert_int_equal(got->usage, SMKI_USAGE_DS);
    assert_int_equal(got->status, SMKI_STATUS_IN_USE);
    assert_int_equal(got->not_after, ds->not_after);
    assert_string_equal(got->env, "test");
    assert_fails(smki_ca_cert_get(&f->db, dev->issuer_ski, ds->serial, got), SMKI_E_NOTFOUND, NULL);

    smki_ca_query q = SMKI_CA_QUERY_ALL;
    q.serial = ds->serial;
    assert_int_equal(find_n(f, &q, got), 1);
    assert_memory_equal(got->der, ds->der, ds->der_len);
    q = (smki_ca_query)SMKI_CA_QUERY_ALL;
    q.eui = &eui;
    assert_int_equal(find_n(f, &q, NULL), 2);
    q.usage = SMKI_USAGE_KA;
    assert_int_equal(find_n(f, &q, got), 1);
    assert_memory_equal(got->serial, ka->serial, SMKI_SERIAL_LEN);
    q = (smki_ca_query)SMKI_CA_QUERY_ALL;
    q.eui = &dev->eui;
    assert_int_equal(find_n(f, &q, got), 1);
    assert_int_equal(got->profile, SMKI_PROFILE_DEVICE);
    q = (smki_ca_query)SMKI_CA_QUERY_ALL;
    q.ski = ka->ski;
    assert_int_equal(find_n(f, &q, NULL), 1);
    q = (smki_ca_query)SMKI_CA_QUERY_ALL;
    q.role = SMKI_ROLE_NETWORK_OPERATOR;
    assert_int_equal(find_n(f, &q, NULL), 2);
    q.role = SMKI_ROLE_ISSUING_AUTHORITY; /* the OCA and the DCA */
    assert_int_equal(find_n(f, &q, NULL), 2);
    q = (smki_ca_query)SMKI_CA_QUERY_ALL;
    q.usage = SMKI_USAGE_DS;
    assert_int_equal(find_n(f, &q, NULL), 2); /* the device's and the organisation's */
    q.usage = 0;
    assert_int_equal(find_n(f, &q, NULL), SMKI_CA_KIND_COUNT);
    q = (smki_ca_query)SMKI_CA_QUERY_ALL;
    q.env = "test";
    assert_int_equal(find_n(f, &q, NULL), SMKI_CA_KIND_COUNT + 3);
    q.env = "tes"; /* a prefix is not a name */
    assert_int_equal(find_n(f, &q, NULL), 0);
    q = (smki_ca_query)SMKI_CA_QUERY_ALL;
    q.status = SMKI_STATUS_IN_USE;
    assert_int_equal(find_n(f, &q, NULL), SMKI_CA_KIND_COUNT + 3);
    q.status = SMKI_STATUS_REVOKED;
    assert_int_equal(find_n(f, &q, NULL), 0);
    q = (smki_ca_query)SMKI_CA_QUERY_ALL;
    q.issuer_ski = ds->issuer_ski;
    assert_int_equal(find_n(f, &q, NULL), 2);
    q = (smki_ca_query)SMKI_CA_QUERY_ALL;
    q.profile = SMKI_PROFILE_DEVICE;
    assert_int_equal(find_n(f, &q, NULL), 1);
    assert_int_equal(find_n(f, &(smki_ca_query)SMKI_CA_QUERY_ALL, NULL), cert_count(f));
    free(dev);
    free(ds);
    free(ka);
    free(got);
}


typedef struct {
    size_t n, stop_after;
    uint8_t serials[8][SMKI_SERIAL_LEN]; /* the first eight, in the order visited */
} collect_some;

static int collect_some_fn(const smki_cert *c, void *arg)
{
    collect_some *k = arg;
    if (k->n < 8) memcpy(k->serials[k->n], c->serial, SMKI_SERIAL_LEN);
    k->n++;
    return k->stop_after && k->n == k->stop_after;
}

#define MANY_N 10

static void test_find_many_answers_each_query_as_find_does(void **state)
{
    fixture *f = *state;
    smki_cert *dev = malloc(sizeof *dev), *ds = malloc(sizeof *ds), *ka = malloc(sizeof *ka);
    smki_eui64_t eui, nobody = {{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77}};
    issue_three(f, dev, ds, ka, &eui);

    smki_ca_query qs[MANY_N];
    for (int i = 0; i < MANY_N; i++) qs[i] = (smki_ca_query)SMKI_CA_QUERY_ALL;
    qs[0].eui = &eui;
    qs[1].eui = &eui, qs[1].usage = SMKI_USAGE_KA;
    qs[2].eui = &dev->eui;
    qs[3].ski = ka->ski;
    qs[4].serial = ds->serial;
    qs[5].role = SMKI_ROLE_NETWORK_OPERATOR;
    qs[6].eui = &nobody;
    qs[7].env = "test";
    qs[8].eui = &eui; /* stops after its first */
    qs[9].ski = ds->ski, qs[9].eui = &eui;
    size_t expect[MANY_N] = {2, 1, 1, 1, 1, 2, 0, SMKI_CA_KIND_COUNT + 3, 1, 1};
    collect_some *many = calloc(MANY_N, sizeof *many), *one = calloc(1, sizeof *one);
    void *args[MANY_N];
    for (int i = 0; i < MANY_N; i++) args[i] = &many[i];
    many[8].stop_after = 1;
    assert_ok(smki_ca_find_many(&f->db, qs, MANY_N, collect_some_fn, args));
    for (int i = 0; i < MANY_N; i++) {
        *one = (collect_some){.stop_after = many[i].stop_after};
        assert_ok(smki_ca_find(&f->db, &qs[i], collect_some_fn, one));
        assert_int_equal(many[i].n, expect[i]);
        assert_int_equal(one->n, expect[i]);
        assert_memory_equal(many[i].serials, one->serials, sizeof one->serials);
    }
    assert_memory_equal(many[1].serials[0], ka->serial, SMKI_SERIAL_LEN);
    assert_memory_equal(many[9].serials[0], ds->serial, SMKI_SERIAL_LEN);
    /* none asked: nothing read; a missing argument: refused */
    assert_ok(smki_ca_find_many(&f->db, qs, 0, collect_some_fn, args));
    assert_fails(smki_ca_find_many(&f->db, NULL, 2, collect_some_fn, args), SMKI_E_INTERNAL, "missing argument");
    free(many);
    free(one);
    free(dev);
    free(ds);
    free(ka);
}

static void test_store_record_decoding_refuses_damage(void **state)
{
    fixture *f = *state;
    smki_ca_record r;
    assert_ok(smki_ca_get(&f->db, "test", SMKI_CA_ROOT, &r));
    static uint8_t rec[4096];
    size_t len;
    assert_ok(smki_ca_cert_encode(&r.cert, rec, sizeof rec, &len));
    uint8_t key[CA_CERT_KEY_LEN];
    smki_ca_cert_key(&r.cert, key);
    smki_cert *back = malloc(sizeof *back);
    assert_ok(smki_ca_cert_decode(key, rec, len, back));
    assert_memory_equal(back, &r.cert, offsetof(smki_cert, der) + r.cert.der_len);
    for (size_t cut = 0; cut < len; cut += 7) assert_fails(smki_ca_cert_decode(key, rec, cut, back), SMKI_E_CORRUPT, NULL);
    rec[0] = 9;
    assert_fails(smki_ca_cert_decode(key, rec, len, back), SMKI_E_CORRUPT, "version 9");
    free(back);
}

/* ---- Keys generated in a token ------------------------------------------------------------------ */

#define PIN "ca-user-1234"

static void test_ca_init_generates_keys_in_the_token_and_refuses_a_taken_label(void **state)
{
    (void)state;
    char dir[1024], hsm[1100], store[1100];
    snprintf(dir, sizeof dir, "%s", test_tmpdir("ca-token"));
    snprintf(hsm, sizeof hsm, "%s/hsm", dir);
    snprintf(store, sizeof store, "%s/store", dir);
    assert_ok(smki_softhsm_prepare(hsm));
    smki_hsm_opts opts = {.pin = PIN};
    smki_store *s = NULL;
    smki_ca_db db;
    assert_ok(smki_store_open(store, NULL, &s));
    assert_ok(smki_ca_db_open(s, &db));
    smki_ca_init_opts o = {&opts, dir, 0, NULL, NULL};
    smki_ca_init_report rep;

    /* No token yet: refused, saying so, nothing written. */
    assert_fails(smki_ca_init(&db, "test", NULL, &o, &rep), SMKI_E_NOTFOUND, "smki hsm init --label smki-test");
    assert_true(rep.token_missing);
    int created;
    smki_token_info info;
    assert_ok(smki_token_init(NULL, "smki-test", "ca-so-12345678", PIN, &created, &info));

    /* A key already holding the OCA's label, with no OCA record: refused before any
     * key is made. */
    char uri[SMKI_KEY_URI_MAX];
    assert_ok(smki_key_generate(&opts, "smki-test", "test-smki-oca", SMKI_USAGE_DS, uri));
    /* Held open to the end: in hsm/, freeing the last libp11 key finalises the module
     * that the raw PKCS#11 calls (key list, generate) share, and they then fail with
     * CKR_CRYPTOKI_NOT_INITIALIZED. One command per process never meets it; this test
     * runs several ceremonies in one. */
    smki_key *pin_module = NULL;
    assert_ok(smki_key_open(uri, &opts, &pin_module));
    assert_fails(smki_ca_init(&db, "test", NULL, &o, &rep), SMKI_E_EXISTS, "'test-smki-oca' is already on token");
    smki_key_info *keys = NULL;
    size_t n = 0;
    assert_ok(smki_key_list(&opts, "smki-test", &keys, &n));
    assert_int_equal(n, 1);
    free(keys);
    size_t count = 9;
    assert_ok(smki_ca_count(&db, &count));
    assert_int_equal(count, 0);

    /* Another label for it, and the ceremony runs: five keys in the token. */
    const char *t = "[ca.test]\nsmki_oca_key = test-oca-2\n";
    smki_conf *conf = NULL;
    assert_ok(smki_conf_parse((const uint8_t *)t, strlen(t), "t", &conf));
    assert_ok(smki_ca_init(&db, "test", conf, &o, &rep));
    assert_int_equal(rep.created, SMKI_CA_KIND_COUNT);
    assert_ok(smki_key_list(&opts, "smki-test", &keys, &n));
    assert_int_equal(n, 1 + SMKI_CA_KIND_COUNT);
    free(keys);
    for (size_t i = 0; i < rep.n; i++) assert_memory_equal(rep.items[i].key_ref, "pkcs11:", 7);
    /* Issue from it with the token key. */
    smki_ca_issuer *is = NULL;
    assert_ok(smki_ca_issuer_open(&db, "test", SMKI_PROFILE_DEVICE, &opts, &is));
    smki_csr *csr = real_csr();
    smki_issue_req r = {csr, SMKI_PROFILE_UNKNOWN, -1, NULL, NULL, 0, 0};
    smki_cert *c = malloc(sizeof *c);
    assert_ok(smki_ca_issue(is, &db, &r, c));
    assert_lints_clean(c->der, c->der_len, "test", SMKI_PROFILE_DEVICE);
    /* Again: exists, nothing made. */
    assert_ok(smki_ca_init(&db, "test", conf, &o, &rep));
    assert_int_equal(rep.created, 0);
    assert_ok(smki_key_list(&opts, "smki-test", &keys, &n));
    assert_int_equal(n, 1 + SMKI_CA_KIND_COUNT);
    free(keys);
    free(c);
    smki_csr_free(csr);
    smki_ca_issuer_free(is);
    smki_conf_free(conf);
    smki_key_free(pin_module);
    smki_store_close(s);
}

/* ---- Release by construction (lint_fast.c) against the full linter ------------------------- */

/* The full linter's verdict on a device certificate: clean and of the device profile. */
static int full_verdict(const smki_ca_issuer *is, const uint8_t *der, size_t len, smki_lint_report *rep)
{
    assert_ok(smki_lint_der(der, len, smki_ca_issuer_env(is), rep));
    return smki_lint_is_clean(rep) && rep->profile == SMKI_PROFILE_DEVICE;
}

static smki_csr *device_csr(unsigned i, unsigned ku)
{
    uint8_t id[8] = {0x00, 0xdb, 0x12, 0x34, 0x00, 0x00, (uint8_t)(i >> 8), (uint8_t)i};
    return make_csr(ku, id, NULL);
}

static void test_fast_release_agrees_with_the_full_linter_on_issued_certificates(void **state)
{
    fixture *f = *state;
    enum { N = 60 };
    smki_cert *c = malloc(sizeof *c);
    smki_lint_report *rep = malloc(sizeof *rep);
    for (unsigned i = 0; i < N; i++) {
        unsigned ku = i % 2 ? SMKI_KU_KEY_AGREEMENT : SMKI_KU_DIGITAL_SIGNATURE;
        smki_csr *csr = device_csr(i, ku);
        smki_issue_req r = {csr, SMKI_PROFILE_DEVICE, -1, NULL, NULL, 0, 0};
        assert_ok(smki_ca_build(f->dca, &r, c));
        /* released by the template check, which the full linter agrees with */
        assert_int_equal(smki_ca_last_release_was_fast(), 1);
        const char *why = "unset";
        assert_int_equal(smki_ca_fast_check(smki_ca_issuer_fast_ref(f->dca, csr->usage), c->der, c->der_len, csr->point,
                                       csr->hw_serial.b, &why),
                         1);
        assert_null(why);
        assert_int_equal(full_verdict(f->dca, c->der, c->der_len, rep), 1);
        assert_int_equal(rep->key_usage, ku);
        /* the other usage's template does not prove it */
        assert_int_equal(smki_ca_fast_check(smki_ca_issuer_fast_ref(f->dca, csr->usage == SMKI_USAGE_DS ? SMKI_USAGE_KA
                                                                                             : SMKI_USAGE_DS),
                                       c->der, c->der_len, csr->point, csr->hw_serial.b, &why),
                         0);
        assert_non_null(why);
        smki_csr_free(csr);
    }
    free(rep);
    free(c);
}

/* Every octet of issued certificates changed three ways, the certificate cut short and
 * lengthened: whatever the template check proves, the full linter finds clean; and
 * whatever the full linter refuses, the template check does not prove. */
static void test_fast_release_is_never_less_strict_than_the_full_linter(void **state)
{
    fixture *f = *state;
    smki_cert *c = malloc(sizeof *c);
    smki_lint_report *rep = malloc(sizeof *rep);
    uint8_t mut[SMKI_CERT_DER_MAX + 8];
    size_t proven = 0, both_refuse = 0, only_full_accepts = 0;
    for (unsigned i = 0; i < 2; i++) {
        smki_csr *csr = device_csr(i, i ? SMKI_KU_KEY_AGREEMENT : SMKI_KU_DIGITAL_SIGNATURE);
        smki_issue_req r = {csr, SMKI_PROFILE_DEVICE, -1, NULL, NULL, 0, 0};
        assert_ok(smki_ca_build(f->dca, &r, c));
        const ca_fast_ref *ref = smki_ca_issuer_fast_ref(f->dca, csr->usage);
        static const uint8_t FLIPS[] = {0x01, 0x80, 0xff};
        for (size_t at = 0; at < c->der_len; at++)
            for (size_t k = 0; k < sizeof FLIPS; k++) {
                memcpy(mut, c->der, c->der_len);
                mut[at] ^= FLIPS[k];
                int fast = smki_ca_fast_check(ref, mut, c->der_len, csr->point, csr->hw_serial.b, NULL);
                int full = full_verdict(f->dca, mut, c->der_len, rep);
                if (fast && !full) print_error("proven but not clean: octet %zu ^ 0x%02x\n", at, FLIPS[k]);
                assert_true(!fast || full);
                proven += (size_t)fast;
                both_refuse += (size_t)(!fast && !full);
                only_full_accepts += (size_t)(!fast && full);
            }
        for (size_t cut = 1; cut < c->der_len; cut += 7)
            assert_int_equal(smki_ca_fast_check(ref, c->der, c->der_len - cut, csr->point, csr->hw_serial.b, NULL), 0);
        memcpy(mut, c->der, c->der_len);
        mut[c->der_len] = 0x00;
        assert_int_equal(smki_ca_fast_check(ref, mut, c->der_len + 1, csr->point, csr->hw_serial.b, NULL), 0);
        smki_csr_free(csr);
    }
    /* Changes inside the slots that stay valid (serial, time, signature octets) are
     * proven; most changes are refused by both; some that still lint (another
     * policy-free octet, say) are only not proven, and would go to the full linter. */
    print_message("  proven %zu, refused by both %zu, not proven but clean %zu\n", proven, both_refuse,
                  only_full_accepts);
    assert_true(proven > 0 && both_refuse > 0);
    free(rep);
    free(c);
}

/* One crafted violation per slot, and one outside them. */
static void test_fast_release_catches_crafted_violations_as_the_full_linter_does(void **state)
{
    fixture *f = *state;
    smki_cert *c = malloc(sizeof *c);
    smki_lint_report *rep = malloc(sizeof *rep);
    smki_csr *csr = device_csr(7, SMKI_KU_DIGITAL_SIGNATURE);
    smki_issue_req r = {csr, SMKI_PROFILE_DEVICE, -1, NULL, NULL, 0, 0};
    assert_ok(smki_ca_build(f->dca, &r, c));
    const ca_fast_ref *ref = smki_ca_issuer_fast_ref(f->dca, SMKI_USAGE_DS);
    assert_non_null(ref);
    assert_true(ref->ready);
    uint8_t mut[SMKI_CERT_DER_MAX];
    const char *why;
    struct {
        ca_slot_kind slot;
        size_t at;
        uint8_t value;
        const char *fast_says, *rule; /* rule NULL: the full linter accepts it */
    } cases[] = {
        {CA_SLOT_SERIAL, 0, 0x80, "serial", "serial.positive"},   /* negative */
        {CA_SLOT_SERIAL, 0, 0x00, "serial", "der.strict"},        /* a 00 that is not needed */
        {CA_SLOT_NOT_BEFORE, 2, '1', "notBefore", "validity.encoding"}, /* month 1x */
        {CA_SLOT_NOT_BEFORE, 12, 'X', "notBefore", "validity.encoding"},
        {CA_SLOT_SKI, 3, 0x00, "SKI", "ski.method"},
        {CA_SLOT_POINT, 64, 0x00, "key", "key.point"},           /* off the curve (or another key) */
        {CA_SLOT_HW_SERIAL, 7, 0x00, "hwSerialNum", NULL},       /* another device's ID lints clean */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(mut, c->der, c->der_len);
        size_t at = ref->slots[cases[i].slot].off + cases[i].at;
        if (cases[i].slot == CA_SLOT_SERIAL && cases[i].value == 0x00) mut[at + 1] &= 0x7f; /* so the 00 is not needed */
        if (cases[i].slot == CA_SLOT_NOT_BEFORE && cases[i].at == 2) mut[at - 1] = '1', mut[at] = '3';
        else if (mut[at] == cases[i].value) mut[at] ^= 0x01;
        else mut[at] = cases[i].value;
        why = NULL;
        assert_int_equal(smki_ca_fast_check(ref, mut, c->der_len, csr->point, csr->hw_serial.b, &why), 0);
        assert_non_null(strstr(why, cases[i].fast_says));
        int clean = full_verdict(f->dca, mut, c->der_len, rep);
        if (cases[i].rule) {
            if (clean || !smki_lint_find(rep, cases[i].rule))
                for (size_t k = 0; k < rep->count; k++)
                    print_error("case %zu: %s %s\n", i, rep->findings[k].rule, rep->findings[k].message);
            assert_false(clean);
            assert_non_null(smki_lint_find(rep, cases[i].rule));
        } else {
            assert_true(clean);
        }
    }
    /* the policy OID's last octet (outside the slots) */
    memcpy(mut, c->der, c->der_len);
    size_t pol = 0;
    const smki_env *env = smki_ca_issuer_env(f->dca);
    uint8_t oid[64];
    size_t oid_len = 0;
    assert_ok(smki_ca_der_oid_from_text(env->device_policy, oid, sizeof oid, &oid_len));
    for (size_t k = 0; k + oid_len <= c->der_len; k++)
        if (memcmp(mut + k, oid, oid_len) == 0) pol = k + oid_len - 1;
    assert_true(pol > 0);
    mut[pol] ^= 0x01;
    assert_int_equal(smki_ca_fast_check(ref, mut, c->der_len, csr->point, csr->hw_serial.b, &why), 0);
    assert_non_null(strstr(why, "outside the slots"));
    assert_false(full_verdict(f->dca, mut, c->der_len, rep));
    /* a signature value that is not DER: r with a 00 it does not need */
    memcpy(mut, c->der, c->der_len);
    size_t bs = ref->tbs_end + sizeof SMKI_CA_ALG_ECDSA_SHA256; /* BIT STRING */
    size_t seq = bs + 3, rlen_at = seq + 3;
    uint8_t rlen = mut[rlen_at];
    /* rebuild: 30 L+1 02 rlen+1 00 r... 02 s... */
    uint8_t sigv[80];
    size_t n = 0;
    sigv[n++] = 0x30;
    sigv[n++] = (uint8_t)(mut[seq + 1] + 1);
    sigv[n++] = 0x02;
    sigv[n++] = (uint8_t)(rlen + 1);
    sigv[n++] = 0x00;
    memcpy(sigv + n, mut + rlen_at + 1, (size_t)mut[seq + 1] - 2); /* r, then s's TLV */
    n += (size_t)mut[seq + 1] - 2;
    size_t mlen = bs;
    mut[mlen++] = 0x03;
    mut[mlen++] = (uint8_t)(n + 1);
    mut[mlen++] = 0x00;
    memcpy(mut + mlen, sigv, n);
    mlen += n;
    mut[2] = (uint8_t)((mlen - 4) >> 8);
    mut[3] = (uint8_t)(mlen - 4);
    assert_int_equal(smki_ca_fast_check(ref, mut, mlen, csr->point, csr->hw_serial.b, &why), 0);
    assert_non_null(strstr(why, "signature"));
    assert_ok(smki_lint_der(mut, mlen, env, rep));
    assert_non_null(smki_lint_find(rep, "sig.encoding"));
    /* and the unchanged certificate still passes both */
    assert_int_equal(smki_ca_fast_check(ref, c->der, c->der_len, csr->point, csr->hw_serial.b, NULL), 1);
    assert_true(full_verdict(f->dca, c->der, c->der_len, rep));
    /* another CSR's key or Device ID: not this certificate */
    smki_csr *other = device_csr(8, SMKI_KU_DIGITAL_SIGNATURE);
    assert_int_equal(smki_ca_fast_check(ref, c->der, c->der_len, other->point, csr->hw_serial.b, &why), 0);
    assert_non_null(strstr(why, "key"));
    assert_int_equal(smki_ca_fast_check(ref, c->der, c->der_len, csr->point, other->hw_serial.b, &why), 0);
    assert_non_null(strstr(why, "hwSerialNum"));
    assert_int_equal(smki_ca_fast_check(NULL, c->der, c->der_len, csr->point, csr->hw_serial.b, &why), 0);
    assert_non_null(strstr(why, "template"));
    smki_csr_free(other);
    smki_csr_free(csr);
    free(rep);
    free(c);
}

/* A notBefore from 2050 is GeneralizedTime: not the template's shape, so the full
 * linter releases it; organisation certificates always go through the full linter. */
static void test_release_falls_back_to_the_full_linter(void **state)
{
    fixture *f = *state;
    smki_cert *c = malloc(sizeof *c);
    smki_csr *csr = device_csr(9, SMKI_KU_KEY_AGREEMENT);
    smki_issue_req r = {csr, SMKI_PROFILE_DEVICE, -1, NULL, NULL, 2524608000 /* 2050-01-01 */, 0};
    assert_ok(smki_ca_build(f->dca, &r, c));
    assert_int_equal(smki_ca_last_release_was_fast(), 0);
    assert_lints_clean(c->der, c->der_len, "test", SMKI_PROFILE_DEVICE);
    r.not_before = 0;
    assert_ok(smki_ca_build(f->dca, &r, c));
    assert_int_equal(smki_ca_last_release_was_fast(), 1);
    smki_csr *org = make_csr(SMKI_KU_DIGITAL_SIGNATURE, NULL, NULL);
    smki_eui64_t eui;
    memcpy(eui.b, ORG_EUI, 8);
    smki_issue_req r2 = {org, SMKI_PROFILE_ORGANISATION, SMKI_ROLE_SUPPLIER, &eui, NULL, 0, 0};
    assert_ok(smki_ca_build(f->oca, &r2, c));
    assert_int_equal(smki_ca_last_release_was_fast(), 0);
    assert_null(smki_ca_issuer_fast_ref(f->oca, SMKI_USAGE_DS));
    /* a template is learned only from a device certificate */
    ca_fast_ref *ref = malloc(sizeof *ref);
    assert_fails(smki_ca_fast_learn(ref, c->der, c->der_len), SMKI_E_INTERNAL, "template");
    assert_fails(smki_ca_fast_learn(ref, c->der, 40), SMKI_E_INPUT, NULL);
    assert_false(ref->ready);
    free(ref);
    smki_csr_free(org);
    smki_csr_free(csr);
    free(c);
}

static void test_digests_fetched_once_match_the_standard_vectors(void **state)
{
    (void)state;
    static const uint8_t SHA256_ABC[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                           0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                           0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    static const uint8_t SHA1_ABC[20] = {0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e,
                                         0x25, 0x71, 0x78, 0x50, 0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d};
    uint8_t out[32];
    assert_ok(smki_ca_sha256((const uint8_t *)"abc", 3, out));
    assert_memory_equal(out, SHA256_ABC, 32);
    /* SHA-1 is fetched once in base for key identifiers: 0100b and its low 60 bits */
    assert_ok(smki_keyid_method2((const uint8_t *)"abc", 3, out));
    assert_int_equal(out[0], 0x40 | (SHA1_ABC[12] & 0x0f));
    assert_memory_equal(out + 1, SHA1_ABC + 13, 7);
}

/* Serials come from a per-thread pool: a child process must not repeat its parent's. */
static void test_serials_after_fork_are_not_the_parents(void **state)
{
    (void)state;
    uint8_t first[SMKI_SERIAL_LEN], parent[SMKI_SERIAL_LEN], child[SMKI_SERIAL_LEN];
    int fixed = 1, fds[2];
    assert_ok(smki_ca_serial_new(first, &fixed)); /* the pool now holds more */
    assert_int_equal(fixed, 0);
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t s[SMKI_SERIAL_LEN] = {0};
        int fx;
        int ok = smki_ca_serial_new(s, &fx) == 0;
        ssize_t w = ok ? write(fds[1], s, sizeof s) : -1;
        _exit(w == (ssize_t)sizeof s ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], child, sizeof child), (ssize_t)sizeof child);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_ok(smki_ca_serial_new(parent, &fixed));
    assert_memory_not_equal(child, parent, SMKI_SERIAL_LEN);
    assert_memory_not_equal(first, parent, SMKI_SERIAL_LEN);
    assert_true(child[0] >= 0x40 && child[0] <= 0x7f);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_der_lengths_are_minimal_at_every_boundary),
        cmocka_unit_test(test_der_integers_and_times),
        cmocka_unit_test(test_der_oids_match_openssl),
        cmocka_unit_test(test_env_text_round_trips),
        cmocka_unit_test(test_lint_gate_names_the_rules_and_releases_nothing),
        cmocka_unit_test(test_ca_init_generates_keys_in_the_token_and_refuses_a_taken_label),
        cmocka_unit_test(test_digests_fetched_once_match_the_standard_vectors),
        cmocka_unit_test(test_serials_after_fork_are_not_the_parents),
    };
    const struct CMUnitTest with_ca[] = {
        cmocka_unit_test_setup_teardown(test_ca_init_builds_a_hierarchy_that_lints_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_init_twice_reports_exists_and_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_init_refuses_unknown_and_unconfigured_environments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_init_production_once_configured_is_a_separate_hierarchy, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_issue_device_from_the_real_csr_matches_the_rtds_certificate, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_issue_device_ka_and_a_made_csr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_organisation_ds_and_ka_shaped_like_the_keystore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_organisation_validity_spans_2050_in_generalized_time, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_serials_are_16_octets_positive_and_distinct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_refuses_a_duplicate_serial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_refusals_write_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_before_init_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issuer_refuses_a_key_that_is_not_its_certificates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_finds_records_by_every_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_many_answers_each_query_as_find_does, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_record_decoding_refuses_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_release_agrees_with_the_full_linter_on_issued_certificates, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fast_release_is_never_less_strict_than_the_full_linter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fast_release_catches_crafted_violations_as_the_full_linter_does, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_release_falls_back_to_the_full_linter, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("ca", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("ca with a test hierarchy", with_ca, NULL, NULL);
    return failed;
}
