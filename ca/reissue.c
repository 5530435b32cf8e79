/* Re-issuance for CA compromise recovery: an organisation certificate of a revoked
 * issuing CA certified again by its successor, for the same subject (role, EUI-64, CN)
 * and the same public key. The subject's key was never at risk, only the CA's; the
 * new certificate passes the same checks and lint as any other. */
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "ca_private.h"

int smki_ca_reissue(smki_ca_issuer *is, const smki_cert *old, smki_cert *out)
{
    ENSURE(is && old && out, SMKI_E_INTERNAL, "smki_ca_reissue: missing argument");
    ENSURE(old->profile == SMKI_PROFILE_ORGANISATION && old->has_eui && old->role >= 0, SMKI_E_REFUSED,
           "only organisation certificates are re-issued (a device's is replaced from its new CSR)");
    const unsigned char *p = old->der;
    X509 *x = d2i_X509(NULL, &p, (long)old->der_len);
    ENSURE(x, SMKI_E_CORRUPT, "a certificate in the store does not decode");
    char cn[SMKI_CA_NAME_MAX] = "";
    int has_cn = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn) > 0;
    /* The certificate carries the key exactly as its CSR did: named curve, uncompressed. */
    smki_csr c;
    memset(&c, 0, sizeof c);
    uint8_t spki[sizeof SMKI_CA_SPKI_P256_PREFIX + SMKI_POINT_LEN];
    c.key = X509_get0_pubkey(x);
    int rc = c.key ? smki_pub_point(c.key, c.point) : SMKI_FAIL(SMKI_E_CORRUPT, "a certificate without a key");
    if (rc == 0) {
        memcpy(spki, SMKI_CA_SPKI_P256_PREFIX, sizeof SMKI_CA_SPKI_P256_PREFIX);
        memcpy(spki + sizeof SMKI_CA_SPKI_P256_PREFIX, c.point, SMKI_POINT_LEN);
        c.spki = spki;
        c.spki_len = sizeof spki;
        c.der = old->der;
        c.der_len = old->der_len;
        c.usage = (smki_key_usage)old->usage;
        c.is_subject_empty = 0;
        smki_issue_req r = {&c, SMKI_PROFILE_ORGANISATION, old->role, &old->eui, has_cn ? cn : NULL, 0, 0};
        rc = smki_ca_build(is, &r, out);
    }
    X509_free(x);
    return rc;
}
