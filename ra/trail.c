/* The trail replayed: who the operators were at each entry (from the signed operator-add
 * and operator-deactivate entries alone, never the registry records a store writer can
 * edit), which requests were submitted, approved and executed, and by whom, over which
 * content. Execution proves a request's approvals with it; 'smki audit verify' proves
 * every executed request's. An approval counts only if its entry verifies with the key
 * the trail gave its operator, that operator was active when they approved and still
 * was when the request was executed, they did not submit it, and it signs the content
 * the request holds. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra_private.h"

#define TRAIL_APPROVALS_MAX 16

typedef struct {
    char name[SMKI_RA_NAME_MAX];
    uint8_t point[SMKI_POINT_LEN];
    EVP_PKEY *pub;
    uint64_t added, deactivated; /* entry numbers; deactivated 0: still active */
} trail_op;

typedef struct {
    char name[SMKI_RA_NAME_MAX];
    uint64_t seq;
    int has_hash;
    uint8_t hash[32];
} trail_approval;

typedef struct {
    uint64_t id;
    int submitted;
    char requester[SMKI_RA_NAME_MAX];
    int has_hash;
    uint8_t hash[32];
    unsigned needs;             /* "needs N approval(s)" of the signed submission */
    unsigned min_org, min_sens; /* the trail's approval counts when it was submitted */
    size_t n_appr;
    trail_approval appr[TRAIL_APPROVALS_MAX];
    uint64_t executed; /* the first entry of its execution; 0: none */
    int exec_has_hash;
} trail_req;

struct ra_trail {
    uint64_t only; /* 0: every request */
    trail_op *ops;
    size_t n_ops, cap_ops;
    trail_req *reqs;
    size_t n_reqs, cap_reqs;
    unsigned pol_org, pol_sens; /* 0: not in the trail (a trail begun before it was) */
};

int smki_ra_trail_new(uint64_t only, ra_trail **out)
{
    *out = calloc(1, sizeof **out);
    ENSURE(*out, SMKI_E_NOMEM, "out of memory");
    (*out)->only = only;
    return 0;
}

void smki_ra_trail_free(ra_trail *tr)
{
    if (!tr) return;
    for (size_t i = 0; i < tr->n_ops; i++) EVP_PKEY_free(tr->ops[i].pub);
    free(tr->ops);
    free(tr->reqs);
    free(tr);
}

EVP_PKEY *smki_ra_point_pub(const uint8_t point[SMKI_POINT_LEN])
{
    /* SubjectPublicKeyInfo of a P-256 key: a fixed prefix then the point. */
    static const uint8_t PFX[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                                  0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
    uint8_t spki[sizeof PFX + SMKI_POINT_LEN];
    memcpy(spki, PFX, sizeof PFX);
    memcpy(spki + sizeof PFX, point, SMKI_POINT_LEN);
    EVP_PKEY *pk = NULL;
    if (smki_pub_load(spki, sizeof spki, &pk) < 0) {
        smki_error_clear();
        return NULL;
    }
    return pk;
}

static trail_op *op_find(const ra_trail *tr, const char *name)
{
    for (size_t i = 0; i < tr->n_ops; i++)
        if (strcmp(tr->ops[i].name, name) == 0) return &tr->ops[i];
    return NULL;
}

static int sig_ok(EVP_PKEY *pub, const smki_audit_entry *e)
{
    uint8_t body[1100];
    size_t n;
    int ok = pub && smki_audit_entry_body(e, body, sizeof body, &n) == 0 &&
             smki_verify(pub, body, n, SMKI_SIG_DER, e->sig, e->sig_len) == 0;
    if (!ok) smki_error_clear();
    return ok;
}

/* The entry's operator as the trail knows them: added before it, not deactivated, and
 * its signature verifies with the key their operator-add entry recorded. */
static const trail_op *signer(const ra_trail *tr, const smki_audit_entry *e)
{
    const trail_op *o = op_find(tr, e->operator_name);
    if (!o || o->deactivated) return NULL;
    return sig_ok(o->pub, e) ? o : NULL;
}

/* The 64 hex digits after words in text. */
static int hash_after(const char *text, const char *words, uint8_t out[32])
{
    const char *p = strstr(text, words);
    if (!p) return 0;
    p += strlen(words);
    if (*p++ != ' ') return 0;
    size_t n = 0;
    if (strspn(p, "0123456789abcdef") < 64 || smki_hex_decode(p, 64, out, 32, &n) < 0 || n != 32) {
        smki_error_clear();
        return 0;
    }
    return 1;
}

static unsigned uint_after(const char *text, const char *words)
{
    const char *p = strstr(text, words);
    if (!p) return 0;
    p += strlen(words);
    unsigned v = 0;
    for (int i = 0; i < 3 && *p >= '0' && *p <= '9'; i++, p++) v = v * 10 + (unsigned)(*p - '0');
    return v;
}

static int op_add(ra_trail *tr, const smki_audit_entry *e)
{
    const char *name = e->object + 9; /* "operator NAME" */
    const char *pk = strstr(e->detail, "public key ");
    uint8_t point[SMKI_POINT_LEN];
    size_t n = 0;
    if (!pk || strlen(pk + 11) < 2 * SMKI_POINT_LEN ||
        smki_hex_decode(pk + 11, 2 * SMKI_POINT_LEN, point, sizeof point, &n) < 0 || n != SMKI_POINT_LEN) {
        smki_error_clear();
        return 0;
    }
    if (op_find(tr, name) || smki_ra_check_name("an operator name", name) < 0) {
        smki_error_clear();
        return 0;
    }
    EVP_PKEY *pub = smki_ra_point_pub(point);
    /* The first operator registers themself with the key the entry names; every later one
     * is added by an operator the trail already holds. */
    int ok = tr->n_ops == 0 ? strcmp(e->operator_name, name) == 0 && sig_ok(pub, e) : signer(tr, e) != NULL;
    if (!ok) {
        EVP_PKEY_free(pub);
        return 0;
    }
    if (tr->n_ops == tr->cap_ops) {
        size_t cap = tr->cap_ops ? 2 * tr->cap_ops : 8;
        trail_op *g = realloc(tr->ops, cap * sizeof *g);
        if (!g) EVP_PKEY_free(pub);
        ENSURE(g, SMKI_E_NOMEM, "out of memory");
        tr->ops = g;
        tr->cap_ops = cap;
    }
    if (tr->n_ops == 0) {
        /* The bootstrap fixes the approval counts the trail holds the RA to. */
        unsigned org = uint_after(e->detail, "approvals organisation "), sens = uint_after(e->detail, ", sensitive ");
        if (org) tr->pol_org = org;
        if (sens) tr->pol_sens = sens;
    }
    trail_op *o = &tr->ops[tr->n_ops++];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    memcpy(o->point, point, SMKI_POINT_LEN);
    o->pub = pub;
    o->added = e->seq;
    return 0;
}

static int request_id(const char *object, uint64_t *id)
{
    if (strncmp(object, "request ", 8) != 0) return 0;
    const char *p = object + 8;
    uint64_t v = 0;
    size_t n = 0;
    for (; p[n] >= '0' && p[n] <= '9' && n < 20; n++) {
        if (v > (UINT64_MAX - (uint64_t)(p[n] - '0')) / 10) return 0;
        v = v * 10 + (uint64_t)(p[n] - '0');
    }
    if (!n || p[n] || !v) return 0;
    *id = v;
    return 1;
}

/* Where request id is, or would be, in the sorted array: *at; whether it is there. */
static int req_index(const ra_trail *tr, uint64_t id, size_t *at)
{
    size_t lo = 0, hi = tr->n_reqs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tr->reqs[mid].id == id) {
            *at = mid;
            return 1;
        }
        if (tr->reqs[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    *at = lo;
    return 0;
}

static const trail_req *req_find(const ra_trail *tr, uint64_t id)
{
    size_t at;
    return req_index(tr, id, &at) ? &tr->reqs[at] : NULL;
}

static trail_req *req_slot(ra_trail *tr, uint64_t id, int create)
{
    size_t lo;
    if (req_index(tr, id, &lo)) return &tr->reqs[lo];
    if (!create) return NULL;
    if (tr->n_reqs == tr->cap_reqs) {
        size_t cap = tr->cap_reqs ? 2 * tr->cap_reqs : 64;
        trail_req *g = realloc(tr->reqs, cap * sizeof *g);
        if (!g) return NULL;
        tr->reqs = g;
        tr->cap_reqs = cap;
    }
    memmove(&tr->reqs[lo + 1], &tr->reqs[lo], (tr->n_reqs - lo) * sizeof *tr->reqs);
    tr->n_reqs++;
    memset(&tr->reqs[lo], 0, sizeof tr->reqs[lo]);
    tr->reqs[lo].id = id;
    return &tr->reqs[lo];
}

static int is_execution(const char *action)
{
    static const char *const EXEC[] = {"request-execute", "recover-revoke-ca", "recover-successor-begin",
                                       "ca-successor", "recover-reissue"};
    for (size_t i = 0; i < sizeof EXEC / sizeof EXEC[0]; i++)
        if (strcmp(action, EXEC[i]) == 0) return 1;
    return 0;
}

/* A policy request's execution: the approval counts from here on. */
static void policy_update(ra_trail *tr, const smki_audit_entry *e)
{
    unsigned v = uint_after(e->detail, "set approvals_organisation = ");
    if (v) tr->pol_org = v;
    v = uint_after(e->detail, "set approvals_sensitive = ");
    if (v) tr->pol_sens = v;
}

static int request_entry(ra_trail *tr, const smki_audit_entry *e, uint64_t id)
{
    int submit = strcmp(e->action, "request-submit") == 0, approve = strcmp(e->action, "request-approve") == 0;
    int exec = is_execution(e->action);
    if (!submit && !approve && !exec) return 0;
    const trail_op *o = signer(tr, e);
    if (!o) return 0; /* not the act of an operator the trail knows: 'smki audit verify' names the entry */
    trail_req *q = req_slot(tr, id, submit);
    if (!q && submit) return SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    if (!q) return 0;
    if (submit && !q->submitted) {
        q->submitted = 1;
        snprintf(q->requester, sizeof q->requester, "%s", o->name);
        q->has_hash = hash_after(e->detail, RA_CONTENT_WORDS, q->hash);
        q->needs = uint_after(e->detail, "needs ");
        q->min_org = tr->pol_org;
        q->min_sens = tr->pol_sens;
    } else if (approve && q->n_appr < TRAIL_APPROVALS_MAX) {
        trail_approval *a = &q->appr[q->n_appr++];
        snprintf(a->name, sizeof a->name, "%s", o->name);
        a->seq = e->seq;
        a->has_hash = hash_after(e->detail, RA_CONTENT_WORDS, a->hash);
    } else if (exec && !q->executed) {
        q->executed = e->seq;
        q->exec_has_hash = strstr(e->detail, RA_CONTENT_WORDS) != NULL;
    }
    if (exec) policy_update(tr, e);
    return 0;
}

int smki_ra_trail_feed(ra_trail *tr, const smki_audit_entry *e)
{
    if (strcmp(e->action, "operator-add") == 0 && strncmp(e->object, "operator ", 9) == 0) return op_add(tr, e);
    if (strcmp(e->action, "operator-deactivate") == 0 && strncmp(e->object, "operator ", 9) == 0) {
        trail_op *o = op_find(tr, e->object + 9);
        if (o && !o->deactivated && signer(tr, e)) o->deactivated = e->seq;
        return 0;
    }
    uint64_t id;
    if (!request_id(e->object, &id)) return 0;
    if (tr->only && id != tr->only) {
        if (is_execution(e->action) && strstr(e->detail, "set approvals_") && signer(tr, e)) policy_update(tr, e);
        return 0;
    }
    return request_entry(tr, e, id);
}

static int feed_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    (void)key, (void)klen;
    smki_audit_entry e;
    if (smki_audit_entry_decode(val, vlen, &e) < 0) {
        smki_error_clear(); /* damaged: 'smki audit verify' names it; nothing of it counts */
        return 0;
    }
    return smki_ra_trail_feed(arg, &e);
}

int smki_ra_trail_read(smki_txn *t, smki_ra *ra, ra_trail *tr)
{
    return smki_txn_scan(t, ra->db.audit, NULL, 0, feed_one, tr);
}

static int is_sensitive_type(int type)
{
    return type == SMKI_REQ_REVOKE || type == SMKI_REQ_RECOVER || type == SMKI_REQ_POLICY;
}

/* One approval that did not count: "<name> (entry N) <why>". */
static void why_add(ra_approval_proof *p, const char *name, uint64_t seq, const char *why)
{
    size_t at = strlen(p->why);
    snprintf(p->why + at, sizeof p->why - at, "%s%s (entry %llu) %s", at ? "; " : "", name, (unsigned long long)seq,
             why);
}

int smki_ra_trail_prove(const ra_trail *tr, const smki_ra_request *r, const uint8_t content[32], int at_execution,
                   ra_approval_proof *p)
{
    memset(p, 0, sizeof *p);
    const trail_req *q = req_find(tr, r->id);
    unsigned floor = is_sensitive_type(r->type) ? (q ? q->min_sens : tr->pol_sens) : (q ? q->min_org : tr->pol_org);
    p->required = r->approvals_required;
    if (floor > p->required) p->required = floor;
    if (p->required < 1) p->required = 1; /* nothing is done by one operator alone */
    if (!q || !q->submitted) {
        snprintf(p->why, sizeof p->why, "the trail holds no submission of it signed by a registered operator");
        return 0;
    }
    if (q->needs > p->required) p->required = q->needs;
    p->exec_seq = q->executed;
    /* A trail that predates content-bound approvals is judged by its signatures alone. */
    int legacy = !at_execution && q->executed && !q->exec_has_hash;
    p->legacy = legacy;
    if (!legacy && q->has_hash && memcmp(q->hash, content, 32) != 0) p->content_changed = 1;
    uint64_t cutoff = at_execution ? UINT64_MAX : q->executed;
    const char *counted[TRAIL_APPROVALS_MAX];
    for (size_t i = 0; i < q->n_appr; i++) {
        const trail_approval *a = &q->appr[i];
        if (a->seq >= cutoff) continue;
        const trail_op *o = op_find(tr, a->name);
        int dup = 0;
        for (unsigned k = 0; k < p->valid; k++) dup |= strcmp(counted[k], a->name) == 0;
        if (strcmp(a->name, q->requester) == 0) {
            why_add(p, a->name, a->seq, "submitted it");
        } else if (dup) {
            why_add(p, a->name, a->seq, "approved twice");
        } else if (!o || (o->deactivated && o->deactivated < cutoff)) {
            why_add(p, a->name, a->seq, "was deactivated before execution");
        } else if (!legacy && !a->has_hash) {
            why_add(p, a->name, a->seq, "approved before approvals were bound to content");
        } else if (!legacy && memcmp(a->hash, content, 32) != 0) {
            p->content_changed = 1;
            why_add(p, a->name, a->seq, "approved other content");
        } else {
            counted[p->valid++] = a->name;
        }
    }
    return 0;
}

int smki_ra_trail_each_executed(const ra_trail *tr, int (*fn)(uint64_t id, void *arg), void *arg)
{
    for (size_t i = 0; i < tr->n_reqs; i++)
        if (tr->reqs[i].executed) GUARD(fn(tr->reqs[i].id, arg));
    return 0;
}

int smki_ra_trail_operator(const ra_trail *tr, const char *name, uint8_t point[SMKI_POINT_LEN], int *active)
{
    const trail_op *o = op_find(tr, name);
    if (!o) return SMKI_E_NOTFOUND;
    memcpy(point, o->point, SMKI_POINT_LEN);
    *active = !o->deactivated;
    return 0;
}

size_t smki_ra_trail_operator_count(const ra_trail *tr)
{
    return tr->n_ops;
}

/* ---- Execution's proof ------------------------------------------------------------------------ */

typedef struct {
    smki_ra *ra;
    const smki_ra_request *r;
    uint8_t (*csr_hashes)[32];
    uint8_t content[32];
    ra_approval_proof proof;
} prove_run;

static int prove_txn(smki_txn *t, void *arg)
{
    prove_run *x = arg;
    ra_trail *tr = NULL;
    GUARD(smki_ra_trail_new(x->r->id, &tr));
    int rc = smki_ra_request_content(t, x->ra, x->r, x->content, x->csr_hashes);
    if (rc == 0) rc = smki_ra_trail_read(t, x->ra, tr);
    if (rc == 0) rc = smki_ra_trail_prove(tr, x->r, x->content, 1, &x->proof);
    smki_ra_trail_free(tr);
    return rc;
}

int smki_ra_prove_approvals(smki_ra *ra, const smki_ra_request *r, uint8_t content[32], uint8_t (*csr_hashes)[32])
{
    prove_run x = {ra, r, csr_hashes, {0}, {0}};
    GUARD(smki_store_read(ra->store, prove_txn, &x));
    ENSURE(!x.proof.content_changed, SMKI_E_REFUSED,
           "request %llu is not what was approved: its content in the store (CSR, names or fields) differs from what "
           "its submission and approvals signed (%s); nothing was done. Keep the store for investigation and run "
           "'smki audit verify'",
           (unsigned long long)r->id, x.proof.why[0] ? x.proof.why : "changed after submission");
    ENSURE(x.proof.valid >= x.proof.required, SMKI_E_REFUSED,
           "request %llu has %u valid signed approval(s) in the audit trail of the %u it needs%s%s; nothing was done",
           (unsigned long long)r->id, x.proof.valid, x.proof.required, x.proof.why[0] ? ": " : "", x.proof.why);
    if (content) memcpy(content, x.content, 32);
    return 0;
}
