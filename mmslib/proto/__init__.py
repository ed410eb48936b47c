"""Protocol definitions shipped with mmslib.

``grpc_predict_v2.proto``: the Open Inference Protocol (KServe V2) gRPC API,
package ``inference``, service ``GRPCInferenceService``; k6's grpc module loads
it from :data:`PROTO_DIR`.
"""
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
PREDICT_V2_PROTO = "grpc_predict_v2.proto"
PREDICT_V2_PATH = PROTO_DIR / PREDICT_V2_PROTO
