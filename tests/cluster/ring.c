/* A small MPI program for the test bed (bed_test.sh): 1 MiB passed around a ring of all
 * ranks and a 1 MiB MPI_Allreduce, every value checked. Rank 0 prints the host of every
 * rank ("rank R on HOST") and then "ring ok: N ranks". Built by the test with mpicc. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT (1024 * 1024 / 4) /* 1 MiB of int32 */

static int32_t value(int origin, int i) { return origin * 1000003 + i; }

static void fail(int rank, const char* what, int i, long got, long want) {
  fprintf(stderr, "ring: rank %d: %s: element %d is %ld, not %ld\n", rank, what, i, got, want);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  char name[MPI_MAX_PROCESSOR_NAME] = {0};
  int len = 0;
  MPI_Get_processor_name(name, &len);
  char* names = rank == 0 ? calloc((size_t)size, MPI_MAX_PROCESSOR_NAME) : NULL;
  MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names, MPI_MAX_PROCESSOR_NAME, MPI_CHAR,
             0, MPI_COMM_WORLD);

  /* The ring: every rank's buffer travels through all others, one hop at a time. */
  int32_t* held = malloc(COUNT * sizeof(int32_t));
  int32_t* got = malloc(COUNT * sizeof(int32_t));
  for (int i = 0; i < COUNT; ++i) held[i] = value(rank, i);
  int right = (rank + 1) % size, left = (rank + size - 1) % size;
  for (int step = 1; step < size; ++step) {
    MPI_Sendrecv(held, COUNT, MPI_INT32_T, right, step, got, COUNT, MPI_INT32_T, left, step,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    int origin = (rank - step + size) % size;
    for (int i = 0; i < COUNT; ++i)
      if (got[i] != value(origin, i)) fail(rank, "ring", i, got[i], value(origin, i));
    int32_t* t = held;
    held = got;
    got = t;
  }

  /* The allreduce: element i sums rank + i % 97 over all ranks. */
  for (int i = 0; i < COUNT; ++i) held[i] = rank + i % 97;
  MPI_Allreduce(held, got, COUNT, MPI_INT32_T, MPI_SUM, MPI_COMM_WORLD);
  for (int i = 0; i < COUNT; ++i) {
    long want = (long)size * (i % 97) + (long)size * (size - 1) / 2;
    if (got[i] != want) fail(rank, "allreduce", i, got[i], want);
  }

  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    for (int r = 0; r < size; ++r)
      printf("rank %d on %s\n", r, names + (size_t)r * MPI_MAX_PROCESSOR_NAME);
    printf("ring ok: %d ranks\n", size);
    fflush(stdout);
  }
  free(names);
  free(held);
  free(got);
  MPI_Finalize();
  return 0;
}
