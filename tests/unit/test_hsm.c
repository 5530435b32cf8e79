/* The crypto core: tokens, keys in the token and in files, signing and verifying in
 * both forms, ECDH, bad keys and signatures, wrong PIN, a failing device, threads
 * and fork. Runs against a SoftHSM token made in a fresh folder. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "hsm/hsm.h"
#include "hsm/p11.h"
#include "hsm/uri.h"

#define TOKEN "unit"
#define PIN "4321"
#define SO_PIN "87654321"

static char dir[1024];
static char ds_uri[SMKI_KEY_URI_MAX], ka_uri[SMKI_KEY_URI_MAX];
static const smki_hsm_opts opts = {.pin = PIN};

static const uint8_t MSG[] = "a pre-command, more or less";

/* The session objects of this process that are private keys: the copies the open keys
 * sign with. Counted through a logged-in session of the test's own. With *handle the
 * last one found. */
static int session_key_copies(CK_OBJECT_HANDLE *handle)
{
    p11_module *m;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    if (smki_p11_module_get(smki_softhsm_default_module(), &m) != 0 || smki_p11_find_token(m, TOKEN, &slot, NULL) != 0 ||
        smki_p11_open_session(m, slot, TOKEN, PIN, 0, &s) != 0)
        return -1;
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_TOKEN, &no, sizeof no}};
    CK_OBJECT_HANDLE h[64];
    CK_ULONG n = 0;
    if (f->C_FindObjectsInit(s, tmpl, 2) != CKR_OK) return -1;
    CK_RV rv = f->C_FindObjects(s, h, 64, &n);
    f->C_FindObjectsFinal(s);
    if (rv == CKR_OK && n > 0 && handle) *handle = h[n - 1];
    f->C_CloseSession(s);
    return rv == CKR_OK ? (int)n : -1;
}

static int sign_verify_n(smki_key *k, int n)
{
    for (int i = 0; i < n; i++) {
        uint8_t msg[8] = {(uint8_t)i, 0x77}, sig[SMKI_SIG_MAX];
        size_t len = sizeof sig;
        if (smki_key_sign(k, msg, sizeof msg, SMKI_SIG_RAW, sig, &len) != 0) {
            fprintf(stderr, "sign: %s\n", smki_error_msg());
            return 0;
        }
        if (smki_verify(smki_key_public(k), msg, sizeof msg, SMKI_SIG_RAW, sig, len) != 0) return 0;
        msg[0] ^= 1;
        if (smki_verify(smki_key_public(k), msg, sizeof msg, SMKI_SIG_RAW, sig, len) != SMKI_E_VERIFY) return 0;
    }
    return 1;
}


static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", test_tmpdir("hsm"));
    char hsm[1100];
    snprintf(hsm, sizeof hsm, "%s/hsm", dir);
    if (smki_softhsm_prepare(hsm) != 0) return -1;
    int created = 0;
    smki_token_info info;
    if (smki_token_init(NULL, TOKEN, SO_PIN, PIN, &created, &info) != 0 || !created) return -1;
    if (smki_key_generate(&opts, TOKEN, "ds", SMKI_USAGE_DS, ds_uri) != 0) return -1;
    if (smki_key_generate(&opts, TOKEN, "ka", SMKI_USAGE_KA, ka_uri) != 0) return -1;
    return 0;
}

/* A software key of the given curve in a PEM file under dir. */
static const char *make_key_file(const char *name, const char *curve_or_rsa)
{
    static char path[1200];
    snprintf(path, sizeof path, "%s/%s.pem", dir, name);
    EVP_PKEY *pk = strcmp(curve_or_rsa, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024)
                                                     : EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve_or_rsa);
    assert_non_null(pk);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    EVP_PKEY_free(pk);
    return path;
}

static void test_token_init_is_idempotent(void **state)
{
    (void)state;
    int created = 1;
    smki_token_info info;
    assert_ok(smki_token_init(NULL, TOKEN, SO_PIN, PIN, &created, &info));
    assert_int_equal(created, 0);
    assert_string_equal(info.label, TOKEN);
    assert_true(info.user_pin_set);
}

static void test_token_find_names_missing_token(void **state)
{
    (void)state;
    smki_token_info info;
    assert_fails(smki_token_find(NULL, "no-such-token", &info), SMKI_E_NOTFOUND, "no-such-token");
}

static void test_key_generate_refuses_existing_label(void **state)
{
    (void)state;
    char uri[SMKI_KEY_URI_MAX];
    assert_fails(smki_key_generate(&opts, TOKEN, "ds", SMKI_USAGE_DS, uri), SMKI_E_EXISTS, "'ds'");
}

static void test_key_generate_needs_pin(void **state)
{
    (void)state;
    char uri[SMKI_KEY_URI_MAX];
    smki_hsm_opts none = {0};
    assert_fails(smki_key_generate(&none, TOKEN, "x", SMKI_USAGE_DS, uri), SMKI_E_USAGE, "PIN");
}

/* The private key's value cannot be read out of the token, and it is marked so. */
static void test_token_key_value_cannot_be_read(void **state)
{
    (void)state;
    p11_module *m;
    assert_ok(smki_p11_module_get(smki_softhsm_default_module(), &m));
    CK_SLOT_ID slot;
    assert_ok(smki_p11_find_token(m, TOKEN, &slot, NULL));
    CK_SESSION_HANDLE s;
    assert_ok(smki_p11_open_session(m, slot, TOKEN, PIN, 0, &s));
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, "ds", 2}};
    CK_OBJECT_HANDLE h;
    CK_ULONG n = 0;
    assert_int_equal(f->C_FindObjectsInit(s, tmpl, 2), CKR_OK);
    assert_int_equal(f->C_FindObjects(s, &h, 1, &n), CKR_OK);
    f->C_FindObjectsFinal(s);
    assert_int_equal(n, 1);
    uint8_t value[64];
    CK_ATTRIBUTE a = {CKA_VALUE, value, sizeof value};
    assert_int_equal(f->C_GetAttributeValue(s, h, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
    CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE, token = CK_FALSE, never = CK_FALSE;
    CK_ATTRIBUTE flags[] = {{CKA_SENSITIVE, &sensitive, 1},
                            {CKA_EXTRACTABLE, &extractable, 1},
                            {CKA_TOKEN, &token, 1},
                            {CKA_NEVER_EXTRACTABLE, &never, 1}};
    assert_int_equal(f->C_GetAttributeValue(s, h, flags, 4), CKR_OK);
    assert_true(sensitive);
    assert_false(extractable);
    assert_true(token);
    assert_true(never);
    smki_p11_close_session(m, s);
}

/* Freeing the last open token key must not end the module for token administration
 * in the same process (found by the CA tests). */
static void test_token_administration_works_after_last_key_is_freed(void **state)
{
    (void)state;
    smki_key *k = NULL;
    assert_ok(smki_key_open(ds_uri, &opts, &k));
    smki_key_free(k);
    smki_key_info *keys = NULL;
    size_t n = 0;
    assert_ok(smki_key_list(&opts, TOKEN, &keys, &n));
    assert_true(n >= 2);
    free(keys);
    assert_ok(smki_key_open(ds_uri, &opts, &k)); /* and keys open again */
    smki_key_free(k);
}

static void test_key_list_shows_both_usages(void **state)
{
    (void)state;
    smki_key_info *keys = NULL;
    size_t n = 0;
    assert_ok(smki_key_list(&opts, TOKEN, &keys, &n));
    int ds = 0, ka = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i].label, "ds") == 0 && keys[i].usage == SMKI_USAGE_DS) ds = 1;
        if (strcmp(keys[i].label, "ka") == 0 && keys[i].usage == SMKI_USAGE_KA) ka = 1;
        assert_int_equal(strlen(keys[i].id_hex), 16); /* the 8-octet GBCS key identifier */
    }
    free(keys);
    assert_true(ds && ka);
}

/* CKA_ID is the key identifier of the public point (0100b then 60 bits of SHA-1). */
static void test_token_key_id_is_gbcs_key_identifier(void **state)
{
    (void)state;
    smki_key *k = NULL;
    assert_ok(smki_key_open(ds_uri, &opts, &k));
    uint8_t point[SMKI_POINT_LEN], id[8];
    assert_ok(smki_pub_point(smki_key_public(k), point));
    assert_ok(smki_keyid_method2(point, SMKI_POINT_LEN, id));
    smki_p11_uri u;
    assert_ok(smki_p11_uri_parse(ds_uri, &u));
    assert_int_equal(u.id_len, 8);
    assert_memory_equal(u.id, id, 8);
    assert_int_equal(id[0] >> 4, 4);
    smki_key_free(k);
}

static void sign_and_verify(const char *ref)
{
    smki_key *k = NULL;
    assert_ok(smki_key_open(ref, &opts, &k));
    uint8_t sig[SMKI_SIG_MAX];
    size_t len = sizeof sig;
    assert_ok(smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_RAW, sig, &len));
    assert_int_equal(len, 64);
    assert_ok(smki_verify(smki_key_public(k), MSG, sizeof MSG, SMKI_SIG_RAW, sig, len));
    sig[10] ^= 1;
    assert_fails(smki_verify(smki_key_public(k), MSG, sizeof MSG, SMKI_SIG_RAW, sig, len), SMKI_E_VERIFY, NULL);
    len = sizeof sig;
    assert_ok(smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_DER, sig, &len));
    assert_true(len >= 8 && len <= 72 && sig[0] == 0x30);
    assert_ok(smki_verify(smki_key_public(k), MSG, sizeof MSG, SMKI_SIG_DER, sig, len));
    assert_fails(smki_verify(smki_key_public(k), MSG, sizeof MSG - 1, SMKI_SIG_DER, sig, len), SMKI_E_VERIFY, NULL);
    smki_key_free(k);
}

static void test_token_key_signs_raw_and_der(void **state)
{
    (void)state;
    sign_and_verify(ds_uri);
    sign_and_verify("pkcs11:token=" TOKEN ";object=ds"); /* by label alone */
}

static void test_file_key_signs_raw_and_der(void **state)
{
    (void)state;
    char ref[1300];
    snprintf(ref, sizeof ref, "file:%s", make_key_file("soft", "P-256"));
    sign_and_verify(ref);
}

static void test_file_key_refuses_other_curves_and_rsa(void **state)
{
    (void)state;
    smki_key *k = NULL;
    char ref[1300];
    snprintf(ref, sizeof ref, "file:%s", make_key_file("p384", "P-384"));
    assert_fails(smki_key_open(ref, &opts, &k), SMKI_E_REFUSED, "secp384r1");
    snprintf(ref, sizeof ref, "file:%s", make_key_file("rsa", "RSA"));
    assert_fails(smki_key_open(ref, &opts, &k), SMKI_E_REFUSED, "not an EC key");
    assert_fails(smki_key_open("file:/nonexistent/key.pem", &opts, &k), SMKI_E_NOTFOUND, "/nonexistent/key.pem");
    assert_null(k);
}

static void test_key_open_refuses_unknown_references(void **state)
{
    (void)state;
    smki_key *k = NULL;
    assert_fails(smki_key_open("sup-ds", &opts, &k), SMKI_E_USAGE, "unknown key reference");
    assert_fails(smki_key_open("pkcs11:object=ds", &opts, &k), SMKI_E_USAGE, "no token");
    assert_fails(smki_key_open("pkcs11:token=" TOKEN ";object=nope", &opts, &k), SMKI_E_NOTFOUND, "nope");
    assert_fails(smki_key_open("pkcs11:token=missing;object=ds", &opts, &k), SMKI_E_NOTFOUND, "missing");
    assert_fails(smki_key_open("pkcs11:token=" TOKEN ";object=ds?pin-value=1234", &opts, &k), SMKI_E_USAGE,
                 "pin-value");
    assert_null(k);
}

/* A bare name is a token key's label; one that names a file is refused with the way to
 * say what was meant (file:PATH), by smki_key_ref_resolve and by smki_key_open alike. */
static void test_bare_key_name_of_a_file_asks_for_file_prefix(void **state)
{
    (void)state;
    char path[512], want[600], ref[SMKI_KEY_URI_MAX];
    snprintf(path, sizeof path, "%s/k.pem", test_tmpdir("bare-key-file"));
    test_write_ec_key(path, "P-256");
    snprintf(want, sizeof want, "write file:%s to use the key", path);
    assert_fails(smki_key_ref_resolve(path, TOKEN, ref, sizeof ref), SMKI_E_USAGE, want);
    smki_key *k = NULL;
    assert_fails(smki_key_open(path, &opts, &k), SMKI_E_USAGE, want);
    assert_null(k);

    /* With file: it is the key; a bare name that is no file stays a label on the token. */
    char file_ref[600];
    snprintf(file_ref, sizeof file_ref, "file:%s", path);
    assert_ok(smki_key_ref_resolve(file_ref, TOKEN, ref, sizeof ref));
    assert_string_equal(ref, file_ref);
    assert_ok(smki_key_open(ref, &opts, &k));
    smki_key_free(k);
    assert_ok(smki_key_ref_resolve("ds", TOKEN, ref, sizeof ref));
    smki_p11_uri u;
    assert_ok(smki_p11_uri_parse(ref, &u));
    assert_string_equal(u.token, TOKEN);
    assert_string_equal(u.object, "ds");
    assert_fails(smki_key_ref_resolve("a;b", TOKEN, ref, sizeof ref), SMKI_E_USAGE, "is not a key");
}

/* Run fn in a child process so that a failed login does not leave this process's
 * token state changed for the other tests. */
static void in_child(void (*fn)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn();
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void wrong_pin_child(void)
{
    /* A fresh process image is not needed: the module re-initialises after fork.
     * Log out first by closing every session, then try a wrong PIN. */
    p11_module *m;
    CK_SLOT_ID slot;
    if (smki_p11_module_get(smki_softhsm_default_module(), &m) != 0 || smki_p11_find_token(m, TOKEN, &slot, NULL) != 0)
        _exit(10);
    smki_p11_module_functions(m)->C_CloseAllSessions(slot);
    smki_key *k = NULL;
    smki_hsm_opts bad = {.pin = "0000"};
    int rc = smki_key_generate(&bad, TOKEN, "never", SMKI_USAGE_DS, (char[SMKI_KEY_URI_MAX]){0});
    if (rc != SMKI_E_REFUSED || !strstr(smki_error_msg(), "CKR_PIN_INCORRECT") || !strstr(smki_error_msg(), TOKEN))
        _exit(11);
    rc = smki_key_open("pkcs11:token=" TOKEN ";object=ds", &bad, &k);
    if (rc >= 0 || k != NULL) _exit(12);
    if (!strstr(smki_error_msg(), TOKEN)) _exit(13);
    _exit(0);
}

static void test_wrong_pin_fails_cleanly(void **state)
{
    (void)state;
    in_child(wrong_pin_child);
}

static void fork_child(void)
{
    /* The parent opened the key; the child signs with the same handle. */
    smki_key *k = NULL;
    if (smki_key_open(ds_uri, &opts, &k) != 0) _exit(20);
    pid_t pid = fork();
    if (pid == 0) {
        uint8_t sig[SMKI_SIG_MAX];
        size_t len = sizeof sig;
        if (smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_RAW, sig, &len) != 0) {
            fprintf(stderr, "child: %s\n", smki_error_msg());
            _exit(21);
        }
        if (smki_verify(smki_key_public(k), MSG, sizeof MSG, SMKI_SIG_RAW, sig, len) != 0) _exit(22);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 23);
    uint8_t sig[SMKI_SIG_MAX];
    size_t len = sizeof sig;
    if (smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_RAW, sig, &len) != 0) _exit(24); /* parent still works */
    smki_key_free(k);
    _exit(0);
}

static void test_token_key_survives_fork(void **state)
{
    (void)state;
    in_child(fork_child);
}

typedef struct {
    smki_key *k;
    int bad;
} thread_arg;

static void *sign_many(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 200; i++) {
        uint8_t msg[8] = {(uint8_t)i}, sig[SMKI_SIG_MAX];
        size_t len = sizeof sig;
        if (smki_key_sign(a->k, msg, sizeof msg, SMKI_SIG_RAW, sig, &len) != 0 ||
            smki_verify(smki_key_public(a->k), msg, sizeof msg, SMKI_SIG_RAW, sig, len) != 0)
            a->bad++;
    }
    return NULL;
}

static void sign_from_threads(const char *ref)
{
    smki_key *k = NULL;
    assert_ok(smki_key_open(ref, &opts, &k));
    pthread_t t[4];
    thread_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thread_arg){k, 0};
        assert_int_equal(pthread_create(&t[i], NULL, sign_many, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].bad, 0);
    }
    smki_key_free(k);
}

static void test_token_key_signs_from_several_threads(void **state)
{
    (void)state;
    sign_from_threads(ds_uri);
}

static void test_file_key_signs_from_several_threads(void **state)
{
    (void)state;
    char ref[1300];
    snprintf(ref, sizeof ref, "file:%s", make_key_file("threads", "P-256"));
    sign_from_threads(ref);
}

/* ---- Token signing under stress: many threads, fork, lost sessions ------------------ */

/* More threads than the key keeps pooled sessions, each signing its own messages in
 * both forms; every signature verified against the key's public half. */
typedef struct {
    smki_key *k;
    int id;
    int signed_ok;
    int bad;
} many_arg;

static void *sign_own_messages(void *p)
{
    many_arg *a = p;
    for (int i = 0; i < 60; i++) {
        uint8_t msg[16] = {(uint8_t)a->id, (uint8_t)i, 0x5a}, sig[SMKI_SIG_MAX];
        size_t len = sizeof sig;
        smki_sigfmt fmt = (i & 1) ? SMKI_SIG_DER : SMKI_SIG_RAW;
        if (smki_key_sign(a->k, msg, sizeof msg, fmt, sig, &len) != 0 ||
            smki_verify(smki_key_public(a->k), msg, sizeof msg, fmt, sig, len) != 0) {
            a->bad++;
            continue;
        }
        msg[0] ^= 0x80; /* and it is this message's signature, not any valid one */
        if (smki_verify(smki_key_public(a->k), msg, sizeof msg, fmt, sig, len) != SMKI_E_VERIFY) a->bad++;
        a->signed_ok++;
    }
    return NULL;
}

static void test_token_key_signs_from_more_threads_than_pooled_sessions(void **state)
{
    (void)state;
    smki_key *k = NULL;
    assert_ok(smki_key_open(ds_uri, &opts, &k));
    enum { N = 24 };
    pthread_t t[N];
    many_arg a[N];
    for (int i = 0; i < N; i++) {
        a[i] = (many_arg){k, i, 0, 0};
        assert_int_equal(pthread_create(&t[i], NULL, sign_own_messages, &a[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].bad, 0);
        assert_int_equal(a[i].signed_ok, 60);
    }
    assert_int_equal(session_key_copies(NULL), 1); /* one copy shared by every pooled session */
    smki_key_free(k);
    assert_int_equal(session_key_copies(NULL), 0);
}

/* A key-agreement key asked to sign: refused by the token, named in the error. */
static void test_ka_token_key_refuses_to_sign(void **state)
{
    (void)state;
    smki_key *k = NULL;
    assert_ok(smki_key_open(ka_uri, &opts, &k));
    uint8_t sig[SMKI_SIG_MAX];
    size_t len = sizeof sig;
    assert_fails(smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_RAW, sig, &len), SMKI_E_REFUSED,
                 "CKR_KEY_FUNCTION_NOT_PERMITTED");
    assert_non_null(strstr(smki_error_msg(), "token '" TOKEN "'"));
    uint8_t z[32]; /* and it still does what it may do */
    assert_ok(smki_key_ecdh(k, smki_key_public(k), z));
    smki_key_free(k);
}

/* Through the shim in strict mode a session used by a process other than its opener
 * fails with CKR_DEVICE_ERROR, as on an HSM that does not share sessions with a
 * forked child. The parent signs first (its sessions are pooled in the key), then
 * children sign with the same smki_key from two threads each, then free it; the parent
 * still signs afterwards. */
static void *sign_twenty(void *p)
{
    many_arg *a = p;
    for (int i = 0; i < 20; i++) {
        uint8_t msg[4] = {(uint8_t)a->id, (uint8_t)i}, sig[SMKI_SIG_MAX];
        size_t len = sizeof sig;
        if (smki_key_sign(a->k, msg, sizeof msg, SMKI_SIG_RAW, sig, &len) != 0) {
            fprintf(stderr, "child thread: %s\n", smki_error_msg());
            a->bad++;
        } else if (smki_verify(smki_key_public(a->k), msg, sizeof msg, SMKI_SIG_RAW, sig, len) != 0) {
            a->bad++;
        } else {
            a->signed_ok++;
        }
    }
    return NULL;
}

static void fork_strict_child(void)
{
    const char *shim = getenv("SMKI_SHIM_PATH");
    if (!shim) _exit(40);
    setenv("SMKI_SHIM_FORK_STRICT", "1", 1);
    smki_hsm_opts o = {.module = shim, .pin = PIN};
    smki_key *k = NULL;
    if (smki_key_open("pkcs11:token=" TOKEN ";object=ds", &o, &k) != 0) _exit(41);
    uint8_t sig[SMKI_SIG_MAX];
    size_t len = sizeof sig;
    if (smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_RAW, sig, &len) != 0) _exit(42);
    for (int c = 0; c < 2; c++) {
        pid_t pid = fork();
        if (pid == 0) {
            pthread_t t[2];
            many_arg a[2];
            for (int i = 0; i < 2; i++) {
                a[i] = (many_arg){k, i, 0, 0};
                if (pthread_create(&t[i], NULL, sign_twenty, &a[i]) != 0) _exit(43);
            }
            for (int i = 0; i < 2; i++) {
                pthread_join(t[i], NULL);
                if (a[i].bad || a[i].signed_ok != 20) _exit(44);
            }
            smki_key_free(k); /* closes the child's sessions only */
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 45);
        len = sizeof sig;
        if (smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_RAW, sig, &len) != 0) {
            fprintf(stderr, "parent after child: %s\n", smki_error_msg());
            _exit(46);
        }
        if (smki_verify(smki_key_public(k), MSG, sizeof MSG, SMKI_SIG_RAW, sig, len) != 0) _exit(47);
    }
    smki_key_free(k);
    _exit(0);
}

static void test_forked_child_signs_on_sessions_of_its_own(void **state)
{
    (void)state;
    in_child(fork_strict_child);
}

/* The token drops every session (and with the last one, the login) between two
 * signatures: the next signature (or ECDH) opens sessions and logs in again by
 * itself. The same after a logout alone. */
static int sign_once_ok(smki_key *k)
{
    uint8_t sig[SMKI_SIG_MAX];
    size_t len = sizeof sig;
    if (smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_DER, sig, &len) != 0) {
        fprintf(stderr, "sign: %s\n", smki_error_msg());
        return 0;
    }
    return smki_verify(smki_key_public(k), MSG, sizeof MSG, SMKI_SIG_DER, sig, len) == 0;
}

static void session_loss_child(void)
{
    p11_module *m;
    CK_SLOT_ID slot;
    if (smki_p11_module_get(smki_softhsm_default_module(), &m) != 0 || smki_p11_find_token(m, TOKEN, &slot, NULL) != 0)
        _exit(50);
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    smki_key *k = NULL;
    if (smki_key_open(ds_uri, &opts, &k) != 0 || !sign_once_ok(k)) _exit(51);
    smki_key *ka = NULL;
    uint8_t z1[32], z2[32];
    if (smki_key_open(ka_uri, &opts, &ka) != 0 || smki_key_ecdh(ka, smki_key_public(k), z1) != 0) _exit(57);
    if (f->C_CloseAllSessions(slot) != CKR_OK) _exit(52);
    if (!sign_once_ok(k)) _exit(53);
    if (!sign_once_ok(k)) _exit(54);
    if (smki_key_ecdh(ka, smki_key_public(k), z2) != 0 || memcmp(z1, z2, 32) != 0) { /* ECDH recovers too */
        fprintf(stderr, "ecdh: %s\n", smki_error_msg());
        _exit(58);
    }
    if (session_key_copies(NULL) != 2) _exit(59); /* the lost copies made again, one each */
    smki_key_free(ka);
    /* A logout through a session of our own: the key's sessions stay open but are no
     * longer logged in. */
    CK_SESSION_HANDLE s;
    if (f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK || f->C_Logout(s) != CKR_OK) _exit(55);
    if (!sign_once_ok(k)) _exit(56);
    f->C_CloseSession(s);
    if (session_key_copies(NULL) != 1) _exit(66);
    smki_key_free(k);
    if (session_key_copies(NULL) != 0) _exit(67);
    _exit(0);
}

static void test_token_signing_recovers_from_lost_sessions_and_logout(void **state)
{
    (void)state;
    in_child(session_loss_child);
}

/* The PIN changed under a running process and the token logged it out: the next
 * signature reports the refused PIN naming the token and the operation, and the old
 * PIN is not tried again (each try would count down the token's retry counter). Once
 * the process is logged in again, the key signs again as before. */
static void pin_changed_child(void)
{
    p11_module *m;
    CK_SLOT_ID slot;
    if (smki_p11_module_get(smki_softhsm_default_module(), &m) != 0 || smki_p11_find_token(m, TOKEN, &slot, NULL) != 0)
        _exit(60);
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    smki_key *k = NULL;
    if (smki_key_open(ds_uri, &opts, &k) != 0 || !sign_once_ok(k)) _exit(61);
    CK_SESSION_HANDLE s;
    static const char newpin[] = "98765";
    if (f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK ||
        f->C_SetPIN(s, (CK_UTF8CHAR *)PIN, 4, (CK_UTF8CHAR *)newpin, 5) != CKR_OK)
        _exit(62);
    f->C_CloseAllSessions(slot);
    uint8_t sig[SMKI_SIG_MAX];
    size_t len = sizeof sig;
    int rc = smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_RAW, sig, &len);
    int first_ok = rc == SMKI_E_REFUSED && strstr(smki_error_msg(), "CKR_PIN_INCORRECT") &&
                   strstr(smki_error_msg(), "token '" TOKEN "'") && strstr(smki_error_msg(), "signing");
    if (!first_ok) fprintf(stderr, "first: rc %d: %s\n", rc, smki_error_msg());
    len = sizeof sig;
    rc = smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_RAW, sig, &len);
    int second_ok = rc < 0 && !strstr(smki_error_msg(), "CKR_PIN_INCORRECT") && strstr(smki_error_msg(), TOKEN);
    if (!second_ok) fprintf(stderr, "second: rc %d: %s\n", rc, smki_error_msg());
    /* Put the PIN back for the other tests (the token lives on disk). */
    int restored = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) == CKR_OK &&
                   f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)newpin, 5) == CKR_OK &&
                   f->C_SetPIN(s, (CK_UTF8CHAR *)newpin, 5, (CK_UTF8CHAR *)PIN, 4) == CKR_OK;
    f->C_CloseAllSessions(slot);
    /* The operator logs the process in again: the key signs again, through the
     * direct path (a copy is made): not found while logged out did not turn it off. */
    int again = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) == CKR_OK &&
                f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)PIN, 4) == CKR_OK && sign_once_ok(k) &&
                session_key_copies(NULL) == 1;
    if (restored && !again) fprintf(stderr, "again: %s\n", smki_error_msg());
    f->C_CloseAllSessions(slot);
    smki_key_free(k);
    _exit(!restored ? 63 : !first_ok ? 64 : !second_ok ? 65 : !again ? 68 : 0);
}

static void test_token_signing_reports_a_changed_pin_once(void **state)
{
    (void)state;
    in_child(pin_changed_child);
}

/* The DER form written from r || s is OpenSSL's, byte for byte, across the shapes
 * that change its length: leading zero octets, top bit set, zero. */
static void test_raw_to_der_matches_openssl(void **state)
{
    (void)state;
    for (int n = 0; n < 400; n++) {
        uint8_t raw[64];
        assert_int_equal(RAND_bytes(raw, sizeof raw), 1);
        int shape = n % 8;
        if (shape == 1) memset(raw, 0, 3);                      /* short r */
        if (shape == 2) raw[32] = 0x80;                         /* s needs a 00 */
        if (shape == 3) memset(raw + 32, 0, 32);                /* s = 0 */
        if (shape == 4) memset(raw, 0, 31), raw[31] = 0x80;     /* r = 128 */
        if (shape == 5) memset(raw, 0, 32);                     /* r = 0 */
        if (shape == 6) raw[0] = 0x00, raw[1] = 0x80;           /* one zero, then top bit */
        if (shape == 7) raw[0] = 0xff, raw[32] = 0x00, raw[33] = 0x01;
        uint8_t der[SMKI_SIG_MAX];
        size_t len = sizeof der;
        assert_ok(smki_sig_raw_to_der(raw, der, &len));
        ECDSA_SIG *es = ECDSA_SIG_new();
        assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL)), 1);
        unsigned char *ref = NULL;
        int rlen = i2d_ECDSA_SIG(es, &ref);
        assert_int_equal((int)len, rlen);
        assert_memory_equal(der, ref, len);
        OPENSSL_free(ref);
        ECDSA_SIG_free(es);
        uint8_t back[64];
        assert_ok(smki_sig_der_to_raw(der, len, back));
        assert_memory_equal(back, raw, 64);
    }
    uint8_t raw[64], der[SMKI_SIG_MAX];
    memset(raw, 0xff, sizeof raw); /* 72 octets of DER */
    size_t len = 71;               /* too small a buffer is refused, not overrun */
    assert_fails(smki_sig_raw_to_der(raw, der, &len), SMKI_E_INTERNAL, "too small");
}

/* Token ECDH (CKM_ECDH1_DERIVE) and software ECDH agree from both sides. */
static void test_token_ecdh_agrees_with_software(void **state)
{
    (void)state;
    char ref[1300];
    snprintf(ref, sizeof ref, "file:%s", make_key_file("peer", "P-256"));
    smki_key *tok = NULL, *soft = NULL;
    assert_ok(smki_key_open(ka_uri, &opts, &tok));
    assert_ok(smki_key_open(ref, &opts, &soft));
    uint8_t z1[32], z2[32];
    assert_ok(smki_key_ecdh(tok, smki_key_public(soft), z1));
    assert_ok(smki_key_ecdh(soft, smki_key_public(tok), z2));
    assert_memory_equal(z1, z2, 32);
    smki_key_free(tok);
    smki_key_free(soft);
}

/* A sign-once KA key signs exactly what its generation hands it (a CSR), derives, and
 * afterwards is refused any signature by the token; a failing signer leaves no key. */
typedef struct {
    uint8_t sig[SMKI_SIG_MAX];
    size_t sig_len;
    EVP_PKEY *pub;
} once_ctx;

static int sign_msg_once(smki_key *k, void *ctx)
{
    once_ctx *c = ctx;
    c->sig_len = sizeof c->sig;
    c->pub = smki_key_public(k);
    EVP_PKEY_up_ref(c->pub);
    return smki_key_sign(k, (const uint8_t *)"csr", 3, SMKI_SIG_DER, c->sig, &c->sig_len);
}

static int fail_once(smki_key *k, void *ctx)
{
    (void)k;
    (void)ctx;
    return SMKI_FAIL(SMKI_E_INPUT, "the CSR could not be built");
}

static void test_sign_once_ka_key_signs_at_birth_then_only_derives(void **state)
{
    (void)state;
    char uri[SMKI_KEY_URI_MAX];
    once_ctx c = {0};
    assert_ok(smki_key_generate_ka_sign_once(&opts, TOKEN, "ka-once", sign_msg_once, &c, uri));
    assert_ok(smki_verify(c.pub, (const uint8_t *)"csr", 3, SMKI_SIG_DER, c.sig, c.sig_len));
    smki_key *k = NULL;
    assert_ok(smki_key_open(uri, &opts, &k));
    uint8_t sig[SMKI_SIG_MAX];
    size_t len = sizeof sig;
    assert_fails(smki_key_sign(k, (const uint8_t *)"any", 3, SMKI_SIG_DER, sig, &len), SMKI_E_REFUSED,
                 "may not sign");
    uint8_t z[32];
    assert_ok(smki_key_ecdh(k, c.pub, z)); /* still a key-agreement key */
    smki_key_free(k);
    EVP_PKEY_free(c.pub);
    smki_key_info *keys = NULL;
    size_t n = 0;
    int usage = -1;
    assert_ok(smki_key_list(&opts, TOKEN, &keys, &n));
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].label, "ka-once") == 0) usage = keys[i].usage;
    free(keys);
    assert_int_equal(usage, SMKI_USAGE_KA);
}

static void test_sign_once_ka_key_is_destroyed_when_its_signer_fails(void **state)
{
    (void)state;
    char uri[SMKI_KEY_URI_MAX];
    assert_fails(smki_key_generate_ka_sign_once(&opts, TOKEN, "ka-failed", fail_once, NULL, uri), SMKI_E_INPUT,
                 "CSR");
    smki_key_info *keys = NULL;
    size_t n = 0;
    assert_ok(smki_key_list(&opts, TOKEN, &keys, &n));
    for (size_t i = 0; i < n; i++) assert_string_not_equal(keys[i].label, "ka-failed");
    free(keys);
    assert_fails(smki_key_generate_ka_sign_once(&opts, TOKEN, "ka-none", NULL, NULL, uri), SMKI_E_USAGE, "sign");
}

static void test_ds_token_key_refuses_ecdh(void **state)
{
    (void)state;
    smki_key *tok = NULL;
    assert_ok(smki_key_open(ds_uri, &opts, &tok));
    uint8_t z[32];
    assert_fails(smki_key_ecdh(tok, smki_key_public(tok), z), SMKI_E_REFUSED, "may not derive");
    assert_non_null(strstr(smki_error_msg(), "token '" TOKEN "'"));
    smki_key_free(tok);
}

/* ---- Session copies of token keys (key_copy) -------------------------------------------- */

/* By default a token key signs with one session copy of itself, made at the first
 * signature, that keeps the original's protection, never goes to the token's files,
 * and is gone once the key is freed. A second key open on the same token key makes
 * its own; neither confuses opening the key again nor listing the token's keys. */
static void test_token_key_signs_with_a_session_copy_destroyed_at_free(void **state)
{
    (void)state;
    unsetenv("SMKI_HSM_KEY_COPY");
    assert_int_equal(session_key_copies(NULL), 0);
    smki_key *k = NULL, *k2 = NULL;
    assert_ok(smki_key_open(ds_uri, &opts, &k));
    assert_int_equal(session_key_copies(NULL), 0); /* made when first used, not at open */
    assert_true(sign_verify_n(k, 5));
    CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
    assert_int_equal(session_key_copies(&copy), 1);
    p11_module *m;
    CK_SLOT_ID slot;
    assert_ok(smki_p11_module_get(smki_softhsm_default_module(), &m));
    assert_ok(smki_p11_find_token(m, TOKEN, &slot, NULL));
    CK_SESSION_HANDLE s;
    assert_ok(smki_p11_open_session(m, slot, TOKEN, PIN, 0, &s));
    CK_BBOOL token = CK_TRUE, sensitive = CK_FALSE, extractable = CK_TRUE, sign = CK_FALSE, derive = CK_TRUE;
    CK_ATTRIBUTE a[] = {{CKA_TOKEN, &token, 1},
                        {CKA_SENSITIVE, &sensitive, 1},
                        {CKA_EXTRACTABLE, &extractable, 1},
                        {CKA_SIGN, &sign, 1},
                        {CKA_DERIVE, &derive, 1}};
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    assert_int_equal(f->C_GetAttributeValue(s, copy, a, 5), CKR_OK);
    assert_false(token);
    assert_true(sensitive);
    assert_false(extractable);
    assert_true(sign);
    assert_false(derive);
    uint8_t value[64];
    CK_ATTRIBUTE v = {CKA_VALUE, value, sizeof value};
    assert_int_equal(f->C_GetAttributeValue(s, copy, &v, 1), CKR_ATTRIBUTE_SENSITIVE);
    /* a second key on the same token key, while the first is open */
    assert_ok(smki_key_open("pkcs11:token=" TOKEN ";object=ds", &opts, &k2));
    assert_true(sign_verify_n(k2, 3));
    assert_int_equal(session_key_copies(NULL), 2);
    assert_int_equal(EVP_PKEY_eq(smki_key_public(k), smki_key_public(k2)), 1);
    smki_key_info *keys = NULL;
    size_t n = 0;
    int ds = 0;
    assert_ok(smki_key_list(&opts, TOKEN, &keys, &n));
    for (size_t i = 0; i < n; i++) ds += strcmp(keys[i].label, "ds") == 0;
    free(keys);
    assert_int_equal(ds, 1);
    char uri[SMKI_KEY_URI_MAX];
    assert_fails(smki_key_generate(&opts, TOKEN, "ds", SMKI_USAGE_DS, uri), SMKI_E_EXISTS, "'ds'");
    smki_key_free(k2);
    assert_int_equal(session_key_copies(NULL), 1);
    assert_true(sign_verify_n(k, 2)); /* the first key's copy is untouched */
    smki_key_free(k);
    assert_int_equal(session_key_copies(NULL), 0);
    assert_int_equal(f->C_GetAttributeValue(s, copy, a, 1), CKR_OBJECT_HANDLE_INVALID);
    f->C_CloseSession(s);
    /* and the key opens and signs again after its copies came and went */
    assert_ok(smki_key_open(ds_uri, &opts, &k));
    assert_true(sign_verify_n(k, 2));
    smki_key_free(k);
    assert_int_equal(session_key_copies(NULL), 0);
}

/* ECDH with a key-agreement key goes through its copy as well, and agrees with
 * software. */
static void test_token_ecdh_uses_a_session_copy(void **state)
{
    (void)state;
    smki_key *ka = NULL;
    assert_ok(smki_key_open(ka_uri, &opts, &ka));
    EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(peer);
    uint8_t z1[32], z2[32];
    size_t zlen = sizeof z2;
    assert_ok(smki_key_ecdh(ka, peer, z1));
    assert_int_equal(session_key_copies(NULL), 1);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(peer, NULL);
    assert_int_equal(EVP_PKEY_derive_init(ctx), 1);
    assert_int_equal(EVP_PKEY_derive_set_peer(ctx, smki_key_public(ka)), 1);
    assert_int_equal(EVP_PKEY_derive(ctx, z2, &zlen), 1);
    assert_memory_equal(z1, z2, 32);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    uint8_t sig[SMKI_SIG_MAX]; /* and the copy may not sign either */
    size_t len = sizeof sig;
    assert_fails(smki_key_sign(ka, MSG, sizeof MSG, SMKI_SIG_RAW, sig, &len), SMKI_E_REFUSED,
                 "CKR_KEY_FUNCTION_NOT_PERMITTED");
    smki_key_free(ka);
    assert_int_equal(session_key_copies(NULL), 0);
}

/* key_copy off, by option or by SMKI_HSM_KEY_COPY: the token object signs, nothing is
 * copied. The option wins over the environment; a bad word is refused naming it. */
static void test_key_copy_off_never_copies(void **state)
{
    (void)state;
    smki_hsm_opts off = {.pin = PIN, .key_copy = SMKI_KEY_COPY_OFF};
    smki_key *k = NULL;
    assert_ok(smki_key_open(ds_uri, &off, &k));
    assert_true(sign_verify_n(k, 5));
    assert_int_equal(session_key_copies(NULL), 0);
    smki_key_free(k);
    setenv("SMKI_HSM_KEY_COPY", "off", 1);
    assert_ok(smki_key_open(ds_uri, &opts, &k));
    assert_true(sign_verify_n(k, 3));
    assert_int_equal(session_key_copies(NULL), 0);
    smki_key_free(k);
    smki_hsm_opts on = {.pin = PIN, .key_copy = SMKI_KEY_COPY_AUTO};
    assert_ok(smki_key_open(ds_uri, &on, &k));
    assert_true(sign_verify_n(k, 1));
    assert_int_equal(session_key_copies(NULL), 1);
    smki_key_free(k);
    setenv("SMKI_HSM_KEY_COPY", "sometimes", 1);
    k = NULL;
    assert_fails(smki_key_open(ds_uri, &opts, &k), SMKI_E_USAGE, "SMKI_HSM_KEY_COPY must be auto or off");
    assert_null(k);
    unsetenv("SMKI_HSM_KEY_COPY");
    smki_hsm_opts bad = {.pin = PIN, .key_copy = 7};
    assert_fails(smki_key_open(ds_uri, &bad, &k), SMKI_E_USAGE, "key_copy");
    int mode = 0;
    assert_ok(smki_key_copy_parse("auto", "x", &mode));
    assert_int_equal(mode, SMKI_KEY_COPY_AUTO);
    assert_ok(smki_key_copy_parse("off", "x", &mode));
    assert_int_equal(mode, SMKI_KEY_COPY_OFF);
    assert_fails(smki_key_copy_parse("OFF", "smki.conf [hsm] key_copy", &mode), SMKI_E_USAGE,
                 "smki.conf [hsm] key_copy must be auto or off");
    assert_fails(smki_key_copy_parse(NULL, "key_copy", &mode), SMKI_E_USAGE, "key_copy");
}

/* A module that refuses C_CopyObject (as an HSM may), or whose copy would not keep
 * the key's protection: the key signs with the token object, from several threads,
 * every signature verified, and no copy is left. */
static void copy_refused_child(void)
{
    const char *shim = getenv("SMKI_SHIM_PATH");
    if (!shim) _exit(70);
    smki_hsm_opts o = {.module = shim, .pin = PIN};
    static const char *const refusals[] = {"0x1b" /* CKR_ACTION_PROHIBITED */, "0x10" /* CKR_ATTRIBUTE_READ_ONLY */,
                                           "0xd1" /* CKR_TEMPLATE_INCONSISTENT */,
                                           "0x54" /* CKR_FUNCTION_NOT_SUPPORTED */};
    setenv("SMKI_SHIM_FAIL", "C_CopyObject", 1);
    for (size_t r = 0; r < sizeof refusals / sizeof refusals[0]; r++) {
        setenv("SMKI_SHIM_RV", refusals[r], 1);
        smki_key *k = NULL;
        if (smki_key_open("pkcs11:token=" TOKEN ";object=ds", &o, &k) != 0) _exit(71);
        pthread_t t[3];
        many_arg a[3];
        for (int i = 0; i < 3; i++) {
            a[i] = (many_arg){k, i, 0, 0};
            if (pthread_create(&t[i], NULL, sign_twenty, &a[i]) != 0) _exit(72);
        }
        for (int i = 0; i < 3; i++) {
            pthread_join(t[i], NULL);
            if (a[i].bad || a[i].signed_ok != 20) _exit(73);
        }
        if (session_key_copies(NULL) != 0) _exit(74);
        smki_key_free(k);
    }
    unsetenv("SMKI_SHIM_FAIL");
    unsetenv("SMKI_SHIM_RV");
    setenv("SMKI_SHIM_COPY_EXTRACTABLE", "1", 1);
    smki_key *k = NULL;
    if (smki_key_open("pkcs11:token=" TOKEN ";object=ds", &o, &k) != 0) _exit(75);
    if (!sign_verify_n(k, 5)) _exit(76);
    if (session_key_copies(NULL) != 0) _exit(77); /* made, found wanting, destroyed */
    smki_key_free(k);
    unsetenv("SMKI_SHIM_COPY_EXTRACTABLE");
    if (smki_key_open("pkcs11:token=" TOKEN ";object=ds", &o, &k) != 0) _exit(78);
    if (!sign_verify_n(k, 2) || session_key_copies(NULL) != 1) _exit(79); /* the shim copies when let */
    smki_key_free(k);
    if (session_key_copies(NULL) != 0) _exit(80);
    _exit(0);
}

static void test_module_refusing_copies_signs_with_the_token_object(void **state)
{
    (void)state;
    in_child(copy_refused_child);
}

/* After fork the child never uses its parent's copy: it makes its own, signs with it
 * (every signature verified), and freeing the key in the child leaves the parent's
 * copy alone. (test_forked_child_signs_on_sessions_of_its_own, through the strict shim,
 * fails any signature with a copy the signing process did not make.) */
static void fork_copy_child(void)
{
    smki_key *k = NULL;
    if (smki_key_open(ds_uri, &opts, &k) != 0 || !sign_verify_n(k, 2) || session_key_copies(NULL) != 1) _exit(81);
    pid_t pid = fork();
    if (pid == 0) {
        /* SoftHSM's memory came along with fork, the parent's copy in it; a module
         * that forgets everything at fork shows none */
        int inherited = session_key_copies(NULL);
        pthread_t t[2];
        many_arg a[2];
        for (int i = 0; i < 2; i++) {
            a[i] = (many_arg){k, i, 0, 0};
            if (pthread_create(&t[i], NULL, sign_twenty, &a[i]) != 0) _exit(82);
        }
        for (int i = 0; i < 2; i++) {
            pthread_join(t[i], NULL);
            if (a[i].bad || a[i].signed_ok != 20) _exit(83);
        }
        if (session_key_copies(NULL) != inherited + 1) _exit(84); /* one of its own */
        smki_key_free(k);
        if (session_key_copies(NULL) != inherited) _exit(85);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 86);
    if (session_key_copies(NULL) != 1 || !sign_verify_n(k, 3)) _exit(87);
    smki_key_free(k);
    if (session_key_copies(NULL) != 0) _exit(88);
    _exit(0);
}

static void test_forked_child_signs_with_a_copy_of_its_own(void **state)
{
    (void)state;
    in_child(fork_copy_child);
}

static int shim_copies(const char *shim);

/* ---- The key opened is the key used ------------------------------------------------ */

/* Deletes every token object labelled label (the key pair) through a session of the
 * test's own and generates a new pair under the same label: another key, same name. */
static int replace_token_key(const char *label, smki_key_usage usage)
{
    p11_module *m;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    if (smki_p11_module_get(smki_softhsm_default_module(), &m) != 0 || smki_p11_find_token(m, TOKEN, &slot, NULL) != 0 ||
        smki_p11_open_session(m, slot, TOKEN, PIN, 1, &s) != 0)
        return 0;
    CK_FUNCTION_LIST *f = smki_p11_module_functions(m);
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {{CKA_LABEL, (void *)label, strlen(label)}, {CKA_TOKEN, &yes, sizeof yes}};
    CK_OBJECT_HANDLE h[8];
    CK_ULONG n = 0;
    int ok = f->C_FindObjectsInit(s, tmpl, 2) == CKR_OK && f->C_FindObjects(s, h, 8, &n) == CKR_OK;
    f->C_FindObjectsFinal(s);
    for (CK_ULONG i = 0; ok && i < n; i++) ok = f->C_DestroyObject(s, h[i]) == CKR_OK;
    f->C_CloseSession(s);
    char uri[SMKI_KEY_URI_MAX];
    return ok && n >= 2 && smki_key_generate(&opts, TOKEN, label, usage, uri) == 0;
}

static int refused_as_replaced(int rc)
{
    int ok = rc == SMKI_E_HSM && strstr(smki_error_msg(), "token '" TOKEN "'") &&
             strstr(smki_error_msg(), "is not the key this process opened (replaced under the same name?)");
    if (!ok) fprintf(stderr, "expected a refusal, got rc %d: %s\n", rc, smki_error_msg());
    return ok;
}

static int sign_refused_as_replaced(smki_key *k)
{
    uint8_t sig[SMKI_SIG_MAX];
    size_t len = sizeof sig;
    return refused_as_replaced(smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_RAW, sig, &len));
}

static void close_all_sessions(void)
{
    p11_module *m;
    CK_SLOT_ID slot;
    if (smki_p11_module_get(smki_softhsm_default_module(), &m) != 0 || smki_p11_find_token(m, TOKEN, &slot, NULL) != 0 ||
        smki_p11_module_functions(m)->C_CloseAllSessions(slot) != CKR_OK)
        _exit(99);
}

/* A key named by its label alone, replaced on the token by another key pair under the
 * same label while open: once the key is set up again (its token object gone with
 * key_copy off; every session lost with a copy; a forked child) the key refuses to
 * sign or derive, naming what happened, rather than use the other key; until then
 * the copy, which is the key opened, keeps signing. */
static void replaced_key_child(void)
{
    char uri[SMKI_KEY_URI_MAX];
    smki_hsm_opts off = {.pin = PIN, .key_copy = SMKI_KEY_COPY_OFF};
    /* a key-agreement key (proved by its public point), opened first: libp11 cannot
     * open keys after its sessions were closed under it */
    smki_key *ka = NULL;
    EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    uint8_t z[32];
    if (!peer || smki_key_generate(&opts, TOKEN, "rep-ka", SMKI_USAGE_KA, uri) != 0) _exit(101);
    if (smki_key_open("pkcs11:token=" TOKEN ";object=rep-ka", &opts, &ka) != 0 || smki_key_ecdh(ka, peer, z) != 0)
        _exit(102);
    smki_key *k = NULL;
    if (smki_key_generate(&opts, TOKEN, "rep-off", SMKI_USAGE_DS, uri) != 0) _exit(90);
    if (smki_key_open("pkcs11:token=" TOKEN ";object=rep-off", &off, &k) != 0 || !sign_verify_n(k, 2)) _exit(91);
    if (!replace_token_key("rep-off", SMKI_USAGE_DS)) _exit(92);
    if (!sign_refused_as_replaced(k) || !sign_refused_as_replaced(k)) _exit(93);
    smki_key_free(k);

    if (smki_key_generate(&opts, TOKEN, "rep-auto", SMKI_USAGE_DS, uri) != 0) _exit(94);
    if (smki_key_open("pkcs11:token=" TOKEN ";object=rep-auto", &opts, &k) != 0 || !sign_verify_n(k, 2)) _exit(95);
    if (!replace_token_key("rep-auto", SMKI_USAGE_DS)) _exit(96);
    if (!sign_verify_n(k, 2)) _exit(97); /* the copy is the key opened */
    pid_t pid = fork();
    if (pid == 0) _exit(sign_refused_as_replaced(k) ? 0 : 1); /* a child sets up its own */
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) _exit(98);
    close_all_sessions();
    if (!sign_refused_as_replaced(k) || !sign_refused_as_replaced(k)) _exit(100);
    smki_key_free(k);

    if (!replace_token_key("rep-ka", SMKI_USAGE_KA)) _exit(103);
    close_all_sessions();
    if (!refused_as_replaced(smki_key_ecdh(ka, peer, z))) _exit(104);
    smki_key_free(ka);
    EVP_PKEY_free(peer);
    _exit(0);
}

/* A key whose sessions keep being lost is set up again each time and signs on (the
 * copies went with their sessions: nothing piles up). A module that keeps answering
 * "lost" for sessions that are not: the replaced copies are kept alive for the
 * signatures that may use them, up to 8, then the key signs through libp11; every
 * signature verifies, and every copy made on the way is gone once the key is freed. */
static void many_losses_child(void)
{
    smki_key *k = NULL;
    if (smki_key_open(ds_uri, &opts, &k) != 0 || !sign_verify_n(k, 1)) _exit(105);
    for (int i = 0; i < 12; i++) {
        close_all_sessions();
        if (!sign_verify_n(k, 2) || session_key_copies(NULL) != 1) {
            fprintf(stderr, "after loss %d\n", i + 1);
            _exit(106);
        }
    }
    smki_key_free(k);
    if (session_key_copies(NULL) != 0) _exit(107);
    const char *shim = getenv("SMKI_SHIM_PATH");
    if (!shim) _exit(108);
    smki_hsm_opts o = {.module = shim, .pin = PIN};
    if (smki_key_open("pkcs11:token=" TOKEN ";object=ds", &o, &k) != 0 || !sign_verify_n(k, 1)) _exit(109);
    int before = shim_copies(shim);
    for (int i = 0; i < 9; i++) {
        setenv("SMKI_SHIM_SIGN_LOST_AT", (i & 1) ? "01" : "1", 1); /* changed: the next C_Sign */
        if (!sign_verify_n(k, 2)) {
            fprintf(stderr, "after false loss %d\n", i + 1);
            _exit(118);
        }
    }
    unsetenv("SMKI_SHIM_SIGN_LOST_AT"); /* libp11 does not try twice: no more losses for it */
    if (!sign_verify_n(k, 3)) _exit(128);
    int live = session_key_copies(NULL), made = shim_copies(shim) - before;
    if (live != 9 || made != 8) {
        fprintf(stderr, "%d copies alive, %d made\n", live, made);
        _exit(119);
    }
    smki_key_free(k);
    if (session_key_copies(NULL) != 0) _exit(129);
    _exit(0);
}

static void test_key_losing_sessions_again_and_again_signs_on(void **state)
{
    (void)state;
    in_child(many_losses_child);
}

static void test_token_key_replaced_under_its_name_is_refused_not_used(void **state)
{
    (void)state;
    in_child(replaced_key_child);
}

/* The copies the shim (SMKI_SHIM_PATH) made in this process so far. */
static int shim_copies(const char *shim)
{
    void *dl = dlopen(shim, RTLD_NOW | RTLD_NOLOAD);
    int (*count)(void) = dl ? (int (*)(void))dlsym(dl, "smki_shim_copies") : NULL;
    int n = count ? count() : -1;
    if (dl) dlclose(dl);
    return n;
}

/* One lost session (as the module answers it to one signature) while several threads
 * sign with the key's copy: the thread that saw it sets up again once, the others
 * finish on the copy they started with (not destroyed under them) and go on with the
 * new one. Every signature is made and verifies; one new copy, not one per thread;
 * the retired copy goes when the key is freed. */
static void lost_midway_child(void)
{
    const char *shim = getenv("SMKI_SHIM_PATH");
    if (!shim) _exit(110);
    smki_hsm_opts o = {.module = shim, .pin = PIN};
    smki_key *k = NULL;
    if (smki_key_open("pkcs11:token=" TOKEN ";object=ds", &o, &k) != 0 || !sign_verify_n(k, 1)) _exit(111);
    int before = shim_copies(shim);
    if (before < 1) _exit(112);
    setenv("SMKI_SHIM_SIGNINIT_DELAY_US", "300", 1);
    setenv("SMKI_SHIM_SIGN_LOST_AT", "40", 1);
    enum { N = 4 };
    pthread_t t[N];
    many_arg a[N];
    for (int i = 0; i < N; i++) {
        a[i] = (many_arg){k, i, 0, 0};
        if (pthread_create(&t[i], NULL, sign_own_messages, &a[i]) != 0) _exit(113);
    }
    int bad = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        if (a[i].bad || a[i].signed_ok != 60) {
            fprintf(stderr, "thread %d: %d bad, %d signed\n", i, a[i].bad, a[i].signed_ok);
            bad = 1;
        }
    }
    unsetenv("SMKI_SHIM_SIGNINIT_DELAY_US");
    unsetenv("SMKI_SHIM_SIGN_LOST_AT");
    int made = shim_copies(shim) - before;
    if (made < 1 || made > 2) fprintf(stderr, "%d copies made after one lost session\n", made);
    if (bad) _exit(114);
    if (made < 1 || made > 2) _exit(115);
    if (!sign_verify_n(k, 2)) _exit(116);
    smki_key_free(k);
    if (session_key_copies(NULL) != 0) _exit(117); /* the retired copy too */
    _exit(0);
}

static void test_one_lost_session_among_threads_sets_up_once(void **state)
{
    (void)state;
    in_child(lost_midway_child);
}

/* A copy that reads back right but that the module will not sign or derive with:
 * the operation is tried once more with the token object, which signs from then on,
 * and no other copy is made; a key opened while that is so finds it at set-up. */
static void copy_unusable_child(void)
{
    const char *shim = getenv("SMKI_SHIM_PATH");
    if (!shim) _exit(120);
    smki_hsm_opts o = {.module = shim, .pin = PIN};
    smki_key *k = NULL;
    if (smki_key_open("pkcs11:token=" TOKEN ";object=ds", &o, &k) != 0 || !sign_verify_n(k, 2)) _exit(121);
    int made = shim_copies(shim);
    setenv("SMKI_SHIM_COPY_UNUSABLE", "1", 1);
    if (!sign_verify_n(k, 5)) _exit(122);
    if (shim_copies(shim) != made) _exit(123);
    smki_key_free(k);
    if (smki_key_open("pkcs11:token=" TOKEN ";object=ds", &o, &k) != 0 || !sign_verify_n(k, 3)) _exit(124);
    if (session_key_copies(NULL) != 0) _exit(125); /* made, found failing, destroyed */
    smki_key_free(k);
    smki_key *ka = NULL, *peer = NULL;
    uint8_t z1[32], z2[32];
    if (smki_key_open("pkcs11:token=" TOKEN ";object=ka", &o, &ka) != 0 || smki_key_open(ds_uri, &opts, &peer) != 0)
        _exit(126);
    if (smki_key_ecdh(ka, smki_key_public(peer), z1) != 0) {
        fprintf(stderr, "ecdh: %s\n", smki_error_msg());
        _exit(127);
    }
    unsetenv("SMKI_SHIM_COPY_UNUSABLE");
    smki_key_free(ka);
    if (smki_key_open(ka_uri, &opts, &ka) != 0 || smki_key_ecdh(ka, smki_key_public(peer), z2) != 0 ||
        memcmp(z1, z2, 32) != 0)
        _exit(128);
    smki_key_free(ka);
    smki_key_free(peer);
    _exit(0);
}

static void test_copy_that_cannot_sign_gives_way_to_the_token_object(void **state)
{
    (void)state;
    in_child(copy_unusable_child);
}

/* ---- Public keys and signatures from outside ---------------------------------------- */

static uint8_t *spki_der(EVP_PKEY *pk, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(pk, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

static void test_pub_load_accepts_p256_pem_der_and_cert(void **state)
{
    (void)state;
    EVP_PKEY *pk = NULL;
    assert_ok(smki_pub_load_file(test_shared_path("vectors/gbcs/keystore/90b3d51f30010000-ds.pem"), &pk));
    uint8_t point[SMKI_POINT_LEN];
    assert_ok(smki_pub_point(pk, point));
    assert_int_equal(point[0], 0x04);
    size_t len;
    uint8_t *der = spki_der(pk, &len);
    EVP_PKEY *again = NULL;
    assert_ok(smki_pub_load(der, len, &again));
    assert_int_equal(EVP_PKEY_eq(pk, again), 1);
    OPENSSL_free(der);
    EVP_PKEY_free(pk);
    EVP_PKEY_free(again);
}

static void test_pub_load_refuses_p384_and_rsa(void **state)
{
    (void)state;
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    size_t len;
    EVP_PKEY *out = NULL;
    uint8_t *der = spki_der(p384, &len);
    assert_fails(smki_pub_load(der, len, &out), SMKI_E_REFUSED, "only P-256");
    OPENSSL_free(der);
    der = spki_der(rsa, &len);
    assert_fails(smki_pub_load(der, len, &out), SMKI_E_REFUSED, "not an EC key");
    OPENSSL_free(der);
    assert_null(out);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(rsa);
}

static void test_pub_load_refuses_compressed_and_off_curve_points(void **state)
{
    (void)state;
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    size_t len;
    uint8_t *der = spki_der(pk, &len);
    EVP_PKEY *out = NULL;
    /* The uncompressed point is the last 65 octets; nudge y off the curve. */
    der[len - 1] ^= 0x01;
    assert_fails(smki_pub_load(der, len, &out), SMKI_E_INPUT, "not on P-256");
    /* and as PEM */
    OPENSSL_free(der);
    /* The same key with a compressed point. */
    assert_int_equal(EVP_PKEY_set_utf8_string_param(pk, "point-format", "compressed"), 1);
    der = spki_der(pk, &len);
    assert_int_equal(len, 59); /* 26 header + 33 point */
    assert_fails(smki_pub_load(der, len, &out), SMKI_E_REFUSED, "compressed");
    OPENSSL_free(der);
    assert_null(out);
    EVP_PKEY_free(pk);
}

static void test_pub_load_refuses_garbage_and_trailing_data(void **state)
{
    (void)state;
    EVP_PKEY *out = NULL;
    static const uint8_t junk[] = {0x30, 0x82, 0xff, 0xff, 0x01};
    assert_fails(smki_pub_load(junk, sizeof junk, &out), SMKI_E_INPUT, NULL);
    static const char pem[] = "-----BEGIN PUBLIC KEY-----\nnot base64 at all!\n-----END PUBLIC KEY-----\n";
    assert_fails(smki_pub_load((const uint8_t *)pem, sizeof pem - 1, &out), SMKI_E_INPUT, NULL);
    assert_fails(smki_pub_load(junk, 0, &out), SMKI_E_INPUT, "empty");
    size_t len;
    uint8_t *cert = test_read_shared("vectors/gbcs/keystore/00db1234567890a0-ka.pem", &len);
    X509 *x = NULL;
    assert_ok(smki_cert_load(cert, len, &x));
    unsigned char *der = NULL;
    int dlen = i2d_X509(x, &der);
    uint8_t *longer = malloc((size_t)dlen + 1);
    memcpy(longer, der, (size_t)dlen);
    longer[dlen] = 0;
    X509 *y = NULL;
    assert_fails(smki_cert_load(longer, (size_t)dlen + 1, &y), SMKI_E_INPUT, "trailing");
    assert_ok(smki_cert_load(longer, (size_t)dlen, &y));
    X509_free(y);
    free(longer);
    OPENSSL_free(der);
    X509_free(x);
    free(cert);
    assert_null(out);
}

/* A certificate as DER from PEM: the same octets openssl's own encoding gives; refused
 * when it does not fit, and for bytes that are no certificate. */
static void test_cert_der_reencodes_pem_and_refuses_what_does_not_fit(void **state)
{
    (void)state;
    size_t len, n = 0;
    uint8_t *pem = test_read_shared("vectors/gbcs/keystore/00db1234567890a0-ka.pem", &len);
    X509 *x = NULL;
    assert_ok(smki_cert_load(pem, len, &x));
    unsigned char *want = NULL;
    int wlen = i2d_X509(x, &want);
    uint8_t out[2048];
    assert_ok(smki_cert_der(pem, len, out, sizeof out, &n));
    assert_int_equal(n, (size_t)wlen);
    assert_memory_equal(out, want, n);
    size_t again = 0;
    assert_ok(smki_cert_der(out, n, out + 1024, 1024, &again)); /* DER in, the same DER out */
    assert_int_equal(again, n);
    assert_memory_equal(out + 1024, want, n);
    assert_fails(smki_cert_der(pem, len, out, n - 1, &again), SMKI_E_INPUT, "where at most");
    static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    assert_fails(smki_cert_der(junk, sizeof junk, out, sizeof out, &again), SMKI_E_INPUT, "not a DER certificate");
    OPENSSL_free(want);
    X509_free(x);
    free(pem);
}

static void test_verify_refuses_malformed_signatures(void **state)
{
    (void)state;
    smki_key *k = NULL;
    assert_ok(smki_key_open(ds_uri, &opts, &k));
    uint8_t sig[SMKI_SIG_MAX];
    size_t len = sizeof sig;
    assert_ok(smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_DER, sig, &len));
    EVP_PKEY *pub = smki_key_public(k);
    assert_fails(smki_verify(pub, MSG, sizeof MSG, SMKI_SIG_RAW, sig, 63), SMKI_E_INPUT, "64 octets");
    assert_fails(smki_verify(pub, MSG, sizeof MSG, SMKI_SIG_DER, sig, len - 1), SMKI_E_INPUT, NULL);
    uint8_t longer[SMKI_SIG_MAX + 1];
    memcpy(longer, sig, len);
    longer[len] = 0;
    /* refused as trailing data, or as over-long when the signature was already 72 octets */
    assert_fails(smki_verify(pub, MSG, sizeof MSG, SMKI_SIG_DER, longer, len + 1), SMKI_E_INPUT, NULL);
    uint8_t zeros[64] = {0};
    assert_fails(smki_verify(pub, MSG, sizeof MSG, SMKI_SIG_RAW, zeros, 64), SMKI_E_VERIFY, NULL);
    smki_key_free(k);
}

static void test_der_signature_with_long_form_length_is_refused(void **state)
{
    (void)state;
    uint8_t raw[64], der[SMKI_SIG_MAX], ber[SMKI_SIG_MAX + 1], back[64];
    for (int i = 0; i < 64; i++) raw[i] = (uint8_t)(0x11 + i);
    size_t len = sizeof der;
    assert_ok(smki_sig_raw_to_der(raw, der, &len));
    /* The same SEQUENCE with its length in long form (30 81 44 ...): BER, not DER. */
    ber[0] = 0x30;
    ber[1] = 0x81;
    memcpy(ber + 2, der + 1, len - 1);
    assert_fails(smki_sig_der_to_raw(ber, len + 1, back), SMKI_E_INPUT, "not DER");
    assert_ok(smki_sig_der_to_raw(der, len, back));
    assert_memory_equal(raw, back, 64);
}

static void test_pub_load_does_not_read_past_unterminated_input(void **state)
{
    (void)state;
    /* PEM-looking bytes with no NUL after them (found by fuzz_pubkey). */
    static const char text[] = "\0-----BEGIN ";
    uint8_t *exact = malloc(sizeof text - 1);
    memcpy(exact, text, sizeof text - 1);
    EVP_PKEY *out = NULL;
    assert_fails(smki_pub_load(exact, sizeof text - 1, &out), SMKI_E_INPUT, NULL);
    free(exact);
}

static void test_signature_forms_round_trip(void **state)
{
    (void)state;
    uint8_t raw[64], der[SMKI_SIG_MAX], back[64];
    for (int i = 0; i < 64; i++) raw[i] = (uint8_t)(i + 1);
    raw[0] = 0x80; /* r needs a leading zero in DER */
    raw[32] = 0x00;
    raw[33] = 0x00; /* s is shorter than 32 octets */
    size_t len = sizeof der;
    assert_ok(smki_sig_raw_to_der(raw, der, &len));
    assert_ok(smki_sig_der_to_raw(der, len, back));
    assert_memory_equal(raw, back, 64);
}

/* ---- A failing device ------------------------------------------------------------------- */

static void device_error_child(void)
{
    const char *shim = getenv("SMKI_SHIM_PATH");
    if (!shim) _exit(30);
    smki_hsm_opts o = {.module = shim, .pin = PIN};
    smki_key *k = NULL;
    if (smki_key_open("pkcs11:token=" TOKEN ";object=ds", &o, &k) != 0) {
        fprintf(stderr, "shim open: %s\n", smki_error_msg());
        _exit(31);
    }
    uint8_t sig[SMKI_SIG_MAX];
    size_t len = sizeof sig;
    if (smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_RAW, sig, &len) != 0) _exit(32); /* works before the fault */
    setenv("SMKI_SHIM_FAIL", "C_Sign", 1);
    len = sizeof sig;
    int rc = smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_RAW, sig, &len);
    if (rc != SMKI_E_HSM || !strstr(smki_error_msg(), TOKEN) || !strstr(smki_error_msg(), "sign")) {
        fprintf(stderr, "device error: rc %d: %s\n", rc, smki_error_msg());
        _exit(33);
    }
    unsetenv("SMKI_SHIM_FAIL");
    len = sizeof sig;
    if (smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_RAW, sig, &len) != 0) _exit(34); /* recovers */
    /* The token gone from under an open key: reported with the token and what failed. */
    setenv("SMKI_SHIM_FAIL", "C_SignInit", 1);
    setenv("SMKI_SHIM_RV", "0x32", 1); /* CKR_DEVICE_REMOVED */
    len = sizeof sig;
    rc = smki_key_sign(k, MSG, sizeof MSG, SMKI_SIG_DER, sig, &len);
    if (rc != SMKI_E_HSM || !strstr(smki_error_msg(), "CKR_DEVICE_REMOVED") || !strstr(smki_error_msg(), TOKEN) ||
        !strstr(smki_error_msg(), "signing")) {
        fprintf(stderr, "device removed: rc %d: %s\n", rc, smki_error_msg());
        _exit(36);
    }
    unsetenv("SMKI_SHIM_RV");
    smki_key *ka = NULL;
    if (smki_key_open("pkcs11:token=" TOKEN ";object=ka", &o, &ka) != 0) _exit(37);
    setenv("SMKI_SHIM_FAIL", "C_DeriveKey", 1);
    uint8_t z[32];
    rc = smki_key_ecdh(ka, smki_key_public(k), z);
    if (rc != SMKI_E_HSM || !strstr(smki_error_msg(), "CKR_DEVICE_ERROR") || !strstr(smki_error_msg(), TOKEN) ||
        !strstr(smki_error_msg(), "ECDH")) {
        fprintf(stderr, "ecdh device error: rc %d: %s\n", rc, smki_error_msg());
        _exit(38);
    }
    unsetenv("SMKI_SHIM_FAIL");
    if (smki_key_ecdh(ka, smki_key_public(k), z) != 0) _exit(39); /* recovers */
    smki_key_free(ka);
    setenv("SMKI_SHIM_FAIL", "C_GenerateKeyPair", 1);
    char uri[SMKI_KEY_URI_MAX];
    rc = smki_key_generate(&o, TOKEN, "faulty", SMKI_USAGE_DS, uri);
    if (rc != SMKI_E_HSM || !strstr(smki_error_msg(), "CKR_DEVICE_ERROR") || !strstr(smki_error_msg(), TOKEN)) {
        fprintf(stderr, "keygen device error: rc %d: %s\n", rc, smki_error_msg());
        _exit(35);
    }
    smki_key_free(k);
    _exit(0);
}

static void test_device_error_is_reported_not_fatal(void **state)
{
    (void)state;
    in_child(device_error_child);
}

static void test_uri_round_trip_and_escapes(void **state)
{
    (void)state;
    uint8_t id[3] = {0x00, 0xff, 0x2f};
    char uri[SMKI_KEY_URI_MAX];
    assert_ok(smki_p11_uri_format("my token", "a;b=c", id, 3, uri, sizeof uri));
    assert_string_equal(uri, "pkcs11:token=my%20token;object=a%3Bb%3Dc;id=%00%FF%2F;type=private");
    smki_p11_uri u;
    assert_ok(smki_p11_uri_parse(uri, &u));
    assert_string_equal(u.token, "my token");
    assert_string_equal(u.object, "a;b=c");
    assert_int_equal(u.id_len, 3);
    assert_memory_equal(u.id, id, 3);
    assert_fails(smki_p11_uri_parse("pkcs11:token=t;object=%4", &u), SMKI_E_USAGE, "truncated");
    assert_fails(smki_p11_uri_parse("pkcs11:token=t;object=%zz", &u), SMKI_E_USAGE, "bad %-escape");
    assert_fails(smki_p11_uri_parse("pkcs11:token=t;object=a%00b", &u), SMKI_E_USAGE, "NUL");
    assert_fails(smki_p11_uri_parse("pkcs11:token=t;colour=red;object=a", &u), SMKI_E_USAGE, "colour");
    assert_fails(smki_p11_uri_parse("pkcs11:token=t;object=a;object=b", &u), SMKI_E_USAGE, "twice");
    assert_fails(smki_p11_uri_parse("pkcs11:token=t", &u), SMKI_E_USAGE, "names no key");
    assert_fails(smki_p11_uri_parse("pkcs12:token=t;object=a", &u), SMKI_E_USAGE, "pkcs11:");
    assert_fails(smki_p11_uri_parse("pkcs11:token=t;object", &u), SMKI_E_USAGE, "without '='");
    assert_ok(smki_p11_uri_parse("pkcs11:token=t;object=a?module-path=/x.so&pin-source=file:/p", &u));
    assert_string_equal(u.module_path, "/x.so");
    assert_string_equal(u.pin_source, "file:/p");
}


/* ---- Notes, removal, labels, and SoftHSM's token file (issue 15) ---------------------------- */

typedef struct {
    size_t n;
    uint8_t last[64];
    size_t last_len;
} notes_seen;

static int note_seen(const uint8_t *val, size_t len, void *arg)
{
    notes_seen *x = arg;
    x->n++;
    x->last_len = len < sizeof x->last ? len : sizeof x->last;
    memcpy(x->last, val, x->last_len);
    return 0;
}

static void test_token_note_is_replaced_and_needs_the_pin(void **state)
{
    (void)state;
    smki_key *k = NULL;
    assert_ok(smki_key_open(ds_uri, &opts, &k));
    notes_seen x = {0};
    assert_int_equal(smki_key_note_each(k, "note-t", note_seen, &x), SMKI_E_NOTFOUND);
    smki_error_clear();
    assert_ok(smki_key_note_put(k, "note-t", (const uint8_t *)"first", 5));
    assert_ok(smki_key_note_put(k, "note-t", (const uint8_t *)"second", 6));
    assert_ok(smki_key_note_each(k, "note-t", note_seen, &x));
    assert_int_equal(x.n, 1); /* replaced: the old one destroyed */
    assert_memory_equal(x.last, "second", 6);
    smki_key_free(k);
    /* a private object: without the PIN nothing is read */
    smki_hsm_opts nopin = {.module = NULL, .pin = NULL};
    assert_fails(smki_token_note_each(&nopin, ds_uri, "note-t", note_seen, &x), SMKI_E_USAGE, "give the PIN");
}

static void test_file_key_note_is_a_file_beside_it(void **state)
{
    (void)state;
    char ref[1300];
    snprintf(ref, sizeof ref, "file:%s", make_key_file("noted", "P-256"));
    smki_key *k = NULL;
    assert_ok(smki_key_open(ref, NULL, &k));
    assert_fails(smki_key_note_put(k, "Bad/Name", (const uint8_t *)"x", 1), SMKI_E_USAGE, "lowercase");
    assert_ok(smki_key_note_put(k, "note-f", (const uint8_t *)"abc", 3));
    notes_seen x = {0};
    assert_ok(smki_key_note_each(k, "note-f", note_seen, &x));
    assert_int_equal(x.n, 1);
    assert_memory_equal(x.last, "abc", 3);
    char path[1400];
    snprintf(path, sizeof path, "%s.note-f", ref + 5);
    assert_int_equal(access(path, F_OK), 0);
    smki_key_free(k);
}

static void test_key_destroy_needs_the_so_pin_and_label_used_sees_it_go(void **state)
{
    (void)state;
    char uri[SMKI_KEY_URI_MAX];
    assert_ok(smki_key_generate(&opts, TOKEN, "doomed", SMKI_USAGE_DS, uri));
    int used = 0;
    assert_ok(smki_key_label_used(&opts, TOKEN, "doomed", &used));
    assert_true(used);
    assert_fails(smki_key_destroy(&opts, TOKEN, "doomed", NULL), SMKI_E_USAGE, "SO PIN");
    assert_fails(smki_key_destroy(&opts, TOKEN, "doomed", "wrong-so-pin"), SMKI_E_REFUSED, "CKR_PIN_INCORRECT");
    assert_ok(smki_key_label_used(&opts, TOKEN, "doomed", &used));
    assert_true(used);
    assert_ok(smki_key_destroy(&opts, TOKEN, "doomed", SO_PIN));
    assert_ok(smki_key_label_used(&opts, TOKEN, "doomed", &used));
    assert_false(used);
    assert_fails(smki_key_destroy(&opts, TOKEN, "doomed", SO_PIN), SMKI_E_NOTFOUND, "no key 'doomed'");
}

/* SoftHSM rewrites token.object at each login; emptied by a kill there, it is put back
 * from smki's copy the next time the home's SoftHSM is prepared. */
static void test_softhsm_token_file_emptied_by_a_kill_is_put_back(void **state)
{
    (void)state;
    char hsm[1100], cmd[1400];
    snprintf(hsm, sizeof hsm, "%s/hsm", dir);
    assert_ok(smki_softhsm_prepare(hsm)); /* takes the copy */
    snprintf(cmd, sizeof cmd, "ls %s/tokens/*/token.object.smki >/dev/null 2>&1", hsm);
    assert_int_equal(system(cmd), 0);
    /* empty every token.object, as a kill in the middle of SoftHSM's rewrite does */
    snprintf(cmd, sizeof cmd, "for f in %s/tokens/*/token.object; do : > \"$f\"; done", hsm);
    assert_int_equal(system(cmd), 0);
    assert_ok(smki_softhsm_prepare(hsm));
    snprintf(cmd, sizeof cmd, "for f in %s/tokens/*/token.object; do test -s \"$f\" || exit 1; done", hsm);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_init_is_idempotent),
        cmocka_unit_test(test_token_find_names_missing_token),
        cmocka_unit_test(test_key_generate_refuses_existing_label),
        cmocka_unit_test(test_key_generate_needs_pin),
        cmocka_unit_test(test_token_key_value_cannot_be_read),
        cmocka_unit_test(test_key_list_shows_both_usages),
        cmocka_unit_test(test_token_administration_works_after_last_key_is_freed),
        cmocka_unit_test(test_token_key_id_is_gbcs_key_identifier),
        cmocka_unit_test(test_token_key_signs_raw_and_der),
        cmocka_unit_test(test_file_key_signs_raw_and_der),
        cmocka_unit_test(test_file_key_refuses_other_curves_and_rsa),
        cmocka_unit_test(test_key_open_refuses_unknown_references),
        cmocka_unit_test(test_bare_key_name_of_a_file_asks_for_file_prefix),
        cmocka_unit_test(test_wrong_pin_fails_cleanly),
        cmocka_unit_test(test_token_key_survives_fork),
        cmocka_unit_test(test_token_key_signs_from_several_threads),
        cmocka_unit_test(test_file_key_signs_from_several_threads),
        cmocka_unit_test(test_token_key_signs_from_more_threads_than_pooled_sessions),
        cmocka_unit_test(test_ka_token_key_refuses_to_sign),
        cmocka_unit_test(test_forked_child_signs_on_sessions_of_its_own),
        cmocka_unit_test(test_token_signing_recovers_from_lost_sessions_and_logout),
        cmocka_unit_test(test_token_signing_reports_a_changed_pin_once),
        cmocka_unit_test(test_raw_to_der_matches_openssl),
        cmocka_unit_test(test_token_ecdh_agrees_with_software),
        cmocka_unit_test(test_ds_token_key_refuses_ecdh),
        cmocka_unit_test(test_sign_once_ka_key_signs_at_birth_then_only_derives),
        cmocka_unit_test(test_sign_once_ka_key_is_destroyed_when_its_signer_fails),
        cmocka_unit_test(test_pub_load_accepts_p256_pem_der_and_cert),
        cmocka_unit_test(test_pub_load_refuses_p384_and_rsa),
        cmocka_unit_test(test_pub_load_refuses_compressed_and_off_curve_points),
        cmocka_unit_test(test_pub_load_refuses_garbage_and_trailing_data),
        cmocka_unit_test(test_cert_der_reencodes_pem_and_refuses_what_does_not_fit),
        cmocka_unit_test(test_verify_refuses_malformed_signatures),
        cmocka_unit_test(test_signature_forms_round_trip),
        cmocka_unit_test(test_der_signature_with_long_form_length_is_refused),
        cmocka_unit_test(test_pub_load_does_not_read_past_unterminated_input),
        cmocka_unit_test(test_device_error_is_reported_not_fatal),
        cmocka_unit_test(test_uri_round_trip_and_escapes),
        cmocka_unit_test(test_token_key_signs_with_a_session_copy_destroyed_at_free),
        cmocka_unit_test(test_token_ecdh_uses_a_session_copy),
        cmocka_unit_test(test_key_copy_off_never_copies),
        cmocka_unit_test(test_module_refusing_copies_signs_with_the_token_object),
        cmocka_unit_test(test_forked_child_signs_with_a_copy_of_its_own),
        cmocka_unit_test(test_token_key_replaced_under_its_name_is_refused_not_used),
        cmocka_unit_test(test_one_lost_session_among_threads_sets_up_once),
        cmocka_unit_test(test_key_losing_sessions_again_and_again_signs_on),
        cmocka_unit_test(test_copy_that_cannot_sign_gives_way_to_the_token_object),
        cmocka_unit_test(test_token_note_is_replaced_and_needs_the_pin),
        cmocka_unit_test(test_file_key_note_is_a_file_beside_it),
        cmocka_unit_test(test_key_destroy_needs_the_so_pin_and_label_used_sees_it_go),
        cmocka_unit_test(test_softhsm_token_file_emptied_by_a_kill_is_put_back),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
