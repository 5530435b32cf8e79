/* libFuzzer target for the counter-state file a receiver keeps (gbcs/counters.c). Beyond
 * not crashing: parsing is deterministic; a refusal is SMKI_E_INPUT naming "fuzz:LINE"; an
 * accepted file holds no more keys than lines, and every key it holds refuses its own
 * counter as a replay and accepts the next one (the check agrees with what was parsed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gbcs/gbcs.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_gbcs_counters: invariant failed: %s\n", what);
    abort();
}

/* The first data line's key, read back independently of the parser (tokens split on
 * blanks), to probe the parsed state with. 0 when the first line is not one. */
static int first_key(const uint8_t *data, size_t size, smki_gbcs_signing *g, uint8_t titles[16])
{
    char line[256];
    size_t n = 0;
    while (n < size && n < sizeof line - 1 && data[n] != '\n') {
        line[n] = (char)data[n];
        n++;
    }
    line[n] = 0;
    if (memchr(line, 0, n)) return 0; /* an embedded NUL ends the C string early */
    char o[32], r[32], extra;
    unsigned cra;
    unsigned long long counter;
    if (sscanf(line, "%31s %31s %u %llu %c", o, r, &cra, &counter, &extra) != 4) return 0;
    if (strlen(o) != 16 || strlen(r) != 16 || cra < 1 || cra > 3 || counter == UINT64_MAX) return 0;
    size_t len;
    if (smki_hex_decode(o, 16, titles, 8, &len) < 0 || smki_hex_decode(r, 16, titles + 8, 8, &len) < 0) {
        smki_error_clear();
        return 0;
    }
    memset(g, 0, sizeof *g);
    g->originator = titles;
    g->recipient = titles + 8;
    g->cra = (uint8_t)cra;
    g->counter = counter;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16) return 0;
    smki_gbcs_counters *a = NULL, *b = NULL;
    smki_error_clear();
    int rc = smki_gbcs_counters_parse(data, size, "fuzz", &a);
    int rc2 = smki_gbcs_counters_parse(data, size, "fuzz", &b);
    require(rc == rc2, "parsing twice gives the same outcome");
    if (rc < 0) {
        require(rc == SMKI_E_INPUT || rc == SMKI_E_NOMEM || rc == SMKI_E_REFUSED, "a refusal is SMKI_E_INPUT");
        require(a == NULL && b == NULL, "nothing returned on a refusal");
        require(strstr(smki_error_msg(), "fuzz:") != NULL, "the refusal names the line");
        smki_error_clear();
        return 0;
    }
    size_t lines = 1;
    for (size_t i = 0; i < size; i++) lines += data[i] == '\n';
    require(smki_gbcs_counters_count(a) <= lines, "no more keys than lines");
    require(smki_gbcs_counters_count(a) == smki_gbcs_counters_count(b), "the same keys twice");
    smki_gbcs_signing g;
    uint8_t titles[16];
    if (first_key(data, size, &g, titles)) {
        const char *why;
        require(smki_gbcs_counters_check(a, &g, &why) == SMKI_E_REFUSED && strcmp(why, "counter.replay") == 0,
                "a parsed mark refuses its own counter as a replay");
        smki_error_clear();
        g.counter++;
        require(smki_gbcs_counters_check(a, &g, &why) == 0, "a parsed mark accepts the next counter");
        require(smki_gbcs_counters_note(a, &g) == 0, "noting the next counter");
        g.counter--;
        require(smki_gbcs_counters_check(a, &g, &why) == SMKI_E_REFUSED && strcmp(why, "counter.reordered") == 0,
                "after noting, the old counter is reordered");
        smki_error_clear();
    }
    smki_gbcs_counters_free(a);
    smki_gbcs_counters_free(b);
    return 0;
}
