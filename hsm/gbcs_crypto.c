/* The GBCS primitives of reference §5: the SP 800-56A single-step KDF that turns a
 * static ECDH secret into a per-message MAC key, and the 12-octet AES-128-GCM MAC
 * over a General Signing APDU. OpenSSL EVP does the cryptography; this file only
 * lays out the bytes and wipes the shared secret, digests and keys once spent. */
#include "hsm.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

/* Fetch SHA-256 and AES-128-GCM once per process: OpenSSL 3 otherwise looks the
 * implementation up in the provider store on every EVP_DigestInit/EncryptInit,
 * which costs more than hashing a short OtherInfo. The fetched methods live for
 * the life of the process (no cleanup needed; they stay reachable). */
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;
static EVP_CIPHER *aes128gcm_cipher;

static void fetch_methods(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    aes128gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
}

/* The fetched methods, or NULL having recorded why. */
static const EVP_MD *sha256(void)
{
    pthread_once(&fetch_once, fetch_methods);
    if (!sha256_md) SMKI_FAIL_SSL(SMKI_E_CRYPTO, "SHA-256 is not available from the OpenSSL providers");
    return sha256_md;
}

static const EVP_CIPHER *aes128gcm(void)
{
    pthread_once(&fetch_once, fetch_methods);
    if (!aes128gcm_cipher) SMKI_FAIL_SSL(SMKI_E_CRYPTO, "AES-128-GCM is not available from the OpenSSL providers");
    return aes128gcm_cipher;
}

/* NIST SP 800-56A rev. 3, 5.8.2.1 (single-step KDF, hash option): one round is
 * enough because keydatalen (128 bits) is below the hash length. */
int smki_kdf_sp800_56a(const uint8_t z[32], const uint8_t *other_info, size_t other_len, uint8_t key[16])
{
    static const uint8_t counter[4] = {0x00, 0x00, 0x00, 0x01};
    const EVP_MD *md = sha256();
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    int rc = 0;

    ENSURE(z != NULL && key != NULL, SMKI_E_USAGE, "KDF: shared secret and key output are required");
    ENSURE(other_info != NULL || other_len == 0, SMKI_E_USAGE, "KDF: OtherInfo of %zu octet(s) given as NULL",
           other_len);
    if (!md) return SMKI_E_CRYPTO;

    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ENSURE_SSL(ctx != NULL, SMKI_E_NOMEM, "KDF: cannot allocate a digest context");
    ENSURE_SSL_GOTO(EVP_DigestInit_ex2(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, counter, sizeof counter) == 1 &&
                        EVP_DigestUpdate(ctx, z, 32) == 1 &&
                        (other_len == 0 || EVP_DigestUpdate(ctx, other_info, other_len) == 1) &&
                        EVP_DigestFinal_ex(ctx, digest, &digest_len) == 1,
                    SMKI_E_CRYPTO, out, "KDF: SHA-256 failed");
    ENSURE_GOTO(digest_len == 32, SMKI_E_INTERNAL, out, "KDF: SHA-256 gave %u octets", digest_len);
    memcpy(key, digest, 16);
out:
    smki_wipe(digest, sizeof digest);
    EVP_MD_CTX_free(ctx); /* cleanses the hash state, which held z */
    return rc;
}

/* The OtherInfo layout is 7 + 8 + 1 + 1 + 8 + 8 = 33 octets; that is what the RTDS
 * MACs are computed over. Buffers sized by the header's constant must hold it. */
enum { OTHER_INFO_OCTETS = 33 };
_Static_assert(SMKI_GBCS_OTHERINFO_LEN >= OTHER_INFO_OCTETS, "SMKI_GBCS_OTHERINFO_LEN cannot hold the OtherInfo");

/* GBCS OtherInfo (reference §5): AlgorithmID 60 85 74 06 08 03 00, then PartyUInfo
 * = originator title, then the transaction-id as it appears in the General Signing
 * APDU (09 || CRA flag || counter), then PartyVInfo = recipient title. */
void smki_gbcs_other_info(const uint8_t originator[8], uint8_t cra, uint64_t counter, const uint8_t recipient[8],
                          uint8_t out[SMKI_GBCS_OTHERINFO_LEN])
{
    static const uint8_t algorithm_id[7] = {0x60, 0x85, 0x74, 0x06, 0x08, 0x03, 0x00};
    size_t at = 0;
    memcpy(out + at, algorithm_id, sizeof algorithm_id);
    at += sizeof algorithm_id;
    memcpy(out + at, originator, 8);
    at += 8;
    out[at++] = 0x09;
    out[at++] = cra;
    for (int shift = 56; shift >= 0; shift -= 8) out[at++] = (uint8_t)(counter >> shift);
    memcpy(out + at, recipient, 8);
}

/* EVP takes int lengths: AAD goes in pieces of at most 1 GiB, so that any size_t
 * length is honoured (GCM accepts AAD in several updates before any plaintext). */
static int gcm_aad(EVP_CIPHER_CTX *ctx, const uint8_t *aad, size_t aad_len)
{
    const size_t max_piece = (size_t)1 << 30;
    while (aad_len > 0) {
        int piece = (int)(aad_len > max_piece ? max_piece : aad_len);
        int outl = 0;
        ENSURE_SSL(EVP_EncryptUpdate(ctx, NULL, &outl, aad, piece) == 1, SMKI_E_CRYPTO, "GCM: AAD update failed");
        aad += piece;
        aad_len -= (size_t)piece;
    }
    return 0;
}

int smki_gcm_mac12(const uint8_t key[16], const uint8_t iv[12], const uint8_t *aad, size_t aad_len,
                   uint8_t tag[SMKI_GBCS_MAC_LEN])
{
    const EVP_CIPHER *cipher = aes128gcm();
    uint8_t full[16];
    uint8_t none[16];
    int outl = 0;
    int rc = 0;

    ENSURE(key != NULL && iv != NULL && tag != NULL, SMKI_E_USAGE, "GCM MAC: key, IV and tag output are required");
    ENSURE(aad != NULL || aad_len == 0, SMKI_E_USAGE, "GCM MAC: AAD of %zu octet(s) given as NULL", aad_len);
    if (!cipher) return SMKI_E_CRYPTO;

    /* A fresh context per call: EVP_CIPHER_CTX_free cleanses the key schedule, so no
     * MAC key outlives the call. Measured, a per-thread cached context saved under
     * 10% (about 30 ns of 450-590 ns); fetching the cipher once saved about 30%. */
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    ENSURE_SSL(ctx != NULL, SMKI_E_NOMEM, "GCM MAC: cannot allocate a cipher context");
    /* The default GCM IV length is 12 octets, which is what GBCS uses. */
    ENSURE_SSL_GOTO(EVP_EncryptInit_ex2(ctx, cipher, key, iv, NULL) == 1, SMKI_E_CRYPTO, out, "GCM MAC: init failed");
    GUARD_GOTO(gcm_aad(ctx, aad, aad_len), out);
    /* No plaintext: Final only completes GHASH; nothing is written. */
    ENSURE_SSL_GOTO(EVP_EncryptFinal_ex(ctx, none, &outl) == 1 && outl == 0, SMKI_E_CRYPTO, out,
                    "GCM MAC: final failed");
    ENSURE_SSL_GOTO(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, (int)sizeof full, full) == 1, SMKI_E_CRYPTO, out,
                    "GCM MAC: cannot read the tag");
    memcpy(tag, full, SMKI_GBCS_MAC_LEN);
out:
    smki_wipe(full, sizeof full);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int smki_gcm_mac12_verify(const uint8_t key[16], const uint8_t iv[12], const uint8_t *aad, size_t aad_len,
                          const uint8_t tag[SMKI_GBCS_MAC_LEN])
{
    uint8_t mine[SMKI_GBCS_MAC_LEN];
    ENSURE(tag != NULL, SMKI_E_USAGE, "GCM MAC: the tag to verify is required");
    GUARD(smki_gcm_mac12(key, iv, aad, aad_len, mine));
    int differs = CRYPTO_memcmp(mine, tag, sizeof mine);
    smki_wipe(mine, sizeof mine);
    ENSURE(differs == 0, SMKI_E_VERIFY, "GBCS MAC does not verify (%zu octet(s) of AAD)", aad_len);
    return 0;
}

int smki_gbcs_mac_key(smki_key *ka, EVP_PKEY *peer, const uint8_t originator[8], uint8_t cra, uint64_t counter,
                      const uint8_t recipient[8], uint8_t key[16])
{
    uint8_t z[32];
    uint8_t other_info[SMKI_GBCS_OTHERINFO_LEN];
    int rc;

    ENSURE(ka != NULL && peer != NULL && originator != NULL && recipient != NULL && key != NULL, SMKI_E_USAGE,
           "GBCS MAC key: key-agreement key, peer key, titles and key output are required");
    GUARD_GOTO(smki_key_ecdh(ka, peer, z), out);
    smki_gbcs_other_info(originator, cra, counter, recipient, other_info);
    GUARD_GOTO(smki_kdf_sp800_56a(z, other_info, OTHER_INFO_OCTETS, key), out);
out:
    smki_wipe(z, sizeof z);
    if (rc < 0) {
        smki_wipe(key, 16);
        smki_error_wrap("GBCS MAC key (counter %llu)", (unsigned long long)counter);
    }
    return rc;
}
