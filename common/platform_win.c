/*
 * platform_win.c - platform.h for Windows (mingw-w64): the clock, static
 * files, paths under --root, and the stop request.
 *
 * What it teaches: what the POSIX calls of platform.h become on Windows.
 * - The monotonic clock is the performance counter.
 * - pread() is ReadFile() with the offset in an OVERLAPPED structure.
 * - realpath() is GetFinalPathNameByHandle() on an opened handle, so that
 *   links and junctions are resolved the way the kernel will follow them.
 * - There are no signals: Ctrl+C (and Ctrl+Break, closing the console,
 *   logging off) reach a process as console control events, delivered on a
 *   thread the system creates. The handler only sets an event; main() waits
 *   on it in platform_wait_stop(). Under Wine, SIGINT arrives this way too.
 *
 * Needs: Windows 8 or later (or Wine 6+), linked with -lws2_32.
 * The whole file is empty on other systems (the Makefile compiles every
 * .c file in common/).
 */
#ifdef _WIN32

#include <winsock2.h>
#include <windows.h>

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "platform.h"

int64_t clock_ms(void)
{
	static LARGE_INTEGER freq;
	LARGE_INTEGER now;

	if (freq.QuadPart == 0)
		QueryPerformanceFrequency(&freq); /* fixed at boot; races are benign */
	QueryPerformanceCounter(&now);
	/* split the division so that counter * 1000 never overflows */
	return now.QuadPart / freq.QuadPart * 1000 +
	       now.QuadPart % freq.QuadPart * 1000 / freq.QuadPart;
}

ssize_t platform_pread(int fd, void *buf, size_t len, int64_t off)
{
	HANDLE h = (HANDLE)_get_osfhandle(fd);
	OVERLAPPED ov = { .Offset = (DWORD)off, .OffsetHigh = (DWORD)((uint64_t)off >> 32) };
	DWORD got = 0;

	if (h == INVALID_HANDLE_VALUE) {
		errno = EBADF;
		return -1;
	}
	if (len > 1u << 30)
		len = 1u << 30;
	if (!ReadFile(h, buf, (DWORD)len, &got, &ov)) {
		if (GetLastError() == ERROR_HANDLE_EOF)
			return 0;
		errno = -platform_errno_of(GetLastError());
		return -1;
	}
	return (ssize_t)got;
}

void platform_close_file(int fd)
{
	_close(fd);
}

int platform_open_file(const char *path)
{
	return _open(path, _O_RDONLY | _O_BINARY | _O_NOINHERIT);
}

/* Opens a directory handle as a C runtime descriptor (keeps --root pinned
 * while the server runs, as the POSIX descriptor does). */
int platform_open_dir(const char *path)
{
	BY_HANDLE_FILE_INFORMATION info;
	HANDLE h = CreateFileA(path, 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
	                       NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
	int fd;

	if (h == INVALID_HANDLE_VALUE) {
		errno = -platform_errno_of(GetLastError());
		return -1;
	}
	if (!GetFileInformationByHandle(h, &info) ||
	    !(info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)) {
		CloseHandle(h);
		errno = ENOTDIR;
		return -1;
	}
	if ((fd = _open_osfhandle((intptr_t)h, _O_RDONLY)) < 0)
		CloseHandle(h);
	return fd;
}

/* "\\?\C:\dir\file" -> "C:/dir/file": the rest of the server compares paths
 * with '/' separators, which Windows accepts as well. */
char *platform_realpath(const char *path, char *real)
{
	HANDLE h = CreateFileA(path, 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
	                       NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
	char tmp[PATH_MAX];
	DWORD n;

	if (h == INVALID_HANDLE_VALUE) {
		errno = -platform_errno_of(GetLastError());
		return NULL;
	}
	n = GetFinalPathNameByHandleA(h, tmp, sizeof(tmp), FILE_NAME_NORMALIZED);
	CloseHandle(h);
	if (n == 0 || n >= sizeof(tmp)) {
		errno = n == 0 ? EINVAL : ENAMETOOLONG;
		return NULL;
	}
	const char *p = strncmp(tmp, "\\\\?\\", 4) == 0 ? tmp + 4 : tmp;
	size_t i;
	for (i = 0; p[i] != '\0'; i++)
		real[i] = p[i] == '\\' ? '/' : p[i];
	real[i] = '\0';
	return real;
}

static HANDLE stop_event;

static BOOL WINAPI on_console_event(DWORD type)
{
	(void)type; /* Ctrl+C, Ctrl+Break, close, logoff, shutdown: all mean stop */
	SetEvent(stop_event);
	return TRUE;
}

/* Also puts stdout in binary mode: the "listening on" line must end in
 * "\n", not the "\r\n" of the C runtime's text mode. */
void platform_signals_init(void)
{
	stop_event = CreateEventA(NULL, TRUE, FALSE, NULL);
	SetConsoleCtrlHandler(on_console_event, TRUE);
	_setmode(_fileno(stdout), _O_BINARY);
}

bool platform_wait_stop(int ms)
{
	return WaitForSingleObject(stop_event, (DWORD)ms) == WAIT_OBJECT_0;
}

/* shutdown() does not wake a listening socket on Windows; cancelling its
 * pending I/O does: an AcceptEx completes with ERROR_OPERATION_ABORTED. Loops
 * that only poll the listener notice `stopping` at their next timeout. */
void platform_wake_listener(int fd)
{
	CancelIoEx((HANDLE)(uintptr_t)fd, NULL);
}

int platform_errno_of(unsigned long err)
{
	switch (err) {
	case WSAEWOULDBLOCK:
	case WSA_IO_PENDING:
		return -EAGAIN;
	case WSAEINTR:
	case ERROR_OPERATION_ABORTED:
		return -EINTR;
	case WSAECONNRESET:
	case WSAENETRESET:
	case ERROR_NETNAME_DELETED:
		return -ECONNRESET;
	case WSAECONNABORTED:
	case ERROR_CONNECTION_ABORTED:
		return -ECONNABORTED;
	case WSAEMFILE:
	case ERROR_TOO_MANY_OPEN_FILES:
		return -EMFILE;
	case WSAENOBUFS:
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
		return -ENOBUFS;
	case WSAEADDRINUSE:
		return -EADDRINUSE;
	case WSAEADDRNOTAVAIL:
		return -EADDRNOTAVAIL;
	case WSAEACCES:
	case ERROR_ACCESS_DENIED:
		return -EACCES;
	case WSAEINVAL:
	case ERROR_INVALID_PARAMETER:
		return -EINVAL;
	case WSAENOTSOCK:
	case ERROR_INVALID_HANDLE:
		return -EBADF;
	case WSAENOTCONN:
		return -ENOTCONN;
	case WSAESHUTDOWN:
		return -EPIPE;
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
	case ERROR_INVALID_NAME:
	case ERROR_BAD_NETPATH:
		return -ENOENT;
	default:
		return -EIO;
	}
}

#endif /* _WIN32 */
