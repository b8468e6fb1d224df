-- Argo CD resource actions for ecsops.io kinds (every kind honours the reconcile annotation; all
-- but MaintenanceWindow and InstanceDisruptionBudget have spec.suspend; AppRelease adds promote
-- and pause). Install under the
-- argocd-cm key resource.customizations.actions.ecsops.io_<Kind> (see ../README.md).
--
-- Offers:
--   reconcile  set ecsops.io/reconcile-requested-at to now: the controller reconciles at once
--   suspend    spec.suspend = true: no cloud writes (offered unless already suspended; not for
--              MaintenanceWindow or InstanceDisruptionBudget, which have no spec.suspend and
--              start nothing themselves)
--   resume     spec.suspend = false (offered only while suspended; not for those two)
-- and for AppRelease:
--   promote    set ecsops.io/promote-requested-at to now (and spec.paused = false): continue a
--              paused rollout (offered only while status.phase is Paused or spec.paused is true)
--   pause      spec.paused = true: hold before the next batch (offered unless already paused)
-- and for PatchPolicy:
--   scan-now   set ecsops.io/scan-requested-at to now: scan every reachable target at once
-- Runs in Argo CD's Lua sandbox (gopher-lua, Lua 5.1, base/table/package libraries only).
local suspended = obj.spec ~= nil and obj.spec.suspend == true
local actions = {}
actions["reconcile"] = {}
if obj.kind ~= "MaintenanceWindow" and obj.kind ~= "InstanceDisruptionBudget" then
  actions["suspend"] = { disabled = suspended }
  actions["resume"] = { disabled = not suspended }
end
if obj.kind == "AppRelease" then
  local paused = obj.spec ~= nil and obj.spec.paused == true
  local held = obj.status ~= nil and obj.status.phase == "Paused"
  actions["promote"] = { disabled = not (paused or held) }
  actions["pause"] = { disabled = paused }
end
if obj.kind == "PatchPolicy" then
  actions["scan-now"] = {}
end
return actions
