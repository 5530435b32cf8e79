/* est/decode: what an EST client sends, read strictly and within bounds: base64 of a
 * PKCS#10 (RFC 7030 4.2.1), one PEM CSR, concatenated PEM CSRs for a batch, and the
 * path label that names the certificate asked for. No allocation; every octet from
 * outside is checked before it is used. */
#include <string.h>

#include "est.h"

static const char BEGIN_CSR[] = "-----BEGIN CERTIFICATE REQUEST-----";
static const char END_CSR[] = "-----END CERTIFICATE REQUEST-----";
static const char BEGIN_NEW[] = "-----BEGIN NEW CERTIFICATE REQUEST-----";
static const char END_NEW[] = "-----END NEW CERTIFICATE REQUEST-----";

static int is_space(uint8_t ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int b64_value(uint8_t ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

/* The last group of four, short by pad characters (or unpadded, 2 or 3 characters):
 * its octets, and no bit set beyond them (a canonical encoding). */
static int b64_tail(uint32_t acc, size_t have, uint8_t *out, size_t cap, size_t *o)
{
    ENSURE(have == 2 || have == 3, SMKI_E_INPUT, "base64: a last group of %zu character(s)", have);
    acc <<= 6 * (4 - have);
    size_t n = have - 1;
    ENSURE(*o + n <= cap, SMKI_E_INPUT, "base64: more than %zu octets decoded", cap);
    ENSURE((acc & (have == 2 ? 0xFFFFu : 0xFFu)) == 0, SMKI_E_INPUT,
           "base64: the last group has bits set beyond the data");
    out[(*o)++] = (uint8_t)(acc >> 16);
    if (n == 2) out[(*o)++] = (uint8_t)(acc >> 8);
    return 0;
}

int smki_est_base64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    ENSURE(in && out && out_len, SMKI_E_INTERNAL, "smki_est_base64_decode: missing argument");
    *out_len = 0;
    uint32_t acc = 0;
    size_t nq = 0, pad = 0, o = 0, total = 0; /* nq: characters of the group being read */
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = in[i];
        if (is_space(ch)) continue;
        total++;
        if (ch == '=') {
            /* Padding closes the last group: one or two after two or three characters. */
            ENSURE(nq >= 2 && nq + pad < 4, SMKI_E_INPUT, "base64: '=' out of place at octet %zu", i);
            pad++;
            if (nq + pad == 4) {
                GUARD(b64_tail(acc, nq, out, cap, &o));
                nq = 0;
            }
            continue;
        }
        int v = b64_value(ch);
        ENSURE(v >= 0, SMKI_E_INPUT, "base64: octet %zu (0x%02x) is not base64", i, ch);
        ENSURE(!pad, SMKI_E_INPUT, "base64: data after the padding at octet %zu", i);
        acc = acc << 6 | (uint32_t)v;
        if (++nq == 4) {
            ENSURE(o + 3 <= cap, SMKI_E_INPUT, "base64: more than %zu octets decoded", cap);
            out[o++] = (uint8_t)(acc >> 16), out[o++] = (uint8_t)(acc >> 8), out[o++] = (uint8_t)acc;
            acc = 0;
            nq = 0;
        }
    }
    ENSURE(total > 0, SMKI_E_INPUT, "base64: nothing to decode");
    ENSURE(!pad || nq == 0, SMKI_E_INPUT, "base64: the padding does not complete a group of four");
    if (nq) GUARD(b64_tail(acc, nq, out, cap, &o)); /* unpadded */
    *out_len = o;
    return 0;
}

/* The first non-space octet at or after i. */
static size_t skip_space(const uint8_t *in, size_t len, size_t i)
{
    while (i < len && is_space(in[i])) i++;
    return i;
}

static int starts(const uint8_t *in, size_t len, size_t i, const char *lit)
{
    size_t n = strlen(lit);
    return i <= len && len - i >= n && memcmp(in + i, lit, n) == 0;
}

/* The end line from i: its offset, or len when it is not within limit octets. */
static size_t find_end(const uint8_t *in, size_t len, size_t i, size_t limit, const char *lit)
{
    size_t stop = len - i > limit ? i + limit : len;
    for (size_t k = i; k < stop; k++)
        if (in[k] == '-' && starts(in, len, k, lit)) return k;
    return len;
}

int smki_est_pem_split(const uint8_t *in, size_t len, size_t max, smki_est_span *out, size_t *n)
{
    ENSURE(in && out && n, SMKI_E_INTERNAL, "smki_est_pem_split: missing argument");
    *n = 0;
    size_t i = skip_space(in, len, 0);
    while (i < len) {
        int is_new = starts(in, len, i, BEGIN_NEW);
        ENSURE(is_new || starts(in, len, i, BEGIN_CSR), SMKI_E_INPUT,
               "octet %zu: not the start of a PEM CSR ('%s'): a batch is PEM CSRs, one after another", i, BEGIN_CSR);
        ENSURE(*n < max, SMKI_E_REFUSED, "more than %zu CSRs in one batch: split it", max);
        size_t body = i + strlen(is_new ? BEGIN_NEW : BEGIN_CSR);
        const char *end_lit = is_new ? END_NEW : END_CSR;
        size_t end = find_end(in, len, body, 2 * SMKI_CSR_MAX + 1, end_lit);
        ENSURE(end < len, SMKI_E_INPUT, "CSR %zu (octet %zu): no '%s' within %d octets", *n + 1, i, end_lit,
               2 * SMKI_CSR_MAX);
        out[*n].off = body;
        out[*n].len = end - body;
        (*n)++;
        i = skip_space(in, len, end + strlen(end_lit));
    }
    ENSURE(*n > 0, SMKI_E_INPUT, "no PEM CSR in the body");
    return 0;
}

int smki_est_csr_body(const uint8_t *in, size_t len, uint8_t *der, size_t cap, size_t *der_len)
{
    ENSURE(in && der && der_len, SMKI_E_INTERNAL, "smki_est_csr_body: missing argument");
    *der_len = 0;
    size_t i = skip_space(in, len, 0);
    if (i < len && in[i] == '-') {
        smki_est_span one;
        size_t n = 0;
        GUARD(smki_est_pem_split(in, len, 1, &one, &n));
        return smki_est_base64_decode(in + one.off, one.len, der, cap, der_len);
    }
    return smki_est_base64_decode(in, len, der, cap, der_len);
}

int smki_est_label_parse(const char *label, smki_est_label *out)
{
    ENSURE(label && out, SMKI_E_INTERNAL, "smki_est_label_parse: missing argument");
    memset(out, 0, sizeof *out);
    out->role = -1;
    if (strcmp(label, "device") == 0) out->type = SMKI_REQ_DEVICE_BATCH;
    else if (strcmp(label, "dccki-client") == 0) out->type = SMKI_REQ_DCCKI_CLIENT;
    else if (strcmp(label, "dccki-server") == 0) out->type = SMKI_REQ_DCCKI_SERVER;
    else if (strncmp(label, "org-", 4) == 0) {
        const char *role = label + 4, *dash = strchr(role, '-');
        ENSURE(dash && dash > role && dash - role < 32 && dash[1], SMKI_E_USAGE,
               "label '%.64s': an organisation certificate is org-<role>-<EUI-64> (e.g. org-supplier-90B3D51F30010000)",
               label);
        char rt[32];
        memcpy(rt, role, (size_t)(dash - role));
        rt[dash - role] = 0;
        uint8_t code = 0;
        GUARD(smki_role_parse(rt, &code));
        GUARD(smki_eui64_parse(dash + 1, &out->eui));
        out->type = SMKI_REQ_ORGANISATION;
        out->role = code;
    } else
        return SMKI_FAIL(SMKI_E_USAGE,
                         "label '%.64s': not one of device, dccki-client, dccki-server, org-<role>-<EUI-64> "
                         "(docs/est.md)",
                         label);
    return 0;
}
