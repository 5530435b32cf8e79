/* Benchmark of device batches through the RA against bare CA issuance, in the same
 * run, on one thread with software keys, over the same N fresh device CSRs (each its
 * own key and Device ID):
 *   ca          CSR intake + build + smki_ca_issue_batch in group commits of 1000 (bare CA)
 *   ra-execute  smki_ra_request_execute of an approved batch: the CSRs read back from
 *               the store, intake, build, the eligibility checks of every CSR, the
 *               certificates and one operator-signed audit entry per group of 1000,
 *               each group one durable commit
 *   ra-total    submit (intake with the proof of possession verified, eligibility,
 *               demand, the CSRs and their SHA-256 stored, audit) + approve + execute
 *               (the CA's strict intake again, its ECDSA verification skipped for
 *               octets that match the SHA-256 recorded at submission): the whole path of
 *               a batch through the RA, the headline figure (target: ratio >= 0.8)
 * and the ratios ra/ca. The bare CA runs before and after the RA (the store and the map
 * grow in between); the faster of the two is the reference, so the ratios err low.
 * Prints figures only; never passes or fails on one.
 * Usage: bench_ra [N] (CSRs, default 5000). */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ra/ra.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the process (every thread): a figure other jobs on the machine move
 * far less than the wall clock. */
static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const char *what)
{
    fprintf(stderr, "bench_ra: %s: %s\n", what, smki_error_msg());
    return 1;
}

static int write_key(const char *path)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    FILE *f = fopen(path, "w");
    int ok = pk && f && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1;
    if (f) fclose(f);
    EVP_PKEY_free(pk);
    return ok ? 0 : -1;
}

/* A device CSR (CS02c shape) for this Device ID: DER, malloc'd. */
static uint8_t *device_csr(uint64_t id, int ka, size_t *len)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509_REQ *req = X509_REQ_new();
    X509_REQ_set_version(req, 0);
    X509_REQ_set_pubkey(req, key);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    ASN1_BIT_STRING_set_bit(bits, ka ? 4 : 0, 1);
    sk_X509_EXTENSION_push(exts, X509V3_EXT_i2d(NID_key_usage, 1, bits));
    ASN1_BIT_STRING_free(bits);
    uint8_t san[] = {0x30, 0x29, 0xa0, 0x27, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08,
                     0x04, 0xa0, 0x1b, 0x30, 0x19, 0x06, 0x0d, 0x2a, 0x86, 0x3a, 0x00, 0x01, 0x84,
                     0x8f, 0xb9, 0x0f, 0x01, 0x02, 0x02, 0x01, 0x04, 0x08, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++) san[sizeof san - 8 + i] = (uint8_t)(id >> (56 - 8 * i));
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(os, san, sizeof san);
    sk_X509_EXTENSION_push(exts, X509_EXTENSION_create_by_NID(NULL, NID_subject_alt_name, 1, os));
    ASN1_OCTET_STRING_free(os);
    X509_REQ_add_extensions(req, exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_sign(req, key, EVP_sha256());
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    uint8_t *out = n > 0 ? malloc((size_t)n) : NULL;
    if (out) memcpy(out, der, (size_t)n);
    *len = n > 0 ? (size_t)n : 0;
    OPENSSL_free(der);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return out;
}

/* Bare CA issuance of these CSRs: intake, build, queued in group commits of 1000, into
 * a store of its own (the RA's store has operators: the CA's ungated writes are refused
 * there). Seconds, or -1. */
static double bare_ca(smki_store *s, smki_ca_db *db, smki_ca_issuer *is, uint8_t **der, size_t *len, unsigned long n,
                      smki_cert *cert, double *cpu_s)
{
    smki_batch *batch = NULL;
    if (smki_batch_begin(s, 1000, NULL, NULL, &batch)) return -1;
    double t = now(), c0 = cpu();
    for (unsigned long i = 0; i < n; i++) {
        smki_csr *c = NULL;
        if (smki_csr_parse(der[i], len[i], &c)) return -1;
        smki_issue_req r = {c, SMKI_PROFILE_UNKNOWN, -1, NULL, NULL, 0, 0};
        int rc = smki_ca_issue_batch(is, db, batch, &r, cert);
        smki_csr_free(c);
        if (rc) return -1;
    }
    if (smki_batch_end(batch)) return -1;
    *cpu_s = cpu() - c0;
    return now() - t;
}

static smki_key *open_file_key(const char *dir, const char *name)
{
    char path[1200], ref[1300];
    snprintf(path, sizeof path, "%s/%s.pem", dir, name);
    if (write_key(path) < 0) return NULL;
    snprintf(ref, sizeof ref, "file:%s", path);
    smki_key *k = NULL;
    return smki_key_open(ref, NULL, &k) == 0 ? k : NULL;
}

int main(int argc, char **argv)
{
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 5000;
    char dir[] = "/tmp/smki-bench-ra.XXXXXX";
    if (!mkdtemp(dir) || n == 0) return die("setup");

    static const char *const KINDS[] = {"smki_root", "smki_oca", "smki_dca", "dccki_root", "dccki_ica"};
    char conf_text[4096];
    size_t len = (size_t)snprintf(conf_text, sizeof conf_text, "[ca.test]\n");
    for (int i = 0; i < 5; i++) {
        char path[1100];
        snprintf(path, sizeof path, "%s/%s.pem", dir, KINDS[i]);
        if (write_key(path) < 0) return die("key generation");
        len += (size_t)snprintf(conf_text + len, sizeof conf_text - len, "%s_key = file:%s\n", KINDS[i], path);
    }
    smki_conf *conf = NULL;
    smki_store *s = NULL;
    smki_ra *ra = NULL;
    char store_dir[1100];
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);
    smki_ra_policy pol;
    if (smki_ra_policy_load(NULL, &pol) < 0) return die("policy");
    pol.batch_review_size = 100000000;
    pol.demand_baseline = 1000000000;
    pol.rate_per_day = 1000000;
    smki_ca_init_opts io = {NULL, dir, 0, NULL, NULL};
    smki_ca_init_report rep;
    smki_ca_issuer *is = NULL;
    if (smki_conf_parse((const uint8_t *)conf_text, len, "bench", &conf) || smki_store_open(store_dir, NULL, &s) ||
        smki_ra_open(s, &pol, &ra) || smki_ca_init(smki_ra_ca_db(ra), "test", conf, &io, &rep) ||
        smki_ca_issuer_open(smki_ra_ca_db(ra), "test", SMKI_PROFILE_DEVICE, NULL, &is))
        return die("setting up the hierarchy");
    smki_store *bare = NULL;
    smki_ca_db bare_db;
    char bare_dir[1100];
    snprintf(bare_dir, sizeof bare_dir, "%s/bare-store", dir);
    if (smki_store_open(bare_dir, NULL, &bare) || smki_ca_db_open(bare, &bare_db)) return die("the bare CA's store");
    smki_ra_set_checkpoint_key(ra, open_file_key(dir, "checkpoint"));
    smki_key *ak = open_file_key(dir, "alice"), *bk = open_file_key(dir, "bob");
    smki_ra_actor alice = {"alice", ak}, bob = {"bob", bk};
    smki_ra_party p = {.signifier = "MAKER", .is_testing_participant = 1, .agreement_signed = 1};
    smki_ra_subscriber sub = {"MAKER", SMKI_PROFILE_DEVICE, -1, "test"};
    smki_eui64_range_t central;
    if (!ak || !bk || smki_ra_operator_add(ra, &alice, "alice", smki_key_public(ak)) ||
        smki_ra_operator_add(ra, &alice, "bob", smki_key_public(bk)) || smki_ra_party_add(ra, &alice, &p) ||
        smki_eui64_range_parse("90B3D51F3/36", &central) ||
        smki_ra_range_assign(ra, &alice, &central, SMKI_RANGE_CENTRAL, "MAKER") ||
        smki_ra_subscriber_authorise(ra, &alice, &sub))
        return die("the registry");

    printf("bench_ra: %lu device CSRs, 1 thread, software keys, group commits of %u, %s\n", n, pol.batch_group,
           OpenSSL_version(OPENSSL_VERSION));
    fflush(stdout);
    uint8_t **a = calloc(n, sizeof *a), **b = calloc(n, sizeof *b), **c2 = calloc(n, sizeof *c2);
    size_t *al = calloc(n, sizeof *al), *bl = calloc(n, sizeof *bl), *cl = calloc(n, sizeof *cl);
    for (unsigned long i = 0; i < n; i++) {
        a[i] = device_csr(0x00DB120000000000ull + i, (int)(i & 1), &al[i]);
        b[i] = device_csr(0x00DB130000000000ull + i, (int)(i & 1), &bl[i]);
        c2[i] = device_csr(0x00DB140000000000ull + i, (int)(i & 1), &cl[i]);
        if (!a[i] || !b[i] || !c2[i]) return die("CSR generation");
    }
    smki_cert *cert = malloc(sizeof *cert);

    /* Bare CA issuance, before. */
    double ca_cpu = 0, ca2_cpu = 0;
    double ca_s = bare_ca(bare, &bare_db, is, a, al, n, cert, &ca_cpu);
    if (ca_s < 0) return die("bare CA issuance");
    double t;

    /* Through the RA. */
    smki_ra_submit sb = {.type = SMKI_REQ_DEVICE_BATCH, .party = "MAKER", .env = "test",
                         .csrs = (const uint8_t *const *)b, .csr_lens = bl, .n_csrs = n};
    uint64_t id;
    t = now();
    double ra_c0 = cpu();
    if (smki_ra_request_submit(ra, &alice, &sb, &id)) return die("submit");
    double submit_s = now() - t;
    if (smki_ra_request_approve(ra, &bob, id, NULL)) return die("approve");
    double approve_s = now() - t - submit_s;
    double t2 = now();
    smki_ra_exec_opts o = {.hsm = NULL};
    if (smki_ra_request_execute(ra, &bob, id, &o)) return die("execute");
    double exec_s = now() - t2;
    double ra_s = now() - t;
    double ra_cpu = cpu() - ra_c0;

    /* Bare CA issuance, after. */
    double ca2_s = bare_ca(bare, &bare_db, is, c2, cl, n, cert, &ca2_cpu);
    if (ca2_s < 0) return die("bare CA issuance");
    if (ca2_s < ca_s) ca_s = ca2_s;
    if (ca2_cpu < ca_cpu) ca_cpu = ca2_cpu;
    size_t stored = 0;
    uint64_t head = 0;
    if (smki_ca_count(smki_ra_ca_db(ra), &stored) < 0 || smki_audit_head(ra, &head, NULL) < 0) return die("counting");
    double ca_rate = (double)n / ca_s, ex_rate = (double)n / exec_s, ra_rate = (double)n / ra_s;
    printf("ca          %10.0f /s\n", ca_rate);
    printf("ra-total    %10.0f /s  ratio %.3f  (submit + approve + execute: the headline, target >= 0.8)\n", ra_rate,
           ra_rate / ca_rate);
    printf("ra-execute  %10.0f /s  ratio %.3f  (execution alone)\n", ex_rate, ex_rate / ca_rate);
    printf("cpu         bare CA %.1f us, RA whole path %.1f us per certificate: ratio %.3f (CPU time of the process: "
           "what other jobs on the machine move least)\n",
           ca_cpu * 1e6 / (double)n, ra_cpu * 1e6 / (double)n, ca_cpu / ra_cpu);
    fprintf(stderr,
            "per CSR: bare CA %.1f us (the faster run); RA submit %.1f us (approve %.1f ms in all), execute %.1f us; "
            "%zu certificates "
            "stored, %llu audit entries\n",
            ca_s * 1e6 / (double)n, submit_s * 1e6 / (double)n, approve_s * 1e3, exec_s * 1e6 / (double)n, stored,
            (unsigned long long)head);

    for (unsigned long i = 0; i < n; i++) free(a[i]), free(b[i]), free(c2[i]);
    free(a), free(b), free(c2), free(al), free(bl), free(cl), free(cert);
    smki_ca_issuer_free(is);
    smki_ra_close(ra);
    smki_key_free(ak);
    smki_key_free(bk);
    smki_store_close(s);
    smki_store_close(bare);
    smki_conf_free(conf);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_ra: could not remove %s\n", dir);
    return 0;
}
