/* libFuzzer target for the release check by construction (ca/lint_fast.c), held to
 * the full linter: whatever smki_ca_fast_check proves must lint clean as a device
 * certificate (smki_lint_der), else abort. The harness sets up a test hierarchy of
 * software keys once and issues a DS and a KA device certificate; the input says how
 * to damage one of them, so that every run starts from a certificate the template
 * matches:
 *   octet 0        which certificate (bit 0), and how the length changes (bits 1-2:
 *                  none, cut the last octet(s) given by octet 1, append octet 1)
 *   then triples   offset (2 octets, big-endian, modulo the length), value to XOR
 * The check must also be deterministic and never read past the input (ASan). */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca/ca.h"
#include "ca/ca_private.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_fast_lint: invariant failed: %s\n", what);
    abort();
}

typedef struct {
    smki_csr *csr;
    smki_cert cert;
} issued_t;

static smki_ca_issuer *issuer;
static issued_t issued[2];
static smki_lint_report report;

static void write_key(const char *path)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    FILE *f = fopen(path, "w");
    require(pk && f && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1, "a software key");
    fclose(f);
    EVP_PKEY_free(pk);
}

static smki_csr *device_csr(unsigned ku_bit)
{
    static const uint8_t SAN[] = {0x30, 0x29, 0xa0, 0x27, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08,
                                  0x04, 0xa0, 0x1b, 0x30, 0x19, 0x06, 0x0d, 0x2a, 0x86, 0x3a, 0x00, 0x01, 0x84,
                                  0x8f, 0xb9, 0x0f, 0x01, 0x02, 0x02, 0x01, 0x04, 0x08, 0x00, 0xdb, 0x12, 0x34,
                                  0x56, 0x78, 0x90, 0xa0};
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    require(key && req && exts && bits && os && X509_REQ_set_pubkey(req, key) == 1 &&
                ASN1_BIT_STRING_set_bit(bits, (int)ku_bit, 1) == 1 && ASN1_OCTET_STRING_set(os, SAN, sizeof SAN) == 1,
            "a CSR");
    sk_X509_EXTENSION_push(exts, X509V3_EXT_i2d(NID_key_usage, 1, bits));
    sk_X509_EXTENSION_push(exts, X509_EXTENSION_create_by_NID(NULL, NID_subject_alt_name, 1, os));
    require(X509_REQ_add_extensions(req, exts) == 1 && X509_REQ_sign(req, key, EVP_sha256()) > 0, "a signed CSR");
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    smki_csr *c = NULL;
    require(n > 0 && smki_csr_parse(der, (size_t)n, &c) == 0, "the CSR parses");
    OPENSSL_free(der);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ASN1_BIT_STRING_free(bits);
    ASN1_OCTET_STRING_free(os);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return c;
}

static void setup(void)
{
    static const char *const KINDS[] = {"smki_root", "smki_oca", "smki_dca", "dccki_root", "dccki_ica"};
    char dir[] = "/tmp/smki-fuzz-fast-lint.XXXXXX", text[4096], path[1100];
    require(mkdtemp(dir) != NULL, "a scratch folder");
    size_t len = (size_t)snprintf(text, sizeof text, "[ca.test]\n");
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s.pem", dir, KINDS[i]);
        write_key(path);
        len += (size_t)snprintf(text + len, sizeof text - len, "%s_key = file:%s\n", KINDS[i], path);
    }
    smki_conf *conf = NULL;
    smki_store *s = NULL;
    smki_ca_db db;
    smki_ca_init_opts io = {NULL, dir, 0, NULL, NULL};
    smki_ca_init_report rep;
    snprintf(path, sizeof path, "%s/store", dir);
    require(smki_conf_parse((const uint8_t *)text, len, "fuzz", &conf) == 0 && smki_store_open(path, NULL, &s) == 0 &&
                smki_ca_db_open(s, &db) == 0 && smki_ca_init(&db, "test", conf, &io, &rep) == 0 &&
                smki_ca_issuer_open(&db, "test", SMKI_PROFILE_DEVICE, NULL, &issuer) == 0,
            "a test hierarchy");
    for (int i = 0; i < 2; i++) {
        issued[i].csr = device_csr(i ? 4 : 0); /* digitalSignature, keyAgreement */
        smki_issue_req r = {issued[i].csr, SMKI_PROFILE_DEVICE, -1, NULL, NULL, 0, 0};
        require(smki_ca_build(issuer, &r, &issued[i].cert) == 0 && smki_ca_last_release_was_fast(),
                "the issued certificate is released by the template check");
    }
    smki_store_close(s);
    smki_conf_free(conf);
    snprintf(text, sizeof text, "rm -rf '%s'", dir);
    require(system(text) == 0, "the scratch folder removed");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!issuer) setup();
    if (size < 2) return 0;
    const issued_t *is = &issued[data[0] & 1];
    const smki_csr *csr = is->csr;
    size_t len = is->cert.der_len;
    uint8_t *der = malloc(SMKI_CERT_DER_MAX + 256);
    require(der != NULL, "memory");
    memcpy(der, is->cert.der, len);
    switch ((data[0] >> 1) & 3) {
    case 1: len -= data[1] % len; break;
    case 2:
        der[len] = data[1];
        len++;
        break;
    default: break;
    }
    for (size_t i = 2; i + 3 <= size; i += 3) {
        size_t at = ((size_t)data[i] << 8 | data[i + 1]) % len;
        der[at] ^= data[i + 2];
    }
    /* an exact-size copy, so that ASan sees any read past the certificate */
    uint8_t *exact = malloc(len);
    require(exact != NULL, "memory");
    memcpy(exact, der, len);
    const ca_fast_ref *ref = smki_ca_issuer_fast_ref(issuer, csr->usage);
    const char *why = NULL, *why2 = NULL;
    int fast = smki_ca_fast_check(ref, exact, len, csr->point, csr->hw_serial.b, &why);
    require(fast == smki_ca_fast_check(ref, exact, len, csr->point, csr->hw_serial.b, &why2) && why == why2,
            "the check is deterministic");
    require(fast ? why == NULL : why != NULL, "a certificate not proven says why");
    if (fast) {
        require(smki_lint_der(exact, len, smki_ca_issuer_env(issuer), &report) == 0, "the full linter runs");
        require(smki_lint_is_clean(&report) && report.profile == SMKI_PROFILE_DEVICE,
                "what the template check proves, the full linter finds clean");
    }
    free(exact);
    free(der);
    return 0;
}
