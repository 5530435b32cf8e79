/* libFuzzer target for the CA's certificate records (ca/ca_store.c): what a damaged
 * or hostile store could hand back. Beyond not crashing: a record is accepted only
 * whole (no octet left over), every field it yields is in range, and an accepted
 * record encodes back to exactly the same octets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_private.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_ca_record: invariant failed: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static smki_cert cert;
    static uint8_t again[CA_CERT_KEY_LEN + 64 + SMKI_CERT_DER_MAX + SMKI_ENV_NAME_MAX];
    uint8_t key[CA_CERT_KEY_LEN];
    memset(key, 0x5a, sizeof key);
    int rc = smki_ca_cert_decode(key, data, size, &cert);
    if (rc < 0) {
        require(rc == SMKI_E_CORRUPT, "a refusal is SMKI_E_CORRUPT");
        smki_error_clear();
        return 0;
    }
    require(cert.der_len <= SMKI_CERT_DER_MAX, "DER within bounds");
    require(strlen(cert.env) < sizeof cert.env, "environment name terminated");
    require(smki_cert_status_name(cert.status) != NULL, "a known status");
    require(cert.profile < SMKI_PROFILE_COUNT, "a known profile");
    require(memcmp(cert.issuer_ski, key, SMKI_KEYID_LEN) == 0 &&
                memcmp(cert.serial, key + SMKI_KEYID_LEN, SMKI_SERIAL_LEN) == 0,
            "issuer and serial come from the key");
    size_t len = 0;
    require(smki_ca_cert_encode(&cert, again, sizeof again, &len) == 0, "an accepted record encodes");
    require(len == size && memcmp(again, data, size) == 0, "an accepted record encodes back to the same octets");
    smki_error_clear();
    return 0;
}
