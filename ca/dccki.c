/* DCCKI TLS certificates (docs/profiles.md "DCCKI"): server and client certificates
 * from an environment's DCCKI issuing CA, assembled with the same template machinery
 * as the SMKI ones (issue.c), plus what TLS needs: the Party Signifier in the subject,
 * a SAN of host names and addresses, one extended key usage. Linted before release. */
#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca_private.h"
#include "der.h"

#define MAX_NAMES 16 /* dNSNames and iPAddresses, each */

static const uint8_t OID_CN[] = {0x55, 0x04, 0x03};
static const uint8_t OID_SAN[] = {0x55, 0x1d, 0x11};
static const uint8_t OID_EKU[] = {0x55, 0x1d, 0x25};
/* id-kp-serverAuth 1.3.6.1.5.5.7.3.1 and id-kp-clientAuth ...3.2 (RFC 5280 4.2.1.12) */
static const uint8_t OID_KP_SERVER[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01};
static const uint8_t OID_KP_CLIENT[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02};

/* A host name for dNSName (RFC 5280 4.2.1.6, RFC 1123 2.1): LDH labels of 1 to 63
 * characters, not starting or ending with '-', at most 253 in all. No wildcard: a
 * DCCKI certificate names the hosts of one Party. */
static int check_dns(const char *name)
{
    size_t len = strlen(name), label = 0;
    int ok = len >= 1 && len <= 253 && name[0] != '.' && name[len - 1] != '.';
    for (size_t i = 0; ok && i <= len; i++) {
        char c = name[i];
        if (c == '.' || c == '\0') {
            ok = label >= 1 && label <= 63 && name[i - 1] != '-' && name[i - label] != '-';
            label = 0;
            continue;
        }
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        label++;
    }
    ENSURE(ok, SMKI_E_USAGE,
           "'%.64s' is not a host name for a dNSName: letters, digits and '-' in dot-separated labels of 1 to 63, "
           "no wildcard",
           name);
    return 0;
}

static int parse_ip(const char *text, uint8_t out[16], size_t *len)
{
    if (inet_pton(AF_INET, text, out) == 1) {
        *len = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out) == 1) {
        *len = 16;
        return 0;
    }
    return SMKI_FAIL(SMKI_E_USAGE, "'%.64s' is not an IPv4 or IPv6 address", text);
}

/* The CSR subject's Party Signifier (the environment's attribute), if it has one. */
static int csr_party(const smki_csr *csr, const smki_env *env, char *out, size_t cap, int *found)
{
    *found = 0;
    if (!csr->subject) return 0;
    ASN1_OBJECT *oid = OBJ_txt2obj(env->party_signifier_attr, 1);
    ENSURE_SSL(oid, SMKI_E_USAGE, "party_signifier_attr '%s' is not an OID", env->party_signifier_attr);
    int at = X509_NAME_get_index_by_OBJ(csr->subject, oid, -1);
    int again = at >= 0 ? X509_NAME_get_index_by_OBJ(csr->subject, oid, at) : -1;
    ASN1_OBJECT_free(oid);
    if (at < 0) return 0;
    ENSURE(again < 0, SMKI_E_REFUSED, "the CSR's subject has more than one Party Signifier (%s)",
           env->party_signifier_attr);
    X509_NAME_ENTRY *e = X509_NAME_get_entry(csr->subject, at);
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    int ok = n > 0 && (size_t)n < cap && memchr(utf8, 0, (size_t)n) == NULL;
    if (ok) {
        memcpy(out, utf8, (size_t)n);
        out[n] = '\0';
    }
    OPENSSL_free(utf8);
    ENSURE(ok, SMKI_E_REFUSED, "the CSR's Party Signifier is not text of 1 to 64 characters");
    *found = 1;
    return 0;
}

static void rdn(smki_writer_t *w, const uint8_t *oid, size_t oid_len, const char *text)
{
    smki_der_mark set = smki_wr_der_begin(w, 0x31);
    smki_der_mark atv = smki_wr_der_begin(w, 0x30);
    smki_wr_der(w, 0x06, oid, oid_len);
    smki_wr_der(w, 0x0c, text, strlen(text)); /* UTF8String, as every subject smki writes */
    smki_wr_der_end(w, atv);
    smki_wr_der_end(w, set);
}

int smki_ca_tls_check(const smki_env *env, const smki_tls_req *r, char party[SMKI_PARTY_MAX])
{
    ENSURE(env, SMKI_E_INTERNAL, "smki_ca_tls_check: no environment");
    ENSURE(r && r->csr, SMKI_E_USAGE, "no CSR in the request");
    ENSURE(r->profile == SMKI_PROFILE_DCCKI_SERVER || r->profile == SMKI_PROFILE_DCCKI_CLIENT, SMKI_E_USAGE,
           "a TLS request is for a dccki-server or dccki-client certificate, not %s",
           smki_profile_get(r->profile)->name);
    const smki_csr *csr = r->csr;
    ENSURE(csr->spki_len == sizeof SMKI_CA_SPKI_P256_PREFIX + SMKI_POINT_LEN &&
               memcmp(csr->spki, SMKI_CA_SPKI_P256_PREFIX, sizeof SMKI_CA_SPKI_P256_PREFIX) == 0,
           SMKI_E_REFUSED, "the CSR's public key is not a named-curve P-256 key with an uncompressed point");
    ENSURE(!csr->has_hw_module_name, SMKI_E_REFUSED,
           "the CSR names a device (hardwareModuleName): a DCCKI certificate is for a Party's TLS endpoint");
    ENSURE(csr->usage == SMKI_USAGE_DS, SMKI_E_REFUSED,
           "the CSR requests keyAgreement: DCCKI TLS certificates are digitalSignature only");
    char from_csr[SMKI_PARTY_MAX];
    int has_csr_party = 0;
    GUARD(csr_party(csr, env, from_csr, sizeof from_csr, &has_csr_party));
    if (r->party) {
        GUARD(smki_ca_check_cn(r->party, "the Party Signifier"));
        ENSURE(!has_csr_party || strcmp(from_csr, r->party) == 0, SMKI_E_REFUSED,
               "the Party Signifier '%s' disagrees with the CSR's '%s'", r->party, from_csr);
        snprintf(party, SMKI_PARTY_MAX, "%s", r->party);
    } else {
        ENSURE(has_csr_party, SMKI_E_USAGE,
               "a DCCKI certificate needs the Party Signifier (--party): the CSR's subject carries none (%s)",
               env->party_signifier_attr);
        GUARD(smki_ca_check_cn(from_csr, "the CSR's Party Signifier"));
        snprintf(party, SMKI_PARTY_MAX, "%s", from_csr);
    }
    if (r->cn) GUARD(smki_ca_check_cn(r->cn, "the CN"));
    ENSURE(r->n_dns <= MAX_NAMES && r->n_ips <= MAX_NAMES, SMKI_E_USAGE, "at most %d host names and %d addresses",
           MAX_NAMES, MAX_NAMES);
    ENSURE(r->n_dns == 0 || r->dns, SMKI_E_USAGE, "no host names given");
    ENSURE(r->n_ips == 0 || r->ips, SMKI_E_USAGE, "no addresses given");
    for (size_t i = 0; i < r->n_dns; i++) GUARD(check_dns(r->dns[i]));
    ENSURE(r->profile != SMKI_PROFILE_DCCKI_SERVER || r->n_dns + r->n_ips > 0, SMKI_E_USAGE,
           "a DCCKI server certificate names its host: give --dns NAME (or --ip ADDRESS)");
    for (size_t i = 0; i < r->n_ips; i++) {
        uint8_t ip[16];
        size_t ip_len = 0;
        GUARD(parse_ip(r->ips[i], ip, &ip_len));
    }
    return 0;
}

static int check_tls_request(const ca_issuer_view *v, const smki_tls_req *r, char party[SMKI_PARTY_MAX])
{
    ENSURE(v->profile == SMKI_PROFILE_DCCKI_ICA, SMKI_E_USAGE,
           "the %s CA of environment %s does not issue DCCKI TLS certificates: the DCCKI issuing CA does",
           smki_profile_get(v->profile)->name, v->env->name);
    return smki_ca_tls_check(v->env, r, party);
}

int smki_ca_build_tls(smki_ca_issuer *is, const smki_tls_req *r, smki_cert *out, char party_out[SMKI_PARTY_MAX])
{
    ENSURE(is && out, SMKI_E_INTERNAL, "smki_ca_build_tls: no issuer or output");
    ca_issuer_view v;
    smki_ca_issuer_view_of(is, &v);
    char party[SMKI_PARTY_MAX];
    GUARD(check_tls_request(&v, r, party));
    int64_t now = r->not_before > 0 ? r->not_before : (int64_t)time(NULL);
    ENSURE(v.not_after < 0 || now <= v.not_after, SMKI_E_REFUSED, "the DCCKI issuing CA of environment %s has expired",
           v.env->name);
    unsigned years = v.env->years[r->profile] ? v.env->years[r->profile] : SMKI_DCCKI_TLS_DEFAULT_YEARS;
    int64_t not_after = smki_ca_der_time_add_years_end(now, years);
    if (v.not_after >= 0 && not_after > v.not_after) not_after = v.not_after; /* never outlive the CA */

    uint8_t party_oid[64];
    size_t party_oid_len;
    GUARD(smki_ca_der_oid_from_text(v.env->party_signifier_attr, party_oid, sizeof party_oid, &party_oid_len));
    uint8_t subject[512];
    smki_writer_t w;
    smki_writer_fixed(&w, subject, sizeof subject);
    smki_der_mark name = smki_wr_der_begin(&w, 0x30);
    rdn(&w, party_oid, party_oid_len, party);
    if (r->cn) rdn(&w, OID_CN, sizeof OID_CN, r->cn);
    smki_wr_der_end(&w, name);
    GUARD(smki_wr_check(&w, "the subject name"));
    size_t subject_len = w.len;

    /* subjectAltName (non-critical: the subject is not empty, RFC 5280 4.2.1.6), then
     * extendedKeyUsage: one purpose, so a server key cannot act as a client. */
    uint8_t exts[MAX_NAMES * 2 * 260 + 64];
    smki_writer_fixed(&w, exts, sizeof exts);
    if (r->n_dns + r->n_ips) {
        smki_der_mark e = smki_wr_der_begin(&w, 0x30);
        smki_wr_der(&w, 0x06, OID_SAN, sizeof OID_SAN);
        smki_der_mark val = smki_wr_der_begin(&w, 0x04);
        smki_der_mark names = smki_wr_der_begin(&w, 0x30);
        for (size_t i = 0; i < r->n_dns; i++) smki_wr_der(&w, 0x82, r->dns[i], strlen(r->dns[i])); /* [2] IA5String */
        for (size_t i = 0; i < r->n_ips; i++) {
            uint8_t ip[16];
            size_t ip_len = 0;
            GUARD(parse_ip(r->ips[i], ip, &ip_len));
            smki_wr_der(&w, 0x87, ip, ip_len); /* [7] OCTET STRING */
        }
        smki_wr_der_end(&w, names);
        smki_wr_der_end(&w, val);
        smki_wr_der_end(&w, e);
    }
    smki_der_mark e = smki_wr_der_begin(&w, 0x30);
    smki_wr_der(&w, 0x06, OID_EKU, sizeof OID_EKU);
    smki_der_mark val = smki_wr_der_begin(&w, 0x04);
    smki_der_mark seq = smki_wr_der_begin(&w, 0x30);
    if (r->profile == SMKI_PROFILE_DCCKI_SERVER)
        smki_wr_der(&w, 0x06, OID_KP_SERVER, sizeof OID_KP_SERVER);
    else
        smki_wr_der(&w, 0x06, OID_KP_CLIENT, sizeof OID_KP_CLIENT);
    smki_wr_der_end(&w, seq);
    smki_wr_der_end(&w, val);
    smki_wr_der_end(&w, e);
    GUARD(smki_wr_check(&w, "the TLS extensions"));

    memset(out, 0, offsetof(smki_cert, der));
    out->profile = r->profile;
    out->usage = SMKI_USAGE_DS;
    out->role = -1;
    out->status = SMKI_STATUS_IN_USE;
    snprintf(out->env, sizeof out->env, "%s", v.env->name);
    memcpy(out->issuer_ski, v.ski, SMKI_KEYID_LEN);
    GUARD(smki_keyid_method2(r->csr->point, SMKI_POINT_LEN, out->ski));
    out->not_before = now;
    out->not_after = not_after;
    int fixed;
    GUARD(smki_ca_serial_new(out->serial, &fixed));
    ca_tbs t = {
        .profile = r->profile,
        .serial = out->serial,
        .issuer = v.name,
        .issuer_len = v.name_len,
        .not_before = now,
        .not_after = not_after,
        .subject = subject,
        .subject_len = subject_len,
        .spki = r->csr->spki,
        .spki_len = r->csr->spki_len,
        .ku = SMKI_KU_DIGITAL_SIGNATURE,
        .ski = out->ski,
        .aki = v.ski,
        .basic = 0,
        .policy = v.policy,
        .policy_len = v.policy_len,
        .policy_critical = 0, /* as the DCCKI CAs: TLS peers outside smart metering (docs/profiles.md) */
        .more_exts = exts,
        .more_exts_len = w.len,
    };
    GUARD(smki_ca_assemble(&t, v.key, out->der, sizeof out->der, &out->der_len));
    smki_lint_report *rep = malloc(sizeof *rep);
    ENSURE(rep, SMKI_E_NOMEM, "out of memory");
    int rc = smki_ca_lint_release(out->der, out->der_len, v.env, r->profile, rep);
    free(rep);
    GUARD(rc);
    if (party_out) snprintf(party_out, SMKI_PARTY_MAX, "%s", party);
    return 0;
}

typedef struct {
    const smki_ca_db *db;
    const smki_cert *cert;
} put_arg;

static int put_one(smki_txn *t, void *arg)
{
    const put_arg *a = arg;
    return smki_ca_cert_put(t, a->db, a->cert);
}

int smki_ca_issue_tls(smki_ca_issuer *is, smki_ca_db *db, const smki_tls_req *r, smki_cert *out,
                      char party_out[SMKI_PARTY_MAX])
{
    ENSURE(db, SMKI_E_INTERNAL, "smki_ca_issue_tls: no store");
    int rc = 0;
    /* A clash of 126-bit random serials does not happen in practice; the store
     * refuses one (NOOVERWRITE) and a fresh serial is drawn. */
    for (int attempt = 0; attempt < 3; attempt++) {
        GUARD(smki_ca_build_tls(is, r, out, party_out));
        put_arg a = {db, out};
        rc = smki_store_write(db->store, put_one, &a);
        uint8_t probe[SMKI_SERIAL_LEN];
        int fixed = 0;
        if (rc == SMKI_E_EXISTS && smki_ca_serial_new(probe, &fixed) == 0 && fixed) break; /* the test hook */
        if (rc != SMKI_E_EXISTS) break;
    }
    if (rc < 0) {
        smki_error_wrap("issued certificate not recorded, so not released");
        memset(out, 0, sizeof *out);
    }
    return rc;
}
