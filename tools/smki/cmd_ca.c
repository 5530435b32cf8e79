/* smki ca: the certificate authority. A hierarchy made in a ceremony (init), device
 * and organisation certificates issued from CSRs (issue), and the store's records
 * (list, show). Argument parsing and output only: the work is in ca/. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca.h"
#include "ca/crl.h"
#include "commands.h"
#include "ra/ra.h"

static const char ABOUT[] =
    "smki ca: the certificate authority of SMKI and DCCKI.\n"
    "\n"
    "Each environment (test, production, or one you define) has its own hierarchy: an\n"
    "SMKI root with an organisation CA (OCA) and a device CA (DCA) under it, and a DCCKI\n"
    "root with its issuing CA. Test certificates come only from the test hierarchy and\n"
    "production ones only from production's: different keys, different policy OIDs, so\n"
    "neither trust store validates the other's certificates.\n"
    "\n"
    "Start with 'smki ca init --env test', then 'smki ca issue --env test --csr FILE\n"
    "--out FILE' ('smki ca batch' for many device CSRs at once). Every certificate is\n"
    "checked against its profile (the same rules as 'smki lint') before it is released,\n"
    "and recorded in the store.";

static const char INIT_HELP[] =
    "Usage: smki ca init --env ENV [--config FILE] [--operator NAME --operator-key KEY]\n"
    "\n"
    "The CA ceremony: build ENV's hierarchy from one reviewable configuration file\n"
    "(docs/ca-ceremony.conf explains every setting; without --config, smki.conf in the\n"
    "home is read):\n"
    "  smki-root   SMKI root, self-signed        OU=00, CN=<root name>\n"
    "  smki-oca    organisation CA, under it     OU=07, CN=<OCA name>, the org/CA policy\n"
    "  smki-dca    device CA, under it           OU=07, CN=<DCA name>, the device policy\n"
    "  dccki-root  DCCKI root, self-signed       CN=<name>, the DCCKI policy\n"
    "  dccki-ica   DCCKI issuing CA, under it    CN=<name>, pathLen 0\n"
    "Keys are generated inside the environment's token (ENV's token setting: smki-test\n"
    "for test), never extractable; a missing token is created when the SO PIN is at hand\n"
    "(SMKI_SO_PIN or --so-pin-file). Certificates go to the store, to\n"
    "<home>/ca/ENV/<name>.pem, and the roots also to ENV's trust store folder.\n"
    "\n"
    "Safe to run again: a CA that exists is reported as 'exists' and never replaced.\n"
    "Refused, with nothing written: an unknown environment; production (or any) whose\n"
    "policy OIDs are still placeholders; a CA name the environment does not list; a key\n"
    "label already on the token without its CA.\n"
    "\n"
    "Needs the user PIN (SMKI_PIN or --pin-file) for token keys.\n"
    "\n"
    "In a store with RA operators the ceremony is an RA action: --operator NAME (and\n"
    "--operator-key KEY, or SMKI_OPERATOR / SMKI_OPERATOR_KEY, or [operators] in\n"
    "smki.conf) takes it, and an audit entry 'ca-init' (each CA made: serial and\n"
    "certificate hash) is written in the transaction that records the CAs: if it\n"
    "cannot be, no CA is recorded. The first ceremony, before any operator exists, is\n"
    "not audited (docs/ra.md: the bootstrap).\n"
    "\n"
    "Production: 'smki ca init --env production --config ceremony.conf' once its policy\n"
    "OIDs are set (until then it is refused, as above).\n"
    "\n"
    "Examples (in a home with a token, its user PIN in SMKI_PIN; the second run reports\n"
    "each CA as 'exists'):\n"
    "  smki ca init --env test\n"
    "  smki --json ca init --env test\n";

static const char ISSUE_HELP[] =
    "Usage: smki ca issue --env ENV --csr FILE --out FILE [--force] [--role ROLE --eui EUI64] [--cn NAME]\n"
    "                     [--der] [--allow-duplicate-key]\n"
    "       smki ca issue --env ENV --profile dccki-server|dccki-client --csr FILE --out FILE [--force]\n"
    "                     [--party SIGNIFIER] [--dns NAME ...] [--ip ADDRESS ...] [--cn NAME] [--der]\n"
    "       (test, or a store with an RA: also --party SIGNIFIER --operator NAME --operator-key KEY)\n"
    "\n"
    "Issue a certificate from a PKCS#10 CSR (PEM or DER) with ENV's hierarchy.\n"
    "The CSR must prove possession of its key (its signature verifies), hold a P-256\n"
    "key with an uncompressed point on the curve, and request exactly one key usage:\n"
    "digitalSignature (DS) or keyAgreement (KA). Only its public key is used: the\n"
    "subject, validity, policy and every extension come from the profile.\n"
    "\n"
    "  Device certificate (the CSR names a device in a hardwareModuleName SAN, as a\n"
    "  GBCS CS02c response does): issued by the device CA, empty subject, the Device ID\n"
    "  from the CSR, no expiry (99991231235959Z). --eui, if given, must agree with it.\n"
    "  Organisation certificate (any other CSR): issued by the organisation CA; needs\n"
    "  --role (Remote Party Role: 02, supplier, 7F, xmlSign, ...) and --eui (the\n"
    "  organisation's EUI-64, e.g. 90-B3-D5-1F-30-01-00-00); --cn adds a CN. Validity\n"
    "  from the environment (10 years; 100 for loadController and xmlSign in test).\n"
    "\n"
    "  DCCKI TLS certificate (--profile dccki-server or dccki-client): issued by the\n"
    "  DCCKI issuing CA for a Party's TLS endpoint. Subject: the Party Signifier as\n"
    "  organizationIdentifier (2.5.4.97; --party, or the CSR subject's own, which must\n"
    "  agree), then --cn if given. keyUsage digitalSignature, extendedKeyUsage serverAuth\n"
    "  or clientAuth (never both), subjectAltName of --dns host names and --ip addresses\n"
    "  (a server needs at least one; each may repeat). The CSR must request keyUsage\n"
    "  digitalSignature and carry no SAN, e.g.\n"
    "    openssl req -new -key tls.key -subj /CN=gw1 -addext keyUsage=critical,digitalSignature\n"
    "  Validity: the environment's dccki_server_years / dccki_client_years, else 1 year,\n"
    "  never past the DCCKI issuing CA's own. P-256 only.\n"
    "\n"
    "The certificate is checked against its profile, recorded in the store with a fresh\n"
    "16-octet serial, then written to --out as PEM (--der: DER); --csr - reads the CSR from\n"
    "standard input, --out - writes the certificate to standard output (the summary then\n"
    "goes to standard error; not with --json). An --out file that exists is refused unless\n"
    "--force (which replaces it), and its folder must be writable: both are checked before\n"
    "anything is issued. A device that already holds an in-use certificate from this CA\n"
    "for the same key is refused (the earlier one: 'smki ca show SERIAL --out FILE')\n"
    "unless --allow-duplicate-key.\n"
    "Prints the serial, the subject's EUI-64 and the profile. Refused, with nothing\n"
    "written: a bad CSR, an EUI-64 mismatch, a missing --role/--eui, an unknown\n"
    "environment, or an environment without its CA (run 'smki ca init' first).\n"
    "\n"
    "The RA's gate. This is the CA's direct path for one certificate. Test certificates\n"
    "go only to registered Testing Participants whose signed agreement is on file, so in\n"
    "the test environment, and in every environment once the store has RA operators,\n"
    "--party names the requesting Party and the RA's eligibility rules apply (the same as\n"
    "'smki ra request': party, User ID, role, Authorised Subscriber, central blocks; for a\n"
    "DCCKI TLS certificate: the Party registered, in standing and an Authorised Subscriber\n"
    "for dccki-server or dccki-client in ENV, its Signifier the one in the certificate); the\n"
    "issuance is recorded in the audit trail, signed by --operator, in the transaction that\n"
    "stores the certificate. Direct issuance is allowed only in the environments of\n"
    "ra.direct_issue (default: test); elsewhere use 'smki ra request submit' (approvals,\n"
    "--type organisation, device-batch, dccki-server or dccki-client).\n"
    "Without an RA in the store, environments other than test issue as before (bootstrap).\n"
    "\n"
    "Examples (" HELP_TEST_HOME "):\n"
    "  smki ca issue --env test --csr ../shared/vectors/gbcs/csr/00db1234567890a0-ds.csr.der \\\n"
    "      --party GITTEST --operator tester --out device.pem\n"
    "  openssl ecparam -name prime256v1 -genkey -noout -out supplier-ds.key\n"
    "  openssl req -new -key supplier-ds.key -subj /CN=GITTEST \\\n"
    "      -addext keyUsage=critical,digitalSignature -out supplier-ds.csr\n"
    "  smki ca issue --env test --csr supplier-ds.csr --role supplier --eui 90-B3-D5-1F-30-01-00-00 \\\n"
    "      --cn GITTEST --party GITTEST --operator tester --out supplier-ds.pem\n"
    "  openssl ecparam -name prime256v1 -genkey -noout -out supplier-ka.key\n"
    "  openssl req -new -key supplier-ka.key -subj /CN=GITTEST \\\n"
    "      -addext keyUsage=critical,keyAgreement -out supplier-ka.csr\n"
    "  smki ca issue --env test --csr - --role supplier --eui 90-B3-D5-1F-30-01-00-00 \\\n"
    "      --party GITTEST --operator tester --out - < supplier-ka.csr > supplier-ka.pem\n"
    "  openssl ecparam -name prime256v1 -genkey -noout -out gw.key\n"
    "  openssl req -new -key gw.key -subj /CN=gw1 -addext keyUsage=critical,digitalSignature -out gw.csr\n"
    "  smki ca issue --env test --profile dccki-server --csr gw.csr --party PARTY0001 \\\n"
    "      --dns gw1.example.net --out gw-server.pem --operator tester\n";

static const char LIST_HELP[] =
    "Usage: smki ca list [--env ENV] [--eui EUI64] [--role ROLE] [--usage ds|ka|ca]\n"
    "                    [--status STATUS] [--profile NAME]\n"
    "\n"
    "List the certificates in the store that match every filter given: serial,\n"
    "profile, usage, role, EUI-64, status, environment and expiry. STATUS is P pending,\n"
    "I in-use, N not-in-use, E expired or R revoked; --usage ca lists CA certificates;\n"
    "NAME is a profile (smki-root, organisation, device, ...).\n"
    "\n"
    "Example:\n"
    "  smki ca list --env test --eui 90-B3-D5-1F-30-01-00-00\n";

static const char SHOW_HELP[] =
    "Usage: smki ca show SERIAL [--pem] [--out FILE [--force]]\n"
    "\n"
    "Show the certificate of this serial (32 hex digits, as 'ca issue' and 'ca list'\n"
    "print it; colons allowed): its issuer, subject EUI-64, profile, usage, role,\n"
    "status and validity. --pem also prints it as PEM; --out FILE writes the PEM to FILE\n"
    "(a FILE that exists is refused unless --force, which replaces it); --out - writes\n"
    "only the PEM, to standard output. Exit 2 if no certificate has that serial.\n";

/* ---- Shared ------------------------------------------------------------------------------ */

static void hex(const uint8_t *p, size_t n, char *out)
{
    smki_hex_encode(p, n, out, 0);
}

static int open_store(smki_cli *c, int read_only, smki_store **s, smki_ca_db *db)
{
    smki_store_opts o = {0, 0, read_only};
    GUARD(smki_store_open(c->store_dir, &o, s));
    int rc = smki_ca_db_open(*s, db);
    if (rc < 0) {
        smki_store_close(*s);
        *s = NULL;
        if (rc == SMKI_E_NOTFOUND && read_only) return SMKI_FAIL(SMKI_E_NOTFOUND, "the store holds no certificates yet");
    }
    return rc;
}

static void json_cert(const smki_cli *c, json_w *w, const smki_cert *x)
{
    char s[64], t[CLI_TIME_MAX], eui[SMKI_EUI64_TEXT_MAX], role[SMKI_ROLE_TEXT_MAX];
    hex(x->serial, SMKI_SERIAL_LEN, s);
    json_str(w, "serial", s);
    hex(x->issuer_ski, SMKI_KEYID_LEN, s);
    json_str(w, "issuer_ski", s);
    hex(x->ski, SMKI_KEYID_LEN, s);
    json_str(w, "ski", s);
    json_str(w, "profile", smki_profile_get(x->profile)->name);
    json_str(w, "usage", smki_cert_usage_name(x->usage));
    if (x->role >= 0) {
        smki_role_format((uint8_t)x->role, role);
        json_str(w, "role", role);
        json_str(w, "role_name", smki_role_name((unsigned)x->role));
    }
    if (x->has_eui) {
        smki_eui64_format(&x->eui, SMKI_EUI64_HYPHEN, eui);
        json_str(w, "eui64", eui);
    }
    json_str(w, "status", smki_cert_status_name(x->status));
    json_str(w, "env", x->env);
    cli_when(c, x->not_before, t);
    json_str(w, "not_before", t);
    cli_when(c, x->not_after, t);
    json_str(w, "not_after", t);
}

/* A revoked certificate's time and reason, if the store has them (read inside the
 * caller's read transaction: the store allows nested reads). */
static int revocation_of(const smki_cli *c, smki_ca_db *db, const smki_cert *x, char when_out[CLI_TIME_MAX],
                         const char **reason)
{
    smki_revocation rev;
    if (!db || x->status != SMKI_STATUS_REVOKED || smki_ca_revocation_get(db, x->issuer_ski, x->serial, &rev) != 0) {
        smki_error_clear();
        return 0;
    }
    cli_when(c, rev.revoked_at, when_out);
    *reason = smki_revoke_reason_name(rev.reason);
    return 1;
}

static void json_revocation(const smki_cli *c, json_w *w, smki_ca_db *db, const smki_cert *x)
{
    char t[CLI_TIME_MAX];
    const char *reason = NULL;
    if (!revocation_of(c, db, x, t, &reason)) return;
    json_str(w, "revoked_at", t);
    json_str(w, "reason", reason);
}

/* ---- The RA's gate ------------------------------------------------------------------------
 * Every action that writes goes through one smki_ra_* entry point, which decides whether
 * it is the RA's (and needs the operator) or the bootstrap's. The command only opens
 * the store with its RA and the operator's key when one is named (--operator, or
 * SMKI_OPERATOR). */
int ca_session_open(smki_cli *c, const char *env, int issues, const char *op, const char *op_key, ca_session *x)
{
    memset(x, 0, sizeof *x);
    smki_ra_policy pol;
    smki_store_opts so = {0, 0, 0};
    int needs = 0;
    GUARD(smki_ra_policy_load(c->conf, &pol));
    GUARD(smki_store_open(c->store_dir, &so, &x->s));
    GUARD(smki_ra_open(x->s, &pol, &x->ra));
    GUARD(smki_ra_needs_operator(x->ra, env, issues, &needs));
    const char *name = op ? op : getenv("SMKI_OPERATOR");
    if (!needs || !name || !*name) return 0; /* the entry point says what is missing */
    GUARD(ra_cli_actor(c, name, op_key, &x->op_k));
    x->actor.name = name;
    x->actor.key = x->op_k;
    x->by = &x->actor;
    ra_cli_checkpoint_key(c, x->ra); /* a checkpoint due without it fails the action */
    return 0;
}

void ca_session_close(ca_session *x)
{
    smki_ra_close(x->ra);
    smki_key_free(x->op_k);
    smki_store_close(x->s);
    memset(x, 0, sizeof *x);
}

/* A command that needs what 'ca init' made never creates the store. */
static int need_store(smki_cli *c, const char *env)
{
    ENSURE(smki_store_exists(c->store_dir), SMKI_E_NOTFOUND,
           "environment %s has no CA yet: run 'smki ca init --env %s' first", env, env);
    return 0;
}

/* The ceremony's configuration: --config FILE, or the home's smki.conf. */
int ca_ceremony_conf(smki_cli *c, const char *config, smki_conf **own, const smki_conf **conf)
{
    *own = NULL;
    *conf = c->conf;
    if (!config) return 0;
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = cli_read(config, 1 << 20, &bytes, &len);
    if (rc == 0) rc = smki_conf_parse(bytes, len, strcmp(config, "-") == 0 ? "standard input" : config, own);
    free(bytes);
    *conf = *own;
    return rc;
}

/* ---- init --------------------------------------------------------------------------------- */

static void json_init(const smki_cli *c, const smki_ca_init_report *rep, int made_token)
{
    json_w w;
    json_begin(&w, stdout);
    json_bool(&w, "ok", 1);
    json_str(&w, "env", rep->env);
    json_str(&w, "token", rep->token);
    json_bool(&w, "token_created", made_token);
    json_int(&w, "created", (long long)rep->created);
    json_key_arr(&w, "cas");
    for (size_t i = 0; i < rep->n; i++) {
        const smki_ca_init_item *it = &rep->items[i];
        char hx[64], t[CLI_TIME_MAX];
        json_arr_obj(&w);
        json_str(&w, "name", smki_ca_kind_name(it->kind));
        json_str(&w, "state", it->created ? "created" : "exists");
        json_str(&w, "cn", it->cn);
        hex(it->serial, SMKI_SERIAL_LEN, hx);
        json_str(&w, "serial", hx);
        hex(it->ski, SMKI_KEYID_LEN, hx);
        json_str(&w, "ski", hx);
        cli_when(c, it->not_after, t);
        json_str(&w, "not_after", t);
        json_str(&w, "key", it->key_ref);
        json_str(&w, "file", it->path);
        json_close_obj(&w);
    }
    json_close_arr(&w);
    json_end(&w);
}

static void print_init(const smki_cli *c, const smki_ca_init_report *rep, int made_token)
{
    if (c->json) {
        json_init(c, rep, made_token);
        return;
    }
    if (made_token) printf("Created token '%s' for the CA keys.\n", rep->token);
    printf("Environment %s: %zu CA(s) created, %zu existing (keys in token '%s').\n", rep->env, rep->created,
           rep->n - rep->created, rep->token);
    for (size_t i = 0; i < rep->n; i++) {
        const smki_ca_init_item *it = &rep->items[i];
        char hx[64], t[CLI_TIME_MAX];
        hex(it->serial, SMKI_SERIAL_LEN, hx);
        cli_when(c, it->not_after, t);
        printf("  %-8s %-10s CN=%-20s serial %s  until %s\n", it->created ? "created" : "exists",
               smki_ca_kind_name(it->kind), it->cn, hx, t);
        printf("           %s\n", it->path);
    }
}

typedef struct {
    const char *env, *config, *op, *op_key;
} init_args;

/* The ceremony through the RA's entry point; the environment's token is created on the
 * spot when it is missing and the SO PIN is at hand. */
static int init_run(smki_cli *c, const init_args *a, smki_ca_init_report *rep, int *made_token)
{
    smki_conf *own = NULL;
    const smki_conf *conf = NULL;
    ca_session x = {0};
    int rc = cli_home(c);
    if (rc == 0 && ca_ceremony_conf(c, a->config, &own, &conf) < 0) rc = smki_error_wrap("ceremony configuration");
    if (rc == 0) rc = smki_ca_env_check(conf, c->store_dir, a->env);
    if (rc == 0) rc = cli_pin(c, 0);
    if (rc >= 0) rc = ca_session_open(c, a->env, 0, a->op, a->op_key, &x);
    smki_ca_init_opts o = {&c->hsm, c->home, 0, NULL, NULL};
    if (rc >= 0) rc = smki_ra_ca_init(x.ra, x.by, a->env, conf, &o, rep);
    if (rc == SMKI_E_NOTFOUND && rep->token_missing && c->has_pin && cli_so_pin(c, 0) > 0) {
        smki_token_info info;
        char token[64];
        snprintf(token, sizeof token, "%s", rep->token);
        rc = smki_token_init(&c->hsm, token, c->so_pin, c->pin, made_token, &info);
        if (rc == 0) rc = smki_ra_ca_init(x.ra, x.by, a->env, conf, &o, rep);
    }
    ca_session_close(&x);
    smki_conf_free(own);
    return rc;
}

static int ca_init(smki_cli *c, int argc, char **argv)
{
    init_args a = {0};
    const cli_opt opts[] = {CLI_VALUE("env", &a.env), CLI_VALUE("config", &a.config), CLI_VALUE("operator", &a.op),
                            CLI_VALUE("operator-key", &a.op_key), CLI_END};
    const cli_spec spec = {"smki ca init", INIT_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!a.env) return cli_usage(c, "smki ca init", "--env is required (test, production, or one you configured)");
    c->may_create_home = 1; /* the ceremony may start a new home */
    int made_token = 0;
    smki_ca_init_report *rep = calloc(1, sizeof *rep);
    int rc = rep ? init_run(c, &a, rep, &made_token) : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    if (rc >= 0) print_init(c, rep, made_token);
    free(rep);
    return rc < 0 ? cli_fail(c, rc) : EXIT_OK;
}

/* ---- issue --------------------------------------------------------------------------------- */

typedef struct {
    const char *env, *csr_path, *out, *role_s, *eui_s, *cn, *profile_s, *party, *op, *op_key;
    cli_list dns, ips;
    int der, allow_dup, force;
} issue_args;

/* What the options name: the profile (none: chosen from the CSR), the role, the EUI-64. */
typedef struct {
    smki_profile_id profile;
    uint8_t role;
    smki_eui64_t eui;
} issue_want;

static int issue_parse(smki_cli *c, int argc, char **argv, issue_args *a)
{
    const cli_opt opts[] = {CLI_VALUE("env", &a->env),         CLI_VALUE("csr", &a->csr_path),
                            CLI_VALUE("out", &a->out),         CLI_FLAG("force", &a->force),
                            CLI_VALUE("role", &a->role_s),     CLI_VALUE("eui", &a->eui_s),
                            CLI_VALUE("cn", &a->cn),           CLI_FLAG("der", &a->der),
                            CLI_VALUE("profile", &a->profile_s), CLI_VALUE("party", &a->party),
                            CLI_LIST("dns", &a->dns),          CLI_LIST("ip", &a->ips),
                            CLI_VALUE("operator", &a->op),     CLI_VALUE("operator-key", &a->op_key),
                            CLI_FLAG("allow-duplicate-key", &a->allow_dup), CLI_END};
    const cli_spec spec = {"smki ca issue", ISSUE_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!a->env || !a->csr_path || !a->out) return cli_usage(c, "smki ca issue", "--env, --csr and --out are required");
    if (a->dns.n > 16 || a->ips.n > 16) return cli_usage(c, "smki ca issue", "at most 16 --dns and 16 --ip");
    if (strcmp(a->out, "-") == 0 && c->json)
        return cli_usage(c, "smki ca issue", "--out - writes the certificate where --json writes its report: give --out FILE");
    return CLI_GO;
}

/* The options checked before anything is read or issued, --out too: it can be written
 * (an existing file only with --force), so a re-run never issues twice. */
static int issue_check(const issue_args *a, issue_want *w)
{
    w->profile = SMKI_PROFILE_UNKNOWN;
    if (a->profile_s) {
        const smki_profile *p = smki_profile_by_name(a->profile_s);
        ENSURE(p && p->id != SMKI_PROFILE_UNKNOWN, SMKI_E_USAGE,
               "--profile is organisation, device, dccki-server or dccki-client, not '%.32s'", a->profile_s);
        w->profile = p->id;
    }
    if (a->role_s) GUARD(smki_role_parse(a->role_s, &w->role));
    if (a->eui_s) GUARD(smki_eui64_parse(a->eui_s, &w->eui));
    return cli_write_check(a->out, a->force);
}

static int read_csr(const char *path, smki_csr **csr)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = cli_read(path, SMKI_CSR_MAX, &bytes, &len);
    if (rc == 0) rc = smki_csr_parse(bytes, len, csr);
    if (rc < 0) smki_error_wrap("%s", strcmp(path, "-") == 0 ? "standard input" : path);
    free(bytes);
    return rc;
}

/* Read the CSR and issue through the RA's gate. */
static int issue_run(smki_cli *c, const issue_args *a, const issue_want *w, smki_cert *cert, char *party_used)
{
    smki_csr *csr = NULL;
    ca_session x = {0};
    int rc = cli_home(c);
    if (rc == 0) rc = read_csr(a->csr_path, &csr);
    if (rc == 0) rc = smki_ca_env_check(c->conf, c->store_dir, a->env);
    if (rc == 0) rc = need_store(c, a->env);
    if (rc == 0) rc = cli_pin(c, 0);
    if (rc >= 0) rc = ca_session_open(c, a->env, 1, a->op, a->op_key, &x);
    if (rc >= 0) {
        smki_ra_issue_req r = {.env = a->env, .csr = csr, .profile = w->profile, .party = a->party,
                               .role = a->role_s ? w->role : -1, .eui = a->eui_s ? &w->eui : NULL, .cn = a->cn,
                               .dns = a->dns.v, .n_dns = a->dns.n, .ips = a->ips.v, .n_ips = a->ips.n,
                               .hsm = &c->hsm, .allow_duplicate_key = a->allow_dup};
        rc = smki_ra_issue(x.ra, x.by, &r, cert, party_used);
    }
    ca_session_close(&x);
    smki_csr_free(csr);
    return rc;
}

/* The certificate to --out ("-": standard output), PEM or DER. */
static int write_cert(const smki_cert *cert, const issue_args *a)
{
    char pem[4096];
    size_t pem_len = 0;
    int rc = a->der ? 0 : smki_cert_to_pem(cert->der, cert->der_len, pem, sizeof pem, &pem_len);
    if (rc == 0)
        rc = a->der ? cli_write(a->out, cert->der, cert->der_len, 0644, a->force)
                    : cli_write(a->out, pem, pem_len, 0644, a->force);
    if (rc < 0) {
        char serial[64];
        hex(cert->serial, SMKI_SERIAL_LEN, serial);
        smki_error_wrap("certificate %s is issued and in the store ('smki ca show %s --out FILE' writes it), but "
                        "not written",
                        serial, serial);
    }
    return rc;
}

/* The summary: on standard output, or on standard error when the certificate went there. */
static void print_issued(const smki_cli *c, const smki_cert *cert, const char *party, const char *out)
{
    int tls = cert->profile == SMKI_PROFILE_DCCKI_SERVER || cert->profile == SMKI_PROFILE_DCCKI_CLIENT;
    const char *profile = smki_profile_get(cert->profile)->name;
    int piped = strcmp(out, "-") == 0;
    FILE *f = piped ? stderr : stdout;
    char serial[64], t[CLI_TIME_MAX];
    hex(cert->serial, SMKI_SERIAL_LEN, serial);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_cert(c, &w, cert);
        if (tls) json_str(&w, "party", party);
        json_str(&w, "file", out);
        json_end(&w);
    } else if (tls) {
        cli_when(c, cert->not_after, t);
        fprintf(f, "Issued %s certificate for Party %s in environment %s.\n", profile, party, cert->env);
        fprintf(f, "  serial   %s\n  party    %s\n  profile  %s\n  until    %s\n  file     %s\n", serial, party,
                profile, t, piped ? "(standard output)" : out);
    } else {
        char eui_t[SMKI_EUI64_TEXT_MAX] = "-", role_t[SMKI_ROLE_TEXT_MAX] = "";
        if (cert->has_eui) smki_eui64_format(&cert->eui, SMKI_EUI64_HYPHEN, eui_t);
        if (cert->role >= 0) smki_role_format((uint8_t)cert->role, role_t);
        fprintf(f, "Issued %s %s certificate%s%s%s for %s in environment %s.\n", profile, smki_cert_usage_name(cert->usage),
                cert->role >= 0 ? " (role " : "", role_t, cert->role >= 0 ? ")" : "", eui_t, cert->env);
        fprintf(f, "  serial   %s\n  EUI-64   %s\n  profile  %s\n  file     %s\n", serial, eui_t, profile,
                piped ? "(standard output)" : out);
    }
}

static int ca_issue(smki_cli *c, int argc, char **argv)
{
    issue_args a = {0};
    int stop = issue_parse(c, argc, argv, &a);
    if (stop != CLI_GO) return stop;
    issue_want want;
    char party_used[SMKI_PARTY_MAX] = "";
    int rc = issue_check(&a, &want);
    if (rc < 0) return cli_fail(c, rc);
    smki_cert *cert = calloc(1, sizeof *cert);
    rc = cert ? issue_run(c, &a, &want, cert, party_used) : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    if (rc >= 0) rc = write_cert(cert, &a);
    if (rc >= 0) print_issued(c, cert, party_used, a.out);
    free(cert);
    return rc < 0 ? cli_fail(c, rc) : EXIT_OK;
}

/* ---- list and show -------------------------------------------------------------------------- */

typedef struct {
    smki_cli *c;
    json_w *w;
    size_t n;
    smki_ca_db *db;
} list_run;

static int list_one(const smki_cert *x, void *arg)
{
    list_run *run = arg;
    run->n++;
    if (run->w) {
        json_arr_obj(run->w);
        json_cert(run->c, run->w, x);
        json_revocation(run->c, run->w, run->db, x);
        json_close_obj(run->w);
        return 0;
    }
    char s[64], t[CLI_TIME_MAX], eui[SMKI_EUI64_TEXT_MAX] = "-", role[SMKI_ROLE_TEXT_MAX] = "-";
    hex(x->serial, SMKI_SERIAL_LEN, s);
    cli_when(run->c, x->not_after, t);
    if (x->has_eui) smki_eui64_format(&x->eui, SMKI_EUI64_HYPHEN, eui);
    if (x->role >= 0) smki_role_format((uint8_t)x->role, role);
    if (run->n == 1)
        printf("%-32s  %-12s %-5s %-4s %-23s %-10s %-10s %s\n", "SERIAL", "PROFILE", "USAGE", "ROLE", "EUI-64",
               "STATUS", "ENV", "NOT AFTER");
    printf("%-32s  %-12s %-5s %-4s %-23s %-10s %-10s %s\n", s, smki_profile_get(x->profile)->name,
           smki_cert_usage_name(x->usage), role, eui, smki_cert_status_name(x->status), x->env, t);
    return 0;
}

typedef struct {
    const char *env, *eui, *role, *usage, *status, *profile;
} list_args;

/* The filters as a query (q->eui points at *eui). */
static int list_query(const list_args *a, smki_ca_query *q, smki_eui64_t *eui)
{
    q->env = a->env;
    if (a->eui) GUARD(smki_eui64_parse(a->eui, eui));
    if (a->eui) q->eui = eui;
    uint8_t role;
    if (a->role) GUARD(smki_role_parse(a->role, &role));
    if (a->role) q->role = role;
    if (a->usage && smki_cert_usage_parse(a->usage, &q->usage) < 0) return smki_error_wrap("--usage");
    smki_cert_status st;
    if (a->status) GUARD(smki_cert_status_parse(a->status, &st));
    if (a->status) q->status = st;
    const smki_profile *p = a->profile ? smki_profile_by_name(a->profile) : NULL;
    ENSURE(!a->profile || (p && p->id != SMKI_PROFILE_UNKNOWN), SMKI_E_USAGE, "no profile '%.32s'", a->profile);
    if (p) q->profile = p->id;
    return 0;
}

/* The store read-only, or *empty when there is none (or no certificate database) yet. */
static int open_for_reading(smki_cli *c, smki_store **s, smki_ca_db *db, int *empty)
{
    *s = NULL;
    *empty = !smki_store_exists(c->store_dir);
    if (*empty) return 0;
    int rc = open_store(c, 1, s, db);
    if (rc != SMKI_E_NOTFOUND) return rc;
    smki_error_clear();
    *empty = 1;
    return 0;
}

static int ca_list(smki_cli *c, int argc, char **argv)
{
    list_args a = {0};
    const cli_opt opts[] = {CLI_VALUE("env", &a.env),       CLI_VALUE("eui", &a.eui),
                            CLI_VALUE("role", &a.role),     CLI_VALUE("usage", &a.usage),
                            CLI_VALUE("status", &a.status), CLI_VALUE("profile", &a.profile),
                            CLI_END};
    const cli_spec spec = {"smki ca list", LIST_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    smki_ca_query q = SMKI_CA_QUERY_ALL;
    smki_eui64_t eui;
    smki_store *s = NULL;
    smki_ca_db db;
    int empty = 1;
    int rc = list_query(&a, &q, &eui);
    if (rc == 0) rc = cli_home(c);
    if (rc == 0) rc = open_for_reading(c, &s, &db, &empty);
    if (rc < 0) return cli_fail(c, rc);
    json_w w;
    list_run run = {c, c->json ? &w : NULL, 0, empty ? NULL : &db};
    json_list_open(c, &w, "certificates");
    if (!empty) rc = smki_ca_find(&db, &q, list_one, &run);
    smki_store_close(s);
    if (c->json) {
        json_close_arr(&w);
        json_int(&w, "count", (long long)run.n);
        json_end(&w);
    } else if (rc == 0) {
        printf("%zu certificate(s)\n", run.n);
    }
    return cli_finish(c, rc);
}

typedef struct {
    smki_cli *c;
    int pem, force;
    const char *out;
    size_t n;
    json_w *w;
    smki_ca_db *db;
} show_run;

static void show_human(const show_run *run, const smki_cert *x, const char *pem)
{
    char s[64], t1[CLI_TIME_MAX], t2[CLI_TIME_MAX], eui[SMKI_EUI64_TEXT_MAX] = "-", role[SMKI_ROLE_TEXT_MAX] = "-";
    hex(x->serial, SMKI_SERIAL_LEN, s);
    if (x->has_eui) smki_eui64_format(&x->eui, SMKI_EUI64_HYPHEN, eui);
    if (x->role >= 0) smki_role_format((uint8_t)x->role, role);
    cli_when(run->c, x->not_before, t1);
    cli_when(run->c, x->not_after, t2);
    printf("Certificate %s\n", s);
    printf("  profile     %s (%s)\n", smki_profile_get(x->profile)->name, smki_profile_get(x->profile)->title);
    printf("  usage       %s\n", smki_cert_usage_name(x->usage));
    printf("  role        %s%s%s\n", role, x->role >= 0 ? " " : "", x->role >= 0 ? smki_role_name((unsigned)x->role) : "");
    printf("  EUI-64      %s\n", eui);
    printf("  status      %s\n", smki_cert_status_name(x->status));
    char rt[CLI_TIME_MAX];
    const char *reason = NULL;
    if (revocation_of(run->c, run->db, x, rt, &reason)) printf("  revoked     %s (%s)\n", rt, reason);
    printf("  environment %s\n", x->env);
    printf("  valid       %s to %s\n", t1, t2);
    hex(x->ski, SMKI_KEYID_LEN, s);
    printf("  SKI         %s\n", s);
    hex(x->issuer_ski, SMKI_KEYID_LEN, s);
    printf("  issuer SKI  %s\n", s);
    if (run->out) printf("  written to  %s\n", run->out);
    if (run->pem) fputs(pem, stdout);
}

/* One certificate of the serial (two issuers may share one: --out takes the first). */
static int show_one(const smki_cert *x, void *arg)
{
    show_run *run = arg;
    run->n++;
    char pem[4096];
    size_t pem_len;
    GUARD(smki_cert_to_pem(x->der, x->der_len, pem, sizeof pem, &pem_len));
    if (run->out && run->n == 1) GUARD(cli_write(run->out, pem, pem_len, 0644, run->force));
    if (run->w) {
        json_arr_obj(run->w);
        json_cert(run->c, run->w, x);
        json_revocation(run->c, run->w, run->db, x);
        json_str(run->w, "pem", pem);
        json_close_obj(run->w);
    } else if (!run->out || strcmp(run->out, "-") != 0) {
        show_human(run, x, pem);
    }
    return 0;
}

static int count_one(const smki_cert *x, void *arg)
{
    (void)x;
    ++*(size_t *)arg;
    return 0;
}

/* The store opened on the certificates of serial; "not found" is one error, in JSON too. */
static int show_open(smki_cli *c, const char *text, const uint8_t *serial, smki_store **s, smki_ca_db *db)
{
    int empty = 1;
    size_t found = 0;
    smki_ca_query q = SMKI_CA_QUERY_ALL;
    q.serial = serial;
    GUARD(cli_home(c));
    GUARD(open_for_reading(c, s, db, &empty));
    int rc = empty ? 0 : smki_ca_find(db, &q, count_one, &found);
    if (rc == 0 && found == 0) rc = SMKI_FAIL(SMKI_E_NOTFOUND, "no certificate of serial %s", text);
    if (rc < 0) {
        smki_store_close(*s);
        *s = NULL;
    }
    return rc;
}

static int ca_show(smki_cli *c, int argc, char **argv)
{
    show_run run = {c, 0, 0, NULL, 0, NULL, NULL};
    const char *pos[1];
    const cli_opt opts[] = {CLI_FLAG("pem", &run.pem), CLI_VALUE("out", &run.out), CLI_FLAG("force", &run.force),
                            CLI_END};
    const cli_spec spec = {"smki ca show", SHOW_HELP, opts, "one SERIAL", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    if (run.out && strcmp(run.out, "-") == 0 && c->json)
        return cli_usage(c, "smki ca show", "--out - writes the PEM where --json writes its report: give --out FILE");
    uint8_t serial[SMKI_SERIAL_LEN];
    smki_store *s = NULL;
    smki_ca_db db;
    int rc = smki_serial_parse(pos[0], serial);
    if (rc == 0 && run.out) rc = cli_write_check(run.out, run.force);
    if (rc == 0) rc = show_open(c, pos[0], serial, &s, &db);
    if (rc < 0) return cli_fail(c, rc);
    smki_ca_query q = SMKI_CA_QUERY_ALL;
    q.serial = serial;
    json_w w;
    if (c->json) run.w = &w;
    json_list_open(c, &w, "certificates");
    run.db = &db;
    rc = smki_ca_find(&db, &q, show_one, &run);
    smki_store_close(s);
    json_list_close(c, &w);
    return cli_finish(c, rc);
}

/* ---- revoke, crl, arl ------------------------------------------------------------------------- */

static const char REVOKE_HELP[] =
    "Usage: smki ca revoke SERIAL --env ENV --reason REASON [--issuer CA|SKI]\n"
    "                      [--operator NAME --operator-key KEY]\n"
    "\n"
    "In a store with an RA (registered operators), revocation is an RA action: this direct\n"
    "path needs --operator, is recorded in the audit trail in the same transaction, and is\n"
    "allowed only in the environments of ra.direct_issue (default: test); elsewhere submit\n"
    "'smki ra revoke' (two approvals).\n"
    "\n"
    "Revoke a certificate of ENV: its status becomes R (revoked) in the store, with the\n"
    "time and the reason, and it is listed on the next list its CA publishes:\n"
    "  organisation and DCCKI TLS certificates  on their issuing CA's CRL ('smki ca crl')\n"
    "  CA certificates (smki-oca, smki-dca,      on their root's ARL ('smki ca arl')\n"
    "  dccki-ica)\n"
    "A revocation is final. Device certificates are replaced, not revoked (issue the\n"
    "successor); roots are withdrawn from trust stores, not revoked: both are refused.\n"
    "A revoked CA issues nothing more.\n"
    "\n"
    "REASON (RFC 5280 5.3.1): unspecified (0), keyCompromise (1), cACompromise (2),\n"
    "affiliationChanged (3), superseded (4), cessationOfOperation (5),\n"
    "privilegeWithdrawn (9); names in any case, '-' allowed (key-compromise).\n"
    "SERIAL: 32 hex digits as 'ca issue' and 'ca list' print it. --issuer, needed only\n"
    "when two issuers used the serial: a CA (smki-oca, oca, smki-dca, dca, dccki-ica,\n"
    "smki-root, dccki-root) or its SKI (16 hex digits).\n"
    "\n"
    "Refused, with nothing written (exit 2, or 1 for a usage error): an unknown serial,\n"
    "a certificate already revoked, a device certificate, a root, an unknown reason.\n"
    "\n"
    "Examples (" HELP_TEST_HOME "; a supplier certificate issued first, its\n"
    "serial as openssl prints it, or as 'ca list' does):\n"
    "  openssl ecparam -name prime256v1 -genkey -noout -out supplier-ds.key\n"
    "  openssl req -new -key supplier-ds.key -subj /CN=GITTEST \\\n"
    "      -addext keyUsage=critical,digitalSignature -out supplier-ds.csr\n"
    "  smki ca issue --env test --csr supplier-ds.csr --role supplier --eui 90-B3-D5-1F-30-01-00-00 \\\n"
    "      --party GITTEST --operator tester --out supplier-ds.pem\n"
    "  SERIAL=$(openssl x509 -in supplier-ds.pem -noout -serial | cut -d= -f2)\n"
    "  smki ca revoke \"$SERIAL\" --env test --reason keyCompromise --operator tester\n"
    "  smki ca crl --env test --ca oca --operator tester\n"
    "  smki ca revoke \"$SERIAL\" --env test --reason keyCompromise --operator tester  # exits 2: revoked\n";

static const char CRL_HELP[] =
    "Usage: smki ca crl --env ENV [--ca oca|dca|dccki-ica|SKI] [--config FILE]\n"
    "                   [--operator NAME --operator-key KEY]\n"
    "\n"
    "Publish now the CRL of ENV's issuing CA (without --ca: of each one ENV has): every\n"
    "certificate that CA issued and that is revoked, with its revocation time and reason.\n"
    "RFC 5280 v2 list: issuer = the CA, thisUpdate = now, nextUpdate = now + crl_hours\n"
    "(setting under [ca.ENV], default 168 = 7 days), cRLNumber one above the last, the\n"
    "CA's authorityKeyIdentifier; signed with the CA's key in the token (needs the user\n"
    "PIN: SMKI_PIN or --pin-file), checked against the CA certificate, recorded in the\n"
    "store as the CA's latest and written atomically to <home>/ca/ENV/<ca>.crl (DER).\n"
    "\n"
    "In a store with RA operators publishing is an RA action: --operator NAME (and\n"
    "--operator-key KEY, or SMKI_OPERATOR / SMKI_OPERATOR_KEY, or [operators] in\n"
    "smki.conf); each list's audit entry (crl-publish / arl-publish: environment, CA,\n"
    "number, entries, SHA-256) is written in the transaction that records it, and a list\n"
    "whose entry cannot be written is neither recorded nor published.\n"
    "\n"
    "--ca SKI (the CA certificate's 16 hex digits, 'smki ca list --usage ca') names one CA,\n"
    "also one superseded after a CA compromise recovery: its last CRL (all it issued are\n"
    "revoked with it) is signed with its own key while that key is in the token, kept apart\n"
    "from its successor's (numbered on its own) and written to <ca>-<its serial>.crl.\n"
    "\n"
    "Examples (" HELP_TEST_HOME "):\n"
    "  smki ca crl --env test --operator tester\n"
    "  openssl crl -inform DER -in \"$SMKI_HOME/ca/test/smki-oca.crl\" -noout -text\n";

static const char ARL_HELP[] =
    "Usage: smki ca arl --env ENV [--ca smki-root|dccki-root] [--config FILE]\n"
    "                   [--operator NAME --operator-key KEY]\n"
    "\n"
    "Publish now the Authority Revocation List of ENV's root (without --ca: of both the\n"
    "SMKI and the DCCKI root): the CA certificates it issued that are revoked. As 'smki\n"
    "ca crl' otherwise, with nextUpdate = now + arl_hours (setting under [ca.ENV],\n"
    "default 720 = 30 days); written to <home>/ca/ENV/<root>.crl (DER). In a store with RA\n"
    "operators: --operator, audited as 'arl-publish' in the same transaction.\n";

typedef struct {
    const char *env, *issuer, *reason, *op, *op_key;
} revoke_args;

static int revoke_run(smki_cli *c, const revoke_args *a, const char *serial_s, smki_cert *cert, smki_revocation *rev,
                      int *managed)
{
    uint8_t serial[SMKI_SERIAL_LEN];
    smki_revoke_reason reason;
    ca_session x = {0};
    int rc = smki_serial_parse(serial_s, serial);
    if (rc == 0) rc = smki_revoke_reason_parse(a->reason, &reason);
    if (rc == 0) rc = cli_home(c);
    if (rc == 0 && !smki_store_exists(c->store_dir))
        rc = SMKI_FAIL(SMKI_E_NOTFOUND, "no certificate of serial %s: the store is empty", serial_s);
    if (rc == 0) rc = ca_session_open(c, a->env, 0, a->op, a->op_key, &x);
    if (rc == 0) {
        smki_ra_revoke_req r = {a->env, serial, a->issuer, reason};
        rc = smki_ra_revoke(x.ra, x.by, &r, cert, rev, managed);
    }
    ca_session_close(&x);
    return rc;
}

static void print_revoked(const smki_cli *c, const smki_cert *cert, const smki_revocation *rev, int managed)
{
    const smki_profile *p = smki_profile_get(cert->profile);
    char t[CLI_TIME_MAX], hx[64];
    cli_when(c, rev->revoked_at, t);
    hex(cert->serial, SMKI_SERIAL_LEN, hx);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_cert(c, &w, cert);
        json_str(&w, "reason", smki_revoke_reason_name(rev->reason));
        json_int(&w, "reason_code", (long long)rev->reason);
        json_str(&w, "revoked_at", t);
        json_str(&w, "list", p->is_ca ? "ARL" : "CRL");
        json_end(&w);
        return;
    }
    printf("Revoked %s certificate %s of environment %s: %s, at %s.\n", p->name, hx, cert->env,
           smki_revoke_reason_name(rev->reason), t);
    printf("It is listed on the next %s: publish it now with 'smki ca %s --env %s%s'.\n", p->is_ca ? "ARL" : "CRL",
           p->is_ca ? "arl" : "crl", cert->env, managed ? " --operator NAME" : "");
}

static int ca_revoke(smki_cli *c, int argc, char **argv)
{
    revoke_args a = {0};
    const char *pos[1];
    const cli_opt opts[] = {CLI_VALUE("env", &a.env),         CLI_VALUE("issuer", &a.issuer),
                            CLI_VALUE("reason", &a.reason),   CLI_VALUE("operator", &a.op),
                            CLI_VALUE("operator-key", &a.op_key), CLI_END};
    const cli_spec spec = {"smki ca revoke", REVOKE_HELP, opts, "one SERIAL", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    if (!a.env || !a.reason) return cli_usage(c, "smki ca revoke", "--env and --reason are required");
    smki_revocation rev;
    int managed = 0;
    smki_cert *cert = calloc(1, sizeof *cert);
    int rc = cert ? revoke_run(c, &a, pos[0], cert, &rev, &managed) : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    if (rc == 0) print_revoked(c, cert, &rev, managed);
    free(cert);
    return rc < 0 ? cli_fail(c, rc) : EXIT_OK;
}

typedef struct {
    const char *env, *ca, *config, *op, *op_key;
    int arl;
} lists_args;

/* crl and arl: publish the lists of the given CA (those the environment has, when none
 * was named), through the RA's entry point. */
static int lists_run(smki_cli *c, const lists_args *a, smki_crl crls[SMKI_CA_KIND_COUNT], size_t *made)
{
    smki_conf *own = NULL;
    const smki_conf *conf = c->conf;
    ca_session x = {0};
    int rc = cli_home(c);
    if (rc == 0) rc = ca_ceremony_conf(c, a->config, &own, &conf);
    if (rc == 0) rc = need_store(c, a->env);
    if (rc == 0) rc = cli_pin(c, 0);
    if (rc >= 0) rc = ca_session_open(c, a->env, 0, a->op, a->op_key, &x);
    if (rc >= 0) {
        smki_ra_lists_req r = {a->env, a->arl, a->ca, conf, &c->hsm, c->home, (int64_t)time(NULL)};
        rc = smki_ra_lists_publish(x.ra, x.by, &r, crls, made);
    }
    ca_session_close(&x);
    smki_conf_free(own);
    return rc;
}

static void print_lists(const smki_cli *c, const lists_args *a, smki_crl *crls, size_t made)
{
    json_w w;
    if (c->json) {
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "env", a->env);
        json_key_arr(&w, a->arl ? "arls" : "crls");
    }
    for (size_t i = 0; i < made; i++) {
        const smki_crl *l = &crls[i];
        char t1[CLI_TIME_MAX], t2[CLI_TIME_MAX];
        cli_when(c, l->this_update, t1);
        cli_when(c, l->next_update, t2);
        if (c->json) {
            json_arr_obj(&w);
            json_str(&w, "ca", smki_ca_kind_name(l->ca));
            json_int(&w, "number", (long long)l->number);
            json_int(&w, "entries", (long long)l->entries);
            json_str(&w, "this_update", t1);
            json_str(&w, "next_update", t2);
            json_str(&w, "file", l->path);
            json_close_obj(&w);
        } else {
            printf("Published %s %llu of %s (%s): %zu revoked, next update %s\n    %s\n", a->arl ? "ARL" : "CRL",
                   (unsigned long long)l->number, smki_ca_kind_name(l->ca), a->env, l->entries, t2, l->path);
        }
    }
    if (c->json) {
        json_close_arr(&w);
        json_end(&w);
    }
}

static int publish_lists(smki_cli *c, int argc, char **argv, int arl)
{
    const char *prog = arl ? "smki ca arl" : "smki ca crl";
    lists_args a = {.arl = arl};
    const cli_opt opts[] = {CLI_VALUE("env", &a.env),           CLI_VALUE("ca", &a.ca),
                            CLI_VALUE("config", &a.config),     CLI_VALUE("operator", &a.op),
                            CLI_VALUE("operator-key", &a.op_key), CLI_END};
    const cli_spec spec = {prog, arl ? ARL_HELP : CRL_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!a.env) return cli_usage(c, prog, "--env is required");
    smki_crl crls[SMKI_CA_KIND_COUNT];
    size_t made = 0;
    int rc = lists_run(c, &a, crls, &made);
    if (rc < 0) return cli_fail(c, rc);
    print_lists(c, &a, crls, made);
    for (size_t i = 0; i < made; i++) smki_crl_clear(&crls[i]);
    return EXIT_OK;
}

static int ca_crl(smki_cli *c, int argc, char **argv)
{
    return publish_lists(c, argc, argv, 0);
}

static int ca_arl(smki_cli *c, int argc, char **argv)
{
    return publish_lists(c, argc, argv, 1);
}

static const cli_cmd CA_COMMANDS[] = {
    {"init", ca_init, "the ceremony: build an environment's CA hierarchy (safe to re-run)"},
    {"issue", ca_issue, "issue a device or organisation certificate from a CSR"},
    {"batch", cmd_ca_batch, "issue device certificates for many CSRs at once (resumable)"},
    {"list", ca_list, "list the certificates in the store, with filters"},
    {"show", ca_show, "show one certificate by serial"},
    {"revoke", ca_revoke, "revoke an organisation, DCCKI TLS or CA certificate (final; devices are replaced)"},
    {"crl", ca_crl, "publish now the CRL of an issuing CA (all of the environment's by default)"},
    {"arl", ca_arl, "publish now the ARL of a root (both roots by default)"},
    {"keys", cmd_ca_keys, "a half-made ceremony's keys: list, remove (SO PIN, confirmed, audited)"},
    {NULL, NULL, NULL},
};

int cmd_ca(smki_cli *c, int argc, char **argv)
{
    return cli_dispatch(c, CA_COMMANDS, argc - 1, argv + 1, "smki ca", ABOUT);
}
