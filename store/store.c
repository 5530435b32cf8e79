/* store: the store behind every smki module. The embedded engine is an LMDB
 * environment per folder (a map that doubles instead of failing with MDB_MAP_FULL);
 * a location SMKI_STORE_PG_PREFIX + conninfo is PostgreSQL (pg.c). Both have a schema
 * version, named databases cached per store, and errors that name the location. */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np: a writer-preferring quiesce lock */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_private.h"

#define DEFAULT_MAP ((size_t)64 << 20)
/* LMDB needs a handful of pages for its meta pages and first tree; below this a
 * new environment cannot even hold its schema record. */
#define MIN_MAP ((size_t)64 << 10)
#define DEFAULT_MAX_DBS 64u
#define MAX_READERS 126u
/* Bounds the re-runs of one write; doubling from MIN_MAP reaches the address space
 * limit long before this. */
#define MAX_ATTEMPTS 48

static const char schema_key[] = "schema";

typedef struct {
    char *name;
    unsigned flags; /* SMKI_DB_* */
    MDB_dbi dbi;
} db_entry;

struct smki_store {
    MDB_env *env;
    pg_store *pg; /* the PostgreSQL engine instead of env */
    char *path;
    int read_only;
    _Atomic uint32_t schema;
    unsigned stale_readers;
    size_t max_key;
    _Atomic size_t map_size;
    atomic_int is_broken; /* a failed remap left no usable map: only close is safe */
    /* Held shared by every transaction of this process for its whole life, taken
     * exclusive to change what transactions see: remapping (LMDB allows
     * mdb_env_set_mapsize only with no transaction active in the process) and adding
     * a database handle (a transaction sees only handles opened before it began). */
    pthread_rwlock_t quiesce;
    pthread_mutex_t dbs_lock; /* guards dbs/ndbs */
    db_entry *dbs;
    size_t ndbs, max_dbs;
    int maint_fd;
    pid_t pid;
    dev_t dev;
    ino_t ino;
    smki_store *next_open;
};

/* The transactions this thread has open, innermost first. They nest with the
 * callbacks that run them, so they end in the reverse order they began. */
static _Thread_local smki_txn *thread_txns;

static smki_txn *thread_txn_on(const smki_store *s, int writes_only)
{
    for (smki_txn *t = thread_txns; t; t = t->outer)
        if (t->s == s && (t->is_write || !writes_only)) return t;
    return NULL;
}

void smki_store_txn_enter(smki_txn *t)
{
    t->outer = thread_txns;
    thread_txns = t;
}

void smki_store_txn_leave(smki_txn *t) { thread_txns = t->outer; }

/* A transaction that is open, on either engine. */
static int is_live(const smki_txn *t) { return t && (t->txn || t->pg); }

/* ---- Errors ------------------------------------------------------------------ */

static int fail_lmdb_at(const char *file, int line, const char *path, int mrc, const char *doing)
{
    switch (mrc) {
    case EACCES:
    case EPERM:
    case EROFS:
        return smki_fail_at(SMKI_E_IO, file, line, "cannot %s store %s: permission denied", doing, path);
    case ENOENT:
        return smki_fail_at(SMKI_E_NOTFOUND, file, line, "cannot %s store %s: it does not exist", doing, path);
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
        return smki_fail_at(SMKI_E_CORRUPT, file, line, "cannot %s store %s: it is damaged or not an LMDB store (%s)",
                            doing, path, mdb_strerror(mrc));
    case EAGAIN:
    case MDB_READERS_FULL:
        return smki_fail_at(SMKI_E_LOCKED, file, line, "cannot %s store %s: it is busy (%s)", doing, path,
                            mdb_strerror(mrc));
    case MDB_BAD_VALSIZE:
        return smki_fail_at(SMKI_E_USAGE, file, line, "cannot %s store %s: a key or value of a size LMDB refuses (%s)",
                            doing, path, mdb_strerror(mrc));
    default:
        return smki_fail_at(SMKI_E_STORE, file, line, "cannot %s store %s: %s", doing, path, mdb_strerror(mrc));
    }
}
#define FAIL_LMDB(s, mrc, doing) smki_failure(fail_lmdb_at(__FILE__, __LINE__, (s)->path, (mrc), (doing)))

/* A key for messages: hex, shortened past 32 octets. buf holds at least 72. */
static const char *key_hex(const void *key, size_t klen, char *buf)
{
    size_t n = klen > 32 ? 32 : klen;
    smki_hex_encode(key, n, buf, 0);
    if (klen > n) strcat(buf, "...");
    return buf;
}

/* ---- Processes that have the store open ---------------------------------------
 * LMDB's locks are fcntl locks, which a process loses when it closes any descriptor
 * of the file: a second environment on the same folder in one process would, on
 * closing, silently unlock the first. So a folder is open at most once per process. */

static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static smki_store *open_stores;

static int register_open(smki_store *s)
{
    pthread_mutex_lock(&open_lock);
    for (smki_store *o = open_stores; o; o = o->next_open) {
        if (o->dev != s->dev || o->ino != s->ino || o->pid != s->pid) continue;
        pthread_mutex_unlock(&open_lock);
        return SMKI_FAIL(SMKI_E_USAGE, "store %s is already open in this process (as %s); share that handle", s->path,
                         o->path);
    }
    s->next_open = open_stores;
    open_stores = s;
    pthread_mutex_unlock(&open_lock);
    return 0;
}

static void unregister_open(smki_store *s)
{
    pthread_mutex_lock(&open_lock);
    for (smki_store **p = &open_stores; *p; p = &(*p)->next_open)
        if (*p == s) {
            *p = s->next_open;
            break;
        }
    pthread_mutex_unlock(&open_lock);
}

/* ---- The map ------------------------------------------------------------------- */

/* Remap at `size` (0: the size the environment's meta page records, which another
 * process may have grown). The caller holds quiesce exclusive. */
static int remap_locked(smki_store *s, size_t size)
{
    size_t before = atomic_load(&s->map_size);
    int mrc = mdb_env_set_mapsize(s->env, size);
    if (mrc != 0) {
        if (mdb_env_set_mapsize(s->env, before) != 0) atomic_store(&s->is_broken, 1);
        return FAIL_LMDB(s, mrc, "grow the map of");
    }
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    atomic_store(&s->map_size, info.me_mapsize);
    return 0;
}

/* Double the map that a write found full at `seen` octets, unless another thread
 * has grown it meanwhile. */
static int grow_map(smki_store *s, size_t seen)
{
    ENSURE(!thread_txn_on(s, 0), SMKI_E_STORE,
           "store %s is full and cannot grow while this thread has another transaction open on it", s->path);
    ENSURE(seen <= SIZE_MAX / 2, SMKI_E_STORE, "store %s is full at %zu octets", s->path, seen);
    int rc = 0;
    pthread_rwlock_wrlock(&s->quiesce);
    if (atomic_load(&s->map_size) == seen) rc = remap_locked(s, seen * 2);
    pthread_rwlock_unlock(&s->quiesce);
    return rc;
}

/* MDB_MAP_RESIZED: another process grew the map past ours. */
static int adopt_map(smki_store *s)
{
    ENSURE(!thread_txn_on(s, 0), SMKI_E_STORE,
           "store %s was grown by another process and cannot be remapped while this thread has a transaction open "
           "on it", s->path);
    pthread_rwlock_wrlock(&s->quiesce);
    int rc = remap_locked(s, 0);
    pthread_rwlock_unlock(&s->quiesce);
    return rc;
}

/* ---- Transactions ---------------------------------------------------------------- */

/* Returns LMDB's status; the caller maps it. */
static int txn_begin(smki_store *s, int is_write, smki_txn *t)
{
    *t = (smki_txn){.s = s, .is_write = is_write, .outer = thread_txns};
    /* A thread that already holds quiesce through an outer transaction must not
     * take it again: a waiting remap would deadlock the writer-preferring lock. */
    t->holds_quiesce = thread_txn_on(s, 0) == NULL;
    if (t->holds_quiesce) pthread_rwlock_rdlock(&s->quiesce);
    int mrc = atomic_load(&s->is_broken) ? MDB_PANIC : mdb_txn_begin(s->env, NULL, is_write ? 0 : MDB_RDONLY, &t->txn);
    if (mrc != 0) {
        if (t->holds_quiesce) pthread_rwlock_unlock(&s->quiesce);
        return mrc;
    }
    thread_txns = t;
    return 0;
}

static int txn_end(smki_txn *t, int commit)
{
    int mrc = 0;
    if (commit)
        mrc = mdb_txn_commit(t->txn);
    else
        mdb_txn_abort(t->txn);
    t->txn = NULL;
    thread_txns = t->outer;
    if (t->holds_quiesce) pthread_rwlock_unlock(&t->s->quiesce);
    return mrc;
}

int smki_store_write(smki_store *s, smki_txn_fn fn, void *arg)
{
    ENSURE(s && fn, SMKI_E_USAGE, "smki_store_write: no store or function");
    ENSURE(!s->read_only, SMKI_E_USAGE, "store %s is open read-only; refusing to write", s->path);
    ENSURE(!thread_txn_on(s, 1), SMKI_E_USAGE,
           "store %s: a write transaction inside another on the same thread would wait for itself", s->path);
    if (s->pg) {
        uint32_t schema = 0;
        int rc = smki_pg_store_run(s, s->pg, 1, fn, arg, &schema);
        if (rc >= 0 && schema) atomic_store(&s->schema, schema);
        return rc;
    }
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        smki_txn t;
        int mrc = txn_begin(s, 1, &t);
        if (mrc == MDB_MAP_RESIZED) {
            GUARD(adopt_map(s));
            continue;
        }
        if (mrc != 0) return FAIL_LMDB(s, mrc, "begin a write to");
        size_t seen = atomic_load(&s->map_size); /* fixed while the transaction holds quiesce */
        int rc = fn(&t, arg);
        if (t.map_full) { /* whatever fn made of the failed put, LMDB has spoilt this txn */
            txn_end(&t, 0);
            GUARD(grow_map(s, seen));
            continue;
        }
        if (rc < 0) {
            txn_end(&t, 0);
            return rc;
        }
        mrc = txn_end(&t, 1);
        if (mrc == MDB_MAP_FULL) { /* the free-page list did not fit */
            GUARD(grow_map(s, seen));
            continue;
        }
        if (mrc != 0) return FAIL_LMDB(s, mrc, "commit to");
        if (t.new_schema) atomic_store(&s->schema, t.new_schema);
        return rc;
    }
    return SMKI_FAIL(SMKI_E_STORE, "store %s: gave up after %d attempts to fit a write into a growing map", s->path,
                     MAX_ATTEMPTS);
}

int smki_store_read(smki_store *s, smki_txn_fn fn, void *arg)
{
    ENSURE(s && fn, SMKI_E_USAGE, "smki_store_read: no store or function");
    if (s->pg) {
        uint32_t schema = 0;
        return smki_pg_store_run(s, s->pg, 0, fn, arg, &schema);
    }
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        smki_txn t;
        int mrc = txn_begin(s, 0, &t);
        if (mrc == MDB_MAP_RESIZED) {
            GUARD(adopt_map(s));
            continue;
        }
        if (mrc != 0) return FAIL_LMDB(s, mrc, "begin a read of");
        int rc = fn(&t, arg);
        txn_end(&t, 0);
        return rc;
    }
    return SMKI_FAIL(SMKI_E_STORE, "store %s: the map kept changing under %d attempts to read", s->path,
                     MAX_ATTEMPTS);
}

/* ---- Named databases ------------------------------------------------------------ */

static const char *dup_words(unsigned flags)
{
    return (flags & SMKI_DB_DUPSORT) ? "with sorted duplicates" : "without duplicates";
}

/* 1 and *out set when cached; 0 when not; negative when cached with other flags. */
static int cache_find(smki_store *s, const char *name, unsigned flags, smki_db *out)
{
    int rc = 0;
    pthread_mutex_lock(&s->dbs_lock);
    for (size_t i = 0; i < s->ndbs; i++) {
        if (strcmp(s->dbs[i].name, name) != 0) continue;
        if (s->dbs[i].flags != flags) {
            rc = SMKI_FAIL(SMKI_E_USAGE, "database %s of store %s is %s; asked for one %s", name, s->path,
                           dup_words(s->dbs[i].flags), dup_words(flags));
        } else {
            *out = s->dbs[i].dbi;
            rc = 1;
        }
        break;
    }
    pthread_mutex_unlock(&s->dbs_lock);
    return rc;
}

static int cache_add(smki_store *s, const char *name, unsigned flags, MDB_dbi dbi)
{
    int rc = 0;
    pthread_mutex_lock(&s->dbs_lock);
    char *copy = strdup(name);
    if (!copy || s->ndbs == s->max_dbs) {
        free(copy);
        rc = SMKI_FAIL(SMKI_E_NOMEM, "store %s: no room to remember database %s", s->path, name);
    } else {
        s->dbs[s->ndbs++] = (db_entry){copy, flags, dbi};
    }
    pthread_mutex_unlock(&s->dbs_lock);
    return rc;
}

/* The database's name for messages; buf holds at least 72. */
static const char *db_label(smki_store *s, MDB_dbi dbi, char *buf, size_t cap)
{
    snprintf(buf, cap, "#%u", dbi);
    pthread_mutex_lock(&s->dbs_lock);
    for (size_t i = 0; i < s->ndbs; i++)
        if (s->dbs[i].dbi == dbi) {
            snprintf(buf, cap, "%s", s->dbs[i].name);
            break;
        }
    pthread_mutex_unlock(&s->dbs_lock);
    return buf;
}

/* Open (or create) a database in its own transaction. The caller holds quiesce
 * exclusive, which also keeps LMDB's rule that one mdb_dbi_open transaction ends
 * before another begins. */
static int open_db_locked(smki_store *s, const char *name, unsigned flags, smki_db *out)
{
    unsigned want = (flags & SMKI_DB_DUPSORT) ? MDB_DUPSORT : 0;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        MDB_txn *txn = NULL;
        int mrc = atomic_load(&s->is_broken) ? MDB_PANIC
                                              : mdb_txn_begin(s->env, NULL, s->read_only ? MDB_RDONLY : 0, &txn);
        if (mrc == MDB_MAP_RESIZED) {
            GUARD(remap_locked(s, 0));
            continue;
        }
        if (mrc != 0) return FAIL_LMDB(s, mrc, "open a database in");
        MDB_dbi dbi = 0;
        unsigned have = 0;
        mrc = mdb_dbi_open(txn, name, want | (s->read_only ? 0 : MDB_CREATE), &dbi);
        if (mrc == 0) mrc = mdb_dbi_flags(txn, dbi, &have);
        if (mrc == 0 && (have & MDB_DUPSORT) != want) {
            mdb_txn_abort(txn);
            return SMKI_FAIL(SMKI_E_USAGE, "database %s of store %s is %s; asked for one %s", name, s->path,
                             dup_words((have & MDB_DUPSORT) ? SMKI_DB_DUPSORT : 0), dup_words(flags));
        }
        if (mrc == 0) {
            mrc = mdb_txn_commit(txn); /* for a read transaction too: commit keeps the handle */
        } else {
            mdb_txn_abort(txn);
        }
        if (mrc == MDB_MAP_FULL) {
            size_t seen = atomic_load(&s->map_size);
            ENSURE(seen <= SIZE_MAX / 2, SMKI_E_STORE, "store %s is full at %zu octets", s->path, seen);
            GUARD(remap_locked(s, seen * 2));
            continue;
        }
        if (mrc == MDB_NOTFOUND)
            return SMKI_FAIL(SMKI_E_NOTFOUND, "store %s has no database %s (and is open read-only)", s->path, name);
        if (mrc == MDB_DBS_FULL)
            return SMKI_FAIL(SMKI_E_STORE, "store %s cannot open database %s: all %zu database slots are in use",
                             s->path, name, s->max_dbs);
        if (mrc == MDB_INCOMPATIBLE)
            return SMKI_FAIL(SMKI_E_CORRUPT, "store %s: %s is a record, not a database", s->path, name);
        if (mrc != 0) return FAIL_LMDB(s, mrc, "open a database in");
        GUARD(cache_add(s, name, flags, dbi));
        *out = dbi;
        return 0;
    }
    return SMKI_FAIL(SMKI_E_STORE, "store %s: gave up opening database %s in a growing map", s->path, name);
}

int smki_store_db(smki_store *s, const char *name, unsigned flags, smki_db *out)
{
    ENSURE(s && name && *name && out, SMKI_E_USAGE, "smki_store_db: no store, name or output");
    *out = 0;
    ENSURE((flags & ~SMKI_DB_DUPSORT) == 0, SMKI_E_USAGE, "database %s of store %s: unknown flags %#x", name, s->path,
           flags);
    int rc = cache_find(s, name, flags, out);
    if (rc != 0) return rc < 0 ? rc : 0;
    /* Transactions that began before a handle existed cannot use it, so handles are
     * added only while no transaction of this process is open. */
    ENSURE(!thread_txn_on(s, 0), SMKI_E_USAGE,
           "database %s of store %s is first asked for inside a transaction; open it (smki_store_db) before the "
           "transaction begins", name, s->path);
    pthread_rwlock_wrlock(&s->quiesce);
    rc = cache_find(s, name, flags, out);
    if (rc == 0 && s->pg) {
        rc = smki_pg_store_db(s->pg, name, flags, out);
        if (rc == 0) rc = cache_add(s, name, flags, *out);
    } else if (rc == 0) {
        rc = open_db_locked(s, name, flags, out);
    }
    pthread_rwlock_unlock(&s->quiesce);
    return rc < 0 ? rc : 0;
}

/* ---- Records ----------------------------------------------------------------------- */

/* A record operation's LMDB failure. EINVAL there means a handle this store never
 * opened (one from another store, or from before a reopen). */
static int fail_op_at(const char *file, int line, const smki_txn *t, smki_db db, int mrc, const char *doing)
{
    if (mrc == EINVAL)
        return smki_fail_at(SMKI_E_USAGE, file, line,
                            "store %s: database handle %u is not open in this store (smki_store_db)", t->s->path, db);
    return fail_lmdb_at(file, line, t->s->path, mrc, doing);
}
#define FAIL_OP(t, db, mrc, doing) smki_failure(fail_op_at(__FILE__, __LINE__, (t), (db), (mrc), (doing)))

static int check_key(const smki_txn *t, size_t klen)
{
    ENSURE(klen > 0 && klen <= t->s->max_key, SMKI_E_USAGE, "store %s: a key of %zu octets (1 to %zu allowed)",
           t->s->path, klen, t->s->max_key);
    return 0;
}

int smki_txn_put(smki_txn *t, smki_db db, const void *key, size_t klen, const void *val, size_t vlen,
                 unsigned flags)
{
    ENSURE(is_live(t) && key && (val || vlen == 0), SMKI_E_USAGE, "smki_txn_put: no transaction, key or value");
    ENSURE(t->is_write, SMKI_E_USAGE, "store %s: a put in a read transaction", t->s->path);
    ENSURE((flags & ~SMKI_PUT_NOOVERWRITE) == 0, SMKI_E_USAGE, "store %s: unknown put flags %#x", t->s->path, flags);
    GUARD(check_key(t, klen));
    if (t->pg) {
        int rc = smki_pg_txn_put(t->pg, db, key, klen, val, vlen, flags);
        if (rc == SMKI_E_EXISTS) {
            char hex[72], label[72];
            return SMKI_FAIL(SMKI_E_EXISTS, "store %s: key %s already exists in database %s", t->s->path,
                             key_hex(key, klen, hex), db_label(t->s, db, label, sizeof label));
        }
        return rc;
    }
    MDB_val k = {klen, (void *)key};
    MDB_val v = {vlen, (void *)val};
    int mrc = mdb_put(t->txn, db, &k, &v, (flags & SMKI_PUT_NOOVERWRITE) ? MDB_NOOVERWRITE : 0);
    if (mrc == 0) return 0;
    if (mrc == MDB_KEYEXIST) {
        char hex[72], label[72];
        return SMKI_FAIL(SMKI_E_EXISTS, "store %s: key %s already exists in database %s", t->s->path,
                         key_hex(key, klen, hex), db_label(t->s, db, label, sizeof label));
    }
    if (mrc == MDB_MAP_FULL) {
        t->map_full = 1;
        return SMKI_FAIL(SMKI_E_STORE, "store %s is full; the write will be re-run in a larger map", t->s->path);
    }
    return FAIL_OP(t, db, mrc, "write to");
}

int smki_store_txn_put_many(smki_txn *t, const store_put_rec *recs, size_t n)
{
    ENSURE(is_live(t) && t->is_write, SMKI_E_USAGE, "smki_store_txn_put_many: no write transaction");
    if (!t->pg) {
        for (size_t i = 0; i < n; i++)
            GUARD(smki_txn_put(t, recs[i].db, recs[i].key, recs[i].klen, recs[i].val, recs[i].vlen, recs[i].flags));
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        ENSURE(recs[i].key && (recs[i].val || recs[i].vlen == 0), SMKI_E_USAGE, "smki_store_txn_put_many: no key or value");
        ENSURE((recs[i].flags & ~SMKI_PUT_NOOVERWRITE) == 0, SMKI_E_USAGE, "store %s: unknown put flags %#x",
               t->s->path, recs[i].flags);
        GUARD(check_key(t, recs[i].klen));
    }
    size_t refused = 0;
    int rc = smki_pg_txn_put_many(t->pg, recs, n, &refused);
    if (rc == SMKI_E_EXISTS) {
        char hex[72], label[72];
        const store_put_rec *r = &recs[refused];
        return SMKI_FAIL(SMKI_E_EXISTS, "store %s: key %s already exists in database %s", t->s->path,
                         key_hex(r->key, r->klen, hex), db_label(t->s, r->db, label, sizeof label));
    }
    return rc;
}

int smki_txn_get(smki_txn *t, smki_db db, const void *key, size_t klen, const void **val, size_t *vlen)
{
    ENSURE(is_live(t) && key && val && vlen, SMKI_E_USAGE, "smki_txn_get: no transaction, key or output");
    *val = NULL;
    *vlen = 0;
    GUARD(check_key(t, klen));
    if (t->pg) return smki_pg_txn_get(t->pg, db, key, klen, val, vlen);
    MDB_val k = {klen, (void *)key};
    MDB_val v = {0, NULL};
    int mrc = mdb_get(t->txn, db, &k, &v);
    if (mrc == MDB_NOTFOUND) return SMKI_FAIL(SMKI_E_NOTFOUND, "no such record");
    if (mrc != 0) return FAIL_OP(t, db, mrc, "read");
    *val = v.mv_data;
    *vlen = v.mv_size;
    return 0;
}

int smki_txn_get_many(smki_txn *t, smki_db db, smki_get_rec *recs, size_t n)
{
    ENSURE(is_live(t) && (recs || n == 0), SMKI_E_USAGE, "smki_txn_get_many: no transaction or records");
    for (size_t i = 0; i < n; i++) {
        ENSURE(recs[i].key, SMKI_E_USAGE, "smki_txn_get_many: record %zu has no key", i);
        GUARD(check_key(t, recs[i].klen));
        recs[i].found = 0;
        recs[i].val = NULL;
        recs[i].vlen = 0;
    }
    if (t->pg) return smki_pg_txn_get_many(t->pg, db, recs, n);
    for (size_t i = 0; i < n; i++) {
        MDB_val k = {recs[i].klen, (void *)recs[i].key};
        MDB_val v = {0, NULL};
        int mrc = mdb_get(t->txn, db, &k, &v);
        if (mrc == MDB_NOTFOUND) continue;
        if (mrc != 0) return FAIL_OP(t, db, mrc, "read");
        recs[i].found = 1;
        recs[i].val = v.mv_data;
        recs[i].vlen = v.mv_size;
    }
    return 0;
}

int smki_txn_del(smki_txn *t, smki_db db, const void *key, size_t klen)
{
    ENSURE(is_live(t) && key, SMKI_E_USAGE, "smki_txn_del: no transaction or key");
    ENSURE(t->is_write, SMKI_E_USAGE, "store %s: a delete in a read transaction", t->s->path);
    GUARD(check_key(t, klen));
    if (t->pg) return smki_pg_txn_del(t->pg, db, key, klen);
    MDB_val k = {klen, (void *)key};
    int mrc = mdb_del(t->txn, db, &k, NULL);
    if (mrc == 0) return 0;
    if (mrc == MDB_NOTFOUND) return SMKI_FAIL(SMKI_E_NOTFOUND, "no such record");
    if (mrc == MDB_MAP_FULL) { /* deleting copies pages too */
        t->map_full = 1;
        return SMKI_FAIL(SMKI_E_STORE, "store %s is full; the write will be re-run in a larger map", t->s->path);
    }
    return FAIL_OP(t, db, mrc, "delete from");
}

int smki_txn_del_dup(smki_txn *t, smki_db db, const void *key, size_t klen, const void *val, size_t vlen)
{
    ENSURE(is_live(t) && key && val, SMKI_E_USAGE, "smki_txn_del_dup: no transaction, key or value");
    ENSURE(t->is_write, SMKI_E_USAGE, "store %s: a delete in a read transaction", t->s->path);
    GUARD(check_key(t, klen));
    if (t->pg) return smki_pg_txn_del_dup(t->pg, db, key, klen, val, vlen);
    unsigned int flags = 0;
    int mrc = mdb_dbi_flags(t->txn, db, &flags);
    if (mrc != 0) return FAIL_OP(t, db, mrc, "read the flags of");
    /* mdb_del with a value on a plain database ignores the value and deletes the key:
     * not what a caller removing one index entry means. */
    ENSURE(flags & MDB_DUPSORT, SMKI_E_USAGE, "store %s: removing one value needs a DUPSORT database", t->s->path);
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    mrc = mdb_del(t->txn, db, &k, &v);
    if (mrc == 0) return 0;
    if (mrc == MDB_NOTFOUND) return SMKI_FAIL(SMKI_E_NOTFOUND, "no such value under that key");
    if (mrc == MDB_MAP_FULL) {
        t->map_full = 1;
        return SMKI_FAIL(SMKI_E_STORE, "store %s is full; the write will be re-run in a larger map", t->s->path);
    }
    return FAIL_OP(t, db, mrc, "delete a value from");
}

int smki_txn_scan(smki_txn *t, smki_db db, const void *prefix, size_t plen, smki_scan_fn fn, void *arg)
{
    ENSURE(is_live(t) && fn && (prefix || plen == 0), SMKI_E_USAGE,
           "smki_txn_scan: no transaction, prefix or function");
    if (t->pg) return smki_pg_txn_scan(t->pg, db, prefix, plen, fn, arg);
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(t->txn, db, &cur);
    if (mrc != 0) return FAIL_OP(t, db, mrc, "read");
    MDB_val k = {plen, (void *)prefix};
    MDB_val v = {0, NULL};
    int rc = 0;
    mrc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
    while (mrc == 0) {
        if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)) break;
        rc = fn(k.mv_data, k.mv_size, v.mv_data, v.mv_size, arg);
        if (rc != 0 && rc != SMKI_SCAN_NEXT_KEY) break;
        /* MDB_NEXT_NODUP on a database without duplicates is MDB_NEXT */
        mrc = mdb_cursor_get(cur, &k, &v, rc == SMKI_SCAN_NEXT_KEY ? MDB_NEXT_NODUP : MDB_NEXT);
        rc = 0;
    }
    mdb_cursor_close(cur);
    if (rc != 0) return rc < 0 ? rc : 0;
    if (mrc != 0 && mrc != MDB_NOTFOUND) return FAIL_LMDB(t->s, mrc, "read");
    return 0;
}

typedef struct {
    smki_txn *t;
    smki_db target;
    smki_join_fn fn;
    void *arg;
} join_ctx;

static int join_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    join_ctx *j = arg;
    MDB_val k = {vlen, (void *)val}, v = {0, NULL};
    int mrc = vlen ? mdb_get(j->t->txn, j->target, &k, &v) : MDB_NOTFOUND;
    if (mrc != 0 && mrc != MDB_NOTFOUND) return FAIL_OP(j->t, j->target, mrc, "read");
    return j->fn(key, klen, val, vlen, mrc == 0 ? v.mv_data : NULL, mrc == 0 ? v.mv_size : 0, j->arg);
}

int smki_txn_scan_join_ahead(smki_txn *t, smki_db index, smki_db target, const void *const *prefixes,
                             const size_t *plens, size_t n)
{
    ENSURE(is_live(t) && ((prefixes && plens) || n == 0), SMKI_E_USAGE,
           "smki_txn_scan_join_ahead: no transaction or prefixes");
    for (size_t i = 0; i < n; i++)
        ENSURE(prefixes[i] || plens[i] == 0, SMKI_E_USAGE, "smki_txn_scan_join_ahead: prefix %zu is missing", i);
    if (t->pg) return smki_pg_txn_scan_join_ahead(t->pg, index, target, prefixes, plens, n);
    unsigned int flags = 0;
    int mrc = mdb_dbi_flags(t->txn, target, &flags);
    if (mrc != 0) return FAIL_OP(t, target, mrc, "read the flags of");
    ENSURE(!(flags & MDB_DUPSORT), SMKI_E_USAGE, "store %s: an index scan's target must be a database without duplicates",
           t->s->path);
    return 0; /* LMDB's scans wait on nothing: each is made when asked */
}

int smki_txn_scan_join(smki_txn *t, smki_db index, const void *prefix, size_t plen, smki_db target, smki_join_fn fn,
                       void *arg)
{
    ENSURE(is_live(t) && fn && (prefix || plen == 0), SMKI_E_USAGE,
           "smki_txn_scan_join: no transaction, prefix or function");
    if (t->pg) return smki_pg_txn_scan_join(t->pg, index, prefix, plen, target, fn, arg);
    unsigned int flags = 0;
    int mrc = mdb_dbi_flags(t->txn, target, &flags);
    if (mrc != 0) return FAIL_OP(t, target, mrc, "read the flags of");
    ENSURE(!(flags & MDB_DUPSORT), SMKI_E_USAGE, "store %s: an index scan's target must be a database without duplicates",
           t->s->path);
    join_ctx j = {t, target, fn, arg};
    return smki_txn_scan(t, index, prefix, plen, join_one, &j);
}

int smki_txn_seek(smki_txn *t, smki_db db, const void *from, size_t flen, void *key, size_t cap, size_t *klen)
{
    ENSURE(is_live(t) && from && key && klen, SMKI_E_USAGE, "smki_txn_seek: no transaction, key or output");
    *klen = 0;
    GUARD(check_key(t, flen));
    if (t->pg) return smki_pg_txn_seek(t->pg, db, from, flen, key, cap, klen);
    MDB_cursor *cur = NULL;
    int mrc = mdb_cursor_open(t->txn, db, &cur);
    if (mrc != 0) return FAIL_OP(t, db, mrc, "read");
    MDB_val k = {flen, (void *)from}, v = {0, NULL};
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    int rc = 0;
    if (mrc == MDB_NOTFOUND) {
        rc = SMKI_FAIL(SMKI_E_NOTFOUND, "no such record");
    } else if (mrc != 0) {
        rc = FAIL_OP(t, db, mrc, "read");
    } else if (k.mv_size > cap) {
        rc = SMKI_FAIL(SMKI_E_CORRUPT, "store %s: a key of %zu octets where at most %zu were expected", t->s->path,
                       k.mv_size, cap);
    } else {
        memcpy(key, k.mv_data, k.mv_size);
        *klen = k.mv_size;
    }
    mdb_cursor_close(cur);
    return rc;
}

int smki_txn_clear(smki_txn *t, smki_db db)
{
    ENSURE(is_live(t) && t->is_write, SMKI_E_USAGE, "smki_txn_clear: no write transaction");
    if (t->pg) return smki_pg_txn_clear(t->pg, db);
    int mrc = mdb_drop(t->txn, db, 0);
    if (mrc == MDB_MAP_FULL) {
        t->map_full = 1;
        return SMKI_FAIL(SMKI_E_STORE, "store %s is full; the write will be re-run in a larger map", t->s->path);
    }
    return mrc == 0 ? 0 : FAIL_OP(t, db, mrc, "clear");
}

int smki_txn_count(smki_txn *t, smki_db db, size_t *count)
{
    ENSURE(is_live(t) && count, SMKI_E_USAGE, "smki_txn_count: no transaction or output");
    if (t->pg) return smki_pg_txn_count(t->pg, db, count);
    MDB_stat st;
    int mrc = mdb_stat(t->txn, db, &st);
    if (mrc != 0) return FAIL_OP(t, db, mrc, "read");
    *count = st.ms_entries;
    return 0;
}

/* ---- Opening ------------------------------------------------------------------------ */

static int check_schema_value(smki_store *s, uint32_t stored)
{
    ENSURE(stored <= SMKI_STORE_SCHEMA, SMKI_E_CORRUPT, "store %s has schema %u, newer than this smki's %u", s->path,
           stored, (unsigned)SMKI_STORE_SCHEMA);
    ENSURE(stored != 0, SMKI_E_CORRUPT, "store %s has schema 0, which no smki writes", s->path);
    s->schema = stored;
    return 0;
}

static int parse_schema(smki_store *s, const void *val, size_t vlen, uint32_t *out)
{
    smki_cursor_t c = smki_cursor(val, vlen);
    ENSURE(vlen == 4 && smki_cur_u32be(&c, out) == 0, SMKI_E_CORRUPT,
           "store %s has a schema record of %zu octets, not 4", s->path, vlen);
    return 0;
}

typedef struct {
    smki_db meta;
    uint32_t stored;
} schema_ctx;

/* Write our schema into a new store, or read what a racing process wrote first. */
static int write_schema(smki_txn *t, void *arg)
{
    schema_ctx *ctx = arg;
    const void *val;
    size_t vlen;
    int rc = smki_txn_get(t, ctx->meta, schema_key, sizeof schema_key - 1, &val, &vlen);
    if (rc == 0) return parse_schema(t->s, val, vlen, &ctx->stored);
    if (rc != SMKI_E_NOTFOUND) return rc;
    uint8_t be[4];
    smki_put_be32(be, SMKI_STORE_SCHEMA);
    ctx->stored = SMKI_STORE_SCHEMA;
    return smki_txn_put(t, ctx->meta, schema_key, sizeof schema_key - 1, be, sizeof be, 0);
}

/* Runs before the store is shared, so it may use LMDB directly. */
static int check_schema(smki_store *s)
{
    MDB_txn *txn = NULL;
    int mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (mrc != 0) return FAIL_LMDB(s, mrc, "read");
    MDB_dbi meta = 0;
    mrc = mdb_dbi_open(txn, "meta", 0, &meta);
    if (mrc == 0) {
        MDB_val k = {sizeof schema_key - 1, (void *)schema_key};
        MDB_val v = {0, NULL};
        uint32_t stored = 0;
        int rc = 0;
        mrc = mdb_get(txn, meta, &k, &v);
        if (mrc == 0) rc = parse_schema(s, v.mv_data, v.mv_size, &stored);
        int cmrc = mdb_txn_commit(txn); /* keeps the meta handle */
        if (rc < 0) return rc;
        if (mrc == MDB_NOTFOUND) return SMKI_FAIL(SMKI_E_CORRUPT, "store %s has no schema record", s->path);
        if (mrc != 0) return FAIL_LMDB(s, mrc, "read");
        if (cmrc != 0) return FAIL_LMDB(s, cmrc, "read");
        GUARD(cache_add(s, "meta", 0, meta));
        return check_schema_value(s, stored);
    }
    if (mrc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        if (mrc == MDB_INCOMPATIBLE)
            return SMKI_FAIL(SMKI_E_CORRUPT, "store %s: meta is a record, not a database", s->path);
        return FAIL_LMDB(s, mrc, "read");
    }
    MDB_dbi main_db = 0;
    MDB_stat st = {0};
    mrc = mdb_dbi_open(txn, NULL, 0, &main_db);
    if (mrc == 0) mrc = mdb_stat(txn, main_db, &st);
    mdb_txn_abort(txn);
    if (mrc != 0) return FAIL_LMDB(s, mrc, "read");
    ENSURE(st.ms_entries == 0, SMKI_E_CORRUPT,
           "store %s holds %zu database(s) but no schema record; smki did not make it", s->path,
           (size_t)st.ms_entries);
    if (s->read_only) return 0; /* empty and read-only: nothing to check, nothing to write */
    schema_ctx ctx = {0, 0};
    GUARD(smki_store_db(s, "meta", 0, &ctx.meta));
    GUARD(smki_store_write(s, write_schema, &ctx));
    return check_schema_value(s, ctx.stored);
}

typedef struct {
    smki_db meta;
    int found;
    uint32_t stored;
} schema_read;

static int read_schema(smki_txn *t, void *arg)
{
    schema_read *r = arg;
    const void *val;
    size_t vlen;
    int rc = smki_txn_get(t, r->meta, schema_key, sizeof schema_key - 1, &val, &vlen);
    if (rc == SMKI_E_NOTFOUND) return 0;
    GUARD(rc);
    r->found = 1;
    return parse_schema(t->s, val, vlen, &r->stored);
}

/* The same checks as check_schema, through the store's own transactions. */
static int check_schema_pg(smki_store *s)
{
    schema_read r = {0, 0, 0};
    int rc = smki_store_db(s, "meta", 0, &r.meta);
    if (rc == SMKI_E_NOTFOUND && s->read_only) { /* empty and read-only */
        smki_error_clear();
        return 0;
    }
    GUARD(rc);
    GUARD(smki_store_read(s, read_schema, &r));
    if (r.found) return check_schema_value(s, r.stored);
    ENSURE(!s->read_only, SMKI_E_CORRUPT, "store %s has no schema record", s->path);
    size_t dbs = 0;
    GUARD(smki_pg_store_count_dbs(s->pg, &dbs));
    ENSURE(dbs <= 1, SMKI_E_CORRUPT, "store %s holds %zu database(s) but no schema record; smki did not make it",
           s->path, dbs - 1);
    schema_ctx ctx = {r.meta, 0};
    GUARD(smki_store_write(s, write_schema, &ctx));
    return check_schema_value(s, ctx.stored);
}

/* The conninfo of a PostgreSQL location, or NULL for a folder. A URI
 * (postgresql://...) is its own conninfo. */
static const char *pg_conninfo(const char *location)
{
    size_t n = strlen(SMKI_STORE_PG_PREFIX);
    if (strncmp(location, SMKI_STORE_PG_PREFIX, n) != 0) return NULL;
    return strncmp(location + n, "//", 2) == 0 ? location : location + n;
}

static int open_pg(smki_store *s, const char *conninfo, const smki_store_opts *opts)
{
    unsigned max_dbs = opts->max_dbs ? opts->max_dbs : DEFAULT_MAX_DBS;
    s->dbs = calloc(max_dbs, sizeof *s->dbs);
    ENSURE(s->dbs, SMKI_E_NOMEM, "out of memory opening store %s", s->path);
    s->max_dbs = max_dbs;
    s->max_key = 511; /* LMDB's, so that what one engine holds the other can */
    GUARD(smki_pg_store_open(conninfo, s->path, s->read_only, max_dbs, &s->pg));
    return check_schema_pg(s);
}

int smki_store_location(const smki_conf *conf, const char *conf_path, const char *home, char *out, size_t cap)
{
    if (cap) out[0] = 0;
    const char *engine = smki_conf_get(conf, "store.engine", "lmdb");
    const char *conninfo = smki_conf_get(conf, "store.conninfo", NULL);
    int n;
    if (strcmp(engine, "lmdb") == 0) {
        ENSURE(!conninfo, SMKI_E_USAGE, "%s: [store] conninfo is set but engine is lmdb; set engine = postgresql",
               conf_path);
        const char *path = smki_conf_get(conf, "store.path", "store");
        n = snprintf(out, cap, "%s%s%s", path[0] == '/' ? "" : home, path[0] == '/' ? "" : "/", path);
    } else {
        ENSURE(strcmp(engine, "postgresql") == 0, SMKI_E_USAGE, "%s: [store] engine = %s: use lmdb or postgresql",
               conf_path, engine);
        ENSURE(conninfo && *conninfo, SMKI_E_USAGE,
               "%s: [store] engine = postgresql needs conninfo (e.g. conninfo = host=/run/postgresql dbname=smki)",
               conf_path);
        n = snprintf(out, cap, "%s%s", SMKI_STORE_PG_PREFIX, conninfo);
    }
    ENSURE(n > 0 && (size_t)n < cap, SMKI_E_USAGE, "%s: the store's location is too long", conf_path);
    return 0;
}

int smki_store_exists(const char *location)
{
    ENSURE(location && *location, SMKI_E_USAGE, "smki_store_exists: no location");
    const char *conninfo = pg_conninfo(location);
    if (conninfo) return smki_pg_store_exists(conninfo, location);
    char data[4200];
    int n = snprintf(data, sizeof data, "%s/data.mdb", location);
    ENSURE(n > 0 && (size_t)n < sizeof data, SMKI_E_USAGE, "store path too long: %.64s...", location);
    struct stat st;
    return stat(data, &st) == 0;
}

static int open_env(smki_store *s, const smki_store_opts *opts)
{
    size_t initial = opts->initial_map ? opts->initial_map : DEFAULT_MAP;
    if (initial < MIN_MAP) initial = MIN_MAP;
    unsigned max_dbs = opts->max_dbs ? opts->max_dbs : DEFAULT_MAX_DBS;
    s->dbs = calloc(max_dbs, sizeof *s->dbs);
    ENSURE(s->dbs, SMKI_E_NOMEM, "out of memory opening store %s", s->path);
    s->max_dbs = max_dbs;

    int mrc = mdb_env_create(&s->env);
    if (mrc != 0) {
        s->env = NULL;
        return FAIL_LMDB(s, mrc, "open");
    }
    mrc = mdb_env_set_maxdbs(s->env, max_dbs);
    if (mrc == 0) mrc = mdb_env_set_maxreaders(s->env, MAX_READERS);
    /* An existing environment keeps the size it grew to (LMDB takes an explicit size
     * over the recorded one); a new one starts at `initial`. */
    char data[4096];
    int n = snprintf(data, sizeof data, "%s/data.mdb", s->path);
    ENSURE(n > 0 && (size_t)n < sizeof data, SMKI_E_USAGE, "store path too long: %.64s...", s->path);
    struct stat st;
    int is_new = stat(data, &st) != 0 || st.st_size == 0;
    if (mrc == 0 && is_new) mrc = mdb_env_set_mapsize(s->env, initial);
    if (mrc == 0) mrc = mdb_env_open(s->env, s->path, MDB_NOTLS | (s->read_only ? MDB_RDONLY : 0), 0600);
    if (mrc != 0) return FAIL_LMDB(s, mrc, "open");

    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    if (info.me_mapsize < initial) {
        mrc = mdb_env_set_mapsize(s->env, initial);
        if (mrc != 0) return FAIL_LMDB(s, mrc, "map");
        mdb_env_info(s->env, &info);
    }
    atomic_store(&s->map_size, info.me_mapsize);
    s->max_key = (size_t)mdb_env_get_maxkeysize(s->env);

    /* Reader slots of processes that died inside a read transaction pin old pages
     * until someone clears them; at open is the natural moment. */
    int dead = 0;
    mrc = mdb_reader_check(s->env, &dead);
    if (mrc != 0) return FAIL_LMDB(s, mrc, "clear stale readers of");
    s->stale_readers = dead > 0 ? (unsigned)dead : 0;
    return 0;
}

int smki_store_open(const char *dir, const smki_store_opts *opts, smki_store **out)
{
    static const smki_store_opts defaults = {0, 0, 0};
    ENSURE(dir && *dir && out, SMKI_E_USAGE, "smki_store_open: no folder or output");
    *out = NULL;
    if (!opts) opts = &defaults;
    const char *conninfo = pg_conninfo(dir);
    if (!conninfo && !opts->read_only) GUARD(smki_mkdirs(dir, 0700));

    int rc = 0;
    smki_store *s = calloc(1, sizeof *s);
    ENSURE(s, SMKI_E_NOMEM, "out of memory opening store %s", dir);
    s->maint_fd = -1;
    s->pid = getpid();
    s->read_only = opts->read_only != 0;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->quiesce, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&s->dbs_lock, NULL);
    s->path = strdup(dir);
    ENSURE_GOTO(s->path, SMKI_E_NOMEM, fail, "out of memory opening store %s", dir);
    if (conninfo) {
        GUARD_GOTO(open_pg(s, conninfo, opts), fail);
        *out = s;
        return 0;
    }

    struct stat st;
    if (stat(dir, &st) != 0) {
        rc = fail_lmdb_at(__FILE__, __LINE__, dir, errno, "open");
        goto fail;
    }
    ENSURE_GOTO(S_ISDIR(st.st_mode), SMKI_E_USAGE, fail, "store %s is not a folder", dir);
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    GUARD_GOTO(register_open(s), fail);
    GUARD_GOTO(open_env(s, opts), fail);
    GUARD_GOTO(check_schema(s), fail);
    *out = s;
    return 0;
fail:
    smki_store_close(s);
    return rc;
}

void smki_store_close(smki_store *s)
{
    if (!s) return;
    smki_store_unlock(s);
    unregister_open(s);
    smki_pg_store_close(s->pg);
    /* A forked child must leave its parent's environment alone: mdb_env_close would
     * clear the reader slots recorded under the parent's pid. */
    if (s->env && s->pid == getpid()) mdb_env_close(s->env);
    for (size_t i = 0; i < s->ndbs; i++) free(s->dbs[i].name);
    free(s->dbs);
    pthread_mutex_destroy(&s->dbs_lock);
    pthread_rwlock_destroy(&s->quiesce);
    free(s->path);
    free(s);
}

const char *smki_store_path(const smki_store *s) { return s ? s->path : NULL; }
int smki_store_is_remote(const smki_store *s) { return s && s->pg; }
size_t smki_store_map_size(const smki_store *s) { return s ? atomic_load(&s->map_size) : 0; }
uint32_t smki_store_schema(const smki_store *s) { return s ? atomic_load(&((smki_store *)s)->schema) : 0; }

int smki_txn_schema(smki_txn *t, uint32_t *out)
{
    ENSURE(is_live(t) && out, SMKI_E_USAGE, "smki_txn_schema: no transaction or output");
    *out = 0;
    smki_db meta;
    if (cache_find(t->s, "meta", 0, &meta) != 1)
        return SMKI_FAIL(SMKI_E_CORRUPT, "store %s has no schema record", t->s->path);
    const void *val;
    size_t vlen;
    int rc = smki_txn_get(t, meta, schema_key, sizeof schema_key - 1, &val, &vlen);
    if (rc == SMKI_E_NOTFOUND) return SMKI_FAIL(SMKI_E_CORRUPT, "store %s has no schema record", t->s->path);
    GUARD(rc);
    return parse_schema(t->s, val, vlen, out);
}

int smki_txn_set_schema(smki_txn *t, uint32_t schema)
{
    ENSURE(is_live(t) && t->is_write, SMKI_E_USAGE, "smki_txn_set_schema: no write transaction");
    uint32_t now = 0;
    GUARD(smki_txn_schema(t, &now));
    ENSURE(schema >= now && schema <= SMKI_STORE_SCHEMA, SMKI_E_USAGE,
           "store %s: schema %u cannot follow %u (this smki writes up to %u)", t->s->path, schema, now,
           (unsigned)SMKI_STORE_SCHEMA);
    uint8_t be[4];
    smki_put_be32(be, schema);
    smki_db meta;
    if (cache_find(t->s, "meta", 0, &meta) != 1) /* found by smki_txn_schema above */
        return SMKI_FAIL(SMKI_E_CORRUPT, "store %s has no schema record", t->s->path);
    GUARD(smki_txn_put(t, meta, schema_key, sizeof schema_key - 1, be, sizeof be, 0));
    t->new_schema = schema;
    return 0;
}
unsigned smki_store_stale_readers(const smki_store *s) { return s ? s->stale_readers : 0; }
size_t smki_store_max_key(const smki_store *s) { return s->max_key; }
int smki_store_is_read_only(const smki_store *s) { return s->read_only; }

/* ---- The maintenance lock ------------------------------------------------------------ */

int smki_store_lock_exclusive(smki_store *s)
{
    ENSURE(s, SMKI_E_USAGE, "smki_store_lock_exclusive: no store");
    if (s->pg) return smki_pg_store_lock_exclusive(s->pg);
    if (s->maint_fd >= 0) return 0;
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/maint.lock", s->path);
    ENSURE(n > 0 && (size_t)n < sizeof path, SMKI_E_USAGE, "store path too long: %.64s...", s->path);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ENSURE(fd >= 0, SMKI_E_IO, "cannot open %s: %s", path, strerror(errno));
    /* The holder may let go between F_SETLK failing and F_GETLK asking who it is. */
    for (int attempt = 0; attempt < 8; attempt++) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(fd, F_SETLK, &fl) == 0) {
            s->maint_fd = fd;
            return 0;
        }
        int e = errno;
        if (e != EAGAIN && e != EACCES) {
            close(fd);
            return SMKI_FAIL(SMKI_E_IO, "cannot lock %s: %s", path, strerror(e));
        }
        struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK) {
            close(fd);
            return SMKI_FAIL(SMKI_E_LOCKED, "store %s is locked by process %ld (fcntl F_GETLK)", s->path,
                             (long)who.l_pid);
        }
    }
    close(fd);
    return SMKI_FAIL(SMKI_E_LOCKED, "store %s is locked by processes that keep taking and releasing %s", s->path, path);
}

void smki_store_unlock(smki_store *s)
{
    if (s && s->pg) smki_pg_store_unlock(s->pg);
    if (!s || s->maint_fd < 0) return;
    struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
    (void)fcntl(s->maint_fd, F_SETLK, &fl);
    close(s->maint_fd); /* closing drops the lock anyway */
    s->maint_fd = -1;
}

/* ---- Listing the named databases ------------------------------------------------------- */

typedef struct {
    char (*names)[64];
    unsigned *flags;
    size_t n, cap;
} db_list;

/* LMDB keeps the named databases as the keys of its unnamed one; their flags come
 * from opening each (under quiesce, as any handle is opened). */
static int lmdb_list_dbs(smki_store *s, db_list *l)
{
    pthread_rwlock_wrlock(&s->quiesce);
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    int mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    MDB_dbi main_db = 0;
    if (mrc == 0) mrc = mdb_dbi_open(txn, NULL, 0, &main_db);
    if (mrc == 0) mrc = mdb_cursor_open(txn, main_db, &cur);
    MDB_val k, v;
    int rc = 0;
    if (mrc == 0) mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0 && rc == 0) {
        if (l->n == l->cap || k.mv_size >= sizeof l->names[0]) {
            rc = SMKI_FAIL(SMKI_E_STORE, "store %s: more databases than %zu, or a name of %zu octets", s->path, l->cap,
                           k.mv_size);
            break;
        }
        memcpy(l->names[l->n], k.mv_data, k.mv_size);
        l->names[l->n][k.mv_size] = '\0';
        MDB_dbi dbi = 0;
        unsigned f = 0;
        int orc = mdb_dbi_open(txn, l->names[l->n], 0, &dbi);
        if (orc == 0) orc = mdb_dbi_flags(txn, dbi, &f);
        if (orc == 0) l->flags[l->n++] = (f & MDB_DUPSORT) ? SMKI_DB_DUPSORT : 0;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (cur) mdb_cursor_close(cur);
    if (txn) mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->quiesce);
    if (rc < 0) return rc;
    if (mrc != 0 && mrc != MDB_NOTFOUND) return FAIL_LMDB(s, mrc, "list the databases of");
    return 0;
}

int smki_store_each_db(smki_store *s, smki_store_db_fn fn, void *arg)
{
    ENSURE(s && fn, SMKI_E_USAGE, "smki_store_each_db: no store or function");
    if (s->pg) return smki_pg_store_each_db(s->pg, fn, arg);
    ENSURE(!thread_txn_on(s, 0), SMKI_E_USAGE, "store %s: list its databases outside any transaction", s->path);
    db_list l = {calloc(s->max_dbs, sizeof *l.names), calloc(s->max_dbs, sizeof *l.flags), 0, s->max_dbs};
    int rc = l.names && l.flags ? lmdb_list_dbs(s, &l) : SMKI_FAIL(SMKI_E_NOMEM, "out of memory listing databases");
    for (size_t i = 0; rc == 0 && i < l.n; i++) rc = fn(l.names[i], l.flags[i], arg);
    free(l.names);
    free(l.flags);
    return rc;
}
