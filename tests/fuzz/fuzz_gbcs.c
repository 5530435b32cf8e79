/* libFuzzer target for the GBCS codec (gbcs/codec.c): hostile messages as a gateway or
 * a device receives them. Beyond not crashing: a refusal is SMKI_E_INPUT; an accepted
 * message's fields lie inside the input and agree with its offsets; the General
 * Signing APDU encodes back to exactly its octets (from the raw other-information and
 * from its decoded parts); a wrapper's framing is what smki_gbcs_wrap writes. The
 * input is also read as a message file (hex text or binary). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gbcs/gbcs.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_gbcs: invariant failed: %s\n", what);
    abort();
}

static int inside(const smki_gbcs_msg *m, const uint8_t *p, size_t n)
{
    return p >= m->data && (size_t)(p - m->data) <= m->len && n <= m->len - (size_t)(p - m->data);
}

static void check_signing(const smki_gbcs_msg *m)
{
    const smki_gbcs_signing *g = &m->gsa;
    require(m->data[g->offset] == 0xDF, "DF at the APDU's offset");
    require(g->signed_offset == g->offset + 1, "signed region starts after DF");
    require(g->offset + g->len <= m->len, "APDU inside the input");
    require(g->cra >= 1 && g->cra <= 3, "CRA 1..3");
    require(inside(m, g->originator, 8) && inside(m, g->recipient, 8), "titles inside");
    require(!g->date_time || inside(m, g->date_time, 12), "date-time inside");
    require(inside(m, g->other_info, g->other_info_len) && g->other_info_len >= 2, "other-info inside");
    require(inside(m, g->content, g->content_len), "content inside");
    require(g->content + g->content_len == m->data + g->signed_offset + g->signed_len, "signed region ends with content");
    require((g->sig_state == SMKI_GBCS_SIG_PRESENT) == (g->signature != NULL), "signature pointer iff present");
    if (g->signature) require(inside(m, g->signature, 64), "signature inside");
    require(!(g->urp_cert && g->other_info_rest), "certificate or rest, not both");

    uint8_t *out = NULL;
    size_t len = 0;
    require(smki_gbcs_build_signing(g, &out, &len) == 0, "an accepted APDU builds");
    require(len == g->len && memcmp(out, m->data + g->offset, len) == 0, "raw other-info round trip");
    free(out);
    smki_gbcs_fields f = *g;
    f.other_info = NULL;
    require(smki_gbcs_build_signing(&f, &out, &len) == 0, "an accepted APDU builds from its parts");
    require(len == g->len && memcmp(out, m->data + g->offset, len) == 0, "decoded other-info round trip");
    smki_gbcs_msg again;
    require(smki_gbcs_parse(out, len, &again) == 0 && again.gsa.len == g->len, "the rebuilt APDU parses");
    free(out);
}

static void check(const uint8_t *data, size_t size)
{
    smki_gbcs_msg m;
    int rc = smki_gbcs_parse(data, size, &m);
    if (rc < 0) {
        require(rc == SMKI_E_INPUT, "a refusal is SMKI_E_INPUT");
        smki_error_clear();
        return;
    }
    require(m.data == data && m.len == size, "whole input");
    if (m.kind == SMKI_GBCS_SIGNING) {
        require(m.gsa.offset == 0 && m.gsa.len == size, "a DF message is one APDU");
        check_signing(&m);
    } else if (m.kind == SMKI_GBCS_CIPHERING) {
        check_signing(&m);
        require(m.gsa.sig_state != SMKI_GBCS_SIG_NONE, "a command's APDU has its signature field");
        require(m.mac == data + size - 12, "MAC is the last 12 octets");
        require(m.aad_offset == m.gsa.offset && m.aad_offset + m.aad_len + 12 == size, "AAD span");
        /* The framing smki_gbcs_wrap writes: DD 00*6 <minimal BER length> 11 <ic>. */
        size_t body = 1 + 4 + m.gsa.len + 12;
        uint8_t hdr[16] = {0xDD, 0, 0, 0, 0, 0, 0};
        size_t h = 7;
        if (body < 0x80) {
            hdr[h++] = (uint8_t)body;
        } else {
            size_t n = 0;
            for (size_t v = body; v; v >>= 8) n++;
            hdr[h++] = (uint8_t)(0x80 | n);
            for (size_t i = 0; i < n; i++) hdr[h++] = (uint8_t)(body >> (8 * (n - 1 - i)));
        }
        hdr[h++] = 0x11;
        for (int i = 0; i < 4; i++) hdr[h++] = (uint8_t)(m.invocation_counter >> (24 - 8 * i));
        require(h == m.gsa.offset && memcmp(hdr, data, h) == 0, "wrapper framing round trip");
    } else {
        require(m.kind == SMKI_GBCS_BLOCK, "a known kind");
        require(m.block.body_offset + m.block.body_len == size, "block body runs to the end");
        require(m.block.cra >= 1 && m.block.cra <= 3, "block CRA 1..3");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size);
    uint8_t *bin = NULL;
    size_t len = 0;
    if (smki_gbcs_decode_input(data, size, &bin, &len) == 0) {
        if (len != size || memcmp(bin, data, size) != 0) check(bin, len);
        free(bin);
    } else {
        smki_error_clear();
    }
    return 0;
}
