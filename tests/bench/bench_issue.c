/* Benchmark of device certificate issuance from CSRs, the whole path: CSR bytes in
 * (strict parse, proof of possession: one verify), the certificate built around the
 * CSR's key, signed by the DCA key (software or token), released by the lint gate,
 * and recorded with its indices through group commits (smki_ca_issue_batch, one
 * batch per thread, durable when the run ends). The CSRs are made here: distinct
 * keys and Device IDs, DS and KA alternating, as a manufacturing batch would send.
 *
 *   bench_issue smki  DCA-KEYREF THREADS N [GROUP [background|sync]]
 *        ("soft": a software key made here; GROUP records per commit, default 5000:
 *        1000 certificates of 5 records; commits in a thread of each batch by default
 *        (smki_batch_begin_background), or in the issuing thread)
 *   bench_issue peer  THREADS N                      (in-process OpenSSL, same CSRs)
 *
 * smki prints "issue <threads> <per second> <CPU us per certificate> <fast share>";
 * peer prints "peer <threads> <per second> <CPU us per certificate>": d2i_X509_REQ,
 * X509_REQ_verify, X509 built with X509_set_pubkey and the device extensions,
 * X509_sign, i2d_X509; no lint and no store, so it does less than smki does.
 * A token key's PIN comes from SMKI_PIN. Prints figures; never passes or fails on
 * one. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca.h"
#include "ca/ca_private.h"

#define MAX_THREADS 16
/* Distinct CSRs (keys and Device IDs), one per certificate up to this many, then
 * used in turn: CSRs used again would give the subject-SKI and EUI-64 indices tens
 * of duplicates per key, which no manufacturing batch sends. */
#define CSR_SET_MAX 131072
static unsigned long csr_set = 2048;

static double clock_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const char *what)
{
    fprintf(stderr, "bench_issue: %s: %s\n", what, smki_error_msg());
    return 3;
}

static int write_key(const char *path, EVP_PKEY **keep)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    FILE *f = fopen(path, "w");
    int ok = pk && f && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1;
    if (f) fclose(f);
    if (keep && ok)
        *keep = pk;
    else
        EVP_PKEY_free(pk);
    return ok ? 0 : -1;
}

/* ---- CSRs ------------------------------------------------------------------------- */

typedef struct {
    uint8_t der[512];
    size_t len;
} csr_t;

static int make_csr(unsigned i, csr_t *out)
{
    static const uint8_t SAN_HEAD[] = {0x30, 0x29, 0xa0, 0x27, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05,
                                       0x07, 0x08, 0x04, 0xa0, 0x1b, 0x30, 0x19, 0x06, 0x0d, 0x2a, 0x86,
                                       0x3a, 0x00, 0x01, 0x84, 0x8f, 0xb9, 0x0f, 0x01, 0x02, 0x02, 0x01,
                                       0x04, 0x08};
    uint8_t san[sizeof SAN_HEAD + 8] = {0};
    memcpy(san, SAN_HEAD, sizeof SAN_HEAD);
    unsigned d = i / 2; /* a device's DS and KA requests share its Device ID */
    uint8_t eui[8] = {0x00, 0xdb, 0x12, 0x34, (uint8_t)(d >> 24), (uint8_t)(d >> 16), (uint8_t)(d >> 8), (uint8_t)d};
    memcpy(san + sizeof SAN_HEAD, eui, 8);
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    int ok = key && req && exts && bits && os && X509_REQ_set_version(req, 0) == 1 &&
             X509_REQ_set_pubkey(req, key) == 1 && ASN1_BIT_STRING_set_bit(bits, i % 2 ? 4 : 0, 1) == 1 &&
             ASN1_OCTET_STRING_set(os, san, sizeof san) == 1;
    X509_EXTENSION *ku = ok ? X509V3_EXT_i2d(NID_key_usage, 1, bits) : NULL;
    X509_EXTENSION *sn = ok ? X509_EXTENSION_create_by_NID(NULL, NID_subject_alt_name, 1, os) : NULL;
    ok = ok && ku && sn && sk_X509_EXTENSION_push(exts, ku) && sk_X509_EXTENSION_push(exts, sn);
    if (!ok) {
        X509_EXTENSION_free(ku);
        X509_EXTENSION_free(sn);
    }
    ok = ok && X509_REQ_add_extensions(req, exts) == 1 && X509_REQ_sign(req, key, EVP_sha256()) > 0;
    unsigned char *p = out->der;
    int n = ok ? i2d_X509_REQ(req, NULL) : -1;
    ok = ok && n > 0 && (size_t)n <= sizeof out->der && i2d_X509_REQ(req, &p) == n;
    out->len = ok ? (size_t)n : 0;
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ASN1_BIT_STRING_free(bits);
    ASN1_OCTET_STRING_free(os);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

/* ---- Workers ------------------------------------------------------------------------ */

typedef struct {
    const csr_t *csrs;
    unsigned long from, n;
    smki_ca_issuer *is;
    smki_ca_db *db;
    size_t group;
    int background;
    unsigned long fast;
    int failed;
    /* where the time went (wall, CLOCK_MONOTONIC): the CSR intake; build and queue;
     * the calls that also committed a group */
    double t_parse, t_build, t_commit;
    double cpu; /* CPU seconds of this thread (CLOCK_THREAD_CPUTIME_ID), end included */
    unsigned long n_commit;
    int committed;
    /* peer */
    EVP_PKEY *ca_key;
    X509 *ca_cert;
    pthread_barrier_t *start;
} worker;

static void on_commit(size_t records, void *arg)
{
    (void)records;
    ((worker *)arg)->committed = 1;
}

static void *run_smki(void *arg)
{
    worker *w = arg;
    smki_batch *b = NULL;
    smki_cert *cert = malloc(sizeof *cert);
    if (!cert || (w->background ? smki_batch_begin_background(w->db->store, w->group, on_commit, w, &b)
                                : smki_batch_begin(w->db->store, w->group, on_commit, w, &b)) != 0) {
        w->failed = 1;
        free(cert);
        pthread_barrier_wait(w->start);
        return NULL;
    }
    pthread_barrier_wait(w->start);
    double cpu0 = clock_of(CLOCK_THREAD_CPUTIME_ID);
    for (unsigned long i = 0; i < w->n && !w->failed; i++) {
        const csr_t *in = &w->csrs[(w->from + i) % csr_set];
        smki_csr *c = NULL;
        double t0 = clock_of(CLOCK_MONOTONIC);
        if (smki_csr_parse(in->der, in->len, &c) != 0) {
            w->failed = 1;
            break;
        }
        double t1 = clock_of(CLOCK_MONOTONIC);
        smki_issue_req r = {c, SMKI_PROFILE_DEVICE, -1, NULL, NULL, 0, 0};
        w->committed = 0;
        if (smki_ca_issue_batch(w->is, w->db, b, &r, cert) != 0) w->failed = 1;
        double t2 = clock_of(CLOCK_MONOTONIC);
        w->t_parse += t1 - t0;
        if (w->committed) {
            w->t_commit += t2 - t1;
            w->n_commit++;
        } else {
            w->t_build += t2 - t1;
        }
        w->fast += (unsigned long)smki_ca_last_release_was_fast();
        smki_csr_free(c);
    }
    double t0 = clock_of(CLOCK_MONOTONIC);
    if (w->failed) {
        fprintf(stderr, "bench_issue: %s\n", smki_error_msg());
        smki_batch_abort(b);
    } else if (smki_batch_end(b) != 0) {
        fprintf(stderr, "bench_issue: %s\n", smki_error_msg());
        w->failed = 1;
    }
    w->t_commit += clock_of(CLOCK_MONOTONIC) - t0;
    w->cpu = clock_of(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    free(cert);
    return NULL;
}

/* The peer: what a CA written directly on OpenSSL's X509 API does per certificate. */
static int peer_one(worker *w, const csr_t *in, uint64_t serial_no, const uint8_t aki[SMKI_KEYID_LEN])
{
    const unsigned char *p = in->der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)in->len);
    EVP_PKEY *pub = req ? X509_REQ_get0_pubkey(req) : NULL;
    X509 *x = X509_new();
    int ok = pub && x && X509_REQ_verify(req, pub) == 1 && X509_set_version(x, X509_VERSION_3) == 1;
    uint8_t sn[SMKI_SERIAL_LEN];
    if (ok && RAND_bytes(sn, sizeof sn) == 1) {
        sn[0] = (uint8_t)(0x40 | (sn[0] & 0x3f));
        memcpy(sn + 8, &serial_no, 8);
        ASN1_INTEGER *ai = X509_get_serialNumber(x);
        ok = ASN1_STRING_set(ai, sn, sizeof sn) == 1;
    } else {
        ok = 0;
    }
    ok = ok && X509_set_issuer_name(x, X509_get_subject_name(w->ca_cert)) == 1 &&
         X509_gmtime_adj(X509_getm_notBefore(x), 0) != NULL &&
         ASN1_TIME_set_string(X509_getm_notAfter(x), "99991231235959Z") == 1 && X509_set_pubkey(x, pub) == 1;
    /* keyUsage and subjectAltName as requested, then SKI, policy, AKI */
    STACK_OF(X509_EXTENSION) *exts = ok ? X509_REQ_get_extensions(req) : NULL;
    for (int i = 0; ok && i < sk_X509_EXTENSION_num(exts); i++)
        ok = X509_add_ext(x, sk_X509_EXTENSION_value(exts, i), -1) == 1;
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    uint8_t point[SMKI_POINT_LEN], ski[SMKI_KEYID_LEN];
    size_t plen = 0;
    ok = ok && EVP_PKEY_get_octet_string_param(pub, "encoded-pub-key", point, sizeof point, &plen) == 1 &&
         plen == SMKI_POINT_LEN;
    ok = ok && smki_keyid_method2(point, SMKI_POINT_LEN, ski) == 0;
    ASN1_OCTET_STRING *os = ok ? ASN1_OCTET_STRING_new() : NULL;
    ok = ok && os && ASN1_OCTET_STRING_set(os, ski, sizeof ski) == 1 &&
         X509_add1_ext_i2d(x, NID_subject_key_identifier, os, 0, X509V3_ADD_DEFAULT) == 1;
    ASN1_OCTET_STRING_free(os);
    AUTHORITY_KEYID *ak = ok ? AUTHORITY_KEYID_new() : NULL;
    if (ak) {
        ak->keyid = ASN1_OCTET_STRING_new();
        ok = ak->keyid && ASN1_OCTET_STRING_set(ak->keyid, aki, SMKI_KEYID_LEN) == 1 &&
             X509_add1_ext_i2d(x, NID_authority_key_identifier, ak, 0, X509V3_ADD_DEFAULT) == 1;
        AUTHORITY_KEYID_free(ak);
    }
    ok = ok && X509_sign(x, w->ca_key, EVP_sha256()) > 0;
    unsigned char buf[SMKI_CERT_DER_MAX], *q = buf;
    int n = ok ? i2d_X509(x, NULL) : -1;
    ok = ok && n > 0 && n <= (int)sizeof buf && i2d_X509(x, &q) == n;
    X509_free(x);
    X509_REQ_free(req);
    return ok ? 0 : -1;
}

static void *run_peer(void *arg)
{
    worker *w = arg;
    uint8_t aki[SMKI_KEYID_LEN] = {0x40, 1, 2, 3, 4, 5, 6, 7};
    pthread_barrier_wait(w->start);
    for (unsigned long i = 0; i < w->n && !w->failed; i++)
        if (peer_one(w, &w->csrs[(w->from + i) % csr_set], w->from + i, aki) != 0) w->failed = 1;
    return NULL;
}

/* Runs the workers from one start; wall seconds and CPU seconds of the process. */
static double run_all(worker *w, int threads, void *(*fn)(void *), double *cpu, int *failed)
{
    pthread_t t[MAX_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        w[i].start = &start;
        if (pthread_create(&t[i], NULL, fn, &w[i]) != 0) return -1;
    }
    pthread_barrier_wait(&start);
    double c0 = clock_of(CLOCK_PROCESS_CPUTIME_ID), t0 = clock_of(CLOCK_MONOTONIC);
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        *failed |= w[i].failed;
    }
    double wall = clock_of(CLOCK_MONOTONIC) - t0;
    *cpu = clock_of(CLOCK_PROCESS_CPUTIME_ID) - c0;
    pthread_barrier_destroy(&start);
    return wall;
}

int main(int argc, char **argv)
{
    int peer = argc >= 2 && strcmp(argv[1], "peer") == 0;
    if (!((peer && argc == 4) || (argc >= 5 && argc <= 7 && strcmp(argv[1], "smki") == 0))) {
        fprintf(stderr, "usage: bench_issue smki DCA-KEYREF|soft THREADS N [GROUP [background|sync]]\n"
                        "       bench_issue peer THREADS N\n");
        return 1;
    }
    int threads = atoi(argv[peer ? 2 : 3]);
    unsigned long n = strtoul(argv[peer ? 3 : 4], NULL, 10);
    size_t group = argc >= 6 ? strtoul(argv[5], NULL, 10) : 5000;
    int background = argc < 7 || strcmp(argv[6], "sync") != 0;
    if (threads < 1 || threads > MAX_THREADS || n == 0) return 1;

    char dir[] = "/tmp/smki-bench-issue.XXXXXX";
    if (!mkdtemp(dir)) return die("mkdtemp");
    csr_set = n < CSR_SET_MAX ? n : CSR_SET_MAX;
    csr_t *csrs = malloc(csr_set * sizeof *csrs);
    if (!csrs) return die("memory");
    for (unsigned i = 0; i < csr_set; i++)
        if (make_csr(i, &csrs[i]) != 0) return die("making the CSRs");

    worker w[MAX_THREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < threads; i++) {
        w[i].csrs = csrs;
        w[i].n = n / (unsigned long)threads + ((unsigned long)i < n % (unsigned long)threads);
        w[i].from = i ? w[i - 1].from + w[i - 1].n : 0;
        w[i].group = group;
        w[i].background = background;
    }
    int failed = 0, rc = 0;
    double cpu = 0, wall;
    if (peer) {
        /* A self-signed CA certificate of a software key: the peer's issuer. */
        char path[1100];
        snprintf(path, sizeof path, "%s/ca.pem", dir);
        EVP_PKEY *key = NULL;
        X509 *ca = X509_new();
        if (write_key(path, &key) != 0 || !ca) return die("the peer's CA key");
        X509_NAME_add_entry_by_txt(X509_get_subject_name(ca), "CN", MBSTRING_UTF8, (const unsigned char *)"E357", -1,
                                   -1, 0);
        X509_set_issuer_name(ca, X509_get_subject_name(ca));
        X509_set_pubkey(ca, key);
        if (X509_sign(ca, key, EVP_sha256()) <= 0) return die("the peer's CA certificate");
        for (int i = 0; i < threads; i++) w[i].ca_key = key, w[i].ca_cert = ca;
        wall = run_all(w, threads, run_peer, &cpu, &failed);
        if (!failed)
            printf("peer %d %.0f %.1f\n", threads, (double)n / wall, cpu * 1e6 / (double)n);
        else
            rc = die("the OpenSSL peer");
        X509_free(ca);
        EVP_PKEY_free(key);
    } else {
        static const char *const KINDS[] = {"smki_root", "smki_oca", "smki_dca", "dccki_root", "dccki_ica"};
        char conf_text[4096];
        size_t len = (size_t)snprintf(conf_text, sizeof conf_text, "[ca.test]\n");
        for (int i = 0; i < 5; i++) {
            char path[1100];
            snprintf(path, sizeof path, "%s/%s.pem", dir, KINDS[i]);
            if (i == 2 && strcmp(argv[2], "soft") != 0) {
                len += (size_t)snprintf(conf_text + len, sizeof conf_text - len, "%s_key = %s\n", KINDS[i], argv[2]);
                continue;
            }
            if (write_key(path, NULL) < 0) return die("key generation");
            len += (size_t)snprintf(conf_text + len, sizeof conf_text - len, "%s_key = file:%s\n", KINDS[i], path);
        }
        smki_hsm_opts ho = {.pin = getenv("SMKI_PIN")};
        smki_conf *conf = NULL;
        smki_store *s = NULL;
        smki_ca_db db;
        char store_dir[1100];
        snprintf(store_dir, sizeof store_dir, "%s/store", dir);
        smki_ca_init_opts io = {&ho, dir, 0, NULL, NULL};
        smki_ca_init_report rep;
        smki_ca_issuer *is = NULL;
        if (smki_conf_parse((const uint8_t *)conf_text, len, "bench", &conf) ||
            smki_store_open(store_dir, NULL, &s) || smki_ca_db_open(s, &db) ||
            smki_ca_init(&db, "test", conf, &io, &rep) ||
            smki_ca_issuer_open(&db, "test", SMKI_PROFILE_DEVICE, &ho, &is))
            return die("setting up the hierarchy");
        size_t before = 0, after = 0;
        if (smki_ca_count(&db, &before) < 0) return die("count");
        for (int i = 0; i < threads; i++) w[i].is = is, w[i].db = &db;
        wall = run_all(w, threads, run_smki, &cpu, &failed);
        if (smki_ca_count(&db, &after) < 0) return die("count");
        unsigned long fast = 0;
        for (int i = 0; i < threads; i++) fast += w[i].fast;
        if (failed || after - before != n) {
            fprintf(stderr, "bench_issue: %zu certificates recorded of %lu\n", after - before, n);
            rc = 3;
        } else {
            printf("issue %d %.0f %.1f %.3f\n", threads, (double)n / wall, cpu * 1e6 / (double)n,
                   (double)fast / (double)n);
            /* the split, per certificate, summed over the threads: build+queue from the
             * calls that did not commit; the committing calls less that is the store */
            double tp = 0, tb = 0, tc = 0, cpu_w = 0;
            unsigned long nb = 0;
            for (int i = 0; i < threads; i++)
                tp += w[i].t_parse, tb += w[i].t_build, tc += w[i].t_commit, nb += w[i].n - w[i].n_commit,
                    cpu_w += w[i].cpu;
            double build_each = nb ? tb / (double)nb : 0;
            double commit = tc - build_each * (double)(n - nb);
            fprintf(stderr,
                    "bench_issue: %d thread(s), %lu certificates, groups of %zu records (5 per certificate) "
                    "committed %s: "
                    "per certificate %.1f us CPU; wall in the threads: CSR intake %.1f us, build+sign+lint+queue "
                    "%.1f us, group commits %.1f us; %.1f%% released by the template check\n",
                    threads, n, group, background ? "in the background" : "in the thread", cpu * 1e6 / (double)n, tp * 1e6 / (double)n, build_each * 1e6,
                    commit * 1e6 / (double)n, 100.0 * (double)fast / (double)n);
            /* CPU by thread: the issuing threads, and the rest (the batches' commit
             * threads; the main thread only waits). Per core: the rate over the
             * issuing threads, and what one core would do at this CPU per certificate. */
            fprintf(stderr,
                    "bench_issue: CPU per certificate %.1f us: issuing threads %.1f us, commit threads %.1f us; "
                    "per core %.0f/s as rate/threads, %.0f/s as 1/CPU per certificate\n",
                    cpu * 1e6 / (double)n, cpu_w * 1e6 / (double)n, (cpu - cpu_w) * 1e6 / (double)n,
                    (double)n / wall / threads, (double)n / cpu);
        }
        smki_ca_issuer_free(is);
        smki_store_close(s);
        smki_conf_free(conf);
    }
    free(csrs);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_issue: could not remove %s\n", dir);
    return rc;
}
