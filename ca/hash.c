/* The digest issuance takes per certificate, through a digest fetched once: the
 * one-shot SHA256() of OpenSSL 3 fetches its implementation on every call, which
 * costs locks and name look-ups that the hash of a few hundred octets does not need.
 * (SHA-1, for key identifiers, is fetched once in base/keyid.c.) */
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ca_private.h"

static CRYPTO_ONCE once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MD *sha256; /* never freed: shared by all threads for the process */

static void fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int smki_ca_sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
    ENSURE(CRYPTO_THREAD_run_once(&once, fetch) == 1 && sha256, SMKI_E_CRYPTO, "cannot fetch SHA-256");
    ENSURE_SSL(EVP_Digest(p, n, out, NULL, sha256, NULL) == 1, SMKI_E_CRYPTO, "SHA-256 failed");
    return 0;
}
