// Command pulumi-resource-stub is a PREVIEW-ONLY stand-in for a Pulumi resource provider, built only
// from github.com/pulumi/pulumi/sdk/v3. scripts/engine/preview.sh installs it under the names and
// versions of the real providers (command, tls, random, kubernetes) into a throw-away PULUMI_HOME
// when the real provider plugins could not be built, so that `pulumi preview` can run the program
// against the real engine. It never creates, reads, updates or deletes anything:
//
//   - CheckConfig/Check return the inputs unchanged (no provider-side defaults or validation);
//   - Diff/DiffConfig report "some change" when old and new inputs differ (no replace decisions);
//   - Create and Update with preview=true return the inputs as the planned state, so every output
//     the real provider computes stays unknown in the program, as in a first preview;
//   - Create and Update for real, Read, Delete and Invoke fail with an error naming this stub.
//
// Its name and version come from its install path ($PULUMI_HOME/plugins/resource-<name>-v<version>/).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"consulpulumi/engine/internal/serve"
)

type stub struct {
	pulumirpc.UnimplementedResourceProviderServer
	name, version string
}

func (s *stub) refuse(op string) error {
	return status.Errorf(codes.Unimplemented,
		"%s: consul-pulumi preview-only stub for the %s provider v%s (the real provider plugin is not built)",
		op, s.name, s.version)
}

func (s *stub) Handshake(
	context.Context, *pulumirpc.ProviderHandshakeRequest,
) (*pulumirpc.ProviderHandshakeResponse, error) {
	return &pulumirpc.ProviderHandshakeResponse{AcceptSecrets: true, AcceptResources: true}, nil
}

func (s *stub) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: s.version}, nil
}

func (s *stub) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{
		Schema: fmt.Sprintf(`{"name":%q,"version":%q}`, s.name, s.version),
	}, nil
}

func (s *stub) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func diff(olds, news *structpb.Struct) *pulumirpc.DiffResponse {
	if olds == nil || proto.Equal(olds, news) {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}
	}
	var changed []string
	for k, v := range news.GetFields() {
		if o, ok := olds.GetFields()[k]; !ok || !proto.Equal(o, v) {
			changed = append(changed, k)
		}
	}
	for k := range olds.GetFields() {
		if _, ok := news.GetFields()[k]; !ok {
			changed = append(changed, k)
		}
	}
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_SOME, Diffs: changed}
}

func (s *stub) DiffConfig(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return diff(req.GetOldInputs(), req.GetNews()), nil
}

func (s *stub) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true, AcceptResources: true}, nil
}

func (s *stub) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (s *stub) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return diff(req.GetOldInputs(), req.GetNews()), nil
}

// Create and Update answer previews only: the planned state is the inputs, so every output that
// the real provider would compute stays unknown in the program.
func (s *stub) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	if !req.GetPreview() {
		return nil, s.refuse("create")
	}
	return &pulumirpc.CreateResponse{Properties: req.GetProperties()}, nil
}

func (s *stub) Read(context.Context, *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	return nil, s.refuse("read")
}

func (s *stub) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	if !req.GetPreview() {
		return nil, s.refuse("update")
	}
	return &pulumirpc.UpdateResponse{Properties: req.GetNews()}, nil
}

func (s *stub) Delete(context.Context, *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	return nil, s.refuse("delete")
}

func (s *stub) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	return nil, s.refuse("invoke " + req.GetTok())
}

func (s *stub) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

var installDir = regexp.MustCompile(`^resource-(.+)-v(\d[^/]*)$`)

func main() {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "fatal: %v\n", err)
		os.Exit(1)
	}
	m := installDir.FindStringSubmatch(filepath.Base(filepath.Dir(exe)))
	if m == nil {
		fmt.Fprintf(os.Stderr, "fatal: %s is not installed as $PULUMI_HOME/plugins/resource-<name>-v<version>/\n", exe)
		os.Exit(1)
	}
	s := &stub{name: m[1], version: m[2]}
	serve.Run(func(srv *grpc.Server) { pulumirpc.RegisterResourceProviderServer(srv, s) })
}
