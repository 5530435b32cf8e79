/* smki ca batch: many device CSRs issued at once (ca/batch.c does the work), with a
 * progress bar on a terminal and a summary, human or --json. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca.h"
#include "commands.h"
#include "ra/ra.h"

static const char BATCH_HELP[] =
    "Usage: smki ca batch --env ENV --in DIR|FILE --out DIR [--threads N] [--group N]\n"
    "                     [--party SIGNIFIER --operator NAME --operator-key KEY]\n"
    "       (test, or a store with an RA: --party and --operator are required)\n"
    "\n"
    "Issue device certificates for many CSRs at once with ENV's device CA, resumably.\n"
    "\n"
    "The RA's gate, as for 'smki ca issue'. In the test environment, and in every\n"
    "environment once the store has RA operators, a batch is the CA's direct path and an\n"
    "RA action: --party names the Party the certificates go to and --operator the\n"
    "registered operator who takes it (their key: --operator-key, SMKI_OPERATOR_KEY or\n"
    "[operators] NAME = KEY). It is allowed only in the environments of ra.direct_issue\n"
    "(default: test); elsewhere device certificates go by an approved request: 'smki ra\n"
    "request submit --type device-batch --csr-dir DIR', approvals, 'smki ra request\n"
    "execute'. Refused before any CSR is read: no --party, an unregistered or suspended\n"
    "Party, in test a Party that is not a Testing Participant with its agreement signed,\n"
    "a Party not an Authorised Subscriber for device certificates in ENV. Each CSR then\n"
    "passes the RA's eligibility check (its Device ID must not come from a central\n"
    "block) or is refused by name while the others go on. Every group commit holds its\n"
    "audit entry, signed by the operator ('smki audit verify' covers it).\n"
    "\n"
    "Input (--in):\n"
    "  DIR   every regular file in it whose name does not start with '.', in name\n"
    "        order; each file one CSR, PEM or DER (e.g. <eui>-ds.csr.der).\n"
    "  FILE  one CSR (PEM or DER), or many PEM CSRs one after another, as\n"
    "        'cat *.csr > all.pem' makes; text between the PEM blocks is ignored.\n"
    "        Reports name the n-th block FILE#n.\n"
    "  -     standard input, read as a FILE (reports name stdin#n).\n"
    "Each CSR is checked as 'smki ca issue' checks a device CSR (proof of possession,\n"
    "P-256, exactly one key usage, a hardwareModuleName, an empty subject). A bad one\n"
    "is refused and reported by name; the others go on.\n"
    "\n"
    "Output (--out, created if missing, not the input folder): one certificate per CSR,\n"
    "PEM, named <eui>-ds.pem or <eui>-ka.pem (the device's EUI-64 in 16 lowercase hex\n"
    "digits). A file is never replaced by a different certificate: if that name holds\n"
    "another one (a device that sent a new CSR), the new certificate is written as\n"
    "<eui>-<usage>-<serial>.pem and the summary says so. Every file is written\n"
    "atomically (temporary, fsync, rename), and only after its certificate is committed.\n"
    "\n"
    "Resumable: each certificate is recorded with the SHA-256 of its CSR in the same\n"
    "commit. Killed at any moment (even kill -9), the store keeps every committed\n"
    "certificate; run the same command again and CSRs already issued get their existing\n"
    "certificate written out again, never a second one. The same CSR twice in one input\n"
    "is issued once. One batch at a time per store.\n"
    "\n"
    "  --threads N  threads that parse, sign and lint (default: the number of processors)\n"
    "  --group N    certificates per commit (default 256): a crash loses at most the\n"
    "               group being committed, which a re-run issues\n"
    "\n"
    "A progress bar goes to stderr when it is a terminal (never with --json). Then a\n"
    "summary: issued, already issued, duplicates, refused with the reason per input.\n"
    "Exit 0 if every CSR has its certificate, 2 if any was refused, 3 if the store or\n"
    "the token failed (what was committed stays: run again to carry on).\n"
    "\n"
    "Needs the user PIN (SMKI_PIN or --pin-file) for a CA key in a token.\n"
    "\n"
    "Examples (" HELP_TEST_HOME "; the device CSRs (DER) made here by 'smki\n"
    "device create', as devices send them; the second and third runs find every CSR\n"
    "already issued: no second certificate):\n"
    "  smki device create --eui 00-DB-12-34-56-78-00-01 --csr-dir device1\n"
    "  smki device create --eui 00-DB-12-34-56-78-00-02 --csr-dir device2\n"
    "  mkdir csrs && cp device1/*.csr device2/*.csr csrs/\n"
    "  smki ca batch --env test --in csrs/ --out certs/ --party GITTEST --operator tester\n"
    "  for f in csrs/*.csr; do openssl req -inform DER -in \"$f\"; done > all.pem\n"
    "  smki --json ca batch --env test --in all.pem --out certs/ --party GITTEST --operator tester\n"
    "  smki ca batch --env test --in - --out certs/ --party GITTEST --operator tester < all.pem\n";

/* ---- Progress ------------------------------------------------------------------------------ */

typedef struct {
    int on;
    double last;
    int drawn;
} progress_t;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void on_progress(const smki_ca_batch_report *r, void *arg)
{
    progress_t *p = arg;
    if (!p->on) return;
    double t = now_s();
    int final = r->done == r->total;
    if (!final && p->drawn && t - p->last < 0.1) return;
    p->last = t;
    p->drawn = 1;
    enum { WIDTH = 30 };
    size_t fill = r->total ? r->done * WIDTH / r->total : WIDTH;
    char bar[WIDTH + 1];
    for (size_t i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    double rate = r->seconds > 0 ? (double)(r->issued + r->existing) / r->seconds : 0;
    double eta = rate > 0 ? (double)(r->total - r->done) / rate : 0;
    fprintf(stderr, "\r\033[K[%s] %zu/%zu  issued %zu  already %zu  refused %zu  %.0f/s  ETA %.0fs", bar, r->done,
            r->total, r->issued, r->existing, r->refused, rate, eta);
    fflush(stderr);
}

static void progress_clear(progress_t *p)
{
    if (p->on && p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}

/* ---- Output --------------------------------------------------------------------------------- */

static void json_report(const smki_ca_batch_report *r, const smki_ca_batch_input *in, const char *env,
                        const char *party, const char *out_dir, unsigned threads)
{
    json_w w;
    json_begin(&w, stdout);
    json_bool(&w, "ok", r->refused == 0);
    json_str(&w, "env", env);
    if (party) json_str(&w, "party", party);
    json_str(&w, "out", out_dir);
    json_int(&w, "threads", threads);
    json_int(&w, "total", (long long)r->total);
    json_int(&w, "issued", (long long)r->issued);
    json_int(&w, "already_issued", (long long)r->existing);
    json_int(&w, "duplicate", (long long)r->duplicate);
    json_int(&w, "refused", (long long)r->refused);
    json_int(&w, "files_written", (long long)r->files_written);
    json_int(&w, "name_clashes", (long long)r->name_clashes);
    json_int(&w, "commits", (long long)r->commits);
    json_int(&w, "milliseconds", (long long)(r->seconds * 1000.0 + 0.5));
    json_key_arr(&w, "items");
    for (size_t i = 0; i < r->total; i++) {
        const smki_ca_batch_item *it = &r->items[i];
        json_arr_obj(&w);
        json_str(&w, "input", smki_ca_batch_input_name(in, i));
        json_str(&w, "outcome", smki_batch_outcome_name(it->outcome));
        if (it->has_cert) {
            char hx[2 * SMKI_SERIAL_LEN + 1], eui[SMKI_EUI64_TEXT_MAX];
            smki_hex_encode(it->serial, SMKI_SERIAL_LEN, hx, 0);
            smki_eui64_format(&it->eui, SMKI_EUI64_HYPHEN, eui);
            json_str(&w, "serial", hx);
            json_str(&w, "eui64", eui);
            json_str(&w, "usage", smki_cert_usage_name(it->usage));
            if (it->file[0]) json_str(&w, "file", it->file);
            if (it->name_clash) json_bool(&w, "name_clash", 1);
        }
        if (it->outcome == SMKI_BATCH_DUPLICATE)
            json_str(&w, "duplicate_of", smki_ca_batch_input_name(in, it->duplicate_of));
        if (it->outcome == SMKI_BATCH_REFUSED) {
            json_str(&w, "code", smki_error_name(it->code));
            json_str(&w, "reason", it->reason);
        }
        json_close_obj(&w);
    }
    json_close_arr(&w);
    json_end(&w);
}

static void human_report(const smki_ca_batch_report *r, const smki_ca_batch_input *in, const char *out_dir, FILE *f)
{
    double rate = r->seconds > 0 ? (double)(r->issued + r->existing) / r->seconds : 0;
    fprintf(f, "  issued          %6zu  new certificate(s), in %zu group commit(s)\n", r->issued, r->commits);
    fprintf(f, "  already issued  %6zu  by an earlier run: the same certificate written out again\n", r->existing);
    fprintf(f, "  duplicates      %6zu  the same CSR again in this input: one certificate\n", r->duplicate);
    fprintf(f, "  refused         %6zu\n", r->refused);
    fprintf(f, "  files written   %6zu  to %s (files already in place are left as they are)\n", r->files_written,
            out_dir);
    fprintf(f, "  time            %6.2f s (%.0f certificates/s)\n", r->seconds, rate);
    if (r->name_clashes) {
        fprintf(f, "Written under the serial's name (<eui>-<usage>.pem holds another certificate):\n");
        for (size_t i = 0; i < r->total; i++)
            if (r->items[i].name_clash && r->items[i].outcome != SMKI_BATCH_DUPLICATE)
                fprintf(f, "  %s -> %s\n", smki_ca_batch_input_name(in, i), r->items[i].file);
    }
    if (r->refused) {
        fprintf(f, "Refused:\n");
        for (size_t i = 0; i < r->total; i++)
            if (r->items[i].outcome == SMKI_BATCH_REFUSED)
                fprintf(f, "  %s: %s: %s\n", smki_ca_batch_input_name(in, i), smki_error_name(r->items[i].code),
                        r->items[i].reason);
    }
}

/* ---- The command ------------------------------------------------------------------------------ */

/* The line before the run, once the device CA is open. */
typedef struct {
    smki_cli *c;
    const char *in_path, *env;
    size_t threads;
} start_line;

static void on_start(size_t csrs, void *arg)
{
    start_line *l = arg;
    if (l->c->json) return;
    printf("Batch of %zu CSR(s) from %s with the device CA of environment %s (%zu thread(s)):\n", csrs,
           strcmp(l->in_path, "-") == 0 ? "standard input" : l->in_path, l->env, l->threads);
    fflush(stdout);
}

typedef struct {
    const char *env, *in_path, *out_dir, *party, *op, *op_key;
    size_t threads, group;
} batch_args;

/* The options; --threads and --group counted, the processors by default. */
static int batch_parse(smki_cli *c, int argc, char **argv, batch_args *a)
{
    const char *threads = NULL, *group = NULL;
    const cli_opt opts[] = {CLI_VALUE("env", &a->env),     CLI_VALUE("in", &a->in_path),
                            CLI_VALUE("out", &a->out_dir), CLI_VALUE("threads", &threads),
                            CLI_VALUE("group", &group),    CLI_VALUE("party", &a->party),
                            CLI_VALUE("operator", &a->op), CLI_VALUE("operator-key", &a->op_key),
                            CLI_END};
    const cli_spec spec = {"smki ca batch", BATCH_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!a->env || !a->in_path || !a->out_dir)
        return cli_usage(c, "smki ca batch", "--env, --in and --out are required");
    if (strcmp(a->out_dir, "-") == 0)
        return cli_usage(c, "smki ca batch", "--out is the folder for the certificates, not '-' (standard output)");
    uint64_t n = 0;
    int rc = threads ? cli_number("--threads", threads, 1, 64, &n) : 0;
    a->threads = (size_t)n;
    if (rc == 0 && group) rc = cli_number("--group", group, 1, 100000, &n);
    a->group = group ? (size_t)n : 0;
    if (rc < 0) return cli_fail(c, rc);
    if (!a->threads) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        a->threads = cores > 0 ? (size_t)cores : 1;
    }
    return CLI_GO;
}

/* The batch through the RA's gate (smki_ra_batch), with the progress bar. */
static int batch_run(smki_cli *c, const batch_args *a, const smki_ca_batch_input *in, smki_ca_batch_report **rep)
{
    ca_session x = {0};
    int rc = cli_home(c);
    /* Never create a store here: a batch needs the hierarchy that 'ca init' made. */
    if (rc == 0 && smki_store_exists(c->store_dir) == 0)
        rc = SMKI_FAIL(SMKI_E_NOTFOUND, "environment %s has no CA yet: run 'smki ca init --env %s' first", a->env,
                       a->env);
    if (rc == 0) rc = cli_pin(c, 0);
    if (rc >= 0) rc = ca_session_open(c, a->env, 1, a->op, a->op_key, &x);
    progress_t bar = {!c->json && isatty(STDERR_FILENO), 0, 0};
    start_line line = {c, a->in_path, a->env, a->threads};
    if (rc >= 0) {
        smki_ca_batch_opts o = {a->out_dir, (unsigned)a->threads, a->group, 0, on_progress, &bar, NULL, NULL, NULL};
        smki_ra_batch_req r = {a->env, a->party, &c->hsm, on_start, &line, 0, NULL};
        rc = smki_ra_batch(x.ra, x.by, &r, in, &o, rep);
        progress_clear(&bar);
    }
    ca_session_close(&x);
    return rc;
}

/* The summary and the exit code: 2 if any CSR was refused. */
static int batch_print(smki_cli *c, const batch_args *a, int rc, const smki_ca_batch_report *rep,
                       const smki_ca_batch_input *in)
{
    if (rc < 0) {
        if (rep && rep->done && !c->json) {
            human_report(rep, in, a->out_dir, stderr);
            fprintf(stderr, "The run stopped after %zu of %zu CSR(s); what is committed stays. Run it again to carry "
                            "on.\n",
                    rep->done, rep->total);
        }
        return cli_fail(c, rc);
    }
    if (c->json) {
        json_report(rep, in, a->env, a->party, a->out_dir, (unsigned)a->threads);
        return rep->refused ? EXIT_REFUSED : EXIT_OK;
    }
    human_report(rep, in, a->out_dir, stdout);
    if (!rep->refused) return EXIT_OK;
    fprintf(stderr, "smki: refused: %zu of %zu CSR(s) refused (listed above); the others have their certificates\n",
            rep->refused, rep->total);
    return EXIT_REFUSED;
}

/* --in: a folder or file, or "-": standard input read as a file. */
static int batch_input(const char *path, smki_ca_batch_input **in)
{
    if (strcmp(path, "-") != 0) return smki_ca_batch_input_open(path, in);
    uint8_t *bytes = NULL;
    size_t len = 0;
    GUARD(cli_read("-", SMKI_CA_BATCH_FILE_MAX, &bytes, &len));
    return smki_ca_batch_input_from_bytes("stdin", bytes, len, in);
}

int cmd_ca_batch(smki_cli *c, int argc, char **argv)
{
    batch_args a = {0};
    int stop = batch_parse(c, argc, argv, &a);
    if (stop != CLI_GO) return stop;
    smki_ca_batch_input *in = NULL;
    smki_ca_batch_report *rep = NULL;
    int rc = cli_home(c);
    if (rc == 0) rc = batch_input(a.in_path, &in);
    if (rc == 0) rc = batch_run(c, &a, in, &rep);
    int exit_code = batch_print(c, &a, rc, rep, in);
    smki_ca_batch_report_free(rep);
    smki_ca_batch_input_free(in);
    return exit_code;
}
