# Nimbus build. `make` builds build/nimbus; `make run` boots the default
# guest; `make test` installs what is missing, builds and runs every test.
CC      ?= gcc
BUILD   ?= build
OPT     ?= -O2
SAN     ?=
# jansson: the API's JSON (linked). libslirp (--net user), libmicrohttpd (the
# API's HTTP server, --api) and libcurl (the CLI's client of it) are loaded
# with dlopen when used (src/base/dynlib.h): linked, they and their ~20
# dependencies cost every process ~10 ms at start. Only their headers are
# used here (slirp's .pc file names glib's, hence libglib2.0-dev).
SLIRP_CFLAGS := $(shell pkg-config --cflags slirp 2>/dev/null || echo -I/usr/include/slirp)
JANSSON_CFLAGS := $(shell pkg-config --cflags jansson 2>/dev/null)
JANSSON_LIBS   := $(or $(shell pkg-config --libs jansson 2>/dev/null),-ljansson)
CURL_CFLAGS    := $(shell pkg-config --cflags libcurl 2>/dev/null)
CFLAGS  := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Isrc -D_GNU_SOURCE $(JANSSON_CFLAGS) $(SAN) $(EXTRA_CFLAGS)
LDFLAGS := $(SAN)
LDLIBS  := -lfdt -lz -lzstd -lpthread -lm $(JANSSON_LIBS) -lseccomp -ldl
# sqlite3: nimbusd's database; libmicrohttpd: its API server (linked: the VM
# processes load it with dlopen only when they serve --api).
DAEMON_LIBS := -lsqlite3 $(or $(shell pkg-config --libs libmicrohttpd 2>/dev/null),-lmicrohttpd)

# Only the API client sees libcurl's headers.
$(BUILD)/obj/src/cli/api_client.o: CFLAGS += $(CURL_CFLAGS)
$(BUILD)/fuzz/obj/src/cli/api_client.o: FUZZ_CFLAGS += $(CURL_CFLAGS)

# Only the slirp backend sees libslirp's (and glib's) headers.
$(BUILD)/obj/src/net/slirp.o: CFLAGS += $(SLIRP_CFLAGS)
$(BUILD)/fuzz/obj/src/net/slirp.o: FUZZ_CFLAGS += $(SLIRP_CFLAGS)

SRCS      := $(sort $(shell find src -name '*.c'))
OBJS      := $(SRCS:%.c=$(BUILD)/obj/%.o)
# Two programs: nimbus (the CLI and the VM process) and nimbusd (the host daemon).
MAINS     := src/cli/main.c src/daemon/main.c
LIB_OBJS  := $(filter-out $(MAINS:%.c=$(BUILD)/obj/%.o),$(OBJS))
DAEMON_OBJS := $(filter $(BUILD)/obj/src/daemon/%,$(LIB_OBJS))
CORE_OBJS := $(filter-out $(DAEMON_OBJS),$(LIB_OBJS))
# The unit tests and tools link the library objects as an archive, so each
# takes only the objects (and, --as-needed, the libraries) it uses: a test
# of the VMM does not load nimbusd's sqlite3 and libmicrohttpd.
LIB_A     := $(BUILD)/libnimbus.a
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
# Host-side helpers the guest tests run (built with the unit tests).
TOOL_SRCS := $(sort $(wildcard tests/tools/*.c))
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)

# Bare-metal RISC-V test programs (Debian's riscv64 cross toolchain).
RV_CC     ?= riscv64-linux-gnu-gcc
RV_CFLAGS := -march=rv64gc_zba_zbb_zbs_zicsr_zifencei -mabi=lp64d -mcmodel=medany \
             -nostdlib -nostartfiles -static -Wl,--no-relax -Wl,--no-warn-rwx-segments -Wl,--build-id=none -no-pie -Itests/isa \
             -T tests/isa/link.ld
ISA_SRCS  := $(sort $(wildcard tests/isa/*.S))
ISA_ELFS  := $(ISA_SRCS:tests/isa/%.S=$(BUILD)/isa/%.elf)
BENCH_ELF := $(BUILD)/bench/cpu.elf
# Hostile-guest programs (tests/hostile): M-mode ones link like the ISA
# programs; the S-mode --kernel ones (kernel.ld) are listed in KERNEL_PROGS.
HOSTILE_SRCS := $(sort $(wildcard tests/hostile/*.S))
HOSTILE_ELFS := $(HOSTILE_SRCS:tests/hostile/%.S=$(BUILD)/hostile/%.elf)
HOSTILE_KERNEL_PROGS := sbi_random

# libFuzzer targets: every tests/fuzz/fuzz_<name>.c, linked against the
# library objects (all of src/ but main.c) built again with clang and
# coverage instrumentation in their own directory. Seeds: tests/fuzz/corpus/<name>/.
FUZZ_CC     ?= clang
FUZZ_DIR    := $(BUILD)/fuzz
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -Isrc -D_GNU_SOURCE $(JANSSON_CFLAGS) $(FUZZ_SAN)
FUZZ_OBJS   := $(filter-out $(MAINS:%.c=$(FUZZ_DIR)/obj/%.o),$(SRCS:%.c=$(FUZZ_DIR)/obj/%.o))
FUZZ_SRCS   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_ALL    := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SECONDS ?= 300

.PHONY: all run guest test unit isa hostile bench bench-elf deps clean fuzz fuzz-build install
all: $(BUILD)/nimbus $(BUILD)/nimbusd

$(BUILD)/nimbus: $(CORE_OBJS) $(BUILD)/obj/src/cli/main.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/nimbusd: $(LIB_OBJS) $(BUILD)/obj/src/daemon/main.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(DAEMON_LIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB_A): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/tests/%: tests/unit/%.c $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -Wl,--as-needed -o $@ $< $(LIB_A) $(LDLIBS) $(DAEMON_LIBS)

$(BUILD)/tools/%: tests/tools/%.c $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wl,--as-needed -o $@ $< $(LIB_A) $(LDLIBS) $(DAEMON_LIBS)

$(BUILD)/isa/%.elf: tests/isa/%.S $(wildcard tests/isa/*.h tests/isa/*.inc) tests/isa/link.ld
	@mkdir -p $(dir $@)
	$(RV_CC) $(RV_CFLAGS) -o $@ $<

$(BUILD)/hostile/%.elf: tests/hostile/%.S tests/hostile/hostile.h tests/hostile/spew.S tests/isa/test.h tests/isa/link.ld tests/hostile/kernel.ld
	@mkdir -p $(dir $@)
	$(RV_CC) $(filter-out -T tests/isa/link.ld,$(RV_CFLAGS)) -Itests/hostile \
	    -T $(if $(filter $(HOSTILE_KERNEL_PROGS),$*),tests/hostile/kernel.ld,tests/isa/link.ld) -o $@ $<

$(BENCH_ELF): bench/start.S bench/cpu.c tests/isa/link.ld
	@mkdir -p $(dir $@)
	$(RV_CC) -O2 -march=rv64gc -mabi=lp64d -mcmodel=medany -nostdlib -nostartfiles -static \
	    -ffreestanding -fno-pic -no-pie -Wl,--build-id=none -Wl,--no-warn-rwx-segments \
	    -T tests/isa/link.ld -o $@ bench/start.S bench/cpu.c

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

# The objects are prerequisites of a pattern rule only: keep make from
# deleting them as intermediates (every fuzz-build would rebuild all of src/).
.SECONDARY: $(FUZZ_OBJS)

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -Itests/fuzz -Itests/unit -o $@ $< $(FUZZ_OBJS) $(LDLIBS) $(DAEMON_LIBS)

unit: $(UNIT_BINS) $(TOOL_BINS)
isa: $(ISA_ELFS)
hostile: $(HOSTILE_ELFS)
bench-elf: $(BENCH_ELF)
fuzz-build: $(FUZZ_ALL:%=$(FUZZ_DIR)/fuzz_%)

# `make fuzz`: each of FUZZ_TARGETS for FUZZ_SECONDS (see docs/testing.md).
fuzz: deps $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
	@FUZZ_DIR=$(FUZZ_DIR) tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

deps:
	@scripts/deps.sh

# The initramfs and kernel, then the Debian root disk (docs/guest.md).
guest: deps
	@scripts/guest.sh
	@scripts/debian-disk.sh

run: deps all guest
	$(BUILD)/nimbus run --kernel $(BUILD)/guest/vmlinux --initrd $(BUILD)/guest/initramfs.cpio.gz \
	    --append "console=ttyS0" $(RUN_ARGS)

test: deps
	@tests/run.sh

bench: deps all bench-elf guest
	@bench/run.sh
	@bench/io.sh
	@bench/balloon.sh
	@bench/snapshot.sh
	@bench/migrate.sh
	@bench/daemon.sh

# `make install`: the two programs, their man pages, the systemd unit of
# nimbusd (its VMs survive the daemon's restarts: KillMode=process) and bash
# completion.
PREFIX           ?= /usr/local
SYSTEMD_UNIT_DIR ?= /etc/systemd/system
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSTEMD_UNIT_DIR) \
	    $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 755 $(BUILD)/nimbus $(BUILD)/nimbusd $(DESTDIR)$(PREFIX)/bin/
	install -m 644 docs/man/nimbus.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 docs/man/nimbusd.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 644 scripts/nimbus-completion.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/nimbus
	sed 's|@BINDIR@|$(PREFIX)/bin|' contrib/nimbusd.service >$(DESTDIR)$(SYSTEMD_UNIT_DIR)/nimbusd.service
	chmod 644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/nimbusd.service

clean:
	rm -rf $(BUILD)

-include $(OBJS:.o=.d)
-include $(wildcard $(FUZZ_OBJS:.o=.d) $(FUZZ_DIR)/*.d)
