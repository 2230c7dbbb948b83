#pragma once
// The world communicator of an MPI test program (mpi_test_main.cpp owns it).
#include "haein/runtime/communicator.hpp"

namespace haein::test {
runtime::Communicator& world();
}
