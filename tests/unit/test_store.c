/* Unit tests for store: opening and the schema, records and scans, map growth,
 * group commits, threads and processes sharing a store, and a writer killed
 * mid-batch (tests/helpers/store_crash_child) losing nothing it reported. */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <lmdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/helpers/store_crash.h"

/* ---- Helpers ---------------------------------------------------------------------- */

static char *fresh_dir(const char *name)
{
    char *dir = strdup(test_tmpdir(name));
    assert_non_null(dir);
    return dir;
}

static smki_store *open_store(const char *dir, size_t initial_map)
{
    smki_store_opts opts = {.initial_map = initial_map};
    smki_store *s = NULL;
    assert_ok(smki_store_open(dir, &opts, &s));
    return s;
}

static smki_store *open_read_only(const char *dir)
{
    smki_store_opts opts = {.read_only = 1};
    smki_store *s = NULL;
    assert_ok(smki_store_open(dir, &opts, &s));
    return s;
}

static smki_db db_of(smki_store *s, const char *name, unsigned flags)
{
    smki_db db = 0;
    assert_ok(smki_store_db(s, name, flags, &db));
    return db;
}

typedef struct {
    smki_db db;
    const char *key, *val;
    unsigned flags;
    char out[256];
    size_t count;
} kv_arg;

static int put_fn(smki_txn *t, void *arg)
{
    kv_arg *a = arg;
    return smki_txn_put(t, a->db, a->key, strlen(a->key), a->val, strlen(a->val), a->flags);
}

static int get_fn(smki_txn *t, void *arg)
{
    kv_arg *a = arg;
    const void *val;
    size_t vlen;
    GUARD(smki_txn_get(t, a->db, a->key, strlen(a->key), &val, &vlen));
    if (vlen >= sizeof a->out) return SMKI_FAIL(SMKI_E_INTERNAL, "test value too long");
    memcpy(a->out, val, vlen);
    a->out[vlen] = '\0';
    return 0;
}

static int del_fn(smki_txn *t, void *arg)
{
    kv_arg *a = arg;
    return smki_txn_del(t, a->db, a->key, strlen(a->key));
}

static int count_fn(smki_txn *t, void *arg)
{
    kv_arg *a = arg;
    return smki_txn_count(t, a->db, &a->count);
}

static int put_kv(smki_store *s, smki_db db, const char *key, const char *val, unsigned flags)
{
    kv_arg a = {.db = db, .key = key, .val = val, .flags = flags};
    return smki_store_write(s, put_fn, &a);
}

/* The value under key, in a static buffer; fails the test if absent. */
static const char *get_kv(smki_store *s, smki_db db, const char *key)
{
    static kv_arg a;
    a = (kv_arg){.db = db, .key = key};
    assert_ok(smki_store_read(s, get_fn, &a));
    return a.out;
}

static int get_status(smki_store *s, smki_db db, const char *key)
{
    kv_arg a = {.db = db, .key = key};
    return smki_store_read(s, get_fn, &a);
}

static size_t count_of(smki_store *s, smki_db db)
{
    kv_arg a = {.db = db};
    assert_ok(smki_store_read(s, count_fn, &a));
    return a.count;
}

/* The PostgreSQL run's raw access: a session in the folder's schema. */
static PGconn *raw_pg(const char *dir)
{
    char location[2048];
    assert_ok(test_pg_location(dir, location, sizeof location));
    PGconn *c = PQconnectdb(location + strlen(SMKI_STORE_PG_PREFIX));
    if (PQstatus(c) != CONNECTION_OK) fail_msg("raw session: %s", PQerrorMessage(c));
    return c;
}

static void raw_pg_exec(PGconn *c, const char *sql, int n, const void *k, size_t kl, const void *v, size_t vl)
{
    const char *vals[2] = {k, v};
    int lens[2] = {(int)kl, (int)vl}, fmts[2] = {1, 1};
    PGresult *r = PQexecParams(c, sql, n, NULL, vals, lens, fmts, 1);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail_msg("raw %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/* Raw LMDB (or SQL in the PostgreSQL run), for planting what smki itself never
 * writes. The store must be closed. */
static void raw_put(const char *dir, const char *db_name, const void *key, size_t klen, const void *val, size_t vlen)
{
    if (test_engine_is_pg()) {
        PGconn *c = raw_pg(dir);
        char sql[400];
        raw_pg_exec(c, "CREATE TABLE IF NOT EXISTS smki_dbs (name text PRIMARY KEY, dupsort boolean NOT NULL)", 0,
                    NULL, 0, NULL, 0);
        snprintf(sql, sizeof sql,
                 "CREATE TABLE IF NOT EXISTS \"kv_%s\" (k bytea NOT NULL, v bytea NOT NULL, PRIMARY KEY (k))",
                 db_name);
        raw_pg_exec(c, sql, 0, NULL, 0, NULL, 0);
        snprintf(sql, sizeof sql, "INSERT INTO smki_dbs VALUES ('%s', false) ON CONFLICT DO NOTHING", db_name);
        raw_pg_exec(c, sql, 0, NULL, 0, NULL, 0);
        snprintf(sql, sizeof sql,
                 "INSERT INTO \"kv_%s\" (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                 db_name);
        raw_pg_exec(c, sql, 2, key, klen, val, vlen);
        PQfinish(c);
        return;
    }
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db_name, MDB_CREATE, &dbi), 0);
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void raw_get(const char *dir, const char *db_name, const char *key, uint8_t *out, size_t *len)
{
    if (test_engine_is_pg()) {
        PGconn *c = raw_pg(dir);
        char sql[200];
        snprintf(sql, sizeof sql, "SELECT v FROM \"kv_%s\" WHERE k = $1", db_name);
        const char *vals[1] = {key};
        int lens[1] = {(int)strlen(key)}, fmts[1] = {1};
        PGresult *r = PQexecParams(c, sql, 1, NULL, vals, lens, fmts, 1);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        assert_int_equal(PQntuples(r), 1);
        *len = (size_t)PQgetlength(r, 0, 0);
        memcpy(out, PQgetvalue(r, 0, 0), *len);
        PQclear(r);
        PQfinish(c);
        return;
    }
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db_name, 0, &dbi), 0);
    MDB_val k = {strlen(key), (void *)key}, v;
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    memcpy(out, v.mv_data, v.mv_size);
    *len = v.mv_size;
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

/* Reader slots that name dead processes, as LMDB sees them with nobody else open. */
static int raw_dead_readers(const char *dir)
{
    MDB_env *env;
    int dead = -1;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
    assert_int_equal(mdb_reader_check(env, &dead), 0);
    mdb_env_close(env);
    return dead;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Opening and the schema ------------------------------------------------------------ */

static void test_open_creates_private_store_that_keeps_data_when_reopened(void **state)
{
    (void)state;
    char *top = fresh_dir("store_reopen");
    char dir[1100], data[1200];
    snprintf(dir, sizeof dir, "%s/var/store", top);
    snprintf(data, sizeof data, "%s/data.mdb", dir);

    smki_store *s = open_store(dir, 0);
    if (!test_engine_is_pg()) {
        assert_string_equal(smki_store_path(s), dir);
        assert_true(smki_store_map_size(s) >= ((size_t)64 << 20));
    } else {
        assert_non_null(strstr(smki_store_path(s), SMKI_STORE_PG_PREFIX));
        assert_int_equal(smki_store_map_size(s), 0);
    }
    assert_ok(put_kv(s, db_of(s, "certs", 0), "serial-1", "cert one", 0));
    smki_store_close(s);

    struct stat st;
    if (!test_engine_is_pg()) {
        assert_int_equal(stat(dir, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);
        assert_int_equal(stat(data, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }

    s = open_store(dir, 0);
    assert_string_equal(get_kv(s, db_of(s, "certs", 0), "serial-1"), "cert one");
    smki_store_close(s);
    free(top);
}

static void test_open_writes_schema_version_big_endian(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_schema");
    smki_store *s = open_store(dir, 0);
    assert_int_equal(smki_store_schema(s), SMKI_STORE_SCHEMA);
    smki_store_close(s);

    uint8_t v[16];
    size_t len = 0;
    raw_get(dir, "meta", "schema", v, &len);
    assert_int_equal(len, 4);
    assert_int_equal(v[0], 0);
    assert_int_equal(v[1], 0);
    assert_int_equal(v[2], 0);
    assert_int_equal(v[3], SMKI_STORE_SCHEMA);
    free(dir);
}

static void test_open_refuses_newer_schema(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_newer");
    smki_store_close(open_store(dir, 0));
    const uint8_t two[4] = {0, 0, 0, SMKI_STORE_SCHEMA + 1};
    raw_put(dir, "meta", "schema", 6, two, sizeof two);

    char want[1200];
    snprintf(want, sizeof want, "has schema %d, newer than this smki's %d", SMKI_STORE_SCHEMA + 1,
             SMKI_STORE_SCHEMA);
    smki_store *s = NULL;
    assert_fails(smki_store_open(dir, NULL, &s), SMKI_E_CORRUPT, want);
    assert_null(s);
    smki_store_opts ro = {.read_only = 1};
    assert_fails(smki_store_open(dir, &ro, &s), SMKI_E_CORRUPT, want);
    free(dir);
}

static void test_open_refuses_malformed_schema_record(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_badschema");
    smki_store_close(open_store(dir, 0));
    raw_put(dir, "meta", "schema", 6, "\x01", 1);
    smki_store *s = NULL;
    assert_fails(smki_store_open(dir, NULL, &s), SMKI_E_CORRUPT, "schema record of 1 octets");
    free(dir);
}

static void test_open_refuses_lmdb_store_without_schema(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_noschema");
    raw_put(dir, "other", "k", 1, "v", 1);
    smki_store *s = NULL;
    assert_fails(smki_store_open(dir, NULL, &s), SMKI_E_CORRUPT, "but no schema record");
    if (!test_engine_is_pg()) assert_fails(smki_store_open(dir, NULL, &s), SMKI_E_CORRUPT, dir);
    free(dir);
}

static void test_open_refuses_garbage_file_as_corrupt_naming_path(void **state)
{
    (void)state;
    TEST_LMDB_ONLY(); /* LMDB's own files, map or process rules */
    char *dir = fresh_dir("store_garbage");
    char data[1200];
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    size_t len = 64 * 1024;
    uint8_t *junk = malloc(len);
    assert_non_null(junk);
    for (size_t i = 0; i < len; i++) junk[i] = (uint8_t)(i * 131 + 7);
    assert_ok(smki_file_write_atomic(data, junk, len, 0600, 0));
    free(junk);

    smki_store *s = NULL;
    assert_fails(smki_store_open(dir, NULL, &s), SMKI_E_CORRUPT, dir);
    assert_fails(smki_store_open(dir, NULL, &s), SMKI_E_CORRUPT, "not an LMDB store");
    smki_store_opts ro = {.read_only = 1};
    assert_fails(smki_store_open(dir, &ro, &s), SMKI_E_CORRUPT, dir);
    free(dir);
}

static void test_open_read_only_refuses_missing_store(void **state)
{
    (void)state;
    char *top = fresh_dir("store_missing");
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/nowhere", top);
    smki_store_opts ro = {.read_only = 1};
    smki_store *s = NULL;
    assert_fails(smki_store_open(dir, &ro, &s), SMKI_E_NOTFOUND, dir);
    assert_int_equal(access(dir, F_OK), -1); /* and did not create it */
    free(top);
}

static void remove_store(const char *dir)
{
    const char *files[] = {"data.mdb", "lock.mdb", "maint.lock"};
    char path[1200];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void test_open_refuses_unreadable_store_as_permission_denied(void **state)
{
    (void)state;
    TEST_LMDB_ONLY(); /* LMDB's own files, map or process rules */
    /* Outside test-tmp, whose 0700 folders another user could not even enter. */
    char dir[] = "/tmp/smki-store-perm.XXXXXX";
    assert_non_null(mkdtemp(dir));
    smki_store_close(open_store(dir, 0));
    char want[1200];
    snprintf(want, sizeof want, "cannot open store %s: permission denied", dir);

    if (geteuid() != 0) {
        char path[1200];
        snprintf(path, sizeof path, "%s/lock.mdb", dir);
        assert_int_equal(chmod(path, 0), 0);
        smki_store *s = NULL;
        assert_fails(smki_store_open(dir, NULL, &s), SMKI_E_IO, want);
        remove_store(dir);
        return;
    }
    /* root reads anything: ask as nobody, in a child. */
    assert_int_equal(chmod(dir, 0755), 0);
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(out[0]);
        if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
        smki_store *s = NULL;
        char msg[SMKI_ERR_MSG_MAX + 16];
        int rc = smki_store_open(dir, NULL, &s);
        int n = snprintf(msg, sizeof msg, "%d %s", rc, smki_error_msg());
        _exit(write(out[1], msg, (size_t)n) == n ? 0 : 1);
    }
    close(out[1]);
    char msg[SMKI_ERR_MSG_MAX + 16] = {0};
    size_t got = 0;
    ssize_t n;
    while ((n = read(out[0], msg + got, sizeof msg - 1 - got)) > 0) got += (size_t)n;
    close(out[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(atoi(msg), SMKI_E_IO);
    if (!strstr(msg, want)) fail_msg("message \"%s\" lacks \"%s\"", msg, want);
    remove_store(dir);
}

static void test_open_refuses_second_handle_in_one_process(void **state)
{
    (void)state;
    TEST_LMDB_ONLY(); /* LMDB's own files, map or process rules */
    char *dir = fresh_dir("store_twice");
    smki_store *s = open_store(dir, 0);
    smki_store *again = NULL;
    assert_fails(smki_store_open(dir, NULL, &again), SMKI_E_USAGE, "already open in this process");
    assert_null(again);
    smki_store_close(s);
    again = open_store(dir, 0); /* once closed, it opens again */
    smki_store_close(again);
    free(dir);
}

static void test_open_clears_no_stale_readers_on_a_clean_store(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_clean");
    smki_store_close(open_store(dir, 0));
    smki_store *s = open_store(dir, 0);
    assert_int_equal(smki_store_stale_readers(s), 0);
    smki_store_close(s);
    free(dir);
}

/* ---- Records -------------------------------------------------------------------------------- */

static void test_put_get_del_round_trip(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_rw");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "certs", 0);
    assert_ok(put_kv(s, db, "a", "first", 0));
    assert_string_equal(get_kv(s, db, "a"), "first");
    assert_ok(put_kv(s, db, "a", "replaced", 0));
    assert_string_equal(get_kv(s, db, "a"), "replaced");
    kv_arg del = {.db = db, .key = "a"};
    assert_ok(smki_store_write(s, del_fn, &del));
    assert_fails(get_status(s, db, "a"), SMKI_E_NOTFOUND, NULL);
    smki_store_close(s);
    free(dir);
}

static void test_put_nooverwrite_refuses_existing_key_naming_it_in_hex(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_noover");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "serials", 0);
    assert_ok(put_kv(s, db, "key", "one", SMKI_PUT_NOOVERWRITE));
    assert_fails(put_kv(s, db, "key", "two", SMKI_PUT_NOOVERWRITE), SMKI_E_EXISTS, "key 6b6579 already exists");
    assert_fails(put_kv(s, db, "key", "two", SMKI_PUT_NOOVERWRITE), SMKI_E_EXISTS, "database serials");
    assert_string_equal(get_kv(s, db, "key"), "one");
    smki_store_close(s);
    free(dir);
}

static void test_get_and_del_of_missing_key_are_notfound(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_missing_key");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "certs", 0);
    assert_fails(get_status(s, db, "absent"), SMKI_E_NOTFOUND, "no such record");
    kv_arg del = {.db = db, .key = "absent"};
    assert_fails(smki_store_write(s, del_fn, &del), SMKI_E_NOTFOUND, NULL);
    smki_store_close(s);
    free(dir);
}

/* ---- Many gets at once ---------------------------------------------------------------------- */

#define MANY_KEYS (SMKI_GET_MANY_STMT + 9) /* more than one statement's worth on PostgreSQL */

typedef struct {
    smki_db db;
    const char *const *keys;
    size_t n;
    smki_get_rec recs[MANY_KEYS];
    char vals[MANY_KEYS][16]; /* copied out while the transaction is open */
    int also_put;             /* in a write: put "late" = "own" first */
} many_arg;

static int get_many_fn(smki_txn *t, void *arg)
{
    many_arg *a = arg;
    if (a->also_put) GUARD(smki_txn_put(t, a->db, "late", 4, "own", 3, 0));
    for (size_t i = 0; i < a->n; i++) a->recs[i] = (smki_get_rec){.key = a->keys[i], .klen = strlen(a->keys[i])};
    GUARD(smki_txn_get_many(t, a->db, a->recs, a->n));
    for (size_t i = 0; i < a->n; i++) {
        if (a->recs[i].vlen >= sizeof a->vals[i]) return SMKI_FAIL(SMKI_E_INTERNAL, "test value too long");
        if (a->recs[i].found) memcpy(a->vals[i], a->recs[i].val, a->recs[i].vlen);
        a->vals[i][a->recs[i].vlen] = '\0';
    }
    return 0;
}

static void assert_rec(const many_arg *a, size_t i, int found, const char *val)
{
    assert_int_equal(a->recs[i].found, found);
    assert_string_equal(a->vals[i], val);
    if (!found) assert_null(a->recs[i].val);
    assert_int_equal(a->recs[i].vlen, strlen(val));
}

static void test_get_many_answers_each_key_in_order_and_reports_absent_ones(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_get_many");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "certs", 0);
    assert_ok(put_kv(s, db, "a", "first", 0));
    assert_ok(put_kv(s, db, "b", "second", 0));
    assert_ok(put_kv(s, db, "empty", "", 0));
    static const char *const keys[] = {"b", "absent", "a", "b", "empty", "late"};
    many_arg *a = calloc(1, sizeof *a);
    assert_non_null(a);
    *a = (many_arg){.db = db, .keys = keys, .n = 6};
    assert_ok(smki_store_read(s, get_many_fn, a));
    assert_rec(a, 0, 1, "second");
    assert_rec(a, 1, 0, "");
    assert_rec(a, 2, 1, "first");
    assert_rec(a, 3, 1, "second"); /* a key asked for twice is answered twice */
    assert_rec(a, 4, 1, "");       /* present with an empty value: found, not absent */
    assert_rec(a, 5, 0, "");
    /* A write's lookups see its own puts. */
    a->also_put = 1;
    assert_ok(smki_store_write(s, get_many_fn, a));
    assert_rec(a, 5, 1, "own");
    assert_rec(a, 1, 0, "");
    /* None asked: nothing to do. */
    a->also_put = 0;
    a->n = 0;
    assert_ok(smki_store_read(s, get_many_fn, a));
    free(a);
    smki_store_close(s);
    free(dir);
}

static int put_many_numbered(smki_txn *t, void *arg)
{
    smki_db db = *(smki_db *)arg;
    for (int i = 0; i < MANY_KEYS; i += 2) { /* the even ones */
        char k[16], v[16];
        snprintf(k, sizeof k, "k%05d", i);
        snprintf(v, sizeof v, "v%d", i);
        GUARD(smki_txn_put(t, db, k, strlen(k), v, strlen(v), 0));
    }
    return 0;
}

static void test_get_many_of_more_keys_than_one_statement_takes(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_get_many_big");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "certs", 0);
    assert_ok(smki_store_write(s, put_many_numbered, &db));
    static char names[MANY_KEYS][16];
    static const char *keys[MANY_KEYS];
    for (int i = 0; i < MANY_KEYS; i++) {
        snprintf(names[i], sizeof names[i], "k%05d", MANY_KEYS - 1 - i); /* backwards */
        keys[i] = names[i];
    }
    many_arg *a = calloc(1, sizeof *a);
    assert_non_null(a);
    *a = (many_arg){.db = db, .keys = keys, .n = MANY_KEYS};
    assert_ok(smki_store_read(s, get_many_fn, a));
    for (int i = 0; i < MANY_KEYS; i++) {
        int k = MANY_KEYS - 1 - i;
        char want[16];
        snprintf(want, sizeof want, "v%d", k);
        assert_rec(a, (size_t)i, k % 2 == 0, k % 2 == 0 ? want : "");
    }
    free(a);
    smki_store_close(s);
    free(dir);
}

static void test_get_many_in_dupsort_db_gives_each_keys_first_value(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_get_many_dup");
    smki_store *s = open_store(dir, 0);
    smki_db idx = db_of(s, "by_device", SMKI_DB_DUPSORT);
    assert_ok(put_kv(s, idx, "dev1", "cert-c", 0));
    assert_ok(put_kv(s, idx, "dev1", "cert-a", 0));
    assert_ok(put_kv(s, idx, "dev2", "cert-z", 0));
    static const char *const keys[] = {"dev2", "dev1", "dev3"};
    many_arg *a = calloc(1, sizeof *a);
    assert_non_null(a);
    *a = (many_arg){.db = idx, .keys = keys, .n = 3};
    assert_ok(smki_store_read(s, get_many_fn, a));
    assert_rec(a, 0, 1, "cert-z");
    assert_rec(a, 1, 1, "cert-a"); /* as smki_txn_get: the first in value order */
    assert_rec(a, 2, 0, "");
    free(a);
    smki_store_close(s);
    free(dir);
}

static void test_get_many_refuses_empty_key_and_unknown_handle(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_get_many_bad");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "certs", 0);
    static const char *const bad[] = {"a", ""};
    many_arg *a = calloc(1, sizeof *a);
    assert_non_null(a);
    *a = (many_arg){.db = db, .keys = bad, .n = 2};
    assert_fails(smki_store_read(s, get_many_fn, a), SMKI_E_USAGE, "a key of 0 octets");
    static const char *const good[] = {"a"};
    *a = (many_arg){.db = 42, .keys = good, .n = 1};
    assert_fails(smki_store_read(s, get_many_fn, a), SMKI_E_USAGE, "database handle 42 is not open");
    free(a);
    smki_store_close(s);
    free(dir);
}

static void test_put_refuses_empty_and_oversized_keys(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_keysize");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "certs", 0);
    assert_fails(put_kv(s, db, "", "v", 0), SMKI_E_USAGE, "a key of 0 octets");
    char big[600];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_fails(put_kv(s, db, big, "v", 0), SMKI_E_USAGE, "a key of 599 octets");
    smki_store_close(s);
    free(dir);
}

static void test_put_in_read_transaction_refused(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_readput");
    smki_store *s = open_store(dir, 0);
    kv_arg a = {.db = db_of(s, "certs", 0), .key = "k", .val = "v"};
    assert_fails(smki_store_read(s, put_fn, &a), SMKI_E_USAGE, "a put in a read transaction");
    assert_fails(smki_store_read(s, del_fn, &a), SMKI_E_USAGE, "a delete in a read transaction");
    smki_store_close(s);
    free(dir);
}

static int put_then_refuse(smki_txn *t, void *arg)
{
    GUARD(put_fn(t, arg));
    return SMKI_FAIL(SMKI_E_REFUSED, "changed my mind");
}

static void test_write_fn_failure_aborts_its_transaction(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_abort");
    smki_store *s = open_store(dir, 0);
    kv_arg a = {.db = db_of(s, "certs", 0), .key = "k", .val = "v"};
    assert_fails(smki_store_write(s, put_then_refuse, &a), SMKI_E_REFUSED, "changed my mind");
    assert_fails(get_status(s, a.db, "k"), SMKI_E_NOTFOUND, NULL);
    smki_store_close(s);
    free(dir);
}

typedef struct {
    char seen[16][16];
    size_t n;
    size_t stop_after;
} scan_log;

static int log_key(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    (void)val;
    (void)vlen;
    scan_log *log = arg;
    if (log->n == 16 || klen >= 16) return SMKI_FAIL(SMKI_E_INTERNAL, "scan log full");
    memcpy(log->seen[log->n], key, klen);
    log->seen[log->n][klen] = '\0';
    log->n++;
    return log->stop_after && log->n == log->stop_after ? 1 : 0;
}

typedef struct {
    smki_db db;
    const char *prefix;
    scan_log log;
} scan_arg;

static int scan_fn(smki_txn *t, void *arg)
{
    scan_arg *a = arg;
    return smki_txn_scan(t, a->db, a->prefix, a->prefix ? strlen(a->prefix) : 0, log_key, &a->log);
}

static void test_scan_visits_prefix_in_key_order_and_stops_early(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_scan");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "index", 0);
    const char *keys[] = {"b3", "a1", "c1", "b1", "b2", "ba"};
    for (size_t i = 0; i < 6; i++) assert_ok(put_kv(s, db, keys[i], "v", 0));

    scan_arg a = {.db = db, .prefix = "b"};
    assert_ok(smki_store_read(s, scan_fn, &a));
    assert_int_equal(a.log.n, 4);
    assert_string_equal(a.log.seen[0], "b1");
    assert_string_equal(a.log.seen[1], "b2");
    assert_string_equal(a.log.seen[2], "b3");
    assert_string_equal(a.log.seen[3], "ba");

    a = (scan_arg){.db = db, .prefix = "b", .log.stop_after = 2};
    assert_ok(smki_store_read(s, scan_fn, &a));
    assert_int_equal(a.log.n, 2);
    assert_string_equal(a.log.seen[1], "b2");

    a = (scan_arg){.db = db, .prefix = NULL};
    assert_ok(smki_store_read(s, scan_fn, &a));
    assert_int_equal(a.log.n, 6);
    assert_string_equal(a.log.seen[0], "a1");
    assert_string_equal(a.log.seen[5], "c1");

    a = (scan_arg){.db = db, .prefix = "bz"};
    assert_ok(smki_store_read(s, scan_fn, &a));
    assert_int_equal(a.log.n, 0);
    a = (scan_arg){.db = db, .prefix = "z"};
    assert_ok(smki_store_read(s, scan_fn, &a));
    assert_int_equal(a.log.n, 0);
    smki_store_close(s);
    free(dir);
}

static int refuse_key(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    (void)key, (void)klen, (void)val, (void)vlen, (void)arg;
    return SMKI_FAIL(SMKI_E_REFUSED, "visitor refused");
}

static int scan_refusing(smki_txn *t, void *arg)
{
    const smki_db *db = arg;
    return smki_txn_scan(t, *db, NULL, 0, refuse_key, NULL);
}

static void test_scan_passes_back_visitor_failure(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_scanfail");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "index", 0);
    assert_ok(put_kv(s, db, "k", "v", 0));
    assert_fails(smki_store_read(s, scan_refusing, &db), SMKI_E_REFUSED, "visitor refused");
    smki_store_close(s);
    free(dir);
}

/* ---- Index scans -------------------------------------------------------------------------- */

typedef struct {
    smki_db index, target;
    const char *prefix;
    size_t plen;
    char seen[16][48]; /* "key>value=record" (record "-" when the target has none) */
    int n, stop_after;
} join_arg;

static int log_join(const void *key, size_t klen, const void *val, size_t vlen, const void *rec, size_t rlen, void *arg)
{
    join_arg *a = arg;
    if (a->n < 16)
        snprintf(a->seen[a->n], sizeof a->seen[0], "%.*s>%.*s=%.*s", (int)klen, (const char *)key, (int)vlen,
                 (const char *)val, rec ? (int)rlen : 1, rec ? (const char *)rec : "-");
    a->n++;
    return a->stop_after && a->n == a->stop_after ? 1 : 0;
}

static int join_fn(smki_txn *t, void *arg)
{
    join_arg *a = arg;
    return smki_txn_scan_join(t, a->index, a->prefix, a->plen, a->target, log_join, a);
}

static void test_scan_join_brings_each_entrys_record_in_key_order(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_join");
    smki_store *s = open_store(dir, 0);
    smki_db index = db_of(s, "by_name", SMKI_DB_DUPSORT), recs = db_of(s, "recs", 0);
    assert_ok(put_kv(s, recs, "c1", "one", 0));
    assert_ok(put_kv(s, recs, "c2", "two", 0));
    assert_ok(put_kv(s, recs, "c4", "four", 0));
    assert_ok(put_kv(s, index, "e1", "c2", 0));
    assert_ok(put_kv(s, index, "e1", "c1", 0));
    assert_ok(put_kv(s, index, "e10", "c4", 0));
    assert_ok(put_kv(s, index, "e2", "c3", 0)); /* names a record recs lacks */
    assert_ok(put_kv(s, index, "f", "c1", 0));

    join_arg a = {.index = index, .target = recs, .prefix = "e1", .plen = 2};
    assert_ok(smki_store_read(s, join_fn, &a));
    assert_int_equal(a.n, 3);
    assert_string_equal(a.seen[0], "e1>c1=one");
    assert_string_equal(a.seen[1], "e1>c2=two");
    assert_string_equal(a.seen[2], "e10>c4=four");

    a = (join_arg){.index = index, .target = recs, .prefix = "e", .plen = 1, .stop_after = 4};
    assert_ok(smki_store_read(s, join_fn, &a));
    assert_int_equal(a.n, 4);
    assert_string_equal(a.seen[3], "e2>c3=-");

    a = (join_arg){.index = index, .target = recs, .prefix = NULL, .plen = 0};
    assert_ok(smki_store_read(s, join_fn, &a));
    assert_int_equal(a.n, 5);
    assert_string_equal(a.seen[4], "f>c1=one");

    a = (join_arg){.index = index, .target = recs, .prefix = "e3", .plen = 2};
    assert_ok(smki_store_read(s, join_fn, &a));
    assert_int_equal(a.n, 0);

    /* a target with duplicates names no one record */
    a = (join_arg){.index = recs, .target = index, .prefix = NULL, .plen = 0};
    assert_fails(smki_store_read(s, join_fn, &a), SMKI_E_USAGE, "target must be a database without duplicates");
    smki_store_close(s);
    free(dir);
}


/* ---- Index scans fetched ahead -------------------------------------------------------------- */

/* What a join scan saw, whole: how many entries and a hash of every "key>value=record". */
typedef struct {
    smki_db index, target;
    size_t n;
    uint64_t hash;
} join_sum;

static int sum_join(const void *key, size_t klen, const void *val, size_t vlen, const void *rec, size_t rlen, void *arg)
{
    join_sum *j = arg;
    const uint8_t *parts[3] = {key, val, rec};
    size_t lens[3] = {klen, vlen, rec ? rlen : SIZE_MAX};
    for (int p = 0; p < 3; p++) {
        j->hash = (j->hash ^ lens[p]) * 1099511628211u;
        for (size_t i = 0; parts[p] && i < lens[p]; i++) j->hash = (j->hash ^ parts[p][i]) * 1099511628211u;
    }
    j->n++;
    return 0;
}

#define AHEAD_N 7
static const char *const AHEAD_PREFIX[AHEAD_N] = {"e1", "e3", "m", "", "e1", "f", "zz"};

typedef struct {
    smki_db index, target;
    int ahead;        /* fetch the scans ahead first */
    int scans;        /* scans made: AHEAD_N, then e1 a third time */
    join_sum sum[AHEAD_N + 1];
} ahead_arg;

static int scans_ahead(smki_txn *t, void *arg)
{
    ahead_arg *a = arg;
    const void *p[AHEAD_N];
    size_t l[AHEAD_N];
    for (int i = 0; i < AHEAD_N; i++) p[i] = AHEAD_PREFIX[i], l[i] = strlen(AHEAD_PREFIX[i]);
    if (a->ahead) GUARD(smki_txn_scan_join_ahead(t, a->index, a->target, p, l, AHEAD_N));
    for (int i = 0; i <= AHEAD_N; i++) {
        const char *prefix = i < AHEAD_N ? AHEAD_PREFIX[i] : "e1";
        a->sum[i] = (join_sum){.hash = 14695981039346656037u};
        GUARD(smki_txn_scan_join(t, a->index, prefix, strlen(prefix), a->target, sum_join, &a->sum[i]));
    }
    return 0;
}

typedef struct {
    smki_db db;
    int from, to;
} seq_arg;

/* Index entries m000.. naming c1 and c2 in turn. */
static int put_seq_m(smki_txn *t, void *arg)
{
    seq_arg *q = arg;
    for (int i = q->from; i < q->to; i++) {
        char k[16];
        snprintf(k, sizeof k, "m%03d", i % 1000);
        GUARD(smki_txn_put(t, q->db, k, 4, i % 2 ? "c2" : "c1", 2, 0));
    }
    return 0;
}

static smki_store *ahead_store(const char *dir, smki_db *index, smki_db *recs)
{
    smki_store *s = open_store(dir, 0);
    *index = db_of(s, "by_name", SMKI_DB_DUPSORT), *recs = db_of(s, "recs", 0);
    assert_ok(put_kv(s, *recs, "c1", "one", 0));
    assert_ok(put_kv(s, *recs, "c2", "two", 0));
    assert_ok(put_kv(s, *index, "e1", "c2", 0));
    assert_ok(put_kv(s, *index, "e1", "c1", 0));
    assert_ok(put_kv(s, *index, "e10", "c2", 0));
    assert_ok(put_kv(s, *index, "e2", "c3", 0)); /* names a record recs lacks */
    assert_ok(put_kv(s, *index, "f", "c1", 0));
    /* more entries under "m" than one page of a PostgreSQL scan holds (128) */
    seq_arg q = {.db = *index, .from = 0, .to = 300};
    assert_ok(smki_store_write(s, put_seq_m, &q));
    return s;
}

static void test_scans_fetched_ahead_give_what_each_scan_gives(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_ahead");
    smki_db index, recs;
    smki_store *s = ahead_store(dir, &index, &recs);
    ahead_arg plain = {.index = index, .target = recs}, ahead = {.index = index, .target = recs, .ahead = 1};
    assert_ok(smki_store_read(s, scans_ahead, &plain));
    assert_ok(smki_store_read(s, scans_ahead, &ahead));
    size_t expect[AHEAD_N + 1] = {3, 0, 300, 305, 3, 1, 0, 3};
    for (int i = 0; i <= AHEAD_N; i++) {
        assert_int_equal(plain.sum[i].n, expect[i]);
        assert_int_equal(ahead.sum[i].n, expect[i]);
        assert_true(ahead.sum[i].hash == plain.sum[i].hash);
    }
    /* in a write it changes nothing either (a write's statements go one at a time) */
    ahead_arg in_write = {.index = index, .target = recs, .ahead = 1};
    assert_ok(smki_store_write(s, scans_ahead, &in_write));
    for (int i = 0; i <= AHEAD_N; i++) assert_true(in_write.sum[i].hash == plain.sum[i].hash);
    smki_store_close(s);
    free(dir);
}

/* More scans at once than one statement takes (256): each m000..m299 alone. */
static int ahead_each_m(smki_txn *t, void *arg)
{
    ahead_arg *a = arg;
    enum { N = 300 };
    static char keys[N][8];
    const void *p[N];
    size_t l[N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "m%03d", i % 1000);
        p[i] = keys[i], l[i] = 4;
    }
    GUARD(smki_txn_scan_join_ahead(t, a->index, a->target, p, l, N));
    a->sum[0] = (join_sum){.hash = 14695981039346656037u};
    for (int i = 0; i < N; i++) GUARD(smki_txn_scan_join(t, a->index, keys[i], 4, a->target, sum_join, &a->sum[0]));
    return 0;
}

static void test_scans_fetched_ahead_beyond_one_statement_each_find_their_own(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_ahead_many");
    smki_db index, recs;
    smki_store *s = ahead_store(dir, &index, &recs);
    ahead_arg each = {.index = index, .target = recs}, whole = {.index = index, .target = recs};
    assert_ok(smki_store_read(s, ahead_each_m, &each));
    assert_ok(smki_store_read(s, scans_ahead, &whole));
    assert_int_equal(each.sum[0].n, 300);
    assert_true(each.sum[0].hash == whole.sum[2].hash); /* the same entries as one scan of "m" */
    smki_store_close(s);
    free(dir);
}

static int ahead_only(smki_txn *t, void *arg)
{
    ahead_arg *a = arg;
    const void *p[2] = {"e1", "m"};
    size_t l[2] = {2, 1};
    return smki_txn_scan_join_ahead(t, a->index, a->target, p, l, 2);
}

static void test_scans_fetched_ahead_refuse_what_a_scan_refuses_and_may_go_untaken(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_ahead_bad");
    smki_db index, recs;
    smki_store *s = ahead_store(dir, &index, &recs);
    /* fetched and never scanned: freed with the transaction (the sanitizers watch) */
    ahead_arg a = {.index = index, .target = recs};
    assert_ok(smki_store_read(s, ahead_only, &a));
    /* a target with duplicates names no one record */
    a = (ahead_arg){.index = recs, .target = index};
    assert_fails(smki_store_read(s, ahead_only, &a), SMKI_E_USAGE, "without duplicates");
    /* the session is still in step: the next read answers */
    ahead_arg after = {.index = index, .target = recs, .ahead = 1};
    assert_ok(smki_store_read(s, scans_ahead, &after));
    assert_int_equal(after.sum[2].n, 300);
    smki_store_close(s);
    free(dir);
}

typedef struct {
    smki_store *s;
    smki_db db;
    char a[8], b[8];
    int wrote;
} snapshot_arg;

static int write_both(smki_txn *t, void *arg)
{
    snapshot_arg *x = arg;
    GUARD(smki_txn_put(t, x->db, "a", 1, "new", 3, 0));
    return smki_txn_put(t, x->db, "b", 1, "new", 3, 0);
}

static void *writer_between(void *arg)
{
    snapshot_arg *x = arg;
    x->wrote = smki_store_write(x->s, write_both, x) == 0;
    return NULL;
}

/* Reads "a", lets another thread commit new values of both, then reads "b". */
static int read_around_a_commit(smki_txn *t, void *arg)
{
    snapshot_arg *x = arg;
    const void *v;
    size_t vl;
    GUARD(smki_txn_get(t, x->db, "a", 1, &v, &vl));
    snprintf(x->a, sizeof x->a, "%.*s", (int)vl, (const char *)v);
    pthread_t th;
    if (pthread_create(&th, NULL, writer_between, x) != 0) return SMKI_FAIL(SMKI_E_INTERNAL, "pthread_create");
    pthread_join(th, NULL);
    GUARD(smki_txn_get(t, x->db, "b", 1, &v, &vl));
    snprintf(x->b, sizeof x->b, "%.*s", (int)vl, (const char *)v);
    return 0;
}

/* A read sees one snapshot (on PostgreSQL, its statements are one implicit
 * repeatable-read transaction): a commit between its statements is not seen. */
static void test_read_sees_one_snapshot_while_a_write_commits_between_its_statements(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_snapshot");
    smki_store *s = open_store(dir, 0);
    snapshot_arg x = {.s = s, .db = db_of(s, "pair", 0)};
    assert_ok(put_kv(s, x.db, "a", "old", 0));
    assert_ok(put_kv(s, x.db, "b", "old", 0));
    assert_ok(smki_store_read(s, read_around_a_commit, &x));
    assert_true(x.wrote);
    assert_string_equal(x.a, "old");
    assert_string_equal(x.b, "old");
    assert_string_equal(get_kv(s, x.db, "b"), "new"); /* the next read sees the commit */
    smki_store_close(s);
    free(dir);
}

typedef struct {
    smki_db db, dup;
    int ok;
} reget_arg;

static int get_text(smki_txn *t, smki_db db, const char *key, char *out, size_t cap)
{
    const void *v;
    size_t vl;
    GUARD(smki_txn_get(t, db, key, strlen(key), &v, &vl));
    snprintf(out, cap, "%.*s", (int)vl, (const char *)v);
    return 0;
}

/* Gets again after its own put, delete and clear: each answer is the latest. */
static int reget_after_writes(smki_txn *t, void *arg)
{
    reget_arg *a = arg;
    char v[16];
    int same = 1;
    GUARD(get_text(t, a->db, "k", v, sizeof v));
    same &= strcmp(v, "old") == 0;
    GUARD(get_text(t, a->db, "k", v, sizeof v)); /* asked twice, same answer */
    same &= strcmp(v, "old") == 0;
    GUARD(smki_txn_put(t, a->db, "k", 1, "new", 3, 0));
    GUARD(get_text(t, a->db, "k", v, sizeof v));
    same &= strcmp(v, "new") == 0;
    GUARD(get_text(t, a->dup, "d", v, sizeof v));
    same &= strcmp(v, "m") == 0;
    GUARD(smki_txn_put(t, a->dup, "d", 1, "a", 1, 0)); /* sorts first: the key's first value now */
    GUARD(get_text(t, a->dup, "d", v, sizeof v));
    same &= strcmp(v, "a") == 0;
    GUARD(smki_txn_del(t, a->db, "k", 1));
    same &= get_text(t, a->db, "k", v, sizeof v) == SMKI_E_NOTFOUND;
    smki_error_clear();
    GUARD(smki_txn_put(t, a->db, "k", 1, "again", 5, 0));
    GUARD(get_text(t, a->db, "k", v, sizeof v));
    same &= strcmp(v, "again") == 0;
    GUARD(smki_txn_clear(t, a->db));
    same &= get_text(t, a->db, "k", v, sizeof v) == SMKI_E_NOTFOUND;
    smki_error_clear();
    a->ok = same;
    return 0;
}

static void test_get_after_the_transactions_own_write_sees_it(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_reget");
    smki_store *s = open_store(dir, 0);
    reget_arg a = {db_of(s, "plain", 0), db_of(s, "dups", SMKI_DB_DUPSORT), 0};
    assert_ok(put_kv(s, a.db, "k", "old", 0));
    assert_ok(put_kv(s, a.dup, "d", "m", 0));
    assert_ok(smki_store_write(s, reget_after_writes, &a));
    assert_true(a.ok);
    smki_store_close(s);
    free(dir);
}

/* A prefix of ff octets has no key above it to end the scan: it runs to the last key. */
static void test_scan_of_an_all_ff_prefix_reaches_the_last_key(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_scan_ff");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "index", 0);
    assert_ok(put_kv(s, db, "\xfe\xff", "v", 0));
    assert_ok(put_kv(s, db, "\xff", "v", 0));
    assert_ok(put_kv(s, db, "\xff\xff", "v", 0));
    assert_ok(put_kv(s, db, "\xff\xff\x01", "v", 0));
    scan_arg a = {.db = db, .prefix = "\xff\xff"};
    assert_ok(smki_store_read(s, scan_fn, &a));
    assert_int_equal(a.log.n, 2);
    a = (scan_arg){.db = db, .prefix = "\xfe"};
    assert_ok(smki_store_read(s, scan_fn, &a));
    assert_int_equal(a.log.n, 1);
    a = (scan_arg){.db = db, .prefix = "\xff"};
    assert_ok(smki_store_read(s, scan_fn, &a));
    assert_int_equal(a.log.n, 3);
    smki_store_close(s);
    free(dir);
}

static void test_count_follows_puts_and_deletes(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_count");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "certs", 0);
    smki_db other = db_of(s, "other", 0);
    assert_int_equal(count_of(s, db), 0);
    char key[16];
    for (int i = 0; i < 37; i++) {
        snprintf(key, sizeof key, "k%02d", i);
        assert_ok(put_kv(s, db, key, "v", 0));
    }
    assert_ok(put_kv(s, other, "x", "v", 0));
    assert_int_equal(count_of(s, db), 37);
    kv_arg del = {.db = db, .key = "k05"};
    assert_ok(smki_store_write(s, del_fn, &del));
    assert_int_equal(count_of(s, db), 36);
    assert_int_equal(count_of(s, other), 1);
    smki_store_close(s);
    free(dir);
}

/* ---- Named databases ------------------------------------------------------------------------ */

static void test_dupsort_db_keeps_every_value_of_a_key_in_order(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_dupsort");
    smki_store *s = open_store(dir, 0);
    smki_db idx = db_of(s, "by_device", SMKI_DB_DUPSORT);
    assert_ok(put_kv(s, idx, "dev1", "cert-c", 0));
    assert_ok(put_kv(s, idx, "dev1", "cert-a", 0));
    assert_ok(put_kv(s, idx, "dev1", "cert-b", 0));
    assert_ok(put_kv(s, idx, "dev2", "cert-z", 0));
    assert_int_equal(count_of(s, idx), 4);
    assert_fails(put_kv(s, idx, "dev1", "cert-d", SMKI_PUT_NOOVERWRITE), SMKI_E_EXISTS, NULL);
    smki_store_close(s);

    /* The handle cache and LMDB both remember the flags across a reopen. */
    s = open_store(dir, 0);
    smki_db plain = 0;
    assert_fails(smki_store_db(s, "by_device", 0, &plain), SMKI_E_USAGE, "with sorted duplicates");
    idx = db_of(s, "by_device", SMKI_DB_DUPSORT);
    assert_int_equal(count_of(s, idx), 4);
    assert_fails(smki_store_db(s, "by_device", 0, &plain), SMKI_E_USAGE, "asked for one without duplicates");
    smki_store_close(s);
    free(dir);
}

typedef struct {
    smki_db db;
    char vals[8][16];
    size_t n;
} dup_arg;

static int collect_value(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    (void)key, (void)klen;
    dup_arg *a = arg;
    if (a->n == 8 || vlen >= 16) return SMKI_FAIL(SMKI_E_INTERNAL, "too many values");
    memcpy(a->vals[a->n], val, vlen);
    a->vals[a->n][vlen] = '\0';
    a->n++;
    return 0;
}

static int scan_dev1(smki_txn *t, void *arg)
{
    dup_arg *a = arg;
    return smki_txn_scan(t, a->db, "dev1", 4, collect_value, a);
}

static void test_dupsort_scan_returns_values_sorted(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_dupscan");
    smki_store *s = open_store(dir, 0);
    smki_db idx = db_of(s, "by_device", SMKI_DB_DUPSORT);
    assert_ok(put_kv(s, idx, "dev1", "cert-c", 0));
    assert_ok(put_kv(s, idx, "dev1", "cert-a", 0));
    assert_ok(put_kv(s, idx, "dev1", "cert-b", 0));
    assert_ok(put_kv(s, idx, "dev2", "cert-z", 0));
    dup_arg a = {.db = idx};
    assert_ok(smki_store_read(s, scan_dev1, &a));
    assert_int_equal(a.n, 3);
    assert_string_equal(a.vals[0], "cert-a");
    assert_string_equal(a.vals[1], "cert-b");
    assert_string_equal(a.vals[2], "cert-c");
    smki_store_close(s);
    free(dir);
}

typedef struct {
    smki_db db;
    const char *key, *val;
} deldup_arg;

static int del_dup_fn(smki_txn *t, void *arg)
{
    deldup_arg *a = arg;
    return smki_txn_del_dup(t, a->db, a->key, strlen(a->key), a->val, strlen(a->val));
}

static int del_dup(smki_store *s, smki_db db, const char *key, const char *val)
{
    deldup_arg a = {db, key, val};
    return smki_store_write(s, del_dup_fn, &a);
}

static void test_del_dup_removes_one_value_and_keeps_the_others(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_deldup");
    smki_store *s = open_store(dir, 0);
    smki_db idx = db_of(s, "by_status", SMKI_DB_DUPSORT);
    assert_ok(put_kv(s, idx, "dev1", "cert-a", 0));
    assert_ok(put_kv(s, idx, "dev1", "cert-b", 0));
    assert_ok(put_kv(s, idx, "dev1", "cert-c", 0));
    assert_ok(put_kv(s, idx, "dev2", "cert-b", 0));
    assert_ok(del_dup(s, idx, "dev1", "cert-b"));
    dup_arg a = {.db = idx};
    assert_ok(smki_store_read(s, scan_dev1, &a));
    assert_int_equal(a.n, 2);
    assert_string_equal(a.vals[0], "cert-a");
    assert_string_equal(a.vals[1], "cert-c");
    /* The same value under another key is untouched. */
    assert_string_equal(get_kv(s, idx, "dev2"), "cert-b");
    assert_int_equal(count_of(s, idx), 3);
    /* Removing the last values removes the key. */
    assert_ok(del_dup(s, idx, "dev1", "cert-a"));
    assert_ok(del_dup(s, idx, "dev1", "cert-c"));
    assert_int_equal(get_status(s, idx, "dev1"), SMKI_E_NOTFOUND);
    assert_int_equal(count_of(s, idx), 1);
    smki_store_close(s);
    free(dir);
}

static void test_del_dup_of_absent_pair_is_notfound_and_changes_nothing(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_deldup_absent");
    smki_store *s = open_store(dir, 0);
    smki_db idx = db_of(s, "by_status", SMKI_DB_DUPSORT);
    assert_ok(put_kv(s, idx, "dev1", "cert-a", 0));
    assert_fails(del_dup(s, idx, "dev1", "cert-z"), SMKI_E_NOTFOUND, "no such value");
    assert_fails(del_dup(s, idx, "dev9", "cert-a"), SMKI_E_NOTFOUND, "no such value");
    assert_int_equal(count_of(s, idx), 1);
    assert_string_equal(get_kv(s, idx, "dev1"), "cert-a");
    smki_store_close(s);
    free(dir);
}

static void test_del_dup_refused_on_plain_db_and_in_read_transaction(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_deldup_plain");
    smki_store *s = open_store(dir, 0);
    smki_db plain = db_of(s, "certs", 0);
    assert_ok(put_kv(s, plain, "k", "v", 0));
    /* LMDB would delete the whole key here, whatever the value: refused instead. */
    assert_fails(del_dup(s, plain, "k", "other"), SMKI_E_USAGE, "DUPSORT");
    assert_string_equal(get_kv(s, plain, "k"), "v");
    smki_db idx = db_of(s, "by_status", SMKI_DB_DUPSORT);
    assert_ok(put_kv(s, idx, "dev1", "cert-a", 0));
    deldup_arg a = {idx, "dev1", "cert-a"};
    assert_fails(smki_store_read(s, del_dup_fn, &a), SMKI_E_USAGE, "read transaction");
    assert_string_equal(get_kv(s, idx, "dev1"), "cert-a");
    smki_store_close(s);
    free(dir);
}

static int first_of_each_key(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    GUARD(collect_value(key, klen, val, vlen, arg));
    return SMKI_SCAN_NEXT_KEY;
}

static int scan_first_values(smki_txn *t, void *arg)
{
    dup_arg *a = arg;
    return smki_txn_scan(t, a->db, NULL, 0, first_of_each_key, a);
}

static void test_scan_next_key_skips_the_rest_of_a_keys_values(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_scan_nextkey");
    smki_store *s = open_store(dir, 0);
    smki_db idx = db_of(s, "by_facet", SMKI_DB_DUPSORT);
    assert_ok(put_kv(s, idx, "dev1", "cert-a", 0));
    assert_ok(put_kv(s, idx, "dev1", "cert-b", 0));
    assert_ok(put_kv(s, idx, "dev2", "cert-c", 0));
    assert_ok(put_kv(s, idx, "dev3", "cert-d", 0));
    assert_ok(put_kv(s, idx, "dev3", "cert-e", 0));
    dup_arg a = {.db = idx};
    assert_ok(smki_store_read(s, scan_first_values, &a));
    assert_int_equal(a.n, 3);
    assert_string_equal(a.vals[0], "cert-a");
    assert_string_equal(a.vals[1], "cert-c");
    assert_string_equal(a.vals[2], "cert-d");
    smki_store_close(s);
    free(dir);
}

typedef struct {
    smki_db db;
    uint32_t schema;
} clear_arg;

static int clear_fn(smki_txn *t, void *arg)
{
    return smki_txn_clear(t, ((clear_arg *)arg)->db);
}

static int set_schema_fn(smki_txn *t, void *arg)
{
    return smki_txn_set_schema(t, ((clear_arg *)arg)->schema);
}

static int set_schema_then_fail(smki_txn *t, void *arg)
{
    GUARD(smki_txn_set_schema(t, ((clear_arg *)arg)->schema));
    return SMKI_FAIL(SMKI_E_INTERNAL, "changed my mind");
}

static int get_schema_fn(smki_txn *t, void *arg)
{
    return smki_txn_schema(t, &((clear_arg *)arg)->schema);
}

static void test_clear_empties_a_database_and_keeps_it_usable(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_clear");
    smki_store *s = open_store(dir, 0);
    smki_db idx = db_of(s, "by_role", SMKI_DB_DUPSORT), other = db_of(s, "certs", 0);
    assert_ok(put_kv(s, idx, "dev1", "cert-a", 0));
    assert_ok(put_kv(s, idx, "dev2", "cert-b", 0));
    assert_ok(put_kv(s, other, "k", "v", 0));
    clear_arg c = {idx, 0};
    assert_fails(smki_store_read(s, clear_fn, &c), SMKI_E_USAGE, "no write transaction");
    assert_int_equal(count_of(s, idx), 2);
    assert_ok(smki_store_write(s, clear_fn, &c));
    assert_int_equal(count_of(s, idx), 0);
    assert_string_equal(get_kv(s, other, "k"), "v");
    assert_ok(put_kv(s, idx, "dev1", "cert-c", 0));
    assert_string_equal(get_kv(s, idx, "dev1"), "cert-c");
    smki_store_close(s);
    free(dir);
}

static void test_set_schema_moves_forward_only_and_only_when_committed(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_set_schema");
    smki_store *s = open_store(dir, 0);
    clear_arg c = {0, 0};
    assert_ok(smki_store_read(s, get_schema_fn, &c));
    assert_int_equal(c.schema, SMKI_STORE_SCHEMA);
    c.schema = SMKI_STORE_SCHEMA + 1;
    assert_fails(smki_store_write(s, set_schema_fn, &c), SMKI_E_USAGE, "cannot follow");
    c.schema = SMKI_STORE_SCHEMA - 1;
    assert_fails(smki_store_write(s, set_schema_fn, &c), SMKI_E_USAGE, "cannot follow");
    assert_fails(smki_store_read(s, set_schema_fn, &c), SMKI_E_USAGE, "no write transaction");
    smki_store_close(s);
    /* an older store: forward in a transaction that fails changes nothing */
    const uint8_t one[4] = {0, 0, 0, 1};
    raw_put(dir, "meta", "schema", 6, one, sizeof one);
    s = open_store(dir, 0);
    assert_int_equal(smki_store_schema(s), 1);
    c.schema = SMKI_STORE_SCHEMA;
    assert_fails(smki_store_write(s, set_schema_then_fail, &c), SMKI_E_INTERNAL, "changed my mind");
    assert_int_equal(smki_store_schema(s), 1);
    assert_ok(smki_store_read(s, get_schema_fn, &c));
    assert_int_equal(c.schema, 1);
    c.schema = SMKI_STORE_SCHEMA;
    assert_ok(smki_store_write(s, set_schema_fn, &c));
    assert_int_equal(smki_store_schema(s), SMKI_STORE_SCHEMA);
    smki_store_close(s);
    s = open_store(dir, 0);
    assert_int_equal(smki_store_schema(s), SMKI_STORE_SCHEMA);
    smki_store_close(s);
    free(dir);
}

typedef struct {
    smki_db db;
    const char *from;
    char key[8];
    size_t cap, klen;
} seek_arg;

static int seek_fn(smki_txn *t, void *arg)
{
    seek_arg *a = arg;
    memset(a->key, 0, sizeof a->key);
    return smki_txn_seek(t, a->db, a->from, strlen(a->from), a->key, a->cap, &a->klen);
}

static void test_seek_finds_the_first_key_at_or_after(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_seek");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "certs", 0);
    assert_ok(put_kv(s, db, "b1", "x", 0));
    assert_ok(put_kv(s, db, "b2", "x", 0));
    assert_ok(put_kv(s, db, "d", "x", 0));
    assert_ok(put_kv(s, db, "e-longer", "x", 0));
    seek_arg a = {db, "a", {0}, 7, 0};
    assert_ok(smki_store_read(s, seek_fn, &a));
    assert_int_equal(a.klen, 2);
    assert_memory_equal(a.key, "b1", 2);
    a.from = "b2";
    assert_ok(smki_store_read(s, seek_fn, &a));
    assert_memory_equal(a.key, "b2", 2);
    a.from = "b3";
    assert_ok(smki_store_read(s, seek_fn, &a));
    assert_int_equal(a.klen, 1);
    assert_memory_equal(a.key, "d", 1);
    a.from = "e";
    assert_fails(smki_store_read(s, seek_fn, &a), SMKI_E_CORRUPT, "a key of 8 octets where at most 7");
    a.from = "f";
    assert_fails(smki_store_read(s, seek_fn, &a), SMKI_E_NOTFOUND, NULL);
    smki_store_close(s);
    free(dir);
}

static int ask_db_inside(smki_txn *t, void *arg)
{
    (void)t;
    smki_store *s = arg;
    smki_db db;
    return smki_store_db(s, "brand-new", 0, &db);
}

static int ask_cached_db_inside(smki_txn *t, void *arg)
{
    (void)t;
    smki_store *s = arg;
    smki_db db;
    return smki_store_db(s, "certs", 0, &db);
}

static void test_db_first_asked_for_inside_transaction_refused(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_dbinside");
    smki_store *s = open_store(dir, 0);
    (void)db_of(s, "certs", 0);
    assert_fails(smki_store_read(s, ask_db_inside, s), SMKI_E_USAGE, "before the transaction begins");
    assert_fails(smki_store_write(s, ask_db_inside, s), SMKI_E_USAGE, "before the transaction begins");
    assert_ok(smki_store_read(s, ask_cached_db_inside, s)); /* cached handles are fine anywhere */
    assert_ok(smki_store_write(s, ask_cached_db_inside, s));
    smki_store_close(s);
    free(dir);
}

static void test_handle_never_opened_in_this_store_refused(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_badhandle");
    smki_store *s = open_store(dir, 0);
    assert_fails(get_status(s, 42, "k"), SMKI_E_USAGE, "database handle 42 is not open");
    smki_store_close(s);
    free(dir);
}

static int nested_write(smki_txn *t, void *arg)
{
    (void)t;
    kv_arg *a = arg;
    smki_store *s = (smki_store *)a->val; /* smuggled in for this test */
    kv_arg inner = {.db = a->db, .key = "inner", .val = "v"};
    return smki_store_write(s, put_fn, &inner);
}

static void test_nested_write_on_one_thread_refused(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_nested");
    smki_store *s = open_store(dir, 0);
    kv_arg a = {.db = db_of(s, "certs", 0), .val = (const char *)s};
    assert_fails(smki_store_write(s, nested_write, &a), SMKI_E_USAGE, "would wait for itself");
    /* A write inside a read is allowed (LMDB's MDB_NOTLS). */
    assert_ok(smki_store_read(s, nested_write, &a));
    assert_string_equal(get_kv(s, a.db, "inner"), "v");
    smki_store_close(s);
    free(dir);
}

/* ---- Map growth ------------------------------------------------------------------------------ */

#define BIG_RECORDS 20480 /* 20 MiB of 1 KiB values */
#define BIG_VALUE 1024

static void big_value(uint32_t i, uint8_t *out)
{
    for (size_t j = 0; j < BIG_VALUE; j++) out[j] = (uint8_t)(i * 7 + j);
}

static void big_key(uint32_t i, uint8_t key[4])
{
    key[0] = (uint8_t)(i >> 24), key[1] = (uint8_t)(i >> 16), key[2] = (uint8_t)(i >> 8), key[3] = (uint8_t)i;
}

typedef struct {
    smki_db db;
    int runs;
    uint32_t checked;
} big_arg;

static int write_big(smki_txn *t, void *arg)
{
    big_arg *a = arg;
    a->runs++;
    uint8_t key[4], val[BIG_VALUE];
    for (uint32_t i = 0; i < BIG_RECORDS; i++) {
        big_key(i, key);
        big_value(i, val);
        GUARD(smki_txn_put(t, a->db, key, sizeof key, val, sizeof val, SMKI_PUT_NOOVERWRITE));
    }
    return 0;
}

static int check_big(smki_txn *t, void *arg)
{
    big_arg *a = arg;
    uint8_t key[4], want[BIG_VALUE];
    for (uint32_t i = 0; i < BIG_RECORDS; i++) {
        const void *val;
        size_t vlen;
        big_key(i, key);
        big_value(i, want);
        GUARD(smki_txn_get(t, a->db, key, sizeof key, &val, &vlen));
        if (vlen != BIG_VALUE || memcmp(val, want, BIG_VALUE) != 0)
            return SMKI_FAIL(SMKI_E_INTERNAL, "record %u differs", i);
        a->checked++;
    }
    return 0;
}

static void test_write_grows_full_map_and_reruns_transaction(void **state)
{
    (void)state;
    TEST_LMDB_ONLY(); /* LMDB's own files, map or process rules */
    char *dir = fresh_dir("store_grow");
    smki_store *s = open_store(dir, 256 * 1024);
    assert_int_equal(smki_store_map_size(s), 256 * 1024);
    big_arg a = {.db = db_of(s, "big", 0)};
    assert_ok(smki_store_write(s, write_big, &a));
    assert_true(a.runs >= 2);
    assert_true(smki_store_map_size(s) > (size_t)BIG_RECORDS * BIG_VALUE);
    assert_ok(smki_store_read(s, check_big, &a));
    assert_int_equal(a.checked, BIG_RECORDS);
    size_t grown = smki_store_map_size(s);
    smki_store_close(s);

    /* A reopen keeps the grown map rather than shrinking to the asked size. */
    s = open_store(dir, 256 * 1024);
    assert_true(smki_store_map_size(s) >= grown);
    a = (big_arg){.db = db_of(s, "big", 0)};
    assert_ok(smki_store_read(s, check_big, &a));
    assert_int_equal(a.checked, BIG_RECORDS);
    smki_store_close(s);
    free(dir);
}

static void count_commits(size_t records, void *arg)
{
    size_t *log = arg; /* log[0]: commits so far; log[1..]: their sizes */
    log[++log[0]] = records;
}

static void test_batch_grows_full_map_and_replays_group(void **state)
{
    (void)state;
    TEST_LMDB_ONLY(); /* LMDB's own files, map or process rules */
    char *dir = fresh_dir("store_batchgrow");
    smki_store *s = open_store(dir, 256 * 1024);
    big_arg a = {.db = db_of(s, "big", 0)};
    size_t log[64] = {0};
    smki_batch *b = NULL;
    assert_ok(smki_batch_begin(s, 1000, count_commits, log, &b));
    uint8_t key[4], val[BIG_VALUE];
    for (uint32_t i = 0; i < BIG_RECORDS; i++) {
        big_key(i, key);
        big_value(i, val);
        /* NOOVERWRITE: a replayed group must not trip over its own aborted first run */
        assert_ok(smki_batch_put(b, a.db, key, sizeof key, val, sizeof val, SMKI_PUT_NOOVERWRITE));
    }
    assert_ok(smki_batch_end(b));
    assert_int_equal(log[0], 21);
    assert_int_equal(log[21], BIG_RECORDS % 1000);
    assert_true(smki_store_map_size(s) > (size_t)BIG_RECORDS * BIG_VALUE);
    assert_ok(smki_store_read(s, check_big, &a));
    assert_int_equal(a.checked, BIG_RECORDS);
    smki_store_close(s);
    free(dir);
}

/* Another process grows the map past ours: the next transaction here adopts it. */
static void test_store_follows_map_grown_by_another_process(void **state)
{
    (void)state;
    TEST_LMDB_ONLY(); /* LMDB's own files, map or process rules */
    char *dir = fresh_dir("store_resized");
    smki_store *s = open_store(dir, 256 * 1024);
    big_arg a = {.db = db_of(s, "big", 0)};
    assert_ok(put_kv(s, db_of(s, "small", 0), "k", "v", 0));

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        smki_store *c = NULL;
        smki_db db = 0;
        big_arg ca = {0};
        int ok = smki_store_open(dir, NULL, &c) == 0 && smki_store_db(c, "big", 0, &db) == 0;
        ca.db = db;
        ok = ok && smki_store_write(c, write_big, &ca) == 0;
        if (!ok) fprintf(stderr, "child: %s\n", smki_error_msg());
        smki_store_close(c);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    assert_true(smki_store_map_size(s) < (size_t)BIG_RECORDS * BIG_VALUE);
    assert_ok(smki_store_read(s, check_big, &a));
    assert_int_equal(a.checked, BIG_RECORDS);
    assert_true(smki_store_map_size(s) > (size_t)BIG_RECORDS * BIG_VALUE);
    assert_ok(put_kv(s, db_of(s, "small", 0), "k2", "v2", 0));
    smki_store_close(s);
    free(dir);
}

/* ---- Batches ------------------------------------------------------------------------------------ */

static void key_n(char *key, size_t cap, size_t i)
{
    snprintf(key, cap, "rec-%06zu", i);
}

static void test_batch_commits_in_groups_and_reports_each(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_groups");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "records", 0);
    size_t log[16] = {0};
    smki_batch *b = NULL;
    assert_ok(smki_batch_begin(s, 1000, count_commits, log, &b));
    char key[32];
    for (size_t i = 0; i < 2500; i++) {
        key_n(key, sizeof key, i);
        assert_ok(smki_batch_put(b, db, key, strlen(key), key, strlen(key), 0));
        if (i == 999) {
            assert_int_equal(log[0], 1); /* the 1000th put committed the first group */
            assert_int_equal(count_of(s, db), 1000);
        }
    }
    assert_int_equal(log[0], 2);
    assert_int_equal(count_of(s, db), 2000); /* the last 500 wait for the flush */
    assert_ok(smki_batch_flush(b));
    assert_int_equal(log[0], 3);
    assert_ok(smki_batch_flush(b)); /* nothing left: no commit, no report */
    assert_ok(smki_batch_end(b));
    assert_int_equal(log[0], 3);
    assert_int_equal(log[1], 1000);
    assert_int_equal(log[2], 1000);
    assert_int_equal(log[3], 500);
    assert_int_equal(count_of(s, db), 2500);
    assert_string_equal(get_kv(s, db, "rec-002499"), "rec-002499");
    smki_store_close(s);
    free(dir);
}

static void test_batch_refuses_duplicate_and_writes_nothing_of_its_group(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_batchdup");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "serials", 0);
    size_t log[16] = {0};
    smki_batch *b = NULL;
    char key[32];
    assert_ok(smki_batch_begin(s, 10, count_commits, log, &b));
    for (size_t i = 0; i < 10; i++) { /* one whole group, committed */
        key_n(key, sizeof key, i);
        assert_ok(smki_batch_put(b, db, key, strlen(key), "v", 1, SMKI_PUT_NOOVERWRITE));
    }
    assert_int_equal(log[0], 1);

    /* A key already in the store. */
    for (size_t i = 10; i < 15; i++) {
        key_n(key, sizeof key, i);
        assert_ok(smki_batch_put(b, db, key, strlen(key), "v", 1, SMKI_PUT_NOOVERWRITE));
    }
    assert_ok(smki_batch_put(b, db, "rec-000003", 10, "again", 5, SMKI_PUT_NOOVERWRITE));
    /* "rec-000003" in hex */
    assert_fails(smki_batch_flush(b), SMKI_E_EXISTS, "key 7265632d303030303033 already exists");
    assert_int_equal(log[0], 1);
    assert_int_equal(count_of(s, db), 10);
    assert_fails(get_status(s, db, "rec-000012"), SMKI_E_NOTFOUND, NULL);
    assert_string_equal(get_kv(s, db, "rec-000003"), "v");

    /* A key twice in the same group. */
    assert_ok(smki_batch_put(b, db, "dup", 3, "1", 1, SMKI_PUT_NOOVERWRITE));
    assert_ok(smki_batch_put(b, db, "fresh", 5, "1", 1, SMKI_PUT_NOOVERWRITE));
    assert_ok(smki_batch_put(b, db, "dup", 3, "2", 1, SMKI_PUT_NOOVERWRITE));
    assert_fails(smki_batch_flush(b), SMKI_E_EXISTS, "key 647570 already exists");
    assert_fails(get_status(s, db, "dup"), SMKI_E_NOTFOUND, NULL);
    assert_fails(get_status(s, db, "fresh"), SMKI_E_NOTFOUND, NULL);

    /* Without NOOVERWRITE a repeated key simply takes the later value. */
    assert_ok(smki_batch_put(b, db, "dup", 3, "1", 1, 0));
    assert_ok(smki_batch_put(b, db, "dup", 3, "2", 1, 0));
    assert_ok(smki_batch_end(b));
    assert_string_equal(get_kv(s, db, "dup"), "2");
    assert_int_equal(log[0], 2);
    assert_int_equal(count_of(s, db), 11);
    smki_store_close(s);
    free(dir);
}

/* A group as ca batch makes them: per certificate a new record, an index entry that
 * replaces, values added under one DUPSORT key (the same pair again, one already
 * stored), and a new key in a DUPSORT database; every record as a put of its own
 * would leave it. On PostgreSQL such a group goes as a statement per database and
 * kind of put. */
static void test_batch_group_across_databases_keeps_each_puts_meaning(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_batch_rows");
    smki_store *s = open_store(dir, 0);
    smki_db certs = db_of(s, "certs", 0), names = db_of(s, "names", 0);
    smki_db facets = db_of(s, "facets", SMKI_DB_DUPSORT), uniq = db_of(s, "uniq", SMKI_DB_DUPSORT);
    assert_ok(put_kv(s, names, "n1", "old", 0));
    assert_ok(put_kv(s, facets, "f", "v00", 0));
    smki_batch *b = NULL;
    assert_ok(smki_batch_begin(s, 1000, NULL, NULL, &b));
    char k[16], v[16];
    for (int i = 0; i < 100; i++) {
        snprintf(v, sizeof v, "v%02d", i);
        snprintf(k, sizeof k, "c%d", i);
        assert_ok(smki_batch_put(b, certs, k, strlen(k), v, 3, SMKI_PUT_NOOVERWRITE));
        snprintf(k, sizeof k, "n%d", i);
        assert_ok(smki_batch_put(b, names, k, strlen(k), v, 3, 0));
        assert_ok(smki_batch_put(b, facets, "f", 1, v, 3, 0));
        if (i == 7) assert_ok(smki_batch_put(b, facets, "f", 1, "v07", 3, 0));
        snprintf(k, sizeof k, "u%d", i);
        assert_ok(smki_batch_put(b, uniq, k, strlen(k), v, 3, SMKI_PUT_NOOVERWRITE));
    }
    assert_ok(smki_batch_flush(b));
    assert_int_equal(count_of(s, certs), 100);
    assert_int_equal(count_of(s, names), 100);
    assert_string_equal(get_kv(s, names, "n1"), "v01");
    assert_int_equal(count_of(s, facets), 100);
    assert_string_equal(get_kv(s, facets, "f"), "v00");
    assert_int_equal(count_of(s, uniq), 100);
    assert_string_equal(get_kv(s, certs, "c42"), "v42");

    /* Two refusals in one group: the first in put order is named; nothing is written. */
    assert_ok(smki_batch_put(b, certs, "c100", 4, "x", 1, SMKI_PUT_NOOVERWRITE));
    assert_ok(smki_batch_put(b, uniq, "u10", 3, "x", 1, SMKI_PUT_NOOVERWRITE));
    assert_ok(smki_batch_put(b, facets, "f", 1, "x", 1, 0));
    assert_ok(smki_batch_put(b, certs, "c50", 3, "x", 1, SMKI_PUT_NOOVERWRITE));
    assert_fails(smki_batch_flush(b), SMKI_E_EXISTS, "key 753130 already exists in database uniq");
    assert_fails(get_status(s, certs, "c100"), SMKI_E_NOTFOUND, NULL);
    assert_int_equal(count_of(s, facets), 100);
    assert_ok(smki_batch_end(b));
    smki_store_close(s);
    free(dir);
}

typedef struct {
    smki_db db;
    int fail, runs;
} also_arg;

/* The extra step of a flush: one more record, or a refusal, in the group's transaction. */
static int also_fn(smki_txn *t, void *arg)
{
    also_arg *a = arg;
    a->runs++;
    ENSURE(!a->fail, SMKI_E_REFUSED, "the extra step refuses");
    return smki_txn_put(t, a->db, "extra", 5, "x", 1, 0);
}

static void test_batch_flush_with_runs_its_step_in_the_groups_transaction(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_batchwith");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "records", 0), side = db_of(s, "side", 0);
    size_t log[16] = {0};
    smki_batch *b = NULL;
    assert_ok(smki_batch_begin(s, 100, count_commits, log, &b));
    also_arg a = {side, 1, 0};
    assert_ok(smki_batch_flush_with(b, also_fn, &a)); /* nothing buffered: the step does not run */
    assert_int_equal(a.runs, 0);
    /* The step refuses: none of the group is written, and it leaves the buffer. */
    assert_ok(smki_batch_put(b, db, "a", 1, "1", 1, 0));
    assert_fails(smki_batch_flush_with(b, also_fn, &a), SMKI_E_REFUSED, "the extra step refuses");
    assert_int_equal(count_of(s, db), 0);
    assert_int_equal(count_of(s, side), 0);
    assert_int_equal(log[0], 0);
    /* The step agrees: the group and its record commit together. */
    a.fail = 0;
    assert_ok(smki_batch_put(b, db, "b", 1, "2", 1, 0));
    assert_ok(smki_batch_flush_with(b, also_fn, &a));
    assert_int_equal(count_of(s, db), 1);
    assert_string_equal(get_kv(s, side, "extra"), "x");
    assert_int_equal(log[0], 1);
    /* A plain flush afterwards runs no step. */
    int runs = a.runs;
    assert_ok(smki_batch_put(b, db, "c", 1, "3", 1, 0));
    assert_ok(smki_batch_end(b));
    assert_int_equal(a.runs, runs);
    assert_int_equal(count_of(s, db), 2);
    smki_store_close(s);
    free(dir);
}

static void test_batch_abort_drops_unflushed_records(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_batchabort");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "records", 0);
    smki_batch *b = NULL;
    assert_ok(smki_batch_begin(s, 100, NULL, NULL, &b));
    assert_ok(smki_batch_put(b, db, "k", 1, "v", 1, 0));
    smki_batch_abort(b);
    assert_int_equal(count_of(s, db), 0);
    smki_store_close(s);
    free(dir);
}

/* ---- Batches written in the background ------------------------------------------------------- */

typedef struct {
    size_t log[64];
    pthread_t caller;
    int other_thread; /* on_commit ran on a thread other than the caller's */
} bg_log;

static void bg_commits(size_t records, void *arg)
{
    bg_log *l = arg;
    if (!pthread_equal(pthread_self(), l->caller)) l->other_thread = 1;
    l->log[++l->log[0]] = records;
}

static void test_batch_in_the_background_commits_everything_and_reports_in_the_callers_thread(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_bg");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "records", 0);
    bg_log l = {.caller = pthread_self()};
    smki_batch *b = NULL;
    assert_ok(smki_batch_begin_background(s, 1000, bg_commits, &l, &b));
    char key[32];
    for (size_t i = 0; i < 5500; i++) {
        key_n(key, sizeof key, i);
        assert_ok(smki_batch_put(b, db, key, strlen(key), key, strlen(key), SMKI_PUT_NOOVERWRITE));
    }
    /* at most the group in flight and the one filling are not yet reported */
    assert_true(l.log[0] >= 4 && l.log[0] <= 5);
    assert_true(count_of(s, db) >= 4000);
    assert_ok(smki_batch_flush(b)); /* everything put is durable now */
    assert_int_equal(count_of(s, db), 5500);
    assert_int_equal(l.log[0], 6);
    assert_int_equal(l.log[6], 500);
    assert_ok(smki_batch_flush(b)); /* nothing left */
    assert_int_equal(l.log[0], 6);
    for (size_t i = 5500; i < 5600; i++) {
        key_n(key, sizeof key, i);
        assert_ok(smki_batch_put(b, db, key, strlen(key), "v", 1, 0));
    }
    assert_ok(smki_batch_end(b));
    assert_int_equal(count_of(s, db), 5600);
    assert_int_equal(l.log[0], 7);
    size_t total = 0;
    for (size_t i = 1; i <= l.log[0]; i++) total += l.log[i];
    assert_int_equal(total, 5600);
    assert_false(l.other_thread);
    assert_string_equal(get_kv(s, db, "rec-005499"), "rec-005499");
    smki_store_close(s);
    free(dir);
}

static void test_batch_in_the_background_stops_at_a_failed_group(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_bgdup");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "serials", 0);
    bg_log l = {.caller = pthread_self()};
    smki_batch *b = NULL;
    char key[32];
    assert_ok(smki_batch_begin_background(s, 10, bg_commits, &l, &b));
    for (size_t i = 0; i < 10; i++) { /* one group, handed over */
        key_n(key, sizeof key, i);
        assert_ok(smki_batch_put(b, db, key, strlen(key), "v", 1, SMKI_PUT_NOOVERWRITE));
    }
    assert_ok(smki_batch_flush(b));
    assert_int_equal(l.log[0], 1);
    /* a group with a key already in the store */
    for (size_t i = 10; i < 19; i++) {
        key_n(key, sizeof key, i);
        assert_ok(smki_batch_put(b, db, key, strlen(key), "v", 1, SMKI_PUT_NOOVERWRITE));
    }
    assert_ok(smki_batch_put(b, db, "rec-000003", 10, "again", 5, SMKI_PUT_NOOVERWRITE)); /* handed over */
    assert_fails(smki_batch_flush(b), SMKI_E_EXISTS, "key 7265632d303030303033 already exists");
    /* sticky: nothing more is taken or written */
    assert_fails(smki_batch_put(b, db, "later", 5, "v", 1, 0), SMKI_E_EXISTS, "not written");
    assert_fails(smki_batch_flush(b), SMKI_E_EXISTS, "not written");
    assert_fails(smki_batch_end(b), SMKI_E_EXISTS, "not written");
    assert_int_equal(count_of(s, db), 10);
    assert_int_equal(l.log[0], 1);
    assert_fails(get_status(s, db, "rec-000012"), SMKI_E_NOTFOUND, NULL);
    assert_fails(get_status(s, db, "later"), SMKI_E_NOTFOUND, NULL);
    smki_store_close(s);
    free(dir);
}

static void test_batch_in_the_background_abort_writes_only_what_was_handed_over(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_bgabort");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "records", 0);
    smki_batch *b = NULL;
    char key[32];
    assert_ok(smki_batch_begin_background(s, 100, NULL, NULL, &b));
    for (size_t i = 0; i < 150; i++) { /* the first 100 are handed over, 50 wait */
        key_n(key, sizeof key, i);
        assert_ok(smki_batch_put(b, db, key, strlen(key), "v", 1, 0));
    }
    smki_batch_abort(b);
    assert_int_equal(count_of(s, db), 100);
    assert_ok(smki_batch_begin_background(s, 100, NULL, NULL, &b));
    /* A step inside the group's transaction needs the caller's thread: refused. */
    assert_fails(smki_batch_flush_with(b, NULL, NULL), SMKI_E_USAGE, "background");
    smki_batch_abort(b); /* nothing put */
    assert_int_equal(count_of(s, db), 100);
    smki_store_close(s);
    free(dir);
}

static void test_batch_writes_100k_records_in_groups_of_1000(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_bulk");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "records", 0);
    size_t log[128] = {0};
    smki_batch *b = NULL;
    uint8_t key[8], val[CRASH_VALUE_MAX];
    double start = now_seconds();
    assert_ok(smki_batch_begin(s, 1000, count_commits, log, &b));
    for (uint64_t i = 0; i < 100000; i++) {
        crash_key(i, key);
        size_t vlen = crash_value(i, val) % 64 + 16; /* small records */
        assert_ok(smki_batch_put(b, db, key, sizeof key, val, vlen, SMKI_PUT_NOOVERWRITE));
    }
    assert_ok(smki_batch_end(b));
    double took = now_seconds() - start;
    print_message("store: 100000 records in 100 group commits: %.3f s (%.0f records/s)\n", took, 100000 / took);
    assert_int_equal(log[0], 100);
    assert_int_equal(count_of(s, db), 100000);
    smki_store_close(s);
    free(dir);
}

/* ---- Read-only stores ----------------------------------------------------------------------- */

static void test_read_only_store_reads_but_refuses_writes(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_ro");
    smki_store *s = open_store(dir, 0);
    assert_ok(put_kv(s, db_of(s, "certs", 0), "k", "v", 0));
    smki_store_close(s);

    s = open_read_only(dir);
    assert_int_equal(smki_store_schema(s), SMKI_STORE_SCHEMA);
    smki_db db = db_of(s, "certs", 0);
    assert_string_equal(get_kv(s, db, "k"), "v");
    assert_fails(put_kv(s, db, "k2", "v", 0), SMKI_E_USAGE, "read-only");
    smki_batch *b = NULL;
    assert_fails(smki_batch_begin(s, 10, NULL, NULL, &b), SMKI_E_USAGE, "read-only");
    assert_null(b);
    smki_db other;
    assert_fails(smki_store_db(s, "never-made", 0, &other), SMKI_E_NOTFOUND, "never-made");
    smki_store_close(s);

    s = open_store(dir, 0);
    smki_db missing;
    assert_ok(smki_store_db(s, "certs", 0, &missing));
    assert_fails(get_status(s, missing, "k2"), SMKI_E_NOTFOUND, NULL);
    smki_store_close(s);
    free(dir);
}

/* ---- Threads ---------------------------------------------------------------------------------- */

#define THREAD_COMMITS 400

typedef struct {
    smki_store *s;
    smki_db pair, fill;
    atomic_int writer_done;
    atomic_int torn;     /* a reader saw "a" and "b" disagree */
    atomic_int failed;
    atomic_long reads;
} thread_arg;

typedef struct {
    thread_arg *ta;
    uint32_t n;
} commit_arg;

static int commit_pair(smki_txn *t, void *arg)
{
    commit_arg *c = arg;
    uint8_t v[4] = {(uint8_t)(c->n >> 24), (uint8_t)(c->n >> 16), (uint8_t)(c->n >> 8), (uint8_t)c->n};
    static uint8_t filler[4096];
    GUARD(smki_txn_put(t, c->ta->pair, "a", 1, v, 4, 0));
    GUARD(smki_txn_put(t, c->ta->fill, v, 4, filler, sizeof filler, 0)); /* grows the map now and then */
    return smki_txn_put(t, c->ta->pair, "b", 1, v, 4, 0);
}

static void *writer_thread(void *p)
{
    thread_arg *ta = p;
    for (uint32_t n = 1; n <= THREAD_COMMITS; n++) {
        commit_arg c = {ta, n};
        if (smki_store_write(ta->s, commit_pair, &c) < 0) {
            fprintf(stderr, "writer: %s\n", smki_error_msg());
            atomic_fetch_add(&ta->failed, 1);
            break;
        }
    }
    atomic_store(&ta->writer_done, 1);
    return NULL;
}

/* What a reader may rely on is that each transaction sees one whole commit. It
 * may not rely on two successive reads seeing commits in order while another
 * thread commits: LMDB 0.9.24 publishes a commit's transaction id after writing
 * its meta page, so a reader that starts between the two can see the newest commit
 * and the next reader the one before it (seen here, one commit back, under load). */
typedef struct {
    thread_arg *ta;
} read_state;

static int read_pair(smki_txn *t, void *arg)
{
    read_state *r = arg;
    const void *a, *b;
    size_t alen, blen;
    int rc = smki_txn_get(t, r->ta->pair, "a", 1, &a, &alen);
    if (rc == SMKI_E_NOTFOUND) return 0; /* before the first commit */
    GUARD(rc);
    GUARD(smki_txn_get(t, r->ta->pair, "b", 1, &b, &blen));
    if (alen != 4 || blen != 4 || memcmp(a, b, 4) != 0) atomic_fetch_add(&r->ta->torn, 1);
    return 0;
}

static void *reader_thread(void *p)
{
    read_state r = {p};
    while (!atomic_load(&r.ta->writer_done)) {
        if (smki_store_read(r.ta->s, read_pair, &r) < 0) {
            fprintf(stderr, "reader: %s\n", smki_error_msg());
            atomic_fetch_add(&r.ta->failed, 1);
            break;
        }
        atomic_fetch_add(&r.ta->reads, 1);
    }
    return NULL;
}

static void test_readers_on_two_threads_see_whole_commits_while_writer_grows_map(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_threads");
    thread_arg ta = {.s = open_store(dir, 256 * 1024)};
    ta.pair = db_of(ta.s, "pair", 0);
    ta.fill = db_of(ta.s, "fill", 0);
    pthread_t readers[2], writer;
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&readers[i], NULL, reader_thread, &ta), 0);
    assert_int_equal(pthread_create(&writer, NULL, writer_thread, &ta), 0);
    pthread_join(writer, NULL);
    for (int i = 0; i < 2; i++) pthread_join(readers[i], NULL);

    assert_int_equal(atomic_load(&ta.failed), 0);
    assert_int_equal(atomic_load(&ta.torn), 0);
    assert_true(atomic_load(&ta.reads) > 0);
    if (!test_engine_is_pg()) assert_true(smki_store_map_size(ta.s) > 256 * 1024);
    assert_int_equal(count_of(ta.s, ta.fill), THREAD_COMMITS);
    print_message("store: %ld reads on 2 threads during %d commits\n", (long)atomic_load(&ta.reads), THREAD_COMMITS);
    smki_store_close(ta.s);
    free(dir);
}

/* ---- The maintenance lock ------------------------------------------------------------------ */

static void test_exclusive_lock_held_by_another_process_names_its_pid(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_lock");
    smki_store *s = open_store(dir, 0);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        smki_store *c = NULL;
        char ok = smki_store_open(dir, NULL, &c) == 0 && smki_store_lock_exclusive(c) == 0 ? 'y' : 'n';
        if (write(ready[1], &ok, 1) != 1) _exit(1);
        for (;;) pause(); /* hold it until killed */
    }
    close(ready[1]);
    char ok = 0;
    assert_int_equal(read(ready[0], &ok, 1), 1);
    close(ready[0]);
    assert_int_equal(ok, 'y');

    char want[1200];
    if (test_engine_is_pg()) /* the holder's session names it (application_name) */
        snprintf(want, sizeof want, "is locked by process %ld (its PostgreSQL session, server pid ", (long)pid);
    else
        snprintf(want, sizeof want, "store %s is locked by process %ld (fcntl F_GETLK)", dir, (long)pid);
    assert_fails(smki_store_lock_exclusive(s), SMKI_E_LOCKED, want);

    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_ok(smki_store_lock_exclusive(s));
    assert_ok(smki_store_lock_exclusive(s)); /* already ours */
    smki_store_unlock(s);
    assert_ok(smki_store_lock_exclusive(s));
    smki_store_close(s); /* closing lets go */
    free(dir);
}

/* ---- A writer killed mid-batch ------------------------------------------------------------ */

static const char *crash_child_path(void)
{
    static char path[4096];
    const char *build = getenv("SMKI_BUILD");
    if (build && *build) {
        snprintf(path, sizeof path, "%s/bin/store_crash_child", build);
        return path;
    }
    char self[4000];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return NULL;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash) return NULL;
    *slash = '\0';
    snprintf(path, sizeof path, "%s/store_crash_child", self);
    return path;
}

typedef struct {
    char partial[64];
    size_t len;
    long long last; /* highest index the child reported committed; -1: none */
    int lines;
} child_output;

static void take_output(child_output *o, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] != '\n') {
            if (o->len < sizeof o->partial - 1) o->partial[o->len++] = buf[i];
            continue;
        }
        o->partial[o->len] = '\0';
        o->last = strtoll(o->partial, NULL, 10);
        o->lines++;
        o->len = 0;
    }
}

/* Reads the child's output until the deadline (or, with until_lines, until that many
 * lines); returns 0 at end of output. */
static int read_child(int fd, child_output *o, double deadline, int until_lines)
{
    char buf[4096];
    for (;;) {
        double left = deadline - now_seconds();
        if (left <= 0 || (until_lines && o->lines >= until_lines)) return 1;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 1;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        take_output(o, buf, (size_t)n);
    }
}

typedef struct {
    smki_db db;
    uint64_t next;
    uint64_t bad;
} verify_arg;

static int verify_record(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    verify_arg *v = arg;
    uint8_t want_key[8], want_val[CRASH_VALUE_MAX];
    crash_key(v->next, want_key);
    size_t want_len = crash_value(v->next, want_val);
    if (klen != 8 || memcmp(key, want_key, 8) != 0 || vlen != want_len || memcmp(val, want_val, vlen) != 0) {
        if (v->bad++ == 0) fprintf(stderr, "record %llu is not what was written\n", (unsigned long long)v->next);
    }
    v->next++;
    return 0;
}

static int verify_all(smki_txn *t, void *arg)
{
    verify_arg *v = arg;
    GUARD(smki_txn_scan(t, v->db, NULL, 0, verify_record, v));
    size_t count;
    GUARD(smki_txn_count(t, v->db, &count));
    if (count != v->next)
        return SMKI_FAIL(SMKI_E_INTERNAL, "count %zu but scanned %llu", count, (unsigned long long)v->next);
    return 0;
}

/* A process that keeps the store open and idle. Without one, whoever opens the store
 * next is its only user and LMDB resets the whole reader table; with one, the dead
 * writer's reader slots stay behind for smki_store_open to find and clear. */
static pid_t start_holder(const char *dir)
{
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        smki_store *s = NULL;
        char ok = smki_store_open(dir, NULL, &s) == 0 ? 'y' : 'n';
        if (write(ready[1], &ok, 1) != 1) _exit(1);
        for (;;) pause();
    }
    close(ready[1]);
    char ok = 0;
    assert_int_equal(read(ready[0], &ok, 1), 1);
    close(ready[0]);
    assert_int_equal(ok, 'y');
    return pid;
}

static void test_store_survives_writer_killed_mid_batch(void **state)
{
    (void)state;
    const char *exe = crash_child_path();
    if (!exe || access(exe, X_OK) != 0) {
        print_error("store_crash_child not found (%s); set SMKI_BUILD\n", exe ? exe : "?");
        fail();
    }
    char *dir = fresh_dir("store_crash");
    char location[2048]; /* what the child opens: the folder, or its schema on the test cluster */
    snprintf(location, sizeof location, "%s", dir);
    if (test_engine_is_pg()) assert_ok(test_pg_location(dir, location, sizeof location));
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    print_message("store crash test: seed %u\n", seed);
    unsigned stale_total = 0;
    uint64_t records = 0;
    int kills_mid_write = 0;
    double start = now_seconds();
    pid_t holder = start_holder(dir);

    /* 20 rounds in make test; make soak sets SMKI_CRASH_ROUNDS for a long run. */
    const char *rounds_env = getenv("SMKI_CRASH_ROUNDS");
    int rounds = rounds_env && atoi(rounds_env) > 0 ? atoi(rounds_env) : 20;
    for (int round = 0; round < rounds; round++) {
        int out[2];
        assert_int_equal(pipe(out), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            dup2(out[1], STDOUT_FILENO);
            close(out[0]);
            close(out[1]);
            execl(exe, exe, location, (char *)NULL);
            _exit(127);
        }
        close(out[1]);
        child_output o = {.last = -1};
        int delay_ms = round % 2 ? rand_r(&seed) % 40 : rand_r(&seed) % 200;
        if (round % 2 == 0) {
            /* Half the rounds kill a writer that is surely writing; the others kill
             * at any moment from its start, open and map growth included. */
            read_child(out[0], &o, now_seconds() + 10, 1);
            assert_true(o.lines >= 1);
        }
        read_child(out[0], &o, now_seconds() + delay_ms / 1000.0, 0);
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        while (read_child(out[0], &o, now_seconds() + 5, 0)) {} /* what it printed before dying */
        close(out[0]);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
            print_error("round %d: child ended by itself (status %d) before the kill\n", round, status);
            fail();
        }
        if (o.lines > 0) kills_mid_write++;

        /* Every record it reported is there and intact; no group is there in part. */
        smki_store *s = open_store(dir, 0);
        stale_total += smki_store_stale_readers(s);
        verify_arg v = {.db = db_of(s, CRASH_DB, 0)};
        assert_ok(smki_store_read(s, verify_all, &v));
        smki_store_close(s);
        assert_int_equal(v.bad, 0);
        assert_true((long long)v.next > o.last);
        assert_int_equal(v.next % CRASH_GROUP, 0);
        assert_true(v.next >= records); /* nothing committed earlier went missing */
        records = v.next;
        /* The open cleared the dead writer's reader slots: none remain. */
        if (!test_engine_is_pg()) assert_int_equal(raw_dead_readers(dir), 0);
    }
    kill(holder, SIGKILL);
    assert_int_equal(waitpid(holder, NULL, 0), holder);
    print_message("store crash test: %d kills (%d mid-write) in %.1f s, %llu records survive, %u stale readers "
                  "cleared\n", rounds, kills_mid_write, now_seconds() - start, (unsigned long long)records, stale_total);
    assert_true(records > 0);
    if (!test_engine_is_pg()) assert_true(stale_total > 0); /* the child's reader thread is nearly always inside a read */
    free(dir);
}

/* ---- The PostgreSQL engine's own refusals and recoveries ------------------------------- */

static void test_pg_conninfo_with_password_is_refused_without_showing_it(void **state)
{
    (void)state;
    smki_store *s = NULL;
    assert_fails(smki_store_open("postgresql:host=/nowhere dbname=smki password=hunter2", NULL, &s), SMKI_E_USAGE,
                 "holds a password; put it in a password file");
    assert_null(strstr(smki_error_msg(), "hunter2"));
    assert_fails(smki_store_open("postgresql://smki:hunter2@localhost/smki", NULL, &s), SMKI_E_USAGE,
                 "PGPASSFILE");
    assert_null(strstr(smki_error_msg(), "hunter2"));
    assert_fails(smki_store_open("postgresql:host=/x dbname", NULL, &s), SMKI_E_USAGE,
                 "is not a libpq connection string");
}

static void test_pg_unreachable_server_names_the_socket_and_what_to_check(void **state)
{
    (void)state;
    char *dir = fresh_dir("store_pg_unreachable"); /* a folder with no server's socket in it */
    char location[1200];
    snprintf(location, sizeof location, "postgresql:host=%s port=5999 dbname=smki", dir);
    smki_store *s = NULL;
    assert_fails(smki_store_open(location, NULL, &s), SMKI_E_STORE, "cannot reach the PostgreSQL server at socket directory");
    assert_non_null(strstr(smki_error_msg(), dir));
    assert_non_null(strstr(smki_error_msg(), "port 5999"));
    assert_non_null(strstr(smki_error_msg(), "pg_isready"));
    assert_null(s);
    assert_fails(smki_store_exists(location), SMKI_E_STORE, "cannot reach");
    free(dir);
}

/* The cluster's conninfo with user and options replaced (test cluster only). */
static void pg_location_as(const char *user, const char *extra, char *buf, size_t cap)
{
    const char *ci = test_pg_conninfo();
    const char *host = strstr(ci, "host=");
    assert_non_null(host);
    snprintf(buf, cap, "%s%.*s dbname=postgres user=%s %s", SMKI_STORE_PG_PREFIX, (int)strcspn(host, " "), host, user,
             extra);
}

static void test_pg_login_refused_and_password_read_from_passfile(void **state)
{
    (void)state;
    if (!test_engine_is_pg()) skip(); /* needs the test cluster's password role */
    char *dir = fresh_dir("store_pg_auth");
    char location[2000], passfile[1200], extra[1300];
    smki_store *s = NULL;
    pg_location_as("smki_pw", "", location, sizeof location);
    assert_fails(smki_store_open(location, NULL, &s), SMKI_E_REFUSED, "refused the login");
    assert_non_null(strstr(smki_error_msg(), "PGPASSFILE"));

    snprintf(passfile, sizeof passfile, "%s/pgpass", dir);
    FILE *f = fopen(passfile, "w");
    assert_non_null(f);
    fputs("*:*:*:smki_pw:a-wrong-password\n", f);
    fclose(f);
    chmod(passfile, 0600);
    snprintf(extra, sizeof extra, "passfile=%s", passfile);
    pg_location_as("smki_pw", extra, location, sizeof location);
    assert_fails(smki_store_open(location, NULL, &s), SMKI_E_REFUSED, "password authentication failed");
    assert_null(strstr(smki_error_msg(), "a-wrong-password"));

    f = fopen(passfile, "w");
    assert_non_null(f);
    fputs("*:*:*:smki_pw:smki-test-password\n", f);
    fclose(f);
    /* the role may read but own nothing here: it opens an empty store read-only */
    smki_store_opts ro = {.read_only = 1};
    assert_ok(smki_store_open(location, &ro, &s));
    smki_store_close(s);
    free(dir);
}

static void test_pg_read_only_server_refuses_writes_as_a_standby(void **state)
{
    (void)state;
    if (!test_engine_is_pg()) skip();
    char *dir = fresh_dir("store_pg_standby");
    smki_store *s = open_store(dir, 0);
    smki_db db = db_of(s, "certs", 0);
    assert_ok(put_kv(s, db, "k", "v", 0));
    smki_store_close(s);
    /* A server that takes no writes (as a hot standby does) */
    char location[2048];
    assert_ok(test_pg_location(dir, location, sizeof location));
    location[strlen(location) - 1] = '\0'; /* inside options='...' */
    strcat(location, " -c default_transaction_read_only=on'");
    assert_ok(smki_store_open(location, NULL, &s)); /* what exists opens, without writing */
    db = db_of(s, "certs", 0);
    assert_string_equal(get_kv(s, db, "k"), "v");
    assert_fails(put_kv(s, db, "k2", "v2", 0), SMKI_E_REFUSED, "this is a standby; writes go to the primary");
    /* not in recovery: the message names the session's read-only setting, not recovery */
    assert_non_null(strstr(smki_error_msg(), "its session being read-only (default_transaction_read_only"));
    smki_store_close(s);
    free(dir);
}

typedef struct {
    smki_db db;
    int runs;
    const char *location;
} lost_arg;

/* Ends its own session once (from another session) and then goes on writing. */
static int write_losing_connection_once(smki_txn *t, void *arg)
{
    lost_arg *a = arg;
    a->runs++;
    GUARD(smki_txn_put(t, a->db, "first", 5, "1", 1, 0));
    if (a->runs == 1) {
        PGconn *c = PQconnectdb(a->location + strlen(SMKI_STORE_PG_PREFIX));
        char sql[200];
        snprintf(sql, sizeof sql,
                 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'smki pid %ld' "
                 "AND state LIKE 'idle in transaction%%'",
                 (long)getpid());
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) fail_msg("terminate: %s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
    }
    return smki_txn_put(t, a->db, "second", 6, "2", 1, SMKI_PUT_NOOVERWRITE);
}

static void test_pg_write_rerun_after_connection_lost_before_commit(void **state)
{
    (void)state;
    if (!test_engine_is_pg()) skip();
    char *dir = fresh_dir("store_pg_lost");
    char location[2048];
    assert_ok(test_pg_location(dir, location, sizeof location));
    smki_store *s = open_store(dir, 0);
    lost_arg a = {db_of(s, "certs", 0), 0, location};
    assert_ok(smki_store_write(s, write_losing_connection_once, &a));
    assert_int_equal(a.runs, 2); /* the first run lost its session and was re-run whole */
    assert_string_equal(get_kv(s, a.db, "first"), "1");
    assert_string_equal(get_kv(s, a.db, "second"), "2");
    assert_int_equal(test_store_count(s, a.db), 2);
    smki_store_close(s);
    free(dir);
}

typedef struct {
    smki_db db;
    int runs;
} commit_lost_arg;

static int write_one_counted(smki_txn *t, void *arg)
{
    commit_lost_arg *a = arg;
    a->runs++;
    return smki_txn_put(t, a->db, "slow", 4, "1", 1, 0);
}

typedef struct {
    const char *dir;
    int terminated;
} terminator_arg;

/* From another session: waits for this process's session to be in its COMMIT, then
 * ends it (as a server restart or a network cut would at that moment). */
static void *terminate_in_commit(void *arg)
{
    terminator_arg *x = arg;
    PGconn *c = raw_pg(x->dir);
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'smki pid %ld' "
             "AND state = 'active' AND query = 'COMMIT'",
             (long)getpid());
    for (int i = 0; i < 1000 && !x->terminated; i++) {
        PGresult *r = PQexec(c, sql);
        x->terminated = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        PQclear(r);
        if (!x->terminated) usleep(10000);
    }
    PQfinish(c);
    return NULL;
}

/* A connection lost during COMMIT leaves the outcome unknown (the server may have
 * committed): the write is not re-run, and the error says so and what to check. The
 * COMMIT is held open by a deferred trigger that sleeps (test cluster only). */
static void test_pg_connection_lost_during_commit_is_not_rerun(void **state)
{
    (void)state;
    if (!test_engine_is_pg()) skip();
    char *dir = fresh_dir("store_pg_lost_commit");
    smki_store *s = open_store(dir, 0);
    commit_lost_arg a = {db_of(s, "certs", 0), 0};
    PGconn *c = raw_pg(dir);
    raw_pg_exec(c, "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN PERFORM pg_sleep(20); RETURN NULL; END $$", 0, NULL, 0, NULL, 0);
    raw_pg_exec(c, "CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON kv_certs DEFERRABLE INITIALLY DEFERRED "
                   "FOR EACH ROW EXECUTE FUNCTION slow_commit()", 0, NULL, 0, NULL, 0);
    terminator_arg x = {dir, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, terminate_in_commit, &x), 0);
    assert_fails(smki_store_write(s, write_one_counted, &a), SMKI_E_STORE, "was lost while committing");
    pthread_join(th, NULL);
    assert_true(x.terminated);
    assert_int_equal(a.runs, 1); /* not re-run: it may have been committed */
    assert_non_null(strstr(smki_error_msg(), "whether this write was committed is unknown, so it was not re-run"));
    assert_non_null(strstr(smki_error_msg(), "before repeating it"));
    raw_pg_exec(c, "DROP TRIGGER slow ON kv_certs", 0, NULL, 0, NULL, 0);
    PQfinish(c);
    /* the store goes on: a new session, and this write (its trigger aborted it) was not committed */
    assert_int_equal(test_store_count(s, a.db), 0);
    assert_ok(put_kv(s, a.db, "after", "1", 0));
    assert_int_equal(test_store_count(s, a.db), 1);
    smki_store_close(s);
    free(dir);
}

int main(void)
{
    /* SMKI_TEST_FILTER runs only the tests whose names match (make soak uses it). */
    if (getenv("SMKI_TEST_FILTER")) cmocka_set_test_filter(getenv("SMKI_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_creates_private_store_that_keeps_data_when_reopened),
        cmocka_unit_test(test_open_writes_schema_version_big_endian),
        cmocka_unit_test(test_open_refuses_newer_schema),
        cmocka_unit_test(test_open_refuses_malformed_schema_record),
        cmocka_unit_test(test_open_refuses_lmdb_store_without_schema),
        cmocka_unit_test(test_open_refuses_garbage_file_as_corrupt_naming_path),
        cmocka_unit_test(test_open_read_only_refuses_missing_store),
        cmocka_unit_test(test_open_refuses_unreadable_store_as_permission_denied),
        cmocka_unit_test(test_open_refuses_second_handle_in_one_process),
        cmocka_unit_test(test_open_clears_no_stale_readers_on_a_clean_store),
        cmocka_unit_test(test_put_get_del_round_trip),
        cmocka_unit_test(test_put_nooverwrite_refuses_existing_key_naming_it_in_hex),
        cmocka_unit_test(test_get_and_del_of_missing_key_are_notfound),
        cmocka_unit_test(test_get_many_answers_each_key_in_order_and_reports_absent_ones),
        cmocka_unit_test(test_get_many_of_more_keys_than_one_statement_takes),
        cmocka_unit_test(test_get_many_in_dupsort_db_gives_each_keys_first_value),
        cmocka_unit_test(test_get_many_refuses_empty_key_and_unknown_handle),
        cmocka_unit_test(test_put_refuses_empty_and_oversized_keys),
        cmocka_unit_test(test_put_in_read_transaction_refused),
        cmocka_unit_test(test_write_fn_failure_aborts_its_transaction),
        cmocka_unit_test(test_scan_visits_prefix_in_key_order_and_stops_early),
        cmocka_unit_test(test_scan_passes_back_visitor_failure),
        cmocka_unit_test(test_scan_join_brings_each_entrys_record_in_key_order),
        cmocka_unit_test(test_scans_fetched_ahead_give_what_each_scan_gives),
        cmocka_unit_test(test_scans_fetched_ahead_beyond_one_statement_each_find_their_own),
        cmocka_unit_test(test_scans_fetched_ahead_refuse_what_a_scan_refuses_and_may_go_untaken),
        cmocka_unit_test(test_scan_of_an_all_ff_prefix_reaches_the_last_key),
        cmocka_unit_test(test_get_after_the_transactions_own_write_sees_it),
        cmocka_unit_test(test_read_sees_one_snapshot_while_a_write_commits_between_its_statements),
        cmocka_unit_test(test_count_follows_puts_and_deletes),
        cmocka_unit_test(test_dupsort_db_keeps_every_value_of_a_key_in_order),
        cmocka_unit_test(test_dupsort_scan_returns_values_sorted),
        cmocka_unit_test(test_del_dup_removes_one_value_and_keeps_the_others),
        cmocka_unit_test(test_scan_next_key_skips_the_rest_of_a_keys_values),
        cmocka_unit_test(test_seek_finds_the_first_key_at_or_after),
        cmocka_unit_test(test_clear_empties_a_database_and_keeps_it_usable),
        cmocka_unit_test(test_set_schema_moves_forward_only_and_only_when_committed),
        cmocka_unit_test(test_del_dup_of_absent_pair_is_notfound_and_changes_nothing),
        cmocka_unit_test(test_del_dup_refused_on_plain_db_and_in_read_transaction),
        cmocka_unit_test(test_db_first_asked_for_inside_transaction_refused),
        cmocka_unit_test(test_handle_never_opened_in_this_store_refused),
        cmocka_unit_test(test_nested_write_on_one_thread_refused),
        cmocka_unit_test(test_write_grows_full_map_and_reruns_transaction),
        cmocka_unit_test(test_batch_grows_full_map_and_replays_group),
        cmocka_unit_test(test_store_follows_map_grown_by_another_process),
        cmocka_unit_test(test_batch_commits_in_groups_and_reports_each),
        cmocka_unit_test(test_batch_refuses_duplicate_and_writes_nothing_of_its_group),
        cmocka_unit_test(test_batch_group_across_databases_keeps_each_puts_meaning),
        cmocka_unit_test(test_batch_flush_with_runs_its_step_in_the_groups_transaction),
        cmocka_unit_test(test_batch_abort_drops_unflushed_records),
        cmocka_unit_test(test_batch_in_the_background_commits_everything_and_reports_in_the_callers_thread),
        cmocka_unit_test(test_batch_in_the_background_stops_at_a_failed_group),
        cmocka_unit_test(test_batch_in_the_background_abort_writes_only_what_was_handed_over),
        cmocka_unit_test(test_batch_writes_100k_records_in_groups_of_1000),
        cmocka_unit_test(test_read_only_store_reads_but_refuses_writes),
        cmocka_unit_test(test_readers_on_two_threads_see_whole_commits_while_writer_grows_map),
        cmocka_unit_test(test_exclusive_lock_held_by_another_process_names_its_pid),
        cmocka_unit_test(test_store_survives_writer_killed_mid_batch),
        cmocka_unit_test(test_pg_conninfo_with_password_is_refused_without_showing_it),
        cmocka_unit_test(test_pg_unreachable_server_names_the_socket_and_what_to_check),
        cmocka_unit_test(test_pg_login_refused_and_password_read_from_passfile),
        cmocka_unit_test(test_pg_read_only_server_refuses_writes_as_a_standby),
        cmocka_unit_test(test_pg_write_rerun_after_connection_lost_before_commit),
        cmocka_unit_test(test_pg_connection_lost_during_commit_is_not_rerun),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
