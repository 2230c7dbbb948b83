# haein_add_mpi_test(NAME target RANKS n [ARGS ...]): runs a test executable under the real
# mpirun with n ranks. Root (CI containers) and a 2-core machine need the two flags below.
find_package(MPI REQUIRED COMPONENTS CXX)
function(haein_add_mpi_test)
  cmake_parse_arguments(T "" "NAME;TARGET;RANKS" "ARGS" ${ARGN})
  add_test(NAME ${T_NAME}
    COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${T_RANKS} --oversubscribe
            --allow-run-as-root --bind-to none ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${T_TARGET}> ${T_ARGS})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "mpi" TIMEOUT 120
    ENVIRONMENT "OMPI_MCA_rmaps_base_oversubscribe=1;PRTE_MCA_rmaps_default_mapping_policy=:oversubscribe")
endfunction()
