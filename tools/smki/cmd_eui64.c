/* smki eui64: EUI-64 identifiers and the IEEE blocks they come from. */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "policy/policy.h"

static const char PARSE_HELP[] =
    "Usage: smki eui64 parse EUI64 [--range RANGE]\n"
    "\n"
    "Check an EUI-64 and print it in every form. Accepted: 16 hex digits\n"
    "(90B3D51F30010000), or 8 pairs joined by '-' (90-B3-D5-1F-30-01-00-00, the DUIS form)\n"
    "or by ':'. With --range, also say whether it lies in RANGE (e.g. 90B3D51F3/36);\n"
    "exit 2 if it does not.\n";

static const char RANGE_HELP[] =
    "Usage: smki eui64 range RANGE [--nth N]\n"
    "\n"
    "Describe an IEEE block: RANGE is an EUI-64 or prefix digits, '/', and the prefix\n"
    "length: 24 (MA-L), 28 (MA-M) or 36 (MA-S). E.g. 90B3D51F3/36 or 90-B3-D5-00-00-00-00-00/24.\n"
    "Prints the first and last ID and the size; --nth N prints the N-th ID (from 0).\n";

static int eui_parse(smki_cli *c, int argc, char **argv)
{
    const char *in = NULL, *pos[1];
    const cli_opt opts[] = {CLI_VALUE("range", &in), CLI_END};
    const cli_spec spec = {"smki eui64 parse", PARSE_HELP, opts, "one EUI64", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    smki_eui64_t id;
    smki_eui64_range_t r;
    int rc = smki_eui64_parse(pos[0], &id);
    if (rc == 0 && in) rc = smki_eui64_range_parse(in, &r);
    if (rc < 0) return cli_fail(c, rc);
    int inside = in ? smki_eui64_range_contains(&r, &id) : 1;
    char plain[SMKI_EUI64_TEXT_MAX], hyphen[SMKI_EUI64_TEXT_MAX], colon[SMKI_EUI64_TEXT_MAX], rtext[48] = "";
    smki_eui64_format(&id, SMKI_EUI64_PLAIN, plain);
    smki_eui64_format(&id, SMKI_EUI64_HYPHEN, hyphen);
    smki_eui64_format(&id, SMKI_EUI64_COLON, colon);
    if (in) smki_eui64_range_format(&r, rtext);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", inside);
        json_str(&w, "plain", plain);
        json_str(&w, "hyphen", hyphen);
        json_str(&w, "colon", colon);
        if (in) {
            json_str(&w, "range", rtext);
            json_bool(&w, "in_range", inside);
        }
        json_end(&w);
    } else {
        printf("%s\n%s\n%s\n", plain, hyphen, colon);
        if (in) printf("%s %s %s\n", plain, inside ? "is in" : "is NOT in", rtext);
    }
    return inside ? EXIT_OK : EXIT_REFUSED;
}

static int eui_range(smki_cli *c, int argc, char **argv)
{
    const char *nth = NULL, *pos[1];
    const cli_opt opts[] = {CLI_VALUE("nth", &nth), CLI_END};
    const cli_spec spec = {"smki eui64 range", RANGE_HELP, opts, "one RANGE", 1, 1};
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    smki_eui64_range_t r;
    smki_eui64_t id;
    uint64_t n = 0;
    int rc = smki_eui64_range_parse(pos[0], &r);
    if (rc == 0 && nth) rc = cli_number("--nth", nth, 0, UINT64_MAX >> 1, &n);
    if (rc == 0 && nth) rc = smki_eui64_range_nth(&r, n, &id);
    if (rc < 0) return cli_fail(c, rc);
    char text[48], first[SMKI_EUI64_TEXT_MAX], last[SMKI_EUI64_TEXT_MAX], nthtext[SMKI_EUI64_TEXT_MAX] = "";
    smki_eui64_range_format(&r, text);
    smki_eui64_format(&r.first, SMKI_EUI64_HYPHEN, first);
    smki_eui64_format(&r.last, SMKI_EUI64_HYPHEN, last);
    if (nth) smki_eui64_format(&id, SMKI_EUI64_HYPHEN, nthtext);
    const char *kind = r.prefix_bits == 24 ? "MA-L" : r.prefix_bits == 28 ? "MA-M" : "MA-S";
    unsigned long long size = (unsigned long long)smki_eui64_range_size(&r);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "range", text);
        json_str(&w, "kind", kind);
        json_str(&w, "first", first);
        json_str(&w, "last", last);
        json_int(&w, "size", (long long)size);
        if (nth) json_str(&w, "nth", nthtext);
        json_end(&w);
    } else {
        printf("%s (%s): %s .. %s, %llu IDs\n", text, kind, first, last, size);
        if (nth) printf("ID %s: %s\n", nth, nthtext);
    }
    return EXIT_OK;
}

static const cli_cmd EUI_COMMANDS[] = {
    {"parse", eui_parse, "check an EUI-64 and print its forms"},
    {"range", eui_range, "describe an MA-L/MA-M/MA-S block"},
    {NULL, NULL, NULL},
};

int cmd_eui64(smki_cli *c, int argc, char **argv)
{
    return cli_dispatch(c, EUI_COMMANDS, argc - 1, argv + 1, "smki eui64", "smki eui64: EUI-64 identifiers.");
}
