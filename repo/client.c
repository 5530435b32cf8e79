/* repo/client: one blocking HTTP/1.1 request to a repository (plain or TLS with
 * OpenSSL, optionally with a client certificate), for `smki repo get/search`. The
 * answer is read bounded: headers to 16 KiB, the body to max_body. */
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "repo.h"

#define HEAD_MAX 16384

typedef struct {
    int fd;
    SSL *ssl;
} link_t;

static int link_write(link_t *l, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k;
        if (l->ssl) {
            int w = SSL_write(l->ssl, b, n > 1u << 30 ? 1 << 30 : (int)n);
            k = w > 0 ? w : -1;
            if (w <= 0) return SMKI_FAIL_SSL(SMKI_E_IO, "sending the request over TLS");
        } else {
            k = send(l->fd, b, n, MSG_NOSIGNAL);
            if (k < 0 && errno == EINTR) continue;
            ENSURE(k > 0, SMKI_E_IO, "sending the request: %s", strerror(errno));
        }
        b += k, n -= (size_t)k;
    }
    return 0;
}

/* >0 octets, 0 end of stream, <0 failure. */
static ssize_t link_read(link_t *l, void *p, size_t n)
{
    if (l->ssl) {
        int r = SSL_read(l->ssl, p, n > 1u << 30 ? 1 << 30 : (int)n);
        if (r > 0) return r;
        int e = SSL_get_error(l->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN) return 0;
        if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return 0; /* closed without close_notify */
        return SMKI_FAIL_SSL(SMKI_E_IO, "reading the answer over TLS");
    }
    for (;;) {
        ssize_t k = recv(l->fd, p, n, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return SMKI_FAIL(SMKI_E_IO, "reading the answer: %s", strerror(errno));
        return k;
    }
}

static int parse_url(const char *url, int *is_tls, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *p;
    if (strncmp(url, "http://", 7) == 0) *is_tls = 0, p = url + 7;
    else if (strncmp(url, "https://", 8) == 0) *is_tls = 1, p = url + 8;
    else return SMKI_FAIL(SMKI_E_USAGE, "URL '%s': http://HOST:PORT or https://HOST:PORT", url);
    size_t n = strcspn(p, "/");
    ENSURE(p[n] == 0 || strcmp(p + n, "/") == 0, SMKI_E_USAGE, "URL '%s': give the server only, no path", url);
    const char *hs = p, *ps = NULL;
    size_t hl;
    if (*p == '[') {
        const char *e = memchr(p, ']', n);
        ENSURE(e, SMKI_E_USAGE, "URL '%s': an unclosed [", url);
        hs = p + 1, hl = (size_t)(e - p - 1);
        if (e + 1 < p + n && e[1] == ':') ps = e + 2;
    } else {
        const char *c = memchr(p, ':', n);
        hl = c ? (size_t)(c - p) : n;
        if (c) ps = c + 1;
    }
    ENSURE(hl > 0 && hl < hcap, SMKI_E_USAGE, "URL '%s': a bad host", url);
    memcpy(host, hs, hl);
    host[hl] = 0;
    size_t pl = ps ? (size_t)(p + n - ps) : 0;
    if (!ps) snprintf(port, pcap, "%s", *is_tls ? "443" : "80");
    else {
        ENSURE(pl > 0 && pl < pcap, SMKI_E_USAGE, "URL '%s': a bad port", url);
        memcpy(port, ps, pl);
        port[pl] = 0;
    }
    return 0;
}

static int tcp_connect(const char *host, const char *port, int timeout_s, int *out)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(host, port, &hints, &ai);
    ENSURE(g == 0, SMKI_E_IO, "resolving %s:%s: %s", host, port, gai_strerror(g));
    int fd = -1, err = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        struct timeval tv = {timeout_s, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    ENSURE(fd >= 0, SMKI_E_IO, "connecting to %s:%s: %s", host, port, strerror(err));
    *out = fd;
    return 0;
}

static int tls_open(const smki_repo_client_opts *o, const char *host, link_t *l, SSL_CTX **ctx_out)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ENSURE_SSL(ctx, SMKI_E_CRYPTO, "SSL_CTX_new");
    *ctx_out = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* The answer's end is its Content-Length: a server that closes without
     * close_notify after it has not truncated anything. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (o->ca_file) {
        ENSURE_SSL(SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) == 1, SMKI_E_INPUT, "the CA file '%s'",
                   o->ca_file);
    } else SSL_CTX_set_default_verify_paths(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (o->cert_file) {
        ENSURE_SSL(SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) == 1, SMKI_E_INPUT,
                   "the client certificate '%s'", o->cert_file);
        ENSURE_SSL(SSL_CTX_use_PrivateKey_file(ctx, o->key_file ? o->key_file : o->cert_file, SSL_FILETYPE_PEM) == 1,
                   SMKI_E_INPUT, "the client key '%s'", o->key_file ? o->key_file : o->cert_file);
    }
    l->ssl = SSL_new(ctx);
    ENSURE_SSL(l->ssl, SMKI_E_CRYPTO, "SSL_new");
    SSL_set_fd(l->ssl, l->fd);
    SSL_set_tlsext_host_name(l->ssl, host);
    X509_VERIFY_PARAM *vp = SSL_get0_param(l->ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1) X509_VERIFY_PARAM_set1_host(vp, host, 0);
    if (SSL_connect(l->ssl) != 1) {
        long v = SSL_get_verify_result(l->ssl);
        if (v != X509_V_OK)
            return SMKI_FAIL(SMKI_E_VERIFY, "the server's certificate does not verify: %s",
                             X509_verify_cert_error_string(v));
        return SMKI_FAIL_SSL(SMKI_E_IO, "the TLS handshake with %s", host);
    }
    return 0;
}

/* Status line and headers of head (NUL-terminated, without the blank line). */
static int parse_head(char *head, smki_repo_http_resp *out, long long *clen)
{
    *clen = -1;
    char *line = head, *next;
    int first = 1;
    for (; line && *line; line = next) {
        next = strstr(line, "\r\n");
        if (next) *next = 0, next += 2;
        if (first) {
            int st = 0;
            ENSURE(sscanf(line, "HTTP/1.%*[01] %3d", &st) == 1 && st >= 100 && st <= 599, SMKI_E_INPUT,
                   "the answer's status line '%.60s'", line);
            out->status = st;
            first = 0;
            continue;
        }
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = 0;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        if (strcasecmp(line, "Content-Length") == 0) {
            char *end;
            *clen = strtoll(v, &end, 10);
            ENSURE(*end == 0 && *clen >= 0, SMKI_E_INPUT, "Content-Length '%.30s'", v);
        } else if (strcasecmp(line, "Content-Type") == 0) snprintf(out->content_type, sizeof out->content_type, "%s", v);
        else if (strcasecmp(line, "Transfer-Encoding") == 0)
            return SMKI_FAIL(SMKI_E_INPUT, "a chunked answer: the repository sends Content-Length");
    }
    ENSURE(!first, SMKI_E_INPUT, "an empty answer");
    return 0;
}

int smki_repo_http(const smki_repo_client_opts *o, const char *method, const char *path, const char *accept,
                   const char *content_type, const uint8_t *body, size_t body_len, smki_repo_http_resp *out)
{
    memset(out, 0, sizeof *out);
    ENSURE(o && o->url && method && path && path[0] == '/', SMKI_E_INTERNAL, "smki_repo_http: missing argument");
    int is_tls = 0, rc = 0;
    char host[256], port[16];
    GUARD(parse_url(o->url, &is_tls, host, sizeof host, port, sizeof port));
    for (const char *p = path; *p; p++)
        ENSURE((unsigned char)*p > 0x20 && *p != 0x7f, SMKI_E_USAGE, "a control character or space in the path");
    size_t max_body = o->max_body ? o->max_body : 16u << 20;
    link_t l = {-1, NULL};
    SSL_CTX *ctx = NULL;
    char *buf = NULL;
    GUARD(tcp_connect(host, port, o->timeout_s > 0 ? o->timeout_s : 10, &l.fd));
    if (is_tls) GUARD_GOTO(tls_open(o, host, &l, &ctx), out);
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: smki/repo\r\nConnection: close\r\n%s%s%s"
                     "%s%s%sContent-Length: %zu\r\n\r\n",
                     method, path, host, accept ? "Accept: " : "", accept ? accept : "", accept ? "\r\n" : "",
                     content_type ? "Content-Type: " : "", content_type ? content_type : "", content_type ? "\r\n" : "",
                     body_len);
    ENSURE_GOTO(n > 0 && (size_t)n < sizeof req, SMKI_E_USAGE, out, "the request line is too long");
    GUARD_GOTO(link_write(&l, req, (size_t)n), out);
    if (body_len) GUARD_GOTO(link_write(&l, body, body_len), out);
    /* Everything to the end of the stream (Connection: close), bounded. */
    size_t cap = 4096, len = 0, limit = HEAD_MAX + max_body;
    buf = malloc(cap + 1);
    ENSURE_GOTO(buf, SMKI_E_NOMEM, out, "out of memory");
    for (;;) {
        if (len == cap) {
            ENSURE_GOTO(cap < limit, SMKI_E_INPUT, out, "an answer over %zu octets", limit);
            cap = cap * 2 > limit ? limit : cap * 2;
            char *nb = realloc(buf, cap + 1);
            ENSURE_GOTO(nb, SMKI_E_NOMEM, out, "out of memory");
            buf = nb;
        }
        ssize_t k = link_read(&l, buf + len, cap - len);
        if (k < 0) {
            rc = (int)k;
            goto out;
        }
        if (k == 0) break;
        len += (size_t)k;
    }
    buf[len] = 0;
    char *sep = strstr(buf, "\r\n\r\n");
    ENSURE_GOTO(sep && (size_t)(sep - buf) < HEAD_MAX, SMKI_E_INPUT, out, "the answer has no complete header");
    *sep = 0;
    long long clen;
    GUARD_GOTO(parse_head(buf, out, &clen), out);
    size_t blen = len - (size_t)(sep + 4 - buf);
    if (strcmp(method, "HEAD") == 0) blen = 0;
    else if (clen >= 0) {
        ENSURE_GOTO((unsigned long long)clen <= blen, SMKI_E_INPUT, out, "the answer ends after %zu of %lld octets",
                    blen, clen);
        blen = (size_t)clen;
    }
    out->body = malloc(blen + 1);
    ENSURE_GOTO(out->body, SMKI_E_NOMEM, out, "out of memory");
    memcpy(out->body, sep + 4, blen);
    out->body[blen] = 0;
    out->len = blen;
out:
    free(buf);
    if (l.ssl) {
        if (rc == 0) SSL_shutdown(l.ssl);
        SSL_free(l.ssl);
    }
    if (ctx) SSL_CTX_free(ctx);
    if (l.fd >= 0) close(l.fd);
    if (rc < 0) smki_repo_http_resp_free(out);
    return rc;
}

void smki_repo_http_resp_free(smki_repo_http_resp *r)
{
    if (!r) return;
    free(r->body);
    r->body = NULL;
    r->len = 0;
}
