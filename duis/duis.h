/* duis: DUIS XML, the Service Requests a User sends to the DCC and the Responses it
 * gets back. A hardened reader (libxml2: no DTD, no entities, no network, UTF-8 only,
 * bounded size), the enveloped XML signature of the DUIS profile (libxml2 canonicalises,
 * libxmlsec1 builds the structure and is the reference it is tested against; the
 * signature value is made and checked by hsm/'s smki_key, so a pkcs11: key signs), and
 * the correlation of a GBCS pre-command
 * with the Service Request that asked for it.
 *
 * The signature profile (../shared/vectors/duis/README.md): ds:Signature the last child
 * of the root; SignedInfo with exclusive C14N and ecdsa-sha256; exactly one Reference
 * URI="" whose only transform is enveloped-signature, digest SHA-256; KeyInfo holding
 * only X509Data/X509IssuerSerial (issuer as an RFC 4514 string, serial in decimal).
 * Anything else is refused by name (signature wrapping).
 *
 * Thread safety: the library initialises libxml2 and xmlsec once (pthread_once); every
 * function below is safe from several threads; a trust set is read-only once built. */
#ifndef SMKI_DUIS_H
#define SMKI_DUIS_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/base.h"
#include "gbcs/gbcs.h"
#include "hsm/hsm.h"
#include "policy/policy.h"

#define SMKI_DUIS_MAX_XML (4u << 20) /* refuse DUIS documents above 4 MiB */
#define SMKI_DUIS_VARIANT_MAX 16
#define SMKI_DUIS_NS "http://www.dccinterface.co.uk/ServiceUserGateway"

typedef enum { SMKI_DUIS_REQUEST = 1, SMKI_DUIS_RESPONSE = 2 } smki_duis_kind;

/* The ids DUIS carries: "originator:target:counter" (EUI-64s hyphenated, the counter
 * decimal), as in sr:RequestID and sr:ResponseID. */
typedef struct {
    smki_eui64_t originator;
    smki_eui64_t target;
    uint64_t counter;
} smki_duis_id;
SMKI_MUST_CHECK int smki_duis_id_parse(const char *text, smki_duis_id *out);

/* What a DUIS document says in its header (and, for a Request, its execution time). */
typedef struct {
    smki_duis_kind kind;
    smki_duis_id request_id;             /* sr:RequestID (both kinds carry it) */
    int has_response_id;
    smki_duis_id response_id;            /* sr:ResponseID (Responses) */
    char service_reference[SMKI_DUIS_VARIANT_MAX];
    char variant[SMKI_DUIS_VARIANT_MAX]; /* sr:ServiceReferenceVariant */
    int has_execution_time;              /* sr:ExecutionDateTime anywhere in sr:Body */
    time_t execution_time;
    int has_signature;                   /* a ds:Signature is there (maybe a placeholder) */
} smki_duis_info;

/* The Remote Party Role whose xmlSign certificate signs this kind: 0x87 (135, xmlSign)
 * for a Request, 0x89 (137, DSP xmlSign) for a Response. */
uint8_t smki_duis_signer_role(smki_duis_kind kind);

/* Parse a document with the hardened reader and read its header. Refused (SMKI_E_INPUT,
 * naming why): over SMKI_DUIS_MAX_XML, a NUL octet or bytes that are not UTF-8, an
 * encoding declared other than UTF-8, any DOCTYPE (so no DTD, no entity: XXE and
 * entity expansion stop at the declaration), malformed XML, a root that is not
 * sr:Request or sr:Response in the DUIS namespace, a missing or malformed sr:RequestID
 * (sr:ResponseID for a Response). */
SMKI_MUST_CHECK int smki_duis_read(const uint8_t *xml, size_t len, smki_duis_info *out);

/* ---- Signing ------------------------------------------------------------------------
 * Sign a Request (with an xmlSign certificate) or a Response (DSP xmlSign): a ds:Signature
 * already there (the RTDS placeholders) is replaced in place, else one is appended as
 * the root's last child. Refused (SMKI_E_REFUSED, nothing produced): cert is not an
 * organisation certificate with digitalSignature of the kind's role; for a Request its
 * EUI-64 is not the originator of sr:RequestID; cert is not valid at `at`; key is not
 * cert's key. *out (malloc'd, caller frees) is the signed document, UTF-8. */
SMKI_MUST_CHECK int smki_duis_sign(smki_key *key, X509 *cert, time_t at, const uint8_t *xml, size_t len, uint8_t **out,
                                   size_t *out_len);

/* The same in two steps, for a caller that signs many documents with one key: the
 * signer reads what cert says and checks that key is its key once (key is borrowed
 * and must outlive the signer; cert is up-referenced); each document is then checked
 * against it and signed. A signer is safe to share between threads. */
typedef struct smki_duis_signer smki_duis_signer;
SMKI_MUST_CHECK int smki_duis_signer_new(smki_key *key, X509 *cert, smki_duis_signer **out);
void smki_duis_signer_free(smki_duis_signer *s);
SMKI_MUST_CHECK int smki_duis_sign_with(const smki_duis_signer *s, time_t at, const uint8_t *xml, size_t len, uint8_t **out,
                                        size_t *out_len);

/* The signer-binding rules on their own (sign and verify use them): role, EUI-64 and
 * key usage of cert for a document of this info, and validity at `at`. Responses: the
 * DCC signs every Response with its DSP xmlSign key whoever the Response's business
 * originator is (a device's response carries the device's EUI-64 first in
 * sr:ResponseID), so a Response binds to role 137 only. */
SMKI_MUST_CHECK int smki_duis_check_signer(X509 *cert, const smki_duis_info *info, time_t at);

/* ---- Verifying ---------------------------------------------------------------------- */
/* The certificates a verifier trusts, found by issuer and serial; CRLs; the schema. */
typedef struct smki_duis_trust smki_duis_trust;
SMKI_MUST_CHECK int smki_duis_trust_new(smki_duis_trust **out);
void smki_duis_trust_free(smki_duis_trust *t);
/* Every certificate file in dir (.pem, .crt, .cer, .der) (files with no certificate, such
 * as keys, are skipped). */
SMKI_MUST_CHECK int smki_duis_trust_add_dir(smki_duis_trust *t, const char *dir);
/* One certificate (up-referenced; the caller keeps its own). */
SMKI_MUST_CHECK int smki_duis_trust_add_cert(smki_duis_trust *t, X509 *cert);
/* A CRL file (PEM or DER). Its signature must verify with a certificate in the trust set
 * whose subject is the CRL's issuer (add the CA's certificate first): a CRL that cannot
 * be checked is refused, never used. On verify, a signer is refused when a CRL of its
 * issuer lists it as revoked at or before the time asked, or when that CRL's nextUpdate
 * is before the time asked (out of date). */
SMKI_MUST_CHECK int smki_duis_trust_add_crl_file(smki_duis_trust *t, const char *path);
/* The DUIS XML Schema: dir holds "DUIS Schema V5.1.xsd" and the files it imports. */
SMKI_MUST_CHECK int smki_duis_trust_load_schema(smki_duis_trust *t, const char *dir);
size_t smki_duis_trust_count(const smki_duis_trust *t);
/* The DCC's EUI-64: a Response must then be signed by a certificate of this EUI-64
 * (without it, Responses bind to role 137 only: see smki_duis_check_signer). */
SMKI_MUST_CHECK int smki_duis_trust_set_dcc(smki_duis_trust *t, const smki_eui64_t *dcc);

/* The issuer (as written) and serial (decimal) the signature's X509IssuerSerial names,
 * so a caller can fetch that certificate (e.g. from a repository) before verifying;
 * serial_hex is the same serial in upper-case hex without leading zeros (OpenSSL's
 * BN_bn2hex form, as the repository's /certificates/{serial} takes it). */
typedef struct {
    char issuer[512];
    char serial[64];
    char serial_hex[64];
} smki_duis_signer_ref;
SMKI_MUST_CHECK int smki_duis_signer_ref_get(const uint8_t *xml, size_t len, smki_duis_signer_ref *out);

typedef struct {
    smki_duis_info info;
    smki_eui64_t signer;   /* the signer certificate's EUI-64 */
    int signer_role;
    smki_duis_signer_ref ref;
    int schema_checked;    /* the document was valid against the loaded schema */
} smki_duis_report;

/* Verify a signed document: the hardened read; the profile (one ds:Signature, the
 * root's last child; exactly the algorithms, Reference and KeyInfo above: anything
 * else is refused by name); the signer found by issuer and serial in t; its binding
 * (smki_duis_check_signer at `at`); revocation by t's CRLs; the Reference digest and the
 * signature (libxml2 C14N, ECDSA through hsm/); then the schema when t has one. Refusals:
 * SMKI_E_INPUT (not a DUIS document, hostile XML), SMKI_E_REFUSED (profile, signer,
 * revoked, schema), SMKI_E_NOTFOUND (no such signer in t), SMKI_E_VERIFY (a changed
 * document: digest or signature). */
SMKI_MUST_CHECK int smki_duis_verify(const smki_duis_trust *t, time_t at, const uint8_t *xml, size_t len, smki_duis_report *rep);

/* ---- Correlation of a pre-command with its Service Request -------------------------
 * The Service Reference Variants smki knows, as data: each row pairs a variant with one
 * GBCS message code (a variant may have several: 1.1.1 is ECS01a for electricity and
 * GCS01a for gas) and how that message's payload encodes an execution time. */
typedef enum {
    SMKI_DUIS_TIME_NONE = 0, /* never future-dated */
    SMKI_DUIS_TIME_DLMS,     /* DLMS date-time octet string 09 0C yyyy mm dd ... */
    SMKI_DUIS_TIME_ZIGBEE,   /* UTC seconds since 2000-01-01, 4 octets little-endian */
    SMKI_DUIS_TIME_ASN1,     /* GeneralizedTime digits yyyymmddhhmmss */
} smki_duis_time_form;

typedef struct {
    const char *variant;   /* "1.1.1" */
    uint16_t code;         /* GBCS message code */
    const char *use_case;  /* "ECS01a" */
    smki_duis_time_form time_form;
} smki_duis_srv;
/* The table; *n its length. */
const smki_duis_srv *smki_duis_srvs(size_t *n);

/* Check a pre-command (or the General Signing APDU of a command) against its request:
 * originator, target and counter from sr:RequestID; the message code is one of the
 * variant's (an unknown variant is refused by name); for a future-dated request (an
 * execution time) the payload carries that time in its use case's form (the DUIS
 * cancellation date 3000-12-31T00:00:00Z: the form's "no time" marker). Each mismatch
 * is SMKI_E_REFUSED naming the field, what the request says and what the APDU holds. */
SMKI_MUST_CHECK int smki_duis_correlate(const smki_duis_info *request, const smki_gbcs_signing *g);

/* Verify a signed request (as smki_duis_verify) and correlate the pre-command with it:
 * what `smki gbcs sign --request` and a gateway call before signing. */
SMKI_MUST_CHECK int smki_duis_check_precommand(const smki_duis_trust *t, time_t at, const uint8_t *xml, size_t xml_len,
                                               const uint8_t *pre, size_t pre_len, smki_duis_report *rep);

#endif
