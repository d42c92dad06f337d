# nnc — a compiler from .nn programs to standalone C.
#
#   make            build ./nnc
#   make demo       install what is missing, build, train mnist_cnn on Fashion-MNIST
#   make check      install what is missing, build, run every test
#   make generated  regenerate generated/ from dsl-examples/
#   make asan-check the tests with nnc and generated code under ASan/UBSan
#   make install PREFIX=/usr/local DESTDIR=
#   make fuzz       libFuzzer on the front end for FUZZ_SECONDS (60)
#   make bench      time every example, fused and unfused, against SGEMM and PyTorch
#   make ab MODEL=m.nn NNC_A=old/nnc  time a change of the generated code against the code before it
#   make deps       install the Debian packages the project needs

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -std=c11 -Wall -Wextra -Werror
BUILD   ?= build
PREFIX  ?= /usr/local
SAN     ?=
ifeq ($(SAN),1)
  BUILD := build-asan
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  # The tests build generated code with these flags after their own -O2:
  # at -O1 gcc compiles instrumented code about twice as fast (6.6 s
  # against 14.3 s for mnist_cnn), and the compiling is most of the
  # sanitizer run. The -O2-only warnings stay covered by the plain run.
  GEN_SANFLAGS := $(SANFLAGS) -O1
endif
ALL_CFLAGS = $(WARN) $(CFLAGS) $(SANFLAGS) -Icompiler -I$(BUILD)
NNC     := $(BUILD)/nnc

COMPILER_SRCS := arena diag ast ir shape train autodiff optim fuse plan lower lower_gemm lower_fused lower_conv emit_c emit_main emit_finite emit_profile dot
COMPILER_OBJS := $(COMPILER_SRCS:%=$(BUILD)/%.o) $(BUILD)/parser.o $(BUILD)/lexer.o \
                 $(BUILD)/runtime_blob.o
RUNTIME_CORE  := runtime/nnc_rt.h runtime/rt_rng.c runtime/rt_safetensors.c
RUNTIME_TRAIN := runtime/rt_data.c runtime/rt_progress.c runtime/rt_trainer.c
CHECK_LIBS     = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck) -lz -lm

EXAMPLES := $(basename $(notdir $(wildcard dsl-examples/*.nn)))

# Debian packages: to build, to run the demo, to run every test.
DEPS_BUILD := gcc make flex bison pkg-config check zlib1g-dev
DEPS_DEMO  := dataset-fashion-mnist
DEPS_TEST  := python3 python3-numpy python3-torch valgrind
DEPS_FUZZ  := clang libclang-rt-14-dev
DEPS_BENCH := libopenblas-dev python3-torch python3-numpy

.PHONY: all demo check test deps deps-build deps-demo deps-test deps-fuzz fuzz generated bench ab deps-bench \
        asan-check install clean

all: nnc

nnc: $(NNC)
	cp $(NNC) nnc

$(BUILD):
	mkdir -p $(BUILD)

$(BUILD)/parser.c $(BUILD)/parser.h: compiler/parser.y | $(BUILD)
	bison -Wall -Werror -d -o $(BUILD)/parser.c compiler/parser.y

$(BUILD)/lexer.c $(BUILD)/lexer.h: compiler/lexer.l | $(BUILD)
	flex --header-file=$(BUILD)/lexer.h -o $(BUILD)/lexer.c compiler/lexer.l

$(BUILD)/embed: compiler/embed.c | $(BUILD)
	$(CC) $(WARN) -O2 -o $@ $<

$(BUILD)/runtime_blob.c: $(BUILD)/embed $(RUNTIME_CORE) $(RUNTIME_TRAIN)
	( $(BUILD)/embed nnc_runtime_core $(RUNTIME_CORE) && \
	  $(BUILD)/embed nnc_runtime_train $(RUNTIME_TRAIN) ) > $@.tmp && mv $@.tmp $@

$(BUILD)/parser.o: $(BUILD)/parser.c $(BUILD)/lexer.h compiler/nnc.h
	$(CC) $(ALL_CFLAGS) -c -o $@ $<
$(BUILD)/lexer.o: $(BUILD)/lexer.c $(BUILD)/parser.h compiler/nnc.h
	$(CC) $(ALL_CFLAGS) -c -o $@ $<
$(BUILD)/runtime_blob.o: $(BUILD)/runtime_blob.c
	$(CC) $(ALL_CFLAGS) -c -o $@ $<
$(BUILD)/%.o: compiler/%.c compiler/nnc.h compiler/ops.def $(BUILD)/parser.h $(BUILD)/lexer.h
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(NNC): $(COMPILER_OBJS) $(BUILD)/main.o
	$(CC) $(ALL_CFLAGS) -o $@ $^ -lm

# ---- tests ----------------------------------------------------------------

TEST_OBJS := $(BUILD)/check_main.o $(BUILD)/check_frontend.o $(BUILD)/check_compiler.o \
             $(BUILD)/check_cnn.o \
             $(BUILD)/check_runtime.o $(BUILD)/rt_rng.o $(BUILD)/rt_safetensors.o \
             $(BUILD)/rt_data.o $(BUILD)/rt_progress.o

$(BUILD)/check_%.o: tests/check_%.c compiler/nnc.h $(BUILD)/parser.h
	$(CC) $(ALL_CFLAGS) -D_POSIX_C_SOURCE=200809L -Iruntime -c -o $@ $<
$(BUILD)/rt_%.o: runtime/rt_%.c runtime/nnc_rt.h | $(BUILD)
	$(CC) $(ALL_CFLAGS) -D_POSIX_C_SOURCE=200809L -Iruntime -c -o $@ $<

$(BUILD)/unit_tests: $(TEST_OBJS) $(COMPILER_OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CHECK_LIBS)

# `make test` runs everything with what is installed; `make check` first
# installs what is missing.
test: $(NNC) $(BUILD)/unit_tests
	NNC=$(NNC) BUILD=$(BUILD) SANFLAGS="$(GEN_SANFLAGS)" tests/run_all.sh

check: deps-build deps-test deps-demo
	$(MAKE) test

asan-check: deps-build deps-test
	$(MAKE) SAN=1 test

# libFuzzer over the front end, shape checker, passes and emitter, with
# ASan/UBSan; the corpus starts from every example.
FUZZ_SECONDS ?= 60
FUZZ_SRCS = $(filter-out compiler/main.c compiler/embed.c,$(wildcard compiler/*.c))
$(BUILD)/fuzz_frontend: tests/fuzz_frontend.c $(FUZZ_SRCS) compiler/nnc.h $(BUILD)/parser.c $(BUILD)/lexer.c $(BUILD)/runtime_blob.c
	clang -g -O1 -std=c11 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	  -Icompiler -I$(BUILD) -o $@ tests/fuzz_frontend.c $(FUZZ_SRCS) \
	  $(BUILD)/parser.c $(BUILD)/lexer.c $(BUILD)/runtime_blob.c -lm

fuzz: deps-fuzz
	$(MAKE) $(BUILD)/fuzz_frontend
	mkdir -p $(BUILD)/fuzz-corpus
	cp dsl-examples/*.nn tests/gradcheck/*.nn tests/bad/*.nn $(BUILD)/fuzz-corpus/ 2>/dev/null || true
	cd $(BUILD) && ./fuzz_frontend -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
	  -print_final_stats=1 fuzz-corpus

# Not a test: timings on a shared machine, fused vs unfused, SGEMM, PyTorch;
# tables on stdout and in $(BUILD)/bench.md (docs/performance.md).
bench: $(NNC)
	NNC=$(NNC) BUILD=$(BUILD) tests/bench.sh

# Not a test either: MODEL compiled by NNC_A (an nnc from the commit to
# compare against) and by this nnc, trained alternately in one process
# (tests/ab.sh; docs/performance.md, "Timing a change").
MODEL ?= dsl-examples/mnist_mlp.nn
ab: $(NNC)
	NNC=$(NNC) BUILD=$(BUILD) NNC_A_FLAGS="$(NNC_A_FLAGS)" tests/ab.sh $(MODEL) $(AB_ARGS)

# ---- examples and generated code -------------------------------------------

generated: $(NNC)
	@for e in $(EXAMPLES); do \
	  $(NNC) --main dsl-examples/$$e.nn -o generated/$$e.c || exit 1; \
	done
	@echo "generated/ is up to date with dsl-examples/ ($(words $(EXAMPLES)) examples)"

demo: deps-build deps-demo
	$(MAKE) $(NNC)
	$(NNC) --main dsl-examples/mnist_cnn.nn -o $(BUILD)/mnist_cnn.c
	$(CC) -O2 -march=native -fopenmp $(WARN) -o $(BUILD)/mnist_cnn $(BUILD)/mnist_cnn.c -lz -lm
	$(BUILD)/mnist_cnn

# ---- set-up ---------------------------------------------------------------

deps: deps-build deps-demo deps-test

# Installs only what is missing, so a set-up machine does not touch apt.
define install_missing
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
endef

deps-build:
	$(call install_missing,$(DEPS_BUILD))
deps-demo:
	$(call install_missing,$(DEPS_DEMO))
deps-test:
	$(call install_missing,$(DEPS_TEST))
deps-fuzz:
	$(call install_missing,$(DEPS_FUZZ))
deps-bench:
	$(call install_missing,$(DEPS_BENCH))

install: $(NNC)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(NNC) $(DESTDIR)$(PREFIX)/bin/nnc

clean:
	rm -rf build build-asan nnc
