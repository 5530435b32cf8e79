/* ==========================================================================================
 * gbcs gateway (branch gbcs-gateway). The DCC User Gateway's checks on a signed
 * pre-command (reference §7), in order, each refusal with a stable reason code; the small
 * registry they read (users, role eligibility, device inventory, counters) in the store;
 * anomaly thresholds from a signed CSV file, quarantine instead of drop; and the ACB's
 * MAC that turns a passing message into a command (reference §5).
 * This section is to move into gbcs/gbcs.h when the codec's header is merged (one public
 * header per folder); until then it stands alone.
 * ========================================================================================== */
#ifndef SMKI_GBCS_GATEWAY_H
#define SMKI_GBCS_GATEWAY_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/base.h"
#include "hsm/hsm.h"
#include "policy/policy.h"
#include "store/store.h"

/* ---- Signed files ------------------------------------------------------------------------
 * Detached signatures over text files (anomaly-threshold CSV): ECDSA P-256 with SHA-256
 * over the file's CANONICAL bytes, where every CRLF and every lone CR becomes LF (so a file
 * that passed through Windows or an old Mac still verifies). The signature file is the
 * binary DER ECDSA-Sig-Value, as `openssl dgst -sha256 -sign` writes it: over a file that
 * already has LF line ends, `openssl dgst -sha256 -verify pub.pem -signature SIG FILE`
 * verifies it. */
#define SMKI_SIGNED_FILE_MAX (16u << 20)

/* The canonical form (fresh buffer, caller frees; an empty input gives an empty buffer). */
int smki_signed_file_canonical(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len);
/* Sign / verify the canonical form of data. sig holds SMKI_SIG_MAX octets. verify: 0, or
 * SMKI_E_VERIFY (does not verify), SMKI_E_INPUT (signature not DER). */
int smki_signed_file_sign(smki_key *k, const uint8_t *data, size_t len, uint8_t *sig, size_t *sig_len);
int smki_signed_file_verify(EVP_PKEY *pub, const uint8_t *data, size_t len, const uint8_t *sig, size_t sig_len);

/* ---- Anomaly thresholds ------------------------------------------------------------------
 * CSV, one rule a line:   user,message_code,window_seconds,max_count
 *   user            EUI-64 (16 hex digits or hyphenated)
 *   message_code    4 hex digits (GBCS message code, e.g. 0019 for ECS01a) or * for all
 *   window_seconds  1 .. 31622400 (a leap year)
 *   max_count       1 .. 10000: at most this many messages of the user (and code) pass in
 *                   any window of that length; the next is quarantined
 * Lines starting with '#' and blank lines are ignored; the first other line may be that
 * exact header. No blanks around fields, no quoting. LF, CRLF or CR line ends. The same
 * (user, code, window) twice is refused. Errors say "NAME:LINE:COLUMN: what". */
#define SMKI_THRESHOLD_MAX_COUNT 10000u
#define SMKI_THRESHOLD_MAX_WINDOW 31622400u
#define SMKI_THRESHOLD_MAX_RULES 4096u
#define SMKI_CODE_ANY 0xFFFFFFFFu

typedef struct {
    smki_eui64_t user;
    uint32_t code; /* 0..0xFFFF, or SMKI_CODE_ANY */
    uint32_t window;
    uint32_t max_count;
} smki_threshold;

typedef struct {
    size_t count;
    smki_threshold *rules;
} smki_thresholds;

int smki_thresholds_parse(const uint8_t *data, size_t len, const char *name, smki_thresholds *out);
void smki_thresholds_free(smki_thresholds *t);

/* ---- The registry (store databases "gw.*"; the RA will own users later) ------------------ */
/* Open the gateway's databases; call before any transaction on the store. */
int smki_gw_dbs(smki_store *s);

#define SMKI_GW_CERT_MAX 2048
typedef struct {
    smki_eui64_t id;
    uint8_t role;       /* Remote Party Role (reference §3) of this User ID */
    int suspended;
    size_t cert_len;    /* the User's DS certificate (DER) */
    uint8_t cert[SMKI_GW_CERT_MAX];
} smki_gw_user;

/* cert: DER or PEM of the User's digital-signature certificate. Refuses (SMKI_E_EXISTS) a
 * User ID already there, and (SMKI_E_REFUSED) a certificate whose subject EUI-64 is not id. */
int smki_gw_user_add(smki_store *s, const smki_eui64_t *id, uint8_t role, const uint8_t *cert, size_t cert_len);
int smki_gw_user_get(smki_store *s, const smki_eui64_t *id, smki_gw_user *out);
int smki_gw_user_set_suspended(smki_store *s, const smki_eui64_t *id, int suspended);
typedef int (*smki_gw_user_fn)(const smki_gw_user *u, void *arg);
int smki_gw_user_list(smki_store *s, smki_gw_user_fn fn, void *arg);

/* Message-code eligibility per role. Until the first change the built-in default applies
 * (the RTDS message codes, see gateway.c: the full GBCS table is configuration); the first
 * add/remove copies the default into the store, which then holds the whole table. */
typedef struct {
    uint8_t role;
    uint16_t code;
    const char *name; /* "ECS01a" for a default row, "" otherwise */
} smki_gw_elig;
int smki_gw_elig_set(smki_store *s, uint8_t role, uint16_t code, int allow);
int smki_gw_elig_allows(smki_store *s, uint8_t role, uint16_t code, int *allowed);
/* Every row (caller frees *rows); *from_default when the built-in table is in force. */
int smki_gw_elig_list(smki_store *s, smki_gw_elig **rows, size_t *count, int *from_default);

/* Device inventory. Commands are allowed to installed and commissioned devices only. */
typedef enum {
    SMKI_DEV_PENDING = 1,
    SMKI_DEV_INSTALLED = 2,
    SMKI_DEV_COMMISSIONED = 3,
    SMKI_DEV_SUSPENDED = 4,
    SMKI_DEV_DECOMMISSIONED = 5,
} smki_dev_status;
const char *smki_dev_status_name(int status);
int smki_dev_status_parse(const char *text, int *status);
int smki_dev_status_allows_commands(int status);

#define SMKI_GW_SPKI_MAX 128
typedef struct {
    smki_eui64_t id;
    int status;
    uint32_t invocation; /* the next General Ciphering invocation counter for this device */
    size_t ka_len;       /* the device's KA public key, DER SubjectPublicKeyInfo; 0: none */
    uint8_t ka_spki[SMKI_GW_SPKI_MAX];
} smki_gw_device;

/* ka: the device's KA certificate or public key (PEM or DER), or NULL. */
int smki_gw_device_add(smki_store *s, const smki_eui64_t *id, int status, const uint8_t *ka, size_t ka_len);
int smki_gw_device_get(smki_store *s, const smki_eui64_t *id, smki_gw_device *out);
int smki_gw_device_set_status(smki_store *s, const smki_eui64_t *id, int status);
typedef int (*smki_gw_device_fn)(const smki_gw_device *d, void *arg);
int smki_gw_device_list(smki_store *s, smki_gw_device_fn fn, void *arg);

/* The last counter that passed from an originator (0 and *seen = 0 if none). */
int smki_gw_counter_get(smki_store *s, const smki_eui64_t *originator, uint64_t *counter, int *seen);

/* Load a user's thresholds from a signed CSV file: the signature must verify against the
 * user's registered DS certificate, or, when signer is given (the configured signer,
 * e.g. the DCC's own), against signer. Every rule must name `user` unless signer is given.
 * Replaces the user's rules (those of other users named by a configured signer's file are
 * replaced too). SMKI_E_VERIFY when the signature does not verify: nothing changes. */
int smki_gw_thresholds_load(smki_store *s, const smki_eui64_t *user, const uint8_t *csv, size_t csv_len,
                            const uint8_t *sig, size_t sig_len, EVP_PKEY *signer, size_t *loaded);
/* The rules in force for a user (caller frees out->rules). */
int smki_gw_thresholds_get(smki_store *s, const smki_eui64_t *user, smki_thresholds *out);

/* ---- The check ---------------------------------------------------------------------------
 * Reason codes (stable; docs/gateway.md lists them with their meaning):
 *   structure.malformed   not a General Signing APDU (tag, lengths, fields)
 *   structure.unsigned    no signature (a pre-command that was never signed)
 *   structure.not-command CRA flag is not 01 (command)
 *   user.unknown          originator User ID not in the registry
 *   user.not-eligible     the User's role may not send this message code
 *   user.suspended        the User is suspended
 *   device.unknown        target device not in the inventory
 *   device.status         target device's status does not allow commands
 *   device.no-ka-key      (with an ACB key) the inventory has no KA key for the device
 *   cert.untrusted        signer certificate does not chain to the trust anchors
 *   cert.not-yet-valid    ... or not valid yet at the given time
 *   cert.expired          ... or no longer valid
 *   cert.revoked          signer (or a CA above it) is on the CRL
 *   cert.role             certificate's role (OU) is not the User's role
 *   cert.key-usage        certificate is not a digital-signature certificate
 *   cert.subject          certificate's EUI-64 is not the originator
 *   signature.invalid     the signature does not verify under the User's certificate
 *   counter.replay        counter not above the last one that passed from the originator
 *   threshold.exceeded    an anomaly threshold was reached: QUARANTINED, not rejected */
typedef enum { SMKI_GW_PASS = 0, SMKI_GW_REJECT = 1, SMKI_GW_QUARANTINE = 2 } smki_gw_verdict;

typedef struct smki_gateway smki_gateway;

typedef struct {
    const char *trust_dir;  /* folder of trusted CA certificates (PEM/DER, each file one or more) */
    const char *oca_file;   /* or: the organisation CA certificate(s), trusted as anchors */
    const char *crl_file;   /* CRL (DER or PEM) of the issuing CA; required unless no_crl */
    int no_crl;             /* explicitly check without revocation (RTDS: no CRL is published) */
    smki_key *acb_ka;       /* the ACB's KA key: passing messages are MACed into commands; NULL: check only */
} smki_gateway_opts;

typedef struct {
    smki_gw_verdict verdict;
    const char *reason;      /* static, stable; "" when passed */
    char detail[320];        /* what exactly, with which values */
    int parsed;              /* the fields below are set */
    uint8_t cra;
    uint64_t counter;
    smki_eui64_t originator, target;
    uint16_t code;
    uint64_t quarantine_id;  /* SMKI_GW_QUARANTINE: the record's id */
    uint8_t *command;        /* SMKI_GW_PASS with an ACB key: the MACed command (caller frees) */
    size_t command_len;
} smki_gw_result;

/* Loads the trust anchors and the CRL (its signature checked against them) once. */
int smki_gateway_open(smki_store *s, const smki_gateway_opts *o, smki_gateway **out);
void smki_gateway_free(smki_gateway *g);

/* Check n messages (signed General Signing APDUs, or General Ciphering commands whose
 * inner APDU is taken) at time `at`, in order. The read-only checks run first (any number
 * of threads may call this at once); then one write transaction records, for each message
 * in order, the counter of those that pass, threshold events and quarantine records: the
 * command leaves only after that commit. Returns 0 when every message got a verdict
 * (results[i]), negative on an internal failure (store, token). */
int smki_gateway_check(smki_gateway *g, const uint8_t *const *msgs, const size_t *lens, size_t n, time_t at,
                       smki_gw_result *results);
void smki_gw_result_clear(smki_gw_result *r);

/* ---- Quarantine ---------------------------------------------------------------------------- */
typedef enum { SMKI_GWQ_HELD = 0, SMKI_GWQ_RELEASED = 1, SMKI_GWQ_REJECTED = 2 } smki_gwq_state;
typedef struct {
    uint64_t id;
    int state;
    int64_t at;             /* when it was quarantined (the check's time) */
    char reason[40];
    char detail[320];
    char note[200];         /* reject: the operator's reason */
    smki_eui64_t originator, target;
    uint16_t code;
    uint64_t counter;
    size_t msg_len;
    uint8_t *msg;           /* the General Signing APDU (caller frees via smki_gwq_clear) */
} smki_gwq_record;
void smki_gwq_clear(smki_gwq_record *r);
typedef int (*smki_gwq_fn)(const smki_gwq_record *r, void *arg);
int smki_gwq_list(smki_store *s, smki_gwq_fn fn, void *arg);
int smki_gwq_get(smki_store *s, uint64_t id, smki_gwq_record *out);
/* Release: MAC the held message into a command with the ACB key (counter must still be
 * above the originator's last: SMKI_E_REFUSED otherwise) and record its counter. */
int smki_gwq_release(smki_store *s, uint64_t id, smki_key *acb_ka, uint8_t **command, size_t *command_len);
int smki_gwq_reject(smki_store *s, uint64_t id, const char *note);

/* Parse a time: "2020-01-01", "2020-01-01T12:00:00Z" or "@UNIXSECONDS". */
int smki_gw_time_parse(const char *text, time_t *out);

#endif
