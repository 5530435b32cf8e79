/* The registry: operators, Parties, EUI-64 blocks and the IDs allocated from them,
 * Authorised Subscribers, suspensions, and the eligibility rules that read them.
 * Every change is an action (smki_ra_act): one transaction with its audit entry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra_private.h"

#define OPERATOR_VERSION 1
#define PARTY_VERSION 1
#define USER_VERSION 1
#define RANGE_VERSION 1

static void eui_text(const smki_eui64_t *id, char out[SMKI_EUI64_TEXT_MAX])
{
    smki_eui64_format(id, SMKI_EUI64_HYPHEN, out);
}

/* ---- Operators ------------------------------------------------------------------------------ */

int smki_ra_operator_decode(const void *key, size_t klen, const void *val, size_t vlen, smki_ra_operator *o)
{
    memset(o, 0, sizeof *o);
    smki_cursor_t c = smki_cursor(val, vlen);
    uint8_t v = 0, active = 0;
    uint64_t added;
    int rc = klen < SMKI_RA_NAME_MAX ? smki_cur_u8(&c, &v) : -1;
    if (rc == 0 && v != OPERATOR_VERSION) rc = -1;
    if (rc == 0) rc = smki_cur_u8(&c, &active);
    if (rc == 0) rc = smki_cur_u64be(&c, &added);
    if (rc == 0) rc = smki_cur_copy(&c, o->point, SMKI_POINT_LEN);
    if (rc < 0 || c.left || active > 1) return SMKI_FAIL(SMKI_E_CORRUPT, "an operator record is damaged");
    memcpy(o->name, key, klen);
    o->name[klen] = '\0';
    o->active = active;
    o->added = (int64_t)added;
    return 0;
}

int smki_ra_operator_get_txn(smki_txn *t, smki_ra *ra, const char *name, smki_ra_operator *out)
{
    const void *v;
    size_t n;
    size_t kl = strlen(name);
    ENSURE(kl && kl < SMKI_RA_NAME_MAX, SMKI_E_NOTFOUND, "no operator '%.64s'", name);
    GUARD(smki_txn_get(t, ra->db.operators, name, kl, &v, &n));
    return smki_ra_operator_decode(name, kl, v, n, out);
}

static int operator_put(smki_txn *t, smki_ra *ra, const smki_ra_operator *o, unsigned flags)
{
    uint8_t rec[1 + 1 + 8 + SMKI_POINT_LEN];
    smki_writer_t w;
    smki_writer_fixed(&w, rec, sizeof rec);
    smki_wr_u8(&w, OPERATOR_VERSION);
    smki_wr_u8(&w, (uint8_t)(o->active ? 1 : 0));
    smki_wr_be64(&w, (uint64_t)o->added);
    smki_wr_raw(&w, o->point, SMKI_POINT_LEN);
    ENSURE(!w.err, SMKI_E_INTERNAL, "operator record");
    int rc = smki_txn_put(t, ra->db.operators, o->name, strlen(o->name), rec, w.len, flags);
    if (rc == SMKI_E_EXISTS) return SMKI_FAIL(SMKI_E_EXISTS, "operator %s is already registered", o->name);
    return rc;
}

typedef struct {
    const smki_ra_actor *by;
    smki_ra_operator o;
} op_add;

static int count_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    (void)k, (void)kl, (void)v, (void)vl;
    ++*(size_t *)arg;
    return 0;
}

static int operator_add_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    op_add *a = arg;
    size_t n = 0;
    GUARD(smki_txn_scan(t, ra->db.operators, NULL, 0, count_one, &n));
    if (n == 0) {
        /* The bootstrap: the first operator registers themself, proving the key is theirs. */
        uint8_t point[SMKI_POINT_LEN];
        GUARD(smki_pub_point(smki_key_public(a->by->key), point));
        ENSURE(strcmp(a->by->name, a->o.name) == 0 && memcmp(point, a->o.point, SMKI_POINT_LEN) == 0,
               SMKI_E_REFUSED,
               "the registry has no operator yet: the first one registers themself (--operator %s with their own "
               "key), not '%s'",
               a->o.name, a->by->name);
    } else {
        GUARD(smki_ra_check_actor(t, ra, a->by));
    }
    GUARD(operator_put(t, ra, &a->o, SMKI_PUT_NOOVERWRITE));
    GUARD(smki_ca_govern(t, &ra->ca)); /* from now on the CA writes only through the RA */
    snprintf(note->action, sizeof note->action, "operator-add");
    snprintf(note->object, sizeof note->object, "operator %s", a->o.name);
    char hx[2 * SMKI_POINT_LEN + 1];
    smki_hex_encode(a->o.point, SMKI_POINT_LEN, hx, 0);
    snprintf(note->detail, sizeof note->detail, "%spublic key %s", n == 0 ? "first operator (bootstrap); " : "", hx);
    if (n == 0) {
        /* The approval counts the RA starts with, into the trail (ra_trail holds the RA to them). */
        unsigned org, sens;
        GUARD(smki_ra_approvals_get(t, ra, &org, &sens));
        size_t at = strlen(note->detail);
        snprintf(note->detail + at, sizeof note->detail - at, "; approvals organisation %u, sensitive %u", org, sens);
    }
    return 0;
}

int smki_ra_operator_add(smki_ra *ra, const smki_ra_actor *by, const char *name, EVP_PKEY *pub)
{
    GUARD(smki_ra_check_name("an operator name", name));
    ENSURE(pub, SMKI_E_USAGE, "operator %s: no public key", name);
    op_add a = {by, {{0}, {0}, 1, smki_ra_now(ra)}};
    snprintf(a.o.name, sizeof a.o.name, "%s", name);
    GUARD(smki_pub_point(pub, a.o.point));
    return smki_ra_act(ra, by, 1, operator_add_fn, &a);
}

static int count_active(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    smki_ra_operator o;
    GUARD(smki_ra_operator_decode(k, kl, v, vl, &o));
    *(size_t *)arg += (size_t)o.active;
    return 0;
}

static int operator_deactivate_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    const char *name = arg;
    smki_ra_operator o;
    int rc = smki_ra_operator_get_txn(t, ra, name, &o);
    if (rc == SMKI_E_NOTFOUND) return SMKI_FAIL(SMKI_E_NOTFOUND, "no operator '%s'", name);
    GUARD(rc);
    ENSURE(o.active, SMKI_E_REFUSED, "operator %s is already deactivated", name);
    size_t active = 0;
    GUARD(smki_txn_scan(t, ra->db.operators, NULL, 0, count_active, &active));
    ENSURE(active > 1, SMKI_E_REFUSED,
           "operator %s is the last active operator: register another before deactivating them, or nobody could act",
           name);
    o.active = 0;
    GUARD(operator_put(t, ra, &o, 0));
    snprintf(note->action, sizeof note->action, "operator-deactivate");
    snprintf(note->object, sizeof note->object, "operator %s", name);
    return 0;
}

int smki_ra_operator_deactivate(smki_ra *ra, const smki_ra_actor *by, const char *name)
{
    GUARD(smki_ra_check_name("an operator name", name));
    return smki_ra_act(ra, by, 0, operator_deactivate_fn, (void *)name);
}

typedef struct {
    smki_ra *ra;
    const char *name;
    smki_ra_operator *out;
} op_get;

static int operator_get_txn(smki_txn *t, void *arg)
{
    op_get *g = arg;
    int rc = smki_ra_operator_get_txn(t, g->ra, g->name, g->out);
    if (rc == SMKI_E_NOTFOUND) return SMKI_FAIL(SMKI_E_NOTFOUND, "no operator '%.64s'", g->name);
    return rc;
}

int smki_ra_operator_get(smki_ra *ra, const char *name, smki_ra_operator *out)
{
    op_get g = {ra, name, out};
    return smki_store_read(ra->store, operator_get_txn, &g);
}

typedef struct {
    smki_ra *ra;
    smki_db db;
    void *fn;
    void *arg;
    size_t n;
} each_run;

static int operator_each_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    each_run *r = arg;
    smki_ra_operator o;
    GUARD(smki_ra_operator_decode(k, kl, v, vl, &o));
    return ((smki_ra_operator_fn)r->fn)(&o, r->arg);
}

static int each_txn_generic(smki_txn *t, void *arg, smki_scan_fn one)
{
    each_run *r = arg;
    return smki_txn_scan(t, r->db, NULL, 0, one, r);
}

static int operator_each_txn(smki_txn *t, void *arg)
{
    return each_txn_generic(t, arg, operator_each_one);
}

int smki_ra_operator_each(smki_ra *ra, smki_ra_operator_fn fn, void *arg)
{
    each_run r = {ra, ra->db.operators, (void *)fn, arg, 0};
    return smki_store_read(ra->store, operator_each_txn, &r);
}

static int count_txn(smki_txn *t, void *arg)
{
    each_run *r = arg;
    return smki_txn_scan(t, r->db, NULL, 0, count_one, &r->n);
}

int smki_ra_operator_count(smki_ra *ra, size_t *n)
{
    each_run r = {ra, ra->db.operators, NULL, NULL, 0};
    GUARD(smki_store_read(ra->store, count_txn, &r));
    *n = r.n;
    return 0;
}

int smki_ra_unmanaged_check(smki_ra *ra, const char *env, const char *what, int *managed)
{
    size_t operators = 0;
    GUARD(smki_ra_operator_count(ra, &operators));
    *managed = operators > 0;
    if (*managed) return 0;
    ENSURE(env && smki_ra_env_listed(ra->pol.unmanaged_envs, env), SMKI_E_REFUSED,
           "environment %s: %s goes only through the RA, and this store has no RA operators yet: register "
           "them ('smki ra operator add', docs/ra.md) and use 'smki ra request'; only a lab store may list the "
           "environment in ra.unmanaged (now: %s) to act without an RA",
           env ? env : "(none)", what, ra->pol.unmanaged_envs[0] ? ra->pol.unmanaged_envs : "none");
    return 0;
}

int smki_ra_issue_gate(smki_ra *ra, const char *env, const char *party, const char *what, int *gated)
{
    int managed = 0;
    int is_test = env && strcmp(env, "test") == 0;
    if (!is_test) GUARD(smki_ra_unmanaged_check(ra, env, "issuance", &managed));
    else {
        size_t operators = 0;
        GUARD(smki_ra_operator_count(ra, &operators));
        managed = operators > 0;
    }
    *gated = managed || is_test;
    ENSURE(!*gated || party, SMKI_E_REFUSED,
           "%s: %s go only to registered Parties%s: give --party SIGNIFIER and --operator NAME (the RA: "
           "'smki ra party add', 'smki ra --help')",
           is_test ? "test environment" : "this store has an RA", what,
           is_test ? " that are Testing Participants with their agreement signed" : "");
    return 0;
}

/* ---- Parties ---------------------------------------------------------------------------------- */

static int party_decode(const void *key, size_t klen, const void *val, size_t vlen, smki_ra_party *p)
{
    memset(p, 0, sizeof *p);
    smki_cursor_t c = smki_cursor(val, vlen);
    uint8_t v = 0, flags = 0;
    uint64_t created;
    int rc = klen < SMKI_RA_NAME_MAX ? smki_cur_u8(&c, &v) : -1;
    if (rc == 0 && v != PARTY_VERSION) rc = -1;
    if (rc == 0) rc = smki_cur_u8(&c, &flags);
    if (rc == 0) rc = smki_cur_u64be(&c, &created);
    if (rc == 0) rc = smki_r_str(&c, p->name, sizeof p->name);
    if (rc == 0) rc = smki_r_str(&c, p->suspend_reason, sizeof p->suspend_reason);
    if (rc < 0 || c.left || (flags & ~0x0Fu)) return SMKI_FAIL(SMKI_E_CORRUPT, "a party record is damaged");
    memcpy(p->signifier, key, klen);
    p->signifier[klen] = '\0';
    p->is_dcc = flags & 1;
    p->is_testing_participant = (flags >> 1) & 1;
    p->agreement_signed = (flags >> 2) & 1;
    p->suspended = (flags >> 3) & 1;
    p->created = (int64_t)created;
    return 0;
}

static int party_put(smki_txn *t, smki_ra *ra, const smki_ra_party *p, unsigned flags)
{
    uint8_t rec[16 + 2 * SMKI_RA_NAME_MAX + SMKI_RA_REASON_MAX];
    smki_writer_t w;
    smki_writer_fixed(&w, rec, sizeof rec);
    smki_wr_u8(&w, PARTY_VERSION);
    smki_wr_u8(&w, (uint8_t)((p->is_dcc ? 1 : 0) | (p->is_testing_participant ? 2 : 0) | (p->agreement_signed ? 4 : 0) |
                       (p->suspended ? 8 : 0)));
    smki_wr_be64(&w, (uint64_t)p->created);
    smki_ra_w_str(&w, p->name);
    smki_ra_w_str(&w, p->suspend_reason);
    ENSURE(!w.err, SMKI_E_INTERNAL, "party record");
    int rc = smki_txn_put(t, ra->db.parties, p->signifier, strlen(p->signifier), rec, w.len, flags);
    if (rc == SMKI_E_EXISTS) return SMKI_FAIL(SMKI_E_EXISTS, "party %s is already registered", p->signifier);
    return rc;
}

int smki_ra_party_get_txn(smki_txn *t, smki_ra *ra, const char *signifier, smki_ra_party *out)
{
    size_t kl = signifier ? strlen(signifier) : 0;
    ENSURE(kl && kl < SMKI_RA_NAME_MAX, SMKI_E_NOTFOUND, "no party '%.64s'", signifier ? signifier : "");
    const void *v;
    size_t n;
    int rc = smki_txn_get(t, ra->db.parties, signifier, kl, &v, &n);
    if (rc == SMKI_E_NOTFOUND)
        return SMKI_FAIL(SMKI_E_NOTFOUND, "no party '%s' in the registry ('smki ra party list')", signifier);
    GUARD(rc);
    return party_decode(signifier, kl, v, n, out);
}

static int party_add_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    smki_ra_party *p = arg;
    GUARD(party_put(t, ra, p, SMKI_PUT_NOOVERWRITE));
    snprintf(note->action, sizeof note->action, "party-add");
    snprintf(note->object, sizeof note->object, "party %s", p->signifier);
    snprintf(note->detail, sizeof note->detail, "name '%s'%s%s%s", p->name, p->is_dcc ? ", the DCC" : "",
             p->is_testing_participant ? ", Testing Participant" : "", p->agreement_signed ? ", agreement signed" : "");
    return 0;
}

int smki_ra_party_add(smki_ra *ra, const smki_ra_actor *by, const smki_ra_party *p)
{
    GUARD(smki_ra_check_name("a Party Signifier", p->signifier));
    ENSURE(strnlen(p->name, sizeof p->name) < sizeof p->name, SMKI_E_USAGE, "party name too long");
    ENSURE(!p->agreement_signed || p->is_testing_participant, SMKI_E_USAGE,
           "party %s: a signed agreement is recorded only for a Testing Participant", p->signifier);
    smki_ra_party q = *p;
    q.suspended = 0;
    q.suspend_reason[0] = '\0';
    q.created = smki_ra_now(ra);
    if (!q.name[0]) snprintf(q.name, sizeof q.name, "%s", q.signifier);
    return smki_ra_act(ra, by, 0, party_add_fn, &q);
}

typedef struct {
    const char *signifier;
    int tp, agreement, suspend;
    const char *reason;
} party_change;

static int party_testing_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    party_change *c = arg;
    smki_ra_party p;
    GUARD(smki_ra_party_get_txn(t, ra, c->signifier, &p));
    if (c->tp >= 0) p.is_testing_participant = c->tp;
    if (c->agreement >= 0) p.agreement_signed = c->agreement;
    if (!p.is_testing_participant) p.agreement_signed = 0;
    ENSURE(c->agreement != 1 || p.is_testing_participant, SMKI_E_REFUSED,
           "party %s is not a Testing Participant: a signed agreement is recorded only for one", p.signifier);
    GUARD(party_put(t, ra, &p, 0));
    snprintf(note->action, sizeof note->action, "party-testing");
    snprintf(note->object, sizeof note->object, "party %s", p.signifier);
    snprintf(note->detail, sizeof note->detail, "Testing Participant %s, agreement %s",
             p.is_testing_participant ? "yes" : "no", p.agreement_signed ? "signed" : "not signed");
    return 0;
}

int smki_ra_party_set_testing(smki_ra *ra, const smki_ra_actor *by, const char *signifier, int tp, int agreement)
{
    party_change c = {signifier, tp, agreement, 0, NULL};
    return smki_ra_act(ra, by, 0, party_testing_fn, &c);
}

static int party_suspend_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    party_change *c = arg;
    smki_ra_party p;
    GUARD(smki_ra_party_get_txn(t, ra, c->signifier, &p));
    ENSURE(p.suspended != c->suspend, SMKI_E_REFUSED, "party %s is %s suspended", p.signifier,
           p.suspended ? "already" : "not");
    p.suspended = c->suspend;
    snprintf(p.suspend_reason, sizeof p.suspend_reason, "%s", c->suspend ? c->reason : "");
    GUARD(party_put(t, ra, &p, 0));
    snprintf(note->action, sizeof note->action, c->suspend ? "party-suspend" : "party-resume");
    snprintf(note->object, sizeof note->object, "party %s", p.signifier);
    snprintf(note->detail, sizeof note->detail, "%s", c->reason ? c->reason : "");
    return 0;
}

int smki_ra_party_suspend(smki_ra *ra, const smki_ra_actor *by, const char *signifier, int suspend,
                          const char *reason)
{
    ENSURE(!suspend || (reason && *reason), SMKI_E_USAGE, "a suspension needs a reason (--reason TEXT)");
    ENSURE(!reason || strlen(reason) < SMKI_RA_REASON_MAX, SMKI_E_USAGE, "the reason is longer than %d characters",
           SMKI_RA_REASON_MAX - 1);
    party_change c = {signifier, -1, -1, suspend ? 1 : 0, reason};
    return smki_ra_act(ra, by, 0, party_suspend_fn, &c);
}

typedef struct {
    smki_ra *ra;
    const char *sig;
    smki_ra_party *out;
} party_get_run;

static int party_get_txn(smki_txn *t, void *arg)
{
    party_get_run *g = arg;
    return smki_ra_party_get_txn(t, g->ra, g->sig, g->out);
}

int smki_ra_party_get(smki_ra *ra, const char *signifier, smki_ra_party *out)
{
    party_get_run g = {ra, signifier, out};
    return smki_store_read(ra->store, party_get_txn, &g);
}

static int party_each_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    each_run *r = arg;
    smki_ra_party p;
    GUARD(party_decode(k, kl, v, vl, &p));
    return ((smki_ra_party_fn)r->fn)(&p, r->arg);
}

static int party_each_txn(smki_txn *t, void *arg)
{
    return each_txn_generic(t, arg, party_each_one);
}

int smki_ra_party_each(smki_ra *ra, smki_ra_party_fn fn, void *arg)
{
    each_run r = {ra, ra->db.parties, (void *)fn, arg, 0};
    return smki_store_read(ra->store, party_each_txn, &r);
}

/* ---- Ranges ------------------------------------------------------------------------------------ */

static int range_decode(const void *key, size_t klen, const void *val, size_t vlen, smki_ra_range *r)
{
    memset(r, 0, sizeof *r);
    smki_cursor_t c = smki_cursor(val, vlen);
    uint8_t v = 0, bits = 0, kind = 0;
    int rc = klen == 8 ? smki_cur_u8(&c, &v) : -1;
    if (rc == 0 && v != RANGE_VERSION) rc = -1;
    if (rc == 0) rc = smki_cur_u8(&c, &bits);
    if (rc == 0) rc = smki_cur_u8(&c, &kind);
    if (rc == 0) rc = smki_cur_u64be(&c, &r->next);
    if (rc == 0) rc = smki_r_str(&c, r->party, sizeof r->party);
    smki_eui64_t first;
    if (rc == 0) memcpy(first.b, key, 8);
    if (rc == 0) rc = smki_eui64_range_from_prefix(&first, bits, &r->range);
    if (rc < 0 || c.left || (kind != SMKI_RANGE_CENTRAL && kind != SMKI_RANGE_DEVICE)) {
        smki_error_clear();
        return SMKI_FAIL(SMKI_E_CORRUPT, "an EUI-64 range record is damaged");
    }
    r->kind = (smki_range_kind)kind;
    return 0;
}

static int range_put(smki_txn *t, smki_ra *ra, const smki_ra_range *r, unsigned flags)
{
    uint8_t rec[16 + SMKI_RA_NAME_MAX];
    smki_writer_t w;
    smki_writer_fixed(&w, rec, sizeof rec);
    smki_wr_u8(&w, RANGE_VERSION);
    smki_wr_u8(&w, (uint8_t)r->range.prefix_bits);
    smki_wr_u8(&w, (uint8_t)r->kind);
    smki_wr_be64(&w, r->next);
    smki_ra_w_str(&w, r->party);
    ENSURE(!w.err, SMKI_E_INTERNAL, "range record");
    return smki_txn_put(t, ra->db.ranges, r->range.first.b, 8, rec, w.len, flags);
}

typedef struct {
    const smki_eui64_t *id;
    const smki_eui64_range_t *overlap;
    smki_ra_range *out;
    int found;
} range_scan;

static int range_scan_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    range_scan *s = arg;
    smki_ra_range r;
    GUARD(range_decode(k, kl, v, vl, &r));
    if ((s->id && smki_eui64_range_contains(&r.range, s->id)) ||
        (s->overlap && smki_eui64_range_overlaps(&r.range, s->overlap))) {
        *s->out = r;
        s->found = 1;
        return 1;
    }
    return 0;
}

int smki_ra_range_find_txn(smki_txn *t, smki_ra *ra, const smki_eui64_t *id, smki_ra_range *out)
{
    range_scan s = {id, NULL, out, 0};
    GUARD(smki_txn_scan(t, ra->db.ranges, NULL, 0, range_scan_one, &s));
    if (!s.found) {
        char tx[SMKI_EUI64_TEXT_MAX];
        eui_text(id, tx);
        return SMKI_FAIL(SMKI_E_NOTFOUND, "%s is in no assigned EUI-64 block", tx);
    }
    return 0;
}

typedef struct {
    smki_ra_range r;
} range_assign;

static int range_assign_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    range_assign *a = arg;
    smki_ra_party p;
    GUARD(smki_ra_party_get_txn(t, ra, a->r.party, &p));
    smki_ra_range other;
    range_scan s = {NULL, &a->r.range, &other, 0};
    GUARD(smki_txn_scan(t, ra->db.ranges, NULL, 0, range_scan_one, &s));
    char mine[48], theirs[48];
    smki_eui64_range_format(&a->r.range, mine);
    if (s.found) {
        smki_eui64_range_format(&other.range, theirs);
        return SMKI_FAIL(SMKI_E_REFUSED, "block %s overlaps block %s, already assigned to %s", mine, theirs,
                         other.party);
    }
    GUARD(range_put(t, ra, &a->r, SMKI_PUT_NOOVERWRITE));
    snprintf(note->action, sizeof note->action, "range-assign");
    snprintf(note->object, sizeof note->object, "block %s", mine);
    snprintf(note->detail, sizeof note->detail, "%s block to party %s",
             a->r.kind == SMKI_RANGE_CENTRAL ? "central (User/DCC IDs)" : "device", a->r.party);
    return 0;
}

int smki_ra_range_assign(smki_ra *ra, const smki_ra_actor *by, const smki_eui64_range_t *r, smki_range_kind kind,
                         const char *party)
{
    ENSURE(kind == SMKI_RANGE_CENTRAL || kind == SMKI_RANGE_DEVICE, SMKI_E_USAGE, "a block is central or device");
    GUARD(smki_ra_check_name("a Party Signifier", party));
    range_assign a;
    memset(&a, 0, sizeof a);
    a.r.range = *r;
    a.r.kind = kind;
    snprintf(a.r.party, sizeof a.r.party, "%s", party);
    return smki_ra_act(ra, by, 0, range_assign_fn, &a);
}

static int range_each_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    each_run *r = arg;
    smki_ra_range x;
    GUARD(range_decode(k, kl, v, vl, &x));
    return ((smki_ra_range_fn)r->fn)(&x, r->arg);
}

static int range_each_txn(smki_txn *t, void *arg)
{
    return each_txn_generic(t, arg, range_each_one);
}

int smki_ra_range_each(smki_ra *ra, smki_ra_range_fn fn, void *arg)
{
    each_run r = {ra, ra->db.ranges, (void *)fn, arg, 0};
    return smki_store_read(ra->store, range_each_txn, &r);
}

typedef struct {
    smki_ra *ra;
    const smki_eui64_t *id;
    smki_ra_range *out;
} range_find_run;

static int range_find_txn(smki_txn *t, void *arg)
{
    range_find_run *f = arg;
    return smki_ra_range_find_txn(t, f->ra, f->id, f->out);
}

int smki_ra_range_find(smki_ra *ra, const smki_eui64_t *id, smki_ra_range *out)
{
    range_find_run f = {ra, id, out};
    return smki_store_read(ra->store, range_find_txn, &f);
}

/* ---- User IDs ----------------------------------------------------------------------------------- */

static int user_decode(const void *key, size_t klen, const void *val, size_t vlen, smki_ra_user_id *u)
{
    memset(u, 0, sizeof *u);
    smki_cursor_t c = smki_cursor(val, vlen);
    uint8_t v = 0, flags = 0, roles = 0;
    uint64_t at;
    int rc = klen == 8 ? smki_cur_u8(&c, &v) : -1;
    if (rc == 0 && v != USER_VERSION) rc = -1;
    if (rc == 0) rc = smki_cur_u8(&c, &flags);
    if (rc == 0) rc = smki_cur_u8(&c, &roles);
    if (rc == 0) rc = smki_cur_u64be(&c, &at);
    if (rc == 0) rc = smki_r_str(&c, u->party, sizeof u->party);
    if (rc == 0) rc = smki_r_str(&c, u->suspend_reason, sizeof u->suspend_reason);
    if (rc < 0 || c.left || (flags & ~3u) || (roles & ~SMKI_UROLE_ALL))
        return SMKI_FAIL(SMKI_E_CORRUPT, "a User ID record is damaged");
    memcpy(u->id.b, key, 8);
    u->is_dcc = flags & 1;
    u->suspended = (flags >> 1) & 1;
    u->roles = roles;
    u->allocated = (int64_t)at;
    return 0;
}

static int user_put(smki_txn *t, smki_ra *ra, const smki_ra_user_id *u, unsigned flags)
{
    uint8_t rec[16 + SMKI_RA_NAME_MAX + SMKI_RA_REASON_MAX];
    smki_writer_t w;
    smki_writer_fixed(&w, rec, sizeof rec);
    smki_wr_u8(&w, USER_VERSION);
    smki_wr_u8(&w, (uint8_t)((u->is_dcc ? 1 : 0) | (u->suspended ? 2 : 0)));
    smki_wr_u8(&w, (uint8_t)u->roles);
    smki_wr_be64(&w, (uint64_t)u->allocated);
    smki_ra_w_str(&w, u->party);
    smki_ra_w_str(&w, u->suspend_reason);
    ENSURE(!w.err, SMKI_E_INTERNAL, "user record");
    return smki_txn_put(t, ra->db.users, u->id.b, 8, rec, w.len, flags);
}

int smki_ra_id_get_txn(smki_txn *t, smki_ra *ra, const smki_eui64_t *id, smki_ra_user_id *out)
{
    const void *v;
    size_t n;
    int rc = smki_txn_get(t, ra->db.users, id->b, 8, &v, &n);
    if (rc == SMKI_E_NOTFOUND) {
        char tx[SMKI_EUI64_TEXT_MAX];
        eui_text(id, tx);
        return SMKI_FAIL(SMKI_E_NOTFOUND, "%s is not an allocated User ID ('smki ra id list')", tx);
    }
    GUARD(rc);
    return user_decode(id->b, 8, v, n, out);
}

typedef struct {
    const char *party;
    unsigned roles;
    const smki_eui64_t *want;
    smki_eui64_t got;
} id_alloc;

typedef struct {
    const char *party;
    smki_ra_range ranges[16];
    size_t n;
} party_ranges;

static int party_range_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    party_ranges *pr = arg;
    smki_ra_range r;
    GUARD(range_decode(k, kl, v, vl, &r));
    if (r.kind == SMKI_RANGE_CENTRAL && strcmp(r.party, pr->party) == 0 && pr->n < 16) pr->ranges[pr->n++] = r;
    return 0;
}

static int id_allocate_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    id_alloc *a = arg;
    smki_ra_party p;
    GUARD(smki_ra_party_get_txn(t, ra, a->party, &p));
    ENSURE(!p.suspended, SMKI_E_REFUSED, "party %s is suspended (%s): no ID is allocated to it", p.signifier,
           p.suspend_reason);
    party_ranges pr;
    memset(&pr, 0, sizeof pr);
    pr.party = a->party;
    GUARD(smki_txn_scan(t, ra->db.ranges, NULL, 0, party_range_one, &pr));
    ENSURE(pr.n > 0, SMKI_E_REFUSED,
           "party %s has no central EUI-64 block: assign one first ('smki ra range assign --kind central')", a->party);
    smki_ra_user_id u;
    memset(&u, 0, sizeof u);
    snprintf(u.party, sizeof u.party, "%s", a->party);
    u.roles = a->roles;
    u.is_dcc = p.is_dcc;
    u.allocated = smki_ra_now(ra);
    char tx[SMKI_EUI64_TEXT_MAX];
    if (a->want) {
        eui_text(a->want, tx);
        size_t i = 0;
        while (i < pr.n && !smki_eui64_range_contains(&pr.ranges[i].range, a->want)) i++;
        if (i == pr.n) {
            smki_ra_range other;
            int rc = smki_ra_range_find_txn(t, ra, a->want, &other);
            if (rc == 0)
                return SMKI_FAIL(SMKI_E_REFUSED, "%s is outside party %s's central blocks: it is in a %s block of %s",
                                 tx, a->party, other.kind == SMKI_RANGE_CENTRAL ? "central" : "device", other.party);
            smki_error_clear();
            return SMKI_FAIL(SMKI_E_REFUSED, "%s is outside party %s's central blocks", tx, a->party);
        }
        u.id = *a->want;
        int rc = user_put(t, ra, &u, SMKI_PUT_NOOVERWRITE);
        if (rc == SMKI_E_EXISTS)
            return SMKI_FAIL(SMKI_E_EXISTS, "%s is already allocated: an ID is never allocated twice", tx);
        GUARD(rc);
    } else {
        int done = 0;
        for (size_t i = 0; i < pr.n && !done; i++) {
            smki_ra_range *r = &pr.ranges[i];
            uint64_t size = smki_eui64_range_size(&r->range);
            /* Bounded: skip IDs allocated by hand, at most a million probes a call. */
            for (uint64_t probes = 0; r->next < size && probes < 1000000; probes++, r->next++) {
                GUARD(smki_eui64_range_nth(&r->range, r->next, &u.id));
                const void *v;
                size_t n;
                int rc = smki_txn_get(t, ra->db.users, u.id.b, 8, &v, &n);
                if (rc == SMKI_E_NOTFOUND) {
                    smki_error_clear();
                    GUARD(user_put(t, ra, &u, SMKI_PUT_NOOVERWRITE));
                    r->next++;
                    GUARD(range_put(t, ra, r, 0));
                    done = 1;
                    break;
                }
                GUARD(rc);
            }
        }
        ENSURE(done, SMKI_E_REFUSED, "party %s's central blocks have no free ID left: assign another block", a->party);
        eui_text(&u.id, tx);
    }
    a->got = u.id;
    char roles[40];
    smki_user_roles_format(u.roles, roles, sizeof roles);
    snprintf(note->action, sizeof note->action, "id-allocate");
    snprintf(note->object, sizeof note->object, "%s ID %s", p.is_dcc ? "DCC" : "User", tx);
    snprintf(note->detail, sizeof note->detail, "to party %s, User Roles %s", a->party, roles);
    return 0;
}

int smki_ra_id_allocate(smki_ra *ra, const smki_ra_actor *by, const char *party, unsigned roles,
                        const smki_eui64_t *want, smki_eui64_t *out)
{
    GUARD(smki_ra_check_name("a Party Signifier", party));
    ENSURE(roles && !(roles & ~SMKI_UROLE_ALL), SMKI_E_USAGE,
           "a User ID needs at least one User Role (EIS, EES, GIS, ENO, GNO, OU)");
    id_alloc a = {party, roles, want, {{0}}};
    GUARD(smki_ra_act(ra, by, 0, id_allocate_fn, &a));
    if (out) *out = a.got;
    return 0;
}

typedef struct {
    const smki_eui64_t *id;
    int suspend;
    const char *reason;
} id_change;

static int id_suspend_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    id_change *c = arg;
    smki_ra_user_id u;
    GUARD(smki_ra_id_get_txn(t, ra, c->id, &u));
    char tx[SMKI_EUI64_TEXT_MAX];
    eui_text(c->id, tx);
    ENSURE(u.suspended != c->suspend, SMKI_E_REFUSED, "User ID %s is %s suspended", tx,
           u.suspended ? "already" : "not");
    u.suspended = c->suspend;
    snprintf(u.suspend_reason, sizeof u.suspend_reason, "%s", c->suspend ? c->reason : "");
    GUARD(user_put(t, ra, &u, 0));
    snprintf(note->action, sizeof note->action, c->suspend ? "id-suspend" : "id-resume");
    snprintf(note->object, sizeof note->object, "User ID %s", tx);
    snprintf(note->detail, sizeof note->detail, "%s", c->reason ? c->reason : "");
    return 0;
}

int smki_ra_id_suspend(smki_ra *ra, const smki_ra_actor *by, const smki_eui64_t *id, int suspend, const char *reason)
{
    ENSURE(!suspend || (reason && *reason), SMKI_E_USAGE, "a suspension needs a reason (--reason TEXT)");
    ENSURE(!reason || strlen(reason) < SMKI_RA_REASON_MAX, SMKI_E_USAGE, "the reason is longer than %d characters",
           SMKI_RA_REASON_MAX - 1);
    id_change c = {id, suspend ? 1 : 0, reason};
    return smki_ra_act(ra, by, 0, id_suspend_fn, &c);
}

typedef struct {
    const smki_eui64_t *id;
    unsigned roles;
} id_roles_change;

static int id_roles_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    id_roles_change *c = arg;
    smki_ra_user_id u;
    GUARD(smki_ra_id_get_txn(t, ra, c->id, &u));
    char tx[SMKI_EUI64_TEXT_MAX], was[40], now[40];
    eui_text(c->id, tx);
    smki_user_roles_format(u.roles, was, sizeof was);
    smki_user_roles_format(c->roles, now, sizeof now);
    ENSURE(u.roles != c->roles, SMKI_E_REFUSED, "User ID %s has the User Roles %s already", tx, now);
    u.roles = c->roles;
    GUARD(user_put(t, ra, &u, 0));
    snprintf(note->action, sizeof note->action, "id-set-roles");
    snprintf(note->object, sizeof note->object, "User ID %s", tx);
    snprintf(note->detail, sizeof note->detail, "User Roles %s (were %s)", now, was);
    return 0;
}

int smki_ra_id_set_roles(smki_ra *ra, const smki_ra_actor *by, const smki_eui64_t *id, unsigned roles)
{
    ENSURE(roles && !(roles & ~SMKI_UROLE_ALL), SMKI_E_USAGE,
           "a User ID holds at least one User Role (EIS, EES, GIS, ENO, GNO, OU)");
    id_roles_change c = {id, roles};
    return smki_ra_act(ra, by, 0, id_roles_fn, &c);
}

typedef struct {
    smki_ra *ra;
    const smki_eui64_t *id;
    smki_ra_user_id *out;
} id_get_run;

static int id_get_txn(smki_txn *t, void *arg)
{
    id_get_run *g = arg;
    return smki_ra_id_get_txn(t, g->ra, g->id, g->out);
}

int smki_ra_id_get(smki_ra *ra, const smki_eui64_t *id, smki_ra_user_id *out)
{
    id_get_run g = {ra, id, out};
    return smki_store_read(ra->store, id_get_txn, &g);
}

static int id_each_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    each_run *r = arg;
    smki_ra_user_id u;
    GUARD(user_decode(k, kl, v, vl, &u));
    return ((smki_ra_id_fn)r->fn)(&u, r->arg);
}

static int id_each_txn(smki_txn *t, void *arg)
{
    return each_txn_generic(t, arg, id_each_one);
}

int smki_ra_id_each(smki_ra *ra, smki_ra_id_fn fn, void *arg)
{
    each_run r = {ra, ra->db.users, (void *)fn, arg, 0};
    return smki_store_read(ra->store, id_each_txn, &r);
}

/* The gateway's check: a sender whose ID or Party is suspended is refused. */
static int check_sender_txn(smki_txn *t, void *arg)
{
    id_get_run *g = arg;
    smki_ra_user_id u;
    GUARD(smki_ra_id_get_txn(t, g->ra, g->id, &u));
    char tx[SMKI_EUI64_TEXT_MAX];
    eui_text(g->id, tx);
    ENSURE(!u.suspended, SMKI_E_REFUSED, "User ID %s is suspended: %s", tx, u.suspend_reason);
    smki_ra_party p;
    GUARD(smki_ra_party_get_txn(t, g->ra, u.party, &p));
    ENSURE(!p.suspended, SMKI_E_REFUSED, "User ID %s belongs to party %s, which is suspended: %s", tx, p.signifier,
           p.suspend_reason);
    return 0;
}

int smki_ra_check_sender(smki_ra *ra, const smki_eui64_t *id)
{
    id_get_run g = {ra, id, NULL};
    return smki_store_read(ra->store, check_sender_txn, &g);
}

/* ---- Authorised Subscribers ------------------------------------------------------------------- */

static int sub_key(const smki_ra_subscriber *s, uint8_t *out, size_t *len)
{
    size_t pl = strlen(s->party), el = strnlen(s->env, sizeof s->env);
    ENSURE(pl && pl < SMKI_RA_NAME_MAX && el && el < sizeof s->env, SMKI_E_USAGE,
           "an Authorised Subscriber needs a party and an environment");
    memcpy(out, s->party, pl);
    out[pl] = 0;
    out[pl + 1] = (uint8_t)s->type;
    out[pl + 2] = s->role >= 0 ? (uint8_t)s->role : 0xFF;
    memcpy(out + pl + 3, s->env, el);
    *len = pl + 3 + el;
    return 0;
}

static int sub_decode(const void *key, size_t klen, smki_ra_subscriber *s)
{
    memset(s, 0, sizeof *s);
    const uint8_t *k = key;
    const uint8_t *z = memchr(k, 0, klen);
    size_t pl = z ? (size_t)(z - k) : klen;
    size_t el = z ? klen - pl - 3 : 0;
    if (!z || pl == 0 || pl >= SMKI_RA_NAME_MAX || klen < pl + 4 || el >= sizeof s->env ||
        (k[pl + 1] != SMKI_PROFILE_ORGANISATION && k[pl + 1] != SMKI_PROFILE_DEVICE &&
         k[pl + 1] != SMKI_PROFILE_DCCKI_SERVER && k[pl + 1] != SMKI_PROFILE_DCCKI_CLIENT))
        return SMKI_FAIL(SMKI_E_CORRUPT, "an Authorised Subscriber record is damaged");
    memcpy(s->party, k, pl);
    s->type = (smki_profile_id)k[pl + 1];
    s->role = k[pl + 2] == 0xFF ? -1 : k[pl + 2];
    memcpy(s->env, k + pl + 3, el);
    return 0;
}

static void sub_text(const smki_ra_subscriber *s, char *out, size_t cap)
{
    char role[SMKI_ROLE_TEXT_MAX] = "";
    if (s->role >= 0) smki_role_format((uint8_t)s->role, role);
    snprintf(out, cap, "%s certificates%s%s%s%s in %s",
             s->type == SMKI_PROFILE_DEVICE         ? "device"
             : s->type == SMKI_PROFILE_DCCKI_SERVER ? "DCCKI TLS server"
             : s->type == SMKI_PROFILE_DCCKI_CLIENT ? "DCCKI TLS client"
                                                    : "organisation",
             s->role >= 0 ? " of role " : "", role, s->role >= 0 ? " " : "",
             s->role >= 0 ? smki_role_name((unsigned)s->role) : "", s->env);
}

typedef struct {
    const smki_ra_subscriber *s;
    int add;
} sub_change;

static int sub_change_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    sub_change *c = arg;
    smki_ra_party p;
    GUARD(smki_ra_party_get_txn(t, ra, c->s->party, &p));
    uint8_t key[SMKI_RA_NAME_MAX + 3 + SMKI_ENV_NAME_MAX];
    size_t kl;
    GUARD(sub_key(c->s, key, &kl));
    char what[160];
    sub_text(c->s, what, sizeof what);
    if (c->add) {
        uint8_t one = 1;
        int rc = smki_txn_put(t, ra->db.subscribers, key, kl, &one, 1, SMKI_PUT_NOOVERWRITE);
        if (rc == SMKI_E_EXISTS)
            return SMKI_FAIL(SMKI_E_EXISTS, "party %s is already an Authorised Subscriber for %s", p.signifier, what);
        GUARD(rc);
    } else {
        int rc = smki_txn_del(t, ra->db.subscribers, key, kl);
        if (rc == SMKI_E_NOTFOUND)
            return SMKI_FAIL(SMKI_E_NOTFOUND, "party %s is not an Authorised Subscriber for %s", p.signifier, what);
        GUARD(rc);
    }
    snprintf(note->action, sizeof note->action, c->add ? "subscriber-authorise" : "subscriber-revoke");
    snprintf(note->object, sizeof note->object, "party %s", p.signifier);
    snprintf(note->detail, sizeof note->detail, "%s", what);
    return 0;
}

static int sub_check(const smki_ra_subscriber *s)
{
    GUARD(smki_ra_check_name("a Party Signifier", s->party));
    ENSURE(s->type == SMKI_PROFILE_ORGANISATION || s->type == SMKI_PROFILE_DEVICE ||
               s->type == SMKI_PROFILE_DCCKI_SERVER || s->type == SMKI_PROFILE_DCCKI_CLIENT,
           SMKI_E_USAGE, "an Authorised Subscriber is for organisation, device, dccki-server or dccki-client certificates");
    ENSURE(s->type != SMKI_PROFILE_ORGANISATION ? s->role < 0 : smki_role_by_code((unsigned)s->role) != NULL,
           SMKI_E_USAGE, "an organisation subscription names a Remote Party Role (--role); the others do not");
    smki_env e;
    return smki_env_load(s->env, NULL, &e) == 0 ? 0 : (smki_error_clear(), 0); /* custom environments allowed */
}

int smki_ra_subscriber_authorise(smki_ra *ra, const smki_ra_actor *by, const smki_ra_subscriber *s)
{
    GUARD(sub_check(s));
    sub_change c = {s, 1};
    return smki_ra_act(ra, by, 0, sub_change_fn, &c);
}

int smki_ra_subscriber_revoke(smki_ra *ra, const smki_ra_actor *by, const smki_ra_subscriber *s)
{
    GUARD(sub_check(s));
    sub_change c = {s, 0};
    return smki_ra_act(ra, by, 0, sub_change_fn, &c);
}

static int sub_each_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    (void)v, (void)vl;
    each_run *r = arg;
    smki_ra_subscriber s;
    GUARD(sub_decode(k, kl, &s));
    return ((smki_ra_subscriber_fn)r->fn)(&s, r->arg);
}

static int sub_each_txn(smki_txn *t, void *arg)
{
    return each_txn_generic(t, arg, sub_each_one);
}

int smki_ra_subscriber_each(smki_ra *ra, smki_ra_subscriber_fn fn, void *arg)
{
    each_run r = {ra, ra->db.subscribers, (void *)fn, arg, 0};
    return smki_store_read(ra->store, sub_each_txn, &r);
}

/* ---- Eligibility ----------------------------------------------------------------------------- */

int smki_ra_standing_txn(smki_txn *t, smki_ra *ra, const smki_ra_eligibility *e, smki_ra_party *out)
{
    ENSURE(e->party && e->env, SMKI_E_USAGE, "eligibility needs a party and an environment");
    ENSURE(e->type == SMKI_PROFILE_ORGANISATION || e->type == SMKI_PROFILE_DEVICE ||
               e->type == SMKI_PROFILE_DCCKI_SERVER || e->type == SMKI_PROFILE_DCCKI_CLIENT,
           SMKI_E_USAGE, "the RA registers organisation, device and DCCKI TLS certificates");
    smki_ra_party p;
    GUARD(smki_ra_party_get_txn(t, ra, e->party, &p));
    ENSURE(!p.suspended, SMKI_E_REFUSED, "party %s is suspended (%s): it may request nothing", p.signifier,
           p.suspend_reason);
    if (strcmp(e->env, "test") == 0) {
        ENSURE(p.is_testing_participant, SMKI_E_REFUSED,
               "party %s is not a Testing Participant: test certificates go only to Testing Participants ('smki ra "
               "party set %s --testing-participant yes')",
               p.signifier, p.signifier);
        ENSURE(p.agreement_signed, SMKI_E_REFUSED,
               "party %s is a Testing Participant without its signed agreement on file: no test certificate until it "
               "is ('smki ra party set %s --agreement-signed yes')",
               p.signifier, p.signifier);
    }
    smki_ra_subscriber s;
    memset(&s, 0, sizeof s);
    snprintf(s.party, sizeof s.party, "%s", e->party);
    snprintf(s.env, sizeof s.env, "%s", e->env);
    s.type = e->type;
    s.role = e->type == SMKI_PROFILE_ORGANISATION ? e->role : -1;
    uint8_t key[SMKI_RA_NAME_MAX + 3 + SMKI_ENV_NAME_MAX];
    size_t kl;
    GUARD(sub_key(&s, key, &kl));
    const void *v;
    size_t n;
    int rc = smki_txn_get(t, ra->db.subscribers, key, kl, &v, &n);
    if (rc == SMKI_E_NOTFOUND) {
        char what[160];
        sub_text(&s, what, sizeof what);
        return SMKI_FAIL(SMKI_E_REFUSED, "party %s is not an Authorised Subscriber for %s ('smki ra subscriber "
                                         "authorise')", p.signifier, what);
    }
    GUARD(rc);
    *out = p;
    return 0;
}

/* A device certificate's Device ID: the CSR's hardwareModuleName (the CSR checked as a
 * device request), else e->eui. */
static int device_id_of(const smki_ra_eligibility *e, const smki_eui64_t **id)
{
    *id = e->eui;
    if (e->csr) {
        GUARD(smki_csr_check_request(e->csr, 1, e->eui, 0));
        *id = &e->csr->hw_serial;
    }
    ENSURE(*id, SMKI_E_USAGE, "a device certificate needs the Device ID (the CSR's hardwareModuleName)");
    return 0;
}

/* The device rules of the block r that holds id (NULL: in none) for Party p. */
static int device_block_ok(const smki_ra_party *p, const smki_ra_eligibility *e, const smki_eui64_t *id,
                           const smki_ra_range *r)
{
    char tx[SMKI_EUI64_TEXT_MAX];
    eui_text(id, tx);
    if (r) {
        ENSURE(r->kind != SMKI_RANGE_CENTRAL, SMKI_E_REFUSED,
               "%s is a centrally allocated ID (a central block of %s): never a Device ID", tx, r->party);
        /* A Party asking for itself certifies only the devices of its own blocks. */
        ENSURE(!e->subscriber_asks || strcmp(r->party, p->signifier) == 0, SMKI_E_REFUSED,
               "Device ID %s is in a device block of party %s, not of %s: a Party enrolling for itself gets "
               "certificates only for Device IDs of its own blocks",
               tx, r->party, p->signifier);
        return 0;
    }
    ENSURE(!e->subscriber_asks, SMKI_E_REFUSED,
           "Device ID %s is in no device block of party %s: a Party enrolling for itself gets certificates only for "
           "Device IDs of its own blocks (an RA operator assigns one: 'smki ra range assign')",
           tx, p->signifier);
    return 0;
}

static int blocks_add(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    smki_ra_blocks *b = arg;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        smki_ra_range *grown = cap <= SIZE_MAX / sizeof *grown ? realloc(b->r, cap * sizeof *grown) : NULL;
        ENSURE(grown, SMKI_E_NOMEM, "out of memory reading the EUI-64 blocks");
        b->r = grown;
        b->cap = cap;
    }
    GUARD(range_decode(k, kl, v, vl, &b->r[b->n]));
    b->n++;
    return 0;
}

int smki_ra_eligible_txn(smki_txn *t, smki_ra *ra, const smki_ra_eligibility *e)
{
    smki_ra_party p;
    GUARD(smki_ra_standing_txn(t, ra, e, &p));
    char tx[SMKI_EUI64_TEXT_MAX];
    if (e->type == SMKI_PROFILE_ORGANISATION) {
        ENSURE(e->eui, SMKI_E_USAGE, "an organisation certificate needs the organisation's EUI-64 (--eui)");
        eui_text(e->eui, tx);
        smki_ra_user_id u;
        GUARD(smki_ra_id_get_txn(t, ra, e->eui, &u));
        ENSURE(strcmp(u.party, p.signifier) == 0, SMKI_E_REFUSED, "%s belongs to party %s, not to %s", tx, u.party,
               p.signifier);
        ENSURE(!u.suspended, SMKI_E_REFUSED, "User ID %s is suspended: %s", tx, u.suspend_reason);
        char roles[40], rt[SMKI_ROLE_TEXT_MAX];
        smki_user_roles_format(u.roles, roles, sizeof roles);
        smki_role_format((uint8_t)e->role, rt);
        ENSURE(smki_ra_role_allowed(u.roles, u.is_dcc, e->role), SMKI_E_REFUSED,
               "role %s (%s) is not bound to %s: its User Roles are %s%s", rt, smki_role_name((unsigned)e->role), tx,
               roles, u.is_dcc ? " (a DCC ID)" : "");
        if (e->csr) GUARD(smki_csr_check_request(e->csr, 0, NULL, 0));
    } else if (e->type == SMKI_PROFILE_DCCKI_SERVER || e->type == SMKI_PROFILE_DCCKI_CLIENT) {
        /* The Party's standing is the RA's; the TLS request (the CSR's Party Signifier
         * agreeing with this Party, its names) is the CA's (smki_ca_tls_check). */
        if (e->csr) GUARD(smki_csr_check_request(e->csr, 0, NULL, SMKI_USAGE_DS));
    } else {
        const smki_eui64_t *id;
        GUARD(device_id_of(e, &id));
        smki_ra_range r;
        int rc = smki_ra_range_find_txn(t, ra, id, &r);
        if (rc == SMKI_E_NOTFOUND) smki_error_clear();
        else if (rc < 0) return rc;
        return device_block_ok(&p, e, id, rc == 0 ? &r : NULL);
    }
    return 0;
}

int smki_ra_blocks_load_txn(smki_txn *t, smki_ra *ra, smki_ra_blocks *out)
{
    smki_ra_blocks_free(out);
    int rc = smki_txn_scan(t, ra->db.ranges, NULL, 0, blocks_add, out);
    if (rc < 0) smki_ra_blocks_free(out);
    return rc;
}

void smki_ra_blocks_free(smki_ra_blocks *b)
{
    free(b->r);
    *b = (smki_ra_blocks){0};
}

int smki_ra_device_eligible(const smki_ra_party *p, const smki_ra_blocks *b, const smki_ra_eligibility *e)
{
    ENSURE(e->type == SMKI_PROFILE_DEVICE && strcmp(e->party, p->signifier) == 0, SMKI_E_USAGE,
           "smki_ra_device_eligible: a device certificate of the Party whose standing was read");
    const smki_eui64_t *id;
    GUARD(device_id_of(e, &id));
    /* The blocks do not overlap: the first that holds the ID, as smki_ra_range_find_txn. */
    for (size_t i = 0; i < b->n; i++)
        if (smki_eui64_range_contains(&b->r[i].range, id)) return device_block_ok(p, e, id, &b->r[i]);
    return device_block_ok(p, e, id, NULL);
}

typedef struct {
    smki_ra *ra;
    const smki_ra_eligibility *e;
} elig_run;

static int eligible_txn(smki_txn *t, void *arg)
{
    elig_run *r = arg;
    return smki_ra_eligible_txn(t, r->ra, r->e);
}

int smki_ra_check_eligible(smki_ra *ra, const smki_ra_eligibility *e)
{
    elig_run r = {ra, e};
    return smki_store_read(ra->store, eligible_txn, &r);
}

/* ---- Expiry ----------------------------------------------------------------------------------- */

typedef struct {
    smki_ra *ra;
    int64_t until, now;
    smki_ra_expiring_fn fn;
    void *arg;
    smki_ra_expiring *items;
    size_t n, cap;
} expiry_run;

static int expiry_collect(const smki_cert *c, void *arg)
{
    expiry_run *r = arg;
    if (c->not_after < 0 || c->not_after > r->until) return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        smki_ra_expiring *n = realloc(r->items, cap * sizeof *n);
        ENSURE(n, SMKI_E_NOMEM, "out of memory");
        r->items = n;
        r->cap = cap;
    }
    memset(&r->items[r->n], 0, sizeof r->items[0]);
    r->items[r->n].cert = *c;
    r->n++;
    return 0;
}

static int expiry_party_txn(smki_txn *t, void *arg)
{
    expiry_run *r = arg;
    for (size_t i = 0; i < r->n; i++) {
        smki_ra_user_id u;
        if (r->items[i].cert.has_eui && smki_ra_id_get_txn(t, r->ra, &r->items[i].cert.eui, &u) == 0)
            snprintf(r->items[i].party, sizeof r->items[i].party, "%s", u.party);
        else
            smki_error_clear();
    }
    return 0;
}

int smki_ra_expiring_each(smki_ra *ra, const char *env, unsigned days, smki_ra_expiring_fn fn, void *arg)
{
    expiry_run r = {ra, 0, smki_ra_now(ra), fn, arg, NULL, 0, 0};
    r.until = r.now + (int64_t)days * 86400;
    smki_ca_query q = SMKI_CA_QUERY_ALL;
    q.env = env;
    q.profile = SMKI_PROFILE_ORGANISATION;
    q.status = SMKI_STATUS_IN_USE;
    int rc = smki_ca_find(&ra->ca, &q, expiry_collect, &r);
    if (rc == 0) rc = smki_store_read(ra->store, expiry_party_txn, &r);
    for (size_t i = 0; rc == 0 && i < r.n; i++) {
        rc = fn(&r.items[i], arg);
        if (rc == 1) rc = 0, i = r.n;
    }
    free(r.items);
    return rc < 0 ? rc : 0;
}
