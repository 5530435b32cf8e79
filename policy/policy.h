/* policy: the pure rules of SMKI, no I/O. EUI-64 identifiers and the IEEE
 * MA-L/MA-M/MA-S ranges they are allocated from (reference §2); Remote Party Roles,
 * certificate profiles, environments and the certificate linter (§3, §4). Later
 * issues add eligibility and thresholds. */
#ifndef SMKI_POLICY_H
#define SMKI_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ---- EUI-64 ------------------------------------------------------------------ */
typedef struct {
    uint8_t b[8];
} smki_eui64_t;

typedef enum {
    SMKI_EUI64_PLAIN = 0,  /* 90B3D51F30010000 */
    SMKI_EUI64_HYPHEN = 1, /* 90-B3-D5-1F-30-01-00-00 (DUIS form) */
    SMKI_EUI64_COLON = 2,  /* 90:B3:D5:1F:30:01:00:00 */
} smki_eui64_style;

#define SMKI_EUI64_TEXT_MAX 24 /* 23 characters of the hyphenated form + NUL */

/* Accepts exactly: 16 hex digits; or 8 two-digit groups joined by '-'; or by ':'.
 * Either case. Nothing else: no surrounding space, no 0x, no mixed separators. A
 * refusal (SMKI_E_USAGE) quotes the input. */
SMKI_MUST_CHECK int smki_eui64_parse(const char *text, smki_eui64_t *out);
/* Uppercase, as DUIS and the DCC's tools write them. */
void smki_eui64_format(const smki_eui64_t *id, smki_eui64_style style, char out[SMKI_EUI64_TEXT_MAX]);
SMKI_MUST_CHECK int smki_eui64_cmp(const smki_eui64_t *a, const smki_eui64_t *b);
uint64_t smki_eui64_to_u64(const smki_eui64_t *id);
smki_eui64_t smki_eui64_from_u64(uint64_t v);

/* A block of EUI-64s sharing an IEEE prefix: MA-L 24 bits, MA-M 28, MA-S 36.
 * first..last inclusive. */
typedef struct {
    smki_eui64_t first;
    smki_eui64_t last;
    unsigned prefix_bits;
} smki_eui64_range_t;

/* The block of prefix_bits (24, 28 or 36 only) that contains `id`; the bits of `id`
 * below the prefix must be zero (a block is named by its first ID). */
SMKI_MUST_CHECK int smki_eui64_range_from_prefix(const smki_eui64_t *id, unsigned prefix_bits, smki_eui64_range_t *out);
/* "90B3D51F3/36", "90-B3-D5-1F-30-00-00-00/36", "90B3D5/24": an EUI-64 (any
 * accepted form) or the prefix's hex digits alone (6, 7 or 9 digits), then /bits. */
SMKI_MUST_CHECK int smki_eui64_range_parse(const char *text, smki_eui64_range_t *out);
/* "90B3D51F30000000/36" */
void smki_eui64_range_format(const smki_eui64_range_t *r, char out[48]);
SMKI_MUST_CHECK int smki_eui64_range_contains(const smki_eui64_range_t *r, const smki_eui64_t *id);
/* Number of IDs in the block (2^(64-prefix_bits)). */
uint64_t smki_eui64_range_size(const smki_eui64_range_t *r);
/* The n-th ID of the block (0-based); refuses n beyond the block. */
SMKI_MUST_CHECK int smki_eui64_range_nth(const smki_eui64_range_t *r, uint64_t n, smki_eui64_t *out);
/* id + delta, refusing to leave the block. */
SMKI_MUST_CHECK int smki_eui64_range_add(const smki_eui64_range_t *r, const smki_eui64_t *id, uint64_t delta, smki_eui64_t *out);
/* Is `inner` wholly inside `outer`? Do two blocks overlap? */
SMKI_MUST_CHECK int smki_eui64_range_within(const smki_eui64_range_t *inner, const smki_eui64_range_t *outer);
SMKI_MUST_CHECK int smki_eui64_range_overlaps(const smki_eui64_range_t *a, const smki_eui64_range_t *b);


/* =============================================================================
 * Remote Party Roles, certificate profiles, environments and the linter
 * (reference §3 and §4; issue 3). Profiles are data: one table row per kind of
 * certificate, read by the linter (and by issuance) rather than coded as paths.
 * ========================================================================== */

/* ---- Remote Party Roles (reference §3): the OU of organisation and CA certificates,
 * written as two hex digits. ---------------------------------------------------- */
typedef enum {
    SMKI_ROLE_ROOT = 0x00,
    SMKI_ROLE_RECOVERY = 0x01,
    SMKI_ROLE_SUPPLIER = 0x02,
    SMKI_ROLE_NETWORK_OPERATOR = 0x03,
    SMKI_ROLE_ACB = 0x04,
    SMKI_ROLE_TRANSITIONAL_COS = 0x05,
    SMKI_ROLE_WAN_PROVIDER = 0x06,
    SMKI_ROLE_ISSUING_AUTHORITY = 0x07,
    SMKI_ROLE_LOAD_CONTROLLER = 0x08,
    SMKI_ROLE_OTHER = 0x7F,
    SMKI_ROLE_XML_SIGN = 0x87,
    SMKI_ROLE_DSP_XML_SIGN = 0x89,
} smki_role_code;

/* Which certificates may carry a role in their OU. */
enum {
    SMKI_ROLE_ON_ROOT = 1u << 0,         /* the SMKI root (00) */
    SMKI_ROLE_ON_ISSUING_CA = 1u << 1,   /* organisation and device CAs (07) */
    SMKI_ROLE_ON_ORGANISATION = 1u << 2, /* every Remote Party Role */
};

/* X.509 keyUsage bits, as OpenSSL's X509_get_key_usage() reports them. */
enum {
    SMKI_KU_DIGITAL_SIGNATURE = 0x0080,
    SMKI_KU_NON_REPUDIATION = 0x0040,
    SMKI_KU_KEY_ENCIPHERMENT = 0x0020,
    SMKI_KU_DATA_ENCIPHERMENT = 0x0010,
    SMKI_KU_KEY_AGREEMENT = 0x0008,
    SMKI_KU_KEY_CERT_SIGN = 0x0004,
    SMKI_KU_CRL_SIGN = 0x0002,
    SMKI_KU_ENCIPHER_ONLY = 0x0001,
    SMKI_KU_DECIPHER_ONLY = 0x8000,
};

typedef struct {
    uint8_t code;         /* smki_role_code */
    const char *name;     /* "supplier": the name parse and format use */
    const char *title;    /* "Supplier" */
    unsigned on;          /* SMKI_ROLE_ON_* */
    unsigned org_usages;  /* keyUsage an organisation certificate of this role may have
                             (SMKI_KU_DIGITAL_SIGNATURE and/or SMKI_KU_KEY_AGREEMENT) */
} smki_role_t;

#define SMKI_ROLE_TEXT_MAX 3 /* "7F" + NUL */

/* The table, in code order; *n receives its length. */
const smki_role_t *smki_roles(size_t *n);
/* NULL when the code is not a Remote Party Role. */
const smki_role_t *smki_role_by_code(unsigned code);
/* Accepts the two hex digits of the OU ("02", "7f" or "7F") or the name, any case
 * ("supplier", "xmlSign"). Anything else is refused (SMKI_E_USAGE), quoting it. */
SMKI_MUST_CHECK int smki_role_parse(const char *text, uint8_t *code);
/* The OU form: two uppercase hex digits ("02", "7F"). */
void smki_role_format(uint8_t code, char out[SMKI_ROLE_TEXT_MAX]);
/* The role's name, or "unknown". */
const char *smki_role_name(unsigned code);

/* ---- Certificate profiles (reference §4; DCCKI: docs/profiles.md) ------------- */
typedef enum {
    SMKI_PROFILE_UNKNOWN = 0,
    SMKI_PROFILE_SMKI_ROOT,    /* SMKI root CA: OU=00, CN=<name>, self-signed */
    SMKI_PROFILE_SMKI_OCA,     /* organisation CA: OU=07, CN=<name>, the org/CA policy */
    SMKI_PROFILE_SMKI_DCA,     /* device CA: OU=07, CN=<name>, the device policy */
    SMKI_PROFILE_ORGANISATION, /* [CN], OU=<role>, x500UniqueIdentifier=<EUI-64>; DS or KA */
    SMKI_PROFILE_DEVICE,       /* empty subject, critical hardwareModuleName SAN; DS or KA */
    SMKI_PROFILE_DCCKI_ROOT,   /* DCCKI root CA */
    SMKI_PROFILE_DCCKI_ICA,    /* DCCKI issuing CA */
    SMKI_PROFILE_DCCKI_SERVER, /* TLS server: serverAuth, Party Signifier, DNS/IP SAN */
    SMKI_PROFILE_DCCKI_CLIENT, /* TLS client: clientAuth, Party Signifier */
    SMKI_PROFILE_COUNT
} smki_profile_id;

typedef enum { SMKI_PKI_SMKI = 1, SMKI_PKI_DCCKI = 2 } smki_pki;

typedef enum {
    SMKI_SUBJECT_EMPTY = 1,     /* device: the empty name */
    SMKI_SUBJECT_SMKI_CA,       /* OU=<role>, CN=<name>, nothing else */
    SMKI_SUBJECT_ORGANISATION,  /* optional CN, OU=<role>, x500UniqueIdentifier, nothing else */
    SMKI_SUBJECT_DCCKI_CA,      /* CN required; O, OU, C allowed */
    SMKI_SUBJECT_DCCKI_PARTY,   /* CN and the Party Signifier required; O, OU, C allowed */
} smki_subject_form;

typedef enum {
    SMKI_SAN_ABSENT = 1,           /* no subjectAltName */
    SMKI_SAN_HARDWARE_MODULE,      /* critical, exactly one otherName hardwareModuleName */
    SMKI_SAN_DNS_OR_IP,            /* non-critical, at least one dNSName or iPAddress */
    SMKI_SAN_OPTIONAL,             /* non-critical if present */
} smki_san_form;

typedef enum {
    SMKI_BASIC_END_ENTITY = 1, /* absent, or critical with cA FALSE */
    SMKI_BASIC_CA,             /* present, critical, cA TRUE */
} smki_basic_rule;

#define SMKI_PATHLEN_ANY (-1)    /* pathLenConstraint not checked */
#define SMKI_PATHLEN_ABSENT (-2) /* pathLenConstraint must be absent */

typedef enum {
    SMKI_SKI_METHOD2 = 1, /* 8 octets: 0x4 nibble + low 60 bits of SHA-1 of the point (RFC 5280 4.2.1.2) */
    SMKI_SKI_ANY,         /* 1..20 octets, any method */
} smki_ski_rule;

typedef enum {
    SMKI_AKI_KEYID8 = 1,      /* present, non-critical, [0] keyIdentifier only, 8 octets */
    SMKI_AKI_KEYID8_OR_SELF,  /* the root: absent, or as above and equal to its own SKI */
    SMKI_AKI_KEYID,           /* present, non-critical, with a keyIdentifier */
    SMKI_AKI_KEYID_OR_SELF,   /* a DCCKI root: absent, or with keyIdentifier = SKI */
} smki_aki_rule;

typedef enum {
    SMKI_POLICY_ORG = 1,   /* the environment's organisation/CA policy OID */
    SMKI_POLICY_DEVICE,    /* the environment's device policy OID */
    SMKI_POLICY_ROOT,      /* either of the two (the root certifies both CAs) */
    SMKI_POLICY_DCCKI,     /* the environment's DCCKI policy OID, when it is configured */
} smki_policy_rule;

typedef enum {
    SMKI_EKU_FORBIDDEN = 1, /* no extendedKeyUsage */
    SMKI_EKU_SERVER,        /* exactly id-kp-serverAuth */
    SMKI_EKU_CLIENT,        /* exactly id-kp-clientAuth */
} smki_eku_rule;

typedef enum {
    SMKI_VALIDITY_YEARS = 1,   /* at most the environment's years for this profile */
    SMKI_VALIDITY_NO_EXPIRY,   /* notAfter GeneralizedTime 99991231235959Z (RFC 5280 4.1.2.5) */
} smki_validity_rule;

/* Extensions a profile may carry (others: "ext.unexpected"). */
enum {
    SMKI_EXT_KEY_USAGE = 1u << 0,
    SMKI_EXT_SKI = 1u << 1,
    SMKI_EXT_AKI = 1u << 2,
    SMKI_EXT_BASIC = 1u << 3,
    SMKI_EXT_POLICIES = 1u << 4,
    SMKI_EXT_SAN = 1u << 5,
    SMKI_EXT_EKU = 1u << 6,
    SMKI_EXT_CRL_DP = 1u << 7, /* crlDistributionPoints */
    SMKI_EXT_AIA = 1u << 8,    /* authorityInfoAccess */
};

typedef struct {
    smki_profile_id id;
    const char *name;           /* stable: "organisation", "device", "smki-root", ... */
    const char *title;          /* "SMKI Organisation Certificate" */
    smki_pki pki;
    int is_ca;
    int self_signed;            /* 1: must be self-issued and self-signed; 0: must not be; -1: either */
    smki_subject_form subject;
    unsigned roles;             /* SMKI_ROLE_ON_* the subject OU must carry; 0: no role */
    smki_san_form san;
    unsigned ku_required;       /* SMKI_KU_* bits that must be set */
    unsigned ku_one_of;         /* if set: exactly one of these bits (DS or KA) */
    unsigned ku_allowed;        /* no bits outside this */
    smki_basic_rule basic;
    int path_len;               /* required pathLenConstraint, or SMKI_PATHLEN_* */
    smki_ski_rule ski;
    smki_aki_rule aki;
    smki_policy_rule policy;
    int policy_critical;        /* 1: certificatePolicies must be critical; 0: either */
    smki_eku_rule eku;
    smki_validity_rule validity;
    unsigned ext_allowed;       /* SMKI_EXT_* */
    int extra_ext_error;        /* an unexpected non-critical extension: 1 error, 0 warning */
} smki_profile;

/* The table, indexed by smki_profile_id (row 0 is UNKNOWN); *n receives its length. */
const smki_profile *smki_profiles(size_t *n);
const smki_profile *smki_profile_get(smki_profile_id id);
/* By name ("organisation"); NULL if none. */
const smki_profile *smki_profile_by_name(const char *name);

/* ---- Environments ---------------------------------------------------------------
 * Everything that differs between a test PKI and the live one is configuration:
 * policy OIDs, the hwType OID, CA names, validity periods, the token and the trust
 * store. "test" ships with the ZAZ1/RTDS values of the reference; "production" ships
 * with placeholders (its OIDs are not public) and is refused until configured. */
#define SMKI_ENV_NAME_MAX 32
#define SMKI_OID_TEXT_MAX 64
#define SMKI_ENV_NAMES_MAX 128 /* a comma-separated list of CA names */

typedef struct {
    char name[SMKI_ENV_NAME_MAX];
    char org_policy[SMKI_OID_TEXT_MAX];    /* organisation certificates and the SMKI CAs; "" placeholder */
    char device_policy[SMKI_OID_TEXT_MAX]; /* device certificates and the device CA; "" placeholder */
    char hw_type[SMKI_OID_TEXT_MAX];       /* hardwareModuleName hwType; "" placeholder */
    char dccki_policy[SMKI_OID_TEXT_MAX];  /* DCCKI certificates; "" not known: not checked */
    char party_signifier_attr[SMKI_OID_TEXT_MAX]; /* subject attribute carrying the Party Signifier */
    char root_name[SMKI_ENV_NAMES_MAX];    /* CN of the SMKI root(s); "" not checked */
    char oca_name[SMKI_ENV_NAMES_MAX];     /* CN of the organisation CA(s) */
    char dca_name[SMKI_ENV_NAMES_MAX];     /* CN of the device CA(s) */
    char dccki_root_name[SMKI_ENV_NAMES_MAX];
    char dccki_ica_name[SMKI_ENV_NAMES_MAX];
    unsigned years[SMKI_PROFILE_COUNT];    /* longest validity in calendar years; 0 not checked */
    unsigned org_long_years;               /* for the roles in org_long_roles */
    uint8_t org_long_roles[32];            /* bitmap of role codes with the long validity */
    char token[64];                        /* the token holding this environment's CA keys */
    char trust_store[256];                 /* folder of its trusted roots */
} smki_env;

/* The shipped defaults: "test" or "production"; NULL for another name. */
const smki_env *smki_env_builtin(const char *name);
/* The environment `name`: the shipped default of that name, with every key of section
 * [env.<name>] of conf (may be NULL) applied over it. A name that is neither built in
 * nor in conf is refused (SMKI_E_USAGE), as is a malformed OID or number (naming the
 * key). Keys: org_policy, device_policy, hw_type, dccki_policy, party_signifier_attr,
 * root_name, oca_name, dca_name, dccki_root_name, dccki_ica_name, <profile>_years
 * (e.g. organisation_years, dccki_server_years), organisation_long_years,
 * organisation_long_roles (e.g. "08, 87"), token, trust_store. */
SMKI_MUST_CHECK int smki_env_load(const char *name, const smki_conf *conf, smki_env *out);
/* Refuse a key under [env.<name>] that no environment setting has (a typo), naming
 * the file and line; smki_env_load does this first. */
SMKI_MUST_CHECK int smki_env_check_conf(const char *name, const smki_conf *conf);
/* 0 when every OID the SMKI profiles need is set; else SMKI_E_USAGE naming the
 * placeholders and the keys that set them. */
SMKI_MUST_CHECK int smki_env_check_configured(const smki_env *env);
/* The built-in environment whose organisation or device policy is this OID; NULL if
 * none (production's placeholders match nothing). */
const smki_env *smki_env_for_policy(const char *oid);

/* ---- The linter --------------------------------------------------------------------
 * Checks one certificate against the profile it claims (every rule of reference §4,
 * the profile's rules, and strict DER) and names each violation by a stable rule id
 * ("ski.length", "keyusage.critical", "aki.missing", ...: docs/profiles.md lists
 * them). Errors are violations; warnings are reported and do not make a certificate
 * unclean. */
#define SMKI_LINT_MAX_FINDINGS 40
#define SMKI_LINT_MSG_MAX 200

typedef enum { SMKI_LINT_ERROR = 0, SMKI_LINT_WARNING = 1 } smki_lint_level;

typedef struct {
    const char *rule;           /* static, stable */
    smki_lint_level level;
    char message[SMKI_LINT_MSG_MAX];
} smki_lint_finding;

typedef struct {
    smki_profile_id profile;    /* the profile the certificate claims; UNKNOWN if none fits */
    unsigned key_usage;         /* SMKI_KU_* bits present (0 if no keyUsage) */
    int role;                   /* Remote Party Role from the subject OU, -1 if none */
    int has_id;                 /* id holds the subject's EUI-64 (organisation uid, device hwSerialNum) */
    smki_eui64_t id;
    char env[SMKI_ENV_NAME_MAX]; /* the environment checked against; "" none */
    int env_inferred;           /* chosen from the policy OID (no environment was given) */
    size_t errors, warnings;    /* totals, including findings beyond the array */
    size_t count;               /* findings stored */
    smki_lint_finding findings[SMKI_LINT_MAX_FINDINGS];
} smki_lint_report;

/* Lint one DER certificate. With env NULL the environment is inferred from the policy
 * OID among the built-in ones (smki_env_for_policy); if none matches, the rules that
 * need one (policy and hwType values, CA names, validity periods) are skipped and a
 * warning says so. Returns 0 when the certificate was linted, whatever it holds
 * (bytes that are not a certificate give the finding "der.parse"); SMKI_E_USAGE when
 * env is not configured (smki_env_check_configured). */
SMKI_MUST_CHECK int smki_lint_der(const uint8_t *der, size_t len, const smki_env *env, smki_lint_report *out);
/* No errors (warnings allowed). */
SMKI_MUST_CHECK int smki_lint_is_clean(const smki_lint_report *r);
/* The finding of this rule, or NULL. */
const smki_lint_finding *smki_lint_find(const smki_lint_report *r, const char *rule);
/* One line on what the certificate is: "organisation 02 supplier DS 90-B3-D5-1F-30-01-00-00". */
void smki_lint_describe(const smki_lint_report *r, char *out, size_t cap);

/* The certificates in a file's bytes, in order: DER (one certificate), or PEM text
 * with any number of blocks. fn is called with each CERTIFICATE block's DER (index
 * from 0; fn may be NULL to count only); other PEM blocks (keys, CSRs) are counted in
 * *others. A PEM block that does not decode is refused (SMKI_E_INPUT); fn's failure
 * stops the walk. */
typedef int (*smki_cert_fn)(void *ctx, size_t index, const uint8_t *der, size_t len);
SMKI_MUST_CHECK int smki_cert_each(const uint8_t *data, size_t len, smki_cert_fn fn, void *ctx, size_t *certs, size_t *others);

#endif
