/* Detached signatures over text files (anomaly thresholds): ECDSA P-256/SHA-256, DER
 * signature, over the canonical line ends (CRLF and CR become LF) so that a file's
 * signature survives a trip through another platform's editor. */
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

int smki_signed_file_canonical(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
    ENSURE(len <= SMKI_SIGNED_FILE_MAX, SMKI_E_INPUT, "signed file of %zu octets exceeds the %u limit", len,
           SMKI_SIGNED_FILE_MAX);
    uint8_t *buf = malloc(len ? len : 1);
    ENSURE(buf, SMKI_E_NOMEM, "canonical form of %zu octets", len);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\r') {
            buf[o++] = '\n';
            if (i + 1 < len && in[i + 1] == '\n') i++;
        } else {
            buf[o++] = in[i];
        }
    }
    *out = buf;
    *out_len = o;
    return 0;
}

int smki_signed_file_sign(smki_key *k, const uint8_t *data, size_t len, uint8_t *sig, size_t *sig_len)
{
    uint8_t *canon = NULL;
    size_t clen = 0;
    GUARD(smki_signed_file_canonical(data, len, &canon, &clen));
    int rc = smki_key_sign(k, canon, clen, SMKI_SIG_DER, sig, sig_len);
    free(canon);
    return rc;
}

int smki_signed_file_verify(EVP_PKEY *pub, const uint8_t *data, size_t len, const uint8_t *sig, size_t sig_len)
{
    uint8_t *canon = NULL;
    size_t clen = 0;
    GUARD(smki_signed_file_canonical(data, len, &canon, &clen));
    int rc = smki_verify(pub, canon, clen, SMKI_SIG_DER, sig, sig_len);
    free(canon);
    return rc;
}
