/* A half-made ceremony's keys removed through the RA's gate. In a store without
 * operators the CA's removal alone; in an RA-governed store the CA's removal
 * (smki_ca_orphan_key_remove: only a key of a CA the environment has still to make, the
 * SO PIN proved) taken by a registered operator and recorded in the trail
 * ("ca-key-remove"). The operator and the trail are checked before the token changes. */
#include <stdio.h>
#include <string.h>

#include "ra_private.h"

typedef struct {
    smki_ra *ra;
    const smki_ra_actor *by;
} ready_run;

static int ready_txn(smki_txn *t, void *arg)
{
    ready_run *r = arg;
    GUARD(smki_ra_check_actor(t, r->ra, r->by));
    return smki_ra_audit_ready(t, r->ra);
}

static int removed_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    (void)t, (void)ra;
    const smki_ca_orphan *o = arg;
    snprintf(note->action, sizeof note->action, "ca-key-remove");
    snprintf(note->object, sizeof note->object, "key %.64s on token %.63s", o->label, o->token);
    snprintf(note->detail, sizeof note->detail,
             "the %s key of a half-made ceremony (no CA record holds it), removed with the SO PIN",
             smki_ca_kind_name(o->kind));
    return 0;
}

int smki_ra_ca_key_remove(smki_ra *ra, const smki_ra_actor *by, const char *env, const smki_conf *conf,
                          const smki_hsm_opts *hsm, const char *label, const char *so_pin, smki_ca_orphan *out)
{
    ENSURE(ra && env && out, SMKI_E_INTERNAL, "smki_ra_ca_key_remove: missing argument");
    size_t operators = 0;
    GUARD(smki_ra_operator_count(ra, &operators));
    /* Before the first operator there is no trail: the CA's removal alone. */
    if (operators == 0) return smki_ca_orphan_key_remove(&ra->ca_view, env, conf, hsm, label, so_pin, out);
    ENSURE(by && by->name && by->key, SMKI_E_USAGE,
           "no operator: in a store with an RA, removing a ceremony key is taken by a registered operator with "
           "their own key (--operator NAME --operator-key KEY)");
    ready_run r = {ra, by};
    GUARD(smki_store_read(ra->store, ready_txn, &r));
    GUARD(smki_ca_orphan_key_remove(&ra->ca, env, conf, hsm, label, so_pin, out));
    int rc = smki_ra_act(ra, by, 0, removed_fn, out);
    if (rc < 0)
        return smki_error_wrap("key %s is removed from token %s, but its audit entry was not written", out->label,
                               out->token);
    return 0;
}
