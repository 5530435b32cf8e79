/* The CA's DER writer: bounded appends into a caller's buffer, nested lengths closed
 * in place, INTEGERs, times and OBJECT IDENTIFIERs as X.690 and RFC 5280 want them.
 * Encoding only: what it writes comes from the CA itself, never from outside. */
#include "der.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Contents longer than this do not occur in a certificate (a P-256 certificate is
 * well under 2 KiB); a reserved length is 4 octets: 0x83 and three. */
#define DERW_RESERVE 4
#define DERW_MAX_LEN 0xFFFFFFu

void derw_init(derw *w, uint8_t *buf, size_t cap)
{
    w->p = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = 0;
}

void derw_raw(derw *w, const void *p, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = 1;
        return;
    }
    if (n) memcpy(w->p + w->len, p, n);
    w->len += n;
}

void derw_byte(derw *w, uint8_t b)
{
    derw_raw(w, &b, 1);
}

static size_t len_octets(size_t n)
{
    return n < 0x80 ? 1 : n <= 0xFF ? 2 : n <= 0xFFFF ? 3 : 4;
}

static void put_len(uint8_t *at, size_t n)
{
    size_t k = len_octets(n);
    if (k == 1) {
        at[0] = (uint8_t)n;
        return;
    }
    at[0] = (uint8_t)(0x80 | (k - 1));
    for (size_t i = 1; i < k; i++) at[i] = (uint8_t)(n >> (8 * (k - 1 - i)));
}

void derw_tlv(derw *w, uint8_t tag, const void *content, size_t n)
{
    uint8_t head[1 + DERW_RESERVE];
    if (n > DERW_MAX_LEN) {
        w->overflow = 1;
        return;
    }
    head[0] = tag;
    put_len(head + 1, n);
    derw_raw(w, head, 1 + len_octets(n));
    derw_raw(w, content, n);
}

derw_mark derw_begin(derw *w, uint8_t tag)
{
    uint8_t head[1 + DERW_RESERVE] = {tag};
    derw_raw(w, head, sizeof head);
    return w->len;
}

void derw_end(derw *w, derw_mark m)
{
    if (w->overflow) return;
    if (m < DERW_RESERVE || m > w->len) { /* not a mark of this writer: a bug */
        w->overflow = 1;
        return;
    }
    size_t n = w->len - m;
    if (n > DERW_MAX_LEN) {
        w->overflow = 1;
        return;
    }
    size_t k = len_octets(n);
    uint8_t *len_at = w->p + m - DERW_RESERVE;
    put_len(len_at, n);
    if (k < DERW_RESERVE) memmove(len_at + k, w->p + m, n);
    w->len -= DERW_RESERVE - k;
}

void derw_uint(derw *w, const uint8_t *be, size_t n)
{
    while (n > 1 && be[0] == 0) {
        be++;
        n--;
    }
    if (n == 0) {
        derw_tlv(w, 0x02, "\0", 1);
        return;
    }
    derw_mark m = derw_begin(w, 0x02);
    if (be[0] & 0x80) derw_byte(w, 0x00);
    derw_raw(w, be, n);
    derw_end(w, m);
}

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

der_civil der_civil_from_time(int64_t t)
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

int64_t der_time_from_civil(const der_civil *c)
{
    return days_from_civil(c->y, c->mo, c->d) * 86400 + c->h * 3600 + c->mi * 60 + c->s;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

int64_t der_time_add_years_end(int64_t t, unsigned years)
{
    der_civil c = der_civil_from_time(t);
    c.y += (int)years;
    if (c.d > days_in_month(c.y, c.mo)) c.d = days_in_month(c.y, c.mo);
    return der_time_from_civil(&c) - 1;
}

void derw_time(derw *w, int64_t t)
{
    der_civil c = der_civil_from_time(t);
    if (c.y < 1 || c.y > 9999) {
        w->overflow = 1;
        return;
    }
    char buf[20];
    int n;
    if (c.y >= 1950 && c.y <= 2049)
        n = snprintf(buf, sizeof buf, "%02d%02d%02d%02d%02d%02dZ", c.y % 100, c.mo, c.d, c.h, c.mi, c.s);
    else
        n = snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02dZ", c.y, c.mo, c.d, c.h, c.mi, c.s);
    derw_tlv(w, c.y >= 1950 && c.y <= 2049 ? 0x17 : 0x18, buf, (size_t)n);
}

int derw_check(const derw *w, const char *what)
{
    ENSURE(!w->overflow, SMKI_E_INTERNAL, "%s does not fit in %zu octets", what, w->cap);
    return 0;
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

int der_oid_from_text(const char *text, uint8_t *out, size_t cap, size_t *len)
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
