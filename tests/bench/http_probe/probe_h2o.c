/* Bare h2o 2.2 (libh2o-evloop): one evloop per thread, each its own SO_REUSEPORT
 * listener (argv[3] == "shared": one listening socket shared by the loops). */
#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include "body.h"
static h2o_globalconf_t config;
static int port, shared = 0, sharedfd = -1;
static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    static h2o_generator_t gen = {NULL, NULL};
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    req->res.content_length = sizeof BODY;
    h2o_start_response(req, &gen);
    h2o_iovec_t b = h2o_iovec_init(BODY, sizeof BODY);
    h2o_send(req, &b, 1, H2O_SEND_STATE_FINAL);
    return 0;
}
typedef struct { h2o_context_t ctx; h2o_accept_ctx_t actx; } thr;
static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err) return;
    thr *t = listener->data;
    h2o_socket_t *sock;
    while ((sock = h2o_evloop_socket_accept(listener)) != NULL) h2o_accept(&t->actx, sock);
}
static int mklisten(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (!shared) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (void *)&a, sizeof a) || listen(fd, 4096)) { perror("bind"); exit(1); }
    return fd;
}
static void *run(void *a)
{
    thr *t = a;
    h2o_context_init(&t->ctx, h2o_evloop_create(), &config);
    t->actx.ctx = &t->ctx;
    t->actx.hosts = config.hosts;
    int fd = shared ? dup(sharedfd) : mklisten();
    h2o_socket_t *ls = h2o_evloop_socket_create(t->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    ls->data = t;
    h2o_socket_read_start(ls, on_accept);
    while (h2o_evloop_run(t->ctx.loop, INT32_MAX) == 0) ;
    return NULL;
}
int main(int argc, char **argv)
{
    body_init();
    port = atoi(argv[1]);
    int n = argc > 2 ? atoi(argv[2]) : 2;
    shared = argc > 3 && !strcmp(argv[3], "shared");
    if (shared) sharedfd = mklisten();
    h2o_config_init(&config);
    h2o_hostconf_t *host = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(pc, sizeof *h);
    h->on_req = on_req;
    static thr t[16];
    pthread_t th[16];
    for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, run, &t[i]);
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
}
