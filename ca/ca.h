/* ca: issuing. Hierarchies made in a ceremony, certificates issued from CSRs, batches,
 * serials, the CA's store, DCCKI TLS certificates and recovery from a CA compromise.
 * Its other public headers: ca/csr.h (CSR intake, included here: issuance takes a
 * parsed CSR) and ca/crl.h (revocation, CRLs and ARLs). */
#ifndef SMKI_CA_H
#define SMKI_CA_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "hsm/hsm.h"
#include "policy/policy.h"

#include "csr.h"

/* =============================================================================
 * The CA proper (issue 3): hierarchies made in a ceremony (ca/ceremony.c),
 * certificates issued from CSRs through a prepared template per issuer
 * (ca/issue.c), every certificate linted before it is released, and every one
 * recorded in the store with its indices (ca/ca_store.c).
 * ========================================================================== */
#include "store/store.h"

#define SMKI_SERIAL_LEN 16     /* octets of every serialNumber smki writes */
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
SMKI_MUST_CHECK int smki_cert_status_parse(const char *text, smki_cert_status *out);
/* A serial as smki prints it (SMKI_SERIAL_LEN octets): 32 hex digits, colons allowed
 * between them (4a:1f:...). SMKI_E_USAGE naming the text otherwise. */
SMKI_MUST_CHECK int smki_serial_parse(const char *text, uint8_t serial[SMKI_SERIAL_LEN]);
/* A certificate's usage as text: "DS" (SMKI_USAGE_DS), "KA" (SMKI_USAGE_KA), "CA" (0, a
 * CA certificate); and back, in either case. SMKI_E_USAGE listing them otherwise. */
const char *smki_cert_usage_name(int usage);
SMKI_MUST_CHECK int smki_cert_usage_parse(const char *text, int *usage);

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
/* The name or its short form: root, oca, dca, ica. SMKI_E_USAGE listing them otherwise. */
SMKI_MUST_CHECK int smki_ca_kind_parse(const char *text, smki_ca_kind *out);
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
    /* The store's arrival order: set when the certificate is recorded (the clock in
     * ns, kept rising within a process; a migrated record counts from 1). It orders
     * the facet index so that recording appends to it. Ignored by smki_ca_cert_put. */
    uint64_t seq;
    size_t der_len;
    uint8_t der[SMKI_CERT_DER_MAX];
} smki_cert;

/* ---- The CA's databases ------------------------------------------------------------
 * "certs": issuer SKI (8) || serial (16) -> record (versioned, ca_store.c)
 * Indices, DUPSORT. By issuer and serial: "certs" itself; by serial from any issuer:
 * "certs" too, one seek per issuer (a skip scan: a store has a few issuers). Value
 * issuer SKI || serial: "by_eui" (subject EUI-64), "by_ski" (the subject's SKI).
 * "by_facet" indexes role, key usage, environment and status together: key status
 * (1) || usage (1: 0 CA, 1 DS, 2 KA) || has role (1) || role (1) || environment name,
 * value seq (8, big-endian) || issuer SKI || serial. The few distinct keys answer a
 * query on any subset of the four (a status is a prefix; the others skip from key to
 * key), and with the arrival sequence leading its values a group of certificates
 * lands on the last pages of the index, where four indices of a handful of keys
 * each took an insert at a random place of a large tree per certificate, dirtying a
 * page each (store schema 2; smki_ca_db_open migrates a schema-1 store).
 * "cas": "<env>/<kind name>" -> the CA's record (key reference, environment as
 * configured at its ceremony, its certificate's key in "certs"). */
/* The RA's capability. A store with RA operators is governed: the RA marks it so in
 * "cas" (in the transaction that registers its first operator), and from then on every
 * write of the CA (recording a certificate, a revocation, a status, a CRL/ARL, a CA of a
 * ceremony or a successor) is refused (SMKI_E_REFUSED) unless the smki_ca_db carries
 * the gate. Only ra/ can make one (its constructor is in ca/ca_gate.h, which nothing
 * outside ra/ may include), and the RA never hands out a handle that carries it
 * (smki_ra_ca_db is a view without it): in a governed store, issuing, revoking,
 * publishing and ceremonies happen only through the smki_ra_* entry points, which
 * apply the RA's rules and write the audit entry in the same transaction. */
typedef struct smki_ca_gate smki_ca_gate;

typedef struct {
    smki_store *store;
    smki_db certs, by_eui, by_ski, by_facet, cas;
    smki_db revocations; /* issuer SKI || serial -> reason, time (smki_ca_revoke) */
    smki_db crls;        /* "<env>/<kind name>" -> the CA's latest CRL/ARL and its number */
    const smki_ca_gate *gate; /* NULL from smki_ca_db_open: the RA's own handle only */
} smki_ca_db;
/* Opens (creating) every database above: call before any transaction on the store.
 * The handle carries no gate: in a store the RA governs it reads, and its writes are
 * refused. A store of schema 1 (serial, role, usage, environment and status in indices of
 * their own, records without seq) is brought to schema 2 in one write transaction
 * here: every record rewritten with a seq, the facet index built from them, the old
 * indices emptied. Read-only, such a store is refused (SMKI_E_NOTFOUND: its
 * facet index is not there yet, the message says why) until a read-write open has
 * migrated it. */
SMKI_MUST_CHECK int smki_ca_db_open(smki_store *s, smki_ca_db *out);

/* Record a certificate and its indices: in a write transaction, or queued in a batch
 * (durable once the batch commits). SMKI_E_EXISTS when the issuer already has a
 * certificate of that serial: nothing of it is written. SMKI_E_REFUSED in a governed
 * store without the RA's gate (above), as for every write below. */
SMKI_MUST_CHECK int smki_ca_cert_put(smki_txn *t, const smki_ca_db *db, const smki_cert *c);
SMKI_MUST_CHECK int smki_ca_cert_queue(smki_batch *b, const smki_ca_db *db, const smki_cert *c);
/* By issuer and serial; SMKI_E_NOTFOUND if none. */
SMKI_MUST_CHECK int smki_ca_cert_get(smki_ca_db *db, const uint8_t issuer_ski[SMKI_KEYID_LEN], const uint8_t serial[SMKI_SERIAL_LEN],
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
SMKI_MUST_CHECK int smki_ca_find(smki_ca_db *db, const smki_ca_query *q, smki_cert_fn_t fn, void *arg);
/* Many queries in one read of the store (one snapshot): fn(cert, args[i]) visits the
 * certificates of qs[i] as smki_ca_find would, query after query in order; a visitor
 * that stops (returns non-zero) stops only its own query; a failure (negative) ends
 * them all. Lookups by EUI-64 or SKI are fetched at once where the store can
 * (PostgreSQL: one round trip for all, not one each). */
SMKI_MUST_CHECK int smki_ca_find_many(smki_ca_db *db, const smki_ca_query *qs, size_t n, smki_cert_fn_t fn,
                                      void *const *args);
/* Certificates in the store. */
SMKI_MUST_CHECK int smki_ca_count(smki_ca_db *db, size_t *n);

/* A CA of a hierarchy as its ceremony recorded it. */
typedef struct {
    smki_ca_kind kind;
    char env[SMKI_ENV_NAME_MAX];
    char key_ref[SMKI_KEY_URI_MAX]; /* pkcs11: URI or file:PATH */
    char env_text[2048];            /* the environment at the ceremony, as [env.<name>] configuration */
    smki_cert cert;
} smki_ca_record;
/* SMKI_E_NOTFOUND when the hierarchy of env has no CA of this kind. */
SMKI_MUST_CHECK int smki_ca_get(smki_ca_db *db, const char *env, smki_ca_kind kind, smki_ca_record *out);
/* A CA of env by its certificate's SKI: the current one of its kind or one superseded by
 * a successor (CA compromise recovery keeps the old record, with its key reference).
 * *current (optional): 1 for the current CA of its kind. SMKI_E_NOTFOUND naming the SKI. */
SMKI_MUST_CHECK int smki_ca_get_by_ski(smki_ca_db *db, const char *env, const uint8_t ski[SMKI_KEYID_LEN], smki_ca_record *out,
                       int *current);
/* A CA of env named as a person names it: its kind ("smki-oca", "oca", ...: the
 * current one) or its certificate's SKI (16 hex digits: the current one of its kind or
 * one superseded after a CA compromise). SMKI_E_NOTFOUND when env has no such CA,
 * SMKI_E_USAGE for a name that is neither. */
typedef struct {
    smki_ca_kind kind;
    uint8_t ski[SMKI_KEYID_LEN];
    uint8_t serial[SMKI_SERIAL_LEN]; /* its certificate's */
    int by_ski;                      /* named by its SKI */
    int current;                     /* the current CA of its kind (0: superseded) */
} smki_ca_selection;
SMKI_MUST_CHECK int smki_ca_select(smki_ca_db *db, const char *env, const char *text, smki_ca_selection *out);
/* The record under its key ("<env>/<kind>" or "<env>/<kind>/<serial>") in t. */
SMKI_MUST_CHECK int smki_ca_get_txn(smki_txn *t, const smki_ca_db *db, const char *key, smki_ca_record *out);
/* The environment a hierarchy was made with (from its records): policy OIDs, names
 * and periods are fixed at the ceremony. SMKI_E_NOTFOUND if env has no CA. */
SMKI_MUST_CHECK int smki_ca_env_get(smki_ca_db *db, const char *env, smki_env *out);
/* The environment as configuration text ("[env.<name>]" and every key), which
 * smki_env_load reads back to the same values. */
SMKI_MUST_CHECK int smki_env_to_conf(const smki_env *env, char *out, size_t cap);

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
SMKI_MUST_CHECK int smki_ca_issuer_new(const smki_env *env, const uint8_t *cert, size_t cert_len, smki_key *key,
                       smki_ca_issuer **out);
/* The CA of env's hierarchy that issues `leaf` (SMKI_PROFILE_ORGANISATION: the OCA,
 * SMKI_PROFILE_DEVICE: the DCA), with its key opened. */
SMKI_MUST_CHECK int smki_ca_issuer_open(smki_ca_db *db, const char *env, smki_profile_id leaf, const smki_hsm_opts *o,
                        smki_ca_issuer **out);
void smki_ca_issuer_free(smki_ca_issuer *is);
const smki_env *smki_ca_issuer_env(const smki_ca_issuer *is);
smki_profile_id smki_ca_issuer_profile(const smki_ca_issuer *is); /* the CA's own profile */
const uint8_t *smki_ca_issuer_cert(const smki_ca_issuer *is, size_t *len);

/* The profile a certificate from this CSR is issued under: want when given
 * (ORGANISATION, DEVICE, DCCKI_SERVER or DCCKI_CLIENT; another is SMKI_E_USAGE), else
 * DEVICE when the CSR names a device (a hardwareModuleName), else ORGANISATION. */
SMKI_MUST_CHECK int smki_ca_leaf_profile(const smki_csr *csr, smki_profile_id want, smki_profile_id *out);

/* Whether environment env can be used: built in or configured in conf with its OIDs
 * set, or, when store_dir (may be NULL) holds a store, its hierarchy is there (made with
 * a configuration no longer at hand). Opens that store read-only itself (a store is
 * open once per process: call this before opening it), never creates it. The refusal is
 * smki_env_load's or smki_env_check_configured's. */
SMKI_MUST_CHECK int smki_ca_env_check(const smki_conf *conf, const char *store_dir, const char *env);

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

/* A device certificate for r's key and Device ID would be the second in use from this
 * CA (typically a re-run of an issuance whose file was not written: 'smki ca show SERIAL
 * --out FILE' gives it back): SMKI_E_EXISTS naming the one there. The CA's own refusals
 * of r (those of smki_ca_build) come first; an organisation request passes. 0 when
 * there is none. The RA's gate (smki_ra_issue) checks it unless allow_duplicate_key. */
SMKI_MUST_CHECK int smki_ca_check_new_device(smki_ca_issuer *is, smki_ca_db *db, const smki_issue_req *r);
/* The same check of a device certificate c already built (smki_ca_build), inside the
 * transaction t that is to record it, so that two issuers at once cannot both pass it.
 * Anything but a device certificate passes. */
SMKI_MUST_CHECK int smki_ca_check_new_device_txn(smki_txn *t, smki_ca_db *db, const smki_cert *c);

/* Build, sign and lint; nothing is stored. */
SMKI_MUST_CHECK int smki_ca_build(smki_ca_issuer *is, const smki_issue_req *r, smki_cert *out);
/* Build and record in one write transaction (a serial that the issuer already used,
 * astronomically unlikely, is drawn again). */
SMKI_MUST_CHECK int smki_ca_issue(smki_ca_issuer *is, smki_ca_db *db, const smki_issue_req *r, smki_cert *out);
/* Build and queue in a batch: for bulk issuance, durable when the batch commits. */
SMKI_MUST_CHECK int smki_ca_issue_batch(smki_ca_issuer *is, smki_ca_db *db, smki_batch *b, const smki_issue_req *r,
                        smki_cert *out);

/* ---- Keys of a half-made ceremony (ca/ceremony.c) ----------------------------------------
 * A ceremony killed after generating a key and before recording its CA leaves the key
 * on the token under the label a re-run would generate, which refuses the re-run. These
 * are listed, and removed one at a time with the SO PIN, never a key a CA record holds. */
typedef struct {
    smki_ca_kind kind; /* the CA it was made for */
    char token[64];
    char label[65];
    char uri[SMKI_KEY_URI_MAX];
} smki_ca_orphan;
typedef int (*smki_ca_orphan_fn)(const smki_ca_orphan *o, void *arg);
SMKI_MUST_CHECK int smki_ca_orphan_keys(smki_ca_db *db, const char *env, const smki_conf *conf, const smki_hsm_opts *hsm,
                        smki_ca_orphan_fn fn, void *arg);
/* Remove the key labelled label if it is one of those (SMKI_E_REFUSED otherwise), the
 * SO PIN proved first (smki_key_destroy). *out says which. */
SMKI_MUST_CHECK int smki_ca_orphan_key_remove(smki_ca_db *db, const char *env, const smki_conf *conf, const smki_hsm_opts *hsm,
                              const char *label, const char *so_pin, smki_ca_orphan *out);

/* ---- Batches of device CSRs (ca/batch.c) ----------------------------------------------
 * Many device CSRs issued at once by the device CA, resumably. Each CSR is known by
 * the SHA-256 of its DER: the database "by_csr" maps issuer SKI (8) || SHA-256 (32)
 * to the certificate's key in "certs", and that entry is written in the same group
 * commit as the certificate and its indices. So after a crash (kill -9 at any
 * moment) a certificate is in the store with its by_csr entry or not at all, and a
 * re-run finds every CSR already issued and gives back its certificate instead of
 * issuing another. Output files are written only after their group has committed,
 * each atomically (a temporary beside it, fsync, rename), so a file never names a
 * certificate the store lost and is never half written.
 *
 * Input: a folder (every regular file whose name does not start with '.', in name
 * order; each one CSR, PEM or DER), or a file: one CSR (PEM or DER), or several PEM
 * CSRs one after another (as `cat *.csr` makes); text outside the PEM blocks is
 * ignored. Items are named "<folder>/<file>" or "<file>#<n>" (n from 1) in reports.
 *
 * Output: <out>/<eui>-<ds|ka>.pem (16 lowercase hex digits). If that name already
 * holds a different certificate (a device that sent a new CSR), the certificate is
 * written as <eui>-<ds|ka>-<serial>.pem instead: a file is never replaced by another
 * certificate. */
typedef struct smki_ca_batch_input smki_ca_batch_input;
/* Read the list of CSRs from path (folder or file, as above). A folder's files are
 * read when they are issued; a file's bytes at once (at most SMKI_CA_BATCH_FILE_MAX). */
#define SMKI_CA_BATCH_FILE_MAX ((size_t)1 << 30)
SMKI_MUST_CHECK int smki_ca_batch_input_open(const char *path, smki_ca_batch_input **out);
/* The same from bytes already read (standard input: 'smki ca batch --in -'): one CSR, or
 * PEM CSRs one after another, as a file is; items named "<name>#<n>". Takes bytes
 * (malloc'd) on every path. */
SMKI_MUST_CHECK int smki_ca_batch_input_from_bytes(const char *name, uint8_t *bytes, size_t len,
                                                   smki_ca_batch_input **out);
size_t smki_ca_batch_input_count(const smki_ca_batch_input *in);
/* Item i read (a folder's file) and parsed (smki_csr_parse's refusals); *out freed by the caller. */
SMKI_MUST_CHECK int smki_ca_batch_input_csr(const smki_ca_batch_input *in, size_t i, smki_csr **out);
const char *smki_ca_batch_input_name(const smki_ca_batch_input *in, size_t i);
void smki_ca_batch_input_free(smki_ca_batch_input *in);

typedef enum {
    SMKI_BATCH_NOT_DONE = 0, /* the run stopped (a store or token failure) before it */
    SMKI_BATCH_ISSUED,       /* a new certificate, committed by this run */
    SMKI_BATCH_EXISTING,     /* issued by an earlier run: that certificate written again */
    SMKI_BATCH_DUPLICATE,    /* the same CSR earlier in this input: one certificate for both */
    SMKI_BATCH_REFUSED,      /* a bad CSR: code and reason say why; nothing issued */
} smki_batch_outcome;
/* "issued", "already-issued", "duplicate", "refused", "not-done". */
const char *smki_batch_outcome_name(smki_batch_outcome o);

typedef struct {
    smki_batch_outcome outcome;
    int code;                  /* refused: the smki_err */
    char *reason;              /* refused: the message (owned by the report) */
    size_t duplicate_of;       /* duplicate: the index of the first */
    int has_cert;              /* issued, existing, duplicate */
    smki_eui64_t eui;
    int usage;                 /* SMKI_USAGE_DS or SMKI_USAGE_KA */
    uint8_t serial[SMKI_SERIAL_LEN];
    char file[80];             /* the certificate's file name inside the output folder */
    int name_clash;            /* written under the serial's name: <eui>-<usage>.pem holds another */
} smki_ca_batch_item;

typedef struct {
    size_t total, done;        /* CSRs in the input; handled so far (in input order) */
    size_t issued, existing, duplicate, refused, files_written, name_clashes;
    size_t commits;            /* group commits made */
    double seconds;
    smki_ca_batch_item *items; /* total of them, in input order */
    uint8_t issuer_ski[SMKI_KEYID_LEN]; /* the device CA's: with an item's serial, its certificate's key */
} smki_ca_batch_report;

typedef void (*smki_ca_batch_progress_fn)(const smki_ca_batch_report *r, void *arg);
/* The gate a caller above the CA (the RA) puts on a batch; ca/ knows nothing of its
 * rules. check: called for every CSR (parsed, before it is looked up or signed), on a
 * worker thread, so it must be safe to call concurrently (store reads are); a negative
 * return refuses that CSR with the error's message (SMKI_E_REFUSED, SMKI_E_NOTFOUND,
 * ...), or stops the run for a store, token or memory failure. on_group: called inside
 * the write transaction of each group commit that records new certificates, with those
 * certificates (n >= 1); like any transaction function it may run more than once. Its
 * failure writes nothing of the group and stops the run (a re-run carries on). */
typedef int (*smki_ca_batch_check_fn)(const smki_csr *csr, void *arg);
typedef int (*smki_ca_batch_group_fn)(smki_txn *t, const smki_cert *const *certs, size_t n, void *arg);
typedef struct {
    const char *out_dir;   /* created if missing; must not be the input folder. NULL: no files (a caller that
                              answers from the store, smki_ca_cert_get with the report's issuer_ski and serials) */
    unsigned threads;      /* 0: the number of processors */
    size_t group;          /* certificates per commit; 0: 256 */
    int64_t not_before;    /* 0: now */
    smki_ca_batch_progress_fn progress; /* optional: after each group and at the end */
    void *progress_arg;
    smki_ca_batch_check_fn check;       /* optional: the gate (above) */
    smki_ca_batch_group_fn on_group;    /* optional */
    void *gate_arg;
} smki_ca_batch_opts;

/* Issue every CSR of in with the device CA `is` (smki_ca_issuer_open for
 * SMKI_PROFILE_DEVICE), recording in db's store and writing certificates into
 * o->out_dir. Takes the store's maintenance lock for the run (one batch at a time per
 * store: SMKI_E_LOCKED names the process that holds it). A bad CSR is refused in the
 * report and the rest go on; the return is 0 then too. A failure of the store, the
 * token or the output folder stops the run and is returned: what was committed
 * before it stays (with its files), and a re-run carries on. *out (freed with
 * smki_ca_batch_report_free) is set in both cases when the run started. */
SMKI_MUST_CHECK int smki_ca_batch_run(smki_ca_issuer *is, smki_ca_db *db, const smki_ca_batch_input *in,
                      const smki_ca_batch_opts *o, smki_ca_batch_report **out);
void smki_ca_batch_report_free(smki_ca_batch_report *r);

/* The certificate a batch issued from this CSR (its DER) with the CA of this SKI;
 * SMKI_E_NOTFOUND if none. */
SMKI_MUST_CHECK int smki_ca_find_by_csr(smki_ca_db *db, const uint8_t issuer_ski[SMKI_KEYID_LEN], const uint8_t *csr_der,
                        size_t csr_len, smki_cert *out);

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

/* A step a caller above the CA (the RA's audit trail) adds to the write transaction
 * that records the CAs made now (made[n], n >= 1, in hierarchy order); ca/ knows nothing
 * of it. Like any transaction function it may run more than once; its failure records
 * none of the CAs (the keys already generated stay on the token, as after any failure
 * past that point: a caller checks what it can before calling). */
typedef int (*smki_ca_init_hook_fn)(smki_txn *t, const smki_ca_record *const *made, size_t n, void *arg);
typedef struct {
    const smki_hsm_opts *hsm; /* the token's module and user PIN */
    const char *home;         /* PEM files under <home>/ca/<env>/, trust store relative to it */
    int64_t now;              /* 0: the clock */
    smki_ca_init_hook_fn on_store; /* optional */
    void *hook_arg;
} smki_ca_init_opts;

SMKI_MUST_CHECK int smki_ca_init(smki_ca_db *db, const char *env, const smki_conf *conf, const smki_ca_init_opts *o,
                 smki_ca_init_report *rep);

/* A certificate as PEM text ("-----BEGIN CERTIFICATE-----", 64-column base64). */
SMKI_MUST_CHECK int smki_cert_to_pem(const uint8_t *der, size_t len, char *out, size_t cap, size_t *out_len);

/* ---- DCCKI TLS certificates (docs/profiles.md "DCCKI") ---------------------------------
 * Server and client certificates from the environment's DCCKI issuing CA (open it with
 * smki_ca_issuer_open(db, env, SMKI_PROFILE_DCCKI_SERVER or _CLIENT, ...)). Subject:
 * the Party Signifier in the environment's party_signifier_attr (organizationIdentifier,
 * 2.5.4.97), then an optional CN, UTF8String; keyUsage critical digitalSignature; one
 * EKU (serverAuth or clientAuth); SAN of dNSNames / iPAddresses (a server needs one);
 * certificatePolicies (the DCCKI policy) non-critical; no basicConstraints. Validity:
 * the environment's dccki_server_years / dccki_client_years, else
 * SMKI_DCCKI_TLS_DEFAULT_YEARS, never past the issuing CA's notAfter. The CSR must
 * request keyUsage digitalSignature and carry no SAN (names come from the request). */
#define SMKI_DCCKI_TLS_DEFAULT_YEARS 1
#define SMKI_PARTY_MAX 65 /* a Party Signifier: 1..64 characters + NUL */
typedef struct {
    const smki_csr *csr;       /* parsed and verified (smki_csr_parse) */
    smki_profile_id profile;   /* SMKI_PROFILE_DCCKI_SERVER or SMKI_PROFILE_DCCKI_CLIENT */
    const char *party;         /* the Party Signifier; NULL: the CSR subject's one (party_signifier_attr);
                                  when both are there they must agree */
    const char *cn;            /* optional CN, 1..64 characters */
    const char *const *dns;    /* dNSNames (LDH labels, no wildcard), n_dns of them */
    size_t n_dns;
    const char *const *ips;    /* iPAddresses as text (IPv4 dotted or IPv6), n_ips of them */
    size_t n_ips;
    int64_t not_before;        /* 0: now */
} smki_tls_req;
/* The request's own checks, without an issuer (what the RA checks at submission): the
 * CSR's key, usage and subject, the Party Signifier (given, or the CSR's; both must
 * agree), the CN, the host names and addresses. party receives the Signifier to use. */
SMKI_MUST_CHECK int smki_ca_tls_check(const smki_env *env, const smki_tls_req *r, char party[SMKI_PARTY_MAX]);
/* Build, sign and lint (nothing stored); or build and record. The Party Signifier
 * actually used is copied to party_out when it is not NULL. */
SMKI_MUST_CHECK int smki_ca_build_tls(smki_ca_issuer *is, const smki_tls_req *r, smki_cert *out, char party_out[SMKI_PARTY_MAX]);
SMKI_MUST_CHECK int smki_ca_issue_tls(smki_ca_issuer *is, smki_ca_db *db, const smki_tls_req *r, smki_cert *out,
                      char party_out[SMKI_PARTY_MAX]);

/* ---- CA compromise recovery (docs/ra.md) -----------------------------------------------------
 * The successor of env's issuing CA `kind` (smki-oca, smki-dca or dccki-ica) once its
 * certificate is revoked: a new key (configuration ca.<env>.<kind>_successor_key, e.g.
 * smki_oca_successor_key: a pkcs11:/file: reference to adopt or a label to generate;
 * default label "<env>-<kind>-<first 8 hex digits of the old serial>"), which must
 * differ from the old one; a certificate from the root with the environment's name for
 * that CA; recorded as the environment's CA of that kind in one transaction with its
 * certificate (the revoked one stays in the store with its certificates and CRLs); the
 * PEM file <home>/ca/<env>/<kind>.pem replaced, the old one kept as
 * <kind>-<old serial>.pem. Refused (nothing written) while the CA is not revoked. */
SMKI_MUST_CHECK int smki_ca_successor(smki_ca_db *db, const char *env, smki_ca_kind kind, const smki_conf *conf,
                      const smki_ca_init_opts *o, smki_ca_init_item *out);
/* An organisation certificate certified again by is (the successor): same role, EUI-64,
 * CN and public key; built, signed and linted, nothing stored. */
SMKI_MUST_CHECK int smki_ca_reissue(smki_ca_issuer *is, const smki_cert *old, smki_cert *out);

/* The DCCKI policy a test environment uses when none is configured: the DCC's is not
 * public, so this one is in the example arc (2.999, X.660) and is never live. */
#define SMKI_CA_TEST_DCCKI_POLICY "2.999.1.2.826.1"

#endif
