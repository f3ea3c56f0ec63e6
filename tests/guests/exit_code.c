/* Exits with its first argument as the status (exit() keeps the low 8 bits). */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int code = argc > 1 ? atoi(argv[1]) : 3;
    printf("exiting with %d\n", code);
    fprintf(stderr, "this line goes to stderr\n");
    if (argc > 2) _Exit(code); /* no stdio flush: the line above may be lost when buffered */
    exit(code);
}
