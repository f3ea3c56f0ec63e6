/* Prints on both streams, then abort(): the guest dies by SIGABRT. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    printf("about to abort\n");
    fflush(stdout);
    fprintf(stderr, "abort: stderr before abort()\n");
    abort();
}
