/* smki ra and smki audit: the Registration Authority's operators' commands. The
 * registry (operators, parties, EUI-64 blocks, IDs, subscribers, suspensions),
 * requests (submit, list, show, approve, reject, execute), the expiry monitor, and
 * the audit trail's verification. Argument parsing and output only: the work is in ra/. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "ra/ra.h"

/* ---- The RA, the acting operator ------------------------------------------------------------- */

/* Who takes an action: every command that acts as an operator declares these options. */
typedef struct {
    const char *name, *key;
} ra_who;
#define WHO_OPTS(w) CLI_VALUE("operator", &(w).name), CLI_VALUE("operator-key", &(w).key)
#define WHO_HELP                                                                                                      \
    "\n"                                                                                                              \
    "Every action takes --operator NAME [--operator-key KEY] (or SMKI_OPERATOR /\n"                                  \
    "SMKI_OPERATOR_KEY; the key may also be '[operators] NAME = KEY' in smki.conf). KEY is a\n"                      \
    "pkcs11: URI, file:PATH or a label on the home's token; the PIN comes from SMKI_PIN or\n"                        \
    "--pin-file, never the command line.\n"

typedef struct {
    smki_store *s;
    smki_ra *ra;
    smki_key *op_key;
    smki_ra_actor actor;
    int empty; /* a read of a home without a store */
} ra_ctx;

int ra_cli_actor(smki_cli *c, const char *op, const char *key, smki_key **out)
{
    if (!op) op = getenv("SMKI_OPERATOR");
    ENSURE(op && *op, SMKI_E_USAGE,
           "this is an RA action: say who takes it with --operator NAME (and --operator-key KEY, or "
           "[operators] NAME = KEY in smki.conf)");
    if (!key) key = getenv("SMKI_OPERATOR_KEY");
    char ck[128];
    snprintf(ck, sizeof ck, "operators.%s", op);
    if (!key) key = smki_conf_get(c->conf, ck, NULL);
    ENSURE(key, SMKI_E_USAGE,
           "operator %s: no key: give --operator-key KEY (file:PATH, pkcs11: URI or a label on the home's token) "
           "or set [operators] %s = KEY in smki.conf",
           op, op);
    int rc = cli_open_key(c, key, out);
    if (rc < 0) return smki_error_wrap("operator %s's key", op);
    return 0;
}

void ra_cli_checkpoint_key(smki_cli *c, smki_ra *ra)
{
    const char *ck = smki_conf_get(c->conf, "audit.checkpoint_key", "smki-audit");
    smki_key *k = NULL;
    char ref[SMKI_KEY_URI_MAX];
    if (cli_key_ref(c, ck, ref, sizeof ref) == 0 && cli_pin(c, 0) >= 0 && smki_key_open(ref, &c->hsm, &k) == 0)
        smki_ra_set_checkpoint_key(ra, k);
    else
        smki_error_clear();
}

/* write: open (creating) the store and the checkpoint key; who: the acting operator
 * (NULL: a read, no operator). */
static int ra_begin(smki_cli *c, int write, const ra_who *who, ra_ctx *x)
{
    memset(x, 0, sizeof *x);
    GUARD(cli_home(c));
    smki_ra_policy pol;
    GUARD(smki_ra_policy_load(c->conf, &pol));
    if (who) {
        x->actor.name = who->name ? who->name : getenv("SMKI_OPERATOR");
        GUARD(ra_cli_actor(c, x->actor.name, who->key, &x->op_key));
        x->actor.key = x->op_key;
    }
    if (!write) {
        /* Reading opens the store read-only ('smki audit verify' of a store on read-only
         * media); no store, or an RA that has written nothing yet, is an empty registry. */
        GUARD(smki_ra_open_read(c->store_dir, &pol, &x->s, &x->ra));
        x->empty = x->ra == NULL;
        return 0;
    }
    smki_store_opts so = {0, 0, 0};
    GUARD(smki_store_open(c->store_dir, &so, &x->s));
    GUARD(smki_ra_open(x->s, &pol, &x->ra));
    /* The checkpoint key: its absence fails the action on which a checkpoint falls due. */
    ra_cli_checkpoint_key(c, x->ra);
    return 0;
}

static void ra_end(ra_ctx *x)
{
    smki_ra_close(x->ra);
    smki_store_close(x->s);
    smki_key_free(x->op_key);
    memset(x, 0, sizeof *x);
}

static int done_msg(smki_cli *c, int rc, ra_ctx *x, const char *text)
{
    ra_end(x);
    if (rc < 0) return cli_fail(c, rc);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "result", text);
        json_end(&w);
    } else {
        puts(text);
    }
    return EXIT_OK;
}

/* An action as the operator: open, act (fn), and print text (made by fn) or the failure. */
typedef int (*ra_act_fn)(ra_ctx *x, void *arg, char *msg, size_t cap);

static int act(smki_cli *c, const ra_who *who, ra_act_fn fn, void *arg)
{
    ra_ctx x;
    char msg[4800] = "";
    int rc = ra_begin(c, 1, who, &x);
    if (rc == 0) rc = fn(&x, arg, msg, sizeof msg);
    return done_msg(c, rc, &x, msg);
}

/* How a file is named in messages. */
static const char *file_name(const char *path)
{
    return strcmp(path, "-") == 0 ? "standard input" : path;
}

/* A file read whole ("-": standard input), named in the error. */
static int read_named(const char *path, size_t max, uint8_t **out, size_t *len)
{
    int rc = cli_read(path, max, out, len);
    if (rc < 0) return smki_error_wrap("%s", file_name(path));
    return 0;
}

static int pub_read(const char *path, EVP_PKEY **out)
{
    uint8_t *data = NULL;
    size_t len = 0;
    GUARD(read_named(path, 65536, &data, &len));
    int rc = smki_pub_load(data, len, out);
    free(data);
    if (rc < 0) return smki_error_wrap("%s", file_name(path));
    return 0;
}

static int yes_no(const char *text, const char *opt, int *out)
{
    if (!text) {
        *out = -1;
        return 0;
    }
    if (strcmp(text, "yes") == 0 || strcmp(text, "1") == 0) *out = 1;
    else if (strcmp(text, "no") == 0 || strcmp(text, "0") == 0) *out = 0;
    else return SMKI_FAIL(SMKI_E_USAGE, "--%s is yes or no, not '%.16s'", opt, text);
    return 0;
}

/* A request (or audit entry) number: 1 to 2^64-1, decimal. */
static int parse_id(const char *text, uint64_t *id)
{
    *id = 0;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    /* strtoull saturates above 2^64-1: that is another number, not this one. */
    ENSURE(text[0] >= '1' && text[0] <= '9' && end && !*end && errno != ERANGE, SMKI_E_USAGE,
           "'%.32s' is not a request number (1 to 18446744073709551615)", text);
    *id = v;
    return 0;
}

/* A group's verbs: "smki ra party --help" prints the group's help (every verb's usage). */
static int ra_group(smki_cli *c, const cli_cmd *verbs, const char *help, const char *prog, int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(help, stdout);
        return EXIT_OK;
    }
    return cli_dispatch(c, verbs, argc - 1, argv + 1, prog, help);
}

/* ---- Lists --------------------------------------------------------------------------------------- */

typedef struct {
    json_w *w;
    size_t n;
    const smki_cli *c;
} list_run;

/* Lists share this frame: JSON array (or table), then a count. */
typedef int (*lister)(ra_ctx *x, list_run *r, void *arg);

static int run_list(smki_cli *c, const char *key, lister fn, void *arg, const char *noun)
{
    ra_ctx x;
    int rc = ra_begin(c, 0, NULL, &x);
    if (rc < 0) {
        ra_end(&x);
        return cli_fail(c, rc);
    }
    json_w w;
    list_run r = {c->json ? &w : NULL, 0, c};
    json_list_open(c, &w, key);
    if (!x.empty) rc = fn(&x, &r, arg);
    if (c->json) {
        json_close_arr(&w);
        json_int(&w, "count", (long long)r.n);
        json_end(&w);
    } else if (rc == 0) {
        printf("%zu %s\n", r.n, noun);
    }
    ra_end(&x);
    return cli_finish(c, rc);
}

/* A list verb without options or arguments. */
static int list_verb(smki_cli *c, int argc, char **argv, const char *prog, const char *help, const char *key,
                     lister fn, const char *noun)
{
    const cli_spec spec = {prog, help, NULL, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    return run_list(c, key, fn, NULL, noun);
}

/* ---- operator ------------------------------------------------------------------------------------ */

static const char OPERATOR_HELP[] =
    "Usage: smki ra operator add NAME --pub FILE      (register an RA operator and their public key)\n"
    "       smki ra operator list\n"
    "       smki ra operator deactivate NAME\n"
    "\n"
    "Every RA action is taken by a registered operator and signed with their own key (in\n"
    "a token, or a file): --operator NAME --operator-key KEY on every command (or\n"
    "SMKI_OPERATOR / SMKI_OPERATOR_KEY, or '[operators] NAME = KEY' in smki.conf). KEY is a\n"
    "pkcs11: URI, file:PATH or a label on the home's token; the PIN comes from SMKI_PIN or\n"
    "--pin-file, never the command line. --pub - reads the public key from standard input.\n"
    "\n"
    "The first operator of a registry registers themself (--operator is the NAME being\n"
    "added, with its own key): the bootstrap. Their registration also binds the CA\n"
    "certificates already in the store (the ceremony that preceded the RA) to the audit\n"
    "trail ('smki ra adopt-ca'). Later ones are added by an active operator.\n"
    "A deactivated operator's past entries still verify; they can take no new action.\n"
    "\n"
    "Example (a new home: SMKI_HOME names a folder not made yet, no PINs in the\n"
    "environment; the bootstrap: alice registers herself, with a key in the new token):\n"
    "  umask 077; openssl rand -hex 8 > so.pin; openssl rand -hex 8 > user.pin\n"
    "  smki --so-pin-file so.pin --pin-file user.pin hsm init\n"
    "  smki --pin-file user.pin key generate --label op-alice --usage ds\n"
    "  smki --pin-file user.pin key pub op-alice --out alice.pub\n"
    "  smki --pin-file user.pin ra operator add alice --pub alice.pub \\\n"
    "      --operator alice --operator-key op-alice\n"
    "  smki ra operator list\n"
    "\n"
    "Example (" HELP_TEST_HOME "; a second operator, bob, added by tester, acts\n"
    "with a key of his own in the token):\n"
    "  smki key generate --label op-bob --usage ds && smki key pub op-bob --out bob.pub\n"
    "  smki ra operator add bob --pub bob.pub --operator tester\n"
    "  smki ra party add SUPPLIER-B --testing-participant --operator bob --operator-key op-bob\n"
    "  smki audit list --last 2\n";

static int operator_row(const smki_ra_operator *o, void *arg)
{
    list_run *r = arg;
    char t[CLI_TIME_MAX], hx[2 * SMKI_POINT_LEN + 1];
    cli_when(r->c, o->added, t);
    smki_hex_encode(o->point, SMKI_POINT_LEN, hx, 0);
    if (r->w) {
        json_arr_obj(r->w);
        json_str(r->w, "name", o->name);
        json_bool(r->w, "active", o->active);
        json_str(r->w, "added", t);
        json_str(r->w, "public_point", hx);
        json_close_obj(r->w);
    } else {
        if (!r->n) printf("%-20s %-8s %-21s %s\n", "NAME", "ACTIVE", "ADDED", "PUBLIC KEY (point, start)");
        printf("%-20s %-8s %-21s %.24s...\n", o->name, o->active ? "yes" : "no", t, hx);
    }
    r->n++;
    return 0;
}

static int list_operators(ra_ctx *x, list_run *r, void *arg)
{
    (void)arg;
    return smki_ra_operator_each(x->ra, operator_row, r);
}

static int operator_list(smki_cli *c, int argc, char **argv)
{
    return list_verb(c, argc, argv, "smki ra operator list", OPERATOR_HELP, "operators", list_operators,
                     "operator(s)");
}

typedef struct {
    const char *name;
    EVP_PKEY *pub;
} operator_arg;

static int operator_added(ra_ctx *x, void *arg, char *msg, size_t cap)
{
    const operator_arg *a = arg;
    size_t adopted = 0;
    GUARD(smki_ra_operator_add_bootstrap(x->ra, &x->actor, a->name, a->pub, &adopted));
    int at = snprintf(msg, cap, "Operator %s registered. They act with --operator %s --operator-key KEY.", a->name,
                      a->name);
    if (adopted && at > 0 && (size_t)at < cap)
        snprintf(msg + at, cap - (size_t)at,
                 "\nThe bootstrap ceremony's %zu CA certificate(s) are now in the audit trail (ca-adopt entries "
                 "signed by %s: SKI, subject, SHA-256).",
                 adopted, a->name);
    return 0;
}

static int operator_add(smki_cli *c, int argc, char **argv)
{
    const char *pub_path = NULL, *pos[1];
    ra_who who = {0};
    const cli_opt opts[] = {CLI_VALUE("pub", &pub_path), WHO_OPTS(who), CLI_END};
    const cli_spec spec = {"smki ra operator add", OPERATOR_HELP, opts, "NAME", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    if (!pub_path) return cli_usage(c, spec.prog, "--pub FILE (the operator's public key) is required");
    operator_arg a = {pos[0], NULL};
    int rc = pub_read(pub_path, &a.pub);
    if (rc < 0) return cli_fail(c, rc);
    rc = act(c, &who, operator_added, &a);
    EVP_PKEY_free(a.pub);
    return rc;
}

static int operator_deactivated(ra_ctx *x, void *arg, char *msg, size_t cap)
{
    GUARD(smki_ra_operator_deactivate(x->ra, &x->actor, arg));
    snprintf(msg, cap, "Operator %s deactivated: their entries still verify; they can act no more.",
             (const char *)arg);
    return 0;
}

static int operator_deactivate(smki_cli *c, int argc, char **argv)
{
    const char *pos[1];
    ra_who who = {0};
    const cli_opt opts[] = {WHO_OPTS(who), CLI_END};
    const cli_spec spec = {"smki ra operator deactivate", OPERATOR_HELP, opts, "NAME", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    return act(c, &who, operator_deactivated, (void *)pos[0]);
}

static int ra_operator(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd VERBS[] = {
        {"add", operator_add, "register an RA operator and their public key"},
        {"list", operator_list, "the registered operators"},
        {"deactivate", operator_deactivate, "end an operator's right to act"},
        {NULL, NULL, NULL},
    };
    return ra_group(c, VERBS, OPERATOR_HELP, "smki ra operator", argc, argv);
}

/* ---- party ------------------------------------------------------------------------------------- */

static const char PARTY_HELP[] =
    "Usage: smki ra party add SIGNIFIER [--name NAME] [--dcc] [--testing-participant] [--agreement-signed]\n"
    "       smki ra party list\n"
    "       smki ra party show SIGNIFIER\n"
    "       smki ra party set SIGNIFIER [--testing-participant yes|no] [--agreement-signed yes|no]\n"
    "       smki ra party suspend SIGNIFIER --reason TEXT\n"
    "       smki ra party resume SIGNIFIER\n"
    "\n"
    "Parties are known by their Party Signifier (unique within the SEC; letters, digits,\n"
    "'-', '_', '.'). --dcc marks the DCC itself (its IDs are DCC IDs). Test certificates\n"
    "go only to a Testing Participant whose signed agreement is on file. A suspended party\n"
    "may request nothing, and the gateway refuses its Users ('smki ra id check EUI64').\n" WHO_HELP;

static void party_json(json_w *w, const smki_cli *c, const smki_ra_party *p)
{
    char t[CLI_TIME_MAX];
    cli_when(c, p->created, t);
    json_str(w, "signifier", p->signifier);
    json_str(w, "name", p->name);
    json_bool(w, "dcc", p->is_dcc);
    json_bool(w, "testing_participant", p->is_testing_participant);
    json_bool(w, "agreement_signed", p->agreement_signed);
    json_bool(w, "suspended", p->suspended);
    if (p->suspended) json_str(w, "suspend_reason", p->suspend_reason);
    json_str(w, "created", t);
}

static int party_row(const smki_ra_party *p, void *arg)
{
    list_run *r = arg;
    if (r->w) {
        json_arr_obj(r->w);
        party_json(r->w, r->c, p);
        json_close_obj(r->w);
    } else {
        if (!r->n)
            printf("%-20s %-28s %-4s %-8s %-9s %s\n", "SIGNIFIER", "NAME", "DCC", "TESTING", "AGREEMENT", "STATE");
        printf("%-20s %-28.28s %-4s %-8s %-9s %s%s\n", p->signifier, p->name, p->is_dcc ? "yes" : "-",
               p->is_testing_participant ? "yes" : "-", p->agreement_signed ? "signed" : "-",
               p->suspended ? "suspended: " : "active", p->suspended ? p->suspend_reason : "");
    }
    r->n++;
    return 0;
}

static int list_parties(ra_ctx *x, list_run *r, void *arg)
{
    (void)arg;
    return smki_ra_party_each(x->ra, party_row, r);
}

static int party_list(smki_cli *c, int argc, char **argv)
{
    return list_verb(c, argc, argv, "smki ra party list", PARTY_HELP, "parties", list_parties, "party(ies)");
}

static int party_show(smki_cli *c, int argc, char **argv)
{
    const char *pos[1];
    const cli_spec spec = {"smki ra party show", PARTY_HELP, NULL, "SIGNIFIER", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    ra_ctx x;
    smki_ra_party p;
    int rc = ra_begin(c, 0, NULL, &x);
    if (rc == 0 && x.empty) rc = SMKI_FAIL(SMKI_E_NOTFOUND, "no party '%s' in the registry", pos[0]);
    if (rc == 0) rc = smki_ra_party_get(x.ra, pos[0], &p);
    ra_end(&x);
    if (rc < 0) return cli_fail(c, rc);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        party_json(&w, c, &p);
        json_end(&w);
    } else {
        list_run r = {NULL, 0, c};
        party_row(&p, &r);
    }
    return EXIT_OK;
}

static int party_added(ra_ctx *x, void *arg, char *msg, size_t cap)
{
    const smki_ra_party *p = arg;
    GUARD(smki_ra_party_add(x->ra, &x->actor, p));
    snprintf(msg, cap,
             "Party %s registered. Next: assign it an EUI-64 block ('smki ra range assign BLOCK --party %s --kind "
             "central') and authorise it ('smki ra subscriber authorise --party %s ...').",
             p->signifier, p->signifier, p->signifier);
    return 0;
}

static int party_add(smki_cli *c, int argc, char **argv)
{
    const char *name = NULL, *pos[1];
    int dcc = 0, tp = 0, agreement = 0;
    ra_who who = {0};
    const cli_opt opts[] = {CLI_VALUE("name", &name),
                            CLI_FLAG("dcc", &dcc),
                            CLI_FLAG("testing-participant", &tp),
                            CLI_FLAG("agreement-signed", &agreement),
                            WHO_OPTS(who),
                            CLI_END};
    const cli_spec spec = {"smki ra party add", PARTY_HELP, opts, "SIGNIFIER", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    smki_ra_party p;
    memset(&p, 0, sizeof p);
    if (strlen(pos[0]) >= sizeof p.signifier) return cli_usage(c, spec.prog, "Party Signifier too long");
    if (name && strlen(name) >= sizeof p.name) return cli_usage(c, spec.prog, "--name is at most 64 characters");
    snprintf(p.signifier, sizeof p.signifier, "%s", pos[0]);
    snprintf(p.name, sizeof p.name, "%s", name ? name : "");
    p.is_dcc = dcc, p.is_testing_participant = tp, p.agreement_signed = agreement;
    return act(c, &who, party_added, &p);
}

/* set, suspend, resume: one Party, one change. */
typedef struct {
    const char *sig, *reason;
    int verb; /* 0 set, 1 suspend, 2 resume */
    int tp, agreement;
} party_change;

static int party_changed(ra_ctx *x, void *arg, char *msg, size_t cap)
{
    const party_change *p = arg;
    if (p->verb == 0) {
        GUARD(smki_ra_party_set_testing(x->ra, &x->actor, p->sig, p->tp, p->agreement));
        snprintf(msg, cap, "Party %s updated.", p->sig);
        return 0;
    }
    GUARD(smki_ra_party_suspend(x->ra, &x->actor, p->sig, p->verb == 1, p->reason));
    snprintf(msg, cap,
             p->verb == 1 ? "Party %s suspended: it may request nothing and the gateway refuses its Users."
                          : "Party %s resumed.",
             p->sig);
    return 0;
}

static int party_set(smki_cli *c, int argc, char **argv)
{
    const char *tp = NULL, *agreement = NULL, *pos[1];
    ra_who who = {0};
    const cli_opt opts[] = {CLI_VALUE("testing-participant", &tp), CLI_VALUE("agreement-signed", &agreement),
                            WHO_OPTS(who), CLI_END};
    const cli_spec spec = {"smki ra party set", PARTY_HELP, opts, "SIGNIFIER", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    party_change p = {pos[0], NULL, 0, -1, -1};
    int rc = yes_no(tp, "testing-participant", &p.tp);
    if (rc == 0) rc = yes_no(agreement, "agreement-signed", &p.agreement);
    if (rc == 0 && p.tp < 0 && p.agreement < 0)
        rc = SMKI_FAIL(SMKI_E_USAGE, "give --testing-participant yes|no and/or --agreement-signed yes|no");
    if (rc < 0) return cli_fail(c, rc);
    return act(c, &who, party_changed, &p);
}

static int party_suspend_resume(smki_cli *c, int argc, char **argv, int suspend)
{
    const char *reason = NULL, *pos[1];
    ra_who who = {0};
    const cli_opt with_reason[] = {CLI_VALUE("reason", &reason), WHO_OPTS(who), CLI_END};
    const cli_opt plain[] = {WHO_OPTS(who), CLI_END};
    const cli_spec spec = {suspend ? "smki ra party suspend" : "smki ra party resume", PARTY_HELP,
                           suspend ? with_reason : plain, "SIGNIFIER", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    party_change p = {pos[0], reason, suspend ? 1 : 2, -1, -1};
    return act(c, &who, party_changed, &p);
}

static int party_suspend(smki_cli *c, int argc, char **argv)
{
    return party_suspend_resume(c, argc, argv, 1);
}

static int party_resume(smki_cli *c, int argc, char **argv)
{
    return party_suspend_resume(c, argc, argv, 0);
}

static int ra_party(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd VERBS[] = {
        {"add", party_add, "register a Party"},
        {"list", party_list, "the registered Parties"},
        {"show", party_show, "one Party"},
        {"set", party_set, "Testing Participant and its signed agreement"},
        {"suspend", party_suspend, "suspend a Party: it may request nothing"},
        {"resume", party_resume, "end a Party's suspension"},
        {NULL, NULL, NULL},
    };
    return ra_group(c, VERBS, PARTY_HELP, "smki ra party", argc, argv);
}

/* ---- range ----------------------------------------------------------------------------------- */

static const char RANGE_HELP[] =
    "Usage: smki ra range assign BLOCK --party SIGNIFIER --kind central|device\n"
    "       smki ra range list\n"
    "\n"
    "Assign an EUI-64 block (e.g. an MA-S block 90B3D51F3/36, or 90-B3-D5-1F-30-00-00-00/36)\n"
    "to a Party: 'central' blocks are carved from the central registry entry for User, DCC\n"
    "and RDP IDs (never Device IDs); 'device' blocks are a manufacturer's Device IDs.\n"
    "Blocks never overlap. IDs are allocated only inside the requester's own central blocks.\n" WHO_HELP;

static int range_row(const smki_ra_range *r, void *arg)
{
    list_run *l = arg;
    char t[48];
    smki_eui64_range_format(&r->range, t);
    if (l->w) {
        json_arr_obj(l->w);
        json_str(l->w, "block", t);
        json_str(l->w, "kind", smki_range_kind_name(r->kind));
        json_str(l->w, "party", r->party);
        json_int(l->w, "next", (long long)r->next);
        json_close_obj(l->w);
    } else {
        if (!l->n) printf("%-24s %-8s %-20s %s\n", "BLOCK", "KIND", "PARTY", "NEXT FREE OFFSET");
        printf("%-24s %-8s %-20s %llu\n", t, smki_range_kind_name(r->kind), r->party, (unsigned long long)r->next);
    }
    l->n++;
    return 0;
}

static int list_ranges(ra_ctx *x, list_run *r, void *arg)
{
    (void)arg;
    return smki_ra_range_each(x->ra, range_row, r);
}

static int range_list(smki_cli *c, int argc, char **argv)
{
    return list_verb(c, argc, argv, "smki ra range list", RANGE_HELP, "ranges", list_ranges, "block(s)");
}

typedef struct {
    smki_eui64_range_t r;
    smki_range_kind kind;
    const char *party;
} range_arg;

static int range_assigned(ra_ctx *x, void *arg, char *msg, size_t cap)
{
    const range_arg *a = arg;
    GUARD(smki_ra_range_assign(x->ra, &x->actor, &a->r, a->kind, a->party));
    char t[48];
    smki_eui64_range_format(&a->r, t);
    snprintf(msg, cap, "Block %s assigned to %s (%s). Next: 'smki ra id allocate --party %s --roles ...'.", t,
             a->party, smki_range_kind_name(a->kind), a->party);
    return 0;
}

static int range_assign(smki_cli *c, int argc, char **argv)
{
    const char *party = NULL, *kind = NULL, *pos[1];
    ra_who who = {0};
    const cli_opt opts[] = {CLI_VALUE("party", &party), CLI_VALUE("kind", &kind), WHO_OPTS(who), CLI_END};
    const cli_spec spec = {"smki ra range assign", RANGE_HELP, opts, "BLOCK", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    if (!party || !kind) return cli_usage(c, spec.prog, "--party SIGNIFIER and --kind central|device are required");
    range_arg a = {.party = party};
    int rc = smki_eui64_range_parse(pos[0], &a.r);
    if (rc == 0) rc = smki_range_kind_parse(kind, &a.kind);
    if (rc < 0) return cli_fail(c, rc);
    return act(c, &who, range_assigned, &a);
}

static int ra_range(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd VERBS[] = {
        {"assign", range_assign, "assign an EUI-64 block to a Party"},
        {"list", range_list, "the assigned blocks"},
        {NULL, NULL, NULL},
    };
    return ra_group(c, VERBS, RANGE_HELP, "smki ra range", argc, argv);
}

/* ---- id ----------------------------------------------------------------------------------------- */

static const char ID_HELP[] =
    "Usage: smki ra id allocate --party SIGNIFIER --roles EIS,GIS,... [--eui EUI64]\n"
    "       smki ra id list [--party SIGNIFIER]\n"
    "       smki ra id suspend EUI64 --reason TEXT\n"
    "       smki ra id resume EUI64\n"
    "       smki ra id check EUI64\n"
    "       smki ra id set-roles EUI64 --roles EIS,GIS,...\n"
    "\n"
    "Allocate a User ID (a DCC ID for the DCC) bound to a Party and its User Roles (EIS\n"
    "Import Supplier, EES Export Supplier, GIS Gas Supplier, ENO Electricity Distributor,\n"
    "GNO Gas Transporter, OU Other User): the next free ID of the party's own central\n"
    "block, or --eui if it is free and inside that block. Never twice; never a Device ID.\n"
    "'check' is the gateway's suspension check: exit 2 if the ID or its Party is suspended.\n"
    "'set-roles' replaces the User Roles bound to an ID (the gateway's eligibility reads them).\n" WHO_HELP;

typedef struct {
    list_run *l;
    const char *party;
} id_list_arg;

static int id_row(const smki_ra_user_id *u, void *arg)
{
    id_list_arg *ia = arg;
    list_run *l = ia->l;
    if (ia->party && strcmp(ia->party, u->party)) return 0;
    char e[SMKI_EUI64_TEXT_MAX], roles[40], t[CLI_TIME_MAX];
    smki_eui64_format(&u->id, SMKI_EUI64_HYPHEN, e);
    smki_user_roles_format(u->roles, roles, sizeof roles);
    cli_when(l->c, u->allocated, t);
    if (l->w) {
        json_arr_obj(l->w);
        json_str(l->w, "eui64", e);
        json_str(l->w, "party", u->party);
        json_str(l->w, "roles", roles);
        json_bool(l->w, "dcc", u->is_dcc);
        json_bool(l->w, "suspended", u->suspended);
        if (u->suspended) json_str(l->w, "suspend_reason", u->suspend_reason);
        json_str(l->w, "allocated", t);
        json_close_obj(l->w);
    } else {
        if (!l->n) printf("%-23s %-20s %-24s %-5s %s\n", "ID", "PARTY", "USER ROLES", "KIND", "STATE");
        printf("%-23s %-20s %-24s %-5s %s%s\n", e, u->party, roles, u->is_dcc ? "DCC" : "User",
               u->suspended ? "suspended: " : "active", u->suspended ? u->suspend_reason : "");
    }
    l->n++;
    return 0;
}

static int list_ids(ra_ctx *x, list_run *r, void *arg)
{
    id_list_arg ia = {r, arg};
    return smki_ra_id_each(x->ra, id_row, &ia);
}

static int id_list(smki_cli *c, int argc, char **argv)
{
    const char *party = NULL;
    const cli_opt opts[] = {CLI_VALUE("party", &party), CLI_END};
    const cli_spec spec = {"smki ra id list", ID_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    return run_list(c, "ids", list_ids, (void *)party, "ID(s)");
}

static int id_allocate(smki_cli *c, int argc, char **argv)
{
    const char *party = NULL, *roles_s = NULL, *eui = NULL;
    ra_who who = {0};
    const cli_opt opts[] = {CLI_VALUE("party", &party), CLI_VALUE("roles", &roles_s), CLI_VALUE("eui", &eui),
                            WHO_OPTS(who), CLI_END};
    const cli_spec spec = {"smki ra id allocate", ID_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!party || !roles_s) return cli_usage(c, spec.prog, "--party and --roles are required");
    unsigned roles = 0;
    smki_eui64_t e, got;
    int rc = smki_user_roles_parse(roles_s, &roles);
    if (rc == 0 && eui) rc = smki_eui64_parse(eui, &e);
    if (rc < 0) return cli_fail(c, rc);
    ra_ctx x;
    rc = ra_begin(c, 1, &who, &x);
    if (rc == 0) rc = smki_ra_id_allocate(x.ra, &x.actor, party, roles, eui ? &e : NULL, &got);
    ra_end(&x);
    if (rc < 0) return cli_fail(c, rc);
    char t[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(&got, SMKI_EUI64_HYPHEN, t);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "eui64", t);
        json_str(&w, "party", party);
        json_end(&w);
    } else {
        printf("Allocated %s to %s (%s).\n", t, party, roles_s);
    }
    return EXIT_OK;
}

static int id_check(smki_cli *c, int argc, char **argv)
{
    const char *pos[1];
    const cli_spec spec = {"smki ra id check", ID_HELP, NULL, "EUI64", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    smki_eui64_t e;
    int rc = smki_eui64_parse(pos[0], &e);
    if (rc < 0) return cli_fail(c, rc);
    ra_ctx x;
    rc = ra_begin(c, 0, NULL, &x);
    if (rc == 0 && x.empty) rc = SMKI_FAIL(SMKI_E_NOTFOUND, "%s is not an allocated User ID", pos[0]);
    if (rc == 0) rc = smki_ra_check_sender(x.ra, &e);
    char msg[256];
    snprintf(msg, sizeof msg, "%s may send: registered, and neither it nor its Party is suspended.", pos[0]);
    return done_msg(c, rc, &x, msg);
}

typedef struct {
    smki_eui64_t e;
    const char *text, *reason;
    int suspend;
} id_change;

static int id_changed(ra_ctx *x, void *arg, char *msg, size_t cap)
{
    const id_change *a = arg;
    GUARD(smki_ra_id_suspend(x->ra, &x->actor, &a->e, a->suspend, a->reason));
    snprintf(msg, cap, "%s %s.", a->text, a->suspend ? "suspended: the gateway refuses it" : "resumed");
    return 0;
}

static int id_suspend_resume(smki_cli *c, int argc, char **argv, int suspend)
{
    const char *reason = NULL, *pos[1];
    ra_who who = {0};
    const cli_opt with_reason[] = {CLI_VALUE("reason", &reason), WHO_OPTS(who), CLI_END};
    const cli_opt plain[] = {WHO_OPTS(who), CLI_END};
    const cli_spec spec = {suspend ? "smki ra id suspend" : "smki ra id resume", ID_HELP,
                           suspend ? with_reason : plain, "EUI64", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    id_change a = {.text = pos[0], .reason = reason, .suspend = suspend};
    int rc = smki_eui64_parse(pos[0], &a.e);
    if (rc < 0) return cli_fail(c, rc);
    return act(c, &who, id_changed, &a);
}

static int id_suspend(smki_cli *c, int argc, char **argv)
{
    return id_suspend_resume(c, argc, argv, 1);
}

static int id_resume(smki_cli *c, int argc, char **argv)
{
    return id_suspend_resume(c, argc, argv, 0);
}

typedef struct {
    smki_eui64_t e;
    const char *text, *roles_text;
    unsigned roles;
} id_roles;

static int id_roles_set(ra_ctx *x, void *arg, char *msg, size_t cap)
{
    const id_roles *a = arg;
    GUARD(smki_ra_id_set_roles(x->ra, &x->actor, &a->e, a->roles));
    snprintf(msg, cap, "%s: User Roles %s.", a->text, a->roles_text);
    return 0;
}

static int id_set_roles(smki_cli *c, int argc, char **argv)
{
    const char *roles = NULL, *pos[1];
    ra_who who = {0};
    const cli_opt opts[] = {CLI_VALUE("roles", &roles), WHO_OPTS(who), CLI_END};
    const cli_spec spec = {"smki ra id set-roles", ID_HELP, opts, "EUI64", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    if (!roles) return cli_usage(c, spec.prog, "--roles is required");
    id_roles a = {.text = pos[0], .roles_text = roles};
    int rc = smki_eui64_parse(pos[0], &a.e);
    if (rc == 0) rc = smki_user_roles_parse(roles, &a.roles);
    if (rc < 0) return cli_fail(c, rc);
    return act(c, &who, id_roles_set, &a);
}

static int ra_id(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd VERBS[] = {
        {"allocate", id_allocate, "allocate a User (or DCC) ID to a Party"},
        {"list", id_list, "the allocated IDs"},
        {"suspend", id_suspend, "suspend an ID: the gateway refuses it"},
        {"resume", id_resume, "end an ID's suspension"},
        {"check", id_check, "the gateway's check: exit 2 if the ID or its Party is suspended"},
        {"set-roles", id_set_roles, "replace the User Roles bound to an ID"},
        {NULL, NULL, NULL},
    };
    return ra_group(c, VERBS, ID_HELP, "smki ra id", argc, argv);
}

/* ---- subscriber --------------------------------------------------------------------------------- */

static const char SUBSCRIBER_HELP[] =
    "Usage: smki ra subscriber authorise --party SIGNIFIER --type TYPE [--role ROLE] --env ENV\n"
    "       smki ra subscriber revoke --party SIGNIFIER --type TYPE [--role ROLE] --env ENV\n"
    "       smki ra subscriber list\n"
    "\n"
    "Authorised Subscribers: which Party may request which certificate type, for which\n"
    "Remote Party Role (organisation certificates: supplier, networkOperator, 7F, xmlSign,\n"
    "...), in which environment. A request outside them is refused.\n"
    "TYPE: organisation (with --role), device, dccki-server or dccki-client (DCCKI TLS\n"
    "certificates for the Party's endpoints: the Party's Signifier goes into them).\n" WHO_HELP;

static int sub_row(const smki_ra_subscriber *s, void *arg)
{
    list_run *l = arg;
    char role[SMKI_ROLE_TEXT_MAX] = "-";
    if (s->role >= 0) smki_role_format((uint8_t)s->role, role);
    const char *type = smki_profile_get(s->type)->name;
    if (l->w) {
        json_arr_obj(l->w);
        json_str(l->w, "party", s->party);
        json_str(l->w, "type", type);
        if (s->role >= 0) json_str(l->w, "role", role);
        json_str(l->w, "env", s->env);
        json_close_obj(l->w);
    } else {
        if (!l->n) printf("%-20s %-13s %-22s %s\n", "PARTY", "TYPE", "ROLE", "ENV");
        printf("%-20s %-13s %-3s%-19s %s\n", s->party, type, role,
               s->role >= 0 ? smki_role_name((unsigned)s->role) : "", s->env);
    }
    l->n++;
    return 0;
}

static int list_subs(ra_ctx *x, list_run *r, void *arg)
{
    (void)arg;
    return smki_ra_subscriber_each(x->ra, sub_row, r);
}

static int subscriber_list(smki_cli *c, int argc, char **argv)
{
    return list_verb(c, argc, argv, "smki ra subscriber list", SUBSCRIBER_HELP, "subscribers", list_subs,
                     "subscription(s)");
}

typedef struct {
    smki_ra_subscriber s;
    int add;
} sub_arg;

static int sub_changed(ra_ctx *x, void *arg, char *msg, size_t cap)
{
    const sub_arg *a = arg;
    GUARD(a->add ? smki_ra_subscriber_authorise(x->ra, &x->actor, &a->s)
                 : smki_ra_subscriber_revoke(x->ra, &x->actor, &a->s));
    snprintf(msg, cap, "Party %s %s for %s certificates in %s.", a->s.party,
             a->add ? "is an Authorised Subscriber" : "is no longer authorised", smki_profile_get(a->s.type)->name,
             a->s.env);
    return 0;
}

static int subscriber_change(smki_cli *c, int argc, char **argv, int add)
{
    const char *party = NULL, *type = NULL, *role = NULL, *env = NULL;
    ra_who who = {0};
    const cli_opt opts[] = {CLI_VALUE("party", &party), CLI_VALUE("type", &type), CLI_VALUE("role", &role),
                            CLI_VALUE("env", &env),     WHO_OPTS(who),            CLI_END};
    const cli_spec spec = {add ? "smki ra subscriber authorise" : "smki ra subscriber revoke", SUBSCRIBER_HELP, opts,
                           NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!party || !type || !env) return cli_usage(c, spec.prog, "--party, --type and --env are required");
    sub_arg a = {.add = add};
    int rc = smki_ra_subscriber_make(party, type, role, env, &a.s);
    if (rc < 0) return cli_fail(c, rc);
    return act(c, &who, sub_changed, &a);
}

static int subscriber_authorise(smki_cli *c, int argc, char **argv)
{
    return subscriber_change(c, argc, argv, 1);
}

static int subscriber_revoke(smki_cli *c, int argc, char **argv)
{
    return subscriber_change(c, argc, argv, 0);
}

static int ra_subscriber(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd VERBS[] = {
        {"authorise", subscriber_authorise, "authorise a Party for a certificate type in an environment"},
        {"revoke", subscriber_revoke, "withdraw an authorisation"},
        {"list", subscriber_list, "the Authorised Subscribers"},
        {NULL, NULL, NULL},
    };
    return ra_group(c, VERBS, SUBSCRIBER_HELP, "smki ra subscriber", argc, argv);
}

/* ---- request ------------------------------------------------------------------------------------ */

static const char REQUEST_HELP[] =
    "Usage: smki ra request submit --type organisation --party P --env ENV --csr FILE --role ROLE --eui EUI64 [--cn "
    "NAME]\n"
    "       smki ra request submit --type device-batch --party P --env ENV (--csr FILE ... | --csr-dir DIR)\n"
    "       smki ra request submit --type dccki-server|dccki-client --party P --env ENV --csr FILE\n"
    "                              [--dns NAME ...] [--ip ADDRESS ...] [--cn NAME]\n"
    "       smki ra request list [--state pending|held|approved|done|rejected]\n"
    "       smki ra request show ID\n"
    "       smki ra request approve ID\n"
    "       smki ra request reject ID --reason TEXT\n"
    "       smki ra request execute ID [--out-dir DIR] [--force]\n"
    "\n"
    "The life of a request: submit (the eligibility checks run now: the Party is registered\n"
    "and not suspended, owns the EUI-64 with a User Role that allows the Remote Party Role,\n"
    "is an Authorised Subscriber for the type in ENV, and for test certificates is a\n"
    "Testing Participant with its agreement signed; device IDs never come from a central\n"
    "block) -> approvals by operators other than the requester (ra.approvals_organisation,\n"
    "default 1; CA-grade actions and device batches above ra.batch_review_size need\n"
    "ra.approvals_sensitive, default 2; any rejection rejects) -> execute: checked again,\n"
    "issued by the CA and recorded with its audit entry in one transaction (a batch in\n"
    "group commits; an interrupted one resumes). Device demand above ra.demand_percent\n"
    "(150) of the subscriber's monthly average is held for review, never dropped.\n"
    "The CSR of an organisation or DCCKI request may come from standard input (--csr -).\n"
    "\n"
    "DCCKI TLS certificates (dccki-server, dccki-client) go to a Party that is an\n"
    "Authorised Subscriber for that type in ENV; its Signifier is the certificate's\n"
    "organizationIdentifier (a CSR that carries another is refused); a server names its\n"
    "host (--dns, --ip, each may repeat up to 16). They need ra.approvals_organisation.\n"
    "\n"
    "--out-dir writes the issued certificates as PEM (<serial>.pem). After an interruption\n"
    "run the same command again: an unfinished request resumes, and one already executed\n"
    "only writes, from the store, every file missing from DIR. A file of that name that\n"
    "holds something else is refused; --force replaces it.\n" WHO_HELP;

static void req_json(json_w *w, const smki_cli *c, const smki_ra_request *r)
{
    char t[CLI_TIME_MAX], e[SMKI_EUI64_TEXT_MAX], s[64];
    json_int(w, "id", (long long)r->id);
    json_str(w, "type", smki_req_type_name(r->type));
    json_str(w, "state", smki_req_state_name(r->state));
    json_str(w, "party", r->party);
    json_str(w, "env", r->env);
    json_str(w, "requester", r->requester);
    cli_when(c, r->created, t);
    json_str(w, "created", t);
    if (r->role >= 0) {
        char role[SMKI_ROLE_TEXT_MAX];
        smki_role_format((uint8_t)r->role, role);
        json_str(w, "role", role);
    }
    if (r->has_eui) {
        smki_eui64_format(&r->eui, SMKI_EUI64_HYPHEN, e);
        json_str(w, "eui64", e);
    }
    json_int(w, "csrs", r->csr_count);
    json_int(w, "issued", r->done_count);
    json_int(w, "approvals_required", r->approvals_required);
    json_key_arr(w, "approvers");
    for (size_t i = 0; i < r->n_approvals; i++) json_arr_str(w, r->approvers[i]);
    json_close_arr(w);
    if (r->rejected_by[0]) json_str(w, "rejected_by", r->rejected_by);
    if (r->note[0]) json_str(w, "note", r->note);
    if (r->has_result) {
        smki_hex_encode(r->result_serial, SMKI_SERIAL_LEN, s, 0);
        json_str(w, "serial", s);
    }
}

/* Submit s as the acting operator and read the new request back into *r (r->id is its
 * number): what 'ra request submit', 'ra revoke', 'ra recover' and 'ra policy set' share. */
static int submit(smki_cli *c, const ra_who *who, const smki_ra_submit *s, smki_ra_request *r)
{
    ra_ctx x;
    uint64_t id = 0;
    int rc = ra_begin(c, 1, who, &x);
    if (rc == 0) rc = smki_ra_request_submit(x.ra, &x.actor, s, &id);
    if (rc == 0) rc = smki_ra_request_get(x.ra, id, r);
    ra_end(&x);
    return rc;
}

/* The submitted request: one JSON object, or 'what' and the next step for humans. */
static int submitted(smki_cli *c, const smki_ra_request *r, const char *what)
{
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        req_json(&w, c, r);
        json_end(&w);
        return EXIT_OK;
    }
    printf("Request %llu submitted: %s.\n", (unsigned long long)r->id, what);
    if (r->note[0]) printf("  %s\n", r->note);
    if (r->state == SMKI_REQ_APPROVED)
        printf("Next: 'smki ra request execute %llu'.\n", (unsigned long long)r->id);
    else
        printf("Next: %u approval(s) by operator(s) other than %s ('smki ra request approve %llu --operator NAME'), "
               "then 'smki ra request execute %llu'.\n",
               r->approvals_required, r->requester, (unsigned long long)r->id, (unsigned long long)r->id);
    return EXIT_OK;
}

static int req_row(const smki_ra_request *r, void *arg)
{
    list_run *l = arg;
    if (l->w) {
        json_arr_obj(l->w);
        req_json(l->w, l->c, r);
        json_close_obj(l->w);
        l->n++;
        return 0;
    }
    char t[CLI_TIME_MAX], what[64] = "", ap[16];
    cli_when(l->c, r->created, t);
    if (r->type == SMKI_REQ_DEVICE_BATCH)
        snprintf(what, sizeof what, "%u CSRs, %u issued", r->csr_count, r->done_count);
    else if (r->has_eui) smki_eui64_format(&r->eui, SMKI_EUI64_HYPHEN, what);
    else if ((r->type == SMKI_REQ_DCCKI_SERVER || r->type == SMKI_REQ_DCCKI_CLIENT) && r->cn[0])
        snprintf(what, sizeof what, "CN=%.60s", r->cn);
    if (!l->n)
        printf("%-5s %-13s %-9s %-16s %-8s %-10s %-9s %-24s %s\n", "ID", "TYPE", "STATE", "PARTY", "ENV",
               "REQUESTER", "APPROVALS", "SUBJECT", "NOTE");
    snprintf(ap, sizeof ap, "%zu/%u", r->n_approvals, r->approvals_required);
    printf("%-5llu %-13s %-9s %-16s %-8s %-10s %-9s %-24s %s\n", (unsigned long long)r->id,
           smki_req_type_name(r->type), smki_req_state_name(r->state), r->party, r->env, r->requester, ap, what,
           r->note);
    l->n++;
    return 0;
}

static int list_reqs(ra_ctx *x, list_run *r, void *arg)
{
    return smki_ra_request_each(x->ra, *(int *)arg, req_row, r);
}

static int request_list(smki_cli *c, int argc, char **argv)
{
    const char *state_s = NULL;
    const cli_opt opts[] = {CLI_VALUE("state", &state_s), CLI_END};
    const cli_spec spec = {"smki ra request list", REQUEST_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    int state = 0;
    if (state_s) {
        smki_req_state st;
        int rc = smki_req_state_parse(state_s, &st);
        if (rc < 0) return cli_fail(c, rc);
        state = st;
    }
    return run_list(c, "requests", list_reqs, &state, "request(s)");
}

/* request submit's options. */
typedef struct {
    const char *type, *party, *env, *csr_dir, *role, *eui, *cn;
    cli_list csr, dns, ip;
    ra_who who;
} submit_args;

/* The one CSR of an organisation or DCCKI request ("-": standard input). */
static int one_csr(const submit_args *a, uint8_t **der, size_t *len)
{
    ENSURE(a->csr.n == 1 && !a->csr_dir, SMKI_E_USAGE, "this %s request takes one CSR: --csr FILE (- for standard input)", a->type);
    return read_named(a->csr.v[0], SMKI_CSR_MAX, der, len);
}

/* The request a's options describe, in s (its CSRs read into set or *one). */
static int submit_fill(smki_cli *c, const submit_args *a, smki_ra_submit *s, smki_eui64_t *e, smki_ra_csr_set *set,
                       uint8_t **one)
{
    smki_req_type type;
    GUARD(smki_req_type_parse(a->type, &type));
    s->type = type, s->party = a->party, s->env = a->env, s->cn = a->cn, s->conf = c->conf;
    if (type == SMKI_REQ_DEVICE_BATCH) {
        GUARD(smki_ra_csr_set_read(a->csr.v, a->csr.n, a->csr_dir, set));
        s->csrs = (const uint8_t *const *)set->ders, s->csr_lens = set->lens, s->n_csrs = set->n;
        return 0;
    }
    if (type == SMKI_REQ_ORGANISATION) {
        uint8_t role = 0;
        ENSURE(a->role && a->eui, SMKI_E_USAGE, "an organisation request needs --csr, --role and --eui");
        GUARD(smki_role_parse(a->role, &role));
        GUARD(smki_eui64_parse(a->eui, e));
        s->role = role, s->eui = e;
        return one_csr(a, one, &s->csr_len);
    }
    ENSURE(type == SMKI_REQ_DCCKI_SERVER || type == SMKI_REQ_DCCKI_CLIENT, SMKI_E_USAGE,
           "submit takes --type organisation, device-batch, dccki-server or dccki-client; revocation is "
           "'smki ra revoke'");
    ENSURE(!a->role && !a->eui, SMKI_E_USAGE,
           "a DCCKI TLS certificate has no Remote Party Role or EUI-64: drop --role/--eui");
    ENSURE(a->dns.n <= 16 && a->ip.n <= 16, SMKI_E_USAGE, "at most 16 --dns and 16 --ip");
    s->dns = a->dns.v, s->n_dns = a->dns.n, s->ips = a->ip.v, s->n_ips = a->ip.n;
    return one_csr(a, one, &s->csr_len);
}

static int request_submit(smki_cli *c, int argc, char **argv)
{
    submit_args a;
    memset(&a, 0, sizeof a);
    const cli_opt opts[] = {CLI_VALUE("type", &a.type), CLI_VALUE("party", &a.party), CLI_VALUE("env", &a.env),
                            CLI_LIST("csr", &a.csr),    CLI_VALUE("csr-dir", &a.csr_dir), CLI_VALUE("role", &a.role),
                            CLI_VALUE("eui", &a.eui),   CLI_VALUE("cn", &a.cn),  CLI_LIST("dns", &a.dns),
                            CLI_LIST("ip", &a.ip),      WHO_OPTS(a.who),         CLI_END};
    const cli_spec spec = {"smki ra request submit", REQUEST_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!a.type || !a.party || !a.env) return cli_usage(c, spec.prog, "--type, --party and --env are required");
    smki_ra_submit s;
    memset(&s, 0, sizeof s);
    smki_eui64_t e;
    smki_ra_csr_set set = {0};
    uint8_t *one = NULL;
    smki_ra_request r;
    int rc = submit_fill(c, &a, &s, &e, &set, &one);
    s.csr = one;
    if (rc == 0) rc = submit(c, &a.who, &s, &r);
    free(one);
    smki_ra_csr_set_free(&set);
    if (rc < 0) return cli_fail(c, rc);
    char what[256];
    snprintf(what, sizeof what, "%s, party %s, env %s; it is %s", smki_req_type_name(r.type), r.party, r.env,
             smki_req_state_name(r.state));
    return submitted(c, &r, what);
}

/* One request's number, the only positional of show, approve, reject, execute. */
static int request_id_parse(smki_cli *c, const cli_spec *spec, int argc, char **argv, uint64_t *id)
{
    *id = 0;
    const char *pos[1];
    int stop = cli_parse(c, spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    int rc = parse_id(pos[0], id);
    return rc < 0 ? cli_fail(c, rc) : CLI_GO;
}

static void names_json(json_w *w, char *names)
{
    json_key_arr(w, "names");
    for (char *line = names, *end; *line && (end = strchr(line, '\n')); line = end + 1) {
        *end = '\0';
        json_arr_str(w, line);
    }
    json_close_arr(w);
}

/* The lines of 'request show' that depend on the request's type. */
static void request_show_subject(const smki_ra_request *r, const char *names)
{
    if (r->type == SMKI_REQ_ORGANISATION) {
        char role[SMKI_ROLE_TEXT_MAX] = "", e[SMKI_EUI64_TEXT_MAX] = "-";
        if (r->role >= 0) smki_role_format((uint8_t)r->role, role);
        if (r->has_eui) smki_eui64_format(&r->eui, SMKI_EUI64_HYPHEN, e);
        printf("  EUI-64      %s\n  role        %s %s\n  usage       %s\n", e, role,
               smki_role_name((unsigned)r->role), r->usage == SMKI_USAGE_DS ? "DS" : "KA");
    } else if (r->type == SMKI_REQ_POLICY) {
        printf("  setting     %s = %d\n", r->cn, r->reason);
    } else if (r->type == SMKI_REQ_DCCKI_SERVER || r->type == SMKI_REQ_DCCKI_CLIENT) {
        printf("  CN          %s\n", r->cn[0] ? r->cn : "-");
        for (const char *line = names, *end; *line && (end = strchr(line, '\n')); line = end + 1)
            printf("  name        %.*s\n", (int)(end - line), line);
    } else {
        printf("  CSRs        %u (%u issued)\n", r->csr_count, r->done_count);
    }
}

static void request_show_human(const smki_cli *c, const smki_ra_request *r, const char *names)
{
    char t[CLI_TIME_MAX], s[64];
    cli_when(c, r->created, t);
    printf("Request %llu\n  type        %s\n  state       %s\n  party       %s\n  environment %s\n  requester   %s\n"
           "  submitted   %s\n",
           (unsigned long long)r->id, smki_req_type_name(r->type), smki_req_state_name(r->state), r->party, r->env,
           r->requester, t);
    request_show_subject(r, names);
    printf("  approvals   %zu of %u:", r->n_approvals, r->approvals_required);
    for (size_t i = 0; i < r->n_approvals; i++) printf(" %s", r->approvers[i]);
    printf("\n");
    if (r->rejected_by[0]) printf("  rejected by %s\n", r->rejected_by);
    if (r->note[0]) printf("  note        %s\n", r->note);
    if (r->has_result) {
        smki_hex_encode(r->result_serial, SMKI_SERIAL_LEN, s, 0);
        printf("  certificate %s%s ('smki ca show %s')\n", s, r->type == SMKI_REQ_DEVICE_BATCH ? " (the first)" : "",
               s);
    }
}

static int request_show(smki_cli *c, int argc, char **argv)
{
    const cli_spec spec = {"smki ra request show", REQUEST_HELP, NULL, "ID", 1, 1};
    uint64_t id;
    int stop = request_id_parse(c, &spec, argc, argv, &id);
    if (stop != CLI_GO) return stop;
    ra_ctx x;
    smki_ra_request r;
    static char names[12288];
    names[0] = '\0';
    int rc = ra_begin(c, 0, NULL, &x);
    if (rc == 0 && x.empty) rc = SMKI_FAIL(SMKI_E_NOTFOUND, "no request %llu", (unsigned long long)id);
    if (rc == 0) rc = smki_ra_request_get(x.ra, id, &r);
    int tls = rc == 0 && (r.type == SMKI_REQ_DCCKI_SERVER || r.type == SMKI_REQ_DCCKI_CLIENT);
    if (tls) rc = smki_ra_request_names(x.ra, id, names, sizeof names);
    ra_end(&x);
    if (rc < 0) return cli_fail(c, rc);
    if (!c->json) {
        request_show_human(c, &r, names);
        return EXIT_OK;
    }
    json_w w;
    json_begin(&w, stdout);
    json_bool(&w, "ok", 1);
    req_json(&w, c, &r);
    if (tls && r.cn[0]) json_str(&w, "cn", r.cn);
    if (tls) names_json(&w, names);
    json_end(&w);
    return EXIT_OK;
}

typedef struct {
    uint64_t id;
    const char *reason;
} decision_arg;

static int request_approved(ra_ctx *x, void *arg, char *msg, size_t cap)
{
    const decision_arg *a = arg;
    int now = 0;
    GUARD(smki_ra_request_approve(x->ra, &x->actor, a->id, &now));
    if (now)
        snprintf(msg, cap, "Request %llu approved by %s: it is approved. Next: 'smki ra request execute %llu'.",
                 (unsigned long long)a->id, x->actor.name, (unsigned long long)a->id);
    else
        snprintf(msg, cap, "Request %llu approved by %s; it needs more approvals by other operators.",
                 (unsigned long long)a->id, x->actor.name);
    return 0;
}

static int request_rejected(ra_ctx *x, void *arg, char *msg, size_t cap)
{
    const decision_arg *a = arg;
    GUARD(smki_ra_request_reject(x->ra, &x->actor, a->id, a->reason));
    snprintf(msg, cap, "Request %llu rejected by %s.", (unsigned long long)a->id, x->actor.name);
    return 0;
}

static int request_approve(smki_cli *c, int argc, char **argv)
{
    ra_who who = {0};
    const cli_opt opts[] = {WHO_OPTS(who), CLI_END};
    const cli_spec spec = {"smki ra request approve", REQUEST_HELP, opts, "ID", 1, 1};
    decision_arg a = {0, NULL};
    int stop = request_id_parse(c, &spec, argc, argv, &a.id);
    if (stop != CLI_GO) return stop;
    return act(c, &who, request_approved, &a);
}

static int request_reject(smki_cli *c, int argc, char **argv)
{
    ra_who who = {0};
    decision_arg a = {0, NULL};
    const cli_opt opts[] = {CLI_VALUE("reason", &a.reason), WHO_OPTS(who), CLI_END};
    const cli_spec spec = {"smki ra request reject", REQUEST_HELP, opts, "ID", 1, 1};
    int stop = request_id_parse(c, &spec, argc, argv, &a.id);
    if (stop != CLI_GO) return stop;
    return act(c, &who, request_rejected, &a);
}

static void progress_bar(size_t done, size_t total, void *arg)
{
    (void)arg;
    int width = 40, fill = total ? (int)((double)done / (double)total * width) : width;
    fprintf(stderr, "\r  [%.*s%*s] %zu/%zu", fill, "========================================", width - fill, "", done,
            total);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
}

typedef struct {
    smki_cli *c;
    uint64_t id;
    const char *out_dir;
    int force;
} execute_arg;

/* What an execution did, for the operator. */
static void executed_msg(const smki_ra_request *r, const char *crl_path, char *msg, size_t cap)
{
    char s[64] = "", ns[64];
    unsigned long long id = (unsigned long long)r->id;
    if (r->has_result) smki_hex_encode(r->result_serial, SMKI_SERIAL_LEN, s, 0);
    if (r->type == SMKI_REQ_RECOVER) {
        smki_hex_encode(r->new_ca_serial, SMKI_SERIAL_LEN, ns, 0);
        snprintf(msg, cap,
                 "Request %llu executed: the %s of %s is revoked (ARL published), its successor is serial %s, and "
                 "%u organisation certificate(s) are re-issued under it ('smki ca list --env %s').",
                 id, smki_ca_kind_name((smki_ca_kind)r->ca_kind), r->env, ns, r->done_count, r->env);
    } else if (r->type == SMKI_REQ_POLICY) {
        snprintf(msg, cap, "Request %llu executed: %s = %d, fixed in the store ('smki ra policy show').", id, r->cn,
                 r->reason);
    } else if (r->type == SMKI_REQ_REVOKE) {
        snprintf(msg, cap,
                 "Request %llu executed: certificate %s revoked (%s); the list that carries it is published: %s", id,
                 s, smki_revoke_reason_name(r->reason), crl_path[0] ? crl_path : "(store)");
    } else if (r->type != SMKI_REQ_DEVICE_BATCH) {
        snprintf(msg, cap, "Request %llu executed: %s certificate %s issued ('smki ca show %s --out FILE').", id,
                 smki_req_type_name(r->type), s, s);
    } else {
        snprintf(msg, cap, "Request %llu executed: %u device certificate(s) issued.", id, r->done_count);
    }
}

/* Execute (or, for a request already done, only write out what it issued: a re-run
 * after an interruption writes every missing file from the store). */
static int request_executed(ra_ctx *x, void *arg, char *msg, size_t cap)
{
    const execute_arg *a = arg;
    smki_ra_request r;
    GUARD(cli_pin(a->c, 0));
    GUARD(smki_ra_request_get(x->ra, a->id, &r));
    int already = r.state == SMKI_REQ_DONE && a->out_dir;
    smki_ra_exec_opts o;
    memset(&o, 0, sizeof o);
    if (!already) {
        o.hsm = &a->c->hsm, o.home = a->c->home, o.conf = a->c->conf;
        if (!a->c->json && isatty(2)) o.progress = progress_bar;
        GUARD(smki_ra_request_execute(x->ra, &x->actor, a->id, &o));
        GUARD(smki_ra_request_get(x->ra, a->id, &r));
    }
    size_t written = 0, present = 0;
    if (a->out_dir) GUARD(smki_ra_request_write_certs(x->ra, a->id, a->out_dir, a->force, &written, &present));
    if (already)
        snprintf(msg, cap,
                 "Request %llu was already executed: %zu missing certificate file(s) written to %s from the store, "
                 "%zu already there.",
                 (unsigned long long)a->id, written, a->out_dir, present);
    else
        executed_msg(&r, o.crl_path, msg, cap);
    return 0;
}

static int request_execute(smki_cli *c, int argc, char **argv)
{
    ra_who who = {0};
    execute_arg a = {c, 0, NULL, 0};
    const cli_opt opts[] = {CLI_VALUE("out-dir", &a.out_dir), CLI_FLAG("force", &a.force), WHO_OPTS(who), CLI_END};
    const cli_spec spec = {"smki ra request execute", REQUEST_HELP, opts, "ID", 1, 1};
    int stop = request_id_parse(c, &spec, argc, argv, &a.id);
    if (stop != CLI_GO) return stop;
    return act(c, &who, request_executed, &a);
}

static int ra_request(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd VERBS[] = {
        {"submit", request_submit, "submit a request (eligibility checked now)"},
        {"list", request_list, "the requests, by state"},
        {"show", request_show, "one request"},
        {"approve", request_approve, "approve a request (never your own)"},
        {"reject", request_reject, "reject a request"},
        {"execute", request_execute, "execute an approved request; write its certificates"},
        {NULL, NULL, NULL},
    };
    return ra_group(c, VERBS, REQUEST_HELP, "smki ra request", argc, argv);
}

/* ---- revoke ------------------------------------------------------------------------------------ */

static const char REVOKE_HELP[] =
    "Usage: smki ra revoke SERIAL --reason REASON [--issuer SKI] [--env ENV]\n"
    "\n"
    "Submit a revocation request: an organisation certificate (onto its CA's CRL) or a CA\n"
    "certificate (onto the root's ARL). REASON is an RFC 5280 reason: keyCompromise,\n"
    "cACompromise, affiliationChanged, superseded, cessationOfOperation,\n"
    "privilegeWithdrawn or unspecified. Device certificates are replaced, not revoked;\n"
    "roots are withdrawn from trust stores. A revocation needs ra.approvals_sensitive\n"
    "approvals (default 2) by operators other than the requester; then 'smki ra request\n"
    "execute ID' revokes it and publishes the CRL/ARL (interval: [ca.ENV] crl_hours /\n"
    "arl_hours). --issuer (the issuer's SKI, 16 hex digits) when a serial is not unique.\n" WHO_HELP;

static int ra_revoke(smki_cli *c, int argc, char **argv)
{
    const char *reason_s = NULL, *issuer_s = NULL, *env = NULL, *pos[1];
    ra_who who = {0};
    const cli_opt opts[] = {CLI_VALUE("reason", &reason_s), CLI_VALUE("issuer", &issuer_s), CLI_VALUE("env", &env),
                            WHO_OPTS(who), CLI_END};
    const cli_spec spec = {"smki ra revoke", REVOKE_HELP, opts, "SERIAL", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    if (!reason_s) return cli_usage(c, spec.prog, "--reason REASON is required");
    uint8_t serial[SMKI_SERIAL_LEN], issuer[SMKI_KEYID_LEN];
    smki_revoke_reason reason = 0;
    int rc = smki_serial_parse(pos[0], serial);
    if (rc == 0 && issuer_s) rc = smki_ra_ski_parse(issuer_s, issuer);
    if (rc == 0) rc = smki_revoke_reason_parse(reason_s, &reason);
    if (rc < 0) return cli_fail(c, rc);
    smki_ra_submit s;
    memset(&s, 0, sizeof s);
    s.type = SMKI_REQ_REVOKE;
    s.serial = serial, s.issuer_ski = issuer_s ? issuer : NULL, s.reason = reason, s.env = env;
    smki_ra_request r;
    rc = submit(c, &who, &s, &r);
    if (rc < 0) return cli_fail(c, rc);
    char what[256];
    snprintf(what, sizeof what, "revoke %s (%s), party %s, env %s", pos[0], smki_revoke_reason_name(reason), r.party,
             r.env);
    return submitted(c, &r, what);
}

/* ---- recover ------------------------------------------------------------------------------------- */

static const char RECOVER_HELP[] =
    "Usage: smki ra recover --env ENV [--ca oca|dca]\n"
    "\n"
    "Submit a CA compromise recovery of ENV's organisation CA (default) or device CA. It\n"
    "needs ra.approvals_sensitive approvals (default 2) by operators other than the\n"
    "requester; then 'smki ra request execute ID' does it, each step an audited commit and\n"
    "the whole resumable (run execute again after an interruption):\n"
    "  1. revoke the CA (cACompromise) onto the root's ARL and publish the ARL;\n"
    "  2. record the intent, then make the successor CA: a new key in the token\n"
    "     (ca.ENV.smki_oca_successor_key, or a generated label), a certificate from the root,\n"
    "     <home>/ca/ENV/smki-oca.pem replaced (the old one kept beside it);\n"
    "  3. re-issue under the successor every organisation certificate of the compromised\n"
    "     CA that was in use (same subject and public key), in group commits.\n"
    "A device CA's certificates are replaced from the devices' new CSRs (device batches).\n"
    "docs/ra.md has the whole procedure.\n" WHO_HELP;

static int ra_recover(smki_cli *c, int argc, char **argv)
{
    const char *env = NULL, *ca = NULL;
    ra_who who = {0};
    const cli_opt opts[] = {CLI_VALUE("env", &env), CLI_VALUE("ca", &ca), WHO_OPTS(who), CLI_END};
    const cli_spec spec = {"smki ra recover", RECOVER_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!env) return cli_usage(c, spec.prog, "give --env ENV");
    smki_ca_kind kind = SMKI_CA_OCA;
    int rc = ca ? smki_ca_kind_parse(ca, &kind) : 0;
    if (rc < 0) return cli_fail(c, rc);
    smki_ra_submit s;
    memset(&s, 0, sizeof s);
    s.type = SMKI_REQ_RECOVER, s.env = env, s.ca_kind = kind;
    smki_ra_request r;
    rc = submit(c, &who, &s, &r);
    if (rc < 0) return cli_fail(c, rc);
    char what[256];
    snprintf(what, sizeof what, "CA compromise recovery of %s in %s", smki_ca_kind_name(kind), env);
    return submitted(c, &r, what);
}

/* ---- policy -------------------------------------------------------------------------------------- */

static const char POLICY_HELP[] =
    "Usage: smki ra policy show\n"
    "       smki ra policy set approvals_organisation|approvals_sensitive N\n"
    "\n"
    "The approval counts are fixed in the store with the RA's first entry (from [ra] in\n"
    "smki.conf then); a later edit of smki.conf changes nothing. 'set' submits a policy\n"
    "request: it needs ra.approvals_sensitive approvals by operators other than the\n"
    "requester, then 'smki ra request execute ID' changes the count, audited. A count is\n"
    "1 to 8 (nothing is done by one operator alone) and approvals_sensitive is never\n"
    "below approvals_organisation.\n"
    "\n"
    "  smki ra policy set approvals_sensitive 3 --operator alice\n"
    "  smki ra request approve ID --operator bob\n"
    "  smki ra request approve ID --operator carol\n"
    "  smki ra request execute ID --operator alice\n" WHO_HELP;

static int policy_show(smki_cli *c, int argc, char **argv)
{
    const cli_spec spec = {"smki ra policy show", POLICY_HELP, NULL, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    ra_ctx x;
    smki_ra_policy p;
    int rc = ra_begin(c, 0, NULL, &x);
    if (rc == 0) rc = smki_ra_policy_load(c->conf, &p);
    if (rc == 0 && !x.empty) p = *smki_ra_get_policy(x.ra);
    ra_end(&x);
    if (rc < 0) return cli_fail(c, rc);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_int(&w, "approvals_organisation", p.approvals_org);
        json_int(&w, "approvals_sensitive", p.approvals_sensitive);
        json_end(&w);
    } else {
        printf("approvals_organisation = %u\napprovals_sensitive = %u\n", p.approvals_org, p.approvals_sensitive);
    }
    return EXIT_OK;
}

static int policy_set(smki_cli *c, int argc, char **argv)
{
    const char *pos[2];
    ra_who who = {0};
    const cli_opt opts[] = {WHO_OPTS(who), CLI_END};
    const cli_spec spec = {"smki ra policy set", POLICY_HELP, opts, "SETTING N", 2, 2};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    uint64_t v = 0;
    int rc = cli_number("the count", pos[1], 0, 99, &v);
    if (rc < 0) return cli_fail(c, rc);
    smki_ra_submit s;
    memset(&s, 0, sizeof s);
    s.type = SMKI_REQ_POLICY, s.cn = pos[0], s.reason = (int)v;
    smki_ra_request r;
    rc = submit(c, &who, &s, &r);
    if (rc < 0) return cli_fail(c, rc);
    char what[256];
    snprintf(what, sizeof what, "%s = %d", s.cn, s.reason);
    return submitted(c, &r, what);
}

static int ra_policy(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd VERBS[] = {
        {"show", policy_show, "the approval counts in force"},
        {"set", policy_set, "submit a change of an approval count (a dual-controlled request)"},
        {NULL, NULL, NULL},
    };
    return ra_group(c, VERBS, POLICY_HELP, "smki ra policy", argc, argv);
}

/* ---- expiring ------------------------------------------------------------------------------------ */

static const char EXPIRING_HELP[] =
    "Usage: smki ra expiring [--days N] [--env ENV]\n"
    "\n"
    "The certificate expiry monitor: in-use organisation certificates whose notAfter falls\n"
    "within N days (default 90), with the Party of their EUI-64, so that each Party can be\n"
    "asked for its renewal requests in time.\n";

static int exp_row(const smki_ra_expiring *e, void *arg)
{
    list_run *l = arg;
    char s[64], t[CLI_TIME_MAX], u[SMKI_EUI64_TEXT_MAX] = "-", role[SMKI_ROLE_TEXT_MAX] = "-";
    smki_hex_encode(e->cert.serial, SMKI_SERIAL_LEN, s, 0);
    cli_when(l->c, e->cert.not_after, t);
    if (e->cert.has_eui) smki_eui64_format(&e->cert.eui, SMKI_EUI64_HYPHEN, u);
    if (e->cert.role >= 0) smki_role_format((uint8_t)e->cert.role, role);
    if (l->w) {
        json_arr_obj(l->w);
        json_str(l->w, "party", e->party);
        json_str(l->w, "serial", s);
        json_str(l->w, "eui64", e->cert.has_eui ? u : NULL);
        json_str(l->w, "role", e->cert.role >= 0 ? role : NULL);
        json_str(l->w, "env", e->cert.env);
        json_str(l->w, "not_after", t);
        json_close_obj(l->w);
    } else {
        if (!l->n) printf("%-16s %-23s %-4s %-8s %-21s %s\n", "PARTY", "EUI-64", "ROLE", "ENV", "NOT AFTER", "SERIAL");
        printf("%-16s %-23s %-4s %-8s %-21s %s\n", e->party[0] ? e->party : "(unregistered)", u, role, e->cert.env, t,
               s);
    }
    l->n++;
    return 0;
}

typedef struct {
    unsigned days;
    const char *env;
} exp_arg;

static int list_exp(ra_ctx *x, list_run *r, void *arg)
{
    exp_arg *e = arg;
    return smki_ra_expiring_each(x->ra, e->env, e->days, exp_row, r);
}

static int ra_expiring(smki_cli *c, int argc, char **argv)
{
    const char *days = NULL, *env = NULL;
    const cli_opt opts[] = {CLI_VALUE("days", &days), CLI_VALUE("env", &env), CLI_END};
    const cli_spec spec = {"smki ra expiring", EXPIRING_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    uint64_t d = 90;
    int rc = days ? cli_number("--days", days, 0, 36500, &d) : 0;
    if (rc < 0) return cli_fail(c, rc);
    exp_arg e = {(unsigned)d, env};
    return run_list(c, "expiring", list_exp, &e, "certificate(s) expiring");
}

/* ---- adopt-ca ---------------------------------------------------------------------------------- */

static const char ADOPT_HELP[] =
    "Usage: smki ra adopt-ca --operator NAME [--operator-key KEY]\n"
    "\n"
    "Bind the CA certificates the audit trail does not yet hold to it: those of the\n"
    "bootstrap ceremony ('smki ca init' before any RA operator existed, so unaudited).\n"
    "One 'ca-adopt' entry per certificate, signed by the operator, in one transaction:\n"
    "its profile, environment, SKI, subject, serial and the SHA-256 of the certificate.\n"
    "Compare those fingerprints with the ceremony's signed paper record. CAs made by an\n"
    "audited ceremony (a 'ca-init' entry) and CAs adopted before are skipped, so a\n"
    "re-run adds nothing. The first 'smki ra operator add' does this by itself.\n"
    "\n"
    "Example (" HELP_TEST_HOME "; its CAs already bound by the first operator's\n"
    "registration, so this adds nothing):\n"
    "  smki ra adopt-ca --operator tester\n"
    "  smki audit list --last 5\n" WHO_HELP;

static int ra_adopt(smki_cli *c, int argc, char **argv)
{
    ra_who who = {0};
    const cli_opt opts[] = {WHO_OPTS(who), CLI_END};
    const cli_spec spec = {"smki ra adopt-ca", ADOPT_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    ra_ctx x;
    size_t adopted = 0;
    int rc = ra_begin(c, 1, &who, &x);
    if (rc == 0) rc = smki_ra_ca_adopt(x.ra, &x.actor, &adopted);
    ra_end(&x);
    if (rc < 0) return cli_fail(c, rc);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_int(&w, "adopted", (long long)adopted);
        json_end(&w);
    } else if (adopted) {
        printf("%zu CA certificate(s) bound to the audit trail (ca-adopt entries): 'smki audit list --last %zu'.\n",
               adopted, adopted);
    } else {
        printf("Every CA certificate in the store is already in the audit trail: nothing to add.\n");
    }
    return EXIT_OK;
}

/* ---- Tables --------------------------------------------------------------------------------------- */

static const char ABOUT[] =
    "smki ra: the SMKI Registration Authority.\n"
    "\n"
    "The registry (operators, Parties, EUI-64 blocks, User IDs, Authorised Subscribers,\n"
    "Testing Participants, suspensions) and requests: no certificate is issued except\n"
    "through a request that the registration rules allow and other operators approved.\n"
    "Every action is signed with the acting operator's key (--operator NAME --operator-key\n"
    "KEY) and appended to the audit trail in the same transaction ('smki audit verify').\n"
    "\n"
    "A first session: 'smki ra operator add' (yourself), 'party add', 'range assign',\n"
    "'id allocate', 'subscriber authorise', then 'request submit' / 'approve' / 'execute'.\n"
    "docs/ra.md has the operators' procedures.";

static const cli_cmd RA_COMMANDS[] = {
    {"operator", ra_operator, "RA operators and their keys: add, list, deactivate"},
    {"party", ra_party, "Parties: add, list, show, set (Testing Participant), suspend, resume"},
    {"range", ra_range, "EUI-64 blocks assigned to allocators: assign, list"},
    {"id", ra_id, "User and DCC IDs: allocate, list, suspend, resume, check (the gateway's check)"},
    {"subscriber", ra_subscriber, "Authorised Subscribers: authorise, revoke, list"},
    {"request", ra_request, "requests: submit, list, show, approve, reject, execute"},
    {"revoke", ra_revoke, "submit a revocation request (organisation or CA certificate)"},
    {"recover", ra_recover, "submit a CA compromise recovery (revoke, successor CA, re-issue)"},
    {"policy", ra_policy, "the approval counts fixed in the store: show, set (a dual-controlled request)"},
    {"expiring", ra_expiring, "organisation certificates expiring within N days, per Party"},
    {"adopt-ca", ra_adopt, "bind the CA certificates of the bootstrap ceremony to the audit trail"},
    {NULL, NULL, NULL},
};

int cmd_ra(smki_cli *c, int argc, char **argv)
{
    return cli_dispatch(c, RA_COMMANDS, argc - 1, argv + 1, "smki ra", ABOUT);
}

/* ---- smki audit ------------------------------------------------------------------------------------ */

static const char VERIFY_HELP[] =
    "Usage: smki audit verify [--checkpoint-pub FILE]\n"
    "\n"
    "Walk the whole audit trail: each entry must carry the hash of the one before and the\n"
    "signature of the operator who acted (checked against their registered key); every\n"
    "checkpoint (one each audit.checkpoint_every entries) must be signed by the checkpoint\n"
    "key and match the entries; the head must match the last entry. Reports each altered,\n"
    "deleted, inserted or reordered entry and a tail cut back past a checkpoint, by entry\n"
    "number. The checkpoint key's public half comes from outside the store: the token\n"
    "(audit.checkpoint_key, no PIN needed) or --checkpoint-pub FILE (- for standard input).\n"
    "\n"
    "It also replays the trail: every executed request must have enough valid, distinct\n"
    "approvals signed by operators active then, over the content the store holds\n"
    "(findings 'unapproved', 'content'), and the registry's operators must be those the\n"
    "trail's signed entries made ('registry'). With the PIN (SMKI_PIN or --pin-file) it\n"
    "reads the head anchored on the token beside the checkpoint key after every action:\n"
    "a trail cut back or rewritten behind it is named ('anchor'). The store is opened\n"
    "read-only.\n"
    "\n"
    "  SMKI_PIN=... smki audit verify\n"
    "  smki --json audit verify --checkpoint-pub checkpoint.pub\n"
    "\n"
    "Exit 0 clean; 2 with the findings if anything does not verify.\n";

static const char LOG_HELP[] =
    "Usage: smki audit list [--from N] [--last N]\n"
    "\n"
    "The audit trail's entries: number, time, operator, action, object and detail.\n";

/* The checkpoint key's public half: from a file, or the token (no PIN needed). */
static int checkpoint_pub(smki_cli *c, const char *path, EVP_PKEY **pub)
{
    if (path) return pub_read(path, pub);
    char ref[SMKI_KEY_URI_MAX];
    int rc = cli_key_ref(c, smki_conf_get(c->conf, "audit.checkpoint_key", "smki-audit"), ref, sizeof ref);
    if (rc == 0) rc = smki_key_public_load(ref, &c->hsm, pub);
    if (rc < 0)
        return smki_error_wrap("the checkpoint key's public half (audit.checkpoint_key, or give --checkpoint-pub FILE)");
    return 0;
}

static void verify_json(const smki_audit_report *rep, int clean)
{
    json_w w;
    json_begin(&w, stdout);
    json_bool(&w, "ok", clean);
    json_int(&w, "entries", (long long)rep->entries);
    json_int(&w, "checkpoints", (long long)rep->checkpoints);
    json_int(&w, "head", (long long)rep->head_seq);
    json_int(&w, "last_checkpoint", (long long)rep->last_checkpoint);
    json_bool(&w, "anchor_checked", rep->anchor_checked);
    json_int(&w, "anchor", (long long)rep->anchor_seq);
    json_key_arr(&w, "findings");
    for (size_t i = 0; i < rep->n_findings; i++) {
        json_arr_obj(&w);
        json_str(&w, "kind", smki_audit_finding_name(rep->findings[i].kind));
        json_int(&w, "entry", (long long)rep->findings[i].seq);
        json_str(&w, "message", rep->findings[i].message);
        json_close_obj(&w);
    }
    json_close_arr(&w);
    json_int(&w, "total_findings", (long long)rep->total_findings);
    json_end(&w);
}

static void verify_human(const smki_audit_report *rep, int clean)
{
    if (!clean) {
        fprintf(stderr, "smki: refused: the audit trail does not verify: %zu finding(s)\n", rep->total_findings);
        for (size_t i = 0; i < rep->n_findings; i++)
            fprintf(stderr, "  entry %-6llu %-18s %s\n", (unsigned long long)rep->findings[i].seq,
                    smki_audit_finding_name(rep->findings[i].kind), rep->findings[i].message);
        fprintf(stderr, "Keep the store as it is for investigation; restore from a verified backup (docs/ra.md).\n");
        return;
    }
    printf("Audit trail verified: %llu entries, %llu signed checkpoint(s) (the last at entry %llu), head %llu.\n",
           (unsigned long long)rep->entries, (unsigned long long)rep->checkpoints,
           (unsigned long long)rep->last_checkpoint, (unsigned long long)rep->head_seq);
    if (rep->head_seq > rep->last_checkpoint)
        printf("Entries after %llu are chained and signed by their operators; the next checkpoint will pin them.\n",
               (unsigned long long)rep->last_checkpoint);
    if (rep->anchor_checked)
        printf("The head anchored beside the checkpoint key (entry %llu) is in the trail: it was not cut short.\n",
               (unsigned long long)rep->anchor_seq);
    else if (rep->entries)
        printf("The trail's anchor beside the checkpoint key was not read (give the PIN: SMKI_PIN or --pin-file):\n"
               "a trail cut back behind its last checkpoint is found only with it.\n");
}

static int audit_verify(smki_cli *c, int argc, char **argv)
{
    const char *pub_path = NULL;
    const cli_opt opts[] = {CLI_VALUE("checkpoint-pub", &pub_path), CLI_END};
    const cli_spec spec = {"smki audit verify", VERIFY_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    ra_ctx x;
    EVP_PKEY *pub = NULL;
    int rc = ra_begin(c, 0, NULL, &x);
    if (rc == 0) rc = checkpoint_pub(c, pub_path, &pub);
    /* The trail's anchor is read with the checkpoint key open (a token key: the PIN). */
    if (rc == 0 && !x.empty) ra_cli_checkpoint_key(c, x.ra);
    smki_audit_report *rep = calloc(1, sizeof *rep);
    if (rc == 0 && !rep) rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    int vrc = 0;
    if (rc == 0 && !x.empty) vrc = smki_audit_verify(x.ra, pub, rep);
    EVP_PKEY_free(pub);
    ra_end(&x);
    if (rc < 0 || (vrc < 0 && vrc != SMKI_E_VERIFY)) {
        free(rep);
        return cli_fail(c, rc < 0 ? rc : vrc);
    }
    if (c->json) verify_json(rep, vrc == 0);
    else verify_human(rep, vrc == 0);
    free(rep);
    return vrc == 0 ? EXIT_OK : EXIT_REFUSED;
}

typedef struct {
    json_w *w;
    size_t n;
    uint64_t skip_below;
    const smki_cli *c;
} log_run;

static int log_row(const smki_audit_entry *e, void *arg)
{
    log_run *l = arg;
    if (e->seq < l->skip_below) return 0;
    char t[CLI_TIME_MAX];
    cli_when(l->c, e->time, t);
    if (l->w) {
        json_arr_obj(l->w);
        json_int(l->w, "seq", (long long)e->seq);
        json_str(l->w, "time", t);
        json_str(l->w, "operator", e->operator_name);
        json_str(l->w, "action", e->action);
        json_str(l->w, "object", e->object);
        json_str(l->w, "detail", e->detail);
        json_close_obj(l->w);
    } else {
        if (!l->n) printf("%-6s %-20s %-10s %-20s %-26s %s\n", "SEQ", "TIME", "OPERATOR", "ACTION", "OBJECT", "DETAIL");
        printf("%-6llu %-20s %-10s %-20s %-26s %s\n", (unsigned long long)e->seq, t, e->operator_name, e->action,
               e->object, e->detail);
    }
    l->n++;
    return 0;
}

/* Entries from 'from', or of them only the last 'last' (0: all). */
static int audit_rows(ra_ctx *x, uint64_t from, uint64_t last, log_run *l)
{
    l->skip_below = from;
    if (last) {
        uint64_t head;
        GUARD(smki_audit_head(x->ra, &head, NULL));
        if (head > last && head - last + 1 > from) l->skip_below = head - last + 1;
    }
    return smki_audit_each(x->ra, from, log_row, l);
}

static int audit_list(smki_cli *c, int argc, char **argv)
{
    const char *from_s = NULL, *last_s = NULL;
    const cli_opt opts[] = {CLI_VALUE("from", &from_s), CLI_VALUE("last", &last_s), CLI_END};
    const cli_spec spec = {"smki audit list", LOG_HELP, opts, NULL, 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    uint64_t from = 1, last = 0;
    int rc = 0;
    if (from_s) rc = cli_number("--from", from_s, 1, UINT64_MAX >> 1, &from);
    if (rc == 0 && last_s) rc = cli_number("--last", last_s, 1, UINT64_MAX >> 1, &last);
    if (rc < 0) return cli_fail(c, rc);
    ra_ctx x;
    rc = ra_begin(c, 0, NULL, &x);
    if (rc < 0) return done_msg(c, rc, &x, "");
    json_w w;
    log_run l = {c->json ? &w : NULL, 0, from, c};
    json_list_open(c, &w, "entries");
    if (!x.empty) rc = audit_rows(&x, from, last, &l);
    if (c->json) {
        json_close_arr(&w);
        json_int(&w, "count", (long long)l.n);
        json_end(&w);
    }
    ra_end(&x);
    return cli_finish(c, rc);
}

static const cli_cmd AUDIT_COMMANDS[] = {
    {"verify", audit_verify, "verify the audit trail: chain, operators' signatures, checkpoints, head"},
    {"list", audit_list, "list the audit trail's entries"},
    {NULL, NULL, NULL},
};

int cmd_audit(smki_cli *c, int argc, char **argv)
{
    return cli_dispatch(c, AUDIT_COMMANDS, argc - 1, argv + 1, "smki audit",
                        "smki audit: the tamper-evident audit trail of every RA and CA action.");
}
