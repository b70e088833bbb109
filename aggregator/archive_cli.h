/* archive_cli: the `ingrainctl archive` command (archive_query.h does the
 * work). argv[0] is "archive". Returns the exit code. */
#ifndef IG_ARCHIVE_CLI_H
#define IG_ARCHIVE_CLI_H

#include <stdio.h>

int ig_archive_cli(int argc, char **argv);
void ig_archive_usage(FILE *f);

#endif
