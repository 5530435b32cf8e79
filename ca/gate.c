/* The CA's gate: in a store its RA governs, the CA writes only through a handle that
 * carries the RA's capability (ca/ca.h, smki_ca_gate). Every write of ca/ calls
 * smki_ca_write_allowed in the transaction that writes, so the mark and the write are seen
 * together: a store that becomes governed while a caller holds an ungated handle
 * refuses that caller's next write. */
#include <string.h>

#include "ca_private.h"
#include "ca_gate.h"

struct smki_ca_gate {
    int unused;
};
static const smki_ca_gate RA_GATE = {0};

/* In "cas", whose other keys are "<env>/<kind>[/<serial>]": no environment name is empty. */
#define GOVERNED_KEY "/governed-by-ra"

const smki_ca_gate *smki_ca_gate_for_ra(void)
{
    return &RA_GATE;
}

int smki_ca_govern(smki_txn *t, const smki_ca_db *db)
{
    ENSURE(t && db, SMKI_E_INTERNAL, "smki_ca_govern: missing argument");
    uint8_t one = 1;
    return smki_txn_put(t, db->cas, GOVERNED_KEY, sizeof GOVERNED_KEY - 1, &one, 1, 0);
}

int smki_ca_is_governed(smki_txn *t, const smki_ca_db *db, int *governed)
{
    const void *v;
    size_t n;
    int rc = smki_txn_get(t, db->cas, GOVERNED_KEY, sizeof GOVERNED_KEY - 1, &v, &n);
    *governed = rc == 0;
    return rc == SMKI_E_NOTFOUND ? 0 : rc;
}

int smki_ca_write_allowed(smki_txn *t, const smki_ca_db *db, const char *what)
{
    if (db->gate == &RA_GATE) return 0;
    int governed = 0;
    GUARD(smki_ca_is_governed(t, db, &governed));
    ENSURE(!governed, SMKI_E_REFUSED,
           "%s refused: this store has RA operators, so the CA acts only through the RA (smki_ra_* with a registered "
           "operator, or 'smki ca ...' / 'smki ra ...' with --operator), which applies its rules and writes the audit "
           "entry; the CA's ungated functions do not write here",
           what);
    return 0;
}

typedef struct {
    const smki_ca_db *db;
    const char *what;
} allowed_run;

static int allowed_txn(smki_txn *t, void *arg)
{
    allowed_run *a = arg;
    return smki_ca_write_allowed(t, a->db, a->what);
}

int smki_ca_write_allowed_now(const smki_ca_db *db, const char *what)
{
    if (db->gate == &RA_GATE) return 0;
    allowed_run a = {db, what};
    return smki_store_read(db->store, allowed_txn, &a);
}
