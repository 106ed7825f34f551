#!/bin/sh
# TESTBED stand-in for flannel-io/cni-plugin (not on the Go proxy): see FLANNEL_CNI_SHIM in testbed/testbed.
d=$(dirname "$0")
if [ "${CNI_COMMAND:-}" = VERSION ]; then
  echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}'
  exit 0
fi
out=$(sed 's/"cniVersion"[[:space:]]*:[[:space:]]*"1\.0\.0"/"cniVersion":"0.4.0"/g' | "$d/flannel-v0.9.1")
rc=$?
printf '%s\n' "$out" | sed 's/"cniVersion"[[:space:]]*:[[:space:]]*"0\.4\.0"/"cniVersion":"1.0.0"/g'
exit $rc
