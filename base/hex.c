/* Hex text in and out. The RTDS message files are hex with line ends; the decoder
 * skips whitespace between digit pairs and nothing else. */
#include "base.h"

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' || ch == '\v';
}

int smki_hex_decode(const char *text, size_t text_len, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t n = 0;
    size_t i = 0;
    while (i < text_len) {
        if (is_space(text[i])) {
            i++;
            continue;
        }
        ENSURE(i + 1 < text_len, SMKI_E_INPUT, "odd number of hex digits (at offset %zu)", i);
        int hi = hex_value(text[i]);
        int lo = hex_value(text[i + 1]);
        ENSURE(hi >= 0 && lo >= 0, SMKI_E_INPUT, "not a hex digit at offset %zu: '%c%c'", i,
               (text[i] >= 32 && text[i] < 127) ? text[i] : '?',
               (text[i + 1] >= 32 && text[i + 1] < 127) ? text[i + 1] : '?');
        ENSURE(n < cap, SMKI_E_INPUT, "hex input longer than %zu octets", cap);
        out[n++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    *out_len = n;
    return 0;
}

void smki_hex_encode(const uint8_t *in, size_t len, char *out, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * len] = '\0';
}
