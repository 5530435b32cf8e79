/* libFuzzer target for the two ECDSA signature forms and verification (hsm/pub.c):
 * DER and raw r||s convert into each other without loss, conversions never write
 * past the buffer they are given, and a signature the fuzzer made never verifies
 * under a key it has never seen, nor fails in any way but SMKI_E_VERIFY/SMKI_E_INPUT. */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/hsm.h"

/* d2i_ECDSA_SIG (OpenSSL 3.0) takes a length in long form where short form is due
 * (30 81 44 ...), which DER forbids (X.690 10.1); smki_sig_der_to_raw inherits that.
 * Set to 1 to abort on such input once the library refuses it. */
#define REQUIRE_CANONICAL_DER 1

static EVP_PKEY *key;
static uint8_t digest[32];
static uint8_t valid_der[SMKI_SIG_MAX];
static size_t valid_der_len;
static uint8_t valid_raw[SMKI_SIG_RAW_LEN];

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_sig: invariant failed: %s\n", what);
    abort();
}

/* One key for the whole run, and one signature it made, so that "never verifies"
 * is not vacuous: the verifier does accept the real thing. */
static void init_once(void)
{
    if (key) return;
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    require(key != NULL, "P-256 key generation");
    static const char label[] = "smki fuzz_sig fixed digest";
    require(EVP_Digest(label, sizeof label - 1, digest, NULL, EVP_sha256(), NULL) == 1, "SHA-256");
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    valid_der_len = sizeof valid_der;
    require(ctx && EVP_PKEY_sign_init(ctx) == 1 && EVP_PKEY_sign(ctx, valid_der, &valid_der_len, digest, 32) == 1,
            "signing the fixed digest");
    EVP_PKEY_CTX_free(ctx);
    require(smki_sig_der_to_raw(valid_der, valid_der_len, valid_raw) == 0, "own signature converts to raw");
    require(smki_verify_digest(key, digest, SMKI_SIG_DER, valid_der, valid_der_len) == 0, "own DER signature verifies");
    require(smki_verify_digest(key, digest, SMKI_SIG_RAW, valid_raw, sizeof valid_raw) == 0,
            "own raw signature verifies");
}

/* raw -> DER into a buffer of exactly the octets needed, then DER -> raw. */
static void check_raw_round_trip(const uint8_t raw[64], uint8_t der_out[SMKI_SIG_MAX], size_t *der_out_len)
{
    uint8_t der[SMKI_SIG_MAX];
    size_t der_len = sizeof der;
    require(smki_sig_raw_to_der(raw, der, &der_len) == 0, "any 64 octets convert to DER");
    require(der_len >= 8 && der_len <= SMKI_SIG_MAX, "DER of a raw signature is 8..72 octets");

    uint8_t back[64];
    require(smki_sig_der_to_raw(der, der_len, back) == 0, "DER from raw converts back");
    require(memcmp(back, raw, 64) == 0, "raw -> DER -> raw is the identity");

    uint8_t *exact = malloc(der_len);
    require(exact != NULL, "malloc");
    size_t exact_len = der_len;
    require(smki_sig_raw_to_der(raw, exact, &exact_len) == 0 && exact_len == der_len &&
                memcmp(exact, der, der_len) == 0,
            "raw -> DER fits a buffer of exactly its length");
    exact_len = der_len - 1;
    require(smki_sig_raw_to_der(raw, exact, &exact_len) < 0, "raw -> DER refuses a buffer one octet short");
    free(exact);

    if (der_out) {
        memcpy(der_out, der, der_len);
        *der_out_len = der_len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();

    /* DER -> raw -> DER -> raw. */
    uint8_t raw[64];
    smki_error_clear();
    int der_rc = smki_sig_der_to_raw(data, size, raw);
    require(ERR_peek_error() == 0, "der_to_raw leaves no OpenSSL errors");
    if (der_rc == 0) {
        uint8_t der[SMKI_SIG_MAX];
        size_t der_len = 0;
        check_raw_round_trip(raw, der, &der_len);
        int canonical = der_len == size && memcmp(der, data, size) == 0;
        if (REQUIRE_CANONICAL_DER) require(canonical, "accepted DER is the canonical encoding");
    } else {
        require(der_rc == SMKI_E_INPUT, "a refused DER signature is SMKI_E_INPUT");
        require(smki_error_code() == der_rc, "error context holds the code");
    }

    /* 64 octets are a raw signature: raw -> DER -> raw. */
    if (size == SMKI_SIG_RAW_LEN) check_raw_round_trip(data, NULL, NULL);

    /* Verification never accepts what the fuzzer made, and only fails as promised. */
    int is_valid_der = size == valid_der_len && memcmp(data, valid_der, size) == 0;
    int rc = smki_verify_digest(key, digest, SMKI_SIG_DER, data, size);
    require(ERR_peek_error() == 0, "DER verify leaves no OpenSSL errors");
    if (is_valid_der) {
        require(rc == 0, "own DER signature verifies");
    } else {
        require(rc == SMKI_E_VERIFY || rc == SMKI_E_INPUT, "DER verify fails with SMKI_E_VERIFY or SMKI_E_INPUT");
        if (der_rc < 0 || size > SMKI_SIG_MAX) require(rc == SMKI_E_INPUT, "malformed DER is SMKI_E_INPUT");
    }

    int is_valid_raw = size == sizeof valid_raw && memcmp(data, valid_raw, size) == 0;
    rc = smki_verify_digest(key, digest, SMKI_SIG_RAW, data, size);
    require(ERR_peek_error() == 0, "raw verify leaves no OpenSSL errors");
    if (is_valid_raw)
        require(rc == 0, "own raw signature verifies");
    else if (size == SMKI_SIG_RAW_LEN)
        require(rc == SMKI_E_VERIFY, "64 octets that are not the signature fail with SMKI_E_VERIFY");
    else
        require(rc == SMKI_E_INPUT, "raw signature of the wrong length is SMKI_E_INPUT");
    /* Keep mallocs and frees balanced per input (see fuzz_pubkey.c). */
    OPENSSL_thread_stop();
    return 0;
}
