package main

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

func programInfo(t *testing.T, dir string, options map[string]any) *pulumirpc.ProgramInfo {
	t.Helper()
	info := &pulumirpc.ProgramInfo{RootDirectory: dir, ProgramDirectory: dir, EntryPoint: "."}
	if options != nil {
		s, err := structpb.NewStruct(options)
		if err != nil {
			t.Fatal(err)
		}
		info.Options = s
	}
	return info
}

// The engine starts a policy pack as RunPlugin(kind analyzer, args [engine address]) with the pack's
// directory as the program directory (sdk/go/common/resource/plugin: NewPolicyAnalyzer, newPlugin).
func TestPlanPluginPolicyPack(t *testing.T) {
	req := &pulumirpc.RunPluginRequest{
		Kind: "analyzer", Args: []string{"127.0.0.1:5000"}, Env: []string{"HOME=/h"}, Pwd: "/project",
		Info: programInfo(t, "/project/policy", map[string]any{"nodeargs": `--max-old-space-size=512 --title "a b"`}),
	}
	got, err := planPlugin(req, "ignored for policy packs")
	if err != nil {
		t.Fatal(err)
	}
	want := pluginLaunch{
		module: "@pulumi/pulumi/cmd/run-policy-pack",
		args:   []string{"--max-old-space-size=512", "--title", "a b", "127.0.0.1:5000", "/project/policy"},
		dir:    "/project/policy",
		env:    []string{"HOME=/h", "PULUMI_NODEJS_TYPESCRIPT=true"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("planPlugin = %+v, want %+v", got, want)
	}
}

func TestPlanPluginOtherKinds(t *testing.T) {
	req := &pulumirpc.RunPluginRequest{
		Kind: "resource", Args: []string{"--flag"}, Pwd: "/project",
		Info: programInfo(t, "/plugins/p", map[string]any{"typescript": false, "tsconfig": "tsconfig.build.json"}),
	}
	got, err := planPlugin(req, "")
	if err != nil {
		t.Fatal(err)
	}
	want := pluginLaunch{
		module: "@pulumi/pulumi/cmd/run-plugin",
		args:   []string{"/plugins/p", "--flag"},
		dir:    "/project",
		env:    []string{"PULUMI_NODEJS_TSCONFIG_PATH=tsconfig.build.json"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("planPlugin = %+v, want %+v", got, want)
	}
	if got, _ := planPlugin(req, "./my-runner"); got.module != "./my-runner" {
		t.Errorf("PULUMI_LANGUAGE_NODEJS_RUN_PATH: module %q", got.module)
	}
}

func TestPlanPluginRejectsWrongOptionTypes(t *testing.T) {
	for option, want := range map[string]string{
		"typescript": "typescript option must be a boolean",
		"tsconfig":   "tsconfigpath option must be a string",
		"nodeargs":   "nodeargs option must be a string",
	} {
		value := any("yes")
		if option != "typescript" {
			value = 1.0
		}
		req := &pulumirpc.RunPluginRequest{Kind: "analyzer", Info: programInfo(t, "/p", map[string]any{option: value})}
		if _, err := planPlugin(req, ""); err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %q", option, err, want)
		}
	}
}

func TestStackEnv(t *testing.T) {
	env, err := stackEnv(&pulumirpc.AnalyzerStackConfigureRequest{
		Project: "consul", Stack: "prod", DryRun: true, Config: map[string]string{"consul:topology": "vm"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PULUMI_NODEJS_PROJECT=consul", "PULUMI_NODEJS_STACK=prod", "PULUMI_NODEJS_DRY_RUN=true",
		`PULUMI_CONFIG={"consul:topology":"vm"}`,
	}
	if !reflect.DeepEqual(env, want) {
		t.Fatalf("stackEnv = %q, want %q", env, want)
	}
	if env, err := stackEnv(nil); err != nil || env != nil {
		t.Fatalf("stackEnv(nil) = %q, %v", env, err)
	}
}

func TestLocateModuleNotInstalled(t *testing.T) {
	dir := t.TempDir()
	_, err := locateModule("node", "@pulumi/pulumi/cmd/run-policy-pack", dir)
	if err == nil || !strings.Contains(err.Error(), "Have you run npm install in "+dir+"?") {
		t.Fatalf("error %v, want upstream's npm install message", err)
	}
}

// The stream writers are used from two goroutines (stdout and stderr copies): Send is serialised.
func TestLockedSenderSerialises(t *testing.T) {
	fake := &countingServer{}
	s := &lockedSender{LanguageRuntime_RunPluginServer: fake}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Send(&pulumirpc.RunPluginResponse{})
		}()
	}
	wg.Wait()
	if fake.max != 1 || fake.sent != 50 {
		t.Fatalf("%d sends, at most %d at once; want 50, 1", fake.sent, fake.max)
	}
}

type countingServer struct {
	pulumirpc.LanguageRuntime_RunPluginServer
	mu                  sync.Mutex
	inFlight, max, sent int
}

func (c *countingServer) Send(*pulumirpc.RunPluginResponse) error {
	c.mu.Lock()
	c.inFlight++
	if c.inFlight > c.max {
		c.max = c.inFlight
	}
	c.mu.Unlock()
	time.Sleep(time.Millisecond)
	c.mu.Lock()
	c.inFlight--
	c.sent++
	c.mu.Unlock()
	return nil
}
