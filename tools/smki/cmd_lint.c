/* smki lint: check certificates against the GB profiles (policy's linter), one line
 * per certificate and a closing count; exit 0 when every one is clean, 2 when any
 * has a violation or a file holds no certificate. */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "policy/policy.h"

static const char HELP[] =
    "Usage: smki lint [--env NAME] [--config FILE] FILE...\n"
    "\n"
    "Check each certificate against the GB profile it claims: every rule of GBCS\n"
    "section 12 / reference §4 (v3, P-256 with an uncompressed point, ecdsa-with-SHA256,\n"
    "positive serial, critical keyUsage, 8-octet method-2 SKI, 8-octet keyIdentifier AKI,\n"
    "critical certificatePolicies, RFC 5280 time encoding) plus strict DER, and name each\n"
    "violation by its rule id. FILE is DER or PEM ('-': standard input); a PEM file may\n"
    "hold several certificates (shown as FILE#2, ...); other PEM blocks are skipped and\n"
    "counted.\n"
    "\n"
    "Profiles, and how a certificate claims one (docs/profiles.md):\n"
    "  smki-root     SMKI root CA: cA TRUE, OU=00, self-signed\n"
    "  smki-oca      organisation CA: cA TRUE, OU=07, the organisation/CA policy OID\n"
    "  smki-dca      device CA: cA TRUE, OU=07, the device policy OID\n"
    "  organisation  [CN,] OU=<Remote Party Role>, x500UniqueIdentifier=<EUI-64>; DS or KA\n"
    "  device        empty subject, critical hardwareModuleName SAN; DS or KA\n"
    "  dccki-root    DCCKI root CA: cA TRUE, no SMKI role OU, self-signed\n"
    "  dccki-ica     DCCKI issuing CA: cA TRUE, no SMKI role OU\n"
    "  dccki-server  TLS server: serverAuth EKU, Party Signifier (organizationIdentifier)\n"
    "  dccki-client  TLS client: clientAuth EKU, Party Signifier\n"
    "When the environment's policy OID matches, it decides SMKI or DCCKI first.\n"
    "\n"
    "Environments (--env): test (the ZAZ1/RTDS OIDs) and production (placeholders: set\n"
    "them under [env.production] in smki.conf or --config FILE first), or any you define\n"
    "as [env.NAME]. Without --env (or lint.env in smki.conf) the environment is chosen by\n"
    "the certificate's policy OID among the built-in ones; if none matches, the policy,\n"
    "hwType, CA-name and validity-period rules are skipped with a warning.\n"
    "\n"
    "Output: '<file>: clean (<profile> ...)' or '<file>: N violation(s) (<profile>)' and\n"
    "one indented 'rule: message' line each (warnings marked 'warning'), then\n"
    "'N clean, M with violations'. --json gives the same per certificate.\n"
    "Exit: 0 all clean; 2 violations or a file without a certificate; 1 usage.\n"
    "\n"
    "Example:\n"
    "  smki lint --env test ../shared/vectors/gbcs/keystore/90b3d51f30010000-ds.pem\n";

typedef struct {
    smki_cli *c;
    const smki_env *env;
    const char *file;
    size_t n_in_file;
    size_t clean, dirty;
    json_w *w;
} lint_run;

static void json_findings(json_w *w, const smki_lint_report *rep)
{
    for (int pass = 0; pass < 2; pass++) {
        smki_lint_level want = pass == 0 ? SMKI_LINT_ERROR : SMKI_LINT_WARNING;
        json_key_arr(w, pass == 0 ? "violations" : "warnings");
        for (size_t i = 0; i < rep->count; i++) {
            if (rep->findings[i].level != want) continue;
            json_arr_obj(w);
            json_str(w, "rule", rep->findings[i].rule);
            json_str(w, "message", rep->findings[i].message);
            json_close_obj(w);
        }
        json_close_arr(w);
    }
}

static void print_json(json_w *w, const lint_run *run, size_t index, const smki_lint_report *rep, const char *what)
{
    json_arr_obj(w);
    json_str(w, "file", run->file);
    json_int(w, "index", (long long)index + 1);
    json_str(w, "kind", "certificate");
    json_str(w, "profile", smki_profile_get(rep->profile)->name);
    json_str(w, "describe", what);
    if (rep->role >= 0) {
        char role[SMKI_ROLE_TEXT_MAX];
        smki_role_format((uint8_t)rep->role, role);
        json_str(w, "role", role);
        json_str(w, "role_name", smki_role_name((unsigned)rep->role));
    }
    if (rep->has_id) {
        char id[SMKI_EUI64_TEXT_MAX];
        smki_eui64_format(&rep->id, SMKI_EUI64_PLAIN, id);
        json_str(w, "eui64", id);
    }
    json_str(w, "env", rep->env[0] ? rep->env : NULL);
    json_bool(w, "env_inferred", rep->env_inferred);
    json_bool(w, "clean", smki_lint_is_clean(rep));
    json_findings(w, rep);
    json_int(w, "unlisted", (long long)(rep->errors + rep->warnings - rep->count));
    json_close_obj(w);
}

static void print_human(const char *label, const smki_lint_report *rep, const char *what)
{
    if (smki_lint_is_clean(rep))
        printf("%s: clean (%s)\n", label, what);
    else
        printf("%s: %zu violation(s) (%s)\n", label, rep->errors, what);
    for (size_t i = 0; i < rep->count; i++) {
        const smki_lint_finding *f = &rep->findings[i];
        printf("    %s%s: %s\n", f->rule, f->level == SMKI_LINT_WARNING ? " (warning)" : "", f->message);
    }
    if (rep->errors + rep->warnings > rep->count) printf("    ... and %zu more\n", rep->errors + rep->warnings - rep->count);
}

static int lint_one(void *ctx, size_t index, const uint8_t *der, size_t len)
{
    lint_run *run = ctx;
    smki_lint_report rep;
    GUARD(smki_lint_der(der, len, run->env, &rep));
    char label[4200], what[160];
    if (run->n_in_file > 1)
        snprintf(label, sizeof label, "%s#%zu", run->file, index + 1);
    else
        snprintf(label, sizeof label, "%s", run->file);
    smki_lint_describe(&rep, what, sizeof what);
    if (smki_lint_is_clean(&rep))
        run->clean++;
    else
        run->dirty++;
    if (run->w)
        print_json(run->w, run, index, &rep, what);
    else
        print_human(label, &rep, what);
    return 0;
}

/* A file that yields no certificate: unreadable, malformed PEM, or only other blocks. */
static void not_certificate(lint_run *run, const char *why)
{
    if (run->w) {
        json_arr_obj(run->w);
        json_str(run->w, "file", run->file);
        json_str(run->w, "kind", "not-certificate");
        json_str(run->w, "message", why);
        json_close_obj(run->w);
    } else {
        printf("%s: not linted: %s\n", run->file, why);
    }
}

/* The environment: --env, else lint.env in the configuration, else none (inferred per
 * certificate). The configuration: --config FILE, else the home's smki.conf; read
 * here, not through cli_home, because linting touches no token. */
static int load_env(smki_cli *c, const char *name, const char *config, smki_env *env, int *have)
{
    smki_conf *conf = NULL;
    char path[4200];
    *have = 0;
    if (config) {
        FILE *f = fopen(config, "r");
        ENSURE(f, SMKI_E_NOTFOUND, "configuration %s cannot be opened", config);
        fclose(f);
        snprintf(path, sizeof path, "%s", config);
    } else {
        snprintf(path, sizeof path, "%s/smki.conf", c->home);
    }
    GUARD(smki_conf_load(path, &conf));
    if (!name) name = smki_conf_get(conf, "lint.env", NULL);
    int rc = 0;
    if (name) {
        rc = smki_env_load(name, conf, env);
        if (rc == 0) rc = smki_env_check_configured(env);
        if (rc == 0) *have = 1;
    }
    smki_conf_free(conf);
    return rc;
}

/* One file: each certificate in it linted and printed; a file without one counted. */
static void lint_file(lint_run *run, const char *file, size_t *not_certs)
{
    uint8_t *data = NULL;
    size_t len = 0, certs = 0, others = 0;
    run->file = file;
    int rc = cli_read(file, 16u << 20, &data, &len);
    if (rc == 0) {
        /* Count first so that labels say FILE#n only when a file holds several. */
        rc = smki_cert_each(data, len, NULL, NULL, &certs, &others);
        run->n_in_file = certs;
        if (rc == 0 && certs) rc = smki_cert_each(data, len, lint_one, run, &certs, &others);
    }
    free(data);
    if (rc < 0) {
        (*not_certs)++;
        not_certificate(run, smki_error_msg());
    } else if (certs == 0) {
        (*not_certs)++;
        not_certificate(run, others ? "no certificate (other PEM blocks only)" : "no certificate");
    }
}

int cmd_lint(smki_cli *c, int argc, char **argv)
{
    const char *env_name = NULL, *config = NULL;
    size_t nfiles = 0;
    const cli_opt opts[] = {CLI_VALUE("env", &env_name), CLI_VALUE("config", &config), CLI_END};
    const cli_spec spec = {"smki lint", HELP, opts, "one or more certificate FILEs", 1, (size_t)argc};
    const char **files = calloc((size_t)argc, sizeof *files);
    if (!files) return cli_fail(c, SMKI_FAIL(SMKI_E_NOMEM, "out of memory"));
    int stop = cli_parse(c, &spec, argc, argv, files, &nfiles);
    smki_env env;
    int have_env = 0, rc = 0;
    if (stop == CLI_GO) rc = load_env(c, env_name, config, &env, &have_env);
    if (stop != CLI_GO || rc < 0) {
        free(files);
        return stop != CLI_GO ? stop : cli_fail(c, rc);
    }

    json_w w;
    lint_run run = {.c = c, .env = have_env ? &env : NULL, .w = c->json ? &w : NULL};
    size_t not_certs = 0;
    if (c->json) {
        json_begin(&w, stdout);
        json_str(&w, "env", have_env ? env.name : NULL);
        json_key_arr(&w, "results");
    }
    for (size_t i = 0; i < nfiles; i++) lint_file(&run, files[i], &not_certs);
    free(files);
    int ok = run.dirty == 0 && not_certs == 0;
    if (c->json) {
        json_close_arr(&w);
        json_int(&w, "clean", (long long)run.clean);
        json_int(&w, "with_violations", (long long)run.dirty);
        json_int(&w, "not_certificates", (long long)not_certs);
        json_bool(&w, "ok", ok);
        json_end(&w);
    } else {
        printf("%zu clean, %zu with violations", run.clean, run.dirty);
        if (not_certs) printf(", %zu not linted", not_certs);
        putchar('\n');
    }
    return ok ? EXIT_OK : EXIT_REFUSED;
}
