-- Asks the ecsops controller to reconcile now: sets the annotation
-- ecsops.io/reconcile-requested-at to the current UTC time (RFC 3339). The controller reacts to
-- any new value and echoes it to status.lastHandledReconcileAt.
-- `os` is not a global in Argo CD's sandbox; require("os") yields a module with time and date.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["ecsops.io/reconcile-requested-at"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
