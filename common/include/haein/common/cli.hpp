#pragma once
/// @file
/// The one --help convention of haein's front ends (haein, haein-bench, train_mlp): an
/// option parser that was asked for help prints it to stdout and throws HelpShown; main()
/// catches it and exits 0. Nothing else runs, and no parser returns a "help was shown" flag.

namespace haein {

/// Not an error: the help asked for is on stdout.
struct HelpShown {};

}  // namespace haein
