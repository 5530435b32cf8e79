/* Certificates for GBCS verification: what a certificate says about its subject (by
 * the policy linter), and a folder of certificates found by EUI-64 and usage or by
 * public key. verify.c uses them to check whole messages. */
#include "gbcs.h"

#include <dirent.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int asn1_time_to_time_t(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    ENSURE_SSL(t && ASN1_TIME_to_tm(t, &tm) == 1, SMKI_E_INPUT, "certificate time does not decode");
    *out = timegm(&tm);
    return 0;
}

int smki_gbcs_cert_info_get(X509 *cert, smki_gbcs_cert_info *out)
{
    memset(out, 0, sizeof *out);
    out->role = -1;
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);
    ENSURE_SSL(n > 0, SMKI_E_INPUT, "certificate does not encode");
    smki_lint_report *r = calloc(1, sizeof *r);
    if (!r) {
        OPENSSL_free(der);
        return SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    }
    int rc = smki_lint_der(der, (size_t)n, NULL, r);
    OPENSSL_free(der);
    if (rc == 0) {
        out->has_id = r->has_id;
        out->id = r->id;
        out->key_usage = r->key_usage;
        out->role = r->role;
        out->is_device = r->profile == SMKI_PROFILE_DEVICE;
        if (!r->has_id) out->is_device = X509_NAME_entry_count(X509_get_subject_name(cert)) == 0;
    }
    free(r);
    GUARD(rc);
    GUARD(asn1_time_to_time_t(X509_get0_notBefore(cert), &out->not_before));
    GUARD(asn1_time_to_time_t(X509_get0_notAfter(cert), &out->not_after));
    return 0;
}

static void fmt_time(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int smki_gbcs_cert_check_time(X509 *cert, time_t at, const char *what)
{
    time_t nb = 0, na = 0;
    GUARD(asn1_time_to_time_t(X509_get0_notBefore(cert), &nb));
    GUARD(asn1_time_to_time_t(X509_get0_notAfter(cert), &na));
    if (at < nb || at > na) {
        char a[32], b[32], c[32];
        fmt_time(at, a);
        fmt_time(nb, b);
        fmt_time(na, c);
        return SMKI_FAIL(SMKI_E_REFUSED, "%s is not valid at %s (valid %s to %s)", what, a, b, c);
    }
    return 0;
}

/* ---- The folder ---------------------------------------------------------------------- */
typedef struct {
    X509 *cert;
    smki_gbcs_cert_info info;
    int canonical_ds, canonical_ka; /* named <eui>-ds.pem / <eui>-ka.pem after its own EUI-64 */
    char name[256];
} dir_entry;

struct smki_gbcs_certdir {
    dir_entry *e;
    size_t n, cap;
};

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int add_file(smki_gbcs_certdir *d, const char *dir, const char *name)
{
    char path[4096];
    ENSURE((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) < sizeof path, SMKI_E_USAGE, "path too long: %s/%s",
           dir, name);
    uint8_t *data = NULL;
    size_t len = 0;
    if (smki_file_read(path, 1u << 20, &data, &len) < 0) {
        smki_error_clear();
        return 0; /* unreadable or too large: not a certificate of ours */
    }
    X509 *cert = NULL;
    int rc = smki_cert_load(data, len, &cert);
    free(data);
    if (rc < 0) {
        smki_error_clear(); /* keys and other files */
        return 0;
    }
    smki_gbcs_cert_info info;
    if (smki_gbcs_cert_info_get(cert, &info) < 0 || !info.has_id) {
        smki_error_clear();
        X509_free(cert);
        return 0;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 64;
        dir_entry *e = realloc(d->e, cap * sizeof *e);
        if (!e) {
            X509_free(cert);
            return SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
        }
        d->e = e;
        d->cap = cap;
    }
    dir_entry *e = &d->e[d->n++];
    memset(e, 0, sizeof *e);
    e->cert = cert;
    e->info = info;
    snprintf(e->name, sizeof e->name, "%s", name);
    char hex[17];
    smki_hex_encode(info.id.b, 8, hex, 0);
    char want[32];
    snprintf(want, sizeof want, "%s-ds.pem", hex);
    e->canonical_ds = strcmp(name, want) == 0;
    snprintf(want, sizeof want, "%s-ka.pem", hex);
    e->canonical_ka = strcmp(name, want) == 0;
    return 0;
}

void smki_gbcs_certdir_free(smki_gbcs_certdir *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) X509_free(d->e[i].cert);
    free(d->e);
    free(d);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const dir_entry *)a)->name, ((const dir_entry *)b)->name);
}

int smki_gbcs_certdir_open(const char *dir, smki_gbcs_certdir **out)
{
    *out = NULL;
    DIR *dh = opendir(dir);
    ENSURE(dh, SMKI_E_NOTFOUND, "certificate folder %s cannot be opened", dir);
    smki_gbcs_certdir *d = calloc(1, sizeof *d);
    if (!d) {
        closedir(dh);
        return SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.') continue;
        if (!(ends_with(name, ".pem") || ends_with(name, ".der") || ends_with(name, ".crt") ||
              ends_with(name, ".cer")))
            continue;
        if ((rc = add_file(d, dir, name)) < 0) break;
    }
    closedir(dh);
    if (rc < 0) {
        smki_gbcs_certdir_free(d);
        return rc;
    }
    if (d->n) qsort(d->e, d->n, sizeof *d->e, by_name); /* same answer whatever readdir's order */
    *out = d;
    return 0;
}

size_t smki_gbcs_certdir_count(const smki_gbcs_certdir *d)
{
    return d ? d->n : 0;
}

int smki_gbcs_certdir_find(const smki_gbcs_certdir *d, const uint8_t title[8], smki_key_usage usage, X509 **cert)
{
    return smki_gbcs_certdir_find_info(d, title, usage, cert, NULL);
}

int smki_gbcs_certdir_find_info(const smki_gbcs_certdir *d, const uint8_t title[8], smki_key_usage usage, X509 **cert,
                                const smki_gbcs_cert_info **info)
{
    *cert = NULL;
    if (info) *info = NULL;
    unsigned bit = usage == SMKI_USAGE_DS ? SMKI_KU_DIGITAL_SIGNATURE : SMKI_KU_KEY_AGREEMENT;
    const dir_entry *found = NULL;
    size_t matches = 0;
    for (size_t i = 0; i < d->n; i++) {
        const dir_entry *e = &d->e[i];
        if (memcmp(e->info.id.b, title, 8) != 0 || !(e->info.key_usage & bit)) continue;
        int canonical = usage == SMKI_USAGE_DS ? e->canonical_ds : e->canonical_ka;
        if (canonical) {
            *cert = e->cert; /* the keystore's own name wins (e.g. over a -pp-ka.pem cell credential) */
            if (info) *info = &e->info;
            return 0;
        }
        if (!found) found = e;
        matches++;
    }
    char eui[SMKI_EUI64_TEXT_MAX];
    smki_eui64_t id = smki_gbcs_eui(title);
    smki_eui64_format(&id, SMKI_EUI64_PLAIN, eui);
    const char *u = usage == SMKI_USAGE_DS ? "DS" : "KA";
    ENSURE(found, SMKI_E_NOTFOUND, "no %s certificate for %s in the trust folder", u, eui);
    ENSURE(matches == 1, SMKI_E_REFUSED,
           "%zu %s certificates for %s in the trust folder and none named %s-%s.pem: ambiguous", matches, u, eui,
           eui, usage == SMKI_USAGE_DS ? "ds" : "ka");
    *cert = found->cert;
    if (info) *info = &found->info;
    return 0;
}

int smki_gbcs_certdir_find_pubkey(const smki_gbcs_certdir *d, EVP_PKEY *pub, smki_key_usage usage, X509 **cert,
                                  const smki_gbcs_cert_info **info)
{
    *cert = NULL;
    if (info) *info = NULL;
    unsigned bit = usage == SMKI_USAGE_DS ? SMKI_KU_DIGITAL_SIGNATURE : SMKI_KU_KEY_AGREEMENT;
    for (size_t i = 0; i < d->n; i++) {
        const dir_entry *e = &d->e[i];
        EVP_PKEY *k = X509_get0_pubkey(e->cert);
        if (!(e->info.key_usage & bit) || !k || EVP_PKEY_eq(k, pub) != 1) continue;
        *cert = e->cert;
        if (info) *info = &e->info;
        return 0;
    }
    ERR_clear_error(); /* EVP_PKEY_eq of unlike keys may leave errors behind */
    return SMKI_FAIL(SMKI_E_NOTFOUND, "no %s certificate in the trust folder holds this public key",
                     usage == SMKI_USAGE_DS ? "DS" : "KA");
}
