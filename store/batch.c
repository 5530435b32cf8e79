/* batch: group commits for bulk work. Records are copied into one arena and written
 * `group` at a time in one smki_store_write, so a full map replays only that group
 * and a crash loses at most the group being written, never part of one. In the
 * background mode a thread of the batch writes and syncs one group while the caller
 * fills the next arena: the caller's thread never waits on the disk unless it gets
 * a whole group ahead. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_private.h"

#define DEFAULT_GROUP 1000

typedef struct {
    smki_db db;
    unsigned flags;
    size_t key_at, klen, val_at, vlen; /* offsets into the arena: it moves as it grows */
} batch_rec;

struct smki_batch {
    smki_store *s;
    size_t group;
    smki_batch_commit_fn on_commit;
    void *arg;
    batch_rec *recs;
    size_t nrecs, recs_cap;
    uint8_t *bytes;
    size_t used, bytes_cap;
    smki_txn_fn also; /* during smki_batch_flush_with: run in the group's transaction */
    void *also_arg;
    /* background mode: the group being written, and its outcome */
    int background;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, has_work, has_result; /* under mu */
    batch_rec *w_recs;
    size_t w_nrecs, w_recs_cap;
    uint8_t *w_bytes;
    size_t w_bytes_cap;
    int w_rc, w_code;
    char w_msg[SMKI_ERR_MSG_MAX];
    int failed; /* a group failed: every later call returns its error */
    char failed_msg[SMKI_ERR_MSG_MAX + 64];
};

typedef struct {
    const batch_rec *recs;
    size_t nrecs;
    const uint8_t *bytes;
    smki_txn_fn also; /* smki_batch_flush_with: run in the group's transaction; NULL: nothing */
    void *also_arg;
} group_view;

static int failed_error(const smki_batch *b);
static int hand_off(smki_batch *b);

int smki_batch_begin(smki_store *s, size_t group, smki_batch_commit_fn on_commit, void *arg, smki_batch **out)
{
    ENSURE(s && out, SMKI_E_USAGE, "smki_batch_begin: no store or output");
    *out = NULL;
    ENSURE(!smki_store_is_read_only(s), SMKI_E_USAGE, "store %s is open read-only; refusing to write", smki_store_path(s));
    smki_batch *b = calloc(1, sizeof *b);
    ENSURE(b, SMKI_E_NOMEM, "out of memory starting a batch for store %s", smki_store_path(s));
    b->s = s;
    b->group = group ? group : DEFAULT_GROUP;
    b->on_commit = on_commit;
    b->arg = arg;
    *out = b;
    return 0;
}

static int reserve(smki_batch *b, size_t more)
{
    ENSURE(more <= SIZE_MAX / 4 - b->used, SMKI_E_NOMEM, "batch for store %s: %zu octets will not fit",
           smki_store_path(b->s), more);
    if (b->used + more <= b->bytes_cap) return 0;
    size_t cap = b->bytes_cap ? b->bytes_cap : 64 * 1024;
    while (cap < b->used + more) cap *= 2;
    uint8_t *grown = realloc(b->bytes, cap);
    ENSURE(grown, SMKI_E_NOMEM, "out of memory buffering a batch of %zu records for store %s", b->nrecs,
           smki_store_path(b->s));
    b->bytes = grown;
    b->bytes_cap = cap;
    return 0;
}

int smki_batch_put(smki_batch *b, smki_db db, const void *key, size_t klen, const void *val, size_t vlen,
                   unsigned flags)
{
    ENSURE(b && key && (val || vlen == 0), SMKI_E_USAGE, "smki_batch_put: no batch, key or value");
    if (b->failed) return failed_error(b);
    ENSURE(klen > 0 && klen <= smki_store_max_key(b->s), SMKI_E_USAGE,
           "batch for store %s: a key of %zu octets (1 to %zu allowed)", smki_store_path(b->s), klen,
           smki_store_max_key(b->s));
    ENSURE((flags & ~SMKI_PUT_NOOVERWRITE) == 0, SMKI_E_USAGE, "batch for store %s: unknown put flags %#x",
           smki_store_path(b->s), flags);
    if (b->nrecs == b->recs_cap) {
        size_t cap = b->recs_cap ? b->recs_cap * 2 : 256;
        if (cap > b->group) cap = b->group;
        batch_rec *grown = realloc(b->recs, cap * sizeof *grown);
        ENSURE(grown, SMKI_E_NOMEM, "out of memory buffering a batch for store %s", smki_store_path(b->s));
        b->recs = grown;
        b->recs_cap = cap;
    }
    ENSURE(vlen <= SIZE_MAX / 4, SMKI_E_USAGE, "batch for store %s: a value of %zu octets", smki_store_path(b->s),
           vlen);
    GUARD(reserve(b, klen + vlen));
    batch_rec *r = &b->recs[b->nrecs];
    *r = (batch_rec){db, flags, b->used, klen, b->used + klen, vlen};
    memcpy(b->bytes + r->key_at, key, klen);
    if (vlen) memcpy(b->bytes + r->val_at, val, vlen);
    b->used += klen + vlen;
    if (++b->nrecs == b->group) return b->background ? hand_off(b) : smki_batch_flush(b);
    return 0;
}

/* May run more than once (a full map is grown and the group replayed). */
static int write_group(smki_txn *t, void *arg)
{
    const group_view *g = arg;
    store_put_rec chunk[256];
    for (size_t i = 0; i < g->nrecs;) {
        size_t n = 0;
        for (; n < sizeof chunk / sizeof chunk[0] && i < g->nrecs; n++, i++) {
            const batch_rec *r = &g->recs[i];
            chunk[n] = (store_put_rec){r->db, r->flags, g->bytes + r->key_at, g->bytes + r->val_at, r->klen, r->vlen};
        }
        GUARD(smki_store_txn_put_many(t, chunk, n));
    }
    return g->also ? g->also(t, g->also_arg) : 0;
}

/* ---- Background mode ------------------------------------------------------------- */

static void *committer(void *arg)
{
    smki_batch *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->has_work && !b->stop) pthread_cond_wait(&b->cv, &b->mu);
        if (!b->has_work) break;
        pthread_mutex_unlock(&b->mu);
        group_view g = {b->w_recs, b->w_nrecs, b->w_bytes, NULL, NULL};
        int rc = smki_store_write(b->s, write_group, &g);
        pthread_mutex_lock(&b->mu);
        b->w_rc = rc;
        if (rc < 0) {
            b->w_code = smki_error_code() ? smki_error_code() : rc;
            snprintf(b->w_msg, sizeof b->w_msg, "%s", smki_error_msg());
        }
        b->has_work = 0;
        b->has_result = 1;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static int failed_error(const smki_batch *b)
{
    return smki_fail_at(b->failed, __FILE__, __LINE__, "%s", b->failed_msg);
}

/* Wait for the group being written, report it (on_commit, in the caller's thread)
 * or make its failure the batch's. */
static int collect(smki_batch *b)
{
    pthread_mutex_lock(&b->mu);
    while (b->has_work) pthread_cond_wait(&b->cv, &b->mu);
    int had = b->has_result, rc = b->w_rc;
    size_t n = b->w_nrecs;
    b->has_result = 0;
    pthread_mutex_unlock(&b->mu);
    if (!had) return 0;
    if (rc < 0) {
        b->failed = b->w_code;
        snprintf(b->failed_msg, sizeof b->failed_msg, "batch group of %zu records not written: %s", n, b->w_msg);
        return failed_error(b);
    }
    if (b->on_commit) b->on_commit(n, b->arg);
    return 0;
}

/* The caller's arena becomes the group being written; the arena of the group before
 * (collected first) becomes the caller's. */
static int hand_off(smki_batch *b)
{
    GUARD(collect(b));
    batch_rec *recs = b->w_recs;
    size_t recs_cap = b->w_recs_cap, bytes_cap = b->w_bytes_cap;
    uint8_t *bytes = b->w_bytes;
    b->w_recs = b->recs;
    b->w_recs_cap = b->recs_cap;
    b->w_bytes = b->bytes;
    b->w_bytes_cap = b->bytes_cap;
    b->w_nrecs = b->nrecs;
    b->recs = recs;
    b->recs_cap = recs_cap;
    b->bytes = bytes;
    b->bytes_cap = bytes_cap;
    b->nrecs = 0;
    b->used = 0;
    pthread_mutex_lock(&b->mu);
    b->has_work = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

int smki_batch_begin_background(smki_store *s, size_t group, smki_batch_commit_fn on_commit, void *arg,
                                smki_batch **out)
{
    GUARD(smki_batch_begin(s, group, on_commit, arg, out));
    smki_batch *b = *out;
    int ok = pthread_mutex_init(&b->mu, NULL) == 0;
    if (ok && pthread_cond_init(&b->cv, NULL) != 0) {
        pthread_mutex_destroy(&b->mu);
        ok = 0;
    }
    if (ok && pthread_create(&b->thread, NULL, committer, b) != 0) {
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
        ok = 0;
    }
    if (!ok) {
        smki_batch_abort(b);
        *out = NULL;
        return SMKI_FAIL(SMKI_E_NOMEM, "cannot start the commit thread of a batch for store %s", smki_store_path(s));
    }
    b->background = 1;
    return 0;
}

/* ---- Flushing ---------------------------------------------------------------------- */

int smki_batch_flush(smki_batch *b)
{
    ENSURE(b, SMKI_E_USAGE, "smki_batch_flush: no batch");
    if (b->background) {
        if (b->failed) return failed_error(b);
        if (b->nrecs) GUARD(hand_off(b));
        return collect(b);
    }
    if (b->nrecs == 0) return 0;
    size_t n = b->nrecs;
    group_view g = {b->recs, b->nrecs, b->bytes, b->also, b->also_arg};
    int rc = smki_store_write(b->s, write_group, &g);
    /* Written or refused, the group leaves the buffer whole: a refused group (a
     * duplicate key, say) wrote nothing, and replaying it would only fail again. */
    b->nrecs = 0;
    b->used = 0;
    if (rc < 0) return smki_error_wrap("batch group of %zu records not written", n);
    if (b->on_commit) b->on_commit(n, b->arg);
    return 0;
}

int smki_batch_flush_with(smki_batch *b, smki_txn_fn also, void *arg)
{
    ENSURE(b, SMKI_E_USAGE, "smki_batch_flush_with: no batch");
    ENSURE(!b->background, SMKI_E_USAGE,
           "smki_batch_flush_with: a background batch writes its groups on its own thread; use a plain batch");
    b->also = also;
    b->also_arg = arg;
    int rc = smki_batch_flush(b);
    b->also = NULL;
    b->also_arg = NULL;
    return rc;
}

int smki_batch_end(smki_batch *b)
{
    if (!b) return 0;
    int rc = smki_batch_flush(b);
    smki_batch_abort(b);
    return rc;
}

void smki_batch_abort(smki_batch *b)
{
    if (!b) return;
    if (b->background) { /* a group already handed over is still written */
        pthread_mutex_lock(&b->mu);
        b->stop = 1;
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL);
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
        free(b->w_recs);
        free(b->w_bytes);
    }
    free(b->recs);
    free(b->bytes);
    free(b);
}
