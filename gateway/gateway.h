/* gateway: the DCC User Gateway (reference §7) as a service on the RA. Its checks on
 * signed pre-commands and on responses and alerts, each refusal with a stable reason
 * code (docs/gateway.md); the inventory, eligibility and thresholds they read; the
 * quarantine, its notification hook and the record of checked messages. Users, their
 * roles and suspensions are the RA's (ra/ra.h): one registry. Every administration
 * action is an RA action: named operator, signed audit entry, same transaction.
 * Tier 4: builds on ra (Users, operators, the audit trail) and gbcs (the codec). */
#ifndef SMKI_GATEWAY_H
#define SMKI_GATEWAY_H

#include <stdio.h>

#include "gbcs/gbcs.h"
#include "ra/ra.h"

/* Files: gateway.c (the checks), apdu.c (the APDU they read), users.c (the RA's Users and
 * their certificates), registry.c (inventory, eligibility, counters, thresholds, the
 * administration wrapper), srv.c (Service Request eligibility), thresholds.c (the CSV),
 * quarantine.c / quarantine_hook.c (held messages, notification, counters, JSON log),
 * gwlog.c (the record of checks and its archive), signed_file.c (detached signatures).
 * A passing command is MACed by the ACB into a command (reference §5). */

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
 * CSV, one rule a line:   user,message_code,window_seconds,max_count[,kind]
 *   user            EUI-64 (16 hex digits or hyphenated)
 *   message_code    4 hex digits (GBCS message code, e.g. 0019 for ECS01a) or * for all
 *   window_seconds  1 .. 31622400 (a leap year)
 *   max_count       1 .. 10000: at most this many messages of the user (and code) pass in
 *                   any window of that length; the next is quarantined
 *   kind            command (default), response or alert: a command rule counts the
 *                   commands the user sends; a response or alert rule counts the responses
 *                   or alerts addressed to the user (Stage 2 ¶136: their own thresholds)
 * Lines starting with '#' and blank lines are ignored; the first other line may be the
 * exact header (with or without ",kind"). No blanks around fields, no quoting. LF, CRLF or
 * CR line ends. The same (user, code, window, kind) twice is refused. Errors say
 * "NAME:LINE:COLUMN: what". */
#define SMKI_THRESHOLD_MAX_COUNT 10000u
#define SMKI_THRESHOLD_MAX_WINDOW 31622400u
#define SMKI_THRESHOLD_MAX_RULES 4096u
#define SMKI_CODE_ANY 0xFFFFFFFFu

typedef struct {
    smki_eui64_t user;
    uint32_t code; /* 0..0xFFFF, or SMKI_CODE_ANY */
    uint32_t window;
    uint32_t max_count;
    uint8_t kind;  /* smki_gbcs_cra: what it counts (commands sent, responses or alerts received) */
} smki_threshold;

typedef struct {
    size_t count;
    smki_threshold *rules;
} smki_thresholds;

int smki_thresholds_parse(const uint8_t *data, size_t len, const char *name, smki_thresholds *out);
void smki_thresholds_free(smki_thresholds *t);

/* ---- The registry (store databases "gw.*": credentials, inventory, eligibility, counters) -- */
/* Open the gateway's databases; call before any transaction on the store. */
int smki_gw_dbs(smki_store *s);

/* Administration. Every change to the gateway's configuration (Users' certificates,
 * eligibility, the device inventory, thresholds, quarantine decisions) is an RA action
 * (ra.h, smki_ra_service_act): a registered, active operator named, the change and its
 * audit entry "gateway.VERB" signed by the operator's key in one write transaction, so
 * 'smki audit verify' covers the gateway's administration as the RA's own. ra is open on
 * the gateway's store (smki_gw_dbs first). Refused without an operator (SMKI_E_USAGE),
 * with a name that is not an active operator or a key that is not theirs (SMKI_E_REFUSED):
 * nothing changes. */
typedef struct {
    smki_ra *ra;
    const smki_ra_actor *by;
} smki_gw_admin;

/* ---- Users: the RA's ---------------------------------------------------------------------
 * The gateway keeps no list of Users: a User ID, its Party, its User Roles and its
 * suspension (or its Party's) are the RA's registry's (ra.h: smki_ra_id_allocate,
 * smki_ra_id_suspend, smki_ra_id_set_roles, smki_ra_party_suspend), read at every check.
 * What the gateway keeps per User ID is only the credential it verifies signatures
 * with: the User's DS certificate and the Remote Party Role it is registered for. */
#define SMKI_GW_CERT_MAX 2048
#define SMKI_GW_USER_ROLES_MAX 64
typedef struct {
    smki_eui64_t id;
    uint8_t role;       /* Remote Party Role (reference §3) of its DS certificate */
    size_t cert_len;    /* the User's DS certificate (DER) */
    uint8_t cert[SMKI_GW_CERT_MAX];
    /* The RA's word on the ID (smki_gw_user_get / _list fill these in): */
    int ra_known;       /* 0: the RA does not know the ID (its credential alone is here) */
    char party[SMKI_RA_NAME_MAX];
    char user_roles[SMKI_GW_USER_ROLES_MAX]; /* "EIS,GIS" ("DCC" added for a DCC ID) */
    int suspended;      /* the ID or its Party is suspended */
    char suspend_reason[SMKI_RA_REASON_MAX + 80];
} smki_gw_user;

/* Register a User's DS certificate (DER or PEM) for the Remote Party Role role: an
 * administration action. Refused: an ID the RA's registry does not know (SMKI_E_NOTFOUND:
 * 'smki ra id allocate' first), a role its User Roles do not allow (SMKI_E_REFUSED,
 * smki_ra_role_allowed), an ID already holding one (SMKI_E_EXISTS), and a certificate whose
 * subject EUI-64 is not id (SMKI_E_REFUSED). */
int smki_gw_user_add(const smki_gw_admin *a, const smki_eui64_t *id, uint8_t role, const uint8_t *cert, size_t cert_len);
/* The credential of id with the RA's word on it (SMKI_E_NOTFOUND without a credential). */
int smki_gw_user_get(smki_ra *ra, const smki_eui64_t *id, smki_gw_user *out);
/* The RA's User Roles of a User ID as the eligibility table names them ("EIS,GIS", and
 * "DCC" for a DCC ID) and whether it or its Party is suspended (why says so). 0, or
 * SMKI_E_NOTFOUND (quietly) for an ID the RA does not know. */
int smki_gw_ra_user(smki_ra *ra, const smki_eui64_t *id, char *roles, size_t roles_cap, int *suspended, char *why,
                    size_t why_cap);
/* "eis, Gis" -> "EIS,GIS"; SMKI_E_USAGE naming a malformed code. */
int smki_user_roles_canon(const char *text, char *out, size_t cap);

/* ---- Eligibility by User Role per Service Reference Variant (data) --------------------------
 * The DCC's Service Request eligibility, as a CSV file the operator loads:
 *   srv,use_case,message_code,user_roles
 *   1.1.1,ECS01a,0019,EIS
 *   1.1.1,GCS01a,006B,GIS
 * srv: the Service Reference Variant (digits and dots); use_case: the GBCS use case;
 * message_code: 4 hex digits (what the pre-command carries); user_roles: the User Roles
 * eligible, separated by blanks. '#' comments, blank lines and that exact header allowed;
 * LF or CRLF. The same (srv, message_code) twice is refused. Errors say "NAME:LINE: what".
 * Once a table is loaded, a command passes eligibility only when one of its sender's User
 * Roles is listed for a Service Reference Variant whose message code it carries: an Import
 * Supplier and a Gas Supplier no longer look alike. Without a table the Remote Party Role
 * table applies (smki_gw_elig_*). */
#define SMKI_SRV_MAX_ROWS 4096u
#define SMKI_SRV_MAX_ROLE_NAMES 32u
typedef struct {
    char srv[17];
    char use_case[25];
    uint16_t code;
    uint32_t roles; /* bits over smki_srv_table.role_names */
} smki_srv_row;
typedef struct {
    size_t count;
    smki_srv_row *rows;
    size_t nroles;
    char role_names[SMKI_SRV_MAX_ROLE_NAMES][9];
} smki_srv_table;
int smki_srv_table_parse(const uint8_t *data, size_t len, const char *name, smki_srv_table *out);
void smki_srv_table_free(smki_srv_table *t);
/* The table's bits for a User's roles ("EIS,GIS"; names the table does not use: none). */
uint32_t smki_srv_roles_mask(const smki_srv_table *t, const char *user_roles);
/* Store (replace) the table, after parsing it; an empty file removes it. *rows: how many. */
int smki_gw_srv_load(const smki_gw_admin *a, const uint8_t *csv, size_t len, size_t *rows);
/* The table in force (count 0: none loaded). Caller frees with smki_srv_table_free. */
int smki_gw_srv_get(smki_store *s, smki_srv_table *out);
typedef int (*smki_gw_user_fn)(const smki_gw_user *u, void *arg);
/* Every registered credential, with the RA's word on its ID. */
int smki_gw_user_list(smki_ra *ra, smki_gw_user_fn fn, void *arg);

/* Message-code eligibility per role. Until the first change the built-in default applies
 * (the RTDS message codes, see gateway.c: the full GBCS table is configuration); the first
 * add/remove copies the default into the store, which then holds the whole table. */
typedef struct {
    uint8_t role;
    uint16_t code;
    const char *name; /* "ECS01a" for a default row, "" otherwise */
} smki_gw_elig;
int smki_gw_elig_set(const smki_gw_admin *a, uint8_t role, uint16_t code, int allow);
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
    char policy[SMKI_OID_TEXT_MAX]; /* the certificate policy of its KA certificate: its
                                       environment; "" when added by public key alone */
} smki_gw_device;

/* ka: the device's KA certificate or public key (PEM or DER), or NULL. A certificate's
 * first policy OID is kept: the gateway checks the device's environment against its own. */
int smki_gw_device_add(const smki_gw_admin *a, const smki_eui64_t *id, int status, const uint8_t *ka, size_t ka_len);
int smki_gw_device_get(smki_store *s, const smki_eui64_t *id, smki_gw_device *out);
int smki_gw_device_set_status(const smki_gw_admin *a, const smki_eui64_t *id, int status);
typedef int (*smki_gw_device_fn)(const smki_gw_device *d, void *arg);
int smki_gw_device_list(smki_store *s, smki_gw_device_fn fn, void *arg);

/* The last counter that passed from an originator (0 and *seen = 0 if none). */
int smki_gw_counter_get(smki_store *s, const smki_eui64_t *originator, uint64_t *counter, int *seen);

/* Load a user's thresholds from a signed CSV file: the signature must verify against the
 * user's registered DS certificate, or, when signer is given (the configured signer,
 * e.g. the DCC's own), against signer. Every rule must name `user` unless signer is given.
 * Replaces the user's rules (those of other users named by a configured signer's file are
 * replaced too). SMKI_E_VERIFY when the signature does not verify: nothing changes. */
int smki_gw_thresholds_load(const smki_gw_admin *a, const smki_eui64_t *user, const uint8_t *csv, size_t csv_len,
                            const uint8_t *sig, size_t sig_len, EVP_PKEY *signer, size_t *loaded);
/* The rules in force for a user (caller frees out->rules). */
int smki_gw_thresholds_get(smki_store *s, const smki_eui64_t *user, smki_thresholds *out);

/* ---- The check ---------------------------------------------------------------------------
 * Reason codes (stable; docs/gateway.md lists them with their meaning):
 *   structure.malformed   not a General Signing APDU (tag, lengths, fields)
 *   structure.unsigned    no signature (a pre-command that was never signed)
 *   future-dated.too-far  the execution date-time (CS02b executionDateTime, else the APDU's
 *                         date-time) is more than max_future_seconds after the check time
 *   user.unknown          originator not a User ID of the RA's registry, or one without a
 *                         DS certificate registered at the gateway
 *   user.not-eligible     the User's role may not send this message code (with a Service
 *                         Request eligibility table: none of its User Roles in the RA's
 *                         registry is eligible for a Service Reference Variant with this code)
 *   user.suspended        the RA suspended the User ID or its Party
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
 *   cert.environment      (with an environment) the signer certificate's policy OID is
 *                         not the environment's organisation policy
 *   device.environment    (with an environment) the target device's certificate is of
 *                         another environment (a device added without a certificate has
 *                         none to judge)
 *   user.environment      (with an environment; responses and alerts) the recipient User's
 *                         registered certificate is of another environment
 *   signature.invalid     the signature does not verify under the User's certificate
 *   counter.replay        counter not above the last one that passed from the originator
 *   threshold.exceeded    an anomaly threshold was reached: QUARANTINED, not rejected
 * Responses and alerts (CRA 02/03) take the return path: the originator must be a device
 * in the inventory (device.unknown) and the recipient a User ID of the RA with a registered
 * certificate (user.unknown),
 * then the recipient's response or alert thresholds apply (threshold.exceeded); nothing
 * else (the recipient verifies the device's signature or MAC: smki gbcs verify). A
 * passing one is delivered as received (no command is made, no counter recorded). */
typedef enum { SMKI_GW_PASS = 0, SMKI_GW_REJECT = 1, SMKI_GW_QUARANTINE = 2 } smki_gw_verdict;

/* The quarantine notification hook (gateway/quarantine_hook.c): `/bin/sh -c command` run once
 * for each quarantined message after the quarantine is committed, the record as one JSON
 * object on stdin (id, at, kind, reason, detail, originator, target, message_code, counter,
 * message in hex) and SMKI_QUARANTINE_ID in its environment (SMKI_PIN, SMKI_SO_PIN removed); killed
 * after timeout_seconds (0: 30). Exit 0 is a notification; anything else is counted as
 * failed and kept for smki_gwq_notify_pending. The strings are borrowed. */
typedef struct {
    const char *command; /* NULL or "": no hook */
    unsigned timeout_seconds;
} smki_gwq_hook;

typedef struct smki_gateway smki_gateway;

typedef struct {
    const char *trust_dir;  /* folder of trusted CA certificates (PEM/DER, each file one or more) */
    const char *oca_file;   /* or: the organisation CA certificate(s), trusted as anchors */
    const char *crl_file;   /* CRL (DER or PEM) of the issuing CA; required unless no_crl */
    int no_crl;             /* explicitly check without revocation (RTDS: no CRL is published) */
    smki_key *acb_ka;       /* the ACB's KA key: passing messages are MACed into commands; NULL: check only */
    /* The RA whose registry holds the Users (required): every check asks it whether the
     * sender (a response's recipient) is a User ID, its User Roles and whether it or its
     * Party is suspended. Read outside any store transaction of the gateway's. */
    smki_ra *ra;
    /* A command whose execution date-time is more than this many seconds after the check
     * time is refused (future-dated.too-far). 0: 30 days (SEC Stage 4 consultation Q22). */
    uint32_t max_future_seconds;
    smki_gwq_hook hook;     /* run for each message quarantined by a check */
    /* JSON log (NULL: none): one line for each message a check quarantined, after its hook
     * ran, with the quarantine counters (smki_gwq_stats) so a log collector sees them rise:
     * {"ts","level":"warn","event":"gateway_quarantine","id","reason","originator","target",
     *  "message_code","notified":true|false|null,"quarantined_total","notified_total",
     *  "notify_failed_total"}. */
    FILE *log;
    /* The gateway's environment (test or live): a signer certificate, a User's registered
     * certificate or a device certificate whose policy OID is not this environment's is
     * refused (cert.environment, user.environment, device.environment), whatever the trust
     * anchors. NULL: not checked (library callers that check elsewhere). */
    const smki_env *env;
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
    int notified;            /* SMKI_GW_QUARANTINE with a hook: 1 it ran and exited 0, -1 it failed
                                (the record is kept either way; notify_error says why) */
    char notify_error[160];
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
    uint8_t *msg;           /* the General Signing APDU of a command; a response or alert as
                               received (caller frees via smki_gwq_clear) */
    int notify_state;       /* SMKI_GWQ_NOTIFY_*: what the hook made of it */
    uint32_t notify_attempts;
} smki_gwq_record;
enum { SMKI_GWQ_NOTIFY_NONE = 0, SMKI_GWQ_NOTIFY_OK = 1, SMKI_GWQ_NOTIFY_FAILED = 2 };
void smki_gwq_clear(smki_gwq_record *r);
typedef int (*smki_gwq_fn)(const smki_gwq_record *r, void *arg);
int smki_gwq_list(smki_store *s, smki_gwq_fn fn, void *arg);
int smki_gwq_get(smki_store *s, uint64_t id, smki_gwq_record *out);
/* Release a command: MAC the held message into a command with the ACB key (counter must
 * still be above the originator's last: SMKI_E_REFUSED otherwise) and record its counter.
 * Release a response or alert: *command is the message as the device sent it (acb_ka is
 * not used and may be NULL). */
int smki_gwq_release(const smki_gw_admin *a, uint64_t id, smki_key *acb_ka, uint8_t **command, size_t *command_len);
int smki_gwq_reject(const smki_gw_admin *a, uint64_t id, const char *note);

/* Run the hook for record id now and record the outcome: 0 (*ok = 1) when it exited 0;
 * SMKI_E_REFUSED (*ok = 0) naming how it failed. */
int smki_gwq_notify(smki_store *s, const smki_gwq_hook *h, uint64_t id, int *ok);
/* Run it for every held record not notified yet (failed before, or quarantined while no
 * hook was configured): once each. */
int smki_gwq_notify_pending(smki_store *s, const smki_gwq_hook *h, size_t *fired, size_t *failed);
/* The record as the hook reads it (one JSON object and a newline; caller frees). */
int smki_gwq_record_json(const smki_gwq_record *q, char **json);
typedef struct {
    uint64_t quarantined;   /* messages quarantined, ever */
    uint64_t notified;      /* hook runs that exited 0 */
    uint64_t notify_failed; /* hook runs that did not */
} smki_gwq_stats;
int smki_gwq_stats_get(smki_store *s, smki_gwq_stats *out);

/* ---- The record of checked messages (gateway/gwlog.c) ---------------------------------------------
 * Every message a check judged (store database gw.log), kept online for a period the
 * operator sets (default three months), then archived and pruned. */
#define SMKI_GW_LOG_KEEP_DAYS 92
typedef struct {
    int64_t at;             /* the check's time */
    uint64_t seq;           /* order of recording */
    uint8_t verdict;        /* smki_gw_verdict */
    uint8_t cra;
    int parsed;             /* 0: the message did not parse (the fields below are zero) */
    char reason[40];        /* "" when passed */
    smki_eui64_t originator, target;
    uint16_t code;
    uint64_t counter;
} smki_gw_log_record;
typedef int (*smki_gw_log_fn)(const smki_gw_log_record *r, void *arg);
/* The records of checks made before `before`, oldest first. */
int smki_gw_log_list(smki_store *s, int64_t before, smki_gw_log_fn fn, void *arg);
/* One record as the archive holds it: a JSON object and a newline; returns its length. */
int smki_gw_log_record_json(const smki_gw_log_record *r, char *out, size_t cap);
/* Write the records of checks made before `before` to a new file at path (refused if it
 * exists), signed with key, then prune exactly those from the store. The file: a header
 * line {"smki_gateway_archive":1,"created","before","first","last","records"}, one JSON
 * object a record, and "signature <hex>": DER ECDSA P-256/SHA-256 over every octet before
 * that line (smki_signed_file_sign; `openssl dgst -sha256 -verify` checks it too). No
 * records: no file, *archived = 0. */
int smki_gw_log_archive(smki_store *s, int64_t before, time_t now, smki_key *key, const char *path,
                        size_t *archived);
/* 0 when data is an archive whose signature verifies under pub and whose record count is
 * what its header says (*records); SMKI_E_VERIFY when the signature does not verify;
 * SMKI_E_INPUT when it is not an archive. */
int smki_gw_archive_verify(const uint8_t *data, size_t len, EVP_PKEY *pub, size_t *records);

/* Parse a time: "2020-01-01", "2020-01-01T12:00:00Z" or "@UNIXSECONDS". */
int smki_gw_time_parse(const char *text, time_t *out);


#endif
