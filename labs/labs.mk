# labs/labs.mk - the course labs (included by the Makefile). See labs/README.md.
#
#   make lab-start LAB=n   write the starter of lab n to labs/work/lab<n>/: the
#                          reference files with the lab's marked parts replaced
#                          by TODO stubs (FORCE=1 overwrites your work there)
#   make lab-build LAB=n   build bin/lab<n>-server-<backend> from your copy of
#                          the marked files plus the unmodified rest
#   make grade LAB=n       build, then grade your copy: NN/100
#   make grade LAB=n SOLUTION=1   grade the reference instead
#   make lab-bench LAB=n   the harness on your binary beside the reference
#   make test-labs         every reference scores 100, every starter well below
#
# Which files a lab changes is read from the LAB markers in the reference
# (labs/tools/labgen.py files n): nothing is listed twice. The student's
# objects live in build/lab<n>/, apart from everyone else's; the files the
# lab does not touch are linked from the ordinary build/plain objects.
# Variables: LAB_WORK, LAB_BUILD, LAB_BIN move the working copy, objects and
# binaries (make test-labs uses them to grade fresh starters without touching
# labs/work/); GRADE_FLAGS passes options to labs/tools/grade.py.

PYTHON ?= python3
LABGEN := $(PYTHON) labs/tools/labgen.py
LAB_GRADE := $(PYTHON) labs/tools/grade.py
GRADE_FLAGS ?=

ifneq ($(LAB),)
LAB_WORK ?= labs/work/lab$(LAB)
LAB_BUILD ?= build/lab$(LAB)
LAB_BIN ?= bin
LAB_FILES := $(shell $(LABGEN) files $(LAB) 2>/dev/null)
LAB_BACKENDS := $(shell $(LABGEN) info $(LAB) backends 2>/dev/null)
LAB_UNITS := $(shell $(LABGEN) info $(LAB) unit 2>/dev/null)
LAB_C_FILES := $(filter %.c,$(LAB_FILES))

# The object of reference file $(1) for the student's binary: the student's
# copy if the lab marks the file, the ordinary build otherwise.
lab_obj = $(if $(filter $(1),$(LAB_C_FILES)),$(LAB_BUILD)/$(1:.c=.o),build/plain/$(1:.c=.o))
lab_unit_obj = $(if $(filter $(1),$(LAB_C_FILES)),$(LAB_BUILD)/unit/$(1:.c=.o),$(UNIT_DIR)/$(1:.c=.o))

# The student's files see the reference headers: "../common/x.h" resolves
# through -Icommon, "backend.h" through -Ibackends.
LAB_CPPFLAGS := -Ibackends $(if $(filter backends/kqueue.c,$(LAB_C_FILES)),$(KQUEUE_LAYER_CFLAGS))

$(LAB_BUILD)/%.o: $(LAB_WORK)/%.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(LAB_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LAB_BUILD)/unit/%.o: $(LAB_WORK)/%.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(LAB_CPPFLAGS) -Itests/unit $(ALL_CFLAGS) $(UNIT_SAN) -MMD -MP -c $< -o $@

# bin/lab<n>-server-<backend>, and the lab's unit tests against its copy.
define lab_server
$(LAB_BIN)/lab$(LAB)-server-$(1): $(call lab_obj,backends/$(1).c) \
		$(foreach f,$(COMMON_SRC),$(call lab_obj,$(f))) \
		$(if $(filter kqueue,$(1)),$(call lab_obj,compat/kqueue/kqueue.c))
	$$(call msg,LD,$$@)
	@mkdir -p $$(@D)
	$$(Q)$$(CC) $$(ALL_CFLAGS) $$^ -o $$@ $$(ALL_LDFLAGS) $$(LIBS_$(1))
endef
define lab_unit
$(LAB_BUILD)/unit/test_$(1): $(UNIT_DIR)/tests/unit/test_$(1).o $(UNIT_DIR)/tests/unit/unit.o \
		$(foreach d,$(UNIT_DEPS_$(1)),$(call lab_unit_obj,common/$(d).c))
	$$(call msg,LD,$$@)
	$$(Q)$$(CC) $$(ALL_CFLAGS) $$(UNIT_SAN) $$^ -o $$@ $$(ALL_LDFLAGS) -lcmocka
endef
$(foreach b,$(LAB_BACKENDS),$(eval $(call lab_server,$(b))))
$(foreach u,$(LAB_UNITS),$(eval $(call lab_unit,$(u))))
-include $(shell find $(LAB_BUILD) -name '*.d' 2>/dev/null)

LAB_SERVERS := $(LAB_BACKENDS:%=$(LAB_BIN)/lab$(LAB)-server-%)
LAB_UNIT_BINS := $(LAB_UNITS:%=$(LAB_BUILD)/unit/test_%)
REF_SERVERS := $(LAB_BACKENDS:%=bin/server-%)
REF_UNIT_BINS := $(LAB_UNITS:%=$(UNIT_DIR)/test_%)
endif

lab-check-var:
	@[ -n "$(LAB)" ] || { echo "say which lab: make $(MAKECMDGOALS) LAB=n (labs/README.md)"; exit 2; }
	@$(LABGEN) info $(LAB) title >/dev/null || exit 2

lab-start: lab-check-var
	@echo "lab $(LAB): starter in $(LAB_WORK)/"
	$(Q)$(LABGEN) start $(LAB) --dest $(LAB_WORK) $(if $(filter 1 yes true,$(FORCE)),--force)

lab-check-work: lab-check-var
	@for f in $(LAB_FILES); do [ -f $(LAB_WORK)/$$f ] || \
		{ echo "no $(LAB_WORK)/$$f: run make lab-start LAB=$(LAB) first"; exit 2; }; done

ifeq ($(SOLUTION),)
lab-build: lab-check-work
	$(Q)$(MAKE) --no-print-directory $(LAB_SERVERS) $(LAB_UNIT_BINS) $(REF_SERVERS) $(TEST_TOOLS)

grade: lab-build
	$(Q)$(LAB_GRADE) $(LAB) $(GRADE_FLAGS) --work $(LAB_WORK) $(foreach b,$(LAB_BACKENDS),--server $(LAB_BIN)/lab$(LAB)-server-$(b) --ref bin/server-$(b)) \
		$(foreach u,$(LAB_UNITS),--unit $(LAB_BUILD)/unit/test_$(u))
else
lab-build: lab-check-var
	$(Q)$(MAKE) --no-print-directory $(REF_SERVERS) $(REF_UNIT_BINS) $(TEST_TOOLS)

grade: lab-build
	$(Q)$(LAB_GRADE) $(LAB) --solution $(GRADE_FLAGS) $(foreach b,$(LAB_BACKENDS),--server bin/server-$(b) --ref bin/server-$(b)) \
		$(foreach u,$(LAB_UNITS),--unit $(UNIT_DIR)/test_$(u))
endif

# The harness on the student's binary beside the reference one: the charts
# of lab 0, with lab<n>-<backend> as one more line. WORKLOADS, PRESET, TRIALS
# and the other knobs of harness/README.md apply.
LAB_BENCH_DIR = $(LAB_BUILD)/bench
lab-bench: lab-build bench-tools
	@rm -rf $(LAB_BENCH_DIR) && mkdir -p $(LAB_BENCH_DIR)
	$(Q)for b in $(LAB_BACKENDS); do \
		ln -s $(CURDIR)/bin/server-$$b $(LAB_BENCH_DIR)/server-$$b; \
		ln -s $(abspath $(LAB_BIN))/lab$(LAB)-server-$$b $(LAB_BENCH_DIR)/server-lab$(LAB)-$$b; \
	done
	$(HARNESS_PY) harness/bench.py --bin-dir $(LAB_BENCH_DIR) --wine no --refs floor \
		--preset $(PRESET) --backends "$(foreach b,$(LAB_BACKENDS),$(b) lab$(LAB)-$(b))" \
		$(call harness_flag,WORKLOADS,workloads) $(call harness_flag,CONNS,conns) \
		$(call harness_flag,DURATION,duration) $(call harness_flag,TRIALS,trials) \
		$(call harness_flag,OUT,out) --cc "$(CC)" --cflags "$(ALL_CFLAGS)"

test-labs:
	$(Q)$(PYTHON) labs/tools/test_labs.py

.PHONY: lab-check-var lab-start lab-check-work lab-build lab-bench grade test-labs
