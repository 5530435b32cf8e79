/* Revocation: a certificate's status moved to R with its time and RFC 5280 reason
 * recorded, in one transaction that also moves its status index entry. Organisation
 * (and DCCKI TLS) certificates go onto their CA's CRL, CA certificates onto their
 * root's ARL (crl.c); device certificates are replaced, not revoked (reference §4). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ca_private.h"

#define REVOCATION_RECORD_VERSION 1
#define REVOCATION_RECORD_LEN 10 /* version, reason, time (8, big-endian) */

static const struct {
    smki_revoke_reason code;
    const char *name;
    int usable; /* smki revokes with it */
} REASONS[] = {
    {SMKI_REASON_UNSPECIFIED, "unspecified", 1},
    {SMKI_REASON_KEY_COMPROMISE, "keyCompromise", 1},
    {SMKI_REASON_CA_COMPROMISE, "cACompromise", 1},
    {SMKI_REASON_AFFILIATION_CHANGED, "affiliationChanged", 1},
    {SMKI_REASON_SUPERSEDED, "superseded", 1},
    {SMKI_REASON_CESSATION_OF_OPERATION, "cessationOfOperation", 1},
    {SMKI_REASON_CERTIFICATE_HOLD, "certificateHold", 0},
    {SMKI_REASON_REMOVE_FROM_CRL, "removeFromCRL", 0},
    {SMKI_REASON_PRIVILEGE_WITHDRAWN, "privilegeWithdrawn", 1},
    {SMKI_REASON_AA_COMPROMISE, "aACompromise", 0},
};
#define N_REASONS (sizeof REASONS / sizeof REASONS[0])

const char *smki_revoke_reason_name(int reason)
{
    for (size_t i = 0; i < N_REASONS; i++)
        if ((int)REASONS[i].code == reason) return REASONS[i].name;
    return NULL;
}

/* Equal ignoring case and hyphens: "key-compromise" is keyCompromise. */
static int same_name(const char *text, const char *name)
{
    while (*text || *name) {
        if (*text == '-' || *text == '_') {
            text++;
            continue;
        }
        if (!*text || !*name || (*text | 0x20) != (*name | 0x20)) return 0;
        text++, name++;
    }
    return 1;
}

int smki_revoke_reason_parse(const char *text, smki_revoke_reason *out)
{
    ENSURE(text && *text && strlen(text) <= 32, SMKI_E_USAGE, "no revocation reason given");
    int found = -1;
    if (text[0] >= '0' && text[0] <= '9') {
        char *end = NULL;
        long v = strtol(text, &end, 10);
        if (end && !*end && v >= 0 && v <= 10)
            for (size_t i = 0; i < N_REASONS; i++)
                if ((long)REASONS[i].code == v) found = (int)i;
    } else {
        for (size_t i = 0; i < N_REASONS; i++)
            if (same_name(text, REASONS[i].name)) found = (int)i;
    }
    ENSURE(found >= 0, SMKI_E_USAGE,
           "'%.32s' is not a revocation reason: unspecified (0), keyCompromise (1), cACompromise (2), "
           "affiliationChanged (3), superseded (4), cessationOfOperation (5), privilegeWithdrawn (9)",
           text);
    ENSURE(REASONS[found].usable, SMKI_E_USAGE,
           "reason %s is not used here: a revocation is final (no certificateHold), CRLs are complete (no "
           "removeFromCRL), and there are no attribute certificates (no aACompromise)",
           REASONS[found].name);
    *out = REASONS[found].code;
    return 0;
}

/* ---- Records ---------------------------------------------------------------------------- */

int smki_ca_revocation_decode(const uint8_t key[CA_CERT_KEY_LEN], const void *val, size_t len, smki_revocation *out)
{
    smki_cursor_t c = smki_cursor(val, len);
    uint8_t version = 0, reason = 0;
    uint64_t when = 0;
    int rc = smki_cur_u8(&c, &version);
    if (rc == 0) rc = smki_cur_u8(&c, &reason);
    if (rc == 0) rc = smki_cur_u64be(&c, &when);
    if (rc < 0 || c.left || version != REVOCATION_RECORD_VERSION || !smki_revoke_reason_name(reason))
        return SMKI_FAIL(SMKI_E_CORRUPT, "a revocation record in the store is damaged (%zu octets)", len);
    memcpy(out->issuer_ski, key, SMKI_KEYID_LEN);
    memcpy(out->serial, key + SMKI_KEYID_LEN, SMKI_SERIAL_LEN);
    out->reason = (smki_revoke_reason)reason;
    out->revoked_at = (int64_t)when;
    return 0;
}

static void when_text(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm)) snprintf(out, 32, "?");
}

/* ---- Finding the certificate ---------------------------------------------------------- */

typedef struct {
    const smki_ca_db *db;
    const uint8_t *serial, *issuer_ski;
    const char *env;
    size_t n;                          /* candidates seen */
    uint8_t key[CA_CERT_KEY_LEN];      /* the last one */
    uint8_t other_issuer[SMKI_KEYID_LEN];
} lookup_t;

static int on_serial(const uint8_t key[CA_CERT_KEY_LEN], const void *rec, size_t rlen, void *arg)
{
    lookup_t *L = arg;
    (void)rec, (void)rlen;
    if (L->n) memcpy(L->other_issuer, L->key, SMKI_KEYID_LEN);
    memcpy(L->key, key, CA_CERT_KEY_LEN);
    L->n++;
    return 0;
}

/* The one certificate the request names, decoded into *c. */
static int lookup(smki_txn *t, lookup_t *L, smki_cert *c)
{
    L->n = 0;
    GUARD(smki_ca_certs_of_serial(t, L->db, L->serial, L->issuer_ski, on_serial, L));
    char hex[2 * SMKI_SERIAL_LEN + 1], a[2 * SMKI_KEYID_LEN + 1], b[2 * SMKI_KEYID_LEN + 1];
    smki_hex_encode(L->serial, SMKI_SERIAL_LEN, hex, 0);
    ENSURE(L->n > 0, SMKI_E_NOTFOUND, "no certificate of serial %s%s", hex,
           L->issuer_ski ? " from that issuer" : "");
    if (L->n > 1) {
        smki_hex_encode(L->key, SMKI_KEYID_LEN, a, 0);
        smki_hex_encode(L->other_issuer, SMKI_KEYID_LEN, b, 0);
        return SMKI_FAIL(SMKI_E_USAGE, "serial %s is used by %zu issuers (SKI %s, %s, ...): name the issuer", hex, L->n,
                         a, b);
    }
    const void *val;
    size_t vlen;
    int rc = smki_txn_get(t, L->db->certs, L->key, CA_CERT_KEY_LEN, &val, &vlen);
    GUARD(rc); /* found a moment ago in this transaction */
    GUARD(smki_ca_cert_decode(L->key, val, vlen, c));
    ENSURE(!L->env || strcmp(L->env, c->env) == 0, SMKI_E_NOTFOUND,
           "no certificate of serial %s in environment %s (it is of environment %s)", hex, L->env, c->env);
    return 0;
}

/* Rewrite the record with a new status and move its facet index entry. */
static int move_status(smki_txn *t, const smki_ca_db *db, smki_cert *c, smki_cert_status to)
{
    uint8_t key[CA_CERT_KEY_LEN], fkey[CA_FACET_KEY_MAX], fval[CA_FACET_VAL_LEN];
    smki_ca_cert_key(c, key);
    smki_ca_facet_val(c, fval);
    size_t fklen = smki_ca_facet_key(c, fkey);
    int rc = smki_txn_del_dup(t, db->by_facet, fkey, fklen, fval, sizeof fval);
    if (rc == SMKI_E_NOTFOUND) return SMKI_FAIL(SMKI_E_CORRUPT, "the facet index lacks a certificate of the store");
    GUARD(rc);
    c->status = to;
    fklen = smki_ca_facet_key(c, fkey);
    GUARD(smki_txn_put(t, db->by_facet, fkey, fklen, fval, sizeof fval, 0));
    uint8_t *rec = malloc(CA_CERT_RECORD_MAX);
    ENSURE(rec, SMKI_E_NOMEM, "out of memory");
    size_t len = 0;
    rc = smki_ca_cert_encode(c, rec, CA_CERT_RECORD_MAX, &len);
    if (rc == 0) rc = smki_txn_put(t, db->certs, key, sizeof key, rec, len, 0);
    free(rec);
    return rc;
}

/* ---- Revoking -------------------------------------------------------------------------- */

/* The certificates a revoked CA issued are no longer valid (RFC 5280 6.1: no path
 * through a revoked CA). They are marked in the store, in the CA's own transaction, as
 * revoked with the CA's revocation time and reason cACompromise (for a CA revoked for
 * keyCompromise or cACompromise; else the CA's own reason), so that the store, 'ca
 * list' and the repository's status search show them as not valid. */
typedef struct {
    const uint8_t *ski;
    uint8_t *keys; /* CA_CERT_KEY_LEN each */
    size_t n, cap;
} issued_t;

static int issued_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    (void)key;
    issued_t *I = arg;
    ENSURE(klen >= 4 && vlen == CA_FACET_VAL_LEN, SMKI_E_CORRUPT, "a facet index entry of %zu+%zu octets in the store",
           klen, vlen);
    val = (const uint8_t *)val + 8; /* past the seq: issuer SKI || serial */
    if (memcmp(val, I->ski, SMKI_KEYID_LEN) != 0) return 0;
    if (I->n == I->cap) {
        size_t cap = I->cap ? 2 * I->cap : 64;
        uint8_t *k = realloc(I->keys, cap * CA_CERT_KEY_LEN);
        ENSURE(k, SMKI_E_NOMEM, "out of memory");
        I->keys = k;
        I->cap = cap;
    }
    memcpy(I->keys + I->n * CA_CERT_KEY_LEN, val, CA_CERT_KEY_LEN);
    I->n++;
    return 0;
}

static int revoke_issued(smki_txn *t, const smki_ca_db *db, const smki_cert *ca, smki_revoke_reason ca_reason,
                         int64_t when, size_t *count)
{
    static const uint8_t LIVE[] = {SMKI_STATUS_PENDING, SMKI_STATUS_IN_USE, SMKI_STATUS_NOT_IN_USE,
                                   SMKI_STATUS_EXPIRED};
    issued_t I = {ca->ski, NULL, 0, 0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof LIVE; i++) rc = smki_txn_scan(t, db->by_facet, &LIVE[i], 1, issued_one, &I);
    smki_revoke_reason reason = ca_reason == SMKI_REASON_KEY_COMPROMISE || ca_reason == SMKI_REASON_CA_COMPROMISE
                                    ? SMKI_REASON_CA_COMPROMISE
                                    : ca_reason;
    smki_cert *c = rc == 0 ? malloc(sizeof *c) : NULL;
    if (rc == 0 && !c) rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < I.n; i++) {
        const uint8_t *key = I.keys + i * CA_CERT_KEY_LEN;
        const void *val;
        size_t vlen;
        rc = smki_txn_get(t, db->certs, key, CA_CERT_KEY_LEN, &val, &vlen);
        if (rc == SMKI_E_NOTFOUND) rc = SMKI_FAIL(SMKI_E_CORRUPT, "an index names a certificate the store lacks");
        if (rc == 0) rc = smki_ca_cert_decode(key, val, vlen, c);
        uint8_t rec[REVOCATION_RECORD_LEN] = {REVOCATION_RECORD_VERSION, (uint8_t)reason};
        smki_put_be64(rec + 2, (uint64_t)when);
        if (rc == 0) rc = smki_txn_put(t, db->revocations, key, CA_CERT_KEY_LEN, rec, sizeof rec, SMKI_PUT_NOOVERWRITE);
        if (rc == SMKI_E_EXISTS) rc = SMKI_FAIL(SMKI_E_CORRUPT, "a certificate has a revocation record but is not revoked");
        if (rc == 0) rc = move_status(t, db, c, SMKI_STATUS_REVOKED);
    }
    free(c);
    free(I.keys);
    if (rc == 0) *count = I.n;
    return rc;
}

typedef struct {
    const smki_ca_db *db;
    const smki_revoke_req *r;
    int64_t when;
    smki_cert *cert;
    smki_revocation rev;
} revoke_t;

static int revoke_in(smki_txn *t, void *arg)
{
    revoke_t *R = arg;
    lookup_t L = {R->db, R->r->serial, R->r->issuer_ski, R->r->env, 0, {0}, {0}};
    smki_cert *c = R->cert;
    GUARD(lookup(t, &L, c));
    char hex[2 * SMKI_SERIAL_LEN + 1];
    smki_hex_encode(c->serial, SMKI_SERIAL_LEN, hex, 0);
    const smki_profile *p = smki_profile_get(c->profile);
    ENSURE(c->profile != SMKI_PROFILE_DEVICE, SMKI_E_REFUSED,
           "certificate %s is a device certificate: device certificates are replaced, not revoked (reference "
           "section 4); issue its successor instead",
           hex);
    ENSURE(!(p->is_ca && p->self_signed == 1), SMKI_E_REFUSED,
           "certificate %s is the %s: a root is withdrawn from the trust stores, not revoked", hex, p->name);
    ENSURE(c->profile != SMKI_PROFILE_UNKNOWN, SMKI_E_REFUSED, "certificate %s is of no known profile", hex);
    if (c->status == SMKI_STATUS_REVOKED) {
        const void *val;
        size_t vlen;
        smki_revocation old;
        char at[32] = "?";
        const char *why = "?";
        if (smki_txn_get(t, R->db->revocations, L.key, CA_CERT_KEY_LEN, &val, &vlen) == 0 &&
            smki_ca_revocation_decode(L.key, val, vlen, &old) == 0) {
            when_text(old.revoked_at, at);
            why = smki_revoke_reason_name(old.reason);
        }
        return SMKI_FAIL(SMKI_E_REFUSED, "certificate %s is already revoked (on %s, %s)", hex, at, why);
    }
    GUARD(smki_ca_write_allowed(t, R->db, "revocation"));
    uint8_t rec[REVOCATION_RECORD_LEN] = {REVOCATION_RECORD_VERSION, (uint8_t)R->r->reason};
    smki_put_be64(rec + 2, (uint64_t)R->when);
    int rc = smki_txn_put(t, R->db->revocations, L.key, CA_CERT_KEY_LEN, rec, sizeof rec, SMKI_PUT_NOOVERWRITE);
    if (rc == SMKI_E_EXISTS)
        return SMKI_FAIL(SMKI_E_CORRUPT, "certificate %s has a revocation record but is not revoked", hex);
    GUARD(rc);
    GUARD(move_status(t, R->db, c, SMKI_STATUS_REVOKED));
    GUARD(smki_ca_revocation_decode(L.key, rec, sizeof rec, &R->rev));
    if (p->is_ca) GUARD(revoke_issued(t, R->db, c, R->r->reason, R->when, &R->rev.issued_revoked));
    return 0;
}

/* Inside a caller's write transaction (the RA's, with its audit entry). */
int smki_ca_revoke_txn(smki_txn *t, smki_ca_db *db, const smki_revoke_req *r, smki_cert *out, smki_revocation *rev)
{
    ENSURE(t && db && r && out, SMKI_E_INTERNAL, "smki_ca_revoke_txn: missing argument");
    ENSURE(r->serial, SMKI_E_USAGE, "no serial to revoke");
    const char *name = smki_revoke_reason_name(r->reason);
    smki_revoke_reason check;
    ENSURE(name, SMKI_E_USAGE, "revocation reason %d is not an RFC 5280 reason code", (int)r->reason);
    GUARD(smki_revoke_reason_parse(name, &check));
    revoke_t R = {db, r, r->when > 0 ? r->when : (int64_t)time(NULL), out, {{0}, {0}, 0, 0, 0}};
    GUARD(revoke_in(t, &R));
    if (rev) *rev = R.rev;
    return 0;
}

int smki_ca_revoke(smki_ca_db *db, const smki_revoke_req *r, smki_cert *out, smki_revocation *rev)
{
    ENSURE(db && r, SMKI_E_INTERNAL, "smki_ca_revoke: missing argument");
    ENSURE(r->serial, SMKI_E_USAGE, "no serial to revoke");
    const char *name = smki_revoke_reason_name(r->reason);
    smki_revoke_reason check;
    ENSURE(name, SMKI_E_USAGE, "revocation reason %d is not an RFC 5280 reason code", (int)r->reason);
    GUARD(smki_revoke_reason_parse(name, &check));
    smki_cert *cert = malloc(sizeof *cert);
    ENSURE(cert, SMKI_E_NOMEM, "out of memory");
    revoke_t R = {db, r, r->when > 0 ? r->when : (int64_t)time(NULL), cert, {{0}, {0}, 0, 0, 0}};
    int rc = smki_store_write(db->store, revoke_in, &R);
    if (rc == 0) {
        if (out) *out = *cert;
        if (rev) *rev = R.rev;
    }
    free(cert);
    return rc;
}

typedef struct {
    const smki_ca_db *db;
    const uint8_t *key;
    smki_revocation *out;
} rev_get_t;

static int rev_get_in(smki_txn *t, void *arg)
{
    rev_get_t *a = arg;
    const void *val;
    size_t vlen;
    GUARD(smki_txn_get(t, a->db->revocations, a->key, CA_CERT_KEY_LEN, &val, &vlen));
    return smki_ca_revocation_decode(a->key, val, vlen, a->out);
}

int smki_ca_revocation_get(smki_ca_db *db, const uint8_t issuer_ski[SMKI_KEYID_LEN],
                           const uint8_t serial[SMKI_SERIAL_LEN], smki_revocation *out)
{
    ENSURE(db && issuer_ski && serial && out, SMKI_E_INTERNAL, "smki_ca_revocation_get: missing argument");
    uint8_t key[CA_CERT_KEY_LEN];
    memcpy(key, issuer_ski, SMKI_KEYID_LEN);
    memcpy(key + SMKI_KEYID_LEN, serial, SMKI_SERIAL_LEN);
    rev_get_t a = {db, key, out};
    int rc = smki_store_read(db->store, rev_get_in, &a);
    if (rc == SMKI_E_NOTFOUND) {
        char hex[2 * SMKI_SERIAL_LEN + 1];
        smki_hex_encode(serial, SMKI_SERIAL_LEN, hex, 0);
        return SMKI_FAIL(SMKI_E_NOTFOUND, "certificate %s of that issuer is not revoked", hex);
    }
    return rc;
}

/* ---- Other status changes ------------------------------------------------------------------ */

typedef struct {
    const smki_ca_db *db;
    const uint8_t *issuer_ski, *serial;
    smki_cert_status to;
} status_t;

static int status_in(smki_txn *t, void *arg)
{
    status_t *S = arg;
    smki_cert *c = malloc(sizeof *c);
    ENSURE(c, SMKI_E_NOMEM, "out of memory");
    lookup_t L = {S->db, S->serial, S->issuer_ski, NULL, 0, {0}, {0}};
    int rc = lookup(t, &L, c);
    char hex[2 * SMKI_SERIAL_LEN + 1];
    smki_hex_encode(S->serial, SMKI_SERIAL_LEN, hex, 0);
    if (rc == 0 && c->status == SMKI_STATUS_REVOKED)
        rc = SMKI_FAIL(SMKI_E_REFUSED, "certificate %s is revoked: a revocation is final", hex);
    if (rc == 0 && c->status != S->to) rc = smki_ca_write_allowed(t, S->db, "a change of status");
    if (rc == 0 && c->status != S->to) rc = move_status(t, S->db, c, S->to);
    free(c);
    return rc;
}

int smki_ca_set_status(smki_ca_db *db, const uint8_t issuer_ski[SMKI_KEYID_LEN], const uint8_t serial[SMKI_SERIAL_LEN],
                       smki_cert_status status)
{
    ENSURE(db && issuer_ski && serial, SMKI_E_INTERNAL, "smki_ca_set_status: missing argument");
    ENSURE(smki_cert_status_name(status), SMKI_E_USAGE, "status %d is not a certificate status", (int)status);
    ENSURE(status != SMKI_STATUS_REVOKED, SMKI_E_REFUSED,
           "a certificate is revoked only through smki_ca_revoke (with its reason and time)");
    status_t S = {db, issuer_ski, serial, status};
    return smki_store_write(db->store, status_in, &S);
}
