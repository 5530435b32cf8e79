/* policy: the pure rules of SMKI, no I/O. For now: EUI-64 identifiers and the
 * IEEE MA-L/MA-M/MA-S ranges they are allocated from (reference §2). Later issues
 * add roles, certificate profiles, the linter, eligibility and thresholds. */
#ifndef SMKI_POLICY_H
#define SMKI_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ---- EUI-64 ------------------------------------------------------------------ */
typedef struct {
    uint8_t b[8];
} smki_eui64_t;

typedef enum {
    SMKI_EUI64_PLAIN = 0,  /* 90B3D51F30010000 */
    SMKI_EUI64_HYPHEN = 1, /* 90-B3-D5-1F-30-01-00-00 (DUIS form) */
    SMKI_EUI64_COLON = 2,  /* 90:B3:D5:1F:30:01:00:00 */
} smki_eui64_style;

#define SMKI_EUI64_TEXT_MAX 24 /* 23 characters of the hyphenated form + NUL */

/* Accepts exactly: 16 hex digits; or 8 two-digit groups joined by '-'; or by ':'.
 * Either case. Nothing else: no surrounding space, no 0x, no mixed separators. A
 * refusal (SMKI_E_USAGE) quotes the input. */
int smki_eui64_parse(const char *text, smki_eui64_t *out);
/* Uppercase, as DUIS and the DCC's tools write them. */
void smki_eui64_format(const smki_eui64_t *id, smki_eui64_style style, char out[SMKI_EUI64_TEXT_MAX]);
int smki_eui64_cmp(const smki_eui64_t *a, const smki_eui64_t *b);
uint64_t smki_eui64_to_u64(const smki_eui64_t *id);
smki_eui64_t smki_eui64_from_u64(uint64_t v);

/* A block of EUI-64s sharing an IEEE prefix: MA-L 24 bits, MA-M 28, MA-S 36.
 * first..last inclusive. */
typedef struct {
    smki_eui64_t first;
    smki_eui64_t last;
    unsigned prefix_bits;
} smki_eui64_range_t;

/* The block of prefix_bits (24, 28 or 36 only) that contains `id`; the bits of `id`
 * below the prefix must be zero (a block is named by its first ID). */
int smki_eui64_range_from_prefix(const smki_eui64_t *id, unsigned prefix_bits, smki_eui64_range_t *out);
/* "90B3D51F3/36", "90-B3-D5-1F-30-00-00-00/36", "90B3D5/24": an EUI-64 (any
 * accepted form) or the prefix's hex digits alone (6, 7 or 9 digits), then /bits. */
int smki_eui64_range_parse(const char *text, smki_eui64_range_t *out);
/* "90B3D51F30000000/36" */
void smki_eui64_range_format(const smki_eui64_range_t *r, char out[48]);
int smki_eui64_range_contains(const smki_eui64_range_t *r, const smki_eui64_t *id);
/* Number of IDs in the block (2^(64-prefix_bits)). */
uint64_t smki_eui64_range_size(const smki_eui64_range_t *r);
/* The n-th ID of the block (0-based); refuses n beyond the block. */
int smki_eui64_range_nth(const smki_eui64_range_t *r, uint64_t n, smki_eui64_t *out);
/* id + delta, refusing to leave the block. */
int smki_eui64_range_add(const smki_eui64_range_t *r, const smki_eui64_t *id, uint64_t delta, smki_eui64_t *out);
/* Is `inner` wholly inside `outer`? Do two blocks overlap? */
int smki_eui64_range_within(const smki_eui64_range_t *inner, const smki_eui64_range_t *outer);
int smki_eui64_range_overlaps(const smki_eui64_range_t *a, const smki_eui64_range_t *b);

#endif
