/*
 * deny_io_uring.c - run a command in a world without io_uring.
 *
 *     deny_io_uring CMD [ARGS...]
 *
 * Installs a seccomp filter under which io_uring_setup(2) fails with ENOSYS,
 * as on a kernel built without io_uring, then execs CMD. The filter is
 * inherited across exec and fork, so CMD and everything it starts see the
 * same. The integration suite runs the io_uring server under it and expects
 * exit code 3 and a message naming io_uring (the probe in backend.h).
 *
 * What it teaches: seccomp-bpf. A filter is a tiny classic-BPF program run
 * on every system call; it reads the struct seccomp_data the kernel passes
 * (architecture, call number, arguments) and returns a verdict. Here: if the
 * architecture is the one this tool was built for and the call is
 * io_uring_setup, answer ENOSYS; otherwise allow. Any other architecture
 * (a 32-bit compat call, say) is allowed untouched: its numbers mean other
 * calls, so matching them against ours would deny the wrong thing. (On
 * x86_64 the x32 ABI shares the architecture value and sets bit 30 of the
 * number; those calls pass too, as nothing this tool runs uses that ABI.)
 *
 * Needs: Linux 3.5+ (seccomp filters). No privileges: PR_SET_NO_NEW_PRIVS
 * lets an unprivileged process install a filter. Exit codes: 2 for bad
 * usage, 126 if the filter cannot be installed, 127 if CMD cannot be run.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define THIS_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define THIS_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define THIS_ARCH AUDIT_ARCH_I386
#elif defined(__riscv) && __riscv_xlen == 64
#define THIS_ARCH AUDIT_ARCH_RISCV64
#else
#error "deny_io_uring: add this architecture's AUDIT_ARCH_* value"
#endif

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425 /* the same number on every architecture */
#endif

/* Offsets into the struct seccomp_data the filter reads. */
#define ARCH_OFF offsetof(struct seccomp_data, arch)
#define NR_OFF   offsetof(struct seccomp_data, nr)

/* Installs the filter. Returns 0 or -errno. */
static int deny_io_uring_setup(void)
{
	struct sock_filter code[] = {
		/* 1. Another ABI: allow (its call numbers are not ours). */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARCH_OFF),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, THIS_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* 2. io_uring_setup: fail with ENOSYS, as if it did not exist. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
		/* 3. Everything else: allow. */
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof(code) / sizeof(code[0])),
		.filter = code,
	};

	/* Without privileges, a filter may only be added once the process
	 * promises never to gain privileges again (setuid binaries). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -errno;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 2) {
		fprintf(stderr,
		        "usage: %s CMD [ARGS...]\n"
		        "Runs CMD with io_uring_setup(2) failing with ENOSYS.\n",
		        argv[0]);
		return 2;
	}
	if ((rc = deny_io_uring_setup()) < 0) {
		fprintf(stderr, "%s: cannot install the seccomp filter: %s\n", argv[0],
		        strerror(-rc));
		return 126;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "%s: cannot run %s: %s\n", argv[0], argv[1], strerror(errno));
	return 127;
}
