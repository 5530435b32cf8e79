/* policy's private DER reader over the bounded cursor: one TLV at a time with the
 * length rules of DER (X.690 10.1: definite, minimal), and a strict walk that checks
 * every TLV of an encoding. Failures are SMKI_E_INPUT with the offset in the message. */
#ifndef SMKI_POLICY_DER_H
#define SMKI_POLICY_DER_H

#include "base/base.h"

typedef struct {
    uint8_t tag;
    size_t offset;        /* of the tag octet, from base */
    const uint8_t *start; /* the tag octet */
    size_t total;         /* tag, length and contents */
    smki_cursor_t body;   /* the contents */
} der_tlv;

/* One TLV at the cursor (single-octet tags only); base is where offsets count from. */
int der_read(smki_cursor_t *c, const uint8_t *base, der_tlv *t);
/* The same, but tolerating a long-form length where the short form fits (BER): for
 * finding a structure whose strictness is judged separately. */
int ber_read(smki_cursor_t *c, const uint8_t *base, der_tlv *t);
/* The same, requiring the tag; what names the field in the message. */
int der_expect(smki_cursor_t *c, const uint8_t *base, uint8_t tag, const char *what, der_tlv *t);
/* Every TLV in c, recursively, is DER: lengths as above; constructed form only for
 * SEQUENCE, SET and context/application tags; BOOLEAN 00 or FF; minimal INTEGERs;
 * BIT STRING unused bits at most 7 and zero; NULL empty; OID subidentifiers minimal. */
int der_check_strict(smki_cursor_t c, const uint8_t *base);

#endif
