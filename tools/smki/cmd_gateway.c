/* smki gbcs gateway: the DCC User Gateway's checks on signed pre-commands (reference §7)
 * and the registry they read; smki file: detached signatures over threshold files.
 * Argument parsing and output only: the work is in gbcs/ (gbcs.h, the gateway section). */
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "gbcs/gbcs.h"
#include "ra/ra.h"

/* ---- Options: a small table-driven parser for the many subcommands here ---------------- */
typedef struct {
    const char *name;
    int has_arg;
    const char **val; /* has_arg */
    int *flag;        /* !has_arg */
} opt_t;

static int parse_opts(smki_cli *c, int argc, char **argv, const opt_t *opts, const char *prog, int *first_pos)
{
    struct option lo[24];
    size_t n = 0;
    for (; opts[n].name; n++) lo[n] = (struct option){opts[n].name, opts[n].has_arg ? 1 : 0, NULL, (int)n + 1};
    lo[n] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (ch < 1 || ch > (int)n) return cli_usage(c, prog, "bad option %s", cli_bad_option(argv));
        const opt_t *o = &opts[ch - 1];
        if (o->has_arg)
            *o->val = optarg;
        else
            *o->flag = 1;
    }
    if (first_pos)
        *first_pos = optind;
    else if (optind != argc)
        return cli_usage(c, prog, "unexpected argument '%s'", argv[optind]);
    return -1;
}

/* A verb-list command (user, device, eligibility, ...): no verb prints the help and is a usage
 * error, --help prints it and succeeds. Returns the exit code then, -1 when a verb is to run. */
static int verb_help(int argc, char **argv, const char *help)
{
    if (argc >= 2 && !cli_wants_help(argc, argv, help)) return -1;
    if (argc < 2) fputs(help, stdout);
    return argc < 2 ? EXIT_USAGE : EXIT_OK;
}

static int open_store(smki_cli *c, smki_store **s)
{
    GUARD(cli_home(c));
    smki_store_opts o = {0, 0, 0};
    GUARD(smki_store_open(c->store_dir, &o, s));
    int rc = smki_gw_dbs(*s);
    if (rc < 0) {
        smki_store_close(*s);
        *s = NULL;
    }
    return rc;
}

static int need(smki_cli *c, const char *prog, const char *v, const char *name)
{
    if (v) return -1;
    return cli_usage(c, prog, "%s is required", name);
}

static void ok_json(smki_cli *c, const char *what)
{
    if (!c->json) return;
    json_w w;
    json_begin(&w, stdout);
    json_bool(&w, "ok", 1);
    json_str(&w, "done", what);
    json_end(&w);
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
    "Usage: smki file sign --key KEY --in FILE --out SIG\n"
    "\n"
    "Sign FILE's canonical bytes (CRLF and CR -> LF) with KEY: a pkcs11: URI, a label on\n"
    "the home's token (needs the user PIN: SMKI_PIN or --pin-file) or file:PATH (PEM).\n"
    "SIG receives the binary DER signature.\n"
    "\n"
    "Example:\n"
    "  smki file sign --key supplier-ds --in thresholds.csv --out thresholds.csv.sig\n";

static const char FILE_VERIFY_HELP[] =
    "Usage: smki file verify (--cert CERT | --pub PUB) --in FILE --sig SIG\n"
    "\n"
    "Verify SIG (binary DER ECDSA) over FILE's canonical bytes (CRLF and CR -> LF) with the\n"
    "key of CERT (PEM or DER certificate) or PUB (PEM or DER public key).\n"
    "Exit 0 when it verifies, 2 when it does not.\n";

static int file_sign(smki_cli *c, int argc, char **argv)
{
    const char *prog = "smki file sign";
    if (cli_wants_help(argc, argv, FILE_SIGN_HELP)) return EXIT_OK;
    const char *key = NULL, *in = NULL, *out = NULL;
    opt_t o[] = {{"key", 1, &key, NULL}, {"in", 1, &in, NULL}, {"out", 1, &out, NULL}, {NULL, 0, NULL, NULL}};
    int e = parse_opts(c, argc, argv, o, prog, NULL);
    if (e >= 0) return e;
    if (!key || !in || !out) return cli_usage(c, prog, "--key, --in and --out are required");
    uint8_t *data = NULL, sig[SMKI_SIG_MAX];
    size_t len = 0, sig_len = sizeof sig;
    smki_key *k = NULL;
    int rc = smki_file_read(in, SMKI_SIGNED_FILE_MAX, &data, &len);
    if (rc == 0) rc = cli_open_key(c, key, &k);
    if (rc == 0) rc = smki_signed_file_sign(k, data, len, sig, &sig_len);
    if (rc == 0) rc = smki_file_write_atomic(out, sig, sig_len, 0644, 0);
    if (rc == 0) {
        if (c->json) {
            json_w w;
            json_begin(&w, stdout);
            json_bool(&w, "ok", 1);
            json_str(&w, "in", in);
            json_str(&w, "out", out);
            json_str(&w, "key", smki_key_ref(k));
            json_str(&w, "format", "der");
            json_end(&w);
        } else {
            printf("Signed %s (canonical line ends) with %s: DER signature in %s.\n", in, smki_key_ref(k), out);
        }
    }
    smki_key_free(k);
    free(data);
    return cli_finish(c, rc);
}

static int file_verify(smki_cli *c, int argc, char **argv)
{
    const char *prog = "smki file verify";
    if (cli_wants_help(argc, argv, FILE_VERIFY_HELP)) return EXIT_OK;
    const char *cert = NULL, *pub = NULL, *in = NULL, *sigf = NULL;
    opt_t o[] = {{"cert", 1, &cert, NULL}, {"pub", 1, &pub, NULL}, {"in", 1, &in, NULL}, {"sig", 1, &sigf, NULL},
                 {NULL, 0, NULL, NULL}};
    int e = parse_opts(c, argc, argv, o, prog, NULL);
    if (e >= 0) return e;
    if (!in || !sigf) return cli_usage(c, prog, "--in and --sig are required");
    if (!cert == !pub) return cli_usage(c, prog, "give exactly one of --cert or --pub");
    uint8_t *data = NULL, *sig = NULL;
    size_t len = 0, sig_len = 0;
    EVP_PKEY *k = NULL;
    int rc = smki_pub_load_file(cert ? cert : pub, &k);
    if (rc == 0) rc = smki_file_read(in, SMKI_SIGNED_FILE_MAX, &data, &len);
    if (rc == 0) rc = smki_file_read(sigf, 1024, &sig, &sig_len);
    if (rc == 0) rc = smki_signed_file_verify(k, data, len, sig, sig_len);
    if (rc == SMKI_E_VERIFY) {
        smki_error_clear();
        rc = SMKI_FAIL(SMKI_E_VERIFY, "NOT verified: the signature in %s does not match %s under the key in %s",
                       sigf, in, cert ? cert : pub);
    }
    if (rc == 0) {
        if (c->json) {
            json_w w;
            json_begin(&w, stdout);
            json_bool(&w, "ok", 1);
            json_bool(&w, "verified", 1);
            json_str(&w, "in", in);
            json_end(&w);
        } else {
            printf("Verified: %s is signed by the key in %s.\n", in, cert ? cert : pub);
        }
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

/* ---- smki gbcs gateway user ... ------------------------------------------------------------ */
static const char USER_HELP[] =
    "Usage: smki gbcs gateway user add --id EUI64 --role ROLE --cert CERT [--user-roles EIS,GIS]\n"
    "       smki gbcs gateway user list\n"
    "       smki gbcs gateway user suspend --id EUI64\n"
    "       smki gbcs gateway user resume --id EUI64\n"
    "       smki gbcs gateway user set-roles --id EUI64 --user-roles EIS,GIS\n"
    "\n"
    "The gateway's Users: a User ID (EUI-64), its Remote Party Role (02 supplier, 03\n"
    "networkOperator, 04 accessControlBroker, 05 transitionalCoS, ... or the name) and\n"
    "its digital-signature certificate (PEM or DER), whose x500UniqueIdentifier must be\n"
    "the User ID. A suspended User's messages are refused (user.suspended).\n"
    "--user-roles (add, set-roles): its User Roles (EIS, EES, GIS, ENO, GNO, OU, the DCC's),\n"
    "which decide eligibility once a Service Request table is loaded ('eligibility load').\n"
    "\n"
    "Example:\n"
    "  smki gbcs gateway user add --id 90-B3-D5-1F-30-01-00-00 --role supplier \\\n"
    "      --cert keystore/90b3d51f30010000-ds.pem\n";

static int print_user(const smki_gw_user *u, void *arg)
{
    json_w *w = arg;
    char e[SMKI_EUI64_TEXT_MAX], r[SMKI_ROLE_TEXT_MAX];
    smki_eui64_format(&u->id, SMKI_EUI64_HYPHEN, e);
    smki_role_format(u->role, r);
    if (w) {
        json_arr_obj(w);
        json_str(w, "id", e);
        json_str(w, "role", r);
        json_str(w, "role_name", smki_role_name(u->role));
        json_bool(w, "suspended", u->suspended);
        json_str(w, "user_roles", u->user_roles);
        json_close_obj(w);
    } else {
        printf("%s  %s %-20s %-9s %s\n", e, r, smki_role_name(u->role), u->suspended ? "SUSPENDED" : "active",
               u->user_roles[0] ? u->user_roles : "-");
    }
    return 0;
}

static int gw_user(smki_cli *c, int argc, char **argv)
{
    const char *prog = "smki gbcs gateway user";
    int shown = verb_help(argc, argv, USER_HELP);
    if (shown >= 0) return shown;
    const char *sub = argv[1], *id = NULL, *role = NULL, *cert = NULL, *uroles = NULL;
    opt_t o[] = {{"id", 1, &id, NULL},
                 {"role", 1, &role, NULL},
                 {"cert", 1, &cert, NULL},
                 {"user-roles", 1, &uroles, NULL},
                 {NULL, 0, NULL, NULL}};
    int e = parse_opts(c, argc - 1, argv + 1, o, prog, NULL);
    if (e >= 0) return e;
    smki_store *s = NULL;
    smki_eui64_t eui;
    int rc = 0;
    if (strcmp(sub, "list") == 0) {
        GUARD_GOTO(open_store(c, &s), out);
        json_w w;
        json_list_open(c, &w, "users");
        rc = smki_gw_user_list(s, print_user, c->json ? &w : NULL);
        json_list_close(c, &w);
        goto out;
    }
    if (strcmp(sub, "add") != 0 && strcmp(sub, "suspend") != 0 && strcmp(sub, "resume") != 0 &&
        strcmp(sub, "set-roles") != 0)
        return cli_usage(c, prog, "unknown command '%s' (add, list, suspend, resume, set-roles)", sub);
    if ((e = need(c, prog, id, "--id")) >= 0) return e;
    GUARD_GOTO(smki_eui64_parse(id, &eui), out);
    if (strcmp(sub, "add") == 0) {
        if (!role || !cert) return cli_usage(c, prog, "add needs --role and --cert");
        uint8_t rcode;
        uint8_t *data = NULL;
        size_t len = 0;
        GUARD_GOTO(smki_role_parse(role, &rcode), out);
        GUARD_GOTO(smki_file_read(cert, 1u << 16, &data, &len), out);
        rc = open_store(c, &s);
        if (rc == 0) rc = smki_gw_user_add(s, &eui, rcode, data, len);
        if (rc == 0 && uroles) rc = smki_gw_user_set_roles(s, &eui, uroles);
        free(data);
        if (rc == 0 && !c->json) printf("User %s added as %s.\n", id, smki_role_name(rcode));
    } else if (strcmp(sub, "set-roles") == 0) {
        if (!uroles) return cli_usage(c, prog, "set-roles needs --user-roles (e.g. EIS,GIS; \"\" clears)");
        GUARD_GOTO(open_store(c, &s), out);
        rc = smki_gw_user_set_roles(s, &eui, uroles);
        if (rc == 0 && !c->json) printf("User %s: User Roles '%s'.\n", id, uroles);
    } else {
        int susp = strcmp(sub, "suspend") == 0;
        GUARD_GOTO(open_store(c, &s), out);
        rc = smki_gw_user_set_suspended(s, &eui, susp);
        if (rc == 0 && !c->json) printf("User %s %s.\n", id, susp ? "suspended" : "resumed");
    }
    if (rc == 0) ok_json(c, sub);
out:
    smki_store_close(s);
    return cli_finish(c, rc);
}

/* ---- device ------------------------------------------------------------------------------------ */
static const char DEVICE_HELP[] =
    "Usage: smki gbcs gateway device add --id EUI64 --status STATUS [--ka-cert CERT]\n"
    "       smki gbcs gateway device list\n"
    "       smki gbcs gateway device set-status --id EUI64 --status STATUS\n"
    "\n"
    "The Smart Metering Inventory as the gateway sees it. STATUS: pending, installed,\n"
    "commissioned, suspended, decommissioned. Commands are allowed to installed and\n"
    "commissioned devices only (others: device.status). --ka-cert is the device's\n"
    "key-agreement certificate (or public key): the ACB MACs commands to it with it.\n"
    "\n"
    "Example:\n"
    "  smki gbcs gateway device add --id 00-DB-12-34-56-78-90-A0 --status commissioned \\\n"
    "      --ka-cert keystore/00db1234567890a0-ka.pem\n";

static int print_device(const smki_gw_device *d, void *arg)
{
    json_w *w = arg;
    char e[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(&d->id, SMKI_EUI64_HYPHEN, e);
    if (w) {
        json_arr_obj(w);
        json_str(w, "id", e);
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

static int gw_device(smki_cli *c, int argc, char **argv)
{
    const char *prog = "smki gbcs gateway device";
    int shown = verb_help(argc, argv, DEVICE_HELP);
    if (shown >= 0) return shown;
    const char *sub = argv[1], *id = NULL, *status = NULL, *ka = NULL;
    opt_t o[] = {{"id", 1, &id, NULL}, {"status", 1, &status, NULL}, {"ka-cert", 1, &ka, NULL},
                 {NULL, 0, NULL, NULL}};
    int e = parse_opts(c, argc - 1, argv + 1, o, prog, NULL);
    if (e >= 0) return e;
    smki_store *s = NULL;
    int rc = 0;
    if (strcmp(sub, "list") == 0) {
        GUARD_GOTO(open_store(c, &s), out);
        json_w w;
        json_list_open(c, &w, "devices");
        rc = smki_gw_device_list(s, print_device, c->json ? &w : NULL);
        json_list_close(c, &w);
        goto out;
    }
    if (strcmp(sub, "add") != 0 && strcmp(sub, "set-status") != 0)
        return cli_usage(c, prog, "unknown command '%s' (add, list, set-status)", sub);
    if (!id || !status) return cli_usage(c, prog, "%s needs --id and --status", sub);
    smki_eui64_t eui;
    int st;
    GUARD_GOTO(smki_eui64_parse(id, &eui), out);
    GUARD_GOTO(smki_dev_status_parse(status, &st), out);
    if (strcmp(sub, "add") == 0) {
        uint8_t *data = NULL;
        size_t len = 0;
        if (ka) GUARD_GOTO(smki_file_read(ka, 1u << 16, &data, &len), out);
        rc = open_store(c, &s);
        if (rc == 0) rc = smki_gw_device_add(s, &eui, st, data, len);
        free(data);
        if (rc == 0 && !c->json) printf("Device %s added, %s.\n", id, status);
    } else {
        if (ka) return cli_usage(c, prog, "--ka-cert belongs to add");
        GUARD_GOTO(open_store(c, &s), out);
        rc = smki_gw_device_set_status(s, &eui, st);
        if (rc == 0 && !c->json) printf("Device %s is now %s.\n", id, status);
    }
    if (rc == 0) ok_json(c, sub);
out:
    smki_store_close(s);
    return cli_finish(c, rc);
}

/* ---- eligibility -------------------------------------------------------------------------------- */
static const char ELIG_HELP[] =
    "Usage: smki gbcs gateway eligibility list\n"
    "       smki gbcs gateway eligibility add --role ROLE --code XXXX\n"
    "       smki gbcs gateway eligibility remove --role ROLE --code XXXX\n"
    "\n"
    "Which message codes (4 hex digits, e.g. 0019 for ECS01a) each Remote Party Role may\n"
    "send. smki ships a default holding the codes the RTDS shows each role sending; the\n"
    "full GBCS eligibility table is configuration: the first add or remove copies the\n"
    "default into the store, which from then on holds the whole table.\n"
    "\n"
    "       smki gbcs gateway eligibility load --in FILE\n"
    "       smki gbcs gateway eligibility srv\n"
    "\n"
    "Eligibility by User Role per Service Reference Variant, as data: FILE is the DCC's\n"
    "Service Request eligibility as CSV, 'srv,use_case,message_code,user_roles', e.g.\n"
    "  1.1.1,ECS01a,0019,EIS\n"
    "  1.1.1,GCS01a,006B,GIS\n"
    "  6.15.1,CS02b,0102,EIS EES GIS\n"
    "(User Roles separated by blanks: EIS, EES, GIS, ENO, GNO, OU and the DCC's roles, as the\n"
    "Users are given them: 'user set-roles'). Once loaded it replaces the Remote Party Role\n"
    "table: a command passes only when one of its sender's User Roles is listed for a\n"
    "Service Reference Variant with its message code (user.not-eligible otherwise). An\n"
    "empty FILE removes the table. 'srv' prints the table in force.\n";

static int parse_code(const char *t, uint16_t *code)
{
    size_t n = strlen(t);
    ENSURE(n == 4 && strspn(t, "0123456789abcdefABCDEF") == 4, SMKI_E_USAGE,
           "message code '%s' is not 4 hex digits (e.g. 0019)", t);
    *code = (uint16_t)strtoul(t, NULL, 16);
    return 0;
}

static int gw_elig(smki_cli *c, int argc, char **argv)
{
    const char *prog = "smki gbcs gateway eligibility";
    int shown = verb_help(argc, argv, ELIG_HELP);
    if (shown >= 0) return shown;
    const char *sub = argv[1], *role = NULL, *code = NULL, *in = NULL;
    opt_t o[] = {{"role", 1, &role, NULL}, {"code", 1, &code, NULL}, {"in", 1, &in, NULL}, {NULL, 0, NULL, NULL}};
    int e = parse_opts(c, argc - 1, argv + 1, o, prog, NULL);
    if (e >= 0) return e;
    smki_store *s = NULL;
    int rc = 0;
    if (strcmp(sub, "load") == 0) {
        if (!in) return cli_usage(c, prog, "load needs --in FILE (srv,use_case,message_code,user_roles)");
        uint8_t *data = NULL;
        size_t len = 0, rows = 0;
        GUARD_GOTO(smki_file_read(in, 1u << 20, &data, &len), out);
        rc = open_store(c, &s);
        if (rc == 0) rc = smki_gw_srv_load(s, data, len, &rows);
        free(data);
        if (rc == 0 && c->json) {
            json_w w;
            json_begin(&w, stdout);
            json_bool(&w, "ok", 1);
            json_int(&w, "rows", (long long)rows);
            json_end(&w);
        } else if (rc == 0) {
            printf(rows ? "Loaded %zu Service Request eligibility row(s): User Roles now decide eligibility.\n"
                        : "Eligibility table removed (%zu rows): the Remote Party Role table decides again.\n",
                   rows);
        }
        goto out;
    }
    if (strcmp(sub, "srv") == 0) {
        smki_srv_table t;
        GUARD_GOTO(open_store(c, &s), out);
        GUARD_GOTO(smki_gw_srv_get(s, &t), out);
        json_w w;
        if (c->json) {
            json_begin(&w, stdout);
            json_bool(&w, "ok", 1);
            json_bool(&w, "loaded", t.count > 0);
            json_key_arr(&w, "rows");
        } else if (!t.count) {
            printf("No Service Request eligibility table: the Remote Party Role table applies.\n");
        }
        for (size_t i = 0; i < t.count; i++) {
            char roles[SMKI_SRV_MAX_ROLE_NAMES * 10] = "", cd[8];
            size_t ro = 0;
            for (size_t k = 0; k < t.nroles; k++)
                if (t.rows[i].roles & (1u << k))
                    ro += (size_t)snprintf(roles + ro, sizeof roles - ro, "%s%s", ro ? " " : "", t.role_names[k]);
            snprintf(cd, sizeof cd, "%04X", t.rows[i].code);
            if (c->json) {
                json_arr_obj(&w);
                json_str(&w, "srv", t.rows[i].srv);
                json_str(&w, "use_case", t.rows[i].use_case);
                json_str(&w, "message_code", cd);
                json_str(&w, "user_roles", roles);
                json_close_obj(&w);
            } else {
                printf("%s,%s,%s,%s\n", t.rows[i].srv, t.rows[i].use_case, cd, roles);
            }
        }
        if (c->json) {
            json_close_arr(&w);
            json_end(&w);
        }
        smki_srv_table_free(&t);
        goto out;
    }
    if (strcmp(sub, "list") == 0) {
        smki_gw_elig *rows = NULL;
        size_t n = 0;
        int def = 0;
        GUARD_GOTO(open_store(c, &s), out);
        GUARD_GOTO(smki_gw_elig_list(s, &rows, &n, &def), out);
        json_w w;
        if (c->json) {
            json_begin(&w, stdout);
            json_bool(&w, "ok", 1);
            json_bool(&w, "default", def);
            json_key_arr(&w, "rows");
        } else {
            printf("%s table:\n", def ? "Built-in default" : "Configured");
        }
        for (size_t i = 0; i < n; i++) {
            char r[SMKI_ROLE_TEXT_MAX], cd[8];
            smki_role_format(rows[i].role, r);
            snprintf(cd, sizeof cd, "%04X", rows[i].code);
            if (c->json) {
                json_arr_obj(&w);
                json_str(&w, "role", r);
                json_str(&w, "role_name", smki_role_name(rows[i].role));
                json_str(&w, "code", cd);
                json_str(&w, "name", rows[i].name);
                json_close_obj(&w);
            } else {
                printf("  %s %-18s %s %s\n", r, smki_role_name(rows[i].role), cd, rows[i].name);
            }
        }
        if (c->json) {
            json_close_arr(&w);
            json_end(&w);
        }
        free(rows);
        goto out;
    }
    if (strcmp(sub, "add") != 0 && strcmp(sub, "remove") != 0)
        return cli_usage(c, prog, "unknown command '%s' (list, add, remove, load, srv)", sub);
    if (!role || !code) return cli_usage(c, prog, "%s needs --role and --code", sub);
    uint8_t r = 0;
    uint16_t cd = 0;
    GUARD_GOTO(smki_role_parse(role, &r), out);
    GUARD_GOTO(parse_code(code, &cd), out);
    GUARD_GOTO(open_store(c, &s), out);
    rc = smki_gw_elig_set(s, r, cd, strcmp(sub, "add") == 0);
    if (rc == 0 && !c->json)
        printf("Role %s %s message code %04X.\n", smki_role_name(r), strcmp(sub, "add") == 0 ? "may send" : "may no longer send", cd);
    if (rc == 0) ok_json(c, sub);
out:
    smki_store_close(s);
    return cli_finish(c, rc);
}

/* ---- thresholds ------------------------------------------------------------------------------------ */
static const char THRESH_HELP[] =
    "Usage: smki gbcs gateway thresholds load --user EUI64 --in CSV --sig SIG\n"
    "       smki gbcs gateway thresholds show --user EUI64\n"
    "\n"
    "A User's anomaly thresholds, submitted as a signed CSV file (smki file sign). The\n"
    "signature must verify against the User's registered DS certificate, or, when the\n"
    "home's smki.conf sets [gateway] threshold_signer = CERT, against that certificate\n"
    "(which may then set any User's rules). Anything else is refused and nothing changes.\n"
    "\n"
    "CSV format, one rule a line (a header line 'user,message_code,window_seconds,max_count'\n"
    "with or without ',kind', and '#' comments allowed):\n"
    "  90-B3-D5-1F-30-01-00-00,0019,3600,50     at most 50 ECS01a commands an hour\n"
    "  90B3D51F30010000,*,86400,1000            at most 1000 commands a day, all codes\n"
    "  90B3D51F30010000,*,3600,500,response     at most 500 responses to the User an hour\n"
    "  90B3D51F30010000,00CB,3600,20,alert      at most 20 alerts 00CB to the User an hour\n"
    "kind (default command): commands the User sends, or responses / alerts addressed to it.\n"
    "The message after the limit is QUARANTINED (threshold.exceeded), not dropped.\n"
    "Errors name the line and column.\n";

static int gw_thresholds(smki_cli *c, int argc, char **argv)
{
    const char *prog = "smki gbcs gateway thresholds";
    int shown = verb_help(argc, argv, THRESH_HELP);
    if (shown >= 0) return shown;
    const char *sub = argv[1], *user = NULL, *in = NULL, *sigf = NULL;
    opt_t o[] = {{"user", 1, &user, NULL}, {"in", 1, &in, NULL}, {"sig", 1, &sigf, NULL}, {NULL, 0, NULL, NULL}};
    int e = parse_opts(c, argc - 1, argv + 1, o, prog, NULL);
    if (e >= 0) return e;
    if (strcmp(sub, "load") != 0 && strcmp(sub, "show") != 0)
        return cli_usage(c, prog, "unknown command '%s' (load, show)", sub);
    if ((e = need(c, prog, user, "--user")) >= 0) return e;
    smki_store *s = NULL;
    smki_eui64_t eui;
    uint8_t *csv = NULL, *sig = NULL;
    size_t csv_len = 0, sig_len = 0;
    EVP_PKEY *signer = NULL;
    int rc = 0;
    GUARD_GOTO(smki_eui64_parse(user, &eui), out);
    if (strcmp(sub, "load") == 0) {
        if (!in || !sigf) return cli_usage(c, prog, "load needs --in and --sig");
        GUARD_GOTO(cli_home(c), out);
        const char *sc = smki_conf_get(c->conf, "gateway.threshold_signer", NULL);
        if (sc) GUARD_GOTO(smki_pub_load_file(sc, &signer), out);
        GUARD_GOTO(smki_file_read(in, SMKI_SIGNED_FILE_MAX, &csv, &csv_len), out);
        GUARD_GOTO(smki_file_read(sigf, 1024, &sig, &sig_len), out);
        GUARD_GOTO(open_store(c, &s), out);
        size_t n = 0;
        GUARD_GOTO(smki_gw_thresholds_load(s, &eui, csv, csv_len, sig, sig_len, signer, &n), out);
        if (c->json) {
            json_w w;
            json_begin(&w, stdout);
            json_bool(&w, "ok", 1);
            json_int(&w, "rules", (long long)n);
            json_end(&w);
        } else {
            printf("Loaded %zu threshold rule(s) for %s (signature verified against %s).\n", n, user,
                   signer ? "the configured signer" : "the user's DS certificate");
        }
        goto out;
    }
    smki_thresholds th = {0, NULL};
    GUARD_GOTO(open_store(c, &s), out);
    GUARD_GOTO(smki_gw_thresholds_get(s, &eui, &th), out);
    json_w w;
    if (c->json) {
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_key_arr(&w, "rules");
    }
    for (size_t i = 0; i < th.count; i++) {
        char cd[12];
        if (th.rules[i].code == SMKI_CODE_ANY)
            snprintf(cd, sizeof cd, "*");
        else
            snprintf(cd, sizeof cd, "%04X", th.rules[i].code);
        if (c->json) {
            json_arr_obj(&w);
            json_str(&w, "code", cd);
            json_int(&w, "window_seconds", th.rules[i].window);
            json_int(&w, "max_count", th.rules[i].max_count);
            json_str(&w, "kind", smki_gbcs_cra_name(th.rules[i].kind));
            json_close_obj(&w);
        } else {
            printf("%s,%s,%u,%u,%s\n", user, cd, th.rules[i].window, th.rules[i].max_count,
                   smki_gbcs_cra_name(th.rules[i].kind));
        }
    }
    if (c->json) {
        json_close_arr(&w);
        json_end(&w);
    }
    smki_thresholds_free(&th);
out:
    free(csv);
    free(sig);
    EVP_PKEY_free(signer);
    smki_store_close(s);
    return cli_finish(c, rc);
}

/* ---- check ----------------------------------------------------------------------------------------- */
static const char CHECK_HELP[] =
    "Usage: smki gbcs gateway check (--trust DIR | --oca CERT) (--crl FILE | --no-crl)\n"
    "           [--at TIME] [--env NAME] [--max-future-days N] [--quarantine-hook CMD]\n"
    "           [--acb-key KEY --out FILE|DIR] FILE...\n"
    "\n"
    "The DCC User Gateway's checks (reference §7) on signed pre-commands (General Signing\n"
    "APDUs, hex text or binary; a General Ciphering command is taken for the APDU inside),\n"
    "in this order, the first failure giving the message's reason code:\n"
    "  structure.malformed / structure.unsigned\n"
    "  future-dated.too-far    (execution date-time more than --max-future-days ahead)\n"
    "  user.unknown / user.not-eligible / user.suspended      (the registry)\n"
    "  device.unknown / device.status / device.environment     (the inventory)\n"
    "  cert.untrusted / cert.not-yet-valid / cert.expired / cert.revoked /\n"
    "  cert.revocation-unknown / cert.role / cert.key-usage / cert.subject / cert.environment\n"
    "                          (the User's DS certificate at TIME: chain, dates, CRL, role, usage, EUI-64)\n"
    "  signature.invalid       (the signature under that certificate)\n"
    "  device.no-ka-key        (with --acb-key: the inventory has no KA key for the device)\n"
    "  counter.replay          (counter not above the last that passed from the originator)\n"
    "  threshold.exceeded      (anomaly threshold: the message is QUARANTINED, not dropped)\n"
    "Responses and alerts (device to User) need a known device and a registered User, then\n"
    "the User's response or alert thresholds; one that passes is delivered as received.\n"
    "A command that passes has its counter recorded; with --acb-key (the ACB's KA key) it\n"
    "is MACed into a command (General Ciphering, reference §5) written as hex text to\n"
    "--out (a file for one message, a folder for several: NAME.command.hex).\n"
    "\n"
    "  --trust DIR    trusted CA certificates (roots or OCAs), every file in DIR\n"
    "  --oca CERT     or: the organisation CA certificate(s) as trust anchors\n"
    "  --crl FILE     the OCA's CRL (DER or PEM; its signature is checked)\n"
    "  --no-crl       say explicitly that revocation is not checked (the RTDS has no CRL)\n"
    "  --max-future-days N  refuse commands to be executed more than N days after --at\n"
    "                 (default [gateway] max_future_days of smki.conf, else 30); the\n"
    "                 execution date-time is the CS02b executionDateTime or the APDU's date-time\n"
    "  --env NAME     the gateway's environment (default [gateway] env, else test): a signer\n"
    "                 or User certificate, or a device certificate, whose policy OID is\n"
    "                 another environment's is refused (cert.environment, user.environment,\n"
    "                 device.environment), whatever the trust anchors\n"
    "  --quarantine-hook CMD  run for each quarantined message (default [gateway]\n"
    "                 quarantine_hook; see 'quarantine --help')\n"
    "  --at TIME      the time of the check: 2020-01-01, 2020-01-01T12:00:00Z, @SECONDS\n"
    "                 (default now); certificates are checked and thresholds counted at it\n"
    "All FILEs are checked as one batch: one store commit records them all.\n"
    "Exit 0 when every message passed; 2 when any was rejected or quarantined.\n"
    "\n"
    "Example (RTDS, the supplier's pre-command signed with its test key):\n"
    "  smki gbcs gateway check --oca z1.pem --no-crl --at 2020-01-01 \\\n"
    "      --acb-key file:keystore/90b3d51f30000002-ka.key --out cmd.hex signed.hex\n";

static int write_hex(const char *path, const uint8_t *b, size_t n)
{
    char *hex = malloc(2 * n + 2);
    ENSURE(hex, SMKI_E_NOMEM, "hex");
    smki_hex_encode(b, n, hex, 1);
    hex[2 * n] = '\n';
    int rc = smki_file_write_atomic(path, hex, 2 * n + 1, 0644, 0);
    free(hex);
    return rc;
}

/* --max-future-days / [gateway] max_future_days: 1..10000 days, as seconds. */
static int parse_days(const char *t, uint32_t *seconds)
{
    char *end = NULL;
    unsigned long d = strtoul(t, &end, 10);
    ENSURE(*t >= '0' && *t <= '9' && end && !*end && d >= 1 && d <= 10000, SMKI_E_USAGE,
           "max future days '%s': give a whole number of days, 1..10000", t);
    *seconds = (uint32_t)(d * 86400u);
    return 0;
}

/* The RA's User Roles of a User ID ("EIS,GIS"; a DCC ID adds "DCC"): the gateway's
 * eligibility by User Role reads them from the RA's registry. */
static int ra_sender_roles(void *arg, const smki_eui64_t *id, char *roles, size_t cap)
{
    smki_ra_user_id u;
    int rc = smki_ra_id_get(arg, id, &u);
    if (rc == SMKI_E_NOTFOUND) {
        smki_error_clear();
        return 0;
    }
    GUARD(rc);
    smki_user_roles_format(u.roles, roles, cap);
    if (u.is_dcc) {
        size_t n = strlen(roles);
        snprintf(roles + n, cap - n, "%sDCC", n ? "," : "");
    }
    return 1;
}

/* The quarantine hook: --quarantine-hook CMD, else [gateway] quarantine_hook; its timeout
 * [gateway] quarantine_hook_timeout (seconds, 1..3600; default 30). */
static int hook_from(smki_cli *c, const char *cmd, smki_gwq_hook *h)
{
    h->command = cmd ? cmd : smki_conf_get(c->conf, "gateway.quarantine_hook", NULL);
    const char *t = smki_conf_get(c->conf, "gateway.quarantine_hook_timeout", NULL);
    h->timeout_seconds = 0;
    if (t) {
        char *end = NULL;
        unsigned long v = strtoul(t, &end, 10);
        ENSURE(*t >= '0' && *t <= '9' && end && !*end && v >= 1 && v <= 3600, SMKI_E_USAGE,
               "[gateway] quarantine_hook_timeout '%s': give seconds, 1..3600", t);
        h->timeout_seconds = (unsigned)v;
    }
    return 0;
}

/* The RA's suspension of a User ID or its Party (reference §7: "not suspended"). */
static int ra_sender_suspended(void *arg, const smki_eui64_t *id, char *why, size_t cap)
{
    int rc = smki_ra_check_sender(arg, id);
    if (rc == SMKI_E_REFUSED || rc == SMKI_E_NOTFOUND) {
        if (rc == SMKI_E_REFUSED) snprintf(why, cap, "%s", smki_error_msg());
        smki_error_clear();
        return rc == SMKI_E_REFUSED;
    }
    return rc;
}

static int gw_check(smki_cli *c, int argc, char **argv)
{
    const char *prog = "smki gbcs gateway check";
    if (cli_wants_help(argc, argv, CHECK_HELP)) return EXIT_OK;
    const char *trust = NULL, *oca = NULL, *crl = NULL, *at_s = NULL, *acb = NULL, *outp = NULL, *future_s = NULL,
               *hook_s = NULL, *env_s = NULL;
    int no_crl = 0, first = 0;
    smki_env env;
    opt_t o[] = {{"trust", 1, &trust, NULL},
                 {"oca", 1, &oca, NULL},
                 {"crl", 1, &crl, NULL},
                 {"no-crl", 0, NULL, &no_crl},
                 {"at", 1, &at_s, NULL},
                 {"acb-key", 1, &acb, NULL},
                 {"out", 1, &outp, NULL},
                 {"max-future-days", 1, &future_s, NULL},
                 {"quarantine-hook", 1, &hook_s, NULL},
                 {"env", 1, &env_s, NULL},
                 {NULL, 0, NULL, NULL}};
    int e = parse_opts(c, argc, argv, o, prog, &first);
    if (e >= 0) return e;
    size_t n = (size_t)(argc - first);
    if (n == 0) return cli_usage(c, prog, "give at least one message FILE");
    if (!trust == !oca) return cli_usage(c, prog, "give exactly one of --trust DIR or --oca CERT");
    if (!crl == !no_crl) return cli_usage(c, prog, "give --crl FILE, or --no-crl to check without revocation");
    if (!acb != !outp) return cli_usage(c, prog, "--acb-key and --out go together");
    time_t at = time(NULL);
    int rc = 0;
    smki_store *s = NULL;
    smki_key *k = NULL;
    smki_gateway *g = NULL;
    smki_ra *ra = NULL;
    uint8_t **msgs = calloc(n, sizeof *msgs);
    size_t *lens = calloc(n, sizeof *lens);
    smki_gw_result *res = calloc(n, sizeof *res);
    ENSURE_GOTO(msgs && lens && res, SMKI_E_NOMEM, out, "messages");
    if (at_s) GUARD_GOTO(smki_gw_time_parse(at_s, &at), out);
    if (outp && n > 1) {
        struct stat st;
        ENSURE_GOTO(stat(outp, &st) == 0 && S_ISDIR(st.st_mode), SMKI_E_USAGE, out,
                    "with several messages --out must be an existing folder (%s is not)", outp);
    }
    for (size_t i = 0; i < n; i++) GUARD_GOTO(smki_gbcs_read_file(argv[first + i], &msgs[i], &lens[i]), out);
    if (acb) GUARD_GOTO(cli_open_key(c, acb, &k), out);
    GUARD_GOTO(open_store(c, &s), out);
    smki_ra_policy pol;
    GUARD_GOTO(smki_ra_policy_load(c->conf, &pol), out);
    GUARD_GOTO(smki_ra_open(s, &pol, &ra), out);
    smki_gateway_opts go = {.trust_dir = trust,
                            .oca_file = oca,
                            .crl_file = crl,
                            .no_crl = no_crl,
                            .acb_ka = k,
                            .sender_suspended = ra_sender_suspended,
                            .sender_roles = ra_sender_roles,
                            .sender_arg = ra};
    if (!future_s) future_s = smki_conf_get(c->conf, "gateway.max_future_days", NULL);
    if (future_s) GUARD_GOTO(parse_days(future_s, &go.max_future_seconds), out);
    GUARD_GOTO(hook_from(c, hook_s, &go.hook), out);
    /* The gateway's environment: test and live never mix (default [gateway] env, else test). */
    if (!env_s) env_s = smki_conf_get(c->conf, "gateway.env", "test");
    GUARD_GOTO(smki_env_load(env_s, c->conf, &env), out);
    GUARD_GOTO(smki_env_check_configured(&env), out);
    go.env = &env;
    GUARD_GOTO(smki_gateway_open(s, &go, &g), out);
    GUARD_GOTO(smki_gateway_check(g, (const uint8_t *const *)msgs, lens, n, at, res), out);
    int all = 1;
    json_w w;
    if (c->json) {
        json_begin(&w, stdout);
        json_key_arr(&w, "messages");
    }
    for (size_t i = 0; i < n; i++) {
        smki_gw_result *r = &res[i];
        const char *file = argv[first + i];
        char outfile[4300] = "";
        if (r->verdict == SMKI_GW_PASS && r->command) {
            if (n == 1) {
                snprintf(outfile, sizeof outfile, "%s", outp);
            } else {
                char tmp[4096];
                snprintf(tmp, sizeof tmp, "%s", file);
                snprintf(outfile, sizeof outfile, "%s/%s.command.hex", outp, basename(tmp));
            }
            GUARD_GOTO(write_hex(outfile, r->command, r->command_len), out);
        }
        all &= r->verdict == SMKI_GW_PASS;
        const char *verdict = r->verdict == SMKI_GW_PASS ? "passed" : r->verdict == SMKI_GW_REJECT ? "rejected" : "quarantined";
        char oe[SMKI_EUI64_TEXT_MAX] = "", te[SMKI_EUI64_TEXT_MAX] = "", cd[8] = "";
        if (r->parsed) {
            smki_eui64_format(&r->originator, SMKI_EUI64_HYPHEN, oe);
            smki_eui64_format(&r->target, SMKI_EUI64_HYPHEN, te);
            snprintf(cd, sizeof cd, "%04X", r->code);
        }
        if (c->json) {
            json_arr_obj(&w);
            json_str(&w, "file", file);
            json_str(&w, "verdict", verdict);
            json_str(&w, "reason", r->reason);
            json_str(&w, "detail", r->detail);
            if (r->parsed) {
                json_str(&w, "originator", oe);
                json_str(&w, "target", te);
                json_str(&w, "message_code", cd);
                json_int(&w, "counter", (long long)r->counter);
            }
            if (r->verdict == SMKI_GW_QUARANTINE) {
                json_int(&w, "quarantine_id", (long long)r->quarantine_id);
                if (r->notified) json_bool(&w, "notified", r->notified > 0);
                if (r->notified < 0) json_str(&w, "notify_error", r->notify_error);
            }
            if (outfile[0]) json_str(&w, "command", outfile);
            json_close_obj(&w);
        } else if (r->verdict == SMKI_GW_PASS) {
            printf("%s: passed (%s -> %s, code %s, counter %llu)%s%s\n", file, oe, te, cd,
                   (unsigned long long)r->counter, outfile[0] ? "; command: " : "", outfile);
        } else if (r->verdict == SMKI_GW_QUARANTINE) {
            printf("%s: QUARANTINED as %llu: %s: %s%s%s\n", file, (unsigned long long)r->quarantine_id, r->reason,
                   r->detail, r->notified > 0 ? "; hook notified" : r->notified < 0 ? "; HOOK FAILED: " : "",
                   r->notified < 0 ? r->notify_error : "");
        } else {
            printf("%s: REJECTED: %s: %s\n", file, r->reason, r->detail);
        }
    }
    if (c->json) {
        json_close_arr(&w);
        json_bool(&w, "ok", all);
        json_end(&w);
    }
    rc = all ? 0 : 1;
out:
    if (msgs)
        for (size_t i = 0; i < n; i++) free(msgs[i]);
    if (res)
        for (size_t i = 0; i < n; i++) smki_gw_result_clear(&res[i]);
    free(msgs);
    free(lens);
    free(res);
    smki_gateway_free(g);
    smki_ra_close(ra);
    smki_key_free(k);
    smki_store_close(s);
    if (rc == 1) return EXIT_REFUSED;
    return cli_finish(c, rc);
}

/* ---- quarantine -------------------------------------------------------------------------------------- */
static const char QUAR_HELP[] =
    "Usage: smki gbcs gateway quarantine list\n"
    "       smki gbcs gateway quarantine show ID\n"
    "       smki gbcs gateway quarantine release ID [--acb-key KEY] --out FILE\n"
    "       smki gbcs gateway quarantine reject ID --reason TEXT\n"
    "       smki gbcs gateway quarantine notify [--quarantine-hook CMD]\n"
    "       smki gbcs gateway quarantine stats\n"
    "\n"
    "Messages held for reaching an anomaly threshold. release of a command MACs it with\n"
    "the ACB's KA key (written as hex to FILE) and records its counter (it must still be\n"
    "above the originator's last: counter.replay otherwise); release of a response or alert\n"
    "writes it as the device sent it, for delivery to its User (no --acb-key). reject\n"
    "records the operator's reason. Either closes the record.\n"
    "\n"
    "Notification: 'check' runs the hook ([gateway] quarantine_hook = CMD in smki.conf, or\n"
    "--quarantine-hook CMD) once for each message it quarantines, after the quarantine is\n"
    "committed: /bin/sh -c CMD with the record as JSON on stdin and SMKI_QUARANTINE_ID set,\n"
    "killed after [gateway] quarantine_hook_timeout seconds (30). A failing hook loses\n"
    "nothing: the record stays, the failure is counted. notify runs the hook for every held\n"
    "record not notified yet; stats prints the counters (quarantined, notified, failed).\n"
    "\n"
    "Example ([gateway] quarantine_hook = logger -t smki-quarantine):\n"
    "  smki gbcs gateway quarantine notify --quarantine-hook 'cat >> /var/log/smki-quarantine.jsonl'\n";

static int print_q(const smki_gwq_record *q, void *arg)
{
    json_w *w = arg;
    static const char *const st[] = {"held", "released", "rejected"};
    char oe[SMKI_EUI64_TEXT_MAX], te[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(&q->originator, SMKI_EUI64_HYPHEN, oe);
    smki_eui64_format(&q->target, SMKI_EUI64_HYPHEN, te);
    const char *state = q->state >= 0 && q->state <= 2 ? st[q->state] : "unknown";
    if (w) {
        char cd[8];
        snprintf(cd, sizeof cd, "%04X", q->code);
        json_arr_obj(w);
        json_int(w, "id", (long long)q->id);
        json_str(w, "state", state);
        json_int(w, "at", (long long)q->at);
        json_str(w, "reason", q->reason);
        json_str(w, "detail", q->detail);
        json_str(w, "note", q->note);
        json_str(w, "originator", oe);
        json_str(w, "target", te);
        json_str(w, "message_code", cd);
        json_int(w, "counter", (long long)q->counter);
        static const char *const ns[] = {"none", "notified", "failed"};
        json_str(w, "notification", q->notify_state >= 0 && q->notify_state <= 2 ? ns[q->notify_state] : "unknown");
        json_int(w, "notify_attempts", q->notify_attempts);
        json_close_obj(w);
    } else {
        printf("%llu  %-8s %s -> %s code %04X counter %llu: %s%s%s\n", (unsigned long long)q->id, state, oe, te,
               q->code, (unsigned long long)q->counter, q->reason, q->note[0] ? "; " : "", q->note);
    }
    return 0;
}

static int gw_quarantine(smki_cli *c, int argc, char **argv)
{
    const char *prog = "smki gbcs gateway quarantine";
    int shown = verb_help(argc, argv, QUAR_HELP);
    if (shown >= 0) return shown;
    const char *sub = argv[1], *acb = NULL, *outp = NULL, *reason = NULL, *hook_s = NULL;
    int first = 0;
    opt_t o[] = {{"acb-key", 1, &acb, NULL}, {"out", 1, &outp, NULL}, {"reason", 1, &reason, NULL},
                 {"quarantine-hook", 1, &hook_s, NULL}, {NULL, 0, NULL, NULL}};
    int e = parse_opts(c, argc - 1, argv + 1, o, prog, &first);
    if (e >= 0) return e;
    char **pos = argv + 1 + first;
    int npos = argc - 1 - first;
    smki_store *s = NULL;
    smki_key *k = NULL;
    int rc = 0;
    if (strcmp(sub, "list") == 0) {
        if (npos) return cli_usage(c, prog, "list takes no argument");
        GUARD_GOTO(open_store(c, &s), out);
        json_w w;
        json_list_open(c, &w, "quarantine");
        rc = smki_gwq_list(s, print_q, c->json ? &w : NULL);
        json_list_close(c, &w);
        goto out;
    }
    if (strcmp(sub, "stats") == 0 || strcmp(sub, "notify") == 0) {
        if (npos) return cli_usage(c, prog, "%s takes no argument", sub);
        GUARD_GOTO(open_store(c, &s), out);
        size_t fired = 0, failed = 0;
        if (strcmp(sub, "notify") == 0) {
            smki_gwq_hook h;
            GUARD_GOTO(hook_from(c, hook_s, &h), out);
            GUARD_GOTO(smki_gwq_notify_pending(s, &h, &fired, &failed), out);
        }
        smki_gwq_stats st;
        GUARD_GOTO(smki_gwq_stats_get(s, &st), out);
        if (c->json) {
            json_w w;
            json_begin(&w, stdout);
            json_bool(&w, "ok", failed == 0);
            if (strcmp(sub, "notify") == 0) {
                json_int(&w, "fired", (long long)fired);
                json_int(&w, "failed", (long long)failed);
            }
            json_int(&w, "quarantined_total", (long long)st.quarantined);
            json_int(&w, "notified_total", (long long)st.notified);
            json_int(&w, "notify_failed_total", (long long)st.notify_failed);
            json_end(&w);
        } else {
            if (strcmp(sub, "notify") == 0)
                printf("Hook run for %zu pending record(s): %zu failed.\n", fired + failed, failed);
            printf("quarantined %llu, notified %llu, notifications failed %llu\n",
                   (unsigned long long)st.quarantined, (unsigned long long)st.notified,
                   (unsigned long long)st.notify_failed);
        }
        if (failed) rc = SMKI_FAIL(SMKI_E_REFUSED, "the quarantine hook failed for %zu record(s)", failed);
        goto out;
    }
    if (strcmp(sub, "show") != 0 && strcmp(sub, "release") != 0 && strcmp(sub, "reject") != 0)
        return cli_usage(c, prog, "unknown command '%s' (list, show, release, reject, notify, stats)", sub);
    if (npos != 1) return cli_usage(c, prog, "%s needs one quarantine ID", sub);
    char *end = NULL;
    unsigned long long id = strtoull(pos[0], &end, 10);
    if (!*pos[0] || *end) return cli_usage(c, prog, "quarantine ID '%s' is not a number", pos[0]);
    if (strcmp(sub, "show") == 0) {
        smki_gwq_record q;
        GUARD_GOTO(open_store(c, &s), out);
        GUARD_GOTO(smki_gwq_get(s, id, &q), out);
        if (c->json) {
            json_w w;
            json_begin(&w, stdout);
            json_bool(&w, "ok", 1);
            json_key_arr(&w, "quarantine");
            print_q(&q, &w);
            json_close_arr(&w);
            json_end(&w);
        } else {
            print_q(&q, NULL);
            printf("detail: %s\n", q.detail);
            char *hex = malloc(2 * q.msg_len + 1);
            if (hex) {
                smki_hex_encode(q.msg, q.msg_len, hex, 1);
                printf("message: %s\n", hex);
                free(hex);
            }
        }
        smki_gwq_clear(&q);
    } else if (strcmp(sub, "release") == 0) {
        if (!outp) return cli_usage(c, prog, "release needs --out (and --acb-key for a command)");
        uint8_t *cmd = NULL;
        size_t len = 0;
        if (acb) GUARD_GOTO(cli_open_key(c, acb, &k), out);
        GUARD_GOTO(open_store(c, &s), out);
        GUARD_GOTO(smki_gwq_release(s, id, k, &cmd, &len), out);
        rc = write_hex(outp, cmd, len);
        free(cmd);
        if (rc == 0 && !c->json) printf("Released %llu: the message to send written to %s.\n", id, outp);
        if (rc == 0) ok_json(c, "release");
    } else {
        if (!reason) return cli_usage(c, prog, "reject needs --reason TEXT");
        GUARD_GOTO(open_store(c, &s), out);
        GUARD_GOTO(smki_gwq_reject(s, id, reason), out);
        if (!c->json) printf("Rejected %llu: %s\n", id, reason);
        ok_json(c, "reject");
    }
out:
    smki_key_free(k);
    smki_store_close(s);
    return cli_finish(c, rc);
}

/* ---- log and archive -------------------------------------------------------------------------------- */
static const char LOG_HELP[] =
    "Usage: smki gbcs gateway log list [--before TIME]\n"
    "       smki gbcs gateway log archive --key KEY --out FILE [--before TIME | --keep-days N]\n"
    "       smki gbcs gateway log verify --in FILE --cert CERT\n"
    "\n"
    "The record of every message 'check' judged: time, verdict, reason code, kind,\n"
    "originator, target, message code, counter. Kept online for --keep-days (default\n"
    "[gateway] log_keep_days of smki.conf, else 92: three months), then 'archive' writes the\n"
    "records older than that (or than --before) to FILE, signed with KEY, and only then\n"
    "prunes them from the store. FILE is text: a header line, one JSON object a record,\n"
    "and a last line 'signature HEX' (DER ECDSA P-256/SHA-256 over every octet before it).\n"
    "Keep archives at least seven years. 'verify' checks one with the signer's certificate\n"
    "(exit 2 if it was changed). Without records to archive nothing is written.\n"
    "\n"
    "Examples:\n"
    "  smki gbcs gateway log archive --key file:gateway-ds.key --out gw-2026-01.archive\n"
    "  smki gbcs gateway log verify --in gw-2026-01.archive --cert gateway-ds.pem\n"
    "  (or: head -n -1 gw-2026-01.archive > body; tail -n 1 gw-2026-01.archive | cut -d' ' -f2 |\n"
    "   tr a-f A-F | basenc --base16 -d > sig; openssl dgst -sha256 -verify gateway-pub.pem -signature sig body)\n";

static int print_log(const smki_gw_log_record *r, void *arg)
{
    json_w *w = arg;
    char line[512];
    static const char *const verdicts[] = {"passed", "rejected", "quarantined"};
    const char *verdict = verdicts[r->verdict <= 2 ? r->verdict : 1];
    if (!w) {
        char oe[SMKI_EUI64_TEXT_MAX] = "-", te[SMKI_EUI64_TEXT_MAX] = "-";
        if (r->parsed) {
            smki_eui64_format(&r->originator, SMKI_EUI64_HYPHEN, oe);
            smki_eui64_format(&r->target, SMKI_EUI64_HYPHEN, te);
        }
        printf("%lld %-11s %-24s %-8s %s -> %s code %04X counter %llu\n", (long long)r->at, verdict,
               r->reason[0] ? r->reason : "-", r->parsed ? smki_gbcs_cra_name(r->cra) : "unparsed", oe, te, r->code,
               (unsigned long long)r->counter);
        return 0;
    }
    GUARD(smki_gw_log_record_json(r, line, sizeof line));
    json_arr_obj(w);
    json_int(w, "at", (long long)r->at);
    json_int(w, "seq", (long long)r->seq);
    json_str(w, "verdict", verdict);
    json_str(w, "reason", r->reason);
    json_str(w, "kind", r->parsed ? smki_gbcs_cra_name(r->cra) : "unparsed");
    char oe[SMKI_EUI64_TEXT_MAX] = "", te[SMKI_EUI64_TEXT_MAX] = "", cd[8];
    if (r->parsed) {
        smki_eui64_format(&r->originator, SMKI_EUI64_HYPHEN, oe);
        smki_eui64_format(&r->target, SMKI_EUI64_HYPHEN, te);
    }
    snprintf(cd, sizeof cd, "%04X", r->code);
    json_str(w, "originator", oe);
    json_str(w, "target", te);
    json_str(w, "message_code", cd);
    json_int(w, "counter", (long long)r->counter);
    json_close_obj(w);
    return 0;
}

static int gw_log(smki_cli *c, int argc, char **argv)
{
    const char *prog = "smki gbcs gateway log";
    int shown = verb_help(argc, argv, LOG_HELP);
    if (shown >= 0) return shown;
    const char *sub = argv[1], *before_s = NULL, *keep_s = NULL, *key = NULL, *outp = NULL, *in = NULL,
               *cert = NULL;
    opt_t o[] = {{"before", 1, &before_s, NULL}, {"keep-days", 1, &keep_s, NULL}, {"key", 1, &key, NULL},
                 {"out", 1, &outp, NULL},       {"in", 1, &in, NULL},           {"cert", 1, &cert, NULL},
                 {NULL, 0, NULL, NULL}};
    int e = parse_opts(c, argc - 1, argv + 1, o, prog, NULL);
    if (e >= 0) return e;
    smki_store *s = NULL;
    smki_key *k = NULL;
    int rc = 0;
    time_t now = time(NULL), before = now + 1;
    if (strcmp(sub, "verify") == 0) {
        if (!in || !cert) return cli_usage(c, prog, "verify needs --in and --cert");
        uint8_t *data = NULL;
        size_t len = 0, n = 0;
        EVP_PKEY *pub = NULL;
        rc = smki_pub_load_file(cert, &pub);
        if (rc == 0) rc = smki_file_read(in, 1u << 30, &data, &len);
        if (rc == 0) rc = smki_gw_archive_verify(data, len, pub, &n);
        EVP_PKEY_free(pub);
        free(data);
        if (rc == 0) {
            if (c->json) {
                json_w w;
                json_begin(&w, stdout);
                json_bool(&w, "ok", 1);
                json_bool(&w, "verified", 1);
                json_int(&w, "records", (long long)n);
                json_end(&w);
            } else {
                printf("Verified: %s holds %zu record(s), signed by the key of %s.\n", in, n, cert);
            }
        }
        return cli_finish(c, rc);
    }
    if (strcmp(sub, "list") != 0 && strcmp(sub, "archive") != 0)
        return cli_usage(c, prog, "unknown command '%s' (list, archive, verify)", sub);
    if (before_s && keep_s) return cli_usage(c, prog, "give --before or --keep-days, not both");
    if (before_s) GUARD_GOTO(smki_gw_time_parse(before_s, &before), out);
    if (strcmp(sub, "archive") == 0 && !before_s) {
        uint32_t keep = SMKI_GW_LOG_KEEP_DAYS * 86400u;
        if (!keep_s) keep_s = smki_conf_get(c->conf, "gateway.log_keep_days", NULL);
        if (keep_s) GUARD_GOTO(parse_days(keep_s, &keep), out);
        before = now - (time_t)keep;
    }
    if (strcmp(sub, "list") == 0) {
        GUARD_GOTO(open_store(c, &s), out);
        json_w w;
        json_list_open(c, &w, "records");
        rc = smki_gw_log_list(s, (int64_t)before, print_log, c->json ? &w : NULL);
        json_list_close(c, &w);
        goto out;
    }
    if (!key || !outp) return cli_usage(c, prog, "archive needs --key and --out");
    GUARD_GOTO(cli_open_key(c, key, &k), out);
    GUARD_GOTO(open_store(c, &s), out);
    size_t n = 0;
    GUARD_GOTO(smki_gw_log_archive(s, (int64_t)before, now, k, outp, &n), out);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_int(&w, "archived", (long long)n);
        json_int(&w, "before", (long long)before);
        if (n) json_str(&w, "out", outp);
        json_end(&w);
    } else if (n) {
        printf("Archived %zu record(s) of checks before %lld to %s (signed) and pruned them from the store.\n", n,
               (long long)before, outp);
    } else {
        printf("No record of a check before %lld: nothing archived, %s not written.\n", (long long)before, outp);
    }
out:
    smki_key_free(k);
    smki_store_close(s);
    return cli_finish(c, rc);
}

static const char GW_ABOUT[] =
    "smki gbcs gateway: the DCC User Gateway's checks on signed pre-commands (reference §7)\n"
    "and the registry they read: Users and their roles, message-code eligibility, the device\n"
    "inventory, the last counter per originator, anomaly thresholds (signed CSV files) and\n"
    "the quarantine. A message that passes is MACed by the ACB into a command.\n"
    "\n"
    "A first run: user add, device add, (thresholds load), then check.";

int cmd_gbcs_gateway(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd table[] = {
        {"check", gw_check, "run the checks on signed pre-commands; MAC those that pass"},
        {"user", gw_user, "Users: add, list, suspend, resume"},
        {"device", gw_device, "the device inventory: add, list, set-status"},
        {"eligibility", gw_elig, "message codes per role: list, add, remove"},
        {"thresholds", gw_thresholds, "anomaly thresholds from signed CSV files: load, show"},
        {"quarantine", gw_quarantine, "held messages: list, show, release, reject, notify, stats"},
        {"log", gw_log, "the record of checked messages: list, archive (signed, then pruned), verify"},
        {NULL, NULL, NULL},
    };
    return cli_dispatch(c, table, argc - 1, argv + 1, "smki gbcs gateway", GW_ABOUT);
}
