/* RFC 5280 4.2.1.2 method 2 key identifiers, for every module that writes, checks or
 * looks up a certificate or token key by one. SHA-1 is fetched once: the one-shot
 * SHA1() of OpenSSL 3 fetches it at every call, a cost issuance pays per certificate. */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base.h"

static CRYPTO_ONCE once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MD *sha1; /* never freed: shared by all threads for the process */

static void fetch_sha1(void)
{
    sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
}

int smki_keyid_method2(const uint8_t *key, size_t len, uint8_t id[SMKI_KEYID_LEN])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    ENSURE(CRYPTO_THREAD_run_once(&once, fetch_sha1) == 1 && sha1, SMKI_E_CRYPTO,
           "cannot fetch SHA-1 (RFC 5280 method 2 key identifiers need it)");
    ENSURE_SSL(EVP_Digest(key, len, md, NULL, sha1, NULL) == 1, SMKI_E_CRYPTO,
               "SHA-1 of a %zu-octet public key failed", len);
    memcpy(id, md + 20 - SMKI_KEYID_LEN, SMKI_KEYID_LEN);
    id[0] = (uint8_t)(0x40 | (id[0] & 0x0f)); /* the 4-bit type field 0100 */
    return 0;
}
