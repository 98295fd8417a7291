# aigc-run — build, test, check, install.
#
#   make            the aigc-run binary and build/libaigc.a
#   make test       every TAP test, through prove
#   make check      the same suite under AddressSanitizer and UndefinedBehaviorSanitizer
#   make install    PREFIX=/usr/local (DESTDIR honoured)
#
# Every .c under runtime/ goes into the library, except the command-line front end;
# every tests/test_*.c becomes a TAP program; tests/cli/*.t are shell tests of the
# binary. A new source file needs no change here.

PREFIX ?= /usr/local
BUILD ?= build
CC ?= cc
PKGS := openblas yaml-0.1 lua5.4 zlib libpng

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ifeq ($(PKG_LIBS),)
$(error build dependencies missing: run scripts/install-deps.sh)
endif

OPT ?= -O3
CFLAGS ?= $(OPT) -g
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
# -fno-math-errno: nothing reads errno after sqrtf or expf, and without it no loop that
# calls them can be vectorized. It changes no result.
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -fno-math-errno $(WARN) -Iinclude $(PKG_CFLAGS) $(CFLAGS)
LDLIBS := $(PKG_LIBS) -lm -lpthread

MAIN_SRC := runtime/cli/main.c
LIB_SRC := $(filter-out $(MAIN_SRC),$(sort $(wildcard runtime/*/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%.t)
CLI_TESTS := $(sort $(wildcard tests/cli/*.t))

.PHONY: all test check install clean bench
all: aigc-run $(BUILD)/libaigc.a

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libaigc.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

aigc-run: $(BUILD)/$(MAIN_SRC:.c=.o) $(BUILD)/libaigc.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%.t: tests/%.c $(BUILD)/libaigc.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -o $@ $< $(BUILD)/libaigc.a $(LDLIBS)

# The tests run from the top of the tree (they read tests/golden/ and data/) with one
# BLAS thread unless told otherwise, so that results do not depend on the machine.
test: aigc-run $(TEST_BIN)
	AIGC_RUN=$(abspath aigc-run) prove --exec '' $(addprefix ./,$(TEST_BIN) $(CLI_TESTS))

# A separate build tree, so that sanitized objects never mix with the normal ones.
check:
	$(MAKE) BUILD=build-san OPT="-O1 -fno-omit-frame-pointer" \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" aigc-run-san test-san

test-san: $(TEST_BIN)
	AIGC_RUN=$(abspath aigc-run-san) ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    prove --exec '' $(addprefix ./,$(TEST_BIN) $(CLI_TESTS))

aigc-run-san: $(BUILD)/$(MAIN_SRC:.c=.o) $(BUILD)/libaigc.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/aigc
	install -m 755 aigc-run $(DESTDIR)$(PREFIX)/bin/aigc-run
	install -m 644 $(BUILD)/libaigc.a $(DESTDIR)$(PREFIX)/lib/libaigc.a
	install -m 644 include/aigc/*.h $(DESTDIR)$(PREFIX)/include/aigc/
	if [ -f docs/aigc-run.1 ]; then install -d $(DESTDIR)$(PREFIX)/share/man/man1 && \
	    install -m 644 docs/aigc-run.1 $(DESTDIR)$(PREFIX)/share/man/man1/; fi

clean:
	rm -rf build build-san aigc-run aigc-run-san

-include $(LIB_OBJ:.o=.d) $(TEST_BIN:.t=.d)
