#!/usr/bin/env bash
# Run labkit's widget tests with Colab's ipywidgets 7.7.1 instead of the venv's ipywidgets 8.
#   bash scripts/check_ipywidgets7.sh        (needs PyPI once; VENV=.venv by default)
# ipywidgets 7.7.1 and its 7.x companions go into a throwaway folder put first on PYTHONPATH; the venv is not changed.
set -euo pipefail
VENV=${VENV:-.venv}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
"$VENV/bin/python" -m pip install -q --no-deps --target "$DIR" \
    "ipywidgets==7.7.1" "widgetsnbextension==3.6.10" "jupyterlab_widgets==1.1.11" "ipython_genutils==0.2.0"
PYTHONPATH="$DIR" "$VENV/bin/python" -c 'import ipywidgets; assert ipywidgets.__version__ == "7.7.1"; print("ipywidgets", ipywidgets.__version__)'
PYTHONPATH="$DIR" MPLBACKEND=Agg "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
    tests/test_widgets.py tests/test_widgets_optim.py tests/test_yolov8_widget.py \
    "tests/test_metrics.py::test_interactive_pr_widget_redraws" "tests/test_finetune.py::test_conf_widget_filters_and_redraws"
