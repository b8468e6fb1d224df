// luacheck: runs Argo CD resource-customization Lua scripts (health checks and resource
// actions) in gopher-lua, the Lua 5.1 VM Argo CD embeds; see main.go and ../build.sh.
module ecsops.local/tools/luacheck

go 1.26.0

require (
	github.com/yuin/gopher-lua v1.1.1
	layeh.com/gopher-json v0.0.0-20190114024228-97fed8db8427
	sigs.k8s.io/yaml v1.6.0
)

require go.yaml.in/yaml/v2 v2.4.2 // indirect
