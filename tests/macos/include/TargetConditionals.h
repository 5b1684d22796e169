/* Stand-ins for the three Apple SDK headers ring's C code includes, so that `make check-macos`
 * can compile the crate for macOS on Linux (a type check of the macOS build; nothing built
 * with these is ever linked or run). */
#define TARGET_OS_IPHONE 0
#define TARGET_OS_OSX 1
#define TARGET_OS_MAC 1
