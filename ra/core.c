/* The RA handle: its databases, its policy from configuration, the record writer and
 * string reader every ra/ file shares, and User Roles with the Remote Party Roles
 * each may hold. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ra_private.h"

/* ---- Policy ------------------------------------------------------------------------------ */

static int conf_uint(const smki_conf *c, const char *key, unsigned lo, unsigned hi, unsigned *out)
{
    const char *v = smki_conf_get(c, key, NULL);
    if (!v) return 0;
    char *end = NULL;
    unsigned long n = strtoul(v, &end, 10);
    ENSURE(*v >= '0' && *v <= '9' && end && !*end && n >= lo && n <= hi, SMKI_E_USAGE,
           "configuration %s = '%.32s': a whole number from %u to %u", key, v, lo, hi);
    *out = (unsigned)n;
    return 0;
}

int smki_ra_policy_load(const smki_conf *conf, smki_ra_policy *out)
{
    smki_ra_policy p = {1, 2, 1000, 200, 150, 10000, 1000, 64, "test", ""};
    if (conf) {
        /* Nothing is done by one operator alone: at least one approval by another. */
        GUARD(conf_uint(conf, "ra.approvals_organisation", 1, SMKI_RA_APPROVERS_MAX, &p.approvals_org));
        GUARD(conf_uint(conf, "ra.approvals_sensitive", 1, SMKI_RA_APPROVERS_MAX, &p.approvals_sensitive));
        GUARD(conf_uint(conf, "ra.batch_review_size", 1, 100000000, &p.batch_review_size));
        GUARD(conf_uint(conf, "ra.rate_per_day", 1, 100000000, &p.rate_per_day));
        GUARD(conf_uint(conf, "ra.demand_percent", 100, 100000, &p.demand_percent));
        GUARD(conf_uint(conf, "ra.demand_baseline", 1, 1000000000, &p.demand_baseline));
        GUARD(conf_uint(conf, "ra.batch_group", 1, 100000, &p.batch_group));
        GUARD(conf_uint(conf, "audit.checkpoint_every", 1, 1000000, &p.checkpoint_every));
        const char *d = smki_conf_get(conf, "ra.direct_issue", NULL);
        if (d) {
            ENSURE(strlen(d) < sizeof p.direct_envs, SMKI_E_USAGE, "configuration ra.direct_issue is too long");
            snprintf(p.direct_envs, sizeof p.direct_envs, "%s", strcmp(d, "none") == 0 ? "" : d);
        }
        const char *u = smki_conf_get(conf, "ra.unmanaged", NULL);
        if (u) {
            ENSURE(strlen(u) < sizeof p.unmanaged_envs, SMKI_E_USAGE, "configuration ra.unmanaged is too long");
            snprintf(p.unmanaged_envs, sizeof p.unmanaged_envs, "%s", strcmp(u, "none") == 0 ? "" : u);
        }
    }
    /* Sensitive actions never need fewer approvals than ordinary ones. */
    if (p.approvals_sensitive < p.approvals_org) p.approvals_sensitive = p.approvals_org;
    *out = p;
    return 0;
}

/* ---- The handle --------------------------------------------------------------------------- */

typedef struct {
    smki_ra *ra;
    size_t operators;
    int governed;
} govern_run;

static int govern_read(smki_txn *t, void *arg)
{
    govern_run *g = arg;
    GUARD(smki_txn_count(t, g->ra->db.operators, &g->operators));
    return smki_ca_is_governed(t, &g->ra->ca, &g->governed);
}

static int govern_write(smki_txn *t, void *arg)
{
    return smki_ca_govern(t, &((govern_run *)arg)->ra->ca);
}

/* A store whose operators were registered before the CA knew of governed stores is
 * marked now (registering an operator marks it in the same transaction). Read-only,
 * nothing can be written, by the CA either: left as it is. */
static int govern_if_managed(smki_ra *ra)
{
    govern_run g = {ra, 0, 0};
    GUARD(smki_store_read(ra->store, govern_read, &g));
    if (g.operators == 0 || g.governed) return 0;
    int rc = smki_store_write(ra->store, govern_write, &g);
    if (rc == SMKI_E_USAGE) { /* open read-only */
        smki_error_clear();
        return 0;
    }
    return rc;
}

static void ra_locks_destroy(smki_ra *ra)
{
    pthread_mutex_destroy(&ra->anchor_lock);
    pthread_mutex_destroy(&ra->group_lock);
    pthread_cond_destroy(&ra->group_done);
}

int smki_ra_open(smki_store *s, const smki_ra_policy *p, smki_ra **out)
{
    ENSURE(s && out, SMKI_E_INTERNAL, "smki_ra_open: no store");
    smki_ra *ra = calloc(1, sizeof *ra);
    ENSURE(ra, SMKI_E_NOMEM, "out of memory");
    ra->store = s;
    if (pthread_mutex_init(&ra->anchor_lock, NULL) != 0) {
        free(ra);
        return SMKI_FAIL(SMKI_E_INTERNAL, "a mutex could not be made");
    }
    if (pthread_mutex_init(&ra->group_lock, NULL) != 0 || pthread_cond_init(&ra->group_done, NULL) != 0) {
        pthread_mutex_destroy(&ra->anchor_lock);
        free(ra); /* a mutex that was made holds nothing to free on Linux */
        return SMKI_FAIL(SMKI_E_INTERNAL, "a mutex could not be made");
    }
    if (p) ra->pol = *p;
    else if (smki_ra_policy_load(NULL, &ra->pol) < 0) { /* the defaults: nothing to refuse */
        ra_locks_destroy(ra);
        free(ra);
        return smki_error_code();
    }
    static const char *const NAMES[] = {"ra_parties", "ra_users",    "ra_ranges", "ra_subscribers",
                                        "ra_operators", "ra_requests", "ra_csrs",   "ra_demand",
                                        "ra_meta",    "ra_audit",    "ra_checkpoints"};
    smki_db *dbs[] = {&ra->db.parties,   &ra->db.users, &ra->db.ranges, &ra->db.subscribers,
                      &ra->db.operators, &ra->db.requests, &ra->db.csrs, &ra->db.demand,
                      &ra->db.meta,      &ra->db.audit, &ra->db.checkpoints};
    int rc = smki_ca_db_open(s, &ra->ca);
    for (size_t i = 0; rc == 0 && i < sizeof dbs / sizeof dbs[0]; i++) rc = smki_store_db(s, NAMES[i], 0, dbs[i]);
    ra->ca_view = ra->ca;
    ra->ca.gate = smki_ca_gate_for_ra();
    if (rc == 0) rc = govern_if_managed(ra);
    if (rc == 0) rc = smki_ra_approvals_load(ra); /* fixed in the store: they override [ra] */
    if (rc < 0) {
        ra_locks_destroy(ra);
        free(ra);
        return rc;
    }
    *out = ra;
    return 0;
}

void smki_ra_close(smki_ra *ra)
{
    if (!ra) return;
    smki_key_free(ra->ckpt);
    ra_locks_destroy(ra);
    free(ra);
}

smki_ca_db *smki_ra_ca_db(smki_ra *ra)
{
    return &ra->ca_view;
}

const smki_ra_policy *smki_ra_get_policy(const smki_ra *ra)
{
    return &ra->pol;
}

void smki_ra_set_checkpoint_key(smki_ra *ra, smki_key *key)
{
    smki_key_free(ra->ckpt);
    ra->ckpt = key;
    ra->anchored = 0; /* another key: its own slots, not yet written by this handle */
}

void smki_ra_set_clock(smki_ra *ra, int64_t now)
{
    ra->fixed_now = now;
}

const smki_ra_dbs *smki_ra_databases(const smki_ra *ra)
{
    return &ra->db;
}

int64_t smki_ra_now(const smki_ra *ra)
{
    return ra->fixed_now ? ra->fixed_now : (int64_t)time(NULL);
}

/* ---- Records ------------------------------------------------------------------------------- */

/* Records are written by base's writer; a text field is a 16-bit length and its octets. */
void smki_ra_w_str(smki_writer_t *w, const char *s)
{
    size_t n = strlen(s);
    if (n > 0xFFFF) {
        smki_wr_invalid(w);
        return;
    }
    smki_wr_be16(w, (uint16_t)n);
    smki_wr_raw(w, s, n);
}

int smki_r_str(smki_cursor_t *c, char *out, size_t cap)
{
    uint16_t n;
    GUARD(smki_cur_u16be(c, &n));
    ENSURE(n < cap, SMKI_E_CORRUPT, "a text field of %u octets where at most %zu fit", n, cap - 1);
    GUARD(smki_cur_copy(c, out, n));
    out[n] = '\0';
    ENSURE(strlen(out) == n, SMKI_E_CORRUPT, "a text field holds a NUL");
    return 0;
}

int smki_ra_check_name(const char *what, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    ENSURE(n >= 1 && n < SMKI_RA_NAME_MAX, SMKI_E_USAGE, "%s must be 1 to %d characters, not '%.80s'", what,
           SMKI_RA_NAME_MAX - 1, s ? s : "");
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int okc = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                  ch == '_' || ch == '.';
        ENSURE(okc, SMKI_E_USAGE, "%s '%.64s' may hold only letters, digits, '-', '_' and '.'", what, s);
    }
    return 0;
}

int smki_ra_cert_push(smki_cert **items, size_t *n, size_t *cap, size_t first_cap, const smki_cert *c)
{
    if (*n == *cap) {
        size_t grown = *cap ? 2 * *cap : first_cap;
        smki_cert *p = realloc(*items, grown * sizeof *p);
        ENSURE(p, SMKI_E_NOMEM, "out of memory");
        *items = p;
        *cap = grown;
    }
    (*items)[(*n)++] = *c;
    return 0;
}

/* ---- User Roles --------------------------------------------------------------------------- */

static const char *const UROLES[] = {"EIS", "EES", "GIS", "ENO", "GNO", "OU"};

int smki_user_roles_parse(const char *text, unsigned *bits)
{
    ENSURE(text && *text, SMKI_E_USAGE, "no User Role given: EIS, EES, GIS, ENO, GNO or OU (comma-separated)");
    unsigned out = 0;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        int found = 0;
        for (size_t i = 0; i < 6; i++)
            if (n == strlen(UROLES[i]) && strncasecmp(p, UROLES[i], n) == 0) {
                out |= 1u << i;
                found = 1;
            }
        ENSURE(found, SMKI_E_USAGE, "'%.*s' is not a User Role: EIS, EES, GIS, ENO, GNO or OU", (int)(n > 16 ? 16 : n),
               p);
        p += n;
        if (*p == ',') p++;
    }
    *bits = out;
    return 0;
}

void smki_user_roles_format(unsigned bits, char *out, size_t cap)
{
    size_t n = 0;
    if (cap) out[0] = '\0';
    for (size_t i = 0; i < 6; i++)
        if (bits & (1u << i)) {
            int k = snprintf(out + n, cap - n, "%s%s", n ? "," : "", UROLES[i]);
            if (k < 0 || (size_t)k >= cap - n) return;
            n += (size_t)k;
        }
    if (!n && cap > 1) snprintf(out, cap, "-");
}

int smki_ra_role_allowed(unsigned user_roles, int is_dcc, int rp_role)
{
    if (rp_role == SMKI_ROLE_ROOT || rp_role == SMKI_ROLE_ISSUING_AUTHORITY || rp_role < 0) return 0;
    if (is_dcc) return 1;
    if (rp_role == SMKI_ROLE_XML_SIGN) return user_roles != 0;
    if (rp_role == SMKI_ROLE_SUPPLIER) return (user_roles & (SMKI_UROLE_EIS | SMKI_UROLE_EES | SMKI_UROLE_GIS)) != 0;
    if (rp_role == SMKI_ROLE_NETWORK_OPERATOR) return (user_roles & (SMKI_UROLE_ENO | SMKI_UROLE_GNO)) != 0;
    if (rp_role == SMKI_ROLE_OTHER || rp_role == SMKI_ROLE_LOAD_CONTROLLER) return (user_roles & SMKI_UROLE_OU) != 0;
    return 0; /* recovery, ACB, transitional CoS, WAN provider, DSP: the DCC's own */
}
