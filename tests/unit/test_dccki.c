/* DCCKI TLS certificates (ca/dccki.c): server and client certificates from the DCCKI
 * issuing CA that lint clean as their profile, the Party Signifier as the subject's
 * organizationIdentifier (given, or the CSR's, never both disagreeing), the SAN and the
 * one EKU, validity from the environment and never past the CA's, recorded in the
 * store; and every refusal with nothing written. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "helpers.h"

#define REAL_CSR "vectors/gbcs/csr/00db1234567890a0-ds.csr.der"

typedef struct {
    char dir[1024];
    smki_store *store;
    smki_ca_db db;
    smki_ca_issuer *ica, *oca;
} fixture;

static int setup_with(void **state, const char *extra)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", test_tmpdir("dccki"));
    int rc = test_software_hierarchy(f->dir, extra, &f->store, &f->db);
    if (rc != 0 || smki_ca_issuer_open(&f->db, "test", SMKI_PROFILE_DCCKI_CLIENT, NULL, &f->ica) != 0 ||
        smki_ca_issuer_open(&f->db, "test", SMKI_PROFILE_ORGANISATION, NULL, &f->oca) != 0) {
        print_error("setup: %s\n", smki_error_msg());
        return -1;
    }
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, "");
}

/* Server certificates of 20 years: longer than the DCCKI issuing CA's 10. */
static int setup_long(void **state)
{
    return setup_with(state, "[env.test]\ndccki_server_years = 20\ndccki_client_years = 2\n");
}

static int teardown(void **state)
{
    fixture *f = *state;
    smki_ca_issuer_free(f->ica);
    smki_ca_issuer_free(f->oca);
    smki_store_close(f->store);
    free(f);
    return 0;
}

/* A CSR: P-256 (or curve), keyUsage with these bits, subject with an optional
 * organizationIdentifier and CN. */
static smki_csr *tls_csr(const char *ku, const char *party, const char *cn)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_REQ_get_subject_name(req);
    if (party)
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "2.5.4.97", MBSTRING_UTF8, (const unsigned char *)party, -1,
                                                    -1, 0),
                         1);
    if (cn)
        assert_int_equal(
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0), 1);
    smki_csr *c = test_ku_csr(req, k, ku);
    EVP_PKEY_free(k);
    return c;
}

static X509 *decode(const smki_cert *c)
{
    const unsigned char *p = c->der;
    X509 *x = d2i_X509(NULL, &p, (long)c->der_len);
    assert_non_null(x);
    return x;
}

static size_t cert_count(fixture *f)
{
    size_t n = 0;
    assert_ok(smki_ca_count(&f->db, &n));
    return n;
}

static void assert_clean(const smki_cert *c, smki_profile_id want)
{
    smki_env env;
    assert_ok(smki_env_load("test", NULL, &env));
    snprintf(env.dccki_policy, sizeof env.dccki_policy, "%s", SMKI_CA_TEST_DCCKI_POLICY);
    smki_lint_report *rep = malloc(sizeof *rep);
    assert_ok(smki_lint_der(c->der, c->der_len, &env, rep));
    for (size_t i = 0; i < rep->count; i++) print_message("  lint %s: %s\n", rep->findings[i].rule, rep->findings[i].message);
    assert_true(smki_lint_is_clean(rep));
    assert_int_equal(rep->profile, want);
    free(rep);
}

static void text_of(X509_NAME *n, int nid, char *out, int cap)
{
    out[0] = '\0';
    X509_NAME_get_text_by_NID(n, nid, out, cap);
}

static void test_server_certificate_carries_party_names_and_server_auth(void **state)
{
    fixture *f = *state;
    smki_csr *csr = tls_csr("critical,digitalSignature", NULL, "ignored");
    const char *dns[] = {"gw1.dccki.test", "localhost"};
    const char *ips[] = {"127.0.0.1", "::1"};
    smki_tls_req r = {csr, SMKI_PROFILE_DCCKI_SERVER, "PARTY0001", "gw1", dns, 2, ips, 2, 1790000000};
    smki_cert *c = malloc(sizeof *c);
    char party[SMKI_PARTY_MAX];
    size_t before = cert_count(f);
    assert_ok(smki_ca_issue_tls(f->ica, &f->db, &r, c, party));
    assert_string_equal(party, "PARTY0001");
    assert_int_equal(cert_count(f), before + 1);
    assert_int_equal(c->profile, SMKI_PROFILE_DCCKI_SERVER);
    assert_int_equal(c->usage, SMKI_USAGE_DS);
    assert_int_equal(c->role, -1);
    assert_false(c->has_eui);
    assert_clean(c, SMKI_PROFILE_DCCKI_SERVER);
    X509 *x = decode(c);
    char buf[128];
    text_of(X509_get_subject_name(x), NID_organizationIdentifier, buf, sizeof buf);
    assert_string_equal(buf, "PARTY0001");
    text_of(X509_get_subject_name(x), NID_commonName, buf, sizeof buf);
    assert_string_equal(buf, "gw1"); /* --cn, not the CSR's */
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 2);
    /* The Party Signifier first, a UTF8String. */
    X509_NAME_ENTRY *e0 = X509_NAME_get_entry(X509_get_subject_name(x), 0);
    assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e0)), NID_organizationIdentifier);
    assert_int_equal(ASN1_STRING_type(X509_NAME_ENTRY_get_data(e0)), V_ASN1_UTF8STRING);
    assert_int_equal(X509_check_host(x, "gw1.dccki.test", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "other.dccki.test", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 1);
    assert_int_not_equal(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0), 1);
    /* Default validity: one year less a second. */
    assert_int_equal(c->not_before, 1790000000);
    assert_int_equal(c->not_after, 1790000000 + 365 * 86400 - 1);
    X509_free(x);
    smki_cert *got = malloc(sizeof *got);
    assert_ok(smki_ca_cert_get(&f->db, c->issuer_ski, c->serial, got));
    assert_int_equal(got->der_len, c->der_len);
    assert_memory_equal(got->der, c->der, c->der_len);
    free(got);
    free(c);
    smki_csr_free(csr);
}

static void test_client_certificate_takes_the_csrs_party_signifier(void **state)
{
    fixture *f = *state;
    smki_csr *csr = tls_csr("critical,digitalSignature", "PARTY0002", "client");
    smki_tls_req r = {csr, SMKI_PROFILE_DCCKI_CLIENT, NULL, NULL, NULL, 0, NULL, 0, 0};
    smki_cert *c = malloc(sizeof *c);
    char party[SMKI_PARTY_MAX];
    assert_ok(smki_ca_build_tls(f->ica, &r, c, party));
    assert_string_equal(party, "PARTY0002");
    assert_clean(c, SMKI_PROFILE_DCCKI_CLIENT);
    X509 *x = decode(c);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 1); /* no CN asked for */
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
    assert_int_equal(X509_get_ext_by_NID(x, NID_subject_alt_name, -1), -1); /* no names: no SAN */
    X509_free(x);
    /* Given and equal to the CSR's: fine. */
    r.party = "PARTY0002";
    assert_ok(smki_ca_build_tls(f->ica, &r, c, NULL));
    free(c);
    smki_csr_free(csr);
}

static void test_validity_from_the_environment_never_past_the_ca(void **state)
{
    fixture *f = *state;
    smki_csr *csr = tls_csr("critical,digitalSignature", NULL, NULL);
    const char *dns[] = {"gw.dccki.test"};
    smki_tls_req r = {csr, SMKI_PROFILE_DCCKI_CLIENT, "PARTY0001", NULL, NULL, 0, NULL, 0, 1790000000};
    smki_cert *c = malloc(sizeof *c);
    assert_ok(smki_ca_build_tls(f->ica, &r, c, NULL));
    /* dccki_client_years = 2: 2026-09-21 to 2028-09-21, over 29 February 2028 */
    assert_int_equal(c->not_after, 1790000000 + 731 * 86400 - 1);
    smki_ca_record *ica = malloc(sizeof *ica);
    assert_ok(smki_ca_get(&f->db, "test", SMKI_CA_DCCKI_ICA, ica));
    r = (smki_tls_req){csr, SMKI_PROFILE_DCCKI_SERVER, "PARTY0001", NULL, dns, 1, NULL, 0, 0};
    assert_ok(smki_ca_build_tls(f->ica, &r, c, NULL)); /* 20 years asked, the CA has 10 */
    assert_int_equal(c->not_after, ica->cert.not_after);
    free(ica);
    free(c);
    smki_csr_free(csr);
}

static void test_tls_refusals_write_nothing(void **state)
{
    fixture *f = *state;
    smki_csr *ds = tls_csr("critical,digitalSignature", "PARTY0002", NULL);
    smki_csr *plain = tls_csr("critical,digitalSignature", NULL, NULL);
    smki_csr *ka = tls_csr("critical,keyAgreement", NULL, NULL);
    size_t len;
    uint8_t *der = test_read_shared(REAL_CSR, &len);
    smki_csr *device = NULL;
    assert_ok(smki_csr_parse(der, len, &device));
    free(der);
    smki_cert *c = malloc(sizeof *c);
    size_t before = cert_count(f);
    const char *dns[] = {"gw.dccki.test"}, *wild[] = {"*.dccki.test"}, *dash[] = {"-gw.dccki.test"},
               *empty_label[] = {"gw..test"}, *ip_bad[] = {"300.1.2.3"}, *ip_good[] = {"10.0.0.1"};
    const struct {
        smki_tls_req r;
        smki_ca_issuer *is;
        int code;
        const char *needle;
    } CASES[] = {
        {{plain, SMKI_PROFILE_DCCKI_SERVER, "P1", NULL, NULL, 0, NULL, 0, 0}, f->ica, SMKI_E_USAGE, "--dns NAME"},
        {{plain, SMKI_PROFILE_DCCKI_SERVER, "P1", NULL, wild, 1, NULL, 0, 0}, f->ica, SMKI_E_USAGE, "no wildcard"},
        {{plain, SMKI_PROFILE_DCCKI_SERVER, "P1", NULL, dash, 1, NULL, 0, 0}, f->ica, SMKI_E_USAGE, "host name"},
        {{plain, SMKI_PROFILE_DCCKI_SERVER, "P1", NULL, empty_label, 1, NULL, 0, 0}, f->ica, SMKI_E_USAGE,
         "host name"},
        {{plain, SMKI_PROFILE_DCCKI_SERVER, "P1", NULL, NULL, 0, ip_bad, 1, 0}, f->ica, SMKI_E_USAGE,
         "not an IPv4 or IPv6"},
        {{plain, SMKI_PROFILE_DCCKI_CLIENT, NULL, NULL, NULL, 0, NULL, 0, 0}, f->ica, SMKI_E_USAGE,
         "needs the Party Signifier"},
        {{plain, SMKI_PROFILE_DCCKI_CLIENT, "", NULL, NULL, 0, NULL, 0, 0}, f->ica, SMKI_E_USAGE, "1 to 64"},
        {{plain, SMKI_PROFILE_DCCKI_CLIENT, "P\x01", NULL, NULL, 0, NULL, 0, 0}, f->ica, SMKI_E_USAGE,
         "control characters"},
        {{ds, SMKI_PROFILE_DCCKI_CLIENT, "PARTY9", NULL, NULL, 0, NULL, 0, 0}, f->ica, SMKI_E_REFUSED, "disagrees"},
        {{plain, SMKI_PROFILE_DCCKI_CLIENT, "P1", "", NULL, 0, NULL, 0, 0}, f->ica, SMKI_E_USAGE, "CN"},
        {{ka, SMKI_PROFILE_DCCKI_CLIENT, "P1", NULL, NULL, 0, NULL, 0, 0}, f->ica, SMKI_E_REFUSED,
         "digitalSignature only"},
        {{device, SMKI_PROFILE_DCCKI_CLIENT, "P1", NULL, NULL, 0, NULL, 0, 0}, f->ica, SMKI_E_REFUSED,
         "names a device"},
        {{plain, SMKI_PROFILE_DCCKI_CLIENT, "P1", NULL, NULL, 0, ip_good, 1, 0}, f->oca, SMKI_E_USAGE,
         "the DCCKI issuing CA does"},
        {{plain, SMKI_PROFILE_ORGANISATION, "P1", NULL, NULL, 0, NULL, 0, 0}, f->ica, SMKI_E_USAGE,
         "dccki-server or dccki-client"},
        {{NULL, SMKI_PROFILE_DCCKI_CLIENT, "P1", NULL, NULL, 0, NULL, 0, 0}, f->ica, SMKI_E_USAGE, "no CSR"},
        {{plain, SMKI_PROFILE_DCCKI_CLIENT, "P1", NULL, NULL, 17, NULL, 0, 0}, f->ica, SMKI_E_USAGE, "at most 16"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        print_message("  case %zu: %s\n", i, CASES[i].needle);
        assert_fails(smki_ca_issue_tls(CASES[i].is, &f->db, &CASES[i].r, c, NULL), CASES[i].code, CASES[i].needle);
    }
    assert_int_equal(cert_count(f), before);
    /* And the issuer opened for a DCCKI profile is the DCCKI issuing CA. */
    assert_int_equal(smki_ca_issuer_profile(f->ica), SMKI_PROFILE_DCCKI_ICA);
    (void)dns;
    free(c);
    smki_csr_free(ds);
    smki_csr_free(plain);
    smki_csr_free(ka);
    smki_csr_free(device);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_server_certificate_carries_party_names_and_server_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_certificate_takes_the_csrs_party_signifier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validity_from_the_environment_never_past_the_ca, setup_long, teardown),
        cmocka_unit_test_setup_teardown(test_tls_refusals_write_nothing, setup, teardown),
    };
    return cmocka_run_group_tests_name("dccki", tests, NULL, NULL);
}
