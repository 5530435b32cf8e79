/* repo/server: the HTTP/1.1 service on h2o (Debian's libh2o-evloop 2.2, h2o's own
 * event loop). Worker threads each run a loop with its own h2o context on the same
 * listening socket; a request is answered in the loop that read it (the answer is a
 * few LMDB reads, microseconds) and its body is handed to h2o without a copy. TLS is
 * h2o's, on an SSL_CTX made here from the same OpenSSL 3 as the rest of smki. Every
 * connection is counted from accept to close: one over the limit never reaches h2o (a
 * fixed 429 and a close), idle ones and stalled writes time out, and accepting pauses
 * for a tick on a flood of refusals or when accept fails for want of descriptors. A
 * client certificate counts only while the store has it in use (docs/repo.md, Limits). */
#define H2O_USE_LIBUV 0
#include <h2o.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "repo.h"
#include "tls.h"

#define TICK_MS 100
#define GRACE_MS 300    /* answers in flight at SIGTERM get this long */
#define DRAIN_MS 1000   /* then connections are shut and the loops wait this long at most */
#define ACCEPTS_PER_WAKE 4 /* the loops share the socket: each takes a few, then lets the others */

typedef struct conn {
    struct conn *prev, *next; /* the loop's connections */
    h2o_socket_t *sock;       /* h2o's; valid until on_conn_close */
    struct worker *wk;
    SSL *ssl;                 /* TLS: set when the handshake is done */
    int has_party;            /* the Party Signifier was looked up */
    int has_cert;
    uint8_t cert_ski[SMKI_KEYID_LEN], cert_serial[SMKI_SERIAL_LEN]; /* has_cert: which certificate it is */
    uint64_t writing_since;   /* when h2o began the write still in progress; 0: not writing */
    char party[SMKI_REPO_PARTY_MAX];
} conn;

typedef struct worker {
    struct server *srv;
    pthread_t thread;
    h2o_context_t ctx;
    h2o_accept_ctx_t actx;
    h2o_socket_t *listener;
    int has_ctx, is_paused, phase; /* phase: 0 serving, 1 grace, 2 draining, 3 done */
    unsigned refused_in_tick;      /* connections refused over the limit since the last tick */
    int is_fd_logged;              /* an accept failure (EMFILE...) was logged */
    conn *all;
    unsigned n_open;
    uint64_t next_tick, phase_end;
    h2o_multithread_receiver_t answered; /* the pool's answers come back to this loop */
    int has_receiver;
    unsigned n_pending;                  /* requests of this loop in the pool */
    /* Searches read in this turn of the loop, answered together at its end
     * (smki_repo_handle_many: their lookups share one round trip to the store). */
    struct held *held;
    unsigned n_held;
} worker;

/* A request held for the end of its loop's turn. h2o keeps it until it is answered. */
typedef struct held {
    h2o_req_t *req;
    smki_repo_req rq;
    smki_repo_resp *w;
} held;
#define HELD_MAX 64

/* A request answered on the pool (o->handle_threads): what the handler reads, and where
 * the answer goes back. In the request's pool: h2o keeps the request until it is answered. */
typedef struct job {
    h2o_multithread_message_t super; /* first: the loop's receiver gets it back */
    h2o_req_t *req;
    worker *wk;
    smki_repo_req rq;
    smki_repo_resp *w;
    int rc; /* the handler's status: negative when not even its error answer was built */
    struct job *next;
} job;

typedef struct server {
    smki_repo *repo;
    const smki_repo_server_opts *o;
    h2o_globalconf_t config;
    int has_config;
    SSL_CTX *ssl;
    repo_tls *tls;         /* the certificate and key new handshakes get (SIGHUP replaces them) */
    atomic_int access_log; /* o->access_log, or the reloaded configuration's */
    ASN1_OBJECT *party_obj;
    int lfd;
    unsigned max_conns;
    size_t max_headers;
    size_t max_input;      /* buffered request octets a connection may hold */
    uint64_t timeout_ms;   /* --timeout: also a write that makes no end */
    atomic_int conns;      /* open, within the limit */
    atomic_int is_stopping;
    unsigned nworkers;
    worker *w;
    /* The pool that runs o->handle off the loops (o->handle_threads of them). */
    pthread_t *pool;
    unsigned npool, pool_started;
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_wake;
    int has_pool_lock, pool_stop;
    job *jobs_head, *jobs_tail;
} server;

typedef struct {
    h2o_handler_t super;
    server *srv;
} handler;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void log_line(const char *level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void log_line(const char *level, const char *event, const char *fmt, ...)
{
    char ts[40], rest[1024];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rest, sizeof rest, fmt, ap);
    va_end(ap);
    fprintf(stderr, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"event\":\"%s\"%s%s}\n", ts, now.tv_nsec / 1000000, level,
            event, *rest ? "," : "", rest);
}

/* A JSON string's content from untrusted text (paths, parties). */
static void json_text(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; in && *in && o + 7 < cap; in++) {
        unsigned char ch = (unsigned char)*in;
        if (ch == '"' || ch == '\\') out[o++] = '\\', out[o++] = (char)ch;
        else if (ch < 0x20 || ch >= 0x7f) o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
        else out[o++] = (char)ch;
    }
    out[o] = 0;
}

/* ---- Connections ----------------------------------------------------------------------
 * h2o calls a socket's on_close after it has disposed of it: that is where a connection
 * stops being counted, whatever ended it (the client, a timeout, a 429, shutdown). */
static void on_conn_close(void *data)
{
    conn *c = data;
    worker *wk = c->wk;
    if (c->prev) c->prev->next = c->next;
    else wk->all = c->next;
    if (c->next) c->next->prev = c->prev;
    wk->n_open--;
    atomic_fetch_sub(&wk->srv->conns, 1);
    smki_repo_note_conn(wk->srv->repo, 0, 0);
    free(c);
}

/* A connection over --max-conns is not handed to h2o (no TLS handshake, no header or
 * body buffers): plain HTTP gets this fixed answer, written once without blocking
 * (best effort: what the client sent is read and dropped first, so the close is a FIN),
 * TLS just the close. */
static const char TOO_MANY[] = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nConnection: close\r\n"
                               "Content-Type: application/json\r\nContent-Length: 46\r\n\r\n"
                               "{\"status\":429,\"error\":\"too many connections\"}\n";

static void refuse(server *s, worker *wk, h2o_socket_t *sock)
{
    int fd = h2o_socket_get_fd(sock);
    if (!s->ssl) {
        char sink[4096];
        for (int k = 0; k < 4 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; k++) {
        }
        ssize_t w = send(fd, TOO_MANY, sizeof TOO_MANY - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
        shutdown(fd, SHUT_WR);
    }
    h2o_socket_close(sock);
    smki_repo_note_conn(s->repo, 1, 1);
    smki_repo_note_status(s->repo, 429);
    /* Refusing costs an accept, a write and a close: a flood of them pauses this loop's
     * accepting until the next tick (they wait in the backlog). */
    if (++wk->refused_in_tick >= s->max_conns / 4 + 16 && wk->listener && !wk->is_paused) {
        h2o_socket_read_stop(wk->listener);
        wk->is_paused = 1;
    }
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    worker *wk = listener->data;
    server *s = wk->srv;
    if (err) return;
    for (int i = 0; i < ACCEPTS_PER_WAKE && !wk->is_paused; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (!sock) {
            /* EMFILE/ENFILE/ENOMEM leave the connection in the backlog and the listener
             * readable: without a pause the loop would spin on it. Until the next tick. */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                h2o_socket_read_stop(listener);
                wk->is_paused = 1;
                if (!wk->is_fd_logged) log_line("warn", "accept", "\"error\":\"%s\"", strerror(errno));
                wk->is_fd_logged = 1;
            }
            return;
        }
        int n = atomic_fetch_add(&s->conns, 1) + 1;
        if ((unsigned)n > s->max_conns) {
            atomic_fetch_sub(&s->conns, 1);
            refuse(s, wk, sock);
            continue;
        }
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            atomic_fetch_sub(&s->conns, 1);
            h2o_socket_close(sock);
            continue;
        }
        smki_repo_note_conn(s->repo, 1, 0);
        c->sock = sock;
        c->wk = wk;
        c->next = wk->all;
        if (wk->all) wk->all->prev = c;
        wk->all = c;
        wk->n_open++;
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = c;
        h2o_accept(&wk->actx, sock);
    }
}

/* Our record of the connection a request came on, or NULL. */
static conn *conn_of(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    return sock && sock->on_close.cb == on_conn_close ? sock->on_close.data : NULL;
}

/* TLS: when a handshake completes, the connection keeps its SSL for the Party
 * Signifier. h2o's TLS BIO carries its socket (BIO_get_data); the connection is the
 * socket's on_close data, checked to be ours. */
static void on_ssl_info(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_DONE)) return;
    BIO *bio = SSL_get_rbio(ssl);
    h2o_socket_t *sock = bio ? BIO_get_data(bio) : NULL;
    if (sock && sock->on_close.cb == on_conn_close) ((conn *)sock->on_close.data)->ssl = (SSL *)ssl;
}

/* The Party Signifier of a verified client certificate (TLS only), looked up once. */
static void conn_party(server *s, conn *c)
{
    if (c->has_party) return;
    c->has_party = 1;
    if (!c->ssl) return;
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    long vr = peer ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    if (peer && vr != X509_V_OK)
        log_line("warn", "client_cert", "\"error\":\"client certificate does not verify: %s\"",
                 X509_verify_cert_error_string(vr));
    if (!peer || vr != X509_V_OK) return;
    /* A certificate that chains is accepted only while the store has it in use: a
     * revoked (or expired, pending, not-in-use) one, or one the store does not know, is
     * no client certificate. Looked up per connection, resumed sessions included. */
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(peer);
    const ASN1_INTEGER *sn = X509_get0_serialNumber(peer);
    uint8_t serial[SMKI_SERIAL_LEN] = {0};
    BIGNUM *bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
    int st = 0;
    if (aki && ASN1_STRING_length(aki) == SMKI_KEYID_LEN && bn && !BN_is_negative(bn) &&
        BN_bn2binpad(bn, serial, SMKI_SERIAL_LEN) == SMKI_SERIAL_LEN)
        st = smki_repo_cert_status(s->repo, ASN1_STRING_get0_data(aki), serial);
    BN_free(bn);
    ERR_clear_error();
    if (st != SMKI_STATUS_IN_USE) {
        char ser[2 * SMKI_SERIAL_LEN + 1] = "?";
        if (st || (aki && ASN1_STRING_length(aki) == SMKI_KEYID_LEN)) smki_hex_encode(serial, SMKI_SERIAL_LEN, ser, 0);
        log_line("warn", "client_cert", "\"error\":\"client certificate %s\",\"serial\":\"%s\",\"status\":\"%s\"",
                 st == SMKI_STATUS_REVOKED ? "revoked" : st ? "not in use" : "unknown", ser,
                 st ? smki_cert_status_name(st) : "not in the store");
        return;
    }
    c->has_cert = 1;
    memcpy(c->cert_ski, ASN1_STRING_get0_data(aki), SMKI_KEYID_LEN);
    memcpy(c->cert_serial, serial, SMKI_SERIAL_LEN);
    X509_NAME *name = X509_get_subject_name(peer);
    int i = name ? X509_NAME_get_index_by_OBJ(name, s->party_obj, -1) : -1;
    if (i < 0) return;
    ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    int len = v ? ASN1_STRING_length(v) : 0;
    if (len <= 0 || len >= SMKI_REPO_PARTY_MAX) return;
    memcpy(c->party, ASN1_STRING_get0_data(v), (size_t)len);
    c->party[len] = 0;
    for (int k = 0; k < len; k++)
        if ((unsigned char)c->party[k] < 0x20) c->party[k] = '?';
}

/* ---- Requests ---------------------------------------------------------------------------- */
/* text, NUL-terminated, in the request's pool. */
static char *pool_str(h2o_req_t *req, const char *p, size_t n)
{
    char *s = h2o_mem_alloc_pool(&req->pool, n + 1);
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

static const char *reason_of(int code)
{
    switch (code) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required"; /* the DCC repository's "not found" (reference §9) */
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return code >= 500 ? "Internal Server Error" : "Error";
    }
}

/* The answer's body stays the handler's until h2o has sent it: the request's pool
 * frees it (no copy). */
static void resp_dispose(void *p) { smki_repo_resp_free(p); }

static void reply(h2o_req_t *req, int status, const char *ctype, const uint8_t *body, size_t len, int close)
{
    static h2o_generator_t gen = {NULL, NULL};
    req->res.status = status;
    req->res.reason = reason_of(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype, strlen(ctype));
    if (close) req->http1_is_persistent = 0;
    req->res.content_length = len;
    h2o_start_response(req, &gen);
    /* HEAD: the length of what GET would send, no body. */
    int is_head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_iovec_t b = h2o_iovec_init(body, is_head ? 0 : len);
    h2o_send(req, &b, is_head ? 0 : 1, H2O_SEND_STATE_FINAL);
}

static void reply_text(h2o_req_t *req, int status, const char *body, int close)
{
    reply(req, status, "application/json", (const uint8_t *)body, strlen(body), close);
}

/* The request's header octets as they came (names, values, separators). */
static size_t header_octets(const h2o_req_t *req)
{
    size_t n = req->method.len + req->path.len + 12;
    for (size_t i = 0; i < req->headers.size; i++) n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return n;
}

/* One access-log line (--access-log). */
static void log_request(h2o_req_t *req, const char *method_text, const char *path, const char *party_text, int status,
                        size_t len, smki_repo_ep ep)
{
    char p[512], party[2 * SMKI_REPO_PARTY_MAX * 3], host[INET6_ADDRSTRLEN] = "?";
    struct sockaddr_storage sa;
    unsigned port = 0;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&sa);
    if (sl && sa.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, host, sizeof host);
        port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    } else if (sl && sa.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, host, sizeof host);
        port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    }
    char method[16];
    json_text(path, p, sizeof p);
    json_text(party_text, party, sizeof party);
    json_text(method_text, method, sizeof method);
    log_line("info", "request",
             "\"peer\":\"%s:%u\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"bytes\":%zu,\"endpoint\":\"%s\","
             "\"party\":%s%s%s",
             host, port, method, p, status, len, smki_repo_ep_name(ep), party_text ? "\"" : "",
             party_text ? party : "null", party_text ? "\"" : "");
}

/* An answer given before the handler (503, 431, 400): counted and logged like the rest. */
static int early(server *s, h2o_req_t *req, int status, const char *body, int close)
{
    reply_text(req, status, body, close);
    smki_repo_note_status(s->repo, status);
    if (atomic_load_explicit(&s->access_log, memory_order_relaxed)) {
        char *m = pool_str(req, req->method.base, req->method.len < 15 ? req->method.len : 15);
        char *pa = pool_str(req, req->path.base, req->path.len < 500 ? req->path.len : 500);
        log_request(req, m, pa, NULL, status, strlen(body), SMKI_REPO_EP_OTHER);
    }
    return 0;
}

/* Retry-After and Location, when the handler asks for them (EST's 202, RFC 7030 4.2.3). */
static void add_extra_headers(h2o_req_t *req, const smki_repo_resp *w)
{
    if (w->retry_after) {
        char *v = h2o_mem_alloc_pool(&req->pool, 16);
        int n = snprintf(v, 16, "%u", w->retry_after);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, v, (size_t)n);
    }
    if (w->location[0]) {
        size_t n = strnlen(w->location, sizeof w->location);
        char *v = pool_str(req, w->location, n);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, v, n);
    }
}

/* Whether an HTTP/1 request's framing is unambiguous (RFC 9112 6.3): not both
 * Content-Length and Transfer-Encoding, and no two different Content-Lengths. h2o 2.2
 * takes the one it prefers and keeps neither in req->headers; a proxy before it may
 * take the other and smuggle a request in the body. So the head is read again from
 * the connection's input, where h2o keeps it until the answer is sent (it begins with
 * this request's method and path; anything else is not judged here), bounded by the
 * buffer. */
static int header_is(const char *line, size_t n, const char *name, const char **value, size_t *vlen)
{
    size_t k = strlen(name);
    if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0) return 0;
    const char *v = line + k + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
    *value = v;
    *vlen = (size_t)(end - v);
    return 1;
}

static int is_framing_clear(const conn *c, const h2o_req_t *req)
{
    if (!c || !c->sock || !c->sock->input || req->version >= 0x200) return 1;
    const char *p = c->sock->input->bytes;
    size_t n = c->sock->input->size, at = 0;
    if (n <= req->method.len || memcmp(p, req->method.base, req->method.len) != 0 || p[req->method.len] != ' ')
        return 1;
    const char *length = NULL, *v;
    size_t length_len = 0, vlen;
    int has_te = 0;
    while (at < n) {
        const char *nl = memchr(p + at, '\n', n - at);
        if (!nl) return 1; /* not a whole head: h2o did not take it as one */
        size_t len = (size_t)(nl - (p + at));
        if (len && p[at + len - 1] == '\r') len--;
        if (!len && at) break; /* the empty line that ends the head */
        if (at && header_is(p + at, len, "transfer-encoding", &v, &vlen)) has_te = 1;
        if (at && header_is(p + at, len, "content-length", &v, &vlen)) {
            if (length && (vlen != length_len || memcmp(v, length, vlen) != 0)) return 0;
            length = v, length_len = vlen;
        }
        at = (size_t)(nl - p) + 1;
    }
    return !(has_te && length);
}

/* The handler's answer sent, counted and logged: on the loop that read the request. */
/* rc: the handler's status; negative when not even the error answer could be built (out
 * of memory). */
static void answer(server *s, h2o_req_t *req, const smki_repo_req *rq, smki_repo_resp *w, int rc)
{
    add_extra_headers(req, w);
    if (rc < 0 || !w->body) reply_text(req, 500, "{\"status\":500,\"error\":\"out of memory\"}\n", 1);
    else reply(req, w->status, w->content_type, w->body, w->len, 0);
    if (atomic_load_explicit(&s->access_log, memory_order_relaxed))
        log_request(req, rq->method, rq->path, rq->party, w->status, w->len, w->ep);
}

/* ---- The pool: handlers that wait (a durable commit) without holding up a loop ------------ */
static void *run_pool(void *arg)
{
    server *s = arg;
    pthread_mutex_lock(&s->pool_lock);
    for (;;) {
        while (!s->jobs_head && !s->pool_stop) pthread_cond_wait(&s->pool_wake, &s->pool_lock);
        job *j = s->jobs_head;
        if (!j) break; /* stopping, and nothing waits */
        s->jobs_head = j->next;
        if (!s->jobs_head) s->jobs_tail = NULL;
        pthread_mutex_unlock(&s->pool_lock);
        j->rc = s->o->handle(s->o->handle_arg, &j->rq, j->w);
        h2o_multithread_send_message(&j->wk->answered, &j->super);
        pthread_mutex_lock(&s->pool_lock);
    }
    pthread_mutex_unlock(&s->pool_lock);
    return NULL;
}

static void on_answered(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    worker *wk = H2O_STRUCT_FROM_MEMBER(worker, answered, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        job *j = H2O_STRUCT_FROM_MEMBER(job, super.link, messages->next);
        h2o_linklist_unlink(&j->super.link);
        wk->n_pending--;
        answer(wk->srv, j->req, &j->rq, j->w, j->rc);
    }
}

static int to_pool(server *s, h2o_req_t *req, const smki_repo_req *rq, smki_repo_resp *w)
{
    job *j = h2o_mem_alloc_pool(&req->pool, sizeof *j);
    memset(j, 0, sizeof *j);
    j->req = req;
    j->wk = H2O_STRUCT_FROM_MEMBER(worker, ctx, req->conn->ctx);
    j->rq = *rq;
    j->w = w;
    j->wk->n_pending++;
    pthread_mutex_lock(&s->pool_lock);
    if (s->jobs_tail) s->jobs_tail->next = j;
    else s->jobs_head = j;
    s->jobs_tail = j;
    pthread_cond_signal(&s->pool_wake);
    pthread_mutex_unlock(&s->pool_lock);
    return 0;
}

static int pool_start(server *s)
{
    s->npool = s->o->handle && s->o->handle_threads ? s->o->handle_threads : 0;
    if (!s->npool) return 0;
    ENSURE(s->npool <= 256, SMKI_E_USAGE, "handler threads: %u is over 256", s->npool);
    ENSURE(pthread_mutex_init(&s->pool_lock, NULL) == 0 && pthread_cond_init(&s->pool_wake, NULL) == 0,
           SMKI_E_INTERNAL, "a mutex could not be made");
    s->has_pool_lock = 1;
    s->pool = calloc(s->npool, sizeof *s->pool);
    ENSURE(s->pool, SMKI_E_NOMEM, "out of memory");
    for (; s->pool_started < s->npool; s->pool_started++)
        ENSURE(pthread_create(&s->pool[s->pool_started], NULL, run_pool, s) == 0, SMKI_E_INTERNAL,
               "a handler thread could not be started");
    return 0;
}

/* After the loops: what waits in the pool is still answered (its answer waits for a
 * loop that no longer runs and is dropped with the process's connections). */
static void pool_stop(server *s)
{
    if (!s->has_pool_lock) return;
    pthread_mutex_lock(&s->pool_lock);
    s->pool_stop = 1;
    pthread_cond_broadcast(&s->pool_wake);
    pthread_mutex_unlock(&s->pool_lock);
    for (unsigned i = 0; i < s->pool_started; i++) pthread_join(s->pool[i], NULL);
    free(s->pool);
    pthread_mutex_destroy(&s->pool_lock);
    pthread_cond_destroy(&s->pool_wake);
    s->has_pool_lock = 0;
}

/* ---- Requests held for the end of a loop's turn ------------------------------------------- */
/* Answers the requests held in this turn of the loop, together; how many. */
static unsigned answer_held(worker *wk)
{
    unsigned n = wk->n_held;
    if (!n) return 0;
    const smki_repo_req *reqs[HELD_MAX];
    smki_repo_resp *ws[HELD_MAX];
    int rcs[HELD_MAX];
    for (unsigned i = 0; i < n; i++) reqs[i] = &wk->held[i].rq, ws[i] = wk->held[i].w;
    smki_repo_handle_many(wk->srv->repo, reqs, ws, rcs, n);
    wk->n_held = 0;
    for (unsigned i = 0; i < n; i++) answer(wk->srv, wk->held[i].req, &wk->held[i].rq, ws[i], rcs[i]);
    return n;
}

/* Holds a repository request for the end of the loop's turn (answered at once when the
 * loop holds as many as it answers together). */
static int hold(worker *wk, h2o_req_t *req, const smki_repo_req *rq, smki_repo_resp *w)
{
    wk->held[wk->n_held++] = (held){req, *rq, w};
    if (wk->n_held == HELD_MAX) (void)answer_held(wk);
    return 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    server *s = ((handler *)self)->srv;
    conn *c = conn_of(req);
    if (atomic_load_explicit(&s->is_stopping, memory_order_relaxed)) {
        return early(s, req, 503, "{\"status\":503,\"error\":\"shutting down\"}\n", 1);
    }
    if (header_octets(req) > s->max_headers) {
        return early(s, req, 431, "{\"status\":431,\"error\":\"the request's headers are over the limit\"}\n", 1);
    }
    if (!is_framing_clear(c, req)) {
        return early(s, req, 400,
                     "{\"status\":400,\"error\":\"ambiguous framing: Content-Length with Transfer-Encoding, or two "
                     "different Content-Lengths\"}\n",
                     1);
    }
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    smki_repo_req rq = {0};
    char *path = h2o_mem_alloc_pool(&req->pool, plen + 1);
    if (smki_repo_path_decode(req->path.base, plen, path) < 0) {
        smki_error_clear();
        path = NULL;
    }
    rq.path = path;
    if (!rq.path || !*rq.path) {
        return early(s, req, 400, "{\"status\":400,\"error\":\"a malformed path\"}\n", 0);
    }
    rq.method = pool_str(req, req->method.base, req->method.len);
    if (req->query_at != SIZE_MAX)
        rq.query = pool_str(req, req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
    ssize_t ai = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT, -1);
    if (ai >= 0) rq.accept = pool_str(req, req->headers.entries[ai].value.base, req->headers.entries[ai].value.len);
    rq.body = (const uint8_t *)req->entity.base;
    rq.body_len = req->entity.base ? req->entity.len : 0;
    if (c && s->ssl) {
        conn_party(s, c);
        rq.has_client_cert = c->has_cert;
        rq.client_issuer_ski = c->has_cert ? c->cert_ski : NULL;
        rq.client_serial = c->has_cert ? c->cert_serial : NULL;
        rq.party = c->party[0] ? c->party : NULL;
    }
    smki_repo_resp *w = h2o_mem_alloc_shared(&req->pool, sizeof *w, resp_dispose);
    memset(w, 0, sizeof *w);
    if (s->npool) return to_pool(s, req, &rq, w);
    worker *wk = H2O_STRUCT_FROM_MEMBER(worker, ctx, req->conn->ctx);
    if (!s->o->handle && wk->held && smki_repo_gathers(s->repo, &rq)) return hold(wk, req, &rq, w);
    int rc = s->o->handle ? s->o->handle(s->o->handle_arg, &rq, w) : smki_repo_handle(s->repo, &rq, w);
    answer(s, req, &rq, w, rc);
    return 0;
}

/* ---- Loops ---------------------------------------------------------------------------------- */
static void tick(worker *wk, uint64_t now)
{
    server *s = wk->srv;
    if (wk->phase == 0) {
        /* h2o 2.2's HTTP/1 has no write timeout: a client that stops reading would keep
         * its connection (and its answer's memory) for ever. A write in progress for
         * longer than --timeout, or more buffered input than a request may be, ends the
         * connection as the drain does (h2o sees the end and disposes of it). */
        for (conn *c = wk->all; c; c = c->next) {
            h2o_socket_t *sock = c->sock;
            int cut = 0;
            if (!h2o_socket_is_writing(sock)) c->writing_since = 0;
            else if (!c->writing_since) c->writing_since = now;
            else if (now - c->writing_since >= s->timeout_ms) cut = 1;
            if (sock->input && sock->input->size > s->max_input) cut = 2;
            if (cut) {
                log_line("warn", "conn_cut", "\"reason\":\"%s\"",
                         cut == 1 ? "the client did not read the answer within the timeout" : "too much buffered input");
                shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
                c->writing_since = now; /* not logged again while h2o closes it */
            }
        }
        /* Accepting paused by on_accept (a flood of refusals, or accept failing for want
         * of descriptors) starts again at the tick. */
        wk->refused_in_tick = 0;
        if (wk->listener && wk->is_paused) {
            h2o_socket_read_start(wk->listener, on_accept);
            wk->is_paused = 0;
        }
        if (s->o->stop && *s->o->stop) atomic_store(&s->is_stopping, 1);
        if (!atomic_load(&s->is_stopping)) return;
        /* Stop accepting; what is being answered gets a moment to go. */
        if (wk->listener) {
            h2o_socket_read_stop(wk->listener);
            h2o_socket_close(wk->listener);
            wk->listener = NULL;
        }
        wk->phase = 1;
        wk->phase_end = now + GRACE_MS;
    }
    if (wk->phase == 1 && (now >= wk->phase_end || !wk->n_open)) {
        /* The rest (idle keep-alive, slow clients) are shut: h2o sees the end and
         * disposes of each connection itself. */
        for (conn *c = wk->all; c; c = c->next) shutdown(h2o_socket_get_fd(c->sock), SHUT_RDWR);
        wk->phase = 2;
        wk->phase_end = now + DRAIN_MS;
    }
    if (wk->phase == 2 && (now >= wk->phase_end || !wk->n_open)) wk->phase = 3;
}

static void *run_worker(void *arg)
{
    worker *wk = arg;
    int32_t wait = TICK_MS;
    while (wk->phase < 3) {
        h2o_evloop_run(wk->ctx.loop, wait);
        /* Before the tick, which may end connections. What the answers set going (a
         * pipelining client's next request, read once its answer is written) runs in
         * a turn that does not wait. */
        wait = answer_held(wk) ? 0 : TICK_MS;
        uint64_t now = now_ms();
        if (now >= wk->next_tick || wk->phase) {
            wk->next_tick = now + TICK_MS;
            tick(wk, now);
        }
    }
    /* The socket buffers this thread's loop recycled go with it. */
    h2o_mem_recycle_t *rc = &h2o_socket_buffer_prototype.allocator;
    while (rc->cnt) free(h2o_mem_alloc_recycle(rc, 1));
    return NULL;
}

static int listen_socket(const char *spec, int *fd_out, int *port_out)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    ENSURE(colon && colon[1], SMKI_E_USAGE, "--listen '%s': ADDR:PORT (e.g. 127.0.0.1:8080, [::1]:8443)", spec);
    size_t hl = (size_t)(colon - spec);
    ENSURE(hl < sizeof host, SMKI_E_USAGE, "--listen '%s': the address is too long", spec);
    memcpy(host, spec, hl);
    host[hl] = 0;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') memmove(host, host + 1, hl - 2), host[hl - 2] = 0;
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    ENSURE(*end == 0 && port >= 0 && port <= 65535, SMKI_E_USAGE, "--listen '%s': a bad port", spec);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    int g = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    ENSURE(g == 0, SMKI_E_USAGE, "--listen '%s': %s (a numeric address is needed)", spec, gai_strerror(g));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Accepted sockets inherit it (Linux): an answer goes out at once, never held
     * back by Nagle waiting on a delayed ACK. */
    if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return SMKI_FAIL(SMKI_E_IO, "listening on %s: %s", spec, strerror(e));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return 0;
}

static int verify_any(int ok, X509_STORE_CTX *ctx)
{
    (void)ctx;
    return ok;
}

/* answer_unverified: the handshake goes on; conn_party reads the verification's result
 * and a certificate that failed it is no client certificate. */
static int verify_later(int ok, X509_STORE_CTX *ctx)
{
    (void)ok;
    (void)ctx;
    return 1;
}

static int tls_setup(server *s)
{
    const smki_repo_server_opts *o = s->o;
    if (!o->tls_cert && !o->tls_key) {
        ENSURE(!o->client_ca, SMKI_E_USAGE, "client certificates (--client-ca) need TLS (--tls-cert, --tls-key)");
        return 0;
    }
    ENSURE(o->tls_cert && o->tls_key, SMKI_E_USAGE, "TLS needs both --tls-cert and --tls-key");
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    ENSURE_SSL(ctx, SMKI_E_CRYPTO, "SSL_CTX_new");
    s->ssl = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    ENSURE_SSL(SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) == 1, SMKI_E_INPUT,
               "the TLS certificate chain '%s'", o->tls_cert);
    ENSURE_SSL(SSL_CTX_use_PrivateKey_file(ctx, o->tls_key, SSL_FILETYPE_PEM) == 1, SMKI_E_INPUT, "the TLS key '%s'",
               o->tls_key);
    ENSURE_SSL(SSL_CTX_check_private_key(ctx) == 1, SMKI_E_INPUT, "the TLS key '%s' is not the certificate's",
               o->tls_key);
    if (o->client_ca) {
        ENSURE_SSL(SSL_CTX_load_verify_locations(ctx, o->client_ca, NULL) == 1, SMKI_E_INPUT,
                   "the client CA file '%s'", o->client_ca);
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->client_ca);
        if (names) SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (o->require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           o->answer_unverified ? verify_later : verify_any);
        SSL_CTX_set_verify_depth(ctx, 4);
    }
    /* Sessions resumed by ticket keep the client's verified certificate. */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"smki-repo", 9);
    /* One TLS 1.3 ticket per handshake, not OpenSSL's (and nginx's) two: a ticket holds
     * the client's certificate and costs about 160 us of server CPU with one (openssl
     * s_server -num_tickets 2 / 1 / 0 under s_time -new -cert: 1,337-1,374 / 1,185-1,195 /
     * 1,008-1,012 us per handshake), over a tenth of a mutual-TLS handshake. One ticket
     * still resumes the next connection, which is sent a fresh one. */
    SSL_CTX_set_num_tickets(ctx, 1);
    GUARD(smki_repo_tls_new(ctx, &s->tls));
    struct tm tm;
    X509 *x = SSL_CTX_get0_certificate(ctx);
    if (x && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) smki_repo_set_tls_not_after(s->repo, (int64_t)timegm(&tm));
    return 0;
}

/* ---- SIGHUP -------------------------------------------------------------------------------------- */
static int differs(const char *a, const char *b) { return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0); }

/* Log, by name, what the new configuration changes that only a restart applies. */
static void note_restart_only(const smki_repo_server_opts *o, const smki_repo_server_opts *n)
{
    char names[256] = "";
    size_t used = 0;
    static const char *const NAMES[] = {"listen", "threads", "max_conns", "max_body", "max_headers", "timeout",
                                        "client_ca", "client_certs", "party_attr", "tls (on or off)"};
    int changed[] = {differs(o->listen, n->listen), o->threads != n->threads, o->max_conns != n->max_conns,
                     o->max_body != n->max_body, o->max_headers != n->max_headers, o->timeout_s != n->timeout_s,
                     differs(o->client_ca, n->client_ca), o->require_client_cert != n->require_client_cert,
                     differs(o->party_attr, n->party_attr), (o->tls_cert == NULL) != (n->tls_cert == NULL)};
    for (size_t i = 0; i < sizeof changed / sizeof changed[0]; i++) {
        if (!changed[i]) continue;
        int k = snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", NAMES[i]);
        if (k > 0 && (size_t)k < sizeof names - used) used += (size_t)k;
    }
    if (used) log_line("warn", "reload", "\"needs_restart\":\"%s\"", names);
}

static void log_reload_failure(const char *what)
{
    char msg[SMKI_ERR_MSG_MAX];
    json_text(smki_error_msg(), msg, sizeof msg);
    log_line("error", "reload", "\"failed\":\"%s\",\"error\":\"%s\",\"note\":\"nothing changed\"", what, msg);
    smki_error_clear();
}

/* The configuration read again (o->reload), then the TLS certificate and key: checked
 * first, applied together, or nothing changes. Connections are not touched: new
 * handshakes get the new pair, established ones keep theirs. */
static void reload(server *s)
{
    const smki_repo_server_opts *o = s->o;
    smki_repo_opts ro;
    smki_repo_server_opts so;
    memset(&ro, 0, sizeof ro);
    memset(&so, 0, sizeof so);
    const char *cert = o->tls_cert, *key = o->tls_key;
    if (o->reload) {
        if (o->reload(o->reload_arg, &ro, &so) < 0) {
            log_reload_failure("configuration");
            return;
        }
        cert = so.tls_cert;
        key = so.tls_key;
    }
    repo_tls_pair *pair = NULL;
    if (s->ssl && cert && key && smki_repo_tls_pair_load(cert, key, &pair) < 0) {
        log_reload_failure("tls");
        return;
    }
    if (o->reload) {
        if (smki_repo_reconfigure(s->repo, &ro) < 0) {
            smki_repo_tls_pair_free(pair);
            log_reload_failure("configuration");
            return;
        }
        atomic_store(&s->access_log, so.access_log);
        note_restart_only(o, &so);
    }
    char until[32] = "";
    if (pair) {
        int64_t t = smki_repo_tls_pair_not_after(pair);
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", &tm);
        smki_repo_set_tls_not_after(s->repo, t);
        smki_repo_tls_install(s->tls, pair);
    }
    log_line("info", "reloaded", "\"configuration\":%s,\"tls_not_after\":\"%s\",\"connections_open\":%d",
             o->reload ? "true" : "false", until, atomic_load(&s->conns));
}

static void worker_free(worker *wk)
{
    if (wk->listener) h2o_socket_close(wk->listener), wk->listener = NULL;
    if (!wk->has_ctx) return;
    if (wk->n_open || wk->n_pending) return; /* connections that would not end: left to the process's exit */
    if (wk->has_receiver) h2o_multithread_unregister_receiver(wk->ctx.queue, &wk->answered);
    h2o_evloop_t *loop = wk->ctx.loop;
    h2o_multithread_queue_t *queue = wk->ctx.queue;
    h2o_context_dispose(&wk->ctx);
    /* Sockets closed above (the listener, the context's queue) are freed on the loop's
     * next turn. */
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
#if H2O_VERSION_MAJOR == 2 && H2O_VERSION_MINOR == 2
    /* h2o 2.2's h2o_multithread_destroy_queue frees the queue only with libuv; with its
     * own loop the struct is left to the caller. */
    free(queue);
#else
    (void)queue;
#endif
    wk->has_ctx = 0;
}

int smki_repo_serve(smki_repo *r, const smki_repo_server_opts *o)
{
    ENSURE(r && o && o->listen, SMKI_E_INTERNAL, "smki_repo_serve: missing argument");
    server s = {0};
    s.repo = r;
    s.o = o;
    s.lfd = -1;
    s.max_conns = o->max_conns ? o->max_conns : 1024;
    s.max_headers = o->max_headers ? o->max_headers : 8192;
    s.nworkers = o->threads ? o->threads : 2;
    ENSURE(s.nworkers <= 64, SMKI_E_USAGE, "--threads %u: at most 64", s.nworkers);
    int rc = 0, port = 0;
    unsigned started = 0;
    sigset_t stopsigs, oldmask;
    sigemptyset(&stopsigs);
    sigaddset(&stopsigs, SIGTERM);
    sigaddset(&stopsigs, SIGINT);
    sigaddset(&stopsigs, SIGHUP); /* a reload, not a stop (below) */
    atomic_store(&s.access_log, o->access_log);
    signal(SIGPIPE, SIG_IGN);
    /* Descriptors up to the hard limit: connections, not the soft default of 1024,
     * bound what the server holds. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
        s.max_conns + 64 > nofile.rlim_cur)
        log_line("warn", "limits", "\"max_conns\":%u,\"nofile\":%llu,\"note\":\"max-conns is near the descriptor limit\"",
                 s.max_conns, (unsigned long long)nofile.rlim_cur);
    s.party_obj = OBJ_txt2obj(o->party_attr ? o->party_attr : "2.5.4.97", 1);
    ENSURE_GOTO(s.party_obj, SMKI_E_USAGE, out, "the Party Signifier attribute '%s' is not an OID",
                o->party_attr ? o->party_attr : "");
    GUARD_GOTO(tls_setup(&s), out);
    GUARD_GOTO(pool_start(&s), out);
    if (s.ssl) SSL_CTX_set_info_callback(s.ssl, on_ssl_info);
    GUARD_GOTO(listen_socket(o->listen, &s.lfd, &port), out);

    h2o_config_init(&s.config);
    s.has_config = 1;
    s.config.server_name = h2o_iovec_init(H2O_STRLIT("smki"));
    s.config.max_request_entity_size = o->max_body ? o->max_body : SMKI_REPO_XML_MAX;
    uint64_t timeout_ms = (uint64_t)(o->timeout_s > 0 ? o->timeout_s : 10) * 1000;
    s.timeout_ms = timeout_ms;
    s.max_input = s.max_headers + s.config.max_request_entity_size + 64 * 1024;
    s.config.http1.req_timeout = timeout_ms;  /* a request's headers and body; idle keep-alive */
    s.config.handshake_timeout = timeout_ms;  /* TLS */
    s.config.http1.upgrade_to_http2 = 0;
    h2o_hostconf_t *host = h2o_config_register_host(&s.config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    handler *h = (handler *)h2o_create_handler(path, sizeof *h);
    h->super.on_req = on_req;
    h->srv = &s;

    s.w = calloc(s.nworkers, sizeof *s.w);
    ENSURE_GOTO(s.w, SMKI_E_NOMEM, out, "out of memory");
    for (unsigned i = 0; i < s.nworkers; i++) {
        worker *wk = &s.w[i];
        wk->srv = &s;
        h2o_context_init(&wk->ctx, h2o_evloop_create(), &s.config);
        wk->has_ctx = 1;
        h2o_multithread_register_receiver(wk->ctx.queue, &wk->answered, on_answered);
        wk->has_receiver = 1;
        if (!o->handle) {
            wk->held = calloc(HELD_MAX, sizeof *wk->held);
            ENSURE_GOTO(wk->held, SMKI_E_NOMEM, out, "out of memory");
        }
        wk->actx.ctx = &wk->ctx;
        wk->actx.hosts = s.config.hosts;
        wk->actx.ssl_ctx = s.ssl;
        /* Each loop gets its own descriptor of the socket; closed with its listener. */
        int fd = dup(s.lfd);
        ENSURE_GOTO(fd >= 0, SMKI_E_IO, out, "dup of the listening socket: %s", strerror(errno));
        wk->listener = h2o_evloop_socket_create(wk->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
        wk->listener->data = wk;
        h2o_socket_read_start(wk->listener, on_accept);
    }
    /* SIGTERM, SIGINT and SIGHUP go to this thread only (sigtimedwait below): the loops
     * never see them. */
    pthread_sigmask(SIG_BLOCK, &stopsigs, &oldmask);
    log_line("info", "listening", "\"listen\":\"%s\",\"port\":%d,\"tls\":%s,\"client_certs\":\"%s\",\"threads\":%u,"
                                  "\"max_conns\":%u,\"server\":\"h2o %s\"",
             o->listen, port, s.ssl ? "true" : "false",
             o->client_ca ? (o->require_client_cert ? "required" : "optional") : "off", s.nworkers, s.max_conns,
             H2O_VERSION);
    if (o->on_listen) o->on_listen(port, o->on_listen_arg);
    for (; started < s.nworkers; started++)
        if (pthread_create(&s.w[started].thread, NULL, run_worker, &s.w[started]) != 0) break;
    if (started < s.nworkers) {
        atomic_store(&s.is_stopping, 1);
        rc = SMKI_FAIL(SMKI_E_INTERNAL, "a worker thread could not be started");
    }
    while (!atomic_load(&s.is_stopping) && !(o->stop && *o->stop)) {
        struct timespec tv = {0, TICK_MS * 1000000L};
        int sig = sigtimedwait(&stopsigs, NULL, &tv);
        if (sig == SIGHUP) {
            reload(&s);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) log_line("info", "stopping", "\"signal\":\"%s\"", sig == SIGTERM ? "TERM" : "INT");
        if (sig > 0) break;
    }
    atomic_store(&s.is_stopping, 1);
    for (unsigned i = 0; i < started; i++) pthread_join(s.w[i].thread, NULL);
    pool_stop(&s);
    /* A signal that came while the loops finished is taken here, not left pending. */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&stopsigs, NULL, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    log_line("info", "stopped", "\"connections_open\":%d", atomic_load(&s.conns));
out:
    pool_stop(&s);
    for (unsigned i = 0; s.w && i < s.nworkers; i++) {
        worker_free(&s.w[i]);
        free(s.w[i].held);
    }
    free(s.w);
    if (s.has_config) h2o_config_dispose(&s.config);
    if (s.lfd >= 0) close(s.lfd);
    if (s.ssl) SSL_CTX_free(s.ssl);
    smki_repo_tls_free(s.tls); /* after the SSL_CTX whose certificate callback it is */
    ASN1_OBJECT_free(s.party_obj);
    return rc;
}
