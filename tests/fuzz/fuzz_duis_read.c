/* libFuzzer target for the hardened DUIS reader (duis/xml.c), the signer reference and
 * the correlation with a pre-command. Beyond not crashing: reading is deterministic; an
 * accepted document is a Request or a Response with NUL-terminated fields; a DOCTYPE
 * is never accepted; correlating what was read with a fixed pre-command (ECS01a
 * future-dated, from the RTDS) is deterministic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duis/duis.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_duis_read: invariant failed: %s\n", what);
    abort();
}

/* A General Signing pre-command: 90B3D51F30010000 -> 00DB1234567890A0, counter 1008,
 * message code 0019, with a DLMS date-time 2030-01-15T09:00:00 in its content. */
static const uint8_t PRE[] = {
    0xDF, 0x09, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xF0, 0x08, 0x90, 0xB3, 0xD5, 0x1F, 0x30,
    0x01, 0x00, 0x00, 0x08, 0x00, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x90, 0xA0, 0x00, 0x02, 0x00, 0x19, 0x10,
    0x09, 0x0C, 0x07, 0xEE, 0x01, 0x0F, 0xFF, 0x09, 0x00, 0x00, 0x00, 0x80, 0x00, 0xFF, 0x00, 0x00};

static int has_doctype(const uint8_t *d, size_t n)
{
    static const char k[] = "<!DOCTYPE";
    for (size_t i = 0; i + sizeof k - 1 <= n; i++)
        if (memcmp(d + i, k, sizeof k - 1) == 0) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    smki_duis_info a, b;
    int ra = smki_duis_read(data, size, &a);
    int rb = smki_duis_read(data, size, &b);
    require(ra == rb, "deterministic status");
    smki_duis_signer_ref ref;
    (void)smki_duis_signer_ref_get(data, size, &ref);
    smki_error_clear();
    if (ra < 0) return 0;
    require(memcmp(&a, &b, sizeof a) == 0, "deterministic content");
    require(a.kind == SMKI_DUIS_REQUEST || a.kind == SMKI_DUIS_RESPONSE, "a Request or a Response");
    require(memchr(a.variant, 0, sizeof a.variant) && memchr(a.service_reference, 0, sizeof a.service_reference),
            "bounded fields");
    /* A DOCTYPE inside a comment or CDATA is text, not a declaration: only a document
     * that starts with one must have been refused. */
    require(!(size > 9 && has_doctype(data, 9)), "a leading DOCTYPE is refused");
    if (a.kind == SMKI_DUIS_REQUEST) {
        smki_gbcs_msg m;
        require(smki_gbcs_parse(PRE, sizeof PRE, &m) == 0, "the fixed pre-command parses");
        int ca = smki_duis_correlate(&a, &m.gsa), cb = smki_duis_correlate(&b, &m.gsa);
        require(ca == cb, "deterministic correlation");
    }
    smki_error_clear();
    return 0;
}
