/* SoftHSM's own ceiling: ECDSA signatures per second straight through the module's
 * PKCS#11 function list, with nothing of smki or libp11 in the path. Each thread opens
 * its own session; the private key's handle is found once; every signature is
 * C_SignInit(CKM_ECDSA) + C_Sign over a 32-octet digest. This is the physical bound
 * for "signing through SoftHSM" beside which tools/bench.sh shows smki's token figure.
 * Prints one line: "p11-raw <threads> <sign/s> <CPU us per signature>".
 * With a fifth argument "session-copy" each thread first copies the key into a
 * session object (C_CopyObject, CKA_TOKEN false) and signs with the copy: what the
 * token costs without its file store's checks on every attribute read (a figure for
 * comparison; smki signs with the token object itself).
 * The module comes from $SMKI_PKCS11_MODULE or is SoftHSM 2; SOFTHSM2_CONF and
 * SMKI_PIN come from the environment. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "hsm/p11.h"

typedef struct {
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slot;
    const char *label;
    int session_copy;
    double seconds;
    unsigned long done;
    double cpu;
    int failed;
} worker;

static void *run(void *arg)
{
    worker *w = arg;
    CK_FUNCTION_LIST *f = w->f;
    CK_SESSION_HANDLE s;
    CK_RV rv = f->C_OpenSession(w->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        fprintf(stderr, "bench_p11_raw: C_OpenSession: %s\n", smki_p11_rv_name(rv));
        w->failed = 1;
        return NULL;
    }
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)w->label, strlen(w->label)}};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_ULONG n = 0;
    rv = f->C_FindObjectsInit(s, tmpl, 2);
    if (rv == CKR_OK) rv = f->C_FindObjects(s, &key, 1, &n);
    f->C_FindObjectsFinal(s);
    if (rv != CKR_OK || n != 1) {
        fprintf(stderr, "bench_p11_raw: no private key '%s' (%s)\n", w->label, smki_p11_rv_name(rv));
        w->failed = 1;
        f->C_CloseSession(s);
        return NULL;
    }
    if (w->session_copy) {
        CK_BBOOL no = CK_FALSE;
        CK_ATTRIBUTE t = {CKA_TOKEN, &no, sizeof no};
        rv = f->C_CopyObject(s, key, &t, 1, &key);
        if (rv != CKR_OK) {
            fprintf(stderr, "bench_p11_raw: C_CopyObject: %s\n", smki_p11_rv_name(rv));
            w->failed = 1;
            f->C_CloseSession(s);
            return NULL;
        }
    }
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_BYTE digest[32], sig[64];
    memset(digest, 0x5a, sizeof digest);
    double cpu0 = bench_thread_cpu();
    double end = bench_now() + w->seconds;
    unsigned long done = 0;
    while ((done & 63) != 0 || bench_now() < end) {
        digest[0] = (CK_BYTE)done;
        CK_ULONG len = sizeof sig;
        rv = f->C_SignInit(s, &mech, key);
        if (rv == CKR_OK) rv = f->C_Sign(s, digest, sizeof digest, sig, &len);
        if (rv != CKR_OK || len != 64) {
            fprintf(stderr, "bench_p11_raw: C_SignInit/C_Sign: %s\n", smki_p11_rv_name(rv));
            w->failed = 1;
            break;
        }
        done++;
    }
    w->cpu = bench_thread_cpu() - cpu0;
    w->done = done;
    f->C_CloseSession(s);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5 && !(argc == 6 && strcmp(argv[5], "session-copy") == 0)) {
        fprintf(stderr, "usage: bench_p11_raw TOKEN KEY-LABEL THREADS SECONDS [session-copy]   (PIN in SMKI_PIN)\n");
        return 1;
    }
    int threads = atoi(argv[3]);
    const char *pin = getenv("SMKI_PIN");
    if (threads < 1 || threads > 64 || !pin) {
        fprintf(stderr, "bench_p11_raw: 1 to 64 threads, and the PIN in SMKI_PIN\n");
        return 1;
    }
    p11_module *m = NULL;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE login;
    /* One logged-in session kept open for the run: PKCS#11 login is per token and
     * application, so every worker session is logged in through it. */
    if (smki_p11_module_get(smki_p11_module_choose(NULL, NULL), &m) != 0 || smki_p11_find_token(m, argv[1], &slot, NULL) != 0 ||
        smki_p11_open_session(m, slot, argv[1], pin, 0, &login) != 0) {
        fprintf(stderr, "bench_p11_raw: %s\n", smki_error_msg());
        return 3;
    }
    worker w[64];
    pthread_t t[64];
    double start = bench_now();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){smki_p11_module_functions(m), slot, argv[2], argc == 6, atof(argv[4]), 0, 0, 0};
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
    smki_p11_close_session(m, login);
    if (failed || total == 0) return 3;
    printf("%s %d %.0f %.2f\n", argc == 6 ? "p11-raw-session-copy" : "p11-raw", threads, (double)total / elapsed, cpu * 1e6 / (double)total);
    return 0;
}
