/* repo/server: the HTTP/1.1 service on libevent's evhttp. Worker threads each run an
 * event loop on the same listening socket; a request is answered in the loop that read
 * it (the answer is a few LMDB reads, microseconds). TLS through bufferevent_openssl,
 * the same OpenSSL as the rest of smki. Every connection is counted from accept: one
 * over the limit is answered 429 and closed, idle ones time out, and accepting pauses
 * while the count is at the limit. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "repo.h"

#define CONN_BUCKETS 1024

typedef struct conn {
    struct conn *next;                 /* in its hash bucket */
    struct conn *prev_all, *next_all;  /* every connection of the loop */
    struct bufferevent *bev;           /* evhttp's; we hold a reference */
    struct worker *wk;
    int is_over;             /* accepted over the limit: answered 429, then closed */
    int has_party;           /* party looked up (TLS) */
    int has_cert;
    char party[SMKI_REPO_PARTY_MAX];
} conn;

typedef struct worker {
    struct server *srv;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    conn *buckets[CONN_BUCKETS]; /* this loop's connections, by bufferevent */
    conn *all;
    int is_paused;               /* accepting stopped: too many connections */
    struct event *tick;
} worker;

typedef struct server {
    smki_repo *repo;
    const smki_repo_server_opts *o;
    SSL_CTX *ssl;
    ASN1_OBJECT *party_obj;
    int lfd;
    unsigned max_conns;
    atomic_int conns;      /* open, within the limit */
    atomic_int conns_over; /* open, accepted over the limit (429 at their first request) */
    atomic_int is_stopping;
    unsigned nworkers;
    worker *w;
} server;

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
 * Every accepted connection is counted from accept to its end, idle or not: evhttp
 * asks us for its bufferevent (new_bev), we keep a reference of our own, and the loop's
 * tick reaps those evhttp has freed (bufferevent_free clears a bufferevent's callbacks,
 * and closes its socket at once; our reference only keeps the small struct). One
 * accepted over the limit is answered 429 at its first request and closed; when the
 * count is a margin over the limit the loops stop accepting until it falls. */
static size_t bucket_of(const void *p) { return ((uintptr_t)p >> 4) % CONN_BUCKETS; }

static conn *conn_find(worker *wk, const struct bufferevent *bev)
{
    for (conn *c = wk->buckets[bucket_of(bev)]; c; c = c->next)
        if (c->bev == bev) return c;
    return NULL;
}

static void conn_track(worker *wk, conn *c)
{
    size_t b = bucket_of(c->bev);
    c->next = wk->buckets[b];
    wk->buckets[b] = c;
    c->prev_all = NULL;
    c->next_all = wk->all;
    if (wk->all) wk->all->prev_all = c;
    wk->all = c;
}

static void conn_untrack(worker *wk, conn *c)
{
    conn **pp = &wk->buckets[bucket_of(c->bev)];
    while (*pp && *pp != c) pp = &(*pp)->next;
    if (*pp) *pp = c->next;
    if (c->prev_all) c->prev_all->next_all = c->next_all;
    else wk->all = c->next_all;
    if (c->next_all) c->next_all->prev_all = c->prev_all;
    if (!c->is_over) {
        atomic_fetch_sub(&wk->srv->conns, 1);
        smki_repo_note_conn(wk->srv->repo, 0, 0);
    } else atomic_fetch_sub(&wk->srv->conns_over, 1);
    bufferevent_decref(c->bev);
    free(c);
}

/* The connections evhttp has let go of. all: every one (at shutdown). */
static void conn_reap(worker *wk, int all)
{
    conn *c = wk->all;
    while (c) {
        conn *next = c->next_all;
        bufferevent_data_cb rd = NULL, wr = NULL;
        bufferevent_event_cb ev = NULL;
        void *arg = NULL;
        bufferevent_getcb(c->bev, &rd, &wr, &ev, &arg);
        if (all || (!rd && !wr && !ev)) conn_untrack(wk, c);
        c = next;
    }
}

/* evhttp asks for each accepted connection's bufferevent (it sets the socket after):
 * TLS when configured. */
static struct bufferevent *new_bev(struct event_base *base, void *arg)
{
    worker *wk = arg;
    server *s = wk->srv;
    struct bufferevent *bev = NULL;
    if (s->ssl) {
        SSL *ssl = SSL_new(s->ssl);
        if (!ssl) return NULL;
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
        if (!bev) {
            SSL_free(ssl);
            return NULL;
        }
        /* A client that closes without close_notify is the usual case, not an error. */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!bev) return NULL;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c) return bev; /* served, uncounted */
    c->bev = bev;
    c->wk = wk;
    bufferevent_incref(bev);
    int n = atomic_fetch_add(&s->conns, 1) + 1;
    if ((unsigned)n > s->max_conns) {
        atomic_fetch_sub(&s->conns, 1);
        atomic_fetch_add(&s->conns_over, 1);
        c->is_over = 1;
        smki_repo_note_conn(s->repo, 1, 1);
    } else smki_repo_note_conn(s->repo, 1, 0);
    conn_track(wk, c);
    return bev;
}

/* The Party Signifier of a verified client certificate (TLS only), looked up once. */
static void conn_party(server *s, conn *c, struct bufferevent *bev)
{
    if (c->has_party) return;
    c->has_party = 1;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    if (!ssl) return;
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (!peer || SSL_get_verify_result(ssl) != X509_V_OK) return;
    c->has_cert = 1;
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
static const char *method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    default: return "OTHER";
    }
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *body, int close)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    if (close) evhttp_add_header(h, "Connection", "close");
    struct evbuffer *b = evbuffer_new();
    if (b) evbuffer_add(b, body, strlen(body));
    evhttp_send_reply(req, code, reason, b);
    if (b) evbuffer_free(b);
}

static const char *reason_of(int code)
{
    switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required"; /* the DCC repository's "not found" (reference §9) */
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return code >= 500 ? "Internal Server Error" : "Error";
    }
}

static void on_request(struct evhttp_request *req, void *arg)
{
    worker *wk = arg;
    server *s = wk->srv;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    conn *c = bev ? conn_find(wk, bev) : NULL;
    if (c && c->is_over) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        reply_text(req, 429, "Too Many Requests", "{\"status\":429,\"error\":\"too many connections\"}\n", 1);
        return;
    }
    if (atomic_load(&s->is_stopping)) {
        reply_text(req, 503, "Service Unavailable", "{\"status\":503,\"error\":\"shutting down\"}\n", 1);
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path) path = "/";
    char *decoded = NULL;
    size_t dlen = 0;
    /* Paths are matched decoded (a serial is hex; nothing else needs escapes). */
    decoded = evhttp_uridecode(path, 0, &dlen);
    if (!decoded || strlen(decoded) != dlen) {
        free(decoded);
        reply_text(req, 400, "Bad Request", "{\"status\":400,\"error\":\"a malformed path\"}\n", 0);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t blen = evbuffer_get_length(in);
    smki_repo_req rq = {0};
    rq.method = method_name(evhttp_request_get_command(req));
    rq.path = decoded;
    rq.query = uri ? evhttp_uri_get_query(uri) : NULL;
    rq.accept = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept");
    rq.body = blen ? evbuffer_pullup(in, (ev_ssize_t)blen) : NULL;
    rq.body_len = blen;
    if (c && s->ssl) {
        conn_party(s, c, bev);
        rq.has_client_cert = c->has_cert;
        rq.party = c->party[0] ? c->party : NULL;
    }
    smki_repo_resp w;
    smki_repo_handle(s->repo, &rq, &w);
    if (!w.body) {
        reply_text(req, 500, "Internal Server Error", "{\"status\":500,\"error\":\"out of memory\"}\n", 1);
    } else {
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Content-Type", w.content_type);
        struct evbuffer *out = evhttp_request_get_output_buffer(req);
        evbuffer_add(out, w.body, w.len);
        evhttp_send_reply(req, w.status, reason_of(w.status), NULL);
    }
    if (s->o->access_log) {
        char p[512], party[2 * SMKI_REPO_PARTY_MAX * 3];
        const char *host = NULL;
        ev_uint16_t port = 0;
        char *h = NULL;
        if (evcon) evhttp_connection_get_peer(evcon, &h, &port), host = h;
        json_text(rq.path, p, sizeof p);
        json_text(rq.party, party, sizeof party);
        log_line("info", "request",
                 "\"peer\":\"%s:%u\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"bytes\":%zu,\"endpoint\":\"%s\","
                 "\"party\":%s%s%s",
                 host ? host : "?", port, rq.method, p, w.status, w.len, smki_repo_ep_name(w.ep), rq.party ? "\"" : "",
                 rq.party ? party : "null", rq.party ? "\"" : "");
    }
    smki_repo_resp_free(&w);
    free(decoded);
}

/* ---- Loops ---------------------------------------------------------------------------------- */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    worker *wk = arg;
    server *s = wk->srv;
    conn_reap(wk, 0);
    /* Far over the limit: stop accepting (new connections wait in the backlog) until
     * the count is back under it. The margin lets those just over it hear their 429. */
    unsigned open = (unsigned)(atomic_load(&s->conns) + atomic_load(&s->conns_over));
    unsigned margin = s->max_conns / 4 + 16;
    struct evconnlistener *lev = wk->bound ? evhttp_bound_socket_get_listener(wk->bound) : NULL;
    if (lev && !wk->is_paused && open >= s->max_conns + margin) {
        evconnlistener_disable(lev);
        wk->is_paused = 1;
    } else if (lev && wk->is_paused && open < s->max_conns + margin / 2) {
        evconnlistener_enable(lev);
        wk->is_paused = 0;
    }
    if (s->o->stop && *s->o->stop) atomic_store(&s->is_stopping, 1);
    if (atomic_load(&s->is_stopping)) {
        if (wk->bound) {
            evhttp_del_accept_socket(wk->http, wk->bound);
            wk->bound = NULL;
        }
        /* What is being written gets a moment to go; then the loop ends. */
        struct timeval grace = {0, 300000};
        event_base_loopexit(wk->base, &grace);
    }
}

static void *run_worker(void *arg)
{
    worker *wk = arg;
    event_base_dispatch(wk->base);
    return NULL;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    server *s = arg;
    if (!atomic_exchange(&s->is_stopping, 1))
        log_line("info", "stopping", "\"signal\":\"%s\"", sig == SIGTERM ? "TERM" : "INT");
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
                           verify_any);
        SSL_CTX_set_verify_depth(ctx, 4);
    }
    /* Sessions resumed by ticket keep the client's verified certificate. */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"smki-repo", 9);
    return 0;
}

int smki_repo_serve(smki_repo *r, const smki_repo_server_opts *o)
{
    ENSURE(r && o && o->listen, SMKI_E_INTERNAL, "smki_repo_serve: missing argument");
    server s = {0};
    s.repo = r;
    s.o = o;
    s.lfd = -1;
    s.max_conns = o->max_conns ? o->max_conns : 1024;
    s.nworkers = o->threads ? o->threads : 2;
    ENSURE(s.nworkers <= 64, SMKI_E_USAGE, "--threads %u: at most 64", s.nworkers);
    int rc = 0, port = 0;
    struct event_base *main_base = NULL;
    struct event *sig_term = NULL, *sig_int = NULL;
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
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
    GUARD_GOTO(listen_socket(o->listen, &s.lfd, &port), out);
    s.w = calloc(s.nworkers, sizeof *s.w);
    ENSURE_GOTO(s.w, SMKI_E_NOMEM, out, "out of memory");
    for (unsigned i = 0; i < s.nworkers; i++) {
        worker *wk = &s.w[i];
        wk->srv = &s;
        wk->base = event_base_new();
        wk->http = wk->base ? evhttp_new(wk->base) : NULL;
        ENSURE_GOTO(wk->http, SMKI_E_NOMEM, out, "an event loop could not be made");
        evhttp_set_allowed_methods(wk->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
        evhttp_set_max_body_size(wk->http, (ev_ssize_t)(o->max_body ? o->max_body : SMKI_REPO_XML_MAX));
        evhttp_set_max_headers_size(wk->http, (ev_ssize_t)(o->max_headers ? o->max_headers : 8192));
        evhttp_set_timeout(wk->http, o->timeout_s > 0 ? o->timeout_s : 10);
        evhttp_set_bevcb(wk->http, new_bev, wk);
        evhttp_set_gencb(wk->http, on_request, wk);
        /* Each loop gets its own descriptor of the socket: evhttp closes it with the loop. */
        int fd = dup(s.lfd);
        ENSURE_GOTO(fd >= 0, SMKI_E_IO, out, "dup of the listening socket: %s", strerror(errno));
        evutil_make_socket_nonblocking(fd);
        wk->bound = evhttp_accept_socket_with_handle(wk->http, fd);
        if (!wk->bound) close(fd);
        ENSURE_GOTO(wk->bound, SMKI_E_IO, out, "the listening socket could not be added to a loop");
        struct timeval tv = {0, 100000};
        wk->tick = event_new(wk->base, -1, EV_PERSIST, on_tick, wk);
        ENSURE_GOTO(wk->tick && event_add(wk->tick, &tv) == 0, SMKI_E_NOMEM, out, "a timer");
    }
    main_base = event_base_new();
    ENSURE_GOTO(main_base, SMKI_E_NOMEM, out, "an event loop could not be made");
    sig_term = evsignal_new(main_base, SIGTERM, on_signal, &s);
    sig_int = evsignal_new(main_base, SIGINT, on_signal, &s);
    ENSURE_GOTO(sig_term && sig_int && evsignal_add(sig_term, NULL) == 0 && evsignal_add(sig_int, NULL) == 0,
                SMKI_E_INTERNAL, out, "signal handlers");
    log_line("info", "listening", "\"listen\":\"%s\",\"port\":%d,\"tls\":%s,\"client_certs\":\"%s\",\"threads\":%u,"
                                  "\"max_conns\":%u",
             o->listen, port, s.ssl ? "true" : "false",
             o->client_ca ? (o->require_client_cert ? "required" : "optional") : "off", s.nworkers, s.max_conns);
    if (o->on_listen) o->on_listen(port, o->on_listen_arg);
    unsigned started = 0;
    for (; started < s.nworkers; started++)
        if (pthread_create(&s.w[started].thread, NULL, run_worker, &s.w[started]) != 0) break;
    if (started < s.nworkers) {
        atomic_store(&s.is_stopping, 1);
        rc = SMKI_FAIL(SMKI_E_INTERNAL, "a worker thread could not be started");
    }
    /* The main loop only waits for signals and the stop flag. */
    while (!atomic_load(&s.is_stopping) && !(o->stop && *o->stop)) {
        struct timeval tv = {0, 100000};
        event_base_loopexit(main_base, &tv);
        event_base_dispatch(main_base);
    }
    atomic_store(&s.is_stopping, 1);
    for (unsigned i = 0; i < started; i++) pthread_join(s.w[i].thread, NULL);
    log_line("info", "stopped", "\"connections_open\":%d", atomic_load(&s.conns));
out:
    if (sig_term) event_free(sig_term);
    if (sig_int) event_free(sig_int);
    if (main_base) event_base_free(main_base);
    for (unsigned i = 0; s.w && i < s.nworkers; i++) {
        worker *wk = &s.w[i];
        if (wk->tick) event_free(wk->tick);
        if (wk->http) evhttp_free(wk->http); /* frees its connections */
        conn_reap(wk, 1);                     /* and our references to them */
        if (wk->base) event_base_free(wk->base);
    }
    free(s.w);
    if (s.lfd >= 0) close(s.lfd);
    if (s.ssl) SSL_CTX_free(s.ssl);
    ASN1_OBJECT_free(s.party_obj);
    return rc;
}
