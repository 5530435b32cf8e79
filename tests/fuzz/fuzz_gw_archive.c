/* libFuzzer target for the gateway's archive reader (smki_gw_archive_verify in
 * gbcs/gwlog.c): an archive file comes back from years of storage and is read as outside
 * bytes. Beyond not crashing: a refusal is SMKI_E_INPUT or SMKI_E_VERIFY; the input signed
 * here with a fixed key and closed with its signature line verifies exactly when it is an
 * archive whose header counts its lines, and then the count is its lines but the header. */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_gw_archive: invariant failed: %s\n", what);
    abort();
}

static EVP_PKEY *fixed_key(void)
{
    static EVP_PKEY *k;
    if (!k) k = EVP_EC_gen("P-256");
    require(k != NULL, "a P-256 key");
    return k;
}

/* data || "signature " hex(DER ECDSA over the canonical data) "\n" */
static uint8_t *signed_archive(const uint8_t *data, size_t size, size_t *out_len)
{
    uint8_t *canon = NULL, sig[128];
    size_t clen = 0, sig_len = sizeof sig;
    require(smki_signed_file_canonical(data, size, &canon, &clen) == 0, "the canonical form");
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    require(ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, fixed_key()) == 1 &&
                EVP_DigestSign(ctx, sig, &sig_len, canon, clen) == 1,
            "signing");
    EVP_MD_CTX_free(ctx);
    free(canon);
    uint8_t *out = malloc(size + 10 + 2 * sig_len + 1);
    require(out != NULL, "memory");
    memcpy(out, data, size);
    memcpy(out + size, "signature ", 10);
    smki_hex_encode(sig, sig_len, (char *)out + size + 10, 0);
    out[size + 10 + 2 * sig_len] = '\n';
    *out_len = size + 10 + 2 * sig_len + 1;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16) return 0;
    size_t records = 99;
    smki_error_clear();
    int rc = smki_gw_archive_verify(data, size, fixed_key(), &records);
    require(rc == 0 || rc == SMKI_E_INPUT || rc == SMKI_E_VERIFY, "a refusal is INPUT or VERIFY");
    smki_error_clear();
    size_t len;
    uint8_t *a = signed_archive(data, size, &len);
    rc = smki_gw_archive_verify(a, len, fixed_key(), &records);
    require(rc == 0 || rc == SMKI_E_INPUT, "a correctly signed input is refused only as not an archive");
    if (rc == 0) {
        size_t lines = 0;
        for (size_t i = 0; i < size; i++) lines += data[i] == '\n';
        require(lines >= 1 && records == lines - 1, "the count is the lines after the header");
        require(size > 0 && data[size - 1] == '\n', "the signed part ends with a line end");
    }
    smki_error_clear();
    free(a);
    return 0;
}
