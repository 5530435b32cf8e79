/* Private to repo/: the server's TLS certificate and key, reloadable while it serves. */
#ifndef SMKI_REPO_TLS_H
#define SMKI_REPO_TLS_H

#include <openssl/ssl.h>
#include <stdint.h>

#include "base/base.h"

/* A certificate (with the chain after it in the PEM file) and its key, checked to match. */
typedef struct repo_tls_pair repo_tls_pair;
int smki_repo_tls_pair_load(const char *cert_file, const char *key_file, repo_tls_pair **out);
int64_t smki_repo_tls_pair_not_after(const repo_tls_pair *p);
void smki_repo_tls_pair_free(repo_tls_pair *p);

/* The pair new handshakes on ctx get: the SSL_CTX's own until smki_repo_tls_install. */
typedef struct repo_tls repo_tls;
int smki_repo_tls_new(SSL_CTX *ctx, repo_tls **out);
/* From the next handshake on, p (taken over; the previous pair is freed). */
void smki_repo_tls_install(repo_tls *t, repo_tls_pair *p);
void smki_repo_tls_free(repo_tls *t);

#endif
