/* Benchmark of GBCS command verification: the RTDS commands with published keys (45),
 * each parsed and fully verified (signature with the originator's DS certificate, MAC
 * by ECDH + KDF + AES-GCM with the ACB KA key), round after round, over N threads.
 * Also parse-only. Prints "<op> <threads> <ops/s>"; tools/bench.sh puts it beside
 * `openssl speed ecdsap256` verify (one verify + one ECDH is the floor of the work). */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gbcs/gbcs.h"

typedef struct {
    uint8_t *b;
    size_t len;
} msg;

static msg msgs[512];
static size_t nmsgs;
static smki_gbcs_certdir *dir;
static smki_key *acb;
static int parse_only;
static const time_t AT = 1577836800; /* 2020-01-01 */

typedef struct {
    double seconds;
    unsigned long done;
    int failed;
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
    double end = now() + w->seconds;
    unsigned long n = 0;
    while ((n % nmsgs) != 0 || now() < end) {
        const msg *m = &msgs[n % nmsgs];
        smki_gbcs_msg pm;
        smki_gbcs_verify_report rep;
        int rc = smki_gbcs_parse(m->b, m->len, &pm);
        if (rc == 0 && !parse_only) rc = smki_gbcs_verify_command(&pm, dir, acb, AT, &rep);
        if (rc != 0) {
            fprintf(stderr, "bench_gbcs: %s\n", smki_error_msg());
            w->failed = 1;
            return NULL;
        }
        n++;
    }
    w->done = n;
    return NULL;
}

static void load(const char *rtds)
{
    DIR *d = opendir(rtds);
    if (!d) {
        fprintf(stderr, "bench_gbcs: cannot open %s\n", rtds);
        exit(3);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strstr(de->d_name, "PCS01")) continue;
        char sub[2400];
        snprintf(sub, sizeof sub, "%s/%s", rtds, de->d_name);
        DIR *s = opendir(sub);
        if (!s) continue;
        struct dirent *fe;
        while ((fe = readdir(s)) != NULL && nmsgs < 512) {
            if (!strstr(fe->d_name, "_COMMAND_GBCS") || strstr(fe->d_name, "PRECOMMAND")) continue;
            char p[2700];
            snprintf(p, sizeof p, "%s/%s", sub, fe->d_name);
            if (smki_gbcs_read_file(p, &msgs[nmsgs].b, &msgs[nmsgs].len) != 0) {
                fprintf(stderr, "bench_gbcs: %s\n", smki_error_msg());
                exit(3);
            }
            nmsgs++;
        }
        closedir(s);
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "verify") != 0 && strcmp(argv[1], "parse") != 0)) {
        fprintf(stderr, "usage: bench_gbcs verify|parse THREADS SECONDS  (SMKI_SHARED: the shared folder)\n");
        return 1;
    }
    parse_only = strcmp(argv[1], "parse") == 0;
    int threads = atoi(argv[2]);
    double seconds = atof(argv[3]);
    if (threads < 1 || threads > 64 || seconds <= 0) return 1;
    const char *shared = getenv("SMKI_SHARED");
    if (!shared || !*shared) shared = "../shared";
    char p[2048];
    snprintf(p, sizeof p, "%s/vectors/gbcs/rtds", shared);
    load(p);
    snprintf(p, sizeof p, "%s/vectors/gbcs/keystore", shared);
    if (smki_gbcs_certdir_open(p, &dir) != 0) {
        fprintf(stderr, "bench_gbcs: %s\n", smki_error_msg());
        return 3;
    }
    char ref[2100];
    snprintf(ref, sizeof ref, "file:%s/90b3d51f30000002-ka.key", p);
    if (smki_key_open(ref, NULL, &acb) != 0) {
        fprintf(stderr, "bench_gbcs: %s\n", smki_error_msg());
        return 3;
    }
    pthread_t t[64];
    worker w[64];
    double start = now();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){seconds, 0, 0};
        pthread_create(&t[i], NULL, run, &w[i]);
    }
    unsigned long total = 0;
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        total += w[i].done;
        failed |= w[i].failed;
    }
    double took = now() - start;
    for (size_t i = 0; i < nmsgs; i++) free(msgs[i].b);
    smki_key_free(acb);
    smki_gbcs_certdir_free(dir);
    if (failed) return 3;
    printf("%s %d %.0f (%zu RTDS commands)\n", parse_only ? "parse" : "verify", threads, (double)total / took, nmsgs);
    return 0;
}
