package main

// RunPlugin end to end: a real gRPC server with the host, a real node and the repository's
// @pulumi/pulumi and @pulumi/policy (node_modules at the root: run `npm ci` first).

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// runPluginStream collects what RunPlugin streams back; the first stdout line of a policy pack is
// the port the engine dials (the proxy's).
type runPluginStream struct {
	mu             sync.Mutex
	stdout, stderr strings.Builder
	firstLine      chan string
	done           chan error
}

func startRunPlugin(t *testing.T, ctx context.Context, req *pulumirpc.RunPluginRequest) *runPluginStream {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pulumirpc.RegisterLanguageRuntimeServer(srv, &host{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	stream, err := pulumirpc.NewLanguageRuntimeClient(conn).RunPlugin(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	s := &runPluginStream{firstLine: make(chan string, 1), done: make(chan error, 1)}
	go func() {
		sent := false
		for {
			msg, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				s.done <- err
				return
			}
			s.mu.Lock()
			s.stdout.Write(msg.GetStdout())
			s.stderr.Write(msg.GetStderr())
			if line, _, found := strings.Cut(s.stdout.String(), "\n"); found && !sent {
				s.firstLine <- line
				sent = true
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *runPluginStream) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "stdout:\n" + s.stdout.String() + "\nstderr:\n" + s.stderr.String()
}

// The whole path the engine takes for `pulumi preview --policy-pack DIR`, against a real TypeScript
// pack run by the repository's @pulumi/pulumi and @pulumi/policy (node_modules at the root: run
// `npm ci` first): the proxy's port on stdout, Handshake, ConfigureStack, GetAnalyzerInfo, Analyze.
// The pack's violation message carries the stack, project and config the host put in its environment.
func TestRunPluginPolicyPack(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("testdata", "policy-pack"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := startRunPlugin(t, ctx, &pulumirpc.RunPluginRequest{
		Kind: "analyzer", Args: []string{"127.0.0.1:1"}, Env: os.Environ(), Pwd: t.TempDir(),
		Info: programInfo(t, dir, nil),
	})

	var port int
	select {
	case line := <-s.firstLine:
		if port, err = strconv.Atoi(strings.TrimSpace(line)); err != nil {
			t.Fatalf("first stdout line %q is not a port\n%s", line, s.output())
		}
	case err := <-s.done:
		t.Fatalf("RunPlugin ended before printing a port: %v\n%s", err, s.output())
	case <-ctx.Done():
		t.Fatalf("no port within the timeout\n%s", s.output())
	}
	conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	analyzer := pulumirpc.NewAnalyzerClient(conn)
	if _, err := analyzer.Handshake(ctx, &pulumirpc.AnalyzerHandshakeRequest{EngineAddress: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := analyzer.ConfigureStack(ctx, &pulumirpc.AnalyzerStackConfigureRequest{
		Project: "consul", Stack: "prod", DryRun: true, Config: map[string]string{"test:greeting": "hello"},
	}); err != nil {
		t.Fatal(err)
	}
	info, err := analyzer.GetAnalyzerInfo(ctx, &emptypb.Empty{})
	if err != nil {
		t.Fatalf("GetAnalyzerInfo: %v\n%s", err, s.output())
	}
	if info.GetName() != "langhost-test-pack" || len(info.GetPolicies()) != 1 ||
		info.GetPolicies()[0].GetName() != "reports-context" {
		t.Fatalf("GetAnalyzerInfo = %v", info)
	}
	props, err := structpb.NewStruct(map[string]any{"length": 32.0})
	if err != nil {
		t.Fatal(err)
	}
	res, err := analyzer.Analyze(ctx, &pulumirpc.AnalyzeRequest{
		Type: "random:index/randomPassword:RandomPassword", Name: "pw", Properties: props,
		Urn:     "urn:pulumi:prod::consul::random:index/randomPassword:RandomPassword::pw",
		Options: &pulumirpc.AnalyzerResourceOptions{}, // the engine always sends them; @pulumi/policy requires them
	})
	if err != nil {
		t.Fatalf("Analyze: %v\n%s", err, s.output())
	}
	want := "stack=prod project=consul greeting=hello type=random:index/randomPassword:RandomPassword"
	if len(res.GetDiagnostics()) != 1 || res.GetDiagnostics()[0].GetPolicyName() != "reports-context" ||
		!strings.Contains(res.GetDiagnostics()[0].GetMessage(), want) {
		t.Fatalf("Analyze diagnostics %v, want one from reports-context containing %q", res.GetDiagnostics(), want)
	}

	// The engine closes a plugin by cancelling the RunPlugin call: the stream ends.
	cancel()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("RunPlugin's stream did not end after the call was cancelled")
	}
}

// A pack that fails to start: its error comes back on the stream's stderr, and RunPlugin fails as
// upstream's does (the proxy never reads the pack's port), so the engine reports the pack as not started.
func TestRunPluginPolicyPackFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "broken")
	writeFile(t, filepath.Join(dir, "PulumiPolicy.yaml"), "runtime: nodejs\n")
	writeFile(t, filepath.Join(dir, "package.json"), `{"name":"broken","main":"index.js"}`)
	writeFile(t, filepath.Join(dir, "index.js"), `throw new Error("the pack refuses to start");`)
	// The broken pack resolves @pulumi/pulumi from this repository's node_modules.
	root, err := filepath.Abs(filepath.Join("..", "..", "..", "..", "..", "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(root, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := startRunPlugin(t, ctx, &pulumirpc.RunPluginRequest{
		Kind: "analyzer", Args: []string{"127.0.0.1:1"}, Env: os.Environ(), Info: programInfo(t, dir, nil),
	})
	line := <-s.firstLine
	port, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("first stdout line %q is not a port", line)
	}
	conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := pulumirpc.NewAnalyzerClient(conn).ConfigureStack(ctx, &pulumirpc.AnalyzerStackConfigureRequest{Stack: "prod"}); err != nil {
		t.Fatal(err)
	}
	err = <-s.done
	if err == nil || !strings.Contains(err.Error(), "could not attach policy pack proxy: could not read policy pack port") {
		t.Fatalf("RunPlugin error %v, want the proxy's\n%s", err, s.output())
	}
	if !strings.Contains(s.output(), "the pack refuses to start") {
		t.Fatalf("the pack's error is not on the stream:\n%s", s.output())
	}
}
