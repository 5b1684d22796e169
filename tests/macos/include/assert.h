/* See TargetConditionals.h: only for compiling ring's C for macOS on Linux, never linked. */
#define assert(x) ((void)0)
