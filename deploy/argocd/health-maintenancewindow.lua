-- Argo CD health check for ecsops.io MaintenanceWindow (argocd-cm key
-- resource.customizations.health.ecsops.io_MaintenanceWindow). Healthy once the controller has
-- validated the schedule (Ready=True, open or closed: the message says which and until when);
-- Degraded when Stalled (a schedule, time zone or blackout date the controller cannot use);
-- Progressing before the current generation was observed. Lua 5.1, Argo CD's sandbox (no string.*).

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

local status = obj.status or {}
local generation = (obj.metadata or {}).generation
if status.observedGeneration == nil or (generation ~= nil and status.observedGeneration < generation) then
  return hs
end
local stalled = findCondition(status.conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "Stalled") .. ": " .. (stalled.message or "")
  return hs
end
local ready = findCondition(status.conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = (ready.reason or "") .. ": " .. (ready.message or "")
end
return hs
