"""bioflow: declarative, gin-configured TensorFlow/Keras framework for bio-inspired CNNs."""
import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent

setup(
    name="bioflow",
    version="0.1.0",
    description="Gin-configured TensorFlow/Keras framework for biologically inspired CNNs",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["bioflow", "bioflow.*"]) + ["bioflow.configs"],
    # The top-level gin/ tree ships inside the package as bioflow.configs.
    package_dir={"bioflow.configs": "gin"},
    package_data={"bioflow.configs": ["*.gin", "**/*.gin"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "keras-cv>=0.9",
        "gin-config>=0.5",
        "tensorflow-datasets>=4.9",
        "importlib_resources",  # tensorflow-datasets imports it without declaring it
        "pandas>=2.0",
        "altair>=5.0",
        "vl-convert-python>=1.0",  # Altair charts to PNG, offline (learning curves, reports)
        "tensorboard",  # TensorFlow no longer installs it; needed for train.tensorboard logs
        "click>=8.0",
        "numpy",
        "h5py",
    ],
    extras_require={"test": ["pytest>=7", "scipy"]},  # scipy: the reference blur in the noise tests
    entry_points={"console_scripts": ["bioflow = bioflow.cli:main"]},
)
