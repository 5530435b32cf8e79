/* Fills a store with N device certificate records for the repository benchmark
 * (tools/bench_repo.sh): N/2 devices (EUI-64s 00-DB-00-..., counting up), each with a
 * DS and a KA certificate, in environment ENV, written through smki_ca_cert_queue in
 * group commits. The DER of each is a real device certificate (TEMPLATE, PEM or DER)
 * with its serial's last octets and its hardwareModuleName's EUI-64 patched in place:
 * the real size and structure, but the signature no longer verifies, which the
 * repository never checks. Writes every STEP-th EUI-64 to SAMPLE_OUT for the load. */
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca.h"

static void die(const char *what)
{
    fprintf(stderr, "bench_repo_load: %s: %s\n", what, smki_error_msg());
    exit(1);
}

static uint8_t *find(uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0) return hay + i;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_repo_load STORE ENV N TEMPLATE SAMPLE_OUT SAMPLES\n");
        return 1;
    }
    const char *dir = argv[1], *env = argv[2];
    size_t n = strtoull(argv[3], NULL, 10), samples = strtoull(argv[6], NULL, 10);
    FILE *tf = fopen(argv[4], "rb");
    if (!tf) return perror(argv[4]), 1;
    X509 *x = PEM_read_X509(tf, NULL, NULL, NULL);
    if (!x) {
        rewind(tf);
        x = d2i_X509_fp(tf, NULL);
    }
    fclose(tf);
    if (!x) return fprintf(stderr, "bench_repo_load: %s is not a certificate\n", argv[4]), 1;
    uint8_t *der = NULL;
    int dl = i2d_X509(x, &der);
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
    uint8_t *ser = find(der, (size_t)dl, ASN1_STRING_get0_data(sn), (size_t)ASN1_STRING_length(sn));
    static const uint8_t TEMPLATE_EUI[8] = {0x00, 0xdb, 0x12, 0x34, 0x56, 0x78, 0x90, 0xa0};
    uint8_t *euip = find(der, (size_t)dl, TEMPLATE_EUI, 8);
    if (!ser || ASN1_STRING_length(sn) < 4 || !euip || dl > SMKI_CERT_DER_MAX)
        return fprintf(stderr, "bench_repo_load: the template needs a serial and the EUI 00DB1234567890A0\n"), 1;
    size_t ser_len = (size_t)ASN1_STRING_length(sn);

    smki_store *s = NULL;
    smki_ca_db db;
    smki_store_opts so = {1u << 30, 0, 0};
    if (smki_store_open(dir, &so, &s) < 0) die("opening the store");
    if (smki_ca_db_open(s, &db) < 0) die("the CA databases");
    smki_batch *b = NULL;
    if (smki_batch_begin(s, 10000, NULL, NULL, &b) < 0) die("a batch");
    FILE *sf = fopen(argv[5], "w");
    if (!sf) return perror(argv[5]), 1;
    size_t step = samples && n / 2 > samples ? n / 2 / samples : 1;
    uint8_t prefix[8];
    RAND_bytes(prefix, sizeof prefix);
    prefix[0] = (prefix[0] & 0x3f) | 0x40;
    static smki_cert c;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < n; i++) {
        memset(&c, 0, offsetof(smki_cert, der));
        uint64_t dev = 0x00db000000000000ull + i / 2;
        c.eui = smki_eui64_from_u64(dev);
        c.has_eui = 1;
        memset(c.issuer_ski, 0xd5, SMKI_KEYID_LEN);
        memcpy(c.serial, prefix, 8);
        for (int k = 0; k < 8; k++) c.serial[8 + k] = (uint8_t)(i >> (56 - 8 * k));
        memcpy(c.ski, c.serial + 8, SMKI_KEYID_LEN);
        c.profile = SMKI_PROFILE_DEVICE;
        c.usage = (i & 1) ? SMKI_USAGE_KA : SMKI_USAGE_DS;
        c.role = -1;
        c.status = SMKI_STATUS_IN_USE;
        snprintf(c.env, sizeof c.env, "%s", env);
        c.not_before = 1767225600;
        c.not_after = -1; /* as the CA records a device certificate: no expiry */
        for (size_t k = 0; k < 4; k++) ser[ser_len - 4 + k] = (uint8_t)(i >> (24 - 8 * k));
        memcpy(euip, c.eui.b, 8);
        memcpy(c.der, der, (size_t)dl);
        c.der_len = (size_t)dl;
        if (smki_ca_cert_queue(b, &db, &c) < 0) die("queueing a record");
        if ((i & 1) == 0 && (i / 2) % step == 0) {
            char e[SMKI_EUI64_TEXT_MAX];
            smki_eui64_format(&c.eui, SMKI_EUI64_HYPHEN, e);
            fprintf(sf, "%s\n", e);
        }
    }
    if (smki_batch_end(b) < 0) die("committing");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    size_t total = 0;
    if (smki_ca_count(&db, &total) < 0) die("counting");
    printf("loaded %zu records in %.1f s (%.0f/s); the store holds %zu; map %zu MiB\n", n, secs, (double)n / secs,
           total, smki_store_map_size(s) >> 20);
    fclose(sf);
    smki_store_close(s);
    OPENSSL_free(der);
    X509_free(x);
    return 0;
}
