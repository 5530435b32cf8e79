/* Certificate profiles as data (reference §4, GBCS 12; DCCKI: docs/profiles.md):
 * one row per kind of certificate that the linter reads, and issuance can read,
 * instead of a code path per kind. */
#include "policy.h"

#include <string.h>

#define DS SMKI_KU_DIGITAL_SIGNATURE
#define KA SMKI_KU_KEY_AGREEMENT
#define CA_KU (SMKI_KU_KEY_CERT_SIGN | SMKI_KU_CRL_SIGN)
/* What every SMKI certificate carries (reference §4); a device adds its SAN. */
#define SMKI_EXTS (SMKI_EXT_KEY_USAGE | SMKI_EXT_SKI | SMKI_EXT_AKI | SMKI_EXT_BASIC | SMKI_EXT_POLICIES)
/* DCCKI certificates are read by TLS stacks outside smart metering: revocation
 * pointers (CRL DP, AIA) are normal there, so they are allowed and anything else
 * unexpected is a warning, not an error. */
#define DCCKI_CA_EXTS (SMKI_EXTS | SMKI_EXT_CRL_DP | SMKI_EXT_AIA)
#define DCCKI_EE_EXTS (DCCKI_CA_EXTS | SMKI_EXT_SAN | SMKI_EXT_EKU)

static const smki_profile PROFILES[SMKI_PROFILE_COUNT] = {
    /* Row 0: a certificate whose kind cannot be told. Only the rules of reference
     * §4 "All certificates" apply (0 in a field: not checked). */
    [SMKI_PROFILE_UNKNOWN] =
        {
            .id = SMKI_PROFILE_UNKNOWN,
            .name = "unknown",
            .title = "certificate of no known profile",
            .pki = SMKI_PKI_SMKI,
            .self_signed = -1,
            .ku_allowed = 0xFFFF,
            .path_len = SMKI_PATHLEN_ANY,
            .ski = SMKI_SKI_METHOD2,
            .aki = SMKI_AKI_KEYID8_OR_SELF,
            .policy_critical = 1,
            .ext_allowed = 0xFFFF,
        },
    [SMKI_PROFILE_SMKI_ROOT] =
        {
            .id = SMKI_PROFILE_SMKI_ROOT,
            .name = "smki-root",
            .title = "SMKI Root CA certificate",
            .pki = SMKI_PKI_SMKI,
            .is_ca = 1,
            .self_signed = 1,
            .subject = SMKI_SUBJECT_SMKI_CA,
            .roles = SMKI_ROLE_ON_ROOT,
            .san = SMKI_SAN_ABSENT,
            .ku_required = CA_KU,
            .ku_allowed = CA_KU,
            .basic = SMKI_BASIC_CA,
            .path_len = SMKI_PATHLEN_ANY,
            .ski = SMKI_SKI_METHOD2,
            .aki = SMKI_AKI_KEYID8_OR_SELF,
            .policy = SMKI_POLICY_ROOT,
            .policy_critical = 1,
            .eku = SMKI_EKU_FORBIDDEN,
            .validity = SMKI_VALIDITY_YEARS,
            .ext_allowed = SMKI_EXTS,
            .extra_ext_error = 1,
        },
    [SMKI_PROFILE_SMKI_OCA] =
        {
            .id = SMKI_PROFILE_SMKI_OCA,
            .name = "smki-oca",
            .title = "SMKI Organisation CA certificate",
            .pki = SMKI_PKI_SMKI,
            .is_ca = 1,
            .subject = SMKI_SUBJECT_SMKI_CA,
            .roles = SMKI_ROLE_ON_ISSUING_CA,
            .san = SMKI_SAN_ABSENT,
            .ku_required = CA_KU,
            .ku_allowed = CA_KU,
            .basic = SMKI_BASIC_CA,
            .path_len = 0,
            .ski = SMKI_SKI_METHOD2,
            .aki = SMKI_AKI_KEYID8,
            .policy = SMKI_POLICY_ORG,
            .policy_critical = 1,
            .eku = SMKI_EKU_FORBIDDEN,
            .validity = SMKI_VALIDITY_YEARS,
            .ext_allowed = SMKI_EXTS,
            .extra_ext_error = 1,
        },
    [SMKI_PROFILE_SMKI_DCA] =
        {
            .id = SMKI_PROFILE_SMKI_DCA,
            .name = "smki-dca",
            .title = "SMKI Device CA certificate",
            .pki = SMKI_PKI_SMKI,
            .is_ca = 1,
            .subject = SMKI_SUBJECT_SMKI_CA,
            .roles = SMKI_ROLE_ON_ISSUING_CA,
            .san = SMKI_SAN_ABSENT,
            .ku_required = CA_KU,
            .ku_allowed = CA_KU,
            .basic = SMKI_BASIC_CA,
            .path_len = 0,
            .ski = SMKI_SKI_METHOD2,
            .aki = SMKI_AKI_KEYID8,
            .policy = SMKI_POLICY_DEVICE,
            .policy_critical = 1,
            .eku = SMKI_EKU_FORBIDDEN,
            .validity = SMKI_VALIDITY_YEARS,
            .ext_allowed = SMKI_EXTS,
            .extra_ext_error = 1,
        },
    [SMKI_PROFILE_ORGANISATION] =
        {
            .id = SMKI_PROFILE_ORGANISATION,
            .name = "organisation",
            .title = "SMKI Organisation Certificate",
            .pki = SMKI_PKI_SMKI,
            .subject = SMKI_SUBJECT_ORGANISATION,
            .roles = SMKI_ROLE_ON_ORGANISATION,
            .san = SMKI_SAN_ABSENT,
            .ku_one_of = DS | KA,
            .ku_allowed = DS | KA,
            .basic = SMKI_BASIC_END_ENTITY,
            .path_len = SMKI_PATHLEN_ABSENT,
            .ski = SMKI_SKI_METHOD2,
            .aki = SMKI_AKI_KEYID8,
            .policy = SMKI_POLICY_ORG,
            .policy_critical = 1,
            .eku = SMKI_EKU_FORBIDDEN,
            .validity = SMKI_VALIDITY_YEARS,
            .ext_allowed = SMKI_EXTS,
            .extra_ext_error = 1,
        },
    [SMKI_PROFILE_DEVICE] =
        {
            .id = SMKI_PROFILE_DEVICE,
            .name = "device",
            .title = "SMKI Device Certificate",
            .pki = SMKI_PKI_SMKI,
            .subject = SMKI_SUBJECT_EMPTY,
            .san = SMKI_SAN_HARDWARE_MODULE,
            .ku_one_of = DS | KA,
            .ku_allowed = DS | KA,
            .basic = SMKI_BASIC_END_ENTITY,
            .path_len = SMKI_PATHLEN_ABSENT,
            .ski = SMKI_SKI_METHOD2,
            .aki = SMKI_AKI_KEYID8,
            .policy = SMKI_POLICY_DEVICE,
            .policy_critical = 1,
            .eku = SMKI_EKU_FORBIDDEN,
            .validity = SMKI_VALIDITY_NO_EXPIRY,
            .ext_allowed = SMKI_EXTS | SMKI_EXT_SAN,
            .extra_ext_error = 1,
        },
    /* DCCKI: not in the reference beyond §1-§2, so designed on RFC 5280 and TLS
     * practice (docs/profiles.md). The same key and signature suite as SMKI (P-256,
     * ECDSA-SHA256: TLS 1.2 ECDHE-ECDSA and TLS 1.3); SKI of any RFC 5280 method,
     * since the DCC's own DCCKI issuance method is not public; certificatePolicies
     * required but of either criticality, so that TLS peers outside smart metering
     * do not fail on it (RFC 5280 4.2.1.4 allows both). */
    [SMKI_PROFILE_DCCKI_ROOT] =
        {
            .id = SMKI_PROFILE_DCCKI_ROOT,
            .name = "dccki-root",
            .title = "DCCKI Root CA certificate",
            .pki = SMKI_PKI_DCCKI,
            .is_ca = 1,
            .self_signed = 1,
            .subject = SMKI_SUBJECT_DCCKI_CA,
            .san = SMKI_SAN_ABSENT,
            .ku_required = CA_KU,
            .ku_allowed = CA_KU | DS,
            .basic = SMKI_BASIC_CA,
            .path_len = SMKI_PATHLEN_ANY,
            .ski = SMKI_SKI_ANY,
            .aki = SMKI_AKI_KEYID_OR_SELF,
            .policy = SMKI_POLICY_DCCKI,
            .policy_critical = 0,
            .eku = SMKI_EKU_FORBIDDEN,
            .validity = SMKI_VALIDITY_YEARS,
            .ext_allowed = SMKI_EXTS,
            .extra_ext_error = 0,
        },
    [SMKI_PROFILE_DCCKI_ICA] =
        {
            .id = SMKI_PROFILE_DCCKI_ICA,
            .name = "dccki-ica",
            .title = "DCCKI issuing CA certificate",
            .pki = SMKI_PKI_DCCKI,
            .is_ca = 1,
            .subject = SMKI_SUBJECT_DCCKI_CA,
            .san = SMKI_SAN_ABSENT,
            .ku_required = CA_KU,
            .ku_allowed = CA_KU | DS,
            .basic = SMKI_BASIC_CA,
            .path_len = 0,
            .ski = SMKI_SKI_ANY,
            .aki = SMKI_AKI_KEYID,
            .policy = SMKI_POLICY_DCCKI,
            .policy_critical = 0,
            .eku = SMKI_EKU_FORBIDDEN,
            .validity = SMKI_VALIDITY_YEARS,
            .ext_allowed = DCCKI_CA_EXTS,
            .extra_ext_error = 0,
        },
    /* TLS end entities: digitalSignature only (ECDHE-ECDSA and TLS 1.3 sign; static
     * ECDH suites are obsolete), one EKU each so that a server key cannot act as a
     * client (RFC 5280 4.2.1.12). */
    [SMKI_PROFILE_DCCKI_SERVER] =
        {
            .id = SMKI_PROFILE_DCCKI_SERVER,
            .name = "dccki-server",
            .title = "DCCKI TLS server certificate",
            .pki = SMKI_PKI_DCCKI,
            .subject = SMKI_SUBJECT_DCCKI_PARTY,
            .san = SMKI_SAN_DNS_OR_IP,
            .ku_required = DS,
            .ku_allowed = DS,
            .basic = SMKI_BASIC_END_ENTITY,
            .path_len = SMKI_PATHLEN_ABSENT,
            .ski = SMKI_SKI_ANY,
            .aki = SMKI_AKI_KEYID,
            .policy = SMKI_POLICY_DCCKI,
            .policy_critical = 0,
            .eku = SMKI_EKU_SERVER,
            .validity = SMKI_VALIDITY_YEARS,
            .ext_allowed = DCCKI_EE_EXTS,
            .extra_ext_error = 0,
        },
    [SMKI_PROFILE_DCCKI_CLIENT] =
        {
            .id = SMKI_PROFILE_DCCKI_CLIENT,
            .name = "dccki-client",
            .title = "DCCKI TLS client certificate",
            .pki = SMKI_PKI_DCCKI,
            .subject = SMKI_SUBJECT_DCCKI_PARTY,
            .san = SMKI_SAN_OPTIONAL,
            .ku_required = DS,
            .ku_allowed = DS,
            .basic = SMKI_BASIC_END_ENTITY,
            .path_len = SMKI_PATHLEN_ABSENT,
            .ski = SMKI_SKI_ANY,
            .aki = SMKI_AKI_KEYID,
            .policy = SMKI_POLICY_DCCKI,
            .policy_critical = 0,
            .eku = SMKI_EKU_CLIENT,
            .validity = SMKI_VALIDITY_YEARS,
            .ext_allowed = DCCKI_EE_EXTS,
            .extra_ext_error = 0,
        },
};

const smki_profile *smki_profiles(size_t *n)
{
    if (n) *n = SMKI_PROFILE_COUNT;
    return PROFILES;
}

const smki_profile *smki_profile_get(smki_profile_id id)
{
    if ((int)id < 0 || id >= SMKI_PROFILE_COUNT) return &PROFILES[SMKI_PROFILE_UNKNOWN];
    return &PROFILES[id];
}

const smki_profile *smki_profile_by_name(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < SMKI_PROFILE_COUNT; i++)
        if (strcmp(PROFILES[i].name, name) == 0) return &PROFILES[i];
    return NULL;
}
