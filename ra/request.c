/* Requests: submitted with their CSRs and checked against the registry, approved by
 * M distinct operators other than the requester (any rejection rejects), and
 * executed through the CA in the transaction that records the result and its audit
 * entry. Demand controls: a per-subscriber daily rate, and device demand above a
 * percentage of the subscriber's monthly average held for review. */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ra_private.h"

#define REQUEST_VERSION 1
#define REQUEST_REC_MAX 4096

static const char *const TYPE_NAMES[] = {NULL,      "organisation", "device-batch", "revoke",
                                         "recover", "dccki-server", "dccki-client", "policy"};
#define TYPE_LAST 7

static int is_tls(int type)
{
    return type == SMKI_REQ_DCCKI_SERVER || type == SMKI_REQ_DCCKI_CLIENT;
}

static smki_profile_id tls_profile(int type)
{
    return type == SMKI_REQ_DCCKI_SERVER ? SMKI_PROFILE_DCCKI_SERVER : SMKI_PROFILE_DCCKI_CLIENT;
}
static const char *const STATE_NAMES[] = {NULL, "pending", "held", "approved", "done", "rejected"};

const char *smki_req_type_name(int t)
{
    return t >= 1 && t <= TYPE_LAST ? TYPE_NAMES[t] : "unknown";
}

int smki_req_type_parse(const char *text, smki_req_type *out)
{
    for (int i = 1; text && i <= TYPE_LAST; i++)
        if (strcmp(text, TYPE_NAMES[i]) == 0) {
            *out = (smki_req_type)i;
            return 0;
        }
    return SMKI_FAIL(SMKI_E_USAGE,
                     "'%.32s' is not a request type: organisation, device-batch, dccki-server, dccki-client, revoke, "
                     "recover or policy",
                     text ? text : "");
}

const char *smki_req_state_name(int s)
{
    return s >= 1 && s <= 5 ? STATE_NAMES[s] : "unknown";
}

int smki_req_state_parse(const char *text, smki_req_state *out)
{
    for (int i = 1; text && i <= 5; i++)
        if (strcmp(text, STATE_NAMES[i]) == 0) {
            *out = (smki_req_state)i;
            return 0;
        }
    return SMKI_FAIL(SMKI_E_USAGE, "'%.32s' is not a request state: pending, held, approved, done or rejected",
                     text ? text : "");
}

/* ---- Records ---------------------------------------------------------------------------------- */

static int req_encode(const smki_ra_request *r, uint8_t *out, size_t cap, size_t *len)
{
    smki_writer_t w;
    smki_writer_fixed(&w, out, cap);
    smki_wr_u8(&w, REQUEST_VERSION);
    smki_wr_u8(&w, (uint8_t)r->type);
    smki_wr_u8(&w, (uint8_t)r->state);
    smki_ra_w_str(&w, r->env);
    smki_ra_w_str(&w, r->party);
    smki_ra_w_str(&w, r->requester);
    smki_wr_be64(&w, (uint64_t)r->created);
    smki_wr_be64(&w, (uint64_t)r->updated);
    smki_wr_u8(&w, r->role >= 0 ? (uint8_t)r->role : 0xFF);
    smki_wr_u8(&w, (uint8_t)(r->has_eui ? 1 : 0));
    smki_wr_raw(&w, r->eui.b, 8);
    smki_wr_u8(&w, (uint8_t)r->usage);
    smki_ra_w_str(&w, r->cn);
    smki_wr_be32(&w, r->csr_count);
    smki_wr_be32(&w, r->done_count);
    smki_wr_raw(&w, r->serial, SMKI_SERIAL_LEN);
    smki_wr_raw(&w, r->issuer_ski, SMKI_KEYID_LEN);
    smki_wr_u8(&w, (uint8_t)r->reason);
    smki_wr_u8(&w, (uint8_t)r->approvals_required);
    smki_wr_u8(&w, (uint8_t)r->n_approvals);
    for (size_t i = 0; i < r->n_approvals; i++) smki_ra_w_str(&w, r->approvers[i]);
    smki_ra_w_str(&w, r->rejected_by);
    smki_ra_w_str(&w, r->note);
    smki_wr_u8(&w, (uint8_t)(r->has_result ? 1 : 0));
    smki_wr_raw(&w, r->result_serial, SMKI_SERIAL_LEN);
    smki_wr_raw(&w, r->result_issuer, SMKI_KEYID_LEN);
    smki_wr_u8(&w, (uint8_t)r->ca_kind);
    smki_wr_u8(&w, (uint8_t)(r->has_new_ca ? 1 : 0));
    smki_wr_raw(&w, r->new_ca_serial, SMKI_SERIAL_LEN);
    ENSURE(!w.err, SMKI_E_INTERNAL, "a request record over %zu octets", cap);
    *len = w.len;
    return 0;
}

static int req_decode(const void *key, size_t klen, const void *val, size_t vlen, smki_ra_request *r)
{
    memset(r, 0, sizeof *r);
    smki_cursor_t c = smki_cursor(val, vlen);
    uint8_t v = 0, type = 0, state = 0, role = 0, has_eui = 0, usage = 0, reason = 0, req = 0, nap = 0, has_res = 0;
    uint64_t created = 0, updated = 0;
    int rc = klen == 8 ? smki_cur_u8(&c, &v) : -1;
    if (rc == 0 && v != REQUEST_VERSION) rc = -1;
    if (rc == 0) rc = smki_cur_u8(&c, &type);
    if (rc == 0) rc = smki_cur_u8(&c, &state);
    if (rc == 0) rc = smki_r_str(&c, r->env, sizeof r->env);
    if (rc == 0) rc = smki_r_str(&c, r->party, sizeof r->party);
    if (rc == 0) rc = smki_r_str(&c, r->requester, sizeof r->requester);
    if (rc == 0) rc = smki_cur_u64be(&c, &created);
    if (rc == 0) rc = smki_cur_u64be(&c, &updated);
    if (rc == 0) rc = smki_cur_u8(&c, &role);
    if (rc == 0) rc = smki_cur_u8(&c, &has_eui);
    if (rc == 0) rc = smki_cur_copy(&c, r->eui.b, 8);
    if (rc == 0) rc = smki_cur_u8(&c, &usage);
    if (rc == 0) rc = smki_r_str(&c, r->cn, sizeof r->cn);
    if (rc == 0) rc = smki_cur_u32be(&c, &r->csr_count);
    if (rc == 0) rc = smki_cur_u32be(&c, &r->done_count);
    if (rc == 0) rc = smki_cur_copy(&c, r->serial, SMKI_SERIAL_LEN);
    if (rc == 0) rc = smki_cur_copy(&c, r->issuer_ski, SMKI_KEYID_LEN);
    if (rc == 0) rc = smki_cur_u8(&c, &reason);
    if (rc == 0) rc = smki_cur_u8(&c, &req);
    if (rc == 0) rc = smki_cur_u8(&c, &nap);
    if (rc == 0 && nap > SMKI_RA_APPROVERS_MAX) rc = -1;
    for (size_t i = 0; rc == 0 && i < nap; i++) rc = smki_r_str(&c, r->approvers[i], sizeof r->approvers[i]);
    if (rc == 0) rc = smki_r_str(&c, r->rejected_by, sizeof r->rejected_by);
    if (rc == 0) rc = smki_r_str(&c, r->note, sizeof r->note);
    if (rc == 0) rc = smki_cur_u8(&c, &has_res);
    if (rc == 0) rc = smki_cur_copy(&c, r->result_serial, SMKI_SERIAL_LEN);
    if (rc == 0) rc = smki_cur_copy(&c, r->result_issuer, SMKI_KEYID_LEN);
    uint8_t kind = 0, has_new = 0;
    if (rc == 0) rc = smki_cur_u8(&c, &kind);
    if (rc == 0) rc = smki_cur_u8(&c, &has_new);
    if (rc == 0) rc = smki_cur_copy(&c, r->new_ca_serial, SMKI_SERIAL_LEN);
    if (rc == 0 && (kind >= SMKI_CA_KIND_COUNT || has_new > 1)) rc = -1;
    r->ca_kind = kind;
    r->has_new_ca = has_new;
    if (rc < 0 || c.left || type < 1 || type > TYPE_LAST || state < 1 || state > 5) {
        smki_error_clear();
        return SMKI_FAIL(SMKI_E_CORRUPT, "a request record is damaged (%zu octets)", vlen);
    }
    r->id = smki_get_be64(key);
    r->type = (smki_req_type)type;
    r->state = (smki_req_state)state;
    r->created = (int64_t)created;
    r->updated = (int64_t)updated;
    r->role = role == 0xFF ? -1 : role;
    r->has_eui = has_eui;
    r->usage = usage;
    r->reason = reason;
    r->approvals_required = req;
    r->n_approvals = nap;
    r->has_result = has_res;
    return 0;
}

static int req_get_txn(smki_txn *t, smki_ra *ra, uint64_t id, smki_ra_request *out)
{
    uint8_t key[8];
    smki_put_be64(key, id);
    const void *v;
    size_t n;
    int rc = smki_txn_get(t, ra->db.requests, key, 8, &v, &n);
    if (rc == SMKI_E_NOTFOUND)
        return SMKI_FAIL(SMKI_E_NOTFOUND, "no request %llu ('smki ra request list')", (unsigned long long)id);
    GUARD(rc);
    return req_decode(key, 8, v, n, out);
}

/* The request as this transaction sees it, which must be approved: what every executing
 * transaction (issue, revoke, recover, policy) checks first. */
static int approved_get_txn(smki_txn *t, smki_ra *ra, uint64_t id, smki_ra_request *r)
{
    GUARD(req_get_txn(t, ra, id, r));
    ENSURE(r->state == SMKI_REQ_APPROVED, SMKI_E_REFUSED, "request %llu is %s: only an approved request is executed",
           (unsigned long long)r->id, smki_req_state_name(r->state));
    return 0;
}

int smki_ra_request_get_txn(smki_txn *t, smki_ra *ra, uint64_t id, smki_ra_request *out)
{
    return req_get_txn(t, ra, id, out);
}

static int req_put(smki_txn *t, smki_ra *ra, const smki_ra_request *r)
{
    uint8_t key[8], rec[REQUEST_REC_MAX];
    size_t n = 0;
    smki_put_be64(key, r->id);
    GUARD(req_encode(r, rec, sizeof rec, &n));
    return smki_txn_put(t, ra->db.requests, key, 8, rec, n, 0);
}

static void csr_key(uint64_t id, uint32_t idx, uint8_t key[13])
{
    smki_put_be64(key, id);
    smki_put_be32(key + 8, idx);
    key[12] = 'v';
}

/* A CSR and, beside it (its key and 'v'), the SHA-256 of its octets, whose proof of
 * possession submission verified: execution verifies again only octets that differ. */
static int csr_put(smki_txn *t, smki_ra *ra, uint64_t id, uint32_t idx, const smki_csr *c)
{
    uint8_t key[13], h[32];
    unsigned hl = sizeof h;
    csr_key(id, idx, key);
    ENSURE(EVP_Digest(c->der, c->der_len, h, &hl, EVP_sha256(), NULL) == 1, SMKI_E_CRYPTO, "SHA-256");
    GUARD(smki_txn_put(t, ra->db.csrs, key, 12, c->der, c->der_len, SMKI_PUT_NOOVERWRITE));
    return smki_txn_put(t, ra->db.csrs, key, 13, h, sizeof h, SMKI_PUT_NOOVERWRITE);
}

/* A DCCKI request's endpoint names, beside its CSR (index NAMES_INDEX): "dns NAME" and
 * "ip ADDRESS" lines. */
#define NAMES_INDEX 0xFFFFFFFFu
#define NAMES_MAX 12288

static int names_put(smki_txn *t, smki_ra *ra, uint64_t id, const smki_ra_submit *s)
{
    char *text = malloc(NAMES_MAX);
    ENSURE(text, SMKI_E_NOMEM, "out of memory");
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < s->n_dns + s->n_ips; i++) {
        int w = snprintf(text + at, NAMES_MAX - at, "%s %s\n", i < s->n_dns ? "dns" : "ip",
                         i < s->n_dns ? s->dns[i] : s->ips[i - s->n_dns]);
        if (w < 0 || (size_t)w >= NAMES_MAX - at) rc = SMKI_FAIL(SMKI_E_USAGE, "the request's names are too long");
        else at += (size_t)w;
    }
    uint8_t key[13];
    csr_key(id, NAMES_INDEX, key);
    if (rc == 0) rc = smki_txn_put(t, ra->db.csrs, key, 12, at ? text : "", at, SMKI_PUT_NOOVERWRITE);
    free(text);
    return rc;
}

typedef struct {
    smki_ra *ra;
    uint64_t id;
    char *out;
    size_t cap;
} names_run;

static int names_txn(smki_txn *t, void *arg)
{
    names_run *n = arg;
    uint8_t key[13];
    csr_key(n->id, NAMES_INDEX, key);
    const void *v;
    size_t len;
    int rc = smki_txn_get(t, n->ra->db.csrs, key, 12, &v, &len);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        n->out[0] = '\0';
        return 0;
    }
    GUARD(rc);
    ENSURE(len < n->cap && !memchr(v, 0, len), SMKI_E_CORRUPT, "request %llu's names are damaged or too long",
           (unsigned long long)n->id);
    memcpy(n->out, v, len);
    n->out[len] = '\0';
    return 0;
}

int smki_ra_request_names(smki_ra *ra, uint64_t id, char *out, size_t cap)
{
    ENSURE(ra && out && cap, SMKI_E_INTERNAL, "smki_ra_request_names: missing argument");
    names_run n = {ra, id, out, cap};
    return smki_store_read(ra->store, names_txn, &n);
}

/* The text back into pointers into it (modified in place). */
static int names_split(char *text, const char **dns, size_t *n_dns, const char **ips, size_t *n_ips, size_t max)
{
    *n_dns = *n_ips = 0;
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        ENSURE(end, SMKI_E_CORRUPT, "a request's names are damaged");
        *end = '\0';
        if (strncmp(line, "dns ", 4) == 0 && *n_dns < max) dns[(*n_dns)++] = line + 4;
        else if (strncmp(line, "ip ", 3) == 0 && *n_ips < max) ips[(*n_ips)++] = line + 3;
        else return SMKI_FAIL(SMKI_E_CORRUPT, "a request's names are damaged");
        line = end + 1;
    }
    return 0;
}

/* ---- What approvals sign ----------------------------------------------------------------------- */

static const char CONTENT_LABEL[] = "smki-request-content-v1";

/* The fields a request's approvals cover: what it asks for, never its progress (state,
 * done_count, a recovery's intent and successor, which change as it runs). */
static int content_fields(const smki_ra_request *r, uint8_t out[32])
{
    uint8_t rec[REQUEST_REC_MAX];
    smki_writer_t w;
    smki_writer_fixed(&w, rec, sizeof rec);
    smki_wr_be64(&w, r->id);
    smki_wr_u8(&w, (uint8_t)r->type);
    smki_ra_w_str(&w, r->env);
    smki_ra_w_str(&w, r->party);
    smki_ra_w_str(&w, r->requester);
    if (r->type == SMKI_REQ_RECOVER) {
        smki_wr_u8(&w, (uint8_t)r->ca_kind);
    } else if (r->type == SMKI_REQ_REVOKE) {
        smki_wr_raw(&w, r->serial, SMKI_SERIAL_LEN);
        smki_wr_raw(&w, r->issuer_ski, SMKI_KEYID_LEN);
        smki_wr_u8(&w, (uint8_t)r->reason);
    } else {
        smki_wr_u8(&w, r->role >= 0 ? (uint8_t)r->role : 0xFF);
        smki_wr_u8(&w, (uint8_t)(r->has_eui ? 1 : 0));
        smki_wr_raw(&w, r->eui.b, 8);
        smki_wr_u8(&w, (uint8_t)r->usage);
        smki_ra_w_str(&w, r->cn);
        smki_wr_be32(&w, r->csr_count);
        smki_wr_u8(&w, (uint8_t)r->reason); /* a policy change: the new value */
    }
    GUARD(smki_wr_check(&w, "a request's content"));
    unsigned hl = 32;
    ENSURE(EVP_Digest(rec, w.len, out, &hl, EVP_sha256(), NULL) == 1, SMKI_E_CRYPTO, "SHA-256");
    return 0;
}

int smki_ra_request_content(smki_txn *t, smki_ra *ra, const smki_ra_request *r, uint8_t out[32], uint8_t (*csr_hashes)[32])
{
    uint8_t fields[32];
    GUARD(content_fields(r, fields));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ENSURE(md, SMKI_E_NOMEM, "out of memory");
    int rc = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
                     EVP_DigestUpdate(md, CONTENT_LABEL, sizeof CONTENT_LABEL - 1) == 1 &&
                     EVP_DigestUpdate(md, fields, 32) == 1
                 ? 0
                 : SMKI_FAIL(SMKI_E_CRYPTO, "SHA-256");
    /* Each CSR's octets, and a DCCKI request's names: what the certificates will hold. */
    uint32_t n = r->type == SMKI_REQ_ORGANISATION || r->type == SMKI_REQ_DEVICE_BATCH || is_tls(r->type) ? r->csr_count
                                                                                                          : 0;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        uint8_t key[13], h[32];
        unsigned hl = 32;
        const void *v;
        size_t len;
        csr_key(r->id, i, key);
        rc = smki_txn_get(t, ra->db.csrs, key, 12, &v, &len);
        if (rc == SMKI_E_NOTFOUND)
            rc = SMKI_FAIL(SMKI_E_CORRUPT, "request %llu has no CSR %u: the store is damaged",
                           (unsigned long long)r->id, i + 1);
        if (rc == 0 && EVP_Digest(v, len, h, &hl, EVP_sha256(), NULL) != 1) rc = SMKI_FAIL(SMKI_E_CRYPTO, "SHA-256");
        if (rc == 0 && EVP_DigestUpdate(md, h, 32) != 1) rc = SMKI_FAIL(SMKI_E_CRYPTO, "SHA-256");
        if (rc == 0 && csr_hashes) memcpy(csr_hashes[i], h, 32);
    }
    if (rc == 0 && is_tls(r->type)) {
        uint8_t key[13];
        const void *v;
        size_t len;
        csr_key(r->id, NAMES_INDEX, key);
        rc = smki_txn_get(t, ra->db.csrs, key, 12, &v, &len);
        if (rc == SMKI_E_NOTFOUND) {
            smki_error_clear();
            v = "", len = 0, rc = 0;
        }
        if (rc == 0 && (EVP_DigestUpdate(md, "names", 5) != 1 || (len && EVP_DigestUpdate(md, v, len) != 1)))
            rc = SMKI_FAIL(SMKI_E_CRYPTO, "SHA-256");
    }
    unsigned hl = 32;
    if (rc == 0 && EVP_DigestFinal_ex(md, out, &hl) != 1) rc = SMKI_FAIL(SMKI_E_CRYPTO, "SHA-256");
    EVP_MD_CTX_free(md);
    return rc;
}

/* "; content SHA-256 <64 hex>" after an entry's detail: the words by which ra_trail
 * binds a submission, an approval or an execution to what was asked. */
static int note_append_content(ra_note *note, const uint8_t h[32])
{
    char hx[65];
    smki_hex_encode(h, 32, hx, 0);
    size_t at = strlen(note->detail);
    int w = snprintf(note->detail + at, sizeof note->detail - at, "%s%s %s", at ? "; " : "", RA_CONTENT_WORDS, hx);
    ENSURE(w > 0 && (size_t)w < sizeof note->detail - at, SMKI_E_INTERNAL, "an audit entry's detail is too long");
    return 0;
}

/* What an execution proved before it built anything: the content its approvals signed. */
typedef struct {
    uint8_t content[32], fields[32];
} proved;

/* The request's approvals proved against the trail (smki_ra_prove_approvals). */
static int prove(smki_ra *ra, const smki_ra_request *r, proved *p, uint8_t (*csr_hashes)[32])
{
    GUARD(smki_ra_prove_approvals(ra, r, p->content, csr_hashes));
    return content_fields(r, p->fields);
}

/* In an execution's transaction: the request still asks what was proved (nobody changed
 * it in between), and the entry says which content it executes. */
static int proved_check(const smki_ra_request *now, const proved *p, ra_note *note)
{
    uint8_t f[32];
    GUARD(content_fields(now, f));
    ENSURE(memcmp(f, p->fields, 32) == 0, SMKI_E_REFUSED,
           "request %llu changed while it was being executed: nothing of this step was done",
           (unsigned long long)now->id);
    return note_append_content(note, p->content);
}

/* ---- Demand ----------------------------------------------------------------------------------- */

static void day_month(int64_t now, char day[16], char month[16])
{
    time_t tt = (time_t)now;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(day, 16, "%Y%m%d", &tm);
    strftime(month, 16, "%Y%m", &tm);
}

static int counter_get(smki_txn *t, smki_ra *ra, const char *key, uint64_t *out)
{
    const void *v;
    size_t n;
    int rc = smki_txn_get(t, ra->db.demand, key, strlen(key), &v, &n);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        *out = 0;
        return 0;
    }
    GUARD(rc);
    ENSURE(n == 8, SMKI_E_CORRUPT, "a demand counter is damaged");
    *out = smki_get_be64(v);
    return 0;
}

static int counter_put(smki_txn *t, smki_ra *ra, const char *key, uint64_t v)
{
    uint8_t b[8];
    smki_put_be64(b, v);
    return smki_txn_put(t, ra->db.demand, key, strlen(key), b, 8, 0);
}

typedef struct {
    const char *current; /* "m/<party>/<yyyymm>" of this month */
    uint64_t sum, months;
} month_avg;

static int month_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    month_avg *m = arg;
    size_t cl = strlen(m->current);
    /* Earlier months only: the current one is what is being judged. */
    if (kl != cl || memcmp(k, m->current, kl) >= 0 || vl != 8) return 0;
    m->sum += smki_get_be64(v);
    m->months++;
    return 0;
}

/* ---- Submit ----------------------------------------------------------------------------------- */

typedef struct {
    const smki_ra_submit *s;
    const smki_cert *target; /* revoke */
    smki_csr *csr;       /* organisation */
    smki_csr **csrs;     /* device batch */
    const smki_ra_actor *by;
    uint64_t id;
} submit_run;

static int next_id(smki_txn *t, smki_ra *ra, uint64_t *id)
{
    const void *v;
    size_t n;
    uint64_t next = 1;
    int rc = smki_txn_get(t, ra->db.meta, "next_request", 12, &v, &n);
    if (rc == 0) {
        ENSURE(n == 8, SMKI_E_CORRUPT, "the request counter is damaged");
        next = smki_get_be64(v);
    } else if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
    } else {
        return rc;
    }
    *id = next;
    uint8_t b[8];
    smki_put_be64(b, next + 1);
    return smki_txn_put(t, ra->db.meta, "next_request", 12, b, 8, 0);
}

/* "k/<party>/<hex of the submission key>" in meta: the request a keyed submission made. */
static void submission_key_name(const smki_ra_submit *s, char out[SMKI_RA_NAME_MAX + 72])
{
    char hx[65];
    smki_hex_encode(s->submission_key, 32, hx, 0);
    snprintf(out, SMKI_RA_NAME_MAX + 72, "k/%s/%s", s->party, hx);
}

/* A keyed submission seen before: refused (SMKI_E_EXISTS) with the first request's id. */
static int submission_seen(smki_txn *t, smki_ra *ra, submit_run *sr)
{
    char name[SMKI_RA_NAME_MAX + 72];
    submission_key_name(sr->s, name);
    const void *v;
    size_t n;
    int rc = smki_txn_get(t, ra->db.meta, name, strlen(name), &v, &n);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        return 0;
    }
    GUARD(rc);
    ENSURE(n == 8, SMKI_E_CORRUPT, "a submission key record is damaged");
    sr->id = smki_get_be64(v);
    return SMKI_FAIL(SMKI_E_EXISTS, "party %s submitted this before: request %llu", sr->s->party,
                     (unsigned long long)sr->id);
}

static int submission_record(smki_txn *t, smki_ra *ra, const smki_ra_submit *s, uint64_t id)
{
    char name[SMKI_RA_NAME_MAX + 72];
    submission_key_name(s, name);
    uint8_t b[8];
    smki_put_be64(b, id);
    return smki_txn_put(t, ra->db.meta, name, strlen(name), b, 8, SMKI_PUT_NOOVERWRITE);
}

static int submit_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    submit_run *sr = arg;
    const smki_ra_submit *s = sr->s;
    int64_t now = smki_ra_now(ra);
    char day[16], month[16], key[128];
    day_month(now, day, month);
    /* A replayed submission first: it neither counts against the rate nor makes a request. */
    if (s->submission_key) GUARD(submission_seen(t, ra, sr));
    /* The rate limit: requests per subscriber per UTC day (never on a revocation: a
     * compromise is not to wait for tomorrow). */
    if (s->type != SMKI_REQ_REVOKE && s->type != SMKI_REQ_RECOVER && s->type != SMKI_REQ_POLICY) {
        uint64_t today;
        snprintf(key, sizeof key, "r/%s/%s", s->party, day);
        GUARD(counter_get(t, ra, key, &today));
        ENSURE(today < ra->pol.rate_per_day, SMKI_E_REFUSED,
               "party %s has made %llu requests today, its limit (ra.rate_per_day = %u): try again tomorrow or raise "
               "the limit",
               s->party, (unsigned long long)today, ra->pol.rate_per_day);
        GUARD(counter_put(t, ra, key, today + 1));
    }

    smki_ra_request r;
    memset(&r, 0, sizeof r);
    r.type = s->type;
    r.state = SMKI_REQ_PENDING;
    snprintf(r.env, sizeof r.env, "%s", s->env);
    snprintf(r.party, sizeof r.party, "%s", s->party);
    snprintf(r.requester, sizeof r.requester, "%s", sr->by->name);
    r.created = r.updated = now;
    r.role = -1;
    char tx[SMKI_EUI64_TEXT_MAX] = "", rt[SMKI_ROLE_TEXT_MAX] = "";
    if (s->type == SMKI_REQ_ORGANISATION) {
        smki_ra_eligibility e = {s->party, s->env, SMKI_PROFILE_ORGANISATION, s->role, s->eui, sr->csr, 0};
        GUARD(smki_ra_eligible_txn(t, ra, &e));
        r.role = s->role;
        r.has_eui = 1;
        r.eui = *s->eui;
        r.usage = sr->csr->usage;
        snprintf(r.cn, sizeof r.cn, "%s", s->cn ? s->cn : "");
        r.csr_count = 1;
        r.approvals_required = ra->pol.approvals_org;
        smki_eui64_format(s->eui, SMKI_EUI64_HYPHEN, tx);
        smki_role_format((uint8_t)s->role, rt);
    } else if (is_tls(s->type)) {
        smki_ra_eligibility e = {s->party, s->env, tls_profile(s->type), -1, NULL, sr->csr, 0};
        GUARD(smki_ra_eligible_txn(t, ra, &e));
        /* Who may ask first, then the CA's own checks of what is asked (again at
         * execution): the CSR's Party Signifier, if it has one, is this Party's; a server
         * names its host. */
        smki_env env;
        GUARD(smki_env_load(s->env, s->conf, &env));
        smki_tls_req tr = {sr->csr, tls_profile(s->type), s->party, s->cn, s->dns, s->n_dns, s->ips, s->n_ips, 0};
        char party[SMKI_PARTY_MAX];
        GUARD(smki_ca_tls_check(&env, &tr, party));
        r.usage = sr->csr->usage;
        snprintf(r.cn, sizeof r.cn, "%s", s->cn ? s->cn : "");
        r.csr_count = 1;
        r.approvals_required = ra->pol.approvals_org;
    } else if (s->type == SMKI_REQ_POLICY) {
        snprintf(r.cn, sizeof r.cn, "%s", s->cn);
        r.reason = s->reason;
        r.approvals_required = ra->pol.approvals_sensitive;
    } else if (s->type == SMKI_REQ_RECOVER) {
        r.ca_kind = s->ca_kind;
        r.csr_count = 0;
        r.approvals_required = ra->pol.approvals_sensitive;
    } else if (s->type == SMKI_REQ_REVOKE) {
        const smki_cert *c = sr->target;
        memcpy(r.serial, c->serial, SMKI_SERIAL_LEN);
        memcpy(r.issuer_ski, c->issuer_ski, SMKI_KEYID_LEN);
        r.reason = s->reason;
        r.role = c->role;
        r.has_eui = c->has_eui;
        r.eui = c->eui;
        r.usage = c->usage;
        r.approvals_required = ra->pol.approvals_sensitive;
    } else {
        for (size_t i = 0; i < s->n_csrs; i++) {
            smki_ra_eligibility e = {s->party, s->env, SMKI_PROFILE_DEVICE, -1, NULL, sr->csrs[i], s->subscriber_asks};
            int rc = smki_ra_eligible_txn(t, ra, &e);
            if (rc < 0) return smki_error_wrap("CSR %zu of the batch", i + 1);
        }
        r.csr_count = (uint32_t)s->n_csrs;
        r.approvals_required = s->n_csrs > ra->pol.batch_review_size ? ra->pol.approvals_sensitive
                                                                      : ra->pol.approvals_org;
        /* Demand: device CSRs this month against the monthly average of earlier months. */
        snprintf(key, sizeof key, "m/%s/%s", s->party, month);
        uint64_t this_month;
        GUARD(counter_get(t, ra, key, &this_month));
        char pfx[80];
        snprintf(pfx, sizeof pfx, "m/%s/", s->party);
        month_avg m = {key, 0, 0};
        GUARD(smki_txn_scan(t, ra->db.demand, pfx, strlen(pfx), month_one, &m));
        uint64_t avg = m.months ? m.sum / m.months : ra->pol.demand_baseline;
        uint64_t after = this_month + s->n_csrs;
        if (after * 100 > avg * ra->pol.demand_percent) {
            r.state = SMKI_REQ_HELD;
            if (r.approvals_required < ra->pol.approvals_sensitive) r.approvals_required = ra->pol.approvals_sensitive;
            snprintf(r.note, sizeof r.note,
                     "held for review: %llu device CSRs this month with this batch, above %u%% of the monthly average "
                     "%llu%s",
                     (unsigned long long)after, ra->pol.demand_percent, (unsigned long long)avg,
                     m.months ? "" : " (baseline: no history yet)");
        }
        GUARD(counter_put(t, ra, key, after));
    }
    GUARD(next_id(t, ra, &r.id));
    if (s->submission_key) GUARD(submission_record(t, ra, s, r.id));
    if (r.approvals_required == 0 && r.state == SMKI_REQ_PENDING) r.state = SMKI_REQ_APPROVED;
    GUARD(req_put(t, ra, &r));
    if (s->type == SMKI_REQ_ORGANISATION || is_tls(s->type)) {
        GUARD(csr_put(t, ra, r.id, 0, sr->csr));
        if (is_tls(s->type)) GUARD(names_put(t, ra, r.id, s));
    } else if (s->type == SMKI_REQ_DEVICE_BATCH) {
        for (size_t i = 0; i < s->n_csrs; i++) GUARD(csr_put(t, ra, r.id, (uint32_t)i, sr->csrs[i]));
    }
    sr->id = r.id;
    uint8_t content[32];
    GUARD(smki_ra_request_content(t, ra, &r, content, NULL));
    snprintf(note->action, sizeof note->action, "request-submit");
    snprintf(note->object, sizeof note->object, "request %llu", (unsigned long long)r.id);
    if (s->type == SMKI_REQ_ORGANISATION) {
        snprintf(note->detail, sizeof note->detail,
                 "organisation %s certificate, role %s, EUI %s, party %s, env %s; needs %u approval(s)",
                 r.usage == SMKI_USAGE_DS ? "DS" : "KA", rt, tx, r.party, r.env, r.approvals_required);
    } else if (is_tls(s->type)) {
        snprintf(note->detail, sizeof note->detail,
                 "%s certificate, party %s (its Signifier in the subject), env %s, %zu host name(s), %zu address(es); "
                 "needs %u approval(s)",
                 smki_req_type_name(s->type), r.party, r.env, s->n_dns, s->n_ips, r.approvals_required);
    } else if (s->type == SMKI_REQ_POLICY) {
        snprintf(note->detail, sizeof note->detail, "change %s from %u to %d; needs %u approval(s)", r.cn,
                 strcmp(r.cn, "approvals_organisation") == 0 ? ra->pol.approvals_org : ra->pol.approvals_sensitive,
                 r.reason, r.approvals_required);
    } else if (s->type == SMKI_REQ_RECOVER) {
        snprintf(note->detail, sizeof note->detail,
                 "CA compromise recovery of %s in %s: revoke it, make its successor, re-issue; needs %u approval(s)",
                 smki_ca_kind_name((smki_ca_kind)r.ca_kind), r.env, r.approvals_required);
    } else if (s->type == SMKI_REQ_REVOKE) {
        char serial[2 * SMKI_SERIAL_LEN + 1];
        smki_hex_encode(r.serial, SMKI_SERIAL_LEN, serial, 0);
        snprintf(note->detail, sizeof note->detail,
                 "revoke %s certificate %s (%s), party %s, env %s; needs %u approval(s)",
                 smki_profile_get(sr->target->profile)->name, serial, smki_revoke_reason_name(r.reason), r.party, r.env,
                 r.approvals_required);
    } else
        snprintf(note->detail, sizeof note->detail,
                 "device batch of %u CSRs, party %s, env %s; needs %u approval(s)%s%s", r.csr_count, r.party, r.env,
                 r.approvals_required, r.state == SMKI_REQ_HELD ? "; " : "", r.state == SMKI_REQ_HELD ? r.note : "");
    return note_append_content(note, content);
}

static int find_one(const smki_cert *c, void *arg)
{
    smki_cert *out = arg;
    if (out->der_len) return SMKI_FAIL(SMKI_E_USAGE, "that serial is used by more than one issuer: name the issuer");
    *out = *c;
    return 0;
}

/* Revocation: the certificate, found and judged before anything is written. */
static int submit_revoke(smki_ra *ra, const smki_ra_actor *by, const smki_ra_submit *s, uint64_t *id)
{
    ENSURE(s->serial, SMKI_E_USAGE, "a revocation names the certificate's serial");
    ENSURE(smki_revoke_reason_name(s->reason), SMKI_E_USAGE, "revocation reason %d is not an RFC 5280 reason code",
           s->reason);
    smki_revoke_reason check;
    GUARD(smki_revoke_reason_parse(smki_revoke_reason_name(s->reason), &check));
    smki_cert *found = calloc(1, sizeof *found);
    ENSURE(found, SMKI_E_NOMEM, "out of memory");
    smki_ca_query q = SMKI_CA_QUERY_ALL;
    q.serial = s->serial;
    q.issuer_ski = s->issuer_ski;
    int rc = smki_ca_find(&ra->ca, &q, find_one, found);
    char hex[2 * SMKI_SERIAL_LEN + 1];
    smki_hex_encode(s->serial, SMKI_SERIAL_LEN, hex, 0);
    const smki_cert *c = &found[0];
    if (rc == 0 && !c->der_len) rc = SMKI_FAIL(SMKI_E_NOTFOUND, "no certificate of serial %s ('smki ca list')", hex);
    if (rc == 0 && c->profile == SMKI_PROFILE_DEVICE)
        rc = SMKI_FAIL(SMKI_E_REFUSED, "certificate %s is a device certificate: device certificates are replaced, not "
                                       "revoked (reference section 4): submit a device batch with the new CSR", hex);
    if (rc == 0 && smki_profile_get(c->profile)->is_ca && smki_profile_get(c->profile)->self_signed == 1)
        rc = SMKI_FAIL(SMKI_E_REFUSED, "certificate %s is a root: it is withdrawn from the trust stores, not revoked",
                       hex);
    if (rc == 0 && c->status == SMKI_STATUS_REVOKED)
        rc = SMKI_FAIL(SMKI_E_REFUSED, "certificate %s is already revoked", hex);
    if (rc == 0 && s->env && strcmp(s->env, c->env) != 0)
        rc = SMKI_FAIL(SMKI_E_NOTFOUND, "certificate %s is of environment %s, not %s", hex, c->env, s->env);
    smki_ra_submit sub = *s;
    char party[SMKI_RA_NAME_MAX] = "-";
    smki_ra_user_id u;
    if (rc == 0 && c->has_eui) {
        if (smki_ra_id_get(ra, &c->eui, &u) == 0) snprintf(party, sizeof party, "%s", u.party);
        else smki_error_clear();
    }
    sub.party = party;
    sub.env = c->env;
    submit_run sr = {&sub, c, NULL, NULL, by, 0};
    if (rc == 0) rc = smki_ra_act_via(ra, by, s->via, submit_fn, &sr);
    free(found);
    GUARD(rc);
    if (id) *id = sr.id;
    return 0;
}

static int submit_recover(smki_ra *ra, const smki_ra_actor *by, const smki_ra_submit *s, uint64_t *id)
{
    ENSURE(s->env && strlen(s->env) < SMKI_ENV_NAME_MAX, SMKI_E_USAGE, "a recovery names the environment (--env)");
    ENSURE(s->ca_kind == SMKI_CA_OCA || s->ca_kind == SMKI_CA_DCA, SMKI_E_USAGE,
           "a recovery is for an issuing CA: smki-oca or smki-dca");
    smki_ca_record *rec = malloc(sizeof *rec);
    ENSURE(rec, SMKI_E_NOMEM, "out of memory");
    int rc = smki_ca_get(&ra->ca, s->env, (smki_ca_kind)s->ca_kind, rec);
    free(rec);
    GUARD(rc);
    smki_ra_submit sub = *s;
    sub.party = "-";
    submit_run sr = {&sub, NULL, NULL, NULL, by, 0};
    GUARD(smki_ra_act(ra, by, 0, submit_fn, &sr));
    if (id) *id = sr.id;
    return 0;
}

/* The settings a policy request may change, and the new value, judged against the
 * counts in force (sensitive is never below organisation). */
static int policy_check(const smki_ra_policy *pol, const char *setting, int value, unsigned *org, unsigned *sens)
{
    *org = pol->approvals_org;
    *sens = pol->approvals_sensitive;
    ENSURE(value >= 1 && value <= SMKI_RA_APPROVERS_MAX, SMKI_E_REFUSED,
           "an approval count is 1 to %d, not %d: nothing is done by one operator alone", SMKI_RA_APPROVERS_MAX, value);
    if (setting && strcmp(setting, "approvals_organisation") == 0) *org = (unsigned)value;
    else if (setting && strcmp(setting, "approvals_sensitive") == 0) *sens = (unsigned)value;
    else
        return SMKI_FAIL(SMKI_E_USAGE, "'%.64s' is not a setting a policy request changes: approvals_organisation or "
                                       "approvals_sensitive", setting ? setting : "");
    ENSURE(*sens >= *org, SMKI_E_REFUSED,
           "approvals_sensitive (%u) may not be below approvals_organisation (%u): change the other first", *sens, *org);
    return 0;
}

static int submit_policy(smki_ra *ra, const smki_ra_actor *by, const smki_ra_submit *s, uint64_t *id)
{
    unsigned org, sens;
    GUARD(policy_check(&ra->pol, s->cn, s->reason, &org, &sens));
    smki_ra_submit sub = *s;
    sub.party = "-";
    sub.env = "-";
    submit_run sr = {&sub, NULL, NULL, NULL, by, 0};
    GUARD(smki_ra_act(ra, by, 0, submit_fn, &sr));
    if (id) *id = sr.id;
    return 0;
}

int smki_ra_request_submit(smki_ra *ra, const smki_ra_actor *by, const smki_ra_submit *s, uint64_t *id)
{
    if (s && s->type == SMKI_REQ_REVOKE) return submit_revoke(ra, by, s, id);
    if (s && s->type == SMKI_REQ_RECOVER) return submit_recover(ra, by, s, id);
    if (s && s->type == SMKI_REQ_POLICY) return submit_policy(ra, by, s, id);
    ENSURE(s && s->party && s->env, SMKI_E_USAGE, "a request needs a party (--party) and an environment (--env)");
    GUARD(smki_ra_check_name("a Party Signifier", s->party));
    ENSURE(strlen(s->env) < SMKI_ENV_NAME_MAX, SMKI_E_USAGE, "environment name too long");
    submit_run sr = {s, NULL, NULL, NULL, by, 0};
    int rc = 0;
    if (s->type == SMKI_REQ_ORGANISATION) {
        ENSURE(s->csr && s->csr_len, SMKI_E_USAGE, "an organisation request needs its CSR (--csr)");
        ENSURE(s->eui, SMKI_E_USAGE, "an organisation request needs the organisation's EUI-64 (--eui)");
        ENSURE(smki_role_by_code((unsigned)s->role), SMKI_E_USAGE,
               "an organisation request needs a Remote Party Role (--role)");
        ENSURE(!s->cn || strlen(s->cn) < SMKI_CA_NAME_MAX, SMKI_E_USAGE, "--cn is 1 to 64 characters");
        GUARD(smki_csr_parse(s->csr, s->csr_len, &sr.csr));
        rc = smki_ra_act_via(ra, by, s->via, submit_fn, &sr);
        smki_csr_free(sr.csr);
    } else if (is_tls(s->type)) {
        ENSURE(s->csr && s->csr_len, SMKI_E_USAGE, "a %s request needs its CSR (--csr)", smki_req_type_name(s->type));
        ENSURE(!s->eui, SMKI_E_USAGE, "a DCCKI TLS certificate has no EUI-64: drop --eui");
        GUARD(smki_csr_parse(s->csr, s->csr_len, &sr.csr));
        rc = smki_ra_act_via(ra, by, s->via, submit_fn, &sr);
        smki_csr_free(sr.csr);
    } else if (s->type == SMKI_REQ_DEVICE_BATCH) {
        ENSURE(s->n_csrs > 0 && s->n_csrs <= 10000000u, SMKI_E_USAGE, "a device batch needs 1 or more CSRs");
        sr.csrs = calloc(s->n_csrs, sizeof *sr.csrs);
        ENSURE(sr.csrs, SMKI_E_NOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < s->n_csrs; i++) {
            rc = smki_csr_parse(s->csrs[i], s->csr_lens[i], &sr.csrs[i]);
            if (rc < 0) smki_error_wrap("CSR %zu of the batch", i + 1);
        }
        if (rc == 0) rc = smki_ra_act_via(ra, by, s->via, submit_fn, &sr);
        for (size_t i = 0; i < s->n_csrs; i++) smki_csr_free(sr.csrs[i]);
        free(sr.csrs);
    } else {
        return SMKI_FAIL(SMKI_E_USAGE, "requests of type %s are submitted with their own command",
                         smki_req_type_name(s->type));
    }
    if (rc == SMKI_E_EXISTS && sr.id && id) *id = sr.id;
    GUARD(rc);
    if (id) *id = sr.id;
    return 0;
}

/* ---- Reading ---------------------------------------------------------------------------------- */

typedef struct {
    smki_ra *ra;
    uint64_t id;
    smki_ra_request *out;
} get_run;

static int get_txn(smki_txn *t, void *arg)
{
    get_run *g = arg;
    return req_get_txn(t, g->ra, g->id, g->out);
}

int smki_ra_request_get(smki_ra *ra, uint64_t id, smki_ra_request *out)
{
    get_run g = {ra, id, out};
    return smki_store_read(ra->store, get_txn, &g);
}

typedef struct {
    smki_ra *ra;
    int state;
    smki_ra_request_fn fn;
    void *arg;
} each_req;

static int each_req_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    each_req *e = arg;
    smki_ra_request r;
    GUARD(req_decode(k, kl, v, vl, &r));
    if (e->state && (int)r.state != e->state) return 0;
    return e->fn(&r, e->arg);
}

static int each_req_txn(smki_txn *t, void *arg)
{
    each_req *e = arg;
    return smki_txn_scan(t, e->ra->db.requests, NULL, 0, each_req_one, e);
}

int smki_ra_request_each(smki_ra *ra, int state, smki_ra_request_fn fn, void *arg)
{
    each_req e = {ra, state, fn, arg};
    return smki_store_read(ra->store, each_req_txn, &e);
}

typedef struct {
    smki_ra *ra;
    uint64_t id;
    uint32_t from, n;
    uint8_t **der;
    size_t *len;
    uint8_t (*verified)[32]; /* optional: the recorded SHA-256 of each, has_verified[i] when there is one */
    int *has_verified;
} csr_run;

static int csr_txn(smki_txn *t, void *arg)
{
    csr_run *c = arg;
    for (uint32_t i = 0; i < c->n; i++) {
        uint8_t key[13];
        csr_key(c->id, c->from + i, key);
        const void *v;
        size_t n;
        int rc = smki_txn_get(t, c->ra->db.csrs, key, 12, &v, &n);
        if (rc == SMKI_E_NOTFOUND)
            return SMKI_FAIL(SMKI_E_CORRUPT, "request %llu has no CSR %u: the store is damaged",
                             (unsigned long long)c->id, c->from + i);
        GUARD(rc);
        c->der[i] = malloc(n);
        ENSURE(c->der[i], SMKI_E_NOMEM, "out of memory");
        memcpy(c->der[i], v, n);
        c->len[i] = n;
        if (!c->verified) continue;
        rc = smki_txn_get(t, c->ra->db.csrs, key, 13, &v, &n);
        c->has_verified[i] = rc == 0 && n == 32;
        if (rc == SMKI_E_NOTFOUND) smki_error_clear();
        else GUARD(rc);
        if (c->has_verified[i]) memcpy(c->verified[i], v, 32);
    }
    return 0;
}

int smki_ra_request_csr(smki_ra *ra, uint64_t id, uint32_t index, uint8_t **der, size_t *len)
{
    *der = NULL;
    csr_run c = {ra, id, index, 1, der, len, NULL, NULL};
    int rc = smki_store_read(ra->store, csr_txn, &c);
    if (rc < 0) {
        free(*der);
        *der = NULL;
    }
    return rc;
}

/* The certificate of a device batch's CSR: the request's issuer, the CSR's Device ID,
 * and its public key exactly as the CA copied it into the certificate. Should the same
 * key have been certified again (another request, 'smki ca issue'), the request's own is
 * the first one recorded from its first certificate on (the store's arrival order). */
typedef struct {
    const uint8_t *spki;
    size_t spki_len;
    smki_cert *out;
    uint64_t from_seq, best_seq;
    int found;
} by_key_run;

static int holds(const uint8_t *hay, size_t hn, const uint8_t *needle, size_t nn)
{
    for (size_t i = 0; nn && i + nn <= hn; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, nn) == 0) return 1;
    return 0;
}

static int by_key_one(const smki_cert *c, void *arg)
{
    by_key_run *b = arg;
    if (c->seq < b->from_seq || !holds(c->der, c->der_len, b->spki, b->spki_len) || (b->found && c->seq > b->best_seq))
        return 0;
    memcpy(b->out, c, sizeof *c);
    b->best_seq = c->seq;
    b->found = 1;
    return 0;
}

int smki_ra_request_cert(smki_ra *ra, uint64_t id, uint32_t index, smki_cert *out)
{
    ENSURE(ra && out, SMKI_E_INTERNAL, "smki_ra_request_cert: missing argument");
    smki_ra_request r;
    GUARD(smki_ra_request_get(ra, id, &r));
    ENSURE(r.type == SMKI_REQ_ORGANISATION || r.type == SMKI_REQ_DEVICE_BATCH || is_tls(r.type), SMKI_E_NOTFOUND,
           "request %llu is a %s request: it issues no certificate", (unsigned long long)id, smki_req_type_name(r.type));
    ENSURE(index < r.done_count && r.has_result, SMKI_E_NOTFOUND, "request %llu has not issued its certificate %u yet",
           (unsigned long long)id, index + 1);
    /* The first certificate is the one the request recorded; it dates the rest. */
    GUARD(smki_ca_cert_get(&ra->ca, r.result_issuer, r.result_serial, out));
    if (r.type != SMKI_REQ_DEVICE_BATCH || index == 0) return 0;
    uint64_t from_seq = out->seq;
    uint8_t *der = NULL, verified[1][32];
    size_t len = 0;
    int has_verified = 0;
    csr_run c = {ra, id, index, 1, &der, &len, verified, &has_verified};
    int rc = smki_store_read(ra->store, csr_txn, &c);
    /* Its proof of possession was verified at submission: only the key and ID are read. */
    smki_csr_parse_opts po = {has_verified ? verified[0] : NULL, NULL};
    smki_csr *csr = NULL;
    if (rc == 0) rc = smki_csr_parse_ex(der, len, &po, &csr);
    by_key_run b = {csr ? csr->spki : NULL, csr ? csr->spki_len : 0, out, from_seq, 0, 0};
    if (rc == 0) {
        smki_ca_query q = SMKI_CA_QUERY_ALL;
        q.env = r.env;
        q.eui = &csr->hw_serial;
        q.issuer_ski = r.result_issuer;
        q.profile = SMKI_PROFILE_DEVICE;
        rc = smki_ca_find(&ra->ca, &q, by_key_one, &b);
    }
    if (rc == 0 && !b.found)
        rc = SMKI_FAIL(SMKI_E_NOTFOUND, "request %llu: no certificate of CSR %u in the store", (unsigned long long)id,
                       index + 1);
    smki_csr_free(csr);
    free(der);
    return rc;
}

/* ---- Approve and reject ------------------------------------------------------------------------- */

typedef struct {
    uint64_t id;
    const char *name;
    const char *reason;
    int now_approved;
} decide_run;

static int approve_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    decide_run *d = arg;
    smki_ra_request r;
    GUARD(req_get_txn(t, ra, d->id, &r));
    /* An approved request not yet begun takes more: one whose approver left before it ran
     * needs another (ra_trail counts only approvers still active at execution). */
    ENSURE(r.state == SMKI_REQ_PENDING || r.state == SMKI_REQ_HELD || (r.state == SMKI_REQ_APPROVED && !r.done_count),
           SMKI_E_REFUSED, "request %llu is %s: only a pending, held or not yet executed request is approved",
           (unsigned long long)r.id,
           smki_req_state_name(r.state));
    ENSURE(strcmp(r.requester, d->name) != 0, SMKI_E_REFUSED,
           "operator %s submitted request %llu and may not approve it: another operator must",
           d->name, (unsigned long long)r.id);
    for (size_t i = 0; i < r.n_approvals; i++)
        ENSURE(strcmp(r.approvers[i], d->name) != 0, SMKI_E_REFUSED,
               "operator %s has already approved request %llu: approvals come from distinct operators", d->name,
               (unsigned long long)r.id);
    ENSURE(r.n_approvals < SMKI_RA_APPROVERS_MAX, SMKI_E_INTERNAL, "request %llu holds too many approvals",
           (unsigned long long)r.id);
    snprintf(r.approvers[r.n_approvals++], sizeof r.approvers[0], "%s", d->name);
    r.updated = smki_ra_now(ra);
    d->now_approved = r.n_approvals >= r.approvals_required;
    if (d->now_approved && r.state != SMKI_REQ_APPROVED) r.state = SMKI_REQ_APPROVED;
    else if (r.state == SMKI_REQ_APPROVED) d->now_approved = 0;
    GUARD(req_put(t, ra, &r));
    snprintf(note->action, sizeof note->action, "request-approve");
    snprintf(note->object, sizeof note->object, "request %llu", (unsigned long long)r.id);
    snprintf(note->detail, sizeof note->detail, "approval %zu of %u%s", r.n_approvals, r.approvals_required,
             d->now_approved ? ": approved" : "");
    /* The approver's signature on this entry covers what they approved: execution and
     * 'smki audit verify' count it only for this content (ra_trail). */
    uint8_t content[32];
    GUARD(smki_ra_request_content(t, ra, &r, content, NULL));
    return note_append_content(note, content);
}

int smki_ra_request_approve(smki_ra *ra, const smki_ra_actor *by, uint64_t id, int *now_approved)
{
    ENSURE(by && by->name, SMKI_E_USAGE, "no operator (--operator NAME)");
    decide_run d = {id, by->name, NULL, 0};
    GUARD(smki_ra_act(ra, by, 0, approve_fn, &d));
    if (now_approved) *now_approved = d.now_approved;
    return 0;
}

static int reject_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    decide_run *d = arg;
    smki_ra_request r;
    GUARD(req_get_txn(t, ra, d->id, &r));
    ENSURE(r.state == SMKI_REQ_PENDING || r.state == SMKI_REQ_HELD || r.state == SMKI_REQ_APPROVED, SMKI_E_REFUSED,
           "request %llu is %s: it can no longer be rejected", (unsigned long long)r.id, smki_req_state_name(r.state));
    ENSURE(r.done_count == 0, SMKI_E_REFUSED,
           "request %llu has begun issuing (%u of %u done): it can no longer be rejected", (unsigned long long)r.id,
           r.done_count, r.csr_count);
    r.state = SMKI_REQ_REJECTED;
    r.updated = smki_ra_now(ra);
    snprintf(r.rejected_by, sizeof r.rejected_by, "%s", d->name);
    snprintf(r.note, sizeof r.note, "%s", d->reason);
    GUARD(req_put(t, ra, &r));
    snprintf(note->action, sizeof note->action, "request-reject");
    snprintf(note->object, sizeof note->object, "request %llu", (unsigned long long)r.id);
    snprintf(note->detail, sizeof note->detail, "%s", d->reason);
    return 0;
}

int smki_ra_request_reject(smki_ra *ra, const smki_ra_actor *by, uint64_t id, const char *reason)
{
    ENSURE(by && by->name, SMKI_E_USAGE, "no operator (--operator NAME)");
    ENSURE(reason && *reason && strlen(reason) < SMKI_RA_REASON_MAX, SMKI_E_USAGE,
           "a rejection needs a reason (--reason TEXT) of at most %d characters", SMKI_RA_REASON_MAX - 1);
    decide_run d = {id, by->name, reason, 0};
    return smki_ra_act(ra, by, 0, reject_fn, &d);
}

/* ---- Execution ---------------------------------------------------------------------------------- */

/* The issuing CA of env for leaf must be in use and within its validity. */
static int check_issuing_ca(smki_ra *ra, const char *env, smki_profile_id leaf)
{
    smki_ca_record *rec = malloc(sizeof *rec);
    ENSURE(rec, SMKI_E_NOMEM, "out of memory");
    smki_ca_kind kind = leaf == SMKI_PROFILE_DEVICE ? SMKI_CA_DCA
                        : leaf == SMKI_PROFILE_DCCKI_SERVER || leaf == SMKI_PROFILE_DCCKI_CLIENT ? SMKI_CA_DCCKI_ICA
                                                                                                   : SMKI_CA_OCA;
    int rc = smki_ca_get(&ra->ca, env, kind, rec);
    if (rc == 0 && rec->cert.status != SMKI_STATUS_IN_USE)
        rc = SMKI_FAIL(SMKI_E_REFUSED, "the %s of environment %s is %s: nothing is issued under it (see docs/ra.md, "
                                       "CA compromise recovery)",
                       smki_ca_kind_name(kind), env, smki_cert_status_name(rec->cert.status));
    if (rc == 0 && rec->cert.not_after >= 0 && rec->cert.not_after <= smki_ra_now(ra))
        rc = SMKI_FAIL(SMKI_E_REFUSED, "the %s of environment %s has expired: nothing is issued under it",
                       smki_ca_kind_name(kind), env);
    free(rec);
    return rc;
}

/* Whether an issuer a caller keeps open is env's CA for leaf as the store records it now
 * (not a CA a recovery has since replaced). */
int smki_ra_issuer_is_current(smki_ra *ra, smki_ca_issuer *is, const char *env, smki_profile_id leaf, int *fits)
{
    *fits = 0;
    smki_ca_kind kind = leaf == SMKI_PROFILE_DEVICE ? SMKI_CA_DCA
                        : leaf == SMKI_PROFILE_DCCKI_SERVER || leaf == SMKI_PROFILE_DCCKI_CLIENT ? SMKI_CA_DCCKI_ICA
                                                                                                   : SMKI_CA_OCA;
    if (strcmp(smki_ca_issuer_env(is)->name, env) != 0 || smki_ca_issuer_profile(is) != smki_ca_kind_profile(kind))
        return 0;
    smki_ca_record *rec = malloc(sizeof *rec);
    ENSURE(rec, SMKI_E_NOMEM, "out of memory");
    size_t len = 0;
    const uint8_t *der = smki_ca_issuer_cert(is, &len);
    int rc = smki_ca_get(&ra->ca, env, kind, rec);
    if (rc == 0) *fits = rec->cert.der_len == len && memcmp(rec->cert.der, der, len) == 0;
    free(rec);
    return rc;
}

typedef struct {
    uint64_t id;
    uint32_t from, n;      /* device batch: the group */
    smki_cert *certs;      /* n of them */
    smki_csr **csrs;
    int finished;
    const proved *pr;
} exec_run;

static int exec_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    exec_run *x = arg;
    smki_ra_request r;
    GUARD(approved_get_txn(t, ra, x->id, &r));
    ENSURE(r.done_count == x->from, SMKI_E_LOCKED,
           "request %llu moved on while this execution ran (another operator is executing it)",
           (unsigned long long)r.id);
    char serial[2 * SMKI_SERIAL_LEN + 1];
    if (r.type == SMKI_REQ_ORGANISATION || is_tls(r.type)) {
        smki_ra_eligibility e = {r.party, r.env, SMKI_PROFILE_ORGANISATION, r.role, &r.eui, x->csrs[0], 0};
        if (is_tls(r.type)) e = (smki_ra_eligibility){r.party, r.env, tls_profile(r.type), -1, NULL, x->csrs[0], 0};
        GUARD(smki_ra_eligible_txn(t, ra, &e));
        GUARD(smki_ca_cert_put(t, &ra->ca, &x->certs[0]));
        r.has_result = 1;
        memcpy(r.result_serial, x->certs[0].serial, SMKI_SERIAL_LEN);
        memcpy(r.result_issuer, x->certs[0].issuer_ski, SMKI_KEYID_LEN);
        r.done_count = 1;
        smki_hex_encode(x->certs[0].serial, SMKI_SERIAL_LEN, serial, 0);
        snprintf(note->detail, sizeof note->detail, "issued %s certificate serial %s%s%s",
                 smki_profile_get(x->certs[0].profile)->name, serial, is_tls(r.type) ? " for party " : "",
                 is_tls(r.type) ? r.party : "");
    } else {
        /* Serials of the group, hashed: the entry names every certificate it covers. */
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        ENSURE(md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1, SMKI_E_CRYPTO, "SHA-256");
        int rc = 0;
        for (uint32_t i = 0; rc == 0 && i < x->n; i++) {
            smki_ra_eligibility e = {r.party, r.env, SMKI_PROFILE_DEVICE, -1, NULL, x->csrs[i], 0};
            rc = smki_ra_eligible_txn(t, ra, &e);
            if (rc < 0) smki_error_wrap("CSR %u of request %llu", x->from + i + 1, (unsigned long long)r.id);
            if (rc == 0) rc = smki_ca_cert_put(t, &ra->ca, &x->certs[i]);
            if (rc == 0) EVP_DigestUpdate(md, x->certs[i].serial, SMKI_SERIAL_LEN);
        }
        uint8_t h[32];
        unsigned hl = 32;
        if (rc == 0) EVP_DigestFinal_ex(md, h, &hl);
        EVP_MD_CTX_free(md);
        GUARD(rc);
        if (x->from == 0 && x->n) {
            r.has_result = 1;
            memcpy(r.result_serial, x->certs[0].serial, SMKI_SERIAL_LEN);
            memcpy(r.result_issuer, x->certs[0].issuer_ski, SMKI_KEYID_LEN);
        }
        r.done_count = x->from + x->n;
        char hh[65];
        smki_hex_encode(h, 32, hh, 0);
        snprintf(note->detail, sizeof note->detail,
                 "issued device certificates %u to %u of %u; SHA-256 of their serials %s", x->from + 1, x->from + x->n,
                 r.csr_count, hh);
    }
    GUARD(proved_check(&r, x->pr, note));
    x->finished = r.done_count >= r.csr_count;
    if (x->finished) r.state = SMKI_REQ_DONE;
    r.updated = smki_ra_now(ra);
    r.note[0] = '\0';
    GUARD(req_put(t, ra, &r));
    snprintf(note->action, sizeof note->action, "request-execute");
    snprintf(note->object, sizeof note->object, "request %llu", (unsigned long long)r.id);
    return 0;
}

typedef struct {
    smki_ra *ra;
    uint64_t id;
    smki_ra_request *r;
} load_run;

typedef struct {
    uint64_t id;
    smki_cert *cert;
    smki_revocation rev;
    const proved *pr;
} revoke_run;

static int revoke_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    revoke_run *x = arg;
    smki_ra_request r;
    GUARD(approved_get_txn(t, ra, x->id, &r));
    smki_revoke_req q = {r.serial, r.issuer_ski, r.env, (smki_revoke_reason)r.reason, smki_ra_now(ra)};
    GUARD(smki_ca_revoke_txn(t, &ra->ca, &q, x->cert, &x->rev));
    r.state = SMKI_REQ_DONE;
    r.updated = smki_ra_now(ra);
    r.has_result = 1;
    memcpy(r.result_serial, r.serial, SMKI_SERIAL_LEN);
    memcpy(r.result_issuer, r.issuer_ski, SMKI_KEYID_LEN);
    GUARD(req_put(t, ra, &r));
    char serial[2 * SMKI_SERIAL_LEN + 1];
    smki_hex_encode(r.serial, SMKI_SERIAL_LEN, serial, 0);
    snprintf(note->action, sizeof note->action, "request-execute");
    snprintf(note->object, sizeof note->object, "request %llu", (unsigned long long)r.id);
    snprintf(note->detail, sizeof note->detail, "revoked %s certificate %s: %s", smki_profile_get(x->cert->profile)->name,
             serial, smki_revoke_reason_name(r.reason));
    if (smki_profile_get(x->cert->profile)->is_ca) {
        size_t at = strlen(note->detail);
        snprintf(note->detail + at, sizeof note->detail - at, "; %zu certificate(s) it issued revoked with it",
                 x->rev.issued_revoked);
    }
    return proved_check(&r, x->pr, note);
}

/* The CA whose list carries a revoked certificate of this profile. */
static smki_ca_kind list_of(smki_profile_id p)
{
    switch (p) {
    case SMKI_PROFILE_ORGANISATION: return SMKI_CA_OCA;
    case SMKI_PROFILE_DCCKI_SERVER:
    case SMKI_PROFILE_DCCKI_CLIENT: return SMKI_CA_DCCKI_ICA;
    case SMKI_PROFILE_DCCKI_ICA: return SMKI_CA_DCCKI_ROOT;
    default: return SMKI_CA_ROOT; /* the SMKI issuing CAs: the root's ARL */
    }
}

typedef struct {
    smki_ra *ra;
    const smki_ra_actor *by;
    revoke_run *x;
    smki_crl_job *job;
} revoke_publish_run;

/* The revocation and the list that carries it, each with its audit entry, in one commit. */
static int revoke_publish_txn(smki_txn *t, void *arg)
{
    revoke_publish_run *p = arg;
    GUARD(smki_ra_act_in(t, p->ra, p->by, revoke_fn, p->x));
    return smki_ca_crl_in(t, p->job);
}

static int execute_revoke(smki_ra *ra, const smki_ra_actor *by, uint64_t id, smki_ra_exec_opts *o)
{
    proved pr;
    revoke_run x = {id, malloc(sizeof(smki_cert)), {{0}, {0}, 0, 0, 0}, &pr};
    ENSURE(x.cert, SMKI_E_NOMEM, "out of memory");
    smki_ra_request r;
    int rc = smki_ra_request_get(ra, id, &r);
    if (rc == 0 && r.state == SMKI_REQ_APPROVED) rc = prove(ra, &r, &pr, NULL);
    if (rc == 0 && r.state != SMKI_REQ_APPROVED) { /* refused, with the reason, by the action itself */
        rc = smki_ra_act(ra, by, 0, revoke_fn, &x);
        free(x.cert);
        return rc;
    }
    /* The list's CA, from the certificate; its key opened before the transaction. */
    if (rc == 0) rc = smki_ca_cert_get(&ra->ca, r.issuer_ski, r.serial, x.cert);
    smki_ca_kind k = rc == 0 ? list_of(x.cert->profile) : SMKI_CA_OCA;
    char env[SMKI_ENV_NAME_MAX];
    snprintf(env, sizeof env, "%s", rc == 0 ? x.cert->env : r.env);
    int64_t interval = 0;
    if (rc == 0) rc = smki_ca_crl_interval(o ? o->conf : NULL, env, k, &interval);
    ra_crl_run cr = {ra, by, NULL, ""};
    smki_crl_opts co = {o ? o->hsm : NULL, o ? o->home : NULL, 0, interval, smki_ra_crl_hook, &cr};
    smki_crl_job *job = NULL;
    if (rc == 0) rc = smki_ca_crl_begin(&ra->ca, env, k, &co, &job);
    revoke_publish_run p = {ra, by, &x, job};
    if (rc == 0) rc = smki_store_write(ra->store, revoke_publish_txn, &p);
    free(x.cert);
    if (rc < 0) {
        smki_ca_crl_job_free(job);
        return rc;
    }
    smki_crl crl;
    int arc = smki_ra_anchor(ra); /* committed: the new head outside the store, whatever becomes of the file */
    rc = smki_ca_crl_end(job, &crl);
    if (rc == 0 && arc < 0) {
        smki_crl_clear(&crl);
        return arc;
    }
    if (rc < 0)
        return smki_error_wrap("request %llu: the certificate is revoked and its %s recorded (both audited), but "
                               "the file was not written (publish again with 'smki ca %s --env %s --operator NAME')",
                               (unsigned long long)id, smki_ca_kind_is_root(k) ? "ARL" : "CRL",
                               smki_ca_kind_is_root(k) ? "arl" : "crl", env);
    if (o) {
        o->crl_number = crl.number;
        snprintf(o->crl_path, sizeof o->crl_path, "%s", crl.path);
    }
    smki_crl_clear(&crl);
    return 0;
}

/* ---- CA compromise recovery ------------------------------------------------------------------- */

typedef struct {
    uint64_t id;
    int step; /* 1 revoke the CA, 2 intent, 3 successor recorded, 4 a group re-issued */
    const smki_ca_record *ca;  /* steps 1, 2: the compromised CA; 3: the successor */
    size_t live;               /* step 2 */
    uint32_t from, n;          /* step 4 */
    smki_cert *certs;
    const uint8_t *old_serials; /* n * SMKI_SERIAL_LEN */
    smki_cert *revoked;
    const proved *pr;
} recover_run;

static int recover_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    recover_run *x = arg;
    smki_ra_request r;
    GUARD(approved_get_txn(t, ra, x->id, &r));
    const char *kind = smki_ca_kind_name((smki_ca_kind)r.ca_kind);
    char hx[2 * SMKI_SERIAL_LEN + 1];
    snprintf(note->object, sizeof note->object, "request %llu", (unsigned long long)r.id);
    if (x->step == 1) {
        smki_revoke_req q = {x->ca->cert.serial, x->ca->cert.issuer_ski, r.env, SMKI_REASON_CA_COMPROMISE, smki_ra_now(ra)};
        smki_revocation rev;
        GUARD(smki_ca_revoke_txn(t, &ra->ca, &q, x->revoked, &rev));
        smki_hex_encode(x->ca->cert.serial, SMKI_SERIAL_LEN, hx, 0);
        snprintf(note->action, sizeof note->action, "recover-revoke-ca");
        snprintf(note->detail, sizeof note->detail,
                 "revoked the %s of %s, serial %s: cACompromise; %zu certificate(s) it issued revoked with it", kind,
                 r.env, hx, rev.issued_revoked);
        return proved_check(&r, x->pr, note); /* the request itself is unchanged: the next step reads the CA's status */
    }
    if (x->step == 2) {
        ENSURE(!r.has_result, SMKI_E_INTERNAL, "request %llu: recovery intent recorded twice",
               (unsigned long long)r.id);
        r.has_result = 1;
        memcpy(r.serial, x->ca->cert.serial, SMKI_SERIAL_LEN);
        memcpy(r.issuer_ski, x->ca->cert.ski, SMKI_KEYID_LEN); /* the issuer of the certificates to re-issue */
        r.csr_count = (uint32_t)x->live;
        smki_hex_encode(r.serial, SMKI_SERIAL_LEN, hx, 0);
        snprintf(note->action, sizeof note->action, "recover-successor-begin");
        snprintf(note->detail, sizeof note->detail, "making the successor of the %s of %s (revoked serial %s); %zu "
                 "live organisation certificate(s) to re-issue", kind, r.env, hx, x->live);
    } else if (x->step == 3) {
        r.has_new_ca = 1;
        memcpy(r.new_ca_serial, x->ca->cert.serial, SMKI_SERIAL_LEN);
        memcpy(r.result_serial, x->ca->cert.serial, SMKI_SERIAL_LEN);
        memcpy(r.result_issuer, x->ca->cert.issuer_ski, SMKI_KEYID_LEN);
        smki_hex_encode(r.new_ca_serial, SMKI_SERIAL_LEN, hx, 0);
        snprintf(note->action, sizeof note->action, "ca-successor");
        snprintf(note->detail, sizeof note->detail, "the %s of %s is now serial %s (key %.300s)", kind, r.env, hx,
                 x->ca->key_ref);
    } else {
        ENSURE(r.done_count == x->from, SMKI_E_LOCKED,
               "request %llu moved on while this execution ran (another operator is executing it)",
               (unsigned long long)r.id);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        ENSURE(md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1, SMKI_E_CRYPTO, "SHA-256");
        int rc = 0;
        for (uint32_t i = 0; rc == 0 && i < x->n; i++) {
            rc = smki_ca_cert_put(t, &ra->ca, &x->certs[i]);
            EVP_DigestUpdate(md, x->old_serials + (size_t)i * SMKI_SERIAL_LEN, SMKI_SERIAL_LEN);
            EVP_DigestUpdate(md, x->certs[i].serial, SMKI_SERIAL_LEN);
        }
        uint8_t h[32];
        unsigned hl = 32;
        if (rc == 0) EVP_DigestFinal_ex(md, h, &hl);
        EVP_MD_CTX_free(md);
        GUARD(rc);
        r.done_count = x->from + x->n;
        char hh[65];
        smki_hex_encode(h, 32, hh, 0);
        snprintf(note->action, sizeof note->action, "recover-reissue");
        snprintf(note->detail, sizeof note->detail,
                 "re-issued organisation certificates %u to %u of %u under the successor; SHA-256 of the (old, new) "
                 "serial pairs %s",
                 x->from + (x->n ? 1 : 0), x->from + x->n, r.csr_count, hh);
    }
    GUARD(proved_check(&r, x->pr, note));
    if (r.has_new_ca && r.done_count >= r.csr_count) r.state = SMKI_REQ_DONE;
    r.updated = smki_ra_now(ra);
    return req_put(t, ra, &r);
}

typedef struct {
    const uint8_t *issuer_ski;
    smki_cert *items;
    size_t n, cap;
    smki_ca_db *db;
    smki_revocation ca_rev; /* the compromised CA's revocation */
} live_list;

static int live_one(const smki_cert *c, void *arg)
{
    live_list *l = arg;
    if (memcmp(c->issuer_ski, l->issuer_ski, SMKI_KEYID_LEN) != 0) return 0;
    /* Those that were in use when the CA was revoked: revoked with it, at its time, for
     * cACompromise (smki_ca_revoke_txn marks them); not those revoked before. */
    smki_revocation rev;
    GUARD(smki_ca_revocation_get(l->db, c->issuer_ski, c->serial, &rev));
    if (rev.reason != SMKI_REASON_CA_COMPROMISE || rev.revoked_at != l->ca_rev.revoked_at) return 0;
    return smki_ra_cert_push(&l->items, &l->n, &l->cap, 64, c);
}

/* The organisation certificates a compromised (revoked) CA issued that were live when it
 * was revoked, in the store's (stable) order. */
static int live_certs(smki_ra *ra, const char *env, const smki_cert *ca, live_list *l)
{
    l->issuer_ski = ca->ski;
    l->db = &ra->ca;
    GUARD(smki_ca_revocation_get(&ra->ca, ca->issuer_ski, ca->serial, &l->ca_rev));
    smki_ca_query q = SMKI_CA_QUERY_ALL;
    q.env = env;
    q.issuer_ski = ca->ski;
    q.profile = SMKI_PROFILE_ORGANISATION;
    q.status = SMKI_STATUS_REVOKED;
    return smki_ca_find(&ra->ca, &q, live_one, l);
}

static int execute_recover(smki_ra *ra, const smki_ra_actor *by, uint64_t id, smki_ra_exec_opts *o)
{
    ENSURE(o && o->home, SMKI_E_USAGE, "a recovery needs the home (where the successor's certificate is written)");
    smki_ra_request r;
    GUARD(smki_ra_request_get(ra, id, &r));
    smki_ca_kind kind = (smki_ca_kind)r.ca_kind;
    smki_ca_record *rec = malloc(sizeof *rec);
    smki_cert *revoked = malloc(sizeof *revoked);
    live_list live = {NULL, NULL, 0, 0, NULL, {{0}, {0}, 0, 0, 0}};
    int rc = rec && revoked ? smki_ca_get(&ra->ca, r.env, kind, rec) : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    recover_run x;
    memset(&x, 0, sizeof x);
    x.id = id;
    x.ca = rec;
    x.revoked = revoked;
    proved pr;
    x.pr = &pr;
    if (rc == 0) rc = prove(ra, &r, &pr, NULL);
    /* 1. The compromised CA onto the root's ARL, which is published (again, on a run that
     * resumes before the intent: publishing twice only numbers the list anew). */
    if (rc == 0 && !r.has_result) {
        if (rec->cert.status != SMKI_STATUS_REVOKED) {
            x.step = 1;
            rc = smki_ra_act(ra, by, 0, recover_fn, &x);
        }
        int64_t interval = 0;
        smki_crl crl;
        memset(&crl, 0, sizeof crl);
        if (rc == 0) rc = smki_ca_crl_interval(o->conf, r.env, SMKI_CA_ROOT, &interval);
        smki_crl_opts co = {o->hsm, o->home, 0, interval, NULL, NULL};
        if (rc == 0) rc = smki_ra_crl_publish(ra, by, r.env, SMKI_CA_ROOT, &co, &crl);
        smki_crl_clear(&crl);
        if (rc == 0) rc = smki_ca_get(&ra->ca, r.env, kind, rec);
    }
    /* 2. The intent, written before the successor is made (the log fails closed). */
    if (rc == 0 && !r.has_result) {
        rc = kind == SMKI_CA_OCA ? live_certs(ra, r.env, &rec->cert, &live) : 0;
        x.step = 2;
        x.live = live.n;
        if (rc == 0) rc = smki_ra_act(ra, by, 0, recover_fn, &x);
        if (rc == 0) rc = smki_ra_request_get(ra, id, &r);
    }
    /* 3. The successor; a run interrupted after making it finds it in place. */
    if (rc == 0 && !r.has_new_ca) {
        if (memcmp(rec->cert.serial, r.serial, SMKI_SERIAL_LEN) == 0) {
            smki_ca_init_item item;
            smki_ca_init_opts io = {o->hsm, o->home, 0, NULL, NULL};
            rc = smki_ca_successor(&ra->ca, r.env, kind, o->conf, &io, &item);
            if (rc == 0) rc = smki_ca_get(&ra->ca, r.env, kind, rec);
        }
        x.step = 3;
        if (rc == 0) rc = smki_ra_act(ra, by, 0, recover_fn, &x);
        if (rc == 0) rc = smki_ra_request_get(ra, id, &r);
    }
    /* 4. Re-issue under the successor, in group commits. */
    if (rc == 0 && r.state == SMKI_REQ_APPROVED) {
        if (!live.items && kind == SMKI_CA_OCA) {
            /* The compromised CA as the request recorded it (rec may be its successor now;
             * both are certified by the same root). */
            smki_cert *old_ca = calloc(1, sizeof *old_ca);
            rc = old_ca ? 0 : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
            if (rc == 0) {
                memcpy(old_ca->ski, r.issuer_ski, SMKI_KEYID_LEN);
                memcpy(old_ca->serial, r.serial, SMKI_SERIAL_LEN);
                memcpy(old_ca->issuer_ski, rec->cert.issuer_ski, SMKI_KEYID_LEN);
                rc = live_certs(ra, r.env, old_ca, &live);
            }
            free(old_ca);
        }
        if (rc == 0 && live.n != r.csr_count)
            rc = SMKI_FAIL(SMKI_E_CORRUPT, "request %llu: %zu live certificates of the compromised CA, %u when the "
                           "recovery began", (unsigned long long)id, live.n, r.csr_count);
        smki_ca_issuer *is = NULL;
        if (rc == 0) rc = smki_ca_issuer_open(&ra->ca, r.env, SMKI_PROFILE_ORGANISATION, o->hsm, &is);
        size_t group = ra->pol.batch_group;
        smki_cert *certs = rc == 0 ? calloc(group, sizeof *certs) : NULL;
        uint8_t *old = rc == 0 ? calloc(group, SMKI_SERIAL_LEN) : NULL;
        if (rc == 0 && (!certs || !old)) rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
        uint32_t from = r.done_count;
        do {
            uint32_t n = (uint32_t)(r.csr_count - from < group ? r.csr_count - from : group);
            for (uint32_t i = 0; rc == 0 && i < n; i++) {
                rc = smki_ca_reissue(is, &live.items[from + i], &certs[i]);
                memcpy(old + (size_t)i * SMKI_SERIAL_LEN, live.items[from + i].serial, SMKI_SERIAL_LEN);
            }
            x.step = 4;
            x.from = from;
            x.n = n;
            x.certs = certs;
            x.old_serials = old;
            if (rc == 0) rc = smki_ra_act(ra, by, 0, recover_fn, &x);
            if (rc == 0) {
                from += n;
                if (o->progress && r.csr_count) o->progress(from, r.csr_count, o->progress_arg);
            }
        } while (rc == 0 && from < r.csr_count);
        free(certs);
        free(old);
        smki_ca_issuer_free(is);
    }
    free(live.items);
    free(rec);
    free(revoked);
    return rc;
}

/* ---- Policy requests ------------------------------------------------------------------------- */

typedef struct {
    uint64_t id;
    const proved *pr;
} policy_run;

static int policy_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    policy_run *x = arg;
    smki_ra_request r;
    GUARD(approved_get_txn(t, ra, x->id, &r));
    smki_ra_policy now = ra->pol;
    GUARD(smki_ra_approvals_get(t, ra, &now.approvals_org, &now.approvals_sensitive));
    unsigned org, sens;
    GUARD(policy_check(&now, r.cn, r.reason, &org, &sens));
    unsigned was = strcmp(r.cn, "approvals_organisation") == 0 ? now.approvals_org : now.approvals_sensitive;
    GUARD(smki_ra_approvals_put(t, ra, org, sens));
    r.state = SMKI_REQ_DONE;
    r.updated = smki_ra_now(ra);
    GUARD(req_put(t, ra, &r));
    snprintf(note->action, sizeof note->action, "request-execute");
    snprintf(note->object, sizeof note->object, "request %llu", (unsigned long long)r.id);
    snprintf(note->detail, sizeof note->detail, "set %s = %d (was %u)", r.cn, r.reason, was);
    return proved_check(&r, x->pr, note);
}

static int execute_policy(smki_ra *ra, const smki_ra_actor *by, const smki_ra_request *r)
{
    proved pr;
    GUARD(prove(ra, r, &pr, NULL));
    policy_run x = {r->id, &pr};
    int rc = smki_ra_act(ra, by, 0, policy_fn, &x);
    if (rc < 0) GUARD(smki_ra_approvals_load(ra)); /* ra->pol as the store holds it */
    return rc;
}

int smki_ra_request_execute(smki_ra *ra, const smki_ra_actor *by, uint64_t id, smki_ra_exec_opts *o)
{
    smki_ra_request r;
    GUARD(smki_ra_request_get(ra, id, &r));
    ENSURE(r.state == SMKI_REQ_APPROVED, SMKI_E_REFUSED, "request %llu is %s: only an approved request is executed%s",
           (unsigned long long)id, smki_req_state_name(r.state),
           r.state == SMKI_REQ_PENDING || r.state == SMKI_REQ_HELD ? " (it awaits approvals)" : "");
    if (r.type == SMKI_REQ_REVOKE) return execute_revoke(ra, by, id, o);
    if (r.type == SMKI_REQ_RECOVER) return execute_recover(ra, by, id, o);
    if (r.type == SMKI_REQ_POLICY) return execute_policy(ra, by, &r);
    ENSURE(r.type == SMKI_REQ_ORGANISATION || r.type == SMKI_REQ_DEVICE_BATCH || is_tls(r.type), SMKI_E_USAGE,
           "request %llu is a %s request: execute it with its own command", (unsigned long long)id,
           smki_req_type_name(r.type));
    smki_profile_id leaf = r.type == SMKI_REQ_ORGANISATION ? SMKI_PROFILE_ORGANISATION
                           : is_tls(r.type)                ? tls_profile(r.type)
                                                           : SMKI_PROFILE_DEVICE;
    GUARD(check_issuing_ca(ra, r.env, leaf));
    smki_ca_issuer *is = NULL, *own = NULL;
    int fits = 0;
    if (o && o->issuer) GUARD(smki_ra_issuer_is_current(ra, o->issuer, r.env, leaf, &fits));
    if (!fits) GUARD(smki_ca_issuer_open(&ra->ca, r.env, leaf, o ? o->hsm : NULL, &own));
    is = fits ? o->issuer : own;
    size_t group = r.type == SMKI_REQ_DEVICE_BATCH ? ra->pol.batch_group : 1;
    char *names = is_tls(r.type) ? malloc(NAMES_MAX) : NULL;
    const char *dns[16], *ips[16];
    size_t n_dns = 0, n_ips = 0;
    int nrc = 0;
    if (is_tls(r.type)) {
        nrc = names ? smki_ra_request_names(ra, id, names, NAMES_MAX) : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
        if (nrc == 0) nrc = names_split(names, dns, &n_dns, ips, &n_ips, 16);
    }
    smki_cert *certs = calloc(group, sizeof *certs);
    smki_csr **csrs = calloc(group, sizeof *csrs);
    uint8_t **der = calloc(group, sizeof *der);
    size_t *len = calloc(group, sizeof *len);
    uint8_t(*verified)[32] = calloc(group, sizeof *verified);
    int *has_verified = calloc(group, sizeof *has_verified);
    /* The approvals proved first: every CSR built below must be one they signed. */
    uint8_t(*approved)[32] = calloc(r.csr_count ? r.csr_count : 1, sizeof *approved);
    proved pr;
    int rc = nrc;
    if (rc == 0 && !(certs && csrs && der && len && verified && has_verified && approved))
        rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    if (rc == 0) rc = prove(ra, &r, &pr, approved);
    uint32_t from = r.done_count;
    while (rc == 0 && from < r.csr_count) {
        uint32_t n = (uint32_t)(r.csr_count - from < group ? r.csr_count - from : group);
        csr_run c = {ra, id, from, n, der, len, verified, has_verified};
        rc = smki_store_read(ra->store, csr_txn, &c);
        /* Build (sign and lint) outside the transaction: only the store work is inside. The
         * CA's intake parses every CSR strictly again; its proof of possession, verified at
         * submission, is verified again only if the octets differ from those recorded then. */
        for (uint32_t i = 0; rc == 0 && i < n; i++) {
            uint8_t h[32];
            unsigned hl = 32;
            if (EVP_Digest(der[i], len[i], h, &hl, EVP_sha256(), NULL) != 1 || memcmp(h, approved[from + i], 32) != 0)
                rc = SMKI_FAIL(SMKI_E_REFUSED, "CSR %u of request %llu changed after its approvals were proved: "
                               "nothing of its group was issued", from + i + 1, (unsigned long long)id);
            if (rc < 0) break;
            smki_csr_parse_opts po = {has_verified[i] ? verified[i] : NULL, NULL};
            rc = smki_csr_parse_ex(der[i], len[i], &po, &csrs[i]);
            smki_issue_req q = {csrs[i], leaf, r.role, r.type == SMKI_REQ_ORGANISATION ? &r.eui : NULL,
                                r.cn[0] ? r.cn : NULL, 0, 0};
            smki_tls_req tq = {csrs[i], leaf, r.party, r.cn[0] ? r.cn : NULL, dns, n_dns, ips, n_ips, 0};
            if (rc == 0 && is_tls(r.type)) rc = smki_ca_build_tls(is, &tq, &certs[i], NULL);
            else if (rc == 0) rc = smki_ca_build(is, &q, &certs[i]);
            if (rc < 0) smki_error_wrap("CSR %u of request %llu", from + i + 1, (unsigned long long)id);
        }
        exec_run x = {id, from, n, certs, csrs, 0, &pr};
        if (rc == 0) rc = smki_ra_act_via(ra, by, o ? o->via : NULL, exec_fn, &x);
        for (uint32_t i = 0; i < n; i++) {
            smki_csr_free(csrs[i]);
            csrs[i] = NULL;
            free(der[i]);
            der[i] = NULL;
        }
        if (rc == 0) {
            from += n;
            if (o && o->progress) o->progress(from, r.csr_count, o->progress_arg);
        }
    }
    free(certs);
    free(csrs);
    free(der);
    free(len);
    free(verified);
    free(has_verified);
    free(approved);
    free(names);
    smki_ca_issuer_free(own);
    return rc;
}

/* ---- Direct issuance ('smki ca issue' under an RA) ------------------------------------------------ */

static int env_listed(const char *list, const char *env)
{
    size_t el = strlen(env);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',') p++;
        const char *end = p;
        while (*end && *end != ',' && *end != ' ') end++;
        if ((size_t)(end - p) == el && strncmp(p, env, el) == 0) return 1;
        p = end;
    }
    return 0;
}

int smki_ra_env_listed(const char *list, const char *env) { return env_listed(list, env); }

/* "i/<party>/<hex of the submission key>" in meta: the certificate (its issuer's SKI and
 * serial) that a keyed direct issuance made for that Party. */
static void issued_key_name(const ra_direct_opts *o, char out[SMKI_RA_NAME_MAX + 72])
{
    char hx[65];
    smki_hex_encode(o->submission_key, 32, hx, 0);
    snprintf(out, SMKI_RA_NAME_MAX + 72, "i/%s/%s", o->party, hx);
}

typedef struct {
    int seen;
    uint8_t issuer[SMKI_KEYID_LEN], serial[SMKI_SERIAL_LEN];
} direct_seen;

/* In the issuing transaction, first: a key seen before ends it (SMKI_E_EXISTS, nothing
 * written) with the certificate it issued in *seen. */
static int direct_replay_txn(smki_txn *t, smki_ra *ra, const ra_direct_opts *o, direct_seen *seen)
{
    if (!o || !o->submission_key) return 0;
    ENSURE(o->party && *o->party, SMKI_E_USAGE, "a submission key is a Party's: name the Party");
    char name[SMKI_RA_NAME_MAX + 72];
    issued_key_name(o, name);
    const void *v;
    size_t n;
    int rc = smki_txn_get(t, ra->db.meta, name, strlen(name), &v, &n);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        return 0;
    }
    GUARD(rc);
    ENSURE(n == SMKI_KEYID_LEN + SMKI_SERIAL_LEN, SMKI_E_CORRUPT, "a submission key record is damaged");
    memcpy(seen->issuer, v, SMKI_KEYID_LEN);
    memcpy(seen->serial, (const uint8_t *)v + SMKI_KEYID_LEN, SMKI_SERIAL_LEN);
    seen->seen = 1;
    return SMKI_FAIL(SMKI_E_EXISTS, "party %s asked for this before", o->party);
}

static int direct_record_txn(smki_txn *t, smki_ra *ra, const ra_direct_opts *o, const smki_cert *c)
{
    if (!o || !o->submission_key) return 0;
    char name[SMKI_RA_NAME_MAX + 72];
    issued_key_name(o, name);
    uint8_t b[SMKI_KEYID_LEN + SMKI_SERIAL_LEN];
    memcpy(b, c->issuer_ski, SMKI_KEYID_LEN);
    memcpy(b + SMKI_KEYID_LEN, c->serial, SMKI_SERIAL_LEN);
    return smki_txn_put(t, ra->db.meta, name, strlen(name), b, sizeof b, SMKI_PUT_NOOVERWRITE);
}

/* The action's outcome: a replayed key gives back the certificate issued the first time. */
static int direct_finish(smki_ra *ra, int rc, const direct_seen *seen, smki_cert *out)
{
    if (rc != SMKI_E_EXISTS || !seen->seen) return rc;
    smki_error_clear();
    return smki_ca_cert_get(&ra->ca_view, seen->issuer, seen->serial, out);
}

typedef struct {
    const smki_ra_eligibility *e;
    const smki_cert *cert;
    const ra_direct_opts *o;
    direct_seen seen;
} direct_run;

static int direct_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    direct_run *d = arg;
    GUARD(direct_replay_txn(t, ra, d->o, &d->seen));
    GUARD(smki_ra_eligible_txn(t, ra, d->e));
    if (d->o && d->o->refuse_dup) GUARD(smki_ca_check_new_device_txn(t, &ra->ca, d->cert));
    GUARD(smki_ca_cert_put(t, &ra->ca, d->cert));
    GUARD(direct_record_txn(t, ra, d->o, d->cert));
    char serial[2 * SMKI_SERIAL_LEN + 1], tx[SMKI_EUI64_TEXT_MAX] = "-";
    smki_hex_encode(d->cert->serial, SMKI_SERIAL_LEN, serial, 0);
    if (d->cert->has_eui) smki_eui64_format(&d->cert->eui, SMKI_EUI64_HYPHEN, tx);
    snprintf(note->action, sizeof note->action, "ca-issue-direct");
    snprintf(note->object, sizeof note->object, "certificate %s", serial);
    snprintf(note->detail, sizeof note->detail, "%s certificate for %s, party %s, env %s",
             smki_profile_get(d->cert->profile)->name, tx, d->e->party, d->e->env);
    return 0;
}

int smki_ra_issue_direct(smki_ra *ra, const smki_ra_actor *by, smki_ca_issuer *is, const smki_ra_eligibility *e,
                         const char *cn, smki_cert *out)
{
    return smki_ra_issue_direct_with(ra, by, is, e, cn, NULL, out);
}

int smki_ra_issue_direct_with(smki_ra *ra, const smki_ra_actor *by, smki_ca_issuer *is, const smki_ra_eligibility *e,
                    const char *cn, const ra_direct_opts *o, smki_cert *out)
{
    ENSURE(e && e->env && e->csr, SMKI_E_USAGE, "direct issuance needs an environment and a CSR");
    ENSURE(env_listed(ra->pol.direct_envs, e->env), SMKI_E_REFUSED,
           "environment %s issues only through approved RA requests ('smki ra request submit'); direct issuance is "
           "allowed in: %s",
           e->env, ra->pol.direct_envs[0] ? ra->pol.direct_envs : "no environment");
    /* The CA's own checks of the request come first (the build signs but stores nothing),
     * then the registry's, again in the transaction that records the certificate. */
    smki_issue_req q = {e->csr, e->type, e->role, e->eui, cn, 0, 0};
    smki_ra_group_expect(ra); /* a commit starting meanwhile waits a little for this one */
    int rc = smki_ca_build(is, &q, out);
    if (rc == 0) rc = smki_ra_check_eligible(ra, e);
    if (rc == 0) rc = check_issuing_ca(ra, e->env, e->type);
    if (rc < 0) {
        smki_ra_group_unexpect(ra);
        return rc;
    }
    direct_run d = {e, out, o, {0, {0}, {0}}};
    return direct_finish(ra, smki_ra_act_grouped(ra, by, o ? o->via : NULL, direct_fn, &d), &d.seen, out);
}

typedef struct {
    smki_ra_eligibility e;
    const smki_cert *cert;
    const ra_direct_opts *o;
    direct_seen seen;
} direct_tls_run;

static int direct_tls_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    direct_tls_run *d = arg;
    GUARD(direct_replay_txn(t, ra, d->o, &d->seen));
    GUARD(smki_ra_eligible_txn(t, ra, &d->e));
    GUARD(smki_ca_cert_put(t, &ra->ca, d->cert));
    GUARD(direct_record_txn(t, ra, d->o, d->cert));
    char serial[2 * SMKI_SERIAL_LEN + 1];
    smki_hex_encode(d->cert->serial, SMKI_SERIAL_LEN, serial, 0);
    snprintf(note->action, sizeof note->action, "ca-issue-direct");
    snprintf(note->object, sizeof note->object, "certificate %s", serial);
    snprintf(note->detail, sizeof note->detail, "%s certificate for party %s, env %s",
             smki_profile_get(d->cert->profile)->name, d->e.party, d->e.env);
    return 0;
}

int smki_ra_issue_tls_direct(smki_ra *ra, const smki_ra_actor *by, smki_ca_issuer *is, const char *env,
                             const smki_tls_req *r, smki_cert *out)
{
    return smki_ra_issue_tls_direct_with(ra, by, is, env, r, NULL, out);
}

int smki_ra_issue_tls_direct_with(smki_ra *ra, const smki_ra_actor *by, smki_ca_issuer *is, const char *env,
                        const smki_tls_req *r, const ra_direct_opts *o, smki_cert *out)
{
    ENSURE(ra && env && r && r->csr && out, SMKI_E_USAGE, "direct issuance needs an environment and a CSR");
    ENSURE(r->party && *r->party, SMKI_E_REFUSED,
           "DCCKI TLS certificates of this store go only to registered Parties: name the Party (--party SIGNIFIER)");
    GUARD(smki_ra_check_name("a Party Signifier", r->party));
    ENSURE(env_listed(ra->pol.direct_envs, env), SMKI_E_REFUSED,
           "environment %s issues only through approved RA requests ('smki ra request submit --type %s'); direct "
           "issuance is allowed in: %s",
           env, smki_profile_get(r->profile)->name, ra->pol.direct_envs[0] ? ra->pol.direct_envs : "no environment");
    /* The CA's checks (and signature: nothing stored), then the registry's, again in the
     * transaction that records the certificate. */
    smki_ra_group_expect(ra); /* a commit starting meanwhile waits a little for this one */
    direct_tls_run d = {{r->party, env, r->profile, -1, NULL, r->csr, 0}, out, o, {0, {0}, {0}}};
    int rc = smki_ca_build_tls(is, r, out, NULL);
    if (rc == 0) rc = smki_ra_check_eligible(ra, &d.e);
    if (rc == 0) rc = check_issuing_ca(ra, env, r->profile);
    if (rc < 0) {
        smki_ra_group_unexpect(ra);
        return rc;
    }
    return direct_finish(ra, smki_ra_act_grouped(ra, by, o ? o->via : NULL, direct_tls_fn, &d), &d.seen, out);
}

int smki_ra_issues_directly(const smki_ra *ra, const char *env)
{
    return ra && env && env_listed(ra->pol.direct_envs, env);
}

/* ---- Direct device batches ('smki ca batch' under an RA) ----------------------------------------- */

/* The eligibility facts that are the same for every CSR of a batch (the Party's standing,
 * every EUI-64 block), read once per transaction instead of once per CSR: each is a
 * round trip on PostgreSQL. The workers check each CSR against the facts of the last
 * transaction that read them (the start, then each group commit); each group's
 * transaction reads them again under the writer's lock and checks every certificate it
 * records against those, so a change between the two (a Party suspended, a block made
 * central) refuses the whole group, as it did when the workers read per CSR. */
typedef struct {
    int code;      /* 0, or the standing's refusal */
    char why[512]; /* its message */
    smki_ra_party p;
    smki_ra_blocks blocks;
} gate_facts;

typedef struct {
    smki_ra *ra;
    const smki_ra_actor *by;
    const char *party, *env;
    int asks;           /* the Party asks for itself (smki_ra_eligibility.subscriber_asks) */
    const char *via;    /* how the request came (the audit entry's via), or NULL */
    pthread_mutex_t mu; /* guards facts: workers read it while the committer replaces it */
    gate_facts facts;
} batch_gate;

/* Read the facts in transaction t into *f (a standing refused is a fact; a store failure
 * is returned). */
static int facts_read(smki_txn *t, const batch_gate *g, gate_facts *f)
{
    smki_ra_eligibility e = {g->party, g->env, SMKI_PROFILE_DEVICE, -1, NULL, NULL, 0};
    f->code = smki_ra_standing_txn(t, g->ra, &e, &f->p);
    if (f->code < 0) {
        snprintf(f->why, sizeof f->why, "%s", smki_error_msg());
        smki_error_clear();
        return f->code == SMKI_E_REFUSED || f->code == SMKI_E_NOTFOUND ? 0 : f->code;
    }
    return smki_ra_blocks_load_txn(t, g->ra, &f->blocks);
}

/* The facts f become the workers' (f's blocks move into the gate). */
static void facts_publish(batch_gate *g, gate_facts *f)
{
    pthread_mutex_lock(&g->mu);
    smki_ra_blocks_free(&g->facts.blocks);
    g->facts = *f;
    f->blocks = (smki_ra_blocks){0};
    pthread_mutex_unlock(&g->mu);
}

/* Each CSR, on a worker of the CA's batch: the whole eligibility check, against the facts. */
static int gate_check(const smki_csr *csr, void *arg)
{
    batch_gate *g = arg;
    smki_ra_eligibility e = {g->party, g->env, SMKI_PROFILE_DEVICE, -1, NULL, csr, g->asks};
    pthread_mutex_lock(&g->mu);
    int rc = g->facts.code < 0 ? SMKI_FAIL(g->facts.code, "%s", g->facts.why)
                               : smki_ra_device_eligible(&g->facts.p, &g->facts.blocks, &e);
    pthread_mutex_unlock(&g->mu);
    return rc;
}

typedef struct {
    batch_gate *g;
    const smki_cert *const *certs;
    size_t n;
} gate_group_run;

static int gate_group_check(const gate_group_run *x, const gate_facts *f, EVP_MD_CTX *md)
{
    if (f->code < 0) return SMKI_FAIL(f->code, "%s", f->why);
    for (size_t i = 0; i < x->n; i++) {
        smki_ra_eligibility e = {x->g->party, x->g->env, SMKI_PROFILE_DEVICE, -1, &x->certs[i]->eui, NULL,
                                 x->g->asks};
        GUARD(smki_ra_device_eligible(&f->p, &f->blocks, &e));
        EVP_DigestUpdate(md, x->certs[i]->serial, SMKI_SERIAL_LEN);
    }
    return 0;
}

static int gate_group_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    (void)ra;
    gate_group_run *x = arg;
    /* Checked again in the transaction that records them: a Party suspended (or a block
     * made central) while the group was signed gets none of it. */
    gate_facts f = {0};
    GUARD(facts_read(t, x->g, &f));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? 0 : SMKI_FAIL(SMKI_E_CRYPTO, "SHA-256");
    if (rc == 0) rc = gate_group_check(x, &f, md);
    uint8_t h[32];
    unsigned hl = 32;
    if (rc == 0) EVP_DigestFinal_ex(md, h, &hl);
    EVP_MD_CTX_free(md);
    if (rc == 0) facts_publish(x->g, &f);
    smki_ra_blocks_free(&f.blocks);
    GUARD(rc);
    char hh[65], first[2 * SMKI_SERIAL_LEN + 1];
    smki_hex_encode(h, 32, hh, 0);
    smki_hex_encode(x->certs[0]->serial, SMKI_SERIAL_LEN, first, 0);
    snprintf(note->action, sizeof note->action, "ca-batch-direct");
    snprintf(note->object, sizeof note->object, "device batch, party %s, env %s", x->g->party, x->g->env);
    snprintf(note->detail, sizeof note->detail,
             "issued %zu device certificate(s), the first serial %s; SHA-256 of their serials %s", x->n, first, hh);
    return 0;
}

/* In the CA's group commit: the group's audit entry (and the actor's check) join it. */
static int gate_group(smki_txn *t, const smki_cert *const *certs, size_t n, void *arg)
{
    batch_gate *g = arg;
    gate_group_run x = {g, certs, n};
    return smki_ra_act_in_via(t, g->ra, g->by, g->via, gate_group_fn, &x);
}

/* The operator and the Party's standing, refused whole; then the workers' first facts. */
static int gate_begin_txn(smki_txn *t, void *arg)
{
    batch_gate *g = arg;
    GUARD(smki_ra_check_actor(t, g->ra, g->by));
    gate_facts f = {0};
    int rc = facts_read(t, g, &f);
    if (rc == 0 && f.code < 0) rc = SMKI_FAIL(f.code, "%s", f.why);
    if (rc == 0) facts_publish(g, &f);
    smki_ra_blocks_free(&f.blocks);
    return rc;
}

/* After each group commit of a direct batch (on the committing thread): the new head
 * anchored beside the checkpoint key, then the caller's progress. */
typedef struct {
    smki_ra *ra;
    size_t commits;
    int failed;
    smki_ca_batch_progress_fn user;
    void *user_arg;
} batch_anchor;

static void batch_anchored(const smki_ca_batch_report *r, void *arg)
{
    batch_anchor *a = arg;
    if (r->commits != a->commits) {
        a->commits = r->commits;
        if (smki_ra_anchor(a->ra) < 0) {
            if (!a->failed) a->failed = smki_error_code();
            smki_error_clear();
        }
    }
    if (a->user) a->user(r, a->user_arg);
}

int smki_ra_batch_direct(smki_ra *ra, const smki_ra_actor *by, smki_ca_issuer *is, const char *party, const char *env,
                         const smki_ca_batch_input *in, const smki_ca_batch_opts *o, smki_ca_batch_report **out)
{
    return smki_ra_batch_direct_as(ra, by, is, party, env, 0, NULL, in, o, out);
}

/* Every CSR of in through the gate's check, before any is issued: the first refusal,
 * named by its item, refuses the whole batch. */
int smki_ra_batch_check_all(smki_ra *ra, const smki_ra_actor *by, const char *party, const char *env, int asks,
                            const smki_ca_batch_input *in)
{
    ENSURE(ra && in, SMKI_E_USAGE, "smki_ra_batch_check_all: missing argument");
    ENSURE(party && *party, SMKI_E_REFUSED, "device certificates go only to registered Parties: name the Party");
    batch_gate g = {ra, by, party, env, asks, NULL, PTHREAD_MUTEX_INITIALIZER, {0}};
    int rc = smki_store_read(ra->store, gate_begin_txn, &g);
    for (size_t i = 0; rc == 0 && i < smki_ca_batch_input_count(in); i++) {
        smki_csr *csr = NULL;
        rc = smki_ca_batch_input_csr(in, i, &csr);
        if (rc == 0) rc = gate_check(csr, &g);
        smki_csr_free(csr);
        if (rc < 0) rc = smki_error_wrap("%s", smki_ca_batch_input_name(in, i));
    }
    smki_ra_blocks_free(&g.facts.blocks);
    return rc;
}

int smki_ra_batch_direct_as(smki_ra *ra, const smki_ra_actor *by, smki_ca_issuer *is, const char *party,
                            const char *env, int asks, const char *via, const smki_ca_batch_input *in,
                            const smki_ca_batch_opts *o, smki_ca_batch_report **out)
{
    ENSURE(ra && is && in && o && out, SMKI_E_USAGE, "smki_ra_batch_direct: missing argument");
    *out = NULL;
    ENSURE(party && *party, SMKI_E_REFUSED,
           "device certificates of this store go only to registered Parties: name the requesting Party (--party)");
    ENSURE(env && strcmp(smki_ca_issuer_env(is)->name, env) == 0, SMKI_E_USAGE,
           "smki_ra_batch_direct: the device CA is not environment %s's", env ? env : "(none)");
    ENSURE(by && by->name && by->key, SMKI_E_USAGE,
           "no operator: a batch in a store with an RA is an RA action, taken by a registered operator with their "
           "own key (--operator NAME --operator-key KEY)");
    ENSURE(env_listed(ra->pol.direct_envs, env), SMKI_E_REFUSED,
           "environment %s issues device certificates only through approved RA requests ('smki ra request submit "
           "--type device-batch --party %s --env %s --csr-dir DIR', then approvals and 'smki ra request execute'); "
           "direct batches are allowed in: %s",
           env, party, env, ra->pol.direct_envs[0] ? ra->pol.direct_envs : "no environment");
    batch_gate g = {ra, by, party, env, asks, via, PTHREAD_MUTEX_INITIALIZER, {0}};
    /* The operator and the Party's standing first: refused whole, before any CSR is read. */
    int rc = smki_store_read(ra->store, gate_begin_txn, &g);
    if (rc == 0) rc = check_issuing_ca(ra, env, SMKI_PROFILE_DEVICE);
    if (rc < 0) {
        smki_ra_blocks_free(&g.facts.blocks);
        return rc;
    }
    smki_ca_batch_opts go = *o;
    batch_anchor ba = {ra, 0, 0, o->progress, o->progress_arg};
    go.check = gate_check;
    go.on_group = gate_group;
    go.gate_arg = &g;
    go.progress = batch_anchored;
    go.progress_arg = &ba;
    rc = smki_ca_batch_run(is, &ra->ca, in, &go, out);
    smki_ra_blocks_free(&g.facts.blocks);
    int arc = smki_ra_anchor(ra); /* the groups committed, even when a later one failed */
    if (rc < 0) return rc;
    if (ba.failed)
        return SMKI_FAIL(ba.failed, "the batch is recorded, but anchoring a group commit's audit entries beside the "
                                    "checkpoint key failed (the next action anchors them)");
    return arc;
}

typedef struct {
    const smki_revoke_req *r;
    smki_cert *out;
    smki_revocation *rev;
} direct_revoke_run;

static int direct_revoke_fn(smki_txn *t, smki_ra *ra, void *arg, ra_note *note)
{
    direct_revoke_run *d = arg;
    /* The CA's own refusals first (no such serial, a device certificate, ...); then the
     * RA's rule, which aborts the transaction: nothing is written. */
    smki_revocation rev;
    GUARD(smki_ca_revoke_txn(t, &ra->ca, d->r, d->out, &rev));
    if (d->rev) *d->rev = rev;
    ENSURE(env_listed(ra->pol.direct_envs, d->r->env), SMKI_E_REFUSED,
           "environment %s revokes only through approved RA requests ('smki ra revoke'); direct revocation is allowed "
           "in: %s",
           d->r->env, ra->pol.direct_envs[0] ? ra->pol.direct_envs : "no environment");
    char serial[2 * SMKI_SERIAL_LEN + 1];
    smki_hex_encode(d->out->serial, SMKI_SERIAL_LEN, serial, 0);
    snprintf(note->action, sizeof note->action, "ca-revoke-direct");
    snprintf(note->object, sizeof note->object, "certificate %s", serial);
    snprintf(note->detail, sizeof note->detail, "%s certificate of %s: %s", smki_profile_get(d->out->profile)->name,
             d->out->env, smki_revoke_reason_name(d->r->reason));
    if (smki_profile_get(d->out->profile)->is_ca) {
        size_t at = strlen(note->detail);
        snprintf(note->detail + at, sizeof note->detail - at, "; %zu certificate(s) it issued revoked with it",
                 rev.issued_revoked);
    }
    return 0;
}

int smki_ra_revoke_direct(smki_ra *ra, const smki_ra_actor *by, const smki_revoke_req *r, smki_cert *out,
                          smki_revocation *rev)
{
    ENSURE(r && r->env && out, SMKI_E_USAGE, "direct revocation needs the environment");
    direct_revoke_run d = {r, out, rev};
    return smki_ra_act(ra, by, 0, direct_revoke_fn, &d);
}
