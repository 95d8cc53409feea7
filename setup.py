"""Installs the MH2F-Net plugin for BasicSR and its `basicsr` command.

basicsr 1.4.2 is a source package whose build imports torch: install torch first and use
``pip install --no-build-isolation`` (``scripts/install.sh`` does both).
"""
from setuptools import find_packages, setup

setup(
    name='mh2f_plugin',
    version='0.1.0',
    description='MH2F-Net single-image deraining for BasicSR: network, loss, datasets, command line',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mh2f_plugin', 'mh2f_plugin.*']),
    package_data={'mh2f_plugin.weights': ['zoo.yml']},
    python_requires='>=3.10',  # torch 2.14 has no wheel for Python 3.9
    install_requires=[
        'torch>=2.14.1',  # the oldest torch the suite runs on: what CI installs
        'torchvision>=0.29',
        'basicsr==1.4.2',
        'mmengine',
        'opencv-python',
        'lmdb',
        'pyyaml',
        'tqdm',
        'scikit-image',
        'matplotlib',
    ],
    extras_require={
        'dev': ['pytest', 'flake8==7.5.0', 'isort==9.0.2', 'yapf==0.43.0'],
        # reading the authors' TensorFlow 1 checkpoints (DDN, SIRR); only to convert them
        'tf': ['tensorflow-cpu>=2.16; platform_machine == "x86_64"', 'tensorflow>=2.16; platform_machine != "x86_64"'],
        # basicsr export, and --engine onnxruntime (torch's exporter needs onnx and onnxscript)
        'onnx': ['onnx>=1.17', 'onnxscript>=0.5', 'onnxruntime>=1.20'],
        # --engine openvino (it exports through ONNX first)
        'openvino': ['openvino>=2025.0', 'onnx>=1.17', 'onnxscript>=0.5'],
        # basicsr web
        'web': ['gradio>=5.30'],
        # the browser test of basicsr web (it drives Debian's chromium, not a browser Playwright downloads)
        'webtest': ['playwright>=1.45'],
    },
    entry_points={
        'console_scripts': ['basicsr = mh2f_plugin.cli.main:main'],
        'basicsr.plugins': ['mh2f_plugin = mh2f_plugin'],
    },
)
