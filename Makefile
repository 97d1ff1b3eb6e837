# Nimbus build. `make` builds build/nimbus; `make run` boots the default
# guest; `make test` installs what is missing, builds and runs every test.
CC      ?= gcc
BUILD   ?= build
OPT     ?= -O2
SAN     ?=
# jansson: the control socket's JSON (pkg-config, with a fallback).
JANSSON_CFLAGS := $(shell pkg-config --cflags jansson 2>/dev/null)
JANSSON_LIBS   := $(or $(shell pkg-config --libs jansson 2>/dev/null),-ljansson)
CFLAGS  := -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Isrc -D_GNU_SOURCE $(JANSSON_CFLAGS) $(SAN) $(EXTRA_CFLAGS)
LDFLAGS := $(SAN)
LDLIBS  := -lfdt -lpthread -lm $(JANSSON_LIBS)

SRCS      := $(sort $(shell find src -name '*.c'))
OBJS      := $(SRCS:%.c=$(BUILD)/obj/%.o)
LIB_OBJS  := $(filter-out $(BUILD)/obj/src/cli/main.o,$(OBJS))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

# Bare-metal RISC-V test programs (Debian's riscv64 cross toolchain).
RV_CC     ?= riscv64-linux-gnu-gcc
RV_CFLAGS := -march=rv64gc_zba_zbb_zbs_zicsr_zifencei -mabi=lp64d -mcmodel=medany \
             -nostdlib -nostartfiles -static -Wl,--no-relax -Wl,--no-warn-rwx-segments -Wl,--build-id=none -no-pie -Itests/isa \
             -T tests/isa/link.ld
ISA_SRCS  := $(sort $(wildcard tests/isa/*.S))
ISA_ELFS  := $(ISA_SRCS:tests/isa/%.S=$(BUILD)/isa/%.elf)
BENCH_ELF := $(BUILD)/bench/cpu.elf

.PHONY: all run guest test unit isa bench bench-elf deps clean
all: $(BUILD)/nimbus

$(BUILD)/nimbus: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIB_OBJS) $(LDLIBS)

$(BUILD)/isa/%.elf: tests/isa/%.S $(wildcard tests/isa/*.h tests/isa/*.inc) tests/isa/link.ld
	@mkdir -p $(dir $@)
	$(RV_CC) $(RV_CFLAGS) -o $@ $<

$(BENCH_ELF): bench/start.S bench/cpu.c tests/isa/link.ld
	@mkdir -p $(dir $@)
	$(RV_CC) -O2 -march=rv64gc -mabi=lp64d -mcmodel=medany -nostdlib -nostartfiles -static \
	    -ffreestanding -fno-pic -no-pie -Wl,--build-id=none -Wl,--no-warn-rwx-segments \
	    -T tests/isa/link.ld -o $@ bench/start.S bench/cpu.c

unit: $(UNIT_BINS)
isa: $(ISA_ELFS)
bench-elf: $(BENCH_ELF)

deps:
	@scripts/deps.sh

guest: deps
	@scripts/guest.sh

run: deps all guest
	$(BUILD)/nimbus run --kernel $(BUILD)/guest/vmlinux --initrd $(BUILD)/guest/initramfs.cpio.gz \
	    --append "console=ttyS0" $(RUN_ARGS)

test: deps
	@tests/run.sh

bench: deps all bench-elf guest
	@bench/run.sh
	@bench/balloon.sh

clean:
	rm -rf $(BUILD)

-include $(OBJS:.o=.d)
