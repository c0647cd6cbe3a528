# edge-assistant: `make demo` and `make test` do all set-up on a fresh Debian/Ubuntu machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NATIVE_DEPS := native/build_frontend.py native/frontend_cdef.h $(wildcard native/src/*.c native/src/*.h native/include/ea/*.h)
# Debian packages the build and the tests need (a C compiler; libsndfile is bundled by the soundfile wheel
# on x86_64/aarch64, the Debian one is the fallback; alsa-utils and systemd give the firmware tests arecord and
# systemd-analyze; espeak-ng speaks the demo's and the pipeline tests' commands, flite adds voices of real speakers
# to the synthetic speech wake-word heads are trained on; libasound2-dev lets pip
# build pyalsaaudio, the in-process microphone capture; rauc, dbus, openssl and squashfs-tools let
# tests/firmware/test_version_floor.py run RAUC's own service on a private D-Bus with a real bundle).
APT_PACKAGES := gcc make libsndfile1 alsa-utils systemd espeak-ng flite mosquitto libasound2-dev device-tree-compiler \
	rauc dbus openssl squashfs-tools

.PHONY: setup system-deps demo test lint check-native models bench clean help image bundle test-system test-system-smoke image-deps image-arm64 test-system-arm64 image-rpi test-image-rpi

help:
	@echo "make demo          set up and run the assistant's main job on its embedded default"
	@echo "make test          set up and run the whole test suite (what CI runs)"
	@echo "make check-native  build and run the C tests under sanitizers and valgrind"
	@echo "make models        build the converted/quantized models into the model cache"
	@echo "make lint          ruff"
	@echo "make image         x86_64 A/B disk image (mmdebstrap, GRUB-EFI, RAUC) in $(IMAGE_DIR)"
	@echo "make bundle       signed RAUC bundle of the image's root filesystem"
	@echo "make test-system   boot the image under QEMU (TCG, OVMF) and check it from outside"
	@echo "make test-system-smoke  CI's subset: the image only, one boot: units, layout, CAN (run by .ci/run)"
	@echo "make image-arm64   the qemu-arm64 board's image in $(IMAGE_DIR_ARM64) (IMAGE_BOARD=qemu-arm64)"
	@echo "make image-rpi     the Raspberry Pi 4 image in $(IMAGE_DIR_RPI) (RPI_CAN_CHIP=... for the CAN HAT)"
	@echo "make test-image-rpi  check the built Pi image's partitions, boot slots, device trees and RAUC setup"
	@echo "make test-system-arm64  boot it under qemu-system-aarch64 -M virt (TCG, AAVMF): READY, CAN replay"

setup: $(STAMP)

system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	inc=$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])'); \
	[ -f "$$inc/Python.h" ] || missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml $(NATIVE_DEPS)
	@$(MAKE) --no-print-directory system-deps
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel cffi
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

# Speech that calibrates the static int8 wake-word embedding (real read speech that no test scores).
WAKE_CALIBRATION ?= $(wildcard ../shared/data/speech/negatives/librispeech)

models: setup
	$(BIN)/edge-assistant models build $(if $(WAKE_CALIBRATION),--wake-calibration $(WAKE_CALIBRATION))

demo: setup models
	$(BIN)/edge-assistant demo

test: setup models
	$(BIN)/ruff check edge_assistant tests benchmarks native/build_frontend.py
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check edge_assistant tests benchmarks native/build_frontend.py

check-native:
	@$(MAKE) --no-print-directory system-deps APT_PACKAGES="gcc make valgrind"
	$(MAKE) -C native check

clean:
	rm -rf build $(VENV) edge_assistant/_native/_frontend*.so edge_assistant/_native/_frontend.c
	-$(MAKE) -C native clean

# ---- device image (firmware/image, firmware/README.md). Big artefacts and the development keys go to
# IMAGE_DIR, outside the repository.
IMAGE_DIR ?= $(abspath ../build-image)
IMAGE_BOARD ?= qemu-x86_64
IMAGE_APT := mmdebstrap qemu-system-x86 qemu-utils ovmf rauc grub-efi-amd64-bin grub-common dosfstools e2fsprogs \
	squashfs-tools fdisk mtools openssl arch-test device-tree-compiler

# an arm64 board built on another architecture: Debian's qemu-user-static runs the arm64 root's programs
# (dpkg's maintainer scripts, gcc for the C extensions) through binfmt_misc; qemu-system-arm and AAVMF boot it
IMAGE_APT_ARM64 := qemu-user-static binfmt-support qemu-system-arm qemu-efi-aarch64
IMAGE_ARCH_OF_BOARD = $(if $(filter qemu-arm64 rpi,$(IMAGE_BOARD)),arm64,amd64)

image-deps:
	@$(MAKE) --no-print-directory system-deps APT_PACKAGES="$(IMAGE_APT)"
	@if [ "$(IMAGE_ARCH_OF_BOARD)" != "$$(dpkg --print-architecture)" ]; then \
	  $(MAKE) --no-print-directory system-deps APT_PACKAGES="$(IMAGE_APT_ARM64)"; \
	  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; \
	  update-binfmts --enable qemu-aarch64 2>/dev/null || true; \
	  arch-test $(IMAGE_ARCH_OF_BOARD) >/dev/null || { echo "cannot run $(IMAGE_ARCH_OF_BOARD) binaries (binfmt_misc, qemu-user-static)" >&2; exit 1; }; \
	fi

image: setup image-deps
	BOARD=$(IMAGE_BOARD) PYTHON=$(abspath $(BIN)/python) firmware/image/build-image.sh $(IMAGE_DIR)

bundle: image-deps
	firmware/image/build-bundle.sh $(IMAGE_DIR)

test-system: setup image-deps
	@[ -f $(IMAGE_DIR)/disk.img ] || $(MAKE) --no-print-directory image
	@[ -f $(IMAGE_DIR)/bundle-power-cut.raucb ] && [ $(IMAGE_DIR)/bundle-power-cut.raucb -nt $(IMAGE_DIR)/rootfs.ext4 ] \
	  || TEST_BUNDLES=1 firmware/image/build-bundle.sh $(IMAGE_DIR)
	EDGE_ASSISTANT_SYSTEM_TESTS=1 EDGE_ASSISTANT_IMAGE_DIR=$(IMAGE_DIR) $(BIN)/python -m pytest -v tests/system

# CI's subset of the system test: the image only (no bundles), one VM: boot, units, layout, CAN (tests/system/test_smoke.py)
test-system-smoke: setup image-deps
	@[ -f $(IMAGE_DIR)/disk.img ] || $(MAKE) --no-print-directory image
	EDGE_ASSISTANT_SYSTEM_TESTS=smoke EDGE_ASSISTANT_IMAGE_DIR=$(IMAGE_DIR) $(BIN)/python -m pytest -v tests/system

# arm64 smoke test (not in CI: TCG aarch64 on x86 is slow): its own image directory, never IMAGE_DIR's
IMAGE_DIR_ARM64 ?= $(abspath ../build-image-arm64)

image-arm64:
	@$(MAKE) --no-print-directory image IMAGE_BOARD=qemu-arm64 IMAGE_DIR=$(IMAGE_DIR_ARM64)

test-system-arm64: setup
	@$(MAKE) --no-print-directory image-deps IMAGE_BOARD=qemu-arm64
	@[ -f $(IMAGE_DIR_ARM64)/disk.img ] || $(MAKE) --no-print-directory image-arm64
	EDGE_ASSISTANT_SYSTEM_TESTS=1 EDGE_ASSISTANT_SYSTEM_TESTS_ARM64=1 EDGE_ASSISTANT_IMAGE_DIR=$(IMAGE_DIR_ARM64) \
	  $(BIN)/python -m pytest -v tests/system/test_image_arm64.py

# Raspberry Pi 4 (boards/rpi), not in CI (arm64 build under qemu-user, TCG aarch64): its files checked, and its
# A/B update through tryboot run in qemu-system-aarch64 -M virt, the test playing the Pi firmware's part
IMAGE_DIR_RPI ?= $(abspath ../build-image-rpi)

image-rpi:
	@$(MAKE) --no-print-directory image IMAGE_BOARD=rpi IMAGE_DIR=$(IMAGE_DIR_RPI)

test-image-rpi: setup
	@$(MAKE) --no-print-directory image-deps IMAGE_BOARD=rpi
	@[ -f $(IMAGE_DIR_RPI)/disk.img ] || $(MAKE) --no-print-directory image-rpi
	@[ -f $(IMAGE_DIR_RPI)/bundle-good.raucb ] && [ $(IMAGE_DIR_RPI)/bundle-good.raucb -nt $(IMAGE_DIR_RPI)/rootfs.ext4 ] \
	  || firmware/image/build-bundle.sh $(IMAGE_DIR_RPI)
	EDGE_ASSISTANT_SYSTEM_TESTS=1 EDGE_ASSISTANT_SYSTEM_TESTS_RPI=1 EDGE_ASSISTANT_IMAGE_DIR=$(IMAGE_DIR_RPI) \
	  $(BIN)/python -m pytest -v tests/system/test_image_rpi.py
