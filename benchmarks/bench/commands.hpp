#pragma once
// The subcommands of haein-bench. Each takes its own argv (argv[0] is the subcommand's
// name), prints its table on stdout and returns the exit code; bad input is thrown as
// InvalidArgument, which main turns into exit code 2.

namespace haein::bench {

int collective_command(int argc, char** argv);
int bucket_command(int argc, char** argv);
int kernel_command(int argc, char** argv);
int place_command(int argc, char** argv);

}  // namespace haein::bench
