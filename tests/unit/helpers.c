/* Shared helpers for the cmocka unit tests. */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <libpq-fe.h>

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

smki_key *test_open_file_key(const char *path)
{
    char ref[4200];
    snprintf(ref, sizeof ref, "file:%s", path);
    smki_key *k = NULL;
    assert_ok(smki_key_open(ref, NULL, &k));
    return k;
}

smki_key *test_new_file_key(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.pem", dir, name);
    test_write_ec_key(path, "P-256");
    return test_open_file_key(path);
}

smki_csr *test_ku_csr(X509_REQ *req, EVP_PKEY *k, const char *key_usage)
{
    assert_non_null(req);
    assert_int_equal(X509_REQ_set_pubkey(req, k), 1);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, (char *)key_usage);
    assert_non_null(e);
    sk_X509_EXTENSION_push(exts, e);
    assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    assert_true(X509_REQ_sign(req, k, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    smki_csr *c = NULL;
    assert_ok(smki_csr_parse(der, (size_t)n, &c));
    OPENSSL_free(der);
    X509_REQ_free(req);
    return c;
}

smki_conf *test_conf(const char *text)
{
    smki_conf *c = NULL;
    assert_ok(smki_conf_parse((const uint8_t *)text, strlen(text), "smki.conf", &c));
    return c;
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

/* ---- The PostgreSQL runs (ctest label postgresql) ------------------------------------
 * With SMKI_TEST_PG_FILE naming the throwaway cluster's conninfo (tests/pg/cluster.sh),
 * every store a test opens by folder is opened on that cluster instead, in a schema of
 * its own named after the folder. The schema is made afresh the first time a folder is
 * opened (a marker file in the folder remembers it), so a test that clears its folder
 * gets an empty store, as it does under LMDB. The unit tests are linked with
 * --wrap=smki_store_open, which sends every open, the library's own too, here. */

int __real_smki_store_open(const char *dir, const smki_store_opts *opts, smki_store **out);
/* The linker sends every smki_store_open here (-Wl,--wrap=smki_store_open). */
int __wrap_smki_store_open(const char *dir, const smki_store_opts *opts, smki_store **out);

const char *test_pg_conninfo(void)
{
    static char conninfo[1024];
    static int loaded;
    if (loaded) return conninfo[0] ? conninfo : NULL;
    loaded = 1;
    const char *file = getenv("SMKI_TEST_PG_FILE");
    if (!file || !*file) return NULL;
    FILE *f = fopen(file, "r");
    if (!f) fail_msg("SMKI_TEST_PG_FILE %s: %s (is the pg_cluster fixture running?)", file, strerror(errno));
    char line[1024];
    while (fgets(line, sizeof line, f))
        if (line[0] != '#') snprintf(conninfo, sizeof conninfo, "%.*s", (int)strcspn(line, "\n"), line);
    fclose(f);
    if (!conninfo[0]) fail_msg("SMKI_TEST_PG_FILE %s holds no conninfo", file);
    return conninfo;
}

int test_engine_is_pg(void) { return test_pg_conninfo() != NULL; }

static void pg_fresh_schema(const char *conninfo, const char *schema)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) fail_msg("test cluster %s: %s", conninfo, PQerrorMessage(c));
    char sql[200];
    snprintf(sql, sizeof sql, "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s",
             schema, schema);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("test cluster: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

int test_pg_location(const char *dir, char *buf, size_t cap)
{
    const char *conninfo = test_pg_conninfo();
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a of the folder's path */
    for (const char *p = dir; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    char schema[32];
    snprintf(schema, sizeof schema, "t%016llx", (unsigned long long)h);
    char marker[1200];
    snprintf(marker, sizeof marker, "%s/pg-schema", dir);
    struct stat st;
    if (stat(marker, &st) != 0) {
        pg_fresh_schema(conninfo, schema);
        FILE *f = fopen(marker, "w");
        if (!f) return SMKI_FAIL(SMKI_E_IO, "cannot write %s: %s", marker, strerror(errno));
        fprintf(f, "%s\n", schema);
        fclose(f);
    }
    int n = snprintf(buf, cap, "%s%s options='-c search_path=%s'", SMKI_STORE_PG_PREFIX, conninfo, schema);
    ENSURE(n > 0 && (size_t)n < cap, SMKI_E_USAGE, "test store location too long");
    return 0;
}

int __wrap_smki_store_open(const char *dir, const smki_store_opts *opts, smki_store **out)
{
    if (!test_engine_is_pg() || !dir || strncmp(dir, SMKI_STORE_PG_PREFIX, strlen(SMKI_STORE_PG_PREFIX)) == 0)
        return __real_smki_store_open(dir, opts, out);
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (opts && opts->read_only) return __real_smki_store_open(dir, opts, out); /* its NOTFOUND */
        GUARD(smki_mkdirs(dir, 0700));
    }
    char location[2048];
    GUARD(test_pg_location(dir, location, sizeof location));
    return __real_smki_store_open(location, opts, out);
}

X509_EXTENSION *test_device_san(const uint8_t eui[8])
{
    /* otherName hardwareModuleName (1.3.6.1.5.5.7.8.4): the GBCS device type OID and the
     * Device ID as its serial */
    uint8_t san[] = {0x30, 0x29, 0xa0, 0x27, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08,
                     0x04, 0xa0, 0x1b, 0x30, 0x19, 0x06, 0x0d, 0x2a, 0x86, 0x3a, 0x00, 0x01, 0x84,
                     0x8f, 0xb9, 0x0f, 0x01, 0x02, 0x02, 0x01, 0x04, 0x08, 0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(san + sizeof san - 8, eui, 8);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    assert_non_null(os);
    assert_int_equal(ASN1_OCTET_STRING_set(os, san, sizeof san), 1);
    X509_EXTENSION *e = X509_EXTENSION_create_by_NID(NULL, NID_subject_alt_name, 1, os);
    assert_non_null(e);
    ASN1_OCTET_STRING_free(os);
    return e;
}

size_t test_device_csr_der(unsigned ku, const uint8_t *hw_eui, uint8_t *out, size_t cap)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509_REQ *req = X509_REQ_new();
    assert_int_equal(X509_REQ_set_version(req, 0), 1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    ASN1_BIT_STRING_set_bit(bits, ku == SMKI_KU_DIGITAL_SIGNATURE ? 0 : 4, 1);
    sk_X509_EXTENSION_push(exts, X509V3_EXT_i2d(NID_key_usage, 1, bits));
    ASN1_BIT_STRING_free(bits);
    if (hw_eui) sk_X509_EXTENSION_push(exts, test_device_san(hw_eui));
    assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    assert_true(n > 0 && (size_t)n <= cap);
    memcpy(out, der, (size_t)n);
    OPENSSL_free(der);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return (size_t)n;
}
