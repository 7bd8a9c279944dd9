# tests/unit/unit.mk - `make test-unit`: the C unit tests (cmocka).
#
# One binary per area of common/, each linked with only the common/ objects
# it drives, so a test binary also documents what depends on what:
#
#   test_http    the request-head parser and the chunked decoder
#   test_router  the radix-tree router, percent-decoding, query strings
#   test_conn    the sans-I/O connection state machine, fed byte strings
#   test_timer   the deadline heap, against a brute-force model
#   test_conditional  HTTP-dates, validators, If-Match and friends
#
# The tests are built with AddressSanitizer and UndefinedBehaviorSanitizer
# (and a guard page under every parser input, see unit.h): a unit test that
# reads a freed buffer or overflows an int should fail loudly, not pass by
# luck, and these binaries are small enough that the slowdown costs nothing.
# `make test-unit UNIT_SAN=` builds them without sanitizers, for a compiler
# that lacks the runtimes.
#
# Objects live in build/unit/<compiler>[-san]/, apart from the server builds,
# so `make test-unit CC=clang` never links objects another compiler made.
# One binary can be run alone, e.g. build/unit/cc-san/test_conn; cmocka's
# CMOCKA_TEST_ABORT=1 makes the first failure abort, for a debugger.

UNIT_SAN ?= $(SAN_asan)
UNIT_TAG := $(notdir $(firstword $(CC)))$(if $(strip $(UNIT_SAN)),-san)
UNIT_DIR := build/unit/$(UNIT_TAG)
UNIT_NAMES := http router conn timer conditional
UNIT_BINS := $(UNIT_NAMES:%=$(UNIT_DIR)/test_%)

UNIT_DEPS_http := http_parse
UNIT_DEPS_router := router http_parse
UNIT_DEPS_conn := conn handlers response router static_files http_parse conditional
UNIT_DEPS_timer := timer
UNIT_DEPS_conditional := conditional http_parse

$(UNIT_DIR)/%.o: %.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) -Itests/unit $(ALL_CFLAGS) $(UNIT_SAN) -MMD -MP -c $< -o $@

define unit_link
$(UNIT_DIR)/test_$(1): $(UNIT_DIR)/tests/unit/test_$(1).o $(UNIT_DIR)/tests/unit/unit.o \
		$(UNIT_DEPS_$(1):%=$(UNIT_DIR)/common/%.o)
	$$(call msg,LD,$$@)
	$$(Q)$$(CC) $$(ALL_CFLAGS) $$(UNIT_SAN) $$^ -o $$@ $$(ALL_LDFLAGS) -lcmocka
endef
$(foreach t,$(UNIT_NAMES),$(eval $(call unit_link,$(t))))

# Every binary runs even if an earlier one failed; the exit status says
# whether all passed, and the last lines are cmocka's own summary.
test-unit: $(UNIT_BINS)
	@rc=0; for t in $(UNIT_BINS); do $$t || rc=1; done; exit $$rc

.PHONY: test-unit
