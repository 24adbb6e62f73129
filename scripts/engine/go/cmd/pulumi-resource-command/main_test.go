package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

const testURN = "urn:pulumi:dev::consul::command:remote:Command::node-1"

func props(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := plugin.MarshalProperties(resource.NewPropertyMapFromMap(m), kept)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDiffFollowsTheProviderRules(t *testing.T) {
	p := &provider{cancels: map[int]context.CancelFunc{}}
	base := map[string]any{
		"connection": map[string]any{"host": "10.0.0.1", "port": 22.0},
		"create":     "apply", "delete": "remove", "stdin": "bundle-1",
		"triggers": []any{"10.0.0.1:22"},
	}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for key, val := range base {
			m[key] = val
		}
		m[k] = v
		return m
	}
	cases := []struct {
		name     string
		news     map[string]any
		changes  pulumirpc.DiffResponse_DiffChanges
		replaces []string
	}{
		{"nothing changed: nothing runs", base, pulumirpc.DiffResponse_DIFF_NONE, nil},
		{"stdin changed: update", with("stdin", "bundle-2"), pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"connection changed: update, not replace", with("connection", map[string]any{"host": "10.0.0.1", "port": 2222.0}), pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"triggers changed: replace", with("triggers", []any{"10.0.0.9:22"}), pulumirpc.DiffResponse_DIFF_SOME, []string{"triggers"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := p.Diff(context.Background(), &pulumirpc.DiffRequest{
				Urn: testURN, OldInputs: props(t, base), Olds: props(t, base), News: props(t, c.news),
			})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetChanges() != c.changes || fmt.Sprint(resp.GetReplaces()) != fmt.Sprint(c.replaces) {
				t.Fatalf("got %v replaces %v, want %v replaces %v", resp.GetChanges(), resp.GetReplaces(), c.changes, c.replaces)
			}
		})
	}
	// A secret that did not change is no change.
	secretOld := resource.NewPropertyMapFromMap(base)
	secretOld["stdin"] = resource.MakeSecret(secretOld["stdin"])
	s, err := plugin.MarshalProperties(secretOld, kept)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.Diff(context.Background(), &pulumirpc.DiffRequest{Urn: testURN, OldInputs: s, Olds: s, News: s})
	if err != nil || resp.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("unchanged secret stdin: %v %v", resp.GetChanges(), err)
	}
}

func TestOtherResourceTypesAreRefused(t *testing.T) {
	p := &provider{cancels: map[int]context.CancelFunc{}}
	_, err := p.Check(context.Background(), &pulumirpc.CheckRequest{Urn: "urn:pulumi:dev::consul::command:local:Command::x"})
	if err == nil || !strings.Contains(err.Error(), "command:local:Command") {
		t.Fatalf("a local command was not refused by name: %v", err)
	}
}

// testServer is an SSH server on loopback that runs each exec request with sh, stdin and output
// wired through, and reports the exit status, as sshd does.
type testServer struct {
	addr    string
	hostKey ssh.PublicKey
	execs   chan string
}

func startServer(t *testing.T, authorized ssh.PublicKey) *testServer {
	t.Helper()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	config := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) == string(authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	config.AddHostKey(hostSigner)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := &testServer{addr: l.Addr().String(), hostKey: hostSigner.PublicKey(), execs: make(chan string, 16)}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(conn, config)
		}
	}()
	return s
}

func (s *testServer) serve(conn net.Conn, config *ssh.ServerConfig) {
	_, chans, reqs, err := ssh.NewServerConn(conn, config)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		ch, requests, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer ch.Close()
			for req := range requests {
				if req.Type != "exec" {
					_ = req.Reply(false, nil)
					continue
				}
				var payload struct{ Command string }
				_ = ssh.Unmarshal(req.Payload, &payload)
				_ = req.Reply(true, nil)
				s.execs <- payload.Command
				cmd := exec.Command("sh", "-c", payload.Command)
				cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
				code := 0
				if err := cmd.Run(); err != nil {
					code = 255
					var exit *exec.ExitError
					if errors.As(err, &exit) {
						code = exit.ExitCode()
					}
				}
				_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
				return
			}
		}()
	}
}

func clientKey(t *testing.T) (string, ssh.PublicKey) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block)), signer.PublicKey()
}

func inputs(t *testing.T, s *testServer, key string, extra map[string]any) resource.PropertyMap {
	t.Helper()
	host, port, _ := net.SplitHostPort(s.addr)
	var portNumber float64
	fmt.Sscan(port, &portNumber)
	m := map[string]any{
		"connection": map[string]any{
			"host": host, "port": portNumber, "user": "root", "privateKey": key,
			"dialErrorLimit": 2.0, "perDialTimeout": 5.0,
		},
	}
	for k, v := range extra {
		m[k] = v
	}
	pm := resource.NewPropertyMapFromMap(m)
	pm["connection"].ObjectValue()["privateKey"] = resource.MakeSecret(resource.NewStringProperty(key))
	// As the provider reads its inputs: secrets unwrapped.
	s2, err := plugin.MarshalProperties(pm, kept)
	if err != nil {
		t.Fatal(err)
	}
	out, err := plugin.UnmarshalProperties(s2, plain)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRunOverSSH(t *testing.T) {
	key, pub := clientKey(t)
	server := startServer(t, pub)
	p := &provider{cancels: map[int]context.CancelFunc{}}
	ctx := context.Background()

	t.Run("stdin reaches the command, stdout and stderr come back, one session", func(t *testing.T) {
		in := inputs(t, server, key, map[string]any{"create": "read line; echo got $line; echo warn >&2", "stdin": "hello\n"})
		out, err := p.run(ctx, testURN, in, "create", nil)
		if err != nil {
			t.Fatal(err)
		}
		if out.stdout != "got hello" || out.stderr != "warn" {
			t.Fatalf("stdout %q stderr %q", out.stdout, out.stderr)
		}
		if got := <-server.execs; got != "read line; echo got $line; echo warn >&2" {
			t.Fatalf("ran %q", got)
		}
	})

	t.Run("a failing command fails with its exit status and combined output", func(t *testing.T) {
		in := inputs(t, server, key, map[string]any{"create": "echo step one; echo broke >&2; exit 3"})
		_, err := p.run(ctx, testURN, in, "create", nil)
		<-server.execs
		if err == nil || !strings.Contains(err.Error(), "status 3") || !strings.Contains(err.Error(), "broke") {
			t.Fatalf("error %v", err)
		}
	})

	t.Run("no command for the step: nothing runs", func(t *testing.T) {
		in := inputs(t, server, key, map[string]any{"create": "true"})
		if _, err := p.run(ctx, testURN, in, "delete", nil); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-server.execs:
			t.Fatalf("ran %q", got)
		default:
		}
	})

	t.Run("a pinned host key that does not match is refused before anything runs", func(t *testing.T) {
		_, otherPub := clientKey(t)
		in := inputs(t, server, key, map[string]any{"create": "true"})
		in["connection"].ObjectValue()["hostKey"] = resource.NewStringProperty(string(ssh.MarshalAuthorizedKey(otherPub)))
		_, err := p.run(ctx, testURN, in, "create", nil)
		if err == nil || !strings.Contains(err.Error(), "2 failed attempts") {
			t.Fatalf("error %v", err)
		}
		in["connection"].ObjectValue()["hostKey"] = resource.NewStringProperty(string(ssh.MarshalAuthorizedKey(server.hostKey)))
		if _, err := p.run(ctx, testURN, in, "create", nil); err != nil {
			t.Fatalf("the right host key was refused: %v", err)
		}
		<-server.execs
	})

	t.Run("a key the host does not accept fails after dialErrorLimit dials, naming no key", func(t *testing.T) {
		other, _ := clientKey(t)
		in := inputs(t, server, other, map[string]any{"create": "true"})
		_, err := p.run(ctx, testURN, in, "create", nil)
		if err == nil || strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Fatalf("error %v", err)
		}
	})
}
