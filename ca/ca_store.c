/* The CA's records in the store: every certificate under issuer SKI || serial with
 * its indices (serial, subject EUI-64, SKI, and one facet index of role, key usage,
 * environment and status), and the CAs of each hierarchy with the environment they
 * were made in. Records are small versioned binary encodings read back through the
 * bounded cursor: the store is ours, but a damaged one is reported, not trusted. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ca_private.h"

#define CERT_RECORD_VERSION 2 /* 1: no seq (store schema 1) */
#define CA_SCHEMA 2           /* the store schema of this layout */
#define CA_RECORD_VERSION 1
#define FLAG_HAS_EUI 0x01
#define FLAG_HAS_ROLE 0x02

static const char *const DB_NAMES[] = {"certs", "by_eui", "by_ski", "by_facet", "cas", "revocations", "crls"};
/* Schema 1's indices: by_facet replaced four, a skip scan of "certs" the serial one.
 * Emptied by the migration. */
static const char *const OLD_INDICES[] = {"by_serial", "by_role", "by_usage", "by_env", "by_status"};

static int migrate(smki_store *s, smki_ca_db *db);

typedef struct {
    uint32_t schema;
} schema_arg;

static int read_schema(smki_txn *t, void *arg)
{
    return smki_txn_schema(t, &((schema_arg *)arg)->schema);
}

int smki_ca_db_open(smki_store *s, smki_ca_db *out)
{
    ENSURE(s && out, SMKI_E_INTERNAL, "smki_ca_db_open: no store");
    memset(out, 0, sizeof *out);
    out->store = s;
    /* Read from the store, not from when it was opened: another process may have
     * migrated it since. */
    schema_arg sa = {0};
    GUARD(smki_store_read(s, read_schema, &sa));
    smki_db *dbs[] = {&out->certs, &out->by_eui, &out->by_ski, &out->by_facet, &out->cas, &out->revocations, &out->crls};
    int rc = 0;
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0] && rc == 0; i++) {
        int is_index = strncmp(DB_NAMES[i], "by_", 3) == 0;
        rc = smki_store_db(s, DB_NAMES[i], is_index ? SMKI_DB_DUPSORT : 0, dbs[i]);
    }
    if (sa.schema >= CA_SCHEMA) return rc;
    if (rc == 0) rc = migrate(s, out);
    if (rc < 0)
        smki_error_wrap("store %s holds the CA's records in schema %u and they could not be brought to schema %d "
                        "(a read-only store is migrated by the first read-write open, e.g. any smki ca command)",
                        smki_store_path(s), sa.schema, CA_SCHEMA);
    return rc;
}

/* ---- Names ------------------------------------------------------------------------------ */

static const char *const KIND_NAMES[SMKI_CA_KIND_COUNT] = {"smki-root", "smki-oca", "smki-dca", "dccki-root",
                                                           "dccki-ica"};
static const smki_profile_id KIND_PROFILES[SMKI_CA_KIND_COUNT] = {
    SMKI_PROFILE_SMKI_ROOT, SMKI_PROFILE_SMKI_OCA, SMKI_PROFILE_SMKI_DCA, SMKI_PROFILE_DCCKI_ROOT,
    SMKI_PROFILE_DCCKI_ICA};

const char *smki_ca_kind_name(smki_ca_kind k)
{
    return (unsigned)k < SMKI_CA_KIND_COUNT ? KIND_NAMES[k] : "unknown";
}

smki_profile_id smki_ca_kind_profile(smki_ca_kind k)
{
    return (unsigned)k < SMKI_CA_KIND_COUNT ? KIND_PROFILES[k] : SMKI_PROFILE_UNKNOWN;
}

static const struct {
    smki_cert_status status;
    const char *name;
} STATUSES[] = {
    {SMKI_STATUS_PENDING, "pending"}, {SMKI_STATUS_IN_USE, "in-use"},   {SMKI_STATUS_NOT_IN_USE, "not-in-use"},
    {SMKI_STATUS_EXPIRED, "expired"}, {SMKI_STATUS_REVOKED, "revoked"},
};

const char *smki_cert_status_name(int status)
{
    for (size_t i = 0; i < sizeof STATUSES / sizeof STATUSES[0]; i++)
        if ((int)STATUSES[i].status == status) return STATUSES[i].name;
    return NULL;
}

int smki_cert_status_parse(const char *text, smki_cert_status *out)
{
    for (size_t i = 0; text && i < sizeof STATUSES / sizeof STATUSES[0]; i++)
        if (strcmp(text, STATUSES[i].name) == 0 || (text[0] == (char)STATUSES[i].status && !text[1])) {
            *out = STATUSES[i].status;
            return 0;
        }
    return SMKI_FAIL(SMKI_E_USAGE, "'%.32s' is not a certificate status: P pending, I in-use, N not-in-use, E expired, "
                                   "R revoked",
                     text ? text : "");
}

int smki_serial_parse(const char *text, uint8_t serial[SMKI_SERIAL_LEN])
{
    char digits[2 * SMKI_SERIAL_LEN + 1];
    size_t n = 0, got = 0;
    memset(serial, 0, SMKI_SERIAL_LEN);
    ENSURE(text, SMKI_E_USAGE, "no serial: 32 hex digits");
    for (const char *p = text; *p; p++) {
        if (*p == ':') continue;
        ENSURE(n < 2 * SMKI_SERIAL_LEN, SMKI_E_USAGE, "'%.64s' is not a serial: 32 hex digits", text);
        digits[n++] = *p;
    }
    digits[n] = '\0';
    ENSURE(n == 2 * SMKI_SERIAL_LEN && smki_hex_decode(digits, n, serial, SMKI_SERIAL_LEN, &got) == 0 &&
               got == SMKI_SERIAL_LEN,
           SMKI_E_USAGE, "'%.64s' is not a serial: 32 hex digits", text);
    return 0;
}

const char *smki_cert_usage_name(int usage)
{
    return usage == SMKI_USAGE_DS ? "DS" : usage == SMKI_USAGE_KA ? "KA" : "CA";
}

int smki_cert_usage_parse(const char *text, int *usage)
{
    static const int USAGES[] = {SMKI_USAGE_DS, SMKI_USAGE_KA, 0};
    *usage = -1;
    for (size_t i = 0; text && i < sizeof USAGES / sizeof USAGES[0]; i++)
        if (strcasecmp(text, smki_cert_usage_name(USAGES[i])) == 0) {
            *usage = USAGES[i];
            return 0;
        }
    return SMKI_FAIL(SMKI_E_USAGE, "a certificate's usage is ds, ka or ca, not '%.16s'", text ? text : "");
}

/* ---- Certificate records ------------------------------------------------------------------ */

void smki_ca_cert_key(const smki_cert *c, uint8_t key[CA_CERT_KEY_LEN])
{
    memcpy(key, c->issuer_ski, SMKI_KEYID_LEN);
    memcpy(key + SMKI_KEYID_LEN, c->serial, SMKI_SERIAL_LEN);
}

#define CERT_FIXED 46    /* version .. seq */
#define CERT_FIXED_V1 38 /* version .. not_after */

static int encode(const smki_cert *c, uint64_t seq, uint8_t *out, size_t cap, size_t *len)
{
    size_t env_len = strnlen(c->env, sizeof c->env);
    ENSURE(env_len < sizeof c->env && c->der_len <= SMKI_CERT_DER_MAX, SMKI_E_INTERNAL, "certificate record fields");
    size_t need = CERT_FIXED + 1 + env_len + 2 + c->der_len;
    ENSURE(need <= cap, SMKI_E_INTERNAL, "a certificate record of %zu octets", need);
    uint8_t *p = out;
    p[0] = CERT_RECORD_VERSION;
    p[1] = (uint8_t)c->status;
    p[2] = (uint8_t)c->profile;
    p[3] = (uint8_t)c->usage;
    p[4] = c->role >= 0 ? (uint8_t)c->role : 0;
    p[5] = (uint8_t)((c->has_eui ? FLAG_HAS_EUI : 0) | (c->role >= 0 ? FLAG_HAS_ROLE : 0));
    memcpy(p + 6, c->has_eui ? c->eui.b : (const uint8_t *)"\0\0\0\0\0\0\0\0", 8);
    memcpy(p + 14, c->ski, SMKI_KEYID_LEN);
    smki_put_be64(p + 22, (uint64_t)c->not_before);
    smki_put_be64(p + 30, (uint64_t)c->not_after);
    smki_put_be64(p + 38, (uint64_t)seq);
    p += CERT_FIXED;
    *p++ = (uint8_t)env_len;
    memcpy(p, c->env, env_len);
    p += env_len;
    smki_put_be16(p, (uint16_t)c->der_len);
    p += 2;
    memcpy(p, c->der, c->der_len);
    *len = need;
    return 0;
}

int smki_ca_cert_encode(const smki_cert *c, uint8_t *out, size_t cap, size_t *len)
{
    return encode(c, c->seq, out, cap, len);
}

/* old_too: also version 1 (the migration), whose seq is 0 */
static int decode(const uint8_t key[CA_CERT_KEY_LEN], const void *val, size_t len, int old_too, smki_cert *out)
{
    smki_cursor_t c = smki_cursor(val, len);
    uint8_t version = 0, status = 0, profile = 0, usage = 0, role = 0, flags = 0, env_len = 0;
    uint16_t der_len;
    uint64_t nb, na, seq = 0;
    memset(out, 0, offsetof(smki_cert, der));
    memcpy(out->issuer_ski, key, SMKI_KEYID_LEN);
    memcpy(out->serial, key + SMKI_KEYID_LEN, SMKI_SERIAL_LEN);
    int rc = smki_cur_u8(&c, &version);
    if (rc == 0 && version != CERT_RECORD_VERSION && !(old_too && version == 1))
        return SMKI_FAIL(SMKI_E_CORRUPT, "certificate record of version %u: this smki reads version %d", version,
                         CERT_RECORD_VERSION);
    if (rc == 0) rc = smki_cur_u8(&c, &status);
    if (rc == 0) rc = smki_cur_u8(&c, &profile);
    if (rc == 0) rc = smki_cur_u8(&c, &usage);
    if (rc == 0) rc = smki_cur_u8(&c, &role);
    if (rc == 0) rc = smki_cur_u8(&c, &flags);
    if (rc == 0) rc = smki_cur_copy(&c, out->eui.b, 8);
    if (rc == 0) rc = smki_cur_copy(&c, out->ski, SMKI_KEYID_LEN);
    if (rc == 0) rc = smki_cur_u64be(&c, &nb);
    if (rc == 0) rc = smki_cur_u64be(&c, &na);
    if (rc == 0 && version == CERT_RECORD_VERSION) rc = smki_cur_u64be(&c, &seq);
    if (rc == 0) rc = smki_cur_u8(&c, &env_len);
    if (rc == 0 && env_len >= sizeof out->env) rc = -1;
    if (rc == 0) rc = smki_cur_copy(&c, out->env, env_len);
    if (rc == 0) rc = smki_cur_u16be(&c, &der_len);
    if (rc == 0 && der_len > SMKI_CERT_DER_MAX) rc = -1;
    if (rc == 0) rc = smki_cur_copy(&c, out->der, der_len);
    /* Canonical only: what smki_ca_cert_encode writes, nothing it would write otherwise. */
    static const uint8_t NO_EUI[8] = {0};
    int canonical = (flags & ~(FLAG_HAS_EUI | FLAG_HAS_ROLE)) == 0 && ((flags & FLAG_HAS_ROLE) || role == 0) &&
                    ((flags & FLAG_HAS_EUI) || memcmp(out->eui.b, NO_EUI, 8) == 0) &&
                    (rc < 0 || memchr(out->env, '\0', env_len) == NULL);
    if (rc < 0 || c.left || !canonical || profile >= SMKI_PROFILE_COUNT || !smki_cert_status_name(status))
        return SMKI_FAIL(SMKI_E_CORRUPT, "a certificate record in the store is damaged (%zu octets)", len);
    out->status = (smki_cert_status)status;
    out->profile = (smki_profile_id)profile;
    out->usage = usage;
    out->role = (flags & FLAG_HAS_ROLE) ? role : -1;
    out->has_eui = (flags & FLAG_HAS_EUI) != 0;
    out->not_before = (int64_t)nb;
    out->not_after = (int64_t)na;
    out->seq = seq;
    out->der_len = der_len;
    return 0;
}

int smki_ca_cert_decode(const uint8_t key[CA_CERT_KEY_LEN], const void *val, size_t len, smki_cert *out)
{
    return decode(key, val, len, 0, out);
}

size_t smki_ca_facet_key(const smki_cert *c, uint8_t out[CA_FACET_KEY_MAX])
{
    size_t env_len = strnlen(c->env, sizeof c->env - 1);
    out[0] = (uint8_t)c->status;
    out[1] = (uint8_t)c->usage;
    out[2] = c->role >= 0;
    out[3] = c->role >= 0 ? (uint8_t)c->role : 0;
    memcpy(out + 4, c->env, env_len);
    return 4 + env_len;
}

void smki_ca_facet_val(const smki_cert *c, uint8_t out[CA_FACET_VAL_LEN])
{
    smki_put_be64(out, (uint64_t)c->seq);
    smki_ca_cert_key(c, out + 8);
}

/* The clock in ns, never the same or lower twice in this process: unique and rising
 * across threads, so that each group of records lands at the end of the facet
 * index's few keys instead of all over them. */
static uint64_t next_seq(void)
{
    static _Atomic uint64_t last;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t seen = atomic_load_explicit(&last, memory_order_relaxed);
    for (;;) {
        uint64_t want = now > seen ? now : seen + 1;
        if (atomic_compare_exchange_weak_explicit(&last, &seen, want, memory_order_relaxed, memory_order_relaxed))
            return want;
    }
}

/* The record and its indices, through either a transaction or a batch. */
typedef int (*put_fn)(void *where, smki_db db, const void *key, size_t klen, const void *val, size_t vlen,
                      unsigned flags);

static int put_txn(void *where, smki_db db, const void *key, size_t klen, const void *val, size_t vlen,
                   unsigned flags)
{
    return smki_txn_put(where, db, key, klen, val, vlen, flags);
}

static int put_batch(void *where, smki_db db, const void *key, size_t klen, const void *val, size_t vlen,
                     unsigned flags)
{
    return smki_batch_put(where, db, key, klen, val, vlen, flags);
}

static int cert_put(put_fn put, void *where, const smki_ca_db *db, const smki_cert *c)
{
    uint8_t key[CA_CERT_KEY_LEN], rec[CA_CERT_RECORD_MAX];
    size_t rec_len;
    uint64_t seq = next_seq();
    smki_ca_cert_key(c, key);
    GUARD(encode(c, seq, rec, sizeof rec, &rec_len));
    /* NOOVERWRITE: a serial is unique per issuer, and the store is what enforces it. */
    int rc = put(where, db->certs, key, sizeof key, rec, rec_len, SMKI_PUT_NOOVERWRITE);
    if (rc == SMKI_E_EXISTS) {
        char hex[2 * SMKI_SERIAL_LEN + 1];
        smki_hex_encode(c->serial, SMKI_SERIAL_LEN, hex, 0);
        return SMKI_FAIL(SMKI_E_EXISTS, "serial %s is already used by this issuer: refused by the store", hex);
    }
    GUARD(rc);
    if (c->has_eui) GUARD(put(where, db->by_eui, c->eui.b, 8, key, sizeof key, 0));
    GUARD(put(where, db->by_ski, c->ski, SMKI_KEYID_LEN, key, sizeof key, 0));
    uint8_t fkey[CA_FACET_KEY_MAX], fval[CA_FACET_VAL_LEN];
    size_t fklen = smki_ca_facet_key(c, fkey);
    smki_put_be64(fval, (uint64_t)seq);
    memcpy(fval + 8, key, sizeof key);
    return put(where, db->by_facet, fkey, fklen, fval, sizeof fval, 0);
}

int smki_ca_cert_put(smki_txn *t, const smki_ca_db *db, const smki_cert *c)
{
    GUARD(smki_ca_write_allowed(t, db, "recording a certificate"));
    return cert_put(put_txn, t, db, c);
}

int smki_ca_cert_queue(smki_batch *b, const smki_ca_db *db, const smki_cert *c)
{
    GUARD(smki_ca_write_allowed_now(db, "recording a certificate"));
    return cert_put(put_batch, b, db, c);
}

int smki_ca_cert_queue_ungated(smki_batch *b, const smki_ca_db *db, const smki_cert *c)
{
    return cert_put(put_batch, b, db, c);
}

typedef struct {
    const smki_ca_db *db;
    const uint8_t *key;
    smki_cert *out;
} get_arg;

static int get_one(smki_txn *t, void *arg)
{
    get_arg *a = arg;
    const void *val;
    size_t vlen;
    GUARD(smki_txn_get(t, a->db->certs, a->key, CA_CERT_KEY_LEN, &val, &vlen));
    return smki_ca_cert_decode(a->key, val, vlen, a->out);
}

int smki_ca_cert_get(smki_ca_db *db, const uint8_t issuer_ski[SMKI_KEYID_LEN], const uint8_t serial[SMKI_SERIAL_LEN],
                     smki_cert *out)
{
    uint8_t key[CA_CERT_KEY_LEN];
    memcpy(key, issuer_ski, SMKI_KEYID_LEN);
    memcpy(key + SMKI_KEYID_LEN, serial, SMKI_SERIAL_LEN);
    get_arg a = {db, key, out};
    int rc = smki_store_read(db->store, get_one, &a);
    if (rc == SMKI_E_NOTFOUND) {
        char hex[2 * SMKI_SERIAL_LEN + 1];
        smki_hex_encode(serial, SMKI_SERIAL_LEN, hex, 0);
        return SMKI_FAIL(SMKI_E_NOTFOUND, "no certificate of serial %s from that issuer", hex);
    }
    return rc;
}

/* ---- Schema 1 -> 2 ------------------------------------------------------------------------ */

typedef struct {
    smki_ca_db *db;
    smki_db old[sizeof OLD_INDICES / sizeof OLD_INDICES[0]];
    uint8_t *keys; /* the certificates' keys, CA_CERT_KEY_LEN each */
    size_t n, cap;
    smki_cert *cert;
    uint8_t *rec;
} migrate_ctx;

static int collect_key(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    migrate_ctx *m = arg;
    (void)val, (void)vlen;
    ENSURE(klen == CA_CERT_KEY_LEN, SMKI_E_CORRUPT, "a certificate key of %zu octets in the store", klen);
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        uint8_t *p = realloc(m->keys, cap * CA_CERT_KEY_LEN);
        ENSURE(p, SMKI_E_NOMEM, "out of memory migrating %zu certificate records", m->n);
        m->keys = p, m->cap = cap;
    }
    memcpy(m->keys + m->n++ * CA_CERT_KEY_LEN, key, CA_CERT_KEY_LEN);
    return 0;
}

/* May run more than once (a map that grows): starts from what the transaction sees. */
static int migrate_in(smki_txn *t, void *arg)
{
    migrate_ctx *m = arg;
    uint32_t schema = 0;
    GUARD(smki_txn_schema(t, &schema));
    if (schema >= CA_SCHEMA) return 0; /* another process got there first */
    m->n = 0;
    /* keys first: the records are rewritten, not while a cursor walks them */
    GUARD(smki_txn_scan(t, m->db->certs, NULL, 0, collect_key, m));
    for (size_t i = 0; i < m->n; i++) {
        const uint8_t *key = m->keys + i * CA_CERT_KEY_LEN;
        const void *val;
        size_t vlen, len;
        GUARD(smki_txn_get(t, m->db->certs, key, CA_CERT_KEY_LEN, &val, &vlen));
        GUARD(decode(key, val, vlen, 1, m->cert));
        if (m->cert->seq == 0) m->cert->seq = i + 1;
        GUARD(smki_ca_cert_encode(m->cert, m->rec, CA_CERT_RECORD_MAX, &len));
        GUARD(smki_txn_put(t, m->db->certs, key, CA_CERT_KEY_LEN, m->rec, len, 0));
        uint8_t fkey[CA_FACET_KEY_MAX], fval[CA_FACET_VAL_LEN];
        size_t fklen = smki_ca_facet_key(m->cert, fkey);
        smki_ca_facet_val(m->cert, fval);
        GUARD(smki_txn_put(t, m->db->by_facet, fkey, fklen, fval, sizeof fval, 0));
    }
    for (size_t i = 0; i < sizeof m->old / sizeof m->old[0]; i++) GUARD(smki_txn_clear(t, m->old[i]));
    return smki_txn_set_schema(t, CA_SCHEMA);
}

static int migrate(smki_store *s, smki_ca_db *db)
{
    migrate_ctx m = {db, {0}, NULL, 0, 0, malloc(sizeof *m.cert), malloc(CA_CERT_RECORD_MAX)};
    int rc = m.cert && m.rec ? 0 : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    for (size_t i = 0; i < sizeof m.old / sizeof m.old[0] && rc == 0; i++)
        rc = smki_store_db(s, OLD_INDICES[i], SMKI_DB_DUPSORT, &m.old[i]);
    if (rc == 0) rc = smki_store_write(s, migrate_in, &m);
    free(m.keys);
    free(m.cert);
    free(m.rec);
    return rc;
}

/* ---- Queries ------------------------------------------------------------------------------ */

typedef struct {
    smki_ca_db *db;
    const smki_ca_query *q;
    smki_cert_fn_t fn;
    void *arg;
    smki_txn *txn;
    size_t exact_len; /* an index key must be exactly this long (prefix scans see longer ones) */
    smki_cert *cert;  /* one buffer for every match */
    size_t env_len;   /* of q->env, when given */
} find_ctx;

static int matches(const smki_ca_query *q, const smki_cert *c)
{
    if (q->env && strcmp(q->env, c->env) != 0) return 0;
    if (q->eui && (!c->has_eui || memcmp(q->eui->b, c->eui.b, 8) != 0)) return 0;
    if (q->ski && memcmp(q->ski, c->ski, SMKI_KEYID_LEN) != 0) return 0;
    if (q->serial && memcmp(q->serial, c->serial, SMKI_SERIAL_LEN) != 0) return 0;
    if (q->issuer_ski && memcmp(q->issuer_ski, c->issuer_ski, SMKI_KEYID_LEN) != 0) return 0;
    if (q->role >= 0 && q->role != c->role) return 0;
    if (q->usage >= 0 && q->usage != c->usage) return 0;
    if (q->status && q->status != (int)c->status) return 0;
    if (q->profile != SMKI_PROFILE_UNKNOWN && q->profile != c->profile) return 0;
    return 1;
}

static int visit_record(find_ctx *f, const uint8_t *key, const void *val, size_t vlen)
{
    GUARD(smki_ca_cert_decode(key, val, vlen, f->cert));
    if (!matches(f->q, f->cert)) return 0;
    return f->fn(f->cert, f->arg);
}

static int on_cert(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    find_ctx *f = arg;
    ENSURE(klen == CA_CERT_KEY_LEN, SMKI_E_CORRUPT, "a certificate key of %zu octets in the store", klen);
    return visit_record(f, key, val, vlen);
}

/* An index entry names a certificate by its key (issuer SKI || serial): fetch and visit it. */
static int visit_key(find_ctx *f, const void *ck)
{
    const void *rec;
    size_t rlen;
    int rc = smki_txn_get(f->txn, f->db->certs, ck, CA_CERT_KEY_LEN, &rec, &rlen);
    if (rc == SMKI_E_NOTFOUND) return SMKI_FAIL(SMKI_E_CORRUPT, "an index names a certificate the store lacks");
    GUARD(rc);
    return visit_record(f, ck, rec, rlen);
}

/* An index entry names a certificate (issuer SKI || serial); the scan brings its record. */
static int on_index(const void *key, size_t klen, const void *val, size_t vlen, const void *rec, size_t rlen,
                    void *arg)
{
    find_ctx *f = arg;
    (void)key;
    if (klen != f->exact_len) return 0; /* a longer key that merely starts the same */
    ENSURE(vlen == CA_CERT_KEY_LEN, SMKI_E_CORRUPT, "an index entry of %zu octets in the store", vlen);
    ENSURE(rec, SMKI_E_CORRUPT, "an index names a certificate the store lacks");
    return visit_record(f, val, rec, rlen);
}

/* A facet key the query rules out skips all its certificates at once. */
static int facet_matches(const find_ctx *f, const uint8_t *k, size_t klen)
{
    const smki_ca_query *q = f->q;
    if (klen < 4) return -1;
    if (q->status && k[0] != (uint8_t)q->status) return 0;
    if (q->usage >= 0 && k[1] != (uint8_t)q->usage) return 0;
    if (q->role >= 0 && (!k[2] || k[3] != (uint8_t)q->role)) return 0;
    if (q->env && (klen - 4 != f->env_len || memcmp(k + 4, q->env, f->env_len) != 0)) return 0;
    return 1;
}

static int on_facet(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    find_ctx *f = arg;
    int m = facet_matches(f, key, klen);
    ENSURE(m >= 0 && vlen == CA_FACET_VAL_LEN, SMKI_E_CORRUPT, "a facet index entry of %zu+%zu octets in the store",
           klen, vlen);
    if (m == 0) return SMKI_SCAN_NEXT_KEY;
    return visit_key(f, (const uint8_t *)val + 8);
}

/* By serial: "certs" is keyed issuer SKI || serial, and a store holds the
 * certificates of a few issuers, so one seek finds each issuer in turn and one get
 * tries the serial under it: no index of serials to keep up per certificate. */
int smki_ca_certs_of_serial(smki_txn *t, const smki_ca_db *db, const uint8_t serial[SMKI_SERIAL_LEN],
                       const uint8_t *issuer_ski, ca_cert_visit_fn fn, void *arg)
{
    uint8_t from[SMKI_KEYID_LEN] = {0}, key[CA_CERT_KEY_LEN];
    const void *rec;
    size_t rlen;
    int rc;
    if (issuer_ski) {
        memcpy(key, issuer_ski, SMKI_KEYID_LEN);
        memcpy(key + SMKI_KEYID_LEN, serial, SMKI_SERIAL_LEN);
        rc = smki_txn_get(t, db->certs, key, CA_CERT_KEY_LEN, &rec, &rlen);
        if (rc == SMKI_E_NOTFOUND) return 0;
        GUARD(rc);
        rc = fn(key, rec, rlen, arg);
        return rc < 0 ? rc : 0;
    }
    for (;;) {
        size_t klen = 0;
        rc = smki_txn_seek(t, db->certs, from, sizeof from, key, sizeof key, &klen);
        if (rc == SMKI_E_NOTFOUND) return 0;
        GUARD(rc);
        ENSURE(klen == CA_CERT_KEY_LEN, SMKI_E_CORRUPT, "a certificate key of %zu octets in the store", klen);
        memcpy(key + SMKI_KEYID_LEN, serial, SMKI_SERIAL_LEN);
        rc = smki_txn_get(t, db->certs, key, CA_CERT_KEY_LEN, &rec, &rlen);
        if (rc == 0) {
            rc = fn(key, rec, rlen, arg);
            if (rc != 0) return rc < 0 ? rc : 0;
        } else if (rc != SMKI_E_NOTFOUND) {
            return rc;
        }
        /* the next issuer: this SKI plus one, big-endian; none after ff..ff */
        memcpy(from, key, SMKI_KEYID_LEN);
        int i = SMKI_KEYID_LEN - 1;
        while (i >= 0 && ++from[i] == 0) i--;
        if (i < 0) return 0;
    }
}

static int on_serial_match(const uint8_t key[CA_CERT_KEY_LEN], const void *rec, size_t rlen, void *arg)
{
    return visit_record(arg, key, rec, rlen);
}

/* The index and key a query by EUI-64 or SKI looks up (1), or 0 when it has another
 * way in (a serial first: it is the most selective). */
static int index_way(const smki_ca_db *db, const smki_ca_query *q, smki_db *index, const void **key, size_t *klen)
{
    if (q->serial) return 0;
    if (q->eui) *index = db->by_eui, *key = q->eui->b, *klen = 8;
    else if (q->ski) *index = db->by_ski, *key = q->ski, *klen = SMKI_KEYID_LEN;
    else return 0;
    return 1;
}

static int find_in(smki_txn *t, void *arg)
{
    find_ctx *f = arg;
    const smki_ca_query *q = f->q;
    f->txn = t;
    smki_db db;
    const void *key = NULL;
    size_t klen = 0;
    /* The most selective index the query names. */
    if (index_way(f->db, q, &db, &key, &klen)) {
        f->exact_len = klen;
        return smki_txn_scan_join(t, db, key, klen, f->db->certs, on_index, f);
    } else if (q->serial) {
        return smki_ca_certs_of_serial(t, f->db, q->serial, q->issuer_ski, on_serial_match, f);
    } else if (q->issuer_ski) {
        return smki_txn_scan(t, f->db->certs, q->issuer_ski, SMKI_KEYID_LEN, on_cert, f);
    } else if (q->role >= 0 || q->env || q->status || q->usage >= 0) {
        /* status and usage lead the key: a prefix; role and environment: skipping */
        uint8_t prefix[2] = {(uint8_t)q->status, (uint8_t)q->usage};
        size_t plen = q->status ? (q->usage >= 0 ? 2 : 1) : 0;
        f->env_len = q->env ? strlen(q->env) : 0;
        if (q->env && (f->env_len == 0 || f->env_len >= SMKI_ENV_NAME_MAX)) return 0; /* no such environment */
        return smki_txn_scan(t, f->db->by_facet, prefix, plen, on_facet, f);
    }
    return smki_txn_scan(t, f->db->certs, NULL, 0, on_cert, f);
}

/* ---- Many queries in one read ----------------------------------------------------------- */
typedef struct {
    smki_ca_db *db;
    const smki_ca_query *qs;
    size_t n;
    smki_cert_fn_t fn;
    void *const *args;
    smki_cert *cert;
} many_ctx;

/* The index scans of the queries that go through `index`, asked for at once. */
static int fetch_ahead(smki_txn *t, const many_ctx *m, smki_db index, const void **keys, size_t *lens)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) {
        smki_db db;
        const void *key;
        size_t klen;
        if (index_way(m->db, &m->qs[i], &db, &key, &klen) && db == index) keys[k] = key, lens[k++] = klen;
    }
    return smki_txn_scan_join_ahead(t, index, m->db->certs, keys, lens, k);
}

static int find_many_in(smki_txn *t, void *arg)
{
    many_ctx *m = arg;
    const void **keys = calloc(m->n ? m->n : 1, sizeof *keys);
    size_t *lens = calloc(m->n ? m->n : 1, sizeof *lens);
    int rc = keys && lens ? 0 : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    if (rc == 0) rc = fetch_ahead(t, m, m->db->by_eui, keys, lens);
    if (rc == 0) rc = fetch_ahead(t, m, m->db->by_ski, keys, lens);
    free(keys);
    free(lens);
    for (size_t i = 0; i < m->n && rc >= 0; i++) {
        find_ctx f = {m->db, &m->qs[i], m->fn, m->args[i], NULL, 0, m->cert, 0};
        rc = find_in(t, &f);
    }
    return rc < 0 ? rc : 0;
}

int smki_ca_find_many(smki_ca_db *db, const smki_ca_query *qs, size_t n, smki_cert_fn_t fn, void *const *args)
{
    ENSURE(db && ((qs && args) || n == 0) && fn, SMKI_E_INTERNAL, "smki_ca_find_many: missing argument");
    if (n == 0) return 0;
    smki_cert *cert = malloc(sizeof *cert);
    ENSURE(cert, SMKI_E_NOMEM, "out of memory");
    many_ctx m = {db, qs, n, fn, args, cert};
    int rc = smki_store_read(db->store, find_many_in, &m);
    free(cert);
    return rc;
}

int smki_ca_find(smki_ca_db *db, const smki_ca_query *q, smki_cert_fn_t fn, void *arg)
{
    ENSURE(db && q && fn, SMKI_E_INTERNAL, "smki_ca_find: missing argument");
    smki_cert *cert = malloc(sizeof *cert);
    ENSURE(cert, SMKI_E_NOMEM, "out of memory");
    find_ctx f = {db, q, fn, arg, NULL, 0, cert, 0};
    int rc = smki_store_read(db->store, find_in, &f);
    free(cert);
    return rc;
}

int smki_ca_find_txn(smki_txn *t, smki_ca_db *db, const smki_ca_query *q, smki_cert_fn_t fn, void *arg)
{
    ENSURE(t && db && q && fn, SMKI_E_INTERNAL, "smki_ca_find_txn: missing argument");
    smki_cert *cert = malloc(sizeof *cert);
    ENSURE(cert, SMKI_E_NOMEM, "out of memory");
    find_ctx f = {db, q, fn, arg, NULL, 0, cert, 0};
    int rc = find_in(t, &f);
    free(cert);
    return rc;
}

typedef struct {
    const smki_ca_db *db;
    size_t *n;
} count_arg;

static int count_in(smki_txn *t, void *arg)
{
    count_arg *a = arg;
    return smki_txn_count(t, a->db->certs, a->n);
}

int smki_ca_count(smki_ca_db *db, size_t *n)
{
    count_arg a = {db, n};
    return smki_store_read(db->store, count_in, &a);
}

/* ---- CA records -------------------------------------------------------------------------- */

static int ca_key(const char *env, smki_ca_kind kind, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", env, smki_ca_kind_name(kind));
    ENSURE(n > 0 && (size_t)n < cap && (unsigned)kind < SMKI_CA_KIND_COUNT, SMKI_E_USAGE, "CA name for '%.32s'", env);
    return 0;
}

int smki_ca_record_put(smki_txn *t, const smki_ca_db *db, const smki_ca_record *r)
{
    char key[96];
    GUARD(smki_ca_write_allowed(t, db, "recording a CA (a ceremony or a successor)"));
    GUARD(ca_key(r->env, r->kind, key, sizeof key));
    size_t ref_len = strlen(r->key_ref), env_len = strlen(r->env_text);
    uint8_t rec[1 + 1 + 2 + SMKI_KEY_URI_MAX + 2 + sizeof r->env_text + CA_CERT_KEY_LEN];
    ENSURE(ref_len < SMKI_KEY_URI_MAX && env_len < sizeof r->env_text, SMKI_E_INTERNAL, "CA record fields");
    size_t n = 0;
    rec[n++] = CA_RECORD_VERSION;
    rec[n++] = (uint8_t)r->kind;
    smki_put_be16(rec + n, (uint16_t)ref_len);
    n += 2;
    memcpy(rec + n, r->key_ref, ref_len);
    n += ref_len;
    smki_put_be16(rec + n, (uint16_t)env_len);
    n += 2;
    memcpy(rec + n, r->env_text, env_len);
    n += env_len;
    smki_ca_cert_key(&r->cert, rec + n);
    n += CA_CERT_KEY_LEN;
    int rc = smki_txn_put(t, db->cas, key, strlen(key), rec, n, SMKI_PUT_NOOVERWRITE);
    if (rc == SMKI_E_EXISTS)
        return SMKI_FAIL(SMKI_E_EXISTS, "the %s CA of environment %s exists: a CA is never replaced",
                         smki_ca_kind_name(r->kind), r->env);
    GUARD(rc);
    return smki_ca_cert_put(t, db, &r->cert);
}

typedef struct {
    const smki_ca_db *db;
    const char *key;
    smki_ca_record *out;
} ca_get_arg;

static int ca_get_in(smki_txn *t, void *arg)
{
    ca_get_arg *a = arg;
    const void *val;
    size_t vlen;
    GUARD(smki_txn_get(t, a->db->cas, a->key, strlen(a->key), &val, &vlen));
    smki_cursor_t c = smki_cursor(val, vlen);
    uint8_t version, kind;
    uint16_t ref_len, env_len;
    const uint8_t *cert_key;
    smki_ca_record *r = a->out;
    int rc = smki_cur_u8(&c, &version);
    if (rc == 0 && version != CA_RECORD_VERSION)
        return SMKI_FAIL(SMKI_E_CORRUPT, "CA record %s of version %u: this smki reads version %d", a->key, version,
                         CA_RECORD_VERSION);
    if (rc == 0) rc = smki_cur_u8(&c, &kind);
    if (rc == 0) rc = smki_cur_u16be(&c, &ref_len);
    if (rc == 0 && ref_len >= sizeof r->key_ref) rc = -1;
    if (rc == 0) rc = smki_cur_copy(&c, r->key_ref, ref_len);
    if (rc == 0) rc = smki_cur_u16be(&c, &env_len);
    if (rc == 0 && env_len >= sizeof r->env_text) rc = -1;
    if (rc == 0) rc = smki_cur_copy(&c, r->env_text, env_len);
    if (rc == 0) rc = smki_cur_take(&c, CA_CERT_KEY_LEN, &cert_key);
    if (rc < 0 || c.left || kind >= SMKI_CA_KIND_COUNT)
        return SMKI_FAIL(SMKI_E_CORRUPT, "CA record %s in the store is damaged", a->key);
    r->key_ref[ref_len] = '\0';
    r->env_text[env_len] = '\0';
    r->kind = (smki_ca_kind)kind;
    const void *cval;
    size_t clen;
    rc = smki_txn_get(t, a->db->certs, cert_key, CA_CERT_KEY_LEN, &cval, &clen);
    if (rc == SMKI_E_NOTFOUND) return SMKI_FAIL(SMKI_E_CORRUPT, "CA record %s names a certificate the store lacks", a->key);
    GUARD(rc);
    return smki_ca_cert_decode(cert_key, cval, clen, &r->cert);
}

int smki_ca_get_txn(smki_txn *t, const smki_ca_db *db, const char *key, smki_ca_record *out)
{
    memset(out, 0, offsetof(smki_ca_record, cert));
    const char *slash = strchr(key, '/');
    snprintf(out->env, sizeof out->env, "%.*s", slash ? (int)(slash - key) : 0, key);
    ca_get_arg a = {db, key, out};
    return ca_get_in(t, &a);
}

/* ---- A CA by its SKI, current or superseded ---- */

typedef struct {
    const smki_ca_db *db;
    smki_txn *t;
    const uint8_t *ski;
    smki_ca_record *out;
    smki_ca_record *tmp;
    int found, current;
} by_ski_arg;

static int by_ski_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    (void)v, (void)vl;
    by_ski_arg *b = arg;
    char key[200];
    if (kl >= sizeof key) return 0;
    memcpy(key, k, kl);
    key[kl] = '\0';
    GUARD(smki_ca_get_txn(b->t, b->db, key, b->tmp));
    if (memcmp(b->tmp->cert.ski, b->ski, SMKI_KEYID_LEN) != 0) return 0;
    *b->out = *b->tmp;
    b->found = 1;
    b->current = strchr(strchr(key, '/') + 1, '/') == NULL; /* <env>/<kind>, not <env>/<kind>/<serial> */
    return 0;
}

static int by_ski_in(smki_txn *t, void *arg)
{
    by_ski_arg *b = arg;
    b->t = t;
    char pfx[SMKI_ENV_NAME_MAX + 2];
    snprintf(pfx, sizeof pfx, "%s/", b->out->env);
    return smki_txn_scan(t, b->db->cas, pfx, strlen(pfx), by_ski_one, b);
}

int smki_ca_get_by_ski(smki_ca_db *db, const char *env, const uint8_t ski[SMKI_KEYID_LEN], smki_ca_record *out,
                       int *current)
{
    ENSURE(db && env && ski && out, SMKI_E_INTERNAL, "smki_ca_get_by_ski: missing argument");
    ENSURE(strlen(env) < SMKI_ENV_NAME_MAX, SMKI_E_USAGE, "environment name too long");
    smki_ca_record *tmp = malloc(sizeof *tmp);
    ENSURE(tmp, SMKI_E_NOMEM, "out of memory");
    snprintf(out->env, sizeof out->env, "%s", env);
    by_ski_arg b = {db, NULL, ski, out, tmp, 0, 0};
    int rc = smki_store_read(db->store, by_ski_in, &b);
    free(tmp);
    GUARD(rc);
    char hx[2 * SMKI_KEYID_LEN + 1];
    smki_hex_encode(ski, SMKI_KEYID_LEN, hx, 0);
    ENSURE(b.found, SMKI_E_NOTFOUND, "environment %s has no CA, current or superseded, of SKI %s ('smki ca list --env %s "
           "--usage ca')", env, hx, env);
    if (current) *current = b.current;
    return 0;
}

int smki_ca_get(smki_ca_db *db, const char *env, smki_ca_kind kind, smki_ca_record *out)
{
    char key[96];
    GUARD(ca_key(env, kind, key, sizeof key));
    memset(out, 0, offsetof(smki_ca_record, cert));
    snprintf(out->env, sizeof out->env, "%s", env);
    ca_get_arg a = {db, key, out};
    int rc = smki_store_read(db->store, ca_get_in, &a);
    if (rc == SMKI_E_NOTFOUND)
        return SMKI_FAIL(SMKI_E_NOTFOUND, "environment %s has no %s CA", env, smki_ca_kind_name(kind));
    return rc;
}

int smki_ca_env_get(smki_ca_db *db, const char *env, smki_env *out)
{
    smki_ca_record *r = malloc(sizeof *r);
    ENSURE(r, SMKI_E_NOMEM, "out of memory");
    int rc = SMKI_E_NOTFOUND;
    for (int k = 0; k < SMKI_CA_KIND_COUNT && rc == SMKI_E_NOTFOUND; k++) rc = smki_ca_get(db, env, (smki_ca_kind)k, r);
    if (rc == SMKI_E_NOTFOUND) rc = SMKI_FAIL(SMKI_E_NOTFOUND, "environment %s has no CA in this store", env);
    smki_conf *conf = NULL;
    if (rc == 0) rc = smki_conf_parse((const uint8_t *)r->env_text, strlen(r->env_text), "the store's CA record", &conf);
    if (rc == 0) rc = smki_env_load(env, conf, out);
    if (rc < 0 && rc != SMKI_E_NOTFOUND) smki_error_wrap("environment %s as its ceremony recorded it", env);
    smki_conf_free(conf);
    free(r);
    return rc;
}

/* ---- The environment as configuration ------------------------------------------------------ */

typedef struct {
    char *p;
    size_t cap, len;
    int overflow;
} text_w;

static void tw(text_w *w, const char *key, const char *val)
{
    int n = snprintf(w->p + w->len, w->cap - w->len, "%s = %s\n", key, val);
    if (n < 0 || (size_t)n >= w->cap - w->len) {
        w->overflow = 1;
        return;
    }
    w->len += (size_t)n;
}

int smki_env_to_conf(const smki_env *e, char *out, size_t cap)
{
    ENSURE(cap > 0, SMKI_E_INTERNAL, "no room");
    text_w w = {out, cap, 0, 0};
    int n = snprintf(out, cap, "[env.%s]\n", e->name);
    ENSURE(n > 0 && (size_t)n < cap, SMKI_E_INTERNAL, "environment text does not fit");
    w.len = (size_t)n;
    /* Keys that may not be empty are written only when set (a placeholder stays one). */
    const struct {
        const char *key, *val;
        int may_be_empty;
    } T[] = {
        {"org_policy", e->org_policy, 0},         {"device_policy", e->device_policy, 0},
        {"hw_type", e->hw_type, 0},               {"dccki_policy", e->dccki_policy, 1},
        {"party_signifier_attr", e->party_signifier_attr, 0},
        {"root_name", e->root_name, 1},           {"oca_name", e->oca_name, 1},
        {"dca_name", e->dca_name, 1},             {"dccki_root_name", e->dccki_root_name, 1},
        {"dccki_ica_name", e->dccki_ica_name, 1}, {"token", e->token, 0},
        {"trust_store", e->trust_store, 0},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        if (T[i].val[0] || T[i].may_be_empty) tw(&w, T[i].key, T[i].val);
    for (size_t id = 1; id < SMKI_PROFILE_COUNT; id++) {
        char key[64], val[16];
        snprintf(key, sizeof key, "%s_years", smki_profile_get((smki_profile_id)id)->name);
        for (char *k = key; *k; k++)
            if (*k == '-') *k = '_';
        snprintf(val, sizeof val, "%u", e->years[id]);
        tw(&w, key, val);
    }
    char val[16];
    snprintf(val, sizeof val, "%u", e->org_long_years);
    tw(&w, "organisation_long_years", val);
    char roles[256] = "";
    size_t k = 0;
    for (unsigned code = 0; code < 256; code++)
        if (e->org_long_roles[code / 8] & (1u << (code % 8))) {
            char hex[SMKI_ROLE_TEXT_MAX];
            smki_role_format((uint8_t)code, hex);
            k += (size_t)snprintf(roles + k, sizeof roles - k, "%s%s", k ? ", " : "", hex);
            if (k >= sizeof roles - 8) break;
        }
    tw(&w, "organisation_long_roles", roles);
    ENSURE(!w.overflow, SMKI_E_INTERNAL, "environment %s does not fit in %zu octets of text", e->name, cap);
    return 0;
}
