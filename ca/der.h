/* ca's private DER writer: tag, length and contents appended into a caller's buffer
 * with every write checked against its capacity. Encoding only, no crypto. Nested
 * structures reserve the longest length form and close by moving their contents
 * down to the minimal form (X.690 10.1), so one pass writes any nesting. */
#ifndef SMKI_CA_DER_H
#define SMKI_CA_DER_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

typedef struct {
    uint8_t *p;
    size_t cap;
    size_t len;
    int overflow; /* a write did not fit: everything after it was dropped */
} derw;

/* An open constructed TLV: where its contents start. */
typedef size_t derw_mark;

void derw_init(derw *w, uint8_t *buf, size_t cap);
void derw_raw(derw *w, const void *p, size_t n);
void derw_byte(derw *w, uint8_t b);
/* tag, minimal length, n octets of contents. */
void derw_tlv(derw *w, uint8_t tag, const void *content, size_t n);
/* Open a constructed TLV (SEQUENCE 0x30, SET 0x31, [n] 0xA0|n, or a primitive
 * wrapper like OCTET STRING whose contents are DER written next); close it with
 * derw_end, innermost first. */
derw_mark derw_begin(derw *w, uint8_t tag);
void derw_end(derw *w, derw_mark m);
/* INTEGER from a big-endian magnitude: leading zero octets dropped, a 00 added when
 * the top bit is set (so the value is never negative). */
void derw_uint(derw *w, const uint8_t *be, size_t n);
/* UTCTime for 1950..2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5), of a time
 * in seconds since 1970 (UTC). Years 1..9999. */
void derw_time(derw *w, int64_t t);
/* 0, or SMKI_E_INTERNAL naming what if a write overflowed (the buffer is sized for
 * the largest certificate the profiles allow: an overflow is a bug). */
int derw_check(const derw *w, const char *what);

/* The contents octets of an OBJECT IDENTIFIER from dotted text (X.690 8.19). */
int der_oid_from_text(const char *text, uint8_t *out, size_t cap, size_t *len);

/* ---- Calendar (proleptic Gregorian, UTC) ------------------------------------------- */
typedef struct {
    int y, mo, d, h, mi, s;
} der_civil;
der_civil der_civil_from_time(int64_t t);
int64_t der_time_from_civil(const der_civil *c);
/* t plus whole calendar years, minus one second: the last second of a period of
 * `years` starting at t (a 29 February start ends on 28 February). */
int64_t der_time_add_years_end(int64_t t, unsigned years);

#endif
