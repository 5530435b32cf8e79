/* smki ca keys: a half-made ceremony's keys, listed and removed (ca/ceremony.c decides
 * which; in a store with RA operators the removal is an audited RA action, ra/). */
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "commands.h"
#include "ra/ra.h"

static const char KEYS_HELP[] =
    "Usage: smki ca keys --env ENV [--config FILE]\n"
    "       smki ca keys --env ENV [--config FILE] --remove LABEL --confirm LABEL\n"
    "                    [--operator NAME --operator-key KEY]\n"
    "\n"
    "A ceremony ('smki ca init') killed after it generated a CA key and before it recorded\n"
    "the CA leaves that key on the token under the label a re-run would generate, and the\n"
    "re-run refuses to reuse it. Without --remove, list those keys: keys on ENV's token\n"
    "under the label of a CA that ENV has not made yet (the labels come from the ceremony\n"
    "configuration: --config FILE, else smki.conf). With --remove LABEL (repeated as\n"
    "--confirm LABEL) remove that key pair: only such a key, never one a CA record holds,\n"
    "and only with the token's SO PIN (SMKI_SO_PIN or --so-pin-file) as well as the user\n"
    "PIN. In a store with RA operators it is an RA action: --operator, and an audit entry\n"
    "'ca-key-remove'. Then run the ceremony again.\n"
    "\n"
    "  smki ca keys --env production --config ceremony-2026.conf\n"
    "  SMKI_SO_PIN=... smki ca keys --env production --config ceremony-2026.conf \\\n"
    "      --remove smki-prod-root --confirm smki-prod-root --operator alice\n";

typedef struct {
    smki_ca_orphan items[SMKI_CA_KIND_COUNT * 2];
    size_t n;
} list_run;

static int list_one(const smki_ca_orphan *o, void *arg)
{
    list_run *l = arg;
    if (l->n < sizeof l->items / sizeof l->items[0]) l->items[l->n++] = *o;
    return 0;
}

static void list_print(smki_cli *c, const list_run *l, const char *env)
{
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_key_arr(&w, "keys");
        for (size_t i = 0; i < l->n; i++) {
            json_arr_obj(&w);
            json_str(&w, "ca", smki_ca_kind_name(l->items[i].kind));
            json_str(&w, "token", l->items[i].token);
            json_str(&w, "label", l->items[i].label);
            json_str(&w, "uri", l->items[i].uri);
            json_close_obj(&w);
        }
        json_close_arr(&w);
        json_int(&w, "count", (long long)l->n);
        json_end(&w);
        return;
    }
    if (!l->n) {
        printf("No key of a half-made ceremony of %s is on its token: nothing blocks 'smki ca init --env %s'.\n", env,
               env);
        return;
    }
    for (size_t i = 0; i < l->n; i++)
        printf("%-12s %-24s %s\n", smki_ca_kind_name(l->items[i].kind), l->items[i].label, l->items[i].token);
}

/* The removal, through the RA's entry point: audited once the store has operators. */
static int remove_key(smki_cli *c, const char *env, const smki_conf *conf, const char *label, const char *op,
                      const char *op_key, smki_ca_orphan *out)
{
    ca_session x = {0};
    int rc = ca_session_open(c, env, 0, op, op_key, &x);
    if (rc >= 0) rc = smki_ra_ca_key_remove(x.ra, x.by, env, conf, &c->hsm, label, c->so_pin, out);
    ca_session_close(&x);
    return rc;
}

static int list_keys(smki_cli *c, const char *env, const smki_conf *conf, list_run *l)
{
    smki_store *s = NULL;
    smki_ca_db db;
    smki_store_opts so = {0, 0, 0};
    int rc = smki_store_open(c->store_dir, &so, &s);
    if (rc >= 0) rc = smki_ca_db_open(s, &db);
    if (rc >= 0) rc = smki_ca_orphan_keys(&db, env, conf, &c->hsm, list_one, l);
    smki_store_close(s);
    return rc;
}

static void print_removed(const smki_cli *c, const smki_ca_orphan *removed, const char *env)
{
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "removed", removed->label);
        json_str(&w, "token", removed->token);
        json_str(&w, "ca", smki_ca_kind_name(removed->kind));
        json_end(&w);
    } else {
        printf("Key %s (for the %s CA) removed from token %s. Next: run the ceremony again ('smki ca init --env %s').\n",
               removed->label, smki_ca_kind_name(removed->kind), removed->token, env);
    }
}

typedef struct {
    const char *env, *config, *label, *confirm, *op, *op_key;
} keys_args;

static int keys_run(smki_cli *c, const keys_args *a)
{
    smki_conf *own = NULL;
    int rc = cli_home(c);
    const smki_conf *conf = c->conf; /* loaded by cli_home */
    if (rc == 0 && ca_ceremony_conf(c, a->config, &own, &conf) < 0) rc = smki_error_wrap("ceremony configuration");
    if (rc == 0) rc = cli_pin(c, 1);
    if (rc >= 0 && a->label) rc = cli_so_pin(c, 1);
    smki_ca_orphan removed;
    list_run *l = calloc(1, sizeof *l);
    if (rc >= 0 && !l) rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    if (rc >= 0 && a->label) rc = remove_key(c, a->env, conf, a->label, a->op, a->op_key, &removed);
    else if (rc >= 0) rc = list_keys(c, a->env, conf, l);
    smki_conf_free(own);
    if (rc >= 0 && !a->label) list_print(c, l, a->env);
    if (rc >= 0 && a->label) print_removed(c, &removed, a->env);
    free(l);
    return rc < 0 ? cli_fail(c, rc) : EXIT_OK;
}

int cmd_ca_keys(smki_cli *c, int argc, char **argv)
{
    keys_args a = {0};
    const cli_opt opts[] = {CLI_VALUE("env", &a.env),         CLI_VALUE("config", &a.config),
                            CLI_VALUE("remove", &a.label),    CLI_VALUE("confirm", &a.confirm),
                            CLI_VALUE("operator", &a.op),     CLI_VALUE("operator-key", &a.op_key),
                            CLI_END};
    const cli_spec spec = {"smki ca keys", KEYS_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!a.env) return cli_usage(c, "smki ca keys", "--env is required");
    if (a.label && (!a.confirm || strcmp(a.label, a.confirm) != 0))
        return cli_usage(c, "smki ca keys", "removing a key is confirmed by naming it twice: --remove %.64s --confirm %.64s",
                         a.label, a.label);
    return keys_run(c, &a);
}
