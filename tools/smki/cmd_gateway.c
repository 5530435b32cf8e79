/* smki gbcs gateway: the DCC User Gateway's registry and administration (Users'
 * certificates, the device inventory, eligibility, thresholds); the checks, quarantine
 * and record are in cmd_gateway_check.c. smki file: detached signatures over threshold
 * files. Parsing and printing only: the work is in gateway/ (gateway.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd_gateway.h"

/* ---- Shared plumbing ------------------------------------------------------------------- */
int gw_begin(smki_cli *c, int admin, const char *op, const char *key, gw_ctx *x)
{
    memset(x, 0, sizeof *x);
    GUARD(cli_home(c));
    smki_ra_policy pol;
    GUARD(smki_ra_policy_load(c->conf, &pol));
    if (admin) {
        GUARD(ra_cli_actor(c, op, key, &x->op_key));
        x->actor = (smki_ra_actor){op ? op : getenv("SMKI_OPERATOR"), x->op_key};
    }
    smki_store_opts so = {0, 0, 0};
    GUARD(smki_store_open(c->store_dir, &so, &x->s));
    GUARD(smki_gw_dbs(x->s));
    GUARD(smki_ra_open(x->s, &pol, &x->ra));
    if (admin) ra_cli_checkpoint_key(c, x->ra);
    x->adm = (smki_gw_admin){x->ra, admin ? &x->actor : NULL};
    return 0;
}

void gw_end(gw_ctx *x)
{
    smki_ra_close(x->ra);
    smki_store_close(x->s);
    smki_key_free(x->op_key);
    memset(x, 0, sizeof *x);
}

void gw_ok_json(smki_cli *c, const char *what)
{
    if (!c->json) return;
    json_w w;
    json_begin(&w, stdout);
    json_bool(&w, "ok", 1);
    json_str(&w, "done", what);
    json_end(&w);
}

int gw_write_hex(const char *path, const uint8_t *b, size_t n, int force)
{
    char *hex = malloc(2 * n + 2);
    ENSURE(hex, SMKI_E_NOMEM, "hex");
    smki_hex_encode(b, n, hex, 1);
    hex[2 * n] = '\n';
    int rc = cli_write(path, hex, 2 * n + 1, 0644, force);
    free(hex);
    return rc;
}

int gw_out_free(const char *path, int force)
{
    struct stat st;
    if (force || strcmp(path, "-") == 0 || stat(path, &st) != 0) return 0;
    return SMKI_FAIL(SMKI_E_EXISTS, "%s exists; --force replaces it", path);
}

int gw_parse_days(const char *opt, const char *text, uint32_t *seconds)
{
    uint64_t d = 0;
    GUARD(cli_number(opt, text, 1, 10000, &d));
    *seconds = (uint32_t)(d * 86400u);
    return 0;
}

int gw_hook_from(smki_cli *c, const char *cmd, smki_gwq_hook *h)
{
    h->command = cmd ? cmd : smki_conf_get(c->conf, "gateway.quarantine_hook", NULL);
    const char *t = smki_conf_get(c->conf, "gateway.quarantine_hook_timeout", NULL);
    uint64_t v = 0;
    if (t) GUARD(cli_number("[gateway] quarantine_hook_timeout", t, 1, 3600, &v));
    h->timeout_seconds = (unsigned)v;
    return 0;
}

/* An administration action's ending: its message, or the failure. */
static int admin_done(smki_cli *c, gw_ctx *x, int rc, const char *what, const char *text)
{
    gw_end(x);
    if (rc < 0) return cli_fail(c, rc);
    if (c->json) gw_ok_json(c, what);
    else puts(text);
    return EXIT_OK;
}

/* ---- smki file sign / verify ------------------------------------------------------------ */
static const char FILE_ABOUT[] =
    "smki file: detached signatures over text files such as anomaly-threshold CSV files.\n"
    "\n"
    "The signature is ECDSA P-256 with SHA-256 over the file's CANONICAL bytes: every\n"
    "CRLF and every lone CR counts as LF, so a file edited on another platform still\n"
    "verifies. The signature file is binary DER (ECDSA-Sig-Value), the form openssl writes:\n"
    "for a file with LF line ends, 'openssl dgst -sha256 -verify PUB.pem -signature SIG FILE'\n"
    "checks it too.";

static const char FILE_SIGN_HELP[] =
    "Usage: smki file sign --key KEY --in FILE --out SIG [--force]\n"
    "\n"
    "Sign FILE's canonical bytes (CRLF and CR -> LF) with KEY: a pkcs11: URI, a label on\n"
    "the home's token (needs the user PIN: SMKI_PIN or --pin-file) or file:PATH (PEM).\n"
    "SIG receives the binary DER signature ('-': standard output); an existing SIG is\n"
    "refused unless --force. FILE '-' is standard input.\n"
    "\n"
    "Example (in a home with a token, its user PIN in SMKI_PIN; a User's thresholds file\n"
    "for 'smki gbcs gateway thresholds load'):\n"
    "  smki key generate --label supplier-ds --usage ds\n"
    "  printf 'user,message_code,window_seconds,max_count\\n90B3D51F30010000,0019,3600,3\\n' > thresholds.csv\n"
    "  smki file sign --key supplier-ds --in thresholds.csv --out thresholds.csv.sig\n"
    "  smki key pub supplier-ds --out supplier-ds.pub\n"
    "  smki file verify --pub supplier-ds.pub --in thresholds.csv --sig thresholds.csv.sig\n"
    "  openssl dgst -sha256 -verify supplier-ds.pub -signature thresholds.csv.sig thresholds.csv\n";

static const char FILE_VERIFY_HELP[] =
    "Usage: smki file verify (--cert CERT | --pub PUB) --in FILE --sig SIG\n"
    "\n"
    "Verify SIG (binary DER ECDSA) over FILE's canonical bytes (CRLF and CR -> LF) with the\n"
    "key of CERT (PEM or DER certificate) or PUB (PEM or DER public key).\n"
    "Exit 0 when it verifies, 2 when it does not.\n";

static int file_sign(smki_cli *c, int argc, char **argv)
{
    const char *key = NULL, *in = NULL, *out = NULL;
    int force = 0;
    const cli_opt opts[] = {CLI_VALUE("key", &key), CLI_VALUE("in", &in), CLI_VALUE("out", &out),
                            CLI_FLAG("force", &force), CLI_END};
    const cli_spec spec = {"smki file sign", FILE_SIGN_HELP, opts, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!key || !in || !out) return cli_usage(c, spec.prog, "--key, --in and --out are required");
    uint8_t *data = NULL, sig[SMKI_SIG_MAX];
    size_t len = 0, sig_len = sizeof sig;
    smki_key *k = NULL;
    int rc = cli_read(in, SMKI_SIGNED_FILE_MAX, &data, &len);
    if (rc == 0) rc = cli_open_key(c, key, &k);
    if (rc == 0) rc = smki_signed_file_sign(k, data, len, sig, &sig_len);
    if (rc == 0) rc = cli_write(out, sig, sig_len, 0644, force);
    if (rc == 0 && c->json && strcmp(out, "-") != 0) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "in", in);
        json_str(&w, "out", out);
        json_str(&w, "key", smki_key_ref(k));
        json_str(&w, "format", "der");
        json_end(&w);
    } else if (rc == 0 && strcmp(out, "-") != 0) {
        printf("Signed %s (canonical line ends) with %s: DER signature in %s.\n", in, smki_key_ref(k), out);
    }
    smki_key_free(k);
    free(data);
    return cli_finish(c, rc);
}

static int file_verify(smki_cli *c, int argc, char **argv)
{
    const char *cert = NULL, *pub = NULL, *in = NULL, *sigf = NULL;
    const cli_opt opts[] = {CLI_VALUE("cert", &cert), CLI_VALUE("pub", &pub), CLI_VALUE("in", &in),
                            CLI_VALUE("sig", &sigf), CLI_END};
    const cli_spec spec = {"smki file verify", FILE_VERIFY_HELP, opts, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!in || !sigf) return cli_usage(c, spec.prog, "--in and --sig are required");
    if (!cert == !pub) return cli_usage(c, spec.prog, "give exactly one of --cert or --pub");
    uint8_t *data = NULL, *sig = NULL;
    size_t len = 0, sig_len = 0;
    EVP_PKEY *k = NULL;
    int rc = smki_pub_load_file(cert ? cert : pub, &k);
    if (rc == 0) rc = cli_read(in, SMKI_SIGNED_FILE_MAX, &data, &len);
    if (rc == 0) rc = smki_file_read(sigf, 1024, &sig, &sig_len);
    if (rc == 0) rc = smki_signed_file_verify(k, data, len, sig, sig_len);
    if (rc == SMKI_E_VERIFY) {
        smki_error_clear();
        rc = SMKI_FAIL(SMKI_E_VERIFY, "NOT verified: the signature in %s does not match %s under the key in %s",
                       sigf, in, cert ? cert : pub);
    }
    if (rc == 0 && c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_bool(&w, "verified", 1);
        json_str(&w, "in", in);
        json_end(&w);
    } else if (rc == 0) {
        printf("Verified: %s is signed by the key in %s.\n", in, cert ? cert : pub);
    }
    EVP_PKEY_free(k);
    free(data);
    free(sig);
    return cli_finish(c, rc);
}

int cmd_file(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd table[] = {
        {"sign", file_sign, "detached DER signature over a file's canonical bytes"},
        {"verify", file_verify, "verify such a signature with a certificate or public key"},
        {NULL, NULL, NULL},
    };
    return cli_dispatch(c, table, argc - 1, argv + 1, "smki file", FILE_ABOUT);
}

/* ---- user ------------------------------------------------------------------------------ */
static const char USER_ABOUT[] =
    "smki gbcs gateway user: the DS certificates the gateway verifies Users' signatures with.\n"
    "\n"
    "The Users themselves are the RA's: a User ID, its Party, its User Roles and its\n"
    "suspension (or its Party's) come from the RA's registry at every check ('smki ra id\n"
    "allocate', 'smki ra id suspend', 'smki ra id set-roles', 'smki ra party suspend').\n"
    "The gateway keeps, per User ID, only its DS certificate and Remote Party Role.";

static const char USER_ADD_HELP[] =
    "Usage: smki gbcs gateway user add --eui EUI64 --role ROLE --cert CERT\n"
    "           [--operator NAME --operator-key KEY]\n"
    "\n"
    "Register the DS certificate (PEM or DER) of a User ID of the RA's registry for its\n"
    "Remote Party Role (02 supplier, 03 networkOperator, 04 accessControlBroker, ... or the\n"
    "name). Refused: an ID the RA does not know, a role its User Roles do not allow, a\n"
    "certificate whose x500UniqueIdentifier is not the ID, an ID that has one already.\n"
    GW_OPERATOR_HELP
    "\n"
    "Example (" HELP_TEST_HOME "; from a clone beside ../shared: the RTDS\n"
    "supplier's certificate, its User ID allocated with 'smki ra id allocate --roles EIS'):\n"
    "  smki gbcs gateway user add --eui 90-B3-D5-1F-30-01-00-00 --role supplier \\\n"
    "      --cert ../shared/vectors/gbcs/keystore/90b3d51f30010000-ds.pem --operator tester\n";

static const char USER_LIST_HELP[] =
    "Usage: smki gbcs gateway user list\n"
    "\n"
    "Every User ID with a registered certificate, with the RA's word on it: its Party,\n"
    "User Roles and whether it (or its Party) is suspended.\n";

static int print_user(const smki_gw_user *u, void *arg)
{
    json_w *w = arg;
    char e[SMKI_EUI64_TEXT_MAX], r[SMKI_ROLE_TEXT_MAX];
    smki_eui64_format(&u->id, SMKI_EUI64_HYPHEN, e);
    smki_role_format(u->role, r);
    if (!w) {
        printf("%s  %s %-20s %-9s %-12s %s\n", e, r, smki_role_name(u->role),
               !u->ra_known ? "UNKNOWN" : u->suspended ? "SUSPENDED" : "active", u->ra_known ? u->party : "-",
               u->user_roles[0] ? u->user_roles : "-");
        return 0;
    }
    json_arr_obj(w);
    json_str(w, "eui64", e);
    json_str(w, "role", r);
    json_str(w, "role_name", smki_role_name(u->role));
    json_bool(w, "ra_known", u->ra_known);
    json_str(w, "party", u->party);
    json_bool(w, "suspended", u->suspended);
    if (u->suspended) json_str(w, "suspend_reason", u->suspend_reason);
    json_str(w, "user_roles", u->user_roles);
    json_close_obj(w);
    return 0;
}

static int user_add(smki_cli *c, int argc, char **argv)
{
    const char *eui = NULL, *role = NULL, *cert = NULL, *op = NULL, *key = NULL;
    const cli_opt opts[] = {CLI_VALUE("eui", &eui), CLI_VALUE("role", &role), CLI_VALUE("cert", &cert),
                            GW_OPERATOR_OPTS(&op, &key), CLI_END};
    const cli_spec spec = {"smki gbcs gateway user add", USER_ADD_HELP, opts, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!eui || !role || !cert) return cli_usage(c, spec.prog, "--eui, --role and --cert are required");
    smki_eui64_t id;
    uint8_t rcode = 0, *data = NULL;
    size_t len = 0;
    gw_ctx x;
    memset(&x, 0, sizeof x);
    int rc = smki_eui64_parse(eui, &id);
    if (rc == 0) rc = smki_role_parse(role, &rcode);
    if (rc == 0) rc = smki_file_read(cert, 1u << 16, &data, &len);
    if (rc == 0) rc = gw_begin(c, 1, op, key, &x);
    if (rc == 0) rc = smki_gw_user_add(&x.adm, &id, rcode, data, len);
    free(data);
    char msg[160];
    snprintf(msg, sizeof msg, "User %s: DS certificate registered for %s.", eui, smki_role_name(rcode));
    return admin_done(c, &x, rc, "add", msg);
}

static int user_list(smki_cli *c, int argc, char **argv)
{
    const cli_spec spec = {"smki gbcs gateway user list", USER_LIST_HELP, NULL, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    gw_ctx x;
    int rc = gw_begin(c, 0, NULL, NULL, &x);
    json_w w;
    if (rc == 0) {
        json_list_open(c, &w, "users");
        rc = smki_gw_user_list(x.ra, print_user, c->json ? &w : NULL);
        if (rc == 0) json_list_close(c, &w);
    }
    gw_end(&x);
    return cli_finish(c, rc);
}

static int gw_user(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd table[] = {
        {"add", user_add, "register a User's DS certificate (the User is the RA's)"},
        {"list", user_list, "the registered certificates, with the RA's word on each User"},
        {NULL, NULL, NULL},
    };
    return cli_dispatch(c, table, argc - 1, argv + 1, "smki gbcs gateway user", USER_ABOUT);
}

/* ---- device ------------------------------------------------------------------------------ */
static const char DEVICE_ABOUT[] =
    "smki gbcs gateway device: the Smart Metering Inventory as the gateway sees it.\n"
    "\n"
    "STATUS: pending, installed, commissioned, suspended, decommissioned. Commands are\n"
    "allowed to installed and commissioned devices only (others: device.status).";

static const char DEVICE_ADD_HELP[] =
    "Usage: smki gbcs gateway device add --eui EUI64 --status STATUS [--ka-cert CERT]\n"
    "           [--operator NAME --operator-key KEY]\n"
    "\n"
    "Add a device to the inventory. --ka-cert is its key-agreement certificate (or public\n"
    "key): the ACB MACs commands to it with it, and its policy OID is its environment.\n"
    GW_OPERATOR_HELP
    "\n"
    "Example (" HELP_TEST_HOME "; from a clone beside ../shared: the RTDS\n"
    "electricity meter's KA certificate):\n"
    "  smki gbcs gateway device add --eui 00-DB-12-34-56-78-90-A0 --status commissioned \\\n"
    "      --ka-cert ../shared/vectors/gbcs/keystore/00db1234567890a0-ka.pem --operator tester\n";

static const char DEVICE_STATUS_HELP[] =
    "Usage: smki gbcs gateway device set-status --eui EUI64 --status STATUS\n"
    "           [--operator NAME --operator-key KEY]\n"
    "\n"
    "Change a device's status (pending, installed, commissioned, suspended, decommissioned).\n"
    GW_OPERATOR_HELP;

static const char DEVICE_LIST_HELP[] = "Usage: smki gbcs gateway device list\n\nThe inventory.\n";

static int print_device(const smki_gw_device *d, void *arg)
{
    json_w *w = arg;
    char e[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(&d->id, SMKI_EUI64_HYPHEN, e);
    if (w) {
        json_arr_obj(w);
        json_str(w, "eui64", e);
        json_str(w, "status", smki_dev_status_name(d->status));
        json_bool(w, "commands_allowed", smki_dev_status_allows_commands(d->status));
        json_bool(w, "has_ka_key", d->ka_len > 0);
        json_int(w, "next_invocation_counter", d->invocation);
        json_close_obj(w);
    } else {
        printf("%s  %-14s %s  ic=%u%s\n", e, smki_dev_status_name(d->status),
               smki_dev_status_allows_commands(d->status) ? "commands" : "no-commands", d->invocation,
               d->ka_len ? "" : "  (no KA key)");
    }
    return 0;
}

/* add (with --ka-cert) and set-status: the same options, one library call each. */
static int device_change(smki_cli *c, int argc, char **argv, int add)
{
    const char *eui = NULL, *status = NULL, *ka = NULL, *op = NULL, *key = NULL;
    const cli_opt opts[] = {CLI_VALUE("eui", &eui), CLI_VALUE("status", &status), CLI_VALUE("ka-cert", &ka),
                            GW_OPERATOR_OPTS(&op, &key), CLI_END};
    const cli_opt status_opts[] = {CLI_VALUE("eui", &eui), CLI_VALUE("status", &status),
                                   GW_OPERATOR_OPTS(&op, &key), CLI_END};
    const cli_spec spec = {add ? "smki gbcs gateway device add" : "smki gbcs gateway device set-status",
                           add ? DEVICE_ADD_HELP : DEVICE_STATUS_HELP, add ? opts : status_opts, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!eui || !status) return cli_usage(c, spec.prog, "--eui and --status are required");
    smki_eui64_t id;
    int st = 0;
    uint8_t *data = NULL;
    size_t len = 0;
    gw_ctx x;
    memset(&x, 0, sizeof x);
    int rc = smki_eui64_parse(eui, &id);
    if (rc == 0) rc = smki_dev_status_parse(status, &st);
    if (rc == 0 && ka) rc = smki_file_read(ka, 1u << 16, &data, &len);
    if (rc == 0) rc = gw_begin(c, 1, op, key, &x);
    if (rc == 0 && add) rc = smki_gw_device_add(&x.adm, &id, st, data, len);
    if (rc == 0 && !add) rc = smki_gw_device_set_status(&x.adm, &id, st);
    free(data);
    char msg[160];
    snprintf(msg, sizeof msg, add ? "Device %s added, %s." : "Device %s is now %s.", eui, status);
    return admin_done(c, &x, rc, add ? "add" : "set-status", msg);
}

static int device_add(smki_cli *c, int argc, char **argv)
{
    return device_change(c, argc, argv, 1);
}

static int device_set_status(smki_cli *c, int argc, char **argv)
{
    return device_change(c, argc, argv, 0);
}

static int device_list(smki_cli *c, int argc, char **argv)
{
    const cli_spec spec = {"smki gbcs gateway device list", DEVICE_LIST_HELP, NULL, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    gw_ctx x;
    int rc = gw_begin(c, 0, NULL, NULL, &x);
    json_w w;
    if (rc == 0) {
        json_list_open(c, &w, "devices");
        rc = smki_gw_device_list(x.s, print_device, c->json ? &w : NULL);
        if (rc == 0) json_list_close(c, &w);
    }
    gw_end(&x);
    return cli_finish(c, rc);
}

static int gw_device(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd table[] = {
        {"add", device_add, "add a device (status, KA certificate)"},
        {"set-status", device_set_status, "change a device's status"},
        {"list", device_list, "the inventory"},
        {NULL, NULL, NULL},
    };
    return cli_dispatch(c, table, argc - 1, argv + 1, "smki gbcs gateway device", DEVICE_ABOUT);
}

/* ---- eligibility ---------------------------------------------------------------------------- */
static const char ELIG_ABOUT[] =
    "smki gbcs gateway eligibility: which message codes a sender may send.\n"
    "\n"
    "By Remote Party Role ('list', 'add', 'remove'): smki ships a default holding the codes\n"
    "the RTDS shows each role sending; the first add or remove copies it into the store,\n"
    "which from then on holds the whole table. By User Role per Service Reference Variant\n"
    "('load', 'srv'): once a table is loaded, a command passes only when one of its\n"
    "sender's User Roles in the RA's registry is listed for a Service Reference Variant\n"
    "with its message code (user.not-eligible otherwise).";

static const char ELIG_SET_HELP[] =
    "Usage: smki gbcs gateway eligibility add|remove --role ROLE --code XXXX\n"
    "           [--operator NAME --operator-key KEY]\n"
    "\n"
    "Let a Remote Party Role send a message code (4 hex digits, e.g. 0019 for ECS01a), or\n"
    "no longer.\n" GW_OPERATOR_HELP;

static const char ELIG_LOAD_HELP[] =
    "Usage: smki gbcs gateway eligibility load --in FILE [--operator NAME --operator-key KEY]\n"
    "\n"
    "FILE ('-': standard input) is the DCC's Service Request eligibility as CSV,\n"
    "'srv,use_case,message_code,user_roles', e.g.\n"
    "  1.1.1,ECS01a,0019,EIS\n"
    "  1.1.1,GCS01a,006B,GIS\n"
    "  6.15.1,CS02b,0102,EIS EES GIS\n"
    "(User Roles separated by blanks: EIS, EES, GIS, ENO, GNO, OU and DCC, as the RA's\n"
    "registry binds them to User IDs: 'smki ra id allocate --roles', 'smki ra id set-roles').\n"
    "An empty FILE removes the table.\n" GW_OPERATOR_HELP;

static const char ELIG_LIST_HELP[] =
    "Usage: smki gbcs gateway eligibility list\n"
    "       smki gbcs gateway eligibility srv\n"
    "\n"
    "list: the Remote Party Role table; srv: the Service Request table in force.\n";

static int parse_code(const char *t, uint16_t *code)
{
    size_t n = strlen(t);
    ENSURE(n == 4 && strspn(t, "0123456789abcdefABCDEF") == 4, SMKI_E_USAGE,
           "message code '%s' is not 4 hex digits (e.g. 0019)", t);
    *code = (uint16_t)strtoul(t, NULL, 16);
    return 0;
}

static int elig_set(smki_cli *c, int argc, char **argv)
{
    int add = strcmp(argv[0], "add") == 0;
    const char *role = NULL, *code = NULL, *op = NULL, *key = NULL;
    const cli_opt opts[] = {CLI_VALUE("role", &role), CLI_VALUE("code", &code), GW_OPERATOR_OPTS(&op, &key), CLI_END};
    const cli_spec spec = {add ? "smki gbcs gateway eligibility add" : "smki gbcs gateway eligibility remove",
                           ELIG_SET_HELP, opts, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!role || !code) return cli_usage(c, spec.prog, "--role and --code are required");
    uint8_t r = 0;
    uint16_t cd = 0;
    gw_ctx x;
    memset(&x, 0, sizeof x);
    int rc = smki_role_parse(role, &r);
    if (rc == 0) rc = parse_code(code, &cd);
    if (rc == 0) rc = gw_begin(c, 1, op, key, &x);
    if (rc == 0) rc = smki_gw_elig_set(&x.adm, r, cd, add);
    char msg[160];
    snprintf(msg, sizeof msg, "Role %s %s message code %04X.", smki_role_name(r),
             add ? "may send" : "may no longer send", cd);
    return admin_done(c, &x, rc, argv[0], msg);
}

static int elig_load(smki_cli *c, int argc, char **argv)
{
    const char *in = NULL, *op = NULL, *key = NULL;
    const cli_opt opts[] = {CLI_VALUE("in", &in), GW_OPERATOR_OPTS(&op, &key), CLI_END};
    const cli_spec spec = {"smki gbcs gateway eligibility load", ELIG_LOAD_HELP, opts, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!in) return cli_usage(c, spec.prog, "--in FILE is required (srv,use_case,message_code,user_roles)");
    uint8_t *data = NULL;
    size_t len = 0, rows = 0;
    gw_ctx x;
    memset(&x, 0, sizeof x);
    int rc = cli_read(in, 1u << 20, &data, &len);
    if (rc == 0) rc = gw_begin(c, 1, op, key, &x);
    if (rc == 0) rc = smki_gw_srv_load(&x.adm, data, len, &rows);
    free(data);
    gw_end(&x);
    if (rc < 0) return cli_fail(c, rc);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_int(&w, "rows", (long long)rows);
        json_end(&w);
    } else {
        printf(rows ? "Loaded %zu Service Request eligibility row(s): User Roles now decide eligibility.\n"
                    : "Eligibility table removed (%zu rows): the Remote Party Role table decides again.\n",
               rows);
    }
    return EXIT_OK;
}

static void print_srv_row(smki_cli *c, json_w *w, const smki_srv_table *t, size_t i)
{
    char roles[SMKI_SRV_MAX_ROLE_NAMES * 10] = "", cd[8];
    size_t ro = 0;
    for (size_t k = 0; k < t->nroles; k++)
        if (t->rows[i].roles & (1u << k))
            ro += (size_t)snprintf(roles + ro, sizeof roles - ro, "%s%s", ro ? " " : "", t->role_names[k]);
    snprintf(cd, sizeof cd, "%04X", t->rows[i].code);
    if (!c->json) {
        printf("%s,%s,%s,%s\n", t->rows[i].srv, t->rows[i].use_case, cd, roles);
        return;
    }
    json_arr_obj(w);
    json_str(w, "srv", t->rows[i].srv);
    json_str(w, "use_case", t->rows[i].use_case);
    json_str(w, "message_code", cd);
    json_str(w, "user_roles", roles);
    json_close_obj(w);
}

static void print_elig_row(smki_cli *c, json_w *w, const smki_gw_elig *row)
{
    char r[SMKI_ROLE_TEXT_MAX], cd[8];
    smki_role_format(row->role, r);
    snprintf(cd, sizeof cd, "%04X", row->code);
    if (!c->json) {
        printf("  %s %-18s %s %s\n", r, smki_role_name(row->role), cd, row->name);
        return;
    }
    json_arr_obj(w);
    json_str(w, "role", r);
    json_str(w, "role_name", smki_role_name(row->role));
    json_str(w, "message_code", cd);
    json_str(w, "name", row->name);
    json_close_obj(w);
}

/* list (the Remote Party Role table) and srv (the Service Request table). */
static int elig_show(smki_cli *c, int argc, char **argv)
{
    int srv = strcmp(argv[0], "srv") == 0;
    const cli_spec spec = {srv ? "smki gbcs gateway eligibility srv" : "smki gbcs gateway eligibility list",
                           ELIG_LIST_HELP, NULL, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    gw_ctx x;
    smki_srv_table t = {0};
    smki_gw_elig *rows = NULL;
    size_t n = 0;
    int def = 0, rc = gw_begin(c, 0, NULL, NULL, &x);
    if (rc == 0 && srv) rc = smki_gw_srv_get(x.s, &t);
    if (rc == 0 && !srv) rc = smki_gw_elig_list(x.s, &rows, &n, &def);
    gw_end(&x);
    if (rc < 0) return cli_fail(c, rc);
    json_w w;
    if (c->json) {
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_bool(&w, srv ? "loaded" : "default", srv ? t.count > 0 : def);
        json_key_arr(&w, "rows");
    } else if (srv && !t.count) {
        printf("No Service Request eligibility table: the Remote Party Role table applies.\n");
    } else if (!srv) {
        printf("%s table:\n", def ? "Built-in default" : "Configured");
    }
    for (size_t i = 0; srv && i < t.count; i++) print_srv_row(c, &w, &t, i);
    for (size_t i = 0; !srv && i < n; i++) print_elig_row(c, &w, &rows[i]);
    if (c->json) {
        json_close_arr(&w);
        json_end(&w);
    }
    smki_srv_table_free(&t);
    free(rows);
    return EXIT_OK;
}

static int gw_elig(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd table[] = {
        {"list", elig_show, "the Remote Party Role table"},
        {"add", elig_set, "let a Remote Party Role send a message code"},
        {"remove", elig_set, "no longer"},
        {"load", elig_load, "load the Service Request eligibility table (CSV)"},
        {"srv", elig_show, "the Service Request table in force"},
        {NULL, NULL, NULL},
    };
    return cli_dispatch(c, table, argc - 1, argv + 1, "smki gbcs gateway eligibility", ELIG_ABOUT);
}

/* ---- thresholds ---------------------------------------------------------------------------- */
static const char THRESH_ABOUT[] =
    "smki gbcs gateway thresholds: a User's anomaly thresholds, from signed CSV files.\n"
    "\n"
    "CSV format, one rule a line (a header line 'user,message_code,window_seconds,max_count'\n"
    "with or without ',kind', and '#' comments allowed):\n"
    "  90-B3-D5-1F-30-01-00-00,0019,3600,50     at most 50 ECS01a commands an hour\n"
    "  90B3D51F30010000,*,86400,1000            at most 1000 commands a day, all codes\n"
    "  90B3D51F30010000,*,3600,500,response     at most 500 responses to the User an hour\n"
    "  90B3D51F30010000,00CB,3600,20,alert      at most 20 alerts 00CB to the User an hour\n"
    "kind (default command): commands the User sends, or responses / alerts addressed to it.\n"
    "The message after the limit is QUARANTINED (threshold.exceeded), not dropped.";

static const char THRESH_LOAD_HELP[] =
    "Usage: smki gbcs gateway thresholds load --eui EUI64 --in CSV --sig SIG\n"
    "           [--operator NAME --operator-key KEY]\n"
    "\n"
    "Load a User's thresholds, submitted as a signed CSV file (smki file sign). The\n"
    "signature must verify against the User's registered DS certificate, or, when the\n"
    "home's smki.conf sets [gateway] threshold_signer = CERT, against that certificate\n"
    "(which may then set any User's rules). Anything else is refused and nothing changes.\n"
    "Errors name the line and column. CSV '-' is standard input.\n" GW_OPERATOR_HELP;

static const char THRESH_SHOW_HELP[] = "Usage: smki gbcs gateway thresholds show --eui EUI64\n\nThe rules in force.\n";

static int thresh_load(smki_cli *c, int argc, char **argv)
{
    const char *eui = NULL, *in = NULL, *sigf = NULL, *op = NULL, *key = NULL;
    const cli_opt opts[] = {CLI_VALUE("eui", &eui), CLI_VALUE("in", &in), CLI_VALUE("sig", &sigf),
                            GW_OPERATOR_OPTS(&op, &key), CLI_END};
    const cli_spec spec = {"smki gbcs gateway thresholds load", THRESH_LOAD_HELP, opts, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!eui || !in || !sigf) return cli_usage(c, spec.prog, "--eui, --in and --sig are required");
    smki_eui64_t id;
    uint8_t *csv = NULL, *sig = NULL;
    size_t csv_len = 0, sig_len = 0, n = 0;
    EVP_PKEY *signer = NULL;
    gw_ctx x;
    memset(&x, 0, sizeof x);
    int rc = smki_eui64_parse(eui, &id);
    if (rc == 0) rc = cli_home(c);
    const char *sc = rc == 0 ? smki_conf_get(c->conf, "gateway.threshold_signer", NULL) : NULL;
    if (rc == 0 && sc) rc = smki_pub_load_file(sc, &signer);
    if (rc == 0) rc = cli_read(in, SMKI_SIGNED_FILE_MAX, &csv, &csv_len);
    if (rc == 0) rc = smki_file_read(sigf, 1024, &sig, &sig_len);
    if (rc == 0) rc = gw_begin(c, 1, op, key, &x);
    if (rc == 0) rc = smki_gw_thresholds_load(&x.adm, &id, csv, csv_len, sig, sig_len, signer, &n);
    free(csv);
    free(sig);
    EVP_PKEY_free(signer);
    gw_end(&x);
    if (rc < 0) return cli_fail(c, rc);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_int(&w, "rules", (long long)n);
        json_end(&w);
    } else {
        printf("Loaded %zu threshold rule(s) for %s (signature verified against %s).\n", n, eui,
               sc ? "the configured signer" : "the user's DS certificate");
    }
    return EXIT_OK;
}

static void print_rule(smki_cli *c, json_w *w, const char *eui, const smki_threshold *r)
{
    char cd[12];
    if (r->code == SMKI_CODE_ANY) snprintf(cd, sizeof cd, "*");
    else snprintf(cd, sizeof cd, "%04X", r->code);
    if (!c->json) {
        printf("%s,%s,%u,%u,%s\n", eui, cd, r->window, r->max_count, smki_gbcs_cra_name(r->kind));
        return;
    }
    json_arr_obj(w);
    json_str(w, "message_code", cd);
    json_int(w, "window_seconds", r->window);
    json_int(w, "max_count", r->max_count);
    json_str(w, "kind", smki_gbcs_cra_name(r->kind));
    json_close_obj(w);
}

static int thresh_show(smki_cli *c, int argc, char **argv)
{
    const char *eui = NULL;
    const cli_opt opts[] = {CLI_VALUE("eui", &eui), CLI_END};
    const cli_spec spec = {"smki gbcs gateway thresholds show", THRESH_SHOW_HELP, opts, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!eui) return cli_usage(c, spec.prog, "--eui is required");
    smki_eui64_t id;
    smki_thresholds th = {0, NULL};
    gw_ctx x;
    memset(&x, 0, sizeof x);
    int rc = smki_eui64_parse(eui, &id);
    if (rc == 0) rc = gw_begin(c, 0, NULL, NULL, &x);
    if (rc == 0) rc = smki_gw_thresholds_get(x.s, &id, &th);
    gw_end(&x);
    if (rc < 0) return cli_fail(c, rc);
    json_w w;
    if (c->json) {
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_key_arr(&w, "rules");
    }
    for (size_t i = 0; i < th.count; i++) print_rule(c, &w, eui, &th.rules[i]);
    if (c->json) {
        json_close_arr(&w);
        json_end(&w);
    }
    smki_thresholds_free(&th);
    return EXIT_OK;
}

static int gw_thresholds(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd table[] = {
        {"load", thresh_load, "load a User's rules from a signed CSV file"},
        {"show", thresh_show, "the rules in force for a User"},
        {NULL, NULL, NULL},
    };
    return cli_dispatch(c, table, argc - 1, argv + 1, "smki gbcs gateway thresholds", THRESH_ABOUT);
}

/* ---- smki gbcs gateway ------------------------------------------------------------------------ */
static const char GW_ABOUT[] =
    "smki gbcs gateway: the DCC User Gateway's checks on signed pre-commands (reference §7),\n"
    "and on responses and alerts, and what they read: the RA's Users (their DS certificates\n"
    "registered here), message-code eligibility, the device inventory, the last counter per\n"
    "originator, anomaly thresholds (signed CSV files) and the quarantine. A command that\n"
    "passes is MACed by the ACB. Every administration action is an RA operator's, in the\n"
    "audit trail.\n"
    "\n"
    "A first run: smki ra id allocate, user add, device add, (thresholds load), then check.";

int cmd_gbcs_gateway(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd table[] = {
        {"check", gw_check, "run the checks on signed pre-commands; MAC those that pass"},
        {"user", gw_user, "Users' DS certificates (the Users are the RA's): add, list"},
        {"device", gw_device, "the device inventory: add, list, set-status"},
        {"eligibility", gw_elig, "message codes per role: list, add, remove, load, srv"},
        {"thresholds", gw_thresholds, "anomaly thresholds from signed CSV files: load, show"},
        {"quarantine", gw_quarantine, "held messages: list, show, release, reject, notify, stats"},
        {"log", gw_log, "the record of checked messages: list, archive (signed, then pruned), verify"},
        {NULL, NULL, NULL},
    };
    return cli_dispatch(c, table, argc - 1, argv + 1, "smki gbcs gateway", GW_ABOUT);
}
