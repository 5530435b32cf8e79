/* Bare evhttp: one loop per thread on a shared listening socket, a fixed answer. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
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
static void on_req(struct evhttp_request *req, void *arg)
{
    (void)arg;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add_reference(evhttp_request_get_output_buffer(req), BODY, sizeof BODY, NULL, NULL);
    evhttp_send_reply(req, 200, "OK", NULL);
}
static int lfd;
static void *run(void *a)
{
    (void)a;
    struct event_base *b = event_base_new();
    struct evhttp *h = evhttp_new(b);
    evhttp_set_gencb(h, on_req, NULL);
    evhttp_accept_socket(h, dup(lfd));
    event_base_dispatch(b);
    return NULL;
}
int main(int argc, char **argv)
{
    body_init();
    int port = atoi(argv[1]), n = argc > 2 ? atoi(argv[2]) : 2;
    evthread_use_pthreads();
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (void *)&a, sizeof a) || listen(lfd, 4096)) return perror("bind"), 1;
    pthread_t t[16];
    for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, run, NULL);
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
}
