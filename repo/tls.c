/* repo/tls: the server's certificate and key, replaceable while it runs (SIGHUP). The
 * SSL_CTX keeps the pair it started with; after a reload a certificate callback hands
 * each new handshake the current pair (certificate, chain, key), read under a lock, so
 * established connections keep theirs and the loops never see the SSL_CTX change. */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct repo_tls_pair {
    X509 *cert;
    STACK_OF(X509) *chain;
    EVP_PKEY *key;
    int64_t not_after;
};

struct repo_tls {
    pthread_rwlock_t lock;
    repo_tls_pair *current; /* NULL until the first reload: the SSL_CTX's own pair serves */
};

void smki_repo_tls_pair_free(repo_tls_pair *p)
{
    if (!p) return;
    X509_free(p->cert);
    sk_X509_pop_free(p->chain, X509_free);
    EVP_PKEY_free(p->key);
    free(p);
}

static int64_t cert_not_after(X509 *x)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) return 0;
    return (int64_t)timegm(&tm);
}

int smki_repo_tls_pair_load(const char *cert_file, const char *key_file, repo_tls_pair **out)
{
    int rc = 0;
    *out = NULL;
    repo_tls_pair *p = calloc(1, sizeof *p);
    ENSURE(p, SMKI_E_NOMEM, "out of memory");
    BIO *b = BIO_new_file(cert_file, "r");
    ENSURE_SSL_GOTO(b, SMKI_E_INPUT, fail, "the TLS certificate chain '%s'", cert_file);
    p->cert = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL);
    p->chain = sk_X509_new_null();
    X509 *x;
    while (p->chain && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(p->chain, x)) X509_free(x);
    ERR_clear_error(); /* the end of the file */
    BIO_free(b);
    ENSURE_GOTO(p->cert && p->chain, SMKI_E_INPUT, fail, "the TLS certificate chain '%s' holds no PEM certificate",
                cert_file);
    b = BIO_new_file(key_file, "r");
    ENSURE_SSL_GOTO(b, SMKI_E_INPUT, fail, "the TLS key '%s'", key_file);
    p->key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    ENSURE_SSL_GOTO(p->key, SMKI_E_INPUT, fail, "the TLS key '%s'", key_file);
    ENSURE_SSL_GOTO(X509_check_private_key(p->cert, p->key) == 1, SMKI_E_INPUT, fail,
                    "the TLS key '%s' is not the certificate's ('%s')", key_file, cert_file);
    p->not_after = cert_not_after(p->cert);
    *out = p;
    return 0;
fail:
    smki_repo_tls_pair_free(p);
    return rc;
}

int64_t smki_repo_tls_pair_not_after(const repo_tls_pair *p) { return p ? p->not_after : 0; }

/* Each handshake: the current pair, if one was loaded since the start. */
static int on_cert(SSL *ssl, void *arg)
{
    repo_tls *t = arg;
    int ok = 1;
    pthread_rwlock_rdlock(&t->lock);
    repo_tls_pair *p = t->current;
    if (p)
        ok = SSL_use_certificate(ssl, p->cert) == 1 && SSL_use_PrivateKey(ssl, p->key) == 1 &&
             SSL_set1_chain(ssl, p->chain) == 1;
    pthread_rwlock_unlock(&t->lock);
    return ok;
}

int smki_repo_tls_new(SSL_CTX *ctx, repo_tls **out)
{
    repo_tls *t = calloc(1, sizeof *t);
    ENSURE(t, SMKI_E_NOMEM, "out of memory");
    pthread_rwlock_init(&t->lock, NULL);
    SSL_CTX_set_cert_cb(ctx, on_cert, t);
    *out = t;
    return 0;
}

void smki_repo_tls_install(repo_tls *t, repo_tls_pair *p)
{
    pthread_rwlock_wrlock(&t->lock);
    repo_tls_pair *old = t->current;
    t->current = p;
    pthread_rwlock_unlock(&t->lock);
    /* Handshakes that took the old pair hold their own references to it. */
    smki_repo_tls_pair_free(old);
}

void smki_repo_tls_free(repo_tls *t)
{
    if (!t) return;
    smki_repo_tls_pair_free(t->current);
    pthread_rwlock_destroy(&t->lock);
    free(t);
}
