/* The device model's state: its record, trust anchor cells and floors in the store
 * (database "gbcs_device"), loaded into one handle with the public keys of its cells
 * and the ECDH secrets it shares with its peers cached (wiped on free). */
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "state.h"

static const char DB_NAME[] = "gbcs_device";

/* ---- Cells ------------------------------------------------------------------------------- */

static const char *usage_word(uint8_t ku)
{
    return ku == SMKI_KU_DIGITAL_SIGNATURE ? "DS" : ku == SMKI_KU_KEY_AGREEMENT ? "KA"
                                                  : ku == SMKI_KU_KEY_CERT_SIGN ? "CA" : "?";
}

void smki_cell_id_format(const smki_ta_cell_id *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/%s", smki_role_name(id->role), usage_word(id->key_usage),
             id->cell_usage == SMKI_CELL_PREPAYMENT ? "prepayment" : "management");
}

int smki_cell_id_parse(const char *text, smki_ta_cell_id *out)
{
    memset(out, 0, sizeof *out);
    char buf[64], *save = NULL, *tok;
    ENSURE(text && strlen(text) < sizeof buf, SMKI_E_USAGE, "cell: '%s' is not ROLE[:ds|ka|cert[:management|prepayment]]",
           text ? text : "");
    snprintf(buf, sizeof buf, "%s", text);
    tok = strtok_r(buf, ":/", &save);
    ENSURE(tok != NULL, SMKI_E_USAGE, "cell: empty");
    GUARD(smki_role_parse(tok, &out->role));
    out->key_usage = out->role == SMKI_ROLE_ROOT ? SMKI_KU_KEY_CERT_SIGN : SMKI_KU_DIGITAL_SIGNATURE;
    out->cell_usage = SMKI_CELL_MANAGEMENT;
    if ((tok = strtok_r(NULL, ":/", &save)) != NULL) {
        if (strcasecmp(tok, "ds") == 0)
            out->key_usage = SMKI_KU_DIGITAL_SIGNATURE;
        else if (strcasecmp(tok, "ka") == 0)
            out->key_usage = SMKI_KU_KEY_AGREEMENT;
        else if (strcasecmp(tok, "cert") == 0 || strcasecmp(tok, "ca") == 0)
            out->key_usage = SMKI_KU_KEY_CERT_SIGN;
        else
            return SMKI_FAIL(SMKI_E_USAGE, "cell '%s': usage '%s' is not ds, ka or cert", text, tok);
    }
    if ((tok = strtok_r(NULL, ":/", &save)) != NULL) {
        if (strcasecmp(tok, "management") == 0)
            out->cell_usage = SMKI_CELL_MANAGEMENT;
        else if (strcasecmp(tok, "prepayment") == 0 || strcasecmp(tok, "prePaymentTopUp") == 0)
            out->cell_usage = SMKI_CELL_PREPAYMENT;
        else
            return SMKI_FAIL(SMKI_E_USAGE, "cell '%s': cell usage '%s' is not management or prepayment", text, tok);
    }
    ENSURE(strtok_r(NULL, ":/", &save) == NULL, SMKI_E_USAGE, "cell '%s': too many parts", text);
    return 0;
}

int smki_dev_cert_facts(X509 *x, const uint8_t *der, size_t len, dev_cert_facts_t *f)
{
    smki_lint_report *rep = calloc(1, sizeof *rep);
    int rc = 0;
    memset(f, 0, sizeof *f);
    ENSURE(rep != NULL, SMKI_E_NOMEM, "lint report");
    GUARD_GOTO(smki_lint_der(der, len, NULL, rep), out);
    f->role = rep->role;
    f->key_usage = rep->key_usage;
    f->has_id = rep->has_id;
    if (rep->has_id) memcpy(f->id, rep->id.b, 8);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
    ENSURE_GOTO(ski && ASN1_STRING_length(ski) == 8, SMKI_E_INPUT, out,
                "certificate: subjectKeyIdentifier missing or not 8 octets (GBCS 12, RFC 5280 4.2.1.2 method 2)");
    memcpy(f->ski, ASN1_STRING_get0_data(ski), 8);
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
    if (aki && ASN1_STRING_length(aki) == 8) {
        f->has_aki = 1;
        memcpy(f->aki, ASN1_STRING_get0_data(aki), 8);
    }
    EVP_PKEY *pub = X509_get0_pubkey(x);
    ENSURE_GOTO(pub != NULL, SMKI_E_INPUT, out, "certificate: public key does not decode");
    GUARD_GOTO(smki_pub_check_p256(pub, "certificate key"), out);
    GUARD_GOTO(smki_pub_point(pub, f->point), out);
out:
    free(rep);
    return rc;
}

int smki_cell_from_cert(const uint8_t *data, size_t len, uint8_t cell_usage, smki_ta_cell *out)
{
    X509 *x = NULL;
    uint8_t *der = NULL;
    int rc = 0, dlen;
    dev_cert_facts_t f;
    memset(out, 0, sizeof *out);
    GUARD(smki_cert_load(data, len, &x));
    dlen = i2d_X509(x, &der);
    ENSURE_SSL_GOTO(dlen > 0, SMKI_E_CRYPTO, out, "certificate: cannot re-encode");
    ENSURE_GOTO((size_t)dlen <= SMKI_CELL_CERT_MAX, SMKI_E_INPUT, out, "certificate of %d octets: a cell holds %d",
                dlen, SMKI_CELL_CERT_MAX);
    GUARD_GOTO(smki_dev_cert_facts(x, der, (size_t)dlen, &f), out);
    /* The linter reports a role for organisation certificates; a self-signed CA with
     * keyCertSign is a root (OU=00). */
    if (f.role < 0 && X509_check_ca(x) >= 1 && X509_check_issued(x, x) == X509_V_OK &&
        (f.key_usage & SMKI_KU_KEY_CERT_SIGN))
        f.role = SMKI_ROLE_ROOT;
    ENSURE_GOTO(f.role >= 0, SMKI_E_INPUT, out, "certificate: no Remote Party Role in its subject OU");
    out->id.role = (uint8_t)f.role;
    out->id.cell_usage = cell_usage;
    if (f.role == SMKI_ROLE_ROOT) {
        ENSURE_GOTO(f.key_usage & SMKI_KU_KEY_CERT_SIGN, SMKI_E_INPUT, out, "root certificate without keyCertSign");
        out->id.key_usage = SMKI_KU_KEY_CERT_SIGN;
    } else if (f.key_usage == SMKI_KU_DIGITAL_SIGNATURE || f.key_usage == SMKI_KU_KEY_AGREEMENT) {
        out->id.key_usage = (uint8_t)f.key_usage;
    } else {
        rc = SMKI_FAIL(SMKI_E_INPUT, "certificate keyUsage 0x%04x: a cell takes exactly DS or KA", f.key_usage);
        goto out;
    }
    ENSURE_GOTO(cell_usage == SMKI_CELL_MANAGEMENT || out->id.key_usage == SMKI_KU_KEY_AGREEMENT, SMKI_E_INPUT, out,
                "a prepayment top-up cell holds a KA certificate");
    if (f.has_id) memcpy(out->subject_id, f.id, 8);
    memcpy(out->ski, f.ski, 8);
    memcpy(out->point, f.point, SMKI_POINT_LEN);
    out->has_key = 1;
    memcpy(out->cert, der, (size_t)dlen);
    out->cert_len = (size_t)dlen;
out:
    OPENSSL_free(der);
    X509_free(x);
    return rc;
}

/* ---- Store records ----------------------------------------------------------------------- */

static void key_of(uint8_t kind, const smki_eui64_t *eui, const uint8_t *rest, size_t n, uint8_t out[12], size_t *len)
{
    out[0] = kind;
    memcpy(out + 1, eui->b, 8);
    if (n) memcpy(out + 9, rest, n);
    *len = 9 + n;
}

static int device_db(smki_store *s, smki_db *out)
{
    *out = 0;
    return smki_store_db(s, DB_NAME, 0, out);
}

int smki_device_dbs(smki_store *s)
{
    smki_db db;
    return device_db(s, &db);
}

/* Device record: version 1, flags u32, alert counter u64, then four length-prefixed
 * (u16) fields: DS key ref, KA key ref, token label, pending CS02c key ref. */
static int encode_record(const dev_record *r, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = 0;
    const char *f[4] = {r->ds_ref, r->ka_ref, r->token, r->pending_ref};
    ENSURE(cap >= 13, SMKI_E_INTERNAL, "record buffer");
    out[n++] = 1;
    smki_put_be32(out + n, (uint32_t)r->flags);
    smki_put_be64(out + n + 4, (uint64_t)r->alert_counter);
    n += 12;
    for (int i = 0; i < 4; i++) {
        size_t l = strlen(f[i]);
        ENSURE(n + 2 + l <= cap, SMKI_E_INTERNAL, "record buffer");
        smki_put_be16(out + n, (uint16_t)l);
        n += 2;
        memcpy(out + n, f[i], l);
        n += l;
    }
    *len = n;
    return 0;
}

static int decode_record(const uint8_t *p, size_t len, dev_record *r)
{
    smki_cursor_t c = smki_cursor(p, len);
    uint8_t v;
    uint32_t flags;
    char *f[4] = {r->ds_ref, r->ka_ref, r->token, r->pending_ref};
    size_t caps[4] = {sizeof r->ds_ref, sizeof r->ka_ref, sizeof r->token, sizeof r->pending_ref};
    memset(r, 0, sizeof *r);
    if (smki_cur_u8(&c, &v) < 0 || v != 1) return SMKI_FAIL(SMKI_E_CORRUPT, "device record: unknown version");
    if (smki_cur_u32be(&c, &flags) < 0 || smki_cur_u64be(&c, &r->alert_counter) < 0)
        return SMKI_FAIL(SMKI_E_CORRUPT, "device record: truncated");
    r->flags = flags;
    for (int i = 0; i < 4; i++) {
        uint16_t l;
        if (smki_cur_u16be(&c, &l) < 0 || l >= caps[i] || smki_cur_copy(&c, f[i], l) < 0)
            return SMKI_FAIL(SMKI_E_CORRUPT, "device record: field %d damaged", i);
        f[i][l] = 0;
    }
    return 0;
}

/* Cell record: version 1, has_key, subject(8), ski(8), point(65), cert_len u16, cert. */
#define CELL_REC_HDR (1 + 1 + 8 + 8 + SMKI_POINT_LEN + 2)
static void encode_cell(const smki_ta_cell *c, uint8_t *out, size_t *len)
{
    size_t n = 0;
    out[n++] = 1;
    out[n++] = (uint8_t)c->has_key;
    memcpy(out + n, c->subject_id, 8), n += 8;
    memcpy(out + n, c->ski, 8), n += 8;
    memcpy(out + n, c->point, SMKI_POINT_LEN), n += SMKI_POINT_LEN;
    smki_put_be16(out + n, (uint16_t)c->cert_len);
    n += 2;
    memcpy(out + n, c->cert, c->cert_len), n += c->cert_len;
    *len = n;
}

static int decode_cell(const uint8_t *k, size_t klen, const uint8_t *p, size_t len, smki_ta_cell *c)
{
    smki_cursor_t cur = smki_cursor(p, len);
    uint8_t v, hk;
    uint16_t cl;
    memset(c, 0, sizeof *c);
    if (klen != 12) return SMKI_FAIL(SMKI_E_CORRUPT, "cell key of %zu octets", klen);
    c->id.role = k[9];
    c->id.key_usage = k[10];
    c->id.cell_usage = k[11];
    if (smki_cur_u8(&cur, &v) < 0 || v != 1 || smki_cur_u8(&cur, &hk) < 0 || smki_cur_copy(&cur, c->subject_id, 8) < 0 ||
        smki_cur_copy(&cur, c->ski, 8) < 0 || smki_cur_copy(&cur, c->point, SMKI_POINT_LEN) < 0 ||
        smki_cur_u16be(&cur, &cl) < 0 || cl > SMKI_CELL_CERT_MAX || smki_cur_copy(&cur, c->cert, cl) < 0)
        return SMKI_FAIL(SMKI_E_CORRUPT, "cell record damaged");
    c->has_key = hk;
    c->cert_len = cl;
    return 0;
}

typedef struct {
    smki_eui64_t eui;
    const dev_record *rec;
    size_t ncells;
    const smki_ta_cell *cells;
    size_t nfloors;
    const uint8_t *floor_roles;
    const uint64_t *floor_vals;
    int exclusive;
} write_job;

static int put_cell(smki_txn *t, smki_db db, const smki_eui64_t *eui, const smki_ta_cell *c)
{
    uint8_t k[12], *v = malloc(CELL_REC_HDR + SMKI_CELL_CERT_MAX);
    size_t kl, vl;
    uint8_t rest[3] = {c->id.role, c->id.key_usage, c->id.cell_usage};
    ENSURE(v != NULL, SMKI_E_NOMEM, "cell record");
    key_of('C', eui, rest, 3, k, &kl);
    encode_cell(c, v, &vl);
    int rc = smki_txn_put(t, db, k, kl, v, vl, 0);
    free(v);
    return rc;
}

static int put_floor(smki_txn *t, smki_db db, const smki_eui64_t *eui, uint8_t role, uint64_t f)
{
    uint8_t k[12], v[8];
    size_t kl;
    key_of('F', eui, &role, 1, k, &kl);
    smki_put_be64(v, f);
    return smki_txn_put(t, db, k, kl, v, 8, 0);
}

static int write_fn(smki_txn *t, void *arg)
{
    write_job *j = arg;
    smki_db db = 0;
    int rc = 0;
    (void)rc;
    /* The handle was opened before the transaction (smki_device_dbs). */
    db = j->rec ? j->rec->db : 0;
    if (j->rec) {
        uint8_t k[12], v[4 * SMKI_KEY_URI_MAX + 64];
        size_t kl = 0, vl = 0;
        key_of('D', &j->eui, NULL, 0, k, &kl);
        GUARD(encode_record(j->rec, v, sizeof v, &vl));
        GUARD(smki_txn_put(t, db, k, kl, v, vl, j->exclusive ? SMKI_PUT_NOOVERWRITE : 0));
    }
    for (size_t i = 0; i < j->ncells; i++) GUARD(put_cell(t, db, &j->eui, &j->cells[i]));
    for (size_t i = 0; i < j->nfloors; i++) GUARD(put_floor(t, db, &j->eui, j->floor_roles[i], j->floor_vals[i]));
    return 0;
}

typedef struct {
    smki_eui64_t eui;
    dev_record rec;
    int found;
    smki_device *d;
} read_job;

static int scan_cell(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    smki_device *d = arg;
    ENSURE(d->ncells < SMKI_DEVICE_MAX_CELLS, SMKI_E_CORRUPT, "device holds more than %d cells", SMKI_DEVICE_MAX_CELLS);
    GUARD(decode_cell(k, kl, v, vl, &d->cells[d->ncells]));
    d->ncells++;
    return 0;
}

static int scan_floor(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    smki_device *d = arg;
    const uint8_t *kk = k, *vv = v;
    ENSURE(kl == 10 && vl == 8, SMKI_E_CORRUPT, "floor record damaged");
    d->floors[kk[9]] = smki_get_be64(vv);
    d->has_floor[kk[9]] = 1;
    return 0;
}

static int read_fn(smki_txn *t, void *arg)
{
    read_job *j = arg;
    smki_db db = j->rec.db;
    uint8_t k[12];
    size_t kl;
    const void *v;
    size_t vl;
    key_of('D', &j->eui, NULL, 0, k, &kl);
    int rc = smki_txn_get(t, db, k, kl, &v, &vl);
    if (rc == SMKI_E_NOTFOUND) {
        j->found = 0;
        return 0;
    }
    GUARD(rc);
    smki_db keep = db;
    GUARD(decode_record(v, vl, &j->rec));
    j->rec.db = keep;
    j->found = 1;
    if (!j->d) return 0;
    j->d->ncells = 0;
    memset(j->d->has_floor, 0, sizeof j->d->has_floor);
    memset(j->d->floors, 0, sizeof j->d->floors);
    key_of('C', &j->eui, NULL, 0, k, &kl);
    GUARD(smki_txn_scan(t, db, k, kl, scan_cell, j->d));
    key_of('F', &j->eui, NULL, 0, k, &kl);
    GUARD(smki_txn_scan(t, db, k, kl, scan_floor, j->d));
    return 0;
}

static int dev_reload(smki_store *s, smki_device *d);

int smki_dev_store_commit(smki_store *s, smki_device *d, const smki_ta_cell *cells, size_t ncells, const uint8_t *roles,
                     const uint64_t *floors, size_t nfloors, uint64_t alert_counter)
{
    write_job j;
    memset(&j, 0, sizeof j);
    GUARD(device_db(s, &d->rec.db));
    dev_record rec = d->rec;
    rec.alert_counter = alert_counter;
    j.eui = d->eui;
    j.rec = &rec;
    j.cells = cells;
    j.ncells = ncells;
    j.floor_roles = roles;
    j.floor_vals = floors;
    j.nfloors = nfloors;
    GUARD(smki_store_write(s, write_fn, &j));
    d->rec.alert_counter = alert_counter;
    return dev_reload(s, d);
}

static int create_record(smki_store *s, const smki_eui64_t *eui, dev_record *rec, const smki_ta_cell *cells,
                         size_t ncells)
{
    write_job j;
    GUARD(smki_device_dbs(s));
    memset(&j, 0, sizeof j);
    GUARD(device_db(s, &rec->db));
    j.eui = *eui;
    j.rec = rec;
    j.cells = cells;
    j.ncells = ncells;
    j.exclusive = 1;
    int rc = smki_store_write(s, write_fn, &j);
    if (rc == SMKI_E_EXISTS) {
        char t[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(eui, SMKI_EUI64_HYPHEN, t);
        smki_error_wrap("device %s already exists", t);
    }
    return rc;
}

/* The DS key's CS02c CSR, signed by the key in the token (a DS key may sign any time). */
static int ds_key_csr(const smki_hsm_opts *hsm, const char *ref, const smki_eui64_t *eui, const char *hw_type,
                      uint8_t **der, size_t *len)
{
    smki_key *k = NULL;
    GUARD(smki_key_open(ref, hsm, &k));
    int rc = smki_cs02c_csr(k, SMKI_USAGE_DS, eui, hw_type, der, len);
    smki_key_free(k);
    return rc;
}

int smki_device_create(smki_store *s, const smki_eui64_t *eui, const smki_device_keys_opts *ko)
{
    dev_record rec;
    char hex[17], label[64];
    memset(&rec, 0, sizeof rec);
    ENSURE(ko && ko->token && *ko->token, SMKI_E_USAGE, "device create: a token label is required for its keys");
    GUARD(smki_device_dbs(s));
    /* Refuse before generating keys if the device is there. */
    read_job rj;
    memset(&rj, 0, sizeof rj);
    rj.eui = *eui;
    GUARD(device_db(s, &rj.rec.db));
    GUARD(smki_store_read(s, read_fn, &rj));
    smki_hex_encode(eui->b, 8, hex, 0);
    ENSURE(!rj.found, SMKI_E_EXISTS, "device %s already exists", hex);
    snprintf(rec.token, sizeof rec.token, "%s", ko->token);
    snprintf(label, sizeof label, "dev-%s-ds", hex);
    GUARD(smki_key_generate(ko->hsm, ko->token, label, SMKI_USAGE_DS, rec.ds_ref));
    const char *hw_type = smki_env_builtin("test")->hw_type;
    uint8_t *ds_csr = NULL, *csr = NULL;
    size_t ds_csr_len = 0, csr_len = 0;
    if (ko->ds_csr && ko->ds_csr_len) GUARD(ds_key_csr(ko->hsm, rec.ds_ref, eui, hw_type, &ds_csr, &ds_csr_len));
    snprintf(label, sizeof label, "dev-%s-ka", hex);
    int rc = smki_cs02c_ka_key(ko->hsm, ko->token, label, eui, hw_type, rec.ka_ref, &csr, &csr_len);
    if (rc == 0) rc = create_record(s, eui, &rec, NULL, 0);
    if (rc == 0 && ko->ka_csr && ko->ka_csr_len) {
        *ko->ka_csr = csr;
        *ko->ka_csr_len = csr_len;
        csr = NULL;
    }
    if (rc == 0 && ds_csr) {
        *ko->ds_csr = ds_csr;
        *ko->ds_csr_len = ds_csr_len;
        ds_csr = NULL;
    }
    free(csr);
    free(ds_csr);
    return rc;
}

static int load_keystore_cell(const char *dir, const char *name, uint8_t cell_usage, smki_ta_cell *out)
{
    char path[4096];
    uint8_t *data = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    GUARD(smki_file_read(path, 1u << 16, &data, &len));
    int rc = smki_cell_from_cert(data, len, cell_usage, out);
    free(data);
    if (rc < 0) smki_error_wrap("RTDS keystore %s", path);
    return rc;
}

/* The RTDS root ZA is not published; its SKI is the authorityKeyIdentifier of the
 * organisation CA Z1 that the RTDS CS02b commands carry in their certification path. */
static const uint8_t RTDS_ROOT_SKI[8] = {0x48, 0xCF, 0x1B, 0x32, 0x69, 0x7C, 0x46, 0x69};

int smki_device_create_rtds(smki_store *s, const smki_eui64_t *eui, const char *dir)
{
    static const struct {
        const char *file;
        uint8_t cell_usage;
    } cells[] = {
        {"90b3d51f30010000-ds.pem", 0}, {"90b3d51f30010000-ka.pem", 0}, {"90b3d51f30010000-pp-ka.pem", 1},
        {"90b3d51f30020000-ds.pem", 0}, {"90b3d51f30020000-ka.pem", 0}, {"90b3d51f30000002-ds.pem", 0},
        {"90b3d51f30000002-ka.pem", 0}, {"90b3d51f30000004-ds.pem", 0}, {"90b3d51f30000001-ds.pem", 0},
        {"90b3d51f30000007-ds.pem", 0},
    };
    enum { N = sizeof cells / sizeof cells[0] };
    smki_ta_cell *c = calloc(N + 1, sizeof *c);
    dev_record rec;
    char hex[17], name[64];
    int rc = 0;
    ENSURE(c != NULL, SMKI_E_NOMEM, "cells");
    memset(&rec, 0, sizeof rec);
    rec.flags = SMKI_DEVICE_FLAG_RTDS;
    smki_hex_encode(eui->b, 8, hex, 0);
    /* The device's own certificates must be in the keystore (they are the model's
     * public half; its KA certificate is what the RTDS MACs were made for). */
    snprintf(name, sizeof name, "%s-ka.pem", hex);
    snprintf(rec.ka_ref, sizeof rec.ka_ref, "rtds-cert:%s/%s", dir, name);
    snprintf(name, sizeof name, "%s-ds.pem", hex);
    snprintf(rec.ds_ref, sizeof rec.ds_ref, "rtds-cert:%s/%s", dir, name);
    for (size_t i = 0; i < N; i++) GUARD_GOTO(load_keystore_cell(dir, cells[i].file, cells[i].cell_usage, &c[i]), out);
    c[N].id.role = SMKI_ROLE_ROOT;
    c[N].id.key_usage = SMKI_KU_KEY_CERT_SIGN;
    memcpy(c[N].ski, RTDS_ROOT_SKI, 8);
    rc = create_record(s, eui, &rec, c, N + 1);
out:
    free(c);
    return rc;
}

int smki_device_load_cell(smki_store *s, const smki_eui64_t *eui, const smki_ta_cell *cell)
{
    smki_device *d = NULL;
    GUARD(smki_device_open(s, eui, NULL, &d));
    int rc = smki_dev_store_commit(s, d, cell, 1, NULL, NULL, 0, d->rec.alert_counter);
    smki_device_free(d);
    return rc;
}

int smki_device_set_floor(smki_store *s, const smki_eui64_t *eui, uint8_t role, uint64_t floor)
{
    smki_device *d = NULL;
    GUARD(smki_device_open(s, eui, NULL, &d));
    int rc = smki_dev_store_commit(s, d, NULL, 0, &role, &floor, 1, d->rec.alert_counter);
    smki_device_free(d);
    return rc;
}

/* ---- The handle -------------------------------------------------------------------------- */

static int load_pub_from_ref(const char *ref, const smki_hsm_opts *hsm, EVP_PKEY **out)
{
    if (strncmp(ref, "rtds-cert:", 10) == 0) return smki_pub_load_file(ref + 10, out);
    return smki_key_public_load(ref, hsm, out);
}

/* The cells' public keys, from their points (the cells were checked when loaded). */
static int load_cell_keys(smki_device *d)
{
    static const uint8_t head[26] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01,
                                     0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
    for (size_t i = 0; i < SMKI_DEVICE_MAX_CELLS; i++) {
        EVP_PKEY_free(d->cell_pub[i]);
        d->cell_pub[i] = NULL;
    }
    for (size_t i = 0; i < d->ncells; i++) {
        if (!d->cells[i].has_key) continue;
        uint8_t spki[sizeof head + SMKI_POINT_LEN];
        memcpy(spki, head, sizeof head);
        memcpy(spki + sizeof head, d->cells[i].point, SMKI_POINT_LEN);
        GUARD(smki_pub_load(spki, sizeof spki, &d->cell_pub[i]));
    }
    return 0;
}

/* After a commit: the cells and floors as the store now holds them. */
static int dev_reload(smki_store *s, smki_device *d)
{
    read_job j;
    memset(&j, 0, sizeof j);
    j.eui = d->eui;
    j.d = d;
    GUARD(device_db(s, &j.rec.db));
    GUARD(smki_store_read(s, read_fn, &j));
    ENSURE(j.found, SMKI_E_INTERNAL, "device vanished from the store");
    d->rec = j.rec;
    return load_cell_keys(d);
}

int smki_device_open(smki_store *s, const smki_eui64_t *eui, const smki_hsm_opts *hsm, smki_device **out)
{
    *out = NULL;
    smki_device *d = calloc(1, sizeof *d);
    read_job j;
    int rc = 0;
    char t[SMKI_EUI64_TEXT_MAX];
    ENSURE(d != NULL, SMKI_E_NOMEM, "device");
    pthread_mutex_init(&d->mu, NULL);
    d->eui = *eui;
    if (hsm) d->hsm = *hsm;
    GUARD_GOTO(smki_device_dbs(s), fail);
    memset(&j, 0, sizeof j);
    j.eui = *eui;
    j.d = d;
    GUARD_GOTO(device_db(s, &j.rec.db), fail);
    GUARD_GOTO(smki_store_read(s, read_fn, &j), fail);
    smki_eui64_format(eui, SMKI_EUI64_HYPHEN, t);
    ENSURE_GOTO(j.found, SMKI_E_NOTFOUND, fail, "no device %s in the store (smki device create)", t);
    d->rec = j.rec;
    GUARD_GOTO(load_cell_keys(d), fail);
    if (d->rec.ka_ref[0]) GUARD_GOTO(load_pub_from_ref(d->rec.ka_ref, hsm, &d->ka_pub), fail);
    if (d->ka_pub) GUARD_GOTO(smki_pub_point(d->ka_pub, d->ka_point), fail);
    *out = d;
    return 0;
fail:
    smki_device_free(d);
    return rc;
}

void smki_device_free(smki_device *d)
{
    if (!d) return;
    for (size_t i = 0; i < SMKI_DEVICE_MAX_CELLS; i++) EVP_PKEY_free(d->cell_pub[i]);
    EVP_PKEY_free(d->ka_pub);
    smki_key_free(d->ds);
    smki_key_free(d->ka);
    smki_wipe(d->zcache, sizeof d->zcache);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

const smki_ta_cell *smki_device_cell(smki_device *d, const smki_ta_cell_id *id)
{
    int i = smki_dev_cell_index(d, id);
    return i < 0 ? NULL : &d->cells[i];
}

int smki_dev_cell_index(const smki_device *d, const smki_ta_cell_id *id)
{
    for (size_t i = 0; i < d->ncells; i++)
        if (d->cells[i].id.role == id->role && d->cells[i].id.key_usage == id->key_usage &&
            d->cells[i].id.cell_usage == id->cell_usage)
            return (int)i;
    return -1;
}

int smki_device_describe(smki_device *d, smki_device_info *out)
{
    memset(out, 0, sizeof *out);
    out->eui = d->eui;
    out->flags = d->rec.flags;
    snprintf(out->ds_ref, sizeof out->ds_ref, "%s", d->rec.ds_ref);
    snprintf(out->ka_ref, sizeof out->ka_ref, "%s", d->rec.ka_ref);
    out->alert_counter = d->rec.alert_counter;
    out->ncells = d->ncells;
    out->cells = d->cells;
    memcpy(out->floors, d->floors, sizeof out->floors);
    memcpy(out->has_floor, d->has_floor, sizeof out->has_floor);
    return 0;
}

/* The device's own keys, opened on first use (token login happens here, not at open). */
int smki_dev_own_key(smki_device *d, int ka, smki_key **out)
{
    smki_key **slot = ka ? &d->ka : &d->ds;
    const char *ref = ka ? d->rec.ka_ref : d->rec.ds_ref;
    int rc = 0;
    pthread_mutex_lock(&d->mu);
    if (!*slot) {
        if (d->rec.flags & SMKI_DEVICE_FLAG_RTDS)
            rc = SMKI_FAIL(SMKI_E_REFUSED, "an RTDS replay model has no %s private key (the RTDS does not publish it)",
                           ka ? "KA" : "DS");
        else
            rc = smki_key_open(ref, &d->hsm, slot);
    }
    pthread_mutex_unlock(&d->mu);
    *out = *slot;
    return rc;
}

/* Z = ECDH(mine, peer), cached per (peer point, mode) for the life of the handle: the
 * KDF input changes with every counter, the shared secret does not. */
int smki_dev_shared_z(smki_device *d, smki_key *mine, int mode, EVP_PKEY *peer, const uint8_t point[SMKI_POINT_LEN],
                 uint8_t z[32])
{
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < DEV_ZCACHE; i++)
        if (d->zcache[i].used && d->zcache[i].mode == mode && memcmp(d->zcache[i].point, point, SMKI_POINT_LEN) == 0) {
            memcpy(z, d->zcache[i].z, 32);
            pthread_mutex_unlock(&d->mu);
            return 0;
        }
    pthread_mutex_unlock(&d->mu);
    GUARD(smki_key_ecdh(mine, peer, z));
    pthread_mutex_lock(&d->mu);
    int slot = d->znext++ % DEV_ZCACHE;
    d->zcache[slot].used = 1;
    d->zcache[slot].mode = mode;
    memcpy(d->zcache[slot].point, point, SMKI_POINT_LEN);
    memcpy(d->zcache[slot].z, z, 32);
    pthread_mutex_unlock(&d->mu);
    return 0;
}

/* ---- Future-dated commands ------------------------------------------------------------------ */
static void pending_key(const smki_eui64_t *eui, int64_t exec, uint64_t counter, uint8_t k[25])
{
    k[0] = 'P';
    memcpy(k + 1, eui->b, 8);
    uint64_t e = (uint64_t)exec ^ 0x8000000000000000ull;
    smki_put_be64(k + 9, e);
    smki_put_be64(k + 17, counter);
}

typedef struct {
    smki_db db;
    smki_eui64_t eui;
    uint8_t key[25];
    const uint8_t *val;
    size_t vlen;
    int64_t now;
    uint16_t mc;
    dev_pending *list;
    size_t n, cap;
    size_t cancelled;
} pending_job;

static int pending_put_fn(smki_txn *t, void *arg)
{
    pending_job *j = arg;
    return smki_txn_put(t, j->db, j->key, sizeof j->key, j->val, j->vlen, 0);
}

int smki_dev_pending_put(smki_store *s, smki_device *d, int64_t exec, uint64_t counter, uint8_t role,
                    const uint8_t originator[8], uint16_t mc, const uint8_t *content, size_t len)
{
    ENSURE(len <= SMKI_GBCS_MAX_MSG, SMKI_E_INPUT, "future-dated command of %zu octets", len);
    pending_job j;
    memset(&j, 0, sizeof j);
    GUARD(device_db(s, &j.db));
    uint8_t *v = malloc(11 + len);
    ENSURE(v, SMKI_E_NOMEM, "pending command");
    v[0] = role;
    memcpy(v + 1, originator, 8);
    smki_put_be16(v + 9, mc);
    memcpy(v + 11, content, len);
    pending_key(&d->eui, exec, counter, j.key);
    j.val = v;
    j.vlen = 11 + len;
    int rc = smki_store_write(s, pending_put_fn, &j);
    free(v);
    return rc;
}

void smki_dev_pending_free(dev_pending *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++) free(p[i].content);
    free(p);
}

static int pending_decode(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, dev_pending *out)
{
    ENSURE(kl == 25 && vl >= 11, SMKI_E_CORRUPT, "pending command record of %zu/%zu octets", kl, vl);
    out->exec = (int64_t)(smki_get_be64(k + 9) ^ 0x8000000000000000ull);
    out->counter = smki_get_be64(k + 17);
    out->role = v[0];
    memcpy(out->originator, v + 1, 8);
    out->message_code = smki_get_be16(v + 9);
    out->content_len = vl - 11;
    out->content = malloc(out->content_len ? out->content_len : 1);
    ENSURE(out->content, SMKI_E_NOMEM, "pending command");
    memcpy(out->content, v + 11, out->content_len);
    return 0;
}

static int pending_scan(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    pending_job *j = arg;
    dev_pending p;
    memset(&p, 0, sizeof p);
    GUARD(pending_decode(key, klen, val, vlen, &p));
    if (p.exec > j->now) {
        free(p.content);
        return 1; /* time order: the rest is later */
    }
    if (j->n == j->cap) {
        size_t cap = j->cap ? 2 * j->cap : 8;
        dev_pending *l = realloc(j->list, cap * sizeof *l);
        if (!l) {
            free(p.content);
            return SMKI_FAIL(SMKI_E_NOMEM, "pending commands");
        }
        j->list = l;
        j->cap = cap;
    }
    j->list[j->n++] = p;
    return 0;
}

static int pending_due_fn(smki_txn *t, void *arg)
{
    pending_job *j = arg;
    uint8_t prefix[9];
    prefix[0] = 'P';
    memcpy(prefix + 1, j->eui.b, 8);
    return smki_txn_scan(t, j->db, prefix, sizeof prefix, pending_scan, j);
}

int smki_dev_pending_due(smki_store *s, smki_device *d, int64_t now, dev_pending **out, size_t *n)
{
    pending_job j;
    memset(&j, 0, sizeof j);
    GUARD(device_db(s, &j.db));
    j.eui = d->eui;
    j.now = now;
    int rc = smki_store_read(s, pending_due_fn, &j);
    if (rc < 0) {
        smki_dev_pending_free(j.list, j.n);
        return rc;
    }
    *out = j.list;
    *n = j.n;
    return 0;
}

static int pending_del_fn(smki_txn *t, void *arg)
{
    pending_job *j = arg;
    return smki_txn_del(t, j->db, j->key, sizeof j->key);
}

int smki_dev_pending_del(smki_store *s, smki_device *d, int64_t exec, uint64_t counter)
{
    pending_job j;
    memset(&j, 0, sizeof j);
    GUARD(device_db(s, &j.db));
    pending_key(&d->eui, exec, counter, j.key);
    return smki_store_write(s, pending_del_fn, &j);
}

int smki_dev_pending_cancel(smki_store *s, smki_device *d, uint16_t mc, size_t *n)
{
    dev_pending *l = NULL;
    size_t count = 0;
    *n = 0;
    GUARD(smki_dev_pending_due(s, d, INT64_MAX, &l, &count));
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        if (l[i].message_code != mc) continue;
        rc = smki_dev_pending_del(s, d, l[i].exec, l[i].counter);
        if (rc == 0) (*n)++;
    }
    smki_dev_pending_free(l, count);
    return rc;
}
