/* The RA's side of the CA's gate (ca/ca.h, smki_ca_gate): what makes a store governed
 * and the handle that may write in one. For ra/ only: ra/CMakeLists.txt defines
 * SMKI_RA_INTERNAL for its own files, and any other file that includes this header does
 * not compile. Everything else reaches the CA's writes in a governed store through the
 * smki_ra_* entry points. */
#ifndef SMKI_CA_GATE_H
#define SMKI_CA_GATE_H

#if !defined(SMKI_RA_INTERNAL) && !defined(SMKI_CA_INTERNAL)
#error "ca/ca_gate.h is the RA's capability: only ra/ (and ca/ itself) may include it"
#endif

#include "ca.h"

/* The gate the RA puts on its own handle (db->gate): with it, the CA writes in a
 * governed store. */
const smki_ca_gate *smki_ca_gate_for_ra(void);

/* Marks the store governed, in the RA's transaction that registers an operator (or, for
 * a store registered before the mark existed, when the RA opens it). Idempotent. */
int smki_ca_govern(smki_txn *t, const smki_ca_db *db);
/* Whether the store is governed, as t sees it. */
int smki_ca_is_governed(smki_txn *t, const smki_ca_db *db, int *governed);

#endif
