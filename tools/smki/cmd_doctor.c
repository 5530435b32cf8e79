/* smki doctor: check a home and say what to do about each problem (ops/doctor.c). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "gbcs/gbcs.h"
#include "ops/ops.h"

static const char DOCTOR_HELP[] =
    "Usage: smki doctor [--ca-warn-days N] [--at TIME]\n"
    "\n"
    "Check the home as an operator would, changing nothing (the store is opened\n"
    "read-only, nothing is signed): the folder and its permissions, smki.conf (every\n"
    "section and setting known), the PIN files (not readable by every user), the token\n"
    "and that the user PIN logs in, the store, each CA (validity, and that its key is\n"
    "where the ceremony put it), each CA's latest CRL or ARL (published, not lapsed,\n"
    "not due: a warning in the last quarter of its period; the file under ca/ENV/ the\n"
    "same as the store's), the audit trail (chain, signatures, checkpoints) and, in a\n"
    "home with [repo] tls_cert, the repository's TLS certificate (a warning 30 days ahead).\n"
    "Each finding is ok, note, warning or problem, with what to do about it.\n"
    "\n"
    "  --ca-warn-days N  a CA expiring within N days is a warning (default 180)\n"
    "  --at TIME         judge dates as at TIME (2027-01-01 or 2027-01-01T00:00:00Z):\n"
    "                    what will have lapsed by then if nobody publishes\n"
    "\n"
    "Exit 0 when nothing is a problem (warnings allowed), 2 when something is.\n"
    "--json: {\"ok\":..., \"problems\":N, \"warnings\":N, \"checks\":[{\"check\",\"subject\",\n"
    "\"level\",\"finding\",\"action\"}, ...]}.\n"
    "\n"
    "Examples (in a working home: its CAs made, their CRLs and ARLs published):\n"
    "  smki doctor\n"
    "  smki --json doctor --ca-warn-days 36500\n"
    "  smki doctor --at 2099-01-01     # exits 2: by then every CA has expired\n";

static void print_report(const smki_cli *c, const smki_doctor_report *rep)
{
    int ok = rep->count[SMKI_DOCTOR_PROBLEM] == 0;
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", ok);
        json_str(&w, "home", c->home);
        json_int(&w, "problems", (long long)rep->count[SMKI_DOCTOR_PROBLEM]);
        json_int(&w, "warnings", (long long)rep->count[SMKI_DOCTOR_WARN]);
        json_int(&w, "not_shown", (long long)rep->dropped);
        json_key_arr(&w, "checks");
        for (size_t i = 0; i < rep->n; i++) {
            const smki_doctor_item *it = &rep->items[i];
            json_arr_obj(&w);
            json_str(&w, "check", it->check);
            json_str(&w, "subject", it->subject);
            json_str(&w, "level", smki_doctor_level_name(it->level));
            json_str(&w, "finding", it->finding);
            json_str(&w, "action", it->action);
            json_close_obj(&w);
        }
        json_close_arr(&w);
        json_end(&w);
        return;
    }
    static const char *const TAG[] = {"ok", "note", "WARN", "PROBLEM"};
    printf("smki doctor: home %s\n", c->home);
    for (size_t i = 0; i < rep->n; i++) {
        const smki_doctor_item *it = &rep->items[i];
        printf("  %-8s %-9s %s%s%s\n", TAG[it->level], it->check, it->subject, *it->subject ? ": " : "", it->finding);
        if (*it->action && it->level != SMKI_DOCTOR_OK) printf("  %-8s %-9s -> %s\n", "", "", it->action);
    }
    if (rep->dropped) printf("  (%zu further findings not shown)\n", rep->dropped);
    printf("%zu problem(s), %zu warning(s).%s\n", rep->count[SMKI_DOCTOR_PROBLEM], rep->count[SMKI_DOCTOR_WARN],
           ok ? (rep->count[SMKI_DOCTOR_WARN] ? " Nothing is broken; see the warnings." : " All well.") : "");
}

/* --ca-warn-days N and --at TIME into warn_days and at (0: unset). */
static int doctor_args(const char *days, const char *when, unsigned *warn_days, time_t *at)
{
    uint64_t n = 0;
    if (days) GUARD(cli_number("--ca-warn-days", days, 1, 36500, &n));
    *warn_days = (unsigned)n;
    if (when) GUARD(smki_gbcs_time_parse(when, at));
    return 0;
}

/* Every check of the home into rep: a missing home or configuration is itself a finding. */
static int doctor_collect(smki_cli *c, unsigned warn_days, time_t at, smki_doctor_report *rep)
{
    int rc = cli_home(c);
    if (rc < 0) {
        /* Nothing further can be looked at without a home and its configuration. */
        int no_home = rc == SMKI_E_NOTFOUND;
        smki_doctor_add(rep, no_home ? "home" : "config", no_home ? c->home : c->conf_path, SMKI_DOCTOR_PROBLEM,
                        smki_error_msg(),
                        no_home ? "check --home or SMKI_HOME" : "correct smki.conf at the line named; docs/ for each section");
        smki_error_clear();
        return rc;
    }
    if (cli_pin(c, 0) < 0) {
        smki_doctor_add(rep, "pin", c->token, SMKI_DOCTOR_PROBLEM, smki_error_msg(),
                        "see the pin-file check; commands that sign will refuse the same way");
        smki_error_clear();
        c->hsm.pin = NULL;
    }
    smki_doctor_opts o = {c->home, c->conf, c->conf_path, &c->hsm, c->token, c->store_dir, (int64_t)at, warn_days};
    return smki_doctor_run(&o, rep);
}

int cmd_doctor(smki_cli *c, int argc, char **argv)
{
    const char *days = NULL, *when = NULL;
    const cli_opt opts[] = {CLI_VALUE("ca-warn-days", &days), CLI_VALUE("at", &when), CLI_END};
    const cli_spec spec = {"smki doctor", DOCTOR_HELP, opts, "no arguments", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    unsigned warn_days = 0;
    time_t at = 0;
    int rc = doctor_args(days, when, &warn_days, &at);
    if (rc < 0) return cli_fail(c, rc);
    smki_doctor_report *rep = calloc(1, sizeof *rep);
    if (!rep) return cli_fail(c, SMKI_FAIL(SMKI_E_NOMEM, "out of memory"));
    rc = doctor_collect(c, warn_days, at, rep);
    if (rc < 0 && rep->n == 0) {
        free(rep);
        return cli_fail(c, rc);
    }
    print_report(c, rep);
    int exit_code = rep->count[SMKI_DOCTOR_PROBLEM] ? EXIT_REFUSED : EXIT_OK;
    free(rep);
    return exit_code;
}
