/* Environments: what differs between a test PKI and the live one, as configuration.
 * "test" ships with the ZAZ1/RTDS values of reference §4; "production" ships with
 * placeholders because its OIDs are not public, and is refused until they are set.
 * Parsed from a smki_conf the caller loaded: policy does no I/O. */
#include "policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Validity periods, in calendar years, that no public document fixes: observed
 * values where there are some (reference §4: organisation certificates 10 years,
 * xmlSign and loadController 100, the Z1 organisation CA 25), else 0 (not checked)
 * until configured. Devices have no period: notAfter is 99991231235959Z. */
#define DEFAULT_YEARS                                                                                     \
    {                                                                                                     \
        [SMKI_PROFILE_SMKI_ROOT] = 25, [SMKI_PROFILE_SMKI_OCA] = 25, [SMKI_PROFILE_SMKI_DCA] = 25,        \
        [SMKI_PROFILE_ORGANISATION] = 10,                                                                 \
    }
/* Roles 08 (loadController) and 87 (xmlSign): bits 8 and 0x87 of the bitmap. */
#define DEFAULT_LONG_ROLES {[1] = 0x01, [0x87 / 8] = 1u << (0x87 % 8)}

/* The Party Signifier's attribute: organizationIdentifier (X.520, 2.5.4.97), the
 * standard attribute for an identifier of the organisation. The SMKI attributes
 * are taken: OU holds the Remote Party Role and x500UniqueIdentifier the EUI-64
 * as a BIT STRING, and a Party Signifier is neither (reference §1-§2). */
#define PARTY_SIGNIFIER_ATTR "2.5.4.97"

static const smki_env BUILTIN[] = {
    {
        .name = "test",
        .org_policy = "1.2.826.0.1.8641679.1.2.1.4",    /* ZAZ1 organisation and CA certificates */
        .device_policy = "1.2.826.0.1.1800000.1.2.1.4", /* RTDS device certificates */
        .hw_type = "1.2.826.0.1.8641679.1.2.2.1",
        .dccki_policy = "2.999.1.2.826.1", /* the DCC's is not public: an example-arc OID (X.660), never live; ca.h SMKI_CA_TEST_DCCKI_POLICY */
        .party_signifier_attr = PARTY_SIGNIFIER_ATTR,
        .root_name = "ZA",
        .oca_name = "Z1",
        .dca_name = "E357",
        .years = DEFAULT_YEARS,
        .org_long_years = 100,
        .org_long_roles = DEFAULT_LONG_ROLES,
        .token = "smki-test",
        .trust_store = "trust/test",
    },
    {
        .name = "production",
        /* Placeholders: the live SMKI policy OIDs and hwType are not public. An empty
         * OID is "not configured" and smki_env_check_configured refuses it. */
        .org_policy = "",
        .device_policy = "",
        .hw_type = "",
        .dccki_policy = "",
        .party_signifier_attr = PARTY_SIGNIFIER_ATTR,
        .years = DEFAULT_YEARS,
        .org_long_years = 100,
        .org_long_roles = DEFAULT_LONG_ROLES,
        .token = "smki",
        .trust_store = "trust/production",
    },
};

const smki_env *smki_env_builtin(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof BUILTIN / sizeof BUILTIN[0]; i++)
        if (strcmp(BUILTIN[i].name, name) == 0) return &BUILTIN[i];
    return NULL;
}

const smki_env *smki_env_for_policy(const char *oid)
{
    if (!oid || !*oid) return NULL;
    for (size_t i = 0; i < sizeof BUILTIN / sizeof BUILTIN[0]; i++) {
        const smki_env *e = &BUILTIN[i];
        if ((e->org_policy[0] && strcmp(e->org_policy, oid) == 0) ||
            (e->device_policy[0] && strcmp(e->device_policy, oid) == 0) ||
            (e->dccki_policy[0] && strcmp(e->dccki_policy, oid) == 0))
            return e;
    }
    return NULL;
}

/* ---- Loading --------------------------------------------------------------------- */

/* Dotted decimal, at least two arcs, the first 0..2, no empty arc, no leading zero. */
static int is_oid_text(const char *s)
{
    size_t arcs = 0;
    const char *p = s;
    if (!(p[0] >= '0' && p[0] <= '2') || p[1] != '.') return 0;
    while (*p) {
        const char *start = p;
        while (*p >= '0' && *p <= '9') p++;
        size_t n = (size_t)(p - start);
        if (n == 0 || n > 20 || (n > 1 && *start == '0')) return 0;
        arcs++;
        if (*p == '.') {
            p++;
            if (!*p) return 0;
        } else if (*p) {
            return 0;
        }
    }
    return arcs >= 2;
}

static int is_env_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '_'))
            return 0;
        if (n + 1 >= SMKI_ENV_NAME_MAX) return 0;
    }
    return n > 0;
}

typedef struct {
    const char *key;
    size_t offset;
    size_t cap;
    int is_oid;
    int may_be_empty;
} text_setting;

#define TEXT(k, field, oid, empty) {k, offsetof(smki_env, field), sizeof(((smki_env *)0)->field), oid, empty}
static const text_setting TEXT_SETTINGS[] = {
    TEXT("org_policy", org_policy, 1, 0),
    TEXT("device_policy", device_policy, 1, 0),
    TEXT("hw_type", hw_type, 1, 0),
    TEXT("dccki_policy", dccki_policy, 1, 1),
    TEXT("party_signifier_attr", party_signifier_attr, 1, 0),
    TEXT("root_name", root_name, 0, 1),
    TEXT("oca_name", oca_name, 0, 1),
    TEXT("dca_name", dca_name, 0, 1),
    TEXT("dccki_root_name", dccki_root_name, 0, 1),
    TEXT("dccki_ica_name", dccki_ica_name, 0, 1),
    TEXT("token", token, 0, 0),
    TEXT("trust_store", trust_store, 0, 0),
};

static const char *conf_value(const smki_conf *conf, const char *name, const char *key, char *full, size_t cap)
{
    snprintf(full, cap, "env.%s.%s", name, key);
    return conf ? smki_conf_get(conf, full, NULL) : NULL;
}

static int parse_years(const char *full, const char *v, unsigned *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    ENSURE(*v >= '0' && *v <= '9' && end && *end == '\0' && errno == 0 && n <= 10000, SMKI_E_USAGE,
           "%s = '%.40s': need a number of years from 0 (not checked) to 10000", full, v);
    *out = (unsigned)n;
    return 0;
}

static int parse_roles(const char *full, const char *v, uint8_t bitmap[32])
{
    char buf[256];
    ENSURE(strlen(v) < sizeof buf, SMKI_E_USAGE, "%s is too long", full);
    strcpy(buf, v);
    memset(bitmap, 0, 32);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        uint8_t code;
        int rc = smki_role_parse(tok, &code);
        if (rc < 0) return smki_error_wrap("%s", full);
        bitmap[code / 8] |= (uint8_t)(1u << (code % 8));
    }
    return 0;
}

/* Every key [env.<name>] may hold; anything else is a typo to report. */
#define ENV_KEYS_MAX (sizeof TEXT_SETTINGS / sizeof TEXT_SETTINGS[0] + SMKI_PROFILE_COUNT + 3)
static void env_known_keys(char names[SMKI_PROFILE_COUNT][48], const char *keys[ENV_KEYS_MAX])
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof TEXT_SETTINGS / sizeof TEXT_SETTINGS[0]; i++) keys[n++] = TEXT_SETTINGS[i].key;
    for (size_t id = 1; id < SMKI_PROFILE_COUNT; id++) {
        snprintf(names[id], sizeof names[id], "%s_years", smki_profile_get((smki_profile_id)id)->name);
        for (char *k = names[id]; *k; k++)
            if (*k == '-') *k = '_';
        keys[n++] = names[id];
    }
    keys[n++] = "organisation_long_years";
    keys[n++] = "organisation_long_roles";
    keys[n] = NULL;
}

int smki_env_check_conf(const char *name, const smki_conf *conf)
{
    char names[SMKI_PROFILE_COUNT][48];
    const char *keys[ENV_KEYS_MAX];
    env_known_keys(names, keys);
    char section[64];
    snprintf(section, sizeof section, "env.%s", name);
    return smki_conf_check_section(conf, section, keys);
}

int smki_env_load(const char *name, const smki_conf *conf, smki_env *out)
{
    ENSURE(name && is_env_name(name), SMKI_E_USAGE,
           "not an environment name: '%.40s' (letters, digits, '-' and '_', up to %d)", name ? name : "(null)",
           SMKI_ENV_NAME_MAX - 1);
    GUARD(smki_env_check_conf(name, conf));
    char full[128];
    const smki_env *base = smki_env_builtin(name);
    int in_conf = 0;
    for (size_t i = 0; i < sizeof TEXT_SETTINGS / sizeof TEXT_SETTINGS[0] && !in_conf; i++)
        in_conf = conf_value(conf, name, TEXT_SETTINGS[i].key, full, sizeof full) != NULL;
    ENSURE(base || in_conf, SMKI_E_USAGE,
           "unknown environment '%s': built in are test and production; define others in the configuration "
           "under [env.%s] (org_policy, device_policy, hw_type, ...)",
           name, name);
    /* A new environment starts from production's: placeholders until configured. */
    *out = base ? *base : *smki_env_builtin("production");
    snprintf(out->name, sizeof out->name, "%s", name);

    for (size_t i = 0; i < sizeof TEXT_SETTINGS / sizeof TEXT_SETTINGS[0]; i++) {
        const text_setting *t = &TEXT_SETTINGS[i];
        const char *v = conf_value(conf, name, t->key, full, sizeof full);
        if (!v) continue;
        ENSURE(strlen(v) < t->cap, SMKI_E_USAGE, "%s is longer than %zu characters", full, t->cap - 1);
        ENSURE(*v || t->may_be_empty, SMKI_E_USAGE, "%s is empty", full);
        ENSURE(!*v || !t->is_oid || is_oid_text(v), SMKI_E_USAGE, "%s = '%.64s' is not an OID (dotted decimal)",
               full, v);
        memcpy((char *)out + t->offset, v, strlen(v) + 1);
    }
    for (size_t id = 1; id < SMKI_PROFILE_COUNT; id++) {
        char key[64];
        snprintf(key, sizeof key, "%s_years", smki_profile_get((smki_profile_id)id)->name);
        for (char *k = key; *k; k++)
            if (*k == '-') *k = '_';
        const char *v = conf_value(conf, name, key, full, sizeof full);
        if (v) GUARD(parse_years(full, v, &out->years[id]));
    }
    const char *v = conf_value(conf, name, "organisation_long_years", full, sizeof full);
    if (v) GUARD(parse_years(full, v, &out->org_long_years));
    v = conf_value(conf, name, "organisation_long_roles", full, sizeof full);
    if (v) GUARD(parse_roles(full, v, out->org_long_roles));
    return 0;
}

int smki_env_check_configured(const smki_env *env)
{
    ENSURE(env, SMKI_E_INTERNAL, "no environment");
    char missing[96] = "";
    const char *keys[] = {"org_policy", "device_policy", "hw_type"};
    const char *vals[] = {env->org_policy, env->device_policy, env->hw_type};
    for (size_t i = 0; i < 3; i++)
        if (!vals[i][0]) {
            if (missing[0]) strcat(missing, ", ");
            strcat(missing, keys[i]);
        }
    ENSURE(!missing[0], SMKI_E_USAGE,
           "environment '%s' is not configured: %s %s (live SMKI OIDs are not public); set %s under "
           "[env.%s] in the configuration (smki.conf or --config)",
           env->name, missing, strchr(missing, ',') ? "are placeholders" : "is a placeholder",
           strchr(missing, ',') ? "them" : "it", env->name);
    return 0;
}
