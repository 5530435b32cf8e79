/* Private to ra/: what the audit trail's writer (audit.c) and its verifier
 * (audit_verify.c) share: the checkpoint's signed message and the trail's head and
 * checkpoint interval as the store keeps them. */
#ifndef SMKI_RA_AUDIT_TRAIL_H
#define SMKI_RA_AUDIT_TRAIL_H

#include <stdint.h>

#include "ra_private.h"

#define SMKI_RA_CHECKPOINT_VERSION 1
#define SMKI_RA_AUDIT_BODY_MAX 1024
/* A checkpoint signs this label, then the sequence, time (8 octets each) and hash (32). */
#define SMKI_RA_CHECKPOINT_LABEL "smki-audit-checkpoint-v1"

/* The last entry's sequence and hash (0 and zeros for an empty trail). */
int smki_ra_audit_head_get(smki_txn *t, smki_ra *ra, uint64_t *seq, uint8_t hash[32]);
/* The checkpoint interval, fixed with the first entry (create: record it if absent). */
int smki_ra_audit_every_get(smki_txn *t, smki_ra *ra, unsigned *every, int create);

#endif
