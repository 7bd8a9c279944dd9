# compat/windows.mk - the Windows build, cross-compiled with mingw-w64, and
# its tests under Wine (included by the Makefile).
#
#   make windows        bin/server-wepoll.exe and bin/server-iocp.exe
#   make test-windows   install/check the packages, build, create the Wine
#                       prefix, run the integration suite on both .exe files
#
# The Windows binaries link the same common/ code as the Linux ones, with
# common/net_win.c in place of common/net.c (platform_win.c supplies what
# platform.h declares for Windows). Objects go under build/win/. The .exe is
# linked statically (C runtime, winpthreads) so it runs on a bare Windows or
# Wine prefix without extra DLLs.

WIN_CC ?= x86_64-w64-mingw32-gcc
WIN_BACKENDS := wepoll iocp
WIN_SERVERS := $(WIN_BACKENDS:%=bin/server-%.exe)
WIN_COMMON_SRC = $(filter-out common/net.c,$(COMMON_SRC))
# _WIN32_WINNT=0x0602 targets Windows 8 (what is used needs Vista or later:
# GetQueuedCompletionStatusEx, CancelIoEx, SIO_BASE_HANDLE). The POSIX
# thread-safe time functions (gmtime_r) and C99 printf formats are opt-in in
# mingw-w64; 64-bit file offsets too.
WIN_CPPFLAGS := -D_WIN32_WINNT=0x0602 -D_POSIX_THREAD_SAFE_FUNCTIONS=200112L \
	-D__USE_MINGW_ANSI_STDIO=1 -D_FILE_OFFSET_BITS=64 \
	-DDEFAULT_ROOT='"$(CURDIR)/www"' -Icommon -Icompat/wepoll
WIN_CFLAGS := -std=c11 $(WARNINGS) $(OPT) -g
WIN_LDFLAGS := -static -pthread
WIN_LIBS := -lws2_32 -lmswsock -lntdll

# Wine: a private prefix under build/, no Gecko/Mono prompts, no debug noise.
WINE_PREFIX ?= $(CURDIR)/build/win/wineprefix
WINE_ENV = WINEPREFIX=$(WINE_PREFIX) WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="

windows: $(WIN_SERVERS)

.PRECIOUS: build/win/%.o build/win/backends/%.o build/win/common/%.o

build/win/%.o: %.c
	$(call msg,WINCC,$@)
	@mkdir -p $(@D)
	$(Q)$(WIN_CC) $(WIN_CPPFLAGS) $(WIN_CFLAGS) -MMD -MP -c $< -o $@

bin/server-%.exe: build/win/backends/%.o $(WIN_COMMON_SRC:%.c=build/win/%.o)
	$(call msg,WINLD,$@)
	@mkdir -p $(@D)
	$(Q)$(WIN_CC) $(WIN_CFLAGS) $^ -o $@ $(WIN_LDFLAGS) $(WIN_LIBS)

# wepoll.exe also links the epoll-over-AFD layer.
bin/server-wepoll.exe: build/win/compat/wepoll/wepoll.o

# The layer's own semantics test (level, one-shot, hang-ups, ctl errors).
build/win/test-wepoll.exe: build/win/compat/wepoll/test_wepoll.o build/win/compat/wepoll/wepoll.o
	$(call msg,WINLD,$@)
	$(Q)$(WIN_CC) $(WIN_CFLAGS) $^ -o $@ $(WIN_LDFLAGS) $(WIN_LIBS)

$(WINE_PREFIX)/system.reg:
	@mkdir -p $(WINE_PREFIX)
	$(WINE_ENV) wineboot --init >/dev/null 2>&1 || true
	@$(WINE_ENV) wineserver --wait
	@test -f $@ || { echo "wine: could not create the prefix $(WINE_PREFIX)"; exit 1; }

WIN_SUITE = python3 tests/integration/run.py

test-windows:
	@scripts/ensure-deps.sh windows test
	@$(MAKE) --no-print-directory windows build/win/test-wepoll.exe
	@$(MAKE) --no-print-directory $(WINE_PREFIX)/system.reg
	@echo "== compat/wepoll semantics under Wine"
	@$(WINE_ENV) wine build/win/test-wepoll.exe
	@for exe in $(WIN_SERVERS); do \
		echo "== integration suite under Wine: $$exe"; \
		$(WINE_ENV) $(WIN_SUITE) --wrapper wine --platform wine --timeout-scale 4 $$exe \
			|| exit 1; \
	done
	@echo "test-windows: both Windows backends passed under Wine"

.PHONY: windows test-windows
