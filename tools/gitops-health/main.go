// gitops-health prints, for each Kubernetes object it reads, what GitOps tools make of it:
// the kstatus result (sigs.k8s.io/cli-utils, the library Flux's health checks and kstatus-based
// tools use) and the Argo CD health our Lua check for its kind returns, evaluated the way Argo
// CD runs resource health Lua (the object as the global `obj`, the script returns `hs`).
//
// Usage: gitops-health -argocd-cm examples/argocd/argocd-cm.yaml < objects.json
//
// Input: one JSON object, a JSON list of objects, or a `List` (`kubectl get -o json`). Output:
// one JSON line per object: {"kind","name","kstatus","kstatusMessage","argo","argoMessage"}.
// The Lua check of a kind is the ConfigMap's key
// `resource.customizations.health.<group>_<Kind>` (the snippet users paste, tested as is); a
// kind without one reports argo "".
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kjson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type verdict struct {
	Kind           string `json:"kind"`
	Name           string `json:"name"`
	Kstatus        string `json:"kstatus"`
	KstatusMessage string `json:"kstatusMessage"`
	Argo           string `json:"argo"`
	ArgoMessage    string `json:"argoMessage"`
}

func main() {
	cmPath := flag.String("argocd-cm", "", "an argocd-cm ConfigMap (YAML) holding the health checks")
	flag.Parse()
	checks := map[string]string{}
	if *cmPath != "" {
		text, err := os.ReadFile(*cmPath)
		if err != nil {
			fail("reading -argocd-cm: %v", err)
		}
		var cm struct {
			Data map[string]string `json:"data"`
		}
		if err := yaml.Unmarshal(text, &cm); err != nil {
			fail("-argocd-cm %s: %v", *cmPath, err)
		}
		checks = cm.Data
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	objects, err := decode(raw)
	if err != nil {
		fail("stdin: %v", err)
	}
	out := json.NewEncoder(os.Stdout)
	for _, o := range objects {
		u := &unstructured.Unstructured{Object: o}
		v := verdict{Kind: u.GetKind(), Name: u.GetName()}
		res, err := status.Compute(u)
		if err != nil {
			fail("kstatus of %s/%s: %v", v.Kind, v.Name, err)
		}
		v.Kstatus, v.KstatusMessage = res.Status.String(), res.Message
		group := strings.SplitN(u.GetAPIVersion(), "/", 2)[0]
		if script, ok := checks["resource.customizations.health."+group+"_"+v.Kind]; ok {
			v.Argo, v.ArgoMessage, err = argoHealth(script, o)
			if err != nil {
				fail("Argo CD health of %s/%s: %v", v.Kind, v.Name, err)
			}
		}
		if err := out.Encode(v); err != nil {
			fail("writing: %v", err)
		}
	}
}

// decode accepts an object, a JSON array of objects, or a List of items. Integers decode as
// int64, as the apiserver's own decoding does (kstatus reads metadata.generation as one).
func decode(raw []byte) ([]map[string]interface{}, error) {
	var list []map[string]interface{}
	if kjson.Unmarshal(raw, &list) == nil {
		return list, nil
	}
	var one map[string]interface{}
	if err := kjson.Unmarshal(raw, &one); err != nil {
		return nil, err
	}
	if items, ok := one["items"].([]interface{}); ok {
		for _, i := range items {
			m, ok := i.(map[string]interface{})
			if !ok {
				return nil, fmt.Errorf("items: an entry is not an object")
			}
			list = append(list, m)
		}
		return list, nil
	}
	return []map[string]interface{}{one}, nil
}

// argoHealth runs a health script as Argo CD does: `obj` is the object as a Lua table, the
// script's return value is a table with `status` and `message`.
func argoHealth(script string, obj map[string]interface{}) (string, string, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	// The libraries Argo CD opens for health scripts (its lua.VM: base, table, string, math).
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		return "", "", err
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("the script returned %s, not a table", L.Get(-1).Type())
	}
	return lua.LVAsString(ret.RawGetString("status")), lua.LVAsString(ret.RawGetString("message")), nil
}

// toLua converts decoded JSON to Lua values (objects and arrays both become tables, arrays
// 1-based, as Argo CD's conversion does).
func toLua(L *lua.LState, v interface{}) lua.LValue {
	switch t := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(t)
	case float64:
		return lua.LNumber(t)
	case int64:
		return lua.LNumber(t)
	case string:
		return lua.LString(t)
	case []interface{}:
		tbl := L.NewTable()
		for _, e := range t {
			tbl.Append(toLua(L, e))
		}
		return tbl
	case map[string]interface{}:
		tbl := L.NewTable()
		for k, e := range t {
			tbl.RawSetString(k, toLua(L, e))
		}
		return tbl
	default:
		return lua.LString(fmt.Sprint(t))
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "gitops-health: "+format+"\n", args...)
	os.Exit(1)
}
