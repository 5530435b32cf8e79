/* Signing a pre-command as an organisation: the correlation checks (message code,
 * target, counter window) and the signer checks (a DS organisation certificate whose
 * EUI-64 is the originator and whose key is the one signing) before any signature. */
#include "gbcs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void eui_text(const uint8_t b[8], char out[SMKI_EUI64_TEXT_MAX])
{
    smki_eui64_t id = smki_gbcs_eui(b);
    smki_eui64_format(&id, SMKI_EUI64_PLAIN, out);
}

int smki_gbcs_check_expect(const smki_gbcs_signing *g, const smki_gbcs_expect *e)
{
    if (!e) return 0;
    ENSURE(!e->has_code || e->code == g->message_code, SMKI_E_REFUSED,
           "message code: expected %04X, found %04X", e->code, g->message_code);
    if (e->has_target && memcmp(e->target.b, g->recipient, 8) != 0) {
        char want[SMKI_EUI64_TEXT_MAX], got[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(&e->target, SMKI_EUI64_PLAIN, want);
        eui_text(g->recipient, got);
        return SMKI_FAIL(SMKI_E_REFUSED, "target (recipient): expected %s, found %s", want, got);
    }
    ENSURE(!e->has_counter || (g->counter >= e->counter_min && g->counter <= e->counter_max), SMKI_E_REFUSED,
           "originator counter: expected %llu-%llu, found %llu", (unsigned long long)e->counter_min,
           (unsigned long long)e->counter_max, (unsigned long long)g->counter);
    return 0;
}

int smki_gbcs_check_signer(X509 *cert, smki_key *key, const smki_gbcs_signing *g)
{
    smki_gbcs_cert_info ci;
    GUARD(smki_gbcs_cert_info_get(cert, &ci));
    ENSURE(ci.has_id && !ci.is_device, SMKI_E_REFUSED,
           "the signing certificate is not an organisation certificate (no x500UniqueIdentifier)");
    ENSURE(ci.key_usage & SMKI_KU_DIGITAL_SIGNATURE, SMKI_E_REFUSED,
           "the signing certificate is not a digital-signature certificate (keyUsage lacks digitalSignature)");
    if (memcmp(ci.id.b, g->originator, 8) != 0) {
        char want[SMKI_EUI64_TEXT_MAX], got[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(&ci.id, SMKI_EUI64_PLAIN, want);
        eui_text(g->originator, got);
        return SMKI_FAIL(SMKI_E_REFUSED, "originator: the certificate is %s's, the pre-command's originator is %s",
                         want, got);
    }
    if (key) {
        EVP_PKEY *kp = smki_key_public(key);
        EVP_PKEY *cp = X509_get0_pubkey(cert);
        ENSURE(kp && cp && EVP_PKEY_eq(kp, cp) == 1, SMKI_E_REFUSED,
               "the key %s is not the key of the signing certificate", smki_key_ref(key));
    }
    return 0;
}

int smki_gbcs_sign_as(smki_key *key, X509 *cert, const smki_gbcs_expect *e, const uint8_t *pre, size_t pre_len,
                      uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    smki_gbcs_msg m;
    if (smki_gbcs_parse(pre, pre_len, &m) < 0) return smki_error_wrap("pre-command");
    ENSURE(m.kind == SMKI_GBCS_SIGNING, SMKI_E_INPUT,
           "pre-command is a %s message: only a general-signing APDU (DF) is signed", smki_gbcs_kind_name(m.kind));
    ENSURE(m.gsa.sig_state != SMKI_GBCS_SIG_PRESENT, SMKI_E_REFUSED, "pre-command already carries a signature");
    GUARD(smki_gbcs_check_expect(&m.gsa, e));
    GUARD(smki_gbcs_check_signer(cert, key, &m.gsa));
    return smki_gbcs_sign(key, pre, pre_len, out, out_len);
}

int smki_gbcs_time_parse(const char *text, time_t *out)
{
    if (strcmp(text, "now") == 0) {
        *out = time(NULL);
        return 0;
    }
    int y, mo, d, h = 0, mi = 0, s = 0;
    char z = 0, extra;
    size_t n = strlen(text);
    int ok;
    if (n == 10)
        ok = sscanf(text, "%4d-%2d-%2d%c", &y, &mo, &d, &extra) == 3;
    else
        ok = n == 20 && sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%c%c", &y, &mo, &d, &h, &mi, &s, &z, &extra) == 7 &&
             z == 'Z';
    ENSURE(ok && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 60 && y >= 1970, SMKI_E_USAGE,
           "'%.40s' is not a time: give YYYY-MM-DDTHH:MM:SSZ, YYYY-MM-DD or now", text);
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    *out = timegm(&tm);
    return 0;
}
