/* smki hsm: the home's token. */
#include <string.h>

#include "commands.h"

static const char HSM_INIT_HELP[] =
    "Usage: smki hsm init [--label LABEL]\n"
    "\n"
    "Create and initialise the home's token: by default in the embedded SoftHSM 2 (its own\n"
    "softhsm2.conf and token folder under <home>/hsm), else in the PKCS#11 module of\n"
    "[hsm] module (with [hsm] init_args, e.g. NSS softokn's configdir), else\n"
    "$SMKI_PKCS11_MODULE. The label comes from --label, else hsm.token in\n"
    "<home>/smki.conf, else 'smki'. Idempotent: if the token exists it is reported and\n"
    "left alone. The module printed is the one actually loaded.\n"
    "\n"
    "PINs: the SO PIN from SMKI_SO_PIN or --so-pin-file, the user PIN from SMKI_PIN or\n"
    "--pin-file. Both are needed only when the token is created.\n"
    "\n"
    "Example (a new home: SMKI_HOME names a folder not made yet, no PINs in the environment):\n"
    "  umask 077; openssl rand -hex 8 > so.pin; openssl rand -hex 8 > user.pin\n"
    "  smki --so-pin-file so.pin --pin-file user.pin hsm init\n"
    "  smki hsm info\n";

static const char HSM_INFO_HELP[] =
    "Usage: smki hsm info\n"
    "\n"
    "Show the home's token: label, manufacturer, model, serial, whether its user PIN\n"
    "is set, and the PKCS#11 module actually loaded for it. Exit 2 if there is no token\n"
    "yet (run 'smki hsm init').\n"
    "\n"
    "Examples (in a home with a token):\n"
    "  smki hsm info\n"
    "  smki --json hsm info\n";

static void print_token(smki_cli *c, const smki_token_info *t, const char *state)
{
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "state", state);
        json_key_obj(&w, "token");
        json_str(&w, "label", t->label);
        json_str(&w, "manufacturer", t->manufacturer);
        json_str(&w, "model", t->model);
        json_str(&w, "serial", t->serial);
        json_bool(&w, "user_pin_set", t->user_pin_set);
        json_close_obj(&w);
        json_str(&w, "module", t->module);
        json_end(&w);
        return;
    }
    printf("Token '%s' %s.\n", t->label, state);
    /* No slot number: SoftHSM renumbers a slot once its token is initialised. */
    printf("  manufacturer  %s\n  model         %s\n  serial        %s\n  user PIN      %s\n", t->manufacturer, t->model, t->serial, t->user_pin_set ? "set" : "NOT SET");
    printf("  module        %s\n", t->module);
}

static int hsm_init(smki_cli *c, int argc, char **argv)
{
    const char *label = NULL;
    const cli_opt opts[] = {CLI_VALUE("label", &label), CLI_END};
    const cli_spec spec = {"smki hsm init", HSM_INIT_HELP, opts, "no arguments", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    c->may_create_home = 1; /* hsm init starts a new home; no other command makes one */
    int rc = cli_home(c);
    if (rc < 0) return cli_fail(c, rc);
    if (!label) label = c->token;
    smki_token_info info;
    int created = 0;
    if ((rc = smki_token_find(&c->hsm, label, &info)) == 0) {
        print_token(c, &info, "exists; left as it is");
        return EXIT_OK;
    }
    if (rc != SMKI_E_NOTFOUND) return cli_fail(c, rc);
    if ((rc = cli_so_pin(c, 1)) < 0 || (rc = cli_pin(c, 1)) < 0) return cli_fail(c, rc);
    rc = smki_token_init(&c->hsm, label, c->so_pin, c->pin, &created, &info);
    if (rc < 0) return cli_fail(c, rc);
    print_token(c, &info, created ? "created" : "exists; left as it is");
    return EXIT_OK;
}

static int hsm_info(smki_cli *c, int argc, char **argv)
{
    const cli_spec spec = {"smki hsm info", HSM_INFO_HELP, NULL, "no arguments", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    int rc = cli_home(c);
    smki_token_info info;
    if (rc == 0) rc = smki_token_find(&c->hsm, c->token, &info);
    if (rc < 0) return cli_fail(c, rc);
    print_token(c, &info, "found");
    return EXIT_OK;
}

static const cli_cmd HSM_COMMANDS[] = {
    {"init", hsm_init, "create and initialise the home's token (idempotent)"},
    {"info", hsm_info, "show the home's token"},
    {NULL, NULL, NULL},
};

int cmd_hsm(smki_cli *c, int argc, char **argv)
{
    return cli_dispatch(c, HSM_COMMANDS, argc - 1, argv + 1, "smki hsm", "smki hsm: the home's token.");
}
