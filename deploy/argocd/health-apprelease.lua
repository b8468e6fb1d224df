-- Argo CD health check for ecsops.io AppRelease (argocd-cm key
-- resource.customizations.health.ecsops.io_AppRelease). Argo CD runs it with the live object in
-- the global `obj` and expects { status = Healthy | Progressing | Degraded | Suspended, message }.
--
-- Rules, in order:
--   1. status.observedGeneration missing or behind metadata.generation -> Progressing.
--   2. Stalled=True (ConflictingRelease, InstanceNotFound, PermissionDenied...) -> Degraded.
--   3. spec.suspend -> Suspended.
--   4. status.phase Paused (canary pause, spec.paused) -> Suspended; the message is the Paused
--      condition (what it waits for: the promote annotation, spec.paused false).
--   5. status.phase RolledBack or Failed -> Degraded; the message is the Ready condition, which
--      names the failing step and instance.
--   6. Ready=True -> Healthy.
--   7. Ready=False with reason RolloutFailed (e.g. a drift enrolment failed) -> Degraded.
--   8. Anything else (Progressing, RollingBack, WaitingForInstanceLock, first visit) -> Progressing.
-- Lua 5.1 in Argo CD's sandbox (base, table and package libraries only: no string.*, no s:sub()).

local hs = { status = "Progressing", message = "Waiting for the ecsops controller to reconcile" }

local function condition(conditions, conditionType)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function text(c)
  if c == nil then
    return ""
  end
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  return reason .. message
end

local status = obj.status or {}
local spec = obj.spec or {}
local generation = (obj.metadata or {}).generation
local conditions = status.conditions
local phase = status.phase
local ready = condition(conditions, "Ready")

if status.observedGeneration == nil or (generation ~= nil and status.observedGeneration < generation) then
  if generation ~= nil then
    hs.message = "Waiting for the ecsops controller to observe generation " .. tostring(generation)
  end
  return hs
end

local stalled = condition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = text(stalled)
  return hs
end

if spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Suspended: no batch starts"
  return hs
end

if phase == "Paused" then
  hs.status = "Suspended"
  local paused = condition(conditions, "Paused")
  if paused ~= nil and paused.status == "True" then
    hs.message = text(paused)
  else
    hs.message = text(ready)
  end
  return hs
end

if phase == "RolledBack" or phase == "Failed" then
  hs.status = "Degraded"
  hs.message = text(ready)
  if hs.message == "" then
    hs.message = "Rollout " .. phase
  end
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready)
  return hs
end

if ready ~= nil and ready.status == "False" and ready.reason == "RolloutFailed" then
  hs.status = "Degraded"
  hs.message = text(ready)
  return hs
end

if ready ~= nil and text(ready) ~= "" then
  hs.message = text(ready)
end
return hs
