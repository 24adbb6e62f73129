package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRequiredPackages(t *testing.T) {
	root := t.TempDir()
	nm := filepath.Join(root, "node_modules")
	writeFile(t, filepath.Join(nm, "@pulumi", "tls", "package.json"),
		`{"name":"@pulumi/tls","version":"5.6.1","pulumi":{"resource":true,"name":"tls","version":"5.6.1"}}`)
	writeFile(t, filepath.Join(nm, "@pulumi", "random", "package.json"),
		`{"name":"@pulumi/random","version":"4.21.2","pulumi":{"resource":true}}`)
	writeFile(t, filepath.Join(nm, "@pulumi", "pulumi", "package.json"),
		`{"name":"@pulumi/pulumi","version":"3.248.0","pulumi":{"comment":"not a resource plugin"}}`)
	writeFile(t, filepath.Join(nm, "left-pad", "package.json"), `{"name":"left-pad","version":"1.0.0"}`)
	program := filepath.Join(root, "src")
	if err := os.MkdirAll(program, 0o755); err != nil {
		t.Fatal(err)
	}

	deps, err := requiredPackages(program) // node_modules is found above the program directory
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range deps {
		if d.Kind != "resource" {
			t.Errorf("%s: kind %q", d.Name, d.Kind)
		}
		got[d.Name] = d.Version
	}
	want := map[string]string{"random": "v4.21.2", "tls": "v5.6.1"}
	if len(got) != len(want) || got["random"] != want["random"] || got["tls"] != want["tls"] {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestRequiredPackagesWithoutNodeModules(t *testing.T) {
	if _, err := requiredPackages(t.TempDir()); err == nil {
		t.Fatal("expected an error naming npm ci")
	}
}

func TestEngineAddressFromArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"127.0.0.1:1234"}, "127.0.0.1:1234"},
		{[]string{"--logtostderr", "-v=9", "127.0.0.1:1234"}, "127.0.0.1:1234"},
		{[]string{"--tracing", "http://t", "127.0.0.1:1234"}, "127.0.0.1:1234"},
		{[]string{"--tracing", "http://t"}, ""},
		{nil, ""},
	} {
		if got := engineAddressFromArgs(tc.args); got != tc.want {
			t.Errorf("engineAddressFromArgs(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// Upstream's documented runtime options (pulumi.com/docs/iac/concepts/projects/project-file,
// nodejs runtime options): typescript (default true) and tsconfig (a path, pulumi/pulumi#8452),
// handed to @pulumi/pulumi/cmd/run as PULUMI_NODEJS_TYPESCRIPT and PULUMI_NODEJS_TSCONFIG_PATH.
func TestTypescriptEnv(t *testing.T) {
	info := func(options map[string]any) *pulumirpc.ProgramInfo {
		if options == nil {
			return &pulumirpc.ProgramInfo{}
		}
		s, err := structpb.NewStruct(options)
		if err != nil {
			t.Fatal(err)
		}
		return &pulumirpc.ProgramInfo{Options: s}
	}
	for _, tc := range []struct {
		name    string
		options map[string]any
		want    []string
	}{
		{"no options", nil, []string{"PULUMI_NODEJS_TYPESCRIPT=true"}},
		{"typescript false", map[string]any{"typescript": false}, []string{"PULUMI_NODEJS_TYPESCRIPT=false"}},
		{
			"this project's Pulumi.yaml",
			map[string]any{"typescript": true, "tsconfig": "tsconfig.pulumi.json"},
			[]string{"PULUMI_NODEJS_TYPESCRIPT=true", "PULUMI_NODEJS_TSCONFIG_PATH=tsconfig.pulumi.json"},
		},
		{"empty tsconfig", map[string]any{"tsconfig": ""}, []string{"PULUMI_NODEJS_TYPESCRIPT=true"}},
		{"nil info", nil, []string{"PULUMI_NODEJS_TYPESCRIPT=true"}},
	} {
		var got []string
		if tc.name == "nil info" {
			got = typescriptEnv(nil)
		} else {
			got = typescriptEnv(info(tc.options))
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: typescriptEnv = %q, want %q", tc.name, got, tc.want)
		}
	}
}
