/* The smki command's plumbing (tools/smki/cli.c, compiled into this test): the one
 * declarative option parser every command uses, whole numbers, and files read and
 * written with "-" for standard input/output and one overwrite rule. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "tools/smki/cli.h"

/* ---- cli_parse ------------------------------------------------------------------------ */

/* The options of a command like 'smki ca issue': values, a flag and a list. */
typedef struct {
    const char *out, *env;
    int force;
    cli_list dns;
    const char *pos[2];
    size_t npos;
} parsed;

static const char HELP[] = "Usage: smki test [--out FILE] [--env ENV] [--force] [--dns NAME ...] A [B]\n";

/* argv (NULL-terminated, without the command's name) parsed with one or two positionals. */
static int parse(parsed *p, const char *const *args)
{
    char *argv[CLI_LIST_MAX + 16] = {"test"};
    int argc = 1;
    for (; args[argc - 1]; argc++) argv[argc] = (char *)args[argc - 1];
    memset(p, 0, sizeof *p);
    const cli_opt opts[] = {CLI_VALUE("out", &p->out), CLI_VALUE("env", &p->env), CLI_FLAG("force", &p->force),
                            CLI_LIST("dns", &p->dns), CLI_END};
    const cli_spec spec = {"smki test", HELP, opts, "A [B]", 1, 2};
    smki_cli c = {0};
    smki_error_clear();
    return cli_parse(&c, &spec, argc, argv, p->pos, &p->npos);
}

/* The parse stops with a usage error whose message says needle. */
static void refused(const char *const *args, const char *needle)
{
    parsed p;
    assert_int_equal(parse(&p, args), EXIT_USAGE);
    assert_int_equal(smki_error_code(), SMKI_E_USAGE);
    if (!strstr(smki_error_msg(), needle)) fail_msg("message '%s' does not say '%s'", smki_error_msg(), needle);
    assert_non_null(strstr(smki_error_msg(), "see 'smki test --help'"));
}

static void test_parse_takes_options_anywhere_in_both_forms(void **state)
{
    (void)state;
    parsed p;
    const char *args[] = {"a", "--out", "x.pem", "--env=test", "--force", "--dns", "h1", "b", "--dns=h2", NULL};
    assert_int_equal(parse(&p, args), CLI_GO);
    assert_string_equal(p.out, "x.pem");
    assert_string_equal(p.env, "test");
    assert_int_equal(p.force, 1);
    assert_int_equal(p.dns.n, 2);
    assert_string_equal(p.dns.v[0], "h1");
    assert_string_equal(p.dns.v[1], "h2");
    assert_int_equal(p.npos, 2);
    assert_string_equal(p.pos[0], "a");
    assert_string_equal(p.pos[1], "b");
}

static void test_parse_leaves_what_is_not_given(void **state)
{
    (void)state;
    parsed p;
    const char *args[] = {"a", NULL};
    assert_int_equal(parse(&p, args), CLI_GO);
    assert_null(p.out);
    assert_int_equal(p.force, 0);
    assert_int_equal(p.dns.n, 0);
    assert_int_equal(p.npos, 1);
    assert_null(p.pos[1]);
}

static void test_parse_dash_is_a_value_and_a_positional(void **state)
{
    (void)state;
    parsed p;
    const char *args[] = {"--out", "-", "-", NULL};
    assert_int_equal(parse(&p, args), CLI_GO);
    assert_string_equal(p.out, "-");
    assert_string_equal(p.pos[0], "-");
    const char *eq[] = {"--out=-", "a", NULL};
    assert_int_equal(parse(&p, eq), CLI_GO);
    assert_string_equal(p.out, "-");
    const char *empty[] = {"--out=", "a", NULL};
    assert_int_equal(parse(&p, empty), CLI_GO);
    assert_string_equal(p.out, "");
}

static void test_parse_double_dash_ends_options(void **state)
{
    (void)state;
    parsed p;
    const char *args[] = {"--force", "--", "--out", "--help", NULL};
    assert_int_equal(parse(&p, args), CLI_GO);
    assert_int_equal(p.force, 1);
    assert_null(p.out);
    assert_int_equal(p.npos, 2);
    assert_string_equal(p.pos[0], "--out");
    assert_string_equal(p.pos[1], "--help");
    const char *dashes[] = {"--", "--", NULL};
    assert_int_equal(parse(&p, dashes), CLI_GO);
    assert_string_equal(p.pos[0], "--");
}

static void test_parse_help_stops_with_ok(void **state)
{
    (void)state;
    parsed p;
    const char *help[] = {"--help", NULL};
    assert_int_equal(parse(&p, help), EXIT_OK);
    const char *h[] = {"a", "-h", NULL};
    assert_int_equal(parse(&p, h), EXIT_OK);
    /* --help wins over what else is wrong */
    const char *bad[] = {"--bogus", "--help", "x", "y", "z", NULL};
    assert_int_equal(parse(&p, bad), EXIT_OK);
    assert_int_equal(smki_error_code(), 0);
}

static void test_parse_refuses_an_unknown_option(void **state)
{
    (void)state;
    const char *args[] = {"a", "--bogus", NULL};
    refused(args, "unknown option --bogus");
    const char *eq[] = {"a", "--bogus=1", NULL};
    refused(eq, "unknown option --bogus");
    const char *prefix[] = {"a", "--ou", "x", NULL}; /* no abbreviations */
    refused(prefix, "unknown option --ou");
    const char *longer[] = {"a", "--outx", "x", NULL};
    refused(longer, "unknown option --outx");
}

static void test_parse_refuses_a_value_for_a_flag(void **state)
{
    (void)state;
    const char *args[] = {"a", "--force=yes", NULL};
    refused(args, "--force takes no value");
    const char *empty[] = {"a", "--force=", NULL};
    refused(empty, "--force takes no value");
}

static void test_parse_refuses_a_missing_value(void **state)
{
    (void)state;
    const char *args[] = {"a", "--out", NULL};
    refused(args, "--out needs a value");
    const char *list[] = {"a", "--dns", NULL};
    refused(list, "--dns needs a value");
}

static void test_parse_refuses_a_value_given_twice(void **state)
{
    (void)state;
    const char *args[] = {"a", "--out", "x", "--out=y", NULL};
    refused(args, "--out is given twice ('x', then 'y')");
}

static void test_parse_refuses_a_list_past_its_bound(void **state)
{
    (void)state;
    const char *args[2 * CLI_LIST_MAX + 4];
    size_t n = 0;
    args[n++] = "a";
    for (size_t i = 0; i < CLI_LIST_MAX; i++) args[n++] = "--dns=h";
    args[n] = NULL;
    parsed p;
    assert_int_equal(parse(&p, args), CLI_GO);
    assert_int_equal(p.dns.n, CLI_LIST_MAX);
    args[n++] = "--dns=one-too-many";
    args[n] = NULL;
    refused(args, "--dns is given more than 64 times");
}

static void test_parse_counts_positionals(void **state)
{
    (void)state;
    const char *none[] = {"--force", NULL};
    refused(none, "missing argument: it takes A [B]");
    const char *three[] = {"a", "b", "c", NULL};
    refused(three, "unexpected argument 'c' (it takes A [B])");
    /* a single dash is an argument, not an option */
    const char *dash[] = {"a", "b", "-", NULL};
    refused(dash, "unexpected argument '-'");
}

static void test_parse_without_options_or_positionals(void **state)
{
    (void)state;
    char *argv[] = {"info", "extra", NULL};
    const cli_spec spec = {"smki store info", HELP, NULL, NULL, 0, 0};
    smki_cli c = {0};
    assert_int_equal(cli_parse(&c, &spec, 1, argv, NULL, NULL), CLI_GO);
    assert_int_equal(cli_parse(&c, &spec, 2, argv, NULL, NULL), EXIT_USAGE);
    assert_non_null(strstr(smki_error_msg(), "unexpected argument 'extra' (it takes none)"));
    char *opt[] = {"info", "--out", "x", NULL};
    assert_int_equal(cli_parse(&c, &spec, 3, opt, NULL, NULL), EXIT_USAGE);
    assert_non_null(strstr(smki_error_msg(), "unknown option --out"));
}

/* ---- cli_number ----------------------------------------------------------------------- */

static void test_number_within_bounds(void **state)
{
    (void)state;
    uint64_t v = 99;
    assert_ok(cli_number("--group", "1", 1, 100000, &v));
    assert_int_equal(v, 1);
    assert_ok(cli_number("--group", "100000", 1, 100000, &v));
    assert_int_equal(v, 100000);
    assert_ok(cli_number("--group", "007", 1, 100000, &v));
    assert_int_equal(v, 7);
    assert_ok(cli_number("--nth", "0", 0, UINT64_MAX, &v));
    assert_int_equal(v, 0);
    assert_ok(cli_number("--nth", "9999999999999999999", 0, UINT64_MAX, &v));
    assert_true(v == 9999999999999999999ULL);
}

static void test_number_refuses_out_of_bounds(void **state)
{
    (void)state;
    uint64_t v = 99;
    assert_fails(cli_number("--threads", "0", 1, 64, &v), SMKI_E_USAGE,
                 "--threads is a whole number from 1 to 64, not 0");
    assert_int_equal(v, 0);
    assert_fails(cli_number("--threads", "65", 1, 64, &v), SMKI_E_USAGE,
                 "--threads is a whole number from 1 to 64, not 65");
}

static void test_number_refuses_what_is_not_digits(void **state)
{
    (void)state;
    uint64_t v;
    const char *bad[] = {"", "-1", "+1", " 1", "1 ", "1.5", "0x10", "1e3", "12a", "a12", "١"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 99;
        assert_fails(cli_number("--group", bad[i], 1, 100000, &v), SMKI_E_USAGE, "--group is a whole number from 1");
        assert_int_equal(v, 0);
    }
    assert_fails(cli_number("--group", NULL, 1, 100000, &v), SMKI_E_USAGE, "not ''");
}

static void test_number_refuses_overflow(void **state)
{
    (void)state;
    uint64_t v;
    /* 2^64 and past it: never wrapped round to a small number */
    assert_fails(cli_number("--nth", "18446744073709551616", 0, UINT64_MAX, &v), SMKI_E_USAGE, "whole number");
    assert_fails(cli_number("--nth", "99999999999999999999999", 0, UINT64_MAX, &v), SMKI_E_USAGE, "whole number");
    assert_fails(cli_number("--group", "10000000000000000001", 1, 100000, &v), SMKI_E_USAGE, "whole number");
    assert_int_equal(v, 0);
}

/* ---- cli_read / cli_write ------------------------------------------------------------- */

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The whole file as a string (static buffer). */
static const char *get(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* How many entries dir holds besides . and .. (a temporary left behind shows here). */
static size_t entries(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = 0;
    assert_int_equal(fscanf(p, "%zu", &n), 1);
    pclose(p);
    return n;
}

static void test_read_a_file_and_refuse_a_missing_one(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("cli_read");
    char path[512];
    snprintf(path, sizeof path, "%s/in.txt", dir);
    put(path, "hello");
    uint8_t *data = NULL;
    size_t len = 0;
    assert_ok(cli_read(path, 100, &data, &len));
    assert_int_equal(len, 5);
    assert_memory_equal(data, "hello", 5);
    free(data);
    assert_fails(cli_read(path, 4, &data, &len), SMKI_E_INPUT, "over the limit of 4");
    assert_null(data);
    snprintf(path, sizeof path, "%s/no-such.txt", dir);
    assert_true(cli_read(path, 100, &data, &len) < 0);
    assert_null(data);
    assert_int_equal(len, 0);
}

/* Standard input from the file path for the call, then back. */
static int read_stdin_from(const char *path, size_t max, uint8_t **data, size_t *len)
{
    int saved = dup(STDIN_FILENO), fd = open(path, O_RDONLY);
    assert_true(saved >= 0 && fd >= 0);
    assert_int_equal(dup2(fd, STDIN_FILENO), STDIN_FILENO);
    close(fd);
    clearerr(stdin);
    int rc = cli_read("-", max, data, len);
    assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
    close(saved);
    clearerr(stdin);
    return rc;
}

static void test_read_dash_is_standard_input(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("cli_stdin");
    char path[512];
    snprintf(path, sizeof path, "%s/in.bin", dir);
    /* longer than read_stdin's first buffer (64 KiB), so it grows */
    size_t big = 200000;
    uint8_t *blob = malloc(big);
    assert_non_null(blob);
    for (size_t i = 0; i < big; i++) blob[i] = (uint8_t)(i * 7);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(blob, 1, big, f), big);
    fclose(f);
    uint8_t *data = NULL;
    size_t len = 0;
    assert_ok(read_stdin_from(path, big, &data, &len));
    assert_int_equal(len, big);
    assert_memory_equal(data, blob, big);
    free(data);
    data = NULL;
    assert_int_equal(read_stdin_from(path, big - 1, &data, &len), SMKI_E_INPUT);
    assert_non_null(strstr(smki_error_msg(), "standard input is longer than"));
    assert_null(data);
    free(blob);
}

static void test_write_never_replaces_without_force(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("cli_write");
    char path[512];
    snprintf(path, sizeof path, "%s/out.pem", dir);
    assert_ok(cli_write_check(path, 0));
    assert_ok(cli_write(path, "first", 5, 0644, 0));
    assert_string_equal(get(path), "first");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    char want[600];
    snprintf(want, sizeof want, "%s exists; --force replaces it", path);
    assert_fails(cli_write_check(path, 0), SMKI_E_EXISTS, want);
    assert_fails(cli_write(path, "second", 6, 0644, 0), SMKI_E_EXISTS, want);
    assert_string_equal(get(path), "first");
    assert_int_equal(entries(dir), 1); /* no temporary left beside it */
    assert_ok(cli_write_check(path, 1));
    assert_ok(cli_write(path, "second", 6, 0600, 1));
    assert_string_equal(get(path), "second");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(entries(dir), 1);
}

static void test_write_fails_whole_with_nothing_written(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("cli_write_fail");
    char path[512];
    snprintf(path, sizeof path, "%s/no-such-folder/out.pem", dir);
    assert_true(cli_write_check(path, 0) < 0);
    assert_true(cli_write_check(path, 1) < 0);
    assert_true(cli_write(path, "data", 4, 0644, 1) < 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(entries(dir), 0);
    /* a folder in the way is not replaced either */
    snprintf(path, sizeof path, "%s/sub", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_fails(cli_write(path, "data", 4, 0644, 0), SMKI_E_EXISTS, "--force replaces it");
    assert_true(cli_write(path, "data", 4, 0644, 1) < 0);
    /* checked before work that cannot be taken back: a folder is no file to write, forced or not */
    assert_fails(cli_write_check(path, 0), SMKI_E_USAGE, "is a folder: name a file to write");
    assert_fails(cli_write_check(path, 1), SMKI_E_USAGE, "is a folder: name a file to write");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(entries(dir), 1);
}

static void test_write_dash_is_standard_output(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("cli_stdout");
    char path[512];
    snprintf(path, sizeof path, "%s/captured", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), saved = dup(STDOUT_FILENO);
    assert_true(fd >= 0 && saved >= 0);
    fflush(stdout);
    assert_int_equal(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
    close(fd);
    /* "-" is never a file: no force needed, none made */
    int rc1 = cli_write_check("-", 0);
    int rc2 = cli_write("-", "to stdout\n", 10, 0644, 0);
    int rc3 = cli_write("-", "again\n", 6, 0644, 0);
    fflush(stdout);
    assert_int_equal(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
    close(saved);
    assert_ok(rc1);
    assert_ok(rc2);
    assert_ok(rc3);
    assert_string_equal(get(path), "to stdout\nagain\n");
    assert_int_equal(access("-", F_OK), -1);
    assert_int_equal(entries(dir), 1);
}

/* ---- cli_when ------------------------------------------------------------------------- */

static void test_when_renders_one_way(void **state)
{
    (void)state;
    smki_cli human = {0}, json = {0};
    json.json = 1;
    char t[CLI_TIME_MAX];
    cli_when(&human, 0, t);
    assert_string_equal(t, "1970-01-01T00:00:00Z");
    cli_when(&json, 1796644800, t);
    assert_string_equal(t, "2026-12-07T12:00:00Z");
    cli_when(&human, -1, t);
    assert_string_equal(t, "never");
    cli_when(&json, -1, t);
    assert_string_equal(t, "9999-12-31T23:59:59Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_takes_options_anywhere_in_both_forms),
        cmocka_unit_test(test_parse_leaves_what_is_not_given),
        cmocka_unit_test(test_parse_dash_is_a_value_and_a_positional),
        cmocka_unit_test(test_parse_double_dash_ends_options),
        cmocka_unit_test(test_parse_help_stops_with_ok),
        cmocka_unit_test(test_parse_refuses_an_unknown_option),
        cmocka_unit_test(test_parse_refuses_a_value_for_a_flag),
        cmocka_unit_test(test_parse_refuses_a_missing_value),
        cmocka_unit_test(test_parse_refuses_a_value_given_twice),
        cmocka_unit_test(test_parse_refuses_a_list_past_its_bound),
        cmocka_unit_test(test_parse_counts_positionals),
        cmocka_unit_test(test_parse_without_options_or_positionals),
        cmocka_unit_test(test_number_within_bounds),
        cmocka_unit_test(test_number_refuses_out_of_bounds),
        cmocka_unit_test(test_number_refuses_what_is_not_digits),
        cmocka_unit_test(test_number_refuses_overflow),
        cmocka_unit_test(test_read_a_file_and_refuse_a_missing_one),
        cmocka_unit_test(test_read_dash_is_standard_input),
        cmocka_unit_test(test_write_never_replaces_without_force),
        cmocka_unit_test(test_write_fails_whole_with_nothing_written),
        cmocka_unit_test(test_write_dash_is_standard_output),
        cmocka_unit_test(test_when_renders_one_way),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
