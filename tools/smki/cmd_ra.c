/* smki ra and smki audit: the Registration Authority's operators' commands. The
 * registry (operators, parties, EUI-64 blocks, IDs, subscribers, suspensions),
 * requests (submit, list, show, approve, reject, execute), the expiry monitor, and
 * the audit trail's verification. Argument parsing and output only: the work is in ra/. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "ra/ra.h"

/* ---- Arguments ---------------------------------------------------------------------------- */

#define ARGS_MAX 64
typedef struct {
    const char *k[ARGS_MAX], *v[ARGS_MAX];
    size_t n;
    const char *pos[8];
    size_t npos;
} args;

/* --key value pairs (flags: --key alone, value "1"), positionals; unknown keys refused. */
static int parse_args(smki_cli *c, const char *prog, int argc, char **argv, const char *const *valued,
                      const char *const *flags, args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strncmp(s, "--", 2) != 0 || !s[2]) {
            if (a->npos == 8) return cli_usage(c, prog, "too many arguments");
            a->pos[a->npos++] = s;
            continue;
        }
        int known = 0;
        for (size_t j = 0; flags && flags[j]; j++)
            if (strcmp(s + 2, flags[j]) == 0) known = 1;
        if (known) {
            if (a->n == ARGS_MAX) return cli_usage(c, prog, "too many options");
            a->k[a->n] = s + 2, a->v[a->n++] = "1";
            continue;
        }
        for (size_t j = 0; valued && valued[j]; j++)
            if (strcmp(s + 2, valued[j]) == 0) known = 2;
        if (known != 2) return cli_usage(c, prog, "unknown option %s", s);
        if (i + 1 >= argc) return cli_usage(c, prog, "%s needs a value", s);
        if (a->n == ARGS_MAX) return cli_usage(c, prog, "too many options");
        a->k[a->n] = s + 2, a->v[a->n++] = argv[++i];
    }
    return 0;
}

static const char *arg(const args *a, const char *k)
{
    const char *v = NULL;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->k[i], k) == 0) v = a->v[i];
    return v;
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

/* ---- The RA, the acting operator ------------------------------------------------------------- */

/* Taken out of argv before dispatch: every command accepts them anywhere. */
static const char *g_operator, *g_operator_key;

static int take_operator(int argc, char **argv)
{
    int out = 0;
    for (int i = 0; i < argc; i++) {
        if ((strcmp(argv[i], "--operator") == 0 || strcmp(argv[i], "--operator-key") == 0) && i + 1 < argc) {
            if (argv[i][10] == '\0') g_operator = argv[++i];
            else g_operator_key = argv[++i];
            continue;
        }
        argv[out++] = argv[i];
    }
    return out;
}

typedef struct {
    smki_store *s;
    smki_ra *ra;
    smki_key *op_key;
    smki_ra_actor actor;
    int empty; /* a read of a home without a store */
} ra_ctx;

int ra_cli_actor(smki_cli *c, const char *op, const char *key, smki_key **out)
{
    if (!op) op = g_operator ? g_operator : getenv("SMKI_OPERATOR");
    ENSURE(op && *op, SMKI_E_USAGE,
           "this is an RA action: say who takes it with --operator NAME (and --operator-key KEY, or "
           "[operators] NAME = KEY in smki.conf)");
    if (!key) key = g_operator_key ? g_operator_key : getenv("SMKI_OPERATOR_KEY");
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

/* write: open (creating) the store and the checkpoint key; actor: the operator's key. */
static int ra_begin(smki_cli *c, int write, int actor, ra_ctx *x)
{
    memset(x, 0, sizeof *x);
    GUARD(cli_home(c));
    smki_ra_policy pol;
    GUARD(smki_ra_policy_load(c->conf, &pol));
    if (actor) {
        GUARD(ra_cli_actor(c, NULL, NULL, &x->op_key));
        x->actor.name = g_operator ? g_operator : getenv("SMKI_OPERATOR");
        x->actor.key = x->op_key;
    }
    if (!write && !smki_store_exists(c->store_dir)) {
        x->empty = 1;
        return 0;
    }
    /* Reading opens the store read-only: 'smki audit verify' of a store on read-only media. */
    smki_store_opts so = {0, 0, !write};
    GUARD(smki_store_open(c->store_dir, &so, &x->s));
    int rc = smki_ra_open(x->s, &pol, &x->ra);
    if (rc == SMKI_E_NOTFOUND && !write) { /* read-only, and the RA has written nothing yet */
        smki_error_clear();
        x->empty = 1;
        return 0;
    }
    GUARD(rc);
    if (write) {
        /* The checkpoint key: its absence fails the action on which a checkpoint falls due. */
        ra_cli_checkpoint_key(c, x->ra);
    }
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

static void when(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t < 0 || !gmtime_r(&tt, &tm)) {
        snprintf(out, 32, t < 0 ? "never" : "?");
        return;
    }
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
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
    "--pin-file, never the command line.\n"
    "\n"
    "The first operator of a registry registers themself (--operator is the NAME being\n"
    "added, with its own key): the bootstrap. Their registration also binds the CA\n"
    "certificates already in the store (the ceremony that preceded the RA) to the audit\n"
    "trail ('smki ra adopt-ca'). Later ones are added by an active operator.\n"
    "A deactivated operator's past entries still verify; they can take no new action.\n"
    "\n"
    "Example:\n"
    "  smki key generate --label op-alice --usage ds && smki key pub op-alice --out alice.pub\n"
    "  smki ra operator add alice --pub alice.pub --operator alice --operator-key op-alice\n";

typedef struct {
    json_w *w;
    size_t n;
} list_run;

static int operator_row(const smki_ra_operator *o, void *arg)
{
    list_run *r = arg;
    char t[32], hx[2 * SMKI_POINT_LEN + 1];
    when(o->added, t);
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

/* Lists share this frame: JSON array (or table), then a count. */
typedef int (*lister)(ra_ctx *x, list_run *r, void *arg);

static int run_list(smki_cli *c, const char *key, lister fn, void *arg, const char *noun)
{
    ra_ctx x;
    int rc = ra_begin(c, 0, 0, &x);
    if (rc < 0) {
        ra_end(&x);
        return cli_fail(c, rc);
    }
    json_w w;
    list_run r = {c->json ? &w : NULL, 0};
    if (c->json) {
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_key_arr(&w, key);
    }
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

static int list_operators(ra_ctx *x, list_run *r, void *arg)
{
    (void)arg;
    return smki_ra_operator_each(x->ra, operator_row, r);
}

static int ra_operator(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, OPERATOR_HELP)) return EXIT_OK;
    static const char *const V[] = {"pub", NULL};
    args a;
    int u = parse_args(c, "smki ra operator", argc, argv, V, NULL, &a);
    if (u) return u;
    const char *verb = a.npos ? a.pos[0] : NULL;
    if (verb && strcmp(verb, "list") == 0) return run_list(c, "operators", list_operators, NULL, "operator(s)");
    if (!verb || (strcmp(verb, "add") && strcmp(verb, "deactivate")) || a.npos != 2)
        return cli_usage(c, "smki ra operator", "give add NAME --pub FILE, list, or deactivate NAME");
    ra_ctx x;
    int rc = ra_begin(c, 1, 1, &x);
    char msg[512];
    if (rc == 0 && strcmp(verb, "add") == 0) {
        EVP_PKEY *pub = NULL;
        const char *pf = arg(&a, "pub");
        size_t before = 0, adopted = 0;
        rc = pf ? smki_pub_load_file(pf, &pub)
                : SMKI_FAIL(SMKI_E_USAGE, "--pub FILE (the operator's public key) is required");
        if (rc == 0) rc = smki_ra_operator_count(x.ra, &before);
        if (rc == 0) rc = smki_ra_operator_add(x.ra, &x.actor, a.pos[1], pub);
        EVP_PKEY_free(pub);
        /* The bootstrap: the CAs of the ceremony that preceded every operator, bound to the
         * trail now by the first operator's signature. */
        if (rc == 0 && before == 0) {
            rc = smki_ra_ca_adopt(x.ra, &x.actor, &adopted);
            if (rc < 0)
                smki_error_wrap("operator %s is registered, but the CA certificates of the bootstrap ceremony are not "
                                "yet in the audit trail: run 'smki ra adopt-ca --operator %s'",
                                a.pos[1], a.pos[1]);
        }
        int at = snprintf(msg, sizeof msg, "Operator %s registered. They act with --operator %s --operator-key KEY.",
                          a.pos[1], a.pos[1]);
        if (adopted && at > 0 && (size_t)at < sizeof msg)
            snprintf(msg + at, sizeof msg - (size_t)at,
                     "\nThe bootstrap ceremony's %zu CA certificate(s) are now in the audit trail (ca-adopt entries "
                     "signed by %s: SKI, subject, SHA-256).",
                     adopted, a.pos[1]);
    } else if (rc == 0) {
        rc = smki_ra_operator_deactivate(x.ra, &x.actor, a.pos[1]);
        snprintf(msg, sizeof msg, "Operator %s deactivated: their entries still verify; they can act no more.",
                 a.pos[1]);
    }
    return done_msg(c, rc, &x, msg);
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
    "may request nothing, and the gateway refuses its Users ('smki ra id check EUI').\n";

static void party_json(json_w *w, const smki_ra_party *p)
{
    char t[32];
    when(p->created, t);
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
        party_json(r->w, p);
        json_close_obj(r->w);
    } else {
        if (!r->n)
            printf("%-20s %-28s %-4s %-8s %-9s %s\n", "SIGNIFIER", "NAME", "DCC", "TESTING", "AGREEMENT", "STATE");
        printf("%-20s %-28.28s %-4s %-8s %-9s %s%s%s\n", p->signifier, p->name, p->is_dcc ? "yes" : "-",
               p->is_testing_participant ? "yes" : "-", p->agreement_signed ? "signed" : "-",
               p->suspended ? "suspended: " : "active", p->suspended ? p->suspend_reason : "", "");
    }
    r->n++;
    return 0;
}

static int list_parties(ra_ctx *x, list_run *r, void *arg)
{
    (void)arg;
    return smki_ra_party_each(x->ra, party_row, r);
}

static int ra_party(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, PARTY_HELP)) return EXIT_OK;
    static const char *const V[] = {"name", "reason", "testing-participant", "agreement-signed", NULL};
    static const char *const F[] = {"dcc", NULL};
    /* On add, --testing-participant and --agreement-signed are flags; on set, yes/no. */
    int is_add = argc > 1 && strcmp(argv[1], "add") == 0;
    static const char *const VA[] = {"name", NULL};
    static const char *const FA[] = {"dcc", "testing-participant", "agreement-signed", NULL};
    args a;
    int u = parse_args(c, "smki ra party", argc, argv, is_add ? VA : V, is_add ? FA : F, &a);
    if (u) return u;
    const char *verb = a.npos ? a.pos[0] : "";
    if (strcmp(verb, "list") == 0) return run_list(c, "parties", list_parties, NULL, "party(ies)");
    if (a.npos != 2) return cli_usage(c, "smki ra party", "give add|show|set|suspend|resume SIGNIFIER, or list");
    const char *sig = a.pos[1];
    char msg[512];
    ra_ctx x;
    int rc;
    if (strcmp(verb, "show") == 0) {
        rc = ra_begin(c, 0, 0, &x);
        smki_ra_party p;
        if (rc == 0 && x.empty) rc = SMKI_FAIL(SMKI_E_NOTFOUND, "no party '%s' in the registry", sig);
        if (rc == 0) rc = smki_ra_party_get(x.ra, sig, &p);
        ra_end(&x);
        if (rc < 0) return cli_fail(c, rc);
        if (c->json) {
            json_w w;
            json_begin(&w, stdout);
            json_bool(&w, "ok", 1);
            party_json(&w, &p);
            json_end(&w);
        } else {
            list_run r = {NULL, 0};
            party_row(&p, &r);
        }
        return EXIT_OK;
    }
    rc = ra_begin(c, 1, 1, &x);
    if (rc < 0) return done_msg(c, rc, &x, "");
    if (strcmp(verb, "add") == 0) {
        smki_ra_party p;
        memset(&p, 0, sizeof p);
        ENSURE_GOTO(strlen(sig) < sizeof p.signifier, SMKI_E_USAGE, out, "Party Signifier too long");
        snprintf(p.signifier, sizeof p.signifier, "%s", sig);
        const char *name = arg(&a, "name");
        ENSURE_GOTO(!name || strlen(name) < sizeof p.name, SMKI_E_USAGE, out, "--name is at most 64 characters");
        snprintf(p.name, sizeof p.name, "%s", name ? name : "");
        p.is_dcc = arg(&a, "dcc") != NULL;
        p.is_testing_participant = arg(&a, "testing-participant") != NULL;
        p.agreement_signed = arg(&a, "agreement-signed") != NULL;
        rc = smki_ra_party_add(x.ra, &x.actor, &p);
        snprintf(msg, sizeof msg,
                 "Party %s registered. Next: assign it an EUI-64 block ('smki ra range assign BLOCK --party %s --kind "
                 "central') and authorise it ('smki ra subscriber authorise --party %s ...').",
                 sig, sig, sig);
    } else if (strcmp(verb, "set") == 0) {
        int tp, ag;
        rc = yes_no(arg(&a, "testing-participant"), "testing-participant", &tp);
        if (rc == 0) rc = yes_no(arg(&a, "agreement-signed"), "agreement-signed", &ag);
        if (rc == 0 && tp < 0 && ag < 0)
            rc = SMKI_FAIL(SMKI_E_USAGE, "give --testing-participant yes|no and/or --agreement-signed yes|no");
        if (rc == 0) rc = smki_ra_party_set_testing(x.ra, &x.actor, sig, tp, ag);
        snprintf(msg, sizeof msg, "Party %s updated.", sig);
    } else if (strcmp(verb, "suspend") == 0 || strcmp(verb, "resume") == 0) {
        int sus = strcmp(verb, "suspend") == 0;
        rc = smki_ra_party_suspend(x.ra, &x.actor, sig, sus, arg(&a, "reason"));
        snprintf(msg, sizeof msg, sus ? "Party %s suspended: it may request nothing and the gateway refuses its Users."
                                      : "Party %s resumed.",
                 sig);
    } else {
        rc = SMKI_FAIL(SMKI_E_USAGE, "unknown party command '%s' (see 'smki ra party --help')", verb);
    }
out:
    return done_msg(c, rc, &x, msg);
}

/* ---- range ----------------------------------------------------------------------------------- */

static const char RANGE_HELP[] =
    "Usage: smki ra range assign BLOCK --party SIGNIFIER --kind central|device\n"
    "       smki ra range list\n"
    "\n"
    "Assign an EUI-64 block (e.g. an MA-S block 90B3D51F3/36, or 90-B3-D5-1F-30-00-00-00/36)\n"
    "to a Party: 'central' blocks are carved from the central registry entry for User, DCC\n"
    "and RDP IDs (never Device IDs); 'device' blocks are a manufacturer's Device IDs.\n"
    "Blocks never overlap. IDs are allocated only inside the requester's own central blocks.\n";

static int range_row(const smki_ra_range *r, void *arg)
{
    list_run *l = arg;
    char t[48];
    smki_eui64_range_format(&r->range, t);
    if (l->w) {
        json_arr_obj(l->w);
        json_str(l->w, "block", t);
        json_str(l->w, "kind", r->kind == SMKI_RANGE_CENTRAL ? "central" : "device");
        json_str(l->w, "party", r->party);
        json_int(l->w, "next", (long long)r->next);
        json_close_obj(l->w);
    } else {
        if (!l->n) printf("%-24s %-8s %-20s %s\n", "BLOCK", "KIND", "PARTY", "NEXT FREE OFFSET");
        printf("%-24s %-8s %-20s %llu\n", t, r->kind == SMKI_RANGE_CENTRAL ? "central" : "device", r->party,
               (unsigned long long)r->next);
    }
    l->n++;
    return 0;
}

static int list_ranges(ra_ctx *x, list_run *r, void *arg)
{
    (void)arg;
    return smki_ra_range_each(x->ra, range_row, r);
}

static int ra_range(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, RANGE_HELP)) return EXIT_OK;
    static const char *const V[] = {"party", "kind", NULL};
    args a;
    int u = parse_args(c, "smki ra range", argc, argv, V, NULL, &a);
    if (u) return u;
    const char *verb = a.npos ? a.pos[0] : "";
    if (strcmp(verb, "list") == 0) return run_list(c, "ranges", list_ranges, NULL, "block(s)");
    if (strcmp(verb, "assign") || a.npos != 2 || !arg(&a, "party") || !arg(&a, "kind"))
        return cli_usage(c, "smki ra range", "give assign BLOCK --party SIGNIFIER --kind central|device, or list");
    smki_eui64_range_t r;
    int rc = smki_eui64_range_parse(a.pos[1], &r);
    const char *kind = arg(&a, "kind");
    smki_range_kind k = strcmp(kind, "central") == 0 ? SMKI_RANGE_CENTRAL : SMKI_RANGE_DEVICE;
    if (rc == 0 && strcmp(kind, "central") && strcmp(kind, "device"))
        rc = SMKI_FAIL(SMKI_E_USAGE, "--kind is central or device, not '%.16s'", kind);
    if (rc < 0) return cli_fail(c, rc);
    ra_ctx x;
    rc = ra_begin(c, 1, 1, &x);
    if (rc == 0) rc = smki_ra_range_assign(x.ra, &x.actor, &r, k, arg(&a, "party"));
    char msg[256], t[48];
    smki_eui64_range_format(&r, t);
    snprintf(msg, sizeof msg, "Block %s assigned to %s (%s). Next: 'smki ra id allocate --party %s --roles ...'.", t,
             arg(&a, "party"), kind, arg(&a, "party"));
    return done_msg(c, rc, &x, msg);
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
    "'set-roles' replaces the User Roles bound to an ID (the gateway's eligibility reads them).\n";

typedef struct {
    list_run *l;
    const char *party;
} id_list_arg;

static int id_row(const smki_ra_user_id *u, void *arg)
{
    id_list_arg *ia = arg;
    list_run *l = ia->l;
    if (ia->party && strcmp(ia->party, u->party)) return 0;
    char e[SMKI_EUI64_TEXT_MAX], roles[40], t[32];
    smki_eui64_format(&u->id, SMKI_EUI64_HYPHEN, e);
    smki_user_roles_format(u->roles, roles, sizeof roles);
    when(u->allocated, t);
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

static int ra_id(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, ID_HELP)) return EXIT_OK;
    static const char *const V[] = {"party", "roles", "eui", "reason", NULL};
    args a;
    int u = parse_args(c, "smki ra id", argc, argv, V, NULL, &a);
    if (u) return u;
    const char *verb = a.npos ? a.pos[0] : "";
    if (strcmp(verb, "list") == 0) return run_list(c, "ids", list_ids, (void *)arg(&a, "party"), "ID(s)");
    ra_ctx x;
    char msg[512];
    int rc;
    smki_eui64_t e;
    if (strcmp(verb, "allocate") == 0) {
        unsigned roles = 0;
        if (!arg(&a, "party") || !arg(&a, "roles") || a.npos != 1)
            return cli_usage(c, "smki ra id allocate", "--party and --roles are required");
        rc = smki_user_roles_parse(arg(&a, "roles"), &roles);
        if (rc == 0 && arg(&a, "eui")) rc = smki_eui64_parse(arg(&a, "eui"), &e);
        if (rc < 0) return cli_fail(c, rc);
        rc = ra_begin(c, 1, 1, &x);
        smki_eui64_t got;
        if (rc == 0)
            rc = smki_ra_id_allocate(x.ra, &x.actor, arg(&a, "party"), roles, arg(&a, "eui") ? &e : NULL, &got);
        char t[SMKI_EUI64_TEXT_MAX] = "";
        if (rc == 0) smki_eui64_format(&got, SMKI_EUI64_HYPHEN, t);
        ra_end(&x);
        if (rc < 0) return cli_fail(c, rc);
        if (c->json) {
            json_w w;
            json_begin(&w, stdout);
            json_bool(&w, "ok", 1);
            json_str(&w, "eui64", t);
            json_str(&w, "party", arg(&a, "party"));
            json_end(&w);
        } else {
            printf("Allocated %s to %s (%s).\n", t, arg(&a, "party"), arg(&a, "roles"));
        }
        return EXIT_OK;
    }
    if (a.npos != 2) return cli_usage(c, "smki ra id", "give allocate, list, or suspend|resume|check|set-roles EUI64");
    rc = smki_eui64_parse(a.pos[1], &e);
    if (rc < 0) return cli_fail(c, rc);
    if (strcmp(verb, "check") == 0) {
        rc = ra_begin(c, 0, 0, &x);
        if (rc == 0 && x.empty) rc = SMKI_FAIL(SMKI_E_NOTFOUND, "%s is not an allocated User ID", a.pos[1]);
        if (rc == 0) rc = smki_ra_check_sender(x.ra, &e);
        snprintf(msg, sizeof msg, "%s may send: registered, and neither it nor its Party is suspended.", a.pos[1]);
        return done_msg(c, rc, &x, msg);
    }
    if (strcmp(verb, "set-roles") == 0) {
        unsigned roles = 0;
        if (!arg(&a, "roles")) return cli_usage(c, "smki ra id set-roles", "--roles is required");
        rc = smki_user_roles_parse(arg(&a, "roles"), &roles);
        if (rc < 0) return cli_fail(c, rc);
        rc = ra_begin(c, 1, 1, &x);
        if (rc == 0) rc = smki_ra_id_set_roles(x.ra, &x.actor, &e, roles);
        snprintf(msg, sizeof msg, "%s: User Roles %s.", a.pos[1], arg(&a, "roles"));
        return done_msg(c, rc, &x, msg);
    }
    int sus = strcmp(verb, "suspend") == 0;
    if (!sus && strcmp(verb, "resume")) return cli_usage(c, "smki ra id", "unknown id command '%s'", verb);
    rc = ra_begin(c, 1, 1, &x);
    if (rc == 0) rc = smki_ra_id_suspend(x.ra, &x.actor, &e, sus, arg(&a, "reason"));
    snprintf(msg, sizeof msg, "%s %s.", a.pos[1], sus ? "suspended: the gateway refuses it" : "resumed");
    return done_msg(c, rc, &x, msg);
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
    "certificates for the Party's endpoints: the Party's Signifier goes into them).\n";

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

static int ra_subscriber(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, SUBSCRIBER_HELP)) return EXIT_OK;
    static const char *const V[] = {"party", "type", "role", "env", NULL};
    args a;
    int u = parse_args(c, "smki ra subscriber", argc, argv, V, NULL, &a);
    if (u) return u;
    const char *verb = a.npos ? a.pos[0] : "";
    if (strcmp(verb, "list") == 0) return run_list(c, "subscribers", list_subs, NULL, "subscription(s)");
    int add = strcmp(verb, "authorise") == 0 || strcmp(verb, "authorize") == 0;
    if ((!add && strcmp(verb, "revoke")) || a.npos != 1 || !arg(&a, "party") || !arg(&a, "type") || !arg(&a, "env"))
        return cli_usage(c, "smki ra subscriber",
                         "give authorise|revoke --party P --type T [--role R] --env E, or list");
    smki_ra_subscriber s;
    memset(&s, 0, sizeof s);
    int rc = 0;
    const char *type = arg(&a, "type");
    if (strcmp(type, "organisation") == 0) s.type = SMKI_PROFILE_ORGANISATION;
    else if (strcmp(type, "device") == 0) s.type = SMKI_PROFILE_DEVICE;
    else if (strcmp(type, "dccki-server") == 0) s.type = SMKI_PROFILE_DCCKI_SERVER;
    else if (strcmp(type, "dccki-client") == 0) s.type = SMKI_PROFILE_DCCKI_CLIENT;
    else rc = SMKI_FAIL(SMKI_E_USAGE, "--type is organisation, device, dccki-server or dccki-client, not '%.16s'", type);
    s.role = -1;
    uint8_t role;
    if (rc == 0 && arg(&a, "role")) {
        rc = smki_role_parse(arg(&a, "role"), &role);
        s.role = role;
    }
    if (rc == 0 && (strlen(arg(&a, "party")) >= sizeof s.party || strlen(arg(&a, "env")) >= sizeof s.env))
        rc = SMKI_FAIL(SMKI_E_USAGE, "--party or --env too long");
    if (rc < 0) return cli_fail(c, rc);
    snprintf(s.party, sizeof s.party, "%s", arg(&a, "party"));
    snprintf(s.env, sizeof s.env, "%s", arg(&a, "env"));
    ra_ctx x;
    rc = ra_begin(c, 1, 1, &x);
    if (rc == 0)
        rc = add ? smki_ra_subscriber_authorise(x.ra, &x.actor, &s) : smki_ra_subscriber_revoke(x.ra, &x.actor, &s);
    char msg[256];
    snprintf(msg, sizeof msg, "Party %s %s for %s certificates in %s.", s.party,
             add ? "is an Authorised Subscriber" : "is no longer authorised", type, s.env);
    return done_msg(c, rc, &x, msg);
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
    "       smki ra request execute ID [--out-dir DIR]\n"
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
    "\n"
    "DCCKI TLS certificates (dccki-server, dccki-client) go to a Party that is an\n"
    "Authorised Subscriber for that type in ENV; its Signifier is the certificate's\n"
    "organizationIdentifier (a CSR that carries another is refused); a server names its\n"
    "host (--dns, --ip, each may repeat up to 16). They need ra.approvals_organisation.\n"
    "\n"
    "--out-dir writes the issued certificates as PEM (<serial>.pem). After an interruption\n"
    "run the same command again: an unfinished request resumes, and one already executed\n"
    "only writes, from the store, every file missing from DIR.\n";

static void req_json(json_w *w, const smki_ra_request *r)
{
    char t[32], e[SMKI_EUI64_TEXT_MAX], s[64];
    json_int(w, "id", (long long)r->id);
    json_str(w, "type", smki_req_type_name(r->type));
    json_str(w, "state", smki_req_state_name(r->state));
    json_str(w, "party", r->party);
    json_str(w, "env", r->env);
    json_str(w, "requester", r->requester);
    when(r->created, t);
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
 * number): what 'ra request submit', 'ra revoke' and 'ra recover' share. */
static int submit(smki_cli *c, const smki_ra_submit *s, smki_ra_request *r)
{
    ra_ctx x;
    memset(&x, 0, sizeof x);
    uint64_t id = 0;
    int rc = ra_begin(c, 1, 1, &x);
    if (rc == 0) rc = smki_ra_request_submit(x.ra, &x.actor, s, &id);
    if (rc == 0) rc = smki_ra_request_get(x.ra, id, r);
    ra_end(&x);
    return rc;
}

/* Under --json, the submitted request as one object; returns 1 when it printed. */
static int submitted_json(smki_cli *c, const smki_ra_request *r)
{
    if (!c->json) return 0;
    json_w w;
    json_begin(&w, stdout);
    json_bool(&w, "ok", 1);
    req_json(&w, r);
    json_end(&w);
    return 1;
}

static int req_row(const smki_ra_request *r, void *arg)
{
    list_run *l = arg;
    if (l->w) {
        json_arr_obj(l->w);
        req_json(l->w, r);
        json_close_obj(l->w);
    } else {
        char t[32], what[64] = "";
        when(r->created, t);
        if (r->type == SMKI_REQ_DEVICE_BATCH)
            snprintf(what, sizeof what, "%u CSRs, %u issued", r->csr_count, r->done_count);
        else if (r->has_eui) smki_eui64_format(&r->eui, SMKI_EUI64_HYPHEN, what);
        else if ((r->type == SMKI_REQ_DCCKI_SERVER || r->type == SMKI_REQ_DCCKI_CLIENT) && r->cn[0])
            snprintf(what, sizeof what, "CN=%.60s", r->cn);
        if (!l->n)
            printf("%-5s %-13s %-9s %-16s %-8s %-10s %-9s %-24s %s\n", "ID", "TYPE", "STATE", "PARTY", "ENV",
                   "REQUESTER", "APPROVALS", "SUBJECT", "NOTE");
        char ap[16];
        snprintf(ap, sizeof ap, "%zu/%u", r->n_approvals, r->approvals_required);
        printf("%-5llu %-13s %-9s %-16s %-8s %-10s %-9s %-24s %s\n", (unsigned long long)r->id,
               smki_req_type_name(r->type), smki_req_state_name(r->state), r->party, r->env, r->requester, ap, what,
               r->note);
    }
    l->n++;
    return 0;
}

static int list_reqs(ra_ctx *x, list_run *r, void *arg)
{
    return smki_ra_request_each(x->ra, *(int *)arg, req_row, r);
}

static int parse_id(const char *text, uint64_t *id)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    /* strtoull saturates above 2^64-1: that is another number, not this one. */
    ENSURE(text[0] >= '1' && text[0] <= '9' && end && !*end && errno != ERANGE, SMKI_E_USAGE,
           "'%.32s' is not a request number (1 to 18446744073709551615)", text);
    *id = v;
    return 0;
}

/* The CSR files of a batch: repeated --csr, or every regular file of --csr-dir (sorted). */
typedef struct {
    char **paths;
    size_t n, cap;
} file_list;

static int file_list_add(file_list *l, const char *p)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **n = realloc(l->paths, cap * sizeof *n);
        ENSURE(n, SMKI_E_NOMEM, "out of memory");
        l->paths = n;
        l->cap = cap;
    }
    l->paths[l->n] = strdup(p);
    ENSURE(l->paths[l->n], SMKI_E_NOMEM, "out of memory");
    l->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int file_list_dir(file_list *l, const char *dir)
{
    DIR *d = opendir(dir);
    ENSURE(d, SMKI_E_IO, "cannot read folder %s", dir);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4300];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) rc = file_list_add(l, p);
    }
    closedir(d);
    if (l->n) qsort(l->paths, l->n, sizeof *l->paths, cmp_str);
    return rc;
}

static void file_list_free(file_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
}

static int request_submit(smki_cli *c, const args *a)
{
    const char *type_s = arg(a, "type");
    smki_req_type type;
    int rc = type_s ? smki_req_type_parse(type_s, &type) : SMKI_FAIL(SMKI_E_USAGE, "--type is required");
    if (rc < 0) return cli_fail(c, rc);
    smki_ra_submit s;
    memset(&s, 0, sizeof s);
    s.type = type;
    s.party = arg(a, "party");
    s.env = arg(a, "env");
    if (!s.party || !s.env) return cli_usage(c, "smki ra request submit", "--party and --env are required");
    smki_eui64_t e;
    uint8_t *one = NULL;
    file_list files = {NULL, 0, 0};
    uint8_t **ders = NULL;
    size_t *lens = NULL;
    if (type == SMKI_REQ_ORGANISATION) {
        uint8_t role = 0;
        if (!arg(a, "csr") || !arg(a, "role") || !arg(a, "eui"))
            return cli_usage(c, "smki ra request submit", "an organisation request needs --csr, --role and --eui");
        rc = smki_role_parse(arg(a, "role"), &role);
        if (rc == 0) rc = smki_eui64_parse(arg(a, "eui"), &e);
        if (rc == 0) {
            rc = smki_file_read(arg(a, "csr"), SMKI_CSR_MAX, &one, &s.csr_len);
            if (rc < 0) smki_error_wrap("%s", arg(a, "csr"));
        }
        s.csr = one;
        s.role = role;
        s.eui = &e;
        s.cn = arg(a, "cn");
    } else if (type == SMKI_REQ_DEVICE_BATCH) {
        for (size_t i = 0; rc == 0 && i < a->n; i++)
            if (strcmp(a->k[i], "csr") == 0) rc = file_list_add(&files, a->v[i]);
        if (rc == 0 && arg(a, "csr-dir")) rc = file_list_dir(&files, arg(a, "csr-dir"));
        if (rc == 0 && files.n == 0)
            rc = SMKI_FAIL(SMKI_E_USAGE, "a device batch needs CSRs: --csr FILE ... or --csr-dir DIR");
        if (rc == 0) {
            ders = calloc(files.n, sizeof *ders);
            lens = calloc(files.n, sizeof *lens);
            if (!ders || !lens) rc = SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
        }
        for (size_t i = 0; rc == 0 && i < files.n; i++) {
            rc = smki_file_read(files.paths[i], SMKI_CSR_MAX, &ders[i], &lens[i]);
            if (rc < 0) smki_error_wrap("%s", files.paths[i]);
        }
        s.csrs = (const uint8_t *const *)ders;
        s.csr_lens = lens;
        s.n_csrs = files.n;
    } else if (type == SMKI_REQ_DCCKI_SERVER || type == SMKI_REQ_DCCKI_CLIENT) {
        if (!arg(a, "csr"))
            return cli_usage(c, "smki ra request submit", "a %s request needs --csr", smki_req_type_name(type));
        if (arg(a, "role") || arg(a, "eui"))
            return cli_usage(c, "smki ra request submit",
                             "a DCCKI TLS certificate has no Remote Party Role or EUI-64: drop --role/--eui");
        static const char *dns[16], *ips[16];
        size_t nd = 0, ni = 0;
        for (size_t i = 0; rc == 0 && i < a->n; i++) {
            if (strcmp(a->k[i], "dns") == 0 && nd < 16) dns[nd++] = a->v[i];
            else if (strcmp(a->k[i], "ip") == 0 && ni < 16) ips[ni++] = a->v[i];
            else if (strcmp(a->k[i], "dns") == 0 || strcmp(a->k[i], "ip") == 0)
                rc = SMKI_FAIL(SMKI_E_USAGE, "at most 16 --dns and 16 --ip");
        }
        if (rc == 0) {
            rc = smki_file_read(arg(a, "csr"), SMKI_CSR_MAX, &one, &s.csr_len);
            if (rc < 0) smki_error_wrap("%s", arg(a, "csr"));
        }
        s.csr = one;
        s.cn = arg(a, "cn");
        s.dns = dns, s.n_dns = nd, s.ips = ips, s.n_ips = ni;
        s.conf = c->conf;
    } else {
        rc = SMKI_FAIL(SMKI_E_USAGE, "submit takes --type organisation, device-batch, dccki-server or dccki-client; "
                                     "revocation is 'smki ra revoke'");
    }
    smki_ra_request r;
    if (rc == 0) rc = submit(c, &s, &r);
    free(one);
    for (size_t i = 0; ders && i < files.n; i++) free(ders[i]);
    free(ders);
    free(lens);
    file_list_free(&files);
    if (rc < 0) return cli_fail(c, rc);
    if (submitted_json(c, &r)) return EXIT_OK;
    printf("Request %llu submitted: %s, party %s, env %s; it is %s.\n", (unsigned long long)r.id,
           smki_req_type_name(r.type), r.party, r.env, smki_req_state_name(r.state));
    if (r.note[0]) printf("  %s\n", r.note);
    if (r.state == SMKI_REQ_APPROVED)
        printf("Next: 'smki ra request execute %llu'.\n", (unsigned long long)r.id);
    else
        printf("Next: %u approval(s) by operator(s) other than %s: 'smki ra request approve %llu --operator NAME'.\n",
               r.approvals_required, r.requester, (unsigned long long)r.id);
    return EXIT_OK;
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

/* --out-dir: <serial>.pem for each certificate; one already there is left as it is. */
typedef struct {
    const char *dir;
    size_t written, present;
} out_run;

static int write_missing(const smki_cert *x, void *arg)
{
    out_run *o = arg;
    char pem[4096], s[64], path[4400];
    size_t n;
    smki_hex_encode(x->serial, SMKI_SERIAL_LEN, s, 0);
    snprintf(path, sizeof path, "%s/%s.pem", o->dir, s);
    struct stat st;
    if (stat(path, &st) == 0) {
        o->present++;
        return 0;
    }
    GUARD(smki_cert_to_pem(x->der, x->der_len, pem, sizeof pem, &n));
    GUARD(smki_file_write_atomic(path, pem, n, 0644, 0));
    o->written++;
    return 0;
}

/* Execute (or, for a request already done, only write out what it issued: a re-run
 * after an interruption writes every missing file from the store). */
static int request_execute(smki_cli *c, ra_ctx *x, uint64_t id, const char *out_dir, char *crl_path, size_t cap,
                           out_run *out, int *already)
{
    smki_ra_request r;
    GUARD(smki_ra_request_get(x->ra, id, &r));
    *already = r.state == SMKI_REQ_DONE && out_dir;
    if (!*already) {
        smki_ra_exec_opts o;
        memset(&o, 0, sizeof o);
        o.hsm = &c->hsm;
        o.home = c->home;
        o.conf = c->conf;
        if (!c->json && isatty(2)) o.progress = progress_bar;
        GUARD(smki_ra_request_execute(x->ra, &x->actor, id, &o));
        snprintf(crl_path, cap, "%s", o.crl_path);
    }
    if (!out_dir) return 0;
    GUARD(smki_mkdirs(out_dir, 0755));
    GUARD(smki_dir_sweep_tmp(out_dir)); /* what a run killed while writing left */
    out->dir = out_dir;
    return smki_ra_request_certs(x->ra, id, write_missing, out);
}

static int ra_request(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, REQUEST_HELP)) return EXIT_OK;
    static const char *const V[] = {"type",   "party",   "env", "csr", "csr-dir", "role", "eui", "cn",
                                    "state",  "reason",  "out-dir", "dns", "ip", NULL};
    args a;
    int u = parse_args(c, "smki ra request", argc, argv, V, NULL, &a);
    if (u) return u;
    const char *verb = a.npos ? a.pos[0] : "";
    if (strcmp(verb, "submit") == 0) return request_submit(c, &a);
    if (strcmp(verb, "list") == 0) {
        static int state;
        state = 0;
        if (arg(&a, "state")) {
            smki_req_state st;
            int rc = smki_req_state_parse(arg(&a, "state"), &st);
            if (rc < 0) return cli_fail(c, rc);
            state = st;
        }
        return run_list(c, "requests", list_reqs, &state, "request(s)");
    }
    if (a.npos != 2) return cli_usage(c, "smki ra request", "give submit, list, or show|approve|reject|execute ID");
    uint64_t id;
    int rc = parse_id(a.pos[1], &id);
    if (rc < 0) return cli_fail(c, rc);
    ra_ctx x;
    char msg[4800];
    if (strcmp(verb, "show") == 0) {
        smki_ra_request r;
        rc = ra_begin(c, 0, 0, &x);
        if (rc == 0 && x.empty) rc = SMKI_FAIL(SMKI_E_NOTFOUND, "no request %llu", (unsigned long long)id);
        if (rc == 0) rc = smki_ra_request_get(x.ra, id, &r);
        static char names[12288];
        names[0] = '\0';
        int tls = rc == 0 && (r.type == SMKI_REQ_DCCKI_SERVER || r.type == SMKI_REQ_DCCKI_CLIENT);
        if (tls) rc = smki_ra_request_names(x.ra, id, names, sizeof names);
        ra_end(&x);
        if (rc < 0) return cli_fail(c, rc);
        if (c->json) {
            json_w w;
            json_begin(&w, stdout);
            json_bool(&w, "ok", 1);
            req_json(&w, &r);
            if (tls) {
                if (r.cn[0]) json_str(&w, "cn", r.cn);
                json_key_arr(&w, "names");
                for (char *line = names, *end; *line && (end = strchr(line, '\n')); line = end + 1) {
                    *end = '\0';
                    json_arr_str(&w, line);
                }
                json_close_arr(&w);
            }
            json_end(&w);
            return EXIT_OK;
        }
        char t[32], e[SMKI_EUI64_TEXT_MAX] = "-", s[64];
        when(r.created, t);
        if (r.has_eui) smki_eui64_format(&r.eui, SMKI_EUI64_HYPHEN, e);
        printf(
            "Request %llu\n  type        %s\n  state       %s\n  party       %s\n  environment %s\n  requester   %s\n"
            "  submitted   %s\n",
            (unsigned long long)r.id, smki_req_type_name(r.type), smki_req_state_name(r.state), r.party, r.env,
            r.requester, t);
        if (r.type == SMKI_REQ_ORGANISATION) {
            char role[SMKI_ROLE_TEXT_MAX] = "";
            if (r.role >= 0) smki_role_format((uint8_t)r.role, role);
            printf("  EUI-64      %s\n  role        %s %s\n  usage       %s\n", e, role,
                   smki_role_name((unsigned)r.role), r.usage == SMKI_USAGE_DS ? "DS" : "KA");
        } else if (r.type == SMKI_REQ_POLICY) {
            printf("  setting     %s = %d\n", r.cn, r.reason);
        } else if (r.type == SMKI_REQ_DCCKI_SERVER || r.type == SMKI_REQ_DCCKI_CLIENT) {
            printf("  CN          %s\n", r.cn[0] ? r.cn : "-");
            for (char *line = names, *end; *line && (end = strchr(line, '\n')); line = end + 1)
                printf("  name        %.*s\n", (int)(end - line), line);
        } else {
            printf("  CSRs        %u (%u issued)\n", r.csr_count, r.done_count);
        }
        printf("  approvals   %zu of %u:", r.n_approvals, r.approvals_required);
        for (size_t i = 0; i < r.n_approvals; i++) printf(" %s", r.approvers[i]);
        printf("\n");
        if (r.rejected_by[0]) printf("  rejected by %s\n", r.rejected_by);
        if (r.note[0]) printf("  note        %s\n", r.note);
        if (r.has_result) {
            smki_hex_encode(r.result_serial, SMKI_SERIAL_LEN, s, 0);
            printf("  certificate %s%s ('smki ca show %s')\n", s, r.type == SMKI_REQ_DEVICE_BATCH ? " (the first)" : "",
                   s);
        }
        return EXIT_OK;
    }
    rc = ra_begin(c, 1, 1, &x);
    if (rc < 0) return done_msg(c, rc, &x, "");
    if (strcmp(verb, "approve") == 0) {
        int now = 0;
        rc = smki_ra_request_approve(x.ra, &x.actor, id, &now);
        if (now)
            snprintf(msg, sizeof msg,
                     "Request %llu approved by %s: it is approved. Next: 'smki ra request execute %llu'.",
                     (unsigned long long)id, x.actor.name, (unsigned long long)id);
        else
            snprintf(msg, sizeof msg, "Request %llu approved by %s; it needs more approvals by other operators.",
                     (unsigned long long)id, x.actor.name);
    } else if (strcmp(verb, "reject") == 0) {
        rc = smki_ra_request_reject(x.ra, &x.actor, id, arg(&a, "reason"));
        snprintf(msg, sizeof msg, "Request %llu rejected by %s.", (unsigned long long)id, x.actor.name);
    } else if (strcmp(verb, "execute") == 0) {
        char crl_path[4200] = "";
        out_run out = {NULL, 0, 0};
        int already = 0;
        rc = cli_pin(c, 0);
        if (rc >= 0) rc = request_execute(c, &x, id, arg(&a, "out-dir"), crl_path, sizeof crl_path, &out, &already);
        smki_ra_request r;
        if (rc == 0) rc = smki_ra_request_get(x.ra, id, &r);
        char s[64] = "";
        if (rc == 0 && r.has_result) smki_hex_encode(r.result_serial, SMKI_SERIAL_LEN, s, 0);
        if (rc == 0 && already) {
            snprintf(msg, sizeof msg,
                     "Request %llu was already executed: %zu missing certificate file(s) written to %s from the store, "
                     "%zu already there.",
                     (unsigned long long)id, out.written, out.dir, out.present);
        } else if (rc == 0 && r.type == SMKI_REQ_RECOVER) {
            char ns[64];
            smki_hex_encode(r.new_ca_serial, SMKI_SERIAL_LEN, ns, 0);
            snprintf(msg, sizeof msg,
                     "Request %llu executed: the %s of %s is revoked (ARL published), its successor is serial %s, and "
                     "%u organisation certificate(s) are re-issued under it ('smki ca list --env %s').",
                     (unsigned long long)id, smki_ca_kind_name((smki_ca_kind)r.ca_kind), r.env, ns, r.done_count,
                     r.env);
        } else if (rc == 0 && r.type == SMKI_REQ_POLICY) {
            snprintf(msg, sizeof msg, "Request %llu executed: %s = %d, fixed in the store ('smki ra policy show').",
                     (unsigned long long)id, r.cn, r.reason);
        } else if (rc == 0 && r.type == SMKI_REQ_REVOKE)
            snprintf(msg, sizeof msg, "Request %llu executed: certificate %s revoked (%s); the list that carries it is "
                     "published: %s",
                     (unsigned long long)id, s, smki_revoke_reason_name(r.reason), crl_path[0] ? crl_path : "(store)");
        else if (rc == 0 && r.type != SMKI_REQ_DEVICE_BATCH)
            snprintf(msg, sizeof msg, "Request %llu executed: %s certificate %s issued ('smki ca show %s --out FILE').",
                     (unsigned long long)id, smki_req_type_name(r.type), s, s);
        else if (rc == 0)
            snprintf(msg, sizeof msg, "Request %llu executed: %u device certificate(s) issued.", (unsigned long long)id,
                     r.done_count);
    } else {
        rc = SMKI_FAIL(SMKI_E_USAGE, "unknown request command '%s' (see 'smki ra request --help')", verb);
    }
    return done_msg(c, rc, &x, msg);
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
    "arl_hours). --issuer (the issuer's SKI, 16 hex digits) when a serial is not unique.\n";

static int ra_revoke(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, REVOKE_HELP)) return EXIT_OK;
    static const char *const V[] = {"reason", "issuer", "env", NULL};
    args a;
    int u = parse_args(c, "smki ra revoke", argc, argv, V, NULL, &a);
    if (u) return u;
    if (a.npos != 1 || !arg(&a, "reason")) return cli_usage(c, "smki ra revoke", "give SERIAL and --reason REASON");
    uint8_t serial[SMKI_SERIAL_LEN], issuer[SMKI_KEYID_LEN];
    size_t got = 0;
    char digits[80];
    size_t n = 0;
    for (const char *p = a.pos[0]; *p && n + 1 < sizeof digits; p++)
        if (*p != ':') digits[n++] = *p;
    digits[n] = '\0';
    int rc = n == 2 * SMKI_SERIAL_LEN ? smki_hex_decode(digits, n, serial, sizeof serial, &got) : -1;
    if (rc < 0 || got != SMKI_SERIAL_LEN) {
        smki_error_clear();
        return cli_fail(c, SMKI_FAIL(SMKI_E_USAGE, "'%.64s' is not a serial: 32 hex digits", a.pos[0]));
    }
    const char *is = arg(&a, "issuer");
    if (is && (strlen(is) != 2 * SMKI_KEYID_LEN || smki_hex_decode(is, strlen(is), issuer, sizeof issuer, &got) < 0 ||
               got != SMKI_KEYID_LEN)) {
        smki_error_clear();
        return cli_fail(c, SMKI_FAIL(SMKI_E_USAGE, "--issuer is the issuer's SKI: 16 hex digits, not '%.32s'", is));
    }
    smki_revoke_reason reason;
    rc = smki_revoke_reason_parse(arg(&a, "reason"), &reason);
    if (rc < 0) return cli_fail(c, rc);
    smki_ra_submit s;
    memset(&s, 0, sizeof s);
    s.type = SMKI_REQ_REVOKE;
    s.serial = serial;
    s.issuer_ski = is ? issuer : NULL;
    s.reason = reason;
    s.env = arg(&a, "env");
    smki_ra_request r;
    rc = submit(c, &s, &r);
    if (rc < 0) return cli_fail(c, rc);
    if (submitted_json(c, &r)) return EXIT_OK;
    printf("Request %llu submitted: revoke %s (%s), party %s, env %s.\n", (unsigned long long)r.id, a.pos[0],
           smki_revoke_reason_name(reason), r.party, r.env);
    printf("Next: %u approval(s) by operators other than %s ('smki ra request approve %llu --operator NAME'), then "
           "'smki ra request execute %llu'.\n",
           r.approvals_required, r.requester, (unsigned long long)r.id, (unsigned long long)r.id);
    return EXIT_OK;
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
    "docs/ra.md has the whole procedure.\n";

static int ra_recover(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, RECOVER_HELP)) return EXIT_OK;
    static const char *const V[] = {"env", "ca", NULL};
    args a;
    int u = parse_args(c, "smki ra recover", argc, argv, V, NULL, &a);
    if (u) return u;
    if (a.npos || !arg(&a, "env")) return cli_usage(c, "smki ra recover", "give --env ENV");
    const char *ca = arg(&a, "ca") ? arg(&a, "ca") : "oca";
    smki_ra_submit s;
    memset(&s, 0, sizeof s);
    s.type = SMKI_REQ_RECOVER;
    s.env = arg(&a, "env");
    if (strcmp(ca, "oca") == 0 || strcmp(ca, "smki-oca") == 0) s.ca_kind = SMKI_CA_OCA;
    else if (strcmp(ca, "dca") == 0 || strcmp(ca, "smki-dca") == 0) s.ca_kind = SMKI_CA_DCA;
    else return cli_usage(c, "smki ra recover", "--ca is oca or dca, not '%.16s'", ca);
    smki_ra_request r;
    int rc = submit(c, &s, &r);
    if (rc < 0) return cli_fail(c, rc);
    if (submitted_json(c, &r)) return EXIT_OK;
    printf("Request %llu submitted: CA compromise recovery of %s in %s.\n", (unsigned long long)r.id,
           smki_ca_kind_name((smki_ca_kind)s.ca_kind), s.env);
    printf("Next: %u approval(s) by operators other than %s, then 'smki ra request execute %llu'.\n",
           r.approvals_required, r.requester, (unsigned long long)r.id);
    return EXIT_OK;
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
    "  smki ra request execute ID --operator alice\n";

static int ra_policy(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, POLICY_HELP)) return EXIT_OK;
    args a;
    int u = parse_args(c, "smki ra policy", argc, argv, NULL, NULL, &a);
    if (u) return u;
    const char *verb = a.npos ? a.pos[0] : "";
    if (strcmp(verb, "show") == 0 && a.npos == 1) {
        ra_ctx x;
        int rc = ra_begin(c, 0, 0, &x);
        smki_ra_policy p;
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
    if (strcmp(verb, "set") != 0 || a.npos != 3)
        return cli_usage(c, "smki ra policy", "give show, or set approvals_organisation|approvals_sensitive N");
    char *end = NULL;
    long v = strtol(a.pos[2], &end, 10);
    if (!end || *end || end == a.pos[2] || v < 0 || v > 99)
        return cli_usage(c, "smki ra policy", "'%.16s' is not a count (1 to 8)", a.pos[2]);
    smki_ra_submit s;
    memset(&s, 0, sizeof s);
    s.type = SMKI_REQ_POLICY;
    s.cn = a.pos[1];
    s.reason = (int)v;
    smki_ra_request r;
    int rc = submit(c, &s, &r);
    if (rc < 0) return cli_fail(c, rc);
    if (submitted_json(c, &r)) return EXIT_OK;
    printf("Request %llu submitted: %s = %ld.\n", (unsigned long long)r.id, s.cn, v);
    printf("Next: %u approval(s) by operators other than %s, then 'smki ra request execute %llu'.\n",
           r.approvals_required, r.requester, (unsigned long long)r.id);
    return EXIT_OK;
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
    char s[64], t[32], u[SMKI_EUI64_TEXT_MAX] = "-", role[SMKI_ROLE_TEXT_MAX] = "-";
    smki_hex_encode(e->cert.serial, SMKI_SERIAL_LEN, s, 0);
    when(e->cert.not_after, t);
    if (e->cert.has_eui) smki_eui64_format(&e->cert.eui, SMKI_EUI64_HYPHEN, u);
    if (e->cert.role >= 0) smki_role_format((uint8_t)e->cert.role, role);
    if (l->w) {
        json_arr_obj(l->w);
        json_str(l->w, "party", e->party);
        json_str(l->w, "serial", s);
        json_str(l->w, "eui64", u);
        json_str(l->w, "role", role);
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
    if (cli_wants_help(argc, argv, EXPIRING_HELP)) return EXIT_OK;
    static const char *const V[] = {"days", "env", NULL};
    args a;
    int u = parse_args(c, "smki ra expiring", argc, argv, V, NULL, &a);
    if (u) return u;
    exp_arg e = {90, arg(&a, "env")};
    if (arg(&a, "days")) {
        char *end = NULL;
        unsigned long d = strtoul(arg(&a, "days"), &end, 10);
        if (!end || *end || d > 36500 || arg(&a, "days")[0] == '-')
            return cli_usage(c, "smki ra expiring", "--days is a number of days up to 36500");
        e.days = (unsigned)d;
    }
    return run_list(c, "expiring", list_exp, &e, "certificate(s) expiring");
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
    "Example:\n"
    "  smki ra adopt-ca --operator alice\n"
    "  smki audit list --last 5\n";

static int ra_adopt(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, ADOPT_HELP)) return EXIT_OK;
    args a;
    int u = parse_args(c, "smki ra adopt-ca", argc, argv, NULL, NULL, &a);
    if (u) return u;
    if (a.npos) return cli_usage(c, "smki ra adopt-ca", "unexpected argument '%s'", a.pos[0]);
    ra_ctx x;
    size_t adopted = 0;
    int rc = ra_begin(c, 1, 1, &x);
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
    argc = take_operator(argc, argv);
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
    "(audit.checkpoint_key, no PIN needed) or --checkpoint-pub FILE.\n"
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

static int audit_verify(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, VERIFY_HELP)) return EXIT_OK;
    static const char *const V[] = {"checkpoint-pub", NULL};
    args a;
    int u = parse_args(c, "smki audit verify", argc, argv, V, NULL, &a);
    if (u) return u;
    if (a.npos) return cli_usage(c, "smki audit verify", "unexpected argument '%s'", a.pos[0]);
    ra_ctx x;
    int rc = ra_begin(c, 0, 0, &x);
    EVP_PKEY *pub = NULL;
    if (rc == 0 && arg(&a, "checkpoint-pub")) {
        rc = smki_pub_load_file(arg(&a, "checkpoint-pub"), &pub);
    } else if (rc == 0) {
        char ref[SMKI_KEY_URI_MAX];
        rc = cli_key_ref(c, smki_conf_get(c->conf, "audit.checkpoint_key", "smki-audit"), ref, sizeof ref);
        if (rc == 0) rc = smki_key_public_load(ref, &c->hsm, &pub);
        if (rc < 0)
            smki_error_wrap("the checkpoint key's public half (audit.checkpoint_key, or give --checkpoint-pub FILE)");
    }
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
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", vrc == 0);
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
    } else if (vrc == 0) {
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
    } else {
        fprintf(stderr, "smki: refused: the audit trail does not verify: %zu finding(s)\n", rep->total_findings);
        for (size_t i = 0; i < rep->n_findings; i++)
            fprintf(stderr, "  entry %-6llu %-18s %s\n", (unsigned long long)rep->findings[i].seq,
                    smki_audit_finding_name(rep->findings[i].kind), rep->findings[i].message);
        fprintf(stderr, "Keep the store as it is for investigation; restore from a verified backup (docs/ra.md).\n");
    }
    free(rep);
    return vrc == 0 ? EXIT_OK : EXIT_REFUSED;
}

typedef struct {
    json_w *w;
    size_t n;
    uint64_t skip_below;
} log_run;

static int log_row(const smki_audit_entry *e, void *arg)
{
    log_run *l = arg;
    if (e->seq < l->skip_below) return 0;
    char t[32];
    when(e->time, t);
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

static int audit_list(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, LOG_HELP)) return EXIT_OK;
    static const char *const V[] = {"from", "last", NULL};
    args a;
    int u = parse_args(c, "smki audit list", argc, argv, V, NULL, &a);
    if (u) return u;
    uint64_t from = 1, last = 0;
    int rc = 0;
    if (arg(&a, "from")) rc = parse_id(arg(&a, "from"), &from);
    if (rc == 0 && arg(&a, "last")) rc = parse_id(arg(&a, "last"), &last);
    if (rc < 0) return cli_fail(c, rc);
    ra_ctx x;
    rc = ra_begin(c, 0, 0, &x);
    if (rc < 0) return done_msg(c, rc, &x, "");
    json_w w;
    log_run l = {c->json ? &w : NULL, 0, from};
    if (!x.empty && last) {
        uint64_t head;
        rc = smki_audit_head(x.ra, &head, NULL);
        if (rc == 0 && head > last && head - last + 1 > from) l.skip_below = head - last + 1;
    }
    if (c->json) {
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_key_arr(&w, "entries");
    }
    if (rc == 0 && !x.empty) rc = smki_audit_each(x.ra, from, log_row, &l);
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
