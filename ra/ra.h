/* ra: the SMKI Registration Authority. The registry (Parties, User IDs, EUI-64
 * ranges, Authorised Subscribers, Testing Participants, RA operators, suspensions),
 * requests with their eligibility checks, approvals and demand controls, and the
 * tamper-evident audit trail. Every RA action is one LMDB write transaction that
 * holds the action, its audit entry (hash-chained, signed by the acting operator's
 * key) and, every N entries, a checkpoint signed with a token key: an action whose
 * entry cannot be written does not happen, and nothing is ever half-done. */
#ifndef SMKI_RA_H
#define SMKI_RA_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "ca/ca.h"
#include "ca/crl.h"
#include "hsm/hsm.h"
#include "policy/policy.h"
#include "store/store.h"

#define SMKI_RA_NAME_MAX 65      /* a Party Signifier, a Party or operator name: 1..64 characters + NUL */
#define SMKI_RA_REASON_MAX 256   /* a reason given by an operator */
#define SMKI_RA_APPROVERS_MAX 8  /* approvals a request can hold */

/* ---- Policy (configuration [ra] and [audit]) ------------------------------------------ */
typedef struct {
    unsigned approvals_org;       /* approvals by other operators for an organisation certificate (1) */
    unsigned approvals_sensitive; /* for CA certificates, revocation, recovery, large batches, held demand (2) */
    unsigned batch_review_size;   /* a device batch of more CSRs than this is sensitive (1000) */
    unsigned rate_per_day;        /* requests a subscriber may submit per UTC day (200) */
    unsigned demand_percent;      /* device demand above this % of the monthly average is held (150) */
    unsigned demand_baseline;     /* monthly average assumed for a subscriber without history (10000) */
    unsigned batch_group;         /* device certificates per durable commit (1000) */
    unsigned checkpoint_every;    /* a signed audit checkpoint every N entries (64) */
    char direct_envs[128];        /* environments where 'smki ca issue' may issue directly ("test") */
    char unmanaged_envs[128];     /* environments a store WITHOUT RA operators may issue and revoke in
                                   * directly, unaudited: lab stores only (none) */
} smki_ra_policy;

/* Defaults, then keys of conf (may be NULL): [ra] approvals_organisation,
 * approvals_sensitive, batch_review_size, rate_per_day, demand_percent,
 * demand_baseline, batch_group, direct_issue, unmanaged; [audit] checkpoint_every. A malformed
 * number is refused naming the key. */
SMKI_MUST_CHECK int smki_ra_policy_load(const smki_conf *conf, smki_ra_policy *out);

/* ---- The RA handle ------------------------------------------------------------------------ */
typedef struct smki_ra smki_ra;

/* Opens (creating) the RA's and the CA's databases on s (before any transaction). */
SMKI_MUST_CHECK int smki_ra_open(smki_store *s, const smki_ra_policy *p, smki_ra **out);
void smki_ra_close(smki_ra *ra);
/* The CA's databases, to read (and to open issuers): without the RA's gate, so in a
 * store with operators its writes are refused like any other caller's (ca/ca.h). */
smki_ca_db *smki_ra_ca_db(smki_ra *ra);
const smki_ra_policy *smki_ra_get_policy(const smki_ra *ra);
/* The key that signs audit checkpoints (taken over, freed with the RA). Without one, an
 * action on which a checkpoint falls due is refused (the log fails closed). */
void smki_ra_set_checkpoint_key(smki_ra *ra, smki_key *key);
/* Tests: a fixed clock (0: the real one). */
void smki_ra_set_clock(smki_ra *ra, int64_t now);

/* The operator taking an action: their registered name and their own key (a token
 * key or a file), with which the action's audit entry is signed. */
typedef struct {
    const char *name;
    smki_key *key;
} smki_ra_actor;

/* ---- Actions of services above the RA (the gateway) ----------------------------------------
 * A service's administration action is an RA action: taken by a registered, active
 * operator (by required: SMKI_E_USAGE without one; SMKI_E_REFUSED for a name that is not
 * an active operator, or a key that is not theirs: nothing written) and recorded in the
 * RA's tamper-evident trail. fn makes the service's changes in t; the audit entry
 * (note->action "SERVICE.VERB" in [a-z0-9-], e.g. "gateway.device-add"; object; detail)
 * signed by by's key joins the same write transaction: both or neither. smki_audit_verify
 * covers these entries as every other (chain, signature, checkpoints). */
typedef struct {
    const char *action;
    const char *object; /* what it acts on ("device 00-11-..."), < 160 characters */
    const char *detail; /* what it did, cut at 511 characters */
} smki_ra_service_note;
typedef int (*smki_ra_service_fn)(smki_txn *t, void *arg);
SMKI_MUST_CHECK int smki_ra_service_act(smki_ra *ra, const smki_ra_actor *by, const smki_ra_service_note *note,
                                        smki_ra_service_fn fn, void *arg);
/* The store the RA was opened on (a service keeps its own databases there). */
smki_store *smki_ra_store(smki_ra *ra);

/* ---- User Roles (reference §2) ----------------------------------------------------------- */
enum {
    SMKI_UROLE_EIS = 1u << 0, /* Import Supplier */
    SMKI_UROLE_EES = 1u << 1, /* Export Supplier */
    SMKI_UROLE_GIS = 1u << 2, /* Gas Supplier */
    SMKI_UROLE_ENO = 1u << 3, /* Electricity Distributor */
    SMKI_UROLE_GNO = 1u << 4, /* Gas Transporter */
    SMKI_UROLE_OU = 1u << 5,  /* Other User */
    SMKI_UROLE_ALL = 0x3Fu,
};
/* "EIS,GIS" (any case, comma-separated) into bits; refuses an unknown code naming it. */
SMKI_MUST_CHECK int smki_user_roles_parse(const char *text, unsigned *bits);
/* "EIS,GIS" */
void smki_user_roles_format(unsigned bits, char *out, size_t cap);
/* May a User ID with these User Roles (or a DCC ID) hold an organisation certificate of
 * this Remote Party Role? Suppliers' roles: supplier; distributors and transporters:
 * networkOperator; Other User: other, loadController; every User: xmlSign; DCC IDs:
 * any role but root and issuingAuthority. */
SMKI_MUST_CHECK int smki_ra_role_allowed(unsigned user_roles, int is_dcc, int rp_role);

/* ---- Operators ------------------------------------------------------------------------ */
typedef struct {
    char name[SMKI_RA_NAME_MAX];
    uint8_t point[SMKI_POINT_LEN]; /* the public key that verifies their audit entries */
    int active;
    int64_t added;
} smki_ra_operator;

/* Register an operator with their public key. The first operator of a registry is
 * registered by themself (by->name is the new name and by->key the private half of pub:
 * the bootstrap); later ones by an active registered operator. */
SMKI_MUST_CHECK int smki_ra_operator_add(smki_ra *ra, const smki_ra_actor *by, const char *name, EVP_PKEY *pub);
SMKI_MUST_CHECK int smki_ra_operator_get(smki_ra *ra, const char *name, smki_ra_operator *out);
/* An operator who leaves: their past entries still verify; they can act no more. */
SMKI_MUST_CHECK int smki_ra_operator_deactivate(smki_ra *ra, const smki_ra_actor *by, const char *name);
typedef int (*smki_ra_operator_fn)(const smki_ra_operator *o, void *arg);
SMKI_MUST_CHECK int smki_ra_operator_each(smki_ra *ra, smki_ra_operator_fn fn, void *arg);
/* Operators registered (0: the registry has none, the store is not RA-governed). */
SMKI_MUST_CHECK int smki_ra_operator_count(smki_ra *ra, size_t *n);
/* Whether the CA's direct issuance in env goes through the RA's gate: always in the
 * test environment (test certificates go only to Testing Participants), and in every
 * environment once the store has RA operators. *gated says; when gated and no party is
 * given, SMKI_E_REFUSED saying what is needed. what names the certificates in the
 * message ("certificates", "device certificates"). A store without operators issues
 * ungated only in the environments of ra.unmanaged (lab stores); anywhere else it is
 * refused (SMKI_E_REFUSED) until the RA exists: no certificate outside the RA. */
SMKI_MUST_CHECK int smki_ra_issue_gate(smki_ra *ra, const char *env, const char *party, const char *what, int *gated);
/* The same rule for acting without the RA (revoking): 0 when the store has operators
 * (the caller goes through them) or env is in ra.unmanaged; else SMKI_E_REFUSED naming
 * what (e.g. "revocation") and what to do. *managed says whether the store has operators. */
SMKI_MUST_CHECK int smki_ra_unmanaged_check(smki_ra *ra, const char *env, const char *what, int *managed);

/* ---- Parties ------------------------------------------------------------------------------ */
typedef struct {
    char signifier[SMKI_RA_NAME_MAX]; /* the Party Signifier: unique within the SEC (letters, digits, -_.) */
    char name[SMKI_RA_NAME_MAX];
    int is_dcc;                       /* the DCC itself: its IDs are DCC IDs */
    int is_testing_participant;       /* may receive test certificates ... */
    int agreement_signed;             /* ... once the signed agreement is on file */
    int suspended;
    char suspend_reason[SMKI_RA_REASON_MAX];
    int64_t created;
} smki_ra_party;

SMKI_MUST_CHECK int smki_ra_party_add(smki_ra *ra, const smki_ra_actor *by, const smki_ra_party *p);
SMKI_MUST_CHECK int smki_ra_party_get(smki_ra *ra, const char *signifier, smki_ra_party *out);
/* tp, agreement: 1 set, 0 clear, -1 leave. */
SMKI_MUST_CHECK int smki_ra_party_set_testing(smki_ra *ra, const smki_ra_actor *by, const char *signifier, int tp, int agreement);
/* Suspend (with a reason) or lift. */
SMKI_MUST_CHECK int smki_ra_party_suspend(smki_ra *ra, const smki_ra_actor *by, const char *signifier, int suspend,
                          const char *reason);
typedef int (*smki_ra_party_fn)(const smki_ra_party *p, void *arg);
SMKI_MUST_CHECK int smki_ra_party_each(smki_ra *ra, smki_ra_party_fn fn, void *arg);

/* ---- EUI-64 ranges and IDs ---------------------------------------------------------------- */
typedef enum {
    SMKI_RANGE_CENTRAL = 1, /* a block of the central MA-S registry entry: User, DCC and RDP IDs, never Device IDs */
    SMKI_RANGE_DEVICE = 2,  /* a manufacturer's block of Device IDs */
} smki_range_kind;

typedef struct {
    smki_eui64_range_t range;
    smki_range_kind kind;
    char party[SMKI_RA_NAME_MAX]; /* the allocator it is assigned to */
    uint64_t next;                /* the next offset 'id allocate' tries */
} smki_ra_range;

/* Assign a block to a Party; refuses one that overlaps any assigned block. */
SMKI_MUST_CHECK int smki_ra_range_assign(smki_ra *ra, const smki_ra_actor *by, const smki_eui64_range_t *r, smki_range_kind kind,
                         const char *party);
typedef int (*smki_ra_range_fn)(const smki_ra_range *r, void *arg);
SMKI_MUST_CHECK int smki_ra_range_each(smki_ra *ra, smki_ra_range_fn fn, void *arg);
/* The block that holds id: SMKI_E_NOTFOUND if none. */
SMKI_MUST_CHECK int smki_ra_range_find(smki_ra *ra, const smki_eui64_t *id, smki_ra_range *out);

typedef struct {
    smki_eui64_t id;
    char party[SMKI_RA_NAME_MAX];
    unsigned roles;    /* SMKI_UROLE_* bound to it */
    int is_dcc;        /* a DCC ID */
    int suspended;
    char suspend_reason[SMKI_RA_REASON_MAX];
    int64_t allocated;
} smki_ra_user_id;

/* Allocate a User ID (or, for the DCC, a DCC ID) to party with these User Roles: want
 * (if given) or the next free ID of the party's own central block. Refused: an ID
 * outside every central block of the party, one already allocated, no free ID left. */
SMKI_MUST_CHECK int smki_ra_id_allocate(smki_ra *ra, const smki_ra_actor *by, const char *party, unsigned roles,
                        const smki_eui64_t *want, smki_eui64_t *out);
SMKI_MUST_CHECK int smki_ra_id_get(smki_ra *ra, const smki_eui64_t *id, smki_ra_user_id *out);
/* Change the User Roles bound to an ID (a Supplier becoming a Gas Supplier too): what the
 * gateway's eligibility by User Role reads. Refused: no role, an unknown ID, the same roles. */
SMKI_MUST_CHECK int smki_ra_id_set_roles(smki_ra *ra, const smki_ra_actor *by, const smki_eui64_t *id, unsigned roles);
SMKI_MUST_CHECK int smki_ra_id_suspend(smki_ra *ra, const smki_ra_actor *by, const smki_eui64_t *id, int suspend, const char *reason);
typedef int (*smki_ra_id_fn)(const smki_ra_user_id *u, void *arg);
SMKI_MUST_CHECK int smki_ra_id_each(smki_ra *ra, smki_ra_id_fn fn, void *arg);

/* The gateway's check (reference §7): 0 when the User ID is registered and neither it
 * nor its Party is suspended; SMKI_E_REFUSED saying which is suspended and why;
 * SMKI_E_NOTFOUND for an ID the registry does not know. Read-only. */
SMKI_MUST_CHECK int smki_ra_check_sender(smki_ra *ra, const smki_eui64_t *id);

/* ---- Authorised Subscribers ------------------------------------------------------------ */
typedef struct {
    char party[SMKI_RA_NAME_MAX];
    smki_profile_id type; /* SMKI_PROFILE_ORGANISATION, _DEVICE, _DCCKI_SERVER or _DCCKI_CLIENT */
    int role;             /* organisation: the Remote Party Role; the others: -1 */
    char env[SMKI_ENV_NAME_MAX];
} smki_ra_subscriber;

SMKI_MUST_CHECK int smki_ra_subscriber_authorise(smki_ra *ra, const smki_ra_actor *by, const smki_ra_subscriber *s);
SMKI_MUST_CHECK int smki_ra_subscriber_revoke(smki_ra *ra, const smki_ra_actor *by, const smki_ra_subscriber *s);
typedef int (*smki_ra_subscriber_fn)(const smki_ra_subscriber *s, void *arg);
SMKI_MUST_CHECK int smki_ra_subscriber_each(smki_ra *ra, smki_ra_subscriber_fn fn, void *arg);

/* ---- Eligibility ------------------------------------------------------------------------- */
/* May party receive this certificate? The Party is registered and not suspended; in a
 * test environment it is a Testing Participant whose signed agreement is on file (and
 * in any other environment it is refused test-only standing never matters); it is an
 * Authorised Subscriber for the type (and role) in env; an organisation EUI is a
 * registered ID of this Party, not suspended, with a User Role (or DCC standing) that
 * allows the role; a device's ID is not from a central block. The CSR (if given)
 * must agree (smki_csr_check_request). SMKI_E_REFUSED / SMKI_E_NOTFOUND naming the
 * rule and the input. Read-only. */
typedef struct {
    const char *party;
    const char *env;
    smki_profile_id type;    /* ORGANISATION, DEVICE, DCCKI_SERVER or DCCKI_CLIENT (the Party's standing only:
                                the CA checks the TLS request itself, smki_ca_tls_check) */
    int role;                /* organisation: the Remote Party Role */
    const smki_eui64_t *eui; /* organisation: required; device: the CSR's when NULL */
    const smki_csr *csr;     /* may be NULL */
    int subscriber_asks;     /* 1: the Party asks for itself through a service (the enrolment service), not an RA
                                operator on its behalf: a device's ID must then also lie in a device block assigned
                                to this Party (smki_ra_range_assign), or it is refused */
} smki_ra_eligibility;
SMKI_MUST_CHECK int smki_ra_check_eligible(smki_ra *ra, const smki_ra_eligibility *e);

/* 'smki ca issue' in an RA-governed store: the CA's direct path for one certificate,
 * allowed only in the policy's direct environments (test by default: certificates of
 * the test PKI, trusted nowhere live), after the same eligibility check, recorded with
 * its audit entry in the transaction that stores the certificate. */
SMKI_MUST_CHECK int smki_ra_issue_direct(smki_ra *ra, const smki_ra_actor *by, smki_ca_issuer *is, const smki_ra_eligibility *e,
                         const char *cn, smki_cert *out);

/* 'smki ca issue --profile dccki-server|dccki-client' in an RA-governed store (and in
 * test): the same rule as smki_ra_issue_direct. r->party is required (the Party's
 * Signifier, registered, in standing, an Authorised Subscriber for that certificate type
 * in env; it goes into the certificate); the certificate and its audit entry
 * ("ca-issue-direct") are one transaction. */
SMKI_MUST_CHECK int smki_ra_issue_tls_direct(smki_ra *ra, const smki_ra_actor *by, smki_ca_issuer *is, const char *env,
                             const smki_tls_req *r, smki_cert *out);

/* 'smki ca batch' in an RA-governed store (and in test): the CA's resumable batch
 * (smki_ca_batch_run, with is the device CA of env) under the same rule as direct
 * issuance: only in the policy's direct environments (elsewhere a device-batch request
 * and its approvals). Refused whole, before any CSR is read: no party, an operator who
 * is not an active registered one, a Party not in standing for device certificates in
 * env (unregistered, suspended, in test not a Testing Participant with its agreement,
 * not an Authorised Subscriber), an issuing CA not in use. Then every CSR passes the
 * whole eligibility check (its Device ID not from a central block) or is refused in the
 * report while the rest go on; each group commit holds its audit entry (signed by the
 * operator: how many, the first serial, the SHA-256 of their serials), with the
 * Party's eligibility checked again in that transaction. */
SMKI_MUST_CHECK int smki_ra_batch_direct(smki_ra *ra, const smki_ra_actor *by, smki_ca_issuer *is, const char *party, const char *env,
                         const smki_ca_batch_input *in, const smki_ca_batch_opts *o, smki_ca_batch_report **out);
/* The same where the Party asks for itself (asks: smki_ra_eligibility.subscriber_asks, the
 * enrolment service): each Device ID must also lie in the Party's own device blocks; via
 * (or NULL) says in each audit entry how the request came ("party X over EST"). */
SMKI_MUST_CHECK int smki_ra_batch_direct_as(smki_ra *ra, const smki_ra_actor *by, smki_ca_issuer *is, const char *party,
                                            const char *env, int asks, const char *via, const smki_ca_batch_input *in,
                                            const smki_ca_batch_opts *o, smki_ca_batch_report **out);

/* 'smki ca revoke' in an RA-governed store: the same rule as direct issuance (only in the
 * policy's direct environments; elsewhere 'smki ra revoke' and its approvals), the
 * revocation and its audit entry in one transaction. r->env is required. */
SMKI_MUST_CHECK int smki_ra_revoke_direct(smki_ra *ra, const smki_ra_actor *by, const smki_revoke_req *r, smki_cert *out,
                          smki_revocation *rev);

/* ---- The CA's own actions in an RA-governed store ----------------------------------------
 * 'smki ca init': in a store without operators, the bootstrap ceremony (smki_ca_init,
 * by ignored: there is no trail yet). Once the store has operators: the ceremony (smki_ca_init) with, in the
 * transaction that records the CAs made now, one audit entry "ca-init" signed by the
 * operator: the environment and, for each CA made, its kind, serial and the first 128
 * bits of its certificate's SHA-256. A re-run that makes nothing writes no entry. The
 * operator is checked before any key is generated; an entry that cannot be written (a
 * checkpoint due without its key) records no CA. o->on_store must be unset. */
SMKI_MUST_CHECK int smki_ra_ca_init(smki_ra *ra, const smki_ra_actor *by, const char *env, const smki_conf *conf,
                    const smki_ca_init_opts *o, smki_ca_init_report *rep);
/* 'smki ca crl' / 'smki ca arl' (and every list the RA publishes after a revocation):
 * smki_ca_crl_publish with its audit entry ("crl-publish" or "arl-publish": the
 * environment, CA kind, number, entries and the list's SHA-256) in the transaction that
 * records the list; the file is written only once both are committed. */
SMKI_MUST_CHECK int smki_ra_crl_publish(smki_ra *ra, const smki_ra_actor *by, const char *env, smki_ca_kind k,
                        const smki_crl_opts *o, smki_crl *out);
/* The same for env's CA of this SKI, current or superseded (smki_ca_crl_publish_ski):
 * after a CA compromise recovery, the old CA's last list, signed with its key while it
 * is available. Its entry names the superseded CA's serial. */
SMKI_MUST_CHECK int smki_ra_crl_publish_ski(smki_ra *ra, const smki_ra_actor *by, const char *env, const uint8_t ski[SMKI_KEYID_LEN],
                            const smki_crl_opts *o, smki_crl *out);

/* The bootstrap ceremony bound to the trail. The first 'smki ca init' precedes every
 * operator, so no entry records it. Once an operator exists, this appends, in one
 * transaction, one "ca-adopt" entry signed by them for each CA certificate in the store
 * that the trail does not yet hold (not made by an audited ceremony, not adopted
 * before): its profile, environment, SKI, subject, serial and the SHA-256 of the whole
 * certificate. *adopted: how many (0 on a re-run). The CLI runs it right after the
 * first operator registers ('smki ra operator add') and as 'smki ra adopt-ca'. */
SMKI_MUST_CHECK int smki_ra_ca_adopt(smki_ra *ra, const smki_ra_actor *by, size_t *adopted);

/* ---- The gate: one entry point per CA action, for every caller -----------------------------
 * A service (the enrolment service, a daemon, a test) calls these exactly as the smki
 * command does; none of them needs to know whether the store is governed. Each applies
 * the RA's rules itself: in the test environment, and in every environment once the
 * store has RA operators, the action is the RA's (a registered, active operator whose
 * key signs the audit entry written in the action's own transaction; the Party's
 * eligibility; only in the environments of ra.direct_issue, elsewhere through requests
 * and approvals). A store without operators acts without the RA only for the bootstrap
 * (the first ceremony, lists of a CA without an RA) and in the lab environments of
 * ra.unmanaged; anywhere else it is refused until the RA exists. The CA's own ungated
 * functions refuse to write in a governed store (ca/ca.h, smki_ca_gate), so this gate
 * cannot be stepped around.
 *
 * by: the operator taking the action (their registered name and their own key), or NULL
 * where no operator is at hand: refused with SMKI_E_USAGE when the action needs one,
 * SMKI_E_REFUSED for a name that is not an active registered operator or a key that is
 * not theirs. Example, a service issuing one certificate:
 *
 *     smki_ra_policy pol;
 *     smki_ra *ra = NULL;
 *     smki_csr *csr = NULL;
 *     GUARD(smki_ra_policy_load(conf, &pol));
 *     GUARD(smki_ra_open(store, &pol, &ra));          // store: smki_store_open
 *     GUARD(smki_csr_parse(der, der_len, &csr));
 *     smki_ra_actor by = {"alice", alice_key};         // alice_key: smki_key_open
 *     smki_ra_issue_req r = {.env = "test", .csr = csr, .party = "SUP1", .role = SMKI_ROLE_SUPPLIER,
 *                            .eui = &org_eui, .hsm = &hsm};
 *     smki_cert cert;
 *     int rc = smki_ra_issue(ra, &by, &r, &cert, NULL); // the certificate and its audit entry, or nothing
 *
 * Requests with approvals (organisation certificates outside the direct environments,
 * device batches, revocations, recoveries) are smki_ra_request_submit / _approve /
 * _execute below. */

/* Whether the RA lets env issue single certificates directly (the environments of
 * [ra] direct_issue), rather than through requests and approvals. */
int smki_ra_issues_directly(const smki_ra *ra, const char *env);

/* Whether an action in env will need an operator: any action once the store has
 * operators, and issuance (issues 1) in the test environment always. For a caller that
 * opens the operator's key only when it is needed (the entry points decide again). */
SMKI_MUST_CHECK int smki_ra_needs_operator(smki_ra *ra, const char *env, int issues, int *needs);

/* One certificate from a CSR. */
typedef struct {
    const char *env;            /* required */
    const smki_csr *csr;        /* parsed and verified (smki_csr_parse), required */
    smki_profile_id profile;    /* 0 (UNKNOWN): chosen from the CSR (smki_ca_leaf_profile) */
    const char *party;          /* the requesting Party's Signifier: required where the RA gates */
    int role;                   /* organisation: the Remote Party Role; -1: none (device, DCCKI) */
    const smki_eui64_t *eui;    /* organisation: required; device: optional, must be the CSR's */
    const char *cn;             /* optional */
    const char *const *dns;     /* DCCKI: the endpoint's names (a server needs one) */
    size_t n_dns;
    const char *const *ips;
    size_t n_ips;
    const smki_hsm_opts *hsm;   /* to open the issuing CA's key */
    int allow_duplicate_key;    /* 0: a second in-use device certificate of the CSR's key and Device ID from the
                                   same CA is refused (SMKI_E_EXISTS, in the issuing transaction when gated) */
    /* For a service issuing on a subscriber's behalf (the enrolment service); used when
     * the RA gates (ignored otherwise): */
    const char *via;            /* optional: the audit entry ends "; via <this>" ("party SUP1 over EST") */
    const uint8_t *submission_key; /* optional, 32 octets: the same Party asking again with the same key writes
                                      nothing and gets the certificate issued the first time (0) */
    smki_ca_issuer *issuer;     /* optional: an issuing CA kept open (smki_ca_issuer_open), used while it is the
                                   environment's current CA for the profile; otherwise the CA is opened here */
    int subscriber_asks;        /* the Party asks for itself (smki_ra_eligibility): a device's ID in its own blocks */
} smki_ra_issue_req;
/* Issue it: the issuing CA chosen by the profile, the gate above, and the certificate
 * recorded (with its audit entry when gated). party_used (optional) receives the Party
 * Signifier in a DCCKI certificate. */
SMKI_MUST_CHECK int smki_ra_issue(smki_ra *ra, const smki_ra_actor *by, const smki_ra_issue_req *r, smki_cert *out,
                  char party_used[SMKI_PARTY_MAX]);

/* Device certificates from many CSRs (the CA's resumable batch, smki_ca_batch_run), gated
 * as one certificate is (smki_ra_batch_direct when the RA gates). on_start (optional) is
 * called once the device CA is open, before the first CSR, with the number of CSRs. */
typedef struct {
    const char *env;
    const char *party;
    const smki_hsm_opts *hsm;
    void (*on_start)(size_t csrs, void *arg);
    void *start_arg;
    int subscriber_asks; /* the Party asks for itself (smki_ra_eligibility): Device IDs in its own blocks */
    const char *via;     /* optional: how the request came, in each audit entry ("party X over EST") */
} smki_ra_batch_req;
/* A batch judged whole before it is run (the enrolment service refuses a batch with any
 * CSR the gate would refuse, and issues none of it): the operator, the Party's standing in
 * env and every CSR's eligibility, as smki_ra_batch_direct_as checks each. Read-only; the
 * first refusal is returned, naming its CSR. */
SMKI_MUST_CHECK int smki_ra_batch_check_all(smki_ra *ra, const smki_ra_actor *by, const char *party, const char *env,
                                            int asks, const smki_ca_batch_input *in);
SMKI_MUST_CHECK int smki_ra_batch(smki_ra *ra, const smki_ra_actor *by, const smki_ra_batch_req *r, const smki_ca_batch_input *in,
                  const smki_ca_batch_opts *o, smki_ca_batch_report **out);

/* Revoke one certificate of env (smki_ca_revoke's refusals), gated: in a store with
 * operators only in the direct environments (elsewhere a revoke request), with its
 * audit entry; without operators only in ra.unmanaged. *audited (optional): whether it
 * went through the RA. */
typedef struct {
    const char *env;            /* required */
    const uint8_t *serial;      /* SMKI_SERIAL_LEN octets, required */
    const char *issuer;         /* NULL: the only certificate of that serial; else a CA kind (smki-oca, oca, ...)
                                   or its SKI (16 hex digits) */
    smki_revoke_reason reason;
} smki_ra_revoke_req;
SMKI_MUST_CHECK int smki_ra_revoke(smki_ra *ra, const smki_ra_actor *by, const smki_ra_revoke_req *r, smki_cert *out,
                   smki_revocation *rev, int *audited);

/* Publish now the CRLs (arl 0: of issuing CAs) or ARLs (arl 1: of roots) of env: of the
 * CA named by ca (its kind, or its SKI: also one superseded after a recovery), or, when
 * ca is NULL, of every CA of that sort env has. In a store with operators each list is
 * smki_ra_crl_publish's (its audit entry in its transaction). out[0..*n) receive them
 * (smki_crl_clear each); on failure none is returned. Refused: a CA of the other sort
 * (SMKI_E_USAGE), an environment without a CA (SMKI_E_NOTFOUND). */
typedef struct {
    const char *env;
    int arl;
    const char *ca;
    const smki_conf *conf;      /* [ca.<env>] crl_hours / arl_hours (NULL: the defaults) */
    const smki_hsm_opts *hsm;
    const char *home;           /* files under <home>/ca/<env>/ (NULL: store only) */
    int64_t now;                /* thisUpdate; 0: the clock */
} smki_ra_lists_req;
SMKI_MUST_CHECK int smki_ra_lists_publish(smki_ra *ra, const smki_ra_actor *by, const smki_ra_lists_req *r,
                          smki_crl out[SMKI_CA_KIND_COUNT], size_t *n);

/* 'smki ca keys --remove', the gate's: smki_ca_orphan_key_remove (a key of a CA env has
 * still to make, the SO PIN proved). In a store without operators that alone (by may be
 * NULL); in an RA-governed store by a registered operator, the operator and a due
 * checkpoint checked before the token changes, then a "ca-key-remove" entry. */
SMKI_MUST_CHECK int smki_ra_ca_key_remove(smki_ra *ra, const smki_ra_actor *by, const char *env, const smki_conf *conf,
                          const smki_hsm_opts *hsm, const char *label, const char *so_pin, smki_ca_orphan *out);

/* ---- Requests ------------------------------------------------------------------------------ */
typedef enum {
    SMKI_REQ_ORGANISATION = 1, /* one organisation certificate from a CSR */
    SMKI_REQ_DEVICE_BATCH = 2, /* device certificates from many CSRs */
    SMKI_REQ_REVOKE = 3,       /* revoke a certificate (organisation: CRL; CA: ARL) */
    SMKI_REQ_RECOVER = 4,      /* CA compromise recovery of an environment's organisation CA */
    SMKI_REQ_DCCKI_SERVER = 5, /* one DCCKI TLS server certificate for a Party's endpoint */
    SMKI_REQ_DCCKI_CLIENT = 6, /* one DCCKI TLS client certificate */
    SMKI_REQ_POLICY = 7,       /* change an approval count fixed in the store (cn: the setting, reason: the value) */
} smki_req_type;
typedef enum {
    SMKI_REQ_PENDING = 1,  /* awaiting approvals */
    SMKI_REQ_HELD = 2,     /* demand above the threshold: awaiting operator review (sensitive approvals) */
    SMKI_REQ_APPROVED = 3, /* approved, to be executed (or its execution failed: see error) */
    SMKI_REQ_DONE = 4,     /* executed */
    SMKI_REQ_REJECTED = 5, /* rejected by an operator */
} smki_req_state;
const char *smki_req_type_name(int t);   /* "organisation", "device-batch", "revoke", "recover", "dccki-server",
                                           "dccki-client" */
SMKI_MUST_CHECK int smki_req_type_parse(const char *text, smki_req_type *out);
const char *smki_req_state_name(int s);  /* "pending", "held", ... */
SMKI_MUST_CHECK int smki_req_state_parse(const char *text, smki_req_state *out);

typedef struct {
    uint64_t id;
    smki_req_type type;
    smki_req_state state;
    char env[SMKI_ENV_NAME_MAX];
    char party[SMKI_RA_NAME_MAX];
    char requester[SMKI_RA_NAME_MAX];
    int64_t created, updated;
    /* organisation */
    int role;
    int has_eui;
    smki_eui64_t eui;
    int usage; /* from the CSR */
    char cn[SMKI_CA_NAME_MAX];
    /* device batch */
    uint32_t csr_count, done_count;
    /* revoke */
    uint8_t serial[SMKI_SERIAL_LEN];
    uint8_t issuer_ski[SMKI_KEYID_LEN];
    int reason; /* RFC 5280 CRLReason */
    /* recover: the compromised CA (SMKI_CA_OCA or SMKI_CA_DCA); csr_count / done_count
     * count the live organisation certificates to re-issue and those re-issued */
    int ca_kind;
    uint8_t new_ca_serial[SMKI_SERIAL_LEN]; /* the successor's, once made */
    int has_new_ca;
    /* approvals */
    unsigned approvals_required;
    size_t n_approvals;
    char approvers[SMKI_RA_APPROVERS_MAX][SMKI_RA_NAME_MAX];
    char rejected_by[SMKI_RA_NAME_MAX];
    char note[SMKI_RA_REASON_MAX]; /* why it is held, why rejected, or what its execution met */
    /* result: the certificate issued (organisation), the first of a batch */
    int has_result;
    uint8_t result_serial[SMKI_SERIAL_LEN];
    uint8_t result_issuer[SMKI_KEYID_LEN];
} smki_ra_request;

/* Submit: the eligibility checks and the rate limit are applied now (and again at
 * execution); a refusal writes nothing. Org: csr, party, env, role, eui (cn optional).
 * Device batch: csrs[n] (DER or PEM each); the IDs are checked against the central
 * blocks; demand above the threshold is held, never dropped. Revoke: serial (+ the
 * issuer, optional when the serial is unique) and an RFC 5280 reason; the certificate
 * must exist, be in use and not a device certificate (replaced, not revoked) or a root;
 * revocation always needs the sensitive approvals and is never rate-limited; party and
 * env are taken from the certificate (party: its EUI's registered Party, or "-").
 * Recover: env and ca_kind (SMKI_CA_OCA or SMKI_CA_DCA) of an issuing CA whose key is
 * compromised; sensitive approvals. *id receives the request's number. */
typedef struct {
    smki_req_type type;
    const char *party;
    const char *env;
    /* organisation */
    const uint8_t *csr;
    size_t csr_len;
    int role;
    const smki_eui64_t *eui;
    const char *cn;
    /* device batch */
    const uint8_t *const *csrs;
    const size_t *csr_lens;
    size_t n_csrs;
    /* revoke */
    const uint8_t *serial;     /* SMKI_SERIAL_LEN */
    const uint8_t *issuer_ski; /* may be NULL */
    int reason;
    /* recover: env and the issuing CA */
    int ca_kind;
    /* DCCKI server/client: csr, party (its Signifier goes into the certificate), env,
     * cn (optional) and the names of the endpoint (a server needs one) */
    const char *const *dns;
    size_t n_dns;
    const char *const *ips;
    size_t n_ips;
    const smki_conf *conf; /* the environments' settings (may be NULL: the built-in ones) */
    /* Optional: a submission key (32 octets, e.g. the SHA-256 of what the subscriber
     * sent). A second submission by the same Party with the same key writes nothing and
     * is refused with SMKI_E_EXISTS, *id the first one's number: a replayed or retried
     * submission (EST's 202 and retry, RFC 7030 4.2.3) never makes a second request. */
    const uint8_t *submission_key;
    /* Optional: on whose behalf and how, when a service submits for a subscriber (the
     * enrolment service: "party SUPPLIER-A over EST"). The audit entry ends with
     * "; via <this>", under the operator's signature. */
    const char *via;
    /* 1: the Party asks for itself through that service (smki_ra_eligibility): each device
     * CSR's Device ID must lie in one of the Party's own device blocks, checked at submission. */
    int subscriber_asks;
} smki_ra_submit;
SMKI_MUST_CHECK int smki_ra_request_submit(smki_ra *ra, const smki_ra_actor *by, const smki_ra_submit *s, uint64_t *id);
/* A DCCKI request's endpoint names as text, one "dns NAME" or "ip ADDRESS" a line ("" for
 * none). */
SMKI_MUST_CHECK int smki_ra_request_names(smki_ra *ra, uint64_t id, char *out, size_t cap);
SMKI_MUST_CHECK int smki_ra_request_get(smki_ra *ra, uint64_t id, smki_ra_request *out);
typedef int (*smki_ra_request_fn)(const smki_ra_request *r, void *arg);
/* state 0: every request. */
SMKI_MUST_CHECK int smki_ra_request_each(smki_ra *ra, int state, smki_ra_request_fn fn, void *arg);
/* Approve: refused for one's own request, a second approval by the same operator, and
 * a request that is not pending or held. On the last approval the request becomes
 * approved; *now_approved tells. */
SMKI_MUST_CHECK int smki_ra_request_approve(smki_ra *ra, const smki_ra_actor *by, uint64_t id, int *now_approved);
/* Any rejection rejects (with its reason); refused for a request already decided. */
SMKI_MUST_CHECK int smki_ra_request_reject(smki_ra *ra, const smki_ra_actor *by, uint64_t id, const char *reason);

/* Execute an approved request: eligibility checked again, then issued (or revoked)
 * through the CA and recorded with its audit entry in the same transaction (a device batch in group
 * commits of policy.batch_group, each with its entry; an interrupted batch resumes
 * where its last commit ended). A failure (a revoked or expired CA, a suspended
 * party) writes nothing and leaves the request approved. progress (optional) is called
 * after each durable commit. A revocation is one commit with the issuing CA's CRL (an
 * ARL for a CA certificate) that carries it, each with its audit entry; the list's file
 * is written after. A recovery, each step its own audited
 * commit and the whole resumable: revokes the CA (cACompromise) onto the root's ARL
 * and publishes it; records its intent, then makes the successor CA
 * (smki_ca_successor: needs o->conf and o->home); re-issues under it every organisation
 * certificate of the compromised CA that was in use, in group commits, each with its
 * entry (a device CA's certificates are replaced from new CSRs: none re-issued). */
typedef void (*smki_ra_progress_fn)(size_t done, size_t total, void *arg);
typedef struct smki_ra_exec_opts_s {
    const smki_hsm_opts *hsm; /* to open the CA keys */
    smki_ra_progress_fn progress;
    void *progress_arg;
    const char *home;         /* revocation: the CRL/ARL is published under <home>/ca/<env>/ (NULL: store only) */
    const smki_conf *conf;    /* revocation: [ca.<env>] crl_hours / arl_hours (may be NULL) */
    uint64_t crl_number;      /* out: the number of the list a revocation published */
    char crl_path[4200];      /* out: where it was written */
    const char *via;          /* optional, as smki_ra_submit.via: each entry of an issuing execution says it */
    /* Optional: an issuing CA a long-running service keeps open (smki_ca_issuer_open),
     * used when it is the request's environment's current CA for the certificate
     * (same certificate as the store's record); otherwise the CA is opened here. */
    smki_ca_issuer *issuer;
} smki_ra_exec_opts;
SMKI_MUST_CHECK int smki_ra_request_execute(smki_ra *ra, const smki_ra_actor *by, uint64_t id, smki_ra_exec_opts *o);
/* The certificates an (even partly) executed request issued, as smki_ca_find gives them
 * to fn, for writing them out again after an interruption or handing them back: an
 * organisation or DCCKI request's one; a device batch's, one per issued CSR (found by its
 * key and Device ID; a key certified twice gives both), in CSR order. Revocations,
 * recoveries, policy changes and a request not executed yet: none (0). SMKI_E_CORRUPT for
 * an issued CSR whose certificate is not in the store. */
SMKI_MUST_CHECK int smki_ra_request_certs(smki_ra *ra, uint64_t id, smki_cert_fn_t fn, void *arg);
/* The CSR of a request (index 0 for an organisation request): *der points into a copy
 * the caller frees. */
SMKI_MUST_CHECK int smki_ra_request_csr(smki_ra *ra, uint64_t id, uint32_t index, uint8_t **der, size_t *len);
/* The certificate a request issued from its CSR of this index (0 for an organisation or
 * DCCKI request): SMKI_E_NOTFOUND while that CSR is not issued yet (or the request is
 * not one that issues). Read-only. */
SMKI_MUST_CHECK int smki_ra_request_cert(smki_ra *ra, uint64_t id, uint32_t index, smki_cert *out);

/* ---- The audit trail ---------------------------------------------------------------------- */
#define SMKI_AUDIT_HASH_LEN 32
typedef struct {
    uint64_t seq; /* 1, 2, ... */
    int64_t time;
    uint8_t prev[SMKI_AUDIT_HASH_LEN]; /* the hash of entry seq-1 (zeros for the first) */
    char operator_name[SMKI_RA_NAME_MAX];
    char action[48];
    char object[160];
    char detail[512];
    size_t sig_len;
    uint8_t sig[SMKI_SIG_MAX]; /* the operator's ECDSA signature (DER) over the entry's body */
    uint8_t hash[SMKI_AUDIT_HASH_LEN]; /* SHA-256 of body || signature: the next entry's prev */
} smki_audit_entry;

/* One stored audit entry decoded, its hash computed: the verifier's reader of bytes that
 * may have been tampered with. SMKI_E_CORRUPT for anything but one whole, canonical entry. */
SMKI_MUST_CHECK int smki_audit_entry_decode(const void *val, size_t len, smki_audit_entry *out);
/* Its body encoded again: the octets the operator signed. */
SMKI_MUST_CHECK int smki_audit_entry_body(const smki_audit_entry *e, uint8_t *out, size_t cap, size_t *len);

typedef int (*smki_audit_fn)(const smki_audit_entry *e, void *arg);
/* Entries from seq `from` (1: all) in order. */
SMKI_MUST_CHECK int smki_audit_each(smki_ra *ra, uint64_t from, smki_audit_fn fn, void *arg);
/* The head: the last entry's number and hash (0 and zeros for an empty log). */
SMKI_MUST_CHECK int smki_audit_head(smki_ra *ra, uint64_t *seq, uint8_t hash[SMKI_AUDIT_HASH_LEN]);

/* Verification. Every finding names the entry and what is wrong with it. */
typedef enum {
    SMKI_AUDIT_DAMAGED = 1,   /* a record that does not decode */
    SMKI_AUDIT_ALTERED,       /* an entry whose operator signature does not verify */
    SMKI_AUDIT_MISSING,       /* entries absent from the sequence: deleted */
    SMKI_AUDIT_MISPLACED,     /* an entry stored under another number: reordered or moved */
    SMKI_AUDIT_CHAIN,         /* an entry that does not carry its predecessor's hash: inserted, reordered or the
                                 predecessor altered */
    SMKI_AUDIT_UNKNOWN_OPERATOR,
    SMKI_AUDIT_CHECKPOINT,    /* a checkpoint whose signature or hash does not match the entries */
    SMKI_AUDIT_CHECKPOINT_MISSING,
    SMKI_AUDIT_TRUNCATED,     /* the head or a checkpoint names entries that are gone */
    SMKI_AUDIT_UNAPPROVED,    /* a request executed without enough valid, distinct, signed approvals */
    SMKI_AUDIT_CONTENT,       /* a request whose content in the store is not what its approvals signed */
    SMKI_AUDIT_REGISTRY,      /* an operator's key or standing in the registry is not what the trail recorded */
    SMKI_AUDIT_ANCHOR,        /* the trail is behind (or beside) the head anchored in the token: cut short */
} smki_audit_finding_kind;
const char *smki_audit_finding_name(int kind);

#define SMKI_AUDIT_FINDINGS_MAX 32
typedef struct {
    uint64_t entries, checkpoints, head_seq;
    uint64_t last_checkpoint; /* the highest checkpoint that verified */
    int anchor_checked;       /* the head anchored beside the checkpoint key was read (its key open: the PIN) */
    uint64_t anchor_seq;      /* the entry it anchors (0: none) */
    size_t n_findings, total_findings;
    struct {
        smki_audit_finding_kind kind;
        uint64_t seq;
        char message[240];
    } findings[SMKI_AUDIT_FINDINGS_MAX];
} smki_audit_report;
/* Walk the whole log: the chain, every operator signature (against the operators'
 * registered keys), every checkpoint (against checkpoint_pub, which must come from
 * outside the store: the token's public key), the expected checkpoints and the head;
 * the trail replayed (operators from their signed entries; every executed request's
 * approvals, content and count; the registry against it); and, with the checkpoint key
 * open (smki_ra_set_checkpoint_key: a token key needs the PIN), the head anchored
 * beside it: a trail shorter than its anchor, or not the one anchored, was cut short or
 * rewritten. Read-only: works on a store opened read-only. 0 when clean; SMKI_E_VERIFY
 * with the findings in rep otherwise. */
SMKI_MUST_CHECK int smki_audit_verify(smki_ra *ra, EVP_PKEY *checkpoint_pub, smki_audit_report *rep);

/* ---- Expiry --------------------------------------------------------------------------------- */
typedef struct {
    smki_cert cert;
    char party[SMKI_RA_NAME_MAX]; /* the Party of its EUI, "" if unregistered */
} smki_ra_expiring;
typedef int (*smki_ra_expiring_fn)(const smki_ra_expiring *x, void *arg);
/* In-use organisation certificates of env (NULL: any) whose notAfter falls within days
 * from now, ordered as the store finds them, with their Party. */
SMKI_MUST_CHECK int smki_ra_expiring_each(smki_ra *ra, const char *env, unsigned days, smki_ra_expiring_fn fn, void *arg);

/* ---- What the operators' tools hand over -------------------------------------------------- */
/* The RA of the store at location, to read: the store opened read-only (media that
 * cannot be written still verify). No store there, or one the RA has written nothing
 * in yet, is an empty registry: 0 with *ra (and *s) NULL. */
SMKI_MUST_CHECK int smki_ra_open_read(const char *location, const smki_ra_policy *p, smki_store **s, smki_ra **ra);

/* Register an operator (smki_ra_operator_add); when it is the registry's first (the
 * bootstrap), also bind the CA certificates of the ceremony that preceded every
 * operator to the trail (smki_ra_ca_adopt), *adopted how many. Should that second
 * step fail, the operator stays registered and the error says to run adopt-ca. */
SMKI_MUST_CHECK int smki_ra_operator_add_bootstrap(smki_ra *ra, const smki_ra_actor *by, const char *name,
                                                   EVP_PKEY *pub, size_t *adopted);

/* "central" or "device". */
const char *smki_range_kind_name(smki_range_kind k);
/* "central" or "device"; SMKI_E_USAGE naming the text otherwise. */
SMKI_MUST_CHECK int smki_range_kind_parse(const char *text, smki_range_kind *out);

/* An Authorised Subscriber from its text forms: type organisation, device, dccki-server
 * or dccki-client; role (organisation certificates; NULL: none) a Remote Party Role.
 * A party or env too long, or an unknown type or role, is SMKI_E_USAGE naming it. */
SMKI_MUST_CHECK int smki_ra_subscriber_make(const char *party, const char *type, const char *role, const char *env,
                                            smki_ra_subscriber *out);

/* A CA's key identifier (its SKI): 16 hex digits. */
SMKI_MUST_CHECK int smki_ra_ski_parse(const char *text, uint8_t ski[SMKI_KEYID_LEN]);

/* The CSRs of a device batch: each of files (in that order), then every regular file of
 * dir (NULL: none) whose name does not start with '.', in name order; each at most
 * SMKI_CSR_MAX octets, named in the error when it cannot be read. None at all is
 * SMKI_E_USAGE. Free with smki_ra_csr_set_free (also after a failure). */
typedef struct {
    uint8_t **ders;
    size_t *lens;
    size_t n;
} smki_ra_csr_set;
SMKI_MUST_CHECK int smki_ra_csr_set_read(const char *const *files, size_t n_files, const char *dir,
                                         smki_ra_csr_set *out);
void smki_ra_csr_set_free(smki_ra_csr_set *set);

/* The certificates request id issued (smki_ra_request_certs), written into dir (made if
 * missing; temporaries of a killed run swept) as <serial>.pem, each atomically. A file
 * already there with the same certificate is left (*present counts them): a re-run after
 * an interruption writes only what is missing. One that holds anything else is refused
 * (SMKI_E_EXISTS, "--force replaces it") unless force, then replaced. */
SMKI_MUST_CHECK int smki_ra_request_write_certs(smki_ra *ra, uint64_t id, const char *dir, int force, size_t *written,
                                                size_t *present);

#endif
