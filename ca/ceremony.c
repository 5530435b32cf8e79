/* The CA ceremony: one environment's hierarchy (SMKI root, organisation CA, device
 * CA, DCCKI root and issuing CA) from one reviewable configuration file. Every check
 * comes before the first write; a CA that exists is reported and left alone; the new
 * CAs are recorded in one transaction, and their PEM files written last. */
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ca_private.h"
#include "der.h"

/* Periods when neither the configuration nor the environment gives one (DCCKI CAs:
 * the environment does not check them). */
#define DEFAULT_DCCKI_ROOT_YEARS 25
#define DEFAULT_DCCKI_ICA_YEARS 10

typedef struct {
    smki_ca_kind kind;
    smki_ca_kind parent; /* itself for a root */
    int exists;
    char cn[SMKI_CA_NAME_MAX];
    unsigned years;
    char key_ref[SMKI_KEY_URI_MAX]; /* pkcs11:/file: reference, or a label still to generate */
    int generate;                   /* key_ref is a label: generate it in the token */
    smki_key *key;
    smki_ca_record rec; /* the existing record, or the new one */
    uint8_t name[256];  /* the subject, DER */
    size_t name_len;
} plan_ca;

typedef struct {
    smki_env env;
    char token[64];
    size_t n;
    plan_ca ca[SMKI_CA_KIND_COUNT];
    int64_t now;
} plan_t;

/* "smki-root" -> "smki_root": the configuration's key prefix. */
static void kind_key(smki_ca_kind k, const char *suffix, const char *env, char *out, size_t cap)
{
    char name[32];
    snprintf(name, sizeof name, "%s", smki_ca_kind_name(k));
    for (char *p = name; *p; p++)
        if (*p == '-') *p = '_';
    snprintf(out, cap, "ca.%s.%s_%s", env, name, suffix);
}

static char *env_names_of(smki_env *e, smki_ca_kind k, size_t *cap)
{
    char *f[] = {e->root_name, e->oca_name, e->dca_name, e->dccki_root_name, e->dccki_ica_name};
    size_t caps[] = {sizeof e->root_name, sizeof e->oca_name, sizeof e->dca_name, sizeof e->dccki_root_name,
                     sizeof e->dccki_ica_name};
    *cap = caps[k];
    return f[k];
}

/* Is cn one of the comma-separated names (compared as the linter does: by value,
 * case-insensitively)? */
static int name_listed(const char *list, const char *cn)
{
    const char *p = list;
    size_t want = strlen(cn);
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *start = p;
        while (*p && *p != ',') p++;
        size_t n = (size_t)(p - start);
        while (n && start[n - 1] == ' ') n--;
        if (n && n == want && strncasecmp(start, cn, n) == 0) return 1;
    }
    return 0;
}

static int parse_years(const char *key, const char *v, unsigned *out)
{
    char *end = NULL;
    unsigned long n = strtoul(v, &end, 10);
    ENSURE(*v >= '0' && *v <= '9' && end && !*end && n >= 1 && n <= 100, SMKI_E_USAGE,
           "%s = '%.32s': a CA's validity is 1 to 100 years", key, v);
    *out = (unsigned)n;
    return 0;
}

static const char *conf_get(const smki_conf *conf, const char *key)
{
    return conf ? smki_conf_get(conf, key, NULL) : NULL;
}

/* The name, period and key of one CA, from [ca.<env>] over the environment's. */
static int plan_settings(plan_t *P, plan_ca *c, const smki_conf *conf)
{
    smki_env *e = &P->env;
    const char *env = e->name;
    char key[128];
    size_t list_cap;
    char *list = env_names_of(e, c->kind, &list_cap);
    smki_profile_id profile = smki_ca_kind_profile(c->kind);

    kind_key(c->kind, "name", env, key, sizeof key);
    const char *cn = conf_get(conf, key);
    char first[SMKI_CA_NAME_MAX] = "";
    if (!cn && list[0]) { /* the first name the environment lists */
        size_t n = strcspn(list, ",");
        while (n && list[n - 1] == ' ') n--;
        snprintf(first, sizeof first, "%.*s", (int)(n < sizeof first ? n : sizeof first - 1), list);
        cn = first;
    }
    if (!cn && c->kind == SMKI_CA_DCCKI_ROOT) cn = "DCCKI Root";
    if (!cn && c->kind == SMKI_CA_DCCKI_ICA) cn = "DCCKI Issuing CA";
    ENSURE(cn, SMKI_E_USAGE,
           "environment %s names no %s: set %s in the ceremony configuration (or %s under [env.%s])", env,
           smki_profile_get(profile)->title, key,
           c->kind == SMKI_CA_ROOT ? "root_name" : c->kind == SMKI_CA_OCA ? "oca_name" : "dca_name", env);
    GUARD(smki_ca_check_cn(cn, key));
    ENSURE(!list[0] || name_listed(list, cn), SMKI_E_USAGE,
           "%s = '%s' is not one of environment %s's names for it (%s): certificates would not lint", key, cn, env,
           list);
    snprintf(c->cn, sizeof c->cn, "%s", cn);
    if (!list[0]) snprintf(list, list_cap, "%s", cn); /* recorded, so the linter checks it from now on */

    kind_key(c->kind, "years", env, key, sizeof key);
    const char *years = conf_get(conf, key);
    unsigned most = e->years[profile];
    if (years) {
        GUARD(parse_years(key, years, &c->years));
        ENSURE(!most || c->years <= most, SMKI_E_USAGE, "%s = %u: environment %s allows a %s at most %u years", key,
               c->years, env, smki_profile_get(profile)->name, most);
    } else {
        c->years = most ? most : c->kind == SMKI_CA_DCCKI_ICA ? DEFAULT_DCCKI_ICA_YEARS : DEFAULT_DCCKI_ROOT_YEARS;
    }

    kind_key(c->kind, "key", env, key, sizeof key);
    const char *ref = conf_get(conf, key);
    if (ref && (strncmp(ref, "pkcs11:", 7) == 0 || strncmp(ref, "file:", 5) == 0)) {
        ENSURE(strlen(ref) < sizeof c->key_ref, SMKI_E_USAGE, "%s is too long", key);
        snprintf(c->key_ref, sizeof c->key_ref, "%s", ref); /* an existing key, adopted */
    } else {
        char label[65];
        if (ref)
            snprintf(label, sizeof label, "%s", ref);
        else
            snprintf(label, sizeof label, "%s-%s", env, smki_ca_kind_name(c->kind));
        ENSURE(label[0] && strlen(label) <= 64 && !strpbrk(label, ";?%/:"), SMKI_E_USAGE,
               "%s = '%.64s': a key label of 1 to 64 characters without ; ? %% / or :", key, label);
        snprintf(c->key_ref, sizeof c->key_ref, "%s", label);
        c->generate = 1;
    }
    return 0;
}

/* The plan: which CAs, which exist, the environment they live in. Reads only. */
/* Every key [ca.<env>] may hold: a misspelt one would silently give a default. */
static int check_ceremony_keys(const char *env_name, const smki_conf *conf)
{
    enum { NSUFFIX = 4 };
    char names[SMKI_CA_KIND_COUNT * NSUFFIX][48];
    const char *keys[SMKI_CA_KIND_COUNT * NSUFFIX + 5];
    static const char *const SUFFIX[NSUFFIX] = {"name", "years", "key", "successor_key"};
    size_t n = 0;
    keys[n++] = "dccki";
    keys[n++] = "token";
    keys[n++] = "crl_hours";
    keys[n++] = "arl_hours";
    for (size_t k = 0; k < SMKI_CA_KIND_COUNT; k++)
        for (size_t s = 0; s < NSUFFIX; s++) {
            char *out = names[k * NSUFFIX + s];
            int len = snprintf(out, sizeof names[0], "%s_%s", smki_ca_kind_name((smki_ca_kind)k), SUFFIX[s]);
            for (int i = 0; i < len; i++)
                if (out[i] == '-') out[i] = '_';
            keys[n++] = out;
        }
    keys[n] = NULL;
    char section[64];
    snprintf(section, sizeof section, "ca.%s", env_name);
    GUARD(smki_conf_check_section(conf, section, keys));
    return smki_env_check_conf(env_name, conf);
}

static int plan_make(smki_ca_db *db, const char *env_name, const smki_conf *conf, const smki_ca_init_opts *o,
                     plan_t *P, smki_ca_init_report *rep)
{
    GUARD(check_ceremony_keys(env_name, conf));
    P->now = o->now > 0 ? o->now : (int64_t)time(NULL);
    /* An existing hierarchy keeps the environment it was made in. */
    int rc = smki_ca_env_get(db, env_name, &P->env);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        rc = smki_env_load(env_name, conf, &P->env);
    }
    GUARD(rc);
    snprintf(rep->env, sizeof rep->env, "%s", P->env.name);
    GUARD(smki_env_check_configured(&P->env));

    char key[128];
    snprintf(key, sizeof key, "ca.%s.dccki", env_name);
    const char *dccki = conf_get(conf, key);
    ENSURE(!dccki || strcmp(dccki, "yes") == 0 || strcmp(dccki, "no") == 0, SMKI_E_USAGE,
           "%s = '%.16s': yes or no", key, dccki);
    int with_dccki = !dccki || strcmp(dccki, "yes") == 0;
    if (with_dccki && !P->env.dccki_policy[0]) {
        ENSURE(strcmp(env_name, "test") == 0, SMKI_E_USAGE,
               "environment %s has no DCCKI policy OID: set dccki_policy under [env.%s], or dccki = no under "
               "[ca.%s] to make the SMKI CAs only",
               env_name, env_name, env_name);
        snprintf(P->env.dccki_policy, sizeof P->env.dccki_policy, "%s", SMKI_CA_TEST_DCCKI_POLICY);
    }

    snprintf(key, sizeof key, "ca.%s.token", env_name);
    const char *token = conf_get(conf, key);
    if (!token) token = P->env.token;
    ENSURE(*token && strlen(token) < sizeof P->token, SMKI_E_USAGE, "%s: a token label of 1 to 32 characters", key);
    snprintf(P->token, sizeof P->token, "%s", token);
    snprintf(rep->token, sizeof rep->token, "%s", token);

    static const smki_ca_kind PARENT[SMKI_CA_KIND_COUNT] = {SMKI_CA_ROOT, SMKI_CA_ROOT, SMKI_CA_ROOT,
                                                            SMKI_CA_DCCKI_ROOT, SMKI_CA_DCCKI_ROOT};
    P->n = with_dccki ? SMKI_CA_KIND_COUNT : SMKI_CA_DCCKI_ROOT;
    for (size_t i = 0; i < P->n; i++) {
        plan_ca *c = &P->ca[i];
        c->kind = (smki_ca_kind)i;
        c->parent = PARENT[i];
        rc = smki_ca_get(db, env_name, c->kind, &c->rec);
        if (rc == 0) {
            c->exists = 1;
            continue;
        }
        if (rc != SMKI_E_NOTFOUND) return rc;
        smki_error_clear();
        GUARD(plan_settings(P, c, conf));
    }
    /* A child without its parent cannot be: the store is damaged. */
    for (size_t i = 0; i < P->n; i++)
        ENSURE(!P->ca[i].exists || P->ca[P->ca[i].parent].exists, SMKI_E_CORRUPT,
               "environment %s has a %s CA but no %s: the store is damaged", env_name,
               smki_ca_kind_name(P->ca[i].kind), smki_ca_kind_name(P->ca[i].parent));
    return 0;
}

/* Before the first write: the token is there, no label to generate is taken, and
 * every key to adopt opens. */
static int plan_check_keys(plan_t *P, const smki_ca_init_opts *o, smki_ca_init_report *rep)
{
    int any_generate = 0;
    for (size_t i = 0; i < P->n; i++) any_generate |= !P->ca[i].exists && P->ca[i].generate;
    if (any_generate) {
        smki_token_info info;
        int rc = smki_token_find(o->hsm, P->token, &info);
        if (rc == SMKI_E_NOTFOUND) {
            rep->token_missing = 1;
            return SMKI_FAIL(SMKI_E_NOTFOUND,
                             "token '%s' for environment %s's CA keys does not exist: create it with 'smki hsm init "
                             "--label %s' (or name another with token under [ca.%s])",
                             P->token, P->env.name, P->token, P->env.name);
        }
        GUARD(rc);
        if (!info.user_pin_set) {
            /* A token made and killed before its user PIN was set: finished as if missing. */
            rep->token_missing = 1;
            return SMKI_FAIL(SMKI_E_NOTFOUND,
                             "token '%s' for environment %s's CA keys exists but has no user PIN (its creation was cut "
                             "short): run again with the SO PIN and the user PIN (SMKI_SO_PIN, SMKI_PIN) to finish it, "
                             "or 'smki hsm init --label %s'",
                             P->token, P->env.name, P->token);
        }
        ENSURE(o->hsm && o->hsm->pin, SMKI_E_USAGE,
               "generating the CA keys in token '%s' needs its user PIN: set SMKI_PIN or give --pin-file FILE",
               P->token);
        for (size_t i = 0; i < P->n; i++) {
            plan_ca *c = &P->ca[i];
            if (c->exists || !c->generate) continue;
            char setting[128];
            kind_key(c->kind, "key", P->env.name, setting, sizeof setting);
            /* Any object under the label: a whole key pair, or the half a kill left. */
            int used = 0;
            GUARD(smki_key_label_used(o->hsm, P->token, c->key_ref, &used));
            ENSURE(!used, SMKI_E_EXISTS,
                   "key '%s' is already on token '%s' but environment %s has no %s CA: a half-made ceremony or a label "
                   "in use. Nothing was changed; choose another label (%s in the ceremony configuration) or remove "
                   "that key ('smki ca keys --env %s', then 'smki ca keys --env %s --remove %s --confirm %s' with the "
                   "SO PIN)",
                   c->key_ref, P->token, P->env.name, smki_ca_kind_name(c->kind), setting, P->env.name, P->env.name,
                   c->key_ref, c->key_ref);
        }
    }
    for (size_t i = 0; i < P->n; i++) {
        plan_ca *c = &P->ca[i];
        const char *ref = c->exists ? c->rec.key_ref : c->generate ? NULL : c->key_ref;
        if (!ref) continue;
        /* Existing CAs' keys are needed only to sign a new child. */
        int needed = !c->exists;
        for (size_t k = 0; k < P->n; k++) needed |= c->exists && !P->ca[k].exists && P->ca[k].parent == c->kind;
        if (!needed) continue;
        int rc = smki_key_open(ref, o->hsm, &c->key);
        if (rc < 0) return smki_error_wrap("the %s CA key of environment %s", smki_ca_kind_name(c->kind), P->env.name);
    }
    return 0;
}

/* ---- Building --------------------------------------------------------------------------- */

static int build_ca(plan_t *P, plan_ca *c)
{
    plan_ca *parent = &P->ca[c->parent];
    int is_root = c->parent == c->kind;
    int is_dccki = c->kind == SMKI_CA_DCCKI_ROOT || c->kind == SMKI_CA_DCCKI_ICA;
    smki_profile_id profile = smki_ca_kind_profile(c->kind);
    smki_env *e = &P->env;

    const char *ou = is_dccki ? NULL : is_root ? "00" : "07";
    GUARD(smki_ca_name_ou_cn(ou, c->cn, c->name, sizeof c->name, &c->name_len));
    uint8_t spki[sizeof SMKI_CA_SPKI_P256_PREFIX + SMKI_POINT_LEN], point[SMKI_POINT_LEN];
    GUARD(smki_pub_point(smki_key_public(c->key), point));
    memcpy(spki, SMKI_CA_SPKI_P256_PREFIX, sizeof SMKI_CA_SPKI_P256_PREFIX);
    memcpy(spki + sizeof SMKI_CA_SPKI_P256_PREFIX, point, SMKI_POINT_LEN);

    smki_cert *cert = &c->rec.cert;
    memset(cert, 0, offsetof(smki_cert, der));
    GUARD(smki_keyid_method2(point, SMKI_POINT_LEN, cert->ski));
    const char *policy = is_dccki ? e->dccki_policy : c->kind == SMKI_CA_DCA ? e->device_policy : e->org_policy;
    uint8_t policy_der[64], issuer_ski[SMKI_KEYID_LEN];
    size_t policy_len;
    GUARD(smki_ca_der_oid_from_text(policy, policy_der, sizeof policy_der, &policy_len));
    const uint8_t *issuer = c->name;
    size_t issuer_len = c->name_len;
    if (is_root) {
        memcpy(issuer_ski, cert->ski, SMKI_KEYID_LEN);
    } else {
        memcpy(issuer_ski, parent->rec.cert.ski, SMKI_KEYID_LEN);
        issuer = parent->name;
        issuer_len = parent->name_len;
    }
    int fixed;
    GUARD(smki_ca_serial_new(cert->serial, &fixed));
    ca_tbs t = {
        .profile = profile,
        .serial = cert->serial,
        .issuer = issuer,
        .issuer_len = issuer_len,
        .not_before = P->now,
        .not_after = smki_ca_der_time_add_years_end(P->now, c->years),
        .subject = c->name,
        .subject_len = c->name_len,
        .spki = spki,
        .spki_len = sizeof spki,
        .ku = SMKI_KU_KEY_CERT_SIGN | SMKI_KU_CRL_SIGN,
        .ski = cert->ski,
        .aki = is_root ? NULL : issuer_ski, /* absent only on a self-signed root (reference §4) */
        .basic = is_root ? 1 : 2,           /* pathLen 0 on issuing CAs */
        .policy = policy_der,
        .policy_len = policy_len,
        /* SMKI: critical (reference §4); DCCKI: non-critical, for TLS peers outside
         * smart metering (docs/profiles.md) */
        .policy_critical = !is_dccki,
    };
    smki_key *signer = is_root ? c->key : parent->key;
    GUARD(smki_ca_assemble(&t, signer, cert->der, sizeof cert->der, &cert->der_len));
    smki_lint_report *rep = malloc(sizeof *rep);
    ENSURE(rep, SMKI_E_NOMEM, "out of memory");
    int rc = smki_ca_lint_release(cert->der, cert->der_len, e, profile, rep);
    free(rep);
    GUARD(rc);

    memcpy(cert->issuer_ski, issuer_ski, SMKI_KEYID_LEN);
    cert->profile = profile;
    cert->usage = 0;
    cert->role = is_dccki ? -1 : is_root ? SMKI_ROLE_ROOT : SMKI_ROLE_ISSUING_AUTHORITY;
    cert->status = SMKI_STATUS_IN_USE;
    snprintf(cert->env, sizeof cert->env, "%s", e->name);
    cert->not_before = t.not_before;
    cert->not_after = t.not_after;
    c->rec.kind = c->kind;
    snprintf(c->rec.env, sizeof c->rec.env, "%s", e->name);
    snprintf(c->rec.key_ref, sizeof c->rec.key_ref, "%s", c->key_ref);
    return 0;
}

/* The subject Name of an existing CA, from its certificate: its children's issuer. */
static int existing_name(plan_ca *c)
{
    const unsigned char *p = c->rec.cert.der;
    X509 *x = d2i_X509(NULL, &p, (long)c->rec.cert.der_len);
    const unsigned char *der = NULL;
    size_t len = 0;
    int ok = x && X509_NAME_get0_der(X509_get_subject_name(x), &der, &len) == 1 && len <= sizeof c->name;
    if (ok) {
        memcpy(c->name, der, len);
        c->name_len = len;
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, c->cn, sizeof c->cn);
    }
    X509_free(x);
    ENSURE(ok, SMKI_E_CORRUPT, "the %s CA certificate in the store does not decode", smki_ca_kind_name(c->kind));
    return 0;
}

typedef struct {
    const smki_ca_db *db;
    plan_t *P;
    const smki_ca_init_opts *o;
} store_arg;

static int store_new(smki_txn *t, void *arg)
{
    store_arg *a = arg;
    const smki_ca_record *made[SMKI_CA_KIND_COUNT];
    size_t n = 0;
    for (size_t i = 0; i < a->P->n; i++)
        if (!a->P->ca[i].exists) {
            GUARD(smki_ca_record_put(t, a->db, &a->P->ca[i].rec));
            made[n++] = &a->P->ca[i].rec;
        }
    if (n && a->o->on_store) GUARD(a->o->on_store(t, made, n, a->o->hook_arg));
    return 0;
}

/* ---- PEM ------------------------------------------------------------------------------------ */

int smki_cert_to_pem(const uint8_t *der, size_t len, char *out, size_t cap, size_t *out_len)
{
    static const char BEGIN[] = "-----BEGIN CERTIFICATE-----\n", END[] = "-----END CERTIFICATE-----\n";
    size_t lines = (len + 47) / 48;
    size_t need = sizeof BEGIN - 1 + lines * 65 + sizeof END - 1 + 1;
    ENSURE(need <= cap, SMKI_E_INTERNAL, "PEM of %zu octets does not fit in %zu", len, cap);
    size_t n = 0;
    memcpy(out, BEGIN, sizeof BEGIN - 1);
    n += sizeof BEGIN - 1;
    for (size_t at = 0; at < len; at += 48) {
        size_t chunk = len - at < 48 ? len - at : 48;
        n += (size_t)EVP_EncodeBlock((unsigned char *)out + n, der + at, (int)chunk);
        out[n++] = '\n';
    }
    memcpy(out + n, END, sizeof END - 1);
    n += sizeof END - 1;
    out[n] = '\0';
    *out_len = n;
    return 0;
}

/* Write the PEM file unless it already holds exactly this certificate. */
static int write_pem(const char *path, const smki_cert *c)
{
    char pem[4096];
    size_t len;
    GUARD(smki_cert_to_pem(c->der, c->der_len, pem, sizeof pem, &len));
    uint8_t *old = NULL;
    size_t old_len = 0;
    if (smki_file_read(path, 1 << 16, &old, &old_len) == 0) {
        int same = old_len == len && memcmp(old, pem, len) == 0;
        free(old);
        if (same) return 0;
    }
    smki_error_clear();
    return smki_file_write_atomic(path, pem, len, 0644, 0);
}

static int write_files(plan_t *P, const smki_ca_init_opts *o, smki_ca_init_report *rep)
{
    char dir[4000], trust[4000];
    int n = snprintf(dir, sizeof dir, "%s/ca/%s", o->home, P->env.name);
    ENSURE(n > 0 && (size_t)n < sizeof dir, SMKI_E_USAGE, "home path too long");
    const char *ts = P->env.trust_store;
    n = snprintf(trust, sizeof trust, "%s%s%s", ts[0] == '/' ? "" : o->home, ts[0] == '/' ? "" : "/", ts);
    ENSURE(n > 0 && (size_t)n < sizeof trust, SMKI_E_USAGE, "trust store path too long");
    GUARD(smki_mkdirs(dir, 0755));
    for (size_t i = 0; i < P->n; i++) {
        plan_ca *c = &P->ca[i];
        smki_ca_init_item *it = &rep->items[i];
        n = snprintf(it->path, sizeof it->path, "%s/%s.pem", dir, smki_ca_kind_name(c->kind));
        ENSURE(n > 0 && (size_t)n < sizeof it->path, SMKI_E_USAGE, "home path too long");
        GUARD(write_pem(it->path, &c->rec.cert));
        if (c->parent == c->kind) { /* roots: also the environment's trust store */
            char path[4300];
            GUARD(smki_mkdirs(trust, 0755));
            n = snprintf(path, sizeof path, "%s/%s.pem", trust, smki_ca_kind_name(c->kind));
            ENSURE(n > 0 && (size_t)n < sizeof path, SMKI_E_USAGE, "trust store path too long");
            GUARD(write_pem(path, &c->rec.cert));
        }
    }
    return 0;
}

/* ---- The ceremony ------------------------------------------------------------------------- */

int smki_ca_init(smki_ca_db *db, const char *env_name, const smki_conf *conf, const smki_ca_init_opts *o,
                 smki_ca_init_report *rep)
{
    ENSURE(db && env_name && o && o->home && rep, SMKI_E_INTERNAL, "smki_ca_init: missing argument");
    memset(rep, 0, sizeof *rep);
    plan_t *P = calloc(1, sizeof *P);
    ENSURE(P, SMKI_E_NOMEM, "out of memory");
    int rc = 0;
    GUARD_GOTO(plan_make(db, env_name, conf, o, P, rep), out);
    GUARD_GOTO(plan_check_keys(P, o, rep), out);

    /* From here on things are made: keys, then certificates, then records, then files. */
    for (size_t i = 0; i < P->n; i++) {
        plan_ca *c = &P->ca[i];
        if (c->exists) {
            GUARD_GOTO(existing_name(c), out);
            continue;
        }
        if (c->generate) {
            char uri[SMKI_KEY_URI_MAX];
            GUARD_GOTO(smki_key_generate(o->hsm, P->token, c->key_ref, SMKI_USAGE_DS, uri), out);
            snprintf(c->key_ref, sizeof c->key_ref, "%s", uri);
            GUARD_GOTO(smki_key_open(uri, o->hsm, &c->key), out);
        }
    }
    int any_new = 0;
    for (size_t i = 0; i < P->n; i++)
        if (!P->ca[i].exists) {
            GUARD_GOTO(build_ca(P, &P->ca[i]), out);
            any_new = 1;
        }
    if (any_new) {
        char *text = malloc(sizeof P->ca[0].rec.env_text);
        ENSURE_GOTO(text, SMKI_E_NOMEM, out, "out of memory");
        rc = smki_env_to_conf(&P->env, text, sizeof P->ca[0].rec.env_text);
        for (size_t i = 0; rc == 0 && i < P->n; i++)
            if (!P->ca[i].exists) snprintf(P->ca[i].rec.env_text, sizeof P->ca[i].rec.env_text, "%s", text);
        free(text);
        if (rc < 0) goto out;
        store_arg a = {db, P, o};
        GUARD_GOTO(smki_store_write(db->store, store_new, &a), out);
    }

    rep->n = P->n;
    for (size_t i = 0; i < P->n; i++) {
        plan_ca *c = &P->ca[i];
        smki_ca_init_item *it = &rep->items[i];
        it->kind = c->kind;
        it->created = !c->exists;
        rep->created += (size_t)it->created;
        snprintf(it->cn, sizeof it->cn, "%s", c->cn);
        snprintf(it->key_ref, sizeof it->key_ref, "%s", c->exists ? c->rec.key_ref : c->key_ref);
        memcpy(it->serial, c->rec.cert.serial, SMKI_SERIAL_LEN);
        memcpy(it->ski, c->rec.cert.ski, SMKI_KEYID_LEN);
        it->not_after = c->rec.cert.not_after;
    }
    rc = write_files(P, o, rep);
    if (rc < 0) smki_error_wrap("the CAs are recorded in the store, but writing their PEM files failed");
out:
    for (size_t i = 0; i < SMKI_CA_KIND_COUNT; i++) smki_key_free(P->ca[i].key);
    free(P);
    return rc;
}

/* ---- Keys of a half-made ceremony ----------------------------------------------------------------- */

/* The ceremony of env planned again: the token and the label each CA still to make
 * would generate. */
static int plan_orphans(smki_ca_db *db, const char *env, const smki_conf *conf, const smki_hsm_opts *hsm, plan_t *P)
{
    smki_ca_init_opts o = {hsm, ".", 0, NULL, NULL};
    smki_ca_init_report *rep = calloc(1, sizeof *rep);
    ENSURE(rep, SMKI_E_NOMEM, "out of memory");
    int rc = plan_make(db, env, conf, &o, P, rep);
    free(rep);
    return rc;
}

/* A key on the token under a label the ceremony would generate for a CA it has not
 * made: what a ceremony killed between generating its keys and recording its CAs leaves. */
static const plan_ca *orphan_of(const plan_t *P, const char *label)
{
    for (size_t i = 0; i < P->n; i++)
        if (!P->ca[i].exists && P->ca[i].generate && strcmp(P->ca[i].key_ref, label) == 0) return &P->ca[i];
    return NULL;
}

int smki_ca_orphan_keys(smki_ca_db *db, const char *env, const smki_conf *conf, const smki_hsm_opts *hsm,
                        smki_ca_orphan_fn fn, void *arg)
{
    plan_t *P = calloc(1, sizeof *P);
    ENSURE(P, SMKI_E_NOMEM, "out of memory");
    int rc = plan_orphans(db, env, conf, hsm, P);
    for (size_t i = 0; rc == 0 && i < P->n; i++) {
        const plan_ca *c = &P->ca[i];
        if (c->exists || !c->generate) continue;
        int used = 0;
        rc = smki_key_label_used(hsm, P->token, c->key_ref, &used);
        if (rc == SMKI_E_NOTFOUND) { /* no token yet: nothing on it */
            smki_error_clear();
            rc = 0;
            break;
        }
        if (rc < 0 || !used) continue;
        smki_ca_orphan o;
        memset(&o, 0, sizeof o);
        o.kind = c->kind;
        snprintf(o.token, sizeof o.token, "%s", P->token);
        snprintf(o.label, sizeof o.label, "%.64s", c->key_ref);
        rc = smki_p11_uri_format_public(P->token, c->key_ref, o.uri, sizeof o.uri);
        if (rc == 0) rc = fn(&o, arg);
    }
    free(P);
    return rc;
}

int smki_ca_orphan_key_remove(smki_ca_db *db, const char *env, const smki_conf *conf, const smki_hsm_opts *hsm,
                              const char *label, const char *so_pin, smki_ca_orphan *out)
{
    ENSURE(label && *label, SMKI_E_USAGE, "name the key to remove (its label)");
    plan_t *P = calloc(1, sizeof *P);
    ENSURE(P, SMKI_E_NOMEM, "out of memory");
    int rc = plan_orphans(db, env, conf, hsm, P);
    const plan_ca *c = rc == 0 ? orphan_of(P, label) : NULL;
    if (rc == 0 && !c)
        rc = SMKI_FAIL(SMKI_E_REFUSED,
                       "'%.64s' is not the key of a CA environment %s has still to make: only a half-made ceremony's "
                       "keys are removed ('smki ca keys --env %s' lists them); a CA's own key never is",
                       label, env, env);
    if (rc == 0) {
        memset(out, 0, sizeof *out);
        out->kind = c->kind;
        snprintf(out->token, sizeof out->token, "%s", P->token);
        snprintf(out->label, sizeof out->label, "%.64s", label);
        rc = smki_key_destroy(hsm, P->token, label, so_pin);
    }
    free(P);
    return rc;
}

/* ---- The successor of a revoked issuing CA (CA compromise recovery) ---------------------------- */

typedef struct {
    const smki_ca_db *db;
    const char *env;
    plan_ca *c;
} successor_arg;

static int store_successor(smki_txn *t, void *arg)
{
    successor_arg *a = arg;
    char key[96];
    snprintf(key, sizeof key, "%s/%s", a->env, smki_ca_kind_name(a->c->kind));
    /* The one place a CA record is replaced (its certificate was found revoked). */
    const void *val;
    size_t vlen;
    GUARD(smki_txn_get(t, a->db->cas, key, strlen(key), &val, &vlen));
    /* The superseded CA's record is kept (its key reference: its own CRL can still be
     * published, smki_ca_crl_begin_ski) under <env>/<kind>/<its serial>. */
    smki_ca_record *old = malloc(sizeof *old);
    ENSURE(old, SMKI_E_NOMEM, "out of memory");
    int rc = smki_ca_get_txn(t, a->db, key, old);
    char old_key[160], hx[2 * SMKI_SERIAL_LEN + 1];
    if (rc == 0) {
        smki_hex_encode(old->cert.serial, SMKI_SERIAL_LEN, hx, 0);
        snprintf(old_key, sizeof old_key, "%s/%s", key, hx);
        rc = smki_txn_put(t, a->db->cas, old_key, strlen(old_key), val, vlen, SMKI_PUT_NOOVERWRITE);
    }
    free(old);
    GUARD(rc);
    GUARD(smki_txn_del(t, a->db->cas, key, strlen(key)));
    return smki_ca_record_put(t, a->db, &a->c->rec);
}

int smki_ca_successor(smki_ca_db *db, const char *env_name, smki_ca_kind kind, const smki_conf *conf,
                      const smki_ca_init_opts *o, smki_ca_init_item *out)
{
    ENSURE(db && env_name && o && o->home && out, SMKI_E_INTERNAL, "smki_ca_successor: missing argument");
    ENSURE(kind == SMKI_CA_OCA || kind == SMKI_CA_DCA || kind == SMKI_CA_DCCKI_ICA, SMKI_E_USAGE,
           "a successor is made for an issuing CA (smki-oca, smki-dca, dccki-ica), not %s", smki_ca_kind_name(kind));
    plan_t *P = calloc(1, sizeof *P);
    ENSURE(P, SMKI_E_NOMEM, "out of memory");
    smki_ca_init_report *rep = calloc(1, sizeof *rep);
    int rc = rep ? 0 : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    plan_ca *c = &P->ca[kind], *parent = &P->ca[kind == SMKI_CA_DCCKI_ICA ? SMKI_CA_DCCKI_ROOT : SMKI_CA_ROOT];
    smki_cert *old = malloc(sizeof *old);
    if (rc == 0 && !old) rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    if (rc == 0) rc = plan_make(db, env_name, conf, o, P, rep);
    if (rc == 0 && (size_t)kind >= P->n) rc = SMKI_FAIL(SMKI_E_NOTFOUND, "environment %s has no %s", env_name,
                                                        smki_ca_kind_name(kind));
    if (rc == 0 && !c->exists)
        rc = SMKI_FAIL(SMKI_E_NOTFOUND, "environment %s has no %s CA: run 'smki ca init' instead", env_name,
                       smki_ca_kind_name(kind));
    if (rc == 0 && c->rec.cert.status != SMKI_STATUS_REVOKED)
        rc = SMKI_FAIL(SMKI_E_REFUSED,
                       "the %s of environment %s is %s: a successor is made only for a revoked CA (revoke it onto "
                       "the ARL first)",
                       smki_ca_kind_name(kind), env_name, smki_cert_status_name(c->rec.cert.status));
    char setting[128], label[65];
    if (rc == 0) {
        *old = c->rec.cert;
        rc = existing_name(parent);
    }
    if (rc == 0) rc = smki_key_open(parent->rec.key_ref, o->hsm, &parent->key);
    if (rc == 0) {
        /* The name, period and token as for a new CA; the key is the successor's own. */
        c->exists = 0;
        rc = plan_settings(P, c, conf);
    }
    if (rc == 0) {
        kind_key(kind, "successor_key", env_name, setting, sizeof setting);
        const char *ref = conf_get(conf, setting);
        char hx[2 * SMKI_SERIAL_LEN + 1];
        smki_hex_encode(old->serial, SMKI_SERIAL_LEN, hx, 0);
        if (ref && (strncmp(ref, "pkcs11:", 7) == 0 || strncmp(ref, "file:", 5) == 0)) {
            snprintf(c->key_ref, sizeof c->key_ref, "%s", ref);
            c->generate = 0;
        } else {
            snprintf(label, sizeof label, "%s", ref ? ref : "");
            if (!ref) snprintf(label, sizeof label, "%s-%s-%.8s", env_name, smki_ca_kind_name(kind), hx);
            snprintf(c->key_ref, sizeof c->key_ref, "%s", label);
            c->generate = 1;
        }
    }
    if (rc == 0 && c->generate) {
        char uri[SMKI_KEY_URI_MAX];
        rc = smki_key_generate(o->hsm, P->token, c->key_ref, SMKI_USAGE_DS, uri);
        if (rc == 0) snprintf(c->key_ref, sizeof c->key_ref, "%s", uri);
    }
    if (rc == 0) rc = smki_key_open(c->key_ref, o->hsm, &c->key);
    if (rc == 0) {
        uint8_t point[SMKI_POINT_LEN], ski[SMKI_KEYID_LEN];
        rc = smki_pub_point(smki_key_public(c->key), point);
        if (rc == 0) rc = smki_keyid_method2(point, SMKI_POINT_LEN, ski);
        if (rc == 0 && memcmp(ski, old->ski, SMKI_KEYID_LEN) == 0)
            rc = SMKI_FAIL(SMKI_E_REFUSED, "the successor's key is the compromised CA's own: give it a new key (%s)",
                           setting);
    }
    P->now = o->now > 0 ? o->now : (int64_t)time(NULL);
    if (rc == 0) rc = build_ca(P, c);
    successor_arg a = {db, env_name, c};
    if (rc == 0) rc = smki_store_write(db->store, store_successor, &a);
    if (rc == 0) {
        memset(out, 0, sizeof *out);
        out->kind = kind;
        out->created = 1;
        snprintf(out->cn, sizeof out->cn, "%s", c->cn);
        snprintf(out->key_ref, sizeof out->key_ref, "%s", c->key_ref);
        memcpy(out->serial, c->rec.cert.serial, SMKI_SERIAL_LEN);
        memcpy(out->ski, c->rec.cert.ski, SMKI_KEYID_LEN);
        out->not_after = c->rec.cert.not_after;
        char dir[4000], hx[2 * SMKI_SERIAL_LEN + 1];
        smki_hex_encode(old->serial, SMKI_SERIAL_LEN, hx, 0);
        snprintf(dir, sizeof dir, "%.3900s/ca/%s", o->home, env_name);
        snprintf(out->path, sizeof out->path, "%s/%s-%s.pem", dir, smki_ca_kind_name(kind), hx);
        rc = smki_mkdirs(dir, 0755);
        if (rc == 0) rc = write_pem(out->path, old);
        snprintf(out->path, sizeof out->path, "%s/%s.pem", dir, smki_ca_kind_name(kind));
        if (rc == 0) rc = write_pem(out->path, &c->rec.cert);
        if (rc < 0) smki_error_wrap("the successor is recorded in the store, but writing its PEM file failed");
    }
    for (size_t i = 0; i < SMKI_CA_KIND_COUNT; i++) smki_key_free(P->ca[i].key);
    free(P);
    free(rep);
    free(old);
    return rc;
}
