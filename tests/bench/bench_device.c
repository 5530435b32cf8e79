/* Benchmark of the device model's receive checks: smki_device_verify (parse, recipient,
 * MAC with the ECDH secret cached per peer, signature by the supplier cell, floor,
 * permission) over pre-built commands, on N threads sharing one device handle whose KA
 * key is in a SoftHSM token. "uncached" drops the ECDH cache before every command (one
 * token ECDH each), to show what the cache saves. Prints "<label> <threads> <ops/s>";
 * tools/bench.sh puts it beside `openssl speed ecdsap256` verify. The first figure is
 * per CPU-second of each thread, summed over threads, as `openssl speed` (user time;
 * -multi sums its processes) counts: on a loaded machine wall-clock rates fall while
 * openssl's do not. The wall-clock rate follows as a fourth field. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "device/device.h"
#include "device/state.h"
#include "gbcs/gbcs.h"

#define NCMD 512
#define PIN "bench-user-1234"

typedef struct {
    smki_device *d;
    uint8_t **cmd;
    size_t *len;
    double seconds;
    int uncached;
    unsigned long done;
    double cpu; /* this thread's CPU seconds */
    int failed;
} worker;

static void *run(void *arg)
{
    worker *w = arg;
    double cpu0 = bench_thread_cpu();
    smki_rx_opts o;
    smki_rx_result r;
    smki_rx_opts_default(&o);
    double end = bench_now() + w->seconds;
    unsigned long n = 0;
    while ((n & 31) != 0 || bench_now() < end) {
        if (w->uncached) {
            smki_wipe(w->d->zcache, sizeof w->d->zcache);
        }
        if (smki_device_verify(w->d, w->cmd[n % NCMD], w->len[n % NCMD], &o, &r) != 0 ||
            r.verdict != SMKI_RX_ACCEPTED) {
            fprintf(stderr, "bench_device: %s %s\n", smki_rx_verdict_name(r.verdict), r.reason);
            w->failed = 1;
            break;
        }
        n++;
    }
    w->done = n;
    w->cpu = bench_thread_cpu() - cpu0;
    return NULL;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_device: %s: %s\n", what, smki_error_msg());
    return 3;
}

/* A software key as a cell: its point, the holder's EUI-64. */
static smki_key *soft_cell(const char *dir, const char *name, uint8_t role, uint8_t ku, const char *eui,
                           smki_ta_cell *cell)
{
    char path[600], ref[700];
    snprintf(path, sizeof path, "%s/%s.pem", dir, name);
    snprintf(ref, sizeof ref, "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s 2>/dev/null",
             path);
    if (system(ref) != 0) return NULL;
    snprintf(ref, sizeof ref, "file:%s", path);
    smki_key *k = NULL;
    if (smki_key_open(ref, NULL, &k) != 0) return NULL;
    memset(cell, 0, sizeof *cell);
    cell->id.role = role;
    cell->id.key_usage = ku;
    smki_eui64_t e;
    if (smki_eui64_parse(eui, &e) < 0 || smki_pub_point(smki_key_public(k), cell->point) < 0) {
        smki_key_free(k);
        return NULL;
    }
    memcpy(cell->subject_id, e.b, 8);
    cell->has_key = 1;
    return k;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_device cached|uncached THREADS SECONDS\n");
        return 1;
    }
    int uncached = strcmp(argv[1], "uncached") == 0, threads = atoi(argv[2]);
    if (threads < 1 || threads > 16 || (uncached && threads != 1)) {
        fprintf(stderr, "bench_device: 1..16 threads (uncached: 1)\n");
        return 1;
    }
    char dir[] = "/tmp/smki-bench-device.XXXXXX", path[600];
    if (!mkdtemp(dir)) return 3;
    snprintf(path, sizeof path, "%s/hsm", dir);
    smki_hsm_opts hsm = {.pin = PIN};
    int created, rc = 3;
    smki_token_info info;
    smki_store *s = NULL;
    smki_device *d = NULL;
    smki_key *sup = NULL, *acb = NULL;
    smki_ta_cell cell;
    smki_eui64_t dev, from;
    uint8_t *cmd[NCMD] = {0};
    size_t len[NCMD];
    if (smki_eui64_parse("00DB123456789000", &dev) || smki_eui64_parse("90B3D51F30010000", &from) ||
        smki_softhsm_prepare(path) || smki_token_init(NULL, "bench-dev", "bench-so-1234", PIN, &created, &info)) {
        rc = fail("token");
        goto out;
    }
    snprintf(path, sizeof path, "%s/store", dir);
    smki_device_keys_opts ko = {"bench-dev", &hsm, NULL, NULL, NULL, NULL};
    if (smki_store_open(path, NULL, &s) || smki_device_create(s, &dev, &ko)) {
        rc = fail("device");
        goto out;
    }
    if (!(sup = soft_cell(dir, "supplier", SMKI_ROLE_SUPPLIER, SMKI_KU_DIGITAL_SIGNATURE, "90B3D51F30010000", &cell)) ||
        smki_device_load_cell(s, &dev, &cell)) {
        rc = fail("supplier cell");
        goto out;
    }
    if (!(acb = soft_cell(dir, "acb", SMKI_ROLE_ACB, SMKI_KU_KEY_AGREEMENT, "90B3D51F30000002", &cell)) ||
        smki_device_load_cell(s, &dev, &cell) || smki_device_open(s, &dev, &hsm, &d)) {
        rc = fail("ACB cell");
        goto out;
    }
    static const uint8_t body[64] = {1, 2, 3};
    for (int i = 0; i < NCMD; i++)
        if (smki_gbcs_command_build(sup, acb, d->ka_pub, &from, &dev, (uint64_t)i + 1, SMKI_MC_ECS01A, body,
                                    sizeof body, &cmd[i], &len[i])) {
            rc = fail("commands");
            goto out;
        }
    worker w[16];
    pthread_t t[16];
    double start = bench_now();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){d, cmd, len, atof(argv[3]), uncached, 0, 0, 0};
        pthread_create(&t[i], NULL, run, &w[i]);
    }
    unsigned long total = 0;
    double per_cpu = 0;
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        total += w[i].done;
        if (w[i].cpu > 0) per_cpu += (double)w[i].done / w[i].cpu;
        failed |= w[i].failed;
    }
    double elapsed = bench_now() - start;
    if (!failed) {
        printf("device-verify-%s %d %.0f %.0f\n", argv[1], threads, per_cpu, (double)total / elapsed);
        rc = 0;
    }
out:
    for (int i = 0; i < NCMD; i++) free(cmd[i]);
    smki_device_free(d);
    smki_key_free(sup);
    smki_key_free(acb);
    smki_store_close(s);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
