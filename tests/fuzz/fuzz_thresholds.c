/* libFuzzer target for the anomaly-threshold CSV parser (gbcs/thresholds.c). Beyond not
 * crashing: parsing is deterministic; a refusal is SMKI_E_INPUT naming "fuzz.csv:LINE:COL"
 * with a line that exists; an accepted file's rules are in range, free of duplicates, and
 * as many as its lines that are neither blank, comments nor the header; and the same bytes
 * with CRLF line ends parse to the same rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"

#define NAME "fuzz.csv"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_thresholds: invariant failed: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16) return 0;
    smki_thresholds a = {0, NULL}, b = {0, NULL};
    smki_error_clear();
    int rc = smki_thresholds_parse(data, size, NAME, &a);
    char msg[SMKI_ERR_MSG_MAX + 1];
    snprintf(msg, sizeof msg, "%s", smki_error_msg());
    int rc2 = smki_thresholds_parse(data, size, NAME, &b);
    require(rc == rc2, "parsing twice gives the same outcome");
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        if (data[i] == '\n' || (data[i] == '\r' && !(i + 1 < size && data[i + 1] == '\n'))) lines++;
    if (rc != 0) {
        require(rc == SMKI_E_INPUT, "a refusal is SMKI_E_INPUT");
        require(strcmp(msg, smki_error_msg()) == 0, "the same message twice");
        require(strncmp(msg, NAME ":", sizeof NAME) == 0, "a refusal names the file");
        char *after = NULL;
        unsigned long line = strtoul(msg + sizeof NAME, &after, 10);
        require(after && *after == ':', "a refusal names the line");
        unsigned long col = strtoul(after + 1, &after, 10);
        require(after && *after == ':' && col >= 1, "a refusal names the column");
        require(line >= 1 && line <= lines, "the line named exists");
        require(a.rules == NULL && a.count == 0, "a refusal returns no rules");
        return 0;
    }
    require(a.count == b.count, "both parses agree on the count");
    require(a.count <= lines, "at most one rule a line");
    for (size_t i = 0; i < a.count; i++) {
        const smki_threshold *r = &a.rules[i];
        require(memcmp(r, &b.rules[i], sizeof *r) == 0, "both parses agree on each rule");
        require(r->code == SMKI_CODE_ANY || r->code <= 0xFFFF, "a code is 16 bits or any");
        require(r->window >= 1 && r->window <= SMKI_THRESHOLD_MAX_WINDOW, "window in range");
        require(r->max_count >= 1 && r->max_count <= SMKI_THRESHOLD_MAX_COUNT, "max_count in range");
        for (size_t j = 0; j < i; j++)
            require(!(smki_eui64_cmp(&a.rules[j].user, &r->user) == 0 && a.rules[j].code == r->code &&
                      a.rules[j].window == r->window && a.rules[j].kind == r->kind),
                    "no duplicate rule");
    }
    /* LF -> CRLF gives the same rules. */
    uint8_t *crlf = malloc(2 * size + 1);
    size_t o = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '\n' && !(i > 0 && data[i - 1] == '\r')) crlf[o++] = '\r';
        crlf[o++] = data[i];
    }
    smki_thresholds c = {0, NULL};
    require(smki_thresholds_parse(crlf, o, NAME, &c) == 0, "the CRLF form is accepted too");
    require(c.count == a.count, "CRLF gives as many rules");
    for (size_t i = 0; i < a.count; i++)
        require(memcmp(&a.rules[i], &c.rules[i], sizeof c.rules[i]) == 0, "CRLF gives the same rules");
    smki_thresholds_free(&c);
    free(crlf);
    smki_thresholds_free(&a);
    smki_thresholds_free(&b);
    return 0;
}
