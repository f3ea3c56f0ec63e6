/* Processes: fork + waitpid exit statuses (normal exit, killed by a signal), a pipe from
 * child to parent, vfork + _exit, wait4 with rusage, waitid, execve of this program with
 * arguments and a chosen environment, and failing execve calls (ENOENT, EACCES, ENOEXEC,
 * a script whose interpreter is missing).
 *
 * qemu-aarch64 without binfmt_misc cannot execve an AArch64 program (ENOEXEC); then the
 * child runs the exec'd code path itself, so that the output is the same either way. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int exec_child(int argc, char **argv) {
    printf("exec'd child: argc %d", argc);
    for (int i = 1; i < argc; i++) printf(" [%s]", argv[i]);
    const char *v = getenv("FORK_EXEC_VAR");
    printf(" env %s\n", v ? v : "(unset)");
    return atoi(argv[argc - 1]);
}

static void show(const char *what, int st) {
    if (WIFEXITED(st)) printf("%s: exited %d\n", what, WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) printf("%s: killed by signal %d\n", what, WTERMSIG(st));
    else printf("%s: status %#x\n", what, st);
}

static void try_exec(const char *label, const char *path) {
    char *av[] = {(char *)path, NULL};
    char *ev[] = {NULL};
    int r = execve(path, av, ev);
    printf("execve %s: %d %s\n", label, r, strerror(errno));
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "child") == 0) return exec_child(argc, argv);
    setvbuf(stdout, NULL, _IONBF, 0);

    /* fork + exit status */
    pid_t pid = fork();
    if (pid == 0) _exit(42);
    int st;
    printf("waitpid returned child: %d\n", waitpid(pid, &st, 0) == pid);
    show("child 1", st);

    /* killed by a signal */
    pid = fork();
    if (pid == 0) {
        signal(SIGUSR1, SIG_DFL);
        raise(SIGUSR1);
        _exit(0);
    }
    waitpid(pid, &st, 0);
    show("child 2", st);

    /* pipe child -> parent */
    int fds[2];
    pipe(fds);
    pid = fork();
    if (pid == 0) {
        close(fds[0]);
        const char msg[] = "hello through the pipe";
        write(fds[1], msg, sizeof msg - 1);
        _exit(0);
    }
    close(fds[1]);
    char buf[64] = {0};
    ssize_t n, tot = 0;
    while ((n = read(fds[0], buf + tot, sizeof buf - 1 - tot)) > 0) tot += n;
    close(fds[0]);
    printf("parent read %zd bytes: %s\n", tot, buf);
    wait4(pid, &st, 0, NULL);
    show("child 3", st);

    /* memory is copied, not shared */
    static int shared = 1;
    pid = fork();
    if (pid == 0) {
        shared = 99;
        _exit(shared);
    }
    waitpid(pid, &st, 0);
    printf("after child wrote 99: parent sees %d, child exit %d\n", shared, WEXITSTATUS(st));

    /* vfork + _exit; wait4 with rusage; waitid */
    pid = vfork();
    if (pid == 0) _exit(7);
    struct rusage ru;
    printf("wait4 pid ok %d\n", wait4(pid, &st, 0, &ru) == pid);
    show("vfork child", st);
    pid = fork();
    if (pid == 0) _exit(3);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(P_PID, pid, &si, WEXITED);
    printf("waitid %d: signo %d code_exited %d status %d pid ok %d\n", r, si.si_signo, si.si_code == CLD_EXITED,
           si.si_status, si.si_pid == pid);
    printf("no more children: %d %s\n", waitpid(-1, &st, WNOHANG), strerror(errno));

    /* execve of this program */
    pid = fork();
    if (pid == 0) {
        char *av[] = {"fork_exec", "child", "two words", "5", NULL};
        char *ev[] = {"FORK_EXEC_VAR=from parent", NULL};
        execve("/proc/self/exe", av, ev);
        if (errno == ENOEXEC) {
            setenv("FORK_EXEC_VAR", "from parent", 1);
            _exit(exec_child(4, av));
        }
        printf("execve failed: %s\n", strerror(errno));
        _exit(127);
    }
    waitpid(pid, &st, 0);
    show("exec'd child", st);

    /* failing execve calls return in the caller */
    try_exec("missing", "/nonexistent/program");
    int fd = open("not_exec.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(fd, "data\n", 5);
    close(fd);
    try_exec("not executable", "./not_exec.txt");
    fd = open("garbage.bin", O_WRONLY | O_CREAT | O_TRUNC, 0755);
    write(fd, "\x01\x02garbage", 9);
    close(fd);
    try_exec("garbage", "./garbage.bin");
    fd = open("script.sh", O_WRONLY | O_CREAT | O_TRUNC, 0755);
    write(fd, "#!/nonexistent/interp -x\necho hi\n", 33);
    close(fd);
    try_exec("script with missing interpreter", "./script.sh");
    try_exec("directory", "/");
    return 0;
}
