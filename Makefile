# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Each creates .venv with plain pip when it is absent (torch 2.14.1 and
# torchvision 0.29.1 come from the machine's local wheels; see DEVELOPERS.md).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APP_STAMP := $(VENV)/.installed-app

.PHONY: demo test setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,imagenet]'
	touch $(STAMP)

# The tests also cover the app, so they install its extra (make demo does not need it).
$(APP_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,imagenet,app]'
	touch $(APP_STAMP)

test: $(APP_STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/selfdepth demo --config configs/demo.yaml --out demo_out

clean:
	rm -rf demo_out runs .pytest_cache
