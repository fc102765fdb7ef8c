"""The inference stage: a trained generator on images of any size: device, model loading, borders, tiles in a
memory budget, the Translator, the batch over files, and the standalone TorchScript / ONNX exports.
"""
