/* libFuzzer target for the batch input splitter (ca/batch.c): a file of CSRs, one DER
 * or PEM CSR or many PEM blocks with text around them, cut into items. The items lie
 * inside the input, in order, without overlap; a PEM item starts at its BEGIN line;
 * each item then goes through the CSR intake, which accepts or refuses it with a code
 * and a message; nothing leaks either way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "ca/ca_private.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_ca_batch_input: invariant failed: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *bytes = malloc(size + 1);
    if (!bytes) return 0;
    if (size) memcpy(bytes, data, size);
    smki_ca_batch_input *in = NULL;
    int rc = smki_ca_batch_input_from_bytes("fuzz.pem", bytes, size, &in);
    require(rc == 0 || rc == SMKI_E_NOMEM, "splitting fails only for memory");
    if (rc < 0) return 0;
    size_t n = smki_ca_batch_input_count(in), prev_end = 0;
    require(n >= 1, "a file is at least one item");
    const uint8_t *p;
    size_t len;
    for (size_t i = 0; i < n; i++) {
        smki_ca_batch_input_item(in, i, &p, &len);
        require(p >= bytes && p + len <= bytes + size, "an item lies inside the input");
        require((size_t)(p - bytes) >= prev_end, "items are in order and do not overlap");
        prev_end = (size_t)(p - bytes) + len;
        if (n > 1 || p > bytes) require(len >= 11 && memcmp(p, "-----BEGIN ", 11) == 0, "a block starts at BEGIN");
        require(strstr(smki_ca_batch_input_name(in, i), "fuzz.pem") != NULL, "an item is named after its file");
        if (i < 8) {
            smki_csr *csr = NULL;
            smki_error_clear();
            rc = smki_csr_parse(p, len, &csr);
            require(rc == 0 ? csr != NULL : (csr == NULL && smki_error_msg()[0] != '\0'),
                    "accepted, or refused with a message");
            smki_csr_free(csr);
        }
    }
    smki_ca_batch_input_free(in);
    return 0;
}
