/* The digests issuance takes per certificate, through digests fetched once: the
 * one-shot SHA256() and SHA1() of OpenSSL 3 fetch their implementation on every
 * call, which costs locks and name look-ups that the hash of a few hundred octets
 * does not need. */
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ca_private.h"

static CRYPTO_ONCE once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MD *sha256, *sha1; /* never freed: shared by all threads for the process */

static void fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
}

static int digest(int is_sha256, const uint8_t *p, size_t n, uint8_t *out)
{
    ENSURE(CRYPTO_THREAD_run_once(&once, fetch) == 1 && sha256 && sha1, SMKI_E_CRYPTO, "cannot fetch SHA-256, SHA-1");
    ENSURE_SSL(EVP_Digest(p, n, out, NULL, is_sha256 ? sha256 : sha1, NULL) == 1, SMKI_E_CRYPTO, "%s failed",
               is_sha256 ? "SHA-256" : "SHA-1");
    return 0;
}

int ca_sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
    return digest(1, p, n, out);
}

int ca_sha1(const uint8_t *p, size_t n, uint8_t out[20])
{
    return digest(0, p, n, out);
}
