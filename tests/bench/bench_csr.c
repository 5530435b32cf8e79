/* Benchmark of the CSR intake: smki_csr_parse (strict parse, key checks, proof of
 * possession) over one CSR, N times in total over T threads. Prints one line:
 * "csr_parse <threads> <per second>". One ECDSA verification is the floor, so the
 * same threads then verify the CSR's signature alone (smki_verify_digest, key
 * already decoded) and stderr shows the ratio: how close the intake is to it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca.h"

typedef struct {
    const uint8_t *csr;
    size_t len;
    unsigned long n;
    int failed;
    /* verification alone */
    EVP_PKEY *key;
    const uint8_t *digest;
    const uint8_t *sig;
    size_t sig_len;
} worker;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    worker *w = arg;
    for (unsigned long i = 0; i < w->n; i++) {
        smki_csr *c = NULL;
        if (smki_csr_parse(w->csr, w->len, &c) != 0) {
            fprintf(stderr, "bench_csr: %s\n", smki_error_msg());
            w->failed = 1;
            return NULL;
        }
        smki_csr_free(c);
    }
    return NULL;
}

static void *run_verify(void *arg)
{
    worker *w = arg;
    for (unsigned long i = 0; i < w->n; i++) {
        if (smki_verify_digest(w->key, w->digest, SMKI_SIG_DER, w->sig, w->sig_len) != 0) {
            fprintf(stderr, "bench_csr: %s\n", smki_error_msg());
            w->failed = 1;
            return NULL;
        }
    }
    return NULL;
}

/* The signed part and the signature of a CSR, found with the cursor. */
static int split(const uint8_t *der, size_t len, const uint8_t **tbs, size_t *tbs_len, const uint8_t **sig,
                 size_t *sig_len)
{
    smki_cursor_t c = smki_cursor(der, len);
    uint8_t tag, unused;
    size_t n;
    GUARD(smki_cur_u8(&c, &tag));
    GUARD(smki_cur_ber_len(&c, &n));
    smki_cursor_t info = c;
    GUARD(smki_cur_u8(&c, &tag));
    GUARD(smki_cur_ber_len(&c, &n));
    GUARD(smki_cur_skip(&c, n));
    *tbs_len = info.left - c.left;
    GUARD(smki_cur_take(&info, *tbs_len, tbs));
    GUARD(smki_cur_u8(&c, &tag));
    GUARD(smki_cur_ber_len(&c, &n));
    GUARD(smki_cur_skip(&c, n));
    GUARD(smki_cur_u8(&c, &tag));
    GUARD(smki_cur_ber_len(&c, &n));
    GUARD(smki_cur_u8(&c, &unused));
    *sig_len = n - 1;
    return smki_cur_take(&c, *sig_len, sig);
}

static double run_all(worker *w, int threads, void *(*fn)(void *), int *failed)
{
    pthread_t t[64];
    double start = now();
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, fn, &w[i]) != 0) *failed = 1;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        *failed |= w[i].failed;
    }
    return now() - start;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4 || (argc == 3 && !getenv("SMKI_SHARED"))) {
        fprintf(stderr, "usage: bench_csr N THREADS [CSR-FILE]   (default: the real device CSR under $SMKI_SHARED)\n");
        return 1;
    }
    char path[1024];
    if (argc == 3)
        snprintf(path, sizeof path, "%s/vectors/gbcs/csr/00db1234567890a0-ds.csr.der", getenv("SMKI_SHARED"));
    unsigned long total = strtoul(argv[1], NULL, 10);
    int threads = atoi(argv[2]);
    if (total == 0 || threads < 1 || threads > 64) return 1;
    uint8_t *csr = NULL;
    size_t len = 0;
    if (smki_file_read(argc == 4 ? argv[3] : path, SMKI_CSR_MAX, &csr, &len) != 0) {
        fprintf(stderr, "bench_csr: %s\n", smki_error_msg());
        return 3;
    }
    /* one untimed parse: the one-time set-up (P-256 parameters, SHA-256 fetch) */
    smki_csr *warm = NULL;
    if (smki_csr_parse(csr, len, &warm) != 0) {
        fprintf(stderr, "bench_csr: %s\n", smki_error_msg());
        return 3;
    }
    const uint8_t *tbs, *sig;
    size_t tbs_len, sig_len;
    uint8_t digest[32];
    if (split(warm->der, warm->der_len, &tbs, &tbs_len, &sig, &sig_len) != 0 ||
        EVP_Digest(tbs, tbs_len, digest, NULL, EVP_sha256(), NULL) != 1) {
        fprintf(stderr, "bench_csr: cannot find the CSR's signature\n");
        return 3;
    }

    worker w[64];
    for (int i = 0; i < threads; i++)
        w[i] = (worker){csr, len, total / (unsigned long)threads + ((unsigned long)i < total % (unsigned long)threads),
                        0, warm->key, digest, sig, sig_len};
    int failed = 0;
    double parse_s = run_all(w, threads, run, &failed);
    double verify_s = failed ? 0 : run_all(w, threads, run_verify, &failed);
    smki_csr_free(warm);
    free(csr);
    if (failed) return 3;
    double parse_rate = (double)total / parse_s, verify_rate = (double)total / verify_s;
    printf("csr_parse %d %.0f\n", threads, parse_rate);
    fprintf(stderr, "csr_parse: %lu CSRs over %d thread(s): %.0f/s (%.0f per thread); the signature check alone: "
                    "%.0f/s; intake at %.0f%% of the verification bound\n",
            total, threads, parse_rate, parse_rate / threads, verify_rate, 100.0 * parse_rate / verify_rate);
    return 0;
}
