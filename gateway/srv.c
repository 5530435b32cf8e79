/* Eligibility by User Role per Service Reference Variant, kept as data (format in gbcs.h):
 * the strict parser of the operator's table, the mask of a User's roles over it, and its
 * storage in the gateway's store (gw.meta "srv.csv": the file as loaded). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_private.h"

#define LINE_MAX_OCTETS 512
static const char HEADER[] = "srv,use_case,message_code,user_roles";
static const char SRV_KEY[] = "srv.csv";

/* A User Role code: [A-Z][A-Z0-9]{0,7}, upper case. */
static int role_code_ok(const char *s, size_t n)
{
    if (n == 0 || n > 8 || !(s[0] >= 'A' && s[0] <= 'Z')) return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9'))) return 0;
    return 1;
}

int smki_user_roles_canon(const char *text, char *out, size_t cap)
{
    size_t o = 0, count = 0;
    const char *p = text;
    out[0] = '\0';
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        char code[16];
        size_t n = 0;
        while (p[n] && p[n] != ',' && p[n] != ' ') n++;
        ENSURE(n < sizeof code, SMKI_E_USAGE, "User Role '%.*s' is too long (at most 8 characters)", (int)n, p);
        for (size_t i = 0; i < n; i++) code[i] = (char)toupper((unsigned char)p[i]);
        code[n] = '\0';
        ENSURE(role_code_ok(code, n), SMKI_E_USAGE, "User Role '%s' is not a code such as EIS, GNO or OU", code);
        ENSURE(++count <= 8, SMKI_E_USAGE, "more than 8 User Roles in '%s'", text);
        ENSURE(o + n + 2 <= cap, SMKI_E_USAGE, "User Roles '%s' are too long", text);
        if (o) out[o++] = ',';
        memcpy(out + o, code, n + 1);
        o += n;
        p += n;
    }
    return 0;
}

/* ---- The table -------------------------------------------------------------------------------- */
void smki_srv_table_free(smki_srv_table *t)
{
    if (!t) return;
    free(t->rows);
    memset(t, 0, sizeof *t);
}

static int role_bit(smki_srv_table *t, const char *s, size_t n, const char *name, size_t line, uint32_t *bit)
{
    for (size_t i = 0; i < t->nroles; i++)
        if (strlen(t->role_names[i]) == n && memcmp(t->role_names[i], s, n) == 0) {
            *bit = 1u << i;
            return 0;
        }
    ENSURE(t->nroles < SMKI_SRV_MAX_ROLE_NAMES, SMKI_E_INPUT, "%s:%zu: more than %u distinct User Roles", name, line,
           SMKI_SRV_MAX_ROLE_NAMES);
    memcpy(t->role_names[t->nroles], s, n);
    t->role_names[t->nroles][n] = '\0';
    *bit = 1u << t->nroles++;
    return 0;
}

static int parse_row(smki_srv_table *t, const char *s, size_t n, const char *name, size_t line, smki_srv_row *r)
{
    memset(r, 0, sizeof *r);
    const char *f[4];
    size_t fl[4], k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',') continue;
        ENSURE(k < 4, SMKI_E_INPUT, "%s:%zu: more than 4 fields (srv,use_case,message_code,user_roles)", name, line);
        f[k] = s + start;
        fl[k++] = i - start;
        start = i + 1;
    }
    ENSURE(k == 4, SMKI_E_INPUT, "%s:%zu: expected 4 fields (srv,use_case,message_code,user_roles)", name, line);
    ENSURE(fl[0] >= 1 && fl[0] < sizeof r->srv && isdigit((unsigned char)f[0][0]) &&
               isdigit((unsigned char)f[0][fl[0] - 1]) && strspn(f[0], "0123456789.") >= fl[0],
           SMKI_E_INPUT, "%s:%zu: srv '%.*s' is not a Service Reference Variant such as 1.1.1", name, line,
           (int)(fl[0] < 20 ? fl[0] : 20), f[0]);
    for (size_t i = 1; i < fl[0]; i++)
        ENSURE(!(f[0][i] == '.' && f[0][i - 1] == '.'), SMKI_E_INPUT, "%s:%zu: srv has an empty part", name, line);
    memcpy(r->srv, f[0], fl[0]);
    ENSURE(fl[1] >= 1 && fl[1] < sizeof r->use_case, SMKI_E_INPUT, "%s:%zu: use_case must be 1..24 characters", name,
           line);
    for (size_t i = 0; i < fl[1]; i++)
        ENSURE(isalnum((unsigned char)f[1][i]) || f[1][i] == '-', SMKI_E_INPUT,
               "%s:%zu: use_case '%.*s' has a character other than letters, digits and '-'", name, line, (int)fl[1],
               f[1]);
    memcpy(r->use_case, f[1], fl[1]);
    ENSURE(fl[2] == 4 && strspn(f[2], "0123456789abcdefABCDEF") >= 4, SMKI_E_INPUT,
           "%s:%zu: message_code must be 4 hex digits (e.g. 0019)", name, line);
    char code[5] = {f[2][0], f[2][1], f[2][2], f[2][3], 0};
    r->code = (uint16_t)strtoul(code, NULL, 16);
    const char *p = f[3], *end = f[3] + fl[3];
    while (p < end) {
        while (p < end && *p == ' ') p++;
        const char *q = p;
        while (q < end && *q != ' ') q++;
        if (q == p) break;
        ENSURE(role_code_ok(p, (size_t)(q - p)), SMKI_E_INPUT,
               "%s:%zu: User Role '%.*s' is not a code such as EIS (upper case, at most 8)", name, line,
               (int)(q - p < 12 ? q - p : 12), p);
        uint32_t bit = 0;
        GUARD(role_bit(t, p, (size_t)(q - p), name, line, &bit));
        r->roles |= bit;
        p = q;
    }
    ENSURE(r->roles != 0, SMKI_E_INPUT, "%s:%zu: no User Role is eligible", name, line);
    return 0;
}

int smki_srv_table_parse(const uint8_t *data, size_t len, const char *name, smki_srv_table *out)
{
    memset(out, 0, sizeof *out);
    name = name ? name : "srv";
    size_t i = 0, line = 0, cap = 0;
    int rc = 0, seen = 0;
    while (i < len) {
        line++;
        size_t s = i;
        while (i < len && data[i] != '\n') i++;
        size_t e = i;
        if (i < len) i++;
        if (e > s && data[e - 1] == '\r') e--;
        const char *l = (const char *)data + s;
        size_t n = e - s;
        ENSURE_GOTO(n <= LINE_MAX_OCTETS, SMKI_E_INPUT, fail, "%s:%zu: line longer than %d octets", name, line,
                    LINE_MAX_OCTETS);
        for (size_t k = 0; k < n; k++)
            ENSURE_GOTO((unsigned char)l[k] >= 0x20 && (unsigned char)l[k] < 0x7f, SMKI_E_INPUT, fail,
                        "%s:%zu: a control or non-ASCII character at column %zu", name, line, k + 1);
        if (n == 0 || l[0] == '#') continue;
        if (!seen++ && n == sizeof HEADER - 1 && memcmp(l, HEADER, n) == 0) continue;
        smki_srv_row r;
        GUARD_GOTO(parse_row(out, l, n, name, line, &r), fail);
        for (size_t j = 0; j < out->count; j++)
            ENSURE_GOTO(!(out->rows[j].code == r.code && strcmp(out->rows[j].srv, r.srv) == 0), SMKI_E_INPUT, fail,
                        "%s:%zu: srv %s with message code %04X twice", name, line, r.srv, r.code);
        ENSURE_GOTO(out->count < SMKI_SRV_MAX_ROWS, SMKI_E_INPUT, fail, "%s:%zu: more than %u rows", name, line,
                    SMKI_SRV_MAX_ROWS);
        if (out->count == cap) {
            cap = cap ? 2 * cap : 32;
            smki_srv_row *rows = realloc(out->rows, cap * sizeof *rows);
            ENSURE_GOTO(rows, SMKI_E_NOMEM, fail, "eligibility rows");
            out->rows = rows;
        }
        out->rows[out->count++] = r;
    }
    return 0;
fail:
    smki_srv_table_free(out);
    return rc;
}

uint32_t smki_srv_roles_mask(const smki_srv_table *t, const char *user_roles)
{
    uint32_t mask = 0;
    const char *p = user_roles;
    while (*p) {
        while (*p == ',') p++;
        size_t n = 0;
        while (p[n] && p[n] != ',') n++;
        for (size_t i = 0; i < t->nroles; i++)
            if (strlen(t->role_names[i]) == n && memcmp(t->role_names[i], p, n) == 0) mask |= 1u << i;
        p += n;
    }
    return mask;
}

/* ---- In the store -------------------------------------------------------------------------------- */
typedef struct {
    gw_dbs d;
    const uint8_t *csv;
    size_t len;
    uint8_t *copy;
    size_t copy_len;
} srv_op;

static int srv_put_txn(smki_txn *t, void *arg)
{
    srv_op *op = arg;
    if (op->len == 0) {
        int rc = smki_txn_del(t, op->d.meta, SRV_KEY, sizeof SRV_KEY - 1);
        if (rc == SMKI_E_NOTFOUND) smki_error_clear();
        return rc == SMKI_E_NOTFOUND ? 0 : rc;
    }
    return smki_txn_put(t, op->d.meta, SRV_KEY, sizeof SRV_KEY - 1, op->csv, op->len, 0);
}

int smki_gw_srv_load(const smki_gw_admin *a, const uint8_t *csv, size_t len, size_t *rows)
{
    smki_srv_table t;
    GUARD(smki_srv_table_parse(csv, len, "eligibility", &t));
    *rows = t.count;
    smki_srv_table_free(&t);
    srv_op op = {.csv = csv, .len = *rows ? len : 0};
    smki_store *s = NULL;
    GUARD(smki_gw_admin_store(a, &s));
    GUARD(smki_gw_dbs_get(s, &op.d));
    char det[64];
    snprintf(det, sizeof det, "%zu row(s)%s", *rows, *rows ? "" : ": the table removed");
    return smki_gw_admin_write(a, "eligibility-load", "the Service Request eligibility table", det, srv_put_txn, &op);
}

static int srv_get_txn(smki_txn *t, void *arg)
{
    srv_op *op = arg;
    const void *v;
    size_t vl;
    free(op->copy);
    op->copy = NULL;
    op->copy_len = 0;
    int rc = smki_txn_get(t, op->d.meta, SRV_KEY, sizeof SRV_KEY - 1, &v, &vl);
    if (rc == SMKI_E_NOTFOUND) return 0;
    GUARD(rc);
    op->copy = malloc(vl ? vl : 1);
    ENSURE(op->copy, SMKI_E_NOMEM, "eligibility table");
    memcpy(op->copy, v, vl);
    op->copy_len = vl;
    return 0;
}

int smki_gw_srv_get(smki_store *s, smki_srv_table *out)
{
    memset(out, 0, sizeof *out);
    srv_op op;
    memset(&op, 0, sizeof op);
    GUARD(smki_gw_dbs_get(s, &op.d));
    int rc = smki_store_read(s, srv_get_txn, &op);
    if (rc == 0 && op.copy) {
        rc = smki_srv_table_parse(op.copy, op.copy_len, "stored eligibility table", out);
        if (rc == SMKI_E_INPUT) rc = SMKI_FAIL(SMKI_E_CORRUPT, "the stored eligibility table no longer parses");
    }
    free(op.copy);
    return rc;
}
