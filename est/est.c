/* est/est: the enrolment service's requests. Each enrolment is an RA request submitted
 * on behalf of the client's Party (its DCCKI client certificate's Party Signifier) by
 * the service's own RA operator, keyed by what the client sent so that a retry or a
 * replay finds the same request: RFC 7030 4.2.3's 202 and retry, and a batch that is
 * never issued twice. Approved single enrolments are executed in the request; batches
 * by one worker thread, resumable (the RA's group commits). Where the RA issues
 * directly ([ra] direct_issue) a single enrolment goes through its gate instead
 * (smki_ra_issue), keyed the same way, and a batch through its batch gate (smki_ra_batch,
 * as 'smki ca batch'), run by the same worker and known by its submission key while the
 * service runs. docs/est.md. */
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "est.h"

#define PREFIX "/.well-known/est/"
#define QUEUE_MAX 256
#define FAILS_MAX 8
#define VIA_MAX 128
#define DIRECT_MAX 16

/* A device batch of a direct-issue environment: no RA request, the RA's batch gate
 * (smki_ra_batch) run by the worker. Known by the batch's submission key while the
 * service runs; the store is the truth, so the same batch sent again after a restart
 * resumes it and gets back what was issued (nothing issued twice). */
enum { D_FREE, D_QUEUED, D_RUNNING, D_DONE, D_FAILED };
static const char *const D_NAMES[] = {"free", "queued", "running", "done", "failed"};
typedef struct {
    int state;
    uint8_t key[32];
    char party[SMKI_PARTY_MAX];
    smki_ca_batch_input *in;
    smki_ca_batch_report *rep; /* done */
    size_t total, done;
    uint64_t age;
    char err[256];
} direct_job;

/* RFC 7030 4.5.2: the attributes a CSR should carry. SEQUENCE OF OBJECT IDENTIFIER:
 * ecdsa-with-SHA256 (1.2.840.10045.4.3.2) and the curve prime256v1 (1.2.840.10045.3.1.7). */
static const uint8_t CSR_ATTRS[] = {0x30, 0x14, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03,
                                    0x02, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};

/* What /metrics counts: requests by operation and outcome. */
enum { OP_CACERTS, OP_CSRATTRS, OP_ENROLL, OP_REENROLL, OP_BATCH, OP_POLL, OP_OTHER, OP_COUNT };
static const char *const OP_NAMES[OP_COUNT] = {"cacerts", "csrattrs", "simpleenroll", "simplereenroll",
                                               "batch",   "batch_poll", "other"};
enum { OUT_OK, OUT_PENDING, OUT_UNAUTHENTICATED, OUT_REFUSED, OUT_CONFLICT, OUT_BAD_REQUEST, OUT_ERROR, OUT_COUNT };
static const char *const OUT_NAMES[OUT_COUNT] = {"ok", "pending", "unauthenticated", "refused", "conflict",
                                                 "bad_request", "error"};

struct smki_est {
    smki_ra *ra;
    char env[SMKI_ENV_NAME_MAX];
    char operator_name[SMKI_RA_NAME_MAX];
    smki_key *op_key;
    const smki_hsm_opts *hsm;
    const smki_conf *conf;
    unsigned retry_after;
    size_t max_batch;
    /* the batch worker */
    pthread_t worker;
    int has_worker, is_stopping;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    uint64_t queue[QUEUE_MAX];
    size_t n_queued;
    uint64_t running;
    struct {
        uint64_t id;
        char msg[256];
    } fails[FAILS_MAX]; /* the last execution failures, for the client's next poll */
    size_t next_fail;
    /* The issuing CAs, opened once (their keys stay open): the RA uses one while it is
     * the environment's current CA. By request type; under lock. */
    smki_ca_issuer *issuers[SMKI_REQ_DCCKI_CLIENT + 1];
    pthread_mutex_t issuer_lock;
    atomic_ullong counts[OP_COUNT][OUT_COUNT]; /* /metrics */
    direct_job direct[DIRECT_MAX]; /* under lock */
    uint64_t direct_age;
};

static smki_profile_id leaf_of(smki_req_type t)
{
    return t == SMKI_REQ_ORGANISATION   ? SMKI_PROFILE_ORGANISATION
           : t == SMKI_REQ_DCCKI_SERVER ? SMKI_PROFILE_DCCKI_SERVER
           : t == SMKI_REQ_DCCKI_CLIENT ? SMKI_PROFILE_DCCKI_CLIENT
                                        : SMKI_PROFILE_DEVICE;
}

/* The open issuer for a request's type, or NULL (the RA then opens the CA itself and
 * reports what fails). */
static smki_ca_issuer *issuer_for(smki_est *e, smki_req_type t)
{
    if ((unsigned)t >= sizeof e->issuers / sizeof e->issuers[0]) return NULL;
    pthread_mutex_lock(&e->issuer_lock);
    if (!e->issuers[t] && smki_ca_issuer_open(smki_ra_ca_db(e->ra), e->env, leaf_of(t), e->hsm, &e->issuers[t]) < 0) {
        smki_error_clear();
        e->issuers[t] = NULL;
    }
    smki_ca_issuer *is = e->issuers[t];
    pthread_mutex_unlock(&e->issuer_lock);
    return is;
}

/* ---- Answers --------------------------------------------------------------------------------- */
static int put(smki_repo_resp *w, const void *p, size_t n)
{
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 1024;
        while (cap < w->len + n + 1) cap *= 2;
        uint8_t *b = realloc(w->body, cap);
        ENSURE(b, SMKI_E_NOMEM, "out of memory");
        w->body = b, w->cap = cap;
    }
    memcpy(w->body + w->len, p, n);
    w->len += n;
    w->body[w->len] = 0;
    return 0;
}

static int putf(smki_repo_resp *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int putf(smki_repo_resp *w, const char *fmt, ...)
{
    char tmp[1536];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    ENSURE(n >= 0 && (size_t)n < sizeof tmp, SMKI_E_INTERNAL, "an answer line too long");
    return put(w, tmp, (size_t)n);
}

/* JSON string content (messages hold names from outside). */
static int put_text(smki_repo_resp *w, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') GUARD(putf(w, "\\%c", ch));
        else if (ch < 0x20 || ch >= 0x7f) GUARD(putf(w, "\\u%04x", ch));
        else GUARD(put(w, &ch, 1));
    }
    return 0;
}

static int fail(smki_repo_resp *w, int status, const char *msg)
{
    w->len = 0;
    w->status = status;
    w->content_type = "application/json";
    GUARD(putf(w, "{\"status\":%d,\"error\":\"", status));
    GUARD(put_text(w, msg));
    return put(w, "\"}\n", 3);
}

/* An error of smki's as the HTTP status that says whose it is: the client's input
 * (400), a rule of the RA (403), the server's (500). */
static int fail_err(smki_repo_resp *w, const char *what)
{
    int code = smki_error_code(), status = 500;
    if (code == SMKI_E_INPUT || code == SMKI_E_USAGE || code == SMKI_E_VERIFY) status = 400;
    else if (code == SMKI_E_REFUSED || code == SMKI_E_NOTFOUND) status = 403;
    else if (code == SMKI_E_LOCKED) status = 503;
    else if (code == SMKI_E_EXISTS) status = 409;
    char msg[SMKI_ERR_MSG_MAX + 128];
    snprintf(msg, sizeof msg, "%s: %s", what, smki_error_msg());
    smki_error_clear();
    return fail(w, status, msg);
}

/* DER into base64 lines of 64 (RFC 7030 4.1.3: certs-only, base64). */
static int put_base64(smki_repo_resp *w, const uint8_t *der, size_t len)
{
    size_t need = (len + 2) / 3 * 4 + (len / 48 + 2) + 1;
    if (w->len + need + 1 > w->cap) {
        uint8_t *b = realloc(w->body, w->len + need + 1);
        ENSURE(b, SMKI_E_NOMEM, "out of memory");
        w->body = b, w->cap = w->len + need + 1;
    }
    for (size_t i = 0; i < len; i += 48) {
        size_t n = len - i < 48 ? len - i : 48;
        w->len += (size_t)EVP_EncodeBlock(w->body + w->len, der + i, (int)n);
        w->body[w->len++] = '\n';
    }
    w->body[w->len] = 0;
    return 0;
}

/* PKCS#7 certs-only (RFC 7030 4.1.3; RFC 5652 5.1 SignedData without content or
 * signers) of these certificates, written around their DER as the store holds it (no
 * certificate is decoded: OpenSSL's d2i_X509 decodes each key, which cost more than the
 * rest of an answer). The certificates stay in the order given (a batch's CSR order):
 * CMS is BER, and an unsorted SET OF is what such answers carry. */
static const uint8_t OID_SIGNED_DATA[] = {0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02};
static const uint8_t OID_DATA[] = {0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01};

/* A growing buffer of certificates' DER, one after another: the SET's contents. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} der_set;

static int set_add(der_set *s, const uint8_t *der, size_t len)
{
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + len) cap *= 2;
        uint8_t *b = realloc(s->p, cap);
        ENSURE(b, SMKI_E_NOMEM, "out of memory");
        s->p = b, s->cap = cap;
    }
    memcpy(s->p + s->len, der, len);
    s->len += len;
    return 0;
}

static int certs_only(smki_repo_resp *w, const der_set *certs)
{
    size_t set = certs->len;
    /* SignedData: version 1, digestAlgorithms {}, encapContentInfo {data}, [0] certs,
     * signerInfos {}. Every length is known first, so the certificates are copied once. */
    static const uint8_t head[] = {0x02, 0x01, 0x01, 0x31, 0x00, 0x30, 0x0B};
    size_t sd = sizeof head + sizeof OID_DATA + smki_der_head_len(set) + set + 2;
    size_t explicit0 = smki_der_head_len(sd) + sd;
    size_t ci = sizeof OID_SIGNED_DATA + smki_der_head_len(explicit0) + explicit0;
    smki_writer_t wr;
    smki_writer_grow(&wr);
    smki_wr_der_head(&wr, 0x30, ci);
    smki_wr_raw(&wr, OID_SIGNED_DATA, sizeof OID_SIGNED_DATA);
    smki_wr_der_head(&wr, 0xA0, explicit0);
    smki_wr_der_head(&wr, 0x30, sd);
    smki_wr_raw(&wr, head, sizeof head);
    smki_wr_raw(&wr, OID_DATA, sizeof OID_DATA);
    smki_wr_der_head(&wr, 0xA0, set);
    smki_wr_raw(&wr, certs->p, set);
    smki_wr_der(&wr, 0x31, NULL, 0);
    uint8_t *der = NULL;
    size_t total = 0;
    GUARD(smki_wr_finish(&wr, "the PKCS#7 certs-only answer", &der, &total));
    int rc = total == smki_der_head_len(ci) + ci ? 0 : SMKI_FAIL(SMKI_E_INTERNAL, "PKCS#7 length %zu, not %zu", total,
                                                                  smki_der_head_len(ci) + ci);
    if (rc == 0) {
        w->len = 0;
        w->status = 200;
        w->content_type = "application/pkcs7-mime; smime-type=certs-only";
        rc = put_base64(w, der, total);
    }
    free(der);
    return rc;
}

/* ---- The batch worker ---------------------------------------------------------------------------- */
static void note_fail(smki_est *e, uint64_t id, const char *msg)
{
    pthread_mutex_lock(&e->lock);
    size_t k = FAILS_MAX;
    for (size_t i = 0; i < FAILS_MAX; i++)
        if (e->fails[i].id == id) k = i;
    if (k == FAILS_MAX) k = e->next_fail++ % FAILS_MAX;
    e->fails[k].id = msg ? id : 0;
    snprintf(e->fails[k].msg, sizeof e->fails[k].msg, "%s", msg ? msg : "");
    pthread_mutex_unlock(&e->lock);
}

/* Queued (once) for the worker; 0 when it is queued or running now. */
static int enqueue(smki_est *e, uint64_t id)
{
    pthread_mutex_lock(&e->lock);
    int rc = 0, found = e->running == id;
    for (size_t i = 0; i < e->n_queued && !found; i++) found = e->queue[i] == id;
    if (!found && e->n_queued == QUEUE_MAX) rc = SMKI_FAIL(SMKI_E_LOCKED, "%d batches wait already: ask again later",
                                                           QUEUE_MAX);
    else if (!found) e->queue[e->n_queued++] = id, pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    return rc;
}

static void via_text(const char *party, char out[VIA_MAX])
{
    snprintf(out, VIA_MAX, "party %s over EST", party);
}

static direct_job *direct_next(smki_est *e)
{
    for (size_t k = 0; k < DIRECT_MAX; k++)
        if (e->direct[k].state == D_QUEUED) return &e->direct[k];
    return NULL;
}

typedef struct {
    smki_est *e;
    direct_job *j;
} direct_run;

static void direct_progress(const smki_ca_batch_report *r, void *arg)
{
    direct_run *d = arg;
    pthread_mutex_lock(&d->e->lock);
    d->j->done = r->done;
    pthread_mutex_unlock(&d->e->lock);
}

/* On the worker, lock not held: the job is its own while D_RUNNING. */
static void run_direct(smki_est *e, direct_job *j)
{
    char via[VIA_MAX];
    via_text(j->party, via);
    smki_ra_actor by = {e->operator_name, e->op_key};
    smki_ra_batch_req br = {.env = e->env, .party = j->party, .hsm = e->hsm, .subscriber_asks = 1, .via = via};
    direct_run d = {e, j};
    smki_ca_batch_opts o = {.progress = direct_progress, .progress_arg = &d};
    smki_ca_batch_report *rep = NULL;
    int rc = smki_ra_batch(e->ra, &by, &br, j->in, &o, &rep);
    pthread_mutex_lock(&e->lock);
    j->state = rc < 0 ? D_FAILED : D_DONE;
    snprintf(j->err, sizeof j->err, "%s", rc < 0 ? smki_error_msg() : "");
    smki_ca_batch_input *done_in = NULL;
    if (rc < 0) smki_ca_batch_report_free(rep);
    else j->rep = rep, done_in = j->in, j->in = NULL; /* the answer is the store's; a failed run keeps it to resume */
    pthread_mutex_unlock(&e->lock);
    smki_ca_batch_input_free(done_in);
    if (rc < 0) {
        fprintf(stderr, "{\"level\":\"warn\",\"event\":\"est_batch\",\"direct\":true,\"error\":\"the client's "
                        "next poll or resend resumes it\"}\n");
        smki_error_clear();
    }
}

static void *run_worker(void *arg)
{
    smki_est *e = arg;
    pthread_mutex_lock(&e->lock);
    for (;;) {
        direct_job *dj = NULL;
        while (!e->n_queued && !(dj = direct_next(e)) && !e->is_stopping) pthread_cond_wait(&e->wake, &e->lock);
        if (e->is_stopping) break;
        if (dj) {
            dj->state = D_RUNNING;
            pthread_mutex_unlock(&e->lock);
            run_direct(e, dj);
            pthread_mutex_lock(&e->lock);
            continue;
        }
        uint64_t id = e->queue[0];
        memmove(e->queue, e->queue + 1, --e->n_queued * sizeof e->queue[0]);
        e->running = id;
        pthread_mutex_unlock(&e->lock);
        smki_ra_request r;
        char via[VIA_MAX] = "";
        int rc = smki_ra_request_get(e->ra, id, &r);
        if (rc == 0) via_text(r.party, via);
        smki_ra_actor by = {e->operator_name, e->op_key};
        smki_ra_exec_opts eo = {0};
        eo.hsm = e->hsm;
        eo.conf = e->conf;
        eo.via = via;
        if (rc == 0) eo.issuer = issuer_for(e, r.type);
        if (rc == 0 && r.state == SMKI_REQ_APPROVED) rc = smki_ra_request_execute(e->ra, &by, id, &eo);
        note_fail(e, id, rc < 0 ? smki_error_msg() : NULL);
        if (rc < 0) {
            fprintf(stderr, "{\"level\":\"warn\",\"event\":\"est_batch\",\"request\":%llu,\"error\":\"see GET "
                            "/.well-known/est/batch/%llu\"}\n",
                    (unsigned long long)id, (unsigned long long)id);
            smki_error_clear();
        }
        pthread_mutex_lock(&e->lock);
        e->running = 0;
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

typedef struct {
    smki_est *e;
} resume_run;

/* The service's own batches, approved and unfinished: a restart carries them on. */
static int resume_one(const smki_ra_request *r, void *arg)
{
    smki_est *e = ((resume_run *)arg)->e;
    if (r->type == SMKI_REQ_DEVICE_BATCH && strcmp(r->env, e->env) == 0 &&
        strcmp(r->requester, e->operator_name) == 0 && r->done_count < r->csr_count && enqueue(e, r->id) < 0)
        smki_error_clear();
    return 0;
}

int smki_est_open(const smki_est_opts *o, smki_est **out)
{
    ENSURE(o && o->ra && o->env && out, SMKI_E_INTERNAL, "smki_est_open: missing argument");
    *out = NULL;
    ENSURE(strlen(o->env) < SMKI_ENV_NAME_MAX, SMKI_E_USAGE, "environment name '%.40s' too long", o->env);
    ENSURE(o->actor.name && o->actor.key && strlen(o->actor.name) < SMKI_RA_NAME_MAX, SMKI_E_USAGE,
           "the enrolment service acts as a registered RA operator: name it ([enrol] operator, --operator) and "
           "give its key ([operators] NAME = KEY, --operator-key)");
    smki_ra_operator op;
    GUARD(smki_ra_operator_get(o->ra, o->actor.name, &op));
    ENSURE(op.active, SMKI_E_REFUSED, "operator %s is deactivated: the service cannot act", op.name);
    smki_est *e = calloc(1, sizeof *e);
    ENSURE(e, SMKI_E_NOMEM, "out of memory");
    e->ra = o->ra;
    snprintf(e->env, sizeof e->env, "%s", o->env);
    snprintf(e->operator_name, sizeof e->operator_name, "%s", o->actor.name);
    e->op_key = o->actor.key;
    e->hsm = o->hsm;
    e->conf = o->conf;
    e->retry_after = o->retry_after ? o->retry_after : SMKI_EST_RETRY_AFTER;
    e->max_batch = o->max_batch ? o->max_batch : SMKI_EST_BATCH_MAX;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->wake, NULL);
    pthread_mutex_init(&e->issuer_lock, NULL);
    if (pthread_create(&e->worker, NULL, run_worker, e) != 0) {
        smki_est_free(e);
        return SMKI_FAIL(SMKI_E_INTERNAL, "the batch worker thread could not be started");
    }
    e->has_worker = 1;
    resume_run rr = {e};
    int rc = smki_ra_request_each(e->ra, SMKI_REQ_APPROVED, resume_one, &rr);
    if (rc < 0) {
        smki_est_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void smki_est_free(smki_est *e)
{
    if (!e) return;
    if (e->has_worker) {
        pthread_mutex_lock(&e->lock);
        e->is_stopping = 1;
        pthread_cond_signal(&e->wake);
        pthread_mutex_unlock(&e->lock);
        pthread_join(e->worker, NULL);
    }
    for (size_t i = 0; i < sizeof e->issuers / sizeof e->issuers[0]; i++) smki_ca_issuer_free(e->issuers[i]);
    for (size_t k = 0; k < DIRECT_MAX; k++) {
        smki_ca_batch_input_free(e->direct[k].in);
        smki_ca_batch_report_free(e->direct[k].rep);
    }
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->issuer_lock);
    free(e);
}

/* ---- Requests ------------------------------------------------------------------------------------- */
static int hexv(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* The query's dns=, ip= and cn= values (percent-decoded, each at most 255 octets);
 * anything else is refused. */
#define NAMES_MAX 16
typedef struct {
    char text[NAMES_MAX * 2 + 1][256];
    const char *dns[NAMES_MAX], *ips[NAMES_MAX], *cn;
    size_t n_dns, n_ips, used;
} query_names;

static int query_read(const char *q, query_names *out)
{
    memset(out, 0, sizeof *out);
    while (q && *q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        ENSURE(eq, SMKI_E_USAGE, "query: '%.*s' is not NAME=VALUE", (int)(n > 40 ? 40 : n), q);
        size_t kl = (size_t)(eq - q);
        ENSURE(out->used < sizeof out->text / sizeof out->text[0], SMKI_E_USAGE, "query: too many names");
        char *v = out->text[out->used++];
        size_t o = 0;
        for (const char *p = eq + 1; p < q + n; p++) {
            int ch = (unsigned char)*p;
            if (ch == '%') {
                int h = p + 2 < q + n ? hexv(p[1]) : -1, l = p + 2 < q + n ? hexv(p[2]) : -1;
                ENSURE(h >= 0 && l >= 0, SMKI_E_USAGE, "query: a bad %%-escape");
                ch = h * 16 + l;
                p += 2;
            }
            ENSURE(ch > 0x20 && ch < 0x7f && o + 1 < 256, SMKI_E_USAGE, "query: a value with a space, control "
                   "octet or over 255 octets");
            v[o++] = (char)ch;
        }
        v[o] = 0;
        ENSURE(o > 0, SMKI_E_USAGE, "query: an empty value");
        if (kl == 3 && strncmp(q, "dns", 3) == 0 && out->n_dns < NAMES_MAX) out->dns[out->n_dns++] = v;
        else if (kl == 2 && strncmp(q, "ip", 2) == 0 && out->n_ips < NAMES_MAX) out->ips[out->n_ips++] = v;
        else if (kl == 2 && strncmp(q, "cn", 2) == 0 && !out->cn) out->cn = v;
        else return SMKI_FAIL(SMKI_E_USAGE, "query: '%.*s' is not dns=, ip= or cn= (once), or there are too many",
                              (int)(kl > 20 ? 20 : kl), q);
        q += n;
        if (*q == '&') q++;
    }
    return 0;
}

/* The submission key: what the client asked for and the CSRs' octets. The same
 * enrolment sent again (simpleenroll or simplereenroll, a retry after 202, a replayed
 * batch) finds its request; the Party is part of the RA's key. */
static int submission_key(const char *kind, const char *query, const uint8_t *const *der, const size_t *lens,
                          size_t n, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned hl = 32;
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return SMKI_FAIL(SMKI_E_CRYPTO, "SHA-256 of the submission");
    }
    EVP_DigestUpdate(md, "smki-est-v1", 12);
    EVP_DigestUpdate(md, kind, strlen(kind) + 1);
    EVP_DigestUpdate(md, query ? query : "", (query ? strlen(query) : 0) + 1);
    for (size_t i = 0; i < n; i++) {
        uint8_t l[4];
        smki_put_be32(l, (uint32_t)lens[i]);
        EVP_DigestUpdate(md, l, 4);
        EVP_DigestUpdate(md, der[i], lens[i]);
    }
    int ok = EVP_DigestFinal_ex(md, out, &hl) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : SMKI_FAIL(SMKI_E_CRYPTO, "SHA-256 of the submission");
}

/* Submitted on the Party's behalf: 0 with *id (*replay: it was there before), or the
 * RA's refusal (its message left for the answer). */
static int submit(smki_est *e, const char *party, smki_ra_submit *s, const uint8_t key[32], uint64_t *id, int *replay)
{
    char via[VIA_MAX];
    via_text(party, via);
    smki_ra_actor by = {e->operator_name, e->op_key};
    s->via = via;
    s->party = party;
    s->env = e->env;
    s->conf = e->conf;
    s->submission_key = key;
    s->subscriber_asks = 1; /* the Party asks for itself: the RA's rules for that (its own device blocks) */
    *id = 0;
    int rc = smki_ra_request_submit(e->ra, &by, s, id);
    *replay = rc == SMKI_E_EXISTS && *id;
    if (*replay) {
        smki_error_clear();
        return 0;
    }
    return rc;
}

/* ,"name":"text" when text is not empty. */
static int put_field(smki_repo_resp *w, const char *name, const char *text)
{
    if (!*text) return 0;
    GUARD(putf(w, ",\"%s\":\"", name));
    GUARD(put_text(w, text));
    return put(w, "\"", 1);
}

static int pending(smki_est *e, const smki_ra_request *r, smki_repo_resp *w, int status)
{
    w->len = 0;
    w->status = status;
    w->content_type = "application/json";
    w->retry_after = e->retry_after;
    snprintf(w->location, sizeof w->location, PREFIX "batch/%llu", (unsigned long long)r->id);
    if (r->type != SMKI_REQ_DEVICE_BATCH || r->csr_count == 1) w->location[0] = 0;
    char err[256] = "";
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < FAILS_MAX; i++)
        if (e->fails[i].id == r->id) snprintf(err, sizeof err, "%s", e->fails[i].msg);
    pthread_mutex_unlock(&e->lock);
    GUARD(putf(w, "{\"request\":%llu,\"state\":\"%s\",\"approvals\":%zu,\"approvals_required\":%u,\"done\":%u,"
                  "\"total\":%u",
               (unsigned long long)r->id, smki_req_state_name(r->state), r->n_approvals, r->approvals_required,
               r->done_count, r->csr_count));
    GUARD(put_field(w, "note", r->note));
    GUARD(put_field(w, "error", err));
    return put(w, "}\n", 2);
}

static int rejected(const smki_ra_request *r, smki_repo_resp *w)
{
    char msg[SMKI_RA_REASON_MAX + 128];
    snprintf(msg, sizeof msg, "request %llu was rejected by operator %s: %s", (unsigned long long)r->id,
             r->rejected_by, r->note);
    return fail(w, 403, msg);
}

/* A single enrolment's request, answered: its certificate, 202 while it awaits
 * approvals, executed now once approved. */
static int answer_one(smki_est *e, uint64_t id, smki_repo_resp *w)
{
    smki_ra_request r;
    if (smki_ra_request_get(e->ra, id, &r) < 0) return fail_err(w, "the request");
    if (r.state == SMKI_REQ_APPROVED) {
        char via[VIA_MAX];
        via_text(r.party, via);
        smki_ra_actor by = {e->operator_name, e->op_key};
        smki_ra_exec_opts eo = {0};
        eo.hsm = e->hsm;
        eo.conf = e->conf;
        eo.via = via;
        eo.issuer = issuer_for(e, r.type);
        int rc = smki_ra_request_execute(e->ra, &by, id, &eo);
        /* Another client's retry may have executed it meanwhile: what counts is the state. */
        if (smki_ra_request_get(e->ra, id, &r) < 0 || (rc < 0 && r.state != SMKI_REQ_DONE)) {
            if (rc < 0) return fail_err(w, "executing the request");
            return fail_err(w, "the request");
        }
        smki_error_clear();
    }
    if (r.state == SMKI_REQ_PENDING || r.state == SMKI_REQ_HELD) return pending(e, &r, w, 202);
    if (r.state == SMKI_REQ_REJECTED) return rejected(&r, w);
    smki_cert *c = malloc(sizeof *c);
    ENSURE(c, SMKI_E_NOMEM, "out of memory");
    int rc = smki_ra_request_cert(e->ra, id, 0, c);
    if (rc == 0) {
        der_set one = {c->der, c->der_len, c->der_len};
        rc = certs_only(w, &one);
    } else
        rc = fail_err(w, "the certificate");
    free(c);
    return rc;
}

/* Where the RA lets this environment issue directly ([ra] direct_issue): through its
 * gate, the certificate and its audit entry ("via party X over EST") in one commit; the
 * same enrolment again (the same key) gets the same certificate, nothing issued twice.
 * csr is the request's CSR already parsed (its possession proof checked), taken over
 * and freed here; NULL when it is still to be parsed. */
static int issue_direct(smki_est *e, const char *party, const smki_ra_submit *s, const uint8_t key[32],
                        smki_csr *csr, smki_repo_resp *w)
{
    char via[VIA_MAX];
    via_text(party, via);
    const uint8_t *der = s->type == SMKI_REQ_DEVICE_BATCH ? s->csrs[0] : s->csr;
    size_t len = s->type == SMKI_REQ_DEVICE_BATCH ? s->csr_lens[0] : s->csr_len;
    if (!csr && smki_csr_parse(der, len, &csr) < 0) return fail_err(w, "the CSR");
    smki_ra_issue_req r = {.env = e->env, .csr = csr, .profile = leaf_of(s->type), .party = party, .role = -1,
                           .cn = s->cn, .dns = s->dns, .n_dns = s->n_dns, .ips = s->ips, .n_ips = s->n_ips,
                           .hsm = e->hsm, .via = via, .submission_key = key, .issuer = issuer_for(e, s->type),
                           .subscriber_asks = 1};
    if (s->type == SMKI_REQ_ORGANISATION) r.role = s->role, r.eui = s->eui;
    smki_ra_actor by = {e->operator_name, e->op_key};
    smki_cert *c = malloc(sizeof *c);
    int rc = c ? smki_ra_issue(e->ra, &by, &r, c, NULL) : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    smki_csr_free(csr);
    if (rc == 0) {
        der_set one = {c->der, c->der_len, c->der_len};
        rc = certs_only(w, &one);
    } else
        rc = fail_err(w, "refused");
    free(c);
    return rc;
}

/* A single enrolment judged and answered: through the RA's gate where it issues
 * directly, else an RA request (202 until approved). csr (parsed, or NULL) is taken over. */
static int enrol_finish(smki_est *e, const char *party, smki_ra_submit *s, const uint8_t key[32], smki_csr *csr,
                        smki_repo_resp *w)
{
    if (smki_ra_issues_directly(e->ra, e->env)) return issue_direct(e, party, s, key, csr, w);
    smki_csr_free(csr); /* the RA's request parses what it keeps */
    uint64_t id = 0;
    int replay = 0;
    if (submit(e, party, s, key, &id, &replay) < 0) return fail_err(w, "refused");
    return answer_one(e, id, w);
}

static int enroll(smki_est *e, const smki_repo_req *req, const char *label, smki_repo_resp *w)
{
    if (req->body_len > SMKI_EST_ENROLL_BODY_MAX)
        return fail(w, 413, "an enrolment's body is one CSR (at most 16384 octets)");
    smki_est_label lb;
    memset(&lb, 0, sizeof lb);
    if (label && smki_est_label_parse(label, &lb) < 0) return fail_err(w, "the label");
    query_names qn;
    if (query_read(req->query, &qn) < 0) return fail_err(w, "the query");
    uint8_t *der = malloc(SMKI_CSR_MAX);
    ENSURE(der, SMKI_E_NOMEM, "out of memory");
    size_t len = 0;
    int rc = smki_est_csr_body(req->body ? req->body : (const uint8_t *)"", req->body_len, der, SMKI_CSR_MAX, &len);
    if (rc < 0) {
        free(der);
        return fail_err(w, "the CSR (base64 of a DER PKCS#10, RFC 7030 4.2.1)");
    }
    /* Parsed once (its possession proof is the costly part): kept for direct issuance. */
    smki_csr *csr = NULL;
    if (!label) {
        /* No label: a device certificate, when the CSR names its device. */
        rc = smki_csr_parse(der, len, &csr);
        int is_device = rc == 0 && csr->has_hw_module_name;
        if (rc < 0 || !is_device) {
            smki_csr_free(csr);
            free(der);
            if (rc < 0) return fail_err(w, "the CSR");
            return fail(w, 400, "without a label only a device CSR (with its hardwareModuleName) is enrolled: "
                                "name the certificate, /.well-known/est/<label>/simpleenroll with label "
                                "org-<role>-<EUI-64>, dccki-client or dccki-server (docs/est.md)");
        }
        lb.type = SMKI_REQ_DEVICE_BATCH;
    }
    if (lb.type != SMKI_REQ_DCCKI_SERVER && lb.type != SMKI_REQ_DCCKI_CLIENT && (qn.n_dns || qn.n_ips)) {
        smki_csr_free(csr);
        free(der);
        return fail(w, 400, "dns= and ip= name a DCCKI endpoint: only with the dccki-server or dccki-client label");
    }
    smki_ra_submit s;
    memset(&s, 0, sizeof s);
    s.type = lb.type;
    const uint8_t *one[1] = {der};
    size_t lens[1] = {len};
    if (lb.type == SMKI_REQ_DEVICE_BATCH) {
        s.csrs = one;
        s.csr_lens = lens;
        s.n_csrs = 1;
    } else {
        s.csr = der;
        s.csr_len = len;
        s.cn = qn.cn;
        s.role = lb.role;
        s.eui = lb.type == SMKI_REQ_ORGANISATION ? &lb.eui : NULL;
        s.dns = qn.dns, s.n_dns = qn.n_dns, s.ips = qn.ips, s.n_ips = qn.n_ips;
    }
    uint8_t key[32];
    char kind[80];
    snprintf(kind, sizeof kind, "enrol %s", label ? label : "device");
    if (submission_key(kind, req->query, one, lens, 1, key) < 0) {
        smki_csr_free(csr);
        free(der);
        return fail_err(w, "the submission");
    }
    rc = enrol_finish(e, req->party, &s, key, csr, w);
    free(der);
    return rc;
}

/* ---- Renewal (RFC 7030 4.2.2) ------------------------------------------------------------------ */
/* The certificate the client authenticated with, from the store. */
static int client_cert(smki_est *e, const smki_repo_req *req, smki_cert *out, X509 **x)
{
    ENSURE(req->client_issuer_ski && req->client_serial, SMKI_E_INTERNAL, "the client certificate was not named");
    GUARD(smki_ca_cert_get(smki_ra_ca_db(e->ra), req->client_issuer_ski, req->client_serial, out));
    const unsigned char *p = out->der;
    *x = d2i_X509(NULL, &p, (long)out->der_len);
    ENSURE(*x, SMKI_E_CORRUPT, "the client certificate in the store does not decode");
    return 0;
}

/* A renewal renews the certificate it is made with: the CSR names exactly its subject
 * (RFC 7030 4.2.2), and a DCCKI client certificate without endpoint names is what
 * renews here. The new certificate's CN is the old one's. */
static int renewal_check(const smki_cert *old, X509 *x, const smki_csr *csr, char cn[65])
{
    cn[0] = '\0';
    ENSURE(old->profile == SMKI_PROFILE_DCCKI_CLIENT, SMKI_E_REFUSED,
           "simplereenroll renews the DCCKI client certificate the connection authenticated with; this one is a "
           "%s certificate", smki_profile_get(old->profile)->name);
    X509_NAME *name = X509_get_subject_name(x);
    ENSURE(csr->subject && X509_NAME_cmp(csr->subject, name) == 0, SMKI_E_REFUSED,
           "the CSR's subject is not the subject of the certificate being renewed (the client certificate of this "
           "connection): RFC 7030 4.2.2 renews that certificate only; enrol anew with simpleenroll for another");
    ENSURE(X509_get_ext_by_NID(x, NID_subject_alt_name, -1) < 0, SMKI_E_REFUSED,
           "the certificate being renewed names endpoints (subjectAltName): renewing those is not done over EST; "
           "enrol anew with dccki-client/simpleenroll?dns=...&ip=...");
    int n = X509_NAME_get_text_by_NID(name, NID_commonName, cn, 65);
    if (n <= 0) cn[0] = '\0';
    return 0;
}

static int reenroll(smki_est *e, const smki_repo_req *req, const char *label, smki_repo_resp *w)
{
    if (req->body_len > SMKI_EST_ENROLL_BODY_MAX)
        return fail(w, 413, "an enrolment's body is one CSR (at most 16384 octets)");
    if (label && strcmp(label, "dccki-client") != 0)
        return fail(w, 400, "simplereenroll renews the DCCKI client certificate the connection authenticated with "
                            "(RFC 7030 4.2.2): no label, or dccki-client");
    if (req->query && *req->query)
        return fail(w, 400, "simplereenroll takes no query: the new certificate names what the renewed one names");
    uint8_t *der = malloc(SMKI_CSR_MAX);
    smki_cert *old = malloc(sizeof *old);
    X509 *x = NULL;
    smki_csr *csr = NULL;
    char cn[65];
    size_t len = 0;
    int rc = der && old ? 0 : SMKI_FAIL(SMKI_E_NOMEM, "out of memory"), ret;
    if (rc == 0) rc = smki_est_csr_body(req->body ? req->body : (const uint8_t *)"", req->body_len, der,
                                        SMKI_CSR_MAX, &len);
    if (rc < 0) ret = fail_err(w, "the CSR (base64 of a DER PKCS#10, RFC 7030 4.2.1)");
    else if (smki_csr_parse(der, len, &csr) < 0) ret = fail_err(w, "the CSR");
    else if (client_cert(e, req, old, &x) < 0) ret = fail_err(w, "the client certificate");
    else if (renewal_check(old, x, csr, cn) < 0) ret = fail_err(w, "refused");
    else {
        smki_ra_submit s;
        memset(&s, 0, sizeof s);
        s.type = SMKI_REQ_DCCKI_CLIENT;
        s.csr = der, s.csr_len = len, s.cn = cn[0] ? cn : NULL;
        const uint8_t *one[1] = {der};
        uint8_t key[32];
        char kind[80], ser[2 * SMKI_SERIAL_LEN + 1];
        smki_hex_encode(old->serial, SMKI_SERIAL_LEN, ser, 0);
        snprintf(kind, sizeof kind, "reenrol %s", ser);
        if (submission_key(kind, NULL, one, &len, 1, key) < 0) ret = fail_err(w, "the submission");
        else ret = enrol_finish(e, req->party, &s, key, csr, w);
        csr = NULL; /* enrol_finish took it */
    }
    smki_csr_free(csr);
    X509_free(x);
    free(old);
    free(der);
    return ret;
}

/* ---- Batches ---------------------------------------------------------------------------------------- */
static direct_job *direct_find(smki_est *e, const uint8_t key[32], const char *party)
{
    for (size_t k = 0; k < DIRECT_MAX; k++)
        if (e->direct[k].state != D_FREE && memcmp(e->direct[k].key, key, 32) == 0 &&
            strcmp(e->direct[k].party, party) == 0)
            return &e->direct[k];
    return NULL;
}

/* A free slot, or the oldest finished job's (dropped: its batch sent again resumes from the store). */
static direct_job *direct_slot(smki_est *e)
{
    direct_job *best = NULL;
    for (size_t k = 0; k < DIRECT_MAX; k++) {
        direct_job *j = &e->direct[k];
        if (j->state == D_FREE) return j;
        if ((j->state == D_DONE || j->state == D_FAILED) && (!best || j->age < best->age)) best = j;
    }
    if (best) {
        smki_ca_batch_input_free(best->in);
        smki_ca_batch_report_free(best->rep);
        memset(best, 0, sizeof *best);
    }
    return best;
}

/* Under lock: the job's progress as the RA-request batches answer it (202 until done). A
 * failed run is queued again: the poll resumes it. */
static int direct_answer(smki_est *e, direct_job *j, int replay, smki_repo_resp *w)
{
    if (j->state == D_FAILED) {
        j->state = D_QUEUED;
        pthread_cond_signal(&e->wake);
    }
    char id[65];
    smki_hex_encode(j->key, 32, id, 0);
    w->len = 0;
    w->status = j->state == D_DONE ? 200 : 202;
    w->content_type = "application/json";
    w->retry_after = e->retry_after;
    snprintf(w->location, sizeof w->location, PREFIX "batch/%s", id);
    size_t refused = j->rep ? j->rep->refused : 0;
    GUARD(putf(w, "{\"request\":\"%s\",\"state\":\"%s\",\"direct\":true,\"done\":%zu,\"total\":%zu,\"refused\":%zu", id,
               D_NAMES[j->state], j->done, j->total, refused));
    GUARD(put_field(w, "error", j->err));
    return putf(w, ",\"replay\":%s,\"location\":\"%s\"}\n", replay ? "true" : "false", w->location);
}

/* A batch where the RA issues directly: judged whole by the RA's gate now (one CSR it
 * refuses refuses the batch, nothing issued), then run by the worker through the RA's
 * batch gate (audited, every CSR checked again); the same batch again is the same job. */
static int batch_direct(smki_est *e, const smki_repo_req *req, const uint8_t key[32], smki_repo_resp *w)
{
    pthread_mutex_lock(&e->lock);
    direct_job *j = direct_find(e, key, req->party);
    int rc = j ? direct_answer(e, j, 1, w) : 0;
    pthread_mutex_unlock(&e->lock);
    if (j) return rc;
    uint8_t *copy = malloc(req->body_len ? req->body_len : 1);
    ENSURE(copy, SMKI_E_NOMEM, "out of memory");
    if (req->body_len) memcpy(copy, req->body, req->body_len);
    smki_ca_batch_input *in = NULL;
    if (smki_ca_batch_input_from_bytes("CSR", copy, req->body_len, &in) < 0) return fail_err(w, "the batch");
    smki_ra_actor by = {e->operator_name, e->op_key};
    if (smki_ra_batch_check_all(e->ra, &by, req->party, e->env, 1, in) < 0) {
        smki_ca_batch_input_free(in);
        return fail_err(w, "refused");
    }
    pthread_mutex_lock(&e->lock);
    if (!(j = direct_find(e, key, req->party)) && (j = direct_slot(e)) != NULL) {
        memcpy(j->key, key, 32);
        snprintf(j->party, sizeof j->party, "%s", req->party);
        j->in = in, in = NULL;
        j->total = smki_ca_batch_input_count(j->in);
        j->age = ++e->direct_age;
        j->state = D_QUEUED;
        pthread_cond_signal(&e->wake);
    }
    rc = j ? direct_answer(e, j, 0, w) : 0;
    pthread_mutex_unlock(&e->lock);
    smki_ca_batch_input_free(in);
    if (!j) return fail(w, 503, "the service runs as many batches as it holds: ask again later");
    return rc;
}

/* Under lock: the certificates of a finished direct batch, in CSR order, from the store. */
static int direct_certs(smki_est *e, const direct_job *j, smki_repo_resp *w)
{
    smki_cert *c = malloc(sizeof *c);
    ENSURE(c, SMKI_E_NOMEM, "out of memory");
    der_set all = {NULL, 0, 0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < j->rep->total; i++) {
        if (!j->rep->items[i].has_cert) continue;
        rc = smki_ca_cert_get(smki_ra_ca_db(e->ra), j->rep->issuer_ski, j->rep->items[i].serial, c);
        if (rc == 0) rc = set_add(&all, c->der, c->der_len);
    }
    rc = rc == 0 ? certs_only(w, &all) : fail_err(w, "the batch's certificates");
    free(all.p);
    free(c);
    return rc;
}

static int batch_get_direct(smki_est *e, const smki_repo_req *req, const char *idtext, int json, smki_repo_resp *w)
{
    uint8_t key[32];
    size_t got = 0;
    if (smki_hex_decode(idtext, 64, key, sizeof key, &got) < 0 || got != 32) {
        smki_error_clear();
        return fail(w, 404, "no such batch: /.well-known/est/batch/<request>");
    }
    pthread_mutex_lock(&e->lock);
    direct_job *j = direct_find(e, key, req->party);
    int rc = !j ? fail(w, 404, "no such batch of this Party running: the service keeps a direct batch until it "
                               "restarts; send the same batch again (nothing is issued twice)")
             : j->state != D_DONE || json ? direct_answer(e, j, 0, w)
                                          : direct_certs(e, j, w);
    pthread_mutex_unlock(&e->lock);
    return rc;
}

static int batch_submit(smki_est *e, const smki_repo_req *req, smki_repo_resp *w)
{
    if (req->query && *req->query) return fail(w, 400, "a batch takes no query");
    size_t max = e->max_batch, n = 0;
    smki_est_span *spans = malloc(max * sizeof *spans);
    ENSURE(spans, SMKI_E_NOMEM, "out of memory");
    int rc = smki_est_pem_split(req->body ? req->body : (const uint8_t *)"", req->body_len, max, spans, &n);
    if (rc < 0) {
        free(spans);
        if (smki_error_code() != SMKI_E_REFUSED) return fail_err(w, "the batch (concatenated PEM CSRs)");
        char msg[SMKI_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", smki_error_msg());
        smki_error_clear();
        return fail(w, 413, msg);
    }
    uint8_t **der = calloc(n, sizeof *der);
    size_t *lens = calloc(n, sizeof *lens);
    rc = der && lens ? 0 : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        der[i] = malloc(SMKI_CSR_MAX);
        rc = der[i] ? smki_est_base64_decode(req->body + spans[i].off, spans[i].len, der[i], SMKI_CSR_MAX, &lens[i])
                    : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
        if (rc < 0) smki_error_wrap("CSR %zu of the batch", i + 1);
    }
    int ret = 0;
    if (rc < 0) ret = fail_err(w, "the batch");
    else {
        uint8_t key[32];
        smki_ra_submit s;
        memset(&s, 0, sizeof s);
        s.type = SMKI_REQ_DEVICE_BATCH;
        s.csrs = (const uint8_t *const *)der;
        s.csr_lens = lens;
        s.n_csrs = n;
        uint64_t id = 0;
        int replay = 0;
        smki_ra_request r;
        if (submission_key("batch", NULL, (const uint8_t *const *)der, lens, n, key) < 0)
            ret = fail_err(w, "the submission");
        else if (smki_ra_issues_directly(e->ra, e->env))
            ret = batch_direct(e, req, key, w);
        else if (submit(e, req->party, &s, key, &id, &replay) < 0) ret = fail_err(w, "refused");
        else if (smki_ra_request_get(e->ra, id, &r) < 0) ret = fail_err(w, "the request");
        else {
            if (r.state == SMKI_REQ_APPROVED && enqueue(e, id) < 0) smki_error_clear(); /* a poll queues it */
            if (r.state == SMKI_REQ_REJECTED) ret = rejected(&r, w);
            else {
                ret = pending(e, &r, w, r.state == SMKI_REQ_DONE ? 200 : 202);
                snprintf(w->location, sizeof w->location, PREFIX "batch/%llu", (unsigned long long)id);
                if (ret == 0 && w->len >= 2) {
                    w->len -= 2; /* "}\n": the replay flag joins the object */
                    ret = putf(w, ",\"replay\":%s,\"location\":\"%s\"}\n", replay ? "true" : "false", w->location);
                }
            }
        }
    }
    for (size_t i = 0; der && i < n; i++) free(der[i]);
    free(der);
    free(lens);
    free(spans);
    return ret;
}

static int batch_get(smki_est *e, const smki_repo_req *req, const char *idtext, smki_repo_resp *w)
{
    int json = req->query && strcmp(req->query, "format=json") == 0;
    if (req->query && *req->query && !json) return fail(w, 400, "a batch's query is format=json or nothing");
    if (strlen(idtext) == 64) return batch_get_direct(e, req, idtext, json, w);
    char *end = NULL;
    unsigned long long id = strtoull(idtext, &end, 10);
    if (!*idtext || *end || id == 0 || idtext[0] == '0' || strlen(idtext) > 19)
        return fail(w, 404, "no such batch: /.well-known/est/batch/<request number>");
    smki_ra_request r;
    if (smki_ra_request_get(e->ra, id, &r) < 0 || r.type != SMKI_REQ_DEVICE_BATCH || strcmp(r.party, req->party) ||
        strcmp(r.requester, e->operator_name) || strcmp(r.env, e->env)) {
        smki_error_clear();
        return fail(w, 404, "no such batch of this Party");
    }
    if (r.state == SMKI_REQ_REJECTED) return rejected(&r, w);
    if (r.state == SMKI_REQ_APPROVED && enqueue(e, id) < 0) return fail_err(w, "the batch worker");
    if (r.state != SMKI_REQ_DONE || json) return pending(e, &r, w, r.state == SMKI_REQ_DONE ? 200 : 202);
    /* The certificates' DER only (about 500 octets each), not their records. */
    smki_cert *c = malloc(sizeof *c);
    ENSURE(c, SMKI_E_NOMEM, "out of memory");
    der_set all = {NULL, 0, 0};
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < r.csr_count; i++) {
        rc = smki_ra_request_cert(e->ra, id, i, c);
        if (rc == 0) rc = set_add(&all, c->der, c->der_len);
    }
    rc = rc == 0 ? certs_only(w, &all) : fail_err(w, "the batch's certificates");
    free(all.p);
    free(c);
    return rc;
}

/* ---- CA certificates ------------------------------------------------------------------------------- */
static int cacerts(smki_est *e, smki_repo_resp *w)
{
    smki_ca_record *rec = malloc(sizeof *rec);
    int rc = rec ? 0 : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    der_set all = {NULL, 0, 0};
    for (int k = 0; rc == 0 && k < SMKI_CA_KIND_COUNT; k++) {
        int g = smki_ca_get(smki_ra_ca_db(e->ra), e->env, (smki_ca_kind)k, rec);
        if (g == SMKI_E_NOTFOUND) smki_error_clear();
        else if (g < 0) rc = g;
        else rc = set_add(&all, rec->cert.der, rec->cert.der_len);
    }
    int ret;
    if (rc < 0) ret = fail_err(w, "the CA certificates");
    else if (!all.len) ret = fail(w, 404, "the environment has no CA yet");
    else ret = certs_only(w, &all);
    free(rec);
    free(all.p);
    return ret;
}

static int csrattrs(smki_repo_resp *w)
{
    w->len = 0;
    w->status = 200;
    w->content_type = "application/csrattrs";
    return put_base64(w, CSR_ATTRS, sizeof CSR_ATTRS);
}

/* For supervisors (systemd, load balancers): the service answers, and how many batches
 * wait or run. */
/* The batches waiting and in execution: RA requests and direct batches alike. */
static void batches_now(smki_est *e, size_t *queued, size_t *running)
{
    pthread_mutex_lock(&e->lock);
    *queued = e->n_queued;
    *running = e->running != 0;
    for (size_t k = 0; k < DIRECT_MAX; k++) {
        *queued += e->direct[k].state == D_QUEUED;
        *running += e->direct[k].state == D_RUNNING;
    }
    pthread_mutex_unlock(&e->lock);
}

static int health(smki_est *e, smki_repo_resp *w)
{
    size_t queued, running;
    batches_now(e, &queued, &running);
    w->len = 0;
    w->status = 200;
    w->content_type = "application/json";
    return putf(w, "{\"status\":\"ok\",\"env\":\"%s\",\"operator\":\"%s\",\"batches_queued\":%zu,"
                   "\"batches_running\":%zu}\n",
                e->env, e->operator_name, queued, running);
}

/* ---- Metrics (Prometheus text, as the repository's /metrics) ------------------------------------ */
static int outcome_of(int status)
{
    return status == 200   ? OUT_OK
           : status == 202 ? OUT_PENDING
           : status == 401 ? OUT_UNAUTHENTICATED
           : status == 403 ? OUT_REFUSED
           : status == 409 ? OUT_CONFLICT
           : status < 500  ? OUT_BAD_REQUEST
                           : OUT_ERROR;
}

static int metrics(smki_est *e, smki_repo_resp *w)
{
    size_t queued, running;
    batches_now(e, &queued, &running);
    w->len = 0;
    w->status = 200;
    w->content_type = "text/plain; version=0.0.4";
    GUARD(putf(w, "# HELP smki_est_requests_total EST requests answered, by operation and outcome (ok: 200, "
                  "pending: 202, refused: 403, conflict: 409, bad_request: other 4xx, error: 5xx).\n"
                  "# TYPE smki_est_requests_total counter\n"));
    for (int op = 0; op < OP_COUNT; op++)
        for (int o = 0; o < OUT_COUNT; o++) {
            unsigned long long v = atomic_load(&e->counts[op][o]);
            if (v || o == OUT_OK)
                GUARD(putf(w, "smki_est_requests_total{env=\"%s\",operation=\"%s\",outcome=\"%s\"} %llu\n", e->env,
                           OP_NAMES[op], OUT_NAMES[o], v));
        }
    return putf(w, "# HELP smki_est_batches Device batches waiting for or in execution by the service.\n"
                   "# TYPE smki_est_batches gauge\nsmki_est_batches{env=\"%s\",state=\"queued\"} %zu\n"
                   "smki_est_batches{env=\"%s\",state=\"running\"} %zu\n",
                e->env, queued, e->env, running);
}

/* ---- Routing ------------------------------------------------------------------------------------------ */
static int route(smki_est *e, const smki_repo_req *req, smki_repo_resp *w, int *opn)
{
    const char *p = req->path, *m = req->method;
    if (strcmp(p, "/health") == 0) return health(e, w);
    if (strcmp(p, "/metrics") == 0) return strcmp(m, "GET") == 0 ? metrics(e, w) : fail(w, 405, "metrics takes GET");
    if (strncmp(p, PREFIX, sizeof PREFIX - 1) != 0) return fail(w, 404, "no such resource: EST is under " PREFIX);
    p += sizeof PREFIX - 1;
    int is_get = strcmp(m, "GET") == 0, is_post = strcmp(m, "POST") == 0;
    /* <op> or <label>/<op>; batch and batch/<id> */
    char label[80] = "";
    const char *op = p, *slash = strchr(p, '/');
    if (strncmp(p, "batch/", 6) == 0) {
        op = "batch/";
    } else if (slash) {
        if ((size_t)(slash - p) >= sizeof label || slash == p) return fail(w, 404, "no such resource: a bad label");
        memcpy(label, p, (size_t)(slash - p));
        label[slash - p] = 0;
        op = slash + 1;
    }
    int is_enroll = strcmp(op, "simpleenroll") == 0 || strcmp(op, "simplereenroll") == 0;
    int is_batch = strcmp(op, "batch") == 0 && !label[0], is_poll = strcmp(op, "batch/") == 0;
    *opn = strcmp(op, "cacerts") == 0 ? OP_CACERTS : strcmp(op, "csrattrs") == 0 ? OP_CSRATTRS
           : strcmp(op, "simpleenroll") == 0                                ? OP_ENROLL
           : strcmp(op, "simplereenroll") == 0                              ? OP_REENROLL
           : is_batch                                                       ? OP_BATCH
           : is_poll                                                        ? OP_POLL
                                                                            : OP_OTHER;
    if (*opn == OP_CACERTS) return is_get ? cacerts(e, w) : fail(w, 405, "cacerts takes GET");
    if (*opn == OP_CSRATTRS) return is_get ? csrattrs(w) : fail(w, 405, "csrattrs takes GET");
    if (!is_enroll && !is_batch && !is_poll)
        return fail(w, 404, "no such EST operation: cacerts, csrattrs, simpleenroll, simplereenroll, batch");
    if ((is_enroll || is_batch) && !is_post) return fail(w, 405, "enrolment takes POST");
    if (is_poll && !is_get) return fail(w, 405, "a batch is polled with GET");
    /* Enrolment is for a Party known by its DCCKI client certificate (verified, of this
     * environment, in use in the store: the server vouches for it). */
    if (!req->has_client_cert || !req->party || !*req->party)
        return fail(w, 401, "enrolment needs a DCCKI client certificate of this environment that the store has in "
                            "use (none was presented, or it is revoked, expired, unknown or another environment's)");
    if (is_enroll && strcmp(op, "simplereenroll") == 0) return reenroll(e, req, label[0] ? label : NULL, w);
    if (is_enroll) return enroll(e, req, label[0] ? label : NULL, w);
    if (is_batch) return batch_submit(e, req, w);
    return batch_get(e, req, p + 6, w);
}

int smki_est_handle(void *est, const smki_repo_req *req, smki_repo_resp *w)
{
    smki_est *e = est;
    memset(w, 0, sizeof *w);
    w->ep = SMKI_REPO_EP_OTHER;
    int rc, op = -1;
    if (!req || !req->method || !req->path) rc = fail(w, 400, "a malformed request");
    else rc = route(e, req, w, &op);
    if (rc < 0) {
        w->retry_after = 0;
        w->location[0] = 0;
        rc = fail_err(w, "the answer could not be built");
    }
    if (op >= 0) atomic_fetch_add(&e->counts[op][outcome_of(w->status)], 1);
    return rc;
}

int smki_est_serve(smki_est *e, smki_store *store, const char *home, const smki_repo_server_opts *so)
{
    ENSURE(e && store && so, SMKI_E_INTERNAL, "smki_est_serve: missing argument");
    smki_repo_opts ro = {0};
    ro.env = e->env;
    ro.home = home;
    ro.store = store;
    smki_repo *r = NULL;
    GUARD(smki_repo_open(&ro, &r));
    smki_repo_server_opts o = *so;
    o.handle = smki_est_handle;
    o.handle_arg = e;
    o.answer_unverified = 1; /* an expired or unknown client certificate hears 401, not a reset */
    if (!o.max_body) o.max_body = SMKI_EST_BODY_MAX;
    /* What connections may buffer is about max_conns x max_body: a batch's body is
     * megabytes, so fewer connections than the repository's 1024 by default. */
    if (!o.max_conns) o.max_conns = SMKI_EST_CONNS;
    /* Enrolments wait for their durable commit on these threads, not on the loops: while
     * one commits, the others that arrive join the next commit (ra's group commits). */
    if (!o.handle_threads) o.handle_threads = SMKI_EST_HANDLERS;
    int rc = smki_repo_serve(r, &o);
    smki_repo_free(r);
    return rc;
}
