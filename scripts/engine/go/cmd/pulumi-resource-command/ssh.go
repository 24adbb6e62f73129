package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// connection is `connection` (and `connection.proxy`) of the npm SDK's ConnectionArgs.
type connection struct {
	Host               string      `json:"host"`
	Port               float64     `json:"port"`
	User               string      `json:"user"`
	Password           string      `json:"password"`
	PrivateKey         string      `json:"privateKey"`
	PrivateKeyPassword string      `json:"privateKeyPassword"`
	AgentSocketPath    string      `json:"agentSocketPath"`
	HostKey            string      `json:"hostKey"`
	DialErrorLimit     *int        `json:"dialErrorLimit"`
	PerDialTimeout     *int        `json:"perDialTimeout"`
	Proxy              *connection `json:"proxy"`
}

// Upstream's defaults (remote/connection.go): the npm SDK sets the same ones before sending.
const (
	defaultPort           = 22
	defaultUser           = "root"
	defaultDialErrorLimit = 10
	defaultPerDialTimeout = 15
)

func (c *connection) applyDefaults() {
	if c.Port == 0 {
		c.Port = defaultPort
	}
	if c.User == "" {
		c.User = defaultUser
	}
	if c.DialErrorLimit == nil {
		n := defaultDialErrorLimit
		c.DialErrorLimit = &n
	}
	if c.PerDialTimeout == nil {
		n := defaultPerDialTimeout
		c.PerDialTimeout = &n
	}
	if c.Proxy != nil {
		c.Proxy.applyDefaults()
	}
}

func (c *connection) address() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port)))
}

func (c *connection) clientConfig() (*ssh.ClientConfig, error) {
	config := &ssh.ClientConfig{
		User:            c.User,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // as upstream when no hostKey is pinned
		Timeout:         time.Duration(*c.PerDialTimeout) * time.Second,
	}
	if c.HostKey != "" {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(c.HostKey))
		if err != nil {
			return nil, fmt.Errorf("connection.hostKey of %s: %w", c.Host, err)
		}
		config.HostKeyCallback = ssh.FixedHostKey(key)
		config.HostKeyAlgorithms = []string{key.Type()}
	}
	if c.PrivateKey != "" {
		var signer ssh.Signer
		var err error
		if c.PrivateKeyPassword != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(c.PrivateKey), []byte(c.PrivateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(c.PrivateKey))
		}
		if err != nil {
			// The error names the host, never the key.
			return nil, fmt.Errorf("connection.privateKey for %s cannot be parsed: %w", c.Host, err)
		}
		config.Auth = append(config.Auth, ssh.PublicKeys(signer))
	}
	if c.Password != "" {
		config.Auth = append(config.Auth, ssh.Password(c.Password))
	}
	if c.AgentSocketPath != "" {
		return nil, errors.New("connection.agentSocketPath is not supported by this build of the command provider")
	}
	return config, nil
}

// dial connects to the host (through the proxy if there is one), retrying like upstream: up to
// dialErrorLimit failed dials (-1: no limit), with a growing pause between them.
func (c *connection) dial(ctx context.Context) (*ssh.Client, error) {
	config, err := c.clientConfig()
	if err != nil {
		return nil, err
	}
	var proxyConfig *ssh.ClientConfig
	if c.Proxy != nil {
		if proxyConfig, err = c.Proxy.clientConfig(); err != nil {
			return nil, err
		}
	}
	pause := 500 * time.Millisecond
	for dials := 1; ; dials++ {
		client, err := c.dialOnce(config, proxyConfig)
		if err == nil {
			return client, nil
		}
		if limit := *c.DialErrorLimit; limit > -1 && dials >= limit {
			return nil, fmt.Errorf("dialing %s: %d failed attempts, the last: %w", c.address(), dials, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
		if pause < 5*time.Second {
			pause *= 2
		}
	}
}

func (c *connection) dialOnce(config, proxyConfig *ssh.ClientConfig) (*ssh.Client, error) {
	if c.Proxy == nil {
		return ssh.Dial("tcp", c.address(), config)
	}
	proxy, err := ssh.Dial("tcp", c.Proxy.address(), proxyConfig)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", c.Proxy.address(), err)
	}
	conn, err := proxy.Dial("tcp", c.address())
	if err != nil {
		proxy.Close()
		return nil, fmt.Errorf("through proxy %s: %w", c.Proxy.address(), err)
	}
	clientConn, chans, reqs, err := ssh.NewClientConn(conn, c.address(), config)
	if err != nil {
		proxy.Close()
		return nil, err
	}
	return ssh.NewClient(clientConn, chans, reqs), nil
}

// logModes: which streams go to the engine log (upstream's `logging`, default stdoutAndStderr).
var logModes = map[string]struct{ stdout, stderr bool }{
	"stdout":          {true, false},
	"stderr":          {false, true},
	"stdoutAndStderr": {true, true},
	"none":            {false, false},
}

func stringProp(m resource.PropertyMap, key resource.PropertyKey) (string, bool) {
	v, ok := m[key]
	if !ok || !v.IsString() {
		return "", false
	}
	return v.StringValue(), true
}

func decodeConnection(inputs resource.PropertyMap) (*connection, error) {
	v, ok := inputs["connection"]
	if !ok || !v.IsObject() {
		return nil, status.Error(codes.InvalidArgument, "connection is missing")
	}
	raw, err := json.Marshal(v.ObjectValue().Mappable())
	if err != nil {
		return nil, err
	}
	var c connection
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("connection: %w", err)
	}
	c.applyDefaults()
	return &c, nil
}

type output struct{ stdout, stderr string }

// lineLogger forwards complete lines to the engine log as they arrive.
type lineLogger struct {
	w    *io.PipeWriter
	done chan struct{}
}

func (p *provider) newLineLogger(ctx context.Context, urn resource.URN) *lineLogger {
	r, w := io.Pipe()
	l := &lineLogger{w: w, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		scanner := bufio.NewScanner(r)
		scanner.Buffer(make([]byte, 64*1024), 1024*1024)
		for scanner.Scan() {
			p.log(ctx, urn, scanner.Text())
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	return l
}

func (l *lineLogger) close() {
	_ = l.w.Close()
	<-l.done
}

// lockedBuffer is the combined output, written by both streams.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// run runs the command in inputs[field] over one SSH connection and session. `previous` is the
// state whose output goes into the environment (update and delete), or nil.
func (p *provider) run(
	ctx context.Context, urn resource.URN, inputs resource.PropertyMap, field string, previous resource.PropertyMap,
) (output, error) {
	cmd, ok := stringProp(inputs, resource.PropertyKey(field))
	if !ok || cmd == "" {
		return output{}, nil // upstream: no command for this step, nothing runs
	}
	conn, err := decodeConnection(inputs)
	if err != nil {
		return output{}, err
	}
	ctx, done := p.withCancel(ctx)
	defer done()

	client, err := conn.dial(ctx)
	if err != nil {
		return output{}, err
	}
	defer client.Close()
	go func() {
		<-ctx.Done() // cancelled, or run returned: either way the connection goes
		client.Close()
	}()
	session, err := client.NewSession()
	if err != nil {
		return output{}, fmt.Errorf("opening a session on %s: %w", conn.address(), err)
	}
	defer session.Close()

	if env, ok := inputs["environment"]; ok && env.IsObject() {
		for k, v := range env.ObjectValue() {
			if v.IsString() {
				_ = session.Setenv(string(k), v.StringValue()) // sshd's AcceptEnv decides, as upstream
			}
		}
	}
	if add, ok := inputs["addPreviousOutputInEnv"]; previous != nil && (!ok || !add.IsBool() || add.BoolValue()) {
		if s, _ := stringProp(previous, "stdout"); s != "" {
			_ = session.Setenv("PULUMI_COMMAND_STDOUT", s)
		}
		if s, _ := stringProp(previous, "stderr"); s != "" {
			_ = session.Setenv("PULUMI_COMMAND_STDERR", s)
		}
	}
	if stdin, _ := stringProp(inputs, "stdin"); stdin != "" {
		session.Stdin = strings.NewReader(stdin)
	}

	mode := logModes["stdoutAndStderr"]
	if l, ok := stringProp(inputs, "logging"); ok {
		mode = logModes[l]
	}
	var stdout, stderr bytes.Buffer
	var combined lockedBuffer
	logger := p.newLineLogger(ctx, urn)
	stdoutWriters := []io.Writer{&stdout, &combined}
	stderrWriters := []io.Writer{&stderr, &combined}
	if mode.stdout {
		stdoutWriters = append(stdoutWriters, logger.w)
	}
	if mode.stderr {
		stderrWriters = append(stderrWriters, logger.w)
	}
	session.Stdout = io.MultiWriter(stdoutWriters...)
	session.Stderr = io.MultiWriter(stderrWriters...)

	err = session.Run(cmd)
	logger.close()
	if err != nil {
		if ctx.Err() != nil {
			return output{}, fmt.Errorf("%s on %s cancelled: %w", field, conn.address(), ctx.Err())
		}
		// Upstream's error: the exit status, the command and its combined output.
		return output{}, fmt.Errorf("%w: running %q:\n%s", err, cmd, combined.buf.String())
	}
	return output{
		stdout: strings.TrimSuffix(stdout.String(), "\n"),
		stderr: strings.TrimSuffix(stderr.String(), "\n"),
	}, nil
}
