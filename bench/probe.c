/* The child side of the benchmarks, in C so that its own cost stays out of the numbers.
 *
 *   probe stamp FD [CMD ARG...]   write "stamp NS" (CLOCK_MONOTONIC) to FD, then exec CMD or exit
 *   probe sigack FD SIGNO [MARK]  write "ready", then "ack NS" for every SIGNO that arrives
 *                                 (and "mark NS" for every MARK: a real-time MARK sent last
 *                                 comes after any SIGNO the init still had to forward)
 *   probe orphans FD GO_FD N      wait for a byte on GO_FD, then make N orphans in a chain of
 *                                 forks (each link forks the next and exits at once, so every
 *                                 link becomes the init's zombie); "start NS" and "end NS"
 *   probe zombies FD N            make N children that exit at once and are never waited for
 *                                 (N processes in the namespace's /proc), "ready N", then pause
 *   probe exit CODE               exit with CODE  } the bundle's tests, in images
 *   probe pause                   wait for signals } without a shell
 *
 * The harness compiles this at run time; no binary is committed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void report(int fd, const char *word, long long value) {
    char line[64];
    int length = snprintf(line, sizeof line, "%s %lld\n", word, value);
    if (write(fd, line, (size_t)length) != length) {
        _exit(3);
    }
}

static int stamp(int fd, char **command) {
    report(fd, "stamp", now_ns());
    if (command[0] == NULL) {
        return 0;
    }
    execvp(command[0], command);
    fprintf(stderr, "probe: exec %s: %s\n", command[0], strerror(errno));
    return 127;
}

static _Noreturn void sigack(int fd, int signo, int mark) {
    sigset_t wanted;
    sigemptyset(&wanted);
    sigaddset(&wanted, signo);
    if (mark > 0) {
        sigaddset(&wanted, mark);
    }
    sigprocmask(SIG_BLOCK, &wanted, NULL);
    report(fd, "ready", getpid());
    for (;;) {
        int got = sigwaitinfo(&wanted, NULL);
        if (got == signo) {
            report(fd, "ack", now_ns());
        } else if (got == mark) {
            report(fd, "mark", now_ns());
        }
    }
}

static pid_t fork_retrying(void) {
    for (;;) {
        pid_t pid = fork();
        if (pid >= 0 || errno != EAGAIN) {
            return pid;
        }
        usleep(100); /* the pids limit: wait for the init to reap some */
    }
}

static int orphans(int fd, int go_fd, long count) {
    char go;
    if (read(go_fd, &go, 1) != 1) {
        return 2;
    }
    report(fd, "start", now_ns());
    pid_t first = fork_retrying();
    if (first > 0) {
        waitpid(first, NULL, 0);
        pause(); /* the init's main child stays, so the init does not start leaving */
        return 0;
    }
    for (long made = 0; made < count; made++) {
        pid_t next = fork_retrying();
        if (next != 0) {
            _exit(next < 0 ? 4 : 0); /* the next link is now an orphan; this one a zombie */
        }
    }
    report(fd, "end", now_ns());
    _exit(0);
}

static _Noreturn void zombies(int fd, long count) {
    for (long made = 0; made < count; made++) {
        pid_t pid = fork_retrying();
        if (pid == 0) {
            _exit(0);
        }
        if (pid < 0) {
            _exit(4);
        }
    }
    report(fd, "ready", count);
    for (;;) {
        pause(); /* a signal's default action ends it, and its zombies with it */
    }
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "stamp") == 0) {
        return stamp(atoi(argv[2]), argv + 3);
    }
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "sigack") == 0) {
        sigack(atoi(argv[2]), atoi(argv[3]), argc == 5 ? atoi(argv[4]) : 0);
    }
    if (argc == 5 && strcmp(argv[1], "orphans") == 0) {
        return orphans(atoi(argv[2]), atoi(argv[3]), atol(argv[4]));
    }
    if (argc == 4 && strcmp(argv[1], "zombies") == 0) {
        zombies(atoi(argv[2]), atol(argv[3]));
    }
    if (argc == 3 && strcmp(argv[1], "exit") == 0) {
        return atoi(argv[2]);
    }
    if (argc == 2 && strcmp(argv[1], "pause") == 0) {
        for (;;) {
            pause(); /* a signal's default action ends it */
        }
    }
    fprintf(stderr, "usage: probe stamp FD [CMD...] | sigack FD SIGNO [MARK] | orphans FD GO_FD N"
                    " | zombies FD N | exit CODE | pause\n");
    return 2;
}
