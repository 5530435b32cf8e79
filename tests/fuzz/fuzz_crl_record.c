/* libFuzzer target for the revocation and CRL records of the CA's store (ca/revoke.c,
 * ca/crl.c): what a damaged or hostile store could hand back. The first octet picks
 * the decoder. Beyond not crashing: a refusal is SMKI_E_CORRUPT; an accepted
 * revocation record is exactly 10 octets with a known reason; an accepted CRL record
 * holds exactly the DER its length says, nothing left over. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_private.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_crl_record: invariant failed: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const uint8_t *val = data + 1;
    size_t len = size - 1;
    int rc;
    if (data[0] & 1) {
        uint8_t key[CA_CERT_KEY_LEN];
        memset(key, 0x5a, sizeof key);
        smki_revocation rev;
        rc = smki_ca_revocation_decode(key, val, len, &rev);
        if (rc == 0) {
            require(len == 10, "a revocation record is 10 octets");
            require(smki_revoke_reason_name(rev.reason) != NULL, "a known reason");
            require(memcmp(rev.issuer_ski, key, SMKI_KEYID_LEN) == 0, "the issuer comes from the key");
        }
    } else {
        smki_crl crl;
        memset(&crl, 0, sizeof crl);
        rc = smki_ca_crl_decode("fuzz/smki-oca", val, len, &crl);
        if (rc == 0) {
            require(crl.der && crl.der_len > 0 && crl.der_len < len, "the DER is inside the record");
            require(memcmp(crl.der, val + (len - crl.der_len), crl.der_len) == 0, "the DER is the record's tail");
        }
        smki_crl_clear(&crl);
    }
    if (rc < 0) require(rc == SMKI_E_CORRUPT || rc == SMKI_E_NOMEM, "a refusal is SMKI_E_CORRUPT");
    smki_error_clear();
    return 0;
}
