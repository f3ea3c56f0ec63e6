/* Signal handling: sigaction handlers for raise()d SIGUSR1/SIGUSR2, SA_SIGINFO fields,
 * blocked and pending signals delivered on unblock, SIGSEGV and SIGFPE-free recovery through
 * siglongjmp, sigaltstack, kill to self, signal masks inside handlers, SIG_IGN. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1, got_usr2, order[8], norder;
static sigjmp_buf recover;
static volatile int info_code, info_signo;
static volatile int fault_addr_ok;

static void on_usr1(int sig) {
    got_usr1++;
    order[norder++] = sig;
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    if (got_usr1 == 1) printf("  in handler: SIGUSR1 masked %d, SIGUSR2 masked %d\n", sigismember(&cur, SIGUSR1), sigismember(&cur, SIGUSR2));
}
static void on_usr2(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got_usr2++;
    order[norder++] = sig;
    info_signo = si->si_signo;
    info_code = si->si_code;
}
static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    fault_addr_ok = si->si_addr == (void *)0x10;
    siglongjmp(recover, sig);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaction(SIGUSR1, &sa, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr2;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR2, &sa, NULL);

    printf("raise SIGUSR1: %d\n", raise(SIGUSR1));
    printf("got_usr1 %d\n", got_usr1);
    printf("raise SIGUSR2: %d\n", raise(SIGUSR2));
    printf("got_usr2 %d signo %d code_is_tkill %d\n", got_usr2, info_signo, info_code == SI_TKILL);
    kill(getpid(), SIGUSR2);
    printf("after kill: got_usr2 %d code_is_user %d\n", got_usr2, info_code == SI_USER);

    sigset_t block, pending;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, NULL);
    raise(SIGUSR2);
    raise(SIGUSR1);
    sigpending(&pending);
    printf("blocked: pending USR1 %d USR2 %d, delivered so far %d+%d\n", sigismember(&pending, SIGUSR1), sigismember(&pending, SIGUSR2),
           got_usr1, got_usr2);
    norder = 0;
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    printf("after unblock: usr1 %d usr2 %d, order", got_usr1, got_usr2);
    for (int i = 0; i < norder; i++) printf(" %d", order[i]);
    printf("\n");

    signal(SIGUSR1, SIG_IGN);
    raise(SIGUSR1);
    printf("ignored SIGUSR1: count still %d\n", got_usr1);

    static char altstack[65536];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    printf("sigaltstack %d\n", sigaltstack(&ss, NULL));
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    int r = sigsetjmp(recover, 1);
    if (r == 0) {
        volatile int *volatile bad = (volatile int *)0x10;
        *bad = 1;
        printf("no fault (unexpected)\n");
    } else {
        printf("recovered from signal %d, si_addr ok %d\n", r, fault_addr_ok);
    }
    r = sigsetjmp(recover, 1);
    if (r == 0) {
        volatile int *volatile bad = (volatile int *)0x10;
        printf("read %d\n", *bad);
    } else {
        printf("recovered again from signal %d\n", r);
    }
    signal(SIGSEGV, SIG_DFL);
    return 0;
}
