/* smki gbcs gateway check, quarantine and log: the checks on messages, the messages they
 * held, and the record of what they judged. Parsing and printing only: the work is in
 * gateway/ (gateway.h). */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd_gateway.h"

/* ---- check ----------------------------------------------------------------------------------- */
static const char CHECK_HELP[] =
    "Usage: smki gbcs gateway check (--trust DIR | --oca CERT) (--crl FILE | --no-crl)\n"
    "           [--at TIME] [--env NAME] [--max-future-days N] [--quarantine-hook CMD] [--log FILE]\n"
    "           [--acb-key KEY --out FILE|DIR [--force]] FILE...\n"
    "\n"
    "The DCC User Gateway's checks (reference §7) on signed pre-commands (General Signing\n"
    "APDUs, hex text or binary; a General Ciphering command is taken for the APDU inside),\n"
    "in this order, the first failure giving the message's reason code:\n"
    "  structure.malformed / structure.unsigned\n"
    "  future-dated.too-far    (execution date-time more than --max-future-days ahead)\n"
    "  user.unknown / user.not-eligible / user.suspended      (the RA's registry)\n"
    "  device.unknown / device.status / device.environment     (the inventory)\n"
    "  cert.untrusted / cert.not-yet-valid / cert.expired / cert.revoked /\n"
    "  cert.revocation-unknown / cert.role / cert.key-usage / cert.subject / cert.environment\n"
    "                          (the User's DS certificate at TIME: chain, dates, CRL, role, usage, EUI-64)\n"
    "  signature.invalid       (the signature under that certificate)\n"
    "  device.no-ka-key        (with --acb-key: the inventory has no KA key for the device)\n"
    "  counter.replay          (counter not above the last that passed from the originator)\n"
    "  threshold.exceeded      (anomaly threshold: the message is QUARANTINED, not dropped)\n"
    "Responses and alerts (device to User) need a known device and a User of the RA with a\n"
    "registered certificate, then the User's response or alert thresholds; one that passes\n"
    "is delivered as received.\n"
    "A command that passes has its counter recorded; with --acb-key (the ACB's KA key) it\n"
    "is MACed into a command (General Ciphering, reference §5) written as hex text to\n"
    "--out (a file for one message, '-' for standard output, a folder for several:\n"
    "NAME.command.hex); an existing file is refused unless --force.\n"
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
    "  --log FILE     append a JSON line for each quarantined message, with the quarantine\n"
    "                 counters (quarantined_total, notified_total, notify_failed_total), to\n"
    "                 FILE ('-': standard error; default [gateway] log, else none)\n"
    "  --at TIME      the time of the check: 2020-01-01, 2020-01-01T12:00:00Z, @SECONDS\n"
    "                 (default now); certificates are checked and thresholds counted at it\n"
    "All FILEs are checked as one batch: one store commit records them all.\n"
    "Exit 0 when every message passed; 2 when any was rejected or quarantined.\n"
    "\n"
    "Example (" HELP_TEST_HOME "; from a clone beside ../shared: a supplier\n"
    "certificate from the test CA signs an RTDS pre-command to the RTDS meter, MACed with\n"
    "the RTDS ACB's key; the second check of the same message is a replay):\n"
    "  K=../shared/vectors/gbcs/keystore R=../shared/vectors/gbcs/rtds/1.1.1_ECS01a\n"
    "  openssl ecparam -name prime256v1 -genkey -noout -out supplier-ds.key\n"
    "  openssl req -new -key supplier-ds.key -subj /CN=GITTEST \\\n"
    "      -addext keyUsage=critical,digitalSignature -out supplier-ds.csr\n"
    "  smki ca issue --env test --csr supplier-ds.csr --role supplier --eui 90-B3-D5-1F-30-01-00-00 \\\n"
    "      --party GITTEST --operator tester --out supplier-ds.pem\n"
    "  smki gbcs gateway user add --eui 90-B3-D5-1F-30-01-00-00 --role supplier \\\n"
    "      --cert supplier-ds.pem --operator tester\n"
    "  smki gbcs gateway device add --eui 00-DB-12-34-56-78-90-A0 --status commissioned \\\n"
    "      --ka-cert $K/00db1234567890a0-ka.pem --operator tester\n"
    "  smki gbcs sign --key file:supplier-ds.key --cert supplier-ds.pem \\\n"
    "      --in $R/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX --out signed.hex\n"
    "  smki gbcs gateway check --oca \"$SMKI_HOME/ca/test/smki-oca.pem\" \\\n"
    "      --crl \"$SMKI_HOME/ca/test/smki-oca.crl\" --acb-key file:$K/90b3d51f30000002-ka.key \\\n"
    "      --out cmd.hex signed.hex\n"
    "  smki gbcs gateway check --oca \"$SMKI_HOME/ca/test/smki-oca.pem\" \\\n"
    "      --crl \"$SMKI_HOME/ca/test/smki-oca.crl\" signed.hex   # exits 2: counter.replay\n";

#define CHECK_MAX_FILES 1024

typedef struct {
    const char *trust, *oca, *crl, *at, *acb, *out, *future, *hook, *env, *log;
    int no_crl, force;
    const char *files[CHECK_MAX_FILES];
    size_t n;
} check_args;

typedef struct {
    gw_ctx x;
    smki_key *acb;
    smki_gateway *g;
    smki_env env;
    uint8_t **msgs;
    size_t *lens;
    smki_gw_result *res;
    time_t at;
    FILE *log; /* --log FILE (not stderr), to close */
} check_run;

static int check_parse(smki_cli *c, int argc, char **argv, check_args *a)
{
    memset(a, 0, sizeof *a);
    const cli_opt opts[] = {CLI_VALUE("trust", &a->trust), CLI_VALUE("oca", &a->oca), CLI_VALUE("crl", &a->crl),
                            CLI_FLAG("no-crl", &a->no_crl), CLI_VALUE("at", &a->at), CLI_VALUE("acb-key", &a->acb),
                            CLI_VALUE("out", &a->out), CLI_FLAG("force", &a->force),
                            CLI_VALUE("max-future-days", &a->future), CLI_VALUE("quarantine-hook", &a->hook),
                            CLI_VALUE("env", &a->env), CLI_VALUE("log", &a->log), CLI_END};
    const cli_spec spec = {"smki gbcs gateway check", CHECK_HELP, opts, "FILE...", 1, CHECK_MAX_FILES};
    int stop = cli_parse(c, &spec, argc, argv, a->files, &a->n);
    if (stop != CLI_GO) return stop;
    if (!a->trust == !a->oca) return cli_usage(c, spec.prog, "give exactly one of --trust DIR or --oca CERT");
    if (!a->crl == !a->no_crl)
        return cli_usage(c, spec.prog, "give --crl FILE, or --no-crl to check without revocation");
    if (!a->acb != !a->out) return cli_usage(c, spec.prog, "--acb-key and --out go together");
    return CLI_GO;
}

/* The gateway's options from the arguments and smki.conf; the RA is the Users' registry. */
static int check_open(smki_cli *c, const check_args *a, check_run *r)
{
    smki_gateway_opts go = {.trust_dir = a->trust, .oca_file = a->oca, .crl_file = a->crl, .no_crl = a->no_crl};
    if (a->acb) GUARD(cli_open_key(c, a->acb, &r->acb));
    GUARD(gw_begin(c, 0, NULL, NULL, &r->x));
    go.acb_ka = r->acb;
    go.ra = r->x.ra;
    const char *future = a->future ? a->future : smki_conf_get(c->conf, "gateway.max_future_days", NULL);
    if (future) GUARD(gw_parse_days("--max-future-days", future, &go.max_future_seconds));
    GUARD(gw_hook_from(c, a->hook, &go.hook));
    const char *log = a->log ? a->log : smki_conf_get(c->conf, "gateway.log", NULL);
    if (log && strcmp(log, "-") == 0) {
        go.log = stderr;
    } else if (log) {
        r->log = fopen(log, "a");
        ENSURE(r->log, SMKI_E_IO, "--log %s: cannot open it for appending", log);
        go.log = r->log;
    }
    /* Test and live never mix (default [gateway] env, else test). */
    GUARD(smki_env_load(a->env ? a->env : smki_conf_get(c->conf, "gateway.env", "test"), c->conf, &r->env));
    GUARD(smki_env_check_configured(&r->env));
    go.env = &r->env;
    return smki_gateway_open(r->x.s, &go, &r->g);
}

static int check_read(const check_args *a, check_run *r)
{
    r->msgs = calloc(a->n, sizeof *r->msgs);
    r->lens = calloc(a->n, sizeof *r->lens);
    r->res = calloc(a->n, sizeof *r->res);
    ENSURE(r->msgs && r->lens && r->res, SMKI_E_NOMEM, "messages");
    r->at = time(NULL);
    if (a->at) GUARD(smki_gw_time_parse(a->at, &r->at));
    if (a->out && a->n > 1) {
        struct stat st;
        ENSURE(stat(a->out, &st) == 0 && S_ISDIR(st.st_mode), SMKI_E_USAGE,
               "with several messages --out must be an existing folder (%s is not)", a->out);
    }
    for (size_t i = 0; i < a->n; i++) GUARD(smki_gbcs_read_file(a->files[i], &r->msgs[i], &r->lens[i]));
    if (a->out && a->n == 1) GUARD(gw_out_free(a->out, a->force)); /* before a counter is spent */
    return 0;
}

static void check_free(const check_args *a, check_run *r)
{
    for (size_t i = 0; r->msgs && i < a->n; i++) free(r->msgs[i]);
    for (size_t i = 0; r->res && i < a->n; i++) smki_gw_result_clear(&r->res[i]);
    free(r->msgs);
    free(r->lens);
    free(r->res);
    smki_gateway_free(r->g);
    smki_key_free(r->acb);
    if (r->log) fclose(r->log);
    gw_end(&r->x);
}

/* A passing command's output file: --out itself for one message, DIR/NAME.command.hex. */
static int check_write(const check_args *a, size_t i, const smki_gw_result *r, char *outfile, size_t cap)
{
    outfile[0] = '\0';
    if (r->verdict != SMKI_GW_PASS || !r->command) return 0;
    if (a->n == 1) {
        snprintf(outfile, cap, "%s", a->out);
    } else {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s", a->files[i]);
        snprintf(outfile, cap, "%s/%s.command.hex", a->out, basename(tmp));
    }
    return gw_write_hex(outfile, r->command, r->command_len, a->force);
}

static void check_print_json(json_w *w, const char *file, const smki_gw_result *r, const char *verdict,
                             const char *outfile)
{
    char oe[SMKI_EUI64_TEXT_MAX] = "", te[SMKI_EUI64_TEXT_MAX] = "", cd[8] = "";
    json_arr_obj(w);
    json_str(w, "file", file);
    json_str(w, "verdict", verdict);
    json_str(w, "reason", r->reason);
    json_str(w, "detail", r->detail);
    if (r->parsed) {
        smki_eui64_format(&r->originator, SMKI_EUI64_HYPHEN, oe);
        smki_eui64_format(&r->target, SMKI_EUI64_HYPHEN, te);
        snprintf(cd, sizeof cd, "%04X", r->code);
        json_str(w, "originator", oe);
        json_str(w, "target", te);
        json_str(w, "message_code", cd);
        json_int(w, "counter", (long long)r->counter);
    }
    if (r->verdict == SMKI_GW_QUARANTINE) {
        json_int(w, "quarantine_id", (long long)r->quarantine_id);
        if (r->notified) json_bool(w, "notified", r->notified > 0);
        if (r->notified < 0) json_str(w, "notify_error", r->notify_error);
    }
    if (outfile[0]) json_str(w, "command", outfile);
    json_close_obj(w);
}

static void check_print_text(const char *file, const smki_gw_result *r, const char *outfile)
{
    char oe[SMKI_EUI64_TEXT_MAX] = "", te[SMKI_EUI64_TEXT_MAX] = "";
    smki_eui64_format(&r->originator, SMKI_EUI64_HYPHEN, oe);
    smki_eui64_format(&r->target, SMKI_EUI64_HYPHEN, te);
    if (r->verdict == SMKI_GW_PASS)
        printf("%s: passed (%s -> %s, code %04X, counter %llu)%s%s\n", file, oe, te, r->code,
               (unsigned long long)r->counter, outfile[0] ? "; command: " : "", outfile);
    else if (r->verdict == SMKI_GW_QUARANTINE)
        printf("%s: QUARANTINED as %llu: %s: %s%s%s\n", file, (unsigned long long)r->quarantine_id, r->reason,
               r->detail, r->notified > 0 ? "; hook notified" : r->notified < 0 ? "; HOOK FAILED: " : "",
               r->notified < 0 ? r->notify_error : "");
    else
        printf("%s: REJECTED: %s: %s\n", file, r->reason, r->detail);
}

/* Every verdict printed, passing commands written; *all: every message passed. */
static int check_report(smki_cli *c, const check_args *a, const check_run *r, int *all)
{
    static const char *const verdicts[] = {"passed", "rejected", "quarantined"};
    json_w w;
    if (c->json) {
        json_begin(&w, stdout);
        json_key_arr(&w, "messages");
    }
    *all = 1;
    for (size_t i = 0; i < a->n; i++) {
        char outfile[4300];
        GUARD(check_write(a, i, &r->res[i], outfile, sizeof outfile));
        *all &= r->res[i].verdict == SMKI_GW_PASS;
        if (c->json) check_print_json(&w, a->files[i], &r->res[i], verdicts[r->res[i].verdict], outfile);
        else check_print_text(a->files[i], &r->res[i], outfile);
    }
    if (c->json) {
        json_close_arr(&w);
        json_bool(&w, "ok", *all);
        json_end(&w);
    }
    return 0;
}

int gw_check(smki_cli *c, int argc, char **argv)
{
    check_args *a = malloc(sizeof *a);
    if (!a) return cli_fail(c, SMKI_FAIL(SMKI_E_NOMEM, "arguments"));
    int stop = check_parse(c, argc, argv, a);
    if (stop != CLI_GO) {
        free(a);
        return stop;
    }
    check_run r;
    memset(&r, 0, sizeof r);
    int all = 0, rc = check_read(a, &r);
    if (rc == 0) rc = check_open(c, a, &r);
    if (rc == 0) rc = smki_gateway_check(r.g, (const uint8_t *const *)r.msgs, r.lens, a->n, r.at, r.res);
    if (rc == 0) rc = check_report(c, a, &r, &all);
    check_free(a, &r);
    free(a);
    if (rc == 0 && !all) return EXIT_REFUSED;
    return cli_finish(c, rc);
}

/* ---- quarantine ------------------------------------------------------------------------------ */
static const char QUAR_ABOUT[] =
    "smki gbcs gateway quarantine: messages held for reaching an anomaly threshold.\n"
    "\n"
    "Notification: 'check' runs the hook ([gateway] quarantine_hook = CMD in smki.conf, or\n"
    "--quarantine-hook CMD) once for each message it quarantines, after the quarantine is\n"
    "committed: /bin/sh -c CMD with the record as JSON on stdin and SMKI_QUARANTINE_ID set,\n"
    "killed after [gateway] quarantine_hook_timeout seconds (30). A failing hook loses\n"
    "nothing: the record stays, the failure is counted. 'stats' prints the counters\n"
    "(quarantined, notified, failed); 'check --log FILE' writes them in a JSON line for each\n"
    "message it quarantines.";

static const char QUAR_LIST_HELP[] =
    "Usage: smki gbcs gateway quarantine list\n"
    "       smki gbcs gateway quarantine show ID\n"
    "\n"
    "The held, released and rejected messages; show prints one with its message in hex.\n";

static const char QUAR_RELEASE_HELP[] =
    "Usage: smki gbcs gateway quarantine release ID [--acb-key KEY] --out FILE [--force]\n"
    "           [--operator NAME --operator-key KEY]\n"
    "\n"
    "Release a held message. A command is MACed with the ACB's KA key (written as hex to\n"
    "FILE, '-' for standard output) and its counter recorded: it must still be above the\n"
    "originator's last (counter.replay otherwise). A response or alert is written as the\n"
    "device sent it, for delivery to its User (no --acb-key).\n" GW_OPERATOR_HELP;

static const char QUAR_REJECT_HELP[] =
    "Usage: smki gbcs gateway quarantine reject ID --reason TEXT [--operator NAME --operator-key KEY]\n"
    "\n"
    "Reject a held message, recording the operator's reason.\n" GW_OPERATOR_HELP;

static const char QUAR_NOTIFY_HELP[] =
    "Usage: smki gbcs gateway quarantine notify [--quarantine-hook CMD]\n"
    "       smki gbcs gateway quarantine stats\n"
    "\n"
    "notify runs the hook for every held record not notified yet (exit 2 if it failed for\n"
    "any); stats prints the counters.\n"
    "\n"
    "Example:\n"
    "  smki gbcs gateway quarantine notify --quarantine-hook 'cat >> quarantine.jsonl'\n";

static int parse_qid(const char *text, uint64_t *id)
{
    return cli_number("quarantine ID", text, 1, UINT64_MAX >> 1, id);
}

static int print_q(const smki_gwq_record *q, void *arg)
{
    json_w *w = arg;
    static const char *const st[] = {"held", "released", "rejected"}, *const ns[] = {"none", "notified", "failed"};
    char oe[SMKI_EUI64_TEXT_MAX], te[SMKI_EUI64_TEXT_MAX], cd[8];
    smki_eui64_format(&q->originator, SMKI_EUI64_HYPHEN, oe);
    smki_eui64_format(&q->target, SMKI_EUI64_HYPHEN, te);
    const char *state = q->state >= 0 && q->state <= 2 ? st[q->state] : "unknown";
    if (!w) {
        printf("%llu  %-8s %s -> %s code %04X counter %llu: %s%s%s\n", (unsigned long long)q->id, state, oe, te,
               q->code, (unsigned long long)q->counter, q->reason, q->note[0] ? "; " : "", q->note);
        return 0;
    }
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
    json_str(w, "notification", q->notify_state >= 0 && q->notify_state <= 2 ? ns[q->notify_state] : "unknown");
    json_int(w, "notify_attempts", q->notify_attempts);
    json_close_obj(w);
    return 0;
}

static void print_q_whole(smki_cli *c, const smki_gwq_record *q)
{
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_key_arr(&w, "quarantine");
        print_q(q, &w);
        json_close_arr(&w);
        json_end(&w);
        return;
    }
    print_q(q, NULL);
    printf("detail: %s\n", q->detail);
    char *hex = malloc(2 * q->msg_len + 1);
    if (!hex) return;
    smki_hex_encode(q->msg, q->msg_len, hex, 1);
    printf("message: %s\n", hex);
    free(hex);
}

/* list (no argument) and show ID. */
static int quar_show(smki_cli *c, int argc, char **argv)
{
    int show = strcmp(argv[0], "show") == 0;
    const char *pos[1] = {NULL};
    const cli_spec spec = {show ? "smki gbcs gateway quarantine show" : "smki gbcs gateway quarantine list",
                           QUAR_LIST_HELP, NULL, show ? "one quarantine ID" : "no argument", show, show};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    uint64_t id = 0;
    gw_ctx x;
    memset(&x, 0, sizeof x);
    int rc = show ? parse_qid(pos[0], &id) : 0;
    if (rc == 0) rc = gw_begin(c, 0, NULL, NULL, &x);
    if (rc == 0 && show) {
        smki_gwq_record q;
        rc = smki_gwq_get(x.s, id, &q);
        if (rc == 0) print_q_whole(c, &q);
        if (rc == 0) smki_gwq_clear(&q);
    } else if (rc == 0) {
        json_w w;
        json_list_open(c, &w, "quarantine");
        rc = smki_gwq_list(x.s, print_q, c->json ? &w : NULL);
        if (rc == 0) json_list_close(c, &w);
    }
    gw_end(&x);
    return cli_finish(c, rc);
}

static int quar_release(smki_cli *c, int argc, char **argv)
{
    const char *acb = NULL, *out = NULL, *op = NULL, *key = NULL, *pos[1];
    int force = 0;
    const cli_opt opts[] = {CLI_VALUE("acb-key", &acb), CLI_VALUE("out", &out), CLI_FLAG("force", &force),
                            GW_OPERATOR_OPTS(&op, &key), CLI_END};
    const cli_spec spec = {"smki gbcs gateway quarantine release", QUAR_RELEASE_HELP, opts, "one quarantine ID", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    if (!out) return cli_usage(c, spec.prog, "--out FILE is required (and --acb-key for a command)");
    uint64_t id = 0;
    uint8_t *cmd = NULL;
    size_t len = 0;
    smki_key *k = NULL;
    gw_ctx x;
    memset(&x, 0, sizeof x);
    int rc = parse_qid(pos[0], &id);
    if (rc == 0) rc = gw_out_free(out, force); /* a released message is not released twice */
    if (rc == 0 && acb) rc = cli_open_key(c, acb, &k);
    if (rc == 0) rc = gw_begin(c, 1, op, key, &x);
    if (rc == 0) rc = smki_gwq_release(&x.adm, id, k, &cmd, &len);
    if (rc == 0) rc = gw_write_hex(out, cmd, len, force);
    free(cmd);
    smki_key_free(k);
    gw_end(&x);
    if (rc < 0) return cli_fail(c, rc);
    if (strcmp(out, "-") == 0) return EXIT_OK; /* the message itself is the output */
    if (c->json) gw_ok_json(c, "release");
    else printf("Released %llu: the message to send written to %s.\n", (unsigned long long)id, out);
    return EXIT_OK;
}

static int quar_reject(smki_cli *c, int argc, char **argv)
{
    const char *reason = NULL, *op = NULL, *key = NULL, *pos[1];
    const cli_opt opts[] = {CLI_VALUE("reason", &reason), GW_OPERATOR_OPTS(&op, &key), CLI_END};
    const cli_spec spec = {"smki gbcs gateway quarantine reject", QUAR_REJECT_HELP, opts, "one quarantine ID", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    if (!reason) return cli_usage(c, spec.prog, "--reason TEXT is required");
    uint64_t id = 0;
    gw_ctx x;
    memset(&x, 0, sizeof x);
    int rc = parse_qid(pos[0], &id);
    if (rc == 0) rc = gw_begin(c, 1, op, key, &x);
    if (rc == 0) rc = smki_gwq_reject(&x.adm, id, reason);
    gw_end(&x);
    if (rc < 0) return cli_fail(c, rc);
    if (c->json) gw_ok_json(c, "reject");
    else printf("Rejected %llu: %s\n", (unsigned long long)id, reason);
    return EXIT_OK;
}

static void print_stats(smki_cli *c, const smki_gwq_stats *st, int notify, size_t fired, size_t failed)
{
    if (!c->json) {
        if (notify) printf("Hook run for %zu pending record(s): %zu failed.\n", fired + failed, failed);
        printf("quarantined %llu, notified %llu, notifications failed %llu\n", (unsigned long long)st->quarantined,
               (unsigned long long)st->notified, (unsigned long long)st->notify_failed);
        return;
    }
    json_w w;
    json_begin(&w, stdout);
    json_bool(&w, "ok", failed == 0);
    if (notify) {
        json_int(&w, "fired", (long long)fired);
        json_int(&w, "failed", (long long)failed);
    }
    json_int(&w, "quarantined_total", (long long)st->quarantined);
    json_int(&w, "notified_total", (long long)st->notified);
    json_int(&w, "notify_failed_total", (long long)st->notify_failed);
    json_end(&w);
}

/* notify [--quarantine-hook CMD] and stats. */
static int quar_notify(smki_cli *c, int argc, char **argv)
{
    int notify = strcmp(argv[0], "notify") == 0;
    const char *hook = NULL;
    const cli_opt opts[] = {CLI_VALUE("quarantine-hook", &hook), CLI_END};
    const cli_spec spec = {notify ? "smki gbcs gateway quarantine notify" : "smki gbcs gateway quarantine stats",
                           QUAR_NOTIFY_HELP, notify ? opts : NULL, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    size_t fired = 0, failed = 0;
    smki_gwq_stats st;
    smki_gwq_hook h;
    gw_ctx x;
    int rc = gw_begin(c, 0, NULL, NULL, &x);
    if (rc == 0 && notify) rc = gw_hook_from(c, hook, &h);
    if (rc == 0 && notify) rc = smki_gwq_notify_pending(x.s, &h, &fired, &failed);
    if (rc == 0) rc = smki_gwq_stats_get(x.s, &st);
    gw_end(&x);
    if (rc < 0) return cli_fail(c, rc);
    print_stats(c, &st, notify, fired, failed);
    if (failed) return cli_fail(c, SMKI_FAIL(SMKI_E_REFUSED, "the quarantine hook failed for %zu record(s)", failed));
    return EXIT_OK;
}

int gw_quarantine(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd table[] = {
        {"list", quar_show, "every quarantine record"},
        {"show", quar_show, "one record, with its message"},
        {"release", quar_release, "release a held message (an operator's action)"},
        {"reject", quar_reject, "reject a held message (an operator's action)"},
        {"notify", quar_notify, "run the hook for the records not notified yet"},
        {"stats", quar_notify, "the counters: quarantined, notified, failed"},
        {NULL, NULL, NULL},
    };
    return cli_dispatch(c, table, argc - 1, argv + 1, "smki gbcs gateway quarantine", QUAR_ABOUT);
}

/* ---- log and archive -------------------------------------------------------------------------- */
static const char LOG_ABOUT[] =
    "smki gbcs gateway log: the record of every message 'check' judged: time, verdict,\n"
    "reason code, kind, originator, target, message code, counter. Kept online for\n"
    "--keep-days (default [gateway] log_keep_days of smki.conf, else 92: three months), then\n"
    "'archive' writes the older records to a signed file and only then prunes them from the\n"
    "store. Keep archives at least seven years.";

static const char LOG_LIST_HELP[] =
    "Usage: smki gbcs gateway log list [--before TIME]\n"
    "\n"
    "The records of checks made before TIME (default: all).\n";

static const char LOG_ARCHIVE_HELP[] =
    "Usage: smki gbcs gateway log archive --key KEY --out FILE [--before TIME | --keep-days N]\n"
    "\n"
    "Write the records older than --keep-days (or than --before) to FILE (refused if it\n"
    "exists), signed with KEY, then prune them from the store. FILE is text: a header line,\n"
    "one JSON object a record, and a last line 'signature HEX' (DER ECDSA P-256/SHA-256 over\n"
    "every octet before it). Without records to archive nothing is written.\n"
    "\n"
    "Example (" HELP_TEST_HOME "; from a clone beside ../shared: one RTDS\n"
    "command checked, so the log holds a record; the archive signed with a token key):\n"
    "  C=../shared/vectors/gbcs/rtds/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_COMMAND_GBCS.HEX\n"
    "  smki gbcs gateway check --oca \"$SMKI_HOME/ca/test/smki-oca.pem\" --no-crl \"$C\"   # exits 2: user.unknown (no User registered at the gateway)\n"
    "  smki key generate --label gateway-log --usage ds\n"
    "  smki gbcs gateway log archive --key gateway-log --before \"$(date -u -d tomorrow +%F)\" \\\n"
    "      --out gw.archive\n";

static const char LOG_VERIFY_HELP[] =
    "Usage: smki gbcs gateway log verify --in FILE --cert CERT\n"
    "\n"
    "Check an archive with the signer's certificate or public key (PEM or DER; exit 2 if\n"
    "the archive was changed).\n"
    "\n"
    "Example (" HELP_TEST_HOME "; from a clone beside ../shared: an archive\n"
    "made as in 'log archive --help', checked by smki, then by openssl):\n"
    "  C=../shared/vectors/gbcs/rtds/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_COMMAND_GBCS.HEX\n"
    "  smki gbcs gateway check --oca \"$SMKI_HOME/ca/test/smki-oca.pem\" --no-crl \"$C\"   # exits 2: user.unknown\n"
    "  smki key generate --label gateway-log --usage ds\n"
    "  smki gbcs gateway log archive --key gateway-log --before \"$(date -u -d tomorrow +%F)\" \\\n"
    "      --out gw.archive\n"
    "  smki key pub gateway-log --out gateway-log.pub\n"
    "  smki gbcs gateway log verify --in gw.archive --cert gateway-log.pub\n"
    "  head -n -1 gw.archive > body; tail -n 1 gw.archive | cut -d' ' -f2 | tr a-f A-F | basenc --base16 -d > sig\n"
    "  openssl dgst -sha256 -verify gateway-log.pub -signature sig body\n"
    "  sed -i 's/user/USER/' gw.archive\n"
    "  smki gbcs gateway log verify --in gw.archive --cert gateway-log.pub   # exits 2: changed\n";

static int print_log(const smki_gw_log_record *r, void *arg)
{
    json_w *w = arg;
    static const char *const verdicts[] = {"passed", "rejected", "quarantined"};
    const char *verdict = verdicts[r->verdict <= 2 ? r->verdict : 1];
    char oe[SMKI_EUI64_TEXT_MAX] = "", te[SMKI_EUI64_TEXT_MAX] = "", cd[8];
    if (r->parsed) {
        smki_eui64_format(&r->originator, SMKI_EUI64_HYPHEN, oe);
        smki_eui64_format(&r->target, SMKI_EUI64_HYPHEN, te);
    }
    const char *kind = r->parsed ? smki_gbcs_cra_name(r->cra) : "unparsed";
    if (!w) {
        printf("%lld %-11s %-24s %-8s %s -> %s code %04X counter %llu\n", (long long)r->at, verdict,
               r->reason[0] ? r->reason : "-", kind, oe[0] ? oe : "-", te[0] ? te : "-", r->code,
               (unsigned long long)r->counter);
        return 0;
    }
    snprintf(cd, sizeof cd, "%04X", r->code);
    json_arr_obj(w);
    json_int(w, "at", (long long)r->at);
    json_int(w, "seq", (long long)r->seq);
    json_str(w, "verdict", verdict);
    json_str(w, "reason", r->reason);
    json_str(w, "kind", kind);
    json_str(w, "originator", oe);
    json_str(w, "target", te);
    json_str(w, "message_code", cd);
    json_int(w, "counter", (long long)r->counter);
    json_close_obj(w);
    return 0;
}

static int log_list(smki_cli *c, int argc, char **argv)
{
    const char *before_s = NULL;
    const cli_opt opts[] = {CLI_VALUE("before", &before_s), CLI_END};
    const cli_spec spec = {"smki gbcs gateway log list", LOG_LIST_HELP, opts, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    time_t before = time(NULL) + 1;
    gw_ctx x;
    memset(&x, 0, sizeof x);
    int rc = before_s ? smki_gw_time_parse(before_s, &before) : 0;
    if (rc == 0) rc = gw_begin(c, 0, NULL, NULL, &x);
    json_w w;
    if (rc == 0) {
        json_list_open(c, &w, "records");
        rc = smki_gw_log_list(x.s, (int64_t)before, print_log, c->json ? &w : NULL);
        if (rc == 0) json_list_close(c, &w);
    }
    gw_end(&x);
    return cli_finish(c, rc);
}

static void print_archived(smki_cli *c, size_t n, time_t before, const char *out)
{
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_int(&w, "archived", (long long)n);
        json_int(&w, "before", (long long)before);
        if (n) json_str(&w, "out", out);
        json_end(&w);
    } else if (n) {
        printf("Archived %zu record(s) of checks before %lld to %s (signed) and pruned them from the store.\n", n,
               (long long)before, out);
    } else {
        printf("No record of a check before %lld: nothing archived, %s not written.\n", (long long)before, out);
    }
}

static int log_archive(smki_cli *c, int argc, char **argv)
{
    const char *before_s = NULL, *keep_s = NULL, *key = NULL, *out = NULL;
    const cli_opt opts[] = {CLI_VALUE("before", &before_s), CLI_VALUE("keep-days", &keep_s), CLI_VALUE("key", &key),
                            CLI_VALUE("out", &out), CLI_END};
    const cli_spec spec = {"smki gbcs gateway log archive", LOG_ARCHIVE_HELP, opts, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!key || !out) return cli_usage(c, spec.prog, "--key and --out are required");
    if (before_s && keep_s) return cli_usage(c, spec.prog, "give --before or --keep-days, not both");
    time_t now = time(NULL), before = now;
    uint32_t keep = SMKI_GW_LOG_KEEP_DAYS * 86400u;
    size_t n = 0;
    smki_key *k = NULL;
    gw_ctx x;
    memset(&x, 0, sizeof x);
    int rc = cli_home(c);
    if (rc == 0 && !keep_s) keep_s = smki_conf_get(c->conf, "gateway.log_keep_days", NULL);
    if (rc == 0 && before_s) rc = smki_gw_time_parse(before_s, &before);
    else if (rc == 0 && keep_s) rc = gw_parse_days("--keep-days", keep_s, &keep);
    if (!before_s) before = now - (time_t)keep;
    if (rc == 0) rc = cli_open_key(c, key, &k);
    if (rc == 0) rc = gw_begin(c, 0, NULL, NULL, &x);
    if (rc == 0) rc = smki_gw_log_archive(x.s, (int64_t)before, now, k, out, &n);
    smki_key_free(k);
    gw_end(&x);
    if (rc < 0) return cli_fail(c, rc);
    print_archived(c, n, before, out);
    return EXIT_OK;
}

static int log_verify(smki_cli *c, int argc, char **argv)
{
    const char *in = NULL, *cert = NULL;
    const cli_opt opts[] = {CLI_VALUE("in", &in), CLI_VALUE("cert", &cert), CLI_END};
    const cli_spec spec = {"smki gbcs gateway log verify", LOG_VERIFY_HELP, opts, "no argument", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!in || !cert) return cli_usage(c, spec.prog, "--in and --cert are required");
    uint8_t *data = NULL;
    size_t len = 0, n = 0;
    EVP_PKEY *pub = NULL;
    int rc = smki_pub_load_file(cert, &pub);
    if (rc == 0) rc = cli_read(in, 1u << 30, &data, &len);
    if (rc == 0) rc = smki_gw_archive_verify(data, len, pub, &n);
    EVP_PKEY_free(pub);
    free(data);
    if (rc < 0) return cli_fail(c, rc);
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
    return EXIT_OK;
}

int gw_log(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd table[] = {
        {"list", log_list, "the records of checked messages"},
        {"archive", log_archive, "write the older records to a signed file, then prune them"},
        {"verify", log_verify, "check an archive's signature and record count"},
        {NULL, NULL, NULL},
    };
    return cli_dispatch(c, table, argc - 1, argv + 1, "smki gbcs gateway log", LOG_ABOUT);
}
