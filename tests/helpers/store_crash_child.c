/* store_crash_child: writes records into a store in group commits until killed (or
 * until a limit), printing the highest durably committed index after each commit.
 * test_store kills it at random moments and checks that every printed record
 * survived intact. A second thread keeps read transactions open meanwhile, so a
 * kill usually leaves a stale reader slot for the next open to clear.
 *
 * usage: store_crash_child <store folder> [records to write, 0 = until killed] */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/helpers/store_crash.h"

static atomic_int stop_reading;

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int count_records(smki_txn *t, void *arg)
{
    const smki_db *db = arg;
    size_t n;
    return smki_txn_count(t, *db, &n);
}

static int hold_snapshot(smki_txn *t, void *arg)
{
    GUARD(count_records(t, arg));
    pause_ms(2);
    return 0;
}

typedef struct {
    smki_store *store;
    smki_db db;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *r = p;
    while (!atomic_load(&stop_reading)) {
        if (smki_store_read(r->store, hold_snapshot, &r->db) < 0) {
            fprintf(stderr, "store_crash_child: reader: %s\n", smki_error_msg());
            exit(1);
        }
        usleep(200);
    }
    return NULL;
}

typedef struct {
    smki_db db;
    size_t count;
} count_arg;

static int read_count(smki_txn *t, void *arg)
{
    count_arg *c = arg;
    return smki_txn_count(t, c->db, &c->count);
}

static void on_commit(size_t records, void *arg)
{
    uint64_t *committed = arg;
    *committed += records;
    char line[32];
    int n = snprintf(line, sizeof line, "%llu\n", (unsigned long long)(*committed - 1));
    if (write(STDOUT_FILENO, line, (size_t)n) != n) exit(1);
}

static int fail(const char *what)
{
    fprintf(stderr, "store_crash_child: %s: %s [%s]\n", what, smki_error_msg(), smki_error_origin());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: store_crash_child <store folder> [records, 0 = until killed]\n");
        return 2;
    }
    uint64_t limit = argc == 3 ? strtoull(argv[2], NULL, 10) : 0;
    /* A small map, so that kills also land while the map is being grown. */
    smki_store_opts opts = {.initial_map = 1u << 20};
    smki_store *s = NULL;
    if (smki_store_open(argv[1], &opts, &s) < 0) return fail("open");
    count_arg existing = {0, 0};
    if (smki_store_db(s, CRASH_DB, 0, &existing.db) < 0) return fail("database");
    if (smki_store_read(s, read_count, &existing) < 0) return fail("count");

    reader_arg r = {s, existing.db};
    pthread_t tid;
    if (pthread_create(&tid, NULL, reader, &r) != 0) return fail("reader thread");

    uint64_t committed = existing.count;
    smki_batch *b = NULL;
    if (smki_batch_begin(s, CRASH_GROUP, on_commit, &committed, &b) < 0) return fail("batch");
    uint8_t key[8], val[CRASH_VALUE_MAX];
    for (uint64_t i = existing.count; limit == 0 || i < existing.count + limit; i++) {
        crash_key(i, key);
        size_t vlen = crash_value(i, val);
        if (smki_batch_put(b, existing.db, key, sizeof key, val, vlen, SMKI_PUT_NOOVERWRITE) < 0) return fail("put");
    }
    if (smki_batch_end(b) < 0) return fail("flush");
    atomic_store(&stop_reading, 1);
    pthread_join(tid, NULL);
    smki_store_close(s);
    return 0;
}
