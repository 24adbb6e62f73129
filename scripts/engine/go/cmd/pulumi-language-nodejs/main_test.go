package main

import (
	"os"
	"path/filepath"
	"testing"
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
