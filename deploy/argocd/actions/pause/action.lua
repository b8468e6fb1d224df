-- AppRelease only: holds the rollout before its next batch (spec.paused = true). Running batches
-- finish; `promote` continues.
if obj.spec == nil then
  obj.spec = {}
end
obj.spec.paused = true
return obj
