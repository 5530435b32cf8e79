/* The smki gbcs gateway commands' shared plumbing (cmd_gateway*.c): the gateway's store
 * with the RA whose registry holds its Users, and the operator of an administration
 * action. Parsing and printing only: the work is in gateway/gateway.h. */
#ifndef SMKI_CMD_GATEWAY_H
#define SMKI_CMD_GATEWAY_H

#include "commands.h"
#include "gateway/gateway.h"

typedef struct {
    smki_store *s;
    smki_ra *ra;
    smki_key *op_key;
    smki_ra_actor actor;
    smki_gw_admin adm; /* the RA and, for an administration action, its operator */
} gw_ctx;

/* The operator options every administration action takes. */
#define GW_OPERATOR_OPTS(op, key) CLI_VALUE("operator", (op)), CLI_VALUE("operator-key", (key))
#define GW_OPERATOR_HELP                                                                              \
    "An administration action is an RA action: --operator NAME --operator-key KEY (or\n"             \
    "SMKI_OPERATOR / SMKI_OPERATOR_KEY, or [operators] NAME = KEY in smki.conf) names a registered\n" \
    "RA operator, whose key signs its entry in the audit trail ('smki audit verify').\n"

/* Open the store, the gateway's databases and the RA; admin: the operator's key too
 * (op/key, else the environment or smki.conf) and the audit checkpoint key. */
int gw_begin(smki_cli *c, int admin, const char *op, const char *key, gw_ctx *x);
void gw_end(gw_ctx *x);
/* {"ok":true,"done":what} under --json. */
void gw_ok_json(smki_cli *c, const char *what);
/* bytes as hex text and a newline to path ("-": standard output), under the overwrite rule. */
int gw_write_hex(const char *path, const uint8_t *b, size_t n, int force);
/* Before an action that cannot be undone writes its output: path may be written (it does
 * not exist, or force, or it is '-'); SMKI_E_EXISTS as cli_write says it otherwise. */
int gw_out_free(const char *path, int force);
/* 1..10000 days as seconds (--max-future-days, --keep-days and their settings). */
int gw_parse_days(const char *opt, const char *text, uint32_t *seconds);
/* The quarantine hook: cmd, else [gateway] quarantine_hook; [gateway] quarantine_hook_timeout. */
int gw_hook_from(smki_cli *c, const char *cmd, smki_gwq_hook *h);

int gw_check(smki_cli *c, int argc, char **argv);
int gw_quarantine(smki_cli *c, int argc, char **argv);
int gw_log(smki_cli *c, int argc, char **argv);

#endif
