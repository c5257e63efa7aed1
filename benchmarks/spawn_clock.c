/* The third clock for benchmarks/harness_agreement.py: wall time of a command, from just
 * before fork to just after wait4 returns, on CLOCK_MONOTONIC, with no interpreter or
 * runtime library between the clock and the kernel. stdin, stdout and stderr are /dev/null
 * (as hyperfine -N does), so neither side reads the command's output.
 *
 * Usage: spawn_clock RUNS WARMUP COMMAND [ARG...]
 * Prints one line per measured run: the nanoseconds it took. Exits 1 if any run fails.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s RUNS WARMUP COMMAND [ARG...]\n", argv[0]);
        return 2;
    }
    int runs = atoi(argv[1]), warmup = atoi(argv[2]);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull < 0) {
        perror("/dev/null");
        return 2;
    }
    for (int i = 0; i < warmup + runs; i++) {
        long long t0 = now_ns();
        pid_t pid = fork();
        if (pid == 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
            execvp(argv[3], argv + 3);
            _exit(127);
        }
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        int status;
        struct rusage ru;
        if (wait4(pid, &status, 0, &ru) < 0) {
            perror("wait4");
            return 1;
        }
        long long t1 = now_ns();
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "%s: run %d failed (status %d)\n", argv[3], i, status);
            return 1;
        }
        if (i >= warmup)
            printf("%lld\n", t1 - t0);
    }
    return 0;
}
