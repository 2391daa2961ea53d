// SPDX-License-Identifier: GPL-2.0
/*
 * A fixed page-churning workload: maps anonymous memory, touches every page,
 * unmaps it, ROUNDS times. Each round allocates and frees MIB of base pages,
 * so every page goes through page_ref_set, gets and puts.
 *
 * usage: page-churn MIB ROUNDS
 * Reads one byte from stdin before it starts, so that tracers can attach
 * first (give it /dev/null to start at once). Prints "done PAGES pages".
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3 || atol(argv[1]) <= 0 || atol(argv[2]) <= 0) {
		fprintf(stderr, "usage: page-churn MIB ROUNDS\n");
		return 2;
	}
	size_t bytes = (size_t)atol(argv[1]) << 20;
	long rounds = atol(argv[2]);
	long page = sysconf(_SC_PAGESIZE);
	char go;

	if (read(0, &go, 1) < 0) {
		perror("page-churn: read");
		return 1;
	}
	for (long r = 0; r < rounds; r++) {
		char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED) {
			perror("page-churn: mmap");
			return 1;
		}
		madvise(mem, bytes, MADV_NOHUGEPAGE);
		for (size_t off = 0; off < bytes; off += page)
			mem[off] = 1;
		munmap(mem, bytes);
	}
	printf("done %ld pages\n", (long)(bytes / page) * rounds);
	return 0;
}
