/* What ca's files share and nobody else sees: the certificate assembler the issuer
 * and the ceremony both use, and the store record codecs. */
#ifndef SMKI_CA_PRIVATE_H
#define SMKI_CA_PRIVATE_H

#include "ca.h"
#include "crl.h"

/* The fixed encodings of the P-256 suite (RFC 5480, RFC 5758). */
extern const uint8_t SMKI_CA_ALG_ECDSA_SHA256[12];  /* AlgorithmIdentifier, parameters absent */
extern const uint8_t SMKI_CA_SPKI_P256_PREFIX[26];  /* SubjectPublicKeyInfo up to the point */

/* Everything one certificate is made of. The assembler writes the extensions in the
 * order the RTDS certificates use (keystore/00db1234567890a0-ds.pem,
 * 90b3d51f30010000-ds.pem): keyUsage, subjectKeyIdentifier, then subjectAltName
 * (device) or basicConstraints (CA), certificatePolicies, authorityKeyIdentifier. */
typedef struct {
    smki_profile_id profile;
    const uint8_t *serial;               /* SMKI_SERIAL_LEN */
    const uint8_t *issuer;               /* Name, DER */
    size_t issuer_len;
    int64_t not_before, not_after;       /* not_after < 0: 99991231235959Z */
    const uint8_t *subject;              /* Name, DER */
    size_t subject_len;
    const uint8_t *spki;                 /* SubjectPublicKeyInfo, DER, copied as is */
    size_t spki_len;
    unsigned ku;                         /* SMKI_KU_* bits */
    const uint8_t *ski;                  /* SMKI_KEYID_LEN */
    const uint8_t *aki;                  /* SMKI_KEYID_LEN, or NULL: absent (a root) */
    int basic;                           /* 0 absent; 1 cA TRUE; 2 cA TRUE, pathLen 0 */
    const uint8_t *policy;               /* OID contents octets */
    size_t policy_len;
    int policy_critical;
    const uint8_t *hw_type;              /* device: OID contents octets of hwType */
    size_t hw_type_len;
    const uint8_t *hw_serial;            /* device: 8 octets, the Device ID */
    const uint8_t *more_exts;            /* DCCKI: Extension SEQUENCEs appended after the others */
    size_t more_exts_len;
} ca_tbs;

/* What dccki.c needs of an issuer (issue.c keeps the struct to itself). */
typedef struct {
    const smki_env *env;
    smki_key *key;
    smki_profile_id profile;  /* the CA's own */
    const uint8_t *name;      /* its subject, DER */
    size_t name_len;
    const uint8_t *ski;       /* SMKI_KEYID_LEN */
    int64_t not_after;        /* its certificate's; < 0 unknown */
    const uint8_t *policy;    /* the leaves' policy OID, contents octets */
    size_t policy_len;
} ca_issuer_view;
void smki_ca_issuer_view_of(smki_ca_issuer *is, ca_issuer_view *v);

/* tbsCertificate, then the signature with key, into out (cap octets). key NULL: a
 * placeholder signature (r = s = 1) for the issuer's template, which is never released. */
int smki_ca_assemble(const ca_tbs *t, smki_key *key, uint8_t *out, size_t cap, size_t *len);
/* RFC 5280 4.2.1.2 method 2: 0x4 nibble, then the low 60 bits of SHA-1 of the point. */
/* smki_ca_find inside the caller's transaction t. */
int smki_ca_find_txn(smki_txn *t, smki_ca_db *db, const smki_ca_query *q, smki_cert_fn_t fn, void *arg);
/* The dotted text of an OBJECT IDENTIFIER's contents octets (csr.c), as
 * OBJ_obj2txt(..., 1) writes it: its length; -1 when they do not end on a whole
 * subidentifier or the text does not fit cap (NUL included); -2 for an arc past
 * 64 bits, which the caller leaves to OpenSSL. */
int smki_ca_oid_text(const uint8_t *content, size_t len, char *out, size_t cap);
/* SHA-256 and SHA-1 through digests fetched once (hash.c); SMKI_E_CRYPTO on failure. */
int smki_ca_sha256(const uint8_t *p, size_t n, uint8_t out[32]);
/* A Name of UTF8String attributes: OU=<ou>, CN=<cn> (SMKI CAs; either may be NULL)
 * or CN=<cn> (DCCKI CAs). */
int smki_ca_name_ou_cn(const char *ou, const char *cn, uint8_t *out, size_t cap, size_t *len);
/* Lint der in env: clean and of profile `want`, else SMKI_E_INTERNAL naming the rules. */
int smki_ca_lint_release(const uint8_t *der, size_t len, const smki_env *env, smki_profile_id want, smki_lint_report *rep);
/* Serial: 16 octets from the CSPRNG (or the test hook), positive, first octet non-zero. */
int smki_ca_serial_new(uint8_t serial[SMKI_SERIAL_LEN], int *is_fixed);
/* Is a CN acceptable: 1..64 characters, printable UTF-8 without controls. */
int smki_ca_check_cn(const char *cn, const char *what);

/* ---- Release by construction (lint_fast.c) --------------------------------------------
 * A device issuer's template certificate (one per key usage), linted in full once,
 * and the five slots in which its certificates may differ. smki_ca_fast_check proves a
 * certificate clean without decoding it: 1 proven; 0 not proven (*why, if given,
 * says where), and the caller must then lint it in full (smki_ca_lint_release), whose
 * verdict decides. point and hw_serial are the CSR's, validated by smki_csr_parse:
 * the certificate must carry exactly them. */
typedef enum { CA_SLOT_SERIAL, CA_SLOT_NOT_BEFORE, CA_SLOT_POINT, CA_SLOT_SKI, CA_SLOT_HW_SERIAL, CA_SLOT_COUNT } ca_slot_kind;
typedef struct {
    ca_slot_kind kind;
    size_t off, len; /* in der */
} ca_slot;
typedef struct {
    int ready;                    /* learned and linted clean as a device certificate */
    size_t tbs_end;               /* the tbsCertificate is der[4 .. tbs_end) */
    ca_slot slots[CA_SLOT_COUNT]; /* in the order of CA_SLOT_*, which is their order in der */
    size_t len;
    uint8_t der[SMKI_CERT_DER_MAX];
} ca_fast_ref;
/* Copy a device certificate made by smki_ca_assemble and find its slots with the cursor
 * (SMKI_E_INTERNAL if it is not of that shape). Leaves ready 0: the caller sets it
 * once the template lints clean. */
int smki_ca_fast_learn(ca_fast_ref *ref, const uint8_t *der, size_t len);
int smki_ca_fast_check(const ca_fast_ref *ref, const uint8_t *der, size_t len, const uint8_t point[SMKI_POINT_LEN],
                  const uint8_t hw_serial[8], const char **why);
/* Whether this thread's last smki_ca_build was released by smki_ca_fast_check (1) or by
 * the full linter (0): for tests and benchmarks. */
void smki_ca_fast_note(int fast);
int smki_ca_last_release_was_fast(void);
/* The template of a device issuer for a key usage (SMKI_USAGE_DS / _KA); NULL for
 * other issuers. */
const ca_fast_ref *smki_ca_issuer_fast_ref(const smki_ca_issuer *is, int usage);

/* ---- Store records (ca_store.c) ------------------------------------------------------ */
#define CA_CERT_KEY_LEN (SMKI_KEYID_LEN + SMKI_SERIAL_LEN)
void smki_ca_cert_key(const smki_cert *c, uint8_t key[CA_CERT_KEY_LEN]);
int smki_ca_cert_encode(const smki_cert *c, uint8_t *out, size_t cap, size_t *len);
int smki_ca_cert_decode(const uint8_t key[CA_CERT_KEY_LEN], const void *val, size_t len, smki_cert *out);
/* The longest record smki_ca_cert_encode writes. */
#define CA_CERT_RECORD_MAX (46 + 1 + SMKI_ENV_NAME_MAX + 2 + SMKI_CERT_DER_MAX)
/* The facet index (ca.h): its key for a certificate (returns the length) and its
 * value seq || issuer SKI || serial. */
#define CA_FACET_KEY_MAX (4 + SMKI_ENV_NAME_MAX)
#define CA_FACET_VAL_LEN (8 + CA_CERT_KEY_LEN)
size_t smki_ca_facet_key(const smki_cert *c, uint8_t out[CA_FACET_KEY_MAX]);
/* Every certificate of this serial (from this issuer, when not NULL) with its record:
 * one seek per issuer in "certs". fn returns 0 to go on, 1 to stop, negative on error. */
typedef int (*ca_cert_visit_fn)(const uint8_t key[CA_CERT_KEY_LEN], const void *rec, size_t rlen, void *arg);
int smki_ca_certs_of_serial(smki_txn *t, const smki_ca_db *db, const uint8_t serial[SMKI_SERIAL_LEN],
                       const uint8_t *issuer_ski, ca_cert_visit_fn fn, void *arg);
void smki_ca_facet_val(const smki_cert *c, uint8_t out[CA_FACET_VAL_LEN]);
/* A "revocations" record (revoke.c), read back strictly. */
int smki_ca_revocation_decode(const uint8_t key[CA_CERT_KEY_LEN], const void *val, size_t len, smki_revocation *out);
/* A "crls" record (crl.c) into out, its DER malloc'd (smki_crl_clear); key names it in
 * messages. */
int smki_ca_crl_decode(const char *key, const uint8_t *val, size_t len, smki_crl *out);
/* The "cas" record of a CA; put in the ceremony's transaction. */
int smki_ca_record_put(smki_txn *t, const smki_ca_db *db, const smki_ca_record *r);

/* ---- Batch input (batch.c), for the fuzz target ------------------------------------- */
/* The items of a file's bytes (taken over: freed with the list, also on failure), as
 * smki_ca_batch_input_open splits a file; name labels them. */
int smki_ca_batch_input_from_bytes(const char *name, uint8_t *bytes, size_t len, smki_ca_batch_input **out);
/* Item i's octets (an item of a file, not of a folder). */
void smki_ca_batch_input_item(const smki_ca_batch_input *in, size_t i, const uint8_t **p, size_t *len);

/* The gate (ca/gate.c): 0 when db may write in the store as t sees it (it carries the
 * RA's gate, or the store is not governed); SMKI_E_REFUSED naming what otherwise. _now:
 * the same in a read of its own, for a write queued in a batch. */
int smki_ca_write_allowed(smki_txn *t, const smki_ca_db *db, const char *what);
int smki_ca_write_allowed_now(const smki_ca_db *db, const char *what);
/* smki_ca_cert_queue without the check, for the batch, whose every group commit checks
 * the gate in its own transaction (one read per group, not one per certificate). */
int smki_ca_cert_queue_ungated(smki_batch *b, const smki_ca_db *db, const smki_cert *c);

#endif
