"""mmslib: benchmark multi-model serving against traditional serving.

Data flows one way: params (validated) -> plan -> backend deploys -> load
generator -> per-request records -> statistics -> notebook cells and plots.
"""

__version__ = "0.1.0"
