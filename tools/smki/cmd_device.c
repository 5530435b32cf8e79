/* smki device: the GBCS device model. Its state (keys in the token, trust anchor cells,
 * floors) lives in the home's store; it receives commands and writes responses or
 * alerts. Plus two helpers for tests and demos that play the remote party and the ACB
 * (make-cs02b, make-command). Argument parsing and output only: the work is in gbcs/. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    "Usage: smki device create --eui EUI64 [--csr-dir DIR [--force]]\n"
    "       smki device create --eui EUI64 --from-rtds KEYSTORE_DIR\n"
    "\n"
    "Create a device in the store. Its DS and KA key pairs are generated in the home's\n"
    "token (labels dev-<eui>-ds, dev-<eui>-ka; needs the user PIN). --csr-dir writes the\n"
    "CS02c-shaped CSRs of both keys there (<eui>-ds.csr, <eui>-ka.csr, DER) for\n"
    "'smki ca issue', and the KA public key (<eui>-ka.pub.pem). The KA key signs its CSR\n"
    "when it is made and is refused every signature after (CKA_SIGN cleared), so without\n"
    "--csr-dir its CSR is gone; CS02c keyAgreement makes a new KA key with a new CSR.\n"
    "Those files are refused, before anything is made, if one exists (--force replaces them).\n"
    "Load its trust anchor cells next (smki device load-cell).\n"
    "\n"
    "--from-rtds makes the RTDS replay model of an RTDS device instead: its certificates\n"
    "and the RTDS remote parties' cells from the DCC's test keystore, and no private keys\n"
    "(the RTDS does not publish them). Such a device only receives in the named RTDS\n"
    "replay mode (smki device receive --rtds-replay-acb-key).\n"
    "\n"
    "Examples (from a clone beside ../shared; the home is made if it does not exist; the\n"
    "second needs its token's user PIN in SMKI_PIN, as after 'smki hsm init'):\n"
    "  smki device create --eui 00-DB-12-34-56-78-90-A0 --from-rtds ../shared/vectors/gbcs/keystore\n"
    "  smki device create --eui 00-DB-12-34-56-78-00-01 --csr-dir csrs\n";

static const char LOAD_HELP[] =
    "Usage: smki device load-cell --eui EUI64 --cert FILE [--prepayment]\n"
    "\n"
    "Load (replace) one trust anchor cell from a certificate, as at manufacture: the\n"
    "cell's role comes from the certificate's OU, its usage from keyUsage (DS or KA; a\n"
    "self-signed root CA certificate fills the root cell). --prepayment puts a KA\n"
    "certificate in the prepayment top-up cell instead of the management one.\n"
    "FILE '-' is standard input.\n"
    "\n"
    "Example (from a clone beside ../shared; after the first example of\n"
    "'smki device create --help'):\n"
    "  smki device create --eui 00-DB-12-34-56-78-90-A0 --from-rtds ../shared/vectors/gbcs/keystore\n"
    "  smki device load-cell --eui 00-DB-12-34-56-78-90-A0 \\\n"
    "      --cert ../shared/vectors/gbcs/keystore/90b3d51f30030000-ds.pem\n";

static const char FLOOR_HELP[] =
    "Usage: smki device set-floor --eui EUI64 --role ROLE --floor N\n"
    "\n"
    "Set the sequence-number floor of a Remote Party Role (provisioning and tests). ROLE is\n"
    "a Remote Party Role's name or number (supplier, 02); N is decimal.\n"
    "\n"
    "Example (from a clone beside ../shared):\n"
    "  smki device create --eui 00-DB-12-34-56-78-90-A0 --from-rtds ../shared/vectors/gbcs/keystore\n"
    "  smki device set-floor --eui 00-DB-12-34-56-78-90-A0 --role supplier --floor 1000\n"
    "  smki device show --eui 00-DB-12-34-56-78-90-A0\n";

static const char SHOW_HELP[] =
    "Usage: smki device show --eui EUI64\n"
    "\n"
    "The device: its keys, its cells (role, usage, cell usage, subject EUI-64, SKI) and\n"
    "its floors.\n";

static const char RECEIVE_HELP[] =
    "Usage: smki device receive --eui EUI64 FILE [--out FILE [--force]] [--dry-run]\n"
    "                            [--rtds-replay-acb-key KEYFILE] [--at TIME]\n"
    "\n"
    "Give the device a command (FILE: binary, or hex text as the RTDS files are). It is\n"
    "verified and acted on; the response (or, on a refusal, the alert) is written to\n"
    "--out as hex text. Prints the verdict, the checks and the CS02b per-cell outcomes.\n"
    "FILE '-' is standard input, --out '-' standard output; an existing --out FILE is refused\n"
    "(before the device changes) unless --force replaces it.\n"
    "Exit 0 accepted; 2 refused (A2/A3/A4, replay, malformed) or the command failed.\n"
    "\n"
    "--rtds-replay-acb-key names the RTDS replay mode: the RTDS does not publish devices'\n"
    "private keys, so the MAC is recomputed from the ACB side with the ACB's published KA\n"
    "key. Refused on a device with its own keys; required on an RTDS model. --at sets the\n"
    "device's clock for time-based certificate checks (the RTDS certificates expired):\n"
    "2020-01-01 or 2020-01-01T00:00:00Z.\n"
    "Alert codes come from [device] alert_a2, alert_a3, alert_a4, alert_replay in\n"
    "smki.conf (hex; the GBCS table is not in the reference, defaults are placeholders).\n"
    "\n"
    "Example (the RTDS replay model, from a clone beside ../shared):\n"
    "  V=../shared/vectors/gbcs\n"
    "  smki device create --eui 00-DB-12-34-56-78-90-A0 --from-rtds $V/keystore\n"
    "  smki device receive --eui 00-DB-12-34-56-78-90-A0 --at 2020-01-01 --out response.hex \\\n"
    "      --rtds-replay-acb-key $V/keystore/90b3d51f30000002-ka.key \\\n"
    "      $V/rtds/6.15.1_CS02bNOByNO/CS02bNOByNO_6.15.1_SUCCESS_COMMAND_GBCS.HEX\n";

static const char CS02B_HELP[] =
    "Usage: smki device make-cs02b --mode MODE [--seq N] --replace CELL=CERTFILE... [--path CERTFILE...]\n"
    "                              [--new-floor N] [--other ROLE=N...] [--apply-time-checks] --out FILE\n"
    "                              [--force]\n"
    "\n"
    "Build CS02b content (DER) for tests and demos. MODE: 2 supplierBySupplier, 3\n"
    "networkOperatorByNetworkOperator, 4 accessControlBrokerByACB, 5\n"
    "wanProviderByWanProvider, 6 transitionalCoSByTransitionalCoS, 7\n"
    "supplierByTransitionalCoS, 8 anyExceptAbnormalRootByRecovery, 9 anyByContingency.\n"
    "CELL is ROLE[:ds|ka[:prepayment]], e.g. supplier:ds, 02:ka:prepayment. Numbers are\n"
    "decimal. --out '-' is standard output; an existing FILE is refused unless --force.\n"
    "\n"
    "Example (from a clone beside ../shared; no home needed):\n"
    "  smki device make-cs02b --mode 2 --seq 10 --out cs02b.der \\\n"
    "      --replace supplier:ds=../shared/vectors/gbcs/keystore/90b3d51f30030000-ds.pem\n";

static const char COMMAND_HELP[] =
    "Usage: smki device make-command [--sign KEY] --from EUI64 --to EUI64 --counter N --code HEX\n"
    "                                (--content FILE | --content-hex HEX) [--acb-ka KEY --device-ka CERT]\n"
    "                                --out FILE [--force]\n"
    "       smki device make-command --wrap SIGNED --acb-ka KEY --device-ka CERT --out FILE [--force]\n"
    "\n"
    "Play the DCC, a remote party and the ACB for tests and demos. Without --sign: the\n"
    "pre-command (ending 00) for the remote party to sign ('smki gbcs sign'). With --sign\n"
    "KEY: the General Signing APDU signed with KEY (raw r||s over the octets after DF).\n"
    "With --acb-ka and --device-ka: wrapped in General Ciphering with the MAC the ACB's KA\n"
    "key and the device's KA certificate (or public key) give (without --sign: an\n"
    "unsigned, non-critical command such as CS02a from the ACB). --wrap: only that last\n"
    "step, over a signed APDU from a file. KEY: pkcs11: URI, file:PATH, or a label on the\n"
    "home's token. Written as hex text ('-': standard output); an existing FILE is refused\n"
    "unless --force. --counter is decimal, --code 1-4 hex digits; --content '-' is standard\n"
    "input.\n"
    "\n"
    "Example (supplier -> ACB -> device with the RTDS keystore's keys, from a clone beside\n"
    "../shared):\n"
    "  V=../shared/vectors/gbcs/keystore\n"
    "  smki device make-command --from 90-B3-D5-1F-30-01-00-00 --to 00-DB-12-34-56-78-90-B0 \\\n"
    "      --counter 1 --code 0019 --content-hex 0102 --out pre.hex\n"
    "  smki gbcs sign --key file:$V/90b3d51f30010000-ds.key --cert $V/90b3d51f30010000-ds.pem \\\n"
    "      --in pre.hex --out signed.hex\n"
    "  smki device make-command --wrap signed.hex --acb-ka file:$V/90b3d51f30000002-ka.key \\\n"
    "      --device-ka $V/00db1234567890b0-ka.pem --out cmd.hex\n"
    "  smki gbcs verify --trust $V --acb-key file:$V/90b3d51f30000002-ka.key --at 2020-01-01 cmd.hex\n";

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

static int write_hex(const char *path, const uint8_t *p, size_t n, int force)
{
    char *t = malloc(2 * n + 2);
    ENSURE(t != NULL, SMKI_E_NOMEM, "output");
    smki_hex_encode(p, n, t, 1);
    t[2 * n] = '\n';
    int rc = cli_write(path, t, 2 * n + 1, 0644, force);
    free(t);
    return rc;
}

static void hex8(const uint8_t b[8], char out[17])
{
    smki_hex_encode(b, 8, out, 1);
}

/* The user PIN if there is one: a device with keys in the token needs it, an RTDS model not. */
static int optional_pin(smki_cli *c)
{
    int rc = cli_pin(c, 0);
    return rc > 0 ? 0 : rc;
}

/* ---- create -------------------------------------------------------------------------------- */

static void csr_dir_path(char *path, size_t cap, const char *dir, const smki_eui64_t *eui, const char *suffix)
{
    char hex[17];
    smki_hex_encode(eui->b, 8, hex, 0);
    snprintf(path, cap, "%s/%s-%s", dir, hex, suffix);
}

static const char *const CSR_DIR_FILES[] = {"ds.csr", "ka.csr", "ka.pub.pem", NULL};

/* --csr-dir: the files it will hold, refused before anything is made if one exists
 * (unless --force), so a refusal leaves no device half-made. */
static int csr_dir_check(const char *dir, const smki_eui64_t *eui, int force)
{
    char path[4200];
    for (size_t i = 0; CSR_DIR_FILES[i] && !force; i++) {
        csr_dir_path(path, sizeof path, dir, eui, CSR_DIR_FILES[i]);
        ENSURE(access(path, F_OK) != 0, SMKI_E_EXISTS, "%s exists; --force replaces it", path);
    }
    return 0;
}

static int csr_dir_write(smki_cli *c, const char *dir, const smki_eui64_t *eui, const char *suffix, const void *data,
                         size_t len)
{
    char path[4200];
    csr_dir_path(path, sizeof path, dir, eui, suffix);
    GUARD(cli_write(path, data, len, 0644, 1));
    if (!c->json) printf("wrote %s\n", path);
    return 0;
}

/* A KA key in the token may derive but not sign (hsm: CKA_SIGN false): its CSR was signed
 * when it was made; its public key is written too (the ACB needs only that). */
static int write_ka_pub(smki_cli *c, const char *dir, const smki_eui64_t *eui)
{
    char hex[17], label[64], ref[SMKI_KEY_URI_MAX];
    EVP_PKEY *pub = NULL;
    char *pem = NULL;
    size_t len = 0;
    smki_hex_encode(eui->b, 8, hex, 0);
    snprintf(label, sizeof label, "dev-%s-ka", hex);
    GUARD(cli_key_ref(c, label, ref, sizeof ref));
    GUARD(smki_key_public_load(ref, &c->hsm, &pub));
    int rc = smki_pub_to_pem(pub, &pem, &len);
    EVP_PKEY_free(pub);
    if (rc == 0) rc = csr_dir_write(c, dir, eui, "ka.pub.pem", pem, len);
    free(pem);
    return rc;
}

/* A device with its own keys in the token, and with --csr-dir its CSRs and KA public key. */
static int create_own_keys(smki_cli *c, smki_store *s, const smki_eui64_t *eui, const char *csr_dir)
{
    uint8_t *ka_csr = NULL, *ds_csr = NULL;
    size_t ka_csr_len = 0, ds_csr_len = 0;
    int rc = cli_pin(c, 1);
    if (rc >= 0) {
        smki_device_keys_opts ko = {c->token, &c->hsm, &ka_csr, &ka_csr_len, csr_dir ? &ds_csr : NULL, &ds_csr_len};
        rc = smki_device_create(s, eui, &ko);
    }
    if (rc >= 0 && csr_dir) rc = smki_mkdirs(csr_dir, 0755);
    if (rc >= 0 && csr_dir) rc = csr_dir_write(c, csr_dir, eui, "ds.csr", ds_csr, ds_csr_len);
    if (rc >= 0 && csr_dir) rc = csr_dir_write(c, csr_dir, eui, "ka.csr", ka_csr, ka_csr_len);
    if (rc >= 0 && csr_dir) rc = write_ka_pub(c, csr_dir, eui);
    free(ka_csr);
    free(ds_csr);
    return rc < 0 ? rc : 0;
}

static void print_created(const smki_cli *c, const smki_eui64_t *eui, int rtds)
{
    char t[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(eui, SMKI_EUI64_HYPHEN, t);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "eui64", t);
        json_str(&w, "kind", rtds ? "rtds-replay-model" : "own-keys");
        json_end(&w);
    } else {
        printf("device %s created (%s)\n", t,
               rtds ? "RTDS replay model: RTDS cells, no private keys" : "DS and KA keys in the token");
    }
}

static int dev_create(smki_cli *c, int argc, char **argv)
{
    const char *eui_text = NULL, *rtds = NULL, *csr_dir = NULL;
    int force = 0;
    const cli_opt opts[] = {CLI_VALUE("eui", &eui_text), CLI_VALUE("from-rtds", &rtds), CLI_VALUE("csr-dir", &csr_dir),
                            CLI_FLAG("force", &force), CLI_END};
    const cli_spec spec = {"smki device create", CREATE_HELP, opts, "no arguments", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!eui_text) return cli_usage(c, "smki device create", "--eui is required");
    if (rtds && csr_dir) return cli_usage(c, "smki device create", "--csr-dir needs a device with its own keys");
    c->may_create_home = 1; /* a device model's home starts with its first device */
    smki_eui64_t eui;
    smki_store *s = NULL;
    int rc = smki_eui64_parse(eui_text, &eui);
    if (rc == 0 && csr_dir) rc = csr_dir_check(csr_dir, &eui, force);
    if (rc == 0) rc = open_store(c, &s);
    if (rc == 0) rc = rtds ? smki_device_create_rtds(s, &eui, rtds) : create_own_keys(c, s, &eui, csr_dir);
    smki_store_close(s);
    if (rc < 0) return cli_fail(c, rc);
    print_created(c, &eui, rtds != NULL);
    return EXIT_OK;
}

/* ---- load-cell, set-floor ------------------------------------------------------------------ */

static void print_cell(const smki_cli *c, const smki_ta_cell *cell)
{
    char id[64], ski[17], sub[17];
    smki_cell_id_format(&cell->id, id, sizeof id);
    hex8(cell->ski, ski);
    hex8(cell->subject_id, sub);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "cell", id);
        json_str(&w, "subject", sub);
        json_str(&w, "ski", ski);
        json_end(&w);
    } else {
        printf("cell %s loaded: subject %s, SKI %s\n", id, sub, ski);
    }
}

static int dev_load_cell(smki_cli *c, int argc, char **argv)
{
    const char *eui_text = NULL, *cert = NULL;
    int prepay = 0;
    const cli_opt opts[] = {CLI_VALUE("eui", &eui_text), CLI_VALUE("cert", &cert), CLI_FLAG("prepayment", &prepay),
                            CLI_END};
    const cli_spec spec = {"smki device load-cell", LOAD_HELP, opts, "no arguments", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!eui_text || !cert) return cli_usage(c, "smki device load-cell", "--eui and --cert are required");
    smki_eui64_t eui;
    smki_ta_cell *cell = calloc(1, sizeof *cell);
    uint8_t *data = NULL;
    size_t len = 0;
    smki_store *s = NULL;
    int rc = cell ? smki_eui64_parse(eui_text, &eui) : SMKI_FAIL(SMKI_E_NOMEM, "cell");
    if (rc == 0) rc = cli_read(cert, 1u << 16, &data, &len);
    if (rc == 0) rc = smki_cell_from_cert(data, len, prepay ? SMKI_CELL_PREPAYMENT : SMKI_CELL_MANAGEMENT, cell);
    if (rc == 0) rc = open_store(c, &s);
    if (rc == 0) rc = smki_device_load_cell(s, &eui, cell);
    smki_store_close(s);
    free(data);
    if (rc == 0) print_cell(c, cell);
    free(cell);
    return cli_finish(c, rc);
}

static int dev_set_floor(smki_cli *c, int argc, char **argv)
{
    const char *eui_text = NULL, *role_text = NULL, *floor_text = NULL;
    const cli_opt opts[] = {CLI_VALUE("eui", &eui_text), CLI_VALUE("role", &role_text),
                            CLI_VALUE("floor", &floor_text), CLI_END};
    const cli_spec spec = {"smki device set-floor", FLOOR_HELP, opts, "no arguments", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!eui_text || !role_text || !floor_text)
        return cli_usage(c, "smki device set-floor", "--eui, --role and --floor are required");
    smki_eui64_t eui;
    uint8_t role;
    uint64_t floor = 0;
    smki_store *s = NULL;
    int rc = smki_eui64_parse(eui_text, &eui);
    if (rc == 0) rc = smki_role_parse(role_text, &role);
    if (rc == 0) rc = cli_number("--floor", floor_text, 0, UINT64_MAX, &floor);
    if (rc == 0) rc = open_store(c, &s);
    if (rc == 0) rc = smki_device_set_floor(s, &eui, role, floor);
    smki_store_close(s);
    if (rc < 0) return cli_fail(c, rc);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "role", smki_role_name(role));
        json_int(&w, "floor", (long long)floor);
        json_end(&w);
    } else {
        printf("floor of %s set to %llu\n", smki_role_name(role), (unsigned long long)floor);
    }
    return EXIT_OK;
}

/* ---- show --------------------------------------------------------------------------------- */

static void show_cells(const smki_cli *c, json_w *w, const smki_device_info *info)
{
    char id[64], ski[17], sub[17];
    for (size_t i = 0; i < info->ncells; i++) {
        const smki_ta_cell *cell = &info->cells[i];
        smki_cell_id_format(&cell->id, id, sizeof id);
        hex8(cell->ski, ski);
        hex8(cell->subject_id, sub);
        if (c->json) {
            json_arr_obj(w);
            json_int(w, "role", cell->id.role);
            json_str(w, "cell", id);
            json_str(w, "subject", sub);
            json_str(w, "ski", ski);
            json_bool(w, "has_key", cell->has_key);
            json_close_obj(w);
        } else {
            printf("    %-34s subject %s SKI %s%s\n", id, sub, ski, cell->has_key ? "" : " (anchor by SKI only)");
        }
    }
}

static void show_floors(const smki_cli *c, json_w *w, const smki_device_info *info)
{
    for (int r = 0; r < 256; r++) {
        if (!info->has_floor[r]) continue;
        if (c->json)
            json_int(w, smki_role_name((unsigned)r), (long long)info->floors[r]);
        else
            printf("    %-20s %llu\n", smki_role_name((unsigned)r), (unsigned long long)info->floors[r]);
    }
}

static void print_device(const smki_cli *c, const smki_eui64_t *eui, const smki_device_info *info)
{
    char t[SMKI_EUI64_TEXT_MAX];
    smki_eui64_format(eui, SMKI_EUI64_HYPHEN, t);
    int rtds = (info->flags & SMKI_DEVICE_FLAG_RTDS) != 0;
    json_w w;
    if (!c->json) {
        printf("device %s (%s)\n  DS key %s\n  KA key %s\n  cells:\n", t, rtds ? "RTDS replay model" : "own keys",
               info->ds_ref, info->ka_ref);
        show_cells(c, &w, info);
        printf("  floors:\n");
        show_floors(c, &w, info);
        return;
    }
    json_begin(&w, stdout);
    json_bool(&w, "ok", 1);
    json_str(&w, "eui64", t);
    json_str(&w, "kind", rtds ? "rtds-replay-model" : "own-keys");
    json_str(&w, "ds_key", info->ds_ref);
    json_str(&w, "ka_key", info->ka_ref);
    json_int(&w, "alert_counter", (long long)info->alert_counter);
    json_key_arr(&w, "cells");
    show_cells(c, &w, info);
    json_close_arr(&w);
    json_key_obj(&w, "floors");
    show_floors(c, &w, info);
    json_close_obj(&w);
    json_end(&w);
}

static int dev_show(smki_cli *c, int argc, char **argv)
{
    const char *eui_text = NULL;
    const cli_opt opts[] = {CLI_VALUE("eui", &eui_text), CLI_END};
    const cli_spec spec = {"smki device show", SHOW_HELP, opts, "no arguments", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!eui_text) return cli_usage(c, "smki device show", "--eui is required");
    smki_eui64_t eui;
    smki_store *s = NULL;
    smki_device *d = NULL;
    smki_device_info *info = calloc(1, sizeof *info);
    int rc = info ? smki_eui64_parse(eui_text, &eui) : SMKI_FAIL(SMKI_E_NOMEM, "info");
    if (rc == 0) rc = open_store(c, &s);
    if (rc == 0) rc = smki_device_open(s, &eui, &c->hsm, &d);
    if (rc == 0) rc = smki_device_describe(d, info);
    if (rc == 0) print_device(c, &eui, info);
    smki_device_free(d);
    smki_store_close(s);
    free(info);
    return cli_finish(c, rc);
}

/* ---- receive ------------------------------------------------------------------------------- */

/* The options receive and run-due share: the device, its clock, the alert codes. */
static int rx_opts(smki_cli *c, const char *at, int dry, smki_rx_opts *o)
{
    smki_rx_opts_default(o);
    o->dry_run = dry;
    if (at) GUARD(smki_gbcs_time_parse(at, &o->now));
    GUARD(cli_home(c));
    return smki_rx_opts_conf(o, c->conf);
}

static void json_outcomes(json_w *w, const smki_rx_result *r)
{
    char id[64], a[17], b[17];
    json_int(w, "mode", r->mode);
    json_key_arr(w, "outcomes");
    for (size_t i = 0; i < r->noutcomes; i++) {
        smki_cell_id_format(&r->outcomes[i].id, id, sizeof id);
        hex8(r->outcomes[i].old_ski, a);
        hex8(r->outcomes[i].new_ski, b);
        json_arr_obj(w);
        json_str(w, "cell", id);
        json_int(w, "status", r->outcomes[i].status);
        json_str(w, "why", r->outcomes[i].why);
        json_str(w, "old_ski", a);
        json_str(w, "new_ski", b);
        json_close_obj(w);
    }
    json_close_arr(w);
}

static void json_received(const smki_rx_result *r, const char *from)
{
    json_w w;
    json_begin(&w, stdout);
    json_bool(&w, "ok", r->verdict == SMKI_RX_ACCEPTED);
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
    if (r->noutcomes) json_outcomes(&w, r);
    json_end(&w);
}

static void print_received(const smki_cli *c, const smki_rx_result *r, const char *out)
{
    char from[SMKI_EUI64_TEXT_MAX], id[64];
    smki_eui64_format(&r->originator, SMKI_EUI64_HYPHEN, from);
    if (c->json) {
        json_received(r, from);
        return;
    }
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
    if (r->out && out)
        printf("  %s written to %s (%s%s)\n", r->out_is_alert ? "alert" : "response", out,
               r->out_signed ? "signed" : "unsigned: no DS key",
               r->out_maced ? ", MACed for the recipient's KA cell" : "");
}

typedef struct {
    const char *eui, *out, *acb, *at;
    int dry, force;
} receive_args;

static int receive_run(smki_cli *c, const receive_args *a, const char *file, smki_rx_result *r)
{
    smki_rx_opts o;
    smki_eui64_t eui;
    smki_store *s = NULL;
    smki_device *d = NULL;
    smki_key *acb_key = NULL;
    uint8_t *msg = NULL;
    size_t len = 0;
    int rc = rx_opts(c, a->at, a->dry, &o);
    if (rc == 0) rc = smki_eui64_parse(a->eui, &eui);
    /* The reply is refused before the device changes, not after. */
    if (rc == 0 && a->out && !a->force && strcmp(a->out, "-") != 0 && access(a->out, F_OK) == 0)
        rc = SMKI_FAIL(SMKI_E_EXISTS, "%s exists; --force replaces it", a->out);
    if (rc == 0) rc = read_message(file, &msg, &len);
    if (rc == 0) rc = open_store(c, &s);
    if (rc == 0 && a->acb) {
        char ref[4200];
        snprintf(ref, sizeof ref, "file:%s", a->acb);
        o.mac_mode = SMKI_MAC_RTDS_REPLAY;
        rc = smki_key_open(ref, NULL, &acb_key);
        o.rtds_acb_ka = acb_key;
    } else if (rc == 0) {
        rc = optional_pin(c);
    }
    if (rc == 0) rc = smki_device_open(s, &eui, &c->hsm, &d);
    if (rc == 0) rc = smki_device_receive(d, s, msg, len, &o, r);
    if (rc == 0 && a->out && r->out) rc = write_hex(a->out, r->out, r->out_len, 1);
    smki_device_free(d);
    smki_key_free(acb_key);
    smki_store_close(s);
    free(msg);
    return rc;
}

static int dev_receive(smki_cli *c, int argc, char **argv)
{
    receive_args a = {NULL, NULL, NULL, NULL, 0, 0};
    const cli_opt opts[] = {CLI_VALUE("eui", &a.eui),    CLI_VALUE("out", &a.out),
                            CLI_FLAG("dry-run", &a.dry), CLI_VALUE("rtds-replay-acb-key", &a.acb),
                            CLI_VALUE("at", &a.at),      CLI_FLAG("force", &a.force),
                            CLI_END};
    const cli_spec spec = {"smki device receive", RECEIVE_HELP, opts, "one FILE", 1, 1};
    const char *pos[1];
    int stop = cli_parse(c, &spec, argc, argv, pos, NULL);
    if (stop != CLI_GO) return stop;
    if (!a.eui) return cli_usage(c, "smki device receive", "--eui is required");
    if (a.out && strcmp(a.out, "-") == 0 && c->json)
        return cli_usage(c, "smki device receive", "--out - writes the reply to standard output: not with --json");
    smki_rx_result *r = calloc(1, sizeof *r);
    int rc = r ? receive_run(c, &a, pos[0], r) : SMKI_FAIL(SMKI_E_NOMEM, "result");
    int code = rc < 0 ? cli_fail(c, rc) : r->verdict == SMKI_RX_ACCEPTED ? EXIT_OK : EXIT_REFUSED;
    if (rc == 0 && !(a.out && strcmp(a.out, "-") == 0)) print_received(c, r, a.out);
    if (r) smki_rx_result_clear(r);
    free(r);
    return code;
}

/* ---- run-due ---------------------------------------------------------------------------------- */
static const char RUN_DUE_HELP[] =
    "Usage: smki device run-due --eui EUI64 [--at TIME] [--out-dir DIR [--force]] [--dry-run]\n"
    "\n"
    "Run the device's future-dated commands whose executionDateTime has come (at --at,\n"
    "default now): a CS02b received with an executionDateTime ahead was verified, answered\n"
    "SEQUENCE { NULL } and kept; now it is checked against the cells as they are, applied\n"
    "or not (all or nothing), and answered by a signed alert to its originator: 8F66\n"
    "success or 8F67 (a replacement refused), as the RTDS alerts. Alerts are written to\n"
    "DIR as alert-<counter>.hex (made if missing; an existing alert file is refused unless\n"
    "--force). Exit 0 when every due command was applied (or none was due), 2 when one\n"
    "failed. --json: {\"executed\":[{\"counter\",\"executed\" (RFC 3339),\"verdict\",...}]}.\n"
    "\n"
    "Example (from a clone beside ../shared):\n"
    "  smki device create --eui 00-DB-12-34-56-78-90-A0 --from-rtds ../shared/vectors/gbcs/keystore\n"
    "  smki device run-due --eui 00-DB-12-34-56-78-90-A0 --at 2030-01-16 --out-dir alerts\n";

enum { RUN_DUE_CAP = 64 };

static int run_due(smki_cli *c, const char *eui_text, const smki_rx_opts *base, smki_rx_result *res, size_t *n)
{
    smki_rx_opts o = *base;
    smki_eui64_t eui;
    smki_store *s = NULL;
    smki_device *d = NULL;
    int rc = smki_eui64_parse(eui_text, &eui);
    if (rc == 0) rc = open_store(c, &s);
    if (rc == 0) rc = optional_pin(c);
    if (rc == 0) rc = smki_device_open(s, &eui, &c->hsm, &d);
    if (rc == 0) {
        /* An RTDS model's root cell is an anchor by SKI only: its certification paths are
         * judged as in the named RTDS replay mode. */
        smki_device_info info;
        rc = smki_device_describe(d, &info);
        if (rc == 0 && (info.flags & SMKI_DEVICE_FLAG_RTDS)) o.mac_mode = SMKI_MAC_RTDS_REPLAY;
    }
    if (rc == 0) rc = smki_device_run_due(d, s, &o, res, RUN_DUE_CAP, n);
    smki_device_free(d);
    smki_store_close(s);
    return rc;
}

static void print_due_one(const smki_cli *c, json_w *w, const smki_rx_result *r, const char *path)
{
    if (c->json) {
        char when[CLI_TIME_MAX];
        cli_when(c, (int64_t)r->executed, when);
        json_arr_obj(w);
        json_int(w, "counter", (long long)r->counter);
        json_int(w, "message_code", r->message_code);
        json_str(w, "executed", when);
        json_str(w, "verdict", smki_rx_verdict_name(r->verdict));
        json_bool(w, "applied", r->applied);
        json_int(w, "alert_code", r->alert_code);
        json_bool(w, "alert_signed", r->out_signed);
        if (path[0]) json_str(w, "alert", path);
        json_close_obj(w);
    } else {
        printf("counter %llu (message code 0x%04X): %s, alert 0x%04X%s%s\n", (unsigned long long)r->counter,
               r->message_code, r->applied ? "applied" : r->reason, r->alert_code, path[0] ? " written to " : "",
               path);
    }
}

/* Each executed command printed and its alert written to dir; returns whether one failed. */
static int print_due(const smki_cli *c, const smki_rx_result *res, size_t n, const char *dir, int force, int *rc)
{
    int failed = 0;
    json_w w;
    if (c->json) {
        json_begin(&w, stdout);
        json_key_arr(&w, "executed");
    }
    for (size_t i = 0; i < n; i++) {
        char path[4200] = "";
        if (dir && res[i].out && *rc == 0) {
            snprintf(path, sizeof path, "%s/alert-%llu.hex", dir, (unsigned long long)res[i].counter);
            *rc = write_hex(path, res[i].out, res[i].out_len, force);
            if (*rc < 0) path[0] = 0;
        }
        failed |= res[i].verdict != SMKI_RX_ACCEPTED;
        print_due_one(c, &w, &res[i], path);
    }
    if (c->json) {
        json_close_arr(&w);
        json_bool(&w, "ok", !failed && *rc == 0);
        if (*rc < 0) json_error(&w, *rc); /* one document: what ran, then why an alert was not written */
        json_end(&w);
    } else if (n == 0) {
        printf("Nothing due.\n");
    }
    return failed;
}

static int dev_run_due(smki_cli *c, int argc, char **argv)
{
    const char *eui_text = NULL, *at = NULL, *dir = NULL;
    int dry = 0, force = 0;
    const cli_opt opts[] = {CLI_VALUE("eui", &eui_text), CLI_VALUE("at", &at),    CLI_VALUE("out-dir", &dir),
                            CLI_FLAG("dry-run", &dry),   CLI_FLAG("force", &force), CLI_END};
    const cli_spec spec = {"smki device run-due", RUN_DUE_HELP, opts, "no arguments", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!eui_text) return cli_usage(c, "smki device run-due", "--eui is required");
    smki_rx_opts o;
    smki_rx_result *res = calloc(RUN_DUE_CAP, sizeof *res);
    size_t n = 0;
    int rc = res ? rx_opts(c, at, dry, &o) : SMKI_FAIL(SMKI_E_NOMEM, "results");
    if (rc == 0 && dir) rc = smki_mkdirs(dir, 0755);
    if (rc == 0) rc = run_due(c, eui_text, &o, res, &n);
    int printed = rc == 0, failed = printed ? print_due(c, res, n, dir, force, &rc) : 0;
    for (size_t i = 0; res && i < n; i++) smki_rx_result_clear(&res[i]);
    free(res);
    if (rc < 0) return printed && c->json ? smki_error_exit_code(rc) : cli_fail(c, rc);
    return failed ? EXIT_REFUSED : EXIT_OK;
}

/* ---- make-cs02b, make-command ------------------------------------------------------------- */

/* A CS02b request and the certificates it points at (owned here). */
typedef struct {
    smki_cs02b_request q;
    uint8_t *bufs[SMKI_CS02B_MAX_REPLACEMENTS + 4];
    size_t nb;
} cs02b_build;

/* One certificate file into the request: a replacement for cell (CELL=CERTFILE), or with
 * cell NULL a certification path certificate (a CA's, its DER as it is). */
static int cs02b_add_cert(cs02b_build *b, const char *cell, const char *file)
{
    smki_ta_cell_id id = {0, 0, 0};
    if (cell) GUARD(smki_cell_id_parse(cell, &id));
    ENSURE(cell ? b->q.nrepl < SMKI_CS02B_MAX_REPLACEMENTS : b->q.npath < 4, SMKI_E_USAGE,
           "too many certificates: at most %d --replace and 4 --path", SMKI_CS02B_MAX_REPLACEMENTS);
    smki_ta_cell *tmp = calloc(1, sizeof *tmp);
    ENSURE(tmp, SMKI_E_NOMEM, "cell");
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = cli_read(file, 1u << 16, &data, &len);
    if (rc == 0 && cell) rc = smki_cell_from_cert(data, len, id.cell_usage, tmp);
    if (rc == 0 && !cell) rc = smki_cert_der(data, len, tmp->cert, SMKI_CELL_CERT_MAX, &tmp->cert_len);
    if (rc < 0) smki_error_wrap("%s", file);
    free(data);
    uint8_t *copy = rc == 0 ? malloc(tmp->cert_len) : NULL;
    if (rc == 0 && !copy) rc = SMKI_FAIL(SMKI_E_NOMEM, "certificate");
    if (rc == 0) {
        memcpy(copy, tmp->cert, tmp->cert_len);
        b->bufs[b->nb++] = copy;
        if (cell) {
            b->q.repl[b->q.nrepl].cert = copy;
            b->q.repl[b->q.nrepl].len = tmp->cert_len;
            b->q.repl[b->q.nrepl++].target = id;
        } else {
            b->q.path[b->q.npath].cert = copy;
            b->q.path[b->q.npath++].len = tmp->cert_len;
        }
    }
    free(tmp);
    return rc;
}

/* A NAME=VALUE argument split at '=' into name (copied, bounded) and *value. */
static int split_eq(const char *opt, const char *arg, const char *shape, char *name, size_t cap, const char **value)
{
    const char *eq = strchr(arg, '=');
    ENSURE(eq && eq != arg && (size_t)(eq - arg) < cap, SMKI_E_USAGE, "%s '%s' is not %s", opt, arg, shape);
    snprintf(name, cap, "%.*s", (int)(eq - arg), arg);
    *value = eq + 1;
    return 0;
}

typedef struct {
    const char *mode, *seq, *new_floor, *out;
    cli_list replace, path, other;
    int time_checks, force;
} cs02b_args;

static int cs02b_fill(const cs02b_args *a, cs02b_build *b)
{
    uint64_t mode = 0;
    char name[64];
    const char *value;
    GUARD(cli_number("--mode", a->mode, 2, 9, &mode));
    b->q.mode = (uint8_t)mode;
    if (a->seq) GUARD(cli_number("--seq", a->seq, 0, UINT64_MAX, &b->q.auth_seq));
    if (a->new_floor) GUARD(cli_number("--new-floor", a->new_floor, 0, UINT64_MAX, &b->q.new_floor));
    b->q.has_new_floor = a->new_floor != NULL;
    b->q.apply_time_checks = a->time_checks;
    ENSURE(a->other.n <= 8, SMKI_E_USAGE, "at most 8 --other");
    for (size_t i = 0; i < a->other.n; i++, b->q.nother++) {
        GUARD(split_eq("--other", a->other.v[i], "ROLE=N", name, sizeof name, &value));
        GUARD(smki_role_parse(name, &b->q.other[i].role));
        GUARD(cli_number("--other N", value, 0, UINT64_MAX, &b->q.other[i].floor));
    }
    for (size_t i = 0; i < a->replace.n; i++) {
        GUARD(split_eq("--replace", a->replace.v[i], "CELL=CERTFILE", name, sizeof name, &value));
        GUARD(cs02b_add_cert(b, name, value));
    }
    for (size_t i = 0; i < a->path.n; i++) GUARD(cs02b_add_cert(b, NULL, a->path.v[i]));
    return 0;
}

static int dev_make_cs02b(smki_cli *c, int argc, char **argv)
{
    cs02b_args a;
    memset(&a, 0, sizeof a);
    const cli_opt opts[] = {CLI_VALUE("mode", &a.mode),         CLI_VALUE("seq", &a.seq),
                            CLI_LIST("replace", &a.replace),    CLI_LIST("path", &a.path),
                            CLI_VALUE("new-floor", &a.new_floor), CLI_LIST("other", &a.other),
                            CLI_FLAG("apply-time-checks", &a.time_checks), CLI_VALUE("out", &a.out),
                            CLI_FLAG("force", &a.force),        CLI_END};
    const cli_spec spec = {"smki device make-cs02b", CS02B_HELP, opts, "no arguments", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop != CLI_GO) return stop;
    if (!a.mode || !a.out || a.replace.n == 0)
        return cli_usage(c, "smki device make-cs02b", "--mode, at least one --replace and --out are required");
    cs02b_build *b = calloc(1, sizeof *b);
    uint8_t *der = NULL;
    size_t len = 0;
    int rc = b ? cs02b_fill(&a, b) : SMKI_FAIL(SMKI_E_NOMEM, "request");
    if (rc == 0) rc = smki_cs02b_build(&b->q, &der, &len);
    if (rc == 0) rc = cli_write(a.out, der, len, 0644, a.force);
    for (size_t i = 0; b && i < b->nb; i++) free(b->bufs[i]);
    free(b);
    free(der);
    if (rc < 0) return cli_fail(c, rc);
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "out", a.out);
        json_int(&w, "octets", (long long)len);
        json_end(&w);
    } else if (strcmp(a.out, "-") != 0) {
        printf("CS02b content (%zu octets) written to %s\n", len, a.out);
    }
    return EXIT_OK;
}

typedef struct {
    const char *sign, *from, *to, *counter, *code, *content, *chex, *acb, *dka, *out, *wrap;
    int force;
} command_args;

static void print_command(const smki_cli *c, const command_args *a, size_t len)
{
    if (c->json) {
        json_w w;
        json_begin(&w, stdout);
        json_bool(&w, "ok", 1);
        json_str(&w, "out", a->out);
        json_int(&w, "octets", (long long)len);
        json_bool(&w, "wrapped", a->acb != NULL);
        json_end(&w);
    } else if (strcmp(a->out, "-") == 0) {
        return;
    } else if (a->wrap) {
        printf("command (%zu octets, MACed by the ACB) written to %s\n", len, a->out);
    } else {
        printf("%s (%zu octets, %s) written to %s\n", a->sign || a->acb ? "command" : "pre-command", len,
               a->acb ? (a->sign ? "signed and MACed" : "unsigned (non-critical) and MACed")
                      : a->sign ? "signed" : "for the remote party to sign",
               a->out);
    }
}

/* --wrap: a signed APDU from a file wrapped in General Ciphering with the ACB's MAC. */
static int command_wrap(smki_cli *c, const command_args *a, uint8_t **msg, size_t *msg_len)
{
    uint8_t *gs = NULL;
    size_t gs_len = 0;
    smki_key *ka = NULL;
    EVP_PKEY *dev = NULL;
    int rc = cli_home(c);
    if (rc == 0) rc = read_message(a->wrap, &gs, &gs_len);
    if (rc == 0) rc = optional_pin(c);
    if (rc == 0) rc = cli_open_key(c, a->acb, &ka);
    if (rc == 0) rc = smki_pub_load_file(a->dka, &dev);
    if (rc == 0) rc = smki_gbcs_wrap(gs, gs_len, ka, dev, 0, msg, msg_len);
    smki_key_free(ka);
    EVP_PKEY_free(dev);
    free(gs);
    return rc;
}

/* The command's content: --content FILE ('-': standard input) or --content-hex HEX. */
static int command_content(const command_args *a, uint8_t **body, size_t *len)
{
    if (a->content) return cli_read(a->content, 1u << 20, body, len);
    size_t n = strlen(a->chex);
    *body = malloc(n / 2 + 1);
    ENSURE(*body, SMKI_E_NOMEM, "content");
    return smki_hex_decode(a->chex, n, *body, n / 2 + 1, len);
}

/* --code: a message code, 1 to 4 hex digits. */
static int parse_code(const char *s, uint16_t *out)
{
    size_t n = strlen(s);
    ENSURE(n >= 1 && n <= 4 && strspn(s, "0123456789abcdefABCDEF") == n, SMKI_E_USAGE,
           "--code '%s' is not a message code: give 1-4 hex digits (e.g. 0019)", s);
    *out = (uint16_t)strtoul(s, NULL, 16);
    return 0;
}

static int command_build(smki_cli *c, const command_args *a, uint8_t **msg, size_t *msg_len)
{
    smki_eui64_t f, t;
    uint64_t n = 0;
    uint16_t mc = 0;
    uint8_t *body = NULL;
    size_t body_len = 0;
    smki_key *ds = NULL, *ka = NULL;
    EVP_PKEY *dev = NULL;
    int rc = cli_home(c);
    if (rc == 0) rc = smki_eui64_parse(a->from, &f);
    if (rc == 0) rc = smki_eui64_parse(a->to, &t);
    if (rc == 0) rc = cli_number("--counter", a->counter, 0, UINT64_MAX, &n);
    if (rc == 0) rc = parse_code(a->code, &mc);
    if (rc == 0) rc = command_content(a, &body, &body_len);
    if (rc == 0) rc = optional_pin(c);
    if (rc == 0 && a->sign) rc = cli_open_key(c, a->sign, &ds);
    if (rc == 0 && a->acb) rc = cli_open_key(c, a->acb, &ka);
    if (rc == 0 && a->dka) rc = smki_pub_load_file(a->dka, &dev);
    if (rc == 0) rc = smki_gbcs_command_build(ds, ka, dev, &f, &t, n, mc, body, body_len, msg, msg_len);
    smki_key_free(ds);
    smki_key_free(ka);
    EVP_PKEY_free(dev);
    free(body);
    return rc;
}

static int command_check(smki_cli *c, const command_args *a)
{
    const char *prog = "smki device make-command";
    if (!a->out) return cli_usage(c, prog, "--out is required");
    if (a->wrap && (!a->acb || !a->dka || a->sign || a->from || a->to || a->counter || a->code || a->content || a->chex))
        return cli_usage(c, prog, "--wrap takes --acb-ka, --device-ka and --out only");
    if (!a->wrap && (!a->from || !a->to || !a->counter || !a->code || (!a->content == !a->chex) || (!a->acb != !a->dka)))
        return cli_usage(c, prog,
                         "--from, --to, --counter, --code, --out and one of --content/--content-hex are required; "
                         "--acb-ka and --device-ka go together");
    if (c->json && strcmp(a->out, "-") == 0)
        return cli_usage(c, prog, "--out - writes the command to standard output: not with --json");
    return CLI_GO;
}

static int dev_make_command(smki_cli *c, int argc, char **argv)
{
    command_args a;
    memset(&a, 0, sizeof a);
    const cli_opt opts[] = {CLI_VALUE("sign", &a.sign),       CLI_VALUE("from", &a.from),
                            CLI_VALUE("to", &a.to),           CLI_VALUE("counter", &a.counter),
                            CLI_VALUE("code", &a.code),       CLI_VALUE("content", &a.content),
                            CLI_VALUE("content-hex", &a.chex), CLI_VALUE("acb-ka", &a.acb),
                            CLI_VALUE("device-ka", &a.dka),   CLI_VALUE("out", &a.out),
                            CLI_VALUE("wrap", &a.wrap),       CLI_FLAG("force", &a.force),
                            CLI_END};
    const cli_spec spec = {"smki device make-command", COMMAND_HELP, opts, "no arguments", 0, 0};
    int stop = cli_parse(c, &spec, argc, argv, NULL, NULL);
    if (stop == CLI_GO) stop = command_check(c, &a);
    if (stop != CLI_GO) return stop;
    uint8_t *msg = NULL;
    size_t msg_len = 0;
    int rc = a.wrap ? command_wrap(c, &a, &msg, &msg_len) : command_build(c, &a, &msg, &msg_len);
    if (rc == 0) rc = write_hex(a.out, msg, msg_len, a.force);
    free(msg);
    if (rc < 0) return cli_fail(c, rc);
    print_command(c, &a, msg_len);
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
