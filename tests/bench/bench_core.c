/* Benchmark of the crypto core: signatures or verifications per second through
 * smki_key_sign / smki_verify_digest, for one key reference, over N threads.
 * Prints one line: "<op> <threads> <ops/s> <CPU us per op>" (CPU time of the
 * measuring threads, summed). tools/bench.sh runs it beside
 * `openssl speed ecdsap256` and prints the ratios. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "hsm/hsm.h"

typedef struct {
    smki_key *key;
    int verify;
    double seconds;
    unsigned long done;
    double cpu;
    int failed;
} worker;

static void *run(void *arg)
{
    worker *w = arg;
    uint8_t digest[32], sig[SMKI_SIG_MAX];
    memset(digest, 0x5a, sizeof digest);
    size_t sig_len = sizeof sig;
    if (smki_key_sign_digest(w->key, digest, SMKI_SIG_DER, sig, &sig_len) != 0) {
        w->failed = 1;
        return NULL;
    }
    EVP_PKEY *pub = smki_key_public(w->key);
    double cpu0 = bench_thread_cpu();
    double end = bench_now() + w->seconds;
    unsigned long n = 0;
    while ((n & 63) != 0 || bench_now() < end) {
        int rc;
        if (w->verify) {
            rc = smki_verify_digest(pub, digest, SMKI_SIG_DER, sig, sig_len);
        } else {
            size_t len = sizeof sig;
            digest[0] = (uint8_t)n;
            rc = smki_key_sign_digest(w->key, digest, SMKI_SIG_DER, sig, &len);
            digest[0] = 0x5a;
        }
        if (rc != 0) {
            w->failed = 1;
            fprintf(stderr, "bench_core: %s\n", smki_error_msg());
            break;
        }
        n++;
    }
    w->cpu = bench_thread_cpu() - cpu0;
    w->done = n;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench_core KEYREF sign|verify THREADS SECONDS   (PIN in SMKI_PIN)\n");
        return 1;
    }
    int threads = atoi(argv[3]);
    if (threads < 1 || threads > 64) return 1;
    smki_hsm_opts o = {.pin = getenv("SMKI_PIN")};
    smki_key *key = NULL;
    if (smki_key_open(argv[1], &o, &key) != 0) {
        fprintf(stderr, "bench_core: %s\n", smki_error_msg());
        return 3;
    }
    worker w[64];
    pthread_t t[64];
    double start = bench_now();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){key, strcmp(argv[2], "verify") == 0, atof(argv[4]), 0, 0, 0};
        pthread_create(&t[i], NULL, run, &w[i]);
    }
    unsigned long total = 0;
    double cpu = 0;
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        total += w[i].done;
        cpu += w[i].cpu;
        failed |= w[i].failed;
    }
    double elapsed = bench_now() - start;
    smki_key_free(key);
    if (failed || total == 0) return 3;
    printf("%s %d %.0f %.2f\n", argv[2], threads, (double)total / elapsed, cpu * 1e6 / (double)total);
    return 0;
}
