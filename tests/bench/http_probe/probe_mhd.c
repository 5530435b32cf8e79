/* Bare libmicrohttpd: epoll, internal thread pool of N, turbo. */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "body.h"
static struct MHD_Response *resp;
static enum MHD_Result on_req(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *ver, const char *data, size_t *len, void **ptr)
{
    (void)cls, (void)url, (void)method, (void)ver, (void)data, (void)len, (void)ptr;
    return MHD_queue_response(c, 200, resp);
}
int main(int argc, char **argv)
{
    body_init();
    int port = atoi(argv[1]), n = argc > 2 ? atoi(argv[2]) : 2;
    resp = MHD_create_response_from_buffer(sizeof BODY, BODY, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO, port, NULL,
                                            NULL, on_req, NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)n,
                                            MHD_OPTION_CONNECTION_LIMIT, 8192u, MHD_OPTION_END);
    if (!d) return 1;
    pause();
}
