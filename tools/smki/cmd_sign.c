/* smki sign / smki verify: ECDSA P-256 with SHA-256 over a file. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

#define MAX_SIGNED_FILE (256u << 20)

static const char SIGN_HELP[] =
    "Usage: smki sign --key KEY --in FILE --out SIGFILE [--raw|--der]\n"
    "\n"
    "Sign FILE with KEY: ECDSA on P-256 over SHA-256 of the file's bytes.\n"
    "  --der  (default) the DER ECDSA-Sig-Value X.509 and 'openssl dgst -verify' use\n"
    "  --raw  64 octets r||s, as GBCS messages carry them and PKCS#11 CKM_ECDSA returns\n"
    "KEY is a pkcs11: URI, file:PATH (PEM private key), or a label on the home's token.\n"
    "A token key needs the user PIN (SMKI_PIN or --pin-file).\n"
    "\n"
    "Example:\n"
    "  smki sign --key supplier-ds --in precommand.bin --out precommand.sig --raw\n"
    "  openssl dgst -sha256 -verify pub.pem -signature msg.sig msg   # for --der\n";

static const char VERIFY_HELP[] =
    "Usage: smki verify (--pub PEMFILE | --cert CERTFILE) --in FILE --sig SIGFILE [--raw|--der]\n"
    "\n"
    "Verify SIGFILE over FILE with a P-256 public key (PEM or DER SubjectPublicKeyInfo)\n"
    "or the key of a certificate (PEM or DER). The signature form is taken from\n"
    "--raw/--der, else guessed: 64 octets is raw r||s, anything else DER.\n"
    "Exit 0 when it verifies, 2 when it does not (or the inputs are malformed).\n";

typedef struct {
    const char *key, *in, *out, *sig, *pub, *cert;
    int fmt; /* -1 unset */
} sign_args;

static int parse(smki_cli *c, int argc, char **argv, sign_args *a, const char *prog)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'}, {"in", required_argument, NULL, 'i'},
        {"out", required_argument, NULL, 'o'}, {"sig", required_argument, NULL, 's'},
        {"pub", required_argument, NULL, 'p'}, {"cert", required_argument, NULL, 'c'},
        {"raw", no_argument, NULL, 'r'},       {"der", no_argument, NULL, 'd'},
        {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->fmt = -1;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'k': a->key = optarg; break;
        case 'i': a->in = optarg; break;
        case 'o': a->out = optarg; break;
        case 's': a->sig = optarg; break;
        case 'p': a->pub = optarg; break;
        case 'c': a->cert = optarg; break;
        case 'r':
        case 'd':
            if (a->fmt != -1) return cli_usage(c, prog, "give one of --raw or --der");
            a->fmt = ch == 'r' ? SMKI_SIG_RAW : SMKI_SIG_DER;
            break;
        default: return cli_usage(c, prog, "bad option");
        }
    }
    if (optind != argc) return cli_usage(c, prog, "unexpected argument '%s'", argv[optind]);
    return -1;
}

int cmd_sign(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, SIGN_HELP)) return EXIT_OK;
    sign_args a;
    int e = parse(c, argc, argv, &a, "smki sign");
    if (e >= 0) return e;
    if (!a.key || !a.in || !a.out) return cli_usage(c, "smki sign", "--key, --in and --out are required");
    if (a.sig || a.pub || a.cert) return cli_usage(c, "smki sign", "--sig, --pub and --cert belong to 'smki verify'");
    smki_sigfmt fmt = a.fmt == SMKI_SIG_RAW ? SMKI_SIG_RAW : SMKI_SIG_DER;
    uint8_t *msg = NULL;
    size_t len = 0;
    smki_key *k = NULL;
    uint8_t sig[SMKI_SIG_MAX];
    size_t sig_len = sizeof sig;
    int rc = smki_file_read(a.in, MAX_SIGNED_FILE, &msg, &len);
    if (rc == 0) rc = cli_open_key(c, a.key, &k);
    if (rc == 0) rc = smki_key_sign(k, msg, len, fmt, sig, &sig_len);
    if (rc == 0) rc = smki_file_write_atomic(a.out, sig, sig_len, 0644, 0);
    if (rc == 0) {
        if (c->json) {
            json_w w;
            json_begin(&w, stdout);
            json_bool(&w, "ok", 1);
            json_str(&w, "key", smki_key_ref(k));
            json_str(&w, "format", fmt == SMKI_SIG_RAW ? "raw" : "der");
            json_int(&w, "signed_octets", (long long)len);
            json_int(&w, "signature_octets", (long long)sig_len);
            json_str(&w, "out", a.out);
            json_end(&w);
        } else {
            printf("Signed %s (%zu octets) with %s: %s signature (%zu octets) written to %s.\n", a.in, len,
                   smki_key_ref(k), fmt == SMKI_SIG_RAW ? "raw r||s" : "DER", sig_len, a.out);
        }
    }
    smki_key_free(k);
    free(msg);
    return cli_finish(c, rc);
}

int cmd_verify(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, VERIFY_HELP)) return EXIT_OK;
    sign_args a;
    int e = parse(c, argc, argv, &a, "smki verify");
    if (e >= 0) return e;
    if (!a.in || !a.sig) return cli_usage(c, "smki verify", "--in and --sig are required");
    if (!a.pub == !a.cert) return cli_usage(c, "smki verify", "give exactly one of --pub or --cert");
    if (a.key || a.out) return cli_usage(c, "smki verify", "--key and --out belong to 'smki sign'");
    uint8_t *msg = NULL, *sig = NULL;
    size_t len = 0, sig_len = 0;
    EVP_PKEY *pub = NULL;
    int rc = smki_pub_load_file(a.pub ? a.pub : a.cert, &pub);
    if (rc == 0) rc = smki_file_read(a.in, MAX_SIGNED_FILE, &msg, &len);
    if (rc == 0) rc = smki_file_read(a.sig, 4096, &sig, &sig_len);
    smki_sigfmt fmt = a.fmt >= 0 ? (smki_sigfmt)a.fmt : (sig_len == SMKI_SIG_RAW_LEN ? SMKI_SIG_RAW : SMKI_SIG_DER);
    if (rc == 0) rc = smki_verify(pub, msg, len, fmt, sig, sig_len);
    if (rc == 0 || rc == SMKI_E_VERIFY) {
        if (c->json) {
            json_w w;
            json_begin(&w, stdout);
            json_bool(&w, "ok", rc == 0);
            json_bool(&w, "verified", rc == 0);
            json_str(&w, "format", fmt == SMKI_SIG_RAW ? "raw" : "der");
            json_str(&w, "in", a.in);
            json_end(&w);
        } else if (rc == 0) {
            printf("Verified: %s is signed by the key in %s (%s signature).\n", a.in, a.pub ? a.pub : a.cert,
                   fmt == SMKI_SIG_RAW ? "raw" : "DER");
        } else {
            fprintf(stderr, "smki: NOT verified: the signature in %s does not match %s under the key in %s.\n", a.sig,
                    a.in, a.pub ? a.pub : a.cert);
        }
    } else {
        cli_fail(c, rc);
    }
    EVP_PKEY_free(pub);
    free(msg);
    free(sig);
    return rc == 0 ? EXIT_OK : smki_error_exit_code(rc);
}
