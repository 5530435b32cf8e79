/* Remote Party Roles (reference §3): the two hex digits in the OU of organisation
 * and CA certificates, as one table that parsing, formatting, the profiles and the
 * linter all read. */
#include "policy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DS SMKI_KU_DIGITAL_SIGNATURE
#define KA SMKI_KU_KEY_AGREEMENT

/* org_usages: a Remote Party holds a DS and a KA certificate of a role unless the role
 * only signs. The XML signing roles sign DUIS messages (reference §8) and nothing else. */
static const smki_role_t ROLES[] = {
    {SMKI_ROLE_ROOT, "root", "Root", SMKI_ROLE_ON_ROOT, 0},
    {SMKI_ROLE_RECOVERY, "recovery", "Recovery", SMKI_ROLE_ON_ORGANISATION, DS | KA},
    {SMKI_ROLE_SUPPLIER, "supplier", "Supplier", SMKI_ROLE_ON_ORGANISATION, DS | KA},
    {SMKI_ROLE_NETWORK_OPERATOR, "networkOperator", "Network Operator", SMKI_ROLE_ON_ORGANISATION, DS | KA},
    {SMKI_ROLE_ACB, "accessControlBroker", "Access Control Broker", SMKI_ROLE_ON_ORGANISATION, DS | KA},
    {SMKI_ROLE_TRANSITIONAL_COS, "transitionalCoS", "Transitional Change of Supplier", SMKI_ROLE_ON_ORGANISATION,
     DS | KA},
    {SMKI_ROLE_WAN_PROVIDER, "wanProvider", "WAN Provider", SMKI_ROLE_ON_ORGANISATION, DS | KA},
    {SMKI_ROLE_ISSUING_AUTHORITY, "issuingAuthority", "Issuing Authority", SMKI_ROLE_ON_ISSUING_CA, 0},
    {SMKI_ROLE_LOAD_CONTROLLER, "loadController", "Load Controller", SMKI_ROLE_ON_ORGANISATION, DS | KA},
    {SMKI_ROLE_OTHER, "other", "Other", SMKI_ROLE_ON_ORGANISATION, DS | KA},
    {SMKI_ROLE_XML_SIGN, "xmlSign", "XML signing (a User's DUIS signing key)", SMKI_ROLE_ON_ORGANISATION, DS},
    {SMKI_ROLE_DSP_XML_SIGN, "dspXmlSign", "DSP XML signing", SMKI_ROLE_ON_ORGANISATION, DS},
};

const smki_role_t *smki_roles(size_t *n)
{
    if (n) *n = sizeof ROLES / sizeof ROLES[0];
    return ROLES;
}

const smki_role_t *smki_role_by_code(unsigned code)
{
    for (size_t i = 0; i < sizeof ROLES / sizeof ROLES[0]; i++)
        if (ROLES[i].code == code) return &ROLES[i];
    return NULL;
}

const char *smki_role_name(unsigned code)
{
    const smki_role_t *r = smki_role_by_code(code);
    return r ? r->name : "unknown";
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* A refused input is quoted printable and cut short, never echoed raw. */
static void quote(const char *text, char out[64])
{
    size_t n = 0;
    out[n++] = '"';
    for (size_t i = 0; text[i] && n < 56; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            out[n++] = (char)ch;
        } else {
            snprintf(out + n, 64 - n, "\\x%02X", ch);
            n += 4;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
}

int smki_role_parse(const char *text, uint8_t *code)
{
    ENSURE(text, SMKI_E_USAGE, "not a Remote Party Role: (null)");
    size_t len = strnlen(text, 64);
    if (len == 2 && hex_digit(text[0]) >= 0 && hex_digit(text[1]) >= 0) {
        unsigned v = (unsigned)(hex_digit(text[0]) << 4 | hex_digit(text[1]));
        if (smki_role_by_code(v)) {
            *code = (uint8_t)v;
            return 0;
        }
    }
    for (size_t i = 0; len < 64 && i < sizeof ROLES / sizeof ROLES[0]; i++)
        if (strcasecmp(text, ROLES[i].name) == 0) {
            *code = ROLES[i].code;
            return 0;
        }
    char q[64];
    quote(text, q);
    return SMKI_FAIL(SMKI_E_USAGE,
                     "not a Remote Party Role: %s (two hex digits such as 02, or a name such as supplier; "
                     "roles: 00 01 02 03 04 05 06 07 08 7F 87 89)",
                     q);
}

void smki_role_format(uint8_t code, char out[SMKI_ROLE_TEXT_MAX])
{
    static const char hex[] = "0123456789ABCDEF";
    out[0] = hex[code >> 4];
    out[1] = hex[code & 0xf];
    out[2] = '\0';
}
