/* The smki command's plumbing: the home (config, token folder, store), PINs from the
 * environment or files, human and --json output, errors and exit codes, and the
 * git-style command tables. Commands only parse arguments and call the libraries. */
#ifndef SMKI_CLI_H
#define SMKI_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/base.h"
#include "hsm/hsm.h"

enum { EXIT_OK = 0, EXIT_USAGE = 1, EXIT_REFUSED = 2, EXIT_INTERNAL = 3 };

typedef struct {
    char home[4096];
    char conf_path[4200];
    char hsm_dir[4200];
    char store_dir[4200];
    int json;
    const char *pin_file;
    const char *so_pin_file;
    smki_conf *conf;
    char pin[256];
    int has_pin;
    char so_pin[256];
    int has_so_pin;
    smki_hsm_opts hsm;
    const char *token; /* the home's token label */
    int may_create_home; /* set by the commands that initialise a home (hsm init, ca init) */
    int no_token;        /* set by commands that use no token (the repository): no hsm/ made */
} smki_cli;

typedef struct cli_cmd {
    const char *name;
    int (*run)(smki_cli *c, int argc, char **argv);
    const char *summary;
} cli_cmd;

/* Run the subcommand named by argv[0] from table; prints the table on --help or no
 * argument. prog is e.g. "smki key". */
int cli_dispatch(smki_cli *c, const cli_cmd *table, int argc, char **argv, const char *prog, const char *about);

/* The home: config loaded, the SoftHSM folder prepared. Safe to call more than once.
 * A home that does not exist is refused unless may_create_home is set. */
int cli_home(smki_cli *c);
/* The home's smki.conf read (again) and checked as cli_home does (a service's SIGHUP). */
int cli_conf_load(const smki_cli *c, smki_conf **out);
/* The user PIN (SMKI_PIN, else --pin-file, else the home's pin-file setting); with
 * required, its absence is a usage error. Returns 1 if a PIN is there, 0 if not. */
int cli_pin(smki_cli *c, int required);
int cli_so_pin(smki_cli *c, int required);
void cli_cleanup(smki_cli *c);

/* Errors: print smki's error (human on stderr, JSON on stdout) and give the exit code. */
int cli_fail(smki_cli *c, int rc);
/* A usage error with a message and a pointer to --help. */
int cli_usage(smki_cli *c, const char *prog, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Turn a status into an exit code, printing the error if it failed. */
int cli_finish(smki_cli *c, int rc);

/* ---- Options: the one declarative parser every command uses ---------------------------
 *
 * A command declares its options as a table and its positional arguments as a count:
 *
 *     const char *out = NULL; int force = 0; cli_list keys = {0};
 *     const cli_opt opts[] = {CLI_VALUE("out", &out), CLI_FLAG("force", &force),
 *                             CLI_LIST("recipient-key", &keys), CLI_END};
 *     const cli_spec spec = {"smki ca show", HELP, opts, "SERIAL", 1, 1};
 *     const char *pos[1];
 *     int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
 *     if (stop != CLI_GO) return stop;
 *
 * Options stand anywhere (--name VALUE or --name=VALUE); "--" ends them; --help and -h
 * print the help and stop with EXIT_OK; anything unknown, a missing value, a value
 * option given twice, or a wrong number of positionals is a usage error that names it. */
enum { CLI_GO = -1 };
#define CLI_LIST_MAX 64
typedef struct {
    const char *v[CLI_LIST_MAX];
    size_t n;
} cli_list;
typedef enum { CLI_OPT_VALUE = 1, CLI_OPT_FLAG, CLI_OPT_LIST } cli_opt_kind;
typedef struct {
    const char *name; /* without the leading "--" */
    cli_opt_kind kind;
    void *dest;       /* const char ** (VALUE), int * (FLAG: set to 1), cli_list * (LIST) */
} cli_opt;
#define CLI_VALUE(name, dest) {(name), CLI_OPT_VALUE, (void *)(dest)}
#define CLI_FLAG(name, dest) {(name), CLI_OPT_FLAG, (void *)(dest)}
#define CLI_LIST(name, dest) {(name), CLI_OPT_LIST, (void *)(dest)}
#define CLI_END {NULL, 0, NULL}
typedef struct {
    const char *prog;     /* "smki ca show": named in messages */
    const char *help;     /* printed by --help */
    const cli_opt *opts;  /* ends with CLI_END; NULL for none */
    const char *args;     /* the positionals as the help names them ("SERIAL", "FILE..."), for messages */
    size_t min_pos, max_pos;
} cli_spec;
/* Parse argv[1..argc) by spec into the options' destinations and pos[0..max_pos) (unused
 * ones NULL); *npos (if given) is the count. Returns CLI_GO, or the exit code to stop with. */
int cli_parse(smki_cli *c, const cli_spec *spec, int argc, char **argv, const char **pos, size_t *npos);
/* A whole number option: text must be decimal digits within [min, max]; names opt. */
SMKI_MUST_CHECK int cli_number(const char *opt, const char *text, uint64_t min, uint64_t max, uint64_t *out);

/* ---- Files: "-" is standard input/output, the same overwrite rule everywhere ------------ */
/* Read path ("-": standard input), at most max bytes; *out is malloc'd. */
SMKI_MUST_CHECK int cli_read(const char *path, size_t max, uint8_t **out, size_t *out_len);
/* Write path ("-": standard output) whole or not at all; an existing file is refused
 * unless force (then replaced atomically). */
SMKI_MUST_CHECK int cli_write(const char *path, const void *data, size_t len, int mode, int force);
/* Before work that cannot be taken back (issuing): cli_write(path, ..., force) will not
 * be refused for an existing file, and a file can be made beside it. "-" passes. */
SMKI_MUST_CHECK int cli_write_check(const char *path, int force);

/* --help or -h before any "--": print help and return 1 (cli_parse and the command tables). */
int cli_wants_help(int argc, char **argv, const char *help);

/* The reference of a key argument: a pkcs11: URI, file:PATH, or a bare label on the
 * home's token (made into a URI). */
int cli_key_ref(smki_cli *c, const char *arg, char *ref, size_t cap);
/* Open a key: a pkcs11: URI, file:PATH, or a bare label on the home's token. */
int cli_open_key(smki_cli *c, const char *arg, smki_key **out);

/* A time for output: RFC 3339 UTC ("2026-12-07T14:00:00Z"). A time that never comes
 * (a device certificate's not_after, stored as a negative number) is RFC 5280's
 * 99991231235959Z: "9999-12-31T23:59:59Z" in JSON, "never" for humans. */
#define CLI_TIME_MAX 32
void cli_when(const smki_cli *c, int64_t t, char out[CLI_TIME_MAX]);

/* ---- JSON output ----------------------------------------------------------------- */
typedef struct {
    FILE *out;
    int depth;
    int first[16];
} json_w;
void json_begin(json_w *w, FILE *out);          /* { */
void json_end(json_w *w);                       /* } and newline */
void json_key_obj(json_w *w, const char *key);  /* "key": { */
void json_key_arr(json_w *w, const char *key);  /* "key": [ */
/* A listing's JSON under --json (nothing otherwise): {"ok":true,"key":[ ... ]} */
void json_list_open(const smki_cli *c, json_w *w, const char *key);
void json_list_close(const smki_cli *c, json_w *w);
void json_arr_obj(json_w *w);                   /* { inside an array */
void json_close_obj(json_w *w);
void json_close_arr(json_w *w);
void json_str(json_w *w, const char *key, const char *val);
void json_int(json_w *w, const char *key, long long val);
void json_bool(json_w *w, const char *key, int val);
void json_arr_str(json_w *w, const char *val);
/* "error": {"code", "message"} of the failure rc (smki's message), inside the object being
 * written: one file's result in a list that goes on after a failure. */
void json_error(json_w *w, int rc);

#endif
