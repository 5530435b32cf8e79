/* CS02c: a device key's PKCS#10 request as GBCS shapes it (reference §6), and a new KA
 * key born with its CSR. Used when a device is made (device.c) and when it answers a
 * CS02c command (rx.c); it needs neither: the keys and the codec only. */
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "device.h"

int smki_cs02c_csr(smki_key *k, smki_key_usage usage, const smki_eui64_t *eui, const char *hw_type_oid, uint8_t **der,
                   size_t *len)
{
    static const uint8_t ext_req[] = {0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x0E};
    static const uint8_t oid_ku[] = {0x06, 0x03, 0x55, 0x1D, 0x0F};
    static const uint8_t oid_san[] = {0x06, 0x03, 0x55, 0x1D, 0x11};
    static const uint8_t oid_hmn[] = {0x06, 0x08, 0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x04};
    static const uint8_t crit[] = {0x01, 0x01, 0xFF};
    static const uint8_t ecdsa_sha256[] = {0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02};
    uint8_t *spki = NULL, hw[64], sig[SMKI_SIG_MAX + 1];
    size_t sig_len = SMKI_SIG_MAX;
    int spki_len, hw_len, rc = 0;
    smki_gbcs_derw w, inner;
    *der = NULL;
    *len = 0;
    ASN1_OBJECT *obj = OBJ_txt2obj(hw_type_oid, 1);
    ENSURE_SSL(obj != NULL, SMKI_E_USAGE, "hwType OID '%s'", hw_type_oid);
    unsigned char *hp = hw;
    hw_len = i2d_ASN1_OBJECT(obj, NULL) <= (int)sizeof hw ? i2d_ASN1_OBJECT(obj, &hp) : -1;
    ASN1_OBJECT_free(obj);
    ENSURE(hw_len > 0, SMKI_E_USAGE, "hwType OID '%s' does not encode", hw_type_oid);
    spki_len = i2d_PUBKEY(smki_key_public(k), &spki);
    ENSURE_SSL(spki_len > 0, SMKI_E_CRYPTO, "the key's SubjectPublicKeyInfo");

    smki_gbcs_derw_init(&w);
    smki_gbcs_derw_begin(&w, 0x30);         /* CertificationRequestInfo */
    smki_gbcs_derw_uint(&w, 0x02, 0);
    smki_gbcs_derw_raw(&w, "\x30\x00", 2);  /* empty subject */
    smki_gbcs_derw_raw(&w, spki, (size_t)spki_len);
    smki_gbcs_derw_begin(&w, 0xA0);
    smki_gbcs_derw_begin(&w, 0x30);
    smki_gbcs_derw_raw(&w, ext_req, sizeof ext_req);
    smki_gbcs_derw_begin(&w, 0x31);
    smki_gbcs_derw_begin(&w, 0x30);
    smki_gbcs_derw_begin(&w, 0x30); /* keyUsage, critical */
    smki_gbcs_derw_raw(&w, oid_ku, sizeof oid_ku);
    smki_gbcs_derw_raw(&w, crit, sizeof crit);
    smki_gbcs_derw_begin(&w, 0x04);
    smki_gbcs_derw_key_usage(&w, usage == SMKI_USAGE_DS ? SMKI_KU_DIGITAL_SIGNATURE : SMKI_KU_KEY_AGREEMENT);
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_begin(&w, 0x30); /* subjectAltName, critical: hardwareModuleName (RFC 4108) */
    smki_gbcs_derw_raw(&w, oid_san, sizeof oid_san);
    smki_gbcs_derw_raw(&w, crit, sizeof crit);
    smki_gbcs_derw_begin(&w, 0x04);
    smki_gbcs_derw_begin(&w, 0x30);
    smki_gbcs_derw_begin(&w, 0xA0);
    smki_gbcs_derw_raw(&w, oid_hmn, sizeof oid_hmn);
    smki_gbcs_derw_begin(&w, 0xA0);
    smki_gbcs_derw_begin(&w, 0x30);
    smki_gbcs_derw_raw(&w, hw, (size_t)hw_len);
    smki_gbcs_derw_tlv(&w, 0x04, eui->b, 8);
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_end(&w);
    smki_gbcs_derw_end(&w);
    OPENSSL_free(spki);
    uint8_t *tbs = NULL;
    size_t tbs_len = 0;
    GUARD(smki_gbcs_derw_finish(&w, &tbs, &tbs_len));
    GUARD_GOTO(smki_key_sign(k, tbs, tbs_len, SMKI_SIG_DER, sig + 1, &sig_len), out);
    sig[0] = 0x00; /* BIT STRING: no unused bits */
    smki_gbcs_derw_init(&inner);
    smki_gbcs_derw_begin(&inner, 0x30);
    smki_gbcs_derw_raw(&inner, tbs, tbs_len);
    smki_gbcs_derw_raw(&inner, ecdsa_sha256, sizeof ecdsa_sha256);
    smki_gbcs_derw_tlv(&inner, 0x03, sig, sig_len + 1);
    smki_gbcs_derw_end(&inner);
    rc = smki_gbcs_derw_finish(&inner, der, len);
out:
    free(tbs);
    return rc;
}

typedef struct {
    const smki_eui64_t *eui;
    const char *hw_type;
    uint8_t *der;
    size_t len;
} ka_csr_job;

static int sign_ka_csr(smki_key *k, void *ctx)
{
    ka_csr_job *j = ctx;
    return smki_cs02c_csr(k, SMKI_USAGE_KA, j->eui, j->hw_type, &j->der, &j->len);
}

int smki_cs02c_ka_key(const smki_hsm_opts *hsm, const char *token, const char *label, const smki_eui64_t *eui,
                      const char *hw_type_oid, char uri[SMKI_KEY_URI_MAX], uint8_t **der, size_t *len)
{
    *der = NULL;
    *len = 0;
    ka_csr_job j = {eui, hw_type_oid, NULL, 0};
    int rc = smki_key_generate_ka_sign_once(hsm, token, label, sign_ka_csr, &j, uri);
    if (rc < 0) {
        free(j.der);
        return rc;
    }
    *der = j.der;
    *len = j.len;
    return 0;
}
