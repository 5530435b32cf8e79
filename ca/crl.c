/* CRLs and ARLs (RFC 5280 section 5): one list per CA, of the certificates it issued
 * that are revoked. An issuing CA's list is its CRL (organisation or DCCKI TLS
 * certificates); a root's is its ARL (the issuing CAs it certified). The list is
 * assembled as DER like the certificates (der.h), signed over the SHA-256 of its
 * TBSCertList with the CA key in the token, checked with OpenSSL against the CA
 * certificate's key, recorded as the CA's latest with a cRLNumber one above the last,
 * and written atomically beside the CA's certificate. */
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca_private.h"
#include "der.h"

#define CRL_RECORD_VERSION 1
#define CRL_RECORD_FIXED (1 + 8 + 8 + 8 + 4 + 4)

static const uint8_t OID_AKI[] = {0x55, 0x1d, 0x23};
static const uint8_t OID_CRL_NUMBER[] = {0x55, 0x1d, 0x14}; /* RFC 5280 5.2.3 */
static const uint8_t OID_REASON[] = {0x55, 0x1d, 0x15};     /* RFC 5280 5.3.1 */

int smki_ca_kind_is_root(smki_ca_kind k)
{
    return k == SMKI_CA_ROOT || k == SMKI_CA_DCCKI_ROOT;
}

int smki_ca_crl_interval(const smki_conf *conf, const char *env, smki_ca_kind k, int64_t *seconds)
{
    ENSURE(env && seconds, SMKI_E_INTERNAL, "smki_ca_crl_interval: missing argument");
    int root = smki_ca_kind_is_root(k);
    char key[96];
    snprintf(key, sizeof key, "ca.%s.%s", env, root ? "arl_hours" : "crl_hours");
    const char *v = conf ? smki_conf_get(conf, key, NULL) : NULL;
    unsigned long hours = root ? SMKI_ARL_DEFAULT_HOURS : SMKI_CRL_DEFAULT_HOURS;
    if (v) {
        char *end = NULL;
        hours = strtoul(v, &end, 10);
        /* 8784 hours: a leap year, the longest period between two lists we accept */
        ENSURE(*v >= '0' && *v <= '9' && end && !*end && hours >= 1 && hours <= 8784, SMKI_E_USAGE,
               "%s = '%.32s': the interval to nextUpdate is 1 to 8784 hours", key, v);
    }
    *seconds = (int64_t)hours * 3600;
    return 0;
}

void smki_crl_clear(smki_crl *c)
{
    if (!c) return;
    free(c->der);
    memset(c, 0, sizeof *c);
}

static int crl_key(const char *env, smki_ca_kind k, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", env, smki_ca_kind_name(k));
    ENSURE(n > 0 && (size_t)n < cap && (unsigned)k < SMKI_CA_KIND_COUNT, SMKI_E_USAGE, "CRL name for '%.32s'", env);
    return 0;
}

int smki_ca_crl_decode(const char *key, const uint8_t *val, size_t len, smki_crl *out)
{
    ENSURE(len >= CRL_RECORD_FIXED && val[0] == CRL_RECORD_VERSION, SMKI_E_CORRUPT,
           "CRL record %s in the store is damaged or of another version", key);
    size_t der_len = (size_t)smki_get_be32(val + 29);
    ENSURE(der_len == len - CRL_RECORD_FIXED && der_len > 0, SMKI_E_CORRUPT, "CRL record %s in the store is damaged",
           key);
    out->number = smki_get_be64(val + 1);
    out->this_update = (int64_t)smki_get_be64(val + 9);
    out->next_update = (int64_t)smki_get_be64(val + 17);
    out->entries = (size_t)smki_get_be32(val + 25);
    out->der = malloc(der_len);
    ENSURE(out->der, SMKI_E_NOMEM, "out of memory");
    memcpy(out->der, val + CRL_RECORD_FIXED, der_len);
    out->der_len = der_len;
    return 0;
}

/* ---- The list -------------------------------------------------------------------------------- */

typedef struct {
    const smki_ca_db *db;
    const char *env;
    smki_ca_kind kind;
    const uint8_t *ski;           /* the CA's: the entries' issuer SKI, the list's AKI */
    const uint8_t *name;          /* the CA's subject: the list's issuer */
    size_t name_len;
    smki_key *key;
    EVP_PKEY *ca_pub;             /* from the CA certificate */
    int64_t this_update, next_update;
    smki_revocation *revs;        /* gathered in the transaction */
    size_t n, cap;
    uint64_t number;
    uint8_t *der;
    size_t der_len;
    smki_crl_hook_fn on_store;    /* the caller's step in the same transaction */
    void *hook_arg;
    uint8_t ski_buf[SMKI_KEYID_LEN];
    char suffix[2 * SMKI_SERIAL_LEN + 2]; /* a superseded CA's: "/<its serial>" in the store, "-<serial>" in the file */
} crl_t;

typedef struct {
    crl_t *C;
    smki_txn *t;
} gather_t;

static int gather_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    (void)key;
    gather_t *g = arg;
    crl_t *C = g->C;
    ENSURE(klen >= 4 && vlen == CA_FACET_VAL_LEN, SMKI_E_CORRUPT, "a facet index entry of %zu+%zu octets in the store",
           klen, vlen);
    val = (const uint8_t *)val + 8; /* past the seq: issuer SKI || serial */
    if (memcmp(val, C->ski, SMKI_KEYID_LEN) != 0) return 0; /* another CA's */
    /* Device certificates are replaced, not revoked (reference section 4): those the
     * store marks revoked with their device CA are invalid through the ARL, never listed. */
    if (C->kind == SMKI_CA_DCA) return 0;
    const void *rec;
    size_t rlen;
    int rc = smki_txn_get(g->t, C->db->revocations, val, CA_CERT_KEY_LEN, &rec, &rlen);
    if (rc == SMKI_E_NOTFOUND)
        return SMKI_FAIL(SMKI_E_CORRUPT, "a revoked certificate in the store has no revocation record");
    GUARD(rc);
    if (C->n == C->cap) {
        size_t cap = C->cap ? C->cap * 2 : 64;
        smki_revocation *p = realloc(C->revs, cap * sizeof *p);
        ENSURE(p, SMKI_E_NOMEM, "out of memory");
        C->revs = p;
        C->cap = cap;
    }
    GUARD(smki_ca_revocation_decode(val, rec, rlen, &C->revs[C->n]));
    C->n++;
    return 0;
}

static void ext_open(smki_writer_t *w, const uint8_t *oid, size_t oid_len, smki_der_mark *outer, smki_der_mark *value)
{
    *outer = smki_wr_der_begin(w, 0x30);
    smki_wr_der(w, 0x06, oid, oid_len);
    *value = smki_wr_der_begin(w, 0x04);
}

static void ext_close(smki_writer_t *w, smki_der_mark outer, smki_der_mark value)
{
    smki_wr_der_end(w, value);
    smki_wr_der_end(w, outer);
}

static int build(crl_t *C)
{
    static const uint8_t V2[] = {0x02, 0x01, 0x01};
    size_t cap = 1024 + C->n * 64;
    free(C->der);
    C->der = malloc(cap);
    ENSURE(C->der, SMKI_E_NOMEM, "out of memory");
    smki_writer_t w;
    smki_writer_fixed(&w, C->der, cap);
    smki_der_mark list = smki_wr_der_begin(&w, 0x30);
    smki_der_mark tbs = smki_wr_der_begin(&w, 0x30);
    smki_wr_raw(&w, V2, sizeof V2); /* v2: the list has extensions (RFC 5280 5.1.2.1) */
    smki_wr_raw(&w, SMKI_CA_ALG_ECDSA_SHA256, sizeof SMKI_CA_ALG_ECDSA_SHA256);
    smki_wr_raw(&w, C->name, C->name_len);
    smki_ca_derw_time(&w, C->this_update);
    smki_ca_derw_time(&w, C->next_update);
    /* revokedCertificates is absent, not empty, when nothing is revoked (5.1.2.6) */
    if (C->n) {
        smki_der_mark all = smki_wr_der_begin(&w, 0x30);
        for (size_t i = 0; i < C->n; i++) {
            const smki_revocation *r = &C->revs[i];
            smki_der_mark e = smki_wr_der_begin(&w, 0x30);
            smki_wr_der_uint(&w, r->serial, SMKI_SERIAL_LEN);
            smki_ca_derw_time(&w, r->revoked_at);
            /* reasonCode: absent rather than unspecified (5.3.1) */
            if (r->reason != SMKI_REASON_UNSPECIFIED) {
                smki_der_mark exts = smki_wr_der_begin(&w, 0x30), outer, value;
                ext_open(&w, OID_REASON, sizeof OID_REASON, &outer, &value);
                uint8_t en = (uint8_t)r->reason;
                smki_wr_der(&w, 0x0a, &en, 1);
                ext_close(&w, outer, value);
                smki_wr_der_end(&w, exts);
            }
            smki_wr_der_end(&w, e);
        }
        smki_wr_der_end(&w, all);
    }
    smki_der_mark x0 = smki_wr_der_begin(&w, 0xa0);
    smki_der_mark exts = smki_wr_der_begin(&w, 0x30), outer, value;
    ext_open(&w, OID_AKI, sizeof OID_AKI, &outer, &value); /* 5.2.1: keyIdentifier, as the certificates */
    smki_der_mark seq = smki_wr_der_begin(&w, 0x30);
    smki_wr_der(&w, 0x80, C->ski, SMKI_KEYID_LEN);
    smki_wr_der_end(&w, seq);
    ext_close(&w, outer, value);
    ext_open(&w, OID_CRL_NUMBER, sizeof OID_CRL_NUMBER, &outer, &value); /* 5.2.3 */
    uint8_t num[8];
    smki_put_be64(num, C->number);
    smki_wr_der_uint(&w, num, sizeof num);
    ext_close(&w, outer, value);
    smki_wr_der_end(&w, exts);
    smki_wr_der_end(&w, x0);
    smki_wr_der_end(&w, tbs);
    GUARD(smki_wr_check(&w, "the TBSCertList"));

    uint8_t digest[SHA256_DIGEST_LENGTH], sig[SMKI_SIG_MAX];
    size_t sig_len = sizeof sig;
    SHA256(C->der + list, w.len - list, digest);
    GUARD(smki_key_sign_digest(C->key, digest, SMKI_SIG_DER, sig, &sig_len));
    smki_wr_raw(&w, SMKI_CA_ALG_ECDSA_SHA256, sizeof SMKI_CA_ALG_ECDSA_SHA256);
    smki_der_mark bits = smki_wr_der_begin(&w, 0x03);
    smki_wr_u8(&w, 0x00);
    smki_wr_raw(&w, sig, sig_len);
    smki_wr_der_end(&w, bits);
    smki_wr_der_end(&w, list);
    GUARD(smki_wr_check(&w, "the CRL"));
    C->der_len = w.len;

    /* Checked as a relying party will: it decodes, and its signature verifies with
     * the key of the CA certificate. */
    const unsigned char *p = C->der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)C->der_len);
    int ok = crl && p == C->der + C->der_len && X509_CRL_verify(crl, C->ca_pub) == 1;
    X509_CRL_free(crl);
    ENSURE_SSL(ok, SMKI_E_INTERNAL, "the %s list built here does not verify with the CA certificate's key: not published",
               smki_ca_kind_name(C->kind));
    return 0;
}

static int publish_in(smki_txn *t, void *arg)
{
    crl_t *C = arg;
    char key[160];
    GUARD(crl_key(C->env, C->kind, key, sizeof key));
    if (C->suffix[0]) snprintf(key + strlen(key), sizeof key - strlen(key), "/%s", C->suffix);
    C->n = 0;
    C->number = 1;
    const void *val;
    size_t vlen;
    int rc = smki_txn_get(t, C->db->crls, key, strlen(key), &val, &vlen);
    if (rc == 0) {
        smki_crl old = {0};
        GUARD(smki_ca_crl_decode(key, val, vlen, &old));
        C->number = old.number + 1;
        smki_crl_clear(&old);
    } else if (rc != SMKI_E_NOTFOUND) {
        return rc;
    }
    uint8_t revoked = SMKI_STATUS_REVOKED;
    gather_t g = {C, t};
    GUARD(smki_txn_scan(t, C->db->by_facet, &revoked, 1, gather_one, &g)); /* the status leads the key */
    GUARD(build(C));

    GUARD(smki_ca_write_allowed(t, C->db, smki_ca_kind_is_root(C->kind) ? "publishing an ARL" : "publishing a CRL"));
    size_t len = CRL_RECORD_FIXED + C->der_len;
    ENSURE(C->der_len <= 0xFFFFFFFFu && C->n <= 0xFFFFFFFFu, SMKI_E_INTERNAL, "a CRL of %zu octets", C->der_len);
    uint8_t *rec = malloc(len);
    ENSURE(rec, SMKI_E_NOMEM, "out of memory");
    rec[0] = CRL_RECORD_VERSION;
    smki_put_be64(rec + 1, C->number);
    smki_put_be64(rec + 9, (uint64_t)C->this_update);
    smki_put_be64(rec + 17, (uint64_t)C->next_update);
    smki_put_be32(rec + 25, (uint32_t)C->n);
    smki_put_be32(rec + 29, (uint32_t)C->der_len);
    memcpy(rec + CRL_RECORD_FIXED, C->der, C->der_len);
    rc = smki_txn_put(t, C->db->crls, key, strlen(key), rec, len, 0);
    free(rec);
    if (rc == 0 && C->on_store) {
        smki_crl view;
        memset(&view, 0, sizeof view);
        view.ca = C->kind;
        snprintf(view.env, sizeof view.env, "%s", C->env);
        view.number = C->number;
        view.this_update = C->this_update;
        view.next_update = C->next_update;
        view.entries = C->n;
        view.der = C->der;
        view.der_len = C->der_len;
        rc = C->on_store(t, &view, C->hook_arg);
    }
    return rc;
}

static int ca_subject(const smki_cert *cert, uint8_t *name, size_t cap, size_t *len, EVP_PKEY **pub)
{
    const unsigned char *p = cert->der;
    X509 *x = d2i_X509(NULL, &p, (long)cert->der_len);
    const unsigned char *der = NULL;
    size_t n = 0;
    int ok = x && X509_NAME_get0_der(X509_get_subject_name(x), &der, &n) == 1 && n <= cap;
    if (ok) {
        memcpy(name, der, n);
        *len = n;
        *pub = X509_get_pubkey(x);
        ok = *pub != NULL;
    }
    X509_free(x);
    ENSURE_SSL(ok, SMKI_E_CORRUPT, "the CA certificate in the store does not decode");
    return 0;
}

struct smki_crl_job {
    crl_t C;
    char env[SMKI_ENV_NAME_MAX];
    uint8_t name[512];
    char home[4000];
    int has_home;
};

void smki_ca_crl_job_free(smki_crl_job *j)
{
    if (!j) return;
    free(j->C.der);
    free(j->C.revs);
    EVP_PKEY_free(j->C.ca_pub);
    smki_key_free(j->C.key);
    free(j);
}

static int crl_begin(smki_ca_db *db, const char *env, smki_ca_kind k, const uint8_t *ski, const smki_crl_opts *o,
                     smki_crl_job **out);

int smki_ca_crl_begin(smki_ca_db *db, const char *env, smki_ca_kind k, const smki_crl_opts *o, smki_crl_job **out)
{
    return crl_begin(db, env, k, NULL, o, out);
}

int smki_ca_crl_begin_ski(smki_ca_db *db, const char *env, const uint8_t ski[SMKI_KEYID_LEN], const smki_crl_opts *o,
                          smki_crl_job **out)
{
    ENSURE(ski, SMKI_E_INTERNAL, "smki_ca_crl_begin_ski: no SKI");
    return crl_begin(db, env, SMKI_CA_ROOT, ski, o, out);
}

/* ski NULL: env's current CA of kind k; else the CA of env with that SKI, current or
 * superseded (its list kept apart: <env>/<kind>/<serial>, <kind>-<serial>.crl). */
static int crl_begin(smki_ca_db *db, const char *env, smki_ca_kind k, const uint8_t *ski, const smki_crl_opts *o,
                     smki_crl_job **out)
{
    ENSURE(db && env && o && out, SMKI_E_INTERNAL, "smki_ca_crl_begin: missing argument");
    *out = NULL;
    ENSURE((unsigned)k < SMKI_CA_KIND_COUNT, SMKI_E_USAGE, "no CA kind %d", (int)k);
    ENSURE(strlen(env) < SMKI_ENV_NAME_MAX, SMKI_E_USAGE, "environment name '%.40s...' too long", env);
    ENSURE(!o->home || strlen(o->home) < sizeof((smki_crl_job *)0)->home, SMKI_E_USAGE, "home path too long");
    smki_crl_job *j = calloc(1, sizeof *j);
    smki_ca_record *rec = calloc(1, sizeof *rec);
    int rc = 0;
    ENSURE_GOTO(j && rec, SMKI_E_NOMEM, fail, "out of memory");
    snprintf(j->env, sizeof j->env, "%s", env);
    if (o->home) snprintf(j->home, sizeof j->home, "%s", o->home);
    j->has_home = o->home != NULL;
    crl_t *C = &j->C;
    C->db = db;
    C->env = j->env;
    C->kind = k;
    C->name = j->name;
    int current = 1;
    if (ski) {
        rc = smki_ca_get_by_ski(db, env, ski, rec, &current);
        if (rc == 0) C->kind = k = rec->kind;
        if (rc == 0 && !current) smki_hex_encode(rec->cert.serial, SMKI_SERIAL_LEN, C->suffix, 0);
    } else {
        rc = smki_ca_get(db, env, k, rec);
        if (rc == SMKI_E_NOTFOUND)
            rc = SMKI_FAIL(SMKI_E_NOTFOUND, "environment %s has no %s CA: run 'smki ca init --env %s' first", env,
                           smki_ca_kind_name(k), env);
    }
    GUARD_GOTO(rc, fail);
    memcpy(j->C.ski_buf, rec->cert.ski, SMKI_KEYID_LEN);
    C->ski = C->ski_buf;
    GUARD_GOTO(ca_subject(&rec->cert, j->name, sizeof j->name, &C->name_len, &C->ca_pub), fail);
    rc = smki_key_open(rec->key_ref, o->hsm, &C->key);
    if (rc < 0) {
        smki_error_wrap("the %s CA's key of environment %s", smki_ca_kind_name(k), env);
        goto fail;
    }
    int64_t interval = o->interval;
    if (interval <= 0) GUARD_GOTO(smki_ca_crl_interval(NULL, env, k, &interval), fail);
    C->this_update = o->now > 0 ? o->now : (int64_t)time(NULL);
    C->next_update = C->this_update + interval;
    C->on_store = o->on_store;
    C->hook_arg = o->hook_arg;
    free(rec);
    *out = j;
    return 0;
fail:
    free(rec);
    smki_ca_crl_job_free(j);
    return rc;
}

int smki_ca_crl_in(smki_txn *t, smki_crl_job *j)
{
    ENSURE(t && j, SMKI_E_INTERNAL, "smki_ca_crl_in: missing argument");
    return publish_in(t, &j->C);
}

int smki_ca_crl_end(smki_crl_job *j, smki_crl *out)
{
    ENSURE(j && out, SMKI_E_INTERNAL, "smki_ca_crl_end: missing argument");
    memset(out, 0, sizeof *out);
    crl_t *C = &j->C;
    int rc = 0;
    out->ca = C->kind;
    snprintf(out->env, sizeof out->env, "%s", j->env);
    out->number = C->number;
    out->this_update = C->this_update;
    out->next_update = C->next_update;
    out->entries = C->n;
    out->der = C->der;
    out->der_len = C->der_len;
    C->der = NULL;
    if (j->has_home) {
        char dir[4200];
        int n = snprintf(dir, sizeof dir, "%s/ca/%s", j->home, j->env);
        ENSURE_GOTO(n > 0 && (size_t)n < sizeof dir, SMKI_E_USAGE, fail, "home path too long");
        n = snprintf(out->path, sizeof out->path, "%s/%s%s%s.crl", dir, smki_ca_kind_name(C->kind),
                     C->suffix[0] ? "-" : "", C->suffix);
        ENSURE_GOTO(n > 0 && (size_t)n < sizeof out->path, SMKI_E_USAGE, fail, "home path too long");
        rc = smki_mkdirs(dir, 0755);
        if (rc == 0) rc = smki_file_write_atomic(out->path, out->der, out->der_len, 0644, 0);
        if (rc < 0) {
            smki_error_wrap("CRL number %llu of %s is signed and recorded in the store, but not written",
                            (unsigned long long)out->number, smki_ca_kind_name(C->kind));
            goto fail;
        }
    }
    goto done;
fail:
    smki_crl_clear(out);
done:
    smki_ca_crl_job_free(j);
    return rc;
}

static int job_txn(smki_txn *t, void *arg)
{
    return smki_ca_crl_in(t, arg);
}

/* The store transaction and the signing/writing after it, for a job either publish
 * function began; the job is freed on every path. */
static int publish_job(smki_ca_db *db, smki_crl_job *j, smki_crl *out)
{
    int rc = smki_store_write(db->store, job_txn, j);
    if (rc < 0) {
        smki_ca_crl_job_free(j);
        return rc;
    }
    return smki_ca_crl_end(j, out);
}

int smki_ca_crl_publish(smki_ca_db *db, const char *env, smki_ca_kind k, const smki_crl_opts *o, smki_crl *out)
{
    ENSURE(db && env && o && out, SMKI_E_INTERNAL, "smki_ca_crl_publish: missing argument");
    memset(out, 0, sizeof *out);
    smki_crl_job *j = NULL;
    GUARD(smki_ca_crl_begin(db, env, k, o, &j));
    return publish_job(db, j, out);
}

int smki_ca_crl_publish_ski(smki_ca_db *db, const char *env, const uint8_t ski[SMKI_KEYID_LEN],
                            const smki_crl_opts *o, smki_crl *out)
{
    ENSURE(db && env && o && out, SMKI_E_INTERNAL, "smki_ca_crl_publish_ski: missing argument");
    memset(out, 0, sizeof *out);
    smki_crl_job *j = NULL;
    GUARD(smki_ca_crl_begin_ski(db, env, ski, o, &j));
    return publish_job(db, j, out);
}

typedef struct {
    const smki_ca_db *db;
    const char *key;
    smki_crl *out;
} get_t;

static int get_in(smki_txn *t, void *arg)
{
    get_t *g = arg;
    const void *val;
    size_t vlen;
    GUARD(smki_txn_get(t, g->db->crls, g->key, strlen(g->key), &val, &vlen));
    return smki_ca_crl_decode(g->key, val, vlen, g->out);
}

int smki_ca_crl_get(smki_ca_db *db, const char *env, smki_ca_kind k, smki_crl *out)
{
    ENSURE(db && env && out, SMKI_E_INTERNAL, "smki_ca_crl_get: missing argument");
    memset(out, 0, sizeof *out);
    char key[96];
    GUARD(crl_key(env, k, key, sizeof key));
    get_t g = {db, key, out};
    int rc = smki_store_read(db->store, get_in, &g);
    if (rc == SMKI_E_NOTFOUND)
        return SMKI_FAIL(SMKI_E_NOTFOUND, "no %s of the %s CA of environment %s has been published",
                         smki_ca_kind_is_root(k) ? "ARL" : "CRL", smki_ca_kind_name(k), env);
    if (rc < 0) {
        smki_crl_clear(out);
        return rc;
    }
    out->ca = k;
    snprintf(out->env, sizeof out->env, "%s", env);
    return 0;
}
