/* setjmp/longjmp: simple, out of deep recursion, through a library callback (qsort), value 0
 * turned into 1, volatile locals kept, nested jump buffers, sigsetjmp/siglongjmp with the
 * signal mask saved and restored. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static jmp_buf env, env2;
static sigjmp_buf senv;
static int depth_reached;

static void recurse(int depth) {
    volatile char pad[64];
    pad[depth % 64] = (char)depth;
    depth_reached = depth + pad[depth % 64] - (char)depth;
    if (depth == 500) longjmp(env, depth);
    if (depth < 1000) recurse(depth + 1);
    pad[0]++;
}

static int calls;
static int cmp_jump(const void *a, const void *b) {
    if (++calls == 20) longjmp(env2, 7);
    return *(const int *)a - *(const int *)b;
}

static double fp_state(double x) {
    jmp_buf j;
    volatile double acc = x;
    if (setjmp(j) == 0) {
        acc = acc * 3.0 + 0.25;
        longjmp(j, 1);
    }
    return acc;
}

int main(void) {
    volatile int counter = 0;
    int r = setjmp(env);
    counter++;
    printf("setjmp returned %d (counter %d)\n", r, counter);
    if (r == 0) longjmp(env, 0); /* becomes 1 */
    if (r == 1) longjmp(env, -5);
    if (r == -5) {
        r = setjmp(env);
        if (r == 0) recurse(0);
        printf("out of recursion: %d, depth %d\n", r, depth_reached);
    }

    int data[64];
    for (int i = 0; i < 64; i++) data[i] = (i * 37) % 64;
    if ((r = setjmp(env2)) == 0) {
        qsort(data, 64, sizeof data[0], cmp_jump);
        printf("qsort finished (unexpected)\n");
    } else {
        printf("jumped out of qsort comparator: %d after %d calls\n", r, calls);
    }

    printf("fp across longjmp: %a\n", fp_state(1.5));

    sigset_t set, cur;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    if (sigsetjmp(senv, 1) == 0) {
        sigprocmask(SIG_BLOCK, &set, NULL);
        sigprocmask(SIG_SETMASK, NULL, &cur);
        printf("inside: SIGUSR1 blocked %d\n", sigismember(&cur, SIGUSR1));
        siglongjmp(senv, 3);
    }
    sigprocmask(SIG_SETMASK, NULL, &cur);
    printf("after siglongjmp(savemask=1): SIGUSR1 blocked %d\n", sigismember(&cur, SIGUSR1));
    if (sigsetjmp(senv, 0) == 0) {
        sigprocmask(SIG_BLOCK, &set, NULL);
        siglongjmp(senv, 4);
    }
    sigprocmask(SIG_SETMASK, NULL, &cur);
    printf("after siglongjmp(savemask=0): SIGUSR1 blocked %d\n", sigismember(&cur, SIGUSR1));
    return 0;
}
