/* ca: issuing. For now the CSR intake: PKCS#10 requests (RFC 2986) read strictly,
 * proof of possession verified, and the checks that tie a CSR to a request. The CA
 * proper (issuance, ceremonies, batches, serials, revocation, CRL/ARL) will follow in
 * this same header. Nothing from a CSR but its public key reaches a certificate:
 * everything else comes from the profile. */
#ifndef SMKI_CA_H
#define SMKI_CA_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "hsm/hsm.h"
#include "policy/policy.h"

/* ---- CSR intake ------------------------------------------------------------------ */
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
int smki_csr_parse(const uint8_t *data, size_t len, smki_csr **out);

/* The checks that tie a parsed CSR to a request. A device request needs the
 * hardwareModuleName and an empty subject; when eui is given it must be the
 * hardwareModuleName's. An organisation request must not carry a hardwareModuleName.
 * When want is given (not 0) the CSR must request that usage. SMKI_E_REFUSED, naming
 * both sides, on any disagreement. */
int smki_csr_check_request(const smki_csr *c, int is_device, const smki_eui64_t *eui, smki_key_usage want);

void smki_csr_free(smki_csr *c);

/* =============================================================================
 * The CA proper (issue 3): hierarchies made in a ceremony (ca/ceremony.c),
 * certificates issued from CSRs through a prepared template per issuer
 * (ca/issue.c), every certificate linted before it is released, and every one
 * recorded in the store with its indices (ca/ca_store.c).
 * ========================================================================== */
#include "store/store.h"

#define SMKI_SERIAL_LEN 16     /* octets of every serialNumber smki writes */
#define SMKI_KEYID_LEN 8       /* SKI / AKI keyIdentifier: RFC 5280 4.2.1.2 method 2 */
#define SMKI_CERT_DER_MAX 2048 /* a P-256 certificate of any profile fits with room */
#define SMKI_CA_NAME_MAX 65    /* a CA's or organisation's CN: 1..64 characters + NUL */

/* Status as the SMKI Repository reports it (reference §9). */
typedef enum {
    SMKI_STATUS_PENDING = 'P',
    SMKI_STATUS_IN_USE = 'I',
    SMKI_STATUS_NOT_IN_USE = 'N',
    SMKI_STATUS_EXPIRED = 'E',
    SMKI_STATUS_REVOKED = 'R',
} smki_cert_status;
/* "in-use", ...; NULL for a value that is not a status. */
const char *smki_cert_status_name(int status);
/* Accepts the letter (P, I, N, E, R) or the name. */
int smki_cert_status_parse(const char *text, smki_cert_status *out);

/* The CAs of one environment's hierarchy. */
typedef enum {
    SMKI_CA_ROOT = 0,   /* SMKI root, self-signed */
    SMKI_CA_OCA,        /* organisation CA, issued by the root */
    SMKI_CA_DCA,        /* device CA, issued by the root */
    SMKI_CA_DCCKI_ROOT, /* DCCKI root, self-signed */
    SMKI_CA_DCCKI_ICA,  /* DCCKI issuing CA, issued by the DCCKI root */
    SMKI_CA_KIND_COUNT
} smki_ca_kind;
/* Its profile's name: "smki-root", "smki-oca", "smki-dca", "dccki-root", "dccki-ica". */
const char *smki_ca_kind_name(smki_ca_kind k);
smki_profile_id smki_ca_kind_profile(smki_ca_kind k);

/* One certificate and the facts recorded with it. (issuer_ski, serial) is its key
 * in the store: serials are unique per issuer. */
typedef struct {
    uint8_t issuer_ski[SMKI_KEYID_LEN];
    uint8_t serial[SMKI_SERIAL_LEN];
    uint8_t ski[SMKI_KEYID_LEN];
    smki_profile_id profile;
    int usage;   /* SMKI_USAGE_DS or SMKI_USAGE_KA; 0 for a CA certificate */
    int role;    /* the subject's Remote Party Role; -1 for none (device, DCCKI) */
    int has_eui; /* eui: an organisation's x500UniqueIdentifier or a device's ID */
    smki_eui64_t eui;
    smki_cert_status status;
    char env[SMKI_ENV_NAME_MAX];
    int64_t not_before, not_after; /* seconds since 1970, UTC */
    size_t der_len;
    uint8_t der[SMKI_CERT_DER_MAX];
} smki_cert;

/* ---- The CA's databases ------------------------------------------------------------
 * "certs": issuer SKI (8) || serial (16) -> record (versioned, ca_store.c)
 * indices (DUPSORT, value issuer SKI || serial): "by_serial" (serial), "by_eui"
 * (EUI-64), "by_ski" (the subject's SKI), "by_role" (1 octet), "by_usage" (1 octet:
 * 0 CA, 1 DS, 2 KA), "by_env" (environment name), "by_status" (the status letter);
 * "cas": "<env>/<kind name>" -> the CA's record (key reference, environment as
 * configured at its ceremony, its certificate's key in "certs"). */
typedef struct {
    smki_store *store;
    smki_db certs, by_serial, by_eui, by_ski, by_role, by_usage, by_env, by_status, cas;
} smki_ca_db;
/* Opens (creating) every database above: call before any transaction on the store. */
int smki_ca_db_open(smki_store *s, smki_ca_db *out);

/* Record a certificate and its indices: in a write transaction, or queued in a batch
 * (durable once the batch commits). SMKI_E_EXISTS when the issuer already has a
 * certificate of that serial: nothing of it is written. */
int smki_ca_cert_put(smki_txn *t, const smki_ca_db *db, const smki_cert *c);
int smki_ca_cert_queue(smki_batch *b, const smki_ca_db *db, const smki_cert *c);
/* By issuer and serial; SMKI_E_NOTFOUND if none. */
int smki_ca_cert_get(smki_ca_db *db, const uint8_t issuer_ski[SMKI_KEYID_LEN], const uint8_t serial[SMKI_SERIAL_LEN],
                     smki_cert *out);

/* Every certificate that matches all the given criteria, through the most selective
 * index; fn returns 0 to go on, 1 to stop, negative to fail (it runs inside a read
 * transaction: it must not write to the store). */
typedef struct {
    const char *env;                      /* NULL: any */
    const smki_eui64_t *eui;              /* NULL: any */
    const uint8_t *ski;                   /* SMKI_KEYID_LEN octets; NULL: any */
    const uint8_t *serial;                /* SMKI_SERIAL_LEN octets; NULL: any */
    const uint8_t *issuer_ski;            /* SMKI_KEYID_LEN octets; NULL: any */
    int role;                             /* -1: any */
    int usage;                            /* -1: any; 0 CA certificates; SMKI_USAGE_DS/_KA */
    int status;                           /* 0: any; else a smki_cert_status */
    smki_profile_id profile;              /* SMKI_PROFILE_UNKNOWN: any */
} smki_ca_query;
#define SMKI_CA_QUERY_ALL {NULL, NULL, NULL, NULL, NULL, -1, -1, 0, SMKI_PROFILE_UNKNOWN}
typedef int (*smki_cert_fn_t)(const smki_cert *c, void *arg);
int smki_ca_find(smki_ca_db *db, const smki_ca_query *q, smki_cert_fn_t fn, void *arg);
/* Certificates in the store. */
int smki_ca_count(smki_ca_db *db, size_t *n);

/* A CA of a hierarchy as its ceremony recorded it. */
typedef struct {
    smki_ca_kind kind;
    char env[SMKI_ENV_NAME_MAX];
    char key_ref[SMKI_KEY_URI_MAX]; /* pkcs11: URI or file:PATH */
    char env_text[2048];            /* the environment at the ceremony, as [env.<name>] configuration */
    smki_cert cert;
} smki_ca_record;
/* SMKI_E_NOTFOUND when the hierarchy of env has no CA of this kind. */
int smki_ca_get(smki_ca_db *db, const char *env, smki_ca_kind kind, smki_ca_record *out);
/* The environment a hierarchy was made with (from its records): policy OIDs, names
 * and periods are fixed at the ceremony. SMKI_E_NOTFOUND if env has no CA. */
int smki_ca_env_get(smki_ca_db *db, const char *env, smki_env *out);
/* The environment as configuration text ("[env.<name>]" and every key), which
 * smki_env_load reads back to the same values. */
int smki_env_to_conf(const smki_env *env, char *out, size_t cap);

/* ---- Issuing ------------------------------------------------------------------------
 * An issuer is a template prepared once: the CA's key, its certificate, its Name
 * copied from that certificate, its SKI (the leaves' AKI), the environment's OIDs
 * encoded. Issuing one certificate assembles its DER around the CSR's
 * SubjectPublicKeyInfo (copied, not re-encoded), signs the SHA-256 of the
 * tbsCertificate with the CA key, and lints the result: a certificate that fails its
 * profile is never returned or stored. An issuer may be shared by threads. */
typedef struct smki_ca_issuer smki_ca_issuer;

/* From parts: env (configured), the CA's certificate (DER) and its key, which the
 * issuer takes over (freed with it, also on failure). The certificate must lint clean
 * in env and be of the key. */
int smki_ca_issuer_new(const smki_env *env, const uint8_t *cert, size_t cert_len, smki_key *key,
                       smki_ca_issuer **out);
/* The CA of env's hierarchy that issues `leaf` (SMKI_PROFILE_ORGANISATION: the OCA,
 * SMKI_PROFILE_DEVICE: the DCA), with its key opened. */
int smki_ca_issuer_open(smki_ca_db *db, const char *env, smki_profile_id leaf, const smki_hsm_opts *o,
                        smki_ca_issuer **out);
void smki_ca_issuer_free(smki_ca_issuer *is);
const smki_env *smki_ca_issuer_env(const smki_ca_issuer *is);
smki_profile_id smki_ca_issuer_profile(const smki_ca_issuer *is); /* the CA's own profile */
const uint8_t *smki_ca_issuer_cert(const smki_ca_issuer *is, size_t *len);

typedef struct {
    const smki_csr *csr;      /* parsed and verified (smki_csr_parse) */
    smki_profile_id profile;  /* ORGANISATION or DEVICE; UNKNOWN: device when the CSR
                                 names a device (hardwareModuleName), else organisation */
    int role;                 /* organisation: the Remote Party Role (required); else -1 */
    const smki_eui64_t *eui;  /* organisation: its EUI-64 (required); device: optional,
                                 must equal the CSR's hwSerialNum */
    const char *cn;           /* organisation: optional CN, 1..64 characters */
    int64_t not_before;       /* 0: now, rounded down to the second */
    smki_cert_status status;  /* 0: in use */
} smki_issue_req;

/* Build, sign and lint; nothing is stored. */
int smki_ca_build(smki_ca_issuer *is, const smki_issue_req *r, smki_cert *out);
/* Build and record in one write transaction (a serial that the issuer already used,
 * astronomically unlikely, is drawn again). */
int smki_ca_issue(smki_ca_issuer *is, smki_ca_db *db, const smki_issue_req *r, smki_cert *out);
/* Build and queue in a batch: for bulk issuance, durable when the batch commits. */
int smki_ca_issue_batch(smki_ca_issuer *is, smki_ca_db *db, smki_batch *b, const smki_issue_req *r,
                        smki_cert *out);

/* For tests only: the next serials are this one (NULL: back to the CSPRNG), so that
 * a duplicate can be forced; issuance does not retry a fixed serial. Per thread. */
void smki_ca_test_fix_serial(const uint8_t serial[SMKI_SERIAL_LEN]);

/* ---- The ceremony ---------------------------------------------------------------------
 * smki_ca_init builds an environment's hierarchy from one reviewable configuration
 * (docs/ca-ceremony.conf explains every key): the SMKI root (self-signed), the
 * organisation CA and device CA under it, the DCCKI root and its issuing CA; keys
 * generated in the environment's token; each certificate linted, recorded in the
 * store and written as PEM to <home>/ca/<env>/<kind>.pem (roots also to the
 * environment's trust store folder). A CA that exists is never replaced: it is
 * reported as existing and left as it is. Everything is checked before anything is
 * written: an unknown or unconfigured environment, a missing name, a key label
 * already on the token without its CA record: each is refused naming it. */
typedef struct {
    smki_ca_kind kind;
    int created;                 /* 1 made now; 0 it existed */
    char cn[SMKI_CA_NAME_MAX];
    char key_ref[SMKI_KEY_URI_MAX];
    uint8_t serial[SMKI_SERIAL_LEN];
    uint8_t ski[SMKI_KEYID_LEN];
    int64_t not_after;
    char path[4200];             /* the PEM file */
} smki_ca_init_item;

typedef struct {
    char env[SMKI_ENV_NAME_MAX];
    char token[64];     /* the token of the CA keys */
    int token_missing;  /* refused (SMKI_E_NOTFOUND) only because the token does not exist */
    size_t n, created;
    smki_ca_init_item items[SMKI_CA_KIND_COUNT];
} smki_ca_init_report;

typedef struct {
    const smki_hsm_opts *hsm; /* the token's module and user PIN */
    const char *home;         /* PEM files under <home>/ca/<env>/, trust store relative to it */
    int64_t now;              /* 0: the clock */
} smki_ca_init_opts;

int smki_ca_init(smki_ca_db *db, const char *env, const smki_conf *conf, const smki_ca_init_opts *o,
                 smki_ca_init_report *rep);

/* A certificate as PEM text ("-----BEGIN CERTIFICATE-----", 64-column base64). */
int smki_cert_to_pem(const uint8_t *der, size_t len, char *out, size_t cap, size_t *out_len);

/* The DCCKI policy a test environment uses when none is configured: the DCC's is not
 * public, so this one is in the example arc (2.999, X.660) and is never live. */
#define SMKI_CA_TEST_DCCKI_POLICY "2.999.1.2.826.1"

#endif
