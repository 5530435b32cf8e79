/* The gate: one entry point per CA action (issue, batch, revoke, publish a CRL/ARL, the
 * ceremony) for every caller, the smki command and any service alike. Each decides
 * here, not in its caller, whether the action is the RA's (the test environment, and
 * every environment of a store with RA operators): then it needs a registered operator
 * whose key signs its audit entry, the Party's eligibility and the policy's direct
 * environments, and goes through the gated primitives of request.c and ca_actions.c
 * (the action and its entry in one transaction). Otherwise (a store without operators:
 * the bootstrap, or a lab environment of ra.unmanaged) it acts through the CA's handle
 * without the gate, which the CA itself refuses once the store is governed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra_private.h"

static int need_actor(const smki_ra_actor *by)
{
    ENSURE(by && by->name && *by->name && by->key, SMKI_E_USAGE,
           "this is an RA action: say who takes it with --operator NAME (and --operator-key KEY, or [operators] "
           "NAME = KEY in smki.conf)");
    return 0;
}

static int is_managed(smki_ra *ra, int *managed)
{
    size_t operators = 0;
    GUARD(smki_ra_operator_count(ra, &operators));
    *managed = operators > 0;
    return 0;
}

int smki_ra_needs_operator(smki_ra *ra, const char *env, int issues, int *needs)
{
    ENSURE(ra && needs, SMKI_E_INTERNAL, "smki_ra_needs_operator: missing argument");
    int managed = 0;
    GUARD(is_managed(ra, &managed));
    *needs = managed || (issues && env && strcmp(env, "test") == 0);
    return 0;
}

/* ---- One certificate ----------------------------------------------------------------------------- */

static int issue_with(smki_ra *ra, const smki_ra_actor *by, const smki_ra_issue_req *r, smki_profile_id profile,
                      smki_ca_issuer *is, smki_cert *out, char party_used[SMKI_PARTY_MAX])
{
    int tls = profile == SMKI_PROFILE_DCCKI_SERVER || profile == SMKI_PROFILE_DCCKI_CLIENT;
    int gated = 0;
    GUARD(smki_ra_issue_gate(ra, r->env, r->party, "certificates here", &gated));
    smki_tls_req tr = {r->csr, profile, r->party, r->cn, r->dns, r->n_dns, r->ips, r->n_ips, 0};
    smki_issue_req q = {r->csr, profile, r->role, r->eui, r->cn, 0, 0};
    if (!gated && tls) return smki_ca_issue_tls(is, &ra->ca_view, &tr, out, party_used);
    if (!gated) {
        /* A second in-use device certificate for one key and Device ID only when asked for. */
        if (!r->allow_duplicate_key) GUARD(smki_ca_check_new_device(is, &ra->ca_view, &q));
        return smki_ca_issue(is, &ra->ca_view, &q, out);
    }
    GUARD(need_actor(by));
    ra_direct_opts o = {!r->allow_duplicate_key, r->via, r->party, r->submission_key};
    if (tls) {
        GUARD(smki_ra_issue_tls_direct_with(ra, by, is, r->env, &tr, &o, out));
        snprintf(party_used, SMKI_PARTY_MAX, "%s", r->party);
        return 0;
    }
    smki_ra_eligibility e = {r->party, r->env, profile, r->role, r->eui, r->csr, r->subscriber_asks};
    return smki_ra_issue_direct_with(ra, by, is, &e, r->cn, &o, out);
}

/* What the request holds must fit its profile. */
static int check_fields(const smki_ra_issue_req *r, smki_profile_id profile)
{
    int tls = profile == SMKI_PROFILE_DCCKI_SERVER || profile == SMKI_PROFILE_DCCKI_CLIENT;
    ENSURE(!tls || (r->role < 0 && !r->eui), SMKI_E_USAGE,
           "a DCCKI certificate has no Remote Party Role or EUI-64: drop --role/--eui");
    ENSURE(tls || (!r->n_dns && !r->n_ips), SMKI_E_USAGE,
           "--dns and --ip are for --profile dccki-server or dccki-client: a %s certificate names no endpoint",
           smki_profile_get(profile)->name);
    return 0;
}

int smki_ra_issue(smki_ra *ra, const smki_ra_actor *by, const smki_ra_issue_req *r, smki_cert *out,
                  char party_used[SMKI_PARTY_MAX])
{
    ENSURE(ra && r && r->env && r->csr && out, SMKI_E_INTERNAL, "smki_ra_issue: missing argument");
    char unused[SMKI_PARTY_MAX];
    if (!party_used) party_used = unused;
    party_used[0] = '\0';
    smki_profile_id profile;
    GUARD(smki_ca_leaf_profile(r->csr, r->profile, &profile));
    GUARD(check_fields(r, profile));
    smki_ca_issuer *own = NULL;
    int fits = 0;
    if (r->issuer) GUARD(smki_ra_issuer_is_current(ra, r->issuer, r->env, profile, &fits));
    if (!fits) GUARD(smki_ca_issuer_open(&ra->ca_view, r->env, profile, r->hsm, &own));
    int rc = issue_with(ra, by, r, profile, fits ? r->issuer : own, out, party_used);
    smki_ca_issuer_free(own);
    return rc;
}

/* ---- A batch of device certificates ---------------------------------------------------------------- */

int smki_ra_batch(smki_ra *ra, const smki_ra_actor *by, const smki_ra_batch_req *r, const smki_ca_batch_input *in,
                  const smki_ca_batch_opts *o, smki_ca_batch_report **out)
{
    ENSURE(ra && r && r->env && in && o && out, SMKI_E_INTERNAL, "smki_ra_batch: missing argument");
    *out = NULL;
    int gated = 0;
    GUARD(smki_ra_issue_gate(ra, r->env, r->party, "device certificates", &gated));
    if (gated) GUARD(need_actor(by));
    smki_ca_issuer *is = NULL;
    GUARD(smki_ca_issuer_open(&ra->ca_view, r->env, SMKI_PROFILE_DEVICE, r->hsm, &is));
    if (r->on_start) r->on_start(smki_ca_batch_input_count(in), r->start_arg);
    int rc = gated ? smki_ra_batch_direct_as(ra, by, is, r->party, r->env, r->subscriber_asks, r->via, in, o,
                                                     out)
                   : smki_ca_batch_run(is, &ra->ca_view, in, o, out);
    smki_ca_issuer_free(is);
    return rc;
}

/* ---- Revocation ------------------------------------------------------------------------------------- */

/* The issuer as named: 16 hex digits are its SKI; otherwise a CA kind, env's current one. */
static int issuer_of(smki_ra *ra, const char *env, const char *text, uint8_t ski[SMKI_KEYID_LEN])
{
    size_t got = 0;
    if (strlen(text) == 2 * SMKI_KEYID_LEN && smki_hex_decode(text, strlen(text), ski, SMKI_KEYID_LEN, &got) == 0 &&
        got == SMKI_KEYID_LEN)
        return 0;
    smki_error_clear();
    smki_ca_kind k;
    GUARD(smki_ca_kind_parse(text, &k));
    smki_ca_record *rec = malloc(sizeof *rec);
    ENSURE(rec, SMKI_E_NOMEM, "out of memory");
    int rc = smki_ca_get(&ra->ca_view, env, k, rec);
    if (rc == 0) memcpy(ski, rec->cert.ski, SMKI_KEYID_LEN);
    free(rec);
    return rc;
}

int smki_ra_revoke(smki_ra *ra, const smki_ra_actor *by, const smki_ra_revoke_req *r, smki_cert *out,
                   smki_revocation *rev, int *audited)
{
    ENSURE(ra && r && r->env && r->serial && out, SMKI_E_INTERNAL, "smki_ra_revoke: missing argument");
    if (audited) *audited = 0;
    uint8_t ski[SMKI_KEYID_LEN];
    if (r->issuer) GUARD(issuer_of(ra, r->env, r->issuer, ski));
    int managed = 0;
    GUARD(smki_ra_unmanaged_check(ra, r->env, "revocation", &managed));
    smki_revoke_req q = {r->serial, r->issuer ? ski : NULL, r->env, r->reason, 0};
    if (!managed) return smki_ca_revoke(&ra->ca_view, &q, out, rev);
    GUARD(need_actor(by));
    GUARD(smki_ra_revoke_direct(ra, by, &q, out, rev));
    if (audited) *audited = 1;
    return 0;
}

/* ---- CRLs and ARLs ------------------------------------------------------------------------------------ */

/* A CRL is an issuing CA's list, an ARL a root's. named: the SKI the CA was named by. */
static int list_sort_check(const char *named, smki_ca_kind k, int arl)
{
    ENSURE(smki_ca_kind_is_root(k) == arl, SMKI_E_USAGE, "%s%s%s is %s: its list is published by 'smki ca %s'",
           named ? "the CA of SKI " : "", named ? named : "", named ? "" : smki_ca_kind_name(k),
           arl ? "an issuing CA" : "a root", arl ? "crl" : "arl");
    return 0;
}

static int publish_one(smki_ra *ra, const smki_ra_actor *by, int managed, const smki_ra_lists_req *r,
                       const smki_ca_selection *sel, smki_ca_kind k, smki_crl *out)
{
    int64_t interval = 0;
    GUARD(smki_ca_crl_interval(r->conf, r->env, k, &interval));
    smki_crl_opts o = {r->hsm, r->home, r->now, interval, NULL, NULL};
    if (sel && sel->by_ski)
        return managed ? smki_ra_crl_publish_ski(ra, by, r->env, sel->ski, &o, out)
                       : smki_ca_crl_publish_ski(&ra->ca_view, r->env, sel->ski, &o, out);
    return managed ? smki_ra_crl_publish(ra, by, r->env, k, &o, out)
                   : smki_ca_crl_publish(&ra->ca_view, r->env, k, &o, out);
}

int smki_ra_lists_publish(smki_ra *ra, const smki_ra_actor *by, const smki_ra_lists_req *r,
                          smki_crl out[SMKI_CA_KIND_COUNT], size_t *n)
{
    ENSURE(ra && r && r->env && out && n, SMKI_E_INTERNAL, "smki_ra_lists_publish: missing argument");
    *n = 0;
    memset(out, 0, SMKI_CA_KIND_COUNT * sizeof *out);
    int managed = 0;
    GUARD(is_managed(ra, &managed));
    if (managed) GUARD(need_actor(by));
    int rc = 0;
    if (r->ca) { /* one CA, named by its kind or its SKI */
        smki_ca_selection sel;
        smki_ca_kind k;
        size_t got = 0;
        uint8_t ski[SMKI_KEYID_LEN];
        int by_ski = strlen(r->ca) == 2 * SMKI_KEYID_LEN &&
                     smki_hex_decode(r->ca, strlen(r->ca), ski, sizeof ski, &got) == 0 && got == SMKI_KEYID_LEN;
        smki_error_clear();
        if (by_ski) {
            GUARD(smki_ca_select(&ra->ca_view, r->env, r->ca, &sel));
            GUARD(list_sort_check(r->ca, sel.kind, r->arl));
            k = sel.kind;
        } else {
            GUARD(smki_ca_kind_parse(r->ca, &k));
            GUARD(list_sort_check(NULL, k, r->arl));
            memset(&sel, 0, sizeof sel);
        }
        rc = publish_one(ra, by, managed, r, &sel, k, &out[0]);
        if (rc == 0) *n = 1;
        return rc;
    }
    smki_ca_record *rec = malloc(sizeof *rec);
    ENSURE(rec, SMKI_E_NOMEM, "out of memory");
    for (int k = 0; rc == 0 && k < SMKI_CA_KIND_COUNT; k++) {
        if (smki_ca_kind_is_root((smki_ca_kind)k) != r->arl) continue;
        int has = smki_ca_get(&ra->ca_view, r->env, (smki_ca_kind)k, rec); /* only the CAs env has */
        if (has == SMKI_E_NOTFOUND) {
            smki_error_clear();
            continue;
        }
        rc = has;
        if (rc == 0) rc = publish_one(ra, by, managed, r, NULL, (smki_ca_kind)k, &out[*n]);
        if (rc == 0) ++*n;
    }
    free(rec);
    if (rc == 0 && *n == 0)
        rc = SMKI_FAIL(SMKI_E_NOTFOUND, "environment %s has no CA yet: run 'smki ca init --env %s' first", r->env,
                       r->env);
    if (rc < 0) {
        for (size_t i = 0; i < *n; i++) smki_crl_clear(&out[i]);
        *n = 0;
    }
    return rc;
}
