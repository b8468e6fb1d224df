-- Argo CD health check for ecsops.io PatchPolicy (argocd-cm key
-- resource.customizations.health.ecsops.io_PatchPolicy). Argo CD runs it with the live object in
-- the global `obj` and expects { status = Healthy | Progressing | Degraded | Suspended, message }.
--
-- A PatchPolicy is healthy when it OPERATES (its Ready condition), whether or not the fleet is
-- compliant yet: compliance is a separate condition, shown in the message. Rules, in order:
--   1. status.observedGeneration behind metadata.generation -> Progressing.
--   2. Stalled=True (bad schedule, unknown time zone, missing MaintenanceWindow...) -> Degraded.
--   3. spec.suspend -> Suspended.
--   4. Ready=True -> Healthy (message: Ready, then Compliant).
--   5. Ready=False with InstallFailed or ScanFailed -> Degraded.
--   6. Anything else (ScanInProgress, InstallInProgress, first visit) -> Progressing.
-- Lua 5.1 in Argo CD's sandbox (base, table and package libraries only: no string.*).

local hs = { status = "Progressing", message = "Waiting for the ecsops controller to reconcile" }

local function findCondition(conditions, conditionType)
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

local function describe(c)
  if c == nil then
    return ""
  end
  local text = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    if text ~= "" then
      text = text .. ": " .. c.message
    else
      text = c.message
    end
  end
  return text
end

local failedReasons = { InstallFailed = true, ScanFailed = true }

local status = obj.status or {}
local spec = obj.spec or {}
local generation = (obj.metadata or {}).generation
local conditions = status.conditions

if status.observedGeneration == nil or (generation ~= nil and status.observedGeneration < generation) then
  if generation ~= nil then
    hs.message = "Waiting for the ecsops controller to observe generation " .. tostring(generation)
  end
  return hs
end

local stalled = findCondition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local ready = findCondition(conditions, "Ready")
if spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Suspended: no scan or install starts"
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  local compliant = findCondition(conditions, "Compliant")
  if compliant ~= nil then
    hs.message = hs.message .. "; Compliant=" .. tostring(compliant.status) .. " (" .. describe(compliant) .. ")"
  end
  return hs
end

if ready ~= nil and ready.status == "False" and ready.reason ~= nil and failedReasons[ready.reason] == true then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end

if ready ~= nil then
  local text = describe(ready)
  if text ~= "" then
    hs.message = text
  end
end
return hs
