#!/bin/sh
# SeaweedFS in one process (master, volume, filer, S3 gateway) for the compose stack.
# Two S3 identities, rendered from the environment at start (no secret is committed):
#   admin   (S3_ADMIN_ACCESS_KEY/S3_ADMIN_SECRET_KEY): everything; for operators, never the service
#   openmps (OPENMPS_S3_ACCESS_KEY/OPENMPS_S3_SECRET_KEY): read, write and list on OPENMPS_BUCKETS only
# Ports: master 9333, volume 8080, filer 8888, S3 8333, each with its gRPC port at +10000
# (SW_*_PORT override them; the tests do). Our variables are SW_*, never WEED_*: SeaweedFS reads
# WEED_* itself as configuration (WEED_MASTER_... overrides master.toml), which broke volume growth. The S3 gateway's Iceberg and Lance catalogs are off.
set -eu
: "${S3_ADMIN_ACCESS_KEY:?}" "${S3_ADMIN_SECRET_KEY:?}" "${OPENMPS_S3_ACCESS_KEY:?}" "${OPENMPS_S3_SECRET_KEY:?}"
BUCKETS="${OPENMPS_BUCKETS:-media out}"
DATA="${SW_DATA_DIR:-/data}"
CONFIG="${SW_S3_CONFIG:-/tmp/s3.json}"
BIND="${SW_BIND:-0.0.0.0}"
actions=""
for b in $BUCKETS; do
  actions="$actions\"Read:$b\", \"Write:$b\", \"List:$b\", \"Tagging:$b\", "
done
umask 077
cat > "$CONFIG" <<JSON
{
  "identities": [
    {"name": "admin",
     "credentials": [{"accessKey": "$S3_ADMIN_ACCESS_KEY", "secretKey": "$S3_ADMIN_SECRET_KEY"}],
     "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
    {"name": "openmps",
     "credentials": [{"accessKey": "$OPENMPS_S3_ACCESS_KEY", "secretKey": "$OPENMPS_S3_SECRET_KEY"}],
     "actions": [${actions%, }]}
  ]
}
JSON
mkdir -p "$DATA"
exec weed server -dir="$DATA" -ip="${SW_IP:-127.0.0.1}" -ip.bind="$BIND" \
  -master.port="${SW_MASTER_PORT:-9333}" -master.telemetry=false -master.volumeSizeLimitMB="${SW_VOLUME_MB:-1024}" \
  -volume.port="${SW_VOLUME_PORT:-8080}" -volume.max="${SW_VOLUME_MAX:-0}" \
  -filer -filer.port="${SW_FILER_PORT:-8888}" \
  -s3 -s3.port="${SW_S3_PORT:-8333}" -s3.config="$CONFIG" -s3.port.iceberg=0 -s3.port.lance=0
