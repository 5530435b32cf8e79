/* The smki command's top-level commands. */
#ifndef SMKI_COMMANDS_H
#define SMKI_COMMANDS_H

#include "cli.h"

int cmd_hsm(smki_cli *c, int argc, char **argv);
int cmd_key(smki_cli *c, int argc, char **argv);
int cmd_sign(smki_cli *c, int argc, char **argv);
int cmd_verify(smki_cli *c, int argc, char **argv);
int cmd_eui64(smki_cli *c, int argc, char **argv);
int cmd_store(smki_cli *c, int argc, char **argv);
int cmd_lint(smki_cli *c, int argc, char **argv);
int cmd_ca(smki_cli *c, int argc, char **argv);
int cmd_repo(smki_cli *c, int argc, char **argv);

#endif
