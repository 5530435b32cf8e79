/* Benchmark of device certificate issuance on one thread with a software CA key,
 * step by step, so that each figure sits beside its parts:
 *   sign       the CA's ECDSA signature alone (smki_key_sign_digest)
 *   csr_parse  the CSR intake (strict parse, key checks, proof of possession: one verify)
 *   lint       the full linter over one issued certificate (smki_lint_der): smki lint,
 *              and the release gate of anything the template check does not prove
 *   release    the release gate of device certificates: the template check
 *              (smki_ca_fast_check, lint_fast.c), which the full linter is held to in tests
 *   build      template + SPKI copy + sign + release gate (smki_ca_build)
 *   store      recording alone: the certificate and its 4 index entries, group commits
 *   issue      csr_parse + build + record in the store (group commits of 1000 certificates)
 * and the bound of the whole: one sign and one verify per certificate. Prints
 * "<step> <per second>" lines; never passes or fails on a figure.
 * Usage: bench_ca [N] (certificates per step, default 20000). */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca.h"
#include "ca/ca_private.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const char *what)
{
    fprintf(stderr, "bench_ca: %s: %s\n", what, smki_error_msg());
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

static void report(const char *step, unsigned long n, double secs)
{
    printf("%-10s %10.0f\n", step, (double)n / secs);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
    const char *shared = getenv("SMKI_SHARED");
    char csr_path[1024], dir[] = "/tmp/smki-bench-ca.XXXXXX";
    snprintf(csr_path, sizeof csr_path, "%s/vectors/gbcs/csr/00db1234567890a0-ds.csr.der",
             shared && *shared ? shared : "../shared");
    if (!mkdtemp(dir)) return die("mkdtemp");

    /* A test hierarchy of software keys. */
    static const char *const KINDS[] = {"smki_root", "smki_oca", "smki_dca", "dccki_root", "dccki_ica"};
    char conf_text[4096], dca_key[1200] = "";
    size_t len = (size_t)snprintf(conf_text, sizeof conf_text, "[ca.test]\n");
    for (int i = 0; i < 5; i++) {
        char path[1100];
        snprintf(path, sizeof path, "%s/%s.pem", dir, KINDS[i]);
        if (write_key(path) < 0) return die("key generation");
        len += (size_t)snprintf(conf_text + len, sizeof conf_text - len, "%s_key = file:%s\n", KINDS[i], path);
        if (i == 2) snprintf(dca_key, sizeof dca_key, "file:%s", path);
    }
    smki_conf *conf = NULL;
    smki_store *s = NULL;
    smki_ca_db db;
    char store_dir[1100];
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);
    smki_ca_init_opts io = {NULL, dir, 0, NULL, NULL};
    smki_ca_init_report rep;
    smki_ca_issuer *is = NULL;
    if (smki_conf_parse((const uint8_t *)conf_text, len, "bench", &conf) || smki_store_open(store_dir, NULL, &s) ||
        smki_ca_db_open(s, &db) || smki_ca_init(&db, "test", conf, &io, &rep) ||
        smki_ca_issuer_open(&db, "test", SMKI_PROFILE_DEVICE, NULL, &is))
        return die("setting up the hierarchy");
    uint8_t *csr_der = NULL;
    size_t csr_len = 0;
    smki_csr *csr = NULL;
    if (smki_file_read(csr_path, SMKI_CSR_MAX, &csr_der, &csr_len) || smki_csr_parse(csr_der, csr_len, &csr))
        return die(csr_path);
    smki_cert *cert = malloc(sizeof *cert);
    smki_lint_report *lint = malloc(sizeof *lint);
    smki_issue_req req = {csr, SMKI_PROFILE_DEVICE, -1, NULL, NULL, 0, 0};
    printf("bench_ca: %lu device certificates per step, 1 thread, software CA key, %s\n", n,
           OpenSSL_version(OPENSSL_VERSION));

    /* The parts. */
    smki_key *key = NULL;
    if (smki_key_open(dca_key, NULL, &key)) return die("the DCA key");
    uint8_t digest[32] = {1}, sig[SMKI_SIG_MAX];
    double t = now();
    for (unsigned long i = 0; i < n; i++) {
        size_t sl = sizeof sig;
        digest[0] = (uint8_t)i;
        if (smki_key_sign_digest(key, digest, SMKI_SIG_DER, sig, &sl)) return die("sign");
    }
    double sign_s = now() - t;
    report("sign", n, sign_s);
    smki_key_free(key);

    t = now();
    for (unsigned long i = 0; i < n; i++) {
        smki_csr *c = NULL;
        if (smki_csr_parse(csr_der, csr_len, &c)) return die("csr_parse");
        smki_csr_free(c);
    }
    double parse_s = now() - t;
    report("csr_parse", n, parse_s);

    if (smki_ca_build(is, &req, cert)) return die("build");
    smki_env env;
    if (smki_ca_env_get(&db, "test", &env)) return die("env");
    t = now();
    for (unsigned long i = 0; i < n; i++)
        if (smki_lint_der(cert->der, cert->der_len, &env, lint) || !smki_lint_is_clean(lint)) return die("lint");
    double lint_s = now() - t;
    report("lint", n, lint_s);

    const ca_fast_ref *ref = smki_ca_issuer_fast_ref(is, csr->usage);
    t = now();
    for (unsigned long i = 0; i < n; i++)
        if (!smki_ca_fast_check(ref, cert->der, cert->der_len, csr->point, csr->hw_serial.b, NULL)) return die("release");
    double release_s = now() - t;
    report("release", n, release_s);

    t = now();
    for (unsigned long i = 0; i < n; i++)
        if (smki_ca_build(is, &req, cert)) return die("build");
    double build_s = now() - t;
    report("build", n, build_s);

    /* Recording alone: the last certificate again under fresh serials. */
    smki_batch *b = NULL;
    if (smki_batch_begin(s, 5000, NULL, NULL, &b)) return die("batch");
    t = now();
    for (unsigned long i = 0; i < n; i++) {
        memcpy(cert->serial, &i, sizeof i);
        cert->serial[15] = 0xee;
        if (smki_ca_cert_queue(b, &db, cert)) return die("store");
    }
    if (smki_batch_end(b)) return die("batch commit");
    double store_s = now() - t;
    report("store", n, store_s);

    /* The whole path of a certificate: CSR bytes in, certificate recorded. */
    if (smki_batch_begin(s, 5000, NULL, NULL, &b)) return die("batch");
    t = now();
    for (unsigned long i = 0; i < n; i++) {
        smki_csr *c = NULL;
        if (smki_csr_parse(csr_der, csr_len, &c)) return die("csr_parse");
        smki_issue_req r = {c, SMKI_PROFILE_UNKNOWN, -1, NULL, NULL, 0, 0};
        if (smki_ca_issue_batch(is, &db, b, &r, cert)) return die("issue");
        smki_csr_free(c);
    }
    if (smki_batch_end(b)) return die("batch commit");
    double issue_s = now() - t;
    report("issue", n, issue_s);
    size_t stored = 0;
    if (smki_ca_count(&db, &stored) < 0) return die("count");

    double bound = 1.0 / (sign_s / (double)n + parse_s / (double)n);
    fprintf(stderr,
            "per certificate: sign %.1f us, csr_parse (one verify) %.1f us, full lint %.1f us, release gate %.2f us, "
            "build %.1f us (of which assembly and serial %.1f us), store %.1f us, issue %.1f us\n"
            "issue (groups of 1000 certificates, 5000 records): %.0f/s = %.2f of the sign+verify bound (%.0f/s); %zu records in "
            "the store\n",
            sign_s * 1e6 / (double)n, parse_s * 1e6 / (double)n, lint_s * 1e6 / (double)n,
            release_s * 1e6 / (double)n, build_s * 1e6 / (double)n, (build_s - sign_s - release_s) * 1e6 / (double)n,
            store_s * 1e6 / (double)n, issue_s * 1e6 / (double)n, (double)n / issue_s,
            ((double)n / issue_s) / bound, bound, stored);

    free(cert);
    free(lint);
    free(csr_der);
    smki_csr_free(csr);
    smki_ca_issuer_free(is);
    smki_store_close(s);
    smki_conf_free(conf);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_ca: could not remove %s\n", dir);
    return 0;
}
