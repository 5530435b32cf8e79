/* The CA's own actions in an RA-governed store: the ceremony and the publication of a
 * CRL or ARL, each with its audit entry in the CA's own write transaction (through the
 * CA's on_store hooks: ca/ knows nothing of the RA). An action whose entry cannot be
 * written (an operator who is not registered, a checkpoint due without its key, a
 * signing failure) records nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ra_private.h"

/* The actor and the audit trail checked before anything is made (keys generated, lists
 * signed): a refusal then leaves the token untouched. The transaction checks again. */
typedef struct {
    smki_ra *ra;
    const smki_ra_actor *by;
} actor_run;

static int actor_txn(smki_txn *t, void *arg)
{
    actor_run *a = arg;
    GUARD(smki_ra_check_actor(t, a->ra, a->by));
    return smki_ra_audit_ready(t, a->ra);
}

static int check_actor_now(smki_ra *ra, const smki_ra_actor *by)
{
    ENSURE(by && by->name && by->key, SMKI_E_USAGE,
           "no operator: in a store with an RA every CA action is taken by a registered operator with their own key "
           "(--operator NAME --operator-key KEY)");
    actor_run a = {ra, by};
    return smki_store_read(ra->store, actor_txn, &a);
}

static void sha256_hex(const uint8_t *p, size_t n, size_t digits, char *out)
{
    uint8_t h[32];
    unsigned hl = sizeof h;
    EVP_Digest(p, n, h, &hl, EVP_sha256(), NULL);
    char full[65];
    smki_hex_encode(h, 32, full, 0);
    if (digits > 64) digits = 64;
    memcpy(out, full, digits); /* the first digits only: a short fingerprint */
    out[digits] = '\0';
}

/* ---- The ceremony ---------------------------------------------------------------------------- */

typedef struct {
    smki_ra *ra;
    const smki_ra_actor *by;
    const char *env;
    const smki_ca_record *const *made;
    size_t n;
} init_run;

static int init_note_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    init_run *x = arg;
    snprintf(note->action, sizeof note->action, "ca-init");
    snprintf(note->object, sizeof note->object, "environment %s", x->env);
    /* Each CA made: its kind, serial and (the first 128 bits of) its certificate's SHA-256. */
    size_t at = 0;
    for (size_t i = 0; i < x->n; i++) {
        const smki_ca_record *r = x->made[i];
        char serial[2 * SMKI_SERIAL_LEN + 1], h[33];
        smki_hex_encode(r->cert.serial, SMKI_SERIAL_LEN, serial, 0);
        sha256_hex(r->cert.der, r->cert.der_len, 32, h);
        int w = snprintf(note->detail + at, sizeof note->detail - at, "%s%s serial %s sha256 %s", i ? "; " : "",
                         smki_ca_kind_name(r->kind), serial, h);
        ENSURE(w > 0 && (size_t)w < sizeof note->detail - at, SMKI_E_INTERNAL, "the ceremony's audit detail is too long");
        at += (size_t)w;
        GUARD(smki_ra_ca_mark_bound(t, ra, &r->cert)); /* in the trail: 'smki ra adopt-ca' skips it */
    }
    return 0;
}

static int init_hook(smki_txn *t, const smki_ca_record *const *made, size_t n, void *arg)
{
    init_run *x = arg;
    x->made = made;
    x->n = n;
    return smki_ra_act_in(t, x->ra, x->by, init_note_fn, x);
}

int smki_ra_ca_init(smki_ra *ra, const smki_ra_actor *by, const char *env, const smki_conf *conf,
                    const smki_ca_init_opts *o, smki_ca_init_report *rep)
{
    ENSURE(ra && env && o && rep, SMKI_E_INTERNAL, "smki_ra_ca_init: missing argument");
    ENSURE(!o->on_store, SMKI_E_INTERNAL, "smki_ra_ca_init: the options already carry a hook");
    memset(rep, 0, sizeof *rep);
    size_t operators = 0;
    GUARD(smki_ra_operator_count(ra, &operators));
    /* The bootstrap ceremony: before the first operator there is no trail to write to
     * ('smki ra adopt-ca' binds its CAs to it later). */
    if (operators == 0) return smki_ca_init(&ra->ca_view, env, conf, o, rep);
    GUARD(check_actor_now(ra, by));
    init_run x = {ra, by, env, NULL, 0};
    smki_ca_init_opts io = *o;
    io.on_store = init_hook;
    io.hook_arg = &x;
    GUARD(smki_ca_init(&ra->ca, env, conf, &io, rep));
    return smki_ra_anchor(ra);
}

/* ---- CRLs and ARLs ------------------------------------------------------------------------------ */

typedef ra_crl_run crl_run;

static int crl_note_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    (void)t, (void)ra;
    crl_run *c = arg;
    const char *list = smki_ca_kind_is_root(c->crl->ca) ? "arl" : "crl";
    char hx[65];
    sha256_hex(c->crl->der, c->crl->der_len, 64, hx);
    snprintf(note->action, sizeof note->action, "%s-publish", list);
    snprintf(note->object, sizeof note->object, "%s of %s/%s%s number %llu", list, c->crl->env,
             smki_ca_kind_name(c->crl->ca), c->which, (unsigned long long)c->crl->number);
    snprintf(note->detail, sizeof note->detail, "%zu entries; SHA-256 %s", c->crl->entries, hx);
    return 0;
}

int smki_ra_crl_hook(smki_txn *t, const smki_crl *crl, void *arg)
{
    crl_run *c = arg;
    c->crl = crl;
    return smki_ra_act_in(t, c->ra, c->by, crl_note_fn, c);
}

int smki_ra_crl_publish(smki_ra *ra, const smki_ra_actor *by, const char *env, smki_ca_kind k,
                        const smki_crl_opts *o, smki_crl *out)
{
    ENSURE(ra && env && o && out, SMKI_E_INTERNAL, "smki_ra_crl_publish: missing argument");
    ENSURE(!o->on_store, SMKI_E_INTERNAL, "smki_ra_crl_publish: the options already carry a hook");
    memset(out, 0, sizeof *out);
    GUARD(check_actor_now(ra, by));
    crl_run c = {ra, by, NULL, ""};
    smki_crl_opts co = *o;
    co.on_store = smki_ra_crl_hook;
    co.hook_arg = &c;
    GUARD(smki_ca_crl_publish(&ra->ca, env, k, &co, out));
    return smki_ra_anchor(ra);
}

int smki_ra_crl_publish_ski(smki_ra *ra, const smki_ra_actor *by, const char *env, const uint8_t ski[SMKI_KEYID_LEN],
                            const smki_crl_opts *o, smki_crl *out)
{
    ENSURE(ra && env && ski && o && out, SMKI_E_INTERNAL, "smki_ra_crl_publish_ski: missing argument");
    ENSURE(!o->on_store, SMKI_E_INTERNAL, "smki_ra_crl_publish_ski: the options already carry a hook");
    memset(out, 0, sizeof *out);
    GUARD(check_actor_now(ra, by));
    smki_ca_record *rec = malloc(sizeof *rec);
    ENSURE(rec, SMKI_E_NOMEM, "out of memory");
    int current = 1;
    int rc = smki_ca_get_by_ski(&ra->ca, env, ski, rec, &current);
    crl_run c = {ra, by, NULL, ""};
    if (rc == 0 && !current) {
        char hx[2 * SMKI_SERIAL_LEN + 1];
        smki_hex_encode(rec->cert.serial, SMKI_SERIAL_LEN, hx, 0);
        snprintf(c.which, sizeof c.which, " (superseded CA serial %.32s)", hx);
    }
    free(rec);
    GUARD(rc);
    smki_crl_opts co = *o;
    co.on_store = smki_ra_crl_hook;
    co.hook_arg = &c;
    GUARD(smki_ca_crl_publish_ski(&ra->ca, env, ski, &co, out));
    return smki_ra_anchor(ra);
}

/* ---- The bootstrap ceremony bound to the trail -------------------------------------------------- */

/* ra meta: "ca-bound/" + the certificate's issuer SKI and serial: a CA certificate whose
 * fingerprint is in the trail (a ca-adopt entry, or the ca-init entry that made it). */
#define BOUND_PFX "ca-bound/"
#define BOUND_KEY_LEN (sizeof BOUND_PFX - 1 + SMKI_KEYID_LEN + SMKI_SERIAL_LEN)

static void bound_key(const smki_cert *c, uint8_t key[BOUND_KEY_LEN])
{
    memcpy(key, BOUND_PFX, sizeof BOUND_PFX - 1);
    memcpy(key + sizeof BOUND_PFX - 1, c->issuer_ski, SMKI_KEYID_LEN);
    memcpy(key + sizeof BOUND_PFX - 1 + SMKI_KEYID_LEN, c->serial, SMKI_SERIAL_LEN);
}

int smki_ra_ca_mark_bound(smki_txn *t, smki_ra *ra, const smki_cert *c)
{
    uint8_t key[BOUND_KEY_LEN], one = 1;
    bound_key(c, key);
    return smki_txn_put(t, ra->db.meta, key, sizeof key, &one, 1, 0);
}

typedef struct {
    smki_cert *items;
    size_t n, cap;
} ca_list;

static int ca_collect(const smki_cert *c, void *arg)
{
    ca_list *l = arg;
    if (!smki_profile_get(c->profile)->is_ca) return 0;
    return smki_ra_cert_push(&l->items, &l->n, &l->cap, 8, c);
}

typedef struct {
    smki_ra *ra;
    const smki_ra_actor *by;
    ca_list *cas;
    const smki_cert *cur;
    size_t adopted;
} adopt_run;

static int adopt_note_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    adopt_run *a = arg;
    const smki_cert *c = a->cur;
    GUARD(smki_ra_ca_mark_bound(t, ra, c));
    char ski[2 * SMKI_KEYID_LEN + 1], serial[2 * SMKI_SERIAL_LEN + 1], h[65], subject[256] = "?";
    smki_hex_encode(c->ski, SMKI_KEYID_LEN, ski, 0);
    smki_hex_encode(c->serial, SMKI_SERIAL_LEN, serial, 0);
    sha256_hex(c->der, c->der_len, 64, h);
    const unsigned char *p = c->der;
    X509 *x = d2i_X509(NULL, &p, (long)c->der_len);
    if (x) X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
    X509_free(x);
    snprintf(note->action, sizeof note->action, "ca-adopt");
    snprintf(note->object, sizeof note->object, "%s certificate of %s, SKI %s", smki_profile_get(c->profile)->name,
             c->env, ski);
    snprintf(note->detail, sizeof note->detail,
             "made before the trail (bootstrap ceremony): subject %s; serial %s; SHA-256 %s", subject, serial, h);
    return 0;
}

static int adopt_txn(smki_txn *t, void *arg)
{
    adopt_run *a = arg;
    GUARD(smki_ra_check_actor(t, a->ra, a->by));
    for (size_t i = 0; i < a->cas->n; i++) {
        uint8_t key[BOUND_KEY_LEN];
        bound_key(&a->cas->items[i], key);
        const void *v;
        size_t n;
        int rc = smki_txn_get(t, a->ra->db.meta, key, sizeof key, &v, &n);
        if (rc == 0) continue; /* already in the trail */
        if (rc != SMKI_E_NOTFOUND) return rc;
        smki_error_clear();
        a->cur = &a->cas->items[i];
        GUARD(smki_ra_act_in(t, a->ra, a->by, adopt_note_fn, a));
        a->adopted++;
    }
    return 0;
}

int smki_ra_ca_adopt(smki_ra *ra, const smki_ra_actor *by, size_t *adopted)
{
    ENSURE(ra, SMKI_E_INTERNAL, "smki_ra_ca_adopt: no RA");
    if (adopted) *adopted = 0;
    GUARD(check_actor_now(ra, by));
    ca_list cas = {NULL, 0, 0};
    smki_ca_query q = SMKI_CA_QUERY_ALL;
    q.usage = 0; /* CA certificates */
    int rc = smki_ca_find(&ra->ca, &q, ca_collect, &cas);
    adopt_run a = {ra, by, &cas, NULL, 0};
    if (rc == 0 && cas.n) rc = smki_store_write(ra->store, adopt_txn, &a);
    free(cas.items);
    GUARD(rc);
    if (adopted) *adopted = a.adopted;
    return a.adopted ? smki_ra_anchor(ra) : 0;
}
