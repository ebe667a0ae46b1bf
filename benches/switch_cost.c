/* What a wake-up costs on this machine: two processes (then two threads of one process) pass a byte
 * back and forth through pipes, first both pinned to CPU 0 (each hop a context switch on one CPU),
 * then on CPUs 0 and 1 (each hop wakes a task on the other CPU, which is idle in between).
 * Build and run: gcc -O2 -pthread benches/switch_cost.c -o /tmp/switch_cost && /tmp/switch_cost */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int ping[2], pong[2];
static const int N = 50000;

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void *echo(void *cpu) {
    char b;
    pin((int)(long)cpu);
    for (int i = 0; i < N; i++) {
        if (read(ping[0], &b, 1) != 1 || write(pong[1], &b, 1) != 1) break;
    }
    return 0;
}

/* Microseconds per one-way hop. */
static double run(int processes, int other_cpu) {
    struct timespec a, b;
    char c = 'x';
    pthread_t t;
    pid_t pid = 0;
    if (pipe(ping) || pipe(pong)) return -1;
    if (processes) {
        pid = fork();
        if (pid == 0) {
            echo((void *)(long)other_cpu);
            _exit(0);
        }
    } else {
        pthread_create(&t, 0, echo, (void *)(long)other_cpu);
    }
    pin(0);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < N; i++) {
        if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1) break;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (processes) waitpid(pid, 0, 0); else pthread_join(t, 0);
    close(ping[0]); close(ping[1]); close(pong[0]); close(pong[1]);
    return ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / N / 2 / 1000.0;
}

int main(void) {
    printf("processes, one CPU:  %6.2f us per hop\n", run(1, 0));
    printf("threads, one CPU:    %6.2f us per hop\n", run(0, 0));
    printf("processes, two CPUs: %6.2f us per hop\n", run(1, 1));
    printf("threads, two CPUs:   %6.2f us per hop\n", run(0, 1));
    return 0;
}
