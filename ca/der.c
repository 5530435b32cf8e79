/* What the CA adds to base's DER writer: times as RFC 5280 wants them, the calendar
 * they are computed with, and OBJECT IDENTIFIERs from dotted text. Encoding only:
 * what it writes comes from the CA itself, never from outside. */
#include "der.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Calendar: days from civil and back (the proleptic Gregorian algorithm of
 * H. Hinnant, "chrono-Compatible Low-Level Date Algorithms"). No locale, no libc
 * time zone state, good for year 9999. ------------------------------------------- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

der_civil smki_ca_der_civil_from_time(int64_t t)
{
    der_civil c;
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t secs = t - days * 86400;
    civil_from_days(days, &c.y, &c.mo, &c.d);
    c.h = (int)(secs / 3600);
    c.mi = (int)(secs / 60 % 60);
    c.s = (int)(secs % 60);
    return c;
}

int64_t smki_ca_der_time_from_civil(const der_civil *c)
{
    return days_from_civil(c->y, c->mo, c->d) * 86400 + c->h * 3600 + c->mi * 60 + c->s;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

int64_t smki_ca_der_time_add_years_end(int64_t t, unsigned years)
{
    der_civil c = smki_ca_der_civil_from_time(t);
    c.y += (int)years;
    if (c.d > days_in_month(c.y, c.mo)) c.d = days_in_month(c.y, c.mo);
    return smki_ca_der_time_from_civil(&c) - 1;
}

void smki_ca_derw_time(smki_writer_t *w, int64_t t)
{
    der_civil c = smki_ca_der_civil_from_time(t);
    if (c.y < 1 || c.y > 9999) {
        smki_wr_invalid(w);
        return;
    }
    char buf[20];
    int n;
    if (c.y >= 1950 && c.y <= 2049)
        n = snprintf(buf, sizeof buf, "%02d%02d%02d%02d%02d%02dZ", c.y % 100, c.mo, c.d, c.h, c.mi, c.s);
    else
        n = snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02dZ", c.y, c.mo, c.d, c.h, c.mi, c.s);
    smki_wr_der(w, c.y >= 1950 && c.y <= 2049 ? 0x17 : 0x18, buf, (size_t)n);
}

/* ---- OBJECT IDENTIFIER ------------------------------------------------------------ */

static int put_arc(uint64_t v, uint8_t *out, size_t cap, size_t *len)
{
    uint8_t tmp[10];
    size_t k = 0;
    do {
        tmp[k++] = (uint8_t)(v & 0x7F);
        v >>= 7;
    } while (v);
    ENSURE(k <= cap - *len, SMKI_E_USAGE, "OBJECT IDENTIFIER too long");
    while (k) {
        uint8_t b = tmp[--k];
        out[(*len)++] = (uint8_t)(k ? b | 0x80 : b);
    }
    return 0;
}

int smki_ca_der_oid_from_text(const char *text, uint8_t *out, size_t cap, size_t *len)
{
    ENSURE(text && *text, SMKI_E_USAGE, "no OBJECT IDENTIFIER given");
    uint64_t arcs[40];
    size_t n = 0;
    const char *p = text;
    while (*p) {
        ENSURE(n < sizeof arcs / sizeof arcs[0], SMKI_E_USAGE, "OID '%.64s' has too many arcs", text);
        ENSURE(*p >= '0' && *p <= '9', SMKI_E_USAGE, "'%.64s' is not an OID (dotted decimal)", text);
        ENSURE(!(p[0] == '0' && p[1] >= '0' && p[1] <= '9'), SMKI_E_USAGE, "OID '%.64s': an arc with a leading zero",
               text);
        uint64_t v = 0;
        while (*p >= '0' && *p <= '9') {
            ENSURE(v <= (UINT64_MAX - 9) / 10, SMKI_E_USAGE, "OID '%.64s': an arc is too large", text);
            v = v * 10 + (uint64_t)(*p++ - '0');
        }
        arcs[n++] = v;
        if (*p == '.') {
            p++;
            ENSURE(*p, SMKI_E_USAGE, "OID '%.64s' ends with '.'", text);
        } else {
            ENSURE(!*p, SMKI_E_USAGE, "'%.64s' is not an OID (dotted decimal)", text);
        }
    }
    ENSURE(n >= 2 && arcs[0] <= 2 && (arcs[0] == 2 || arcs[1] <= 39), SMKI_E_USAGE,
           "OID '%.64s': needs two arcs, the first 0..2 (X.660)", text);
    ENSURE(arcs[1] <= UINT64_MAX - 80, SMKI_E_USAGE, "OID '%.64s': the second arc is too large", text);
    *len = 0;
    GUARD(put_arc(arcs[0] * 40 + arcs[1], out, cap, len));
    for (size_t i = 2; i < n; i++) GUARD(put_arc(arcs[i], out, cap, len));
    return 0;
}
