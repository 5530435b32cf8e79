/* Shared helpers for the cmocka unit tests. */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#ifndef SMKI_TEST_TMP
#define SMKI_TEST_TMP "/tmp/smki-test"
#endif
#ifndef SMKI_SHARED_DIR
#define SMKI_SHARED_DIR "../shared"
#endif

const char *test_tmpdir(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s.%ld", SMKI_TEST_TMP, name, (long)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fail_msg("cannot clear %s", path);
    if (smki_mkdirs(path, 0700) != 0) fail_msg("cannot create %s: %s", path, smki_error_msg());
    return path;
}

const char *test_shared_path(const char *rel)
{
    static char path[1024];
    const char *env = getenv("SMKI_SHARED");
    snprintf(path, sizeof path, "%s/%s", env && *env ? env : SMKI_SHARED_DIR, rel);
    return path;
}

uint8_t *test_read_shared(const char *rel, size_t *len)
{
    uint8_t *buf = NULL;
    const char *path = test_shared_path(rel);
    if (smki_file_read(path, 64u << 20, &buf, len) != 0) fail_msg("cannot read vector %s: %s", path, smki_error_msg());
    return buf;
}

void test_check_ok(int rc, const char *expr, const char *file, int line)
{
    if (rc < 0) {
        print_error("%s:%d: %s failed (%s): %s [%s]\n", file, line, expr, smki_error_name(rc), smki_error_msg(),
                    smki_error_origin());
        _fail(file, line);
    }
}

void test_check_fails(int rc, int want, const char *needle, const char *expr, const char *file, int line)
{
    if (rc >= 0) {
        print_error("%s:%d: %s succeeded; expected %s\n", file, line, expr, smki_error_name(want));
        _fail(file, line);
    }
    if (rc != want) {
        print_error("%s:%d: %s failed with %s, expected %s: %s\n", file, line, expr, smki_error_name(rc),
                    smki_error_name(want), smki_error_msg());
        _fail(file, line);
    }
    if (needle && !strstr(smki_error_msg(), needle)) {
        print_error("%s:%d: %s: message \"%s\" lacks \"%s\"\n", file, line, expr, smki_error_msg(), needle);
        _fail(file, line);
    }
}

void test_write_ec_key(const char *path, const char *curve)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    assert_non_null(pk);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    EVP_PKEY_free(pk);
}

smki_conf *test_software_ca_conf(const char *dir, const char *env, const char *extra)
{
    static const char *const KINDS[] = {"smki_root", "smki_oca", "smki_dca", "dccki_root", "dccki_ica"};
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text, "%s\n[ca.%s]\n", extra ? extra : "", env);
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s-%s.pem", dir, env, KINDS[i]);
        struct stat st;
        if (stat(path, &st) != 0) test_write_ec_key(path, "P-256");
        n += (size_t)snprintf(text + n, sizeof text - n, "%s_key = file:%s\n", KINDS[i], path);
    }
    smki_conf *c = NULL;
    assert_ok(smki_conf_parse((const uint8_t *)text, n, "test.conf", &c));
    return c;
}

int test_software_hierarchy(const char *dir, const char *extra, smki_store **store, smki_ca_db *db)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/store", dir);
    GUARD(smki_store_open(path, NULL, store));
    GUARD(smki_ca_db_open(*store, db));
    smki_conf *conf = test_software_ca_conf(dir, "test", extra);
    smki_ca_init_opts o = {NULL, dir, 0, NULL, NULL};
    smki_ca_init_report rep;
    int rc = smki_ca_init(db, "test", conf, &o, &rep);
    smki_conf_free(conf);
    return rc;
}

typedef struct {
    smki_db db;
    size_t n;
} count_run;

static int count_txn(smki_txn *t, void *arg)
{
    count_run *c = arg;
    return smki_txn_count(t, c->db, &c->n);
}

size_t test_store_count(smki_store *s, smki_db db)
{
    count_run c = {db, 0};
    assert_ok(smki_store_read(s, count_txn, &c));
    return c.n;
}
