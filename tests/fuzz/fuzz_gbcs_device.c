/* libFuzzer target for what a GBCS device reads from outside (gbcs/device_der.c): the
 * General Ciphering / General Signing layout and the CS02b content. Beyond not
 * crashing: every span a parse yields lies inside the input, an accepted CS02b builds
 * back (smki_cs02b_build) into content that parses to the same fields. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gbcs/device_private.h"

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_gbcs_device: invariant failed: %s\n", what);
    abort();
}

static int inside(const uint8_t *base, size_t size, const uint8_t *p, size_t n)
{
    return n == 0 || (p >= base && n <= size && (size_t)(p - base) <= size - n);
}

static void check_cs02b(const uint8_t *data, size_t size)
{
    static smki_gbcs_cs02b q, again;
    if (smki_gbcs_cs02b_parse(data, size, &q) < 0) {
        smki_error_clear();
        return;
    }
    require(q.nrepl >= 1 && q.nrepl <= SMKI_CS02B_MAX_REPLACEMENTS, "replacements in bounds");
    require(q.mode >= 2 && q.mode <= 9, "a known mode");
    smki_cs02b_request r;
    memset(&r, 0, sizeof r);
    r.mode = q.mode;
    r.auth_seq = q.auth_seq;
    r.apply_time_checks = q.time_checks;
    r.has_auth_cell = q.has_auth_cell;
    r.auth_cell = q.auth_cell;
    r.has_new_floor = q.has_new_floor;
    r.new_floor = q.new_floor;
    for (size_t i = 0; i < q.nrepl; i++) {
        require(inside(data, size, q.repl[i].cert, q.repl[i].len), "certificate inside the input");
        r.repl[i].cert = q.repl[i].cert;
        r.repl[i].len = q.repl[i].len;
        r.repl[i].target = q.repl[i].target;
    }
    r.nrepl = q.nrepl;
    for (size_t i = 0; i < q.npath && i < 4; i++) {
        require(inside(data, size, q.path[i].cert, q.path[i].len), "path certificate inside the input");
        r.path[i].cert = q.path[i].cert;
        r.path[i].len = q.path[i].len;
        r.npath++;
    }
    for (size_t i = 0; i < q.nother && i < 8; i++) {
        r.other[i].role = q.other[i].role;
        r.other[i].floor = q.other[i].floor;
        r.nother++;
    }
    uint8_t *der = NULL;
    size_t len = 0;
    require(smki_cs02b_build(&r, &der, &len) == 0, "an accepted CS02b builds");
    require(smki_gbcs_cs02b_parse(der, len, &again) == 0, "the rebuilt CS02b parses");
    require(again.mode == q.mode && again.auth_seq == q.auth_seq && again.nrepl == q.nrepl &&
                again.time_checks == q.time_checks && again.has_new_floor == q.has_new_floor &&
                (!q.has_new_floor || again.new_floor == q.new_floor),
            "the rebuilt CS02b has the same fields");
    for (size_t i = 0; i < q.nrepl; i++)
        require(memcmp(&again.repl[i].target, &q.repl[i].target, sizeof q.repl[i].target) == 0 &&
                    again.repl[i].len == q.repl[i].len,
                "same targets");
    free(der);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static smki_gbcs_cmd c;
    if (smki_gbcs_cmd_parse(data, size, &c) == 0) {
        require(inside(data, size, c.gs.apdu, c.gs.apdu_len), "APDU inside the input");
        require(inside(data, size, c.gs.content, c.gs.content_len), "content inside the input");
        require(inside(data, size, c.gs.signed_part, c.gs.signed_len), "signed part inside the input");
        require(!c.wrapped || inside(data, size, c.mac, SMKI_GBCS_MAC_LEN), "MAC inside the input");
        require(!c.gs.has_signature || inside(data, size, c.gs.signature, 64), "signature inside the input");
        check_cs02b(c.gs.content, c.gs.content_len);
    } else {
        smki_error_clear();
    }
    check_cs02b(data, size);
    return 0;
}
