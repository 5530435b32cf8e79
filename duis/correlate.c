/* duis/correlate.c: is this GBCS pre-command the one the Service Request asked for?
 * ("parse and correlate", DUIS 3.x: the User checks before it signs). The RequestID
 * names originator, target and counter; the Service Reference Variant names the GBCS
 * use case, so the message code; a future-dated request's execution time is in the
 * payload, in the form of the use case's payload (DLMS, ZigBee or ASN.1). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "duis_private.h"

/* The variants of the RTDS vectors (../shared/vectors/duis/requests) with the message
 * codes their pre-commands and commands carry (GBCS Table 13.3.4 use cases). Rows are
 * data: add a variant by adding a row. */
static const smki_duis_srv SRVS[] = {
    {"1.1.1", 0x0019, "ECS01a", SMKI_DUIS_TIME_DLMS},
    {"1.1.1", 0x006B, "GCS01a", SMKI_DUIS_TIME_ZIGBEE},
    {"2.2", 0x0007, "CS01a", SMKI_DUIS_TIME_NONE},
    {"3.1", 0x0021, "ECS10", SMKI_DUIS_TIME_NONE},
    {"4.8.1", 0x0037, "ECS22b", SMKI_DUIS_TIME_NONE},
    {"4.14", 0x0034, "ECS21b", SMKI_DUIS_TIME_NONE},
    {"6.15.1", 0x0102, "CS02b (Supplier by Supplier)", SMKI_DUIS_TIME_ASN1},
    {"6.15.1", 0x0103, "CS02b (Network Operator by Network Operator)", SMKI_DUIS_TIME_ASN1},
    {"6.17", 0x000A, "CS02c", SMKI_DUIS_TIME_NONE},
    {"6.23", 0x0107, "CS02b (Supplier by Transitional CoS)", SMKI_DUIS_TIME_ASN1},
    {"6.24.1", 0x0008, "CS02a (MAC)", SMKI_DUIS_TIME_NONE},
    {"7.1", 0x004F, "ECS42", SMKI_DUIS_TIME_NONE},
    {"8.1.1", 0x0062, "ECS70 (Commission)", SMKI_DUIS_TIME_NONE},
    {"8.7.1", 0x000D, "CS03A1", SMKI_DUIS_TIME_NONE},
    {"8.12.1", 0x0003, "CCS03", SMKI_DUIS_TIME_NONE},
    {"11.2", 0x0129, "CS08", SMKI_DUIS_TIME_NONE},
};

const smki_duis_srv *smki_duis_srvs(size_t *n)
{
    *n = sizeof SRVS / sizeof SRVS[0];
    return SRVS;
}

/* DUIS: an ExecutionDateTime of 3000-12-31T00:00:00Z cancels a future-dated command. */
#define DUIS_CANCEL_TIME 32535129600LL
#define ZIGBEE_EPOCH 946684800LL /* 2000-01-01T00:00:00Z */

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t k)
{
    for (size_t i = 0; k <= n && i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0) return 1;
    return 0;
}

/* DLMS date-time octet string (09 0C): year(2) month day weekday hour minute second
 * hundredths deviation(2) status. The weekday and what follows the seconds vary. */
static int has_dlms_time(const uint8_t *c, size_t n, const struct tm *tm, int cancel)
{
    for (size_t i = 0; i + 14 <= n; i++) {
        const uint8_t *p = c + i;
        if (p[0] != 0x09 || p[1] != 0x0C) continue;
        if (cancel) {
            static const uint8_t ff[9] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
            if (memcmp(p + 2, ff, 9) == 0) return 1;
            continue;
        }
        unsigned year = smki_get_be16(p + 2);
        if (year == (unsigned)tm->tm_year + 1900 && p[4] == tm->tm_mon + 1 && p[5] == tm->tm_mday &&
            p[7] == tm->tm_hour && p[8] == tm->tm_min && p[9] == tm->tm_sec)
            return 1;
    }
    return 0;
}

static int has_time(smki_duis_time_form form, const uint8_t *c, size_t n, time_t t, int cancel)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return 0;
    switch (form) {
    case SMKI_DUIS_TIME_DLMS: return has_dlms_time(c, n, &tm, cancel);
    case SMKI_DUIS_TIME_ZIGBEE: {
        /* UTC seconds since 2000, little-endian; FEFFFFFF is "cancel". */
        uint8_t le[4] = {0xFE, 0xFF, 0xFF, 0xFF};
        if (!cancel) {
            long long s = (long long)t - ZIGBEE_EPOCH;
            if (s < 0 || s > 0xFFFFFFFDLL) return 0;
            for (int i = 0; i < 4; i++) le[i] = (uint8_t)(s >> (8 * i));
        }
        return contains(c, n, le, 4);
    }
    case SMKI_DUIS_TIME_ASN1: {
        /* GeneralizedTime digits; 99991231235959 is "cancel". */
        char g[64];
        if (cancel)
            snprintf(g, sizeof g, "99991231235959");
        else
            snprintf(g, sizeof g, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
        return contains(c, n, (const uint8_t *)g, 14);
    }
    case SMKI_DUIS_TIME_NONE: break;
    }
    return 0;
}

static int check_eui(const char *field, const smki_eui64_t *want, const uint8_t got[8])
{
    smki_eui64_t g = smki_gbcs_eui(got);
    if (smki_eui64_cmp(want, &g) == 0) return 0;
    char a[SMKI_EUI64_TEXT_MAX], b[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(want, SMKI_EUI64_HYPHEN, a);
    smki_eui64_format(&g, SMKI_EUI64_HYPHEN, b);
    return SMKI_FAIL(SMKI_E_REFUSED, "%s: the request says %s, the pre-command holds %s", field, a, b);
}

static int check_code(const smki_duis_info *r, const smki_gbcs_signing *g, const smki_duis_srv **row)
{
    char codes[128] = "";
    int known = 0;
    for (size_t i = 0; i < sizeof SRVS / sizeof SRVS[0]; i++) {
        if (strcmp(SRVS[i].variant, r->variant) != 0) continue;
        known = 1;
        if (SRVS[i].code == g->message_code) {
            *row = &SRVS[i];
            return 0;
        }
        size_t n = strlen(codes);
        snprintf(codes + n, sizeof codes - n, "%s%04X (%s)", n ? ", " : "", SRVS[i].code, SRVS[i].use_case);
    }
    ENSURE(known, SMKI_E_REFUSED,
           "service reference variant '%s': not in smki's table of variants (unknown variant refused; "
           "smki_duis_srvs lists them)", r->variant);
    return SMKI_FAIL(SMKI_E_REFUSED, "message code: service reference variant %s is %s, the pre-command holds %04X",
                     r->variant, codes, g->message_code);
}

static void fmt_time(time_t t, char out[32])
{
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    else
        snprintf(out, 32, "%lld", (long long)t);
}

int smki_duis_correlate(const smki_duis_info *r, const smki_gbcs_signing *g)
{
    ENSURE(r->kind == SMKI_DUIS_REQUEST, SMKI_E_USAGE, "correlation needs a Service Request, not a Response");
    GUARD(check_eui("originator", &r->request_id.originator, g->originator));
    GUARD(check_eui("target device", &r->request_id.target, g->recipient));
    ENSURE(r->request_id.counter == g->counter, SMKI_E_REFUSED,
           "counter: the request says %" PRIu64 ", the pre-command holds %" PRIu64, r->request_id.counter, g->counter);
    const smki_duis_srv *row = NULL;
    GUARD(check_code(r, g, &row));
    if (!r->has_execution_time) return 0;
    char when[32];
    fmt_time(r->execution_time, when);
    ENSURE(row->time_form != SMKI_DUIS_TIME_NONE, SMKI_E_REFUSED,
           "execution time: the request is future-dated (%s) but %s (%s) carries no execution time", when,
           row->use_case, r->variant);
    int cancel = (long long)r->execution_time == DUIS_CANCEL_TIME;
    ENSURE(has_time(row->time_form, g->content, g->content_len, r->execution_time, cancel), SMKI_E_REFUSED,
           "execution time: the request says %s%s, the pre-command's %s payload does not carry it", when,
           cancel ? " (cancellation)" : "",
           row->time_form == SMKI_DUIS_TIME_DLMS ? "DLMS" : row->time_form == SMKI_DUIS_TIME_ZIGBEE ? "ZigBee"
                                                                                                    : "ASN.1");
    return 0;
}

int smki_duis_check_precommand(const smki_duis_trust *t, time_t at, const uint8_t *xml, size_t xml_len,
                               const uint8_t *pre, size_t pre_len, smki_duis_report *rep)
{
    smki_duis_report local;
    if (!rep) rep = &local;
    int rc = smki_duis_verify(t, at, xml, xml_len, rep);
    if (rc < 0) return smki_error_wrap("the Service Request");
    smki_gbcs_msg m;
    rc = smki_gbcs_parse(pre, pre_len, &m);
    if (rc < 0) return smki_error_wrap("the pre-command");
    ENSURE(m.kind != SMKI_GBCS_BLOCK, SMKI_E_INPUT, "the pre-command is a block transfer: give its General Signing APDU");
    rc = smki_duis_correlate(&rep->info, &m.gsa);
    if (rc < 0) return smki_error_wrap("the pre-command does not match its Service Request");
    return 0;
}
