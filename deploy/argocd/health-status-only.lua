-- Argo CD health check for the ecsops.io kinds that start nothing themselves: MaintenanceWindow
-- and InstanceDisruptionBudget (argocd-cm keys resource.customizations.health.ecsops.io_<Kind>).
-- Argo CD runs it with the live object in the global `obj` and expects
-- { status = Healthy | Progressing | Degraded, message }. These kinds have no spec.suspend, so
-- never Suspended.
--
-- Rules, in order:
--   1. status.observedGeneration missing or behind metadata.generation -> Progressing.
--   2. Stalled=True (a spec the controller cannot use: a schedule, time zone or blackout date of a
--      window; a budget's maxUnavailable) -> Degraded.
--   3. Ready=True (a window: open or closed and until when; a budget: its usage) -> Healthy.
--   4. Anything else (first visit, a retried error) -> Progressing.
-- Lua 5.1 in Argo CD's sandbox (base, table and package libraries only: no string.*);
-- health-maintenancewindow_test.yaml and health-instancedisruptionbudget_test.yaml hold its cases.

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

local status = obj.status or {}
local generation = (obj.metadata or {}).generation
if status.observedGeneration == nil or (generation ~= nil and status.observedGeneration < generation) then
  if generation ~= nil then
    hs.message = "Waiting for the ecsops controller to observe generation " .. tostring(generation)
  end
  return hs
end

local stalled = findCondition(status.conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  if hs.message == "" then
    hs.message = "Stalled"
  end
  return hs
end

local ready = findCondition(status.conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
end
local text = describe(ready)
if text ~= "" then
  hs.message = text
end
return hs
