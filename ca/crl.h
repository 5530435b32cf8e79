/* ca: revocation and the lists that carry it, CRLs and ARLs (reference §4
 * "Revocation", RFC 5280 5). Builds on the CA proper (ca/ca.h): its store, its
 * certificates, its kinds of CA. */
#ifndef SMKI_CA_CRL_H
#define SMKI_CA_CRL_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "hsm/hsm.h"
#include "store/store.h"

#include "ca.h"

/* ---- Revocation, CRLs and ARLs (reference §4 "Revocation") --------------------------------
 * Organisation certificates (and DCCKI TLS certificates) are revoked onto their issuing
 * CA's CRL; CA certificates (OCA, DCA, DCCKI ICA) onto their root's ARL. Device
 * certificates are replaced, not revoked, and are refused; so is a self-signed root
 * (it is withdrawn from trust stores instead). A revocation is final: status R, its
 * time and reason recorded in "revocations" (certificate key -> record), the status
 * index moved in the same transaction. CRLs/ARLs follow RFC 5280 5: v2, ecdsa-with-
 * SHA256, issuer = the CA's subject, thisUpdate/nextUpdate, an entry per revoked
 * certificate of that CA (reasonCode unless unspecified), crlNumber and
 * authorityKeyIdentifier; signed with the CA key in the token; the latest of each CA
 * kept in "crls" and written atomically to <home>/ca/<env>/<ca kind>.crl (DER). */

/* RFC 5280 5.3.1 CRLReason. */
typedef enum {
    SMKI_REASON_UNSPECIFIED = 0,
    SMKI_REASON_KEY_COMPROMISE = 1,
    SMKI_REASON_CA_COMPROMISE = 2,
    SMKI_REASON_AFFILIATION_CHANGED = 3,
    SMKI_REASON_SUPERSEDED = 4,
    SMKI_REASON_CESSATION_OF_OPERATION = 5,
    SMKI_REASON_CERTIFICATE_HOLD = 6,   /* refused: a revocation here is final */
    SMKI_REASON_REMOVE_FROM_CRL = 8,    /* refused: delta CRLs only */
    SMKI_REASON_PRIVILEGE_WITHDRAWN = 9,
    SMKI_REASON_AA_COMPROMISE = 10,     /* refused: attribute certificates only */
} smki_revoke_reason;
/* "keyCompromise", ...; NULL for a value that is not a reason code. */
const char *smki_revoke_reason_name(int reason);
/* Accepts the RFC 5280 name in any case ("keyCompromise", "keycompromise"), with
 * hyphens ("key-compromise") or the number ("1"). Refuses (SMKI_E_USAGE) anything else
 * and the reasons smki does not use (certificateHold, removeFromCRL, aACompromise). */
SMKI_MUST_CHECK int smki_revoke_reason_parse(const char *text, smki_revoke_reason *out);

typedef struct {
    uint8_t issuer_ski[SMKI_KEYID_LEN];
    uint8_t serial[SMKI_SERIAL_LEN];
    smki_revoke_reason reason;
    int64_t revoked_at; /* seconds since 1970, UTC: the CRL entry's revocationDate */
    size_t issued_revoked; /* a CA revoked now: the certificates it issued revoked with it (not stored) */
} smki_revocation;

typedef struct {
    const uint8_t *serial;     /* SMKI_SERIAL_LEN octets, required */
    const uint8_t *issuer_ski; /* SMKI_KEYID_LEN octets; NULL: the only certificate of that serial */
    const char *env;           /* NULL: any; else the certificate must be of this environment */
    smki_revoke_reason reason;
    int64_t when;              /* 0: now */
} smki_revoke_req;

/* Revoke one certificate. Refusals, each with nothing written: SMKI_E_NOTFOUND no
 * such serial (in env); SMKI_E_USAGE several issuers used it (give issuer_ski), a
 * reason smki does not use; SMKI_E_REFUSED a device certificate, a root, a certificate
 * already revoked (the message says when and why). out and rev (either may be NULL)
 * receive the revoked certificate and its record. */
SMKI_MUST_CHECK int smki_ca_revoke(smki_ca_db *db, const smki_revoke_req *r, smki_cert *out, smki_revocation *rev);
/* The same inside the caller's write transaction (out required), so that the RA records
 * the revocation and its audit entry in one commit; fn-style: no side effect outside it. */
SMKI_MUST_CHECK int smki_ca_revoke_txn(smki_txn *t, smki_ca_db *db, const smki_revoke_req *r, smki_cert *out, smki_revocation *rev);
/* SMKI_E_NOTFOUND when that certificate is not revoked. */
SMKI_MUST_CHECK int smki_ca_revocation_get(smki_ca_db *db, const uint8_t issuer_ski[SMKI_KEYID_LEN],
                           const uint8_t serial[SMKI_SERIAL_LEN], smki_revocation *out);
/* Change a certificate's status (e.g. pending -> in-use) and its index entry. Not to
 * or from revoked: that is smki_ca_revoke, and final (SMKI_E_REFUSED). */
SMKI_MUST_CHECK int smki_ca_set_status(smki_ca_db *db, const uint8_t issuer_ski[SMKI_KEYID_LEN], const uint8_t serial[SMKI_SERIAL_LEN],
                       smki_cert_status status);

/* Publication intervals: nextUpdate = thisUpdate + the interval, from [ca.<env>]
 * crl_hours (issuing CAs' CRLs) and arl_hours (roots' ARLs), 1..8784 hours. */
#define SMKI_CRL_DEFAULT_HOURS 168 /* 7 days */
#define SMKI_ARL_DEFAULT_HOURS 720 /* 30 days */
/* Is this CA kind a root (its list is an ARL)? */
SMKI_MUST_CHECK int smki_ca_kind_is_root(smki_ca_kind k);
/* The interval of env's list of CA kind k, in seconds, from conf (may be NULL). */
SMKI_MUST_CHECK int smki_ca_crl_interval(const smki_conf *conf, const char *env, smki_ca_kind k, int64_t *seconds);

typedef struct {
    smki_ca_kind ca;
    char env[SMKI_ENV_NAME_MAX];
    uint64_t number;           /* cRLNumber: 1, 2, ... per CA */
    int64_t this_update, next_update;
    size_t entries;            /* revoked certificates listed */
    uint8_t *der;              /* the CertificateList, DER (owned: smki_crl_clear) */
    size_t der_len;
    char path[4200];           /* where it was published; "" if not written */
} smki_crl;
void smki_crl_clear(smki_crl *c);

/* A step a caller above the CA (the RA's audit trail) adds to the write transaction
 * that records the list: crl is the list as recorded (der, number, entries, times; no
 * path yet). May run more than once; its failure records and publishes nothing. */
typedef int (*smki_crl_hook_fn)(smki_txn *t, const smki_crl *crl, void *arg);
typedef struct {
    const smki_hsm_opts *hsm;  /* the token's module and user PIN */
    const char *home;          /* publish to <home>/ca/<env>/<kind>.crl; NULL: store only */
    int64_t now;               /* thisUpdate; 0: the clock */
    int64_t interval;          /* seconds to nextUpdate; 0: the default of the kind */
    smki_crl_hook_fn on_store; /* optional */
    void *hook_arg;
} smki_crl_opts;

/* Make, sign (with the CA's key), check (the signature verifies with the CA
 * certificate's key), record as the CA's latest and publish the CRL of env's CA k
 * (an ARL for a root). SMKI_E_NOTFOUND when env has no such CA. */
SMKI_MUST_CHECK int smki_ca_crl_publish(smki_ca_db *db, const char *env, smki_ca_kind k, const smki_crl_opts *o, smki_crl *out);
/* The same in three steps, for a caller that records the list inside its own write
 * transaction (the RA: a revocation and the list that carries it in one commit). begin:
 * everything that needs no transaction (the CA record, its key opened); in: build, sign,
 * check and record the list in t (it sees t's own changes, such as a revocation made
 * earlier in t; may run more than once); end, once t is committed: the result and the
 * file under o->home (the job is freed). job_free: a job whose transaction failed. */
typedef struct smki_crl_job smki_crl_job;
SMKI_MUST_CHECK int smki_ca_crl_begin(smki_ca_db *db, const char *env, smki_ca_kind k, const smki_crl_opts *o, smki_crl_job **out);
/* The list of env's CA of this SKI, the current one of its kind or one superseded after
 * a CA compromise (as long as its key is available): a superseded CA's list is kept
 * apart from its successor's (store "<env>/<kind>/<its serial>", file
 * <home>/ca/<env>/<kind>-<its serial>.crl), numbered on its own. */
SMKI_MUST_CHECK int smki_ca_crl_begin_ski(smki_ca_db *db, const char *env, const uint8_t ski[SMKI_KEYID_LEN], const smki_crl_opts *o,
                          smki_crl_job **out);
SMKI_MUST_CHECK int smki_ca_crl_publish_ski(smki_ca_db *db, const char *env, const uint8_t ski[SMKI_KEYID_LEN],
                            const smki_crl_opts *o, smki_crl *out);
SMKI_MUST_CHECK int smki_ca_crl_in(smki_txn *t, smki_crl_job *j);
SMKI_MUST_CHECK int smki_ca_crl_end(smki_crl_job *j, smki_crl *out);
void smki_ca_crl_job_free(smki_crl_job *j);
/* The latest recorded list of env's CA k (for the repository); SMKI_E_NOTFOUND if none
 * has been published. */
SMKI_MUST_CHECK int smki_ca_crl_get(smki_ca_db *db, const char *env, smki_ca_kind k, smki_crl *out);

#endif
