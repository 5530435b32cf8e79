/* What ca adds to base's DER writer (smki_writer_t, smki_wr_der...): RFC 5280 times,
 * the calendar, OBJECT IDENTIFIERs from dotted text. Encoding only, no crypto. */
#ifndef SMKI_CA_DER_H
#define SMKI_CA_DER_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* UTCTime for 1950..2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5), of a time
 * in seconds since 1970 (UTC). Years 1..9999. */
void smki_ca_derw_time(smki_writer_t *w, int64_t t);
/* The contents octets of an OBJECT IDENTIFIER from dotted text (X.690 8.19). */
int smki_ca_der_oid_from_text(const char *text, uint8_t *out, size_t cap, size_t *len);

/* ---- Calendar (proleptic Gregorian, UTC) ------------------------------------------- */
typedef struct {
    int y, mo, d, h, mi, s;
} der_civil;
der_civil smki_ca_der_civil_from_time(int64_t t);
int64_t smki_ca_der_time_from_civil(const der_civil *c);
/* t plus whole calendar years, minus one second: the last second of a period of
 * `years` starting at t (a 29 February start ends on 28 February). */
int64_t smki_ca_der_time_add_years_end(int64_t t, unsigned years);

#endif
