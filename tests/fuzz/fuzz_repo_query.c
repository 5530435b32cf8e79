/* libFuzzer target for the repository's search queries (GET /certificates?QUERY, from
 * any client), answered one at a time (smki_repo_handle) and together with others
 * (smki_repo_handle_many, as the server answers searches on PostgreSQL), over a store
 * whose CA databases exist and are empty. Beyond not crashing: every answer is 200, 400
 * or 404 with a JSON body; the same request answered alone and among others gets the same
 * answer, byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repo/repo.h"

static smki_repo *repo;
static char dir[] = "/tmp/smki-fuzz-repo-query.XXXXXX";

static void require(int cond, const char *what)
{
    if (cond) return;
    fprintf(stderr, "fuzz_repo_query: invariant failed: %s\n", what);
    abort();
}

/* The repository closed and its store's folder removed when the run ends. */
static void remove_store(void)
{
    smki_repo_free(repo);
    char path[sizeof dir + 32];
    snprintf(path, sizeof path, "%s/store/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/store/lock.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/store", dir);
    rmdir(path);
    rmdir(dir);
}

/* A store with the CA's (empty) databases, and the repository over it. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    require(mkdtemp(dir) != NULL, "a temporary folder");
    atexit(remove_store);
    char store[sizeof dir + 8];
    snprintf(store, sizeof store, "%s/store", dir);
    smki_store *s = NULL;
    smki_ca_db db;
    require(smki_store_open(store, NULL, &s) == 0 && smki_ca_db_open(s, &db) == 0, "a store");
    smki_store_close(s);
    smki_repo_opts o = {0};
    o.store_dir = store;
    o.home = dir;
    o.env = "test";
    o.public_mask = SMKI_REPO_PUBLIC_ALL;
    require(smki_repo_open(&o, &repo) == 0, "the repository");
    return 0;
}

static void answered_as_json(const smki_repo_resp *w)
{
    require(w->status == 200 || w->status == 400 || w->status == 404, "200, 400 or 404 (a CA name the store lacks)");
    require(w->body && w->len >= 3 && w->body[0] == '{' && w->body[w->len - 2] == '}' && w->body[w->len - 1] == '\n',
            "a JSON body");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *query = malloc(size + 1);
    require(query != NULL, "memory");
    memcpy(query, data, size);
    query[size] = 0;
    smki_repo_req q = {.method = "GET", .path = "/certificates", .query = query};
    smki_repo_req other = {.method = "GET", .path = "/certificates", .query = "eui=00-DB-12-34-56-78-90-A0"};
    smki_repo_resp alone, many[3];
    require(smki_repo_handle(repo, &q, &alone) == 0, "an answer");
    answered_as_json(&alone);
    const smki_repo_req *reqs[3] = {&other, &q, &q};
    smki_repo_resp *ws[3] = {&many[0], &many[1], &many[2]};
    int rcs[3];
    smki_repo_handle_many(repo, reqs, ws, rcs, 3);
    for (int i = 1; i < 3; i++) {
        require(rcs[i] == 0 && many[i].status == alone.status && many[i].len == alone.len &&
                    memcmp(many[i].body, alone.body, alone.len) == 0,
                "the same answer among others");
    }
    require(rcs[0] == 0 && many[0].status == 200, "the other search answered");
    for (int i = 0; i < 3; i++) smki_repo_resp_free(&many[i]);
    smki_repo_resp_free(&alone);
    free(query);
    return 0;
}
