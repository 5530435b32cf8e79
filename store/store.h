/* store: the LMDB helpers every smki module uses. One environment per home, named
 * databases, a schema version, a map that grows instead of failing with
 * MDB_MAP_FULL, group commits for bulk work, stale-reader cleanup, and clear errors
 * for a store that is locked, damaged or of a newer schema. */
#ifndef SMKI_STORE_H
#define SMKI_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* Schema 2: the CA's certificates carry an arrival sequence and one facet index
 * replaces its role, usage, environment and status indices (ca/ca_store.c; a
 * schema-1 store is brought to 2 by smki_ca_db_open in one write). */
#define SMKI_STORE_SCHEMA 2

typedef struct smki_store smki_store;
typedef struct smki_txn smki_txn;
typedef unsigned int smki_db; /* a named database's handle (an MDB_dbi) */

typedef struct {
    size_t initial_map;  /* bytes; 0 = 64 MiB. The map doubles when full. */
    unsigned max_dbs;    /* 0 = 64 */
    int read_only;
} smki_store_opts;

/* A store's location is a folder (the embedded LMDB engine) or this prefix followed
 * by a libpq conninfo ("postgresql:host=/run/postgresql dbname=smki", or a URI
 * "postgresql://db1/smki"): the PostgreSQL engine, one table per named database in
 * the connection's schema, with the same semantics (whole transactions, one writer
 * at a time, key order, sorted duplicates, the schema version). A conninfo holding
 * a password is refused: the password belongs in a password file (PGPASSFILE). */
#define SMKI_STORE_PG_PREFIX "postgresql:"

/* 1 if `location` holds a store (a folder's data.mdb; a PostgreSQL schema's
 * catalog), 0 if not, negative if that cannot be told (a server unreachable): the
 * open then says why. Commands that only read, or that need what an earlier command
 * recorded, check this first so that a refusal creates nothing. */
SMKI_MUST_CHECK int smki_store_exists(const char *location);
/* Where a home's store is, from its smki.conf: [store] engine = lmdb (default: the
 * folder [store] path, default "store", relative to home) or postgresql (the server
 * [store] conninfo names, as "postgresql:" CONNINFO). conf_path names the file in
 * messages. Refused (SMKI_E_USAGE): an unknown engine, conninfo without postgresql,
 * postgresql without conninfo, a location longer than cap. */
SMKI_MUST_CHECK int smki_store_location(const smki_conf *conf, const char *conf_path, const char *home, char *out,
                                        size_t cap);

/* Open (creating the folder and environment if needed) the store in `dir`. Clears
 * stale readers left by dead processes, checks the schema version (refusing a
 * newer one), and maps LMDB's errors to SMKI_E_LOCKED / SMKI_E_CORRUPT / SMKI_E_STORE
 * with the path in the message. A folder may be open once per process (LMDB's
 * fcntl locks do not survive a second handle being closed): share the handle. */
SMKI_MUST_CHECK int smki_store_open(const char *dir, const smki_store_opts *opts, smki_store **out);
void smki_store_close(smki_store *s);
const char *smki_store_path(const smki_store *s);
size_t smki_store_map_size(const smki_store *s); /* 0 on PostgreSQL */
/* 1 when reads wait on a server's round trip (PostgreSQL), 0 when they wait on
 * nothing (LMDB): whether gathering many reads into one is worth a wait. */
int smki_store_is_remote(const smki_store *s);
uint32_t smki_store_schema(const smki_store *s); /* 0 for an empty store opened read-only */
/* The schema as this transaction sees it, and (in a write) moving it forward to a
 * schema this smki knows: for the module whose layout changed, in the transaction
 * that migrates it, so the data and its schema change together. A newer smki's
 * store is already refused at open; an older smki refuses this one after. */
SMKI_MUST_CHECK int smki_txn_schema(smki_txn *t, uint32_t *out);
SMKI_MUST_CHECK int smki_txn_set_schema(smki_txn *t, uint32_t schema);
/* Reader slots of dead processes that the open cleared (for diagnostics). */
unsigned smki_store_stale_readers(const smki_store *s);

/* Open (creating if the store is writable) a named database; handles are cached per
 * store, so calling this each time is cheap. flags: SMKI_DB_DUPSORT for indices
 * where one key maps to many values. The first call for a name must come before
 * any transaction of the calling thread is open on the store (a transaction cannot
 * use a handle made after it began): open the databases a module uses when it
 * starts. A read-only store gives SMKI_E_NOTFOUND for a database it lacks. */
#define SMKI_DB_DUPSORT 0x1u
SMKI_MUST_CHECK int smki_store_db(smki_store *s, const char *name, unsigned flags, smki_db *out);

/* Transactions. Writes go through smki_store_write so that a full map can be grown
 * and the whole transaction re-run: fn must do only store work (no side effects
 * outside the transaction), since it may run more than once. Returning a negative
 * status from fn aborts the transaction and is passed back. A read sees one whole
 * commit; two reads in a row are not promised to see commits in order while another
 * thread or process is committing (LMDB publishes a commit's id after its data). */
typedef int (*smki_txn_fn)(smki_txn *txn, void *arg);
SMKI_MUST_CHECK int smki_store_write(smki_store *s, smki_txn_fn fn, void *arg);
SMKI_MUST_CHECK int smki_store_read(smki_store *s, smki_txn_fn fn, void *arg);

#define SMKI_PUT_NOOVERWRITE 0x1u /* refuse (SMKI_E_EXISTS) if the key is there */
SMKI_MUST_CHECK int smki_txn_put(smki_txn *t, smki_db db, const void *key, size_t klen, const void *val, size_t vlen,
                                 unsigned flags);
/* *val points into the map and is valid until the transaction ends. SMKI_E_NOTFOUND
 * if absent (without noise: callers test for it). */
SMKI_MUST_CHECK int smki_txn_get(smki_txn *t, smki_db db, const void *key, size_t klen, const void **val, size_t *vlen);
/* Many gets at once: for each of the n records, found and its val/vlen as
 * smki_txn_get of key would give (valid until the transaction ends), or found 0 (val
 * NULL, vlen 0) for a key the database lacks, which is not an error. Records keep
 * their order; a key may come more than once. The same as n gets in a row, but on
 * PostgreSQL one statement for the lot (up to SMKI_GET_MANY_STMT keys a statement),
 * not a round trip each: for bulk work that looks many keys up before acting. */
#define SMKI_GET_MANY_STMT 1024
typedef struct {
    const void *key;
    size_t klen;
    int found;       /* out */
    const void *val; /* out */
    size_t vlen;     /* out */
} smki_get_rec;
SMKI_MUST_CHECK int smki_txn_get_many(smki_txn *t, smki_db db, smki_get_rec *recs, size_t n);
SMKI_MUST_CHECK int smki_txn_del(smki_txn *t, smki_db db, const void *key, size_t klen);
/* In a SMKI_DB_DUPSORT database: remove the one value val under key, leaving the
 * key's other values. SMKI_E_NOTFOUND (without noise) if that pair is absent; refused
 * (SMKI_E_USAGE) on a database that is not DUPSORT, where it would remove the key. */
SMKI_MUST_CHECK int smki_txn_del_dup(smki_txn *t, smki_db db, const void *key, size_t klen, const void *val, size_t vlen);
/* Visit every record whose key starts with prefix (plen may be 0: all), in key
 * order. fn returns 0 to go on, 1 to stop early, SMKI_SCAN_NEXT_KEY to skip the
 * rest of this key's values (in a SMKI_DB_DUPSORT database), negative on error. */
#define SMKI_SCAN_NEXT_KEY 2
typedef int (*smki_scan_fn)(const void *key, size_t klen, const void *val, size_t vlen, void *arg);
SMKI_MUST_CHECK int smki_txn_scan(smki_txn *t, smki_db db, const void *prefix, size_t plen, smki_scan_fn fn, void *arg);
/* An index scan: as smki_txn_scan over `index`, whose values are keys of `target`
 * (a database without duplicates), with each value's record of target handed to fn
 * beside it (rec NULL, rlen 0 when target has none). The same as a scan whose fn
 * gets each value, but on PostgreSQL one statement, not one per record: a lookup
 * through an index in one round trip. key, val and rec are valid during fn only.
 * fn's returns as for smki_txn_scan. */
typedef int (*smki_join_fn)(const void *key, size_t klen, const void *val, size_t vlen, const void *rec, size_t rlen,
                            void *arg);
SMKI_MUST_CHECK int smki_txn_scan_join(smki_txn *t, smki_db index, const void *prefix, size_t plen, smki_db target,
                                       smki_join_fn fn, void *arg);
/* Says which index scans this transaction is about to make (smki_txn_scan_join of
 * index joined with target, one per prefix) so that an engine that can fetches them
 * at once: on PostgreSQL a read sends their first pages in one round trip, where each
 * scan would take one; LMDB, whose scans wait on nothing, does nothing. A scan later
 * made with one of these prefixes is answered from what was fetched (each fetch once;
 * its further pages, if any, as usual); results are exactly those without it. For
 * many lookups at once (a repository answering many clients). */
SMKI_MUST_CHECK int smki_txn_scan_join_ahead(smki_txn *t, smki_db index, smki_db target, const void *const *prefixes,
                                             const size_t *plens, size_t n);
/* The first key at or after `from` in key order, copied to key (cap octets; a
 * longer key is SMKI_E_CORRUPT) with its length in *klen; SMKI_E_NOTFOUND (without
 * noise) past the last. For skip scans: a lookup per distinct leading field. */
SMKI_MUST_CHECK int smki_txn_seek(smki_txn *t, smki_db db, const void *from, size_t flen, void *key, size_t cap, size_t *klen);
/* Records in a database. */
SMKI_MUST_CHECK int smki_txn_count(smki_txn *t, smki_db db, size_t *count);
/* Remove every record of a database in a write transaction, keeping the database
 * itself (its handle stays valid in every process that has it). */
SMKI_MUST_CHECK int smki_txn_clear(smki_txn *t, smki_db db);

/* Group commits for bulk work: puts are buffered and written in one transaction
 * every `group` records (and on flush/end), so a batch of 10^5 records costs
 * a few hundred fsyncs, not 10^5. A record is durable once the flush that covers
 * it returns; after a crash, every flushed record is there and no partial group is.
 * on_commit (optional) is called after each durable commit with the number of
 * records it held: the point at which a caller may report them as done. A group
 * that fails (SMKI_PUT_NOOVERWRITE meeting a key in the store or earlier in the
 * batch: SMKI_E_EXISTS naming the key in hex) is written not at all and dropped
 * from the buffer; groups committed before it stay. group 0 = 1000. */
typedef struct smki_batch smki_batch;
typedef void (*smki_batch_commit_fn)(size_t records, void *arg);
SMKI_MUST_CHECK int smki_batch_begin(smki_store *s, size_t group, smki_batch_commit_fn on_commit, void *arg, smki_batch **out);
SMKI_MUST_CHECK int smki_batch_put(smki_batch *b, smki_db db, const void *key, size_t klen, const void *val, size_t vlen,
                                   unsigned flags);
SMKI_MUST_CHECK int smki_batch_flush(smki_batch *b);
/* Flush with one more step in the group's transaction: also(t, arg) runs after the
 * group's puts (and, like any transaction function, may run more than once); its
 * failure writes nothing of the group. With no records buffered, nothing runs.
 * Plain batches only: a background batch refuses it (SMKI_E_USAGE). */
SMKI_MUST_CHECK int smki_batch_flush_with(smki_batch *b, smki_txn_fn also, void *arg);
/* Flushes what remains and frees the batch. */
SMKI_MUST_CHECK int smki_batch_end(smki_batch *b);
/* Drops unflushed records and frees the batch. */
void smki_batch_abort(smki_batch *b);
/* The same with the writing in a thread of the batch's own: a full group is handed
 * to it and the caller goes on filling the next, so the caller waits on the disk
 * only when it gets a whole group ahead. on_commit is still called in the caller's
 * thread, from the put, flush or end that finds the group durable; flush and end
 * return once everything put is durable, as above. Unlike the mode above, a group
 * that fails stops the batch: that call and every later put or flush return its
 * error, and nothing more is written (groups committed before stay). abort waits
 * for a group already handed over, which is then written. */
SMKI_MUST_CHECK int smki_batch_begin_background(smki_store *s, size_t group, smki_batch_commit_fn on_commit, void *arg,
                                                smki_batch **out);

/* Every named database of the store, in name order: its name and SMKI_DB_* flags.
 * fn returns 0 to go on, negative to stop with that error. */
typedef int (*smki_store_db_fn)(const char *name, unsigned flags, void *arg);
SMKI_MUST_CHECK int smki_store_each_db(smki_store *s, smki_store_db_fn fn, void *arg);

/* Copy every record of every named database of `from` into `to` (either engine to
 * either), then count each database on both sides. `to` must hold nothing but its
 * schema record: a copy never merges (SMKI_E_EXISTS naming the database). Records
 * go in group commits; a copy that fails part way leaves `to` incomplete, and a new
 * copy refuses it until it is emptied (a new folder, or DROP SCHEMA). The counts
 * differing is SMKI_E_VERIFY naming the database. */
#define SMKI_STORE_COPY_MAX_DBS 64
typedef struct {
    size_t ndbs;
    struct {
        char name[64];
        unsigned flags;
        size_t from_records, to_records;
    } dbs[SMKI_STORE_COPY_MAX_DBS];
    size_t records; /* copied, over all databases */
} smki_store_copy_report;
SMKI_MUST_CHECK int smki_store_copy(smki_store *from, smki_store *to, smki_store_copy_report *rep);

/* Take the store's maintenance lock (fcntl, non-blocking) for operations that must
 * run alone; SMKI_E_LOCKED names the process that holds it. */
SMKI_MUST_CHECK int smki_store_lock_exclusive(smki_store *s);
void smki_store_unlock(smki_store *s);

#endif
