# The user's interface to smki. Each target installs missing Debian packages
# (tools/deps.sh), configures CMake and builds before it does its job.
JOBS    ?= $(shell nproc)
BUILD   ?= build
ASAN    ?= build-asan
FUZZB   ?= build-fuzz
RELEASE ?= build-release
TSAN    ?= build-tsan
# Developer and CI builds fail on a warning (WERROR=OFF to try a build through); a plain
# cmake, a packager's, does not.
WERROR  ?= ON
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 20
FUZZ_LONG_SECONDS ?= 600

.PHONY: all deps build build-asan build-tsan build-fuzz build-release demo test test-normal test-asan test-release test-fuzz bench fuzz \
	soak clean install deb deb-check
PREFIX  ?= /usr/local
DESTDIR ?=
PKG     ?= build-pkg

all: build

deps:
	@tools/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSMKI_WERROR=$(WERROR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DSMKI_SANITIZE=ON -DSMKI_WERROR=$(WERROR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN) -j $(JOBS)

# ThreadSanitizer, the smki command only: run a service under load with it, e.g.
# EST_SERVE=build-tsan/bin/smki TSAN_OPTIONS=log_path=/tmp/tsan tools/bench_est.sh build
build-tsan: deps
	@cmake -S . -B $(TSAN) -DCMAKE_BUILD_TYPE=Debug -DSMKI_TSAN=ON -DSMKI_WERROR=$(WERROR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(TSAN) -j $(JOBS) --target smki

# The optimised flavour a package ships (-O3): it must build without a warning too.
build-release: deps
	@cmake -S . -B $(RELEASE) -DCMAKE_BUILD_TYPE=Release -DSMKI_WERROR=$(WERROR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(RELEASE) -j $(JOBS)

build-fuzz: deps
	@cmake -S . -B $(FUZZB) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DSMKI_FUZZ=ON \
	  -DSMKI_FUZZ_SECONDS=$(FUZZ_SECONDS) -DSMKI_WERROR=$(WERROR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(FUZZB) -j $(JOBS)

# The main job end to end on embedded defaults (SoftHSM token, LMDB store under ./var/).
demo: build
	@tools/demo.sh $(BUILD)/bin/smki

# Every test: the normal build, the ASan+UBSan build, the Release build's unit tests,
# and a short fuzz run.
test: test-normal test-asan test-release test-fuzz

test-normal: build
	@echo "== tests: normal build"
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-asan: build-asan
	@echo "== tests: ASan+UBSan build"
	@ctest --test-dir $(ASAN) --output-on-failure -j $(JOBS)

# Release (-O3): the unit tests only (the integration tests run on the normal build),
# to keep make test within its time.
test-release: build-release
	@echo "== tests: Release build (unit)"
	@ctest --test-dir $(RELEASE) --output-on-failure -j $(JOBS) -L unit

test-fuzz: build-fuzz
	@echo "== tests: short fuzz run ($(FUZZ_SECONDS)s per target)"
	@ctest --test-dir $(FUZZB) --output-on-failure -j $(JOBS)

bench: build
	@tools/deps.sh bench
	@tools/bench.sh $(BUILD)

fuzz:
	@$(MAKE) --no-print-directory build-fuzz FUZZ_SECONDS=$(FUZZ_LONG_SECONDS)
	@ctest --test-dir $(FUZZB) --output-on-failure -j $(JOBS)

soak: build
	@tools/deps.sh bench
	@tools/soak.sh $(BUILD)

# Install the command, its man pages, bash completion, systemd units and examples
# (make install PREFIX=/usr DESTDIR=/tmp/stage). Builds only what is installed; no apt-get.
install:
	@cmake -S . -B $(PKG) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) \
	  -DSMKI_SYSTEMD_UNITDIR=lib/systemd/system -DSMKI_SYSUSERSDIR=lib/sysusers.d -DSMKI_TMPFILESDIR=lib/tmpfiles.d \
	  $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(PKG) -j $(JOBS) --target smki man changelog
	@DESTDIR=$(DESTDIR) cmake --install $(PKG)

# A Debian package (CPack DEB): smki_<version>_<arch>.deb here, for
# 'apt install ./smki_*.deb'. Runtime dependencies only; calls no apt-get (a packaging
# build environment has no network): the build dependencies must be installed.
deb:
	@cmake -S . -B $(PKG) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
	  -DSMKI_SYSTEMD_UNITDIR=/lib/systemd/system -DSMKI_SYSUSERSDIR=/usr/lib/sysusers.d \
	  -DSMKI_TMPFILESDIR=/usr/lib/tmpfiles.d $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(PKG) -j $(JOBS) --target smki man changelog
	@cd $(PKG) && cpack -G DEB >/dev/null && mv smki_*.deb ..
	@ls smki_*.deb

# The .deb on a clean Debian 12 (debootstrap minbase, then systemd-nspawn --boot for the
# units): tools/deb_check.sh. Needs root and Debian's mirror, takes minutes: not in make test.
# DEB_CHECK_ROOT=DIR keeps the clean root for the next run.
deb-check: deb
	@tools/deps.sh bench
	@tools/deb_check.sh

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZB) $(RELEASE) $(PKG)
