# `make run` opens the workbench; `make test` runs every test. Both set themselves up.
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8501

.PHONY: run test bench chromium clean

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed requirements-test.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-test.txt
	touch $@

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; \
	  else echo "Debian chromium is missing: run 'sudo apt-get install chromium' for the browser test"; fi; }

run: $(VENV)/.installed
	$(PY) -m streamlit run app/main.py --server.address $(HOST) --server.port $(PORT)

test: $(VENV)/.test-installed chromium
	$(PY) -m pytest -q -n 2 --dist loadgroup --no-loadscope-reorder --durations=30

bench: $(VENV)/.installed
	$(PY) bench/train_speed.py
	$(PY) bench/methods_effect.py

clean:
	rm -rf $(VENV) tailscope-data test-artifacts
