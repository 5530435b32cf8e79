/* Verifying the audit trail: smki_audit_verify walks it all and names each entry that
 * was altered, deleted, inserted or moved, and a tail cut back past a checkpoint; it
 * replays the operators and the executed requests against the registry and checks the
 * head against its anchor on the token. Reads only. Writing the trail is audit.c. */
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_trail.h"
#include "ra_private.h"

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
    if (smki_ra_operator_get_txn(v->t, v->ra, name, &o) == 0) {
        v->op_pub = smki_ra_point_pub(o.point);
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
    if (klen != 8 || smki_audit_entry_decode(val, vlen, &e) < 0) {
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
    uint8_t body[SMKI_RA_AUDIT_BODY_MAX];
    size_t body_len;
    EVP_PKEY *pub = operator_pub(v, e.operator_name);
    if (!pub) {
        finding(rep, SMKI_AUDIT_UNKNOWN_OPERATOR, kseq,
                "entry %llu is signed by '%s', who is not a registered operator", (unsigned long long)kseq,
                e.operator_name);
    } else if (smki_audit_entry_body(&e, body, sizeof body, &body_len) < 0 ||
               smki_verify(pub, body, body_len, SMKI_SIG_DER, e.sig, e.sig_len) < 0) {
        smki_error_clear();
        finding(rep, SMKI_AUDIT_ALTERED, kseq, "entry %llu (%s %s by %s) was altered: its signature does not verify",
                (unsigned long long)kseq, e.action, e.object, e.operator_name);
    }
    GUARD(smki_ra_trail_feed(v->trail, &e));
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
    if (klen != 8 || vlen < 51 || p[0] != SMKI_RA_CHECKPOINT_VERSION || p[49] == 0 || (size_t)p[49] + 50 != vlen ||
        smki_get_be64(p + 1) != kseq) {
        finding(rep, SMKI_AUDIT_CHECKPOINT, kseq, "checkpoint %llu is damaged", (unsigned long long)kseq);
        return 0;
    }
    uint8_t msg[sizeof SMKI_RA_CHECKPOINT_LABEL - 1 + 48];
    memcpy(msg, SMKI_RA_CHECKPOINT_LABEL, sizeof SMKI_RA_CHECKPOINT_LABEL - 1);
    memcpy(msg + sizeof SMKI_RA_CHECKPOINT_LABEL - 1, p + 1, 48);
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
    int rc = smki_ra_request_get_txn(v->t, v->ra, id, &r);
    if (rc == 0) rc = smki_ra_request_content(v->t, v->ra, &r, content, NULL);
    if (rc < 0) {
        finding(v->rep, SMKI_AUDIT_CONTENT, 0, "request %llu was executed but its record or CSRs cannot be read: %s",
                (unsigned long long)id, smki_error_msg());
        smki_error_clear();
        return 0;
    }
    ra_approval_proof p;
    GUARD(smki_ra_trail_prove(v->trail, &r, content, 0, &p));
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
    if (smki_ra_trail_operator(v->trail, o->name, point, &active) < 0)
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
    if (smki_ra_operator_decode(k, kl, val, vl, &o) < 0) {
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
    int rc = smki_ra_anchor_read(v->ra, first, v->ckpt_pub, &a);
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
    if (smki_ra_audit_head_get(t, v->ra, &head, head_hash) < 0) {
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
    GUARD(smki_ra_trail_each_executed(v->trail, executed_one, v));
    if (smki_ra_trail_operator_count(v->trail)) GUARD(smki_txn_scan(t, v->ra->db.operators, NULL, 0, registry_scan_one, v));
    unsigned every;
    if (smki_ra_audit_every_get(t, v->ra, &every, 0) < 0) {
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
    GUARD(smki_ra_trail_new(0, &v.trail));
    int rc = smki_store_read(ra->store, verify_txn, &v);
    if (rc == 0 && ra->ckpt && v.n_seen) rc = anchor_check(&v);
    smki_ra_trail_free(v.trail);
    free(v.seen);
    EVP_PKEY_free(v.op_pub);
    GUARD(rc);
    if (rep->total_findings)
        return SMKI_FAIL(SMKI_E_VERIFY, "the audit trail does not verify: %zu finding(s), the first at entry %llu: %s",
                         rep->total_findings, (unsigned long long)rep->findings[0].seq, rep->findings[0].message);
    return 0;
}
