# aigc-run — build, test, check, install.
#
#   make            the aigc-run binary and build/libaigc.a
#   make test       every TAP test, through prove
#   make check      the same suite under AddressSanitizer and UndefinedBehaviorSanitizer
#   make valgrind   memcheck over the C tests and short command-line runs (scripts/valgrind.sh)
#   make install    PREFIX=/usr/local (DESTDIR honoured); make uninstall removes it again
#   make clean      needs none of the dependencies
#
# Every .c under runtime/ goes into the library, except the command line's (runtime/cli/);
# every tests/test_*.c becomes a TAP program; tests/cli/*.t are shell tests of the
# binary. A new source file needs no change here.

PREFIX ?= /usr/local
BUILD ?= build
CC ?= cc
PKG_CONFIG ?= pkg-config
PKGS := openblas yaml-0.1 lua5.4 zlib libpng

# Only a goal that builds needs the dependencies: clean and uninstall work without them.
NOBUILD_GOALS := clean uninstall
ifneq ($(filter-out $(NOBUILD_GOALS),$(or $(MAKECMDGOALS),all)),)
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
ifeq ($(PKG_LIBS),)
$(error build dependencies missing: run scripts/install-deps.sh)
endif
endif

# oneDNN (Debian's libdnnl-dev, which has no pkg-config file) is the compute library
# when its header is found, OpenBLAS the other (--backend) and LAPACK's: it is always
# linked. WITH_ONEDNN=0 builds without oneDNN. Debian's oneDNN threads with OpenMP.
WITH_ONEDNN ?= $(shell printf '\043include <oneapi/dnnl/dnnl.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo 1 || echo 0)
ifeq ($(WITH_ONEDNN),1)
DNNL_CFLAGS := -DAIGC_ONEDNN
DNNL_LIBS := -ldnnl -lgomp
endif

OPT ?= -O3
CFLAGS ?= $(OPT) -g
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
# -fno-math-errno: nothing reads errno after sqrtf or expf, and without it no loop that
# calls them can be vectorized. -fno-trapping-math: no floating-point trap is enabled,
# so a select in a loop (relu, leaky_relu) may be vectorized. Neither changes a result.
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -fno-math-errno -fno-trapping-math $(WARN) -Iinclude $(PKG_CFLAGS) $(DNNL_CFLAGS) $(CFLAGS)
LDLIBS := $(PKG_LIBS) $(DNNL_LIBS) -lm -lpthread

CLI_SRC := $(sort $(wildcard runtime/cli/*.c))
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
LIB_SRC := $(filter-out $(CLI_SRC),$(sort $(wildcard runtime/*/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%.t)
CLI_TESTS := $(sort $(wildcard tests/cli/*.t))

.PHONY: all test check install uninstall clean bench
all: aigc-run $(BUILD)/libaigc.a

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# The build's commit, for run reports: the header changes only when the commit does, so
# that one object is rebuilt for it.
COMMIT := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
$(BUILD)/gen/commit.h: FORCE
	@mkdir -p $(dir $@)
	@echo '#define AIGC_COMMIT "$(COMMIT)"' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/runtime/report/report.o: $(BUILD)/gen/commit.h
$(BUILD)/runtime/report/report.o: ALL_CFLAGS += -I$(BUILD)/gen
.PHONY: FORCE

$(BUILD)/libaigc.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

aigc-run: $(CLI_OBJ) $(BUILD)/libaigc.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%.t: tests/%.c $(BUILD)/libaigc.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -MMD -MP -o $@ $< $(BUILD)/libaigc.a $(LDLIBS)

# The tests run from the top of the tree (they read tests/golden/ and data/) with one
# BLAS thread unless told otherwise, so that results do not depend on the machine, and
# with the cache of inflated data off, so that no run reads what an earlier one left
# (tests/test_idx.c and tests/cli/data-cache.t give it directories of their own). The C
# tests (gradient checks, PyTorch goldens) run once per backend built in; the command
# line's on the default one, which tests/cli/determinism.t also compares with OpenBLAS.
BACKENDS := openblas $(if $(filter 1,$(WITH_ONEDNN)),onednn)
test: aigc-run $(TEST_BIN)
	@set -e; for b in $(BACKENDS); do echo "# backend $$b"; \
	    AIGC_BACKEND=$$b AIGC_CACHE=off prove --exec '' $(addprefix ./,$(TEST_BIN)); done
	AIGC_RUN=$(abspath aigc-run) AIGC_CACHE=off prove --exec '' $(addprefix ./,$(CLI_TESTS))

# A separate build tree, so that sanitized objects never mix with the normal ones.
check:
	$(MAKE) BUILD=build-san OPT="-O1 -fno-omit-frame-pointer" \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" aigc-run-san test-san

test-san: $(TEST_BIN)
	AIGC_RUN=$(abspath aigc-run-san) AIGC_CACHE=off ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    prove --exec '' $(addprefix ./,$(TEST_BIN) $(CLI_TESTS))

aigc-run-san: $(CLI_OBJ) $(BUILD)/libaigc.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# No error and no leak of any kind, on success and on the error paths, over the C test
# programs and the command-line runs of scripts/valgrind.sh: about 12 minutes on two
# cores. VALGRIND_ARGS="--only c" (or cli) runs a part.
.PHONY: valgrind
valgrind: aigc-run $(TEST_BIN)
	sh scripts/valgrind.sh $(VALGRIND_ARGS)

# What make install puts under $(DESTDIR)$(PREFIX), and all that make uninstall removes:
# the binary, the library, its headers and aigc.pc (for pkg-config --static), and the
# example specs and hook scripts under share/aigc-run/.
HEADERS := $(notdir $(wildcard include/aigc/*.h))
SPECS := $(notdir $(wildcard specs/*.yaml))
HOOKS := $(notdir $(wildcard scripts/hooks/*.lua))
VERSION := $(shell sed -n 's/^\#define AIGC_VERSION "\(.*\)"/\1/p' include/aigc/base.h)
DEST := $(DESTDIR)$(PREFIX)
SHARE := $(DEST)/share/aigc-run

install: all
	install -d $(DEST)/bin $(DEST)/lib/pkgconfig $(DEST)/include/aigc $(SHARE)/specs $(SHARE)/scripts/hooks
	install -m 755 aigc-run $(DEST)/bin/aigc-run
	install -m 644 $(BUILD)/libaigc.a $(DEST)/lib/libaigc.a
	install -m 644 $(addprefix include/aigc/,$(HEADERS)) $(DEST)/include/aigc/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@REQUIRES@|$(PKGS)|' \
	    aigc.pc.in >$(DEST)/lib/pkgconfig/aigc.pc
	chmod 644 $(DEST)/lib/pkgconfig/aigc.pc
	install -m 644 $(addprefix specs/,$(SPECS)) $(SHARE)/specs/
	install -m 644 $(addprefix scripts/hooks/,$(HOOKS)) $(SHARE)/scripts/hooks/

uninstall:
	rm -f $(DEST)/bin/aigc-run $(DEST)/lib/libaigc.a $(DEST)/lib/pkgconfig/aigc.pc \
	    $(addprefix $(DEST)/include/aigc/,$(HEADERS)) $(addprefix $(SHARE)/specs/,$(SPECS)) \
	    $(addprefix $(SHARE)/scripts/hooks/,$(HOOKS))
	-rmdir $(DEST)/include/aigc $(SHARE)/specs $(SHARE)/scripts/hooks $(SHARE)/scripts $(SHARE) 2>/dev/null

clean:
	rm -rf build build-san aigc-run aigc-run-san

-include $(LIB_OBJ:.o=.d) $(TEST_BIN:.t=.d) $(CLI_OBJ:.o=.d)

# make fuzz: the libFuzzer harnesses of tests/fuzz/ (docs/fuzzing.md) — the spec loader,
# the expression parser, the IDX, safetensors and checkpoint readers — built with clang
# under ASan and UBSan in $(BUILD)/fuzz/, each run FUZZ_SECONDS (default 60) from its
# seeds. Findings land in $(BUILD)/fuzz/crashes/TARGET/. Needs clang and its libFuzzer
# runtime (sh scripts/install-deps.sh --with-fuzz); the rest of the build does not.
FUZZ_TARGETS ?= spec expr idx safetensors ckpt
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
.PHONY: fuzz fuzz-build
fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(BUILD)/fuzz/corpus/$$t $(BUILD)/fuzz/crashes/$$t; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	    dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
	    $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	        $$dict -artifact_prefix=$(BUILD)/fuzz/crashes/$$t/ $(BUILD)/fuzz/corpus/$$t tests/fuzz/corpus/$$t; \
	done

fuzz-build:
	@printf 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }\n' | \
	    clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null || { echo \
	    "make fuzz needs clang and libFuzzer: run sh scripts/install-deps.sh --with-fuzz" >&2; exit 1; }
	$(MAKE) BUILD=$(BUILD)/fuzz CC=clang CFLAGS="-O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
	    $(BUILD)/fuzz/libaigc.a
	@set -e; for t in $(FUZZ_TARGETS); do \
	    echo "clang ... -o $(BUILD)/fuzz/fuzz_$$t"; \
	    clang $(ALL_CFLAGS) -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) $(LDFLAGS) tests/fuzz/fuzz_$$t.c \
	        $(BUILD)/fuzz/libaigc.a $(LDLIBS) -o $(BUILD)/fuzz/fuzz_$$t; \
	done

# make bench: one Fashion-MNIST epoch of the GAN and the VAE and the DDPM's first steps,
# on each backend and in PyTorch, against the machine's peak (scripts/bench.sh;
# docs/performance.md). A benchmark, not a test: nothing in it fails on a time.
# BENCH_ARGS="--threads '1 2' --reps 5" changes the runs.
bench: aigc-run $(if $(DNNL_CFLAGS),$(BUILD)/tests/bench/backend_probe)
	PROBE=$(BUILD)/tests/bench/backend_probe scripts/bench.sh $(BENCH_ARGS)

# make sgemm-probe: the runtime's sgemm, cut by its pool as training cuts it, at the
# GAN's and the VAE's shapes (tests/bench/sgemm_probe.c).
.PHONY: sgemm-probe
sgemm-probe: $(BUILD)/tests/bench/sgemm_probe
	$(BUILD)/tests/bench/sgemm_probe -t 2 gan=100,256,512,784+784,512,256,1 vae=784,400,40+20,400,784

$(BUILD)/tests/bench/sgemm_probe: tests/bench/sgemm_probe.c $(BUILD)/libaigc.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libaigc.a $(LDLIBS)

# make backend-probe: cblas_sgemm against dnnl_sgemm at the GAN's and the VAE's shapes,
# speed and accuracy (tests/bench/backend_probe.c). Needs oneDNN.
.PHONY: backend-probe
backend-probe: $(BUILD)/tests/bench/backend_probe
	$(BUILD)/tests/bench/backend_probe -t 2 gan=100,256,512,784+784,512,256,1 vae=784,400,40+20,400,784

$(BUILD)/tests/bench/backend_probe: tests/bench/backend_probe.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LDLIBS)

# make conv-probe: the engine's convolutions against oneDNN's primitives at the DDPM's
# shapes (tests/bench/conv_probe.c). Needs oneDNN.
.PHONY: conv-probe
conv-probe: $(BUILD)/tests/bench/conv_probe
	$(BUILD)/tests/bench/conv_probe -t 1
	$(BUILD)/tests/bench/conv_probe -t 2

$(BUILD)/tests/bench/conv_probe: tests/bench/conv_probe.c $(BUILD)/libaigc.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libaigc.a $(LDLIBS)

# make quality: the quality report (scripts/quality.sh; docs/quality.md): trains each
# family's spec for a stated budget on the embedded MNIST subset and on Fashion-MNIST
# (skipped if absent) under runs/quality/, measures the samples, and rewrites the measured
# part of docs/quality.md and docs/img/quality/. Most of it is the DDPM (10 epochs and its
# DDIM samples on one thread).
# QUALITY_ARGS="--seed 1 --threads 2 --backend openblas" changes the runs.
.PHONY: quality
quality: aigc-run
	sh scripts/quality.sh --no-build $(QUALITY_ARGS)

# make applications: the figures of docs/applications.md (scripts/applications.sh):
# trains what is not trained yet under runs/applications/ (conditional diffusion, the
# conditional VAEs and GAN, the GANs, the VAE, the classifier that measures them, the
# classifiers and probes trained on generated data and features), measures them, and
# rewrites the page's measured blocks and docs/img/applications/. Most of it is the
# conditional DDPM: its training, its samples at each guidance scale and the 9,000
# images it generates for the Classification Accuracy Score.
# APPLICATIONS_ARGS="--parts style" runs one part (of: cfg style cas probe gan).
.PHONY: applications
applications: aigc-run
	sh scripts/applications.sh --no-build $(APPLICATIONS_ARGS)
