-- PatchPolicy: asks the ecsops controller to scan every reachable target now: sets the annotation
-- ecsops.io/scan-requested-at to the current UTC time (RFC 3339). The controller runs one scan
-- per new value and echoes it to status.lastHandledScanAt.
-- `os` is not a global in Argo CD's sandbox; require("os") yields a module with time and date.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["ecsops.io/scan-requested-at"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
