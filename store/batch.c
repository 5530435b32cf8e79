/* batch: group commits for bulk work. Records are copied into one arena and written
 * `group` at a time in one smki_store_write, so a full map replays only that group
 * and a crash loses at most the group being written, never part of one. */
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
};

int smki_batch_begin(smki_store *s, size_t group, smki_batch_commit_fn on_commit, void *arg, smki_batch **out)
{
    ENSURE(s && out, SMKI_E_USAGE, "smki_batch_begin: no store or output");
    *out = NULL;
    ENSURE(!store_is_read_only(s), SMKI_E_USAGE, "store %s is open read-only; refusing to write", smki_store_path(s));
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
    ENSURE(klen > 0 && klen <= store_max_key(b->s), SMKI_E_USAGE,
           "batch for store %s: a key of %zu octets (1 to %zu allowed)", smki_store_path(b->s), klen,
           store_max_key(b->s));
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
    if (++b->nrecs == b->group) return smki_batch_flush(b);
    return 0;
}

/* May run more than once (a full map is grown and the group replayed). */
static int write_group(smki_txn *t, void *arg)
{
    const smki_batch *b = arg;
    for (size_t i = 0; i < b->nrecs; i++) {
        const batch_rec *r = &b->recs[i];
        GUARD(smki_txn_put(t, r->db, b->bytes + r->key_at, r->klen, b->bytes + r->val_at, r->vlen, r->flags));
    }
    return b->also ? b->also(t, b->also_arg) : 0;
}

int smki_batch_flush(smki_batch *b)
{
    ENSURE(b, SMKI_E_USAGE, "smki_batch_flush: no batch");
    if (b->nrecs == 0) return 0;
    size_t n = b->nrecs;
    int rc = smki_store_write(b->s, write_group, b);
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
    free(b->recs);
    free(b->bytes);
    free(b);
}
