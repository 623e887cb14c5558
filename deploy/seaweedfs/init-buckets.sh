#!/bin/sh
# One-shot: create OPENMPS_BUCKETS through SeaweedFS's master (weed shell), skipping any that
# exist, so re-running the stack is harmless. Exits non-zero if a bucket is still missing.
set -eu
MASTER="${SW_MASTER:-seaweedfs:9333}"
BUCKETS="${OPENMPS_BUCKETS:-media out}"
listed() { echo "s3.bucket.list" | weed shell -master="$MASTER" 2>/dev/null | awk '{print $1}'; }
for b in $BUCKETS; do
  if listed | grep -qx "$b"; then
    echo "bucket $b exists"
  else
    echo "s3.bucket.create -name $b" | weed shell -master="$MASTER"
  fi
done
for b in $BUCKETS; do
  listed | grep -qx "$b" || { echo "bucket $b is missing" >&2; exit 1; }
done
echo "buckets ready: $BUCKETS"
