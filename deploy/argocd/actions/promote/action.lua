-- AppRelease only: continues a paused rollout (Argo Rollouts' promote). Sets the annotation
-- ecsops.io/promote-requested-at to the current UTC time (RFC 3339), which ends the canary pause;
-- when the rollout is held by spec.paused (the `pause` action), also sets spec.paused = false.
-- `os` is not a global in Argo CD's sandbox; require("os") yields a module with time and date.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["ecsops.io/promote-requested-at"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
if obj.spec ~= nil and obj.spec.paused == true then
  obj.spec.paused = false
end
return obj
