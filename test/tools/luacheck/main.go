// Command luacheck runs Argo CD resource-customization Lua scripts (health checks and resource
// actions) in gopher-lua, the Lua 5.1 VM Argo CD embeds, in the environment Argo CD gives them,
// and checks them against cases written in Argo CD's resource_customizations test format.
//
//	luacheck [flags] health <health.lua> <health_test.yaml>
//	luacheck [flags] actions <actions-dir>
//	luacheck [flags] run <script.lua> <object.yaml|object.json>
//
// `health` runs every case of the test file (`tests: [{inputPath, healthStatus: {status,
// message}}]`, paths relative to the test file). `actions` takes a directory laid out like Argo
// CD's built-in actions (`discovery.lua`, `<action>/action.lua`, `action_test.yaml` with
// `discoveryTests: [{inputPath, result: [{name, disabled}]}]` and `actionTests: [{action,
// inputPath, expectedOutputPath}]`). `run` prints the script's returned table as JSON.
// Each case prints one line, `PASS<TAB>name` or `FAIL<TAB>name<TAB>why`, then a totals line;
// the exit code is 0 when every case passed, 1 when one failed, 2 on a usage error.
//
// The environment, as Argo CD's util/lua VM sets it up:
//   - the global `obj` holds the live object as nested tables, strings, numbers and booleans;
//   - only the base, table and package libraries are open: no `string`, `math`, `io` or full
//     `os` library, and no string methods ("x"):sub(). argocd-cm
//     `resource.customizations.useOpenLibs.<group>_<kind>: "true"` opens every library for a
//     health check; -open-libs does the same here. Actions never get them;
//   - `require("os")` returns a reduced os module with only `time` and `date` (there is no
//     global `os` in the sandbox);
//   - the chunk must finish within one second and return a table, which is turned into JSON by
//     gopher-json (an empty table becomes `[]`; for actions, fields that were objects in the
//     input and come back as empty arrays are restored, as Argo CD does).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/yaml"
)

var (
	openLibs = flag.Bool("open-libs", false, "open all standard libraries for health scripts and `run` (argocd-cm resource.customizations.useOpenLibs)")
	nowFlag  = flag.String("now", "", "RFC 3339 time returned by os.time() / used by os.date() (default: the real clock)")
	timeout  = flag.Duration("timeout", time.Second, "deadline for one script run (Argo CD: 1s)")
	verbose  = flag.Bool("v", false, "print the JSON each script returned")
)

// clock is the time os.time / os.date see.
var clock = time.Now

func main() {
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage:\n  luacheck [flags] health <health.lua> <health_test.yaml>\n  luacheck [flags] actions <actions-dir>\n  luacheck [flags] run <script.lua> <object.yaml>\nflags:")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			fmt.Fprintf(os.Stderr, "luacheck: -now: %v\n", err)
			os.Exit(2)
		}
		clock = func() time.Time { return t }
	}
	args := flag.Args()
	var r report
	switch {
	case len(args) == 3 && args[0] == "health":
		r = checkHealth(args[1], args[2])
	case len(args) == 2 && args[0] == "actions":
		r = checkActions(args[1])
	case len(args) == 3 && args[0] == "run":
		os.Exit(runOnce(args[1], args[2], os.Stdout))
	default:
		flag.Usage()
		os.Exit(2)
	}
	fmt.Printf("%d passed, %d failed\n", r.passed, r.failed)
	if r.failed > 0 || r.passed == 0 {
		os.Exit(1)
	}
}

type report struct{ passed, failed int }

func (r *report) pass(name string) {
	r.passed++
	fmt.Printf("PASS\t%s\n", name)
}

func (r *report) fail(name string, format string, a ...any) {
	r.failed++
	fmt.Printf("FAIL\t%s\t%s\n", name, strings.ReplaceAll(fmt.Sprintf(format, a...), "\n", " | "))
}

// ---- the VM ----

// execute runs script with obj as the global `obj` and returns the JSON of the table it returns.
func execute(script string, obj map[string]any, withOpenLibs bool) ([]byte, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: !withOpenLibs})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, fmt.Errorf("opening %s: %w", lib.name, err)
		}
	}
	L.PreloadModule(lua.OsLibName, func(L *lua.LState) int {
		L.Push(L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{"time": osTime, "date": osDate}))
		return 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		return nil, err
	}
	ret := L.Get(-1)
	if ret.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", ret.Type())
	}
	return luajson.Encode(ret)
}

// toLua converts a decoded JSON value to Lua: objects and arrays become tables (arrays 1-based).
func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case float64:
		return lua.LNumber(x)
	case string:
		return lua.LString(x)
	case []any:
		t := L.CreateTable(len(x), 0)
		for _, item := range x {
			t.Append(toLua(L, item))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(x))
		for k, item := range x {
			t.RawSetH(lua.LString(k), toLua(L, item))
		}
		return t
	}
	return lua.LNil
}

// osTime is os.time(): the clock's Unix time, or the time of a {year, month, day, hour, min, sec}
// table in the local zone (hour defaults to 12, as in Lua).
func osTime(L *lua.LState) int {
	if L.GetTop() == 0 {
		L.Push(lua.LNumber(clock().Unix()))
		return 1
	}
	tb := L.CheckTable(1)
	field := func(name string, def int) int {
		if n, ok := tb.RawGetString(name).(lua.LNumber); ok {
			return int(n)
		}
		return def
	}
	t := time.Date(field("year", -1), time.Month(field("month", -1)), field("day", -1),
		field("hour", 12), field("min", 0), field("sec", 0), 0, time.Local)
	L.Push(lua.LNumber(t.Unix()))
	return 1
}

// strftimeLayouts maps the conversion characters the sandbox's os.date understands to Go layouts.
var strftimeLayouts = map[byte]string{
	'a': "Mon", 'A': "Monday", 'b': "Jan", 'B': "January", 'c': "02 Jan 06 15:04 MST", 'd': "02",
	'F': "2006-01-02", 'H': "15", 'I': "03", 'm': "01", 'M': "04", 'p': "PM", 'S': "05",
	'x': "15/04/05", 'X': "15:04:05", 'y': "06", 'Y': "2006", 'z': "-0700", 'Z': "MST",
}

// osDate is os.date([format [, time]]): "!" prefix for UTC, "*t" for a table, strftime otherwise.
func osDate(L *lua.LState) int {
	t := clock()
	format := "%c"
	if L.GetTop() >= 1 {
		format = L.CheckString(1)
		if strings.HasPrefix(format, "!") {
			t = t.UTC()
			format = format[1:]
		}
		if L.GetTop() >= 2 {
			t = time.Unix(L.CheckInt64(2), 0)
		}
		if strings.HasPrefix(format, "*t") {
			tb := L.NewTable()
			for k, v := range map[string]int{
				"year": t.Year(), "month": int(t.Month()), "day": t.Day(), "hour": t.Hour(),
				"min": t.Minute(), "sec": t.Second(), "wday": int(t.Weekday()) + 1, "yday": 0,
			} {
				tb.RawSetString(k, lua.LNumber(v))
			}
			tb.RawSetString("isdst", lua.LFalse)
			L.Push(tb)
			return 1
		}
	}
	var out strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i == len(format)-1 {
			out.WriteByte(c)
			continue
		}
		i++
		switch conv := format[i]; {
		case conv == '%':
			out.WriteByte('%')
		case conv == 'w':
			fmt.Fprint(&out, int(t.Weekday()))
		case strftimeLayouts[conv] != "":
			out.WriteString(t.Format(strftimeLayouts[conv]))
		default:
			out.WriteByte('%')
			out.WriteByte(conv)
		}
	}
	L.Push(lua.LString(out.String()))
	return 1
}

// ---- inputs ----

func readObject(path string) (map[string]any, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var obj map[string]any
	if err := json.Unmarshal(js, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if obj == nil {
		return nil, fmt.Errorf("%s: not an object", path)
	}
	return obj, nil
}

func readYAML(path string, into any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict(raw, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// resolvePath resolves a test file's path relative to the test file's directory (absolute paths
// stay as they are).
func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func readScript(path string) (string, error) {
	raw, err := os.ReadFile(path)
	return string(raw), err
}

// ---- health ----

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// validHealth lists the statuses Argo CD accepts from a health script; anything else is reported
// as Unknown with the message below.
var validHealth = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

const invalidHealthMessage = "Lua returned an invalid health status"

func health(script string, obj map[string]any, withOpenLibs bool) (healthStatus, []byte, error) {
	out, err := execute(script, obj, withOpenLibs)
	if err != nil {
		return healthStatus{}, nil, err
	}
	var hs healthStatus
	if err := json.Unmarshal(out, &hs); err != nil {
		return healthStatus{}, out, fmt.Errorf("health script returned %s: %w", out, err)
	}
	if !validHealth[hs.Status] {
		hs = healthStatus{Status: "Unknown", Message: invalidHealthMessage}
	}
	return hs, out, nil
}

func checkHealth(scriptPath, testPath string) report {
	var r report
	script, err := readScript(scriptPath)
	if err != nil {
		r.fail(scriptPath, "%v", err)
		return r
	}
	var cases struct {
		Tests []struct {
			InputPath    string       `json:"inputPath"`
			HealthStatus healthStatus `json:"healthStatus"`
		} `json:"tests"`
	}
	if err := readYAML(testPath, &cases); err != nil {
		r.fail(testPath, "%v", err)
		return r
	}
	dir := filepath.Dir(testPath)
	for _, c := range cases.Tests {
		name := "health " + c.InputPath
		obj, err := readObject(resolvePath(dir, c.InputPath))
		if err != nil {
			r.fail(name, "%v", err)
			continue
		}
		got, out, err := health(script, obj, *openLibs)
		if *verbose && out != nil {
			fmt.Printf("# %s returned %s\n", name, out)
		}
		switch {
		case err != nil:
			r.fail(name, "Lua error: %v", err)
		case got != c.HealthStatus:
			r.fail(name, "got %+v, want %+v", got, c.HealthStatus)
		default:
			r.pass(name)
		}
	}
	return r
}

// ---- actions ----

type discoveredAction struct {
	Name        string `json:"name"`
	Disabled    bool   `json:"disabled,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
	IconClass   string `json:"iconClass,omitempty"`
}

// discover runs discovery.lua and returns the offered actions sorted by name. The script returns
// a table keyed by action name; a value is a table with optional disabled / displayName /
// iconClass (an empty table comes back from gopher-json as []).
func discover(script string, obj map[string]any) ([]discoveredAction, error) {
	out, err := execute(script, obj, false)
	if err != nil {
		return nil, err
	}
	if string(out) == "[]" {
		return []discoveredAction{}, nil
	}
	var byName map[string]json.RawMessage
	if err := json.Unmarshal(out, &byName); err != nil {
		return nil, fmt.Errorf("discovery returned %s, want a table keyed by action name: %w", out, err)
	}
	actions := make([]discoveredAction, 0, len(byName))
	for name, raw := range byName {
		a := discoveredAction{}
		if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&a); err != nil {
				return nil, fmt.Errorf("action %q: %s: %w", name, raw, err)
			}
		}
		a.Name = name
		actions = append(actions, a)
	}
	sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
	return actions, nil
}

// act runs an action.lua and returns the object it returned, with Argo CD's empty-object repair.
func act(script string, obj map[string]any) (map[string]any, error) {
	out, err := execute(script, obj, false)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(out, []byte("[")) {
		return nil, errors.New("the action returned a list (Argo CD's multi-resource form); luacheck checks only actions that return the modified object")
	}
	var result map[string]any
	if err := json.Unmarshal(out, &result); err != nil {
		return nil, fmt.Errorf("action returned %s: %w", out, err)
	}
	// obj is not modified by execute (the Lua side worked on its own tables).
	restoreEmptyObjects(result, obj)
	return result, nil
}

// restoreEmptyObjects undoes a lossy step of the Lua → JSON conversion: Lua has one table type,
// so an object the script emptied (or left empty) comes back as []. Where the input had an object
// under the same key, put the input's object back — recursing into objects and arrays.
func restoreEmptyObjects(out, in map[string]any) {
	for key, inVal := range in {
		outVal, ok := out[key]
		if !ok {
			continue
		}
		switch o := outVal.(type) {
		case map[string]any:
			if i, ok := inVal.(map[string]any); ok {
				restoreEmptyObjects(o, i)
			}
		case []any:
			switch i := inVal.(type) {
			case map[string]any:
				if len(o) == 0 {
					out[key] = i
				}
			case []any:
				restoreInArray(o, i)
			}
		}
	}
}

func restoreInArray(out, in []any) {
	for idx := range out {
		if idx >= len(in) {
			return
		}
		switch o := out[idx].(type) {
		case map[string]any:
			if i, ok := in[idx].(map[string]any); ok {
				restoreEmptyObjects(o, i)
			}
		case []any:
			if i, ok := in[idx].([]any); ok {
				restoreInArray(o, i)
			}
		}
	}
}

func checkActions(dir string) report {
	var r report
	var cases struct {
		DiscoveryTests []struct {
			InputPath string             `json:"inputPath"`
			Result    []discoveredAction `json:"result"`
		} `json:"discoveryTests"`
		ActionTests []struct {
			Action             string `json:"action"`
			InputPath          string `json:"inputPath"`
			ExpectedOutputPath string `json:"expectedOutputPath"`
		} `json:"actionTests"`
	}
	if err := readYAML(filepath.Join(dir, "action_test.yaml"), &cases); err != nil {
		r.fail("action_test.yaml", "%v", err)
		return r
	}
	discovery, err := readScript(filepath.Join(dir, "discovery.lua"))
	if err != nil {
		r.fail("discovery.lua", "%v", err)
		return r
	}
	for _, c := range cases.DiscoveryTests {
		name := "discovery " + c.InputPath
		obj, err := readObject(resolvePath(dir, c.InputPath))
		if err != nil {
			r.fail(name, "%v", err)
			continue
		}
		got, err := discover(discovery, obj)
		want := append([]discoveredAction{}, c.Result...)
		sort.Slice(want, func(i, j int) bool { return want[i].Name < want[j].Name })
		switch {
		case err != nil:
			r.fail(name, "Lua error: %v", err)
		case !reflect.DeepEqual(got, want):
			r.fail(name, "got %s, want %s", mustJSON(got), mustJSON(want))
		default:
			r.pass(name)
		}
	}
	for _, c := range cases.ActionTests {
		name := fmt.Sprintf("action %s %s", c.Action, c.InputPath)
		script, err := readScript(filepath.Join(dir, c.Action, "action.lua"))
		if err != nil {
			r.fail(name, "%v", err)
			continue
		}
		obj, err := readObject(resolvePath(dir, c.InputPath))
		if err != nil {
			r.fail(name, "%v", err)
			continue
		}
		want, err := readObject(resolvePath(dir, c.ExpectedOutputPath))
		if err != nil {
			r.fail(name, "%v", err)
			continue
		}
		got, err := act(script, obj)
		if *verbose && got != nil {
			fmt.Printf("# %s returned %s\n", name, mustJSON(got))
		}
		switch {
		case err != nil:
			r.fail(name, "Lua error: %v", err)
		case !reflect.DeepEqual(got, want):
			r.fail(name, "got %s, want %s (%s)", mustJSON(got), mustJSON(want), c.ExpectedOutputPath)
		default:
			r.pass(name)
		}
	}
	return r
}

// runOnce prints what a script returns for one object: {"ok": true, "result": <JSON>} or
// {"ok": false, "error": "..."}; exit code 0 or 1.
func runOnce(scriptPath, objectPath string, w io.Writer) int {
	script, err := readScript(scriptPath)
	if err == nil {
		var obj map[string]any
		obj, err = readObject(objectPath)
		if err == nil {
			var out []byte
			out, err = execute(script, obj, *openLibs)
			if err == nil {
				fmt.Fprintf(w, "{\"ok\":true,\"result\":%s}\n", out)
				return 0
			}
		}
	}
	fmt.Fprintf(w, "{\"ok\":false,\"error\":%s}\n", mustJSON(err.Error()))
	return 1
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}
