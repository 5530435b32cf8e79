/* smki key: key pairs in the home's token. */
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static const char KEY_GENERATE_HELP[] =
    "Usage: smki key generate --label NAME --usage ds|ka [--token LABEL]\n"
    "\n"
    "Generate an EC P-256 key pair inside the token. The private key never leaves it:\n"
    "CKA_SENSITIVE true, CKA_EXTRACTABLE false, stored on the token. --usage ds makes a\n"
    "digital-signature key (CKA_SIGN), ka a key-agreement key (CKA_DERIVE); SMKI keeps the\n"
    "two apart. The key's CKA_ID is its 8-octet GBCS key identifier (the SKI its\n"
    "certificate will carry). Refuses a label that is already on the token.\n"
    "Prints the key's RFC 7512 PKCS#11 URI, which every other command accepts.\n"
    "\n"
    "Needs the user PIN (SMKI_PIN or --pin-file).\n"
    "\n"
    "Example:\n"
    "  smki key generate --label supplier-ds --usage ds\n";

static const char KEY_LIST_HELP[] =
    "Usage: smki key list [--token LABEL]\n"
    "\n"
    "List the EC key pairs on the token: label, usage, key identifier and URI.\n"
    "Needs the user PIN (private keys are private objects).\n"
    "\n"
    "Examples (in a home with a token, its user PIN in SMKI_PIN):\n"
    "  smki key generate --label meter-ka --usage ka\n"
    "  smki key list\n"
    "  smki --json key list\n";

static const char KEY_PUB_HELP[] =
    "Usage: smki key pub KEY [--out FILE] [--force]\n"
    "\n"
    "Print (or write to FILE; '-' is standard output) the public key of KEY as PEM\n"
    "SubjectPublicKeyInfo. An existing FILE is refused unless --force replaces it.\n"
    "KEY is a pkcs11: URI, file:PATH (a PEM private key), or a label on the home's token.\n"
    "A token key's public half is read from its public-key object: no PIN is needed.\n"
    "\n"
    "Examples (in a home with a token, its user PIN in SMKI_PIN):\n"
    "  smki key generate --label supplier-ds --usage ds\n"
    "  smki key pub supplier-ds --out supplier-ds.pub.pem\n"
    "  openssl pkey -pubin -in supplier-ds.pub.pem -noout -text | grep 'NIST CURVE: P-256'\n"
    "  smki key pub supplier-ds --out supplier-ds.pub.pem   # exits 2: it exists (--force)\n";

static int parse_usage(const char *s, smki_key_usage *u)
{
    if (strcmp(s, "ds") == 0) *u = SMKI_USAGE_DS;
    else if (strcmp(s, "ka") == 0) *u = SMKI_USAGE_KA;
    else return SMKI_FAIL(SMKI_E_USAGE, "--usage must be ds or ka, not '%.32s'", s);
    return 0;
}

static void print_generated(const smki_cli *c, const char *label, const char *usage_s, smki_key_usage usage,
                            const char *token, const char *uri)
{
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "label", label);
        json_str(&w, "usage", usage_s);
        json_str(&w, "uri", uri);
        json_end(&w);
    } else {
        printf("Generated EC P-256 %s key '%s' in token '%s' (not extractable).\n%s\n",
               usage == SMKI_USAGE_DS ? "digital-signature" : "key-agreement", label, token, uri);
    }
}

static int key_generate(smki_cli *c, int argc, char **argv)
{
    const char *label = NULL, *usage_s = NULL, *token = NULL;
    const cli_opt opts[] = {CLI_VALUE("label", &label), CLI_VALUE("usage", &usage_s), CLI_VALUE("token", &token),
                            CLI_END};
    const cli_spec spec = {"smki key generate", KEY_GENERATE_HELP, opts, "no arguments", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!label || !usage_s) return cli_usage(c, "smki key generate", "--label and --usage are required");
    smki_key_usage usage = SMKI_USAGE_DS;
    int rc = parse_usage(usage_s, &usage);
    if (rc == 0) rc = cli_home(c);
    if (rc == 0) rc = cli_pin(c, 1);
    char uri[SMKI_KEY_URI_MAX];
    if (!token) token = c->token;
    if (rc >= 0) rc = smki_key_generate(&c->hsm, token, label, usage, uri);
    if (rc < 0) return cli_fail(c, rc);
    print_generated(c, label, usage_s, usage, token, uri);
    return EXIT_OK;
}

static const char *usage_name(int usage)
{
    switch (usage) {
    case SMKI_USAGE_DS: return "ds";
    case SMKI_USAGE_KA: return "ka";
    case SMKI_USAGE_DS | SMKI_USAGE_KA: return "ds+ka";
    default: return "-";
    }
}

static void print_keys(const smki_cli *c, const char *token, const smki_key_info *keys, size_t n)
{
    if (c->json) {
        json_w w;
        json_list_open(c, &w, "keys");
        for (size_t i = 0; i < n; i++) {
            json_arr_obj(&w);
            json_str(&w, "label", keys[i].label);
            json_str(&w, "usage", usage_name(keys[i].usage));
            json_str(&w, "id", keys[i].id_hex);
            json_str(&w, "uri", keys[i].uri);
            json_close_obj(&w);
        }
        json_list_close(c, &w);
    } else if (n == 0) {
        printf("No keys on token '%s'. Make one with: smki key generate --label NAME --usage ds|ka\n", token);
    } else {
        printf("%-24s %-6s %-18s %s\n", "LABEL", "USAGE", "KEY ID", "URI");
        for (size_t i = 0; i < n; i++)
            printf("%-24s %-6s %-18s %s\n", keys[i].label, usage_name(keys[i].usage), keys[i].id_hex, keys[i].uri);
    }
}

static int key_list(smki_cli *c, int argc, char **argv)
{
    const char *token = NULL;
    const cli_opt opts[] = {CLI_VALUE("token", &token), CLI_END};
    const cli_spec spec = {"smki key list", KEY_LIST_HELP, opts, "no arguments", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    int rc = cli_home(c);
    if (rc == 0) rc = cli_pin(c, 1);
    smki_key_info *keys = NULL;
    size_t n = 0;
    if (!token) token = c->token;
    if (rc >= 0) rc = smki_key_list(&c->hsm, token, &keys, &n);
    if (rc < 0) return cli_fail(c, rc);
    print_keys(c, token, keys, n);
    free(keys);
    return EXIT_OK;
}

static void print_pub(const smki_cli *c, const char *ref, const char *pem, const char *out)
{
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "key", ref);
        json_str(&w, "pem", pem);
        if (out) json_str(&w, "written", out);
        json_end(&w);
    } else if (out) {
        printf("Wrote the public key of %s to %s.\n", ref, out);
    } else {
        fputs(pem, stdout);
    }
}

static int key_pub(smki_cli *c, int argc, char **argv)
{
    const char *out = NULL, *pos[1];
    int force = 0;
    const cli_opt opts[] = {CLI_VALUE("out", &out), CLI_FLAG("force", &force), CLI_END};
    const cli_spec spec = {"smki key pub", KEY_PUB_HELP, opts, "one KEY", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    /* --out -: the PEM alone on standard output, nothing else there. */
    if (out && strcmp(out, "-") == 0) out = NULL;
    EVP_PKEY *pub = NULL;
    char *pem = NULL;
    size_t len = 0;
    char ref[SMKI_KEY_URI_MAX];
    int rc = cli_key_ref(c, pos[0], ref, sizeof ref);
    if (rc == 0) rc = smki_key_public_load(ref, &c->hsm, &pub);
    if (rc == 0) rc = smki_pub_to_pem(pub, &pem, &len);
    if (rc == 0 && out) rc = cli_write(out, pem, len, 0644, force);
    if (rc == 0) print_pub(c, ref, pem, out);
    free(pem);
    EVP_PKEY_free(pub);
    return cli_finish(c, rc);
}

static const cli_cmd KEY_COMMANDS[] = {
    {"generate", key_generate, "generate an EC P-256 key pair inside the token"},
    {"list", key_list, "list the key pairs on the token"},
    {"pub", key_pub, "print a key's public key as PEM"},
    {NULL, NULL, NULL},
};

int cmd_key(smki_cli *c, int argc, char **argv)
{
    return cli_dispatch(c, KEY_COMMANDS, argc - 1, argv + 1, "smki key", "smki key: key pairs in the token.");
}
