/* libFuzzer target for the audit trail's entries (ra/audit.c): 'smki audit verify' reads
 * them from a store that may have been tampered with. Beyond not crashing: an entry is
 * accepted only whole, its strings are terminated and within their fields, and an
 * accepted entry is canonical: its body encoded again, then the signature's length and
 * octets, gives back exactly the input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ra/ra.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_audit_entry: invariant failed: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static smki_audit_entry e;
    static uint8_t again[4096];
    int rc = smki_audit_entry_decode(data, size, &e);
    if (rc < 0) {
        require(rc == SMKI_E_CORRUPT, "a refusal is SMKI_E_CORRUPT");
        smki_error_clear();
        return 0;
    }
    require(strlen(e.operator_name) < sizeof e.operator_name && strlen(e.action) < sizeof e.action &&
                strlen(e.object) < sizeof e.object && strlen(e.detail) < sizeof e.detail,
            "strings terminated within their fields");
    require(e.sig_len >= 1 && e.sig_len <= SMKI_SIG_MAX, "a signature of 1..72 octets");
    size_t len = 0;
    require(smki_audit_entry_body(&e, again, sizeof again - 1 - SMKI_SIG_MAX, &len) == 0, "an accepted entry encodes");
    again[len] = (uint8_t)e.sig_len;
    memcpy(again + len + 1, e.sig, e.sig_len);
    require(len + 1 + e.sig_len == size && memcmp(again, data, size) == 0, "an accepted entry is canonical");
    smki_error_clear();
    return 0;
}
