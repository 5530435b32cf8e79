/* The certificates in a file's bytes, already in memory: one DER certificate, or PEM
 * text with any number of blocks. The DER of each block is passed on exactly as it
 * was written, so that the linter judges the encoding the file holds. */
#include "policy.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <limits.h>
#include <string.h>

int smki_cert_each(const uint8_t *data, size_t len, smki_cert_fn fn, void *ctx, size_t *certs, size_t *others)
{
    size_t n_certs = 0, n_others = 0;
    int rc = 0;
    if (certs) *certs = 0;
    if (others) *others = 0;
    ENSURE(data || len == 0, SMKI_E_INTERNAL, "no data");
    if (len > 0 && data[0] == 0x30) { /* DER: a SEQUENCE, where PEM text starts with text */
        rc = fn ? fn(ctx, 0, data, len) : 0;
        if (certs) *certs = 1;
        return rc < 0 ? rc : 0;
    }
    ENSURE(len <= INT_MAX, SMKI_E_INPUT, "%zu octets is too large for PEM", len);
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    ENSURE_SSL(bio, SMKI_E_NOMEM, "out of memory");
    for (;;) {
        char *name = NULL, *header = NULL;
        unsigned char *der = NULL;
        long der_len = 0;
        ERR_clear_error();
        if (PEM_read_bio(bio, &name, &header, &der, &der_len) != 1) {
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                ERR_clear_error(); /* no further block: the normal end */
            } else {
                rc = SMKI_FAIL_SSL(SMKI_E_INPUT, "PEM block %zu does not decode", n_certs + n_others + 1);
            }
            break;
        }
        if (strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0) {
            rc = fn ? fn(ctx, n_certs, der, (size_t)der_len) : 0;
            n_certs++;
        } else {
            n_others++;
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);
        if (rc < 0) break;
    }
    BIO_free(bio);
    if (certs) *certs = n_certs;
    if (others) *others = n_others;
    return rc < 0 ? rc : 0;
}
