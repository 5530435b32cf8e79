/* smki sign / smki verify: ECDSA P-256 with SHA-256 over a file. */
#include <stdlib.h>
#include <string.h>

#include "commands.h"

#define MAX_SIGNED_FILE (256u << 20)

static const char SIGN_HELP[] =
    "Usage: smki sign --key KEY --in FILE --out SIGFILE [--raw|--der] [--force]\n"
    "\n"
    "Sign FILE with KEY: ECDSA on P-256 over SHA-256 of the file's bytes. '-' is standard\n"
    "input (--in) or output (--out); an existing SIGFILE is refused unless --force.\n"
    "  --der  (default) the DER ECDSA-Sig-Value X.509 and 'openssl dgst -verify' use\n"
    "  --raw  64 octets r||s, as GBCS messages carry them and PKCS#11 CKM_ECDSA returns\n"
    "KEY is a pkcs11: URI, file:PATH (PEM private key), or a label on the home's token.\n"
    "A token key needs the user PIN (SMKI_PIN or --pin-file).\n"
    "\n"
    "Examples (in a home with a token, its user PIN in SMKI_PIN):\n"
    "  smki key generate --label signer --usage ds\n"
    "  echo hello > msg\n"
    "  smki sign --key signer --in msg --out msg.sig\n"
    "  smki key pub signer --out pub.pem\n"
    "  openssl dgst -sha256 -verify pub.pem -signature msg.sig msg\n"
    "  smki sign --key signer --in msg --out msg.raw --raw\n"
    "  smki verify --pub pub.pem --in msg --sig msg.raw\n"
    "  smki sign --key signer --in - --out - < msg | wc -c\n";

static const char VERIFY_HELP[] =
    "Usage: smki verify (--pub PEMFILE | --cert CERTFILE) --in FILE --sig SIGFILE [--raw|--der]\n"
    "\n"
    "Verify SIGFILE over FILE with a P-256 public key (PEM or DER SubjectPublicKeyInfo)\n"
    "or the key of a certificate (PEM or DER). The signature form is taken from\n"
    "--raw/--der, else guessed: 64 octets is raw r||s, anything else DER.\n"
    "FILE or SIGFILE may be '-' (standard input).\n"
    "Exit 0 when it verifies, 2 when it does not (or the inputs are malformed).\n"
    "\n"
    "Examples (a key and signature made by openssl; no home needed):\n"
    "  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out k.pem\n"
    "  openssl pkey -in k.pem -pubout -out k.pub\n"
    "  echo hello > msg; openssl dgst -sha256 -sign k.pem -out msg.sig msg\n"
    "  smki verify --pub k.pub --in msg --sig msg.sig\n"
    "  echo other > msg2\n"
    "  smki verify --pub k.pub --in msg2 --sig msg.sig   # exits 2: not signed by k\n";

typedef struct {
    const char *key, *in, *out, *sig, *pub, *cert;
    int raw, der, force;
} sign_args;

/* The options of both commands: each refuses the other's by name, so a mix-up says which
 * command the option belongs to. */
static int parse(smki_cli *c, int argc, char **argv, sign_args *a, const char *prog, const char *help)
{
    memset(a, 0, sizeof *a);
    const cli_opt opts[] = {CLI_VALUE("key", &a->key), CLI_VALUE("in", &a->in),   CLI_VALUE("out", &a->out),
                            CLI_VALUE("sig", &a->sig), CLI_VALUE("pub", &a->pub), CLI_VALUE("cert", &a->cert),
                            CLI_FLAG("raw", &a->raw),  CLI_FLAG("der", &a->der),  CLI_FLAG("force", &a->force),
                            CLI_END};
    const cli_spec spec = {prog, help, opts, "no arguments", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (a->raw && a->der) return cli_usage(c, prog, "give one of --raw or --der");
    return CLI_GO;
}

static void print_signed(const smki_cli *c, const sign_args *a, const smki_key *k, smki_sigfmt fmt, size_t len,
                         size_t sig_len)
{
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "key", smki_key_ref(k));
        json_str(&w, "format", fmt == SMKI_SIG_RAW ? "raw" : "der");
        json_int(&w, "signed_octets", (long long)len);
        json_int(&w, "signature_octets", (long long)sig_len);
        json_str(&w, "out", a->out);
        json_end(&w);
    } else if (strcmp(a->out, "-") != 0) {
        printf("Signed %s (%zu octets) with %s: %s signature (%zu octets) written to %s.\n", a->in, len,
               smki_key_ref(k), fmt == SMKI_SIG_RAW ? "raw r||s" : "DER", sig_len, a->out);
    }
}

int cmd_sign(smki_cli *c, int argc, char **argv)
{
    sign_args a;
    int stop = parse(c, argc, argv, &a, "smki sign", SIGN_HELP);
    if (stop != CLI_GO) return stop;
    if (!a.key || !a.in || !a.out) return cli_usage(c, "smki sign", "--key, --in and --out are required");
    if (a.sig || a.pub || a.cert) return cli_usage(c, "smki sign", "--sig, --pub and --cert belong to 'smki verify'");
    if (c->json && strcmp(a.out, "-") == 0)
        return cli_usage(c, "smki sign", "--out - writes the signature to standard output: not with --json");
    smki_sigfmt fmt = a.raw ? SMKI_SIG_RAW : SMKI_SIG_DER;
    uint8_t *msg = NULL;
    size_t len = 0;
    smki_key *k = NULL;
    uint8_t sig[SMKI_SIG_MAX];
    size_t sig_len = sizeof sig;
    int rc = cli_read(a.in, MAX_SIGNED_FILE, &msg, &len);
    if (rc == 0) rc = cli_open_key(c, a.key, &k);
    if (rc == 0) rc = smki_key_sign(k, msg, len, fmt, sig, &sig_len);
    if (rc == 0) rc = cli_write(a.out, sig, sig_len, 0644, a.force);
    if (rc == 0) print_signed(c, &a, k, fmt, len, sig_len);
    smki_key_free(k);
    free(msg);
    return cli_finish(c, rc);
}

static void print_verified(const smki_cli *c, const sign_args *a, smki_sigfmt fmt, int rc)
{
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", rc == 0);
        json_bool(&w, "verified", rc == 0);
        json_str(&w, "format", fmt == SMKI_SIG_RAW ? "raw" : "der");
        json_str(&w, "in", a->in);
        json_end(&w);
    } else if (rc == 0) {
        printf("Verified: %s is signed by the key in %s (%s signature).\n", a->in, a->pub ? a->pub : a->cert,
               fmt == SMKI_SIG_RAW ? "raw" : "DER");
    } else {
        fprintf(stderr, "smki: NOT verified: the signature in %s does not match %s under the key in %s.\n", a->sig,
                a->in, a->pub ? a->pub : a->cert);
    }
}

int cmd_verify(smki_cli *c, int argc, char **argv)
{
    sign_args a;
    int stop = parse(c, argc, argv, &a, "smki verify", VERIFY_HELP);
    if (stop != CLI_GO) return stop;
    if (!a.in || !a.sig) return cli_usage(c, "smki verify", "--in and --sig are required");
    if (!a.pub == !a.cert) return cli_usage(c, "smki verify", "give exactly one of --pub or --cert");
    if (a.key || a.out || a.force) return cli_usage(c, "smki verify", "--key, --out and --force belong to 'smki sign'");
    if (strcmp(a.in, "-") == 0 && strcmp(a.sig, "-") == 0)
        return cli_usage(c, "smki verify", "only one of --in and --sig can be standard input");
    uint8_t *msg = NULL, *sig = NULL;
    size_t len = 0, sig_len = 0;
    EVP_PKEY *pub = NULL;
    int rc = smki_pub_load_file(a.pub ? a.pub : a.cert, &pub);
    if (rc == 0) rc = cli_read(a.in, MAX_SIGNED_FILE, &msg, &len);
    if (rc == 0) rc = cli_read(a.sig, 4096, &sig, &sig_len);
    smki_sigfmt fmt = a.raw ? SMKI_SIG_RAW : a.der ? SMKI_SIG_DER
                                                  : (sig_len == SMKI_SIG_RAW_LEN ? SMKI_SIG_RAW : SMKI_SIG_DER);
    if (rc == 0) rc = smki_verify(pub, msg, len, fmt, sig, sig_len);
    if (rc == 0 || rc == SMKI_E_VERIFY) print_verified(c, &a, fmt, rc);
    else cli_fail(c, rc);
    EVP_PKEY_free(pub);
    free(msg);
    free(sig);
    return rc == 0 ? EXIT_OK : smki_error_exit_code(rc);
}
