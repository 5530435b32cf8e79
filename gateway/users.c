/* The gateway's Users are the RA's (ra.h): the User ID, its Party, User Roles and
 * suspension come from the RA's registry at every check. What is kept here, per User
 * ID, is the credential the gateway verifies with: the DS certificate and the Remote
 * Party Role it is registered for, added by an operator as an audited RA action. */
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_private.h"

int smki_gw_ra_user_record(smki_ra *ra, const smki_eui64_t *id, smki_ra_user_id *u, char *roles, size_t roles_cap, int *suspended,
               char *why, size_t why_cap)
{
    ENSURE(ra, SMKI_E_USAGE, "the gateway's Users are the RA's: it needs the RA (smki_gateway_opts.ra)");
    int rc = smki_ra_id_get(ra, id, u);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        return SMKI_E_NOTFOUND;
    }
    GUARD(rc);
    smki_user_roles_format(u->roles, roles, roles_cap);
    if (u->is_dcc) {
        size_t n = strlen(roles);
        snprintf(roles + n, roles_cap - n, "%sDCC", n ? "," : "");
    }
    /* The ID's and its Party's suspension: the RA's own check (reference §7). */
    rc = smki_ra_check_sender(ra, id);
    *suspended = rc == SMKI_E_REFUSED;
    if (why_cap) why[0] = '\0';
    if (rc == SMKI_E_REFUSED) {
        snprintf(why, why_cap, "%s", smki_error_msg());
        smki_error_clear();
        return 0;
    }
    return rc;
}

int smki_gw_ra_user(smki_ra *ra, const smki_eui64_t *id, char *roles, size_t roles_cap, int *suspended, char *why,
                    size_t why_cap)
{
    smki_ra_user_id u;
    return smki_gw_ra_user_record(ra, id, &u, roles, roles_cap, suspended, why, why_cap);
}

/* The RA's word on u->id into u (ra_known 0 when it does not know the ID). */
static int fill_from_ra(smki_ra *ra, smki_gw_user *u)
{
    smki_ra_user_id r;
    int rc = smki_ra_id_get(ra, &u->id, &r);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        u->ra_known = 0;
        return 0;
    }
    GUARD(rc);
    u->ra_known = 1;
    snprintf(u->party, sizeof u->party, "%s", r.party);
    return smki_gw_ra_user(ra, &u->id, u->user_roles, sizeof u->user_roles, &u->suspended, u->suspend_reason,
                           sizeof u->suspend_reason);
}

typedef struct {
    gw_dbs d;
    smki_gw_user u;
} user_op;

static int user_get_txn(smki_txn *t, void *arg)
{
    user_op *op = arg;
    const void *v;
    size_t vl;
    int rc = smki_txn_get(t, op->d.users, op->u.id.b, 8, &v, &vl);
    if (rc == SMKI_E_NOTFOUND) {
        char e[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(&op->u.id, SMKI_EUI64_HYPHEN, e);
        return SMKI_FAIL(SMKI_E_NOTFOUND, "user %s has no DS certificate registered at the gateway", e);
    }
    GUARD(rc);
    smki_eui64_t id = op->u.id;
    return smki_gw_user_decode(id.b, v, vl, &op->u);
}

int smki_gw_user_get_stored(smki_store *s, const smki_eui64_t *id, smki_gw_user *out)
{
    user_op *op = calloc(1, sizeof *op);
    ENSURE(op, SMKI_E_NOMEM, "user record");
    op->u.id = *id;
    int rc = smki_gw_dbs_get(s, &op->d);
    if (rc == 0) rc = smki_store_read(s, user_get_txn, op);
    if (rc == 0) *out = op->u;
    free(op);
    return rc;
}

int smki_gw_user_get(smki_ra *ra, const smki_eui64_t *id, smki_gw_user *out)
{
    ENSURE(ra, SMKI_E_USAGE, "the gateway's Users are the RA's: smki_gw_user_get needs the RA");
    GUARD(smki_gw_user_get_stored(smki_ra_store(ra), id, out));
    return fill_from_ra(ra, out);
}

static int user_add_txn(smki_txn *t, void *arg)
{
    user_op *op = arg;
    int rc = smki_gw_user_put(t, op->d.users, &op->u, SMKI_PUT_NOOVERWRITE);
    if (rc == SMKI_E_EXISTS) {
        char e[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(&op->u.id, SMKI_EUI64_HYPHEN, e);
        smki_error_clear();
        return SMKI_FAIL(SMKI_E_EXISTS, "user %s is already registered (its DS certificate)", e);
    }
    return rc;
}

/* The RA knows id and its User Roles allow role (reference §4: a Supplier's ID holds
 * supplier certificates, a network operator's networkOperator ...). */
static int ra_allows(smki_ra *ra, const smki_eui64_t *id, uint8_t role, const char *e)
{
    smki_ra_user_id u;
    int rc = smki_ra_id_get(ra, id, &u);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        return SMKI_FAIL(SMKI_E_NOTFOUND,
                         "user %s is not a User ID of the RA's registry: allocate it first ('smki ra id allocate "
                         "--party P --roles R --eui %s')",
                         e, e);
    }
    GUARD(rc);
    char roles[40];
    smki_user_roles_format(u.roles, roles, sizeof roles);
    ENSURE(smki_ra_role_allowed(u.roles, u.is_dcc, role), SMKI_E_REFUSED,
           "user %s (User Roles %s%s in the RA's registry) may not hold a %s certificate", e, roles,
           u.is_dcc ? ", a DCC ID" : "", smki_role_name(role));
    return 0;
}

/* The certificate as DER into u, after checking its subject is id. */
static int take_cert(const uint8_t *cert, size_t cert_len, const char *e, smki_gw_user *u)
{
    X509 *x = NULL;
    GUARD(smki_cert_load(cert, cert_len, &x));
    smki_eui64_t subj;
    int rc = smki_gw_cert_subject_eui(x, &subj);
    char ce[SMKI_EUI64_TEXT_MAX];
    if (rc == 0) smki_eui64_format(&subj, SMKI_EUI64_HYPHEN, ce);
    if (rc == 0 && smki_eui64_cmp(&subj, &u->id) != 0)
        rc = SMKI_FAIL(SMKI_E_REFUSED, "user %s: the certificate is of %s, not of this User ID", e, ce);
    uint8_t *der = NULL;
    int dlen = rc == 0 ? i2d_X509(x, &der) : 0;
    X509_free(x);
    GUARD(rc);
    ENSURE_SSL(dlen > 0, SMKI_E_CRYPTO, "encoding the certificate of %s", e);
    if ((size_t)dlen > SMKI_GW_CERT_MAX) rc = SMKI_FAIL(SMKI_E_INPUT, "certificate of %s is %d octets, over %d", e, dlen, SMKI_GW_CERT_MAX);
    if (rc == 0) memcpy(u->cert, der, (size_t)dlen);
    u->cert_len = rc == 0 ? (size_t)dlen : 0;
    OPENSSL_free(der);
    return rc;
}

int smki_gw_user_add(const smki_gw_admin *a, const smki_eui64_t *id, uint8_t role, const uint8_t *cert, size_t cert_len)
{
    char e[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(id, SMKI_EUI64_HYPHEN, e);
    ENSURE(smki_role_by_code(role) != NULL, SMKI_E_USAGE, "role 0x%02x is not a Remote Party Role", role);
    smki_store *s = NULL;
    GUARD(smki_gw_admin_store(a, &s));
    user_op *op = calloc(1, sizeof *op);
    ENSURE(op, SMKI_E_NOMEM, "user record");
    op->u.id = *id;
    op->u.role = role;
    int rc = ra_allows(a->ra, id, role, e);
    if (rc == 0) rc = take_cert(cert, cert_len, e, &op->u);
    if (rc == 0) rc = smki_gw_dbs_get(s, &op->d);
    char obj[64], det[96];
    snprintf(obj, sizeof obj, "user %s", e);
    snprintf(det, sizeof det, "DS certificate for role %s, %zu octets", smki_role_name(role), op->u.cert_len);
    if (rc == 0) rc = smki_gw_admin_write(a, "user-add", obj, det, user_add_txn, op);
    free(op);
    return rc;
}

typedef struct {
    gw_dbs d;
    smki_gw_user *items;
    size_t n, cap;
} user_list_op;

static int user_scan(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    user_list_op *op = arg;
    ENSURE(klen == 8, SMKI_E_CORRUPT, "gateway user key of %zu octets", klen);
    if (op->n == op->cap) {
        size_t cap = op->cap ? op->cap * 2 : 16;
        smki_gw_user *more = realloc(op->items, cap * sizeof *more);
        ENSURE(more, SMKI_E_NOMEM, "user list of %zu", cap);
        op->items = more;
        op->cap = cap;
    }
    smki_gw_user *u = &op->items[op->n];
    memset(u, 0, sizeof *u);
    GUARD(smki_gw_user_decode(key, val, vlen, u));
    op->n++;
    return 0;
}

static int user_list_txn(smki_txn *t, void *arg)
{
    user_list_op *op = arg;
    op->n = 0;
    return smki_txn_scan(t, op->d.users, NULL, 0, user_scan, op);
}

/* The credentials are read first, then joined with the RA's registry outside that read
 * (the RA's reads are transactions of their own). */
int smki_gw_user_list(smki_ra *ra, smki_gw_user_fn fn, void *arg)
{
    ENSURE(ra, SMKI_E_USAGE, "the gateway's Users are the RA's: smki_gw_user_list needs the RA");
    user_list_op op;
    memset(&op, 0, sizeof op);
    int rc = smki_gw_dbs_get(smki_ra_store(ra), &op.d);
    if (rc == 0) rc = smki_store_read(smki_ra_store(ra), user_list_txn, &op);
    for (size_t i = 0; rc == 0 && i < op.n; i++) {
        rc = fill_from_ra(ra, &op.items[i]);
        if (rc == 0) rc = fn(&op.items[i], arg);
    }
    free(op.items);
    return rc;
}
