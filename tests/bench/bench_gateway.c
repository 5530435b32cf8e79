/* Benchmark of the gateway's checks (smki_gateway_check): N signed RTDS pre-commands per
 * thread, checked in batches of B (one store commit each), on T threads, with the ACB's
 * MAC for those that pass. Each thread is its own originator (the supplier, the network
 * operator: counters are per originator). Prints one line "gateway_check <threads> <per
 * second>"; stderr also gives the time of the signature verification alone (the same
 * messages, the key decoded), i.e. the floor. Signing the messages is not timed.
 * Usage: bench_gateway N THREADS [BATCH]   ($SMKI_SHARED holds vectors/) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/sha.h>

#include "gateway/gateway.h"

#define T2020 1577836800

typedef struct {
    smki_gateway *g;
    uint8_t **msgs;
    size_t *lens;
    size_t n, batch;
    unsigned long passed;
    int failed;
    EVP_PKEY *pub;
} worker;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run_check(void *arg)
{
    worker *w = arg;
    smki_gw_result *res = calloc(w->batch, sizeof *res);
    for (size_t i = 0; i < w->n && !w->failed; i += w->batch) {
        size_t k = w->n - i < w->batch ? w->n - i : w->batch;
        if (smki_gateway_check(w->g, (const uint8_t *const *)(w->msgs + i), w->lens + i, k, T2020, res) != 0) {
            fprintf(stderr, "bench_gateway: %s\n", smki_error_msg());
            w->failed = 1;
            break;
        }
        for (size_t j = 0; j < k; j++) {
            if (res[j].verdict == SMKI_GW_PASS && res[j].command) w->passed++;
            else if (!w->failed) {
                fprintf(stderr, "bench_gateway: message %zu: %s %s\n", i + j, res[j].reason, res[j].detail);
                w->failed = 1;
            }
            smki_gw_result_clear(&res[j]);
        }
    }
    free(res);
    return NULL;
}

/* The floor: what openssl speed times (one verification of a digest with a context made
 * once), plus the SHA-256 of the signed octets, over the same messages. */
static void *run_verify(void *arg)
{
    worker *w = arg;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, w->pub, NULL);
    if (!ctx || EVP_PKEY_verify_init(ctx) != 1) w->failed = 1;
    for (size_t i = 0; i < w->n && !w->failed; i++) {
        const uint8_t *m = w->msgs[i];
        size_t len = w->lens[i];
        uint8_t digest[32], der[SMKI_SIG_MAX];
        size_t der_len = sizeof der;
        /* The signed octets: after DF up to the signature field (40 r s, the last 65). */
        SHA256(m + 1, len - 1 - 65, digest);
        if (smki_sig_raw_to_der(m + len - 64, der, &der_len) != 0 ||
            EVP_PKEY_verify(ctx, der, der_len, digest, 32) != 1) {
            w->failed = 1;
            break;
        }
    }
    EVP_PKEY_CTX_free(ctx);
    return NULL;
}

static int die(const char *what)
{
    fprintf(stderr, "bench_gateway: %s: %s\n", what, smki_error_msg());
    return 3;
}

/* The RA on the bench's store: operator "bench" (a P-256 key made here), the Party RTDS
 * with the RTDS block, and the supplier (EIS) and network operator (ENO) as its Users. */
static int bench_ra(const char *dir, smki_store *s, smki_ra **ra, smki_key **op_key)
{
    char path[600], ref[620];
    snprintf(path, sizeof path, "%s/operator.pem", dir);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    FILE *fp = fopen(path, "w");
    int ok = k && fp && PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL) == 1;
    if (fp) fclose(fp);
    EVP_PKEY_free(k);
    if (!ok) return -1;
    snprintf(ref, sizeof ref, "file:%s", path);
    smki_ra_policy pol;
    GUARD(smki_key_open(ref, NULL, op_key));
    GUARD(smki_ra_policy_load(NULL, &pol));
    GUARD(smki_ra_open(s, &pol, ra));
    smki_ra_actor by = {"bench", *op_key};
    GUARD(smki_ra_operator_add(*ra, &by, "bench", smki_key_public(*op_key)));
    smki_ra_party p = {.signifier = "RTDS", .name = "RTDS parties"};
    GUARD(smki_ra_party_add(*ra, &by, &p));
    smki_eui64_range_t r;
    GUARD(smki_eui64_range_parse("90B3D51F3/36", &r));
    GUARD(smki_ra_range_assign(*ra, &by, &r, SMKI_RANGE_CENTRAL, "RTDS"));
    smki_eui64_t sup, no, got;
    GUARD(smki_eui64_parse("90B3D51F30010000", &sup));
    GUARD(smki_eui64_parse("90B3D51F30020000", &no));
    GUARD(smki_ra_id_allocate(*ra, &by, "RTDS", SMKI_UROLE_EIS, &sup, &got));
    return smki_ra_id_allocate(*ra, &by, "RTDS", SMKI_UROLE_ENO, &no, &got);
}

/* The Z1 OCA certificate from the RTDS CS02b command's certification path. */
static int write_z1(const char *shared, const char *out)
{
    char path[2048];
    snprintf(path, sizeof path,
             "%s/vectors/gbcs/rtds/6.15.1_CS02bSupplierBySupplier/"
             "CS02bSupplierBySupplier_6.15.1_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX",
             shared);
    uint8_t *b = NULL;
    size_t len = 0;
    if (smki_gbcs_read_file(path, &b, &len) != 0) return -1;
    int rc = -1;
    for (size_t i = 0; i + 4 < len && rc != 0; i++) {
        if (b[i] != 0x30 || b[i + 1] != 0x82) continue;
        size_t l = (size_t)b[i + 2] << 8 | b[i + 3];
        if (i + 4 + l > len) continue;
        const uint8_t *p = b + i;
        X509 *x = d2i_X509(NULL, &p, (long)(4 + l));
        if (!x) continue;
        char subj[256];
        X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof subj);
        if (strstr(subj, "CN=Z1")) rc = smki_file_write_atomic(out, b + i, 4 + l, 0644, 0);
        X509_free(x);
    }
    free(b);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_gateway N THREADS [BATCH]\n");
        return 1;
    }
    size_t n = strtoul(argv[1], NULL, 10), batch = argc > 3 ? strtoul(argv[3], NULL, 10) : 512;
    int threads = atoi(argv[2]);
    if (threads < 1 || threads > 2 || n == 0 || batch == 0) {
        fprintf(stderr, "bench_gateway: 1 or 2 threads (one originator each), N and BATCH above 0\n");
        return 1;
    }
    const char *shared = getenv("SMKI_SHARED") ? getenv("SMKI_SHARED") : "../shared";
    char dir[] = "/tmp/bench_gateway.XXXXXX";
    if (!mkdtemp(dir)) return 3;
    char path[4096], sd[512], z1[512];
    snprintf(sd, sizeof sd, "%s/store", dir);
    snprintf(z1, sizeof z1, "%s/z1.der", dir);
    if (write_z1(shared, z1) != 0) return die("Z1 certificate");
    smki_store *s = NULL;
    smki_store_opts so = {256u << 20, 0, 0};
    if (smki_store_open(sd, &so, &s) != 0 || smki_gw_dbs(s) != 0) return die("store");

    /* The RA whose registry holds the two Users, and its operator (every gateway
     * administration action is an audited RA action). */
    smki_ra *ra = NULL;
    smki_key *op_key = NULL;
    if (bench_ra(dir, s, &ra, &op_key) != 0) return die("RA");
    smki_ra_actor op = {"bench", op_key};
    smki_gw_admin adm = {ra, &op};
    static const char *const ids[2] = {"90B3D51F30010000", "90B3D51F30020000"};
    static const uint8_t roles[2] = {SMKI_ROLE_SUPPLIER, SMKI_ROLE_NETWORK_OPERATOR};
    static const char *const pres[2] = {
        "1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX",
        "6.15.1_CS02bNOByNO/CS02bNOByNO_6.15.1_SUCCESS_PRECOMMAND_GBCS.HEX",
    };
    worker w[2];
    memset(w, 0, sizeof w);
    smki_eui64_t meter;
    if (smki_eui64_parse("00DB1234567890A0", &meter) < 0) return die("meter");
    uint8_t *data = NULL;
    size_t dlen = 0;
    snprintf(path, sizeof path, "%s/vectors/gbcs/keystore/00db1234567890a0-ka.pem", shared);
    if (smki_file_read(path, 1 << 16, &data, &dlen) != 0 ||
        smki_gw_device_add(&adm, &meter, SMKI_DEV_COMMISSIONED, data, dlen) != 0)
        return die("device");
    free(data);
    smki_key *acb = NULL;
    snprintf(path, sizeof path, "file:%s/vectors/gbcs/keystore/90b3d51f30000002-ka.key", shared);
    if (smki_key_open(path, NULL, &acb) != 0) return die("ACB key");
    smki_gateway_opts go = {.oca_file = z1, .no_crl = 1, .acb_ka = acb, .ra = ra};
    smki_gateway *g = NULL;
    if (smki_gateway_open(s, &go, &g) != 0) return die("gateway");

    for (int t = 0; t < threads; t++) {
        smki_eui64_t id;
        if (smki_eui64_parse(ids[t], &id) < 0) return die("user ID");
        char lower[17];
        for (int i = 0; i < 16; i++) lower[i] = (char)(ids[t][i] >= 'A' ? ids[t][i] + 32 : ids[t][i]);
        lower[16] = '\0';
        snprintf(path, sizeof path, "%s/vectors/gbcs/keystore/%s-ds.pem", shared, lower);
        if (smki_file_read(path, 1 << 16, &data, &dlen) != 0 || smki_gw_user_add(&adm, &id, roles[t], data, dlen) != 0)
            return die("user");
        free(data);
        if (smki_pub_load_file(path, &w[t].pub) != 0) return die("public key");
        snprintf(path, sizeof path, "file:%s/vectors/gbcs/keystore/%s-ds.key", shared, lower);
        smki_key *k = NULL;
        if (smki_key_open(path, NULL, &k) != 0) return die("signing key");
        snprintf(path, sizeof path, "%s/vectors/gbcs/rtds/%s", shared, pres[t]);
        uint8_t *pre = NULL;
        size_t plen = 0;
        if (smki_gbcs_read_file(path, &pre, &plen) != 0) return die("pre-command");
        w[t].g = g;
        w[t].n = n;
        w[t].batch = batch;
        w[t].msgs = calloc(n, sizeof *w[t].msgs);
        w[t].lens = calloc(n, sizeof *w[t].lens);
        for (size_t i = 0; i < n; i++) {
            uint64_t ctr = i + 1;
            for (int j = 0; j < 8; j++) pre[3 + j] = (uint8_t)(ctr >> (56 - 8 * j));
            if (smki_gbcs_sign(k, pre, plen, &w[t].msgs[i], &w[t].lens[i]) != 0) return die("signing");
        }
        free(pre);
        smki_key_free(k);
    }

    pthread_t th[2];
    double t0 = now(), c0 = cpu();
    for (int t = 0; t < threads; t++) pthread_create(&th[t], NULL, run_check, &w[t]);
    for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
    double check_s = now() - t0, check_cpu = cpu() - c0;
    t0 = now();
    for (int t = 0; t < threads; t++) pthread_create(&th[t], NULL, run_verify, &w[t]);
    for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
    double verify_s = now() - t0;
    unsigned long passed = 0;
    int failed = 0;
    for (int t = 0; t < threads; t++) passed += w[t].passed, failed |= w[t].failed;
    if (failed || passed != n * (size_t)threads) {
        fprintf(stderr, "bench_gateway: %lu of %zu passed\n", passed, n * (size_t)threads);
        return 3;
    }
    double total = (double)n * threads;
    /* Per second of wall clock; and per CPU second times the threads, which is how
     * openssl speed counts (it divides by CPU user time unless given -elapsed). */
    printf("gateway_check %d %.0f %.0f\n", threads, total / check_s, total * threads / check_cpu);
    fprintf(stderr,
            "gateway_check: %.0f messages over %d thread(s), batches of %zu: %.0f/s; parse + signature verify alone "
            "on the same messages: %.0f/s (ratio %.3f)\n",
            total, threads, batch, total / check_s, total / verify_s, verify_s / check_s);

    for (int t = 0; t < threads; t++) {
        for (size_t i = 0; i < n; i++) free(w[t].msgs[i]);
        free(w[t].msgs);
        free(w[t].lens);
        EVP_PKEY_free(w[t].pub);
    }
    smki_gateway_free(g);
    smki_key_free(acb);
    smki_ra_close(ra);
    smki_key_free(op_key);
    smki_store_close(s);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 3;
    return 0;
}
