/* libFuzzer target for the repository's request-path decoder (smki_repo_path_decode,
 * what the server matches routes on). Beyond not crashing: decoding is deterministic;
 * an accepted path decodes to at most its own length with no NUL; it was refused only
 * for a bad escape or an escaped NUL; and the decoded path, escaped again, decodes
 * back to itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/repo.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_repo_path: invariant failed: %s\n", what);
    abort();
}

static int ishex(int c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) return 0;
    const char *in = (const char *)data;
    char *a = malloc(size + 1), *b = malloc(size + 1), *esc = malloc(3 * size + 1), *c = malloc(3 * size + 1);
    require(a && b && esc && c, "memory");
    int ra = smki_repo_path_decode(in, size, a);
    int rb = smki_repo_path_decode(in, size, b);
    smki_error_clear();
    require(ra == rb, "deterministic status");
    /* What the decoder must refuse: a '%' without two hex digits, a raw or escaped NUL. */
    int bad = 0;
    for (size_t i = 0; i < size && !bad; i++) {
        if (data[i] == 0) bad = 1;
        else if (data[i] == '%') {
            if (i + 2 >= size || !ishex(data[i + 1]) || !ishex(data[i + 2])) bad = 1;
            else if (data[i + 1] == '0' && data[i + 2] == '0') bad = 1;
            else i += 2;
        }
    }
    require((ra < 0) == bad, "refused exactly the bad escapes and NULs");
    if (ra == 0) {
        size_t n = strlen(a);
        require(n <= size && strcmp(a, b) == 0, "bounded and deterministic");
        size_t m = 0;
        for (size_t i = 0; i < n; i++) m += (size_t)sprintf(esc + m, "%%%02X", (unsigned char)a[i]);
        require(smki_repo_path_decode(esc, m, c) == 0 && strcmp(c, a) == 0, "escaped again, decodes back");
    }
    free(a), free(b), free(esc), free(c);
    return 0;
}
