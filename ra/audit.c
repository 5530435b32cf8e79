/* The audit trail: every RA and CA action appended, in the transaction of the action
 * itself, as an entry that carries the hash of the one before and the acting
 * operator's signature; every N entries a checkpoint signed with a token key pins the
 * chain. smki_audit_verify walks it all and names each entry that was altered,
 * deleted, inserted or moved, and a tail cut back past a checkpoint. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra_private.h"

#define ENTRY_VERSION 1
#define CHECKPOINT_VERSION 1
#define BODY_MAX 1024
static const char CKPT_LABEL[] = "smki-audit-checkpoint-v1";
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
    ra_w_str(&w, e->operator_name);
    ra_w_str(&w, e->action);
    ra_w_str(&w, e->object);
    ra_w_str(&w, e->detail);
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
    if (rc == 0) rc = r_str(&c, e->operator_name, sizeof e->operator_name);
    if (rc == 0) rc = r_str(&c, e->action, sizeof e->action);
    if (rc == 0) rc = r_str(&c, e->object, sizeof e->object);
    if (rc == 0) rc = r_str(&c, e->detail, sizeof e->detail);
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

static int head_get(smki_txn *t, smki_ra *ra, uint64_t *seq, uint8_t hash[32])
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

static int every_get(smki_txn *t, smki_ra *ra, unsigned *every, int create)
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

int ra_approvals_get(smki_txn *t, smki_ra *ra, unsigned *org, unsigned *sens)
{
    *org = ra->pol.approvals_org;
    *sens = ra->pol.approvals_sensitive;
    GUARD(u32_get(t, ra, META_APPR_ORG, sizeof META_APPR_ORG - 1, org));
    return u32_get(t, ra, META_APPR_SENS, sizeof META_APPR_SENS - 1, sens);
}

int ra_approvals_put(smki_txn *t, smki_ra *ra, unsigned org, unsigned sens)
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
    GUARD(ra_approvals_get(t, ra, &org, &sens));
    ra->pol.approvals_org = org;
    ra->pol.approvals_sensitive = sens;
    return 0;
}

int ra_approvals_load(smki_ra *ra)
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
    GUARD(head_get(t, ra, &head, e.prev));
    unsigned every;
    GUARD(every_get(t, ra, &every, head == 0));
    /* The first entry (or the first since this smki) fixes the approval counts too. */
    const void *fixed;
    size_t fixed_len;
    int frc = smki_txn_get(t, ra->db.meta, META_APPR_ORG, sizeof META_APPR_ORG - 1, &fixed, &fixed_len);
    if (frc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        unsigned org, sens;
        GUARD(ra_approvals_get(t, ra, &org, &sens));
        GUARD(ra_approvals_put(t, ra, org, sens));
    } else {
        GUARD(frc);
    }
    e.seq = head + 1;
    e.time = ra_now(ra);
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
int ra_audit_ready(smki_txn *t, smki_ra *ra)
{
    uint64_t head;
    uint8_t hash[32];
    unsigned every;
    GUARD(head_get(t, ra, &head, hash));
    GUARD(every_get(t, ra, &every, 0));
    ENSURE(ra->ckpt || (head + 1) % every, SMKI_E_REFUSED,
           "audit checkpoint %llu is due and no checkpoint key is open: configure [audit] checkpoint_key (a key in "
           "the token) and give the PIN; nothing was done",
           (unsigned long long)(head + 1));
    return 0;
}

/* ---- Actions -------------------------------------------------------------------------------- */

int ra_check_actor(smki_txn *t, smki_ra *ra, const smki_ra_actor *by)
{
    ENSURE(by && by->name && by->key, SMKI_E_USAGE,
           "no operator: every RA action is taken by a registered operator with their own key (--operator NAME "
           "--operator-key KEY)");
    smki_ra_operator o;
    int rc = ra_operator_get_txn(t, ra, by->name, &o);
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
    if (!a->bootstrap) GUARD(ra_check_actor(t, a->ra, a->by));
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

int ra_act_in(smki_txn *t, smki_ra *ra, const smki_ra_actor *by, ra_act_fn fn, void *arg)
{
    act_run a = {ra, by, 0, fn, arg, NULL};
    return act_txn(t, &a);
}

int ra_act_in_via(smki_txn *t, smki_ra *ra, const smki_ra_actor *by, const char *via, ra_act_fn fn, void *arg)
{
    act_run a = {ra, by, 0, fn, arg, via};
    return act_txn(t, &a);
}

int ra_act(smki_ra *ra, const smki_ra_actor *by, int bootstrap, ra_act_fn fn, void *arg)
{
    ENSURE(by && by->name && by->key, SMKI_E_USAGE,
           "no operator: every RA action is taken by a registered operator with their own key (--operator NAME "
           "--operator-key KEY)");
    act_run a = {ra, by, bootstrap, fn, arg, NULL};
    GUARD(smki_store_write(ra->store, act_txn, &a));
    return ra_anchor(ra); /* the new head, outside the store */
}

int ra_act_via(smki_ra *ra, const smki_ra_actor *by, const char *via, ra_act_fn fn, void *arg)
{
    ENSURE(by && by->name && by->key, SMKI_E_USAGE,
           "no operator: every RA action is taken by a registered operator with their own key (--operator NAME "
           "--operator-key KEY)");
    act_run a = {ra, by, 0, fn, arg, via};
    GUARD(smki_store_write(ra->store, act_txn, &a));
    return ra_anchor(ra);
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
    return head_get(t, h->ra, &h->seq, h->hash);
}

int smki_audit_head(smki_ra *ra, uint64_t *seq, uint8_t hash[SMKI_AUDIT_HASH_LEN])
{
    head_run h = {ra, 0, {0}};
    GUARD(smki_store_read(ra->store, head_txn, &h));
    *seq = h.seq;
    if (hash) memcpy(hash, h.hash, 32);
    return 0;
}

/* ---- Verifying ------------------------------------------------------------------------------ */

static const char *const FINDING_NAMES[] = {NULL,         "damaged",          "altered",    "missing",
                                            "misplaced",  "chain",            "unknown-operator", "checkpoint",
                                            "checkpoint-missing", "truncated", "unapproved", "content",
                                            "registry",   "anchor"};

const char *smki_audit_finding_name(int kind)
{
    return kind >= 1 && kind <= SMKI_AUDIT_ANCHOR ? FINDING_NAMES[kind] : "unknown";
}

static void finding(smki_audit_report *rep, smki_audit_finding_kind kind, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void finding(smki_audit_report *rep, smki_audit_finding_kind kind, uint64_t seq, const char *fmt, ...)
{
    rep->total_findings++;
    if (rep->n_findings >= SMKI_AUDIT_FINDINGS_MAX) return;
    rep->findings[rep->n_findings].kind = kind;
    rep->findings[rep->n_findings].seq = seq;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->findings[rep->n_findings].message, sizeof rep->findings[0].message, fmt, ap);
    va_end(ap);
    rep->n_findings++;
}

/* The hashes of the entries as found, for the checkpoint pass (seq -> hash). */
typedef struct {
    uint64_t seq;
    uint8_t hash[32];
} seen_hash;

typedef struct {
    smki_ra *ra;
    smki_txn *t;
    smki_audit_report *rep;
    uint64_t expect;
    uint8_t prev[32];
    seen_hash *seen;
    size_t n_seen, cap_seen;
    EVP_PKEY *ckpt_pub;
    /* a small cache of operators' keys */
    char op_name[SMKI_RA_NAME_MAX];
    EVP_PKEY *op_pub;
    int op_known;
    ra_trail *trail; /* the trail replayed: operators and approvals from signed entries only */
} verify_run;

static EVP_PKEY *operator_pub(verify_run *v, const char *name)
{
    if (strcmp(v->op_name, name) == 0) return v->op_known ? v->op_pub : NULL;
    EVP_PKEY_free(v->op_pub);
    v->op_pub = NULL;
    v->op_known = 0;
    snprintf(v->op_name, sizeof v->op_name, "%s", name);
    smki_ra_operator o;
    if (ra_operator_get_txn(v->t, v->ra, name, &o) == 0) {
        v->op_pub = ra_point_pub(o.point);
        v->op_known = v->op_pub != NULL;
    } else {
        smki_error_clear();
    }
    return v->op_pub;
}

static int verify_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    verify_run *v = arg;
    smki_audit_report *rep = v->rep;
    rep->entries++;
    uint64_t kseq = klen == 8 ? smki_get_be64(key) : 0;
    smki_audit_entry e;
    if (klen != 8 || entry_decode(val, vlen, &e) < 0) {
        smki_error_clear();
        finding(rep, SMKI_AUDIT_DAMAGED, kseq, "entry %llu does not decode (%zu octets): damaged or overwritten",
                (unsigned long long)kseq, vlen);
        v->expect = kseq + 1;
        memset(v->prev, 0xFF, 32); /* unknown: the next entry's chain is reported as broken */
        return 0;
    }
    if (e.seq != kseq)
        finding(rep, SMKI_AUDIT_MISPLACED, kseq,
                "the entry stored as %llu says it is entry %llu: entries were moved or "
                "reordered",
                (unsigned long long)kseq, (unsigned long long)e.seq);
    if (kseq > v->expect) {
        finding(rep, SMKI_AUDIT_MISSING, v->expect, "entries %llu to %llu are missing: deleted",
                (unsigned long long)v->expect, (unsigned long long)kseq - 1);
    }
    if (memcmp(e.prev, v->prev, 32) != 0 && kseq <= v->expect)
        finding(rep, SMKI_AUDIT_CHAIN, kseq,
                "entry %llu does not carry the hash of entry %llu before it: an entry was inserted or reordered "
                "here, or entry %llu was altered",
                (unsigned long long)kseq, (unsigned long long)kseq - 1, (unsigned long long)kseq - 1);
    /* The operator's signature over the body: an entry changed by anyone without their key. */
    uint8_t body[BODY_MAX];
    size_t body_len;
    EVP_PKEY *pub = operator_pub(v, e.operator_name);
    if (!pub) {
        finding(rep, SMKI_AUDIT_UNKNOWN_OPERATOR, kseq,
                "entry %llu is signed by '%s', who is not a registered operator", (unsigned long long)kseq,
                e.operator_name);
    } else if (entry_body(&e, body, sizeof body, &body_len) < 0 ||
               smki_verify(pub, body, body_len, SMKI_SIG_DER, e.sig, e.sig_len) < 0) {
        smki_error_clear();
        finding(rep, SMKI_AUDIT_ALTERED, kseq, "entry %llu (%s %s by %s) was altered: its signature does not verify",
                (unsigned long long)kseq, e.action, e.object, e.operator_name);
    }
    GUARD(ra_trail_feed(v->trail, &e));
    memcpy(v->prev, e.hash, 32);
    v->expect = kseq + 1;
    if (v->n_seen == v->cap_seen) {
        size_t cap = v->cap_seen ? 2 * v->cap_seen : 1024;
        seen_hash *n = realloc(v->seen, cap * sizeof *n);
        ENSURE(n, SMKI_E_NOMEM, "out of memory");
        v->seen = n;
        v->cap_seen = cap;
    }
    v->seen[v->n_seen].seq = kseq;
    memcpy(v->seen[v->n_seen].hash, e.hash, 32);
    v->n_seen++;
    return 0;
}

static const uint8_t *seen_find(const verify_run *v, uint64_t seq)
{
    size_t lo = 0, hi = v->n_seen;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v->seen[mid].seq == seq) return v->seen[mid].hash;
        if (v->seen[mid].seq < seq) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static int checkpoint_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    verify_run *v = arg;
    smki_audit_report *rep = v->rep;
    rep->checkpoints++;
    uint64_t kseq = klen == 8 ? smki_get_be64(key) : 0;
    const uint8_t *p = val;
    if (klen != 8 || vlen < 51 || p[0] != CHECKPOINT_VERSION || p[49] == 0 || (size_t)p[49] + 50 != vlen ||
        smki_get_be64(p + 1) != kseq) {
        finding(rep, SMKI_AUDIT_CHECKPOINT, kseq, "checkpoint %llu is damaged", (unsigned long long)kseq);
        return 0;
    }
    uint8_t msg[sizeof CKPT_LABEL - 1 + 48];
    memcpy(msg, CKPT_LABEL, sizeof CKPT_LABEL - 1);
    memcpy(msg + sizeof CKPT_LABEL - 1, p + 1, 48);
    if (v->ckpt_pub && smki_verify(v->ckpt_pub, msg, sizeof msg, SMKI_SIG_DER, p + 50, p[49]) < 0) {
        smki_error_clear();
        finding(rep, SMKI_AUDIT_CHECKPOINT, kseq,
                "checkpoint %llu's signature does not verify with the checkpoint key: forged or altered",
                (unsigned long long)kseq);
        return 0;
    }
    const uint8_t *h = seen_find(v, kseq);
    if (!h) {
        finding(rep, SMKI_AUDIT_TRUNCATED, kseq,
                "checkpoint %llu was signed over entry %llu, which is gone: the log was cut back or the entry deleted",
                (unsigned long long)kseq, (unsigned long long)kseq);
        return 0;
    }
    if (memcmp(h, p + 17, 32) != 0) {
        finding(rep, SMKI_AUDIT_CHECKPOINT, kseq,
                "entries up to %llu are not the ones checkpoint %llu signed: rewritten (chain re-hashed) before it",
                (unsigned long long)kseq, (unsigned long long)kseq);
        return 0;
    }
    if (v->ckpt_pub && kseq > rep->last_checkpoint) rep->last_checkpoint = kseq;
    return 0;
}

/* Each executed request: enough valid, distinct, signed approvals by operators active
 * then, over the content the store holds now. */
static int executed_one(uint64_t id, void *arg)
{
    verify_run *v = arg;
    smki_ra_request r;
    uint8_t content[32];
    int rc = ra_request_get_txn(v->t, v->ra, id, &r);
    if (rc == 0) rc = ra_request_content(v->t, v->ra, &r, content, NULL);
    if (rc < 0) {
        finding(v->rep, SMKI_AUDIT_CONTENT, 0, "request %llu was executed but its record or CSRs cannot be read: %s",
                (unsigned long long)id, smki_error_msg());
        smki_error_clear();
        return 0;
    }
    ra_approval_proof p;
    GUARD(ra_trail_prove(v->trail, &r, content, 0, &p));
    if (p.content_changed)
        finding(v->rep, SMKI_AUDIT_CONTENT, p.exec_seq,
                "request %llu's content in the store (CSR, names or fields) is not what its submission and approvals "
                "signed: changed after approval%s%s",
                (unsigned long long)id, p.why[0] ? ": " : "", p.why);
    else if (p.valid < p.required)
        finding(v->rep, SMKI_AUDIT_UNAPPROVED, p.exec_seq,
                "request %llu was executed (entry %llu) with %u valid signed approval(s) of the %u it needs%s%s",
                (unsigned long long)id, (unsigned long long)p.exec_seq, p.valid, p.required, p.why[0] ? ": " : "",
                p.why);
    return 0;
}

/* Each registered operator as the trail's signed entries made them: same key, same standing. */
static int registry_one(const smki_ra_operator *o, void *arg)
{
    verify_run *v = arg;
    uint8_t point[SMKI_POINT_LEN];
    int active = 0;
    if (ra_trail_operator(v->trail, o->name, point, &active) < 0)
        finding(v->rep, SMKI_AUDIT_REGISTRY, 0,
                "operator %s is in the registry but no signed operator-add entry of the trail registered them: "
                "added outside smki",
                o->name);
    else if (memcmp(point, o->point, SMKI_POINT_LEN) != 0)
        finding(v->rep, SMKI_AUDIT_REGISTRY, 0,
                "operator %s's key in the registry is not the one the trail registered: replaced outside smki", o->name);
    else if (o->active && !active)
        finding(v->rep, SMKI_AUDIT_REGISTRY, 0,
                "operator %s is active in the registry but the trail deactivated them: re-activated outside smki",
                o->name);
    return 0;
}

static int registry_scan_one(const void *k, size_t kl, const void *val, size_t vl, void *arg)
{
    verify_run *v = arg;
    smki_ra_operator o;
    if (ra_operator_decode(k, kl, val, vl, &o) < 0) {
        smki_error_clear();
        finding(v->rep, SMKI_AUDIT_REGISTRY, 0, "an operator record is damaged");
        return 0;
    }
    return registry_one(&o, v);
}

/* The trail against the head anchored beside the checkpoint key. */
static int anchor_check(verify_run *v)
{
    smki_audit_report *rep = v->rep;
    const uint8_t *first = seen_find(v, 1);
    if (!first) {
        finding(rep, SMKI_AUDIT_ANCHOR, 1, "the trail has no entry 1: the anchor that names it cannot be found");
        return 0;
    }
    ra_anchor_rec a;
    int rc = ra_anchor_read(v->ra, first, v->ckpt_pub, &a);
    rep->anchor_checked = 1;
    if (rc == SMKI_E_NOTFOUND) {
        finding(rep, SMKI_AUDIT_ANCHOR, 0,
                "no anchor of this trail beside the checkpoint key: it was never anchored (run any RA action with the "
                "checkpoint key open), deleted with the PIN, or the trail was rewritten from its first entry");
        return 0;
    }
    if (rc < 0) {
        finding(rep, SMKI_AUDIT_ANCHOR, 0, "%s", smki_error_msg());
        smki_error_clear();
        return 0;
    }
    rep->anchor_seq = a.seq;
    uint64_t last = v->seen[v->n_seen - 1].seq;
    const uint8_t *h = seen_find(v, a.seq);
    if (a.seq > last || !h)
        finding(rep, SMKI_AUDIT_ANCHOR, a.seq,
                "the token's anchor records entry %llu but the trail ends at %llu: entries were cut off the end",
                (unsigned long long)a.seq, (unsigned long long)last);
    else if (memcmp(h, a.hash, 32) != 0)
        finding(rep, SMKI_AUDIT_ANCHOR, a.seq,
                "entry %llu is not the one the token's anchor records: the trail was rewritten up to it",
                (unsigned long long)a.seq);
    return 0;
}

static int verify_txn(smki_txn *t, void *arg)
{
    verify_run *v = arg;
    smki_audit_report *rep = v->rep;
    v->t = t;
    v->expect = 1;
    memset(v->prev, 0, 32);
    GUARD(smki_txn_scan(t, v->ra->db.audit, NULL, 0, verify_one, v));
    uint8_t head_hash[32];
    uint64_t head;
    if (head_get(t, v->ra, &head, head_hash) < 0) {
        smki_error_clear();
        finding(rep, SMKI_AUDIT_DAMAGED, 0, "the head record is damaged");
        head = 0;
    }
    rep->head_seq = head;
    uint64_t last = v->n_seen ? v->seen[v->n_seen - 1].seq : 0;
    if (head > last)
        finding(rep, SMKI_AUDIT_TRUNCATED, last + 1,
                "the head says %llu entries but the log ends at %llu: entries %llu "
                "to %llu were cut off",
                (unsigned long long)head, (unsigned long long)last, (unsigned long long)last + 1,
                (unsigned long long)head);
    else if (head < last)
        finding(rep, SMKI_AUDIT_CHAIN, head + 1,
                "entries %llu to %llu lie beyond the head (%llu): appended outside smki", (unsigned long long)head + 1,
                (unsigned long long)last, (unsigned long long)head);
    else if (last && memcmp(head_hash, v->seen[v->n_seen - 1].hash, 32) != 0)
        finding(rep, SMKI_AUDIT_CHAIN, last, "the last entry (%llu) is not the one the head records: replaced",
                (unsigned long long)last);
    GUARD(smki_txn_scan(t, v->ra->db.checkpoints, NULL, 0, checkpoint_one, v));
    GUARD(ra_trail_each_executed(v->trail, executed_one, v));
    if (ra_trail_operator_count(v->trail)) GUARD(smki_txn_scan(t, v->ra->db.operators, NULL, 0, registry_scan_one, v));
    unsigned every;
    if (every_get(t, v->ra, &every, 0) < 0) {
        smki_error_clear();
        finding(rep, SMKI_AUDIT_DAMAGED, 0, "the checkpoint interval record is damaged");
        return 0;
    }
    uint64_t top = head > last ? head : last;
    for (uint64_t s = every; s <= top; s += every) {
        uint8_t key[8];
        const void *val;
        size_t n;
        smki_put_be64(key, s);
        int rc = smki_txn_get(t, v->ra->db.checkpoints, key, 8, &val, &n);
        if (rc == SMKI_E_NOTFOUND) {
            smki_error_clear();
            finding(rep, SMKI_AUDIT_CHECKPOINT_MISSING, s, "checkpoint %llu is missing: deleted",
                    (unsigned long long)s);
        } else {
            GUARD(rc);
        }
    }
    return 0;
}

int smki_audit_verify(smki_ra *ra, EVP_PKEY *checkpoint_pub, smki_audit_report *rep)
{
    memset(rep, 0, sizeof *rep);
    verify_run v;
    memset(&v, 0, sizeof v);
    v.ra = ra;
    v.rep = rep;
    v.ckpt_pub = checkpoint_pub;
    GUARD(ra_trail_new(0, &v.trail));
    int rc = smki_store_read(ra->store, verify_txn, &v);
    if (rc == 0 && ra->ckpt && v.n_seen) rc = anchor_check(&v);
    ra_trail_free(v.trail);
    free(v.seen);
    EVP_PKEY_free(v.op_pub);
    GUARD(rc);
    if (rep->total_findings)
        return SMKI_FAIL(SMKI_E_VERIFY, "the audit trail does not verify: %zu finding(s), the first at entry %llu: %s",
                         rep->total_findings, (unsigned long long)rep->findings[0].seq, rep->findings[0].message);
    return 0;
}
