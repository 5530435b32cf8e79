/* libFuzzer target for the enrolment service's request decoder (est/decode.c): what an
 * EST client sends as a body (base64 of a PKCS#10, one PEM CSR, concatenated PEM CSRs)
 * and as a path label. Beyond not crashing: decoding is deterministic; what base64
 * accepts, OpenSSL's encoder turns back into the same characters (white space and
 * padding aside: the decoder takes only canonical input); PEM blocks found lie inside
 * the input, in order, each between its BEGIN and END lines; a label is accepted only
 * as one of the documented forms. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "est/est.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_est_decode: invariant failed: %s\n", what);
    abort();
}

static int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static void check_base64(const uint8_t *data, size_t size)
{
    size_t cap = size, n1 = 0, n2 = 0;
    uint8_t *a = malloc(cap + 1), *b = malloc(cap + 1), *enc = malloc(2 * size + 8), *bare = malloc(size + 1);
    require(a && b && enc && bare, "memory");
    int r1 = smki_est_base64_decode(data, size, a, cap, &n1);
    int r2 = smki_est_base64_decode(data, size, b, cap, &n2);
    smki_error_clear();
    require(r1 == r2 && (r1 < 0 || (n1 == n2 && memcmp(a, b, n1) == 0)), "deterministic");
    if (r1 == 0) {
        require(n1 <= size * 3 / 4 + 3, "output bounded by input");
        /* The input without white space and '=' equals the canonical encoding without '='. */
        size_t m = 0;
        for (size_t i = 0; i < size; i++)
            if (!is_space(data[i]) && data[i] != '=') bare[m++] = data[i];
        int el = EVP_EncodeBlock(enc, a, (int)n1);
        while (el > 0 && enc[el - 1] == '=') el--;
        require((size_t)el == m && memcmp(enc, bare, m) == 0, "accepted base64 is canonical");
    }
    free(a), free(b), free(enc), free(bare);
}

static void check_pem(const uint8_t *data, size_t size)
{
    smki_est_span sp[16];
    size_t n = 0;
    int rc = smki_est_pem_split(data, size, 16, sp, &n);
    smki_error_clear();
    if (rc < 0) return;
    require(n >= 1 && n <= 16, "count within the bound");
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        require(sp[i].off >= last && sp[i].off <= size && sp[i].len <= size - sp[i].off, "span inside the input");
        require(sp[i].off >= 35 && memcmp(data + sp[i].off - 12, "REQUEST-----", 12) == 0, "after a BEGIN line");
        require(sp[i].off + sp[i].len + 33 <= size && memcmp(data + sp[i].off + sp[i].len, "-----END ", 9) == 0,
                "before an END line");
        last = sp[i].off + sp[i].len;
    }
    uint8_t der[SMKI_CSR_MAX];
    size_t len = 0;
    if (smki_est_csr_body(data, size, der, sizeof der, &len) < 0) smki_error_clear();
}

static void check_label(const uint8_t *data, size_t size)
{
    if (size > 100) return;
    char label[101];
    memcpy(label, data, size);
    label[size] = 0;
    if (strlen(label) != size) return;
    smki_est_label lb;
    int rc = smki_est_label_parse(label, &lb);
    smki_error_clear();
    if (rc < 0) return;
    require(strcmp(label, "device") == 0 || strcmp(label, "dccki-client") == 0 || strcmp(label, "dccki-server") == 0 ||
                (strncmp(label, "org-", 4) == 0 && lb.type == SMKI_REQ_ORGANISATION && lb.role >= 0),
            "an accepted label is a documented form");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) return 0;
    check_base64(data, size);
    check_pem(data, size);
    check_label(data, size);
    return 0;
}
