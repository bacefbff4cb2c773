/* SPDX-License-Identifier: BSL-1.0 */
/* musl-compat.h — forced into every *-linux-musl compile (-include):
 * libstdc++'s headers test __GLIBC_PREREQ, which musl does not define.
 * Defined here rather than as '-D__GLIBC_PREREQ(a,b)=0' so the printed
 * flags (toolchains/flags.mk print-flags) need no shell quoting. */
#ifndef __GLIBC_PREREQ
#define __GLIBC_PREREQ(major, minor) 0
#endif
