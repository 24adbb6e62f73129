// Command pulumi-resource-command is this project's build of the one resource of the Pulumi command
// provider that the program uses, `command:remote:Command`, for the engine built by
// scripts/engine/build.sh. The Go module proxy here does not serve github.com/pulumi/pulumi-command,
// so the upstream plugin cannot be built; this one is written against the same gRPC protocol
// (sdk/v3/proto/go) and follows the upstream provider's documented behaviour at v1.2.1
// (provider/pkg/provider/remote and common/inputs.go upstream):
//
//   - Check keeps the inputs as they are (the npm SDK already applied the connection defaults);
//   - Diff compares the old inputs with the new ones; a change of `triggers` is a replacement, any
//     other change an update; nothing changed means nothing runs;
//   - Create runs `create`; Update runs `update`, else `create`; Delete runs `delete`; each is one
//     SSH connection with one session, stdin from `stdin`, and the output logged per `logging`;
//   - `stdout` and `stderr` are the outputs; a failed command fails the step with its combined
//     output and keeps no partial state;
//   - with `addPreviousOutputInEnv` (default true), update and delete get the previous output in
//     PULUMI_COMMAND_STDOUT/PULUMI_COMMAND_STDERR.
//
// Everything else of the upstream provider (local commands, copy resources, invokes) is refused by
// name, so a program that starts using it fails clearly instead of silently.
package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"consulpulumi/engine/internal/serve"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// version is set at build time (-ldflags "-X main.version=..."), as upstream does.
var version = "0.0.0-dev"

const commandType = "command:remote:Command"

type provider struct {
	pulumirpc.UnimplementedResourceProviderServer
	engine pulumirpc.EngineClient

	mu      sync.Mutex
	cancels map[int]context.CancelFunc
	next    int
}

// withCancel registers ctx so that Cancel (the engine shutting down) ends its SSH session.
func (p *provider) withCancel(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	p.mu.Lock()
	id := p.next
	p.next++
	p.cancels[id] = cancel
	p.mu.Unlock()
	return ctx, func() {
		p.mu.Lock()
		delete(p.cancels, id)
		p.mu.Unlock()
		cancel()
	}
}

func unsupported(what string) error {
	return status.Errorf(codes.Unimplemented,
		"%s is not supported by consul-pulumi's command provider v%s (only %s is: scripts/engine/go/cmd/pulumi-resource-command)",
		what, version, commandType)
}

func requireType(urn string) error {
	if t := resource.URN(urn).Type(); string(t) != commandType {
		return unsupported("resource type " + string(t))
	}
	return nil
}

// Property maps: `kept` keeps secrets and unknowns as the engine sent them (what goes back into the
// state); `plain` unwraps secrets (what the provider reads and compares).
var (
	kept  = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, SkipNulls: true}
	plain = plugin.MarshalOptions{KeepUnknowns: true, SkipNulls: true}
)

func unmarshal(s *structpb.Struct, opts plugin.MarshalOptions) (resource.PropertyMap, error) {
	m, err := plugin.UnmarshalProperties(s, opts)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "decoding properties: %v", err)
	}
	return m, nil
}

func marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, kept)
}

func (p *provider) Handshake(
	context.Context, *pulumirpc.ProviderHandshakeRequest,
) (*pulumirpc.ProviderHandshakeResponse, error) {
	return &pulumirpc.ProviderHandshakeResponse{AcceptSecrets: true, AcceptResources: true}, nil
}

func (p *provider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (p *provider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: fmt.Sprintf(`{"name":"command","version":%q}`, version)}, nil
}

func (p *provider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *provider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (p *provider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true, AcceptResources: true}, nil
}

func (p *provider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if err := requireType(req.GetUrn()); err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews(), plain)
	if err != nil {
		return nil, err
	}
	var failures []*pulumirpc.CheckFailure
	conn, ok := news["connection"]
	switch {
	case !ok || conn.IsNull():
		failures = append(failures, &pulumirpc.CheckFailure{Property: "connection", Reason: "missing required property 'connection'"})
	case conn.IsObject():
		if h, ok := conn.ObjectValue()["host"]; !ok || h.IsNull() {
			failures = append(failures, &pulumirpc.CheckFailure{Property: "connection.host", Reason: "missing required property 'connection.host'"})
		}
	}
	if l, ok := news["logging"]; ok && l.IsString() {
		if _, known := logModes[l.StringValue()]; !known {
			failures = append(failures, &pulumirpc.CheckFailure{Property: "logging",
				Reason: fmt.Sprintf("logging must be one of stdout, stderr, stdoutAndStderr, none, not %q", l.StringValue())})
		}
	}
	return &pulumirpc.CheckResponse{Inputs: req.GetNews(), Failures: failures}, nil
}

// outputKeys are what the provider adds to the inputs in the state.
var outputKeys = []resource.PropertyKey{"stdout", "stderr"}

// oldInputs are the inputs of the last deploy: the engine sends them, and older states that lack
// them are the outputs without the output keys.
func oldInputs(req *pulumirpc.DiffRequest) (resource.PropertyMap, error) {
	if req.GetOldInputs() != nil && len(req.GetOldInputs().GetFields()) > 0 {
		return unmarshal(req.GetOldInputs(), plain)
	}
	olds, err := unmarshal(req.GetOlds(), plain)
	if err != nil {
		return nil, err
	}
	for _, k := range outputKeys {
		delete(olds, k)
	}
	return olds, nil
}

func (p *provider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	if err := requireType(req.GetUrn()); err != nil {
		return nil, err
	}
	olds, err := oldInputs(req)
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews(), plain)
	if err != nil {
		return nil, err
	}
	keys := map[resource.PropertyKey]bool{}
	for k := range olds {
		keys[k] = true
	}
	for k := range news {
		keys[k] = true
	}
	var changed, replaces []string
	detailed := map[string]*pulumirpc.PropertyDiff{}
	for k := range keys {
		o, inOld := olds[k]
		n, inNew := news[k]
		if inOld && inNew && !n.ContainsUnknowns() && o.DeepEquals(n) {
			continue
		}
		kind := pulumirpc.PropertyDiff_UPDATE
		switch {
		case !inOld:
			kind = pulumirpc.PropertyDiff_ADD
		case !inNew:
			kind = pulumirpc.PropertyDiff_DELETE
		}
		if k == "triggers" {
			kind += pulumirpc.PropertyDiff_ADD_REPLACE - pulumirpc.PropertyDiff_ADD
			replaces = append(replaces, string(k))
		}
		changed = append(changed, string(k))
		detailed[string(k)] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: true}
	}
	sort.Strings(changed)
	if len(changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE, HasDetailedDiff: true}, nil
	}
	return &pulumirpc.DiffResponse{
		Changes:         pulumirpc.DiffResponse_DIFF_SOME,
		Diffs:           changed,
		Replaces:        replaces,
		DetailedDiff:    detailed,
		HasDetailedDiff: true,
	}, nil
}

// withOutputs is the state: the inputs as sent (secrets kept) plus the command's output.
func withOutputs(inputs *structpb.Struct, stdout, stderr resource.PropertyValue) (*structpb.Struct, error) {
	m, err := unmarshal(inputs, kept)
	if err != nil {
		return nil, err
	}
	m["stdout"], m["stderr"] = stdout, stderr
	return marshal(m)
}

func unknown() resource.PropertyValue {
	return resource.MakeComputed(resource.NewStringProperty(""))
}

func (p *provider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	if err := requireType(req.GetUrn()); err != nil {
		return nil, err
	}
	urn := resource.URN(req.GetUrn())
	id, err := resource.NewUniqueHex(urn.Name(), 8, 0)
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		props, err := withOutputs(req.GetProperties(), unknown(), unknown())
		return &pulumirpc.CreateResponse{Id: id, Properties: props}, err
	}
	inputs, err := unmarshal(req.GetProperties(), plain)
	if err != nil {
		return nil, err
	}
	out, err := p.run(ctx, urn, inputs, "create", nil)
	if err != nil {
		return nil, err
	}
	props, err := withOutputs(req.GetProperties(), resource.NewStringProperty(out.stdout), resource.NewStringProperty(out.stderr))
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, err
}

func (p *provider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	if err := requireType(req.GetUrn()); err != nil {
		return nil, err
	}
	urn := resource.URN(req.GetUrn())
	if req.GetPreview() {
		props, err := withOutputs(req.GetNews(), unknown(), unknown())
		return &pulumirpc.UpdateResponse{Properties: props}, err
	}
	news, err := unmarshal(req.GetNews(), plain)
	if err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOlds(), plain)
	if err != nil {
		return nil, err
	}
	field := "update"
	if s, _ := stringProp(news, "update"); s == "" {
		field = "create"
	}
	out, err := p.run(ctx, urn, news, field, olds)
	if err != nil {
		return nil, err
	}
	props, err := withOutputs(req.GetNews(), resource.NewStringProperty(out.stdout), resource.NewStringProperty(out.stderr))
	return &pulumirpc.UpdateResponse{Properties: props}, err
}

func (p *provider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if err := requireType(req.GetUrn()); err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetProperties(), plain)
	if err != nil {
		return nil, err
	}
	if _, err := p.run(ctx, resource.URN(req.GetUrn()), olds, "delete", olds); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// Read (refresh) keeps the state as it is: a command's effect cannot be read back, as upstream.
func (p *provider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if err := requireType(req.GetUrn()); err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

func (p *provider) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	return nil, unsupported("invoke " + req.GetTok())
}

func (p *provider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, cancel := range p.cancels {
		cancel()
	}
	return &emptypb.Empty{}, nil
}

// log sends one line to the engine, attached to the resource, as upstream's util.CopyOutput does.
func (p *provider) log(ctx context.Context, urn resource.URN, line string) {
	if p.engine == nil || strings.TrimSpace(line) == "" {
		return
	}
	_, _ = p.engine.Log(ctx, &pulumirpc.LogRequest{
		Severity: pulumirpc.LogSeverity_INFO, Message: line, Urn: string(urn),
	})
}

func main() {
	p := &provider{cancels: map[int]context.CancelFunc{}}
	// The engine passes its own address as the first argument; logs go there.
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-") {
		conn, err := grpc.NewClient(os.Args[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fmt.Fprintf(os.Stderr, "fatal: engine at %s: %v\n", os.Args[1], err)
			os.Exit(1)
		}
		p.engine = pulumirpc.NewEngineClient(conn)
	}
	serve.Run(func(srv *grpc.Server) { pulumirpc.RegisterResourceProviderServer(srv, p) })
}
