/* libFuzzer target for the RFC 7512 PKCS#11 URI parser and writer (hsm/uri.c).
 * Beyond not crashing: a refusal is a usage error, what parses is bounded, and
 * token, object and id survive smki_p11_uri_format and a second parse exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "hsm/uri.h"

/* Worst case of smki_p11_uri_format: every octet of a 255-octet token and object
 * and a 64-octet id escaped as %XX, plus the fixed parts. */
#define FORMAT_MAX (13 + 3 * 255 + 8 + 3 * 255 + 4 + 3 * 64 + 13 + 1)

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_p11uri: invariant failed: %s\n", what);
    abort();
}

static int is_terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

/* What any successful parse promises, whatever the input. */
static void check_parsed(const smki_p11_uri *u)
{
    require(is_terminated(u->token, sizeof u->token), "token is NUL-terminated in its buffer");
    require(is_terminated(u->object, sizeof u->object), "object is NUL-terminated in its buffer");
    require(is_terminated(u->type, sizeof u->type), "type is NUL-terminated in its buffer");
    require(is_terminated(u->module_path, sizeof u->module_path), "module-path is NUL-terminated in its buffer");
    require(is_terminated(u->pin_source, sizeof u->pin_source), "pin-source is NUL-terminated in its buffer");
    require(u->id_len <= sizeof u->id, "id fits its buffer");
    require(u->has_object || u->has_id, "a parsed URI names a key");
    if (!u->has_token) require(u->token[0] == '\0', "no token attribute, empty token");
    if (!u->has_object) require(u->object[0] == '\0', "no object attribute, empty object");
    if (!u->has_id) require(u->id_len == 0, "no id attribute, empty id");
}

/* Format into a buffer of exactly cap octets (so ASan sees any write past it). */
static int format_exact(const smki_p11_uri *u, size_t cap, char **out)
{
    *out = malloc(cap);
    require(*out != NULL, "malloc");
    return smki_p11_uri_format(u->token, u->object, u->id, u->id_len, *out, cap);
}

static void check_round_trip(const smki_p11_uri *u)
{
    char *text;
    require(format_exact(u, FORMAT_MAX, &text) == 0, "format fits the worst case");
    size_t len = strlen(text);
    require(len < FORMAT_MAX, "formatted length within the buffer");
    /* Escaping leaves only unreserved characters, '%XX' and the URI's own syntax. */
    for (size_t i = 0; i < len; i++) require(text[i] > 0x20 && text[i] < 0x7f, "formatted URI is printable ASCII");
    require(strchr(text, '?') == NULL, "formatted URI has no query");

    smki_p11_uri back;
    smki_error_clear();
    require(smki_p11_uri_parse(text, &back) == 0, "formatted URI re-parses");
    check_parsed(&back);
    require(back.has_token && back.has_object, "re-parsed URI has token and object");
    require(strcmp(back.token, u->token) == 0, "token round-trips");
    require(strcmp(back.object, u->object) == 0, "object round-trips");
    require(back.id_len == u->id_len && memcmp(back.id, u->id, u->id_len) == 0, "id round-trips");
    require(back.has_id == (u->id_len > 0), "id present after format iff it had octets");
    require(strcmp(back.type, "private") == 0, "format names the private key");

    /* The written form is canonical: writing the re-parsed URI gives the same text. */
    char *again;
    require(format_exact(&back, FORMAT_MAX, &again) == 0, "re-format succeeds");
    require(strcmp(again, text) == 0, "format is canonical");
    free(again);

    /* Exactly len + 1 octets suffice; one fewer is refused, not overrun. */
    char *tight;
    require(format_exact(u, len + 1, &tight) == 0, "format fits in strlen + 1");
    require(strcmp(tight, text) == 0, "tight format is the same text");
    free(tight);
    smki_error_clear();
    require(format_exact(u, len, &tight) == SMKI_E_USAGE, "format one octet short is a usage error");
    require(is_terminated(tight, len), "refused format leaves a terminated buffer");
    free(tight);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    text[size] = '\0';

    smki_p11_uri u;
    smki_error_clear();
    int rc = smki_p11_uri_parse(text, &u);
    if (rc != 0) {
        require(rc == SMKI_E_USAGE, "refusal is SMKI_E_USAGE");
        require(smki_error_code() == SMKI_E_USAGE, "error context holds the code");
        require(smki_error_msg()[0] != '\0', "refusal has a message");
        free(text);
        return 0;
    }
    check_parsed(&u);

    /* Parsing is a function of the text alone. */
    smki_p11_uri twice;
    require(smki_p11_uri_parse(text, &twice) == 0, "second parse succeeds");
    require(memcmp(&twice, &u, sizeof u) == 0, "second parse gives the same result");

    if (u.has_token && u.has_object) check_round_trip(&u);
    free(text);
    return 0;
}
