/* ra: hooks for tests only (never included by the library's callers): the RA's
 * databases, for tests that tamper with them directly. */
#ifndef SMKI_RA_TEST_H
#define SMKI_RA_TEST_H

#include "store/store.h"

#include "ra.h"

/* The databases, for tests that tamper with them directly. */
typedef struct {
    smki_db parties, users, ranges, subscribers, operators, requests, csrs, demand, meta, audit, checkpoints;
} smki_ra_dbs;
const smki_ra_dbs *smki_ra_databases(const smki_ra *ra);

#endif
