#!/usr/bin/env bash
# Regenerate memgate/profile/profile_pb2.py(i) from memgate/profile/profile.proto.
#
# Needs: pip install grpcio-tools
#
# The runtime-version guard that new protoc releases put into generated modules is removed:
# it would pin users to the protobuf release we happened to generate with, while the module only
# uses the descriptor-builder API that protobuf has had since 3.20 (memgate requires >= 4.21).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m grpc_tools.protoc -I memgate/profile \
    --python_out=memgate/profile --pyi_out=memgate/profile memgate/profile/profile.proto
python - <<'PY'
import re, pathlib
p = pathlib.Path("memgate/profile/profile_pb2.py")
src = p.read_text()
src = re.sub(r"from google\.protobuf import runtime_version as _runtime_version\n", "", src)
src = re.sub(r"_runtime_version\.ValidateProtobufRuntimeVersion\([^)]*\)\n", "", src, flags=re.S)
p.write_text(src)
PY
echo "regenerated memgate/profile/profile_pb2.py"
