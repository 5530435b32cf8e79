/* repo/handler: one request in, one response out, from the store the CA writes (read
 * transactions only). Routing, the DCC tool's XML endpoints (reference §9), the REST
 * endpoints, access rules, and the counters /metrics reports. No sockets here. */
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "repo.h"

#include "ca/crl.h"

#define RESP_MAX (8u << 20)  /* no response grows past this */
#define CRL_MAX (RESP_MAX - 4096) /* a CRL file read for an answer: it must fit one (checked before reading) */
#define PAGE_DEFAULT 100
#define PAGE_MAX 1000
#define OFFSET_MAX 10000   /* deeper pages: narrow the query instead */
#define SCAN_DEFAULT 100000 /* records one search may examine ([repo] max_scan) */
#define DCC_RESULTS_MAX 1000
#define QUERY_VALUE_MAX 128
#define LAT_BUCKETS 8

static const double LAT_BOUNDS[LAT_BUCKETS] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1};

struct smki_repo {
    smki_store *store;
    int is_store_shared; /* smki_repo_opts.store: the caller's to close */
    smki_ca_db db;
    atomic_int is_db_ready;
    pthread_mutex_t db_lock;
    char env[SMKI_ENV_NAME_MAX];
    char home[4096];
    char version[64];
    char store_dir[4096];
    char arl_ca[32];
    /* The access rules, replaced by smki_repo_reconfigure (SIGHUP) while requests read them. */
    pthread_rwlock_t cfg_lock;
    char apikey[256];
    int has_apikey;
    unsigned public_mask;
    size_t n_allow;
    char allow[SMKI_REPO_ALLOW_MAX][SMKI_REPO_PARTY_MAX];
    atomic_llong tls_not_after; /* 0: no TLS */
    /* counters */
    atomic_ullong requests[SMKI_REPO_EP_COUNT][6]; /* by status class 1xx..5xx (index 1..5) */
    atomic_ullong lat_bucket[LAT_BUCKETS + 1];
    atomic_ullong lat_sum_ns;
    atomic_ullong conns_total, conns_refused;
    atomic_llong conns_open;
    atomic_long max_scan;
};

static const char *const EP_NAMES[SMKI_REPO_EP_COUNT] = {"dcc", "cert", "ca", "crl", "health", "metrics", "other"};

const char *smki_repo_ep_name(smki_repo_ep ep)
{
    return (unsigned)ep < SMKI_REPO_EP_COUNT ? EP_NAMES[ep] : "?";
}

int smki_repo_public_parse(const char *text, unsigned *mask)
{
    *mask = 0;
    unsigned m = 0;
    const char *p = text;
    while (*p) {
        while (*p == ',' || *p == ' ') p++;
        if (!*p) break;
        size_t n = strcspn(p, ", ");
        int found = 0;
        if (n == 3 && strncmp(p, "all", 3) == 0) m = SMKI_REPO_PUBLIC_ALL, found = 1;
        if (n == 4 && strncmp(p, "none", 4) == 0) found = 1;
        for (int i = 0; i < SMKI_REPO_EP_OTHER && !found; i++)
            if (strlen(EP_NAMES[i]) == n && strncmp(p, EP_NAMES[i], n) == 0) m |= 1u << i, found = 1;
        ENSURE(found, SMKI_E_USAGE,
               "public endpoints: '%.*s' is not one of dcc, cert, ca, crl, health, metrics, all, none", (int)n, p);
        p += n;
    }
    *mask = m | (1u << SMKI_REPO_EP_OTHER); /* a 404 needs no certificate */
    return 0;
}

/* The access rules of o into r (the caller holds cfg_lock, or r is not shared yet). */
static void set_access(smki_repo *r, const smki_repo_opts *o)
{
    smki_wipe(r->apikey, sizeof r->apikey);
    r->has_apikey = o->apikey != NULL;
    if (o->apikey) snprintf(r->apikey, sizeof r->apikey, "%s", o->apikey);
    r->public_mask = o->public_mask | (1u << SMKI_REPO_EP_OTHER);
    r->n_allow = o->n_allow;
    memcpy(r->allow, o->allow, sizeof r->allow);
    atomic_store(&r->max_scan, o->max_scan ? (long)o->max_scan : SCAN_DEFAULT);
}

int smki_repo_open(const smki_repo_opts *o, smki_repo **out)
{
    ENSURE(o && (o->store_dir || o->store) && o->env && out, SMKI_E_INTERNAL, "smki_repo_open: missing argument");
    *out = NULL;
    size_t el = strlen(o->env);
    ENSURE(el > 0 && el < SMKI_ENV_NAME_MAX, SMKI_E_USAGE, "environment name '%s'", o->env);
    for (size_t i = 0; i < el; i++)
        ENSURE(isalnum((unsigned char)o->env[i]) || o->env[i] == '-' || o->env[i] == '_', SMKI_E_USAGE,
               "environment name '%s': letters, digits, '-' and '_' only", o->env);
    ENSURE(!o->home || strlen(o->home) < 4000, SMKI_E_USAGE, "home path too long");
    ENSURE(!o->apikey || strlen(o->apikey) < 256, SMKI_E_USAGE, "apikey too long");
    ENSURE(o->n_allow <= SMKI_REPO_ALLOW_MAX, SMKI_E_USAGE, "more than %d allowed parties", SMKI_REPO_ALLOW_MAX);
    const char *arl = o->arl_ca ? o->arl_ca : "smki-root";
    ENSURE(strlen(arl) < 32, SMKI_E_USAGE, "ARL CA name '%s'", arl);
    smki_repo *r = calloc(1, sizeof *r);
    ENSURE(r, SMKI_E_NOMEM, "out of memory");
    pthread_mutex_init(&r->db_lock, NULL);
    pthread_rwlock_init(&r->cfg_lock, NULL);
    memcpy(r->env, o->env, el + 1);
    snprintf(r->home, sizeof r->home, "%s", o->home ? o->home : ".");
    snprintf(r->store_dir, sizeof r->store_dir, "%s", o->store_dir);
    snprintf(r->version, sizeof r->version, "%s", o->version ? o->version : "unknown");
    snprintf(r->arl_ca, sizeof r->arl_ca, "%s", arl);
    set_access(r, o);
    smki_store_opts so = {0, 0, 1};
    r->is_store_shared = o->store != NULL;
    r->store = o->store;
    int rc = r->is_store_shared ? 0 : smki_store_open(o->store_dir, &so, &r->store);
    if (rc < 0 && access(o->store_dir, R_OK | X_OK) == 0)
        /* The repository reads the store but takes a slot in LMDB's reader table. */
        (void)smki_error_wrap("the repository's user needs read access to %s/data.mdb and read-write access to "
                              "its lock.mdb (LMDB's reader table; e.g. group smki, modes 0640 and 0660: "
                              "docs/operations.md)",
                              o->store_dir);
    if (rc < 0) {
        pthread_mutex_destroy(&r->db_lock);
        pthread_rwlock_destroy(&r->cfg_lock);
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int smki_repo_reconfigure(smki_repo *r, const smki_repo_opts *o)
{
    ENSURE(r && o && o->env, SMKI_E_INTERNAL, "smki_repo_reconfigure: missing argument");
    ENSURE(strcmp(o->env, r->env) == 0, SMKI_E_USAGE, "env %s -> %s needs a restart", r->env, o->env);
    ENSURE(!o->store_dir || strcmp(o->store_dir, r->store_dir) == 0, SMKI_E_USAGE, "the store %s -> %s needs a restart",
           r->store_dir, o->store_dir);
    ENSURE(!o->apikey || strlen(o->apikey) < sizeof r->apikey, SMKI_E_USAGE, "apikey too long");
    ENSURE(o->n_allow <= SMKI_REPO_ALLOW_MAX, SMKI_E_USAGE, "more than %d allowed parties", SMKI_REPO_ALLOW_MAX);
    pthread_rwlock_wrlock(&r->cfg_lock);
    set_access(r, o);
    pthread_rwlock_unlock(&r->cfg_lock);
    return 0;
}

void smki_repo_set_tls_not_after(smki_repo *r, int64_t not_after) { atomic_store(&r->tls_not_after, not_after); }

void smki_repo_free(smki_repo *r)
{
    if (!r) return;
    if (!r->is_store_shared) smki_store_close(r->store);
    pthread_mutex_destroy(&r->db_lock);
    pthread_rwlock_destroy(&r->cfg_lock);
    smki_wipe(r->apikey, sizeof r->apikey);
    free(r);
}

void smki_repo_note_conn(smki_repo *r, int opened, int refused)
{
    if (refused) {
        atomic_fetch_add(&r->conns_refused, 1);
        return;
    }
    if (opened) atomic_fetch_add(&r->conns_total, 1);
    atomic_fetch_add(&r->conns_open, opened ? 1 : -1);
}

/* An answer the server gave itself (429 over the limit, 503 stopping, 431, 400 before
 * the handler): counted with the requests, as endpoint group "other". */
void smki_repo_note_status(smki_repo *r, int status)
{
    int cls = status / 100;
    if (cls >= 1 && cls <= 5) atomic_fetch_add(&r->requests[SMKI_REPO_EP_OTHER][cls], 1);
}

/* The CA's databases appear when the CA first writes: look again until they do. */
static int db_ready(smki_repo *r)
{
    if (atomic_load(&r->is_db_ready)) return 1;
    pthread_mutex_lock(&r->db_lock);
    if (!atomic_load(&r->is_db_ready) && smki_ca_db_open(r->store, &r->db) == 0) atomic_store(&r->is_db_ready, 1);
    pthread_mutex_unlock(&r->db_lock);
    smki_error_clear();
    return atomic_load(&r->is_db_ready);
}

/* ---- Response building ----------------------------------------------------------- */
static int add(smki_repo_resp *w, const void *p, size_t n)
{
    if (n > RESP_MAX - w->len) return SMKI_FAIL(SMKI_E_REFUSED, "a response over %u octets", RESP_MAX);
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
static int adds(smki_repo_resp *w, const char *s) { return add(w, s, strlen(s)); }
static int addf(smki_repo_resp *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int addf(smki_repo_resp *w, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    ENSURE(n >= 0 && (size_t)n < sizeof tmp, SMKI_E_INTERNAL, "a response line too long");
    return add(w, tmp, (size_t)n);
}
/* Text for XML or JSON: the escapes both need. */
static int add_esc(smki_repo_resp *w, const char *s, int json)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (json && (ch == '"' || ch == '\\')) GUARD(addf(w, "\\%c", ch));
        else if (json && ch < 0x20) GUARD(addf(w, "\\u%04x", ch));
        else if (!json && ch == '<') GUARD(adds(w, "&lt;"));
        else if (!json && ch == '>') GUARD(adds(w, "&gt;"));
        else if (!json && ch == '&') GUARD(adds(w, "&amp;"));
        else if (!json && ch < 0x20 && ch != '\n' && ch != '\t') GUARD(adds(w, "?"));
        else GUARD(add(w, &ch, 1));
    }
    return 0;
}

static void reset(smki_repo_resp *w)
{
    w->len = 0;
    if (w->body) w->body[0] = 0;
}

/* An error answer: XML for the DCC endpoints, JSON for the rest. */
static int fail_resp(smki_repo_resp *w, int status, int xml, const char *msg)
{
    reset(w);
    w->status = status;
    if (xml) {
        w->content_type = "application/xml";
        GUARD(addf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Status>%d</Status><Message>",
                   status));
        GUARD(add_esc(w, msg, 0));
        return adds(w, "</Message></ErrorResponse>\n");
    }
    w->content_type = "application/json";
    GUARD(addf(w, "{\"status\":%d,\"error\":\"", status));
    GUARD(add_esc(w, msg, 1));
    return adds(w, "\"}\n");
}
/* The same with smki's last error message after a prefix. */
static int fail_err(smki_repo_resp *w, int status, int xml, const char *what)
{
    char msg[SMKI_ERR_MSG_MAX + 128];
    snprintf(msg, sizeof msg, "%s: %s", what, smki_error_msg());
    smki_error_clear();
    return fail_resp(w, status, xml, msg);
}

/* ---- Values -------------------------------------------------------------------------- */
static void serial_hex(const uint8_t s[SMKI_SERIAL_LEN], char out[2 * SMKI_SERIAL_LEN + 1])
{
    smki_hex_encode(s, SMKI_SERIAL_LEN, out, 1);
}

/* 1..32 hex digits, left-padded to the 16 octets every smki serial has. */
static int serial_parse(const char *text, uint8_t out[SMKI_SERIAL_LEN])
{
    size_t n = strlen(text);
    ENSURE(n >= 1 && n <= 2 * SMKI_SERIAL_LEN, SMKI_E_INPUT, "serial '%.40s': 1 to 32 hexadecimal digits", text);
    char padded[2 * SMKI_SERIAL_LEN + 1];
    memset(padded, '0', 2 * SMKI_SERIAL_LEN - n);
    for (size_t i = 0; i < n; i++)
        ENSURE(isxdigit((unsigned char)text[i]), SMKI_E_INPUT, "serial '%.40s': not hexadecimal", text);
    memcpy(padded + 2 * SMKI_SERIAL_LEN - n, text, n + 1);
    size_t len = 0;
    GUARD(smki_hex_decode(padded, 2 * SMKI_SERIAL_LEN, out, SMKI_SERIAL_LEN, &len));
    ENSURE(len == SMKI_SERIAL_LEN, SMKI_E_INPUT, "serial '%.40s'", text);
    return 0;
}

static const char *usage_name(int usage)
{
    return usage == SMKI_USAGE_DS ? "DS" : usage == SMKI_USAGE_KA ? "KA" : NULL;
}

/* RFC 3339 UTC from seconds since 1970, without gmtime/strftime (every search result
 * carries two): days to a civil date (H. Hinnant's algorithm). */
static void digits(char *o, unsigned v, int n)
{
    while (n--) o[n] = (char)('0' + v % 10), v /= 10;
}

static void iso_time(int64_t t, char out[32])
{
    if (t < 0) { /* the CA records no expiry (99991231235959Z, RFC 5280 4.1.2.5) as -1 */
        memcpy(out, "9999-12-31T23:59:59Z", 21);
        return;
    }
    int64_t days = t / 86400, sec = t % 86400;
    int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9, y = yoe + era * 400 + (m <= 2);
    if (y > 9999) {
        snprintf(out, 32, "%lld", (long long)t);
        return;
    }
    digits(out, (unsigned)y, 4), out[4] = '-';
    digits(out + 5, (unsigned)m, 2), out[7] = '-';
    digits(out + 8, (unsigned)d, 2), out[10] = 'T';
    digits(out + 11, (unsigned)(sec / 3600), 2), out[13] = ':';
    digits(out + 14, (unsigned)(sec / 60 % 60), 2), out[16] = ':';
    digits(out + 17, (unsigned)(sec % 60), 2), out[19] = 'Z', out[20] = 0;
}

/* ---- Lookups --------------------------------------------------------------------------- */
typedef struct {
    smki_cert *cert;
    int found;
} first_ctx;
static int keep_first(const smki_cert *c, void *arg)
{
    first_ctx *f = arg;
    memcpy(f->cert, c, offsetof(smki_cert, der) + c->der_len);
    f->found = 1;
    return 1;
}

/* The certificate of this serial in this environment (any issuer). 1 found, 0 not. */
static int find_serial(smki_repo *r, const uint8_t serial[SMKI_SERIAL_LEN], smki_cert *out)
{
    if (!db_ready(r)) return 0;
    smki_ca_query q = SMKI_CA_QUERY_ALL;
    q.env = r->env;
    q.serial = serial;
    first_ctx f = {out, 0};
    GUARD(smki_ca_find(&r->db, &q, keep_first, &f));
    return f.found;
}

/* The store's status of one certificate, for the server's client certificates:
 * SMKI_STATUS_* of the record of (issuer SKI, serial) in this environment, or 0 when
 * the store has none (or cannot be read: a certificate the store cannot vouch for is
 * not accepted). One LMDB lookup; read at each connection, so a revocation is seen
 * without restart. */
int smki_repo_cert_status(smki_repo *r, const uint8_t issuer_ski[SMKI_KEYID_LEN], const uint8_t serial[SMKI_SERIAL_LEN])
{
    if (!r || !db_ready(r)) return 0;
    smki_cert *c = malloc(sizeof *c);
    if (!c) return 0;
    int st = 0;
    if (smki_ca_cert_get(&r->db, issuer_ski, serial, c) == 0 && strcmp(c->env, r->env) == 0) st = (int)c->status;
    smki_error_clear();
    free(c);
    return st;
}

static int wants_pem(const smki_repo_req *req, const char *format)
{
    if (format) return strcmp(format, "pem") == 0;
    const char *a = req->accept;
    return a && (strstr(a, "application/x-pem-file") || strstr(a, "application/pem-certificate-chain") ||
                 strstr(a, "text/plain"));
}

static int send_der(smki_repo_resp *w, const uint8_t *der, size_t len, int pem, const char *der_type)
{
    reset(w);
    w->status = 200;
    if (!pem) {
        w->content_type = der_type;
        return add(w, der, len);
    }
    w->content_type = "application/x-pem-file";
    char buf[4096];
    size_t n = 0;
    GUARD(smki_cert_to_pem(der, len, buf, sizeof buf, &n));
    return add(w, buf, n);
}

/* ---- Query strings ----------------------------------------------------------------------- */
#define QP_MAX 12
typedef struct {
    size_t n;
    struct {
        char key[24];
        char val[QUERY_VALUE_MAX];
    } p[QP_MAX];
} qparams;

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

int smki_repo_path_decode(const char *path, size_t len, char *out)
{
    ENSURE(path && out, SMKI_E_INTERNAL, "smki_repo_path_decode: missing argument");
    char *o = out;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)path[i];
        if (ch == '%') {
            int a = i + 2 < len ? hexval(path[i + 1]) : -1, b = i + 2 < len ? hexval(path[i + 2]) : -1;
            ENSURE(a >= 0 && b >= 0, SMKI_E_INPUT, "a path with a bad escape at octet %zu", i);
            ch = (unsigned char)(a * 16 + b);
            i += 2;
        }
        ENSURE(ch, SMKI_E_INPUT, "a path holding NUL");
        *o++ = (char)ch;
    }
    *o = 0;
    return 0;
}

/* Percent-decode one component into out (cap incl. NUL); no NUL octets allowed. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap, const char *what)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '+') ch = ' ';
        else if (ch == '%') {
            int h = i + 1 < n ? hexval(s[i + 1]) : -1, l = i + 2 < n ? hexval(s[i + 2]) : -1;
            ENSURE(h >= 0 && l >= 0, SMKI_E_INPUT, "a bad %%-escape in %s", what);
            ch = h * 16 + l;
            i += 2;
        }
        ENSURE(ch != 0, SMKI_E_INPUT, "a NUL in %s", what);
        ENSURE(o + 1 < cap, SMKI_E_INPUT, "%s is longer than %zu characters", what, cap - 1);
        out[o++] = (char)ch;
    }
    out[o] = 0;
    return 0;
}

static int query_parse(const char *q, qparams *out)
{
    out->n = 0;
    if (!q) return 0;
    ENSURE(strlen(q) <= 2048, SMKI_E_INPUT, "a query string of %zu characters (at most 2048)", strlen(q));
    const char *p = q;
    while (*p) {
        size_t n = strcspn(p, "&");
        if (n) {
            const char *eq = memchr(p, '=', n);
            size_t kl = eq ? (size_t)(eq - p) : n;
            ENSURE(out->n < QP_MAX, SMKI_E_INPUT, "more than %d query parameters", QP_MAX);
            GUARD(pct_decode(p, kl, out->p[out->n].key, sizeof out->p[out->n].key, "a parameter name"));
            GUARD(pct_decode(eq ? eq + 1 : p + n, eq ? n - kl - 1 : 0, out->p[out->n].val,
                             sizeof out->p[out->n].val, "a parameter value"));
            for (size_t i = 0; i < out->n; i++)
                ENSURE(strcmp(out->p[i].key, out->p[out->n].key) != 0, SMKI_E_INPUT,
                       "the query parameter '%s' is given twice", out->p[i].key);
            out->n++;
        }
        p += n;
        if (*p == '&') p++;
    }
    return 0;
}

static const char *qget(const qparams *q, const char *key)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->p[i].key, key) == 0) return q->p[i].val;
    return NULL;
}

/* Every parameter must be one of allowed (NULL-terminated). */
static int query_only(const qparams *q, const char *const *allowed)
{
    for (size_t i = 0; i < q->n; i++) {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++) ok = strcmp(*a, q->p[i].key) == 0;
        ENSURE(ok, SMKI_E_INPUT, "unknown query parameter '%s'", q->p[i].key);
    }
    return 0;
}

static int parse_uint(const char *s, long max, const char *what, long *out)
{
    ENSURE(*s, SMKI_E_INPUT, "%s is empty", what);
    long v = 0;
    for (const char *p = s; *p; p++) {
        ENSURE(*p >= '0' && *p <= '9', SMKI_E_INPUT, "%s '%s' is not a number", what, s);
        v = v * 10 + (*p - '0');
        ENSURE(v <= max, SMKI_E_INPUT, "%s '%s' is over %ld", what, s, max);
    }
    *out = v;
    return 0;
}

/* ---- The DCC tool's endpoints (reference §9) ------------------------------------------------ */
static const char XML_HEAD[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

typedef struct {
    smki_repo_resp *w;
    size_t n;
    int is_truncated;
} dcc_search_ctx;

static int dcc_result(const smki_cert *c, void *arg)
{
    dcc_search_ctx *s = arg;
    if (s->n == DCC_RESULTS_MAX) {
        s->is_truncated = 1;
        return 1;
    }
    char ser[2 * SMKI_SERIAL_LEN + 1];
    serial_hex(c->serial, ser);
    GUARD(addf(s->w, "<Result><CertificateSerial>%s</CertificateSerial>", ser));
    if (usage_name(c->usage)) GUARD(addf(s->w, "<CertificateUsage>%s</CertificateUsage>", usage_name(c->usage)));
    GUARD(addf(s->w, "<CertificateStatus>%c</CertificateStatus>", (char)c->status));
    if (c->role >= 0) GUARD(addf(s->w, "<CertificateRole>%d</CertificateRole>", c->role));
    GUARD(adds(s->w, "</Result>"));
    s->n++;
    return 0;
}

static int dcc_parse(const smki_repo_req *req, const char *root, smki_repo_xml *x, smki_repo_resp *w, int *done)
{
    *done = 1;
    if (!req->body_len) return fail_resp(w, 401, 1, "invalid parameters: the request has no XML body");
    if (smki_repo_xml_parse(req->body, req->body_len, x) < 0) return fail_err(w, 401, 1, "invalid parameters");
    if (strcmp(x->root, root) != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "invalid parameters: the root element is <%s>, not <%s>", x->root, root);
        return fail_resp(w, 401, 1, msg);
    }
    *done = 0;
    return 0;
}

static int dcc_search(smki_repo *r, const smki_repo_req *req, smki_repo_resp *w)
{
    smki_repo_xml x;
    int done;
    GUARD(dcc_parse(req, "CertificateSearchRequest", &x, w, &done));
    if (done) return 0;
    smki_ca_query q = SMKI_CA_QUERY_ALL;
    q.env = r->env;
    const char *org = NULL, *dev = NULL;
    smki_eui64_t eui;
    char msg[300];
    for (size_t i = 0; i < x.n; i++) {
        const char *name = x.child[i].name, *text = x.child[i].text;
        int dup = 0;
        smki_repo_xml_child(&x, name, &dup);
        if (dup) {
            snprintf(msg, sizeof msg, "invalid parameters: <%s> is given twice", name);
            return fail_resp(w, 401, 1, msg);
        }
        if (strcmp(name, "CertificateSubjectName") == 0) org = text;
        else if (strcmp(name, "CertificateSubjectAltName") == 0) dev = text;
        else if (strcmp(name, "CertificateUsage") == 0) {
            if (strcmp(text, "DS") == 0) q.usage = SMKI_USAGE_DS;
            else if (strcmp(text, "KA") == 0) q.usage = SMKI_USAGE_KA;
            else return fail_resp(w, 401, 1, "invalid parameters: CertificateUsage is DS or KA");
        } else if (strcmp(name, "CertificateStatus") == 0) {
            smki_cert_status st;
            if (smki_cert_status_parse(text, &st) < 0) return fail_err(w, 401, 1, "invalid parameters");
            q.status = st;
        } else if (strcmp(name, "CertificateRole") == 0) {
            long role;
            if (parse_uint(text, 255, "CertificateRole", &role) < 0) return fail_err(w, 401, 1, "invalid parameters");
            q.role = (int)role;
        } else {
            snprintf(msg, sizeof msg, "invalid parameters: <%s> is not a search criterion", name);
            return fail_resp(w, 401, 1, msg);
        }
    }
    if (!!org == !!dev)
        return fail_resp(w, 401, 1,
                         "invalid parameters: give exactly one of CertificateSubjectName (organisation) and "
                         "CertificateSubjectAltName (device)");
    if (smki_eui64_parse(org ? org : dev, &eui) < 0) return fail_err(w, 401, 1, "invalid parameters");
    q.eui = &eui;
    q.profile = org ? SMKI_PROFILE_ORGANISATION : SMKI_PROFILE_DEVICE;
    reset(w);
    w->status = 200;
    w->content_type = "application/xml";
    GUARD(adds(w, XML_HEAD));
    GUARD(adds(w, "<CertificateSearchResponse>"));
    dcc_search_ctx s = {w, 0, 0};
    if (db_ready(r)) {
        int rc = smki_ca_find(&r->db, &q, dcc_result, &s);
        if (rc < 0) return fail_err(w, 500, 1, "the store");
    }
    if (s.n == 0) return fail_resp(w, 402, 1, "not found: no certificate matches the search");
    return adds(w, "</CertificateSearchResponse>\n");
}

static int dcc_retrieve(smki_repo *r, const smki_repo_req *req, smki_repo_resp *w)
{
    smki_repo_xml x;
    int done, dup = 0;
    GUARD(dcc_parse(req, "CertificateDataRequest", &x, w, &done));
    if (done) return 0;
    const char *text = smki_repo_xml_child(&x, "CertificateSerial", &dup);
    if (!text || dup || x.n != 1)
        return fail_resp(w, 401, 1, "invalid parameters: CertificateDataRequest holds exactly one CertificateSerial");
    uint8_t serial[SMKI_SERIAL_LEN];
    if (serial_parse(text, serial) < 0) return fail_err(w, 401, 1, "invalid parameters");
    smki_cert *c = malloc(sizeof *c);
    ENSURE(c, SMKI_E_NOMEM, "out of memory");
    int rc = find_serial(r, serial, c);
    if (rc < 0) rc = fail_err(w, 500, 1, "the store");
    else if (rc == 0) rc = fail_resp(w, 402, 1, "not found: no certificate of that serial");
    else {
        reset(w);
        w->status = 200;
        w->content_type = "application/xml";
        char *b64 = malloc(4 * ((c->der_len + 2) / 3) + 1);
        rc = b64 ? 0 : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
        if (rc == 0) EVP_EncodeBlock((unsigned char *)b64, c->der, (int)c->der_len);
        if (rc == 0) rc = adds(w, XML_HEAD);
        if (rc == 0) rc = adds(w, "<CertificateDataResponse><CertificateResponse><CertificateBody>");
        if (rc == 0) rc = adds(w, b64);
        if (rc == 0) rc = adds(w, "</CertificateBody>");
        if (rc == 0 && c->has_eui) {
            char e[SMKI_EUI64_TEXT_MAX];
            smki_eui64_format(&c->eui, SMKI_EUI64_HYPHEN, e);
            const char *tag = c->profile == SMKI_PROFILE_DEVICE ? "CertificateSubjectAltName" : "CertificateSubjectName";
            rc = addf(w, "<%s>%s</%s>", tag, e, tag);
        }
        if (rc == 0) rc = adds(w, "</CertificateResponse></CertificateDataResponse>\n");
        free(b64);
    }
    free(c);
    return rc;
}

/* ---- REST ------------------------------------------------------------------------------------ */
/* One record as JSON, built in place (a search answer is mostly these). */
typedef struct {
    char *o, *end;
} jbuf;
static void put(jbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (!b->o || n > (size_t)(b->end - b->o)) {
        b->o = NULL;
        return;
    }
    memcpy(b->o, s, n);
    b->o += n;
}

static int json_cert(smki_repo_resp *w, const smki_cert *c)
{
    char ser[2 * SMKI_SERIAL_LEN + 1], iss[2 * SMKI_KEYID_LEN + 1], ski[2 * SMKI_KEYID_LEN + 1], nb[32], na[32];
    char out[1024], e[SMKI_EUI64_TEXT_MAX], role[16], st[2] = {(char)c->status, 0};
    serial_hex(c->serial, ser);
    smki_hex_encode(c->issuer_ski, SMKI_KEYID_LEN, iss, 1);
    smki_hex_encode(c->ski, SMKI_KEYID_LEN, ski, 1);
    iso_time(c->not_before, nb);
    iso_time(c->not_after, na);
    const smki_profile *p = smki_profile_get(c->profile);
    jbuf b = {out, out + sizeof out};
    put(&b, "{\"serial\":\""), put(&b, ser), put(&b, "\",\"issuer_ski\":\""), put(&b, iss);
    put(&b, "\",\"ski\":\""), put(&b, ski), put(&b, "\",\"profile\":\""), put(&b, p ? p->name : "unknown");
    put(&b, "\",");
    if (c->has_eui) {
        smki_eui64_format(&c->eui, SMKI_EUI64_HYPHEN, e);
        put(&b, "\"eui\":\""), put(&b, e), put(&b, "\",");
    } else put(&b, "\"eui\":null,");
    if (usage_name(c->usage)) put(&b, "\"usage\":\""), put(&b, usage_name(c->usage)), put(&b, "\",");
    else put(&b, "\"usage\":null,");
    if (c->role >= 0) {
        snprintf(role, sizeof role, "%d", c->role);
        put(&b, "\"role\":"), put(&b, role), put(&b, ",\"role_name\":\""), put(&b, smki_role_name((unsigned)c->role));
        put(&b, "\",");
    } else put(&b, "\"role\":null,");
    put(&b, "\"status\":\""), put(&b, st), put(&b, "\",\"status_name\":\""), put(&b, smki_cert_status_name(c->status));
    put(&b, "\",\"not_before\":\""), put(&b, nb), put(&b, "\",\"not_after\":\""), put(&b, na), put(&b, "\"}");
    ENSURE(b.o, SMKI_E_INTERNAL, "a certificate's JSON over %zu octets", sizeof out);
    return add(w, out, (size_t)(b.o - out));
}

static int cert_by_serial(smki_repo *r, const smki_repo_req *req, const char *text, smki_repo_resp *w)
{
    static const char *const ALLOWED[] = {"format", NULL};
    qparams qp;
    if (query_parse(req->query, &qp) < 0 || query_only(&qp, ALLOWED) < 0) return fail_err(w, 400, 0, "bad query");
    const char *format = qget(&qp, "format");
    if (format && strcmp(format, "pem") != 0 && strcmp(format, "der") != 0 && strcmp(format, "json") != 0)
        return fail_resp(w, 400, 0, "format is pem, der or json");
    uint8_t serial[SMKI_SERIAL_LEN];
    if (serial_parse(text, serial) < 0) return fail_err(w, 400, 0, "bad serial");
    smki_cert *c = malloc(sizeof *c);
    ENSURE(c, SMKI_E_NOMEM, "out of memory");
    int rc = find_serial(r, serial, c);
    if (rc < 0) rc = fail_err(w, 500, 0, "the store");
    else if (rc == 0) rc = fail_resp(w, 404, 0, "no certificate of that serial");
    else if (format && strcmp(format, "json") == 0) {
        reset(w);
        w->status = 200;
        w->content_type = "application/json";
        rc = json_cert(w, c);
        if (rc == 0) rc = adds(w, "\n");
    } else rc = send_der(w, c->der, c->der_len, wants_pem(req, format), "application/pkix-cert");
    free(c);
    return rc;
}

/* A search pages through what the store's index yields. What it examines is counted
 * (the offset skipped, and the records a profile, which no index holds, passes over):
 * past max_scan it stops, so no request holds a loop and a read transaction for a
 * scan of the whole environment. */
typedef struct {
    smki_repo_resp *w;
    long offset, limit, seen, n, examined, max_scan;
    smki_profile_id profile;
    int has_more, is_over_scan;
} page_ctx;

static int page_result(const smki_cert *c, void *arg)
{
    page_ctx *p = arg;
    if (++p->examined > p->max_scan) {
        p->is_over_scan = 1;
        return 1;
    }
    if (p->profile != SMKI_PROFILE_UNKNOWN && c->profile != p->profile) return 0;
    if (p->seen++ < p->offset) return 0;
    if (p->n == p->limit) {
        p->has_more = 1;
        return 1;
    }
    if (p->n) GUARD(adds(p->w, ","));
    GUARD(json_cert(p->w, c));
    p->n++;
    return 0;
}

/* A search read from its query, ready for the store. */
typedef struct {
    smki_ca_query q;
    smki_eui64_t eui;
    uint8_t issuer[SMKI_KEYID_LEN];
    long limit, offset;
    page_ctx p;
} search;

/* The issuer a search names: a CA kind name ("smki-dca") or its SKI in hex. 1 read,
 * 0 answered (w holds the refusal), negative on failure. */
static int search_issuer(smki_repo *r, const char *v, smki_repo_resp *w, uint8_t issuer[SMKI_KEYID_LEN])
{
    smki_ca_kind kind = SMKI_CA_KIND_COUNT;
    for (int k = 0; k < SMKI_CA_KIND_COUNT; k++)
        if (strcmp(v, smki_ca_kind_name((smki_ca_kind)k)) == 0) kind = (smki_ca_kind)k;
    if (kind == SMKI_CA_KIND_COUNT) {
        size_t n = 0;
        if (strlen(v) != 2 * SMKI_KEYID_LEN || smki_hex_decode(v, strlen(v), issuer, SMKI_KEYID_LEN, &n) < 0 ||
            n != SMKI_KEYID_LEN) {
            smki_error_clear();
            GUARD(fail_resp(w, 400, 0, "bad issuer: a CA name (smki-oca, smki-dca, ...) or a 16-digit SKI"));
            return 0;
        }
        return 1;
    }
    smki_ca_record *rec = malloc(sizeof *rec);
    ENSURE(rec, SMKI_E_NOMEM, "out of memory");
    int rc = db_ready(r) ? smki_ca_get(&r->db, r->env, kind, rec) : SMKI_E_NOTFOUND;
    if (rc == 0) memcpy(issuer, rec->cert.ski, SMKI_KEYID_LEN);
    free(rec);
    if (rc == 0) return 1;
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        GUARD(fail_resp(w, 404, 0, "the environment has no CA of that name"));
        return 0;
    }
    GUARD(fail_err(w, 500, 0, "the store"));
    return 0;
}

/* The facets of a search (eui, role, usage, status, profile). 1 read, 0 answered. */
static int search_facets(const qparams *qp, smki_repo_resp *w, search *sr)
{
    const char *v;
    if ((v = qget(qp, "eui"))) {
        if (smki_eui64_parse(v, &sr->eui) < 0) return fail_err(w, 400, 0, "bad eui") < 0 ? -1 : 0;
        sr->q.eui = &sr->eui;
    }
    if ((v = qget(qp, "role"))) {
        uint8_t code;
        if (smki_role_parse(v, &code) < 0) return fail_err(w, 400, 0, "bad role") < 0 ? -1 : 0;
        sr->q.role = code;
    }
    if ((v = qget(qp, "usage"))) {
        if (strcasecmp(v, "ds") == 0) sr->q.usage = SMKI_USAGE_DS;
        else if (strcasecmp(v, "ka") == 0) sr->q.usage = SMKI_USAGE_KA;
        else if (strcasecmp(v, "ca") == 0) sr->q.usage = 0;
        else return fail_resp(w, 400, 0, "bad usage: DS, KA or CA") < 0 ? -1 : 0;
    }
    if ((v = qget(qp, "status"))) {
        smki_cert_status st;
        if (smki_cert_status_parse(v, &st) < 0) return fail_err(w, 400, 0, "bad status") < 0 ? -1 : 0;
        sr->q.status = st;
    }
    if ((v = qget(qp, "profile"))) {
        const smki_profile *p = smki_profile_by_name(v);
        if (!p || p->id == SMKI_PROFILE_UNKNOWN) return fail_resp(w, 400, 0, "bad profile: not a profile name") < 0 ? -1 : 0;
        sr->q.profile = p->id;
    }
    return 1;
}

/* Reads a search's query and starts its answer. 1 ready for the store (sr->q), 0
 * answered (a refusal in w), negative on failure. */
static int search_parse(smki_repo *r, const smki_repo_req *req, smki_repo_resp *w, search *sr)
{
    static const char *const ALLOWED[] = {"eui", "role", "usage", "status", "issuer", "profile", "limit", "offset", NULL};
    qparams qp;
    if (query_parse(req->query, &qp) < 0 || query_only(&qp, ALLOWED) < 0) return fail_err(w, 400, 0, "bad query") < 0 ? -1 : 0;
    sr->q = (smki_ca_query)SMKI_CA_QUERY_ALL;
    sr->q.env = r->env;
    sr->limit = PAGE_DEFAULT, sr->offset = 0;
    int rc = search_facets(&qp, w, sr);
    const char *v;
    if (rc == 1 && (v = qget(&qp, "issuer"))) {
        rc = search_issuer(r, v, w, sr->issuer);
        sr->q.issuer_ski = sr->issuer;
    }
    if (rc != 1) return rc;
    if ((v = qget(&qp, "limit")) && parse_uint(v, PAGE_MAX, "limit", &sr->limit) < 0)
        return fail_err(w, 400, 0, "bad limit") < 0 ? -1 : 0;
    if ((v = qget(&qp, "offset")) && parse_uint(v, OFFSET_MAX, "offset", &sr->offset) < 0)
        return fail_err(w, 400, 0, "bad offset") < 0 ? -1 : 0;
    if (sr->limit == 0) return fail_resp(w, 400, 0, "bad limit: at least 1") < 0 ? -1 : 0;
    reset(w);
    w->status = 200;
    w->content_type = "application/json";
    GUARD(adds(w, "{\"results\":["));
    sr->p = (page_ctx){w, sr->offset, sr->limit, 0, 0, 0, atomic_load(&r->max_scan), sr->q.profile, 0, 0};
    sr->q.profile = SMKI_PROFILE_UNKNOWN; /* filtered by page_result, where what it passes over is counted */
    return 1;
}

/* The last error's message into why (when rc failed), and the error cleared. */
static void take_error(int rc, char *why, size_t cap)
{
    snprintf(why, cap, "%s", rc < 0 ? smki_error_msg() : "");
    smki_error_clear();
}

/* Ends a search's answer once the store was read (find_rc: how that went, why: the
 * failure's message). */
static int search_end(search *sr, int find_rc, const char *why)
{
    smki_repo_resp *w = sr->p.w;
    if (find_rc < 0) {
        char msg[SMKI_ERR_MSG_MAX + 16];
        snprintf(msg, sizeof msg, "the store: %s", why);
        return fail_resp(w, 500, 0, msg);
    }
    if (sr->p.is_over_scan) {
        char msg[160];
        snprintf(msg, sizeof msg, "the query would scan more than %ld records: narrow it (eui, serial, ski, status, role, usage, issuer)",
                 sr->p.max_scan);
        return fail_resp(w, 400, 0, msg);
    }
    GUARD(addf(w, "],\"count\":%ld,\"offset\":%ld,\"limit\":%ld,", sr->p.n, sr->offset, sr->limit));
    if (sr->p.has_more) return addf(w, "\"next_offset\":%ld}\n", sr->offset + sr->p.n);
    return adds(w, "\"next_offset\":null}\n");
}

static int cert_search(smki_repo *r, const smki_repo_req *req, smki_repo_resp *w)
{
    search *sr = malloc(sizeof *sr);
    ENSURE(sr, SMKI_E_NOMEM, "out of memory");
    int rc = search_parse(r, req, w, sr);
    if (rc == 1) {
        int frc = db_ready(r) ? smki_ca_find(&r->db, &sr->q, page_result, &sr->p) : 0;
        char why[SMKI_ERR_MSG_MAX];
        take_error(frc, why, sizeof why);
        rc = search_end(sr, frc, why);
    }
    free(sr);
    return rc < 0 ? rc : 0;
}

static int ca_cert(smki_repo *r, const smki_repo_req *req, const char *name, smki_repo_resp *w)
{
    static const char *const ALLOWED[] = {"format", NULL};
    qparams qp;
    if (query_parse(req->query, &qp) < 0 || query_only(&qp, ALLOWED) < 0) return fail_err(w, 400, 0, "bad query");
    const char *format = qget(&qp, "format");
    smki_ca_record *rec = malloc(sizeof *rec);
    ENSURE(rec, SMKI_E_NOMEM, "out of memory");
    int rc = 0, n = 0;
    if (!name) {
        reset(w);
        w->status = 200;
        w->content_type = "application/json";
        rc = adds(w, "{\"cas\":[");
        for (int k = 0; k < SMKI_CA_KIND_COUNT && rc == 0 && db_ready(r); k++) {
            int g = smki_ca_get(&r->db, r->env, (smki_ca_kind)k, rec);
            if (g == SMKI_E_NOTFOUND) {
                smki_error_clear();
                continue;
            }
            if (g < 0) {
                rc = fail_err(w, 500, 0, "the store");
                goto out;
            }
            rc = addf(w, "%s{\"name\":\"%s\",\"certificate\":", n++ ? "," : "", smki_ca_kind_name((smki_ca_kind)k));
            if (rc == 0) rc = json_cert(w, &rec->cert);
            if (rc == 0) rc = addf(w, ",\"href\":\"/ca/%s\",\"crl\":\"/crl/%s\"}", smki_ca_kind_name((smki_ca_kind)k),
                                   smki_ca_kind_name((smki_ca_kind)k));
        }
        if (rc == 0) rc = adds(w, "]}\n");
        goto out;
    }
    smki_ca_kind kind = SMKI_CA_KIND_COUNT;
    for (int k = 0; k < SMKI_CA_KIND_COUNT; k++)
        if (strcmp(name, smki_ca_kind_name((smki_ca_kind)k)) == 0) kind = (smki_ca_kind)k;
    if (kind == SMKI_CA_KIND_COUNT) {
        rc = fail_resp(w, 404, 0, "no CA of that name (smki-root, smki-oca, smki-dca, dccki-root, dccki-ica)");
        goto out;
    }
    int g = db_ready(r) ? smki_ca_get(&r->db, r->env, kind, rec) : SMKI_E_NOTFOUND;
    if (g == SMKI_E_NOTFOUND) {
        smki_error_clear();
        rc = fail_resp(w, 404, 0, "the environment has no CA of that name");
    } else if (g < 0) rc = fail_err(w, 500, 0, "the store");
    else rc = send_der(w, rec->cert.der, rec->cert.der_len, wants_pem(req, format), "application/pkix-cert");
out:
    free(rec);
    return rc;
}

/* A CRL (an ARL for a root) as the CA published it: the latest the store records
 * (smki_ca_crl_get), else the file <home>/ca/<env>/<ca>.crl; sent as it is (DER). */
static int crl(smki_repo *r, const smki_repo_req *req, const char *name, int want_root, smki_repo_resp *w)
{
    if (req->query && *req->query) return fail_resp(w, 400, 0, "bad query: the CRL takes no parameters");
    smki_ca_kind kind = SMKI_CA_KIND_COUNT;
    for (int k = 0; k < SMKI_CA_KIND_COUNT; k++)
        if (strcmp(name, smki_ca_kind_name((smki_ca_kind)k)) == 0) kind = (smki_ca_kind)k;
    if (kind == SMKI_CA_KIND_COUNT)
        return fail_resp(w, 404, 0, "no CA of that name (smki-root, smki-oca, smki-dca, dccki-root, dccki-ica)");
    if (want_root && !smki_ca_kind_is_root(kind)) return fail_resp(w, 404, 0, "an ARL is a root's (smki-root, dccki-root)");
    smki_crl c;
    memset(&c, 0, sizeof c);
    int rc = db_ready(r) ? smki_ca_crl_get(&r->db, r->env, kind, &c) : SMKI_E_NOTFOUND;
    if (rc == 0) {
        reset(w);
        w->status = 200;
        w->content_type = "application/pkix-crl";
        rc = add(w, c.der, c.der_len);
        smki_crl_clear(&c);
        return rc;
    }
    smki_crl_clear(&c);
    if (rc != SMKI_E_NOTFOUND) return fail_err(w, 500, 0, "the store");
    smki_error_clear();
    char path[4200];
    snprintf(path, sizeof path, "%s/ca/%s/%s.crl", r->home, r->env, name);
    uint8_t *data = NULL;
    size_t len = 0;
    rc = smki_file_read(path, CRL_MAX, &data, &len);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        return fail_resp(w, 404, 0, "that CA has published no CRL");
    }
    if (rc < 0) return fail_err(w, 500, 0, "reading the CRL");
    reset(w);
    w->status = 200;
    w->content_type = "application/pkix-crl";
    rc = add(w, data, len);
    free(data);
    return rc;
}

/* ---- Health: the lists and the TLS certificate ------------------------------------------------
 * A CRL or ARL is due in the last quarter of its period (smki doctor says the same) and
 * lapsed past its nextUpdate; the TLS certificate is near its end within TLS_WARN_DAYS. */
#define TLS_WARN_DAYS 14
typedef enum { LIST_OK, LIST_DUE, LIST_LAPSED, LIST_MISSING } list_state;
static const char *const LIST_STATES[] = {"ok", "due", "lapsed", "missing"};

typedef struct {
    smki_ca_kind kind;
    list_state state;
    uint64_t number;
    int64_t this_update, next_update;
} list_info;

/* The latest list of each CA the environment has (at most SMKI_CA_KIND_COUNT). */
static int list_infos(smki_repo *r, int64_t now, list_info *out, size_t *n)
{
    *n = 0;
    if (!db_ready(r)) return 0;
    smki_ca_record *rec = malloc(sizeof *rec);
    ENSURE(rec, SMKI_E_NOMEM, "out of memory");
    int rc = 0;
    for (int k = 0; k < SMKI_CA_KIND_COUNT && rc == 0; k++) {
        rc = smki_ca_get(&r->db, r->env, (smki_ca_kind)k, rec);
        if (rc == SMKI_E_NOTFOUND) {
            smki_error_clear();
            rc = 0;
            continue;
        }
        if (rc < 0) break;
        list_info *li = &out[(*n)++];
        memset(li, 0, sizeof *li);
        li->kind = (smki_ca_kind)k;
        smki_crl c;
        memset(&c, 0, sizeof c);
        rc = smki_ca_crl_get(&r->db, r->env, (smki_ca_kind)k, &c);
        if (rc == SMKI_E_NOTFOUND) {
            smki_error_clear();
            li->state = LIST_MISSING;
            rc = 0;
            continue;
        }
        if (rc < 0) break;
        li->number = c.number;
        li->this_update = c.this_update;
        li->next_update = c.next_update;
        li->state = c.next_update <= now                                     ? LIST_LAPSED
                    : c.next_update - now < (c.next_update - c.this_update) / 4 ? LIST_DUE
                                                                                : LIST_OK;
        smki_crl_clear(&c);
    }
    free(rec);
    return rc;
}

static int health(smki_repo *r, smki_repo_resp *w)
{
    size_t n = 0, nl = 0;
    int ready = db_ready(r);
    int64_t now = (int64_t)time(NULL);
    list_info lists[SMKI_CA_KIND_COUNT];
    if (ready && (smki_ca_count(&r->db, &n) < 0 || list_infos(r, now, lists, &nl) < 0))
        return fail_err(w, 503, 0, "the store");
    char reasons[1024] = "";
    size_t used = 0;
#define REASON(...)                                                                                   \
    do {                                                                                              \
        int k_ = snprintf(reasons + used, sizeof reasons - used, "%s\"", used ? "," : "");            \
        if (k_ > 0 && (size_t)k_ < sizeof reasons - used) used += (size_t)k_;                         \
        k_ = snprintf(reasons + used, sizeof reasons - used, __VA_ARGS__);                            \
        if (k_ > 0 && (size_t)k_ < sizeof reasons - used) used += (size_t)k_;                         \
        if (used + 2 < sizeof reasons) reasons[used++] = '"', reasons[used] = 0;                     \
    } while (0)
    if (!ready || nl == 0) REASON("the store holds no CA of environment %s", r->env);
    char at[32];
    for (size_t i = 0; i < nl; i++) {
        const char *what = smki_ca_kind_is_root(lists[i].kind) ? "ARL" : "CRL";
        const char *ca = smki_ca_kind_name(lists[i].kind);
        iso_time(lists[i].next_update, at);
        if (lists[i].state == LIST_MISSING) REASON("%s has published no %s", ca, what);
        else if (lists[i].state == LIST_LAPSED) REASON("the %s of %s lapsed at %s", what, ca, at);
        else if (lists[i].state == LIST_DUE) REASON("the %s of %s is due: nextUpdate %s", what, ca, at);
    }
    int64_t tls = atomic_load(&r->tls_not_after);
    if (tls && tls - now < (int64_t)TLS_WARN_DAYS * 86400) {
        iso_time(tls, at);
        REASON("the TLS certificate %s %s", tls <= now ? "expired at" : "expires at", at);
    }
#undef REASON
    reset(w);
    w->status = 200;
    w->content_type = "application/json";
    GUARD(addf(w, "{\"status\":\"%s\",\"env\":\"%s\",\"store\":\"%s\",\"certificates\":%zu,\"reasons\":[%s],\"lists\":[",
               used ? "degraded" : "ok", r->env, ready ? "ready" : "empty", n, reasons));
    for (size_t i = 0; i < nl; i++) {
        iso_time(lists[i].next_update, at);
        GUARD(addf(w, "%s{\"ca\":\"%s\",\"list\":\"%s\",\"state\":\"%s\",\"number\":%llu,\"next_update\":\"%s\"}",
                   i ? "," : "", smki_ca_kind_name(lists[i].kind), smki_ca_kind_is_root(lists[i].kind) ? "arl" : "crl",
                   LIST_STATES[lists[i].state], (unsigned long long)lists[i].number,
                   lists[i].state == LIST_MISSING ? "" : at));
    }
    GUARD(adds(w, "]"));
    if (tls) {
        iso_time(tls, at);
        GUARD(addf(w, ",\"tls_not_after\":\"%s\"", at));
    }
    return adds(w, "}\n");
}

static int metrics(smki_repo *r, smki_repo_resp *w)
{
    reset(w);
    w->status = 200;
    w->content_type = "text/plain; version=0.0.4";
    GUARD(adds(w, "# HELP smki_repo_requests_total Requests answered, by endpoint group and status class.\n"
                  "# TYPE smki_repo_requests_total counter\n"));
    for (int e = 0; e < SMKI_REPO_EP_COUNT; e++)
        for (int c = 1; c <= 5; c++) {
            unsigned long long v = atomic_load(&r->requests[e][c]);
            if (v || c == 2)
                GUARD(addf(w, "smki_repo_requests_total{env=\"%s\",endpoint=\"%s\",code=\"%dxx\"} %llu\n", r->env,
                           EP_NAMES[e], c, v));
        }
    GUARD(adds(w, "# HELP smki_repo_handle_seconds Time to answer a request, socket I/O excluded.\n"
                  "# TYPE smki_repo_handle_seconds histogram\n"));
    unsigned long long cum = 0;
    for (int b = 0; b <= LAT_BUCKETS; b++) {
        cum += atomic_load(&r->lat_bucket[b]);
        if (b < LAT_BUCKETS) GUARD(addf(w, "smki_repo_handle_seconds_bucket{le=\"%g\"} %llu\n", LAT_BOUNDS[b], cum));
        else GUARD(addf(w, "smki_repo_handle_seconds_bucket{le=\"+Inf\"} %llu\n", cum));
    }
    GUARD(addf(w, "smki_repo_handle_seconds_sum %.9f\nsmki_repo_handle_seconds_count %llu\n",
               (double)atomic_load(&r->lat_sum_ns) / 1e9, cum));
    GUARD(addf(w,
               "# HELP smki_repo_connections_open Connections open now.\n# TYPE smki_repo_connections_open gauge\n"
               "smki_repo_connections_open %lld\n"
               "# HELP smki_repo_connections_total Connections accepted.\n# TYPE smki_repo_connections_total counter\n"
               "smki_repo_connections_total %llu\n"
               "# HELP smki_repo_connections_refused_total Connections refused over the limit.\n"
               "# TYPE smki_repo_connections_refused_total counter\nsmki_repo_connections_refused_total %llu\n",
               (long long)atomic_load(&r->conns_open), atomic_load(&r->conns_total), atomic_load(&r->conns_refused)));
    size_t n = 0, nl = 0;
    if (db_ready(r) && smki_ca_count(&r->db, &n) < 0) smki_error_clear();
    GUARD(addf(w,
               "# HELP smki_repo_certificates Certificates in the store.\n# TYPE smki_repo_certificates gauge\n"
               "smki_repo_certificates %zu\n",
               n));
    int64_t now = (int64_t)time(NULL);
    list_info lists[SMKI_CA_KIND_COUNT];
    if (list_infos(r, now, lists, &nl) < 0) smki_error_clear(), nl = 0;
    GUARD(adds(w, "# HELP smki_repo_list_next_update_seconds nextUpdate of each CA's latest CRL or ARL (Unix time).\n"
                  "# TYPE smki_repo_list_next_update_seconds gauge\n"));
    for (size_t i = 0; i < nl; i++)
        if (lists[i].state != LIST_MISSING)
            GUARD(addf(w, "smki_repo_list_next_update_seconds{env=\"%s\",ca=\"%s\",list=\"%s\"} %lld\n", r->env,
                       smki_ca_kind_name(lists[i].kind), smki_ca_kind_is_root(lists[i].kind) ? "arl" : "crl",
                       (long long)lists[i].next_update));
    GUARD(adds(w, "# HELP smki_repo_list_age_seconds Seconds since the thisUpdate of each CA's latest CRL or ARL.\n"
                  "# TYPE smki_repo_list_age_seconds gauge\n"));
    for (size_t i = 0; i < nl; i++)
        if (lists[i].state != LIST_MISSING)
            GUARD(addf(w, "smki_repo_list_age_seconds{env=\"%s\",ca=\"%s\",list=\"%s\"} %lld\n", r->env,
                       smki_ca_kind_name(lists[i].kind), smki_ca_kind_is_root(lists[i].kind) ? "arl" : "crl",
                       (long long)(now - lists[i].this_update)));
    GUARD(adds(w, "# HELP smki_repo_list_number cRLNumber of each CA's latest CRL or ARL (0: none published).\n"
                  "# TYPE smki_repo_list_number gauge\n"));
    for (size_t i = 0; i < nl; i++)
        GUARD(addf(w, "smki_repo_list_number{env=\"%s\",ca=\"%s\",list=\"%s\"} %llu\n", r->env,
                   smki_ca_kind_name(lists[i].kind), smki_ca_kind_is_root(lists[i].kind) ? "arl" : "crl",
                   (unsigned long long)lists[i].number));
    int64_t tls = atomic_load(&r->tls_not_after);
    if (tls)
        GUARD(addf(w,
                   "# HELP smki_repo_tls_cert_not_after_seconds The TLS certificate's notAfter (Unix time).\n"
                   "# TYPE smki_repo_tls_cert_not_after_seconds gauge\nsmki_repo_tls_cert_not_after_seconds %lld\n",
                   (long long)tls));
    return addf(w,
                "# HELP smki_repo_build_info The build serving: smki's version and the OpenSSL it runs on.\n"
                "# TYPE smki_repo_build_info gauge\nsmki_repo_build_info{version=\"%s\",openssl=\"%s\"} 1\n",
                r->version, OpenSSL_version(OPENSSL_VERSION));
}

/* ---- Routing ------------------------------------------------------------------------------------- */
static int is_get(const char *m) { return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0; }

static int route(const smki_repo_req *req, smki_repo_resp *w)
{
    const char *p = req->path, *m = req->method;
    static const char CERTS[] = "/certificates/", CA[] = "/ca/", CRL[] = "/crl/";
    if (strncmp(p, "/services/", 10) == 0) {
        w->ep = SMKI_REPO_EP_DCC;
        int is_search = strcmp(p, "/services/certificatesearch") == 0;
        int is_retrieve = strcmp(p, "/services/retrievecertificate") == 0;
        if (!is_search && !is_retrieve) return fail_resp(w, 404, 1, "no such service");
        if (strcmp(m, "POST") != 0) return fail_resp(w, 405, 1, "the DCC services take POST");
        return -1; /* access checked by the caller, then dcc_* */
    }
    if (strcmp(p, "/certificates") == 0 || strncmp(p, CERTS, sizeof CERTS - 1) == 0) w->ep = SMKI_REPO_EP_CERT;
    else if (strcmp(p, "/ca") == 0 || strncmp(p, CA, sizeof CA - 1) == 0) w->ep = SMKI_REPO_EP_CA;
    else if (strcmp(p, "/arl") == 0 || strncmp(p, "/arl/", 5) == 0 || strncmp(p, CRL, sizeof CRL - 1) == 0)
        w->ep = SMKI_REPO_EP_CRL;
    else if (strcmp(p, "/health") == 0) w->ep = SMKI_REPO_EP_HEALTH;
    else if (strcmp(p, "/metrics") == 0) w->ep = SMKI_REPO_EP_METRICS;
    else {
        w->ep = SMKI_REPO_EP_OTHER;
        return fail_resp(w, 404, 0, "no such resource");
    }
    if (!is_get(m)) return fail_resp(w, 405, 0, "this resource takes GET");
    return -1;
}

/* 1: the rules let req reach its endpoint; 0: refused, with the reason. Read under
 * cfg_lock (a SIGHUP may be replacing them). */
static int access_ok(smki_repo *r, const smki_repo_req *req, smki_repo_ep ep, const char **why)
{
    if (r->public_mask & (1u << ep)) return 1;
    if (!req->has_client_cert) {
        *why = "this endpoint needs a DCCKI client certificate";
        return 0;
    }
    if (r->n_allow == 0) return 1;
    for (size_t i = 0; i < r->n_allow && req->party; i++)
        if (strcmp(r->allow[i], req->party) == 0) return 1;
    *why = "the client certificate's Party Signifier is not allowed here";
    return 0;
}

static int allowed(smki_repo *r, const smki_repo_req *req, smki_repo_resp *w)
{
    const char *why = NULL;
    pthread_rwlock_rdlock(&r->cfg_lock);
    int ok = access_ok(r, req, w->ep, &why);
    pthread_rwlock_unlock(&r->cfg_lock);
    if (!ok) fail_resp(w, 403, w->ep == SMKI_REPO_EP_DCC, why);
    return ok;
}

/* 1 when the DCC services need no apikey or query carries the right one. */
static int apikey_ok(smki_repo *r, const char *given)
{
    pthread_rwlock_rdlock(&r->cfg_lock);
    int ok = !r->has_apikey || (given && strcmp(given, r->apikey) == 0);
    pthread_rwlock_unlock(&r->cfg_lock);
    return ok;
}

/* A request routed and allowed (w->ep set) to its endpoint. */
static int serve(smki_repo *r, const smki_repo_req *req, smki_repo_resp *w)
{
    const char *p = req->path;
    switch (w->ep) {
    case SMKI_REPO_EP_DCC: {
        if (!apikey_ok(r, NULL)) {
            qparams qp;
            if (query_parse(req->query, &qp) < 0) return fail_err(w, 401, 1, "invalid parameters");
            if (!apikey_ok(r, qget(&qp, "apikey"))) return fail_resp(w, 403, 1, "a valid apikey is needed");
        }
        return strcmp(p, "/services/certificatesearch") == 0 ? dcc_search(r, req, w) : dcc_retrieve(r, req, w);
    }
    case SMKI_REPO_EP_CERT:
        if (strcmp(p, "/certificates") == 0) return cert_search(r, req, w);
        return cert_by_serial(r, req, p + strlen("/certificates/"), w);
    case SMKI_REPO_EP_CA:
        return ca_cert(r, req, strcmp(p, "/ca") == 0 ? NULL : p + 4, w);
    case SMKI_REPO_EP_CRL:
        if (strcmp(p, "/arl") == 0) return crl(r, req, r->arl_ca, 1, w);
        if (strncmp(p, "/arl/", 5) == 0) return crl(r, req, p + 5, 1, w);
        return crl(r, req, p + 5, 0, w);
    case SMKI_REPO_EP_HEALTH:
        return health(r, w);
    case SMKI_REPO_EP_METRICS:
        return metrics(r, w);
    default:
        return fail_resp(w, 404, 0, "no such resource");
    }
}

/* 1: req reaches its endpoint (w->ep set); 0: answered (a malformed request, no such
 * resource, a method or access refused); negative on failure. */
static int admit(smki_repo *r, const smki_repo_req *req, smki_repo_resp *w)
{
    memset(w, 0, sizeof *w);
    w->ep = SMKI_REPO_EP_OTHER;
    if (!req || !req->method || !req->path || req->path[0] != '/')
        return fail_resp(w, 400, 0, "a malformed request") < 0 ? -1 : 0;
    int rc = route(req, w);
    if (rc >= 0) return 0;
    return allowed(r, req, w);
}

static uint64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The answer given (rc: how building it went): a failure becomes a 500 that needs no
 * allocation beyond a short message; the counters /metrics reports. */
static int settle(smki_repo *r, smki_repo_resp *w, int rc, uint64_t t0)
{
    if (rc < 0) /* a response too large, out of memory */
        rc = fail_err(w, smki_error_code() == SMKI_E_REFUSED ? 413 : 500, w->ep == SMKI_REPO_EP_DCC,
                      "the answer could not be built");
    uint64_t ns = mono_ns() - t0;
    int b = 0;
    while (b < LAT_BUCKETS && (double)ns / 1e9 > LAT_BOUNDS[b]) b++;
    atomic_fetch_add(&r->lat_bucket[b], 1);
    atomic_fetch_add(&r->lat_sum_ns, ns);
    int cls = w->status / 100;
    if (cls >= 1 && cls <= 5) atomic_fetch_add(&r->requests[w->ep][cls], 1);
    return rc;
}

int smki_repo_handle(smki_repo *r, const smki_repo_req *req, smki_repo_resp *w)
{
    uint64_t t0 = mono_ns();
    int rc = admit(r, req, w);
    if (rc == 1) rc = serve(r, req, w);
    return settle(r, w, rc, t0);
}

/* ---- Many requests at once -------------------------------------------------------------- */
static int is_search(const smki_repo_req *req, const smki_repo_resp *w)
{
    return w->ep == SMKI_REPO_EP_CERT && strcmp(req->path, "/certificates") == 0;
}

int smki_repo_gathers(const smki_repo *r, const smki_repo_req *req)
{
    return r && req && req->method && req->path && is_get(req->method) && strcmp(req->path, "/certificates") == 0 &&
           smki_store_is_remote(r->store);
}

/* The searches sr[0..k) of requests at[0..k), read from the store together; each
 * answer ended into rcs[at[j]]. */
static void search_all(smki_repo *r, search *sr, size_t k, const size_t *at, int *rcs)
{
    smki_ca_query *qs = calloc(k, sizeof *qs);
    void **args = calloc(k, sizeof *args);
    int rc = qs && args ? 0 : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    for (size_t j = 0; rc == 0 && j < k; j++) qs[j] = sr[j].q, args[j] = &sr[j].p;
    if (rc == 0 && db_ready(r)) rc = smki_ca_find_many(&r->db, qs, k, page_result, (void *const *)args);
    free(qs);
    free(args);
    char why[SMKI_ERR_MSG_MAX];
    take_error(rc, why, sizeof why);
    for (size_t j = 0; j < k; j++) rcs[at[j]] = search_end(&sr[j], rc, why);
}

void smki_repo_handle_many(smki_repo *r, const smki_repo_req *const *reqs, smki_repo_resp *const *ws, int *rcs,
                           size_t n)
{
    uint64_t t0 = mono_ns();
    search *sr = calloc(n ? n : 1, sizeof *sr);
    size_t *at = calloc(n ? n : 1, sizeof *at), k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!sr || !at) { /* out of memory: one at a time */
            rcs[i] = smki_repo_handle(r, reqs[i], ws[i]);
            continue;
        }
        int rc = admit(r, reqs[i], ws[i]);
        if (rc == 1 && is_search(reqs[i], ws[i])) {
            rc = search_parse(r, reqs[i], ws[i], &sr[k]);
            if (rc == 1) {
                at[k++] = i;
                continue;
            }
        } else if (rc == 1) {
            rc = serve(r, reqs[i], ws[i]);
        }
        rcs[i] = settle(r, ws[i], rc < 0 ? rc : 0, t0);
    }
    if (k) search_all(r, sr, k, at, rcs);
    for (size_t j = 0; j < k; j++) rcs[at[j]] = settle(r, ws[at[j]], rcs[at[j]], t0);
    free(sr);
    free(at);
}

void smki_repo_resp_free(smki_repo_resp *w)
{
    if (!w) return;
    free(w->body);
    w->body = NULL;
    w->len = w->cap = 0;
}
