/* Public keys, certificates and signature verification. Everything here reads
 * bytes from outside: sizes are bounded, encodings checked, and only EC P-256 with
 * an uncompressed point on the curve is accepted. */
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

#include "hsm.h"

#define MAX_PUBLIC_FILE (256 * 1024)

/* Does marker occur in data[0..len)? Bounded by len: outside bytes carry no NUL. */
static int contains(const uint8_t *data, size_t len, const char *marker, size_t limit)
{
    size_t m = strlen(marker);
    for (size_t i = 0; i + m <= len && i < limit; i++)
        if (memcmp(data + i, marker, m) == 0) return 1;
    return 0;
}

static int looks_pem(const uint8_t *data, size_t len)
{
    return contains(data, len, "-----BEGIN ", 4096);
}

int smki_pub_check_p256(EVP_PKEY *pub, const char *what)
{
    ENSURE(pub != NULL, SMKI_E_INPUT, "%s: no key", what);
    ENSURE(EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC, SMKI_E_REFUSED, "%s: not an EC key (only EC P-256 is allowed)",
           what);
    char group[64] = "";
    size_t glen = 0;
    int ok = EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &glen);
    if (!ok) {
        /* legacy keys (libp11) answer through EC_KEY */
        ERR_clear_error();
        ok = EVP_PKEY_get_group_name(pub, group, sizeof group, &glen);
    }
    ENSURE_SSL(ok, SMKI_E_INPUT, "%s: EC key without a named curve", what);
    ENSURE(strcmp(group, "prime256v1") == 0, SMKI_E_REFUSED, "%s: curve %s refused: only P-256 (prime256v1)", what,
           group);
    return 0;
}

/* The point as encoded is uncompressed and on the curve. */
static int check_point(EVP_PKEY *pub, const char *what)
{
    char form[32] = "";
    if (EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, form, sizeof form, NULL))
        ENSURE(strcmp(form, "uncompressed") == 0, SMKI_E_REFUSED, "%s: %s point refused: must be uncompressed", what,
               form);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    ENSURE_SSL(ctx != NULL, SMKI_E_NOMEM, "out of memory");
    /* For a prime curve the quick check (point on the curve, not infinity) is the full
     * partial validation of NIST SP 800-56A 5.6.2.3.4; the order check adds nothing on
     * P-256 (cofactor 1) and costs a scalar multiplication. */
    int ok = EVP_PKEY_public_check_quick(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    ENSURE_SSL(ok, SMKI_E_INPUT, "%s: public point is not on P-256", what);
    return 0;
}

static int finish_pub(EVP_PKEY *pk, EVP_PKEY **out, const char *what)
{
    int rc = smki_pub_check_p256(pk, what);
    if (rc == 0) rc = check_point(pk, what);
    if (rc < 0) {
        EVP_PKEY_free(pk);
        return rc;
    }
    *out = pk;
    return 0;
}

int smki_cert_load(const uint8_t *data, size_t len, X509 **out)
{
    *out = NULL;
    ENSURE(data && len > 0, SMKI_E_INPUT, "empty certificate");
    ENSURE(len <= MAX_PUBLIC_FILE, SMKI_E_INPUT, "certificate of %zu octets is over the limit", len);
    X509 *x = NULL;
    if (looks_pem(data, len)) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        ENSURE_SSL(bio != NULL, SMKI_E_NOMEM, "out of memory");
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        ENSURE_SSL(x != NULL, SMKI_E_INPUT, "not a PEM certificate");
    } else {
        const unsigned char *p = data;
        x = d2i_X509(NULL, &p, (long)len);
        ENSURE_SSL(x != NULL, SMKI_E_INPUT, "not a DER certificate");
        if (p != data + len) {
            X509_free(x);
            return SMKI_FAIL(SMKI_E_INPUT, "%zu octet(s) of trailing data after the DER certificate",
                             (size_t)(data + len - p));
        }
    }
    *out = x;
    return 0;
}

int smki_pub_load(const uint8_t *data, size_t len, EVP_PKEY **out)
{
    *out = NULL;
    ENSURE(data && len > 0, SMKI_E_INPUT, "empty public key");
    ENSURE(len <= MAX_PUBLIC_FILE, SMKI_E_INPUT, "public key of %zu octets is over the limit", len);
    EVP_PKEY *pk = NULL;
    if (looks_pem(data, len)) {
        if (!contains(data, len, "-----BEGIN CERTIFICATE-----", len)) {
            BIO *bio = BIO_new_mem_buf(data, (int)len);
            ENSURE_SSL(bio != NULL, SMKI_E_NOMEM, "out of memory");
            pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
            BIO_free(bio);
            ENSURE_SSL(pk != NULL, SMKI_E_INPUT, "not a PEM public key or certificate");
            return finish_pub(pk, out, "public key");
        }
    } else {
        /* A well-formed SubjectPublicKeyInfo whose key does not decode is a bad key,
         * not a reason to try reading a certificate. */
        const unsigned char *p = data;
        X509_PUBKEY *spki = d2i_X509_PUBKEY(NULL, &p, (long)len);
        if (spki && p == data + len) {
            pk = X509_PUBKEY_get(spki);
            X509_PUBKEY_free(spki);
            ENSURE_SSL(pk != NULL, SMKI_E_INPUT, "public key does not decode: point not on P-256 or malformed");
            return finish_pub(pk, out, "public key");
        }
        X509_PUBKEY_free(spki);
        ERR_clear_error();
    }
    X509 *x = NULL;
    if (smki_cert_load(data, len, &x) < 0) {
        ERR_clear_error();
        return SMKI_FAIL(SMKI_E_INPUT, "not a public key or certificate (PEM, or DER SubjectPublicKeyInfo or "
                                       "certificate)");
    }
    pk = X509_get_pubkey(x);
    X509_free(x);
    ENSURE_SSL(pk != NULL, SMKI_E_INPUT, "certificate has an unreadable public key");
    return finish_pub(pk, out, "certificate's public key");
}

int smki_pub_load_file(const char *path, EVP_PKEY **out)
{
    *out = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    GUARD(smki_file_read(path, MAX_PUBLIC_FILE, &data, &len));
    int rc = smki_pub_load(data, len, out);
    free(data);
    if (rc < 0) return smki_error_wrap("%s", path);
    return 0;
}

int smki_cert_der(const uint8_t *data, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    ENSURE(out && out_len, SMKI_E_INTERNAL, "smki_cert_der: missing argument");
    X509 *x = NULL;
    GUARD(smki_cert_load(data, len, &x));
    int n = i2d_X509(x, NULL);
    int rc = 0;
    if (n <= 0) rc = SMKI_FAIL_SSL(SMKI_E_INPUT, "the certificate does not encode as DER");
    else if ((size_t)n > cap) rc = SMKI_FAIL(SMKI_E_INPUT, "a certificate of %d octets where at most %zu fit", n, cap);
    unsigned char *p = out;
    if (rc == 0 && i2d_X509(x, &p) != n) rc = SMKI_FAIL_SSL(SMKI_E_CRYPTO, "encoding a certificate as DER");
    X509_free(x);
    if (rc == 0) *out_len = (size_t)n;
    return rc;
}

int smki_cert_load_file(const char *path, X509 **out)
{
    *out = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    GUARD(smki_file_read(path, MAX_PUBLIC_FILE, &data, &len));
    int rc = smki_cert_load(data, len, out);
    free(data);
    if (rc < 0) return smki_error_wrap("%s", path);
    return 0;
}

int smki_pub_to_pem(EVP_PKEY *pub, char **pem, size_t *len)
{
    *pem = NULL;
    *len = 0;
    BIO *bio = BIO_new(BIO_s_mem());
    ENSURE_SSL(bio != NULL, SMKI_E_NOMEM, "out of memory");
    int rc = 0;
    ENSURE_SSL_GOTO(PEM_write_bio_PUBKEY(bio, pub) == 1, SMKI_E_CRYPTO, out, "cannot write the public key as PEM");
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    *pem = malloc((size_t)n + 1);
    ENSURE_GOTO(*pem != NULL, SMKI_E_NOMEM, out, "out of memory");
    memcpy(*pem, data, (size_t)n);
    (*pem)[n] = '\0';
    *len = (size_t)n;
out:
    BIO_free(bio);
    return rc;
}

int smki_pub_point(EVP_PKEY *pub, uint8_t point[SMKI_POINT_LEN])
{
    uint8_t buf[SMKI_POINT_LEN + 8];
    size_t len = 0;
    ENSURE_SSL(EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_PUB_KEY, buf, sizeof buf, &len) == 1,
               SMKI_E_CRYPTO, "cannot read the public point");
    if (len == SMKI_POINT_LEN && buf[0] == 0x04) {
        memcpy(point, buf, SMKI_POINT_LEN);
        return 0;
    }
    /* compressed as stored: ask for the uncompressed form through the encoder */
    unsigned char *enc = NULL;
    size_t elen = EVP_PKEY_get1_encoded_public_key(pub, &enc);
    int ok = elen == SMKI_POINT_LEN && enc[0] == 0x04;
    if (ok) memcpy(point, enc, SMKI_POINT_LEN);
    OPENSSL_free(enc);
    ENSURE(ok, SMKI_E_INPUT, "public point is not an uncompressed P-256 point");
    return 0;
}

/* ---- Signature forms --------------------------------------------------------------- */

/* One non-negative 32-octet integer as a DER INTEGER (X.690 8.3: minimal octets, a
 * leading 00 when the top bit is set). Writes at most 35 octets. */
static size_t der_integer(const uint8_t v[32], uint8_t *out)
{
    size_t skip = 0;
    while (skip < 31 && v[skip] == 0) skip++;
    size_t len = 32 - skip, pad = (v[skip] & 0x80) ? 1 : 0;
    out[0] = 0x02;
    out[1] = (uint8_t)(len + pad);
    out[2] = 0x00;
    memcpy(out + 2 + pad, v + skip, len);
    return 2 + pad + len;
}

/* Encoded here rather than through ECDSA_SIG and two BIGNUMs: it is on every token
 * signature's path, and the strict decoder below (OpenSSL's) checks the round trip. */
int smki_sig_raw_to_der(const uint8_t raw[64], uint8_t *der, size_t *der_len)
{
    uint8_t body[70];
    size_t n = der_integer(raw, body);
    n += der_integer(raw + 32, body + n);
    ENSURE(*der_len >= n + 2, SMKI_E_INTERNAL, "DER signature buffer too small");
    der[0] = 0x30;
    der[1] = (uint8_t)n; /* at most 70: the short form */
    memcpy(der + 2, body, n);
    *der_len = n + 2;
    return 0;
}

int smki_sig_der_to_raw(const uint8_t *der, size_t der_len, uint8_t raw[64])
{
    const unsigned char *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    ENSURE_SSL(s != NULL, SMKI_E_INPUT, "signature is not a DER ECDSA-Sig-Value");
    int rc = 0;
    ENSURE_GOTO(p == der + der_len, SMKI_E_INPUT, out, "trailing data after the DER signature");
    /* d2i accepts BER (e.g. long-form lengths); X.690 10.1 DER has one encoding only. */
    unsigned char *canon = NULL;
    int clen = i2d_ECDSA_SIG(s, &canon);
    int same = clen > 0 && (size_t)clen == der_len && memcmp(canon, der, der_len) == 0;
    OPENSSL_free(canon);
    ENSURE_GOTO(same, SMKI_E_INPUT, out, "signature is BER, not DER (non-minimal encoding)");
    const BIGNUM *r, *sv;
    ECDSA_SIG_get0(s, &r, &sv);
    ENSURE_GOTO(BN_num_bytes(r) <= 32 && BN_num_bytes(sv) <= 32, SMKI_E_INPUT, out,
                "signature values are too large for P-256");
    BN_bn2binpad(r, raw, 32);
    BN_bn2binpad(sv, raw + 32, 32);
out:
    ECDSA_SIG_free(s);
    return rc;
}

/* ---- Verification ------------------------------------------------------------------- */

int smki_verify_digest(EVP_PKEY *pub, const uint8_t digest[32], smki_sigfmt fmt, const uint8_t *sig, size_t sig_len)
{
    uint8_t der[SMKI_SIG_MAX];
    size_t der_len = sizeof der;
    if (fmt == SMKI_SIG_RAW) {
        ENSURE(sig_len == SMKI_SIG_RAW_LEN, SMKI_E_INPUT, "raw signature must be 64 octets (r||s), not %zu",
               sig_len);
        GUARD(smki_sig_raw_to_der(sig, der, &der_len));
        sig = der;
        sig_len = der_len;
    } else {
        ENSURE(sig_len > 0 && sig_len <= SMKI_SIG_MAX, SMKI_E_INPUT, "DER signature of %zu octets is malformed",
               sig_len);
        uint8_t raw[64];
        GUARD(smki_sig_der_to_raw(sig, sig_len, raw)); /* strict DER shape before OpenSSL sees it */
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    ENSURE_SSL(ctx != NULL, SMKI_E_NOMEM, "out of memory");
    int rc = 0;
    ENSURE_SSL_GOTO(EVP_PKEY_verify_init(ctx) == 1, SMKI_E_CRYPTO, out, "cannot prepare verification");
    int v = EVP_PKEY_verify(ctx, sig, sig_len, digest, 32);
    ERR_clear_error();
    ENSURE_GOTO(v == 1, SMKI_E_VERIFY, out, "signature does not verify");
out:
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

int smki_verify(EVP_PKEY *pub, const uint8_t *msg, size_t len, smki_sigfmt fmt, const uint8_t *sig, size_t sig_len)
{
    uint8_t digest[32];
    ENSURE_SSL(EVP_Digest(msg, len, digest, NULL, EVP_sha256(), NULL) == 1, SMKI_E_CRYPTO, "SHA-256 failed");
    return smki_verify_digest(pub, digest, fmt, sig, sig_len);
}
