/* copy: every record of one store into another, either engine to either (LMDB to
 * PostgreSQL when a CA moves to a primary with standbys, and back), then the counts
 * of each database compared on both sides. */
#include <stdio.h>
#include <string.h>

#include "store.h"

#define COPY_GROUP 2000

typedef struct {
    smki_store *from, *to;
    smki_store_copy_report *rep;
} copy_ctx;

static int list_db(const char *name, unsigned flags, void *arg)
{
    copy_ctx *c = arg;
    smki_store_copy_report *rep = c->rep;
    ENSURE(rep->ndbs < SMKI_STORE_COPY_MAX_DBS, SMKI_E_STORE, "store %s has more than %d databases",
           smki_store_path(c->from), SMKI_STORE_COPY_MAX_DBS);
    ENSURE(strlen(name) < sizeof rep->dbs[0].name, SMKI_E_STORE, "store %s: a database name of %zu characters",
           smki_store_path(c->from), strlen(name));
    snprintf(rep->dbs[rep->ndbs].name, sizeof rep->dbs[0].name, "%s", name);
    rep->dbs[rep->ndbs].flags = flags;
    rep->ndbs++;
    return 0;
}

typedef struct {
    smki_db db;
    size_t n;
} count_arg;

static int count_txn(smki_txn *t, void *arg)
{
    count_arg *a = arg;
    return smki_txn_count(t, a->db, &a->n);
}

static int count_of(smki_store *s, const char *name, unsigned flags, size_t *n)
{
    count_arg a = {0, 0};
    GUARD(smki_store_db(s, name, flags, &a.db));
    GUARD(smki_store_read(s, count_txn, &a));
    *n = a.n;
    return 0;
}

typedef struct {
    smki_batch *b;
    smki_db to_db;
    size_t n;
} copy_arg;

static int copy_record(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    copy_arg *a = arg;
    a->n++;
    return smki_batch_put(a->b, a->to_db, key, klen, val, vlen, 0);
}

typedef struct {
    smki_db from_db;
    copy_arg *a;
} scan_arg;

static int copy_txn(smki_txn *t, void *arg)
{
    scan_arg *s = arg;
    s->a->n = 0; /* a read may be re-run */
    return smki_txn_scan(t, s->from_db, NULL, 0, copy_record, s->a);
}

int smki_store_copy(smki_store *from, smki_store *to, smki_store_copy_report *rep)
{
    ENSURE(from && to && rep && from != to, SMKI_E_USAGE, "smki_store_copy: two stores and a report");
    memset(rep, 0, sizeof *rep);
    copy_ctx c = {from, to, rep};
    GUARD(smki_store_each_db(from, list_db, &c));
    /* A copy never merges: everything but the schema record must be absent. */
    for (size_t i = 0; i < rep->ndbs; i++) {
        size_t n = 0;
        GUARD(count_of(to, rep->dbs[i].name, rep->dbs[i].flags, &n));
        int is_meta = strcmp(rep->dbs[i].name, "meta") == 0;
        ENSURE(n <= (is_meta ? 1u : 0u), SMKI_E_EXISTS,
               "store %s already holds %zu record(s) in database %s; copy only into an empty store", smki_store_path(to),
               n, rep->dbs[i].name);
        GUARD(count_of(from, rep->dbs[i].name, rep->dbs[i].flags, &rep->dbs[i].from_records));
    }
    for (size_t i = 0; i < rep->ndbs; i++) {
        smki_db from_db, to_db;
        GUARD(smki_store_db(from, rep->dbs[i].name, rep->dbs[i].flags, &from_db));
        GUARD(smki_store_db(to, rep->dbs[i].name, rep->dbs[i].flags, &to_db));
        smki_batch *b = NULL;
        GUARD(smki_batch_begin(to, COPY_GROUP, NULL, NULL, &b));
        copy_arg a = {b, to_db, 0};
        scan_arg s = {from_db, &a};
        int rc = smki_store_read(from, copy_txn, &s);
        if (rc == 0) rc = smki_batch_end(b);
        else smki_batch_abort(b);
        if (rc < 0) return smki_error_wrap("copying database %s from %s to %s", rep->dbs[i].name, smki_store_path(from),
                                           smki_store_path(to));
        rep->records += a.n;
    }
    for (size_t i = 0; i < rep->ndbs; i++) {
        GUARD(count_of(to, rep->dbs[i].name, rep->dbs[i].flags, &rep->dbs[i].to_records));
        ENSURE(rep->dbs[i].to_records == rep->dbs[i].from_records, SMKI_E_VERIFY,
               "the copy of database %s holds %zu records where %s holds %zu", rep->dbs[i].name,
               rep->dbs[i].to_records, smki_store_path(from), rep->dbs[i].from_records);
    }
    return 0;
}
