/* Internals shared by the gateway's files (registry, check, quarantine). */
#ifndef SMKI_GBCS_GATEWAY_PRIVATE_H
#define SMKI_GBCS_GATEWAY_PRIVATE_H

#include "gbcs.h"

typedef struct {
    smki_db users, devices, elig, counters, thresh, tring, quar, meta, log;
} gw_dbs;

int gw_dbs_get(smki_store *s, gw_dbs *d);

/* Records, decoded within a transaction. */
int gw_user_decode(const uint8_t *key, const void *val, size_t vlen, smki_gw_user *out);
int gw_device_decode(const uint8_t *key, const void *val, size_t vlen, smki_gw_device *out);
int gw_device_put(smki_txn *t, smki_db db, const smki_gw_device *d);
int gw_elig_allows_txn(smki_txn *t, const gw_dbs *d, uint8_t role, uint16_t code, int *allowed);
int gw_counter_get_txn(smki_txn *t, const gw_dbs *d, const smki_eui64_t *id, uint64_t *counter, int *seen);
int gw_counter_put_txn(smki_txn *t, const gw_dbs *d, const smki_eui64_t *id, uint64_t counter);

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
int gw_apdu_parse(const uint8_t *msg, size_t len, gw_apdu *out);

/* The first certificatePolicies OID of x ("" when none). */
int gw_cert_policy(X509 *x, char *out, size_t cap);

/* The device's next invocation counter (incremented in the store). */
int gw_next_invocation_txn(smki_txn *t, const gw_dbs *d, const smki_eui64_t *device, uint32_t *ic);

#endif
