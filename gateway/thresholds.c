/* The anomaly-threshold CSV (format in gbcs.h, the gateway section): a strict parser that names the line
 * and column of the first thing it does not accept. Users submit these files signed;
 * the parser sees only files whose signature verified, but stays strict regardless. */
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

#define LINE_MAX_OCTETS 256
static const char HEADER[] = "user,message_code,window_seconds,max_count";
static const char HEADER_KIND[] = "user,message_code,window_seconds,max_count,kind";

typedef struct {
    const char *name;
    size_t line;
} where;

static int bad(const where *w, size_t col, const char *what, const char *field, size_t flen)
{
    if (flen > 40) flen = 40;
    return SMKI_FAIL(SMKI_E_INPUT, "%s:%zu:%zu: %s%s%.*s%s", w->name, w->line, col, what, field ? " '" : "",
                     (int)flen, field ? field : "", field ? "'" : "");
}

static int parse_uint(const where *w, size_t col, const char *f, size_t n, uint32_t lo, uint32_t hi,
                      const char *what, uint32_t *out)
{
    char msg[96];
    if (n == 0) {
        snprintf(msg, sizeof msg, "%s is empty", what);
        return bad(w, col, msg, NULL, 0);
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (f[i] < '0' || f[i] > '9') {
            snprintf(msg, sizeof msg, "%s must be decimal digits, found", what);
            return bad(w, col + i, msg, f, n);
        }
        if (i == 0 && f[i] == '0' && n > 1) {
            snprintf(msg, sizeof msg, "%s has a leading zero", what);
            return bad(w, col, msg, f, n);
        }
        v = v * 10 + (uint64_t)(f[i] - '0');
        if (v > hi) break;
    }
    if (v < lo || v > hi) {
        snprintf(msg, sizeof msg, "%s must be %u..%u, found", what, lo, hi);
        return bad(w, col, msg, f, n);
    }
    *out = (uint32_t)v;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int parse_rule(const where *w, const char *s, size_t n, smki_threshold *r)
{
    memset(r, 0, sizeof *r); /* no stray padding: rules compare with memcmp */
    const char *f[5];
    size_t flen[5], col[5];
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == ',') {
            if (k == 5) return bad(w, start, "more than 5 fields", NULL, 0); /* the extra comma */
            f[k] = s + start;
            flen[k] = i - start;
            col[k] = start + 1;
            k++;
            start = i + 1;
        }
    }
    if (k < 4)
        return bad(w, n + 1, "expected 4 or 5 fields (user,message_code,window_seconds,max_count[,kind])", NULL, 0);
    for (size_t i = 0; i < n; i++)
        if (s[i] == ' ' || s[i] == '\t' || s[i] == '"' || (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return bad(w, i + 1, "blank, quote or control character not allowed", NULL, 0);
    char eui[32];
    if (flen[0] == 0 || flen[0] >= sizeof eui) return bad(w, col[0], "user is not an EUI-64:", f[0], flen[0]);
    memcpy(eui, f[0], flen[0]);
    eui[flen[0]] = '\0';
    if (smki_eui64_parse(eui, &r->user) < 0) {
        smki_error_clear();
        return bad(w, col[0], "user is not an EUI-64:", f[0], flen[0]);
    }
    if (flen[1] == 1 && f[1][0] == '*') {
        r->code = SMKI_CODE_ANY;
    } else {
        if (flen[1] != 4) return bad(w, col[1], "message_code must be 4 hex digits or *, found", f[1], flen[1]);
        uint32_t v = 0;
        for (size_t i = 0; i < 4; i++) {
            int h = hexval(f[1][i]);
            if (h < 0) return bad(w, col[1] + i, "message_code must be 4 hex digits or *, found", f[1], flen[1]);
            v = v << 4 | (uint32_t)h;
        }
        r->code = v;
    }
    GUARD(parse_uint(w, col[2], f[2], flen[2], 1, SMKI_THRESHOLD_MAX_WINDOW, "window_seconds", &r->window));
    GUARD(parse_uint(w, col[3], f[3], flen[3], 1, SMKI_THRESHOLD_MAX_COUNT, "max_count", &r->max_count));
    r->kind = SMKI_GBCS_CRA_COMMAND;
    if (k == 5) {
        static const char *const kinds[] = {"command", "response", "alert"};
        size_t j = 0;
        while (j < 3 && !(flen[4] == strlen(kinds[j]) && memcmp(f[4], kinds[j], flen[4]) == 0)) j++;
        if (j == 3) return bad(w, col[4], "kind must be command, response or alert, found", f[4], flen[4]);
        r->kind = (uint8_t)(j + 1);
    }
    return 0;
}

int smki_thresholds_parse(const uint8_t *data, size_t len, const char *name, smki_thresholds *out)
{
    memset(out, 0, sizeof *out);
    where w = {name ? name : "thresholds", 0};
    smki_threshold *rules = NULL;
    size_t count = 0, cap = 0;
    int seen_content = 0, rc = 0;
    size_t i = 0;
    while (i < len) {
        w.line++;
        size_t s = i;
        while (i < len && data[i] != '\n' && data[i] != '\r') i++;
        size_t e = i;
        if (i < len) i += (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n') ? 2 : 1;
        const char *line = (const char *)data + s;
        size_t n = e - s;
        if (n > LINE_MAX_OCTETS) {
            rc = bad(&w, LINE_MAX_OCTETS + 1, "line longer than 256 octets", NULL, 0);
            goto fail;
        }
        if (memchr(line, '\0', n)) {
            rc = bad(&w, (size_t)((const char *)memchr(line, '\0', n) - line) + 1, "NUL octet", NULL, 0);
            goto fail;
        }
        if (n == 0 || line[0] == '#') continue;
        if (!seen_content) {
            seen_content = 1;
            if (n == sizeof HEADER - 1 && memcmp(line, HEADER, n) == 0) continue;
            if (n == sizeof HEADER_KIND - 1 && memcmp(line, HEADER_KIND, n) == 0) continue;
            if (n >= 4 && memcmp(line, "user", 4) == 0) {
                rc = bad(&w, 1, "header must be exactly 'user,message_code,window_seconds,max_count[,kind]'", NULL, 0);
                goto fail;
            }
        }
        smki_threshold r;
        GUARD_GOTO(parse_rule(&w, line, n, &r), fail);
        for (size_t j = 0; j < count; j++)
            if (smki_eui64_cmp(&rules[j].user, &r.user) == 0 && rules[j].code == r.code &&
                rules[j].window == r.window && rules[j].kind == r.kind) {
                rc = bad(&w, 1, "duplicate rule (same user, message_code, window_seconds and kind)", NULL, 0);
                goto fail;
            }
        if (count == SMKI_THRESHOLD_MAX_RULES) {
            rc = bad(&w, 1, "more than 4096 rules", NULL, 0);
            goto fail;
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            smki_threshold *nr = realloc(rules, ncap * sizeof *nr);
            ENSURE_GOTO(nr, SMKI_E_NOMEM, fail, "threshold rules");
            rules = nr;
            cap = ncap;
        }
        rules[count++] = r;
    }
    out->rules = rules;
    out->count = count;
    return 0;
fail:
    free(rules);
    return rc;
}

void smki_thresholds_free(smki_thresholds *t)
{
    if (!t) return;
    free(t->rules);
    t->rules = NULL;
    t->count = 0;
}
