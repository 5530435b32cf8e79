/* The DCC User Gateway's checks on a signed pre-command (reference §7), in the order the
 * reference gives them, each refusal with a stable reason code; anomalies quarantined,
 * not dropped; a passing message MACed by the ACB into a command (reference §5). The
 * signer's chain is verified once per certificate and CRL and cached for the time span in
 * which that verification holds, so that a steady stream costs one ECDSA verify a message. */
#include <dirent.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gateway_private.h"
#include "gateway.h"



/* ---- Future dating ----------------------------------------------------------------------------- */
#define DEFAULT_MAX_FUTURE_SECONDS (30u * 86400u) /* SEC Stage 4 consultation Q22: 30 days */
#define CANCEL_TIME ((time_t)253402300799)         /* 9999-12-31T23:59:59Z */

/* A COSEM date-time (12 octets: year(2) month day weekday hour minute second hundredths
 * deviation(2) status). 0 with *t when every field up to the second is specified; -1 when
 * one is not (0xFF, 0xFFFF, or the DST markers 0xFD/0xFE for the month): no instant to
 * judge. The deviation (at most 12 hours) is not applied: it cannot move a date across a
 * limit counted in days by more than half a day. */
static int cosem_time(const uint8_t d[12], time_t *t)
{
    unsigned y = (unsigned)d[0] << 8 | d[1];
    if (y == 0xFFFF || d[2] == 0 || d[2] > 12 || d[3] == 0 || d[3] > 31 || d[5] > 23 || d[6] > 59 || d[7] > 59 ||
        y < 1970)
        return -1;
    struct tm tm = {.tm_year = (int)y - 1900, .tm_mon = d[2] - 1, .tm_mday = d[3], .tm_hour = d[5], .tm_min = d[6],
                    .tm_sec = d[7]};
    *t = timegm(&tm);
    return 0;
}

/* The execution date-time a command carries, where smki can read one: the CS02b
 * executionDateTime (reference §6), else the APDU's date-time field. 0 when there is
 * none (an immediate command, or one whose execution time is inside a payload smki does
 * not decode: DLMS or ZigBee). */
static int execution_time(const gw_apdu *a, time_t *t, const char **from)
{
    if (a->code >= SMKI_MC_CS02B(2) && a->code <= SMKI_MC_CS02B(9)) {
        smki_gbcs_cs02b q;
        /* 99991231235959Z is no date to execute at: the RTDS CANCELLATION commands carry it
         * to cancel a future-dated command, which the limit must not stop. */
        if (smki_gbcs_cs02b_parse(a->content, a->content_len, &q) == 0 && q.has_execution_time &&
            q.execution_time != CANCEL_TIME) {
            *t = q.execution_time;
            *from = "the CS02b executionDateTime";
            return 1;
        }
        smki_error_clear(); /* content the device will refuse: not the gateway's to judge */
    }
    if (a->date_time && cosem_time(a->date_time, t) == 0) {
        *from = "the APDU's date-time";
        return 1;
    }
    return 0;
}

/* ---- Time --------------------------------------------------------------------------------------- */
int smki_gw_time_parse(const char *text, time_t *out)
{
    int y, mo, d, h = 0, mi = 0, s = 0, n = 0;
    long long secs;
    if (text[0] == '@' && sscanf(text + 1, "%lld%n", &secs, &n) == 1 && text[1 + n] == '\0' && secs >= 0) {
        *out = (time_t)secs;
        return 0;
    }
    size_t len = strlen(text);
    int ok = (len == 10 && sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && n == 10) ||
             (len == 20 && sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &s, &n) == 6 && n == 20);
    ENSURE(ok && y >= 1970 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && s < 61, SMKI_E_USAGE,
           "time '%s' is not YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or @SECONDS", text);
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
    *out = timegm(&tm);
    return 0;
}

/* ---- The gateway handle: trust, CRL, caches -------------------------------------------------------- */
#define CERT_CACHE_SLOTS 1024
#define Z_CACHE_SLOTS 1024

typedef struct {
    int used;
    smki_eui64_t id;
    uint8_t hash[32];     /* SHA-256 of the certificate DER this entry verified */
    uint8_t role;         /* the User's registered role it was checked against */
    EVP_PKEY *pub;
    time_t from, until;   /* the verification holds for checks at times in [from, until] */
} cert_entry;

typedef struct {
    int used;
    uint8_t spki_hash[32];
    uint8_t z[32];
} z_entry;

struct smki_gateway {
    smki_store *store;
    gw_dbs d;
    X509_STORE *trust;
    X509_CRL *crl;
    time_t crl_from, crl_until;
    int no_crl;
    time_t max_future;
    smki_gwq_hook hook;
    int has_env;
    smki_env env;
    smki_srv_table srv; /* count 0: eligibility by Remote Party Role */
    smki_key *acb;
    smki_ra *ra; /* the Users' registry */
    FILE *log;   /* JSON log of quarantines, or NULL */
    pthread_mutex_t lock;
    cert_entry certs[CERT_CACHE_SLOTS];
    z_entry zs[Z_CACHE_SLOTS];
};

typedef struct {
    X509_STORE *st;
    size_t n;
} anchor_ctx;

static int add_anchor(void *ctx, size_t index, const uint8_t *der, size_t len)
{
    (void)index;
    anchor_ctx *a = ctx;
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    ENSURE_SSL(x && p == der + len, SMKI_E_INPUT, "trust anchor %zu does not parse", a->n + 1);
    int ok = X509_STORE_add_cert(a->st, x);
    X509_free(x);
    ENSURE_SSL(ok == 1, SMKI_E_CRYPTO, "adding trust anchor %zu", a->n + 1);
    a->n++;
    return 0;
}

static int load_anchor_file(X509_STORE *st, const char *path, size_t *count)
{
    uint8_t *data = NULL;
    size_t len = 0, n = 0, others = 0;
    GUARD(smki_file_read(path, 1u << 20, &data, &len));
    anchor_ctx a = {st, 0};
    int rc = smki_cert_each(data, len, add_anchor, &a, &n, &others);
    free(data);
    if (rc < 0) return smki_error_wrap("trust anchors in %s", path);
    *count += a.n;
    return 0;
}

static int load_anchor_dir(X509_STORE *st, const char *dir, size_t *count)
{
    DIR *dh = opendir(dir);
    ENSURE(dh, SMKI_E_NOTFOUND, "trust folder %s cannot be opened", dir);
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(dh))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        rc = load_anchor_file(st, path, count);
        if (rc < 0) break;
    }
    closedir(dh);
    return rc;
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    return timegm(&tm);
}

static int load_crl(smki_gateway *g, const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    GUARD(smki_file_read(path, 64u << 20, &data, &len));
    const uint8_t *p = data;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    if (!crl || p != data + len) {
        X509_CRL_free(crl);
        crl = NULL;
        BIO *b = BIO_new_mem_buf(data, (int)len);
        if (b) crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    free(data);
    ENSURE_SSL(crl, SMKI_E_INPUT, "CRL %s is neither DER nor PEM", path);
    /* Its signature, against the anchor that issued it: a CRL from anyone else is refused
     * here, not silently ignored later. */
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_OBJECT *obj = NULL;
    int rc = 0;
    ENSURE_SSL_GOTO(ctx && X509_STORE_CTX_init(ctx, g->trust, NULL, NULL) == 1, SMKI_E_CRYPTO, out, "CRL check");
    obj = X509_STORE_CTX_get_obj_by_subject(ctx, X509_LU_X509, X509_CRL_get_issuer(crl));
    ENSURE_GOTO(obj, SMKI_E_VERIFY, out, "CRL %s: its issuer is not among the trust anchors", path);
    EVP_PKEY *ik = X509_get0_pubkey(X509_OBJECT_get0_X509(obj));
    ENSURE_GOTO(ik && X509_CRL_verify(crl, ik) == 1, SMKI_E_VERIFY, out,
                "CRL %s: the signature does not verify under its issuer's key", path);
    ENSURE_SSL_GOTO(X509_STORE_add_crl(g->trust, crl) == 1, SMKI_E_CRYPTO, out, "adding CRL %s", path);
    g->crl_from = asn1_to_time(X509_CRL_get0_lastUpdate(crl));
    g->crl_until = X509_CRL_get0_nextUpdate(crl) ? asn1_to_time(X509_CRL_get0_nextUpdate(crl)) : (time_t)INT64_MAX;
    g->crl = crl;
    crl = NULL;
out:
    X509_OBJECT_free(obj);
    X509_STORE_CTX_free(ctx);
    X509_CRL_free(crl);
    return rc;
}

int smki_gateway_open(smki_store *s, const smki_gateway_opts *o, smki_gateway **out)
{
    ENSURE(!o->trust_dir != !o->oca_file, SMKI_E_USAGE, "give exactly one of a trust folder or an OCA certificate");
    ENSURE(!o->crl_file != !o->no_crl, SMKI_E_USAGE,
           "give a CRL, or say explicitly that revocation is not checked (no_crl)");
    smki_gateway *g = calloc(1, sizeof *g);
    ENSURE(g, SMKI_E_NOMEM, "gateway");
    int rc = 0;
    pthread_mutex_init(&g->lock, NULL);
    g->store = s;
    g->acb = o->acb_ka;
    g->no_crl = o->no_crl;
    g->hook = o->hook;
    g->log = o->log;
    if (o->env) {
        ENSURE_GOTO(o->env->org_policy[0] && o->env->device_policy[0], SMKI_E_USAGE, fail,
                    "environment %s has no organisation or device policy OID configured: the gateway cannot tell "
                    "its certificates from another environment's",
                    o->env->name);
        g->env = *o->env;
        g->has_env = 1;
    }
    g->max_future = o->max_future_seconds ? (time_t)o->max_future_seconds : (time_t)DEFAULT_MAX_FUTURE_SECONDS;
    ENSURE_GOTO(o->ra, SMKI_E_USAGE, fail,
                "the gateway's Users are the RA's: open the RA on the gateway's store (smki_gateway_opts.ra)");
    g->ra = o->ra;
    GUARD_GOTO(smki_gw_dbs_get(s, &g->d), fail);
    g->trust = X509_STORE_new();
    ENSURE_SSL_GOTO(g->trust, SMKI_E_NOMEM, fail, "trust store");
    size_t anchors = 0;
    if (o->trust_dir)
        GUARD_GOTO(load_anchor_dir(g->trust, o->trust_dir, &anchors), fail);
    else
        GUARD_GOTO(load_anchor_file(g->trust, o->oca_file, &anchors), fail);
    ENSURE_GOTO(anchors > 0, SMKI_E_INPUT, fail, "no certificate in %s", o->trust_dir ? o->trust_dir : o->oca_file);
    if (o->crl_file) GUARD_GOTO(load_crl(g, o->crl_file), fail);
    GUARD_GOTO(smki_gw_srv_get(s, &g->srv), fail);
    *out = g;
    return 0;
fail:
    smki_gateway_free(g);
    return rc;
}

void smki_gateway_free(smki_gateway *g)
{
    if (!g) return;
    for (size_t i = 0; i < CERT_CACHE_SLOTS; i++) EVP_PKEY_free(g->certs[i].pub);
    smki_wipe(g->zs, sizeof g->zs);
    X509_STORE_free(g->trust);
    X509_CRL_free(g->crl);
    smki_srv_table_free(&g->srv);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

void smki_gw_result_clear(smki_gw_result *r)
{
    if (!r) return;
    free(r->command);
    r->command = NULL;
    r->command_len = 0;
}

/* ---- One message's read-only checks ------------------------------------------------------------ */
typedef struct {
    gw_apdu a;
    smki_gw_user user;
    smki_gw_device dev;
    int alive;    /* passed the read-only checks so far */
    int is_return; /* a response or alert (CRA 02/03), device to User */
    int ra_known;      /* the RA knows the User ID (a command's originator, a response's recipient) */
    int ra_suspended;  /* it or its Party is suspended */
    char ra_why[SMKI_RA_REASON_MAX + 80];
    char ra_roles[SMKI_GW_USER_ROLES_MAX]; /* its User Roles ("EIS,GIS"; "DCC" for a DCC ID) */
    smki_ra_user_id ra_user; /* the RA's record (when ra_known) */
} msg_state;

static void set_verdict(smki_gw_result *r, smki_gw_verdict v, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_verdict(smki_gw_result *r, smki_gw_verdict v, const char *reason, const char *fmt, ...)
{
    r->verdict = v;
    r->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
}

typedef struct {
    smki_gateway *g;
    msg_state *ms;
    smki_gw_result *res;
    size_t n;
} batch_ctx;

/* Test and live never mix: a device whose certificate is of another environment is
 * refused, whatever the trust anchors. A device added without a certificate (no KA key,
 * or a bare public key) has no certificate to judge: it passes this check. 1 when it
 * passes. */
static int device_env_ok(const smki_gateway *g, const msg_state *m, smki_gw_result *r, const char *who)
{
    if (!g->has_env || !m->dev.policy[0] || strcmp(m->dev.policy, g->env.device_policy) == 0) return 1;
    set_verdict(r, SMKI_GW_REJECT, "device.environment",
                "device %s's certificate policy %s is not the %s environment's (%s)", who, m->dev.policy, g->env.name,
                g->env.device_policy);
    return 0;
}

/* The same for a User's registered certificate (the recipient of a response or alert). */
static int user_env_ok(const smki_gateway *g, const msg_state *m, smki_gw_result *r, const char *who)
{
    if (!g->has_env) return 1;
    char policy[SMKI_OID_TEXT_MAX] = "";
    const uint8_t *p = m->user.cert;
    X509 *x = d2i_X509(NULL, &p, (long)m->user.cert_len);
    if (x && smki_gw_cert_policy(x, policy, sizeof policy) < 0) policy[0] = '\0';
    X509_free(x);
    smki_error_clear();
    ERR_clear_error();
    if (strcmp(policy, g->env.org_policy) == 0) return 1;
    set_verdict(r, SMKI_GW_REJECT, "user.environment",
                "User %s's registered certificate has policy %s, not the %s environment's (%s)", who,
                policy[0] ? policy : "(none)", g->env.name, g->env.org_policy);
    return 0;
}

/* A response or alert travels from a device in the inventory to a registered User: both
 * ends must be known (the User's suspension and the device's status do not stop a
 * device's answer from reaching its User). */
static int registry_return(smki_txn *t, batch_ctx *b, msg_state *m, smki_gw_result *r, const char *oe, const char *te)
{
    const void *v;
    size_t vl;
    int rc = smki_txn_get(t, b->g->d.devices, m->a.originator.b, 8, &v, &vl);
    if (rc == SMKI_E_NOTFOUND) {
        set_verdict(r, SMKI_GW_REJECT, "device.unknown", "the %s's originator %s is not in the inventory",
                    smki_gbcs_cra_name(m->a.cra), oe);
        m->alive = 0;
        return 0;
    }
    GUARD(rc);
    GUARD(smki_gw_device_decode(m->a.originator.b, v, vl, &m->dev));
    if (!device_env_ok(b->g, m, r, oe)) {
        m->alive = 0;
        return 0;
    }
    if (!m->ra_known) {
        set_verdict(r, SMKI_GW_REJECT, "user.unknown", "the %s's recipient %s is not a User ID of the RA's registry",
                    smki_gbcs_cra_name(m->a.cra), te);
        m->alive = 0;
        return 0;
    }
    rc = smki_txn_get(t, b->g->d.users, m->a.target.b, 8, &v, &vl);
    if (rc == SMKI_E_NOTFOUND) {
        set_verdict(r, SMKI_GW_REJECT, "user.unknown", "the %s's recipient %s has no certificate registered at the gateway",
                    smki_gbcs_cra_name(m->a.cra), te);
        m->alive = 0;
        return 0;
    }
    GUARD(rc);
    GUARD(smki_gw_user_decode(m->a.target.b, v, vl, &m->user));
    if (!user_env_ok(b->g, m, r, te)) m->alive = 0;
    return 0;
}

/* Eligibility by User Role per Service Reference Variant: one of the sender's User Roles
 * is listed for a Service Reference Variant whose message code the pre-command carries. */
static void srv_eligible(const smki_srv_table *t, msg_state *m, smki_gw_result *r, const char *oe)
{
    /* The RA's User Roles: one source of truth. */
    uint32_t mine = smki_srv_roles_mask(t, m->ra_roles);
    char srvs[160] = "";
    size_t o = 0;
    for (size_t i = 0; i < t->count; i++) {
        if (t->rows[i].code != m->a.code) continue;
        if (t->rows[i].roles & mine) return;
        int n = snprintf(srvs + o, sizeof srvs - o, "%s%s (%s)", o ? ", " : "", t->rows[i].srv, t->rows[i].use_case);
        if (n > 0 && (size_t)n < sizeof srvs - o) o += (size_t)n;
    }
    if (!m->ra_roles[0])
        set_verdict(r, SMKI_GW_REJECT, "user.not-eligible",
                    "user %s has no User Role: the eligibility table needs one to send message code %04X", oe,
                    m->a.code);
    else if (!o)
        set_verdict(r, SMKI_GW_REJECT, "user.not-eligible",
                    "message code %04X is in no Service Reference Variant of the eligibility table", m->a.code);
    else
        set_verdict(r, SMKI_GW_REJECT, "user.not-eligible",
                    "user %s (User Roles %s) is eligible for none of %s with message code %04X", oe,
                    m->ra_roles, srvs, m->a.code);
    m->alive = 0;
}

/* The RA's registry on the User of each live message (a command's originator, a response's
 * or alert's recipient), outside any store transaction of the gateway's: a batch from
 * one User asks once. */
static int ra_lookup(smki_gateway *g, msg_state *ms, size_t n)
{
    const msg_state *last = NULL;
    for (size_t i = 0; i < n; i++) {
        msg_state *m = &ms[i];
        if (!m->alive) continue;
        const smki_eui64_t *id = m->is_return ? &m->a.target : &m->a.originator;
        const smki_eui64_t *prev = last ? (last->is_return ? &last->a.target : &last->a.originator) : NULL;
        if (prev && smki_eui64_cmp(prev, id) == 0) {
            m->ra_known = last->ra_known;
            m->ra_suspended = last->ra_suspended;
            memcpy(m->ra_why, last->ra_why, sizeof m->ra_why);
            memcpy(m->ra_roles, last->ra_roles, sizeof m->ra_roles);
            m->ra_user = last->ra_user;
            continue;
        }
        int rc = smki_gw_ra_user_record(g->ra, id, &m->ra_user, m->ra_roles, sizeof m->ra_roles, &m->ra_suspended, m->ra_why,
                            sizeof m->ra_why);
        if (rc != SMKI_E_NOTFOUND) GUARD(rc);
        m->ra_known = rc == 0;
        last = m;
    }
    return 0;
}

/* Registry checks, in §7's order: user known, eligible, not suspended; device status. */
static int registry_txn(smki_txn *t, void *arg)
{
    batch_ctx *b = arg;
    for (size_t i = 0; i < b->n; i++) {
        msg_state *m = &b->ms[i];
        smki_gw_result *r = &b->res[i];
        if (!m->alive) continue;
        char oe[SMKI_EUI64_TEXT_MAX], te[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(&m->a.originator, SMKI_EUI64_HYPHEN, oe);
        smki_eui64_format(&m->a.target, SMKI_EUI64_HYPHEN, te);
        const void *v;
        size_t vl;
        if (m->is_return) {
            GUARD(registry_return(t, b, m, r, oe, te));
            continue;
        }
        int rc = m->ra_known ? smki_txn_get(t, b->g->d.users, m->a.originator.b, 8, &v, &vl) : SMKI_E_NOTFOUND;
        if (rc == SMKI_E_NOTFOUND) {
            smki_error_clear();
            set_verdict(r, SMKI_GW_REJECT, "user.unknown", "originator %s %s", oe,
                        m->ra_known ? "has no DS certificate registered at the gateway"
                                    : "is not a User ID of the RA's registry");
            m->alive = 0;
            continue;
        }
        GUARD(rc);
        GUARD(smki_gw_user_decode(m->a.originator.b, v, vl, &m->user));
        int allowed;
        if (b->g->srv.count) {
            srv_eligible(&b->g->srv, m, r, oe);
            if (!m->alive) continue;
            allowed = 1;
        } else {
            GUARD(smki_gw_elig_allows_txn(t, &b->g->d, m->user.role, m->a.code, &allowed));
        }
        if (!allowed) {
            set_verdict(r, SMKI_GW_REJECT, "user.not-eligible", "user %s in role %02X (%s) may not send message code %04X",
                        oe, m->user.role, smki_role_name(m->user.role), m->a.code);
            m->alive = 0;
            continue;
        }
        if (m->ra_suspended) {
            set_verdict(r, SMKI_GW_REJECT, "user.suspended", "user %s is suspended by the RA: %s", oe, m->ra_why);
            m->alive = 0;
            continue;
        }
        rc = smki_txn_get(t, b->g->d.devices, m->a.target.b, 8, &v, &vl);
        if (rc == SMKI_E_NOTFOUND) {
            set_verdict(r, SMKI_GW_REJECT, "device.unknown", "target device %s is not in the inventory", te);
            m->alive = 0;
            continue;
        }
        GUARD(rc);
        GUARD(smki_gw_device_decode(m->a.target.b, v, vl, &m->dev));
        if (!smki_dev_status_allows_commands(m->dev.status)) {
            set_verdict(r, SMKI_GW_REJECT, "device.status", "target device %s is %s: commands are not allowed", te,
                        smki_dev_status_name(m->dev.status));
            m->alive = 0;
            continue;
        }
        if (!device_env_ok(b->g, m, r, te)) {
            m->alive = 0;
            continue;
        }
    }
    return 0;
}

static const char *chain_reason(int err)
{
    switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED: return "cert.expired";
    case X509_V_ERR_CERT_NOT_YET_VALID: return "cert.not-yet-valid";
    case X509_V_ERR_CERT_REVOKED: return "cert.revoked";
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD: return "cert.revocation-unknown";
    default: return "cert.untrusted";
    }
}

/* The signer certificate: chain (dates, revocation) at `at`, role, key usage, subject.
 * Returns 0 with *pub (a reference the caller frees) or sets the verdict. */
static int check_cert(smki_gateway *g, msg_state *m, smki_gw_result *r, time_t at, EVP_PKEY **pub)
{
    /* The RA's User Roles as they are now (they may have changed since the certificate
     * was registered) must still allow its registered role. */
    if (!smki_ra_role_allowed(m->ra_user.roles, m->ra_user.is_dcc, m->user.role)) {
        char who[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(&m->a.originator, SMKI_EUI64_HYPHEN, who);
        set_verdict(r, SMKI_GW_REJECT, "cert.role",
                    "user %s's User Roles in the RA's registry (%s) no longer allow its registered role %s", who,
                    m->ra_roles, smki_role_name(m->user.role));
        m->alive = 0;
        return 0;
    }
    uint8_t hash[32];
    SHA256(m->user.cert, m->user.cert_len, hash);
    size_t slot = (size_t)(smki_eui64_to_u64(&m->a.originator) * 0x9E3779B97F4A7C15ull >> 54) % CERT_CACHE_SLOTS;
    pthread_mutex_lock(&g->lock);
    cert_entry *e = &g->certs[slot];
    if (e->used && smki_eui64_cmp(&e->id, &m->a.originator) == 0 && memcmp(e->hash, hash, 32) == 0 &&
        e->role == m->user.role && at >= e->from && at <= e->until) {
        EVP_PKEY_up_ref(e->pub);
        *pub = e->pub;
        pthread_mutex_unlock(&g->lock);
        return 0;
    }
    pthread_mutex_unlock(&g->lock);

    char oe[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(&m->a.originator, SMKI_EUI64_HYPHEN, oe);
    const uint8_t *p = m->user.cert;
    X509 *x = d2i_X509(NULL, &p, (long)m->user.cert_len);
    ENSURE_SSL(x, SMKI_E_CORRUPT, "the stored certificate of %s does not parse", oe);
    int rc = 0, ok = 0;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    ENSURE_SSL_GOTO(ctx && X509_STORE_CTX_init(ctx, g->trust, x, NULL) == 1, SMKI_E_CRYPTO, out, "chain check");
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
    /* The organisation CA may be the anchor itself (the RTDS does not publish its root). */
    unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_USE_CHECK_TIME | X509_V_FLAG_X509_STRICT;
    if (!g->no_crl) flags |= X509_V_FLAG_CRL_CHECK;
    X509_VERIFY_PARAM_set_flags(vp, flags);
    X509_VERIFY_PARAM_set_time(vp, at);
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        set_verdict(r, SMKI_GW_REJECT, chain_reason(err), "signer certificate of %s at %lld: %s", oe, (long long)at,
                    X509_verify_cert_error_string(err));
        ERR_clear_error();
        goto out;
    }
    /* Role (OU), key usage, subject EUI-64 (reference §4). */
    X509_NAME *subj = X509_get_subject_name(x);
    int oi = X509_NAME_get_index_by_NID(subj, NID_organizationalUnitName, -1);
    unsigned char *ou = NULL;
    uint8_t role = 0xFF;
    if (oi >= 0 && ASN1_STRING_to_UTF8(&ou, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, oi))) >= 0 && ou) {
        if (smki_role_parse((const char *)ou, &role) < 0) {
            smki_error_clear();
            role = 0xFF;
        }
    }
    OPENSSL_free(ou);
    if (role != m->user.role) {
        set_verdict(r, SMKI_GW_REJECT, "cert.role",
                    "signer certificate of %s carries role %02X, the user is registered as %02X (%s)", oe, role,
                    m->user.role, smki_role_name(m->user.role));
        goto out;
    }
    uint32_t ku = X509_get_key_usage(x);
    if (!(X509_get_extension_flags(x) & EXFLAG_KUSAGE) || !(ku & KU_DIGITAL_SIGNATURE) || (ku & KU_KEY_AGREEMENT)) {
        set_verdict(r, SMKI_GW_REJECT, "cert.key-usage",
                    "signer certificate of %s is not a digital-signature certificate (keyUsage 0x%04x)", oe, ku);
        goto out;
    }
    smki_eui64_t subj_id;
    if (smki_gw_cert_subject_eui(x, &subj_id) < 0 || smki_eui64_cmp(&subj_id, &m->a.originator) != 0) {
        smki_error_clear();
        set_verdict(r, SMKI_GW_REJECT, "cert.subject", "signer certificate's EUI-64 is not the originator %s", oe);
        goto out;
    }
    if (g->has_env) {
        char policy[SMKI_OID_TEXT_MAX];
        GUARD_GOTO(smki_gw_cert_policy(x, policy, sizeof policy), out);
        if (strcmp(policy, g->env.org_policy) != 0) {
            set_verdict(r, SMKI_GW_REJECT, "cert.environment",
                        "signer certificate of %s has policy %s, not the %s environment's (%s)", oe,
                        policy[0] ? policy : "(none)", g->env.name, g->env.org_policy);
            goto out;
        }
    }
    /* The span in which this verification holds: every certificate of the chain valid,
     * and the CRL current. */
    time_t from = 0, until = (time_t)INT64_MAX;
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        time_t nb = asn1_to_time(X509_get0_notBefore(c)), na = asn1_to_time(X509_get0_notAfter(c));
        if (nb > from) from = nb;
        if (na < until) until = na;
    }
    if (!g->no_crl) {
        if (g->crl_from > from) from = g->crl_from;
        if (g->crl_until < until) until = g->crl_until;
    }
    EVP_PKEY *k = X509_get_pubkey(x);
    ENSURE_SSL_GOTO(k, SMKI_E_CRYPTO, out, "public key of the certificate of %s", oe);
    pthread_mutex_lock(&g->lock);
    EVP_PKEY_free(e->pub);
    e->used = 1;
    e->id = m->a.originator;
    memcpy(e->hash, hash, 32);
    e->role = m->user.role;
    EVP_PKEY_up_ref(k);
    e->pub = k;
    e->from = from;
    e->until = until;
    pthread_mutex_unlock(&g->lock);
    *pub = k;
    ok = 1;
out:
    X509_STORE_CTX_free(ctx);
    X509_free(x);
    if (rc == 0 && !ok) m->alive = 0;
    return rc;
}

/* The shared secret of the ACB's and a device's KA keys, cached per device key. */
static int device_z(smki_gateway *g, const smki_gw_device *dev, uint8_t z[32])
{
    uint8_t h[32];
    SHA256(dev->ka_spki, dev->ka_len, h);
    size_t slot = (size_t)(h[0] | h[1] << 8) % Z_CACHE_SLOTS;
    pthread_mutex_lock(&g->lock);
    z_entry *e = &g->zs[slot];
    if (e->used && memcmp(e->spki_hash, h, 32) == 0) {
        memcpy(z, e->z, 32);
        pthread_mutex_unlock(&g->lock);
        return 0;
    }
    pthread_mutex_unlock(&g->lock);
    EVP_PKEY *peer = NULL;
    GUARD(smki_pub_load(dev->ka_spki, dev->ka_len, &peer));
    int rc = smki_key_ecdh(g->acb, peer, z);
    EVP_PKEY_free(peer);
    GUARD(rc);
    pthread_mutex_lock(&g->lock);
    e->used = 1;
    memcpy(e->spki_hash, h, 32);
    memcpy(e->z, z, 32);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

/* ---- The write phase: counters, thresholds, quarantine, invocation counters --------------------- */
typedef struct {
    batch_ctx *b;
    time_t at;
    uint32_t *ic; /* per message: invocation counter given */
} write_ctx;

static const char NEXT_QID[] = "quar.next";

static int next_qid(smki_txn *t, const gw_dbs *d, uint64_t *id)
{
    const void *v;
    size_t vl;
    uint64_t next = 1;
    int rc = smki_txn_get(t, d->meta, NEXT_QID, sizeof NEXT_QID - 1, &v, &vl);
    if (rc == 0) {
        ENSURE(vl == 8, SMKI_E_CORRUPT, "quarantine id record");
        next = smki_get_be64(v);
    } else if (rc != SMKI_E_NOTFOUND) {
        return rc;
    }
    uint8_t nb[8];
    smki_put_be64(nb, next + 1);
    GUARD(smki_txn_put(t, d->meta, NEXT_QID, sizeof NEXT_QID - 1, nb, 8, 0));
    *id = next;
    return 0;
}


/* Threshold rings: gw.tring key user(8) code(4) window(4) [kind(1)] -> max(4) n(4) head(4)
 * n*time(8): the times of the last max passes. Full, with the oldest inside the window:
 * exceeded. Command rules keep the 16-octet key of the first format; response and alert
 * rules append their kind. */
static size_t ring_key(uint8_t k[17], const smki_eui64_t *u, const smki_threshold *r)
{
    memcpy(k, u->b, 8);
    smki_put_be32(k + 8, r->code);
    smki_put_be32(k + 12, r->window);
    if (r->kind == SMKI_GBCS_CRA_COMMAND) return 16;
    k[16] = r->kind;
    return 17;
}

static int ring_check(smki_txn *t, const gw_dbs *d, const smki_eui64_t *u, const smki_threshold *r, time_t at,
                      int *exceeded, uint32_t *count)
{
    uint8_t k[17];
    size_t kl = ring_key(k, u, r);
    const void *v;
    size_t vl;
    *exceeded = 0;
    *count = 0;
    int rc = smki_txn_get(t, d->tring, k, kl, &v, &vl);
    if (rc == SMKI_E_NOTFOUND) return 0;
    GUARD(rc);
    const uint8_t *p = v;
    ENSURE(vl >= 12, SMKI_E_CORRUPT, "threshold ring short");
    uint32_t max = smki_get_be32(p), n = smki_get_be32(p + 4), head = smki_get_be32(p + 8);
    ENSURE(vl == 12 + 8 * (size_t)max && n <= max && head < (max ? max : 1), SMKI_E_CORRUPT, "threshold ring");
    if (max != r->max_count) return 0; /* the rule changed: start afresh */
    for (uint32_t i = 0; i < n; i++) {
        int64_t tm = (int64_t)smki_get_be64(p + 12 + 8 * (size_t)((head + max - n + i) % max));
        if (tm > (int64_t)at - (int64_t)r->window) (*count)++;
    }
    *exceeded = *count >= r->max_count;
    return 0;
}

static int ring_push(smki_txn *t, const gw_dbs *d, const smki_eui64_t *u, const smki_threshold *r, time_t at)
{
    uint8_t k[17];
    size_t kl = ring_key(k, u, r);
    size_t len = 12 + 8 * (size_t)r->max_count;
    uint8_t *buf = calloc(1, len);
    ENSURE(buf, SMKI_E_NOMEM, "threshold ring");
    const void *v;
    size_t vl;
    int rc = smki_txn_get(t, d->tring, k, kl, &v, &vl);
    if (rc == 0 && vl == len && smki_get_be32(v) == r->max_count) memcpy(buf, v, len);
    else if (rc < 0 && rc != SMKI_E_NOTFOUND) {
        free(buf);
        return rc;
    }
    smki_put_be32(buf, r->max_count);
    uint32_t n = smki_get_be32(buf + 4), head = smki_get_be32(buf + 8);
    smki_put_be64(buf + 12 + 8 * (size_t)head, (uint64_t)(int64_t)at);
    head = (head + 1) % r->max_count;
    if (n < r->max_count) n++;
    smki_put_be32(buf + 4, n);
    smki_put_be32(buf + 8, head);
    rc = smki_txn_put(t, d->tring, k, kl, buf, len, 0);
    free(buf);
    return rc;
}

static int rule_applies(const smki_threshold *rule, const gw_apdu *a)
{
    return rule->kind == a->cra && (rule->code == SMKI_CODE_ANY || rule->code == a->code);
}

static int write_txn(smki_txn *t, void *arg)
{
    write_ctx *w = arg;
    batch_ctx *b = w->b;
    const gw_dbs *d = &b->g->d;
    for (size_t i = 0; i < b->n; i++) {
        msg_state *m = &b->ms[i];
        smki_gw_result *r = &b->res[i];
        /* A re-run (the map grew) starts from the read-only verdicts again. */
        if (!m->alive) continue;
        r->verdict = SMKI_GW_PASS;
        r->reason = "";
        r->detail[0] = '\0';
        r->quarantine_id = 0;
        char oe[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(&m->a.originator, SMKI_EUI64_HYPHEN, oe);
        if (!m->is_return) {
            uint64_t last;
            int seen;
            GUARD(smki_gw_counter_get_txn(t, d, &m->a.originator, &last, &seen));
            if (seen && m->a.counter <= last) {
                set_verdict(r, SMKI_GW_REJECT, "counter.replay",
                            "counter %llu from %s is not above the last one that passed (%llu)",
                            (unsigned long long)m->a.counter, oe, (unsigned long long)last);
                continue;
            }
        }
        /* The User whose rules apply: the sender of a command, the recipient of a response
         * or alert; only the rules of the message's kind count it. */
        const smki_eui64_t *user = m->is_return ? &m->a.target : &m->a.originator;
        char ue[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(user, SMKI_EUI64_HYPHEN, ue);
        smki_thresholds th;
        GUARD(smki_gw_thresholds_get_txn(t, d, user, &th));
        int rc = 0;
        for (size_t j = 0; j < th.count && r->verdict == SMKI_GW_PASS; j++) {
            const smki_threshold *rule = &th.rules[j];
            if (!rule_applies(rule, &m->a)) continue;
            int exceeded;
            uint32_t count;
            GUARD_GOTO(ring_check(t, d, user, rule, w->at, &exceeded, &count), th_out);
            if (exceeded) {
                char code[12];
                if (rule->code == SMKI_CODE_ANY)
                    snprintf(code, sizeof code, "*");
                else
                    snprintf(code, sizeof code, "%04X", rule->code);
                set_verdict(r, SMKI_GW_QUARANTINE, "threshold.exceeded",
                            "user %s, %ss, message code %s: %u passed in the last %u s, the threshold is %u", ue,
                            smki_gbcs_cra_name(rule->kind), code, count, rule->window, rule->max_count);
            }
        }
        if (r->verdict == SMKI_GW_QUARANTINE) {
            smki_gwq_record q;
            memset(&q, 0, sizeof q);
            GUARD_GOTO(next_qid(t, d, &q.id), th_out);
            q.state = SMKI_GWQ_HELD;
            q.at = (int64_t)w->at;
            snprintf(q.reason, sizeof q.reason, "%s", r->reason);
            snprintf(q.detail, sizeof q.detail, "%s", r->detail);
            q.originator = m->a.originator;
            q.target = m->a.target;
            q.code = m->a.code;
            q.counter = m->a.counter;
            /* A command is held as its General Signing APDU (release MACs it afresh); a
             * response or alert as received (release forwards it unchanged, MAC and all). */
            q.msg = (uint8_t *)(m->is_return ? m->a.msg : m->a.apdu);
            q.msg_len = m->is_return ? m->a.msg_len : m->a.apdu_len;
            GUARD_GOTO(smki_gw_quarantine_put(t, d, &q), th_out);
            GUARD_GOTO(smki_gw_quarantine_counted(t, d), th_out);
            r->quarantine_id = q.id;
        } else {
            for (size_t j = 0; j < th.count; j++)
                if (rule_applies(&th.rules[j], &m->a)) GUARD_GOTO(ring_push(t, d, user, &th.rules[j], w->at), th_out);
            if (!m->is_return) {
                GUARD_GOTO(smki_gw_counter_put_txn(t, d, &m->a.originator, m->a.counter), th_out);
                if (b->g->acb) GUARD_GOTO(smki_gw_next_invocation_txn(t, d, &m->a.target, &w->ic[i]), th_out);
            }
        }
    th_out:
        smki_thresholds_free(&th);
        GUARD(rc);
    }
    /* The record of every message judged, whatever its verdict (kept, then archived). */
    for (size_t i = 0; i < b->n; i++) GUARD(smki_gw_log_put(t, d, (int64_t)w->at, &b->res[i]));
    return 0;
}

int smki_gateway_check(smki_gateway *g, const uint8_t *const *msgs, const size_t *lens, size_t n, time_t at,
                       smki_gw_result *res)
{
    msg_state *ms = calloc(n ? n : 1, sizeof *ms);
    uint32_t *ic = calloc(n ? n : 1, sizeof *ic);
    int rc = 0;
    ENSURE_GOTO(ms && ic, SMKI_E_NOMEM, out, "gateway batch of %zu", n);
    /* 1. Structure. */
    for (size_t i = 0; i < n; i++) {
        smki_gw_result *r = &res[i];
        memset(r, 0, sizeof *r);
        r->reason = "";
        msg_state *m = &ms[i];
        if (smki_gw_apdu_parse(msgs[i], lens[i], &m->a) < 0) {
            set_verdict(r, SMKI_GW_REJECT, "structure.malformed", "%s", smki_error_msg());
            smki_error_clear();
            continue;
        }
        r->parsed = 1;
        r->cra = m->a.cra;
        r->counter = m->a.counter;
        r->originator = m->a.originator;
        r->target = m->a.target;
        r->code = m->a.code;
        /* Responses and alerts take the return path: known ends, then anomaly detection
         * (Stage 2 ¶136). Their protection is the recipient's to verify: the device's
         * signature or the MAC under the User's KA key (smki gbcs verify). */
        if (m->a.cra != SMKI_GBCS_CRA_COMMAND) {
            m->is_return = 1;
            m->alive = 1;
            continue;
        }
        if (!m->a.sig) {
            set_verdict(r, SMKI_GW_REJECT, "structure.unsigned", "the pre-command carries no signature");
            continue;
        }
        time_t exec;
        const char *from = "";
        if (execution_time(&m->a, &exec, &from) && exec > at && exec - at > g->max_future) {
            char when[32];
            struct tm tm;
            gmtime_r(&exec, &tm);
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
            set_verdict(r, SMKI_GW_REJECT, "future-dated.too-far",
                        "execution date-time %s (%s) is %lld day(s) ahead; at most %lld day(s) are allowed", when, from,
                        (long long)((exec - at) / 86400), (long long)(g->max_future / 86400));
            continue;
        }
        m->alive = 1;
    }
    /* 2. Registry: the RA's word on each User (known, User Roles, suspension of the ID or
     * its Party), then the gateway's credentials, eligibility and device status. */
    GUARD_GOTO(ra_lookup(g, ms, n), out);
    batch_ctx b = {g, ms, res, n};
    GUARD_GOTO(smki_store_read(g->store, registry_txn, &b), out);
    /* 3. Credentials: the certificate, then the signature under it. A batch from one
     * originator sets up its verification context once (OpenSSL 3 fetches the algorithm
     * on every context it makes: a fifth of a verify). */
    EVP_PKEY *vpub = NULL;
    EVP_PKEY_CTX *vctx = NULL;
    for (size_t i = 0; i < n; i++) {
        msg_state *m = &ms[i];
        if (!m->alive || m->is_return) continue;
        EVP_PKEY *pub = NULL;
        GUARD_GOTO(check_cert(g, m, &res[i], at, &pub), verify_out);
        if (!m->alive) continue;
        if (pub != vpub) {
            EVP_PKEY_CTX_free(vctx);
            EVP_PKEY_free(vpub);
            vpub = pub;
            vctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
            ENSURE_SSL_GOTO(vctx && EVP_PKEY_verify_init(vctx) == 1, SMKI_E_CRYPTO, verify_out,
                            "preparing signature verification");
        } else {
            EVP_PKEY_free(pub);
        }
        uint8_t digest[32], der[SMKI_SIG_MAX];
        size_t der_len = sizeof der;
        SHA256(m->a.signed_part, m->a.signed_len, digest);
        int v = smki_sig_raw_to_der(m->a.sig, der, &der_len) == 0 &&
                EVP_PKEY_verify(vctx, der, der_len, digest, sizeof digest) == 1;
        ERR_clear_error();
        if (!v) {
            char oe[SMKI_EUI64_TEXT_MAX];
            smki_eui64_format(&m->a.originator, SMKI_EUI64_HYPHEN, oe);
            set_verdict(&res[i], SMKI_GW_REJECT, "signature.invalid",
                        "the signature does not verify under the DS certificate of %s", oe);
            smki_error_clear();
            m->alive = 0;
        }
        if (m->alive && g->acb && m->dev.ka_len == 0) {
            char te[SMKI_EUI64_TEXT_MAX];
            smki_eui64_format(&m->a.target, SMKI_EUI64_HYPHEN, te);
            set_verdict(&res[i], SMKI_GW_REJECT, "device.no-ka-key",
                        "device %s has no KA key in the inventory: the command cannot be MACed", te);
            m->alive = 0;
        }
    }
verify_out:
    EVP_PKEY_CTX_free(vctx);
    EVP_PKEY_free(vpub);
    if (rc < 0) goto out;
    /* 4. Counter and thresholds, recorded in one commit before any command leaves. */
    write_ctx w = {&b, at, ic};
    GUARD_GOTO(smki_store_write(g->store, write_txn, &w), out);
    /* 5. The MAC. */
    if (g->acb)
        for (size_t i = 0; i < n; i++) {
            if (!ms[i].alive || ms[i].is_return || res[i].verdict != SMKI_GW_PASS) continue;
            uint8_t z[32];
            GUARD_GOTO(device_z(g, &ms[i].dev, z), out);
            rc = smki_gbcs_wrap_z(ms[i].a.apdu, ms[i].a.apdu_len, z, ic[i], &res[i].command, &res[i].command_len);
            smki_wipe(z, sizeof z);
            GUARD_GOTO(rc, out);
        }
    /* 6. Notification of what was quarantined, after the commit: a failing hook is
     * counted and kept for a retry, never a failure of the check. */
    for (size_t i = 0; i < n && g->hook.command && *g->hook.command; i++) {
        if (res[i].verdict != SMKI_GW_QUARANTINE) continue;
        int ok = 0;
        int hrc = smki_gwq_notify(g->store, &g->hook, res[i].quarantine_id, &ok);
        res[i].notified = ok ? 1 : -1;
        if (hrc < 0) {
            snprintf(res[i].notify_error, sizeof res[i].notify_error, "%s", smki_error_msg());
            smki_error_clear();
        }
        GUARD_GOTO(hrc == SMKI_E_REFUSED ? 0 : hrc, out);
    }
    /* The log line comes after the commit and the hook: a log that cannot be written loses
     * nothing (the store holds the records and the counters, 'quarantine stats'), so it
     * does not fail the check either. */
    if (g->log && smki_gw_log_quarantined(g->store, g->log, res, n) < 0) smki_error_clear();
out:
    if (rc < 0)
        for (size_t i = 0; i < n; i++) smki_gw_result_clear(&res[i]);
    free(ms);
    free(ic);
    return rc;
}
