/* Returning from a SIGUSR1 handler (rt_sigreturn through glibc's __restore_rt, and through
 * the kernel's vDSO trampoline when no SA_RESTORER is given): integer registers, FP/SIMD
 * registers, FPCR, condition flags and the signal mask must be exactly as before. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile int hits;
static volatile double hd;

static void clobber(int sig) {
    hits++;
    /* Use plenty of registers in the handler. */
    volatile double a = 1.25, b = 3.5;
    hd = a * b + sig;
    __asm__ volatile("mov x19, #1\n mov x20, #2\n mov x21, #3\n mov x22, #4\n mov x28, #5\n"
                     "fmov d8, #1.0\n fmov d9, #2.0\n fmov d15, #3.0\n movi v16.16b, #0xaa\n"
                     "msr fpcr, xzr\n cmp xzr, xzr\n" ::: "x19", "x20", "x21", "x22", "x28", "d8", "d9", "d15", "v16", "cc");
}

/* Sets callee-saved and some caller-saved registers, raises the signal with a raw tgkill
 * (so no libc code runs between setting and checking), and checks them afterwards. */
static int check_regs(void) {
    uint64_t out[8];
    double fo[3];
    uint64_t v16lo, fpcr, nzcv;
    long pid = getpid(), tid = gettid();
    __asm__ volatile(
        "mov x19, #0x1111\n mov x20, #0x2222\n mov x21, #0x3333\n mov x22, #0x4444\n mov x28, #0x5555\n"
        "fmov d8, #0.5\n fmov d9, #-1.5\n fmov d15, #10.0\n movi v16.2d, #0xff00ff00ff00ff00\n"
        "mov x9, #0x400000\n msr fpcr, x9\n" /* RMode = toward +inf */
        "mov x0, %[pid]\n mov x1, %[tid]\n mov x2, #10\n mov x8, #131\n"
        "mov x10, #1\n cmp x10, #2\n" /* N=1, C=0 */
        "svc #0\n"
        "mrs x11, nzcv\n str x11, %[nzcv]\n"
        "str x19, [%[o], #0]\n str x20, [%[o], #8]\n str x21, [%[o], #16]\n str x22, [%[o], #24]\n str x28, [%[o], #32]\n"
        "str d8, [%[f], #0]\n str d9, [%[f], #8]\n str d15, [%[f], #16]\n"
        "fmov %[v], d16\n mrs %[fpcr], fpcr\n msr fpcr, xzr\n"
        : [v] "=r"(v16lo), [fpcr] "=r"(fpcr), [nzcv] "=m"(nzcv)
        : [pid] "r"(pid), [tid] "r"(tid), [o] "r"(out), [f] "r"(fo)
        : "x0", "x1", "x2", "x8", "x9", "x10", "x11", "x19", "x20", "x21", "x22", "x28", "d8", "d9", "d15", "v16", "cc",
          "memory");
    int ok = out[0] == 0x1111 && out[1] == 0x2222 && out[2] == 0x3333 && out[3] == 0x4444 && out[4] == 0x5555;
    printf("  x regs ok %d\n", ok);
    printf("  d8 %g d9 %g d15 %g v16 %016llx\n", fo[0], fo[1], fo[2], (unsigned long long)v16lo);
    printf("  fpcr %#llx nzcv %#llx\n", (unsigned long long)fpcr, (unsigned long long)nzcv);
    return ok;
}

static void restorer_less(int sig) { hits += 100; }

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = clobber;
    sigaction(SIGUSR1, &sa, NULL);
    check_regs();
    printf("hits %d hd %g\n", hits, hd);
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    printf("SIGUSR1 blocked after return: %d\n", sigismember(&cur, SIGUSR1));

    /* The raw rt_sigaction without SA_RESTORER: the return goes through the vDSO. */
    struct { void *h; unsigned long flags; void *restorer; unsigned long mask; } k = {restorer_less, 0, 0, 0};
    long r = syscall(SYS_rt_sigaction, SIGUSR2, &k, NULL, 8);
    printf("raw rt_sigaction %ld\n", r);
    raise(SIGUSR2);
    printf("hits after vdso return %d\n", hits);
    return 0;
}
