/* libFuzzer target for public key and certificate loading (hsm/pub.c). The first
 * octet picks how the rest reaches the loaders: as-is (DER, or PEM text the fuzzer
 * wrote), or base64 in a PUBLIC KEY or CERTIFICATE PEM block, so both paths are fuzzed
 * from DER seeds. Whatever loads is an uncompressed P-256 key on the curve that
 * survives PEM, and a certificate that loads gives the key smki_pub_load gave. */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/hsm.h"

enum { AS_IS, PEM_PUBLIC_KEY, PEM_CERTIFICATE, MODES };

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_pubkey: invariant failed: %s\n", what);
    abort();
}

static size_t append(uint8_t *out, size_t at, const char *s)
{
    size_t n = strlen(s);
    memcpy(out + at, s, n);
    return at + n;
}

/* Base64 in lines of 64 between BEGIN/END lines, in a buffer of exactly *len
 * octets: no terminator, as the API takes (data, len) and must not look further. */
static uint8_t *pem_wrap(const char *label, const uint8_t *der, size_t der_len, size_t *len)
{
    size_t b64_len = 4 * ((der_len + 2) / 3);
    size_t cap = 2 * (strlen(label) + 32) + b64_len + b64_len / 64 + 2;
    uint8_t *out = malloc(cap);
    uint8_t *b64 = malloc(b64_len + 1);
    require(out && b64, "malloc");
    require((size_t)EVP_EncodeBlock(b64, der, (int)der_len) == b64_len, "base64 length");
    size_t at = append(out, 0, "-----BEGIN ");
    at = append(out, at, label);
    at = append(out, at, "-----\n");
    for (size_t i = 0; i < b64_len; i += 64) {
        size_t n = b64_len - i < 64 ? b64_len - i : 64;
        memcpy(out + at, b64 + i, n);
        at += n;
        out[at++] = '\n';
    }
    at = append(out, at, "-----END ");
    at = append(out, at, label);
    at = append(out, at, "-----\n");
    require(at <= cap, "PEM fits its buffer");
    free(b64);
    *len = at;
    return out;
}

/* smki_fail_ssl drains OpenSSL's queue into its message; what a call leaves there
 * would turn up in the next, unrelated failure's message. */
static void require_err_queue_empty(const char *what)
{
    require(ERR_peek_error() == 0, what);
}

static void check_key(EVP_PKEY *pk)
{
    require(smki_pub_check_p256(pk, "fuzzed key") == 0, "a loaded key is EC P-256");
    uint8_t point[SMKI_POINT_LEN];
    require(smki_pub_point(pk, point) == 0, "a loaded key has a point");
    require(point[0] == 0x04, "the point is uncompressed");
    require_err_queue_empty("check_p256 and pub_point leave no OpenSSL errors");

    /* Written as PEM (NUL-terminated text, as from a file) it loads as the same key. */
    char *pem = NULL;
    size_t pem_len = 0;
    require(smki_pub_to_pem(pk, &pem, &pem_len) == 0, "a loaded key writes as PEM");
    require(pem_len == strlen(pem), "PEM length is its text");
    EVP_PKEY *again = NULL;
    require(smki_pub_load((const uint8_t *)pem, pem_len, &again) == 0, "the key's PEM loads");
    require_err_queue_empty("to_pem and loading it leave no OpenSSL errors");
    require(EVP_PKEY_eq(pk, again) == 1, "the key's PEM loads as the same key");
    uint8_t point2[SMKI_POINT_LEN];
    require(smki_pub_point(again, point2) == 0 && memcmp(point, point2, sizeof point) == 0,
            "the PEM round trip keeps the point");
    EVP_PKEY_free(again);
    free(pem);
}

static void check_refusal(int rc, const char *what)
{
    require(rc == SMKI_E_INPUT || rc == SMKI_E_REFUSED, what);
    require(smki_error_code() == rc, "error context holds the code");
    require(smki_error_msg()[0] != '\0', "refusal has a message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    int mode = data[0] % MODES;
    size_t len = size - 1;
    uint8_t *buf;
    if (mode == PEM_PUBLIC_KEY) {
        buf = pem_wrap("PUBLIC KEY", data + 1, len, &len);
    } else if (mode == PEM_CERTIFICATE) {
        buf = pem_wrap("CERTIFICATE", data + 1, len, &len);
    } else {
        buf = malloc(len ? len : 1);
        require(buf != NULL, "malloc");
        if (len) memcpy(buf, data + 1, len);
    }

    EVP_PKEY *pk = NULL;
    smki_error_clear();
    int rc = smki_pub_load(buf, len, &pk);
    require_err_queue_empty("smki_pub_load leaves no OpenSSL errors");
    if (rc == 0) {
        require(pk != NULL, "success gives a key");
        check_key(pk);
    } else {
        check_refusal(rc, "smki_pub_load refuses with SMKI_E_INPUT or SMKI_E_REFUSED");
    }

    X509 *x = NULL;
    smki_error_clear();
    int crc = smki_cert_load(buf, len, &x);
    require_err_queue_empty("smki_cert_load leaves no OpenSSL errors");
    if (crc == 0) {
        require(x != NULL, "success gives a certificate");
        /* The same octets as a public key gave this certificate's key, if any. */
        if (rc == 0) require(EVP_PKEY_eq(pk, X509_get0_pubkey(x)) == 1, "pub_load takes the certificate's key");
        X509_free(x);
    } else {
        require(crc == SMKI_E_INPUT, "smki_cert_load refuses with SMKI_E_INPUT");
        require(smki_error_code() == crc, "error context holds the code");
    }
    EVP_PKEY_free(pk);
    free(buf);
    /* OpenSSL 3.0 keeps error strings in the thread's queue slots after they are
     * drained and frees them when a slot is reused: reachable and bounded, but it
     * unbalances mallocs and frees per input, and libFuzzer then runs a full leak
     * pass after nearly every input (15 times slower). Release the thread's state
     * so each input is balanced; a real leak is still unreachable and reported. */
    OPENSSL_thread_stop();
    return 0;
}
