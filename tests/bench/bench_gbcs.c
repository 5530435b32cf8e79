/* Benchmark of GBCS verification: the RTDS commands with published keys (45), each
 * parsed and fully verified (signature with the originator's DS certificate, MAC by
 * ECDH + KDF + AES-GCM with the ACB KA key), round after round, over N threads; or
 * (mode "return") every RTDS response and alert but the device-to-device one, verified as
 * a User does (the device's signature, or the MAC with the recipient's KA key). Also
 * parse-only. Prints "<op> <threads> <ops/s> (...)" and, for return, the number of
 * signatures and MACs per round; tools/bench.sh puts it beside `openssl speed ecdsap256`
 * verify (one verify or one ECDH a message is the floor of the work). */
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
static int parse_only, return_path;
static smki_key *rkeys[3];
static smki_gbcs_ka_key bound[3];
static smki_gbcs_verify_opts vopts;
static size_t sigs_per_round, macs_per_round;
static const time_t AT = 1577836800; /* 2020-01-01 */

typedef struct {
    double seconds;
    unsigned long done;
    double cpu; /* this thread's CPU seconds */
    int failed;
} worker;

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    worker *w = arg;
    double end = now() + w->seconds, cpu0 = thread_cpu();
    unsigned long n = 0;
    while ((n % nmsgs) != 0 || now() < end) {
        const msg *m = &msgs[n % nmsgs];
        smki_gbcs_msg pm;
        smki_gbcs_verify_report rep;
        int rc = smki_gbcs_parse(m->b, m->len, &pm);
        if (rc == 0 && !parse_only && !return_path) rc = smki_gbcs_verify_command(&pm, dir, acb, AT, &rep);
        if (rc == 0 && !parse_only && return_path) {
            smki_gbcs_check ck;
            rc = smki_gbcs_verify_message(&pm, dir, &vopts, &ck);
        }
        if (rc != 0) {
            fprintf(stderr, "bench_gbcs: %s\n", smki_error_msg());
            w->failed = 1;
            return NULL;
        }
        n++;
    }
    w->done = n;
    w->cpu = thread_cpu() - cpu0;
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
        if (de->d_name[0] == '.' || (!return_path && strstr(de->d_name, "PCS01"))) continue;
        char sub[2400];
        snprintf(sub, sizeof sub, "%s/%s", rtds, de->d_name);
        DIR *s = opendir(sub);
        if (!s) continue;
        struct dirent *fe;
        while ((fe = readdir(s)) != NULL && nmsgs < 512) {
            if (!return_path && (!strstr(fe->d_name, "_COMMAND_GBCS") || strstr(fe->d_name, "PRECOMMAND")))
                continue;
            if (return_path && !strstr(fe->d_name, ".HEX")) continue;
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

/* The return path: the recipients' KA keys (supplier, ACB, network operator), then keep
 * the responses and alerts (by their CRA flag) that verify with something to check
 * (the device-to-device one checks nothing) and count what a round verifies. */
static int keep_return_messages(const char *keystore)
{
    static const char *names[3] = {"90b3d51f30010000", "90b3d51f30000002", "90b3d51f30020000"};
    for (int i = 0; i < 3; i++) {
        char ref[2200];
        snprintf(ref, sizeof ref, "file:%s/%s-ka.key", keystore, names[i]);
        if (smki_key_open(ref, NULL, &rkeys[i]) != 0 || smki_gbcs_ka_key_bind(dir, rkeys[i], &bound[i]) != 0) {
            fprintf(stderr, "bench_gbcs: %s\n", smki_error_msg());
            return -1;
        }
    }
    vopts = (smki_gbcs_verify_opts){.recipient_keys = bound, .nrecipient_keys = 3, .at = AT};
    size_t k = 0;
    for (size_t i = 0; i < nmsgs; i++) {
        smki_gbcs_msg pm;
        smki_gbcs_check ck;
        int keep = smki_gbcs_parse(msgs[i].b, msgs[i].len, &pm) == 0 && pm.gsa.cra != SMKI_GBCS_CRA_COMMAND &&
                   smki_gbcs_verify_message(&pm, dir, &vopts, &ck) == 0 && (ck.signature_checked || ck.mac_checked);
        smki_error_clear();
        if (!keep) {
            free(msgs[i].b);
            continue;
        }
        sigs_per_round += (size_t)ck.signature_checked;
        macs_per_round += (size_t)ck.mac_checked;
        msgs[k++] = msgs[i];
    }
    nmsgs = k;
    if (nmsgs == 0) {
        fprintf(stderr, "bench_gbcs: no RTDS response or alert verifies\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "verify") != 0 && strcmp(argv[1], "parse") != 0 &&
                      strcmp(argv[1], "return") != 0)) {
        fprintf(stderr, "usage: bench_gbcs verify|return|parse THREADS SECONDS  (SMKI_SHARED: the shared folder)\n");
        return 1;
    }
    parse_only = strcmp(argv[1], "parse") == 0;
    return_path = strcmp(argv[1], "return") == 0;
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
    if (return_path && keep_return_messages(p) != 0) return 3;
    pthread_t t[64];
    worker w[64];
    double start = now();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){.seconds = seconds};
        pthread_create(&t[i], NULL, run, &w[i]);
    }
    unsigned long total = 0;
    int failed = 0;
    double per_cpu = 0; /* summed per-thread rates in CPU time, as openssl speed counts */
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        total += w[i].done;
        failed |= w[i].failed;
        if (w[i].cpu > 0) per_cpu += (double)w[i].done / w[i].cpu;
    }
    double took = now() - start;
    for (size_t i = 0; i < nmsgs; i++) free(msgs[i].b);
    for (int i = 0; i < 3; i++) smki_key_free(rkeys[i]);
    smki_key_free(acb);
    smki_gbcs_certdir_free(dir);
    if (failed) return 3;
    if (return_path)
        printf("return %d %.0f %.0f (%zu RTDS responses and alerts: %zu signatures, %zu MACs a round; wall, CPU)\n",
               threads, (double)total / took, per_cpu, nmsgs, sigs_per_round, macs_per_round);
    else
        printf("%s %d %.0f (%zu RTDS commands)\n", parse_only ? "parse" : "verify", threads, (double)total / took,
               nmsgs);
    return 0;
}
