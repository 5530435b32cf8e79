/* smki store: the home's store (LMDB, or PostgreSQL). */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ra/ra.h"
#include "store/store.h"

static const char INFO_HELP[] =
    "Usage: smki store info\n"
    "\n"
    "Open the home's store (creating it if new), clear readers left by dead processes,\n"
    "check its schema version and print its path, engine, schema and map size. Exit 3\n"
    "with a message naming the path if it is locked, damaged, or of a newer schema.\n"
    "\n"
    "The engine is [store] engine in smki.conf: lmdb (the default; the folder [store]\n"
    "path) or postgresql (the server [store] conninfo names, e.g.\n"
    "  [store]\n"
    "  engine = postgresql\n"
    "  conninfo = host=/var/run/postgresql dbname=smki passfile=/srv/smki/pgpass\n"
    "its password, if any, only in the password file; see docs/deploy.md).\n";

static void print_info(const smki_cli *c, smki_store *s)
{
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "path", smki_store_path(s));
        json_str(&w, "engine", smki_store_map_size(s) ? "lmdb" : "postgresql");
        json_int(&w, "schema", smki_store_schema(s));
        json_int(&w, "map_size", (long long)smki_store_map_size(s));
        json_int(&w, "stale_readers_cleared", (long long)smki_store_stale_readers(s));
        json_end(&w);
    } else if (smki_store_map_size(s) == 0) {
        printf("Store %s\n  engine    postgresql\n  schema    %u\n", smki_store_path(s), smki_store_schema(s));
    } else {
        printf("Store %s\n  engine    lmdb\n  schema    %u\n  map size  %zu MiB\n  stale readers cleared  %u\n",
               smki_store_path(s), smki_store_schema(s), smki_store_map_size(s) >> 20, smki_store_stale_readers(s));
    }
}

static int store_info(smki_cli *c, int argc, char **argv)
{
    const cli_spec spec = {"smki store info", INFO_HELP, NULL, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    int rc = cli_home(c);
    smki_store *s = NULL;
    if (rc == 0) rc = smki_store_open(c->store_dir, NULL, &s);
    if (rc < 0) return cli_fail(c, rc);
    print_info(c, s);
    smki_store_close(s);
    return EXIT_OK;
}

static const char COPY_HELP[] =
    "Usage: smki store copy --from STORE --to STORE [--checkpoint-pub FILE]\n"
    "\n"
    "Copy every record of every database of one store into another, LMDB or PostgreSQL\n"
    "either way, then count each database on both sides and verify the copy's audit\n"
    "trail (as 'smki audit verify' does). A STORE is an LMDB store's folder (a home's\n"
    "store/) or postgresql: followed by a libpq conninfo; the password of a PostgreSQL\n"
    "login comes from its password file (PGPASSFILE or passfile=), never from here.\n"
    "The copy must start empty (a new folder, or a new schema): a copy never merges.\n"
    "Stop the CA's writers first: records written during the copy may be missed.\n"
    "The checkpoint key's public half comes from the home's token (audit.checkpoint_key)\n"
    "or --checkpoint-pub FILE.\n"
    "\n"
    "Exit 0 when every database's count matches and the audit trail verifies; 2 if not.\n"
    "A PostgreSQL STORE goes to --from or --to the same way, quoted as one word, e.g.\n"
    "--to 'postgresql:host=/run/postgresql dbname=smki' (the local server's socket).\n"
    "\n"
    "Examples (in a home with a store and its audit checkpoint key: a copy of it to a new\n"
    "folder, checked; a second copy into the same folder is refused):\n"
    "  smki store copy --from \"$SMKI_HOME/store\" --to store.back\n"
    "  smki --json store copy --from store.back --to store.back2\n"
    "  smki store copy --from \"$SMKI_HOME/store\" --to store.back   # exits 2: the copy must start empty\n";

/* The copy's audit trail verified with the checkpoint key's public half; 0 and
 * *had_trail = 0 when the store holds no RA. */
static int verify_copy(smki_cli *c, const char *to, const char *pub_file, smki_audit_report *rep, int *had_trail)
{
    *had_trail = 0;
    smki_store_opts ro = {0, 0, 1};
    smki_store *s = NULL;
    smki_ra *ra = NULL;
    EVP_PKEY *pub = NULL;
    smki_ra_policy pol;
    int rc = smki_ra_policy_load(c->conf, &pol);
    if (rc == 0) rc = smki_store_open(to, &ro, &s);
    if (rc == 0) {
        rc = smki_ra_open(s, &pol, &ra);
        if (rc == SMKI_E_NOTFOUND) { /* no RA databases: nothing to verify */
            smki_error_clear();
            smki_store_close(s);
            return 0;
        }
    }
    *had_trail = rc == 0;
    if (rc == 0 && pub_file) {
        rc = smki_pub_load_file(pub_file, &pub);
    } else if (rc == 0) {
        char ref[SMKI_KEY_URI_MAX];
        rc = cli_key_ref(c, smki_conf_get(c->conf, "audit.checkpoint_key", "smki-audit"), ref, sizeof ref);
        if (rc == 0) rc = smki_key_public_load(ref, &c->hsm, &pub);
        if (rc < 0)
            smki_error_wrap("the checkpoint key's public half (audit.checkpoint_key, or give --checkpoint-pub FILE)");
    }
    if (rc == 0) rc = smki_audit_verify(ra, pub, rep);
    EVP_PKEY_free(pub);
    smki_ra_close(ra);
    smki_store_close(s);
    return rc;
}

static void print_copy(const smki_cli *c, const char *from, const char *to, int rc,
                       const smki_store_copy_report *rep, const smki_audit_report *audit, int had_trail)
{
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", rc == 0);
        json_int(&w, "records", (long long)rep->records);
        json_key_arr(&w, "databases");
        for (size_t i = 0; i < rep->ndbs; i++) {
            json_arr_obj(&w);
            json_str(&w, "name", rep->dbs[i].name);
            json_int(&w, "from", (long long)rep->dbs[i].from_records);
            json_int(&w, "to", (long long)rep->dbs[i].to_records);
            json_close_obj(&w);
        }
        json_close_arr(&w);
        json_bool(&w, "audit_trail", had_trail);
        json_int(&w, "audit_entries", (long long)audit->entries);
        json_int(&w, "audit_findings", (long long)audit->total_findings);
        json_end(&w);
        return;
    }
    printf("Copied %zu records from %s to %s\n", rep->records, from, to);
    for (size_t i = 0; i < rep->ndbs; i++)
        printf("  %-20s %10zu  %10zu\n", rep->dbs[i].name, rep->dbs[i].from_records, rep->dbs[i].to_records);
    if (had_trail && rc == 0)
        printf("Audit trail of the copy verified: %llu entries, %llu checkpoint(s).\n",
               (unsigned long long)audit->entries, (unsigned long long)audit->checkpoints);
    else if (!had_trail)
        printf("The store holds no audit trail (no RA): nothing more to verify.\n");
    else
        fprintf(stderr, "smki: refused: the copy's audit trail does not verify: %zu finding(s)\n",
                audit->total_findings);
}

/* Every record of from into the new store to. */
static int copy_stores(const char *from, const char *to, smki_store_copy_report *rep)
{
    smki_store *src = NULL, *dst = NULL;
    smki_store_opts ro = {0, 0, 1};
    int rc = smki_store_exists(from) ? 0 : SMKI_FAIL(SMKI_E_NOTFOUND, "there is no store at %s", from);
    if (rc == 0) rc = smki_store_open(from, &ro, &src);
    if (rc == 0) rc = smki_store_open(to, NULL, &dst);
    if (rc == 0) rc = smki_store_copy(src, dst, rep);
    smki_store_close(src);
    smki_store_close(dst);
    return rc;
}

static int store_copy(smki_cli *c, int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *pub = NULL;
    const cli_opt opts[] = {CLI_VALUE("from", &from), CLI_VALUE("to", &to), CLI_VALUE("checkpoint-pub", &pub),
                            CLI_END};
    const cli_spec spec = {"smki store copy", COPY_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!from || !to) return cli_usage(c, "smki store copy", "give both --from STORE and --to STORE");
    int rc = cli_home(c);
    smki_store_copy_report *rep = calloc(1, sizeof *rep);
    smki_audit_report *audit = calloc(1, sizeof *audit);
    if (rc == 0 && (!rep || !audit)) rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    if (rc == 0) rc = copy_stores(from, to, rep);
    int had_trail = 0;
    if (rc == 0) rc = verify_copy(c, to, pub, audit, &had_trail);
    if (rc == 0 || rc == SMKI_E_VERIFY) print_copy(c, from, to, rc, rep, audit, had_trail);
    free(rep);
    free(audit);
    return rc == 0 ? EXIT_OK : cli_fail(c, rc);
}

static const cli_cmd STORE_COMMANDS[] = {
    {"info", store_info, "open and check the store; print its state"},
    {"copy", store_copy, "copy every record to another store (LMDB or PostgreSQL), count and verify"},
    {NULL, NULL, NULL},
};

int cmd_store(smki_cli *c, int argc, char **argv)
{
    return cli_dispatch(c, STORE_COMMANDS, argc - 1, argv + 1, "smki store", "smki store: the home's store (LMDB, or PostgreSQL with [store] engine).");
}
