/* The audit trail: every RA and CA action appended, in the transaction of the action
 * itself, as an entry that carries the hash of the one before and the acting
 * operator's signature; every N entries a checkpoint signed with a token key pins the
 * chain. Verifying it is audit_verify.c. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_trail.h"
#include "ra_private.h"

#define ENTRY_VERSION 1
#define CHECKPOINT_VERSION SMKI_RA_CHECKPOINT_VERSION
#define BODY_MAX SMKI_RA_AUDIT_BODY_MAX
static const char CKPT_LABEL[] = SMKI_RA_CHECKPOINT_LABEL;
static const uint8_t META_HEAD[] = "head";
static const uint8_t META_EVERY[] = "checkpoint_every";

/* ---- Encoding ----------------------------------------------------------------------------- */

static int entry_body(const smki_audit_entry *e, uint8_t *out, size_t cap, size_t *len)
{
    smki_writer_t w;
    smki_writer_fixed(&w, out, cap);
    smki_wr_u8(&w, ENTRY_VERSION);
    smki_wr_be64(&w, e->seq);
    smki_wr_be64(&w, (uint64_t)e->time);
    smki_wr_raw(&w, e->prev, SMKI_AUDIT_HASH_LEN);
    smki_ra_w_str(&w, e->operator_name);
    smki_ra_w_str(&w, e->action);
    smki_ra_w_str(&w, e->object);
    smki_ra_w_str(&w, e->detail);
    ENSURE(!w.err, SMKI_E_INTERNAL, "an audit entry of more than %zu octets", cap);
    *len = w.len;
    return 0;
}

static void sha256_2(const uint8_t *a, size_t an, const uint8_t *b, size_t bn, uint8_t out[32])
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned n = 32;
    if (!m || EVP_DigestInit_ex(m, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(m, a, an) != 1 ||
        (bn && EVP_DigestUpdate(m, b, bn) != 1) || EVP_DigestFinal_ex(m, out, &n) != 1)
        memset(out, 0, 32); /* an allocation failure: the chain check then reports it */
    EVP_MD_CTX_free(m);
}

/* Decode a stored entry (key: seq, 8 octets) and compute its hash. */
static int entry_decode(const void *val, size_t vlen, smki_audit_entry *e)
{
    memset(e, 0, sizeof *e);
    smki_cursor_t c = smki_cursor(val, vlen);
    uint8_t v = 0, sl = 0;
    uint64_t seq, t;
    int rc = smki_cur_u8(&c, &v);
    if (rc == 0 && v != ENTRY_VERSION) rc = -1;
    if (rc == 0) rc = smki_cur_u64be(&c, &seq);
    if (rc == 0) rc = smki_cur_u64be(&c, &t);
    if (rc == 0) rc = smki_cur_copy(&c, e->prev, SMKI_AUDIT_HASH_LEN);
    if (rc == 0) rc = smki_r_str(&c, e->operator_name, sizeof e->operator_name);
    if (rc == 0) rc = smki_r_str(&c, e->action, sizeof e->action);
    if (rc == 0) rc = smki_r_str(&c, e->object, sizeof e->object);
    if (rc == 0) rc = smki_r_str(&c, e->detail, sizeof e->detail);
    size_t body_len = vlen - c.left;
    if (rc == 0) rc = smki_cur_u8(&c, &sl);
    if (rc == 0 && (sl == 0 || sl > SMKI_SIG_MAX)) rc = -1;
    if (rc == 0) rc = smki_cur_copy(&c, e->sig, sl);
    if (rc < 0 || c.left) return SMKI_FAIL(SMKI_E_CORRUPT, "an audit entry of %zu octets does not decode", vlen);
    e->seq = seq;
    e->time = (int64_t)t;
    e->sig_len = sl;
    sha256_2(val, body_len, e->sig, sl, e->hash);
    return 0;
}

int smki_audit_entry_decode(const void *val, size_t len, smki_audit_entry *out)
{
    return entry_decode(val, len, out);
}

int smki_audit_entry_body(const smki_audit_entry *e, uint8_t *out, size_t cap, size_t *len)
{
    return entry_body(e, out, cap, len);
}

/* ---- Appending ------------------------------------------------------------------------------ */

int smki_ra_audit_head_get(smki_txn *t, smki_ra *ra, uint64_t *seq, uint8_t hash[32])
{
    const void *v;
    size_t n;
    int rc = smki_txn_get(t, ra->db.meta, META_HEAD, 4, &v, &n);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        *seq = 0;
        memset(hash, 0, 32);
        return 0;
    }
    GUARD(rc);
    ENSURE(n == 40, SMKI_E_CORRUPT, "the audit head record is damaged (%zu octets)", n);
    *seq = smki_get_be64(v);
    memcpy(hash, (const uint8_t *)v + 8, 32);
    return 0;
}

int smki_ra_audit_every_get(smki_txn *t, smki_ra *ra, unsigned *every, int create)
{
    const void *v;
    size_t n;
    int rc = smki_txn_get(t, ra->db.meta, META_EVERY, sizeof META_EVERY - 1, &v, &n);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        *every = ra->pol.checkpoint_every;
        if (!create) return 0;
        /* Fixed with the first entry: the verifier expects a checkpoint at each multiple. */
        uint8_t b[4];
        smki_put_be32(b, (uint32_t)*every);
        return smki_txn_put(t, ra->db.meta, META_EVERY, sizeof META_EVERY - 1, b, 4, 0);
    }
    GUARD(rc);
    const uint8_t *b = v;
    ENSURE(n == 4 && (b[0] | b[1] | b[2] | b[3]), SMKI_E_CORRUPT, "the audit checkpoint interval record is damaged");
    *every = smki_get_be32(b);
    return 0;
}

/* The approval counts, fixed in the store with the first entry (from [ra] then) and
 * changed only by an approved policy request: a line of smki.conf edited later changes
 * nothing. */
static const uint8_t META_APPR_ORG[] = "approvals_organisation";
static const uint8_t META_APPR_SENS[] = "approvals_sensitive";

static int u32_get(smki_txn *t, smki_ra *ra, const uint8_t *key, size_t klen, unsigned *out)
{
    const void *v;
    size_t n;
    int rc = smki_txn_get(t, ra->db.meta, key, klen, &v, &n);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        return 0;
    }
    GUARD(rc);
    const uint8_t *b = v;
    unsigned x = n == 4 ? (unsigned)b[0] << 24 | (unsigned)b[1] << 16 | (unsigned)b[2] << 8 | b[3] : 0;
    ENSURE(x >= 1 && x <= SMKI_RA_APPROVERS_MAX, SMKI_E_CORRUPT, "the store's %.*s record is damaged", (int)klen,
           (const char *)key);
    *out = x;
    return 0;
}

static int u32_put(smki_txn *t, smki_ra *ra, const uint8_t *key, size_t klen, unsigned x)
{
    uint8_t b[4];
    smki_put_be32(b, x);
    return smki_txn_put(t, ra->db.meta, key, klen, b, 4, 0);
}

int smki_ra_approvals_get(smki_txn *t, smki_ra *ra, unsigned *org, unsigned *sens)
{
    *org = ra->pol.approvals_org;
    *sens = ra->pol.approvals_sensitive;
    GUARD(u32_get(t, ra, META_APPR_ORG, sizeof META_APPR_ORG - 1, org));
    return u32_get(t, ra, META_APPR_SENS, sizeof META_APPR_SENS - 1, sens);
}

int smki_ra_approvals_put(smki_txn *t, smki_ra *ra, unsigned org, unsigned sens)
{
    ENSURE(org >= 1 && sens >= org && sens <= SMKI_RA_APPROVERS_MAX, SMKI_E_REFUSED,
           "approval counts organisation %u, sensitive %u: each is 1 to %d and sensitive is never below organisation",
           org, sens, SMKI_RA_APPROVERS_MAX);
    GUARD(u32_put(t, ra, META_APPR_ORG, sizeof META_APPR_ORG - 1, org));
    GUARD(u32_put(t, ra, META_APPR_SENS, sizeof META_APPR_SENS - 1, sens));
    ra->pol.approvals_org = org;
    ra->pol.approvals_sensitive = sens;
    return 0;
}

static int approvals_txn(smki_txn *t, void *arg)
{
    smki_ra *ra = arg;
    unsigned org, sens;
    GUARD(smki_ra_approvals_get(t, ra, &org, &sens));
    ra->pol.approvals_org = org;
    ra->pol.approvals_sensitive = sens;
    return 0;
}

int smki_ra_approvals_load(smki_ra *ra)
{
    return smki_store_read(ra->store, approvals_txn, ra);
}

static void checkpoint_msg(uint64_t seq, int64_t time, const uint8_t hash[32], uint8_t out[sizeof CKPT_LABEL - 1 + 48])
{
    memcpy(out, CKPT_LABEL, sizeof CKPT_LABEL - 1);
    smki_put_be64(out + sizeof CKPT_LABEL - 1, seq);
    smki_put_be64(out + sizeof CKPT_LABEL - 1 + 8, (uint64_t)time);
    memcpy(out + sizeof CKPT_LABEL - 1 + 16, hash, 32);
}

static int audit_append(smki_txn *t, smki_ra *ra, const smki_ra_actor *by, const ra_note *note)
{
    smki_audit_entry e;
    memset(&e, 0, sizeof e);
    uint64_t head;
    GUARD(smki_ra_audit_head_get(t, ra, &head, e.prev));
    unsigned every;
    GUARD(smki_ra_audit_every_get(t, ra, &every, head == 0));
    /* The first entry (or the first since this smki) fixes the approval counts too. */
    const void *fixed;
    size_t fixed_len;
    int frc = smki_txn_get(t, ra->db.meta, META_APPR_ORG, sizeof META_APPR_ORG - 1, &fixed, &fixed_len);
    if (frc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        unsigned org, sens;
        GUARD(smki_ra_approvals_get(t, ra, &org, &sens));
        GUARD(smki_ra_approvals_put(t, ra, org, sens));
    } else {
        GUARD(frc);
    }
    e.seq = head + 1;
    e.time = smki_ra_now(ra);
    snprintf(e.operator_name, sizeof e.operator_name, "%s", by->name);
    snprintf(e.action, sizeof e.action, "%s", note->action);
    snprintf(e.object, sizeof e.object, "%s", note->object);
    snprintf(e.detail, sizeof e.detail, "%s", note->detail);
    uint8_t rec[BODY_MAX + 1 + SMKI_SIG_MAX];
    size_t body_len;
    GUARD(entry_body(&e, rec, BODY_MAX, &body_len));
    size_t sig_len = SMKI_SIG_MAX;
    int rc = smki_key_sign(by->key, rec, body_len, SMKI_SIG_DER, rec + body_len + 1, &sig_len);
    if (rc < 0) return smki_error_wrap("signing audit entry %llu with operator %s's key", (unsigned long long)e.seq,
                                       by->name);
    rec[body_len] = (uint8_t)sig_len;
    sha256_2(rec, body_len, rec + body_len + 1, sig_len, e.hash);
    uint8_t key[8], headrec[40];
    smki_put_be64(key, e.seq);
    GUARD(smki_txn_put(t, ra->db.audit, key, 8, rec, body_len + 1 + sig_len, SMKI_PUT_NOOVERWRITE));
    smki_put_be64(headrec, e.seq);
    memcpy(headrec + 8, e.hash, 32);
    GUARD(smki_txn_put(t, ra->db.meta, META_HEAD, 4, headrec, sizeof headrec, 0));
    if (e.seq % every) return 0;
    /* A checkpoint falls due: without its key the action does not happen. */
    ENSURE(ra->ckpt, SMKI_E_REFUSED,
           "audit checkpoint %llu is due and no checkpoint key is open: configure [audit] checkpoint_key (a key in "
           "the token) and give the PIN; nothing was done",
           (unsigned long long)e.seq);
    uint8_t msg[sizeof CKPT_LABEL - 1 + 48], crec[1 + 48 + 1 + SMKI_SIG_MAX];
    checkpoint_msg(e.seq, e.time, e.hash, msg);
    crec[0] = CHECKPOINT_VERSION;
    memcpy(crec + 1, msg + sizeof CKPT_LABEL - 1, 48);
    size_t cl = SMKI_SIG_MAX;
    rc = smki_key_sign(ra->ckpt, msg, sizeof msg, SMKI_SIG_DER, crec + 50, &cl);
    if (rc < 0) return smki_error_wrap("signing audit checkpoint %llu", (unsigned long long)e.seq);
    crec[49] = (uint8_t)cl;
    return smki_txn_put(t, ra->db.checkpoints, key, 8, crec, 50 + cl, SMKI_PUT_NOOVERWRITE);
}

/* Could the next entry be written now? Refused, naming it, when a checkpoint falls due
 * on it and no checkpoint key is open: the check an action makes before it does anything
 * it cannot take back (a key generated, a list signed). audit_append checks again. */
int smki_ra_audit_ready(smki_txn *t, smki_ra *ra)
{
    uint64_t head;
    uint8_t hash[32];
    unsigned every;
    GUARD(smki_ra_audit_head_get(t, ra, &head, hash));
    GUARD(smki_ra_audit_every_get(t, ra, &every, 0));
    ENSURE(ra->ckpt || (head + 1) % every, SMKI_E_REFUSED,
           "audit checkpoint %llu is due and no checkpoint key is open: configure [audit] checkpoint_key (a key in "
           "the token) and give the PIN; nothing was done",
           (unsigned long long)(head + 1));
    return 0;
}

/* ---- Actions -------------------------------------------------------------------------------- */

int smki_ra_check_actor(smki_txn *t, smki_ra *ra, const smki_ra_actor *by)
{
    ENSURE(by && by->name && by->key, SMKI_E_USAGE,
           "no operator: every RA action is taken by a registered operator with their own key (--operator NAME "
           "--operator-key KEY)");
    smki_ra_operator o;
    int rc = smki_ra_operator_get_txn(t, ra, by->name, &o);
    if (rc == SMKI_E_NOTFOUND)
        return SMKI_FAIL(SMKI_E_REFUSED, "'%.64s' is not a registered RA operator ('smki ra operator list')", by->name);
    GUARD(rc);
    ENSURE(o.active, SMKI_E_REFUSED, "operator %s is deactivated and may take no action", o.name);
    uint8_t point[SMKI_POINT_LEN];
    GUARD(smki_pub_point(smki_key_public(by->key), point));
    ENSURE(memcmp(point, o.point, SMKI_POINT_LEN) == 0, SMKI_E_REFUSED,
           "the key given is not operator %s's registered key: refused", o.name);
    return 0;
}

typedef struct {
    smki_ra *ra;
    const smki_ra_actor *by;
    int bootstrap;
    ra_act_fn fn;
    void *arg;
    const char *via;
} act_run;

static int act_txn(smki_txn *t, void *arg)
{
    act_run *a = arg;
    if (!a->bootstrap) GUARD(smki_ra_check_actor(t, a->ra, a->by));
    ra_note note;
    memset(&note, 0, sizeof note);
    GUARD(a->fn(t, a->ra, a->arg, &note));
    if (a->via) {
        /* The detail gives way (cut short) so that who acted for whom is always whole. */
        size_t at = strlen(note.detail), need = strlen(a->via) + 6;
        ENSURE(need < sizeof note.detail / 2, SMKI_E_USAGE, "the actor's 'via' text is too long");
        if (at + need >= sizeof note.detail) at = sizeof note.detail - need - 1;
        snprintf(note.detail + at, sizeof note.detail - at, "; via %s", a->via);
    }
    return audit_append(t, a->ra, a->by, &note);
}

int smki_ra_act_in(smki_txn *t, smki_ra *ra, const smki_ra_actor *by, ra_act_fn fn, void *arg)
{
    act_run a = {ra, by, 0, fn, arg, NULL};
    return act_txn(t, &a);
}

int smki_ra_act_in_via(smki_txn *t, smki_ra *ra, const smki_ra_actor *by, const char *via, ra_act_fn fn, void *arg)
{
    act_run a = {ra, by, 0, fn, arg, via};
    return act_txn(t, &a);
}

int smki_ra_act(smki_ra *ra, const smki_ra_actor *by, int bootstrap, ra_act_fn fn, void *arg)
{
    ENSURE(by && by->name && by->key, SMKI_E_USAGE,
           "no operator: every RA action is taken by a registered operator with their own key (--operator NAME "
           "--operator-key KEY)");
    act_run a = {ra, by, bootstrap, fn, arg, NULL};
    GUARD(smki_store_write(ra->store, act_txn, &a));
    return smki_ra_anchor(ra); /* the new head, outside the store */
}

int smki_ra_act_via(smki_ra *ra, const smki_ra_actor *by, const char *via, ra_act_fn fn, void *arg)
{
    ENSURE(by && by->name && by->key, SMKI_E_USAGE,
           "no operator: every RA action is taken by a registered operator with their own key (--operator NAME "
           "--operator-key KEY)");
    act_run a = {ra, by, 0, fn, arg, via};
    GUARD(smki_store_write(ra->store, act_txn, &a));
    return smki_ra_anchor(ra);
}

/* ---- Reading ------------------------------------------------------------------------------- */

typedef struct {
    uint64_t from;
    smki_audit_fn fn;
    void *arg;
} each_run;

static int each_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    each_run *r = arg;
    if (klen != 8 || smki_get_be64(key) < r->from) return 0;
    smki_audit_entry e;
    GUARD(entry_decode(val, vlen, &e));
    return r->fn(&e, r->arg);
}

typedef struct {
    each_run r;
    smki_ra *ra;
} each_ctx;

static int each_ctx_txn(smki_txn *t, void *arg)
{
    each_ctx *c = arg;
    return smki_txn_scan(t, c->ra->db.audit, NULL, 0, each_one, &c->r);
}

int smki_audit_each(smki_ra *ra, uint64_t from, smki_audit_fn fn, void *arg)
{
    each_ctx c = {{from, fn, arg}, ra};
    return smki_store_read(ra->store, each_ctx_txn, &c);
}

typedef struct {
    smki_ra *ra;
    uint64_t seq;
    uint8_t hash[32];
} head_run;

static int head_txn(smki_txn *t, void *arg)
{
    head_run *h = arg;
    return smki_ra_audit_head_get(t, h->ra, &h->seq, h->hash);
}

int smki_audit_head(smki_ra *ra, uint64_t *seq, uint8_t hash[SMKI_AUDIT_HASH_LEN])
{
    head_run h = {ra, 0, {0}};
    GUARD(smki_store_read(ra->store, head_txn, &h));
    *seq = h.seq;
    if (hash) memcpy(hash, h.hash, 32);
    return 0;
}
