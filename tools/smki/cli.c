/* The smki command's plumbing: home, PINs, output, errors, dispatch. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

/* ---- Dispatch ----------------------------------------------------------------- */

static void print_table(const cli_cmd *table, const char *prog, const char *about)
{
    printf("%s\n\nUsage: %s <command> [options]   (each command takes --help)\n\nCommands:\n", about, prog);
    for (const cli_cmd *t = table; t->name; t++) printf("  %-12s %s\n", t->name, t->summary);
}

int cli_dispatch(smki_cli *c, const cli_cmd *table, int argc, char **argv, const char *prog, const char *about)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "help") == 0) {
        print_table(table, prog, about);
        return argc < 1 ? EXIT_USAGE : EXIT_OK;
    }
    for (const cli_cmd *t = table; t->name; t++)
        if (strcmp(t->name, argv[0]) == 0) return t->run(c, argc, argv);
    return cli_usage(c, prog, "unknown command '%s'", argv[0]);
}

int cli_wants_help(int argc, char **argv, const char *help)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(help, stdout);
            return 1;
        }
    }
    return 0;
}

/* ---- Options ------------------------------------------------------------------- */

static const cli_opt *opt_find(const cli_opt *opts, const char *name, size_t name_len)
{
    for (size_t i = 0; opts && opts[i].name; i++)
        if (strlen(opts[i].name) == name_len && strncmp(opts[i].name, name, name_len) == 0) return &opts[i];
    return NULL;
}

/* One option's value stored; a value option given twice, or a list grown past its
 * bound, is a usage error. */
static int opt_store(smki_cli *c, const cli_spec *spec, const cli_opt *o, const char *value)
{
    if (o->kind == CLI_OPT_FLAG) {
        *(int *)o->dest = 1;
        return CLI_GO;
    }
    if (o->kind == CLI_OPT_LIST) {
        cli_list *l = o->dest;
        if (l->n == CLI_LIST_MAX)
            return cli_usage(c, spec->prog, "--%s is given more than %d times", o->name, CLI_LIST_MAX);
        l->v[l->n++] = value;
        return CLI_GO;
    }
    const char **v = o->dest;
    if (*v) return cli_usage(c, spec->prog, "--%s is given twice ('%s', then '%s')", o->name, *v, value);
    *v = value;
    return CLI_GO;
}

/* argv[*i] is "--name" or "--name=value": store it, taking the value from the next
 * argument where it has none. */
static int opt_take(smki_cli *c, const cli_spec *spec, int argc, char **argv, int *i)
{
    const char *s = argv[*i] + 2;
    const char *eq = strchr(s, '=');
    size_t len = eq ? (size_t)(eq - s) : strlen(s);
    const cli_opt *o = opt_find(spec->opts, s, len);
    if (!o) return cli_usage(c, spec->prog, "unknown option --%.*s", (int)len, s);
    if (o->kind == CLI_OPT_FLAG) {
        if (eq) return cli_usage(c, spec->prog, "--%s takes no value", o->name);
        return opt_store(c, spec, o, NULL);
    }
    if (eq) return opt_store(c, spec, o, eq + 1);
    if (*i + 1 >= argc) return cli_usage(c, spec->prog, "--%s needs a value", o->name);
    return opt_store(c, spec, o, argv[++*i]);
}

static int is_option(const char *s)
{
    return strncmp(s, "--", 2) == 0 && s[2] != '\0';
}

static int pos_take(smki_cli *c, const cli_spec *spec, const char *s, const char **pos, size_t *n)
{
    if (*n == spec->max_pos) {
        if (spec->max_pos == 0) return cli_usage(c, spec->prog, "unexpected argument '%s' (it takes none)", s);
        return cli_usage(c, spec->prog, "unexpected argument '%s' (it takes %s)", s, spec->args ? spec->args : "");
    }
    pos[(*n)++] = s;
    return CLI_GO;
}

int cli_parse(smki_cli *c, const cli_spec *spec, int argc, char **argv, const char **pos, size_t *npos)
{
    if (cli_wants_help(argc, argv, spec->help)) return EXIT_OK;
    size_t n = 0;
    for (size_t i = 0; i < spec->max_pos; i++) pos[i] = NULL;
    int stop = CLI_GO, options_end = 0;
    for (int i = 1; i < argc && stop == CLI_GO; i++) {
        if (!options_end && strcmp(argv[i], "--") == 0) options_end = 1;
        else if (!options_end && is_option(argv[i])) stop = opt_take(c, spec, argc, argv, &i);
        else stop = pos_take(c, spec, argv[i], pos, &n);
    }
    if (stop != CLI_GO) return stop;
    if (n < spec->min_pos)
        return cli_usage(c, spec->prog, "missing argument: it takes %s", spec->args ? spec->args : "more arguments");
    if (npos) *npos = n;
    return CLI_GO;
}

int cli_number(const char *opt, const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    *out = 0;
    ENSURE(text && *text && strspn(text, "0123456789") == strlen(text) && strlen(text) <= 19, SMKI_E_USAGE,
           "%s is a whole number from %llu to %llu, not '%.32s'", opt, (unsigned long long)min,
           (unsigned long long)max, text ? text : "");
    uint64_t v = strtoull(text, NULL, 10);
    ENSURE(v >= min && v <= max, SMKI_E_USAGE, "%s is a whole number from %llu to %llu, not %llu", opt,
           (unsigned long long)min, (unsigned long long)max, (unsigned long long)v);
    *out = v;
    return 0;
}

void cli_when(const smki_cli *c, int64_t t, char out[CLI_TIME_MAX])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t < 0) snprintf(out, CLI_TIME_MAX, "%s", c->json ? "9999-12-31T23:59:59Z" : "never");
    else if (!gmtime_r(&tt, &tm)) snprintf(out, CLI_TIME_MAX, "?");
    else strftime(out, CLI_TIME_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- Files ----------------------------------------------------------------------- */

static int read_stdin(size_t max, uint8_t **out, size_t *out_len)
{
    size_t cap = 65536, len = 0;
    uint8_t *buf = malloc(cap);
    ENSURE(buf, SMKI_E_NOMEM, "out of memory reading standard input");
    for (;;) {
        if (len == cap) {
            uint8_t *bigger = cap <= max ? realloc(buf, cap * 2) : NULL;
            if (!bigger) free(buf);
            ENSURE(bigger, cap > max ? SMKI_E_INPUT : SMKI_E_NOMEM,
                   "standard input is longer than %zu bytes", max);
            buf = bigger, cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, stdin);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(stdin) ? 1 : len > max ? 2 : 0;
    if (bad) free(buf);
    ENSURE(bad != 1, SMKI_E_IO, "reading standard input failed");
    ENSURE(bad != 2, SMKI_E_INPUT, "standard input is longer than %zu bytes", max);
    *out = buf, *out_len = len;
    return 0;
}

int cli_read(const char *path, size_t max, uint8_t **out, size_t *out_len)
{
    *out = NULL, *out_len = 0;
    if (strcmp(path, "-") == 0) return read_stdin(max, out, out_len);
    return smki_file_read(path, max, out, out_len);
}

int cli_write(const char *path, const void *data, size_t len, int mode, int force)
{
    if (strcmp(path, "-") != 0) {
        if (!force && access(path, F_OK) == 0)
            return SMKI_FAIL(SMKI_E_EXISTS, "%s exists; --force replaces it", path);
        return smki_file_write_atomic(path, data, len, mode, 0);
    }
    ENSURE(fwrite(data, 1, len, stdout) == len && fflush(stdout) == 0, SMKI_E_IO,
           "writing %zu bytes to standard output failed", len);
    return 0;
}

int cli_write_check(const char *path, int force)
{
    if (strcmp(path, "-") == 0) return 0;
    struct stat st;
    if (stat(path, &st) != 0) return smki_file_check_new(path);
    ENSURE(!S_ISDIR(st.st_mode), SMKI_E_USAGE, "%s is a folder: name a file to write", path);
    ENSURE(force, SMKI_E_EXISTS, "%s exists; --force replaces it", path);
    /* Replaced by a rename: the folder must take a new file. */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int n = slash ? snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path) : snprintf(dir, sizeof dir, ".");
    if (n == 0) snprintf(dir, sizeof dir, "/");
    ENSURE(n >= 0 && (size_t)n < sizeof dir, SMKI_E_USAGE, "path too long: %.64s...", path);
    ENSURE(access(dir, W_OK) == 0, SMKI_E_IO, "cannot replace %s (its folder %s is not writable): nothing was done",
           path, dir);
    return 0;
}

/* ---- Home and PINs -------------------------------------------------------------- */

/* Every section smki reads from smki.conf; a module that adds one adds it here. */
static const char *const CONF_SECTIONS[] = {
    "hsm", "store", "lint", "ra", "audit", "operators", "gateway", "device", "repo", "enrol", "env.*", "ca.*", NULL,
};

int cli_conf_load(const smki_cli *c, smki_conf **out)
{
    static const char *const HSM_KEYS[] = {"softhsm_dir", "token",    "module",    "pin_file",
                                           "so_pin_file", "key_copy", "init_args", NULL};
    static const char *const STORE_KEYS[] = {"path", "engine", "conninfo", NULL};
    static const char *const LINT_KEYS[] = {"env", NULL};
    smki_conf *conf = NULL;
    GUARD(smki_conf_load(c->conf_path, &conf));
    int rc = smki_conf_check_sections(conf, CONF_SECTIONS);
    if (rc == 0) rc = smki_conf_check_section(conf, "hsm", HSM_KEYS);
    if (rc == 0) rc = smki_conf_check_section(conf, "store", STORE_KEYS);
    if (rc == 0) rc = smki_conf_check_section(conf, "lint", LINT_KEYS);
    if (rc < 0) {
        smki_conf_free(conf);
        return rc;
    }
    *out = conf;
    return 0;
}

int cli_home(smki_cli *c)
{
    if (c->conf) return 0;
    GUARD(smki_home_require(c->home, c->may_create_home));
    snprintf(c->conf_path, sizeof c->conf_path, "%s/smki.conf", c->home);
    GUARD(cli_conf_load(c, &c->conf));
    const char *hsm_dir = smki_conf_get(c->conf, "hsm.softhsm_dir", "hsm");
    snprintf(c->hsm_dir, sizeof c->hsm_dir, "%s%s%s", hsm_dir[0] == '/' ? "" : c->home, hsm_dir[0] == '/' ? "" : "/",
             hsm_dir);
    GUARD(smki_store_location(c->conf, c->conf_path, c->home, c->store_dir, sizeof c->store_dir));
    c->token = smki_conf_get(c->conf, "hsm.token", "smki");
    c->hsm.module = smki_conf_get(c->conf, "hsm.module", NULL);
    c->hsm.init_args = smki_conf_get(c->conf, "hsm.init_args", NULL);
    /* Unset: $SMKI_HSM_KEY_COPY, else auto (hsm.h). */
    const char *key_copy = smki_conf_get(c->conf, "hsm.key_copy", NULL);
    if (key_copy) {
        char what[sizeof c->conf_path + 32];
        snprintf(what, sizeof what, "%s: [hsm] key_copy", c->conf_path);
        GUARD(smki_key_copy_parse(key_copy, what, &c->hsm.key_copy));
    }
    /* The embedded default: SoftHSM with its tokens inside the home. A configured
     * module (a real HSM) brings its own configuration. */
    if (!c->hsm.module && !c->no_token) GUARD(smki_softhsm_prepare(c->hsm_dir));
    return 0;
}

/* A path from the configuration is relative to the home. */
static const char *home_path(const smki_cli *c, const char *p, char *buf, size_t cap)
{
    if (!p || p[0] == '/') return p;
    snprintf(buf, cap, "%s/%s", c->home, p);
    return buf;
}

static int read_secret(const char *env, const char *file, const char *conf_file, char *out, size_t cap, int *has)
{
    const char *v = getenv(env);
    if (v && *v) {
        ENSURE(strlen(v) < cap, SMKI_E_USAGE, "%s is longer than %zu characters", env, cap - 1);
        strcpy(out, v);
        *has = 1;
        return 0;
    }
    const char *path = file ? file : conf_file;
    if (!path) return 0;
    GUARD(smki_secret_read_file(path, out, cap));
    *has = 1;
    return 0;
}

/* One secret of the home: from env, else the --*-file option, else the file named in
 * smki.conf under conf_key. */
static int home_secret(smki_cli *c, const char *env, const char *option_file, const char *conf_key, char *out,
                       size_t cap, int *has)
{
    if (*has) return 0;
    GUARD(cli_home(c));
    char buf[4200];
    const char *conf_file = home_path(c, smki_conf_get(c->conf, conf_key, NULL), buf, sizeof buf);
    return read_secret(env, option_file, conf_file, out, cap, has);
}

int cli_pin(smki_cli *c, int required)
{
    GUARD(home_secret(c, "SMKI_PIN", c->pin_file, "hsm.pin_file", c->pin, sizeof c->pin, &c->has_pin));
    ENSURE(c->has_pin || !required, SMKI_E_USAGE,
           "this needs the token's user PIN: set SMKI_PIN or give --pin-file FILE (never on the command line)");
    c->hsm.pin = c->has_pin ? c->pin : NULL;
    return c->has_pin;
}

int cli_so_pin(smki_cli *c, int required)
{
    GUARD(home_secret(c, "SMKI_SO_PIN", c->so_pin_file, "hsm.so_pin_file", c->so_pin, sizeof c->so_pin,
                      &c->has_so_pin));
    ENSURE(c->has_so_pin || !required, SMKI_E_USAGE,
           "this needs the token's SO PIN: set SMKI_SO_PIN or give --so-pin-file FILE");
    return c->has_so_pin;
}

void cli_cleanup(smki_cli *c)
{
    smki_wipe(c->pin, sizeof c->pin);
    smki_wipe(c->so_pin, sizeof c->so_pin);
    smki_conf_free(c->conf);
    c->conf = NULL;
}

/* ---- Errors ----------------------------------------------------------------------- */

int cli_fail(smki_cli *c, int rc)
{
    int exit_code = smki_error_exit_code(rc);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 0);
        json_key_obj(&w, "error");
        json_str(&w, "code", smki_error_name(rc));
        json_str(&w, "message", smki_error_msg());
        json_int(&w, "exit", exit_code);
        json_close_obj(&w);
        json_end(&w);
    } else {
        const char *kind = exit_code == EXIT_USAGE ? "usage" : exit_code == EXIT_REFUSED ? "refused" : "error";
        fprintf(stderr, "smki: %s: %s\n", kind, smki_error_msg());
        if (getenv("SMKI_DEBUG")) fprintf(stderr, "smki: (raised at %s)\n", smki_error_origin());
    }
    return exit_code;
}

int cli_usage(smki_cli *c, const char *prog, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    (void)SMKI_FAIL(SMKI_E_USAGE, "%s (see '%s --help')", msg, prog);
    return cli_fail(c, SMKI_E_USAGE);
}

int cli_finish(smki_cli *c, int rc)
{
    return rc < 0 ? cli_fail(c, rc) : EXIT_OK;
}

/* ---- JSON -------------------------------------------------------------------------- */

static void json_escape(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void sep(json_w *w)
{
    if (!w->first[w->depth]) fputc(',', w->out);
    w->first[w->depth] = 0;
}

static void push(json_w *w, char ch)
{
    fputc(ch, w->out);
    if (w->depth < 15) w->depth++;
    w->first[w->depth] = 1;
}

static void key(json_w *w, const char *k)
{
    sep(w);
    json_escape(w->out, k);
    fputc(':', w->out);
}

void json_begin(json_w *w, FILE *out)
{
    memset(w, 0, sizeof *w);
    w->out = out;
    w->first[0] = 1;
    sep(w);
    push(w, '{');
}
void json_end(json_w *w)
{
    json_close_obj(w);
    fputc('\n', w->out);
}
void json_key_obj(json_w *w, const char *k)
{
    key(w, k);
    push(w, '{');
}
void json_list_open(const smki_cli *c, json_w *w, const char *k)
{
    if (!c->json) return;
    json_begin(w, stdout);
    json_bool(w, "ok", 1);
    json_key_arr(w, k);
}
void json_list_close(const smki_cli *c, json_w *w)
{
    if (!c->json) return;
    json_close_arr(w);
    json_end(w);
}
void json_key_arr(json_w *w, const char *k)
{
    key(w, k);
    push(w, '[');
}
void json_arr_obj(json_w *w)
{
    sep(w);
    push(w, '{');
}
void json_close_obj(json_w *w)
{
    fputc('}', w->out);
    if (w->depth > 0) w->depth--;
}
void json_close_arr(json_w *w)
{
    fputc(']', w->out);
    if (w->depth > 0) w->depth--;
}
void json_str(json_w *w, const char *k, const char *val)
{
    key(w, k);
    if (val)
        json_escape(w->out, val);
    else
        fputs("null", w->out);
}
void json_int(json_w *w, const char *k, long long val)
{
    key(w, k);
    fprintf(w->out, "%lld", val);
}
void json_bool(json_w *w, const char *k, int val)
{
    key(w, k);
    fputs(val ? "true" : "false", w->out);
}
void json_arr_str(json_w *w, const char *val)
{
    sep(w);
    json_escape(w->out, val);
}
void json_error(json_w *w, int rc)
{
    json_key_obj(w, "error");
    json_str(w, "code", smki_error_name(rc));
    json_str(w, "message", smki_error_msg());
    json_close_obj(w);
}

/* ---- Keys -------------------------------------------------------------------------- */

int cli_key_ref(smki_cli *c, const char *arg, char *ref, size_t cap)
{
    /* A file: key needs no home (nor a token, nor a PIN): it works where no home exists. */
    if (strncmp(arg, "file:", 5) != 0) GUARD(cli_home(c));
    return smki_key_ref_resolve(arg, c->token, ref, cap);
}

int cli_open_key(smki_cli *c, const char *arg, smki_key **out)
{
    char ref[SMKI_KEY_URI_MAX];
    GUARD(cli_key_ref(c, arg, ref, sizeof ref));
    if (strncmp(ref, "file:", 5) != 0) GUARD(cli_pin(c, 0));
    return smki_key_open(ref, &c->hsm, out);
}

