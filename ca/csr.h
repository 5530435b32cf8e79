/* ca: CSR intake. PKCS#10 requests (RFC 2986) read strictly, proof of possession
 * verified, and the checks that tie a CSR to a request. Nothing from a CSR but its
 * public key reaches a certificate: everything else comes from the profile. The CA
 * proper is ca/ca.h; revocation and CRLs/ARLs ca/crl.h. */
#ifndef SMKI_CA_CSR_H
#define SMKI_CA_CSR_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "hsm/hsm.h"
#include "policy/policy.h"

#define SMKI_CSR_MAX 16384        /* octets of input, PEM or DER: a device CSR is ~280 */
#define SMKI_CSR_OID_TEXT_MAX 128 /* dotted text of the hwType OID, NUL included */

/* A parsed, verified CSR. Everything points into or is owned by it. */
typedef struct {
    const uint8_t *der; /* the request as DER (decoded from PEM if it came as PEM) */
    size_t der_len;
    /* SubjectPublicKeyInfo exactly as encoded in the request, inside der: the CA
     * copies these octets into the certificate rather than re-encoding the key. It
     * is always the named-curve P-256 form with an uncompressed point (91 octets). */
    const uint8_t *spki;
    size_t spki_len;
    EVP_PKEY *key;                 /* the same key, decoded */
    uint8_t point[SMKI_POINT_LEN]; /* 04 || X || Y */
    /* The requested keyUsage: exactly one of DS or KA. A CSR that requests none, both
     * or anything else is refused by smki_csr_parse, so there is no "absent" state. */
    smki_key_usage usage;
    /* subjectAltName otherName hardwareModuleName (RFC 4108, GBCS 12): the Device ID. */
    int has_hw_module_name;
    char hw_type[SMKI_CSR_OID_TEXT_MAX]; /* dotted, e.g. "1.2.826.0.1.8641679.1.2.2.1" */
    smki_eui64_t hw_serial;
    /* The subject as requested: recorded for the RA, never copied into a certificate.
     * Device CSRs carry an empty one. */
    int is_subject_empty;
    X509_NAME *subject;
    const uint8_t *subject_der; /* inside der */
    size_t subject_len;
    struct ec_key_st *ec; /* key's EC_KEY (csr.c's verification), owned */
} smki_csr;

/* Read a PKCS#10 CSR, PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST") or
 * DER, of at most SMKI_CSR_MAX octets, and verify its proof of possession. Strict:
 * DER lengths, no trailing data, version 0, ecdsa-with-SHA256, an EC P-256 key with
 * an uncompressed point on the curve, a keyUsage request of exactly one of
 * digitalSignature or keyAgreement, a subjectAltName (if any) of exactly one
 * hardwareModuleName with an 8-octet hwSerialNum, no critical extension it does not
 * understand. Refusals: SMKI_E_INPUT for malformed bytes, SMKI_E_REFUSED for
 * well-formed but not allowed, SMKI_E_VERIFY when the signature does not verify;
 * the message names what is wrong. Safe to call from several threads. */
SMKI_MUST_CHECK int smki_csr_parse(const uint8_t *data, size_t len, smki_csr **out);

/* The same parse, with options. verified_sha256: the SHA-256 of CSR octets whose proof
 * of possession the caller verified before and recorded where only it writes (the RA,
 * at submission, in its store). When data hashes to exactly this, everything is parsed
 * and checked as strictly as ever (DER, key, extensions, the signature's encoding) but
 * the ECDSA verification is not repeated; octets that hash to anything else are
 * verified in full. NULL: always verify (smki_csr_parse). skipped_verify (optional)
 * receives whether the verification was skipped. */
typedef struct {
    const uint8_t *verified_sha256; /* 32 octets, or NULL */
    int *skipped_verify;
} smki_csr_parse_opts;
SMKI_MUST_CHECK int smki_csr_parse_ex(const uint8_t *data, size_t len, const smki_csr_parse_opts *o, smki_csr **out);

/* The checks that tie a parsed CSR to a request. A device request needs the
 * hardwareModuleName and an empty subject; when eui is given it must be the
 * hardwareModuleName's. An organisation request must not carry a hardwareModuleName.
 * When want is given (not 0) the CSR must request that usage. SMKI_E_REFUSED, naming
 * both sides, on any disagreement. */
SMKI_MUST_CHECK int smki_csr_check_request(const smki_csr *c, int is_device, const smki_eui64_t *eui, smki_key_usage want);

void smki_csr_free(smki_csr *c);

#endif
