/* The capture floor: what any monitor pays per plugin run that keeps the
   plugin's output. One plugin at a time: posix_spawn with stdout and
   stderr on pipes, both read until end of file (poll), waitpid.
   Usage: capture_loop RUNS PLUGIN ARG. Prints this process's CPU per run
   in microseconds (user + system). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int run_once(char *const argv[]) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
        return -1;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    close(err[1]);
    if (rc != 0)
        return -1;
    struct pollfd watched[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_ends = 2;
    char buf[4096];
    while (open_ends > 0) {
        if (poll(watched, 2, -1) < 0)
            return -1;
        for (int i = 0; i < 2; i++) {
            if (watched[i].fd < 0 || watched[i].revents == 0)
                continue;
            if (read(watched[i].fd, buf, sizeof buf) <= 0) {
                close(watched[i].fd);
                watched[i].fd = -1;
                open_ends--;
            }
        }
    }
    int status;
    return waitpid(pid, &status, 0) == pid ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc != 4)
        return 2;
    long runs = atol(argv[1]);
    char *plugin[] = {argv[2], argv[3], NULL};
    for (long i = 0; i < runs; i++)
        if (run_once(plugin) != 0)
            return 1;
    struct rusage self;
    getrusage(RUSAGE_SELF, &self);
    double cpu = self.ru_utime.tv_sec + self.ru_stime.tv_sec +
                 (self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
    printf("%.1f\n", cpu / runs * 1e6);
    return 0;
}
