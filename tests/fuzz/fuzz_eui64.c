/* libFuzzer target for the EUI-64 and range text parsers. Beyond not crashing, it
 * checks what the parsers promise: strictness (accepted text is one of the written
 * forms), round trips in every style, sound block arithmetic, and refusals that
 * are usage errors with a message safe to print. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/policy.h"

static void require(int cond, const char *what, const char *input)
{
    if (cond) return;
    fprintf(stderr, "fuzz_eui64: invariant failed: %s (input %zu bytes)\n", what, strlen(input));
    abort();
}

/* A refusal is SMKI_E_USAGE with a non-empty message of printable ASCII: the
 * input is quoted escaped, never raw. */
static void check_refusal(int rc, const char *input)
{
    require(rc == SMKI_E_USAGE, "refusal is SMKI_E_USAGE", input);
    require(smki_error_code() == SMKI_E_USAGE, "error context holds the code", input);
    const char *msg = smki_error_msg();
    require(msg[0] != '\0', "refusal has a message", input);
    for (const char *m = msg; *m; m++) require(*m >= 0x20 && *m < 0x7f, "message is printable ASCII", input);
}

static void check_id(const smki_eui64_t *id, const char *input)
{
    static const smki_eui64_style styles[] = {SMKI_EUI64_PLAIN, SMKI_EUI64_HYPHEN, SMKI_EUI64_COLON};
    int matches_input = 0;
    for (size_t s = 0; s < 3; s++) {
        char text[SMKI_EUI64_TEXT_MAX];
        smki_eui64_t back;
        smki_eui64_format(id, styles[s], text);
        require(strlen(text) == (styles[s] == SMKI_EUI64_PLAIN ? 16u : 23u), "formatted length", input);
        for (const char *t = text; *t; t++) require(!(*t >= 'a' && *t <= 'z'), "formatted uppercase", input);
        require(smki_eui64_parse(text, &back) == 0, "formatted ID re-parses", input);
        require(smki_eui64_cmp(id, &back) == 0, "re-parsed ID is the same", input);
        if (strcasecmp(text, input) == 0) matches_input = 1;
    }
    /* Strictness: whatever was accepted is one of the three forms, in some case. */
    require(matches_input, "accepted text is a formatted form", input);
    smki_eui64_t via_u64 = smki_eui64_from_u64(smki_eui64_to_u64(id));
    require(smki_eui64_cmp(id, &via_u64) == 0, "u64 round trip", input);
}

static void check_range(const smki_eui64_range_t *r, const char *input)
{
    unsigned bits = r->prefix_bits;
    require(bits == 24 || bits == 28 || bits == 36, "IEEE prefix length", input);
    uint64_t size = smki_eui64_range_size(r);
    uint64_t first = smki_eui64_to_u64(&r->first);
    uint64_t last = smki_eui64_to_u64(&r->last);
    require(size == UINT64_C(1) << (64 - bits), "size is 2^(64-bits)", input);
    require(last - first == size - 1, "last - first + 1 == size", input);
    require((first & (size - 1)) == 0, "first is aligned", input);
    require(smki_eui64_range_contains(r, &r->first), "contains first", input);
    require(smki_eui64_range_contains(r, &r->last), "contains last", input);
    if (first > 0) {
        smki_eui64_t before = smki_eui64_from_u64(first - 1);
        require(!smki_eui64_range_contains(r, &before), "excludes one before first", input);
    }
    if (last < UINT64_MAX) {
        smki_eui64_t past = smki_eui64_from_u64(last + 1);
        require(!smki_eui64_range_contains(r, &past), "excludes one past last", input);
    }
    require(smki_eui64_range_within(r, r) && smki_eui64_range_overlaps(r, r), "within and overlaps itself", input);

    smki_eui64_t id;
    require(smki_eui64_range_nth(r, 0, &id) == 0 && smki_eui64_cmp(&id, &r->first) == 0, "nth(0) is first", input);
    require(smki_eui64_range_nth(r, size - 1, &id) == 0 && smki_eui64_cmp(&id, &r->last) == 0,
            "nth(size-1) is last", input);
    require(smki_eui64_range_nth(r, size, &id) == SMKI_E_REFUSED, "nth(size) refused", input);
    require(smki_eui64_range_add(r, &r->last, 1, &id) == SMKI_E_REFUSED, "last + 1 refused", input);
    require(smki_eui64_range_add(r, &r->first, UINT64_MAX, &id) == SMKI_E_REFUSED, "first + max refused", input);

    char text[48];
    smki_eui64_range_t back;
    smki_eui64_range_format(r, text);
    require(smki_eui64_range_parse(text, &back) == 0, "formatted range re-parses", input);
    require(smki_eui64_cmp(&back.first, &r->first) == 0 && smki_eui64_cmp(&back.last, &r->last) == 0 &&
                back.prefix_bits == bits,
            "re-parsed range is the same", input);
    smki_eui64_range_t again;
    require(smki_eui64_range_from_prefix(&r->first, bits, &again) == 0 &&
                smki_eui64_cmp(&again.last, &r->last) == 0,
            "from_prefix agrees", input);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    text[size] = '\0';

    smki_eui64_t id;
    smki_error_clear();
    int rc = smki_eui64_parse(text, &id);
    if (rc == 0)
        check_id(&id, text);
    else
        check_refusal(rc, text);

    smki_eui64_range_t r;
    smki_error_clear();
    rc = smki_eui64_range_parse(text, &r);
    if (rc == 0)
        check_range(&r, text);
    else
        check_refusal(rc, text);

    /* Any eight bytes are an ID: as a block's base it starts a block or is refused
     * for its low bits; with those bits cleared it always starts one. */
    if (size >= 9) {
        memcpy(id.b, data, 8);
        unsigned bits = data[8] % 3 == 0 ? 24 : data[8] % 3 == 1 ? 28 : 36;
        smki_error_clear();
        rc = smki_eui64_range_from_prefix(&id, bits, &r);
        if (rc == 0)
            check_range(&r, text);
        else
            check_refusal(rc, text);
        uint64_t base = smki_eui64_to_u64(&id) & ~((UINT64_C(1) << (64 - bits)) - 1);
        id = smki_eui64_from_u64(base);
        require(smki_eui64_range_from_prefix(&id, bits, &r) == 0, "a clean base starts a block", text);
        check_range(&r, text);
    }
    free(text);
    return 0;
}
