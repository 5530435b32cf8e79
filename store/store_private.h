/* store: what the store's own files share and nothing outside store/ may use. */
#ifndef SMKI_STORE_PRIVATE_H
#define SMKI_STORE_PRIVATE_H

#include <lmdb.h>

#include "store.h"

/* The longest key LMDB accepts in this environment (511 with Debian's build). */
size_t smki_store_max_key(const smki_store *s);
int smki_store_is_read_only(const smki_store *s);

/* ---- The PostgreSQL engine (pg.c) -------------------------------------------------
 * A store whose location is SMKI_STORE_PG_PREFIX + a libpq conninfo. Each named
 * database is a table (key bytea, val bytea) in the connection's current schema;
 * writes hold a transaction-scoped advisory lock, so there is one writer at a time
 * as under LMDB. store.c keeps the generic checks and dispatches here. */
typedef struct pg_store pg_store;
typedef struct pg_txn pg_txn;

struct smki_txn {
    smki_store *s;
    MDB_txn *txn; /* LMDB */
    pg_txn *pg;   /* PostgreSQL */
    int is_write;
    int holds_quiesce;
    int map_full; /* a put or delete met MDB_MAP_FULL: smki_store_write grows and re-runs */
    uint32_t new_schema; /* smki_txn_set_schema: the store's schema once this commits; 0 none */
    smki_txn *outer;
};

/* Many puts in one transaction (a batch's group), as smki_txn_put each in order; on
 * PostgreSQL sent in pipeline mode, a few round trips for the lot, not one each. */
typedef struct {
    smki_db db;
    unsigned flags;
    const void *key, *val;
    size_t klen, vlen;
} store_put_rec;
int smki_store_txn_put_many(smki_txn *t, const store_put_rec *recs, size_t n);

/* The transactions this thread has open (store.c keeps the list). */
void smki_store_txn_enter(smki_txn *t);
void smki_store_txn_leave(smki_txn *t);

int smki_pg_store_open(const char *conninfo, const char *label, int read_only, unsigned max_dbs, pg_store **out);
void smki_pg_store_close(pg_store *p);
/* Runs fn in a transaction (re-run on a serialization failure or a connection lost
 * before anything was committed); *new_schema is the schema fn set, 0 none. */
int smki_pg_store_run(smki_store *s, pg_store *p, int is_write, smki_txn_fn fn, void *arg, uint32_t *new_schema);
int smki_pg_store_db(pg_store *p, const char *name, unsigned flags, smki_db *out);
/* Every database the catalog lists, in name order. */
int smki_pg_store_each_db(pg_store *p, smki_store_db_fn fn, void *arg);
/* Named databases the store's catalog lists. */
int smki_pg_store_count_dbs(pg_store *p, size_t *out);
/* 1 when the location holds a smki store, 0 when it holds none, negative on error. */
int smki_pg_store_exists(const char *conninfo, const char *label);
int smki_pg_store_lock_exclusive(pg_store *p);
void smki_pg_store_unlock(pg_store *p);

int smki_pg_txn_put(pg_txn *t, smki_db db, const void *key, size_t klen, const void *val, size_t vlen, unsigned flags);
/* SMKI_E_EXISTS (no message) with *refused its index when a NOOVERWRITE put met a key. */
int smki_pg_txn_put_many(pg_txn *t, const store_put_rec *recs, size_t n, size_t *refused);
int smki_pg_txn_get(pg_txn *t, smki_db db, const void *key, size_t klen, const void **val, size_t *vlen);
/* recs' outputs cleared by the caller. */
int smki_pg_txn_get_many(pg_txn *t, smki_db db, smki_get_rec *recs, size_t n);
int smki_pg_txn_del(pg_txn *t, smki_db db, const void *key, size_t klen);
int smki_pg_txn_del_dup(pg_txn *t, smki_db db, const void *key, size_t klen, const void *val, size_t vlen);
int smki_pg_txn_scan(pg_txn *t, smki_db db, const void *prefix, size_t plen, smki_scan_fn fn, void *arg);
int smki_pg_txn_scan_join(pg_txn *t, smki_db index, const void *prefix, size_t plen, smki_db target, smki_join_fn fn,
                      void *arg);
int smki_pg_txn_scan_join_ahead(pg_txn *t, smki_db index, smki_db target, const void *const *prefixes,
                                const size_t *plens, size_t n);
int smki_pg_txn_seek(pg_txn *t, smki_db db, const void *from, size_t flen, void *key, size_t cap, size_t *klen);
int smki_pg_txn_count(pg_txn *t, smki_db db, size_t *count);
int smki_pg_txn_clear(pg_txn *t, smki_db db);

#endif
