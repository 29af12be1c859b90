# SPDX-License-Identifier: MIT
#
# kipc top-level Makefile, Kbuild-flavoured.
#
#   make                  build everything into build/ (or O=dir)
#   make V=1              show full commands
#   make SANITIZE=1       ASan+UBSan build into build-san/
#   make help             list targets and variables
#
# Everything is built from the source tree root; outputs go to $(O):
#   $(O)/bin/ $(O)/lib/ $(O)/tests/ $(O)/samples/  final products
#   $(O)/obj/<source path>.o                         objects (+ .d dependencies)
#   $(O)/include/generated/autoconf.h                CONFIG_ macros from .config

KIPC_VERSION := 0.1.0
KIPC_SOVERSION := 1

MAKEFLAGS += -r --no-print-directory
empty :=
space := $(empty) $(empty)
.SUFFIXES:
.DELETE_ON_ERROR:
.DEFAULT_GOAL := all

# Parallel by default: without a -j of the user's, make runs itself again
# with -j$(nproc). (Make 4.3 shows -j only to recipes, not while it parses,
# so the check is in a recipe.) The rest of this file is that sub-make.
ifeq ($(KIPC_SUBMAKE),)

PHONY := __submake $(MAKECMDGOALS)
$(or $(MAKECMDGOALS),all): __submake
	@:
__submake:
	+@case " $$MAKEFLAGS " in *" -j"*|*jobserver*) j= ;; *) j=-j$$(nproc) ;; esac; \
	$(MAKE) $$j KIPC_SUBMAKE=1 $(MAKECMDGOALS)
.PHONY: $(PHONY)

else # KIPC_SUBMAKE

# --------------------------------------------------------------------------
# Verbosity: V=1 prints full commands, otherwise one short line per step.

ifeq ($(origin V),command line)
  KBUILD_VERBOSE := $(V)
endif
ifeq ($(KBUILD_VERBOSE),1)
  Q :=
  msg =
else ifneq ($(findstring s,$(firstword -$(MAKEFLAGS))),)
  # make -s: silent
  Q := @
  msg = @
  KBUILD_VERBOSE := silent
else
  Q := @
  msg = @printf '  %-7s %s\n' '$(1)' '$(2)';
  show-msg := y
endif
export V

# --------------------------------------------------------------------------
# Output directory and configuration file.

O_ORIGIN := $(origin O)
ifeq ($(SANITIZE),1)
  O ?= build-san
else ifeq ($(SANITIZE),thread)
  O ?= build-tsan
else
  O ?= build
endif
override O := $(patsubst %/,%,$(O))
KCONFIG_CONFIG ?= .config

srctree  := $(CURDIR)
objtree  := $(abspath $(O))
config   := $(abspath $(KCONFIG_CONFIG))
export KCONFIG_CONFIG

OBJ        := $(O)/obj
AUTO_CONF  := $(O)/include/config/auto.conf
AUTOCONF_H := $(O)/include/generated/autoconf.h
FLAGS_STAMP := $(O)/include/config/flags
KCONFIG_FILES := Kconfig $(wildcard */Kconfig */*/Kconfig)

# --------------------------------------------------------------------------
# Goals that neither build nor need the build dependencies.

no-deps-targets := help clean mrproper distclean uninstall
config-targets  := config defconfig %_defconfig menuconfig nconfig oldconfig \
		   olddefconfig savedefconfig allnoconfig allyesconfig \
		   alldefconfig listnewconfig
clean-targets   := clean mrproper distclean

# `make tiny_defconfig all` or `make clean all`: run the goals one by one,
# in order, each in its own make (as Kbuild does), so the build sees the
# new .config and nothing races with the clean.
ifneq ($(filter $(config-targets) $(clean-targets),$(MAKECMDGOALS)),)
ifneq ($(filter-out $(config-targets) $(clean-targets),$(MAKECMDGOALS))$(word 2,$(filter $(config-targets) $(clean-targets),$(MAKECMDGOALS))),)
  mixed-build := 1
endif
endif

ifeq ($(mixed-build),1)

PHONY := __build_one_by_one $(MAKECMDGOALS)
$(filter-out __build_one_by_one,$(MAKECMDGOALS)): __build_one_by_one
	@:
__build_one_by_one:
	+$(Q)set -e; for i in $(MAKECMDGOALS); do \
		$(MAKE) -f $(firstword $(MAKEFILE_LIST)) $$i; \
	done
.PHONY: $(PHONY)

else # !mixed-build

# --------------------------------------------------------------------------
# Build dependencies: installed by scripts/install-deps when missing.

DEPS_PROBE := pkg-config --exists liburing fmt ncursesw && \
	test -f /usr/include/doctest/doctest.h && \
	test -f /usr/include/nlohmann/json.hpp && \
	command -v kconfig-conf >/dev/null && command -v kconfig-mconf >/dev/null && \
	command -v g++ >/dev/null && command -v clang++ >/dev/null && \
	ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1

ifneq ($(MAKECMDGOALS),)
ifeq ($(filter-out $(no-deps-targets),$(MAKECMDGOALS)),)
  skip-deps := 1
endif
endif
ifeq ($(KIPC_NO_INSTALL_DEPS),1)
  skip-deps := 1
endif

ifneq ($(skip-deps),1)
ifneq ($(shell $(DEPS_PROBE) && echo ok),ok)
  $(info $(space)$(space)DEPS    build dependencies missing: running scripts/install-deps)
  $(shell $(srctree)/scripts/install-deps 1>&2)
  ifneq ($(shell $(DEPS_PROBE) && echo ok),ok)
    $(error build dependencies still missing; see scripts/install-deps)
  endif
endif
endif

# --------------------------------------------------------------------------
# Tools and flags.

ifeq ($(origin CC),default)
  CC := gcc
endif
ifeq ($(origin CXX),default)
  CXX := g++
endif
AR     ?= ar
PKG_CONFIG ?= pkg-config
CONF   := kconfig-conf
MCONF  := kconfig-mconf
INSTALL ?= install

# pkg-config is asked only when the flags are needed (lazy variables).
URING_LIBS = $(shell $(PKG_CONFIG) --libs liburing 2>/dev/null || echo -luring)
FMT_LIBS   = $(shell $(PKG_CONFIG) --libs fmt 2>/dev/null || echo -lfmt)

KIPC_CPPFLAGS := -D_GNU_SOURCE -Iuapi -Ikernel/include -I$(O)/include \
		 -include scripts/kconfig.h
KIPC_CFLAGS   := -std=c11 -Wall -Wextra -Werror -O2 -g
KIPC_CXXFLAGS := -std=c++20 -Wall -Wextra -Werror -O2 -g
KIPC_LDFLAGS  := -Wl,--as-needed
DEPFLAGS       = -MMD -MP -MF $(@:.o=.d)

ifneq ($(SANITIZE),)
  # Sanitizer builds: -O1, as the sanitizers recommend (and it compiles
  # faster: make check builds the tree three times).
  KIPC_CFLAGS   := $(patsubst -O2,-O1,$(KIPC_CFLAGS))
  KIPC_CXXFLAGS := $(patsubst -O2,-O1,$(KIPC_CXXFLAGS))
  # -g1: the line tables the sanitizers' reports need, no variables
  # (a core file compiles in 23% less time with ASan than with -g).
  KIPC_CFLAGS   := $(patsubst -g,-g1,$(KIPC_CFLAGS))
  KIPC_CXXFLAGS := $(patsubst -g,-g1,$(KIPC_CXXFLAGS))
endif
ifeq ($(SANITIZE),1)
  SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer
  KIPC_CFLAGS   += $(SAN_FLAGS)
  KIPC_CXXFLAGS += $(SAN_FLAGS)
  KIPC_LDFLAGS  += $(SAN_FLAGS)
endif
ifeq ($(SANITIZE),thread)
  # ThreadSanitizer: the library's multi-threaded tests (make check).
  # The ring's fences order memory against kipcd, another process, which
  # TSan cannot see anyway: -Wno-tsan.
  SAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
  KIPC_CFLAGS   += $(SAN_FLAGS) -Wno-tsan
  KIPC_CXXFLAGS += $(SAN_FLAGS) -Wno-tsan
  KIPC_LDFLAGS  += $(SAN_FLAGS)
endif
ifeq ($(FUZZ),1)
  # Used by `make fuzz` for its clang build of the kernel core.
  # clang 14 warns about class/struct mismatches that g++ accepts.
  KIPC_CFLAGS   += -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  KIPC_CXXFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
		   -Wno-mismatched-tags
  KIPC_LDFLAGS  += -fsanitize=address,undefined
endif

# User additions: make CXXFLAGS=-O0 EXTRA_CFLAGS=... LDFLAGS=...
ALL_CPPFLAGS = $(KIPC_CPPFLAGS) $(CPPFLAGS)
ALL_CFLAGS   = $(KIPC_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
ALL_CXXFLAGS = $(KIPC_CXXFLAGS) $(CXXFLAGS) $(EXTRA_CXXFLAGS)
ALL_LDFLAGS  = $(KIPC_LDFLAGS) $(LDFLAGS)

# --------------------------------------------------------------------------
# Sources. Every directory may be empty or missing.

CORE_SRCS     := $(sort $(wildcard kernel/ipc/*.cc kernel/syscalls/*.cc))
DAEMON_SRCS   := $(sort $(wildcard kernel/daemon/*.cc))
# kernel/net: the network bridge (CONFIG_NET); only nats.cc needs libnats.
# The options decide sources and libraries (CONFIG_NET), so make reads
# them as variables, as Kbuild includes auto.conf: make first brings
# auto.conf up to date with the .config (on a fresh clone: makes the
# .config from kipc_defconfig), then starts over reading it.
ifeq ($(filter $(no-deps-targets) $(config-targets),$(MAKECMDGOALS)),)
-include $(AUTO_CONF)
endif
NET_ENABLED   := $(filter y,$(CONFIG_NET))
DAEMON_SRCS   += kernel/net/net.cc $(if $(NET_ENABLED),kernel/net/nats.cc)
NET_LIBS       = $(if $(NET_ENABLED),$(shell $(PKG_CONFIG) --libs libnats 2>/dev/null || echo -lnats))
LIB_SRCS      := $(sort $(wildcard lib/*.c lib/*.cc))
UNIT_SRCS     := $(sort $(wildcard tests/unit/*.cc))
SELFTEST_SRCS := $(sort $(wildcard tests/selftests/*.c tests/selftests/*.cc))
SAMPLE_SRCS   := $(sort $(wildcard samples/*.c samples/*.cc))
FUZZ_SRCS     := $(sort $(wildcard tests/fuzz/*.cc))
TOOL_NAMES    := $(sort $(patsubst tools/%/,%,$(dir $(wildcard tools/*/*.c tools/*/*.cc))))

objs-of = $(patsubst %,$(OBJ)/%.o,$(basename $(1)))
pic-objs-of = $(patsubst %,$(OBJ)/%.pic.o,$(basename $(1)))
name-of = $(notdir $(basename $(1)))

CORE_OBJS   := $(call objs-of,$(CORE_SRCS))
DAEMON_OBJS := $(call objs-of,$(DAEMON_SRCS))
LIB_OBJS    := $(call objs-of,$(LIB_SRCS))
LIB_PIC_OBJS := $(call pic-objs-of,$(LIB_SRCS))
UNIT_OBJS   := $(call objs-of,$(UNIT_SRCS))
# The unit tests run the core with CONFIG_DEBUG_CHECKS on whatever .config
# says: their own copy of the core's objects, in $(OBJ)/debug-checks/.
UNIT_CORE_OBJS := $(patsubst %,$(OBJ)/debug-checks/%.o,$(basename $(CORE_SRCS)))

CORE_A    := $(if $(CORE_SRCS),$(O)/lib/libkipc-core.a)
LIBKIPC_A := $(if $(LIB_SRCS),$(O)/lib/libkipc.a)
LIBKIPC_SO_REAL := $(O)/lib/libkipc.so.$(KIPC_VERSION)
LIBKIPC_SO := $(if $(LIB_SRCS),$(O)/lib/libkipc.so $(O)/lib/libkipc.so.$(KIPC_SOVERSION) $(LIBKIPC_SO_REAL))
KIPC_PC   := $(if $(LIB_SRCS),$(O)/lib/pkgconfig/kipc.pc)
KIPCD     := $(if $(DAEMON_SRCS),$(O)/bin/kipcd)
NET_TEST  := $(if $(NET_ENABLED),$(O)/tests/net/net_test $(O)/tests/net/net_unit)
POSIX_SRCS := $(sort $(wildcard lib/posix/*.c))
POSIX_OBJS := $(call pic-objs-of,$(POSIX_SRCS))
POSIX_SO   := $(if $(POSIX_SRCS),$(O)/lib/libkipc-posix.so)
TOOLS     := $(addprefix $(O)/bin/,$(TOOL_NAMES))
UNIT_BIN  := $(if $(UNIT_SRCS),$(O)/tests/unit/kipc-unit)
SELFTESTS := $(addprefix $(O)/tests/selftests/,$(call name-of,$(SELFTEST_SRCS)))
SAMPLES   := $(addprefix $(O)/samples/,$(call name-of,$(SAMPLE_SRCS)))

# Libraries a program linked with the static libkipc needs (libkipc is C
# and uses nothing but pthreads; the tools add fmt, tools/include/tool.h).
LIBKIPC_LDLIBS = $(LIBKIPC_A) -pthread
# Per-tool extra libraries: LDLIBS_<tool>.
# kipc-bench also runs the kernel core in process (memory, per-op cost).
LDLIBS_kipc-bench ?= $(CORE_A)
# kipc-top draws with ncurses.
LDLIBS_kipc-top ?= $(shell $(PKG_CONFIG) --libs ncursesw 2>/dev/null || echo -lncursesw -ltinfo)

# --------------------------------------------------------------------------
# Top-level targets.

PHONY := all prepare kipcd core libkipc tools unit selftests samples uapi-check

all: prepare $(KIPCD) $(CORE_A) $(LIBKIPC_A) $(LIBKIPC_SO) $(KIPC_PC) $(TOOLS) \
     $(UNIT_BIN) $(SELFTESTS) $(SAMPLES) $(POSIX_SO) $(NET_TEST)
kipcd: $(KIPCD)
core: $(CORE_A)
libkipc: $(LIBKIPC_A) $(LIBKIPC_SO) $(KIPC_PC)
tools: $(TOOLS)
unit: $(UNIT_BIN)
selftests: $(SELFTESTS) $(KIPCD) $(filter %/kipc-bench,$(TOOLS))  # bench_smoke_test runs kipc-bench
samples: $(SAMPLES)

# --------------------------------------------------------------------------
# Configuration (Debian's kconfig-frontends).

kconf = cd $(srctree) && srctree=$(srctree) KCONFIG_CONFIG=$(config)

# No .config yet: start from configs/kipc_defconfig.
$(config):
	@mkdir -p $(dir $@)
	$(call msg,GEN,$(KCONFIG_CONFIG) from configs/kipc_defconfig)
	$(Q)$(kconf) $(CONF) -s --defconfig=configs/kipc_defconfig Kconfig

$(AUTO_CONF): $(config) $(KCONFIG_FILES) scripts/kconfig-sync
	$(Q)KBUILD_VERBOSE=$(KBUILD_VERBOSE) scripts/kconfig-sync $(srctree) $(objtree) $(config)

# Updated by kconfig-sync only when its contents change.
$(AUTOCONF_H): $(AUTO_CONF)
	@test -f $@ || KBUILD_VERBOSE=$(KBUILD_VERBOSE) scripts/kconfig-sync $(srctree) $(objtree) $(config)

PHONY += config defconfig menuconfig nconfig oldconfig olddefconfig \
	 savedefconfig allnoconfig allyesconfig alldefconfig listnewconfig

defconfig: kipc_defconfig

%_defconfig:
	@test -f configs/$@ || { echo "*** configs/$@ does not exist" >&2; exit 1; }
	@mkdir -p $(dir $(config))
	$(Q)$(kconf) $(CONF) --defconfig=configs/$@ Kconfig

config oldconfig: $(config)
	$(Q)$(kconf) $(CONF) --oldconfig Kconfig

need-tty = @test -t 0 -a -t 1 || { echo "*** make $@ needs a terminal" >&2; exit 1; }

menuconfig: $(config)
	$(need-tty)
	$(Q)$(kconf) $(MCONF) Kconfig

nconfig: $(config)
	$(need-tty)
	$(Q)$(kconf) kconfig-nconf Kconfig

olddefconfig listnewconfig: $(config)
	$(Q)$(kconf) $(CONF) --$@ Kconfig

allnoconfig allyesconfig alldefconfig:
	@mkdir -p $(dir $(config))
	$(Q)$(kconf) $(CONF) --$@ Kconfig

# Like the kernel: ./defconfig, or $(O)/defconfig with an explicit O=.
DEFCONFIG_OUT := $(if $(filter command line environment,$(O_ORIGIN)),$(objtree)/defconfig,$(srctree)/defconfig)
savedefconfig: $(config)
	@mkdir -p $(dir $(DEFCONFIG_OUT))
	$(Q)$(kconf) $(CONF) --savedefconfig=$(DEFCONFIG_OUT) Kconfig
	@echo "  GEN     $(DEFCONFIG_OUT)"

# --------------------------------------------------------------------------
# Flags stamp: objects rebuild when compiler or flags change.

define filechk
	@mkdir -p $(dir $@)
	$(Q){ $(filechk_$(1)); } > $@.tmp
	$(Q)if cmp -s $@ $@.tmp; then rm -f $@.tmp; else \
		$(if $(show-msg),echo '  GEN     $(patsubst $(O)/%,%,$@)';) mv -f $@.tmp $@; fi
endef

filechk_flags = echo '$(CC) $(CXX) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(ALL_CXXFLAGS) $(ALL_LDFLAGS)'
$(FLAGS_STAMP): FORCE
	$(call filechk,flags)

filechk_version = echo '\#define KIPC_VERSION "$(KIPC_VERSION)"'; \
	echo '\#define KIPC_SOVERSION $(KIPC_SOVERSION)'
$(O)/include/generated/version.h: FORCE
	$(call filechk,version)

# The kernel that belongs to the library (lib/kipcd_path.c): the build
# tree's for $(O)/lib, $(BINDIR)'s for the copy make install installs.
filechk_kipcd_path = echo '\#define KIPC_KIPCD_PATH "$(KIPCD_PATH)"'; \
	echo '\#define KIPC_POSIX_LIB_PATH "$(POSIX_LIB_PATH)"'
$(O)/include/generated/kipcd_path.h: KIPCD_PATH := $(objtree)/bin/kipcd
$(O)/include/generated/kipcd_path.h: POSIX_LIB_PATH := $(objtree)/lib/libkipc-posix.so
$(O)/include/generated/kipcd_path.h: FORCE
	$(call filechk,kipcd_path)

# The build's id: a hash of the sources of the kernel, the library and the
# uapi, and of the configuration. kipcd reports it, libkipc compares it
# with its own at attach. Only the two files that use it depend on it.
BUILD_ID_SRCS = $(sort $(wildcard kernel/*/*.cc kernel/*/*.h kernel/include/kernel/*.h \
	lib/*.c lib/*.h uapi/kipc/*.h))
filechk_build_id = echo "\#define KIPC_BUILD_ID 0x$$(cat $(BUILD_ID_SRCS) $(AUTO_CONF) | \
	sha256sum | cut -c1-16)ull"
$(O)/include/generated/build_id.h: $(AUTO_CONF) FORCE
	$(call filechk,build_id)
$(OBJ)/kernel/daemon/main.o $(OBJ)/lib/kipcd_path.o $(OBJ)/lib/kipcd_path.pic.o: \
	$(O)/include/generated/build_id.h

GENERATED := $(AUTOCONF_H) $(O)/include/generated/version.h $(FLAGS_STAMP) \
	$(O)/include/generated/kipcd_path.h

# The generated headers, without building anything else.
prepare: $(GENERATED)

# --------------------------------------------------------------------------
# Compiling.

# private: not inherited by the prerequisites, $(FLAGS_STAMP) among them
# (else `make unit` writes the stamp with these flags, and the next make
# rebuilds everything).
$(UNIT_OBJS) $(UNIT_CORE_OBJS): private ALL_CPPFLAGS += -DCONFIG_DEBUG_CHECKS=1
# The test drivers themselves are compiled without optimisation: doctest's
# assertion macros make each file take 7 s of CPU at -O2 and 4 s at -O0,
# and make check builds them twice. The core they drive (UNIT_CORE_OBJS)
# keeps the build's optimisation.
$(UNIT_OBJS): private ALL_CXXFLAGS += -O0

# An object depends on the options it uses, not on all of autoconf.h:
# scripts/fixdep rewrites the compiler's .d to name the per-option files
# $(O)/include/config/<option>.h that kconfig-conf touches only when that
# option changes (as Kbuild does). The generated headers are order-only
# here; the .d files name those an object includes.
CONFIG_DIR := $(O)/include/config
fixdep = && scripts/fixdep $(@:.o=.d) $(O)
$(CONFIG_DIR)/%.h: $(AUTO_CONF) ;

$(OBJ)/debug-checks/%.o: %.cc $(FLAGS_STAMP) | $(GENERATED)
	$(call msg,CXX,$(patsubst $(OBJ)/%,%,$@))
	@mkdir -p $(@D)
	$(Q)$(CXX) $(ALL_CPPFLAGS) $(ALL_CXXFLAGS) $(DEPFLAGS) -c -o $@ $< $(fixdep)

$(OBJ)/%.o: %.cc $(FLAGS_STAMP) | $(GENERATED)
	$(call msg,CXX,$(patsubst $(OBJ)/%,%,$@))
	@mkdir -p $(@D)
	$(Q)$(CXX) $(ALL_CPPFLAGS) $(ALL_CXXFLAGS) $(DEPFLAGS) -c -o $@ $< $(fixdep)

$(OBJ)/%.o: %.c $(FLAGS_STAMP) | $(GENERATED)
	$(call msg,CC,$(patsubst $(OBJ)/%,%,$@))
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $< $(fixdep)

$(OBJ)/%.pic.o: %.cc $(FLAGS_STAMP) | $(GENERATED)
	$(call msg,CXX,$(patsubst $(OBJ)/%,%,$@))
	@mkdir -p $(@D)
	$(Q)$(CXX) $(ALL_CPPFLAGS) $(ALL_CXXFLAGS) -fPIC $(DEPFLAGS) -c -o $@ $< $(fixdep)

$(OBJ)/%.pic.o: %.c $(FLAGS_STAMP) | $(GENERATED)
	$(call msg,CC,$(patsubst $(OBJ)/%,%,$@))
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -fPIC $(DEPFLAGS) -c -o $@ $< $(fixdep)

# --------------------------------------------------------------------------
# Libraries.

define archive
	$(call msg,AR,$(patsubst $(O)/%,%,$@))
	@mkdir -p $(@D)
	$(Q)rm -f $@ && $(AR) rcs $@ $^
endef

$(O)/lib/libkipc-core.a: $(CORE_OBJS)
	$(archive)

$(O)/lib/libkipc.a: $(LIB_OBJS)
	$(archive)

# libkipc is C (a .cc in lib/ would make it link with the C++ driver and
# add -lstdc++ to kipc.pc); it needs nothing but -pthread.
LIB_LD := $(if $(filter %.cc,$(LIB_SRCS)),$(CXX),$(CC))
LIB_PRIVATE := -pthread$(if $(filter %.cc,$(LIB_SRCS)), -lstdc++)

# libkipc.so from objects $(1) (rules for $(O)/lib and $(INST_O)/lib).
define libkipc_so_rules
$(2)/libkipc.so.$(KIPC_VERSION): $(1) $$(FLAGS_STAMP)
	$$(call msg,LD,$$(patsubst $$(O)/%,%,$$@))
	@mkdir -p $$(@D)
	$$(Q)$$(LIB_LD) -shared -Wl,-soname,libkipc.so.$$(KIPC_SOVERSION) -Wl,--no-undefined \
		$$(ALL_LDFLAGS) -o $$@ $(1) $$(LIB_PRIVATE)

$(2)/libkipc.so.$(KIPC_SOVERSION): $(2)/libkipc.so.$(KIPC_VERSION)
	$$(call msg,LN,$$(patsubst $$(O)/%,%,$$@))
	$$(Q)ln -sfn $$(notdir $$<) $$@

$(2)/libkipc.so: $(2)/libkipc.so.$(KIPC_SOVERSION)
	$$(call msg,LN,$$(patsubst $$(O)/%,%,$$@))
	$$(Q)ln -sfn $$(notdir $$<) $$@
endef
$(eval $(call libkipc_so_rules,$(LIB_PIC_OBJS),$(O)/lib))

# lib/posix/*.c -> lib/libkipc-posix.so: mq_* and msg* of libc on kipc, an
# LD_PRELOAD library (tools/kipc-run) linked with libkipc.so next to it.
$(O)/lib/libkipc-posix.so: $(POSIX_OBJS) $(O)/lib/libkipc.so $(FLAGS_STAMP)
	$(call msg,LD,$(patsubst $(O)/%,%,$@))
	$(Q)$(CC) -shared -Wl,--no-undefined $(ALL_LDFLAGS) -o $@ $(POSIX_OBJS) \
		-L$(O)/lib -lkipc -Wl,-rpath,'$$ORIGIN' -ldl -pthread

# kipc.pc for PREFIX; `make install` writes one for its own PREFIX.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man

filechk_kipc_pc = \
	echo 'prefix=$(PREFIX)'; \
	echo 'libdir=$(LIBDIR)'; \
	echo 'includedir=$(INCLUDEDIR)'; \
	echo; \
	echo 'Name: kipc'; \
	echo 'Description: user-space message-passing IPC kernel emulator (client library)'; \
	echo 'Version: $(KIPC_VERSION)'; \
	echo 'Libs: -L$${libdir} -lkipc'; \
	echo 'Libs.private: $(LIB_PRIVATE)'; \
	echo 'Cflags: -I$${includedir}'
$(O)/lib/pkgconfig/kipc.pc: FORCE
	$(call filechk,kipc_pc)

# --------------------------------------------------------------------------
# Programs. All are linked with the C++ driver (tools and some tests are C++).

define link
	$(call msg,LD,$(patsubst $(O)/%,%,$@))
	@mkdir -p $(@D)
	$(Q)$(CXX) $(ALL_LDFLAGS) -o $@ $(1)
endef

# kipcd --status is a client of the kernel it describes: libkipc.
$(O)/bin/kipcd: $(DAEMON_OBJS) $(CORE_A) $(LIBKIPC_A) $(FLAGS_STAMP)
	$(call link,$(DAEMON_OBJS) $(CORE_A) $(LIBKIPC_A) $(URING_LIBS) $(NET_LIBS) $(FMT_LIBS) -pthread)

$(UNIT_BIN): $(UNIT_OBJS) $(UNIT_CORE_OBJS) $(FLAGS_STAMP)
	$(call link,$(UNIT_OBJS) $(UNIT_CORE_OBJS) $(FMT_LIBS) -pthread)

# tools/<name>/*.{c,cc} -> bin/<name>
define tool_rule
TOOL_OBJS_$(1) := $$(call objs-of,$$(sort $$(wildcard tools/$(1)/*.c tools/$(1)/*.cc)))
$$(O)/bin/$(1): $$(TOOL_OBJS_$(1)) $$(LIBKIPC_A) $$(FLAGS_STAMP)
	$$(call link,$$(TOOL_OBJS_$(1)) $$(LDLIBS_$(1)) $$(LIBKIPC_LDLIBS) $$(FMT_LIBS))
endef
$(foreach t,$(TOOL_NAMES),$(eval $(call tool_rule,$(t))))
$(if $(filter kipc-bench,$(TOOL_NAMES)),$(O)/bin/kipc-bench: $(CORE_A))

# One program per source file.
define single_rule
$(2): $$(call objs-of,$(1)) $$(LIBKIPC_A) $$(FLAGS_STAMP)
	$$(call link,$$(call objs-of,$(1)) $$(LIBKIPC_LDLIBS))
endef
$(foreach s,$(SELFTEST_SRCS),$(eval $(call single_rule,$(s),$(O)/tests/selftests/$(call name-of,$(s)))))
$(foreach s,$(SAMPLE_SRCS),$(eval $(call single_rule,$(s),$(O)/samples/$(call name-of,$(s)))))

# tests/net: the cross-node suite (make netcheck); it talks NATS itself too.
NET_TEST_OBJS := $(call objs-of,tests/net/net_test.c)
$(O)/tests/net/net_test: $(NET_TEST_OBJS) $(LIBKIPC_A) $(FLAGS_STAMP)
	$(call link,$(NET_TEST_OBJS) $(LIBKIPC_LDLIBS) $(NET_LIBS))
NET_BENCH_OBJS := $(call objs-of,tests/net/net_bench.c)
$(O)/tests/net/net_bench: $(NET_BENCH_OBJS) $(LIBKIPC_A) $(FLAGS_STAMP)
	$(call link,$(NET_BENCH_OBJS) $(LIBKIPC_LDLIBS) $(NET_LIBS))
# The protocol in process, no NATS: kernel/net/net.cc on the unit tests' core.
NET_UNIT_OBJS := $(call objs-of,tests/net/net_unit.cc)
$(NET_UNIT_OBJS): private ALL_CPPFLAGS += -DCONFIG_DEBUG_CHECKS=1
$(NET_UNIT_OBJS): private ALL_CXXFLAGS += -O0
$(O)/tests/net/net_unit: $(NET_UNIT_OBJS) $(UNIT_CORE_OBJS) $(FLAGS_STAMP)
	$(call link,$(NET_UNIT_OBJS) $(UNIT_CORE_OBJS) $(FMT_LIBS) -pthread)
-include $(NET_UNIT_OBJS:.o=.d)

ALL_OBJS := $(CORE_OBJS) $(UNIT_CORE_OBJS) $(DAEMON_OBJS) $(LIB_OBJS) $(LIB_PIC_OBJS) $(UNIT_OBJS) $(NET_TEST_OBJS) $(NET_BENCH_OBJS) \
	$(foreach t,$(TOOL_NAMES),$(TOOL_OBJS_$(t))) \
	$(call objs-of,$(SELFTEST_SRCS) $(SAMPLE_SRCS)) $(POSIX_OBJS)
-include $(ALL_OBJS:.o=.d) $(patsubst %.o,%.d,$(call objs-of,$(FUZZ_SRCS)))

# --------------------------------------------------------------------------
# Tests and running.

PHONY += check kselftest uapi-check run bench fuzz

CHECK_ENV = O=$(O) SANITIZE=$(SANITIZE) KCONFIG_CONFIG=$(KCONFIG_CONFIG) MAKE="$(MAKE)"

check:
	+$(Q)$(CHECK_ENV) scripts/check.sh all

kselftest:
	+$(Q)$(CHECK_ENV) scripts/check.sh selftests

# The cross-node suite (Documentation/network.md), both event loops.
PHONY += netcheck
netcheck:
	+$(Q)$(CHECK_ENV) scripts/check.sh netcheck
# Cross-node kipc against plain NATS (Documentation/network.md); like
# make bench, never part of make check, and on make bench's release
# build (CONFIG_DEBUG_CHECKS off: it walks every queued message per call).
PHONY += netbench
netbench: $(config)
	+$(Q)$(bench-config) && \
	$(MAKE) O=$(BENCH_O) KCONFIG_CONFIG=$(abspath $(BENCH_O))/.config \
		$(BENCH_O)/bin/kipcd $(BENCH_O)/tests/net/net_bench && \
	KIPC_KIPCD=$(abspath $(BENCH_O))/bin/kipcd $(BENCH_O)/tests/net/net_bench

uapi-check:
	+$(Q)$(CHECK_ENV) scripts/check.sh uapi

# make run ARGS="msg_max=64"
# Boot a private kernel, run every sample against it, shut it down.
run: $(KIPCD) $(SAMPLES)
	@test -n "$(KIPCD)" || { echo "*** no kernel/daemon sources yet: nothing to run" >&2; exit 1; }
	$(Q)scripts/run-samples.sh $(O) $(ARGS)

# A release build of kipcd and kipc-bench (and kipc-run with
# libkipc-posix.so, for its kipc-run-mq rows) in $(O)/bench: the current
# .config with CONFIG_DEBUG_CHECKS off (it walks every object per syscall).
BENCH_O := $(O)/bench
bench-config = mkdir -p $(BENCH_O) && \
	sed -e 's/^CONFIG_DEBUG_CHECKS=y/\# CONFIG_DEBUG_CHECKS is not set/' \
		$(config) > $(BENCH_O)/.config.new && \
	{ cmp -s $(BENCH_O)/.config.new $(BENCH_O)/.config || \
	  mv $(BENCH_O)/.config.new $(BENCH_O)/.config; }
bench: $(config)
	+$(Q)if [ -d tools/kipc-bench ]; then \
		$(bench-config) && \
		$(MAKE) O=$(BENCH_O) KCONFIG_CONFIG=$(abspath $(BENCH_O))/.config \
			$(BENCH_O)/bin/kipc-bench $(BENCH_O)/bin/kipcd \
			$(BENCH_O)/bin/kipc-run $(BENCH_O)/lib/libkipc-posix.so && \
		$(BENCH_O)/bin/kipc-bench $(ARGS); \
	else echo "no benchmarks yet (tools/kipc-bench is missing)"; fi

# tests/fuzz/<name>.cc: libFuzzer targets (LLVMFuzzerTestOneInput) linked
# with the kernel core, all built by clang in $(O)/fuzz. Each runs for
# FUZZ_SECONDS (alias FUZZ_TIME) seconds with the seed corpus
# tests/fuzz/corpus/<name>/; what it learns goes to $(O)/fuzz/corpus/<name>/
# and a crashing input to $(O)/fuzz/<name>-crash-*. Any crash stops the run.
FUZZ_SECONDS ?= 60
FUZZ_TIME ?= $(FUZZ_SECONDS)
FUZZ_O    := $(O)/fuzz
FUZZERS   := $(addprefix $(O)/fuzz-bin/,$(call name-of,$(FUZZ_SRCS)))
# Keep the fuzzers' objects (not intermediates to delete).
.SECONDARY: $(call objs-of,$(FUZZ_SRCS))

fuzz:
ifeq ($(FUZZ_SRCS),)
	@echo "no fuzzers yet (tests/fuzz/*.cc is missing)"
else
	+$(Q)$(MAKE) O=$(FUZZ_O) FUZZ=1 CC=clang CXX=clang++ SANITIZE= fuzzers
	$(Q)set -e; for f in $(call name-of,$(FUZZ_SRCS)); do \
		corpus=tests/fuzz/corpus/$$f; mkdir -p $(FUZZ_O)/corpus/$$f; \
		echo "  FUZZ    $$f ($(FUZZ_TIME)s)"; \
		$(FUZZ_O)/fuzz-bin/$$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_O)/$$f- $(FUZZ_ARGS) \
			$(FUZZ_O)/corpus/$$f $$( [ -d $$corpus ] && echo $$corpus ); \
	done
endif

# tools/kipc-stress against a private kernel for STRESS_SECONDS (long form
# of the short run in make check).
STRESS_SECONDS ?= 300
PHONY += stress
stress:
	+$(Q)$(CHECK_ENV) KIPC_STRESS_SECONDS=$(STRESS_SECONDS) scripts/check.sh stress

PHONY += fuzzers
fuzzers: $(FUZZERS)
$(O)/fuzz-bin/%: $(OBJ)/tests/fuzz/%.o $(CORE_A) $(FLAGS_STAMP)
	$(call msg,LD,$(patsubst $(O)/%,%,$@))
	@mkdir -p $(@D)
	$(Q)$(CXX) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $< $(CORE_A) $(FMT_LIBS) -pthread

# --------------------------------------------------------------------------
# Installing.

PHONY += install uninstall
MANPAGES := $(wildcard $(addprefix Documentation/man/*.,1 2 3 4 5 6 7 8))
UAPI_HEADERS := $(wildcard uapi/kipc/*.h)

# What make install installs differs from $(O) in one object: the paths of
# kipcd and libkipc-posix.so that libkipc records (lib/kipcd_path.c) are
# $(BINDIR)'s and $(LIBDIR)'s. The libraries and the programs linked with
# libkipc are relinked in $(INST_O) with it; nothing else is rebuilt, and
# no test or benchmark is built.
INST_O := $(O)/install
INST_PATH_H := $(INST_O)/include/generated/kipcd_path.h
$(INST_PATH_H): KIPCD_PATH := $(BINDIR)/kipcd
$(INST_PATH_H): POSIX_LIB_PATH := $(LIBDIR)/libkipc-posix.so
$(INST_PATH_H): FORCE
	$(call filechk,kipcd_path)

$(INST_O)/obj/lib/kipcd_path.o: lib/kipcd_path.c $(INST_PATH_H) $(GENERATED) $(O)/include/generated/build_id.h
	$(call msg,CC,$(patsubst $(O)/%,%,$@))
	@mkdir -p $(@D)
	$(Q)$(CC) -I$(INST_O)/include $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(INST_O)/obj/lib/kipcd_path.pic.o: lib/kipcd_path.c $(INST_PATH_H) $(GENERATED) $(O)/include/generated/build_id.h
	$(call msg,CC,$(patsubst $(O)/%,%,$@))
	@mkdir -p $(@D)
	$(Q)$(CC) -I$(INST_O)/include $(ALL_CPPFLAGS) $(ALL_CFLAGS) -fPIC $(DEPFLAGS) -c -o $@ $<

INST_LIB_OBJS := $(patsubst $(OBJ)/lib/kipcd_path.o,$(INST_O)/obj/lib/kipcd_path.o,$(LIB_OBJS))
INST_LIB_PIC_OBJS := $(patsubst $(OBJ)/lib/kipcd_path.pic.o,$(INST_O)/obj/lib/kipcd_path.pic.o,$(LIB_PIC_OBJS))

$(INST_O)/lib/libkipc.a: $(INST_LIB_OBJS)
	$(archive)
$(eval $(call libkipc_so_rules,$(INST_LIB_PIC_OBJS),$(INST_O)/lib))

define inst_tool_rule
$$(INST_O)/bin/$(1): $$(TOOL_OBJS_$(1)) $$(INST_O)/lib/libkipc.a $$(filter %.a,$$(LDLIBS_$(1))) $$(FLAGS_STAMP)
	$$(call link,$$(TOOL_OBJS_$(1)) $$(LDLIBS_$(1)) $$(INST_O)/lib/libkipc.a $$(FMT_LIBS) -pthread)
endef
$(foreach t,$(TOOL_NAMES),$(eval $(call inst_tool_rule,$(t))))
-include $(INST_O)/obj/lib/kipcd_path.d $(INST_O)/obj/lib/kipcd_path.pic.d

# Lists of what is installed where: other rules may append to them.
INSTALL_BIN := $(KIPCD) $(addprefix $(INST_O)/bin/,$(TOOL_NAMES))
INSTALL_LIB := $(if $(LIB_SRCS),$(INST_O)/lib/libkipc.a $(INST_O)/lib/libkipc.so.$(KIPC_VERSION))
INSTALL_LIB_SO := $(POSIX_SO)
INSTALL_LINKS := $(if $(LIB_SRCS),libkipc.so.$(KIPC_SOVERSION):libkipc.so.$(KIPC_VERSION) \
	libkipc.so:libkipc.so.$(KIPC_SOVERSION))

install: $(INSTALL_BIN) $(INSTALL_LIB) $(INSTALL_LIB_SO)
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/kipc
	$(if $(INSTALL_BIN),$(Q)$(INSTALL) -m 755 $(INSTALL_BIN) $(DESTDIR)$(BINDIR)/)
	$(if $(INSTALL_LIB),$(Q)$(INSTALL) -m 644 $(filter %.a,$(INSTALL_LIB)) $(DESTDIR)$(LIBDIR)/)
	$(if $(INSTALL_LIB)$(INSTALL_LIB_SO),$(Q)$(INSTALL) -m 755 $(filter-out %.a,$(INSTALL_LIB)) $(INSTALL_LIB_SO) $(DESTDIR)$(LIBDIR)/)
	$(Q)$(foreach l,$(INSTALL_LINKS),ln -sfn $(word 2,$(subst :, ,$(l))) $(DESTDIR)$(LIBDIR)/$(word 1,$(subst :, ,$(l))) &&) :
ifneq ($(LIB_SRCS),)
	$(Q){ $(filechk_kipc_pc); } > $(DESTDIR)$(LIBDIR)/pkgconfig/kipc.pc
endif
	$(if $(UAPI_HEADERS),$(Q)$(INSTALL) -m 644 $(UAPI_HEADERS) $(DESTDIR)$(INCLUDEDIR)/kipc/)
	$(Q)for m in $(MANPAGES); do \
		s=$${m##*.}; $(INSTALL) -d $(DESTDIR)$(MANDIR)/man$$s && \
		$(INSTALL) -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s/ || exit 1; \
	done
	+$(Q)$(MAKE) -f $(firstword $(MAKEFILE_LIST)) install-shell-tools

# ---- shell tools (kipc bash completion, the Python module) ----
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
PYTHONDIR   ?= $(PREFIX)/lib/python3/dist-packages
PHONY += install-shell-tools
install-shell-tools:
	$(Q)$(INSTALL) -d $(DESTDIR)$(BASHCOMPDIR)
	$(Q)$(INSTALL) -m 644 tools/kipc/kipc.bash-completion $(DESTDIR)$(BASHCOMPDIR)/kipc
	$(Q)$(INSTALL) -d $(DESTDIR)$(PYTHONDIR)/kipc
	$(Q)$(INSTALL) -m 644 $(wildcard python/kipc/*.py) $(DESTDIR)$(PYTHONDIR)/kipc/
	$(Q)$(INSTALL) -m 644 uapi/kipc/syscalls.h $(DESTDIR)$(PYTHONDIR)/kipc/ # _syscalls.py reads it
	$(Q)echo 'LIBDIR = "$(LIBDIR)"  # written by make install' > $(DESTDIR)$(PYTHONDIR)/kipc/_config.py
	$(Q)$(INSTALL) -d $(DESTDIR)$(MANDIR)/man3
	$(Q)for m in $(MAN3_FAMILIES); do \
		p=$${m##*/}; p=$${p%.3}; \
		for f in $$($(man3-names) $$m); do \
			[ "$$f" = "$$p" ] || echo ".so man3/$$p.3" > $(DESTDIR)$(MANDIR)/man3/$$f.3 || exit 1; \
		done; \
	done
# One page per call family; a link page (.so) for every other function it names.
MAN3_FAMILIES = $(wildcard Documentation/man/*.3)
man3-names = sed -n '/^\.SH NAME/{n;s/ \\-.*//;s/,//g;p;q}'
SHELL_TOOLS_UNINSTALL = $(DESTDIR)$(BASHCOMPDIR)/kipc \
	$(addprefix $(DESTDIR)$(PYTHONDIR)/kipc/,$(notdir $(wildcard python/kipc/*.py)) _config.py syscalls.h)
# ---- end of shell tools ----

uninstall:
	$(call msg,UNINST,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(SHELL_TOOLS_UNINSTALL)
	$(Q)for m in $(MAN3_FAMILIES); do \
		for f in $$($(man3-names) $$m); do rm -f $(DESTDIR)$(MANDIR)/man3/$$f.3; done; \
	done
	-$(Q)rm -rf $(DESTDIR)$(PYTHONDIR)/kipc/__pycache__; rmdir $(DESTDIR)$(PYTHONDIR)/kipc 2>/dev/null || true
	$(Q)rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(INSTALL_BIN))) \
		$(addprefix $(DESTDIR)$(LIBDIR)/,$(notdir $(INSTALL_LIB) $(INSTALL_LIB_SO)) \
			$(foreach l,$(INSTALL_LINKS),$(word 1,$(subst :, ,$(l)))) pkgconfig/kipc.pc) \
		$(addprefix $(DESTDIR)$(INCLUDEDIR)/kipc/,$(notdir $(UAPI_HEADERS))) \
		$(foreach m,$(MANPAGES),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))
	-$(Q)rmdir $(DESTDIR)$(INCLUDEDIR)/kipc 2>/dev/null || true

# --------------------------------------------------------------------------
# Cleaning.

PHONY += clean mrproper distclean
# Everything in the output directories except a config file kept there
# (KCONFIG_CONFIG=$(O)/.config): that is mrproper's job.
clean-dirs := $(sort $(O) $(if $(filter undefined,$(O_ORIGIN)),build build-san))
clean-keep := $(config) $(config).old
clean:
	$(call msg,CLEAN,$(clean-dirs))
	$(Q)rm -rf $(filter-out $(clean-keep),$(abspath $(wildcard $(addsuffix /*,$(clean-dirs)) $(addsuffix /.[!.]*,$(clean-dirs)))))
	$(Q)rmdir $(clean-dirs) 2>/dev/null || true

mrproper distclean: clean
	$(call msg,CLEAN,$(KCONFIG_CONFIG) defconfig)
	$(Q)rm -f $(clean-keep) $(srctree)/defconfig
	$(Q)rmdir $(clean-dirs) 2>/dev/null || true

# --------------------------------------------------------------------------
# Help.

PHONY += help
help:
	@echo 'Building (outputs in $$(O), default build/, build-san/ with SANITIZE=1):'
	@echo '  all              - build everything (the default)'
	@echo '  kipcd            - the daemon, bin/kipcd'
	@echo '  core             - the kernel core, lib/libkipc-core.a'
	@echo '  libkipc          - lib/libkipc.so, lib/libkipc.a, lib/pkgconfig/kipc.pc'
	@echo '  tools            - bin/<name> for each tools/<name>/'
	@echo '  unit             - the unit test binary, tests/unit/kipc-unit'
	@echo '  selftests        - tests/selftests/<name> for each tests/selftests/*.c'
	@echo '  samples          - samples/<name> for each samples/*.c'
	@echo ''
	@echo 'Testing and running:'
	@echo '  check            - uapi check, unit tests (default and tiny config),'
	@echo '                     selftests (io_uring and epoll loop), first contact'
	@echo '                     (autostart, kipcd --status/--stop, make install),'
	@echo '                     the examples of the docs (scripts/doc-examples),'
	@echo '                     POSIX/System V differential suite, short fuzz run,'
	@echo '                     ASan+UBSan and TSan builds, 20 s chaos run; ends'
	@echo '                     with "check: N passed, M failed"'
	@echo '  kselftest        - only the selftests, as one TAP 13 stream (prove)'
	@echo '  uapi-check       - only the uapi header check'
	@echo '  run              - boot a kernel, run every sample, shut down (ARGS="msg_max=64 ...")'
	@echo '  bench            - run tools/kipc-bench (ARGS=...)'
	@echo '  fuzz             - build tests/fuzz/*.cc with clang/libFuzzer, run each FUZZ_SECONDS s'
	@echo '  stress           - chaos test: kills, attaches, exact-once ledger (STRESS_SECONDS=N)'
	@echo ''
	@echo 'Configuration (Kconfig, file $$(KCONFIG_CONFIG), default .config):'
	@echo '  defconfig        - new config from configs/kipc_defconfig'
	@echo '  <name>_defconfig - new config from configs/<name>_defconfig:'
	@$(foreach f,$(notdir $(wildcard configs/*_defconfig)),echo '                     $(f)';)
	@echo '  menuconfig       - change the config with a menu (kconfig-mconf)'
	@echo '  oldconfig        - update the config, asking about new symbols'
	@echo '  olddefconfig     - update the config, new symbols get defaults'
	@echo '  savedefconfig    - write a minimal config to ./defconfig ($$(O)/defconfig with O=)'
	@echo '  allnoconfig allyesconfig alldefconfig listnewconfig'
	@echo ''
	@echo 'Installing and cleaning:'
	@echo '  install          - install to $$(DESTDIR)$$(PREFIX) (PREFIX=$(PREFIX))'
	@echo '  uninstall        - remove what install put there'
	@echo '  clean            - remove the build outputs ($$(O))'
	@echo '  mrproper         - clean, and remove .config and defconfig (alias: distclean)'
	@echo ''
	@echo 'Variables:'
	@echo '  -jN              - parallel jobs (default: -j$$(nproc), as many as CPUs)'
	@echo '  V=1              - show full commands'
	@echo '  O=dir            - output directory'
	@echo '  SANITIZE=1       - ASan+UBSan build (default O=build-san)'
	@echo '  SANITIZE=thread  - ThreadSanitizer build (default O=build-tsan)'
	@echo '  KCONFIG_CONFIG=f - config file to use instead of .config'
	@echo '  PREFIX DESTDIR BINDIR LIBDIR INCLUDEDIR MANDIR - install paths'
	@echo '  CC CXX CFLAGS CXXFLAGS CPPFLAGS LDFLAGS EXTRA_CFLAGS EXTRA_CXXFLAGS'
	@echo '  KIPC_NO_INSTALL_DEPS=1 - do not run scripts/install-deps automatically'

PHONY += FORCE
FORCE:

.PHONY: $(PHONY)

endif # mixed-build

endif # KIPC_SUBMAKE
