/* smki store: the home's store (LMDB, or PostgreSQL). */
#include <string.h>

#include "commands.h"
#include "store/store.h"

static const char INFO_HELP[] =
    "Usage: smki store info\n"
    "\n"
    "Open the home's store (creating it if new), clear readers left by dead processes,\n"
    "check its schema version and print its path, schema and map size. Exit 3 with a\n"
    "message naming the path if it is locked, damaged, or of a newer schema.\n";

static int store_info(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, INFO_HELP)) return EXIT_OK;
    if (argc != 1) return cli_usage(c, "smki store info", "unexpected argument '%s'", argv[1]);
    int rc = cli_home(c);
    smki_store *s = NULL;
    if (rc == 0) rc = smki_store_open(c->store_dir, NULL, &s);
    if (rc < 0) return cli_fail(c, rc);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "path", smki_store_path(s));
        json_int(&w, "schema", smki_store_schema(s));
        json_int(&w, "map_size", (long long)smki_store_map_size(s));
        json_int(&w, "stale_readers_cleared", (long long)smki_store_stale_readers(s));
        json_end(&w);
    } else {
        printf("Store %s\n  schema    %u\n  map size  %zu MiB\n  stale readers cleared  %u\n", smki_store_path(s),
               smki_store_schema(s), smki_store_map_size(s) >> 20, smki_store_stale_readers(s));
    }
    smki_store_close(s);
    return EXIT_OK;
}

static const cli_cmd STORE_COMMANDS[] = {
    {"info", store_info, "open and check the store; print its state"},
    {NULL, NULL, NULL},
};

int cmd_store(smki_cli *c, int argc, char **argv)
{
    return cli_dispatch(c, STORE_COMMANDS, argc - 1, argv + 1, "smki store", "smki store: the home's LMDB store.");
}
