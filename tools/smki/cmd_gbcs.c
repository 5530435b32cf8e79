/* smki gbcs: GBCS messages (reference §5). inspect shows every field; sign signs a
 * pre-command as an organisation; verify checks the signatures and MACs of commands,
 * responses and alerts.
 * Argument parsing and output only: the work is in gbcs/. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "duis/duis.h"
#include "gbcs/gbcs.h"

static const char ABOUT[] =
    "smki gbcs: GBCS messages (General Signing DF, General Ciphering DD with a MAC).\n"
    "\n"
    "Files are hex text as in the DCC's RTDS (whitespace allowed) or binary.\n"
    "A pre-command (what the DCC returns for signing) is signed with 'gbcs sign': ECDSA\n"
    "P-256/SHA-256 over every octet after DF up to the end of the content, appended as\n"
    "40 || r || s. The DCC wraps it into a command with a MAC (AES-128-GCM under a key\n"
    "from static ECDH between the ACB's and the device's key-agreement keys);\n"
    "'gbcs verify' checks both.";

static const char INSPECT_HELP[] =
    "Usage: smki gbcs inspect FILE... [--json]\n"
    "\n"
    "Parse each file and print every field: the wrapper (security control, invocation\n"
    "counter, MAC and the span it authenticates), the transaction-id (CRA flag: 01\n"
    "command, 02 response, 03 alert; originator counter), originator and recipient\n"
    "EUI-64s, date-time, other-information (message code, supplementary remote party\n"
    "ID, counter, certificate), content, signature, and the signed region's offsets.\n"
    "General Block Transfer (DD 09): the routing header's fields; its body is not\n"
    "decoded. Nothing is verified: see 'smki gbcs verify'.\n"
    "Exit 2 if any file does not parse (the message names field and offset).\n"
    "\n"
    "FILE '-' is standard input.\n"
    "\n"
    "Example (the DCC's RTDS vectors, from a clone beside ../shared; no home needed):\n"
    "  smki gbcs inspect \\\n"
    "      ../shared/vectors/gbcs/rtds/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_COMMAND_GBCS.HEX\n";

static const char SIGN_HELP[] =
    "Usage: smki gbcs sign --key KEY --cert CERT --in PRECOMMAND --out SIGNED [--binary]\n"
    "                      [--expect-code HEX] [--expect-target EUI64] [--expect-counter MIN-MAX]\n"
    "                      [--request SIGNED-REQUEST.xml --request-trust DIR]\n"
    "\n"
    "Sign a pre-command as the organisation of CERT: ECDSA P-256/SHA-256 with KEY over\n"
    "the octets after DF up to the end of the content; writes the pre-command with\n"
    "40 || r || s appended (a trailing 00 is replaced). Refused (exit 2), with nothing\n"
    "written, unless: CERT is an organisation certificate with digitalSignature, its\n"
    "EUI-64 (x500UniqueIdentifier) is the pre-command's originator, and KEY is CERT's key.\n"
    "Correlation, each optional, each refusing on a mismatch with field, expected and\n"
    "found: --expect-code (message code, e.g. 0019), --expect-target (recipient EUI-64),\n"
    "--expect-counter (originator counter window, inclusive, decimal).\n"
    "--request: the DUIS Service Request the pre-command answers, signed; its signature is\n"
    "verified with the xmlSign certificates in --request-trust DIR (now), then the\n"
    "pre-command must match it: originator, target device and counter of sr:RequestID, the\n"
    "message code of its Service Reference Variant (an unknown variant is refused), and a\n"
    "future-dated request's execution time in the payload. Any mismatch refuses by field.\n"
    "Output is hex text like the RTDS files, or binary with --binary.\n"
    "KEY is a pkcs11: URI, file:PATH or a label on the home's token (PIN: SMKI_PIN or\n"
    "--pin-file).\n"
    "\n"
    "'-' is standard input (--in) or output (--out); an existing SIGNED is refused unless\n"
    "--force replaces it.\n"
    "\n"
    "Examples (the DCC's vectors, from a clone beside ../shared; no home needed):\n"
    "  V=../shared/vectors\n"
    "  smki gbcs sign --key file:$V/gbcs/keystore/90b3d51f30010000-ds.key \\\n"
    "      --cert $V/gbcs/keystore/90b3d51f30010000-ds.pem --out signed.hex --expect-code 0019 \\\n"
    "      --in $V/gbcs/rtds/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX\n"
    "  # the same, checked against the DCC's signed Service Request it answers\n"
    "  smki gbcs sign --key file:$V/gbcs/keystore/90b3d51f30010000-ds.key --force \\\n"
    "      --cert $V/gbcs/keystore/90b3d51f30010000-ds.pem --out signed.hex \\\n"
    "      --in $V/gbcs/rtds/1.1.1_ECS01a/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_PRECOMMAND_GBCS.HEX \\\n"
    "      --request $V/duis/signed/ECS01a_1.1.1_IMMEDIATE_BLOCK_SUCCESS_REQUEST_DUIS_SIGNED.XML \\\n"
    "      --request-trust $V/duis/keystore\n";

/* --request: verify the signed Service Request and correlate the pre-command with it. */
static int check_request(const char *request, const char *trust, const uint8_t *pre, size_t pre_len)
{
    uint8_t *xml = NULL;
    size_t len = 0;
    smki_duis_trust *t = NULL;
    int rc = smki_file_read(request, SMKI_DUIS_MAX_XML, &xml, &len);
    if (rc == 0) rc = smki_duis_trust_new(&t);
    if (rc == 0) rc = smki_duis_trust_add_dir(t, trust);
    if (rc == 0) rc = smki_duis_check_precommand(t, time(NULL), xml, len, pre, pre_len, NULL);
    if (rc < 0) smki_error_wrap("--request %s", request);
    smki_duis_trust_free(t);
    free(xml);
    return rc;
}

static const char VERIFY_HELP[] =
    "Usage: smki gbcs verify --trust DIR [--acb-key KEY] [--recipient-key KEY]...\n"
    "                        [--counters FILE] [--at TIME] FILE... [--json]\n"
    "\n"
    "Verify GBCS messages of any kind, following each message's structure (its CRA\n"
    "flag, originator and recipient, whether it is signed and whether it is wrapped):\n"
    "  command (CRA 01)   signature (40 r s) with the originator's DS certificate;\n"
    "                     MAC (DD) with the ACB's KA key --acb-key and the recipient\n"
    "                     device's KA certificate.\n"
    "  response (02),     signature with the originator device's DS certificate; MAC\n"
    "  alert (03)         with the recipient's KA private key (--recipient-key, one per\n"
    "                     recipient: each key is matched to its EUI-64 by the KA\n"
    "                     certificate in DIR that holds its public key; --acb-key counts\n"
    "                     too) and the originator device's KA certificate.\n"
    "A message must carry a signature or a MAC; every one it carries must verify.\n"
    "Signer certificates must be valid at TIME (default now; e.g. 2020-01-01T00:00:00Z).\n"
    "A MAC between two devices (both titles hold Device Certificates in DIR: HAN-local,\n"
    "e.g. a PPMID and a meter) is under device-to-device keys no party holds: reported\n"
    "'device-to-device', not a failure.\n"
    "DIR holds certificates named <eui64>-ds.pem / <eui64>-ka.pem (the keystore's\n"
    "naming) or any *.pem/*.der/*.crt/*.cer certificate, found by its EUI-64. Chains\n"
    "are not checked here (the gateway's job).\n"
    "--counters FILE: the counters seen, per originator, recipient and CRA flag (created\n"
    "if missing, locked while in use, rewritten at the end): a message whose counter is\n"
    "not above the last one that verified is refused (counter.replay, counter.reordered).\n"
    "Give the files in the order they arrived.\n"
    "KEY is file:PATH or a pkcs11: URI (PIN: SMKI_PIN or --pin-file). FILE '-' is standard\n"
    "input.\n"
    "\n"
    "One line per file: 'ok', 'd2d' or 'FAIL', the kind, what was checked (signature,\n"
    "MAC, both) or the reason (e.g. signature.invalid, mac.invalid, mac.no-key; see\n"
    "docs/gbcs-verify.md); then the totals. Exit 2 if any failed.\n"
    "\n"
    "Examples (the DCC's vectors, from a clone beside ../shared; no home needed):\n"
    "  cd ../shared/vectors/gbcs\n"
    "  smki gbcs verify --trust keystore --acb-key file:keystore/90b3d51f30000002-ka.key \\\n"
    "      --at 2020-01-01T00:00:00Z rtds/*/*_COMMAND_GBCS.HEX\n"
    "  smki gbcs verify --trust keystore --at 2020-01-01T00:00:00Z \\\n"
    "      --recipient-key file:keystore/90b3d51f30010000-ka.key \\\n"
    "      --recipient-key file:keystore/90b3d51f30000002-ka.key rtds/*/*_RESPONSE_GBCS.HEX\n";

/* ---- inspect ------------------------------------------------------------------------ */
static char *hexdup(const uint8_t *p, size_t n)
{
    char *s = malloc(2 * n + 1);
    if (!s) return NULL;
    smki_hex_encode(p, n, s, 1);
    return s;
}

static void eui(const uint8_t *b, char out[SMKI_EUI64_TEXT_MAX])
{
    smki_eui64_t id = smki_gbcs_eui(b);
    smki_eui64_format(&id, SMKI_EUI64_PLAIN, out);
}

static const char *sig_state_name(smki_gbcs_sig_state s)
{
    return s == SMKI_GBCS_SIG_PRESENT ? "present" : s == SMKI_GBCS_SIG_ABSENT ? "absent (00)" : "none (pre-command)";
}

static void json_hex(json_w *w, const char *key, const uint8_t *p, size_t n)
{
    char *h = hexdup(p, n);
    json_str(w, key, h ? h : "");
    free(h);
}

static void print_hex_line(const char *label, const uint8_t *p, size_t n)
{
    char *h = hexdup(p, n);
    printf("    %-20s %zu octet(s): %s\n", label, n, h ? h : "?");
    free(h);
}

static void inspect_human(const char *file, const smki_gbcs_msg *m)
{
    char a[SMKI_EUI64_TEXT_MAX], b[SMKI_EUI64_TEXT_MAX];
    printf("%s: %s, %zu octets\n", file, smki_gbcs_kind_name(m->kind), m->len);
    if (m->kind == SMKI_GBCS_BLOCK) {
        const smki_gbcs_block *k = &m->block;
        eui(k->originator, a);
        eui(k->recipient, b);
        printf("  block-transfer routing header (DD 09)\n");
        printf("    %-20s %02X %s\n", "CRA flag", k->cra, smki_gbcs_cra_name(k->cra));
        printf("    %-20s %" PRIu64 "\n", "originator counter", k->counter);
        printf("    %-20s %s\n    %-20s %s\n", "originator", a, "recipient", b);
        if (k->date_time)
            print_hex_line("date-time", k->date_time, SMKI_GBCS_DATETIME_LEN);
        else
            printf("    %-20s absent\n", "date-time");
        printf("    %-20s %zu octet(s) at offset %zu: NOT decoded (the reference describes only the header)\n",
               "body", k->body_len, k->body_offset);
        return;
    }
    if (m->kind == SMKI_GBCS_CIPHERING) {
        printf("  general-ciphering wrapper (DD)\n");
        printf("    %-20s %02X (authenticated only)\n", "security control", m->security_control);
        printf("    %-20s %" PRIu32 "\n", "invocation counter", m->invocation_counter);
        print_hex_line("MAC", m->mac, SMKI_GBCS_MAC_LEN);
        printf("    %-20s 110000000000 || octets %zu..%zu (the general-signing APDU)\n", "MAC AAD", m->aad_offset,
               m->aad_offset + m->aad_len - 1);
    }
    const smki_gbcs_signing *g = &m->gsa;
    eui(g->originator, a);
    eui(g->recipient, b);
    printf("  general-signing APDU (DF) at offset %zu, %zu octets\n", g->offset, g->len);
    printf("    %-20s %02X %s\n", "CRA flag", g->cra, smki_gbcs_cra_name(g->cra));
    printf("    %-20s %" PRIu64 " (0x%016" PRIX64 ")\n", "originator counter", g->counter, g->counter);
    printf("    %-20s %s\n    %-20s %s\n", "originator", a, "recipient", b);
    if (g->date_time)
        print_hex_line("date-time", g->date_time, SMKI_GBCS_DATETIME_LEN);
    else
        printf("    %-20s absent (00)\n", "date-time");
    printf("    %-20s %04X (other-information: %zu octet(s))\n", "message code", g->message_code, g->other_info_len);
    if (g->supplementary_id) {
        eui(g->supplementary_id, a);
        printf("    %-20s %s\n", "supplementary ID", a);
    }
    if (g->has_urp_counter) printf("    %-20s %" PRIu64 "\n", "supplementary counter", g->urp_counter);
    if (g->urp_cert) printf("    %-20s %zu octet(s) (DER)\n", "certificate", g->urp_cert_len);
    if (g->other_info_rest) print_hex_line("other-info rest", g->other_info_rest, g->other_info_rest_len);
    print_hex_line("content", g->content, g->content_len);
    printf("    %-20s %s\n", "signature", sig_state_name(g->sig_state));
    if (g->signature) {
        print_hex_line("  r", g->signature, 32);
        print_hex_line("  s", g->signature + 32, 32);
    }
    printf("    %-20s octets %zu..%zu (%zu)\n", "signed region", g->signed_offset,
           g->signed_offset + g->signed_len - 1, g->signed_len);
}

static void json_block(json_w *w, const smki_gbcs_block *k)
{
    char a[SMKI_EUI64_TEXT_MAX], b[SMKI_EUI64_TEXT_MAX];
    eui(k->originator, a);
    eui(k->recipient, b);
    json_key_obj(w, "block_transfer");
    json_int(w, "cra", k->cra);
    json_str(w, "cra_name", smki_gbcs_cra_name(k->cra));
    json_int(w, "counter", (long long)k->counter);
    json_str(w, "originator", a);
    json_str(w, "recipient", b);
    if (k->date_time) json_hex(w, "date_time", k->date_time, SMKI_GBCS_DATETIME_LEN);
    json_int(w, "body_offset", (long long)k->body_offset);
    json_int(w, "body_octets", (long long)k->body_len);
    json_bool(w, "body_decoded", 0);
    json_close_obj(w);
}

static void inspect_json(json_w *w, const char *file, const smki_gbcs_msg *m)
{
    char a[SMKI_EUI64_TEXT_MAX], b[SMKI_EUI64_TEXT_MAX];
    json_str(w, "file", file);
    json_bool(w, "ok", 1);
    json_str(w, "kind", smki_gbcs_kind_name(m->kind));
    json_int(w, "octets", (long long)m->len);
    if (m->kind == SMKI_GBCS_BLOCK) {
        json_block(w, &m->block);
        return;
    }
    if (m->kind == SMKI_GBCS_CIPHERING) {
        json_key_obj(w, "ciphering");
        json_int(w, "security_control", m->security_control);
        json_int(w, "invocation_counter", m->invocation_counter);
        json_hex(w, "mac", m->mac, SMKI_GBCS_MAC_LEN);
        json_hex(w, "aad_header", m->aad_header, 6);
        json_int(w, "aad_offset", (long long)m->aad_offset);
        json_int(w, "aad_octets", (long long)m->aad_len);
        json_close_obj(w);
    }
    const smki_gbcs_signing *g = &m->gsa;
    eui(g->originator, a);
    eui(g->recipient, b);
    json_key_obj(w, "signing");
    json_int(w, "offset", (long long)g->offset);
    json_int(w, "octets", (long long)g->len);
    json_int(w, "cra", g->cra);
    json_str(w, "cra_name", smki_gbcs_cra_name(g->cra));
    json_int(w, "counter", (long long)g->counter);
    json_str(w, "originator", a);
    json_str(w, "recipient", b);
    if (g->date_time) json_hex(w, "date_time", g->date_time, SMKI_GBCS_DATETIME_LEN);
    char code[8];
    snprintf(code, sizeof code, "%04X", g->message_code);
    json_str(w, "message_code", code);
    json_hex(w, "other_info", g->other_info, g->other_info_len);
    if (g->supplementary_id) {
        eui(g->supplementary_id, a);
        json_str(w, "supplementary_id", a);
    }
    if (g->has_urp_counter) json_int(w, "supplementary_counter", (long long)g->urp_counter);
    if (g->urp_cert) json_hex(w, "certificate", g->urp_cert, g->urp_cert_len);
    if (g->other_info_rest) json_hex(w, "other_info_rest", g->other_info_rest, g->other_info_rest_len);
    json_hex(w, "content", g->content, g->content_len);
    json_str(w, "signature_state", g->sig_state == SMKI_GBCS_SIG_PRESENT  ? "present"
                                   : g->sig_state == SMKI_GBCS_SIG_ABSENT ? "absent"
                                                                          : "none");
    if (g->signature) json_hex(w, "signature", g->signature, SMKI_GBCS_SIG_LEN);
    json_int(w, "signed_offset", (long long)g->signed_offset);
    json_int(w, "signed_octets", (long long)g->signed_len);
    json_close_obj(w);
}

static void json_file_error(json_w *w, const char *file, int rc)
{
    json_str(w, "file", file);
    json_bool(w, "ok", 0);
    json_error(w, rc);
}

/* A message file ('-': standard input), hex text or binary. */
static int read_message(const char *path, uint8_t **out, size_t *out_len)
{
    uint8_t *raw = NULL;
    size_t n = 0;
    *out = NULL;
    GUARD(cli_read(path, 2 * (size_t)SMKI_GBCS_MAX_MSG + 4096, &raw, &n));
    int rc = smki_gbcs_decode_input(raw, n, out, out_len);
    free(raw);
    if (rc < 0) return smki_error_wrap("%s", path);
    return 0;
}

/* One file parsed and printed; returns its exit code. */
static int inspect_file(smki_cli *c, json_w *w, const char *file)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    smki_gbcs_msg m;
    int rc = read_message(file, &buf, &len);
    if (rc == 0) rc = smki_gbcs_parse(buf, len, &m);
    if (c->json) {
        json_arr_obj(w);
        if (rc == 0)
            inspect_json(w, file, &m);
        else
            json_file_error(w, file, rc);
        json_close_obj(w);
    } else if (rc == 0) {
        inspect_human(file, &m);
    } else {
        fprintf(stderr, "smki: %s: %s\n", file, smki_error_msg());
    }
    free(buf);
    return rc < 0 ? smki_error_exit_code(rc) : EXIT_OK;
}

static int gbcs_inspect(smki_cli *c, int argc, char **argv)
{
    const cli_spec spec = {"smki gbcs inspect", INSPECT_HELP, NULL, "at least one FILE", 1, (size_t)argc};
    const char **files = calloc((size_t)argc, sizeof *files);
    if (!files) return cli_fail(c, SMKI_FAIL(SMKI_E_NOMEM, "out of memory"));
    size_t n = 0;
    int stop = cli_parse(c, &spec, argc, argv, files, &n);
    if (stop != CLI_GO) {
        free(files);
        return stop;
    }
    json_w w;
    if (c->json) {
        json_begin(&w, stdout);
        json_key_arr(&w, "messages");
    }
    int failed = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        int e = inspect_file(c, &w, files[i]);
        if (e) failed++;
        if (e > worst) worst = e;
    }
    free(files);
    if (c->json) {
        json_close_arr(&w);
        json_bool(&w, "ok", failed == 0);
        json_int(&w, "failed", failed);
        json_end(&w);
    }
    return worst;
}

/* ---- sign --------------------------------------------------------------------------- */
/* --expect-counter MIN-MAX: both decimal, MIN <= MAX. */
static int parse_counter_window(const char *s, uint64_t *lo, uint64_t *hi)
{
    const char *dash = strchr(s, '-');
    ENSURE(dash && dash != s && dash[1], SMKI_E_USAGE, "--expect-counter '%s': give MIN-MAX (decimal)", s);
    char min[24];
    ENSURE((size_t)(dash - s) < sizeof min, SMKI_E_USAGE, "--expect-counter '%s': MIN is too long", s);
    snprintf(min, sizeof min, "%.*s", (int)(dash - s), s);
    GUARD(cli_number("--expect-counter MIN", min, 0, UINT64_MAX >> 1, lo));
    GUARD(cli_number("--expect-counter MAX", dash + 1, 0, UINT64_MAX >> 1, hi));
    ENSURE(*lo <= *hi, SMKI_E_USAGE, "--expect-counter '%s': MIN is above MAX", s);
    return 0;
}

/* --expect-code: a message code, 1 to 4 hex digits. */
static int parse_code(const char *s, uint16_t *out)
{
    size_t n = strlen(s);
    ENSURE(n >= 1 && n <= 4 && strspn(s, "0123456789abcdefABCDEF") == n, SMKI_E_USAGE,
           "--expect-code '%s': give 1-4 hex digits (e.g. 0019)", s);
    *out = (uint16_t)strtoul(s, NULL, 16);
    return 0;
}

static int write_message(const char *path, const uint8_t *p, size_t n, int binary, int force)
{
    if (binary) return cli_write(path, p, n, 0644, force);
    char *h = hexdup(p, n);
    ENSURE(h, SMKI_E_NOMEM, "out of memory");
    int rc = cli_write(path, h, 2 * n, 0644, force);
    free(h);
    return rc;
}

typedef struct {
    const char *key, *cert, *in, *out, *request, *request_trust, *code, *target, *counter;
    int binary, force;
} sign_opts;

static int sign_expect(const sign_opts *o, smki_gbcs_expect *e)
{
    memset(e, 0, sizeof *e);
    if (o->code) GUARD(parse_code(o->code, &e->code));
    if (o->target) GUARD(smki_eui64_parse(o->target, &e->target));
    if (o->counter) GUARD(parse_counter_window(o->counter, &e->counter_min, &e->counter_max));
    e->has_code = o->code != NULL;
    e->has_target = o->target != NULL;
    e->has_counter = o->counter != NULL;
    return 0;
}

static void print_signed(const smki_cli *c, const sign_opts *o, const smki_key *k, const smki_gbcs_msg *m)
{
    char a[SMKI_EUI64_TEXT_MAX], b[SMKI_EUI64_TEXT_MAX], code[8];
    eui(m->gsa.originator, a);
    eui(m->gsa.recipient, b);
    snprintf(code, sizeof code, "%04X", m->gsa.message_code);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "in", o->in);
        json_str(&w, "out", o->out);
        json_str(&w, "key", smki_key_ref(k));
        json_str(&w, "originator", a);
        json_str(&w, "recipient", b);
        json_str(&w, "message_code", code);
        json_int(&w, "counter", (long long)m->gsa.counter);
        json_int(&w, "signed_octets", (long long)m->gsa.signed_len);
        json_str(&w, "format", o->binary ? "binary" : "hex");
        json_end(&w);
    } else if (strcmp(o->out, "-") != 0) {
        printf("Signed %s as %s (message code %s, to %s, counter %" PRIu64 "): %zu signed octets, %s written to %s.\n",
               o->in, a, code, b, m->gsa.counter, m->gsa.signed_len, o->binary ? "binary" : "hex", o->out);
    }
}

static int sign_run(smki_cli *c, const sign_opts *o, const smki_gbcs_expect *e)
{
    uint8_t *pre = NULL, *signed_apdu = NULL;
    size_t pre_len = 0, slen = 0;
    X509 *cert = NULL;
    smki_key *k = NULL;
    smki_gbcs_msg m;
    int rc = read_message(o->in, &pre, &pre_len);
    if (rc == 0 && o->request) rc = check_request(o->request, o->request_trust, pre, pre_len);
    if (rc == 0) {
        rc = smki_cert_load_file(o->cert, &cert);
        if (rc < 0) smki_error_wrap("signing certificate %s", o->cert);
    }
    if (rc == 0) rc = cli_open_key(c, o->key, &k);
    if (rc == 0) rc = smki_gbcs_sign_as(k, cert, e, pre, pre_len, &signed_apdu, &slen);
    if (rc == 0) rc = smki_gbcs_parse(signed_apdu, slen, &m);
    if (rc == 0) rc = write_message(o->out, signed_apdu, slen, o->binary, o->force);
    if (rc == 0) print_signed(c, o, k, &m);
    smki_key_free(k);
    X509_free(cert);
    free(pre);
    free(signed_apdu);
    return rc;
}

static int gbcs_sign(smki_cli *c, int argc, char **argv)
{
    sign_opts o;
    memset(&o, 0, sizeof o);
    const cli_opt opts[] = {CLI_VALUE("key", &o.key),
                            CLI_VALUE("cert", &o.cert),
                            CLI_VALUE("in", &o.in),
                            CLI_VALUE("out", &o.out),
                            CLI_FLAG("binary", &o.binary),
                            CLI_FLAG("force", &o.force),
                            CLI_VALUE("expect-code", &o.code),
                            CLI_VALUE("expect-target", &o.target),
                            CLI_VALUE("expect-counter", &o.counter),
                            CLI_VALUE("request", &o.request),
                            CLI_VALUE("request-trust", &o.request_trust),
                            CLI_END};
    const cli_spec spec = {"smki gbcs sign", SIGN_HELP, opts, "no arguments", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!o.key || !o.cert || !o.in || !o.out)
        return cli_usage(c, "smki gbcs sign", "--key, --cert, --in and --out are required");
    if (!o.request != !o.request_trust)
        return cli_usage(c, "smki gbcs sign", "--request and --request-trust go together");
    if (c->json && strcmp(o.out, "-") == 0)
        return cli_usage(c, "smki gbcs sign", "--out - writes the message to standard output: not with --json");
    smki_gbcs_expect e;
    if (sign_expect(&o, &e) < 0) return cli_fail(c, SMKI_E_USAGE);
    return cli_finish(c, sign_run(c, &o, &e));
}

/* ---- verify ------------------------------------------------------------------------- */
typedef struct {
    int ok, d2d, failed;
    int kinds[4][2]; /* per CRA flag: verified, failed */
} verify_totals;

static const char *checked_name(const smki_gbcs_check *ck)
{
    if (ck->signature_checked && ck->mac_checked) return "signature and MAC";
    if (ck->signature_checked && ck->device_to_device) return "signature; MAC device-to-device";
    if (ck->signature_checked) return "signature";
    if (ck->mac_checked) return "MAC";
    return "device-to-device MAC";
}

static void verify_print(smki_cli *c, json_w *w, const char *file, const smki_gbcs_msg *m, int parsed,
                         const smki_gbcs_check *ck, int r)
{
    char from[SMKI_EUI64_TEXT_MAX] = "", to[SMKI_EUI64_TEXT_MAX] = "";
    smki_eui64_format(&ck->originator, SMKI_EUI64_PLAIN, from);
    smki_eui64_format(&ck->recipient, SMKI_EUI64_PLAIN, to);
    const char *kind = parsed ? smki_gbcs_cra_name(ck->cra) : "?";
    const char *verdict = r < 0 ? "fail" : ck->device_to_device && !ck->signature_checked ? "d2d" : "ok";
    if (c->json) {
        json_arr_obj(w);
        json_str(w, "file", file);
        json_bool(w, "ok", r == 0);
        json_str(w, "verdict", verdict);
        if (parsed) {
            json_str(w, "kind", kind);
            json_str(w, "originator", from);
            json_str(w, "recipient", to);
            char code[8];
            snprintf(code, sizeof code, "%04X", m->gsa.message_code);
            json_str(w, "message_code", code);
            json_int(w, "counter", (long long)m->gsa.counter);
        }
        json_bool(w, "signature", ck->signature_checked);
        json_bool(w, "mac", ck->mac_checked);
        json_bool(w, "device_to_device", ck->device_to_device);
        if (r < 0) {
            json_str(w, "reason", ck->reason);
            json_error(w, r);
        }
        json_close_obj(w);
        return;
    }
    if (r < 0) {
        printf("FAIL %s: %s%s%s: %s\n", file, parsed ? kind : "", parsed ? ", " : "", ck->reason, smki_error_msg());
        return;
    }
    printf("%-4s %s: %s, %s (%s -> %s, code %04X, counter %" PRIu64 ")\n", verdict, file, kind, checked_name(ck), from,
           to, m->gsa.message_code, m->gsa.counter);
}

/* Parse, verify, then the counters: a message that does not verify leaves no mark. */
static int verify_one(const char *file, const smki_gbcs_certdir *dir, const smki_gbcs_verify_opts *o,
                      smki_gbcs_counters *counters, smki_gbcs_msg *m, int *parsed, smki_gbcs_check *ck)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    memset(ck, 0, sizeof *ck);
    ck->reason = "structure.malformed";
    *parsed = 0;
    int r = read_message(file, &buf, &len);
    if (r == 0) r = smki_gbcs_parse(buf, len, m);
    if (r == 0) {
        *parsed = m->kind != SMKI_GBCS_BLOCK;
        r = smki_gbcs_verify_message(m, dir, o, ck);
    }
    int marks = r == 0 && counters && (ck->signature_checked || ck->mac_checked);
    if (marks) r = smki_gbcs_counters_check(counters, &m->gsa, &ck->reason);
    if (r == 0 && marks) r = smki_gbcs_counters_note(counters, &m->gsa);
    /* m points into buf: keep what the caller prints, not the bytes. */
    if (*parsed) {
        m->gsa.content = NULL;
        m->gsa.other_info = NULL;
    }
    free(buf);
    return r;
}

typedef struct {
    const char *trust, *acb, *at, *counters;
    cli_list rkeys;
} verify_args;

/* What verification needs open: the certificate folder, the ACB's and the recipients'
 * KA keys (each bound to its EUI-64 by DIR), the counters file. */
typedef struct {
    smki_gbcs_verify_opts o;
    smki_gbcs_certdir *dir;
    smki_gbcs_counters *counters;
    smki_key *keys[CLI_LIST_MAX];
    smki_gbcs_ka_key bound[CLI_LIST_MAX + 1];
} verify_ctx;

static int verify_open(smki_cli *c, const verify_args *a, verify_ctx *v)
{
    size_t nbound = 0;
    GUARD(smki_gbcs_time_parse(a->at ? a->at : "now", &v->o.at));
    GUARD(smki_gbcs_certdir_open(a->trust, &v->dir));
    if (a->acb) GUARD(cli_open_key(c, a->acb, &v->o.acb_ka));
    /* The ACB's key also checks responses addressed to the ACB, when DIR names it. */
    if (v->o.acb_ka) {
        if (smki_gbcs_ka_key_bind(v->dir, v->o.acb_ka, &v->bound[nbound]) == 0)
            nbound++;
        else
            smki_error_clear();
    }
    for (size_t i = 0; i < a->rkeys.n; i++) {
        GUARD(cli_open_key(c, a->rkeys.v[i], &v->keys[i]));
        GUARD(smki_gbcs_ka_key_bind(v->dir, v->keys[i], &v->bound[nbound]));
        nbound++;
    }
    v->o.recipient_keys = v->bound;
    v->o.nrecipient_keys = nbound;
    if (a->counters) GUARD(smki_gbcs_counters_open(a->counters, &v->counters));
    return 0;
}

static void verify_close(verify_ctx *v)
{
    smki_gbcs_counters_free(v->counters);
    for (size_t i = 0; i < CLI_LIST_MAX; i++) smki_key_free(v->keys[i]);
    smki_key_free(v->o.acb_ka);
    smki_gbcs_certdir_free(v->dir);
}

static void verify_files(smki_cli *c, json_w *w, verify_ctx *v, const char **files, size_t n, verify_totals *t)
{
    if (c->json) {
        json_begin(w, stdout);
        json_key_arr(w, "results");
    }
    for (size_t i = 0; i < n; i++) {
        smki_gbcs_msg m;
        smki_gbcs_check ck;
        int parsed = 0;
        int r = verify_one(files[i], v->dir, &v->o, v->counters, &m, &parsed, &ck);
        verify_print(c, w, files[i], &m, parsed, &ck, r);
        unsigned k = parsed && ck.cra <= 3 ? ck.cra : 0;
        t->kinds[k][r < 0]++;
        if (r < 0)
            t->failed++;
        else if (ck.device_to_device && !ck.signature_checked)
            t->d2d++;
        else
            t->ok++;
    }
}

static void verify_totals_print(smki_cli *c, json_w *w, const verify_totals *t, int rc)
{
    if (c->json && (rc == 0 || t->ok + t->d2d + t->failed > 0)) {
        /* The document is closed even when saving the counters failed (the error follows
         * on stderr): never half a JSON document on stdout. */
        json_close_arr(w);
        json_bool(w, "ok", t->failed == 0 && rc == 0);
        json_int(w, "passed", t->ok + t->d2d);
        json_int(w, "verified", t->ok);
        json_int(w, "device_to_device", t->d2d);
        json_int(w, "failed", t->failed);
        static const char *names[4] = {"unparsed", "commands", "responses", "alerts"};
        json_key_obj(w, "by_kind");
        for (int k = 0; k < 4; k++) {
            json_key_obj(w, names[k]);
            json_int(w, "passed", t->kinds[k][0]);
            json_int(w, "failed", t->kinds[k][1]);
            json_close_obj(w);
        }
        json_close_obj(w);
        json_end(w);
    } else if (rc == 0 && !c->json) {
        printf("%d passed, %d failed (%d verified, %d device-to-device; commands %d/%d, responses %d/%d, alerts "
               "%d/%d passed)\n",
               t->ok + t->d2d, t->failed, t->ok, t->d2d, t->kinds[1][0], t->kinds[1][0] + t->kinds[1][1],
               t->kinds[2][0], t->kinds[2][0] + t->kinds[2][1], t->kinds[3][0], t->kinds[3][0] + t->kinds[3][1]);
    }
}

static int gbcs_verify(smki_cli *c, int argc, char **argv)
{
    verify_args a;
    memset(&a, 0, sizeof a);
    const cli_opt opts[] = {CLI_VALUE("trust", &a.trust), CLI_VALUE("acb-key", &a.acb),
                            CLI_LIST("recipient-key", &a.rkeys), CLI_VALUE("counters", &a.counters),
                            CLI_VALUE("at", &a.at), CLI_END};
    const cli_spec spec = {"smki gbcs verify", VERIFY_HELP, opts, "at least one FILE", 1, (size_t)argc};
    const char **files = calloc((size_t)argc, sizeof *files);
    if (!files) return cli_fail(c, SMKI_FAIL(SMKI_E_NOMEM, "out of memory"));
    size_t n = 0;
    int stop = cli_parse(c, &spec, argc, argv, files, &n);
    if (stop == CLI_GO && !a.trust) stop = cli_usage(c, "smki gbcs verify", "--trust DIR is required");
    verify_ctx *v = stop == CLI_GO ? calloc(1, sizeof *v) : NULL;
    int rc = stop != CLI_GO ? 0 : v ? verify_open(c, &a, v) : SMKI_FAIL(SMKI_E_NOMEM, "out of memory");
    json_w w;
    verify_totals t = {0};
    if (stop == CLI_GO && rc == 0) {
        verify_files(c, &w, v, files, n, &t);
        if (v->counters) rc = smki_gbcs_counters_save(v->counters);
        verify_totals_print(c, &w, &t, rc);
    }
    if (v) verify_close(v);
    free(v);
    free(files);
    if (stop != CLI_GO) return stop;
    if (rc < 0) return cli_fail(c, rc);
    return t.failed ? EXIT_REFUSED : EXIT_OK;
}

int cmd_gbcs(smki_cli *c, int argc, char **argv)
{
    static const cli_cmd table[] = {
        {"inspect", gbcs_inspect, "print every field of GBCS message files (--json)"},
        {"sign", gbcs_sign, "sign a pre-command as the organisation of a DS certificate"},
        {"verify", gbcs_verify, "verify commands, responses and alerts: signatures and MACs"},
        {"gateway", cmd_gbcs_gateway, "the DCC User Gateway's checks, registry, thresholds, quarantine"},
        {NULL, NULL, NULL},
    };
    return cli_dispatch(c, table, argc - 1, argv + 1, "smki gbcs", ABOUT);
}
