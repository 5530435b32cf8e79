/* Internals shared by the gateway's files (registry, check, quarantine). */
#ifndef SMKI_GATEWAY_PRIVATE_H
#define SMKI_GATEWAY_PRIVATE_H

#include "gateway.h"

typedef struct {
    smki_db users, devices, elig, counters, thresh, tring, quar, meta, log;
} gw_dbs;

int smki_gw_dbs_get(smki_store *s, gw_dbs *d);

/* An administration action (gateway.h, smki_gw_admin): the operator checked, fn's change
 * and the audit entry "gateway.<verb>" (object, detail) in one RA write transaction.
 * *s receives the store (for smki_gw_dbs_get before the action). */
int smki_gw_admin_store(const smki_gw_admin *a, smki_store **s);
int smki_gw_admin_write(const smki_gw_admin *a, const char *verb, const char *object, const char *detail,
                   smki_ra_service_fn fn, void *arg);

/* Records, decoded within a transaction. */
int smki_gw_user_decode(const uint8_t *key, const void *val, size_t vlen, smki_gw_user *out);
int smki_gw_user_put(smki_txn *t, smki_db db, const smki_gw_user *u, unsigned flags);
/* The credential of id (SMKI_E_NOTFOUND naming it when there is none), without the RA's word. */
int smki_gw_user_get_stored(smki_store *s, const smki_eui64_t *id, smki_gw_user *out);
/* smki_gw_ra_user, with the RA's record of the ID in *u. */
int smki_gw_ra_user_record(smki_ra *ra, const smki_eui64_t *id, smki_ra_user_id *u, char *roles, size_t roles_cap, int *suspended,
               char *why, size_t why_cap);
/* The subject EUI-64 of an organisation certificate (x500UniqueIdentifier). */
int smki_gw_cert_subject_eui(X509 *x, smki_eui64_t *out);
int smki_gw_device_decode(const uint8_t *key, const void *val, size_t vlen, smki_gw_device *out);
int smki_gw_device_put(smki_txn *t, smki_db db, const smki_gw_device *d);
int smki_gw_elig_allows_txn(smki_txn *t, const gw_dbs *d, uint8_t role, uint16_t code, int *allowed);
int smki_gw_thresholds_get_txn(smki_txn *t, const gw_dbs *d, const smki_eui64_t *user, smki_thresholds *out);
int smki_gw_counter_get_txn(smki_txn *t, const gw_dbs *d, const smki_eui64_t *id, uint64_t *counter, int *seen);
int smki_gw_counter_put_txn(smki_txn *t, const gw_dbs *d, const smki_eui64_t *id, uint64_t counter);

/* The parsed General Signing APDU the gateway needs (reference §5). */
typedef struct {
    const uint8_t *msg; /* the whole message as received (DD or DF) */
    size_t msg_len;
    const uint8_t *apdu; /* DF .. end of signature */
    size_t apdu_len;
    const uint8_t *signed_part; /* after DF up to the end of content */
    size_t signed_len;
    const uint8_t *sig; /* 64 octets r||s; NULL when unsigned */
    uint8_t cra;
    uint64_t counter;
    smki_eui64_t originator, target;
    uint16_t code;
    const uint8_t *date_time; /* the APDU's 12-octet date-time, or NULL */
    const uint8_t *content;
    size_t content_len;
} gw_apdu;
/* Accepts a General Signing APDU, or a General Ciphering command around one. */
int smki_gw_apdu_parse(const uint8_t *msg, size_t len, gw_apdu *out);

/* The first certificatePolicies OID of x ("" when none). */
int smki_gw_cert_policy(X509 *x, char *out, size_t cap);

/* A quarantine record written (quarantine.c), counted in the statistics (quarantine_hook.c);
 * a check's record of one message (gwlog.c). */
int smki_gw_quarantine_put(smki_txn *t, const gw_dbs *d, const smki_gwq_record *q);
int smki_gw_quarantine_counted(smki_txn *t, const gw_dbs *d);
int smki_gw_log_put(smki_txn *t, const gw_dbs *d, int64_t at, const smki_gw_result *r);
/* A record's notification state (quarantine_hook.c), read by the listing (quarantine.c). */
int smki_gw_notify_state_txn(smki_txn *t, const gw_dbs *d, uint64_t id, int *state, uint32_t *attempts);

/* The JSON log lines of the quarantined messages among res[0..n) (smki_gateway_opts.log). */
int smki_gw_log_quarantined(smki_store *s, FILE *log, const smki_gw_result *res, size_t n);

/* The device's next invocation counter (incremented in the store). */
int smki_gw_next_invocation_txn(smki_txn *t, const gw_dbs *d, const smki_eui64_t *device, uint32_t *ic);

#endif
