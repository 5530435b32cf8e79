/* smki: the command line of the smki PKI toolkit. Global options may stand anywhere
 * on the line; everything else is a git-style command with its own --help. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static const char ABOUT[] =
    "smki: the public-key infrastructure of GB smart metering (SMKI and DCCKI).\n"
    "\n"
    "Global options (anywhere on the line):\n"
    "  --home DIR         the home: configuration, token and store (default $SMKI_HOME, else ./var/smki)\n"
    "  --json             machine-readable output on stdout (errors too)\n"
    "  --pin-file FILE    the token's user PIN, first line of FILE (or set SMKI_PIN)\n"
    "  --so-pin-file FILE the token's SO PIN (or set SMKI_SO_PIN)\n"
    "  --version          print the version\n"
    "PINs are never accepted as arguments.\n"
    "\n"
    "Exit codes: 0 ok; 1 usage error; 2 refused or verification failed; 3 internal or HSM error.";

static const cli_cmd COMMANDS[] = {
    {"hsm", cmd_hsm, "the token: init, info"},
    {"key", cmd_key, "keys in the token: generate, list, pub"},
    {"sign", cmd_sign, "sign a file with a key (ECDSA P-256/SHA-256, raw r||s or DER)"},
    {"verify", cmd_verify, "verify a file's signature with a public key or certificate"},
    {"eui64", cmd_eui64, "EUI-64 identifiers and ranges: parse, range"},
    {"store", cmd_store, "the LMDB store: info"},
    {"lint", cmd_lint, "check certificates against the GB profiles"},
    {"ca", cmd_ca, "the certificate authority: init, issue, batch, revoke, crl, arl, list, show"},
    {"gbcs", cmd_gbcs, "GBCS messages: inspect, sign (pre-commands), verify (signature and MAC)"},
    {"duis", cmd_duis, "DUIS XML: sign Service Requests (xmlSign), verify Requests and Responses"},
    {"device", cmd_device, "a GBCS device model: create, load-cell, show, receive (CS02a/b/c)"},
    {"ra", cmd_ra, "the registration authority: registry, requests, approvals, expiry"},
    {"audit", cmd_audit, "the tamper-evident audit trail: verify, list"},
    {"file", cmd_file, "detached signatures over text files (threshold CSV): sign, verify"},
    {"repo", cmd_repo, "the SMKI Repository: serve over HTTP(S), get, search"},
    {"enrol", cmd_enrol, "enrolment over the network: EST and device batches over mutual TLS (serve)"},
    {"doctor", cmd_doctor, "check a home: configuration, token, PIN, store, CAs, CRLs/ARLs, audit trail"},
    {NULL, NULL, NULL},
};

/* Take the global options out of argv (in place); returns the new argc or -1. */
static int take_globals(smki_cli *c, int argc, char **argv, const char **home, const char **missing)
{
    int out = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < argc) argv[out++] = argv[i++];
            break;
        }
        const char **target = NULL;
        if (strcmp(a, "--home") == 0)
            target = home;
        else if (strcmp(a, "--pin-file") == 0)
            target = &c->pin_file;
        else if (strcmp(a, "--so-pin-file") == 0)
            target = &c->so_pin_file;
        if (target) {
            if (i + 1 >= argc) {
                *missing = a;
                return -1;
            }
            *target = argv[++i];
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            c->json = 1;
            continue;
        }
        argv[out++] = argv[i];
    }
    return out;
}

int main(int argc, char **argv)
{
    static smki_cli cli;
    const char *home = getenv("SMKI_HOME");
    const char *missing = NULL;
    int n = take_globals(&cli, argc - 1, argv + 1, &home, &missing);
    if (n < 0) return cli_usage(&cli, "smki", "%s needs a value", missing);
    if (n >= 1 && strcmp(argv[1], "--version") == 0) {
        puts("smki " SMKI_VERSION);
        return EXIT_OK;
    }
    snprintf(cli.home, sizeof cli.home, "%s", home && *home ? home : "./var/smki");
    int rc = cli_dispatch(&cli, COMMANDS, n, argv + 1, "smki", ABOUT);
    cli_cleanup(&cli);
    return rc;
}
