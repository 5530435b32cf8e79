/* smki device: the GBCS device model. Its state (keys in the token, trust anchor cells,
 * floors) lives in the home's store; it receives commands and writes responses or
 * alerts. Plus two helpers for tests and demos that play the remote party and the ACB
 * (make-cs02b, make-command). Argument parsing and output only: the work is in gbcs/. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "device/device.h"
#include "gbcs/gbcs.h"

static const char ABOUT[] =
    "smki device: a GBCS device model (reference §5, §6).\n"
    "\n"
    "A device holds its own DS and KA keys (in the token), trust anchor cells (root,\n"
    "recovery, supplier, network operator, ACB, WAN provider, transitional CoS; DS or KA;\n"
    "management or prepayment top-up) and a sequence-number floor per Remote Party Role.\n"
    "It accepts a command only if it is the recipient (else alert A3), the ACB's MAC\n"
    "verifies with its own KA key, the signature verifies with the cell of the\n"
    "originator's role (else A2), the counter is above that role's floor (else refused\n"
    "as a replay) and the role may send that command (else A4). It acts on CS02a\n"
    "(credential details), CS02b (update security credentials, all or nothing) and CS02c\n"
    "(new key pair in the token and its PKCS#10 CSR).";

static const char CREATE_HELP[] =
    "Usage: smki device create --eui EUI64 [--csr-dir DIR]\n"
    "       smki device create --eui EUI64 --from-rtds KEYSTORE_DIR\n"
    "\n"
    "Create a device in the store. Its DS and KA key pairs are generated in the home's\n"
    "token (labels dev-<eui>-ds, dev-<eui>-ka; needs the user PIN). --csr-dir writes the\n"
    "CS02c-shaped CSRs of both keys there (<eui>-ds.csr, <eui>-ka.csr, DER) for\n"
    "'smki ca issue', and the KA public key (<eui>-ka.pub.pem). The KA key signs its CSR\n"
    "when it is made and is refused every signature after (CKA_SIGN cleared), so without\n"
    "--csr-dir its CSR is gone; CS02c keyAgreement makes a new KA key with a new CSR.\n"
    "Load its trust anchor cells next (smki device load-cell).\n"
    "\n"
    "--from-rtds makes the RTDS replay model of an RTDS device instead: its certificates\n"
    "and the RTDS remote parties' cells from the DCC's test keystore, and no private keys\n"
    "(the RTDS does not publish them). Such a device only receives in the named RTDS\n"
    "replay mode (smki device receive --rtds-replay-acb-key).\n"
    "\n"
    "Example:\n"
    "  smki device create --eui 00-DB-12-34-56-78-90-A0 --from-rtds ../shared/vectors/gbcs/keystore\n";

static const char LOAD_HELP[] =
    "Usage: smki device load-cell --eui EUI64 --cert FILE [--prepayment]\n"
    "\n"
    "Load (replace) one trust anchor cell from a certificate, as at manufacture: the\n"
    "cell's role comes from the certificate's OU, its usage from keyUsage (DS or KA; a\n"
    "self-signed root CA certificate fills the root cell). --prepayment puts a KA\n"
    "certificate in the prepayment top-up cell instead of the management one.\n";

static const char FLOOR_HELP[] =
    "Usage: smki device set-floor --eui EUI64 --role ROLE --floor N\n"
    "\n"
    "Set the sequence-number floor of a Remote Party Role (provisioning and tests).\n";

static const char SHOW_HELP[] =
    "Usage: smki device show --eui EUI64\n"
    "\n"
    "The device: its keys, its cells (role, usage, cell usage, subject EUI-64, SKI) and\n"
    "its floors.\n";

static const char RECEIVE_HELP[] =
    "Usage: smki device receive --eui EUI64 FILE [--out FILE] [--dry-run]\n"
    "                            [--rtds-replay-acb-key KEYFILE] [--at YYYY-MM-DD]\n"
    "\n"
    "Give the device a command (FILE: binary, or hex text as the RTDS files are). It is\n"
    "verified and acted on; the response (or, on a refusal, the alert) is written to\n"
    "--out as hex text. Prints the verdict, the checks and the CS02b per-cell outcomes.\n"
    "Exit 0 accepted; 2 refused (A2/A3/A4, replay, malformed) or the command failed.\n"
    "\n"
    "--rtds-replay-acb-key names the RTDS replay mode: the RTDS does not publish devices'\n"
    "private keys, so the MAC is recomputed from the ACB side with the ACB's published KA\n"
    "key. Refused on a device with its own keys; required on an RTDS model. --at sets the\n"
    "device's clock for time-based certificate checks (the RTDS certificates expired).\n"
    "Alert codes come from [device] alert_a2, alert_a3, alert_a4, alert_replay in\n"
    "smki.conf (hex; the GBCS table is not in the reference, defaults are placeholders).\n";

static const char CS02B_HELP[] =
    "Usage: smki device make-cs02b --mode MODE --seq N --replace CELL=CERTFILE... [--path CERTFILE...]\n"
    "                              [--new-floor N] [--other ROLE=N...] [--apply-time-checks] --out FILE\n"
    "\n"
    "Build CS02b content (DER) for tests and demos. MODE: 2 supplierBySupplier, 3\n"
    "networkOperatorByNetworkOperator, 4 accessControlBrokerByACB, 5\n"
    "wanProviderByWanProvider, 6 transitionalCoSByTransitionalCoS, 7\n"
    "supplierByTransitionalCoS, 8 anyExceptAbnormalRootByRecovery, 9 anyByContingency.\n"
    "CELL is ROLE[:ds|ka[:prepayment]], e.g. supplier:ds, 02:ka:prepayment.\n";

static const char COMMAND_HELP[] =
    "Usage: smki device make-command [--sign KEY] --from EUI64 --to EUI64 --counter N --code HEX\n"
    "                                (--content FILE | --content-hex HEX) [--acb-ka KEY --device-ka CERT]\n"
    "                                --out FILE\n"
    "       smki device make-command --wrap SIGNED --acb-ka KEY --device-ka CERT --out FILE\n"
    "\n"
    "Play the DCC, a remote party and the ACB for tests and demos. Without --sign: the\n"
    "pre-command (ending 00) for the remote party to sign ('smki gbcs sign'). With --sign\n"
    "KEY: the General Signing APDU signed with KEY (raw r||s over the octets after DF).\n"
    "With --acb-ka and --device-ka: wrapped in General Ciphering with the MAC the ACB's KA\n"
    "key and the device's KA certificate (or public key) give (without --sign: an\n"
    "unsigned, non-critical command such as CS02a from the ACB). --wrap: only that last\n"
    "step, over a signed APDU from a file. KEY: pkcs11: URI, file:PATH, or a label on the\n"
    "home's token. Written as hex text.\n"
    "\n"
    "Example (the demo's supplier -> ACB -> device):\n"
    "  smki device make-command --from 90-B3-D5-1F-30-01-00-00 --to 00-DB-12-34-56-78-90-B0 \\\n"
    "      --counter 1 --code 0019 --content-hex 0102 --out pre.hex\n"
    "  smki gbcs sign --key file:supplier-ds.key --cert supplier-ds.pem --in pre.hex --out signed.hex\n"
    "  smki device make-command --wrap signed.hex --acb-ka file:acb-ka.key --device-ka device-ka.pem --out cmd.hex\n";

/* ---- Helpers ------------------------------------------------------------------------------ */

static int open_store(smki_cli *c, smki_store **s)
{
    GUARD(cli_home(c));
    GUARD(smki_store_open(c->store_dir, NULL, s));
    int rc = smki_device_dbs(*s);
    if (rc < 0) {
        smki_store_close(*s);
        *s = NULL;
    }
    return rc;
}

static int write_hex(const char *path, const uint8_t *p, size_t n)
{
    char *t = malloc(2 * n + 2);
    ENSURE(t != NULL, SMKI_E_NOMEM, "output");
    smki_hex_encode(p, n, t, 1);
    t[2 * n] = '\n';
    int rc = smki_file_write_atomic(path, t, 2 * n + 1, 0644, 0);
    free(t);
    return rc;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 0);
    ENSURE(s[0] != '-' && end && *end == 0 && end != s, SMKI_E_USAGE, "'%s' is not a number", s);
    *out = v;
    return 0;
}

static void hex8(const uint8_t b[8], char out[17])
{
    smki_hex_encode(b, 8, out, 1);
}

/* A KA key in the token may derive but not sign (hsm: CKA_SIGN false), so it cannot
 * sign its own CSR: its public key is written instead (the ACB needs only that). */
static int write_ka_pub(smki_cli *c, const char *dir, const smki_eui64_t *eui)
{
    char hex[17], label[64], ref[SMKI_KEY_URI_MAX], path[4200];
    EVP_PKEY *pub = NULL;
    char *pem = NULL;
    size_t len = 0;
    smki_hex_encode(eui->b, 8, hex, 0);
    snprintf(label, sizeof label, "dev-%s-ka", hex);
    GUARD(cli_key_ref(c, label, ref, sizeof ref));
    GUARD(smki_key_public_load(ref, &c->hsm, &pub));
    int rc = smki_pub_to_pem(pub, &pem, &len);
    EVP_PKEY_free(pub);
    GUARD(rc);
    snprintf(path, sizeof path, "%s/%s-ka.pub.pem", dir, hex);
    rc = smki_file_write_atomic(path, pem, len, 0644, 0);
    free(pem);
    if (rc == 0 && !c->json) printf("wrote %s\n", path);
    return rc;
}

/* ---- create -------------------------------------------------------------------------------- */

static int write_csr(smki_cli *c, const char *dir, const smki_eui64_t *eui, smki_key_usage usage)
{
    char hex[17], label[64], ref[SMKI_KEY_URI_MAX], path[4200];
    smki_key *k = NULL;
    uint8_t *der = NULL;
    size_t len = 0;
    smki_hex_encode(eui->b, 8, hex, 0);
    snprintf(label, sizeof label, "dev-%s-%s", hex, usage == SMKI_USAGE_DS ? "ds" : "ka");
    GUARD(cli_key_ref(c, label, ref, sizeof ref));
    GUARD(smki_key_open(ref, &c->hsm, &k));
    const smki_env *env = smki_env_builtin("test");
    int rc = smki_cs02c_csr(k, usage, eui, env->hw_type, &der, &len);
    smki_key_free(k);
    GUARD(rc);
    snprintf(path, sizeof path, "%s/%s-%s.csr", dir, hex, usage == SMKI_USAGE_DS ? "ds" : "ka");
    rc = smki_file_write_atomic(path, der, len, 0644, 0);
    free(der);
    if (rc == 0 && !c->json) printf("wrote %s\n", path);
    return rc;
}

/* The KA key signed its CSR when it was made (and can sign nothing since). */
static int write_ka_csr(smki_cli *c, const char *dir, const smki_eui64_t *eui, const uint8_t *der, size_t len)
{
    char hex[17], path[4200];
    smki_hex_encode(eui->b, 8, hex, 0);
    snprintf(path, sizeof path, "%s/%s-ka.csr", dir, hex);
    int rc = smki_file_write_atomic(path, der, len, 0644, 0);
    if (rc == 0 && !c->json) printf("wrote %s\n", path);
    return rc;
}

static int dev_create(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, CREATE_HELP)) return EXIT_OK;
    static const struct option opts[] = {{"eui", required_argument, NULL, 'e'},
                                         {"from-rtds", required_argument, NULL, 'r'},
                                         {"csr-dir", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    const char *eui_text = NULL, *rtds = NULL, *csr_dir = NULL;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'e') eui_text = optarg;
        else if (ch == 'r') rtds = optarg;
        else if (ch == 'c') csr_dir = optarg;
        else return cli_usage(c, "smki device create", "unknown option or missing value: %s", cli_bad_option(argv));
    }
    if (optind != argc) return cli_usage(c, "smki device create", "unexpected argument '%s'", argv[optind]);
    if (!eui_text) return cli_usage(c, "smki device create", "--eui is required");
    if (rtds && csr_dir) return cli_usage(c, "smki device create", "--csr-dir needs a device with its own keys");
    c->may_create_home = 1; /* a device model's home starts with its first device */
    smki_eui64_t eui;
    int rc = smki_eui64_parse(eui_text, &eui);
    if (rc < 0) return cli_fail(c, rc);
    smki_store *s = NULL;
    rc = open_store(c, &s);
    if (rc == 0 && rtds) {
        rc = smki_device_create_rtds(s, &eui, rtds);
    } else if (rc == 0) {
        rc = cli_pin(c, 1);
        uint8_t *ka_csr = NULL;
        size_t ka_csr_len = 0;
        if (rc >= 0) {
            smki_device_keys_opts ko = {c->token, &c->hsm, &ka_csr, &ka_csr_len};
            rc = smki_device_create(s, &eui, &ko);
        }
        if (rc >= 0 && csr_dir) rc = smki_mkdirs(csr_dir, 0755);
        if (rc >= 0 && csr_dir) rc = write_csr(c, csr_dir, &eui, SMKI_USAGE_DS);
        if (rc >= 0 && csr_dir) rc = write_ka_csr(c, csr_dir, &eui, ka_csr, ka_csr_len);
        if (rc >= 0 && csr_dir) rc = write_ka_pub(c, csr_dir, &eui);
        free(ka_csr);
    }
    smki_store_close(s);
    if (rc < 0) return cli_fail(c, rc);
    char t[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(&eui, SMKI_EUI64_HYPHEN, t);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_str(&w, "device", t);
        json_str(&w, "kind", rtds ? "rtds-replay-model" : "own-keys");
        json_end(&w);
    } else {
        printf("device %s created (%s)\n", t, rtds ? "RTDS replay model: RTDS cells, no private keys" : "DS and KA keys in the token");
    }
    return EXIT_OK;
}

/* ---- load-cell, set-floor ------------------------------------------------------------------ */

static int dev_load_cell(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, LOAD_HELP)) return EXIT_OK;
    static const struct option opts[] = {{"eui", required_argument, NULL, 'e'},
                                         {"cert", required_argument, NULL, 'c'},
                                         {"prepayment", no_argument, NULL, 'p'},
                                         {NULL, 0, NULL, 0}};
    const char *eui_text = NULL, *cert = NULL;
    int ch, prepay = 0;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'e') eui_text = optarg;
        else if (ch == 'c') cert = optarg;
        else if (ch == 'p') prepay = 1;
        else return cli_usage(c, "smki device load-cell", "unknown option or missing value: %s", cli_bad_option(argv));
    }
    if (!eui_text || !cert) return cli_usage(c, "smki device load-cell", "--eui and --cert are required");
    smki_eui64_t eui;
    smki_ta_cell *cell = calloc(1, sizeof *cell);
    uint8_t *data = NULL;
    size_t len = 0;
    smki_store *s = NULL;
    int rc = cell ? smki_eui64_parse(eui_text, &eui) : SMKI_FAIL(SMKI_E_NOMEM, "cell");
    if (rc == 0) rc = smki_file_read(cert, 1u << 16, &data, &len);
    if (rc == 0) rc = smki_cell_from_cert(data, len, prepay ? SMKI_CELL_PREPAYMENT : SMKI_CELL_MANAGEMENT, cell);
    if (rc == 0) rc = open_store(c, &s);
    if (rc == 0) rc = smki_device_load_cell(s, &eui, cell);
    smki_store_close(s);
    free(data);
    if (rc < 0) {
        free(cell);
        return cli_fail(c, rc);
    }
    char id[64], ski[17], sub[17];
    smki_cell_id_format(&cell->id, id, sizeof id);
    hex8(cell->ski, ski);
    hex8(cell->subject_id, sub);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_str(&w, "cell", id);
        json_str(&w, "subject", sub);
        json_str(&w, "ski", ski);
        json_end(&w);
    } else {
        printf("cell %s loaded: subject %s, SKI %s\n", id, sub, ski);
    }
    free(cell);
    return EXIT_OK;
}

static int dev_set_floor(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, FLOOR_HELP)) return EXIT_OK;
    static const struct option opts[] = {{"eui", required_argument, NULL, 'e'},
                                         {"role", required_argument, NULL, 'r'},
                                         {"floor", required_argument, NULL, 'f'},
                                         {NULL, 0, NULL, 0}};
    const char *eui_text = NULL, *role_text = NULL, *floor_text = NULL;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'e') eui_text = optarg;
        else if (ch == 'r') role_text = optarg;
        else if (ch == 'f') floor_text = optarg;
        else return cli_usage(c, "smki device set-floor", "unknown option or missing value: %s", cli_bad_option(argv));
    }
    if (!eui_text || !role_text || !floor_text)
        return cli_usage(c, "smki device set-floor", "--eui, --role and --floor are required");
    smki_eui64_t eui;
    uint8_t role;
    uint64_t floor = 0;
    smki_store *s = NULL;
    int rc = smki_eui64_parse(eui_text, &eui);
    if (rc == 0) rc = smki_role_parse(role_text, &role);
    if (rc == 0) rc = parse_u64(floor_text, &floor);
    if (rc < 0) return cli_fail(c, rc);
    rc = open_store(c, &s);
    if (rc == 0) rc = smki_device_set_floor(s, &eui, role, floor);
    smki_store_close(s);
    if (rc < 0) return cli_fail(c, rc);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_str(&w, "role", smki_role_name(role));
        json_int(&w, "floor", (long long)floor);
        json_end(&w);
    } else {
        printf("floor of %s set to %llu\n", smki_role_name(role), (unsigned long long)floor);
    }
    return EXIT_OK;
}

/* ---- show --------------------------------------------------------------------------------- */

static int dev_show(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, SHOW_HELP)) return EXIT_OK;
    static const struct option opts[] = {{"eui", required_argument, NULL, 'e'}, {NULL, 0, NULL, 0}};
    const char *eui_text = NULL;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'e') eui_text = optarg;
        else return cli_usage(c, "smki device show", "unknown option or missing value: %s", cli_bad_option(argv));
    }
    if (!eui_text) return cli_usage(c, "smki device show", "--eui is required");
    smki_eui64_t eui;
    smki_store *s = NULL;
    smki_device *d = NULL;
    smki_device_info *info = calloc(1, sizeof *info);
    int rc = info ? smki_eui64_parse(eui_text, &eui) : SMKI_FAIL(SMKI_E_NOMEM, "info");
    if (rc == 0) rc = open_store(c, &s);
    if (rc == 0) rc = smki_device_open(s, &eui, &c->hsm, &d);
    if (rc == 0) rc = smki_device_describe(d, info);
    if (rc < 0) {
        smki_device_free(d);
        smki_store_close(s);
        free(info);
        return cli_fail(c, rc);
    }
    char t[SMKI_EUI64_TEXT_MAX], id[64], ski[17], sub[17];
    smki_eui64_format(&eui, SMKI_EUI64_HYPHEN, t);
    json_w w;
    if (c->json) {
        json_begin(&w, stdout);
        json_str(&w, "device", t);
        json_str(&w, "kind", info->flags & SMKI_DEVICE_FLAG_RTDS ? "rtds-replay-model" : "own-keys");
        json_str(&w, "ds_key", info->ds_ref);
        json_str(&w, "ka_key", info->ka_ref);
        json_int(&w, "alert_counter", (long long)info->alert_counter);
        json_key_arr(&w, "cells");
    } else {
        printf("device %s (%s)\n  DS key %s\n  KA key %s\n  cells:\n", t,
               info->flags & SMKI_DEVICE_FLAG_RTDS ? "RTDS replay model" : "own keys", info->ds_ref, info->ka_ref);
    }
    for (size_t i = 0; i < info->ncells; i++) {
        const smki_ta_cell *cell = &info->cells[i];
        smki_cell_id_format(&cell->id, id, sizeof id);
        hex8(cell->ski, ski);
        hex8(cell->subject_id, sub);
        if (c->json) {
            json_arr_obj(&w);
            json_int(&w, "role", cell->id.role);
            json_str(&w, "cell", id);
            json_str(&w, "subject", sub);
            json_str(&w, "ski", ski);
            json_bool(&w, "has_key", cell->has_key);
            json_close_obj(&w);
        } else {
            printf("    %-34s subject %s SKI %s%s\n", id, sub, ski, cell->has_key ? "" : " (anchor by SKI only)");
        }
    }
    if (c->json) {
        json_close_arr(&w);
        json_key_obj(&w, "floors");
    } else {
        printf("  floors:\n");
    }
    for (int r = 0; r < 256; r++) {
        if (!info->has_floor[r]) continue;
        if (c->json)
            json_int(&w, smki_role_name((unsigned)r), (long long)info->floors[r]);
        else
            printf("    %-20s %llu\n", smki_role_name((unsigned)r), (unsigned long long)info->floors[r]);
    }
    if (c->json) {
        json_close_obj(&w);
        json_end(&w);
    }
    smki_device_free(d);
    smki_store_close(s);
    free(info);
    return EXIT_OK;
}

/* ---- receive ------------------------------------------------------------------------------- */

/* --at YYYY-MM-DD (receive, run-due): the time, midnight UTC, the certificate checks run at; no
 * --at leaves *now as it is. Returns the usage error's exit code, -1 when fine. */
static int parse_at(smki_cli *c, const char *prog, const char *at, time_t *now)
{
    if (!at) return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    char tail = 0;
    if (sscanf(at, "%4d-%2d-%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tail) != 3 || tm.tm_mon < 1 ||
        tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31)
        return cli_usage(c, prog, "--at '%s' is not YYYY-MM-DD", at);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *now = timegm(&tm);
    return -1;
}

static uint16_t conf_alert(smki_cli *c, const char *key, uint16_t fallback)
{
    const char *v = smki_conf_get(c->conf, key, NULL);
    if (!v) return fallback;
    unsigned long x = strtoul(v, NULL, 16);
    return x > 0 && x <= 0xFFFF ? (uint16_t)x : fallback;
}

static int dev_receive(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, RECEIVE_HELP)) return EXIT_OK;
    static const struct option opts[] = {{"eui", required_argument, NULL, 'e'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"rtds-replay-acb-key", required_argument, NULL, 'r'},
                                         {"at", required_argument, NULL, 'a'},
                                         {NULL, 0, NULL, 0}};
    const char *eui_text = NULL, *out = NULL, *acb = NULL, *at = NULL;
    int ch, dry = 0;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'e') eui_text = optarg;
        else if (ch == 'o') out = optarg;
        else if (ch == 'n') dry = 1;
        else if (ch == 'r') acb = optarg;
        else if (ch == 'a') at = optarg;
        else return cli_usage(c, "smki device receive", "unknown option or missing value: %s", cli_bad_option(argv));
    }
    if (!eui_text || optind != argc - 1) return cli_usage(c, "smki device receive", "--eui and one FILE are required");
    smki_rx_opts o;
    smki_rx_opts_default(&o);
    o.dry_run = dry;
    int bad_at = parse_at(c, "smki device receive", at, &o.now);
    if (bad_at >= 0) return bad_at;
    smki_eui64_t eui;
    smki_store *s = NULL;
    smki_device *d = NULL;
    smki_key *acb_key = NULL;
    uint8_t *msg = NULL;
    size_t len = 0;
    smki_rx_result *r = calloc(1, sizeof *r);
    int rc = r ? smki_eui64_parse(eui_text, &eui) : SMKI_FAIL(SMKI_E_NOMEM, "result");
    if (rc == 0) rc = smki_gbcs_read_file(argv[optind], &msg, &len);
    if (rc == 0) rc = open_store(c, &s);
    if (rc == 0) {
        o.alert_a2 = conf_alert(c, "device.alert_a2", o.alert_a2);
        o.alert_a3 = conf_alert(c, "device.alert_a3", o.alert_a3);
        o.alert_a4 = conf_alert(c, "device.alert_a4", o.alert_a4);
        o.alert_replay = conf_alert(c, "device.alert_replay", o.alert_replay);
    }
    if (rc == 0 && acb) {
        char ref[4200];
        snprintf(ref, sizeof ref, "file:%s", acb);
        o.mac_mode = SMKI_MAC_RTDS_REPLAY;
        rc = smki_key_open(ref, NULL, &acb_key);
        o.rtds_acb_ka = acb_key;
    } else if (rc == 0) {
        rc = cli_pin(c, 0);
        if (rc > 0) rc = 0;
    }
    if (rc == 0) rc = smki_device_open(s, &eui, &c->hsm, &d);
    if (rc == 0) rc = smki_device_receive(d, s, msg, len, &o, r);
    if (rc == 0 && out && r->out) rc = write_hex(out, r->out, r->out_len);
    smki_device_free(d);
    smki_key_free(acb_key);
    smki_store_close(s);
    free(msg);
    if (rc < 0) {
        if (r) smki_rx_result_clear(r);
        free(r);
        return cli_fail(c, rc);
    }
    char from[SMKI_EUI64_TEXT_MAX], id[64], a[17], b[17];
    smki_eui64_format(&r->originator, SMKI_EUI64_HYPHEN, from);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_str(&w, "verdict", smki_rx_verdict_name(r->verdict));
        json_str(&w, "reason", r->reason);
        json_str(&w, "originator", from);
        json_int(&w, "counter", (long long)r->counter);
        json_int(&w, "message_code", r->message_code);
        json_str(&w, "role", r->role >= 0 ? smki_role_name((unsigned)r->role) : "");
        json_str(&w, "mac_check", r->mac_check ? r->mac_check : "none");
        json_str(&w, "action", r->action ? r->action : "");
        json_bool(&w, "applied", r->applied);
        json_int(&w, "alert_code", r->alert_code);
        json_str(&w, "output", r->out ? (r->out_is_alert ? "alert" : "response") : "");
        json_bool(&w, "output_signed", r->out_signed);
        json_bool(&w, "output_maced", r->out_maced);
        if (r->noutcomes) {
            json_int(&w, "mode", r->mode);
            json_key_arr(&w, "outcomes");
            for (size_t i = 0; i < r->noutcomes; i++) {
                smki_cell_id_format(&r->outcomes[i].id, id, sizeof id);
                json_arr_obj(&w);
                json_str(&w, "cell", id);
                json_int(&w, "status", r->outcomes[i].status);
                json_str(&w, "why", r->outcomes[i].why);
                hex8(r->outcomes[i].old_ski, a);
                hex8(r->outcomes[i].new_ski, b);
                json_str(&w, "old_ski", a);
                json_str(&w, "new_ski", b);
                json_close_obj(&w);
            }
            json_close_arr(&w);
        }
        json_end(&w);
    } else {
        printf("%s: %s\n", smki_rx_verdict_name(r->verdict), r->reason[0] ? r->reason : "all checks passed");
        printf("  from %s counter %llu message code 0x%04X role %s; MAC checked: %s\n", from,
               (unsigned long long)r->counter, r->message_code, r->role >= 0 ? smki_role_name((unsigned)r->role) : "-",
               r->mac_check ? r->mac_check : "none");
        if (r->action) printf("  action %s%s\n", r->action, r->applied ? " (applied)" : "");
        for (size_t i = 0; i < r->noutcomes; i++) {
            smki_cell_id_format(&r->outcomes[i].id, id, sizeof id);
            printf("  cell %-34s status %3u %s\n", id, r->outcomes[i].status, r->outcomes[i].why);
        }
        if (r->alert_code) printf("  alert 0x%04X\n", r->alert_code);
        if (r->out && out) printf("  %s written to %s (%s%s)\n", r->out_is_alert ? "alert" : "response", out,
                                  r->out_signed ? "signed" : "unsigned: no DS key",
                                  r->out_maced ? ", MACed for the recipient's KA cell" : "");
    }
    int code = r->verdict == SMKI_RX_ACCEPTED ? EXIT_OK : EXIT_REFUSED;
    smki_rx_result_clear(r);
    free(r);
    return code;
}

/* ---- run-due ---------------------------------------------------------------------------------- */
static const char RUN_DUE_HELP[] =
    "Usage: smki device run-due --eui EUI64 [--at YYYY-MM-DD] [--out-dir DIR] [--dry-run]\n"
    "\n"
    "Run the device's future-dated commands whose executionDateTime has come (at --at,\n"
    "default now): a CS02b received with an executionDateTime ahead was verified, answered\n"
    "SEQUENCE { NULL } and kept; now it is checked against the cells as they are, applied\n"
    "or not (all or nothing), and answered by a signed alert to its originator: 8F66\n"
    "success or 8F67 (a replacement refused), as the RTDS alerts. Alerts are written to\n"
    "DIR as alert-<counter>.hex. Exit 0 when every due command was applied (or none was\n"
    "due), 2 when one failed.\n"
    "\n"
    "Example:\n"
    "  smki device run-due --eui 00-DB-12-34-56-78-90-A0 --at 2030-01-16 --out-dir alerts\n";

static int dev_run_due(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, RUN_DUE_HELP)) return EXIT_OK;
    static const struct option opts[] = {{"eui", required_argument, NULL, 'e'},
                                         {"at", required_argument, NULL, 'a'},
                                         {"out-dir", required_argument, NULL, 'o'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {NULL, 0, NULL, 0}};
    const char *eui_text = NULL, *at = NULL, *dir = NULL;
    int ch, dry = 0;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'e') eui_text = optarg;
        else if (ch == 'a') at = optarg;
        else if (ch == 'o') dir = optarg;
        else if (ch == 'n') dry = 1;
        else return cli_usage(c, "smki device run-due", "unknown option or missing value: %s", cli_bad_option(argv));
    }
    if (!eui_text || optind != argc) return cli_usage(c, "smki device run-due", "--eui is required, nothing else");
    smki_rx_opts o;
    smki_rx_opts_default(&o);
    o.dry_run = dry;
    int bad_at = parse_at(c, "smki device run-due", at, &o.now);
    if (bad_at >= 0) return bad_at;
    enum { CAP = 64 };
    smki_rx_result *res = calloc(CAP, sizeof *res);
    smki_eui64_t eui;
    smki_store *s = NULL;
    smki_device *d = NULL;
    size_t n = 0;
    int rc = res ? smki_eui64_parse(eui_text, &eui) : SMKI_FAIL(SMKI_E_NOMEM, "results");
    if (rc == 0) rc = open_store(c, &s);
    if (rc == 0) {
        rc = cli_pin(c, 0);
        if (rc > 0) rc = 0;
    }
    if (rc == 0) rc = smki_device_open(s, &eui, &c->hsm, &d);
    if (rc == 0) {
        /* An RTDS model's root cell is an anchor by SKI only: its certification paths are
         * judged as in the named RTDS replay mode. */
        smki_device_info info;
        rc = smki_device_describe(d, &info);
        if (rc == 0 && (info.flags & SMKI_DEVICE_FLAG_RTDS)) o.mac_mode = SMKI_MAC_RTDS_REPLAY;
    }
    if (rc == 0) rc = smki_device_run_due(d, s, &o, res, CAP, &n);
    int failed = 0;
    json_w w;
    if (rc == 0 && c->json) {
        json_begin(&w, stdout);
        json_key_arr(&w, "executed");
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        smki_rx_result *r = &res[i];
        char path[4200] = "";
        if (dir && r->out) {
            snprintf(path, sizeof path, "%s/alert-%llu.hex", dir, (unsigned long long)r->counter);
            rc = write_hex(path, r->out, r->out_len);
        }
        failed |= r->verdict != SMKI_RX_ACCEPTED;
        if (c->json) {
            json_arr_obj(&w);
            json_int(&w, "counter", (long long)r->counter);
            json_int(&w, "message_code", r->message_code);
            json_int(&w, "executed", (long long)r->executed);
            json_str(&w, "verdict", smki_rx_verdict_name(r->verdict));
            json_bool(&w, "applied", r->applied);
            json_int(&w, "alert_code", r->alert_code);
            json_bool(&w, "alert_signed", r->out_signed);
            if (path[0]) json_str(&w, "alert", path);
            json_close_obj(&w);
        } else {
            printf("counter %llu (message code 0x%04X): %s, alert 0x%04X%s%s\n", (unsigned long long)r->counter,
                   r->message_code, r->applied ? "applied" : r->reason, r->alert_code, path[0] ? " written to " : "",
                   path);
        }
    }
    if (rc == 0 && c->json) {
        json_close_arr(&w);
        json_bool(&w, "ok", !failed);
        json_end(&w);
    } else if (rc == 0 && n == 0) {
        printf("Nothing due.\n");
    }
    for (size_t i = 0; res && i < n; i++) smki_rx_result_clear(&res[i]);
    free(res);
    smki_device_free(d);
    smki_store_close(s);
    if (rc < 0) return cli_fail(c, rc);
    return failed ? EXIT_REFUSED : EXIT_OK;
}

/* ---- make-cs02b, make-command ------------------------------------------------------------- */

static int dev_make_cs02b(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, CS02B_HELP)) return EXIT_OK;
    static const struct option opts[] = {{"mode", required_argument, NULL, 'm'},
                                         {"seq", required_argument, NULL, 's'},
                                         {"replace", required_argument, NULL, 'r'},
                                         {"path", required_argument, NULL, 'p'},
                                         {"new-floor", required_argument, NULL, 'f'},
                                         {"other", required_argument, NULL, 'x'},
                                         {"apply-time-checks", no_argument, NULL, 't'},
                                         {"out", required_argument, NULL, 'o'},
                                         {NULL, 0, NULL, 0}};
    smki_cs02b_request *q = calloc(1, sizeof *q);
    uint8_t *bufs[16] = {0};
    size_t nb = 0;
    const char *out = NULL;
    int ch, rc = q ? 0 : SMKI_FAIL(SMKI_E_NOMEM, "request");
    uint64_t v;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'm') {
            rc = parse_u64(optarg, &v);
            if (rc == 0) q->mode = (uint8_t)v;
        } else if (ch == 's') {
            rc = parse_u64(optarg, &q->auth_seq);
        } else if (ch == 'f') {
            rc = parse_u64(optarg, &q->new_floor);
            q->has_new_floor = 1;
        } else if (ch == 't') {
            q->apply_time_checks = 1;
        } else if (ch == 'o') {
            out = optarg;
        } else if (ch == 'x') {
            char *eq = strchr(optarg, '=');
            if (!eq || q->nother >= 8) {
                rc = SMKI_FAIL(SMKI_E_USAGE, "--other '%s' is not ROLE=N", optarg);
                break;
            }
            *eq = 0;
            rc = smki_role_parse(optarg, &q->other[q->nother].role);
            if (rc == 0) rc = parse_u64(eq + 1, &q->other[q->nother].floor);
            q->nother++;
        } else if (ch == 'r' || ch == 'p') {
            char *file = optarg;
            smki_ta_cell_id id = {0, 0, 0};
            if (ch == 'r') {
                char *eq = strchr(optarg, '=');
                if (!eq || q->nrepl >= SMKI_CS02B_MAX_REPLACEMENTS) {
                    rc = SMKI_FAIL(SMKI_E_USAGE, "--replace '%s' is not CELL=CERTFILE", optarg);
                    break;
                }
                *eq = 0;
                file = eq + 1;
                rc = smki_cell_id_parse(optarg, &id);
            }
            if (rc == 0 && (nb >= 16 || (ch == 'p' && q->npath >= 4))) rc = SMKI_FAIL(SMKI_E_USAGE, "too many certificates");
            smki_ta_cell *cell = rc == 0 ? calloc(1, sizeof *cell) : NULL;
            uint8_t *data = NULL;
            size_t len = 0;
            if (rc == 0) rc = cell ? smki_file_read(file, 1u << 16, &data, &len) : SMKI_FAIL(SMKI_E_NOMEM, "cell");
            if (rc == 0 && ch == 'r') rc = smki_cell_from_cert(data, len, id.cell_usage, cell);
            if (rc == 0 && ch == 'p') { /* a CA certificate: no cell, its DER as it is */
                rc = smki_cert_der(data, len, cell->cert, SMKI_CELL_CERT_MAX, &cell->cert_len);
                if (rc < 0) smki_error_wrap("%s", file);
            }
            free(data);
            if (rc == 0) {
                bufs[nb] = malloc(cell->cert_len);
                if (!bufs[nb]) rc = SMKI_FAIL(SMKI_E_NOMEM, "certificate");
            }
            if (rc == 0) {
                memcpy(bufs[nb], cell->cert, cell->cert_len);
                if (ch == 'r') {
                    q->repl[q->nrepl].cert = bufs[nb];
                    q->repl[q->nrepl].len = cell->cert_len;
                    q->repl[q->nrepl++].target = id;
                } else {
                    q->path[q->npath].cert = bufs[nb];
                    q->path[q->npath++].len = cell->cert_len;
                }
                nb++;
            }
            free(cell);
        } else {
            rc = SMKI_FAIL(SMKI_E_USAGE, "unknown option or missing value: %s", cli_bad_option(argv));
        }
    }
    uint8_t *der = NULL;
    size_t len = 0;
    if (rc == 0 && (!out || q->mode < 2 || q->mode > 9 || q->nrepl == 0))
        rc = SMKI_FAIL(SMKI_E_USAGE, "--mode 2..9, at least one --replace and --out are required");
    if (rc == 0) rc = smki_cs02b_build(q, &der, &len);
    if (rc == 0) rc = smki_file_write_atomic(out, der, len, 0644, 0);
    for (size_t i = 0; i < nb; i++) free(bufs[i]);
    free(q);
    free(der);
    if (rc < 0) return cli_fail(c, rc);
    if (!c->json) printf("CS02b content (%zu octets) written to %s\n", len, out);
    else {
        json_w w;
        json_begin(&w, stdout);
        json_str(&w, "out", out);
        json_int(&w, "octets", (long long)len);
        json_end(&w);
    }
    return EXIT_OK;
}

static int dev_make_command(smki_cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv, COMMAND_HELP)) return EXIT_OK;
    static const struct option opts[] = {
        {"sign", required_argument, NULL, 's'},    {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},      {"counter", required_argument, NULL, 'n'},
        {"code", required_argument, NULL, 'c'},    {"content", required_argument, NULL, 'C'},
        {"content-hex", required_argument, NULL, 'H'}, {"acb-ka", required_argument, NULL, 'a'},
        {"device-ka", required_argument, NULL, 'd'}, {"out", required_argument, NULL, 'o'},
        {"wrap", required_argument, NULL, 'w'},    {NULL, 0, NULL, 0}};
    const char *sign = NULL, *from = NULL, *to = NULL, *counter = NULL, *code = NULL, *content = NULL, *chex = NULL,
               *acb = NULL, *dka = NULL, *out = NULL, *wrap = NULL;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 's': sign = optarg; break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'n': counter = optarg; break;
        case 'c': code = optarg; break;
        case 'C': content = optarg; break;
        case 'H': chex = optarg; break;
        case 'a': acb = optarg; break;
        case 'd': dka = optarg; break;
        case 'o': out = optarg; break;
        case 'w': wrap = optarg; break;
        default: return cli_usage(c, "smki device make-command", "unknown option or missing value: %s", cli_bad_option(argv));
        }
    }
    if (wrap) {
        if (!acb || !dka || !out || sign || from || to || counter || code || content || chex)
            return cli_usage(c, "smki device make-command", "--wrap takes --acb-ka, --device-ka and --out only");
        uint8_t *gs = NULL, *msg = NULL;
        size_t gs_len = 0, msg_len = 0;
        smki_key *ka = NULL;
        EVP_PKEY *dev = NULL;
        int rc = cli_home(c);
        if (rc == 0) rc = smki_gbcs_read_file(wrap, &gs, &gs_len);
        if (rc == 0) {
            rc = cli_pin(c, 0);
            if (rc > 0) rc = 0;
        }
        if (rc == 0) rc = cli_open_key(c, acb, &ka);
        if (rc == 0) rc = smki_pub_load_file(dka, &dev);
        if (rc == 0) rc = smki_gbcs_wrap(gs, gs_len, ka, dev, 0, &msg, &msg_len);
        if (rc == 0) rc = write_hex(out, msg, msg_len);
        smki_key_free(ka);
        EVP_PKEY_free(dev);
        free(gs);
        free(msg);
        if (rc < 0) return cli_fail(c, rc);
        if (c->json) {
            json_w w;
            json_begin(&w, stdout);
            json_str(&w, "out", out);
            json_int(&w, "octets", (long long)msg_len);
            json_bool(&w, "wrapped", 1);
            json_end(&w);
        } else {
            printf("command (%zu octets, MACed by the ACB) written to %s\n", msg_len, out);
        }
        return EXIT_OK;
    }
    if (!from || !to || !counter || !code || !out || (!content == !chex) || (!acb != !dka))
        return cli_usage(c, "smki device make-command",
                         "--from, --to, --counter, --code, --out and one of --content/--content-hex are required; "
                         "--acb-ka and --device-ka go together");
    smki_eui64_t f, t;
    uint64_t n = 0, mc = 0;
    uint8_t *body = NULL, *msg = NULL;
    size_t body_len = 0, msg_len = 0;
    smki_key *ds = NULL, *ka = NULL;
    EVP_PKEY *dev = NULL;
    int rc = cli_home(c);
    if (rc == 0) rc = smki_eui64_parse(from, &f);
    if (rc == 0) rc = smki_eui64_parse(to, &t);
    if (rc == 0) rc = parse_u64(counter, &n);
    if (rc == 0) {
        char *end = NULL;
        mc = strtoul(code, &end, 16);
        if (!end || *end || mc > 0xFFFF) rc = SMKI_FAIL(SMKI_E_USAGE, "--code '%s' is not 4 hex digits", code);
    }
    if (rc == 0 && content) rc = smki_file_read(content, 1u << 20, &body, &body_len);
    if (rc == 0 && chex) {
        body = malloc(strlen(chex) / 2 + 1);
        rc = body ? smki_hex_decode(chex, strlen(chex), body, strlen(chex) / 2 + 1, &body_len)
                  : SMKI_FAIL(SMKI_E_NOMEM, "content");
    }
    if (rc == 0) {
        rc = cli_pin(c, 0);
        if (rc > 0) rc = 0;
    }
    if (rc == 0 && sign) rc = cli_open_key(c, sign, &ds);
    if (rc == 0 && acb) rc = cli_open_key(c, acb, &ka);
    if (rc == 0 && dka) rc = smki_pub_load_file(dka, &dev);
    if (rc == 0) rc = smki_gbcs_command_build(ds, ka, dev, &f, &t, n, (uint16_t)mc, body, body_len, &msg, &msg_len);
    if (rc == 0) rc = write_hex(out, msg, msg_len);
    smki_key_free(ds);
    smki_key_free(ka);
    EVP_PKEY_free(dev);
    free(body);
    free(msg);
    if (rc < 0) return cli_fail(c, rc);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_str(&w, "out", out);
        json_int(&w, "octets", (long long)msg_len);
        json_bool(&w, "wrapped", acb != NULL);
        json_end(&w);
    } else {
        printf("%s (%zu octets, %s) written to %s\n", sign || acb ? "command" : "pre-command", msg_len,
               acb ? (sign ? "signed and MACed" : "unsigned (non-critical) and MACed")
                   : sign ? "signed" : "for the remote party to sign",
               out);
    }
    return EXIT_OK;
}

static const cli_cmd DEVICE_COMMANDS[] = {
    {"create", dev_create, "a device with keys in the token, or the RTDS replay model of an RTDS device"},
    {"load-cell", dev_load_cell, "load a trust anchor cell from a certificate"},
    {"set-floor", dev_set_floor, "set a Remote Party Role's sequence-number floor"},
    {"show", dev_show, "the device's keys, cells and floors"},
    {"receive", dev_receive, "verify a command, act on it, write the response or alert"},
    {"run-due", dev_run_due, "run the future-dated commands whose time has come; write their alerts"},
    {"make-cs02b", dev_make_cs02b, "(tests, demo) build CS02b content"},
    {"make-command", dev_make_command, "(tests, demo) sign as a remote party and MAC as the ACB"},
    {NULL, NULL, NULL},
};

int cmd_device(smki_cli *c, int argc, char **argv)
{
    return cli_dispatch(c, DEVICE_COMMANDS, argc - 1, argv + 1, "smki device", ABOUT);
}
