/* The home's configuration file: INI-like, small, strict. An operator reads and
 * reviews it; a typo is reported with the file and line rather than ignored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

#define CONF_MAX_ENTRIES 256
#define CONF_MAX_LINE 1024
#define CONF_MAX_SECTIONS 64

struct smki_conf {
    size_t n;
    char *keys[CONF_MAX_ENTRIES];
    char *values[CONF_MAX_ENTRIES];
    int lines[CONF_MAX_ENTRIES];
    /* Every section header as written, also one with no settings under it, so that a
     * mistyped [section] is refused even when empty. */
    size_t nsections;
    char *sections[CONF_MAX_SECTIONS];
    int section_lines[CONF_MAX_SECTIONS];
    char name[256]; /* for messages: the file, shortened if need be */
};

void smki_conf_free(smki_conf *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->keys[i]);
        free(c->values[i]);
    }
    for (size_t i = 0; i < c->nsections; i++) free(c->sections[i]);
    free(c);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r')) s[--len] = '\0';
    return s;
}

static int conf_add(smki_conf *c, const char *section, const char *key, const char *value, const char *path,
                    int line)
{
    ENSURE(c->n < CONF_MAX_ENTRIES, SMKI_E_INPUT, "%s:%d: more than %d settings", path, line, CONF_MAX_ENTRIES);
    size_t klen = strlen(section) + strlen(key) + 2;
    char *full = malloc(klen);
    char *val = strdup(value);
    if (!full || !val) {
        free(full);
        free(val);
        return SMKI_FAIL(SMKI_E_NOMEM, "out of memory reading %s", path);
    }
    snprintf(full, klen, "%s%s%s", section, section[0] ? "." : "", key);
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->keys[i], full) == 0) {
            free(full);
            free(val);
            return SMKI_FAIL(SMKI_E_INPUT, "%s:%d: '%s' set twice", path, line, c->keys[i]);
        }
    c->keys[c->n] = full;
    c->values[c->n] = val;
    c->lines[c->n] = line;
    c->n++;
    return 0;
}

static int parse_line(smki_conf *c, char *text, char *section, size_t section_cap, const char *path, int line)
{
    char *s = trim(text);
    if (*s == '\0' || *s == '#' || *s == ';') return 0;
    if (*s == '[') {
        char *end = strchr(s, ']');
        ENSURE(end && end[1] == '\0' && end > s + 1, SMKI_E_INPUT, "%s:%d: malformed section header", path, line);
        *end = '\0';
        ENSURE(strlen(s + 1) < section_cap, SMKI_E_INPUT, "%s:%d: section name too long", path, line);
        strcpy(section, s + 1);
        ENSURE(c->nsections < CONF_MAX_SECTIONS, SMKI_E_INPUT, "%s:%d: more than %d sections", path, line,
               CONF_MAX_SECTIONS);
        char *copy = strdup(section);
        ENSURE(copy != NULL, SMKI_E_NOMEM, "out of memory reading %s", path);
        c->sections[c->nsections] = copy;
        c->section_lines[c->nsections++] = line;
        return 0;
    }
    char *eq = strchr(s, '=');
    ENSURE(eq != NULL, SMKI_E_INPUT, "%s:%d: expected 'key = value'", path, line);
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    ENSURE(*key != '\0', SMKI_E_INPUT, "%s:%d: empty key", path, line);
    return conf_add(c, section, key, value, path, line);
}

int smki_conf_parse(const uint8_t *data, size_t len, const char *name, smki_conf **out)
{
    *out = NULL;
    smki_conf *c = calloc(1, sizeof *c);
    ENSURE(c != NULL, SMKI_E_NOMEM, "out of memory");
    snprintf(c->name, sizeof c->name, "%s", name);
    char section[128] = "";
    int line = 0, rc = 0;
    size_t pos = 0;
    while (pos < len && rc == 0) {
        line++;
        size_t end = pos;
        while (end < len && data[end] != '\n') end++;
        if (end - pos >= CONF_MAX_LINE) {
            rc = SMKI_FAIL(SMKI_E_INPUT, "%s:%d: line longer than %d characters", name, line, CONF_MAX_LINE);
            break;
        }
        char buf[CONF_MAX_LINE];
        memcpy(buf, data + pos, end - pos);
        buf[end - pos] = '\0';
        if (memchr(data + pos, '\0', end - pos))
            rc = SMKI_FAIL(SMKI_E_INPUT, "%s:%d: NUL character", name, line);
        else
            rc = parse_line(c, buf, section, sizeof section, name, line);
        pos = end + 1;
    }
    if (rc < 0) {
        smki_conf_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int smki_conf_load(const char *path, smki_conf **out)
{
    *out = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = smki_file_read(path, 1 << 20, &data, &len);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        return smki_conf_parse((const uint8_t *)"", 0, path, out);
    }
    if (rc < 0) return rc;
    rc = smki_conf_parse(data, len, path, out);
    free(data);
    return rc;
}

const char *smki_conf_get(const smki_conf *c, const char *key, const char *fallback)
{
    if (c)
        for (size_t i = 0; i < c->n; i++)
            if (strcmp(c->keys[i], key) == 0) return c->values[i];
    return fallback;
}

/* Length of the common prefix of a and b: a crude but useful "did you mean". */
static size_t common_prefix(const char *a, const char *b)
{
    size_t n = 0;
    while (a[n] && a[n] == b[n]) n++;
    return n;
}

int smki_conf_check_section(const smki_conf *c, const char *section, const char *const *known)
{
    ENSURE(section && known, SMKI_E_USAGE, "smki_conf_check_section: no section or key list");
    if (!c) return 0;
    size_t slen = strlen(section);
    for (size_t i = 0; i < c->n; i++) {
        const char *k = c->keys[i];
        if (strncmp(k, section, slen) != 0 || k[slen] != '.') continue;
        const char *key = k + slen + 1;
        if (strchr(key, '.')) continue; /* [section.sub]'s, not this section's */
        const char *best = NULL;
        size_t best_len = 0;
        int is_known = 0;
        for (const char *const *kn = known; *kn && !is_known; kn++) {
            is_known = strcmp(*kn, key) == 0;
            size_t p = common_prefix(*kn, key);
            if (p > best_len) {
                best_len = p;
                best = *kn;
            }
        }
        if (is_known) continue;
        if (best && best_len >= 3)
            return SMKI_FAIL(SMKI_E_USAGE, "%s:%d: unknown setting '%s' under [%s] (did you mean '%s'?)", c->name,
                             c->lines[i], key, section, best);
        return SMKI_FAIL(SMKI_E_USAGE, "%s:%d: unknown setting '%s' under [%s]", c->name, c->lines[i], key, section);
    }
    return 0;
}

/* Edits (insert, delete, replace, swap two neighbours) from a to b, capped at 9:
 * "stroe" is one swap from "store", which a common prefix does not see. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 9;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb] < 9 ? d[la][lb] : 9;
}

/* Is section (as written in its header) one of known? "NAME.*" stands for [NAME.X]
 * with any X that has no further dot. */
static int section_is_known(const char *section, const char *const *known)
{
    for (const char *const *kn = known; *kn; kn++) {
        size_t len = strlen(*kn);
        if (len >= 2 && strcmp(*kn + len - 2, ".*") == 0) {
            if (strncmp(section, *kn, len - 1) == 0 && section[len - 1] && !strchr(section + len - 1, '.')) return 1;
        } else if (strcmp(section, *kn) == 0) {
            return 1;
        }
    }
    return 0;
}

int smki_conf_check_sections(const smki_conf *c, const char *const *known)
{
    ENSURE(known, SMKI_E_USAGE, "smki_conf_check_sections: no section list");
    if (!c) return 0;
    for (size_t i = 0; i < c->n; i++)
        ENSURE(strchr(c->keys[i], '.'), SMKI_E_USAGE, "%s:%d: setting '%s' outside any [section]", c->name,
               c->lines[i], c->keys[i]);
    for (size_t i = 0; i < c->nsections; i++) {
        const char *sec = c->sections[i];
        if (section_is_known(sec, known)) continue;
        char list[512] = "";
        size_t used = 0;
        const char *best = NULL;
        size_t best_dist = 3; /* suggest only what is at most two edits away */
        for (const char *const *kn = known; *kn; kn++) {
            int w = snprintf(list + used, sizeof list - used, "%s[%s]", used ? " " : "", *kn);
            if (w > 0 && (size_t)w < sizeof list - used) used += (size_t)w;
            size_t dist = edit_distance(*kn, sec);
            if (dist < best_dist) {
                best_dist = dist;
                best = *kn;
            }
        }
        if (best)
            return SMKI_FAIL(SMKI_E_USAGE, "%s:%d: unknown section [%s] (did you mean [%s]?); known: %s", c->name,
                             c->section_lines[i], sec, best, list);
        return SMKI_FAIL(SMKI_E_USAGE, "%s:%d: unknown section [%s]; known: %s", c->name, c->section_lines[i], sec,
                         list);
    }
    return 0;
}
