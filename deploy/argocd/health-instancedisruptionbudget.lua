-- Argo CD health check for ecsops.io InstanceDisruptionBudget (argocd-cm key
-- resource.customizations.health.ecsops.io_InstanceDisruptionBudget). Argo CD runs it with the live
-- object in the global `obj` and expects { status = Healthy | Progressing | Degraded, message }.
-- A budget has no spec.suspend (it starts nothing itself), so never Suspended. Cluster-scoped.
--
-- Rules, in order:
--   1. status.observedGeneration missing or behind metadata.generation -> Progressing.
--   2. Stalled=True (a maxUnavailable the controller cannot use) -> Degraded.
--   3. Ready=True (selection resolved: the message gives usage, e.g. 2/3 unavailable, and says
--      when work started before the budget keeps it over budget) -> Healthy.
--   4. Anything else (first visit, a retried ECS read error) -> Progressing.
-- Lua 5.1 in Argo CD's sandbox (base, table and package libraries only: no string.*);
-- health-instancedisruptionbudget_test.yaml holds its cases.

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
