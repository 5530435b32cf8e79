/* Revocation, CRLs and ARLs (ca/revoke.c, ca/crl.c): a revoked certificate's status,
 * time and reason recorded with its status index moved; every refusal (unknown
 * serial, device, root, already revoked, unused reason, wrong environment or issuer,
 * an ambiguous serial) writing nothing; the lists read back by OpenSSL: v2, issuer,
 * times, cRLNumber, AKI, entries and reasons, signature; numbers rising; the ARL of a
 * root naming a revoked CA, which then issues nothing. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ca/ca.h"
#include "ca/ca_test.h"
#include "ca/crl.h"
#include "helpers.h"

#define REAL_CSR "vectors/gbcs/csr/00db1234567890a0-ds.csr.der"
#define T0 1790000000 /* 2026-09-21: a fixed "now" for the lists */

static const uint8_t ORG_EUI[8] = {0x90, 0xb3, 0xd5, 0x1f, 0x30, 0x01, 0x00, 0x00};

typedef struct {
    char dir[1024];
    smki_store *store;
    smki_ca_db db;
    smki_ca_issuer *oca, *dca;
} fixture;

/* The test hierarchy with software CA keys (no token). */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", test_tmpdir("crl"));
    int rc = test_software_hierarchy(f->dir, NULL, &f->store, &f->db);
    if (rc != 0 || smki_ca_issuer_open(&f->db, "test", SMKI_PROFILE_ORGANISATION, NULL, &f->oca) != 0 ||
        smki_ca_issuer_open(&f->db, "test", SMKI_PROFILE_DEVICE, NULL, &f->dca) != 0) {
        print_error("setup: %s\n", smki_error_msg());
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
    smki_store_close(f->store);
    smki_ca_test_fix_serial(NULL);
    free(f);
    return 0;
}

static smki_csr *org_csr(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    smki_csr *c = test_ku_csr(X509_REQ_new(), k, "critical,digitalSignature");
    EVP_PKEY_free(k);
    return c;
}

static smki_cert *issue_org(fixture *f)
{
    smki_csr *csr = org_csr();
    smki_eui64_t eui;
    memcpy(eui.b, ORG_EUI, 8);
    smki_issue_req r = {csr, SMKI_PROFILE_ORGANISATION, SMKI_ROLE_SUPPLIER, &eui, NULL, 0, 0};
    smki_cert *c = malloc(sizeof *c);
    assert_ok(smki_ca_issue(f->oca, &f->db, &r, c));
    smki_csr_free(csr);
    return c;
}

static smki_cert *issue_device(fixture *f)
{
    size_t len;
    uint8_t *der = test_read_shared(REAL_CSR, &len);
    smki_csr *csr = NULL;
    assert_ok(smki_csr_parse(der, len, &csr));
    free(der);
    smki_issue_req r = {csr, SMKI_PROFILE_DEVICE, -1, NULL, NULL, 0, 0};
    smki_cert *c = malloc(sizeof *c);
    assert_ok(smki_ca_issue(f->dca, &f->db, &r, c));
    smki_csr_free(csr);
    return c;
}

static int count_fn(const smki_cert *c, void *arg)
{
    (void)c;
    ++*(size_t *)arg;
    return 0;
}

static size_t count_status(fixture *f, smki_cert_status st)
{
    smki_ca_query q = SMKI_CA_QUERY_ALL;
    q.status = st;
    size_t n = 0;
    assert_ok(smki_ca_find(&f->db, &q, count_fn, &n));
    return n;
}

static smki_cert_status status_of(fixture *f, const smki_cert *c)
{
    smki_cert *got = malloc(sizeof *got);
    assert_ok(smki_ca_cert_get(&f->db, c->issuer_ski, c->serial, got));
    smki_cert_status st = got->status;
    free(got);
    return st;
}

static X509_CRL *decode_crl(const smki_crl *l)
{
    const unsigned char *p = l->der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)l->der_len);
    assert_non_null(crl);
    assert_ptr_equal(p, l->der + l->der_len);
    return crl;
}

static X509 *ca_cert(fixture *f, smki_ca_kind k)
{
    smki_ca_record *rec = malloc(sizeof *rec);
    assert_ok(smki_ca_get(&f->db, "test", k, rec));
    const unsigned char *p = rec->cert.der;
    X509 *x = d2i_X509(NULL, &p, (long)rec->cert.der_len);
    assert_non_null(x);
    free(rec);
    return x;
}

static int64_t asn1_seconds(const ASN1_TIME *t)
{
    ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, epoch, t), 1);
    ASN1_TIME_free(epoch);
    return (int64_t)days * 86400 + secs;
}

/* DER walking for the layout checks: the contents of a TLV, or the TLV after it. */
static size_t tlv_len(const uint8_t *p, size_t *head)
{
    if (p[1] < 0x80) {
        *head = 2;
        return p[1];
    }
    size_t n = p[1] & 0x7f, len = 0;
    for (size_t i = 0; i < n; i++) len = len << 8 | p[2 + i];
    *head = 2 + n;
    return len;
}

static const uint8_t *tlv_enter(const uint8_t *p)
{
    size_t head;
    (void)tlv_len(p, &head);
    return p + head;
}

static const uint8_t *tlv_skip(const uint8_t *p)
{
    size_t head, len = tlv_len(p, &head);
    return p + head + len;
}

/* ---- Reasons ------------------------------------------------------------------------------ */

static void test_reason_parse_accepts_names_hyphens_and_numbers(void **state)
{
    (void)state;
    smki_revoke_reason r;
    assert_ok(smki_revoke_reason_parse("keyCompromise", &r));
    assert_int_equal(r, SMKI_REASON_KEY_COMPROMISE);
    assert_ok(smki_revoke_reason_parse("key-compromise", &r));
    assert_int_equal(r, SMKI_REASON_KEY_COMPROMISE);
    assert_ok(smki_revoke_reason_parse("CACOMPROMISE", &r));
    assert_int_equal(r, SMKI_REASON_CA_COMPROMISE);
    assert_ok(smki_revoke_reason_parse("9", &r));
    assert_int_equal(r, SMKI_REASON_PRIVILEGE_WITHDRAWN);
    assert_ok(smki_revoke_reason_parse("0", &r));
    assert_int_equal(r, SMKI_REASON_UNSPECIFIED);
    assert_string_equal(smki_revoke_reason_name(SMKI_REASON_CESSATION_OF_OPERATION), "cessationOfOperation");
    assert_null(smki_revoke_reason_name(7));
}

static void test_reason_parse_refuses_unknown_and_unused_reasons(void **state)
{
    (void)state;
    smki_revoke_reason r;
    assert_fails(smki_revoke_reason_parse("boredom", &r), SMKI_E_USAGE, "is not a revocation reason");
    assert_fails(smki_revoke_reason_parse("7", &r), SMKI_E_USAGE, "is not a revocation reason");
    assert_fails(smki_revoke_reason_parse("11", &r), SMKI_E_USAGE, "is not a revocation reason");
    assert_fails(smki_revoke_reason_parse("1x", &r), SMKI_E_USAGE, "is not a revocation reason");
    assert_fails(smki_revoke_reason_parse("", &r), SMKI_E_USAGE, "no revocation reason");
    assert_fails(smki_revoke_reason_parse("certificateHold", &r), SMKI_E_USAGE, "final");
    assert_fails(smki_revoke_reason_parse("8", &r), SMKI_E_USAGE, "removeFromCRL");
    assert_fails(smki_revoke_reason_parse("aACompromise", &r), SMKI_E_USAGE, "attribute");
}

static void test_crl_interval_defaults_and_configuration(void **state)
{
    (void)state;
    int64_t s = 0;
    assert_ok(smki_ca_crl_interval(NULL, "test", SMKI_CA_OCA, &s));
    assert_int_equal(s, SMKI_CRL_DEFAULT_HOURS * 3600);
    assert_ok(smki_ca_crl_interval(NULL, "test", SMKI_CA_ROOT, &s));
    assert_int_equal(s, SMKI_ARL_DEFAULT_HOURS * 3600);
    static const char TEXT[] = "[ca.test]\ncrl_hours = 24\narl_hours = 48\n[ca.bad]\ncrl_hours = 0\n"
                               "arl_hours = 9000\n[ca.worse]\ncrl_hours = 12h\n";
    smki_conf *c = NULL;
    assert_ok(smki_conf_parse((const uint8_t *)TEXT, sizeof TEXT - 1, "t", &c));
    assert_ok(smki_ca_crl_interval(c, "test", SMKI_CA_DCCKI_ICA, &s));
    assert_int_equal(s, 24 * 3600);
    assert_ok(smki_ca_crl_interval(c, "test", SMKI_CA_DCCKI_ROOT, &s));
    assert_int_equal(s, 48 * 3600);
    assert_ok(smki_ca_crl_interval(c, "production", SMKI_CA_OCA, &s)); /* not configured: the default */
    assert_int_equal(s, SMKI_CRL_DEFAULT_HOURS * 3600);
    assert_fails(smki_ca_crl_interval(c, "bad", SMKI_CA_OCA, &s), SMKI_E_USAGE, "ca.bad.crl_hours");
    assert_fails(smki_ca_crl_interval(c, "bad", SMKI_CA_ROOT, &s), SMKI_E_USAGE, "ca.bad.arl_hours");
    assert_fails(smki_ca_crl_interval(c, "worse", SMKI_CA_OCA, &s), SMKI_E_USAGE, "1 to 8784 hours");
    smki_conf_free(c);
    assert_true(smki_ca_kind_is_root(SMKI_CA_ROOT) && smki_ca_kind_is_root(SMKI_CA_DCCKI_ROOT));
    assert_false(smki_ca_kind_is_root(SMKI_CA_OCA) || smki_ca_kind_is_root(SMKI_CA_DCCKI_ICA));
}

/* ---- Revoking ----------------------------------------------------------------------------- */

static void test_revoke_organisation_records_time_reason_and_moves_status_index(void **state)
{
    fixture *f = *state;
    smki_cert *a = issue_org(f), *b = issue_org(f), *got = malloc(sizeof *got);
    size_t in_use = count_status(f, SMKI_STATUS_IN_USE);
    smki_revoke_req r = {a->serial, NULL, "test", SMKI_REASON_KEY_COMPROMISE, T0};
    smki_revocation rev;
    assert_ok(smki_ca_revoke(&f->db, &r, got, &rev));
    assert_int_equal(got->status, SMKI_STATUS_REVOKED);
    assert_memory_equal(got->serial, a->serial, SMKI_SERIAL_LEN);
    assert_int_equal(rev.reason, SMKI_REASON_KEY_COMPROMISE);
    assert_int_equal(rev.revoked_at, T0);
    assert_memory_equal(rev.issuer_ski, a->issuer_ski, SMKI_KEYID_LEN);
    /* The record, the status index and the revocation record all agree. */
    assert_int_equal(status_of(f, a), SMKI_STATUS_REVOKED);
    assert_int_equal(status_of(f, b), SMKI_STATUS_IN_USE);
    assert_int_equal(count_status(f, SMKI_STATUS_REVOKED), 1);
    assert_int_equal(count_status(f, SMKI_STATUS_IN_USE), in_use - 1);
    smki_revocation back;
    assert_ok(smki_ca_revocation_get(&f->db, a->issuer_ski, a->serial, &back));
    assert_int_equal(back.reason, SMKI_REASON_KEY_COMPROMISE);
    assert_int_equal(back.revoked_at, T0);
    assert_fails(smki_ca_revocation_get(&f->db, b->issuer_ski, b->serial, &back), SMKI_E_NOTFOUND, "not revoked");
    /* The certificate itself is unchanged. */
    assert_ok(smki_ca_cert_get(&f->db, a->issuer_ski, a->serial, got));
    assert_int_equal(got->der_len, a->der_len);
    assert_memory_equal(got->der, a->der, a->der_len);
    free(a), free(b), free(got);
}

static void test_revoke_refusals_write_nothing(void **state)
{
    fixture *f = *state;
    smki_cert *org = issue_org(f), *dev = issue_device(f);
    smki_ca_record *root = malloc(sizeof *root);
    assert_ok(smki_ca_get(&f->db, "test", SMKI_CA_ROOT, root));
    static const uint8_t UNKNOWN[SMKI_SERIAL_LEN] = {0x42, 1, 2, 3};
    smki_revoke_req r = {UNKNOWN, NULL, NULL, SMKI_REASON_SUPERSEDED, T0};
    assert_fails(smki_ca_revoke(&f->db, &r, NULL, NULL), SMKI_E_NOTFOUND, "no certificate of serial 42010203");
    r.serial = dev->serial;
    assert_fails(smki_ca_revoke(&f->db, &r, NULL, NULL), SMKI_E_REFUSED, "replaced, not revoked");
    r.serial = root->cert.serial;
    assert_fails(smki_ca_revoke(&f->db, &r, NULL, NULL), SMKI_E_REFUSED, "withdrawn from the trust stores");
    r.serial = org->serial;
    r.env = "production";
    assert_fails(smki_ca_revoke(&f->db, &r, NULL, NULL), SMKI_E_NOTFOUND, "in environment production");
    r.env = NULL;
    r.issuer_ski = dev->issuer_ski; /* the device CA's SKI: not the organisation certificate's issuer */
    assert_fails(smki_ca_revoke(&f->db, &r, NULL, NULL), SMKI_E_NOTFOUND, "from that issuer");
    r.issuer_ski = NULL;
    r.reason = SMKI_REASON_CERTIFICATE_HOLD;
    assert_fails(smki_ca_revoke(&f->db, &r, NULL, NULL), SMKI_E_USAGE, "final");
    r.reason = (smki_revoke_reason)7;
    assert_fails(smki_ca_revoke(&f->db, &r, NULL, NULL), SMKI_E_USAGE, "not an RFC 5280 reason code");
    r.serial = NULL;
    assert_fails(smki_ca_revoke(&f->db, &r, NULL, NULL), SMKI_E_USAGE, "no serial");
    assert_int_equal(count_status(f, SMKI_STATUS_REVOKED), 0);
    assert_int_equal(status_of(f, dev), SMKI_STATUS_IN_USE);
    assert_int_equal(status_of(f, org), SMKI_STATUS_IN_USE);
    smki_revocation back;
    assert_int_equal(smki_ca_revocation_get(&f->db, dev->issuer_ski, dev->serial, &back), SMKI_E_NOTFOUND);

    /* Revoked once; the second time is refused, naming the first. */
    smki_revoke_req ok = {org->serial, NULL, "test", SMKI_REASON_AFFILIATION_CHANGED, T0};
    assert_ok(smki_ca_revoke(&f->db, &ok, NULL, NULL));
    ok.reason = SMKI_REASON_KEY_COMPROMISE;
    ok.when = T0 + 100;
    assert_fails(smki_ca_revoke(&f->db, &ok, NULL, NULL), SMKI_E_REFUSED, "already revoked");
    assert_fails(smki_ca_revoke(&f->db, &ok, NULL, NULL), SMKI_E_REFUSED, "affiliationChanged");
    assert_ok(smki_ca_revocation_get(&f->db, org->issuer_ski, org->serial, &back));
    assert_int_equal(back.reason, SMKI_REASON_AFFILIATION_CHANGED);
    assert_int_equal(back.revoked_at, T0);
    assert_int_equal(count_status(f, SMKI_STATUS_REVOKED), 1);
    free(org), free(dev), free(root);
}

static void test_revoke_of_a_serial_two_issuers_used_needs_the_issuer(void **state)
{
    fixture *f = *state;
    static const uint8_t SAME[SMKI_SERIAL_LEN] = {0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
                                                  0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55};
    smki_ca_test_fix_serial(SAME);
    smki_cert *org = issue_org(f), *dev = issue_device(f);
    smki_ca_test_fix_serial(NULL);
    smki_revoke_req r = {SAME, NULL, NULL, SMKI_REASON_SUPERSEDED, T0};
    assert_fails(smki_ca_revoke(&f->db, &r, NULL, NULL), SMKI_E_USAGE, "name the issuer");
    assert_int_equal(count_status(f, SMKI_STATUS_REVOKED), 0);
    r.issuer_ski = org->issuer_ski;
    assert_ok(smki_ca_revoke(&f->db, &r, NULL, NULL));
    assert_int_equal(status_of(f, org), SMKI_STATUS_REVOKED);
    assert_int_equal(status_of(f, dev), SMKI_STATUS_IN_USE);
    free(org), free(dev);
}

static void test_set_status_moves_the_index_but_never_to_or_from_revoked(void **state)
{
    fixture *f = *state;
    smki_cert *a = issue_org(f);
    assert_ok(smki_ca_set_status(&f->db, a->issuer_ski, a->serial, SMKI_STATUS_NOT_IN_USE));
    assert_int_equal(status_of(f, a), SMKI_STATUS_NOT_IN_USE);
    assert_int_equal(count_status(f, SMKI_STATUS_NOT_IN_USE), 1);
    assert_ok(smki_ca_set_status(&f->db, a->issuer_ski, a->serial, SMKI_STATUS_NOT_IN_USE)); /* no change */
    assert_int_equal(count_status(f, SMKI_STATUS_NOT_IN_USE), 1);
    assert_ok(smki_ca_set_status(&f->db, a->issuer_ski, a->serial, SMKI_STATUS_IN_USE));
    assert_int_equal(count_status(f, SMKI_STATUS_NOT_IN_USE), 0);
    assert_fails(smki_ca_set_status(&f->db, a->issuer_ski, a->serial, SMKI_STATUS_REVOKED), SMKI_E_REFUSED,
                 "smki_ca_revoke");
    assert_fails(smki_ca_set_status(&f->db, a->issuer_ski, a->serial, (smki_cert_status)'X'), SMKI_E_USAGE,
                 "not a certificate status");
    smki_revoke_req r = {a->serial, NULL, NULL, SMKI_REASON_UNSPECIFIED, T0};
    assert_ok(smki_ca_revoke(&f->db, &r, NULL, NULL));
    assert_fails(smki_ca_set_status(&f->db, a->issuer_ski, a->serial, SMKI_STATUS_IN_USE), SMKI_E_REFUSED, "final");
    assert_int_equal(status_of(f, a), SMKI_STATUS_REVOKED);
    free(a);
}

/* ---- Lists -------------------------------------------------------------------------------- */

static void test_crl_lists_its_cas_revoked_certificates_and_verifies(void **state)
{
    fixture *f = *state;
    smki_cert *a = issue_org(f), *b = issue_org(f), *c = issue_org(f);
    smki_revoke_req r = {a->serial, NULL, NULL, SMKI_REASON_KEY_COMPROMISE, T0 - 60};
    assert_ok(smki_ca_revoke(&f->db, &r, NULL, NULL));
    r = (smki_revoke_req){b->serial, NULL, NULL, SMKI_REASON_UNSPECIFIED, T0 - 30};
    assert_ok(smki_ca_revoke(&f->db, &r, NULL, NULL));
    smki_crl_opts o = {NULL, f->dir, T0, 3600, NULL, NULL};
    smki_crl l;
    assert_ok(smki_ca_crl_publish(&f->db, "test", SMKI_CA_OCA, &o, &l));
    assert_int_equal(l.number, 1);
    assert_int_equal(l.entries, 2);
    assert_int_equal(l.this_update, T0);
    assert_int_equal(l.next_update, T0 + 3600);

    X509_CRL *crl = decode_crl(&l);
    X509 *oca = ca_cert(f, SMKI_CA_OCA);
    assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(oca)), 0);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(oca)), 1);
    assert_int_equal(asn1_seconds(X509_CRL_get0_lastUpdate(crl)), T0);
    assert_int_equal(asn1_seconds(X509_CRL_get0_nextUpdate(crl)), T0 + 3600);
    assert_int_equal(X509_CRL_get_signature_nid(crl), NID_ecdsa_with_SHA256);
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(num);
    assert_int_equal(ASN1_INTEGER_get(num), 1);
    ASN1_INTEGER_free(num);
    AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
    assert_non_null(akid);
    assert_non_null(akid->keyid);
    assert_null(akid->issuer);
    assert_int_equal(ASN1_STRING_length(akid->keyid), SMKI_KEYID_LEN);
    assert_memory_equal(ASN1_STRING_get0_data(akid->keyid), a->issuer_ski, SMKI_KEYID_LEN);
    AUTHORITY_KEYID_free(akid);
    /* The two revoked ones with their times and reasons; the third is not listed. */
    STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
    assert_int_equal(sk_X509_REVOKED_num(revs), 2);
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        X509_REVOKED *e = sk_X509_REVOKED_value(revs, i);
        uint8_t ser[SMKI_SERIAL_LEN];
        const ASN1_INTEGER *sn = X509_REVOKED_get0_serialNumber(e);
        assert_int_equal(sn->length, SMKI_SERIAL_LEN);
        memcpy(ser, sn->data, SMKI_SERIAL_LEN);
        ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(e, NID_crl_reason, NULL, NULL);
        if (memcmp(ser, a->serial, SMKI_SERIAL_LEN) == 0) {
            seen |= 1;
            assert_non_null(reason);
            assert_int_equal(ASN1_ENUMERATED_get(reason), SMKI_REASON_KEY_COMPROMISE);
            assert_int_equal(asn1_seconds(X509_REVOKED_get0_revocationDate(e)), T0 - 60);
        } else {
            assert_memory_equal(ser, b->serial, SMKI_SERIAL_LEN);
            seen |= 2;
            assert_null(reason); /* unspecified: no reasonCode (RFC 5280 5.3.1) */
            assert_int_equal(asn1_seconds(X509_REVOKED_get0_revocationDate(e)), T0 - 30);
        }
        ASN1_ENUMERATED_free(reason);
    }
    assert_int_equal(seen, 3);
    X509_REVOKED *hit = NULL;
    X509 *cx = NULL;
    const unsigned char *p = c->der;
    cx = d2i_X509(NULL, &p, (long)c->der_len);
    assert_int_equal(X509_CRL_get0_by_cert(crl, &hit, cx), 0);
    X509_free(cx);
    X509_CRL_free(crl);
    X509_free(oca);

    /* Published atomically beside the CA certificate, and kept as the latest. */
    char path[1200];
    snprintf(path, sizeof path, "%s/ca/test/smki-oca.crl", f->dir);
    assert_string_equal(l.path, path);
    uint8_t *file = NULL;
    size_t file_len = 0;
    assert_ok(smki_file_read(path, 1 << 20, &file, &file_len));
    assert_int_equal(file_len, l.der_len);
    assert_memory_equal(file, l.der, l.der_len);
    free(file);
    smki_crl back;
    assert_ok(smki_ca_crl_get(&f->db, "test", SMKI_CA_OCA, &back));
    assert_int_equal(back.number, 1);
    assert_int_equal(back.entries, 2);
    assert_int_equal(back.next_update, T0 + 3600);
    assert_int_equal(back.der_len, l.der_len);
    assert_memory_equal(back.der, l.der, l.der_len);
    smki_crl_clear(&back);
    smki_crl_clear(&l);

    /* The next one is number 2, and replaces the latest. */
    o.now = T0 + 60;
    o.home = NULL; /* store only */
    assert_ok(smki_ca_crl_publish(&f->db, "test", SMKI_CA_OCA, &o, &l));
    assert_int_equal(l.number, 2);
    assert_string_equal(l.path, "");
    assert_ok(smki_ca_crl_get(&f->db, "test", SMKI_CA_OCA, &back));
    assert_int_equal(back.number, 2);
    assert_int_equal(back.this_update, T0 + 60);
    smki_crl_clear(&back);
    smki_crl_clear(&l);
    free(a), free(b), free(c);
}

static void test_empty_crl_has_no_revoked_certificates_field(void **state)
{
    fixture *f = *state;
    smki_cert *a = issue_org(f);
    smki_revoke_req r = {a->serial, NULL, NULL, SMKI_REASON_SUPERSEDED, T0};
    assert_ok(smki_ca_revoke(&f->db, &r, NULL, NULL)); /* the OCA's: not on the device CA's list */
    smki_crl_opts o = {NULL, NULL, T0, 0, NULL, NULL};
    smki_crl l;
    assert_ok(smki_ca_crl_publish(&f->db, "test", SMKI_CA_DCA, &o, &l));
    assert_int_equal(l.entries, 0);
    assert_int_equal(l.next_update - l.this_update, SMKI_CRL_DEFAULT_HOURS * 3600);
    X509_CRL *crl = decode_crl(&l);
    assert_true(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0); /* -1: no list at all */
    X509 *dca = ca_cert(f, SMKI_CA_DCA);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(dca)), 1);
    /* RFC 5280 5.1.2.6: absent, not an empty SEQUENCE: in the TBSCertList, after
     * version, signature, issuer, thisUpdate and nextUpdate comes [0] crlExtensions. */
    const uint8_t *q = l.der;
    q = tlv_enter(q); /* CertificateList */
    q = tlv_enter(q); /* TBSCertList */
    for (int i = 0; i < 5; i++) q = tlv_skip(q);
    assert_int_equal(q[0], 0xa0);
    X509_free(dca);
    X509_CRL_free(crl);
    smki_crl_clear(&l);
    free(a);
}

static void test_arl_lists_a_revoked_ca_which_then_issues_nothing(void **state)
{
    fixture *f = *state;
    smki_ca_record *oca = malloc(sizeof *oca);
    assert_ok(smki_ca_get(&f->db, "test", SMKI_CA_OCA, oca));
    smki_revoke_req r = {oca->cert.serial, NULL, "test", SMKI_REASON_CA_COMPROMISE, T0};
    smki_cert *got = malloc(sizeof *got);
    assert_ok(smki_ca_revoke(&f->db, &r, got, NULL));
    assert_int_equal(got->profile, SMKI_PROFILE_SMKI_OCA);
    smki_crl_opts o = {NULL, f->dir, T0, 0, NULL, NULL};
    smki_crl l;
    assert_ok(smki_ca_crl_publish(&f->db, "test", SMKI_CA_ROOT, &o, &l));
    assert_int_equal(l.entries, 1);
    assert_int_equal(l.next_update - l.this_update, SMKI_ARL_DEFAULT_HOURS * 3600);
    X509_CRL *crl = decode_crl(&l);
    X509 *root = ca_cert(f, SMKI_CA_ROOT), *ocx = ca_cert(f, SMKI_CA_OCA);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(root)), 1);
    X509_REVOKED *hit = NULL;
    assert_int_equal(X509_CRL_get0_by_cert(crl, &hit, ocx), 1);
    X509_free(root);
    X509_free(ocx);
    X509_CRL_free(crl);
    smki_crl_clear(&l);
    /* The DCCKI root's ARL is its own: empty. */
    assert_ok(smki_ca_crl_publish(&f->db, "test", SMKI_CA_DCCKI_ROOT, &o, &l));
    assert_int_equal(l.entries, 0);
    smki_crl_clear(&l);
    smki_ca_issuer *is = NULL;
    assert_fails(smki_ca_issuer_open(&f->db, "test", SMKI_PROFILE_ORGANISATION, NULL, &is), SMKI_E_REFUSED,
                 "is revoked");
    assert_null(is);
    free(oca), free(got);
}

static void test_dccki_ica_goes_on_the_dccki_roots_arl(void **state)
{
    fixture *f = *state;
    smki_ca_record *ica = malloc(sizeof *ica);
    assert_ok(smki_ca_get(&f->db, "test", SMKI_CA_DCCKI_ICA, ica));
    smki_revoke_req r = {ica->cert.serial, NULL, "test", SMKI_REASON_CESSATION_OF_OPERATION, T0};
    assert_ok(smki_ca_revoke(&f->db, &r, NULL, NULL));
    smki_crl_opts o = {NULL, NULL, T0, 0, NULL, NULL};
    smki_crl l;
    assert_ok(smki_ca_crl_publish(&f->db, "test", SMKI_CA_ROOT, &o, &l)); /* the SMKI root's: not there */
    assert_int_equal(l.entries, 0);
    smki_crl_clear(&l);
    assert_ok(smki_ca_crl_publish(&f->db, "test", SMKI_CA_DCCKI_ROOT, &o, &l));
    assert_int_equal(l.entries, 1);
    X509_CRL *crl = decode_crl(&l);
    X509 *root = ca_cert(f, SMKI_CA_DCCKI_ROOT), *icx = ca_cert(f, SMKI_CA_DCCKI_ICA);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(root)), 1);
    X509_REVOKED *hit = NULL;
    assert_int_equal(X509_CRL_get0_by_cert(crl, &hit, icx), 1);
    ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(hit, NID_crl_reason, NULL, NULL);
    assert_int_equal(ASN1_ENUMERATED_get(reason), SMKI_REASON_CESSATION_OF_OPERATION);
    ASN1_ENUMERATED_free(reason);
    X509_free(root);
    X509_free(icx);
    X509_CRL_free(crl);
    smki_crl_clear(&l);
    smki_ca_issuer *is = NULL;
    assert_fails(smki_ca_issuer_open(&f->db, "test", SMKI_PROFILE_DCCKI_SERVER, NULL, &is), SMKI_E_REFUSED,
                 "dccki-ica CA of environment test is revoked");
    free(ica);
}

/* A revoked device CA takes its device certificates with it in the store (they show
 * revoked), but they are replaced, not revoked: its CRL still lists none of them. */
static void test_revoked_device_ca_marks_its_devices_but_lists_none(void **state)
{
    fixture *f = *state;
    smki_cert *d = issue_device(f);
    assert_int_equal(status_of(f, d), SMKI_STATUS_IN_USE);
    smki_ca_record *dca = malloc(sizeof *dca);
    assert_ok(smki_ca_get(&f->db, "test", SMKI_CA_DCA, dca));
    smki_revoke_req r = {dca->cert.serial, NULL, "test", SMKI_REASON_CA_COMPROMISE, T0};
    smki_revocation rev;
    assert_ok(smki_ca_revoke(&f->db, &r, NULL, &rev));
    assert_int_equal(rev.issued_revoked, 1);
    assert_int_equal(status_of(f, d), SMKI_STATUS_REVOKED);
    smki_crl_opts o = {NULL, NULL, T0, 0, NULL, NULL};
    smki_crl l;
    assert_ok(smki_ca_crl_publish(&f->db, "test", SMKI_CA_DCA, &o, &l)); /* its key still signs its last list */
    assert_int_equal(l.entries, 0);
    X509_CRL *crl = decode_crl(&l);
    assert_true(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0);
    X509_CRL_free(crl);
    smki_crl_clear(&l);
    /* The root's ARL lists the device CA. */
    assert_ok(smki_ca_crl_publish(&f->db, "test", SMKI_CA_ROOT, &o, &l));
    assert_int_equal(l.entries, 1);
    smki_crl_clear(&l);
    free(dca);
    free(d);
}

static void test_crl_refusals(void **state)
{
    fixture *f = *state;
    smki_crl l;
    assert_fails(smki_ca_crl_get(&f->db, "test", SMKI_CA_OCA, &l), SMKI_E_NOTFOUND, "no CRL");
    assert_fails(smki_ca_crl_get(&f->db, "test", SMKI_CA_ROOT, &l), SMKI_E_NOTFOUND, "no ARL");
    smki_crl_opts o = {NULL, f->dir, T0, 0, NULL, NULL};
    assert_fails(smki_ca_crl_publish(&f->db, "production", SMKI_CA_OCA, &o, &l), SMKI_E_NOTFOUND, "smki ca init");
    assert_null(l.der);
    assert_fails(smki_ca_crl_publish(&f->db, "test", SMKI_CA_KIND_COUNT, &o, &l), SMKI_E_USAGE, "no CA kind");
    char path[1200];
    snprintf(path, sizeof path, "%s/ca/production", f->dir);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_reason_parse_accepts_names_hyphens_and_numbers),
        cmocka_unit_test(test_reason_parse_refuses_unknown_and_unused_reasons),
        cmocka_unit_test(test_crl_interval_defaults_and_configuration),
    };
    const struct CMUnitTest with_ca[] = {
        cmocka_unit_test_setup_teardown(test_revoke_organisation_records_time_reason_and_moves_status_index, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_revoke_refusals_write_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_of_a_serial_two_issuers_used_needs_the_issuer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_status_moves_the_index_but_never_to_or_from_revoked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crl_lists_its_cas_revoked_certificates_and_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_crl_has_no_revoked_certificates_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arl_lists_a_revoked_ca_which_then_issues_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dccki_ica_goes_on_the_dccki_roots_arl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_device_ca_marks_its_devices_but_lists_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crl_refusals, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("crl (pure)", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("crl (with a hierarchy)", with_ca, NULL, NULL);
    return failed;
}
