package main

// The resource plugins a program needs, from the package.json files of its node_modules (what
// GetRequiredPackages and GetRequiredPlugins answer).

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// pulumiPackage is the "pulumi" field of a provider SDK's package.json.
type pulumiPackage struct {
	Resource bool   `json:"resource"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	Server   string `json:"server"`
}

// requiredPackages lists the resource plugins named by the packages under dir/node_modules
// (top level and @scope/ level), sorted by name.
func requiredPackages(dir string) ([]*pulumirpc.PackageDependency, error) {
	modules, err := findUp(dir, "node_modules")
	if err != nil {
		return nil, err
	}
	var manifests []string
	top, err := os.ReadDir(modules)
	if err != nil {
		return nil, err
	}
	for _, e := range top {
		p := filepath.Join(modules, e.Name())
		if strings.HasPrefix(e.Name(), "@") {
			scoped, err := os.ReadDir(p)
			if err != nil {
				continue
			}
			for _, s := range scoped {
				manifests = append(manifests, filepath.Join(p, s.Name(), "package.json"))
			}
			continue
		}
		manifests = append(manifests, filepath.Join(p, "package.json"))
	}
	seen := map[string]bool{}
	var deps []*pulumirpc.PackageDependency
	for _, m := range manifests {
		data, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		var pkg struct {
			Name    string         `json:"name"`
			Version string         `json:"version"`
			Pulumi  *pulumiPackage `json:"pulumi"`
		}
		if json.Unmarshal(data, &pkg) != nil || pkg.Pulumi == nil || !pkg.Pulumi.Resource {
			continue
		}
		name := pkg.Pulumi.Name
		if name == "" {
			name = strings.TrimPrefix(pkg.Name, "@pulumi/")
		}
		v := pkg.Pulumi.Version
		if v == "" {
			v = pkg.Version
		}
		if !strings.HasPrefix(v, "v") {
			v = "v" + v
		}
		key := name + "@" + v
		if seen[key] {
			continue
		}
		seen[key] = true
		deps = append(deps, &pulumirpc.PackageDependency{
			Kind: "resource", Name: name, Version: v, Server: pkg.Pulumi.Server,
		})
	}
	sort.Slice(deps, func(i, j int) bool { return deps[i].Name < deps[j].Name })
	return deps, nil
}

// findUp returns dir/name or the nearest ancestor's, if it exists.
func findUp(dir, name string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no %s in %s or above it (run npm ci first)", name, dir)
		}
	}
}
