/* RFC 7512 PKCS#11 URIs. Every byte comes from a user or a config file: parsed
 * through bounded buffers, percent-escapes checked, anything unknown refused. */
#include "uri.h"

#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "hsm.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode value[0..len) into out (cap octets); *out_len gets the length. */
static int pct_decode(const char *name, const char *value, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = (uint8_t)value[i];
        if (ch == '%') {
            ENSURE(i + 2 < len, SMKI_E_USAGE, "PKCS#11 URI: truncated %%-escape in '%s'", name);
            int hi = hexval(value[i + 1]), lo = hexval(value[i + 2]);
            ENSURE(hi >= 0 && lo >= 0, SMKI_E_USAGE, "PKCS#11 URI: bad %%-escape in '%s'", name);
            ch = (uint8_t)(hi << 4 | lo);
            i += 2;
        }
        ENSURE(n < cap, SMKI_E_USAGE, "PKCS#11 URI: '%s' is longer than %zu octets", name, cap);
        out[n++] = ch;
    }
    *out_len = n;
    return 0;
}

static int decode_text(const char *name, const char *value, size_t len, char *out, size_t cap)
{
    size_t n;
    GUARD(pct_decode(name, value, len, (uint8_t *)out, cap - 1, &n));
    ENSURE(memchr(out, '\0', n) == NULL, SMKI_E_USAGE, "PKCS#11 URI: '%s' contains a NUL", name);
    out[n] = '\0';
    return 0;
}

static int path_attr(smki_p11_uri *u, const char *name, size_t nlen, const char *value, size_t vlen)
{
#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
    if (IS("token")) {
        ENSURE(!u->has_token, SMKI_E_USAGE, "PKCS#11 URI: 'token' given twice");
        u->has_token = 1;
        return decode_text("token", value, vlen, u->token, sizeof u->token);
    }
    if (IS("object")) {
        ENSURE(!u->has_object, SMKI_E_USAGE, "PKCS#11 URI: 'object' given twice");
        u->has_object = 1;
        return decode_text("object", value, vlen, u->object, sizeof u->object);
    }
    if (IS("id")) {
        ENSURE(!u->has_id, SMKI_E_USAGE, "PKCS#11 URI: 'id' given twice");
        u->has_id = 1;
        return pct_decode("id", value, vlen, u->id, sizeof u->id, &u->id_len);
    }
    if (IS("type")) return decode_text("type", value, vlen, u->type, sizeof u->type);
    if (IS("manufacturer") || IS("model") || IS("serial") || IS("slot-id") || IS("slot-description") ||
        IS("slot-manufacturer") || IS("library-manufacturer") || IS("library-description") ||
        IS("library-version"))
        return 0;
#undef IS
    return SMKI_FAIL(SMKI_E_USAGE, "PKCS#11 URI: unknown attribute '%.*s'", (int)(nlen > 40 ? 40 : nlen), name);
}

static int query_attr(smki_p11_uri *u, const char *name, size_t nlen, const char *value, size_t vlen)
{
#define IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
    if (IS("module-path")) return decode_text("module-path", value, vlen, u->module_path, sizeof u->module_path);
    if (IS("pin-source")) return decode_text("pin-source", value, vlen, u->pin_source, sizeof u->pin_source);
    if (IS("pin-value"))
        return SMKI_FAIL(SMKI_E_USAGE, "PKCS#11 URI: pin-value refused: give the PIN in SMKI_PIN or a PIN file");
    if (IS("module-name")) return 0;
#undef IS
    return SMKI_FAIL(SMKI_E_USAGE, "PKCS#11 URI: unknown query attribute '%.*s'", (int)(nlen > 40 ? 40 : nlen),
                     name);
}

typedef int (*attr_fn)(smki_p11_uri *, const char *, size_t, const char *, size_t);

/* Split s[0..len) on sep into name=value pairs and hand each to fn. */
static int split_attrs(smki_p11_uri *u, const char *s, size_t len, char sep, attr_fn fn)
{
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && s[end] != sep) end++;
        const char *eq = memchr(s + i, '=', end - i);
        ENSURE(eq != NULL, SMKI_E_USAGE, "PKCS#11 URI: attribute without '=': '%.*s'",
               (int)((end - i) > 40 ? 40 : end - i), s + i);
        size_t nlen = (size_t)(eq - (s + i));
        ENSURE(nlen > 0, SMKI_E_USAGE, "PKCS#11 URI: empty attribute name");
        GUARD(fn(u, s + i, nlen, eq + 1, (size_t)(s + end - (eq + 1))));
        i = end + 1;
    }
    return 0;
}

int smki_p11_uri_parse(const char *text, smki_p11_uri *out)
{
    memset(out, 0, sizeof *out);
    ENSURE(text != NULL, SMKI_E_USAGE, "PKCS#11 URI missing");
    ENSURE(strncmp(text, "pkcs11:", 7) == 0, SMKI_E_USAGE, "not a PKCS#11 URI (must start with 'pkcs11:'): '%.64s'",
           text);
    const char *path = text + 7;
    size_t total = strnlen(path, 4096);
    ENSURE(total < 4096, SMKI_E_USAGE, "PKCS#11 URI longer than 4096 characters");
    const char *q = memchr(path, '?', total);
    size_t plen = q ? (size_t)(q - path) : total;
    GUARD(split_attrs(out, path, plen, ';', path_attr));
    if (q) GUARD(split_attrs(out, q + 1, total - plen - 1, '&', query_attr));
    ENSURE(out->has_object || out->has_id, SMKI_E_USAGE, "PKCS#11 URI names no key: give object= or id=");
    return 0;
}

static int is_unreserved(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

static int append(char *out, size_t cap, size_t *used, const char *s, size_t n)
{
    ENSURE(*used + n < cap, SMKI_E_USAGE, "PKCS#11 URI longer than %zu characters", cap - 1);
    memcpy(out + *used, s, n);
    *used += n;
    out[*used] = '\0';
    return 0;
}

static int append_pct(char *out, size_t cap, size_t *used, const uint8_t *v, size_t n, int escape_all)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        if (!escape_all && is_unreserved(v[i])) {
            GUARD(append(out, cap, used, (const char *)v + i, 1));
        } else {
            char esc[3] = {'%', digits[v[i] >> 4], digits[v[i] & 15]};
            GUARD(append(out, cap, used, esc, 3));
        }
    }
    return 0;
}

int smki_p11_uri_format(const char *token, const char *object, const uint8_t *id, size_t id_len, char *out,
                        size_t cap)
{
    size_t used = 0;
    ENSURE(cap > 0, SMKI_E_INTERNAL, "no room for a URI");
    out[0] = '\0';
    GUARD(append(out, cap, &used, "pkcs11:token=", 13));
    GUARD(append_pct(out, cap, &used, (const uint8_t *)token, strlen(token), 0));
    if (object) {
        GUARD(append(out, cap, &used, ";object=", 8));
        GUARD(append_pct(out, cap, &used, (const uint8_t *)object, strlen(object), 0));
    }
    if (id && id_len) {
        GUARD(append(out, cap, &used, ";id=", 4));
        GUARD(append_pct(out, cap, &used, id, id_len, 1));
    }
    return append(out, cap, &used, ";type=private", 13);
}

int smki_p11_uri_format_public(const char *token, const char *object, char *out, size_t cap)
{
    return smki_p11_uri_format(token, object, NULL, 0, out, cap);
}

/* ---- Key arguments as people write them ----------------------------------------------- */

int smki_key_ref_refuse_file(const char *arg)
{
    struct stat st;
    if (stat(arg, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    /* A bare name is a token key's label; reading it as a path only when a file of that
     * name happens to be here would make one argument mean two keys. */
    return SMKI_FAIL(SMKI_E_USAGE, "'%.200s' is a file, but a key without file: is a label on the token: write "
                     "file:%.200s to use the key in that file",
                     arg, arg);
}

int smki_key_ref_resolve(const char *arg, const char *token, char *ref, size_t cap)
{
    ENSURE(arg && *arg, SMKI_E_USAGE, "no key given (a pkcs11: URI, file:PATH, or a key label)");
    if (strncmp(arg, "pkcs11:", 7) == 0 || strncmp(arg, "file:", 5) == 0) {
        ENSURE(strlen(arg) < cap, SMKI_E_USAGE, "key reference longer than %zu characters", cap - 1);
        memcpy(ref, arg, strlen(arg) + 1);
        return 0;
    }
    GUARD(smki_key_ref_refuse_file(arg));
    ENSURE(strpbrk(arg, ";?%:") == NULL, SMKI_E_USAGE,
           "'%.64s' is not a key: give a pkcs11: URI, file:PATH, or a key label on the home's token", arg);
    return smki_p11_uri_format_public(token, arg, ref, cap);
}
