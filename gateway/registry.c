/* The gateway's small registry in the store: Users (User ID -> role, suspended, DS
 * certificate), message-code eligibility per role, the device inventory (status, KA key,
 * invocation counter), the last counter per originator and the users' thresholds. The RA
 * will own the Users later; the record layouts carry a version octet for that move. */
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_private.h"

#define REC_V1 1

int smki_gw_dbs_get(smki_store *s, gw_dbs *d)
{
    GUARD(smki_store_db(s, "gw.users", 0, &d->users));
    GUARD(smki_store_db(s, "gw.devices", 0, &d->devices));
    GUARD(smki_store_db(s, "gw.elig", 0, &d->elig));
    GUARD(smki_store_db(s, "gw.counters", 0, &d->counters));
    GUARD(smki_store_db(s, "gw.thresh", 0, &d->thresh));
    GUARD(smki_store_db(s, "gw.tring", 0, &d->tring));
    GUARD(smki_store_db(s, "gw.quar", 0, &d->quar));
    GUARD(smki_store_db(s, "gw.meta", 0, &d->meta));
    GUARD(smki_store_db(s, "gw.log", 0, &d->log));
    return 0;
}

int smki_gw_dbs(smki_store *s)
{
    gw_dbs d;
    return smki_gw_dbs_get(s, &d);
}

int smki_gw_admin_store(const smki_gw_admin *a, smki_store **s)
{
    ENSURE(a && a->ra, SMKI_E_USAGE, "a gateway administration action needs the RA (smki_gw_admin.ra)");
    *s = smki_ra_store(a->ra);
    ENSURE(*s, SMKI_E_INTERNAL, "the RA has no store");
    return 0;
}

int smki_gw_admin_write(const smki_gw_admin *a, const char *verb, const char *object, const char *detail,
                   smki_ra_service_fn fn, void *arg)
{
    char action[48];
    snprintf(action, sizeof action, "gateway.%s", verb);
    smki_ra_service_note note = {action, object, detail};
    return smki_ra_service_act(a->ra, a->by, &note, fn, arg);
}

/* ---- Users ------------------------------------------------------------------------------ */

int smki_gw_user_decode(const uint8_t *key, const void *val, size_t vlen, smki_gw_user *out)
{
    const uint8_t *v = val;
    ENSURE(vlen >= 5 && v[0] == REC_V1, SMKI_E_CORRUPT, "gateway user record: unknown version or short");
    size_t n = smki_get_be16(v + 3);
    ENSURE(vlen >= 5 + n && n <= SMKI_GW_CERT_MAX, SMKI_E_CORRUPT, "gateway user record: length %zu", vlen);
    memset(out, 0, sizeof *out);
    memcpy(out->id.b, key, 8);
    out->role = v[1];
    out->cert_len = n;
    memcpy(out->cert, v + 5, n);
    /* Records written before the RA owned the Users carry a suspended octet (v[2]) and,
     * after the certificate, roles_len(1) User Roles: both are the RA's word now, and are
     * read past, never believed. */
    if (vlen > 5 + n) {
        size_t m = v[5 + n];
        ENSURE(vlen == 6 + n + m && m < SMKI_GW_USER_ROLES_MAX, SMKI_E_CORRUPT, "gateway user record: User Roles");
    }
    return 0;
}

/* version, role, 0 (once: suspended), cert_len(2), cert, 0 (once: User Roles' length) */
int smki_gw_user_put(smki_txn *t, smki_db db, const smki_gw_user *u, unsigned flags)
{
    uint8_t rec[6 + SMKI_GW_CERT_MAX];
    ENSURE(u->cert_len <= SMKI_GW_CERT_MAX, SMKI_E_INTERNAL, "certificate of %zu octets", u->cert_len);
    rec[0] = REC_V1;
    rec[1] = u->role;
    rec[2] = 0;
    smki_put_be16(rec + 3, (uint16_t)u->cert_len);
    memcpy(rec + 5, u->cert, u->cert_len);
    rec[5 + u->cert_len] = 0;
    return smki_txn_put(t, db, u->id.b, 8, rec, 6 + u->cert_len, flags);
}

/* The first certificatePolicies OID of a certificate, as dotted text: its environment
 * (reference §4: one policy OID per environment). "" when it has none. */
int smki_gw_cert_policy(X509 *x, char *out, size_t cap)
{
    out[0] = '\0';
    int crit = 0;
    CERTIFICATEPOLICIES *cp = X509_get_ext_d2i(x, NID_certificate_policies, &crit, NULL);
    if (!cp) {
        ERR_clear_error();
        return 0;
    }
    int rc = 0;
    if (sk_POLICYINFO_num(cp) > 0) {
        const POLICYINFO *pi = sk_POLICYINFO_value(cp, 0);
        int n = OBJ_obj2txt(out, (int)cap, pi->policyid, 1);
        if (n <= 0 || (size_t)n >= cap) {
            out[0] = '\0';
            rc = SMKI_FAIL(SMKI_E_INPUT, "certificate policy OID does not fit %zu characters", cap);
        }
    }
    CERTIFICATEPOLICIES_free(cp);
    return rc;
}

/* The subject EUI-64 of an organisation certificate: x500UniqueIdentifier, BIT STRING
 * 03 09 00 <8> (reference §4). */
int smki_gw_cert_subject_eui(X509 *x, smki_eui64_t *out)
{
    X509_NAME *n = X509_get_subject_name(x);
    ASN1_OBJECT *uid = OBJ_txt2obj("2.5.4.45", 1);
    ENSURE_SSL(uid, SMKI_E_CRYPTO, "x500UniqueIdentifier OID");
    int i = X509_NAME_get_index_by_OBJ(n, uid, -1);
    ASN1_OBJECT_free(uid);
    ENSURE(i >= 0, SMKI_E_REFUSED, "certificate subject has no x500UniqueIdentifier (not an organisation certificate)");
    ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
    const uint8_t *d = ASN1_STRING_get0_data(s);
    int len = ASN1_STRING_length(s);
    /* OpenSSL keeps a BIT STRING's content octets here without the unused-bits octet for
     * a V_ASN1_BIT_STRING, and the whole value for anything it does not decode. */
    if (ASN1_STRING_type(s) == V_ASN1_BIT_STRING && len == 8) {
        memcpy(out->b, d, 8);
        return 0;
    }
    if (len == 9 && d[0] == 0) {
        memcpy(out->b, d + 1, 8);
        return 0;
    }
    if (len == 11 && d[0] == 0x03 && d[1] == 0x09 && d[2] == 0) {
        memcpy(out->b, d + 3, 8);
        return 0;
    }
    return SMKI_FAIL(SMKI_E_REFUSED, "certificate x500UniqueIdentifier is not an EUI-64 (type %d, %d octets)",
                     ASN1_STRING_type(s), len);
}

typedef struct {
    gw_dbs d;
    smki_gw_device_fn dfn;
    void *arg;
    smki_gw_device dev;
} list_op;

/* ---- Eligibility ---------------------------------------------------------------------------
 * The built-in default: the message codes the RTDS vectors show each role sending. The full
 * GBCS eligibility table (DUIS/GBCS Service Request matrix) is configuration: load it with
 * `smki gbcs gateway eligibility add`. */
static const smki_gw_elig DEFAULT_ELIG[] = {
    {SMKI_ROLE_SUPPLIER, 0x0007, "CS01a"},
    {SMKI_ROLE_SUPPLIER, 0x0008, "CS02a"},
    {SMKI_ROLE_SUPPLIER, 0x000A, "CS02c"},
    {SMKI_ROLE_SUPPLIER, 0x000D, "CS03A1"},
    {SMKI_ROLE_SUPPLIER, 0x0019, "ECS01a"},
    {SMKI_ROLE_SUPPLIER, 0x0021, "ECS10"},
    {SMKI_ROLE_SUPPLIER, 0x0034, "ECS21b"},
    {SMKI_ROLE_SUPPLIER, 0x0037, "ECS22b"},
    {SMKI_ROLE_SUPPLIER, 0x004F, "ECS42"},
    {SMKI_ROLE_SUPPLIER, 0x0062, "ECS70"},
    {SMKI_ROLE_SUPPLIER, 0x006B, "GCS01a"},
    {SMKI_ROLE_SUPPLIER, 0x0102, "CS02b supplierBySupplier"},
    {SMKI_ROLE_NETWORK_OPERATOR, 0x0008, "CS02a"},
    {SMKI_ROLE_NETWORK_OPERATOR, 0x0103, "CS02b networkOperatorByNetworkOperator"},
    {SMKI_ROLE_ACB, 0x0003, "CCS03"},
    {SMKI_ROLE_ACB, 0x0008, "CS02a"},
    {SMKI_ROLE_ACB, 0x0129, "CS08"},
    {SMKI_ROLE_TRANSITIONAL_COS, 0x0008, "CS02a"},
    {SMKI_ROLE_TRANSITIONAL_COS, 0x0106, "CS02b transitionalCoSByTransitionalCoS"},
    {SMKI_ROLE_TRANSITIONAL_COS, 0x0107, "CS02b supplierByTransitionalCoS"},
};
#define N_DEFAULT_ELIG (sizeof DEFAULT_ELIG / sizeof DEFAULT_ELIG[0])
static const char ELIG_CONFIGURED[] = "elig.configured";

static const char *default_elig_name(uint8_t role, uint16_t code)
{
    for (size_t i = 0; i < N_DEFAULT_ELIG; i++)
        if (DEFAULT_ELIG[i].role == role && DEFAULT_ELIG[i].code == code) return DEFAULT_ELIG[i].name;
    return NULL;
}

static int elig_configured(smki_txn *t, const gw_dbs *d, int *configured)
{
    const void *v;
    size_t vl;
    int rc = smki_txn_get(t, d->meta, ELIG_CONFIGURED, sizeof ELIG_CONFIGURED - 1, &v, &vl);
    if (rc == SMKI_E_NOTFOUND) {
        *configured = 0;
        return 0;
    }
    GUARD(rc);
    *configured = 1;
    return 0;
}

int smki_gw_elig_allows_txn(smki_txn *t, const gw_dbs *d, uint8_t role, uint16_t code, int *allowed)
{
    int configured;
    GUARD(elig_configured(t, d, &configured));
    if (!configured) {
        *allowed = default_elig_name(role, code) != NULL;
        return 0;
    }
    uint8_t k[3] = {role, (uint8_t)(code >> 8), (uint8_t)code};
    const void *v;
    size_t vl;
    int rc = smki_txn_get(t, d->elig, k, 3, &v, &vl);
    if (rc == SMKI_E_NOTFOUND) {
        *allowed = 0;
        return 0;
    }
    GUARD(rc);
    *allowed = 1;
    return 0;
}

typedef struct {
    gw_dbs d;
    uint8_t role;
    uint16_t code;
    int allow;
    smki_gw_elig *rows;
    size_t count, cap;
    int from_default;
} elig_op;

static int elig_set_txn(smki_txn *t, void *arg)
{
    elig_op *op = arg;
    int configured;
    GUARD(elig_configured(t, &op->d, &configured));
    if (!configured) {
        for (size_t i = 0; i < N_DEFAULT_ELIG; i++) {
            uint8_t k[3] = {DEFAULT_ELIG[i].role, (uint8_t)(DEFAULT_ELIG[i].code >> 8), (uint8_t)DEFAULT_ELIG[i].code};
            GUARD(smki_txn_put(t, op->d.elig, k, 3, "", 1, 0));
        }
        GUARD(smki_txn_put(t, op->d.meta, ELIG_CONFIGURED, sizeof ELIG_CONFIGURED - 1, "1", 1, 0));
    }
    uint8_t k[3] = {op->role, (uint8_t)(op->code >> 8), (uint8_t)op->code};
    if (op->allow) return smki_txn_put(t, op->d.elig, k, 3, "", 1, 0);
    int rc = smki_txn_del(t, op->d.elig, k, 3);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        return SMKI_FAIL(SMKI_E_NOTFOUND, "role %02X is not eligible for message code %04X: nothing to remove",
                         op->role, op->code);
    }
    return rc;
}

int smki_gw_elig_set(const smki_gw_admin *a, uint8_t role, uint16_t code, int allow)
{
    ENSURE(smki_role_by_code(role) != NULL, SMKI_E_USAGE, "role 0x%02x is not a Remote Party Role", role);
    elig_op op;
    memset(&op, 0, sizeof op);
    op.role = role;
    op.code = code;
    op.allow = allow;
    smki_store *s = NULL;
    GUARD(smki_gw_admin_store(a, &s));
    GUARD(smki_gw_dbs_get(s, &op.d));
    char obj[64];
    snprintf(obj, sizeof obj, "role %02X message code %04X", role, code);
    return smki_gw_admin_write(a, allow ? "eligibility-add" : "eligibility-remove", obj, "", elig_set_txn, &op);
}

static int elig_allows_rd(smki_txn *t, void *arg)
{
    elig_op *op = arg;
    return smki_gw_elig_allows_txn(t, &op->d, op->role, op->code, &op->allow);
}

int smki_gw_elig_allows(smki_store *s, uint8_t role, uint16_t code, int *allowed)
{
    elig_op op;
    memset(&op, 0, sizeof op);
    op.role = role;
    op.code = code;
    GUARD(smki_gw_dbs_get(s, &op.d));
    GUARD(smki_store_read(s, elig_allows_rd, &op));
    *allowed = op.allow;
    return 0;
}

static int elig_push(elig_op *op, uint8_t role, uint16_t code)
{
    if (op->count == op->cap) {
        size_t ncap = op->cap ? op->cap * 2 : 32;
        smki_gw_elig *n = realloc(op->rows, ncap * sizeof *n);
        ENSURE(n, SMKI_E_NOMEM, "eligibility rows");
        op->rows = n;
        op->cap = ncap;
    }
    const char *name = default_elig_name(role, code);
    op->rows[op->count++] = (smki_gw_elig){role, code, name ? name : ""};
    return 0;
}

static int elig_scan(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    (void)val, (void)vlen;
    const uint8_t *k = key;
    ENSURE(klen == 3, SMKI_E_CORRUPT, "eligibility key of %zu octets", klen);
    return elig_push(arg, k[0], smki_get_be16(k + 1));
}

static int elig_list_txn(smki_txn *t, void *arg)
{
    elig_op *op = arg;
    op->count = 0;
    int configured;
    GUARD(elig_configured(t, &op->d, &configured));
    op->from_default = !configured;
    if (!configured) {
        for (size_t i = 0; i < N_DEFAULT_ELIG; i++) GUARD(elig_push(op, DEFAULT_ELIG[i].role, DEFAULT_ELIG[i].code));
        return 0;
    }
    return smki_txn_scan(t, op->d.elig, NULL, 0, elig_scan, op);
}

int smki_gw_elig_list(smki_store *s, smki_gw_elig **rows, size_t *count, int *from_default)
{
    elig_op op;
    memset(&op, 0, sizeof op);
    int rc = smki_gw_dbs_get(s, &op.d);
    if (rc == 0) rc = smki_store_read(s, elig_list_txn, &op);
    if (rc < 0) {
        free(op.rows);
        return rc;
    }
    *rows = op.rows;
    *count = op.count;
    *from_default = op.from_default;
    return 0;
}

/* ---- Devices -------------------------------------------------------------------------------- */
static const char *const STATUS_NAMES[] = {NULL, "pending", "installed", "commissioned", "suspended",
                                           "decommissioned"};

const char *smki_dev_status_name(int status)
{
    return status >= SMKI_DEV_PENDING && status <= SMKI_DEV_DECOMMISSIONED ? STATUS_NAMES[status] : "unknown";
}

int smki_dev_status_parse(const char *text, int *status)
{
    for (int i = SMKI_DEV_PENDING; i <= SMKI_DEV_DECOMMISSIONED; i++)
        if (strcmp(text, STATUS_NAMES[i]) == 0) {
            *status = i;
            return 0;
        }
    return SMKI_FAIL(SMKI_E_USAGE,
                     "device status '%s' is not one of pending, installed, commissioned, suspended, decommissioned",
                     text);
}

/* Installed devices take commands (commissioning is one); commissioned devices take all. */
int smki_dev_status_allows_commands(int status)
{
    return status == SMKI_DEV_INSTALLED || status == SMKI_DEV_COMMISSIONED;
}

int smki_gw_device_decode(const uint8_t *key, const void *val, size_t vlen, smki_gw_device *out)
{
    const uint8_t *v = val;
    ENSURE(vlen >= 8 && v[0] == REC_V1, SMKI_E_CORRUPT, "gateway device record: unknown version or short");
    size_t n = smki_get_be16(v + 6);
    ENSURE(vlen >= 8 + n && n <= SMKI_GW_SPKI_MAX, SMKI_E_CORRUPT, "gateway device record: length %zu", vlen);
    memset(out, 0, sizeof *out);
    memcpy(out->id.b, key, 8);
    out->status = v[1];
    out->invocation = smki_get_be32(v + 2);
    out->ka_len = n;
    memcpy(out->ka_spki, v + 8, n);
    /* Records written since the environment check carry policy_len(1) policy; older ones
     * end with the key (environment unknown). */
    if (vlen > 8 + n) {
        size_t m = v[8 + n];
        ENSURE(vlen == 9 + n + m && m < sizeof out->policy, SMKI_E_CORRUPT, "gateway device record: policy length");
        memcpy(out->policy, v + 9 + n, m);
        out->policy[m] = '\0';
    }
    return 0;
}

static int device_put_flags(smki_txn *t, smki_db db, const smki_gw_device *d, unsigned flags)
{
    uint8_t rec[9 + SMKI_GW_SPKI_MAX + SMKI_OID_TEXT_MAX];
    size_t m = strlen(d->policy);
    ENSURE(m < SMKI_OID_TEXT_MAX, SMKI_E_INTERNAL, "device policy OID of %zu characters", m);
    rec[0] = REC_V1;
    rec[1] = (uint8_t)d->status;
    smki_put_be32(rec + 2, d->invocation);
    smki_put_be16(rec + 6, (uint16_t)d->ka_len);
    memcpy(rec + 8, d->ka_spki, d->ka_len);
    rec[8 + d->ka_len] = (uint8_t)m;
    memcpy(rec + 9 + d->ka_len, d->policy, m);
    return smki_txn_put(t, db, d->id.b, 8, rec, 9 + d->ka_len + m, flags);
}

int smki_gw_device_put(smki_txn *t, smki_db db, const smki_gw_device *d)
{
    return device_put_flags(t, db, d, 0);
}

typedef struct {
    gw_dbs d;
    smki_gw_device dev;
    int set_status;
} dev_op;

static int dev_add_txn(smki_txn *t, void *arg)
{
    dev_op *op = arg;
    int rc = device_put_flags(t, op->d.devices, &op->dev, SMKI_PUT_NOOVERWRITE);
    if (rc == SMKI_E_EXISTS) {
        char e[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(&op->dev.id, SMKI_EUI64_HYPHEN, e);
        smki_error_clear();
        return SMKI_FAIL(SMKI_E_EXISTS, "device %s is already in the inventory", e);
    }
    return rc;
}

int smki_gw_device_add(const smki_gw_admin *a, const smki_eui64_t *id, int status, const uint8_t *ka, size_t ka_len)
{
    ENSURE(status >= SMKI_DEV_PENDING && status <= SMKI_DEV_DECOMMISSIONED, SMKI_E_USAGE, "device status %d",
           status);
    dev_op op;
    memset(&op, 0, sizeof op);
    op.dev.id = *id;
    op.dev.status = status;
    if (ka) {
        X509 *cert = NULL;
        if (smki_cert_load(ka, ka_len, &cert) == 0) {
            int prc = smki_gw_cert_policy(cert, op.dev.policy, sizeof op.dev.policy);
            X509_free(cert);
            GUARD(prc);
        } else {
            smki_error_clear(); /* a bare public key: environment unknown */
        }
        EVP_PKEY *pub = NULL;
        GUARD(smki_pub_load(ka, ka_len, &pub));
        uint8_t *der = NULL;
        int n = i2d_PUBKEY(pub, &der);
        EVP_PKEY_free(pub);
        ENSURE_SSL(n > 0 && n <= SMKI_GW_SPKI_MAX, SMKI_E_CRYPTO, "encoding the device's KA public key");
        memcpy(op.dev.ka_spki, der, (size_t)n);
        op.dev.ka_len = (size_t)n;
        OPENSSL_free(der);
    }
    smki_store *s = NULL;
    GUARD(smki_gw_admin_store(a, &s));
    GUARD(smki_gw_dbs_get(s, &op.d));
    char obj[64], det[160], e[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(id, SMKI_EUI64_HYPHEN, e);
    snprintf(obj, sizeof obj, "device %s", e);
    snprintf(det, sizeof det, "status %s; KA key %s%s%s", smki_dev_status_name(status), op.dev.ka_len ? "given" : "none",
             op.dev.policy[0] ? ", policy " : "", op.dev.policy);
    return smki_gw_admin_write(a, "device-add", obj, det, dev_add_txn, &op);
}

static int dev_get_txn(smki_txn *t, void *arg)
{
    dev_op *op = arg;
    const void *v;
    size_t vl;
    int rc = smki_txn_get(t, op->d.devices, op->dev.id.b, 8, &v, &vl);
    if (rc == SMKI_E_NOTFOUND) {
        char e[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(&op->dev.id, SMKI_EUI64_HYPHEN, e);
        return SMKI_FAIL(SMKI_E_NOTFOUND, "device %s is not in the inventory", e);
    }
    GUARD(rc);
    smki_eui64_t id = op->dev.id;
    GUARD(smki_gw_device_decode(id.b, v, vl, &op->dev));
    if (op->set_status > 0) {
        op->dev.status = op->set_status;
        GUARD(smki_gw_device_put(t, op->d.devices, &op->dev));
    }
    return 0;
}

int smki_gw_device_get(smki_store *s, const smki_eui64_t *id, smki_gw_device *out)
{
    dev_op op;
    memset(&op, 0, sizeof op);
    op.dev.id = *id;
    GUARD(smki_gw_dbs_get(s, &op.d));
    GUARD(smki_store_read(s, dev_get_txn, &op));
    *out = op.dev;
    return 0;
}

int smki_gw_device_set_status(const smki_gw_admin *a, const smki_eui64_t *id, int status)
{
    ENSURE(status >= SMKI_DEV_PENDING && status <= SMKI_DEV_DECOMMISSIONED, SMKI_E_USAGE, "device status %d",
           status);
    dev_op op;
    memset(&op, 0, sizeof op);
    op.dev.id = *id;
    op.set_status = status;
    smki_store *s = NULL;
    GUARD(smki_gw_admin_store(a, &s));
    GUARD(smki_gw_dbs_get(s, &op.d));
    char obj[64], det[64], e[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(id, SMKI_EUI64_HYPHEN, e);
    snprintf(obj, sizeof obj, "device %s", e);
    snprintf(det, sizeof det, "status %s", smki_dev_status_name(status));
    return smki_gw_admin_write(a, "device-set-status", obj, det, dev_get_txn, &op);
}

static int dev_scan(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    list_op *op = arg;
    ENSURE(klen == 8, SMKI_E_CORRUPT, "gateway device key of %zu octets", klen);
    GUARD(smki_gw_device_decode(key, val, vlen, &op->dev));
    return op->dfn(&op->dev, op->arg);
}

static int dev_list_txn(smki_txn *t, void *arg)
{
    list_op *op = arg;
    return smki_txn_scan(t, op->d.devices, NULL, 0, dev_scan, op);
}

int smki_gw_device_list(smki_store *s, smki_gw_device_fn fn, void *arg)
{
    list_op *op = calloc(1, sizeof *op);
    ENSURE(op, SMKI_E_NOMEM, "device list");
    op->dfn = fn;
    op->arg = arg;
    int rc = smki_gw_dbs_get(s, &op->d);
    if (rc == 0) rc = smki_store_read(s, dev_list_txn, op);
    free(op);
    return rc;
}

int smki_gw_next_invocation_txn(smki_txn *t, const gw_dbs *d, const smki_eui64_t *device, uint32_t *ic)
{
    dev_op op;
    memset(&op, 0, sizeof op);
    op.d = *d;
    op.dev.id = *device;
    GUARD(dev_get_txn(t, &op));
    ENSURE(op.dev.invocation != UINT32_MAX, SMKI_E_REFUSED, "device invocation counter exhausted");
    *ic = op.dev.invocation;
    op.dev.invocation++;
    return smki_gw_device_put(t, d->devices, &op.dev);
}

/* ---- Counters --------------------------------------------------------------------------------- */
int smki_gw_counter_get_txn(smki_txn *t, const gw_dbs *d, const smki_eui64_t *id, uint64_t *counter, int *seen)
{
    const void *v;
    size_t vl;
    int rc = smki_txn_get(t, d->counters, id->b, 8, &v, &vl);
    if (rc == SMKI_E_NOTFOUND) {
        *counter = 0;
        *seen = 0;
        return 0;
    }
    GUARD(rc);
    ENSURE(vl == 8, SMKI_E_CORRUPT, "counter record of %zu octets", vl);
    *counter = smki_get_be64(v);
    *seen = 1;
    return 0;
}

int smki_gw_counter_put_txn(smki_txn *t, const gw_dbs *d, const smki_eui64_t *id, uint64_t counter)
{
    uint8_t v[8];
    smki_put_be64(v, counter);
    return smki_txn_put(t, d->counters, id->b, 8, v, 8, 0);
}

typedef struct {
    gw_dbs d;
    smki_eui64_t id;
    uint64_t counter;
    int seen;
} ctr_op;

static int ctr_get_txn(smki_txn *t, void *arg)
{
    ctr_op *op = arg;
    return smki_gw_counter_get_txn(t, &op->d, &op->id, &op->counter, &op->seen);
}

int smki_gw_counter_get(smki_store *s, const smki_eui64_t *originator, uint64_t *counter, int *seen)
{
    ctr_op op;
    memset(&op, 0, sizeof op);
    op.id = *originator;
    GUARD(smki_gw_dbs_get(s, &op.d));
    GUARD(smki_store_read(s, ctr_get_txn, &op));
    *counter = op.counter;
    *seen = op.seen;
    return 0;
}

/* ---- Thresholds ----------------------------------------------------------------------------------
 * gw.thresh: user(8) -> FFFFFFFF || n(4) || n * (code(4) window(4) max(4) kind(1)).
 * Records of the first format, n(4) || n * (code window max), hold command rules only;
 * their n is at most 4096, so the FFFFFFFF marker tells the two apart. */
#define TH_V2_MARK 0xFFFFFFFFu
#define TH_RULE_V1 12u
#define TH_RULE_V2 13u
typedef struct {
    gw_dbs d;
    const smki_thresholds *th;
    smki_eui64_t user;
    smki_thresholds out;
} th_op;

static int th_put_user(smki_txn *t, th_op *op, const smki_eui64_t *user)
{
    size_t n = 0;
    for (size_t i = 0; i < op->th->count; i++) n += smki_eui64_cmp(&op->th->rules[i].user, user) == 0;
    uint8_t *rec = malloc(8 + TH_RULE_V2 * n);
    ENSURE(rec, SMKI_E_NOMEM, "threshold record");
    smki_put_be32(rec, TH_V2_MARK);
    smki_put_be32(rec + 4, (uint32_t)n);
    size_t o = 8;
    for (size_t i = 0; i < op->th->count; i++) {
        const smki_threshold *r = &op->th->rules[i];
        if (smki_eui64_cmp(&r->user, user) != 0) continue;
        smki_put_be32(rec + o, r->code);
        smki_put_be32(rec + o + 4, r->window);
        smki_put_be32(rec + o + 8, r->max_count);
        rec[o + 12] = r->kind;
        o += TH_RULE_V2;
    }
    int rc = smki_txn_put(t, op->d.thresh, user->b, 8, rec, o, 0);
    free(rec);
    return rc;
}

static int th_load_txn(smki_txn *t, void *arg)
{
    th_op *op = arg;
    GUARD(th_put_user(t, op, &op->user));
    for (size_t i = 0; i < op->th->count; i++) {
        const smki_eui64_t *u = &op->th->rules[i].user;
        int first = 1;
        for (size_t j = 0; j < i; j++) first &= smki_eui64_cmp(&op->th->rules[j].user, u) != 0;
        if (first && smki_eui64_cmp(u, &op->user) != 0) GUARD(th_put_user(t, op, u));
    }
    return 0;
}

int smki_gw_thresholds_load(const smki_gw_admin *a, const smki_eui64_t *user, const uint8_t *csv, size_t csv_len,
                            const uint8_t *sig, size_t sig_len, EVP_PKEY *signer, size_t *loaded)
{
    char e[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(user, SMKI_EUI64_HYPHEN, e);
    EVP_PKEY *pub = NULL;
    int rc = 0;
    smki_thresholds th = {0, NULL};
    smki_store *s = NULL;
    GUARD(smki_gw_admin_store(a, &s));
    if (!signer) {
        smki_gw_user *u = malloc(sizeof *u);
        ENSURE(u, SMKI_E_NOMEM, "user record");
        rc = smki_gw_user_get_stored(s, user, u);
        if (rc == 0) rc = smki_pub_load(u->cert, u->cert_len, &pub);
        free(u);
        GUARD_GOTO(rc, out);
    }
    rc = smki_signed_file_verify(signer ? signer : pub, csv, csv_len, sig, sig_len);
    if (rc == SMKI_E_VERIFY) {
        smki_error_clear();
        rc = SMKI_FAIL(SMKI_E_VERIFY, "thresholds of %s: the signature does not verify against %s: not loaded", e,
                       signer ? "the configured signer" : "the user's DS certificate");
        goto out;
    }
    GUARD_GOTO(rc, out);
    GUARD_GOTO(smki_thresholds_parse(csv, csv_len, "thresholds", &th), out);
    if (!signer)
        for (size_t i = 0; i < th.count; i++) {
            char o[SMKI_EUI64_TEXT_MAX];
            smki_eui64_format(&th.rules[i].user, SMKI_EUI64_HYPHEN, o);
            ENSURE_GOTO(smki_eui64_cmp(&th.rules[i].user, user) == 0, SMKI_E_REFUSED, out,
                        "thresholds of %s: rule %zu names another user (%s): a user sets only its own", e, i + 1, o);
        }
    th_op op;
    memset(&op, 0, sizeof op);
    op.th = &th;
    op.user = *user;
    GUARD_GOTO(smki_gw_dbs_get(s, &op.d), out);
    char obj[64], det[160], hex[65];
    uint8_t md[32];
    SHA256(csv, csv_len, md);
    smki_hex_encode(md, 32, hex, 0);
    snprintf(obj, sizeof obj, "thresholds of %s", e);
    snprintf(det, sizeof det, "%zu rule(s), signed by %s; file SHA-256 %s", th.count,
             signer ? "the configured signer" : "the user", hex);
    GUARD_GOTO(smki_gw_admin_write(a, "thresholds-load", obj, det, th_load_txn, &op), out);
    if (loaded) *loaded = th.count;
out:
    smki_thresholds_free(&th);
    EVP_PKEY_free(pub);
    return rc;
}

int smki_gw_thresholds_get_txn(smki_txn *t, const gw_dbs *d, const smki_eui64_t *user, smki_thresholds *out)
{
    out->count = 0;
    out->rules = NULL;
    const void *v;
    size_t vl;
    int rc = smki_txn_get(t, d->thresh, user->b, 8, &v, &vl);
    if (rc == SMKI_E_NOTFOUND) return 0;
    GUARD(rc);
    const uint8_t *p = v;
    ENSURE(vl >= 4, SMKI_E_CORRUPT, "threshold record short");
    int v2 = smki_get_be32(p) == TH_V2_MARK;
    size_t head = v2 ? 8 : 4, each = v2 ? TH_RULE_V2 : TH_RULE_V1;
    ENSURE(vl >= head, SMKI_E_CORRUPT, "threshold record short");
    size_t n = smki_get_be32(p + head - 4);
    ENSURE(n <= SMKI_THRESHOLD_MAX_RULES && vl == head + each * n, SMKI_E_CORRUPT,
           "threshold record of %zu octets for %zu rules", vl, n);
    if (n == 0) return 0;
    out->rules = calloc(n, sizeof *out->rules);
    ENSURE(out->rules, SMKI_E_NOMEM, "threshold rules");
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = p + head + each * i;
        out->rules[i].user = *user;
        out->rules[i].code = smki_get_be32(r);
        out->rules[i].window = smki_get_be32(r + 4);
        out->rules[i].max_count = smki_get_be32(r + 8);
        out->rules[i].kind = v2 ? r[12] : SMKI_GBCS_CRA_COMMAND;
        if (out->rules[i].kind < SMKI_GBCS_CRA_COMMAND || out->rules[i].kind > SMKI_GBCS_CRA_ALERT) {
            smki_thresholds_free(out);
            return SMKI_FAIL(SMKI_E_CORRUPT, "threshold record: rule %zu of kind %u", i + 1, r[12]);
        }
    }
    out->count = n;
    return 0;
}

static int th_get_txn(smki_txn *t, void *arg)
{
    th_op *op = arg;
    return smki_gw_thresholds_get_txn(t, &op->d, &op->user, &op->out);
}

int smki_gw_thresholds_get(smki_store *s, const smki_eui64_t *user, smki_thresholds *out)
{
    th_op op;
    memset(&op, 0, sizeof op);
    op.user = *user;
    GUARD(smki_gw_dbs_get(s, &op.d));
    int rc = smki_store_read(s, th_get_txn, &op);
    if (rc < 0) {
        smki_thresholds_free(&op.out);
        return rc;
    }
    *out = op.out;
    return 0;
}
