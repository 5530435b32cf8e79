/* libFuzzer target for the configuration parser (base/conf.c). Beyond not crashing:
 * parsing is deterministic, a refusal names the file and a line that exists, no
 * value spans lines or keeps the blanks around it, and every "key = value" line of
 * an accepted file is found under "section.key" with its value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#define NAME "fuzz.conf"

static const char *const probes[] = {"hsm.token", "hsm.module", "hsm.pin_file", "ca.name", "store.path",
                                     "repo.listen", "token", "a.b", "", "hsm."};

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_conf: invariant failed: %s\n", what);
    abort();
}

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void check_value(const char *v)
{
    if (!v) return;
    require(strchr(v, '\n') == NULL, "a value never contains a line end");
    size_t n = strlen(v);
    require(n < 1024, "a value fits a line");
    if (n) {
        require(v[0] != ' ' && v[0] != '\t', "a value has no leading blank");
        require(v[n - 1] != ' ' && v[n - 1] != '\t' && v[n - 1] != '\r', "a value has no trailing blank");
    }
}

/* The blanks the format ignores around a line, a key and a value. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t')) (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r')) (*e)--;
}

/* Walk the accepted text line by line, as the format in base.h describes it, and
 * look every setting up in both parses. */
static void check_settings(const smki_conf *c, const smki_conf *c2, const uint8_t *data, size_t size)
{
    char section[1024] = "";
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *s = p, *e = nl ? nl : end;
        p = nl ? nl + 1 : end;
        trim(&s, &e);
        if (s == e || *s == '#' || *s == ';') continue;
        if (*s == '[') {
            require(e - s >= 3 && e[-1] == ']', "an accepted section header is [name]");
            memcpy(section, s + 1, (size_t)(e - s - 2));
            section[e - s - 2] = '\0';
            continue;
        }
        const char *eq = memchr(s, '=', (size_t)(e - s));
        require(eq != NULL, "an accepted setting line has '='");
        const char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;
        trim(&ks, &ke);
        trim(&vs, &ve);
        require(ke > ks, "an accepted setting has a key");
        char key[2048], value[1024];
        snprintf(key, sizeof key, "%s%s%.*s", section, section[0] ? "." : "", (int)(ke - ks), ks);
        snprintf(value, sizeof value, "%.*s", (int)(ve - vs), vs);
        const char *got = smki_conf_get(c, key, NULL);
        require(got != NULL, "every setting is found under section.key");
        check_value(got);
        require(strcmp(got, value) == 0, "every setting has the value written");
        require(same(smki_conf_get(c2, key, NULL), got), "both parses agree on every setting");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    smki_conf *c = NULL, *c2 = NULL;
    smki_error_clear();
    int rc = smki_conf_parse(data, size, NAME, &c);
    char msg[SMKI_ERR_MSG_MAX + 1];
    snprintf(msg, sizeof msg, "%s", smki_error_msg());
    int rc2 = smki_conf_parse(data, size, NAME, &c2);
    require(rc == rc2, "parsing twice gives the same outcome");

    if (rc != 0) {
        require(rc == SMKI_E_INPUT, "a refusal is SMKI_E_INPUT");
        require(strcmp(msg, smki_error_msg()) == 0, "parsing twice gives the same message");
        /* "fuzz.conf:<line>: ...", the line one that exists. */
        require(strncmp(msg, NAME ":", sizeof NAME) == 0, "a refusal names the file");
        char *after = NULL;
        unsigned long line = strtoul(msg + sizeof NAME, &after, 10);
        require(after != msg + sizeof NAME && *after == ':', "a refusal names the line");
        size_t lines = 1;
        for (size_t i = 0; i + 1 < size; i++) lines += data[i] == '\n';
        require(line >= 1 && line <= lines, "the line named exists");
        return 0;
    }
    require(c != NULL && c2 != NULL, "success gives a configuration");

    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        const char *a = smki_conf_get(c, probes[i], NULL);
        require(same(a, smki_conf_get(c2, probes[i], NULL)), "both parses agree on a probe key");
        check_value(a);
    }
    static const char fallback[] = "fallback";
    require(smki_conf_get(c, "", fallback) == fallback, "no setting has an empty key");
    require(smki_conf_get(c, "a\nb", fallback) == fallback, "no key spans lines");
    require(smki_conf_get(NULL, "hsm.token", fallback) == fallback, "no configuration gives the fallback");

    check_settings(c, c2, data, size);
    /* Sections: the check is bounded and stable, and a refusal names file and line. */
    static const char *const sections[] = {"hsm", "store", "repo", "env.*", "ca.*", NULL};
    int sr = smki_conf_check_sections(c, sections);
    require(sr == 0 || sr == SMKI_E_USAGE, "a section refusal is SMKI_E_USAGE");
    if (sr != 0) require(strncmp(smki_error_msg(), NAME ":", sizeof NAME) == 0, "a section refusal names the file");
    require(smki_conf_check_sections(c2, sections) == sr, "both parses agree on the sections");
    smki_conf_free(c);
    smki_conf_free(c2);
    return 0;
}
