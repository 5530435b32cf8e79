/* Shared helpers for the cmocka unit tests: fresh temporary folders, the shared
 * vectors, and assertions that show smki's error message when they fail. */
#ifndef SMKI_TEST_HELPERS_H
#define SMKI_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/base.h"
#include "store/store.h"
#include "ca/ca.h"

/* A new empty folder under the build's test-tmp, unique to this process and name. */
const char *test_tmpdir(const char *name);
/* Path of a file under ../shared (the vectors), in a static buffer. */
const char *test_shared_path(const char *rel);
/* Whole file under ../shared; fails the test if it cannot be read. Caller frees. */
uint8_t *test_read_shared(const char *rel, size_t *len);

/* A software EC private key (curve e.g. "P-256") as PEM at path; fails the test if it cannot. */
void test_write_ec_key(const char *path, const char *curve);
/* The software key at path, opened as file:<path>; fails the test if it cannot. Caller frees. */
smki_key *test_open_file_key(const char *path);
/* A new P-256 key written to <dir>/<name>.pem and opened; fails the test if it cannot. Caller frees. */
smki_key *test_new_file_key(const char *dir, const char *name);
/* req (its subject set or not) completed into a CSR: k's public key, the keyUsage
 * extension (OpenSSL's text, e.g. "critical,digitalSignature"), signed by k with SHA-256,
 * parsed by smki. Frees req; fails the test if any step does. Caller frees the CSR. */
smki_csr *test_ku_csr(X509_REQ *req, EVP_PKEY *k, const char *key_usage);
/* A P-256 CSR's DER at out (cap octets) with keyUsage ku (SMKI_KU_DIGITAL_SIGNATURE or
 * key agreement) and, when hw_eui is given, the hardwareModuleName of that Device ID
 * (8 octets): a device CSR. Fails the test if any step does; returns its length. */
size_t test_device_csr_der(unsigned ku, const uint8_t *hw_eui, uint8_t *out, size_t cap);
/* The critical subjectAltName of a device CSR: a hardwareModuleName naming the Device ID
 * eui (8 octets). Fails the test if OpenSSL cannot make it; the caller owns it. */
X509_EXTENSION *test_device_san(const uint8_t eui[8]);
/* text parsed as the file "smki.conf" (the name refusals quote); fails the test if it
 * does not parse. Caller frees with smki_conf_free. */
smki_conf *test_conf(const char *text);
/* A ceremony configuration [ca.<env>] that adopts software CA keys (no token): one
 * P-256 key per CA kind at <dir>/<env>-<kind>.pem, made unless it is there, plus the
 * extra lines (NULL: none) before the section. Caller frees with smki_conf_free. */
smki_conf *test_software_ca_conf(const char *dir, const char *env, const char *extra);
/* The test hierarchy with those software keys: the store at <dir>/store opened into
 * *store and *db, and 'ca init --env test' run with test_software_ca_conf(dir, "test",
 * extra). Returns smki's code (0 or the failure, message in smki_error_msg()). */
int test_software_hierarchy(const char *dir, const char *extra, smki_store **store, smki_ca_db *db);

void test_check_ok(int rc, const char *expr, const char *file, int line);
void test_check_fails(int rc, int want, const char *needle, const char *expr, const char *file, int line);

/* The call succeeds (prints smki's message when it does not). */
#define assert_ok(expr) test_check_ok((expr), #expr, __FILE__, __LINE__)
/* The call fails with `code` and a message containing `needle` (NULL: any message). */
#define assert_fails(expr, code, needle) test_check_fails((expr), (code), (needle), #expr, __FILE__, __LINE__)

/* How many entries db holds in store s, read in a transaction of its own; fails the test
 * on a store error. */
size_t test_store_count(smki_store *s, smki_db db);

/* The PostgreSQL runs (SMKI_TEST_PG_FILE set by the ctest fixture): the cluster's
 * conninfo (NULL under LMDB), whether this run is one, and the store location a
 * folder maps to (its own schema, made afresh on the folder's first use). */
const char *test_pg_conninfo(void);
int test_engine_is_pg(void);
int test_pg_location(const char *dir, char *buf, size_t cap);
/* For a test of LMDB's own behaviour (map, files, reader slots): skipped on PostgreSQL. */
#define TEST_LMDB_ONLY()                    \
    do {                                    \
        if (test_engine_is_pg()) skip();    \
    } while (0)

#endif
