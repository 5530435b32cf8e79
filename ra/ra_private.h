/* ra's insides: the handle, the record encodings (small versioned binary records read
 * back through the bounded cursor) and the action wrapper that puts every RA action
 * and its audit entry into one write transaction. */
#ifndef SMKI_RA_PRIVATE_H
#define SMKI_RA_PRIVATE_H

#include "ca/ca_gate.h"
#include "ra.h"

struct smki_ra {
    smki_store *store;
    smki_ca_db ca;      /* carries the CA's gate (ca/ca_gate.h): never handed out */
    smki_ca_db ca_view; /* the same databases without it: smki_ra_ca_db */
    smki_ra_dbs db;
    smki_ra_policy pol;
    smki_key *ckpt;
    int64_t fixed_now;
};

int64_t ra_now(const smki_ra *ra);

/* ---- Records: written by base's writer (smki_writer_t), read through the cursor ---- */
/* A text field: u16 length, then the octets (over 65535 octets fails the writer). */
void ra_w_str(smki_writer_t *w, const char *s);
/* Reading: a string of at most cap-1 octets without NUL. */
int r_str(smki_cursor_t *c, char *out, size_t cap);

/* A name or signifier: 1..64 of [A-Za-z0-9._-]. */
int ra_check_name(const char *what, const char *s);

/* Append *c to a growing array of certificates (*items, *n used of *cap), doubling it
 * when full; the first allocation holds first_cap. */
int ra_cert_push(smki_cert **items, size_t *n, size_t *cap, size_t first_cap, const smki_cert *c);

/* ---- Actions ---- */
typedef struct {
    char action[48];
    char object[160];
    char detail[512];
} ra_note;
typedef int (*ra_act_fn)(smki_txn *t, smki_ra *ra, void *arg, ra_note *note);
/* One write transaction: the actor checked against the registry (unless bootstrap:
 * fn checks), fn's changes, and the audit entry fn's note describes, signed by the
 * actor. Any failure aborts all of it. */
int ra_act(smki_ra *ra, const smki_ra_actor *by, int bootstrap, ra_act_fn fn, void *arg);
/* The same, the entry's detail ending with "; via <via>" (who the operator acted for,
 * and how) when via is given. */
int ra_act_via(smki_ra *ra, const smki_ra_actor *by, const char *via, ra_act_fn fn, void *arg);
/* The same inside a write transaction the caller runs (a group commit of the CA's
 * batch): the actor checked, fn's changes and the entry join t. */
int ra_act_in(smki_txn *t, smki_ra *ra, const smki_ra_actor *by, ra_act_fn fn, void *arg);
int ra_act_in_via(smki_txn *t, smki_ra *ra, const smki_ra_actor *by, const char *via, ra_act_fn fn, void *arg);
/* The next audit entry can be written (no checkpoint due without its key). */
int ra_audit_ready(smki_txn *t, smki_ra *ra);
/* The actor's key matches the active operator registered under its name. */
int ra_check_actor(smki_txn *t, smki_ra *ra, const smki_ra_actor *by);

/* The CA's on_store hook for a CRL/ARL (arg: an ra_crl_run): its audit entry
 * ("crl-publish" / "arl-publish") joins the transaction that records the list. */
typedef struct {
    smki_ra *ra;
    const smki_ra_actor *by;
    const smki_crl *crl;
    char which[64]; /* "" or, for a superseded CA's list, " (superseded CA serial ...)" */
} ra_crl_run;
int ra_crl_hook(smki_txn *t, const smki_crl *crl, void *arg);
/* A CA certificate whose fingerprint is now in the trail (ca-init or ca-adopt). */
int ra_ca_mark_bound(smki_txn *t, smki_ra *ra, const smki_cert *c);

/* Registry reads inside a transaction. */
int ra_party_get_txn(smki_txn *t, smki_ra *ra, const char *signifier, smki_ra_party *out);
int ra_id_get_txn(smki_txn *t, smki_ra *ra, const smki_eui64_t *id, smki_ra_user_id *out);
int ra_range_find_txn(smki_txn *t, smki_ra *ra, const smki_eui64_t *id, smki_ra_range *out);
int ra_operator_get_txn(smki_txn *t, smki_ra *ra, const char *name, smki_ra_operator *out);
int ra_eligible_txn(smki_txn *t, smki_ra *ra, const smki_ra_eligibility *e);
/* Its first half, the Party's standing: registered, not suspended, a Testing Participant
 * with its agreement in test, an Authorised Subscriber for e->type (and role) in e->env. */
int ra_standing_txn(smki_txn *t, smki_ra *ra, const smki_ra_eligibility *e, smki_ra_party *out);
/* Whether env is one of the names in list (separated by spaces or commas). */
int ra_env_listed(const char *list, const char *env);
int ra_operator_decode(const void *key, size_t klen, const void *val, size_t vlen, smki_ra_operator *o);

#endif
