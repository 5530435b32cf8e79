/* The smki command's top-level commands. */
#ifndef SMKI_COMMANDS_H
#define SMKI_COMMANDS_H

#include "cli.h"
#include "ra/ra.h"

/* The home that RA-gated help examples assume (the heading of their "Examples (...):"
 * block; tests/integration/help_examples.sh prepares exactly this home). */
#define HELP_TEST_HOME                                                                     \
    "in a test home: 'smki ca init --env test' made its CAs; RA operator tester, its\n"    \
    "key in SMKI_OPERATOR_KEY; Testing Participant GITTEST holding User ID\n"            \
    "90-B3-D5-1F-30-01-00-00, authorised for supplier and device certificates; Party\n"  \
    "PARTY0001 authorised for DCCKI TLS certificates"

int cmd_hsm(smki_cli *c, int argc, char **argv);
int cmd_key(smki_cli *c, int argc, char **argv);
int cmd_sign(smki_cli *c, int argc, char **argv);
int cmd_verify(smki_cli *c, int argc, char **argv);
int cmd_eui64(smki_cli *c, int argc, char **argv);
int cmd_store(smki_cli *c, int argc, char **argv);
int cmd_lint(smki_cli *c, int argc, char **argv);
int cmd_ca(smki_cli *c, int argc, char **argv);
int cmd_ca_batch(smki_cli *c, int argc, char **argv); /* smki ca batch (cmd_ca_batch.c) */
/* The ceremony's configuration: --config FILE (*own, the caller frees), or the home's smki.conf. */
int ca_ceremony_conf(smki_cli *c, const char *config, smki_conf **own, const smki_conf **conf);
int cmd_ca_keys(smki_cli *c, int argc, char **argv);  /* smki ca keys (cmd_ca_keys.c) */
int cmd_gbcs(smki_cli *c, int argc, char **argv);
int cmd_device(smki_cli *c, int argc, char **argv);
int cmd_ra(smki_cli *c, int argc, char **argv);
int cmd_audit(smki_cli *c, int argc, char **argv);

/* Shared with 'smki ca issue', which issues through the RA's gate (cmd_ra.c). */
struct smki_ra;
/* The acting operator's key: op/key (the command's --operator/--operator-key), else
 * SMKI_OPERATOR(_KEY), [operators] NAME = KEY. */
int ra_cli_actor(smki_cli *c, const char *op, const char *key, smki_key **out);
/* Open the audit checkpoint key (audit.checkpoint_key, default smki-audit) if it can be. */
void ra_cli_checkpoint_key(smki_cli *c, struct smki_ra *ra);

/* A CA action's session (cmd_ca.c, cmd_ca_keys.c): the store, its RA, and the operator's
 * key when one is named and the store (or issuing in test) needs one; the smki_ra_*
 * entry point then decides. issues: the action issues certificates. */
typedef struct {
    smki_store *s;
    smki_ra *ra;
    smki_key *op_k;
    smki_ra_actor actor;
    const smki_ra_actor *by; /* &actor, or NULL: no operator named */
} ca_session;
int ca_session_open(smki_cli *c, const char *env, int issues, const char *op, const char *op_key, ca_session *x);
void ca_session_close(ca_session *x);

int cmd_gbcs_gateway(smki_cli *c, int argc, char **argv);
int cmd_file(smki_cli *c, int argc, char **argv);
int cmd_repo(smki_cli *c, int argc, char **argv);
int cmd_doctor(smki_cli *c, int argc, char **argv);
int cmd_enrol(smki_cli *c, int argc, char **argv);
int cmd_duis(smki_cli *c, int argc, char **argv);

#endif
