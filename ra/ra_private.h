/* ra's insides: the handle, the record encodings (small versioned binary records read
 * back through the bounded cursor) and the action wrapper that puts every RA action
 * and its audit entry into one write transaction. */
#ifndef SMKI_RA_PRIVATE_H
#define SMKI_RA_PRIVATE_H

#include <pthread.h>

#include "ca/ca_gate.h"
#include "ra.h"
#include "ra_test.h"

struct smki_ra {
    smki_store *store;
    smki_ca_db ca;      /* carries the CA's gate (ca/ca_gate.h): never handed out */
    smki_ca_db ca_view; /* the same databases without it: smki_ra_ca_db */
    smki_ra_dbs db;
    smki_ra_policy pol;
    smki_key *ckpt;
    int64_t fixed_now;
    /* One anchor written at a time: a service's threads share the handle, and each
     * anchor is one slot beside the checkpoint key (a file's temporary is per process). */
    pthread_mutex_t anchor_lock;
    uint64_t anchored; /* the last head this handle anchored (under anchor_lock) */
    /* Group commits (group.c): the actions waiting for the next commit, and whether a
     * thread is committing one now. Under group_lock. */
    pthread_mutex_t group_lock;
    pthread_cond_t group_done;
    struct ra_group_item *group_head, *group_tail;
    int group_busy;
    unsigned group_preparing; /* direct issuances on their way to a commit (smki_ra_group_expect) */
};

int64_t smki_ra_now(const smki_ra *ra);

/* ---- Records: written by base's writer (smki_writer_t), read through the cursor ---- */
/* A text field: u16 length, then the octets (over 65535 octets fails the writer). */
void smki_ra_w_str(smki_writer_t *w, const char *s);
/* Reading: a string of at most cap-1 octets without NUL. */
int smki_r_str(smki_cursor_t *c, char *out, size_t cap);

/* A name or signifier: 1..64 of [A-Za-z0-9._-]. */
int smki_ra_check_name(const char *what, const char *s);

/* Append *c to a growing array of certificates (*items, *n used of *cap), doubling it
 * when full; the first allocation holds first_cap. */
int smki_ra_cert_push(smki_cert **items, size_t *n, size_t *cap, size_t first_cap, const smki_cert *c);

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
int smki_ra_act(smki_ra *ra, const smki_ra_actor *by, int bootstrap, ra_act_fn fn, void *arg);
/* The same, the entry's detail ending with "; via <via>" (who the operator acted for,
 * and how) when via is given. */
int smki_ra_act_via(smki_ra *ra, const smki_ra_actor *by, const char *via, ra_act_fn fn, void *arg);
/* smki_ra_act_via for actions that services run concurrently (direct issuance): an action
 * that arrives while another thread commits waits and joins the next commit with the
 * others that wait (one transaction, each action with its own entry, one anchor after
 * it); a group that fails is run again action by action. Returns once its entry is
 * durable and anchored, as smki_ra_act_via does. The caller has called smki_ra_group_expect
 * (below), which this ends. group.c. */
typedef struct ra_group_item ra_group_item;
int smki_ra_act_grouped(smki_ra *ra, const smki_ra_actor *by, const char *via, ra_act_fn fn, void *arg);
/* A direct issuance on its way (its certificate being built, its Party checked): a
 * commit about to start waits for it a little (at most RA_GROUP_LINGER_US) so that
 * both go in one commit. Each smki_ra_group_expect is ended by the smki_ra_act_grouped that
 * follows it, or by smki_ra_group_unexpect when the action fails before. */
#define RA_GROUP_LINGER_US 2000
void smki_ra_group_expect(smki_ra *ra);
void smki_ra_group_unexpect(smki_ra *ra);
/* The same inside a write transaction the caller runs (a group commit of the CA's
 * batch): the actor checked, fn's changes and the entry join t. */
int smki_ra_act_in(smki_txn *t, smki_ra *ra, const smki_ra_actor *by, ra_act_fn fn, void *arg);
int smki_ra_act_in_via(smki_txn *t, smki_ra *ra, const smki_ra_actor *by, const char *via, ra_act_fn fn, void *arg);
/* The next audit entry can be written (no checkpoint due without its key). */
int smki_ra_audit_ready(smki_txn *t, smki_ra *ra);
/* The actor's key matches the active operator registered under its name. */
int smki_ra_check_actor(smki_txn *t, smki_ra *ra, const smki_ra_actor *by);

/* The CA's on_store hook for a CRL/ARL (arg: an ra_crl_run): its audit entry
 * ("crl-publish" / "arl-publish") joins the transaction that records the list. */
typedef struct {
    smki_ra *ra;
    const smki_ra_actor *by;
    const smki_crl *crl;
    char which[64]; /* "" or, for a superseded CA's list, " (superseded CA serial ...)" */
} ra_crl_run;
int smki_ra_crl_hook(smki_txn *t, const smki_crl *crl, void *arg);
/* A CA certificate whose fingerprint is now in the trail (ca-init or ca-adopt). */
int smki_ra_ca_mark_bound(smki_txn *t, smki_ra *ra, const smki_cert *c);

/* Registry reads inside a transaction. */
int smki_ra_party_get_txn(smki_txn *t, smki_ra *ra, const char *signifier, smki_ra_party *out);
int smki_ra_id_get_txn(smki_txn *t, smki_ra *ra, const smki_eui64_t *id, smki_ra_user_id *out);
int smki_ra_range_find_txn(smki_txn *t, smki_ra *ra, const smki_eui64_t *id, smki_ra_range *out);
int smki_ra_operator_get_txn(smki_txn *t, smki_ra *ra, const char *name, smki_ra_operator *out);
int smki_ra_eligible_txn(smki_txn *t, smki_ra *ra, const smki_ra_eligibility *e);
/* Its first half, the Party's standing: registered, not suspended, a Testing Participant
 * with its agreement in test, an Authorised Subscriber for e->type (and role) in e->env. */
int smki_ra_standing_txn(smki_txn *t, smki_ra *ra, const smki_ra_eligibility *e, smki_ra_party *out);
/* Every EUI-64 block, in key order, read once for many device checks (a batch's group). */
typedef struct {
    smki_ra_range *r;
    size_t n, cap;
} smki_ra_blocks;
int smki_ra_blocks_load_txn(smki_txn *t, smki_ra *ra, smki_ra_blocks *out);
void smki_ra_blocks_free(smki_ra_blocks *b);
/* Its second half for a device certificate, without the store: e's Device ID against
 * the blocks b read in the transaction (or snapshot) where p's standing was read.
 * The same refusals as smki_ra_eligible_txn. */
int smki_ra_device_eligible(const smki_ra_party *p, const smki_ra_blocks *b, const smki_ra_eligibility *e);
/* Whether env is one of the names in list (separated by spaces or commas). */
int smki_ra_env_listed(const char *list, const char *env);
/* smki_ra_issue_direct / smki_ra_issue_tls_direct with the gate's options: refuse_dup
 * refuses a second in-use device certificate of the key and Device ID from the same CA
 * (smki_ca_check_new_device_txn) in the transaction that records it; a submission key
 * seen before writes nothing and gives back the certificate it issued (0). */
typedef struct {
    int refuse_dup;
    const char *via;               /* see smki_ra_issue_req */
    const char *party;             /* whose submission_key it is */
    const uint8_t *submission_key; /* 32 octets, or NULL */
} ra_direct_opts;
/* An issuer kept open by a service is env's current CA for leaf (*fits). */
int smki_ra_issuer_is_current(smki_ra *ra, smki_ca_issuer *is, const char *env, smki_profile_id leaf, int *fits);
int smki_ra_issue_direct_with(smki_ra *ra, const smki_ra_actor *by, smki_ca_issuer *is, const smki_ra_eligibility *e,
                    const char *cn, const ra_direct_opts *o, smki_cert *out);
int smki_ra_issue_tls_direct_with(smki_ra *ra, const smki_ra_actor *by, smki_ca_issuer *is, const char *env,
                        const smki_tls_req *r, const ra_direct_opts *o, smki_cert *out);
int smki_ra_operator_decode(const void *key, size_t klen, const void *val, size_t vlen, smki_ra_operator *o);

/* The approval counts fixed in the store (the policy's until the first entry fixes
 * them); put refuses counts below 1 or sensitive below organisation, and updates
 * ra->pol; load reads them into ra->pol. */
int smki_ra_approvals_get(smki_txn *t, smki_ra *ra, unsigned *org, unsigned *sens);
int smki_ra_approvals_put(smki_txn *t, smki_ra *ra, unsigned org, unsigned sens);
int smki_ra_approvals_load(smki_ra *ra);

/* ---- The trail's anchor outside the store (anchor.c) ---- */
typedef struct {
    uint64_t seq;
    uint8_t hash[32];
    int64_t time;
    size_t sig_len;
    uint8_t sig[SMKI_SIG_MAX];
} ra_anchor_rec;
/* After a commit that appended entries: the head signed with the checkpoint key and
 * kept beside it (smki_key_note_put). Nothing without a checkpoint key open. A failure
 * says the action is recorded but not anchored. */
int smki_ra_anchor(smki_ra *ra);
/* The anchor of the trail whose first entry hashes to first, its signature verified
 * with pub (NULL: the open checkpoint key's public half). SMKI_E_NOTFOUND (without
 * noise) when there is none. */
int smki_ra_anchor_read(smki_ra *ra, const uint8_t first[32], EVP_PKEY *pub, ra_anchor_rec *out);

/* ---- What approvals sign, and their proof (trail.c) ---- */
/* The words before the SHA-256 of a request's content in its submit, approve and
 * execute entries. */
#define RA_CONTENT_WORDS "content SHA-256"
/* The SHA-256 a request's approvals sign: its fields (what it asks, not its progress),
 * each CSR's octets (their hashes into csr_hashes[i] when given) and a DCCKI request's
 * names, read in t. */
int smki_ra_request_content(smki_txn *t, smki_ra *ra, const smki_ra_request *r, uint8_t out[32], uint8_t (*csr_hashes)[32]);
/* A P-256 public key from its point (NULL if it is not one). */
EVP_PKEY *smki_ra_point_pub(const uint8_t point[SMKI_POINT_LEN]);

/* The trail replayed in order: operators from their signed operator-add / -deactivate
 * entries only, requests' signed submissions, approvals and executions, and the
 * approval counts of the bootstrap and of executed policy requests. */
typedef struct ra_trail ra_trail;
int smki_ra_trail_new(uint64_t only, ra_trail **out); /* only: one request's entries (0: every request's) */
void smki_ra_trail_free(ra_trail *tr);
int smki_ra_trail_feed(ra_trail *tr, const smki_audit_entry *e);
int smki_ra_trail_read(smki_txn *t, smki_ra *ra, ra_trail *tr); /* every stored entry fed in order */
typedef struct {
    unsigned valid, required; /* distinct valid approvals; what the request needs (at least 1) */
    int content_changed;      /* the store's content is not what the submission or an approval signed */
    int legacy;               /* executed before approvals were bound to content: judged by signatures */
    uint64_t exec_seq;        /* the first entry of its execution (0: none) */
    char why[400];            /* the approvals that did not count, and why */
} ra_approval_proof;
/* Judge r's approvals for content (r's SHA-256 now): at_execution, as they stand now;
 * else as they stood at its first execution entry. */
int smki_ra_trail_prove(const ra_trail *tr, const smki_ra_request *r, const uint8_t content[32], int at_execution,
                   ra_approval_proof *p);
int smki_ra_trail_each_executed(const ra_trail *tr, int (*fn)(uint64_t id, void *arg), void *arg);
/* An operator as the trail holds them: SMKI_E_NOTFOUND (without noise) if it does not. */
int smki_ra_trail_operator(const ra_trail *tr, const char *name, uint8_t point[SMKI_POINT_LEN], int *active);
size_t smki_ra_trail_operator_count(const ra_trail *tr);
/* Execution's check: r's approvals proved against the trail (content and count), in a
 * read of its own; SMKI_E_REFUSED naming what is wrong. content (optional) receives the
 * proved SHA-256 and csr_hashes (optional, csr_count of them) each CSR's. */
int smki_ra_prove_approvals(smki_ra *ra, const smki_ra_request *r, uint8_t content[32], uint8_t (*csr_hashes)[32]);
/* req_get in a transaction, for audit verify. */
int smki_ra_request_get_txn(smki_txn *t, smki_ra *ra, uint64_t id, smki_ra_request *out);

#endif
