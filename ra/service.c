/* Actions of the services that build on the RA (the gateway): each one an RA action,
 * taken by a registered operator and recorded in the same trail, in the same write
 * transaction as the service's own change (ra.h, smki_ra_service_act). */
#include <string.h>

#include "ra_private.h"

typedef struct {
    const smki_ra_service_note *note;
    smki_ra_service_fn fn;
    void *arg;
} service_run;

static int service_txn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    (void)ra;
    service_run *r = arg;
    GUARD(r->fn(t, r->arg));
    snprintf(note->action, sizeof note->action, "%s", r->note->action);
    snprintf(note->object, sizeof note->object, "%s", r->note->object ? r->note->object : "");
    snprintf(note->detail, sizeof note->detail, "%s", r->note->detail ? r->note->detail : "");
    return 0;
}

/* SERVICE.VERB in [a-z0-9-]: the dot keeps a service's entries apart from the RA's own
 * actions (operator-add, request-approve ...), which the trail replays: no service can
 * write an entry the RA would read as one of its own. */
static int check_action(const char *a)
{
    size_t n = a ? strlen(a) : 0, dots = 0;
    int ok = n >= 3 && n < sizeof ((ra_note *)0)->action && a[0] != '.' && a[n - 1] != '.';
    for (size_t i = 0; ok && i < n; i++) {
        if (a[i] == '.') dots++;
        else ok = (a[i] >= 'a' && a[i] <= 'z') || (a[i] >= '0' && a[i] <= '9') || a[i] == '-';
    }
    ENSURE(ok && dots == 1, SMKI_E_USAGE,
           "service action '%.60s': write SERVICE.VERB in a-z, 0-9 and '-' (e.g. gateway.device-add), at most 47 "
           "characters",
           a ? a : "(none)");
    return 0;
}

int smki_ra_service_act(smki_ra *ra, const smki_ra_actor *by, const smki_ra_service_note *note, smki_ra_service_fn fn,
                        void *arg)
{
    ENSURE(ra && note && fn, SMKI_E_INTERNAL, "smki_ra_service_act: missing argument");
    GUARD(check_action(note->action));
    ENSURE(by && by->name && by->key, SMKI_E_USAGE,
           "no operator: %s is an RA action, taken by a registered operator with their own key (--operator NAME "
           "--operator-key KEY)",
           note->action);
    ENSURE(!note->object || strlen(note->object) < sizeof ((ra_note *)0)->object, SMKI_E_USAGE,
           "service action %s: its object is too long", note->action);
    service_run r = {note, fn, arg};
    return smki_ra_act(ra, by, 0, service_txn, &r);
}

smki_store *smki_ra_store(smki_ra *ra)
{
    return ra ? ra->store : NULL;
}
