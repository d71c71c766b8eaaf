#include <stdio.h>

/* A point in the plane. */
struct point {
    double x;
    double y;
};

typedef struct {
    int w, h;
} size_t2;

/* Adds two integers. */
int add(int a, int b) {
    return a + b;
}

static const char *name(void) { return "demo"; }
