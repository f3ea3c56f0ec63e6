/* Dies by SIGSEGV: a store through a null pointer (default), a load ("read"), or a jump to
 * address 0 ("jump"). Output before the fault is flushed. */
#include <stdio.h>
#include <string.h>

typedef void (*fnptr)(void);

int main(int argc, char **argv) {
    const char *how = argc > 1 ? argv[1] : "write";
    printf("segv test: %s\n", how);
    fflush(stdout);
    volatile int *volatile p = NULL;
    if (strcmp(how, "read") == 0) {
        printf("read %d\n", *p);
    } else if (strcmp(how, "jump") == 0) {
        volatile fnptr f = NULL;
        f();
    } else {
        *p = 42;
    }
    printf("survived (unexpected)\n");
    return 0;
}
