/* A keep-alive HTTPS load generator that presents a client certificate (mutual TLS, as
 * DCC Gateway connections use it): wrk cannot present one. CONNS connections over
 * THREADS threads, one handshake each, then GET requests back to back on each (one in
 * flight per connection, every connection polled as wrk does) for SECS seconds, each path drawn from PATHS (one a line).
 * Prints what tools/bench_repo.sh reads from wrk: Requests/sec, the 99th percentile,
 * "N requests in", and non-2xx answers.
 *   bench_tls_load PORT CONNS THREADS SECS CERT KEY CAFILE PATHS   (host 127.0.0.1) */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_PATHS 100000
#define BUCKETS 100000 /* latency histogram: 10 us each, up to 1 s */
#define BUF 65536

typedef struct {
    SSL *ssl;
    int fd;
    double sent;
    size_t have; /* octets of the answer in buf */
    char buf[BUF];
} conn;

typedef struct {
    SSL_CTX *ctx;
    int port, nconns;
    double until;
    unsigned seed;
    unsigned long long done, bad, broken;
    unsigned *hist;
} worker;

static char *g_paths[MAX_PATHS];
static size_t g_npaths;

static int load_paths(const char *file)
{
    FILE *f = fopen(file, "r");
    char line[512];
    if (!f) return -1;
    while (g_npaths < MAX_PATHS && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (*line) g_paths[g_npaths++] = strdup(line);
    }
    fclose(f);
    return g_npaths ? 0 : -1;
}

static int conn_open(worker *w, conn *c)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)w->port)};
    int one = 1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->ssl = SSL_new(w->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_connect(c->ssl) != 1) return -1;
    return 0;
}

static void conn_close(conn *c)
{
    if (c->ssl) SSL_free(c->ssl);
    if (c->fd >= 0) close(c->fd);
    c->ssl = NULL;
    c->fd = -1; /* poll() skips a negative descriptor */
}

static int conn_send(worker *w, conn *c)
{
    char req[700];
    const char *path = g_paths[rand_r(&w->seed) % g_npaths];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    c->sent = bench_now();
    c->have = 0;
    for (;;) { /* a request of a few dozen octets: a full send buffer is the rare case */
        int put = SSL_write(c->ssl, req, n);
        if (put == n) return 0;
        int e = SSL_get_error(c->ssl, put);
        if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) return -1;
        poll(&(struct pollfd){.fd = c->fd, .events = POLLOUT}, 1, 100);
    }
}

/* The answer in c->buf once its headers and Content-Length octets are all there: its
 * status; 0 while it is not whole yet. */
static int answer_status(conn *c)
{
    c->buf[c->have] = 0;
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end) return 0;
    size_t body = 0, head = (size_t)(end + 4 - c->buf);
    for (char *p = c->buf; p < end; p = strstr(p, "\r\n") + 2)
        if (strncasecmp(p, "content-length:", 15) == 0) body = strtoul(p + 15, NULL, 10);
    if (c->have < head + body) return 0;
    int status = atoi(c->buf + 9);
    return status > 0 ? status : -1;
}

/* Read what the connection has (non-blocking): the answer's status when it is whole,
 * 0 when more is to come, -1 when the connection failed. */
static int conn_pump(conn *c)
{
    for (;;) {
        if (c->have >= BUF - 1) return -1;
        int n = SSL_read(c->ssl, c->buf + c->have, (int)(BUF - 1 - c->have));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? answer_status(c) : -1;
        }
        c->have += (size_t)n;
        int status = answer_status(c);
        if (status) return status;
    }
}

static void count(worker *w, conn *c, int status)
{
    double us = (bench_now() - c->sent) * 1e6;
    w->done++;
    if (status < 200 || status > 399) w->bad++;
    w->hist[us / 10 < BUCKETS - 1 ? (size_t)(us / 10) : BUCKETS - 1]++;
}

/* Like wrk: every connection polled, whichever has its answer whole gets its next
 * request, so no connection waits behind another. */
static void *work(void *arg)
{
    worker *w = arg;
    conn *cs = calloc((size_t)w->nconns, sizeof *cs);
    struct pollfd *pf = calloc((size_t)w->nconns, sizeof *pf);
    if (!cs || !pf) goto out;
    for (int i = 0; i < w->nconns; i++) {
        if (conn_open(w, &cs[i]) != 0 || conn_send(w, &cs[i]) != 0) w->broken++, conn_close(&cs[i]);
        else fcntl(cs[i].fd, F_SETFL, fcntl(cs[i].fd, F_GETFL) | O_NONBLOCK);
    }
    while (bench_now() < w->until) {
        int live = 0;
        for (int i = 0; i < w->nconns; i++) pf[i] = (struct pollfd){.fd = cs[i].fd, .events = POLLIN};
        if (poll(pf, (nfds_t)w->nconns, 100) < 0) break;
        for (int i = 0; i < w->nconns; i++) {
            if (!cs[i].ssl) continue;
            live++;
            if (!(pf[i].revents & (POLLIN | POLLERR | POLLHUP)) && !SSL_pending(cs[i].ssl)) continue;
            int status = conn_pump(&cs[i]);
            if (status == 0) continue;
            if (status > 0) count(w, &cs[i], status);
            if (status < 0 || conn_send(w, &cs[i]) != 0) w->broken++, conn_close(&cs[i]);
        }
        if (!live) break;
    }
    for (int i = 0; i < w->nconns; i++) conn_close(&cs[i]);
out:
    free(pf);
    free(cs);
    return NULL;
}

static SSL_CTX *client_ctx(const char *cert, const char *key, const char *cafile)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

static void report(worker *ws, int nthreads, double secs)
{
    unsigned long long done = 0, bad = 0, broken = 0, seen = 0;
    static unsigned hist[BUCKETS];
    for (int t = 0; t < nthreads; t++) {
        done += ws[t].done, bad += ws[t].bad, broken += ws[t].broken;
        for (size_t b = 0; b < BUCKETS; b++) hist[b] += ws[t].hist[b];
    }
    size_t p99 = 0;
    for (; p99 < BUCKETS && (seen += hist[p99]) < done - done / 100; p99++) {}
    printf("  Latency Distribution\n     99%%   %.2fms\n", (double)(p99 + 1) * 10 / 1000);
    printf("  %llu requests in %.2fs\n", done, secs);
    if (broken) printf("  Socket errors: connect or read %llu\n", broken);
    if (bad) printf("  Non-2xx or 3xx responses: %llu\n", bad);
    printf("Requests/sec: %.2f\n", secs > 0 ? (double)done / secs : 0);
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: bench_tls_load PORT CONNS THREADS SECS CERT KEY CAFILE PATHS\n");
        return 1;
    }
    int port = atoi(argv[1]), nconns = atoi(argv[2]), nthreads = atoi(argv[3]);
    double secs = atof(argv[4]);
    if (port <= 0 || nthreads <= 0 || nthreads > 64 || nconns < nthreads || secs <= 0 || load_paths(argv[8]) != 0) {
        fprintf(stderr, "bench_tls_load: bad arguments or no paths in %s\n", argv[8]);
        return 1;
    }
    SSL_CTX *ctx = client_ctx(argv[5], argv[6], argv[7]);
    if (!ctx) return 1;
    worker ws[64];
    pthread_t th[64];
    double t0 = bench_now();
    for (int t = 0; t < nthreads; t++) {
        ws[t] = (worker){.ctx = ctx, .port = port, .nconns = nconns / nthreads + (t < nconns % nthreads),
                         .until = t0 + secs, .seed = (unsigned)t * 7919u + 1};
        ws[t].hist = calloc(BUCKETS, sizeof *ws[t].hist);
        if (!ws[t].hist) return 1;
        pthread_create(&th[t], NULL, work, &ws[t]);
    }
    for (int t = 0; t < nthreads; t++) pthread_join(th[t], NULL);
    report(ws, nthreads, bench_now() - t0);
    for (int t = 0; t < nthreads; t++) free(ws[t].hist);
    for (size_t i = 0; i < g_npaths; i++) free(g_paths[i]);
    SSL_CTX_free(ctx);
    return 0;
}
